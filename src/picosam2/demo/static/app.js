// The demo page: pick or upload a photo, click / drag to prompt, show the mask.
// Server mode: POST /api/segment with the photo and prompts, the answer is a full-size PNG mask.
// Browser mode ("Run in this browser"): the same windows are cut here and the ONNX model runs in
// onnxruntime-web (see local.js, windows.js); nothing is uploaded.

import { LocalModel, wasmThreads } from "./local.js";
import * as windows from "./windows.js";

const $ = (id) => document.getElementById(id);
const el = {
  mode: $("photo-mode"),
  stage: $("stage"),
  photo: $("photo"),
  mask: $("mask"),
  marks: $("marks"),
  samples: $("samples"),
  upload: $("upload"),
  uploadButton: $("upload-button"),
  addMode: $("add-mode"),
  boxMode: $("box-mode"),
  candidatesWrap: $("candidates-wrap"),
  candidates: $("candidates"),
  undo: $("undo"),
  clear: $("clear"),
  download: $("download"),
  annotateGroup: $("annotate-group"),
  annotateHelp: $("annotate-help"),
  annotate: $("annotate"),
  category: $("category"),
  local: $("local"),
  localPrecision: $("local-precision"),
  localScales: $("local-scales"),
  status: $("status"),
  latency: $("latency"),
  untrained: $("untrained"),
  error: $("error"),
};

const MASK_RGB = [30, 144, 255];
const DRAG_PX = 5;
const THUMB_PX = 72;

const state = {
  info: null,
  photo: null, // {blob, name, width, height, bitmap, url, rgba}
  prompts: [], // {kind: "point", x, y[, pick]} | {kind: "box", box: [x0, y0, x1, y1]}; pick: a candidate index
  history: [], // earlier prompt lists, for undo
  mask: null, // {width, height, data: Uint8Array 0/255, png: Blob | null, area}
  seq: 0,
  controller: null,
  local: null,
  useLocal: false,
  drag: null,
  addMode: false, // each click adds an object (the phone's Shift-click)
  boxMode: false, // a touch drag draws a box instead of scrolling
  cursor: null, // {x, y} image pixel of the keyboard cursor
  candidates: null, // per point prompt: {candidates: [{window, side, score, mask}], chosen}
  saving: false, // a "Save as annotation" request is on its way
};

// Hooks for the end-to-end test (tests/test_demo_browser.py) and for curious users.
const hooks = {
  ready: false,
  masksShown: 0,
  lastError: null,
  lastLatency: null,
  lastChoice: null, // per prompt: {kind, window, side, reason, score} of the mask shown
  wasmThreads: wasmThreads(),
  lastProfile: null, // in-browser click: milliseconds per stage (cut, network, choose, paste)
  lastSaved: null, // the answer of the last "Save as annotation"
  state,
  windows,
  maskArea: () => (state.mask ? state.mask.area : 0),
  maskBase64: () => (state.mask ? bytesToBase64(state.mask.data) : null),
  rgbaBase64: async () => bytesToBase64(new Uint8Array((await photoRGBA()).buffer)),
};
window.picosam2Demo = hooks;

function bytesToBase64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function showError(message) {
  hooks.lastError = message;
  if (!message) {
    el.error.hidden = true;
    el.error.textContent = "";
    return;
  }
  el.error.textContent = message;
  el.error.hidden = false;
}

function setStatus(text) {
  el.status.textContent = text;
}

function updateButtons() {
  el.undo.disabled = state.history.length === 0;
  el.clear.disabled = state.prompts.length === 0;
  el.download.disabled = !state.mask;
  el.annotate.disabled = !state.mask || !state.mask.area || !state.mask.made || state.saving;
}

// ---------------------------------------------------------------- photo

