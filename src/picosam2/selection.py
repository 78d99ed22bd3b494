"""Choosing one mask among a click's candidates (scale-aware point prompts).

A click is tried at several window sizes (:func:`picosam2.prompts.auto_point_scales`). Each
window gives a mask and, when the network has a quality head, a predicted full-image IoU. The
chosen mask is the one with the highest predicted IoU. Weights without a quality head fall back
to a rule that needs no score: the smallest window whose mask touches less than
:data:`BORDER_RULE_MAX` of the window border (the object ends inside it), else the window whose
mask touches the border least.
"""

from __future__ import annotations

import numpy as np

#: largest share of the window border a mask may cover for the no-score rule to accept it.
BORDER_RULE_MAX = 0.05


def border_contact(logits: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Share of each window's one-pixel border covered by its mask: (N, S, S) -> (N,)."""
    m = np.asarray(logits) > threshold
    if m.ndim == 2:
        m = m[None]
    ring = np.concatenate([m[:, 0, :], m[:, -1, :], m[:, 1:-1, 0], m[:, 1:-1, -1]], axis=1)
    return ring.mean(axis=1)


def choose_candidate(logits: np.ndarray, scores: np.ndarray | None = None) -> tuple[int, str]:
    """Index of the chosen candidate among windows ordered small to large, and why:
    ``"score"`` (highest predicted IoU) or ``"border"`` (the no-score rule)."""
    if scores is not None:
        return int(np.argmax(np.asarray(scores, dtype=np.float64))), "score"
    contact = border_contact(logits)
    inside = np.nonzero(contact < BORDER_RULE_MAX)[0]
    return (int(inside[0]) if len(inside) else int(np.argmin(contact))), "border"
