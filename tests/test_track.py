"""picosam2.track: the pure window policy and the Tracker on the shipped weights."""

from __future__ import annotations

import numpy as np
import pytest

from picosam2.image_io import load_image
from picosam2.track import ObjectResult, Tracker, TrackPolicy
from picosam2.track import policy as P


def _obs(box, score=0.9, area=None, touch=(0.0, 0.0, 0.0, 0.0)):
    x0, y0, x1, y1 = box
    c = ((x0 + x1) / 2, (y0 + y1) / 2)
    return P.Observation(area or (x1 - x0) * (y1 - y0), box, c, c, touch, score)


# -- pure policy ----------------------------------------------------------------------------------


def test_interior_index_is_the_centre_of_a_square_and_on_a_ring():
    m = np.zeros((21, 21), bool)
    m[5:16, 5:16] = True
    assert P.interior_index(m) == (10, 10)
    ring = np.zeros((40, 40), bool)
    yy, xx = np.mgrid[:40, :40]
    r = np.hypot(yy - 20, xx - 20)
    ring[(r > 10) & (r < 17)] = True
    row, col = P.interior_index(ring)
    assert ring[row, col]  # a box centre would be the hole


def test_observe_maps_window_pixels_to_the_image():
    logits = np.full((96, 96), -5.0, np.float32)
    logits[24:72, 24:72] = 5.0  # the middle half of a 192 px window at (100, 50)
    obs = P.observe(logits, (100, 50, 292, 242), 0.8)
    assert obs.box == (148.0, 98.0, 244.0, 194.0)
    assert obs.area == pytest.approx(96 * 96)
    assert obs.interior[0] == pytest.approx(196, abs=2) and obs.interior[1] == pytest.approx(146, abs=2)
    assert obs.score == pytest.approx(0.8) and max(obs.touch) == 0
    assert P.observe(np.full((96, 96), -1.0), (0, 0, 96, 96), 0.9).empty


def test_next_window_follows_constant_velocity_with_the_margin():
    pol = TrackPolicy(anchor="box", margin=1.5, velocity_gain=1.0, size_smoothing=1.0)
    s = P.start_state(_obs((100, 100, 200, 200)), pol)
    assert P.next_window(s, (640, 480), pol) == (75, 75, 225, 225)
    s, status = P.update(s, _obs((110, 104, 210, 204)), pol)
    assert status == "tracking" and s.velocity == (10.0, 4.0)
    x0, y0, x1, y1 = P.next_window(s, (640, 480), pol)
    assert (x0 + x1) / 2 == pytest.approx(170, abs=1) and (y0 + y1) / 2 == pytest.approx(158, abs=1)
    assert x1 - x0 == 150


def test_a_cut_off_mask_grows_the_next_window_once():
    pol = TrackPolicy(anchor="box", border_grow=1.4, size_smoothing=1.0)
    s = P.start_state(_obs((100, 100, 200, 200)), pol)
    s, _ = P.update(s, _obs((100, 100, 200, 200), touch=(0.3, 0, 0, 0)), pol)
    x0, _, x1, _ = P.next_window(s, (640, 480), pol)
    assert x1 - x0 == round(1.4 * pol.margin * 100)
    s, _ = P.update(s, _obs((100, 100, 200, 200)), pol)
    x0, _, x1, _ = P.next_window(s, (640, 480), pol)
    assert x1 - x0 == round(pol.margin * 100)


def test_loss_coasts_then_the_sweep_reacquires():
    pol = TrackPolicy(anchor="box", velocity_gain=1.0, coast_decay=0.5)
    s = P.start_state(_obs((100, 100, 200, 200)), pol)
    s, _ = P.update(s, _obs((120, 100, 220, 200)), pol)
    for bad in (P.EMPTY, _obs((120, 100, 220, 200), score=0.01), _obs((0, 0, 600, 400))):
        assert not P.accepts(s, bad, pol)
    s, status = P.update(s, None, pol)
    assert status == "lost" and s.lost == 1 and s.anchor == (190.0, 150.0) and s.velocity == (10.0, 0.0)
    seen = {P.next_window(P.TrackState(**{**s.__dict__, "lost": k}), (640, 480), pol) for k in range(1, 12)}
    assert len(seen) == len(P.SWEEP)  # one new window per lost frame
    found = _obs((230, 100, 330, 200), score=0.9)
    assert P.accepts(s, found, pol)
    s, status = P.update(s, found, pol)
    assert status == "reacquired" and s.lost == 0 and s.velocity == (0.0, 0.0)


