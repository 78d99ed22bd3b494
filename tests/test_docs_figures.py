"""Every marked figure in the docs equals its results file (scripts/render_docs.py), and the
product docs speak of the product, not of how it was developed."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _render_docs():
    spec = importlib.util.spec_from_file_location("render_docs", ROOT / "scripts" / "render_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rd = _render_docs()


def _docs() -> list[Path]:
    """The rendered docs git tracks (what a clone holds); all of them outside a checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return rd.doc_files()
    tracked = {ROOT / n for n in out.decode().split("\0") if n}
    return [p for p in rd.doc_files() if p in tracked]


@pytest.mark.parametrize("path", _docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_figures_in_docs_equal_their_results_files(path):
    diffs = rd.differences(path.read_text())
    assert not diffs, "run `python scripts/render_docs.py`:\n" + "\n".join(
        f"{spec}: written {written!r}, results file {want!r}" for spec, written, want in diffs
    )


def test_the_headline_figures_are_rendered_not_typed():
    """The figures a reader meets first are marked, so they cannot drift from the results files."""
    readme = (ROOT / "README.md").read_text()
    card = (ROOT / "src/picosam2/weights/picosam2-coco-mini/README.md").read_text()
    for spec in ["devval/paper:miou|pct2", "devval/full-auto:miou|pct2"]:
        assert f"<!-- fig:{spec} -->" in readme and f"<!-- fig:{spec} -->" in card, spec
    assert "params|int -->" in readme and "imx500_memory.memory_usage_mb -->" in readme
    assert rd.figure("devval/paper:miou|pct2") == "45.76"
    assert rd.figure("bench/results-2026-12-02-fast-click:params|int") == "1,282,259"


def test_a_changed_figure_is_caught_and_rerendered():
    text = "mIoU <!-- fig:devval/paper:miou|pct2 -->45.00<!-- /fig --> on dev-val"
    assert rd.differences(text) == [("devval/paper:miou|pct2", "45.00", rd.figure("devval/paper:miou|pct2"))]
    fixed = rd.render(text)
    assert not rd.differences(fixed) and fixed.endswith("<!-- /fig --> on dev-val")
    for bad in ["<!-- fig:devval/nope:miou -->1<!-- /fig -->", "<!-- fig:devval/paper:nokey -->1<!-- /fig -->"]:
        with pytest.raises(rd.FigureError):
            rd.render(bad)


def test_formats():
    f = rd._format
    assert (f(0.457611, "pct2"), f(1282259, "int"), f(5160740, "MB"), f(1292.7, "x"), f(9.65, "x1")) == (
        "45.76", "1,282,259", "5.16", "1,293x", "9.7x",
    )  # fmt: skip
    assert rd._keys("auto_click_ms.[auto:4].onnx_int8") == ["auto_click_ms", "auto:4", "onnx_int8"]


#: words about how the project was made, not about the product
DEVELOPMENT_WORDS = re.compile(
    r"\bsessions?\b(?! of the)|this machine|\bissue \d+|\bin the issue\b|(?-i:OWNER/NAME)|previous (?:run|session)",
    re.I,
)
PRODUCT_DOCS = ["README.md", "CHANGELOG.md", "NOTICE.md", "docs/*.md", "benchmarks/RESULTS.md",
                "src/picosam2/**/README.md"]  # fmt: skip


def test_product_docs_do_not_speak_of_their_development():
    found = []
    for pattern in PRODUCT_DOCS:
        for p in sorted(ROOT.glob(pattern)):
            for n, line in enumerate(p.read_text().splitlines(), 1):
                if m := DEVELOPMENT_WORDS.search(line):
                    found.append(f"{p.relative_to(ROOT)}:{n}: {m.group(0)!r} in {line.strip()[:90]}")
    assert not found, "\n".join(found)


def test_the_quoted_benchmark_run_is_of_the_shipped_network():
    """The README's speed table and the model card quote a bench run: it must be of the network that ships."""
    from picosam2.models import from_pretrained

    model = from_pretrained()
    params = sum(p.numel() for p in model.parameters())
    assert rd.figure("bench/results-2026-12-02-fast-click:params|int") == f"{params:,}"
    # the dev-val reports were measured on these weights
    assert rd.figure("devval/paper:weights_metadata.recipe") == model.weights_info["recipe"]
    assert rd.figure("devval/full-auto:weights_metadata.recipe") == model.weights_info["recipe"]
