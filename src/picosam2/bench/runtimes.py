"""Runnable forms of one model, each a callable ``f(batch NCHW float32) -> logits``.

* ``torch_fp32``: PyTorch eager (channels-last when it is faster);
* ``onnx_fp32`` / ``onnx_int8``: onnxruntime, full graph optimisation;
* ``openvino_*``: the same ONNX files compiled by OpenVINO (optional ``openvino`` extra),
  which uses the CPU's VNNI INT8 kernels (AMX where present).
"""

from __future__ import annotations

import numpy as np


def torch_runner(model, channels_last: bool = False):
    import torch

    model = model.eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)

    def run(batch: np.ndarray):
        x = torch.from_numpy(batch)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return model(x)

    return run


def onnx_runner(path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda batch: sess.run(None, {name: batch})[0]


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def openvino_runner(path, threads: int, batch_size: int = 1):
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape({model.inputs[0].get_any_name(): [batch_size, 3, 96, 96]})
    compiled = core.compile_model(
        model, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    )
    request = compiled.create_infer_request()

    def run(batch: np.ndarray):
        return request.infer({0: batch})[0]

    return run
