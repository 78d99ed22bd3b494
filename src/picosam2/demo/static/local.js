// In-browser inference: the model runs in this page with onnxruntime-web (wasm backend), so the
// photo never leaves the machine. The runtime is the npm package vendored into
// /static/vendor/onnxruntime-web/ at build time; the model is exported by the app on first use.

import { MODEL_SIZE, candidateWindows, chooseCandidate, clickScores, cropImage, normalizeInto, pasteMaskInto } from "./windows.js";

let runtime = null;

async function loadRuntime(base) {
  if (!runtime) {
    runtime = import(`${base}ort.wasm.min.mjs`).then((ort) => {
      ort.env.wasm.wasmPaths = base;
      // wasm threads need a cross-origin isolated page (the app sends COOP/COEP headers).
      ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
      ort.env.wasm.proxy = false;
      return ort;
    });
    runtime.catch(() => {
      runtime = null;
    });
  }
  return runtime;
}

export class LocalModel {
  constructor(ort, session, precision, bytes) {
    this.ort = ort;
    this.session = session;
    this.precision = precision;
    this.bytes = bytes;
  }

  /** Load the runtime and the model offered by /api/info (INT8 first, fp32 if that fails). */
  static async load(info, onStatus = () => {}) {
    const browser = info.browser;
    if (!browser || !browser.available) throw new Error("in-browser inference is not available (onnxruntime-web not vendored)");
    onStatus("loading onnxruntime-web...");
    const ort = await loadRuntime(browser.runtime);
    const order = Object.keys(browser.models);
    let lastError = null;
    for (const precision of order) {
      try {
        onStatus(`fetching the ${precision} model (exported on first use)...`);
        const resp = await fetch(browser.models[precision]);
        if (!resp.ok) {
          let msg = `HTTP ${resp.status}`;
          try {
            msg = (await resp.json()).error || msg;
          } catch (_) {
            /* not JSON */
          }
          throw new Error(msg);
        }
        const bytes = new Uint8Array(await resp.arrayBuffer());
        onStatus(`starting the ${precision} model...`);
        const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
        return new LocalModel(ort, session, resp.headers.get("X-Model-Precision") || precision, bytes.length);
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError || new Error("no browser model offered");
  }

  /** Full-size 0/255 mask (union of all prompts) of an RGBA image, as in POST /api/segment:
   * every prompt's candidate windows go through the model as one batch; per point the mask with
   * the highest `iou` output (through cfg.score_calibration when the weights have one) is kept
   * (the border rule when the model has no `iou` output). */
  async segment(rgba, width, height, prompts, cfg) {
    const size = cfg.input_size || MODEL_SIZE;
    const plane = 3 * size * size;
    const mask = new Uint8Array(width * height);
    const groups = prompts.map((p) => candidateWindows(p, width, height, cfg));
    const wins = groups.flat();
    const input = new Float32Array(wins.length * plane);
    wins.forEach((win, i) => normalizeInto(input, i * plane, cropImage(rgba, width, height, win, size, cfg.pad_rgb, cfg.reducing_gap), size, cfg.mean, cfg.std));
    const names = this.session.outputNames;
    const logitsName = names.includes("mask_logits") ? "mask_logits" : names[0];
    const t0 = performance.now();
    const out = await this.session.run({ [this.session.inputNames[0]]: new this.ort.Tensor("float32", input, [wins.length, 3, size, size]) });
    const inferenceMs = performance.now() - t0;
    const logits = out[logitsName].data;
    const iou = names.includes("iou") ? out.iou.data : null;
    const chosen = [];
    let start = 0;
    groups.forEach((group, p) => {
      const offsets = group.map((_, i) => (start + i) * size * size);
      const raw = iou ? Array.from(iou.subarray(start, start + group.length)) : null;
      const scores = prompts[p].kind === "point" ? clickScores(cfg.score_calibration, logits, offsets, size, group, width, height, raw) : raw;
      let [best, reason] = chooseCandidate(logits, offsets, size, scores);
      if (group.length === 1) reason = prompts[p].kind === "box" ? "box" : "fixed";
      const win = group[best];
      pasteMaskInto(mask, width, height, logits.subarray(offsets[best], offsets[best] + size * size), size, win, cfg.threshold);
      const score = scores ? Math.round(scores[best] * 1e4) / 1e4 : null;
      chosen.push({ kind: prompts[p].kind, window: [win.x0, win.y0, win.x1, win.y1], side: win.x1 - win.x0, reason, score, candidates: group.length });
      start += group.length;
    });
    return { mask, inferenceMs, prompts: chosen };
  }
}
