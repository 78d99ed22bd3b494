"""Training on whole clicks: every candidate window of a click in one batch, on a GPU.

A scale-aware click tries one point at several window sides (96 px up to the image's longer
side, :func:`picosam2.prompts.point_scales_for` ``"auto"``) and keeps the mask whose quality score
is highest. What the score must get right is the *order* of a click's own candidates. This module
trains the whole network (backbone and quality head) on exactly that:

* :func:`build_click_pack` (CPU, once): per instance, several clicks (the most interior point, then
  random mask pixels), each cut at every auto window side as the predictor cuts them; per window
  the 96 x 96 crop (JPEG), its ground-truth mask (bit-packed) and the object pixels outside the
  window (window-pixel units). One ``clicks.npz`` small enough to travel with the working tree.
* :func:`train_clicks` (GPU, or CPU for a dry run): batches of whole clicks; the loss is the
  segmentation loss of every window (BCE + Dice), the regression of the predicted IoU on the real
  full-image IoU of the detached mask, and a listwise loss over each click's candidates
  (:func:`picosam2.train.quality_head.listwise_loss`). The learning rate follows a cosine over
  whichever ends first, the step count or the time budget, so one run fits a fixed wall clock.
  The EMA weights are evaluated on a held-out pack (chosen-window mIoU, oracle, within-click
  Spearman) and written as a weights folder, with the figures in ``metrics.json``.

``scripts/train_on_device.sh`` runs both. The training side needs torch, numpy, Pillow,
safetensors and scipy only (no COCO tools), so it runs on a bare GPU image.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

PACK_FILE = "clicks.npz"
SIZE = 96


# -- the pack (CPU) ------------------------------------------------------------------------------


def build_click_pack(
    annotations,
    images,
    out,
    clicks_per_instance: int = 3,
    seed: int = 0,
    max_mb: float = 40.0,
    jpeg_quality: int = 90,
    limit: int | None = None,
    scales: str = "auto",
    progress: bool = True,
) -> dict:
    """Write ``out/clicks.npz``: the windows of ``clicks_per_instance`` clicks per instance, in a
    random order of images (``seed``), until ``max_mb`` MiB are reached. Returns its summary."""
    from PIL import Image
    from tqdm import tqdm

    from ..data import InstanceSet
    from ..eval.protocols import EvalResult, _image_groups, instance_list
    from ..io_utils import write_atomic
    from ..prompts import crop_images, crop_mask
    from .data import crop_units, outside_pixels
    from .quality_head import instance_clicks

    dataset = InstanceSet(annotations, list(images))
    rng = np.random.default_rng(seed)
    instances = [i for i in instance_list(dataset, "full", limit) if i.image_path]
    by_image: dict = {}
    for inst in instances:
        by_image.setdefault(inst.image_id, []).append(inst)
    order = rng.permutation(sorted(by_image))
    instances = [inst for image_id in order for inst in by_image[image_id]]
    jpegs, masks, outside, sides, click_ids = [], [], [], [], []
    budget, used, n_clicks, n_inst = max_mb * 2**20, 0, 0, 0
    bar = tqdm(total=len(instances), desc="click pack", unit="inst", file=sys.stderr, disable=not progress)
    result = EvalResult(protocol="full", prompt="point")
    try:
        for image, group in _image_groups(dataset, instances, result, bar):
            for _inst, gt, points in instance_clicks(dataset, image, group, clicks_per_instance, rng, scales):
                for _x, _y, wins in points:
                    crops = crop_images(image, wins, SIZE, reducing_gap=2.0)  # as the Predictor cuts them
                    for crop, win in zip(crops, wins):
                        buf = io.BytesIO()
                        Image.fromarray(crop).save(buf, format="JPEG", quality=jpeg_quality)
                        jpegs.append(np.frombuffer(buf.getvalue(), np.uint8))
                        masks.append(np.packbits(crop_mask(gt, win, SIZE)))
                        outside.append(crop_units(outside_pixels(gt, win), win))
                        sides.append(max(win.width, win.height))
                        click_ids.append(n_clicks)
                        used += len(jpegs[-1]) + len(masks[-1]) + 12
                    n_clicks += 1
                n_inst += 1
                if used >= budget:
                    break
            bar.update(len(group))
            if used >= budget:
                break
    finally:
        bar.close()
    if not n_clicks:
        from ..errors import EmptyResultError

        raise EmptyResultError("no click could be packed")
    offsets = np.concatenate([[0], np.cumsum([len(j) for j in jpegs])]).astype(np.int64)
    meta = {
        "annotations": Path(str(annotations)).name,
        "clicks": n_clicks,
        "instances": n_inst,
        "windows": len(jpegs),
        "clicks_per_instance": clicks_per_instance,
        "scales": scales,
        "seed": seed,
        "jpeg_quality": jpeg_quality,
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {
        "jpeg": np.concatenate(jpegs),
        "offsets": offsets,
        "masks": np.stack(masks),
        "outside": np.asarray(outside, np.float32),
        "side": np.asarray(sides, np.int32),
        "click": np.asarray(click_ids, np.int32),
        "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
    }
    write_atomic(out / PACK_FILE, lambda tmp: np.savez(tmp, **arrays), ".npz")
    meta["mb"] = round((out / PACK_FILE).stat().st_size / 2**20, 2)
    return meta


def load_click_pack(folder) -> dict:
    """A pack as arrays: ``images`` (N, 96, 96, 3) uint8, ``masks`` (N, 96, 96) bool, ``outside``,
    ``side``, ``click`` (N,), ``index`` (clicks, K) window rows (-1 pads) and ``meta``."""
    from PIL import Image

    path = Path(folder) / PACK_FILE if Path(folder).is_dir() else Path(folder)
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    off = data["offsets"]
    images = np.stack(
        [
            np.asarray(Image.open(io.BytesIO(data["jpeg"][a:b].tobytes())).convert("RGB"))
            for a, b in zip(off[:-1], off[1:])
        ]
    )
    masks = np.unpackbits(data["masks"], axis=1)[:, : SIZE * SIZE].reshape(-1, SIZE, SIZE).astype(bool)
    click = data["click"]
    starts = np.flatnonzero(np.r_[True, np.diff(click) != 0])
    counts = np.diff(np.r_[starts, len(click)])
    index = np.full((len(starts), int(counts.max())), -1, np.int64)
    for i, (s, c) in enumerate(zip(starts, counts)):
        index[i, :c] = np.arange(s, s + c)
    return {
        "images": images,
        "masks": masks,
        "outside": data["outside"],
        "side": data["side"],
        "click": click,
        "index": index,
        "meta": json.loads(data["meta"].tobytes().decode()),
    }


# -- training (GPU) ------------------------------------------------------------------------------


def _model_with_head(init: str):
    """The network to train: ``init`` weights, given a quality head when they have none (the
    authors' weights): the head starts untrained, the rest is theirs."""
    from ..models import create_model, from_pretrained

    base = from_pretrained(init)
    if base.config.quality_head:
        return base
    model = create_model("picosam2-q", input_size=base.config.input_size)
    missing, unexpected = model.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("quality.") for k in missing)
    model.weights_info = getattr(base, "weights_info", {})
    return model


