"""The drift monitor end to end through the camera loop: a reference recorded by `camera --simulate`
on some dev-val photos says ok on other dev-val photos and drift on the same photos darkened or
blurred; the monitor arms frame collection on drift and disarms it on ok; collected frames
become COCO pre-annotations a labelling tool can read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from conftest import run_cli

pytest.importorskip("scipy")

from picosam2.ops.collect import Collector, armed, collected, to_coco  # noqa: E402
from picosam2.ops.monitor import compare  # noqa: E402
from picosam2.ops.reference import camera_reference, photos_of, reference_note, run_camera_log  # noqa: E402


def _shifted(photos, folder: Path, kind: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in photos:
        im = Image.open(p).convert("RGB")
        im = (
            Image.fromarray((np.asarray(im, np.float32) * 0.5).astype(np.uint8))
            if kind == "dark"
            else im.filter(ImageFilter.GaussianBlur(2.0))
        )
        out.append(folder / f"{Path(p).stem}.png")
        im.save(out[-1], compress_level=1)  # lossless all the same, and several times faster to write
    return out


@pytest.fixture(scope="module")
def monitored(coco_mini, tmp_path_factory):
    """Reference: the camera loop on the first 40 dev-val photos; logs of the other 63 as they
    are, darkened and blurred (the shipped weights play the network)."""
    from picosam2.models.registry import resolve_weights

    d = tmp_path_factory.mktemp("monitor")
    photos = photos_of(coco_mini / "annotations" / "instances_val.json", [coco_mini / "images" / "val"])
    assert len(photos) == 103
    net = resolve_weights(None)
    ref = camera_reference(net, photos[:40])
    bundle = d / "bundle"
    (bundle / "monitor").mkdir(parents=True)
    (bundle / "monitor" / "reference.json").write_text(json.dumps(ref))
    (bundle / "manifest.json").write_text(json.dumps({"version": "1.0.0"}))
    rest = photos[40:]
    logs = {"same": d / "same.log", "dark": d / "dark.log", "blur": d / "blur.log"}
    run_camera_log(net, rest, logs["same"])
    for kind in ("dark", "blur"):
        run_camera_log(net, _shifted(rest, d / kind, kind), logs[kind])
    return {"ref": ref, "bundle": bundle, "logs": logs, "dir": d}


def test_reference_is_recorded_through_the_camera_loop(monitored):
    ref = monitored["ref"]
    assert ref["path"] == "camera" and ref["n"] == 40 and reference_note(ref) is None
    assert reference_note({"source": "windows"}).startswith("warning:")
    assert {"sharpness", "brightness", "mask_area", "score"} <= set(ref["statistics"])


def test_unseen_in_distribution_photos_are_ok(monitored):
    r = run_cli("monitor", str(monitored["logs"]["same"]), "--bundle", str(monitored["bundle"]), "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["verdict"] == "ok", report
    assert report["frames"] == 63


@pytest.mark.parametrize("kind, statistic", [("dark", "brightness"), ("blur", "sharpness")])
def test_shifted_photos_drift(monitored, kind, statistic):
    from picosam2.ops.monitor import read_recent

    report = compare(monitored["ref"], read_recent(monitored["logs"][kind], 0))
    assert report["verdict"] == "drift" and statistic in report["drifting"], report["drifting"]


def test_drift_arms_collection_and_ok_disarms_it(monitored, tmp_path):
    collect = tmp_path / "collect"
    args = ["--bundle", str(monitored["bundle"]), "--collect", str(collect), "--collect-max", "3"]
    r = run_cli("monitor", str(monitored["logs"]["dark"]), *args)
    assert r.returncode == 1 and "collection: armed" in r.stdout
    info = armed(collect)
    assert info["max_items"] == 3 and "brightness" in info["drifting"]

    sink = Collector(collect, check_every=1)
    frame = np.full((60, 80, 3), 40, np.uint8)
    for k in range(5):
        mask = np.zeros((60, 80), bool)
        mask[10 : 20 + k, 10:30] = True
        assert sink.add(frame, mask, {"prompt": [40, 30], "roi": [0, 0, 80, 60], "k": k}) is not None
    kept = collected(collect)
    assert [json.loads(p.read_text())["k"] for p in kept] == [2, 3, 4]  # bounded, oldest gone
    assert len(list(collect.glob("*.png"))) == 6

    out = tmp_path / "pre-annotations.json"
    assert to_coco(collect, out) == {"images": 3}
    from picosam2.data.labels import import_labels

    assert import_labels(out, [collect])["summary"]["objects"] == 3

    r = run_cli("monitor", str(monitored["logs"]["same"]), *args)
    assert r.returncode == 0 and "collection: disarmed" in r.stdout and armed(collect) is None
    assert sink.add(frame, mask, {"k": 9}) is None and len(collected(collect)) == 3  # off: nothing kept


def test_monitor_arms_the_cameras_collection_end_to_end(monitored, tmp_path):
    """The two halves wired: the monitor flags the dark photos and arms DIR; the camera loop run
    with ``--collect DIR`` on dark frames then keeps them (bounded), and once the monitor says ok
    again the same camera run keeps nothing."""
    import shutil

    frames = tmp_path / "frames"
    frames.mkdir()
    for p in sorted((monitored["dir"] / "dark").glob("*.png"))[:4]:
        shutil.copy(p, frames / p.name)
    collect = tmp_path / "collect"
    args = ["--bundle", str(monitored["bundle"]), "--collect", str(collect), "--collect-max", "3"]
    assert run_cli("monitor", str(monitored["logs"]["dark"]), *args).returncode == 1
    r = run_cli("camera", "--simulate", str(frames), "--collect", str(collect))
    assert r.returncode == 0 and "collected 4 of 4 frames" in r.stdout, r.stdout + r.stderr
    kept = [json.loads(p.read_text()) for p in collected(collect)]
    assert [k["photo"] for k in kept] == sorted(p.name for p in frames.iterdir())[1:]  # the monitor's max: 3
    assert all("brightness" in k["drifting"] and k["window_side"] for k in kept)
    assert run_cli("monitor", str(monitored["logs"]["same"]), *args).returncode == 0
    r = run_cli("camera", "--simulate", str(frames), "--collect", str(collect))
    assert r.returncode == 0 and "collected 0 of 4 frames" in r.stdout
    assert len(collected(collect)) == 3
