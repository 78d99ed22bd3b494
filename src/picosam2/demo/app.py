"""The demo's web app: a page, a segmentation API and the model for in-browser inference.

Routes (all JSON errors are ``{"error": "one line"}`` with a 4xx/5xx status):

* ``GET /``: the page (``static/index.html``); ``GET /static/...``: its CSS/JS and the vendored
  onnxruntime-web files (``static/vendor/``, filled at build time by
  ``scripts/vendor_onnxruntime_web.sh``).
* ``GET /api/info``: what the page needs to know: whether the weights are trained, the window
  rules (so in-browser inference cuts the same windows), the upload cap, the browser model.
* ``GET /api/samples`` and ``GET /samples/<name>.jpg``: the bundled photos, from a fixed list.
* ``POST /api/segment``: multipart form with ``image`` (the photo file; or ``sample`` = a bundled
  photo's name) and ``points`` (JSON ``[[x, y], ...]``) and/or ``boxes`` (JSON
  ``[[x0, y0, x1, y1], ...]``), in pixels of the photo as displayed (EXIF orientation applied).
  Answers the full-size PNG mask (0/255, the union of all prompts' masks) with the timings in
  ``X-Latency-Ms`` (whole request on the server) and ``X-Inference-Ms`` (the network alone) and
  the chosen window sides in ``X-Window-Sides``. With ``format=json`` (or ``multimask=true``) the
  answer is JSON: the mask as base64 PNG (``mask_png``), the timings and, per prompt, the chosen
  window, its side, the reason and the score (:func:`describe_prediction`); ``multimask=true``
  adds every candidate window with its score and its 96 x 96 mask (bit-packed, base64), and
  ``pick`` (JSON, one entry per point: ``null`` or the index of the candidate to use instead of
  the best-scored one) chooses another candidate. Clicks follow the predictor's scale policy (by
  default the weights' recommendation: several window sizes, the best-scored one kept).
* ``POST /api/annotate``: "Save as annotation", the masks on the page appended to the COCO file
  named by ``picosam2 demo --annotations OUT.json`` (:mod:`picosam2.demo.annotate`).
* ``GET /model/picosam2-int8.onnx`` (or ``-fp32``): the model for onnxruntime-web, exported on
  the first request and cached on disk (atomically, keyed by a hash of the weights).

No route turns request text into a file-system path: samples and models come from fixed tables,
static files from Starlette's ``StaticFiles`` (which refuses paths leaving its folder).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import io
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ..errors import ExportError, UsageError
from ..image_io import MAX_PIXELS, ImageError, load_image
from ..predictor import MAX_WINDOWS
from ..prompts import AUTO_MAX_SCALES, AUTO_SCALE_STEP, MODEL_SIZE, PAD_RGB, PromptError, window_mask
from ..selection import BORDER_RULE_MAX, choose_candidate

STATIC_DIR = Path(__file__).resolve().parent / "static"
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
VENDOR_DIR = STATIC_DIR / "vendor" / "onnxruntime-web"
#: The bundled photos the page offers; served as ``/samples/<name>.jpg``. A fixed table: the
#: request never names a file.
SAMPLES = ("dog", "truck", "groceries")
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: Seconds to wait for each piece of an upload, and for the whole upload.
BODY_CHUNK_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 60.0
#: Decoded photos kept for repeated clicks, in bytes (a 50 MP photo is 150 MB).
IMAGE_CACHE_BYTES = 256 * 1024 * 1024
log = logging.getLogger("picosam2.demo")
#: Formats accepted for uploads (Pillow would open more, some through external programs).
IMAGE_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
BROWSER_MODELS = {"int8": "picosam2-int8.onnx", "fp32": "picosam2-fp32.onnx"}
#: onnxruntime-web bundles with GPU execution providers, best first: ort.all (WebNN, WebGPU,
#: wasm) and ort.webgpu (WebGPU, wasm); each needs the JSEP wasm runtime beside it.
GPU_BUNDLES = ("ort.all.min.mjs", "ort.webgpu.min.mjs")
GPU_RUNTIME = ("ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm")


def track_policy(policy=None) -> dict:
    """``policy`` (default: the default :class:`picosam2.track.TrackPolicy`) as a dict, for the
    page's video mode."""
    from dataclasses import asdict

    from ..track import TrackPolicy

    return asdict(policy if policy is not None else TrackPolicy())


