// Prompt windows in the browser: a line-by-line port of picosam2/prompts.py (and the parts of
// picosam2/predictor.py that touch pixels), so the in-browser model sees exactly the crops the
// server's model sees. Keep the two in step: tests/test_demo_browser.py compares them.
//
//   point (mode "centered"): square of side windowSize whose pixel windowSize//2 is the clicked
//     pixel floor(x), floor(y); outside the image it is padded with PAD_RGB.
//   point (mode "paper"): the reference code's crop: x0 = max(0, x - 48), x1 = min(W, x0 + 96)
//     (same for y): slides inside the image at the left/top border, clipped at the right/bottom.
//   box: square of side max(8, ceil(longer side * (1 + 2 * padding))), centred on the box.
//   crop: cut the window (PAD_RGB outside), resize to 96 x 96 with Pillow's bilinear filter
//     (antialiased when shrinking; integer arithmetic as in Pillow, so the bytes are identical).
//   normalise: float32 (v / 255 - mean) / std, NCHW.
//   paste back: resize the 96 x 96 logits to the window size (Pillow's bilinear on float32),
//     put them at the window's place, mask = logit > threshold; masks of all prompts are OR-ed.

export const MODEL_SIZE = 96;

export function pointWindow(x, y, width, height, windowSize = MODEL_SIZE, mode = "centered") {
  if (!(Number.isFinite(x) && Number.isFinite(y))) throw new Error(`point (${x}, ${y}) is not a finite number`);
  if (!(x >= 0 && x < width && y >= 0 && y < height)) throw new Error(`point (${x}, ${y}) is outside the ${width}x${height} image`);
  const cx = Math.floor(x);
  const cy = Math.floor(y);
  if (mode === "centered") {
    const half = Math.floor(windowSize / 2);
    return { x0: cx - half, y0: cy - half, x1: cx - half + windowSize, y1: cy - half + windowSize };
  }
  if (mode === "paper") {
    const half = Math.floor(MODEL_SIZE / 2);
    const x0 = Math.max(0, cx - half);
    const y0 = Math.max(0, cy - half);
    return { x0, y0, x1: Math.min(width, x0 + MODEL_SIZE), y1: Math.min(height, y0 + MODEL_SIZE) };
  }
  throw new Error(`unknown point mode ${mode}`);
}

export function boxWindow(box, width, height, padding = 0.1, minSize = 8) {
  const [x0, y0, x1, y1] = box.map(Number);
  if (![x0, y0, x1, y1].every(Number.isFinite)) throw new Error("box has a non-finite coordinate");
  if (x1 <= x0 || y1 <= y0) throw new Error("box is empty");
  if (x1 <= 0 || y1 <= 0 || x0 >= width || y0 >= height) throw new Error("box is outside the image");
  // Same double-precision operations, in the same order, as prompts.box_window.
  const side = Math.max(minSize, Math.ceil(Math.max(x1 - x0, y1 - y0) * (1 + 2 * padding)));
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const wx0 = Math.floor(cx - side / 2);
  const wy0 = Math.floor(cy - side / 2);
  return { x0: wx0, y0: wy0, x1: wx0 + side, y1: wy0 + side };
}

/** Pixels of `win` from an RGBA image (Uint8ClampedArray, width x height), as packed RGB, with
 * `pad` (an [r, g, b] triple) where the window leaves the image. */
export function cutRGB(rgba, width, height, win, pad) {
  const ww = win.x1 - win.x0;
  const wh = win.y1 - win.y0;
  const out = new Uint8Array(ww * wh * 3);
  for (let i = 0; i < ww * wh; i++) {
    out[3 * i] = pad[0];
    out[3 * i + 1] = pad[1];
    out[3 * i + 2] = pad[2];
  }
  const sx0 = Math.max(win.x0, 0);
  const sy0 = Math.max(win.y0, 0);
  const sx1 = Math.min(win.x1, width);
  const sy1 = Math.min(win.y1, height);
  for (let y = sy0; y < sy1; y++) {
    let o = ((y - win.y0) * ww + (sx0 - win.x0)) * 3;
    let s = (y * width + sx0) * 4;
    for (let x = sx0; x < sx1; x++, o += 3, s += 4) {
      out[o] = rgba[s];
      out[o + 1] = rgba[s + 1];
      out[o + 2] = rgba[s + 2];
    }
  }
  return out;
}

