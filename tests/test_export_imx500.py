"""The IMX500 path: MCT quantization, MCT's ONNX, Sony's converter (imxconv-pt, needs Java).

CI installs the imx500 extra and Java (``make install``), so there these tests must run: they
are skipped only outside CI when the tools are missing.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import quick_java, run_cli
from export_helpers import centred_model, torch_logits
from picosam2.export.calibration import load_bundled, to_model_input
from picosam2.export.imx500 import (
    MissingExtraError,
    check_prerequisites,
    java_version,
    parse_memory_report,
    sensor_input,
    sensor_model,
)

HAVE_MCT = importlib.util.find_spec("model_compression_toolkit") is not None
HAVE_JAVA = (java_version() or 0) >= 17


def _need(ok: bool, what: str):
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{what} missing in CI: `make install` should provide it")
        pytest.skip(f"{what} not installed")


@pytest.fixture(scope="module")
def model():
    return centred_model(seed=2)


@pytest.fixture(scope="module")
def sensor_package(tmp_path_factory):
    """``picosam2 export --format imx500`` of the shipped weights (MCT, then imxconv-pt): run once
    (a minute or more) for the tests that read the package."""
    _need(HAVE_MCT, "the imx500 extra")
    _need(HAVE_JAVA, "Java >= 17")
    out = tmp_path_factory.mktemp("imx500") / "pkg"
    with pytest.MonkeyPatch.context() as mp:
        quick_java(mp)
        r = run_cli("export", "--format", "imx500", "--out", str(out), "--calib-count", "8")
    return out, r


@pytest.fixture(scope="module")
def shipped_mct_onnx(request, tmp_path_factory):
    """The MCT-quantized ONNX of the shipped weights (which carry the quality head): the sensor
    package's when Java is here, else MCT alone."""
    _need(HAVE_MCT, "the imx500 extra")
    if HAVE_JAVA:
        out, r = request.getfixturevalue("sensor_package")
        assert r.returncode == 0, r.stderr[-2000:]
        return out / "picosam2.onnx"
    from picosam2.export.imx500 import export_imx500
    from picosam2.models import from_pretrained

    out = tmp_path_factory.mktemp("mct")
    return export_imx500(from_pretrained().eval(), out, calib_count=8, convert_model=False).onnx_path


def test_sensor_model_takes_raw_pixels(model):
    w = load_bundled(4)
    ref = torch_logits(model, to_model_input(w, model.config))
    net = sensor_model(model)
    raw = sensor_input(w, model.config)
    assert raw.dtype == np.float32 and raw.max() > 100  # 0..255 pixels
    with torch.no_grad():
        out = net(torch.from_numpy(raw))[:, 0].numpy()
    np.testing.assert_allclose(out, ref, atol=1e-4)
    assert sensor_model(model, normalize_in_model=False) is model


def test_memory_report_parsing(tmp_path):
    p = tmp_path / "x_MemoryReport.json"
    report = {
        "Memory Report": {
            "Runtime Memory Physical Size": "2.29MB",
            "Model Memory Physical Size": "1.26MB",
            "Memory Usage": "3.55MB",
            "Total Memory Available On Chip": "8.00MB",
            "Memory Utilization": "45%",
            "Fit In Chip": True,
        }
    }
    p.write_text(json.dumps(report))
    r = parse_memory_report(p)
    assert (r.memory_usage_mb, r.model_mb, r.available_mb, r.fits) == (3.55, 1.26, 8.0, True)
    assert "fits" in r.summary() and "3.55 MB of 8.00 MB" in r.summary()
    report["Memory Report"].update({"Memory Usage": "17.5MB", "Fit In Chip": False, "Reserved Memory": "1.00KB"})
    p.write_text(json.dumps(report))
    assert "DOES NOT FIT" in parse_memory_report(p).summary()


def test_missing_extra_is_one_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "model_compression_toolkit" else real(name, *a)
    )
    with pytest.raises(MissingExtraError, match=r"picosam2\[imx500\]"):
        check_prerequisites()


