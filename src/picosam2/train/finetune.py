"""``picosam2 finetune``: adapt shipped weights to one site's labelled frames on a CPU.

The recipe (docs/field-learning.md), meant for a few hundred site images and at most 30 minutes
on 2 CPU cores:

* the site annotations are split by image: ``holdout`` of the images (seeded) are kept out of
  training (they choose between runs, and can refit the score calibration at the end); the rest are the training set;
* every batch mixes ``replay_fraction`` of windows from the base training data (``--replay``) with
  site windows, so the network keeps what it knew; windows are drawn like the base weights' last
  stage (a random point, 60 % of the windows at a side from 96 px to the image's longer side,
  horizontal flips, mild colour jitter);
* every layer learns, the encoder at ``encoder_lr_scale`` (0.3) of the decoder's and heads'
  rate, while the BatchNorm statistics stay the base weights' (``freeze_bn``); AdamW at a low
  learning rate with a short warm-up and a cosine decay **over the time budget** (``minutes``),
  so a run ends annealed whatever the CPU's speed; an EMA of the weights is what ships;
* the quality head stays and keeps learning the full-image IoU of the new masks (the same loss as
  the base training); the score calibration that ranks a click's windows is the base weights'
  by default (``calibration="keep"``): a ridge refitted on a hundred held-out site clicks ranked
  both the site's and the reference's windows worse (docs/field-learning.md); ``refit`` refits
  it on the held-out site clicks, ``auto`` only when the refit wins its cross-validation there.

Resumable: state (weights, EMA, optimizer, step, elapsed time) is checkpointed atomically to
``OUT.work/`` about every minute; running the same command again continues where it stopped.
The weights are written to ``OUT`` (a new folder, created by a rename at the very end).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UsageError

CKPT = "state.pt"
LOG = "log.jsonl"


@dataclass
class FinetuneSettings:
    base: str | None
    annotations: str
    images: list[str]
    out: str
    replay_annotations: str | None = None
    replay_images: list[str] = field(default_factory=list)
    replay_fraction: float = 0.5
    minutes: float = 15.0
    max_steps: int = 0  #: 0 = until the time budget is spent
    batch_size: int = 32
    lr: float = 3e-4
    warmup_steps: int = 20
    weight_decay: float = 0.01
    ema_decay: float = 0.98
    holdout: float = 0.15
    calib_clicks: int = 200
    seed: int = 0
    threads: int = 2
    precision: str = "bf16"  #: ``bf16`` autocast (CPUs with AVX-512 BF16 / AMX) or ``32``
    hflip: float = 0.5
    color_jitter: float = 0.2
    ckpt_seconds: float = 60.0
    encoder_lr_scale: float = 0.3  #: the encoder's learning rate is ``lr`` times this (decoder and heads: ``lr``)
    freeze_bn: bool = True  #: keep the base weights' BatchNorm statistics (their affine parameters still learn)
    #: ``auto``: refit the score calibration on the held-out site clicks only when the refit, cross-validated,
    #: ranks them better than the inherited one; ``refit``: always; ``keep``: never
    calibration: str = "keep"

    def key(self) -> str:
        """What a resumed run must share with the first one (the budget may change)."""
        d = asdict(self)
        for k in ("minutes", "max_steps", "threads", "ckpt_seconds", "calib_clicks", "calibration"):
            d.pop(k)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def split_by_image(
    annotations: str | os.PathLike, images, holdout: float, seed: int, work: Path
) -> tuple[Path, Path, dict]:
    """Write ``fit.json`` and ``holdout.json`` (whole images, seeded) into ``work``."""
    from ..data.labels import import_labels

    data = import_labels(annotations, images)
    data.pop("summary")
    ids = sorted(im["id"] for im in data["images"])
    with_ann = sorted({a["image_id"] for a in data["annotations"]})
    if len(with_ann) < 2:
        raise UsageError(f"{annotations}: fine-tuning needs labelled objects on at least 2 images")
    rng = np.random.default_rng([seed, 5])
    n_hold = min(len(with_ann) - 1, max(1, int(round(holdout * len(with_ann))))) if holdout > 0 else 0
    held = set(rng.permutation(with_ann)[:n_hold].tolist())
    out = {}
    for name, keep in (("fit", [i for i in ids if i not in held]), ("holdout", sorted(held))):
        ks = set(keep)
        sub = {
            **{k: v for k, v in data.items() if k not in ("images", "annotations")},
            "images": [im for im in data["images"] if im["id"] in ks],
            "annotations": [a for a in data["annotations"] if a["image_id"] in ks],
        }
        from ..io_utils import write_json_atomic

        write_json_atomic(sub, work / f"{name}.json")
        out[name] = {"images": len(sub["images"]), "instances": len(sub["annotations"])}
    return work / "fit.json", work / "holdout.json", out


class MixedWindows:
    """Global sample index -> a site window, or (with probability ``fraction``) a replay window."""

    def __init__(self, site, replay=None, fraction: float = 0.0, seed: int = 0):
        self.site, self.replay, self.fraction, self.seed = site, replay, fraction if replay else 0.0, seed

    def is_replay(self, g: int) -> bool:
        return self.fraction > 0 and np.random.default_rng([self.seed, 13, int(g)]).random() < self.fraction

    def __len__(self) -> int:
        return 1 << 40

    def __getitem__(self, g: int) -> dict:
        s = self.replay[g] if self.is_replay(g) else self.site[g]
        s["index"] = int(g)
        return s


def _window_set(annotations, images, seed: int, settings: FinetuneSettings):
    from ..data import InstanceSet
    from .data import Augment, WindowDataset, WindowPolicy

    policy = WindowPolicy(point="random", paper_point_prob=0.25, interior_point_prob=0.15, scale_prob=0.6,
                          scale_min=96, scale_to_image=True, paper_mode_prob=0.5)  # fmt: skip
    augment = Augment(hflip=settings.hflip, color_jitter=settings.color_jitter)
    return WindowDataset(InstanceSet(annotations, images), policy, augment, seed=seed)


#: the encoder side of the network (``--encoder-lr-scale``); the rest is the decoder and the heads
ENCODER_PARTS = ("encoder", "downsample", "bottleneck")


def param_groups(model, s: FinetuneSettings) -> list[dict]:
    """AdamW groups: decoder/heads then encoder, each split into decayed (weights) and not (biases,
    norms); ``lr_scale`` is each group's share of the scheduled learning rate."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        enc = name.split(".")[0] in ENCODER_PARTS
        groups.setdefault((enc, p.ndim > 1), []).append(p)
    if s.encoder_lr_scale != 1.0 and not any(enc for enc, _ in groups):
        raise UsageError("--encoder-lr-scale: these weights have no encoder parameters")
    return [
        {"params": groups[k], "weight_decay": s.weight_decay if k[1] else 0.0,
         "lr_scale": s.encoder_lr_scale if k[0] else 1.0}
        for k in sorted(groups)
    ]  # fmt: skip


