"""Helpers for the export and camera tests (not a test module)."""

from __future__ import annotations

import numpy as np
import torch


def centred_model(seed: int = 0, arch: str = "picosam2"):
    """A random PicoSAM2 whose masks are not empty: BN statistics perturbed (as the
    ``trained_like_model`` fixture) and the head bias set so that about half of the pixels of
    the bundled calibration windows are foreground. Quantization errors then show up as
    changed mask pixels, which an all-background model would hide."""
    from picosam2.export.calibration import load_bundled, to_model_input
    from picosam2.models import create_model

    torch.manual_seed(seed)
    model = create_model(arch).eval()
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    x = torch.from_numpy(to_model_input(load_bundled(16), model.config))
    with torch.no_grad():
        med = _logits(model(x)).median()
        model.head.bias -= med
        if model.config.quality_head:
            pre = torch.logit(model(x)[1].clamp(1e-6, 1 - 1e-6))
            scale = 1.5 / (float(pre.std()) + 1e-9)
            model.quality.fc2.weight.mul_(scale)
            model.quality.fc2.bias.copy_((model.quality.fc2.bias - pre.mean()) * scale)
    return model


def _logits(out):
    return out[0] if isinstance(out, tuple) else out


def torch_logits(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return _logits(model(torch.from_numpy(x)))[:, 0].numpy()
