"""Prompt windows: the one place that knows how a prompt becomes model pixels and back.

PicoSAM2 has no prompt input. A prompt is encoded by *where the window is cut*: the model
segments the object under the centre of its 96 x 96 input. This module turns

* a point ``(x, y)`` into a square window centred on it (``mode="centered"``: the window may
  extend past the image border and is padded, so the point stays at the centre; an optional
  ``window_size`` gives more context, resized to the model input);
* a point into the reference code's window (``mode="paper"``): the 96 px square starting 48 px
  left of and above the point, moved right/down to start inside the image (left/top border) and
  clipped at the right/bottom border, the clipped rectangle stretched back to 96 x 96;
* a box ``(x0, y0, x1, y1)`` into the padded square around it (PicoSAM3 style), resized to 96.

Coordinates are pixels of the full image, x to the right, y down; a pixel ``(x, y)`` covers
``[x, x+1) x [y, y+1)``. A :class:`Window` is an integer rectangle ``[x0, x1) x [y0, y1)`` in
those coordinates, possibly reaching outside the image.

:func:`crop_image` cuts a window out of an image (HWC uint8) and resizes it to the model input,
:func:`crop_mask` does the same for a boolean mask (nearest neighbour), and
:func:`paste_logits` / :func:`paste_mask` put the model output back into a full-size canvas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

MODEL_SIZE = 96
#: RGB value used outside the image: the ImageNet mean, which normalises to about zero.
PAD_RGB = (124, 116, 104)
POINT_MODES = ("centered", "paper")


class PromptError(ValueError):
    """A prompt that cannot be turned into a window (outside the image, malformed...)."""


@dataclass(frozen=True)
class Window:
    """Integer rectangle ``[x0, x1) x [y0, y1)`` in full-image pixel coordinates."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.x0, self.y0, self.x1, self.y1)

    def to_window_coords(self, x: float, y: float, out_size: int = MODEL_SIZE) -> tuple[float, float]:
        """Map a full-image point to model-input pixel coordinates."""
        return ((x - self.x0) * out_size / self.width, (y - self.y0) * out_size / self.height)

    def to_image_coords(self, u: float, v: float, out_size: int = MODEL_SIZE) -> tuple[float, float]:
        """Map a model-input point back to full-image coordinates."""
        return (self.x0 + u * self.width / out_size, self.y0 + v * self.height / out_size)


def _check_point(x: float, y: float, width: int, height: int) -> None:
    if not (math.isfinite(x) and math.isfinite(y)):
        raise PromptError(f"point ({x}, {y}) is not a finite number")
    if not (0 <= x < width and 0 <= y < height):
        raise PromptError(f"point ({x:g}, {y:g}) is outside the {width}x{height} image")


def point_window(
    x: float,
    y: float,
    image_size: tuple[int, int],
    window_size: int = MODEL_SIZE,
    mode: str = "centered",
) -> Window:
    """Window for a point prompt. ``image_size`` is ``(width, height)``.

    ``centered``: the square of side ``window_size`` whose centre pixel is the point's pixel
    (pixel ``window_size // 2`` of the window); padded where it leaves the image.
    ``paper``: the reference code's crop, ``x0 = max(0, x - 48)``, ``x1 = min(W, x0 + 96)``
    (same for y): at the left/top border the 96 px window slides inside the image (the point is
    off-centre, nothing is stretched); at the right/bottom border it is clipped, and
    :func:`crop_image` stretches the clipped rectangle back to 96 x 96. ``window_size`` is ignored.
    """
    width, height = image_size
    _check_point(x, y, width, height)
    if window_size < 1:
        raise PromptError(f"window size must be positive, got {window_size}")
    cx, cy = int(math.floor(x)), int(math.floor(y))
    if mode == "centered":
        half = window_size // 2
        return Window(cx - half, cy - half, cx - half + window_size, cy - half + window_size)
    if mode == "paper":
        half = MODEL_SIZE // 2
        x0, y0 = max(0, cx - half), max(0, cy - half)
        return Window(x0, y0, min(width, x0 + MODEL_SIZE), min(height, y0 + MODEL_SIZE))
    raise PromptError(f"unknown point mode {mode!r}; use one of {POINT_MODES}")


