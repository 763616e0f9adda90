// Live mode: camera frames stylized in the browser by onnxruntime-web, with the style's small
// ("lite") network from GET /api/styles/{id}/model.onnx, or, for any painting, the network the
// server's arbitrary engine makes for it (POST /api/live/model.onnx: MicroAST with the
// painting's style signals folded into its weights). No server work per frame.
//
// Frames are processed one at a time (no queue builds up when the network is slower than the
// camera) at a small size (FRAME_SIZES).

import { apiFetch, showError } from "./api.js";
import { isPersonal, ownerHeaders } from "./refine.js";
import { createSession, loadOrt } from "./ortsession.js";
import { GuidedUpscaler } from "./upscale.js";

// The frame sizes the page offers (its #live-size list is made from this list): the network's
// input (multiples of 4, as its two stride-2 layers need) and how many times larger the frame
// shown is. A factor over 1 runs the network on the smaller frame and upscales its output
// guided by the camera's luminance at the shown size (upscale.js). The default, 160 × 120 shown
// at 320 × 240, ran at 21-24 fps in WASM on 2 cores, against 13 for 240 × 180 (docs/web.md).
export const FRAME_SIZES = [
  { id: "256x192-from-128x96", network: [128, 96], factor: 2, note: "fastest" },
  { id: "160x120", network: [160, 120], factor: 1, note: "" },
  { id: "320x240-from-160x120", network: [160, 120], factor: 2, note: "" },
  { id: "240x180", network: [240, 180], factor: 1, note: "" },
  { id: "320x240", network: [320, 240], factor: 1, note: "sharpest" },
];
export const DEFAULT_FRAME_SIZE = "320x240-from-160x120";

function sizeLabel({ network: [width, height], factor, note }) {
  const shown = `${width * factor} × ${height * factor}`;
  const upscaled = factor > 1 ? `, upscaled from ${width} × ${height}` : "";
  return `${shown}${upscaled}${note ? ` (${note})` : ""}`;
}

function cameraError(err) {
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    return "The camera needs a secure page: open this site over HTTPS or on localhost.";
  }
  if (err.name === "NotAllowedError") {
    return "Camera access was refused. Allow the camera in the browser's site settings.";
  }
  if (err.name === "NotFoundError" || err.name === "OverconstrainedError") {
    return "No camera was found on this device.";
  }
  if (err.name === "NotReadableError") return "The camera is in use by another application.";
  return `The camera could not start (${err.message}).`;
}

function release(stream) {
  for (const track of stream.getTracks()) track.stop(); // the camera's light goes off
}

export class LiveMode {
  constructor(el) {
    this.el = el; // {video, canvas, fps, backend, status, error, start, stop, style, painting, size}
    this.sessions = new Map(); // model key → {session, backend, ort}
    this.current = null; // the network frames go through; none: frames wait
    this.inFlight = null; // the frame being computed, if any
    this.titles = new Map(); // style id → title, for messages about a style that left the list
    this.running = false;
    this.starting = false; // a start is waiting for the camera or the network
    // Each start and each stop moves it on. A start (or a frame loop) that finds it moved when
    // it resumes after an await was stopped meanwhile (the tab left, Stop pressed): it gives up
    // what it got and leaves the page as the stop did, so a stop while starting wins.
    this.generation = 0;
    // Each network asked for moves `choice` on; a download no longer the latest choice is
    // aborted (`download`: its AbortController), so a slow one cannot replace a later choice.
    this.choice = 0;
    this.download = null;
    this.stream = null;
    this.frames = 0;
    this.input = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
    this.shape = null; // the frame size the buffers below are made for
    el.size.replaceChildren(...FRAME_SIZES.map((size) => new Option(sizeLabel(size), size.id)));
    el.size.value = DEFAULT_FRAME_SIZE;
    el.start.addEventListener("click", () => this.start());
    el.stop.addEventListener("click", () => this.stop());
    el.style.addEventListener("change", () => {
      el.painting.value = ""; // a shipped style replaces the painting
      if (this.running) this.useStyle(el.style.value);
    });
    el.painting.addEventListener("change", () => {
      const file = el.painting.files[0];
      if (file) this.usePainting(file);
    });
  }

