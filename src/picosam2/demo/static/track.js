// Following objects through video in the browser: a line-by-line port of picosam2/track/policy.py
// (the window policy: where each frame's window goes, from the masks of the frames before it), of
// picosam2/track/motion.py (how far the image moved around an object: integer block matching, bit
// for bit), of picosam2/track/appearance.py (the colour histogram a window mask's pixels must share
// with the object's: integer counts, a similarity summed in bin order, the same doubles) and of the
// per-frame loop of picosam2/track/tracker.py. No model: the page (video.js)
// cuts the windows and runs the network. tests/test_demo_js.py compares this file with the
// Python, step by step.
//
//   nextWindows(state, size, policy)  -> the frame's windows of one object ([x0, y0, x1, y1])
//   observe(logits, offset, n, win, score, threshold) -> what one window's mask says
//   bestObservation(state, observations, policy, similarities) -> the index the object takes, or null
//   histogram(pixels, channels, mask) / windowHistogram(...) -> colour counts of a mask's pixels
//   similarity(counts, reference), normalised(counts), blend(reference, counts, rate)
//   estimateShift(previous, current, width, height, mask, anchor, extent, radius, cells)
//                                     -> [dx, dy]: the image's motion around the anchor (luma planes)
//   update(state, observation | null, policy, shift) -> [new state, "tracking" | "lost" | "reacquired"]
//
// States are plain objects {anchor: [x, y], velocity: [vx, vy], extent, area, grow, lost, frames}
// and observations {area, box: [x0, y0, x1, y1], interior: [x, y], centroid: [x, y],
// touch: [left, top, right, bottom], score}, all in image pixels, as the Python dataclasses.

import { resizeFloat, roundHalfEven } from "./windows.js";

export const STATES = ["tracking", "lost", "reacquired"];
export const ANCHORS = ["interior", "centroid", "box"];
export const MOTIONS = ["image", "mask"];

/** policy.SWEEP: (offset x, offset y) in object extents and a window-size factor, one entry
 * per lost frame, cycled. */
export const SWEEP = [
  [0.0, 0.0, 1.0],
  [0.0, 0.0, 1.8],
  [-0.6, 0.0, 1.0],
  [0.6, 0.0, 1.0],
  [0.0, -0.6, 1.0],
  [0.0, 0.6, 1.0],
  [0.0, 0.0, 3.0],
  [-0.6, -0.6, 1.4],
  [0.6, -0.6, 1.4],
  [-0.6, 0.6, 1.4],
  [0.6, 0.6, 1.4],
];

/** policy.SWEEP_RINGS: each full sweep cycle without a find spreads the offsets one object extent
 * further, up to this many times the first cycle's reach. */
export const SWEEP_RINGS = 4;

/** TrackPolicy's defaults. The app serves the Python values in /api/info (track_policy), which
 * the page uses; these are the fallback. */
export const DEFAULT_POLICY = Object.freeze({
  anchor: "interior",
  margin: 1.2,
  min_side: 96.0,
  max_side: 1.5,
  position_gain: 1.0,
  velocity_gain: 0.5,
  max_speed: 1.0,
  size_smoothing: 0.5,
  area_smoothing: 0.2,
  border_grow: 1.4,
  border_touch: 0.05,
  lost_score: 0.2,
  area_jump: 6.0,
  jump: 1.5,
  reacquire_score: 0.4,
  reacquire_area: 2.5,
  coast_decay: 0.8,
  sweep_per_frame: 1,
  max_lost: 11,
  motion: "image",
  motion_cells: 32,
  motion_search: 0.15,
  mask_pull: 0.0,
  probe_every: 0,
  probe_scale: 1.6,
  probe_margin: 0.05,
  appearance_follow: 0.6,
  appearance_reacquire: 0.8,
  appearance_rate: 0.1,
});

export const EMPTY = Object.freeze({ area: 0.0, box: [0, 0, 0, 0], interior: [0, 0], centroid: [0, 0], touch: [0, 0, 0, 0], score: 0.0 });

export function isEmpty(obs) {
  return obs.area <= 0;
}

export function anchorOf(obs, rule) {
  if (rule === "interior") return obs.interior;
  if (rule === "centroid") return obs.centroid;
  const [x0, y0, x1, y1] = obs.box;
  return [(x0 + x1) / 2.0, (y0 + y1) / 2.0];
}

export function extentOf(obs, anchor) {
  const [x0, y0, x1, y1] = obs.box;
  const [ax, ay] = anchor;
  return 2.0 * Math.max(ax - x0, x1 - ax, ay - y0, y1 - ay, 0.5);
}

