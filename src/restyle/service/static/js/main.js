// The page's wiring: the photo (or video) form, the job's progress and result, the history, the
// tabs.

import { ApiError, apiJson, showError } from "./api.js";
import { setupCompare } from "./compare.js";
import {
  clearSelection,
  loadStyles,
  renderGallery,
  renderPersonal,
  selectedIn,
} from "./gallery.js";
import { addEntry, clearHistory, loadHistory, renderHistory, updateEntry } from "./history.js";
import { loadEngines, paintingNote, renderEngines } from "./engines.js";
import { cancelJob, endError, followJob, submitJob } from "./job.js";
import { LiveMode } from "./live.js";
import { OptionControls } from "./options.js";
import {
  artefactNote,
  deleteStyle,
  isPersonal,
  keepStyle,
  renameStyle,
  ownerHeaders,
  refineStatusText,
  renderBudgets,
  startRefine,
} from "./refine.js";

const $ = (id) => document.getElementById(id);

const state = {
  styles: new Map(), // id → style (shipped, and this browser's own)
  personal: [], // this browser's own styles, as GET /api/styles lists them
  methods: [], // the methods this server runs
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

const live = new LiveMode({
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

// Tabs (WAI-ARIA tabs pattern: arrow keys move between tabs) ----------------------------------
function selectTab(tab) {
  for (const other of document.querySelectorAll('[role="tab"]')) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    $(other.getAttribute("aria-controls")).hidden = !selected;
  }
  if (tab.id !== "tab-live") live.stop(); // release the camera when it is not shown
  window.history.replaceState(null, "", tab.id === "tab-live" ? "#live" : "#");
}

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length];
      next.focus();
      selectTab(next);
    });
  }
  if (window.location.hash === "#live") selectTab($("tab-live"));
}

// The photo: file picker, drag and drop, paste -------------------------------------------------
function setFile(input, file) {
  // One source of truth: dropped and pasted files go into the file input, as if picked.
  const transfer = new DataTransfer();
  transfer.items.add(file);
  input.files = transfer.files;
  input.dispatchEvent(new Event("change", { bubbles: true }));
}

function setupPhoto() {
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
  });
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

