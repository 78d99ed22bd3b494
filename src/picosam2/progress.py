"""Progress bars for long work: shown on a terminal, silent with ``--quiet`` or when stderr is
not a terminal (a pipe, a log file, a test), so logs never fill with carriage returns."""

from __future__ import annotations

import sys


def progress_wanted(quiet: bool = False) -> bool:
    """Whether to draw progress: not ``quiet`` and stderr is a terminal."""
    if quiet:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def progress_bar(iterable=None, *, total=None, desc: str | None = None, unit: str = "it", enabled: bool = True):
    """A ``tqdm`` bar on stderr, disabled unless ``enabled`` and stderr is a terminal.

    Args:
        iterable: what to iterate over (``None``: call ``update`` yourself).
        total: the number of steps when ``iterable`` has no length.
        desc: the label in front of the bar.
        unit: the name of one step (``"window"``, ``"inst"``...).
        enabled: ``False`` for ``--quiet``; ``True`` still stays silent off a terminal.
    """
    from tqdm import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not (enabled and progress_wanted()),
        leave=False,
        dynamic_ncols=True,
    )
