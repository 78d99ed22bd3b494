"""The bundle's CPU network (the INT8 ONNX) through onnxruntime, without torch: what a device
runs for its health check and as the CPU fallback of the sensor network."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


class SlotNetwork:
    """uint8 windows (N, S, S, 3) -> (logits (N, S, S), scores (N,) or None).

    ``onnx_path``: an ONNX PicoSAM2 (fp32 or INT8 QDQ) taking normalised NCHW float input;
    ``config_path``: its ``config.json`` (input size, mean, std). A second graph output, when
    present, is the network's mask-quality score."""

    def __init__(self, onnx_path: str | os.PathLike, config_path: str | os.PathLike, threads: int = 1):
        import onnxruntime as ort

        cfg = json.loads(Path(config_path).read_text())
        self.size = int(cfg.get("input_size", 96))
        self.mean = np.asarray(cfg.get("mean", (0.485, 0.456, 0.406)), np.float32)
        self.std = np.asarray(cfg.get("std", (0.229, 0.224, 0.225)), np.float32)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, windows: np.ndarray):
        w = np.asarray(windows)
        if w.ndim == 3:
            w = w[None]
        x = (w.astype(np.float32) / 255.0 - self.mean) / self.std
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        outs = self.session.run(None, {self.input_name: x})
        logits = np.asarray(outs[0], np.float32).reshape(len(w), self.size, self.size)
        scores = np.asarray(outs[1], np.float32).reshape(len(w), -1)[:, 0] if len(outs) > 1 else None
        return logits, scores

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
