"""Test-only: a network in the layout of the PicoSAM2 authors' module (pbonazzi/picosam2,
``model_compression/picosam2_model_distillation.py``): the same attribute names, so its
``state_dict`` has their keys, and the same forward pass, written independently from their
description so the conversion is checked against an outside definition, not against itself."""

from __future__ import annotations

import torch
from torch import nn


def _separable(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU(),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
    )


class PaperPicoSAM2(nn.Module):
    """Encoder stages 48/96/160/256 with 3x3 stride-2 convolutions between, a 320 bottleneck, four
    (upsample, block) decoder levels 192/128/80/40 each plus a biased 1x1 skip projection, a 1x1 head."""

    def __init__(self):
        super().__init__()
        widths = [3, 48, 96, 160, 256]
        for i in range(1, 5):
            setattr(self, f"encoder_stage{i}", _separable(widths[i - 1], widths[i]))
            setattr(self, f"down{i}", nn.Conv2d(widths[i], widths[i], 3, stride=2, padding=1, bias=False))
        self.bottleneck = _separable(256, 320)
        dec = [320, 192, 128, 80, 40]
        for i in range(1, 5):
            setattr(
                self,
                f"up{i}",
                nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), _separable(dec[i - 1], dec[i])),
            )
        # skip_conn4 joins the deepest encoder feature (256) to the first decoder level (192)
        self.skip_conn4 = nn.Conv2d(256, 192, 1)
        self.skip_conn3 = nn.Conv2d(160, 128, 1)
        self.skip_conn2 = nn.Conv2d(96, 80, 1)
        self.skip_conn1 = nn.Conv2d(48, 40, 1)
        self.output_head = nn.Conv2d(40, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.encoder_stage1(x)
        f2 = self.encoder_stage2(self.down1(f1))
        f3 = self.encoder_stage3(self.down2(f2))
        f4 = self.encoder_stage4(self.down3(f3))
        b = self.bottleneck(self.down4(f4))
        u = self.up1(b) + self.skip_conn4(f4)
        u = self.up2(u) + self.skip_conn3(f3)
        u = self.up3(u) + self.skip_conn2(f2)
        u = self.up4(u) + self.skip_conn1(f1)
        return self.output_head(u)


def random_paper_model(seed: int = 0) -> PaperPicoSAM2:
    """Random weights with non-trivial BatchNorm statistics and affine terms, in eval mode."""
    torch.manual_seed(seed)
    m = PaperPicoSAM2()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.7, 1.3)
                mod.bias.uniform_(-0.1, 0.1)
                mod.num_batches_tracked.fill_(1234)
        m.output_head.weight.mul_(40.0)  # logits of order one, so a parity check has something to compare
    return m.eval()
