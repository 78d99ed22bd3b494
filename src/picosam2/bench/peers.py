"""Peer models timed on the same CPU in the same run.

SAM 2.1 Hiera-Tiny through ``transformers``' ``Sam2Model``: ``Sam2Config()``'s defaults are the
Hiera-Tiny shape (96 wide, stages 1-2-7-2). The weights are random — latency does not depend on
their values and no checkpoint can be downloaded here. One prompt = the image encoder at its
1024 x 1024 input plus the prompt encoder and mask decoder for one point (what a user waits for
after a click on a new photo).
"""

from __future__ import annotations

from ..errors import MissingExtraError
from .timing import median_ms


def sam21_tiny_model(config=None):
    """A randomly initialised SAM 2.1 Tiny (``transformers.Sam2Model``) for timing the peer row; ``config`` overrides its Sam2Config."""
    try:
        from transformers import Sam2Config, Sam2Model
    except ImportError as exc:
        raise MissingExtraError("the SAM 2.1 peer row needs transformers: pip install 'picosam2[train]'") from exc
    import torch

    torch.manual_seed(0)
    return Sam2Model(config or Sam2Config()).eval()


def sam21_tiny_latency(repeats: int = 3, count_flops: bool = True, config=None) -> dict:
    """Latency of one prompt on a new image; ``config`` replaces the full-size Hiera-Tiny
    configuration (tests use a small one)."""
    import torch

    model = sam21_tiny_model(config)
    size = model.config.vision_config.backbone_config.image_size[0]
    pixels = torch.randn(1, 3, size, size)
    points = torch.tensor([[[[size / 2, size / 2]]]], dtype=torch.float32)
    labels = torch.ones(1, 1, 1, dtype=torch.long)

    def once():
        with torch.inference_mode():
            model(pixel_values=pixels, input_points=points, input_labels=labels, multimask_output=True)

    out = {
        "params": sum(p.numel() for p in model.parameters()),
        "input_size": size,
        "latency_ms": round(median_ms(once, repeats=repeats, warmup=1), 1),
        "weights": "random (Sam2Config() defaults = Hiera-Tiny shape)",
    }
    if count_flops:
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            once()
        out["macs"] = int(counter.get_total_flops() // 2)
    return out
