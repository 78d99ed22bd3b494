"""The Sony IMX500 path: MCT quantization -> MCT ONNX -> ``imxconv-pt`` -> ``packerOut.zip``.

1. :func:`sensor_model` wraps the network so that its input is what the sensor's ISP delivers:
   RGB pixel values 0..255 (the ImageNet normalisation becomes the network's first layer, a
   per-channel 1x1 convolution). ``normalize_in_model=False`` keeps the bare network (normalised
   input), for when the normalisation is set in the packager instead.
2. :func:`quantize_mct`: MCT post-training quantization with the IMX500 target platform
   capabilities, calibrated on COCO windows (:mod:`picosam2.export.calibration`); optionally
   followed by quantization-aware training (:func:`qat_finetune`, ``qat_steps > 0``).
3. :func:`export_mct_onnx`: MCT's ONNX export (MCTQ quantizer ops), through the legacy exporter.
4. :func:`convert` runs Sony's converter ``imxconv-pt`` (needs Java >= 17) and parses the memory
   report.

:func:`export_imx500` does all of it and leaves in the output folder ``packerOut.zip``,
``dnnParams.xml``, ``<name>_MemoryReport.json``, the quantized ``<name>.onnx`` (the model's config
in its metadata), ``packerOut.zip.json`` (the same config beside the package, for the camera
app: :func:`picosam2.runtime.read_sidecar`) and ``export_info.json``. On the Raspberry Pi, ``imx500-package -i packerOut.zip -o DIR`` turns the
zip into ``DIR/network.rpk`` (see docs/deployment.md).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ExportError, UsageError
from ..runtime import form_metadata, write_onnx_metadata, write_sidecar
from .calibration import get_calibration_windows, to_model_input
from .mct_compat import EXTRA_HINT, MissingExtraError, import_mct, legacy_onnx_export

JAVA_MIN_VERSION = 17
DEFAULT_NAME = "picosam2"


class NormalizedInput(nn.Module):
    """``net((x / 255 - mean) / std)`` with the normalisation as a depthwise 1x1 convolution, so
    the sensor feeds raw 0..255 RGB and the quantizer sees a plain conv layer."""

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        self.norm = nn.Conv2d(3, 3, kernel_size=1, groups=3, bias=True)
        mean = torch.as_tensor(mean, dtype=torch.float32)
        std = torch.as_tensor(std, dtype=torch.float32)
        with torch.no_grad():
            self.norm.weight.copy_((1.0 / (255.0 * std)).view(3, 1, 1, 1))
            self.norm.bias.copy_(-mean / std)
        self.net = net
        self.config = getattr(net, "config", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise 0..255 RGB in the network, then run it."""
        return self.net(self.norm(x))


def sensor_model(model: nn.Module, normalize_in_model: bool = True) -> nn.Module:
    """The module that goes to the sensor (see the module docstring)."""
    model = model.eval()
    if not normalize_in_model:
        return model
    return NormalizedInput(model, model.config.mean, model.config.std).eval()


