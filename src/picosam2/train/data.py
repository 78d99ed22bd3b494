"""Training data: prompt windows cut from COCO/LVIS instances, augmentation, packed crops.

Every crop goes through :mod:`picosam2.prompts` (the same windows as prediction and
evaluation). A training sample is drawn by :func:`draw_window`: a point (the paper rule, the
most interior pixel or a random mask pixel), a window around it (96 px, or a larger side drawn
log-uniformly and resized to 96: scale jitter), then cut with :func:`crop_image` /
:func:`crop_mask`.

Two datasets give the same samples:

* :class:`WindowDataset` decodes images and masks on the fly (any COCO-format data, needs
  workers to be fast);
* :class:`PackedCrops` reads a *packed-crops* folder made once by :func:`build_packed`: several
  windows per instance stored as shards of uint8 crops (raw or JPEG) and bit-packed masks,
  plus each window's provenance (annotation, image, point, window). Training from it only
  flips and colour-jitters numpy arrays; with ``jpeg`` a set of ~15 k crops fits in 64 MiB.

Both are indexed by a *global sample index* ``g``: which item and which augmentation a sample
gets depends only on ``(seed, g)``, so a resumed run sees exactly the batches it would have
seen (see :class:`StreamSampler`).
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..data import DataError, InstanceSet, interior_point, paper_point, random_point
from ..data.prompt_rules import EmptyMaskError
from ..errors import ConfigError, UsageError
from ..image_io import ImageError, load_image
from ..prompts import MODEL_SIZE, Window, crop_image, crop_mask, point_window
from .config import DataConfig

PACK_VERSION = 1
PACK_META = "pack.json"
MASK_BYTES = MODEL_SIZE * MODEL_SIZE // 8


@dataclass
class WindowPolicy:
    """How training windows are drawn (a subset of :class:`~picosam2.train.config.DataConfig`,
    whose defaults it shares)."""

    point: str = DataConfig.point
    paper_point_prob: float = DataConfig.paper_point_prob
    interior_point_prob: float = DataConfig.interior_point_prob
    scale_prob: float = DataConfig.scale_prob
    scale_min: int = DataConfig.scale_min
    scale_max: int = DataConfig.scale_max
    scale_to_image: bool = DataConfig.scale_to_image
    paper_mode_prob: float = DataConfig.paper_mode_prob

    @classmethod
    def from_data_config(cls, d) -> WindowPolicy:
        """The policy from a :class:`~picosam2.train.config.DataConfig`."""
        return cls(**{k: getattr(d, k) for k in cls.__dataclass_fields__})

    @classmethod
    def paper_protocol(cls) -> WindowPolicy:
        """The paper's evaluation crop: paper point, 96 px clipped window."""
        return cls(point="paper", scale_prob=0.0, paper_mode_prob=1.0)


def draw_window(mask: np.ndarray, bbox, policy: WindowPolicy, rng: np.random.Generator):
    """A prompt point and its window for one instance: ``((x, y), Window, rule)``."""
    h, w = mask.shape
    u = rng.random()
    if policy.point == "paper" or u < policy.paper_point_prob:
        pt, rule = paper_point(mask, bbox), "paper"
    elif u < policy.paper_point_prob + policy.interior_point_prob:
        pt, rule = interior_point(mask), "interior"
    else:
        pt, rule = random_point(mask, rng=rng), "random"
    if policy.scale_prob > 0 and rng.random() < policy.scale_prob:
        top = max(h, w) if policy.scale_to_image else policy.scale_max
        lo, hi = math.log(policy.scale_min), math.log(max(policy.scale_min, top))
        side = int(round(math.exp(rng.uniform(lo, hi))))
        win = point_window(pt[0], pt[1], (w, h), window_size=side, mode="centered")
    else:
        mode = "paper" if rng.random() < policy.paper_mode_prob else "centered"
        win = point_window(pt[0], pt[1], (w, h), window_size=MODEL_SIZE, mode=mode)
    return pt, win, rule


