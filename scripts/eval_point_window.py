#!/usr/bin/env python
"""Full-image 1-click mIoU of a PicoSAM2 model for several point-window sizes.

The field's protocol (``picosam2 eval --protocol full``): every non-crowd instance, one click at
the most interior mask pixel, IoU of the pasted-back full-image mask. Here the point window side
(``Predictor(window_size=...)``, resized to 96) varies, to choose the recommended
``point_window_size`` of a set of weights. Usage::

    python scripts/eval_point_window.py --weights runs/coco-mini/weights \
        --annotations "$PICOSAM2_DATA/coco-mini/annotations/instances_val.json" \
        --images "$PICOSAM2_DATA/coco-mini/images/val" --sizes 96 128 160 192 --out sweep.json
"""

from __future__ import annotations

import argparse
import sys
import time
from itertools import groupby

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None)
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--sizes", nargs="+", type=int, default=[96, 128, 160, 192])
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import torch

    from picosam2.data import InstanceSet, interior_point
    from picosam2.data.coco import size_class
    from picosam2.data.prompt_rules import EmptyMaskError
    from picosam2.eval.metrics import batch_iou
    from picosam2.image_io import load_image
    from picosam2.predictor import Predictor

    torch.set_num_threads(2)
    ds = InstanceSet(args.annotations, args.images)
    insts = [i for i in ds.instances(limit=args.limit) if i.image_path is not None]
    preds = {s: Predictor.from_pretrained(args.weights, window_size=s, warn_untrained=False) for s in args.sizes}
    ious = {s: [] for s in args.sizes}
    sizes = []
    t0 = time.time()
    for _, group in groupby(insts, key=lambda i: i.image_id):
        group = list(group)
        image = load_image(group[0].image_path)
        gts, pts = [], []
        for inst in group:
            try:
                gt = ds.mask(inst)
                pts.append(interior_point(gt))
            except (EmptyMaskError, ValueError):
                continue
            gts.append(gt)
            sizes.append(size_class(inst.area))
        if not gts:
            continue
        for s, pred in preds.items():
            masks = pred.predict(image, points=np.asarray(pts)).masks
            ious[s].extend(batch_iou(np.asarray(masks), np.stack(gts)).tolist())
    report = {"instances": len(sizes), "elapsed_s": round(time.time() - t0, 1), "by_window": {}}
    for s in args.sizes:
        v = np.asarray(ious[s])
        row = {"miou": round(100 * float(v.mean()), 2)}
        for c in ("small", "medium", "large"):
            sel = np.asarray([z == c for z in sizes])
            row[c] = round(100 * float(v[sel].mean()), 2) if sel.any() else None
        report["by_window"][str(s)] = row
        print(
            f"window {s:4d}: mIoU {row['miou']:6.2f}  small {row['small']}  medium {row['medium']}  large {row['large']}"
        )
    if args.out:
        from picosam2.eval import write_json_atomic

        write_json_atomic(report, args.out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
