"""fp32 and INT8 ONNX export, and the calibration windows they use."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from export_helpers import centred_model, torch_logits  # noqa: E402
from picosam2.export.calibration import (  # noqa: E402
    BUNDLED_PATH,
    bundled_metadata,
    get_calibration_windows,
    load_bundled,
    to_model_input,
    windows_from_coco,
)


@pytest.fixture(scope="module")
def model():
    return centred_model()


@pytest.fixture(scope="module")
def int8_path(model, tmp_path_factory):
    from picosam2.export.onnx_int8 import export_onnx_int8

    return export_onnx_int8(model, tmp_path_factory.mktemp("int8") / "m.onnx", calib_count=24)


def test_bundled_calibration_set():
    w = load_bundled()
    assert w.shape == (128, 96, 96, 3) and w.dtype == np.uint8
    assert w.std() > 20  # natural images, not padding
    meta = bundled_metadata()
    assert len(set(meta["ann_ids"])) == 128  # distinct instances
    assert set(meta["modes"]) == {"paper", "centered"}
    assert BUNDLED_PATH.stat().st_size < 1_000_000
    assert load_bundled(5).shape[0] == 5
    np.testing.assert_array_equal(load_bundled(5), w[:5])


def test_windows_from_coco_follow_prompts(fixtures_dir):
    from picosam2.data import InstanceSet, paper_point
    from picosam2.image_io import load_image
    from picosam2.prompts import crop_image, point_window

    ann = fixtures_dir / "coco_tiny" / "instances.json"
    imgs = fixtures_dir / "coco_tiny" / "images"
    w, info = windows_from_coco(ann, [imgs], count=6, seed=3, return_info=True)
    assert w.shape == (6, 96, 96, 3)
    np.testing.assert_array_equal(w, windows_from_coco(ann, imgs, count=6, seed=3))  # deterministic
    iset = InstanceSet(ann, [imgs])
    for k in (0, 1):  # one paper window, one centred window, recomputed through picosam2.prompts
        inst = iset.instance(info["ann_ids"][k])
        assert tuple(info["points"][k]) == paper_point(iset.mask(inst), inst.bbox)
        img = load_image(inst.image_path)
        win = point_window(*info["points"][k], (img.shape[1], img.shape[0]), mode=info["modes"][k])
        np.testing.assert_array_equal(w[k], crop_image(img, win))


def test_calibration_argument_errors():
    with pytest.raises(ValueError, match="uint8"):
        get_calibration_windows(np.zeros((2, 96, 96, 3), np.float32))
    with pytest.raises(ValueError, match="folders of their images"):
        get_calibration_windows(None, annotations="x.json")
    assert get_calibration_windows(None, count=3).shape == (3, 96, 96, 3)


def test_onnx_int8_is_quantized_and_agrees(model, int8_path):
    import onnx

    from picosam2.export.onnx_int8 import compare_int8

    graph = onnx.load(str(int8_path)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert sum(np.prod(t.dims) for t in int8_weights) > 1_200_000  # (almost) all conv weights are int8
    assert int8_path.stat().st_size < 0.35 * 4 * 1.26e6  # about a quarter of the fp32 file
    held_out = load_bundled()[64:]  # not among the 24 calibration windows
    stats = compare_int8(model, int8_path, held_out)
    assert stats["mean_iou"] > 0.9, stats
    assert stats["max_abs_diff"] > 0  # it really is a different (quantized) model


def test_onnx_int8_runs_in_predictor(model, int8_path, samples_dir):
    from picosam2.predictor import Predictor

    onnx_pred = Predictor.from_pretrained(str(int8_path), backend="onnx")
    torch_pred = Predictor(model)
    a = onnx_pred.predict(samples_dir / "dog.jpg", points=[[570, 200]], boxes=[[480, 130, 670, 270]])
    b = torch_pred.predict(samples_dir / "dog.jpg", points=[[570, 200]], boxes=[[480, 130, 670, 270]])
    assert a.masks.shape == b.masks.shape
    inter = (a.masks & b.masks).sum()
    union = (a.masks | b.masks).sum()
    assert union > 0 and inter / union > 0.85


def test_onnx_int8_per_channel_and_array_calibration(model, tmp_path):
    from picosam2.export.onnx_int8 import export_onnx_int8, mask_agreement

    w = load_bundled(16)
    p = export_onnx_int8(model, tmp_path / "pc.onnx", calibration=w, per_channel=True)
    import onnxruntime as ort

    x = to_model_input(load_bundled()[100:116], model.config)
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0][:, 0]
    assert mask_agreement(torch_logits(model, x), out)["mean_iou"] > 0.9
    with pytest.raises(ValueError, match="calibration method"):
        export_onnx_int8(model, tmp_path / "bad.onnx", calibration=w, method="magic")
    assert not (tmp_path / "bad.onnx").exists()


def test_mask_agreement_counts():
    from picosam2.export.onnx_int8 import mask_agreement

    a = np.full((2, 4, 4), -1.0)
    b = a.copy()
    a[0, :2] = 1.0  # 8 pixels
    b[0, :1] = 1.0  # 4 of them
    s = mask_agreement(a, b)
    assert s["min_iou"] == pytest.approx(0.5) and s["mean_iou"] == pytest.approx(0.75)  # empty vs empty = 1


def test_quality_head_int8_keeps_both_outputs(tmp_path):
    """A quality-head model: the INT8 file has the ``iou`` output beside the mask, the head stays
    float (its sigmoid/poolings), masks agree with fp32 and the scores move little and keep their
    order; the fp32 file matches PyTorch exactly."""
    import onnx

    from picosam2.export.onnx_int8 import export_onnx_int8, mask_agreement, quality_head_nodes
    from picosam2.runtime import TorchBackend, load_backend

    model = centred_model(arch="picosam2-q")
    int8 = export_onnx_int8(model, tmp_path / "q8.onnx", calib_count=24, fp32_path=tmp_path / "q32.onnx")
    graph = onnx.load(str(int8)).graph
    assert [o.name for o in graph.output] == ["mask_logits", "iou"]
    quantized = {i for n in graph.node if n.op_type == "DequantizeLinear" for i in n.output}
    head = [n for n in graph.node if n.name in quality_head_nodes(tmp_path / "q32.onnx") and n.op_type == "Conv"]
    assert len(head) == 2 and not any(i in quantized for n in head for i in n.input[:1])  # float inputs
    x = to_model_input(load_bundled()[64:128], model.config)
    ref = TorchBackend(model)(x)
    assert ref.scores.std() > 0.1  # the scores spread, so their errors show
    fp32 = load_backend(tmp_path / "q32.onnx")(x)
    np.testing.assert_allclose(fp32.scores, ref.scores, atol=1e-4)
    out = load_backend(int8)(x)
    assert out.scores.shape == (64,) and ((out.scores >= 0) & (out.scores <= 1)).all()
    assert mask_agreement(ref.logits, out.logits)["mean_iou"] > 0.95
    diff = np.abs(out.scores - ref.scores)
    print(f"INT8 iou vs fp32: max {diff.max():.4f} mean {diff.mean():.4f}")
    assert diff.mean() < 0.04 and diff.max() < 0.1, (diff.mean(), diff.max())
    assert np.corrcoef(out.scores, ref.scores)[0, 1] > 0.98
    # quantizing the head too is possible, and worse for the score
    whole = export_onnx_int8(model, tmp_path / "all8.onnx", calib_count=24, quantize_quality_head=True)
    assert np.abs(load_backend(whole)(x).scores - ref.scores).mean() > diff.mean()
