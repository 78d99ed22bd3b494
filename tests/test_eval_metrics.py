"""The metric module on hand-made masks with known answers."""

import math

import numpy as np
import pytest

from picosam2.eval import metrics


def square(shape, y0, y1, x0, x1):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_iou_known_values():
    a = square((10, 10), 0, 4, 0, 4)  # 16 px
    b = square((10, 10), 2, 6, 2, 6)  # 16 px, 4 shared
    assert metrics.iou(a, b) == pytest.approx(4 / 28)
    assert metrics.iou(a, a) == 1.0
    assert metrics.iou(a, square((10, 10), 5, 9, 5, 9)) == 0.0
    assert metrics.iou(square((10, 10), 0, 2, 0, 4), a) == pytest.approx(0.5)  # pred inside gt


def test_iou_empty_union_is_one_and_empty_prediction_is_zero():
    empty = np.zeros((5, 5), bool)
    assert metrics.iou(empty, empty) == 1.0
    assert metrics.iou(empty, square((5, 5), 1, 2, 1, 2)) == 0.0
    assert metrics.iou(square((5, 5), 1, 2, 1, 2), empty) == 0.0


def test_iou_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.iou(np.zeros((3, 3), bool), np.zeros((3, 4), bool))


def test_batch_iou_matches_iou():
    rng = np.random.default_rng(1)
    p = rng.random((20, 12, 12)) < 0.3
    g = rng.random((20, 12, 12)) < 0.3
    p[0] = g[0] = False  # an empty union in the stack
    got = metrics.batch_iou(p, g)
    assert got[0] == 1.0
    assert np.allclose(got, [metrics.iou(a, b) for a, b in zip(p, g)])


def test_logits_threshold_is_strictly_positive():
    lg = np.array([[-1.0, 0.0, 1e-6]])
    assert metrics.logits_to_mask(lg).tolist() == [[False, False, True]]


def test_paper_thresholds_are_the_ten_coco_steps():
    # COCO's 0.50:0.05:0.95: an IoU just below each step counts for the steps under it only
    for k in range(10):
        step = 0.5 + 0.05 * k
        assert metrics.paper_map([step - 1e-9]) == pytest.approx(k / 10)
        assert metrics.paper_map([step]) == pytest.approx((k + 1) / 10)


def test_paper_map_known_value():
    # fraction >= t: t=0.50 -> 3/4; 0.55..0.75 (5 thresholds) -> 2/4; 0.80..0.95 (4) -> 1/4
    assert metrics.paper_map([0.5, 0.75, 1.0, 0.0]) == pytest.approx((0.75 + 5 * 0.5 + 4 * 0.25) / 10)
    assert metrics.paper_map([1.0, 1.0]) == 1.0
    assert metrics.paper_map([0.49]) == 0.0
    # an IoU exactly on a threshold counts (>=): 11/20 = 0.55 passes 0.50 and 0.55
    assert metrics.paper_map([11 / 20]) == pytest.approx(0.2)
    assert math.isnan(metrics.paper_map([]))


def test_paper_map_is_not_coco_ap_but_threshold_fractions():
    ious = np.random.default_rng(0).random(101)
    expect = np.mean([np.mean(ious >= t) for t in np.linspace(0.5, 0.95, 10)])
    assert metrics.paper_map(ious) == pytest.approx(expect)


def test_summarize_by_size_uses_annotation_area():
    ious = {1: 0.2, 2: 0.4, 3: 0.9, 4: 0.6}
    areas = {1: 32**2 - 1, 2: 32**2, 3: 96**2, 4: 10.0}
    s = metrics.summarize(ious, areas)
    assert s["count"] == 4 and s["miou"] == pytest.approx(0.525)
    assert s["by_size"]["small"] == {"miou": pytest.approx(0.4), "paper_map": pytest.approx(0.15), "count": 2}
    assert s["by_size"]["medium"]["count"] == 1 and s["by_size"]["medium"]["miou"] == pytest.approx(0.4)
    assert s["by_size"]["large"]["paper_map"] == pytest.approx(0.9)  # 0.9 passes 0.50..0.90: 9 of 10
    empty = metrics.summarize({}, {})
    assert empty["count"] == 0 and empty["miou"] is None and empty["by_size"]["large"]["count"] == 0
