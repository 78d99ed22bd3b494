"""``picosam2 predict`` and ``picosam2 info``: the inference commands."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from .errors import UsageError
from .runtime import BACKENDS


def parse_numbers(text: str, count: int, what: str) -> list[float]:
    """An argparse ``type``: :func:`picosam2.prompts.parse_numbers` with its error as argparse's."""
    from .prompts import PromptError
    from .prompts import parse_numbers as parse

    try:
        return list(parse(text, count, what))
    except PromptError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_prompt_arguments(p, point_help: str, box_help: str) -> None:
    """Repeatable ``--point X,Y`` and ``--box X0,Y0,X1,Y1`` (lists of numbers, checked by
    :func:`parse_numbers` as they are parsed)."""
    for flag, count, metavar, text in (("--point", 2, "X,Y", point_help), ("--box", 4, "X0,Y0,X1,Y1", box_help)):
        numbers = functools.partial(parse_numbers, count=count, what=flag)
        p.add_argument(flag, action="append", default=[], type=numbers, metavar=metavar, help=text)


def add_parser(sub) -> list[str]:
    """Register ``predict`` and ``info`` on the ``picosam2`` sub-parsers; returns their names."""
    _add_predict_parser(sub)
    _add_info_parser(sub)
    return ["predict", "info"]


def _add_predict_parser(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="segment the object at a point or in a box",
        description="Segment objects at points (--point X,Y) and/or boxes (--box X0,Y0,X1,Y1). Each prompt is "
        "one object. --out gets the union of all masks (0/255 PNG of the image's size); with "
        "--per-prompt, one file per prompt named OUT_STEM-<k>.png (k = 0.. in the order points, then boxes).",
    )
    p.add_argument("image", help="photo to segment (any format Pillow reads)")
    add_prompt_arguments(p, "a click, in image pixels (repeatable)", "a box, in image pixels (repeatable)")
    add_model_arguments(p)
    p.add_argument(
        "--window-size",
        type=int,
        default=None,
        help="one point window of this side in image pixels (default: scale-aware clicks when the weights "
        "recommend them, else their recommended point_window_size, else the input size)",
    )
    p.add_argument(
        "--point-scales",
        default=None,
        metavar="auto|auto:N|fixed|N[,N...]",
        help="try each point at these window sides and keep the mask with the best predicted quality "
        "(auto: 96 px up to the image's longer side, up to 8 windows; auto:4: at most 4 of them, about half the "
        "time; fixed: one window; default: what the weights recommend)",
    )
    _add_output_arguments(p)
    p.set_defaults(func=run_predict)


def add_model_arguments(p) -> None:
    """``--weights``, ``--revision``, ``--backend`` and ``--threads``: which model form runs, and how."""
    p.add_argument(
        "--weights",
        default=None,
        help="weights folder, .safetensors, PyTorch checkpoint .pt (the PicoSAM2 authors' too), shipped name "
        "(see `picosam2 info --list`), Hugging Face Hub hf-hub:owner/name, or an exported .onnx/.xml/.tflite "
        "file (default: the shipped weights)",
    )
    p.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) for an hf-hub:owner/name")
    p.add_argument(
        "--backend",
        default=None,
        choices=BACKENDS,
        help="runtime (default: from --weights: torch for weights, onnx for .onnx, openvino for .xml, "
        "tflite for .tflite)",
    )
    p.add_argument("--threads", type=int, default=None, help="runtime threads (default: the runtime's own)")


def _add_output_arguments(p) -> None:
    p.add_argument("--out", required=True, help="mask PNG to write")
    p.add_argument("--overlay", default=None, help="also write the photo with the mask drawn on it")
    p.add_argument("--per-prompt", action="store_true", help="one mask file per prompt instead of the union")
    p.add_argument(
        "--max-pixels",
        type=float,
        default=None,
        help="largest image accepted, in pixels (default 50e6; decided from the file header before decoding)",
    )
    p.add_argument(
        "--max-windows",
        type=int,
        default=None,
        help="most windows one call may run (default 2000; a click costs one window per point scale, a box one; "
        "time grows with the windows, memory does not)",
    )
    p.add_argument("--max-prompts", type=int, default=None, help="also cap the prompts (default: no cap)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (it only shows on a terminal)")


def _add_info_parser(sub) -> None:
    q = sub.add_parser("info", help="parameters, MACs and input size of a model")
    q.add_argument("--weights", default=None, help="weights folder, .safetensors, shipped name or hf-hub:owner/name")
    q.add_argument("--revision", default=None, help="Hub revision for an hf-hub:owner/name")
    q.add_argument("--list", action="store_true", help="print the names of the shipped weights")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=run_info)


