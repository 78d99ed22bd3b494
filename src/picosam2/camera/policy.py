"""Window policies: which sensor region of interest (ROI) the network sees on each frame.

The IMX500 runs the network on one ROI per frame, and the ROI is the only prompt PicoSAM2 has.
Every way the camera app uses the sensor is therefore one *window policy*:

* :class:`FixedWindow` - the same ROI every frame: a box's padded square, or a point window of one
  side (``--window-size``, ``--point-scales fixed``);
* :class:`ScaleSweep` - a click's window sides tried over consecutive frames, the best-scored one
  kept, swept again when the score falls (:class:`~picosam2.camera.core.ScalePolicy`);
* :class:`Follow` - the window follows the object from frame to frame (``--track``), chosen by
  the tracker's pure policy step (:mod:`picosam2.track.policy`).

A policy is plain arithmetic (no camera, no model): ``roi = policy.plan(geometry)`` before a
frame, ``report = policy.observe(logits, score, roi, geometry, frame)`` after it (``frame``: the
picture the ROI was cut from, for a policy that measures the image's motion; ``None`` when the
runner has none), ``policy.move(prompt,
kind)`` when the user clicks elsewhere. :func:`make_policy` picks one from the settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..prompts import Window
from .core import FrameGeometry, ScalePolicy, scale_text, sensor_roi


@dataclass(frozen=True)
class FrameReport:
    """What a policy says about the frame it just saw.

    ``text``: one line for the overlay, the log and stderr (which window ran and why, or the
    follow state); ``side``: the point window side in frame pixels (``None`` for a followed
    window); ``reason``: why that window ran; ``score``: the score the policy compared (the
    calibrated one when it recalibrates; ``None`` without a quality head); ``state``:
    ``start`` / ``tracking`` / ``lost`` / ``reacquired`` when following, else ``None``;
    ``accepted``: whether the window's mask is the object's (a lost frame shows no mask)."""

    text: str
    side: int | None
    reason: str
    score: float | None
    state: str | None = None
    accepted: bool = True


class WindowPolicy:
    """Base class: chooses each frame's sensor ROI. :meth:`plan` may be called several times
    before a frame (it returns the same ROI until :meth:`observe` or :meth:`move`)."""

    #: whether the live app prints each frame's line (a fixed window has nothing to say)
    verbose = True
    #: frames a still scene needs before the policy has settled (a simulated photo plays that many)
    settle_frames = 1
    #: whether :meth:`observe` uses the frame's pixels (the loop then grabs every frame)
    needs_frame = False

    def plan(self, geometry: FrameGeometry) -> Window:
        """The sensor ROI for the coming frame."""
        raise NotImplementedError

    def observe(
        self, logits: np.ndarray, score: float | None, roi: Window, geometry: FrameGeometry, frame=None
    ) -> FrameReport:
        """The frame run at ``roi`` gave ``logits`` (the network's 96 x 96 output) and ``score``;
        ``frame`` is that frame (HxWx3 uint8 RGB, frame pixels) or None when the runner has none."""
        raise NotImplementedError

    def move(self, prompt, kind: str) -> None:
        """A new prompt in frame pixels (an interactive click)."""
        raise NotImplementedError

    @property
    def marker(self) -> tuple[object, str | None]:
        """(prompt, kind) to mark on the overlay."""
        return None, None


class FixedWindow(WindowPolicy):
    """One ROI for every frame: a box's padded square, or a point (or the frame centre) with a
    window of ``side`` frame pixels."""

    verbose = False

    def __init__(self, prompt, kind: str, side: int):
        self.prompt, self.kind, self.side = prompt, kind, int(side)

    def plan(self, geometry):
        return sensor_roi(self.prompt, self.kind, geometry, window_size=self.side)

    def observe(self, logits, score, roi, geometry, frame=None):
        if self.kind == "box":  # the box decides the window
            return FrameReport("box" + ("" if score is None else f"; score {score:.2f}"), None, "box", score)
        return FrameReport(scale_text(self.side, "fixed", score), self.side, "fixed", score)

    def move(self, prompt, kind):
        self.prompt, self.kind = prompt, kind

    @property
    def marker(self):
        return self.prompt, self.kind


class ScaleSweep(WindowPolicy):
    """A point's window sides swept over frames (see :class:`~picosam2.camera.core.ScalePolicy`)."""

    def __init__(self, prompt, kind: str, scales: ScalePolicy):
        self.prompt, self.kind, self.scales = prompt, kind, scales
        self._next: tuple[int, str] | None = None
        self.settle_frames = len(scales.sides) + 1  # the sweep, then one kept frame

    def _side(self) -> tuple[int, str]:
        if self._next is None:
            self._next = self.scales.next()
        return self._next

    def plan(self, geometry):
        return sensor_roi(self.prompt, self.kind, geometry, window_size=self._side()[0])

    def observe(self, logits, score, roi, geometry, frame=None):
        side, why = self._side()
        compared = self.scales.update(logits, score)
        self._next = None
        return FrameReport(scale_text(side, why, compared), side, why, compared)

    def move(self, prompt, kind):
        self.prompt, self.kind = prompt, kind
        self.scales.reset("prompt moved")
        self._next = None

    @property
    def marker(self):
        return self.prompt, self.kind


def frame_window_roi(window, geometry: FrameGeometry) -> Window:
    """A window (x0, y0, x1, y1) in frame pixels (it may extend past the frame) as the sensor ROI:
    in sensor pixels, clipped to the sensor (which cannot pad; the ISP stretches what is left)."""
    from .core import clip_window

    x0, y0, x1, y1 = (float(v) for v in window)
    a = geometry.to_sensor(x0, y0)
    b = geometry.to_sensor(x1, y1)
    win = Window(int(round(a[0])), int(round(a[1])), int(round(b[0])), int(round(b[1])))
    return clip_window(win, geometry.sensor_size)


def make_policy(settings, config, frame_size: tuple[int, int], calibration=None) -> WindowPolicy:
    """The window policy the settings ask for, on frames of ``frame_size`` (w, h): ``--track``
    follows; a box is a fixed window; a point (or the centre) sweeps its window sides when there
    are several (``--point-scales``, or the network's recommendation), else keeps one."""
    from ..prompts import point_scales_for

    side = settings.window_side(config)
    if settings.track:
        from .follow import Follow

        return Follow.from_settings(settings, config, frame_size, calibration=calibration)
    if settings.kind == "box":
        return FixedWindow(settings.prompt, "box", side)
    sides = point_scales_for(settings.scales(config), tuple(frame_size), side)
    if len(sides) == 1:
        return FixedWindow(settings.prompt, settings.kind, sides[0])
    scales = ScalePolicy(sides, calibration=calibration, frame_size=tuple(frame_size))
    return ScaleSweep(settings.prompt, settings.kind, scales)
