"""Stage 5: the quality head retrained on the clicks it has to rank, the rest of the network frozen.

Stage 4 trained the head on single packed windows with a regression loss: it learnt to tell a
good mask from a bad one across the data set, but what a click needs is the *order* of its own
candidates (the same point at 96 px up to the whole image). Here every click of an annotation file
is run at the scale-aware windows (:func:`picosam2.prompts.point_scales_for` ``"auto"``), the
head's input vector (:meth:`QualityHead.pooled`, which does not depend on the head) and the real
full-image IoU of each candidate are kept, and the head alone is fitted on them with the
regression loss plus a listwise loss per click (cross-entropy between the softmax of the
predicted and of the real IoUs). The backbone and the masks do not change.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from ..errors import EmptyResultError, WeightsError


@dataclass
class ClickSet:
    """Candidates of many clicks: head inputs (N, F), real IoUs (N,), click id (N,)."""

    pooled: np.ndarray
    iou: np.ndarray
    click: np.ndarray

    def save(self, path) -> None:
        """Write the set to an ``.npz`` (temporary name, then rename)."""
        from ..io_utils import write_atomic

        write_atomic(path, lambda tmp: np.savez(tmp, pooled=self.pooled, iou=self.iou, click=self.click), ".npz")

    @classmethod
    def load(cls, path) -> ClickSet:
        """A click set saved by :meth:`save`."""
        with np.load(path) as z:
            return cls(z["pooled"], z["iou"], z["click"])

    def groups(self) -> list[np.ndarray]:
        """Row indices of each click, in click order."""
        bounds = np.flatnonzero(np.diff(self.click)) + 1
        return np.split(np.arange(len(self.click)), bounds)


def _click_points(gt: np.ndarray, bbox, clicks: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    from ..data.prompt_rules import interior_point, random_point

    points = [interior_point(gt, bbox)]
    points += [random_point(gt, bbox, rng=rng) for _ in range(clicks - 1)]
    return [(float(x), float(y)) for x, y in points]


def instance_clicks(dataset, image: np.ndarray, group, clicks: int, rng: np.random.Generator, scales="auto"):
    """The clicks of one image's instances, as tuning and click training run them: per instance
    of ``group`` whose mask loads, ``(instance, gt mask, [(x, y, windows), ...])`` with the most
    interior point then ``clicks - 1`` random mask pixels (none for an empty mask), each with its
    candidate windows at ``scales`` (:func:`picosam2.prompts.point_scales_for`)."""
    from ..data import DataError
    from ..data.prompt_rules import EmptyMaskError
    from ..prompts import point_scales_for, point_windows

    size = image.shape[1::-1]
    sides = point_scales_for(scales, size)
    for inst in group:
        try:
            gt = dataset.mask(inst)
            points = _click_points(gt, inst.bbox, clicks, rng) if gt.any() else []
        except (DataError, EmptyMaskError):
            continue
        yield inst, gt, [(x, y, point_windows(x, y, size, sides)) for x, y in points]


def collect_clicks(dataset, predictor, clicks: int = 1, seed: int = 0, limit=None, progress: bool = True) -> ClickSet:
    """Run each instance's clicks (the most interior point, then ``clicks - 1`` random mask
    pixels) at the auto scales through ``predictor`` (torch backend) and keep, per candidate
    window, the quality head's input and the real full-image IoU."""
    import torch
    from tqdm import tqdm

    from ..eval import metrics
    from ..eval.protocols import EvalResult, _image_groups, instance_list
    from ..prompts import paste_mask

    model = getattr(predictor.backend, "model", None)
    if model is None or getattr(model, "quality", None) is None:
        raise WeightsError("the quality head is tuned on torch weights with a quality head (picosam2-q)")
    captured = []
    hook = model.quality.register_forward_hook(lambda mod, args, out: captured.append(mod.pooled(*args).flatten(1)))
    rng = np.random.default_rng(seed)
    pooled, ious, click_ids, n_clicks = [], [], [], 0
    instances = instance_list(dataset, "full", limit)
    result = EvalResult(protocol="full", prompt="point")
    bar = tqdm(total=len(instances), desc="clicks", unit="inst", file=sys.stderr, disable=not progress)
    try:
        for image, group in _image_groups(dataset, [i for i in instances if i.image_path], result, bar):
            size = image.shape[1::-1]
            for _inst, gt, points in instance_clicks(dataset, image, group, clicks, rng):
                for _x, _y, wins in points:
                    captured.clear()
                    with torch.no_grad():
                        out = predictor.run_windows(image, wins)
                    pooled.append(torch.cat(captured).float().numpy())
                    ious += [metrics.iou(paste_mask(lg, w, size), gt) for lg, w in zip(out.logits, wins)]
                    click_ids += [n_clicks] * len(wins)
                    n_clicks += 1
            bar.update(len(group))
    finally:
        hook.remove()
        bar.close()
    if not pooled:
        raise EmptyResultError("no click could be run")
    return ClickSet(np.concatenate(pooled), np.asarray(ious, np.float32), np.asarray(click_ids))


