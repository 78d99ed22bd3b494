#!/usr/bin/env python
"""Training throughput (samples/s) of PicoSAM2 and teacher-cache throughput (windows/s).

    python benchmarks/bench_train.py                      # training: fp32 vs bf16, channels-last
    python benchmarks/bench_train.py --teacher            # + SAM 2.1 teacher windows/s (random
                                                          #   weights of the default Sam2Config)
    python benchmarks/bench_train.py --device cuda        # on a GPU

Training steps are the module's own ``training_step`` + AdamW step on synthetic uint8 batches
(the packed-crops path adds ~0.1 ms/sample of numpy augmentation, measured separately).
Numbers depend on the other load of the machine: run it on an idle one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def bench_training(device: str, batch_sizes, precisions, steps: int, threads: int) -> list[dict]:
    import torch

    from picosam2.train.config import load_config
    from picosam2.train.losses import gt_loss
    from picosam2.train.module import PicoSAM2Module

    if threads:
        torch.set_num_threads(threads)
    rows = []
    for bs in batch_sizes:
        for prec in precisions:
            for cl in (False, True):
                cfg = load_config("gt-only", [f"batch_size={bs}", f"channels_last={str(cl).lower()}"])
                mod = PicoSAM2Module(cfg).to(device)
                opt = torch.optim.AdamW(mod.model.parameters(), lr=1e-4)
                g = torch.Generator().manual_seed(0)
                images = torch.randint(0, 256, (bs, 96, 96, 3), dtype=torch.uint8, generator=g).to(device)
                masks = (torch.rand(bs, 96, 96, generator=g) > 0.5).to(torch.uint8).to(device)
                dtype = torch.bfloat16 if prec == "bf16" else torch.float16
                times = []
                for i in range(steps + 2):
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    t = time.perf_counter()
                    with torch.autocast(device.split(":")[0], dtype=dtype, enabled=prec != "fp32"):
                        logits = mod.model(mod.normalize(images))[:, 0].float()
                    loss = gt_loss(logits, masks.float())
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    if i >= 2:
                        times.append(time.perf_counter() - t)
                med = float(np.median(times))
                row = {"batch": bs, "precision": prec, "channels_last": cl, "step_s": round(med, 4),
                       "samples_per_s": round(bs / med, 1)}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def bench_augment(n: int = 2000) -> dict:
    from picosam2.train.data import Augment

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    mask = rng.random((96, 96)) > 0.5
    aug = Augment(hflip=0.5, color_jitter=0.2)
    t = time.perf_counter()
    for _ in range(n):
        aug(img, [mask], rng)
    dt = (time.perf_counter() - t) / n
    row = {"augment_ms_per_sample": round(dt * 1000, 3)}
    print(json.dumps(row), flush=True)
    return row


def bench_teacher(device: str, n: int, batch: int) -> dict:
    import torch
    from transformers import Sam2Config, Sam2Model

    from picosam2.teacher import Sam2Teacher

    torch.manual_seed(0)
    model = Sam2Model(Sam2Config()).eval().to(device)
    params = sum(p.numel() for p in model.parameters())
    teacher = Sam2Teacher(model, batch_size=batch)
    crops = np.random.default_rng(0).integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
    teacher.predict_crops(crops[:batch])  # warm-up
    t = time.perf_counter()
    teacher.predict_crops(crops)
    dt = time.perf_counter() - t
    row = {"teacher_params_m": round(params / 1e6, 1), "image_size": teacher.image_size,
           "windows": n, "windows_per_s": round(n / dt, 2)}  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="PicoSAM2 training and teacher-cache throughput")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", nargs="+", type=int, default=[32])
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--teacher", action="store_true", help="also time the SAM 2.1 teacher on 96 px crops")
    ap.add_argument("--teacher-windows", type=int, default=16)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    result = {
        "device": args.device,
        "training": bench_training(args.device, args.batch, args.precision, args.steps, args.threads),
        "augment": bench_augment(),
    }
    if args.teacher:
        result["teacher"] = bench_teacher(args.device, args.teacher_windows, 4)
    if args.out:
        from picosam2.eval import write_json_atomic

        write_json_atomic(result, args.out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
