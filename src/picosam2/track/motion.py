"""How far the image moved around an object between two frames (block matching on luma).

A window's mask says where the object is only as well as the mask is right: a mask that leaks
onto a neighbour moves its interior point onto the neighbour, and the next window follows it
there. The image itself says how the object moved. This module measures that shift without the
network: the previous frame's luma around the object, in blocks, weighted by the object's mask,
is matched against the current frame's luma over a search range.

Everything is integer arithmetic, so the browser port (``demo/static/track.js``) gives the same
shift bit for bit::

    luma      Y = (77 R + 150 G + 29 B + 128) >> 8              per pixel, 0..255
    f         = max(1, floor(extent / cells))                   block side in pixels
    block     (i, j) covers pixels [j f, (j+1) f) x [i f, (i+1) f); it is read at m x m samples,
              g = max(1, floor(f / 4)), m = floor(f / g), at (j f + u g, i f + t g) for t, u < m
              (every pixel while f < 8), coordinates clamped into the image; its value is
              floor(sum Y / m^2) and its weight floor(16 * mask samples / m^2) (samples outside
              the image weigh 0)
    template  the blocks within `half` = max(2, ceil(extent / 2f)) of the anchor's block, from the
              previous frame, weighted by the previous mask (all weights 1 when the mask gives
              fewer than 16)
    cost(d)   = sum_b w_b |N C_{b+d} - S_C(d) - (N T_b - S_T)|, N = sum w, S = weighted sums:
              the weighted absolute difference of the two patches with their means removed
              (a brightness change costs nothing)
    search    the d with the least cost over |dx|, |dy| <= r = max(1, ceil(radius / f)); ties go
              to the smaller |d|^2, then to the first in row order. First with blocks of
              coarse = block side for cells // 2 around d = 0, then with blocks of f within
              ceil(coarse / f) blocks of the coarse answer (floor(coarse shift / f))
    shift     per axis, f * d moved to the vertex of the parabola through the costs of d - 1, d,
              d + 1 (when both neighbours were searched and the parabola opens upwards):
              f d + (f num) / (2 den), num = c(d-1) - c(d+1), den = c(d-1) - 2 c(d) + c(d+1)
"""

from __future__ import annotations

import math

import numpy as np

#: weight of a block fully covered by the mask
FULL_WEIGHT = 16


def luma(rgb: np.ndarray) -> np.ndarray:
    """Integer luma (0..255, int32) of an (..., 3) uint8 RGB array."""
    a = np.asarray(rgb).astype(np.uint16)  # the largest sum, 256 * 255 + 128, fits in 16 bits
    return ((77 * a[..., 0] + 150 * a[..., 1] + 29 * a[..., 2] + 128) >> 8).astype(np.int32)


def block_side(extent: float, cells: int) -> int:
    """The block side in pixels for an object of ``extent`` pixels matched with ``cells`` blocks
    across it."""
    return max(1, int(math.floor(extent / max(1, int(cells)))))


#: a block's value is the mean of at most this many samples a side (a grid inside the block)
SAMPLES = 4


