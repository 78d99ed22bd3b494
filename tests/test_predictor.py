import io

import numpy as np
import pytest
from PIL import Image

from picosam2.image_io import ImageError, load_image
from picosam2.predictor import Predictor, UntrainedWeightsWarning
from picosam2.prompts import PromptError


@pytest.fixture(scope="module")
def predictor(trained_like_model):
    return Predictor(trained_like_model)


def test_predict_on_real_photo_shapes(predictor, samples_dir):
    res = predictor.predict(samples_dir / "dog.jpg", points=[[570, 200], [300, 300]], boxes=[[480, 130, 670, 270]])
    assert res.masks.shape == (3, 534, 800) and res.masks.dtype == bool
    assert res.logits.shape == (3, 96, 96)
    assert res.kinds == ["point", "point", "box"]
    assert len(res.windows) == 3
    # nothing outside a point window can be in its mask
    w = res.windows[0]
    outside = np.ones((534, 800), bool)
    outside[max(w.y0, 0) : w.y1, max(w.x0, 0) : w.x1] = False
    assert not res.masks[0][outside].any()


def test_batched_equals_one_by_one(predictor, samples_dir):
    pts = [[570, 200], [300, 300], [10, 10]]
    together = predictor.predict(samples_dir / "dog.jpg", points=pts)
    for i, p in enumerate(pts):
        alone = predictor.predict(samples_dir / "dog.jpg", points=[p])
        np.testing.assert_allclose(alone.logits[0], together.logits[i], atol=1e-4)


def test_predict_in_given_windows_equals_the_prompt_path(trained_like_model, samples_dir):
    """predict_in runs exactly the windows it is given: a fixed-window click's and a box's
    windows give the click's and the box's masks; bad input is a PromptError."""
    fixed = Predictor(trained_like_model, point_scales=None)
    image = load_image(samples_dir / "dog.jpg")
    ref = fixed.predict(image, points=[[570, 200]], boxes=[[480, 130, 670, 270]])
    got = fixed.predict_in(image, ref.windows[:1])
    np.testing.assert_array_equal(got.logits[0], ref.logits[0])
    assert got.windows == ref.windows[:1] and got.kinds == ["point"] and got.reasons == ["fixed"]
    box = fixed.predict_in(samples_dir / "dog.jpg", ref.windows[1:], kind="box")
    np.testing.assert_array_equal(box.masks[0], ref.masks[1])
    assert box.kinds == ["box"]
    with pytest.raises(PromptError, match="kind"):
        fixed.predict_in(image, ref.windows[:1], kind="lasso")
    with pytest.raises(PromptError, match="at least one window"):
        fixed.predict_in(image, [])


def test_set_image_then_prompt_many_times(predictor, samples_dir):
    predictor.set_image(samples_dir / "truck.jpg")
    a = predictor.predict(points=[[900, 600]])
    b = predictor.predict(points=[900, 600])  # a single point may be given flat
    np.testing.assert_array_equal(a.masks, b.masks)
    assert a.masks.shape == (1, 1200, 1800)


def test_input_kinds_agree(predictor, samples_dir):
    path = samples_dir / "groceries.jpg"
    arr = np.asarray(Image.open(path).convert("RGB"))
    r1 = predictor.predict(path, points=[[400, 250]])
    r2 = predictor.predict(Image.open(path), points=[[400, 250]])
    r3 = predictor.predict(arr, points=[[400, 250]])
    np.testing.assert_array_equal(r1.logits, r2.logits)
    np.testing.assert_array_equal(r1.logits, r3.logits)


def test_bad_prompts(predictor, samples_dir):
    with pytest.raises(PromptError, match="outside"):
        predictor.predict(samples_dir / "dog.jpg", points=[[900, 10]])
    with pytest.raises(PromptError, match="shape"):
        predictor.predict(samples_dir / "dog.jpg", points=[[1, 2, 3]])
    with pytest.raises(PromptError, match="at least one"):
        predictor.predict(samples_dir / "dog.jpg")


def _png_bytes(img: Image.Image, **kw) -> io.BytesIO:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    buf.seek(0)
    return buf


def test_image_modes_are_converted(tmp_path):
    gray = Image.fromarray(np.arange(20 * 30, dtype=np.uint8).reshape(20, 30) % 255)
    assert load_image(gray).shape == (20, 30, 3)
    rgba = Image.new("RGBA", (30, 20), (255, 0, 0, 0))
    assert (load_image(rgba) == 255).all()  # transparent -> white background
    pal = gray.convert("P")
    assert load_image(pal).shape == (20, 30, 3)
    sixteen = Image.fromarray(np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100)
    p = tmp_path / "s16.png"
    sixteen.save(p)
    arr = load_image(p)
    assert arr.shape == (20, 30, 3) and arr.dtype == np.uint8 and arr.max() > 100
    assert load_image(np.zeros((5, 6), np.uint16)).shape == (5, 6, 3)