def test_cli_without_java_exits_2(tmp_path):
    _need(HAVE_MCT, "the imx500 extra")
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    out = tmp_path / "pkg"
    r = subprocess.run(
        [sys.executable, "-m", "picosam2.cli", "export", "--format", "imx500", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 2
    assert "Java" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_mct_import_leaves_no_fake_torchvision():
    _need(HAVE_MCT, "the imx500 extra")
    from picosam2.export.mct_compat import import_mct, legacy_onnx_export

    had = importlib.util.find_spec("torchvision") is not None
    mct = import_mct()
    assert hasattr(mct, "ptq") and hasattr(mct, "exporter")
    if not had:
        assert "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None
    original = torch.onnx.export
    with legacy_onnx_export():
        assert torch.onnx.export is not original
    assert torch.onnx.export is original


@pytest.mark.imx500
def test_mct_ptq_onnx_agrees_and_runs_in_the_camera_loop(model, tmp_path, samples_dir):
    _need(HAVE_MCT, "the imx500 extra")
    from picosam2.export.imx500 import export_imx500
    from picosam2.export.onnx_int8 import mask_agreement
    from picosam2.runtime import load_backend

    res = export_imx500(model, tmp_path, calib_count=16, convert_model=False)
    assert res.onnx_path.exists() and res.memory is None and res.seconds["mct_ptq"] > 0
    info = json.loads((tmp_path / "export_info.json").read_text())
    assert info["normalize_in_model"] is True and info["calib_count"] == 16
    # 8 windows (73,728 logits; the margins are those of 32): the MCT ONNX runs its quantizers in
    # Python, about 0.6 s a window
    held_out = load_bundled()[64:72]
    ref = torch_logits(model, to_model_input(held_out, model.config))
    out = load_backend(res.onnx_path)(to_model_input(held_out, model.config)).logits
    # A random network's logits all sit close to the mask threshold, so mask IoU would mostly
    # measure threshold flips; compare the logits themselves (a different random network: corr ~0.2).
    corr = np.corrcoef(ref.ravel(), out.ravel())[0, 1]
    assert corr > 0.95, corr
    assert 0 < (out - ref).std() < 0.3 * ref.std()
    assert mask_agreement(ref, out)["mean_iou"] > 0.4
    # the camera loop on the quantized sensor network (raw pixels in, logits out)
    png = tmp_path / "cam.png"
    r = run_cli(
        "camera", "--simulate", str(samples_dir / "dog.jpg"), "--point", "570,200", "--weights", str(res.onnx_path),
        "--out", str(png),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert png.exists()


@pytest.mark.imx500
def test_imx500_cli_writes_the_sensor_package(sensor_package):
    """The whole path CI keeps alive: shipped weights -> MCT -> imxconv-pt -> packerOut.zip. The
    shipped weights carry the quality head, so this is also the converter taking it: two outputs
    in dnnParams.xml, and the package fits."""
    from picosam2.camera.core import read_dnn_params

    out, r = sensor_package
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("packerOut.zip", "dnnParams.xml", "picosam2_MemoryReport.json", "picosam2.onnx"):
        assert (out / name).stat().st_size > 0, name
    assert "fits the chip" in r.stdout and "of 8.00 MB" in r.stdout
    mem = parse_memory_report(out / "picosam2_MemoryReport.json")
    assert mem.fits and 1.0 < mem.model_mb < 2.0 and mem.memory_usage_mb < 8.0
    d = read_dnn_params(out / "dnnParams.xml")
    assert sorted(d["inputs"][0]["dims"]) == [3, 96, 96] and d["inputs"][0]["scale"] == 1.0  # raw pixels
    assert len(d["outputs"]) == 2 and sorted(d["outputs"][0]["dims"]) == [1, 96, 96] and d["outputs"][1]["dims"] == [1]
    import zipfile

    assert zipfile.is_zipfile(out / "packerOut.zip")
    assert not list(out.glob(".*.tmp"))


@pytest.mark.imx500
def test_quality_head_goes_through_mct(shipped_mct_onnx):
    """MCT PTQ of a quality-head model (the shipped weights, in the sensor package): its ONNX has
    both outputs, the camera loop's backend reads the score, and the quantized scores follow the
    fp32 ones; MCT's QAT fine-tuning runs on a quality-head model."""
    from picosam2.export.imx500 import qat_finetune, run_torch
    from picosam2.models import from_pretrained
    from picosam2.runtime import TorchBackend, load_backend

    shipped = from_pretrained().eval()
    assert shipped.config.quality_head
    x = to_model_input(load_bundled()[64:80], shipped.config)
    ref = TorchBackend(shipped)(x)
    out = load_backend(shipped_mct_onnx)(x)
    assert out.scores is not None and out.scores.shape == (16,)
    assert np.corrcoef(ref.logits.ravel(), out.logits.ravel())[0, 1] > 0.95
    assert ref.scores.std() > 0.02  # scores that differ from window to window, to follow
    assert np.corrcoef(ref.scores, out.scores)[0, 1] > 0.8
    model = centred_model(seed=2, arch="picosam2-q")
    net = sensor_model(model)
    data = sensor_input(load_bundled(8), model.config)
    logits, iou = run_torch(qat_finetune(net, data, steps=2, batch=4, log_every=0), data[:2], scores=True)
    assert logits.shape == (2, 96, 96) and iou.shape == (2,) and np.isfinite(iou).all()
