"""The runtime layer: every form carries its config and gives the same masks."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from conftest import SAMPLES

#: one click per bundled photo, on an object (as the demo's prompts)
CLICKS = {"dog.jpg": [[570, 200], [300, 300]], "truck.jpg": [[900, 600]], "groceries.jpg": [[400, 250]]}


@pytest.fixture(scope="module")
def shipped_with_extra(tmp_path_factory):
    """The shipped weights saved again with a config whose ``extra`` asks for 128 px point windows,
    and their fp32 ONNX export."""
    pytest.importorskip("onnxruntime")
    from picosam2.export.onnx_fp32 import export_onnx
    from picosam2.models import from_pretrained, save_pretrained, weights_metadata

    folder = tmp_path_factory.mktemp("w")
    model = from_pretrained()
    model.config.extra = {"point_window_size": 128}
    save_pretrained(model, folder / "weights", metadata=weights_metadata())
    model = from_pretrained(folder / "weights")
    return folder / "weights", export_onnx(model, folder / "m.onnx")


def _iou(a, b):
    union = (a | b).sum()
    return 1.0 if union == 0 else (a & b).sum() / union


def test_config_travels_in_the_onnx_metadata(shipped_with_extra):
    from picosam2.runtime import META_KEY, load_backend, read_onnx_metadata

    weights, onnx_path = shipped_with_extra
    meta = read_onnx_metadata(onnx_path)
    assert meta["config"].extra == {"point_window_size": 128}
    assert len(meta["weights"]["sha256"]) == 64 and "recipe" in meta["weights"]
    assert meta["outputs"] == list(meta["config"].output_names) and meta["input"] == "normalized"
    backend = load_backend(onnx_path)
    assert backend.name == "onnx" and backend.config == meta["config"]
    import onnx

    props = {p.key for p in onnx.load(str(onnx_path)).metadata_props}
    assert META_KEY in props


def test_parity_torch_onnx_openvino_on_the_bundled_photos(shipped_with_extra):
    """Default settings on every installed backend: the same masks (IoU >= 0.99) and the same window."""
    from picosam2.predictor import Predictor
    from picosam2.runtime import available_backends

    weights, onnx_path = shipped_with_extra
    predictors = {"torch": Predictor.from_pretrained(weights), "onnx": Predictor.from_pretrained(onnx_path)}
    if "openvino" in available_backends():
        predictors["openvino"] = Predictor.from_pretrained(onnx_path, backend="openvino")
    assert {p.window_size for p in predictors.values()} == {128}
    for name, clicks in CLICKS.items():
        ref = predictors["torch"].predict(SAMPLES / name, points=clicks)
        assert ref.masks.any(axis=(1, 2)).all()  # the check means something: masks are not empty
        for backend, pred in predictors.items():
            out = pred.predict(SAMPLES / name, points=clicks)
            for k in range(len(clicks)):
                assert _iou(ref.masks[k], out.masks[k]) >= 0.99, (backend, name, k)


def test_form_without_config_warns_and_window_size_overrides(shipped_with_extra, tmp_path):
    import onnx

    from picosam2.predictor import Predictor
    from picosam2.prompts import MODEL_SIZE
    from picosam2.runtime import MissingConfigWarning

    _, onnx_path = shipped_with_extra
    proto = onnx.load(str(onnx_path))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    with pytest.warns(MissingConfigWarning, match="no PicoSAM2 config"):
        p = Predictor.from_pretrained(bare)
    assert p.window_size == MODEL_SIZE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingConfigWarning)
        assert Predictor.from_pretrained(bare, window_size=128).window_size == 128
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a form with its config runs without a warning
        Predictor.from_pretrained(onnx_path)


def test_cli_predict_onnx_gives_the_torch_mask(shipped_with_extra, tmp_path):
    """The Done-when check on ``make demo``'s prompt, with the shipped weights exported."""
    from PIL import Image

    from conftest import run_cli

    onnx_path = tmp_path / "shipped.onnx"
    assert run_cli("export", "--format", "onnx", "--out", str(onnx_path)).returncode == 0
    masks = {}
    for backend, extra in (("torch", []), ("onnx", ["--backend", "onnx", "--weights", str(onnx_path)])):
        out = tmp_path / f"{backend}.png"
        r = run_cli("predict", str(SAMPLES / "dog.jpg"), "--point", "570,200", "--out", str(out), *extra)
        assert r.returncode == 0, r.stderr
        masks[backend] = np.asarray(Image.open(out)) > 0
    assert masks["torch"].sum() > 5000
    np.testing.assert_array_equal(masks["torch"], masks["onnx"])


