"""Both protocols: known answers on a hand-made COCO set, the real tiny COCO fixture, results files."""

import json

import numpy as np
import pytest
from PIL import Image

from picosam2.data import InstanceSet, interior_point, paper_point
from picosam2.eval import build_report, evaluate, results_entries, score_results
from picosam2.eval.baselines import DiskBackend, WholeWindowBackend, baseline_predictor, disk_logits
from picosam2.eval.protocols import decode_rle, make_window
from picosam2.predictor import Predictor
from picosam2.prompts import Window


def polygon(x0, y0, x1, y1):
    """COCO polygon of the pixel rectangle [x0, x1) x [y0, y1)."""
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def make_set(tmp_path, anns, size=(200, 160), extra_images=()):
    """A COCO json with one (or more) noise images and the given annotations (segmentation, bbox)."""
    w, h = size
    images = [{"id": 1, "file_name": "one.png", "width": w, "height": h}]
    images += [{"id": k + 2, "file_name": name, "width": w, "height": h} for k, name in enumerate(extra_images)]
    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir(exist_ok=True)
    for img in images:
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(tmp_path / "img" / img["file_name"])
    annotations = []
    for k, a in enumerate(anns):
        annotations.append({"id": 100 + k, "image_id": 1, "category_id": 1, "iscrowd": 0, **a})
    js = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "thing"}]}
    (tmp_path / "ann.json").write_text(json.dumps(js))
    return InstanceSet(tmp_path / "ann.json", [tmp_path / "img"])


