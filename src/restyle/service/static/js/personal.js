// The personal styles: in the gallery under "Your styles" (keep, rename, delete) and in the
// live camera's list, the same in every tab of this browser.

import { ApiError, showError } from "./api.js";
import { loadStyles, renderPersonal } from "./gallery.js";
import { $, live, livePaintings, state } from "./page.js";
import { deleteStyle, isPersonal, keepStyle, renameStyle } from "./refine.js";

// The personal styles: in the gallery under "Your styles" and in the live camera's list.
export function showPersonal(personal) {
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
    livePaintings(),
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
export const styleEvents =
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

export async function refreshStyles(select) {
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
