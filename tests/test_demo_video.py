"""The demo's video mode in headless Chromium: a clip opened from disk and a fake webcam fed from
a clip (Chromium's --use-file-for-fake-video-capture), objects clicked and followed frame by frame
in the page with the ONNX model in onnxruntime-web; nothing uploaded. The clips are written at
test time from a bundled photo: a camera pan, so the objects move across the frame."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from picosam2 import Predictor  # noqa: E402
from picosam2.demo.app import create_app  # noqa: E402
from picosam2.demo.server import ServerThread  # noqa: E402
from test_demo_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, needs_ort_web  # noqa: E402

pytestmark = [pytest.mark.browser, needs_ort_web]

CLIP_SIZE = (320, 240)
FRAMES = 24
PAN_PX = 6  # camera pan per frame: the scene moves left by this much
ORIGIN = (330, 60)  # top-left of the first frame in dog.jpg (the whole pan stays inside the photo)
DOG_IN_CLIP = (570 - ORIGIN[0], 200 - ORIGIN[1])  # the dog in the first frame


def pan_frames(samples_dir: Path, n: int = FRAMES) -> list[np.ndarray]:
    """``n`` RGB frames of CLIP_SIZE cut from dog.jpg, each PAN_PX further right."""
    image = np.asarray(Image.open(samples_dir / "dog.jpg").convert("RGB"))
    w, h = CLIP_SIZE
    x0, y0 = ORIGIN
    assert x0 + (n - 1) * PAN_PX + w <= image.shape[1] and y0 + h <= image.shape[0]
    return [image[y0 : y0 + h, x0 + k * PAN_PX : x0 + k * PAN_PX + w].copy() for k in range(n)]


def write_y4m(frames: list[np.ndarray], path: Path, fps: int = 10) -> None:
    """A YUV4MPEG2 (4:2:0, full-range BT.601) file, the format Chromium's fake camera reads."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
            y = 0.299 * r + 0.587 * g + 0.114 * b
            u = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
            v = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
            sub = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))  # noqa: E731
            f.write(b"FRAME\n")
            for plane in (y, sub(u), sub(v)):
                f.write(np.clip(np.round(plane), 0, 255).astype(np.uint8).tobytes())


def write_webm(frames: list[np.ndarray], path: Path, fps: int = 10) -> None:
    """A VP8 WebM clip through PyAV (every frame a key frame: exact steps, small file)."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libvpx", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "4", "b": "2M", "g": "1"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def video_predictor():
    from test_demo_api import quality_model

    return Predictor(quality_model(), point_scales="auto")


@pytest.fixture(scope="module")
def video_server(video_predictor, tmp_path_factory):
    """fp32 in the browser, so the page's masks are the Python tracker's up to float rounding; a
    lenient policy, so the untrained model's masks count as followed (its scores are noise)."""
    from picosam2.track import TrackPolicy

    app = create_app(
        predictor=video_predictor,
        trained=False,
        model_cache_dir=tmp_path_factory.mktemp("vmodels"),
        browser_model="fp32",
        track_policy=TrackPolicy(lost_score=0.0, area_jump=1e3, jump=10.0),
    )
    with ServerThread(app) as url:
        yield url


def launch(pw, extra=()):
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + list(extra), headless=True)


def open_video_mode(browser, url):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.posts = []
    page.on("request", lambda req: page.posts.append(req.url) if req.method != "GET" else None)
    page.goto(url)
    page.wait_for_function("() => window.picosam2Video && window.picosam2Video.ready")
    page.click("#tab-video")
    assert page.locator("#video-mode").is_visible() and not page.locator("#photo-mode").is_visible()
    return context, page


def frame_to_page(page, x, y):
    box = page.locator("#video-frame").bounding_box()
    w, h = page.evaluate("() => [window.picosam2Video.state.width, window.picosam2Video.state.height]")
    return box["x"] + (x + 0.5) * box["width"] / w, box["y"] + (y + 0.5) * box["height"] / h


