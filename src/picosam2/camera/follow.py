"""Following the object with the sensor's window (``picosam2 camera --track``).

The sensor runs one window per frame, so following is a window policy like the others
(:mod:`picosam2.camera.policy`): :class:`Follow` chooses each frame's ROI with the tracker's pure
policy step (:mod:`picosam2.track.policy`: ``next_window`` / ``observe`` / ``best_observation`` /
``update``), in frame (preview) pixels, and the ROI goes to the sensor clipped to its array.

It starts from the prompt: a box's window, or a click's window sides swept over consecutive
frames at the click (as without ``--track``) until the best-scored side is kept; the first kept
frame's mask starts the track. ``--window-size`` or ``--point-scales fixed`` start from one
window on the first frame. From then on the window moves every frame to where the policy expects
the object; a lost object is searched for with one re-acquisition window per frame.

Under the tracker's image motion (``TrackPolicy.motion == "image"``, the default) the anchor moves
with the picture: each frame, the last frame's blocks around the object (weighted by its last
mask, pasted into the frame as the tracker does; kept as a template,
:func:`picosam2.track.motion.object_template`) are matched against this one
(:func:`picosam2.track.motion.template_shift`), so :meth:`Follow.observe` needs the frame the
window was cut from; without one it falls back to the mask's anchor for that frame.

The frame also serves the tracker's colour check (:mod:`picosam2.track.appearance`): the
first kept mask's pixels give the object's reference colours, and a later window mask continues
the object only when its pixels look alike; without a frame the check is skipped for that frame.
"""

from __future__ import annotations

import numpy as np

from ..prompts import Window
from .core import FrameGeometry, ScalePolicy, roi_in_frame, scale_text, sensor_roi
from .policy import FrameReport, WindowPolicy, frame_window_roi


def follow_window(state, frame_size: tuple[int, int], track_policy) -> tuple[int, int, int, int]:
    """The window (x0, y0, x1, y1) in frame pixels the tracker's policy runs next for ``state``
    (one window a frame: the sensor has one ROI)."""
    from ..track import policy as P

    return P.next_window(state, tuple(frame_size), track_policy)


def follow_step(state, logits, window, score, track_policy, threshold: float = 0.0, shift=None, similarity=None):
    """One frame of following: the window mask (``logits`` of ``window``, frame pixels) judged
    and folded into ``state``; ``shift`` the image's motion around the object since the last
    frame (:func:`picosam2.track.motion.template_shift`, or None); ``similarity`` the window mask's
    colours against the object's (:func:`picosam2.track.appearance.similarity`, or None: not
    checked). Returns ``(new state, status, accepted)``."""
    from ..track import policy as P

    obs = P.observe(logits, window, score, threshold)
    best = P.best_observation(state, [obs], track_policy, None if similarity is None else [similarity])
    new, status = P.update(state, None if best is None else obs, track_policy, shift)
    return new, status, best is not None


def window_frame_mask(logits, window, frame_size, threshold: float = 0.0):
    """One window's logits pasted into the frame as the tracker pastes them (``window`` in frame
    pixels, rounded to whole pixels): ``(mask, part, win)``, the frame-size mask, its part inside
    the window (:func:`picosam2.prompts.window_mask`, None when the window misses the frame) and
    the rounded :class:`~picosam2.prompts.Window`."""
    from ..prompts import window_mask

    width, height = (int(v) for v in frame_size)
    x0, y0, x1, y1 = (int(np.floor(float(v) + 0.5)) for v in window)
    win = Window(x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))
    part = window_mask(logits, win, (width, height), threshold)
    mask = np.zeros((height, width), bool)
    if part is not None:
        mask[part[0]] = part[1]
    return mask, part, win


