"""Baseline window models: what the metric gives for free, without looking at the pixels.

* ``whole-window``: every pixel of the window is the object (logit +10 everywhere).
* ``disk``: a centred disk of radius ``window/4`` (24 px of the 96 x 96 window, i.e. half the
  window's width across): logit +10 inside, -10 outside. A pixel ``(u, v)`` (centre
  ``(u + 0.5, v + 0.5)``) is inside when its centre is within the radius of the window centre
  ``(48, 48)``.

Both go through the same harness as a real model (same windows, same paste-back, same IoU), so
their numbers are the floor a trained model must beat. They are backends in the
:class:`picosam2.runtime.Backend` sense (float32 NCHW batch -> :class:`~picosam2.runtime.RuntimeOutput`).
"""

from __future__ import annotations

import numpy as np

from ..errors import UsageError
from ..models.config import PicoSAM2Config
from ..prompts import MODEL_SIZE
from ..runtime import RuntimeOutput

BASELINES = ("whole-window", "disk")


class WholeWindowBackend:
    """Every window pixel is the object."""

    name = "whole-window"
    config = PicoSAM2Config(arch="whole-window")
    metadata: dict = {}

    def __call__(self, batch: np.ndarray) -> RuntimeOutput:
        """Logits that put every pixel of every window in the mask."""
        n, _, h, w = batch.shape
        return RuntimeOutput(np.full((n, h, w), 10.0, dtype=np.float32))


def disk_logits(size: int = MODEL_SIZE, radius_fraction: float = 0.25) -> np.ndarray:
    """(size, size) logits: +10 on the centred disk of radius ``radius_fraction * size``, -10 elsewhere."""
    c = np.arange(size) + 0.5
    d2 = (c[None, :] - size / 2) ** 2 + (c[:, None] - size / 2) ** 2
    return np.where(d2 <= (radius_fraction * size) ** 2, 10.0, -10.0).astype(np.float32)


class DiskBackend:
    """A centred disk of radius a quarter of the window."""

    name = "disk"
    config = PicoSAM2Config(arch="disk")
    metadata: dict = {}

    def __init__(self, radius_fraction: float = 0.25):
        self.radius_fraction = radius_fraction

    def __call__(self, batch: np.ndarray) -> RuntimeOutput:
        """Logits of the centred disk, the same for every window."""
        n, _, h, w = batch.shape
        return RuntimeOutput(np.broadcast_to(disk_logits(h, self.radius_fraction), (n, h, w)).copy())


def baseline_predictor(name: str):
    """A :class:`picosam2.Predictor` running the named baseline."""
    from ..predictor import Predictor

    if name == "whole-window":
        return Predictor(backend=WholeWindowBackend())
    if name == "disk":
        return Predictor(backend=DiskBackend())
    raise UsageError(f"unknown baseline {name!r}; use one of {', '.join(BASELINES)}")
