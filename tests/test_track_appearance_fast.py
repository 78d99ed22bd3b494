"""picosam2.track.appearance's colour histogram against a per-pixel reference written from the
module's rule: the same counts on random pixels (views and contiguous frames, RGBA, masks of any
share, bool and 0/1 masks), and on windows of a frame read on the grid as the tracker reads them."""

from __future__ import annotations

import numpy as np
import pytest

from picosam2.track import appearance as A


def ref_histogram(pixels, mask=None):
    """One pixel at a time: s = R + G + B + 1, bin = (min(12 R // s, 7) * 8 + min(12 G // s, 7)) * 4
    + (max(R, G, B) * 4 >> 8)."""
    px = np.asarray(pixels)
    keep = np.ones(px.shape[:-1], bool) if mask is None else np.asarray(mask, bool)
    counts = np.zeros(A.BINS, np.int64)
    for r, g, b in px[keep][:, :3].tolist():
        s = r + g + b + 1
        counts[(min(12 * r // s, 7) * 8 + min(12 * g // s, 7)) * 4 + (max(r, g, b) * 4 >> 8)] += 1
    return counts if counts.sum() else None


@pytest.mark.parametrize("seed", range(3))
def test_histogram_equals_the_reference(seed):
    rng = np.random.default_rng(seed)
    for trial in range(120):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        image = rng.integers(0, 256, (h, w, 4 if trial % 7 == 0 else 3), dtype=np.uint8)
        if trial % 5 == 0:  # dark and grey pixels: the value levels and the sum's floor
            image //= np.uint8(rng.integers(1, 40))
        if trial % 3 == 0:
            image = image[::2, 1::3]
        m = rng.random(image.shape[:2]) < rng.random()
        for mask in (m, m.astype(np.uint8), None):
            got, want = A.histogram(image, mask), ref_histogram(image, mask)
            assert (got is None) == (want is None)
            if got is not None:
                assert got.dtype == np.int64 and np.array_equal(got, want)


def test_window_histogram_reads_the_grid_of_the_window():
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    for _ in range(40):
        y0, x0 = (int(v) for v in rng.integers(0, 60, 2))
        y1, x1 = y0 + int(rng.integers(1, 60)), x0 + int(rng.integers(1, 140))
        part = ((slice(y0, y1), slice(x0, x1)), rng.random((y1 - y0, x1 - x0)) < 0.4)
        step = int(rng.integers(1, 6))
        ys, xs = np.nonzero(part[1])
        on_grid = ((ys + y0) % step == 0) & ((xs + x0) % step == 0)
        want = ref_histogram(frame[ys[on_grid] + y0, xs[on_grid] + x0][None])
        got = A.window_histogram(frame, part, step)
        assert (got is None) == (want is None) and (got is None or np.array_equal(got, want))