def _forward(model, x, mean, std):
    from ..models.picosam2 import split_outputs

    logits, iou = split_outputs(model((x.float() / 255.0 - mean) / std))
    return logits[:, 0].float(), iou.reshape(-1).float()


def evaluate_pack(model, pack: dict, device, batch: int = 1024, autocast=None) -> dict:
    """Figures of ``model`` on a pack's clicks (window-unit full-image IoU): the chosen window's
    mIoU, the oracle's (best window per click), the 96 px window's, the Spearman correlation of
    score and IoU within a click, and the score's mean absolute error."""
    import contextlib

    import torch

    from .losses import full_image_iou
    from .score_calibration import click_figures

    mean = torch.tensor(model.config.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(model.config.std, device=device).view(1, 3, 1, 1)
    scores, ious = [], []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(pack["images"]), batch):
            x = torch.from_numpy(pack["images"][i : i + batch]).to(device).permute(0, 3, 1, 2)
            gt = torch.from_numpy(pack["masks"][i : i + batch]).to(device)
            with autocast() if autocast else contextlib.nullcontext():
                logits, iou = _forward(model, x, mean, std)
            out = torch.from_numpy(pack["outside"][i : i + batch]).to(device)
            ious.append(full_image_iou(logits, gt.float(), out).cpu().numpy())
            scores.append(iou.cpu().numpy())
    scores, ious = np.concatenate(scores), np.concatenate(ious)
    groups = [(scores[r[r >= 0]], ious[r[r >= 0]]) for r in pack["index"]]
    fig = click_figures(groups)
    fig["oracle_miou"] = 100.0 * float(np.mean([g[1].max() for g in groups]))
    fig["window96_miou"] = 100.0 * float(np.mean([g[1][0] for g in groups]))
    fig["score_mae"] = float(np.mean(np.abs(scores - ious)))
    return fig


