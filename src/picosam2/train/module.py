"""The Lightning module: PicoSAM2 student, losses, optimizer and schedule, weight EMA.

Batches come from :mod:`picosam2.train.data` (uint8 NHWC crops, uint8 masks, optionally the
teacher's window logits and predicted IoU); the module normalises them on the device, so data
loading stays a cheap numpy affair.
"""

from __future__ import annotations

import copy
import math

import lightning as L
import torch

from ..errors import ConfigError, WeightsError
from ..models import create_model, from_pretrained, split_outputs
from .config import TrainConfig
from .losses import batch_iou, combined_loss, full_image_iou, gt_loss, quality_loss


def initial_model(cfg: TrainConfig) -> torch.nn.Module:
    """The network to train: ``cfg.model`` at random, or ``cfg.init_weights``. Weights without a
    quality head can start a ``cfg.model`` that has one (the head starts at random; every other
    tensor must match)."""
    if not cfg.init_weights:
        return create_model(cfg.model)
    model = from_pretrained(cfg.init_weights).train()
    fresh = create_model(cfg.model)
    if fresh.config.quality_head and not model.config.quality_head:
        missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
        if unexpected or any(not k.startswith("quality.") for k in missing):
            raise WeightsError(
                f"{cfg.init_weights} does not fit {cfg.model}: missing {missing}, unexpected {unexpected}"
            )
        fresh.config.extra = dict(model.config.extra)
        return fresh.train()
    return model


def lr_lambda(cfg: TrainConfig):
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based)."""
    o = cfg.optim
    total = cfg.max_steps

    def f(step: int) -> float:
        if o.warmup_steps > 0 and step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        if o.schedule == "constant":
            return 1.0
        t = min(1.0, (step - o.warmup_steps) / max(1, total - o.warmup_steps))
        if o.schedule == "cosine":
            return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))
        return o.min_lr_ratio + (1 - o.min_lr_ratio) * (1 - t)

    return f


class PicoSAM2Module(L.LightningModule):
    """The LightningModule that trains PicoSAM2: losses, EMA, validation IoU and optimiser."""

    def __init__(self, cfg: TrainConfig, teacher=None):
        super().__init__()
        self.cfg = cfg
        self.model = initial_model(cfg)
        mc = self.model.config
        self.register_buffer("mean", torch.tensor(mc.mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(mc.std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.ema_model = None
        if cfg.ema_decay > 0:
            self.ema_model = copy.deepcopy(self.model).eval()
            for p in self.ema_model.parameters():
                p.requires_grad_(False)
        if cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
            if self.ema_model is not None:
                self.ema_model.to(memory_format=torch.channels_last)
        self.teacher = teacher  # online teacher (optional; a cache is the usual way)
        self._val_ious: list[torch.Tensor] = []

    # -- helpers ------------------------------------------------------------------------------
    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(N, S, S, 3) uint8 images -> the network's normalised (N, 3, S, S) input."""
        x = images.permute(0, 3, 1, 2).float().div_(255.0)
        x = (x - self.mean) / self.std
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def export_model(self) -> torch.nn.Module:
        """The network to ship: the EMA weights when EMA is on, else the trained ones."""
        return self.ema_model if self.ema_model is not None else self.model

    # -- training -----------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        """One batch's loss (ground truth or distillation, plus the quality head's), logged."""
        x = self.normalize(batch["image"])
        logits, pred_iou = split_outputs(self.model(x))
        logits = logits[:, 0].float()
        gt = batch["mask"].float()
        lc = self.cfg.loss
        if lc.mode == "gt":
            loss = gt_loss(logits, gt, lc.bce_weight, lc.dice_weight)
            parts = {}
        else:
            if "teacher_logits" in batch:
                t_logits, t_iou = batch["teacher_logits"].float(), batch["teacher_iou"]
            elif self.teacher is not None:
                with torch.no_grad():
                    t_logits, t_iou = self.teacher.window_logits(batch["image"])
                t_logits, t_iou = t_logits.to(logits.device).float(), t_iou.to(logits.device)
            else:
                raise ConfigError("distillation needs data.teacher_cache or teacher.online=true")
            alpha = t_iou if lc.alpha == "dynamic" else float(lc.alpha)
            out = combined_loss(logits, gt, t_logits, alpha, lc.bce_weight, lc.dice_weight, lc.mse_weight)
            loss = out["loss"]
            parts = {"train/gt_loss": out["gt"], "train/distill_loss": out["distill"], "train/alpha": out["alpha"]}
        if pred_iou is not None and "outside" in batch and lc.quality_weight > 0:
            q = quality_loss(pred_iou, logits.detach(), gt, batch["outside"])
            loss = loss + lc.quality_weight * q
            with torch.no_grad():
                full = full_image_iou(logits.detach(), gt, torch.nan_to_num(batch["outside"], nan=0.0))
            parts = {**parts, "train/quality_loss": q, "train/full_iou": full.mean()}
        with torch.no_grad():
            iou = batch_iou(logits.detach(), gt).mean()
        bs = x.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log("train/iou", iou, prog_bar=True, batch_size=bs)
        for k, v in parts.items():
            self.log(k, v, batch_size=bs)
        self.log("lr", self.optimizers().param_groups[0]["lr"], batch_size=bs)
        return loss

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        """The optimiser step, then the EMA update."""
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        self.update_ema()  # before any callback (checkpoints) sees this step

    @torch.no_grad()
    def update_ema(self):
        """Move the EMA weights towards the current ones (from ``ema_start`` on)."""
        if self.ema_model is None:
            return
        step = self.global_step
        if step < self.cfg.ema_start:
            d = 0.0
        else:
            d = min(self.cfg.ema_decay, (1 + step) / (10 + step))
        for pe, p in zip(self.ema_model.parameters(), self.model.parameters()):
            pe.lerp_(p.detach(), 1.0 - d)
        for be, b in zip(self.ema_model.buffers(), self.model.buffers()):
            if be.dtype.is_floating_point:
                be.lerp_(b, 1.0 - d)
            else:
                be.copy_(b)

    # -- validation (paper-protocol crops) ----------------------------------------------------
    def validation_step(self, batch, batch_idx):
        """IoU of the exported (EMA) network on a validation batch."""
        net = self.export_model()
        was_training = net.training
        net.eval()
        logits = split_outputs(net(self.normalize(batch["image"])))[0][:, 0].float()
        if was_training:
            net.train()
        self._val_ious.append(batch_iou(logits, batch["mask"].float()))

    def on_validation_epoch_end(self):
        """Log the mean validation IoU over all processes."""
        if self._val_ious:
            ious = torch.cat(self._val_ious)
            ious = self.all_gather(ious).reshape(-1) if self.trainer.world_size > 1 else ious
            self.log("val/miou", ious.mean() * 100, prog_bar=True, sync_dist=False)
        self._val_ious = []

    # -- optimizer ----------------------------------------------------------------------------
    def configure_optimizers(self):
        """The optimiser (no weight decay on norms and biases) and its warm-up + schedule."""
        o = self.cfg.optim
        decay, no_decay = [], []
        for p in self.model.parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)
        groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        if o.name == "adamw":
            opt = torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas))
        elif o.name == "sgd":
            opt = torch.optim.SGD(groups, lr=o.lr, momentum=0.9, nesterov=True)
        else:
            raise ConfigError(f"unknown optimizer {o.name!r}; use adamw or sgd")
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(self.cfg))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}
