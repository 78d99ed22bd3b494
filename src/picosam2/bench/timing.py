"""Timing helpers: median wall time after warm-up, thread control."""

from __future__ import annotations

import os
import statistics
import time
from contextlib import contextmanager


def median_ms(
    fn, repeats: int = 50, warmup: int = 10, max_seconds: float | None = None, warmup_seconds: float = 0.0
) -> float:
    """Median wall time of ``fn()`` in milliseconds after at least ``warmup`` calls and at least
    ``warmup_seconds`` of warm-up. Stops early after ``max_seconds`` of timed calls (at least 3 are
    always timed)."""
    start = time.perf_counter()
    done = 0
    while done < warmup or time.perf_counter() - start < warmup_seconds:
        fn()
        done += 1
    times = []
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if max_seconds is not None and len(times) >= 3 and time.perf_counter() - start > max_seconds:
            break
    return statistics.median(times) * 1e3


@contextmanager
def torch_threads(n: int):
    """Context manager: run with ``n`` torch intra-op threads, then restore the previous count."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def cpu_name() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (the platform's processor string elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU feature flags from ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
