"""The demo's HTTP API through FastAPI's TestClient: good and bad inputs, the upload cap, samples,
the browser model, the CLI parser."""

from __future__ import annotations

import asyncio
import copy
import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from picosam2 import Predictor  # noqa: E402
from picosam2.demo.app import MAX_UPLOAD_BYTES, create_app, decode_image  # noqa: E402
from picosam2.image_io import load_image  # noqa: E402
from picosam2.predictor import MAX_WINDOWS  # noqa: E402

DOG_POINT = [570, 200]


def contrast_model(base):
    """A copy of the conftest's randomly initialised ``trained_like_model`` whose 1x1 head is
    rescaled so that its logits straddle 0 on real photos: masks are then non-empty and depend
    on the picture (the real pipeline, windows and paste-back included; just not trained)."""
    import torch

    from conftest import SAMPLES

    model = copy.deepcopy(base).eval()
    image = load_image(SAMPLES / "dog.jpg")
    logits = Predictor(model).predict(image, points=[DOG_POINT]).logits[0]
    scale = 10.0 / (float(logits.std()) + 1e-9)
    with torch.no_grad():
        model.head.weight.mul_(scale)
        model.head.bias.copy_((model.head.bias - float(np.median(logits))) * scale)
    return model


@pytest.fixture(scope="module")
def predictor(trained_like_model):
    return Predictor(contrast_model(trained_like_model))


@pytest.fixture(scope="module")
def client(predictor, tmp_path_factory):
    app = create_app(predictor=predictor, trained=False, model_cache_dir=tmp_path_factory.mktemp("models"))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture(scope="module")
def dog_bytes(samples_dir):
    return (samples_dir / "dog.jpg").read_bytes()


def post(client, data: bytes | None, filename="photo.jpg", **fields):
    files = {"image": (filename, data, "application/octet-stream")} if data is not None else None
    return client.post("/api/segment", files=files, data={k: v for k, v in fields.items() if v is not None})


def png_mask(response) -> np.ndarray:
    assert response.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(response.content))
    assert img.mode == "L"
    arr = np.asarray(img)
    assert set(np.unique(arr)) <= {0, 255}
    return arr == 255


def assert_json_error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    return body["error"]


# ---------------------------------------------------------------- good input


def test_point_mask_matches_predictor(client, predictor, dog_bytes, samples_dir):
    r = post(client, dog_bytes, points=json.dumps([DOG_POINT]))
    assert r.status_code == 200, r.text
    mask = png_mask(r)
    expected = predictor.predict(load_image(samples_dir / "dog.jpg"), points=[DOG_POINT]).union()
    assert mask.shape == expected.shape == (534, 800)
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(mask, expected)
    assert int(r.headers["X-Mask-Pixels"]) == int(expected.sum())
    assert r.headers["X-Image-Size"] == "800x534"
    assert float(r.headers["X-Latency-Ms"]) >= float(r.headers["X-Inference-Ms"]) > 0


def test_points_and_boxes_give_the_union(client, predictor, dog_bytes, samples_dir):
    points, boxes = [[570, 200], [300, 400]], [[480, 130, 670, 270]]
    r = post(client, dog_bytes, points=json.dumps(points), boxes=json.dumps(boxes))
    assert r.status_code == 200, r.text
    result = predictor.predict(load_image(samples_dir / "dog.jpg"), points=points, boxes=boxes)
    np.testing.assert_array_equal(png_mask(r), result.masks.any(axis=0))
    # the union is more than any single prompt's mask
    assert png_mask(r).sum() > max(m.sum() for m in result.masks)


def test_boxes_only_and_single_pair(client, dog_bytes):
    r = post(client, dog_bytes, boxes=json.dumps([[100, 100, 300, 300]]))
    assert r.status_code == 200 and png_mask(r).any()
    r1 = post(client, dog_bytes, points="[570, 200]")  # a bare [x, y] is one point
    r2 = post(client, dog_bytes, points="[[570, 200]]")
    assert r1.status_code == r2.status_code == 200
    assert r1.content == r2.content


