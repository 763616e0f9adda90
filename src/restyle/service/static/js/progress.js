// A job: submitted from the form, its progress card followed (status, Gatys previews) until it
// ends, cancelled; a finished one's result is shown by result.js.

import { showError } from "./api.js";
import { options } from "./form.js";
import { selectedIn } from "./gallery.js";
import { addEntry, renderHistory, updateEntry } from "./history.js";
import { cancelJob, endError, followJob, submitJob } from "./job.js";
import { $, currentMethod, endText, engineNamed, queueText, state } from "./page.js";
import { isPersonal, ownerHeaders } from "./refine.js";
import { showResult } from "./result.js";

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
  if (status.status === "queued") return queueText(status);
  if (status.status === "running") {
    return `Running: ${status.message || "started"} (${percent}%)`;
  }
  return endText(status);
}

export async function onSubmit(event) {
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

export async function onCancel() {
  if (!state.job) return;
  try {
    const status = await cancelJob(state.job); // the job as it now is: cancelled, or finished
    if (status.status !== "queued" && status.status !== "running") state.endJob?.(status);
  } catch (err) {
    showError($("error"), err);
  }
}
