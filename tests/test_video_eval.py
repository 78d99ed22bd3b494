"""Video evaluation (J, F, DAVIS statistics, the DAVIS reader, ``picosam2 eval-video``) and the
synthetic sequences, with hand-computed answers. Sequences are generated at run time from the
tiny COCO fixture (tests/fixtures/coco_tiny), so no video data is needed."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from picosam2.data.synthetic_video import davis_palette, make_sequence, save_annotation, write_davis
from picosam2.eval.video import (
    FollowResult,
    VideoDataError,
    boundary_f,
    boundary_map,
    boundary_tolerance,
    evaluate_tracker,
    first_prompt,
    grow_box,
    mask_box,
    read_davis,
    read_labels,
    region_j,
    statistics,
)


def square(shape, r0, r1, c0, c1):
    m = np.zeros(shape, bool)
    m[r0 : r1 + 1, c0 : c1 + 1] = True
    return m


# -- J ---------------------------------------------------------------------------------------


def test_region_j_known_answers():
    a = square((5, 5), 1, 2, 1, 2)  # 4 px
    b = square((5, 5), 1, 2, 1, 3)  # 6 px, contains a
    assert region_j(a, b) == pytest.approx(4 / 6)
    assert region_j(a, a) == 1.0
    assert region_j(a, square((5, 5), 4, 4, 4, 4)) == 0.0
    # void pixels count for neither: leaving out column 3 makes them equal
    void = np.zeros((5, 5), bool)
    void[:, 3] = True
    assert region_j(a, b, void) == 1.0
    # both empty: 1 (DAVIS); one empty: 0
    empty = np.zeros((5, 5), bool)
    assert region_j(empty, empty) == 1.0 and region_j(empty, a) == 0.0


# -- F ---------------------------------------------------------------------------------------


def test_boundary_map_of_a_square():
    # a 3x3 square at rows/cols 2..4: its own last row and column (5 px) and the row above and
    # column left of it (7 px): the boundary half a pixel towards the origin
    b = boundary_map(square((8, 8), 2, 4, 2, 4))
    expected = {(4, 2), (4, 3), (4, 4), (2, 4), (3, 4)}
    expected |= {(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (3, 1), (4, 1)}
    assert set(zip(*np.nonzero(b))) == expected
    # at the image border a pixel's missing neighbour is itself: a full image has no boundary
    assert not boundary_map(np.ones((4, 4), bool)).any()


def test_boundary_f_of_a_square_shifted_by_one_pixel():
    # 4x4 squares at rows 2..5, cols 2..5 and cols 3..6: 16 boundary pixels each, 8 shared
    # (row 1 cols 2..5 and row 5 cols 2..5), so with no tolerance P = R = 1/2 and F = 1/2;
    # with a 1-pixel tolerance every boundary pixel has a partner: F = 1
    a = square((10, 10), 2, 5, 2, 5)
    b = square((10, 10), 2, 5, 3, 6)
    assert boundary_map(a).sum() == 16 and boundary_map(b).sum() == 16
    assert (boundary_map(a) & boundary_map(b)).sum() == 8
    assert boundary_f(a, b, bound_th=0) == pytest.approx(0.5)
    assert boundary_f(a, b, bound_th=1) == pytest.approx(1.0)
    assert region_j(a, b) == pytest.approx(12 / 20)


def test_boundary_f_limits_and_tolerance():
    shape = (480, 854)
    assert boundary_tolerance(shape) == 8  # ceil(0.008 * 979.6)
    a = square(shape, 100, 199, 100, 199)
    assert boundary_f(a, a) == 1.0
    assert boundary_f(a, square(shape, 300, 399, 500, 599)) == 0.0  # far apart: nothing matches
    empty = np.zeros(shape, bool)
    assert boundary_f(empty, empty) == 1.0 and boundary_f(empty, a) == 0.0 and boundary_f(a, empty) == 0.0
    # a shift within the 8-pixel tolerance is perfect; one beyond is not
    assert boundary_f(square(shape, 100, 199, 108, 207), a) == 1.0
    assert boundary_f(square(shape, 100, 199, 109, 208), a) < 1.0


# -- statistics ------------------------------------------------------------------------------


def test_statistics_mean_recall_decay():
    down = statistics([1, 1, 1, 1, 0, 0, 0, 0])
    # 8 values: DAVIS quarter bins [0:3], [2:5], [4:6], [5:8] -> first 1.0, last 0.0
    assert down == {"mean": 0.5, "recall": 0.5, "decay": 1.0}
    up = statistics([0.2, 0.2, 0.2, 0.2, 0.9, 0.9, 0.9, 0.9])
    assert up["decay"] == pytest.approx(-0.7) and up["recall"] == 0.5
    assert statistics([0.5, 0.5, 0.5, 0.5])["recall"] == 0.0  # strictly above one half
    assert statistics([])["mean"] is None


# -- annotations and the DAVIS layout --------------------------------------------------------


def test_read_labels_palette_and_grey(tmp_path):
    labels = np.zeros((6, 7), np.uint8)
    labels[1:3, 1:3] = 1
    labels[4, :] = 2
    labels[0, 6] = 255  # void
    save_annotation(labels, tmp_path / "p.png", palette=True)
    img = Image.open(tmp_path / "p.png")
    assert img.mode == "P" and img.getpalette()[:9] == davis_palette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
    np.testing.assert_array_equal(read_labels(tmp_path / "p.png"), labels)
    grey = np.where(labels == 1, 255, 0).astype(np.uint8)
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_labels(tmp_path / "g.png"), (labels == 1).astype(np.uint8))


def _davis_tree(root, name, frames, labels, palette):
    (root / "JPEGImages" / "480p" / name).mkdir(parents=True)
    (root / "Annotations" / "480p" / name).mkdir(parents=True)
    for k, (f, lab) in enumerate(zip(frames, labels)):
        Image.fromarray(f).save(root / "JPEGImages" / "480p" / name / f"{k:05d}.jpg")
        save_annotation(lab, root / "Annotations" / "480p" / name / f"{k:05d}.png", palette)


def test_read_davis_objects_and_errors(tmp_path):
    frames = [np.full((20, 30, 3), 100, np.uint8)] * 3
    labels = [np.zeros((20, 30), np.uint8) for _ in range(3)]
    labels[0][2:6, 2:6], labels[0][10:14, 10:14], labels[0][0, 0] = 1, 2, 255
    _davis_tree(tmp_path, "two", frames, labels, palette=True)
    (seq,) = read_davis(tmp_path)
    assert seq.name == "two" and len(seq) == 3 and seq.object_ids == [1, 2]
    assert seq.frame(1).shape == (20, 30, 3) and seq.labels(0)[0, 0] == 255

    with pytest.raises(VideoDataError, match="Annotations/480p"):
        read_davis(tmp_path, resolution="1080p")
    with pytest.raises(VideoDataError, match="'nope'"):
        read_davis(tmp_path, ["nope"])
    (tmp_path / "Annotations" / "480p" / "two" / "00002.png").unlink()
    with pytest.raises(VideoDataError, match="without an annotation"):
        read_davis(tmp_path)
    with pytest.raises(VideoDataError, match="not in the DAVIS layout"):
        read_davis(tmp_path / "JPEGImages")


def test_prompts_and_boxes():
    m = square((20, 20), 2, 10, 4, 8)
    assert mask_box(m) == (4.0, 2.0, 9.0, 11.0) and mask_box(np.zeros((3, 3), bool)) is None
    assert grow_box((0, 0, 10, 20), 1.2) == pytest.approx((-1, -2, 11, 22))
    assert first_prompt(m, "click") == {"point": (6, 4)}  # 3 px from the border, first in row-major order
    assert first_prompt(m, "box") == {"box": (4.0, 2.0, 9.0, 11.0)}
    assert first_prompt(m, "mask")["mask"] is m


# -- synthetic sequences from the tiny COCO fixture ------------------------------------------


@pytest.fixture(scope="module")
def tiny_coco(fixtures_dir):
    from picosam2.data import InstanceSet
    from picosam2.image_io import load_image

    ds = InstanceSet(fixtures_dir / "coco_tiny" / "instances.json", [fixtures_dir / "coco_tiny" / "images"])
    by_id = {i.ann_id: i for i in ds.instances()}

    def get(ann_id):
        inst = by_id[ann_id]
        return load_image(inst.image_path), ds.mask(inst)

    return get


SIZE = (320, 180)


def test_make_sequence_is_seeded_and_starts_whole(tiny_coco):
    image, mask = tiny_coco(50142)
    a = make_sequence(image, [mask], np.random.default_rng(3), frames=12, size=SIZE)
    b = make_sequence(image, [mask], np.random.default_rng(3), frames=12, size=SIZE)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.frames.shape == (12, 180, 320, 3) and a.labels.shape == (12, 180, 320)
    first = a.labels[0] == 1
    # frame 0 shows the whole object inside the frame (no pixel on the border), unoccluded
    assert first.any() and not (first[0].any() or first[-1].any() or first[:, 0].any() or first[:, -1].any())
    assert a.meta["frames_without_object"] == [0] or a.meta["leave"]


def test_make_sequence_leave_and_occlusion(tiny_coco):
    image, mask = tiny_coco(1099580)
    occ = tiny_coco(332341)
    kw = dict(frames=40, size=SIZE, speed="medium", moving=True, rotation=False, brightness=False)
    gone = make_sequence(image, [mask], np.random.default_rng(1), leave=True, occlusion=False, **kw)
    area = (gone.labels == 1).reshape(40, -1).sum(axis=1)
    assert gone.meta["leave"] and (area == 0).any() and area[-1] > 0  # leaves and comes back
    assert gone.meta["frames_without_object"] == [int((area == 0).sum())]

    plain = make_sequence(image, [mask], np.random.default_rng(1), occluder=occ, leave=False, occlusion=False, **kw)
    hidden = make_sequence(image, [mask], np.random.default_rng(1), occluder=occ, leave=False, occlusion=True, **kw)
    assert hidden.meta["occlusion"] and not plain.meta["occlusion"]
    # the same path; the occluder only removes target pixels, most where it crosses
    assert not ((hidden.labels == 1) & (plain.labels != 1)).any()
    lost = ((plain.labels == 1) & (hidden.labels != 1)).reshape(40, -1).sum(axis=1)
    assert lost.max() > 0 and lost[0] == 0


@pytest.fixture(scope="module")
def tiny_davis(tiny_coco, tmp_path_factory):
    """Two short sequences in the DAVIS layout: one object (0/255 PNGs) and two (palette)."""
    root = tmp_path_factory.mktemp("davis")
    one_img, one_mask = tiny_coco(50142)
    two_img, m1 = tiny_coco(1834177)
    _, m2 = tiny_coco(3253)
    seqs = {
        "one": make_sequence(one_img, [one_mask], np.random.default_rng(0), frames=6, size=SIZE, speed="slow"),
        "two": make_sequence(two_img, [m1, m2 & ~m1], np.random.default_rng(1), frames=6, size=SIZE, speed="slow"),
    }
    write_davis(root, seqs, meta={"test": True})
    return root, seqs


def test_davis_round_trip(tiny_davis):
    root, seqs = tiny_davis
    read = read_davis(root)
    assert [s.name for s in read] == ["one", "two"]
    assert Image.open(read[0].annotation_paths[0]).mode == "L" and Image.open(read[1].annotation_paths[0]).mode == "P"
    for s in read:
        assert s.object_ids == list(range(1, seqs[s.name].num_objects + 1))
        for k in range(len(s)):
            np.testing.assert_array_equal(s.labels(k), seqs[s.name].labels[k])
    assert (root / "ImageSets" / "2017" / "val.txt").read_text().split() == ["one", "two"]
    assert json.loads((root / "meta.json").read_text())["test"] is True


class TruthFollower:
    """Answers each frame with the true masks (a perfect follower: scores must be exactly 1)."""

    needs_truth = True

    def __init__(self):
        self.ids, self.truth = [], {}

    def start(self, frame, point=None, box=None, mask=None, obj_id=None):
        self.ids.append(obj_id)

    def observe_truth(self, masks):
        self.truth = masks

    def update(self, frame):
        return {i: FollowResult(i, self.truth[i], 1.0, 1) for i in self.ids}


def test_evaluate_perfect_follower(tiny_davis):
    root, _ = tiny_davis
    report = evaluate_tracker(TruthFollower, read_davis(root), init="mask", progress=False)
    o = report["overall"]
    assert o["J&F"] == 1.0 and o["J"]["mean"] == 1.0 and o["F"]["mean"] == 1.0 and o["J"]["decay"] == 0.0
    assert o["sequences"] == 2 and o["objects"] == 3 and o["windows_per_object_frame"] == 1.0
    assert len(report["per_sequence"]["one"]["objects"]["1"]["J_per_frame"]) == 4  # first and last not scored
    # a follower without windows is placed by its mask: always on the object, where the truth is
    placed = report["per_sequence"]["one"]["objects"]["1"]["placement_per_frame"]
    truth_in_view = [bool((read_davis(root, ["one"])[0].labels(k) == 1).any()) for k in range(1, 5)]
    assert placed == ["on" if v else "absent-empty" for v in truth_in_view]
    assert o["placement"]["on"]["J"] == 1.0 and o["placement"]["off"]["share"] == 0.0


def test_eval_video_cli_baselines(tiny_davis, tmp_path):
    root, _ = tiny_davis
    out = tmp_path / "r.json"
    r = run_cli("eval-video", str(root), "--follower", "naive-box", "--init", "box", "--out", str(out))
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    o = report["overall"]
    assert report["follower"] == "naive-box" and o["objects"] == 3 and o["windows_per_object_frame"] == 1.0
    assert 0.0 <= o["J"]["mean"] <= 1.0 and o["J&F"] == pytest.approx((o["J"]["mean"] + o["F"]["mean"]) / 2, abs=1e-4)
    assert "overall" in r.stdout and "two:2" in r.stdout
    # the generated set's meta.json gives per-condition figures
    assert report["per_sequence"]["one"]["conditions"]["speed"] == "slow"
    assert report["by_condition"]["speed=slow"]["objects"] == 3 and "J&F by condition" in r.stdout
    assert report["data"]["test"] is True
    assert report["root"] == root.name  # the folder's name, never a machine path

    out2 = tmp_path / "o.json"
    r = run_cli("eval-video", str(root), "--follower", "oracle-click", "--sequences", "one", "--out", str(out2))
    assert r.returncode == 0, r.stderr
    report = json.loads(out2.read_text())
    assert list(report["per_sequence"]) == ["one"] and report["overall"]["windows_per_object_frame"] > 1


def test_eval_video_cli_errors(tiny_davis, tmp_path):
    root, _ = tiny_davis
    out = tmp_path / "r.json"
    r = run_cli("eval-video", str(tmp_path), "--follower", "naive-box", "--out", str(out))
    assert r.returncode == 2 and "DAVIS layout" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("eval-video", str(root), "--sequences", "zzz", "--follower", "naive-box", "--out", str(out))
    assert r.returncode == 2 and "'zzz'" in r.stderr
    r = run_cli("eval-video", str(root), "--follower", "naive-box", "--out", str(tmp_path / "no" / "r.json"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    for policy, words in (
        ("{motion: mask}", "not JSON"),
        ("[1]", "JSON object"),
        ('{"motoin": "mask"}', "unknown TrackPolicy field(s) motoin"),
        ('{"motion": "teleport"}', "motion must be one of"),
    ):
        r = run_cli("eval-video", str(root), "--policy", policy, "--out", str(out))
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run_cli("eval-video", str(root), "--follower", "naive-box", "--policy", "{}", "--out", str(out))
    assert r.returncode == 2 and "applies to --follower tracker, oracle-window" in r.stderr
    assert not out.exists()


def test_eval_video_cli_policy_reaches_the_tracker(tiny_davis, tmp_path):
    """--policy changes the tracker's policy: the image-motion and mask-motion policies are both
    recorded in the report, and they follow differently on the generated sequences."""
    root, _ = tiny_davis
    reports = {}
    for motion in ("image", "mask"):
        out = tmp_path / f"{motion}.json"
        r = run_cli("eval-video", str(root), "--policy", f'{{"motion": "{motion}"}}', "--quiet", "--out", str(out))
        assert r.returncode == 0, r.stderr
        reports[motion] = json.loads(out.read_text())
        assert reports[motion]["policy"] == {"motion": motion}
    frames = [
        [o["J_per_frame"] for s in rep["per_sequence"].values() for o in s["objects"].values()]
        for rep in reports.values()
    ]
    assert frames[0] != frames[1]


def test_naive_click_follower_runs_the_model(tiny_davis):
    from picosam2.eval.video import make_follower
    from picosam2.predictor import Predictor

    root, _ = tiny_davis
    predictor = Predictor.from_pretrained(None, point_scales="auto", threads=1)
    (seq,) = read_davis(root, ["one"])
    report = evaluate_tracker(lambda: make_follower("naive-click", predictor), [seq], init="click", progress=False)
    s = report["per_sequence"]["one"]
    assert s["windows_per_object_frame"] > 1  # a scale-aware click: several windows
    assert 0.0 <= s["objects"]["1"]["J"]["mean"] <= 1.0 and sum(s["states"].values()) == len(seq) - 1
    # the predictor's windows are counted once, however many followers it served
    again = evaluate_tracker(lambda: make_follower("naive-click", predictor), [seq], init="click", progress=False)
    assert again["per_sequence"]["one"]["windows_per_object_frame"] == s["windows_per_object_frame"]
    with pytest.raises(Exception, match="unknown follower"):
        make_follower("psychic", predictor)


def test_oracle_window_follower_places_one_window_on_the_truth(tiny_davis):
    """One window an object and frame, centred on the true mask's most interior pixel, its side the
    policy's margin times the true extent; no window (and an empty mask) where the object is absent."""
    from picosam2.eval.video import make_follower
    from picosam2.predictor import Predictor
    from picosam2.track import TrackPolicy
    from picosam2.track import policy as P

    root, _ = tiny_davis
    predictor = Predictor.from_pretrained(None, point_scales="auto", threads=1)
    (seq,) = read_davis(root, ["one"])
    frame, gt = seq.frame(1), seq.labels(1) == 1
    for margin in (0.8, 1.5):
        follower = make_follower("oracle-window", predictor, TrackPolicy(margin=margin))
        follower.start(seq.frame(0), mask=seq.labels(0) == 1, obj_id=1)
        follower.observe_truth({1: gt})
        r = follower.update(frame)[1]
        x0, y0, x1, y1 = r.window
        obs = P.observe_mask(gt)
        cx, cy = obs.interior  # the most interior pixel, as the tracker finds it
        assert gt[int(round(cy)), int(round(cx))]
        assert r.windows == 1 and abs((x0 + x1) / 2 - cx) <= 1 and abs((y0 + y1) / 2 - cy) <= 1
        assert x1 - x0 == round(max(margin * P.extent_of(obs, obs.interior), 96.0))
        assert r.mask.shape == gt.shape and r.mask.any()
        follower.observe_truth({1: np.zeros_like(gt)})
        gone = follower.update(frame)[1]
        assert gone.windows == 0 and not gone.mask.any() and gone.state == "lost"
    report = evaluate_tracker(lambda: make_follower("oracle-window", predictor), [seq], init="mask", progress=False)
    s = report["per_sequence"]["one"]
    assert s["windows_per_object_frame"] <= 1.0 and 0.0 < s["objects"]["1"]["J"]["mean"] <= 1.0


