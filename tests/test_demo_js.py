"""The page's JavaScript port of the scale rules (static/windows.js) against the Python it copies:
auto window sizes (prompts.auto_point_scales), candidate windows and the choice among candidates
(selection.choose_candidate), run with node (no browser needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from picosam2.prompts import auto_point_scales, point_scales_for, point_windows
from picosam2.selection import choose_candidate

NODE = shutil.which("node")
WINDOWS_JS = Path(__file__).resolve().parents[1] / "src" / "picosam2" / "demo" / "static" / "windows.js"
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

SIZES = [(1, 1), (96, 96), (97, 40), (100, 20), (135, 136), (136, 100), (192, 192), (320, 240), (640, 480)]
SIZES += [(800, 534), (534, 800), (1023, 768), (1280, 720), (1920, 1080), (4056, 3040), (12000, 9000)]


def _run_module_js(module: Path, name: str, body: str, data) -> object:
    """Run ``body`` (a JS function body with ``name`` = the ES module ``module`` and ``data``) in node; its JSON."""
    script = (
        f"const {name} = await import({json.dumps(module.as_uri())});\n"
        "const { readFileSync } = await import('node:fs');\n"
        "const data = JSON.parse(readFileSync(0, 'utf8'));\n"
        f"const result = (() => {{ {body} }})();\n"
        "console.log(JSON.stringify(result));\n"
    )
    out = subprocess.run(
        [NODE, "--input-type=module", "-e", script],
        input=json.dumps(data),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def run_js(body: str, data) -> object:
    """Run ``body`` (a JS function body with ``w`` = windows.js and ``data``) in node; its JSON."""
    return _run_module_js(WINDOWS_JS, "w", body, data)


def test_auto_scales_match_python():
    rng = np.random.default_rng(0)
    sizes = SIZES + [tuple(int(v) for v in rng.integers(1, 5000, 2)) for _ in range(300)]
    js = run_js("return data.map(([wd, ht]) => w.autoPointScales(wd, ht));", sizes)
    for (wd, ht), got in zip(sizes, js):
        assert got == auto_point_scales((wd, ht)), (wd, ht)
    assert js[SIZES.index((640, 480))] == [96, 140, 205, 300, 438, 640]


def test_candidate_windows_match_python():
    cases = [
        ("auto", 570, 200, 800, 534),
        ("auto:4", 570, 200, 800, 534),
        ("auto:3", 1700, 10, 1800, 1200),
        ([96, 192, 384], 3, 530, 800, 534),
        ("auto", 0, 0, 50, 40),
    ]
    js = run_js(
        "return data.map(([spec, x, y, wd, ht]) => w.candidateWindows({kind: 'point', x, y}, wd, ht,"
        " {point_scales: spec, window_size: 128, point_mode: 'centered', box_padding: 0.1})"
        ".map((v) => [v.x0, v.y0, v.x1, v.y1]));",
        cases,
    )
    for (spec, x, y, wd, ht), got in zip(cases, js):
        want = [list(v.as_tuple()) for v in point_windows(x, y, (wd, ht), point_scales_for(spec, (wd, ht)))]
        assert got == want
    assert len(js[1]) == 4 and len(js[2]) == 3
    fixed = run_js(
        "return w.candidateWindows({kind: 'point', x: 10, y: 10}, 100, 100, {point_scales: null, window_size: 128,"
        " point_mode: 'centered'}).map((v) => [v.x0, v.y0, v.x1, v.y1]);",
        None,
    )
    assert fixed == [[-54, -54, 74, 74]]


def test_choice_matches_selection_py():
    rng = np.random.default_rng(1)
    size = 96
    cases = []
    for n in (1, 3, 6):
        logits = (rng.standard_normal((n, size, size)) * 2).astype(np.float32)
        cases.append((logits, rng.random(n).astype(np.float32)))
        cases.append((logits, None))
    # masks that end inside some windows: the border rule's first branch
    blob = np.full((4, size, size), -5.0, np.float32)
    blob[1:, 30:60, 30:60] = 5.0
    blob[0] = 5.0
    cases.append((blob, None))
    data = [[lg.ravel().tolist(), None if sc is None else sc.tolist(), len(lg)] for lg, sc in cases]
    js = run_js(
        "return data.map(([lg, sc, n]) => w.chooseCandidate(Float32Array.from(lg),"
        " Array.from({length: n}, (_, i) => i * 96 * 96), 96, sc));",
        data,
    )
    for (lg, sc), got in zip(cases, js):
        assert tuple(got) == choose_candidate(lg, sc)
    assert tuple(js[-1]) == (1, "border")


def test_reduced_crops_match_python():
    """windows.js cuts large windows from a box-reduced image as prompts.crop_images does under
    the predictor's reducing_gap (so the in-browser model sees the server's pixels), and small
    windows exactly as crop_image."""
    from picosam2.prompts import Window, crop_images

    rng = np.random.default_rng(3)
    h, w = 150, 230
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR)).astype(np.int16)
    image = np.clip(image + rng.integers(-15, 16, (h, w, 3)), 0, 255).astype(np.uint8)
    rgba = np.concatenate([image, np.full((h, w, 1), 255, np.uint8)], axis=2)
    wins = [Window(10, 20, 106, 116), Window(-100, -60, 300, 340), Window(3, -250, 800, 547)]
    sides = rng.integers([-300, -300, 390], [230, 150, 1500], (9, 3)).tolist()
    wins += [Window(x, y, x + s, y + s) for x, y, s in sides]
    js = run_js(
        "const img = Uint8ClampedArray.from(data.rgba);"
        "return data.wins.map(([x0, y0, x1, y1]) => Array.from(w.cropImage(img, data.w, data.h, {x0, y0, x1, y1}, 96,"
        " [124, 116, 104], 2.0)));",
        {"rgba": rgba.reshape(-1).tolist(), "w": w, "h": h, "wins": [list(v.as_tuple()) for v in wins]},
    )
    want = crop_images(image, wins, reducing_gap=2.0)
    for win, got, ref in zip(wins, js, want):
        got = np.asarray(got, np.int16).reshape(96, 96, 3)
        assert np.abs(got - ref).max() <= 1, win
        assert np.mean(got != ref) < 0.01, win


# ---------------------------------------------------------------- the tracking policy (track.js)

TRACK_JS = WINDOWS_JS.parent / "track.js"


def run_track_js(body: str, data) -> object:
    """Run ``body`` with ``t`` = track.js and ``data`` in node; its JSON."""
    return _run_module_js(TRACK_JS, "t", body, data)


def _state_dict(s) -> dict:
    return {
        "anchor": list(s.anchor),
        "velocity": list(s.velocity),
        "extent": s.extent,
        "area": s.area,
        "grow": s.grow,
        "lost": s.lost,
        "frames": s.frames,
    }


def _obs_dict(o) -> dict:
    return {
        "area": o.area,
        "box": list(o.box),
        "interior": list(o.interior),
        "centroid": list(o.centroid),
        "touch": list(o.touch),
        "score": o.score,
    }


def _blob_logits(rng, n=96):
    """Logits of a random blob (an ellipse, sometimes two, sometimes none) with noise."""
    yy, xx = np.mgrid[0:n, 0:n]
    out = np.full((n, n), -4.0, np.float32)
    for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):
        cx, cy = rng.uniform(-10, n + 10, 2)
        rx, ry = rng.uniform(3, 60, 2)
        inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
        out[inside] = 4.0
    return out + rng.normal(0, 1.5, (n, n)).astype(np.float32)


def _close(a, b, path="") -> None:
    """Equal structures, floats to 1e-9 relative (the same double operations in the same order)."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-9), path
    else:
        assert a == b, path


