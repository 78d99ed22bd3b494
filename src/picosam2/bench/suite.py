"""``picosam2 bench``: every figure in one run, on this machine.

The result is one JSON-able dict; ``benchmarks/RESULTS.md`` explains each key.
"""

from __future__ import annotations

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
    """File sizes, in bytes, of the model's forms (safetensors fp32/fp16, the given ONNX files) written under ``workdir``."""
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


def export_forms(model, workdir: Path) -> tuple[dict, dict]:
    """ONNX fp32 and INT8 (per-tensor weights as ``picosam2 export`` does, and per-channel) of
    ``model`` in ``workdir``: ``({key: path}, {key: error})``."""
    from ..export.onnx_fp32 import export_onnx

    paths = {"onnx_fp32": export_onnx(model, workdir / "fp32.onnx")}
    errors = {}
    for key, per_channel in (("onnx_int8", False), ("onnx_int8_per_channel", True)):
        try:
            from ..export.onnx_int8 import export_onnx_int8

            paths[key] = Path(export_onnx_int8(model, workdir / f"{key}.onnx", per_channel=per_channel))
        except ImportError as exc:  # the export room may be absent in a partial install
            errors[key] = str(exc)
    return paths, errors


def backends(model, onnx_paths: dict, threads: int, batch_size: int | None = None, channels_last=(False, True)):
    """Every runnable form of ``model`` as ``(key, backend)``: torch (contiguous / channels-last),
    onnxruntime and, when installed, OpenVINO on each ONNX file. torch's threads are the caller's."""
    from ..runtime import OnnxBackend, OpenVinoBackend, TorchBackend, available_backends

    for cl in channels_last:
        yield ("torch_fp32_channels_last" if cl else "torch_fp32"), TorchBackend(model, channels_last=cl)
    for key, path in onnx_paths.items():
        yield key, OnnxBackend(path, threads=threads)
    if "openvino" in available_backends():
        for key, path in onnx_paths.items():
            yield key.replace("onnx_", "openvino_"), OpenVinoBackend(path, threads=threads, batch_size=batch_size)


