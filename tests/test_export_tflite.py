"""LiteRT export (optional extra: litert-torch). Skipped cleanly when it is not installed."""

import importlib.util

import numpy as np
import pytest

from conftest import run_cli

HAVE_LITERT = importlib.util.find_spec("litert_torch") is not None and importlib.util.find_spec("ai_edge_litert")


def test_tflite_without_the_extra_is_one_line(tmp_path):
    if HAVE_LITERT:
        pytest.skip("litert-torch is installed")
    out = tmp_path / "m.tflite"
    r = run_cli("export", "--format", "tflite", "--out", str(out))
    assert r.returncode == 2
    lines = [line for line in r.stderr.strip().splitlines() if not line.startswith("warning:")]
    assert "litert-torch" in r.stderr and len(lines) == 1
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_LITERT, reason="litert-torch not installed (optional tflite extra)")
@pytest.mark.parametrize("int8", [False, True])
def test_tflite_export_agrees_with_torch(tmp_path, int8):
    from export_helpers import centred_model, torch_logits
    from picosam2.export.calibration import load_bundled, to_model_input
    from picosam2.export.onnx_int8 import mask_agreement
    from picosam2.export.tflite import export_tflite
    from picosam2.runtime import load_backend

    model = centred_model()
    model.config.extra = {"point_window_size": 128}
    path = export_tflite(model, tmp_path / "m.tflite", int8=int8, calib_count=16)
    runner = load_backend(path)
    assert runner.name == "tflite" and runner.config == model.config  # from the sidecar
    if int8:  # the file's own input/output are int8; the runner hides that from the caller
        assert runner.inp["dtype"] == np.int8 and runner.outs[0]["dtype"] == np.int8
        assert path.stat().st_size < 2_000_000
    x = to_model_input(load_bundled()[64:80], model.config)
    stats = mask_agreement(torch_logits(model, x), runner(x).logits)
    assert stats["mean_iou"] > (0.85 if int8 else 0.999), stats