def test_png_upload_and_exif_orientation(client, predictor, dog_bytes):
    """Coordinates are those of the displayed (EXIF-rotated) photo, as in the browser."""
    img = Image.open(io.BytesIO(dog_bytes))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif, quality=95)
    r = post(client, buf.getvalue(), points=json.dumps([[300, 700]]))  # inside the rotated 534x800
    assert r.status_code == 200, r.text
    assert png_mask(r).shape == (800, 534)
    rgba = Image.open(io.BytesIO(dog_bytes)).convert("RGBA")
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    r = post(client, buf.getvalue(), filename="x.png", points=json.dumps([DOG_POINT]))
    assert r.status_code == 200 and png_mask(r).shape == (534, 800)


def test_sample_field_instead_of_upload(client, dog_bytes):
    a = client.post("/api/segment", data={"sample": "dog", "points": json.dumps([DOG_POINT])})
    b = post(client, dog_bytes, points=json.dumps([DOG_POINT]))
    assert a.status_code == 200 and a.content == b.content
    assert_json_error(client.post("/api/segment", data={"sample": "../../pyproject", "points": "[[1,1]]"}), 404)


def test_page_info_and_samples(client, samples_dir):
    page = client.get("/")
    assert page.status_code == 200 and "PicoSAM2" in page.text
    # no CDN: the page and its assets name no other origin
    assert "http://" not in page.text and "https://" not in page.text and "//cdn" not in page.text
    for asset in ("/static/app.js", "/static/windows.js", "/static/local.js", "/static/style.css"):
        r = client.get(asset)
        assert r.status_code == 200, asset
        assert "http://" not in r.text and "https://" not in r.text, asset
    info = client.get("/api/info").json()
    assert info["trained"] is False
    assert info["input_size"] == 96 and info["pad_rgb"] == [124, 116, 104]
    assert info["max_upload_bytes"] == MAX_UPLOAD_BYTES and info["max_windows"] == MAX_WINDOWS
    samples = client.get("/api/samples").json()
    assert {s["name"] for s in samples} == {"dog", "truck", "groceries"}
    for s in samples:
        r = client.get(s["url"])
        assert r.status_code == 200 and r.content == (samples_dir / f"{s['name']}.jpg").read_bytes()
    assert_json_error(client.get("/samples/other.jpg"), 404)
    headers = page.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert "default-src 'self'" in headers["content-security-policy"]


def test_trained_flag_from_default_weights(tmp_path):
    from picosam2.models import weights_metadata

    app = create_app(model_cache_dir=tmp_path)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        trained = c.get("/api/info").json()["trained"]
    assert weights_metadata()["trained"] == "true" and trained is True  # the shipped weights are trained


def test_foreign_host_header_is_refused(client):
    r = client.get("/api/info", headers={"host": "attacker.example"})
    assert r.status_code == 400
    r = client.get("/api/info", headers={"host": "127.0.0.1.attacker.example:8000"})
    assert r.status_code == 400
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000"):
        assert client.get("/api/info", headers={"host": host}).status_code == 200, host


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "data, fields, status",
    [
        (b"not an image at all", {"points": "[[1, 1]]"}, 400),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, {"points": "[[1, 1]]"}, 400),  # truncated PNG
        (b"", {"points": "[[1, 1]]"}, 400),
        (None, {"points": "[[1, 1]]"}, 400),  # no image at all
        ("DOG", {"points": "[[800, 10]]"}, 422),  # x == width: outside
        ("DOG", {"points": "[[-1, 10]]"}, 422),
        ("DOG", {"points": "[[10, 534]]"}, 422),
        ("DOG", {"points": "[[570, 200"}, 400),  # malformed JSON
        ("DOG", {"boxes": "{'a': 1}"}, 400),
        ("DOG", {"points": "[[1, 2, 3]]"}, 422),
        ("DOG", {"points": '[["a", "b"]]'}, 422),
        ("DOG", {"points": "[[true, 1]]"}, 422),
        ("DOG", {"points": "[[NaN, 1]]"}, 400),
        ("DOG", {"points": '{"x": 1}'}, 422),
        ("DOG", {"boxes": "[[10, 10, 5, 20]]"}, 422),  # empty box
        ("DOG", {"boxes": "[[900, 10, 950, 20]]"}, 422),  # outside
        ("DOG", {}, 422),  # no prompt
        ("DOG", {"points": "[]", "boxes": "[]"}, 422),
        ("DOG", {"points": json.dumps([[1, 1]] * 2001)}, 422),  # more prompts than the window cap
    ],
)
def test_bad_input_is_a_json_4xx(client, dog_bytes, data, fields, status):
    if data == "DOG":
        data = dog_bytes
    assert_json_error(post(client, data, **fields), status)


