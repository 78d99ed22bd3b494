"""Networks, their registry and weight files.

Light to import: the config and the registry need no torch; :class:`PicoSAM2`, the counters and
the other torch-backed names are imported on first use.
"""

from __future__ import annotations

import importlib

from .config import IMAGENET_MEAN, IMAGENET_STD, PicoSAM2Config
from .registry import (
    DEFAULT_PRETRAINED,
    DEFAULT_WEIGHTS_DIR,
    WeightsError,
    create_model,
    from_pretrained,
    is_trained,
    list_models,
    list_pretrained,
    push_to_hub,
    resolve_weights,
    save_pretrained,
    weights_info,
    weights_metadata,
)

#: names imported on first use (they need torch): name -> submodule
_LAZY = {
    "PicoSAM2": "picosam2",
    "QualityHead": "picosam2",
    "SeparableBlock": "picosam2",
    "split_outputs": "picosam2",
    "count_macs": "stats",
    "count_params": "stats",
}

__all__ = [
    "DEFAULT_PRETRAINED",
    "DEFAULT_WEIGHTS_DIR",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PicoSAM2",
    "PicoSAM2Config",
    "QualityHead",
    "SeparableBlock",
    "WeightsError",
    "count_macs",
    "count_params",
    "create_model",
    "from_pretrained",
    "is_trained",
    "list_models",
    "list_pretrained",
    "push_to_hub",
    "resolve_weights",
    "save_pretrained",
    "split_outputs",
    "weights_info",
    "weights_metadata",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