def block_samples(f: int) -> tuple[int, int]:
    """The sample step ``g`` and the samples a side ``m`` of a block of side ``f``: pixels
    ``block start + t g`` for ``t < m`` (every pixel while ``f < 2 * SAMPLES``)."""
    g = max(1, f // SAMPLES)
    return g, f // g


def _sums(a: np.ndarray, n_i: int, n_j: int, m: int) -> np.ndarray:
    """Sums (int64) of the m x m tiles of an (n_i m, n_j m) array."""
    rows = a.reshape(n_i, m, n_j * m).sum(axis=1, dtype=np.int64)
    return rows.reshape(n_i, n_j, m).sum(axis=2)


def _blocks(frame: np.ndarray, mask: np.ndarray | None, f: int, i0: int, j0: int, n_i: int, n_j: int):
    """Block values (and weights when ``mask`` is given) of the n_i x n_j blocks starting at block
    (i0, j0): int64 arrays."""
    height, width = frame.shape[:2]
    g, m = block_samples(f)
    offsets = np.arange(m) * g
    ys = ((i0 + np.arange(n_i)) * f)[:, None] + offsets[None, :]
    xs = ((j0 + np.arange(n_j)) * f)[:, None] + offsets[None, :]
    ys, xs = ys.ravel(), xs.ravel()
    inside_y, inside_x = (ys >= 0) & (ys < height), (xs >= 0) & (xs < width)
    if m * g == f and inside_y.all() and inside_x.all():  # evenly spaced and on the image: a view

        def gather(a):
            return a[ys[0] : ys[-1] + 1 : g, xs[0] : xs[-1] + 1 : g]
    else:
        yc, xc = np.clip(ys, 0, height - 1), np.clip(xs, 0, width - 1)
        y0, x0 = int(yc.min()), int(xc.min())
        yc, xc = yc - y0, xc - x0
        y1, x1 = y0 + int(yc.max()) + 1, x0 + int(xc.max()) + 1

        def gather(a):
            return a[y0:y1, x0:x1].take(yc, axis=0).take(xc, axis=1)

    values = _sums(luma(gather(frame)), n_i, n_j, m) // (m * m)
    if mask is None:
        return values, None
    inside = inside_y[:, None] & inside_x[None, :]
    covered = gather(np.asarray(mask, dtype=bool)) & inside
    weights = FULL_WEIGHT * _sums(covered, n_i, n_j, m) // (m * m)
    return values, weights


def _search(previous, current, mask, anchor, extent, f, centre, r):
    """Block shift (dx, dy) of side ``f`` with the least cost among those within ``r`` blocks of
    ``centre`` (in blocks)."""
    half = max(2, int(math.ceil(extent / (2.0 * f))))
    ai, aj = int(math.floor(anchor[1] / f)), int(math.floor(anchor[0] / f))
    n = 2 * half + 1
    t_values, weights = _blocks(previous, mask, f, ai - half, aj - half, n, n)
    if weights is None or int(weights.sum()) < FULL_WEIGHT:
        weights = np.ones_like(t_values)
    cx, cy = centre
    c_values, _ = _blocks(current, None, f, ai - half - r + cy, aj - half - r + cx, n + 2 * r, n + 2 * r)
    total = int(weights.sum())
    template = total * t_values - int((weights * t_values).sum())
    views = np.lib.stride_tricks.sliding_window_view(c_values, (n, n))  # (2r+1, 2r+1, n, n)
    sums = np.einsum("abij,ij->ab", views, weights)
    costs = np.einsum("abij,ij->ab", np.abs(total * views - sums[:, :, None, None] - template[None, None]), weights)
    d = np.arange(-r, r + 1)
    dist = d[:, None] ** 2 + d[None, :] ** 2
    order = np.lexsort((np.arange(dist.size), dist.ravel(), costs.ravel()))
    dy, dx = divmod(int(order[0]), 2 * r + 1)
    return cx + int(d[dx]), cy + int(d[dy]), costs, dx, dy


def _refine(block: int, f: int, c_minus: int, c_0: int, c_plus: int) -> float:
    """Sub-block position (pixels) of the least cost from the costs of blocks ``block`` - 1,
    ``block``, ``block`` + 1: the vertex of the parabola through them, within half a block.
    One division of two integers, so the browser gets the same double."""
    den = c_minus - 2 * c_0 + c_plus
    if den <= 0:
        return float(block * f)
    num = c_minus - c_plus  # |num| <= den when c_0 is the least, so the vertex is within +-1/2
    return block * f + (f * num) / (2 * den)


def estimate_shift(
    previous: np.ndarray,
    current: np.ndarray,
    mask: np.ndarray | None,
    anchor: tuple[float, float],
    extent: float,
    radius: float,
    cells: int = 32,
) -> tuple[float, float]:
    """How far (dx, dy), in pixels, the object around ``anchor`` moved from ``previous`` to
    ``current`` (HxWx3 uint8 RGB frames of one size); ``mask`` (HxW bool, on ``previous``)
    weights the object's own pixels, ``extent`` is its size in pixels, ``radius`` the largest
    shift searched. See the module docstring for the exact rule."""
    coarse = block_side(extent, max(2, cells // 2))
    cx, cy, _, _, _ = _search(
        previous, current, mask, anchor, extent, coarse, (0, 0), max(1, int(math.ceil(radius / coarse)))
    )
    f = block_side(extent, cells)
    centre = ((cx * coarse) // f, (cy * coarse) // f)
    r = max(1, int(math.ceil(coarse / f)))
    fx, fy, costs, ix, iy = _search(previous, current, mask, anchor, extent, f, centre, r)
    costs = costs.tolist()
    last = 2 * r
    sx = _refine(fx, f, costs[iy][ix - 1], costs[iy][ix], costs[iy][ix + 1]) if 0 < ix < last else float(fx * f)
    sy = _refine(fy, f, costs[iy - 1][ix], costs[iy][ix], costs[iy + 1][ix]) if 0 < iy < last else float(fy * f)
    return sx, sy


def object_shift(state, previous, current, mask, policy) -> tuple[float, float] | None:
    """The image's motion around one followed object between ``previous`` and ``current`` (HxWx3
    uint8 RGB), as the tracker, the camera and the browser measure it: weighted by ``mask`` (the
    object's last mask, HxW bool; None or empty: unweighted), searched within
    :func:`~picosam2.track.policy.motion_radius`. None when ``policy`` follows the mask or a frame
    is missing or of another size."""
    from .policy import motion_radius

    if policy.motion != "image" or previous is None or current is None or previous.shape != current.shape:
        return None
    weights = mask if mask is not None and mask.any() else None
    radius = motion_radius(state, policy)
    return estimate_shift(previous, current, weights, state.anchor, state.extent, radius, policy.motion_cells)
