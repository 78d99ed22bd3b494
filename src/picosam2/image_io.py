"""Reading images into HWC uint8 RGB arrays, whatever they came as."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import PicoSAM2Error

#: Largest image (width x height) read by default: 50 megapixels, about 150 MB as RGB and
#: under 1.5 GB for a whole ``predict`` with overlay. Decided from the file header, before any
#: pixel is decoded, so a small file that claims a huge size costs nothing. Pillow's own
#: decompression-bomb limit (``2 * Image.MAX_IMAGE_PIXELS``) caps any raised limit.
MAX_PIXELS = 50_000_000


class ImageError(PicoSAM2Error, ValueError):
    """An image that cannot be read or understood."""


class ImageTooLargeError(ImageError):
    """An image with more pixels than allowed (or a decompression bomb); refused before decoding."""


def check_pixels(img: Image.Image, max_pixels: int | None = MAX_PIXELS, name: str = "image") -> None:
    """Raise :class:`ImageTooLargeError` when the opened (not yet decoded) ``img`` has more than
    ``max_pixels`` pixels (``None``: no limit of ours)."""
    width, height = img.size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name} is {width}x{height} = {width * height / 1e6:.1f} megapixels, more than the limit of "
            f"{max_pixels / 1e6:g} (raise it with --max-pixels)"
        )


def _to_rgb(img: Image.Image) -> np.ndarray:
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if img.mode.startswith("I;16"):
            lo, hi = 0.0, 65535.0
        arr = np.clip((arr - lo) / max(hi - lo, 1e-12) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"))


def load_image(image, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Return an (H, W, 3) uint8 RGB array from a path, a PIL image or an array.

    Grayscale, RGBA (composited on white), palette and 16-bit images are converted, and the
    EXIF orientation tag is applied. Arrays may be HxW (gray), HxWx1, HxWx3 or HxWx4, uint8 or
    uint16 (scaled down to 8 bits).

    Files and PIL images with more than ``max_pixels`` pixels (default :data:`MAX_PIXELS`;
    ``None``: only Pillow's decompression-bomb limit) raise :class:`ImageTooLargeError`, decided
    from the header before decoding; any unreadable file raises :class:`ImageError`.
    """
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.exists():
            raise ImageError(f"image not found: {path}")
        if path.is_dir():
            raise ImageError(f"{path} is a folder, not an image")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as img:
                    check_pixels(img, max_pixels, name=str(path))
                    img.load()
                    return _to_rgb(img)
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageTooLargeError(f"{path} is refused as a decompression bomb: {exc}") from exc
        except MemoryError as exc:
            raise ImageTooLargeError(f"not enough memory to decode {path}") from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageError(f"cannot read image {path}: {exc}") from exc
    if isinstance(image, Image.Image):
        check_pixels(image, max_pixels)
        return _to_rgb(image)
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype == np.uint16:
            arr = (arr >> 8).astype(np.uint8)
        if arr.dtype != np.uint8:
            raise ImageError(f"image array must be uint8 or uint16, got {arr.dtype}")
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        elif arr.ndim == 3 and arr.shape[2] == 1:
            arr = np.repeat(arr, 3, axis=2)
        elif arr.ndim == 3 and arr.shape[2] == 4:
            arr = _to_rgb(Image.fromarray(arr))
        elif not (arr.ndim == 3 and arr.shape[2] == 3):
            raise ImageError(f"image array must be HxW, HxWx1, HxWx3 or HxWx4, got shape {arr.shape}")
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ImageError("image is empty")
        return np.ascontiguousarray(arr)
    raise ImageError(f"unsupported image type {type(image).__name__}")