def test_placement_of_known_answers():
    """Where a follower put the object: on / off (window centre within half the true extent of the
    true most interior pixel, or not), lost, and out of view with or without a mask."""
    from picosam2.eval.video import placement_of, placement_summary

    truth = square((200, 300), 50, 149, 100, 199)  # 100 x 100, interior near (150, 100)
    empty = np.zeros_like(truth)
    on = FollowResult(1, truth, 1.0, 1, (100, 50, 200, 150))
    near = FollowResult(1, truth, 1.0, 1, (130, 70, 230, 170))  # centre 36 px off: within half the extent
    far = FollowResult(1, empty, 1.0, 1, (0, 0, 100, 100))  # centre (50, 50): 111 px off
    assert placement_of(on, truth) == "on" and placement_of(near, truth) == "on"
    assert placement_of(far, truth) == "off"
    assert placement_of(FollowResult(1, truth, 1.0, 1, (100, 50, 200, 150), "lost"), truth) == "lost"
    assert placement_of(FollowResult(1, empty, 0.0, 0, None), truth) == "lost"  # nothing at all
    assert placement_of(FollowResult(1, empty, 0.0, 0, None, "lost"), empty) == "absent-empty"
    assert placement_of(FollowResult(1, truth, 1.0, 1, (100, 50, 200, 150)), empty) == "absent-mask"
    summary = placement_summary(["on", "on", "off", "absent-empty"], [0.5, 0.7, 0.0, 1.0])
    assert summary["on"] == {"share": 0.5, "J": 0.6} and summary["lost"] == {"share": 0.0, "J": None}


