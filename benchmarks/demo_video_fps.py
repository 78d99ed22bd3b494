"""Frames per second of the web demo's video mode, in headless Chromium: one object followed
through a clip in the page (onnxruntime-web, the model's INT8 export by default).

    .venv/bin/python benchmarks/demo_video_fps.py [--weights W] [--browser-model int8|fp32] [--frames 60] [--json]

Writes a 640 x 480 WebM clip (PyAV, VP8) of a camera pan over the bundled dog photo, opens it in the
page's video mode, clicks the dog on the first frame and plays the clip to its end (a clip is
segmented frame by frame). Prints the frames segmented, the frames per second over the whole run,
and the median per-frame time in the page (cut, network, policy, paste, drawing) and of the network
alone, with the windows per frame.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
SAMPLES = Path(__file__).resolve().parents[1] / "src" / "picosam2" / "samples"


def write_clip(path: Path, frames: int, size=(640, 480), fps: int = 30) -> tuple[int, int]:
    """A pan over dog.jpg; returns the dog's position in the first frame."""
    import av

    image = np.asarray(Image.open(SAMPLES / "dog.jpg").convert("RGB"))
    w, h = size
    step = (image.shape[1] - w) / max(1, frames - 1)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "8", "b": "4M"}
        for k in range(frames):
            x = int(round(k * step))
            frame = np.ascontiguousarray(image[:h, x : x + w])
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return 570, 200


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--browser-model", default="int8", choices=["int8", "fp32"])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from picosam2.demo.app import create_app
    from picosam2.demo.server import ServerThread

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "pan.webm"
        point = write_clip(clip, args.frames)
        app = create_app(weights=args.weights, model_cache_dir=tmp, browser_model=args.browser_model)
        with ServerThread(app) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(900_000)
            page.goto(url)
            page.wait_for_function("() => window.picosam2Video && window.picosam2Video.ready")
            page.click("#tab-video")
            page.set_input_files("#video-upload", str(clip))
            page.wait_for_function("() => window.picosam2Video.state.width > 0")
            box = page.locator("#video-frame").bounding_box()
            page.mouse.click(
                box["x"] + (point[0] + 0.5) * box["width"] / 640, box["y"] + (point[1] + 0.5) * box["height"] / 480
            )
            page.wait_for_function(
                "() => window.picosam2Video.objects().length === 1 || window.picosam2Video.lastError"
            )
            page.evaluate(
                """() => { window.__times = []; const v = window.picosam2Video; let seen = v.frames();
                           const poll = () => { if (v.frames() !== seen) { seen = v.frames();
                               window.__times.push({t: performance.now(), ...v.timing(),
                                                    state: v.objects()[0] && v.objects()[0].state}); }
                             if (v.state.playing || seen === 0) requestAnimationFrame(poll); };
                           requestAnimationFrame(poll); }"""
            )
            page.click("#video-play")
            page.wait_for_function("() => !window.picosam2Video.state.playing && window.picosam2Video.frames() > 1")
            samples = page.evaluate("() => window.__times")
            precision = page.evaluate("() => window.picosam2Video.state.model.precision")
            browser.close()
    span = (samples[-1]["t"] - samples[0]["t"]) / 1000
    result = {
        "clip": f"640x480, {args.frames} frames (pan over dog.jpg)",
        "precision": precision,
        "frames_segmented": len(samples),
        "frames_per_s": round((len(samples) - 1) / span, 1) if span > 0 else None,
        "frame_ms_median": round(statistics.median(s["totalMs"] for s in samples), 1),
        "network_ms_median": round(statistics.median(s["networkMs"] for s in samples), 1),
        "windows_per_frame_mean": round(statistics.mean(s["windows"] for s in samples), 2),
        "states": {k: sum(s["state"] == k for s in samples) for k in ("tracking", "lost", "reacquired")},
    }
    print(json.dumps(result, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
