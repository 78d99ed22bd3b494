"""Camera-independent parts of the Raspberry Pi AI Camera app, with outputs of our own models."""

import re

import numpy as np
import pytest
import torch

from conftest import run_cli
from export_helpers import centred_model
from picosam2.camera.core import (
    SENSOR_SIZE,
    FrameGeometry,
    clip_window,
    decode_output,
    frame_mask,
    network_path,
    read_dnn_params,
    roi_in_frame,
    roi_tuple,
    sensor_roi,
    simulate_frame,
)
from picosam2.prompts import PromptError, Window


@pytest.fixture(scope="module")
def model():
    return centred_model(seed=1)


@pytest.fixture(scope="module")
def dog(samples_dir):
    from picosam2.image_io import load_image

    return load_image(samples_dir / "dog.jpg")


def _runner(model):
    from picosam2.predictor import normalize_batch

    def run(win):  # like IMX500.get_outputs: a list with one (1, S, S) float tensor
        x = torch.from_numpy(normalize_batch(win[None], model.config.mean, model.config.std))
        with torch.no_grad():
            return [model(x)[0].numpy()]

    return run


def test_geometry_round_trip():
    g = FrameGeometry((640, 480))
    assert g.to_sensor(0, 0) == (0, 0)
    assert g.to_sensor(640, 480) == pytest.approx(SENSOR_SIZE)
    cropped = FrameGeometry((640, 480), scaler_crop=(100, 200, 3200, 2400))
    for x, y in [(0, 0), (123.5, 77), (639, 479)]:
        assert cropped.to_frame(*cropped.to_sensor(x, y)) == pytest.approx((x, y))
    assert cropped.to_sensor(0, 0) == (100, 200)


def test_point_roi_is_a_centred_square_in_sensor_pixels():
    g = FrameGeometry((640, 480))
    roi = sensor_roi((320, 240), "point", g, window_size=96)
    side = round(96 * 4056 / 640)
    assert roi.width == roi.height == side
    cx, cy = g.to_sensor(320, 240)
    assert roi.x0 + side // 2 == int(cx) and roi.y0 + side // 2 == int(cy)
    assert sensor_roi(None, "center", g) == roi  # the frame centre is the default prompt
    x, y, w, h = roi_tuple(roi)
    assert (w, h) == (side, side) and (x, y) == (roi.x0, roi.y0)
    fx0, fy0, fx1, fy1 = roi_in_frame(roi, g)
    assert fx1 - fx0 == pytest.approx(96, abs=0.5) and (fx0 + fx1) / 2 == pytest.approx(320, abs=1)


def test_roi_near_the_border_is_clipped_to_the_sensor():
    g = FrameGeometry((640, 480))
    roi = sensor_roi((5, 470), "point", g)
    assert roi.x0 == 0 and roi.y1 == SENSOR_SIZE[1]
    assert roi.width < roi.height or roi.height < roi.width or roi.width < 608  # no longer the full square
    px, py = g.to_sensor(5, 470)
    assert roi.x0 <= px < roi.x1 and roi.y0 <= py < roi.y1
    with pytest.raises(PromptError):
        clip_window(Window(-50, -50, -1, -1), SENSOR_SIZE)
    with pytest.raises(PromptError, match="outside"):
        sensor_roi((700, 10), "point", g)
    with pytest.raises(PromptError, match="kind"):
        sensor_roi((1, 1), "scribble", g)


def test_box_roi_matches_prompts_box_window():
    from picosam2.prompts import box_window

    g = FrameGeometry((640, 480))
    roi = sensor_roi((100, 100, 200, 150), "box", g)
    expected = box_window((*g.to_sensor(100, 100), *g.to_sensor(200, 150)), SENSOR_SIZE)
    assert roi == expected and roi.width == roi.height