def box_window(box, image_size: tuple[int, int], padding: float = 0.1, min_size: int = 8) -> Window:
    """Padded square window around a box ``(x0, y0, x1, y1)``: the side is the longer box side
    times ``1 + 2 * padding`` (at least ``min_size``), centred on the box centre."""
    width, height = image_size
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise PromptError(f"a box needs four numbers x0,y0,x1,y1, got {box!r}") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise PromptError(f"box {box!r} has a non-finite coordinate")
    if x1 <= x0 or y1 <= y0:
        raise PromptError(f"box ({x0:g},{y0:g},{x1:g},{y1:g}) is empty: need x0 < x1 and y0 < y1")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise PromptError(f"box ({x0:g},{y0:g},{x1:g},{y1:g}) is outside the {width}x{height} image")
    side = max(min_size, int(math.ceil(max(x1 - x0, y1 - y0) * (1 + 2 * padding))))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    wx0 = int(math.floor(cx - side / 2))
    wy0 = int(math.floor(cy - side / 2))
    return Window(wx0, wy0, wx0 + side, wy0 + side)


def _cut(array: np.ndarray, win: Window, fill) -> np.ndarray:
    """The window's pixels, with ``fill`` where it leaves the array."""
    h, w = array.shape[:2]
    out = np.empty((win.height, win.width) + array.shape[2:], dtype=array.dtype)
    out[...] = fill
    sx0, sy0 = max(win.x0, 0), max(win.y0, 0)
    sx1, sy1 = min(win.x1, w), min(win.y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - win.y0 : sy1 - win.y0, sx0 - win.x0 : sx1 - win.x0] = array[sy0:sy1, sx0:sx1]
    return out


def crop_image(image: np.ndarray, win: Window, out_size: int = MODEL_SIZE) -> np.ndarray:
    """Cut ``win`` from an HWC uint8 RGB image and resize it to ``out_size`` (bilinear, with
    antialiasing when shrinking). Outside the image: :data:`PAD_RGB`."""
    patch = _cut(image, win, PAD_RGB)
    if patch.shape[0] != out_size or patch.shape[1] != out_size:
        patch = np.asarray(Image.fromarray(patch).resize((out_size, out_size), Image.BILINEAR))
    return patch


def crop_mask(mask: np.ndarray, win: Window, out_size: int = MODEL_SIZE) -> np.ndarray:
    """Cut ``win`` from a boolean HxW mask and resize it to ``out_size`` (nearest)."""
    patch = _cut(mask.astype(np.uint8), win, 0)
    if patch.shape[0] != out_size or patch.shape[1] != out_size:
        patch = np.asarray(Image.fromarray(patch).resize((out_size, out_size), Image.NEAREST))
    return patch.astype(bool)


def _resize_logits(logits: np.ndarray, width: int, height: int) -> np.ndarray:
    if logits.shape == (height, width):
        return logits
    img = Image.fromarray(np.ascontiguousarray(logits, dtype=np.float32))
    return np.asarray(img.resize((width, height), Image.BILINEAR))


def paste_logits(logits: np.ndarray, win: Window, image_size: tuple[int, int], fill: float = -np.inf) -> np.ndarray:
    """Full-size float map (H, W): the window logits resized to the window's size and put at
    its place; ``fill`` elsewhere."""
    width, height = image_size
    logits = np.asarray(logits, dtype=np.float32).reshape(logits.shape[-2:])
    resized = _resize_logits(logits, win.width, win.height)
    out = np.full((height, width), fill, dtype=np.float32)
    sx0, sy0 = max(win.x0, 0), max(win.y0, 0)
    sx1, sy1 = min(win.x1, width), min(win.y1, height)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0:sy1, sx0:sx1] = resized[sy0 - win.y0 : sy1 - win.y0, sx0 - win.x0 : sx1 - win.x0]
    return out


def paste_mask(logits: np.ndarray, win: Window, image_size: tuple[int, int], threshold: float = 0.0) -> np.ndarray:
    """Full-size boolean mask: ``paste_logits(...) > threshold`` (logit 0 = probability 0.5)."""
    return paste_logits(logits, win, image_size) > threshold


def window_for_prompt(
    prompt,
    image_size: tuple[int, int],
    kind: str,
    window_size: int = MODEL_SIZE,
    point_mode: str = "centered",
    box_padding: float = 0.1,
) -> Window:
    """Dispatch: ``kind`` is ``"point"`` (prompt = (x, y)) or ``"box"`` (prompt = (x0, y0, x1, y1))."""
    if kind == "point":
        x, y = prompt
        return point_window(float(x), float(y), image_size, window_size=window_size, mode=point_mode)
    if kind == "box":
        return box_window(prompt, image_size, padding=box_padding)
    raise PromptError(f"unknown prompt kind {kind!r}")
