"""coco-mini as a definition: the shipped ids rebuild the data set from a COCO 2017 download.

Without COCO 2017 here, the rebuild is checked on a COCO-shaped source folder made from coco-mini
itself (its images under train2017/ and val2017/ by their ``coco_url``, its annotations in
``instances_{train,val}2017.json``) plus images and annotations that coco-mini does not hold:
the rebuild must select exactly coco-mini again, byte for byte for the images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from picosam2.data.coco_mini import SPLITS, definition
from picosam2.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_coco_mini.py"


def test_definition_is_consistent():
    seen_images = set()
    for split in SPLITS:
        d = definition(split)
        ids = [i for i, _, _ in d.images]
        assert len(ids) == len(set(ids)) and not seen_images & set(ids), "an image in two splits"
        seen_images |= set(ids)
        assert all(cs in ("train2017", "val2017") and len(sha) == 64 for _, cs, sha in d.images)
        assert len(d.annotations) == len(set(d.annotations))
    train, val = definition("train"), definition("val")
    assert (len(train.images), len(train.annotations)) == (796, 3810)
    assert (len(val.images), len(val.annotations)) == (103, 953)
    assert {cs for _, cs, _ in val.images} == {"val2017"}


def _fake_coco(coco_mini: Path, dst: Path) -> None:
    """A COCO 2017-shaped folder holding coco-mini's images and annotations, plus extras."""
    docs = {cs: None for cs in ("train2017", "val2017")}
    for split in SPLITS:
        doc = json.loads((coco_mini / "annotations" / f"instances_{split}.json").read_text())
        for im in doc["images"]:
            cs = im["coco_url"].rsplit("/", 2)[-2]
            (dst / cs).mkdir(parents=True, exist_ok=True)
            os.symlink(coco_mini / "images" / split / im["file_name"], dst / cs / im["file_name"])
            if docs[cs] is None:
                docs[cs] = {"info": {}, "licenses": [{"id": 1, "name": "x"}], "categories": doc["categories"],
                            "images": [], "annotations": []}  # fmt: skip
            docs[cs]["images"].append({**im, "date_captured": "2013", "flickr_url": "http://x"})
        by_image = {im["id"]: im["coco_url"].rsplit("/", 2)[-2] for im in doc["images"]}
        for a in doc["annotations"]:
            docs[by_image[a["image_id"]]]["annotations"].append(a)
    # what the selection must leave out: an annotation on a selected image, an image not selected
    first = docs["val2017"]["annotations"][0]
    docs["val2017"]["annotations"].insert(0, {**first, "id": 10**12})
    docs["val2017"]["images"].append({**docs["val2017"]["images"][0], "id": 10**12, "file_name": "x.jpg"})
    (dst / "annotations").mkdir()
    for cs, doc in docs.items():
        (dst / "annotations" / f"instances_{cs}.json").write_text(json.dumps(doc))


def test_rebuild_from_coco_layout_reproduces_coco_mini(coco_mini, tmp_path):
    src, out = tmp_path / "coco", tmp_path / "data" / "coco-mini"
    _fake_coco(coco_mini, src)
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--coco", str(src), "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr  # every image's sha256 matched the definition
    for split in SPLITS:
        want = json.loads((coco_mini / "annotations" / f"instances_{split}.json").read_text())
        got = json.loads((out / "annotations" / f"instances_{split}.json").read_text())
        for key in ("images", "annotations", "categories"):
            assert got[key] == want[key], (split, key)
        names = sorted(p.name for p in (out / "images" / split).iterdir())
        assert names == sorted(im["file_name"] for im in want["images"])
    assert not [p for p in out.parent.iterdir() if p.name != "coco-mini"], "a staging folder was left behind"


def test_rebuild_reports_a_changed_image_and_refuses_a_full_out(coco_mini, tmp_path):
    src = tmp_path / "coco"
    _fake_coco(coco_mini, src)
    victim = src / "val2017" / "000000000139.jpg"
    data = victim.read_bytes()
    victim.unlink()
    victim.write_bytes(data + b"\0")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(SCRIPT), "--coco", str(src), "--out", str(out), "--quiet", "--link"],
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0 and "1 image(s) differ" in r.stderr and "val/000000000139.jpg" in r.stderr
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--coco", str(src), "--out", str(out)], capture_output=True, text=True
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not an empty folder" in r.stderr


def test_rebuild_errors_name_the_missing_part(tmp_path):
    from picosam2.data.coco_mini import build

    (tmp_path / "coco" / "annotations").mkdir(parents=True)
    with pytest.raises(DataError, match="instances_"):
        build(tmp_path / "coco", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "coco" / "annotations" / "instances_train2017.json").write_text(
        '{"images": [], "annotations": [], "categories": []}'
    )
    (tmp_path / "coco" / "annotations" / "instances_val2017.json").write_text(
        '{"images": [], "annotations": [], "categories": []}'
    )
    with pytest.raises(DataError, match="not in (train|val)2017"):
        build(tmp_path / "coco", tmp_path / "out")
    assert [p.name for p in tmp_path.iterdir()] == ["coco"]
