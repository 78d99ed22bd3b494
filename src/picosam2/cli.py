"""The ``picosam2`` command. Thin: each sub-command's arguments and entry point live in its room
(``<room>/cli.py`` with ``add_parser(subparsers)`` and ``run(args) -> int``)."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from .errors import PicoSAM2Error

#: sub-command name -> module providing add_parser/run. Modules are imported only to build the
#: parser, so they must not import heavy dependencies at module level.
COMMANDS = {
    "predict": "picosam2.commands",
    "info": "picosam2.commands",
    "eval": "picosam2.eval.cli",
    "eval-video": "picosam2.eval.video_cli",
    "train": "picosam2.train.cli",
    "teacher-cache": "picosam2.train.cli",
    "calibrate-scores": "picosam2.train.cli",
    "tune-quality-head": "picosam2.train.cli",
    "export": "picosam2.export.cli",
    "convert": "picosam2.models.convert",
    "camera": "picosam2.camera.cli",
    "demo": "picosam2.demo.cli",
    "bench": "picosam2.bench.cli",
    "track": "picosam2.track.cli",
    "bundle": "picosam2.ops.cli",
    "device": "picosam2.ops.cli",
    "monitor": "picosam2.ops.cli",
    "finetune": "picosam2.train.cli",
    "gate": "picosam2.ops.gate",
}


class OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit status 2 (no usage dump)."""

    def error(self, message: str):
        """Print ``message`` as one line on stderr and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``picosam2`` argument parser with every sub-command of :data:`COMMANDS`."""
    from . import __version__

    parser = OneLineErrorParser(prog="picosam2", description="Promptable in-sensor segmentation (PicoSAM2).")
    parser.add_argument("--version", action="version", version=f"picosam2 {__version__}")
    parser.add_argument("--debug", action="store_true", help="print the full traceback of any error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module_name in dict.fromkeys(COMMANDS.values()):
        importlib.import_module(module_name).add_parser(sub)
    return parser


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the user's to fix (printed as one line, exit 2) rather than a bug:
    a :class:`PicoSAM2Error` or an ``OSError`` on a file (missing, unreadable, disk full). Any
    other exception, a plain ``ValueError`` or ``RuntimeError`` included, is a bug."""
    return isinstance(exc, (PicoSAM2Error, OSError))


def main(argv: list[str] | None = None) -> int:
    """The ``picosam2`` command.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 for a user error (one line on stderr; ``--debug`` gives
        the traceback), 130 when interrupted; a bug raises with its traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug or not is_user_error(exc):
            raise
        text = str(exc).strip()
        if isinstance(exc, OSError) and exc.strerror and exc.filename:
            text = f"{exc.strerror}: {exc.filename}"
        msg = text.splitlines()[0] if text else type(exc).__name__
        print(f"picosam2 {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