def train_clicks(
    pack,
    out,
    init: str = "default",
    val_pack=None,
    steps: int = 100000,
    time_budget_s: float | None = None,
    clicks_per_batch: int = 128,
    lr: float = 3e-4,
    warmup_steps: int = 100,
    weight_decay: float = 0.01,
    seg_weight: float = 1.0,
    quality_weight: float = 1.0,
    rank_weight: float = 1.0,
    ema_decay: float = 0.999,
    hflip: float = 0.5,
    device: str = "auto",
    precision: str = "bf16",
    seed: int = 0,
    log_every: int = 50,
    save_every_s: float = 120.0,
    progress: bool = True,
) -> dict:
    """Train on whole clicks (see the module docstring); writes ``out/weights`` (EMA weights, a
    weights folder), ``out/metrics.json`` and ``out/log.txt``. Stops after ``steps`` or when
    ``time_budget_s`` seconds of training have passed, whichever comes first. Returns the metrics."""
    import contextlib

    import torch

    from ..models import save_pretrained
    from .losses import full_image_iou, gt_loss
    from .quality_head import listwise_loss

    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log_file = open(out / "log.txt", "a")  # noqa: SIM115 - kept open for the run

    def log(msg: str) -> None:
        line = f"[{time.time() - t0:7.1f}s] {msg}"
        log_file.write(line + "\n")
        log_file.flush()
        if progress:
            print(line, file=sys.stderr, flush=True)

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(seed)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True

    def autocast():
        if precision == "bf16":
            return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    train = load_click_pack(pack)
    val = load_click_pack(val_pack) if val_pack else None
    log(f"device {device}; train pack {train['meta']}; val pack {val['meta'] if val else None}")
    images = torch.from_numpy(train["images"]).to(device).permute(0, 3, 1, 2).contiguous()
    masks = torch.from_numpy(train["masks"]).to(device)
    outside = torch.from_numpy(train["outside"]).to(device)
    index = torch.from_numpy(train["index"]).to(device)

    model = _model_with_head(init).to(device).train()
    if device.startswith("cuda"):
        model = model.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    mean = torch.tensor(model.config.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(model.config.std, device=device).view(1, 3, 1, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    before = evaluate_pack(ema, val, device, autocast=autocast) if val else None
    if before:
        log(f"val before: {json.dumps(before)}")

    def save(step: int, figures: dict | None) -> None:
        extra = {k: v for k, v in (model.config.extra or {}).items() if k != "score_calibration"}
        ema.config.extra = {"point_window_size": 128, "point_scales": "auto", **extra}
        meta = {
            "trained": "true",
            "recipe": f"click training (click_train.py): {step} steps x {clicks_per_batch} clicks from {init}",
            "click_pack": json.dumps(train["meta"]),
        }
        save_pretrained(ema.cpu(), out / "weights", metadata=meta)
        ema.to(device)
        metrics = {"steps": step, "seconds": round(time.time() - t0, 1), "val_before": before, "val_after": figures}
        metrics["history"] = history
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    history: list[dict] = []
    n_clicks = len(index)
    b = min(clicks_per_batch, n_clicks)
    start, last_save, done = time.time(), time.time(), 0
    try:  # SIGINT (the script's hard time limit) ends training; the EMA weights are still evaluated and saved
        for step in range(1, steps + 1):
            elapsed = time.time() - start
            frac = max((step - 1) / steps, elapsed / time_budget_s if time_budget_s else 0.0)
            if frac >= 1.0:
                break
            scale = min(1.0, step / max(1, warmup_steps)) * 0.5 * (1.0 + math.cos(math.pi * frac))
            for group in opt.param_groups:
                group["lr"] = lr * max(scale, 0.02)
            rows = index[torch.randint(0, n_clicks, (b,), generator=gen).to(device)]  # (B, K), -1 pads
            valid = rows >= 0
            flat = rows[valid]
            x, gt, outside_px = images[flat], masks[flat].float(), outside[flat]
            if hflip:
                flip = (torch.rand(b, generator=gen).to(device) < hflip).unsqueeze(1).expand_as(rows)[valid]
                x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
                gt = torch.where(flip.view(-1, 1, 1), gt.flip(-1), gt)
            if device.startswith("cuda"):
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast():
                logits, pred = _forward(model, x, mean, std)
            seg = gt_loss(logits, gt)
            target = full_image_iou(logits.detach(), gt, outside_px)
            reg = ((pred - target) ** 2).mean()
            pad_pred = torch.zeros(rows.shape, device=device, dtype=pred.dtype).masked_scatter(valid, pred)
            pad_target = torch.zeros(rows.shape, device=device).masked_scatter(valid, target)
            rank = listwise_loss(pad_pred, pad_target, valid)
            loss = seg_weight * seg + quality_weight * reg + rank_weight * rank
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done = step
            with torch.no_grad():
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(pm, 1.0 - ema_decay)
                for be, bm in zip(ema.buffers(), model.buffers()):
                    be.copy_(bm)
            if step % log_every == 0 or step == 1:
                row = {k: float(v.detach()) for k, v in (("loss", loss), ("seg", seg), ("reg", reg), ("rank", rank))}
                row["step"] = step
                row.update(lr=opt.param_groups[0]["lr"], seconds=round(time.time() - t0, 1))
                history.append(row)
                log(json.dumps(row))
            if time.time() - last_save > save_every_s:
                save(step, None)
                last_save = time.time()
    except KeyboardInterrupt:
        log(f"interrupted after {done} steps")
    after = evaluate_pack(ema, val, device, autocast=autocast) if val else None
    if after:
        log(f"val after ({done} steps): {json.dumps(after)}")
    save(done, after)
    log_file.close()
    return json.loads((out / "metrics.json").read_text())


# -- command line ----------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m picosam2.train.click_train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="build a click pack (CPU)")
    p.add_argument("--annotations", required=True)
    p.add_argument("--images", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--clicks-per-instance", type=int, default=3)
    p.add_argument("--max-mb", type=float, default=40.0)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jpeg-quality", type=int, default=90)
    t = sub.add_parser("train", help="train on a click pack (GPU; CPU for a dry run)")
    t.add_argument("--pack", required=True)
    t.add_argument("--val-pack", default=None)
    t.add_argument("--out", required=True)
    t.add_argument("--init", default="default", help="weights to start from (with or without a quality head)")
    t.add_argument("--steps", type=int, default=100000)
    t.add_argument("--time-budget", type=float, default=None, metavar="SECONDS", help="stop training after this")
    t.add_argument("--clicks-per-batch", type=int, default=128)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--rank-weight", type=float, default=1.0)
    t.add_argument("--quality-weight", type=float, default=1.0)
    t.add_argument("--ema-decay", type=float, default=0.999)
    t.add_argument("--device", default="auto")
    t.add_argument("--precision", default="bf16", choices=["bf16", "32"])
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.cmd == "pack":
        meta = build_click_pack(
            args.annotations,
            args.images,
            args.out,
            clicks_per_instance=args.clicks_per_instance,
            seed=args.seed,
            max_mb=args.max_mb,
            jpeg_quality=args.jpeg_quality,
            limit=args.limit,
        )
        print(json.dumps(meta))
        return 0
    metrics = train_clicks(
        args.pack,
        args.out,
        init=args.init,
        val_pack=args.val_pack,
        steps=args.steps,
        time_budget_s=args.time_budget,
        clicks_per_batch=args.clicks_per_batch,
        lr=args.lr,
        rank_weight=args.rank_weight,
        quality_weight=args.quality_weight,
        ema_decay=args.ema_decay,
        device=args.device,
        precision=args.precision,
        log_every=args.log_every,
        seed=args.seed,
    )
    print(json.dumps({k: metrics[k] for k in ("steps", "seconds", "val_before", "val_after")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
