"""Per-frame statistics the camera logs and the drift monitor compares (plain numpy).

Each frame gives one fixed-size record: what the network saw (the 96 x 96 input window) and what
it answered (its logits, and its mask-quality score when the network has one):

* ``brightness``: mean luma of the window (0..1, Rec. 601 weights);
* ``contrast``: standard deviation of that luma;
* ``sharpness``: variance of the 4-neighbour Laplacian of the luma (drops when the lens is out of
  focus, dirty or fogged);
* ``mask_area``: fraction of window pixels whose logit is above 0;
* ``logit_margin``: mean absolute logit (how far from undecided the network is, on average);
* ``score``: the predicted mask quality (IoU), only when the network returns one.
"""

from __future__ import annotations

import time

import numpy as np

INPUT_STATISTICS = ("brightness", "contrast", "sharpness")
OUTPUT_STATISTICS = ("mask_area", "logit_margin", "score")
STATISTICS = OUTPUT_STATISTICS + INPUT_STATISTICS


def luma(window: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 luma in 0..1."""
    w = np.asarray(window, dtype=np.float32) / 255.0
    return w[..., 0] * 0.299 + w[..., 1] * 0.587 + w[..., 2] * 0.114


def input_statistics(window: np.ndarray) -> dict:
    """Brightness, contrast and sharpness of one uint8 RGB window."""
    y = luma(window)
    lap = y[1:-1, :-2] + y[1:-1, 2:] + y[:-2, 1:-1] + y[2:, 1:-1] - 4.0 * y[1:-1, 1:-1]
    return {"brightness": float(y.mean()), "contrast": float(y.std()), "sharpness": float(lap.var())}


def output_statistics(logits: np.ndarray, score: float | None = None) -> dict:
    """Mask area fraction and mean logit margin of one (S, S) logit map, plus ``score`` if given."""
    lg = np.asarray(logits, dtype=np.float32)
    out = {"mask_area": float((lg > 0).mean()), "logit_margin": float(np.abs(lg).mean())}
    if score is not None:
        out["score"] = float(score)
    return out


def frame_record(window: np.ndarray, logits: np.ndarray, score: float | None = None, t: float | None = None) -> dict:
    """One log record: time plus the statistics above, rounded to 6 significant digits."""
    rec = {"t": round(time.time() if t is None else t, 3)}
    for k, v in {**output_statistics(logits, score), **input_statistics(window)}.items():
        rec[k] = float(f"{v:.6g}")
    return rec


def records_from_windows(windows: np.ndarray, logits: np.ndarray, scores=None) -> list[dict]:
    """:func:`frame_record` for a batch: windows (N, S, S, 3) uint8, logits (N, S, S)."""
    return [
        frame_record(w, lg, None if scores is None else scores[i], t=0.0)
        for i, (w, lg) in enumerate(zip(windows, logits))
    ]