def test_decode_output_layouts():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((96, 96)).astype(np.float32)
    for t in (logits[None], logits[..., None], logits[None, None], logits.ravel(), [logits[None]]):
        np.testing.assert_array_equal(decode_output(t), logits)
    np.testing.assert_array_equal(decode_output(logits, transpose=True), logits.T)
    q = np.clip(np.round(logits / 0.125), -128, 127).astype(np.int8)
    np.testing.assert_allclose(decode_output(q, scale=0.125), logits, atol=0.0625 + 1e-6)
    with pytest.raises(ValueError, match="scale"):
        decode_output(q)
    with pytest.raises(ValueError, match="already"):
        decode_output(logits, scale=0.5)
    with pytest.raises(ValueError, match="96x96"):
        decode_output(np.zeros((48, 48), np.float32))
    with pytest.raises(ValueError, match="one output"):
        decode_output([logits, logits])


def test_simulated_camera_equals_predictor_inside_the_image(model, dog):
    """With the frame = the sensor and a window inside the image, the camera loop (ROI, ISP crop,
    decode, paste-back) gives exactly the predictor's mask."""
    from picosam2.predictor import Predictor

    point = (570, 200)
    mask, logits, roi, _ = simulate_frame(_runner(model), dog, point, "point")
    pred = Predictor(model).predict(dog, points=[point])
    assert roi.as_tuple() == pred.windows[0].as_tuple()
    np.testing.assert_allclose(logits, pred.logits[0], atol=1e-5)
    np.testing.assert_array_equal(mask, pred.masks[0])
    assert mask.sum() > 0