  // The shipped styles, then this browser's own (`personal`), the choice kept. A style that
  // is no longer listed (a personal style deleted, here or in another tab) has no network on
  // the server any more: its loaded one is dropped too (see `dropStyle`). `paintings`: whether
  // the server writes a network for any painting (else the painting picker says what it needs).
  setStyles(styles, paintings, personal = []) {
    const chosen = this.el.style.value;
    this.el.style.replaceChildren(
      ...styles.map((style) => new Option(`${style.title} (${style.artist})`, style.id)),
      ...personal.map((style) => new Option(`${style.title} (yours)`, style.id)),
    );
    const listed = new Set([...this.el.style.options].map((o) => o.value));
    if (chosen && listed.has(chosen)) this.el.style.value = chosen;
    this.el.paintingNote.textContent = paintings ? "" : "(needs the arbitrary engine on the server)";
    for (const key of [...this.sessions.keys()]) {
      const styleId = key.startsWith("style:") ? key.slice("style:".length) : null;
      if (styleId !== null && !listed.has(styleId)) this.dropStyle(key, this.titles.get(styleId));
    }
    for (const style of [...styles, ...personal]) this.titles.set(style.id, style.title);
  }

  // Forgets a style's network. If the camera is painting with it, the camera moves on at once
  // to the list's first style, saying so; where there is none, or it cannot be loaded, the
  // camera stops, saying why. Frames wait (the last one stays) while the next network loads.
  async dropStyle(key, title) {
    const entry = this.sessions.get(key);
    this.sessions.delete(key);
    const wasCurrent = entry === this.current;
    if (wasCurrent) this.current = null;
    // A frame already running through it finishes before its memory is freed.
    Promise.resolve(this.inFlight)
      .catch(() => {})
      .then(() => entry.session.release())
      .catch((err) => console.warn("could not release a network", err));
    if (!wasCurrent || !this.running) return;
    const gone = `your style “${title || "?"}” was deleted`;
    const next = this.el.style.options[0];
    if (!next) {
      this.stop();
      showError(this.el.error, `The camera stopped: ${gone}, and there is no other style.`);
      return;
    }
    this.el.style.value = next.value;
    const stopped = this.stoppedSince();
    const loaded = await this.useStyle(next.value, stopped);
    if (stopped()) return;
    if (loaded && this.el.style.value === next.value) {
      this.status(`Running with ${next.text}: ${gone}.`);
    } else if (!this.current) {
      this.stop(); // useModel shows why the next style could not load
      this.status(`The camera stopped: ${gone}.`);
    }
  }

  // A test that turns true at the next start or stop: what an await resumes into after that is
  // no longer wanted.
  stoppedSince() {
    const generation = this.generation;
    return () => this.generation !== generation;
  }

  status(text) {
    this.el.status.textContent = text;
  }

