"""The tracking policy: where each frame's window goes, from the masks of the frames before it.

PicoSAM2's only prompt is where its window is cut, so following an object is choosing one window
per frame. This module is that choice and nothing else: no model, no image. It is pure
arithmetic on a small :class:`TrackState`, so the camera loop (the IMX500's inference ROI) and
the browser demo (``windows.js``) can run or port it line by line. :class:`~picosam2.track.Tracker`
runs it with a model.

One step per object and frame::

    win = next_window(state, image_size, policy)          # (x0, y0, x1, y1): the window to run
    logits, score = model(cut(frame, win))                 # one 96 x 96 window through the network
    obs = observe(logits, win, score, threshold)           # what the window mask says (numpy)
    state, status = update(state, obs, image_size, policy) # "tracking" | "lost" | "reacquired"

The algorithm (every constant is a field of :class:`TrackPolicy`)::

    next_window(s):
        if s.lost == 0:                                    # following
            c = s.anchor + s.velocity                      # constant velocity (alpha-beta filter)
            side = clamp(margin * s.extent * s.grow, min_side, max_side * longer image side)
        else:                                              # re-acquiring: one sweep window a frame
            (du, dv, k) = SWEEP[(s.lost - 1) % len(SWEEP)] # offsets in object extents, size factor
            ring = min(1 + (s.lost - 1) // len(SWEEP), SWEEP_RINGS)  # later cycles reach further
            c = s.anchor + (du, dv) * s.extent * ring      # the anchor coasts while lost
            side = clamp(k * margin * s.extent, ...)
        c = clamp(c, inside the image)
        return the square of side `side` centred on c

    update(s, obs, shift):                                 # shift: the image's motion around
                                                           # s.anchor since the last frame
                                                           # (motion.estimate_shift), or None
        ok = obs not empty and obs.score >= lost_score and ratio(obs.area, s.area) <= area_jump
             and |obs.anchor - predicted| <= jump * s.extent           (following)
        ok = obs not empty and obs.score >= reacquire_score and ratio(obs.area, s.area) <= reacquire_area
                                                                       (re-acquiring)
        ok = ok and similarity(colours of the obs mask, s's reference) >= appearance_follow
             (appearance_reacquire while re-acquiring; the tracker measures it, appearance.py)
        if not ok:
            s.lost += 1; s.anchor += s.velocity; s.velocity *= coast_decay    (motion "mask")
                         s.anchor += shift; s.velocity = shift                (motion "image")
            return "lost"
        m = obs anchor point (interior pixel / centroid / box centre, `anchor`)
        motion "image", following:                          # the image moves the anchor
            s.velocity = shift, capped at max_speed * s.extent
            s.anchor = s.anchor + shift + mask_pull * (m - (s.anchor + shift))
            s.extent as below; done
        motion "mask" (or no shift, or a loss just ended):
        e = obs extent: 2 x the largest distance from m to the mask box's sides
        r = m - (s.anchor + s.velocity)                                    # innovation
        s.velocity += velocity_gain * r, capped at max_speed * s.extent   (0 after a loss)
        s.anchor = s.anchor + s.velocity_before + position_gain * r       (m after a loss)
        s.extent = size_smoothing * e + (1 - size_smoothing) * s.extent   (e after a loss)
        s.grow = border_grow if the mask touches the window border else 1
        s.area = area_smoothing * obs.area + (1 - area_smoothing) * s.area
        return "reacquired" if s.lost else "tracking"; s.lost = 0

Windows are squares (the network was trained on square windows; a box-shaped window would be
stretched) and may reach past the image (the cut pads them; on the sensor the ROI is clipped to
the array instead). The interior point is the mask pixel farthest from the mask's border: the
network segments the object under the window's centre, and that point is on the object even for
thin or hollow shapes, where a box centre may not be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ..errors import UsageError

#: states an object can be in after a frame
STATES = ("tracking", "lost", "reacquired")
#: the anchor rules: which point of the mask the next window is centred on
ANCHORS = ("interior", "centroid", "box")
#: what moves the anchor while following: the image's own motion around it
#: (:func:`picosam2.track.motion.estimate_shift`), or the window mask's anchor point
MOTIONS = ("image", "mask")
#: the re-acquisition sweep: (offset x, offset y) in object extents around the coasting anchor and
#: a window-size factor, one entry per frame, cycled while the object stays lost. The centre
#: first at growing sizes (the object grew or the estimate shrank), then a ring of offsets.
SWEEP = (
    (0.0, 0.0, 1.0),
    (0.0, 0.0, 1.8),
    (-0.6, 0.0, 1.0),
    (0.6, 0.0, 1.0),
    (0.0, -0.6, 1.0),
    (0.0, 0.6, 1.0),
    (0.0, 0.0, 3.0),
    (-0.6, -0.6, 1.4),
    (0.6, -0.6, 1.4),
    (-0.6, 0.6, 1.4),
    (0.6, 0.6, 1.4),
)


#: each full cycle of :data:`SWEEP` without a find spreads its offsets one object extent further,
#: up to this many times the first cycle's reach
SWEEP_RINGS = 4


@dataclass(frozen=True)
class TrackPolicy:
    """The policy's constants (defaults: the values chosen on the select sequences; see
    ``docs/tracking.md`` for what was measured).

    Attributes:
        anchor: the mask point the next window is centred on: ``"interior"`` (the pixel farthest
            from the mask's border), ``"centroid"`` or ``"box"`` (the mask box's centre).
        margin: window side / object extent (the extent is twice the largest distance from the
            anchor to the mask box's sides, so the whole object fits around the anchor).
        min_side: smallest window side in image pixels (the network's input is 96).
        max_side: largest window side, as a multiple of the image's longer side.
        position_gain: alpha of the alpha-beta filter: the share of the gap between the
            measured and the predicted anchor that moves the anchor (1: the measured anchor).
        velocity_gain: beta of the alpha-beta filter: the share of that gap added to the
            velocity (0: no motion model, the window stays at the last anchor).
        max_speed: the velocity's length is capped at this many object extents a frame.
        size_smoothing: weight of the newest extent in the smoothed extent (1: no smoothing).
        area_smoothing: weight of the newest area in the reference area the jumps are judged by.
        border_grow: window-size factor for the next frame when the mask touches the window
            border (the object was cut off), applied once, not compounded.
        border_touch: share of one window side the mask must cover to count as touching it.
        lost_score: a following frame whose score is below this is a loss.
        area_jump: a following frame whose mask area changes by more than this factor against
            the reference area is a loss (the mask leaked or shrank to a part).
        jump: a following frame whose anchor lands further than this many extents from the
            predicted anchor is a loss.
        reacquire_score, reacquire_area: what a sweep window's mask must reach to end a loss.
        coast_decay: velocity factor per lost frame (the anchor coasts, slowing down).
        sweep_per_frame: sweep windows run per lost frame (1 on the sensor; more on a CPU).
        max_lost: after this many lost frames the sweep also tries the whole image around the
            anchor (``0``: never).
        motion: ``"image"``: the anchor moves by the image's shift around it between the last
            frame and this one (block matching weighted by the last mask; the mask then only
            sets the size and says whether the object is still there), or ``"mask"``: the
            anchor is the window mask's anchor point through the alpha-beta filter.
        motion_cells: blocks across the object's extent when matching the image (finer is more
            exact and slower; a coarse search at half this resolution comes first).
        motion_search: the largest image shift searched, in object extents (plus the speed).
        mask_pull: under ``"image"``, the share of the gap from the image-moved anchor to the
            mask's anchor point that is applied each frame (0: the image alone).
        probe_every: while following, every this many frames a second window at the same centre
            tries another size (alternately ``probe_scale`` times larger and smaller) in the same
            batch, and is kept when its score beats the main window's by ``probe_margin``: the
            size is corrected over time (``0``: never; costs ``1 / probe_every`` windows a frame).
        appearance_follow: a following frame's mask continues the object only when the colour
            histogram of its pixels has at least this similarity (Bhattacharyya coefficient,
            :mod:`picosam2.track.appearance`) to the object's reference histogram (0: no check).
        appearance_reacquire: the same for a re-acquisition window's mask to end a loss.
        appearance_rate: the share of an accepted frame's histogram blended into the reference.
    """

    anchor: str = "interior"
    margin: float = 1.2
    min_side: float = 96.0
    max_side: float = 1.5
    position_gain: float = 1.0
    velocity_gain: float = 0.5
    max_speed: float = 1.0
    size_smoothing: float = 0.5
    area_smoothing: float = 0.2
    border_grow: float = 1.4
    border_touch: float = 0.05
    lost_score: float = 0.2
    area_jump: float = 6.0
    jump: float = 1.5
    reacquire_score: float = 0.4
    reacquire_area: float = 2.5
    coast_decay: float = 0.8
    sweep_per_frame: int = 1
    max_lost: int = 11
    motion: str = "image"
    motion_cells: int = 32
    motion_search: float = 0.15
    mask_pull: float = 0.0
    probe_every: int = 0
    probe_scale: float = 1.6
    probe_margin: float = 0.05
    appearance_follow: float = 0.6
    appearance_reacquire: float = 0.8
    appearance_rate: float = 0.1

    def __post_init__(self):
        if self.anchor not in ANCHORS:
            raise UsageError(f"anchor must be one of {ANCHORS}, got {self.anchor!r}")
        if not self.margin > 0 or not self.min_side >= 1 or not self.max_side > 0:
            raise UsageError("margin, min_side and max_side must be positive")
        if self.motion not in MOTIONS:
            raise UsageError(f"motion must be one of {MOTIONS}, got {self.motion!r}")
        if self.motion_cells < 2 or not self.motion_search > 0:
            raise UsageError("motion_cells must be at least 2 and motion_search positive")
        if self.sweep_per_frame < 1:
            raise UsageError("sweep_per_frame must be at least 1")
        if self.probe_every < 0 or not self.probe_scale > 1:
            raise UsageError("probe_every must be at least 0 and probe_scale above 1")
        for name in ("appearance_follow", "appearance_reacquire", "appearance_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise UsageError(f"{name} must be between 0 and 1, got {getattr(self, name)!r}")

    @property
    def uses_appearance(self) -> bool:
        """Whether the window masks' colours are checked against the object's."""
        return self.appearance_follow > 0 or self.appearance_reacquire > 0

    def with_(self, **changes) -> TrackPolicy:
        """A copy with some constants changed."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Observation:
    """What one window's mask says, in image pixels (:func:`observe`). ``area`` 0 means empty."""

    area: float
    box: tuple[float, float, float, float]  #: mask box x0, y0, x1, y1 (image pixels)
    interior: tuple[float, float]  #: the mask pixel farthest from its border (pixel centre)
    centroid: tuple[float, float]
    touch: tuple[float, float, float, float]  #: share of the window's left, top, right, bottom side covered
    score: float

    @property
    def empty(self) -> bool:
        return self.area <= 0


EMPTY = Observation(0.0, (0.0, 0.0, 0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (0.0, 0.0, 0.0, 0.0), 0.0)


@dataclass(frozen=True)
class TrackState:
    """One object's state between frames (all in image pixels).

    ``anchor``: where the object's anchor point is (coasting while lost); ``velocity``: its
    displacement per frame; ``extent``: the object's smoothed extent around the anchor;
    ``area``: reference mask area; ``grow``: next window's extra size factor; ``lost``: frames
    lost in a row (0 while following); ``frames``: frames seen."""

    anchor: tuple[float, float]
    velocity: tuple[float, float] = (0.0, 0.0)
    extent: float = 96.0
    area: float = 0.0
    grow: float = 1.0
    lost: int = 0
    frames: int = 1


def anchor_of(obs: Observation, rule: str) -> tuple[float, float]:
    """The observation's anchor point under ``rule`` (:data:`ANCHORS`)."""
    if rule == "interior":
        return obs.interior
    if rule == "centroid":
        return obs.centroid
    x0, y0, x1, y1 = obs.box
    return ((x0 + x1) / 2.0, (y0 + y1) / 2.0)


def extent_of(obs: Observation, anchor: tuple[float, float]) -> float:
    """Twice the largest distance from ``anchor`` to a side of the mask box: the side of the
    smallest square centred on the anchor that holds the mask box."""
    x0, y0, x1, y1 = obs.box
    ax, ay = anchor
    return 2.0 * max(ax - x0, x1 - ax, ay - y0, y1 - ay, 0.5)


def start_state(obs: Observation, policy: TrackPolicy) -> TrackState:
    """The state after the first frame's mask (from a click, a box or a given mask)."""
    a = anchor_of(obs, policy.anchor)
    return TrackState(anchor=a, extent=extent_of(obs, a), area=obs.area)


def _side(extent: float, factor: float, image_size, policy: TrackPolicy) -> float:
    longer = max(image_size)
    return min(max(policy.margin * extent * factor, policy.min_side), policy.max_side * longer)


def _square(cx: float, cy: float, side: float, image_size) -> tuple[int, int, int, int]:
    width, height = image_size
    cx = min(max(cx, 0.0), width - 1.0)  # the centre stays on the image
    cy = min(max(cy, 0.0), height - 1.0)
    s = max(1, int(round(side)))
    x0 = int(math.floor(cx + 0.5 - s / 2.0))
    y0 = int(math.floor(cy + 0.5 - s / 2.0))
    return (x0, y0, x0 + s, y0 + s)


def window_at(centre: tuple[float, float], extent: float, image_size, policy: TrackPolicy) -> tuple[int, int, int, int]:
    """The square window of side ``margin`` times ``extent`` (within the side limits) centred on
    ``centre`` (kept on the image), ``(x0, y0, x1, y1)``."""
    return _square(centre[0], centre[1], _side(extent, 1.0, image_size, policy), image_size)


def window_around(obs: Observation, image_size, policy: TrackPolicy) -> tuple[int, int, int, int]:
    """The window the policy would put around a whole mask's observation: :func:`window_at` its
    most interior point, with its extent."""
    return window_at(obs.interior, extent_of(obs, obs.interior), image_size, policy)


def predicted_anchor(state: TrackState) -> tuple[float, float]:
    """Where the anchor is expected this frame (constant velocity)."""
    return (state.anchor[0] + state.velocity[0], state.anchor[1] + state.velocity[1])


def sweep_entry(state: TrackState, k: int, image_size, policy: TrackPolicy) -> tuple[float, float, float]:
    """The ``k``-th re-acquisition window of a lost object as (centre x, centre y, side)."""
    n = len(SWEEP) + (1 if policy.max_lost and state.lost > policy.max_lost else 0)
    k %= n
    if k == len(SWEEP):  # long lost: the whole image around the anchor
        return (state.anchor[0], state.anchor[1], policy.max_side * max(image_size))
    du, dv, f = SWEEP[k]
    e = state.extent * min(1 + (state.lost - 1) // len(SWEEP), SWEEP_RINGS)  # later cycles reach further
    return (state.anchor[0] + du * e, state.anchor[1] + dv * e, _side(state.extent, f, image_size, policy))


def next_windows(state: TrackState, image_size, policy: TrackPolicy) -> list[tuple[int, int, int, int]]:
    """This frame's windows for one object: one while following; ``sweep_per_frame`` sweep
    windows while lost (entries ``(lost - 1) * sweep_per_frame ...`` of the cycle)."""
    if state.lost == 0:
        cx, cy = predicted_anchor(state)
        side = _side(state.extent, state.grow, image_size, policy)
        wins = [_square(cx, cy, side, image_size)]
        if policy.probe_every and state.frames % policy.probe_every == 0:
            up = (state.frames // policy.probe_every) % 2 == 0
            factor = policy.probe_scale if up else 1.0 / policy.probe_scale
            probe = _square(cx, cy, _side(state.extent, state.grow * factor, image_size, policy), image_size)
            if probe != wins[0]:
                wins.append(probe)
        return wins
    first = (state.lost - 1) * policy.sweep_per_frame
    return [
        _square(*sweep_entry(state, first + j, image_size, policy), image_size) for j in range(policy.sweep_per_frame)
    ]


def next_window(state: TrackState, image_size, policy: TrackPolicy) -> tuple[int, int, int, int]:
    """This frame's first (while following: only) window for one object, ``(x0, y0, x1, y1)``."""
    return next_windows(state, image_size, policy)[0]


def _ratio(a: float, b: float) -> float:
    if a <= 0 or b <= 0:
        return math.inf
    return max(a / b, b / a)


def accepts(state: TrackState, obs: Observation, policy: TrackPolicy) -> bool:
    """Whether ``obs`` continues the object (following) or ends its loss (re-acquiring)."""
    if obs.empty:
        return False
    if state.lost:
        return obs.score >= policy.reacquire_score and _ratio(obs.area, state.area) <= policy.reacquire_area
    if obs.score < policy.lost_score or _ratio(obs.area, state.area) > policy.area_jump:
        return False
    px, py = predicted_anchor(state)
    ax, ay = anchor_of(obs, policy.anchor)
    return math.hypot(ax - px, ay - py) <= policy.jump * state.extent


def looks_alike(state: TrackState, similarity: float | None, policy: TrackPolicy) -> bool:
    """Whether a mask whose colours have ``similarity`` to the object's reference may continue it
    (``appearance_follow``) or end its loss (``appearance_reacquire``); None: not measured."""
    if similarity is None:
        return True
    return similarity >= (policy.appearance_reacquire if state.lost else policy.appearance_follow)


def best_observation(state: TrackState, observations, policy: TrackPolicy, similarities=None) -> int | None:
    """Index of the observation the object takes among this frame's windows, or None: the
    accepted one (:func:`accepts`, and :func:`looks_alike` with ``similarities[i]`` when given)
    with the highest score, where a following object's main window (index 0) gets
    ``probe_margin`` added (a probe must beat it clearly)."""

    def rank(i):
        return observations[i].score + (policy.probe_margin if i == 0 and not state.lost else 0.0)

    for i in sorted(range(len(observations)), key=lambda i: -rank(i)):
        if accepts(state, observations[i], policy) and (
            similarities is None or looks_alike(state, similarities[i], policy)
        ):
            return i
    return None


def touches(obs: Observation, policy: TrackPolicy) -> bool:
    return max(obs.touch) > policy.border_touch


def motion_radius(state: TrackState, policy: TrackPolicy) -> float:
    """The largest image shift (pixels) :func:`~picosam2.track.motion.estimate_shift` searches
    around the object this frame."""
    return policy.motion_search * state.extent + math.hypot(*state.velocity)


def _capped(v, cap: float) -> tuple[float, float]:
    """``v`` shortened to length ``cap`` when longer."""
    speed = math.hypot(v[0], v[1])
    if speed > cap:
        return (v[0] * cap / speed, v[1] * cap / speed)
    return (float(v[0]), float(v[1]))


def update(
    state: TrackState, obs: Observation | None, policy: TrackPolicy, shift: tuple[float, float] | None = None
) -> tuple[TrackState, str]:
    """The state after this frame: ``obs`` is the accepted observation (:func:`best_observation`),
    or None when no window of the frame was accepted; ``shift`` the image's motion around the
    anchor since the last frame (used under ``motion="image"``; None: not measured). Returns
    the new state and its status."""
    by_image = policy.motion == "image" and shift is not None
    if obs is None and by_image:
        return (
            replace(
                state,
                anchor=(state.anchor[0] + shift[0], state.anchor[1] + shift[1]),
                velocity=_capped(shift, policy.max_speed * state.extent),
                grow=1.0,
                lost=state.lost + 1,
                frames=state.frames + 1,
            ),
            "lost",
        )
    if obs is None:
        vx, vy = state.velocity
        return (
            replace(
                state,
                anchor=(state.anchor[0] + vx, state.anchor[1] + vy),
                velocity=(vx * policy.coast_decay, vy * policy.coast_decay),
                grow=1.0,
                lost=state.lost + 1,
                frames=state.frames + 1,
            ),
            "lost",
        )
    m = anchor_of(obs, policy.anchor)
    e = extent_of(obs, m)
    if state.lost:
        velocity = (0.0, 0.0)
        extent = e
    elif by_image:
        velocity = _capped(shift, policy.max_speed * state.extent)
        mx, my = state.anchor[0] + shift[0], state.anchor[1] + shift[1]
        m = (mx + policy.mask_pull * (m[0] - mx), my + policy.mask_pull * (m[1] - my))
        extent = policy.size_smoothing * e + (1 - policy.size_smoothing) * state.extent
    else:
        px, py = predicted_anchor(state)
        rx, ry = m[0] - px, m[1] - py  # the innovation: measured minus predicted
        g = policy.velocity_gain
        velocity = _capped((state.velocity[0] + g * rx, state.velocity[1] + g * ry), policy.max_speed * state.extent)
        a = policy.position_gain
        m = (px + a * rx, py + a * ry)
        extent = policy.size_smoothing * e + (1 - policy.size_smoothing) * state.extent
    a = policy.area_smoothing
    new = TrackState(
        anchor=m,
        velocity=velocity,
        extent=extent,
        area=a * obs.area + (1 - a) * state.area,
        grow=policy.border_grow if touches(obs, policy) else 1.0,
        lost=0,
        frames=state.frames + 1,
    )
    return new, ("reacquired" if state.lost else "tracking")


# -- observations from a window mask (numpy) -------------------------------------------------------


def _depths(m: np.ndarray) -> np.ndarray:
    """Per pixel of a boolean array, the shortest of its four runs of True pixels (left, right, up,
    down) up to the first False pixel, the array's edge counting as False: 0 on False pixels."""
    h, w = m.shape
    dt = np.int16 if max(h, w) < (1 << 14) else np.int64
    cols, rows = np.arange(w, dtype=dt), np.arange(h, dtype=dt)[:, None]
    # per pixel the nearest background column at or left of it (-1: none) and at or right of it
    # (w: none), and rows likewise: on background both are the pixel itself, so every run is 0
    left = np.maximum.accumulate(np.where(m, dt(-1), cols), axis=1)
    right = np.minimum.accumulate(np.where(m, dt(w), cols)[:, ::-1], axis=1)[:, ::-1]
    up = np.maximum.accumulate(np.where(m, dt(-1), rows), axis=0)
    down = np.minimum.accumulate(np.where(m, dt(h), rows)[::-1], axis=0)[::-1]
    depth = np.minimum(cols - left, right - cols)
    np.minimum(depth, rows - up, out=depth)
    np.minimum(depth, down - rows, out=depth)
    return depth


def _deepest(m: np.ndarray) -> tuple[int, int]:
    """(row, col) of :func:`interior_index` in ``m``, a non-empty boolean array cut to its mask's
    box (no run crosses the box)."""
    depth = _depths(m)
    rows, cols = np.nonzero(depth == depth.max())
    k = int(np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2))
    return int(rows[k]), int(cols[k])


def interior_index(mask: np.ndarray) -> tuple[int, int]:
    """(row, col) of the most interior pixel of a non-empty boolean mask, read along rows and
    columns: each pixel's depth is the shortest of its four runs of mask pixels (left, right, up,
    down) to the first background pixel (the array's edge counts as background); of the deepest
    pixels, the one nearest their mean. Always a mask pixel, also for rings and thin shapes (a box
    centre may be off the mask), in about twenty array operations whatever the object."""
    full = np.asarray(mask, bool)
    rows, cols = np.flatnonzero(full.any(axis=1)), np.flatnonzero(full.any(axis=0))
    r0, c0 = int(rows[0]), int(cols[0])
    r, c = _deepest(full[r0 : int(rows[-1]) + 1, c0 : int(cols[-1]) + 1])
    return r + r0, c + c0


def observe(logits: np.ndarray, window, score: float | None, threshold: float = 0.0) -> Observation:
    """The :class:`Observation` of one window's (S, S) logits; ``window`` is ``(x0, y0, x1, y1)``
    (or a :class:`~picosam2.prompts.Window`) in image pixels; ``score`` the network's predicted
    IoU (None without a quality head: 1)."""
    m = np.asarray(logits)
    m = m.reshape(m.shape[-2:]) > threshold
    per_row = np.count_nonzero(m, axis=1)  # mask pixels per row and per column: the box, the
    rows = np.flatnonzero(per_row)  # area, the centroid and the border touches all follow
    if not len(rows):
        return EMPTY
    per_col = np.count_nonzero(m, axis=0)
    cols = np.flatnonzero(per_col)
    x0, y0, x1, y1 = window.as_tuple() if hasattr(window, "as_tuple") else window
    s_h, s_w = m.shape
    kx, ky = (x1 - x0) / s_w, (y1 - y0) / s_h
    c0, c1, r0, r1 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    r, c = _deepest(m[r0:r1, c0:c1])
    n = int(per_row.sum())
    # the mean column and row of the mask pixels: exact integer sums, then one division
    mean_x, mean_y = int(per_col @ np.arange(s_w)) / n, int(per_row @ np.arange(s_h)) / n
    # share of the window's left, top, right and bottom side on the mask
    touch = (int(per_col[0]) / s_h, int(per_row[0]) / s_w, int(per_col[-1]) / s_h, int(per_row[-1]) / s_w)
    return Observation(
        area=float(n * kx * ky),
        box=(x0 + c0 * kx, y0 + r0 * ky, x0 + c1 * kx, y0 + r1 * ky),
        interior=(x0 + (c0 + c + 0.5) * kx, y0 + (r0 + r + 0.5) * ky),
        centroid=(x0 + (mean_x + 0.5) * kx, y0 + (mean_y + 0.5) * ky),
        touch=touch,
        score=1.0 if score is None else float(score),
    )


def observe_mask(mask: np.ndarray, score: float = 1.0) -> Observation:
    """The :class:`Observation` of a full-size boolean mask (a first frame given as a mask).
    Large masks are looked at on a grid of at most about 192 px a side for the interior point."""
    m = np.asarray(mask, bool)
    if not m.any():
        return EMPTY
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m.any(axis=0))
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    sub = m[y0:y1, x0:x1]
    step = max(1, int(math.ceil(max(sub.shape) / 192)))
    small = sub[::step, ::step]
    if not small.any():
        small, step = sub, 1
    r, c = interior_index(np.pad(small, 1))
    ys, xs = np.nonzero(sub)
    return Observation(
        area=float(len(xs)),
        box=(float(x0), float(y0), float(x1), float(y1)),
        interior=(x0 + (c - 1) * step + 0.5, y0 + (r - 1) * step + 0.5),
        centroid=(x0 + float(xs.mean()) + 0.5, y0 + float(ys.mean()) + 0.5),
        touch=(0.0, 0.0, 0.0, 0.0),
        score=float(score),
    )
