"""The PicoSAM2 authors' weights here: `picosam2 convert`, direct loading of their `.pt` and of a
foreign (MCT-like) ONNX, strict refusals. The authors' network is stood in for by
``paper_reference.PaperPicoSAM2`` (their names and forward pass) with random weights and
non-trivial BatchNorm statistics, saved as they save theirs: ``torch.save(state_dict)``."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
import torch

from conftest import run_cli
from paper_reference import random_paper_model
from picosam2.errors import WeightsError
from picosam2.models import from_pretrained
from picosam2.runtime import MissingConfigWarning, available_backends, load_backend

ATOL = 1e-5


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    """Their network, its .pt, and two foreign ONNX exports (dynamic batch; batch fixed to 1), with
    MCT's input/output names and no picosam2 metadata."""
    d = tmp_path_factory.mktemp("paper")
    net = random_paper_model(seed=3)
    torch.save(net.state_dict(), d / "PicoSAM2_student_epoch1.pt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {"input_names": ["input"], "output_names": ["output"], "opset_version": 17, "dynamo": False}
        torch.onnx.export(net, torch.zeros(2, 3, 96, 96), d / "foreign.onnx", dynamic_axes={"input": {0: "b"}}, **kw)
        torch.onnx.export(net, torch.zeros(1, 3, 96, 96), d / "foreign_b1.onnx", **kw)
    x = np.random.default_rng(1).normal(size=(5, 3, 96, 96)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()[:, 0]
    assert ref.std() > 0.1  # logits worth comparing
    return {"dir": d, "pt": d / "PicoSAM2_student_epoch1.pt", "net": net, "x": x, "ref": ref}


def _logits(weights, x, **kw) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingConfigWarning)
        return load_backend(weights, **kw)(x).logits


def test_their_pt_loads_directly_with_their_logits(paper):
    model = from_pretrained(paper["pt"])
    assert model.config.quality_head is False and model.config.input_size == 96
    assert sum(p.numel() for p in model.parameters()) == 1_262_818
    assert model.weights_info["source_layout"] == "paper"
    out = load_backend(str(paper["pt"]))(paper["x"])
    assert out.scores is None
    assert np.abs(out.logits - paper["ref"]).max() <= ATOL


def test_convert_writes_a_folder_with_card_and_the_same_logits(paper, tmp_path):
    out = tmp_path / "converted"
    r = run_cli("convert", str(paper["pt"]), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["input_size"] == 96 and config["quality_head"] is False
    assert config["mean"] == [0.485, 0.456, 0.406] and config["std"] == [0.229, 0.224, 0.225]
    from picosam2.io_utils import sha256_file

    card = (out / "README.md").read_text()
    assert "PicoSAM2_student_epoch1.pt" in card and sha256_file(paper["pt"]) in card
    assert np.abs(_logits(str(out), paper["x"]) - paper["ref"]).max() <= ATOL


def test_converted_weights_export_to_onnx_with_the_same_logits(paper, tmp_path):
    from picosam2.export.onnx_fp32 import export_onnx

    onnx_path = export_onnx(from_pretrained(paper["pt"]), tmp_path / "m.onnx")
    assert np.abs(_logits(str(onnx_path), paper["x"]) - paper["ref"]).max() <= ATOL
    meta = load_backend(str(onnx_path)).metadata
    assert meta["weights"]["source_layout"] == "paper" and len(meta["weights"]["sha256"]) == 64
    if "openvino" in available_backends():
        got = _logits(str(onnx_path), paper["x"], backend="openvino", precision="f32")
        assert np.abs(got - paper["ref"]).max() <= ATOL


@pytest.mark.parametrize("name", ["foreign.onnx", "foreign_b1.onnx"])
def test_a_foreign_onnx_without_metadata_runs_with_the_paper_defaults(paper, name):
    path = str(paper["dir"] / name)
    with pytest.warns(MissingConfigWarning) as caught:
        backend = load_backend(path)
    assert len([w for w in caught if issubclass(w.category, MissingConfigWarning)]) == 1
    assert backend.config.input_size == 96 and backend.config.quality_head is False
    out = backend(paper["x"])  # 5 windows: a file fixing batch 1 runs them one by one
    assert out.logits.shape == (5, 96, 96) and out.scores is None
    assert np.abs(out.logits - paper["ref"]).max() <= ATOL
    if "openvino" in available_backends():
        got = _logits(path, paper["x"], backend="openvino", precision="f32")
        assert np.abs(got - paper["ref"]).max() <= ATOL


def test_convert_from_a_foreign_onnx_folds_batchnorm_into_the_same_function(paper, tmp_path):
    r = run_cli("convert", str(paper["dir"] / "foreign.onnx"), "--out", str(tmp_path / "w"))
    assert r.returncode == 0, r.stderr
    assert np.abs(_logits(str(tmp_path / "w"), paper["x"]) - paper["ref"]).max() <= ATOL


def test_our_training_checkpoint_converts_with_its_quality_head(tmp_path):
    """A Lightning-style checkpoint: the EMA network is the one exported."""
    from picosam2.models import create_model

    torch.manual_seed(5)
    ema = create_model("picosam2-q").eval()
    student = create_model("picosam2-q").eval()
    state = {f"model.{k}": v for k, v in student.state_dict().items()}
    state.update({f"ema_model.{k}": v for k, v in ema.state_dict().items()})
    torch.save({"state_dict": state, "global_step": 10}, tmp_path / "last.ckpt")
    r = run_cli("convert", str(tmp_path / "last.ckpt"), "--out", str(tmp_path / "w"))
    assert r.returncode == 0, r.stderr
    loaded = from_pretrained(tmp_path / "w")
    assert loaded.config.quality_head is True
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        a, b = ema(x), loaded(x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def _broken(paper, tmp_path, how: str):
    state = dict(paper["net"].state_dict())
    if how == "missing":
        del state["skip_conn2.bias"]
    elif how == "extra":
        state["attention.weight"] = torch.zeros(3)
    elif how == "shape":
        state["up3.1.3.weight"] = torch.zeros(80, 129, 1, 1)
    else:  # code in the pickle: weights_only refuses it
        state = {"state_dict": state, "hook": warnings.catch_warnings}
    path = tmp_path / f"{how}.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    "how, words",
    [
        ("missing", "decoder"),  # skip_conn2 -> skip.2: reported under our name
        ("extra", "attention.weight"),
        ("shape", "up3.1.3.weight"),
        ("pickle", "weights_only"),
    ],
)
def test_bad_checkpoints_are_refused_in_one_line(paper, tmp_path, how, words):
    path = _broken(paper, tmp_path, how)
    out = tmp_path / "out"
    r = run_cli("convert", str(path), "--out", str(out))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert words in r.stderr or (how == "missing" and "skip.2.bias" in r.stderr), r.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.*"))  # nothing half-written
    with pytest.raises(WeightsError):
        from_pretrained(path)


def test_convert_refuses_a_non_empty_out_folder(paper, tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "keep.txt").write_text("x")
    r = run_cli("convert", str(paper["pt"]), "--out", str(tmp_path / "w"))
    assert r.returncode == 2 and "not empty" in r.stderr
    assert (tmp_path / "w" / "keep.txt").exists()


def test_predictor_without_quality_head_chooses_clicks_by_the_border_rule(paper, samples_dir):
    from picosam2 import Predictor

    p = Predictor.from_pretrained(str(paper["pt"]))
    assert p.point_scales is None  # the paper's one 96 px window per click by default
    one = p.predict(samples_dir / "dog.jpg", points=[[300, 250]])
    assert one.reasons == ["fixed"] and one.scores is None
    scaled = Predictor.from_pretrained(str(paper["pt"]), point_scales="auto:4").predict(
        samples_dir / "dog.jpg", points=[[300, 250]]
    )
    assert scaled.reasons == ["border"] and scaled.scores is None


def test_cli_predict_and_export_take_their_pt(paper, tmp_path, samples_dir):
    r = run_cli("predict", str(samples_dir / "dog.jpg"), "--point", "300,250", "--weights", str(paper["pt"]),
                "--out", str(tmp_path / "m.png"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m.png").is_file()
    r = run_cli("export", "--format", "onnx", "--weights", str(paper["pt"]), "--out", str(tmp_path / "m.onnx"))
    assert r.returncode == 0, r.stderr
    assert np.abs(_logits(str(tmp_path / "m.onnx"), paper["x"]) - paper["ref"]).max() <= ATOL


def test_their_pt_goes_into_a_bundle(paper, tmp_path):
    """The CPU part of a release bundle (INT8 ONNX, health window, reference) from their .pt; the
    manifest names the source."""
    pytest.importorskip("onnxruntime")
    from picosam2.ops.build import create_bundle

    (tmp_path / "paper.json").write_text('{"protocol": "paper"}')
    manifest = create_bundle(tmp_path / "b", weights=paper["pt"], version="1.0.0", eval_reports=[tmp_path / "paper.json"],
                             skip_imx500=True, calib_count=16, reference_count=16)  # fmt: skip
    assert manifest["build"]["weights"].endswith("PicoSAM2_student_epoch1.pt")
    assert (tmp_path / "b.tar").is_file()
    config = json.loads((tmp_path / "b" / "model" / "config.json").read_text())
    assert config["quality_head"] is False
    out = load_backend(str(tmp_path / "b" / "model" / "picosam2-int8.onnx"))(paper["x"])
    agree = ((out.logits > 0) == (paper["ref"] > 0)).mean()
    assert agree > 0.9, agree  # INT8 of random weights: most pixels on the same side


def test_calibrate_scores_fits_weights_without_a_quality_head(paper, tmp_path, fixtures_dir, samples_dir):
    """A head-less network gets a calibration from its masks alone (score feature 0); clicks then
    choose by it ("score") while masks still carry no score."""
    from picosam2 import Predictor

    folder = tmp_path / "w"
    assert run_cli("convert", str(paper["pt"]), "--out", str(folder)).returncode == 0
    root = fixtures_dir / "coco_tiny"
    r = run_cli("calibrate-scores", "--annotations", str(root / "instances.json"), "--images", str(root / "images"),
                "--weights", str(folder), "--folds", "2", "--write", "--quiet", "--out", str(tmp_path / "cal.json"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "border rule (no head)" in r.stdout
    report = json.loads((tmp_path / "cal.json").read_text())
    assert report["border_rule"]["clicks"] > 10
    spec = json.loads((folder / "config.json").read_text())["extra"]["score_calibration"]
    assert spec["features"][0] == "score" and spec["mean"][0] == 0.0
    p = Predictor.from_pretrained(folder, point_scales="auto:4")
    assert p.score_calibration is not None
    out = p.predict(samples_dir / "dog.jpg", points=[[300, 250]])
    assert out.reasons == ["score"] and out.scores is None


def test_their_eval_outputs_format_is_scored_by_the_paper_protocol(tmp_path, fixtures_dir):
    """The authors' published per-sample predictions (eval_outputs: sample index + 96 x 96 window
    mask, no annotation id): written here from a paper-protocol run of the shipped weights (real
    masks), they score exactly what that run scored, instance by instance."""
    from picosam2.data import InstanceSet
    from picosam2.eval.protocols import instance_list

    root = fixtures_dir / "coco_tiny"
    common = ["--annotations", str(root / "instances.json"), "--protocol", "paper", "--quiet"]
    r = run_cli("eval", *common, "--images", str(root / "images"), "--out", str(tmp_path / "ours.json"), "--results-out", str(tmp_path / "preds.json"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    order = {
        inst.ann_id: k for k, inst in enumerate(instance_list(InstanceSet(root / "instances.json", []), "paper", None))
    }
    theirs = [
        {"image_id": e["image_id"], "category_id": 1, "segmentation": e["window_segmentation"], "score": e["score"],
         "id": order[e["annotation_id"]]}
        for e in json.loads((tmp_path / "preds.json").read_text())
    ]  # fmt: skip
    assert theirs and all(t["segmentation"]["size"] == [96, 96] for t in theirs)
    (tmp_path / "theirs.json").write_text(json.dumps(theirs))
    r = run_cli("eval", *common, "--results", str(tmp_path / "theirs.json"), "--out", str(tmp_path / "scored.json"))
    assert r.returncode == 0, r.stderr
    ours, scored = (json.loads((tmp_path / n).read_text()) for n in ("ours.json", "scored.json"))
    assert ours["miou"] > 0.1 and scored["count"] == ours["count"] == len(theirs)
    assert scored["per_instance"] == ours["per_instance"]


def test_browser_port_calibrates_headless_clicks_like_python():
    """windows.js clickScores with no network scores (a head-less network) = Predictor's."""
    from picosam2.prompts import point_windows
    from picosam2.selection import CLICK_FEATURES, ScoreCalibration
    from test_demo_js import NODE, run_js

    if NODE is None:
        pytest.skip("node is not installed")
    rng = np.random.default_rng(7)
    f = len(CLICK_FEATURES)
    cal = ScoreCalibration(np.zeros(f), np.ones(f), rng.normal(size=1 + f + f * (f + 1) // 2) * 0.1)
    wins = point_windows(570, 200, (800, 534), [96, 140, 205, 300])
    logits = (rng.standard_normal((len(wins), 96, 96)) * 3).astype(np.float32)
    data = {
        "cal": cal.to_dict(),
        "lg": logits.ravel().tolist(),
        "wins": [dict(zip(("x0", "y0", "x1", "y1"), w.as_tuple())) for w in wins],
    }
    got = run_js(
        "const lg = Float32Array.from(data.lg); const offs = data.wins.map((_, i) => i * 96 * 96);"
        " return w.clickScores(data.cal, lg, offs, 96, data.wins, 800, 534, null);",
        data,
    )
    assert np.allclose(got, cal(logits, wins, (800, 534), np.zeros(len(wins))), atol=1e-6)


@pytest.mark.slow
@pytest.mark.imx500
def test_their_pt_through_mct_and_the_mct_onnx_back(paper, tmp_path):
    """Their .pt -> MCT PTQ (the IMX500 export's quantized ONNX) runs here; converting that MCT
    ONNX back gives their float network (weights read through the quantizer nodes, BN folded)."""
    import importlib.util

    if importlib.util.find_spec("model_compression_toolkit") is None:
        if os.environ.get("CI"):
            pytest.fail("the imx500 extra is missing in CI")
        pytest.skip("the imx500 extra is not installed")
    from picosam2.export.calibration import load_bundled, to_model_input
    from picosam2.export.imx500 import export_imx500

    model = from_pretrained(paper["pt"])
    res = export_imx500(model, tmp_path / "pkg", calib_count=16, convert_model=False)
    x = to_model_input(load_bundled()[64:72], model.config)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()[:, 0]
    quant = load_backend(str(res.onnx_path))(x).logits
    assert np.corrcoef(ref.ravel(), quant.ravel())[0, 1] > 0.99
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # MCT's bias corrections are dropped, with a warning
        r = run_cli("convert", str(res.onnx_path), "--out", str(tmp_path / "back"))
    assert r.returncode == 0, r.stderr
    back = _logits(str(tmp_path / "back"), x)
    assert np.corrcoef(ref.ravel(), back.ravel())[0, 1] > 0.9999
