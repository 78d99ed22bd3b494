"""Networks, their registry and weight files."""

from .picosam2 import IMAGENET_MEAN, IMAGENET_STD, PicoSAM2, PicoSAM2Config, QualityHead, SeparableBlock, split_outputs
from .registry import (
    DEFAULT_WEIGHTS_DIR,
    WeightsError,
    create_model,
    from_pretrained,
    list_models,
    register_model,
    save_pretrained,
    weights_metadata,
)
from .stats import count_macs, count_params

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "DEFAULT_WEIGHTS_DIR",
    "PicoSAM2",
    "PicoSAM2Config",
    "QualityHead",
    "SeparableBlock",
    "WeightsError",
    "count_macs",
    "count_params",
    "create_model",
    "from_pretrained",
    "list_models",
    "register_model",
    "save_pretrained",
    "split_outputs",
    "weights_metadata",
]
