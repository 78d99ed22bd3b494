"""``picosam2 track``: follow clicked or boxed objects through a video, a folder of frames or a glob."""

from __future__ import annotations

from ..commands import add_prompt_arguments


def add_parser(sub) -> list[str]:
    p = sub.add_parser(
        "track",
        help="follow objects through a video from one click or box each",
        description="Follow each clicked (--point) or boxed (--box) object through the frames, one 96 x 96 "
        "window per object and frame (see docs/tracking.md). Writes DIR/obj1/00000.png ... (0/255 masks, "
        "named by frame index, from --frame on), optionally an overlay MP4 and a per-frame JSON.",
    )
    p.add_argument("input", help="a video file, a folder of frames or a quoted glob ('frames/*.jpg')")
    add_prompt_arguments(
        p,
        "a click on an object on frame --frame (repeatable: one object each)",
        "a box around an object on frame --frame (repeatable)",
    )
    p.add_argument("--frame", type=int, default=0, help="index of the frame the prompts are on (default 0)")
    p.add_argument("--out", required=True, help="folder to create with one sub-folder of masks per object")
    p.add_argument("--overlay", default=None, metavar="OUT.mp4", help="also write the masks over the frames")
    p.add_argument("--json", default=None, metavar="F", help="per frame: window, score, state and ms per object")
    p.add_argument(
        "--weights",
        default=None,
        help="weights folder, .safetensors, .pt, shipped name, hf-hub:owner/name, or an exported .onnx/.xml/.tflite "
        "(default: shipped)",
    )
    p.add_argument("--backend", default=None, help="torch, onnx, openvino or tflite (default: from --weights)")
    p.add_argument("--threads", type=int, default=None, help="runtime threads (default: the runtime's)")
    p.add_argument("--fps", type=float, default=None, help="overlay frame rate (default: the video's, else 25)")
    p.set_defaults(func=run)
    return ["track"]


def _check_out(path) -> None:
    from pathlib import Path

    from ..errors import UsageError

    out = Path(path)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} already exists and is not an empty folder")
    if not out.parent.is_dir():
        raise UsageError(f"no such folder: {out.parent}")


def run(args) -> int:
    import os
    import shutil
    import sys
    import tempfile
    import time
    from dataclasses import asdict
    from pathlib import Path

    import numpy as np
    from PIL import Image
    from tqdm import tqdm

    from ..errors import UsageError
    from ..io_utils import write_json_atomic
    from .tracker import Tracker
    from .video import FrameSource, VideoWriter, overlay

    prompts = [("point", tuple(p)) for p in args.point] + [("box", tuple(b)) for b in args.box]
    if not prompts:
        raise UsageError("give at least one --point X,Y or --box X0,Y0,X1,Y1")
    if args.frame < 0:
        raise UsageError("--frame must be at least 0")
    if args.threads is not None and args.threads < 1:
        raise UsageError("--threads must be at least 1")
    _check_out(args.out)
    for extra in (args.overlay, args.json):
        if extra is not None and not Path(extra).resolve().parent.is_dir():
            raise UsageError(f"no such folder: {Path(extra).parent}")
    source = FrameSource(args.input)
    tracker = Tracker(args.weights, backend=args.backend, threads=args.threads)

    out = Path(args.out)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.resolve().parent))
    tmp_overlay = None
    if args.overlay:
        o = Path(args.overlay).resolve()
        fd, name = tempfile.mkstemp(prefix=f".{o.name}.", suffix=".mp4", dir=o.parent)
        os.close(fd)
        tmp_overlay = Path(name)
    writer = None
    frames_log: list[dict] = []
    ids: list[int] = []
    total = max(len(source) - args.frame, 0) or None
    bar = tqdm(total=total, desc="track", unit="frame", file=sys.stderr, disable=not sys.stderr.isatty())
    try:
        seen = 0
        for k, frame in enumerate(source):
            seen = k + 1
            if k < args.frame:
                continue
            t0 = time.perf_counter()
            if k == args.frame:
                results = {}
                for kind, value in prompts:
                    r = tracker.start(frame, **{kind: value})
                    results[r.obj_id] = r
                ids = list(results)
                for oid in ids:
                    (tmp_dir / f"obj{oid}").mkdir()
            else:
                results = tracker.update(frame)
            ms = (time.perf_counter() - t0) * 1e3
            for oid, r in results.items():
                Image.fromarray(r.mask.astype(np.uint8) * 255).save(tmp_dir / f"obj{oid}" / f"{k:05d}.png")
            frames_log.append(
                {
                    "frame": k,
                    "ms": round(ms, 3),
                    "objects": {
                        str(oid): {
                            "window": [int(v) for v in r.window],
                            "score": round(float(r.score), 4),
                            "state": r.state,
                            "windows": int(r.windows),
                            "area": int(r.mask.sum()),
                        }
                        for oid, r in results.items()
                    },
                }
            )
            if tmp_overlay is not None:
                if writer is None:
                    writer = VideoWriter(tmp_overlay, fps=args.fps or source.fps or 25.0)
                writer.write(overlay(frame, [results[i].mask for i in ids], [results[i].window for i in ids]))
            bar.update(1)
        bar.close()
        if not frames_log:
            raise UsageError(f"--frame {args.frame}: {args.input} has only {seen} frames")
        if writer is not None:
            writer.close()
            writer = None
        if args.json:
            follow = [f["ms"] for f in frames_log[1:]]
            write_json_atomic(
                {
                    "input": str(args.input),
                    "weights": str(args.weights or "default"),
                    "backend": tracker.predictor.backend.name,
                    "policy": asdict(tracker.policy),
                    "prompts": {str(oid): {kind: list(v)} for oid, (kind, v) in zip(ids, prompts)},
                    "first_frame": args.frame,
                    "frames": frames_log,
                    "ms_per_frame_mean": round(float(np.mean(follow)), 3) if follow else None,
                },
                args.json,
                indent=1,
            )
        if out.exists():
            out.rmdir()  # checked empty above
        os.replace(tmp_dir, out)
        os.chmod(out, 0o755)
        if tmp_overlay is not None:
            os.chmod(tmp_overlay, 0o644)
            os.replace(tmp_overlay, args.overlay)
    finally:
        bar.close()
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - cleaning up after the real error
                pass
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir, ignore_errors=True)
        if tmp_overlay is not None and tmp_overlay.exists():
            tmp_overlay.unlink()
    follow = [f["ms"] for f in frames_log[1:]]
    states: dict[str, int] = {}
    for f in frames_log[1:]:
        for o in f["objects"].values():
            states[o["state"]] = states.get(o["state"], 0) + 1
    print(
        f"followed {len(ids)} object(s) over {len(frames_log)} frames"
        + (f", {np.mean(follow):.1f} ms a frame" if follow else "")
        + (f" ({', '.join(f'{k} {v}' for k, v in sorted(states.items()))})" if states else "")
        + f": masks in {out}/obj*/"
    )
    return 0
