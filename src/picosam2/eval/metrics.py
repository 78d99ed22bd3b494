"""The metric module: every number the evaluation reports is computed here.

Definitions (docs/evaluation.md explains them with examples):

* **IoU** of a predicted boolean mask ``P`` and a ground-truth mask ``G`` of the same shape:
  ``|P & G| / |P | G|``. **Empty union** (both masks empty) counts as IoU **1.0**: the
  prediction "nothing" is exactly right when there is nothing. The protocols never produce this
  case themselves (an instance whose ground-truth mask is empty is skipped and counted as
  ``empty_masks``), so it only matters to callers scoring their own masks.
* **mIoU**: the plain mean of the per-instance IoUs.
* **paper "mAP"** (the PicoSAM2 paper's number, *not* COCO AP): the mean, over the ten thresholds
  ``t = 0.50, 0.55, ..., 0.95``, of the fraction of instances with ``IoU >= t``.
* **by size**: the same numbers for COCO's size classes of the instance (``small`` area < 32²,
  ``medium`` < 96², ``large``), where the area is the annotation's ``area`` field (as COCO's own
  evaluation does), not the decoded mask's pixel count.

Mask predictions are thresholded at logit ``> 0`` (probability ``> 0.5``) by :func:`logits_to_mask`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ..data.coco import size_class
from ..errors import UsageError

#: The paper's IoU thresholds 0.50:0.05:0.95 (rounded so that 0.55 is 0.55, not 0.5500000001).
PAPER_THRESHOLDS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))
SIZE_CLASSES = ("small", "medium", "large")


def logits_to_mask(logits: np.ndarray) -> np.ndarray:
    """Boolean mask ``logits > 0`` (sigmoid > 0.5)."""
    return np.asarray(logits) > 0


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two boolean masks of the same shape; 1.0 when both are empty."""
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise UsageError(f"mask shapes differ: prediction {pred.shape}, ground truth {gt.shape}")
    inter = int(np.count_nonzero(pred & gt))
    union = int(np.count_nonzero(pred | gt))
    return 1.0 if union == 0 else inter / union


def batch_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-item IoU of two (N, H, W) boolean stacks (same rule as :func:`iou`)."""
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise UsageError(f"mask shapes differ: prediction {pred.shape}, ground truth {gt.shape}")
    n = pred.shape[0]
    inter = np.count_nonzero((pred & gt).reshape(n, -1), axis=1)
    union = np.count_nonzero((pred | gt).reshape(n, -1), axis=1)
    out = np.ones(n, dtype=np.float64)
    nz = union > 0
    out[nz] = inter[nz] / union[nz]
    return out


def paper_map(ious: Iterable[float], thresholds=PAPER_THRESHOLDS) -> float:
    """The paper's "mAP": mean over ``thresholds`` of the fraction of IoUs ``>= t``. NaN when empty."""
    arr = np.asarray(list(ious), dtype=np.float64)
    if arr.size == 0:
        return float("nan")
    return float(np.mean([np.mean(arr >= t) for t in thresholds]))


def miou(ious: Iterable[float]) -> float:
    """Mean IoU; NaN when there is nothing to average."""
    arr = np.asarray(list(ious), dtype=np.float64)
    return float(arr.mean()) if arr.size else float("nan")


def summarize(ious: Mapping[int, float], areas: Mapping[int, float]) -> dict:
    """Overall and by-size numbers from per-instance IoUs (``ann_id -> IoU``) and annotation
    areas (``ann_id -> area``). Returns ``{"miou", "paper_map", "count", "by_size": {size:
    {"miou", "paper_map", "count"}}}``; empty groups have ``count`` 0 and ``None`` numbers."""

    def block(values: list[float]) -> dict:
        if not values:
            return {"miou": None, "paper_map": None, "count": 0}
        return {"miou": miou(values), "paper_map": paper_map(values), "count": len(values)}

    out = block(list(ious.values()))
    groups: dict[str, list[float]] = {s: [] for s in SIZE_CLASSES}
    for ann_id, value in ious.items():
        groups[size_class(areas[ann_id])].append(value)
    out["by_size"] = {s: block(groups[s]) for s in SIZE_CLASSES}
    return out


def spearman(a: Iterable[float], b: Iterable[float]) -> float:
    """Spearman rank correlation (ties get average ranks); NaN when either side is constant."""
    from scipy.stats import rankdata

    x, y = np.asarray(list(a), np.float64), np.asarray(list(b), np.float64)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])


def scale_summary(samples, spec) -> dict:
    """Figures of scale-aware clicks from samples carrying ``candidates`` (window side, real
    full-image IoU, score), candidates ordered small to large:

    * ``oracle``: mIoU of the best candidate per click (what a perfect selector would reach);
    * ``fixed``: mIoU of the k-th candidate for every click (a fixed window), with its side
      (the median side when sizes depend on the image, as under ``auto``);
    * ``spearman``: rank correlation of score and real IoU over all candidates pooled, and its
      mean within clicks (how well the score ranks one click's masks);
    * ``spearman_chosen``: the same over the returned masks only (one per click: how well the
      score a user sees tells a good mask from a bad one);
    * ``chosen_index``: how often each candidate was chosen.
    """
    rows = [s for s in samples if s.candidates]
    areas = {s.ann_id: s.area for s in rows}
    oracle = summarize({s.ann_id: max(c[1] for c in s.candidates) for s in rows}, areas)
    k_max = max(len(s.candidates) for s in rows)
    fixed = []
    for k in range(k_max):
        have = [s for s in rows if len(s.candidates) > k]
        block = summarize({s.ann_id: s.candidates[k][1] for s in have}, areas)
        fixed.append({"index": k, "side": int(np.median([s.candidates[k][0] for s in have])), **block})
    pooled = [(c[2], c[1]) for s in rows for c in s.candidates]
    within = [spearman([c[2] for c in s.candidates], [c[1] for c in s.candidates]) for s in rows]
    within = [v for v in within if np.isfinite(v)]
    chosen = [s.chosen_index for s in rows]
    picked = [s.candidates[s.chosen_index] for s in rows if s.chosen_index is not None]
    return {
        "point_scales": spec if isinstance(spec, str) else [int(v) for v in spec],
        "oracle": oracle,
        "fixed": fixed,
        "spearman": spearman([p[0] for p in pooled], [p[1] for p in pooled]),
        "spearman_within_click": float(np.mean(within)) if within else float("nan"),
        "spearman_chosen": spearman([c[2] for c in picked], [c[1] for c in picked]),
        "chosen_index": {str(k): chosen.count(k) for k in range(k_max)},
    }
