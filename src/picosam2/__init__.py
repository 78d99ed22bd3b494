"""picosam2: promptable segmentation small enough to run inside the Sony IMX500 sensor.

``import picosam2`` is light (no torch): the names below are imported on first use, and only the
PyTorch paths (the torch backend, training, export) import torch.
"""

from __future__ import annotations

import importlib

__version__ = "1.0.0"

#: public name -> module it lives in (imported on first access)
_EXPORTS = {
    "PicoSAM2": "picosam2.models",
    "PicoSAM2Config": "picosam2.models",
    "PicoSAM2Error": "picosam2.errors",
    "Prediction": "picosam2.predictor",
    "Predictor": "picosam2.predictor",
    "create_model": "picosam2.models",
    "from_pretrained": "picosam2.models",
    "list_pretrained": "picosam2.models",
    "load_backend": "picosam2.runtime",
    "save_pretrained": "picosam2.models",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'picosam2' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
