// The form's steps: the photo or video (file picker, drag and drop, paste), the style (a
// gallery one or the user's own painting), the engine and its options, the file format.

import { photoSize, scheduleEstimate } from "./estimate.js";
import { clearSelection } from "./gallery.js";
import { OptionControls } from "./options.js";
import { $, currentMethod, engineNamed, state } from "./page.js";

const IMAGE_FORMATS = [
  ["png", "PNG"],
  ["jpeg", "JPEG"],
  ["webp", "WebP"],
];
const VIDEO_FORMATS = { mp4: "MP4 (H.264)", webm: "WebM (VP9)" };

// The video container this browser plays: H.264 in MP4 where it can (open-source Chromium
// builds may lack H.264), else VP9 in WebM.
function playableVideoFormat() {
  const probe = document.createElement("video");
  return probe.canPlayType('video/mp4; codecs="avc1.42E01E"') ? "mp4" : "webm";
}

function isVideoFile(file) {
  return Boolean(file) && file.type.startsWith("video/");
}

function setFile(input, file) {
  // One source of truth: dropped and pasted files go into the file input, as if picked.
  const transfer = new DataTransfer();
  transfer.items.add(file);
  input.files = transfer.files;
  input.dispatchEvent(new Event("change", { bubbles: true }));
}

export function setupPhoto() {
  const input = $("content-input");
  const zone = $("content-drop");
  const preview = $("content-preview");
  const clip = $("content-video");
  input.addEventListener("change", () => {
    const file = input.files[0];
    if (state.photoUrl) URL.revokeObjectURL(state.photoUrl);
    state.photoUrl = file ? URL.createObjectURL(file) : null;
    state.video = isVideoFile(file);
    preview.hidden = !file || state.video;
    clip.hidden = !state.video;
    if (file && state.video) {
      clip.src = state.photoUrl;
      preview.removeAttribute("src");
    } else {
      clip.removeAttribute("src");
      if (file) preview.src = state.photoUrl;
    }
    $("content-hint").firstChild.textContent = file
      ? `${file.name}. To change it, drop or paste another, or `
      : "Drop a photo or a short video here, paste one, or ";
    updateEngines();
  });
  clip.addEventListener("error", () => {
    clip.hidden = true; // a clip this browser cannot play may still be one the server reads
  });
  // A file the browser cannot show may still be one the server reads (or it explains why not).
  preview.addEventListener("error", () => {
    preview.hidden = true;
    refreshEstimate();
  });
  preview.addEventListener("load", refreshEstimate); // the photo's size is known now
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const file = event.dataTransfer.files[0];
    if (file) setFile(input, file);
  });
  document.addEventListener("paste", (event) => {
    if ($("panel-photo").hidden) return;
    const file = [...(event.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
    if (file) {
      event.preventDefault();
      setFile(input, file);
    }
  });
}

// The style: a shipped one from the gallery, or the user's own painting.
export function setupStyle() {
  const input = $("style-input");
  const preview = $("style-preview");
  const clear = $("style-clear");
  input.addEventListener("change", () => {
    const file = input.files[0];
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.hidden = clear.hidden = !file;
    if (file) {
      preview.src = URL.createObjectURL(file);
      clearSelection($("gallery"));
    }
    updateEngines();
  });
  clear.addEventListener("click", () => {
    input.value = "";
    input.dispatchEvent(new Event("change"));
    $("gallery").querySelector('input[name="style"]')?.click();
  });
}

export function onGalleryChange() {
  const input = $("style-input");
  if (input.files.length) {
    input.value = "";
    input.dispatchEvent(new Event("change"));
  }
}

// Engines (from /api/engines): one that runs trained styles only is off while the user's own
// painting is chosen. The Options step shows the selected engine's options.
export const options = OptionControls.fromPage($);

// A video goes only to the engines that take videos (their `video_options` is not null).
export function updateEngines() {
  const painting = $("style-input").files.length > 0;
  const radios = [...document.querySelectorAll('input[name="method"]')];
  for (const radio of radios) {
    const engine = engineNamed(radio.value);
    radio.disabled =
      (painting && engine?.styles === "trained") || (state.video && !engine?.video_options);
  }
  const checked = radios.find((r) => r.checked);
  if (!checked || checked.disabled) {
    const fallback = radios.find((r) => !r.disabled);
    if (fallback) fallback.checked = true;
  }
  const engine = engineNamed(currentMethod());
  options.show(engine, { video: state.video });
  updateFormats(engine);
  refreshEstimate();
}

// The expected time beside the Stylize button, for the engine, options and photo as they are
// now (asked once they have stayed so for a moment).
export function refreshEstimate() {
  const engine = engineNamed(currentMethod());
  scheduleEstimate($("estimate"), engine, options.values(), photoSize($("content-preview")));
}

// The File format choices: the image formats, or for a video the containers the engine offers
// with the one this browser plays chosen. The user's image choice is kept across videos.
let imageFormat = "png";
function updateFormats(engine) {
  const select = $("format");
  const showsVideo = select.dataset.kind === "video";
  if (!showsVideo) imageFormat = select.value || imageFormat;
  if (state.video) {
    const offered = engine?.video_formats?.length ? engine.video_formats : ["mp4", "webm"];
    const kept = showsVideo ? select.value : null;
    select.replaceChildren(
      ...offered.map((format) => new Option(VIDEO_FORMATS[format] || format, format)),
    );
    const preferred = playableVideoFormat();
    select.value = offered.includes(kept) ? kept : offered.includes(preferred) ? preferred : offered[0];
    select.dataset.kind = "video";
  } else if (showsVideo || !select.options.length) {
    select.replaceChildren(...IMAGE_FORMATS.map(([value, label]) => new Option(label, value)));
    select.value = imageFormat;
    select.dataset.kind = "image";
  }
  const limits = engine?.limits || {};
  const note = $("video-limits");
  note.hidden = !state.video || !("max_video_seconds" in limits);
  if (!note.hidden) {
    note.textContent =
      `Videos: up to ${limits.max_video_seconds} s and ${limits.max_video_frames} frames, ` +
      `${Math.round(limits.max_video_bytes / 1e6)} MB; frames are stylized at most ` +
      `${limits.max_video_size} px on the long side. The sound is kept.`;
  }
}