// The style: a shipped one from the gallery, or the user's own painting -----------------------
function setupStyle() {
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

function onGalleryChange() {
  const input = $("style-input");
  if (input.files.length) {
    input.value = "";
    input.dispatchEvent(new Event("change"));
  }
}

// Engines (from /api/engines): one that runs trained styles only is off while the user's own
// painting is chosen. The Options step shows the selected engine's options.
const options = OptionControls.fromPage($);

// A video goes only to the engines that take videos (their `video_options` is not null).
function updateEngines() {
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

function engineNamed(name) {
  return state.engines.find((engine) => engine.name === name);
}

// The selected engine's name; none before the engines are in (the server's default then).
function currentMethod() {
  return document.querySelector('input[name="method"]:checked')?.value;
}

// A job: submit, follow, show the result -------------------------------------------------------
function setBusy(busy) {
  $("run").disabled = busy;
  $("run").textContent = busy ? "Working…" : "Stylize";
  $("cancel").hidden = !busy;
}

function styleName(fields) {
  if (fields.style_image) return "your painting";
  return state.styles.get(fields.style)?.title || fields.style;
}

// A job's status line. The server's message ("step 12/40") is shown only while the job runs:
// a finished job's message may be the last progress report, written after it was cancelled.
function statusText(status) {
  const percent = Math.round((status.progress || 0) * 100);
  if (status.status === "queued") return "Waiting in the queue…";
  if (status.status === "running") {
    return `Running: ${status.message || "started"} (${percent}%)`;
  }
  return endText(status);
}

const END_TEXTS = { cancelled: "Cancelled", failed: "Failed", expired: "Expired", succeeded: "Done." };

function endText(status) {
  return END_TEXTS[status.status] || status.status;
}

async function onSubmit(event) {
  event.preventDefault();
  const error = $("error");
  showError(error, null);
  const content = $("content-input").files[0];
  const painting = $("style-input").files[0];
  const style = painting ? null : selectedIn([$("gallery"), $("personal-gallery")]);
  if (!content) {
    showError(error, "Choose a photo or a video first: drop it here, paste it, or pick a file.");
    return;
  }
  if (!painting && !style) {
    showError(error, "Choose a style in the gallery, or upload your own painting.");
    return;
  }
  const method = currentMethod();
  const fields = {
    content,
    method,
    format: $("format").value,
    ...(painting ? { style_image: painting } : { style }),
    ...options.values(), // the selected engine's options that have a value
  };
  if (state.stopFollowing) state.stopFollowing();
  setBusy(true);
  let job;
  try {
    job = await submitJob(fields, isPersonal(style) ? ownerHeaders() : {});
  } catch (err) {
    setBusy(false);
    showError(error, err);
    return;
  }
  state.job = job;
  const name = styleName(fields);
  addEntry({
    id: job.id,
    token: job.token,
    style: name,
    method,
    kind: job.kind,
    time: Date.now(),
    resultUrl: job.resultUrl,
    status: job.status,
  });
  renderHistory($("history"), $("history-empty"), $("history-clear"));
  showProgress(job, fields, name);
}

function showProgress(job, fields, name) {
  const progress = $("progress");
  progress.value = 0;
  $("job-status").textContent = statusText(job);
  const engine = engineNamed(fields.method)?.title || fields.method;
  $("job-title").textContent = `Progress: ${name}, ${engine}`;
  $("preview-figure").hidden = true;
  const video = job.kind === "video";
  $("preview").alt = video ? "The latest stylized frame" : "The painting so far (Gatys preview)";
  $("preview-caption").textContent = video
    ? "The latest stylized frame."
    : "The picture so far: it sharpens as the optimisation runs.";
  $("job").hidden = false;
  $("result").hidden = true;
  const photoUrl = state.photoUrl;
  let lastStatus = job.status;
  let ended = false;
  // The job's end, once: from its event stream, or from the answer to Cancel (a finished job's
  // status then says so at once, whatever progress events were still on their way).
  const end = (status) => {
    if (ended) return;
    ended = true;
    stop();
    state.stopFollowing = null;
    state.endJob = null;
    setBusy(false);
    updateEntry(job.id, { status: status.status });
    renderHistory($("history"), $("history-empty"), $("history-clear"));
    if (status.status !== "succeeded") {
      $("job-status").textContent = endText(status);
      showError($("error"), endError(status));
      return;
    }
    progress.value = 1;
    const seconds = status.finished_at - (status.started_at || status.created_at);
    $("job-status").textContent = Number.isFinite(seconds)
      ? `Done in ${seconds.toFixed(1)} s on the server.`
      : "Done.";
    showResult(job, fields, name, photoUrl, status);
  };
  const stop = followJob(job, {
    onStatus(status) {
      if (ended) return;
      progress.value = status.progress || 0;
      $("job-status").textContent = statusText(status);
      if (status.status !== lastStatus) {
        lastStatus = status.status;
        updateEntry(job.id, { status: status.status });
        renderHistory($("history"), $("history-empty"), $("history-clear"));
      }
    },
    onPreview(image) {
      if (ended) return;
      $("preview").src = image;
      $("preview-figure").hidden = false;
    },
    onEnd: end,
  });
  state.stopFollowing = stop;
  state.endJob = end;
}

function showResult(job, fields, name, photoUrl, status) {
  const video = status.kind === "video";
  const player = $("result-video");
  player.hidden = !video;
  $("compare").hidden = $("compare-legend").hidden = video;
  if (video) {
    player.src = job.resultUrl; // served with byte ranges: the player can seek
    $("result-image").removeAttribute("src");
  } else {
    player.removeAttribute("src");
    player.load(); // stop fetching a previous video
    $("result-image").src = job.resultUrl;
    $("result-before").src = photoUrl;
  }
  const download = $("download");
  download.href = job.resultUrl;
  const extension = fields.format === "jpeg" ? "jpg" : fields.format;
  download.download = `restyle-${name.replace(/[^A-Za-z0-9]+/g, "-").toLowerCase()}.${extension}`;
  // A picture from the arbitrary engine: its painting (uploaded, or a gallery one) may become a
  // style of its own. Not offered under a video's result.
  state.refineSource = fields.method === "arbitrary" && !video ? refineSource(fields) : null;
  $("refine-offer").hidden = !state.refineSource;
  $("result").hidden = false;
  $("result").scrollIntoView({ block: "nearest", behavior: "smooth" });
}

// What a refinement of this job's style would train from: the uploaded painting, or a gallery
// style's painting (sent by id, named after its title). A personal style is a trained network
// already: nothing to offer.
function refineSource(fields) {
  if (fields.style_image) {
    return { painting: fields.style_image, name: fields.style_image.name.replace(/\.[^.]*$/, "") };
  }
  if (fields.style && !isPersonal(fields.style)) {
    return { style: fields.style, name: state.styles.get(fields.style)?.title || fields.style };
  }
  return null;
}

async function onCancel() {
  if (!state.job) return;
  try {
    const status = await cancelJob(state.job); // the job as it now is: cancelled, or finished
    if (status.status !== "queued" && status.status !== "running") state.endJob?.(status);
  } catch (err) {
    showError($("error"), err);
  }
}

// Refinement: "Make it a style" ---------------------------------------------------------------
async function onRefine() {
  const source = state.refineSource;
  if (!source) return;
  const error = $("refine-error");
  showError(error, null);
  $("refine-start").disabled = true;
  $("refine").hidden = false;
  $("refine-figure").hidden = true;
  $("refine-artefacts").hidden = true;
  $("refine-progress").value = 0;
  $("refine-status").textContent = source.painting ? "Sending the painting…" : "Starting…";
  $("refine-cancel").hidden = false;
  let job;
  try {
    job = await startRefine(source, Number($("refine-minutes").value));
  } catch (err) {
    $("refine-start").disabled = false;
    $("refine-cancel").hidden = true;
    $("refine-status").textContent = "Not started";
    showError(error, err);
    return;
  }
  state.refine = job;
  $("refine-status").textContent = refineStatusText(job);
  let ended = false;
  // The end, once: from the event stream, or from the answer to Cancel.
  const end = async (status) => {
    if (ended) return;
    ended = true;
    stop();
    state.refine = null;
    state.endRefine = null;
    $("refine-start").disabled = false;
    $("refine-cancel").hidden = true;
    if (status.status !== "succeeded") {
      $("refine-status").textContent = endText(status);
      showError(error, endError(status));
      return;
    }
    $("refine-progress").value = 1;
    showArtefacts($("refine-artefacts"), artefactNote(status.artefacts));
    await refreshStyles(status.style_id);
    const engine = useTrainedStyle(status.style_id);
    $("refine-status").textContent = engine
      ? `Done: your style is chosen under “Your styles”, with the ${engine.title} engine ` +
        "that runs it. Press Stylize to use it."
      : "Done: your style is under “Your styles”.";
    styleEvents?.postMessage({ changed: status.style_id });
  };
  const stop = followJob(job, {
    onStatus(status) {
      if (ended) return;
      $("refine-progress").value = status.progress || 0;
      $("refine-status").textContent = refineStatusText(status);
    },
    onPreview(image) {
      if (ended) return;
      $("refine-preview").src = image;
      $("refine-figure").hidden = false;
    },
    onEnd: end,
  });
  state.endRefine = end;
}

// A new personal style is a trained network: the Engine step moves to the engine that runs
// trained styles (Fast), so the next Stylize uses it. Returns that engine, or null where the
// style is not chosen (the user picked another meanwhile) or no such engine is offered.
function useTrainedStyle(styleId) {
  const card = $("personal-gallery").querySelector(`input[name="style"][value="${styleId}"]`);
  const engine = state.engines.find((e) => e.styles === "trained");
  if (!card?.checked || !engine) return null;
  const radio = document.querySelector(`input[name="method"][value="${engine.name}"]`);
  if (!radio || radio.disabled) return null;
  radio.checked = true;
  updateEngines();
  return engine;
}

function showArtefacts(line, note) {
  line.hidden = !note;
  if (!note) return;
  line.textContent = note.text;
  line.title = note.title;
  line.classList.toggle("clean", note.clean);
}

async function onRefineCancel() {
  if (!state.refine) return;
  try {
    const status = await cancelJob(state.refine); // cancelled, or how it had already ended
    if (status.status !== "queued" && status.status !== "running") state.endRefine?.(status);
  } catch (err) {
    showError($("refine-error"), err);
  }
}

// The personal styles: in the gallery under "Your styles" and in the live camera's list.
function showPersonal(personal) {
  state.personal = personal;
  for (const style of personal) state.styles.set(style.id, style);
  $("personal-title").hidden = personal.length === 0;
  renderPersonal($("personal-gallery"), personal, {
    keep: onKeep,
    rename: onRename,
    remove: onDelete,
  });
  live.setStyles(
    [...state.styles.values()].filter((s) => !isPersonal(s.id)),
    state.methods,
    personal,
  );
}

// Keep: the style no longer expires; its card says "kept" and loses its Keep button.
async function onKeep(style) {
  showError($("personal-error"), null);
  let kept;
  try {
    kept = await keepStyle(style.id);
  } catch (err) {
    showPersonalError("keep", style, err);
    return;
  }
  showPersonal(state.personal.map((s) => (s.id === style.id ? kept : s)));
  styleEvents?.postMessage({ changed: style.id });
  personalButton(style.id, "Rename")?.focus(); // where the Keep button was
}

// Rename, to the name asked for (empty or unchanged: nothing to do); the card, the live list
// and the other tabs show the new name.
async function onRename(style) {
  const name = window.prompt(`A new name for “${style.title}”`, style.title)?.trim();
  if (!name || name === style.title) return;
  showError($("personal-error"), null);
  let renamed;
  try {
    renamed = await renameStyle(style.id, name);
  } catch (err) {
    showPersonalError("rename", style, err);
    return;
  }
  showPersonal(state.personal.map((s) => (s.id === style.id ? renamed : s)));
  styleEvents?.postMessage({ changed: style.id });
  personalButton(style.id, "Rename")?.focus();
}

// Delete, once confirmed: the card leaves the gallery and the live list. On failure it stays.
async function onDelete(style) {
  if (!window.confirm(`Delete your style “${style.title}”? This cannot be undone.`)) return;
  showError($("personal-error"), null);
  try {
    await deleteStyle(style.id);
  } catch (err) {
    showPersonalError("delete", style, err);
    return;
  }
  forgetStyle(style.id);
  styleEvents?.postMessage({ deleted: style.id });
  focusStyleChoice();
}

// The other tabs of this browser share its owner token, so its personal styles: a style
// deleted in one leaves them all (their galleries, and a live camera painting with it), and one
// made or kept in one shows in all (they ask the server again), without waiting for a reload.
// Where BroadcastChannel is missing, they learn it at their next reload.
const styleEvents =
  typeof BroadcastChannel === "function" ? new BroadcastChannel("restyle-styles") : null;
styleEvents?.addEventListener("message", (event) => {
  if (typeof event.data?.deleted === "string") forgetStyle(event.data.deleted);
  else if (typeof event.data?.changed === "string") refreshStyles();
});

// Styles deleted while this tab was open: a list asked for before a deletion and answered after
// it must not bring the style back.
const forgotten = new Set();

function forgetStyle(styleId) {
  forgotten.add(styleId);
  state.styles.delete(styleId);
  showPersonal(state.personal.filter((s) => s.id !== styleId));
}

function showPersonalError(action, style, err) {
  const message = `Could not ${action} “${style.title}”: ${err.message}`;
  showError($("personal-error"), new ApiError(err.status, err.code, message));
}

function personalButton(styleId, action) {
  const card = [...$("personal-gallery").children].find((c) => c.dataset.style === styleId);
  return card?.querySelector(`button[aria-label^="${action} "]`);
}

// After a card is gone, focus goes back to the style choice (the chosen style, or the first).
function focusStyleChoice() {
  const radios = document.querySelectorAll('input[name="style"]');
  ([...radios].find((r) => r.checked) || radios[0])?.focus();
}

async function refreshStyles(select) {
  try {
    const { personal } = await loadStyles();
    showPersonal((personal || []).filter((s) => !forgotten.has(s.id)));
    if (select) {
      const input = $("personal-gallery").querySelector(`input[value="${select}"]`);
      if (input) input.click();
    }
  } catch (err) {
    showError($("refine-error"), err);
  }
}

// Jobs this browser left unfinished (the tab was closed): ask the server how they ended.
async function refreshUnfinished() {
  const unfinished = loadHistory().filter((e) => e.status === "queued" || e.status === "running");
  for (const entry of unfinished) {
    try {
      const status = await apiJson(`/api/jobs/${encodeURIComponent(entry.id)}`, {
        headers: { Authorization: `Bearer ${entry.token}` },
      });
      updateEntry(entry.id, { status: status.status });
    } catch (err) {
      if (err.status === 404) updateEntry(entry.id, { status: "expired" });
    }
  }
  if (unfinished.length) renderHistory($("history"), $("history-empty"), $("history-clear"));
}

// Start ---------------------------------------------------------------------------------------
async function init() {
  setupTabs();
  setupPhoto();
  setupStyle();
  setupCompare($("compare"), $("compare-slider"));
  $("stylize-form").addEventListener("submit", onSubmit);
  $("cancel").addEventListener("click", onCancel);
  $("refine-start").addEventListener("click", onRefine);
  $("refine-cancel").addEventListener("click", onRefineCancel);
  $("personal-gallery").addEventListener("change", (event) => {
    if (event.target.name === "style") {
      clearSelection($("gallery"));
      onGalleryChange();
    }
  });
  $("history-clear").addEventListener("click", () => {
    clearHistory();
    renderHistory($("history"), $("history-empty"), $("history-clear"));
  });
  renderHistory($("history"), $("history-empty"), $("history-clear"));
  refreshUnfinished();
  const [styles, engines] = await Promise.allSettled([loadStyles(), loadEngines()]);
  if (styles.status === "fulfilled") {
    const { styles: list, methods, personal, refine } = styles.value;
    for (const style of list) state.styles.set(style.id, style);
    state.methods = methods;
    renderGallery($("gallery"), list, (id) => {
      clearSelection($("personal-gallery"));
      onGalleryChange(id);
    });
    live.setStyles(list, methods);
    showPersonal(personal || []);
    renderBudgets($("refine-minutes"), refine);
    $("gallery-status").textContent = `${list.length} styles. Pick one:`;
  } else {
    $("gallery-status").classList.add("error");
    showError($("gallery-status"), styles.reason);
  }
  if (engines.status === "fulfilled") {
    state.engines = engines.value;
    renderEngines($("engines"), state.engines, updateEngines);
    $("painting-engines").textContent = paintingNote(state.engines);
    $("engines-status").hidden = true;
  } else {
    $("engines-status").classList.add("error");
    showError($("engines-status"), engines.reason);
  }
  updateEngines();
  document.body.dataset.ready = "true"; // styles and engines are in: the page is usable
}

init();