def test_tracker_oracles_read_motion_and_reacquisition_from_the_truth(tiny_davis):
    """The motion oracle moves the object by the true centroid motion; the reacquire oracle
    puts a lost object's window on the true most interior pixel and ends the loss exactly when the
    window mask overlaps the truth enough."""
    from dataclasses import replace

    from picosam2.eval.track_oracles import REACQUIRE_IOU
    from picosam2.eval.video import make_follower
    from picosam2.predictor import Predictor
    from picosam2.track import policy as P

    root, _ = tiny_davis
    predictor = Predictor.from_pretrained(None, point_scales="auto", threads=1)
    (seq,) = read_davis(root, ["one"])
    first, gt = seq.labels(0) == 1, seq.labels(1) == 1
    assert gt.any()

    def centroid(m):
        ys, xs = np.nonzero(m)
        return np.array([xs.mean(), ys.mean()])

    tracker = make_follower("tracker-oracle", predictor, oracle="motion")
    tracker.observe_truth({1: first})  # as the evaluation does: each frame's truth, frame 0 included
    tracker.start(seq.frame(0), mask=first, obj_id=1)
    before = np.array(tracker.state(1).anchor)
    tracker.observe_truth({1: gt})
    tracker.update(seq.frame(1))
    moved = np.array(tracker.state(1).anchor) - before
    np.testing.assert_allclose(moved, centroid(gt) - centroid(first), atol=1e-6)

    tracker = make_follower("tracker-oracle", predictor, oracle=["reacquire"])
    tracker.start(seq.frame(0), mask=first, obj_id=1)
    tracker._objects[1].state = replace(tracker.state(1), lost=3, anchor=(0.0, 0.0))  # lost, far away
    tracker.observe_truth({1: gt})
    r = tracker.update(seq.frame(1))[1]
    x0, y0, x1, y1 = r.window
    cx, cy = P.observe_mask(gt).interior
    assert r.windows == 1 and abs((x0 + x1) / 2 - cx) <= 1 and abs((y0 + y1) / 2 - cy) <= 1
    assert (r.state == "reacquired") == (region_j(r.mask, gt) >= REACQUIRE_IOU if r.mask.any() else False)
    # out of view: no re-acquisition
    tracker._objects[1].state = replace(tracker.state(1), lost=3)
    tracker.observe_truth({1: np.zeros_like(gt)})
    assert tracker.update(seq.frame(1))[1].state == "lost"


