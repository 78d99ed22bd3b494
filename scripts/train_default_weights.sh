#!/usr/bin/env bash
# Retrain the shipped default weights (src/picosam2/weights/picosam2-coco-mini) exactly as they
# were made: ground truth only, coco-mini train split, recipe src/picosam2/train/configs/coco-mini.yaml.
# Needs ../shared/data/coco-mini (COCO-format: annotations/instances_{train,val}.json, images/{train,val}).
# The first run builds the packed crops (runs/packs/coco-mini-train-s12, ~3 min, 1.3 GB), then trains;
# if the process is stopped, the same command with --resume continues from the last checkpoint.
# Finally the exported weights (EMA) are copied into the package with a model card update by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY -m picosam2.cli train --config src/picosam2/train/configs/coco-mini.yaml "$@"
echo "trained weights: runs/coco-mini/weights (copy to src/picosam2/weights/picosam2-coco-mini)"
