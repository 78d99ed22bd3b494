"""Training room: configs, losses, windows and packed crops, schedule (fast, no Lightning run)."""

import numpy as np
import pytest
import torch

from picosam2.data import InstanceSet
from picosam2.prompts import MODEL_SIZE, Window, crop_image, crop_mask
from picosam2.train.config import load_config, shipped_configs
from picosam2.train.data import (
    Augment,
    PackedCrops,
    StreamSampler,
    WindowDataset,
    WindowPolicy,
    build_packed,
    collate,
    draw_window,
)
from picosam2.train.losses import batch_iou, combined_loss, dice_loss, distill_loss, gt_loss


@pytest.fixture(scope="module")
def tiny_set(fixtures_dir):
    d = fixtures_dir / "coco_tiny"
    return InstanceSet(d / "instances.json", [d / "images"])


# -- config ---------------------------------------------------------------------------------
def test_shipped_configs_load_and_paper_is_the_recipe():
    assert {"paper", "gt-only", "coco-mini"} <= set(shipped_configs())
    paper = load_config("paper")
    assert (paper.batch_size, paper.optim.lr, paper.optim.warmup_steps) == (8, 3e-4, 1000)
    assert paper.loss.mode == "distill" and paper.loss.alpha == "dynamic"
    assert load_config("gt-only").loss.mode == "gt"


def test_overrides_and_errors(tmp_path):
    cfg = load_config("paper", ["optim.lr=1e-3", "loss.alpha=0.25", "data.train_images=[a,b]", "ema_decay=0.99"])
    assert cfg.optim.lr == 1e-3 and cfg.loss.alpha == 0.25 and cfg.data.train_images == ["a", "b"]
    assert cfg.ema_decay == 0.99
    with pytest.raises(ValueError, match="unknown config key"):
        load_config("paper", ["optim.lrr=1"])
    with pytest.raises(ValueError, match="alpha"):
        load_config("paper", ["loss.alpha=1.5"])
    with pytest.raises(ValueError, match="not key=value"):
        load_config("paper", ["lr"])
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1, 2]\ndata: {train_annotations: a}\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(bad)


# -- losses ---------------------------------------------------------------------------------
def test_gt_loss_prefers_the_right_mask():
    gt = torch.zeros(2, 8, 8)
    gt[:, 2:6, 2:6] = 1
    good = (gt * 2 - 1) * 8
    bad = -good
    assert gt_loss(good, gt) < 0.01 < 1.0 < gt_loss(bad, gt)
    assert dice_loss(gt, gt) < 1e-6
    assert torch.allclose(batch_iou(good, gt), torch.ones(2))
    assert torch.allclose(batch_iou(bad, gt), torch.zeros(2))


def test_combined_loss_alpha_mixes_teacher_and_ground_truth():
    torch.manual_seed(0)
    logits = torch.randn(3, 12, 12)
    gt = (torch.rand(3, 12, 12) > 0.5).float()
    teacher = torch.randn(3, 12, 12) * 3
    g = gt_loss(logits, gt, reduce=False)
    d = distill_loss(logits, teacher, reduce=False)
    assert torch.allclose(combined_loss(logits, gt, teacher, 0.0)["loss"], g.mean())
    assert torch.allclose(combined_loss(logits, gt, teacher, 1.0)["loss"], d.mean())
    alpha = torch.tensor([0.0, 0.5, 1.0])  # dynamic: one weight per sample
    out = combined_loss(logits, gt, teacher, alpha)
    expect = (alpha * d + (1 - alpha) * g).mean()
    assert torch.allclose(out["loss"], expect) and torch.allclose(out["alpha"], alpha.mean())
    # copying the teacher beats a random student; a confident teacher copied exactly costs ~0
    assert distill_loss(teacher, teacher) < distill_loss(logits, teacher)
    hard = torch.sign(teacher) * 20
    assert distill_loss(hard, hard) < 1e-3
    with pytest.raises(ValueError):
        combined_loss(logits, gt, teacher, torch.ones(2))


def test_loss_gradients_flow():
    logits = torch.zeros(2, 6, 6, requires_grad=True)
    gt = torch.ones(2, 6, 6)
    gt_loss(logits, gt).backward()
    assert (logits.grad < 0).all()  # raising the logits lowers the loss