def rect_ann(x0, y0, x1, y1):
    return {"segmentation": polygon(x0, y0, x1, y1), "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0)}


@pytest.fixture
def square_set(tmp_path):
    # pycocotools rasterises the polygon of [50,150)^2 to exactly those 100x100 pixels
    return make_set(tmp_path, [rect_ann(50, 30, 150, 130)])


def test_synthetic_polygon_rasterises_as_expected(square_set):
    m = square_set.mask(square_set.instances()[0])
    expect = np.zeros((160, 200), bool)
    expect[30:130, 50:150] = True
    assert (m == expect).all()


def test_paper_protocol_known_answers(square_set):
    whole = evaluate(square_set, baseline_predictor("whole-window"), "paper", "point", progress=False)
    # point = centre of the mask's pixel extent ((50+149)//2, (30+129)//2) = (99, 79), on the mask;
    # window [51,147) x [31,127) lies inside the square
    s = whole.samples[0]
    assert s.prompt == (99.0, 79.0) and s.window == Window(51, 31, 147, 127)
    assert s.iou == 1.0
    disk = evaluate(square_set, baseline_predictor("disk"), "paper", "point", progress=False)
    n_disk = int((disk_logits() > 0).sum())
    assert abs(n_disk - np.pi * 24**2) < 40  # radius 24 px disk
    assert disk.samples[0].iou == pytest.approx(n_disk / 96**2)


def test_full_protocol_known_answers(square_set):
    whole = evaluate(square_set, baseline_predictor("whole-window"), "full", "point", progress=False)
    s = whole.samples[0]
    # interior point of an even square: the first of the four central pixels (99, 79)
    assert s.prompt == (99.0, 79.0) and s.window == Window(51, 31, 147, 127)
    assert s.iou == pytest.approx(96 * 96 / 100**2)
    box = evaluate(square_set, baseline_predictor("whole-window"), "full", "box", progress=False)
    # box window: side ceil(100 * 1.2) = 120 centred on (100, 80) -> [40,160) x [20,140), inside the image
    assert box.samples[0].window == Window(40, 20, 160, 140)
    assert box.samples[0].iou == pytest.approx(100**2 / 120**2)


def test_full_protocol_clips_pasted_window_to_image(tmp_path):
    data = make_set(tmp_path, [rect_ann(0, 0, 20, 10)])  # a 20x10 box in the image corner
    res = evaluate(data, baseline_predictor("whole-window"), "full", "point", progress=False)
    s = res.samples[0]
    x, y = (int(v) for v in s.prompt)
    visible = (min(200, x + 48) - max(0, x - 48)) * (min(160, y + 48) - max(0, y - 48))
    assert s.iou == pytest.approx(200 / visible)


def reference_nearest_crop(mask, x0, y0, x1, y1, out=96):
    """Independent re-implementation of the reference mask crop: cut, then nearest resize to out x out."""
    patch = mask[y0:y1, x0:x1]
    rows = np.floor((np.arange(out) + 0.5) * patch.shape[0] / out).astype(int)
    cols = np.floor((np.arange(out) + 0.5) * patch.shape[1] / out).astype(int)
    return patch[rows][:, cols]


def test_paper_protocol_clipped_window_matches_reference_formula(tmp_path):
    data = make_set(tmp_path, [rect_ann(5, 120, 25, 150), rect_ann(170, 3, 198, 13)])
    res = evaluate(data, baseline_predictor("disk"), "paper", "point", progress=False)
    disk = disk_logits() > 0
    for inst, s in zip(data.instances(), res.samples):
        gt = data.mask(inst)
        ys, xs = np.nonzero(gt)
        cx, cy = (xs.min() + xs.max()) // 2, (ys.min() + ys.max()) // 2  # the reference point rule
        assert gt[cy, cx] and paper_point(gt, inst.bbox) == (cx, cy)
        x0, y0 = max(0, cx - 48), max(0, cy - 48)  # the reference crop: slide at left/top ...
        x1, y1 = min(200, x0 + 96), min(160, y0 + 96)  # ... clip at right/bottom
        assert s.window.as_tuple() == (x0, y0, x1, y1)
        assert s.window.width < 96 or s.window.height < 96  # the clipped, stretched case
        g = reference_nearest_crop(gt, x0, y0, x1, y1)
        assert s.iou == pytest.approx((disk & g).sum() / (disk | g).sum())


def test_bad_data_is_counted_not_fatal(tmp_path):
    anns = [
        rect_ann(50, 30, 150, 130),
        {"segmentation": [[1, 1, 2, 2]], "bbox": [1, 1, 1, 1], "area": 0},  # degenerate polygon
        {"segmentation": {"size": [160, 200], "counts": [200 * 160]}, "bbox": [3, 3, 4, 4], "area": 0},  # empty
    ]
    data = make_set(tmp_path, anns)
    for proto in ("paper", "full"):
        res = evaluate(data, baseline_predictor("disk"), proto, "point", progress=False)
        assert [s.ann_id for s in res.samples] == [100]
        assert res.skipped["degenerate_polygons"] == 1 and res.skipped["empty_masks"] == 1
        assert res.requested == 3


def test_missing_images_error_or_skip(tmp_path):
    data = make_set(tmp_path, [rect_ann(50, 30, 150, 130)], extra_images=["two.png", "three.png"])
    js = json.loads((tmp_path / "ann.json").read_text())
    js["annotations"] += [
        {**js["annotations"][0], "id": 7, "image_id": 2},
        {**js["annotations"][0], "id": 8, "image_id": 3},
    ]
    (tmp_path / "ann.json").write_text(json.dumps(js))
    (tmp_path / "img" / "two.png").unlink()
    (tmp_path / "img" / "three.png").unlink()
    data = InstanceSet(tmp_path / "ann.json", [tmp_path / "img"])
    with pytest.raises(FileNotFoundError, match=r"2 image file\(s\) not found.*first: two\.png"):
        evaluate(data, baseline_predictor("disk"), "paper", "point", progress=False)
    res = evaluate(data, baseline_predictor("disk"), "paper", "point", skip_missing=True, progress=False)
    assert [s.ann_id for s in res.samples] == [100] and res.skipped["missing_images"] == 2


def test_paper_protocol_takes_first_n_in_img_to_anns_order(tiny):
    res = evaluate(tiny, baseline_predictor("whole-window"), "paper", "point", limit=7, progress=False)
    assert [s.ann_id for s in res.samples] == [i.ann_id for i in tiny.instances()[:7]]
    full = evaluate(tiny, baseline_predictor("whole-window"), "full", "point", progress=False)
    assert len(full.samples) == len(tiny.instances()) == 45  # every non-crowd instance


@pytest.fixture(scope="module")
def tiny(fixtures_dir):
    return InstanceSet(fixtures_dir / "coco_tiny" / "instances.json", [fixtures_dir / "coco_tiny" / "images"])


class BrightnessBackend:
    """A pixel-dependent stand-in for a trained network: the object is whatever is brighter than
    the ImageNet mean (normalised brightness > 0). Gives varied, image-dependent masks."""

    name = "brightness"
    config = WholeWindowBackend.config

    metadata: dict = {}

    def __call__(self, batch):
        from picosam2.runtime import RuntimeOutput

        return RuntimeOutput(batch.mean(axis=1).astype(np.float32))


@pytest.fixture(scope="module")
def predictor():
    return Predictor(backend=BrightnessBackend())


@pytest.mark.parametrize("protocol,prompt", [("paper", "point"), ("full", "point"), ("full", "box")])
def test_results_file_round_trip_on_real_coco(tiny, predictor, protocol, prompt, tmp_path):
    res = evaluate(tiny, predictor, protocol, prompt, keep_rle=True, progress=False)
    ious = np.array([s.iou for s in res.samples])
    assert len(ious) == 45 and 0 < ious.mean() < 1 and ious.std() > 0  # a real spread, not a constant
    report = build_report(res, {"model": "test"})
    assert report["miou"] == pytest.approx(np.mean(list(report["per_instance"].values())))
    assert report["count"] == len(report["per_instance"]) == 45
    assert sum(b["count"] for b in report["by_size"].values()) == 45
    entries = results_entries(res)
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(entries))
    entries = json.loads(path.read_text())
    for e, inst in zip(entries, tiny.instances()):
        assert e["annotation_id"] == inst.ann_id and e["image_id"] == inst.image_id
        assert e["category_id"] == inst.category_id and isinstance(e["segmentation"]["counts"], str)
        assert e["segmentation"]["size"] == [inst.height, inst.width] and 0 <= e["score"] <= 1
    scored = score_results(tiny, entries, protocol, prompt, progress=False)
    assert {s.ann_id: s.iou for s in scored.samples} == res.per_instance  # exact, the same code
    assert scored.skipped["missing_predictions"] == 0


