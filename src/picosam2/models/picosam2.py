"""The PicoSAM2 network: a depthwise-separable U-Net that segments the object at the centre
of a 96 x 96 window.

Layout (see REFERENCE.md in the project docs):

* encoder: separable blocks at widths 48, 96, 160, 256 (at 96, 48, 24, 12 px), a full 3x3
  stride-2 convolution between stages, a 320-wide bottleneck block at 6 px;
* decoder: nearest x2 upsampling then a separable block (192, 128, 80, 40); each level adds the
  encoder feature of the same resolution through a 1x1 projection;
* head: 1x1 convolution to one mask logit per pixel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class PicoSAM2Config:
    """Hyper-parameters of the network; stored next to the weights as JSON."""

    arch: str = "picosam2"
    in_channels: int = 3
    encoder_widths: tuple[int, ...] = (48, 96, 160, 256)
    bottleneck_width: int = 320
    decoder_widths: tuple[int, ...] = (192, 128, 80, 40)
    input_size: int = 96
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PicoSAM2Config:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)


class SeparableBlock(nn.Sequential):
    """Depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class PicoSAM2(nn.Module):
    """Input: (N, 3, S, S) normalised RGB windows. Output: (N, 1, S, S) mask logits for the
    object under the window centre. S must be divisible by 16 (96 by default)."""

    def __init__(self, config: PicoSAM2Config | None = None):
        super().__init__()
        self.config = config or PicoSAM2Config()
        c = self.config
        enc = list(c.encoder_widths)
        if len(enc) != len(c.decoder_widths):
            raise ValueError("encoder_widths and decoder_widths must have the same length")
        self.encoder = nn.ModuleList()
        self.downsample = nn.ModuleList()
        cin = c.in_channels
        for w in enc:
            self.encoder.append(SeparableBlock(cin, w))
            self.downsample.append(nn.Conv2d(w, w, 3, stride=2, padding=1, bias=False))
            cin = w
        self.bottleneck = SeparableBlock(cin, c.bottleneck_width)
        self.decoder = nn.ModuleList()
        self.skip = nn.ModuleList()
        cin = c.bottleneck_width
        for w, skip_w in zip(c.decoder_widths, reversed(enc)):
            self.decoder.append(SeparableBlock(cin, w))
            self.skip.append(nn.Conv2d(skip_w, w, 1))
            cin = w
        self.head = nn.Conv2d(cin, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block, down in zip(self.encoder, self.downsample):
            x = block(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x)
        for block, proj, feat in zip(self.decoder, self.skip, reversed(skips)):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = block(x) + proj(feat)
        return self.head(x)