def freeze_bn_statistics(model) -> int:
    """Put every BatchNorm layer in eval mode (running statistics fixed); returns how many."""
    import torch

    n = 0
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
            n += 1
    return n


def _lr_factor(step: int, elapsed: float, s: FinetuneSettings) -> float:
    if step < s.warmup_steps:
        return (step + 1) / s.warmup_steps
    t = elapsed / (60.0 * s.minutes) if s.minutes > 0 else 0.0
    if s.max_steps:
        t = max(t, step / s.max_steps)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def _save_state(work: Path, state: dict) -> None:
    import torch

    tmp = work / f".{CKPT}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, work / CKPT)


def refit_calibration(
    folder: Path, holdout_json: Path, images, clicks: int, progress: bool, mode: str = "refit"
) -> dict:
    """Refit the weights' score calibration on held-out site clicks (written into config.json).

    With ``mode="auto"`` the refit is written only when its cross-validated mIoU on those clicks
    beats the inherited calibration's (which was not fitted on them); a ridge fitted on a hundred
    or two clicks can rank the windows of other scenes worse than the base weights' calibration."""
    from ..data import InstanceSet
    from ..io_utils import write_json_atomic
    from ..predictor import Predictor
    from .score_calibration import click_figures, collect, cross_validate, fit_ridge

    predictor = Predictor.from_pretrained(str(folder), point_scales="auto", warn_untrained=False)
    inherited = predictor.score_calibration
    feats, ious = collect(InstanceSet(holdout_json, images), predictor, clicks or None, progress)
    raw = click_figures([(f[:, 0], y) for f, y in zip(feats, ious)])
    folds = min(5, len(feats))
    tried = {a: cross_validate(feats, ious, a, folds) for a in (10.0, 100.0, 300.0, 1000.0)} if folds >= 2 else {}
    alpha = max(tried, key=lambda a: tried[a]["miou"]) if tried else 100.0
    kept = None
    if inherited is not None:
        kept = click_figures([(inherited.predict(f), y) for f, y in zip(feats, ious)])
    info = {"clicks": len(feats), "alpha": alpha, "network_score": raw, "cross_validated": tried.get(alpha),
            "inherited": kept}  # fmt: skip
    if mode == "auto" and kept is not None and (not tried or tried[alpha]["miou"] <= kept["miou"]):
        return {**info, "refitted": False}
    cal = fit_ridge(np.concatenate(feats), np.concatenate(ious), alpha, fitted_on=f"site holdout ({len(feats)} clicks)")
    cfile = folder / "config.json"
    config = json.loads(cfile.read_text())
    config.setdefault("extra", {})["score_calibration"] = {**cal.to_dict(), "alpha": alpha}
    write_json_atomic(config, cfile, indent=2)
    return {**info, "refitted": True}