def test_full_results_iou_recomputes_from_rle_alone(tiny, predictor):
    res = evaluate(tiny, predictor, "full", "point", limit=6, keep_rle=True, progress=False)
    for s, e in zip(res.samples, results_entries(res)):
        pred = decode_rle(e["segmentation"])
        gt = tiny.mask(tiny.instance(s.ann_id))
        assert s.iou == pytest.approx((pred & gt).sum() / (pred | gt).sum())


def test_paper_results_without_window_masks_are_cut_from_the_full_mask(tiny, predictor):
    res = evaluate(tiny, predictor, "paper", "point", keep_rle=True, progress=False)
    entries = results_entries(res)
    for e in entries:
        del e["window_segmentation"]
    scored = {s.ann_id: s.iou for s in score_results(tiny, entries, "paper", "point", progress=False).samples}
    full_windows = [s for s in res.samples if s.window.width == s.window.height == 96]
    assert len(full_windows) > 30
    for s in full_windows:  # an unclipped window is cut 1:1, so the IoU is the same
        assert scored[s.ann_id] == pytest.approx(s.iou)


def test_results_scoring_counts_missing_unmatched_and_duplicates(tiny, predictor):
    res = evaluate(tiny, predictor, "full", "point", limit=5, keep_rle=True, progress=False)
    entries = results_entries(res)
    dup = {**entries[1], "score": -1.0, "segmentation": entries[0]["segmentation"]}  # lower score: ignored
    stray = {**entries[2], "annotation_id": 999999999}
    scored = score_results(tiny, entries[1:] + [dup, stray], "full", "point", limit=5, progress=False)
    got = {s.ann_id: s.iou for s in scored.samples}
    assert got[res.samples[0].ann_id] == 0.0  # no entry: an empty prediction
    assert all(got[s.ann_id] == s.iou for s in res.samples[1:])
    assert scored.skipped["missing_predictions"] == 1
    assert scored.skipped["unmatched_predictions"] == 1
    assert scored.skipped["duplicate_predictions"] == 1
    with pytest.raises(ValueError, match="annotation_id"):
        score_results(tiny, [{"segmentation": entries[0]["segmentation"]}], "full", "point", progress=False)


