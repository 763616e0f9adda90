// What the page's modules share: the element lookup, the page's state, the live camera, and the
// engines as GET /api/engines describes them.

import { LiveMode } from "./live.js";

export const $ = (id) => document.getElementById(id);

export const state = {
  styles: new Map(), // id → style (shipped, and this browser's own)
  personal: [], // this browser's own styles, as GET /api/styles lists them
  refine: null, // the refinement being followed
  refineSource: null, // what "Make it a style" trains from, for the result shown (see refineSource)
  endRefine: null, // ends the training card with a final status (see onRefine)
  engines: [], // GET /api/engines: the engines this server runs, default first
  job: null, // the job being followed: {id, token, statusUrl, eventsUrl, resultUrl}
  stopFollowing: null,
  endJob: null, // ends the followed job's card with a final status (see showProgress)
  photoUrl: null, // object URL of the chosen photo: the "before" image
  video: false, // the chosen file is a video (its type says so; the server checks its bytes)
};

export const live = new LiveMode({
  video: $("live-video"),
  canvas: $("live-canvas"),
  fps: $("fps"),
  backend: $("live-backend"),
  status: $("live-status"),
  error: $("live-error"),
  start: $("live-start"),
  stop: $("live-stop"),
  style: $("live-style"),
  painting: $("live-painting"),
  paintingNote: $("live-painting-note"),
  size: $("live-size"),
});

export function engineNamed(name) {
  return state.engines.find((engine) => engine.name === name);
}

// The selected engine's name; none before the engines are in (the server's default then).
export function currentMethod() {
  return document.querySelector('input[name="method"]:checked')?.value;
}

// Whether the live camera takes any painting: the server runs a feed-forward engine for
// paintings, which writes a network for each (POST /api/live/model.onnx).
export function livePaintings() {
  return state.engines.some((e) => e.styles === "painting" && e.capabilities?.feed_forward);
}

const END_TEXTS = { cancelled: "Cancelled", failed: "Failed", expired: "Expired", succeeded: "Done." };

export function endText(status) {
  return END_TEXTS[status.status] || status.status;
}

// A rounded duration, as the server words its estimates: "4 s", "40 s", "3 min", "1 h 10 min".
export function roughly(seconds) {
  if (seconds < 1) return "1 s";
  if (seconds < 10) return `${Math.round(seconds)} s`;
  if (seconds < 90) return `${Math.round(seconds / 10) * 10} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `${minutes} min`;
  return minutes % 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes / 60} h`;
}

function ordinal(n) {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th";
  return `${n}${suffix}`;
}

// A queued job's place in its lane and when it is expected to be done: "2nd in line, about 40 s".
// The server sends a new status event when the place or the estimate changes.
export function queueText(status) {
  const queue = status.queue;
  if (!queue) return "Waiting in the queue…";
  const place = `${ordinal(queue.position)} in line`;
  const finish = queue.expected_finish_s;
  if (typeof finish !== "number") return `${place}, waiting for a worker…`;
  return `${place}, about ${roughly(finish)}`;
}