def test_onnx_predict_and_help_never_import_torch(shipped_with_extra, tmp_path):
    _, onnx_path = shipped_with_extra
    code = (
        "import sys, picosam2\n"
        "assert 'torch' not in sys.modules, 'import picosam2'\n"
        "from picosam2.cli import main, build_parser\n"
        "build_parser()\n"
        "assert 'torch' not in sys.modules, '--help'\n"
        f"rc = main(['predict', {str(SAMPLES / 'dog.jpg')!r}, '--point', '570,200', '--weights', {str(onnx_path)!r},"
        f" '--out', {str(tmp_path / 'm.png')!r}])\n"
        "assert rc == 0\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'huggingface_hub', 'picosam2.train'))\n"
        "print(bad)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_quality_head_outputs_are_split_by_name():
    from picosam2.runtime import _split_outputs

    logits = np.zeros((2, 1, 4, 4), np.float32)
    iou = np.array([[0.25], [0.75]], np.float32)
    out = _split_outputs([iou, logits], ["iou", "mask_logits"])
    assert out.logits.shape == (2, 4, 4) and out.scores.tolist() == [0.25, 0.75]
    out = _split_outputs([logits, iou], ["a", "b"])  # unnamed: the second of two
    assert out.scores.tolist() == [0.25, 0.75]
    assert _split_outputs([logits], ["mask_logits"]).scores is None


def test_unknown_and_mismatched_backends_are_user_errors(shipped_with_extra):
    from picosam2.errors import PicoSAM2Error
    from picosam2.runtime import load_backend

    weights, onnx_path = shipped_with_extra
    with pytest.raises(PicoSAM2Error, match="unknown backend"):
        load_backend(onnx_path, backend="tensorrt")
    with pytest.raises(PicoSAM2Error, match="exported model"):
        load_backend(onnx_path, backend="torch")
    with pytest.raises(PicoSAM2Error, match="not"):
        load_backend(weights, backend="onnx")


def test_sidecar_round_trip(tmp_path):
    from picosam2.models import PicoSAM2Config
    from picosam2.runtime import form_metadata, read_sidecar, sidecar_path, write_sidecar

    cfg = PicoSAM2Config(extra={"point_window_size": 160})
    write_sidecar(tmp_path / "m.tflite", form_metadata(cfg, {"sha256": "ab"}))
    assert sidecar_path(tmp_path / "m.tflite").name == "m.tflite.json"
    back = read_sidecar(tmp_path / "m.tflite")
    assert back["config"] == cfg and back["weights"] == {"sha256": "ab"}
    assert json.loads((tmp_path / "m.tflite.json").read_text())["outputs"] == ["mask_logits"]


def test_quality_head_scores_reach_the_prediction(tmp_path):
    """A model with a quality head: torch and ONNX give the same masks and the same IoU scores."""
    pytest.importorskip("onnxruntime")
    import torch

    from picosam2.export.onnx_fp32 import export_onnx
    from picosam2.models import create_model
    from picosam2.predictor import Predictor
    from picosam2.runtime import read_onnx_metadata

    torch.manual_seed(0)
    model = create_model("picosam2-q").eval()
    path = export_onnx(model, tmp_path / "q.onnx")
    assert read_onnx_metadata(path)["outputs"] == ["mask_logits", "iou"]
    a = Predictor(model).predict(SAMPLES / "dog.jpg", points=[[570, 200], [300, 300]])
    b = Predictor.from_pretrained(path).predict(SAMPLES / "dog.jpg", points=[[570, 200], [300, 300]])
    assert a.scores.shape == (2,) and ((a.scores >= 0) & (a.scores <= 1)).all()
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    np.testing.assert_allclose(a.logits, b.logits, atol=1e-3)
    assert Predictor(create_model()).predict(SAMPLES / "dog.jpg", points=[[570, 200]]).scores is None


def test_quality_head_runs_on_every_installed_backend(tmp_path):
    """The ``iou`` output survives each form: ONNX fp32 on onnxruntime and OpenVINO (when installed)
    and LiteRT (when installed) give the PyTorch scores, and scale-aware clicks choose alike."""
    pytest.importorskip("onnxruntime")
    from export_helpers import centred_model
    from picosam2.export.calibration import load_bundled, to_model_input
    from picosam2.export.onnx_fp32 import export_onnx
    from picosam2.predictor import Predictor
    from picosam2.runtime import TorchBackend, available_backends, load_backend

    model = centred_model(arch="picosam2-q")
    path = export_onnx(model, tmp_path / "q.onnx")
    x = to_model_input(load_bundled(16), model.config)
    ref = TorchBackend(model)(x)
    forms = {"onnx": path}
    if "openvino" in available_backends():
        forms["openvino"] = path
    if "tflite" in available_backends():
        from picosam2.export.tflite import export_tflite

        forms["tflite"] = export_tflite(model, tmp_path / "q.tflite")
    want = Predictor(model, point_scales="auto").predict(SAMPLES / "dog.jpg", points=CLICKS["dog.jpg"])
    for backend, form in forms.items():
        out = load_backend(form, backend=backend)(x)
        assert out.scores is not None and out.scores.shape == (16,), backend
        np.testing.assert_allclose(out.scores, ref.scores, atol=0.05 if backend == "openvino" else 1e-3)
        got = Predictor.from_pretrained(form, backend=backend, point_scales="auto").predict(
            SAMPLES / "dog.jpg", points=CLICKS["dog.jpg"]
        )
        assert got.reasons == ["score", "score"], backend
        assert [w.width for w in got.windows] == [w.width for w in want.windows], backend


def test_openvino_compiles_each_batch_size_with_a_static_shape(tmp_path):
    """Without a fixed batch, OpenVINO compiles each batch size it meets with that batch fixed
    (up to STATIC_BATCHES of them, then the dynamic compilation serves), and every path gives
    the fixed-batch compilation's logits."""
    pytest.importorskip("onnxruntime")
    from picosam2.runtime import available_backends

    if "openvino" not in available_backends():
        pytest.skip("openvino extra not installed")
    from export_helpers import centred_model
    from picosam2.export.calibration import load_bundled, to_model_input
    from picosam2.export.onnx_fp32 import export_onnx
    from picosam2.runtime import OpenVinoBackend

    model = centred_model(arch="picosam2-q")
    path = export_onnx(model, tmp_path / "q.onnx")
    x = to_model_input(load_bundled(8), model.config)
    backend = OpenVinoBackend(path, threads=1)
    backend.STATIC_BATCHES = 2
    for n in (4, 1, 4, 3):
        out = backend(x[:n])
        fixed = OpenVinoBackend(path, threads=1, batch_size=n)(x[:n])
        assert out.logits.shape == (n, 96, 96)
        # (kernels differ between compilations: bf16 on AMX machines moves the third decimal)
        np.testing.assert_allclose(out.logits, fixed.logits, atol=0.05)
        np.testing.assert_allclose(out.scores, fixed.scores, atol=0.01)
    assert sorted(backend._static) == [1, 4]  # batch 3 ran on the dynamic compilation
