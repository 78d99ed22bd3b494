"""The live app for the Raspberry Pi AI Camera (Sony IMX500) through picamera2, and the same
loop simulated on photos.

Runs on Raspberry Pi OS with the camera attached (``sudo apt install imx500-all python3-picamera2``)
and a ``network.rpk`` made by ``imx500-package`` from our ``packerOut.zip``. The network runs on
the sensor; the Pi only sets the region of interest around the prompt, reads the 96 x 96 output
tensor from each frame's metadata, thresholds it and draws it. All arithmetic lives in
:mod:`picosam2.camera.core` (tested on CPU); this module is the thin picamera2 glue.

Operations (docs/operations.md): with ``root`` the network comes from the active slot of a
device root written by ``picosam2 device install`` (and from the previous slot, recorded in the
device state, when the active one fails to start); with ``stats_log`` every frame appends its
drift statistics (:mod:`picosam2.ops.stats`) to a size-capped, rotated JSON-lines log that
``picosam2 monitor`` reads.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..prompts import point_scales_for
from .core import (
    FrameGeometry,
    ScalePolicy,
    decode_output,
    draw_overlay,
    frame_mask,
    frame_window_pixels,
    network_path,
    roi_tuple,
    scale_text,
    sensor_roi,
    split_outputs,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _import_picamera2():
    try:
        from picamera2 import MappedArray, Picamera2
        from picamera2.devices import IMX500
    except ImportError:
        raise RuntimeError(
            "the camera app needs picamera2 with IMX500 support on a Raspberry Pi "
            "(sudo apt install imx500-all python3-picamera2); use --simulate IMAGE to try it without a camera"
        ) from None
    return Picamera2, MappedArray, IMX500


def _open_stats_log(stats_log):
    if not stats_log:
        return None
    from ..ops.monitor import StatsLog

    return StatsLog(stats_log)


class _LiveState:
    """Prompt, ROI and latest mask shared by the capture loop and picamera2's callbacks."""

    def __init__(self, imx500, prompt, kind, window_size, policy: ScalePolicy | None = None):
        self.imx500, self.window_size, self.policy = imx500, window_size, policy
        self.prompt, self.kind, self.roi, self.mask, self.geometry = prompt, kind, None, None, None
        self.scale_why = None  # why the current window side runs
        if policy is not None and kind != "box":
            self.window_size, self.scale_why = policy.next()

    def set_prompt(self, prompt, kind, geometry):
        self.roi = sensor_roi(prompt, kind, geometry, window_size=self.window_size)
        self.imx500.set_inference_roi_abs(roi_tuple(self.roi))
        self.prompt, self.kind, self.geometry = prompt, kind, geometry

    def move_prompt(self, prompt, kind, geometry):
        """A new prompt (a click): its window sizes are swept again."""
        if self.policy is not None:
            self.policy.reset("prompt moved")
            self.window_size, self.scale_why = self.policy.next()
        self.set_prompt(prompt, kind, geometry)

    def after_frame(self, logits, score, geometry) -> str | None:
        """Feed the frame's result to the scale policy; move the ROI to the next frame's window
        side. Returns the line saying which window this frame ran and why (None: no policy)."""
        if self.policy is None or self.kind == "box":
            return None
        score = self.policy.update(logits, score)
        line = scale_text(self.window_size, self.scale_why, score)
        side, self.scale_why = self.policy.next()
        if side != self.window_size:
            self.window_size = side
            self.set_prompt(self.prompt, self.kind, geometry)
        return line


def _start_network(IMX500, network, root):
    """The IMX500 with its firmware: from ``network``, or from the device root's active slot."""
    if root is None:
        return IMX500(str(network_path(network)))
    from ..ops.device import Device

    imx500, slot, version = Device(root).start_network(lambda d: IMX500(str(network_path(d / "imx500"))))
    print(f"network: slot {slot} ({version}) of {root}", file=sys.stderr)
    return imx500


