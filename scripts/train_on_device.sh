#!/usr/bin/env bash
# The quality head trained end to end on a GPU in one command of at most 9 minutes
# (src/picosam2/train/click_train.py): the stage-4 recipe of scripts/train_default_weights.sh scaled
# to a device -- batches of whole clicks (every auto window side of a click together), the
# segmentation loss on every window, regression + listwise losses on the quality head, backbone
# trained too, EMA weights evaluated on held-out clicks.
#
#   scripts/train_on_device.sh pack    # here, on the CPU, once: the click packs that travel with the
#                                      # working tree (runs/device-packs/{fit,select}/clicks.npz, ~42 MiB, so
#                                      # that tree + packs stay under the 64 MiB a device call takes; runs/ is
#                                      # git-ignored, so the device call carries it)
#   scripts/train_on_device.sh train   # on the device: writes $OUT/weights (a weights folder),
#                                      # $OUT/metrics.json (held-out figures before/after) and $OUT/log.txt
#
# The device call:  run(command="scripts/train_on_device.sh train", carry=["runs/device-packs"], timeout_s=570)
# Then, here: refit the score calibration on the select split and evaluate on dev-val
# (picosam2 calibrate-scores --weights W --write ...; picosam2 eval --protocol full --point-scales auto ...).
#
# pack needs coco-mini under the data root (PICOSAM2_DATA) and the fit/select split of
# scripts/make_select_split.py (runs/splits); FIT_ANN, SELECT_ANN, IMAGES override them.
# train takes: INIT (weights to start from, default: the shipped ones; the authors' .pt works too,
# its quality head then starts untrained), BUDGET (training seconds, default 400), STEPS,
# BATCH (clicks per step, default 256), LR, DEVICE (auto), PRECISION (bf16), PY (python3).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-train}
PACKS=${PACKS:-runs/device-packs}
if [ -x .venv/bin/python ]; then PY=${PY:-.venv/bin/python}; else PY=${PY:-python3}; fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
case "$MODE" in
pack)
  D="${PICOSAM2_DATA:-}/coco-mini"
  FIT_ANN=${FIT_ANN:-runs/splits/instances_fit.json}
  SELECT_ANN=${SELECT_ANN:-runs/splits/instances_select.json}
  IMAGES=${IMAGES:-$D/images/train}
  if [ ! -f "$FIT_ANN" ]; then
    $PY scripts/make_select_split.py --annotations "$D/annotations/instances_train.json" --out-dir runs/splits
  fi
  $PY -m picosam2.train.click_train pack --annotations "$FIT_ANN" --images "$IMAGES" --out "$PACKS/fit" \
    --clicks-per-instance "${CLICKS:-3}" --max-mb "${FIT_MB:-36}" --jpeg-quality "${JPEG_QUALITY:-85}" \
    ${LIMIT:+--limit "$LIMIT"} --seed 4
  $PY -m picosam2.train.click_train pack --annotations "$SELECT_ANN" --images "$IMAGES" --out "$PACKS/select" \
    --clicks-per-instance 1 --max-mb "${SELECT_MB:-6}" --jpeg-quality "${JPEG_QUALITY:-85}" \
    ${LIMIT:+--limit "$LIMIT"} --seed 5
  du -sh "$PACKS"/*
  ;;
train)
  OUT=${OUT:?set OUT to the folder that receives the weights and metrics}
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
  timeout --signal=INT "${HARD_LIMIT:-530}" \
    $PY -m picosam2.train.click_train train --pack "$PACKS/fit" --val-pack "$PACKS/select" --out "$OUT" \
      --init "${INIT:-default}" --time-budget "${BUDGET:-400}" --steps "${STEPS:-100000}" \
      --clicks-per-batch "${BATCH:-256}" --lr "${LR:-3e-4}" --device "${DEVICE:-auto}" \
      --precision "${PRECISION:-bf16}" --log-every "${LOG_EVERY:-100}"
  ;;
*)
  echo "usage: $0 pack|train" >&2
  exit 2
  ;;
esac