def run_predict(args) -> int:
    """``picosam2 predict``: masks (and an overlay) for the prompts; running out of memory is a one-line user error."""
    try:
        return _predict(args)
    except MemoryError as exc:
        raise UsageError("out of memory: use a smaller image (--max-pixels) or fewer prompts") from exc


def _predict(args) -> int:
    import numpy as np

    from .image_io import MAX_PIXELS, check_output_path, load_image, overlay, write_pngs_atomic
    from .predictor import MAX_WINDOWS, Predictor
    from .progress import progress_wanted

    if not args.point and not args.box:
        raise UsageError("give at least one --point X,Y or --box X0,Y0,X1,Y1")
    max_windows = MAX_WINDOWS if args.max_windows is None else args.max_windows
    if max_windows < 1:
        raise UsageError(f"--max-windows must be at least 1, got {max_windows}")
    if args.max_prompts is not None and args.max_prompts < 1:
        raise UsageError(f"--max-prompts must be at least 1, got {args.max_prompts}")
    prompts = len(args.point) + len(args.box)
    if args.max_prompts is not None and prompts > args.max_prompts:
        raise UsageError(f"{prompts} prompts: at most {args.max_prompts} (raise with --max-prompts)")
    if prompts > max_windows:  # every prompt costs at least one window: refuse before reading anything
        raise UsageError(
            f"{prompts:,} prompts cost at least {prompts:,} windows, over the cap of {max_windows:,} per call; "
            "ask for fewer prompts or raise --max-windows"
        )
    if args.max_pixels is not None and not 1 <= args.max_pixels < 1e15:
        raise UsageError(f"--max-pixels must be a positive number of pixels, got {args.max_pixels:g}")
    max_pixels = MAX_PIXELS if args.max_pixels is None else int(args.max_pixels)
    out = Path(args.out)
    targets = [out.with_name(f"{out.stem}-{k}.png") for k in range(len(args.point) + len(args.box))]
    targets = targets if args.per_prompt else [out]
    for target in targets + ([Path(args.overlay)] if args.overlay else []):
        if target.suffix.lower() != ".png":
            raise UsageError(f"output files are PNG: {target} does not end in .png")
        check_output_path(target)
    image = load_image(args.image, max_pixels=max_pixels)
    predictor = Predictor.from_pretrained(
        args.weights,
        backend=args.backend,
        threads=args.threads,
        revision=args.revision,
        window_size=args.window_size,
        max_prompts=args.max_prompts,
        max_windows=max_windows,
        progress=progress_wanted(args.quiet),
        point_scales="default" if args.point_scales is None else args.point_scales,
    )
    result = predictor.predict(image, points=args.point or None, boxes=args.box or None)
    if args.per_prompt:
        outputs = [(t, lambda k=k: result.mask(k).astype(np.uint8) * 255) for k, t in enumerate(targets)]
    else:
        outputs = [(out, lambda: result.union().astype(np.uint8) * 255)]
    if args.overlay:
        outputs.append((Path(args.overlay), lambda: overlay(image, result.parts(), points=args.point, boxes=args.box)))
    written = write_pngs_atomic(outputs)  # all the outputs or none
    h, w = image.shape[:2]
    for k, (part, kind) in enumerate(zip(result.parts(), result.kinds)):
        px = 0 if part is None else int(part[1].sum())
        win = result.windows[k]
        how = f"{win.width} px window, {result.reasons[k]}"
        if result.scores is not None:
            how += f", predicted IoU {float(result.scores[k]):.2f}"
        print(f"prompt {k} ({kind}): {px} px ({100.0 * px / (w * h):.2f} % of {w}x{h}; {how})")
    for path in written:
        print(f"wrote {path}")
    return 0


def run_info(args) -> int:
    """``picosam2 info``: parameters, MACs, input size and provenance of weights (or ``--list``)."""
    from .models import count_macs, count_params, from_pretrained, is_trained, list_pretrained, resolve_weights

    if args.list:
        print("\n".join(list_pretrained()))
        return 0
    model = from_pretrained(args.weights, revision=args.revision)
    info = {
        "params": count_params(model),
        "macs": count_macs(model),
        "input_size": model.config.input_size,
        "weights": str(resolve_weights(args.weights, args.revision)),
        "arch": model.config.arch,
        "trained": is_trained(model.weights_info),
        "sha256": model.weights_info["sha256"],
    }
    if args.json:
        print(json.dumps(info))
    else:
        for k, v in info.items():
            print(f"{k:>10}: {v:,}" if isinstance(v, int) and not isinstance(v, bool) else f"{k:>10}: {v}")
    sys.stdout.flush()
    return 0
