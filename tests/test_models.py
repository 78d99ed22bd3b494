import json

import pytest
import torch

from model_base import ModelChecks
from picosam2.models import (
    WeightsError,
    count_macs,
    count_params,
    create_model,
    from_pretrained,
    list_models,
    save_pretrained,
)


class TestPicoSAM2(ModelChecks):
    arch = "picosam2"


class TestPicoSAM2At128(ModelChecks):
    arch = "picosam2-128"


def test_paper_counts():
    m = create_model("picosam2")
    assert count_params(m) == 1_262_818
    assert 315e6 <= count_macs(m) <= 345e6


def test_registry_lists_paper_network():
    assert "picosam2" in list_models()
    with pytest.raises(KeyError):
        create_model("nope")


def test_from_pretrained_rejects_mismatched_weights(tmp_path):
    m = create_model()
    save_pretrained(m, tmp_path / "w")
    cfg = json.loads((tmp_path / "w" / "config.json").read_text())
    cfg["bottleneck_width"] = 64
    (tmp_path / "w" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="do not match"):
        from_pretrained(tmp_path / "w")


def test_from_pretrained_rejects_garbage(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(WeightsError, match="cannot read"):
        from_pretrained(tmp_path / "w")
    with pytest.raises(WeightsError, match="not found"):
        from_pretrained(tmp_path / "missing")


def test_default_weights_load():
    m = from_pretrained()
    assert count_params(m) == 1_262_818
    with torch.no_grad():
        assert m(torch.zeros(1, 3, 96, 96)).shape == (1, 1, 96, 96)
