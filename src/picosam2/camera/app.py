"""The live app for the Raspberry Pi AI Camera (Sony IMX500) through picamera2.

Runs on Raspberry Pi OS with the camera attached (``sudo apt install imx500-all python3-picamera2``)
and a ``network.rpk`` made by ``imx500-package`` from our ``packerOut.zip``. The network runs on
the sensor; the Pi only sets the region of interest around the prompt, reads the 96 x 96 output
tensor from each frame's metadata, thresholds it and draws it. All arithmetic lives in
:mod:`picosam2.camera.core` (tested on CPU); this module is the thin picamera2 glue.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .core import FrameGeometry, decode_output, draw_overlay, frame_mask, network_path, roi_tuple, sensor_roi


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
) -> int:
    """Live segmentation. ``kind``/``prompt``: ``center``, ``point`` (x, y) or ``box``
    (x0, y0, x1, y1), in ``frame_size`` pixels. ``interactive``: an OpenCV window where a left
    click moves the point prompt (needs python3-opencv). ``frames`` > 0 stops after that many
    frames; ``snapshot`` writes the last overlay there as PNG."""
    Picamera2, MappedArray, IMX500 = _import_picamera2()
    rpk = network_path(network)
    imx500 = IMX500(str(rpk))
    picam2 = Picamera2(imx500.camera_num)
    config = picam2.create_preview_configuration(
        main={"size": tuple(frame_size), "format": "RGB888"}, controls={"FrameRate": fps}, buffer_count=12
    )
    imx500.show_network_fw_progress_bar()
    state = {"prompt": prompt, "kind": kind, "roi": None, "mask": None, "geometry": None}

    def set_prompt(p, k, geometry):
        roi = sensor_roi(p, k, geometry, window_size=window_size)
        imx500.set_inference_roi_abs(roi_tuple(roi))
        state.update(prompt=p, kind=k, roi=roi, geometry=geometry)

    def tint(request):  # draws into the preview buffer before display
        if state["mask"] is None:
            return
        with MappedArray(request, "main") as m:
            img = m.array
            if img.shape[:2] != state["mask"].shape:
                return
            sel = state["mask"]
            img[sel, :3] = (img[sel, :3] * 0.5 + np.array([255, 144, 30]) * 0.5).astype(img.dtype)  # BGR

    picam2.pre_callback = tint
    picam2.start(config, show_preview=preview and not interactive)
    cv2 = None
    if interactive:
        try:
            import cv2
        except ImportError:
            raise RuntimeError("--interactive needs OpenCV (sudo apt install python3-opencv)") from None
        cv2.namedWindow("picosam2")

        def on_mouse(event, x, y, *_):
            if event == cv2.EVENT_LBUTTONDOWN and state["geometry"] is not None:
                set_prompt((x, y), "point", state["geometry"])

        cv2.setMouseCallback("picosam2", on_mouse)

    n, t0, last = 0, time.perf_counter(), None
    try:
        while frames <= 0 or n < frames:
            request = picam2.capture_request()
            try:
                md = request.get_metadata()
                geometry = FrameGeometry(tuple(frame_size), scaler_crop=tuple(md.get("ScalerCrop", state_crop(imx500))))
                if state["roi"] is None or geometry != state["geometry"]:
                    set_prompt(state["prompt"], state["kind"], geometry)
                outputs = imx500.get_outputs(md)
                frame_bgr = request.make_array("main") if (interactive or snapshot) else None
            finally:
                request.release()
            if outputs is None:
                continue
            logits = decode_output(outputs, transpose=transpose)
            state["mask"] = frame_mask(logits, state["roi"], geometry, threshold)
            n += 1
            if frame_bgr is not None:
                last = draw_overlay(
                    frame_bgr[..., 2::-1], state["mask"], state["roi"], geometry, state["prompt"], state["kind"]
                )
                if cv2 is not None:
                    cv2.imshow("picosam2", last[..., ::-1])
                    if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                        break
            if n % 30 == 0:
                kpi = imx500.get_kpi_info(md)
                extra = f", dnn {kpi[0]:.1f} ms" if kpi else ""
                print(f"{n} frames, {n / (time.perf_counter() - t0):.1f} fps{extra}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        picam2.stop()
        if cv2 is not None:
            cv2.destroyAllWindows()
    if snapshot and last is not None:
        from ..image_io import save_png_atomic

        save_png_atomic(last, snapshot)
        print(f"wrote {snapshot}")
    return 0


def state_crop(imx500) -> tuple[int, int, int, int]:
    r = imx500.get_full_sensor_resolution()
    return (r.x, r.y, r.width, r.height)
