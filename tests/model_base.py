"""Shared checks every registered architecture must pass (segmentation_models.pytorch style)."""

import pytest
import torch


class ModelChecks:
    """Subclass with ``arch = "<registered name>"``."""

    arch = "picosam2"

    @pytest.fixture(scope="class")
    def model(self):
        from picosam2.models import create_model

        torch.manual_seed(0)
        return create_model(self.arch)

    def _input(self, model, n=2):
        s = model.config.input_size
        return torch.randn(n, 3, s, s)

    def test_forward_shape(self, model):
        from picosam2.models import split_outputs

        x = self._input(model)
        y, iou = split_outputs(model.eval()(x))
        assert y.shape == (2, 1, x.shape[2], x.shape[3])
        assert torch.isfinite(y).all()
        if model.config.quality_head:
            assert iou.shape == (2, 1)
            assert ((iou >= 0) & (iou <= 1)).all()
        else:
            assert iou is None

    def test_backward_reaches_every_parameter(self, model):
        model.train()
        out = model(self._input(model))
        sum(o.mean() for o in (out if isinstance(out, tuple) else (out,))).backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
        model.zero_grad(set_to_none=True)
        model.eval()
        assert not missing

    def test_save_load_round_trip(self, model, tmp_path):
        from picosam2.models import from_pretrained, save_pretrained

        model.eval()
        save_pretrained(model, tmp_path / "w", metadata={"trained": "false"})
        loaded = from_pretrained(tmp_path / "w")
        assert loaded.config == model.config
        x = self._input(model)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), model(x))
            assert loaded.config.output_names == model.config.output_names

    def test_onnx_matches_onnxruntime(self, model, tmp_path):
        pytest.importorskip("onnxruntime")
        from picosam2.export.onnx_fp32 import compare_onnx, export_onnx

        path = export_onnx(model.eval(), tmp_path / "m.onnx")
        assert path.exists()
        assert compare_onnx(model, path, batch=2, seed=1) < 1e-4

    def test_batch_independence(self, model):
        x = self._input(model, 3)
        with torch.no_grad():
            full = model.eval()(x)
            single = model(x[1:2])
        for f, s in zip(*(o if isinstance(o, tuple) else (o,) for o in (full, single))):
            torch.testing.assert_close(f[1:2], s, atol=1e-5, rtol=1e-4)