def save_png_atomic(array: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a PNG through a temporary name in the same folder, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        Image.fromarray(array).save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _mask_parts(masks, shape):
    """Each non-empty mask as ``(slices, bool patch)``: its bounding rectangle grown by one pixel
    (within the image), so that outlines come out as on the whole mask."""
    height, width = shape
    for m in masks:
        if m is None:
            continue
        if isinstance(m, tuple):
            (ys, xs), patch = m
        else:
            ys, xs, patch = slice(0, height), slice(0, width), np.asarray(m, dtype=bool)
        rows, cols = np.flatnonzero(patch.any(axis=1)), np.flatnonzero(patch.any(axis=0))
        if not len(rows):
            continue
        y0, y1 = max(ys.start + rows[0] - 1, 0), min(ys.start + rows[-1] + 2, height)
        x0, x1 = max(xs.start + cols[0] - 1, 0), min(xs.start + cols[-1] + 2, width)
        grown = np.zeros((y1 - y0, x1 - x0), bool)
        py0, px0 = max(ys.start, y0), max(xs.start, x0)
        py1, px1 = min(ys.start + patch.shape[0], y1), min(xs.start + patch.shape[1], x1)
        grown[py0 - y0 : py1 - y0, px0 - x0 : px1 - x0] = patch[
            py0 - ys.start : py1 - ys.start, px0 - xs.start : px1 - xs.start
        ]
        yield (slice(y0, y1), slice(x0, x1)), grown


class OutputError(PicoSAM2Error, ValueError):
    """An output file that cannot be written (folder missing or read-only, a folder in the way,
    disk full...)."""


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def check_output_path(path: str | os.PathLike) -> Path:
    """Fail early, with one line, when ``path`` cannot be an output file: it names a folder, or
    its folder cannot be created. Writing can still fail later (then :func:`write_pngs_atomic`
    cleans up)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {parent}: {_why(exc)}") from exc
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: {parent} is not a folder")
    return path


def write_pngs_atomic(outputs) -> list[Path]:
    """Write several PNGs as one transaction: ``outputs`` is a list of ``(path, array)``, or
    ``(path, callable)`` making the array when its turn comes. Each goes to a temporary name
    in its own folder; only when all are written are they renamed into place. On any failure
    the temporary files and any file already renamed are removed, and :class:`OutputError` is
    raised (one line): all of the outputs or none."""
    staged: list[tuple[Path, Path]] = []
    done: list[Path] = []
    try:
        for path, array in outputs:
            path = check_output_path(path)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            staged.append((tmp, path))
            Image.fromarray(array() if callable(array) else array).save(tmp, format="PNG")
        for tmp, path in staged:
            os.replace(tmp, path)
            done.append(path)
        return done
    except OSError as exc:
        name = getattr(exc, "filename", None) or (staged[-1][1] if staged else "output")
        raise OutputError(f"cannot write {name}: {_why(exc)}; no output was written") from exc
    finally:
        if len(done) != len(staged):
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            for path in done:
                path.unlink(missing_ok=True)


def overlay(image: np.ndarray, masks, points=(), boxes=(), alpha: float = 0.5) -> np.ndarray:
    """RGB picture of ``image`` with each mask tinted in its own colour, the outline drawn and
    the prompts marked (green star-like dot for points, rectangle for boxes).

    ``masks``: full (H, W) boolean masks, or ``(slices, patch)`` pairs as given by
    :func:`picosam2.prompts.window_mask` (any iterable: masks are drawn one at a time, each on
    its own rectangle, so memory stays at about one copy of the image)."""
    from PIL import ImageDraw

    palette = [(30, 144, 255), (255, 99, 71), (50, 205, 50), (255, 215, 0), (186, 85, 211), (0, 206, 209)]
    out = np.array(image, dtype=np.uint8, copy=True)
    for i, (where, m) in enumerate(_mask_parts(masks, image.shape[:2])):
        color = np.array(palette[i % len(palette)], dtype=np.float32)
        region = out[where]
        region[m] = (region[m].astype(np.float32) * (1 - alpha) + color * alpha).astype(np.uint8)
        p = np.pad(m, 1, mode="edge")
        edge = m & ~(p[2:, 1:-1] & p[:-2, 1:-1] & p[1:-1, 2:] & p[1:-1, :-2])
        region[edge] = color.astype(np.uint8)
    img = Image.fromarray(out)
    draw = ImageDraw.Draw(img)
    r = max(4, min(image.shape[:2]) // 80)
    for x, y in points:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(0, 255, 0), outline=(255, 255, 255), width=2)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle([x0, y0, x1, y1], outline=(0, 255, 0), width=max(2, r // 2))
    return np.asarray(img)
