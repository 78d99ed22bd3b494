"""The ``picosam2`` command. Thin: each sub-command's arguments and entry point live in its room
(``<room>/cli.py`` with ``add_parser(subparsers)`` and ``run(args) -> int``)."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

#: sub-command name -> module providing add_parser/run. Modules are imported only to build the
#: parser, so they must not import heavy dependencies at module level.
COMMANDS = {
    "predict": "picosam2.commands",
    "info": "picosam2.commands",
    "eval": "picosam2.eval.cli",
    "train": "picosam2.train.cli",
    "teacher-cache": "picosam2.train.cli",
    "export": "picosam2.export.cli",
    "camera": "picosam2.camera.cli",
    "demo": "picosam2.demo.cli",
    "bench": "picosam2.bench.cli",
    "bundle": "picosam2.ops.cli",
    "device": "picosam2.ops.cli",
    "monitor": "picosam2.ops.cli",
}


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit status 2."""


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit status 2 (no usage dump)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = OneLineErrorParser(prog="picosam2", description="Promptable in-sensor segmentation (PicoSAM2).")
    parser.add_argument("--version", action="version", version=f"picosam2 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    seen = set()
    for module_name in dict.fromkeys(COMMANDS.values()):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that room is not built yet
            raise
        for name in module.add_parser(sub):
            seen.add(name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, FileNotFoundError, RuntimeError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"picosam2 {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
