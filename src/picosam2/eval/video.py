"""Video object segmentation evaluation in the DAVIS way: J (region), F (boundary), J&F.

Data: the DAVIS layout, ``ROOT/JPEGImages/480p/SEQ/*.jpg`` and ``ROOT/Annotations/480p/SEQ/*.png``
(one annotation per frame, same stem). An annotation is either a grey 0/255 PNG (one object:
every non-zero pixel is object 1) or a DAVIS-2017 palette PNG of object ids (0 background,
255 void: ignored by both measures). The objects of a sequence are ids 1..max of its first
annotation, as DAVIS-2017 counts them.

Measures, per object and frame (DAVIS-2017 semi-supervised definitions):

* **J**, region similarity: IoU of the predicted and true masks, void pixels left out; 1 when
  both are empty.
* **F**, boundary F-measure: both masks' one-pixel boundaries (a pixel is boundary when its
  right, lower or lower-right neighbour differs; beyond the image a pixel's neighbour is
  itself), matched within a tolerance of ``ceil(0.008 * image diagonal)`` pixels (a disc:
  Euclidean distance); precision = share of predicted boundary pixels near a true one, recall =
  share of true boundary pixels near a predicted one, F their harmonic mean. With no true
  boundary and no predicted one F = 1; with only one of them F = 0.

The first frame (given as the prompt) and the last frame are not scored, as in DAVIS-2017's
semi-supervised evaluation. Per object, over the scored frames: **mean**, **recall** (share of
frames above 0.5) and **decay** (mean of the first quarter of the frames minus the mean of the
last quarter; the four quarters are DAVIS's bins, whose edges are shared by neighbouring bins).
Overall figures average over objects (a sequence with two objects counts twice), and
J&F = (J mean + F mean) / 2.
"""

from __future__ import annotations

import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UsageError

#: the void label of DAVIS-2017 palette annotations
VOID = 255
#: DAVIS boundary tolerance, as a fraction of the image diagonal
BOUND_TH = 0.008
FRAME_EXTS = (".jpg", ".jpeg", ".png")
INIT_PROMPTS = ("click", "box", "mask")


class VideoDataError(UsageError):
    """A folder that is not in the DAVIS layout, or a sequence that cannot be evaluated."""


# -- data ------------------------------------------------------------------------------------