export function startState(obs, policy = DEFAULT_POLICY) {
  const a = anchorOf(obs, policy.anchor);
  return { anchor: a, velocity: [0.0, 0.0], extent: extentOf(obs, a), area: obs.area, grow: 1.0, lost: 0, frames: 1 };
}

export function side(extent, factor, size, policy) {
  const longer = Math.max(size[0], size[1]);
  return Math.min(Math.max(policy.margin * extent * factor, policy.min_side), policy.max_side * longer);
}

export function square(cx, cy, s, size) {
  const [width, height] = size;
  cx = Math.min(Math.max(cx, 0.0), width - 1.0);
  cy = Math.min(Math.max(cy, 0.0), height - 1.0);
  const n = Math.max(1, roundHalfEven(s));
  const x0 = Math.floor(cx + 0.5 - n / 2.0);
  const y0 = Math.floor(cy + 0.5 - n / 2.0);
  return [x0, y0, x0 + n, y0 + n];
}

export function predictedAnchor(state) {
  return [state.anchor[0] + state.velocity[0], state.anchor[1] + state.velocity[1]];
}

/** Python's k % n for k >= 0. */
function mod(k, n) {
  return ((k % n) + n) % n;
}

export function sweepEntry(state, k, size, policy) {
  const n = SWEEP.length + (policy.max_lost && state.lost > policy.max_lost ? 1 : 0);
  k = mod(k, n);
  if (k === SWEEP.length) return [state.anchor[0], state.anchor[1], policy.max_side * Math.max(size[0], size[1])];
  const [du, dv, f] = SWEEP[k];
  const e = state.extent * Math.min(1 + Math.floor((state.lost - 1) / SWEEP.length), SWEEP_RINGS); // later cycles reach further
  return [state.anchor[0] + du * e, state.anchor[1] + dv * e, side(state.extent, f, size, policy)];
}

/** This frame's windows for one object: one while following (and every probe_every frames a
 * probe of another size at the same centre); sweep_per_frame sweep windows while lost. */
export function nextWindows(state, size, policy = DEFAULT_POLICY) {
  if (state.lost === 0) {
    const [cx, cy] = predictedAnchor(state);
    const wins = [square(cx, cy, side(state.extent, state.grow, size, policy), size)];
    if (policy.probe_every && mod(state.frames, policy.probe_every) === 0) {
      const up = mod(Math.floor(state.frames / policy.probe_every), 2) === 0;
      const factor = up ? policy.probe_scale : 1.0 / policy.probe_scale;
      const probe = square(cx, cy, side(state.extent, state.grow * factor, size, policy), size);
      if (probe.some((v, i) => v !== wins[0][i])) wins.push(probe);
    }
    return wins;
  }
  const first = (state.lost - 1) * policy.sweep_per_frame;
  const out = [];
  for (let j = 0; j < policy.sweep_per_frame; j++) {
    const [cx, cy, s] = sweepEntry(state, first + j, size, policy);
    out.push(square(cx, cy, s, size));
  }
  return out;
}

function ratio(a, b) {
  if (a <= 0 || b <= 0) return Infinity;
  return Math.max(a / b, b / a);
}

export function accepts(state, obs, policy = DEFAULT_POLICY) {
  if (isEmpty(obs)) return false;
  if (state.lost) return obs.score >= policy.reacquire_score && ratio(obs.area, state.area) <= policy.reacquire_area;
  if (obs.score < policy.lost_score || ratio(obs.area, state.area) > policy.area_jump) return false;
  const [px, py] = predictedAnchor(state);
  const [ax, ay] = anchorOf(obs, policy.anchor);
  return Math.hypot(ax - px, ay - py) <= policy.jump * state.extent;
}

/** policy.looks_alike: whether a mask whose colours have `similarity` to the object's reference
 * may continue it (appearance_follow) or end its loss (appearance_reacquire); null: not measured. */
export function looksAlike(state, similarity, policy = DEFAULT_POLICY) {
  if (similarity === null || similarity === undefined) return true;
  return similarity >= (state.lost ? policy.appearance_reacquire : policy.appearance_follow);
}

/** The accepted observation (accepts, and looksAlike with similarities[i] when `similarities` is
 * given) with the highest score (a following object's main window, index 0, gets probe_margin
 * added), or null. */