async function setPhoto(blob, name) {
  showError(null);
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch (_) {
    showError(`This browser cannot display ${name}; try a JPEG or PNG.`);
    return;
  }
  if (state.photo) URL.revokeObjectURL(state.photo.url);
  const url = URL.createObjectURL(blob);
  el.photo.src = url;
  await el.photo.decode().catch(() => {});
  state.photo = { blob, name, width: bitmap.width, height: bitmap.height, bitmap, url, rgba: null };
  state.prompts = [];
  state.history = [];
  state.mask = null;
  state.cursor = null;
  state.seq++;
  showCandidates(null);
  el.mask.width = bitmap.width;
  el.mask.height = bitmap.height;
  el.mask.getContext("2d").clearRect(0, 0, bitmap.width, bitmap.height);
  el.stage.classList.remove("empty");
  for (const b of el.samples.querySelectorAll("button")) b.classList.toggle("selected", b.dataset.name === name);
  resizeMarks();
  updateButtons();
  el.latency.textContent = "";
  setStatus(`${name}: ${bitmap.width} x ${bitmap.height}. Click an object.`);
}

/** The photo's pixels as RGBA (transparent parts composited on white, as the server does). */
async function photoRGBA() {
  const p = state.photo;
  if (!p.rgba) {
    const canvas = new OffscreenCanvas(p.width, p.height);
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, p.width, p.height);
    ctx.drawImage(p.bitmap, 0, 0);
    p.rgba = ctx.getImageData(0, 0, p.width, p.height).data;
  }
  return p.rgba;
}

async function loadSample(name, url) {
  setStatus(`loading ${name}...`);
  const resp = await fetch(url);
  if (!resp.ok) {
    showError(`cannot load sample ${name} (HTTP ${resp.status})`);
    return;
  }
  await setPhoto(await resp.blob(), name);
}

// ---------------------------------------------------------------- prompts and drawing

function toImage(ev) {
  const rect = el.photo.getBoundingClientRect();
  const x = ((ev.clientX - rect.left) * state.photo.width) / rect.width;
  const y = ((ev.clientY - rect.top) * state.photo.height) / rect.height;
  return { x, y };
}

function clampPoint(v, size) {
  return Math.min(size - 1, Math.max(0, Math.floor(v)));
}

function resizeMarks() {
  const rect = el.photo.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  el.marks.width = Math.max(1, Math.round(rect.width * dpr));
  el.marks.height = Math.max(1, Math.round(rect.height * dpr));
  drawMarks();
}

function drawMarks() {
  const ctx = el.marks.getContext("2d");
  ctx.clearRect(0, 0, el.marks.width, el.marks.height);
  if (!state.photo) return;
  const sx = el.marks.width / state.photo.width;
  const sy = el.marks.height / state.photo.height;
  const dpr = window.devicePixelRatio || 1;
  ctx.lineWidth = 2 * dpr;
  const boxes = state.prompts.filter((p) => p.kind === "box").map((p) => p.box);
  if (state.drag && state.drag.moved) boxes.push(dragBox(state.drag));
  for (const [x0, y0, x1, y1] of boxes) {
    ctx.strokeStyle = "rgba(0,0,0,0.6)";
    ctx.strokeRect(x0 * sx - dpr, y0 * sy - dpr, (x1 - x0) * sx + 2 * dpr, (y1 - y0) * sy + 2 * dpr);
    ctx.strokeStyle = "#39ff6a";
    ctx.strokeRect(x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy);
  }
  for (const p of state.prompts) {
    if (p.kind !== "point") continue;
    ctx.beginPath();
    ctx.arc((p.x + 0.5) * sx, (p.y + 0.5) * sy, 6 * dpr, 0, 2 * Math.PI);
    ctx.fillStyle = "#39ff6a";
    ctx.fill();
    ctx.strokeStyle = "#fff";
    ctx.stroke();
  }
  if (state.cursor && el.stage.matches(":focus-visible")) {
    // the keyboard cursor: a ring with a cross, black and white so it shows on any photo
    const cx = (state.cursor.x + 0.5) * sx;
    const cy = (state.cursor.y + 0.5) * sy;
    const r = 11 * dpr;
    for (const [style, width] of [["rgba(0,0,0,0.8)", 4 * dpr], ["#fff", 2 * dpr]]) {
      ctx.strokeStyle = style;
      ctx.lineWidth = width;
      ctx.beginPath();
      ctx.arc(cx, cy, r, 0, 2 * Math.PI);
      ctx.moveTo(cx - 1.8 * r, cy);
      ctx.lineTo(cx - 0.4 * r, cy);
      ctx.moveTo(cx + 0.4 * r, cy);
      ctx.lineTo(cx + 1.8 * r, cy);
      ctx.moveTo(cx, cy - 1.8 * r);
      ctx.lineTo(cx, cy - 0.4 * r);
      ctx.moveTo(cx, cy + 0.4 * r);
      ctx.lineTo(cx, cy + 1.8 * r);
      ctx.stroke();
    }
  }
}