def sensor_input(windows: np.ndarray, config, normalize_in_model: bool = True) -> np.ndarray:
    """uint8 (N, S, S, 3) windows -> the float32 NCHW input of :func:`sensor_model`."""
    if not normalize_in_model:
        return to_model_input(windows, config)
    from .calibration import to_model_input as _resize_only

    if windows.shape[1] != config.input_size:
        # resize through the shared helper, then undo its normalisation
        x = _resize_only(windows, config)
        mean = np.asarray(config.mean, np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(config.std, np.float32).reshape(1, 3, 1, 1)
        return np.ascontiguousarray((x * std + mean) * 255.0, dtype=np.float32)
    return np.ascontiguousarray(windows.transpose(0, 3, 1, 2), dtype=np.float32)


# -- prerequisites ----------------------------------------------------------------------------


def java_version(java: str | None = None) -> int | None:
    """Major version of ``java`` on PATH (None when there is none)."""
    java = java or shutil.which("java")
    if not java:
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 and m.group(2) else major


def find_converter() -> str | None:
    """Path of ``imxconv-pt``: next to this Python first (virtual environments), then PATH."""
    local = Path(sys.executable).parent / "imxconv-pt"
    if local.exists():
        return str(local)
    return shutil.which("imxconv-pt")


def check_prerequisites(need_converter: bool = True) -> None:
    """Raise a one-line :class:`MissingExtraError` when MCT, the converter or Java is missing."""
    import importlib.util

    for mod in ("model_compression_toolkit", "mct_quantizers"):
        if importlib.util.find_spec(mod) is None:
            raise MissingExtraError(f"imx500 export needs {mod.replace('_', '-')}: {EXTRA_HINT}")
    if not need_converter:
        return
    if find_converter() is None:
        raise MissingExtraError(f"imx500 export needs Sony's converter imxconv-pt: {EXTRA_HINT}")
    version = java_version()
    if version is None:
        raise MissingExtraError(
            f"imxconv-pt needs Java >= {JAVA_MIN_VERSION} on PATH (e.g. apt-get install openjdk-17-jre-headless)"
        )
    if version < JAVA_MIN_VERSION:
        raise MissingExtraError(f"imxconv-pt needs Java >= {JAVA_MIN_VERSION}, found Java {version} on PATH")


# -- MCT ---------------------------------------------------------------------------------------


def _repr_dataset(data: np.ndarray, batch: int):
    def gen():
        for i in range(0, len(data), batch):
            yield [torch.from_numpy(data[i : i + batch])]

    return gen


def _set_cpu(mct) -> None:
    try:
        from model_compression_toolkit.core.pytorch.pytorch_device_config import set_working_device

        set_working_device("cpu")
    except ImportError:  # pragma: no cover - other MCT layouts
        pass


def quantize_mct(
    model: nn.Module,
    calibration: np.ndarray,
    batch: int = 16,
    qat_steps: int = 0,
    qat_lr: float = 1e-4,
    qat_batch: int = 16,
    seed: int = 0,
):
    """MCT PTQ (IMX500 TPC) of ``model`` on ``calibration`` (float32 NCHW, already in the model's
    input convention). With ``qat_steps > 0``, continue with :func:`qat_finetune`. Returns the
    quantized module (MCT's fake-quant PyTorch model, runnable on CPU)."""
    mct = import_mct()
    _set_cpu(mct)
    tpc = mct.get_target_platform_capabilities("pytorch", "imx500")
    gen = _repr_dataset(calibration, batch)
    if qat_steps > 0:
        return qat_finetune(model, calibration, steps=qat_steps, lr=qat_lr, batch=qat_batch, seed=seed, mct=mct)
    q_model, _ = mct.ptq.pytorch_post_training_quantization(model, gen, target_platform_capabilities=tpc)
    return q_model.eval()


def qat_finetune(
    model: nn.Module,
    data: np.ndarray,
    steps: int = 200,
    lr: float = 1e-4,
    batch: int = 16,
    seed: int = 0,
    targets: np.ndarray | None = None,
    mct=None,
    log_every: int = 50,
):
    """MCT quantization-aware training. Starts from the PTQ solution, fine-tunes the quantized
    model's weights (straight-through estimators) for ``steps`` AdamW steps and finalizes it.

    Without ``targets`` (ground-truth masks, (N, S, S) in {0, 1}) the teacher is the fp32
    ``model`` itself: the loss is BCE of the quantized logits against the fp32 probabilities
    (self-distillation), so no labels and no training pipeline are needed."""
    mct = mct or import_mct()
    _set_cpu(mct)
    tpc = mct.get_target_platform_capabilities("pytorch", "imx500")
    gen = _repr_dataset(data, batch)
    teacher = model.eval()
    qat_model, _ = mct.qat.pytorch_quantization_aware_training_init_experimental(
        model, gen, target_platform_capabilities=tpc
    )
    x_all = torch.from_numpy(data)
    with torch.no_grad():
        taught = [_split(teacher(x_all[i : i + 32])) for i in range(0, len(x_all), 32)]
    iou_all = torch.cat([t[1] for t in taught]) if taught[0][1] is not None else None
    if targets is None:
        y_all = torch.sigmoid(torch.cat([t[0] for t in taught]))
    else:
        y_all = torch.as_tensor(targets, dtype=torch.float32).reshape(len(x_all), 1, *x_all.shape[-2:])
    params = [p for p in qat_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    qat_model.train()
    for step in range(steps):
        idx = torch.randint(0, len(x_all), (min(batch, len(x_all)),), generator=g)
        out, iou = _split(qat_model(x_all[idx]))
        loss = nn.functional.binary_cross_entropy_with_logits(out, y_all[idx])
        if iou is not None and iou_all is not None:  # the quality head follows the fp32 one
            loss = loss + nn.functional.mse_loss(iou, iou_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log_every and (step + 1) % log_every == 0:
            print(f"qat step {step + 1}/{steps}: loss {loss.item():.4f}", file=sys.stderr)
    qat_model.eval()
    return mct.qat.pytorch_quantization_aware_training_finalize_experimental(qat_model).eval()


def export_mct_onnx(q_model: nn.Module, path: str | os.PathLike, example: np.ndarray, meta: dict) -> Path:
    """MCT's ONNX export (MCTQ format: the quantizers as mct-quantizers custom ops), which is
    what ``imxconv-pt`` reads. ``meta`` (:func:`picosam2.runtime.form_metadata`, whose ``input`` is
    ``rgb255`` or ``normalized``) goes into the file's metadata for
    :class:`picosam2.runtime.OnnxBackend`."""
    mct = import_mct()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gen = _repr_dataset(np.ascontiguousarray(example[:1]), 1)
    with legacy_onnx_export():
        mct.exporter.pytorch_export_model(q_model, save_model_path=str(path), repr_dataset=gen)
    write_onnx_metadata(path, meta)
    return path


def _split(out):
    """A module's output as ``(logits, iou or None)`` (a quality-head model returns both)."""
    if isinstance(out, (tuple, list)):
        return out[0], (out[1] if len(out) > 1 else None)
    return out, None


def run_torch(module: nn.Module, x: np.ndarray, batch: int = 16, scores: bool = False):
    """(N, S, S) logits of a (quantized or not) PyTorch module, in small batches; with ``scores``
    ``(logits, iou)`` where ``iou`` is (N,) for a quality-head model, else None."""
    outs, ious = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits, iou = _split(module(torch.from_numpy(x[i : i + batch])))
            outs.append(logits[:, 0].float().cpu().numpy())
            if iou is not None:
                ious.append(iou.float().cpu().numpy().reshape(-1))
    logits = np.concatenate(outs)
    if not scores:
        return logits
    return logits, (np.concatenate(ious) if ious else None)


# -- converter ---------------------------------------------------------------------------------


@dataclass
class MemoryReport:
    """The converter's ``<name>_MemoryReport.json``, with sizes in MB."""

    memory_usage_mb: float
    runtime_mb: float
    model_mb: float
    available_mb: float
    utilization: str
    fits: bool
    raw: dict = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        """One line: memory used of available, utilisation and whether the network fits."""
        verdict = "fits" if self.fits else "DOES NOT FIT"
        return (
            f"IMX500 memory: {self.memory_usage_mb:.2f} MB of {self.available_mb:.2f} MB ({self.utilization}; "
            f"weights {self.model_mb:.2f} MB, activations/runtime {self.runtime_mb:.2f} MB): {verdict} the chip"
        )


_UNITS = {"B": 1 / 2**20, "KB": 1 / 2**10, "MB": 1.0, "GB": 2**10}


def _mb(text) -> float:
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMG]?B)\s*", str(text))
    if not m:
        raise ExportError(f"cannot read memory size {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_memory_report(path: str | os.PathLike) -> MemoryReport:
    """The converter's ``*_MemoryReport.json`` as a :class:`MemoryReport`."""
    raw = json.loads(Path(path).read_text())
    r = raw["Memory Report"]
    return MemoryReport(
        memory_usage_mb=_mb(r["Memory Usage"]),
        runtime_mb=_mb(r["Runtime Memory Physical Size"]),
        model_mb=_mb(r["Model Memory Physical Size"]),
        available_mb=_mb(r["Total Memory Available On Chip"]),
        utilization=str(r.get("Memory Utilization", "")),
        fits=bool(r["Fit In Chip"]),
        raw=raw,
    )


def convert(onnx_path: str | os.PathLike, out_dir: str | os.PathLike, timeout: float = 1800) -> MemoryReport:
    """Run ``imxconv-pt -i ONNX -o OUT --overwrite-output``; return the parsed memory report.
    Raises RuntimeError with the converter's last error line on failure."""
    check_prerequisites(need_converter=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [find_converter(), "-i", str(onnx_path), "-o", str(out_dir), "--overwrite-output"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ERROR" in ln or "rror" in ln]
        last = (lines or (proc.stdout + proc.stderr).strip().splitlines() or ["no output"])[-1]
        raise ExportError(f"imxconv-pt failed (exit {proc.returncode}): {last.strip()}")
    reports = sorted(out_dir.glob("*_MemoryReport.json"))
    if not (out_dir / "packerOut.zip").exists() or not reports:
        raise ExportError(f"imxconv-pt finished but wrote no packerOut.zip / memory report in {out_dir}")
    return parse_memory_report(reports[0])


# -- all together ------------------------------------------------------------------------------


@dataclass
class Imx500Export:
    """What :func:`export_imx500` wrote: the package files, memory report, stage times and settings."""

    out_dir: Path
    packer_zip: Path
    dnn_params: Path
    memory_report_path: Path
    onnx_path: Path
    memory: MemoryReport
    seconds: dict
    calib_count: int
    normalize_in_model: bool
    qat_steps: int

    def to_json(self) -> dict:
        """The export as a JSON-ready dictionary (paths as strings, without the raw memory report)."""
        d = asdict(self)
        if d["memory"] is not None:
            d["memory"].pop("raw", None)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def _install(files: list[Path], out_dir: Path) -> None:
    """Copy ``files`` into ``out_dir``, each through a temporary name and a rename."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in files:
        staged = out_dir / f".{f.name}.tmp"
        shutil.copyfile(f, staged)
        os.replace(staged, out_dir / f.name)


def export_imx500(
    model: nn.Module,
    out_dir: str | os.PathLike,
    calibration=None,
    calib_count: int | None = None,
    calib_annotations: str | os.PathLike | None = None,
    calib_images=None,
    normalize_in_model: bool = True,
    qat_steps: int = 0,
    qat_lr: float = 1e-4,
    name: str = DEFAULT_NAME,
    convert_model: bool = True,
    progress: bool = False,
) -> Imx500Export:
    """PyTorch model -> IMX500 package in ``out_dir`` (see the module docstring). Everything is
    produced in a temporary folder and moved into ``out_dir`` only when the conversion worked.
    ``convert_model=False`` stops after the quantized ONNX (no Java needed). ``progress`` shows
    the current stage (calibration, MCT, ONNX, converter) on a terminal."""
    from ..progress import progress_bar

    check_prerequisites(need_converter=convert_model)
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise UsageError(f"network name {name!r}: use letters, digits, '-' and '_' only")
    bar = progress_bar(total=4 if convert_model else 3, desc="export imx500", unit="stage", enabled=progress)
    bar.set_postfix_str("calibration windows")
    windows = get_calibration_windows(calibration, calib_count, calib_annotations, calib_images)
    bar.update()
    net = sensor_model(model, normalize_in_model)
    data = sensor_input(windows, model.config, normalize_in_model)
    out_dir = Path(out_dir)
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="picosam2-imx500-") as tmpdir:
        tmp = Path(tmpdir)
        t0 = time.perf_counter()
        bar.set_postfix_str("MCT quantization" + (" and QAT" if qat_steps else ""))
        q_model = quantize_mct(net, data, qat_steps=qat_steps, qat_lr=qat_lr)
        seconds["mct_qat" if qat_steps else "mct_ptq"] = time.perf_counter() - t0
        bar.update()
        bar.set_postfix_str("quantized ONNX")
        t0 = time.perf_counter()
        meta = form_metadata(
            model.config, getattr(model, "weights_info", None), "rgb255" if normalize_in_model else "normalized"
        )
        onnx_path = export_mct_onnx(q_model, tmp / f"{name}.onnx", data, meta)
        seconds["mct_export"] = time.perf_counter() - t0
        bar.update()
        files = [onnx_path]
        memory = None
        if convert_model:
            t0 = time.perf_counter()
            bar.set_postfix_str("imxconv-pt (Java)")
            conv_dir = tmp / "conv"
            memory = convert(onnx_path, conv_dir)
            seconds["imxconv"] = time.perf_counter() - t0
            bar.update()
            files += [p for p in conv_dir.iterdir() if p.is_file()]
            files.append(write_sidecar(conv_dir / "packerOut.zip", meta))
        _install(files, out_dir)
    bar.close()
    result = Imx500Export(
        out_dir=out_dir,
        packer_zip=out_dir / "packerOut.zip",
        dnn_params=out_dir / "dnnParams.xml",
        memory_report_path=out_dir / f"{name}_MemoryReport.json",
        onnx_path=out_dir / f"{name}.onnx",
        memory=memory,
        seconds={k: round(v, 2) for k, v in seconds.items()},
        calib_count=len(windows),
        normalize_in_model=normalize_in_model,
        qat_steps=qat_steps,
    )
    info = result.to_json()
    (out_dir / "export_info.json").write_text(json.dumps(info, indent=2) + "\n")
    return result
