"""The demo's "Save as annotation": the masks on the page, appended to a COCO file.

``picosam2 demo --annotations OUT.json`` names the file (the operator does, on the command line;
the page never names a path). ``POST /api/annotate`` takes the photo (``image``, or ``sample``)
and the objects to save, one annotation each, either

* ``masks``: JSON ``[{"width": W, "height": H, "runs": [n0, n1, ...]}, ...]``, the masks the page
  computed itself ("Run in this browser"), each as run lengths of the row-major mask, alternating
  background and object and starting with background (the runs must cover exactly W x H, the
  photo's size); or
* ``points`` / ``boxes`` / ``pick`` (and ``multimask``), as sent to ``/api/segment``: the server
  cuts the same windows again and keeps each prompt's mask apart (the page shows their union);

and ``category`` (default ``object``). The photo is stored once beside the COCO file as
``images/<name>`` (the name of the upload, made safe; an EXIF-rotated photo is stored upright as
PNG, since the masks are upright), so ``picosam2 finetune --annotations OUT.json --images
images`` reads the export as it is. A mask already saved for that photo and category (mask IoU
over :data:`picosam2.data.labels.DUPLICATE_IOU`) is refused, as ``finetune``'s label check would.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from ..data.labels import DUPLICATE_IOU, LabelError, add_annotation, decode_mask, load_coco
from ..errors import UsageError
from .app import DemoError, _flag, _read_form, _upload_bytes, log

#: folder beside the COCO file where the photos go (``file_name`` is ``images/<name>``)
IMAGES_DIR = "images"
#: the longest category name accepted from the page
MAX_CATEGORY_CHARS = 64
#: the longest photo name kept (the extension comes from the photo's format)
MAX_NAME_CHARS = 100
#: the most masks one save may send
MAX_OBJECTS = 64
#: the saved masks of one request, in bytes (objects x photo pixels)
MAX_MASK_BYTES = 512 * 1024 * 1024
#: file extension per format Pillow reports for the photos the demo accepts
FORMAT_SUFFIX = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp",
                 "TIFF": ".tif"}  # fmt: skip
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: the EXIF orientation tag
ORIENTATION = 0x0112


def safe_stem(name: str) -> str:
    """A photo's name without folders and extension, in letters, digits, ``.``, ``_`` and ``-``."""
    base = re.split(r"[/\\]", str(name or ""))[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.strip(".") else base
    stem = _UNSAFE.sub("_", stem).strip("._-")[:MAX_NAME_CHARS]
    return stem or "photo"


class AnnotationFile:
    """The COCO file the demo appends to, and its ``images/`` folder. Checked when the demo starts
    (a folder, a file that is not COCO, a name that is not ``.json``: one line, exit status 2)."""

    def __init__(self, path):
        path = Path(path)
        if path.suffix.lower() != ".json":
            raise UsageError(f"--annotations must name a .json file (COCO), got {path}")
        if path.is_dir():
            raise UsageError(f"--annotations {path} is a folder; name a .json file")
        if path.exists():
            load_coco(path)  # a file that is not COCO instances is refused now, not at the first save
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--annotations {path}: cannot create its folder ({exc.strerror or exc})") from exc
        self.path = path
        self.images = path.parent / IMAGES_DIR
        self._lock = threading.Lock()

    def save(self, data: bytes, image: np.ndarray, name: str, masks: list, category: str) -> dict:
        """Store the photo (``data``, decoded as ``image``) once and append ``masks`` (bool, the
        photo's size), one annotation each. Returns what the page reports."""
        height, width = image.shape[:2]
        for k, m in enumerate(masks):
            if m.shape != (height, width):
                raise DemoError(400, f"mask {k} is {m.shape[1]}x{m.shape[0]}, the photo is {width}x{height}")
            if not m.any():
                raise DemoError(400, f"object {k + 1}'s mask is empty: nothing to save (undo that prompt first)")
        with self._lock:
            try:
                file_name = self._store_photo(data, name)
                self._refuse_duplicates(file_name, masks, category)
                added = add_annotation(self.path, file_name, masks, category)
                total = len(load_coco(self.path)["annotations"])
            except (LabelError, OSError) as exc:  # the file was changed or removed under the demo
                raise DemoError(409, f"cannot save to {self.path.name}: {exc}") from exc
        ids = [a["id"] for a in added["annotations"]]
        log.info("saved %d annotation(s) of %s to %s", len(ids), file_name, self.path)
        return {"file": self.path.name, "file_name": file_name, "image_id": added["image_id"],
                "annotation_ids": ids, "category": category, "annotations": total}  # fmt: skip

    def _store_photo(self, data: bytes, name: str) -> str:
        """``images/<name>`` holding ``data`` (an existing file with the same bytes is reused; another
        photo of the same name gets a hash suffix). EXIF-rotated photos are stored upright as PNG."""
        from PIL import Image

        from ..image_io import load_image
        from ..io_utils import write_atomic

        with Image.open(io.BytesIO(data)) as img:
            suffix = FORMAT_SUFFIX.get(img.format, ".png")
            rotated = img.getexif().get(ORIENTATION, 1) not in (0, 1)
            if rotated:  # the masks are upright: so is the stored photo
                buf = io.BytesIO()
                Image.fromarray(load_image(img, max_pixels=None)).save(buf, format="PNG")
                data, suffix = buf.getvalue(), ".png"
        stem = safe_stem(name)
        digest = hashlib.sha256(data).hexdigest()
        self.images.mkdir(parents=True, exist_ok=True)
        for candidate in (stem, f"{stem}-{digest[:8]}", f"{stem}-{digest[:16]}"):
            target = self.images / f"{candidate}{suffix}"
            if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == digest:
                return f"{IMAGES_DIR}/{target.name}"
            if not target.exists():
                write_atomic(target, lambda tmp: Path(tmp).write_bytes(data), suffix=suffix)
                return f"{IMAGES_DIR}/{target.name}"
        raise DemoError(409, f"{self.images} holds other photos named {stem}{suffix}: rename the photo")

    def _refuse_duplicates(self, file_name: str, masks: list, category: str) -> None:
        saved = []
        if self.path.exists():
            doc = load_coco(self.path)
            image = next((i for i in doc["images"] if i.get("file_name") == file_name), None)
            cats = {c["id"] for c in doc["categories"] if c.get("name") == category}
            if image is not None and cats:
                h, w = int(image["height"]), int(image["width"])
                for a in doc["annotations"]:
                    if a.get("image_id") == image["id"] and a.get("category_id") in cats:
                        saved.append((f"annotation {a['id']}", decode_mask(a["segmentation"], h, w)))
        for k, m in enumerate(masks):
            for what, other in saved:
                if other.shape == m.shape and _iou(m, other) > DUPLICATE_IOU:
                    raise DemoError(409, f"object {k + 1} is already saved for {file_name} as {what} ({category})")
            saved.append((f"object {k + 1} of this save", m))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def masks_from_runs(text, width: int, height: int) -> list[np.ndarray]:
    """The ``masks`` field (JSON, see the module's docstring) as bool (height, width) arrays;
    DemoError (400) for anything else."""
    if not isinstance(text, str):
        raise DemoError(400, "masks must be a form field holding JSON, not a file")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise DemoError(400, f"masks is not valid JSON: {exc}") from None
    if not isinstance(value, list) or not value:
        raise DemoError(400, 'masks must be a JSON list like [{"width": W, "height": H, "runs": [...]}]')
    if len(value) > MAX_OBJECTS:
        raise DemoError(400, f"at most {MAX_OBJECTS} masks per save")
    if len(value) * width * height > MAX_MASK_BYTES:
        raise DemoError(413, f"{len(value)} masks of a {width}x{height} photo are too many to save at once")
    out = []
    for k, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("runs"), list):
            raise DemoError(400, f'mask {k} must be {{"width": W, "height": H, "runs": [...]}}')
        if (item.get("width"), item.get("height")) != (width, height):
            raise DemoError(400, f"mask {k} is {item.get('width')}x{item.get('height')}, the photo is {width}x{height}")
        runs = item["runs"]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in runs):
            raise DemoError(400, f"mask {k}: runs must be whole numbers >= 0")
        if sum(runs) != width * height:
            raise DemoError(400, f"mask {k}: runs cover {sum(runs)} pixels, the photo has {width * height}")
        values = np.arange(len(runs)) % 2 == 1  # background first, then object, alternating
        out.append(np.repeat(values, runs).reshape(height, width))
    return out


