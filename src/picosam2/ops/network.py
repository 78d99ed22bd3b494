"""The bundle's CPU network (the INT8 ONNX) through onnxruntime, without torch: what a device
runs for its health check and as the CPU fallback of the sensor network."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


class SlotNetwork:
    """uint8 windows (N, S, S, 3) -> (logits (N, S, S), scores (N,) or None), through
    :class:`picosam2.runtime.OnnxBackend` (onnxruntime, no torch).

    ``onnx_path``: the slot's ONNX PicoSAM2 (fp32 or INT8 QDQ); ``config_path``: its
    ``config.json`` (input size, mean, std, quality head). ``scores`` is the network's predicted
    mask IoU when it has a quality head."""

    def __init__(self, onnx_path: str | os.PathLike, config_path: str | os.PathLike, threads: int = 1):
        from ..models.config import PicoSAM2Config
        from ..runtime import OnnxBackend

        self.config = PicoSAM2Config.from_dict(json.loads(Path(config_path).read_text()))
        self.backend = OnnxBackend(onnx_path, config=self.config, threads=threads)

    def __call__(self, windows: np.ndarray, batch_size: int | None = None):
        """Run uint8 windows (N, S, S, 3) or one (S, S, 3) through :func:`picosam2.runtime.run_crops`,
        ``batch_size`` at a time (``None``: all at once); scores ``None`` when the network has none."""
        from ..runtime import run_crops

        out = run_crops(self.backend, windows, batch_size)
        return out.logits, out.scores
