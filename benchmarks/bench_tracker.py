"""Tracker speed per model form: the tracker rows of ``picosam2 bench`` alone.

Follows one clicked object through the bench's 480p clip with the shipped weights as PyTorch fp32
and as the INT8 ONNX export on onnxruntime and OpenVINO, one thread each (the same
``measure_tracker`` that ``picosam2 bench`` runs, same-window rows included), and writes the rows with the machine and the
load average next to them. It also times the image shift alone (``tracker_motion_ms_per_frame``)
on the very calls the tracker makes on that clip (states, masks and frames read back from a run of
the PyTorch form): as the Tracker measures it, keeping each object's template
(:func:`~picosam2.track.motion.template_shift`, then :func:`~picosam2.track.motion.object_template`
on the frame for the next one; the camera's follow loop does the same), and, for comparison, from a
copy of the last frame (:func:`~picosam2.track.motion.object_shift`).

The ratio ``tracker_vs_single_click`` compares a tracker frame with the weights' own one-window
click (a 128-pixel window on the first frame), while the tracker's window fits the object: on this
clip it is several times larger, and cutting and pasting a larger window costs more whoever does it.
``tracker_vs_same_window_click`` compares like with like: per form, each tracker frame and a
one-window click (cut, normalise, model, paste: :meth:`~picosam2.Predictor.predict_in`) at the
very window the tracker runs on that frame, timed alternately frame by frame (which goes first
alternates too), medians over the same frames:

    python benchmarks/bench_tracker.py --out benchmarks/track/tracker-speed.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np


def _cycled(items, step):
    """A function of no arguments that calls ``step`` on the next of ``items``, from the start again
    after the last (for :func:`~picosam2.bench.timing.median_ms`)."""
    pending = iter(())

    def call():
        nonlocal pending
        item = next(pending, None)
        if item is None:
            pending = iter(items)
            item = next(pending)
        step(item)

    return call


def motion_rows(weights, repeats: int) -> dict:
    """Median ms per frame of the image shift around the clicked object on the tracker's clip, on
    the tracker's own inputs (one thread: numpy only)."""
    from picosam2.bench.suite import TRACK_CLICK, track_clip
    from picosam2.bench.timing import median_ms, torch_threads
    from picosam2.track import Tracker
    from picosam2.track import motion as M

    clip = track_clip()
    with torch_threads(1):
        tracker = Tracker(weights)
        first = tracker.start(clip[0], point=TRACK_CLICK)
        calls, mask = [], first.mask  # (state, previous frame, frame, the previous frame's mask)
        for previous, frame in zip(clip, clip[1:]):
            calls.append((tracker.state(first.obj_id), previous, frame, mask))
            mask = tracker.update(frame)[first.obj_id].mask
    policy = tracker.policy
    if policy.motion != "image":
        return {}
    # the template each frame would have kept, and the next frame's state and mask to make the next
    templates = [M.object_template(state, previous, mask, policy) for state, previous, _, mask in calls]
    steps = [(calls[k], templates[k], calls[k + 1] if k + 1 < len(calls) else calls[k]) for k in range(len(calls))]

    def from_frame(call):  # for comparison: a copy of the last frame, matched against this one
        state, previous, frame, mask = call
        M.object_shift(state, np.array(previous, copy=True), frame, mask, policy)

    def from_template(step):  # the Tracker's and the camera's way: the last frame's template, then this frame's
        (state, _, frame, _), template, (next_state, _, _, next_mask) = step
        _, seen = M.template_shift(state, template, frame, policy)
        M.object_template(next_state, frame, next_mask, policy, known=seen)

    reps = max(repeats, len(calls))
    return {
        "object_shift_with_frame_copy": round(median_ms(_cycled(calls, from_frame), reps), 3),
        "kept_template": round(median_ms(_cycled(steps, from_template), reps), 3),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="weights (default: the shipped ones)")
    ap.add_argument("--repeats", type=int, default=50, help="timed frames per form (default 50)")
    ap.add_argument("--out", required=True, metavar="RESULTS.json")
    args = ap.parse_args(argv)

    from picosam2.bench.suite import _machine, export_forms, measure_tracker
    from picosam2.io_utils import write_json_atomic
    from picosam2.models import from_pretrained

    model = from_pretrained(args.weights).eval()
    with tempfile.TemporaryDirectory(prefix="picosam2-bench-tracker-") as tmp:
        paths, _ = export_forms(model, Path(tmp))
        forms = {k: v for k, v in paths.items() if k == "onnx_int8"}
        rows = measure_tracker(model, forms, args.repeats)
    rows["tracker_motion_ms_per_frame"] = motion_rows(args.weights, args.repeats)
    rows["machine"] = _machine()
    rows["load_average_1min"] = os.getloadavg()[0]
    rows["command"] = "python benchmarks/bench_tracker.py --out benchmarks/track/tracker-speed.json"
    write_json_atomic(rows, args.out, indent=1)
    motion = ", ".join(f"{k} {v} ms" for k, v in rows["tracker_motion_ms_per_frame"].items())
    print(
        f"wrote {args.out}: "
        + ", ".join(f"{k} {v} frames/s" for k, v in rows["tracker_fps"].items())
        + "; vs the one-window click at the same window: "
        + ", ".join(f"{k} {v}x" for k, v in rows["tracker_vs_same_window_click"].items())
        + f"; image shift: {motion}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
