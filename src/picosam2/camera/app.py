"""The live app for the Raspberry Pi AI Camera (Sony IMX500) through picamera2.

Runs on Raspberry Pi OS with the camera attached (``sudo apt install imx500-all python3-picamera2``)
and a ``network.rpk`` made by ``imx500-package`` from our ``packerOut.zip``. The network runs on
the sensor; the Pi only moves the inference region of interest (ROI) where the window policy says
(:mod:`picosam2.camera.policy`: a fixed window, a sweep of window sides, or following the object),
reads the 96 x 96 output tensor from each frame's metadata and draws it. The loop itself is
:class:`picosam2.camera.loop.CameraLoop`, shared with ``--simulate``; everything here is the thin
picamera2 glue.

Operations (docs/operations.md): with ``root`` the network comes from the active slot of a
device root written by ``picosam2 device install`` (and from the previous slot, recorded in the
device state, when the active one fails to start); with ``stats_log`` every frame appends its
drift statistics (:mod:`picosam2.ops.stats`) to a size-capped, rotated JSON-lines log that
``picosam2 monitor`` reads.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ..errors import MissingExtraError
from .core import FrameGeometry, draw_overlay, frame_window_pixels, network_path, roi_tuple
from .loop import CameraLoop, collect_frame, frame_line, open_collector
from .runners import slot_runner  # noqa: F401  (kept importable here)
from .settings import CameraSettings
from .simulate import _open_stats_log, photo_list, simulate_photos  # noqa: F401  (kept importable here)


def _import_picamera2():
    try:
        from picamera2 import MappedArray, Picamera2
        from picamera2.devices import IMX500
    except ImportError as exc:
        raise MissingExtraError(
            "the camera app needs picamera2 with IMX500 support on a Raspberry Pi "
            "(sudo apt install imx500-all python3-picamera2); use --simulate IMAGE to try it without a camera"
        ) from exc
    return Picamera2, MappedArray, IMX500


class SensorROI:
    """The IMX500's inference ROI: set only when it changes."""

    def __init__(self, imx500):
        self.imx500, self.current = imx500, None

    def set(self, roi) -> None:
        roi = roi_tuple(roi)
        if roi != self.current:
            self.imx500.set_inference_roi_abs(roi)
            self.current = roi


def _start_network(IMX500, settings: CameraSettings):
    """The IMX500 with its firmware (from ``--network`` or the device root's active slot) and the
    network's config (for its recommended windows and score calibration; ``None`` if unknown)."""
    from .runners import network_config, slot_config

    if settings.root is None:
        path = network_path(settings.network)
        return IMX500(str(path)), network_config(settings.network)
    from ..ops.device import Device

    imx500, slot, version = Device(settings.root).start_network(lambda d: IMX500(str(network_path(d / "imx500"))))
    print(f"network: slot {slot} ({version}) of {settings.root}", file=sys.stderr)
    return imx500, slot_config(settings.root)


def _start_camera(Picamera2, MappedArray, imx500, shown, frame_size, fps, show_preview):
    picam2 = Picamera2(imx500.camera_num)
    config = picam2.create_preview_configuration(
        main={"size": tuple(frame_size), "format": "RGB888"}, controls={"FrameRate": fps}, buffer_count=12
    )
    imx500.show_network_fw_progress_bar()

    def tint(request):  # draws the latest mask into the preview buffer before display
        mask = shown.get("mask")
        if mask is None:
            return
        with MappedArray(request, "main") as m:
            img = m.array
            if img.shape[:2] != mask.shape:
                return
            img[mask, :3] = (img[mask, :3] * 0.5 + np.array([255, 144, 30]) * 0.5).astype(img.dtype)  # BGR

    picam2.pre_callback = tint
    picam2.start(config, show_preview=show_preview)
    return picam2


def _open_window(loop: CameraLoop):
    try:
        import cv2
    except ImportError as exc:
        raise MissingExtraError("--interactive needs OpenCV (sudo apt install python3-opencv)") from exc
    cv2.namedWindow("picosam2")

    def on_mouse(event, x, y, *_):
        if event == cv2.EVENT_LBUTTONDOWN:
            loop.move((float(x), float(y)), "point")

    cv2.setMouseCallback("picosam2", on_mouse)
    return cv2


