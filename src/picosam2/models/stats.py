"""Parameter and MAC counts."""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    """The number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: int | None = None) -> int:
    """Convolution MACs for one input, counted by ``FlopCounterMode`` (FLOPs / 2).

    BN, ReLU and upsampling are not counted: the sensor folds BN into the convolutions.
    """
    from torch.utils.flop_counter import FlopCounterMode

    size = input_size or model.config.input_size
    x = torch.zeros(1, model.config.in_channels, size, size)
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops() // 2)
