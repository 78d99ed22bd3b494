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

from .errors import PicoSAM2Error

MODEL_SIZE = 96
#: Windows up to this many pixels or the image's size (and any window inside the image) are cut
#: whole and resized by Pillow; larger ones are resampled from their part inside the image.
DIRECT_CUT_PIXELS = 1 << 20
#: A point window's side is clamped to this many times the image's longer side: the window then
#: already holds the whole image in about 3 model pixels, so growing it further gains nothing.
MAX_WINDOW_FACTOR = 32
#: RGB value used outside the image: the ImageNet mean, which normalises to about zero.
PAD_RGB = (124, 116, 104)
POINT_MODES = ("centered", "paper")


class PromptError(PicoSAM2Error, ValueError):
    """A prompt that cannot be turned into a window (outside the image, malformed...)."""


def parse_numbers(text: str, count: int, what: str = "prompt") -> tuple[float, ...]:
    """The one parser of comma-separated prompt text: ``"X,Y"`` (``count=2``) or ``"X0,Y0,X1,Y1"``
    (``count=4``); spaces are ignored. ``what`` names the value in the error message.

    Raises:
        PromptError: not exactly ``count`` finite numbers.
    """
    parts = str(text).replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise PromptError(f"{what} must be {count} comma-separated numbers, got {text!r}")
    return values


@dataclass(frozen=True)
class Window:
    """Integer rectangle ``[x0, x1) x [y0, y1)`` in full-image pixel coordinates."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        """Width in pixels."""
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        """Height in pixels."""
        return self.y1 - self.y0

    def as_tuple(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)``."""
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

    ``window_size`` is clamped to :data:`MAX_WINDOW_FACTOR` times the image's longer side.
    """
    width, height = image_size
    _check_point(x, y, width, height)
    try:
        if not window_size >= 1 or not math.isfinite(window_size):
            raise PromptError(f"window size must be a positive number, got {window_size}")
    except TypeError as exc:
        raise PromptError(f"window size must be a positive number, got {window_size!r}") from exc
    window_size = int(min(window_size, MAX_WINDOW_FACTOR * max(width, height)))
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
    times ``1 + 2 * padding`` (at least ``min_size``), centred on the box centre.

    A box must overlap the image. Its coordinates are first clamped to the image grown by its
    longer side ``L`` on every side (``[-L, W + L] x [-L, H + L]``): a box reaching further holds
    nothing more to see, and the clamp keeps its window within a few image sizes."""
    width, height = image_size
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError) as exc:
        raise PromptError(f"a box needs four numbers x0,y0,x1,y1, got {box!r}") from exc
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise PromptError(f"box {box!r} has a non-finite coordinate")
    if x1 <= x0 or y1 <= y0:
        raise PromptError(f"box ({x0:g},{y0:g},{x1:g},{y1:g}) is empty: need x0 < x1 and y0 < y1")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise PromptError(f"box ({x0:g},{y0:g},{x1:g},{y1:g}) is outside the {width}x{height} image")
    if not (math.isfinite(padding) and padding >= 0):
        raise PromptError(f"box padding must be a non-negative number, got {padding}")
    reach = max(width, height)
    x0, x1 = max(x0, -reach), min(x1, width + reach)
    y0, y1 = max(y0, -reach), min(y1, height + reach)
    side = max(min_size, int(math.ceil(max(x1 - x0, y1 - y0) * (1 + 2 * padding))))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    wx0 = int(math.floor(cx - side / 2))
    wy0 = int(math.floor(cy - side / 2))
    return Window(wx0, wy0, wx0 + side, wy0 + side)


def _cut(array: np.ndarray, win: Window, fill) -> np.ndarray:
    """The window's pixels, with ``fill`` where it leaves the array (allocates the whole window:
    only used for windows of at most :data:`DIRECT_CUT_PIXELS` pixels)."""
    h, w = array.shape[:2]
    out = np.empty((win.height, win.width) + array.shape[2:], dtype=array.dtype)
    out[...] = fill
    sx0, sy0 = max(win.x0, 0), max(win.y0, 0)
    sx1, sy1 = min(win.x1, w), min(win.y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - win.y0 : sy1 - win.y0, sx0 - win.x0 : sx1 - win.x0] = array[sy0:sy1, sx0:sx1]
    return out


def _inside(win: Window, width: int, height: int) -> bool:
    return win.x0 >= 0 and win.y0 >= 0 and win.x1 <= width and win.y1 <= height


def _direct(win: Window, width: int, height: int, image_multiple: int = 1) -> bool:
    """Whether cutting the whole window costs no more than ``image_multiple`` times the image (or
    very little)."""
    limit = max(DIRECT_CUT_PIXELS, image_multiple * width * height)
    return _inside(win, width, height) or win.width * win.height <= limit