export function bestObservation(state, observations, policy = DEFAULT_POLICY, similarities = null) {
  const rank = (i) => observations[i].score + (i === 0 && !state.lost ? policy.probe_margin : 0.0);
  const order = observations.map((_, i) => i).sort((i, j) => rank(j) - rank(i));
  for (const i of order) {
    if (accepts(state, observations[i], policy) && (similarities === null || similarities === undefined || looksAlike(state, similarities[i], policy))) return i;
  }
  return null;
}

/** TrackPolicy.uses_appearance: whether the window masks' colours are checked. */
export function usesAppearance(policy = DEFAULT_POLICY) {
  return policy.appearance_follow > 0 || policy.appearance_reacquire > 0;
}

export function touches(obs, policy) {
  return Math.max(...obs.touch) > policy.border_touch;
}

/** policy.motion_radius: the largest image shift (pixels) estimateShift searches this frame. */
export function motionRadius(state, policy = DEFAULT_POLICY) {
  return policy.motion_search * state.extent + Math.hypot(state.velocity[0], state.velocity[1]);
}

function capped(v, cap) {
  const speed = Math.hypot(v[0], v[1]);
  if (speed > cap) return [(v[0] * cap) / speed, (v[1] * cap) / speed];
  return [v[0], v[1]];
}

/** policy.update: `shift` is the image's motion around the anchor since the last frame
 * (estimateShift; used under motion "image"), or null when not measured. */
export function update(state, obs, policy = DEFAULT_POLICY, shift = null) {
  const byImage = policy.motion === "image" && shift !== null && shift !== undefined;
  if ((obs === null || obs === undefined) && byImage) {
    return [
      {
        ...state,
        anchor: [state.anchor[0] + shift[0], state.anchor[1] + shift[1]],
        velocity: capped(shift, policy.max_speed * state.extent),
        grow: 1.0,
        lost: state.lost + 1,
        frames: state.frames + 1,
      },
      "lost",
    ];
  }
  if (obs === null || obs === undefined) {
    const [vx, vy] = state.velocity;
    return [
      {
        ...state,
        anchor: [state.anchor[0] + vx, state.anchor[1] + vy],
        velocity: [vx * policy.coast_decay, vy * policy.coast_decay],
        grow: 1.0,
        lost: state.lost + 1,
        frames: state.frames + 1,
      },
      "lost",
    ];
  }
  const m = anchorOf(obs, policy.anchor);
  const e = extentOf(obs, m);
  let velocity;
  let extent;
  let anchor = m;
  if (state.lost) {
    velocity = [0.0, 0.0];
    extent = e;
  } else if (byImage) {
    // the image moves the anchor; the mask pulls it by mask_pull and sets the size
    velocity = capped(shift, policy.max_speed * state.extent);
    const mx = state.anchor[0] + shift[0];
    const my = state.anchor[1] + shift[1];
    anchor = [mx + policy.mask_pull * (m[0] - mx), my + policy.mask_pull * (m[1] - my)];
    extent = policy.size_smoothing * e + (1 - policy.size_smoothing) * state.extent;
  } else {
    // alpha-beta filter on the innovation (measured minus predicted), the speed capped
    const [px, py] = predictedAnchor(state);
    const rx = m[0] - px;
    const ry = m[1] - py;
    const g = policy.velocity_gain;
    velocity = [state.velocity[0] + g * rx, state.velocity[1] + g * ry];
    const speed = Math.hypot(velocity[0], velocity[1]);
    const cap = policy.max_speed * state.extent;
    if (speed > cap) velocity = [(velocity[0] * cap) / speed, (velocity[1] * cap) / speed];
    const a = policy.position_gain;
    anchor = [px + a * rx, py + a * ry];
    extent = policy.size_smoothing * e + (1 - policy.size_smoothing) * state.extent;
  }
  const a = policy.area_smoothing;
  const next = {
    anchor,
    velocity,
    extent,
    area: a * obs.area + (1 - a) * state.area,
    grow: touches(obs, policy) ? policy.border_grow : 1.0,
    lost: 0,
    frames: state.frames + 1,
  };
  return [next, state.lost ? "reacquired" : "tracking"];
}

// ---------------------------------------------------------------- observations of a window mask

/** policy.interior_index: [row, col] of the most interior pixel of a non-empty n x n 0/1 mask:
 * each pixel's depth is the shortest of its four runs of mask pixels (left, right, up, down) to
 * the first background pixel, within the mask's box (its edge counts as background); of the
 * deepest pixels, the one nearest their mean (the first in row order on a tie). */
