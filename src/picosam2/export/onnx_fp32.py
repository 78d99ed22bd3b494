"""fp32 ONNX export, checked against PyTorch. The file carries the model's config and the weights'
provenance in its metadata (:func:`picosam2.runtime.form_metadata`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import ExportError
from ..runtime import OnnxBackend, TorchBackend, form_metadata, write_onnx_metadata

INPUT_NAME = "image"


def export_onnx(model, path: str | os.PathLike, opset: int = 17, check: bool = True, atol: float = 1e-4) -> Path:
    """Write ``model`` as a single-file ONNX graph with a dynamic batch axis (written to a
    temporary name, then renamed), its config and weights' provenance in the metadata. With
    ``check``, run it in onnxruntime on random input and raise if it differs from PyTorch by more
    than ``atol``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    size = model.config.input_size
    dummy = torch.randn(2, model.config.in_channels, size, size)
    names = list(model.config.output_names)  # mask_logits (N, 1, S, S)[, iou (N, 1)]
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=names,
            dynamic_axes={INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in names}},
            opset_version=opset,
            dynamo=False,
        )
        write_onnx_metadata(tmp, form_metadata(model.config, getattr(model, "weights_info", None)))
        if check:
            max_err = compare_onnx(model, tmp)
            if max_err > atol:
                raise ExportError(f"ONNX output differs from PyTorch by {max_err:.2e} (> {atol:g})")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def compare_onnx(model, onnx_path, batch: int = 3, seed: int = 0) -> float:
    """Largest absolute difference between PyTorch and onnxruntime outputs (logits and, when
    present, IoU scores) on random input."""
    size = model.config.input_size
    x = np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)
    ref = TorchBackend(model)(x)
    out = OnnxBackend(onnx_path, config=model.config)(x)
    err = float(np.abs(out.logits - ref.logits).max())
    if ref.scores is not None:
        err = max(err, float(np.abs(out.scores - ref.scores).max()))
    return err
