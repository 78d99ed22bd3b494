#!/usr/bin/env bash
# Retrain the shipped default weights (src/picosam2/weights/picosam2-coco-mini) as they were made:
# ground truth only (no SAM 2.1 teacher), coco-mini train split.
#   stage 1: src/picosam2/train/configs/coco-mini.yaml       (3500 steps x 32, scale-jittered windows)
#   stage 2: src/picosam2/train/configs/coco-mini-ft96.yaml  (600 steps x 32, fixed 96 px windows only)
#   stage 3: src/picosam2/train/configs/coco-mini-cont.yaml  (8000 steps x 32, a fresh packed set, seed 2)
#   stage 4: src/picosam2/train/configs/coco-mini-scale.yaml (2000 steps x 32, quality head, windows up to the
#            whole image; trains on the fit split of scripts/make_select_split.py, monitors the select split)
#   then:    picosam2 calibrate-scores on the select split (--write: the score calibration in config.json)
# Needs coco-mini under the data root: PICOSAM2_DATA=DIR holding coco-mini/ (annotations/instances_{train,val}.json,
# images/{train,val}); scripts/make_coco_mini.py --coco COCO_DIR --out "$PICOSAM2_DATA/coco-mini" builds it.
# Stages 1 and 3 first build their packed crops (runs/packs/coco-mini-train-s12{,-seed2}, ~1-3 min, 1.3 GB each).
# A killed stage continues with:  .venv/bin/python -m picosam2.cli train -c <config> --resume
# SHIP=0 skips copying the final result into the package (stage 3 is always copied: stage 4 starts from it).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PICOSAM2_DATA:?set PICOSAM2_DATA to the folder holding coco-mini/}"
D="$PICOSAM2_DATA/coco-mini"
PY=${PY:-.venv/bin/python}
$PY -m picosam2.cli train --config src/picosam2/train/configs/coco-mini.yaml
$PY -m picosam2.cli train --config src/picosam2/train/configs/coco-mini-ft96.yaml
$PY -m picosam2.cli train --config src/picosam2/train/configs/coco-mini-cont.yaml
ship() {  # ship SRC RECIPE: copy a run's weights into the package (stage 4 starts from the shipped ones)
  $PY - "$1" "$2" <<'PYEOF'
import sys

from picosam2.models import from_pretrained, save_pretrained, weights_metadata

src, recipe = sys.argv[1], sys.argv[2]
meta = weights_metadata(src)
meta.update(recipe=recipe, data_split="coco-mini train (stage 4: the fit split; the select split held out)")
save_pretrained(from_pretrained(src).eval(), "src/picosam2/weights/picosam2-coco-mini", metadata=meta)
print("shipped:", meta)
PYEOF
}
R3="coco-mini.yaml (3500 steps) + coco-mini-ft96.yaml (600) + coco-mini-cont.yaml (8000)"
ship runs/coco-mini-cont/weights "$R3"
$PY scripts/make_select_split.py --annotations "$D/annotations/instances_train.json" --out-dir runs/splits
$PY -m picosam2.cli train --config src/picosam2/train/configs/coco-mini-scale.yaml
if [ "${SHIP:-1}" = "1" ]; then
  ship runs/coco-mini-scale/weights "$R3 + coco-mini-scale.yaml (2000, quality head, windows up to the whole image)"
else
  git checkout -- src/picosam2/weights/picosam2-coco-mini  # SHIP=0: leave the package as it was
fi
# The score calibration that chooses among a click's windows: fitted on the select split (5-fold
# CV picks the ridge penalty) and written into the weights' config.json
if [ "${SHIP:-1}" = "1" ]; then
  $PY -m picosam2.cli calibrate-scores --annotations runs/splits/instances_select.json \
    --images "$D/images/train" --alpha 1 10 100 300 1000 --write
fi
