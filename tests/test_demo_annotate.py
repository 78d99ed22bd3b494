"""The demo's "Save as annotation" API (``picosam2 demo --annotations OUT.json``): the page's masks
become COCO annotations (one per object) that pycocotools reads and ``finetune``'s label check
accepts, the photo is stored beside them, and bad requests are one-line 4xx errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("pycocotools")

from fastapi.testclient import TestClient  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402

from conftest import run_cli  # noqa: E402
from picosam2 import Predictor  # noqa: E402
from picosam2.data.labels import import_labels  # noqa: E402
from picosam2.demo.annotate import AnnotationFile, safe_stem  # noqa: E402
from picosam2.demo.app import create_app  # noqa: E402
from picosam2.errors import PicoSAM2Error  # noqa: E402
from picosam2.image_io import load_image  # noqa: E402
from test_demo_api import DOG_POINT, assert_json_error, contrast_model  # noqa: E402

BOX = [480, 130, 670, 270]


@pytest.fixture(scope="module")
def predictor(trained_like_model):
    return Predictor(contrast_model(trained_like_model))


@pytest.fixture
def out(tmp_path):
    return tmp_path / "labels" / "site.json"


@pytest.fixture
def client(predictor, out, tmp_path):
    app = create_app(predictor=predictor, trained=False, model_cache_dir=tmp_path / "models", annotations=out)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture(scope="module")
def dog_bytes(samples_dir):
    return (samples_dir / "dog.jpg").read_bytes()


def runs(mask: np.ndarray) -> list[int]:
    """Row-major run lengths, background first (what the page sends)."""
    flat = np.asarray(mask, bool).ravel()
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    lengths = np.diff(bounds).tolist()
    return ([0] if flat[0] else []) + lengths


def annotate(client, data, filename="photo.jpg", **fields):
    files = {"image": (filename, data, "application/octet-stream")} if data is not None else None
    return client.post("/api/annotate", files=files, data={k: v for k, v in fields.items() if v is not None})


def segment_mask(client, data, **fields) -> np.ndarray:
    r = client.post("/api/segment", files={"image": ("p.jpg", data, "image/jpeg")}, data=fields)
    assert r.status_code == 200, r.text
    return np.asarray(Image.open(io.BytesIO(r.content))) == 255


def test_server_masks_one_annotation_per_prompt(client, out, dog_bytes):
    assert client.get("/api/info").json()["annotations"] == "site.json"
    r = annotate(client, dog_bytes, "My dog (1).JPG", points=json.dumps([DOG_POINT]), boxes=json.dumps([BOX]))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["file"] == "site.json" and answer["file_name"] == "images/My_dog_1.jpg"
    assert answer["annotation_ids"] == [1, 2] and answer["annotations"] == 2 and answer["category"] == "object"
    assert (out.parent / "images" / "My_dog_1.jpg").read_bytes() == dog_bytes  # the photo as uploaded
    coco = COCO(str(out))
    (img,) = coco.loadImgs(coco.getImgIds())
    assert (img["file_name"], img["width"], img["height"]) == ("images/My_dog_1.jpg", 800, 534)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
    # each object is the mask /api/segment shows for that prompt alone; together, the page's union
    point = segment_mask(client, dog_bytes, points=json.dumps([DOG_POINT]))
    box = segment_mask(client, dog_bytes, boxes=json.dumps([BOX]))
    assert point.any() and box.any() and not np.array_equal(point, box)
    np.testing.assert_array_equal(coco.annToMask(anns[0]) > 0, point)
    np.testing.assert_array_equal(coco.annToMask(anns[1]) > 0, box)
    assert anns[0]["area"] == point.sum() and anns[0]["iscrowd"] == 0
    # what finetune reads: the label check passes, the photo is found beside the file
    labels = import_labels(out, [out.parent])
    assert len(labels["annotations"]) == 2


def test_same_object_twice_is_refused_and_the_file_is_unchanged(client, out, dog_bytes):
    assert annotate(client, dog_bytes, points=json.dumps([DOG_POINT])).status_code == 200
    before = out.read_bytes()
    r = annotate(client, dog_bytes, points=json.dumps([DOG_POINT]))
    assert_json_error(r, 409)
    assert "already saved" in r.json()["error"] and "annotation 1" in r.json()["error"]
    assert out.read_bytes() == before
    # the same mask under another category is another label
    r = annotate(client, dog_bytes, points=json.dumps([DOG_POINT]), category="dog")
    assert r.status_code == 200, r.text
    assert [c["name"] for c in json.loads(out.read_text())["categories"]] == ["object", "dog"]


def test_masks_made_in_the_page_are_saved_as_sent(client, out, dog_bytes):
    mask = np.zeros((534, 800), bool)
    mask[100:200, 300:450] = True
    mask[0, 0] = True  # a run starting on the first pixel
    other = np.zeros_like(mask)
    other[300:400, 50:120] = True
    masks = [{"width": 800, "height": 534, "runs": runs(m)} for m in (mask, other)]
    r = annotate(client, dog_bytes, "dog.jpg", masks=json.dumps(masks), category="cup")
    assert r.status_code == 200, r.text
    coco = COCO(str(out))
    anns = coco.loadAnns(coco.getAnnIds())
    np.testing.assert_array_equal(coco.annToMask(anns[0]) > 0, mask)
    np.testing.assert_array_equal(coco.annToMask(anns[1]) > 0, other)
    assert coco.loadCats(anns[0]["category_id"])[0]["name"] == "cup"


def test_sample_photo_another_photo_of_the_same_name_and_exif(client, out, dog_bytes, samples_dir):
    r = client.post("/api/annotate", data={"sample": "dog", "points": json.dumps([DOG_POINT])})
    assert r.status_code == 200 and r.json()["file_name"] == "images/dog.jpg"
    truck = (samples_dir / "truck.jpg").read_bytes()
    size = Image.open(io.BytesIO(truck)).size
    r = annotate(client, truck, "dog.jpg", boxes=json.dumps([[10, 10, 200, 200]]))
    assert r.status_code == 200, r.text
    name = r.json()["file_name"]
    assert name.startswith("images/dog-") and name.endswith(".jpg")
    assert (out.parent / name).read_bytes() == truck and (out.parent / "images/dog.jpg").read_bytes() == dog_bytes
    # a photo shown rotated by its EXIF tag is stored upright (PNG), as its masks are
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.open(io.BytesIO(dog_bytes)).save(buf, format="JPEG", exif=exif, quality=95)
    r = annotate(client, buf.getvalue(), "turned.jpg", points=json.dumps([[300, 700]]))
    assert r.status_code == 200, r.text
    assert r.json()["file_name"] == "images/turned.png"
    stored = load_image(out.parent / "images/turned.png")
    assert stored.shape == (800, 534, 3) and np.array_equal(stored, load_image(Image.open(io.BytesIO(buf.getvalue()))))
    images = {i["file_name"]: (i["width"], i["height"]) for i in json.loads(out.read_text())["images"]}
    assert images == {"images/dog.jpg": (800, 534), name: size, "images/turned.png": (534, 800)}
    assert len(import_labels(out, [out.parent])["annotations"]) == 3


@pytest.mark.parametrize(
    "fields, status, words",
    [
        ({}, 400, "nothing to save"),
        ({"masks": "[{"}, 400, "not valid JSON"),
        ({"masks": "[]"}, 400, "JSON list"),
        ({"masks": json.dumps([{"width": 80, "height": 53, "runs": [4240]}])}, 400, "the photo is 800x534"),
        ({"masks": json.dumps([{"width": 800, "height": 534, "runs": [10, 5]}])}, 400, "runs cover 15 pixels"),
        ({"masks": json.dumps([{"width": 800, "height": 534, "runs": [427200, -1]}])}, 400, "whole numbers"),
        ({"masks": json.dumps([{"width": 800, "height": 534, "runs": [427200]}])}, 400, "mask is empty"),
        ({"points": json.dumps([[5000, 1]])}, 422, "outside"),
        ({"points": json.dumps([DOG_POINT]), "category": "  "}, 400, "category"),
        ({"points": json.dumps([DOG_POINT]), "category": "x" * 65}, 400, "category"),
    ],
)
def test_bad_saves_are_one_line_errors_and_write_nothing(client, out, dog_bytes, fields, status, words):
    r = annotate(client, dog_bytes, **fields)
    assert_json_error(r, status)
    assert words in r.json()["error"], r.json()
    assert not out.exists() and not (out.parent / "images").exists()


def test_off_without_annotations(predictor, dog_bytes, tmp_path):
    app = create_app(predictor=predictor, trained=False, model_cache_dir=tmp_path / "models")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.get("/api/info").json()["annotations"] is None
        r = annotate(c, dog_bytes, points=json.dumps([DOG_POINT]))
        assert_json_error(r, 404)
        assert "--annotations" in r.json()["error"]
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["models"])


def test_the_file_is_checked_when_the_demo_starts(tmp_path, capsys):
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "notcoco.json").write_text('{"a": 1}')
    for bad, words in (("labels.txt", ".json"), ("folder.json", "folder"), ("notcoco.json", "not a COCO")):
        with pytest.raises(PicoSAM2Error, match=words):
            AnnotationFile(tmp_path / bad)
    r = run_cli("demo", "--no-browser", "--port", "0", "--annotations", str(tmp_path / "notcoco.json"))
    assert r.returncode == 2 and "not a COCO" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_safe_names():
    assert safe_stem("C:\\Users\\me\\IMG 0001.HEIC.jpg") == "IMG_0001.HEIC"
    assert safe_stem("../../etc/passwd") == "passwd"
    assert safe_stem("..") == safe_stem("") == safe_stem("_.png") == "photo"
    assert safe_stem("dog") == "dog" and len(safe_stem("a" * 500 + ".png")) == 100
