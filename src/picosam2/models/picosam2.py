"""The PicoSAM2 network: a depthwise-separable U-Net that segments the object at the centre
of a 96 x 96 window.

Layout (as in the paper, arXiv 2506.18807, and its public code):

* encoder: separable blocks at widths 48, 96, 160, 256 (at 96, 48, 24, 12 px), a full 3x3
  stride-2 convolution between stages, a 320-wide bottleneck block at 6 px;
* decoder: nearest x2 upsampling then a separable block (192, 128, 80, 40); each level adds the
  encoder feature of the same resolution through a 1x1 projection;
* head: 1x1 convolution to one mask logit per pixel;
* optional quality head (``quality_head=True``): the IoU the mask will have with the *whole*
  object in the full image (object pixels outside the window count as missed), predicted from
  globally pooled bottleneck and decoder features plus statistics of the mask itself (coverage,
  border contact, uncertainty). About 1.5 % more parameters and well under 1 % more MACs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from .config import PicoSAM2Config


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


class QualityHead(nn.Module):
    """Predicts the full-image IoU of the mask, in [0, 1], shape (N, 1).

    Inputs: the bottleneck features, the last decoder features and the mask logits. Features:
    the global average of both feature maps, the decoder features averaged under the mask
    probability, and three mask statistics: coverage (mean probability), border contact (mean
    probability on the one-pixel window border: an object that runs past the window loses IoU)
    and uncertainty (mean p(1-p)). Two 1x1 convolutions (4-D tensors throughout, which the
    sensor's converter handles as plain layers). The mask enters detached: the quality loss
    teaches the score, it does not bend the mask.
    """

    def __init__(self, bottleneck_width: int, decoder_width: int, hidden: int = 48):
        super().__init__()
        n_in = bottleneck_width + 2 * decoder_width + 3
        self.fc1 = nn.Conv2d(n_in, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, 1, 1)

    def forward(self, bottleneck: torch.Tensor, decoded: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """(N, 1) predicted full-image IoU of the mask ``logits`` from the bottleneck and decoder features."""
        return self.predict(self.pooled(bottleneck, decoded, logits))

    def predict(self, pooled: torch.Tensor) -> torch.Tensor:
        """The predicted IoU (N, 1) of :meth:`pooled` features (N, F, 1, 1)."""
        return torch.sigmoid(self.fc2(F.relu(self.fc1(pooled)))).flatten(1)

    @staticmethod
    def pooled(bottleneck: torch.Tensor, decoded: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The head's input vector (N, F, 1, 1): pooled features and mask statistics."""
        p = torch.sigmoid(logits.detach())
        border = torch.cat([p[:, :, :1, :], p[:, :, -1:, :]], 3).mean((2, 3), keepdim=True)
        border = (border + torch.cat([p[:, :, :, :1], p[:, :, :, -1:]], 2).mean((2, 3), keepdim=True)) * 0.5
        feats = [
            bottleneck.mean((2, 3), keepdim=True),
            decoded.mean((2, 3), keepdim=True),
            (decoded * p).mean((2, 3), keepdim=True),
            p.mean((2, 3), keepdim=True),
            border,
            (p * (1.0 - p)).mean((2, 3), keepdim=True) * 4.0,
        ]
        return torch.cat(feats, 1)


class PicoSAM2(nn.Module):
    """Input: (N, 3, S, S) normalised RGB windows. Output: (N, 1, S, S) mask logits for the
    object under the window centre; with ``config.quality_head`` a tuple ``(logits, iou)`` where
    ``iou`` (N, 1) is the predicted full-image IoU of the mask. S must be divisible by 16 (96 by
    default)."""

    def __init__(self, config: PicoSAM2Config | None = None):
        super().__init__()
        self.config = config or PicoSAM2Config()
        c = self.config
        enc = list(c.encoder_widths)
        if len(enc) != len(c.decoder_widths):
            raise UsageError("encoder_widths and decoder_widths must have the same length")
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
        self.quality = QualityHead(c.bottleneck_width, cin, c.quality_hidden) if c.quality_head else None

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(N, 1, S, S) mask logits of normalised (N, 3, S, S) windows, plus (N, 1) predicted IoU with a quality head."""
        skips = []
        for block, down in zip(self.encoder, self.downsample):
            x = block(x)
            skips.append(x)
            x = down(x)
        x = bottleneck = self.bottleneck(x)
        for block, proj, feat in zip(self.decoder, self.skip, reversed(skips)):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = block(x) + proj(feat)
        logits = self.head(x)
        if self.quality is None:
            return logits
        return logits, self.quality(bottleneck, x, logits)


def split_outputs(out) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(logits (N, 1, S, S), iou (N, 1) or None)`` from a forward result of either kind."""
    if isinstance(out, (tuple, list)):
        return out[0], out[1]
    return out, None
