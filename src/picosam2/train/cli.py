"""``picosam2 train`` and ``picosam2 teacher-cache`` (Lightning and transformers are imported
only when a command runs)."""

from __future__ import annotations

import argparse

from ..errors import UsageError, WeightsError


def add_parser(sub) -> list[str]:
    """Register ``train``, ``teacher-cache``, ``calibrate-scores`` and ``tune-quality-head``; returns their names."""
    from ..teacher.sam2 import DEFAULT_TEACHER

    p = sub.add_parser(
        "train",
        help="train PicoSAM2 (ground truth or distillation) with PyTorch Lightning",
        description=(
            "Train PicoSAM2. CONFIG is a YAML file or a shipped config name "
            "(paper, gt-only, coco-mini); key=value arguments override it, e.g. optim.lr=1e-3 "
            "data.train_annotations=ann.json 'data.train_images=[imgs]'."
        ),
    )
    p.add_argument("--config", "-c", default="paper", help="YAML config or shipped name (default: paper)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides (dotted keys, YAML values)")
    p.add_argument("--resume", action="store_true", help="continue the run in out_dir from its last checkpoint")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--pack-only", action="store_true", help="build the packed-crops set (data.packed) and exit")
    p.set_defaults(func=run_train)

    t = sub.add_parser(
        "teacher-cache",
        help="compute SAM 2.1 teacher window logits for a packed-crops set (resumable)",
        description=(
            "Run the SAM 2.1 teacher (transformers Sam2Model) once over every window of a packed-crops "
            "set and store fp16 window logits and the predicted IoU in shards. Re-running continues "
            "after the last complete shard."
        ),
    )
    t.add_argument("--packed", required=True, help="packed-crops folder (picosam2 train --pack-only)")
    t.add_argument("--out", required=True, help="output folder of the cache")
    t.add_argument("--teacher", default=DEFAULT_TEACHER,
                   help=f"SAM 2.1: hf-hub:owner/name or a local Sam2Model folder (default {DEFAULT_TEACHER})")  # fmt: skip
    t.add_argument("--mode", choices=("crop", "full"), default="crop", help="crop: the paper's; full: whole image")
    t.add_argument("--annotations", help="instances json (needed by --mode full to find the images)")
    t.add_argument("--images", nargs="*", default=[], help="image folders (for --mode full)")
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--shard-size", type=int, default=1024)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    t.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    t.add_argument("--devices", type=int, default=1, help="spread shards over this many GPUs (one process each)")
    t.add_argument("--limit", type=int, default=None, help="only the first N windows (testing)")
    t.set_defaults(func=run_teacher_cache)

    c = sub.add_parser(
        "calibrate-scores",
        help="fit the score calibration that chooses among a click's window sizes",
        description=(
            "Run every click of a held-out annotation file at the weights' scale-aware windows, fit a "
            "ridge regression from each candidate's features (network score, border contact, coverage, "
            "uncertainty, window size against the image...) to its real full-image IoU, report "
            "cross-validated figures against the raw score (the border rule for weights without a quality head) and, with --write, store it in the weights' "
            "config.json (extra.score_calibration), which every exported form then carries."
        ),
    )
    _click_args(c, "COCO instances json held out of training")
    c.add_argument("--alpha", type=float, nargs="+", default=[100.0], help="ridge penalties to try (best CV kept)")
    c.add_argument("--folds", type=int, default=5, help="cross-validation folds of clicks (default 5)")
    c.add_argument("--write", action="store_true", help="store the calibration in the weights' config.json")
    c.add_argument("--out", help="also write the report (figures and calibration) to this JSON file")
    c.set_defaults(func=run_calibrate_scores)

    q = sub.add_parser(
        "tune-quality-head",
        help="stage 5: refit the quality head on the clicks it ranks (backbone frozen)",
        description=(
            "Run every click of a training annotation file at the weights' scale-aware windows, keep "
            "each candidate's quality-head input and real full-image IoU, refit the quality head alone "
            "(regression plus a listwise ranking loss per click) and write new weights to --out. The "
            "masks do not change. The score calibration of the source config is dropped (it was fitted "
            "on the old head): re-fit it with picosam2 calibrate-scores --weights OUT --write."
        ),
    )
    _click_args(q, "COCO instances json to tune on (a training split)")
    q.add_argument("--out", required=True, help="folder for the tuned weights (must not be the source)")
    q.add_argument("--select", help="held-out instances json: report the head's figures before and after")
    q.add_argument("--clicks", type=int, default=2, help="clicks per instance: the most interior, then random")
    q.add_argument("--steps", type=int, default=2000)
    q.add_argument("--lr", type=float, default=3e-3)
    q.add_argument("--rank-weight", type=float, default=0.5, help="weight of the listwise loss (0: regression only)")
    q.add_argument("--cache", help="keep the collected clicks in this .npz and reuse it when present")
    q.set_defaults(func=run_tune_quality_head)
    return ["train", "teacher-cache", "calibrate-scores", "tune-quality-head", *add_finetune_parser(sub)]


