#!/usr/bin/env bash
# Run the test suite one file per pytest process: each file starts from a fresh interpreter, so the
# native libraries one file loads (torch, onnxruntime, OpenVINO, MCT, PyAV) never share a process
# with another file's. Extra pytest arguments are passed on (e.g. -m "not timing").
#
# Files run PICOSAM2_TEST_JOBS at a time (default 2), the longest first so that the short ones fill
# in around them. The browser files (Chromium) run last, one at a time, with only short files
# beside them. Each file's output is printed as one block when that file finishes. OpenMP's
# threads (torch's) sleep while they wait instead of spinning (OMP_WAIT_POLICY=PASSIVE, unless set):
# spinning threads of two files on the same cores slow each other down several times over.
# Usage: scripts/test_by_file.sh PYTHON [PYTEST_ARGS...]
set -uo pipefail
PY="$1"; shift
JOBS="${PICOSAM2_TEST_JOBS:-2}"
# waiting for whichever file ends first needs bash 5.1 (wait -n -p); older shells run one at a time
if [ $(( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] )) -lt 501 ]; then JOBS=1; fi
# the longest files first (pytest --durations), in this order; the others follow by name
LONG=(
    tests/test_export_imx500.py tests/test_ops.py tests/test_track_soak.py tests/test_convert.py
    tests/test_bench.py tests/test_camera.py tests/test_models.py tests/test_runtime.py
    tests/test_field_monitor.py tests/test_wheel.py tests/test_camera_collect.py tests/test_scale.py
    tests/test_train_run.py tests/test_export_onnx.py tests/test_field_gate.py tests/test_demo_api.py
    tests/test_video_eval.py tests/test_train_on_device.py tests/test_field_finetune.py tests/test_hostile.py
)
# timing-sensitive browser files: one at a time, after the others, beside short files only
BROWSER=(tests/test_demo_browser.py tests/test_demo_video.py tests/test_demo_annotate_browser.py)
# short files for the other core meanwhile
BESIDE=(
    tests/test_data.py tests/test_data_paths.py tests/test_prompts.py tests/test_eval_metrics.py
    tests/test_lint.py tests/test_docs_figures.py tests/test_coco_mini.py tests/test_export_tflite.py
    tests/test_field_labels.py tests/test_demo_annotate.py tests/test_eval_cli.py tests/test_progress.py
    tests/test_eval_protocols.py tests/test_demo_js.py tests/test_track.py tests/test_prompts_bounded.py
)

all=(tests/test_*.py)
first=() browser=() beside=()
for f in "${LONG[@]}"; do [ -e "$f" ] && first+=("$f"); done
for f in "${BROWSER[@]}"; do [ -e "$f" ] && browser+=("$f"); done
for f in "${BESIDE[@]}"; do [ -e "$f" ] && beside+=("$f"); done
for f in "${all[@]}"; do
    case " ${LONG[*]} ${BROWSER[*]} ${BESIDE[*]} " in *" $f "*) ;; *) first+=("$f") ;; esac
done

logs=$(mktemp -d "${TMPDIR:-/tmp}/picosam2-tests.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$logs"; exit 130' INT TERM
failed=()
declare -A running=()
start=$(date +%s)

run_one() {  # FILE LOG: the file's pytest run; its exit status, wall and CPU seconds go to LOG.rc
    local TIMEFORMAT="%R %U %S" rc
    { time "$PY" -m pytest -q -p no:cacheprovider "${@:3}" "$1" >"$2" 2>&1; rc=$?; } 2>"$2.time"
    echo "$rc $(cat "$2.time")" >"$2.rc"
}

cpu_total=0
report() {  # FILE LOG: print the file's output as one block, note a failure
    local rc wall user sys cpu
    read -r rc wall user sys <"$2.rc"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f", u + s }')
    cpu_total=$((cpu_total + cpu))
    echo "=== $1 (${wall%.*} s, CPU ${cpu} s) ==="
    cat "$2"
    # 5: every test of the file deselected by the marker expression
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then failed+=("$1 (exit $rc)"); fi
}

start_file() {  # FILE: start its run; DONE is set to the pid
    run_one "$1" "$logs/$(basename "$1").log" "${ARGS[@]}" &
    running[$!]="$1"
    DONE=$!
}

wait_one() {  # wait for any running file, report it; DONE is set to its pid
    local pid
    if [ "${#running[@]}" -eq 1 ]; then
        pid="${!running[*]}"
        wait "$pid"
    else
        wait -n -p pid "${!running[@]}"
    fi
    report "${running[$pid]}" "$logs/$(basename "${running[$pid]}").log"
    unset "running[$pid]"
    DONE=$pid
}

ARGS=("$@")
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
for f in "${first[@]}"; do
    while [ "${#running[@]}" -ge "$JOBS" ]; do wait_one; done
    start_file "$f"
done
while [ "${#running[@]}" -gt 0 ]; do wait_one; done
b=0 s=0 browser_pid=
while [ "$b" -lt "${#browser[@]}" ] || [ "$s" -lt "${#beside[@]}" ] || [ "${#running[@]}" -gt 0 ]; do
    if [ -z "$browser_pid" ] && [ "$b" -lt "${#browser[@]}" ]; then
        start_file "${browser[$b]}"
        browser_pid=$DONE b=$((b + 1))
    elif [ "${#running[@]}" -lt "$JOBS" ] && [ "$s" -lt "${#beside[@]}" ]; then
        start_file "${beside[$s]}"
        s=$((s + 1))
    else
        wait_one
        [ "$DONE" != "$browser_pid" ] || browser_pid=
    fi
done
rm -rf "$logs"
echo "test files: ${#all[@]}, failed: ${#failed[@]}, $(( $(date +%s) - start )) s (CPU ${cpu_total} s)"
for f in "${failed[@]}"; do echo "FAILED: $f"; done
[ "${#failed[@]}" -eq 0 ]
