"""The demo under a real uvicorn server on 127.0.0.1: 40 concurrent requests, raw request paths
(no client-side normalisation), and ``picosam2 demo`` serving the page."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from picosam2 import Predictor  # noqa: E402
from picosam2.demo.app import create_app  # noqa: E402
from picosam2.demo.server import ServerThread, bind_socket, is_loopback  # noqa: E402
from picosam2.image_io import load_image  # noqa: E402
from test_demo_api import contrast_model  # noqa: E402


@pytest.fixture(scope="module")
def predictor(trained_like_model):
    return Predictor(contrast_model(trained_like_model))


@pytest.fixture(scope="module")
def server(predictor, tmp_path_factory):
    app = create_app(predictor=predictor, trained=True, model_cache_dir=tmp_path_factory.mktemp("models"))
    with ServerThread(app) as url:
        host, port = url.split("//")[1].strip("/").split(":")
        yield host, int(port)


def multipart(fields: dict, image: bytes, filename="photo.jpg") -> tuple[bytes, str]:
    boundary = "picosam2-test-boundary"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + image
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request(host, port, method, path, body=None, headers=None, timeout=120):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def concurrent_run(server, predictor, samples_dir):
    """40 requests at once on two photos (points and boxes): their answers, the masks the
    predictor gives for the same prompts, and the time taken next to that of a request alone."""
    host, port = server
    photos = {name: (samples_dir / f"{name}.jpg").read_bytes() for name in ("dog", "truck")}
    arrays = {name: load_image(samples_dir / f"{name}.jpg") for name in photos}
    rng = np.random.default_rng(0)
    jobs = []
    for i in range(40):
        name = ("dog", "truck")[i % 2]
        h, w = arrays[name].shape[:2]
        if i % 5 == 4:
            x0, y0 = int(rng.integers(0, w - 100)), int(rng.integers(0, h - 100))
            prompt = {"boxes": [[x0, y0, x0 + int(rng.integers(20, 100)), y0 + int(rng.integers(20, 100))]]}
        else:
            prompt = {"points": [[int(rng.integers(0, w)), int(rng.integers(0, h))]]}
        jobs.append((name, prompt))
    # Expected masks: one batched call per photo (each job has one prompt, so its mask is the union).
    by_photo = {}
    for i, (name, prompt) in enumerate(jobs):
        by_photo.setdefault(name, []).append((i, prompt))
    expected = [None] * len(jobs)
    for name, items in by_photo.items():
        points = [p["points"][0] for _, p in items if "points" in p]
        boxes = [p["boxes"][0] for _, p in items if "boxes" in p]
        masks = predictor.predict(arrays[name], points=points, boxes=boxes).masks
        order = [i for i, p in items if "points" in p] + [i for i, p in items if "boxes" in p]
        for i, mask in zip(order, masks):
            expected[i] = mask
    assert sum(m.any() for m in expected) >= 30  # the check below is about real masks

    def call(job):
        name, prompt = job
        body, ctype = multipart({k: json.dumps(v) for k, v in prompt.items()}, photos[name], f"{name}.jpg")
        return request(host, port, "POST", "/api/segment", body, {"Content-Type": ctype})

    from timing import best_of

    one_by_one = best_of(lambda: [call(job) for job in jobs[:5]], repeat=1) / 5  # a request, alone (4 points, a box)
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(call, jobs))
    elapsed = time.monotonic() - t0
    return results, expected, jobs, elapsed, one_by_one


def test_40_concurrent_requests_all_answered_correctly(concurrent_run):
    results, expected, jobs, _, _ = concurrent_run
    for (status, headers, body), exp, job in zip(results, expected, jobs):
        assert status == 200, (job, body[:200])
        mask = np.asarray(Image.open(io.BytesIO(body))) == 255
        assert mask.shape == exp.shape
        differing = int((mask != exp).sum())
        assert differing <= 0.0005 * exp.size, (job, differing)  # same model, same windows
        assert int(headers["x-mask-pixels"]) == int(mask.sum())


@pytest.mark.timing
def test_40_concurrent_requests_take_about_40_single_ones(concurrent_run):
    """No request waits on another's timeout: 40 at once cost about 40 one after the other (2 cores
    serve 40 threads, hence the margin)."""
    from timing import assert_ratio

    _, _, _, elapsed, one_by_one = concurrent_run
    assert_ratio(elapsed, 40 * one_by_one, 5.0, "40 concurrent requests")


@pytest.mark.parametrize(
    "path",
    [
        "/static/../../pyproject.toml",
        "/static/../../../pyproject.toml",
        "/static/..%2f..%2f..%2fpyproject.toml",
        "/static/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
        "/static/%2E%2E%2F%2E%2E%2F%2E%2E%2Fpyproject.toml",
        "/static/..%5c..%5c..%5cpyproject.toml",
        "/static/%252e%252e/%252e%252e/pyproject.toml",
        "/static/vendor/../../../../pyproject.toml",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/samples/../../../pyproject.toml",
        "/samples/..%2f..%2f..%2fpyproject.toml",
        "/samples/..%2fdemo%2fapp.py",
        "/model/..%2f..%2f..%2fpyproject.toml",
        "/../pyproject.toml",
        "/%2e%2e/%2e%2e/pyproject.toml",
    ],
)
def test_raw_paths_cannot_leave_the_served_folders(server, path):
    host, port = server
    status, _, body = request(host, port, "GET", path)
    assert 400 <= status < 500, (path, status)
    text = body.decode("utf-8", "replace")
    assert "[build-system]" not in text and "root:x" not in text and "create_app" not in text


def test_static_files_are_served(server):
    host, port = server
    status, headers, body = request(host, port, "GET", "/static/windows.js")
    assert status == 200 and b"export function pointWindow" in body
    assert headers["content-type"].startswith(("text/javascript", "application/javascript"))


def test_is_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


def test_picosam2_demo_serves_the_page_on_loopback(tmp_path):
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "picosam2.cli", "demo", "--no-browser", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _, body = request("127.0.0.1", port, "GET", "/", timeout=5)
                break
            except OSError:
                time.sleep(0.3)
        assert status == 200, proc.stderr.read() if proc.poll() is not None else "no answer"
        assert b"PicoSAM2" in body
        status, _, body = request("127.0.0.1", port, "GET", "/api/info")
        assert status == 200 and "window_size" in json.loads(body)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    assert f"http://127.0.0.1:{port}/" in out
    assert proc.returncode in (0, 130, -signal.SIGINT), err


def test_run_demo_opens_the_browser_unless_told_not_to(monkeypatch, tmp_path):
    """``picosam2 demo`` opens the page with ``webbrowser`` once the server is up (and not with
    --no-browser); the opened URL answers."""
    import argparse
    import webbrowser

    import picosam2.demo.server as server_mod
    from picosam2.demo.cli import run_demo

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    servers, opened, answers = [], [], []
    real_make_server = server_mod.make_server

    def make_server(app, log_level="warning"):
        servers.append(real_make_server(app, log_level))
        return servers[-1]

    def fake_open(url, *a, **k):
        opened.append(url)
        host, port = url.split("//")[1].strip("/").split(":")
        answers.append(request(host, int(port), "GET", "/", timeout=30)[0])
        servers[-1].should_exit = True
        return True

    monkeypatch.setattr(server_mod, "make_server", make_server)
    monkeypatch.setattr(webbrowser, "open", fake_open)
    args = argparse.Namespace(
        host="127.0.0.1", port=0, no_browser=False, weights=None, browser_model="int8", annotations=None
    )
    assert run_demo(args) == 0
    assert len(opened) == 1 and opened[0].startswith("http://127.0.0.1:") and answers == [200]

    def stop_second_server():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (len(servers) == 2 and servers[1].started):
            time.sleep(0.05)
        if len(servers) == 2:
            servers[1].should_exit = True

    import threading

    args.no_browser = True
    threading.Thread(target=stop_second_server, daemon=True).start()
    assert run_demo(args) == 0
    assert len(servers) == 2 and len(opened) == 1  # --no-browser: nothing opened
