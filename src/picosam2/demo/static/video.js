// Video mode: open a clip or start the webcam, click objects, and the page follows them frame
// by frame with the INT8 model in onnxruntime-web. Nothing is uploaded: frames are read from the
// <video> element into a canvas, the windows cut here (windows.js), the window policy is the port
// of picosam2.track (track.js). Under the policy's image motion (the default) each object's window
// moves with the picture: the follower matches the last frame's luma around the object, weighted
// by the object's last mask, against this frame's (a few thousand blocks an object and frame).
// A window mask continues an object only when its pixels' colours are close enough to the
// object's (a histogram kept from the clicked mask on, as picosam2.track.Tracker keeps it).
//
// Frames: a clip is processed frame by frame (the video pauses while a frame is segmented, so no
// frame is skipped and the result is what `picosam2 track` computes on the clip); the webcam is
// live (the newest frame is taken whenever the previous one is done). The canvas shows the frame
// that was segmented, with each object's mask and window.

import { LocalModel } from "./local.js";
import { candidateWindows, chooseCandidate, clickScores, cropImage, normalizeInto, pasteMaskInto } from "./windows.js";
import { Follower, lumaPlane, observe } from "./track.js";

const $ = (id) => document.getElementById(id);
const el = {
  photoMode: $("photo-mode"),
  videoMode: $("video-mode"),
  tabPhoto: $("tab-photo"),
  tabVideo: $("tab-video"),
  stage: $("video-stage"),
  video: $("video"),
  frame: $("video-frame"),
  masks: $("video-masks"),
  upload: $("video-upload"),
  uploadButton: $("video-upload-button"),
  webcam: $("webcam"),
  play: $("video-play"),
  step: $("video-step"),
  clear: $("video-clear"),
  status: $("video-status"),
  fps: $("video-fps"),
  objects: $("video-objects"),
  error: $("error"),
};

const COLORS = [
  [30, 144, 255],
  [255, 99, 71],
  [50, 205, 50],
  [255, 215, 0],
  [186, 85, 211],
  [0, 206, 209],
  [255, 140, 0],
  [199, 21, 133],
];
const FPS_WINDOW_MS = 2000;
const FILE_RATE = 0.5;

const state = {
  info: null,
  model: null,
  source: null, // {kind: "file" | "webcam", name, url?, stream?}
  width: 0,
  height: 0,
  rgba: null, // the pixels of the frame on screen
  follower: null,
  objects: new Map(), // id -> {color, mask: Uint8Array, result}
  playing: false,
  busy: false,
  stepOnce: false,
  frames: 0, // frames segmented since the source was opened
  times: [], // end times of recent frames (fps)
  last: null, // {totalMs, networkMs, windows}
  callback: null,
};

// Hooks for the browser tests and for curious users.
const hooks = {
  ready: false,
  state,
  lastError: null,
  frames: () => state.frames,
  objects: () =>
    [...state.objects].map(([id, o]) => ({ id, ...(o.result || {}), area: o.mask ? o.mask.reduce((n, v) => n + (v ? 1 : 0), 0) : 0 })),
  maskBase64: (id) => {
    const o = state.objects.get(id);
    if (!o || !o.mask) return null;
    let s = "";
    for (let i = 0; i < o.mask.length; i += 0x8000) s += String.fromCharCode.apply(null, o.mask.subarray(i, i + 0x8000));
    return btoa(s);
  },
  timing: () => state.last,
  states: () => [...state.follower.objects].map(([id, o]) => ({ id, ...o.state })),
  appearance: (id) => {
    const o = state.follower.objects.get(id);
    return o && o.appearance ? Array.from(o.appearance) : null;
  },
  rgbaBase64: () => {
    const b = new Uint8Array(state.rgba.buffer, state.rgba.byteOffset, state.rgba.byteLength);
    let s = "";
    for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
    return btoa(s);
  },
  fps: () => fps(),
};
window.picosam2Video = hooks;

function setStatus(text) {
  el.status.textContent = text;
}

function showError(message) {
  hooks.lastError = message;
  el.error.textContent = message || "";
  el.error.hidden = !message;
}

function setMode(video) {
  el.photoMode.hidden = video;
  el.videoMode.hidden = !video;
  el.tabPhoto.setAttribute("aria-pressed", String(!video));
  el.tabVideo.setAttribute("aria-pressed", String(video));
  if (!video && state.playing) pause();
}

function updateButtons() {
  const has = state.source !== null;
  el.play.disabled = !has;
  el.step.disabled = !has || state.playing;
  el.clear.disabled = state.objects.size === 0;
  el.play.textContent = state.playing ? "Pause" : "Play";
  el.play.setAttribute("aria-pressed", String(state.playing));
}

