"""Split a COCO-format training json by image into a fit part and a model-selection part.

The selection part is held out of training and used to choose between runs and settings, so
dev-val stays a test. The split is by image (instances of one image never straddle it) and
depends only on ``--seed`` and the json's image ids.

    python scripts/make_select_split.py --annotations "$PICOSAM2_DATA/coco-mini/annotations/instances_train.json" \\
        --out-dir runs/splits --fraction 0.1
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np


def split(data: dict, fraction: float, seed: int) -> tuple[dict, dict]:
    ids = sorted(img["id"] for img in data["images"])
    rng = np.random.default_rng(seed)
    n_sel = max(1, int(round(len(ids) * fraction)))
    selected = set(int(i) for i in rng.choice(ids, size=n_sel, replace=False))

    def part(keep) -> dict:
        out = {k: v for k, v in data.items() if k not in ("images", "annotations")}
        out["images"] = [img for img in data["images"] if keep(img["id"])]
        out["annotations"] = [a for a in data["annotations"] if keep(a["image_id"])]
        return out

    return part(lambda i: i not in selected), part(lambda i: i in selected)


def _write(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--annotations", required=True)
    ap.add_argument("--out-dir", default="runs/splits")
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = json.loads(Path(args.annotations).read_text())
    fit, sel = split(data, args.fraction, args.seed)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "instances_fit.json", fit)
    _write(out / "instances_select.json", sel)
    for name, d in (("fit", fit), ("select", sel)):
        print(f"{name}: {len(d['images'])} images, {len(d['annotations'])} annotations")


if __name__ == "__main__":
    main()
