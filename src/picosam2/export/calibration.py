"""Calibration windows for post-training quantization (onnxruntime INT8, MCT for the IMX500).

Calibration data must look like what the network sees at run time: 96 x 96 windows cut around
prompts with :mod:`picosam2.prompts` from natural photos. Two sources:

* the **bundled set** (``src/picosam2/calibration/coco_windows.npz``): 128 windows from COCO
  train2017 images of the project's coco-mini train pool (never from val2017, which the paper
  protocol evaluates on), built by :func:`build_bundled_set`; stored as JPEG bytes in an npz;
* **your own COCO-format data**: :func:`windows_from_coco` (``--calib-annotations/--calib-images``).

Windows are HWC uint8; :func:`to_model_input` normalises them for the network.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..data.coco import DataError
from ..errors import UsageError
from ..prompts import MODEL_SIZE, crop_image, point_window

BUNDLED_PATH = Path(__file__).resolve().parents[1] / "calibration" / "coco_windows.npz"
DEFAULT_COUNT = 128


def _decode_jpegs(buf: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    from PIL import Image

    out = []
    for a, b in zip(offsets[:-1], offsets[1:]):
        with Image.open(io.BytesIO(buf[a:b].tobytes())) as im:
            out.append(np.asarray(im.convert("RGB")))
    return np.stack(out) if out else np.zeros((0, MODEL_SIZE, MODEL_SIZE, 3), np.uint8)


def load_bundled(count: int | None = None, path: str | os.PathLike = BUNDLED_PATH) -> np.ndarray:
    """The bundled calibration windows, (N, 96, 96, 3) uint8 (the first ``count`` of them)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"calibration set not found: {path}")
    with np.load(path) as z:
        offsets = z["offsets"]
        n = len(offsets) - 1 if count is None else min(int(count), len(offsets) - 1)
        return _decode_jpegs(z["jpeg"], offsets[: n + 1])


def bundled_metadata(path: str | os.PathLike = BUNDLED_PATH) -> dict:
    """Provenance of the bundled windows: COCO image/annotation ids, prompt points, modes."""
    with np.load(path) as z:
        return {k: z[k].tolist() for k in ("image_ids", "ann_ids", "points", "modes") if k in z}


def windows_from_coco(
    annotations: str | os.PathLike,
    image_dirs,
    count: int = DEFAULT_COUNT,
    seed: int = 0,
    min_area: float = 0.0,
    split_filter: str | None = None,
    return_info: bool = False,
):
    """``count`` windows from a COCO-format instance set: instances drawn at random (``seed``),
    prompt = the paper's point rule, windows alternating between the paper's clipped window and
    the centred (padded) one, so both prompt modes are represented.

    ``split_filter``: keep only images whose ``coco_url`` contains this text (e.g. ``train2017``).
    """
    from ..data import InstanceSet, paper_point
    from ..image_io import load_image

    if isinstance(image_dirs, (str, os.PathLike)):
        image_dirs = [image_dirs]
    iset = InstanceSet(annotations, image_dirs)
    insts = [i for i in iset.instances() if i.image_path is not None and i.area >= min_area]
    if split_filter:
        insts = [i for i in insts if split_filter in iset.coco.imgs[i.image_id].get("coco_url", split_filter)]
    if not insts:
        raise DataError(f"no usable instances with images in {annotations} (check the image folders)")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(insts))
    windows, info = [], {"image_ids": [], "ann_ids": [], "points": [], "modes": []}
    cache: dict = {}
    for k in order:
        if len(windows) >= count:
            break
        inst = insts[int(k)]
        try:
            mask = iset.mask(inst)
            x, y = paper_point(mask, inst.bbox)
        except ValueError:
            continue  # empty or undecodable mask
        if inst.image_id not in cache:
            cache.clear()
            cache[inst.image_id] = load_image(inst.image_path)
        img = cache[inst.image_id]
        mode = "paper" if len(windows) % 2 == 0 else "centered"
        win = point_window(x, y, (img.shape[1], img.shape[0]), mode=mode)
        windows.append(crop_image(img, win, MODEL_SIZE))
        info["image_ids"].append(inst.image_id)
        info["ann_ids"].append(inst.ann_id)
        info["points"].append((x, y))
        info["modes"].append(mode)
    arr = np.stack(windows) if windows else np.zeros((0, MODEL_SIZE, MODEL_SIZE, 3), np.uint8)
    return (arr, info) if return_info else arr


def build_bundled_set(
    annotations: str | os.PathLike,
    image_dirs,
    out_path: str | os.PathLike = BUNDLED_PATH,
    count: int = DEFAULT_COUNT,
    seed: int = 0,
    quality: int = 92,
) -> Path:
    """Write the bundled set: ``count`` windows from COCO train2017 images (JPEG ``quality``)."""
    from PIL import Image

    windows, info = windows_from_coco(
        annotations, image_dirs, count=count, seed=seed, split_filter="train2017", return_info=True
    )
    chunks, offsets = [], [0]
    for w in windows:
        b = io.BytesIO()
        Image.fromarray(w).save(b, format="JPEG", quality=quality)
        chunks.append(np.frombuffer(b.getvalue(), np.uint8))
        offsets.append(offsets[-1] + len(chunks[-1]))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp.npz")
    np.savez_compressed(
        tmp,
        jpeg=np.concatenate(chunks),
        offsets=np.asarray(offsets, np.int64),
        image_ids=np.asarray(info["image_ids"], np.int64),
        ann_ids=np.asarray(info["ann_ids"], np.int64),
        points=np.asarray(info["points"], np.int64),
        modes=np.asarray(info["modes"]),
    )
    os.replace(tmp, out_path)
    return out_path


def get_calibration_windows(
    calibration=None,
    count: int | None = None,
    annotations: str | os.PathLike | None = None,
    image_dirs=None,
    seed: int = 0,
) -> np.ndarray:
    """Resolve the calibration argument shared by the exporters to (N, 96, 96, 3) uint8 windows.

    ``calibration``: None (the bundled set, or ``annotations``/``image_dirs`` when given), an
    (N, 96, 96, 3) uint8 array, or the path of an ``.npz`` in the bundled format."""
    if calibration is None and annotations is not None:
        if not image_dirs:
            raise UsageError("calibration annotations need the folders of their images")
        windows = windows_from_coco(annotations, image_dirs, count=count or DEFAULT_COUNT, seed=seed)
    elif calibration is None:
        windows = load_bundled(count)
    elif isinstance(calibration, (str, os.PathLike)):
        windows = load_bundled(count, calibration)
    else:
        windows = np.asarray(calibration)
        if count is not None:
            windows = windows[:count]
    if windows.ndim != 4 or windows.shape[-1] != 3 or windows.dtype != np.uint8:
        raise DataError(f"calibration windows must be (N, H, W, 3) uint8, got {windows.shape} {windows.dtype}")
    if len(windows) == 0:
        raise DataError("no calibration windows")
    return windows


def to_model_input(windows: np.ndarray, config) -> np.ndarray:
    """(N, S, S, 3) uint8 -> normalised float32 (N, 3, S, S) for a model with ``config``."""
    from ..runtime import normalize

    size = config.input_size
    if windows.shape[1] != size or windows.shape[2] != size:
        from PIL import Image

        windows = np.stack([np.asarray(Image.fromarray(w).resize((size, size), Image.BILINEAR)) for w in windows])
    return normalize(windows, config)