def test_simulated_camera_with_a_smaller_preview(model, dog):
    """A preview at half the sensor resolution: the point and its window are given in preview
    pixels, the sensor sees the same pixels as at full size, and the mask comes back at preview
    size, inside the ROI's place in the preview."""
    from picosam2.prompts import paste_logits

    h, w = dog.shape[:2]
    _, full_logits, full_roi, _ = simulate_frame(_runner(model), dog, (570, 200), "point", window_size=96)
    half, logits, roi, g = simulate_frame(
        _runner(model), dog, (285, 100), "point", frame_size=(w // 2, h // 2), window_size=48
    )
    assert roi == full_roi  # 48 preview pixels = 96 sensor pixels, same place
    np.testing.assert_array_equal(logits, full_logits)  # the network input does not depend on the preview
    assert half.shape == (h // 2, w // 2)
    np.testing.assert_array_equal(half, paste_logits(logits, Window(261, 76, 309, 124), (w // 2, h // 2)) > 0)
    assert half.sum() > 0 and not half[:, :261].any() and not half[124:].any()
    # thresholding: a higher logit threshold never adds pixels
    assert (frame_mask(logits, roi, g, 1.0) <= frame_mask(logits, roi, g, 0.0)).all()


def test_read_dnn_params(tmp_path):
    xml = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<dnnParams><networks><network name="picosam2" ordinal="0" type="">
<inputTensors><inputTensor persistency="1" ordinal="0" name="in" bitsPerElement="8" shift="0" scale="1.0" format="unsigned">
<dimensions><dimension size="3" ordinal="0"/><dimension size="96" ordinal="1"/><dimension size="96" ordinal="2"/></dimensions>
</inputTensor></inputTensors>
<outputTensors><outputTensor ordinal="0" name="out" bitsPerElement="8" shift="0" scale="0.125" format="signed">
<dimensions><dimension size="1" ordinal="0"/><dimension size="96" ordinal="1"/><dimension size="96" ordinal="2"/></dimensions>
</outputTensor></outputTensors></network></networks>
<l2memory totalSize="8388480" coefficientsSize="1322656" reservedMemorySize="1024" networksRuntimeSize="2403424"/></dnnParams>"""
    p = tmp_path / "dnnParams.xml"
    p.write_text(xml)
    d = read_dnn_params(p)
    assert d["inputs"][0]["dims"] == [3, 96, 96] and not d["inputs"][0]["signed"]
    out = d["outputs"][0]
    assert out["signed"] and out["scale"] == 0.125 and out["dims"] == [1, 96, 96]
    assert d["l2memory"]["totalSize"] == 8388480
    raw = np.full((1, 96, 96), 8, np.int8)
    assert decode_output(raw, scale=out["scale"]).max() == pytest.approx(1.0)


def test_network_path_checks(tmp_path):
    with pytest.raises(FileNotFoundError, match="imx500-package"):
        network_path(tmp_path / "network.rpk")
    z = tmp_path / "packerOut.zip"
    z.write_bytes(b"PK")
    with pytest.raises(ValueError, match="imx500-package"):
        network_path(z)
    (tmp_path / "network.rpk").write_bytes(b"x")
    assert network_path(tmp_path) == tmp_path / "network.rpk"


def test_camera_cli_without_picamera2_is_one_line():
    pytest.importorskip("numpy")
    try:
        import picamera2  # noqa: F401

        pytest.skip("picamera2 is installed")
    except ImportError:
        pass
    r = run_cli("camera", "--network", "network.rpk")
    assert r.returncode == 2
    assert "picamera2" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_camera_cli_simulate(tmp_path, samples_dir):
    from PIL import Image

    out = tmp_path / "overlay.png"
    r = run_cli("camera", "--simulate", str(samples_dir / "dog.jpg"), "--box", "480,130,670,270", "--out", str(out))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("frame 0: roi ") and "; box; score " in lines[0], r.stdout
    assert Image.open(out).size == Image.open(samples_dir / "dog.jpg").size
    bad = run_cli("camera", "--simulate", str(samples_dir / "dog.jpg"), "--point", "5000,10")
    assert bad.returncode == 2 and "outside" in bad.stderr


# ---------------------------------------------------------------- scale-aware point prompts


def test_scale_policy_sweeps_keeps_the_best_and_sweeps_again():
    from picosam2.camera.core import ScalePolicy

    policy = ScalePolicy([96, 192, 384], drop=0.15)
    flat = np.zeros((96, 96), np.float32)
    seen = []
    for score in (0.3, 0.8, 0.5):  # one frame per side
        side, why = policy.next()
        seen.append((side, why))
        policy.update(flat, score)
    assert seen == [(96, "sweep 1/3 (new prompt)"), (192, "sweep 2/3 (new prompt)"), (384, "sweep 3/3 (new prompt)")]
    assert policy.next() == (192, "kept: best score of the sweep (0.80)")
    policy.update(flat, 0.7)  # a small dip keeps the side
    assert policy.next()[0] == 192 and not policy.sweeping
    policy.update(flat, 0.6)  # 0.2 below the sweep's best: the scene changed
    assert policy.next() == (96, "sweep 1/3 (score fell from 0.80 to 0.60)")
    policy.reset()
    assert policy.next()[1] == "sweep 1/3 (prompt moved)"
    assert ScalePolicy([128]).next() == (128, "fixed")


def test_scale_policy_without_scores_uses_the_border_rule():
    from picosam2.camera.core import ScalePolicy

    policy = ScalePolicy([96, 192, 384])
    full = np.full((96, 96), 5.0, np.float32)  # runs past the window
    inside = np.full((96, 96), -5.0, np.float32)
    inside[30:60, 30:60] = 5.0  # ends inside it
    for logits in (full, inside, inside):
        policy.next()
        policy.update(logits, None)
    assert policy.next() == (192, "kept: smallest window whose mask ends inside it (no score)")


def test_camera_point_scales_in_frame_pixels():
    from picosam2.prompts import point_scales_for as camera_point_scales

    assert camera_point_scales("auto", (640, 480), 128) == [96, 140, 205, 300, 438, 640]
    assert camera_point_scales("fixed", (640, 480), 128) == camera_point_scales(None, (640, 480), 128) == [128]
    assert camera_point_scales("300,100", (640, 480), 128) == [100, 300]
    with pytest.raises(PromptError):
        camera_point_scales("big", (640, 480), 128)


@pytest.fixture(scope="module")
def quality_weights(tmp_path_factory):
    from picosam2.models import save_pretrained

    folder = tmp_path_factory.mktemp("qw") / "weights"
    save_pretrained(centred_model(seed=1, arch="picosam2-q"), folder)
    return folder


def test_simulate_over_photos_sweeps_then_keeps_the_best_scored_window(quality_weights, samples_dir, tmp_path):
    """Photos play consecutive frames: three frames sweep the sides, then the best-scored side
    runs; each frame says which window ran, why and its score; the overlay carries the line."""
    import shutil

    frames = tmp_path / "frames"
    frames.mkdir()
    for k in range(5):
        shutil.copy(samples_dir / "dog.jpg", frames / f"{k:02d}.jpg")
    out = tmp_path / "out"
    r = run_cli(
        "camera", "--simulate", str(frames), "--point", "570,200", "--weights", str(quality_weights),
        "--point-scales", "96,192,384", "--out", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if "window" in ln]
    assert len(lines) == 5
    swept = {}
    for k, side in enumerate((96, 192, 384)):
        assert f"window {side} px: sweep {k + 1}/3 (new prompt); score " in lines[k]
        swept[side] = float(lines[k].rsplit("score ", 1)[1].split(";")[0])
    best = max(swept, key=swept.get)
    for line in lines[3:]:
        assert f"window {best} px: kept: best score of the sweep" in line
        assert f"roi {570 - best // 2}, {200 - best // 2}," in line
    assert len(list(out.glob("*.png"))) == 5


def test_simulate_one_photo_with_auto_scales(quality_weights, samples_dir, tmp_path):
    png = tmp_path / "o.png"
    r = run_cli(
        "camera", "--simulate", str(samples_dir / "dog.jpg"), "--point", "570,200", "--weights", str(quality_weights),
        "--point-scales", "auto", "--out", str(png),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    frames = [ln for ln in r.stdout.splitlines() if ln.startswith("frame ")]
    n = len(frames) - 1  # a full sweep of the 800 px frame's sides, then the kept one
    assert n == 7 and "sweep 7/7" in frames[6] and "kept: best score" in frames[7]
    assert png.exists()
    bad = run_cli("camera", "--simulate", str(samples_dir / "dog.jpg"), "--point-scales", "0,5")
    assert bad.returncode == 2 and "point scales" in bad.stderr


# ---------------------------------------------------------------- window policies and following


def _disc_sensor(centre, radius=40.0, score=0.9):
    """A scene holding one disc: what the network would say for any ROI (logits +5 inside the
    disc, -5 outside, at the 96 x 96 output's pixel centres), with ``centre=None``: no object."""

    def run(roi):
        u = (np.arange(96) + 0.5) / 96
        xs = roi.x0 + u * roi.width
        ys = roi.y0 + u * roi.height
        if centre is None:
            logits = np.full((96, 96), -5.0, np.float32)
        else:
            inside = (xs[None, :] - centre[0]) ** 2 + (ys[:, None] - centre[1]) ** 2 <= radius**2
            logits = np.where(inside, 5.0, -5.0).astype(np.float32)
        return [logits[None], np.float32([score])]

    return run


def _roi_centre(roi):
    return ((roi.x0 + roi.x1) / 2, (roi.y0 + roi.y1) / 2)


def test_follow_moves_the_roi_with_the_object_loses_it_and_finds_it_again():
    """The follow policy alone (no model): a disc moving 6 px a frame; the sensor ROI it picks
    each frame stays centred on the disc; when the disc vanishes the frames say lost (and show no
    mask); when it comes back near where it was, re-acquired, then tracking again."""
    from picosam2.camera.follow import Follow
    from picosam2.camera.loop import CameraLoop

    g = FrameGeometry((640, 480), scaler_crop=(0, 0, 640, 480), sensor_size=(640, 480))
    loop = CameraLoop(Follow((200.0, 240.0), "point", [96]))
    states, centres = [], []
    for k in range(25):
        centre = (200.0 + 6 * k, 240.0) if not 15 <= k < 18 else None
        if k >= 18:
            centre = (200.0 + 6 * 15, 240.0)  # back where it vanished, standing still
        roi = loop.roi(g)
        r = loop.frame(_disc_sensor(centre)(roi), g)
        assert r.roi == roi
        states.append(r.report.state)
        centres.append((_roi_centre(roi), centre))
        if r.report.state == "lost":
            assert not r.mask.any()
    assert states[:15] == ["tracking"] * 15
    for (cx, cy), (dx, dy) in centres[3:15]:  # after the motion model has caught the speed
        assert abs(cx - dx) <= 8 and abs(cy - dy) <= 3
    assert states[15:18] == ["lost"] * 3
    assert "reacquired" in states[18:] and states[-1] == "tracking"
    (cx, cy), (dx, dy) = centres[-1]
    assert abs(cx - dx) <= 3 and abs(cy - dy) <= 3


@pytest.mark.parametrize("checked", [True, False])
def test_follow_loses_a_mask_whose_colours_changed(checked):
    """The follow policy's colour check (no model): a still disc, red on grey; from frame 6 the
    disc's pixels turn blue (the same mask now covers something else). With the check the frames
    from 6 on say lost and show no mask; with ``appearance_follow = appearance_reacquire = 0`` they
    stay tracking."""
    from picosam2.camera.follow import Follow
    from picosam2.camera.loop import CameraLoop
    from picosam2.track import TrackPolicy

    policy = TrackPolicy() if checked else TrackPolicy(appearance_follow=0.0, appearance_reacquire=0.0)
    g = FrameGeometry((320, 240), scaler_crop=(0, 0, 320, 240), sensor_size=(320, 240))
    loop = CameraLoop(Follow((160.0, 120.0), "point", [96], track_policy=policy))
    yy, xx = np.mgrid[0:240, 0:320]
    disc = (xx + 0.5 - 160) ** 2 + (yy + 0.5 - 120) ** 2 <= 30**2
    states = []
    for k in range(10):
        image = np.full((240, 320, 3), 128, np.uint8)
        image[disc] = (200, 30, 30) if k < 6 else (30, 30, 200)
        roi = loop.roi(g)
        r = loop.frame(_disc_sensor((160.0, 120.0), radius=30.0)(roi), g, frame=image)
        states.append(r.report.state)
        if r.report.state == "lost":
            assert not r.mask.any()
    assert states[:6] == ["tracking"] * 6
    assert states[6:] == (["lost"] * 4 if checked else ["tracking"] * 4)


def test_follow_starts_with_a_sweep_or_a_box_and_speaks_in_sensor_pixels():
    """On a 640 x 480 preview of the full sensor: a click sweeps its sides first (state start),
    the kept frame starts the track; the ROI is the followed window scaled to sensor pixels and
    clipped to the sensor; a box starts at once; a click moves the start back to a sweep."""
    from picosam2.camera.follow import Follow
    from picosam2.camera.loop import CameraLoop, frame_line
    from picosam2.camera.policy import frame_window_roi

    g = FrameGeometry((640, 480))
    sx = SENSOR_SIZE[0] / 640
    disc = ((320.0 * sx, 240.0 * sx), 30 * sx)  # sensor pixels: the sensor's view of a disc in the preview
    loop = CameraLoop(Follow((320.0, 240.0), "point", [96, 192]))
    lines = []
    for k in range(5):
        roi = loop.roi(g)
        r = loop.frame(_disc_sensor(*disc)(roi), g)
        lines.append(frame_line(k, r))
    assert [ln.rsplit("state ", 1)[1].split(";")[0] for ln in lines] == ["start", "start"] + ["tracking"] * 3
    assert "start: sweep 1/2" in lines[0] and "start: kept" in lines[2] and "follow" in lines[3]
    state = loop.policy.state
    assert state.extent == pytest.approx(60, abs=4)  # the disc's diameter, in preview pixels
    from picosam2.camera.follow import follow_window

    win = follow_window(state, (640, 480), loop.policy.track_policy)
    assert loop.roi(g) == frame_window_roi(win, g)
    side = win[2] - win[0]
    assert loop.roi(g).width == pytest.approx(side * sx, abs=2)
    edge = frame_window_roi((600, 440, 700, 540), g)  # past the corner: clipped to the sensor
    assert (edge.x1, edge.y1) == SENSOR_SIZE and edge.x0 == round(600 * sx)

    box = CameraLoop(Follow((290.0, 210.0, 350.0, 270.0), "box", [96, 192]))
    r = box.frame(_disc_sensor(*disc)(box.roi(g)), g)
    assert r.report.state == "tracking" and r.report.reason == "start: box"
    box.move((320.0, 240.0), "point")
    assert box.policy.state is None
    assert box.frame(_disc_sensor(*disc)(box.roi(g)), g).report.state == "start"


def test_make_policy_picks_the_window_policy_from_the_settings():
    from picosam2.camera.follow import Follow
    from picosam2.camera.policy import FixedWindow, ScaleSweep, make_policy
    from picosam2.camera.settings import CameraSettings
    from picosam2.errors import PicoSAM2Error

    size = (640, 480)
    assert isinstance(make_policy(CameraSettings(kind="box", prompt=(1, 2, 30, 40)), None, size), FixedWindow)
    fixed = make_policy(CameraSettings(kind="point", prompt=(5, 5), window_size=128), None, size)
    assert isinstance(fixed, FixedWindow) and fixed.side == 128
    sweep = make_policy(CameraSettings(point_scales="auto:4"), None, size)
    assert isinstance(sweep, ScaleSweep) and sweep.settle_frames == 5
    follow = make_policy(CameraSettings(kind="point", prompt=(5, 5), track=True, point_scales="96,192"), None, size)
    assert isinstance(follow, Follow) and follow.start_sides == [96, 192] and follow.settle_frames == 3
    for bad in (dict(kind="point"), dict(kind="box", prompt=(1, 2)), dict(window_size=0), dict(point_scales="0,5")):
        with pytest.raises(PicoSAM2Error):
            CameraSettings(**bad)


def _panned_clip(samples_dir, folder, frames=14, step=5):
    """Frames of a camera panning across the bundled dog photo: a 480 x 360 view whose left edge
    moves ``step`` px left per frame, so everything in it moves ``step`` px right per frame."""
    from PIL import Image

    folder.mkdir()
    photo = Image.open(samples_dir / "dog.jpg").convert("RGB")
    for k in range(frames):
        x = 335 - step * k
        photo.crop((x, 20, x + 480, 380)).save(folder / f"{k:05d}.png")
    return folder


LINE = re.compile(
    r"^frame (\d+) \((\d{5}\.png)\): roi (\d+), (\d+), (\d+), (\d+); mask pixels: (\d+); window (\d+) px: "
    r"([^;]+)(?:; score (\d\.\d\d))?; state (start|tracking|lost|reacquired); (\d+\.\d) ms$"
)


def test_camera_simulate_track_follows_the_bowl_across_a_pan(samples_dir, tmp_path):
    """``camera --simulate FOLDER --track``: the bowl held out in the photo moves 5 px right per
    frame; the ROI the loop sets follows it (its centre stays near the bowl, moving about 5 px per frame; the height
    stays), every frame prints one well-formed line, and the statistics log gets every frame."""
    clip = _panned_clip(samples_dir, tmp_path / "clip")
    log = tmp_path / "stats.jsonl"
    r = run_cli(
        "camera", "--simulate", str(clip), "--track", "--point", "240,180", "--window-size", "252",
        "--stats-log", str(log),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("frame ")]
    assert len(lines) == 14 and f"appended 14 frames to {log}" in r.stdout
    rows = []
    for k, line in enumerate(lines):
        m = LINE.match(line)
        assert m, line
        assert int(m[1]) == k and m[2] == f"{k:05d}.png"
        x, y, w, h = (int(v) for v in m.group(3, 4, 5, 6))
        rows.append((x + w / 2, y + h / 2, int(m[7]), m[11]))
    assert rows[0][:2] == (240, 180) and lines[0].count("start: one window") == 1
    assert all(state == "tracking" for *_, state in rows) and all(area > 2000 for _, _, area, _ in rows)
    xs = np.array([cx for cx, *_ in rows])
    slope = np.polyfit(np.arange(len(xs)), xs, 1)[0]
    # the ROI is centred on the mask's most interior pixel, which wanders inside the bowl: each
    # frame's centre stays within 40 px (a sixth of the 252 px window) of where the bowl is, and
    # the trend is the pan's (a ROI left in place would be 65 px off by the last frame)
    truth = 240 + 5 * np.arange(len(xs))
    assert np.abs(xs - truth).max() <= 40, xs
    assert 3.0 <= slope <= 10.0, xs
    assert all(abs(cy - 180) <= 40 for _, cy, *_ in rows)
    assert len(log.read_text().splitlines()) == 14


def test_camera_simulate_track_on_a_video_file_and_bad_prompts(samples_dir, tmp_path):
    """A video file plays the frames too (through the tracking command's reader); a click
    outside the frame or a malformed one is one line and exit status 2."""
    pytest.importorskip("av")
    from picosam2.image_io import load_image
    from picosam2.track.video import VideoWriter

    clip = _panned_clip(samples_dir, tmp_path / "clip", frames=4)
    video = tmp_path / "clip.mp4"
    writer = VideoWriter(video, fps=10)
    for f in sorted(clip.iterdir()):
        writer.write(load_image(f))
    writer.close()
    out = tmp_path / "overlays"
    r = run_cli(
        "camera", "--simulate", str(video), "--track", "--point", "240,180", "--point-scales", "96,192",
        "--out", str(out),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("frame ")]
    assert [ln.split(":")[0] for ln in lines] == [f"frame {k}" for k in range(4)]
    assert "state start" in lines[0] and "start: kept" in lines[2] and "state tracking" in lines[3]
    assert sorted(p.name for p in out.iterdir()) == [f"{k:05d}.png" for k in range(4)]
    for bad, words in (("5000,10", "outside"), ("2x", "--point must be 2")):
        r = run_cli("camera", "--simulate", str(video), "--track", "--point", bad)
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run_cli("camera", "--simulate", str(tmp_path / "none" / "*.png"), "--track", "--point", "1,1")
    assert r.returncode == 2 and "no file matches" in r.stderr


def test_simulated_follow_runs_the_trackers_windows(samples_dir, tmp_path):
    """The camera's follow loop and :class:`picosam2.track.Tracker` are one policy: started from
    the same click window, they run the same window on every frame while the windows stay inside
    the frame (past its edge the tracker pads, the sensor clips)."""
    from picosam2.camera.runners import cpu_runner
    from picosam2.camera.settings import CameraSettings
    from picosam2.camera.simulate import open_source, simulate_frames
    from picosam2.image_io import load_image
    from picosam2.track import Tracker

    clip = _panned_clip(samples_dir, tmp_path / "clip", frames=10)
    frames = [load_image(p) for p in sorted(clip.iterdir())]
    tracker = Tracker()
    first = tracker.start(frames[0], point=(240, 180))
    x0, y0, x1, y1 = first.window
    assert x1 - x0 == y1 - y0 and x0 >= 0 and y0 >= 0 and x1 <= 480 and y1 <= 360, first.window
    want = [first.window] + [tracker.update(f)[first.obj_id].window for f in frames[1:]]
    run, config = cpu_runner(None)
    settings = CameraSettings(kind="point", prompt=(240.0, 180.0), window_size=x1 - x0, track=True)
    records = simulate_frames(run, open_source(clip), settings, config)
    inside = 0
    for rec, (a, b, c, d) in zip(records, want):
        if a < 0 or b < 0 or c > 480 or d > 360:
            break
        assert rec["roi"] == (a, b, c - a, d - b)
        inside += 1
    assert inside >= 5
