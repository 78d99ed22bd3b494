"""The health check a device runs on a freshly written slot before switching to it: the CPU
network loads in onnxruntime, the bundled known window gives the expected mask (mask IoU at
least the manifest's ``min_mask_iou``, finite logits), the median single-window latency is
within budget, and the sensor package (when present) is an intact zip."""

from __future__ import annotations

import time
import zipfile
from pathlib import Path

import numpy as np

from ..eval.metrics import iou
from .bundle import CONFIG, HEALTH_EXPECTED, HEALTH_WINDOW, INT8_ONNX, utc_now
from .network import SlotNetwork

#: per-window CPU latency budget of a bundle's health check unless its manifest says otherwise
DEFAULT_LATENCY_BUDGET_MS = 200.0
#: least mask IoU of the known window with its expected mask unless the manifest says otherwise
DEFAULT_MIN_IOU = 0.9


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def health_check(slot: str | Path, manifest: dict, latency_budget_ms: float | None = None, repeats: int = 15) -> dict:
    """Run the checks on the slot folder; returns ``{"ok": bool, "reason": str, ...figures}``."""
    from PIL import Image

    slot = Path(slot)
    limits = manifest.get("health", {})
    if latency_budget_ms is None:
        latency_budget_ms = limits.get("latency_budget_ms", DEFAULT_LATENCY_BUDGET_MS)
    budget = float(latency_budget_ms)
    min_iou = float(limits.get("min_mask_iou", DEFAULT_MIN_IOU))
    res = {"ok": False, "version": manifest.get("version"), "checked_at": utc_now(), "latency_budget_ms": budget}
    try:
        net = SlotNetwork(slot / INT8_ONNX, slot / CONFIG)
        window = np.asarray(Image.open(slot / HEALTH_WINDOW).convert("RGB"))
        expected = np.load(slot / HEALTH_EXPECTED)
        logits, scores = net(window)
    except Exception as exc:  # noqa: BLE001 - whatever stops the network is the health result
        res["reason"] = f"network does not run: {_first_line(exc)}"
        return res
    res["mask_iou"] = round(iou(logits[0] > 0, expected > 0), 4)
    res["has_score"] = scores is not None
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        net(window)
        times.append(time.perf_counter() - t0)
    res["latency_ms"] = round(1000 * float(np.median(times)), 3)
    pkg = slot / "imx500" / "packerOut.zip"
    if pkg.exists():
        try:
            with zipfile.ZipFile(pkg) as z:
                bad = z.testzip()
        except zipfile.BadZipFile as exc:
            bad = str(exc)
        if bad:
            res["reason"] = f"sensor package is damaged: {bad}"
            return res
    if not np.isfinite(logits).all():
        res["reason"] = "the known window gives non-finite logits"
    elif res["mask_iou"] < min_iou:
        res["reason"] = f"known window mask IoU {res['mask_iou']:.3f} < {min_iou} with the expected mask"
    elif res["latency_ms"] > budget:
        res["reason"] = f"latency {res['latency_ms']:.2f} ms > budget {budget:g} ms"
    else:
        res["ok"], res["reason"] = True, "ok"
    return res
