"""Measure changes against tracker drift on generated sequences: region J only, one thread.

Each variant changes the :class:`picosam2.track.Tracker` from outside, for measurement only
(nothing here is used by the package): fields of :class:`picosam2.track.TrackPolicy`, plus

- ``component``: ``"centre"`` keeps only the window mask's 4-connected part at (or nearest to)
  the window centre, ``"largest"`` only its largest part (applied to every window's logits);
- ``threshold``: the mask logit threshold (default 0);
- ``extent_range`` R: the followed extent is kept within [e0 / R, e0 x R] of the first frame's
  extent e0 (so a leak onto a large neighbour cannot blow the window up; the sweep uses it too);
- ``area_range`` R: the same for the reference area that loss and re-acquisition are judged by;
- ``extent_step`` x: the extent changes by at most a factor 1 + x per frame;
- ``colour_gate`` b: an accepted window mask whose 8 x 8 x 8 RGB histogram has a Bhattacharyya
  coefficient below b against the object's template (first frame, updated 5 % per accepted
  frame) is treated as a loss.

Objects start from a click at the most interior pixel of frame 0 (as ``eval-video --init click``);
scored as ``scripts/track_policy_grid.py`` does (the same ``evaluate``). Choose on the select
split only.

    python scripts/track_drift_variants.py SELECT_ROOT --weights model-int8.onnx \\
        --variants '{"default": {}, "centre part": {"component": "centre"}}' --out drift.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

EXTRA = {
    "component": None,
    "threshold": 0.0,
    "extent_range": 0.0,
    "area_range": 0.0,
    "extent_step": 0.0,
    "colour_gate": 0.0,
}
SET = dict(EXTRA)


def component_at(m: np.ndarray, r: int, c: int) -> np.ndarray:
    """The 4-connected part of ``m`` holding (r, c), or the mask pixel nearest it."""
    if not m[r, c]:
        ys, xs = np.nonzero(m)
        k = int(np.argmin((ys - r) ** 2 + (xs - c) ** 2))
        r, c = int(ys[k]), int(xs[k])
    seed = np.zeros_like(m)
    seed[r, c] = True
    while True:
        g = seed.copy()
        g[1:] |= seed[:-1]
        g[:-1] |= seed[1:]
        g[:, 1:] |= seed[:, :-1]
        g[:, :-1] |= seed[:, 1:]
        g &= m
        if (g == seed).all():
            return g
        seed = g


def largest_component(m: np.ndarray) -> np.ndarray:
    best, left = None, m.copy()
    while left.any():
        ys, xs = np.nonzero(left)
        c = component_at(left, int(ys[0]), int(xs[0]))
        if best is None or c.sum() > best.sum():
            best = c
        left &= ~c
        if best.sum() * 2 > m.sum():
            break
    return best


def colour_hist(pixels: np.ndarray, bins: int = 8) -> np.ndarray:
    q = (pixels.astype(np.int32) * bins) // 256
    h = np.bincount((q[:, 0] * bins + q[:, 1]) * bins + q[:, 2], minlength=bins**3).astype(np.float64)
    return h / max(h.sum(), 1.0)


def paired(report: dict, reference: str = "default") -> None:
    """Add to each variant its per-object J difference to ``reference``: mean, standard error and
    how many objects gained or lost more than 0.005."""
    base = report["variants"].get(reference, {}).get("per_object")
    if not base:
        return
    for row in report["variants"].values():
        d = np.array([row["per_object"][k] - base[k] for k in base])
        row["vs_default"] = {
            "dJ": round(float(d.mean()), 4),
            "se": round(float(d.std(ddof=1) / np.sqrt(len(d))), 4),
            "better": int((d > 0.005).sum()),
            "worse": int((d < -0.005).sum()),
        }


def install():
    """Patch the predictor, the policy and the tracker so that :data:`SET` takes effect."""
    from picosam2.predictor import Predictor
    from picosam2.prompts import Window, window_mask
    from picosam2.track import policy as P
    from picosam2.track import tracker as T

    run = Predictor.run_windows

    def run_windows(self, image, windows):
        out = run(self, image, windows)
        if SET["component"]:
            logits = np.array(out.logits, copy=True)
            for i in range(len(logits)):
                m = logits[i] > self.threshold
                if m.any():
                    n = m.shape[0]
                    keep = component_at(m, n // 2, n // 2) if SET["component"] == "centre" else largest_component(m)
                    logits[i][m & ~keep] = -10.0
            out.logits = logits
        return out

    Predictor.run_windows = run_windows

    @dataclass(frozen=True)
    class RefState(P.TrackState):
        ref_extent: float = 0.0
        ref_area: float = 0.0

    start, update = P.start_state, P.update
    base_fields = [f.name for f in fields(P.TrackState)]

    def start_state(obs, policy):
        s = start(obs, policy)
        return RefState(**asdict(s), ref_extent=s.extent, ref_area=s.area)

    def bounded_update(state, obs, policy):
        new, status = update(state, obs, policy)
        e, area = new.extent, new.area
        if obs is not None:
            if SET["extent_step"] and not state.lost:
                x = 1 + SET["extent_step"]
                e = min(max(e, state.extent / x), state.extent * x)
            if SET["extent_range"]:
                e = min(max(e, state.ref_extent / SET["extent_range"]), state.ref_extent * SET["extent_range"])
            if SET["area_range"]:
                area = min(max(area, state.ref_area / SET["area_range"]), state.ref_area * SET["area_range"])
        d = {k: getattr(new, k) for k in base_fields}
        d.update(extent=e, area=area)
        return RefState(**d, ref_extent=state.ref_extent, ref_area=state.ref_area), status

    P.start_state, P.update = start_state, bounded_update

    class GatedTracker(T.Tracker):
        def start(self, frame, **kw):
            r = super().start(frame, **kw)
            self.predictor.threshold = SET["threshold"]
            self._template = getattr(self, "_template", {})
            self._template[r.obj_id] = colour_hist(frame[r.mask])
            return r

        def update(self, image):
            height, width = image.shape[:2]
            size = (width, height)
            plan = [
                (i, [Window(*w) for w in P.next_windows(o.state, size, self.policy)]) for i, o in self._objects.items()
            ]
            out = self.predictor.run_windows(image, [w for _, ws in plan for w in ws])
            thr, results, k = self.predictor.threshold, {}, 0
            for oid, wins in plan:
                idx = range(k, k + len(wins))
                k += len(wins)
                obs = [
                    P.observe(out.logits[i], wins[j], None if out.scores is None else out.scores[i], thr)
                    for j, i in enumerate(idx)
                ]
                obj = self._objects[oid]
                best = P.best_observation(obj.state, obs, self.policy)
                part = hist = None
                if best is not None:
                    part = window_mask(out.logits[idx[best]], wins[best], size, thr)
                    if part is not None and SET["colour_gate"]:
                        hist = colour_hist(image[part[0]][part[1]])
                        if float(np.sqrt(hist * self._template[oid]).sum()) < SET["colour_gate"]:
                            best = None
                obj.state, status = P.update(obj.state, None if best is None else obs[best], self.policy)
                mask = np.zeros((height, width), bool)
                if best is None:
                    results[oid] = T.ObjectResult(oid, mask, 0.0, wins[-1].as_tuple(), status, len(wins))
                    continue
                if part is not None:
                    mask[part[0]] = part[1]
                    if hist is not None:
                        self._template[oid] = 0.95 * self._template[oid] + 0.05 * hist
                results[oid] = T.ObjectResult(oid, mask, obs[best].score, wins[best].as_tuple(), status, len(wins))
            return results

    import picosam2.track

    picosam2.track.Tracker = GatedTracker


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="a DAVIS-layout folder (the select split)")
    ap.add_argument("--variants", required=True, help='JSON {"name": {fields}, ...} or a .json file')
    ap.add_argument("--weights", default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import track_policy_grid as grid

    from picosam2.eval.video import read_conditions, read_davis
    from picosam2.io_utils import write_json_atomic
    from picosam2.predictor import Predictor
    from picosam2.track import TrackPolicy

    install()
    text = args.variants
    variants = json.loads(open(text).read() if text.endswith(".json") else text)
    predictor = Predictor.from_pretrained(args.weights, threads=1)
    sequences, conditions = read_davis(args.root), read_conditions(args.root)
    report = {
        "root": Path(args.root).name,
        "weights": Path(args.weights).name if args.weights else "shipped",
        "sequences": len(sequences),
        "variants": {},
    }
    for name, given in variants.items():
        t0 = time.time()
        SET.clear()
        SET.update(EXTRA)
        SET.update({k: v for k, v in given.items() if k in EXTRA})
        policy = TrackPolicy(**{k: v for k, v in given.items() if k not in EXTRA})
        predictor.threshold = SET["threshold"]
        row = grid.evaluate(predictor, sequences, conditions, policy)
        report["variants"][name] = {"changes": given, **row}
        paired(report)
        grid.print_row(name, row, t0)
        write_json_atomic(report, args.out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