async function model() {
  if (!state.model) {
    const info = state.info;
    if (!info.browser || !info.browser.available) throw new Error("onnxruntime-web is not vendored: the video mode needs it (run scripts/vendor_onnxruntime_web.sh)");
    state.model = await LocalModel.shared(info, setStatus);
  }
  return state.model;
}

// ---------------------------------------------------------------- sources

function stopSource() {
  pause();
  const s = state.source;
  if (s && s.stream) for (const t of s.stream.getTracks()) t.stop();
  if (s && s.url) URL.revokeObjectURL(s.url);
  el.video.removeAttribute("src");
  el.video.srcObject = null;
  state.source = null;
  state.follower = new Follower(state.info.track_policy || {});
  state.objects.clear();
  state.frames = 0;
  state.times = [];
  state.rgba = null;
  drawObjects();
}

async function openSource(source) {
  stopSource();
  showError(null);
  state.source = source;
  if (source.stream) el.video.srcObject = source.stream;
  else el.video.src = source.url;
  try {
    await new Promise((resolve, reject) => {
      if (el.video.readyState >= 2) return resolve();
      el.video.addEventListener("loadeddata", resolve, { once: true });
      el.video.addEventListener("error", () => reject(new Error(`cannot play ${source.name} in this browser`)), { once: true });
    });
  } catch (err) {
    state.source = null;
    showError(err.message);
    setStatus("");
    updateButtons();
    return;
  }
  state.width = el.video.videoWidth;
  state.height = el.video.videoHeight;
  for (const c of [el.frame, el.masks]) {
    c.width = state.width;
    c.height = state.height;
  }
  el.stage.classList.remove("empty");
  grab();
  updateButtons();
  setStatus(`${source.name}: ${state.width} x ${state.height}. Click an object to follow it${source.kind === "webcam" ? "" : ", then Play"}.`);
  model().catch((err) => showError(`cannot run the model in this browser: ${err.message}`));
  if (source.kind === "webcam") play();
}

async function openFile(file) {
  await openSource({ kind: "file", name: file.name, url: URL.createObjectURL(file) });
}

async function openWebcam() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("this browser gives the page no camera (getUserMedia needs https or localhost)");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (err) {
    showError(`no camera: ${err.message}`);
    return;
  }
  await openSource({ kind: "webcam", name: "webcam", stream });
}

/** Copy the video's current frame to the canvas on screen; its pixels become state.rgba. */
function grab() {
  const ctx = el.frame.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(el.video, 0, 0, state.width, state.height);
  state.rgba = ctx.getImageData(0, 0, state.width, state.height).data;
}

// ---------------------------------------------------------------- the frame loop

function play() {
  if (!state.source || state.playing) return;
  state.playing = true;
  updateButtons();
  if (el.video.ended) el.video.currentTime = 0;
  // a clip is segmented frame by frame: it pauses at each frame; a slower clock leaves more time
  // to pause before the next frame is due (fewer frames skipped on a busy machine)
  el.video.playbackRate = state.source.kind === "file" ? FILE_RATE : 1;
  el.video.play().catch((err) => showError(`cannot play: ${err.message}`));
  schedule();
}

function pause() {
  state.playing = false;
  el.video.pause();
  updateButtons();
}

function step() {
  if (!state.source || state.playing || state.busy) return;
  state.stepOnce = true;
  el.video.play().catch(() => {});
  schedule();
}

function finish() {
  pause();
  setStatus(`end of ${state.source.name}: ${state.frames} frames segmented`);
}

function schedule() {
  if (state.callback !== null) return;
  state.callback = el.video.requestVideoFrameCallback(onVideoFrame);
}

async function onVideoFrame() {
  state.callback = null;
  const live = state.source && state.source.kind === "webcam";
  if (!state.playing && !state.stepOnce) return;
  if (state.busy) return schedule(); // live: this frame is dropped
  const once = state.stepOnce;
  state.stepOnce = false;
  if (!live || once) el.video.pause(); // a clip waits for its frame to be segmented
  state.busy = true;
  try {
    grab();
    await segmentFrame();
  } catch (err) {
    showError(`in-browser tracking failed: ${err.message}`);
    pause();
  } finally {
    state.busy = false;
  }
  if (state.playing) {
    if (el.video.ended || (!live && el.video.currentTime >= el.video.duration)) return finish();
    if (!live) el.video.play().catch(() => {});
    schedule();
  }
}