def _padded(data: ClickSet):
    """(clicks, K, F) inputs, (clicks, K) IoUs and a validity mask, K = most candidates of a click."""
    groups = data.groups()
    k = max(len(g) for g in groups)
    x = np.zeros((len(groups), k, data.pooled.shape[1]), np.float32)
    y = np.zeros((len(groups), k), np.float32)
    valid = np.zeros((len(groups), k), bool)
    for i, g in enumerate(groups):
        x[i, : len(g)], y[i, : len(g)], valid[i, : len(g)] = data.pooled[g], data.iou[g], True
    return x, y, valid


def listwise_loss(pred, target, valid, tau: float = 0.1):
    """Cross-entropy between softmax(target / tau) and softmax(pred / tau) over each click's
    valid candidates, averaged over clicks with more than one candidate."""
    import torch

    neg = torch.finfo(pred.dtype).min / 4
    want = torch.softmax(torch.where(valid, target / tau, torch.full_like(target, neg)), dim=1)
    logp = torch.log_softmax(torch.where(valid, pred / tau, torch.full_like(pred, neg)), dim=1)
    many = valid.sum(1) > 1
    per_click = -(want * torch.where(valid, logp, torch.zeros_like(logp))).sum(1)
    return per_click[many].mean() if many.any() else pred.sum() * 0.0


def tune_head(
    head, data: ClickSet, steps: int = 3000, lr: float = 1e-3, rank_weight: float = 1.0, batch: int = 256, seed: int = 0
):
    """Fit ``head`` (a :class:`~picosam2.models.picosam2.QualityHead`, in place) on the clicks:
    MSE to the real IoU plus ``rank_weight`` x :func:`listwise_loss`. Returns the last losses.

    Runs on one torch thread: the head's tensors are tiny, and more threads only wait on each
    other (on a busy 2-core machine 300 steps took 100 s with two threads, 1.5 s with one)."""
    from ..bench.timing import torch_threads

    with torch_threads(1):
        return _tune_head(head, data, steps, lr, rank_weight, batch, seed)


def _tune_head(head, data: ClickSet, steps: int, lr: float, rank_weight: float, batch: int, seed: int) -> dict:
    import torch

    torch.manual_seed(seed)
    x, y, valid = (torch.from_numpy(a) for a in _padded(data))
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    head.train()
    mse = rank = torch.zeros(())
    for _ in range(steps):
        idx = torch.randint(0, len(x), (min(batch, len(x)),), generator=gen)
        xb, yb, vb = x[idx], y[idx], valid[idx]
        pred = head.predict(xb.reshape(-1, xb.shape[-1], 1, 1)).reshape(vb.shape)
        mse = ((pred - yb) ** 2)[vb].mean()
        rank = listwise_loss(pred, yb, vb)
        loss = mse + rank_weight * rank
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    head.eval()
    return {"mse": float(mse.detach()), "listwise": float(rank.detach())}


def head_scores(head, data: ClickSet) -> np.ndarray:
    """The head's predicted IoU of every candidate."""
    import torch

    with torch.no_grad():
        return head.predict(torch.from_numpy(data.pooled).reshape(len(data.pooled), -1, 1, 1)).flatten().numpy()


def figures(head, data: ClickSet) -> dict:
    """Chosen-mask mIoU and Spearman correlations of the head's scores on ``data``."""
    from .score_calibration import click_figures

    scores = head_scores(head, data)
    return click_figures([(scores[g], data.iou[g]) for g in data.groups()])
