"""End to end in headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no browser
download): the page loads, a click on a sample photo shows its mask, boxes / shift-click / undo /
clear / upload work, and the in-browser (onnxruntime-web) path cuts the same windows as the
server and gives the same mask up to quantisation at the edges."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "Debian chromium is not installed at /usr/bin/chromium (apt-get install chromium, or "
        "scripts/install_system_deps.sh as root)",
        allow_module_level=True,
    )

from playwright.sync_api import sync_playwright  # noqa: E402

from picosam2 import Predictor  # noqa: E402
from picosam2.demo.app import VENDOR_DIR, create_app  # noqa: E402
from picosam2.demo.server import ServerThread  # noqa: E402
from picosam2.predictor import normalize_batch  # noqa: E402
from picosam2.prompts import (  # noqa: E402
    PAD_RGB,
    auto_point_scales,
    box_window,
    crop_image,
    paste_logits,
    point_window,
)
from test_demo_api import DOG_POINT, contrast_model, quality_model  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def predictor(trained_like_model):
    return Predictor(contrast_model(trained_like_model))


@pytest.fixture(scope="module")
def server_url(predictor, tmp_path_factory):
    app = create_app(predictor=predictor, trained=False, model_cache_dir=tmp_path_factory.mktemp("models"))
    with ServerThread(app) as url:
        yield url


@pytest.fixture(scope="module")
def scale_server(tmp_path_factory):
    """A quality-head model with scale-aware clicks; fp32 in the browser, so both sides choose alike."""
    predictor = Predictor(quality_model(), point_scales="auto")
    app = create_app(
        predictor=predictor, trained=False, model_cache_dir=tmp_path_factory.mktemp("qmodels"), browser_model="fp32"
    )
    with ServerThread(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def new_page(browser, url):
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_function("() => window.picosam2Demo && window.picosam2Demo.ready")
    page.errors = errors
    return context, page


@pytest.fixture
def page(browser, server_url, tmp_path):
    context, page = new_page(browser, server_url)
    yield page
    context.close()
    assert not page.errors, page.errors


def open_sample(page, name="dog"):
    page.click(f"#samples button[data-name={name}]")
    page.wait_for_selector("#stage:not(.empty)")
    page.wait_for_function("() => window.picosam2Demo.state.photo !== null")


def image_to_page(page, x, y):
    """Viewport position of the centre of image pixel (x, y)."""
    box = page.locator("#photo").bounding_box()
    size = page.evaluate("() => [window.picosam2Demo.state.photo.width, window.picosam2Demo.state.photo.height]")
    return box["x"] + (x + 0.5) * box["width"] / size[0], box["y"] + (y + 0.5) * box["height"] / size[1]


def wait_masks(page, count):
    page.wait_for_function(f"() => window.picosam2Demo.masksShown >= {count}")


def page_mask(page) -> np.ndarray:
    state = page.evaluate("() => [window.picosam2Demo.state.mask.width, window.picosam2Demo.state.mask.height]")
    raw = base64.b64decode(page.evaluate("() => window.picosam2Demo.maskBase64()"))
    return np.frombuffer(raw, np.uint8).reshape(state[1], state[0]) > 0


def server_mask(page, server_url, sample, points=None, boxes=None) -> np.ndarray:
    import httpx

    data = {"sample": sample}
    if points:
        data["points"] = json.dumps(points)
    if boxes:
        data["boxes"] = json.dumps(boxes)
    r = httpx.post(server_url + "api/segment", data=data, timeout=60)
    assert r.status_code == 200, r.text
    return np.asarray(Image.open(io.BytesIO(r.content))) == 255


def iou(a, b):
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def test_click_on_sample_shows_mask(page, server_url, tmp_path):
    assert page.locator("#untrained").is_visible()  # trained=False: the warning is on screen
    open_sample(page, "dog")
    x, y = image_to_page(page, *DOG_POINT)
    page.mouse.click(x, y)
    wait_masks(page, 1)
    assert page.evaluate("() => window.picosam2Demo.state.prompts") == [{"kind": "point", "x": 570, "y": 200}]
    area = page.evaluate("() => window.picosam2Demo.maskArea()")
    assert area > 0
    # the overlay canvas really has the mask painted on it
    painted = page.evaluate(
        """() => { const c = document.getElementById('mask');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    )
    assert painted == area
    np.testing.assert_array_equal(page_mask(page), server_mask(page, server_url, "dog", points=[DOG_POINT]))
    latency = page.locator("#latency").inner_text()
    assert "ms" in latency and "server" in latency
    page.screenshot(path=str(tmp_path / "demo.png"))