def test_tracker_oracle_split_parts_read_only_their_share(tiny_davis):
    """motion-following reads the true motion only while the object is followed; reacquire-window
    puts a lost object's window on the truth but ends the loss by the tracker's own rule;
    reacquire-accept keeps the tracker's own sweep window but ends the loss by the IoU rule."""
    from dataclasses import replace

    from picosam2.eval.track_oracles import REACQUIRE_IOU
    from picosam2.eval.video import make_follower
    from picosam2.predictor import Predictor
    from picosam2.track import Tracker
    from picosam2.track import policy as P

    root, _ = tiny_davis
    predictor = Predictor.from_pretrained(None, point_scales="auto", threads=1)
    (seq,) = read_davis(root, ["one"])
    first, gt = seq.labels(0) == 1, seq.labels(1) == 1

    def centroid(m):
        ys, xs = np.nonzero(m)
        return np.array([xs.mean(), ys.mean()])

    def lost_far(kind):
        t = make_follower("tracker-oracle", predictor, oracle=kind)
        t.observe_truth({1: first})
        t.start(seq.frame(0), mask=first, obj_id=1)
        t._objects[1].state = replace(t.state(1), lost=3, anchor=(5.0, 5.0))
        t.observe_truth({1: gt})
        return t

    following = make_follower("tracker-oracle", predictor, oracle="motion-following")
    following.observe_truth({1: first})
    following.start(seq.frame(0), mask=first, obj_id=1)
    before = np.array(following.state(1).anchor)
    following.observe_truth({1: gt})
    following.update(seq.frame(1))
    np.testing.assert_allclose(np.array(following.state(1).anchor) - before, centroid(gt) - centroid(first), atol=1e-6)
    # while lost the shift is the tracker's own: the same as a plain tracker's from the same state
    t, plain = lost_far("motion-following"), Tracker(predictor)
    plain._objects = {1: t._objects[1].__class__(**vars(t._objects[1]))}
    shift, _ = t._shift(1, t._objects[1], seq.frame(1))
    own, _ = plain._shift(1, plain._objects[1], seq.frame(1))
    assert shift == own

    t = lost_far("reacquire-window")
    r = t.update(seq.frame(1))[1]
    cx, cy = P.observe_mask(gt).interior
    x0, y0, x1, y1 = r.window
    assert abs((x0 + x1) / 2 - cx) <= 1 and abs((y0 + y1) / 2 - cy) <= 1  # the window on the truth
    t = lost_far("reacquire-window")
    sweep_window = t._windows(1, t._objects[1], (first.shape[1], first.shape[0]))[0]
    own_window = Tracker._windows(t, 1, t._objects[1], (first.shape[1], first.shape[0]))[0]
    assert sweep_window != own_window

    t = lost_far("reacquire-accept")
    size = (first.shape[1], first.shape[0])
    assert t._windows(1, t._objects[1], size) == Tracker._windows(t, 1, t._objects[1], size)  # own sweep
    r = t.update(seq.frame(1))[1]
    assert (r.state == "reacquired") == (r.mask.any() and region_j(r.mask, gt) >= REACQUIRE_IOU)


