"""Make Sony's Model Compression Toolkit (MCT) usable in this environment. Two workarounds, both here:

1. **torchvision stand-in.** ``edgemdt_cl`` (imported by MCT's PyTorch reader) refuses to import
   unless ``torchvision>=0.18`` is importable, although nothing on our path (PTQ, QAT, ONNX export of
   a plain conv network) uses it; only its NMS custom layers do. There is no CPU torchvision wheel
   that matches our CPU torch, so :func:`import_mct` registers an empty module named ``torchvision``
   in ``sys.modules`` *only while edgemdt_cl imports* and removes it before MCT itself is imported. MCT's own check
   (``importlib.util.find_spec("torchvision")``) therefore still sees no torchvision and keeps its
   data-generation feature (which really needs torchvision.transforms) switched off, and no other
   library (transformers, ...) is fooled into thinking torchvision is installed. If a real
   torchvision is installed, nothing is faked.

2. **Legacy ONNX exporter.** MCT's exporter calls ``torch.onnx.export(..., dynamic_axes=...)``
   without ``dynamo=False``; torch >= 2.9 defaults to the dynamo exporter, which rejects those
   ``dynamic_axes``. :func:`legacy_onnx_export` patches ``torch.onnx.export`` to default to
   ``dynamo=False`` for the duration of a ``with`` block (MCT's call only).

The ``imx500`` extra pins the versions that install together (MCT 2.5.1, mct-quantizers 1.6.0,
imx500-converter[pt] 3.19.2 with torch 2.13, onnx 1.17, onnxruntime 1.21.1).
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import sys
import types

from ..errors import MissingExtraError

#: version the stand-in claims (edgemdt_cl requires torchvision>=0.18)
STANDIN_VERSION = "0.28.0"
EXTRA_HINT = "pip install 'picosam2[imx500]'"


def _standin_torchvision() -> types.ModuleType:
    mod = types.ModuleType("torchvision")
    mod.__version__ = STANDIN_VERSION
    mod.__doc__ = "picosam2 stand-in: lets edgemdt_cl import; provides no torchvision functionality."
    mod.__spec__ = importlib.machinery.ModuleSpec("torchvision", None)
    mod.__picosam2_standin__ = True
    return mod


def import_mct():
    """Import and return ``model_compression_toolkit``, with the torchvision stand-in if needed.

    Raises :class:`MissingExtraError` (one line) when MCT is not installed."""
    if "model_compression_toolkit" in sys.modules:
        return sys.modules["model_compression_toolkit"]
    if importlib.util.find_spec("model_compression_toolkit") is None:
        raise MissingExtraError(f"the imx500 export needs Sony's Model Compression Toolkit: {EXTRA_HINT}")
    fake = None
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        fake = sys.modules["torchvision"] = _standin_torchvision()
    try:
        # edgemdt_cl validates torchvision when imported: import it (cached) with the stand-in...
        import edgemdt_cl.pytorch  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(f"cannot import edgemdt_cl ({exc}): {EXTRA_HINT}") from exc
    finally:
        # ...and remove it before MCT looks for torchvision itself
        if fake is not None and sys.modules.get("torchvision") is fake:
            del sys.modules["torchvision"]
    try:
        import model_compression_toolkit as mct
    except ImportError as exc:
        raise MissingExtraError(f"cannot import MCT ({exc}): {EXTRA_HINT}") from exc
    return mct


@contextlib.contextmanager
def legacy_onnx_export():
    """Within the block, ``torch.onnx.export`` defaults to the legacy (TorchScript) exporter."""
    import torch.onnx

    original = torch.onnx.export

    def export(*args, **kwargs):
        kwargs.setdefault("dynamo", False)
        return original(*args, **kwargs)

    torch.onnx.export = export
    try:
        yield
    finally:
        torch.onnx.export = original