def test_box_shift_click_undo_clear_download(page, server_url, tmp_path):
    open_sample(page, "truck")
    x0, y0 = image_to_page(page, 500, 400)
    x1, y1 = image_to_page(page, 900, 700)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()
    wait_masks(page, 1)
    prompts = page.evaluate("() => window.picosam2Demo.state.prompts")
    assert len(prompts) == 1 and prompts[0]["kind"] == "box"
    bx = prompts[0]["box"]
    assert abs(bx[0] - 500) <= 2 and abs(bx[1] - 400) <= 2 and abs(bx[2] - 900) <= 2 and abs(bx[3] - 700) <= 2
    box_area = page.evaluate("() => window.picosam2Demo.maskArea()")
    # shift-click adds a second object; the union grows
    px, py = image_to_page(page, 200, 300)
    page.keyboard.down("Shift")
    page.mouse.click(px, py)
    page.keyboard.up("Shift")
    wait_masks(page, 2)
    prompts = page.evaluate("() => window.picosam2Demo.state.prompts")
    assert [p["kind"] for p in prompts] == ["box", "point"]
    np.testing.assert_array_equal(
        page_mask(page), server_mask(page, server_url, "truck", points=[[200, 300]], boxes=[bx])
    )
    # a plain click starts over with one object
    page.mouse.click(px, py)
    wait_masks(page, 3)
    assert len(page.evaluate("() => window.picosam2Demo.state.prompts")) == 1
    # download the mask PNG
    with page.expect_download() as dl:
        page.click("#download")
    path = tmp_path / "mask.png"
    dl.value.save_as(path)
    assert dl.value.suggested_filename == "truck_mask.png"
    np.testing.assert_array_equal(np.asarray(Image.open(path)) == 255, page_mask(page))
    # undo twice: back to the box alone
    page.click("#undo")
    wait_masks(page, 4)
    page.click("#undo")
    wait_masks(page, 5)
    assert [p["kind"] for p in page.evaluate("() => window.picosam2Demo.state.prompts")] == ["box"]
    assert page.evaluate("() => window.picosam2Demo.maskArea()") == box_area
    page.click("#clear")
    page.wait_for_function("() => window.picosam2Demo.state.mask === null")
    assert page.evaluate("() => window.picosam2Demo.state.prompts") == []


