#!/usr/bin/env bash
# Make the synthetic video sets (if missing) and measure followers on them with the shipped weights:
# one report per split and follower, benchmarks/video/results-<split>-<follower>.json (or OUT=DIR).
#   PICOSAM2_DATA=/path/to/data VIDEO=/path/to/video-sets scripts/eval_video_baselines.sh
#   SPLITS="devval" FOLLOWERS="naive-box oracle-click" ... to run a part
# The sets: VIDEO/select (held out of the train pool: for choosing a policy) and VIDEO/devval (dev-val
# photos: for reporting), 30 sequences of 50 frames each, from scripts/make_video_sequences.py, seed 0.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
: "${PICOSAM2_DATA:?set PICOSAM2_DATA to the folder holding coco-mini/}"
: "${VIDEO:?set VIDEO to the folder for the generated sequences}"
PICOSAM2=${PICOSAM2:-$REPO/.venv/bin/picosam2}
PY=${PY:-$REPO/.venv/bin/python}
OUT=${OUT:-$REPO/benchmarks/video}
SPLITS=${SPLITS:-devval select}
FOLLOWERS=${FOLLOWERS:-naive-box naive-click oracle-click}
THREADS=${THREADS:-1}
mkdir -p "$OUT" "$VIDEO"
for split in $SPLITS; do
  if [ ! -f "$VIDEO/$split/meta.json" ]; then
    extra=()
    if [ "$split" = select ]; then
      "$PY" scripts/make_select_split.py --annotations "$PICOSAM2_DATA/coco-mini/annotations/instances_train.json" \
        --out-dir "$VIDEO/splits"
      extra=(--select-json "$VIDEO/splits/instances_select.json")
    fi
    "$PY" scripts/make_video_sequences.py --split "$split" "${extra[@]}" --out "$VIDEO/$split" --n 30 --frames 50 --seed 0
  fi
done
# run from VIDEO so that the reports name the set ("devval"), not a path of this machine
cd "$VIDEO"
for split in $SPLITS; do
  for follower in $FOLLOWERS; do
    echo "== $split $follower"
    "$PICOSAM2" eval-video "$split" --follower "$follower" --init click --threads "$THREADS" --quiet \
      --out "$OUT/results-$split-$follower.json"
  done
done
