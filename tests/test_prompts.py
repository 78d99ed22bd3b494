import numpy as np
import pytest

from picosam2.prompts import (
    MODEL_SIZE,
    PAD_RGB,
    PromptError,
    Window,
    box_window,
    crop_image,
    crop_mask,
    paste_logits,
    paste_mask,
    point_window,
)


def coord_image(w, h):
    """Image whose pixel (x, y) stores x in R and y in G (mod 256) and 7 in B."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (np.arange(w)[None, :] % 256).astype(np.uint8)
    img[..., 1] = (np.arange(h)[:, None] % 256).astype(np.uint8)
    img[..., 2] = 7
    return img


@pytest.mark.parametrize("x,y", [(150.3, 100.9), (0, 0), (299.5, 199.5), (5, 190), (10, 3)])
def test_centered_point_window_keeps_point_at_centre(x, y):
    img = coord_image(300, 200)
    win = point_window(x, y, (300, 200))
    assert (win.width, win.height) == (MODEL_SIZE, MODEL_SIZE)
    crop = crop_image(img, win)
    c = MODEL_SIZE // 2
    assert crop[c, c, 0] == int(x) % 256 and crop[c, c, 1] == int(y) % 256
    assert win.to_window_coords(int(x), int(y)) == (c, c)
    # outside the image: padding colour, inside: the image
    for v in range(MODEL_SIZE):
        for u in (0, MODEL_SIZE - 1):
            ix, iy = win.x0 + u, win.y0 + v
            inside = 0 <= ix < 300 and 0 <= iy < 200
            expect = img[iy, ix] if inside else np.array(PAD_RGB)
            assert (crop[v, u] == expect).all()


def test_point_window_rejects_outside_and_nan():
    for x, y in [(-1, 5), (300, 5), (5, 200), (float("nan"), 1)]:
        with pytest.raises(PromptError):
            point_window(x, y, (300, 200))


def test_paper_mode_slides_at_left_top_and_clips_and_stretches_at_right_bottom():
    img = coord_image(300, 200)
    # reference crop: x0 = max(0, x - 48), x1 = min(W, x0 + 96): at the left/top border the
    # window slides into the image, full size, the point off-centre and nothing stretched
    win = point_window(10, 20, (300, 200), mode="paper")
    assert win.as_tuple() == (0, 0, 96, 96)
    assert win.to_window_coords(10, 20) == (10, 20)
    # at the right/bottom border it is clipped and the clipped rectangle stretched to 96
    win = point_window(290, 180, (300, 200), mode="paper")
    assert win.as_tuple() == (242, 132, 300, 200)
    crop = crop_image(img, win)
    assert crop.shape == (96, 96, 3)
    # the stretch maps window corners to crop corners: no padding colour anywhere
    assert (crop[..., 2] == 7).all()
    # the point is no longer at the centre: it sits where the stretch put it
    u, v = win.to_window_coords(290, 180)
    assert (u, v) == (48 * 96 / 58, 48 * 96 / 68)
    # interior point: identical to the centred window
    assert point_window(150, 100, (300, 200), mode="paper") == point_window(150, 100, (300, 200))


def test_larger_window_is_resized_to_model_input():
    img = coord_image(400, 400)
    win = point_window(200, 200, (400, 400), window_size=192)
    assert (win.width, win.height) == (192, 192)
    crop = crop_image(img, win)
    assert crop.shape == (96, 96, 3)
    # column u of the crop shows image columns near x0 + 2u (bilinear average of two)
    assert abs(int(crop[48, 48, 0]) - 200) <= 1


def test_box_window_is_padded_square_around_box():
    win = box_window((100, 50, 160, 90), (400, 300), padding=0.1)
    assert win.width == win.height == 72
    cx, cy = (win.x0 + win.x1) / 2, (win.y0 + win.y1) / 2
    assert abs(cx - 130) <= 1 and abs(cy - 70) <= 1
    assert win.x0 <= 100 and win.x1 >= 160 and win.y0 <= 50 and win.y1 >= 90
    for bad in [(10, 10, 5, 20), (500, 10, 600, 20), (1, 2, 3)]:
        with pytest.raises(PromptError):
            box_window(bad, (400, 300))


@pytest.mark.parametrize(
    "size,win",
    [
        ((300, 200), Window(100, 50, 196, 146)),  # inside
        ((300, 200), Window(-40, -30, 56, 66)),  # top-left border
        ((300, 200), Window(250, 150, 346, 246)),  # bottom-right border
        ((60, 40), Window(-18, -28, 78, 68)),  # image smaller than the window
    ],
)
def test_crop_paste_round_trip_96(size, win):
    w, h = size
    rng = np.random.default_rng(1)
    mask = rng.random((h, w)) > 0.5
    crop = crop_mask(mask, win)
    logits = np.where(crop, 5.0, -5.0).astype(np.float32)
    back = paste_mask(logits, win, size)
    inside = np.zeros((h, w), bool)
    inside[max(win.y0, 0) : min(win.y1, h), max(win.x0, 0) : min(win.x1, w)] = True
    assert (back[inside] == mask[inside]).all()
    assert not back[~inside].any()


def test_paste_back_resizes_non_96_windows():
    # an object of 100x100 px, seen through a 192 px window and pasted back
    w = h = 300
    mask = np.zeros((h, w), bool)
    mask[100:200, 100:200] = True
    win = point_window(150, 150, (w, h), window_size=192)
    crop = crop_mask(mask, win)
    assert crop.sum() == pytest.approx(50 * 50, rel=0.05)
    back = paste_mask(np.where(crop, 4.0, -4.0), win, (w, h))
    inter = (back & mask).sum()
    union = (back | mask).sum()
    assert inter / union > 0.95


def test_paper_window_round_trip_at_border():
    mask = np.zeros((200, 300), bool)
    mask[0:30, 0:40] = True
    win = point_window(10, 10, (300, 200), mode="paper")
    crop = crop_mask(mask, win)
    back = paste_mask(np.where(crop, 4.0, -4.0), win, (300, 200))
    assert (back & mask).sum() / (back | mask).sum() > 0.9
    assert not back[:, win.x1 :].any()


def test_paste_logits_fill():
    out = paste_logits(np.zeros((96, 96)), Window(0, 0, 96, 96), (200, 100), fill=-7.0)
    assert out.shape == (100, 200)
    assert (out[:96, :96] == 0).all() and (out[:, 96:] == -7).all() and (out[96:, :] == -7).all()
