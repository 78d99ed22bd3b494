"""Draw the README's strip of a followed object: one click on the first frame of a clip, then
the tracker's mask (tinted) and window (outlined) on a few frames.

The default clip is made from a bundled photo: a 854 x 480 camera view that pans and zooms
across ``dog.jpg`` (enlarged 1.5x), so the bowl moves across the frame and grows; the click is on the
bowl in the first frame. ``--input`` takes any video, folder or glob instead (with ``--point``).

    python scripts/make_track_strip.py                        # docs/images/track_strip.png
    python scripts/make_track_strip.py --input clip.mp4 --point 300,200 --out strip.png

Beside the image, a JSON file (``--log``, default ``benchmarks/track/strip.json``) keeps each
frame's window, score and state.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
SIZE = (854, 480)
FRAMES = 40
#: the bowl in the enlarged photo, and the first frame's view (centre, zoom: view = SIZE x zoom)
BOWL = (855.0, 300.0)


def default_clip() -> list[np.ndarray]:
    photo = Image.open(ROOT / "src" / "picosam2" / "samples" / "dog.jpg").convert("RGB")
    photo = photo.resize((round(photo.width * 1.5), round(photo.height * 1.5)), Image.BILINEAR)
    frames = []
    for k in range(FRAMES):
        t = k / (FRAMES - 1)
        zoom = 1.0 - 0.3 * t  # closer and closer
        cx = 560 + 300 * t  # the view pans while it zooms in
        cy = 420 - 140 * t
        w, h = SIZE[0] * zoom, SIZE[1] * zoom
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        frames.append(np.asarray(photo.resize(SIZE, Image.BILINEAR, box=box)))
    return frames


def first_point() -> tuple[float, float]:
    """The bowl's position in the default clip's first frame."""
    zoom, cx, cy = 1.0, 560.0, 420.0
    return ((BOWL[0] - (cx - SIZE[0] * zoom / 2)) / zoom, (BOWL[1] - (cy - SIZE[1] * zoom / 2)) / zoom)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default=None, help="a video, folder or glob (default: the clip made from dog.jpg)")
    ap.add_argument("--point", default=None, help="X,Y of the click on the first frame (needed with --input)")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--show", type=int, default=5, help="frames in the strip")
    ap.add_argument("--width", type=int, default=300, help="width of each frame in the strip")
    ap.add_argument("--out", default=str(ROOT / "docs" / "images" / "track_strip.png"))
    ap.add_argument("--log", default=str(ROOT / "benchmarks" / "track" / "strip.json"))
    args = ap.parse_args()

    from picosam2.io_utils import write_atomic, write_json_atomic
    from picosam2.track import Tracker
    from picosam2.track.video import FrameSource, overlay

    if args.input:
        if not args.point:
            sys.exit("--input needs --point X,Y")
        frames = list(FrameSource(args.input))
        point = tuple(float(v) for v in args.point.split(","))
    else:
        frames = default_clip()
        point = first_point() if not args.point else tuple(float(v) for v in args.point.split(","))
    tracker = Tracker(args.weights, threads=1)
    results = [tracker.start(frames[0], point=point)]
    oid = results[0].obj_id
    results += [tracker.update(f)[oid] for f in frames[1:]]
    picks = np.linspace(0, len(frames) - 1, args.show).round().astype(int)
    tiles = []
    for k in picks:
        r = results[k]
        im = Image.fromarray(overlay(frames[k], [r.mask], [r.window]))
        scale = args.width / im.width
        im = im.resize((args.width, round(im.height * scale)), Image.BILINEAR)
        draw = ImageDraw.Draw(im)
        label = f"frame {k}: {r.state}" + (" (click)" if k == 0 else "")
        draw.rectangle((0, 0, 8 + 6 * len(label), 14), fill=(0, 0, 0))
        draw.text((4, 2), label, fill=(255, 255, 255))
        if k == 0:
            x, y = point[0] * scale, point[1] * scale
            draw.ellipse((x - 4, y - 4, x + 4, y + 4), outline=(255, 255, 0), width=2)
        tiles.append(im)
    gap = 4
    strip = Image.new("RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1), tiles[0].height), (255, 255, 255))
    x = 0
    for t in tiles:
        strip.paste(t, (x, 0))
        x += t.width + gap
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, lambda tmp: strip.save(tmp, format="PNG", optimize=True), suffix=".png")
    write_json_atomic(
        {
            "made_by": "scripts/make_track_strip.py",
            "input": args.input or "dog.jpg pan-and-zoom clip (scripts/make_track_strip.py default_clip)",
            "point": [round(v, 1) for v in point],
            "weights": args.weights or "default",
            "shown_frames": [int(k) for k in picks],
            "frames": [
                {
                    "frame": k,
                    "window": [int(v) for v in r.window],
                    "score": round(float(r.score), 3),
                    "state": r.state,
                    "area": int(r.mask.sum()),
                }
                for k, r in enumerate(results)
            ],
        },
        args.log,
        indent=1,
    )
    print(f"wrote {out} and {args.log}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