export function interiorIndex(mask, n) {
  let r0 = n;
  let r1 = -1;
  let c0 = n;
  let c1 = -1;
  for (let i = 0; i < n * n; i++) {
    if (!mask[i]) continue;
    const r = Math.floor(i / n);
    const c = i % n;
    if (r < r0) r0 = r;
    if (r > r1) r1 = r;
    if (c < c0) c0 = c;
    if (c > c1) c1 = c;
  }
  const h = r1 - r0 + 1;
  const w = c1 - c0 + 1;
  const at = (r, c) => mask[(r + r0) * n + c + c0];
  const depth = new Int32Array(h * w).fill(2 ** 30);
  for (let r = 0; r < h; r++) {
    let run = 0;
    for (let c = 0; c < w; c++) {
      run = at(r, c) ? run + 1 : 0;
      depth[r * w + c] = Math.min(depth[r * w + c], run);
    }
    run = 0;
    for (let c = w - 1; c >= 0; c--) {
      run = at(r, c) ? run + 1 : 0;
      depth[r * w + c] = Math.min(depth[r * w + c], run);
    }
  }
  for (let c = 0; c < w; c++) {
    let run = 0;
    for (let r = 0; r < h; r++) {
      run = at(r, c) ? run + 1 : 0;
      depth[r * w + c] = Math.min(depth[r * w + c], run);
    }
    run = 0;
    for (let r = h - 1; r >= 0; r--) {
      run = at(r, c) ? run + 1 : 0;
      depth[r * w + c] = Math.min(depth[r * w + c], run);
    }
  }
  let max = 0;
  for (let i = 0; i < h * w; i++) if (depth[i] > max) max = depth[i];
  let count = 0;
  let sr = 0;
  let sc = 0;
  for (let i = 0; i < h * w; i++) {
    if (depth[i] !== max) continue;
    count++;
    sr += Math.floor(i / w);
    sc += i % w;
  }
  const mr = sr / count;
  const mc = sc / count;
  let best = -1;
  let bestD = Infinity;
  for (let i = 0; i < h * w; i++) {
    if (depth[i] !== max) continue;
    const d = (Math.floor(i / w) - mr) ** 2 + ((i % w) - mc) ** 2;
    if (d < bestD) {
      bestD = d;
      best = i;
    }
  }
  return [Math.floor(best / w) + r0, (best % w) + c0];
}

/** policy.observe: the observation of one window's n x n logits (at `offset` in `logits`);
 * `win` [x0, y0, x1, y1] in image pixels; `score` the network's predicted IoU (null: 1). */
export function observe(logits, offset, n, win, score, threshold = 0.0) {
  const m = new Uint8Array(n * n);
  let count = 0;
  let sx = 0;
  let sy = 0;
  let r0 = n;
  let r1 = -1;
  let c0 = n;
  let c1 = -1;
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      if (!(logits[offset + r * n + c] > threshold)) continue;
      m[r * n + c] = 1;
      count++;
      sx += c;
      sy += r;
      if (r < r0) r0 = r;
      if (r > r1) r1 = r;
      if (c < c0) c0 = c;
      if (c > c1) c1 = c;
    }
  }
  if (!count) return EMPTY;
  const [x0, y0, x1, y1] = win;
  const kx = (x1 - x0) / n;
  const ky = (y1 - y0) / n;
  const [ir, ic] = interiorIndex(m, n);
  let left = 0;
  let top = 0;
  let right = 0;
  let bottom = 0;
  for (let k = 0; k < n; k++) {
    left += m[k * n];
    right += m[k * n + n - 1];
    top += m[k];
    bottom += m[(n - 1) * n + k];
  }
  return {
    area: count * kx * ky,
    box: [x0 + c0 * kx, y0 + r0 * ky, x0 + (c1 + 1) * kx, y0 + (r1 + 1) * ky],
    interior: [x0 + (ic + 0.5) * kx, y0 + (ir + 0.5) * ky],
    centroid: [x0 + (sx / count + 0.5) * kx, y0 + (sy / count + 0.5) * ky],
    touch: [left / n, top / n, right / n, bottom / n],
    score: score === null || score === undefined ? 1.0 : score,
  };
}