def test_image_must_be_a_file_and_form_multipart(client):
    assert_json_error(client.post("/api/segment", data={"image": "text", "points": "[[1,1]]"}), 400)
    assert_json_error(client.post("/api/segment", json={"points": [[1, 1]]}), 415)
    r = client.post(
        "/api/segment", content=b"--xx\r\nbroken", headers={"content-type": "multipart/form-data; boundary=xx"}
    )
    assert 400 <= r.status_code < 500


def test_upload_over_the_cap_is_413(client):
    big = b"\xff\xd8" + b"\0" * (MAX_UPLOAD_BYTES + 10)
    assert_json_error(post(client, big, points="[[1, 1]]"), 413)


def test_upload_just_under_the_cap_is_segmented(client):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (2500, 2600, 3), dtype=np.uint8)  # incompressible: PNG ~ raw size
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG", compress_level=0)
    data = buf.getvalue()
    assert 0.85 * MAX_UPLOAD_BYTES < len(data) < MAX_UPLOAD_BYTES
    r = post(client, data, filename="big.png", points="[[1300, 1250]]")
    assert r.status_code == 200, r.text
    assert png_mask(r).shape == (2500, 2600)


def test_small_cap_and_pixel_cap(predictor, dog_bytes, tmp_path):
    app = create_app(predictor=predictor, trained=True, max_upload_bytes=50_000, max_pixels=100_000)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert_json_error(post(c, dog_bytes, points="[[1, 1]]"), 413)  # 80 kB > 50 kB
        buf = io.BytesIO()
        Image.new("RGB", (400, 300)).save(buf, format="PNG")  # small file, 120k pixels
        assert_json_error(post(c, buf.getvalue(), points="[[1, 1]]"), 413)
        buf = io.BytesIO()
        Image.new("RGB", (300, 300), (200, 10, 10)).save(buf, format="PNG")
        assert post(c, buf.getvalue(), points="[[1, 1]]").status_code == 200


def test_body_over_the_cap_is_refused_before_it_is_all_read(predictor):
    """Chunked upload (no Content-Length): the app stops reading once the cap is passed."""
    cap = 100_000
    app = create_app(predictor=predictor, trained=True, max_upload_bytes=cap)
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    chunk = b"\0" * 16384
    total_chunks = 200  # 3.2 MB offered
    consumed = 0
    sent = []

    async def receive():
        nonlocal consumed
        if consumed == 0:
            consumed += 1
            return {"type": "http.request", "body": head, "more_body": True}
        consumed += 1
        return {"type": "http.request", "body": chunk, "more_body": consumed < total_chunks}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/segment",
        "raw_path": b"/api/segment",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 413, body
    assert "error" in json.loads(body)
    read_bytes = len(head) + (consumed - 1) * len(chunk)
    assert read_bytes <= cap + 64 * 1024 + 2 * len(chunk), read_bytes
    assert consumed < total_chunks


def test_declared_length_over_the_cap_is_413_at_once(client):
    r = client.post(
        "/api/segment",
        content=b"x" * 10,
        headers={"content-type": "multipart/form-data; boundary=x", "content-length": str(MAX_UPLOAD_BYTES * 2)},
    )
    assert_json_error(r, 413)


