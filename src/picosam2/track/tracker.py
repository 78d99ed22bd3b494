"""The :class:`Tracker`: a model plus the window policy of :mod:`picosam2.track.policy`.

Each :meth:`Tracker.update` cuts one window per followed object (a lost object's re-acquisition
sweep window instead), runs every object's windows through the model as one batch, reads each
window mask into an :class:`~picosam2.track.policy.Observation`, and lets the policy decide the
state and the next window. The network sees only the 96 x 96 windows, as on the sensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..image_io import load_image
from ..prompts import PromptError, Window, box_window, point_scales_for, window_mask
from . import appearance as A
from . import motion as M
from . import policy as P


@dataclass
class ObjectResult:
    """One object on one frame.

    Attributes:
        obj_id: the object's id.
        mask: (H, W) bool full-size mask (empty while the object is lost).
        score: the network's predicted IoU of the kept window mask (0 when lost).
        window: the kept window (or, when lost, the last window tried), ``(x0, y0, x1, y1)`` in
            image pixels; it may reach past the image.
        state: ``"tracking"``, ``"lost"`` or ``"reacquired"`` (the frame a loss ended).
        windows: windows run for this object on this frame.
    """

    obj_id: int
    mask: np.ndarray
    score: float
    window: tuple[int, int, int, int]
    state: str
    windows: int


@dataclass
class _Object:
    state: P.TrackState
    template: M.Template | None = None  #: the last frame's blocks around the object, for the image motion
    appearance: np.ndarray | None = None  #: reference colour shares (appearance.normalised)


class Tracker:
    """Follow objects through frames, one window per object and frame.

    Args:
        model: a :class:`~picosam2.Predictor`, a :class:`~picosam2.runtime.Backend`, or weights
            accepted by :meth:`~picosam2.Predictor.from_pretrained` (``None``: the shipped ones; a
            path to an ``.onnx`` / ``.xml`` runs that form).
        policy: a :class:`~picosam2.track.TrackPolicy` (``None``: the default, chosen with data).
        threads: runtime threads when ``model`` is loaded here.
        backend: runtime name when ``model`` is loaded here (``None``: from the file name).
        point_scales: the window sides a first-frame click tries (``"auto"``: scale-aware, as
            :class:`~picosam2.Predictor`; the weights' choice when ``"default"``).

    Usage::

        tracker = Tracker("model-int8.onnx")
        first = tracker.start(frame0, point=(320, 200))       # an ObjectResult on frame 0
        for frame in frames:
            for obj_id, r in tracker.update(frame).items():   # r.mask, r.state, r.window ...
                ...
    """

    def __init__(
        self,
        model=None,
        policy: P.TrackPolicy | None = None,
        threads: int | None = None,
        backend: str | None = None,
        point_scales="default",
    ):
        from ..predictor import Predictor
        from ..runtime import Backend

        if isinstance(model, Predictor):
            self.predictor = model
        elif model is not None and isinstance(model, Backend):
            self.predictor = Predictor(backend=model, point_scales=point_scales)
        else:
            self.predictor = Predictor.from_pretrained(
                model, backend=backend, threads=threads, point_scales=point_scales
            )
        self.policy = policy or P.TrackPolicy()
        self._objects: dict[int, _Object] = {}
        self._next_id = 1

    @property
    def objects(self) -> list[int]:
        """Ids of the objects being followed."""
        return list(self._objects)

    def remove(self, obj_id: int) -> None:
        """Stop following ``obj_id``."""
        if obj_id not in self._objects:
            raise UsageError(f"no object {obj_id}")
        del self._objects[obj_id]

    def reset(self) -> None:
        """Forget every object."""
        self._objects.clear()

    def state(self, obj_id: int) -> P.TrackState:
        """The policy state of ``obj_id`` (for display or to hand to another loop)."""
        return self._objects[obj_id].state

    # -- first frame --------------------------------------------------------------------------

    def start(self, frame, point=None, box=None, mask=None, obj_id: int | None = None) -> ObjectResult:
        """Start following one object on ``frame`` (HxWx3 uint8 RGB, a path or a PIL image) from a
        click ``point=(x, y)``, a ``box=(x0, y0, x1, y1)`` or a ``mask`` (HxW bool). The click is
        scale-aware (several window sides in one batch, as :class:`~picosam2.Predictor`).
        Returns the object's result on that frame; its ``obj_id`` is ``obj_id`` or the next free id."""
        image = load_image(frame) if not isinstance(frame, np.ndarray) else frame
        height, width = image.shape[:2]
        if sum(p is not None for p in (point, box, mask)) != 1:
            raise UsageError("start an object with exactly one of point=, box= or mask=")
        if obj_id is None:
            while self._next_id in self._objects:
                self._next_id += 1
            obj_id = self._next_id
        obj_id = int(obj_id)
        if obj_id in self._objects:
            raise UsageError(f"object {obj_id} is already followed")
        if mask is not None:
            m = np.asarray(mask, bool)
            if m.shape != (height, width):
                raise UsageError(f"the mask is {m.shape[1]}x{m.shape[0]}, the frame {width}x{height}")
            obs = P.observe_mask(m)
            if obs.empty:
                raise UsageError("the start mask is empty")
            win = P.window_around(obs, (width, height), self.policy)
            result = ObjectResult(obj_id, m.copy(), 1.0, win, "tracking", 0)
        else:
            if point is not None:
                pred = self.predictor.predict(image, points=[point])
                scales = self.predictor.point_scales
                windows = 1 if scales is None else len(point_scales_for(scales, (width, height)))
            else:
                win = box_window(box, (width, height), padding=self.predictor.box_padding)
                pred = self.predictor.predict_in(image, [win], kind="box")
                windows = 1
            win = pred.windows[0]
            score = None if pred.scores is None else float(pred.scores[0])
            obs = P.observe(pred.logits[0], win, score, self.predictor.threshold)
            if obs.empty:
                raise PromptError("the first frame's mask is empty: click inside the object")
            result = ObjectResult(obj_id, pred.mask(0), obs.score, win.as_tuple(), "tracking", windows)
        reference = None
        if self.policy.uses_appearance:
            counts = A.histogram(image, result.mask)
            reference = None if counts is None else A.normalised(counts)
        state = P.start_state(obs, self.policy)
        self._objects[obj_id] = _Object(state, M.object_template(state, image, result.mask, self.policy), reference)
        return result

    # -- every later frame --------------------------------------------------------------------

    def update(self, frame) -> dict[int, ObjectResult]:
        """Follow every object into ``frame`` (HxWx3 uint8 RGB): all objects' windows run as one
        batch. Returns ``{obj_id: ObjectResult}``."""
        image = load_image(frame) if not isinstance(frame, np.ndarray) else frame
        height, width = image.shape[:2]
        size = (width, height)
        plan = [(obj_id, self._windows(obj_id, obj, size)) for obj_id, obj in self._objects.items()]
        flat = [w for _, ws in plan for w in ws]
        if not flat:
            return {}
        out = self.predictor.run_windows(image, flat)
        results: dict[int, ObjectResult] = {}
        k = 0
        thr = self.predictor.threshold
        for obj_id, wins in plan:
            idx = range(k, k + len(wins))
            k += len(wins)
            obs = [
                P.observe(out.logits[i], wins[j], None if out.scores is None else out.scores[i], thr)
                for j, i in enumerate(idx)
            ]
            obj = self._objects[obj_id]
            shift, seen = self._shift(obj_id, obj, image)
            parts = [None if o.empty else window_mask(out.logits[i], w, size, thr) for o, w, i in zip(obs, wins, idx)]
            counts = [None] * len(wins)
            similarities = None
            if obj.appearance is not None:
                counts = [
                    None if p is None else A.window_histogram(image, p, A.sample_step(w.width))
                    for p, w in zip(parts, wins)
                ]
                similarities = [None if c is None else A.similarity(c, obj.appearance) for c in counts]
            best = self._choose(obj_id, obj, obs, similarities, parts)
            obj.state, status = P.update(obj.state, None if best is None else obs[best], self.policy, shift)
            mask = np.zeros((height, width), bool)
            if best is not None and parts[best] is not None:
                mask[parts[best][0]] = parts[best][1]
            # what the next frame's image motion needs of this one (the blocks, not the frame)
            obj.template = M.object_template(obj.state, image, mask, self.policy, known=seen)
            if best is None:
                results[obj_id] = ObjectResult(obj_id, mask, 0.0, wins[-1].as_tuple(), status, len(wins))
                continue
            if counts[best] is not None:
                obj.appearance = A.blend(obj.appearance, counts[best], self.policy.appearance_rate)
            results[obj_id] = ObjectResult(obj_id, mask, obs[best].score, wins[best].as_tuple(), status, len(wins))
        return results

    # -- the steps of one object's frame (evaluation references replace them with the truth) ----

    def _windows(self, obj_id: int, obj: _Object, size) -> list[Window]:
        """The windows to run for one object on this frame: the policy's."""
        return [Window(*w) for w in P.next_windows(obj.state, size, self.policy)]

    def _shift(self, obj_id: int, obj: _Object, image: np.ndarray):
        """The image's motion around one object since the last frame, and the blocks read on the
        way: :func:`picosam2.track.motion.template_shift`."""
        return M.template_shift(obj.state, obj.template, image, self.policy)

    def _choose(self, obj_id: int, obj: _Object, obs, similarities, parts) -> int | None:
        """Which of the object's window masks continues it (None: none): the policy's
        :func:`~picosam2.track.policy.best_observation`. ``parts`` are the window masks
        (:func:`picosam2.prompts.window_mask`, None where empty)."""
        return P.best_observation(obj.state, obs, self.policy, similarities)
