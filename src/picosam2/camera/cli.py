"""``picosam2 camera``: live segmentation on the Raspberry Pi AI Camera, or ``--simulate`` the
same loop on a still image with a CPU model (PyTorch weights, an .onnx, or MCT's quantized .onnx)."""

from __future__ import annotations

import argparse
import os

from ..errors import UsageError


def _pair(text: str, n: int, what: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{what} must be {n} comma-separated numbers, got {text!r}") from None
    if len(vals) != n:
        raise UsageError(f"{what} must be {n} comma-separated numbers, got {text!r}")
    return vals


def add_parser(sub) -> list[str]:
    p = sub.add_parser(
        "camera",
        help="live segmentation on the Raspberry Pi AI Camera (or --simulate on a photo)",
        description=(
            "Runs network.rpk (made by imx500-package from `picosam2 export --format imx500`) on the IMX500 "
            "sensor: the inference region of interest is set around the prompt, the 96x96 output is read from "
            "each frame, thresholded and drawn. Prompt: --point X,Y or --box X0,Y0,X1,Y1 in preview pixels, "
            "or the frame centre. With --simulate IMAGE the same loop runs on a photo with a CPU model."
        ),
    )
    p.add_argument("--network", default="network.rpk", help="network.rpk, or the folder holding it")
    pr = p.add_mutually_exclusive_group()
    pr.add_argument("--point", help="X,Y in preview pixels")
    pr.add_argument("--box", help="X0,Y0,X1,Y1 in preview pixels")
    p.add_argument("--size", default="640,480", help="preview size W,H (default 640,480)")
    p.add_argument(
        "--window-size",
        type=int,
        default=None,
        help="point window side in preview pixels (default: the model's recommended point_window_size, "
        "from its config or the packerOut.zip.json/network.rpk.json exported beside the package)",
    )
    p.add_argument(
        "--point-scales",
        default=None,
        help="point window sides to try, in preview pixels: 'auto' (96 px up to the frame's longer side), "
        "'auto:4' (at most 4 of those: shorter sweeps), 'fixed' (one --window-size window) or sides like 96,192,384. The sensor runs one window per frame: "
        "the sides are swept over consecutive frames, the best-scored one is kept, and a new prompt or a "
        "falling score sweeps again; each frame says which side ran and why. Default: the model's "
        "recommendation (its config's point_scales), one window when --window-size is given",
    )
    p.add_argument("--threshold", type=float, default=0.0, help="logit threshold (0 = probability 0.5)")
    p.add_argument("--transpose-output", action="store_true", help="swap the output tensor's spatial axes")
    p.add_argument("--frames", type=int, default=0, help="stop after N frames (0: until Ctrl-C)")
    p.add_argument("--snapshot", default=None, help="write the last overlay to this PNG")
    p.add_argument("--interactive", action="store_true", help="OpenCV window; click to move the point")
    p.add_argument("--no-preview", action="store_true", help="no preview window")
    sim = p.add_argument_group("simulation without a camera")
    sim.add_argument("--simulate", metavar="IMAGE", help="run the camera loop on this photo (plays the sensor)")
    sim.add_argument("--weights", default=None, help="weights folder, .safetensors, or .onnx (MCT or plain)")
    sim.add_argument("--out", default=None, help="--simulate: overlay PNG to write (a folder for a folder of photos)")
    p.add_argument("--root", help="device root: run its active slot (docs/operations.md); IMAGE may be a folder")
    p.add_argument("--stats-log", metavar="LOG", help="append per-frame drift statistics (for picosam2 monitor)")
    p.set_defaults(func=run_camera_cmd)
    return ["camera"]


def _window_runner(weights):
    """(uint8 window -> output tensor, config), with a CPU model standing in for the sensor."""
    from ..runtime import load_backend, normalize

    backend = load_backend(weights)  # torch weights, plain/INT8 ONNX or the MCT sensor export

    def run(win):  # like IMX500.get_outputs: [mask] or, with a quality head, [mask, iou]
        out = backend(normalize(win[None], backend.config))
        return [out.logits] if out.scores is None else [out.logits, out.scores]

    return run, backend.config


def _network_config(network):
    """The config exported beside the package (``network.rpk.json`` or ``packerOut.zip.json``), or None."""
    from pathlib import Path

    from ..runtime import read_sidecar, sidecar_path

    path = Path(network)
    folder = path if path.is_dir() else path.parent
    for candidate in (path / "network.rpk" if path.is_dir() else path, folder / "packerOut.zip"):
        if sidecar_path(candidate).is_file():
            return read_sidecar(candidate)["config"]
    return None


def _window_size(args, config) -> int:
    from ..predictor import recommended_window_size

    return args.window_size if args.window_size is not None else recommended_window_size(config)


def point_scales_arg(args, config):
    """``--point-scales`` (validated), else the model's recommended scales unless ``--window-size`` is given."""
    from ..predictor import recommended_point_scales
    from ..prompts import parse_point_scales

    if args.point_scales is not None:
        return parse_point_scales(args.point_scales)
    return None if args.window_size is not None else parse_point_scales(recommended_point_scales(config))


def _simulate(args, image_path, prompt, kind) -> int:
    """``--simulate IMAGE``: the camera loop on one photo; with several point scales, enough frames
    for a sweep and a kept frame (or ``--frames``), one line per frame saying which window ran."""
    from ..image_io import load_image, save_png_atomic
    from ..prompts import point_scales_for
    from ..selection import ScoreCalibration
    from .core import ScalePolicy, draw_overlay, scale_text, simulate_sweep

    image = load_image(image_path)
    frame_size = (image.shape[1], image.shape[0])
    runner, config = _window_runner(args.weights)
    side = _window_size(args, config)
    sides = point_scales_for(point_scales_arg(args, config), frame_size, side)
    frames = args.frames or (len(sides) + 1 if kind != "box" and len(sides) > 1 else 1)
    results = simulate_sweep(
        runner, image, prompt, kind, ScalePolicy(sides, calibration=ScoreCalibration.from_config(config), frame_size=frame_size),
        frames, frame_size=frame_size, window_size=side,
        threshold=args.threshold, transpose=args.transpose_output,
    )  # fmt: skip
    for k, r in enumerate(results):
        roi = r["roi"]
        print(
            f"frame {k}: roi (sensor x, y, w, h): {roi.x0}, {roi.y0}, {roi.width}, {roi.height}; "
            f"mask pixels: {int(r['mask'].sum())}; {scale_text(r['side'], r['reason'], r['score'])}"
        )
    if args.out:
        r = results[-1]
        text = scale_text(r["side"], r["reason"], r["score"])
        save_png_atomic(draw_overlay(image, r["mask"], r["roi"], r["geometry"], prompt, kind, text=text), args.out)
        print(f"wrote {args.out}")
    return 0


def run_camera_cmd(args: argparse.Namespace) -> int:
    if args.root or args.stats_log or (args.simulate and os.path.isdir(args.simulate)):
        from .app import run_ops  # device slots, statistics log, folders of photos

        return run_ops(args)
    if args.point:
        prompt, kind = _pair(args.point, 2, "--point"), "point"
    elif args.box:
        prompt, kind = _pair(args.box, 4, "--box"), "box"
    else:
        prompt, kind = None, "center"
    size = tuple(int(v) for v in _pair(args.size, 2, "--size"))
    if args.window_size is not None and args.window_size < 1:
        raise UsageError("--window-size must be positive")
    if args.simulate:
        return _simulate(args, args.simulate, prompt, kind)
    from ..selection import ScoreCalibration
    from .app import run_camera

    config = _network_config(args.network)
    return run_camera(
        args.network,
        prompt=prompt,
        kind=kind,
        frame_size=size,
        window_size=_window_size(args, config),
        threshold=args.threshold,
        transpose=args.transpose_output,
        frames=args.frames,
        snapshot=args.snapshot,
        preview=not args.no_preview,
        interactive=args.interactive,
        point_scales=point_scales_arg(args, config),
        calibration=ScoreCalibration.from_config(config),
    )