class Follow(WindowPolicy):
    """The sensor's window follows the object from frame to frame.

    ``prompt``/``kind``: the start (a point, a box, or the frame centre); ``start_sides``: the
    window sides a click sweeps over frames before the track starts (one side: start at once);
    ``track_policy``: the :class:`~picosam2.track.TrackPolicy` (default: the tracker's);
    ``threshold``: the mask logit threshold."""

    def __init__(
        self, prompt, kind: str, start_sides, track_policy=None, calibration=None, frame_size=None,
        threshold: float = 0.0,
    ):  # fmt: skip
        from ..track import TrackPolicy

        self.track_policy = track_policy or TrackPolicy()
        # the image motion and the colour check read the frame, not only the window
        self.needs_frame = self.track_policy.motion == "image" or self.track_policy.uses_appearance
        self.start_sides = [int(s) for s in start_sides]
        self.calibration, self.frame_size, self.threshold = calibration, frame_size, float(threshold)
        self.settle_frames = len(self.start_sides) + 1 if len(self.start_sides) > 1 and kind != "box" else 1
        self.move(prompt, kind)

    @classmethod
    def from_settings(cls, settings, config, frame_size, calibration=None) -> Follow:
        """The follow policy of ``--track`` with the settings' prompt and start window sides."""
        from ..prompts import point_scales_for

        sides = point_scales_for(settings.scales(config), tuple(frame_size), settings.window_side(config))
        return cls(
            settings.prompt, settings.kind, sides, calibration=calibration, frame_size=tuple(frame_size),
            threshold=settings.threshold,
        )  # fmt: skip

    # -- the start ------------------------------------------------------------------------------

    def move(self, prompt, kind):
        """Start over from a new prompt."""
        self.prompt, self.kind = prompt, kind
        self.state = None  # a TrackState once the track has started
        self.status = "start"
        self._template = None  # the last frame's blocks around the object, for the image motion
        self._appearance: np.ndarray | None = None  # the object's reference colour shares
        self._sweep = None
        if kind != "box" and len(self.start_sides) > 1:
            self._sweep = ScalePolicy(self.start_sides, calibration=self.calibration, frame_size=self.frame_size)
        self._plan: tuple[Window, str, int | None] | None = None

    @property
    def started(self) -> bool:
        return self.state is not None

    def _start_plan(self, geometry: FrameGeometry):
        if self.kind == "box":
            return sensor_roi(self.prompt, "box", geometry), "start: box", None
        if self._sweep is None:
            side = self.start_sides[0]
            return sensor_roi(self.prompt, self.kind, geometry, window_size=side), "start: one window", side
        side, why = self._sweep.next()
        return sensor_roi(self.prompt, self.kind, geometry, window_size=side), f"start: {why}", side

    # -- the policy -----------------------------------------------------------------------------

    def plan(self, geometry):
        if self._plan is None:
            if self.state is None:
                self._plan = self._start_plan(geometry)
            else:
                win = follow_window(self.state, geometry.frame_size, self.track_policy)
                why = "follow" if self.state.lost == 0 else f"re-acquire {self.state.lost}"
                self._plan = (frame_window_roi(win, geometry), why, None)
        return self._plan[0]

    def _frame(self, frame, geometry):
        """``frame`` when it is a frame of ``geometry``'s size (HxWx3), else None."""
        if frame is None or not self.needs_frame:
            return None
        frame = np.asarray(frame)
        width, height = geometry.frame_size
        return frame if frame.ndim == 3 and frame.shape[:2] == (height, width) else None

    def _remember(self, frame, mask, accepted: bool, counts=None, seen=None):
        """Keep what the next frame's image motion needs of this frame (the blocks around the
        object, weighted by its mask when accepted; ``seen``: the blocks this frame's search read),
        and blend the accepted mask's colours (``counts``; the first mask: all its pixels) into the
        object's reference."""
        from ..track import appearance as A
        from ..track import motion as M

        self._template = M.object_template(self.state, frame, mask if accepted else None, self.track_policy, seen)
        if frame is None:
            return
        if accepted and self.track_policy.uses_appearance:
            if self._appearance is None:
                first = A.histogram(frame, mask)
                self._appearance = None if first is None else A.normalised(first)
            elif counts is not None:
                self._appearance = A.blend(self._appearance, counts, self.track_policy.appearance_rate)

    def observe(self, logits, score, roi, geometry, frame=None):
        _, why, side = self._plan if self._plan is not None else (roi, "follow", None)
        self._plan = None
        window = roi_in_frame(roi, geometry)  # the window the network saw, frame pixels (clipped)
        side = side or int(round(max(window[2] - window[0], window[3] - window[1])))
        frame = self._frame(frame, geometry)
        mask = part = None
        if frame is not None:
            mask, part, win = window_frame_mask(logits, window, geometry.frame_size, self.threshold)
        if self.state is None:
            self._appearance = None
            report = self._observe_start(logits, score, window, side, why)
            if self.state is not None:
                self._remember(frame, mask, True)
            return report
        from ..track import appearance as A
        from ..track import motion as M

        shift, seen = M.template_shift(self.state, self._template, frame, self.track_policy)
        counts = similarity = None
        if self._appearance is not None and part is not None:
            counts = A.window_histogram(frame, part, A.sample_step(win.width))  # as the Tracker reads it
            similarity = None if counts is None else A.similarity(counts, self._appearance)
        self.state, self.status, accepted = follow_step(
            self.state, logits, window, score, self.track_policy, self.threshold, shift, similarity
        )
        self._remember(frame, mask, accepted, counts, seen)
        text = scale_text(side, why, score) + f"; state {self.status}"
        return FrameReport(text, side, why, score, state=self.status, accepted=accepted)

    def _observe_start(self, logits, score, window, side, why):
        from ..track import policy as P

        compared = score
        if self._sweep is not None:
            compared = self._sweep.update(logits, score)
            if why.startswith("start: sweep"):  # the sweep still runs: nothing to follow yet
                return FrameReport(scale_text(side, why, compared) + "; state start", side, why, compared, "start")
        obs = P.observe(logits, window, score, self.threshold)
        if obs.empty:  # nothing at the prompt: try again from it
            if self._sweep is not None:
                self._sweep.reset("empty mask at the prompt")
            text = scale_text(side, why, compared) + "; state start (empty mask)"
            return FrameReport(text, side, why, compared, "start", accepted=False)
        self.state = P.start_state(obs, self.track_policy)
        self.status = "tracking"
        return FrameReport(scale_text(side, why, compared) + "; state tracking", side, why, compared, "tracking")

    @property
    def marker(self):
        return (self.prompt, self.kind) if self.state is None else (None, None)
