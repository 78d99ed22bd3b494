"""Make `picosam2 eval` reports portable before they are committed: paths under the data root become
``${PICOSAM2_DATA}/...``, paths in the repository become relative, and other absolute paths (a
temporary export) keep their file name only. Figures are not touched.

    python scripts/portable_reports.py benchmarks/dev-val/*.json
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def portable(value, data_root: str | None):
    if isinstance(value, dict):
        return {k: portable(v, data_root) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v, data_root) for v in value]
    if isinstance(value, str) and value.startswith("/"):
        if data_root and (value == data_root or value.startswith(data_root + "/")):
            return "${PICOSAM2_DATA}" + value[len(data_root) :]
        root = str(ROOT)
        if value.startswith(root + "/"):
            return value[len(root) + 1 :]
        return Path(value).name
    return value


def main(paths: list[str]) -> int:
    env = os.environ.get("PICOSAM2_DATA")
    data_root = str(Path(env).resolve()) if env else None
    for p in map(Path, paths):
        report = json.loads(p.read_text())
        fixed = portable(report, data_root)
        if fixed != report:
            fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
            with os.fdopen(fd, "w") as f:
                json.dump(fixed, f)
                f.write("\n")
            os.chmod(tmp, 0o644)
            os.replace(tmp, p)
            print(f"made portable: {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