def test_windows_stay_centred_on_the_image_and_bounded():
    pol = TrackPolicy()
    s = P.TrackState(anchor=(-500.0, 900.0), extent=10_000.0)
    x0, y0, x1, y1 = P.next_window(s, (640, 480), pol)
    assert (x0 + x1) / 2 == pytest.approx(0, abs=1) and (y0 + y1) / 2 == pytest.approx(479, abs=1)
    assert x1 - x0 == round(pol.max_side * 640)
    tiny = P.TrackState(anchor=(50.0, 50.0), extent=2.0)
    x0, _, x1, _ = P.next_window(tiny, (640, 480), pol)
    assert x1 - x0 == pol.min_side


def test_policy_rejects_bad_constants():
    with pytest.raises(ValueError):
        TrackPolicy(anchor="middle")
    with pytest.raises(ValueError):
        TrackPolicy(margin=0)


# -- the Tracker on the shipped weights ------------------------------------------------------------


@pytest.fixture(scope="module")
def tracker_model():
    from picosam2 import Predictor

    return Predictor.from_pretrained(threads=1)


def _pan(image, dx):
    """The photo moved ``dx`` pixels right (the left edge repeated): a camera pan with an exact answer."""
    out = np.empty_like(image)
    out[:, dx:] = image[:, : image.shape[1] - dx]
    out[:, :dx] = image[:, :1]
    return out


def test_tracker_follows_a_panned_photo_with_one_window_per_frame(samples_dir, tracker_model):
    photo = load_image(samples_dir / "dog.jpg")
    tracker = Tracker(tracker_model)
    first = tracker.start(photo, point=(570, 200))
    assert isinstance(first, ObjectResult) and first.mask.any() and tracker.objects == [first.obj_id]
    ref = first.mask
    for k in range(1, 9):
        dx = 6 * k
        r = tracker.update(_pan(photo, dx))[first.obj_id]
        assert r.windows == 1 and r.state == "tracking"
        want = np.zeros_like(ref)
        want[:, dx:] = ref[:, : ref.shape[1] - dx]
        iou = (r.mask & want).sum() / (r.mask | want).sum()
        assert iou > 0.5, (k, iou)
        x0, y0, x1, y1 = r.window
        assert x1 - x0 == y1 - y0  # square windows


def test_tracker_loses_a_mask_whose_colours_changed_and_keeps_its_own_copy(samples_dir, tracker_model):
    """The colour check on the shipped weights: the photo's colours rotated (R, G, B -> B, R, G) from
    frame 3 on leave the masks' shapes alike but not their colours, so the default policy calls
    those frames lost; without the check they stay tracking. Drawing into a returned mask does not
    change what the tracker does next (it keeps its own copy)."""
    photo = load_image(samples_dir / "dog.jpg")
    frames = [photo] * 3 + [np.ascontiguousarray(photo[..., [2, 0, 1]])] * 3
    runs = {}
    for name, pol in (
        ("checked", TrackPolicy()),
        ("checked, caller draws", TrackPolicy()),
        ("unchecked", TrackPolicy(appearance_follow=0.0, appearance_reacquire=0.0)),
    ):
        tracker = Tracker(tracker_model, policy=pol)
        first = tracker.start(photo, point=(570, 200))
        seen = []
        for frame in frames[1:]:
            r = tracker.update(frame)[first.obj_id]
            seen.append((r.state, r.window))
            if name == "checked, caller draws":
                r.mask[:] = True
        runs[name] = seen
    assert [s for s, _ in runs["checked"]] == ["tracking"] * 2 + ["lost"] * 3
    assert [s for s, _ in runs["unchecked"]] == ["tracking"] * 5
    assert runs["checked, caller draws"] == runs["checked"]