def read_labels(path: str | Path) -> np.ndarray:
    """An annotation PNG as a uint8 label map: palette PNGs give their indices (0 background,
    255 void), grey or colour PNGs give 1 wherever a pixel is not black (one object)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.mode == "P":
                return np.asarray(img, dtype=np.uint8)
            arr = np.asarray(img.convert("L"))
    except (OSError, ValueError) as exc:
        raise VideoDataError(f"cannot read annotation {path}: {exc}") from exc
    return (arr > 0).astype(np.uint8)


def _natural_key(path: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.stem)]


@dataclass
class Sequence:
    """One DAVIS sequence: frame files and their annotations (same stems, sorted)."""

    name: str
    frame_paths: list[Path]
    annotation_paths: list[Path]
    _first: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.frame_paths)

    def frame(self, k: int) -> np.ndarray:
        """Frame ``k`` as (H, W, 3) uint8 RGB."""
        from ..image_io import load_image

        return load_image(self.frame_paths[k])

    def labels(self, k: int) -> np.ndarray:
        """Annotation ``k`` as an (H, W) uint8 label map (0 background, ids, 255 void)."""
        if k == 0 and self._first is not None:
            return self._first
        return read_labels(self.annotation_paths[k])

    @property
    def object_ids(self) -> list[int]:
        """Ids 1..max of the first annotation (the DAVIS-2017 count of a sequence's objects)."""
        if self._first is None:
            self._first = read_labels(self.annotation_paths[0])
        present = self._first[self._first != VOID]
        top = int(present.max()) if present.size else 0
        return list(range(1, top + 1))


def read_davis(root, sequences=None, resolution: str = "480p", image_set: str | None = None) -> list[Sequence]:
    """The sequences of a DAVIS-layout folder (``JPEGImages/<resolution>/SEQ``,
    ``Annotations/<resolution>/SEQ``). ``sequences``: names to keep, in that order (default: every
    annotated sequence, sorted, or those of ``ImageSets/2017/<image_set>.txt``). Every frame needs
    an annotation of the same stem (DAVIS's train and val sets have them)."""
    root = Path(root)
    if not root.is_dir():
        raise VideoDataError(f"{root} is not a folder")
    jpeg, ann = root / "JPEGImages" / resolution, root / "Annotations" / resolution
    for d in (jpeg, ann):
        if not d.is_dir():
            have = sorted(p.name for p in d.parent.iterdir() if p.is_dir()) if d.parent.is_dir() else []
            hint = f" (it has: {', '.join(have)})" if have else ""
            raise VideoDataError(
                f"{root} is not in the DAVIS layout: {d.relative_to(root)}/ is missing{hint}; "
                "expected JPEGImages/480p/SEQ/*.jpg and Annotations/480p/SEQ/*.png"
            )
    if sequences:
        names = list(dict.fromkeys(sequences))
    elif image_set:
        listing = root / "ImageSets" / "2017" / f"{image_set}.txt"
        if not listing.is_file():
            raise VideoDataError(f"image set {image_set!r}: {listing} not found")
        names = [n.strip() for n in listing.read_text().splitlines() if n.strip()]
    else:
        names = sorted(p.name for p in ann.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not names:
            raise VideoDataError(f"no sequences in {ann}")
    out = []
    for name in names:
        fdir, adir = jpeg / name, ann / name
        if not fdir.is_dir() or not adir.is_dir():
            raise VideoDataError(f"sequence {name!r}: {fdir if not fdir.is_dir() else adir} not found")
        frames = sorted((p for p in fdir.iterdir() if p.suffix.lower() in FRAME_EXTS), key=_natural_key)
        if len(frames) < 2:
            raise VideoDataError(f"sequence {name!r}: {len(frames)} frame(s) in {fdir}; at least 2 needed")
        anns = [adir / f"{p.stem}.png" for p in frames]
        missing = [a.name for a in anns if not a.is_file()]
        if missing:
            raise VideoDataError(
                f"sequence {name!r}: {len(missing)} frame(s) without an annotation in {adir} (first: {missing[0]})"
            )
        out.append(Sequence(name, frames, anns))
    return out


# -- measures --------------------------------------------------------------------------------


def _as_bool(mask) -> np.ndarray:
    return np.asarray(mask).astype(bool)


def region_j(pred, gt, void=None) -> float:
    """Region similarity J: IoU of two masks, ``void`` pixels left out; 1.0 when both are empty."""
    pred, gt = _as_bool(pred), _as_bool(gt)
    if pred.shape != gt.shape:
        raise VideoDataError(f"mask shapes differ: {pred.shape} vs {gt.shape}")
    keep = ~_as_bool(void) if void is not None else np.ones_like(gt)
    union = int(np.count_nonzero((pred | gt) & keep))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(pred & gt & keep)) / union


def boundary_map(mask) -> np.ndarray:
    """One-pixel boundary of a mask: pixels whose right, lower or lower-right neighbour differs
    (beyond the image, a pixel's neighbour is itself), i.e. the boundary half a pixel towards
    the origin from the true edge."""
    m = _as_bool(mask)
    p = np.pad(m, ((0, 1), (0, 1)), mode="edge")
    return (m != p[:-1, 1:]) | (m != p[1:, :-1]) | (m != p[1:, 1:])


def boundary_tolerance(shape, bound_th: float = BOUND_TH) -> int:
    """Matching distance in pixels: ``bound_th`` itself when >= 1, else ``ceil(bound_th * diagonal)``."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(shape[0], shape[1])))


def _near(boundary: np.ndarray, other: np.ndarray, radius: int) -> int:
    """How many pixels of ``boundary`` lie within ``radius`` (Euclidean, a disc) of a pixel of ``other``."""
    from scipy.ndimage import distance_transform_edt

    ys, xs = np.nonzero(boundary)
    oy, ox = np.nonzero(other)
    # only the box around both (plus the radius) matters
    y0, y1 = max(min(ys.min(), oy.min()) - radius - 1, 0), min(max(ys.max(), oy.max()) + radius + 2, boundary.shape[0])
    x0, x1 = max(min(xs.min(), ox.min()) - radius - 1, 0), min(max(xs.max(), ox.max()) + radius + 2, boundary.shape[1])
    dist = distance_transform_edt(~other[y0:y1, x0:x1])
    return int(np.count_nonzero(dist[ys - y0, xs - x0] <= radius))


def boundary_f(pred, gt, void=None, bound_th: float = BOUND_TH) -> float:
    """Boundary F-measure (DAVIS): boundaries matched within :func:`boundary_tolerance` pixels."""
    pred, gt = _as_bool(pred), _as_bool(gt)
    if pred.shape != gt.shape:
        raise VideoDataError(f"mask shapes differ: {pred.shape} vs {gt.shape}")
    if void is not None:
        keep = ~_as_bool(void)
        pred, gt = pred & keep, gt & keep
    bp, bg = boundary_map(pred), boundary_map(gt)
    n_p, n_g = int(np.count_nonzero(bp)), int(np.count_nonzero(bg))
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    r = boundary_tolerance(gt.shape, bound_th)
    precision = _near(bp, bg, r) / n_p
    recall = _near(bg, bp, r) / n_g
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def statistics(values) -> dict:
    """Mean, recall (share > 0.5) and decay (first quarter's mean minus the last quarter's) of
    per-frame values, with DAVIS's quarter bins (neighbouring bins share their edge frame)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "recall": None, "decay": None}
    edges = np.round(np.linspace(1, v.size, 5) + 1e-10).astype(int) - 1
    bins = [v[edges[i] : edges[i + 1] + 1] for i in range(4)]
    return {
        "mean": float(v.mean()),
        "recall": float(np.mean(v > 0.5)),
        "decay": float(bins[0].mean() - bins[3].mean()),
    }


def score_sequence(pred_labels: list[np.ndarray], gt_labels: list[np.ndarray], object_ids, bound_th=BOUND_TH):
    """Per-frame J and F of each object over the scored frames (all but the first and last).
    ``pred_labels``/``gt_labels``: per frame an (H, W) label map. Returns {id: (J list, F list)}."""
    out = {}
    for oid in object_ids:
        js, fs = [], []
        for pred, gt in zip(pred_labels[1:-1], gt_labels[1:-1]):
            void = gt == VOID
            js.append(region_j(pred == oid, gt == oid, void))
            fs.append(boundary_f(pred == oid, gt == oid, void, bound_th))
        out[oid] = (js, fs)
    return out


# -- followers -------------------------------------------------------------------------------


@dataclass
class FollowResult:
    """What a follower answers per object and frame (the fields of ``picosam2.track.ObjectResult``
    that the evaluation reads)."""

    obj_id: int
    mask: np.ndarray
    score: float = 1.0
    windows: int = 0
    window: tuple | None = None
    state: str = "tracking"


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Pixel-extent box ``(x0, y0, x1, y1)`` of a mask (x1, y1 exclusive), ``None`` when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def grow_box(box, factor: float = 1.2):
    """A box grown about its centre to ``factor`` times its width and height."""
    x0, y0, x1, y1 = box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * factor / 2, (y1 - y0) * factor / 2
    return cx - hw, cy - hh, cx + hw, cy + hh


class _CountingPredictor:
    """A :class:`~picosam2.predictor.Predictor` whose model windows are counted (its
    ``run_windows`` is wrapped once, however many followers share it)."""

    def __init__(self, predictor):
        self.predictor = predictor
        if not getattr(predictor, "_windows_counted", False):
            run = predictor.run_windows

            def counted(image, windows):
                predictor._windows_run += len(windows)
                return run(image, windows)

            predictor._windows_run = 0
            predictor.run_windows = counted
            predictor._windows_counted = True

    def predict(self, image, points=None, boxes=None):
        before = self.predictor._windows_run
        pred = self.predictor.predict(image, points=points, boxes=boxes)
        score = 1.0 if pred.scores is None else float(pred.scores[0])
        return pred.mask(0), score, self.predictor._windows_run - before, pred.windows[0]


class _Baseline:
    """Shared start/remove of the two baselines (one Predictor call per object and frame)."""

    def __init__(self, predictor):
        self.counter = _CountingPredictor(predictor)
        self.masks: dict[int, np.ndarray] = {}

    @property
    def objects(self) -> list[int]:
        return list(self.masks)

    def remove(self, obj_id: int) -> None:
        self.masks.pop(obj_id, None)

    def start(self, frame, point=None, box=None, mask=None, obj_id=None) -> FollowResult:
        obj_id = len(self.masks) + 1 if obj_id is None else int(obj_id)
        if mask is not None:
            m, score, n, win = np.asarray(mask, bool), 1.0, 0, None
        else:
            m, score, n, win = self.counter.predict(
                frame, points=None if point is None else [point], boxes=None if box is None else [box]
            )
        self.masks[obj_id] = m
        return FollowResult(obj_id, m, score, n, _win(win))


def _win(win):
    return None if win is None else tuple(int(v) for v in win.as_tuple())


class NaiveBoxFollower(_Baseline):
    """Each frame: the box of the previous predicted mask, grown 20 %, as a box prompt (an
    empty previous mask keeps the last box)."""

    def __init__(self, predictor, grow: float = 1.2):
        super().__init__(predictor)
        self.grow = grow
        self.boxes: dict[int, tuple] = {}

    def start(self, frame, point=None, box=None, mask=None, obj_id=None) -> FollowResult:
        r = super().start(frame, point=point, box=box, mask=mask, obj_id=obj_id)
        self.boxes[r.obj_id] = mask_box(r.mask) or box or (point[0] - 48, point[1] - 48, point[0] + 48, point[1] + 48)
        return r

    def update(self, frame) -> dict[int, FollowResult]:
        out = {}
        for oid, prev in self.masks.items():
            b = mask_box(prev)
            if b is not None:
                self.boxes[oid] = b
            m, score, n, win = self.counter.predict(frame, boxes=[grow_box(self.boxes[oid], self.grow)])
            self.masks[oid] = m
            out[oid] = FollowResult(oid, m, score, n, _win(win), "tracking" if m.any() else "lost")
        return out


class NaiveClickFollower(_Baseline):
    """Each frame a scale-aware click at the most interior pixel of the previous predicted mask
    (an empty previous mask keeps the last click)."""

    def __init__(self, predictor):
        super().__init__(predictor)
        self.points: dict[int, tuple] = {}

    def start(self, frame, point=None, box=None, mask=None, obj_id=None) -> FollowResult:
        r = super().start(frame, point=point, box=box, mask=mask, obj_id=obj_id)
        self.points[r.obj_id] = point
        return r

    def update(self, frame) -> dict[int, FollowResult]:
        from ..data.prompt_rules import interior_point

        out = {}
        for oid, prev in self.masks.items():
            if prev.any():
                self.points[oid] = interior_point(prev)
            if self.points[oid] is None:  # started from a box or mask that was empty
                m, score, n, win = np.zeros(frame.shape[:2], bool), 0.0, 0, None
            else:
                m, score, n, win = self.counter.predict(frame, points=[self.points[oid]])
            self.masks[oid] = m
            out[oid] = FollowResult(oid, m, score, n, _win(win), "tracking" if m.any() else "lost")
        return out


class _TruthBaseline(_Baseline):
    """A reference that reads the answers: the evaluation hands it each frame's true masks
    (:meth:`observe_truth`) before :meth:`update`."""

    needs_truth = True

    def __init__(self, predictor):
        super().__init__(predictor)
        self.truth: dict[int, np.ndarray] = {}

    def observe_truth(self, masks: dict[int, np.ndarray]) -> None:
        self.truth = masks


class OracleClickFollower(_TruthBaseline):
    """Each frame a scale-aware click at the TRUE most interior pixel of the object's
    ground-truth mask (an upper reference for click-based following; it reads the answers)."""

    def update(self, frame) -> dict[int, FollowResult]:
        from ..data.prompt_rules import interior_point

        out = {}
        for oid in self.masks:
            gt = self.truth.get(oid)
            if gt is None or not gt.any():
                m = np.zeros(frame.shape[:2], bool)
                out[oid] = FollowResult(oid, m, 0.0, 0, None, "lost")
            else:
                m, score, n, win = self.counter.predict(frame, points=[interior_point(gt)])
                out[oid] = FollowResult(oid, m, score, n, _win(win))
            self.masks[oid] = m
        return out


class OracleWindowFollower(_TruthBaseline):
    """Each frame ONE window placed from the truth: centred on the most interior pixel of the
    object's ground-truth mask, its side the policy's ``margin`` times the true extent (twice the
    largest distance from that pixel to the mask box's sides), within the policy's side limits.
    What a one-window tracker would get if it always knew where the object is and how large (an
    upper reference for the tracker's placement; it reads the answers)."""

    def __init__(self, predictor, policy=None):
        from ..track import TrackPolicy

        super().__init__(predictor)
        self.policy = policy or TrackPolicy()

    def update(self, frame) -> dict[int, FollowResult]:
        from ..prompts import Window, window_mask
        from ..track import policy as P

        height, width = frame.shape[:2]
        plan = {}  # object id -> its window, for the objects in view
        for oid in self.masks:
            obs = P.observe_mask(self.truth[oid]) if oid in self.truth else P.EMPTY
            if not obs.empty:
                plan[oid] = Window(*P.window_around(obs, (width, height), self.policy))
        predictor = self.counter.predictor
        run = predictor.run_windows(frame, list(plan.values())) if plan else None
        index = {oid: i for i, oid in enumerate(plan)}
        out = {}
        for oid in self.masks:
            m = np.zeros((height, width), bool)
            if oid not in plan:
                out[oid] = FollowResult(oid, m, 0.0, 0, None, "lost")
            else:
                i, win = index[oid], plan[oid]
                slices, part = window_mask(run.logits[i], win, (width, height), predictor.threshold)
                m[slices] = part
                score = 1.0 if run.scores is None else float(run.scores[i])
                out[oid] = FollowResult(oid, m, score, 1, _win(win))
            self.masks[oid] = m
        return out


FOLLOWERS = ("tracker", "naive-box", "naive-click", "oracle-click", "oracle-window", "tracker-oracle")


def make_follower(kind: str, predictor, policy=None, oracle=()):
    """A follower over ``predictor``: ``tracker`` (:class:`picosam2.track.Tracker`), or a
    baseline: ``naive-box``, ``naive-click``, ``oracle-click`` or ``oracle-window`` (which, like
    the tracker, takes ``policy``: its ``margin`` and side limits), or ``tracker-oracle``: the
    tracker with the parts ``oracle`` of its policy read from the truth
    (:class:`picosam2.eval.track_oracles.OracleTracker`)."""
    if kind == "tracker":
        try:
            from ..track import Tracker
        except ImportError as exc:
            raise UsageError(f"the tracker is not available: {exc}") from exc
        return Tracker(predictor, policy=policy) if policy is not None else Tracker(predictor)
    if kind == "naive-box":
        return NaiveBoxFollower(predictor)
    if kind == "naive-click":
        return NaiveClickFollower(predictor)
    if kind == "oracle-click":
        return OracleClickFollower(predictor)
    if kind == "oracle-window":
        return OracleWindowFollower(predictor, policy)
    if kind == "tracker-oracle":
        from .track_oracles import OracleTracker

        return OracleTracker(predictor, policy=policy, parts=oracle)
    raise UsageError(f"unknown follower {kind!r}: choose from {', '.join(FOLLOWERS)}")


# -- evaluation ------------------------------------------------------------------------------


def first_prompt(mask: np.ndarray, init: str) -> dict:
    """The first-frame prompt of an object: ``click`` = its most interior pixel, ``box`` = its
    pixel-extent box, ``mask`` = the mask itself."""
    from ..data.prompt_rules import interior_point

    if init == "click":
        return {"point": interior_point(mask)}
    if init == "box":
        return {"box": mask_box(mask)}
    if init == "mask":
        return {"mask": mask}
    raise UsageError(f"unknown --init {init!r}: choose from {', '.join(INIT_PROMPTS)}")


def _label_map(results: dict, shape) -> np.ndarray:
    """One label map from per-object masks: where masks overlap, the higher score wins."""
    out = np.zeros(shape, np.uint8)
    for r in sorted(results.values(), key=lambda r: float(r.score)):
        out[np.asarray(r.mask, bool)] = r.obj_id
    return out


def _fmt(v, nd=4):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), nd)