def test_decode_image_rejects_other_formats():
    from picosam2.demo.app import DemoError

    with pytest.raises(DemoError) as err:
        decode_image(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    assert err.value.status == 400
    buf = io.BytesIO()
    Image.new("RGB", (10, 8), (1, 2, 3)).save(buf, format="BMP")
    arr = decode_image(buf.getvalue())
    assert arr.shape == (8, 10, 3) and arr.dtype == np.uint8


@pytest.mark.parametrize(
    "path",
    [
        "/static/../../pyproject.toml",
        "/static/..%2f..%2fpyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/....//....//pyproject.toml",
        "/samples/..%2f..%2f..%2f..%2fpyproject.toml",
        "/samples/%2e%2e%2fdemo%2fapp.py",
        "/model/..%2f..%2fpyproject.toml",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
    ],
)
def test_no_path_leaves_the_static_and_sample_folders(client, path):
    r = client.get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert "[build-system]" not in r.text and "root:" not in r.text and "import" not in r.text


# ---------------------------------------------------------------- browser model


def test_browser_model_is_exported_once_and_runs(client, predictor, samples_dir):
    import onnxruntime as ort

    info = client.get("/api/info").json()["browser"]
    assert "fp32" in info["models"]
    r = client.get("/model/picosam2-fp32.onnx")
    assert r.status_code == 200 and r.headers["x-model-precision"] == "fp32"
    again = client.get("/model/picosam2-fp32.onnx")
    assert again.headers["etag"] == r.headers["etag"]  # the cached file, not a new export
    sess = ort.InferenceSession(r.content, providers=["CPUExecutionProvider"])
    image = load_image(samples_dir / "dog.jpg")
    wins, _ = predictor.windows((800, 534), points=[DOG_POINT])
    from picosam2.predictor import normalize_batch
    from picosam2.prompts import crop_image

    x = normalize_batch(crop_image(image, wins[0])[None], predictor.config.mean, predictor.config.std)
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0][:, 0]
    ref = predictor.predict_windows(image, wins)
    assert np.abs(out - ref).max() < 1e-3
    assert_json_error(client.get("/model/other.onnx"), 404)


def test_browser_model_prefers_int8(predictor, tmp_path):
    from picosam2.demo.app import int8_exporter

    app = create_app(predictor=predictor, trained=True, model_cache_dir=tmp_path)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        info = c.get("/api/info").json()["browser"]
        if int8_exporter() is None:
            assert info["precision"] == "fp32"
            assert_json_error(c.get("/model/picosam2-int8.onnx"), 404)
        else:
            assert info["precision"] == "int8"
    app = create_app(predictor=predictor, trained=True, model_cache_dir=tmp_path, browser_model="fp32")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert list(c.get("/api/info").json()["browser"]["models"]) == ["fp32"]
    with pytest.raises(ValueError):
        create_app(predictor=predictor, browser_model="int4")


def test_onnx_predictor_has_no_browser_model(predictor, tmp_path):
    from picosam2.export.onnx_fp32 import export_onnx

    path = export_onnx(predictor.backend.model, tmp_path / "m.onnx")
    app = create_app(predictor=Predictor.from_pretrained(path, backend="onnx"), model_cache_dir=tmp_path)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        info = c.get("/api/info").json()
        assert info["browser"]["available"] is False and info["browser"]["models"] == {}
        assert_json_error(c.get("/model/picosam2-fp32.onnx"), 404)
        assert c.post("/api/segment", data={"sample": "dog", "points": "[[570, 200]]"}).status_code == 200


# ---------------------------------------------------------------- CLI


