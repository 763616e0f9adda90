// The page's start: each area's wiring (tabs, the form, the job and its result, "Make it a
// style", the personal styles, the history), then the styles and engines from the API.

import { apiJson, showError } from "./api.js";
import { setupCompare } from "./compare.js";
import {
  onGalleryChange,
  refreshEstimate,
  setupPhoto,
  setupStyle,
  updateEngines,
} from "./form.js";
import { loadEngines, paintingNote, renderEngines } from "./engines.js";
import { clearSelection, loadStyles, renderGallery } from "./gallery.js";
import { clearHistory, loadHistory, renderHistory, updateEntry } from "./history.js";
import { $, live, livePaintings, state } from "./page.js";
import { showPersonal } from "./personal.js";
import { onCancel, onSubmit } from "./progress.js";
import { renderBudgets } from "./refine.js";
import { onRefine, onRefineCancel } from "./refinecard.js";
import { setupTabs } from "./tabs.js";

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

async function init() {
  setupTabs();
  setupPhoto();
  setupStyle();
  setupCompare($("compare"), $("compare-slider"));
  $("stylize-form").addEventListener("submit", onSubmit);
  // Any option typed, slid or chosen: the expected time follows (estimate.js waits a moment).
  $("stylize-form").addEventListener("input", refreshEstimate);
  $("stylize-form").addEventListener("change", refreshEstimate);
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
  // The engines first: the live camera's list asks them whether it takes any painting.
  if (engines.status === "fulfilled") state.engines = engines.value;
  if (styles.status === "fulfilled") {
    const { styles: list, personal, refine } = styles.value;
    for (const style of list) state.styles.set(style.id, style);
    renderGallery($("gallery"), list, (id) => {
      clearSelection($("personal-gallery"));
      onGalleryChange(id);
    });
    live.setStyles(list, livePaintings());
    showPersonal(personal || []);
    renderBudgets($("refine-minutes"), refine);
    $("gallery-status").textContent = `${list.length} styles. Pick one:`;
  } else {
    $("gallery-status").classList.add("error");
    showError($("gallery-status"), styles.reason);
  }
  if (engines.status === "fulfilled") {
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
