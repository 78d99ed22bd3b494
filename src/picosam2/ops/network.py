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

    def __call__(self, windows: np.ndarray):
        from ..runtime import normalize

        w = np.asarray(windows)
        out = self.backend(normalize(w[None] if w.ndim == 3 else w, self.config))
        return out.logits, out.scores

    def run_batched(self, windows: np.ndarray, batch: int = 32):
        """:meth:`__call__` in batches; scores None when the network has none."""
        parts = [self(windows[i : i + batch]) for i in range(0, len(windows), batch)]
        logits = np.concatenate([p[0] for p in parts])
        scores = None if parts[0][1] is None else np.concatenate([p[1] for p in parts])
        return logits, scores


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
