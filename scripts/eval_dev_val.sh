#!/usr/bin/env bash
# Evaluate the shipped weights on coco-mini dev-val (the figures of README.md, the model card and
# docs/), one report per protocol, into benchmarks/dev-val/ (or OUT=DIR).
#   PICOSAM2_DATA=/path/to/data scripts/eval_dev_val.sh        # the data root holding coco-mini/
# Build coco-mini from COCO 2017 first if needed: scripts/make_coco_mini.py --coco COCO_DIR --out "$PICOSAM2_DATA/coco-mini"
# INT8=0 skips the ONNX INT8 export and its two reports. Then `python scripts/render_docs.py` refreshes the docs.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PICOSAM2_DATA:?set PICOSAM2_DATA to the folder holding coco-mini/}"
PICOSAM2=${PICOSAM2:-.venv/bin/picosam2}
PY=${PY:-.venv/bin/python}
OUT=${OUT:-benchmarks/dev-val}
D="$PICOSAM2_DATA/coco-mini"
A="$D/annotations/instances_val.json"
I="$D/images/val"
mkdir -p "$OUT"
ev() { local name=$1; shift; echo "== $name"; "$PICOSAM2" eval --annotations "$A" --images "$I" --quiet "$@" --out "$OUT/$name.json"; }
ev paper --protocol paper
ev full-auto --protocol full --point-scales auto   # also holds each fixed window (point_scales.fixed: 96 px first)
ev full-auto4 --protocol full --point-scales auto:4
ev full-box --protocol full --prompt box
ev baseline-whole-window-paper --protocol paper --baseline whole-window
ev baseline-disk-paper --protocol paper --baseline disk
ev baseline-whole-window-full --protocol full --baseline whole-window
ev baseline-disk-full --protocol full --baseline disk
if [ "${INT8:-1}" = "1" ]; then
  tmp=$(mktemp -d)
  "$PICOSAM2" export --format onnx-int8 --out "$tmp/model-int8.onnx"
  ev onnx-int8-paper --protocol paper --backend onnx --weights "$tmp/model-int8.onnx"
  ev onnx-int8-full-auto --protocol full --point-scales auto --backend onnx --weights "$tmp/model-int8.onnx"
  rm -rf "$tmp"
fi
# the reports name the data root and the repository, not the paths of the machine that ran them
"$PY" scripts/portable_reports.py "$OUT"/*.json
