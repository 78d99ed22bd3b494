#!/usr/bin/env bash
# Retrain the shipped default weights (src/picosam2/weights/picosam2-coco-mini) as they were made:
# ground truth only (no SAM 2.1 weights are reachable here), coco-mini train split.
#   stage 1: src/picosam2/train/configs/coco-mini.yaml       (3500 steps x 32, scale-jittered windows)
#   stage 2: src/picosam2/train/configs/coco-mini-ft96.yaml  (600 steps x 32, fixed 96 px windows only)
#   stage 3: src/picosam2/train/configs/coco-mini-cont.yaml  (8000 steps x 32, a fresh packed set, seed 2)
# Needs ../shared/data/coco-mini (annotations/instances_{train,val}.json, images/{train,val}).
# Stages 1 and 3 first build their packed crops (runs/packs/coco-mini-train-s12{,-seed2}, ~1-3 min, 1.3 GB each).
# A killed stage continues with:  .venv/bin/python -m picosam2.cli train -c <config> --resume
# SHIP=0 skips copying the result into the package.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY -m picosam2.cli train --config src/picosam2/train/configs/coco-mini.yaml
$PY -m picosam2.cli train --config src/picosam2/train/configs/coco-mini-ft96.yaml
$PY -m picosam2.cli train --config src/picosam2/train/configs/coco-mini-cont.yaml
if [ "${SHIP:-1}" = "1" ]; then
  $PY - <<'PYEOF'
from picosam2.models import from_pretrained, save_pretrained, weights_metadata

src = "runs/coco-mini-cont/weights"
meta = weights_metadata(src)
meta.update(
    recipe="coco-mini.yaml (3500 steps) + coco-mini-ft96.yaml (600) + coco-mini-cont.yaml (8000)",
    data_split="coco-mini train",
)
save_pretrained(from_pretrained(src).eval(), "src/picosam2/weights/picosam2-coco-mini", metadata=meta)
print("shipped:", meta)
PYEOF
fi
