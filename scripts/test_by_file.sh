#!/usr/bin/env bash
# Run the test suite one file per pytest process: each file starts from a fresh interpreter, so the
# native libraries one file loads (torch, onnxruntime, OpenVINO, MCT, PyAV) never share a process
# with another file's. Extra pytest arguments are passed on (e.g. -m "not timing").
#
# Files run PICOSAM2_TEST_JOBS at a time (default 2), the longest first so that the short ones fill
# in around them; the browser files (Chromium) run afterwards, one at a time, with nothing else
# beside them. Each file's output is printed as one block when that file finishes. OpenMP's
# threads (torch's) sleep while they wait instead of spinning (OMP_WAIT_POLICY=PASSIVE, unless set):
# spinning threads of two files on the same cores slow each other down several times over.
# Usage: scripts/test_by_file.sh PYTHON [PYTEST_ARGS...]
set -uo pipefail
PY="$1"; shift
JOBS="${PICOSAM2_TEST_JOBS:-2}"
# the longest files first (pytest --durations), in this order; the others follow by name
LONG=(
    tests/test_export_imx500.py tests/test_ops.py tests/test_track_soak.py tests/test_bench.py
    tests/test_convert.py tests/test_field_monitor.py tests/test_export_onnx.py tests/test_train_run.py
    tests/test_demo_api.py tests/test_wheel.py tests/test_field_gate.py tests/test_hostile.py
)
# timing-sensitive browser files: alone, after the others
ALONE=(tests/test_demo_browser.py tests/test_demo_annotate_browser.py tests/test_demo_video.py)

all=(tests/test_*.py)
first=() rest=() last=()
for f in "${LONG[@]}"; do [ -e "$f" ] && first+=("$f"); done
for f in "${ALONE[@]}"; do [ -e "$f" ] && last+=("$f"); done
for f in "${all[@]}"; do
    case " ${LONG[*]} ${ALONE[*]} " in *" $f "*) ;; *) rest+=("$f") ;; esac
done

logs=$(mktemp -d "${TMPDIR:-/tmp}/picosam2-tests.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$logs"; exit 130' INT TERM
failed=()
declare -A running=()
start=$(date +%s)

run_one() {  # FILE LOG: the file's pytest run; its exit status and seconds go to LOG.rc
    local t0
    t0=$(date +%s)
    "$PY" -m pytest -q -p no:cacheprovider "${@:3}" "$1" >"$2" 2>&1
    echo "$? $(( $(date +%s) - t0 ))" >"$2.rc"
}

report() {  # FILE LOG: print the file's output as one block, note a failure
    local rc secs
    read -r rc secs <"$2.rc"
    echo "=== $1 (${secs} s) ==="
    cat "$2"
    # 5: every test of the file deselected by the marker expression
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then failed+=("$1 (exit $rc)"); fi
}

wait_one() {  # wait for any running file and report it
    local pid
    wait -n -p pid "${!running[@]}"
    report "${running[$pid]}" "$logs/$(basename "${running[$pid]}").log"
    unset "running[$pid]"
}

run_files() {  # MAX FILE...: run the files, at most MAX at a time
    local max=$1 f
    shift
    for f in "$@"; do
        while [ "${#running[@]}" -ge "$max" ]; do wait_one; done
        run_one "$f" "$logs/$(basename "$f").log" "${ARGS[@]}" &
        running[$!]="$f"
    done
    while [ "${#running[@]}" -gt 0 ]; do wait_one; done
}

ARGS=("$@")
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
run_files "$JOBS" "${first[@]}" "${rest[@]}"
[ "${#last[@]}" -gt 0 ] && run_files 1 "${last[@]}"
rm -rf "$logs"
echo "test files: ${#all[@]}, failed: ${#failed[@]}, $(( $(date +%s) - start )) s"
for f in "${failed[@]}"; do echo "FAILED: $f"; done
[ "${#failed[@]}" -eq 0 ]
