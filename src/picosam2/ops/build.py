"""``picosam2 bundle create``: weights -> a release bundle (see :mod:`picosam2.ops.bundle` for
the layout). Needs the export tools (torch, onnxruntime; MCT and imxconv-pt for the sensor
package unless ``skip_imx500``); a device needs none of them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import OpsError
from .bundle import (
    CONFIG,
    EVAL_REPORT,
    HEALTH_EXPECTED,
    HEALTH_WINDOW,
    INT8_ONNX,
    REFERENCE,
    default_app_range,
    finalize_bundle,
    parse_version,
    utc_now,
    write_tar,
)
from .gate import GATE_REPORT, read_report, summary, weights_digest
from .health import DEFAULT_LATENCY_BUDGET_MS, DEFAULT_MIN_IOU
from .monitor import build_reference
from .network import SlotNetwork
from .stats import records_from_windows

IMX500_FILES = ("packerOut.zip", "dnnParams.xml")
#: reference windows cut from the dev data when --annotations is given
DEFAULT_DEV_REFERENCE = 200


def _eval_reports(paths, annotations, images, onnx_path: Path, limit: int | None) -> dict:
    """Given report files, or ``picosam2 eval`` of the INT8 network under both protocols."""
    reports = {}
    if paths:
        for p in paths:
            try:
                content = json.loads(Path(p).read_text())
            except (OSError, ValueError) as exc:
                raise OpsError(f"cannot read eval report {p}: {exc}") from exc
            key = (
                content.get("protocol")
                if isinstance(content, dict) and isinstance(content.get("protocol"), str)
                else None
            )
            reports[key or Path(p).stem] = content
        return {"source": "given", "reports": reports}
    with tempfile.TemporaryDirectory(prefix="picosam2-eval-") as tmp:
        for protocol in ("paper", "full"):
            out = Path(tmp) / f"{protocol}.json"
            cmd = [sys.executable, "-m", "picosam2.cli", "eval", "--annotations", str(annotations), "--quiet"]
            cmd += [a for d in images for a in ("--images", str(d))]
            cmd += ["--protocol", protocol, "--backend", "onnx", "--weights", str(onnx_path), "--out", str(out)]
            cmd += ["--limit", str(limit)] if limit else []
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise OpsError(f"eval ({protocol}) failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
            reports[protocol] = json.loads(out.read_text())
    return {"source": "computed", "network": INT8_ONNX, "reports": reports}


def _imx500_package(model, dest: Path, calib_count: int | None) -> dict:
    from ..export.imx500 import export_imx500

    with tempfile.TemporaryDirectory(prefix="picosam2-bundle-imx500-") as tmp:
        res = export_imx500(model, tmp, calib_count=calib_count)
        dest.mkdir(parents=True, exist_ok=True)
        for name in (*IMX500_FILES, res.memory_report_path.name, "export_info.json"):
            shutil.copyfile(Path(tmp) / name, dest / name)
    packager = shutil.which("imx500-package")
    if packager:
        with tempfile.TemporaryDirectory(prefix="picosam2-rpk-") as tmp:
            subprocess.run([packager, "-i", str(dest / "packerOut.zip"), "-o", tmp], check=True, capture_output=True)
            shutil.copyfile(Path(tmp) / "network.rpk", dest / "network.rpk")
    return {"fits": bool(res.memory.fits), "memory_mb": res.memory.memory_usage_mb, "rpk": bool(packager)}


def _reference_and_health(
    stage: Path, count: int | None, annotations=None, images=(), reference_photos=None, reference_log=None
) -> dict:
    """The monitor's reference and the health check's known window.

    The reference is recorded through the camera loop (:mod:`picosam2.ops.reference`): a log the
    camera wrote (``reference_log``), else the camera loop run here on the bundled INT8 network over
    ``reference_photos`` (a folder) or the photos of ``annotations`` (at most ``count``, default
    200). Without photos it falls back to the bundled calibration windows, marked as such (the
    monitor then warns that drift may be a false alarm). The health window is the window (of the
    dev data's objects when given, else the calibration set) whose mask covers closest to a third."""
    from PIL import Image

    from ..export.calibration import load_bundled, windows_from_coco
    from .reference import camera_reference, photos_of, reference_from_log

    if reference_log:
        ref = reference_from_log(reference_log)
    elif reference_photos or annotations:
        photos = photos_of(annotations, images, folder=reference_photos, limit=count or DEFAULT_DEV_REFERENCE)
        ref = camera_reference(stage / INT8_ONNX, photos)
    else:
        ref = None
    if annotations:
        windows = windows_from_coco(annotations, list(images), count=count or DEFAULT_DEV_REFERENCE)
        health_source = f"{len(windows)} windows of {Path(annotations).name}"
    else:
        windows = load_bundled(count)
        health_source = f"first {len(windows)} bundled COCO calibration windows"
    net = SlotNetwork(stage / INT8_ONNX, stage / CONFIG)
    logits, scores = net(windows, batch_size=32)
    if ref is None:
        ref = {**build_reference(records_from_windows(windows, logits, scores), source=health_source),
               "path": "calibration-windows"}  # fmt: skip
    (stage / REFERENCE).parent.mkdir(parents=True, exist_ok=True)
    (stage / REFERENCE).write_text(json.dumps(ref) + "\n")
    area = (logits > 0).mean(axis=(1, 2))
    k = int(np.argmin(np.abs(area - 1 / 3)))
    (stage / HEALTH_WINDOW).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(windows[k]).save(stage / HEALTH_WINDOW)
    np.save(stage / HEALTH_EXPECTED, logits[k].astype(np.float32))
    return {"reference": ref["source"], "reference_path": ref["path"], "health_window_index": k,
            "health_mask_area": float(area[k])}  # fmt: skip


def _gate(weights, gate_report, require_gate: bool):
    """(report, summary) of a gate report about these weights, or None; refusals per --require-gate."""
    if gate_report is None:
        if require_gate:
            raise OpsError("--require-gate: give --gate-report GATE.json (written by picosam2 gate)")
        return None
    report = read_report(gate_report)
    summ = summary(report)
    if summ["candidate_sha256"] != weights_digest(weights)["sha256"]:
        raise OpsError(
            f"{gate_report} gates other weights (sha256 {str(summ['candidate_sha256'])[:12]}...) than {weights or 'the shipped ones'}"
        )
    if require_gate and not summ["passed"]:
        raise OpsError(f"--require-gate: {gate_report} did not pass ({summ['reason']})")
    return report, summ


def create_bundle(
    out: str | os.PathLike,
    weights=None,
    version: str = "0.1.0",
    name: str = "picosam2",
    sign: str | os.PathLike | None = None,
    eval_reports=None,
    annotations=None,
    images=(),
    eval_limit: int | None = None,
    skip_imx500: bool = False,
    calib_count: int | None = None,
    latency_budget_ms: float = DEFAULT_LATENCY_BUDGET_MS,
    reference_count: int | None = None,
    reference_photos=None,
    reference_log=None,
    gate_report=None,
    require_gate: bool = False,
) -> dict:
    """Build the bundle folder ``out`` and ``out.tar``; returns the manifest. Everything is built
    in a temporary folder beside ``out`` and renamed into place at the end. ``reference_count``:
    reference windows: the first N bundled calibration windows (default all 128), or N windows of
    ``annotations``/``images`` when those are given (default 200)."""
    from .. import __version__
    from ..export.onnx_int8 import export_onnx_int8
    from ..models import from_pretrained

    out = Path(out)
    parse_version(version)
    if out.exists():
        raise OpsError(f"{out} exists; bundles are immutable, choose a new --out")
    if not eval_reports and not annotations:
        raise OpsError("a bundle ships its eval report: give --eval-report FILE... or --annotations JSON --images DIR")
    if sign is not None:
        from .bundle import load_private_key

        load_private_key(sign)  # fail before the slow part
    if not skip_imx500:
        from ..export.imx500 import check_prerequisites

        check_prerequisites(need_converter=True)
    gate = _gate(weights, gate_report, require_gate)
    model = from_pretrained(weights)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (stage / "model").mkdir()
        (stage / CONFIG).write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")
        export_onnx_int8(model, stage / INT8_ONNX, calib_count=calib_count)
        info = {"imx500": None if skip_imx500 else _imx500_package(model, stage / "imx500", calib_count)}
        info.update(_reference_and_health(stage, reference_count, annotations, images, reference_photos, reference_log))
        if gate is not None:
            (stage / GATE_REPORT).parent.mkdir(parents=True, exist_ok=True)
            (stage / GATE_REPORT).write_text(json.dumps(gate[0], indent=2) + "\n")
        report = _eval_reports(eval_reports, annotations, images, stage / INT8_ONNX, eval_limit)
        (stage / EVAL_REPORT).parent.mkdir(parents=True, exist_ok=True)
        (stage / EVAL_REPORT).write_text(json.dumps(report, indent=2) + "\n")
        meta = {
            "name": name,
            "version": version,
            "created": utc_now(),
            "app": default_app_range(__version__),
            "health": {"latency_budget_ms": float(latency_budget_ms), "min_mask_iou": DEFAULT_MIN_IOU},
            "build": {
                "picosam2": __version__,
                "weights": str(weights or "default"),
                "weights_sha256": weights_digest(weights)["sha256"],
                **info,
            },
        }
        if gate is not None:
            meta["gate"] = gate[1]
        manifest = finalize_bundle(stage, meta, sign)
        os.chmod(stage, 0o755)
        os.rename(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    write_tar(out, out.with_name(out.name + ".tar"))
    return manifest
