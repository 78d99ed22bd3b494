"""Compare tracking policies on generated sequences: region J only, one process, one thread.

Each variant is a set of :class:`picosam2.track.TrackPolicy` fields changed from the defaults.
Every object is started from a click at its most interior pixel on frame 0 (as
``picosam2 eval-video --init click``) and followed to the end; J is averaged over frames 1 to
n-2 (DAVIS-2017: the first and last frames are not scored), then over objects. Windows per object
and frame count the first frame's scale-aware click too. The policy is chosen on the select split
only (``scripts/make_video_sequences.py --split select``); the held-out report is
``picosam2 eval-video`` on the dev-val split.

    python scripts/track_policy_grid.py /tmp/picosam2-video/select --weights model-int8.onnx \\
        --variants '{"default": {}, "margin 1.2": {"margin": 1.2}}' --out grid.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def evaluate(predictor, sequences, conditions, policy) -> dict:
    from picosam2.eval.video import first_prompt, region_j
    from picosam2.track import Tracker

    per, windows, frames = {}, 0, 0
    for seq in sequences:
        first, ids = seq.labels(0), seq.object_ids
        tracker = Tracker(predictor, policy=policy)
        frame0 = seq.frame(0)
        for oid in ids:
            windows += tracker.start(frame0, obj_id=oid, **first_prompt(first == oid, "click")).windows
            frames += 1
        js = {oid: [] for oid in ids}
        for k in range(1, len(seq)):
            results, gt = tracker.update(seq.frame(k)), seq.labels(k)
            for oid in ids:
                windows += results[oid].windows
                frames += 1
                if k < len(seq) - 1:
                    js[oid].append(region_j(results[oid].mask, gt == oid))
        for oid in ids:
            per[f"{seq.name}/{oid}"] = round(float(np.mean(js[oid])), 4)
    groups: dict[str, list] = {}
    for key, j in per.items():
        for c, v in conditions.get(key.split("/")[0], {}).items():
            groups.setdefault(f"{c}={str(v).lower()}", []).append(j)
    return {
        "J": round(float(np.mean(list(per.values()))), 4),
        "windows_per_object_frame": round(windows / frames, 3),
        "by_condition": {g: {"J": round(float(np.mean(v)), 4), "objects": len(v)} for g, v in sorted(groups.items())},
        "per_object": per,
    }


def print_row(name: str, row: dict, t0: float) -> None:
    """One variant's J and window cost on stderr, as it finishes."""
    print(
        f"{name:24s} J {row['J']:.4f}  windows/object/frame {row['windows_per_object_frame']:.3f}  "
        f"({time.time() - t0:.0f} s)",
        file=sys.stderr,
        flush=True,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="a DAVIS-layout folder (the select split)")
    ap.add_argument("--variants", required=True, help='JSON {"name": {policy fields}, ...} or a .json file')
    ap.add_argument("--weights", default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from picosam2.eval.video import read_conditions, read_davis
    from picosam2.io_utils import write_json_atomic
    from picosam2.predictor import Predictor
    from picosam2.track import TrackPolicy

    text = args.variants
    variants = json.loads(open(text).read() if text.endswith(".json") else text)
    predictor = Predictor.from_pretrained(args.weights, threads=1)
    sequences = read_davis(args.root)
    conditions = read_conditions(args.root)
    report = {"root": Path(args.root).name, "weights": args.weights or "shipped", "sequences": len(sequences), "variants": {}}
    for name, fields in variants.items():
        t0 = time.time()
        row = evaluate(predictor, sequences, conditions, TrackPolicy(**fields))
        report["variants"][name] = {"policy": fields, **row}
        print_row(name, row, t0)
        write_json_atomic(report, args.out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