// Pillow's resampling coefficients (libImaging/Resample.c, precompute_coeffs) for the bilinear
// ("triangle") filter: support 1, widened by the scale factor when shrinking. [in0, in1) is the
// source span resized (Image.resize's box; the whole axis by default).
function coefficients(inSize, outSize, in0 = 0, in1 = inSize) {
  const scale = (in1 - in0) / outSize;
  const filterscale = Math.max(scale, 1.0);
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    const ss = 1.0 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      const w = t < 1.0 ? 1.0 - t : 0.0;
      kk[xx * ksize + x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) if (ww !== 0.0) kk[xx * ksize + x] /= ww;
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

function fixedPoint(kk) {
  // normalize_coeffs_8bpc: round to 22-bit fixed point.
  const out = new Float64Array(kk.length);
  for (let i = 0; i < kk.length; i++) out[i] = kk[i] < 0 ? Math.trunc(-0.5 + kk[i] * ONE) : Math.trunc(0.5 + kk[i] * ONE);
  return out;
}

function clip8(v) {
  if (v >= ONE * 256) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / ONE);
}

/** Pillow's Image.resize((dw, dh), BILINEAR, box) of a packed 8-bit image with `channels`
 * channels (box: [x0, y0, x1, y1] source span, float32 as Pillow reads it; default the whole
 * image): horizontal pass, then vertical, each rounding to 8 bits as Pillow does. */
export function resize8(src, sw, sh, channels, dw, dh, box = null) {
  const [bx0, by0, bx1, by1] = box ? box.map(Math.fround) : [0, 0, sw, sh];
  const whole = bx0 === 0 && by0 === 0 && bx1 === sw && by1 === sh;
  if (sw === dw && sh === dh && whole) return src.slice();
  let cur = src;
  let cw = sw;
  if (dw !== sw || bx0 !== 0 || bx1 !== sw) {
    const { ksize, bounds, kk } = coefficients(sw, dw, bx0, bx1);
    const k = fixedPoint(kk);
    const out = new Uint8Array(dw * sh * channels);
    for (let y = 0; y < sh; y++) {
      for (let xx = 0; xx < dw; xx++) {
        const xmin = bounds[2 * xx];
        const xmax = bounds[2 * xx + 1];
        for (let c = 0; c < channels; c++) {
          let ss = ONE / 2;
          for (let x = 0; x < xmax; x++) ss += cur[(y * sw + x + xmin) * channels + c] * k[xx * ksize + x];
          out[(y * dw + xx) * channels + c] = clip8(ss);
        }
      }
    }
    cur = out;
    cw = dw;
  }
  if (dh !== sh || by0 !== 0 || by1 !== sh) {
    const { ksize, bounds, kk } = coefficients(sh, dh, by0, by1);
    const k = fixedPoint(kk);
    const out = new Uint8Array(cw * dh * channels);
    for (let yy = 0; yy < dh; yy++) {
      const ymin = bounds[2 * yy];
      const ymax = bounds[2 * yy + 1];
      for (let x = 0; x < cw; x++) {
        for (let c = 0; c < channels; c++) {
          let ss = ONE / 2;
          for (let y = 0; y < ymax; y++) ss += cur[((y + ymin) * cw + x) * channels + c] * k[yy * ksize + y];
          out[(yy * cw + x) * channels + c] = clip8(ss);
        }
      }
    }
    cur = out;
  }
  return cur;
}