def test_upload_a_photo(page, samples_dir, tmp_path):
    img = Image.open(samples_dir / "groceries.jpg").convert("RGB")
    img = img.resize((img.width // 2, img.height // 2))
    path = tmp_path / "mine.png"
    img.save(path)
    page.set_input_files("#upload", str(path))
    page.wait_for_function(
        "() => window.picosam2Demo.state.photo && window.picosam2Demo.state.photo.name === 'mine.png'"
    )
    assert page.evaluate("() => [window.picosam2Demo.state.photo.width, window.picosam2Demo.state.photo.height]") == [
        img.width,
        img.height,
    ]
    x, y = image_to_page(page, img.width // 2, img.height // 2)
    page.mouse.click(x, y)
    wait_masks(page, 1)
    assert page.evaluate("() => window.picosam2Demo.lastError") is None
    # an EXIF-rotated JPEG: the page shows it upright and its clicks land where the server looks
    rotated = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    Image.open(samples_dir / "dog.jpg").save(rotated, exif=exif, quality=95)
    page.set_input_files("#upload", str(rotated))
    page.wait_for_function("() => window.picosam2Demo.state.photo.name === 'rotated.jpg'")
    size = page.evaluate("() => [window.picosam2Demo.state.photo.width, window.picosam2Demo.state.photo.height]")
    assert size == [534, 800]
    shown = page.evaluate("() => window.picosam2Demo.masksShown")
    x, y = image_to_page(page, 300, 700)
    page.mouse.click(x, y)
    wait_masks(page, shown + 1)
    assert page.evaluate("() => window.picosam2Demo.state.prompts") == [{"kind": "point", "x": 300, "y": 700}]
    import httpx

    r = httpx.post(
        page.url + "api/segment",
        files={"image": ("rotated.jpg", rotated.read_bytes())},
        data={"points": "[[300, 700]]"},
        timeout=60,
    )
    assert r.status_code == 200
    np.testing.assert_array_equal(page_mask(page), np.asarray(Image.open(io.BytesIO(r.content))) == 255)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    page.set_input_files("#upload", str(bad))
    page.wait_for_selector("#error:not([hidden])")


def test_js_windows_are_byte_identical_to_prompts_py(page):
    """The page's port of prompts.py: same windows, same crops, same normalisation, same paste."""
    open_sample(page, "dog")
    width, height = 800, 534
    rgba = np.frombuffer(base64.b64decode(page.evaluate("() => window.picosam2Demo.rgbaBase64()")), np.uint8)
    image = rgba.reshape(height, width, 4)[:, :, :3].copy()
    cases = [
        ("point", [570.0, 200.0], point_window(570, 200, (width, height))),
        ("point", [3.0, 530.0], point_window(3, 530, (width, height))),
        ("box", [480, 130, 670, 270], box_window([480, 130, 670, 270], (width, height))),
        ("box", [10.5, 300.25, 60.75, 333.0], box_window([10.5, 300.25, 60.75, 333.0], (width, height))),
        ("box", [0, 0, 800, 534], box_window([0, 0, 800, 534], (width, height))),
    ]
    rng = np.random.default_rng(0)
    for kind, prompt, win in cases:
        logits = (rng.standard_normal((96, 96)) * 3).astype(np.float32)
        out = page.evaluate(
            """([kind, prompt, logits]) => {
                const w = window.picosam2Demo.windows;
                const info = window.picosam2Demo.state.info;
                const p = window.picosam2Demo.state.photo;
                const rgba = window.picosam2Demo.state.photo.rgba;
                const pr = kind === 'point' ? {kind, x: prompt[0], y: prompt[1]} : {kind, box: prompt};
                const win = w.windowForPrompt(pr, p.width, p.height, info);
                const crop = w.cropImage(rgba, p.width, p.height, win, 96, info.pad_rgb);
                const norm = new Float32Array(3 * 96 * 96);
                w.normalizeInto(norm, 0, crop, 96, info.mean, info.std);
                const mask = new Uint8Array(p.width * p.height);
                w.pasteMaskInto(mask, p.width, p.height, Float32Array.from(logits), 96, win, 0);
                const b64 = (u8) => { let s = ''; for (let i = 0; i < u8.length; i += 0x8000)
                    s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000)); return btoa(s); };
                return {win: [win.x0, win.y0, win.x1, win.y1], crop: b64(crop),
                        norm: b64(new Uint8Array(norm.buffer)), mask: b64(mask)};
            }""",
            [kind, prompt, logits.ravel().tolist()],
        )
        assert tuple(out["win"]) == win.as_tuple(), (kind, prompt)
        crop = np.frombuffer(base64.b64decode(out["crop"]), np.uint8).reshape(96, 96, 3)
        np.testing.assert_array_equal(crop, crop_image(image, win), err_msg=f"{kind} {prompt}")
        norm = np.frombuffer(base64.b64decode(out["norm"]), np.float32).reshape(1, 3, 96, 96)
        np.testing.assert_array_equal(norm, normalize_batch(crop[None], (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
        mask = np.frombuffer(base64.b64decode(out["mask"]), np.uint8).reshape(height, width) > 0
        np.testing.assert_array_equal(mask, paste_logits(logits, win, (width, height)) > 0)
    assert tuple(PAD_RGB) == tuple(page.evaluate("() => window.picosam2Demo.state.info.pad_rgb"))


@pytest.mark.skipif(
    not (VENDOR_DIR / "ort.wasm.min.mjs").is_file(),
    reason="onnxruntime-web is not vendored (run scripts/vendor_onnxruntime_web.sh; needs npm)",
)
def test_in_browser_model_matches_the_server(page, server_url, samples_dir):
    open_sample(page, "dog")
    # the browser decodes the JPEG like Pillow does (same libjpeg family); near-identical pixels
    rgba = np.frombuffer(base64.b64decode(page.evaluate("() => window.picosam2Demo.rgbaBase64()")), np.uint8)
    from picosam2.image_io import load_image

    pil = load_image(samples_dir / "dog.jpg").astype(int)
    decoded = rgba.reshape(534, 800, 4)[:, :, :3].astype(int)
    assert np.abs(decoded - pil).mean() < 1.0
    uploads = []
    page.on("request", lambda req: uploads.append(req.url) if req.method == "POST" else None)
    page.check("#local")
    page.wait_for_function("() => window.picosam2Demo.state.useLocal || window.picosam2Demo.lastError")
    assert page.evaluate("() => window.picosam2Demo.lastError") is None
    precision = page.evaluate("() => window.picosam2Demo.state.local.precision")
    info = page.evaluate("() => window.picosam2Demo.state.info.browser")
    assert precision == info["precision"]
    x, y = image_to_page(page, *DOG_POINT)
    page.mouse.click(x, y)
    page.wait_for_function(
        "() => window.picosam2Demo.lastLatency && window.picosam2Demo.lastLatency.mode === 'browser'"
    )
    assert uploads == []  # the photo never left the page
    local = page_mask(page)
    remote = server_mask(page, server_url, "dog", points=[DOG_POINT])
    assert remote.any() and local.any()
    score = iou(local, remote)
    # fp32 differs from PyTorch only by float rounding; INT8 moves the mask's edges a little
    print(f"in-browser {precision} vs server mask IoU {score:.4f}")
    assert score >= (0.99 if precision == "fp32" else 0.8), (precision, score)
    differing = local ^ remote
    assert differing.sum() <= 0.2 * remote.sum()
    assert "in browser" in page.locator("#latency").inner_text()


needs_ort_web = pytest.mark.skipif(
    not (VENDOR_DIR / "ort.wasm.min.mjs").is_file(),
    reason="onnxruntime-web is not vendored (run scripts/vendor_onnxruntime_web.sh; needs npm)",
)


@needs_ort_web
def test_click_while_the_browser_model_loads_uploads_nothing(page):
    """Issue 12: once "Run in this browser" is ticked, no photo goes to the server, even for a
    click made at once, while the model is still loading."""
    open_sample(page, "truck")
    segments = []
    page.on("request", lambda req: segments.append(req.url) if "/api/segment" in req.url else None)
    x, y = image_to_page(page, 200, 300)
    page.check("#local")
    page.mouse.click(x, y)  # the model is still being exported / fetched / started
    page.wait_for_function(
        "() => (window.picosam2Demo.lastLatency && window.picosam2Demo.lastLatency.mode === 'browser')"
        " || window.picosam2Demo.lastError"
    )
    assert page.evaluate("() => window.picosam2Demo.lastError") is None
    assert page.evaluate("() => window.picosam2Demo.maskArea()") > 0
    x, y = image_to_page(page, 600, 500)
    page.mouse.click(x, y)  # and once it runs
    page.wait_for_function(
        "() => window.picosam2Demo.state.prompts[0].x === 600 && window.picosam2Demo.masksShown >= 2"
    )
    assert segments == []


@needs_ort_web
def test_scale_aware_click_in_browser_matches_the_server(browser, scale_server):
    """Auto window sizes: the page shows the chosen window and score in both modes, and the
    in-browser model (one batch of candidates, chosen by its iou output) picks the server's window."""
    import httpx

    context, page = new_page(browser, scale_server)
    try:
        open_sample(page, "dog")
        x, y = image_to_page(page, *DOG_POINT)
        page.mouse.click(x, y)
        wait_masks(page, 1)
        (server_choice,) = page.evaluate("() => window.picosam2Demo.lastChoice")
        answer = httpx.post(
            scale_server + "api/segment", data={"sample": "dog", "points": json.dumps([DOG_POINT]), "format": "json"}
        ).json()
        assert {k: v for k, v in server_choice.items() if k != "candidates"} == answer["prompts"][0]
        assert server_choice["reason"] == "score" and server_choice["candidates"] == len(auto_point_scales((800, 534)))
        status = page.locator("#status").inner_text()
        assert f"window {server_choice['side']} px, score {server_choice['score']:.2f}" in status
        remote = page_mask(page)
        # the page tries fewer sizes in the browser by default; "as the server" tries them all
        assert page.input_value("#local-scales") == "auto:4"
        page.select_option("#local-scales", "server")
        page.check("#local")
        page.wait_for_function(
            "() => window.picosam2Demo.lastLatency.mode === 'browser' || window.picosam2Demo.lastError"
        )
        assert page.evaluate("() => window.picosam2Demo.lastError") is None
        (local_choice,) = page.evaluate("() => window.picosam2Demo.lastChoice")
        assert local_choice["candidates"] > 1 and local_choice["reason"] == "score"
        assert local_choice["side"] == server_choice["side"] and local_choice["window"] == server_choice["window"]
        assert local_choice["score"] == pytest.approx(server_choice["score"], abs=2e-3)
        assert iou(page_mask(page), remote) >= 0.99
        assert f"window {local_choice['side']} px" in page.locator("#status").inner_text()
        # the faster setting: 4 window sizes (prompts.point_scales_for("auto:4")), one batch
        from picosam2.prompts import point_scales_for

        shown = page.evaluate("() => window.picosam2Demo.masksShown")
        page.select_option("#local-scales", "auto:4")
        wait_masks(page, shown + 1)
        assert page.evaluate("() => window.picosam2Demo.lastLatency.windows") == 4
        sides = [int(label.split(" ")[0]) for label, _ in candidate_strip(page)]
        assert sides == point_scales_for("auto:4", (800, 534))
        assert not page.errors, page.errors
    finally:
        context.close()


def candidate_strip(page):
    """The candidate buttons under the photo: [(label, pressed)]."""
    return page.evaluate(
        """() => [...document.querySelectorAll('#candidates button')].map(
               (b) => [b.innerText.trim(), b.getAttribute('aria-pressed') === 'true'])"""
    )


@needs_ort_web
def test_candidates_are_shown_with_their_scores_and_another_can_be_picked(browser, scale_server):
    """Every window size a click tried is listed under the photo with its mask and score (server
    and browser mode); picking another uses its mask (the server's `pick`), and undo goes back."""
    import httpx

    context, page = new_page(browser, scale_server)
    try:
        open_sample(page, "dog")
        x, y = image_to_page(page, *DOG_POINT)
        page.mouse.click(x, y)
        wait_masks(page, 1)
        sides = auto_point_scales((800, 534))
        answer = httpx.post(
            scale_server + "api/segment", data={"sample": "dog", "points": json.dumps([DOG_POINT]), "multimask": "true"}
        ).json()["prompts"][0]
        strip = candidate_strip(page)
        assert [label for label, _ in strip] == [f"{c['side']} px · {c['score']:.2f}" for c in answer["candidates"]]
        assert [c["side"] for c in answer["candidates"]] == sides
        chosen = sides.index(answer["side"])
        assert [pressed for _, pressed in strip] == [k == chosen for k in range(len(sides))]
        # each thumbnail shows its window's mask: the painted blue share differs between sizes
        other = 0 if chosen else len(sides) - 1
        page.click(f"#candidates button[data-index='{other}']")
        wait_masks(page, 2)
        assert page.evaluate("() => window.picosam2Demo.state.prompts") == [
            {"kind": "point", "x": DOG_POINT[0], "y": DOG_POINT[1], "pick": other}
        ]
        (picked,) = page.evaluate("() => window.picosam2Demo.lastChoice")
        assert picked["reason"] == "picked" and picked["side"] == sides[other]
        assert [pressed for _, pressed in candidate_strip(page)] == [k == other for k in range(len(sides))]
        ref = httpx.post(
            scale_server + "api/segment",
            data={"sample": "dog", "points": json.dumps([DOG_POINT]), "pick": json.dumps([other])},
        ).json()
        assert ref["prompts"][0]["side"] == sides[other]
        remote_pick = np.asarray(Image.open(io.BytesIO(base64.b64decode(ref["mask_png"])))) == 255
        np.testing.assert_array_equal(page_mask(page), remote_pick)
        # in the browser: the same list, the same pick, from the model in the page
        page.select_option("#local-scales", "server")
        page.check("#local")
        page.wait_for_function(
            "() => window.picosam2Demo.lastLatency.mode === 'browser' || window.picosam2Demo.lastError"
        )
        assert page.evaluate("() => window.picosam2Demo.lastError") is None
        (local,) = page.evaluate("() => window.picosam2Demo.lastChoice")
        assert local["reason"] == "picked" and local["side"] == sides[other]
        assert [pressed for _, pressed in candidate_strip(page)] == [k == other for k in range(len(sides))]
        assert iou(page_mask(page), remote_pick) >= 0.99
        shown = page.evaluate("() => window.picosam2Demo.masksShown")
        page.click("#undo")  # back to the best-scored candidate
        wait_masks(page, shown + 1)
        (back,) = page.evaluate("() => window.picosam2Demo.lastChoice")
        assert back["reason"] == "score" and back["side"] == answer["side"]
        # a pick is answered from the page's cache: no second run of the network
        assert page.evaluate("() => window.picosam2Demo.lastLatency.windows") == 0
        assert not page.errors, page.errors
    finally:
        context.close()


@needs_ort_web
def test_layout_stays_still_while_the_browser_model_loads(page):
    """Ticking "Run in this browser" and the model's loading must not move the photo (it used to
    jump ~29 px under the cursor when the checkbox label grew)."""
    open_sample(page, "dog")
    page.evaluate(
        """() => { window.__tops = new Set(); const photo = document.getElementById('photo');
                   const note = () => { const r = photo.getBoundingClientRect();
                       window.__tops.add(`${r.left},${r.top},${r.width},${r.height}`);
                       if (!window.__stop) requestAnimationFrame(note); };
                   note(); }"""
    )
    page.check("#local")
    x, y = image_to_page(page, *DOG_POINT)
    page.mouse.click(x, y)
    page.wait_for_function(
        "() => (window.picosam2Demo.lastLatency && window.picosam2Demo.lastLatency.mode === 'browser')"
        " || window.picosam2Demo.lastError"
    )
    assert page.evaluate("() => window.picosam2Demo.lastError") is None
    page.wait_for_timeout(100)
    tops = page.evaluate("() => { window.__stop = true; return [...window.__tops]; }")
    assert len(tops) == 1, tops
    assert page.evaluate("() => window.picosam2Demo.state.useLocal")


def active_id(page):
    return page.evaluate("() => document.activeElement && document.activeElement.id")


def tab_to(page, element_id, limit=30):
    for _ in range(limit):
        page.keyboard.press("Tab")
        if active_id(page) == element_id:
            return
    raise AssertionError(f"Tab never reached #{element_id}")


def test_keyboard_upload_cursor_click_undo_clear(page, samples_dir, tmp_path):
    """Everything without a mouse: Upload by Tab + Enter, a focus ring on the photo, a cursor moved
    by the arrow keys, Enter / Shift+Enter to click there, Backspace to undo, Escape to clear."""
    img = Image.open(samples_dir / "dog.jpg").convert("RGB")
    path = tmp_path / "keys.png"
    img.save(path)
    page.focus("body")
    tab_to(page, "upload-button")
    # Enter on the button must open the file input; the chosen file is then handed to that input
    # (a native file dialog is not needed to check this, and waiting for one is timing-sensitive)
    page.evaluate(
        "() => { window.__uploadOpened = 0; document.getElementById('upload')"
        ".addEventListener('click', (e) => { e.preventDefault(); window.__uploadOpened++; }); }"
    )
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__uploadOpened === 1")
    page.set_input_files("#upload", str(path))
    page.wait_for_function(
        "() => window.picosam2Demo.state.photo && window.picosam2Demo.state.photo.name === 'keys.png'"
    )
    tab_to(page, "stage")
    ring = page.evaluate(
        "() => { const s = getComputedStyle(document.getElementById('stage')); return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert ring[0] != "none" and ring[1] != "0px", ring
    # the cursor starts at the centre; 1/40 of the longer side per arrow press (1/200 with Shift)
    assert page.evaluate("() => window.picosam2Demo.state.cursor") == {"x": 400, "y": 267}
    for key in ["ArrowRight"] * 4 + ["ArrowUp"] * 2 + ["Shift+ArrowLeft"]:
        page.keyboard.press(key)
    assert page.evaluate("() => window.picosam2Demo.state.cursor") == {"x": 400 + 80 - 4, "y": 267 - 40}
    # the cursor is drawn on the marks canvas
    drawn = page.evaluate(
        """() => { const c = document.getElementById('marks');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
    )
    assert drawn > 0
    page.keyboard.press("Enter")
    wait_masks(page, 1)
    assert page.evaluate("() => window.picosam2Demo.state.prompts") == [{"kind": "point", "x": 476, "y": 227}]
    assert page.evaluate("() => window.picosam2Demo.maskArea()") > 0
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Shift+Enter")  # adds a second object
    wait_masks(page, 2)
    assert [(p["x"], p["y"]) for p in page.evaluate("() => window.picosam2Demo.state.prompts")] == [
        (476, 227),
        (476, 247),
    ]
    page.keyboard.press("Space")  # a plain Space starts over with one object
    wait_masks(page, 3)
    assert len(page.evaluate("() => window.picosam2Demo.state.prompts")) == 1
    page.keyboard.press("Backspace")  # undo
    wait_masks(page, 4)
    assert len(page.evaluate("() => window.picosam2Demo.state.prompts")) == 2
    page.keyboard.press("Escape")  # clear
    page.wait_for_function("() => window.picosam2Demo.state.mask === null")
    assert page.evaluate("() => window.picosam2Demo.state.prompts") == []
    assert active_id(page) == "stage"


def touch_swipe(page, cdp, x, y, dy, dx=0.0, steps=8):
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for k in range(1, steps + 1):
        point = {"x": x + dx * k / steps, "y": y + dy * k / steps}
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        page.wait_for_timeout(16)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_phone_taps_add_objects_and_swipes_scroll(browser, server_url):
    """On a touch screen: a tap clicks; "+ Add object" makes taps add objects (there is no Shift);
    a swipe over the photo scrolls the page instead of drawing a box, unless Box mode is on."""
    context = browser.new_context(viewport={"width": 390, "height": 700}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(server_url)
        page.wait_for_function("() => window.picosam2Demo && window.picosam2Demo.ready")
        page.tap("#samples button[data-name=dog]")
        page.wait_for_function("() => window.picosam2Demo.state.photo !== null")
        page.locator("#stage").scroll_into_view_if_needed()
        x, y = image_to_page(page, *DOG_POINT)
        page.touchscreen.tap(x, y)
        wait_masks(page, 1)
        assert page.evaluate("() => window.picosam2Demo.state.prompts") == [{"kind": "point", "x": 570, "y": 200}]
        page.tap("#add-mode")
        assert page.get_attribute("#add-mode", "aria-pressed") == "true"
        x, y = image_to_page(page, 200, 300)
        page.touchscreen.tap(x, y)
        wait_masks(page, 2)
        assert [p["kind"] for p in page.evaluate("() => window.picosam2Demo.state.prompts")] == ["point", "point"]
        # a swipe up over the photo scrolls the page; no prompt is added
        cdp = context.new_cdp_session(page)
        before = page.evaluate("() => window.scrollY")
        x, y = image_to_page(page, 400, 400)
        touch_swipe(page, cdp, x, y, -150)
        page.wait_for_function(f"() => window.scrollY > {before}")
        page.wait_for_timeout(200)
        assert len(page.evaluate("() => window.picosam2Demo.state.prompts")) == 2
        # Box mode: the same gesture draws a box (added to the objects: Add object is on)
        page.tap("#box-mode")
        assert page.get_attribute("#box-mode", "aria-pressed") == "true"
        x0, y0 = image_to_page(page, 300, 150)
        x1, y1 = image_to_page(page, 600, 450)
        scrolled = page.evaluate("() => window.scrollY")
        touch_swipe(page, cdp, x0, y0, y1 - y0, x1 - x0)
        wait_masks(page, 3)
        prompts = page.evaluate("() => window.picosam2Demo.state.prompts")
        assert [p["kind"] for p in prompts] == ["point", "point", "box"]
        assert all(abs(a - b) <= 3 for a, b in zip(prompts[2]["box"], [300, 150, 600, 450])), prompts[2]
        assert page.evaluate("() => window.scrollY") == scrolled
        assert not errors, errors
    finally:
        context.close()