#: where a follower's window was on a frame (:func:`placement_of`), in report order
PLACEMENTS = ("on", "off", "lost", "absent-empty", "absent-mask")
#: a following window is "on" the object when its centre is within this many true extents of the
#: true most interior pixel
ON_TARGET = 0.5


def placement_of(result, truth: np.ndarray) -> str:
    """Where ``result`` (a follower's answer for one object on one frame) put the object, against
    its true mask ``truth``: in view, ``"on"`` (a window centred within :data:`ON_TARGET` true
    extents of the true most interior pixel, the extent as the tracker measures it; a follower
    without windows is judged by its mask's most interior pixel), ``"off"`` (further away) or
    ``"lost"`` (the follower says it lost the object, or has neither window nor mask); out
    of view, ``"absent-empty"`` (an empty mask, as it should be) or ``"absent-mask"``."""
    from ..track import policy as P

    if not truth.any():
        return "absent-mask" if np.asarray(result.mask).any() else "absent-empty"
    mask = np.asarray(result.mask, bool)
    if getattr(result, "state", "tracking") == "lost" or (result.window is None and not mask.any()):
        return "lost"
    if result.window is not None:
        x0, y0, x1, y1 = result.window
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    else:  # a follower without windows: its mask's most interior pixel
        cx, cy = P.observe_mask(mask).interior
    obs = P.observe_mask(truth)
    ix, iy = obs.interior
    far = math.hypot(cx - ix, cy - iy)
    return "on" if far <= ON_TARGET * P.extent_of(obs, obs.interior) else "off"