function dragBox(d) {
  const w = state.photo.width;
  const h = state.photo.height;
  const x0 = Math.max(0, Math.min(d.x0, d.x1));
  const y0 = Math.max(0, Math.min(d.y0, d.y1));
  const x1 = Math.min(w, Math.max(d.x0, d.x1));
  const y1 = Math.min(h, Math.max(d.y0, d.y1));
  return [Math.round(x0), Math.round(y0), Math.round(x1), Math.round(y1)];
}

function setPrompts(prompts) {
  state.history.push(state.prompts);
  if (state.history.length > 100) state.history.shift();
  state.prompts = prompts;
  drawMarks();
  updateButtons();
  update();
}

function onPointerDown(ev) {
  if (!state.photo || ev.button !== 0) return;
  // A touch outside Box mode may become a scroll: leave the gesture to the browser (it sends
  // pointercancel when it scrolls); a tap still ends in pointerup and clicks.
  const boxes = ev.pointerType !== "touch" || state.boxMode;
  if (boxes) {
    ev.preventDefault();
    el.stage.setPointerCapture(ev.pointerId);
  }
  const p = toImage(ev);
  state.drag = { x0: p.x, y0: p.y, x1: p.x, y1: p.y, cx: ev.clientX, cy: ev.clientY, shift: ev.shiftKey, moved: false, boxes };
}

function onPointerMove(ev) {
  const d = state.drag;
  if (!d) return;
  const p = toImage(ev);
  d.x1 = p.x;
  d.y1 = p.y;
  if (Math.hypot(ev.clientX - d.cx, ev.clientY - d.cy) >= DRAG_PX) d.moved = true;
  if (d.moved && d.boxes) drawMarks();
}

function onPointerUp(ev) {
  const d = state.drag;
  if (!d) return;
  state.drag = null;
  if (d.moved && !d.boxes) return; // a swipe, not a tap
  const keep = d.shift || ev.shiftKey || state.addMode ? state.prompts : [];
  let prompt = null;
  if (d.moved) {
    const box = dragBox(d);
    if (box[2] - box[0] >= 2 && box[3] - box[1] >= 2) prompt = { kind: "box", box };
  }
  if (!prompt) {
    const x = clampPoint(d.x0, state.photo.width);
    const y = clampPoint(d.y0, state.photo.height);
    prompt = { kind: "point", x, y };
    state.cursor = { x, y }; // the keyboard goes on from the last click
  }
  setPrompts([...keep, prompt]);
}

// ---------------------------------------------------------------- keyboard

/** Arrow keys move a cursor over the photo (Shift: finer), Enter / Space segment at it
 * (Shift+Enter adds an object), Backspace / Delete undo; Escape (window-wide) clears. */
function onStageKey(ev) {
  if (!state.photo) return;
  const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  const w = state.photo.width;
  const h = state.photo.height;
  if (ev.key in moves) {
    ev.preventDefault();
    const step = Math.max(1, Math.round(Math.max(w, h) / (ev.shiftKey ? 200 : 40)));
    const c = state.cursor || { x: Math.floor(w / 2), y: Math.floor(h / 2) };
    const [dx, dy] = moves[ev.key];
    state.cursor = { x: clampPoint(c.x + dx * step, w), y: clampPoint(c.y + dy * step, h) };
    drawMarks();
    setStatus(`cursor at ${state.cursor.x}, ${state.cursor.y}: Enter segments there`);
  } else if (ev.key === "Enter" || ev.key === " ") {
    ev.preventDefault();
    if (ev.repeat) return;
    const c = state.cursor || { x: Math.floor(w / 2), y: Math.floor(h / 2) };
    state.cursor = c;
    const keep = ev.shiftKey || state.addMode ? state.prompts : [];
    setPrompts([...keep, { kind: "point", x: c.x, y: c.y }]);
  } else if (ev.key === "Backspace" || ev.key === "Delete") {
    ev.preventDefault();
    undo();
  }
}