  async start() {
    showError(this.el.error, null);
    // One start at a time: a second would race it for the camera.
    if (this.running || this.starting) return;
    this.generation += 1;
    const stopped = this.stoppedSince();
    this.starting = true;
    // Stop is offered at once: the camera's permission prompt, or the server writing a network
    // for a painting, can take a while.
    this.el.start.hidden = true;
    this.el.stop.hidden = false;
    let stream = null;
    try {
      this.status("Starting the camera…");
      try {
        // Missing outside a secure context (plain http to another machine): cameraError says so.
        if (!navigator.mediaDevices?.getUserMedia) throw new Error("no camera API");
        stream = await navigator.mediaDevices.getUserMedia({
          video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: "user" },
          audio: false,
        });
      } catch (err) {
        throw new Error(cameraError(err));
      }
      if (stopped()) return;
      this.stream = stream;
      this.el.video.srcObject = stream;
      await this.el.video.play(); // rejects if a stop takes the stream away meanwhile
      if (stopped()) return;
      const painting = this.el.painting.files[0];
      const loaded = painting
        ? await this.usePainting(painting, stopped)
        : await this.useStyle(this.el.style.value, stopped);
      if (stopped()) return;
      if (!loaded) {
        this.stop(); // useModel has shown why
        return;
      }
      this.starting = false;
      this.running = true;
      this.loop(stopped);
    } catch (err) {
      if (stopped()) return; // what failed is no longer wanted: no message
      this.stop();
      showError(this.el.error, err);
    } finally {
      // stop() released the stream if this start had handed it over; not one that came after.
      if (stopped() && stream) release(stream);
    }
  }

  stop() {
    this.generation += 1; // a start still waiting gives up when it resumes, a loop ends
    this.running = false;
    this.starting = false;
    if (this.stream) release(this.stream);
    this.stream = null;
    this.el.video.srcObject = null;
    this.el.fps.textContent = "–";
    this.el.stop.hidden = true;
    this.el.start.hidden = false;
    this.status("");
  }

  async useStyle(styleId, stopped = () => false) {
    return this.useModel(`style:${styleId}`, stopped, async (signal) => {
      const url = `/api/styles/${encodeURIComponent(styleId)}/model.onnx`;
      // A personal style's network needs its owner's token.
      const headers = isPersonal(styleId) ? ownerHeaders() : {};
      return (await apiFetch(url, { headers, signal })).arrayBuffer();
    });
  }

  async usePainting(file, stopped = () => false) {
    const key = `painting:${file.name}:${file.size}:${file.lastModified}`;
    return this.useModel(key, stopped, async (signal) => {
      const body = new FormData();
      body.append("style_image", file);
      if (!stopped()) this.status("The server is writing a network for your painting…");
      const options = { method: "POST", body, signal };
      return (await apiFetch("/api/live/model.onnx", options)).arrayBuffer();
    });
  }

  // Loads (or reuses) a network and says whether it could; on failure the error is shown and
  // the previous network (if any) keeps running. `stopped()` true: the camera was stopped while
  // it loaded, so nothing is said or changed (a network that came is kept for the next start).
  // A later choice (another style or painting picked meanwhile) aborts this one's download and
  // takes over: this one then changes nothing and says nothing, and answers true, since the
  // camera has a network coming.
  async useModel(key, stopped, download) {
    showError(this.el.error, null);
    this.choice += 1;
    const choice = this.choice;
    this.download?.abort();
    const controller = new AbortController();
    this.download = controller;
    const superseded = () => this.choice !== choice;
    const say = (text) => {
      if (!stopped() && !superseded()) this.status(text);
    };
    try {
      let entry = this.sessions.get(key);
      if (!entry) {
        const ort = await loadOrt();
        say("Downloading the network…");
        const bytes = new Uint8Array(await download(controller.signal));
        say(`Preparing the network (${(bytes.length / 1e6).toFixed(1)} MB)…`);
        entry = await createSession(ort, bytes);
        entry.ort = ort;
        // The same network loaded twice at once (a start stopped, then a new one): one is kept.
        const loadedMeanwhile = this.sessions.get(key);
        if (loadedMeanwhile) {
          entry.session.release().catch((err) => console.warn("could not release a network", err));
          entry = loadedMeanwhile;
        } else {
          this.sessions.set(key, entry);
        }
      }
      if (stopped()) return false;
      if (superseded()) return true;
      this.current = entry;
      this.el.backend.textContent = entry.backend;
      this.status(this.running || this.stream ? "Running" : "");
      return true;
    } catch (err) {
      if (stopped()) return false;
      if (superseded()) return true; // aborted for a later choice: that one reports
      showError(this.el.error, err);
      this.status("");
      return false;
    } finally {
      if (this.download === controller) this.download = null;
    }
  }

  async loop(stopped) {
    const times = [];
    let shown = 0;
    while (!stopped()) {
      const video = this.el.video;
      if (this.current && video.readyState >= 2 && video.videoWidth > 0) {
        try {
          this.inFlight = this.frame(video);
          await this.inFlight;
        } catch (err) {
          if (stopped()) return;
          showError(this.el.error, `The network failed on a frame: ${err.message}`);
          this.stop();
          return;
        }
        // Stopped during the frame: its count and rate would overwrite what stop() showed.
        if (stopped()) return;
        this.frames += 1;
        this.el.canvas.dataset.frames = String(this.frames);
        const now = performance.now();
        times.push(now);
        while (times.length > 2 && now - times[0] > 2000) times.shift(); // the last 2 s
        if (times.length >= 2 && now - shown > 500) {
          const fps = ((times.length - 1) * 1000) / (now - times[0]);
          this.el.fps.textContent = fps.toFixed(1);
          shown = now;
        }
      }
      // Let the page paint (and the camera deliver) before the next frame.
      await new Promise((resolve) => requestAnimationFrame(resolve));
    }
  }

  async frame(video) {
    const size = FRAME_SIZES.find((s) => s.id === this.el.size.value) ?? FRAME_SIZES[0];
    const [width, height] = size.network;
    const { factor } = size;
    const [shownWidth, shownHeight] = [width * factor, height * factor];
    const { ort, session } = this.current;
    if (this.shape !== size.id) {
      this.shape = size.id;
      this.input.canvas.width = shownWidth;
      this.input.canvas.height = shownHeight;
      this.el.canvas.width = shownWidth;
      this.el.canvas.height = shownHeight;
      this.tensorData = new Float32Array(3 * width * height);
      this.tensor = new ort.Tensor("float32", this.tensorData, [1, 3, height, width]);
      this.output = new ImageData(shownWidth, shownHeight);
      this.upscaler = factor > 1 ? new GuidedUpscaler(width, height, factor) : null;
    }
    // Crop the camera's frame to the network's aspect ratio (centre), then scale it down to the
    // size shown.
    const scale = Math.max(shownWidth / video.videoWidth, shownHeight / video.videoHeight);
    const sw = shownWidth / scale;
    const sh = shownHeight / scale;
    const sx = (video.videoWidth - sw) / 2;
    const sy = (video.videoHeight - sh) / 2;
    this.input.drawImage(video, sx, sy, sw, sh, 0, 0, shownWidth, shownHeight);
    const pixels = this.input.getImageData(0, 0, shownWidth, shownHeight).data;
    const plane = width * height;
    const x = this.tensorData;
    if (this.upscaler) {
      this.upscaler.prepare(pixels, x);
    } else {
      for (let i = 0, p = 0; i < plane; i += 1, p += 4) {
        x[i] = pixels[p] / 255; // RGBA bytes → planar RGB floats in [0, 1]
        x[i + plane] = pixels[p + 1] / 255;
        x[i + 2 * plane] = pixels[p + 2] / 255;
      }
    }
    const results = await session.run({ [session.inputNames[0]]: this.tensor });
    const y = results[session.outputNames[0]].data;
    const out = this.output.data;
    if (this.upscaler) {
      this.upscaler.upscale(y, out);
    } else {
      // The network's output is not clamped; a Uint8ClampedArray clamps (and rounds) each store.
      for (let i = 0, p = 0; i < plane; i += 1, p += 4) {
        out[p] = y[i] * 255;
        out[p + 1] = y[i + plane] * 255;
        out[p + 2] = y[i + 2 * plane] * 255;
        out[p + 3] = 255;
      }
    }
    this.el.canvas.getContext("2d").putImageData(this.output, 0, 0);
  }
}
