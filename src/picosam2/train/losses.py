"""Losses of PicoSAM2 training.

* ground truth: ``BCE(logits, gt) + Dice(sigmoid(logits), gt)``;
* distillation: ``MSE(p, q) + Dice(p, q)`` with ``p = sigmoid(student logits)`` and
  ``q = sigmoid(teacher logits)`` (the teacher's probabilities as soft targets);
* combined (the paper): ``alpha * distill + (1 - alpha) * gt`` with ``alpha`` the teacher's
  predicted IoU for each sample ("dynamic") or a fixed number.

All functions take ``(N, H, W)`` or ``(N, 1, H, W)`` tensors and compute in float32. Per-sample
losses are averaged over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UsageError


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.float().reshape(x.shape[0], -1)


def dice_loss(prob: torch.Tensor, target: torch.Tensor, eps: float = 1.0, reduce: bool = True) -> torch.Tensor:
    """Soft Dice loss ``1 - (2 |p t| + eps) / (|p| + |t| + eps)`` per sample."""
    p, t = _flat(prob), _flat(target)
    inter = (p * t).sum(1)
    loss = 1.0 - (2.0 * inter + eps) / (p.sum(1) + t.sum(1) + eps)
    return loss.mean() if reduce else loss


def gt_loss(
    logits: torch.Tensor, gt: torch.Tensor, bce_weight: float = 1.0, dice_weight: float = 1.0, reduce: bool = True
) -> torch.Tensor:
    """BCE + Dice against a binary ground-truth mask, per sample (or batch mean)."""
    lg, t = _flat(logits), _flat(gt)
    bce = F.binary_cross_entropy_with_logits(lg, t, reduction="none").mean(1)
    loss = bce_weight * bce + dice_weight * dice_loss(torch.sigmoid(lg), t, reduce=False)
    return loss.mean() if reduce else loss


def distill_loss(
    logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mse_weight: float = 1.0,
    dice_weight: float = 1.0,
    reduce: bool = True,
) -> torch.Tensor:
    """MSE + Dice between the student's and the teacher's probabilities, per sample."""
    p = torch.sigmoid(_flat(logits))
    q = torch.sigmoid(_flat(teacher_logits))
    loss = mse_weight * ((p - q) ** 2).mean(1) + dice_weight * dice_loss(p, q, reduce=False)
    return loss.mean() if reduce else loss


def combined_loss(
    logits: torch.Tensor,
    gt: torch.Tensor,
    teacher_logits: torch.Tensor,
    alpha: torch.Tensor | float,
    bce_weight: float = 1.0,
    dice_weight: float = 1.0,
    mse_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """``alpha * distill + (1 - alpha) * gt``; ``alpha`` a number or a per-sample tensor (N,)
    (the paper: the teacher's predicted IoU, clamped to [0, 1]). Returns the parts too."""
    g = gt_loss(logits, gt, bce_weight, dice_weight, reduce=False)
    d = distill_loss(logits, teacher_logits, mse_weight, dice_weight, reduce=False)
    if torch.is_tensor(alpha):
        a = alpha.float().reshape(-1).clamp(0.0, 1.0).to(g.device)
        if a.numel() != g.numel():
            raise UsageError(f"alpha has {a.numel()} values for {g.numel()} samples")
    else:
        a = torch.full_like(g, float(alpha))
    total = a * d + (1.0 - a) * g
    return {"loss": total.mean(), "gt": g.mean(), "distill": d.mean(), "alpha": a.mean()}


def batch_iou(logits: torch.Tensor, gt: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """IoU per sample of ``logits > threshold`` against a binary mask (1 where both are empty)."""
    p, t = _flat(logits) > threshold, _flat(gt) > 0.5
    inter = (p & t).sum(1).float()
    union = (p | t).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def full_image_iou(
    logits: torch.Tensor, gt: torch.Tensor, outside: torch.Tensor, threshold: float = 0.0
) -> torch.Tensor:
    """IoU per sample of ``logits > threshold`` against the *whole* object: the window's ground
    truth plus ``outside`` (N,) object pixels beyond the window, in window-pixel units, which
    the mask cannot cover. The target of the quality head (no gradient)."""
    with torch.no_grad():
        p, t = _flat(logits) > threshold, _flat(gt) > 0.5
        inter = (p & t).sum(1).float()
        union = (p | t).sum(1).float() + outside.float().clamp(min=0)
        return torch.where(union > 0, inter / union.clamp(min=1e-6), torch.ones_like(union))


def quality_loss(pred_iou: torch.Tensor, logits: torch.Tensor, gt: torch.Tensor, outside: torch.Tensor) -> torch.Tensor:
    """MSE between the predicted IoU (N,) or (N, 1) and :func:`full_image_iou`; samples whose
    ``outside`` is unknown (NaN) are left out (0 when none is known)."""
    target = full_image_iou(logits, gt, torch.nan_to_num(outside, nan=0.0))
    known = torch.isfinite(outside)
    if not known.any():
        return pred_iou.sum() * 0.0
    err = (pred_iou.float().reshape(-1) - target) ** 2
    return err[known].mean()