// ---------------------------------------------------------------- the image's motion (motion.py)
// Integer arithmetic throughout (every sum stays far below 2^53), so the shift is Python's bit
// for bit: luma Y = (77 R + 150 G + 29 B + 128) >> 8; blocks of side f = max(1, floor(extent /
// cells)) with coordinates clamped into the image, valued floor(sum Y / f^2) and weighted
// floor(16 * mask pixels / f^2); the template is the previous frame's blocks within half =
// max(2, ceil(extent / 2f)) of the anchor's block; the cost of a block shift d is
// sum_b w_b |N C_{b+d} - S_C(d) - (N T_b - S_T)|; ties go to the smaller |d|^2, then the first in
// row order. A coarse search at cells / 2 comes first, then a fine one around its answer; per
// axis the fine answer moves to the vertex of the parabola through the costs of d - 1, d, d + 1
// (one division of two integers: the same double as Python's).

/** motion.FULL_WEIGHT: the weight of a block fully covered by the mask. */
export const FULL_WEIGHT = 16;

/** motion.luma of a frame's pixels (RGBA: channels 4, as getImageData; RGB: 3): one byte a pixel. */
export function lumaPlane(pixels, width, height, channels = 4) {
  const out = new Uint8Array(width * height);
  for (let i = 0, j = 0; i < out.length; i++, j += channels) {
    out[i] = (77 * pixels[j] + 150 * pixels[j + 1] + 29 * pixels[j + 2] + 128) >> 8;
  }
  return out;
}

/** motion.block_side: the block side in pixels for `cells` blocks across an object of `extent`. */
export function blockSide(extent, cells) {
  return Math.max(1, Math.floor(extent / Math.max(1, Math.trunc(cells))));
}

/** motion.SAMPLES: a block's value is the mean of at most this many samples a side. */
export const SAMPLES = 4;

/** motion.block_samples: the sample step g and the samples a side m of a block of side f. */
export function blockSamples(f) {
  const g = Math.max(1, Math.floor(f / SAMPLES));
  return [g, Math.floor(f / g)];
}

/** motion._blocks: values (and weights when `mask` is given) of the ni x nj blocks of side f
 * starting at block (i0, j0), each read at m x m samples g apart, row-major Float64Arrays of
 * integers. */
function blocks(luma, width, height, mask, f, i0, j0, ni, nj) {
  const [g, m] = blockSamples(f);
  const values = new Float64Array(ni * nj);
  const weights = mask ? new Float64Array(ni * nj) : null;
  const span = nj * m;
  const xs = new Int32Array(span);
  const xin = new Uint8Array(span);
  for (let bj = 0, k = 0; bj < nj; bj++) {
    for (let u = 0; u < m; u++, k++) {
      const x = (j0 + bj) * f + u * g;
      xs[k] = x < 0 ? 0 : x >= width ? width - 1 : x;
      xin[k] = x >= 0 && x < width ? 1 : 0;
    }
  }
  for (let bi = 0; bi < ni; bi++) {
    const row = bi * nj;
    for (let t = 0; t < m; t++) {
      const y = (i0 + bi) * f + t * g;
      const base = (y < 0 ? 0 : y >= height ? height - 1 : y) * width;
      const yin = y >= 0 && y < height;
      for (let bj = 0, k = 0; bj < nj; bj++) {
        let sum = 0;
        let covered = 0;
        for (let u = 0; u < m; u++, k++) {
          const p = base + xs[k];
          sum += luma[p];
          if (weights !== null && yin && xin[k] && mask[p]) covered++;
        }
        values[row + bj] += sum;
        if (weights !== null) weights[row + bj] += covered;
      }
    }
  }
  const area = m * m;
  for (let i = 0; i < values.length; i++) {
    values[i] = Math.floor(values[i] / area);
    if (weights !== null) weights[i] = Math.floor((FULL_WEIGHT * weights[i]) / area);
  }
  return [values, weights];
}

/** motion._search: the block shift [dx, dy] of side f with the least cost among those within r
 * blocks of `centre` (in blocks), the (2r + 1)^2 costs (row-major) and the best's column, row. */