function undo() {
  if (!state.history.length) return;
  state.prompts = state.history.pop();
  drawMarks();
  updateButtons();
  update();
}

function setToggle(button, on) {
  button.setAttribute("aria-pressed", on ? "true" : "false");
}

// ---------------------------------------------------------------- masks

function showMask(data, width, height, png) {
  let area = 0;
  const img = new ImageData(width, height);
  const px = img.data;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (!data[i]) continue;
      area++;
      const edge =
        x === 0 || y === 0 || x === width - 1 || y === height - 1 || !data[i - 1] || !data[i + 1] || !data[i - width] || !data[i + width];
      px[4 * i] = MASK_RGB[0];
      px[4 * i + 1] = MASK_RGB[1];
      px[4 * i + 2] = MASK_RGB[2];
      px[4 * i + 3] = edge ? 255 : 120;
    }
  }
  el.mask.width = width;
  el.mask.height = height;
  el.mask.getContext("2d").putImageData(img, 0, 0);
  state.mask = { width, height, data, png, area };
  hooks.masksShown++;
  updateButtons();
  return area;
}

function clearMask() {
  state.mask = null;
  showCandidates(null);
  if (state.photo) el.mask.getContext("2d").clearRect(0, 0, el.mask.width, el.mask.height);
  updateButtons();
}

// ---------------------------------------------------------------- candidates

/** "window 300 px, score 0.82" */
function sideText(c) {
  return `${c.side} px${c.score === null || c.score === undefined ? "" : ` · ${c.score.toFixed(2)}`}`;
}

/** The candidate windows of the last point prompt, each with its mask over the photo's window
 * and its score; the shown one is pressed, another can be picked (an undoable change). */
function showCandidates(list) {
  state.candidates = list;
  el.candidates.replaceChildren();
  const points = state.prompts.map((q, i) => [q, i]).filter(([q]) => q.kind === "point");
  const last = list && points.length ? list[points.length - 1] : null;
  if (!last || !last.candidates || last.candidates.length < 2 || !state.photo) {
    el.candidatesWrap.hidden = true;
    return;
  }
  const promptIndex = points[points.length - 1][1];
  const dpr = window.devicePixelRatio || 1;
  last.candidates.forEach((c, k) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.index = String(k);
    b.setAttribute("aria-pressed", k === last.chosen ? "true" : "false");
    b.title = `use the ${c.side} px window's mask${c.score === null ? "" : ` (score ${c.score.toFixed(3)})`}`;
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = Math.round(THUMB_PX * dpr);
    drawThumb(canvas, c);
    const label = document.createElement("span");
    label.textContent = sideText(c);
    b.append(canvas, label);
    b.addEventListener("click", () => pickCandidate(promptIndex, k));
    el.candidates.append(b);
  });
  el.candidatesWrap.hidden = false;
}

function drawThumb(canvas, c) {
  const ctx = canvas.getContext("2d");
  const n = canvas.width;
  const [x0, y0, x1, y1] = c.window;
  const p = state.photo;
  const pad = (state.info && state.info.pad_rgb) || [124, 116, 104];
  ctx.fillStyle = `rgb(${pad.join(",")})`;
  ctx.fillRect(0, 0, n, n);
  const s = n / (x1 - x0);
  const sx0 = Math.max(0, x0);
  const sy0 = Math.max(0, y0);
  const sx1 = Math.min(p.width, x1);
  const sy1 = Math.min(p.height, y1);
  if (sx1 > sx0 && sy1 > sy0) ctx.drawImage(p.bitmap, sx0, sy0, sx1 - sx0, sy1 - sy0, (sx0 - x0) * s, (sy0 - y0) * s, (sx1 - sx0) * s, (sy1 - sy0) * s);
  const size = Math.round(Math.sqrt(c.mask.length));
  const img = new ImageData(size, size);
  for (let i = 0; i < c.mask.length; i++) {
    if (!c.mask[i]) continue;
    img.data.set([MASK_RGB[0], MASK_RGB[1], MASK_RGB[2], 150], 4 * i);
  }
  const m = new OffscreenCanvas(size, size);
  m.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(m, 0, 0, n, n);
  // the clicked pixel
  ctx.strokeStyle = "#39ff6a";
  ctx.lineWidth = Math.max(1, n / 36);
  ctx.beginPath();
  ctx.arc(n / 2, n / 2, n / 24, 0, 2 * Math.PI);
  ctx.stroke();
}

