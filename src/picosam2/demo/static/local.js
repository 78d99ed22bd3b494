// In-browser inference: the model runs in this page with onnxruntime-web, so the photo never
// leaves the machine. The runtime is the npm package vendored into /static/vendor/onnxruntime-web/
// at build time; the model is exported by the app on first use.
//
// Execution providers: WebNN or WebGPU where the browser has them and the vendored build
// includes them (ort.all / ort.webgpu bundles), else WebAssembly (SIMD, threads when the page is
// cross-origin isolated, which the app's COOP/COEP headers make it).

import { MODEL_SIZE, candidateWindows, chooseCandidate, clickScores, cropImage, normalizeInto, pasteMaskInto } from "./windows.js";

let runtime = null;

/** The onnxruntime-web module: the bundle with WebGPU / WebNN when vendored and the browser has
 * one of them, else the wasm-only bundle. */
async function loadRuntime(base, bundles = ["ort.wasm.min.mjs"]) {
  if (!runtime) {
    runtime = (async () => {
      let lastError = null;
      for (const name of bundles) {
        try {
          const ort = await import(`${base}${name}`);
          ort.env.wasm.wasmPaths = base;
          ort.env.wasm.numThreads = wasmThreads();
          ort.env.wasm.proxy = false;
          return ort;
        } catch (err) {
          lastError = err;
        }
      }
      throw lastError || new Error("no onnxruntime-web bundle");
    })();
    runtime.catch(() => {
      runtime = null;
    });
  }
  return runtime;
}

/** WebAssembly threads: `?threads=N` in the page's address, else one core less than the machine
 * has, at most 4 (on a 2-core machine one thread measured faster than two: benchmarks/demo_latency.json).
 * Threads need a cross-origin isolated page; the app sends COOP/COEP headers. */
export function wasmThreads() {
  const asked = typeof location !== "undefined" ? parseInt(new URLSearchParams(location.search).get("threads"), 10) : NaN;
  if (!self.crossOriginIsolated) return 1;
  if (asked >= 1) return Math.min(asked, 16);
  return Math.min(4, Math.max(1, (navigator.hardwareConcurrency || 1) - 1));
}

/** The execution providers worth trying in this browser, best first (always ending in wasm). */
export function providerOrder(info) {
  const offered = (info.browser && info.browser.providers) || ["wasm"];
  const out = [];
  if (offered.includes("webnn") && typeof navigator !== "undefined" && "ml" in navigator) out.push("webnn");
  if (offered.includes("webgpu") && typeof navigator !== "undefined" && "gpu" in navigator) out.push("webgpu");
  out.push("wasm");
  return out;
}

const CACHE_ENTRIES = 64;
let shared = null;

export class LocalModel {
  constructor(ort, session, precision, bytes, provider = "wasm") {
    this.ort = ort;
    this.session = session;
    this.precision = precision;
    this.bytes = bytes;
    this.provider = provider;
    // per prompt (and photo): its candidate windows' logits and scores, so adding an object or
    // picking another candidate does not run the earlier prompts again
    this.cache = new Map();
  }

  /** One model for the whole page (the photo and the video mode share it): loaded on the first
   * call, the same promise after. */
  static shared(info, onStatus = () => {}) {
    if (!shared) {
      shared = LocalModel.load(info, onStatus);
      shared.catch(() => {
        shared = null;
      });
    }
    return shared;
  }

  /** Load the runtime and the model offered by /api/info (INT8 first, fp32 if that fails), on
   * the first execution provider that starts. */
  static async load(info, onStatus = () => {}) {
    const browser = info.browser;
    if (!browser || !browser.available) throw new Error("in-browser inference is not available (onnxruntime-web not vendored)");
    onStatus("loading onnxruntime-web...");
    const providers = providerOrder(info);
    const bundles = providers[0] === "wasm" ? ["ort.wasm.min.mjs"] : [...(browser.bundles || []), "ort.wasm.min.mjs"];
    const ort = await loadRuntime(browser.runtime, bundles);
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
        for (const provider of providers) {
          try {
            onStatus(`starting the ${precision} model (${provider})...`);
            const session = await ort.InferenceSession.create(bytes, { executionProviders: [provider], graphOptimizationLevel: "all" });
            return new LocalModel(ort, session, resp.headers.get("X-Model-Precision") || precision, bytes.length, provider);
          } catch (err) {
            lastError = err;
          }
        }
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError || new Error("no browser model offered");
  }

