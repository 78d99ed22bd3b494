"""Tracker speed per model form: the tracker rows of ``picosam2 bench`` alone.

Follows one clicked object through the bench's 480p clip with the shipped weights as PyTorch fp32
and as the INT8 ONNX export on onnxruntime and OpenVINO, one thread each (the same
``measure_tracker`` that ``picosam2 bench`` runs), and writes the rows with the machine and the
load average next to them:

    python benchmarks/bench_tracker.py --out benchmarks/track/tracker-speed.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


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
    rows["machine"] = _machine()
    rows["load_average_1min"] = os.getloadavg()[0]
    rows["command"] = "python benchmarks/bench_tracker.py --out benchmarks/track/tracker-speed.json"
    write_json_atomic(rows, args.out, indent=1)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v} frames/s" for k, v in rows["tracker_fps"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