def test_colour_histogram_similarity_and_blend():
    from picosam2.track import appearance as A

    px = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 0], [255, 255, 255]]], np.uint8)
    counts = A.histogram(px)
    # cells (r, g, value): red (7, 0, 3) = 227, green (0, 7, 3) = 31, black (0, 0, 0) = 0, white (3, 3, 3) = 111
    assert counts.sum() == 4 and [int(i) for i in np.flatnonzero(counts)] == [0, 31, 111, 227]
    assert A.histogram(px, np.zeros((2, 2), bool)) is None
    ref = A.normalised(counts)
    assert A.similarity(counts, ref) == pytest.approx(1.0)
    assert A.similarity(A.histogram(px[:1, :1]), A.normalised(A.histogram(px[1:, :1]))) == 0.0
    darker = np.array([[[200, 0, 0]]], np.uint8)  # a darker red: the same chromaticity cell
    assert A.similarity(A.histogram(darker), A.normalised(A.histogram(px[:1, :1]))) == pytest.approx(1.0)
    half = A.blend(ref, A.histogram(px[:1, :1]), 0.5)
    assert half.sum() == pytest.approx(1.0) and half[227] == pytest.approx(0.5 * 0.25 + 0.5)
    pol = TrackPolicy()
    following, lost = P.TrackState(anchor=(0.0, 0.0)), P.TrackState(anchor=(0.0, 0.0), lost=2)
    assert P.looks_alike(following, 0.7, pol) and not P.looks_alike(lost, 0.7, pol)
    assert P.looks_alike(lost, None, pol) and not P.looks_alike(following, 0.5, pol)
    with pytest.raises(ValueError):
        TrackPolicy(appearance_follow=1.5)


def test_tracker_runs_all_objects_in_one_batch_and_removes(samples_dir, tracker_model):
    photo = load_image(samples_dir / "dog.jpg")
    tracker = Tracker(tracker_model)
    calls = []
    run = tracker.predictor.run_windows

    def counted(image, windows):
        calls.append(len(windows))
        return run(image, windows)

    tracker.predictor.run_windows = counted
    a = tracker.start(photo, point=(570, 200))
    b = tracker.start(photo, box=(480, 130, 670, 270), obj_id=7)
    c = tracker.start(photo, mask=a.mask)
    assert (a.obj_id, b.obj_id) == (1, 7) and c.obj_id not in (1, 7) and c.windows == 0
    calls.clear()
    out = tracker.update(photo)
    assert calls == [3] and set(out) == {1, 7, c.obj_id}
    tracker.remove(7)
    assert 7 not in tracker.objects
    with pytest.raises(ValueError):
        tracker.start(photo, point=(570, 200), obj_id=1)
    with pytest.raises(ValueError):
        tracker.start(photo)


def test_bench_times_the_tracker_on_a_480p_clip():
    from picosam2.bench.suite import TRACK_CLIP_FRAMES, measure_tracker, track_clip
    from picosam2.models import from_pretrained

    clip = track_clip()
    assert len(clip) == TRACK_CLIP_FRAMES and all(f.shape == (480, 854, 3) for f in clip)
    assert not np.array_equal(clip[0], clip[1])  # the view moves
    rows = measure_tracker(from_pretrained().eval(), {}, repeats=3)
    assert set(rows["tracker_fps"]) == {"torch_fp32"}
    ms = rows["tracker_ms_per_frame"]["torch_fp32"]
    assert rows["tracker_fps"]["torch_fp32"] == pytest.approx(1e3 / ms, rel=0.01)
    assert rows["tracker_vs_single_click"]["torch_fp32"] > 0
    assert rows["tracker_windows_per_frame"] == 1.0  # a steady pan: one window a frame
    # like with like: the same frames against a one-window click at the tracker's own window
    assert set(rows["tracker_vs_same_window_click"]) == {"torch_fp32"}
    t, c = rows["same_window_tracker_ms"]["torch_fp32"], rows["same_window_click_ms"]["torch_fp32"]
    assert rows["tracker_vs_same_window_click"]["torch_fp32"] == pytest.approx(t / c, abs=0.01)
    assert rows["tracker_window_side_median"] > rows["single_click_window_side"]  # the object is large
