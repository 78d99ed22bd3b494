"""What a followed object looks like: a colour histogram of its mask's pixels.

A window mask can be a good mask of the wrong thing: an occluder crossing the window, the
background where the object left the view, a neighbour the window slid onto. Its score and area
do not tell; its colours do. The tracker keeps a reference histogram of the object's pixels
(from the first frame, then blended with each accepted frame) and a window mask continues the
object only when its pixels' histogram is similar enough to the reference
(:attr:`~picosam2.track.TrackPolicy.appearance_follow`; a stricter
:attr:`~picosam2.track.TrackPolicy.appearance_reacquire` ends a loss).

Everything up to the similarity is integer arithmetic and the similarity is a sum in a fixed
order, so the browser port (``demo/static/track.js``) gets the same numbers::

    s     = R + G + B + 1
    bin   = (min(12 R // s, 7) * 8 + min(12 G // s, 7)) * 4 + (max(R, G, B) * 4 >> 8)   0..255
            (chromaticity in 8 x 8 cells, which a brightness change leaves alone, and 4 levels
            of value, which tell black from white)
    p_i   = counts_i / sum(counts)
    similarity(counts, ref) = sum over i = 0..255 in order of sqrt(p_i * ref_i)    (Bhattacharyya
            coefficient: 1 for the same colours, 0 for none in common)
    blend(ref, counts, rate) = (1 - rate) * ref_i + rate * p_i

A window's mask is read on a grid, about as fine as the network's 96 x 96 output: the pixels
(x, y) of the mask inside the window with x and y multiples of step = max(1, side // 96), side
the window's side (every pixel of a window up to 191 px). The reference starts from every pixel
of the first mask.
"""

from __future__ import annotations

import numpy as np

#: histogram cells: 8 x 8 chromaticity cells times 4 value levels
BINS = 256
#: a window's mask is read at about this many pixels a side (the network's output size)
GRID = 96

_PIXEL = np.dtype("V3")  # one RGB pixel as one item


def sample_step(side: int) -> int:
    """The grid step a window of ``side`` pixels is read at."""
    return max(1, int(side) // GRID)


def window_histogram(image: np.ndarray, part, step: int) -> np.ndarray | None:
    """:func:`histogram` of a window mask's pixels on the grid of ``step``: ``part`` is
    :func:`picosam2.prompts.window_mask`'s ``(slices, bool array)`` (the mask inside the window),
    ``image`` the full frame; the pixels whose image coordinates are multiples of ``step``."""
    slices, mask = part
    oy, ox = (-slices[0].start) % step, (-slices[1].start) % step
    return histogram(image[slices][oy::step, ox::step], mask[oy::step, ox::step])


def histogram(pixels: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray | None:
    """Counts (int64, :data:`BINS`) of the colour cells of ``pixels`` (..., 3 uint8 RGB) where
    ``mask`` (the same leading shape, bool; None: every pixel) holds; None when no pixel counts."""
    px = np.asarray(pixels)
    if mask is None:
        px = px.reshape(-1, px.shape[-1])
    else:
        m = np.asarray(mask, bool)
        if px.dtype == np.uint8 and px.ndim == m.ndim + 1 and px.shape[-1] == 3 and px.strides[-1] == 1:
            px = px.view(_PIXEL)[..., 0][m].view(np.uint8).reshape(-1, 3)  # whole pixels, one pick
        else:
            px = px[m]
    if len(px) == 0:
        return None
    px = px[:, :3].astype(np.int32)
    r, g, b = px[:, 0], px[:, 1], px[:, 2]
    s = r + g + b
    s += 1
    cell = np.minimum(12 * r // s, 7) * 32  # (r * 8 + g) * 4 + v, one channel at a time
    cell += np.minimum(12 * g // s, 7) * 4
    top = np.maximum(np.maximum(r, g), b)
    top <<= 2
    top >>= 8
    cell += top
    return np.bincount(cell, minlength=BINS).astype(np.int64)


def normalised(counts: np.ndarray) -> np.ndarray:
    """``counts`` as shares (float64, summing to 1)."""
    counts = np.asarray(counts, dtype=np.int64)
    return counts / float(counts.sum())


def similarity(counts: np.ndarray, reference: np.ndarray) -> float:
    """Bhattacharyya coefficient of the histogram ``counts`` and the ``reference`` shares, in 0..1,
    summed in bin order (as the browser sums it)."""
    terms = np.sqrt(normalised(counts) * np.asarray(reference, dtype=np.float64))
    return float(np.cumsum(terms)[-1])  # a running sum: the browser's order, bit for bit


def blend(reference: np.ndarray, counts: np.ndarray, rate: float) -> np.ndarray:
    """The reference after an accepted frame: ``rate`` of the new shares, the rest the old."""
    return (1.0 - rate) * np.asarray(reference, dtype=np.float64) + rate * normalised(counts)
