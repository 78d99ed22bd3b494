"""``picosam2 camera --collect DIR``: the camera loop keeps frames for labelling only while the
monitor has armed the folder, at most ``--collect-max`` of them (the oldest go first), each with
the mask the loop showed and what produced it (prompt, ROI, window side, score)."""

import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from picosam2.image_io import load_image
from picosam2.ops.collect import arm, collected, disarm

LINE = re.compile(r"^frame (\d+) \(([^)]+)\): roi (\d+), (\d+), (\d+), (\d+); mask pixels: (\d+);")


@pytest.fixture
def photos(samples_dir, tmp_path):
    """Five frames: the three bundled photos, then two of them again."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for k, name in enumerate(("dog", "truck", "groceries", "dog", "truck")):
        shutil.copy(samples_dir / f"{name}.jpg", folder / f"{k:02d}-{name}.jpg")
    return folder


def frame_lines(stdout):
    return {m[2]: m for m in (LINE.match(ln) for ln in stdout.splitlines()) if m}


def test_not_armed_nothing_is_written(photos, tmp_path):
    folder = tmp_path / "collect"
    r = run_cli("camera", "--simulate", str(photos), "--point", "300,200", "--collect", str(folder))
    assert r.returncode == 0, r.stderr
    assert "collected 0 of 5 frames" in r.stdout and "(not armed)" in r.stdout
    assert "while the monitor has armed it" in r.stderr
    assert sorted(folder.iterdir()) == []


def test_armed_keeps_frames_masks_and_records_bounded_oldest_first(photos, tmp_path):
    folder = tmp_path / "collect"
    arm(folder, {"drifting": ["brightness"], "bundle_version": "1.0.0"}, max_items=50)
    r = run_cli(
        "camera", "--simulate", str(photos), "--point", "300,200", "--window-size", "192",
        "--collect", str(folder), "--collect-max", "3",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "collected 5 of 5 frames" in r.stdout
    lines = frame_lines(r.stdout)
    records = collected(folder)
    # --collect-max 3 wins over the arming record's 50: the first two frames were deleted
    assert [p.name for p in records] == ["00000002.json", "00000003.json", "00000004.json"]
    assert not (folder / "00000000.png").exists() and not (folder / "00000001-mask.png").exists()
    for path in records:
        rec = json.loads(path.read_text())
        line = lines[rec["photo"]]
        assert rec["frame"] == int(line[1])
        assert rec["prompt"] == [300.0, 200.0] and rec["prompt_kind"] == "point"
        assert rec["roi"] == [int(v) for v in line.group(3, 4, 5, 6)] == [204, 104, 192, 192]
        assert rec["window_side"] == 192 and rec["drifting"] == ["brightness"] and rec["armed_since"]
        frame = np.asarray(Image.open(folder / rec["image"]))
        assert np.array_equal(frame, load_image(photos / rec["photo"]))  # the frame as the camera saw it
        mask = np.asarray(Image.open(folder / rec["mask"]))
        assert mask.shape == frame.shape[:2] and set(np.unique(mask)) <= {0, 255}
        assert int((mask == 255).sum()) == int(line[7])  # the mask the loop showed for that frame
        assert (mask[104:296, 204:396] == 255).sum() == (mask == 255).sum()  # only inside the ROI
    # the monitor says ok again: collection stops, what was kept stays
    disarm(folder)
    r = run_cli("camera", "--simulate", str(photos), "--point", "300,200", "--collect", str(folder))
    assert r.returncode == 0 and "collected 0 of 5 frames" in r.stdout
    assert len(collected(folder)) == 3


def test_collect_every_and_the_monitors_max(photos, tmp_path):
    folder = tmp_path / "collect"
    arm(folder, {"drifting": ["sharpness"]}, max_items=1)
    r = run_cli("camera", "--simulate", str(photos), "--collect", str(folder), "--collect-every", "2")
    assert r.returncode == 0, r.stderr
    assert "collected 3 of 5 frames" in r.stdout  # frames 0, 2 and 4
    records = collected(folder)
    assert [p.name for p in records] == ["00000002.json"]  # the arming record's max: 1
    rec = json.loads(records[0].read_text())
    assert rec["frame"] == 4 and rec["prompt"] is None and rec["prompt_kind"] == "center"


def test_collect_while_tracking(samples_dir, tmp_path):
    from test_camera import _panned_clip

    clip = _panned_clip(samples_dir, tmp_path / "clip", frames=4)
    folder = tmp_path / "collect"
    arm(folder, {"drifting": ["mask_area"]})
    r = run_cli(
        "camera", "--simulate", str(clip), "--track", "--point", "240,180", "--window-size", "252",
        "--collect", str(folder),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = frame_lines(r.stdout)
    records = [json.loads(p.read_text()) for p in collected(folder)]
    assert [rec["frame"] for rec in records] == [0, 1, 2, 3]
    for rec in records:
        assert f"; state {rec['state']};" in lines[rec["photo"]].string
        assert rec["roi"] == [int(v) for v in lines[rec["photo"]].group(3, 4, 5, 6)]
        assert (np.asarray(Image.open(folder / rec["mask"])) == 255).sum() == int(lines[rec["photo"]][7])


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--collect-max", "0"], "--collect-max must be at least 1"),
        (["--collect-every", "0"], "--collect-every must be at least 1"),
    ],
)
def test_bad_collect_numbers_are_one_line(samples_dir, tmp_path, extra, words):
    r = run_cli("camera", "--simulate", str(samples_dir / "dog.jpg"), "--collect", str(tmp_path / "c"), *extra)
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "c").exists()


def test_collect_max_without_a_folder_and_a_folder_that_is_a_file(samples_dir, tmp_path):
    r = run_cli("camera", "--simulate", str(samples_dir / "dog.jpg"), "--collect-max", "5")
    assert r.returncode == 2 and "need --collect DIR" in r.stderr
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = run_cli("camera", "--simulate", str(samples_dir / "dog.jpg"), "--collect", str(afile))
    assert r.returncode == 2 and "--collect" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert afile.read_text() == "x"