def placement_summary(places: list[str], js: list[float]) -> dict:
    """Per placement (:data:`PLACEMENTS`): the share of the frames and the mean J on them."""
    out = {}
    for name in PLACEMENTS:
        picked = [j for p, j in zip(places, js) if p == name and j is not None]
        out[name] = {
            "share": _fmt(len(picked) / len(places)) if places else None,
            "J": _fmt(np.mean(picked)) if picked else None,
        }
    return out


def run_sequence(make_follower_fn, seq: Sequence, init: str = "click", bound_th: float = BOUND_TH) -> dict:
    """Follow every object of ``seq`` from its first annotation and score it."""
    first = seq.labels(0)
    ids = seq.object_ids
    if not ids:
        raise VideoDataError(f"sequence {seq.name!r}: the first annotation has no object")
    follower = make_follower_fn()
    frame = seq.frame(0)
    if frame.shape[:2] != first.shape:
        raise VideoDataError(
            f"sequence {seq.name!r}: frame is {frame.shape[1]}x{frame.shape[0]}, "
            f"annotation is {first.shape[1]}x{first.shape[0]}"
        )
    if getattr(follower, "needs_truth", False):
        follower.observe_truth({oid: first == oid for oid in ids})
    started = []
    for oid in ids:
        m = first == oid
        if m.any():
            follower.start(frame, obj_id=oid, **first_prompt(m, init))
            started.append(oid)
    preds, gts = [first.copy()], [first]
    windows, times, states = [], [], {}
    places: dict[int, list[str]] = {oid: [] for oid in ids}
    for k in range(1, len(seq)):
        frame = seq.frame(k)
        gt = seq.labels(k)
        if gt.shape != first.shape or frame.shape[:2] != first.shape:
            raise VideoDataError(f"sequence {seq.name!r}: frame {k} differs in size from frame 0")
        if getattr(follower, "needs_truth", False):
            follower.observe_truth({oid: gt == oid for oid in started})
        t0 = time.perf_counter()
        results = follower.update(frame) if started else {}
        times.append(time.perf_counter() - t0)
        windows.append(sum(int(getattr(r, "windows", 1)) for r in results.values()))
        for r in results.values():
            states[r.state] = states.get(r.state, 0) + 1
        if k < len(seq) - 1:  # the scored frames
            for oid in ids:
                r = results.get(oid)
                truth = gt == oid
                places[oid].append(
                    placement_of(r, truth) if r is not None else ("off" if truth.any() else "absent-empty")
                )
        preds.append(_label_map(results, first.shape))
        gts.append(gt)
    per_obj = score_sequence(preds, gts, ids, bound_th)
    objects = {}
    for oid, (js, fs) in per_obj.items():
        j, f = statistics(js), statistics(fs)
        objects[str(oid)] = {
            "J": {k: _fmt(v) for k, v in j.items()},
            "F": {k: _fmt(v) for k, v in f.items()},
            "J&F": _fmt((j["mean"] + f["mean"]) / 2) if j["mean"] is not None else None,
            "J_per_frame": [_fmt(v) for v in js],
            "placement_per_frame": places[oid],
            "placement": placement_summary(places[oid], js),
        }
    n_follow = max(len(started), 1) * max(len(seq) - 1, 1)
    return {
        "frames": len(seq),
        "scored_frames": max(len(seq) - 2, 0),
        "objects": objects,
        "windows_per_object_frame": _fmt(sum(windows) / n_follow),
        "ms_per_frame": _fmt(1000 * float(np.mean(times)) if times else 0.0, 3),
        "states": states,
    }