def sensor_crop(imx500) -> tuple[int, int, int, int]:
    """The full sensor as a scaler crop (x, y, w, h), for frames whose metadata has none."""
    r = imx500.get_full_sensor_resolution()
    return (r.x, r.y, r.width, r.height)


def _frame_loop(picam2, imx500, loop: CameraLoop, settings: CameraSettings, shown: dict, cv2, log, collector=None):
    """Capture until ``settings.frames`` (0: forever), Esc/q or Ctrl-C; returns the last overlay."""
    sensor = SensorROI(imx500)
    n, t0, last = 0, time.perf_counter(), None
    need_frame = cv2 is not None or bool(settings.snapshot) or log is not None or collector is not None
    need_frame = need_frame or loop.policy.needs_frame  # the follow policy measures the image's motion
    while settings.frames <= 0 or n < settings.frames:
        request = picam2.capture_request()
        try:
            started = time.perf_counter()
            md = request.get_metadata()
            crop = tuple(md.get("ScalerCrop", sensor_crop(imx500)))
            geometry = FrameGeometry(tuple(settings.frame_size), scaler_crop=crop)
            sensor.set(loop.roi(geometry))
            outputs = imx500.get_outputs(md)
            frame = request.make_array("main")[..., 2::-1] if need_frame and outputs is not None else None
        finally:
            request.release()
        if outputs is None:
            continue
        r = loop.frame(outputs, geometry, started=started, frame=frame)
        sensor.set(loop.roi(geometry))  # the next frame's window, as soon as it is known
        shown["mask"] = r.mask
        if loop.policy.verbose:
            print(frame_line(n, r), file=sys.stderr)
        n += 1
        if log is not None:
            from ..ops.stats import frame_record

            log.write(frame_record(frame_window_pixels(frame, r.roi, geometry), r.logits, r.score))
        if collector is not None and frame is not None:
            collect_frame(collector, n - 1, frame, r, loop.policy.marker, every=settings.collect_every)
        if frame is not None and (cv2 is not None or settings.snapshot):
            prompt, kind = loop.policy.marker
            last = draw_overlay(frame, r.mask, r.roi, geometry, prompt, kind, text=r.report.text)
            if cv2 is not None:
                cv2.imshow("picosam2", last[..., ::-1])
                if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                    break
        if n % 30 == 0:
            kpi = imx500.get_kpi_info(md)
            extra = f", dnn {kpi[0]:.1f} ms" if kpi else ""
            print(f"{n} frames, {n / (time.perf_counter() - t0):.1f} fps{extra}", file=sys.stderr)
    return last


def run_camera(settings: CameraSettings, fps: float = 30.0) -> int:
    """Live segmentation with the window policy the settings name (see
    :func:`picosam2.camera.policy.make_policy`). ``settings.interactive``: an OpenCV window where
    a left click moves the point prompt; ``settings.frames`` > 0 stops after that many frames;
    ``settings.snapshot`` writes the last overlay there as PNG; ``settings.root`` runs the active
    slot of that device root; ``settings.stats_log`` appends per-frame statistics;
    ``settings.collect`` keeps frames for labelling while the monitor has armed that folder."""
    from ..selection import ScoreCalibration
    from .policy import make_policy

    Picamera2, MappedArray, IMX500 = _import_picamera2()
    imx500, config = _start_network(IMX500, settings)
    policy = make_policy(settings, config, tuple(settings.frame_size), calibration=ScoreCalibration.from_config(config))
    loop = CameraLoop(policy, settings.threshold, settings.transpose)
    shown: dict = {}
    preview = settings.preview and not settings.interactive
    picam2 = _start_camera(Picamera2, MappedArray, imx500, shown, settings.frame_size, fps, preview)
    cv2 = _open_window(loop) if settings.interactive else None
    log = _open_stats_log(settings.stats_log)
    collector = open_collector(settings)
    last = None
    try:
        last = _frame_loop(picam2, imx500, loop, settings, shown, cv2, log, collector)
    except KeyboardInterrupt:
        pass
    finally:
        picam2.stop()
        if cv2 is not None:
            cv2.destroyAllWindows()
        if log is not None:
            log.close()
    if settings.snapshot and last is not None:
        from ..image_io import save_png_atomic

        save_png_atomic(last, settings.snapshot)
        print(f"wrote {settings.snapshot}")
    return 0