def test_baseline_backends_shapes():
    batch = np.zeros((3, 3, 96, 96), np.float32)
    assert (WholeWindowBackend()(batch).logits > 0).all()
    d = DiskBackend()(batch).logits
    assert d.shape == (3, 96, 96) and (d[:, 48, 48] > 0).all() and (d[:, 0, 0] < 0).all()
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_predictor("nope")


def test_make_window_rules():
    assert make_window("paper", "point", (10, 10), (200, 100)) == Window(0, 0, 96, 96)
    assert make_window("paper", "point", (190, 90), (200, 100)) == Window(142, 42, 200, 100)
    assert make_window("full", "point", (10, 10), (200, 100)) == Window(-38, -38, 58, 58)
    with pytest.raises(ValueError, match="unknown protocol"):
        make_window("nope", "point", (10, 10), (200, 100))


def test_interior_point_bbox_shortcut_matches_whole_image_transform():
    from scipy.ndimage import distance_transform_edt

    rng = np.random.default_rng(0)
    for _ in range(100):
        m = np.zeros((int(rng.integers(5, 50)), int(rng.integers(5, 50))), bool)
        for _ in range(3):
            y, x = rng.integers(0, m.shape[0]), rng.integers(0, m.shape[1])
            h, w = rng.integers(1, 25, 2)
            m[y : y + h, x : x + w] = True
        m &= rng.random(m.shape) < 0.85
        if not m.any():
            continue
        dist = distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
        y, x = divmod(int(np.argmax(dist)), m.shape[1])
        assert interior_point(m) == (x, y)


def test_onnx_backend_gives_the_torch_logits_in_the_harness(tiny, trained_like_model, tmp_path):
    pytest.importorskip("onnxruntime")
    from picosam2.export.onnx_fp32 import export_onnx

    path = export_onnx(trained_like_model, tmp_path / "m.onnx")
    a = evaluate(tiny, Predictor(trained_like_model), "full", "point", limit=10, keep_logits=True, progress=False)
    b = evaluate(
        tiny,
        Predictor.from_pretrained(path, backend="onnx"),
        "full",
        "point",
        limit=10,
        keep_logits=True,
        progress=False,
    )
    assert [s.window for s in a.samples] == [s.window for s in b.samples]
    assert np.abs(a.logits.astype(np.float32) - b.logits.astype(np.float32)).max() < 1e-2
    assert a.logits.astype(np.float32).std() > 0


def test_images_are_read_as_stored_and_bad_images_are_counted(tmp_path):
    data = make_set(tmp_path, [rect_ann(50, 30, 150, 130)], extra_images=["two.png"])
    js = json.loads((tmp_path / "ann.json").read_text())
    js["annotations"].append({**js["annotations"][0], "id": 7, "image_id": 2})
    # image 1: an EXIF "rotate 90" tag must be ignored (the annotation is on the stored pixels)
    stored = np.asarray(Image.open(tmp_path / "img" / "one.png").convert("RGB"))
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "img" / "one.jpg", exif=exif.tobytes(), quality=95)
    js["images"][0]["file_name"] = "one.jpg"
    (tmp_path / "img" / "two.png").write_bytes(b"not a png")  # image 2: unreadable
    (tmp_path / "ann.json").write_text(json.dumps(js))
    data = InstanceSet(tmp_path / "ann.json", [tmp_path / "img"])
    from picosam2.eval.protocols import load_dataset_image

    assert load_dataset_image(tmp_path / "img" / "one.jpg").shape == (160, 200, 3)
    res = evaluate(data, baseline_predictor("whole-window"), "paper", "point", progress=False)
    assert [s.ann_id for s in res.samples] == [100] and res.samples[0].iou == 1.0
    assert res.skipped["bad_images"] == 1
