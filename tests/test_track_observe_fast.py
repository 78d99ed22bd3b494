"""picosam2.track.policy's observation of a window mask (:func:`observe`, :func:`interior_index`)
against a slow reference written from their rule: the same numbers, bit for bit, on random logits
(noise, discs, specks, full and empty windows, crosses), windows by and past the image border, and
other thresholds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from picosam2.prompts import Window
from picosam2.track import policy as P

# -- the reference: each pixel's four runs counted along its row and column -------------------------------------


def _runs(line) -> list[int]:
    """Per pixel of a line of booleans, the mask pixels from it back to the line's start or the
    last background pixel (0 on background)."""
    out, n = [], 0
    for on in line:
        n = n + 1 if on else 0
        out.append(n)
    return out


def ref_interior_index(mask: np.ndarray) -> tuple[int, int]:
    """Each mask pixel's depth is the shortest of its runs of mask pixels left, right, up and
    down (the array's edge counts as background); of the deepest pixels, the one nearest their
    mean (first in row order on a tie)."""
    m = np.asarray(mask, bool).tolist()
    h, w = len(m), len(m[0])
    depth = [[0] * w for _ in range(h)]
    for r in range(h):
        left, right = _runs(m[r]), _runs(m[r][::-1])[::-1]
        depth[r] = [min(a, b) for a, b in zip(left, right)]
    for c in range(w):
        column = [m[r][c] for r in range(h)]
        up, down = _runs(column), _runs(column[::-1])[::-1]
        for r in range(h):
            depth[r][c] = min(depth[r][c], up[r], down[r])
    depth = np.array(depth)
    rows, cols = np.nonzero(depth == depth.max())
    k = int(np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2))
    return int(rows[k]), int(cols[k])


def ref_observe(logits, window, score, threshold=0.0) -> P.Observation:
    """The observation from the mask's pixel list: area = pixels x window pixels per logit, box,
    interior pixel's centre, mean pixel's centre, share of each window side on the mask."""
    m = np.asarray(logits).reshape(np.asarray(logits).shape[-2:]) > threshold
    if not m.any():
        return P.EMPTY
    x0, y0, x1, y1 = window.as_tuple() if hasattr(window, "as_tuple") else window
    s_h, s_w = m.shape
    kx, ky = (x1 - x0) / s_w, (y1 - y0) / s_h
    ys, xs = np.nonzero(m)
    r, c = ref_interior_index(m)
    return P.Observation(
        area=float(len(xs) * kx * ky),
        box=(
            x0 + int(xs.min()) * kx,
            y0 + int(ys.min()) * ky,
            x0 + (int(xs.max()) + 1) * kx,
            y0 + (int(ys.max()) + 1) * ky,
        ),
        interior=(x0 + (c + 0.5) * kx, y0 + (r + 0.5) * ky),
        centroid=(x0 + (float(xs.mean()) + 0.5) * kx, y0 + (float(ys.mean()) + 0.5) * ky),
        touch=tuple(float(t) for t in (m[:, 0].mean(), m[0, :].mean(), m[:, -1].mean(), m[-1, :].mean())),
        score=1.0 if score is None else float(score),
    )


def _logits(rng, kind: int, h: int, w: int) -> np.ndarray:
    if kind == 0:  # noise: many small parts
        return rng.standard_normal((h, w)).astype(np.float32)
    if kind == 1:  # a disc, anywhere (also cut by the border)
        yy, xx = np.mgrid[:h, :w]
        return (rng.uniform(1, 30) - np.hypot(yy - rng.uniform(0, h), xx - rng.uniform(0, w))).astype(np.float32)
    if kind == 2:  # specks
        return np.where(rng.random((h, w)) < 0.02, 1.0, -1.0).astype(np.float32)
    if kind == 3:  # all on or all off
        return np.full((h, w), rng.choice([-1.0, 1.0]), np.float32)
    out = -np.ones((h, w), np.float32)  # a cross: thin, its deepest pixels tie
    out[rng.integers(0, h), :] = 1
    out[:, rng.integers(0, w)] = 1
    return out


def _fields(obs: P.Observation) -> list:
    """The observation's values with their types (1 and 1.0 differ)."""
    return [(type(v), v) for v in dataclasses.astuple(obs) for v in (v if isinstance(v, tuple) else (v,))]


@pytest.mark.parametrize("seed", range(4))
def test_observe_and_interior_equal_the_reference(seed):
    rng = np.random.default_rng(seed)
    seen = 0
    for trial in range(150):
        h, w = (96, 96) if trial % 3 == 0 else (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
        logits = _logits(rng, trial % 5, h, w)
        if rng.random() < 0.3:
            logits = logits[None, None]  # as the batch hands them
        x0, y0, side = int(rng.integers(-300, 800)), int(rng.integers(-300, 500)), int(rng.integers(1, 900))
        win = (x0, y0, x0 + side, y0 + (int(rng.integers(1, 900)) if rng.random() < 0.3 else side))
        win = Window(*win) if rng.random() < 0.5 else win
        score = None if rng.random() < 0.2 else float(rng.random())
        threshold = 0.0 if rng.random() < 0.8 else float(rng.standard_normal())
        assert _fields(P.observe(logits, win, score, threshold)) == _fields(ref_observe(logits, win, score, threshold))
        m = np.asarray(logits).reshape(h, w) > threshold
        if m.any():
            assert P.interior_index(m) == ref_interior_index(m)
            seen += 1
    assert seen > 50


def test_interior_index_on_large_masks_and_rings():
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:300, :400]
    ring = (np.hypot(yy - 150, xx - 200) < 120) & (np.hypot(yy - 150, xx - 200) > 60)
    blobs = np.zeros((300, 400), bool)
    for _ in range(5):
        blobs |= np.hypot(yy - rng.uniform(0, 300), xx - rng.uniform(0, 400)) < rng.uniform(5, 60)
    for m in (ring, blobs, ring[:, :170], np.ones((3, 400), bool)):
        assert P.interior_index(m) == ref_interior_index(m)
