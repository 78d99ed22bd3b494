"""Prompt windows cost work in the image's size, not the prompt's (issue 14), and ordinary
windows give exactly what the whole-window implementation gave."""

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from picosam2 import prompts
from picosam2.prompts import (
    MAX_WINDOW_FACTOR,
    PAD_RGB,
    PromptError,
    Window,
    box_window,
    crop_image,
    crop_mask,
    paste_logits,
    paste_mask,
    point_window,
    window_for_prompt,
    window_mask,
)


# The implementation before issue 14, kept verbatim as the reference: it pads the whole window.
def old_cut(array, win, fill):
    h, w = array.shape[:2]
    out = np.empty((win.height, win.width) + array.shape[2:], dtype=array.dtype)
    out[...] = fill
    sx0, sy0 = max(win.x0, 0), max(win.y0, 0)
    sx1, sy1 = min(win.x1, w), min(win.y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - win.y0 : sy1 - win.y0, sx0 - win.x0 : sx1 - win.x0] = array[sy0:sy1, sx0:sx1]
    return out


def old_crop_image(image, win, out_size=96):
    patch = old_cut(image, win, PAD_RGB)
    if patch.shape[0] != out_size or patch.shape[1] != out_size:
        patch = np.asarray(Image.fromarray(patch).resize((out_size, out_size), Image.BILINEAR))
    return patch


def old_crop_mask(mask, win, out_size=96):
    patch = old_cut(mask.astype(np.uint8), win, 0)
    if patch.shape[0] != out_size or patch.shape[1] != out_size:
        patch = np.asarray(Image.fromarray(patch).resize((out_size, out_size), Image.NEAREST))
    return patch.astype(bool)


def old_paste_logits(logits, win, image_size, fill=-np.inf):
    width, height = image_size
    logits = np.asarray(logits, dtype=np.float32).reshape(logits.shape[-2:])
    if logits.shape != (win.height, win.width):
        logits = np.asarray(Image.fromarray(logits).resize((win.width, win.height), Image.BILINEAR))
    out = np.full((height, width), fill, dtype=np.float32)
    sx0, sy0 = max(win.x0, 0), max(win.y0, 0)
    sx1, sy1 = min(win.x1, width), min(win.y1, height)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0:sy1, sx0:sx1] = logits[sy0 - win.y0 : sy1 - win.y0, sx0 - win.x0 : sx1 - win.x0]
    return out


def random_case(rng, sides=(8, 50, 95, 96, 97, 150, 192, 300, 777)):
    w, h = (int(v) for v in rng.integers(20, 400, 2))
    s = int(rng.choice(sides))
    s2 = s if rng.random() < 0.7 else int(rng.integers(5, 800))
    x0, y0 = int(rng.integers(-s, w)), int(rng.integers(-s2, h))
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = rng.random((h, w)) > 0.5
    logits = rng.normal(size=(96, 96)).astype(np.float32)
    return image, mask, logits, Window(x0, y0, x0 + s, y0 + s2)


def test_ordinary_windows_give_exactly_the_old_results():
    rng = np.random.default_rng(0)
    for _ in range(150):  # inside, across a border, larger than a small image
        image, mask, logits, win = random_case(rng)
        size = (image.shape[1], image.shape[0])
        assert np.array_equal(crop_image(image, win), old_crop_image(image, win)), win
        assert np.array_equal(crop_mask(mask, win), old_crop_mask(mask, win)), win
        assert np.array_equal(paste_logits(logits, win, size), old_paste_logits(logits, win, size)), win
        assert np.array_equal(paste_mask(logits, win, size), old_paste_logits(logits, win, size) > 0), win


def test_bounded_path_matches_padding_the_whole_window(monkeypatch):
    """The path for huge windows (forced here on small ones) equals Pillow's horizontal-then-
    vertical resize of the padded window bit for bit, so at most one grey level from whichever
    order Pillow picks; nearest-neighbour masks are exact, logits within float rounding (Pillow
    reads the resize box of the bounded paste as float32: about 1e-5 on logits of order 1)."""
    monkeypatch.setattr(prompts, "_direct", lambda win, w, h: False)
    rng = np.random.default_rng(1)
    for _ in range(100):
        image, mask, logits, win = random_case(rng, sides=(8, 50, 96, 150, 300, 777, 1500))
        size = (image.shape[1], image.shape[0])
        padded = old_cut(image, win, PAD_RGB)
        two_pass = np.asarray(
            Image.fromarray(padded).resize((96, win.height), Image.BILINEAR).resize((96, 96), Image.BILINEAR)
        )
        new = crop_image(image, win)
        assert np.array_equal(new, two_pass), win
        assert np.abs(new.astype(int) - old_crop_image(image, win)).max() <= 1
        assert np.array_equal(crop_mask(mask, win), old_crop_mask(mask, win)), win
        ref, got = old_paste_logits(logits, win, size), paste_logits(logits, win, size)
        assert np.array_equal(np.isfinite(ref), np.isfinite(got))
        assert np.abs(ref[np.isfinite(ref)] - got[np.isfinite(got)]).max(initial=0) < 1e-4


