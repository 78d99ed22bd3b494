"""Configs, scripts and docs find data through the data root, never through a path of one machine."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from picosam2.train.config import load_config, shipped_configs

ROOT = Path(__file__).resolve().parents[1]

#: what a path of one particular machine looks like in text
MACHINE_PATH = re.compile(r"\.\./shared/|/work/(?:main|shared)\b|/home/\w+/|/Users/\w+/")


def _tracked() -> set[Path] | None:
    """The files git tracks (what a clone holds), or None outside a git checkout (an sdist)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {ROOT / name for name in out.decode().split("\0") if name}


def _text_files():
    tracked = _tracked()
    globs = ["README.md", "CHANGELOG.md", "Makefile", "docs/**/*.md", "scripts/*", "benchmarks/*.py", "benchmarks/*.md", "benchmarks/**/*.json",
             "deploy/**/*", "src/picosam2/**/*.py", "src/picosam2/**/*.yaml", "src/picosam2/**/*.md",
             "src/picosam2/demo/static/*.js", "src/picosam2/demo/static/*.html"]  # fmt: skip
    for pattern in globs:
        for p in sorted(ROOT.glob(pattern)):
            if p.is_file() and (tracked is None or p in tracked):
                yield p


def test_no_machine_paths_in_configs_scripts_or_docs():
    found, files = [], list(_text_files())
    assert len(files) > 50  # the scan sees the repository
    for p in files:
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{p.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not found, "\n".join(found)


def test_machine_path_pattern_catches_what_it_should():
    assert MACHINE_PATH.search("--images ../shared/data/coco-mini/images/val")
    assert MACHINE_PATH.search('default="/work/shared/data/coco-mini"')
    assert not MACHINE_PATH.search('"${PICOSAM2_DATA}/coco-mini/images/val"')


@pytest.mark.parametrize("name", shipped_configs())
def test_shipped_configs_take_data_from_the_data_root(name, tmp_path, monkeypatch):
    monkeypatch.setenv("PICOSAM2_DATA", str(tmp_path))
    cfg = load_config(name)
    paths = [cfg.data.train_annotations, *cfg.data.train_images, cfg.data.val_annotations or "", *cfg.data.val_images]
    under_root = [p for p in paths if p.startswith(str(tmp_path))]
    assert not [p for p in paths if "PICOSAM2_DATA" in p]
    if name.startswith("coco-mini"):
        assert under_root and all(p.startswith(f"{tmp_path}/coco-mini/") for p in under_root)
    if name in ("paper", "gt-only"):
        assert cfg.data.train_annotations == f"{tmp_path}/coco/annotations/instances_train2017.json"


def test_data_root_in_overrides_and_unset(tmp_path, monkeypatch):
    monkeypatch.setenv("PICOSAM2_DATA", str(tmp_path))
    cfg = load_config("paper", ['data.train_images=["${PICOSAM2_DATA}/x", plain/y]', "data.packed=${PICOSAM2_DATA}/p"])
    assert (cfg.data.train_images, cfg.data.packed) == ([f"{tmp_path}/x", "plain/y"], f"{tmp_path}/p")
    monkeypatch.delenv("PICOSAM2_DATA")
    # unset: the placeholder stays, so the path fails where it is opened and names the variable
    assert load_config("coco-mini").data.train_annotations.startswith("${PICOSAM2_DATA}/coco-mini/")