def _click_args(parser, annotations_help: str) -> None:
    """The arguments of the commands that run clicks of an annotation file at the weights'
    scale-aware windows (calibrate-scores, tune-quality-head)."""
    parser.add_argument("--annotations", required=True, help=annotations_help)
    parser.add_argument("--images", nargs="+", required=True, help="image folder(s)")
    parser.add_argument("--weights", "-w", default=None, help="weights folder (default: shipped)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N instances")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_train(args: argparse.Namespace) -> int:
    """``picosam2 train``: load and validate the config, then train (or only pack the data)."""
    from .config import dump_config, load_config

    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0
    if args.pack_only:
        if not cfg.data.packed:
            raise UsageError("--pack-only needs data.packed=FOLDER")
        from .data import pack_from_config

        folder = pack_from_config(cfg.data, cfg.seed, cfg.data.packed)
        print(f"packed set ready: {folder}")
        return 0
    from .fit import train

    weights = train(cfg, resume=args.resume)
    print(f"weights: {weights}")
    return 0


def run_teacher_cache(args: argparse.Namespace) -> int:
    """``picosam2 teacher-cache``: compute the SAM 2.1 teacher's logits for a packed set."""
    from .teacher_cache import build_teacher_cache

    out = build_teacher_cache(
        packed=args.packed,
        out=args.out,
        teacher=args.teacher,
        mode=args.mode,
        annotations=args.annotations,
        image_dirs=args.images,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        device=args.device,
        dtype=args.dtype,
        devices=args.devices,
        limit=args.limit,
    )
    print(f"teacher cache ready: {out}")
    return 0


def run_calibrate_scores(args: argparse.Namespace) -> int:
    """``picosam2 calibrate-scores``: fit the score calibration on held-out clicks (and store it with ``--write``)."""
    import json
    from pathlib import Path

    import numpy as np

    from ..data import InstanceSet
    from ..io_utils import write_json_atomic
    from ..models.registry import resolve_weights
    from ..predictor import Predictor
    from .score_calibration import border_rule_scores, click_figures, collect, cross_validate, fit_ridge

    if args.folds < 2:
        raise UsageError("--folds must be at least 2")
    folder = resolve_weights(args.weights)
    if args.write and not (folder.is_dir() and (folder / "config.json").is_file()):
        raise UsageError(f"--write needs a weights folder with a config.json, got {folder}")
    predictor = Predictor.from_pretrained(args.weights, point_scales="auto")
    feats, ious = collect(InstanceSet(args.annotations, args.images), predictor, args.limit, not args.quiet)
    headless = not predictor.config.quality_head
    base = border_rule_scores if headless else (lambda f: f[:, 0])
    raw = click_figures([(base(f), y) for f, y in zip(feats, ious)])
    tried = {a: cross_validate(feats, ious, a, args.folds) for a in args.alpha}
    alpha = max(tried, key=lambda a: tried[a]["miou"])
    cal = fit_ridge(np.concatenate(feats), np.concatenate(ious), alpha, fitted_on=Path(args.annotations).name)
    print(f"{len(feats)} clicks, {sum(len(f) for f in feats)} candidates")
    print(
        f"{'border rule (no head):' if headless else 'network score:        '} mIoU {raw['miou']:.2f}  Spearman {raw['spearman']:.3f} (within a click {raw['spearman_within_click']:.3f})"
    )
    for a, fig in tried.items():
        mark = " <- kept" if a == alpha else ""
        print(
            f"calibrated, alpha {a:g} ({args.folds}-fold CV): mIoU {fig['miou']:.2f}  Spearman {fig['spearman']:.3f} "
            f"(within a click {fig['spearman_within_click']:.3f}){mark}"
        )
    report = {
        "border_rule" if headless else "network_score": raw,
        "cross_validated": {str(a): f for a, f in tried.items()},
        "alpha": alpha,
    }
    report["calibration"] = cal.to_dict()
    if args.out:
        write_json_atomic(report, args.out, indent=2)
    if args.write:
        cfile = folder / "config.json"
        config = json.loads(cfile.read_text())
        config.setdefault("extra", {})["score_calibration"] = {**cal.to_dict(), "alpha": alpha}
        write_json_atomic(config, cfile, indent=2)
        print(f"wrote the calibration into {cfile}")
    return 0