def outside_pixels(mask: np.ndarray, win: Window) -> int:
    """Object pixels of a full-size mask that lie outside the window (what a mask confined to
    the window can never cover: the quality target counts them as missed)."""
    h, w = mask.shape
    x0, y0, x1, y1 = max(win.x0, 0), max(win.y0, 0), min(win.x1, w), min(win.y1, h)
    inside = int(mask[y0:y1, x0:x1].sum()) if x1 > x0 and y1 > y0 else 0
    return int(mask.sum()) - inside


def crop_units(pixels: float, win: Window, out_size: int = MODEL_SIZE) -> float:
    """Image pixels expressed in model-input pixels of ``win`` (a window pixel covers
    ``(side / out_size)^2`` image pixels)."""
    return float(pixels) * (out_size * out_size) / float(win.width * win.height)


# -- augmentation ---------------------------------------------------------------------------
@dataclass
class Augment:
    """Random flips and colour jitter applied alike to a crop and its targets."""

    hflip: float = 0.0
    vflip: float = 0.0
    color_jitter: float = 0.0

    @classmethod
    def from_data_config(cls, d) -> Augment:
        """The augmentation from a :class:`~picosam2.train.config.DataConfig`."""
        return cls(hflip=d.hflip, vflip=d.vflip, color_jitter=d.color_jitter)

    def __call__(self, image: np.ndarray, targets: list[np.ndarray], rng: np.random.Generator):
        """Flip image and every target (HxW arrays) together; jitter the image's colours."""
        if self.hflip and rng.random() < self.hflip:
            image = image[:, ::-1]
            targets = [t[:, ::-1] for t in targets]
        if self.vflip and rng.random() < self.vflip:
            image = image[::-1]
            targets = [t[::-1] for t in targets]
        if self.color_jitter:
            s = self.color_jitter
            b, c, sat = rng.uniform(1 - s, 1 + s, size=3)
            x = image.astype(np.float32) * b
            gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
            x = (x - gray.mean()) * c + gray.mean()
            gray = (gray - gray.mean()) * c + gray.mean()
            x = gray[..., None] + (x - gray[..., None]) * sat
            image = np.clip(x + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(image), [np.ascontiguousarray(t) for t in targets]


# -- sample stream --------------------------------------------------------------------------
class StreamSampler:
    """Global sample indices ``start, start+1, ..., total-1`` (a torch ``Sampler``).

    ``start`` is read when iteration begins (a callable, so a resumed trainer can say how many
    samples were already consumed); the dataset maps a global index to an item through a
    per-pass permutation, so the order does not depend on where the run was interrupted.
    """

    def __init__(self, total: int, start: int | Callable[[], int] = 0):
        self.total = int(total)
        self._start = start

    def start(self) -> int:
        """The index the stream starts at (resumed runs continue where they stopped)."""
        return int(self._start() if callable(self._start) else self._start)

    def __iter__(self):
        return iter(range(min(self.start(), self.total), self.total))

    def __len__(self) -> int:
        return max(0, self.total - self.start())


class _Indexed:
    """Maps a global sample index to (item, rng): item order is a fresh permutation per pass."""

    def __init__(self, n: int, seed: int, shuffle: bool = True):
        if n < 1:
            raise DataError("the training set is empty")
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self._perm_pass, self._perm = -1, None

    def item(self, g: int) -> int:
        p, k = divmod(int(g), self.n)
        if not self.shuffle:
            return k
        if p != self._perm_pass:
            self._perm = np.random.default_rng([self.seed, 7, p]).permutation(self.n)
            self._perm_pass = p
        return int(self._perm[k])

    def rng(self, g: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, 11, int(g)])


def _sample(image, mask, g, row, augment, rng, teacher=None, outside: float = float("nan")) -> dict:
    """One training sample. ``outside``: the object's pixels outside the window, in
    model-input pixel units (NaN when unknown: no quality target for this sample)."""
    targets = [mask]
    if teacher is not None:
        targets.append(teacher[0])
    image, targets = augment(image, targets, rng)
    out = {
        "image": image,
        "mask": targets[0].astype(np.uint8),
        "index": int(g),
        "row": int(row),
        "outside": np.float32(outside),
    }
    if teacher is not None:
        out["teacher_logits"] = targets[1].astype(np.float32)
        out["teacher_iou"] = np.float32(teacher[1])
    return out


