"""Teacher cache: SAM 2.1's window logits (fp16) and predicted IoU for every row of a
packed-crops set, computed once so that distillation needs no teacher at training time.

Layout of a cache folder::

    cache.json            settings (teacher, mode, packed set, rows, shard size) and completeness
    shard-00000.npz       logits (n, 96, 96) float16, iou (n,) float32, rows (n,) int64

Shards are written atomically; running the command again skips the finished ones, so a killed
job continues where it stopped. With several GPUs (``devices > 1``) shard ``s`` goes to GPU
``s % devices`` (one process each).

Modes (see :mod:`picosam2.teacher`):

* ``crop`` (the paper): the teacher sees the same 96 px crop, upsampled, with the click at the
  prompt point's position in the crop;
* ``full``: the teacher sees the whole image with the point; its mask is cut to the window.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import BackendError, ConfigError, DataError, UsageError
from ..teacher.sam2 import DEFAULT_TEACHER

CACHE_META = "cache.json"


class TeacherCache:
    """A finished teacher cache in memory: ``cache[row] -> (logits float32 (96, 96), iou)``."""

    def __init__(self, folder):
        self.folder = Path(folder)
        meta_path = self.folder / CACHE_META
        if not meta_path.exists():
            raise FileNotFoundError(f"not a teacher cache (no {CACHE_META}): {self.folder}")
        meta = json.loads(meta_path.read_text())
        if not meta.get("complete"):
            raise DataError(f"teacher cache {self.folder} is incomplete: run picosam2 teacher-cache again")
        self.settings = meta["settings"]
        n = int(self.settings["rows"])
        size = int(self.settings.get("size", 96))
        self.logits = np.zeros((n, size, size), np.float16)
        self.iou = np.zeros(n, np.float32)
        seen = np.zeros(n, bool)
        for p in sorted(self.folder.glob("shard-*.npz")):
            with np.load(p) as z:
                rows = z["rows"]
                self.logits[rows] = z["logits"]
                self.iou[rows] = z["iou"]
                seen[rows] = True
        if not seen.all():
            raise DataError(f"teacher cache {self.folder} lacks {int((~seen).sum())} rows")

    def __len__(self) -> int:
        return len(self.iou)

    def __getitem__(self, row: int):
        return self.logits[row].astype(np.float32), float(self.iou[row])


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def load_teacher(tcfg):
    """An online teacher for training (crop mode) from a :class:`TeacherConfig`."""
    from ..teacher import Sam2Teacher

    if tcfg.mode != "crop":
        raise ConfigError("an online teacher runs in crop mode; build a teacher cache for mode=full")
    t = Sam2Teacher.from_pretrained(
        tcfg.model, device=_device(tcfg.device), dtype=_dtype(tcfg.dtype), batch_size=tcfg.batch_size
    )
    return OnlineTeacher(t)


class OnlineTeacher:
    """Crop-mode teacher called on a training batch of uint8 NHWC crops (click at the centre)."""

    def __init__(self, teacher):
        self.teacher = teacher

    def window_logits(self, images):
        """The teacher's logits for a batch of (N, S, S, 3) crops, as a tensor on their device."""
        import torch

        out = self.teacher.predict_crops(images.cpu().numpy())
        return torch.from_numpy(out.logits), torch.from_numpy(out.iou)


def _crop_points(packed, rows: np.ndarray) -> np.ndarray:
    """The prompt point of each row in crop pixels (the click the student is trained for)."""
    from ..prompts import MODEL_SIZE, Window

    pts = []
    for r in rows:
        win = Window(*map(int, packed.window[r]))
        x, y = packed.point[r]
        pts.append(win.to_window_coords(float(x), float(y), MODEL_SIZE))
    return np.asarray(pts, np.float32)


def _run_shards(teacher, packed, out: Path, shards: list[int], shard_size: int, n: int, mode: str, iset, progress):
    from ..image_io import load_image
    from ..prompts import Window

    for s in shards:
        path = out / f"shard-{s:05d}.npz"
        if path.exists():
            progress(1)
            continue
        rows = np.arange(s * shard_size, min(n, (s + 1) * shard_size))
        if mode == "crop":
            crops = np.stack([packed.crop(r) for r in rows])
            res = teacher.predict_crops(crops, points=_crop_points(packed, rows))
            logits, iou = res.logits, res.iou
        else:
            logits = np.zeros((len(rows), 96, 96), np.float32)
            iou = np.zeros(len(rows), np.float32)
            by_image: dict[int, list[int]] = {}
            for k, r in enumerate(rows):
                by_image.setdefault(int(packed.image_id[r]), []).append(k)
            for image_id, ks in by_image.items():
                path_img = iset.image_path(image_id)
                if path_img is None:
                    raise FileNotFoundError(f"image {image_id} of the packed set not found in the image folders")
                image = load_image(path_img)
                sel = rows[ks]
                wins = [Window(*map(int, packed.window[r])) for r in sel]
                res = teacher.predict_full(image, packed.point[sel].astype(np.float32), wins, out_size=96)
                logits[ks], iou[ks] = res.logits, res.iou
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, logits=np.clip(logits, -60000, 60000).astype(np.float16), iou=iou.astype(np.float32), rows=rows)
        os.replace(tmp, path)
        progress(1)


