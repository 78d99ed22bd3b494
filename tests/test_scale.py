"""Scale-aware clicks (issue 11): window sizes, the quality target and loss, packed crops that
carry it, initialising a quality-head network from headless weights, candidate selection, the
multi-scale evaluation and a short end-to-end training run of the quality head."""

import json
import math

import numpy as np
import pytest
import torch

from picosam2.prompts import (
    AUTO_MAX_SCALES,
    MODEL_SIZE,
    PromptError,
    Window,
    auto_point_scales,
    mask_box,
    parse_point_scales,
    point_scales_for,
    point_windows,
)
from picosam2.selection import BORDER_RULE_MAX, border_contact, choose_candidate


# -- window sizes ---------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(640, 480), (480, 640), (1800, 1200), (97, 97), (4000, 300), (200, 100)])
def test_auto_scales_run_from_96_to_the_longer_side(size):
    sizes = auto_point_scales(size)
    assert sizes[0] == MODEL_SIZE and sizes[-1] == max(size)
    assert 2 <= len(sizes) <= AUTO_MAX_SCALES
    assert all(b > a for a, b in zip(sizes, sizes[1:]))
    ratios = [b / a for a, b in zip(sizes, sizes[1:])]
    assert max(ratios) / min(ratios) < 1.05  # geometric spacing


def test_auto_scales_on_small_images_and_640():
    assert auto_point_scales((80, 60)) == [MODEL_SIZE]
    sizes = auto_point_scales((640, 480))
    assert len(sizes) == 6 and all(1.3 < b / a < 1.55 for a, b in zip(sizes, sizes[1:]))
    # "auto:4", the fast setting: the same span in at most 4 windows
    assert point_scales_for("auto:4", (640, 480)) == [96, 181, 340, 640]
    assert point_scales_for("auto:4", (200, 150)) == auto_point_scales((200, 150)) == [96, 139, 200]


def test_parse_point_scales():
    assert parse_point_scales("auto") == "auto"
    assert parse_point_scales(" AUTO:4 ") == "auto:4"
    for bad in ("auto:1", "auto:x", "auto:", "auto:-3"):
        with pytest.raises(PromptError, match="auto:N"):
            parse_point_scales(bad)
    assert parse_point_scales(None) is None and parse_point_scales("fixed") is None
    assert parse_point_scales("384,96,192,96") == [96, 192, 384]
    assert parse_point_scales([128]) == [128]
    for bad in ("96,x", "0", "-5,96", ""):
        if bad == "":
            assert parse_point_scales(bad) is None
            continue
        with pytest.raises(PromptError):
            parse_point_scales(bad)
    assert point_scales_for(None, (640, 480)) == [MODEL_SIZE]
    assert point_scales_for("auto", (640, 480)) == auto_point_scales((640, 480))


def test_point_windows_are_centred_squares():
    wins = point_windows(100.5, 50.2, (640, 480), [96, 201])
    assert [w.width for w in wins] == [96, 201] and all(w.width == w.height for w in wins)
    for w in wins:
        assert w.x0 <= 100 < w.x1 and w.y0 <= 50 < w.y1
        assert abs((w.x0 + w.x1) / 2 - 100.5) <= 1 and abs((w.y0 + w.y1) / 2 - 50.5) <= 1


def test_mask_box_maps_window_pixels_to_the_image():
    lg = np.full((96, 96), -5.0, np.float32)
    lg[10:20, 30:50] = 5.0
    win = Window(100, 200, 292, 392)  # 192 px: 2 image px per window px
    assert mask_box(lg, win) == pytest.approx((160, 220, 200, 240))
    assert mask_box(np.full((96, 96), -1.0), win) is None


# -- selection ------------------------------------------------------------------------------
def test_choose_by_score_and_border_rule():
    touching = np.full((96, 96), 3.0, np.float32)  # fills the window: touches every border pixel
    inside = np.full((96, 96), -3.0, np.float32)
    inside[30:60, 30:60] = 3.0
    logits = np.stack([touching, inside, inside])
    assert border_contact(logits).tolist() == [1.0, 0.0, 0.0]
    assert choose_candidate(logits) == (1, "border")  # the smallest window the object ends in
    assert choose_candidate(logits, np.array([0.9, 0.2, 0.3])) == (0, "score")
    # nothing ends inside: the least border contact wins
    partial = touching.copy()
    partial[:, :60] = -3.0
    assert border_contact(partial[None])[0] > BORDER_RULE_MAX
    assert choose_candidate(np.stack([touching, partial])) == (1, "border")


