import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    # ruff is a test dependency (the test extra): its absence is a broken install, not a skip
    ruff = str(Path(sys.executable).parent / "ruff")
    ruff = ruff if Path(ruff).exists() else shutil.which("ruff")
    assert ruff, "ruff is not installed: pip install -e '.[test]'"
    r = subprocess.run([ruff, "check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]
    r = subprocess.run(
        [ruff, "format", "--check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True
    )
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
