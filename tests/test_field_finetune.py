"""`picosam2 finetune`'s layer options: `--encoder-lr-scale S` moves the encoder at S x the
decoder's learning rate, `--freeze-bn` (the default) keeps the base weights' BatchNorm statistics
while their affine parameters still learn (`--no-freeze-bn` moves them); `--calibration keep` (the
default) leaves the inherited score calibration and `auto` refits it only when the refit wins its
cross-validation on the held-out site clicks; the gate's score cache tells calibrations apart;
bad values are one-line usage errors."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_cli

pytest.importorskip("pycocotools")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from test_field_gate import _site

    return _site(tmp_path_factory.mktemp("ft-site") / "site-train", 4, 3)


def _run(site, out, *extra):
    return run_cli("finetune", "--annotations", str(site), "--images", str(site.parent), "--out", str(out),
                   "--batch-size", "4", "--threads", "1", "--precision", "32", "--holdout", "0", "--quiet",
                   "--steps", "2", "--minutes", "5", *extra)  # fmt: skip


def _moved(w2, base, prefixes):
    """Largest absolute change of the learnable tensors whose name starts with one of ``prefixes``."""
    b = dict(base.named_parameters())
    return max(
        float((p.detach() - b[n].detach()).abs().max()) for n, p in w2.named_parameters() if n.split(".")[0] in prefixes
    )


def test_encoder_lr_scale_and_frozen_bn_statistics(site, tmp_path):
    from picosam2.models import from_pretrained
    from picosam2.train.finetune import ENCODER_PARTS

    out = tmp_path / "w2"
    r = _run(site, out, "--encoder-lr-scale", "1e-4", "--freeze-bn")
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((out / "finetune.json").read_text())
    assert rep["settings"]["encoder_lr_scale"] == 1e-4 and rep["settings"]["freeze_bn"] is True
    assert rep["score_calibration"] is None  # --holdout 0: nothing held out, the shipped calibration stays
    base, w2 = from_pretrained(None), from_pretrained(out)
    head_parts = {n for n, _ in w2.named_children()} - set(ENCODER_PARTS)
    enc, dec = _moved(w2, base, ENCODER_PARTS), _moved(w2, base, head_parts)
    assert dec > 0 and enc < 1e-2 * dec, (enc, dec)
    stats = {k: v for k, v in base.state_dict().items() if "running_" in k}
    assert stats, "the network has no BatchNorm statistics"
    after = w2.state_dict()
    assert all(torch.equal(after[k], v) for k, v in stats.items())
    # the affine parameters of BatchNorm still learn
    bn_w = [n for n, m in w2.named_modules() if isinstance(m, torch.nn.BatchNorm2d) and n.split(".")[0] in head_parts]
    assert any(not torch.equal(after[f"{n}.weight"], base.state_dict()[f"{n}.weight"]) for n in bn_w)


def test_no_freeze_bn_moves_the_bn_statistics(site, tmp_path):
    from picosam2.models import from_pretrained

    out = tmp_path / "w2"
    r = _run(site, out, "--no-freeze-bn")
    assert r.returncode == 0, r.stderr[-2000:]
    base, w2 = from_pretrained(None).state_dict(), from_pretrained(out).state_dict()
    assert any(not torch.equal(w2[k], v) for k, v in base.items() if "running_mean" in k)


def _calibration(folder):
    return json.loads((folder / "config.json").read_text())["extra"]["score_calibration"]


def test_calibration_keep_and_auto(site, tmp_path):
    from picosam2.models.registry import resolve_weights

    shipped = _calibration(resolve_weights(None))
    keep, auto = tmp_path / "keep", tmp_path / "auto"
    for out, mode in ((keep, "keep"), (auto, "auto")):
        r = _run(site, out, "--holdout", "0.5", "--calib-clicks", "6", "--calibration", mode)
        assert r.returncode == 0, r.stderr[-2000:]
    assert _calibration(keep) == shipped
    assert json.loads((keep / "finetune.json").read_text())["score_calibration"] is None
    cal = json.loads((auto / "finetune.json").read_text())["score_calibration"]
    assert cal["clicks"] > 0 and cal["inherited"]["clicks"] == cal["clicks"]
    wins = cal["cross_validated"] is not None and cal["cross_validated"]["miou"] > cal["inherited"]["miou"]
    assert cal["refitted"] is wins
    assert (_calibration(auto) == shipped) is not wins
    if wins:
        assert _calibration(auto)["fitted_on"].startswith("site holdout")


@pytest.mark.parametrize("value", ["0", "-1"])
def test_encoder_lr_scale_must_be_positive(site, tmp_path, value):
    r = _run(site, tmp_path / "w2", "--encoder-lr-scale", value)
    assert r.returncode == 2 and "--encoder-lr-scale" in r.stderr and r.stderr.count("\n") <= 1
    assert not (tmp_path / "w2").exists()


def test_gate_cache_tells_calibrations_apart(site, tmp_path):
    """Two weights with the same tensors but another score calibration are scored apart."""
    import shutil

    from picosam2.models.registry import resolve_weights
    from picosam2.ops.gate import score

    w = tmp_path / "w"
    shutil.copytree(resolve_weights(None), w)
    cache = tmp_path / "cache"
    score(w, site, [site.parent], point_scales="auto:2", cache=cache)
    config = json.loads((w / "config.json").read_text())
    config["extra"]["score_calibration"]["alpha"] = 1.0  # any change of config.json
    (w / "config.json").write_text(json.dumps(config))
    score(w, site, [site.parent], point_scales="auto:2", cache=cache)
    assert len(list(cache.glob("*.json"))) == 2
