"""``picosam2 track``: frames from a folder, a glob and an MP4; masks, overlay, JSON; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from picosam2.cli import main
from picosam2.image_io import load_image

av = pytest.importorskip("av", reason="the video extra (PyAV) is not installed")


def _pan(image, dx):
    out = np.empty_like(image)
    out[:, dx:] = image[:, : image.shape[1] - dx]
    out[:, :dx] = image[:, :1]
    return out


@pytest.fixture(scope="module")
def frames(samples_dir):
    photo = load_image(samples_dir / "dog.jpg")[:480, :640]
    return [_pan(photo, 5 * k) for k in range(6)]


@pytest.fixture
def frame_dir(tmp_path, frames):
    d = tmp_path / "frames"
    d.mkdir()
    for k, f in enumerate(frames):
        Image.fromarray(f).save(d / f"f{k}.png")  # natural order: f2 before f10
    return d


def test_track_folder_writes_masks_overlay_and_json(tmp_path, frame_dir, frames, capsys):
    out, mp4, js = tmp_path / "masks", tmp_path / "ov.mp4", tmp_path / "t.json"
    rc = main(
        [
            "track",
            str(frame_dir),
            "--point",
            "570,200",
            "--box",
            "480,130,670,270",
            "--frame",
            "1",
            "--out",
            str(out),
            "--overlay",
            str(mp4),
            "--json",
            str(js),
            "--threads",
            "1",
        ]
    )
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["obj1", "obj2"]
    names = sorted(p.name for p in (out / "obj1").iterdir())
    assert names == [f"{k:05d}.png" for k in range(1, 6)]  # from --frame on
    m = np.asarray(Image.open(out / "obj1" / "00003.png"))
    assert m.shape == frames[0].shape[:2] and set(np.unique(m)) <= {0, 255} and (m == 255).any()
    report = json.loads(js.read_text())
    assert [f["frame"] for f in report["frames"]] == [1, 2, 3, 4, 5]
    later = report["frames"][2]["objects"]["1"]
    assert later["windows"] == 1 and later["state"] in ("tracking", "lost", "reacquired") and len(later["window"]) == 4
    with av.open(str(mp4)) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 5 and decoded[0].shape == (480, 640, 3)
    assert "followed 2 object(s) over 5 frames" in capsys.readouterr().out


def test_track_reads_a_video_and_a_glob_alike(tmp_path, frame_dir, frames):
    from picosam2.track.video import FrameSource, VideoWriter

    video = tmp_path / "clip.mp4"
    w = VideoWriter(video, fps=10)
    for f in frames:
        w.write(f)
    w.close()
    src = FrameSource(video)
    got = list(src)
    assert len(got) == len(frames) and src.fps == pytest.approx(10)
    assert np.abs(got[3].astype(int) - frames[3]).mean() < 8  # lossy, but the same picture
    for source in (str(video), str(frame_dir / "f*.png")):
        out = tmp_path / ("v" if source.endswith("mp4") else "g")
        assert main(["track", source, "--point", "570,200", "--out", str(out), "--threads", "1"]) == 0
        assert len(list((out / "obj1").iterdir())) == len(frames)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["missing.mp4", "--point", "5,5"], "no such video"),
        (["{frames}", "--point", "5000,5"], "outside"),
        (["{frames}", "--point", "5"], "--point must be 2 comma-separated numbers"),
        (["{frames}"], "at least one --point"),
        (["{frames}", "--point", "5,5", "--frame", "99"], "has only 6 frames"),
        (["{bad}", "--point", "5,5"], "cannot read video"),
    ],
)
def test_track_bad_input_is_one_line_and_writes_nothing(tmp_path, frame_dir, capsys, argv, message):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    argv = [a.format(frames=frame_dir, bad=bad) for a in argv]
    out = tmp_path / "out"
    with pytest.raises(SystemExit) if message.startswith("--point") else _no_raise():
        rc = main(["track", *argv, "--out", str(out), "--overlay", str(tmp_path / "o.mp4")])
        assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists() and not (tmp_path / "o.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "frames"]  # no temporary left


def test_track_refuses_a_non_empty_out(tmp_path, frame_dir, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["track", str(frame_dir), "--point", "570,200", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
