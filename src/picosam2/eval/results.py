"""COCO results files (PREDS.json) and the evaluation report (REPORT.json).

A results file is a JSON list, one entry per answered instance, in COCO's results format plus
the ground-truth instance it answers::

    {"image_id": 397133, "category_id": 44, "annotation_id": 82445,
     "segmentation": {"size": [H, W], "counts": "..."},   # full-image COCO RLE
     "score": 0.93}

Entries written by ``picosam2 eval --results-out`` under the paper protocol also carry
``"window": [x0, y0, x1, y1]`` and ``"window_segmentation"`` (the 96 x 96 RLE the paper's IoU is
computed on), so that the paper IoU is recomputed exactly even where the clipped window was
stretched. :func:`score_results` scores any results file with the same code as a live run:

* ``paper``: if an entry has a ``window_segmentation`` and its ``window`` is the protocol's
  window for that instance, that 96 x 96 mask is scored; otherwise the full-image mask is cut to
  the protocol's window (``prompts.crop_mask``) and scored there.
* ``full``: the full-image mask against the full ground-truth mask.

An instance of the protocol's list without an entry scores 0 (an empty prediction) and is counted
as ``missing_predictions``; entries naming no instance of the list are counted as
``unmatched_predictions``; several entries for one instance: the highest ``score`` is kept
(``duplicate_predictions``).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..data import InstanceSet
from ..data.coco import DataError
from ..io_utils import write_json_atomic
from ..prompts import MODEL_SIZE, crop_mask
from . import metrics
from .protocols import (
    SKIP_KEYS,
    EvalResult,
    Sample,
    check_protocol,
    decode_rle,
    instance_list,
    prepare_instance,
    prompt_rule_name,
    window_rule,
)


def results_entries(result: EvalResult) -> list[dict]:
    """COCO results entries of an evaluation run with ``keep_rle=True``."""
    out = []
    for s in result.samples:
        if s.rle is None:
            raise DataError("this evaluation kept no masks: run it with keep_rle=True")
        entry = {
            "image_id": s.image_id,
            "category_id": s.category_id,
            "annotation_id": s.ann_id,
            "segmentation": s.rle,
            "score": round(float(s.score), 6),
        }
        if s.window_rle is not None:
            entry["window"] = list(s.window.as_tuple())
            entry["window_segmentation"] = s.window_rle
        out.append(entry)
    return out


def load_results(path: str | os.PathLike) -> list[dict]:
    """The entries of a COCO-style results JSON file (a list of dicts).

    Raises:
        DataError: the file is missing or not such a list.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"results file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read results file {path}: {exc}") from exc
    if not isinstance(data, list):
        raise DataError(f"{path} is not a COCO results file (a JSON list of entries)")
    return data


def _match_entries(entries: list[dict], wanted: set) -> tuple[dict[int, dict], Counter]:
    """Results entries by annotation id (the best-scored of duplicates), and what did not match."""
    by_ann: dict[int, dict] = {}
    counts = Counter()
    for k, e in enumerate(entries):
        if not isinstance(e, dict) or "segmentation" not in e:
            raise DataError(f"results entry {k} has no 'segmentation'")
        if "annotation_id" not in e:
            raise DataError(f"results entry {k} has no 'annotation_id' (which instance it answers)")
        ann_id = int(e["annotation_id"])
        if ann_id not in wanted:
            counts["unmatched_predictions"] += 1
            continue
        if ann_id in by_ann:
            counts["duplicate_predictions"] += 1
            if float(e.get("score", 0)) <= float(by_ann[ann_id].get("score", 0)):
                continue
        by_ann[ann_id] = e
    return by_ann, counts


def reference_entries(entries: list[dict], instances) -> list[dict]:
    """The per-sample outputs of the PicoSAM2 authors' evaluation (their ``eval_outputs/*.json``:
    entries with the sample's index ``id`` and its 96 x 96 window mask, no annotation id) as
    entries of ours: ``id`` k is the k-th instance of the paper protocol's list, and the mask is
    kept as that instance's window mask. Entries with an ``annotation_id`` pass unchanged."""
    out = []
    for k, e in enumerate(entries):
        size = e.get("segmentation", {}).get("size") if isinstance(e, dict) else None
        if not isinstance(e, dict) or "annotation_id" in e or "id" not in e or list(size or []) != [MODEL_SIZE] * 2:
            out.append(e)
            continue
        idx = int(e["id"])
        if not 0 <= idx < len(instances):
            raise DataError(f"results entry {k}: sample index {idx} is past the protocol's {len(instances)} instances")
        out.append({**e, "annotation_id": instances[idx].ann_id, "reference_window_mask": True})
    return out


def _entry_iou(entry: dict | None, ann_id: int, gt: np.ndarray, win, protocol: str) -> float:
    """IoU of one results entry (``None``: no prediction, an empty mask) under ``protocol``."""
    height, width = gt.shape
    pred = None
    if entry is not None and entry.get("reference_window_mask") and protocol == "paper":
        return metrics.iou(decode_rle(entry["segmentation"]), crop_mask(gt, win, MODEL_SIZE))
    if entry is not None:
        try:
            pred = decode_rle(entry["segmentation"])
        except Exception as exc:  # noqa: BLE001 - any undecodable entry is the file's fault
            raise DataError(f"results entry for annotation {ann_id}: bad segmentation: {exc}") from exc
        if pred.shape != gt.shape:
            raise DataError(
                f"results entry for annotation {ann_id}: mask is {pred.shape[1]}x{pred.shape[0]}, "
                f"image is {width}x{height}"
            )
    if protocol != "paper":
        return metrics.iou(pred if pred is not None else np.zeros_like(gt), gt)
    gt_win = crop_mask(gt, win, MODEL_SIZE)
    if pred is None:
        return metrics.iou(np.zeros_like(gt_win), gt_win)
    if entry.get("window_segmentation") and list(entry.get("window", ())) == list(win.as_tuple()):
        return metrics.iou(decode_rle(entry["window_segmentation"]), gt_win)
    return metrics.iou(crop_mask(pred, win, MODEL_SIZE), gt_win)


