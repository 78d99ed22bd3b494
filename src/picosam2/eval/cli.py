"""``picosam2 eval``: run a protocol on COCO-format data (or score a results file) and write a report."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import EmptyResultError, UsageError

DESCRIPTION = """\
Evaluate a model (default: the shipped weights), a baseline, or the SAM 2.1 teacher on COCO-format
instance data, or score a COCO results file (--results). Protocols: `paper` = the PicoSAM2 paper's
(first N=1000 non-crowd instances, the reference point and 96 px crop, IoU inside the window, mIoU
and the paper's "mAP"); `full` = every non-crowd instance, interior point or box, IoU of the pasted-back
full-image mask. Writes REPORT.json (--out), optionally a COCO results file with full-image RLE masks
(--results-out) and PNG plots (--plots). See docs/evaluation.md."""


def add_parser(sub) -> list[str]:
    """Register ``picosam2 eval``; returns its name."""
    p = sub.add_parser("eval", help="evaluate on COCO-format data (paper or full protocol)", description=DESCRIPTION)
    p.add_argument("--annotations", required=True, metavar="JSON", help="COCO-format instances json (COCO, LVIS v1)")
    p.add_argument(
        "--images",
        action="append",
        default=[],
        metavar="DIR",
        help="image folder (repeatable; its train2017/val2017 sub-folders are searched too)",
    )
    p.add_argument("--protocol", default="paper", choices=["paper", "full"])
    p.add_argument("--prompt", default="point", choices=["point", "box"])
    p.add_argument(
        "--point-scales",
        default=None,
        metavar="auto|auto:N|N[,N...]",
        help="full protocol, point prompt: try each click at these window sides (auto: 96 px to the image's "
        "longer side; auto:N: at most N of those) and keep the best-scored mask; the report adds the oracle, fixed-window figures and "
        "the score's Spearman correlation (default: one 96 px window)",
    )
    p.add_argument(
        "--refine",
        action="store_true",
        help="with --point-scales: look at the chosen mask again in its box window (coarse to fine) and keep "
        "whichever has the higher predicted IoU",
    )
    p.add_argument(
        "--no-score-calibration",
        action="store_true",
        help="with --point-scales: choose by the network's own score, not through the weights' score calibration",
    )
    p.add_argument("--limit", type=int, default=None, help="instances to score (paper default 1000, full default all)")
    p.add_argument(
        "--weights",
        default=None,
        help="weights folder, .safetensors, .pt checkpoint, shipped name or hf-hub:owner/name (default: shipped), "
        "or an exported .onnx with --backend onnx",
    )
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    p.add_argument(
        "--baseline", default=None, choices=["whole-window", "disk"], help="evaluate a baseline instead of a model"
    )
    p.add_argument(
        "--teacher",
        default=None,
        metavar="FOLDER_OR_HUB_NAME",
        help="evaluate SAM 2.1 (a transformers Sam2Model folder, or hf-hub:owner/name such as "
        "hf-hub:facebook/sam2.1-hiera-tiny) on the same windows",
    )
    p.add_argument(
        "--results", default=None, metavar="PREDS.json", help="score this COCO results file instead of a model"
    )
    p.add_argument("--out", required=True, metavar="REPORT.json", help="report to write")
    p.add_argument(
        "--results-out", default=None, metavar="PREDS.json", help="also write the predictions as a COCO results file"
    )
    p.add_argument(
        "--plots", default=None, metavar="DIR", help="write PNG plots (mIoU by size, worst/best gallery) here"
    )
    p.add_argument("--skip-missing", action="store_true", help="skip instances whose image file is missing (counted)")
    p.add_argument("--batch-size", type=int, default=64, help="windows per forward pass")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_eval)
    return ["eval"]


def _check_out(path: str | None, what: str) -> None:
    if path is None:
        return
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise FileNotFoundError(f"{what}: folder {parent} does not exist")


def _make_model(args):
    """(window model, meta dict) for the model the arguments name."""
    if args.teacher:
        from ..teacher import Sam2Teacher, TeacherWindowModel

        teacher = Sam2Teacher.from_pretrained(args.teacher)
        return TeacherWindowModel(teacher, batch_size=min(args.batch_size, 8)), {
            "model": f"sam2.1 teacher ({args.teacher})",
            "weights": str(args.teacher),
            "backend": "torch (transformers Sam2Model)",
        }
    if args.baseline:
        from .baselines import baseline_predictor

        return baseline_predictor(args.baseline), {
            "model": f"baseline: {args.baseline}",
            "weights": None,
            "backend": None,
        }
    from ..models import DEFAULT_WEIGHTS_DIR, weights_metadata
    from ..predictor import Predictor

    predictor = Predictor.from_pretrained(args.weights, backend=args.backend, batch_size=args.batch_size)
    if getattr(args, "no_score_calibration", False):
        predictor.score_calibration = None
    meta = {"model": "picosam2", "weights": str(args.weights or DEFAULT_WEIGHTS_DIR), "backend": args.backend}
    meta["score_calibration"] = predictor.score_calibration is not None
    if args.backend == "torch":
        meta["weights_metadata"] = weights_metadata(args.weights)
    return predictor, meta


def run_eval(args) -> int:
    """``picosam2 eval``: evaluate a model, a baseline or a results file and write the report."""
    from ..data import InstanceSet
    from .protocols import evaluate
    from .results import build_report, format_table, load_results, results_entries, score_results, write_json_atomic

    chosen = [
        name
        for name, v in (("--teacher", args.teacher), ("--baseline", args.baseline), ("--results", args.results))
        if v
    ]
    if len(chosen) > 1:
        raise UsageError(f"{' and '.join(chosen)} exclude each other: evaluate one thing at a time")
    if chosen and args.weights:
        raise UsageError(f"--weights does not go with {chosen[0]}")
    if args.results and args.results_out:
        raise UsageError("--results-out does not go with --results (the results file is the input)")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if not args.results and not args.images:
        raise UsageError("give --images DIR (where the annotation file's images are), or --results PREDS.json")
    _check_out(args.out, "--out")
    _check_out(args.results_out, "--results-out")
    for target in (args.out, args.results_out):
        if target and Path(target).exists() and Path(target).is_dir():
            raise UsageError(f"{target} is a folder, not a file")

    dataset = InstanceSet(args.annotations, args.images)
    progress = not args.quiet
    entries = None
    if args.results:
        entries = load_results(args.results)
        result = score_results(dataset, entries, args.protocol, args.prompt, args.limit, progress=progress)
        meta = {"model": f"results file {args.results}", "weights": None, "backend": None, "results": str(args.results)}
    else:
        model, meta = _make_model(args)
        result = evaluate(
            dataset,
            model,
            args.protocol,
            args.prompt,
            limit=args.limit,
            skip_missing=args.skip_missing,
            progress=progress,
            keep_rle=bool(args.results_out),
            keep_logits=bool(args.plots),
            point_scales=args.point_scales,
            refine=args.refine,
        )
    if not result.samples:
        raise EmptyResultError(f"no instance could be scored ({dict(result.skipped)})")
    meta.update({"annotations": str(args.annotations), "images": [str(d) for d in args.images], "limit": args.limit})
    report = build_report(result, meta)
    if args.plots:
        from .plots import write_plots

        report["plots"] = [str(p) for p in write_plots(report, result, dataset, args.plots, entries=entries)]
    if args.results_out:
        write_json_atomic(results_entries(result), args.results_out)
    write_json_atomic(report, args.out)
    print(format_table(report))
    print(f"report: {args.out}" + (f", results: {args.results_out}" if args.results_out else ""), file=sys.stderr)
    return 0
