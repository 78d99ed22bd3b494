"""``picosam2 bench``: every figure in one run, on this machine.

The result is one JSON-able dict; ``benchmarks/RESULTS.md`` explains each key.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

from .timing import cpu_count, cpu_flags, cpu_name, median_ms, torch_threads


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _file_size(path) -> int:
    return int(Path(path).stat().st_size)


def model_sizes(model, workdir: Path, onnx_paths: dict) -> dict:
    import torch
    from safetensors.torch import save_file

    sizes = {}
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(workdir / "fp32.safetensors"))
    sizes["fp32"] = _file_size(workdir / "fp32.safetensors")
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    save_file(half, str(workdir / "fp16.safetensors"))
    sizes["fp16"] = _file_size(workdir / "fp16.safetensors")
    for name, path in onnx_paths.items():
        sizes[name] = _file_size(path)
    del torch
    return sizes


def _int8_onnx(model, fp32_path: Path, out: Path, per_channel: bool) -> Path:
    from ..export.onnx_int8 import export_onnx_int8

    return Path(export_onnx_int8(model, out, per_channel=per_channel))


def run_bench(
    weights=None,
    threads: int | None = None,
    quick: bool = False,
    peers: bool = True,
    imx500: bool | None = None,
    workdir: str | None = None,
) -> dict:
    """Measure everything; ``threads`` is the thread count for throughput (default: all cores).
    Latency is always single-thread, batch 1."""
    import torch

    from .. import __version__
    from ..export.onnx_fp32 import export_onnx
    from ..image_io import load_image
    from ..models import count_macs, count_params, from_pretrained
    from ..predictor import OnnxBackend, Predictor
    from . import peak, runtimes

    threads = threads or cpu_count()
    repeats = 20 if quick else 100
    # single-thread latency: more calls and a timed warm-up (caches, clocks, the runtimes' own
    # first-call work), since it is the figure the targets are read from
    lat_repeats, lat_warmup_s = (20, 0.2) if quick else (300, 1.0)

    def latency_ms(fn) -> float:
        return median_ms(fn, lat_repeats, warmup_seconds=lat_warmup_s)

    model = from_pretrained(weights).eval()
    macs = count_macs(model)
    tmp = Path(workdir or tempfile.mkdtemp(prefix="picosam2-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)

    _log("exporting ONNX fp32 and INT8 (per-tensor weights as `picosam2 export` does, and per-channel)")
    onnx_paths = {"onnx_fp32": export_onnx(model, tmp / "fp32.onnx")}
    int8_errors = {}
    for key, per_channel in (("onnx_int8", False), ("onnx_int8_per_channel", True)):
        try:
            onnx_paths[key] = _int8_onnx(model, onnx_paths["onnx_fp32"], tmp / f"{key}.onnx", per_channel)
        except ImportError as exc:  # the export room may be absent in a partial install
            int8_errors[key] = str(exc)

    result: dict = {
        "picosam2": __version__,
        "weights": str(weights or "default"),
        "machine": {
            "cpu": cpu_name(),
            "cores": cpu_count(),
            "avx512_vnni": "avx512_vnni" in cpu_flags(),
            "amx_int8": "amx_int8" in cpu_flags(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "params": count_params(model),
        "macs": macs,
        "input_size": model.config.input_size,
    }
    result["sizes_bytes"] = model_sizes(model, tmp, onnx_paths)

    x1 = np.random.default_rng(0).standard_normal((1, 3, 96, 96)).astype(np.float32)
    latency = {}
    with torch_threads(1):
        _log("latency, batch 1, one thread: torch")
        for key, cl in (("torch_fp32", False), ("torch_fp32_channels_last", True)):
            latency[key] = latency_ms(lambda f=runtimes.torch_runner(model, channels_last=cl): f(x1))
    for key, path in onnx_paths.items():
        _log(f"latency, batch 1, one thread: onnxruntime {key}")
        latency[key] = latency_ms(lambda f=runtimes.onnx_runner(path, 1): f(x1))
    if runtimes.openvino_available():
        for key, path in onnx_paths.items():
            name = key.replace("onnx_", "openvino_")
            _log(f"latency, batch 1, one thread: {name}")
            latency[name] = latency_ms(lambda f=runtimes.openvino_runner(path, 1): f(x1))
    result["latency_ms"] = {k: round(v, 3) for k, v in latency.items()}
    best_int8 = min((k for k in latency if "int8" in k), key=latency.get, default=None)
    result["best_int8"] = best_int8

    _log(f"throughput, batch 16, {threads} threads")
    x16 = np.random.default_rng(1).standard_normal((16, 3, 96, 96)).astype(np.float32)
    thr = {}
    with torch_threads(threads):
        thr["torch_fp32"] = 16e3 / median_ms(lambda f=runtimes.torch_runner(model, True): f(x16), repeats // 4 + 3)
    for key, path in onnx_paths.items():
        thr[key] = 16e3 / median_ms(lambda f=runtimes.onnx_runner(path, threads): f(x16), repeats // 4 + 3)
    if runtimes.openvino_available():
        for key, path in onnx_paths.items():
            f = runtimes.openvino_runner(path, threads, batch_size=16)
            thr[key.replace("onnx_", "openvino_")] = 16e3 / median_ms(lambda f=f: f(x16), repeats // 4 + 3)
    result["throughput"] = {k: round(v, 1) for k, v in thr.items()}

    _log("end to end: a 1800x1200 photo to a full-size mask (window cut + model + paste-back), one thread")
    photo = load_image(Path(__file__).resolve().parents[1] / "samples" / "truck.jpg")
    e2e = {}
    with torch_threads(1):
        pred = Predictor(model)
        e2e["torch_fp32"] = median_ms(lambda: pred.predict(photo, points=[[900, 600]]), repeats // 2)
        for key in ("onnx_fp32", "onnx_int8"):
            if key in onnx_paths:
                p = Predictor(backend=OnnxBackend(onnx_paths[key], config=model.config, threads=1))
                e2e[key] = median_ms(lambda p=p: p.predict(photo, points=[[900, 600]]), repeats // 2)
    result["end_to_end_ms"] = {k: round(v, 3) for k, v in e2e.items()}

    _log("peak MAC rate of one core (fp32 GEMM via torch, u8s8 GEMM via onnxruntime)")
    peaks = {"fp32_gmacs": peak.fp32_peak_gmacs(), "int8_gmacs": peak.int8_peak_gmacs()}
    result["peak_gmacs_per_core"] = {k: round(v, 1) for k, v in peaks.items()}
    result["measured_gmacs"] = {k: round(macs / (v / 1e3) / 1e9, 1) for k, v in latency.items()}
    if best_int8:
        result["int8_fraction_of_peak"] = round(macs / (latency[best_int8] / 1e3) / 1e9 / peaks["int8_gmacs"], 3)

    if imx500 is None:
        imx500 = not quick
    if imx500:
        imx = _imx500_size(model, tmp)
        if "imx500_memory_report" in imx:
            result["imx500_memory"] = imx.pop("imx500_memory_report")
        result["sizes_bytes"].update(imx)

    if peers:
        from .peers import sam21_tiny_latency

        _log("peer: SAM 2.1 Hiera-Tiny (random weights, full-size config, 1024 input), one thread")
        with torch_threads(1):
            peer = sam21_tiny_latency(repeats=1 if quick else 3)
        result["peers"] = {"sam2.1-hiera-tiny": peer}
        if best_int8:
            result["speedup_vs_sam2.1_tiny"] = round(peer["latency_ms"] / latency[best_int8], 1)
    if int8_errors:
        result["errors"] = int8_errors
    return result


def _imx500_size(model, tmp: Path) -> dict:
    """packerOut.zip size and the converter's memory report, when the imx500 extra and Java are there."""
    try:
        from ..export import imx500
    except ImportError:
        return {}
    try:
        out = imx500.export_imx500(model, tmp / "imx500", calib_count=32)
    except (RuntimeError, ValueError, ImportError) as exc:
        _log(f"imx500 package skipped: {exc}")
        return {}
    sizes = {"imx500_packerOut": _file_size(out.packer_zip)}
    if out.memory is not None:
        mem = out.to_json()["memory"]
        sizes["imx500_memory_report"] = {k: v for k, v in mem.items() if not isinstance(v, (dict, list))}
    return sizes


def environment_note() -> str:
    return f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
