"""Site labels in COCO instance format: read the exports of the labelling tools people use, check
them, and write our own accepted or corrected masks.

* **CVAT** ("COCO 1.0" export, ``annotations/instances_default.json``): category ids from 1, images
  by bare file name, polygons (``[[x, y, ...]]``) or RLE masks (``{"counts": [...], "size": [h, w]}``,
  uncompressed), an ``attributes`` dict (``occluded``...) on each annotation.
* **Label Studio** ("COCO" export, ``result.json`` beside an ``images/`` folder): category ids from 0,
  ``file_name`` as a path such as ``images/1a2b3c4d-photo.jpg`` (backslashes on Windows, and with
  newer versions a path up to the media folder), polygons only, ``area`` and ``bbox`` present.
* **picosam2** (:func:`write_coco`, :func:`add_annotation`): compressed RLE of our predicted masks
  after a person accepted or corrected them (the web demo's "save as annotation").

:func:`import_labels` checks a file (one :class:`LabelError` line naming the first problem and how many
there are: an empty mask, a shape outside its image, a duplicate object, a missing image...) and
returns it normalised: every ``file_name`` resolved against the image folders, ``bbox``, ``area`` and
``iscrowd`` filled in from the masks.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path, PureWindowsPath

import numpy as np

from ..errors import DataError

#: a polygon vertex may lie this many pixels outside its image (rounding in the tools' exports)
EDGE_TOLERANCE = 1.0
#: two objects of one image and one category whose masks overlap more than this are duplicates
DUPLICATE_IOU = 0.95


class LabelError(DataError):
    """Unusable labels: one line for the user (exit status 2)."""


def load_coco(path: str | os.PathLike) -> dict:
    """A COCO instances file as a dict (``images``, ``annotations``, ``categories`` checked present)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LabelError(f"cannot read labels {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise LabelError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "annotations")):
        raise LabelError(f"{path} is not a COCO instances file (needs 'images' and 'annotations' lists)")
    data.setdefault("categories", [])
    return data


def _rle(seg: dict, h: int, w: int):
    from pycocotools import mask as mask_utils

    counts = seg.get("counts")
    if isinstance(counts, list):
        return mask_utils.frPyObjects(seg, h, w)
    return {"size": list(seg["size"]), "counts": counts.encode() if isinstance(counts, str) else counts}


def decode_mask(seg, h: int, w: int) -> np.ndarray:
    """A segmentation (polygons, uncompressed or compressed RLE) as an (h, w) bool mask."""
    from pycocotools import mask as mask_utils

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if isinstance(seg, list):
            polys = [p for p in seg if len(p) >= 6]
            if not polys:
                return np.zeros((h, w), bool)
            rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
        else:
            rle = _rle(seg, h, w)
        return mask_utils.decode(rle).astype(bool)


def encode_mask(mask: np.ndarray) -> dict:
    """A bool mask as compressed COCO RLE (``counts`` a string, JSON-ready)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _bbox(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def resolve_image(file_name: str, image_dirs) -> Path | None:
    """Where an exported ``file_name`` is: as given under a folder, else its last one or two parts
    (Label Studio's ``images/NAME``, Windows backslashes and media paths included)."""
    name = str(file_name)
    parts = PureWindowsPath(name).parts if "\\" in name else Path(name).parts
    parts = [p for p in parts if p not in ("", ".", "..", "/")]
    tries = [Path(name)] if not Path(name).is_absolute() and ".." not in Path(name).parts else []
    tries += [Path(*parts[-2:]), Path(parts[-1])] if parts else []
    for d in image_dirs:
        for t in tries:
            if (Path(d) / t).is_file():
                return Path(d) / t
    return None


def _problems(data: dict, image_dirs, check_files: bool):
    """Yield (problem line) for each unusable record; fills ``_mask`` caches on the way."""
    images, seen_ids = {}, set()
    for im in data["images"]:
        iid = im.get("id") if isinstance(im, dict) else None
        if iid is None:
            yield f"an image record has no id: {str(im)[:80]}"
            continue
        if iid in seen_ids:
            yield f"image id {iid} is listed twice"
            continue
        seen_ids.add(iid)
        w, h = im.get("width"), im.get("height")
        if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
            yield f"image {iid} ({im.get('file_name')}): width and height must be positive integers"
            continue
        if check_files:
            path = resolve_image(im.get("file_name", ""), image_dirs)
            if path is None:
                yield f"image {iid}: {im.get('file_name')} is not in {', '.join(map(str, image_dirs)) or 'any folder'}"
                continue
            im["_path"] = path
        images[iid] = im
    cats = {c.get("id") for c in data["categories"] if isinstance(c, dict)}
    ann_ids, kept = set(), {}
    for a in data["annotations"]:
        aid = a.get("id") if isinstance(a, dict) else None
        where = f"annotation {aid}"
        if aid is None:
            yield f"an annotation has no id: {str(a)[:80]}"
            continue
        if aid in ann_ids:
            yield f"{where}: the id is used twice"
            continue
        ann_ids.add(aid)
        im = images.get(a.get("image_id"))
        if im is None:
            if a.get("image_id") not in seen_ids:
                yield f"{where}: image_id {a.get('image_id')} is not among the images"
            continue
        where += f" (image {im['id']}, {im.get('file_name')})"
        if cats and a.get("category_id") not in cats:
            yield f"{where}: category_id {a.get('category_id')} is not among the categories"
            continue
        w, h = im["width"], im["height"]
        seg = a.get("segmentation")
        if not seg:
            yield f"{where}: empty segmentation (no polygon, no mask)"
            continue
        if isinstance(seg, list):
            flat = [v for p in seg if isinstance(p, list) for v in p]
            if not flat or not all(isinstance(v, (int, float)) for v in flat) or any(len(p) % 2 for p in seg):
                yield f"{where}: a polygon must be a list of x, y numbers"
                continue
            xs, ys = np.array(flat[0::2], float), np.array(flat[1::2], float)
            if (
                xs.min() < -EDGE_TOLERANCE or ys.min() < -EDGE_TOLERANCE
                or xs.max() > w + EDGE_TOLERANCE or ys.max() > h + EDGE_TOLERANCE
            ):  # fmt: skip
                yield (f"{where}: polygon reaches ({xs.min():g}..{xs.max():g}, {ys.min():g}..{ys.max():g}), "
                       f"outside the {w}x{h} image")  # fmt: skip
                continue
        elif isinstance(seg, dict):
            size = seg.get("size")
            if not (isinstance(size, list) and len(size) == 2) or "counts" not in seg:
                yield f"{where}: an RLE mask needs 'size' [h, w] and 'counts'"
                continue
            if [int(size[0]), int(size[1])] != [h, w]:
                yield f"{where}: RLE mask of size {size[1]}x{size[0]} on a {w}x{h} image (out of the image)"
                continue
        else:
            yield f"{where}: segmentation must be polygons or an RLE mask"
            continue
        try:
            m = decode_mask(seg, h, w)
        except Exception as exc:  # noqa: BLE001 - any decoding failure is the file's
            yield f"{where}: cannot decode the mask ({type(exc).__name__}: {exc})"
            continue
        if not m.any():
            yield f"{where}: empty mask (zero pixels)"
            continue
        for other_id, om in kept.get((im["id"], a.get("category_id")), []):
            inter = np.logical_and(m, om).sum()
            if inter / np.logical_or(m, om).sum() > DUPLICATE_IOU:
                yield f"{where}: duplicate of annotation {other_id} (mask IoU > {DUPLICATE_IOU})"
                break
        else:
            kept.setdefault((im["id"], a.get("category_id")), []).append((aid, m))
            a["_mask_area"], a["_bbox"] = int(m.sum()), _bbox(m)


def import_labels(path: str | os.PathLike, image_dirs=(), check_files: bool = True) -> dict:
    """Read, check and normalise a COCO export (see the module docstring). Raises
    :class:`LabelError` naming the first problem; returns the normalised dict with a ``summary``."""
    data = load_coco(path)
    problems = list(_problems(data, [Path(d) for d in image_dirs], check_files))
    if problems:
        more = (
            f" ({len(problems)} problems; fix them in the labelling tool and export again)" if len(problems) > 1 else ""
        )
        raise LabelError(f"{Path(path).name}: {problems[0]}{more}")
    if not data["annotations"]:
        raise LabelError(f"{Path(path).name}: no annotations")
    images = []
    for im in data["images"]:
        im = dict(im)
        p = im.pop("_path", None)
        if p is not None:
            base = next(Path(d) for d in image_dirs if Path(p).is_relative_to(Path(d)))
            im["file_name"] = Path(p).relative_to(base).as_posix()
        images.append(im)
    anns = []
    for a in data["annotations"]:
        a = dict(a)
        area, box = a.pop("_mask_area"), a.pop("_bbox")
        a.setdefault("area", float(area))
        a["bbox"] = a.get("bbox") or box
        a["iscrowd"] = int(bool(a.get("iscrowd", 0)))
        anns.append(a)
    if not data["categories"]:
        data["categories"] = [{"id": c, "name": str(c)} for c in sorted({a.get("category_id", 1) for a in anns})]
    crowd = sum(a["iscrowd"] for a in anns)
    out = {**data, "images": images, "annotations": anns}
    out["summary"] = {"images": len(images), "objects": len(anns) - crowd, "crowd": crowd,
                      "categories": len(data["categories"])}  # fmt: skip
    return out


# -- writing ----------------------------------------------------------------------------------
def write_coco(path: str | os.PathLike, entries, categories=None, info: dict | None = None) -> Path:
    """Write a COCO instances file (atomically) from ``entries``: dicts with ``file_name``,
    ``masks`` (bool arrays of the image's size) and optionally ``category_id`` (default 1) or
    ``category_ids`` (one per mask). ``categories``: list of COCO category dicts (default one
    ``object``). Masks are stored as compressed RLE; empty masks are refused."""
    from ..io_utils import write_json_atomic

    images, anns = [], []
    for i, e in enumerate(entries, start=1):
        masks = [np.asarray(m, dtype=bool) for m in e["masks"]]
        if not masks:
            raise LabelError(f"{e['file_name']}: no mask to save")
        h, w = masks[0].shape
        images.append({"id": i, "file_name": str(e["file_name"]), "width": int(w), "height": int(h)})
        cids = e.get("category_ids") or [e.get("category_id", 1)] * len(masks)
        for m, cid in zip(masks, cids):
            if m.shape != (h, w):
                raise LabelError(f"{e['file_name']}: masks of different sizes")
            if not m.any():
                raise LabelError(f"{e['file_name']}: an empty mask cannot be an annotation")
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(cid), "segmentation": encode_mask(m),
                         "area": float(m.sum()), "bbox": _bbox(m), "iscrowd": 0})  # fmt: skip
    doc = {
        "info": info or {"description": "masks accepted or corrected in picosam2"},
        "images": images,
        "annotations": anns,
        "categories": categories or [{"id": 1, "name": "object", "supercategory": ""}],
    }
    return write_json_atomic(doc, path)