function search(previous, current, width, height, mask, anchor, extent, f, centre, r) {
  const half = Math.max(2, Math.ceil(extent / (2.0 * f)));
  const ai = Math.floor(anchor[1] / f);
  const aj = Math.floor(anchor[0] / f);
  const n = 2 * half + 1;
  const nn = n * n;
  let [tv, w] = blocks(previous, width, height, mask, f, ai - half, aj - half, n, n);
  let total = 0;
  if (w !== null) for (let i = 0; i < nn; i++) total += w[i];
  if (w === null || total < FULL_WEIGHT) {
    w = new Float64Array(nn).fill(1);
    total = nn;
  }
  const [cx, cy] = centre;
  const m = n + 2 * r;
  const [cv] = blocks(current, width, height, null, f, ai - half - r + cy, aj - half - r + cx, m, m);
  let st = 0;
  for (let i = 0; i < nn; i++) st += w[i] * tv[i];
  const template = new Float64Array(nn);
  for (let i = 0; i < nn; i++) template[i] = total * tv[i] - st;
  let best = -1;
  let bestCost = Infinity;
  let bestDist = Infinity;
  const costs = new Float64Array((2 * r + 1) * (2 * r + 1));
  for (let a = 0; a <= 2 * r; a++) {
    for (let b = 0; b <= 2 * r; b++) {
      let sums = 0;
      for (let i = 0; i < n; i++) {
        const row = (a + i) * m + b;
        for (let j = 0; j < n; j++) sums += cv[row + j] * w[i * n + j];
      }
      let cost = 0;
      for (let i = 0; i < n; i++) {
        const row = (a + i) * m + b;
        for (let j = 0; j < n; j++) {
          const k = i * n + j;
          cost += w[k] * Math.abs(total * cv[row + j] - sums - template[k]);
        }
      }
      costs[a * (2 * r + 1) + b] = cost;
      const dist = (a - r) ** 2 + (b - r) ** 2;
      if (cost < bestCost || (cost === bestCost && dist < bestDist)) {
        best = a * (2 * r + 1) + b;
        bestCost = cost;
        bestDist = dist;
      }
    }
  }
  const iy = Math.floor(best / (2 * r + 1));
  const ix = best % (2 * r + 1);
  return [cx + ix - r, cy + iy - r, costs, ix, iy];
}

/** motion._refine: the sub-block position (pixels) of the least cost from the costs of blocks
 * `block` - 1, `block`, `block` + 1 (the vertex of the parabola through them). */
function refine(block, f, cMinus, c0, cPlus) {
  const den = cMinus - 2 * c0 + cPlus;
  if (den <= 0) return block * f;
  const num = cMinus - cPlus;
  return block * f + (f * num) / (2 * den);
}

/** motion.estimate_shift: how far [dx, dy] (pixels) the object around `anchor` moved from
 * `previous` to `current` (luma planes of one width x height, lumaPlane); `mask` (width x height,
 * nonzero on the object, on `previous`; null: none) weights the object's own pixels, `extent` is
 * its size in pixels, `radius` the largest shift searched, `cells` the blocks across it. */
export function estimateShift(previous, current, width, height, mask, anchor, extent, radius, cells) {
  const coarse = blockSide(extent, Math.max(2, Math.floor(cells / 2)));
  const [cx, cy] = search(previous, current, width, height, mask, anchor, extent, coarse, [0, 0], Math.max(1, Math.ceil(radius / coarse)));
  const f = blockSide(extent, cells);
  const centre = [Math.floor((cx * coarse) / f), Math.floor((cy * coarse) / f)];
  const r = Math.max(1, Math.ceil(coarse / f));
  const [fx, fy, costs, ix, iy] = search(previous, current, width, height, mask, anchor, extent, f, centre, r);
  const last = 2 * r;
  const c = (row, col) => costs[row * (last + 1) + col];
  const sx = ix > 0 && ix < last ? refine(fx, f, c(iy, ix - 1), c(iy, ix), c(iy, ix + 1)) : fx * f;
  const sy = iy > 0 && iy < last ? refine(fy, f, c(iy - 1, ix), c(iy, ix), c(iy + 1, ix)) : fy * f;
  return [sx, sy];
}

// ---------------------------------------------------------------- what the object looks like (appearance.py)
// A colour histogram of a mask's pixels, in integers: s = R + G + B + 1, bin = (min(12 R // s, 7)
// * 8 + min(12 G // s, 7)) * 4 + (max(R, G, B) * 4 >> 8) (8 x 8 chromaticity cells, 4 value
// levels); shares p_i = counts_i / sum; similarity = sum of sqrt(p_i * ref_i) over i = 0..255 in
// order (the order of numpy's cumsum in appearance.similarity: the same double); blend = (1 -
// rate) * ref_i + rate * p_i.

/** appearance.BINS: 8 x 8 chromaticity cells times 4 value levels. */
export const BINS = 256;

/** The colour cell of one pixel. */
function colourBin(r, g, b) {
  const s = r + g + b + 1;
  const cr = Math.min(Math.floor((12 * r) / s), 7);
  const cg = Math.min(Math.floor((12 * g) / s), 7);
  return (cr * 8 + cg) * 4 + ((Math.max(r, g, b) * 4) >> 8);
}