def objects(page):
    return page.evaluate("() => window.picosam2Video.objects()")


def page_rgb(page):
    w, h = page.evaluate("() => [window.picosam2Video.state.width, window.picosam2Video.state.height]")
    raw = base64.b64decode(page.evaluate("() => window.picosam2Video.rgbaBase64()"))
    return np.frombuffer(raw, np.uint8).reshape(h, w, 4)[:, :, :3].copy()


def page_mask(page, obj_id):
    w, h = page.evaluate("() => [window.picosam2Video.state.width, window.picosam2Video.state.height]")
    return (
        np.frombuffer(
            base64.b64decode(page.evaluate(f"() => window.picosam2Video.maskBase64({obj_id})")), np.uint8
        ).reshape(h, w)
        > 0
    )


def test_uploaded_clip_is_followed_as_the_python_tracker_does(video_server, video_predictor, samples_dir, tmp_path):
    """Open a WebM clip, click the dog, step through the frames: on every frame the page's window
    (track.js + windows.js + onnxruntime-web) is the one picosam2.track.Tracker picks on the same
    decoded pixels, one window per frame, and the image's motion the page measured (from its
    last frame and the object's last mask) is motion.estimate_shift's on those pixels, to the
    bit; the colours of its window mask are checked as the tracker checks them (the object's
    reference histogram from the clicked mask, blended with each accepted mask's pixels: to the
    bit on the page's masks); then Play runs to the end; nothing is uploaded."""
    from playwright.sync_api import sync_playwright

    from picosam2.prompts import Window, paste_logits, window_mask
    from picosam2.track import Tracker, TrackPolicy
    from picosam2.track import appearance as A
    from picosam2.track import policy as P
    from picosam2.track.motion import estimate_shift

    clip = tmp_path / "pan.webm"
    write_webm(pan_frames(samples_dir), clip)
    with sync_playwright() as pw:
        browser = launch(pw)
        context, page = open_video_mode(browser, video_server)
        try:
            page.set_input_files("#video-upload", str(clip))
            page.wait_for_function("() => window.picosam2Video.state.width > 0")
            assert page.evaluate("() => [window.picosam2Video.state.width, window.picosam2Video.state.height]") == list(
                CLIP_SIZE
            )
            info = page.evaluate("() => fetch('/api/info').then((r) => r.json())")
            # the Python tracker on the very ONNX file the page runs (onnxruntime here, its
            # WebAssembly build there): the same windows, the same policy
            import httpx

            onnx = tmp_path / "page.onnx"
            onnx.write_bytes(httpx.get(video_server + "model/picosam2-fp32.onnx", timeout=120).content)
            tracker = Tracker(
                Predictor.from_pretrained(onnx, point_scales=info["browser"]["point_scales"], threads=1),
                policy=TrackPolicy(**info["track_policy"]),
            )
            x, y = frame_to_page(page, *DOG_IN_CLIP)
            page.mouse.click(x, y)
            page.wait_for_function("() => window.picosam2Video.objects().length === 1", timeout=TIMEOUT_MS)
            (first,) = objects(page)
            ref = tracker.start(page_rgb(page), point=DOG_IN_CLIP)
            assert first["window"] == list(ref.window) and first["state"] == "tracking"
            policy = TrackPolicy(**info["track_policy"])
            predictor = tracker.predictor
            assert policy.motion == "image" and policy.uses_appearance
            appearance = lambda: np.array(page.evaluate(f"() => window.picosam2Video.appearance({first['id']})"))  # noqa: E731
            # the object's colours: the clicked mask's pixels (the page's mask; the tracker's, to
            # the float rounding of the two runtimes' logits)
            reference = appearance()
            assert (
                reference.tolist() == A.normalised(A.histogram(page_rgb(page), page_mask(page, first["id"]))).tolist()
            )
            assert np.abs(reference - tracker._objects[ref.obj_id].appearance).sum() < 0.05
            statuses, ious, shifts, sims = [], [], [], []
            for k in range(1, 9):
                reference = appearance()
                (prev,) = page.evaluate("() => window.picosam2Video.states()")
                prev = P.TrackState(**{f: tuple(v) if isinstance(v, list) else v for f, v in prev.items() if f != "id"})
                # what the page keeps for the image motion: the frame on screen and the object's mask on it
                last_frame, last_mask = page_rgb(page), page_mask(page, first["id"])
                page.click("#video-step")
                page.wait_for_function(
                    f"() => window.picosam2Video.frames() >= {k} && !window.picosam2Video.state.busy"
                )
                (got,) = objects(page)
                (now,) = page.evaluate("() => window.picosam2Video.states()")
                # the window the page ran is the policy's from the state it had
                (win,) = P.next_windows(prev, CLIP_SIZE, policy)
                assert got["window"] == list(win) and got["windows"] == 1
                # the same window of the same pixels through onnxruntime here, and the policy step
                frame = page_rgb(page)
                out = predictor.run_windows(frame, [Window(*win)])
                obs = P.observe(out.logits[0], win, None if out.scores is None else float(out.scores[0]))
                part = None if obs.empty else window_mask(out.logits[0], Window(*win), CLIP_SIZE)
                step = A.sample_step(win[2] - win[0])
                counts = None if part is None else A.window_histogram(frame, part, step)
                sim = None if counts is None else A.similarity(counts, reference)
                (page_sim,) = got["similarities"]
                assert (page_sim is None) == (sim is None) and (sim is None or page_sim == pytest.approx(sim, abs=0.02))
                best = P.best_observation(prev, [obs], policy, [sim])
                weights = last_mask if last_mask.any() else None
                shift = estimate_shift(
                    last_frame, frame, weights, prev.anchor, prev.extent, P.motion_radius(prev, policy),
                    policy.motion_cells,
                )  # fmt: skip
                assert got["shift"] == [float(shift[0]), float(shift[1])]  # bit for bit
                shifts.append(shift)
                state, status = P.update(prev, None if best is None else obs, policy, shift)
                statuses.append((got["state"], status))
                assert got["state"] == status
                assert now["anchor"] == pytest.approx(list(state.anchor), abs=1.5)
                assert now["extent"] == pytest.approx(state.extent, rel=0.03, abs=1.5)
                assert now["lost"] == state.lost and now["frames"] == state.frames
                want = paste_logits(out.logits[0], Window(*win), CLIP_SIZE) > 0
                mask = page_mask(page, got["id"])
                ious.append((mask & want).sum() / max(1, (mask | want).sum()))
                if got["windowIndex"] is not None:  # accepted: its mask's colours, blended in, to the bit
                    mine = A.histogram(frame[::step, ::step], mask[::step, ::step])  # the window's grid
                    assert got["similarity"] == A.similarity(mine, reference)
                    assert appearance().tolist() == A.blend(reference, mine, policy.appearance_rate).tolist()
                else:
                    assert appearance().tolist() == reference.tolist()
                sims.append(page_sim)
            assert sum(s == "tracking" for s, _ in statuses) >= 6, (statuses, sims)
            assert all(s is not None and 0 < s < 1 for s in sims), sims  # the colours were checked every frame
            # the camera pans PAN_PX a frame: the first step, while the untrained model's mask is
            # still the dog's size, measures the scene moving left by that much (later its lenient
            # masks grow past the frame, and a match that large says less)
            assert shifts[0][0] == pytest.approx(-PAN_PX, abs=1) and abs(shifts[0][1]) <= 1, shifts
            assert np.mean(ious) >= 0.97, ious
            assert page.evaluate("() => window.picosam2Video.timing().windows") == 1
            # Play to the end of the clip: every remaining frame is segmented
            page.click("#video-play")
            page.wait_for_function("() => !window.picosam2Video.state.playing", timeout=TIMEOUT_MS)
            frames = page.evaluate("() => window.picosam2Video.frames()")
            assert frames >= FRAMES - 3, frames  # (a frame or two at the ends may not be presented)
            assert "end of pan.webm" in page.locator("#video-status").inner_text()
            assert "frames/s" in page.locator("#video-fps").inner_text()
            assert page.locator("#video-objects li").count() == 1
            assert page.posts == []  # no frame left the page
            assert not page.errors, page.errors
        finally:
            context.close()
            browser.close()


