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

Each frame's side is read only where the rule samples it (a block's samples, not its pixels), in
16-bit integers; a frame may be RGB or its luma plane. The previous frame's side depends on that
frame alone, so a tracker can keep, per object, a :class:`Template` made right after a frame
(:func:`object_template`) instead of the frame, and match it against the next
(:func:`template_shift`): the same shift as :func:`object_shift`, and the template reuses the
block values the frame's own search read when the block sides stay.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

#: weight of a block fully covered by the mask
FULL_WEIGHT = 16


def luma(rgb: np.ndarray) -> np.ndarray:
    """Integer luma (0..255, int32) of an (..., 3) uint8 RGB array."""
    return _luma16(np.asarray(rgb)).astype(np.int32)


_U16 = np.uint16


def _luma16(a: np.ndarray) -> np.ndarray:
    """Integer luma (uint16) of an (..., 3) RGB array of any strides: the largest sum,
    256 * 255 + 128, fits in 16 bits."""
    if a.dtype != np.uint8:
        a = a.astype(_U16)
    y = np.multiply(a[..., 0], _U16(77), dtype=_U16)
    t = np.multiply(a[..., 1], _U16(150), dtype=_U16)
    y += t
    np.multiply(a[..., 2], _U16(29), out=t, dtype=_U16)
    y += t
    y += _U16(128)
    y >>= 8
    return y


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


@functools.lru_cache(maxsize=256)
def _offsets(n: int, f: int, g: int, m: int) -> np.ndarray:
    """Sample offsets from the first block's start, m per block for n blocks (read-only)."""
    offsets = (np.arange(0, n * f, f)[:, None] + np.arange(0, m * g, g)).ravel()
    offsets.flags.writeable = False
    return offsets


def _axis(b0: int, n: int, f: int, g: int, m: int, size: int):
    """The samples of blocks ``b0 .. b0 + n - 1`` along an axis of ``size`` pixels: ``(index,
    inside)``: ``index`` a slice when they are every pixel of a range on the image, else their
    coordinates clamped into the image; ``inside`` (None: all are) whether each lies on it."""
    lo, last = b0 * f, (b0 + n - 1) * f + (m - 1) * g
    if lo >= 0 and last < size:
        if g == 1:  # m == f: every pixel
            return slice(lo, last + 1), None
        return _offsets(n, f, g, m) + lo, None
    coords = _offsets(n, f, g, m) + lo
    inside = (coords >= 0) & (coords < size)
    np.maximum(coords, 0, out=coords)
    np.minimum(coords, size - 1, out=coords)
    return coords, inside


_PIXEL = np.dtype("V3")


def _items(a: np.ndarray) -> np.ndarray:
    """``a`` (HxW, or HxWx3 uint8 with its channels side by side) as an HxW array of items: each
    RGB pixel one 3-byte item, so that picking pixels copies whole items."""
    if a.ndim == 3 and a.dtype == np.uint8 and a.shape[2] == 3 and a.strides[2] == 1:
        return a.view(_PIXEL)[..., 0]
    return a


def _gather(a: np.ndarray, f: int, i0: int, j0: int, n_i: int, n_j: int):
    """The samples of the n_i x n_j blocks of side ``f`` from block (i0, j0) of ``a`` (HxW or
    HxWxC): ``(samples, inside)``, samples an (n_i, m, n_j m[, C]) array (rows t of each block's
    row of blocks, then every block's columns in order), inside (None: all are on the image) an
    (n_i, m, n_j m) bool array."""
    height, width = a.shape[:2]
    g, m = block_samples(f)
    ys, y_in = _axis(i0, n_i, f, g, m, height)
    xs, x_in = _axis(j0, n_j, f, g, m, width)
    items = _items(a)
    if isinstance(xs, slice):
        picked = items[ys, xs]
    else:  # the rows' stretch that holds the columns, then the columns
        lo = int(xs[0])
        picked = items[ys, lo : int(xs[-1]) + 1][:, xs - lo]
    if items is not a:
        picked = picked[..., None].view(np.uint8)
    picked = picked.reshape((n_i, m, n_j * m) + picked.shape[2:])
    inside = None
    if y_in is not None or x_in is not None:
        iy = np.ones(n_i * m, bool) if y_in is None else y_in
        ix = np.ones(n_j * m, bool) if x_in is None else x_in
        inside = (iy[:, None] & ix[None, :]).reshape(n_i, m, n_j * m)
    return picked, inside