/** appearance.histogram: the counts (Float64Array of BINS integers) of the colour cells of
 * `pixels` (`channels` bytes a pixel, RGB first: 4 for getImageData's RGBA, 3 for RGB) where
 * `mask` (one entry a pixel; null: every pixel) is nonzero; null when no pixel counts. */
export function histogram(pixels, channels = 4, mask = null) {
  const counts = new Float64Array(BINS);
  const count = Math.floor(pixels.length / channels);
  let total = 0;
  for (let i = 0, j = 0; i < count; i++, j += channels) {
    if (mask !== null && !mask[i]) continue;
    counts[colourBin(pixels[j], pixels[j + 1], pixels[j + 2])]++;
    total++;
  }
  return total ? counts : null;
}

/** appearance.GRID: a window's mask is read at about this many pixels a side. */
export const GRID = 96;

/** appearance.sample_step: the grid step a window of `side` pixels is read at. */
export function sampleStep(side) {
  return Math.max(1, Math.floor(side / GRID));
}

/** The histogram of a window mask's pixels, as tracker.py takes it: the frame's pixels (width x
 * height, `channels` bytes each) inside the image part of `win` ([x0, y0, x1, y1]) where the n x n
 * logits at `offset`, resized to the window as pasteMaskInto (and prompts.window_mask) resize
 * them, are above `threshold`, read on the grid of sampleStep(x1 - x0) (appearance.window_histogram);
 * null when the window misses the image or no pixel counts. */
export function windowHistogram(pixels, width, height, channels, logits, offset, n, win, threshold = 0.0) {
  const [x0, y0, x1, y1] = win;
  const sx0 = Math.max(x0, 0);
  const sy0 = Math.max(y0, 0);
  const sx1 = Math.min(x1, width);
  const sy1 = Math.min(y1, height);
  if (sx1 <= sx0 || sy1 <= sy0) return null;
  const ww = x1 - x0;
  const resized = resizeFloat(logits.subarray(offset, offset + n * n), n, n, ww, y1 - y0);
  const counts = new Float64Array(BINS);
  let total = 0;
  // appearance.window_histogram: the pixels whose image coordinates are multiples of the step
  const step = sampleStep(ww);
  for (let y = Math.ceil(sy0 / step) * step; y < sy1; y += step) {
    for (let x = Math.ceil(sx0 / step) * step; x < sx1; x += step) {
      if (!(resized[(y - y0) * ww + (x - x0)] > threshold)) continue;
      const j = (y * width + x) * channels;
      counts[colourBin(pixels[j], pixels[j + 1], pixels[j + 2])]++;
      total++;
    }
  }
  return total ? counts : null;
}

/** appearance.normalised: the counts as shares (summing to 1). */
export function normalised(counts) {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i];
  const out = new Float64Array(counts.length);
  for (let i = 0; i < counts.length; i++) out[i] = counts[i] / total;
  return out;
}

/** appearance.similarity: the Bhattacharyya coefficient of `counts` and the `reference` shares,
 * summed in bin order. */
export function similarity(counts, reference) {
  const p = normalised(counts);
  let sum = 0.0;
  for (let i = 0; i < p.length; i++) sum += Math.sqrt(p[i] * reference[i]);
  return sum;
}

/** appearance.blend: the reference after an accepted frame (`rate` of the new shares). */
export function blend(reference, counts, rate) {
  const p = normalised(counts);
  const out = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) out[i] = (1.0 - rate) * reference[i] + rate * p[i];
  return out;
}

// ---------------------------------------------------------------- several objects, one batch

/** The per-frame loop of picosam2.track.Tracker, without the model: `plan(size)` lists every
 * object's windows for this frame (all of them go through the network as one batch), and
 * `observeFrame(plan, logits, scores, n, threshold, frame)` measures each object's image motion
 * (under motion "image"), reads each window's mask, checks its colours against the object's
 * (appearance_follow / appearance_reacquire), lets the policy decide, and answers per object
 * {id, window, windowIndex, score, state, windows, shift, similarity, similarities}.
 *
 * `frame` is this frame: {pixels, channels, width, height, luma, mask(id)}: its pixels (RGBA as
 * getImageData gives them, channels 4; RGB: 3), its luma plane (lumaPlane; null: no image motion)
 * and each object's last mask (a width x height array, nonzero on the object; null or empty:
 * unweighted), or null. Without pixels the colours are not checked that frame (similarities
 * null, the reference is left as it is), as without luma the image motion is not measured.
 * The follower keeps the last frame's luma itself (as the tracker keeps its last frame) and, per
 * object, the reference colour shares: from the first mask's pixels (start), blended with the
 * accepted window mask's pixels on every frame that has them. */