# Large windows that reach outside the image: separable bilinear resampling with Pillow's
# arithmetic (``Resample.c``: triangle filter, support scaled when shrinking, weights normalised
# per output pixel, 22-bit fixed point for 8-bit images, float64 accumulation for float images),
# restricted to the taps inside the image. The taps outside (the padding) add their weight times
# the padding value, so a window of any size costs work and memory in proportion to its part
# inside the image. Horizontal pass first, then vertical: bit-identical to Pillow doing the two
# passes in that order (Pillow 13 may pick the other order itself, which moves some pixels by
# one grey level, or a float rounding step for logits).

_PRECISION_BITS = 22
#: Above this many input pixels along an axis, the per-output weight sum is the filter's
#: integral instead of the sum over every tap (which would cost memory in the window's size).
_EXACT_AXIS = 1 << 18


def _bilinear_support(in_size: int, out_size: int, out_lo: int, out_hi: int):
    """Pillow's bilinear geometry for outputs ``[out_lo, out_hi)`` of a resize
    ``in_size -> out_size``: ``(centre, first tap, end tap, filter scale)`` per output."""
    scale = float(np.float32(in_size)) / out_size
    filterscale = max(scale, 1.0)
    center = (np.arange(out_lo, out_hi, dtype=np.float64) + 0.5) * scale
    xmin = np.maximum(np.trunc(center - filterscale + 0.5), 0).astype(np.int64)
    xmax = np.minimum(np.trunc(center + filterscale + 0.5).astype(np.int64), in_size)
    return center, xmin, xmax, filterscale


def _bilinear_taps(center, xmin, xmax, filterscale):
    """Every output's taps ``x`` (n_out, taps) and their normalised weights ``k`` (Pillow's sum order)."""
    taps = int((xmax - xmin).max(initial=0))
    x = np.arange(taps)[None, :] + xmin[:, None]
    w = 1.0 - np.abs((x - center[:, None] + 0.5) * (1.0 / filterscale))
    w = np.where((w > 0) & (x < xmax[:, None]), w, 0.0)
    total = np.add.accumulate(w, axis=1)[:, -1] if taps else np.zeros(len(center))
    k = np.divide(w, total[:, None], out=w.copy(), where=total[:, None] != 0)
    return x, k


def _axis_weights(in_size: int, out_size: int, out_lo: int, out_hi: int, tap_lo: int, tap_hi: int):
    """Bilinear weights of outputs ``[out_lo, out_hi)`` of a resize ``in_size -> out_size`` over the
    input taps ``[tap_lo, tap_hi)`` only: ``(n_out, tap_hi - tap_lo)`` float64, each row normalised
    by its sum over *all* its taps (as Pillow does), plus that row's full sum of 8-bit fixed-point
    weights (for the padding's share)."""
    center, xmin, xmax, filterscale = _bilinear_support(in_size, out_size, out_lo, out_hi)
    ss = 1.0 / filterscale
    n_in = max(tap_hi - tap_lo, 0)
    dense = np.zeros((len(center), n_in), np.float64)
    if in_size <= _EXACT_AXIS:
        x, k = _bilinear_taps(center, xmin, xmax, filterscale)
        fixed_total = np.floor(0.5 + k * (1 << _PRECISION_BITS)).sum(axis=1)
        rows, cols = np.nonzero((x >= tap_lo) & (x < tap_hi) & (x < xmax[:, None]))
        dense[rows, x[rows, cols] - tap_lo] = k[rows, cols]
    else:  # huge axis: weights of the in-image taps only, the row sum is the triangle's area
        if n_in:
            x = np.arange(tap_lo, tap_hi, dtype=np.float64)[None, :]
            w = 1.0 - np.abs((x - center[:, None] + 0.5) * ss)
            ok = (w > 0) & (x >= xmin[:, None]) & (x < xmax[:, None])
            dense = np.where(ok, w, 0.0) / filterscale
        fixed_total = np.full(len(center), float(1 << _PRECISION_BITS))
    return dense, fixed_total