def _matched_statuses(runs, js) -> set:
    """Checks every frame of each Python policy run against the browser's (:func:`_close`); the
    set of states the runs went through."""
    statuses = set()
    for run, got in zip(runs, js):
        for k, (want, have) in enumerate(zip(run["frames"], got)):
            _close(want, have, f"frame {k}")
            statuses.add(want["status"])
    return statuses


def test_track_policy_constants_match_python():
    from dataclasses import asdict

    from picosam2.track import TrackPolicy
    from picosam2.track.motion import FULL_WEIGHT, SAMPLES
    from picosam2.track.policy import ANCHORS, MOTIONS, STATES, SWEEP, SWEEP_RINGS

    got = run_track_js(
        "return {policy: t.DEFAULT_POLICY, sweep: t.SWEEP, anchors: t.ANCHORS, states: t.STATES, rings: t.SWEEP_RINGS,"
        " motions: t.MOTIONS, full: t.FULL_WEIGHT, samples: t.SAMPLES};",
        None,
    )
    assert got["motions"] == list(MOTIONS) and got["full"] == FULL_WEIGHT and got["samples"] == SAMPLES
    assert got["rings"] == SWEEP_RINGS
    assert got["policy"] == asdict(TrackPolicy())
    assert got["sweep"] == [list(e) for e in SWEEP]
    assert got["anchors"] == list(ANCHORS) and got["states"] == list(STATES)