@pytest.mark.parametrize(
    "win",
    [
        Window(-(10**6), -(10**6), 10**6, 10**6),
        Window(-5 * 10**7, 100, 10**8, 200),
        Window(150, 100, 150 + 10**9, 100 + 10**9),
        Window(10**7, 10**7, 10**7 + 10**6, 10**7 + 10**6),  # misses the image entirely
    ],
)
def test_huge_windows_cost_memory_in_the_image_size(win):
    image = np.random.default_rng(2).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    mask = image[..., 0] > 128
    logits = np.random.default_rng(3).normal(size=(96, 96)).astype(np.float32)
    tracemalloc.start()
    try:
        crop = crop_image(image, win)
        cmask = crop_mask(mask, win)
        pasted = paste_mask(logits, win, (400, 300))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert crop.shape == (96, 96, 3) and cmask.shape == (96, 96) and pasted.shape == (300, 400)
    assert peak < 40e6, peak  # the image is 0.36 MB; the old code asked for terabytes
    if win.x0 >= 400:
        assert (crop == np.array(PAD_RGB, np.uint8)).all() and not cmask.any() and not pasted.any()


def test_windows_are_clamped_where_growing_gains_nothing():
    win = point_window(10, 20, (400, 300), window_size=10**9)
    assert win.width == win.height == MAX_WINDOW_FACTOR * 400
    assert win.x0 + win.width // 2 == 10  # still centred on the point
    win = box_window((0, 0, 1e6, 1e6), (400, 300))
    assert win.width <= 1.2 * 3 * 400 + 1 and win.x0 < 400 and win.x1 > 0
    # ordinary boxes, even reaching out of the image, are unchanged by the clamp
    assert box_window((-50, -20, 120, 90), (400, 300)).as_tuple() == (-67, -67, 137, 137)  # side ceil(170 * 1.2)


def test_window_mask_is_the_in_image_part_of_paste_mask():
    logits = np.random.default_rng(4).normal(size=(96, 96)).astype(np.float32)
    for win in [Window(-40, -30, 56, 66), Window(100, 50, 292, 242), Window(500, 500, 596, 596)]:
        full = paste_mask(logits, win, (300, 200))
        part = window_mask(logits, win, (300, 200))
        if part is None:
            assert not full.any()
            continue
        where, patch = part
        assert patch.shape == full[where].shape and np.array_equal(full[where], patch)
        rest = full.copy()
        rest[where] = False
        assert not rest.any()


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
anything = st.one_of(finite, st.just(float("nan")), st.just(float("inf")), st.just(-float("inf")))
sizes = st.tuples(st.integers(1, 120), st.integers(1, 120))
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_point(x, y, w, h):
    return math.isfinite(x) and math.isfinite(y) and 0 <= x < w and 0 <= y < h


@SETTINGS
@given(size=sizes, x=anything, y=anything, side=st.one_of(st.integers(-5, 10**12), anything))
def test_any_point_gives_an_image_shaped_result_or_prompt_error(size, x, y, side):
    w, h = size
    image = np.full((h, w, 3), 200, np.uint8)
    try:
        win = point_window(x, y, size, window_size=side)
    except PromptError:
        assert not _valid_point(x, y, w, h) or not (isinstance(side, int) or math.isfinite(side)) or side < 1
        return
    assert _valid_point(x, y, w, h)
    assert win.x0 <= x < win.x1 and win.y0 <= y < win.y1
    assert crop_image(image, win).shape == (96, 96, 3)
    assert paste_mask(np.ones((96, 96), np.float32), win, size).shape == (h, w)


@SETTINGS
@given(size=sizes, box=st.tuples(anything, anything, anything, anything))
def test_any_box_gives_an_image_shaped_result_or_prompt_error(size, box):
    w, h = size
    try:
        win = window_for_prompt(box, size, "box")
    except PromptError:
        x0, y0, x1, y1 = box
        ok = all(math.isfinite(v) for v in box) and x0 < x1 and y0 < y1 and x1 > 0 and y1 > 0 and x0 < w and y0 < h
        assert not ok
        return
    image = np.zeros((h, w, 3), np.uint8)
    assert crop_image(image, win).shape == (96, 96, 3)
    assert crop_mask(np.ones((h, w), bool), win).shape == (96, 96)
    assert paste_logits(np.zeros((96, 96)), win, size).shape == (h, w)


@SETTINGS
@given(
    size=sizes,
    x0=st.integers(-(10**9), 10**9),
    y0=st.integers(-(10**9), 10**9),
    ww=st.integers(1, 10**9),
    wh=st.integers(1, 10**9),
)
def test_any_window_crops_and_pastes_to_fixed_shapes(size, x0, y0, ww, wh):
    w, h = size
    win = Window(x0, y0, x0 + ww, y0 + wh)
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    crop = crop_image(image, win)
    assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8
    assert crop_mask(image[..., 0] > 100, win).shape == (96, 96)
    pasted = paste_logits(np.zeros((96, 96), np.float32), win, size)
    assert pasted.shape == (h, w)
    inside = np.zeros((h, w), bool)
    inside[max(y0, 0) : max(min(y0 + wh, h), 0), max(x0, 0) : max(min(x0 + ww, w), 0)] = True
    assert (pasted[inside] == 0).all() and np.isneginf(pasted[~inside]).all()