def test_exif_orientation_is_honoured(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 8, 8))  # a marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    p = tmp_path / "rot.jpg"
    img.save(p, exif=exif, quality=100)
    arr = load_image(p)
    assert arr.shape == (40, 20, 3)
    # turned 90 degrees clockwise, the stored top-left corner is the displayed top-right one
    corners = {
        "top-left": arr[:8, :8],
        "top-right": arr[:8, -8:],
        "bottom-left": arr[-8:, :8],
        "bottom-right": arr[-8:, -8:],
    }
    bright = {name: float(c.mean()) for name, c in corners.items()}
    assert max(bright, key=bright.get) == "top-right", bright
    assert bright["top-right"] > 200 and bright["top-left"] < 50


def test_corrupt_and_missing_images(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8not really a jpeg")
    with pytest.raises(ImageError, match="cannot read"):
        load_image(bad)
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "none.png")
    with pytest.raises(ImageError):
        load_image(np.zeros((4, 4, 2), np.uint8))


def test_untrained_weights_warn(tmp_path):
    import torch

    from picosam2.models import create_model, save_pretrained

    torch.manual_seed(0)
    save_pretrained(create_model(), tmp_path / "w", metadata={"trained": "false"})
    with pytest.warns(UntrainedWeightsWarning):
        Predictor.from_pretrained(tmp_path / "w")


def test_onnx_backend_matches_torch(trained_like_model, tmp_path, samples_dir):
    pytest.importorskip("onnxruntime")
    from picosam2.export.onnx_fp32 import export_onnx

    path = export_onnx(trained_like_model, tmp_path / "m.onnx")
    a = Predictor(trained_like_model).predict(samples_dir / "dog.jpg", points=[[570, 200]], boxes=[[1, 1, 300, 300]])
    b = Predictor.from_pretrained(path, backend="onnx").predict(
        samples_dir / "dog.jpg", points=[[570, 200]], boxes=[[1, 1, 300, 300]]
    )
    np.testing.assert_allclose(a.logits, b.logits, atol=1e-3)


def test_click_options_are_one_object_and_the_old_keywords_map_onto_it(trained_like_model):
    from picosam2.prompts import ClickScales

    assert Predictor(trained_like_model).clicks == ClickScales.fixed(96)  # no recommendation: the paper's click
    p = Predictor(trained_like_model, window_size=128)
    assert p.clicks == ClickScales((128,)) and p.window_size == 128 and p.point_scales is None
    p = Predictor(trained_like_model, point_scales="96,192")
    assert p.clicks.sizes == (96, 192) and p.point_scales == [96, 192]
    p = Predictor(trained_like_model, clicks=ClickScales("auto:3", multimask=True))
    assert p.point_scales == "auto:3" and p.multimask and p.clicks.count((800, 534)) == 3
    p.multimask = False  # still settable one by one
    assert p.clicks == ClickScales("auto:3")
    with pytest.raises(PromptError, match="one size"):
        ClickScales("auto", mode="paper")
    with pytest.raises(PromptError, match="window size must be positive"):
        Predictor(trained_like_model, window_size=0)


def test_window_cap_counts_windows_and_refuses_before_running(trained_like_model, samples_dir):
    from picosam2.predictor import WindowLimitError
    from picosam2.prompts import ClickScales

    calls = []
    p = Predictor(trained_like_model, clicks=ClickScales("auto"), max_windows=20)
    real = p.backend

    class Counting:  # the real backend, counting the windows it runs
        name, config, metadata = real.name, real.config, real.metadata

        def __call__(self, x):
            calls.append(len(x))
            return real(x)

    p.backend = Counting()
    image = load_image(samples_dir / "dog.jpg")
    per_click = len(ClickScales("auto").sides((800, 534)))  # 7 on the 800 x 534 dog
    with pytest.raises(WindowLimitError) as info:
        p.predict(image, points=[[100, 100], [200, 200], [300, 300]], boxes=[[10, 10, 50, 50]])
    err = info.value
    assert (err.windows, err.limit) == (3 * per_click + 1, 20) and not calls
    assert f"costs {3 * per_click + 1} windows (3 clicks x {per_click} window sizes + 1 boxes)" in str(err)
    assert ("auto:4", 13) in err.cheaper and ("fixed", 4) in err.cheaper
    res = p.predict(image, points=[[100, 100], [200, 200]], boxes=[[10, 10, 50, 50]])  # 2 x 7 + 1 = 15
    assert sum(calls) == 2 * per_click + 1 and len(res) == 3
