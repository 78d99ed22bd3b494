import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff not installed")
    r = subprocess.run([ruff, "check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]


def test_inference_never_imports_training():
    """Inference rooms must not import picosam2.train (the Lightning/teacher stack)."""
    code = (
        "import sys, picosam2, picosam2.predictor, picosam2.prompts, picosam2.models, picosam2.cli\n"
        "picosam2.cli.build_parser()\n"
        "bad = [m for m in sys.modules if m.startswith('picosam2.train.') and m != 'picosam2.train.cli'"
        " or m in ('lightning', 'transformers', 'pytorch_lightning')]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