def test_fake_webcam_live_several_objects_pause_step_clear(video_server, samples_dir, tmp_path):
    """The webcam (Chromium's fake camera playing a y4m clip): two objects followed live in one
    batch, fps and state shown, Pause stops the frames, Step takes one, Clear forgets all."""
    from playwright.sync_api import sync_playwright

    y4m = tmp_path / "camera.y4m"
    write_y4m(pan_frames(samples_dir), y4m)
    fake = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
    ]
    with sync_playwright() as pw:
        browser = launch(pw, fake)
        context, page = open_video_mode(browser, video_server)
        try:
            page.click("#webcam")
            page.wait_for_function("() => window.picosam2Video.state.playing && window.picosam2Video.state.width > 0")
            assert page.evaluate("() => [window.picosam2Video.state.width, window.picosam2Video.state.height]") == list(
                CLIP_SIZE
            )
            page.wait_for_function("() => window.picosam2Video.frames() >= 2")
            # the page shows the camera's picture: one of the clip's frames, up to YUV rounding
            shown = page_rgb(page).astype(int)
            assert min(np.abs(shown - f).mean() for f in pan_frames(samples_dir)) < 12
            x, y = frame_to_page(page, *DOG_IN_CLIP)
            page.mouse.click(x, y)
            page.wait_for_function("() => window.picosam2Video.objects().length === 1")
            x, y = frame_to_page(page, 40, 200)
            page.mouse.click(x, y)
            page.wait_for_function("() => window.picosam2Video.objects().length === 2")
            seen = page.evaluate("() => window.picosam2Video.frames()")
            page.wait_for_function(
                f"() => window.picosam2Video.frames() >= {seen + 4} && window.picosam2Video.objects().every((o) => o.frame > {seen})"
            )
            objs = objects(page)
            assert [o["id"] for o in objs] == [1, 2]
            assert all(o["state"] in ("tracking", "lost", "reacquired") and o["windows"] == 1 for o in objs)
            assert page.evaluate("() => window.picosam2Video.timing().windows") == 2  # one batch, one window each
            assert page.locator("#video-objects li").count() == 2
            assert "frames/s" in page.locator("#video-fps").inner_text()
            assert page.evaluate("() => window.picosam2Video.fps()") > 0
            # Pause: no more frames; Step: exactly one more
            page.click("#video-play")
            page.wait_for_function("() => !window.picosam2Video.state.busy")
            paused = page.evaluate("() => window.picosam2Video.frames()")
            page.wait_for_timeout(500)
            assert page.evaluate("() => window.picosam2Video.frames()") == paused
            page.click("#video-step")
            page.wait_for_function(
                f"() => window.picosam2Video.frames() === {paused + 1} && !window.picosam2Video.state.busy"
            )
            page.wait_for_timeout(300)
            assert page.evaluate("() => window.picosam2Video.frames()") == paused + 1
            # remove one object, then clear
            page.click("#video-objects li[data-id='2'] button")
            assert [o["id"] for o in objects(page)] == [1]
            page.click("#video-clear")
            assert objects(page) == [] and page.locator("#video-objects li").count() == 0
            assert page.posts == []
            assert not page.errors, page.errors
        finally:
            context.close()
            browser.close()