def _category(value) -> str:
    if value is None:
        return "object"
    if not isinstance(value, str):
        raise DemoError(400, "category must be a form field, not a file")
    value = value.strip()
    if not value or len(value) > MAX_CATEGORY_CHARS or not value.isprintable():
        raise DemoError(400, f"category must be 1 to {MAX_CATEGORY_CHARS} printable characters")
    return value


def _photo_name(form) -> str:
    upload = form.get("image")
    if upload is not None and getattr(upload, "filename", None):
        return upload.filename
    sample = form.get("sample")
    return sample if isinstance(sample, str) else "photo"


def add_annotate_route(app: FastAPI, segmenter, sink: AnnotationFile | None, max_upload_bytes: int) -> None:
    """``POST /api/annotate`` (404 with a one-line reason when the demo has no ``--annotations``)."""

    def save(data: bytes, name: str, form) -> dict:
        image = segmenter.image(data)
        height, width = image.shape[:2]
        category = _category(form.get("category"))
        if form.get("masks") is not None:
            masks = masks_from_runs(form.get("masks"), width, height)
        elif form.get("points") is not None or form.get("boxes") is not None:
            multimask = _flag(form.get("multimask"), "multimask")
            parts, _, _ = segmenter.objects(image, form.get("points"), form.get("boxes"), multimask, form.get("pick"))
            if len(parts) * width * height > MAX_MASK_BYTES:
                raise DemoError(413, f"{len(parts)} masks of a {width}x{height} photo are too many to save at once")
            masks = []
            for part in parts:
                m = np.zeros((height, width), bool)
                if part is not None:
                    m[part[0]] = part[1]
                masks.append(m)
        else:
            raise DemoError(400, "nothing to save: send masks, or the points/boxes the masks came from")
        return sink.save(data, image, name, masks, category)

    @app.post("/api/annotate")
    async def annotate(request: Request):
        if sink is None:
            raise DemoError(404, "saving annotations is off: start the demo with --annotations OUT.json")
        try:
            form = await _read_form(request, max_upload_bytes)
        except ClientDisconnect:
            log.warning("client %s hung up during its upload", request.client)
            return Response(status_code=400)  # nobody is listening
        try:
            data = await _upload_bytes(form, max_upload_bytes)
            answer = await run_in_threadpool(save, data, _photo_name(form), form)
        finally:
            await form.close()
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})