/** Every object's windows for this frame through the network as one batch, then the policy. */
async function segmentFrame() {
  const t0 = performance.now();
  state.frames++;
  const size = [state.width, state.height];
  const plan = state.follower.plan(size);
  let networkMs = 0;
  let windows = 0;
  if (plan.length) {
    const m = await model();
    const info = state.info;
    const n = info.input_size || 96;
    const plane = 3 * n * n;
    const wins = plan.flatMap((p) => p.windows);
    windows = wins.length;
    const input = new Float32Array(wins.length * plane);
    wins.forEach(([x0, y0, x1, y1], i) => normalizeInto(input, i * plane, cropImage(state.rgba, state.width, state.height, { x0, y0, x1, y1 }, n, info.pad_rgb, info.reducing_gap), n, info.mean, info.std));
    const out = await m.run(input, wins.length, n);
    networkMs = out.ms;
    const results = state.follower.observeFrame(plan, out.logits, out.iou, n, info.threshold || 0, trackFrame());
    for (const r of results) {
      const o = state.objects.get(r.id);
      if (!o) continue;
      o.mask.fill(0);
      if (r.windowIndex !== null) {
        const [x0, y0, x1, y1] = r.window;
        pasteMaskInto(o.mask, state.width, state.height, out.logits.subarray(r.windowIndex * n * n, (r.windowIndex + 1) * n * n), n, { x0, y0, x1, y1 }, info.threshold || 0);
      }
      o.result = { ...r, frame: state.frames };
    }
  }
  const now = performance.now();
  state.last = { totalMs: now - t0, networkMs, windows };
  state.times.push(now);
  while (state.times.length && state.times[0] < now - FPS_WINDOW_MS) state.times.shift();
  drawObjects();
}

/** This frame for the follower: its pixels (the colour check), its luma and each object's last
 * mask (the image motion); null when the policy needs neither. */
function trackFrame() {
  const f = state.follower;
  if (!f.usesImage && !f.usesAppearance) return null;
  const { width, height } = state;
  return {
    pixels: f.usesAppearance ? state.rgba : null,
    channels: 4,
    luma: f.usesImage ? lumaPlane(state.rgba, width, height, 4) : null,
    width,
    height,
    mask: (id) => (state.objects.has(id) ? state.objects.get(id).mask : null),
  };
}

function fps() {
  const t = state.times;
  if (t.length < 2) return 0;
  return ((t.length - 1) * 1000) / (t[t.length - 1] - t[0]);
}

// ---------------------------------------------------------------- objects

/** A click on the frame on screen: segment there (several window sizes, the best-scored kept,
 * as a photo click) and follow that mask from the next frame on. */
async function addObject(x, y) {
  if (!state.rgba) return;
  const m = await model();
  const info = state.info;
  const n = info.input_size || 96;
  const plane = 3 * n * n;
  const cfg = { ...info, point_scales: (info.browser && info.browser.point_scales) || info.point_scales };
  const wins = candidateWindows({ kind: "point", x, y }, state.width, state.height, cfg);
  const frame = trackFrame(); // the clicked frame: the object's first colours, where its image motion starts from
  const input = new Float32Array(wins.length * plane);
  wins.forEach((w, i) => normalizeInto(input, i * plane, cropImage(state.rgba, state.width, state.height, w, n, info.pad_rgb, info.reducing_gap), n, info.mean, info.std));
  const out = await m.run(input, wins.length, n);
  const offsets = wins.map((_, i) => i * n * n);
  const raw = out.iou ? Array.from(out.iou.subarray(0, wins.length)) : null;
  const scores = clickScores(info.score_calibration, out.logits, offsets, n, wins, state.width, state.height, raw);
  const [best] = chooseCandidate(out.logits, offsets, n, scores);
  const w = wins[best];
  const win = [w.x0, w.y0, w.x1, w.y1];
  const obs = observe(out.logits, offsets[best], n, win, scores ? scores[best] : null, info.threshold || 0);
  const mask = new Uint8Array(state.width * state.height);
  pasteMaskInto(mask, state.width, state.height, out.logits.subarray(offsets[best], offsets[best] + n * n), n, w, info.threshold || 0);
  let id;
  try {
    id = state.follower.start(obs, frame, mask);
  } catch (err) {
    setStatus(err.message);
    return;
  }
  const color = COLORS[(id - 1) % COLORS.length];
  state.objects.set(id, { color, mask, result: { id, window: win, windowIndex: best, score: obs.score, state: "tracking", windows: wins.length, frame: state.frames } });
  drawObjects();
  updateButtons();
  setStatus(`object ${id} at ${x}, ${y}: ${state.playing ? "following" : "Play or Step to follow it"}`);
}

function removeObject(id) {
  state.follower.remove(id);
  state.objects.delete(id);
  drawObjects();
  updateButtons();
}

