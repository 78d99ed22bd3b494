"""picosam2.track.motion's vectorised shift against a slow reference written from the module's
rule (its docstring): the same doubles, bit for bit, on random frames, masks, anchors by and past
the border, tiny and large extents, small and large search radii, RGB frames (contiguous or
views) and luma planes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from picosam2.track import motion as M

# -- the reference: written from the rule, one displacement at a time ----------------------------------------


def ref_luma(rgb: np.ndarray) -> np.ndarray:
    """Y = (77 R + 150 G + 29 B + 128) >> 8, in int64."""
    a = np.asarray(rgb, np.int64)
    return (77 * a[..., 0] + 150 * a[..., 1] + 29 * a[..., 2] + 128) >> 8


def ref_blocks(y: np.ndarray, mask, f: int, i0: int, j0: int, n: int):
    """Values and weights of the n x n blocks of side f from block (i0, j0): block (i, j) is read
    at its m x m samples (j f + u g, i f + t g), clamped into the image; its value is the floor of
    the samples' mean luma, its weight floor(16 * covered samples / m^2), samples off the image
    covering nothing."""
    h, w = y.shape
    g = max(1, f // 4)
    m = f // g
    ys = (np.arange(i0, i0 + n) * f)[:, None] + np.arange(m) * g  # (block, t)
    xs = (np.arange(j0, j0 + n) * f)[:, None] + np.arange(m) * g  # (block, u)
    yc, xc = np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)
    samples = y[yc[:, :, None, None], xc[None, None, :, :]]  # (i, t, j, u)
    values = samples.sum(axis=(1, 3)) // (m * m)
    if mask is None:
        return values, None
    on = ((ys >= 0) & (ys < h))[:, :, None, None] & ((xs >= 0) & (xs < w))[None, None, :, :]
    covered = (mask[yc[:, :, None, None], xc[None, None, :, :]] & on).sum(axis=(1, 3))
    return values, 16 * covered // (m * m)


def ref_search(prev_y, cur_y, mask, anchor, extent, f, centre, r):
    """The least-cost block shift within r blocks of ``centre``; also the costs by shift
    (relative to ``centre``)."""
    half = max(2, math.ceil(extent / (2 * f)))
    ai, aj = math.floor(anchor[1] / f), math.floor(anchor[0] / f)
    n = 2 * half + 1
    tv, tw = ref_blocks(prev_y, mask, f, ai - half, aj - half, n)
    if tw is None or tw.sum() < 16:
        tw = np.ones_like(tv)
    n_w, s_t = int(tw.sum()), int((tw * tv).sum())
    # the current frame's blocks over every shift searched: block (i, j) at [i - i0, j - j0]
    i0, j0 = ai - half + centre[1] - r, aj - half + centre[0] - r
    region, _ = ref_blocks(cur_y, None, f, i0, j0, n + 2 * r)
    costs = {}
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            cv = region[dy + r : dy + r + n, dx + r : dx + r + n]
            s_c = int((tw * cv).sum())
            costs[(dx, dy)] = int((tw * np.abs(n_w * cv - s_c - (n_w * tv - s_t))).sum())
    # least cost, then the smaller |d|^2, then the first in row order (dy, then dx)
    dx, dy = min(costs, key=lambda d: (costs[d], d[0] ** 2 + d[1] ** 2, d[1], d[0]))
    return (centre[0] + dx, centre[1] + dy), (dx, dy), costs


def ref_vertex(d: int, f: int, c_minus: int, c_0: int, c_plus: int) -> float:
    den = c_minus - 2 * c_0 + c_plus
    if den <= 0:
        return float(f * d)
    return f * d + (f * (c_minus - c_plus)) / (2 * den)


def ref_shift(previous, current, mask, anchor, extent, radius, cells=32):
    prev_y = ref_luma(previous) if previous.ndim == 3 else np.asarray(previous, np.int64)
    cur_y = ref_luma(current) if current.ndim == 3 else np.asarray(current, np.int64)
    coarse = max(1, math.floor(extent / max(2, cells // 2)))
    (cx, cy), _, _ = ref_search(prev_y, cur_y, mask, anchor, extent, coarse, (0, 0), max(1, math.ceil(radius / coarse)))
    f = max(1, math.floor(extent / cells))
    r = max(1, math.ceil(coarse / f))
    (fx, fy), (dx, dy), costs = ref_search(
        prev_y, cur_y, mask, anchor, extent, f, ((cx * coarse) // f, (cy * coarse) // f), r
    )
    sx = ref_vertex(fx, f, costs[(dx - 1, dy)], costs[(dx, dy)], costs[(dx + 1, dy)]) if abs(dx) < r else float(fx * f)
    sy = ref_vertex(fy, f, costs[(dx, dy - 1)], costs[(dx, dy)], costs[(dx, dy + 1)]) if abs(dy) < r else float(fy * f)
    return sx, sy


# -- random cases ---------------------------------------------------------------------------------


def _smooth(rng, h, w):
    coarse = rng.integers(0, 256, (int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR)).astype(np.int16)
    return np.clip(big + rng.integers(-8, 9, big.shape), 0, 255).astype(np.uint8)


def _case(rng, k):
    """A frame pair (the second the first moved, brightened and re-noised), a mask, an anchor
    (every fourth by or past the border), an extent, a radius and the cells."""
    h, w = int(rng.integers(24, 120)), int(rng.integers(24, 150))
    pad = 30
    big = _smooth(rng, h + 2 * pad, w + 2 * pad)
    dx, dy = (int(v) for v in rng.integers(-pad, pad + 1, 2))
    previous = big[pad : pad + h, pad : pad + w]  # a view, as the tracker's frames often are
    current = big[pad - dy : pad - dy + h, pad - dx : pad - dx + w].astype(np.int16)
    current = np.clip(current + int(rng.integers(-25, 26)) + rng.integers(-4, 5, current.shape), 0, 255)
    current = current.astype(np.uint8)
    if k % 2:
        previous = np.ascontiguousarray(previous)
    if k % 4 == 0:
        anchor = (float(rng.choice([rng.uniform(-12, 6), rng.uniform(w - 6, w + 12)])), float(rng.uniform(-12, h + 12)))
    else:
        anchor = (float(rng.uniform(0, w)), float(rng.uniform(0, h)))
    extent = float(rng.choice([rng.uniform(0.5, 6), rng.uniform(6, 40), rng.uniform(40, 2.5 * max(h, w))]))
    radius = float(rng.choice([rng.uniform(0.1, 3), rng.uniform(3, 30), rng.uniform(30, 150)]))
    cells = int(rng.choice([2, 3, 5, 8, 16, 31, 32, 64]))
    radius = min(radius, 30 * max(1, math.floor(extent / max(2, cells // 2))))  # at most 30 coarse blocks
    kind = k % 5
    yy, xx = np.mgrid[0:h, 0:w]
    if kind == 0:
        mask = None
    elif kind == 1:
        mask = np.zeros((h, w), bool)
    elif kind == 2:
        rx, ry = max(1.0, extent / 2 * rng.uniform(0.4, 1.2)), max(1.0, extent / 2 * rng.uniform(0.4, 1.2))
        mask = ((xx - anchor[0]) / rx) ** 2 + ((yy - anchor[1]) / ry) ** 2 < 1
    elif kind == 3:
        mask = rng.random((h, w)) < rng.uniform(0.05, 0.9)  # scattered pixels: partial weights
    else:
        mask = np.zeros((h, w), bool)  # a speck, below the weight floor
        mask[int(rng.integers(0, h)), int(rng.integers(0, w))] = True
    return previous, current, mask, anchor, extent, radius, cells


CASES = 360


@pytest.mark.parametrize("seed", range(3))
def test_fast_shift_is_the_reference_bit_for_bit(seed):
    rng = np.random.default_rng(1000 + seed)
    moved = fractional = clamped = 0
    for k in range(CASES // 3):
        previous, current, mask, anchor, extent, radius, cells = _case(rng, k)
        want = ref_shift(previous, current, mask, anchor, extent, radius, cells)
        got = M.estimate_shift(previous, current, mask, anchor, extent, radius, cells)
        assert got == want, (k, anchor, extent, radius, cells)  # exact doubles, not close
        assert all(type(v) is float for v in got)
        moved += got != (0.0, 0.0)
        fractional += any(v != int(v) for v in got)
        clamped += k % 4 == 0
    assert moved > CASES // 6 and fractional > 0 and clamped > 0  # real shifts, sub-block vertices seen


def test_luma_planes_and_rgb_give_the_same_shift():
    """A caller may hand luma planes (HxW, any integer type) for either frame, converted once per
    frame: the same shift as from the RGB frames."""
    rng = np.random.default_rng(7)
    for k in range(24):
        previous, current, mask, anchor, extent, radius, cells = _case(rng, k)
        want = M.estimate_shift(previous, current, mask, anchor, extent, radius, cells)
        yp, yc = M.luma(previous), M.luma(current)
        pairs = [(yp, yc), (yp.astype(np.uint8), current), (previous, yc.astype(np.int64)), (yp.astype(np.int16), yc)]
        for p, c in pairs:
            assert M.estimate_shift(p, c, mask, anchor, extent, radius, cells) == want


def test_frames_of_480p_with_the_tracker_radius():
    """Full-size frames as the tracker sees them: extents from 60 px to past the frame, the
    radius motion_radius gives (0.15 extent plus the speed), objects by the border."""
    rng = np.random.default_rng(11)
    h, w = 480, 854
    big = _smooth(rng, h + 80, w + 80)
    yy, xx = np.mgrid[0:h, 0:w]
    for extent, anchor, (dx, dy) in [
        (60.0, (427.3, 240.6), (5, -3)),
        (150.0, (80.2, 400.9), (-9, 4)),
        (300.0, (700.5, 100.5), (14, 11)),
        (620.0, (430.0, 230.0), (-20, 7)),
    ]:
        previous = big[40 : 40 + h, 40 : 40 + w]
        current = big[40 - dy : 40 - dy + h, 40 - dx : 40 - dx + w]
        mask = ((xx - anchor[0]) / (extent / 2)) ** 2 + ((yy - anchor[1]) / (extent / 3)) ** 2 < 1
        radius = 0.15 * extent + float(rng.uniform(0, 12))
        got = M.estimate_shift(previous, current, mask, anchor, extent, radius, 32)
        assert got == ref_shift(previous, current, mask, anchor, extent, radius, 32), extent
        assert abs(got[0] - dx) <= max(2.0, extent / 32) and abs(got[1] - dy) <= max(2.0, extent / 32)


def test_luma_is_the_integer_formula():
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (37, 41, 3), dtype=np.uint8)
    rgb[0, :8] = [
        [0, 0, 0],
        [255, 255, 255],
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
        [1, 2, 3],
        [254, 1, 128],
        [7, 7, 7],
    ]
    y = M.luma(rgb)
    assert y.dtype == np.int32 and np.array_equal(y, ref_luma(rgb))
    assert np.array_equal(M.luma(rgb[::2, 1::3]), ref_luma(rgb[::2, 1::3]))  # any strides


def test_object_shift_takes_a_luma_plane_for_either_frame():
    from picosam2.track import TrackPolicy
    from picosam2.track import policy as P

    rng = np.random.default_rng(5)
    previous, current, mask, anchor, extent, radius, cells = _case(rng, 2)
    policy = TrackPolicy()
    state = P.TrackState(anchor=anchor, extent=extent, velocity=(0.0, 0.0))
    want = M.object_shift(state, previous, current, mask, policy)
    assert want is not None
    assert M.object_shift(state, M.luma(previous), current, mask, policy) == want
    assert M.object_shift(state, previous, M.luma(current), mask, policy) == want
    assert M.object_shift(state, previous[1:], current, mask, policy) is None  # another size
    assert M.object_shift(state, None, current, mask, policy) is None


def test_templates_kept_between_frames_give_object_shift():
    """A tracker that keeps, per object, the template of the last frame (made right after that
    frame, reusing the blocks the frame's own search read) instead of the frame gets the very
    shifts object_shift gives from the kept frame; the blocks are reused while the block sides
    stay, and never across frames."""
    from picosam2.track import TrackPolicy
    from picosam2.track import policy as P

    rng = np.random.default_rng(9)
    h, w = 120, 160
    big = _smooth(rng, h + 80, w + 80)
    policy = TrackPolicy()
    yy, xx = np.mgrid[0:h, 0:w]
    state = P.TrackState(anchor=(80.0, 60.0), extent=64.0)
    frames, pos = [], np.array([40, 40])
    for _ in range(10):
        pos = np.clip(pos + rng.integers(-5, 6, 2), 0, 80)
        frames.append(np.ascontiguousarray(big[pos[1] : pos[1] + h, pos[0] : pos[0] + w]))
    mask = ((xx - 80) / 30) ** 2 + ((yy - 60) / 20) ** 2 < 1
    template = M.object_template(state, frames[0], mask, policy)
    previous, reused = frames[0], 0
    for k, frame in enumerate(frames[1:], 1):
        shift, seen = M.template_shift(state, template, frame, policy)
        assert shift == M.object_shift(state, previous, frame, mask, policy)
        # the next state: moved by the shift, the extent steady for a while, then growing
        extent = state.extent if k < 6 else state.extent * 1.07
        state = P.TrackState(anchor=(state.anchor[0] + shift[0], state.anchor[1] + shift[1]), extent=extent)
        mask = np.roll(mask, (round(shift[1]), round(shift[0])), axis=(0, 1)) if k % 3 else np.zeros_like(mask)
        template = M.object_template(state, frame, mask, policy, known=seen)
        fresh = M.object_template(state, frame, mask, policy)
        for grid, want in ((template.coarse, fresh.coarse), (template.fine, fresh.fine)):
            assert (grid.f, grid.i0, grid.j0) == (want.f, want.i0, want.j0)
            assert np.array_equal(grid.values, want.values) and np.array_equal(grid.weights, want.weights)
            reused += seen.lookup(frame, grid.f, grid.i0, grid.j0, *grid.values.shape) is not None
            assert seen.lookup(frame.copy(), grid.f, grid.i0, grid.j0, *grid.values.shape) is None  # another frame
        previous = frame
    assert reused >= 3
    assert M.template_shift(state, template, frames[0][1:], policy) == (None, None)  # another size
    assert M.template_shift(state, None, frames[0], policy) == (None, None)
    assert M.object_template(state, frames[0], mask, TrackPolicy(motion="mask")) is None


def test_a_template_from_luma_matches_an_rgb_frame():
    rng = np.random.default_rng(13)
    for k in range(12):
        previous, current, mask, anchor, extent, radius, cells = _case(rng, k)
        want = M.estimate_shift(previous, current, mask, anchor, extent, radius, cells)
        template = M.make_template(M.luma(previous), mask, anchor, extent, cells)
        got, seen = M.match(template, current, radius)
        assert got == want
        again = M.make_template(current, mask, anchor, extent, cells, known=seen)
        assert all(
            np.array_equal(
                getattr(again, g).values, getattr(M.make_template(current, mask, anchor, extent, cells), g).values
            )
            for g in ("coarse", "fine")
        )