def summarize(per_sequence: dict) -> dict:
    """Overall figures: J, F (mean, recall, decay) averaged over objects, J&F, windows and ms."""
    objs = [o for s in per_sequence.values() for o in s["objects"].values()]

    def avg(key, stat):
        vals = [o[key][stat] for o in objs if o[key][stat] is not None]
        return _fmt(float(np.mean(vals))) if vals else None

    j = {s: avg("J", s) for s in ("mean", "recall", "decay")}
    f = {s: avg("F", s) for s in ("mean", "recall", "decay")}
    frames = sum(s["frames"] - 1 for s in per_sequence.values())
    weights = [(s["frames"] - 1) for s in per_sequence.values()]
    wpf = [s["windows_per_object_frame"] for s in per_sequence.values()]
    ms = [s["ms_per_frame"] for s in per_sequence.values()]
    places = [p for o in objs for p in o.get("placement_per_frame", [])]
    js = [j for o in objs if "placement_per_frame" in o for j in o["J_per_frame"]]
    return {
        "J&F": _fmt((j["mean"] + f["mean"]) / 2) if j["mean"] is not None and f["mean"] is not None else None,
        "J": j,
        "F": f,
        "sequences": len(per_sequence),
        "objects": len(objs),
        "frames_followed": frames,
        "windows_per_object_frame": _fmt(np.average(wpf, weights=weights)) if frames else None,
        "ms_per_frame": _fmt(np.average(ms, weights=weights), 3) if frames else None,
        "placement": placement_summary(places, js),
    }


