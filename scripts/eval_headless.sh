#!/usr/bin/env bash
# What a network without a quality head (as the PicoSAM2 authors' weights) gets from a click on
# coco-mini dev-val, against the same network with its head: the shipped weights, once as they are
# and once with the quality head dropped (picosam2 convert --drop-quality-head). Reports go to
# benchmarks/headless/ (or OUT=DIR):
#   full-fixed96       head-less, one 96 px window per click (the paper's default)
#   full-auto-border   head-less, scale-aware clicks (auto) chosen by the border rule
#   full-auto-cal      head-less, auto clicks chosen by a score calibration fitted on the select split
#                      (calibrate-scores: mask statistics and window size only, no network score)
#   shipped-full-auto  the shipped weights (quality head + calibration), auto clicks
#   PICOSAM2_DATA=/path/to/data [LIMIT=N] scripts/eval_headless.sh
# LIMIT: only the first N dev-val instances (default all). A step whose output exists is skipped
# (delete benchmarks/headless/ and runs/headless/ to redo everything).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PICOSAM2_DATA:?set PICOSAM2_DATA to the folder holding coco-mini/}"
PICOSAM2=${PICOSAM2:-.venv/bin/picosam2}
PY=${PY:-.venv/bin/python}
OUT=${OUT:-benchmarks/headless}
D="$PICOSAM2_DATA/coco-mini"
A="$D/annotations/instances_val.json"
I="$D/images/val"
W=runs/headless
mkdir -p "$OUT" "$W"
for w in weights weights-cal; do
  [ -f "$W/$w/model.safetensors" ] || "$PICOSAM2" convert default --out "$W/$w" --drop-quality-head
done
if [ ! -f runs/splits/instances_select.json ]; then
  "$PY" scripts/make_select_split.py --annotations "$D/annotations/instances_train.json" --out-dir runs/splits
fi
[ -f "$OUT/calibration.json" ] || "$PICOSAM2" calibrate-scores --annotations runs/splits/instances_select.json \
  --images "$D/images/train" --weights "$W/weights-cal" --alpha 1 10 100 300 1000 --write --quiet --out "$OUT/calibration.json"
ev() {
  local name=$1; shift
  [ -f "$OUT/$name.json" ] && return 0
  echo "== $name"
  "$PICOSAM2" eval --annotations "$A" --images "$I" --quiet ${LIMIT:+--limit "$LIMIT"} "$@" --out "$OUT/$name.json"
}
ev full-auto-border --protocol full --point-scales auto --weights "$W/weights"
ev full-fixed96 --protocol full --weights "$W/weights"
ev full-auto-cal --protocol full --point-scales auto --weights "$W/weights-cal"
ev shipped-full-auto --protocol full --point-scales auto
# the reports name the data root, not this machine's folders
"$PY" - "$OUT" "$PICOSAM2_DATA" "$PWD" <<'PYEOF'
import pathlib, sys
out, data, repo = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3].rstrip("/")
for f in pathlib.Path(out).glob("*.json"):
    f.write_text(f.read_text().replace(data, "${PICOSAM2_DATA}").replace(repo + "/", ""))
PYEOF