class WindowDataset:
    """Samples cut on the fly from an :class:`InstanceSet` (image + mask decoded per sample)."""

    def __init__(
        self,
        instance_set: InstanceSet,
        policy: WindowPolicy | None = None,
        augment: Augment | None = None,
        seed: int = 0,
        include_crowd: bool = False,
        limit: int | None = None,
    ):
        self.set = instance_set
        insts = instance_set.instances(include_crowd=include_crowd, limit=limit)
        missing = instance_set.missing_images(insts)
        if missing:
            raise DataError(f"{len(missing)} instances have no image on disk (first: image {missing[0].image_id})")
        self.instances = insts
        self.policy = policy or WindowPolicy()
        self.augment = augment or Augment()
        self.index = _Indexed(len(insts), seed)

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, g: int) -> dict:
        rng = self.index.rng(g)
        k = self.index.item(g)
        for _ in range(len(self.instances)):
            inst = self.instances[k]
            try:
                mask = self.set.mask(inst)
                image = load_image(inst.image_path)
                _, win, _ = draw_window(mask, inst.bbox, self.policy, rng)
                break
            except (EmptyMaskError, DataError, ImageError):
                k = (k + 1) % len(self.instances)  # an empty/undecodable mask or image: take the next one
        outside = crop_units(outside_pixels(mask, win), win)
        return _sample(crop_image(image, win), crop_mask(mask, win), g, k, self.augment, rng, outside=outside)


