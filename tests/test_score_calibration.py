"""The score calibration of scale-aware clicks: features, the fitted ridge, its use by the
Predictor, the camera's sweep and the page's JavaScript port."""

from __future__ import annotations

import json

import numpy as np
import pytest

from picosam2.prompts import Window, point_windows
from picosam2.selection import CLICK_FEATURES, ScoreCalibration, click_features, quadratic_terms
from picosam2.train.score_calibration import click_figures, cross_validate, fit_ridge

F = len(CLICK_FEATURES)


def _calibration(seed: int = 0) -> ScoreCalibration:
    rng = np.random.default_rng(seed)
    return ScoreCalibration(rng.random(F), rng.random(F) + 0.5, rng.standard_normal(1 + F + F * (F + 1) // 2) * 0.1)


def test_click_features_measure_the_masks():
    size = 96
    full = np.full((size, size), 5.0, np.float32)
    inner = np.full((size, size), -5.0, np.float32)
    inner[24:72, 24:72] = 5.0
    wins = [Window(0, 0, 96, 96), Window(0, 0, 200, 100)]
    f = click_features(np.stack([full, inner]), wins, (200, 100), np.array([0.2, 0.7]))
    assert f.shape == (2, F)
    score, border, coverage, uncertainty, abs_logit, log_scale, share = f.T
    assert score.tolist() == pytest.approx([0.2, 0.7])
    assert border.tolist() == [1.0, 0.0]
    assert coverage.tolist() == pytest.approx([1.0, 0.25])
    assert np.all(uncertainty < 0.03) and abs_logit.tolist() == pytest.approx([5.0, 5.0])
    assert log_scale.tolist() == pytest.approx([np.log(96 / 200), 0.0])
    assert share.tolist() == pytest.approx([96 * 96 / 20000, 0.25])


def test_calibration_round_trips_and_checks_its_shape():
    cal = _calibration()
    again = ScoreCalibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    x = np.random.default_rng(2).standard_normal((50, F))
    assert np.array_equal(cal.predict(x), again.predict(x))
    assert np.all((cal.predict(x * 10) >= 0) & (cal.predict(x * 10) <= 1))
    with pytest.raises(ValueError, match="feature count"):
        ScoreCalibration(np.zeros(F), np.ones(F), np.zeros(F + 1))
    with pytest.raises(ValueError, match="are not"):
        ScoreCalibration(np.zeros(2), np.ones(2), np.zeros(6), features=("score", "border"))
    assert ScoreCalibration.from_config(type("C", (), {"extra": {}})()) is None


def test_fit_ridge_recovers_a_quadratic_and_cross_validates():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, F)) * 2 + 1
    z = (x - x.mean(0)) / x.std(0)
    y = 0.4 + 0.1 * z[:, 0] - 0.05 * z[:, 1] * z[:, 2]
    cal = fit_ridge(x, y, alpha=1e-6)
    assert np.abs(cal.predict(x) - y).max() < 1e-3
    assert quadratic_terms(z).shape == (600, 1 + F + F * (F + 1) // 2)
    # a strong penalty shrinks the slopes but not the intercept: predictions go to the mean
    flat = fit_ridge(x, y, alpha=1e9)
    assert np.abs(flat.predict(x) - y.mean()).max() < 1e-3
    groups_x = [x[i : i + 6] for i in range(0, 600, 6)]
    groups_y = [y[i : i + 6] for i in range(0, 600, 6)]
    fig = cross_validate(groups_x, groups_y, alpha=1e-6, folds=5)
    assert fig["clicks"] == 100 and fig["spearman"] > 0.99
    assert fig["miou"] == pytest.approx(100 * np.mean([g.max() for g in groups_y]))
    assert click_figures([(np.array([0.1, 0.9]), np.array([0.8, 0.2]))])["miou"] == pytest.approx(20.0)


def test_predictor_chooses_by_the_calibrated_score(samples_dir):
    from picosam2 import Predictor

    pred = Predictor.from_pretrained(point_scales="auto", multimask=True)
    if not pred.config.quality_head:
        pytest.skip("the default weights have no quality head")
    image = samples_dir / "dog.jpg"
    pred.score_calibration = None
    raw = pred.predict(image, points=[(570, 200)])
    cal = _calibration(3)
    pred.score_calibration = cal
    every = pred.predict(image, points=[(570, 200)])
    want = cal(raw.logits, raw.windows, raw.image_size, raw.scores)
    assert np.allclose(every.scores, want, atol=1e-6)
    assert not np.allclose(every.scores, raw.scores)
    pred.multimask = False
    one = pred.predict(image, points=[(570, 200)])
    assert one.windows[0] == every.windows[int(np.argmax(want))]
    assert one.scores[0] == pytest.approx(float(want.max()), abs=1e-6)


def test_camera_sweep_compares_calibrated_scores():
    from picosam2.camera.core import ScalePolicy

    sides = [96, 192, 384]
    # raw scores favour the smallest window; this calibration only looks at log(side / frame)
    weights = np.zeros(1 + F + F * (F + 1) // 2)
    weights[0], weights[1 + 5] = 0.5, 0.2
    cal = ScoreCalibration(np.zeros(F), np.ones(F), weights)
    policy = ScalePolicy(sides, calibration=cal, frame_size=(384, 300))
    lg = np.zeros((96, 96), np.float32)
    for score in (0.9, 0.5, 0.1):
        policy.next()
        policy.update(lg, score)
    assert policy.best == 2 and policy.best_score == pytest.approx(0.5)
    plain = ScalePolicy(sides)
    for score in (0.9, 0.5, 0.1):
        plain.next()
        plain.update(lg, score)
    assert plain.best == 0


def test_javascript_port_matches(tmp_path):
    from test_demo_js import NODE, run_js

    if NODE is None:
        pytest.skip("node is not installed")
    rng = np.random.default_rng(4)
    cal = _calibration(5)
    wins = point_windows(570, 200, (800, 534), [96, 140, 205, 300, 438, 800])
    logits = (rng.standard_normal((len(wins), 96, 96)) * 3).astype(np.float32)
    scores = rng.random(len(wins)).astype(np.float32)
    data = {
        "cal": cal.to_dict(),
        "lg": logits.ravel().tolist(),
        "wins": [dict(zip(("x0", "y0", "x1", "y1"), w.as_tuple())) for w in wins],
        "sc": scores.tolist(),
    }
    got = run_js(
        "const lg = Float32Array.from(data.lg); const offs = data.wins.map((_, i) => i * 96 * 96);"
        " return w.clickScores(data.cal, lg, offs, 96, data.wins, 800, 534, data.sc);",
        data,
    )
    want = cal(logits, wins, (800, 534), scores)
    assert np.allclose(got, want, atol=1e-6)


def test_camera_photo_loop_sweeps_with_the_calibration(samples_dir):
    """``picosam2 camera --simulate FOLDER`` path: the weights' calibration reaches the sweep, so
    the frames report calibrated scores and the kept side is the calibrated best."""
    from picosam2.camera.app import simulate_photos
    from picosam2.camera.cli import _window_runner

    run, config = _window_runner(None)
    cal = ScoreCalibration.from_config(config)
    assert cal is not None and ScoreCalibration.from_config(config.to_dict()) is not None  # sidecar dicts too
    photos = [samples_dir / "dog.jpg"] * 9
    kw = dict(prompt=(570, 200), kind="point", point_scales="auto")
    plain = simulate_photos(run, photos, **kw)
    calibrated = simulate_photos(run, photos, calibration=cal, **kw)
    sweep = [r for r in calibrated if r["scale_reason"].startswith("sweep")]
    assert len(sweep) >= 2
    assert [r["score"] for r in sweep] == pytest.approx([r["score"] for r in plain[: len(sweep)]])  # network's
    assert all(r["scale_score"] == r["score"] for r in plain)
    assert any(abs(r["scale_score"] - r["score"]) > 1e-3 for r in sweep)
    kept = [r for r in calibrated if r["scale_reason"].startswith("kept")]
    assert kept and kept[0]["scale_score"] == pytest.approx(max(r["scale_score"] for r in sweep), abs=1e-5)