# -- quality target and loss ----------------------------------------------------------------
def test_outside_pixels_and_units():
    from picosam2.train.data import crop_units, outside_pixels

    mask = np.zeros((100, 200), bool)
    mask[10:30, 50:150] = True  # 2000 px
    assert outside_pixels(mask, Window(0, 0, 100, 100)) == 1000  # x 100..150 is outside
    assert outside_pixels(mask, Window(-50, -50, 300, 300)) == 0
    assert outside_pixels(mask, Window(150, 0, 200, 100)) == 2000
    assert crop_units(1000, Window(0, 0, 192, 192)) == pytest.approx(250.0)  # 4 image px per window px


def test_full_image_iou_counts_the_object_outside_the_window():
    from picosam2.train.losses import full_image_iou, quality_loss

    gt = torch.zeros(2, 96, 96)
    gt[:, 20:60, 20:60] = 1  # 1600 px inside
    logits = gt * 20 - 10  # a perfect window mask
    iou = full_image_iou(logits, gt, torch.tensor([0.0, 1600.0]))
    assert iou.tolist() == pytest.approx([1.0, 0.5])
    # the loss leaves out samples whose outside count is unknown, and is 0 when the score is right
    pred = torch.tensor([[1.0], [0.5]], requires_grad=True)
    assert quality_loss(pred, logits, gt, torch.tensor([0.0, 1600.0])).item() == pytest.approx(0.0, abs=1e-7)
    loss = quality_loss(pred, logits, gt, torch.tensor([float("nan"), 1600.0 * 3]))
    assert loss.item() == pytest.approx((0.5 - 0.25) ** 2)
    loss.backward()
    assert pred.grad[0, 0] == 0 and pred.grad[1, 0] > 0


def test_packed_crops_carry_the_outside_count(fixtures_dir, tmp_path):
    from picosam2.data import InstanceSet
    from picosam2.train.data import PackedCrops, WindowPolicy, build_packed, collate, outside_pixels

    d = fixtures_dir / "coco_tiny"
    tiny = InstanceSet(d / "instances.json", [d / "images"])
    policy = WindowPolicy(scale_prob=1.0, scale_to_image=True)
    folder = build_packed(tiny, tmp_path / "p", samples_per_instance=3, policy=policy, limit=10)
    packed = PackedCrops(folder, shuffle=False)
    sides = packed.window[:, 2] - packed.window[:, 0]
    assert sides.max() > 256  # windows now reach past the old 256 px cap
    for row in range(len(packed)):
        inst = tiny.instance(int(packed.ann_id[row]))
        assert packed.outside[row] == outside_pixels(tiny.mask(inst), Window(*map(int, packed.window[row])))
        assert sides[row] <= max(inst.width, inst.height)
    assert (packed.outside > 0).any() and (packed.outside == 0).any()
    batch = collate([packed[g] for g in range(4)])
    assert batch["outside"].shape == (4,) and torch.isfinite(batch["outside"]).all()


def test_quality_network_starts_from_headless_weights(tmp_path):
    from picosam2.models import create_model, save_pretrained
    from picosam2.train.config import TrainConfig
    from picosam2.train.module import initial_model

    torch.manual_seed(0)
    base = create_model("picosam2").eval()
    base.config.extra = {"point_window_size": 128}
    save_pretrained(base, tmp_path / "w")
    model = initial_model(TrainConfig(model="picosam2-q", init_weights=str(tmp_path / "w")))
    assert model.config.quality_head and model.config.extra == {"point_window_size": 128}
    for k, v in base.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert model.quality is not None and model.training


