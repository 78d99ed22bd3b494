import json

import pytest
import torch

from model_base import ModelChecks
from picosam2.errors import UsageError
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


class TestPicoSAM2Quality(ModelChecks):
    arch = "picosam2-q"


def test_quality_head_budget():
    """The quality head adds at most 2 % parameters and MACs (issue 11)."""
    base, q = create_model("picosam2"), create_model("picosam2-q")
    assert count_params(q) > count_params(base)
    assert count_params(q) <= 1.02 * count_params(base)
    assert count_macs(q) <= 1.02 * count_macs(base)


def test_quality_head_sees_border_contact():
    """The score depends on whether the mask touches the window border: the same features with
    a mask that fills the window vs one inside it give different inputs to the head."""
    from picosam2.models import QualityHead

    torch.manual_seed(0)
    head = QualityHead(8, 4, hidden=4)
    b, d = torch.zeros(1, 8, 6, 6), torch.zeros(1, 4, 96, 96)
    inner = torch.full((1, 1, 96, 96), -10.0)
    inner[..., 30:60, 30:60] = 10.0
    full = torch.full((1, 1, 96, 96), 10.0)
    assert not torch.allclose(head(b, d, inner), head(b, d, full))


class TestPicoSAM2At128(ModelChecks):
    arch = "picosam2-128"


def test_paper_counts():
    m = create_model("picosam2")
    assert count_params(m) == 1_262_818
    assert 315e6 <= count_macs(m) <= 345e6


def test_registry_lists_paper_network():
    assert "picosam2" in list_models()
    with pytest.raises(UsageError, match="unknown model 'nope'; known: picosam2, picosam2-128, picosam2-q$"):
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
    (tmp_path / "w" / "config.json").write_text("{}")
    with pytest.raises(WeightsError, match="cannot read"):
        from_pretrained(tmp_path / "w")
    with pytest.raises(WeightsError, match="not found"):
        from_pretrained(tmp_path / "missing")


def test_default_weights_load():
    from picosam2.models import split_outputs

    m = from_pretrained()
    assert m.config.quality_head and m.quality is not None  # the shipped weights carry the quality head
    assert count_params(m) - count_params(m.quality) == 1_262_818  # the paper's network
    assert count_params(m) == 1_282_259  # plus the head
    with torch.no_grad():
        logits, iou = split_outputs(m(torch.zeros(1, 3, 96, 96)))
    assert logits.shape == (1, 1, 96, 96)
    assert iou is not None and iou.shape == (1, 1)
