// Refinement: "Make it a style". The painting of a result trains a network of its own on the
// server (a card follows it); the finished style is chosen, with the engine that runs it.

import { showError } from "./api.js";
import { updateEngines } from "./form.js";
import { cancelJob, endError, followJob } from "./job.js";
import { $, endText, state } from "./page.js";
import { refreshStyles, styleEvents } from "./personal.js";
import { artefactNote, refineStatusText, startRefine } from "./refine.js";

export async function onRefine() {
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

export async function onRefineCancel() {
  if (!state.refine) return;
  try {
    const status = await cancelJob(state.refine); // cancelled, or how it had already ended
    if (status.status !== "queued" && status.status !== "running") state.endRefine?.(status);
  } catch (err) {
    showError($("refine-error"), err);
  }
}