def _resample_u8_window(image: np.ndarray, win: Window, out_size: int, fill) -> np.ndarray:
    """``crop_image`` for a window of any size: reads only the window's part inside ``image``."""
    height, width = image.shape[:2]
    one = float(1 << _PRECISION_BITS)
    half = float(1 << (_PRECISION_BITS - 1))
    fill = np.asarray(fill, np.float64)
    ax0, ax1 = min(max(win.x0, 0), width), max(min(win.x1, width), 0)
    ay0, ay1 = min(max(win.y0, 0), height), max(min(win.y1, height), 0)
    ax1, ay1 = max(ax1, ax0), max(ay1, ay0)
    kx, kx_total = _axis_weights(win.width, out_size, 0, out_size, ax0 - win.x0, ax1 - win.x0)
    ky, ky_total = _axis_weights(win.height, out_size, 0, out_size, ay0 - win.y0, ay1 - win.y0)
    kx = np.floor(0.5 + kx * one)  # Pillow's 8-bit fixed-point weights
    ky = np.floor(0.5 + ky * one)
    pad_x = kx_total - kx.sum(axis=1)  # share of the padding in each output column
    pad_y = ky_total - ky.sum(axis=1)

    def clip8(acc):
        return np.clip(np.floor((acc + half) / one), 0, 255)

    # horizontal pass over the image rows in the window (in chunks), then over a padding row
    rows = np.empty((ay1 - ay0, out_size, image.shape[2]), np.float64)
    step = max(1, (1 << 21) // max(ax1 - ax0, 1))
    for r in range(ay0, ay1, step):
        chunk = image[r : min(r + step, ay1), ax0:ax1].astype(np.float64)
        acc = np.matmul(chunk.transpose(0, 2, 1), kx.T).transpose(0, 2, 1)
        rows[r - ay0 : r - ay0 + len(chunk)] = clip8(acc + pad_x[None, :, None] * fill)
    pad_row = clip8(kx_total[:, None] * fill[None, :])  # (out, C)
    out = np.einsum("ir,rkc->ikc", ky, rows) + pad_y[:, None, None] * pad_row[None]
    return clip8(out).astype(np.uint8)


def crop_image(image: np.ndarray, win: Window, out_size: int = MODEL_SIZE) -> np.ndarray:
    """Cut ``win`` from an HWC uint8 RGB image and resize it to ``out_size`` (bilinear, with
    antialiasing when shrinking). Outside the image: :data:`PAD_RGB`.

    Memory and time follow the part of the window inside the image, not the window's size: a
    large window reaching outside the image is resampled from its in-image pixels with the
    padding's share added arithmetically (bit-identical to padding the whole window first)."""
    height, width = image.shape[:2]
    if not _direct(win, width, height):
        return _resample_u8_window(image, win, out_size, PAD_RGB[: image.shape[2]] if image.ndim == 3 else 0)
    patch = _cut(image, win, PAD_RGB)
    if patch.shape[0] != out_size or patch.shape[1] != out_size:
        patch = np.asarray(Image.fromarray(patch).resize((out_size, out_size), Image.BILINEAR))
    return patch


#: :func:`crop_images` cuts windows of up to this many times the image's pixels whole (Pillow's
#: padded copy: 4 bytes a pixel), larger ones through the bounded path
_PIL_CUT_FACTOR = 2
#: :data:`PAD_RGB` as the fill of a Pillow RGB canvas
_PAD_FILL = tuple(int(v) for v in PAD_RGB)


def _reduction_factor(win: Window, out_size: int, reducing_gap: float | None) -> int:
    """The power of two :func:`crop_images` box-reduces ``win`` by under ``reducing_gap`` (1: none);
    ``windows.js`` ``reductionFactor`` is its port."""
    if reducing_gap is None:
        return 1
    scale = min(win.width, win.height) / (out_size * float(reducing_gap))
    return 1 << int(math.floor(math.log2(scale))) if scale > 2 else 1


def _reduced_cut(pil: Image.Image, win: Window, out_size: int, factor: int) -> np.ndarray:
    """A window cut from the image box-reduced by ``factor`` (``Image.reduce`` of the window's
    part inside the image, on a grid of ``factor`` aligned to the image) and resized to
    ``out_size`` from its fractional position there: Pillow's ``reducing_gap`` scheme, costing
    the window's in-image pixels once plus its size divided by ``factor`` squared."""
    width, height = pil.size
    fx0, fy0, fx1, fy1 = (v / factor for v in win.as_tuple())
    cx0, cy0 = math.floor(fx0), math.floor(fy0)
    cx1, cy1 = max(math.ceil(fx1), cx0 + 1), max(math.ceil(fy1), cy0 + 1)
    canvas = Image.new("RGB", (cx1 - cx0, cy1 - cy0), _PAD_FILL)
    # the reduced pixels the canvas covers that hold image: [rx0, rx1) x [ry0, ry1)
    rx0, ry0 = max(cx0, 0), max(cy0, 0)
    rx1, ry1 = min(cx1, -(-width // factor)), min(cy1, -(-height // factor))
    if rx1 > rx0 and ry1 > ry0:
        box = (rx0 * factor, ry0 * factor, min(rx1 * factor, width), min(ry1 * factor, height))
        canvas.paste(pil.reduce(factor, box=box), (rx0 - cx0, ry0 - cy0))
    box = (fx0 - cx0, fy0 - cy0, fx1 - cx0, fy1 - cy0)
    return np.asarray(canvas.resize((out_size, out_size), Image.BILINEAR, box=box))


def crop_images(
    image: np.ndarray, windows, out_size: int = MODEL_SIZE, reducing_gap: float | None = None
) -> np.ndarray:
    """:func:`crop_image` for several windows of one image, bit-identical and faster: the image
    becomes one Pillow image, each window is cut by Pillow (padding pasted in C, not filled by
    numpy) and resized; windows of up to twice the image's pixels are cut whole, larger ones keep
    :func:`crop_image`'s bounded path. (Between one and two times the image, :func:`crop_image`
    resamples itself with horizontal-then-vertical passes; were Pillow to pick the other order, a
    pixel could differ by one grey level.)

    ``reducing_gap`` (e.g. 2.0) trades exactness for speed on large windows, as Pillow's
    argument of that name does: a window more than ``2 * reducing_gap`` times the model input is
    cut from the image box-reduced by a power of two that leaves at least ``reducing_gap`` times
    the output size, then resized. Pixels then differ from :func:`crop_image` by about half a
    grey level on average; the cost of a whole-image window drops from the image's size to a few
    hundred pixels a side. Returns (N, out_size, out_size, C) uint8."""
    windows = list(windows)
    height, width = image.shape[:2]
    pil_ok = image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    out = np.empty((len(windows), out_size, out_size) + image.shape[2:], np.uint8)
    pil = None
    for i, win in enumerate(windows):
        factor = _reduction_factor(win, out_size, reducing_gap) if pil_ok else 1
        if not (pil_ok and (factor > 1 or _direct(win, width, height, _PIL_CUT_FACTOR))):
            out[i] = crop_image(image, win, out_size)
            continue
        if pil is None:
            pil = Image.fromarray(np.ascontiguousarray(image))
        if factor > 1:
            out[i] = _reduced_cut(pil, win, out_size, factor)
            continue
        if _inside(win, width, height):
            patch = pil.crop((win.x0, win.y0, win.x1, win.y1))
        else:
            patch = Image.new("RGB", (win.width, win.height), _PAD_FILL)
            sx0, sy0 = max(win.x0, 0), max(win.y0, 0)
            sx1, sy1 = min(win.x1, width), min(win.y1, height)
            if sx1 > sx0 and sy1 > sy0:
                patch.paste(pil.crop((sx0, sy0, sx1, sy1)), (sx0 - win.x0, sy0 - win.y0))
        if patch.size != (out_size, out_size):
            patch = patch.resize((out_size, out_size), Image.BILINEAR)
        out[i] = np.asarray(patch)
    return out


def _nearest_index(in_size: int, out_size: int) -> np.ndarray:
    """Input index of each output pixel of Pillow's nearest-neighbour resize (``ImagingScaleAffine``:
    the position is accumulated output pixel by output pixel)."""
    step = float(np.float32(in_size)) / out_size
    pos = np.add.accumulate(np.concatenate([[step * 0.5], np.full(out_size - 1, step)]))
    return np.where(pos < 0, -1, np.trunc(pos)).astype(np.int64)


def crop_mask(mask: np.ndarray, win: Window, out_size: int = MODEL_SIZE) -> np.ndarray:
    """Cut ``win`` from a boolean HxW mask and resize it to ``out_size`` (nearest)."""
    height, width = mask.shape[:2]
    if not _direct(win, width, height):
        cols = _nearest_index(win.width, out_size) + win.x0
        rows = _nearest_index(win.height, out_size) + win.y0
        ok_c, ok_r = (cols >= 0) & (cols < width), (rows >= 0) & (rows < height)
        out = np.zeros((out_size, out_size), bool)
        out[np.ix_(ok_r, ok_c)] = np.asarray(mask, bool)[np.ix_(rows[ok_r], cols[ok_c])]
        return out
    patch = _cut(mask.astype(np.uint8), win, 0)
    if patch.shape[0] != out_size or patch.shape[1] != out_size:
        patch = np.asarray(Image.fromarray(patch).resize((out_size, out_size), Image.NEAREST))
    return patch.astype(bool)


def _window_logits(logits, win: Window, image_size: tuple[int, int]):
    """The window's logits resized to the window and cut to the image: ``(slices, array)`` with
    ``array`` covering only ``image[slices]``, or ``None`` when the window misses the image."""
    width, height = image_size
    logits = np.asarray(logits, dtype=np.float32)
    logits = logits.reshape(logits.shape[-2:])
    sx0, sy0 = max(win.x0, 0), max(win.y0, 0)
    sx1, sy1 = min(win.x1, width), min(win.y1, height)
    if sx1 <= sx0 or sy1 <= sy0:
        return None
    where = (slice(sy0, sy1), slice(sx0, sx1))
    if logits.shape == (win.height, win.width):
        return where, logits[sy0 - win.y0 : sy1 - win.y0, sx0 - win.x0 : sx1 - win.x0]
    if _direct(win, width, height):  # small enough to resize whole, exactly as Pillow does
        full = np.asarray(Image.fromarray(np.ascontiguousarray(logits)).resize((win.width, win.height), Image.BILINEAR))
        return where, full[sy0 - win.y0 : sy1 - win.y0, sx0 - win.x0 : sx1 - win.x0]
    # larger: Pillow resizes straight to the in-image part. The box (in logits pixels) keeps
    # every output's filter position and taps those of the whole-window resize, so the part is
    # that resize cut to the image (to float rounding), at a cost in the part's size only
    lh, lw = logits.shape
    box = (
        (sx0 - win.x0) * lw / win.width,
        (sy0 - win.y0) * lh / win.height,
        (sx1 - win.x0) * lw / win.width,
        (sy1 - win.y0) * lh / win.height,
    )
    part = Image.fromarray(np.ascontiguousarray(logits)).resize((sx1 - sx0, sy1 - sy0), Image.BILINEAR, box=box)
    return where, np.asarray(part)


def paste_logits(logits: np.ndarray, win: Window, image_size: tuple[int, int], fill: float = -np.inf) -> np.ndarray:
    """Full-size float map (H, W): the window logits resized to the window's size and put at
    its place; ``fill`` elsewhere. Only the part of the window inside the image is computed."""
    width, height = image_size
    out = np.full((height, width), fill, dtype=np.float32)
    part = _window_logits(logits, win, image_size)
    if part is not None:
        out[part[0]] = part[1]
    return out


def _window_taps(logits: np.ndarray, win: Window, image_size: tuple[int, int]):
    """The in-image part of ``win`` ``(x0, y0, x1, y1)`` and the bilinear taps and weights of its
    output columns and rows on the logits."""
    width, height = image_size
    sx0, sy0 = max(win.x0, 0), max(win.y0, 0)
    sx1, sy1 = min(win.x1, width), min(win.y1, height)
    lh, lw = logits.shape
    cols = _bilinear_taps(*_bilinear_support(lw, win.width, sx0 - win.x0, sx1 - win.x0))
    rows = _bilinear_taps(*_bilinear_support(lh, win.height, sy0 - win.y0, sy1 - win.y0))
    return (sx0, sy0, sx1, sy1), cols, rows


def _upsampled_mask(logits: np.ndarray, win: Window, image_size: tuple[int, int], threshold: float):
    """``window_mask`` for a window at least as large as the logits: Pillow's float bilinear
    resize (horizontal pass, float32, then vertical pass, float64 sums tap by tap, float32)
    thresholded without computing every output. An output whose taps are all above (all at or
    below) the threshold is above (below) it too, since it is their weighted mean; so each band
    of output rows sharing its taps is filled from its taps' signs, and only the columns where
    those disagree (the object's edge) are computed. Cost: the window's in-image pixels once as
    booleans instead of several float passes."""
    (sx0, sy0, sx1, sy1), (xs, kx), (ys, ky) = _window_taps(logits, win, image_size)
    lh, lw = logits.shape
    xs, ys = np.minimum(xs, lw - 1), np.minimum(ys, lh - 1)
    cols64 = logits.T.astype(np.float64)  # gathers of whole logit columns: contiguous
    acc = np.zeros((len(xs), lh), np.float64)
    for t in range(xs.shape[1]):
        acc += cols64[xs[:, t]] * kx[:, t, None]
    rows = acc.astype(np.float32).T  # (logit rows, output columns): the horizontal pass
    above = rows > threshold
    # bands: runs of output rows with the same taps; a band's live taps are those any of its
    # rows weighs (the others stand aside: "all above" ignores them, "any above" too)
    starts = np.flatnonzero(np.r_[True, np.any(ys[1:] != ys[:-1], axis=1)])
    lengths = np.diff(np.r_[starts, len(ys)])
    taps = ys[starts]  # (bands, taps)
    live = np.logical_or.reduceat(ky > 0, starts, axis=0)[:, :, None]
    pos = above[taps]  # (bands, taps, columns)
    every = np.all(pos | ~live, axis=1)
    mixed = np.any(pos & live, axis=1) & ~every
    out = np.repeat(every, lengths, axis=0)
    band, cols = np.nonzero(mixed)
    if len(band):  # the edge: every row of each mixed (band, column)
        # per band, its rows padded to the longest band by repeating its last row (which then
        # computes and writes the same value twice), and their weights on the band's live taps
        ends = starts + lengths
        band_rows = np.minimum(starts[:, None] + np.arange(int(lengths.max())), ends[:, None] - 1)
        weights = np.where(live[:, None, :, 0], ky[band_rows], 0.0)  # (bands, rows, taps)
        acc = np.zeros((len(band), band_rows.shape[1]), np.float64)
        k = weights[band]  # (pairs, rows, taps)
        for t in range(taps.shape[1]):
            v = rows[taps[band, t], cols].astype(np.float64)[:, None]
            acc += np.where(k[:, :, t] > 0, v * k[:, :, t], 0.0)
        out[band_rows[band], cols[:, None]] = acc.astype(np.float32) > threshold
    return (slice(sy0, sy1), slice(sx0, sx1)), out


#: the in-image part of a window, in logits, from which its threshold-0 mask is read cell by cell
#: (below, the row-by-row passes cost about as much or less: about 470 x 470 pixels for 96 x 96
#: logits; the cells' share grows with the window, the edge's with the mask's outline)
_CELLS_FROM = 24

#: a finite logit above this makes any bilinear mix of such logits positive after the float32
#: rounding (the least positive float32 is 2 ** -149; a mix of n taps weighs one at least 1 / n)
_SURELY_POSITIVE = 2.0**-100


def _tap_runs(taps: np.ndarray):
    """Runs of consecutive outputs with the same taps: ``(first output, length)`` of each."""
    change = np.any(taps[1:] != taps[:-1], axis=1)
    starts = np.flatnonzero(np.concatenate(([True], change)))
    return starts, np.diff(np.append(starts, len(taps)))


def _run_members(starts: np.ndarray, lengths: np.ndarray, which: np.ndarray) -> np.ndarray:
    """The outputs of runs ``which``, one row per run, padded to the longest run by repeating its
    last output (which then computes and writes the same value twice)."""
    first = starts[which]
    return np.minimum(first[:, None] + np.arange(int(lengths.max())), (first + lengths[which] - 1)[:, None])


def _positive_mask(logits: np.ndarray, win: Window, image_size: tuple[int, int]):
    """``_upsampled_mask`` at threshold 0 (the same booleans), reading the logits cell by cell:
    a cell is the output pixels between the same two logit rows and the same two logit columns.
    Every mix of finite logits above ``_SURELY_POSITIVE`` is above 0, and every mix of logits at or
    below 0 is not (weights are never negative, at least one per column is positive); so a cell
    whose taps all agree is filled from their sign, and only the cells at the object's edge go
    through both passes, as ``_upsampled_mask`` computes them (its "every" and "mixed" rule, the
    same float64 sums in the same order, float32 in between). Cost: about the logits, plus the
    edge, plus the in-image part once as booleans."""
    (sx0, sy0, sx1, sy1), (xs, kx), (ys, ky) = _window_taps(logits, win, image_size)
    lh, lw = logits.shape
    if not (kx > 0).any(axis=1).all():
        return _upsampled_mask(logits, win, image_size, 0.0)
    xs, ys = np.minimum(xs, lw - 1), np.minimum(ys, lh - 1)
    b_starts, b_len = _tap_runs(ys)  # bands: output rows with the same taps
    g_starts, g_len = _tap_runs(xs)  # groups: output columns with the same taps
    row_taps = ys[b_starts]
    live = np.logical_or.reduceat(ky > 0, b_starts, axis=0)  # (bands, Ty)
    dead = ~live[:, :, None]
    picked = logits[:, xs[g_starts]]  # (logit rows, groups, Tx)
    pos = ((picked > _SURELY_POSITIVE) & (picked < np.inf)).all(axis=2)[row_taps]  # (bands, Ty, groups)
    neg = (picked <= 0).all(axis=2)[row_taps]
    yes = np.all(pos | dead, axis=1)
    todo = ~(yes | np.all(neg | dead, axis=1))
    out = np.repeat(np.repeat(yes, g_len, axis=1), b_len, axis=0)
    band, group = np.nonzero(todo)
    if len(band):
        cols = _run_members(g_starts, g_len, group)  # (cells, J)
        rows = _run_members(b_starts, b_len, band)  # (cells, I)
        base = (row_taps[band] * lw)[:, :, None]  # (cells, Ty, 1)
        x, k = xs[cols], kx[cols]  # (cells, J, Tx)
        flat = logits.reshape(-1)
        acc = flat[base + x[:, None, :, 0]].astype(np.float64) * k[:, None, :, 0]  # 0 + the first term
        for u in range(1, xs.shape[1]):
            acc += flat[base + x[:, None, :, u]].astype(np.float64) * k[:, None, :, u]
        h = acc.astype(np.float32)  # the horizontal pass at the cells' tap rows: (cells, Ty, J)
        above = h > 0.0
        lv = live[band][:, :, None]
        every = np.all(above | ~lv, axis=1)  # (cells, J)
        mixed = np.any(above & lv, axis=1) & ~every
        w = np.where(lv, ky[rows].transpose(0, 2, 1), 0.0)  # (cells, Ty, I)
        hv = h.astype(np.float64)[:, :, None, :]  # (cells, Ty, 1, J)
        finite = np.isfinite(h).all()  # then a weight of 0 adds 0: no need to leave it out
        acc = None
        for t in range(ys.shape[1]):
            wt = w[:, t, :, None]
            term = hv[:, t] * wt if finite else np.where(wt > 0, hv[:, t] * wt, 0.0)
            acc = term if acc is None else acc + term
        res = np.where(mixed[:, None, :], acc.astype(np.float32) > 0.0, every[:, None, :])
        out.reshape(-1)[(rows * out.shape[1])[:, :, None] + cols[:, None, :]] = res
    return (slice(sy0, sy1), slice(sx0, sx1)), out


def window_mask(logits: np.ndarray, win: Window, image_size: tuple[int, int], threshold: float = 0.0):
    """The part of :func:`paste_mask` inside the window: ``(slices, bool array)`` such that the
    full mask is that array at ``mask[slices]`` and False elsewhere; ``None`` when the window
    misses the image. Costs memory in the window's in-image size, not the image's."""
    logits = np.asarray(logits, dtype=np.float32)
    logits = logits.reshape(logits.shape[-2:])
    width, height = image_size
    hits = min(win.x1, width) > max(win.x0, 0) and min(win.y1, height) > max(win.y0, 0)
    if (
        hits
        and win.width >= logits.shape[1]
        and win.height >= logits.shape[0]
        and logits.shape != (win.height, win.width)
    ):
        width_in, height_in = min(win.x1, width) - max(win.x0, 0), min(win.y1, height) - max(win.y0, 0)
        if threshold == 0 and width_in * height_in >= _CELLS_FROM * logits.size:
            return _positive_mask(logits, win, image_size)
        return _upsampled_mask(logits, win, image_size, threshold)
    part = _window_logits(logits, win, image_size)
    return None if part is None else (part[0], part[1] > threshold)


def paste_mask(logits: np.ndarray, win: Window, image_size: tuple[int, int], threshold: float = 0.0) -> np.ndarray:
    """Full-size boolean mask: ``paste_logits(...) > threshold`` (logit 0 = probability 0.5)."""
    width, height = image_size
    out = np.zeros((height, width), bool)
    part = window_mask(logits, win, image_size, threshold)
    if part is not None:
        out[part[0]] = part[1]
    return out


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


# -- scale-aware point prompts ---------------------------------------------------------------
#: largest number of window sizes one click tries under ``"auto"``.
AUTO_MAX_SCALES = 8
#: the ideal ratio between neighbouring window sizes under ``"auto"``.
AUTO_SCALE_STEP = math.sqrt(2.0)


def auto_point_scales(
    image_size: tuple[int, int],
    min_size: int = MODEL_SIZE,
    step: float = AUTO_SCALE_STEP,
    max_count: int = AUTO_MAX_SCALES,
) -> list[int]:
    """Window sides one click tries: from ``min_size`` up to the image's longer side, spaced
    geometrically about ``step`` apart, at most ``max_count`` of them (the spacing widens on
    large images). A 640 x 480 image gives 96, 140, 205, 300, 438, 640; an image whose longer
    side is at most ``min_size`` gives ``[min_size]``."""
    longer = max(int(image_size[0]), int(image_size[1]))
    if longer <= min_size:
        return [int(min_size)]
    count = int(round(math.log(longer / min_size) / math.log(step))) + 1
    count = max(2, min(max_count, count))
    ratio = (longer / min_size) ** (1.0 / (count - 1))
    return [int(round(min_size * ratio**k)) for k in range(count)]


def parse_point_scales(spec) -> str | list[int] | None:
    """``"auto"``, ``"auto:N"`` (the auto sizes, at most N of them: ``"auto:4"`` is the fast
    setting), ``None``/``"fixed"`` (one window) or window sides: ``"96,192,384"``, ``[96, 192]``."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "fixed", "none", "single")):
        return None
    text = spec.strip().lower() if isinstance(spec, str) else None
    if text == "auto":
        return "auto"
    if text is not None and text.startswith("auto:"):
        count = text[5:].strip()
        if not count.isdigit() or int(count) < 2:
            raise PromptError(f"'auto:N' takes a window count N of at least 2, got {spec!r}")
        return f"auto:{int(count)}"
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    try:
        sizes = [int(float(p)) for p in parts]
    except (TypeError, ValueError) as exc:
        raise PromptError(
            f"point scales must be 'auto', 'auto:N' or window sides like 96,192,384; got {spec!r}"
        ) from exc
    if not sizes or any(s < 1 for s in sizes):
        raise PromptError(f"point scales must be positive window sides, got {spec!r}")
    return sorted(set(sizes))


def point_scales_for(spec, image_size: tuple[int, int], default_size: int = MODEL_SIZE) -> list[int]:
    """The window sides a click tries on an image of ``image_size`` under ``spec``
    (``default_size`` alone when it asks for one fixed window)."""
    spec = parse_point_scales(spec)
    if spec is None:
        return [int(default_size)]
    if isinstance(spec, str):  # "auto" or "auto:N"
        count = int(spec[5:]) if ":" in spec else AUTO_MAX_SCALES
        return auto_point_scales(image_size, max_count=count)
    return list(spec)


@dataclass(frozen=True)
class ClickScales:
    """How a click (a point prompt) becomes windows: the one object that holds the click options.

    Attributes:
        sizes: the window sides a click tries, always: ``"auto"`` (:func:`auto_point_scales`:
            96 px up to the image's longer side, at most :data:`AUTO_MAX_SCALES`), ``"auto:N"`` (at
            most N of those), or a tuple of sides in image pixels. One side is one fixed window
            (the paper's click is ``(96,)``); several are scale-aware clicks, whose best-scored
            mask is kept.
        mode: ``"centered"`` (the point at the window's centre, padded past the border) or
            ``"paper"`` (the reference clip-and-stretch; one side only).
        multimask: return every size's mask with its score instead of the best one.
    """

    sizes: str | tuple[int, ...] = "auto"
    mode: str = "centered"
    multimask: bool = False

    def __post_init__(self):
        spec = parse_point_scales(self.sizes)
        if spec is None:
            raise PromptError(f"click sizes must be 'auto', 'auto:N' or window sides, got {self.sizes!r}")
        object.__setattr__(self, "sizes", spec if isinstance(spec, str) else tuple(spec))
        if self.mode not in POINT_MODES:
            raise PromptError(f"unknown point mode {self.mode!r}; use one of {POINT_MODES}")
        if self.mode == "paper" and self.single is None:
            raise PromptError("the paper's point mode cuts one window: give one size")

    @classmethod
    def fixed(cls, size: int = MODEL_SIZE, mode: str = "centered") -> ClickScales:
        """One window of ``size`` per click."""
        return cls((int(size),), mode)

    @property
    def single(self) -> int | None:
        """The side of the one window a click tries, or ``None`` for several sizes."""
        return self.sizes[0] if isinstance(self.sizes, tuple) and len(self.sizes) == 1 else None

    def sides(self, image_size: tuple[int, int]) -> list[int]:
        """The window sides a click tries on an image of ``image_size`` = (width, height)."""
        return point_scales_for(self.sizes, image_size)

    def count(self, image_size: tuple[int, int]) -> int:
        """Windows one click costs on an image of ``image_size``."""
        return len(self.sides(image_size))


def point_windows(x: float, y: float, image_size: tuple[int, int], sizes) -> list[Window]:
    """Centred windows of each side in ``sizes`` around the point (scale-aware clicks)."""
    return [point_window(x, y, image_size, window_size=int(s), mode="centered") for s in sizes]


def mask_box(logits: np.ndarray, win: Window, threshold: float = 0.0) -> tuple[float, float, float, float] | None:
    """Bounding box, in image pixels, of a window mask (``logits > threshold``); None if empty."""
    m = np.asarray(logits).reshape(np.asarray(logits).shape[-2:]) > threshold
    if not m.any():
        return None
    rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
    size = m.shape[-1]
    x0, y0 = win.to_image_coords(cols[0], rows[0], size)
    x1, y1 = win.to_image_coords(cols[-1] + 1, rows[-1] + 1, size)
    return (x0, y0, x1, y1)


def refine_window(logits: np.ndarray, win: Window, image_size: tuple[int, int], padding: float = 0.1) -> Window | None:
    """Coarse to fine: the box window (:func:`box_window`) around a window mask's extent, so a
    large window's mask is looked at again with the object filling the model input. None when
    the mask is empty or its box leaves the image."""
    box = mask_box(logits, win)
    if box is None:
        return None
    width, height = image_size
    x0, y0, x1, y1 = max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(width)), min(box[3], float(height))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return box_window((x0, y0, x1, y1), image_size, padding=padding)
