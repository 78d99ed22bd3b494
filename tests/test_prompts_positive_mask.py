"""The threshold-0 window mask of large windows (``prompts._positive_mask``, read cell by cell;
:func:`~picosam2.prompts.window_mask` takes it from about 470 x 470 pixels)
against the row-by-row computation it replaces (``prompts._upsampled_mask``): the same booleans on
random logits (noise, discs, specks, grids of steps, tiny, the least positive floats, zero,
signed-zero, infinite and NaN logits), square and other logit shapes, and windows inside, across
and around the image."""

from __future__ import annotations

import numpy as np
import pytest

from picosam2.prompts import Window, _positive_mask, _upsampled_mask, paste_mask, window_mask

ODD = np.array([0.0, -0.0, 1e-40, -1e-40, 2.0**-100, 2.0**-99, 1e-30, np.inf, -np.inf, np.nan, 1.0, -1.0, 3e38])


def _logits(rng, kind: int, lh: int, lw: int) -> np.ndarray:
    if kind == 0:
        out = rng.standard_normal((lh, lw))
    elif kind == 1:  # a disc
        yy, xx = np.mgrid[:lh, :lw]
        out = rng.uniform(1, 30) - np.hypot(yy - rng.uniform(0, lh), xx - rng.uniform(0, lw))
    elif kind == 2:  # specks
        out = np.where(rng.random((lh, lw)) < 0.1, 1.0, -1.0)
    elif kind == 3:  # the values where a sign could be lost on the way
        out = rng.choice(ODD, (lh, lw))
    elif kind == 4:  # all tiny
        out = rng.standard_normal((lh, lw)) * 1e-42
    elif kind == 5:  # the least positive floats: their mixes may round to 0
        out = rng.choice(np.array([1, 2, 3], np.float32) * np.float32(2.0**-149), (lh, lw))
    else:  # steps of a quarter: many exact zeros and ties
        out = np.round(rng.standard_normal((lh, lw)) * 2) / 4
    return out.astype(np.float32)


@pytest.mark.parametrize("seed", range(4))
def test_positive_mask_equals_the_row_by_row_mask(seed):
    rng = np.random.default_rng(seed)
    checked = 0
    for trial in range(250):
        lh, lw = (96, 96) if trial % 2 else (int(rng.integers(1, 30)), int(rng.integers(1, 30)))
        logits = _logits(rng, trial % 7, lh, lw)
        width, height = int(rng.integers(lw, 1500)), int(rng.integers(lh, 1500))
        if lh == lw and rng.random() < 0.5:
            height = width
        image = (int(rng.integers(1, 900)), int(rng.integers(1, 900)))
        x0, y0 = int(rng.integers(-width + 1, image[0])), int(rng.integers(-height + 1, image[1]))
        win = Window(x0, y0, x0 + width, y0 + height)
        if (height, width) == (lh, lw):
            continue
        with np.errstate(all="ignore"):
            want = _upsampled_mask(logits, win, image, 0.0)
            for got in (_positive_mask(logits, win, image), window_mask(logits, win, image, 0.0)):
                assert got[0] == want[0]
                assert got[1].dtype == bool and got[1].shape == want[1].shape and np.array_equal(got[1], want[1])
        checked += 1
    assert checked > 200


def test_positive_mask_of_a_large_window_on_the_network_output():
    """A 96 x 96 disc pasted through windows of 100 to 1200 pixels, by and past the border."""
    yy, xx = np.mgrid[:96, :96]
    logits = (30 - np.hypot(yy - 40.3, xx - 55.1)).astype(np.float32)
    for side in (100, 257, 566, 1161):
        for x0, y0 in ((0, 0), (-side // 3, 20), (300, -side // 2)):
            win = Window(x0, y0, x0 + side, y0 + side)
            want = _upsampled_mask(logits, win, (854, 480), 0.0)
            assert np.array_equal(window_mask(logits, win, (854, 480))[1], want[1])
            full = paste_mask(logits, win, (854, 480))
            assert np.array_equal(full[want[0]], want[1]) and full.sum() == want[1].sum()