function pickCandidate(promptIndex, k) {
  const prompts = state.prompts.map((q, i) => (i === promptIndex ? { ...q, pick: k } : q));
  setPrompts(prompts);
}

/** Bit-packed (numpy.packbits) base64 -> Uint8Array of 0/1 with `n` entries. */
function unpackBits(b64, n) {
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (bytes[i >> 3] >> (7 - (i & 7))) & 1;
  return out;
}

/** The server's multimask answer -> per point prompt {candidates, chosen}. */
function serverCandidates(answer) {
  const size = (state.info && state.info.input_size) || 96;
  return answer.prompts
    .filter((q) => q.kind === "point")
    .map((q) => {
      const candidates = (q.candidates || []).map((c) => ({ window: c.window, side: c.side, score: c.score, mask: unpackBits(c.mask, size * size) }));
      const chosen = candidates.findIndex((c) => c.window.every((v, i) => v === q.window[i]));
      return { candidates, chosen };
    });
}

/** An answer's per-prompt entries without the candidate lists (what the status line names). */
function choiceOnly(prompts) {
  return (prompts || []).map(({ candidates, ...rest }) => ({ ...rest, candidates: Array.isArray(candidates) ? candidates.length : candidates }));
}

async function decodeMaskPng(blob, width, height) {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const data = new Uint8Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = rgba[4 * i] > 127 ? 255 : 0;
  return data;
}

async function update() {
  const seq = ++state.seq;
  if (state.controller) state.controller.abort();
  state.controller = null;
  showError(null);
  if (!state.photo) return;
  if (state.prompts.length === 0) {
    clearMask();
    el.latency.textContent = "";
    setStatus("No prompt. Click an object.");
    return;
  }
  el.stage.classList.add("busy");
  try {
    if (el.local.checked) {
      // "Run in this browser" is ticked: the photo never leaves the page, even while the
      // model is still loading (toggleLocal segments the prompts once it is ready)
      if (state.useLocal && state.local) await updateLocal(seq);
      else setStatus("waiting for the in-browser model; nothing is uploaded");
    } else await updateServer(seq);
  } finally {
    if (seq === state.seq) el.stage.classList.remove("busy");
  }
}

const REASONS = { score: "best score", border: "mask ends inside", fixed: "one window", box: "box", picked: "picked" };

/** " · window 300 px, score 0.82 (best score)" for each point prompt's chosen window. */
function describeChoice(prompts) {
  const parts = (prompts || [])
    .filter((q) => q.kind === "point")
    .map((q) => `window ${q.side} px${q.score === null || q.score === undefined ? "" : `, score ${q.score.toFixed(2)}`} (${REASONS[q.reason] || q.reason})`);
  return parts.length ? ` · ${parts.join("; ")}` : "";
}

function describe(n) {
  return `${n} prompt${n === 1 ? "" : "s"}`;
}