def _start_camera(Picamera2, MappedArray, imx500, state, frame_size, fps, show_preview):
    picam2 = Picamera2(imx500.camera_num)
    config = picam2.create_preview_configuration(
        main={"size": tuple(frame_size), "format": "RGB888"}, controls={"FrameRate": fps}, buffer_count=12
    )
    imx500.show_network_fw_progress_bar()

    def tint(request):  # draws into the preview buffer before display
        if state.mask is None:
            return
        with MappedArray(request, "main") as m:
            img = m.array
            if img.shape[:2] != state.mask.shape:
                return
            sel = state.mask
            img[sel, :3] = (img[sel, :3] * 0.5 + np.array([255, 144, 30]) * 0.5).astype(img.dtype)  # BGR

    picam2.pre_callback = tint
    picam2.start(config, show_preview=show_preview)
    return picam2


def _open_window(state):
    try:
        import cv2
    except ImportError:
        raise RuntimeError("--interactive needs OpenCV (sudo apt install python3-opencv)") from None
    cv2.namedWindow("picosam2")

    def on_mouse(event, x, y, *_):
        if event == cv2.EVENT_LBUTTONDOWN and state.geometry is not None:
            state.move_prompt((x, y), "point", state.geometry)

    cv2.setMouseCallback("picosam2", on_mouse)
    return cv2


def _capture(picam2, imx500, state, frame_size, need_frame):
    """One frame: (geometry, sensor outputs or None, RGB frame or None)."""
    request = picam2.capture_request()
    try:
        md = request.get_metadata()
        geometry = FrameGeometry(tuple(frame_size), scaler_crop=tuple(md.get("ScalerCrop", state_crop(imx500))))
        if state.roi is None or geometry != state.geometry:
            state.set_prompt(state.prompt, state.kind, geometry)
        outputs = imx500.get_outputs(md)
        frame_bgr = request.make_array("main") if need_frame else None
    finally:
        request.release()
    return geometry, outputs, md, (None if frame_bgr is None else frame_bgr[..., 2::-1])


def _frame_loop(picam2, imx500, state, opts: dict, cv2, log):
    """Capture until ``opts['frames']`` (0: forever), Esc/q or Ctrl-C; returns the last overlay."""
    n, t0, last, last_line = 0, time.perf_counter(), None, None
    need_frame = cv2 is not None or bool(opts["snapshot"]) or log is not None
    while opts["frames"] <= 0 or n < opts["frames"]:
        geometry, outputs, md, frame = _capture(picam2, imx500, state, opts["frame_size"], need_frame)
        if outputs is None:
            continue
        tensor, score = split_outputs(outputs)
        logits = decode_output(tensor, transpose=opts["transpose"])
        state.mask = frame_mask(logits, state.roi, geometry, opts["threshold"])
        roi = state.roi
        line = state.after_frame(logits, score, geometry)  # which window ran, why; the next ROI
        if line is not None and line != last_line:
            print(f"frame {n}: {line}", file=sys.stderr)
        last_line = line
        n += 1
        if log is not None:
            from ..ops.stats import frame_record

            log.write(frame_record(frame_window_pixels(frame, roi, geometry), logits, score))
        if frame is not None and (cv2 is not None or opts["snapshot"]):
            last = draw_overlay(frame, state.mask, roi, geometry, state.prompt, state.kind, text=line)
            if cv2 is not None:
                cv2.imshow("picosam2", last[..., ::-1])
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    break
        if n % 30 == 0:
            kpi = imx500.get_kpi_info(md)
            extra = f", dnn {kpi[0]:.1f} ms" if kpi else ""
            print(f"{n} frames, {n / (time.perf_counter() - t0):.1f} fps{extra}", file=sys.stderr)
    return last