function clearObjects() {
  state.follower.clear();
  state.objects.clear();
  drawObjects();
  updateButtons();
  setStatus("no object: click one to follow it");
}

function drawObjects() {
  const { width, height } = state;
  const ctx = el.masks.getContext("2d");
  ctx.clearRect(0, 0, el.masks.width, el.masks.height);
  el.objects.replaceChildren();
  if (width && state.objects.size) {
    const img = new ImageData(width, height);
    const px = img.data;
    for (const o of state.objects.values()) {
      const [r, g, b] = o.color;
      const mk = o.mask;
      for (let i = 0; i < mk.length; i++) {
        if (!mk[i]) continue;
        px[4 * i] = r;
        px[4 * i + 1] = g;
        px[4 * i + 2] = b;
        px[4 * i + 3] = 130;
      }
    }
    ctx.putImageData(img, 0, 0);
    ctx.lineWidth = Math.max(2, width / 320);
    for (const o of state.objects.values()) {
      if (!o.result) continue;
      const [x0, y0, x1, y1] = o.result.window;
      ctx.setLineDash(o.result.state === "lost" ? [6, 6] : []);
      ctx.strokeStyle = `rgb(${o.color.join(",")})`;
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    }
    ctx.setLineDash([]);
  }
  for (const [id, o] of state.objects) {
    const li = document.createElement("li");
    li.dataset.id = String(id);
    const r = o.result || {};
    li.className = r.state === "lost" ? "lost" : "";
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = `rgb(${o.color.join(",")})`;
    const text = document.createElement("span");
    const side = r.window ? r.window[2] - r.window[0] : 0;
    text.textContent = `object ${id}: ${r.state || "?"} · score ${(r.score || 0).toFixed(2)} · window ${side} px`;
    const rm = document.createElement("button");
    rm.type = "button";
    rm.textContent = "×";
    rm.title = `stop following object ${id}`;
    rm.setAttribute("aria-label", `stop following object ${id}`);
    rm.addEventListener("click", () => removeObject(id));
    li.append(sw, text, rm);
    el.objects.append(li);
  }
  const last = state.last;
  el.fps.textContent = state.frames
    ? `frame ${state.frames} · ${fps().toFixed(1)} frames/s` + (last ? ` · ${last.totalMs.toFixed(0)} ms (network ${last.networkMs.toFixed(0)} ms, ${last.windows} window${last.windows === 1 ? "" : "s"})` : "")
    : "";
}

function toFrame(ev) {
  const rect = el.frame.getBoundingClientRect();
  const x = Math.min(state.width - 1, Math.max(0, Math.floor(((ev.clientX - rect.left) * state.width) / rect.width)));
  const y = Math.min(state.height - 1, Math.max(0, Math.floor(((ev.clientY - rect.top) * state.height) / rect.height)));
  return { x, y };
}

// ---------------------------------------------------------------- start

async function start() {
  el.tabPhoto.addEventListener("click", () => setMode(false));
  el.tabVideo.addEventListener("click", () => setMode(true));
  try {
    state.info = await fetch("/api/info").then((r) => r.json());
  } catch (err) {
    return;
  }
  state.follower = new Follower(state.info.track_policy || {});
  if (!state.info.browser || !state.info.browser.available) {
    for (const b of [el.uploadButton, el.webcam]) b.disabled = true;
    setStatus("The video mode runs the model in this page and needs onnxruntime-web (run scripts/vendor_onnxruntime_web.sh).");
  }
  el.uploadButton.addEventListener("click", () => el.upload.click());
  el.upload.addEventListener("change", () => {
    const f = el.upload.files[0];
    if (f) openFile(f);
    el.upload.value = "";
  });
  el.webcam.addEventListener("click", openWebcam);
  el.video.addEventListener("ended", () => {
    // the last frame may be presented before the end: no frame callback comes after it
    if (state.playing && !state.busy) finish();
  });
  el.play.addEventListener("click", () => (state.playing ? pause() : play()));
  el.step.addEventListener("click", step);
  el.clear.addEventListener("click", clearObjects);
  el.stage.addEventListener("pointerup", (ev) => {
    if (!state.source || ev.button !== 0) return;
    const { x, y } = toFrame(ev);
    addObject(x, y).catch((err) => showError(`in-browser segmentation failed: ${err.message}`));
  });
  el.stage.addEventListener("keydown", (ev) => {
    if (ev.key === " ") {
      ev.preventDefault();
      if (state.source) state.playing ? pause() : play();
    } else if (ev.key === ".") step();
    else if (ev.key === "Escape") clearObjects();
  });
  updateButtons();
  hooks.ready = true;
}

start();
