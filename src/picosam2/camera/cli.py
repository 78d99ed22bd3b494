"""``picosam2 camera``: live segmentation on the Raspberry Pi AI Camera, or ``--simulate`` the
same loop on a photo, a folder of photos or a video with a CPU model (PyTorch weights, an .onnx,
or MCT's quantized .onnx).

The command line is parsed here, once, into a :class:`~picosam2.camera.settings.CameraSettings`;
the rest of the camera app takes that value, never the argparse namespace."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from .settings import CameraSettings


def add_parser(sub) -> list[str]:
    """Register ``camera`` on the ``picosam2`` sub-parsers; returns its name."""
    p = sub.add_parser(
        "camera",
        help="live segmentation on the Raspberry Pi AI Camera (or --simulate on a photo or video)",
        description=(
            "Runs network.rpk (made by imx500-package from `picosam2 export --format imx500`) on the IMX500 "
            "sensor: the inference region of interest is set around the prompt (or follows the object with "
            "--track), the 96x96 output is read from each frame, thresholded and drawn. Prompt: --point X,Y or "
            "--box X0,Y0,X1,Y1 in preview pixels, or the frame centre. With --simulate the same loop runs on a "
            "photo, a folder of photos, a video or a glob with a CPU model."
        ),
    )
    p.add_argument("--network", default="network.rpk", help="network.rpk, or the folder holding it")
    pr = p.add_mutually_exclusive_group()
    pr.add_argument("--point", metavar="X,Y", help="X,Y in preview pixels")
    pr.add_argument("--box", metavar="X0,Y0,X1,Y1", help="X0,Y0,X1,Y1 in preview pixels")
    p.add_argument(
        "--track",
        action="store_true",
        help="follow the object: the sensor's window moves every frame to where the object went "
        "(one window per frame; the prompt starts it)",
    )
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
        "'auto:4' (at most 4 of those: shorter sweeps), 'fixed' (one --window-size window) or sides like "
        "96,192,384. The sensor runs one window per frame: the sides are swept over consecutive frames, the "
        "best-scored one is kept, and a new prompt or a falling score sweeps again; each frame says which "
        "side ran and why. Default: the model's recommendation (its config's point_scales), one window when "
        "--window-size is given",
    )
    p.add_argument("--threshold", type=float, default=0.0, help="logit threshold (0 = probability 0.5)")
    p.add_argument("--transpose-output", action="store_true", help="swap the output tensor's spatial axes")
    p.add_argument("--frames", type=int, default=0, help="stop after N frames (0: until Ctrl-C / the input ends)")
    p.add_argument("--snapshot", default=None, help="write the last overlay to this PNG")
    p.add_argument("--interactive", action="store_true", help="OpenCV window; click to move the point")
    p.add_argument("--no-preview", action="store_true", help="no preview window")
    sim = p.add_argument_group("simulation without a camera")
    sim.add_argument(
        "--simulate",
        metavar="INPUT",
        help="run the camera loop on a photo (plays every frame), a folder of photos, a video file or a "
        "glob of frames (each plays one frame)",
    )
    sim.add_argument("--weights", default=None,
                     help="weights folder, .safetensors, .pt checkpoint, shipped name, hf-hub:owner/name, or .onnx (MCT or plain)")  # fmt: skip
    sim.add_argument("--out", default=None, help="--simulate: overlay PNG to write (a folder for several frames)")
    p.add_argument("--root", help="device root: run its active slot (docs/operations.md); INPUT may be a folder")
    p.add_argument("--stats-log", metavar="LOG", help="append per-frame drift statistics (for picosam2 monitor)")
    p.add_argument(
        "--collect",
        metavar="DIR",
        help="keep frames with their prompt, ROI and mask in DIR for labelling, only while `picosam2 monitor "
        "... --collect DIR` has armed it (drift flagged); off by default (docs/field-learning.md)",
    )
    p.add_argument(
        "--collect-max",
        type=int,
        metavar="N",
        help="with --collect: keep at most N frames, deleting the oldest first (default: the monitor's --collect-max)",
    )
    p.add_argument(
        "--collect-every",
        type=int,
        default=1,
        metavar="K",
        help="with --collect: keep one frame in K (default 1; on a live camera e.g. 30: about one a second)",
    )
    p.set_defaults(func=run)
    return ["camera"]


def settings_from_args(args: argparse.Namespace) -> CameraSettings:
    """The one place the camera's command line is read: validated :class:`CameraSettings`
    (a malformed value raises a one-line :class:`~picosam2.errors.PicoSAM2Error`)."""
    from ..prompts import parse_numbers

    if args.point:
        kind, prompt = "point", parse_numbers(args.point, 2, "--point")
    elif args.box:
        kind, prompt = "box", parse_numbers(args.box, 4, "--box")
    else:
        kind, prompt = "center", None
    w, h = parse_numbers(args.size, 2, "--size")
    if w != int(w) or h != int(h):
        raise UsageError(f"--size must be two whole numbers W,H, got {args.size!r}")
    return CameraSettings(
        kind=kind,
        prompt=prompt,
        frame_size=(int(w), int(h)),
        window_size=args.window_size,
        point_scales=args.point_scales,
        track=args.track,
        threshold=args.threshold,
        transpose=args.transpose_output,
        frames=args.frames,
        network=args.network,
        root=args.root,
        stats_log=args.stats_log,
        snapshot=args.snapshot,
        preview=not args.no_preview,
        interactive=args.interactive,
        simulate=args.simulate,
        weights=args.weights,
        out=args.out,
        collect=args.collect,
        collect_max=args.collect_max,
        collect_every=args.collect_every,
    )


def run(args: argparse.Namespace) -> int:
    """``picosam2 camera``: the simulation with ``--simulate``, else the live app."""
    settings = settings_from_args(args)
    if settings.simulate:
        from .simulate import run_simulation

        return run_simulation(settings)
    from .app import run_camera

    return run_camera(settings)


def _window_runner(weights):
    """``(run, config)``: a CPU model standing in for the sensor (see :func:`.runners.cpu_runner`)."""
    from .runners import cpu_runner

    return cpu_runner(weights)
