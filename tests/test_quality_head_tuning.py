"""Stage 5: the quality head refitted on the clicks it ranks (backbone and masks frozen)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import run_cli
from picosam2.train.quality_head import ClickSet, figures, listwise_loss, tune_head


def test_listwise_loss_prefers_the_right_order():
    target = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]])
    valid = torch.tensor([[True, True, False], [True, True, False]])
    right = listwise_loss(target.clone(), target, valid)
    wrong = listwise_loss(target.flip(1), target, valid)
    assert right < wrong
    # padded slots never count: changing them leaves the loss as it is
    padded = target.clone()
    padded[:, 2] = 5.0
    assert torch.isclose(listwise_loss(padded, target, valid), right)


def test_tune_head_learns_to_rank_synthetic_clicks():
    from picosam2.models.picosam2 import QualityHead

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    head = QualityHead(16, 8).eval()
    n_in = head.fc1.in_channels
    clicks, k = 120, 5
    pooled = rng.normal(size=(clicks * k, n_in)).astype(np.float32)
    iou = (1 / (1 + np.exp(-pooled[:, 0] * 2))).astype(np.float32)  # the real IoU follows feature 0
    data = ClickSet(pooled, iou, np.repeat(np.arange(clicks), k))
    before = figures(head, data)
    tune_head(head, data, steps=300, lr=3e-3, rank_weight=0.5)
    after = figures(head, data)
    assert after["spearman_within_click"] > max(0.8, before["spearman_within_click"])
    assert after["miou"] > before["miou"]


def test_click_set_round_trips(tmp_path):
    data = ClickSet(np.ones((4, 3), np.float32), np.arange(4, dtype=np.float32), np.array([0, 0, 1, 1]))
    data.save(tmp_path / "c.npz")
    back = ClickSet.load(tmp_path / "c.npz")
    assert np.array_equal(back.pooled, data.pooled) and np.array_equal(back.click, data.click)
    assert [g.tolist() for g in back.groups()] == [[0, 1], [2, 3]]
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


@pytest.mark.slow
def test_cli_tunes_and_writes_weights_without_the_old_calibration(fixtures_dir, tmp_path):
    from picosam2 import Predictor
    from picosam2.models.registry import resolve_weights

    root = fixtures_dir / "coco_tiny"
    out = tmp_path / "tuned"
    # six instances: the clicks run the whole network at every auto size, the pipeline needs few
    data = ("tune-quality-head", "--annotations", str(root / "instances.json"), "--images", str(root / "images"),
            "--limit", "6")  # fmt: skip
    r = run_cli(
        *data,
        "--out",
        str(out),
        "--steps",
        "20",
        "--clicks",
        "1",
        "--cache",
        str(tmp_path / "clicks.npz"),
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert "head after" in r.stdout and (tmp_path / "clicks.npz").is_file()
    config = json.loads((out / "config.json").read_text())
    assert "score_calibration" not in config.get("extra", {})
    source = Predictor.from_pretrained(None).backend.model
    tuned = Predictor.from_pretrained(str(out)).backend.model
    a, b = source.state_dict(), tuned.state_dict()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(k.startswith("quality.") for k in changed)
    # refusing to overwrite the source folder, one line
    r = run_cli(*data, "--out", str(resolve_weights(None)))
    assert r.returncode != 0 and "must differ" in r.stderr and "Traceback" not in r.stderr