# -- packed crops ---------------------------------------------------------------------------
def _encode_jpeg(crop: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _decode_jpeg(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _atomic_savez(path: Path, **arrays) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def open_resumable(out: Path, meta_name: str, settings: dict, what: str) -> Path | None:
    """Start or continue a sharded build in ``out`` (packed crops, the teacher cache): checks a
    partial build was made with the same ``settings`` and marks it incomplete. Returns the
    metadata path, or None when the build is already complete."""
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / meta_name
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        if old.get("settings") != settings:
            raise UsageError(f"{out} holds {what} made with other settings; use another folder")
        if old.get("complete"):
            return None
    meta_path.write_text(json.dumps({"settings": settings, "complete": False}, indent=1))
    return meta_path


def _pack_shard(instance_set, insts, samples_per_instance, policy, rng, fmt, jpeg_quality) -> dict:
    """The arrays of one packed shard: ``samples_per_instance`` windows of each instance."""
    rows = {k: [] for k in ("image", "mask", "ann_id", "image_id", "point", "window", "rule", "area", "outside")}
    cur_img_id, image = None, None
    for inst in insts:
        try:
            mask = instance_set.mask(inst)
            if not mask.any():
                continue
            if inst.image_id != cur_img_id:
                image, cur_img_id = load_image(inst.image_path), inst.image_id
        except (DataError, ImageError):
            continue  # an undecodable mask, or an unreadable / too large image
        for _ in range(samples_per_instance):
            pt, win, rule = draw_window(mask, inst.bbox, policy, rng)
            crop = crop_image(image, win)
            rows["image"].append(_encode_jpeg(crop, jpeg_quality) if fmt == "jpeg" else crop)
            rows["mask"].append(np.packbits(crop_mask(mask, win).reshape(-1)))
            rows["ann_id"].append(inst.ann_id)
            rows["image_id"].append(inst.image_id)
            rows["point"].append(pt)
            rows["window"].append(win.as_tuple())
            rows["rule"].append(("paper", "interior", "random").index(rule))
            rows["area"].append(inst.area)
            rows["outside"].append(outside_pixels(mask, win))
    n = len(rows["ann_id"])
    arrays = {
        "mask": np.stack(rows["mask"]) if n else np.zeros((0, MASK_BYTES), np.uint8),
        "ann_id": np.asarray(rows["ann_id"], np.int64),
        "image_id": np.asarray(rows["image_id"], np.int64),
        "point": np.asarray(rows["point"], np.int32).reshape(n, 2),
        "window": np.asarray(rows["window"], np.int32).reshape(n, 4),
        "rule": np.asarray(rows["rule"], np.uint8),
        "area": np.asarray(rows["area"], np.float32),
        "outside": np.asarray(rows["outside"], np.float32),
    }
    if fmt == "jpeg":
        lengths = np.asarray([len(b) for b in rows["image"]], np.int64)
        arrays["jpeg"] = np.frombuffer(b"".join(rows["image"]), np.uint8)
        arrays["jpeg_offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    else:
        arrays["image"] = np.stack(rows["image"]) if n else np.zeros((0, MODEL_SIZE, MODEL_SIZE, 3), np.uint8)
    return arrays


def build_packed(
    instance_set: InstanceSet,
    out_dir: str | os.PathLike,
    samples_per_instance: int = 8,
    policy: WindowPolicy | None = None,
    seed: int = 0,
    fmt: str = "raw",
    jpeg_quality: int = 92,
    include_crowd: bool = False,
    limit: int | None = None,
    shard_instances: int = 256,
    progress: bool = False,
) -> Path:
    """Cut ``samples_per_instance`` windows per instance once and store them as shards.

    Shards are written atomically and each depends only on ``(seed, shard number)``: an
    interrupted build continues where it stopped when run again with the same arguments.
    """
    if fmt not in ("raw", "jpeg"):
        raise ConfigError(f"packed format must be raw or jpeg, got {fmt!r}")
    policy = policy or WindowPolicy()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    insts = instance_set.instances(include_crowd=include_crowd, limit=limit)
    missing = instance_set.missing_images(insts)
    if missing:
        raise DataError(f"{len(missing)} instances have no image on disk (first: image {missing[0].image_id})")
    settings = {
        "version": PACK_VERSION,
        "annotations": str(instance_set.path),
        "samples_per_instance": samples_per_instance,
        "policy": asdict(policy),
        "seed": seed,
        "format": fmt,
        "jpeg_quality": jpeg_quality,
        "include_crowd": include_crowd,
        "limit": limit,
        "shard_instances": shard_instances,
        "instances": len(insts),
    }
    meta_path = open_resumable(out, PACK_META, settings, "a packed set")
    if meta_path is None:
        return out
    n_shards = max(1, math.ceil(len(insts) / shard_instances))
    bar = _progress(n_shards, "packing", progress)
    total = 0
    for s in range(n_shards):
        path = out / f"shard-{s:05d}.npz"
        if path.exists():
            with np.load(path) as z:
                total += len(z["ann_id"])
            bar.update(1)
            continue
        arrays = _pack_shard(
            instance_set,
            insts[s * shard_instances : (s + 1) * shard_instances],
            samples_per_instance,
            policy,
            np.random.default_rng([seed, 3, s]),
            fmt,
            jpeg_quality,
        )
        n = len(arrays["ann_id"])
        _atomic_savez(path, **arrays)
        total += n
        bar.update(1)
    bar.close()
    tmp = meta_path.with_name(PACK_META + ".tmp")
    tmp.write_text(json.dumps({"settings": settings, "complete": True, "samples": total, "shards": n_shards}, indent=1))
    os.replace(tmp, meta_path)
    return out


def _progress(total, desc, enabled):
    from ..progress import progress_bar

    return progress_bar(total=total, desc=desc, unit="shard", enabled=enabled)


class PackedCrops:
    """A packed-crops folder in memory; ``dataset[g]`` is an augmented sample.

    ``teacher``: an optional :class:`~picosam2.train.teacher_cache.TeacherCache` aligned with
    the packed rows (distillation targets).
    """

    def __init__(
        self,
        folder,
        augment: Augment | None = None,
        seed: int = 0,
        teacher=None,
        shuffle: bool = True,
        max_window: int = 0,
    ):
        self.folder = Path(folder)
        meta_path = self.folder / PACK_META
        if not meta_path.exists():
            raise FileNotFoundError(f"not a packed-crops folder (no {PACK_META}): {self.folder}")
        meta = json.loads(meta_path.read_text())
        if not meta.get("complete"):
            raise DataError(f"packed set {self.folder} is incomplete; run the build again to finish it")
        self.settings = meta["settings"]
        shards = sorted(self.folder.glob("shard-*.npz"))
        parts = {k: [] for k in ("mask", "ann_id", "image_id", "point", "window", "rule", "area")}
        images, jpeg_blobs = [], []
        for p in shards:
            with np.load(p) as z:
                for k in parts:
                    parts[k].append(z[k])
                if "jpeg" in z:
                    blob, offs = z["jpeg"], z["jpeg_offsets"]
                    jpeg_blobs += [blob[offs[i] : offs[i + 1]].tobytes() for i in range(len(offs) - 1)]
                else:
                    images.append(z["image"])
        for k, v in parts.items():
            setattr(self, k, np.concatenate(v) if v else np.zeros((0,)))
        #: object pixels outside each window (image pixels); NaN for packs made before it existed
        self.outside = self._optional_column(shards, "outside", len(self.ann_id))
        self.jpeg = jpeg_blobs if jpeg_blobs else None
        self.images = np.concatenate(images) if images else None
        self.augment = augment or Augment()
        self.teacher = teacher
        if teacher is not None and len(teacher) != len(self.ann_id):
            raise DataError(f"teacher cache has {len(teacher)} rows but the packed set {len(self.ann_id)}")
        #: rows in use: all, or those whose window side is at most ``max_window`` image pixels
        self.rows = np.arange(len(self.ann_id))
        if max_window:
            self.rows = np.nonzero(self.window[:, 2] - self.window[:, 0] <= max_window)[0]
        self.index = _Indexed(len(self), seed, shuffle=shuffle)

    def __len__(self) -> int:
        return len(self.rows)

    @staticmethod
    def _optional_column(shards, key: str, n: int) -> np.ndarray:
        parts = []
        for p in shards:
            with np.load(p) as z:
                if key not in z:
                    return np.full(n, np.nan, np.float32)
                parts.append(z[key])
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)

    def crop(self, row: int) -> np.ndarray:
        """The (96, 96, 3) uint8 crop of ``row``."""
        return _decode_jpeg(self.jpeg[row]) if self.jpeg is not None else self.images[row]

    def gt_mask(self, row: int) -> np.ndarray:
        """The (96, 96) ground-truth mask of ``row``."""
        return np.unpackbits(self.mask[row])[: MODEL_SIZE * MODEL_SIZE].reshape(MODEL_SIZE, MODEL_SIZE).astype(bool)

    def windows(self) -> list[Window]:
        """The image-pixel window of every row."""
        return [Window(*map(int, w)) for w in self.window]

    def __getitem__(self, g: int) -> dict:
        row = int(self.rows[self.index.item(g)])
        rng = self.index.rng(g)
        teacher = self.teacher[row] if self.teacher is not None else None
        outside = crop_units(self.outside[row], Window(*map(int, self.window[row])))
        return _sample(self.crop(row), self.gt_mask(row), g, row, self.augment, rng, teacher, outside=outside)


def collate(samples: list[dict]) -> dict:
    """Stack samples into torch tensors (images stay uint8 NHWC; the module normalises)."""
    import torch

    out = {
        "image": torch.from_numpy(np.stack([s["image"] for s in samples])),
        "mask": torch.from_numpy(np.stack([s["mask"] for s in samples])),
        "index": torch.tensor([s["index"] for s in samples], dtype=torch.int64),
        "row": torch.tensor([s["row"] for s in samples], dtype=torch.int64),
        "outside": torch.tensor([float(s["outside"]) for s in samples], dtype=torch.float32),
    }
    if "teacher_logits" in samples[0]:
        out["teacher_logits"] = torch.from_numpy(np.stack([s["teacher_logits"] for s in samples]))
        out["teacher_iou"] = torch.tensor([float(s["teacher_iou"]) for s in samples], dtype=torch.float32)
    return out


def pack_from_config(data_cfg, seed: int, folder: str | os.PathLike, progress: bool = True) -> Path:
    """Build (or finish) the packed set a config asks for."""
    iset = InstanceSet(data_cfg.train_annotations, data_cfg.train_images)
    return build_packed(
        iset,
        folder,
        samples_per_instance=data_cfg.samples_per_instance,
        policy=WindowPolicy.from_data_config(data_cfg),
        seed=seed,
        fmt=data_cfg.packed_format,
        jpeg_quality=data_cfg.jpeg_quality,
        include_crowd=data_cfg.include_crowd,
        limit=data_cfg.limit,
        progress=progress,
    )
