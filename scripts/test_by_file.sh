#!/usr/bin/env bash
# Run the test suite one file per pytest process: each file starts from a fresh interpreter, so the
# native libraries one file loads (torch, onnxruntime, OpenVINO, MCT, PyAV) never share a process
# with another file's. Extra pytest arguments are passed on (e.g. -m "not timing").
# Usage: scripts/test_by_file.sh PYTHON [PYTEST_ARGS...]
set -uo pipefail
PY="$1"; shift
failed=()
start=$(date +%s)
for f in tests/test_*.py; do
    "$PY" -m pytest -q -p no:cacheprovider "$@" "$f"
    rc=$?
    # 5: every test of the file deselected by the marker expression
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then failed+=("$f (exit $rc)"); fi
done
echo "test files: $(ls tests/test_*.py | wc -l), failed: ${#failed[@]}, $(( $(date +%s) - start )) s"
for f in "${failed[@]}"; do echo "FAILED: $f"; done
[ "${#failed[@]}" -eq 0 ]
