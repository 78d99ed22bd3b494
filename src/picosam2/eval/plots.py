"""PNG plots of an evaluation: mIoU by size, and galleries of the worst and best instances.

``miou_by_size.png``: bars of mIoU (and the paper's "mAP") for all / small / medium / large, with
the instance counts. ``gallery_worst.png`` / ``gallery_best.png``: the ``n`` lowest / highest IoU
instances, each tile the image around the window with the prediction (blue), the ground truth
(red) and the prompt (green) drawn on it; the window is the dashed white rectangle.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..data import InstanceSet
from ..image_io import overlay
from ..io_utils import write_atomic
from ..prompts import paste_mask
from .protocols import EvalResult, Sample, decode_rle, load_dataset_image


def _save(fig, path: Path) -> Path:
    return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=100), suffix=".png")


def _pyplot():
    """matplotlib's pyplot on the Agg backend (its own deprecation noise silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    return plt


def plot_by_size(report: dict, path: Path) -> Path:
    """Bar chart of a report's mIoU and paper mAP per size class, written to ``path``."""
    plt = _pyplot()

    names = ["all", "small", "medium", "large"]
    blocks = [report] + [report["by_size"][n] for n in names[1:]]
    miou = [100 * (b["miou"] or 0) for b in blocks]
    pmap = [100 * (b["paper_map"] or 0) for b in blocks]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.bar(x - 0.2, miou, 0.4, label="mIoU")
    ax.bar(x + 0.2, pmap, 0.4, label='paper "mAP"')
    for i, b in enumerate(blocks):
        ax.text(x[i] - 0.2, miou[i] + 1, f"{miou[i]:.1f}", ha="center", fontsize=8)
        ax.text(x[i], -9, f"n={b['count']}", ha="center", fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylim(-12, 105)
    ax.set_ylabel("%")
    ax.set_title(f"{report.get('model', '')}: {report['protocol']} protocol, {report['prompt']} prompt", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def _tile(dataset: InstanceSet, sample: Sample, pred: np.ndarray, image: np.ndarray) -> np.ndarray:
    gt = dataset.mask(dataset.instance(sample.ann_id))
    h, w = gt.shape
    pts = [sample.prompt] if len(sample.prompt) == 2 else []
    boxes = [sample.prompt] if len(sample.prompt) == 4 else []
    pic = overlay(image, [pred, gt], points=pts, boxes=boxes, alpha=0.4)
    win = sample.window
    ys, xs = np.nonzero(gt)
    x0 = min(max(win.x0, 0), int(xs.min())) - 16
    y0 = min(max(win.y0, 0), int(ys.min())) - 16
    x1 = max(min(win.x1, w), int(xs.max()) + 1) + 16
    y1 = max(min(win.y1, h), int(ys.max()) + 1) + 16
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    pic = pic.copy()
    wx0, wy0, wx1, wy1 = max(win.x0, 0), max(win.y0, 0), min(win.x1, w) - 1, min(win.y1, h) - 1
    dash = (np.arange(max(h, w)) // 4) % 2 == 0
    for y in (wy0, wy1):
        pic[y, wx0 : wx1 + 1][dash[: wx1 + 1 - wx0]] = 255
    for x in (wx0, wx1):
        pic[wy0 : wy1 + 1, x][dash[: wy1 + 1 - wy0]] = 255
    return pic[y0:y1, x0:x1]


def plot_gallery(dataset, samples: list[Sample], pred_of, path: Path, title: str) -> Path:
    """A grid of samples (image, ground truth, prediction from ``pred_of``) titled ``title``, written to ``path``."""
    plt = _pyplot()

    cols = 4
    rows = max(1, (len(samples) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows + 0.4), squeeze=False)
    images: dict[int, np.ndarray] = {}
    for ax in axes.flat:
        ax.axis("off")
    for ax, s in zip(axes.flat, samples):
        inst = dataset.instance(s.ann_id)
        if inst.image_path is None:
            ax.set_title(f"ann {s.ann_id}: image missing", fontsize=8)
            continue
        if s.image_id not in images:
            images[s.image_id] = load_dataset_image(inst.image_path)
        image = images[s.image_id]
        pred = pred_of(s, image.shape[1], image.shape[0])
        ax.imshow(_tile(dataset, s, pred, image))
        ax.set_title(f"ann {s.ann_id}  IoU {s.iou:.2f}  area {s.area:.0f}", fontsize=8)
    fig.suptitle(title + "   (blue: prediction, red: ground truth, green: prompt, dashed: window)", fontsize=9)
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def write_plots(
    report: dict,
    result: EvalResult,
    dataset: InstanceSet,
    folder: str | os.PathLike,
    n: int = 8,
    entries: list[dict] | None = None,
) -> list[Path]:
    """Write the plots into ``folder`` (created). The gallery needs the predictions: the window
    logits kept by ``evaluate(..., keep_logits=True)``, or the results-file ``entries``; without
    either (or without images) only the size chart is written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [plot_by_size(report, folder / "miou_by_size.png")]
    pred_of = None
    if result.logits is not None and len(result.logits) == len(result.samples):
        index = {s.ann_id: k for k, s in enumerate(result.samples)}

        def pred_of(s, w, h):
            return paste_mask(result.logits[index[s.ann_id]].astype(np.float32), s.window, (w, h))

    elif entries is not None and dataset.image_dirs:
        by_ann = {int(e["annotation_id"]): e for e in entries if "annotation_id" in e}

        def pred_of(s, w, h):
            e = by_ann.get(s.ann_id)
            return decode_rle(e["segmentation"]) if e else np.zeros((h, w), bool)

    if pred_of is not None and result.samples:
        order = sorted(result.samples, key=lambda s: (s.iou, s.ann_id))
        paths.append(plot_gallery(dataset, order[:n], pred_of, folder / "gallery_worst.png", f"worst {n}"))
        paths.append(plot_gallery(dataset, order[::-1][:n], pred_of, folder / "gallery_best.png", f"best {n}"))
    return paths
