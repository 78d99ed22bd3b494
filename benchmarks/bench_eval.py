"""Time `picosam2 eval` on 1,000 instances of coco-mini dev-val (torch backend).

Usage::

    .venv/bin/python benchmarks/bench_eval.py [--data-root DIR | --data DIR/coco-mini] [--n 1000]
        [--protocol paper full] [--weights W] [--threads N] [--json OUT.json]

The coco-mini val split has 942 non-crowd instances; to reach ``--n`` the instance list is walked
again from the start (the second pass re-reads images and re-decodes masks like the first, so it
costs the same). coco-mini is found under ``--data-root`` or ``$PICOSAM2_DATA`` (``--data`` names the
folder itself). Reported per protocol: wall time for ``n`` instances, instances/s, and the share
spent in the network (``predict_windows``). The load average is printed too: on a busy machine
the numbers move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None, help="folder holding coco-mini/ (default: $PICOSAM2_DATA)")
    ap.add_argument("--data", default=None, help="the coco-mini folder itself (overrides --data-root)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--protocol", nargs="+", default=["paper", "full"], choices=["paper", "full"])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args(argv)

    import torch

    from picosam2.data import InstanceSet
    from picosam2.eval import evaluate
    from picosam2.predictor import Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    from picosam2.data.root import DataRootError, dataset_dir

    try:
        data = Path(args.data) if args.data else dataset_dir("coco-mini", args.data_root)
    except DataRootError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ann = data / "annotations" / f"instances_{args.split}.json"
    if not ann.exists():
        print(f"no data at {ann}: pass --data-root or set PICOSAM2_DATA", file=sys.stderr)
        return 2
    dataset = InstanceSet(ann, [data / "images" / args.split])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictor = Predictor.from_pretrained(args.weights)

    net_time = [0.0]
    inner = predictor.predict_windows

    def timed(image, windows):
        t = time.perf_counter()
        out = inner(image, windows)
        net_time[0] += time.perf_counter() - t
        return out

    predictor.predict_windows = timed
    total = len(dataset.instances())
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()}", flush=True)
    for protocol in args.protocol:
        net_time[0] = 0.0
        done = 0
        t0 = time.perf_counter()
        while done < args.n:
            n = min(total, args.n - done)
            res = evaluate(dataset, predictor, protocol, "point", limit=n, progress=False)
            done += res.requested
        wall = time.perf_counter() - t0
        row = {
            "protocol": protocol,
            "instances": done,
            "wall_s": round(wall, 2),
            "inst_per_s": round(done / wall, 1),
            "network_s": round(net_time[0], 2),
            "network_share": round(net_time[0] / wall, 3),
            "load_avg_1min": round(os.getloadavg()[0], 2),
        }
        rows.append(row)
        print(
            f"{protocol:6} {done} instances in {wall:6.1f} s ({row['inst_per_s']} inst/s; network "
            f"{net_time[0]:.1f} s = {100 * row['network_share']:.0f} %)  load {row['load_avg_1min']}",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
