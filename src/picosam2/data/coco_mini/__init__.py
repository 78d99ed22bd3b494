"""coco-mini as a definition: which COCO 2017 images and annotations it holds, and how to rebuild it.

coco-mini is the small COCO 2017 subset the shipped weights were trained and measured on. This
package holds its definition, not its data: per split, the image ids with their COCO split and the
sha256 of the image file (``images_<split>.tsv``) and the annotation ids in file order
(``annotations_<split>.txt``). :func:`build` turns an official COCO 2017 download into the folder
the configs, scripts and docs expect under the data root::

    <out>/annotations/instances_train.json   <out>/images/train/*.jpg   (the train pool)
    <out>/annotations/instances_val.json     <out>/images/val/*.jpg     (dev-val)

Images, annotations and categories are copied as COCO has them (the image entries keep ``id``,
``file_name``, ``height``, ``width``, ``coco_url`` and ``license``); only the selection is ours.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError, UsageError

#: the coco-mini splits, in build order
SPLITS = ("train", "val")
#: the COCO 2017 splits an image can come from
COCO_SPLITS = ("train2017", "val2017")
#: the image fields coco-mini keeps (COCO's ``date_captured`` and ``flickr_url`` are dropped)
IMAGE_FIELDS = ("id", "file_name", "height", "width", "coco_url", "license")
INFO = {"description": "coco-mini: small COCO 2017 instance subset (train pool and dev val); see README.md"}

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SplitDefinition:
    """One coco-mini split: ``images`` = (image id, COCO split, sha256) in file order; ``annotations``
    = annotation ids in file order."""

    name: str
    images: tuple[tuple[int, str, str], ...]
    annotations: tuple[int, ...]


def _data_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


def definition(split: str) -> SplitDefinition:
    """The shipped definition of coco-mini split ``split`` ("train" or "val")."""
    if split not in SPLITS:
        raise UsageError(f"unknown coco-mini split {split!r} (known: {', '.join(SPLITS)})")
    images = []
    for line in _data_lines(_HERE / f"images_{split}.tsv"):
        image_id, coco_split, sha = line.split("\t")
        images.append((int(image_id), coco_split, sha))
    annotations = tuple(int(line) for line in _data_lines(_HERE / f"annotations_{split}.txt"))
    return SplitDefinition(split, tuple(images), annotations)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_coco(coco_dir: Path, coco_split: str) -> dict:
    path = coco_dir / "annotations" / f"instances_{coco_split}.json"
    if not path.is_file():
        raise DataError(
            f"{path} not found: --coco must be a COCO 2017 folder holding annotations/instances_{coco_split}.json"
        )
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is not a readable COCO json: {exc}") from exc


@dataclass
class BuildReport:
    """What :func:`build` did: images and annotations per split, and images whose bytes differ from
    the files coco-mini's figures were measured on (their sha256 in the definition)."""

    out: Path
    counts: dict
    mismatched: list


def build(
    coco_dir: str | os.PathLike,
    out: str | os.PathLike,
    link: bool = False,
    verify: bool = True,
    progress: bool | None = None,
) -> BuildReport:
    """Build coco-mini at ``out`` from the COCO 2017 folder ``coco_dir`` (``annotations/instances_
    {train,val}2017.json``, ``train2017/``, ``val2017/``). ``link``: hard-link the images instead of
    copying (falls back to a copy across file systems). ``verify``: compare each image's sha256 with
    the definition. ``out`` must not exist or be empty; the folder is built beside it and renamed
    into place, so an interrupted build leaves nothing at ``out``."""
    from tqdm import tqdm

    coco_dir, out = Path(coco_dir), Path(out)
    if not coco_dir.is_dir():
        raise DataError(f"--coco {coco_dir} is not a folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out} exists and is not an empty folder")
    defs = {split: definition(split) for split in SPLITS}
    needed = {cs for d in defs.values() for _, cs, _ in d.images}
    sources = {cs: _load_coco(coco_dir, cs) for cs in COCO_SPLITS if cs in needed}
    images_by_id = {cs: {im["id"]: im for im in src["images"]} for cs, src in sources.items()}
    anns_by_id = {a["id"]: a for src in sources.values() for a in src["annotations"]}
    first = sources.get("val2017") or next(iter(sources.values()))
    categories, licenses = first["categories"], first.get("licenses", [])

    if progress is None:
        progress = os.isatty(2)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    os.chmod(stage, 0o755)
    counts, mismatched = {}, []
    try:
        for split, d in defs.items():
            (stage / "images" / split).mkdir(parents=True)
            images = []
            for image_id, coco_split, sha in tqdm(d.images, desc=f"coco-mini {split}", disable=not progress):
                im = images_by_id[coco_split].get(image_id)
                if im is None:
                    raise DataError(
                        f"image {image_id} not in {coco_split}: is {coco_dir} an official COCO 2017 download?"
                    )
                src = coco_dir / coco_split / im["file_name"]
                if not src.is_file():
                    raise DataError(f"image file {src} not found")
                dst = stage / "images" / split / im["file_name"]
                if link:
                    try:
                        os.link(src, dst)
                    except OSError:
                        shutil.copyfile(src, dst)
                else:
                    shutil.copyfile(src, dst)
                if verify and _sha256(dst) != sha:
                    mismatched.append(f"{split}/{im['file_name']}")
                images.append({k: im[k] for k in IMAGE_FIELDS if k in im})
            annotations = []
            for ann_id in d.annotations:
                ann = anns_by_id.get(ann_id)
                if ann is None:
                    raise DataError(f"annotation {ann_id} not in the COCO 2017 json files under {coco_dir}")
                annotations.append(ann)
            doc = {
                "info": INFO,
                "licenses": licenses,
                "categories": categories,
                "images": images,
                "annotations": annotations,
            }
            (stage / "annotations").mkdir(exist_ok=True)
            (stage / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc))
            counts[split] = {"images": len(images), "annotations": len(annotations)}
        if out.exists():
            out.rmdir()
        os.rename(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return BuildReport(out=out, counts=counts, mismatched=mismatched)