def test_batched_crops_equal_one_by_one():
    """``crop_images`` (the predictor's path: one Pillow image, Pillow cuts and pads) gives the
    same bytes as ``crop_image`` per window: inside, across borders, off the image, up to twice
    the image's pixels (cut whole) and beyond (the bounded path)."""
    from picosam2.prompts import crop_images

    rng = np.random.default_rng(2)
    for _ in range(20):
        image, _, _, _ = random_case(rng)
        h, w = image.shape[:2]
        wins = []
        for _ in range(12):
            side = int(rng.integers(1, 3 * max(h, w)))
            x0, y0 = (int(v) for v in rng.integers(-side, max(w, h) + 1, 2))
            wins.append(Window(x0, y0, x0 + side, y0 + side))
        got = crop_images(image, wins)
        assert got.shape == (len(wins), 96, 96, 3) and got.dtype == np.uint8
        for g, win in zip(got, wins):
            assert np.array_equal(g, crop_image(image, win)), win


def _smooth_photo(rng, h, w):
    """A photo-like image (smooth structure plus fine noise), where box-reducing before the
    bilinear resize moves pixels a little, as on real photos."""
    coarse = rng.integers(0, 256, (max(h // 40, 2), max(w // 40, 2), 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR)).astype(np.int16)
    return np.clip(base + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)


def test_reduced_crops_stay_close_to_exact_and_bounded():
    """``crop_images(..., reducing_gap=2)`` (the predictor's default) is exact for windows up to
    four times the model input, within about a grey level on average beyond, and cuts even a
    window a thousand times the image from a small box-reduced copy."""
    from picosam2.prompts import crop_images

    rng = np.random.default_rng(5)
    image = _smooth_photo(rng, 900, 1300)
    h, w = image.shape[:2]
    for x, y in [(650, 450), (5, 5), (1290, 890), (40, 800)]:
        wins = point_windows_for(x, y, (w, h), [96, 150, 384, 385, 700, 1300, 2600])
        fast, exact = crop_images(image, wins, reducing_gap=2.0), crop_images(image, wins)
        for win, f, e in zip(wins, fast, exact):
            diff = np.abs(f.astype(int) - e)
            if win.width <= 4 * 96:
                assert np.array_equal(f, e), win
            else:
                assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 8, (win, diff.mean())
    huge = Window(-(10**6), -(10**6), 10**6, 10**6)
    tracemalloc.start()
    try:
        crop = crop_images(image, [huge], reducing_gap=2.0)[0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40e6 and np.abs(crop.astype(int) - crop_image(image, huge)).max() <= 2


def point_windows_for(x, y, size, sides):
    return [point_window(x, y, size, window_size=s) for s in sides]


@pytest.mark.parametrize("threshold", [0.0, 0.4, -0.7])
def test_band_thresholded_masks_equal_thresholding_pillows_resize(threshold):
    """``window_mask`` of a window larger than the logits fills each band of rows from its taps'
    signs and computes only the edge: the same pixels as thresholding Pillow's full float resize,
    except where a logit lies within float rounding of the threshold."""
    rng = np.random.default_rng(6)
    for _ in range(60):
        k = int(rng.integers(3, 48))
        noise = rng.normal(size=(k, k)).astype(np.float32)
        logits = np.asarray(Image.fromarray(noise).resize((96, 96), Image.BILINEAR))
        w, h = (int(v) for v in rng.integers(50, 1500, 2))
        side = int(rng.integers(96, 3 * max(w, h)))
        win = point_window(rng.uniform(0, w), rng.uniform(0, h), (w, h), window_size=side)
        got = window_mask(logits, win, (w, h), threshold)
        ref = old_paste_logits(logits, win, (w, h))
        full = np.zeros((h, w), bool)
        full[got[0]] = got[1]
        wrong = full != (ref > threshold)
        assert np.all(np.abs(ref[wrong] - threshold) < 1e-5), win
        assert wrong.sum() <= 3


@pytest.mark.timing
@pytest.mark.parametrize("win", [Window(-(10**6), -(10**6), 10**6, 10**6), Window(150, 100, 150 + 10**9, 100 + 10**9)])
def test_huge_windows_cost_time_in_the_image_size(win):
    """A window of 10^12 or 10^18 pixels costs about what a window twice the image's side does."""
    from timing import assert_ratio, best_of

    image = np.random.default_rng(2).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    mask = image[..., 0] > 128
    logits = np.random.default_rng(3).normal(size=(96, 96)).astype(np.float32)

    def run(w):
        return lambda: (crop_image(image, w), crop_mask(mask, w), paste_mask(logits, w, (400, 300)))

    reference = best_of(run(Window(-200, -150, 600, 450)))
    assert_ratio(best_of(run(win)), reference, 5.0, f"crop and paste of {win}")