def add_annotation(path: str | os.PathLike, file_name: str, masks, category: str = "object") -> dict:
    """Append one image's accepted masks to the COCO file ``path`` (created when missing; the
    image record is reused when ``file_name`` is already there). Returns the new annotations."""
    from ..io_utils import write_json_atomic

    path = Path(path)
    doc = load_coco(path) if path.exists() else {"info": {"description": "masks accepted in picosam2"},
                                                 "images": [], "annotations": [], "categories": []}  # fmt: skip
    masks = [np.asarray(m, dtype=bool) for m in masks]
    if not masks or any(not m.any() for m in masks):
        raise LabelError(f"{file_name}: an empty mask cannot be an annotation")
    h, w = masks[0].shape
    cat = next((c for c in doc["categories"] if c.get("name") == category), None)
    if cat is None:
        cat = {"id": max([c["id"] for c in doc["categories"]], default=0) + 1, "name": category, "supercategory": ""}
        doc["categories"].append(cat)
    im = next((i for i in doc["images"] if i.get("file_name") == file_name), None)
    if im is None:
        im = {"id": max([i["id"] for i in doc["images"]], default=0) + 1, "file_name": file_name, "width": w,
              "height": h}  # fmt: skip
        doc["images"].append(im)
    elif (im["height"], im["width"]) != (h, w):
        raise LabelError(f"{file_name}: mask is {w}x{h}, the image was recorded as {im['width']}x{im['height']}")
    next_id = max([a["id"] for a in doc["annotations"]], default=0) + 1
    new = []
    for k, m in enumerate(masks):
        new.append({"id": next_id + k, "image_id": im["id"], "category_id": cat["id"], "segmentation": encode_mask(m),
                    "area": float(m.sum()), "bbox": _bbox(m), "iscrowd": 0})  # fmt: skip
    doc["annotations"] += new
    write_json_atomic(doc, path)
    return {"image_id": im["id"], "annotations": new}