def run_camera(
    network: str,
    prompt=None,
    kind: str = "center",
    frame_size: tuple[int, int] = (640, 480),
    window_size: int = 96,
    threshold: float = 0.0,
    transpose: bool = False,
    frames: int = 0,
    snapshot: str | None = None,
    preview: bool = True,
    interactive: bool = False,
    fps: float = 30.0,
    root: str | None = None,
    stats_log: str | None = None,
    point_scales=None,
    calibration=None,
) -> int:
    """Live segmentation. ``kind``/``prompt``: ``center``, ``point`` (x, y) or ``box``
    (x0, y0, x1, y1), in ``frame_size`` pixels. ``interactive``: an OpenCV window where a left
    click moves the point prompt (needs python3-opencv). ``frames`` > 0 stops after that many
    frames; ``snapshot`` writes the last overlay there as PNG. ``root``: run the active slot of
    this device root (``network`` is then ignored); ``stats_log``: append per-frame statistics.
    ``point_scales``: ``"auto"`` or window sides (frame pixels) for a point prompt: a
    :class:`~picosam2.camera.core.ScalePolicy` sweeps them over frames and keeps the best-scored
    one; each change of window is printed with its reason and written on the overlay.
    ``calibration``: the weights' :class:`~picosam2.selection.ScoreCalibration` (the sweep then
    compares calibrated scores, as the predictor does)."""
    Picamera2, MappedArray, IMX500 = _import_picamera2()
    imx500 = _start_network(IMX500, network, root)
    sides = point_scales_for(point_scales, tuple(frame_size), window_size)
    policy = ScalePolicy(sides, calibration=calibration, frame_size=tuple(frame_size)) if len(sides) > 1 else None
    state = _LiveState(imx500, prompt, kind, window_size, policy)
    picam2 = _start_camera(Picamera2, MappedArray, imx500, state, frame_size, fps, preview and not interactive)
    cv2 = _open_window(state) if interactive else None
    log = _open_stats_log(stats_log)
    opts = {"frames": frames, "snapshot": snapshot, "frame_size": frame_size, "transpose": transpose}
    opts["threshold"] = threshold
    last = None
    try:
        last = _frame_loop(picam2, imx500, state, opts, cv2, log)
    except KeyboardInterrupt:
        pass
    finally:
        picam2.stop()
        if cv2 is not None:
            cv2.destroyAllWindows()
        if log is not None:
            log.close()
    if snapshot and last is not None:
        from ..image_io import save_png_atomic

        save_png_atomic(last, snapshot)
        print(f"wrote {snapshot}")
    return 0


def state_crop(imx500) -> tuple[int, int, int, int]:
    r = imx500.get_full_sensor_resolution()
    return (r.x, r.y, r.width, r.height)


# -- simulation over photos, with device slots and statistics ------------------------------------


def slot_runner(slot_dir: Path):
    """The slot's CPU network as a ``simulate_frame`` runner (window -> [logits] or [logits, score])."""
    from ..ops.bundle import CONFIG, INT8_ONNX
    from ..ops.network import SlotNetwork

    net = SlotNetwork(slot_dir / INT8_ONNX, slot_dir / CONFIG)

    def run(win):
        logits, scores = net(win)
        return [logits[0]] if scores is None else [logits[0], scores[0]]

    run.config = net.config
    return run