/** Pillow's Image.resize for a mode "F" (float32) image: double accumulators, float32 storage. */
export function resizeFloat(src, sw, sh, dw, dh) {
  if (sw === dw && sh === dh) return Float32Array.from(src);
  let cur = src;
  let cw = sw;
  if (dw !== sw) {
    const { ksize, bounds, kk } = coefficients(sw, dw);
    const out = new Float32Array(dw * sh);
    for (let y = 0; y < sh; y++) {
      for (let xx = 0; xx < dw; xx++) {
        const xmin = bounds[2 * xx];
        const xmax = bounds[2 * xx + 1];
        let ss = 0.0;
        for (let x = 0; x < xmax; x++) ss += cur[y * sw + x + xmin] * kk[xx * ksize + x];
        out[y * dw + xx] = ss;
      }
    }
    cur = out;
    cw = dw;
  }
  if (dh !== sh) {
    const { ksize, bounds, kk } = coefficients(sh, dh);
    const out = new Float32Array(cw * dh);
    for (let yy = 0; yy < dh; yy++) {
      const ymin = bounds[2 * yy];
      const ymax = bounds[2 * yy + 1];
      for (let x = 0; x < cw; x++) {
        let ss = 0.0;
        for (let y = 0; y < ymax; y++) ss += cur[(y + ymin) * cw + x] * kk[yy * ksize + y];
        out[yy * cw + x] = ss;
      }
    }
    cur = out;
  }
  return cur;
}

/** Pillow's Image.reduce(factor, box) of an RGBA image (box: [x0, y0, x1, y1]), as packed RGB:
 * each factor x factor block (smaller at the box's right and bottom edges) averaged with
 * Pillow's rounding, ((sum + n / 2) * multiplier) >> 24. */
function reduceRGB(rgba, width, box, factor) {
  const [bx0, by0, bx1, by1] = box;
  const ow = Math.ceil((bx1 - bx0) / factor);
  const oh = Math.ceil((by1 - by0) / factor);
  const out = new Uint8Array(ow * oh * 3);
  for (let oy = 0; oy < oh; oy++) {
    const y0 = by0 + oy * factor;
    const y1 = Math.min(y0 + factor, by1);
    for (let ox = 0; ox < ow; ox++) {
      const x0 = bx0 + ox * factor;
      const x1 = Math.min(x0 + factor, bx1);
      const n = (y1 - y0) * (x1 - x0);
      const multiplier = Math.trunc(Math.fround(4294967296 / (256 * n)));
      const sums = [Math.floor(n / 2), Math.floor(n / 2), Math.floor(n / 2)];
      for (let y = y0; y < y1; y++) {
        for (let x = x0, p = (y * width + x0) * 4; x < x1; x++, p += 4) {
          sums[0] += rgba[p];
          sums[1] += rgba[p + 1];
          sums[2] += rgba[p + 2];
        }
      }
      const o = (oy * ow + ox) * 3;
      for (let c = 0; c < 3; c++) out[o + c] = Math.floor((sums[c] * multiplier) / 16777216);
    }
  }
  return { data: out, width: ow, height: oh };
}

/** The power-of-two factor prompts.crop_images reduces a window by under `reducingGap` (1: none). */
export function reductionFactor(win, size, reducingGap) {
  if (reducingGap == null) return 1;
  const scale = Math.min(win.x1 - win.x0, win.y1 - win.y0) / (size * reducingGap);
  return scale > 2 ? 2 ** Math.floor(Math.log2(scale)) : 1;
}

/** prompts.crop_images for one window: the window as a size x size packed RGB Uint8Array. With
 * `reducingGap` (the predictor's reducing_gap, e.g. 2), a large window is cut from the image
 * box-reduced by a power of two and resized from its fractional place there (prompts._reduced_cut);
 * null cuts it whole (prompts.crop_image). */
export function cropImage(rgba, width, height, win, size, pad, reducingGap = null) {
  const factor = reductionFactor(win, size, reducingGap);
  if (factor === 1) {
    const patch = cutRGB(rgba, width, height, win, pad);
    return resize8(patch, win.x1 - win.x0, win.y1 - win.y0, 3, size, size);
  }
  const [fx0, fy0, fx1, fy1] = [win.x0 / factor, win.y0 / factor, win.x1 / factor, win.y1 / factor];
  const cx0 = Math.floor(fx0);
  const cy0 = Math.floor(fy0);
  const cx1 = Math.max(Math.ceil(fx1), cx0 + 1);
  const cy1 = Math.max(Math.ceil(fy1), cy0 + 1);
  const cw = cx1 - cx0;
  const ch = cy1 - cy0;
  const canvas = new Uint8Array(cw * ch * 3);
  for (let i = 0; i < cw * ch; i++) canvas.set(pad, 3 * i);
  const rx0 = Math.max(cx0, 0);
  const ry0 = Math.max(cy0, 0);
  const rx1 = Math.min(cx1, Math.ceil(width / factor));
  const ry1 = Math.min(cy1, Math.ceil(height / factor));
  if (rx1 > rx0 && ry1 > ry0) {
    const box = [rx0 * factor, ry0 * factor, Math.min(rx1 * factor, width), Math.min(ry1 * factor, height)];
    const small = reduceRGB(rgba, width, box, factor);
    for (let y = 0; y < small.height; y++) {
      const row = small.data.subarray(y * small.width * 3, (y + 1) * small.width * 3);
      canvas.set(row, ((y + ry0 - cy0) * cw + (rx0 - cx0)) * 3);
    }
  }
  return resize8(canvas, cw, ch, 3, size, size, [fx0 - cx0, fy0 - cy0, fx1 - cx0, fy1 - cy0]);
}

