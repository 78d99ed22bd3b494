#!/usr/bin/env bash
# Make the synthetic video sets (if missing) and measure followers on them with the shipped weights:
# one report per split and follower, benchmarks/video/results-<split>-<follower>.json (or OUT=DIR).
#   PICOSAM2_DATA=/path/to/data VIDEO=/path/to/video-sets scripts/eval_video_baselines.sh
#   SPLITS="devval" FOLLOWERS="naive-box oracle-click" ... to run a part
#   SPLITS="devval100" FOLLOWERS=tracker OUT=benchmarks/track ... the tracker on the larger set
# The sets: VIDEO/select (held out of the train pool: for choosing a policy) and VIDEO/devval (dev-val
# photos: for reporting), 30 sequences of 50 frames each, from scripts/make_video_sequences.py, seed 0;
# VIDEO/select100 and VIDEO/devval100: the same with 100 sequences (their first 30 are the 30-sequence set).
# FOLLOWERS may name oracle-window (one window a frame placed on the truth); POLICY='{"margin": 0.8}'
# passes --policy to it (and to the tracker) and SUFFIX=-margin08 names the reports apart.
# FOLLOWERS=tracker-oracle ORACLE=motion,reacquire reads those parts of the tracker's policy from the
# truth (eval-video --oracle); the report is results-<split>-tracker-oracle-motion-reacquire.json.
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
POLICY=${POLICY:-}
SUFFIX=${SUFFIX:-}
ORACLE=${ORACLE:-}
mkdir -p "$OUT" "$VIDEO"
for split in $SPLITS; do
  if [ ! -f "$VIDEO/$split/meta.json" ]; then
    base=${split%100}
    n=30
    [ "$base" != "$split" ] && n=100
    extra=()
    if [ "$base" = select ]; then
      "$PY" scripts/make_select_split.py --annotations "$PICOSAM2_DATA/coco-mini/annotations/instances_train.json" \
        --out-dir "$VIDEO/splits"
      extra=(--select-json "$VIDEO/splits/instances_select.json")
    fi
    "$PY" scripts/make_video_sequences.py --split "$base" "${extra[@]}" --out "$VIDEO/$split" --n "$n" --frames 50 --seed 0
  fi
done
# run from VIDEO so that the reports name the set ("devval"), not a path of this machine
cd "$VIDEO"
for split in $SPLITS; do
  for follower in $FOLLOWERS; do
    echo "== $split $follower"
    policy=()
    [ -n "$POLICY" ] && policy=(--policy "$POLICY")
    name=$follower
    if [ "$follower" = tracker-oracle ]; then
      policy+=(--oracle "$ORACLE")
      name=$follower-${ORACLE//,/-}
    fi
    "$PICOSAM2" eval-video "$split" --follower "$follower" "${policy[@]}" --init click --threads "$THREADS" --quiet \
      --out "$OUT/results-$split-$name$SUFFIX.json"
  done
done