def test_demo_cli_help_and_busy_port(capsys):
    """In-process through ``picosam2.cli.main`` (the subprocess path is exercised by
    test_demo_server.py::test_picosam2_demo_serves_the_page_on_loopback)."""
    from picosam2.cli import main
    from picosam2.demo.server import bind_socket

    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--host", "--port", "--no-browser", "--weights"):
        assert flag in out
    sock = bind_socket("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert main(["demo", "--no-browser", "--port", str(port)]) == 2
        err = capsys.readouterr().err
        assert "picosam2 demo: error:" in err and str(port) in err
    finally:
        sock.close()
    assert main(["demo", "--no-browser", "--port", "0", "--weights", "/nonexistent/weights"]) == 2
    assert "weights not found" in capsys.readouterr().err


# ---------------------------------------------------------------- scale-aware clicks


def quality_model():
    """A randomly initialised quality-head model (``picosam2-q``) with spread-out logits: its
    ``iou`` output differs between window sizes, so the choice among them is exercised."""
    import torch

    from picosam2.models import create_model

    torch.manual_seed(1)
    m = create_model("picosam2-q").eval()
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.1, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
    return contrast_model(m)


@pytest.fixture(scope="module")
def scale_client(tmp_path_factory):
    predictor = Predictor(quality_model(), point_scales="auto")
    app = create_app(predictor=predictor, trained=False, model_cache_dir=tmp_path_factory.mktemp("qmodels"))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        c.predictor = predictor
        yield c


def json_mask(body) -> np.ndarray:
    import base64

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask_png"])))) == 255


def test_json_answer_names_the_chosen_window_and_score(scale_client, dog_bytes, samples_dir):
    from picosam2.prompts import auto_point_scales

    r = post(scale_client, dog_bytes, points=json.dumps([DOG_POINT]), format="json")
    assert r.status_code == 200, r.text
    body = r.json()
    ref = scale_client.predictor.predict(load_image(samples_dir / "dog.jpg"), points=[DOG_POINT])
    (entry,) = body["prompts"]
    assert entry["reason"] == "score" and entry["kind"] == "point"
    assert entry["side"] == ref.windows[0].width in auto_point_scales((800, 534))
    assert entry["window"] == list(ref.windows[0].as_tuple())
    assert entry["score"] == pytest.approx(float(ref.scores[0]), abs=1e-4)
    np.testing.assert_array_equal(json_mask(body), ref.union())
    assert body["mask_pixels"] == int(ref.union().sum()) and body["width"] == 800
    # the PNG answer names the chosen side too
    png = post(scale_client, dog_bytes, points=json.dumps([DOG_POINT]))
    assert png.headers["X-Window-Sides"] == str(entry["side"])
    np.testing.assert_array_equal(png_mask(png), ref.union())


def test_the_cap_counts_windows_not_prompts(scale_client, dog_bytes, monkeypatch):
    """Under ``auto`` a click runs one window per size: fewer clicks than the cap can still cost
    more windows than it allows, and the 422 says what the request costs and what a click costs.
    The app's cap (its default, MAX_WINDOWS, is checked in test_page_info_and_samples) is lowered to 80 so
    that the request that fits runs 11 windows, not 251."""
    cap = 80
    monkeypatch.setattr(scale_client.app.state.segmenter, "max_windows", cap)
    per_click = scale_client.predictor.clicks.count((800, 534))
    assert per_click > 1
    n = cap // per_click + 1  # fewer prompts than windows allowed, more windows
    assert n < cap
    r = post(scale_client, dog_bytes, points=json.dumps([DOG_POINT] * n), format="json")
    assert_json_error(r, 422)
    message = r.json()["error"]
    assert f"costs {n * per_click:,} windows ({n:,} clicks x {per_click} window sizes + 0 boxes)" in message
    assert f"over the cap of {cap:,} windows per request" in message
    assert f"a click costs {per_click} windows, a box 1" in message
    # boxes cost one window each: the same number of prompts as boxes is answered
    boxes = [[500, 100, 700, 400]] * n
    r = post(scale_client, dog_bytes, boxes=json.dumps(boxes), format="json")
    assert r.status_code == 200 and len(r.json()["prompts"]) == n


def test_multimask_lists_every_candidate_with_its_score(scale_client, dog_bytes, samples_dir):
    from picosam2.prompts import auto_point_scales

    points, boxes = [DOG_POINT, [100, 400]], [[480, 130, 670, 270]]
    r = post(scale_client, dog_bytes, points=json.dumps(points), boxes=json.dumps(boxes), multimask="true")
    assert r.status_code == 200, r.text
    body = r.json()
    sides = auto_point_scales((800, 534))
    assert [p["kind"] for p in body["prompts"]] == ["point", "point", "box"]
    for entry in body["prompts"][:2]:
        scores = [c["score"] for c in entry["candidates"]]
        assert [c["side"] for c in entry["candidates"]] == sides
        assert entry["score"] == max(scores) and entry["side"] == sides[int(np.argmax(scores))]
    assert body["prompts"][2]["reason"] == "box" and len(body["prompts"][2]["candidates"]) == 1
    # the mask is the same as without multimask: the chosen candidates' union
    ref = scale_client.predictor.predict(load_image(samples_dir / "dog.jpg"), points=points, boxes=boxes)
    np.testing.assert_array_equal(json_mask(body), ref.union())
    assert_json_error(post(scale_client, dog_bytes, points="[[1, 1]]", multimask="maybe"), 422)
    assert_json_error(post(scale_client, dog_bytes, points="[[1, 1]]", format="xml"), 422)


def test_candidates_carry_their_masks_and_pick_chooses_another(scale_client, dog_bytes, samples_dir):
    """multimask answers each candidate's 96 x 96 mask (bit-packed); ``pick`` uses another
    candidate's mask for that point (the page's candidate strip)."""
    import base64

    from picosam2.prompts import paste_logits

    multi = copy.copy(scale_client.predictor)
    multi.multimask = True
    points = json.dumps([DOG_POINT, [100, 400]])
    ref = multi.predict(load_image(samples_dir / "dog.jpg"), points=[DOG_POINT, [100, 400]])
    body = post(scale_client, dog_bytes, points=points, multimask="true").json()
    first = np.nonzero(ref.prompt_index == 0)[0]
    second = np.nonzero(ref.prompt_index == 1)[0]
    cands = body["prompts"][0]["candidates"]
    assert len(cands) == len(first) > 1
    for k, c in zip(first, cands):
        bits = np.unpackbits(np.frombuffer(base64.b64decode(c["mask"]), np.uint8))[: 96 * 96].reshape(96, 96)
        np.testing.assert_array_equal(bits.astype(bool), ref.logits[k] > ref.threshold)
    best = [c["side"] for c in cands].index(body["prompts"][0]["side"])
    other = 0 if best else len(cands) - 1
    r = post(scale_client, dog_bytes, points=points, pick=json.dumps([other, None]))
    assert r.status_code == 200, r.text
    picked = r.json()
    assert picked["prompts"][0]["reason"] == "picked" and picked["prompts"][0]["side"] == cands[other]["side"]
    assert picked["prompts"][1]["reason"] == "score" and picked["prompts"][1]["side"] == body["prompts"][1]["side"]
    k2 = second[[c["side"] for c in body["prompts"][1]["candidates"]].index(body["prompts"][1]["side"])]
    k1 = first[other]
    want = (paste_logits(ref.logits[k1], ref.windows[k1], (800, 534)) > 0) | (
        paste_logits(ref.logits[k2], ref.windows[k2], (800, 534)) > 0
    )
    np.testing.assert_array_equal(json_mask(picked), want)
    assert not np.array_equal(json_mask(picked), json_mask(body))
    for bad in ("[99, null]", "[0]", "[-1, null]", '["a", null]', "[true, null]"):
        assert_json_error(post(scale_client, dog_bytes, points=points, pick=bad), 422)
    assert_json_error(post(scale_client, dog_bytes, points=json.dumps([DOG_POINT]), pick="[0"), 400)


def test_no_quality_head_chooses_by_the_border_rule(trained_like_model, dog_bytes, tmp_path):
    app = create_app(
        predictor=Predictor(contrast_model(trained_like_model), point_scales="auto"),
        trained=False,
        model_cache_dir=tmp_path,
    )
    with TestClient(app, base_url="http://127.0.0.1") as c:
        info = c.get("/api/info").json()
        assert info["point_scales"] == "auto" and info["auto_scales"]["min_size"] == 96
        body = post(c, dog_bytes, points=json.dumps([DOG_POINT]), format="json").json()
    assert body["prompts"][0]["reason"] == "border" and body["prompts"][0]["score"] is None


def test_default_predictor_follows_the_weights(client):
    """The fixture's weights recommend no scales: one window, said so in the answer."""
    assert client.get("/api/info").json()["point_scales"] is None