def _machine() -> dict:
    import torch

    return {
        "cpu": cpu_name(),
        "cores": cpu_count(),
        "avx512_vnni": "avx512_vnni" in cpu_flags(),
        "amx_int8": "amx_int8" in cpu_flags(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def _input(model, batch: int, seed: int) -> np.ndarray:
    size = model.config.input_size
    return np.random.default_rng(seed).standard_normal((batch, model.config.in_channels, size, size)).astype(np.float32)


def measure_latency(model, onnx_paths: dict, repeats: int, warmup_s: float) -> dict:
    """Median ms per call, batch 1, one thread, of every form."""
    x1 = _input(model, 1, 0)
    out = {}
    with torch_threads(1):
        for key, backend in backends(model, onnx_paths, threads=1, batch_size=1):
            _log(f"latency, batch 1, one thread: {key}")
            out[key] = median_ms(lambda f=backend: f(x1), repeats, warmup_seconds=warmup_s)
    return out


def measure_throughput(model, onnx_paths: dict, threads: int, repeats: int) -> dict:
    """Windows per second, batch 16, ``threads`` threads, of every form (torch: channels-last)."""
    _log(f"throughput, batch 16, {threads} threads")
    x16 = _input(model, 16, 1)
    out = {}
    with torch_threads(threads):
        for key, backend in backends(model, onnx_paths, threads, batch_size=16, channels_last=(True,)):
            out[key.replace("_channels_last", "")] = 16e3 / median_ms(lambda f=backend: f(x16), repeats)
    return out


#: the click the end-to-end figures time, on the bundled 1800 x 1200 truck photo
CLICK = [[900, 600]]


def _click_backends(model, onnx_paths: dict) -> dict:
    """The forms a click is timed on, one thread each: torch, ONNX fp32 / INT8 on onnxruntime and,
    when installed, on OpenVINO."""
    from ..runtime import OnnxBackend, OpenVinoBackend, TorchBackend, available_backends

    out = {"torch_fp32": TorchBackend(model)}
    for key in ("onnx_fp32", "onnx_int8"):
        if key in onnx_paths:
            out[key] = OnnxBackend(onnx_paths[key], threads=1)
    if "openvino" in available_backends():
        for key in ("onnx_fp32", "onnx_int8"):
            if key in onnx_paths:
                out[key.replace("onnx_", "openvino_")] = OpenVinoBackend(onnx_paths[key], threads=1)
    return out


#: the scale-aware click settings the end-to-end figures time: the default and the fast one
CLICK_SCALES = ("auto", "auto:4")


def measure_end_to_end(model, onnx_paths: dict, repeats: int) -> dict:
    """ms from a 1800x1200 photo to the full-size mask of one click, one thread, per form:
    ``single`` (one point window: cut + model + paste-back) and each of :data:`CLICK_SCALES`
    (scale-aware: every window size cut, the candidates through the model as one batch, the
    best-scored one chosen and pasted back; the border rule for weights without a quality head)."""
    from ..image_io import load_image
    from ..predictor import Predictor
    from ..prompts import point_scales_for

    _log("end to end: a 1800x1200 photo to a full-size mask, one window and scale-aware clicks, one thread")
    photo = load_image(Path(__file__).resolve().parents[1] / "samples" / "truck.jpg")
    out: dict = {"single": {}, **{spec: {} for spec in CLICK_SCALES}}
    with torch_threads(1):
        for key, backend in _click_backends(model, onnx_paths).items():
            for spec in ("single",) + CLICK_SCALES:
                pred = Predictor(backend=backend, point_scales=None if spec == "single" else spec)
                out[spec][key] = median_ms(lambda p=pred: p.predict(photo, points=CLICK).union(), repeats)
    out["candidates"] = {spec: len(point_scales_for(spec, photo.shape[1::-1])) for spec in CLICK_SCALES}
    return out


#: the clip the tracker figures follow an object through: 854 x 480 (480p) frames panned across
#: the bundled truck photo, and the click on the first frame
TRACK_CLIP_SIZE = (854, 480)
TRACK_CLIP_FRAMES = 24
TRACK_CLICK = (427, 240)


def track_clip() -> list:
    """A 480p clip from the bundled truck photo (resized to 1100 px wide, a 854 x 480 view panned
    6 px right and 2 px down a frame, then back): the tracker's timing clip."""
    from PIL import Image

    photo = Image.open(Path(__file__).resolve().parents[1] / "samples" / "truck.jpg").convert("RGB")
    photo = np.asarray(photo.resize((1100, round(1100 * photo.height / photo.width)), Image.BILINEAR))
    w, h = TRACK_CLIP_SIZE
    half = [photo[2 * k : 2 * k + h, 6 * k : 6 * k + w] for k in range(TRACK_CLIP_FRAMES // 2)]
    return half + half[::-1]


def measure_tracker(model, onnx_paths: dict, repeats: int) -> dict:
    """Following one clicked object through the 480p :func:`track_clip`, one thread, per form:
    median ms of ``Tracker.update`` (cut, normalise, model, the policy's reading of the window
    mask, the full-size mask), frames per second, its ratio to the same form's one-window click
    on a frame of the clip (cut, normalise, model, paste), and windows per frame; and the same
    frames against a one-window click at the very window the tracker runs
    (:func:`measure_same_window`)."""
    from ..predictor import Predictor
    from ..track import Tracker

    _log("tracker: one object through a 480p clip, one thread, per form")
    clip = track_clip()
    out: dict = {"tracker_ms_per_frame": {}, "tracker_fps": {}, "tracker_vs_single_click": {}}
    windows = []
    with torch_threads(1):
        for key, backend in _click_backends(model, onnx_paths).items():
            single = Predictor(backend=backend, point_scales=None)
            click_ms = median_ms(lambda p=single: p.predict(clip[0], points=[TRACK_CLICK]).union(), repeats)
            tracker = Tracker(Predictor(backend=backend))
            tracker.start(clip[0], point=TRACK_CLICK)
            frames = iter(())

            def step(t=tracker):
                nonlocal frames
                frame = next(frames, None)
                if frame is None:
                    frames = iter(clip)
                    frame = next(frames)
                windows.append(t.update(frame)[1].windows)

            ms = median_ms(step, max(repeats, TRACK_CLIP_FRAMES))
            out["tracker_ms_per_frame"][key] = round(ms, 3)
            out["tracker_fps"][key] = round(1e3 / ms, 1)
            out["tracker_vs_single_click"][key] = round(ms / click_ms, 2)
    out["tracker_windows_per_frame"] = round(float(np.mean(windows)), 3) if windows else None
    out.update(measure_same_window(model, onnx_paths, repeats))
    out["tracker_clip"] = {"size": list(TRACK_CLIP_SIZE), "frames": TRACK_CLIP_FRAMES, "click": list(TRACK_CLICK)}
    return out


def measure_same_window(model, onnx_paths: dict, repeats: int) -> dict:
    """Per form, one thread: median ms of a tracker frame and of a one-window click at the window
    the tracker runs on that frame, on the same frames of the clip, timed alternately; their ratio."""
    import time

    from ..predictor import Predictor
    from ..prompts import Window
    from ..track import Tracker
    from ..track import policy as P

    clip = track_clip()
    size = (clip[0].shape[1], clip[0].shape[0])
    warmup, timed = 10, max(repeats, TRACK_CLIP_FRAMES)
    out: dict = {"same_window_tracker_ms": {}, "same_window_click_ms": {}, "tracker_vs_same_window_click": {}}
    sides = []
    with torch_threads(1):
        for key, backend in _click_backends(model, onnx_paths).items():
            tracker = Tracker(Predictor(backend=backend))
            obj = tracker.start(clip[0], point=TRACK_CLICK).obj_id
            clicker = Predictor(backend=backend, point_scales=None)
            track_ms, click_ms = [], []
            for k in range(warmup + timed):
                frame = clip[k % len(clip)]
                win = Window(*P.next_windows(tracker.state(obj), size, tracker.policy)[0])
                times = {}
                for name in ("track", "click") if k % 2 else ("click", "track"):
                    t0 = time.perf_counter()
                    if name == "track":
                        result = tracker.update(frame)[obj]
                    else:  # what Predictor.predict does for one window
                        clicker.predict_in(frame, [win]).union()
                    times[name] = time.perf_counter() - t0
                if result.window != win.as_tuple():
                    raise RuntimeError("the tracker ran another window than its policy's next one")
                if k >= warmup:
                    track_ms.append(times["track"] * 1e3)
                    click_ms.append(times["click"] * 1e3)
                    sides.append(win.width)
            t, c = float(np.median(track_ms)), float(np.median(click_ms))
            out["same_window_tracker_ms"][key] = round(t, 3)
            out["same_window_click_ms"][key] = round(c, 3)
            out["tracker_vs_same_window_click"][key] = round(t / c, 2)
            out["single_click_window_side"] = int(clicker.window_size)
    out["tracker_window_side_median"] = int(np.median(sides)) if sides else None
    return out


def auto_click_rows(e2e: dict, latency: dict) -> dict:
    """The scale-aware click's cost as ratios measured in this run, per setting and form: to the
    same form's one-window click (end to end), and to one window of that form through the model
    (batch 1, the latency table; the issue's target: at most 5 for the INT8 forms)."""
    rows: dict = {"auto_click_ms": {}, "auto_click_candidates": e2e["candidates"]}
    rows["auto_vs_single_click"], rows["auto_vs_one_window"] = {}, {}
    for spec in CLICK_SCALES:
        ms = e2e[spec]
        rows["auto_click_ms"][spec] = {k: round(v, 3) for k, v in ms.items()}
        rows["auto_vs_single_click"][spec] = {k: round(v / e2e["single"][k], 2) for k, v in ms.items()}
        rows["auto_vs_one_window"][spec] = {k: round(v / latency[k], 2) for k, v in ms.items() if k in latency}
    return rows


def run_bench(
    weights=None,
    threads: int | None = None,
    quick: bool = False,
    peers: bool = True,
    imx500: bool | None = None,
    workdir: str | None = None,
) -> dict:
    """Measure everything; ``threads`` is the thread count for throughput (default: all cores).
    Latency is always single-thread, batch 1 (more calls and a timed warm-up, since it is the
    figure the targets are read from)."""
    from .. import __version__
    from ..models import count_macs, count_params, from_pretrained
    from . import peak

    threads = threads or cpu_count()
    repeats = 20 if quick else 100
    model = from_pretrained(weights).eval()
    macs = count_macs(model)
    tmp = Path(workdir or tempfile.mkdtemp(prefix="picosam2-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    _log("exporting ONNX fp32 and INT8 (per-tensor weights as `picosam2 export` does, and per-channel)")
    onnx_paths, int8_errors = export_forms(model, tmp)
    result: dict = {
        "picosam2": __version__,
        "weights": str(weights or "default"),
        "machine": _machine(),
        "params": count_params(model),
        "macs": macs,
        "input_size": model.config.input_size,
        "sizes_bytes": model_sizes(model, tmp, onnx_paths),
    }
    latency = measure_latency(model, onnx_paths, *((20, 0.2) if quick else (300, 1.0)))
    result["latency_ms"] = {k: round(v, 3) for k, v in latency.items()}
    best_int8 = min((k for k in latency if "int8" in k), key=latency.get, default=None)
    result["best_int8"] = best_int8
    thr = measure_throughput(model, onnx_paths, threads, repeats // 4 + 3)
    result["throughput"] = {k: round(v, 1) for k, v in thr.items()}
    e2e = measure_end_to_end(model, onnx_paths, repeats // 2)
    result["end_to_end_ms"] = {k: round(v, 3) for k, v in e2e["single"].items()}
    result.update(auto_click_rows(e2e, latency))
    result.update(measure_tracker(model, onnx_paths, repeats // 2))
    _log("peak MAC rate of one core (fp32 GEMM via torch, u8s8 GEMM via onnxruntime)")
    peaks = {"fp32_gmacs": peak.fp32_peak_gmacs(), "int8_gmacs": peak.int8_peak_gmacs()}
    result["peak_gmacs_per_core"] = {k: round(v, 1) for k, v in peaks.items()}
    result["measured_gmacs"] = {k: round(macs / (v / 1e3) / 1e9, 1) for k, v in latency.items()}
    if best_int8:
        result["int8_fraction_of_peak"] = round(macs / (latency[best_int8] / 1e3) / 1e9 / peaks["int8_gmacs"], 3)
    if imx500 if imx500 is not None else not quick:
        imx = _imx500_size(model, tmp)
        if "imx500_memory_report" in imx:
            result["imx500_memory"] = imx.pop("imx500_memory_report")
        result["sizes_bytes"].update(imx)
    if peers:
        result.update(_peer_rows(quick, latency.get(best_int8), result.get("auto_click_ms")))
    if int8_errors:
        result["errors"] = int8_errors
    return result


def _peer_rows(quick: bool, best_int8_ms: float | None, auto_click_ms: dict | None = None) -> dict:
    from .peers import sam21_tiny_latency

    _log("peer: SAM 2.1 Hiera-Tiny (random weights, full-size config, 1024 input), one thread")
    with torch_threads(1):
        peer = sam21_tiny_latency(repeats=1 if quick else 3)
    rows: dict = {"peers": {"sam2.1-hiera-tiny": peer}}
    if best_int8_ms:
        rows["speedup_vs_sam2.1_tiny"] = round(peer["latency_ms"] / best_int8_ms, 1)
    if auto_click_ms:  # the target: the INT8 scale-aware click at least 200x faster
        rows["auto_click_speedup_vs_sam2.1_tiny"] = {
            spec: {k: round(peer["latency_ms"] / v, 1) for k, v in ms.items() if "int8" in k}
            for spec, ms in auto_click_ms.items()
        }
    return rows


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
