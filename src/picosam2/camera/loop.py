"""The camera loop, shared by the live app and the simulation.

Per frame: the window policy plans the sensor ROI, the sensor (or a CPU model standing in for it)
runs the network on that ROI, the output is decoded and pasted into the frame, and the policy
sees the result (and plans the next ROI). :class:`CameraLoop` holds that sequence;
:func:`frame_line` is the one printed line per frame.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..prompts import Window
from .core import FrameGeometry, decode_output, frame_mask, roi_tuple, split_outputs
from .policy import FrameReport, WindowPolicy


@dataclass
class FrameResult:
    """One frame of the loop: the ROI the network saw (sensor pixels), the frame geometry, the
    96 x 96 logits, the network's own score (``None`` without a quality head), the frame-size
    mask and the policy's report."""

    roi: Window
    geometry: FrameGeometry
    logits: np.ndarray
    score: float | None
    mask: np.ndarray
    report: FrameReport
    ms: float = 0.0


class CameraLoop:
    """``roi = loop.roi(geometry)`` for the coming frame (the same until the frame is seen), then
    ``result = loop.frame(outputs, geometry)`` with what the sensor returned for it (a list like
    ``IMX500.get_outputs``: the mask tensor, and the predicted IoU when the network has one)."""

    def __init__(self, policy: WindowPolicy, threshold: float = 0.0, transpose: bool = False):
        self.policy, self.threshold, self.transpose = policy, float(threshold), bool(transpose)
        self._roi: Window | None = None
        self._geometry: FrameGeometry | None = None
        self.count = 0

    def roi(self, geometry: FrameGeometry) -> Window:
        """The sensor ROI for the coming frame (planned again when the geometry changes)."""
        if self._roi is None or geometry != self._geometry:
            self._roi, self._geometry = self.policy.plan(geometry), geometry
        return self._roi

    def move(self, prompt, kind: str) -> None:
        """A new prompt (a click): the policy starts over from it."""
        self.policy.move(prompt, kind)
        self._roi = None

    def frame(self, outputs, geometry: FrameGeometry, started: float | None = None, frame=None) -> FrameResult:
        """The coming frame's outputs, run at :meth:`roi`. ``started``: ``time.perf_counter()``
        when the frame's work began (for ``ms``; default: now); ``frame``: the frame itself (HxWx3
        uint8 RGB, frame pixels) for a policy that follows the image's motion, or None."""
        t0 = time.perf_counter() if started is None else started
        roi = self.roi(geometry)
        tensor, score = split_outputs(outputs)
        logits = decode_output(tensor, transpose=self.transpose)
        mask = frame_mask(logits, roi, geometry, self.threshold)
        report = self.policy.observe(logits, score, roi, geometry, frame)
        if not report.accepted:  # not the object (lost): nothing to show
            mask = np.zeros_like(mask)
        self._roi = None
        self.count += 1
        return FrameResult(roi, geometry, logits, score, mask, report, (time.perf_counter() - t0) * 1000.0)


def open_collector(settings):
    """The frame collector ``settings.collect`` names (:class:`picosam2.ops.collect.Collector`),
    or ``None`` when collection is off (the default). It writes only while ``picosam2 monitor
    ... --collect DIR`` has armed the folder."""
    if not settings.collect:
        return None
    import sys

    from ..errors import UsageError
    from ..ops.collect import Collector

    try:
        collector = Collector(settings.collect, max_items=settings.collect_max)
    except OSError as exc:
        raise UsageError(f"--collect {settings.collect}: {exc.strerror or exc}") from exc
    print(f"collect: frames go to {settings.collect} while the monitor has armed it", file=sys.stderr)
    return collector


def collect_frame(
    collector, k: int, frame: np.ndarray, r: FrameResult, marker, name: str | None = None, every: int = 1
):  # fmt: skip
    """Hand frame ``k`` (RGB uint8, frame size), its mask and what produced it to ``collector``
    (every ``every``-th frame only); returns the record's path, or ``None`` when the frame was
    skipped or the folder is not armed."""
    if k % max(1, int(every)):
        return None
    prompt, kind = marker
    record = {
        "prompt": None if prompt is None else [float(v) for v in prompt],
        "prompt_kind": kind,
        "roi": list(roi_tuple(r.roi)),
        "window_side": r.report.side,
        "score": r.score,
        "state": r.report.state,
        "frame": int(k),
    }
    if name:
        record["photo"] = name
    return collector.add(frame, r.mask, record)


def frame_line(k: int, r: FrameResult, name: str | None = None) -> str:
    """``frame K (NAME): roi X, Y, W, H; mask pixels: N; <policy's line>; T ms`` (ROI in sensor
    pixels, as ``IMX500.set_inference_roi_abs`` takes it)."""
    x, y, w, h = roi_tuple(r.roi)
    label = f"frame {k}" + (f" ({name})" if name else "")
    return f"{label}: roi {x}, {y}, {w}, {h}; mask pixels: {int(r.mask.sum())}; {r.report.text}; {r.ms:.1f} ms"