#: the sequence descriptions of ``meta.json`` (written by scripts/make_video_sequences.py) that
#: :func:`breakdown` groups by
CONDITIONS = ("speed", "moving", "rotation", "brightness", "leave", "occlusion", "thin")


def read_conditions(root) -> dict[str, dict]:
    """Per sequence, the conditions of a generated set (``ROOT/meta.json``); ``{}`` without one."""
    import json

    path = Path(root) / "meta.json"
    if not path.is_file():
        return {}
    try:
        seqs = json.loads(path.read_text()).get("sequences", {})
    except (OSError, ValueError, AttributeError):
        return {}
    out = {}
    for name, m in seqs.items():
        if isinstance(m, dict):
            c = {k: m[k] for k in CONDITIONS if k in m}
            if isinstance(c.get("thin"), list):
                c["thin"] = any(c["thin"])
            out[name] = c
    return out


def breakdown(per_sequence: dict, conditions: dict[str, dict]) -> dict:
    """J&F and J mean over the objects of the sequences sharing each condition value
    (``"speed=fast"``, ``"occlusion=true"``...), with their object counts."""
    groups: dict[str, list] = {}
    for name, s in per_sequence.items():
        for key, value in conditions.get(name, {}).items():
            label = f"{key}={str(value).lower()}"
            groups.setdefault(label, []).extend(s["objects"].values())
    out = {}
    for label in sorted(groups):
        objs = groups[label]
        jf = [o["J&F"] for o in objs if o["J&F"] is not None]
        jm = [o["J"]["mean"] for o in objs if o["J"]["mean"] is not None]
        out[label] = {
            "J&F": _fmt(np.mean(jf)) if jf else None,
            "J": _fmt(np.mean(jm)) if jm else None,
            "objects": len(objs),
        }
    return out


