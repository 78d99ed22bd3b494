"""The CPU's peak multiply-accumulate rate, measured with large matrix products on one thread,
so that a model's measured MAC rate can be put beside what the core can do."""

from __future__ import annotations

import numpy as np

from .timing import median_ms


def fp32_peak_gmacs(n: int = 1024, repeats: int = 10) -> float:
    """fp32 GEMM (n x n x n) through PyTorch on one thread, in G MAC/s."""
    import torch

    from .timing import torch_threads

    a, b = torch.randn(n, n), torch.randn(n, n)
    with torch_threads(1), torch.inference_mode():
        ms = median_ms(lambda: torch.mm(a, b), repeats=repeats, warmup=3)
    return n**3 / (ms / 1e3) / 1e9


def int8_peak_gmacs(n: int = 1024, repeats: int = 10) -> float:
    """u8 x s8 GEMM through onnxruntime's MatMulInteger (VNNI kernels; AMX where the CPU has it) on one thread."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    w = rng.integers(-128, 127, size=(n, n), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w"], ["y"])],
        "peak",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [n, n])],
        [onnx.numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    a = rng.integers(0, 255, size=(n, n), dtype=np.uint8)
    ms = median_ms(lambda: sess.run(None, {"a": a}), repeats=repeats, warmup=3)
    return n**3 / (ms / 1e3) / 1e9
