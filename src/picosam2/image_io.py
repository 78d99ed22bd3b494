"""Reading images into HWC uint8 RGB arrays, whatever they came as."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageError(ValueError):
    """An image that cannot be read or understood."""


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


def load_image(image) -> np.ndarray:
    """Return an (H, W, 3) uint8 RGB array from a path, a PIL image or an array.

    Grayscale, RGBA (composited on white), palette and 16-bit images are converted, and the
    EXIF orientation tag is applied. Arrays may be HxW (gray), HxWx1, HxWx3 or HxWx4, uint8 or
    uint16 (scaled down to 8 bits).
    """
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.exists():
            raise ImageError(f"image not found: {path}")
        try:
            with Image.open(path) as img:
                img.load()
                return _to_rgb(img)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"cannot read image {path}: {exc}") from None
    if isinstance(image, Image.Image):
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


def overlay(image: np.ndarray, masks, points=(), boxes=(), alpha: float = 0.5) -> np.ndarray:
    """RGB picture of ``image`` with each mask tinted in its own colour, the outline drawn and
    the prompts marked (green star-like dot for points, rectangle for boxes)."""
    from PIL import ImageDraw

    palette = [(30, 144, 255), (255, 99, 71), (50, 205, 50), (255, 215, 0), (186, 85, 211), (0, 206, 209)]
    out = image.astype(np.float32).copy()
    masks = [np.asarray(m, dtype=bool) for m in masks]
    for i, m in enumerate(masks):
        color = np.array(palette[i % len(palette)], dtype=np.float32)
        out[m] = out[m] * (1 - alpha) + color * alpha
        edge = m & ~(
            np.pad(m, 1, mode="edge")[2:, 1:-1]
            & np.pad(m, 1, mode="edge")[:-2, 1:-1]
            & np.pad(m, 1, mode="edge")[1:-1, 2:]
            & np.pad(m, 1, mode="edge")[1:-1, :-2]
        )
        out[edge] = color
    img = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    r = max(4, min(image.shape[:2]) // 80)
    for x, y in points:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(0, 255, 0), outline=(255, 255, 255), width=2)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle([x0, y0, x1, y1], outline=(0, 255, 0), width=max(2, r // 2))
    return np.asarray(img)
