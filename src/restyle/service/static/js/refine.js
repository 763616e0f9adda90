// Personal styles: a painting's own network, trained on the server within a time budget
// (POST /api/refines), then a style like the shipped ones, for this browser only. The server
// ties the styles to a token; the browser keeps it (localStorage) and sends it with every
// request that lists or uses them.

import { apiFetch, apiJson, localPath } from "./api.js";
import { queueText } from "./page.js";

const OWNER_KEY = "restyle-owner-token";

export function ownerToken() {
  try {
    return window.localStorage.getItem(OWNER_KEY);
  } catch {
    return null; // storage blocked: styles last as long as the page
  }
}

function rememberOwner(token) {
  try {
    if (!ownerToken()) window.localStorage.setItem(OWNER_KEY, token);
  } catch {
    // Storage blocked: nothing to remember it in.
  }
}

export function ownerHeaders() {
  const token = ownerToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// A URL of a personal style's picture or network, with the token (an <img> sends no headers).
export function withToken(url) {
  const token = ownerToken();
  const path = localPath(url);
  if (!token) return path;
  return `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}

export function isPersonal(styleId) {
  return typeof styleId === "string" && styleId.startsWith("my-");
}

// Keep a personal style past its expiry; the server answers with the style as it now is.
export async function keepStyle(styleId) {
  const url = `/api/styles/${encodeURIComponent(styleId)}/keep`;
  return apiJson(url, { method: "POST", headers: ownerHeaders() });
}

export async function renameStyle(styleId, name) {
  const url = `/api/styles/${encodeURIComponent(styleId)}`;
  return apiJson(url, {
    method: "PATCH",
    headers: { ...ownerHeaders(), "Content-Type": "application/json" },
    body: JSON.stringify({ name }),
  });
}

export async function deleteStyle(styleId) {
  const url = `/api/styles/${encodeURIComponent(styleId)}`;
  await apiFetch(url, { method: "DELETE", headers: ownerHeaders() });
}

// `source`: what to train from, {painting: File} (an uploaded painting) or {style: id} (a
// gallery style: the server has its painting, so only the id goes), with the `name` the new
// style is to have.
export async function startRefine(source, minutes) {
  const body = new FormData();
  if (source.painting) body.append("painting", source.painting);
  else body.append("painting_style", source.style);
  body.append("minutes", String(minutes));
  if (source.name) body.append("name", source.name);
  const job = await apiJson("/api/refines", { method: "POST", body, headers: ownerHeaders() });
  rememberOwner(job.token);
  return {
    ...job,
    statusUrl: localPath(job.urls.self),
    eventsUrl: localPath(job.urls.events),
    resultUrl: localPath(job.urls.result),
  };
}

// "45 s", "3 min 20 s", "1 h 5 min".
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return s % 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s / 60} min`;
  const minutes = Math.round(s / 60);
  return minutes % 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes / 60} h`;
}

// The training's progress as time: how long it has trained and about how long is left. The
// training runs for its time budget, so the time left is the budget's rest (the job's
// `seconds_left`); without it, the elapsed time stretched by the progress. The training loss
// is not shown: it is no measure of the style (a network that paints better may score a
// higher loss on its last batch), and the job reports no other one while it trains.
export function refineStatusText(status) {
  if (status.status === "queued") return queueText(status);
  if (status.status !== "running") return status.status;
  const training = status.training || {};
  if (!training.step) return "Training: starting…";
  const budget = training.budget_s;
  let left = training.seconds_left;
  let elapsed = typeof budget === "number" && typeof left === "number" ? budget - left : null;
  if (typeof left !== "number" && status.started_at && status.progress > 0) {
    elapsed = Date.now() / 1000 - status.started_at;
    left = (elapsed * (1 - status.progress)) / status.progress;
  }
  if (typeof left !== "number") return "Training…";
  if (left < 0.5) return "Training done: checking the new style…";
  const soFar = elapsed === null ? "" : `${duration(elapsed)} so far, `;
  return `Training: ${soFar}about ${duration(left)} left`;
}

// A finished refinement's artefact check (the job's `artefacts`), in plain words: what the
// network draws of its own at 100% zoom, or that it draws nothing; null without a check. The
// measures and their limits go into `title`, for those who look closer.
const ARTEFACT_WORDS = {
  streaks: "fine colour stripes",
  grid: "a grid or checkerboard pattern",
  seams: "straight seams",
};

export function artefactNote(report) {
  if (!report) return null;
  const photos = report.checked_photos;
  const checked = `Checked on ${photos} photo${photos === 1 ? "" : "s"}`;
  if (!report.flagged.length) {
    return { text: "No artefacts found.", title: `${checked}.`, clean: true };
  }
  const words = report.flagged.map((measure) => ARTEFACT_WORDS[measure] || measure);
  const listed =
    words.length === 1 ? words[0] : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
  return {
    text: `This style shows ${listed} at 100% zoom.`,
    title: `${checked}: ${report.flags.join("; ")}`,
    clean: false,
  };
}

// The budget choices the server offers (GET /api/styles' `refine`), its default selected.
export function renderBudgets(select, limits) {
  const budgets = limits?.budgets_minutes?.length ? limits.budgets_minutes : [5];
  const chosen = budgets.includes(limits?.default_minutes) ? limits.default_minutes : budgets[0];
  select.replaceChildren(
    ...budgets.map((minutes) => {
      const text = minutes < 1 ? `${Math.round(minutes * 60)} seconds` : `${minutes} minutes`;
      const option = new Option(text, String(minutes));
      option.selected = minutes === chosen;
      return option;
    }),
  );
}