/** predictor.normalize_batch for one crop: packed RGB uint8 -> float32 CHW, written at `offset`. */
export function normalizeInto(out, offset, crop, size, mean, std) {
  const f = Math.fround;
  const plane = size * size;
  for (let c = 0; c < 3; c++) {
    const m = f(mean[c]);
    const s = f(std[c]);
    for (let i = 0; i < plane; i++) out[offset + c * plane + i] = f(f(f(crop[3 * i + c]) / 255) - m) / s;
  }
}

/** prompts.paste_mask, OR-ed into `mask` (Uint8Array width*height, 0/255). */
export function pasteMaskInto(mask, width, height, logits, size, win, threshold = 0) {
  const ww = win.x1 - win.x0;
  const wh = win.y1 - win.y0;
  const resized = resizeFloat(logits, size, size, ww, wh);
  const sx0 = Math.max(win.x0, 0);
  const sy0 = Math.max(win.y0, 0);
  const sx1 = Math.min(win.x1, width);
  const sy1 = Math.min(win.y1, height);
  let count = 0;
  for (let y = sy0; y < sy1; y++) {
    for (let x = sx0; x < sx1; x++) {
      if (resized[(y - win.y0) * ww + (x - win.x0)] > threshold) {
        mask[y * width + x] = 255;
        count++;
      }
    }
  }
  return count;
}

/** The window of a prompt ({kind: "point", x, y} or {kind: "box", box: [x0, y0, x1, y1]}). */
export function windowForPrompt(prompt, width, height, cfg) {
  if (prompt.kind === "point") return pointWindow(prompt.x, prompt.y, width, height, cfg.window_size, cfg.point_mode);
  return boxWindow(prompt.box, width, height, cfg.box_padding);
}

// ---------------------------------------------------------------- scale-aware clicks
// Port of prompts.auto_point_scales / point_scales_for and selection.choose_candidate: a click
// is tried at several centred window sizes (one batch) and the best-scored mask is kept.

