"""Raspberry Pi AI Camera (IMX500) app: ``picosam2 camera``. The camera-independent parts (ROI
arithmetic, output decoding, overlay) are in :mod:`picosam2.camera.core`; picamera2 is imported
only inside :func:`picosam2.camera.app.run_camera`."""

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
