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
