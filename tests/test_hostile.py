"""Hostile input against the CLI and the demo (issue 14): every row of the issue's table gives
a one-line error with exit 2, a JSON 4xx, or a normal answer in bounded memory and time."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import socket
import time
import tracemalloc
import urllib.request

import pytest
from PIL import Image

from hostile_inputs import blank_png
from picosam2.cli import main

pytest.importorskip("fastapi")

from picosam2 import Predictor  # noqa: E402
from picosam2.demo.app import create_app  # noqa: E402
from picosam2.demo.server import ServerThread  # noqa: E402
from test_demo_api import contrast_model  # noqa: E402


def run_cli(capsys, *argv):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        rc = main(list(argv))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    out = capsys.readouterr()
    return rc, out.err.strip().splitlines(), peak, time.perf_counter() - t0


@pytest.fixture(scope="module")
def predict_seconds(samples_dir, tmp_path_factory):
    """The best of two ordinary ``picosam2 predict`` runs (one click, one window, on the dog), in
    this process: the reference the refusals below are timed against."""
    from timing import best_of

    out = tmp_path_factory.mktemp("ref") / "m.png"
    argv = ["predict", str(samples_dir / "dog.jpg"), "--point", "300,200", "--point-scales", "fixed", "--out", str(out)]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(argv) == 0  # warm: imports and the model file
        return best_of(lambda: main(argv), repeat=2)


@pytest.mark.parametrize("size", [(30000, 30000), (12000, 12000)])
def test_huge_images_are_refused_before_decoding(tmp_path, capsys, size):
    path = blank_png(tmp_path / "big.png", *size)
    rc, err, peak, _ = run_cli(capsys, "predict", str(path), "--point", "5,5", "--out", str(tmp_path / "m.png"))
    assert rc == 2 and len(err) == 1 and ("megapixels" in err[0] or "bomb" in err[0])
    assert peak < 50e6
    assert not (tmp_path / "m.png").exists()


@pytest.mark.timing
def test_refusals_cost_less_than_an_answer(tmp_path, capsys, samples_dir, predict_seconds):
    """A 900-megapixel image and more prompts than the window cap are refused in less time than one click
    takes (neither decodes the image nor runs the model)."""
    from timing import assert_ratio

    path = blank_png(tmp_path / "big.png", 30000, 30000)
    rc, _, _, dt = run_cli(capsys, "predict", str(path), "--point", "5,5", "--out", str(tmp_path / "m.png"))
    assert rc == 2
    assert_ratio(dt, predict_seconds, 0.5, "refusing a 900-megapixel image")
    points = [a for i in range(11) for a in ("--point", f"{i},{i}")]
    argv = ["predict", str(samples_dir / "dog.jpg"), *points, "--max-windows", "10", "--out", str(tmp_path / "m.png")]
    rc, _, _, dt = run_cli(capsys, *argv)
    assert rc == 2
    assert_ratio(dt, predict_seconds, 0.5, "refusing more prompts than windows allowed")


@pytest.mark.parametrize(
    "prompt",
    [
        ["--box", "0,0,1e6,1e6"],
        ["--point", "300,200", "--window-size", "1000000"],
        ["--point", "300,200", "--window-size", "20000"],
    ],
)
def test_huge_windows_answer_in_bounded_memory(tmp_path, capsys, samples_dir, prompt):
    out = tmp_path / "m.png"
    rc, err, peak, dt = run_cli(capsys, "predict", str(samples_dir / "dog.jpg"), *prompt, "--out", str(out))
    assert rc == 0, err
    with Image.open(out) as img:
        assert img.size == (800, 534)
    assert peak < 200e6, peak  # before: terabytes asked for, or 4.8 GB


def test_window_cap_says_what_a_request_costs_and_how_to_ask_for_less(tmp_path, capsys, samples_dir):
    # 300 clicks at the 7 auto sizes of the 800 x 534 dog: 2,100 windows, over the 2,000 cap
    points = [a for i in range(300) for a in ("--point", f"{i % 800},{i % 534}")]
    rc, err, _, _ = run_cli(capsys, "predict", str(samples_dir / "dog.jpg"), *points, "--out", str(tmp_path / "m.png"))
    assert rc == 2 and len(err) == 1, err
    assert "costs 2,100 windows (300 clicks x 7 window sizes + 0 boxes), over the cap of 2,000" in err[0]
    assert "auto:4 (1,200 windows)" in err[0] and "fixed (300 windows)" in err[0] and "--max-windows" in err[0]
    assert not (tmp_path / "m.png").exists()
    points = [a for i in range(2001) for a in ("--point", f"{i % 800},{i % 534}")]
    rc, err, _, _ = run_cli(capsys, "predict", str(samples_dir / "dog.jpg"), *points, "--out", str(tmp_path / "m.png"))
    assert rc == 2 and len(err) == 1 and "2,001 prompts cost at least 2,001 windows" in err[0]


def test_output_failures_are_one_line_and_leave_nothing(tmp_path, capsys, samples_dir, monkeypatch):
    dog = str(samples_dir / "dog.jpg")
    (tmp_path / "folder.png").mkdir()
    rc, err, _, _ = run_cli(capsys, "predict", dog, "--point", "300,200", "--out", str(tmp_path / "folder.png"))
    assert rc == 2 and len(err) == 1 and "folder" in err[0]
    (tmp_path / "file").write_text("x")
    rc, err, _, _ = run_cli(capsys, "predict", dog, "--point", "300,200", "--out", str(tmp_path / "file" / "m.png"))
    assert rc == 2 and len(err) == 1
    # the overlay fails (disk full) after the mask was written: neither is left behind
    real_save = Image.Image.save

    def save(self, fp, *a, **k):
        if "ov.png" in str(fp):
            raise OSError(errno.ENOSPC, "No space left on device", str(fp))
        return real_save(self, fp, *a, **k)

    monkeypatch.setattr(Image.Image, "save", save)
    mask, ov = tmp_path / "mask.png", tmp_path / "ov.png"
    rc, err, _, _ = run_cli(capsys, "predict", dog, "--point", "300,200", "--out", str(mask), "--overlay", str(ov))
    assert rc == 2 and len(err) == 1 and "No space left" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.png"]


@pytest.fixture(scope="module")
def server(trained_like_model):
    from conftest import SAMPLES

    app = create_app(predictor=Predictor(contrast_model(trained_like_model)), trained=True)
    with ServerThread(app, header_timeout=1.0) as url:
        yield url, SAMPLES


def post_segment(url, sample, boxes=None, points=None, host=None):
    boundary = "hostileboundary"
    parts = (
        [("sample", sample)]
        + ([("boxes", json.dumps(boxes))] if boxes else [])
        + ([("points", json.dumps(points))] if points else [])
    )
    body = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in parts)
    body = (body + f"--{boundary}--\r\n").encode()
    req = urllib.request.Request(url + "api/segment", data=body, method="POST")
    req.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    if host:
        req.add_header("Host", host)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.mark.parametrize("boxes", [[[0, 0, 1e6, 1e6]], [[0, 0, 20000, 20000]], [[-5000, 0, 10, 10]]])
def test_demo_refuses_boxes_off_the_image_with_json(server, boxes):
    url, _ = server
    status, headers, body = post_segment(url, "dog", boxes=boxes)
    assert status == 422 and "error" in json.loads(body)


@pytest.mark.timing
def test_demo_refusals_cost_no_more_than_an_answer(server):
    from timing import assert_ratio, best_of

    url, _ = server
    answer = best_of(lambda: post_segment(url, "dog", points=[[300, 200]]))
    for boxes in ([[0, 0, 1e6, 1e6]], [[-5000, 0, 10, 10]]):
        assert_ratio(best_of(lambda b=boxes: post_segment(url, "dog", boxes=b)), answer, 1.5, f"refusing {boxes}")


def raw(url, data: bytes, wait: float = 5.0) -> bytes:
    host, port = url.split("//")[1].strip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /api/info HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        b"POST /api/segment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 40000,  # a head over the cap, never finished
    ],
)
def test_server_level_errors_are_json(server, request_bytes):
    url, _ = server
    answer = raw(url, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"application/json" in head.lower() and "error" in json.loads(body)


@pytest.mark.timing
def test_stalled_clients_are_cut_off_while_others_are_served(server):
    from timing import assert_ratio, best_of

    url, _ = server
    unloaded = best_of(lambda: post_segment(url, "dog", points=[[300, 200]]))
    host, port = url.split("//")[1].strip("/").split(":")
    stalled = []
    for k in range(20):
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(
            b"POST /api/segment HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            if k % 2
            else b"POST /api/segment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 1000000\r\n\r\n--x"
        )
        stalled.append(s)
    t0 = time.perf_counter()
    status, _, _ = post_segment(url, "dog", points=[[300, 200]])
    served = time.perf_counter() - t0
    assert status == 200
    assert_ratio(served, unloaded, 4.0, "a request next to 20 stalled clients")
    time.sleep(1.5)
    for s in stalled[1::2]:  # half-sent headers: a JSON 408, then closed
        data = s.recv(65536)
        assert data.startswith(b"HTTP/1.1 408") and b"application/json" in data
        s.close()
    for s in stalled[::2]:
        s.close()
