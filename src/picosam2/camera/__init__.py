"""Raspberry Pi AI Camera (IMX500) app: ``picosam2 camera``.

* :mod:`.cli` reads the command line once into a :class:`.settings.CameraSettings`;
* :mod:`.policy` (and :mod:`.follow`) choose each frame's sensor ROI: a fixed window, a sweep of
  window sides, or following the object;
* :mod:`.loop` is the per-frame loop both the live app (:mod:`.app`, the only picamera2 user, inside
  :func:`.app.run_camera`) and the simulation (:mod:`.simulate`) run;
* :mod:`.core` holds the camera-independent arithmetic (ROI, output decoding, overlay).
"""

from .core import (
    SENSOR_SIZE,
    FrameGeometry,
    decode_output,
    frame_mask,
    read_dnn_params,
    roi_tuple,
    sensor_roi,
    simulate_frame,
)

__all__ = [
    "SENSOR_SIZE",
    "FrameGeometry",
    "decode_output",
    "frame_mask",
    "read_dnn_params",
    "roi_tuple",
    "sensor_roi",
    "simulate_frame",
]