# -- windows and datasets -------------------------------------------------------------------
def test_draw_window_puts_the_point_in_its_window(tiny_set):
    inst = tiny_set.instances(limit=5)[3]
    mask = tiny_set.mask(inst)
    rng = np.random.default_rng(0)
    pol = WindowPolicy(scale_prob=0.5, scale_min=96, scale_max=256)
    sizes = set()
    for _ in range(40):
        (x, y), win, rule = draw_window(mask, inst.bbox, pol, rng)
        assert mask[y, x]
        assert win.x0 <= x < win.x1 and win.y0 <= y < win.y1
        sizes.add(win.width)
        if win.width > 96:
            assert win.width == win.height and 96 <= win.width <= 256
            assert (x - win.x0, y - win.y0) == (win.width // 2, win.width // 2)  # centred
    assert len(sizes) > 3  # scale jitter happened
    (x, y), win, rule = draw_window(mask, inst.bbox, WindowPolicy.paper_protocol(), rng)
    assert rule == "paper" and win.width <= 96


def test_packed_crops_match_the_prompt_windows(tiny_set, tmp_path):
    folder = build_packed(
        tiny_set, tmp_path / "p", samples_per_instance=3, policy=WindowPolicy(scale_prob=0.5), limit=8
    )
    packed = PackedCrops(folder, shuffle=False)
    assert len(packed) == 24
    from picosam2.image_io import load_image

    for row in (0, 7, 23):
        inst = tiny_set.instance(int(packed.ann_id[row]))
        win = Window(*map(int, packed.window[row]))
        img = load_image(inst.image_path)
        assert np.array_equal(packed.crop(row), crop_image(img, win))
        assert np.array_equal(packed.gt_mask(row), crop_mask(tiny_set.mask(inst), win))
    # max_window keeps the fixed-size windows only (fine-tuning on the paper's 96 px window)
    small = PackedCrops(folder, max_window=96)
    widths = packed.window[:, 2] - packed.window[:, 0]
    assert 0 < len(small) == int((widths <= 96).sum()) < len(packed)
    assert all(widths[small[g]["row"]] <= 96 for g in range(2 * len(small)))
    # rebuilding after losing a shard gives the same bytes (resumable, deterministic)
    shard = folder / "shard-00000.npz"
    before = shard.read_bytes()
    shard.unlink()
    (folder / "pack.json").write_text(
        (folder / "pack.json").read_text().replace('"complete": true', '"complete": false')
    )
    build_packed(tiny_set, folder, samples_per_instance=3, policy=WindowPolicy(scale_prob=0.5), limit=8)
    assert shard.read_bytes() == before
    with pytest.raises(ValueError, match="other settings"):
        build_packed(tiny_set, folder, samples_per_instance=2, limit=8)


def test_jpeg_packed_set_is_smaller_and_close(tiny_set, tmp_path):
    raw = PackedCrops(build_packed(tiny_set, tmp_path / "raw", samples_per_instance=2, limit=10), shuffle=False)
    jpg_dir = build_packed(tiny_set, tmp_path / "jpg", samples_per_instance=2, limit=10, fmt="jpeg")
    jpg = PackedCrops(jpg_dir, shuffle=False)
    size = lambda d: sum(p.stat().st_size for p in d.glob("*.npz"))  # noqa: E731
    assert size(jpg_dir) < size(tmp_path / "raw") / 3
    diff = np.abs(jpg.crop(3).astype(int) - raw.crop(3).astype(int)).mean()
    assert diff < 6
    assert np.array_equal(jpg.gt_mask(3), raw.gt_mask(3))


def test_samples_depend_only_on_seed_and_index(tiny_set, tmp_path):
    folder = build_packed(tiny_set, tmp_path / "p", samples_per_instance=2, limit=6)
    aug = Augment(hflip=0.5, vflip=0.5, color_jitter=0.3)
    a = PackedCrops(folder, augment=aug, seed=1)
    b = PackedCrops(folder, augment=aug, seed=1)
    for g in (17, 3, 40, 3):
        sa, sb = a[g], b[g]
        assert np.array_equal(sa["image"], sb["image"]) and np.array_equal(sa["mask"], sb["mask"])
    # a pass over the data visits every row once
    rows = [a[g]["row"] for g in range(len(a), 2 * len(a))]
    assert sorted(rows) == list(range(len(a)))
    # flips move image and mask together
    plain = PackedCrops(folder, seed=1)
    flipped = PackedCrops(folder, augment=Augment(hflip=1.0), seed=1)
    s0, s1 = plain[5], flipped[5]
    assert np.array_equal(s1["image"], s0["image"][:, ::-1]) and np.array_equal(s1["mask"], s0["mask"][:, ::-1])
    batch = collate([a[i] for i in range(4)])
    assert batch["image"].shape == (4, MODEL_SIZE, MODEL_SIZE, 3) and batch["image"].dtype == torch.uint8
    sampler = StreamSampler(10, start=lambda: 4)
    assert list(sampler) == [4, 5, 6, 7, 8, 9] and len(sampler) == 6


def test_window_dataset_on_the_fly(tiny_set):
    ds = WindowDataset(tiny_set, WindowPolicy(scale_prob=1.0), Augment(hflip=0.5), seed=0, limit=5)
    s = ds[12]
    assert s["image"].shape == (96, 96, 3) and s["mask"].shape == (96, 96)
    assert s["mask"].any()
    assert np.array_equal(ds[12]["image"], s["image"])


def test_lr_schedule_warmup_then_cosine():
    from picosam2.train.module import lr_lambda

    cfg = load_config("paper", ["max_steps=100", "optim.warmup_steps=10", "optim.schedule=cosine"])
    f = lr_lambda(cfg)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5 * (1 + cfg.optim.min_lr_ratio), abs=0.02)
    assert f(100) == pytest.approx(cfg.optim.min_lr_ratio)
    const = lr_lambda(load_config("paper"))
    assert const(5000) == 1.0 and const(499) == pytest.approx(0.5)


def test_shipped_weights_are_trained_and_recommend_their_point_window():
    from picosam2.models import create_model, from_pretrained, weights_metadata
    from picosam2.predictor import Predictor

    meta = weights_metadata()
    assert meta["trained"] == "true" and int(meta["steps"]) > 0
    model = from_pretrained()
    # ready for inference: a forward pass leaves the BN running statistics alone (train mode would
    # update them, and normalise with the batch's own statistics)
    import torch

    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    stats = bn.running_mean.clone()
    from picosam2.models import split_outputs

    with torch.no_grad():
        x = torch.randn(2, 3, model.config.input_size, model.config.input_size)
        a = split_outputs(model(x))[0]
        b = split_outputs(model(x[:1]))[0]
    assert torch.equal(bn.running_mean, stats)
    torch.testing.assert_close(a[:1], b, atol=1e-5, rtol=1e-4)  # no batch statistics involved
    rec = model.config.extra.get("point_window_size")
    pred = Predictor.from_pretrained()
    assert pred.window_size == (rec or MODEL_SIZE)
    assert Predictor.from_pretrained(window_size=96).window_size == 96  # an explicit size wins
    assert Predictor(create_model()).window_size == MODEL_SIZE  # no recommendation: the paper's 96
