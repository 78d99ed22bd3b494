"""Run the full benchmark and write benchmarks/results.json (the source of RESULTS.md).

.venv/bin/python benchmarks/run_bench.py            # = picosam2 bench --json --out benchmarks/results.json
"""

import sys
from pathlib import Path

from picosam2.cli import main

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "results.json"
    sys.exit(main(["bench", "--json", "--out", str(out), *sys.argv[1:]]))