def finetune(s: FinetuneSettings, progress: bool = True) -> dict:
    """Run (or resume) the fine-tune; returns its report (also ``OUT/finetune.json``)."""
    import torch

    from ..io_utils import write_json_atomic
    from ..models import from_pretrained, save_pretrained, split_outputs, weights_metadata
    from ..models.registry import resolve_weights
    from .data import collate
    from .losses import batch_iou, gt_loss, quality_loss

    out = Path(s.out)
    if out.exists():
        raise UsageError(f"{out} exists; choose a new --out (weights are written once)")
    if not 0 <= s.replay_fraction < 1:
        raise UsageError("--replay-fraction must be in [0, 1)")
    if s.replay_fraction > 0 and not s.replay_annotations:
        raise UsageError("--replay-fraction needs --replay ANNOTATIONS IMAGES")
    if s.minutes <= 0 and s.max_steps <= 0:
        raise UsageError("give a positive --minutes or --steps")
    if not 0 <= s.holdout < 1:
        raise UsageError("--holdout must be in [0, 1)")
    if s.encoder_lr_scale <= 0:
        raise UsageError("--encoder-lr-scale must be positive")
    if s.calibration not in ("auto", "refit", "keep"):
        raise UsageError("--calibration must be auto, refit or keep")
    base_dir = resolve_weights(s.base)
    work = out.with_name(out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, s.threads))
    torch.manual_seed(s.seed)

    state = torch.load(work / CKPT, map_location="cpu", weights_only=False) if (work / CKPT).exists() else None
    if state is not None and state["key"] != s.key():
        raise UsageError(f"{work} holds a fine-tune with other settings; remove it or choose another --out")
    t_prep = time.monotonic()
    fit_json, hold_json, split = split_by_image(s.annotations, s.images, s.holdout, s.seed, work)
    label_check_s = time.monotonic() - t_prep
    site = _window_set(fit_json, s.images, s.seed, s)
    replay = _window_set(s.replay_annotations, s.replay_images, s.seed + 1, s) if s.replay_fraction > 0 else None
    mixed = MixedWindows(site, replay, s.replay_fraction, s.seed)

    model = from_pretrained(s.base).train()
    if getattr(model, "quality", None) is None:
        raise UsageError(f"{base_dir} has no quality head; finetune keeps and retrains it (use picosam2-q weights)")
    model = model.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    if s.freeze_bn:
        freeze_bn_statistics(model)
    opt = torch.optim.AdamW(param_groups(model, s), lr=s.lr)
    step, elapsed = 0, 0.0
    resumed_from = int(state["step"]) if state is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, elapsed = int(state["step"]), float(state["elapsed"])
    mc = model.config
    mean = torch.tensor(mc.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(mc.std, dtype=torch.float32).view(1, 3, 1, 1)

    budget = 60.0 * s.minutes if s.minutes > 0 else float("inf")
    limit = s.max_steps or (1 << 40)
    sampler = range(step * s.batch_size, (1 << 40))
    loader = torch.utils.data.DataLoader(
        mixed, batch_size=s.batch_size, sampler=sampler, collate_fn=collate, num_workers=1,
        prefetch_factor=4, persistent_workers=False,
    )  # fmt: skip
    from tqdm.auto import tqdm

    bar = tqdm(total=int(budget) if budget < float("inf") else None, initial=int(elapsed), unit="s",
               desc="finetune", disable=not progress or None)  # fmt: skip
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if s.precision == "bf16" else contextlib.nullcontext()
    t_last, t_ckpt = time.monotonic(), time.monotonic()
    logf = open(work / LOG, "a")
    try:
        for batch in loader:
            if elapsed >= budget or step >= limit:
                break
            lr = s.lr * _lr_factor(step, elapsed, s)
            for g in opt.param_groups:
                g["lr"] = lr * g["lr_scale"]
            x = batch["image"].permute(0, 3, 1, 2).float().div_(255.0)
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            gt = batch["mask"].float()
            with autocast:
                logits, pred_iou = split_outputs(model(x))
            logits = logits[:, 0].float()
            loss = gt_loss(logits, gt)
            q = quality_loss(pred_iou.float(), logits.detach(), gt, batch["outside"])
            total = loss + q
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            step += 1
            d = min(s.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(p.detach(), 1.0 - d)
                for be, b in zip(ema.buffers(), model.buffers()):
                    be.copy_(b) if not be.dtype.is_floating_point else be.lerp_(b, 1.0 - d)
            now = time.monotonic()
            elapsed += now - t_last
            bar.update(int(elapsed) - bar.n)
            t_last = now
            if step % 10 == 0:
                with torch.no_grad():
                    iou = float(batch_iou(logits.detach(), gt).mean())
                share = float(np.mean([mixed.is_replay(int(g)) for g in batch["index"]]))
                logf.write(json.dumps({"step": step, "elapsed_s": round(elapsed, 1), "loss": round(float(loss.detach()), 4),
                                       "quality_loss": round(float(q.detach()), 4), "iou": round(iou, 4),
                                       "replay_share": round(share, 3),
                                       "lr": lr}) + "\n")  # fmt: skip
                logf.flush()
                bar.set_postfix(step=step, loss=f"{float(loss.detach()):.3f}")
            if now - t_ckpt >= s.ckpt_seconds:
                _save_state(work, {"key": s.key(), "model": model.state_dict(), "ema": ema.state_dict(),
                                   "opt": opt.state_dict(), "step": step, "elapsed": elapsed})  # fmt: skip
                t_ckpt = time.monotonic()
                t_last = t_ckpt  # checkpoint time is not training time
    finally:
        logf.close()
        bar.close()
    _save_state(work, {"key": s.key(), "model": model.state_dict(), "ema": ema.state_dict(),
                       "opt": opt.state_dict(), "step": step, "elapsed": elapsed})  # fmt: skip

    net = copy.deepcopy(ema).float().eval().to(memory_format=torch.contiguous_format)
    meta = weights_metadata(s.base)
    meta.update(
        trained="true",
        finetune=f"{step} steps x {s.batch_size} ({s.replay_fraction:.0%} replay) from {base_dir.name} on "
        f"{Path(s.annotations).name}, {elapsed / 60:.1f} min",
    )
    stage = out.with_name(f".{out.name}.stage")
    shutil.rmtree(stage, ignore_errors=True)
    save_pretrained(net, stage, metadata=meta, card=False)
    t0 = time.monotonic()
    calib = (
        refit_calibration(stage, hold_json, s.images, s.calib_clicks, progress, s.calibration)
        if split["holdout"]["instances"] and s.calibration != "keep"
        else None
    )
    report = {
        "settings": {**asdict(s), "base": str(base_dir)},
        "split": split,
        "steps": step,
        "resumed_from_step": resumed_from,
        "samples": step * s.batch_size,
        "train_minutes": round(elapsed / 60, 2),
        "label_check_minutes": round(label_check_s / 60, 2),
        "calibration_minutes": round((time.monotonic() - t0) / 60, 2),
        "score_calibration": calib,
        "threads": torch.get_num_threads(),
    }
    write_json_atomic(report, stage / "finetune.json", indent=2)
    os.rename(stage, out)
    return report
