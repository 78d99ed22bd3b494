"""Camera-independent parts of the Raspberry Pi AI Camera app (plain functions, tested on CPU).

Three coordinate systems meet here:

* **sensor** pixels of the IMX500's full array (4056 x 3040): the inference region of interest
  (ROI) is set in these (``IMX500.set_inference_roi_abs((x, y, w, h))``); the ISP crops the ROI
  and resizes it to the network's 96 x 96 input, exactly what :func:`picosam2.prompts.crop_image`
  does with a window on a photo;
* **frame** pixels of the preview / main stream (e.g. 640 x 480), which shows the sensor area
  ``scaler_crop = (x, y, w, h)`` (by default the whole sensor);
* **window** pixels (96 x 96) of the network's output.

A prompt (a click or a box in frame pixels, or the frame centre) becomes a sensor ROI with
:func:`sensor_roi`, which goes through :mod:`picosam2.prompts` like every other part of the
project. The sensor cannot pad outside its array, so the window is clipped to it (the
reference code's ``paper`` behaviour: the clipped rectangle is stretched to 96 x 96).
:func:`decode_output` turns what ``IMX500.get_outputs`` returns (or a raw int8 tensor and its
scale from ``dnnParams.xml``) into 96 x 96 logits, and :func:`frame_mask` pastes them back into
the frame; :func:`simulate_frame` runs the whole loop on a still image with a CPU model.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..prompts import (
    MODEL_SIZE,
    PromptError,
    Window,
    box_window,
    crop_image,
    paste_logits,
    point_window,
)
from ..selection import choose_candidate

#: the IMX500's full pixel array (what picamera2's IMX500.get_full_sensor_resolution() returns)
SENSOR_SIZE = (4056, 3040)


@dataclass(frozen=True)
class FrameGeometry:
    """How frame pixels map to sensor pixels: the frame shows ``scaler_crop`` (x, y, w, h) of
    the sensor, resized to ``frame_size`` (w, h)."""

    frame_size: tuple[int, int]
    scaler_crop: tuple[int, int, int, int] = (0, 0) + SENSOR_SIZE
    sensor_size: tuple[int, int] = SENSOR_SIZE

    @property
    def sx(self) -> float:
        return self.scaler_crop[2] / self.frame_size[0]

    @property
    def sy(self) -> float:
        return self.scaler_crop[3] / self.frame_size[1]

    def to_sensor(self, x: float, y: float) -> tuple[float, float]:
        return (self.scaler_crop[0] + x * self.sx, self.scaler_crop[1] + y * self.sy)

    def to_frame(self, x: float, y: float) -> tuple[float, float]:
        return ((x - self.scaler_crop[0]) / self.sx, (y - self.scaler_crop[1]) / self.sy)


def clip_window(win: Window, size: tuple[int, int]) -> Window:
    """``win`` intersected with ``[0, w) x [0, h)``; raises PromptError when nothing is left."""
    w, h = size
    out = Window(max(win.x0, 0), max(win.y0, 0), min(win.x1, w), min(win.y1, h))
    if out.width < 1 or out.height < 1:
        raise PromptError(f"window {win.as_tuple()} is outside the {w}x{h} sensor")
    return out


def sensor_roi(
    prompt,
    kind: str,
    geometry: FrameGeometry,
    window_size: int = MODEL_SIZE,
    box_padding: float = 0.1,
) -> Window:
    """Sensor ROI for a prompt given in frame pixels.

    ``kind``: ``"point"`` (prompt = (x, y)), ``"box"`` (prompt = (x0, y0, x1, y1)) or
    ``"center"`` (prompt ignored: the frame centre). A point's window is ``window_size`` frame
    pixels wide (so it looks the same in the preview at any resolution), centred on the point, in
    sensor pixels; a box's window is :func:`picosam2.prompts.box_window` of the box in sensor
    pixels. Both are clipped to the sensor."""
    fw, fh = geometry.frame_size
    if kind == "center":
        prompt, kind = (fw / 2, fh / 2), "point"
    if kind == "point":
        x, y = (float(v) for v in prompt)
        if not (0 <= x < fw and 0 <= y < fh):
            raise PromptError(f"point ({x:g}, {y:g}) is outside the {fw}x{fh} frame")
        sxp, syp = geometry.to_sensor(x, y)
        side = max(1, int(round(window_size * max(geometry.sx, geometry.sy))))
        win = point_window(sxp, syp, geometry.sensor_size, window_size=side, mode="centered")
    elif kind == "box":
        x0, y0, x1, y1 = (float(v) for v in prompt)
        a = geometry.to_sensor(x0, y0)
        b = geometry.to_sensor(x1, y1)
        win = box_window((a[0], a[1], b[0], b[1]), geometry.sensor_size, padding=box_padding)
    else:
        raise PromptError(f"unknown prompt kind {kind!r}; use point, box or center")
    return clip_window(win, geometry.sensor_size)


def roi_tuple(win: Window) -> tuple[int, int, int, int]:
    """``(x, y, width, height)`` as ``IMX500.set_inference_roi_abs`` takes it."""
    return (int(win.x0), int(win.y0), int(win.width), int(win.height))


def roi_in_frame(win: Window, geometry: FrameGeometry) -> tuple[float, float, float, float]:
    """The sensor ROI as a float rectangle (x0, y0, x1, y1) in frame pixels."""
    x0, y0 = geometry.to_frame(win.x0, win.y0)
    x1, y1 = geometry.to_frame(win.x1, win.y1)
    return (x0, y0, x1, y1)


def decode_output(
    tensor,
    size: int = MODEL_SIZE,
    scale: float | None = None,
    zero_point: float = 0.0,
    transpose: bool = False,
) -> np.ndarray:
    """The network's output as (size, size) float32 logits.

    Accepts what ``IMX500.get_outputs(metadata)`` gives (a list with one float array of shape
    (1, S, S), (S, S, 1), (1, 1, S, S) or flat S*S) and raw integer tensors, dequantized as
    ``(q - zero_point) * scale`` (``scale`` from ``dnnParams.xml``, see :func:`read_dnn_params`).
    ``transpose`` swaps the two spatial axes (for a reader that serialises column-major)."""
    if isinstance(tensor, (list, tuple)):
        if len(tensor) != 1:
            raise UsageError(f"expected one output tensor, got {len(tensor)}")
        tensor = tensor[0]
    arr = np.asarray(tensor)
    if arr.size != size * size:
        raise UsageError(f"output tensor has {arr.size} values, expected {size}x{size}")
    if np.issubdtype(arr.dtype, np.integer):
        if scale is None:
            raise UsageError("an integer output tensor needs its scale (see dnnParams.xml)")
        arr = (arr.astype(np.float32) - zero_point) * scale
    elif scale is not None:
        raise UsageError("a float output tensor is already dequantized: do not pass a scale")
    out = arr.astype(np.float32).reshape(size, size)
    return np.ascontiguousarray(out.T) if transpose else out


def frame_logits(logits: np.ndarray, roi: Window, geometry: FrameGeometry) -> np.ndarray:
    """Window logits pasted into a frame-size float map (``-inf`` outside the ROI)."""
    x0, y0, x1, y1 = roi_in_frame(roi, geometry)
    win = Window(
        int(math.floor(x0 + 0.5)), int(math.floor(y0 + 0.5)), int(math.floor(x1 + 0.5)), int(math.floor(y1 + 0.5))
    )
    if win.width < 1 or win.height < 1:
        win = Window(win.x0, win.y0, max(win.x1, win.x0 + 1), max(win.y1, win.y0 + 1))
    return paste_logits(logits, win, geometry.frame_size)


def frame_mask(logits: np.ndarray, roi: Window, geometry: FrameGeometry, threshold: float = 0.0) -> np.ndarray:
    """Boolean frame-size mask: logits above ``threshold`` (0 = probability 0.5)."""
    return frame_logits(logits, roi, geometry) > threshold


def draw_overlay(
    frame: np.ndarray, mask: np.ndarray, roi: Window | None = None, geometry=None, prompt=None, kind=None, text=None
):
    """RGB frame with the mask tinted, the prompt marked, the sensor ROI outlined and ``text``
    (e.g. which window size ran and why) written in the top-left corner."""
    from PIL import Image, ImageDraw

    from ..image_io import overlay

    points = [tuple(prompt)] if kind == "point" and prompt is not None else []
    boxes = [tuple(prompt)] if kind == "box" and prompt is not None else []
    out = overlay(frame, [mask], points=points, boxes=boxes)
    if roi is not None and geometry is not None:
        img = Image.fromarray(out)
        ImageDraw.Draw(img).rectangle(roi_in_frame(roi, geometry), outline=(255, 255, 0), width=1)
        out = np.asarray(img)
    if text:
        img = Image.fromarray(out)
        draw = ImageDraw.Draw(img)
        draw.rectangle(draw.textbbox((4, 4), text), fill=(0, 0, 0))
        draw.text((4, 4), text, fill=(255, 255, 0))
        out = np.asarray(img)
    return out


def read_dnn_params(path: str | os.PathLike) -> dict:
    """Input/output tensor descriptions from the converter's ``dnnParams.xml``: for each, its
    name, dimensions, bits, signedness and scale (value = integer * scale)."""
    root = ET.parse(str(path)).getroot()
    out: dict = {"inputs": [], "outputs": []}
    for tag, key in (("inputTensor", "inputs"), ("outputTensor", "outputs")):
        for t in root.iter(tag):
            out[key].append(
                {
                    "name": t.get("name"),
                    "dims": [int(d.get("size")) for d in t.iter("dimension")],
                    "bits": int(t.get("bitsPerElement", 8)),
                    "signed": t.get("format") == "signed",
                    "scale": float(t.get("scale", 1.0)),
                    "shift": int(t.get("shift", 0)),
                }
            )
    mem = root.find("l2memory")
    if mem is not None:
        out["l2memory"] = {k: int(v) for k, v in mem.attrib.items()}
    return out


def sensor_window_pixels(sensor_image: np.ndarray, roi: Window, size: int = MODEL_SIZE) -> np.ndarray:
    """What the ISP hands the network for ``roi``: the ROI of a full-sensor RGB image resized to
    ``size`` (used to simulate the sensor on CPU)."""
    return crop_image(sensor_image, roi, size)


def simulate_frame(
    run_window,
    sensor_image: np.ndarray,
    prompt,
    kind: str,
    frame_size: tuple[int, int] | None = None,
    window_size: int = MODEL_SIZE,
    threshold: float = 0.0,
    transpose: bool = False,
):
    """One iteration of the camera loop on a still image, with ``run_window`` (uint8 (S, S, 3)
    window -> the network's output tensor, in any layout :func:`decode_output` reads) standing in
    for the sensor. ``sensor_image`` plays the full sensor array; ``frame_size`` the preview
    (default: the image's own size). Returns ``(mask, logits, roi, geometry)``."""
    h, w = sensor_image.shape[:2]
    frame_size = frame_size or (w, h)
    geometry = FrameGeometry(frame_size, scaler_crop=(0, 0, w, h), sensor_size=(w, h))
    roi = sensor_roi(prompt, kind, geometry, window_size=window_size)
    logits = decode_output(run_window(sensor_window_pixels(sensor_image, roi)), transpose=transpose)
    return frame_mask(logits, roi, geometry, threshold), logits, roi, geometry


def network_path(path: str | os.PathLike) -> Path:
    """Validate the ``network.rpk`` argument (a file made by ``imx500-package``)."""
    p = Path(path)
    if p.is_dir() and (p / "network.rpk").exists():
        p = p / "network.rpk"
    if not p.is_file():
        raise FileNotFoundError(f"network file not found: {p} (make it with imx500-package, see docs/deployment.md)")
    if p.suffix == ".zip":
        raise UsageError(f"{p} is the converter's packerOut.zip: run `imx500-package -i {p} -o DIR` on the Pi first")
    return p


def frame_window_pixels(frame: np.ndarray, roi: Window, geometry: FrameGeometry, size: int = MODEL_SIZE) -> np.ndarray:
    """Approximately what the sensor fed the network for ``roi``, cut from a preview frame (RGB):
    the ROI in frame pixels resized to ``size`` (for the drift statistics on a live camera)."""
    x0, y0, x1, y1 = (int(round(v)) for v in roi_in_frame(roi, geometry))
    return crop_image(frame, Window(x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)), size)


# -- scale-aware point prompts on the sensor ---------------------------------------------------
# The sensor runs one ROI per frame (the ISP scales any ROI to the network input), so the window
# sizes a click on a photo tries in one batch (:func:`picosam2.prompts.point_scales_for`, in frame
# pixels) are tried here over consecutive frames.


def split_outputs(outputs) -> tuple[object, float | None]:
    """``IMX500.get_outputs`` (or a CPU runner's list) -> (mask tensor, quality score or None):
    a network with a quality head has a second output holding the predicted IoU."""
    if isinstance(outputs, (list, tuple)) and len(outputs) == 2:
        return [outputs[0]], float(np.asarray(outputs[1]).ravel()[0])
    return outputs, None


class ScalePolicy:
    """Which point-window side the sensor's one ROI takes on each frame, and why.

    A new prompt starts a *sweep*: one frame per side in ``sides`` (small to large). When the
    sweep is done the side with the best predicted IoU is kept (a network without a quality head:
    the border rule of :mod:`picosam2.selection`, on the sweep's masks). While kept, a frame whose
    score falls more than ``drop`` below the sweep's best starts a new sweep (the scene changed);
    so does :meth:`reset` (the prompt moved). With one side there is nothing to choose: ``fixed``.

    Use: ``side, why = policy.next()`` before a frame, set the ROI for ``side``, run the frame,
    then ``policy.update(logits, score)``.
    """

    def __init__(self, sides, drop: float = 0.15, calibration=None, frame_size: tuple[int, int] | None = None):
        self.sides = [int(s) for s in sides]
        #: the weights' :class:`~picosam2.selection.ScoreCalibration` (with ``frame_size``): each
        #: frame's score is recalibrated for its window side before the sweep compares them
        self.calibration = calibration if frame_size is not None and len(self.sides) > 1 else None
        self.frame_size = None if frame_size is None else (int(frame_size[0]), int(frame_size[1]))
        if not self.sides or min(self.sides) < 1:
            raise PromptError(f"point scales must be positive window sides, got {sides!r}")
        self.drop = float(drop)
        self.reset("new prompt")

    def reset(self, why: str = "prompt moved") -> None:
        """Start a new sweep (``why`` is reported with its frames)."""
        self._why, self._scores, self._logits = why, [], []
        self.best: int | None = None
        self.best_score: float | None = None
        self.rule = ""

    @property
    def sweeping(self) -> bool:
        return len(self.sides) > 1 and self.best is None

    def next(self) -> tuple[int, str]:
        """The side for the coming frame and the reason, in words."""
        if len(self.sides) == 1:
            return self.sides[0], "fixed"
        if self.best is None:
            k = len(self._scores)
            return self.sides[k], f"sweep {k + 1}/{len(self.sides)} ({self._why})"
        if self.rule == "score":
            return self.sides[self.best], f"kept: best score of the sweep ({self.best_score:.2f})"
        return self.sides[self.best], "kept: smallest window whose mask ends inside it (no score)"

    def update(self, logits: np.ndarray, score: float | None) -> float | None:
        """Record the frame just run at :meth:`next`'s side. Returns the score the sweep compares
        (the calibrated one when the policy has a calibration, else ``score``)."""
        if len(self.sides) == 1:
            return score
        if score is not None and self.calibration is not None:
            score = self._calibrated(logits, score)
        if self.best is None:
            self._scores.append(score)
            self._logits.append(np.asarray(logits, np.float32))
            if len(self._scores) == len(self.sides):
                scores = None if any(s is None for s in self._scores) else np.asarray(self._scores, np.float64)
                self.best, self.rule = choose_candidate(np.stack(self._logits), scores)
                self.best_score = None if scores is None else float(scores[self.best])
                self._logits = []
        elif score is not None and self.best_score is not None and score < self.best_score - self.drop:
            self.reset(f"score fell from {self.best_score:.2f} to {score:.2f}")
        return score

    def _calibrated(self, logits, score: float) -> float:
        side = self.sides[self.best if self.best is not None else len(self._scores)]
        width, height = self.frame_size
        win = Window(0, 0, min(side, width), min(side, height))
        lg = np.asarray(logits, np.float32).reshape(1, *np.asarray(logits).shape[-2:])
        return float(self.calibration(lg, [win], self.frame_size, [score])[0])


def simulate_sweep(run_window, image: np.ndarray, prompt, kind: str, policy: ScalePolicy, frames: int, **kw) -> list:
    """``frames`` camera frames on a still image (it plays every frame) with ``policy`` choosing the
    point window each frame; ``kw`` goes to :func:`simulate_frame`. Returns per frame a dict:
    ``side``, ``reason``, ``score`` (None without a quality head), ``mask``, ``roi``, ``geometry``."""
    out = []
    for _ in range(frames):
        side, why = policy.next() if kind != "box" else (kw.get("window_size", MODEL_SIZE), "box")
        score = None

        def runner(win):
            nonlocal score
            tensor, score = split_outputs(run_window(win))
            return tensor

        mask, logits, roi, geometry = simulate_frame(runner, image, prompt, kind, **{**kw, "window_size": side})
        if kind != "box":
            score = policy.update(logits, score)
        out.append({"side": side, "reason": why, "score": score, "mask": mask, "roi": roi, "geometry": geometry})
    return out


def scale_text(side: int, reason: str, score: float | None) -> str:
    """One line saying which window ran and why (overlay text, log, stderr)."""
    return f"window {side} px: {reason}" + ("" if score is None else f"; score {score:.2f}")