  /** The network on `count` normalised windows (float32 NCHW): {logits, iou|null, ms}. */
  async run(input, count, size) {
    const names = this.session.outputNames;
    const logitsName = names.includes("mask_logits") ? "mask_logits" : names[0];
    const t0 = performance.now();
    const out = await this.session.run({ [this.session.inputNames[0]]: new this.ort.Tensor("float32", input, [count, 3, size, size]) });
    const ms = performance.now() - t0;
    return { logits: out[logitsName].data, iou: names.includes("iou") ? out.iou.data : null, ms };
  }

  /** Full-size 0/255 mask (union of all prompts) of an RGBA image, as in POST /api/segment:
   * the candidate windows of every prompt not seen before go through the model as one batch; per
   * point the mask with the highest `iou` output (through cfg.score_calibration when the weights
   * have one) is kept (the border rule when the model has no `iou` output), or the candidate the
   * prompt's `pick` names. Each prompt's entry lists its candidates (window, side, score, 0/1
   * mask of the window). `imageKey` names the photo (for the cache). */
  async segment(rgba, width, height, prompts, cfg, imageKey = null) {
    const size = cfg.input_size || MODEL_SIZE;
    const plane = 3 * size * size;
    const profile = { cut: 0, network: 0, choose: 0, paste: 0 };
    const key = (p) => `${imageKey}|${cfg.point_scales}|${p.kind === "point" ? `${p.x},${p.y}` : p.box.join(",")}`;
    const todo = [];
    for (const p of prompts) {
      const k = key(p);
      if (imageKey !== null && this.cache.has(k)) continue;
      if (!todo.some((t) => t.key === k)) todo.push({ key: k, prompt: p, wins: candidateWindows(p, width, height, cfg) });
    }
    let inferenceMs = 0;
    let windows = 0;
    const fresh = new Map();
    if (todo.length) {
      let t = performance.now();
      windows = todo.reduce((n, g) => n + g.wins.length, 0);
      const input = new Float32Array(windows * plane);
      let i = 0;
      for (const g of todo) for (const win of g.wins) normalizeInto(input, plane * i++, cropImage(rgba, width, height, win, size, cfg.pad_rgb, cfg.reducing_gap), size, cfg.mean, cfg.std);
      profile.cut = performance.now() - t;
      const out = await this.run(input, windows, size);
      inferenceMs = out.ms;
      profile.network = out.ms;
      t = performance.now();
      let start = 0;
      for (const g of todo) {
        const n = g.wins.length;
        const logits = out.logits.slice(start * size * size, (start + n) * size * size);
        const offsets = g.wins.map((_, j) => j * size * size);
        const raw = out.iou ? Array.from(out.iou.subarray(start, start + n)) : null;
        const scores = g.prompt.kind === "point" ? clickScores(cfg.score_calibration, logits, offsets, size, g.wins, width, height, raw) : raw;
        const [best, reason] = chooseCandidate(logits, offsets, size, scores);
        const entry = { wins: g.wins, logits, offsets, scores, best, reason };
        fresh.set(g.key, entry);
        if (imageKey !== null) {
          this.cache.set(g.key, entry);
          while (this.cache.size > CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value);
        }
        start += n;
      }
      profile.choose = performance.now() - t;
    }
    const t = performance.now();
    const mask = new Uint8Array(width * height);
    const threshold = cfg.threshold || 0;
    const chosen = prompts.map((p) => {
      const e = fresh.get(key(p)) || this.cache.get(key(p));
      const pick = p.kind === "point" && Number.isInteger(p.pick) && p.pick >= 0 && p.pick < e.wins.length ? p.pick : null;
      let [best, reason] = [e.best, e.reason];
      if (e.wins.length === 1) reason = p.kind === "box" ? "box" : "fixed";
      if (pick !== null) [best, reason] = [pick, "picked"];
      const win = e.wins[best];
      pasteMaskInto(mask, width, height, e.logits.subarray(e.offsets[best], e.offsets[best] + size * size), size, win, threshold);
      const round = (v) => Math.round(v * 1e4) / 1e4;
      const score = e.scores ? round(e.scores[best]) : null;
      const candidates = e.wins.map((w, j) => {
        const m = new Uint8Array(size * size);
        const o = e.offsets[j];
        for (let q = 0; q < m.length; q++) m[q] = e.logits[o + q] > threshold ? 1 : 0;
        return { window: [w.x0, w.y0, w.x1, w.y1], side: w.x1 - w.x0, score: e.scores ? round(e.scores[j]) : null, mask: m };
      });
      return { kind: p.kind, window: [win.x0, win.y0, win.x1, win.y1], side: win.x1 - win.x0, reason, score, candidates, chosen: best };
    });
    profile.paste = performance.now() - t;
    return { mask, inferenceMs, windows, profile, prompts: chosen };
  }
}
