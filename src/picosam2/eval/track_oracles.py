"""The tracker with parts of its policy made perfect: upper references that say which part limits it.

:class:`OracleTracker` is :class:`picosam2.track.Tracker` (same model, same policy, one window an
object and frame) where the parts named in ``parts`` (:data:`ORACLE_PARTS`) read the answers:

* ``motion``: the image's motion around the object is the true motion (how far the centroid of
  its ground-truth mask moved since the last frame, when it is in view on both) instead of the
  block-matching estimate;
* ``reacquire``: while lost, the frame's window is centred on the true most interior pixel (side
  from the tracker's own size estimate), and a window mask ends the loss exactly when it overlaps
  the truth with an IoU of at least :data:`REACQUIRE_IOU`;
* ``size``: while following, the window's side is the policy's margin times the true extent
  (centred where the tracker would centre it);
* ``centre``: while following, the window is centred on the true most interior pixel (side from
  the tracker's own size estimate).

Three finer parts split two of these: ``motion-following`` is ``motion`` on the frames the object
is followed only (a lost object's centre moves with the tracker's own estimate);
``reacquire-window`` is the window half of ``reacquire`` (the lost window on the truth, a loss
ended by the tracker's own acceptance rule) and ``reacquire-accept`` its acceptance half (the
tracker's own sweep windows, a loss ended by the IoU rule above).

Everything else (the first frame, the loss rule while following, the masks) is the tracker's own;
with motion, reacquire, size and centre it is close to ``oracle-window``, which places every
window from the truth.
``picosam2 eval-video --follower tracker-oracle --oracle motion,reacquire`` runs one; comparing
them with ``tracker`` and ``oracle-window`` splits the tracker's gap to perfect placement.
"""

from __future__ import annotations

import numpy as np

from ..errors import UsageError
from ..prompts import Window
from ..track import Tracker
from ..track import policy as P

#: the parts of the policy an :class:`OracleTracker` can read from the truth
ORACLE_PARTS = ("motion", "motion-following", "reacquire", "reacquire-window", "reacquire-accept", "size", "centre")
#: parts that are a share of another one (naming both is an error)
_WITHIN = {"motion-following": "motion", "reacquire-window": "reacquire", "reacquire-accept": "reacquire"}
#: a window mask ends a loss under the ``reacquire`` oracle when its IoU with the truth reaches this
REACQUIRE_IOU = 0.3


def oracle_parts(text) -> tuple[str, ...]:
    """The parts named in ``text`` (``"motion,reacquire"`` or a sequence), checked, in
    :data:`ORACLE_PARTS` order."""
    names = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    unknown = sorted(set(names) - set(ORACLE_PARTS))
    if unknown or not names:
        raise UsageError(f"--oracle takes parts from {', '.join(ORACLE_PARTS)} (comma-separated), got {text!r}")
    for part, whole in _WITHIN.items():
        if part in names and whole in names:
            raise UsageError(f"--oracle: {part} is a share of {whole}; name one of them")
    return tuple(p for p in ORACLE_PARTS if p in names)


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


class OracleTracker(Tracker):
    """A :class:`~picosam2.track.Tracker` whose ``parts`` (:data:`ORACLE_PARTS`) come from the
    ground truth; the evaluation hands it each frame's true masks (:meth:`observe_truth`), the
    first frame's included, before :meth:`start` and :meth:`update`."""

    needs_truth = True

    def __init__(self, model=None, policy=None, parts=(), **kwargs):
        super().__init__(model, policy=policy, **kwargs)
        self.parts = oracle_parts(parts)
        self._truth: dict[int, np.ndarray] = {}
        self._before: dict[int, np.ndarray] = {}

    def observe_truth(self, masks: dict[int, np.ndarray]) -> None:
        """This frame's true masks, per object id."""
        self._before, self._truth = self._truth, {k: np.asarray(v, bool) for k, v in masks.items()}

    def _in_view(self, obj_id: int) -> np.ndarray | None:
        m = self._truth.get(obj_id)
        return m if m is not None and m.any() else None

    def _windows(self, obj_id, obj, size):
        truth = self._in_view(obj_id)
        if truth is None:
            return super()._windows(obj_id, obj, size)
        if obj.state.lost:
            if "reacquire" not in self.parts and "reacquire-window" not in self.parts:
                return super()._windows(obj_id, obj, size)
            return [Window(*P.window_at(P.observe_mask(truth).interior, obj.state.extent, size, self.policy))]
        if "size" not in self.parts and "centre" not in self.parts:
            return super()._windows(obj_id, obj, size)
        obs = P.observe_mask(truth)
        centre = obs.interior if "centre" in self.parts else P.predicted_anchor(obj.state)
        if "size" in self.parts:
            return [Window(*P.window_at(centre, P.extent_of(obs, obs.interior), size, self.policy))]
        own = super()._windows(obj_id, obj, size)[0]  # the tracker's own side, moved to the true centre
        return [Window(*P.window_at(centre, own.width / self.policy.margin, size, self.policy))]

    def _shift(self, obj_id, obj, image):
        shift, seen = super()._shift(obj_id, obj, image)
        before, now = self._before.get(obj_id), self._in_view(obj_id)
        read = "motion" in self.parts or ("motion-following" in self.parts and not obj.state.lost)
        if read and shift is not None and now is not None and before is not None and before.any():
            (x0, y0), (x1, y1) = _centroid(before), _centroid(now)
            shift = (x1 - x0, y1 - y0)
        return shift, seen

    def _choose(self, obj_id, obj, obs, similarities, parts):
        if not (("reacquire" in self.parts or "reacquire-accept" in self.parts) and obj.state.lost):
            return super()._choose(obj_id, obj, obs, similarities, parts)
        truth = self._in_view(obj_id)
        if truth is None:
            return None
        from .video import region_j

        for i, part in enumerate(parts):
            if part is None:
                continue
            mask = np.zeros_like(truth)
            mask[part[0]] = part[1]
            if region_j(mask, truth) >= REACQUIRE_IOU:
                return i
        return None