def score_results(
    dataset: InstanceSet,
    entries: list[dict],
    protocol: str = "paper",
    prompt: str = "point",
    limit: int | None = None,
    progress: bool = True,
) -> EvalResult:
    """Per-instance IoUs of a results file's masks under a protocol (no images needed)."""
    from ..progress import progress_bar

    check_protocol(protocol, prompt)
    t0 = time.perf_counter()
    instances = instance_list(dataset, protocol, limit)
    if protocol == "paper":
        entries = reference_entries(entries, instances)
    by_ann, counts = _match_entries(entries, {i.ann_id for i in instances})
    result = EvalResult(protocol=protocol, prompt=prompt, requested=len(instances))
    for inst in progress_bar(instances, desc=f"score {protocol}", unit="inst", enabled=progress):
        prepared = prepare_instance(dataset, inst, protocol, prompt, result.skipped)
        if prepared is None:
            continue
        gt, value, win = prepared
        entry = by_ann.get(inst.ann_id)
        if entry is None:
            counts["missing_predictions"] += 1
        value_iou = _entry_iou(entry, inst.ann_id, gt, win, protocol)
        score = 0.0 if entry is None else float(entry.get("score", 0.0))
        result.samples.append(Sample.of(inst, value, win, value_iou, score))
    for key in SKIP_KEYS:
        result.skipped.setdefault(key, 0)
    for key in ("missing_predictions", "unmatched_predictions", "duplicate_predictions"):
        result.skipped[key] = counts[key]
    result.elapsed_s = time.perf_counter() - t0
    return result


def _clean(value):
    """NaN -> None so the report is valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def build_report(result: EvalResult, meta: dict) -> dict:
    """REPORT.json content: the numbers, what was run (``meta``) and what was skipped."""
    from .. import __version__

    summary = result.summary()
    report = {
        "miou": summary["miou"],
        "paper_map": summary["paper_map"],
        "count": summary["count"],
        "by_size": summary["by_size"],
        "protocol": result.protocol,
        "prompt": result.prompt,
        "prompt_rule": prompt_rule_name(result.protocol, result.prompt),
        "window": window_rule(result.protocol, result.prompt),
        "iou": (
            "96x96 window mask (logit > 0) vs ground truth cut to the same window"
            if result.protocol == "paper"
            else "full-image mask (window logits pasted back, logit > 0) vs full ground-truth mask"
        ),
        "size_by": "annotation 'area' field (COCO: small < 32^2 <= medium < 96^2 <= large)",
        "picosam2_version": __version__,
        **meta,
        "instances_requested": result.requested,
        "skipped": dict(result.skipped),
        "elapsed_s": round(result.elapsed_s, 3),
        "per_instance": {str(s.ann_id): s.iou for s in result.samples},
    }
    if "point_scales" in summary:
        report["window"] = f"scale-aware click: centred windows of sides {summary['point_scales']['point_scales']}"
        report["point_scales"] = summary["point_scales"]
    return _clean(report)


def format_table(report: dict) -> str:
    """A short plain-text table of a report (printed at the end of ``picosam2 eval``)."""

    def pct(v):
        return "   -" if v is None else f"{100 * v:5.2f}"

    rows = [("all", report["miou"], report["paper_map"], report["count"])]
    for size, block in report["by_size"].items():
        rows.append((size, block["miou"], block["paper_map"], block["count"]))
    lines = [
        f"{report['protocol']} protocol, {report['prompt']} prompt ({report['prompt_rule']} rule), "
        f"model: {report.get('model', '?')}",
        f"{'':8} {'mIoU':>6} {'mAP*':>6} {'count':>6}",
    ]
    lines += [f"{name:8} {pct(m):>6} {pct(a):>6} {n:>6}" for name, m, a, n in rows]
    skipped = {k: v for k, v in report["skipped"].items() if v}
    lines.append("mAP* = the paper's mean over IoU thresholds 0.50:0.05:0.95 of the fraction of instances >= t")
    if skipped:
        lines.append("skipped/flagged: " + ", ".join(f"{k}={v}" for k, v in skipped.items()))
    if report.get("point_scales"):
        lines += _scale_lines(report["point_scales"], pct)
    return "\n".join(lines)


def _scale_lines(ps: dict, pct) -> list[str]:
    """Table lines of a scale-aware click report."""
    lines = [f"scale-aware clicks ({ps['point_scales']}): chosen mIoU above; oracle {pct(ps['oracle']['miou'])}"]
    lines.append("fixed windows: " + ", ".join(f"{f['side']} px {pct(f['miou']).strip()}" for f in ps["fixed"]))
    sp, within = ps.get("spearman"), ps.get("spearman_within_click")
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    chosen = fmt(ps.get("spearman_chosen"))
    lines.append(
        f"score vs real IoU: Spearman {fmt(sp)} pooled, {fmt(within)} within a click, {chosen} over returned masks"
    )
    return lines


__all__ = [
    "build_report",
    "format_table",
    "load_results",
    "results_entries",
    "score_results",
    "write_json_atomic",
]
