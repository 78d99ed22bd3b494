"""Timing checks as ratios of durations measured in the same run (tests marked ``timing``).

A wall-clock bound in seconds fails on a loaded or slow machine and passes on a fast one
whatever the code does; a ratio to a reference operation timed moments before, on the same
machine and load, does neither. Each side is the best of a few repetitions, which removes most
of the scheduling noise. ``make test`` deselects these checks (``-m "not timing"``); ``make test-timing`` runs them.
"""

from __future__ import annotations

import time


def best_of(fn, repeat: int = 3) -> float:
    """The shortest of ``repeat`` wall-clock durations of ``fn()``, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def assert_ratio(measured: float, reference: float, at_most: float, what: str) -> None:
    """``measured <= at_most * reference``, with both durations in the message."""
    assert measured <= at_most * reference, (
        f"{what}: {measured * 1e3:.1f} ms, more than {at_most:g} x the reference {reference * 1e3:.1f} ms"
    )