def browser_point_scales(scales):
    """The click sizes the page tries by default in the browser: ``"auto:4"`` (at most 4 of the
    auto sizes, about half the windows) for ``"auto"``, else the server's own."""
    return "auto:4" if scales == "auto" else scales


def browser_providers() -> list[str]:
    """The onnxruntime-web execution providers the vendored files offer ("wasm" always)."""
    jsep = all((VENDOR_DIR / f).is_file() for f in GPU_RUNTIME)
    out = []
    if jsep and (VENDOR_DIR / GPU_BUNDLES[0]).is_file():
        out.append("webnn")
    if jsep and any((VENDOR_DIR / b).is_file() for b in GPU_BUNDLES):
        out.append("webgpu")
    return out + ["wasm"]


#: Headers on every response. COOP/COEP make the page cross-origin isolated, so
#: onnxruntime-web may use wasm threads; everything the page loads is same-origin.
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-embedder-policy", b"require-corp"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; "
        b"img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self' blob: data:; style-src 'self'; "
        b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
]


class DemoError(Exception):
    """A request the app refuses: answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class _BodyTooLarge(Exception):
    pass


class _BodyTimeout(Exception):
    pass


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"Cache-Control": "no-store"})


class _HostCheck:
    """Pure ASGI middleware refusing requests whose ``Host`` header is not allowed, with a JSON
    400 (Starlette's ``TrustedHostMiddleware`` answers plain text)."""

    def __init__(self, app, allowed_hosts: list[str]):
        self.app = app
        self.any = "*" in allowed_hosts
        self.allowed = {h.lower() for h in allowed_hosts}

    def _ok(self, scope) -> bool:
        if self.any:
            return True
        host = ""
        for key, value in scope.get("headers", []):
            if key == b"host":
                host = value.decode("latin-1").strip().lower()
                break
        if host.startswith("["):
            name = host[: host.find("]") + 1] if "]" in host else host
        else:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return name in self.allowed or name.strip("[]") in self.allowed

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not self._ok(scope):
            return await _error(400, "invalid Host header")(scope, receive, send)
        return await self.app(scope, receive, send)


class _SecurityHeaders:
    """Pure ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        return await self.app(scope, receive, send_with_headers)


def _limited_receive(receive, limit: int, chunk_timeout: float = BODY_CHUNK_TIMEOUT_S, timeout: float = BODY_TIMEOUT_S):
    """Wrap an ASGI ``receive`` so that a body longer than ``limit`` bytes raises
    :class:`_BodyTooLarge` as soon as the excess arrives (the rest is never read), and a body
    that stalls (no data for ``chunk_timeout`` s, or not complete in ``timeout`` s) raises
    :class:`_BodyTimeout`."""
    seen = 0
    deadline = time.monotonic() + timeout

    async def wrapped():
        nonlocal seen
        wait = min(chunk_timeout, deadline - time.monotonic())
        try:
            message = await asyncio.wait_for(receive(), timeout=max(wait, 0.001))
        except asyncio.TimeoutError:
            raise _BodyTimeout() from None
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge()
        return message

    return wrapped


def _parse_prompt_list(text, width: int, name: str) -> list[list[float]]:
    """``text`` (a form field, JSON) -> list of ``width``-number lists; DemoError otherwise."""
    if text is None:
        return []
    if not isinstance(text, str):
        raise DemoError(400, f"{name} must be a form field holding JSON, not a file")
    text = text.strip()
    if not text:
        return []

    def no_constants(value):
        raise ValueError(f"{value} is not a number")

    try:
        value = json.loads(text, parse_constant=no_constants)
    except (ValueError, RecursionError) as exc:
        raise DemoError(400, f"{name} is not valid JSON: {exc}") from None
    shape = "[[x, y], ...]" if width == 2 else "[[x0, y0, x1, y1], ...]"
    if not isinstance(value, list):
        raise DemoError(422, f"{name} must be a JSON list like {shape}")
    if len(value) == width and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        value = [value]  # a single [x, y] is accepted too
    out = []
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != width
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in item)
        ):
            raise DemoError(422, f"{name} must be a JSON list like {shape}, got item {json.dumps(item)[:60]}")
        if not all(math.isfinite(float(v)) for v in item):
            raise DemoError(422, f"{name} has a non-finite coordinate")
        out.append([float(v) for v in item])
    return out


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Upload bytes -> (H, W, 3) uint8, EXIF orientation applied. DemoError for anything that is
    not a readable image of an accepted format, or one with more than ``max_pixels`` pixels."""
    if not data:
        raise DemoError(400, "the image file is empty")
    Image.init()
    formats = [f for f in IMAGE_FORMATS if f in Image.OPEN]
    try:
        with Image.open(io.BytesIO(data), formats=formats) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise DemoError(413, f"image is {width}x{height}: more than {max_pixels / 1e6:g} megapixels")
            img.load()
            return load_image(img)
    except DemoError:
        raise
    except Image.DecompressionBombError:
        raise DemoError(413, "image has too many pixels") from None
    except UnidentifiedImageError:
        raise DemoError(400, f"the upload is not an image this app reads ({', '.join(IMAGE_FORMATS)})") from None
    except (OSError, SyntaxError, ValueError, ImageError, EOFError) as exc:
        raise DemoError(400, f"cannot decode the image: {exc}") from None


def encode_mask_png(mask: np.ndarray) -> bytes:
    """Boolean (H, W) -> 8-bit grayscale PNG with values 0/255."""
    buf = io.BytesIO()
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _state_hash(model) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for key, tensor in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "picosam2" / "demo"


def int8_exporter():
    """The INT8 ONNX exporter, or None where it is not available."""
    try:
        from ..export.onnx_int8 import export_onnx_int8
    except ImportError:
        return None
    return export_onnx_int8


class BrowserModel:
    """Exports the predictor's network to ONNX once per (weights, precision) and caches the file.

    The file is written in a private temporary folder, then renamed into the cache folder, so a
    reader never sees half a model; a lock keeps concurrent first requests from exporting twice.
    """

    def __init__(self, model, cache_dir: str | os.PathLike | None = None, prefer: str = "int8"):
        self.model = model
        self.cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
        self.prefer = prefer
        self._lock = threading.Lock()
        self._hash: str | None = None
        self.errors: dict[str, str] = {}

    @property
    def available(self) -> bool:
        return self.model is not None and (VENDOR_DIR / "ort.wasm.min.mjs").is_file()

    def precisions(self) -> list[str]:
        if self.model is None:
            return []
        out = ["int8"] if int8_exporter() is not None and "int8" not in self.errors else []
        out.append("fp32")
        if self.prefer == "fp32":
            out = ["fp32"]
        return out

    def path(self, precision: str) -> Path:
        """The cached ONNX file, exported now if missing. DemoError when it cannot be made."""
        if self.model is None:
            raise DemoError(404, "this app has no PyTorch model to export for the browser")
        if precision not in self.precisions():
            raise DemoError(404, f"no {precision} browser model here (available: {', '.join(self.precisions())})")
        with self._lock:
            if self._hash is None:
                self._hash = _state_hash(self.model)
            final = self.cache_dir / f"picosam2-{self._hash}-{precision}.onnx"
            if final.is_file():
                return final
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp_dir = Path(tempfile.mkdtemp(prefix=".export-", dir=self.cache_dir))
            try:
                target = tmp_dir / BROWSER_MODELS[precision]
                model = copy.deepcopy(self.model).cpu().eval()
                if precision == "int8":
                    int8_exporter()(model, target)
                else:
                    from ..export.onnx_fp32 import export_onnx

                    export_onnx(model, target)
                if not target.is_file():
                    raise ExportError("the exporter wrote no file")
                os.replace(target, final)
            except DemoError:
                raise
            except Exception as exc:  # noqa: BLE001 - any exporter failure is reported to the page
                self.errors[precision] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                log.exception("%s ONNX export for the page failed", precision)  # a bug or a broken install
                raise DemoError(500, f"{precision} ONNX export failed: {self.errors[precision]}") from exc
            finally:
                shutil.rmtree(tmp_dir, ignore_errors=True)
            return final


class Segmenter:
    """One predictor shared by all requests: decoding runs in parallel, the network under a lock.

    Decoded uploads are kept in a small LRU cache keyed by their SHA-256, so prompting the same
    photo again (every click on the page re-sends it) skips the decode.
    """

    def __init__(
        self,
        predictor,
        max_pixels: int = MAX_PIXELS,
        cache_images: int = 4,
        cache_bytes: int = IMAGE_CACHE_BYTES,
        max_windows: int = MAX_WINDOWS,
    ):
        self.predictor = predictor
        self.max_pixels = max_pixels
        #: most windows one request may run (the CLI's ``--max-windows`` default): a click under
        #: ``auto`` runs up to 8, a box one; checked before the request waits for the network
        self.max_windows = int(max_windows)
        self.cache_images = cache_images
        self.cache_bytes = cache_bytes
        self._lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._multi = copy.copy(predictor)  # the same network, answering every candidate
        self._multi.multimask = True

    def image(self, data: bytes) -> np.ndarray:
        key = hashlib.sha256(data).hexdigest()
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        arr = decode_image(data, self.max_pixels)
        arr.setflags(write=False)
        with self._cache_lock:
            self._cache[key] = arr
            while len(self._cache) > self.cache_images or (
                len(self._cache) > 1 and sum(a.nbytes for a in self._cache.values()) > self.cache_bytes
            ):
                self._cache.popitem(last=False)
        return arr

    def objects(self, image: np.ndarray, points_text, boxes_text, multimask: bool = False, pick_text=None):
        """Per prompt, the chosen mask as the part of the photo it covers (``(slices, bool
        array)`` of :func:`picosam2.prompts.window_mask`, ``None`` when empty), what was chosen
        (:func:`describe_prediction`) and the network's milliseconds. :meth:`segment` answers their
        union; saving annotations keeps them apart (one object each)."""
        height, width = image.shape[:2]
        points, boxes = _checked_prompts(points_text, boxes_text, width, height, self.max_windows)
        picks = _parse_picks(pick_text, len(points))
        multimask = multimask or any(p is not None for p in picks)
        predictor = self._multi if multimask else self.predictor
        self.check_windows(predictor, (width, height), len(points), len(boxes))
        try:
            with self._lock:
                t0 = time.perf_counter()
                result = predictor.predict(image, points=points or None, boxes=boxes or None)
                inference_ms = (time.perf_counter() - t0) * 1000
        except PromptError as exc:
            raise DemoError(422, str(exc)) from None
        chosen, prompts = describe_prediction(result, len(points) + len(boxes), multimask, picks)
        parts = [window_mask(result.logits[k], result.windows[k], result.image_size, result.threshold) for k in chosen]
        return parts, prompts, inference_ms

    def check_windows(self, predictor, image_size, n_points: int, n_boxes: int) -> int:
        """The windows a request costs on a photo of ``image_size`` (width, height); a 422
        :class:`DemoError` saying the cost and what fits when it is over :attr:`max_windows`."""
        cost = predictor.window_cost(image_size, n_points, n_boxes)
        if cost > self.max_windows:
            per_click = predictor.clicks.count(image_size)
            raise DemoError(
                422,
                f"this request costs {cost:,} windows ({n_points:,} clicks x {per_click} window sizes + "
                f"{n_boxes:,} boxes), over the cap of {self.max_windows:,} windows per request; send fewer "
                f"prompts (on this photo a click costs {per_click} windows, a box 1)",
            )
        return cost

    def segment(
        self, data: bytes, points_text, boxes_text, multimask: bool = False, pick_text=None
    ) -> tuple[bytes, dict]:
        """The PNG mask (union of each prompt's chosen mask) and what the answer reports: sizes,
        timings and, per prompt, the chosen window, why it was chosen and its score (with
        ``multimask``: every candidate window, its score and its mask too). ``pick_text``: JSON,
        per point ``null`` or the index of the candidate to use (implies ``multimask``)."""
        image = self.image(data)
        height, width = image.shape[:2]
        parts, prompts, inference_ms = self.objects(image, points_text, boxes_text, multimask, pick_text)
        mask = np.zeros((height, width), bool)
        for part in parts:
            if part is not None:
                mask[part[0]] |= part[1]
        return encode_mask_png(mask), {
            "width": width,
            "height": height,
            "prompts": prompts,
            "mask_pixels": int(mask.sum()),
            "inference_ms": inference_ms,
        }


def _checked_prompts(points_text, boxes_text, width: int, height: int, max_windows: int = MAX_WINDOWS):
    """The request's points and boxes, parsed and checked against the photo; DemoError otherwise
    (more prompts than ``max_windows`` are refused at once: each costs at least one window)."""
    points = _parse_prompt_list(points_text, 2, "points")
    boxes = _parse_prompt_list(boxes_text, 4, "boxes")
    if not points and not boxes:
        raise DemoError(422, "give at least one prompt: points=[[x, y]] and/or boxes=[[x0, y0, x1, y1]]")
    if len(points) + len(boxes) > max_windows:
        n = len(points) + len(boxes)
        raise DemoError(422, f"{n:,} prompts cost at least {n:,} windows, over the cap of {max_windows:,} per request")
    for x, y in points:
        if not (0 <= x < width and 0 <= y < height):
            raise DemoError(422, f"point ({x:g}, {y:g}) is outside the {width}x{height} image")
    for x0, y0, x1, y1 in boxes:
        if not (x0 < x1 and y0 < y1):
            raise DemoError(422, f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is empty: need x0 < x1 and y0 < y1")
        if not (-width <= x0 and -height <= y0 and x1 <= 2 * width and y1 <= 2 * height and x0 < width and y0 < height):
            raise DemoError(422, f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is not on the {width}x{height} image")
        if x1 <= 0 or y1 <= 0:
            raise DemoError(422, f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is not on the {width}x{height} image")
    return points, boxes


def _parse_picks(text, n_points: int) -> list:
    """The ``pick`` field: per point ``None`` (the best-scored candidate) or a candidate index."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return [None] * n_points
    if not isinstance(text, str):
        raise DemoError(400, "pick must be a form field holding JSON, not a file")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DemoError(400, f"pick is not valid JSON: {exc}") from None
    if (
        not isinstance(value, list)
        or len(value) != n_points
        or not all(v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0) for v in value)
    ):
        raise DemoError(422, f"pick must be a JSON list with one entry per point ({n_points}): null or an index")
    return value


def _packed_mask(logits: np.ndarray, threshold: float) -> str:
    """A window's mask (logits > threshold, row-major, most significant bit first) as base64."""
    return base64.b64encode(np.packbits(np.asarray(logits) > threshold).tobytes()).decode("ascii")


def _window_info(result, k: int, reason: str) -> dict:
    win = result.windows[k]
    score = None if result.scores is None else round(float(result.scores[k]), 4)
    return {
        "kind": result.kinds[k],
        "window": list(win.as_tuple()),
        "side": int(win.width),
        "reason": reason,
        "score": score,
    }


def describe_prediction(
    result, n_prompts: int, multimask: bool = False, picks: list | None = None
) -> tuple[list[int], list[dict]]:
    """Which of ``result``'s masks make the answer, and per prompt what was chosen.

    Each prompt's entry: ``kind``, ``window`` (x0, y0, x1, y1 in photo pixels), ``side`` (the
    window's side in pixels), ``reason`` (``"score"``: highest predicted IoU among the window
    sizes; ``"border"``: no score, the smallest window whose mask ends inside it; ``"fixed"``:
    one window; ``"box"``) and ``score`` (predicted IoU, ``null`` without a quality head). For a
    ``multimask`` prediction (every candidate of each prompt) the choice is made here, by the same
    rule as :class:`~picosam2.Predictor` unless ``picks`` (per point ``None`` or a candidate
    index) names another (reason ``"picked"``), and ``candidates`` lists every window with its
    score and ``mask`` (the window's mask, :func:`_packed_mask`)."""
    if not multimask:
        return list(range(len(result))), [_window_info(result, k, result.reasons[k]) for k in range(len(result))]
    index = np.arange(len(result)) if result.prompt_index is None else np.asarray(result.prompt_index)
    chosen, prompts = [], []
    for p in range(n_prompts):
        idx = np.nonzero(index == p)[0]
        if result.kinds[idx[0]] == "box" or len(idx) == 1:
            best, why = 0, "box" if result.kinds[idx[0]] == "box" else "fixed"
        else:
            best, why = choose_candidate(result.logits[idx], None if result.scores is None else result.scores[idx])
        pick = picks[p] if picks is not None and p < len(picks) else None
        if pick is not None:
            if pick >= len(idx):
                raise DemoError(422, f"pick {pick} for point {p}: it has {len(idx)} candidate(s)")
            best, why = pick, "picked"
        chosen.append(int(idx[best]))
        entry = _window_info(result, int(idx[best]), why)
        entry["candidates"] = []
        for k in idx:
            info = _window_info(result, int(k), "candidate")
            info["mask"] = _packed_mask(result.logits[k], result.threshold)
            entry["candidates"].append(info)
        prompts.append(entry)
    return chosen, prompts


def _predictor_torch_model(predictor):
    backend = getattr(predictor, "backend", None)
    return getattr(backend, "model", None) if getattr(backend, "name", None) == "torch" else None


def create_app(
    predictor=None,
    weights=None,
    trained: bool | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
    model_cache_dir: str | os.PathLike | None = None,
    browser_model: str = "int8",
    allowed_hosts: list[str] | None = None,
    track_policy=None,
    annotations: str | os.PathLike | None = None,
) -> FastAPI:
    """The demo app.

    ``predictor``: a :class:`picosam2.Predictor` (one instance serves every request); without
    it, one is loaded from ``weights`` (``None`` = the shipped default). ``trained``: whether the
    weights were trained (``False`` shows a warning on the page); read from the weights'
    metadata when ``predictor`` is built here, unknown (no warning) otherwise.
    ``browser_model``: ``"int8"`` (the default; fp32 where the INT8 exporter is missing) or
    ``"fp32"``: the precision offered to onnxruntime-web. ``allowed_hosts``: accepted ``Host``
    headers (default: loopback names only, which blocks DNS-rebinding pages; ``["*"]`` for any).
    ``track_policy``: the :class:`picosam2.track.TrackPolicy` the page's video mode follows
    objects with (default: the default policy). ``annotations``: the COCO file the page's "Save
    as annotation" appends to (:mod:`picosam2.demo.annotate`; ``None``: the button is hidden).
    """
    if browser_model not in BROWSER_MODELS:
        raise UsageError(f"browser_model must be one of {', '.join(BROWSER_MODELS)}, got {browser_model!r}")
    from .annotate import AnnotationFile, add_annotate_route

    sink = None if annotations is None else AnnotationFile(annotations)  # a bad path fails before the model loads
    if predictor is None:
        predictor, trained = _load_predictor(weights, trained)
    segmenter = Segmenter(predictor, max_pixels=max_pixels)
    exporter = BrowserModel(_predictor_torch_model(predictor), model_cache_dir, prefer=browser_model)

    app = FastAPI(title="picosam2 demo", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.segmenter = segmenter
    app.state.trained = trained
    app.state.browser_model = exporter
    app.state.annotations = sink
    app.add_middleware(
        _HostCheck, allowed_hosts=list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS)
    )
    app.add_middleware(_SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_error_handlers(app)
    _add_page_routes(app, predictor, exporter, weights, trained, max_upload_bytes, track_policy)
    _add_segment_route(app, segmenter, max_upload_bytes)
    add_annotate_route(app, segmenter, sink, max_upload_bytes)
    return app


def _load_predictor(weights, trained):
    from ..models import is_trained
    from ..predictor import Predictor

    predictor = Predictor.from_pretrained(weights, warn_untrained=False)
    if trained is None:
        trained = is_trained(predictor.backend.metadata.get("weights", {}))
    return predictor, trained


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DemoError)
    async def _demo_error(request, exc: DemoError):
        return _error(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(MemoryError)
    async def _memory_error(request, exc: MemoryError):
        log.warning("out of memory serving %s", request.url.path)
        return _error(503, "the server ran out of memory for this request; try a smaller photo")


def _add_page_routes(
    app: FastAPI, predictor, exporter: BrowserModel, weights, trained, max_upload_bytes: int, follow_policy=None
) -> None:
    """The page, its info, the bundled photos and the browser model."""

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/info")
    async def info():
        config = predictor.config
        precisions = exporter.precisions()
        return {
            "trained": trained,
            "weights": None if weights is None else Path(str(weights)).name,
            "input_size": config.input_size,
            "mean": list(config.mean),
            "std": list(config.std),
            "pad_rgb": list(PAD_RGB),
            # large windows are cut from a box-reduced image (prompts.crop_images), or null: exactly
            "reducing_gap": predictor.reducing_gap,
            "window_size": predictor.window_size,
            "point_mode": predictor.point_mode,
            # scale-aware clicks: "auto", a list of window sides, or null (one window_size window)
            "point_scales": predictor.point_scales,
            "auto_scales": {"min_size": MODEL_SIZE, "step": AUTO_SCALE_STEP, "max_count": AUTO_MAX_SCALES},
            "border_rule_max": BORDER_RULE_MAX,
            # the weights' score calibration (selection.ScoreCalibration.to_dict), or null
            "score_calibration": None if predictor.score_calibration is None else predictor.score_calibration.to_dict(),
            "box_padding": predictor.box_padding,
            # the video mode's window policy (picosam2.track.TrackPolicy), ported in static/track.js
            "track_policy": track_policy(follow_policy),
            "threshold": predictor.threshold,
            "max_upload_bytes": max_upload_bytes,
            # most windows one request may run (a click costs one per window size, a box one)
            "max_windows": app.state.segmenter.max_windows,
            # "Save as annotation": the COCO file's name (chosen with --annotations), or null: off
            "annotations": None if app.state.annotations is None else app.state.annotations.path.name,
            "browser": {
                "available": exporter.available,
                "precision": precisions[0] if precisions else None,
                "models": {p: f"/model/{BROWSER_MODELS[p]}" for p in precisions},
                "runtime": "/static/vendor/onnxruntime-web/",
                # the window sizes a click tries in the page by default: WebAssembly runs the
                # network about 4x slower than the server, so "auto" becomes "auto:4" there
                "point_scales": browser_point_scales(predictor.point_scales),
                # execution providers the vendored build offers (the page tries WebNN / WebGPU
                # first where the browser has them) and the bundles that carry them
                "providers": browser_providers(),
                "bundles": [b for b in GPU_BUNDLES if (VENDOR_DIR / b).is_file()],
            },
        }

    @app.get("/api/samples")
    async def samples():
        return [{"name": n, "url": f"/samples/{n}.jpg"} for n in SAMPLES if (SAMPLES_DIR / f"{n}.jpg").is_file()]

    @app.get("/samples/{name}")
    async def sample(name: str):
        path = SAMPLE_FILES.get(name)
        if path is None or not path.is_file():
            raise DemoError(404, "no such sample")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    model_names = {v: k for k, v in BROWSER_MODELS.items()}

    @app.get("/model/{name}")
    def model_file(name: str):
        precision = model_names.get(name)
        if precision is None:
            raise DemoError(404, "no such model")
        path = exporter.path(precision)
        return FileResponse(
            path,
            media_type="application/octet-stream",
            headers={"X-Model-Precision": precision, "Cache-Control": "no-cache"},
        )


SAMPLE_FILES = {f"{n}.jpg": SAMPLES_DIR / f"{n}.jpg" for n in SAMPLES}


async def _read_form(request: Request, max_upload_bytes: int):
    """The request's form, read with the size cap and the upload timeouts; DemoError otherwise."""
    too_big = f"upload larger than {max_upload_bytes // (1024 * 1024)} MB"
    body_limit = max_upload_bytes + 64 * 1024  # the photo plus the small prompt fields
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise DemoError(400, "bad Content-Length header")
        if int(length) > body_limit:
            raise DemoError(413, too_big)
    limited = Request(request.scope, _limited_receive(request.receive, body_limit))
    content_type = limited.headers.get("content-type", "")
    if not content_type.lower().startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise DemoError(415, "send a multipart/form-data form with the image file and points/boxes")
    try:
        return await limited.form(max_files=1, max_fields=8, max_part_size=256 * 1024)
    except _BodyTooLarge:
        raise DemoError(413, too_big) from None
    except _BodyTimeout:
        log.warning("client %s stalled during its upload: answered 408", request.client)
        raise DemoError(408, "the upload stalled: request body not received in time") from None
    except StarletteHTTPException as exc:
        raise DemoError(400, f"malformed form: {exc.detail}") from None
    except (ValueError, KeyError, asyncio.IncompleteReadError) as exc:
        raise DemoError(400, f"malformed form: {exc}") from None


async def _upload_bytes(form, max_upload_bytes: int) -> bytes:
    too_big = f"upload larger than {max_upload_bytes // (1024 * 1024)} MB"
    upload = form.get("image")
    sample_name = form.get("sample")
    if upload is None and sample_name is None:
        raise DemoError(400, "no image: send the photo as the multipart file field 'image'")
    if upload is not None:
        if isinstance(upload, str) or not hasattr(upload, "read"):
            raise DemoError(400, "the field 'image' must be a file")
        if upload.size is not None and upload.size > max_upload_bytes:
            raise DemoError(413, too_big)
        data = await upload.read()
    else:
        path = SAMPLE_FILES.get(f"{sample_name}.jpg") if isinstance(sample_name, str) else None
        if path is None or not path.is_file():
            raise DemoError(404, "no such sample")
        data = path.read_bytes()
    if len(data) > max_upload_bytes:
        raise DemoError(413, too_big)
    return data


def _add_segment_route(app: FastAPI, segmenter: Segmenter, max_upload_bytes: int) -> None:
    @app.post("/api/segment")
    async def segment(request: Request):
        t0 = time.perf_counter()
        try:
            form = await _read_form(request, max_upload_bytes)
        except ClientDisconnect:
            log.warning("client %s hung up during its upload", request.client)
            return Response(status_code=400)  # nobody is listening
        try:
            data = await _upload_bytes(form, max_upload_bytes)
            multimask = _flag(form.get("multimask"), "multimask")
            as_json = multimask or form.get("pick") is not None or _answer_format(form.get("format")) == "json"
            png, meta = await run_in_threadpool(
                segmenter.segment, data, form.get("points"), form.get("boxes"), multimask, form.get("pick")
            )
        finally:
            await form.close()
        latency_ms = (time.perf_counter() - t0) * 1000
        if as_json:
            body = {
                "width": meta["width"],
                "height": meta["height"],
                "mask_png": base64.b64encode(png).decode("ascii"),
                "mask_pixels": meta["mask_pixels"],
                "prompts": meta["prompts"],
                "latency_ms": round(latency_ms, 1),
                "inference_ms": round(meta["inference_ms"], 1),
            }
            return JSONResponse(body, headers={"Cache-Control": "no-store"})
        headers = {
            "X-Latency-Ms": f"{latency_ms:.1f}",
            "X-Inference-Ms": f"{meta['inference_ms']:.1f}",
            "X-Image-Size": f"{meta['width']}x{meta['height']}",
            "X-Mask-Pixels": str(meta["mask_pixels"]),
            "X-Window-Sides": ",".join(str(p["side"]) for p in meta["prompts"]),
            "Cache-Control": "no-store",
        }
        return Response(png, media_type="image/png", headers=headers)


def _flag(value, name: str) -> bool:
    """A form field holding a yes/no flag (absent: no)."""
    if value is None:
        return False
    if not isinstance(value, str) or value.strip().lower() not in ("", "0", "1", "true", "false", "yes", "no"):
        raise DemoError(422, f"{name} must be true or false")
    return value.strip().lower() in ("1", "true", "yes")


def _answer_format(value) -> str:
    """``png`` (the default: the mask as the body) or ``json`` (the mask as base64 PNG plus what
    was chosen per prompt)."""
    if value is None:
        return "png"
    if not isinstance(value, str) or value.strip().lower() not in ("png", "json"):
        raise DemoError(422, "format must be png or json")
    return value.strip().lower()