def test_track_observe_matches_python():
    """track.js observe() reads a window's logits as policy.observe does: area, box, interior
    point, centroid, border touch, score."""
    from picosam2.track import policy as P

    rng = np.random.default_rng(7)
    cases = []
    for _ in range(40):
        logits = _blob_logits(rng)
        x0, y0 = (int(v) for v in rng.integers(-200, 600, 2))
        side = int(rng.integers(20, 900))
        score = None if rng.random() < 0.2 else float(rng.random())
        cases.append((logits, [x0, y0, x0 + side, y0 + side], score))
    cases.append((np.full((96, 96), -5.0, np.float32), [0, 0, 96, 96], 0.5))  # nothing there
    js = run_track_js(
        "return data.map(([lg, win, score]) => t.observe(Float32Array.from(lg), 0, 96, win, score, 0));",
        [[lg.ravel().tolist(), win, score] for lg, win, score in cases],
    )
    empty = 0
    for (lg, win, score), got in zip(cases, js):
        want = P.observe(lg, tuple(win), score, 0.0)
        empty += want.empty
        _close(_obs_dict(want), got)
    assert 0 < empty < len(cases)  # both branches seen


def test_track_policy_steps_match_python():
    """next_windows, best_observation and update, chained over whole random sequences (with
    losses, re-acquisitions, the long-lost sweep and several windows per lost frame), give the
    same windows, choices, states and statuses in JS and Python."""
    from picosam2.track import TrackPolicy
    from picosam2.track import policy as P
    from picosam2.track.policy import SWEEP

    rng = np.random.default_rng(11)
    runs = []
    for policy in (
        TrackPolicy(),
        TrackPolicy(sweep_per_frame=3, max_lost=4, anchor="centroid", probe_every=3),
        TrackPolicy(anchor="box", position_gain=0.7, max_speed=0.2, probe_every=2),
    ):
        for _ in range(4):
            size = (int(rng.integers(100, 1900)), int(rng.integers(100, 1100)))
            first = P.observe(_blob_logits(rng), (100, 80, 400, 380), 0.9, 0.0)
            while first.empty:
                first = P.observe(_blob_logits(rng), (100, 80, 400, 380), 0.9, 0.0)
            frames = []
            state = P.start_state(first, policy)
            for _ in range(60):
                wins = P.next_windows(state, size, policy)
                obs = []
                for w in wins:
                    jitter = rng.integers(-40, 41, 2)
                    win = (w[0] + int(jitter[0]), w[1] + int(jitter[1]), w[2] + int(jitter[0]), w[3] + int(jitter[1]))
                    obs.append(P.observe(_blob_logits(rng), win, float(rng.random()), 0.0))
                best = P.best_observation(state, obs, policy)
                state, status = P.update(state, None if best is None else obs[best], policy)
                frames.append(
                    {
                        "windows": [list(w) for w in wins],
                        "obs": [_obs_dict(o) for o in obs],
                        "best": best,
                        "state": _state_dict(state),
                        "status": status,
                    }
                )
            runs.append(
                {"policy": dataclasses_asdict(policy), "size": list(size), "first": _obs_dict(first), "frames": frames}
            )
    js = run_track_js(
        """return data.map((run) => {
             let state = t.startState(run.first, run.policy);
             return run.frames.map((f) => {
               const windows = t.nextWindows(state, run.size, run.policy);
               const best = t.bestObservation(state, f.obs, run.policy);
               const [next, status] = t.update(state, best === null ? null : f.obs[best], run.policy);
               state = next;
               return {windows, obs: f.obs, best, state, status};
             });
           });""",
        runs,
    )
    assert _matched_statuses(runs, js) == {"tracking", "lost", "reacquired"}
    assert any(len(f["windows"]) == 2 for run in runs for f in run["frames"])  # probes ran
    assert any(f["state"]["lost"] > len(SWEEP) for run in runs for f in run["frames"])  # a wider sweep ring


def dataclasses_asdict(obj) -> dict:
    from dataclasses import asdict

    return asdict(obj)


# ---------------------------------------------------------------- the image's motion (track.js)


def _b64(a: np.ndarray) -> str:
    import base64

    return base64.b64encode(np.ascontiguousarray(a, np.uint8).tobytes()).decode()


