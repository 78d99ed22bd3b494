"""The SAM 2.1 teacher code path on a small randomly initialised Sam2Config (no weights needed)."""

import numpy as np
import pytest

pytest.importorskip("transformers")

from picosam2.prompts import Window, crop_image  # noqa: E402
from picosam2.teacher import Sam2Teacher, TeacherWindowModel  # noqa: E402

S = 128  # teacher input side (1024 for the real checkpoints)


def tiny_config():
    from transformers import Sam2Config

    cfg = Sam2Config(
        vision_config=dict(
            model_type="sam2_vision_model",
            backbone_config=dict(
                model_type="sam2_hiera_det_model",
                hidden_size=16,
                num_attention_heads=1,
                image_size=[S, S],
                blocks_per_stage=[1, 1, 2, 1],
                embed_dim_per_stage=[16, 32, 64, 128],
                num_attention_heads_per_stage=[1, 1, 1, 1],
                window_size_per_stage=[4, 4, 4, 2],
                global_attention_blocks=[3],
                window_positional_embedding_background_size=[4, 4],
            ),
            backbone_channel_list=[128, 64, 32, 16],
            backbone_feature_sizes=[[S // 4, S // 4], [S // 8, S // 8], [S // 16, S // 16]],
            fpn_hidden_size=32,
        ),
        prompt_encoder_config=dict(hidden_size=32, image_size=S, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(
            hidden_size=32, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2, iou_head_hidden_dim=32
        ),
    )
    # larger random weights than the default 0.02, so the masks and IoUs are not all ~0 / 0.5
    cfg.initializer_range = cfg.vision_config.initializer_range = 0.2
    cfg.vision_config.backbone_config.initializer_range = 0.2
    return cfg


@pytest.fixture(scope="module")
def sam2_model():
    import torch
    from transformers import Sam2Model

    torch.manual_seed(0)
    return Sam2Model(tiny_config()).eval()


@pytest.fixture(scope="module")
def teacher(sam2_model):
    return Sam2Teacher(sam2_model, batch_size=3)


@pytest.fixture(scope="module")
def image(samples_dir):
    from picosam2.image_io import load_image

    return load_image(samples_dir / "dog.jpg")


def reference_crop_logits(model, crop, point):
    """The same computation written out directly on Sam2Model, one crop at a time."""
    import torch

    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(x, size=(S, S), mode="bilinear", align_corners=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    pts = torch.tensor([[[[point[0] * S / crop.shape[1], point[1] * S / crop.shape[0]]]]])
    with torch.no_grad():
        out = model(pixel_values=(x - mean) / std, input_points=pts, input_labels=torch.ones(1, 1, 1, dtype=torch.long))
    assert out.pred_masks.shape[2] == 3  # three candidate masks
    k = int(out.iou_scores[0, 0].argmax())
    lg = torch.nn.functional.interpolate(out.pred_masks[0, 0, k][None, None], size=crop.shape[:2], mode="bilinear")
    return lg[0, 0].numpy(), float(out.iou_scores[0, 0, k])


def test_predict_crops_is_best_of_three_at_crop_centre(teacher, sam2_model, image):
    wins = [Window(100, 50, 196, 146), Window(400, 150, 496, 246), Window(-20, -30, 76, 66), Window(300, 300, 396, 396)]
    crops = np.stack([crop_image(image, w) for w in wins])
    out = teacher.predict_crops(crops)  # batch of 4 through batch_size 3: two encoder batches
    assert out.probs.shape == out.logits.shape == (4, 96, 96) and out.iou.shape == (4,) and out.all_iou.shape == (4, 3)
    assert out.probs.dtype == np.float32 and 0 <= out.probs.min() and out.probs.max() <= 1
    assert np.allclose(out.probs, 1 / (1 + np.exp(-out.logits)), atol=1e-6)
    assert np.allclose(out.iou, out.all_iou.max(axis=1))
    for k, crop in enumerate(crops):
        ref, ref_iou = reference_crop_logits(sam2_model, crop, (48, 48))
        assert np.abs(ref).max() > 0.5  # a real signal, so the comparison means something
        assert np.allclose(out.logits[k], ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
        assert out.iou[k] == pytest.approx(ref_iou, abs=1e-5)
    # the click matters: another point gives another answer
    moved = teacher.predict_crops(crops[:1], points=[[10, 80]])
    assert np.abs(moved.logits[0] - out.logits[0]).max() > 0.01 * np.abs(out.logits[0]).max()
    assert teacher.predict_crops(crops[:1], out_size=48).probs.shape == (1, 48, 48)


def test_predict_crops_rejects_bad_input(teacher):
    with pytest.raises(ValueError, match="uint8"):
        teacher.predict_crops(np.zeros((2, 96, 96, 3), np.float32))


def test_predict_full_cuts_whole_image_mask_to_windows(teacher, sam2_model, image):
    import torch

    h, w = image.shape[:2]
    points = np.array([[150, 100], [700, 500]])
    wins = [Window(102, 52, 198, 148), Window(652, 452, 748, 548)]  # the second reaches past the image
    out = teacher.predict_full(image, points, wins)
    assert out.probs.shape == (2, 96, 96) and out.iou.shape == (2,)
    # reference: whole image through the model, the best mask upsampled to the image, cut out
    x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(x, size=(S, S), mode="bilinear", align_corners=False)
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
        1, 3, 1, 1
    )
    pts = torch.tensor(points * [S / w, S / h], dtype=torch.float32).view(1, 2, 1, 2)
    with torch.no_grad():
        res = sam2_model(pixel_values=x, input_points=pts, input_labels=torch.ones(1, 2, 1, dtype=torch.long))
    for k, win in enumerate(wins):
        j = int(res.iou_scores[0, k].argmax())
        assert out.iou[k] == pytest.approx(float(res.iou_scores[0, k, j]), abs=1e-5)
        full = torch.nn.functional.interpolate(res.pred_masks[0, k, j][None, None], size=(h, w), mode="bilinear")[0, 0]
        x0, y0 = win.x0, win.y0
        x1, y1 = min(win.x1, w), min(win.y1, h)
        inside = full[y0:y1, x0:x1].numpy()
        got = out.logits[k][: y1 - y0, : x1 - x0]
        # grid sampling at window pixel centres == the upsampled map at those pixels (up to resampling)
        assert np.corrcoef(got.ravel(), inside.ravel())[0, 1] > 0.99
        assert np.abs(got - inside).max() < 0.05 * (np.abs(inside).max() + 1)
        if k == 1:  # rows 534.. of the second window are below the 534-row image: probability 0
            assert y1 < win.y1 and (out.probs[k][y1 - y0 :] < 1e-6).all()
            assert (out.probs[k][: y1 - y0] > 1e-3).any()
    with pytest.raises(ValueError, match="points but"):
        teacher.predict_full(image, points, wins[:1])


def test_teacher_window_model_in_the_eval_harness(teacher, fixtures_dir):
    from picosam2.data import InstanceSet
    from picosam2.eval import evaluate

    data = InstanceSet(fixtures_dir / "coco_tiny" / "instances.json", [fixtures_dir / "coco_tiny" / "images"])
    res = evaluate(data, TeacherWindowModel(teacher), "paper", "point", limit=4, progress=False)
    assert len(res.samples) == 4 and all(0 <= s.iou <= 1 for s in res.samples)


def test_from_pretrained_round_trip_and_errors(sam2_model, tmp_path):
    sam2_model.save_pretrained(tmp_path / "tiny-sam2")
    t = Sam2Teacher.from_pretrained(tmp_path / "tiny-sam2")
    assert t.image_size == S
    crops = np.random.default_rng(0).integers(0, 255, (2, 96, 96, 3), dtype=np.uint8)
    a = t.predict_crops(crops)
    b = Sam2Teacher(sam2_model).predict_crops(crops)
    assert np.allclose(a.logits, b.logits, atol=1e-5)
    with pytest.raises(ValueError, match="SAM 2.1 teacher not found"):
        Sam2Teacher.from_pretrained(tmp_path / "nothing-here")


def test_eval_cli_teacher_row(sam2_model, tmp_path, fixtures_dir):
    import json

    from conftest import run_cli

    sam2_model.save_pretrained(tmp_path / "tiny-sam2")
    root = fixtures_dir / "coco_tiny"
    out = tmp_path / "r.json"
    args = ["eval", "--annotations", str(root / "instances.json"), "--images", str(root / "images"), "--limit", "3"]
    r = run_cli(*args, "--teacher", str(tmp_path / "tiny-sam2"), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert report["count"] == 3 and report["model"].startswith("sam2.1 teacher")
    r = run_cli(*args, "--teacher", str(tmp_path / "missing"), "--out", str(tmp_path / "r2.json"))
    assert r.returncode == 2 and "SAM 2.1 teacher not found" in r.stderr and not (tmp_path / "r2.json").exists()
    # a bare owner/name is a local path, as for the PicoSAM2 weights: one line with the Hub spelling, no fetch
    r = run_cli(*args, "--teacher", "facebook/sam2.1-hiera-nope", "--out", str(tmp_path / "r3.json"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "a Hugging Face Hub repository is written hf-hub:facebook/sam2.1-hiera-nope" in r.stderr
    assert not (tmp_path / "r3.json").exists()


def test_teacher_names_follow_the_weights_rule(sam2_model, tmp_path, monkeypatch):
    """``hf-hub:owner/name`` is the Hub, anything else a local folder (the registry's rule)."""
    from picosam2.errors import WeightsError
    from picosam2.models.registry import is_hub_name
    from picosam2.teacher import DEFAULT_TEACHER, teacher_source
    from picosam2.train.config import TeacherConfig, load_config

    assert teacher_source("hf-hub:facebook/sam2.1-hiera-tiny") == ("facebook/sam2.1-hiera-tiny", True)
    sam2_model.save_pretrained(tmp_path / "tiny-sam2")
    assert teacher_source(tmp_path / "tiny-sam2") == (str(tmp_path / "tiny-sam2"), False)
    # a local folder that happens to look like owner/name stays local
    monkeypatch.chdir(tmp_path)
    (tmp_path / "facebook").mkdir()
    (tmp_path / "tiny-sam2").rename(tmp_path / "facebook" / "sam2-local")
    assert teacher_source("facebook/sam2-local") == ("facebook/sam2-local", False)
    assert Sam2Teacher.from_pretrained("facebook/sam2-local").image_size == S
    with pytest.raises(
        WeightsError, match=r"not found: owner/name \(a Hugging Face Hub repository is written hf-hub:owner/name\)"
    ):
        teacher_source("owner/name")
    with pytest.raises(WeightsError, match="not found: nothing-here$"):
        teacher_source("nothing-here")
    with pytest.raises(WeightsError, match="hf-hub:owner/name"):
        teacher_source("hf-hub:no-slash")
    # a Hub name missing from the local cache, offline: one line, nothing fetched
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="cannot load SAM 2.1 teacher from hf-hub:picosam2-test/no-such-sam2") as e:
        Sam2Teacher.from_pretrained("hf-hub:picosam2-test/no-such-sam2")
    assert "\n" not in str(e.value)
    # the defaults are Hub names, spelled the one way
    assert is_hub_name(DEFAULT_TEACHER) and TeacherConfig().model == DEFAULT_TEACHER
    assert load_config("paper").teacher.model == DEFAULT_TEACHER


def test_teacher_window_model_clicks_at_the_prompt(teacher, image):
    wins = [Window(0, 0, 96, 96), Window(300, 200, 396, 296)]
    model = TeacherWindowModel(teacher)
    crops = np.stack([crop_image(image, w) for w in wins])
    centre = model.predict_windows(image, wins)
    assert np.allclose(centre, teacher.predict_crops(crops).logits)
    # a slid paper window (left/top border): the click is where the point is, not the centre
    got = model.predict_windows(image, wins, points=[(10, 20), (348, 248)])
    assert np.allclose(got, teacher.predict_crops(crops, points=[(10, 20), (48, 48)]).logits)
    assert np.allclose(got[1], centre[1]) and not np.allclose(got[0], centre[0])