def run_tune_quality_head(args: argparse.Namespace) -> int:
    """``picosam2 tune-quality-head``: refit the quality head on the clicks it ranks and write new weights."""
    import json
    import shutil
    from pathlib import Path

    from ..data import InstanceSet
    from ..io_utils import write_json_atomic
    from ..models.registry import resolve_weights, save_pretrained, weights_metadata
    from ..predictor import Predictor
    from .quality_head import ClickSet, collect_clicks, figures, tune_head

    if args.clicks < 1 or args.steps < 1 or args.lr <= 0 or args.rank_weight < 0:
        raise UsageError("--clicks and --steps must be at least 1, --lr positive, --rank-weight not negative")
    source = resolve_weights(args.weights)
    if not (source.is_dir() and (source / "config.json").is_file()):
        raise UsageError(f"--weights must be a weights folder with a config.json, got {source}")
    out = Path(args.out)
    if out.resolve() == source.resolve():
        raise UsageError("--out must differ from the source weights folder")
    if out.exists() and not (out / "config.json").is_file():
        raise UsageError(f"--out {out} exists and is not a weights folder")
    predictor = Predictor.from_pretrained(str(source), point_scales="auto", batch_size=64)
    model = predictor.backend.model
    if getattr(model, "quality", None) is None:
        raise WeightsError(f"{source} has no quality head to tune")

    def clicks_of(annotations, clicks, cache=None):
        if cache and Path(cache).is_file():
            return ClickSet.load(cache)
        data = collect_clicks(InstanceSet(annotations, args.images), predictor, clicks, 0, args.limit, not args.quiet)
        if cache:
            data.save(cache)
        return data

    fit = clicks_of(args.annotations, args.clicks, args.cache)
    select = clicks_of(args.select, 1) if args.select else None

    def report(label):
        parts = [
            f"{name} mIoU {f['miou']:.2f} Spearman {f['spearman']:.3f} (within a click {f['spearman_within_click']:.3f})"
            for name, f in (
                ("tuning set", figures(model.quality, fit)),
                ("select", figures(model.quality, select) if select else None),
            )
            if f
        ]
        print(f"{label}: " + "; ".join(parts))

    report("head before")
    losses = tune_head(model.quality, fit, steps=args.steps, lr=args.lr, rank_weight=args.rank_weight)
    report("head after ")
    print(f"last losses: mse {losses['mse']:.4f}, listwise {losses['listwise']:.4f}")

    meta = weights_metadata(source)
    meta["quality_head"] = (
        f"stage 5: head refitted on {len(fit.groups())} clicks of {Path(args.annotations).name} "
        f"({args.steps} steps, lr {args.lr:g}, rank weight {args.rank_weight:g})"
    )
    out.mkdir(parents=True, exist_ok=True)
    card = source / "README.md"
    if card.is_file() and not (out / "README.md").exists():
        shutil.copyfile(card, out / "README.md")
    save_pretrained(model, out, metadata=meta)
    config = json.loads((out / "config.json").read_text())
    if config.get("extra", {}).pop("score_calibration", None) is not None:
        write_json_atomic(config, out / "config.json", indent=2)
        print(f"dropped the old score calibration: refit it with picosam2 calibrate-scores --weights {out} --write")
    print(f"tuned weights: {out}")
    return 0