def _smooth_frame(rng, h, w, pad=0):
    """A smooth random RGB picture (a coarse grid blown up bilinearly, plus a little noise) of
    (h + 2 pad) x (w + 2 pad)."""
    coarse = rng.integers(0, 256, (int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(coarse).resize((w + 2 * pad, h + 2 * pad), Image.BILINEAR)).astype(np.int16)
    return np.clip(big + rng.integers(-6, 7, big.shape), 0, 255).astype(np.uint8)


def _ellipse(h, w, cx, cy, rx, ry):
    yy, xx = np.mgrid[0:h, 0:w]
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1


def _first_blob(rng):
    """A first frame's observation: random blob logits in a fixed window, drawn until not empty."""
    from picosam2.track import policy as P

    while True:
        first = P.observe(_blob_logits(rng), (100, 80, 400, 380), 0.9, 0.0)
        if not first.empty:
            return first


def _textured_disc(scene, texture, cx, cy, r=22):
    """``scene`` with a disc of radius ``r`` at (cx, cy) painted with ``texture`` (60 x 60) moving with it."""
    h, w = scene.shape[:2]
    frame = scene.copy()
    ys, xs = np.nonzero(_ellipse(h, w, cx, cy, r, r))
    frame[ys, xs] = texture[(ys - int(cy) + 30) % 60, (xs - int(cx) + 30) % 60]
    return frame


def _disc_logits(win, cx, cy, r=22, n=96):
    """A window's n x n logits for a disc at (cx, cy): +5 inside, -5 outside (at output pixel centres)."""
    u = (np.arange(n) + 0.5) / n
    xs, ys = win[0] + u * (win[2] - win[0]), win[1] + u * (win[3] - win[1])
    inside = (xs[None, :] - cx) ** 2 + (ys[:, None] - cy) ** 2 <= r**2
    return np.where(inside, 5.0, -5.0).astype(np.float32)


def _motion_cases(rng, count):
    """Pairs of frames (the second the first moved by a random shift, brightened, re-noised),
    masks (an ellipse around the anchor, none, empty, or a speck below the weight floor),
    anchors (some by the border), extents (below and above the cells) and radii."""
    cases = []
    for k in range(count):
        h, w = int(rng.integers(60, 150)), int(rng.integers(60, 190))
        pad = 40
        big = _smooth_frame(rng, h, w, pad)
        dx, dy = (int(v) for v in rng.integers(-pad // 2, pad // 2 + 1, 2))
        previous = big[pad : pad + h, pad : pad + w]
        current = big[pad - dy : pad - dy + h, pad - dx : pad - dx + w].astype(np.int16)
        current = np.clip(current + int(rng.integers(-20, 21)) + rng.integers(-3, 4, current.shape), 0, 255)
        current = current.astype(np.uint8)
        if k % 5 == 0:  # the anchor by (or past) the border: clamped blocks
            anchor = (float(rng.choice([rng.uniform(-5, 8), rng.uniform(w - 8, w + 5)])), float(rng.uniform(0, h)))
        else:
            anchor = (float(rng.uniform(0, w)), float(rng.uniform(0, h)))
        extent = float(rng.choice([rng.uniform(3, 23), rng.uniform(24, 80), rng.uniform(80, 200)]))
        radius = float(rng.uniform(0.5, 60))
        kind = k % 4
        if kind == 0:
            mask = None
        elif kind == 1:
            mask = np.zeros((h, w), bool)
        elif kind == 2:
            mask = _ellipse(h, w, *anchor, max(1.0, extent / 2 * rng.uniform(0.5, 1.2)), max(1.0, extent / 2))
        else:
            mask = np.zeros((h, w), bool)
            mask[int(min(max(anchor[1], 0), h - 1)), int(min(max(anchor[0], 0), w - 1))] = True  # below the floor
        cells = int(rng.choice([2, 3, 8, 24, 31]))
        cases.append((previous, current, mask, anchor, extent, radius, cells))
    return cases


MOTION_JS = """
const dec = (s) => Uint8Array.from(Buffer.from(s, 'base64'));
return data.map((c) => {
  const prev = t.lumaPlane(dec(c.previous), c.w, c.h, 3);
  const cur = t.lumaPlane(dec(c.current), c.w, c.h, 3);
  const mask = c.mask === null ? null : dec(c.mask);
  return {shift: t.estimateShift(prev, cur, c.w, c.h, mask, c.anchor, c.extent, c.radius, c.cells),
          luma: Array.from(prev.subarray(0, 50))};
});
"""


def test_track_motion_shift_matches_python_bit_for_bit():
    """track.js estimateShift (luma, blocks, the coarse and fine searches, the sub-block vertex)
    gives the very doubles motion.estimate_shift gives, on random smooth frames moved by random
    shifts, with and without masks, by the border, at small and large extents and cells."""
    from picosam2.track.motion import estimate_shift, luma

    rng = np.random.default_rng(23)
    cases = _motion_cases(rng, 48)
    data = [
        {
            "previous": _b64(p), "current": _b64(c), "w": p.shape[1], "h": p.shape[0],
            "mask": None if m is None else _b64(m), "anchor": list(a), "extent": e, "radius": r, "cells": n,
        }
        for p, c, m, a, e, r, n in cases
    ]  # fmt: skip
    js = run_track_js(MOTION_JS, data)
    moved = fractional = 0
    for (p, c, m, a, e, r, n), got in zip(cases, js):
        want = estimate_shift(p, c, m, a, e, r, n)
        assert got["shift"] == [float(want[0]), float(want[1])], (a, e, r, n)  # exact, not close
        assert got["luma"] == luma(p).ravel()[:50].tolist()
        moved += want != (0.0, 0.0)
        fractional += any(v != int(v) for v in want)
    assert moved > len(cases) // 2 and fractional > 0  # real shifts, sub-block vertices seen


def test_track_policy_steps_with_image_shifts_match_python():
    """update() with a measured shift (motion "image": the anchor moves with the image, velocity
    the capped shift, mask_pull towards the mask; lost frames move by the shift) and without one,
    chained over random sequences, gives the same states and statuses in JS and Python; so does
    motion "mask", which ignores the shift."""
    from picosam2.track import TrackPolicy
    from picosam2.track import policy as P

    rng = np.random.default_rng(29)
    runs = []
    for policy in (
        TrackPolicy(),
        TrackPolicy(mask_pull=0.3, max_speed=0.1, sweep_per_frame=2),
        TrackPolicy(motion="mask", anchor="centroid"),
    ):
        for _ in range(3):
            size = (int(rng.integers(100, 1900)), int(rng.integers(100, 1100)))
            first = _first_blob(rng)
            state = P.start_state(first, policy)
            frames = []
            for _ in range(50):
                wins = P.next_windows(state, size, policy)
                obs = [P.observe(_blob_logits(rng), w, float(rng.random()), 0.0) for w in wins]
                shift = None if rng.random() < 0.15 else [float(v) for v in rng.normal(0, 25, 2).round(2)]
                radius = P.motion_radius(state, policy)
                best = P.best_observation(state, obs, policy)
                state, status = P.update(state, None if best is None else obs[best], policy, shift)
                frames.append(
                    {"obs": [_obs_dict(o) for o in obs], "shift": shift, "radius": radius, "best": best,
                     "state": _state_dict(state), "status": status}
                )  # fmt: skip
            runs.append({"policy": dataclasses_asdict(policy), "first": _obs_dict(first), "frames": frames})
    js = run_track_js(
        """return data.map((run) => {
             let state = t.startState(run.first, run.policy);
             return run.frames.map((f) => {
               const radius = t.motionRadius(state, run.policy);
               const best = t.bestObservation(state, f.obs, run.policy);
               const [next, status] = t.update(state, best === null ? null : f.obs[best], run.policy, f.shift);
               state = next;
               return {obs: f.obs, shift: f.shift, radius, best, state, status};
             });
           });""",
        runs,
    )
    assert _matched_statuses(runs, js) == {"tracking", "lost", "reacquired"}


def test_follower_measures_the_image_motion_as_the_tracker_does():
    """track.js Follower over frames of a textured object moving across a textured scene: each
    frame it matches the last frame's luma (weighted by the object's last mask, as the page keeps
    it) against this one and folds the shift into the policy, as picosam2.track.Tracker does: the
    same shifts, windows and states as the Python loop; without a frame, no shift. (Its frames
    carry luma only, so the colours go unchecked: test_follower_checks_the_colours_as_the_tracker_does.)"""
    from picosam2.prompts import Window, window_mask
    from picosam2.track import TrackPolicy
    from picosam2.track import policy as P
    from picosam2.track.motion import estimate_shift

    rng = np.random.default_rng(31)
    h, w = 150, 200
    scene = _smooth_frame(rng, h, w)
    texture = _smooth_frame(rng, 60, 60)
    path = [(60.0 + 7 * k + rng.uniform(-2, 2), 70.0 + 3 * k) for k in range(12)]
    policy = TrackPolicy()

    frames = [_textured_disc(scene, texture, *c) for c in path]
    first_win = (20, 30, 116, 126)
    first_logits = _disc_logits(first_win, *path[0])
    first = P.observe(first_logits, first_win, 0.9, 0.0)

    def paste(logits, win):
        mask = np.zeros((h, w), bool)
        part = window_mask(logits, Window(*win), (w, h), 0.0)
        if part is not None:
            mask[part[0]] = part[1]
        return mask

    # the Python loop, as Tracker.update runs it for one object
    state, mask, previous = P.start_state(first, policy), paste(first_logits, first_win), frames[0]
    want, steps = [], []
    for k in range(1, len(frames)):
        (win,) = P.next_windows(state, (w, h), policy)
        logits = _disc_logits(win, *path[k])
        obs = P.observe(logits, win, 0.9, 0.0)
        shift = estimate_shift(
            previous, frames[k], mask if mask.any() else None, state.anchor, state.extent,
            P.motion_radius(state, policy), policy.motion_cells,
        )  # fmt: skip
        best = P.best_observation(state, [obs], policy)
        state, status = P.update(state, None if best is None else obs, policy, shift)
        mask = paste(logits, win) if best is not None else np.zeros((h, w), bool)
        previous = frames[k]
        want.append({"window": list(win), "shift": list(shift), "state": _state_dict(state), "status": status})
        steps.append({"logits": logits.ravel().tolist(), "mask": _b64(mask.astype(np.uint8))})
    js = run_track_js(
        """const dec = (s) => Uint8Array.from(Buffer.from(s, 'base64'));
           const {w, h} = data;
           const frameOf = (k, mask) => ({luma: t.lumaPlane(dec(data.frames[k]), w, h, 3), width: w, height: h,
                                          mask: () => mask});
           const follower = new t.Follower(data.policy);
           let mask = dec(data.firstMask);
           const id = follower.start(data.first, frameOf(0, null));
           const out = data.steps.map((s, i) => {
             const plan = follower.plan([w, h]);
             const [r] = follower.observeFrame(plan, Float32Array.from(s.logits), null, 96, 0, frameOf(i + 1, mask));
             mask = dec(s.mask);  // the page pastes the accepted window's mask
             const o = follower.objects.get(id);
             return {window: r.window, shift: r.shift, state: o.state, status: r.state};
           });
           const bare = new t.Follower(data.policy);
           bare.start(data.first, null);
           const [r] = bare.observeFrame(bare.plan([w, h]), Float32Array.from(data.steps[0].logits), null, 96, 0, null);
           return {out, bareShift: r.shift};""",
        {
            "w": w, "h": h, "policy": dataclasses_asdict(policy), "first": _obs_dict(first),
            "frames": [_b64(f) for f in frames], "firstMask": _b64(paste(first_logits, first_win).astype(np.uint8)),
            "steps": steps,
        },
    )  # fmt: skip
    for k, (a, b) in enumerate(zip(want, js["out"])):
        _close(a, b, f"frame {k + 1}")
    assert js["bareShift"] is None
    assert all(s["status"] == "tracking" for s in want)
    moves = [np.hypot(*s["shift"]) for s in want]
    assert np.mean(moves) > 4  # the object really moved, and the image said so


# ---------------------------------------------------------------- the colour check (track.js)


def _rgba(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` with an opaque alpha channel, as the page's getImageData gives a frame."""
    return np.concatenate([rgb, np.full(rgb.shape[:-1] + (1,), 255, np.uint8)], axis=-1)


def test_appearance_matches_python_bit_for_bit():
    """track.js histogram / normalised / similarity / blend of random pixels (RGB and RGBA, every
    pixel or under a mask, the extremes 0 and 255 included) are appearance.py's: the same counts
    and the very same doubles; windowHistogram (a window mask's pixels, the window partly or wholly
    off the image) counts what tracker.py counts from prompts.window_mask."""
    from picosam2.prompts import Window, window_mask
    from picosam2.track import appearance as A

    rng = np.random.default_rng(41)
    cases = []
    for k in range(30):
        h, w = int(rng.integers(1, 60)), int(rng.integers(1, 80))
        if k % 3 == 0:
            px = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        else:  # few colours, so the similarities are far from 0
            px = _smooth_frame(rng, h, w)
        px[0, 0] = (0, 0, 0)
        px[-1, -1] = (255, 255, 255)
        if k % 5 == 1:
            px[:, : w // 2] = (255, 0, 0)
        mask = None if k % 4 == 0 else rng.random((h, w)) < rng.uniform(0, 0.9)
        if k == 3:
            mask[:] = False  # nothing counts: null
        channels = 4 if k % 2 else 3
        cases.append((px, mask, channels, float(rng.choice([0.1, 0.25, 0.5, 1.0]))))
    data = [
        {"px": _b64(px if c == 3 else _rgba(px)), "mask": None if m is None else _b64(m), "channels": c, "rate": r}
        for px, m, c, r in cases
    ]
    js = run_track_js(
        """const dec = (s) => Uint8Array.from(Buffer.from(s, 'base64'));
           const counts = data.map((c) => t.histogram(dec(c.px), c.channels, c.mask === null ? null : dec(c.mask)));
           const ref = t.normalised(counts[1]);
           return data.map((c, i) => counts[i] === null ? null : {
             counts: Array.from(counts[i]), shares: Array.from(t.normalised(counts[i])),
             similarity: t.similarity(counts[i], ref), blend: Array.from(t.blend(ref, counts[i], c.rate)),
           });""",
        data,
    )
    ref = A.normalised(A.histogram(cases[1][0], cases[1][1]))
    sims = []
    for (px, mask, _, rate), got in zip(cases, js):
        want = A.histogram(px, mask)
        if want is None:
            assert got is None
            continue
        assert got["counts"] == want.tolist()
        assert got["shares"] == A.normalised(want).tolist()
        assert got["similarity"] == A.similarity(want, ref)  # exact, not close
        assert got["blend"] == A.blend(ref, want, rate).tolist()
        sims.append(got["similarity"])
    assert js[3] is None and max(sims) == pytest.approx(1.0) and 0.1 < np.median(sims) < 0.99  # the range is used

    # a window mask's pixels, as the tracker takes them
    h, w = 150, 200
    frame = _smooth_frame(rng, h, w)
    windows = [(-50, -40, 46, 56), (20, 30, 116, 126), (150, 100, 310, 260), (-60, 20, 140, 220), (10, 10, 450, 450)]
    windows += [(-300, -300, -100, -100), (250, 10, 346, 106)]  # off the image (left, top, right)
    logits = [_blob_logits(rng) for _ in windows]
    for lg in logits:
        lg[_ellipse(96, 96, 48, 48, 30, 20)] += 6.0  # something there in each
    js = run_track_js(
        """const dec = (s) => Uint8Array.from(Buffer.from(s, 'base64'));
           const lg = Float32Array.from(data.logits.flat());
           return data.windows.map((win, i) => {
             const c = t.windowHistogram(dec(data.px), data.w, data.h, 4, lg, i * 96 * 96, 96, win, 0);
             return c === null ? null : Array.from(c);
           });""",
        {
            "px": _b64(_rgba(frame)),
            "w": w,
            "h": h,
            "windows": windows,
            "logits": [lg.ravel().tolist() for lg in logits],
        },
    )
    for win, lg, got in zip(windows, logits, js):
        part = window_mask(lg, Window(*win), (w, h), 0.0)
        want = None if part is None else A.window_histogram(frame, part, A.sample_step(win[2] - win[0]))
        assert got == (None if want is None else want.tolist()), win
    assert sum(g is None for g in js) == 3 and sum(g is not None for g in js) == 4


def test_best_observation_with_similarities_matches_python():
    """best_observation / looks_alike with measured similarities (some not measured: None),
    chained with update over random sequences with losses and re-acquisitions, probes and several
    sweep windows: the same choices and states in JS and Python, and the colours decide some."""
    from picosam2.track import TrackPolicy
    from picosam2.track import policy as P

    rng = np.random.default_rng(43)
    runs = []
    vetoed = 0
    for policy in (
        TrackPolicy(),
        TrackPolicy(sweep_per_frame=3, probe_every=2, appearance_follow=0.3, appearance_reacquire=0.5),
        TrackPolicy(appearance_follow=0.0, appearance_reacquire=0.9, motion="mask"),
    ):
        for _ in range(3):
            size = (int(rng.integers(300, 1900)), int(rng.integers(300, 1100)))
            first = _first_blob(rng)
            state = P.start_state(first, policy)
            frames = []
            for _ in range(50):
                wins = P.next_windows(state, size, policy)
                obs = [P.observe(_blob_logits(rng), w, float(rng.uniform(0.3, 1)), 0.0) for w in wins]
                sims = (
                    None if rng.random() < 0.1 else [None if rng.random() < 0.1 else float(rng.random()) for _ in wins]
                )
                best = P.best_observation(state, obs, policy, sims)
                vetoed += best != P.best_observation(state, obs, policy)
                state, status = P.update(state, None if best is None else obs[best], policy)
                frames.append({"obs": [_obs_dict(o) for o in obs], "sims": sims, "best": best,
                               "state": _state_dict(state), "status": status})  # fmt: skip
            runs.append({"policy": dataclasses_asdict(policy), "first": _obs_dict(first), "frames": frames})
    js = run_track_js(
        """return data.map((run) => {
             let state = t.startState(run.first, run.policy);
             return run.frames.map((f) => {
               const best = t.bestObservation(state, f.obs, run.policy, f.sims);
               const [next, status] = t.update(state, best === null ? null : f.obs[best], run.policy);
               state = next;
               return {obs: f.obs, sims: f.sims, best, state, status};
             });
           });""",
        runs,
    )
    assert _matched_statuses(runs, js) == {"tracking", "lost", "reacquired"}
    assert vetoed > 10  # the similarities changed the choice


def test_follower_checks_the_colours_as_the_tracker_does():
    """track.js Follower over RGBA frames (as the page reads them) of a red textured object moving
    across a blue-green scene, where on some frames the "network" answers a mask slid off the
    object onto the scene: each window mask's pixels are histogrammed and compared with the
    object's reference (from the first mask, blended on accepted frames) exactly as
    picosam2.track.Tracker.update does; the same similarities (to the bit), choices, windows,
    statuses and states as the Python loop; the off-object masks are refused (lost), the object is
    re-acquired when its own mask comes back."""
    from picosam2.prompts import Window, window_mask
    from picosam2.track import TrackPolicy
    from picosam2.track import appearance as A
    from picosam2.track import policy as P
    from picosam2.track.motion import estimate_shift

    rng = np.random.default_rng(47)
    h, w = 160, 240
    scene = _smooth_frame(rng, h, w)
    scene[..., 0] //= 4  # the scene: little red
    texture = _smooth_frame(rng, 60, 60)
    texture[..., 0] = 160 + texture[..., 0] // 3  # the object: red
    path = [(60.0 + 6 * k + rng.uniform(-2, 2), 70.0 + 2 * k) for k in range(16)]
    slid = {5: 40, 6: 40, 7: 42, 11: -38}  # frame -> the mask's slide (px) off the object
    policy = TrackPolicy()

    def paste(logits, win):
        mask = np.zeros((h, w), bool)
        part = window_mask(logits, Window(*win), (w, h), 0.0)
        if part is not None:
            mask[part[0]] = part[1]
        return mask

    frames = [_textured_disc(scene, texture, *c) for c in path]
    first_win = (20, 30, 116, 126)
    first_logits = _disc_logits(first_win, *path[0])
    first = P.observe(first_logits, first_win, 0.9, 0.0)
    first_mask = paste(first_logits, first_win)

    # the Python loop, as Tracker.start / Tracker.update run it for one object
    state, mask, previous = P.start_state(first, policy), first_mask, frames[0]
    reference = A.normalised(A.histogram(frames[0], first_mask))
    want, steps = [], []
    for k in range(1, len(frames)):
        wins = P.next_windows(state, (w, h), policy)
        cx, cy = path[k]
        logits = [_disc_logits(win, cx + slid.get(k, 0), cy) for win in wins]
        obs = [P.observe(lg, win, 0.9, 0.0) for lg, win in zip(logits, wins)]
        shift = estimate_shift(
            previous, frames[k], mask if mask.any() else None, state.anchor, state.extent,
            P.motion_radius(state, policy), policy.motion_cells,
        )  # fmt: skip
        parts = [
            None if o.empty else window_mask(lg, Window(*win), (w, h), 0.0) for o, lg, win in zip(obs, logits, wins)
        ]
        counts = [
            None if p is None else A.window_histogram(frames[k], p, A.sample_step(win[2] - win[0]))
            for p, win in zip(parts, wins)
        ]
        sims = [None if c is None else A.similarity(c, reference) for c in counts]
        best = P.best_observation(state, obs, policy, sims)
        state, status = P.update(state, None if best is None else obs[best], policy, shift)
        mask = np.zeros((h, w), bool)
        if best is not None:
            mask = paste(logits[best], wins[best])
            if counts[best] is not None:
                reference = A.blend(reference, counts[best], policy.appearance_rate)
        previous = frames[k]
        want.append({"window": list(wins[-1] if best is None else wins[best]), "similarities": sims,
                     "state": _state_dict(state), "status": status, "reference": reference.tolist()})  # fmt: skip
        steps.append({"logits": [v for lg in logits for v in lg.ravel().tolist()], "mask": _b64(mask.astype(np.uint8))})
    js = run_track_js(
        """const dec = (s) => Uint8Array.from(Buffer.from(s, 'base64'));
           const {w, h} = data;
           const frameOf = (k, mask) => {
             const pixels = dec(data.frames[k]);
             return {pixels, channels: 4, luma: t.lumaPlane(pixels, w, h, 4), width: w, height: h, mask: () => mask};
           };
           const follower = new t.Follower(data.policy);
           let mask = dec(data.firstMask);
           const id = follower.start(data.first, frameOf(0, null), mask);
           const out = data.steps.map((s, i) => {
             const plan = follower.plan([w, h]);
             const [r] = follower.observeFrame(plan, Float32Array.from(s.logits), null, 96, 0, frameOf(i + 1, mask));
             mask = dec(s.mask);  // the page pastes the accepted window's mask
             const o = follower.objects.get(id);
             return {window: r.window, similarities: r.similarities, state: o.state, status: r.state,
                     reference: Array.from(o.appearance)};
           });
           // without pixels the colours are not checked
           const bare = new t.Follower(data.policy);
           bare.start(data.first, null, null);
           const [r] = bare.observeFrame(bare.plan([w, h]), Float32Array.from(data.steps[0].logits), null, 96, 0, null);
           return {out, bare: [r.similarities, bare.objects.get(1).appearance]};""",
        {
            "w": w, "h": h, "policy": dataclasses_asdict(policy), "first": _obs_dict(first),
            "frames": [_b64(_rgba(f)) for f in frames], "firstMask": _b64(first_mask.astype(np.uint8)),
            "steps": steps,
        },
    )  # fmt: skip
    for k, (a, b) in enumerate(zip(want, js["out"])):
        assert a["similarities"] == b["similarities"], f"frame {k + 1}"  # exact, not close
        assert a["reference"] == b["reference"], f"frame {k + 1}"
        _close(a, b, f"frame {k + 1}")
    assert js["bare"] == [None, None]
    statuses = [s["status"] for s in want]
    assert statuses[4:7] == ["lost"] * 3 and "reacquired" in statuses[7:], statuses
    assert statuses.count("tracking") >= 8, statuses
    sims = [s for f in want for s in f["similarities"] if s is not None]
    assert min(sims) < policy.appearance_follow < policy.appearance_reacquire < max(sims)