def _block_sums(y: np.ndarray, n_j: int, m: int, dtype) -> np.ndarray:
    """Sums (``dtype``) of the m x m tiles of an (n_i, m, n_j m) array."""
    rows = y[:, 0].astype(dtype) if m > 1 else y[:, 0]
    for t in range(1, m):
        rows += y[:, t]
    rows = rows.reshape(rows.shape[0], n_j, m)
    sums = rows[..., 0].copy() if m > 1 else rows[..., 0]
    for u in range(1, m):
        sums += rows[..., u]
    return sums


def _weights(mask: np.ndarray, f: int, i0: int, j0: int, n_i: int, n_j: int) -> np.ndarray:
    """Block weights (int64) of the n_i x n_j blocks from block (i0, j0): FULL_WEIGHT times the
    share of the block's samples on the mask (samples off the image cover nothing)."""
    _, m = block_samples(f)
    covered, inside = _gather(mask, f, i0, j0, n_i, n_j)
    if covered.dtype != np.bool_:
        covered = covered.astype(bool)
    if inside is not None:
        covered = covered & inside
    return FULL_WEIGHT * _block_sums(covered.view(np.uint8), n_j, m, np.uint8).astype(np.int64) // (m * m)


def _blocks(frame: np.ndarray, mask: np.ndarray | None, f: int, i0: int, j0: int, n_i: int, n_j: int):
    """Block values (and weights when ``mask`` is given) of the n_i x n_j blocks starting at block
    (i0, j0) of ``frame`` (HxWx3 RGB, or an HxW luma plane): int64 arrays."""
    _, m = block_samples(f)
    samples, _ = _gather(frame, f, i0, j0, n_i, n_j)
    y = _luma16(samples) if samples.ndim == 4 else samples
    small = y.dtype == np.uint8 or y.dtype == _U16  # a block's sum, at most 7^2 * 255, fits 16 bits
    values = _block_sums(y, n_j, m, _U16 if small else np.int64).astype(np.int64) // (m * m)
    return values, None if mask is None else _weights(mask, f, i0, j0, n_i, n_j)


#: the template blocks up to which the costs' terms are summed as int32: every term, at most
#: 2 * 255 * 16 * blocks in size, fits
_INT32_BLOCKS = 250_000


def _costs(c_values: np.ndarray, t_values: np.ndarray, weights: np.ndarray, r: int) -> np.ndarray:
    """cost(d) for every |dx|, |dy| <= r ((2r + 1)^2 int64): the template's blocks (values
    ``t_values``, ``weights``, n_i x n_j) against the current blocks ``c_values`` ((n_i + 2r) x
    (n_j + 2r))."""
    (n_i, n_j), a = t_values.shape, 2 * r + 1
    total = int(weights.sum())
    template = total * t_values - int((weights * t_values).sum())
    work = np.int32 if t_values.size <= _INT32_BLOCKS else np.int64
    # y_b(d) = N C_{b+d} - (N T_b - S_T); sum_b w_b y_b(d) = N S_C(d), as sum_b w_b (N T_b - S_T) = 0
    scaled = (total * c_values).astype(work)
    s0, s1 = scaled.strides
    views = np.ndarray((a, a, n_i, n_j), work, scaled, 0, (s0, s1, s0, s1))  # views[dy, dx] = window at d
    y = np.subtract(views, template.astype(work)).reshape(a * a, n_i * n_j)
    w = weights.ravel().astype(work)
    s_c = np.einsum("dj,j->d", y, w, dtype=np.int64) // total
    y -= s_c.astype(work)[:, None]
    np.abs(y, out=y)
    return np.einsum("dj,j->d", y, w, dtype=np.int64).reshape(a, a)