async function updateServer(seq) {
  const p = state.photo;
  const max = state.info ? state.info.max_upload_bytes : Infinity;
  if (p.blob.size > max) {
    showError(`${p.name} is ${(p.blob.size / 1048576).toFixed(1)} MB; the server takes at most ${Math.round(max / 1048576)} MB. Try "Run in this browser".`);
    return;
  }
  const form = new FormData();
  form.append("image", p.blob, p.name);
  const pointPrompts = state.prompts.filter((q) => q.kind === "point");
  const points = pointPrompts.map((q) => [q.x, q.y]);
  const boxes = state.prompts.filter((q) => q.kind === "box").map((q) => q.box);
  if (points.length) form.append("points", JSON.stringify(points));
  if (boxes.length) form.append("boxes", JSON.stringify(boxes));
  if (pointPrompts.some((q) => q.pick !== undefined)) form.append("pick", JSON.stringify(pointPrompts.map((q) => (q.pick === undefined ? null : q.pick))));
  // scale-aware clicks: every candidate window with its score and mask (else one window each)
  form.append(state.info && state.info.point_scales ? "multimask" : "format", state.info && state.info.point_scales ? "true" : "json");
  const controller = new AbortController();
  state.controller = controller;
  setStatus("segmenting...");
  const t0 = performance.now();
  let resp;
  try {
    resp = await fetch("/api/segment", { method: "POST", body: form, signal: controller.signal });
  } catch (err) {
    if (seq === state.seq) showError(`request failed: ${err.message}`);
    return;
  }
  if (seq !== state.seq) return;
  if (!resp.ok) {
    let msg = `HTTP ${resp.status}`;
    try {
      msg = (await resp.json()).error || msg;
    } catch (_) {
      /* not JSON */
    }
    showError(msg);
    setStatus("");
    return;
  }
  const answer = await resp.json();
  const png = new Blob([Uint8Array.from(atob(answer.mask_png), (c) => c.charCodeAt(0))], { type: "image/png" });
  const data = await decodeMaskPng(png, p.width, p.height);
  if (seq !== state.seq) return;
  const total = performance.now() - t0;
  const area = showMask(data, p.width, p.height, png);
  state.mask.made = { mode: "server", prompts: structuredClone(state.prompts), multimask: form.get("multimask") };
  updateButtons();
  const server = Number(answer.latency_ms);
  const net = Number(answer.inference_ms);
  hooks.lastLatency = { mode: "server", total, server, network: net };
  hooks.lastChoice = choiceOnly(answer.prompts);
  showCandidates(serverCandidates(answer));
  el.latency.textContent = `server ${server.toFixed(0)} ms (network ${net.toFixed(0)} ms) · round trip ${total.toFixed(0)} ms`;
  setStatus(`${describe(state.prompts.length)} · mask ${area.toLocaleString()} px${describeChoice(answer.prompts)}`);
}

async function updateLocal(seq) {
  const p = state.photo;
  setStatus("segmenting in the browser...");
  const t0 = performance.now();
  let result;
  try {
    const rgba = await photoRGBA();
    result = await state.local.segment(rgba, p.width, p.height, state.prompts, localConfig(), p.url);
  } catch (err) {
    if (seq === state.seq) showError(`in-browser inference failed: ${err.message}`);
    return;
  }
  if (seq !== state.seq) return;
  const total = performance.now() - t0;
  const area = showMask(result.mask, p.width, p.height, null);
  state.mask.made = { mode: "browser", prompts: structuredClone(state.prompts), config: localConfig() };
  updateButtons();
  hooks.lastLatency = { mode: "browser", total, network: result.inferenceMs, windows: result.windows };
  hooks.lastProfile = { ...result.profile, total };
  hooks.lastChoice = choiceOnly(result.prompts);
  showCandidates(result.prompts.filter((q) => q.kind === "point").map((q) => ({ candidates: q.candidates, chosen: q.chosen })));
  el.latency.textContent = `in browser (${state.local.precision}, ${state.local.provider}) ${total.toFixed(0)} ms (network ${result.inferenceMs.toFixed(0)} ms, ${result.windows} window${result.windows === 1 ? "" : "s"})`;
  setStatus(
    `${describe(state.prompts.length)} · mask ${area.toLocaleString()} px${describeChoice(result.prompts)} · the photo stayed on this machine`,
  );
}

/** The window rules for the page's model: the server's, with the click sizes chosen in the
 * "window sizes" menu (by default fewer than the server's: WebAssembly is slower). */
function localConfig() {
  const scales = el.localScales.value;
  return { ...state.info, point_scales: !scales || scales === "server" ? state.info.point_scales : scales };
}

