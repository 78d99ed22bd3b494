// In-browser inference: the model runs in this page with onnxruntime-web (wasm backend), so the
// photo never leaves the machine. The runtime is the npm package vendored into
// /static/vendor/onnxruntime-web/ at build time; the model is exported by the app on first use.

import { MODEL_SIZE, cropImage, normalizeInto, pasteMaskInto, windowForPrompt } from "./windows.js";

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

  /** Full-size 0/255 mask (union of all prompts) of an RGBA image, as in POST /api/segment. */
  async segment(rgba, width, height, prompts, cfg) {
    const size = cfg.input_size || MODEL_SIZE;
    const mask = new Uint8Array(width * height);
    const inputName = this.session.inputNames[0];
    const outputName = this.session.outputNames[0];
    let inferenceMs = 0;
    // One prompt per run: works whether or not the exported graph has a dynamic batch axis.
    for (const prompt of prompts) {
      const win = windowForPrompt(prompt, width, height, cfg);
      const crop = cropImage(rgba, width, height, win, size, cfg.pad_rgb);
      const input = new Float32Array(3 * size * size);
      normalizeInto(input, 0, crop, size, cfg.mean, cfg.std);
      const t0 = performance.now();
      const out = await this.session.run({ [inputName]: new this.ort.Tensor("float32", input, [1, 3, size, size]) });
      inferenceMs += performance.now() - t0;
      const logits = out[outputName].data;
      pasteMaskInto(mask, width, height, logits, size, win, cfg.threshold);
    }
    return { mask, inferenceMs };
  }
}
