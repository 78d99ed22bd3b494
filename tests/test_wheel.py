"""The release artefacts: `python -m build` makes an sdist and a wheel that carry what the package
needs at run time, and the wheel works installed on its own, offline.

The wheel is installed with ``--no-index --no-deps`` into a fresh virtual environment (no pip, no
project source on its path, run from a temporary folder). Its dependencies are not downloaded:
the distributions it needs are linked in from this environment's site-packages, resolved from
their metadata, so the fresh environment holds exactly the runtime dependencies: with torch for
``picosam2 predict`` on the shipped weights, without torch (not importable at all) for the ONNX path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement
from PIL import Image

pytest.importorskip("build")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = "dog.jpg"


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return out


def _one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def _requirements(name: str, extras: tuple[str, ...] = ()) -> set[str]:
    """``name`` and every distribution it needs at run time here, by metadata (markers evaluated)."""
    seen: set[str] = set()
    todo = [(name, extras)]
    while todo:
        dist_name, dist_extras = todo.pop()
        key = dist_name.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        for req in metadata.requires(dist_name) or []:
            r = Requirement(req)
            envs = [{"extra": e} for e in dist_extras] or [{"extra": ""}]
            if r.marker is None or any(r.marker.evaluate(env) for env in envs):
                todo.append((r.name, tuple(r.extras)))
    return seen


def _link_site(names: set[str], dst: Path) -> None:
    """Link the top-level files and folders of the installed distributions ``names`` into ``dst``."""
    dst.mkdir(parents=True)
    for name in names:
        d = metadata.distribution(name)
        base = Path(d.locate_file(""))
        for f in d.files or []:
            top = f.parts[0]
            if top.endswith(".pth") or top == ".." or top.startswith("__editable__"):
                continue
            src, link = base / top, dst / top
            if src.exists() and not link.exists():
                os.symlink(src, link)


def _venv(tmp: Path, deps: set[str]) -> Path:
    """A fresh venv without pip whose only packages are the linked ``deps``; returns its python."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
    _link_site(deps, tmp / "deps")
    (site / "deps.pth").write_text(str(tmp / "deps") + "\n")
    return py


def _install(py: Path, wheel: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-index", "--no-deps", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["HF_HUB_OFFLINE"] = "1"
    return env


def test_sdist_and_wheel_carry_the_package_data(dist):
    wheel = zipfile.ZipFile(_one(dist, "picosam2-1.0.0-py3-none-any.whl")).namelist()
    for needed in [
        "picosam2/weights/picosam2-coco-mini/model.safetensors",
        "picosam2/weights/picosam2-coco-mini/config.json",
        "picosam2/weights/picosam2-coco-mini/README.md",
        f"picosam2/samples/{SAMPLE}",
        "picosam2/calibration/coco_windows.npz",
        "picosam2/demo/static/index.html",
        "picosam2/demo/static/windows.js",
        "picosam2/train/configs/coco-mini.yaml",
        "picosam2/data/coco_mini/images_val.tsv",
        "picosam2/data/coco_mini/annotations_train.txt",
        "picosam2-1.0.0.dist-info/licenses/LICENSE",
    ]:
        assert needed in wheel, needed
    sdist = tarfile.open(_one(dist, "picosam2-1.0.0.tar.gz")).getnames()
    for needed in ["LICENSE", "CITATION.cff", "CHANGELOG.md", "Makefile", "scripts/make_coco_mini.py",
                   "src/picosam2/weights/picosam2-coco-mini/model.safetensors", "tests/conftest.py", "docs/evaluation.md"]:  # fmt: skip
        assert f"picosam2-1.0.0/{needed}" in sdist, needed


def test_wheel_predicts_in_a_fresh_venv(dist, tmp_path):
    py = _venv(tmp_path, _requirements("picosam2") - {"picosam2"})
    _install(py, _one(dist, "*.whl"))
    bindir = py.parent
    work = tmp_path / "work"
    work.mkdir()
    where = subprocess.run([str(py), "-c", "import picosam2; print(picosam2.__file__, picosam2.__version__)"],
                           capture_output=True, text=True, cwd=work, env=_env())  # fmt: skip
    assert where.returncode == 0 and where.stdout.split()[1] == "1.0.0"
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stdout  # the wheel's copy, not the source tree
    sample = subprocess.run([str(py), "-c", f"import picosam2, pathlib; print(pathlib.Path(picosam2.__file__).parent / 'samples' / '{SAMPLE}')"],
                            capture_output=True, text=True, cwd=work, env=_env()).stdout.strip()  # fmt: skip
    r = subprocess.run([str(bindir / "picosam2"), "predict", sample, "--point", "570,200", "--out", "mask.png"],
                       capture_output=True, text=True, cwd=work, env=_env(), timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    mask = np.asarray(Image.open(work / "mask.png"))
    assert mask.shape == (534, 800) and set(np.unique(mask)) <= {0, 255} and 2_000 < (mask > 0).sum() < 100_000
    info = subprocess.run(
        [str(bindir / "picosam2"), "info", "--json"], capture_output=True, text=True, cwd=work, env=_env()
    )
    assert info.returncode == 0 and json.loads(info.stdout.strip().splitlines()[-1])["params"] == 1_282_259


def test_wheel_runs_onnx_only_without_torch(dist, tmp_path):
    onnx_path = tmp_path / "model.onnx"
    r = subprocess.run([sys.executable, "-m", "picosam2.cli", "export", "--format", "onnx", "--out", str(onnx_path)],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    base = {"numpy", "pillow", "safetensors", "tqdm"}
    deps = set().union(*(_requirements(n) for n in [*base, "onnxruntime"]))
    assert "torch" not in deps
    py = _venv(tmp_path, deps)
    _install(py, _one(dist, "*.whl"))
    work = tmp_path / "work"
    work.mkdir()
    code = (
        "import sys, importlib.util\n"
        "assert importlib.util.find_spec('torch') is None, 'torch is reachable'\n"
        "import picosam2\n"
        f"p = picosam2.Predictor.from_pretrained({str(onnx_path)!r})\n"
        "import pathlib\n"
        f"r = p.predict(str(pathlib.Path(picosam2.__file__).parent / 'samples' / '{SAMPLE}'), points=[[570, 200]])\n"
        "assert 'torch' not in sys.modules\n"
        "print(int(r.masks[0].sum()), r.masks.shape)\n"
    )
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=work, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    pixels, shape = r.stdout.split(" ", 1)
    assert shape.strip() == "(1, 534, 800)" and 2_000 < int(pixels) < 100_000