function fillScales(info) {
  const server = info.point_scales;
  const auto = typeof server === "string" && server.startsWith("auto");
  el.localScales.hidden = !auto;
  if (!auto) return;
  const options = [["server", `window sizes: ${server} (as the server)`]];
  for (const n of [4, 2]) if (server === "auto" || parseInt(server.slice(5), 10) > n) options.push([`auto:${n}`, `window sizes: auto:${n} (faster)`]);
  for (const [value, label] of options) el.localScales.append(new Option(label, value));
  const preferred = info.browser && info.browser.point_scales;
  el.localScales.value = options.some(([v]) => v === preferred) ? preferred : "server";
}

async function maskPngBlob() {
  const m = state.mask;
  if (m.png) return m.png;
  const canvas = new OffscreenCanvas(m.width, m.height);
  const ctx = canvas.getContext("2d");
  const img = new ImageData(m.width, m.height);
  for (let i = 0; i < m.data.length; i++) {
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = m.data[i];
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return canvas.convertToBlob({ type: "image/png" });
}

async function download() {
  if (!state.mask) return;
  const blob = await maskPngBlob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${(state.photo.name || "photo").replace(/\.[^.]*$/, "")}_mask.png`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// ---------------------------------------------------------------- save as annotation

/** Run lengths of a row-major 0/255 mask: background, object, background... (POST /api/annotate). */
function maskRuns(data) {
  const runs = [];
  let value = 0;
  let n = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i] ? 1 : 0;
    if (v !== value) {
      runs.push(n);
      n = 0;
      value = v;
    }
    n++;
  }
  runs.push(n);
  return runs;
}

/** "Save as annotation": the masks shown, one object per prompt, appended to the server's COCO
 * file. Masks made by the server are made again there from the same prompts; masks made in this
 * page are sent as they are (each prompt's own, their union being the mask shown). */
async function saveAnnotation() {
  const p = state.photo;
  const m = state.mask;
  if (!p || !m || !m.made || state.saving) return;
  const form = new FormData();
  form.append("image", p.blob, p.name);
  form.append("category", el.category.value);
  const made = m.made;
  const points = made.prompts.filter((q) => q.kind === "point");
  if (made.mode === "browser") {
    const rgba = await photoRGBA();
    const union = new Uint8Array(p.width * p.height);
    const masks = [];
    for (const q of made.prompts) {
      const r = await state.local.segment(rgba, p.width, p.height, [q], made.config, p.url);
      for (let i = 0; i < union.length; i++) union[i] |= r.mask[i];
      masks.push({ width: p.width, height: p.height, runs: maskRuns(r.mask) });
    }
    if (union.some((v, i) => v !== m.data[i])) {
      showError("the objects' masks do not make the mask shown; click again, then save");
      return;
    }
    form.append("masks", JSON.stringify(masks));
  } else {
    if (points.length) form.append("points", JSON.stringify(points.map((q) => [q.x, q.y])));
    const boxes = made.prompts.filter((q) => q.kind === "box").map((q) => q.box);
    if (boxes.length) form.append("boxes", JSON.stringify(boxes));
    if (points.some((q) => q.pick !== undefined)) form.append("pick", JSON.stringify(points.map((q) => (q.pick === undefined ? null : q.pick))));
    if (made.multimask) form.append("multimask", made.multimask);
  }
  state.saving = true;
  updateButtons();
  showError(null);
  setStatus("saving...");
  try {
    const resp = await fetch("/api/annotate", { method: "POST", body: form });
    let answer = null;
    try {
      answer = await resp.json();
    } catch (_) {
      /* not JSON */
    }
    if (!resp.ok) {
      showError(`not saved: ${(answer && answer.error) || `HTTP ${resp.status}`}`);
      setStatus("");
      return;
    }
    hooks.lastSaved = answer;
    const n = answer.annotation_ids.length;
    setStatus(`saved ${n} object${n === 1 ? "" : "s"} (${answer.category}) of ${answer.file_name} to ${answer.file}: ${answer.annotations} annotation${answer.annotations === 1 ? "" : "s"} in all`);
  } catch (err) {
    showError(`not saved: ${err.message}`);
  } finally {
    state.saving = false;
    updateButtons();
  }
}

async function toggleLocal() {
  if (!el.local.checked) {
    state.useLocal = false;
    update();
    return;
  }
  try {
    if (!state.local) state.local = await LocalModel.shared(state.info, setStatus);
    state.useLocal = true;
    // same text length as before loading (the label must not grow: the photo would move)
    el.localPrecision.textContent = `(${state.local.precision} ONNX)`;
    setStatus(`the ${state.local.precision} model runs in this page now (onnxruntime-web, ${state.local.provider})`);
    update();
  } catch (err) {
    el.local.checked = false;
    state.useLocal = false;
    showError(`cannot run the model in this browser: ${err.message}`);
    setStatus("");
  }
}

// ---------------------------------------------------------------- start

async function start() {
  try {
    const [info, samples] = await Promise.all([fetch("/api/info").then((r) => r.json()), fetch("/api/samples").then((r) => r.json())]);
    state.info = info;
    el.untrained.hidden = info.trained !== false;
    if (!info.browser.available) {
      el.local.disabled = true;
      el.local.parentElement.title = "onnxruntime-web is not vendored (run scripts/vendor_onnxruntime_web.sh)";
      el.localPrecision.textContent = "(unavailable)";
    } else {
      el.localPrecision.textContent = `(${info.browser.precision} ONNX)`;
    }
    fillScales(info);
    if (info.annotations) {
      el.annotateGroup.hidden = false;
      el.annotateHelp.hidden = false;
      el.annotate.title = `Append the masks shown (one annotation per object) to ${info.annotations}`;
    }
    for (const s of samples) {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.name = s.name;
      const thumb = document.createElement("img");
      thumb.src = s.url;
      thumb.alt = "";
      b.append(thumb, document.createTextNode(s.name));
      b.addEventListener("click", () => loadSample(s.name, s.url));
      el.samples.append(b);
    }
    setStatus("Pick a sample or upload a photo.");
  } catch (err) {
    showError(`cannot reach the app: ${err.message}`);
  }
  el.uploadButton.addEventListener("click", () => el.upload.click());
  el.addMode.addEventListener("click", () => {
    state.addMode = !state.addMode;
    setToggle(el.addMode, state.addMode);
  });
  el.boxMode.addEventListener("click", () => {
    state.boxMode = !state.boxMode;
    setToggle(el.boxMode, state.boxMode);
    el.stage.classList.toggle("boxing", state.boxMode);
  });
  el.stage.addEventListener("keydown", onStageKey);
  el.stage.addEventListener("focus", () => {
    if (state.photo && !state.cursor) state.cursor = { x: Math.floor(state.photo.width / 2), y: Math.floor(state.photo.height / 2) };
    drawMarks();
  });
  el.stage.addEventListener("blur", drawMarks);
  el.upload.addEventListener("change", () => {
    const f = el.upload.files[0];
    if (f) setPhoto(f, f.name);
    el.upload.value = "";
  });
  el.stage.addEventListener("pointerdown", onPointerDown);
  el.stage.addEventListener("pointermove", onPointerMove);
  el.stage.addEventListener("pointerup", onPointerUp);
  el.stage.addEventListener("pointercancel", () => {
    state.drag = null;
    drawMarks();
  });
  el.undo.addEventListener("click", undo);
  el.clear.addEventListener("click", () => setPrompts([]));
  el.download.addEventListener("click", download);
  el.annotate.addEventListener("click", saveAnnotation);
  el.local.addEventListener("change", toggleLocal);
  el.localScales.addEventListener("change", () => state.useLocal && update());
  window.addEventListener("resize", () => state.photo && resizeMarks());
  window.addEventListener("keydown", (ev) => {
    if (el.mode.hidden) return; // the video mode has its own keys
    if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") {
      ev.preventDefault();
      el.undo.click();
    } else if (ev.key === "Escape" && state.prompts.length) {
      setPrompts([]);
    }
  });
  new ResizeObserver(() => state.photo && resizeMarks()).observe(el.photo);
  hooks.ready = true;
}

start();
