"""fp32 ONNX export, checked against PyTorch."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

INPUT_NAME = "image"
OUTPUT_NAME = "mask_logits"


def export_onnx(model, path: str | os.PathLike, opset: int = 17, check: bool = True, atol: float = 1e-4) -> Path:
    """Write ``model`` as a single-file ONNX graph with a dynamic batch axis (written to a
    temporary name, then renamed). With ``check``, run it in onnxruntime on random input and
    raise if it differs from PyTorch by more than ``atol``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    size = model.config.input_size
    dummy = torch.randn(2, model.config.in_channels, size, size)
    names = getattr(model.config, "output_names", (OUTPUT_NAME,))
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=list(names),
            dynamic_axes={INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in names}},
            opset_version=opset,
            dynamo=False,
        )
        if check:
            max_err = compare_onnx(model, tmp)
            if max_err > atol:
                raise RuntimeError(f"ONNX output differs from PyTorch by {max_err:.2e} (> {atol:g})")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def compare_onnx(model, onnx_path, batch: int = 3, seed: int = 0) -> float:
    """Largest absolute difference between PyTorch and onnxruntime outputs (logits, and the
    quality score when the network has one) on random input."""
    import onnxruntime as ort

    size = model.config.input_size
    x = np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x))
    refs = [r.numpy() for r in (ref if isinstance(ref, (tuple, list)) else (ref,))]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {sess.get_inputs()[0].name: x})
    if len(outs) != len(refs):
        raise RuntimeError(f"ONNX graph has {len(outs)} outputs, the network {len(refs)}")
    return max(float(np.abs(o - r).max()) for o, r in zip(outs, refs))
