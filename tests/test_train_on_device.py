"""scripts/train_on_device.sh as a CPU dry run: click packs from the coco_tiny fixture, a handful
of click-training steps, the weights and figures it leaves under OUT."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_on_device.sh"


def _run(mode: str, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, **{k: str(v) for k, v in env.items()}}
    return subprocess.run(["bash", str(SCRIPT), mode], capture_output=True, text=True, env=full, timeout=900)


def test_device_script_dry_run_packs_trains_and_reports(tmp_path, fixtures_dir):
    from picosam2.models import from_pretrained
    from picosam2.train.click_train import load_click_pack

    tiny = fixtures_dir / "coco_tiny"
    packs, out = tmp_path / "packs", tmp_path / "out"
    r = _run("pack", PACKS=packs, FIT_ANN=tiny / "instances.json", SELECT_ANN=tiny / "instances.json",
             IMAGES=tiny / "images", LIMIT=4, CLICKS=2)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    fit = load_click_pack(packs / "fit")
    assert fit["meta"]["clicks"] == 2 * fit["meta"]["instances"] and fit["meta"]["instances"] >= 2
    # every click holds all its auto window sides, smallest (96 px) first
    rows = fit["index"][0][fit["index"][0] >= 0]
    assert len(rows) > 2 and fit["side"][rows[0]] == 96 and np.all(np.diff(fit["side"][rows]) > 0)
    assert fit["images"].shape[1:] == (96, 96, 3) and fit["masks"].any()

    r = _run("train", PACKS=packs, OUT=out, STEPS=3, BATCH=2, DEVICE="cpu", PRECISION="32", LOG_EVERY=1)
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3 and [h["step"] for h in metrics["history"]] == [1, 2, 3]
    for key in ("miou", "oracle_miou", "window96_miou", "spearman_within_click", "score_mae"):
        assert np.isfinite(metrics["val_before"][key]) and np.isfinite(metrics["val_after"][key])
    assert metrics["val_after"]["oracle_miou"] >= metrics["val_after"]["miou"]
    model = from_pretrained(out / "weights")
    assert model.config.quality_head is True and model.config.extra["point_scales"] == "auto"
    assert "score_calibration" not in model.config.extra  # to be refitted on the select split
    assert (out / "log.txt").read_text().count("step") >= 2
