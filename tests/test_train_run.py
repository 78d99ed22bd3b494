"""End-to-end training runs (Lightning) on the tiny COCO fixture: a killed run resumes exactly,
and the distillation path runs with a small random SAM 2.1 through a teacher cache."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lightning")

from safetensors.numpy import load_file  # noqa: E402

from conftest import run_cli  # noqa: E402


def _base_args(fixtures_dir, tmp, out, extra=()):
    d = fixtures_dir / "coco_tiny"
    return [
        "train",
        "--config",
        "gt-only",
        f"data.train_annotations={d / 'instances.json'}",
        f"data.train_images=[{d / 'images'}]",
        f"data.packed={tmp / 'pack'}",
        "data.samples_per_instance=2",
        "data.limit=12",
        "data.val_annotations=null",
        "data.hflip=0.5",
        "data.color_jitter=0.2",
        "data.scale_prob=0.5",
        "batch_size=3",
        "max_steps=7",
        "ckpt_every=2",
        "val_every=1000",
        "log_every=1",
        "threads=1",
        "ema_decay=0.9",
        "optim.warmup_steps=2",
        "optim.schedule=cosine",
        "optim.lr=1e-2",
        "progress_bar=false",
        f"out_dir={out}",
        *extra,
    ]


def _weights(out):
    return load_file(str(out / "weights" / "model.safetensors"))


def test_killed_run_resumes_exactly(fixtures_dir, tmp_path):
    full = tmp_path / "full"
    r = run_cli(*_base_args(fixtures_dir, tmp_path, full))
    assert r.returncode == 0, r.stderr[-2000:]
    killed = tmp_path / "killed"
    # the process SIGKILLs itself right after optimizer step 5 (last checkpoint: step 4)
    r = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "train_killed.py"),
            "5",
            *_base_args(fixtures_dir, tmp_path, killed),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == -9, r.stderr[-2000:]
    ckpts = sorted(p.name for p in (killed / "checkpoints").iterdir())
    assert "last.ckpt" in ckpts and "step-0000004.ckpt" in ckpts and "step-0000006.ckpt" not in ckpts
    assert not [n for n in ckpts if n.endswith(".tmp")]
    # a second start without --resume refuses to overwrite the run
    r = run_cli(*_base_args(fixtures_dir, tmp_path, killed))
    assert r.returncode == 2 and "--resume" in r.stderr
    r = run_cli(*_base_args(fixtures_dir, tmp_path, killed), "--resume")
    assert r.returncode == 0, r.stderr[-2000:]
    a, b = _weights(full), _weights(killed)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6, err_msg=k)
    # the weights moved away from the initialisation and are tagged as trained
    meta = json.loads((full / "weights" / "config.json").read_text())
    assert meta["arch"] == "picosam2"
    from picosam2.models import weights_metadata

    md = weights_metadata(full / "weights")
    assert md["trained"] == "true" and md["steps"] == "7"
    # logs of both starts of the killed run, and the loss curve
    assert len(list((killed / "logs").glob("version_*/metrics.csv"))) == 2
    assert (killed / "loss_curve.png").stat().st_size > 1000


def test_resume_without_a_run_is_a_clear_error(fixtures_dir, tmp_path):
    r = run_cli(*_base_args(fixtures_dir, tmp_path, tmp_path / "none"), "--resume")
    assert r.returncode == 2 and "nothing to resume" in r.stderr


@pytest.fixture(scope="module")
def tiny_sam2_dir(tmp_path_factory):
    pytest.importorskip("transformers")
    import torch
    from transformers import Sam2Model

    from test_teacher import tiny_config

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("sam2") / "tiny-sam2"
    Sam2Model(tiny_config()).save_pretrained(folder)
    return folder


def test_distillation_end_to_end_with_a_small_random_sam2(fixtures_dir, tmp_path, tiny_sam2_dir):
    from picosam2.data import InstanceSet
    from picosam2.train.config import load_config
    from picosam2.train.data import PackedCrops, WindowPolicy, build_packed
    from picosam2.train.fit import train
    from picosam2.train.teacher_cache import TeacherCache, build_teacher_cache

    d = fixtures_dir / "coco_tiny"
    iset = InstanceSet(d / "instances.json", [d / "images"])
    pack = build_packed(iset, tmp_path / "pack", samples_per_instance=2, policy=WindowPolicy(scale_prob=0.5), limit=6)
    n = len(PackedCrops(pack))
    # the command, killed half way: a lost shard is recomputed, the others are kept
    cache = tmp_path / "cache"
    r = run_cli("teacher-cache", "--packed", str(pack), "--out", str(cache), "--teacher", str(tiny_sam2_dir),
                "--shard-size", "5", "--batch-size", "4", "--device", "cpu")  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    shards = sorted(cache.glob("shard-*.npz"))
    assert len(shards) == -(-n // 5)
    tc = TeacherCache(cache)
    assert len(tc) == n and tc.logits.dtype == np.float16
    assert np.isfinite(tc.iou).all() and tc.iou.std() > 0
    kept = shards[0].stat().st_mtime_ns
    shards[-1].unlink()
    meta = json.loads((cache / "cache.json").read_text())
    (cache / "cache.json").write_text(json.dumps({**meta, "complete": False}))
    r = run_cli("teacher-cache", "--packed", str(pack), "--out", str(cache), "--teacher", str(tiny_sam2_dir),
                "--shard-size", "5", "--device", "cpu")  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert shards[0].stat().st_mtime_ns == kept and shards[-1].exists()
    again = TeacherCache(cache)
    np.testing.assert_array_equal(again.logits, tc.logits)

    # the crop-mode cache holds what the teacher says for the packed crop at the prompt point
    from picosam2.teacher import Sam2Teacher
    from picosam2.train.teacher_cache import _crop_points

    teacher = Sam2Teacher.from_pretrained(tiny_sam2_dir)
    packed = PackedCrops(pack, shuffle=False)
    direct = teacher.predict_crops(np.stack([packed.crop(r) for r in range(3)]), points=_crop_points(packed, range(3)))
    np.testing.assert_allclose(tc.logits[:3].astype(np.float32), direct.logits, atol=0.05, rtol=0.01)
    np.testing.assert_allclose(tc.iou[:3], direct.iou, atol=1e-5)

    # full-context mode through the function (the teacher sees the whole image)
    full = build_teacher_cache(pack, tmp_path / "cache-full", teacher=teacher, mode="full",
                               annotations=d / "instances.json", image_dirs=[d / "images"],
                               shard_size=8, progress=False)  # fmt: skip
    tf = TeacherCache(full)
    assert len(tf) == n and not np.array_equal(tf.logits, tc.logits)

    # distillation training from the cache, dynamic alpha = the teacher's predicted IoU
    out = tmp_path / "run"
    cfg = load_config(
        "paper",
        [
            f"data.train_annotations={d / 'instances.json'}",
            f"data.packed={pack}",
            f"data.teacher_cache={cache}",
            "data.val_annotations=null",
            "data.hflip=0.5",
            "batch_size=4",
            "max_steps=3",
            "ckpt_every=0",
            "log_every=1",
            "progress_bar=false",
            f"out_dir={out}",
        ],
    )
    weights = train(cfg, progress=False)
    import csv

    rows = list(csv.DictReader(open(next((out / "logs").glob("version_*/metrics.csv")))))
    alphas = [float(r["train/alpha"]) for r in rows if r.get("train/alpha")]
    assert alphas and all(tc.iou.min() - 1e-4 <= a <= tc.iou.max() + 1e-4 for a in alphas)
    assert any(float(r["train/distill_loss"]) > 0 for r in rows if r.get("train/distill_loss"))
    from picosam2.models import from_pretrained

    model = from_pretrained(weights)
    assert not model.training

    # fixed alpha: the logged alpha is that number
    out2 = tmp_path / "run-fixed"
    cfg2 = load_config("paper", [*[o for o in _overrides(cfg)], "loss.alpha=0.3", f"out_dir={out2}"])
    train(cfg2, progress=False)
    rows = list(csv.DictReader(open(next((out2 / "logs").glob("version_*/metrics.csv")))))
    assert {round(float(r["train/alpha"]), 5) for r in rows if r.get("train/alpha")} == {0.3}


def _overrides(cfg):
    return [
        f"data.train_annotations={cfg.data.train_annotations}",
        f"data.packed={cfg.data.packed}",
        f"data.teacher_cache={cfg.data.teacher_cache}",
        "data.val_annotations=null",
        "batch_size=4",
        "max_steps=2",
        "ckpt_every=0",
        "log_every=1",
        "progress_bar=false",
    ]
