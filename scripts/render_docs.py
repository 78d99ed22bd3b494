"""Fill the figures of the docs from the results files they come from.

A figure in a Markdown file is written as a marked region::

    <!-- fig:devval/paper:miou|pct2 -->45.76<!-- /fig -->

``SOURCE:KEY[|FORMAT]`` names the value: SOURCE is a results file of the repository, KEY a dotted
path into it, FORMAT how it is printed. This script rewrites the text between the markers; run
with ``--check`` it changes nothing and exits 1 when a figure differs from its source (the test
suite runs the same check). Sources:

- ``devval/NAME``: ``benchmarks/dev-val/NAME.json`` (``scripts/eval_dev_val.sh``: ``picosam2 eval`` reports)
- ``select/NAME``: ``benchmarks/select/NAME.json`` (figures on the select split, which chose settings)
- ``bench/NAME``: ``benchmarks/NAME.json`` (``picosam2 bench --json`` runs)
- ``config/NAME``: ``src/picosam2/train/configs/NAME.yaml`` (training recipes)
- ``weights``: the shipped weights' ``config.json``; ``weights-meta``: their safetensors metadata

Formats: ``pct2`` / ``pct1`` (a fraction as a percentage, 2 or 1 decimals), ``int`` (thousands
separated: 1,282,259), ``M1`` (millions, 1 decimal), ``MB`` (bytes as MB, 2 decimals), ``x`` (a ratio: 1,293x), ``x1`` (9.7x), ``yesno`` (a flag), or
any Python format spec (``.2f``, ``,.0f``); none: the value as it is. A KEY part that contains dots
(``auto:4``) is written in square brackets: ``auto_click_ms.[auto:4].onnx_int8``.

    python scripts/render_docs.py            # rewrite the docs in place
    python scripts/render_docs.py --check    # exit 1 and list the figures that differ
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
from functools import cache
from pathlib import Path

from picosam2.io_utils import write_atomic

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "picosam2" / "weights" / "picosam2-coco-mini"
#: the files whose figures are rendered
DOCS = ["README.md", "docs/*.md", "benchmarks/RESULTS.md", "src/picosam2/weights/README.md",
        "src/picosam2/weights/picosam2-coco-mini/README.md"]  # fmt: skip
FIG = re.compile(r"<!-- fig:(?P<spec>[^>]+?) -->(?P<value>.*?)<!-- /fig -->", re.S)


class FigureError(Exception):
    """A marker names a source, key or format that does not exist."""


@cache
def _source(name: str):
    if name.startswith("devval/"):
        path = ROOT / "benchmarks" / "dev-val" / f"{name[7:]}.json"
    elif name.startswith("select/"):
        path = ROOT / "benchmarks" / "select" / f"{name[7:]}.json"
    elif name.startswith("bench/"):
        path = ROOT / "benchmarks" / f"{name[6:]}.json"
    elif name.startswith("config/"):
        import yaml

        path = ROOT / "src" / "picosam2" / "train" / "configs" / f"{name[7:]}.yaml"
        if not path.is_file():
            raise FigureError(f"no results file {path.relative_to(ROOT)}")
        return yaml.safe_load(path.read_text())
    elif name == "weights":
        path = WEIGHTS / "config.json"
    elif name == "weights-meta":
        with open(WEIGHTS / "model.safetensors", "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            return json.loads(f.read(n))["__metadata__"]
    else:
        raise FigureError(f"unknown source {name!r}")
    if not path.is_file():
        raise FigureError(f"no results file {path.relative_to(ROOT)}")
    return json.loads(path.read_text())


def _keys(key: str) -> list[str]:
    return [a or b for a, b in re.findall(r"\[([^\]]+)\]|([^.\[\]]+)", key)]


def _format(value, fmt: str) -> str:
    if fmt == "":
        return str(value)
    if fmt in ("pct2", "pct1"):
        return f"{100 * float(value):.{fmt[-1]}f}"
    if fmt == "int":
        return f"{int(value):,}"
    if fmt == "yesno":
        return "yes" if value else "no"
    if fmt == "M1":
        return f"{float(value) / 1e6:.1f}"
    if fmt == "MB":
        return f"{float(value) / 1e6:.2f}"
    if fmt == "x":
        return f"{float(value):,.0f}x"
    if fmt == "x1":
        return f"{float(value):.1f}x"
    try:
        return format(float(value) if isinstance(value, str) else value, fmt)
    except (TypeError, ValueError) as exc:
        raise FigureError(f"bad format {fmt!r} for {value!r}") from exc


def figure(spec: str) -> str:
    """The text of figure ``spec`` (``SOURCE:KEY[|FORMAT]``) from its results file."""
    body, _, fmt = spec.partition("|")
    source, sep, key = body.partition(":")
    if not sep:
        raise FigureError(f"figure {spec!r} is not SOURCE:KEY[|FORMAT]")
    value = _source(source.strip())
    for part in _keys(key.strip()):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise FigureError(f"figure {spec!r}: no key {part!r} in {source}")
    return _format(value, fmt.strip())


def render(text: str) -> str:
    """``text`` with every marked figure filled from its source."""
    return FIG.sub(lambda m: f"<!-- fig:{m['spec']} -->{figure(m['spec'])}<!-- /fig -->", text)


def differences(text: str) -> list[tuple[str, str, str]]:
    """(spec, written, from the source) for every marked figure that differs."""
    return [(m["spec"], m["value"], f) for m in FIG.finditer(text) if (f := figure(m["spec"])) != m["value"]]


def doc_files() -> list[Path]:
    return sorted({p for pattern in DOCS for p in ROOT.glob(pattern) if p.is_file()})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 when a figure differs")
    args = ap.parse_args(argv)
    bad, errors = 0, []

    def fill(path: Path, m: re.Match) -> str:
        nonlocal bad
        try:
            want = figure(m["spec"])
        except FigureError as exc:
            errors.append(f"{path.relative_to(ROOT)}: {exc}")
            return m[0]
        if want != m["value"]:
            bad += 1
            print(f"{path.relative_to(ROOT)}: {m['spec']}: written {m['value']!r}, results file says {want!r}")
        return f"<!-- fig:{m['spec']} -->{want}<!-- /fig -->"

    for path in doc_files():
        text = path.read_text()
        new = FIG.sub(lambda m, path=path: fill(path, m), text)
        if new != text and not args.check:
            write_atomic(path, lambda tmp, new=new: Path(tmp).write_text(new))
    for line in dict.fromkeys(errors):
        print(line, file=sys.stderr)
    if errors:
        return 2
    return 1 if args.check and bad else 0


if __name__ == "__main__":
    sys.exit(main())