def evaluate_tracker(make_tracker, sequences, init: str = "click", progress: bool = True, bound_th=BOUND_TH) -> dict:
    """Follow and score every sequence; ``make_tracker()`` returns a fresh follower (a
    :class:`picosam2.track.Tracker` or a baseline) per sequence. Returns ``{"overall": ...,
    "per_sequence": {name: ...}}``."""
    from tqdm import tqdm

    if init not in INIT_PROMPTS:
        raise UsageError(f"unknown init {init!r}: choose from {', '.join(INIT_PROMPTS)}")
    per_seq = {}
    bar = tqdm(
        sequences, desc="eval-video", unit="seq", file=sys.stderr, disable=not progress or not sys.stderr.isatty()
    )
    for seq in bar:
        per_seq[seq.name] = run_sequence(make_tracker, seq, init, bound_th)
        bar.set_postfix_str(f"J&F {summarize(per_seq)['J&F']}")
    return {"overall": summarize(per_seq), "per_sequence": per_seq}


def format_table(report: dict) -> str:
    """Plain-text table of an ``eval-video`` report: per sequence and overall."""

    def pct(v):
        return "    -" if v is None else f"{100 * v:5.1f}"

    lines = [f"{'sequence':24} {'J&F':>5} {'J':>5} {'J rec':>5} {'J dec':>5} {'F':>5} {'win/f':>6} {'ms/f':>7}"]
    for name, s in report["per_sequence"].items():
        for oid, o in s["objects"].items():
            label = name if len(s["objects"]) == 1 else f"{name}:{oid}"
            lines.append(
                f"{label[:24]:24} {pct(o['J&F'])} {pct(o['J']['mean'])} {pct(o['J']['recall'])} "
                f"{pct(o['J']['decay'])} {pct(o['F']['mean'])} {s['windows_per_object_frame']:6.2f} "
                f"{s['ms_per_frame']:7.1f}"
            )
    o = report["overall"]
    lines.append(
        f"{'overall':24} {pct(o['J&F'])} {pct(o['J']['mean'])} {pct(o['J']['recall'])} {pct(o['J']['decay'])} "
        f"{pct(o['F']['mean'])} {o['windows_per_object_frame'] or 0:6.2f} {o['ms_per_frame'] or 0:7.1f}"
    )
    if o.get("placement"):
        cells = [
            f"{k} {pct(v['share']).strip()} % (J {pct(v['J']).strip()})"
            for k, v in o["placement"].items()
            if v["share"]
        ]
        lines.append("frames by placement: " + ", ".join(cells))
    if report.get("by_condition"):
        cells = [f"{k} {pct(v['J&F']).strip()} ({v['objects']})" for k, v in report["by_condition"].items()]
        lines.append("J&F by condition (objects): " + ", ".join(cells))
    lines.append(
        f"{o['sequences']} sequences, {o['objects']} objects; J, F in %; rec = share of frames > 50 %, "
        "dec = first quarter minus last; win/f = model windows per object and frame"
    )
    return "\n".join(lines)


__all__ = [
    "BOUND_TH",
    "FOLLOWERS",
    "INIT_PROMPTS",
    "FollowResult",
    "NaiveBoxFollower",
    "NaiveClickFollower",
    "OracleClickFollower",
    "PLACEMENTS",
    "Sequence",
    "VideoDataError",
    "boundary_f",
    "boundary_map",
    "boundary_tolerance",
    "breakdown",
    "read_conditions",
    "evaluate_tracker",
    "first_prompt",
    "format_table",
    "grow_box",
    "make_follower",
    "mask_box",
    "placement_of",
    "placement_summary",
    "read_davis",
    "read_labels",
    "region_j",
    "run_sequence",
    "score_sequence",
    "statistics",
    "summarize",
]
