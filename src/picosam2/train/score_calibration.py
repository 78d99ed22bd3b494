"""Fitting the score calibration of scale-aware clicks (:class:`picosam2.selection.ScoreCalibration`).

Every click of a held-out annotation file is run at the weights' scales with the network's own
scores (no calibration; weights without a quality head score 0, and their calibration is compared
with the border rule instead); each candidate gives :func:`~picosam2.selection.click_features` and its
real full-image IoU. A ridge regression on the quadratic terms of the standardised features is
fitted to the IoU. Cross-validation by click (folds of whole clicks) reports what the calibration
would do on clicks it was not fitted on: the chosen mask's mIoU and the Spearman correlation of
score and IoU, beside the same figures of the raw network score.
"""

from __future__ import annotations

import numpy as np

from ..errors import EmptyResultError, UsageError
from ..selection import BORDER_RULE_MAX, CLICK_FEATURES, ScoreCalibration, quadratic_terms


def fit_ridge(features: np.ndarray, ious: np.ndarray, alpha: float, fitted_on: str | None = None) -> ScoreCalibration:
    """The calibration fitted to (N, F) candidate features and their (N,) real IoUs. The intercept
    is not penalised."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(ious, dtype=np.float64)
    if len(x) < 2 or x.ndim != 2:
        raise UsageError("a score calibration needs the features of at least two candidates")
    mean = x.mean(0)
    scale = x.std(0)
    scale[scale < 1e-9] = 1.0
    q = quadratic_terms((x - mean) / scale)
    penalty = np.full(q.shape[1], float(alpha))
    penalty[0] = 0.0
    weights = np.linalg.solve(q.T @ q + np.diag(penalty), q.T @ y)
    return ScoreCalibration(mean, scale, weights, fitted_on=fitted_on)


def click_figures(groups: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """mIoU of the top-scored candidate per click and the Spearman correlations (pooled over all
    candidates; mean within a click) of ``(scores, ious)`` per click."""
    from scipy.stats import spearmanr

    chosen = [float(iou[int(np.argmax(sc))]) for sc, iou in groups]
    within = [spearmanr(sc, iou)[0] for sc, iou in groups if np.ptp(iou) > 0 and np.ptp(sc) > 0]
    pooled = spearmanr(np.concatenate([g[0] for g in groups]), np.concatenate([g[1] for g in groups]))[0]
    return {
        "miou": 100.0 * float(np.mean(chosen)),
        "spearman": float(pooled),
        "spearman_within_click": float(np.mean(within)) if within else float("nan"),
        "clicks": len(groups),
    }


def cross_validate(features: list[np.ndarray], ious: list[np.ndarray], alpha: float, folds: int = 5, seed: int = 0):
    """Figures of calibrations fitted on ``folds - 1`` folds of clicks and applied to the rest."""
    if len(features) < folds:
        raise UsageError(f"cross-validation over {folds} folds needs at least {folds} clicks, got {len(features)}")
    order = np.random.default_rng(seed).permutation(len(features))
    parts = np.array_split(order, folds)
    held = []
    for k in range(folds):
        train = np.concatenate([p for j, p in enumerate(parts) if j != k])
        cal = fit_ridge(np.concatenate([features[i] for i in train]), np.concatenate([ious[i] for i in train]), alpha)
        held += [(cal.predict(features[i]), ious[i]) for i in parts[k]]
    return click_figures(held)


def border_rule_scores(features: np.ndarray) -> np.ndarray:
    """Scores whose top candidate is the one the no-score border rule
    (:func:`picosam2.selection.choose_candidate` without scores) picks, from (K, F) click features
    (the border column): the smallest window whose mask ends inside it, else the least contact."""
    contact = np.asarray(features, dtype=np.float64)[:, CLICK_FEATURES.index("border")]
    k = len(contact)
    return np.where(contact < BORDER_RULE_MAX, k - np.arange(k), -contact)


def collect(dataset, predictor, limit: int | None = None, progress: bool = True):
    """Per click: (K, F) candidate features (raw network scores; 0 for weights without a quality
    head, whose calibration then ranks windows from the masks alone) and (K,) real full-image IoUs."""
    from ..eval.protocols import evaluate

    saved = predictor.score_calibration
    predictor.score_calibration = None
    try:
        result = evaluate(
            dataset, predictor, "full", "point", limit=limit, progress=progress, point_scales="auto", keep_features=True
        )
    finally:
        predictor.score_calibration = saved
    kept = [s for s in result.samples if s.click_features is not None and len(s.candidates) > 1]
    if not kept:
        raise EmptyResultError(f"no click with more than one candidate window could be scored ({dict(result.skipped)})")
    return [s.click_features for s in kept], [np.array([c[1] for c in s.candidates]) for s in kept]