@pytest.mark.slow
def test_training_run_teaches_the_quality_head(fixtures_dir, tmp_path):
    """A short run of picosam2-q: the exported weights have a head whose loss was logged."""
    pytest.importorskip("lightning")
    from conftest import run_cli
    from picosam2.models import from_pretrained

    d = fixtures_dir / "coco_tiny"
    out = tmp_path / "run"
    r = run_cli(
        "train",
        "--config",
        "gt-only",
        "model=picosam2-q",
        f"data.train_annotations={d / 'instances.json'}",
        f"data.train_images=[{d / 'images'}]",
        f"data.packed={tmp_path / 'pack'}",
        "data.samples_per_instance=2",
        "data.limit=12",
        "data.val_annotations=null",
        "data.scale_prob=0.7",
        "data.scale_to_image=true",
        "batch_size=4",
        "max_steps=6",
        "log_every=1",
        "threads=1",
        "optim.warmup_steps=1",
        "progress_bar=false",
        f"out_dir={out}",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    model = from_pretrained(out / "weights")
    assert model.config.quality_head
    rows = (next((out / "logs").rglob("metrics.csv"))).read_text().splitlines()
    header = rows[0].split(",")
    q = [
        float(line.split(",")[header.index("train/quality_loss")])
        for line in rows[1:]
        if line.split(",")[header.index("train/quality_loss")]
    ]
    assert q and all(math.isfinite(v) and v >= 0 for v in q)


# -- multi-scale evaluation -----------------------------------------------------------------
def test_multiscale_eval_reports_oracle_fixed_and_spearman(fixtures_dir, tmp_path):
    from picosam2.data import InstanceSet
    from picosam2.eval import build_report, evaluate, results_entries
    from picosam2.models import create_model
    from picosam2.predictor import Predictor

    d = fixtures_dir / "coco_tiny"
    tiny = InstanceSet(d / "instances.json", [d / "images"])
    torch.manual_seed(0)
    pred = Predictor(create_model("picosam2-q"))
    res = evaluate(tiny, pred, "full", "point", limit=12, progress=False, keep_rle=True, point_scales="96,192,384")
    assert len(res.samples) > 0
    for s in res.samples:
        assert [c[0] for c in s.candidates] == [96, 192, 384]
        best = int(np.argmax([c[2] for c in s.candidates]))  # chosen by score
        assert s.iou == s.candidates[best][1] and s.window.width == s.candidates[best][0]
    report = json.loads(json.dumps(build_report(res, {"model": "random"})))
    ps = report["point_scales"]
    assert ps["point_scales"] == [96, 192, 384] and [f["side"] for f in ps["fixed"]] == [96, 192, 384]
    assert ps["oracle"]["miou"] >= report["miou"] - 1e-9
    assert ps["oracle"]["miou"] >= max(f["miou"] for f in ps["fixed"]) - 1e-9
    assert sum(ps["chosen_index"].values()) == report["count"]
    from picosam2.eval.metrics import spearman

    chosen = [s.candidates[s.chosen_index] for s in res.samples]
    want = spearman([c[2] for c in chosen], [c[1] for c in chosen])
    got = build_report(res, {"model": "random"})["point_scales"]["spearman_chosen"]
    assert (got is None and not np.isfinite(want)) or got == pytest.approx(want)
    assert all("score" in e for e in results_entries(res))
    with pytest.raises(ValueError, match="full protocol"):
        evaluate(tiny, pred, "paper", "point", limit=2, progress=False, point_scales="auto")


def test_spearman_over_returned_masks_uses_the_chosen_candidates():
    from types import SimpleNamespace

    from picosam2.eval.metrics import scale_summary

    def sample(i, cands, chosen):
        return SimpleNamespace(ann_id=i, area=500.0, candidates=cands, chosen_index=chosen)

    # the chosen masks' scores follow their IoUs exactly; the other candidates run against them
    rows = [sample(i, [(96, 0.1 * i, 0.9 - 0.1 * i), (192, 0.05 * i, 0.1 * i)], 1) for i in range(1, 6)]
    ps = scale_summary(rows, "96,192")
    assert ps["spearman_chosen"] == pytest.approx(1.0)
    assert ps["spearman"] < 0.5


# -- predictor ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def q_model():
    from picosam2.models import create_model

    torch.manual_seed(0)
    return create_model("picosam2-q").eval()


def _photo():
    return np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)


