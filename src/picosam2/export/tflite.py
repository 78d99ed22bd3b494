"""LiteRT (``.tflite``) export through ``litert-torch`` (optional: ``pip install 'picosam2[tflite]'``,
about 1.2 GB; no TensorFlow needed).

* fp32: ``litert_torch.convert(model, (example,))``.
* INT8: PT2E static quantization (symmetric int8 weights and activations) calibrated on the same
  COCO windows as the other INT8 exports, then converted. The resulting model's input and output
  tensors are int8; :class:`picosam2.runtime.LiteRTBackend` quantizes the normalised float input
  and dequantizes the logits with the scales stored in the file, so callers always pass float32
  NCHW and get float32 logits back.

The model's config and the weights' provenance go into a sidecar ``<file>.tflite.json``
(:func:`picosam2.runtime.write_sidecar`), which the LiteRT backend reads.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import torch

from ..errors import BackendError
from ..runtime import form_metadata, write_sidecar
from .calibration import get_calibration_windows, to_model_input

EXTRA_HINT = "pip install 'picosam2[tflite]' (litert-torch)"


def litert_available() -> bool:
    """Whether ``litert_torch`` (the LiteRT converter) is installed."""
    return importlib.util.find_spec("litert_torch") is not None


def _require():
    if not litert_available():
        raise BackendError(f"tflite export needs litert-torch: {EXTRA_HINT}")
    import litert_torch

    return litert_torch


def _pt2e():
    """prepare_pt2e/convert_pt2e and litert-torch's PT2E quantizer (names moved between releases)."""
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError:  # older stacks
        from torch.ao.quantization.quantize_pt2e import convert_pt2e, prepare_pt2e
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig

    return prepare_pt2e, convert_pt2e, PT2EQuantizer, get_symmetric_quantization_config, QuantConfig


def export_tflite(
    model,
    out_path: str | os.PathLike,
    int8: bool = False,
    calibration=None,
    calib_count: int | None = None,
    calib_annotations=None,
    calib_images=None,
    per_channel: bool = True,
) -> Path:
    """Write ``model`` as a ``.tflite`` file (fp32, or INT8 with ``int8=True``) and its sidecar JSON."""
    litert_torch = _require()
    model = model.eval()
    size = model.config.input_size
    example = (torch.zeros(1, 3, size, size),)
    if int8:
        windows = get_calibration_windows(calibration, calib_count, calib_annotations, calib_images)
        data = to_model_input(windows, model.config)
        prepare_pt2e, convert_pt2e, PT2EQuantizer, get_config, QuantConfig = _pt2e()
        quantizer = PT2EQuantizer().set_global(get_config(is_per_channel=per_channel, is_dynamic=False))
        graph = torch.export.export(model, example).module()
        graph = prepare_pt2e(graph, quantizer)
        with torch.no_grad():
            for i in range(len(data)):
                graph(torch.from_numpy(data[i : i + 1]))
        graph = convert_pt2e(graph, fold_quantize=False)
        edge = litert_torch.convert(graph, example, quant_config=QuantConfig(pt2e_quantizer=quantizer))
    else:
        edge = litert_torch.convert(model, example)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="picosam2-tflite-") as tmp:
        staged = Path(tmp) / "model.tflite"
        edge.export(str(staged))
        final_tmp = out_path.with_name(f".{out_path.name}.tmp")
        final_tmp.write_bytes(staged.read_bytes())
        os.replace(final_tmp, out_path)
    write_sidecar(out_path, form_metadata(model.config, getattr(model, "weights_info", None)))
    return out_path