def test_eval_video_cli_tracker_oracle(tiny_davis, tmp_path):
    root, _ = tiny_davis
    out = tmp_path / "r.json"
    r = run_cli(
        "eval-video",
        str(root),
        "--follower",
        "tracker-oracle",
        "--oracle",
        "reacquire,motion",
        "--quiet",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert report["follower"] == "tracker-oracle" and report["oracle"] == ["motion", "reacquire"]
    assert report["overall"]["objects"] == 3
    shares = [v["share"] for v in report["overall"]["placement"].values()]
    assert sum(shares) == pytest.approx(1.0, abs=1e-3)
    for args, words in (
        (["--follower", "tracker-oracle"], "--oracle takes parts from motion, motion-following, reacquire"),
        (
            ["--follower", "tracker-oracle", "--oracle", "motion,motion-following"],
            "motion-following is a share of motion",
        ),
        (["--follower", "tracker-oracle", "--oracle", "motion,luck"], "got 'motion,luck'"),
        (["--follower", "tracker", "--oracle", "motion"], "--oracle applies to --follower tracker-oracle only"),
    ):
        bad = tmp_path / "bad.json"
        r = run_cli("eval-video", str(root), *args, "--quiet", "--out", str(bad))
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not bad.exists()


def test_tracker_oracle_size_and_centre_place_the_following_window(tiny_davis):
    """Under the size and centre oracles a following object's window is the oracle window: centred
    on the true most interior pixel, its side the margin times the true extent."""
    from picosam2.eval.video import make_follower
    from picosam2.predictor import Predictor
    from picosam2.track import policy as P

    root, _ = tiny_davis
    predictor = Predictor.from_pretrained(None, point_scales="auto", threads=1)
    (seq,) = read_davis(root, ["one"])
    first, gt = seq.labels(0) == 1, seq.labels(1) == 1
    tracker = make_follower("tracker-oracle", predictor, oracle="size,centre")
    tracker.observe_truth({1: first})
    tracker.start(seq.frame(0), point=P.observe_mask(first).interior, obj_id=1)
    tracker.observe_truth({1: gt})
    r = tracker.update(seq.frame(1))[1]
    obs = P.observe_mask(gt)
    assert r.window == P.window_at(obs.interior, P.extent_of(obs, obs.interior), gt.shape[::-1], tracker.policy)


def test_compare_placement_script_sorts_reference_j_by_the_follower_s_placement(tmp_path):
    """scripts/compare_placement.py: the reference's J is averaged over the frames where the
    follower's window had each placement; mismatched reports are one line and exit 2."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "compare_placement.py"

    def report(follower, js, places=None):
        obj = {"J_per_frame": js}
        if places is not None:
            obj["placement_per_frame"] = places
        return {"follower": follower, "per_sequence": {"s1": {"objects": {"1": obj}}}}

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(report("tracker", [0.5, 0.0, 0.0, 1.0], ["on", "lost", "lost", "absent-empty"])))
    b.write_text(json.dumps(report("oracle-window", [0.7, 0.4, 0.6, 1.0])))
    out = tmp_path / "cmp.json"
    r = subprocess.run([sys.executable, str(script), str(a), str(b), "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = json.loads(out.read_text())["by_placement"]
    assert got["lost"] == {"share": 0.5, "J": 0.0, "reference_J": 0.5, "frames": 2}
    assert got["on"]["reference_J"] == 0.7 and got["absent-empty"]["J"] == 1.0
    b.write_text(json.dumps(report("oracle-window", [0.7, 0.4])))
    bad = tmp_path / "bad.json"
    r = subprocess.run([sys.executable, str(script), str(a), str(b), "--out", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and "score different frames" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not bad.exists()
