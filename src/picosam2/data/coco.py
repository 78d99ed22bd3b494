"""COCO-format instance annotations (COCO 2017, LVIS v1, any export in that format).

Masks are decoded by pycocotools (polygons, RLE and uncompressed RLE). Images are found by
``file_name``; LVIS images carry only ``coco_url`` (``.../train2017/000000391895.jpg``), so the
basename of the URL is looked up, and the ``train2017``/``val2017`` sub-folder of each image
folder is searched as well as the folder itself.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

SIZE_SMALL = 32**2
SIZE_MEDIUM = 96**2


def size_class(area: float) -> str:
    """COCO size class of a mask area: small < 32^2 <= medium < 96^2 <= large."""
    if area < SIZE_SMALL:
        return "small"
    if area < SIZE_MEDIUM:
        return "medium"
    return "large"


@dataclass(frozen=True)
class Instance:
    """One annotated object: its ids, box, area, crowd flag and image file (``None`` when missing)."""

    ann_id: int
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]  #: x, y, w, h (COCO)
    area: float
    iscrowd: bool
    image_path: Path | None
    width: int
    height: int


class InstanceSet:
    """Instances of a COCO-format json, with images resolved in ``image_dirs``.

    ``instances()`` lists them in pycocotools ``imgToAnns`` order with images in the json's
    order (the paper protocol's order); ``mask(inst)`` decodes one full-size boolean mask.
    """

    def __init__(self, annotations: str | os.PathLike, image_dirs=(), quiet: bool = True):
        try:
            from pycocotools.coco import COCO
        except ImportError as exc:
            raise DataError("reading COCO data needs pycocotools: pip install 'picosam2[eval]'") from exc
        path = Path(annotations)
        if not path.exists():
            raise DataError(f"annotation file not found: {path}")
        try:
            with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
                self.coco = COCO(str(path))
        except Exception as exc:  # noqa: BLE001 - any parse error is the user's file
            raise DataError(f"cannot read annotations {path}: {type(exc).__name__}: {exc}") from exc
        if "images" not in self.coco.dataset or "annotations" not in self.coco.dataset:
            raise DataError(f"{path} is not a COCO instances file (needs 'images' and 'annotations')")
        self.path = path
        self.image_dirs = [Path(d) for d in image_dirs]
        for d in self.image_dirs:
            if not d.is_dir():
                raise DataError(f"image folder not found: {d}")
        self._paths: dict[int, Path | None] = {}
        self.image_order = [img["id"] for img in self.coco.dataset["images"]]

    # -- images ---------------------------------------------------------------------------
    @staticmethod
    def image_name(img: dict) -> str:
        """The file name of a COCO image record (``file_name``, else the last part of ``coco_url``)."""
        if img.get("file_name"):
            return img["file_name"]
        if img.get("coco_url"):
            return img["coco_url"].rstrip("/").rsplit("/", 1)[-1]
        raise DataError(f"image {img.get('id')} has neither file_name nor coco_url")

    def image_path(self, image_id: int) -> Path | None:
        """Where the image is on disk, or None if no folder has it."""
        if image_id not in self._paths:
            img = self.coco.imgs[image_id]
            name = self.image_name(img)
            subdirs = [""]
            url = img.get("coco_url", "")
            if url:
                split = url.rstrip("/").rsplit("/", 2)[-2]
                subdirs.append(split)
            subdirs += ["train2017", "val2017"]
            found = None
            for d in self.image_dirs:
                for sub in dict.fromkeys(subdirs):
                    cand = d / sub / name if sub else d / name
                    if cand.exists():
                        found = cand
                        break
                if found:
                    break
            self._paths[image_id] = found
        return self._paths[image_id]

    # -- instances ------------------------------------------------------------------------
    def _instance(self, ann: dict) -> Instance:
        img = self.coco.imgs[ann["image_id"]]
        return Instance(
            ann_id=int(ann["id"]),
            image_id=int(ann["image_id"]),
            category_id=int(ann.get("category_id", 0)),
            bbox=tuple(float(v) for v in ann.get("bbox", (0, 0, 0, 0))),
            area=float(ann.get("area", 0.0)),
            iscrowd=bool(ann.get("iscrowd", 0)),
            image_path=self.image_path(ann["image_id"]) if self.image_dirs else None,
            width=int(img["width"]),
            height=int(img["height"]),
        )

    def instances(self, include_crowd: bool = False, limit: int | None = None) -> list[Instance]:
        """Instances in ``imgToAnns`` order, images in the json's order; crowd skipped by default."""
        out = []
        for image_id in self.image_order:
            for ann in self.coco.imgToAnns.get(image_id, []):
                if ann.get("iscrowd", 0) and not include_crowd:
                    continue
                out.append(self._instance(ann))
                if limit is not None and len(out) >= limit:
                    return out
        return out

    def instance(self, ann_id: int) -> Instance:
        """The :class:`Instance` of annotation ``ann_id``."""
        return self._instance(self.coco.anns[ann_id])

    def mask(self, inst: Instance | int) -> np.ndarray:
        """Full-size boolean mask of an instance; raises DataError for an undecodable one."""
        ann = self.coco.anns[inst.ann_id if isinstance(inst, Instance) else int(inst)]
        seg = ann.get("segmentation")
        if isinstance(seg, list):
            seg = [p for p in seg if len(p) >= 6]  # a polygon needs 3 points
            if not seg:
                raise DataError(f"annotation {ann['id']}: degenerate polygon")
            ann = {**ann, "segmentation": seg}
        try:
            with warnings.catch_warnings():
                # pycocotools' Cython RLE objects trip numpy 2's __array__(copy=) deprecation
                warnings.simplefilter("ignore", DeprecationWarning)
                m = self.coco.annToMask(ann)
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"annotation {ann['id']}: cannot decode mask: {exc}") from exc
        return m.astype(bool)

    def missing_images(self, instances: list[Instance]) -> list[Instance]:
        """The instances whose image file is not in any image folder."""
        return [i for i in instances if i.image_path is None]

    def summary(self) -> dict:
        """Counts of images, instances, crowd instances and instances per size class."""
        insts = self.instances(include_crowd=True)
        sizes = Counter(size_class(i.area) for i in insts if not i.iscrowd)
        return {
            "images": len(self.image_order),
            "instances": sum(not i.iscrowd for i in insts),
            "crowd": sum(i.iscrowd for i in insts),
            "by_size": dict(sizes),
        }