export const AUTO_MAX_SCALES = 8;
export const AUTO_SCALE_STEP = Math.SQRT2;
export const BORDER_RULE_MAX = 0.05;

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(v) {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** prompts.auto_point_scales: window sides from minSize up to the image's longer side. */
export function autoPointScales(width, height, minSize = MODEL_SIZE, step = AUTO_SCALE_STEP, maxCount = AUTO_MAX_SCALES) {
  const longer = Math.max(Math.trunc(width), Math.trunc(height));
  if (longer <= minSize) return [Math.trunc(minSize)];
  let count = roundHalfEven(Math.log(longer / minSize) / Math.log(step)) + 1;
  count = Math.max(2, Math.min(maxCount, count));
  const ratio = (longer / minSize) ** (1.0 / (count - 1));
  const out = [];
  for (let k = 0; k < count; k++) out.push(roundHalfEven(minSize * ratio ** k));
  return out;
}

/** The window sides a click tries (cfg.point_scales: "auto", "auto:N" (at most N of the auto
 * sides), a list of sides, or null: one cfg.window_size window), smallest first. */
export function pointScalesFor(cfg, width, height) {
  const spec = cfg.point_scales;
  if (typeof spec === "string" && (spec === "auto" || spec.startsWith("auto:"))) {
    const a = cfg.auto_scales || {};
    const count = spec === "auto" ? a.max_count || AUTO_MAX_SCALES : parseInt(spec.slice(5), 10);
    return autoPointScales(width, height, a.min_size || MODEL_SIZE, a.step || AUTO_SCALE_STEP, count);
  }
  if (Array.isArray(spec) && spec.length) return spec.map((s) => Math.trunc(s));
  return null;
}

/** The candidate windows of a prompt: several centred windows for a point under scale-aware
 * clicks, else the prompt's one window. */
export function candidateWindows(prompt, width, height, cfg) {
  const sizes = prompt.kind === "point" ? pointScalesFor(cfg, width, height) : null;
  if (!sizes) return [windowForPrompt(prompt, width, height, cfg)];
  return sizes.map((s) => pointWindow(prompt.x, prompt.y, width, height, s, "centered"));
}

/** selection.border_contact for one size x size logits map (at `offset` in `logits`). */
export function borderContact(logits, offset, size, threshold = 0) {
  let n = 0;
  let hit = 0;
  const at = (r, c) => logits[offset + r * size + c] > threshold;
  for (let c = 0; c < size; c++) {
    hit += at(0, c) + at(size - 1, c);
    n += 2;
  }
  for (let r = 1; r < size - 1; r++) {
    hit += at(r, 0) + at(r, size - 1);
    n += 2;
  }
  return hit / n;
}

/** selection.choose_candidate: [index, reason] among candidates ordered small to large. `scores`
 * (predicted IoU per candidate) or null; `offsets` index each candidate's logits. */
export function chooseCandidate(logits, offsets, size, scores) {
  if (scores) {
    let best = 0;
    for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
    return [best, "score"];
  }
  const contact = offsets.map((o) => borderContact(logits, o, size));
  const inside = contact.findIndex((c) => c < BORDER_RULE_MAX);
  if (inside >= 0) return [inside, "border"];
  let least = 0;
  for (let i = 1; i < contact.length; i++) if (contact[i] < contact[least]) least = i;
  return [least, "border"];
}

// ---------------------------------------------------------------- score calibration
// Port of selection.click_features / ScoreCalibration: the network's score of a click's
// candidates, recalibrated with each window's size against the image and its mask's statistics
// (weights' config extra.score_calibration, served as cfg.score_calibration).

/** selection.click_features of one candidate: [score, border, coverage, uncertainty, |logit|,
 * log(side / longer image side), mask's share of the image]. */
export function clickFeatures(logits, offset, size, win, width, height, score) {
  const n = size * size;
  let fg = 0;
  let unc = 0;
  let abs = 0;
  for (let i = 0; i < n; i++) {
    const v = logits[offset + i];
    if (v > 0) fg++;
    const p = 1 / (1 + Math.exp(-Math.max(-60, Math.min(60, v))));
    unc += p * (1 - p);
    abs += Math.abs(v);
  }
  const coverage = fg / n;
  const w = win.x1 - win.x0;
  const h = win.y1 - win.y0;
  return [
    score,
    borderContact(logits, offset, size),
    coverage,
    (unc / n) * 4,
    abs / n,
    Math.log(Math.max(w, h) / Math.max(width, height)),
    (coverage * w * h) / (width * height),
  ];
}

/** ScoreCalibration.predict: the calibrated score in [0, 1] of one feature row. */
export function calibrateScore(cal, features) {
  const z = features.map((v, i) => (v - cal.mean[i]) / cal.scale[i]);
  let y = cal.weights[0];
  let k = 1;
  for (let i = 0; i < z.length; i++) y += cal.weights[k++] * z[i];
  for (let i = 0; i < z.length; i++) for (let j = i; j < z.length; j++) y += cal.weights[k++] * z[i] * z[j];
  return Math.min(1, Math.max(0, y));
}

/** Predictor.click_scores: a click's candidate scores through the calibration (when `cal` is
 * given and the click has more than one window), else as they are. A network without a quality
 * head (`scores` null) scores 0 in the calibration's features, as in Predictor._predict_scales. */
export function clickScores(cal, logits, offsets, size, wins, width, height, scores) {
  if (!cal || wins.length < 2) return scores;
  return offsets.map((o, i) => calibrateScore(cal, clickFeatures(logits, o, size, wins[i], width, height, scores ? scores[i] : 0)));
}