export class Follower {
  constructor(policy = DEFAULT_POLICY) {
    this.policy = { ...DEFAULT_POLICY, ...policy };
    this.objects = new Map(); // id -> {state, status, appearance: Float64Array shares | null}
    this.nextId = 1;
    this.previous = null; // {luma, width, height}: the last frame, for the image motion
  }

  /** Whether observeFrame uses the frame's luma (the page then computes it every frame). */
  get usesImage() {
    return this.policy.motion === "image";
  }

  /** Whether observeFrame checks the window masks' colours (the page then hands it the pixels). */
  get usesAppearance() {
    return usesAppearance(this.policy);
  }

  /** Start an object from the observation of its first frame's chosen window; `frame` (as in
   * observeFrame, or null) is that frame and `mask` (width x height, nonzero on the object; the
   * chosen window's pasted mask) the object on it: its pixels give the reference colours (none
   * without pixels or mask: that object's colours are then never checked, as in the tracker). */
  start(obs, frame = null, mask = null) {
    if (isEmpty(obs)) throw new Error("the first frame's mask is empty: click inside the object");
    const id = this.nextId++;
    let appearance = null;
    if (this.usesAppearance && frame && frame.pixels && mask) {
      const counts = histogram(frame.pixels, frame.channels || 4, mask);
      appearance = counts === null ? null : normalised(counts);
    }
    this.objects.set(id, { state: startState(obs, this.policy), status: "tracking", appearance });
    this.previous = frame && frame.luma ? { luma: frame.luma, width: frame.width, height: frame.height } : null;
    return id;
  }

  remove(id) {
    this.objects.delete(id);
  }

  clear() {
    this.objects.clear();
    this.previous = null;
  }

  plan(size) {
    return [...this.objects].map(([id, o]) => ({ id, windows: nextWindows(o.state, size, this.policy) }));
  }

  /** The image's motion around object `id`'s anchor from the last frame to `frame`, or null. */
  shiftOf(state, id, frame) {
    const prev = this.previous;
    if (!this.usesImage || !frame || !frame.luma || !prev || prev.width !== frame.width || prev.height !== frame.height) return null;
    const mask = frame.mask ? frame.mask(id) : null;
    const radius = motionRadius(state, this.policy);
    return estimateShift(prev.luma, frame.luma, frame.width, frame.height, mask || null, state.anchor, state.extent, radius, this.policy.motion_cells);
  }

  observeFrame(plan, logits, scores, n, threshold = 0.0, frame = null) {
    const out = [];
    let k = 0;
    for (const { id, windows } of plan) {
      const obj = this.objects.get(id);
      const obs = windows.map((w, j) => observe(logits, (k + j) * n * n, n, w, scores ? scores[k + j] : null, threshold));
      if (obj) {
        const shift = this.shiftOf(obj.state, id, frame);
        // tracker.py: each non-empty window's pasted mask, its pixels' histogram, its similarity
        let counts = null;
        let similarities = null;
        if (obj.appearance && frame && frame.pixels) {
          const channels = frame.channels || 4;
          counts = windows.map((w, j) =>
            isEmpty(obs[j]) ? null : windowHistogram(frame.pixels, frame.width, frame.height, channels, logits, (k + j) * n * n, n, w, threshold),
          );
          similarities = counts.map((c) => (c === null ? null : similarity(c, obj.appearance)));
        }
        const best = bestObservation(obj.state, obs, this.policy, similarities);
        const [state, status] = update(obj.state, best === null ? null : obs[best], this.policy, shift);
        obj.state = state;
        obj.status = status;
        if (best !== null && counts !== null && counts[best] !== null) obj.appearance = blend(obj.appearance, counts[best], this.policy.appearance_rate);
        out.push({
          id,
          window: best === null ? windows[windows.length - 1] : windows[best],
          windowIndex: best === null ? null : k + best,
          score: best === null ? 0.0 : obs[best].score,
          state: status,
          windows: windows.length,
          shift,
          similarity: best === null || similarities === null ? null : similarities[best],
          similarities,
        });
      }
      k += windows.length;
    }
    if (plan.length) this.previous = frame && frame.luma ? { luma: frame.luma, width: frame.width, height: frame.height } : null;
    return out;
  }
}
