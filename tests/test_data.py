import json

import numpy as np
import pytest

from picosam2.data import DataError, InstanceSet, box_prompt, interior_point, paper_point, random_point
from picosam2.data.coco import size_class
from picosam2.data.prompt_rules import EmptyMaskError


@pytest.fixture(scope="module")
def tiny(fixtures_dir):
    return InstanceSet(fixtures_dir / "coco_tiny" / "instances.json", [fixtures_dir / "coco_tiny" / "images"])


def test_instances_follow_img_to_anns_order(tiny):
    js = tiny.coco.dataset
    expect = []
    for img in js["images"]:
        expect += [a["id"] for a in js["annotations"] if a["image_id"] == img["id"] and not a["iscrowd"]]
    got = [i.ann_id for i in tiny.instances()]
    assert got == expect
    assert len(tiny.instances(include_crowd=True)) == len(js["annotations"])
    assert [i.ann_id for i in tiny.instances(limit=5)] == expect[:5]


def test_masks_decode_polygons_and_rle(tiny):
    crowd = [i for i in tiny.instances(include_crowd=True) if i.iscrowd]
    assert crowd, "fixture has a crowd (RLE) annotation"
    for inst in tiny.instances(include_crowd=True):
        m = tiny.mask(inst)
        assert m.shape == (inst.height, inst.width) and m.dtype == bool
        assert abs(int(m.sum()) - inst.area) <= max(0.1 * inst.area, 30)
        assert inst.image_path is not None and inst.image_path.exists()


def test_lvis_style_coco_url_resolves_in_split_folders(tmp_path, fixtures_dir):
    import shutil

    js = json.loads((fixtures_dir / "coco_tiny" / "instances.json").read_text())
    (tmp_path / "val2017").mkdir()
    for img in js["images"]:
        name = img.pop("file_name")
        img["coco_url"] = f"http://images.cocodataset.org/val2017/{name}"
        shutil.copy(fixtures_dir / "coco_tiny" / "images" / name, tmp_path / "val2017" / name)
    for a in js["annotations"]:
        a.pop("iscrowd", None) if not a["iscrowd"] else None
    (tmp_path / "lvis.json").write_text(json.dumps(js))
    other = tmp_path / "train_imgs"
    other.mkdir()
    s = InstanceSet(tmp_path / "lvis.json", [other, tmp_path])
    insts = s.instances()
    assert insts and all(i.image_path and i.image_path.parent.name == "val2017" for i in insts)


def test_missing_images_are_reported(tmp_path, fixtures_dir):
    s = InstanceSet(fixtures_dir / "coco_tiny" / "instances.json", [tmp_path])
    assert len(s.missing_images(s.instances())) == len(s.instances())


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        InstanceSet(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot read"):
        InstanceSet(tmp_path / "bad.json")


def test_degenerate_polygon_is_a_data_error(tmp_path):
    js = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
        "annotations": [
            {
                "id": 5,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [[1, 1, 2, 2]],
                "area": 0,
                "bbox": [1, 1, 1, 1],
                "iscrowd": 0,
            }
        ],
        "categories": [{"id": 1, "name": "x"}],
    }
    (tmp_path / "d.json").write_text(json.dumps(js))
    s = InstanceSet(tmp_path / "d.json")
    with pytest.raises(DataError, match="degenerate"):
        s.mask(s.instances()[0])


def test_size_classes():
    assert size_class(32**2 - 1) == "small" and size_class(32**2) == "medium"
    assert size_class(96**2 - 1) == "medium" and size_class(96**2) == "large"


# --- prompt rules on hand-made masks --------------------------------------------------------


def test_paper_point_box_centre_on_mask():
    m = np.zeros((20, 30), bool)
    m[4:10, 6:16] = True
    # the reference uses the decoded mask's pixel extent: x 6..15, y 4..9 -> ((6+15)//2, (4+9)//2)
    assert paper_point(m, (6, 4, 10, 6)) == (10, 6)
    assert paper_point(m, (5.6, 3.8, 10.9, 6.3)) == (10, 6)  # the json bbox does not matter


def test_paper_point_moves_to_nearest_pixel_for_ring():
    m = np.zeros((21, 21), bool)
    m[2:19, 2:19] = True
    m[5:16, 5:16] = False  # hollow square: centre (10, 10) is a hole
    x, y = paper_point(m, (2, 2, 17, 17))
    assert m[y, x]
    assert (x - 10) ** 2 + (y - 10) ** 2 == 36  # nearest ring pixel is 6 px away
    assert (x, y) == (10, 4)  # first in row-major order among the ties


def test_interior_point_of_rectangle_and_L_shape():
    m = np.zeros((20, 40), bool)
    m[2:13, 5:30] = True  # 11 rows: the middle row is 7
    x, y = interior_point(m)
    assert y == 7 and 10 <= x <= 24
    L = np.zeros((30, 30), bool)
    L[0:30, 0:6] = True
    L[24:30, 0:30] = True
    x, y = interior_point(L)
    assert L[y, x]
    # the corner of the L is where the two arms meet: thickest place
    assert x <= 6 and y >= 23


def test_interior_point_counts_image_border_as_edge():
    m = np.ones((5, 11), bool)
    assert interior_point(m) == (2, 2)  # distance 3 from the image border along row 2; first tie


def test_random_point_is_uniform_over_mask():
    m = np.zeros((10, 10), bool)
    m[2, 3] = m[7, 8] = True
    rng = np.random.default_rng(0)
    pts = [random_point(m, rng=rng) for _ in range(400)]
    assert set(pts) == {(3, 2), (8, 7)}
    assert 150 < sum(p == (3, 2) for p in pts) < 250


def test_box_prompt_and_empty_masks():
    assert box_prompt(None, (1, 2, 3, 4)) == (1, 2, 4, 6)
    for rule in (paper_point, interior_point, random_point):
        with pytest.raises(EmptyMaskError):
            rule(np.zeros((4, 4), bool), (0, 0, 1, 1))
