"""Predictor: an image plus prompts in, full-size masks out.

Usage::

    from picosam2 import Predictor
    predictor = Predictor.from_pretrained()          # the shipped default weights
    result = predictor.predict("photo.jpg", points=[[320, 240]], boxes=[[10, 20, 200, 180]])
    result.masks      # (N, H, W) bool, one per prompt: points first, then boxes
    result.logits     # (N, S, S) float32 window logits (S = config.input_size)
    result.scores     # (N,) predicted IoU, or None for weights without a quality head
    result.windows    # N Window rectangles in image pixels

Scale-aware clicks: a point is tried at several centred window sizes (``point_scales="auto"``:
96 px up to the image's longer side, :func:`picosam2.prompts.auto_point_scales`) in the same
batch, and the mask with the highest predicted IoU is kept (weights without a quality head use
the border rule of :mod:`picosam2.selection`, or their score calibration when they have one). Weights that recommend it
(``config.extra["point_scales"]``) make it the default; ``multimask=True`` returns every
candidate with its score instead (as SAM's ``multimask_output``).

Prompt shapes (all in full-image pixels, x to the right, y down):

* ``points``: ``(N, 2)`` array-like of ``[x, y]``. **Each point is its own prompt** and gives
  its own mask (PicoSAM2 takes one positive click per object; there are no negative points).
* ``boxes``: ``(M, 4)`` array-like of ``[x0, y0, x1, y1]`` (corners, XYXY).

All prompts of one image go through the network in one batch. :meth:`Predictor.set_image`
keeps an image so that it is converted once and prompted many times.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from .errors import UsageError
from .image_io import load_image
from .prompts import (
    MODEL_SIZE,
    ClickScales,
    PromptError,
    Window,
    crop_images,
    parse_point_scales,
    point_windows,
    window_for_prompt,
    window_mask,
)
from .runtime import Backend, RuntimeOutput, concat_outputs, load_backend, run_crops
from .runtime import normalize_batch as normalize_batch  # noqa: F401 - kept importable from here
from .selection import ScoreCalibration, choose_candidate

__all__ = ["MAX_WINDOWS", "ClickScales", "Prediction", "Predictor", "UntrainedWeightsWarning", "WindowLimitError"]

#: Default cap on windows per :meth:`Predictor.predict` call (``max_windows``; the CLI's
#: ``--max-windows``): the work of a call is the model's cost per window times the windows (a
#: click tries one window per size, up to 8 under ``"auto"``; a box one). Memory does not grow
#: with the count (masks are made one window at a time). 2,000 windows take tens of seconds on
#: a laptop CPU.
MAX_WINDOWS = 2000
#: Default ``reducing_gap`` of :class:`Predictor` (see :func:`~picosam2.prompts.crop_images`).
REDUCING_GAP: float | None = 2.0


class UntrainedWeightsWarning(UserWarning):
    """The weights in use were never trained: masks are meaningless."""


class WindowLimitError(PromptError):
    """A request that would run more windows than the cap allows.

    Attributes:
        windows: what the request would cost; ``limit``: the cap; ``cheaper``: ``(setting,
        windows)`` pairs of click sizes that would cost less (e.g. ``("auto:2", 2002)``).
    """

    def __init__(self, message: str, windows: int, limit: int, cheaper: list[tuple[str, int]]):
        super().__init__(message)
        self.windows, self.limit, self.cheaper = windows, limit, cheaper


@dataclass
class Prediction:
    """The answer to one :meth:`Predictor.predict` call for one image and N prompts (points first,
    then boxes). Masks are made on demand from the window logits, one window at a time:
    :meth:`union`, :meth:`mask` and :meth:`parts` cost memory in the image's size whatever the
    number of prompts; :attr:`masks` stacks them all.

    Attributes:
        logits: (N, S, S) float32 window logits (S = the model's input size).
        windows: the N :class:`~picosam2.prompts.Window` rectangles, in image pixels.
        kinds: ``"point"`` or ``"box"``, per prompt.
        image_size: (width, height) of the image.
        threshold: logit above which a pixel is in a mask.
        scores: (N,) float32 predicted mask IoU in [0, 1] when the weights have a quality head,
            else ``None``. A scale-aware click's candidates carry the calibrated score
            (:class:`~picosam2.selection.ScoreCalibration`) when the weights have one.
        prompt_index: (N,) int, the prompt each mask answers (``multimask`` gives several masks
            per point prompt, smallest window first); ``None`` means mask ``k`` answers prompt ``k``.
        reasons: per mask, how its window was chosen: ``"fixed"`` (one window), ``"score"``
            (highest predicted IoU among the scales), ``"border"`` (no score: the smallest window
            whose mask ends inside it), ``"candidate"`` (multimask) or ``"box"``.
    """

    logits: np.ndarray
    windows: list[Window] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    image_size: tuple[int, int] = (0, 0)
    threshold: float = 0.0
    scores: np.ndarray | None = None
    prompt_index: np.ndarray | None = None
    reasons: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.windows)

    def parts(self):
        """Per prompt, ``(slices, bool patch)``: the mask is the patch at ``slices`` and False
        elsewhere (``None`` when the window misses the image)."""
        for lg, win in zip(self.logits, self.windows):
            yield window_mask(lg, win, self.image_size, self.threshold)

    def mask(self, k: int) -> np.ndarray:
        """Full-size (H, W) boolean mask of prompt ``k``."""
        width, height = self.image_size
        out = np.zeros((height, width), bool)
        part = window_mask(self.logits[k], self.windows[k], self.image_size, self.threshold)
        if part is not None:
            out[part[0]] = part[1]
        return out

    @property
    def masks(self) -> np.ndarray:
        """(N, H, W) bool, one full-size mask per prompt (N times the image: prefer :meth:`union`,
        :meth:`mask` or :meth:`parts` for many prompts)."""
        width, height = self.image_size
        return np.stack([self.mask(k) for k in range(len(self))]) if len(self) else np.zeros((0, height, width), bool)

    def union(self) -> np.ndarray:
        """(H, W) bool: the union of all prompts' masks."""
        width, height = self.image_size
        out = np.zeros((height, width), bool)
        for part in self.parts():
            if part is not None:
                out[part[0]] |= part[1]
        return out


def _as_prompt_array(values, width: int, name: str) -> np.ndarray:
    if values is None:
        return np.zeros((0, width), dtype=np.float64)
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PromptError(f"{name} must be numbers, got {values!r}") from exc
    if arr.size == 0:
        return np.zeros((0, width), dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == width:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != width:
        raise PromptError(f"{name} must have shape (N, {width}), got {arr.shape}")
    return arr


class Predictor:
    """Prompted segmentation with a PicoSAM2 model, on any backend (:mod:`picosam2.runtime`).

    Args:
        model: a PyTorch :class:`~picosam2.models.PicoSAM2` (run with the torch backend); or
        backend: any :class:`~picosam2.runtime.Backend` (e.g. from :func:`~picosam2.runtime.load_backend`).
        window_size, point_mode, point_scales, multimask: shortcuts for ``clicks`` (kept for
            existing callers): ``window_size=W`` is ``ClickScales((W,))``, ``point_scales`` its
            ``sizes`` (``None``/``"fixed"``: one ``window_size`` window; ``"default"``: what the
            weights recommend, unless a ``window_size`` is given).
        box_padding: margin added on each side of a box, as a fraction of its longer side.
        threshold: logit above which a pixel is in the mask (0 = probability 0.5).
        batch_size: windows per backend call.
        max_prompts: most prompts per call (``None``: no cap; the work is bounded by ``max_windows``).
        reducing_gap: cut windows more than ``2 * reducing_gap`` times the model input from a
            box-reduced image (:func:`~picosam2.prompts.crop_images`): a whole-image window
            costs a few hundred pixels a side instead of the image; ``None`` cuts every window
            exactly as :func:`~picosam2.prompts.crop_image` (as training does).
        clicks: how a click becomes windows, one :class:`~picosam2.prompts.ClickScales` (sizes,
            mode, multimask); ``None``: what the weights recommend
            (:func:`recommended_clicks`), as changed by the shortcuts above.
        max_windows: most windows one :meth:`predict` call may run (:data:`MAX_WINDOWS`; ``None``:
            no cap). A click costs one window per size, a box one; a request over the cap raises
            :class:`WindowLimitError` before anything runs, saying what it would cost.
        progress: show a progress bar over the windows on a terminal when a call runs several batches.
    """

    def __init__(
        self,
        model=None,
        backend: Backend | None = None,
        window_size: int | None = None,
        point_mode: str | None = None,
        box_padding: float = 0.1,
        threshold: float = 0.0,
        batch_size: int = 64,
        max_prompts: int | None = None,
        point_scales="default",
        multimask: bool | None = None,
        reducing_gap: float | None = REDUCING_GAP,
        *,
        clicks: ClickScales | None = None,
        max_windows: int | None = MAX_WINDOWS,
        progress: bool = False,
    ):
        if backend is None:
            if model is None:
                raise UsageError("give a model or a backend")
            backend = load_backend(model)
        self.backend = backend
        self.config = backend.config
        self.input_size = self.config.input_size
        self.clicks = _click_options(self.config, clicks, window_size, point_scales, point_mode, multimask)
        self.box_padding = box_padding
        self.threshold = threshold
        self.batch_size = batch_size
        self.max_prompts = max_prompts
        self.max_windows = max_windows
        self.progress = progress
        self.reducing_gap = reducing_gap
        #: turns the network's score of a click's candidates into the one that chooses (None: raw)
        self.score_calibration = ScoreCalibration.from_config(self.config)
        self._image: np.ndarray | None = None

    # the click options, readable (and, for existing callers, settable) one by one
    @property
    def window_size(self) -> int:
        """Side of a click's window when it tries one size; else the weights' recommended side."""
        return self.clicks.single or recommended_window_size(self.config)

    @property
    def point_mode(self) -> str:
        """``"centered"`` or ``"paper"`` (see :class:`~picosam2.prompts.ClickScales`)."""
        return self.clicks.mode

    @property
    def point_scales(self):
        """The click sizes when a click tries several (``"auto"``, ``"auto:N"`` or a list of
        sides), ``None`` when it tries one window (:attr:`window_size`)."""
        sizes = self.clicks.sizes
        return None if self.clicks.single is not None else (sizes if isinstance(sizes, str) else list(sizes))

    @property
    def multimask(self) -> bool:
        """Whether a click returns every size's mask (with its score) instead of the best one."""
        return self.clicks.multimask

    @multimask.setter
    def multimask(self, value: bool) -> None:
        self.clicks = replace(self.clicks, multimask=bool(value))

    def window_cost(self, image_size, n_points: int, n_boxes: int) -> int:
        """Windows a call with ``n_points`` clicks and ``n_boxes`` boxes runs on an image of
        ``image_size`` = (width, height): each click one per size, each box one."""
        return n_points * self.clicks.count(image_size) + n_boxes

    def check_cost(self, image_size, n_points: int, n_boxes: int) -> int:
        """The windows of such a call (:meth:`window_cost`).

        Raises:
            WindowLimitError: more than :attr:`max_windows`; the message says what the request
                costs and how to ask for fewer.
        """
        cost = self.window_cost(image_size, n_points, n_boxes)
        if self.max_windows is None or cost <= self.max_windows:
            return cost
        per_click = self.clicks.count(image_size)
        cheaper = [(f"auto:{k}", n_points * k + n_boxes) for k in (4, 2) if 1 < k < per_click]
        if per_click > 1:
            cheaper.append(("fixed", n_points + n_boxes))
        cheaper = [(name, c) for name, c in cheaper if c <= self.max_windows] or cheaper[-1:]
        ways = " or ".join(f"{name} ({c:,} windows)" for name, c in cheaper)
        ask = (
            f"point scales {ways}, " if ways else ""
        ) + "fewer prompts, or a higher cap (--max-windows / max_windows)"
        raise WindowLimitError(
            f"this request costs {cost:,} windows ({n_points:,} clicks x {per_click} window sizes + "
            f"{n_boxes:,} boxes), over the cap of {self.max_windows:,} per call; ask for fewer: {ask}",
            cost,
            self.max_windows,
            cheaper,
        )

    @classmethod
    def from_pretrained(
        cls,
        weights=None,
        backend: str | None = None,
        threads: int | None = None,
        revision: str | None = None,
        warn_untrained: bool = True,
        **kwargs,
    ) -> Predictor:
        """A predictor for shipped, local, Hub or exported weights.

        Args:
            weights: ``None`` (the shipped default), a name from
                :func:`~picosam2.models.list_pretrained`, a weights folder or ``.safetensors`` file,
                a Hugging Face Hub repository ``hf-hub:owner/name``, or an exported ``.onnx`` / ``.xml`` /
                ``.tflite`` file.
            backend: ``torch``, ``onnx``, ``openvino`` or ``tflite``; ``None`` picks it from the file
                name (torch for weights, onnx for ``.onnx``...).
            threads: runtime threads (``None``: the runtime's default).
            revision: Hub revision (branch, tag or commit) to pin, for Hub names.
            warn_untrained: warn (:class:`UntrainedWeightsWarning`) when the weights say they
                were never trained.
            **kwargs: passed to :class:`Predictor` (``clicks``, ``max_windows``, ``window_size``...).

        Returns:
            A :class:`Predictor`.

        Raises:
            WeightsError: weights that cannot be found or read.
            BackendError: a backend that is not installed or cannot load the file.
        """
        from .models.registry import is_trained, resolve_weights

        if weights is None or isinstance(weights, (str, os.PathLike)):
            weights = resolve_weights(weights, revision=revision)
        runner = load_backend(weights, backend=backend, threads=threads)
        if warn_untrained and not is_trained(runner.metadata.get("weights", {})):
            warnings.warn(
                "these weights are an UNTRAINED placeholder: the masks mean nothing",
                UntrainedWeightsWarning,
                stacklevel=2,
            )
        return cls(backend=runner, **kwargs)

    def set_image(self, image) -> np.ndarray:
        """Load and keep ``image`` (path, PIL image or array) for :meth:`predict` calls without one.

        Returns:
            The image as (H, W, 3) uint8 RGB.
        """
        self._image = load_image(image)
        return self._image

    def windows(self, image_size, points=None, boxes=None) -> tuple[list[Window], list[str]]:
        """The windows of the prompts on an image of ``image_size`` = (width, height), and their kinds."""
        pts = _as_prompt_array(points, 2, "points")
        bxs = _as_prompt_array(boxes, 4, "boxes")
        if self.max_prompts is not None and len(pts) + len(bxs) > self.max_prompts:
            raise PromptError(
                f"{len(pts) + len(bxs)} prompts: at most {self.max_prompts} per call (raise the max_prompts cap)"
            )
        self.check_cost(image_size, len(pts), len(bxs))
        wins = [window_for_prompt(p, image_size, "point", self.window_size, self.point_mode) for p in pts]
        wins += [window_for_prompt(b, image_size, "box", box_padding=self.box_padding) for b in bxs]
        return wins, ["point"] * len(pts) + ["box"] * len(bxs)

    def run_windows(self, image: np.ndarray, windows: list[Window]) -> RuntimeOutput:
        """Run the model on windows of an (H, W, 3) uint8 image, ``batch_size`` at a time."""
        from .progress import progress_bar

        size = self.input_size
        outs = []
        bar = progress_bar(
            total=len(windows), desc="windows", unit="window", enabled=self.progress and len(windows) > self.batch_size
        )
        for i in range(0, len(windows), self.batch_size):
            crops = crop_images(image, windows[i : i + self.batch_size], size, self.reducing_gap)
            outs.append(run_crops(self.backend, crops))
            bar.update(len(crops))
        bar.close()
        return concat_outputs(outs, size)

    def predict_windows(self, image: np.ndarray, windows: list[Window]) -> np.ndarray:
        """Window logits (N, S, S) for windows of an (H, W, 3) uint8 image."""
        return self.run_windows(image, windows).logits

    def predict(self, image=None, points=None, boxes=None) -> Prediction:
        """Segment the object of each prompt.

        Args:
            image: a path, PIL image or (H, W[, 3]) array; ``None`` uses the one from :meth:`set_image`.
            points: (N, 2) ``[x, y]`` in image pixels, one object per point (a single point may be flat).
            boxes: (M, 4) ``[x0, y0, x1, y1]`` in image pixels.

        Returns:
            A :class:`Prediction` with N + M masks (points first).

        Raises:
            PromptError: no prompt, a prompt of the wrong shape or outside the image.
            ImageError: an image that cannot be read.
        """
        if image is None:
            if self._image is None:
                raise PromptError("no image: pass one or call set_image first")
            arr = self._image
        else:
            arr = load_image(image)
        height, width = arr.shape[:2]
        if self.clicks.single is not None and not self.multimask:
            wins, kinds = self.windows((width, height), points, boxes)
            if not wins:
                raise PromptError("give at least one point or box")
            out = self.run_windows(arr, wins)
            reasons = ["fixed" if k == "point" else "box" for k in kinds]
            return Prediction(out.logits, wins, kinds, (width, height), self.threshold, out.scores, None, reasons)
        return self._predict_scales(arr, points, boxes)

    def predict_in(self, image, windows, kind: str = "point") -> Prediction:
        """Segment what lies at the centre of each of the given ``windows`` (:class:`Window`, image
        pixels) with no rule from a prompt to a window: a :class:`Prediction` with one mask per
        window, its ``kinds`` all ``kind`` (``"point"`` or ``"box"``). Followers that choose their
        own windows (:class:`picosam2.track.Tracker`) and benchmarks use it."""
        if kind not in ("point", "box"):
            raise PromptError(f"kind must be 'point' or 'box', got {kind!r}")
        wins = list(windows)
        if not wins:
            raise PromptError("give at least one window")
        arr = load_image(image) if not isinstance(image, np.ndarray) else image
        height, width = arr.shape[:2]
        out = self.run_windows(arr, wins)
        reasons = ["fixed" if kind == "point" else "box"] * len(wins)
        return Prediction(
            out.logits, wins, [kind] * len(wins), (width, height), self.threshold, out.scores, None, reasons
        )

    def _predict_scales(self, arr: np.ndarray, points, boxes) -> Prediction:
        """Every point at each of its window sizes, in one batch with the boxes; then per point
        the best-scored candidate (or all of them with ``multimask``)."""
        height, width = arr.shape[:2]
        size = (width, height)
        fixed, kinds = self.windows(size, points, boxes)  # validates and caps the prompts
        if not fixed:
            raise PromptError("give at least one point or box")
        pts = _as_prompt_array(points, 2, "points")
        sizes = self.clicks.sides(size)
        groups = [point_windows(x, y, size, sizes) for x, y in pts] + [[w] for w in fixed[len(pts) :]]
        flat = [w for g in groups for w in g]
        out = self.run_windows(arr, flat)
        scores = None if out.scores is None else np.asarray(out.scores, dtype=np.float32).reshape(-1).copy()
        if scores is None and self.score_calibration is not None:
            # no quality head but a score calibration: it ranks a click's candidates from the masks
            # alone (the network's score feature is 0); the masks still carry no score
            scores = np.zeros(len(flat), np.float32)
        keep, reasons, start = [], [], 0
        for p, group in enumerate(groups):
            idx = np.arange(start, start + len(group))
            start += len(group)
            if kinds[p] == "box":
                keep.append(idx)
                reasons.append(["box"])
                continue
            if scores is not None:
                scores[idx] = self.click_scores(out.logits[idx], group, size, scores[idx])
            if self.multimask:
                keep.append(idx)
                reasons.append(["candidate"] * len(idx))
            else:
                best, why = choose_candidate(out.logits[idx], None if scores is None else scores[idx])
                keep.append(idx[best : best + 1])
                reasons.append(["fixed" if len(idx) == 1 else why])
        sel = np.concatenate(keep)
        return Prediction(
            logits=out.logits[sel],
            windows=[flat[i] for i in sel],
            kinds=[kinds[p] for p, k in enumerate(keep) for _ in k],
            image_size=size,
            threshold=self.threshold,
            scores=None if out.scores is None else scores[sel],
            prompt_index=np.concatenate([np.full(len(k), p) for p, k in enumerate(keep)]),
            reasons=[r for rs in reasons for r in rs],
        )

    def click_scores(self, logits, windows, image_size, scores) -> np.ndarray:
        """The scores that choose among one click's candidate windows: the network's, through
        the weights' score calibration when they have one."""
        if self.score_calibration is None or len(windows) < 2:
            return np.asarray(scores, dtype=np.float32)
        return self.score_calibration(logits, windows, image_size, scores).astype(np.float32)


def recommended_clicks(config) -> ClickScales:
    """The click options the weights recommend: their ``config.extra["point_scales"]`` sizes
    when they name some (e.g. ``"auto"``), else one window of :func:`recommended_window_size`."""
    spec = parse_point_scales(recommended_point_scales(config))
    return ClickScales(spec) if spec is not None else ClickScales.fixed(recommended_window_size(config))


def _click_options(config, clicks, window_size, point_scales, point_mode, multimask) -> ClickScales:
    """:class:`ClickScales` from ``clicks`` or the weights' recommendation, changed by the
    shortcuts of :class:`Predictor` (``window_size``, ``point_scales``, ``point_mode``, ``multimask``)."""
    if window_size is not None and not (isinstance(window_size, (int, float, np.integer)) and window_size >= 1):
        raise PromptError(f"window size must be positive, got {window_size}")
    base = clicks if clicks is not None else recommended_clicks(config)
    if isinstance(point_scales, str) and point_scales == "default":
        sizes = (int(window_size),) if window_size is not None else base.sizes
    else:
        spec = parse_point_scales(point_scales)
        one = int(window_size) if window_size is not None else (base.single or recommended_window_size(config))
        sizes = (one,) if spec is None else spec
    mode = base.mode if point_mode is None else point_mode
    many = base.multimask if multimask is None else bool(multimask)
    return ClickScales(sizes, mode, many)


def recommended_point_scales(config):
    """The click scales the weights recommend (``config.extra["point_scales"]``, e.g. ``"auto"``
    for weights with a quality head trained on windows up to the whole image), else ``None``."""
    return (getattr(config, "extra", None) or {}).get("point_scales")


def recommended_window_size(config) -> int:
    """The point-window side the weights recommend (``config.extra["point_window_size"]``), else the
    paper's window, :data:`~picosam2.prompts.MODEL_SIZE`."""
    return int((getattr(config, "extra", None) or {}).get("point_window_size", MODEL_SIZE))
