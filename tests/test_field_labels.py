"""Site labels: CVAT and Label Studio COCO exports are read and normalised, unusable labels are
refused with one clear line, and our own accepted masks are written as COCO that reads back."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURES

pytest.importorskip("pycocotools")

from picosam2.data import InstanceSet  # noqa: E402
from picosam2.data.labels import LabelError, add_annotation, decode_mask, import_labels, write_coco  # noqa: E402

LABELS = FIXTURES / "labels"


def _images(folder: Path, names) -> Path:
    for name in names:
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(p)
    return folder


@pytest.fixture
def cvat(tmp_path):
    return LABELS / "cvat_coco_1.0.json", _images(tmp_path / "cvat", ["frame_000000.png", "frame_000001.png"])


@pytest.fixture
def label_studio(tmp_path):
    root = tmp_path / "ls-export"
    _images(root, ["images/3f2a1b9c-frame_000002.png", "images/7d41e0aa-frame_000003.png"])
    return LABELS / "label_studio_coco.json", root


def test_cvat_export_reads_with_polygons_and_rle(cvat):
    ann, images = cvat
    data = import_labels(ann, [images])
    assert data["summary"] == {"images": 2, "objects": 2, "crowd": 1, "categories": 2}
    rle = next(a for a in data["annotations"] if a["id"] == 2)
    m = decode_mask(rle["segmentation"], 48, 64)
    assert m.sum() == 100 and m[20:30, 40:50].all()  # the RLE square at x 40..49, y 20..29


def test_label_studio_export_resolves_its_image_paths(label_studio, tmp_path):
    ann, root = label_studio
    data = import_labels(ann, [root])
    names = [im["file_name"] for im in data["images"]]
    assert names == ["images/3f2a1b9c-frame_000002.png", "images/7d41e0aa-frame_000003.png"]  # backslash fixed
    out = tmp_path / "normalised.json"
    out.write_text(json.dumps(data))
    iset = InstanceSet(out, [root])
    insts = iset.instances()
    assert len(insts) == 3 and all(i.image_path is not None for i in insts)
    assert iset.mask(insts[0]).sum() > 250  # ids from 0 are kept


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["annotations"][0].update(segmentation=[]), "empty segmentation"),
        (lambda d: d["annotations"][0].update(segmentation=[[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]), "empty mask"),
        (
            lambda d: d["annotations"][0].update(segmentation=[[10.0, 10.0, 90.0, 10.0, 90.0, 30.0]]),
            "outside the 64x48",
        ),
        (lambda d: d["annotations"][1]["segmentation"].update(size=[480, 640]), "out of the image"),
        (lambda d: d["annotations"].append({**d["annotations"][0], "id": 9}), "duplicate of annotation 1"),
        (lambda d: d["annotations"].append({**d["annotations"][0]}), "the id is used twice"),
        (lambda d: d["annotations"][0].update(image_id=77), "image_id 77 is not among the images"),
        (lambda d: d["annotations"][0].update(category_id=5), "category_id 5"),
        (lambda d: d["images"][0].update(file_name="missing.png"), "missing.png is not in"),
    ],
)
def test_bad_labels_are_refused_with_a_clear_line(cvat, tmp_path, edit, message):
    ann, images = cvat
    data = copy.deepcopy(json.loads(ann.read_text()))
    edit(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(LabelError) as err:
        import_labels(bad, [images])
    text = str(err.value)
    assert message in text and "\n" not in text


def test_finetune_refuses_bad_labels_before_training(cvat, tmp_path):
    from conftest import run_cli

    ann, images = cvat
    data = json.loads(ann.read_text())
    data["annotations"][0]["segmentation"] = []
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    r = run_cli("finetune", "--annotations", str(bad), "--images", str(images), "--out", str(tmp_path / "w2"))
    assert r.returncode == 2 and "empty segmentation" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "w2").exists()


def test_accepted_masks_written_as_coco_read_back(tmp_path):
    a = np.zeros((48, 64), bool)
    a[5:20, 8:30] = True
    b = np.zeros((48, 64), bool)
    b[30:40, 40:60] = True
    _images(tmp_path, ["one.png", "two.png"])
    out = write_coco(tmp_path / "accepted.json", [{"file_name": "one.png", "masks": [a, b]}])
    add_annotation(out, "two.png", [b], category="object")
    add_annotation(out, "one.png", [b | a], category="crate")
    data = import_labels(out, [tmp_path])
    assert data["summary"]["objects"] == 4 and data["summary"]["categories"] == 2
    iset = InstanceSet(out, [tmp_path])
    masks = [iset.mask(i) for i in iset.instances()]
    assert (masks[0] == a).all() and (masks[1] == b).all() and (masks[2] == (a | b)).all() and (masks[3] == b).all()
    with pytest.raises(LabelError, match="empty mask"):
        add_annotation(out, "one.png", [np.zeros((48, 64), bool)])
