// The expected time of a job beside the Stylize button, for an engine that optimises over steps
// (`capabilities.steps`: tens of seconds or more on a CPU, so worth knowing before starting): POST
// /api/estimate with the options as the form would send them and the chosen photo's size in
// pixels (512 × 512 before one is chosen), asked a moment after the last change. The line is a
// hint: any failure hides it, with no error shown.

import { apiJson } from "./api.js";

const DEFAULT_PHOTO = { width: 512, height: 512 }; // what the server assumes too
const DELAY_MS = 300;

let timer = null;
let asked = 0; // the newest request's number: an older answer that arrives later is dropped
let shownFor = null; // the request whose answer the line shows

// The chosen photo's size: the preview's natural size (the photo as decoded, turned by its
// EXIF orientation, as the server turns it), or the default before it has loaded.
export function photoSize(preview) {
  if (preview.hidden || !preview.complete || !preview.naturalWidth) return DEFAULT_PHOTO;
  return { width: preview.naturalWidth, height: preview.naturalHeight };
}

function hide(line) {
  line.hidden = true;
  line.textContent = "";
  shownFor = null;
}

// `engine`: an item of GET /api/engines (or none); `values`: {option: text}, as the form
// sends them; `photo`: {width, height}.
export function scheduleEstimate(line, engine, values, photo) {
  clearTimeout(timer);
  if (!engine?.capabilities?.steps) {
    asked += 1; // an answer still on its way is for an engine no longer chosen
    hide(line);
    return;
  }
  const body = JSON.stringify({
    method: engine.name,
    width: photo.width,
    height: photo.height,
    options: values,
  });
  if (body === shownFor) {
    asked += 1; // back to what the line shows: an answer for a change since is dropped
    return;
  }
  timer = setTimeout(() => ask(line, body), DELAY_MS);
}

async function ask(line, body) {
  asked += 1;
  const number = asked;
  let answer = null;
  try {
    answer = await apiJson("/api/estimate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
    });
  } catch {
    answer = null; // an option out of range, the server away: no estimate, and no error
  }
  if (number !== asked) return;
  if (typeof answer?.seconds !== "number" || !answer.text) {
    hide(line);
    return;
  }
  line.textContent = `Expected time: ${answer.text} on this server's ${answer.device}`;
  line.dataset.seconds = String(answer.seconds);
  line.hidden = false;
  shownFor = body;
}