def photo_list(path) -> list[Path]:
    """One photo, or the photos of a folder in name order."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"no photos ({', '.join(IMAGE_SUFFIXES)}) in {p}")
        return files
    if not p.is_file():
        raise FileNotFoundError(f"photo not found: {p}")
    return [p]


def simulate_photos(
    run_window, photos, prompt=None, kind="center", window_size=96, threshold=0.0, transpose=False,
    stats_log=None, out=None, point_scales=None, calibration=None,
) -> list[dict]:  # fmt: skip
    """The camera loop over photos (each plays one sensor frame, in order) with a CPU ``run_window``;
    appends each frame's statistics to ``stats_log``; ``out``: overlay PNG (one photo) or folder.
    ``point_scales`` (``"auto"`` or sides): a :class:`~picosam2.camera.core.ScalePolicy` picks each
    frame's point window (sides from the first photo's size; ``calibration``, the weights'
    :class:`~picosam2.selection.ScoreCalibration`, recalibrates its scores); records say which and why."""
    from ..image_io import load_image, save_png_atomic
    from ..ops.stats import frame_record
    from .core import sensor_window_pixels, simulate_frame

    log = _open_stats_log(stats_log)
    records = []

    def runner(win):
        nonlocal score
        tensor, score = split_outputs(run_window(win))
        return tensor

    policy = None
    try:
        for photo in photos:
            image = load_image(photo)
            if policy is None and kind != "box":
                size = image.shape[1::-1]
                sides = point_scales_for(point_scales, size, window_size)
                policy = ScalePolicy(sides, calibration=calibration, frame_size=size)
            side, why = policy.next() if policy is not None else (window_size, "box" if kind == "box" else "fixed")
            score = None
            mask, logits, roi, geometry = simulate_frame(
                runner, image, prompt, kind, window_size=side, threshold=threshold, transpose=transpose
            )
            compared = policy.update(logits, score) if policy is not None else score
            rec = frame_record(sensor_window_pixels(image, roi), logits, score)
            scale = {"window_side": side, "scale_reason": why, "score": score, "scale_score": compared}
            records.append({"photo": str(photo), "roi": roi_tuple(roi), "mask_pixels": int(mask.sum()), **rec, **scale})
            if log is not None:
                log.write(rec)
            if out:
                target = Path(out) / f"{Path(photo).stem}.png" if len(photos) > 1 else Path(out)
                text = scale_text(side, why, compared)
                save_png_atomic(draw_overlay(image, mask, roi, geometry, prompt, kind, text=text), target)
    finally:
        if log is not None:
            log.close()
    return records


def _prompt_args(args):
    from .cli import _pair

    kind = "point" if args.point else "box" if args.box else "center"
    counts = {"point": 2, "box": 4}
    prompt = _pair(getattr(args, kind), counts[kind], f"--{kind}") if kind in counts else None
    if args.window_size is not None and args.window_size < 1:
        raise ValueError("--window-size must be positive")
    return prompt, kind, tuple(int(v) for v in _pair(args.size, 2, "--size"))


def _slot_config(root):
    """The active slot's network config (for its recommended point window), or None."""
    from ..models.config import PicoSAM2Config
    from ..ops.bundle import CONFIG

    try:
        return PicoSAM2Config.from_dict(json.loads((Path(root) / "active" / CONFIG).read_text()))
    except (OSError, ValueError):
        return None


def run_ops(args) -> int:
    """``picosam2 camera`` with ``--root`` and/or ``--stats-log``, or ``--simulate`` on a folder."""
    from ..predictor import recommended_window_size
    from ..selection import ScoreCalibration

    prompt, kind, size = _prompt_args(args)

    def window_size(config):  # --window-size, else what the network recommends
        return args.window_size if args.window_size is not None else recommended_window_size(config)

    def point_scales(config):  # --point-scales, else what the network recommends (unless --window-size)
        from .cli import point_scales_arg

        return point_scales_arg(args, config)

    if not args.simulate:
        config = _slot_config(args.root) if args.root else None
        return run_camera(
            args.network, prompt=prompt, kind=kind, frame_size=size, window_size=window_size(config),
            threshold=args.threshold, transpose=args.transpose_output, frames=args.frames, snapshot=args.snapshot,
            preview=not args.no_preview, interactive=args.interactive, root=args.root, stats_log=args.stats_log,
            point_scales=point_scales(config), calibration=ScoreCalibration.from_config(config),
        )  # fmt: skip
    photos = photo_list(args.simulate)
    if args.root:
        from ..ops.device import Device

        run, slot, version = Device(args.root).start_network(slot_runner)
        print(f"network: slot {slot} ({version}) of {args.root}", file=sys.stderr)
    else:
        from .cli import _window_runner

        run, run.config = _window_runner(args.weights)
    records = simulate_photos(
        run,
        photos,
        prompt,
        kind,
        window_size(run.config),
        args.threshold,
        args.transpose_output,
        args.stats_log,
        args.out,
        point_scales(run.config),
        ScoreCalibration.from_config(run.config),
    )
    for r in records:
        x, y, w, h = r["roi"]
        line = scale_text(r["window_side"], r["scale_reason"], r["scale_score"])
        print(f"{Path(r['photo']).name}: roi {x}, {y}, {w}, {h}; mask pixels: {r['mask_pixels']}; {line}")
    if args.stats_log:
        print(f"appended {len(records)} frames to {args.stats_log}")
    return 0
