"""Choose between fine-tuned candidates without touching site-test or dev-val.

Each candidate and the baseline are scored with the gate's protocol (full-image click mIoU, the
weights' own scale-aware clicks and calibration) on two selection sets:

* ``site-holdout``: the site-train images that ``picosam2 finetune`` keeps out of training
  (15 % of the images, seeded; the same split for every run with the same ``--holdout`` and
  ``--seed``; 100 of their clicks also refit each candidate's score calibration);
* ``select``: the select split of the coco-mini train pool (``scripts/make_select_split.py``,
  10 %, seed 0), held out of the base weights' last stage and of the replay data
  (``--replay`` takes the fit split), which stands in for dev-val.

    python benchmarks/field/choose.py --data-root DATA --site runs/field/site \\
        --candidates runs/field/ft3 runs/field/ft4 --out benchmarks/field/choose.json --cache runs/field/gate-cache

writes, per candidate and set, both mIoUs and the paired difference with its 95 % bootstrap interval.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def selection_sets(data_root: Path, site: Path, work: Path, holdout: float, seed: int) -> dict:
    from picosam2.io_utils import write_json_atomic
    from picosam2.train.finetune import split_by_image

    train_images = str(site / "train" / "images")
    _, hold, _ = split_by_image(site / "train" / "instances.json", [train_images], holdout, seed, work)
    spec = importlib.util.spec_from_file_location("make_select_split", ROOT / "scripts" / "make_select_split.py")
    mss = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mss)
    coco = data_root / "coco-mini"
    _, sel = mss.split(json.loads((coco / "annotations" / "instances_train.json").read_text()), 0.1, 0)
    write_json_atomic(sel, work / "select.json")
    return {
        "site-holdout": (hold, [train_images]),
        "select": (work / "select.json", [str(coco / "images" / "train")]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", required=True, help="folder holding coco-mini/")
    ap.add_argument("--site", required=True, help="the simulated site of make_site.py")
    ap.add_argument("--candidates", nargs="+", required=True, help="fine-tuned weights folders")
    ap.add_argument("--baseline", default=None, help="weights the candidates started from (default: shipped)")
    ap.add_argument("--holdout", type=float, default=0.15, help="finetune's --holdout")
    ap.add_argument("--seed", type=int, default=0, help="finetune's --seed")
    ap.add_argument("--cache", default=None, help="per-instance scores kept here (as picosam2 gate --cache)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core CPU)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from picosam2.io_utils import write_json_atomic
    from picosam2.ops.gate import _paired, score, weights_digest

    with tempfile.TemporaryDirectory() as tmp:
        sets = selection_sets(Path(a.data_root), Path(a.site), Path(tmp), a.holdout, a.seed)
        base = {name: score(a.baseline, ann, imgs, cache=a.cache, progress=True) for name, (ann, imgs) in sets.items()}
        rows = {}
        for cand in a.candidates:
            rows[Path(cand).name] = {"weights": weights_digest(cand)}
            for name, (ann, imgs) in sets.items():
                rows[Path(cand).name][name] = _paired(score(cand, ann, imgs, cache=a.cache, progress=True), base[name])
            print(Path(cand).name, {k: v["difference"] for k, v in rows[Path(cand).name].items() if k != "weights"})
    report = {
        "protocol": "full-image click mIoU (interior point), the weights' own clicks; paired vs the baseline",
        "sets": {
            "site-holdout": f"finetune's held-out site-train images (--holdout {a.holdout}, --seed {a.seed})",
            "select": "coco-mini select split (scripts/make_select_split.py, 10 %, seed 0)",
        },  # fmt: skip
        "baseline": weights_digest(a.baseline),
        "candidates": rows,
    }
    write_json_atomic(report, a.out, indent=2)


if __name__ == "__main__":
    main()