def _least(costs: np.ndarray, r: int) -> tuple[int, int]:
    """Index (dx, dy) into the (2r + 1)^2 costs of the least cost; ties go to the smaller |d|^2
    (from the middle), then to the first in row order."""
    flat = costs.ravel()
    ties = np.flatnonzero(flat == flat.min())
    k = int(ties[0])
    if len(ties) > 1:
        d2 = (ties // (2 * r + 1) - r) ** 2 + (ties % (2 * r + 1) - r) ** 2
        k = int(ties[int(np.argmin(d2))])
    dy, dx = divmod(k, 2 * r + 1)
    return dx, dy


@dataclass(frozen=True)
class _Grid:
    """The template's blocks of side ``f`` that weigh anything: the n_i x n_j blocks from block
    (i0, j0), their values and weights (all 1 when the mask gave fewer than FULL_WEIGHT). Blocks of
    weight 0 add nothing to any cost, so the template is cut to the box of those that weigh."""

    f: int
    i0: int
    j0: int
    values: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class Template:
    """The previous frame's side of :func:`estimate_shift` for one object: its blocks around the
    anchor on the coarse and on the fine grid, weighted by its mask. Made once from a frame
    (:func:`make_template`), matched against the next one (:func:`match`); the frame itself need
    not be kept."""

    size: tuple[int, int]  #: (height, width) of the frame it was made from
    extent: float
    cells: int
    coarse: _Grid
    fine: _Grid


@dataclass(frozen=True)
class FrameBlocks:
    """Block values of one frame that :func:`match` computed (per block side: the first block and
    the values), for :func:`make_template` to reuse on the same frame instead of reading it again."""

    frame: np.ndarray
    regions: tuple[tuple[int, int, int, np.ndarray], ...]  #: (f, i0, j0, values)

    def lookup(self, frame: np.ndarray, f: int, i0: int, j0: int, n_i: int, n_j: int) -> np.ndarray | None:
        """The n_i x n_j block values of side ``f`` from block (i0, j0), when known for ``frame``."""
        if frame is not self.frame:
            return None
        for side, a, b, values in self.regions:
            h, w = values.shape
            if side == f and a <= i0 and b <= j0 and i0 + n_i <= a + h and j0 + n_j <= b + w:
                return values[i0 - a : i0 - a + n_i, j0 - b : j0 - b + n_j]
        return None


def _grid(frame, mask, anchor, extent: float, f: int, known: FrameBlocks | None) -> _Grid:
    """The template's blocks of side ``f``: those within ``half`` of the anchor's block, weighted
    by ``mask`` and cut to the box of those that weigh (all of them when unweighted)."""
    half = max(2, int(math.ceil(extent / (2.0 * f))))
    i0, j0 = int(math.floor(anchor[1] / f)) - half, int(math.floor(anchor[0] / f)) - half
    n_i = n_j = 2 * half + 1
    weights = None if mask is None else _weights(mask, f, i0, j0, n_i, n_j)
    if weights is None or int(weights.sum()) < FULL_WEIGHT:
        weights = np.ones((n_i, n_j), np.int64)
    else:  # the box of the blocks that weigh
        rows, cols = np.flatnonzero(weights.any(axis=1)), np.flatnonzero(weights.any(axis=0))
        t, b, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        weights = weights[t:b, left:right]
        i0, j0, n_i, n_j = i0 + t, j0 + left, b - t, right - left
    values = None if known is None else known.lookup(frame, f, i0, j0, n_i, n_j)
    if values is None:
        values, _ = _blocks(frame, None, f, i0, j0, n_i, n_j)
    return _Grid(f, i0, j0, values, weights)


def make_template(
    frame: np.ndarray,
    mask: np.ndarray | None,
    anchor: tuple[float, float],
    extent: float,
    cells: int = 32,
    known: FrameBlocks | None = None,
) -> Template:
    """The :class:`Template` of the object around ``anchor`` (``extent`` pixels across) on
    ``frame`` (HxWx3 uint8 RGB, or an HxW luma plane), weighted by ``mask`` (HxW bool, or None);
    ``known``: the blocks :func:`match` returned for this very frame (reused where they cover the
    template, so that the frame is read once)."""
    coarse = block_side(extent, max(2, cells // 2))
    return Template(
        tuple(frame.shape[:2]),
        float(extent),
        int(cells),
        _grid(frame, mask, anchor, extent, coarse, known),
        _grid(frame, mask, anchor, extent, block_side(extent, cells), known),
    )


def _search(grid: _Grid, current, centre, r):
    """Block shift (dx, dy) of side ``grid.f`` with the least cost among those within ``r``
    blocks of ``centre`` (in blocks), the costs, the index of the least, and the current frame's
    blocks read (f, i0, j0, values)."""
    f, (n_i, n_j) = grid.f, grid.values.shape
    cx, cy = centre
    i0, j0 = grid.i0 - r + cy, grid.j0 - r + cx
    c_values, _ = _blocks(current, None, f, i0, j0, n_i + 2 * r, n_j + 2 * r)
    costs = _costs(c_values, grid.values, grid.weights, r)
    dx, dy = _least(costs, r)
    return cx + dx - r, cy + dy - r, costs, dx, dy, (f, i0, j0, c_values)


def match(template: Template, current: np.ndarray, radius: float) -> tuple[tuple[float, float], FrameBlocks]:
    """How far (dx, dy), in pixels, the template's object moved onto ``current`` (a frame of the
    template's size: HxWx3 uint8 RGB, or an HxW luma plane), searched within ``radius`` pixels;
    and the blocks of ``current`` read on the way (for :func:`make_template` on ``current``)."""
    coarse = template.coarse.f
    cx, cy, _, _, _, seen_coarse = _search(template.coarse, current, (0, 0), max(1, int(math.ceil(radius / coarse))))
    f = template.fine.f
    centre = ((cx * coarse) // f, (cy * coarse) // f)
    r = max(1, int(math.ceil(coarse / f)))
    fx, fy, costs, ix, iy, seen_fine = _search(template.fine, current, centre, r)
    last = 2 * r
    c = costs
    sx = _refine(fx, f, int(c[iy, ix - 1]), int(c[iy, ix]), int(c[iy, ix + 1])) if 0 < ix < last else float(fx * f)
    sy = _refine(fy, f, int(c[iy - 1, ix]), int(c[iy, ix]), int(c[iy + 1, ix])) if 0 < iy < last else float(fy * f)
    return (sx, sy), FrameBlocks(current, (seen_fine, seen_coarse))


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
    ``current`` (frames of one size, each HxWx3 uint8 RGB or an HxW luma plane as :func:`luma`
    gives); ``mask`` (HxW bool, on ``previous``)
    weights the object's own pixels, ``extent`` is its size in pixels, ``radius`` the largest
    shift searched. See the module docstring for the exact rule."""
    return match(make_template(previous, mask, anchor, extent, cells), current, radius)[0]


def object_shift(state, previous, current, mask, policy) -> tuple[float, float] | None:
    """The image's motion around one followed object between ``previous`` and ``current`` (HxWx3
    uint8 RGB), as the tracker, the camera and the browser measure it: weighted by ``mask`` (the
    object's last mask, HxW bool; None or empty: unweighted), searched within
    :func:`~picosam2.track.policy.motion_radius`. None when ``policy`` follows the mask or a frame
    is missing or of another size."""
    from .policy import motion_radius

    if policy.motion != "image" or previous is None or current is None or previous.shape[:2] != current.shape[:2]:
        return None
    weights = mask if mask is not None and mask.any() else None
    radius = motion_radius(state, policy)
    return estimate_shift(previous, current, weights, state.anchor, state.extent, radius, policy.motion_cells)


def object_template(state, frame, mask, policy, known: FrameBlocks | None = None) -> Template | None:
    """What one followed object keeps of ``frame`` (HxWx3 uint8 RGB or an HxW luma plane) for the
    next frame's :func:`template_shift`: the template around ``state`` weighted by ``mask`` (the
    object's mask on this frame; None or empty: unweighted). ``known``: what
    :func:`template_shift` returned on this very frame (its blocks are reused). None when
    ``policy`` follows the mask or there is no frame. With it the next frame's shift is
    :func:`object_shift`'s, without keeping the frame."""
    if policy.motion != "image" or frame is None:
        return None
    weights = mask if mask is not None and mask.any() else None
    return make_template(frame, weights, state.anchor, state.extent, policy.motion_cells, known)


def template_shift(state, template: Template | None, current, policy):
    """The image's motion around one followed object from the frame of ``template`` (made by
    :func:`object_template` with the object's state and mask then) to ``current``, searched within
    :func:`~picosam2.track.policy.motion_radius` of ``state`` (the same state): ``(shift,
    blocks)``, ``blocks`` to hand to :func:`object_template` on ``current``; ``(None, None)`` when
    ``policy`` follows the mask, there is no template or frame, or the frame is of another size."""
    from .policy import motion_radius

    if policy.motion != "image" or template is None or current is None or template.size != current.shape[:2]:
        return None, None
    return match(template, current, motion_radius(state, policy))