def _worker(rank, devices, args):
    import torch

    from ..teacher import Sam2Teacher

    device = f"cuda:{rank}"
    torch.cuda.set_device(rank)
    teacher = Sam2Teacher.from_pretrained(args["teacher"], device=device, dtype=_dtype(args["dtype"]))
    teacher.batch_size = args["batch_size"]
    packed, iset = _inputs(args)
    shards = [s for s in range(args["n_shards"]) if s % devices == rank]
    _run_shards(
        teacher, packed, Path(args["out"]), shards, args["shard_size"], args["n"], args["mode"], iset, lambda k: None
    )


def _inputs(args):
    from .data import PackedCrops

    packed = PackedCrops(args["packed"], shuffle=False)
    iset = None
    if args["mode"] == "full":
        from ..data import InstanceSet

        if not args.get("annotations"):
            raise UsageError("--mode full needs --annotations and --images (the teacher sees the whole image)")
        iset = InstanceSet(args["annotations"], args["image_dirs"])
    return packed, iset


def _progress_bar(total: int):
    from ..progress import progress_bar

    return progress_bar(total=total, desc="teacher cache", unit="shard")


def _run_parallel(devices: int, args: dict) -> None:
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() < devices:
        raise BackendError(f"--devices {devices} needs that many CUDA GPUs")
    if args["teacher"] is None:
        raise UsageError("several devices need the teacher as a folder or hf-hub:owner/name")
    import torch.multiprocessing as mp

    mp.spawn(_worker, args=(devices, args), nprocs=devices, join=True)


def _run_local(teacher, args, device, dtype, batch_size, packed_set, out, n_shards, shard_size, n, mode, iset, step):
    if args["teacher"] is not None:
        from ..teacher import Sam2Teacher

        t = Sam2Teacher.from_pretrained(args["teacher"], device=_device(device), dtype=_dtype(dtype))
    else:
        t = teacher
    t.batch_size = batch_size
    _run_shards(t, packed_set, out, list(range(n_shards)), shard_size, n, mode, iset, step)


def build_teacher_cache(
    packed,
    out,
    teacher=DEFAULT_TEACHER,
    mode: str = "crop",
    annotations=None,
    image_dirs=(),
    batch_size: int = 8,
    shard_size: int = 1024,
    device: str = "auto",
    dtype: str = "float32",
    devices: int = 1,
    limit: int | None = None,
    progress: bool = True,
) -> Path:
    """Compute (or finish) the teacher cache of a packed-crops set. ``teacher`` is a Hub name
    (``hf-hub:owner/name``), a local folder, or an already built :class:`picosam2.teacher.Sam2Teacher`."""
    if mode not in ("crop", "full"):
        raise UsageError(f"mode must be crop or full, got {mode!r}")
    out = Path(out)
    args = {
        "packed": str(packed),
        "out": str(out),
        "teacher": teacher if isinstance(teacher, (str, os.PathLike)) else None,
        "mode": mode,
        "annotations": str(annotations) if annotations else None,
        "image_dirs": [str(d) for d in image_dirs],
        "batch_size": batch_size,
        "shard_size": shard_size,
        "dtype": dtype,
    }
    packed_set, iset = _inputs(args)
    n = len(packed_set) if limit is None else min(limit, len(packed_set))
    n_shards = max(1, -(-n // shard_size))
    args.update(n=n, n_shards=n_shards)
    settings = {
        "teacher": str(teacher) if args["teacher"] else "in-memory",
        "mode": mode,
        "packed": str(Path(packed).resolve()),
        "packed_rows": len(packed_set),
        "rows": n,
        "shard_size": shard_size,
        "size": 96,
    }
    from .data import open_resumable

    meta_path = open_resumable(out, CACHE_META, settings, "a teacher cache")
    if meta_path is None:
        return out
    bar = _progress_bar(n_shards) if progress else None
    step = bar.update if bar is not None else (lambda k: None)
    if devices > 1:
        _run_parallel(devices, args)
    else:
        _run_local(teacher, args, device, dtype, batch_size, packed_set, out, n_shards, shard_size, n, mode, iset, step)
    if bar is not None:
        bar.close()
    missing = [s for s in range(n_shards) if not (out / f"shard-{s:05d}.npz").exists()]
    if missing:
        raise DataError(f"teacher cache incomplete: shards {missing[:5]} missing")
    tmp = meta_path.with_name(CACHE_META + ".tmp")
    tmp.write_text(json.dumps({"settings": settings, "complete": True}, indent=1))
    os.replace(tmp, meta_path)
    return out