# -- command line -------------------------------------------------------------------------------
def add_finetune_parser(sub) -> list[str]:
    """Register ``finetune`` (its training code is imported only when it runs)."""
    p = sub.add_parser(
        "finetune",
        help="adapt weights to a site's labelled frames (CPU, minutes; replay keeps what they knew)",
        description=(
            "Fine-tune weights on a site's COCO labels (CVAT, Label Studio or picosam2 exports, checked "
            "first) within a time budget, mixing in a share of the base training data, keeping the quality "
            "head and refitting the score calibration on held-out site images. Running the same command "
            "again resumes an interrupted run (state in OUT.work/). See docs/field-learning.md."
        ),
    )
    p.add_argument("--base", default=None, metavar="WEIGHTS", help="weights to start from (default: shipped)")
    p.add_argument("--annotations", required=True, metavar="JSON", help="the site's COCO labels")
    p.add_argument("--images", required=True, action="append", metavar="DIR", help="site image folder (repeatable)")
    p.add_argument("--out", required=True, metavar="WEIGHTS_DIR", help="new weights folder (must not exist)")
    p.add_argument("--replay", nargs=2, metavar=("ANNOTATIONS", "IMAGES"), help="base training data to mix in")
    p.add_argument("--replay-fraction", type=float, default=None, metavar="F",
                   help="share of each batch from --replay (default 0.5 with --replay, else 0)")  # fmt: skip
    p.add_argument("--minutes", type=float, default=15.0, metavar="M", help="training time budget (default 15)")
    p.add_argument("--steps", type=int, default=0, metavar="N", help="also stop after N steps (0: time only)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument(
        "--encoder-lr-scale",
        type=float,
        default=0.3,
        metavar="S",
        help="the encoder learns at S x --lr, the decoder and heads at --lr (default 0.3)",
    )
    p.add_argument(
        "--freeze-bn",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the base weights' BatchNorm statistics (default; --no-freeze-bn moves them)",
    )
    p.add_argument(
        "--holdout",
        type=float,
        default=0.15,
        help="share of site images kept out of training (to choose runs on; --calibration)",
    )
    p.add_argument(
        "--calibration",
        choices=("keep", "auto", "refit"),
        default="keep",
        help="score calibration: the base weights' (keep, default), refitted on held-out site clicks "
        "when that wins cross-validation there (auto), or always refitted (refit)",
    )
    p.add_argument("--calib-clicks", type=int, default=200, metavar="N", help="held-out clicks for the calibration")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--precision", choices=("bf16", "32"), default="bf16")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_finetune)
    return ["finetune"]


def run_finetune(args) -> int:
    from .finetune import FinetuneSettings, finetune

    if args.batch_size < 1 or args.lr <= 0 or args.threads < 1 or args.calib_clicks < 0:
        raise UsageError("--batch-size, --lr and --threads must be positive")
    if args.encoder_lr_scale <= 0:
        raise UsageError("--encoder-lr-scale must be positive")
    replay = args.replay or (None, None)
    fraction = args.replay_fraction if args.replay_fraction is not None else (0.5 if args.replay else 0.0)
    s = FinetuneSettings(
        base=args.base, annotations=args.annotations, images=args.images, out=args.out,
        replay_annotations=replay[0], replay_images=[replay[1]] if replay[1] else [], replay_fraction=fraction,
        minutes=args.minutes, max_steps=args.steps, batch_size=args.batch_size, lr=args.lr, holdout=args.holdout,
        calib_clicks=args.calib_clicks, threads=args.threads, precision=args.precision, seed=args.seed,
        encoder_lr_scale=args.encoder_lr_scale, freeze_bn=args.freeze_bn, calibration=args.calibration,
    )  # fmt: skip
    r = finetune(s, progress=not args.quiet)
    cal = r["score_calibration"]
    print(f"wrote {args.out}: {r['steps']} steps x {s.batch_size} in {r['train_minutes']:.1f} min "
          f"({s.replay_fraction:.0%} replay); site split {r['split']['fit']['images']} images to train, "
          f"{r['split']['holdout']['images']} held out"
          + (f"; score calibration {'refitted on' if cal['refitted'] else 'kept: its refit did not win on'} "
             f"{cal['clicks']} held-out clicks" if cal else ""))  # fmt: skip
    return 0