def test_predictor_follows_the_weights_scale_recommendation(q_model):
    from picosam2.predictor import Predictor

    q_model.config.extra = {"point_scales": "auto", "point_window_size": 128}
    try:
        assert Predictor(q_model).point_scales == "auto"
        assert Predictor(q_model, window_size=160).point_scales is None  # an explicit window wins
        assert Predictor(q_model, point_scales="fixed").point_scales is None
        assert Predictor(q_model, point_scales="96,192").point_scales == [96, 192]
    finally:
        q_model.config.extra = {}
    assert Predictor(q_model).point_scales is None  # no recommendation: one window


def test_scale_aware_click_keeps_the_best_scored_candidate(q_model):
    from picosam2.predictor import Predictor

    img = _photo()
    pts, box = [[10, 10], [200, 150]], [[5, 5, 100, 100]]
    best = Predictor(q_model, point_scales="auto").predict(img, points=pts, boxes=box)
    every = Predictor(q_model, point_scales="auto", multimask=True).predict(img, points=pts, boxes=box)
    sizes = auto_point_scales((400, 300))
    k = len(sizes)
    assert len(every) == 2 * k + 1 and every.prompt_index.tolist() == [0] * k + [1] * k + [2]
    assert [w.width for w in every.windows[:k]] == sizes
    assert len(best) == 3 and best.kinds == ["point", "point", "box"] and best.reasons[:2] == ["score", "score"]
    for p in (0, 1):
        cand = np.nonzero(every.prompt_index == p)[0]
        k = cand[int(np.argmax(every.scores[cand]))]
        assert best.windows[p] == every.windows[k]
        assert best.scores[p] == pytest.approx(every.scores[k])
        np.testing.assert_allclose(best.logits[p], every.logits[k], atol=1e-5)
    assert best.masks.shape == (3, 300, 400)
    fast = Predictor(q_model, point_scales="auto:3", multimask=True).predict(img, points=pts[:1])
    assert [w.width for w in fast.windows] == auto_point_scales((400, 300), max_count=3) and len(fast) == 3


def test_predict_cli_reports_the_chosen_scale(q_model, tmp_path):
    from conftest import run_cli
    from picosam2.models import save_pretrained

    save_pretrained(q_model, tmp_path / "w", metadata={"trained": "true"})
    from PIL import Image

    Image.fromarray(_photo()).save(tmp_path / "p.png")
    r = run_cli(
        "predict",
        str(tmp_path / "p.png"),
        "--point",
        "200,150",
        "--weights",
        str(tmp_path / "w"),
        "--point-scales",
        "auto",
        "--out",
        str(tmp_path / "m.png"),
    )
    assert r.returncode == 0, r.stderr
    assert "score, predicted IoU" in r.stdout and (tmp_path / "m.png").exists()
    r = run_cli(
        "predict",
        str(tmp_path / "p.png"),
        "--point",
        "200,150",
        "--weights",
        str(tmp_path / "w"),
        "--point-scales",
        "96,x",
        "--out",
        str(tmp_path / "n.png"),
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "n.png").exists()


def test_click_on_a_large_object_returns_the_whole_object(samples_dir):
    """make demo's click (the bowl in dog.jpg) with the shipped weights: the chosen mask ends
    inside its window (no straight window edge), unlike the fixed 128 px window."""
    from picosam2.predictor import Predictor

    pred = Predictor.from_pretrained()
    assert pred.point_scales == "auto"
    res = pred.predict(samples_dir / "dog.jpg", points=[[570, 200]])
    assert res.reasons == ["score"] and res.windows[0].width > 128
    assert border_contact(res.logits)[0] < BORDER_RULE_MAX
    fixed = Predictor.from_pretrained(point_scales="fixed").predict(samples_dir / "dog.jpg", points=[[570, 200]])
    assert border_contact(fixed.logits)[0] > 2 * border_contact(res.logits)[0]  # the old single window cut the bowl
    assert res.union().sum() > 1.5 * fixed.union().sum()
