// This browser's results, in localStorage: the server keeps no list per person (jobs are only
// reachable with their token), so the browser remembers the tokens it was given.

const KEY = "restyle.history.v1";
const MAX_ENTRIES = 30;

export function loadHistory() {
  try {
    const entries = JSON.parse(window.localStorage.getItem(KEY) || "[]");
    return Array.isArray(entries) ? entries : [];
  } catch {
    return []; // corrupt or blocked storage: start afresh rather than break the page
  }
}

function save(entries) {
  try {
    window.localStorage.setItem(KEY, JSON.stringify(entries.slice(0, MAX_ENTRIES)));
  } catch {
    // Private mode or a full quota: the history is a convenience, the page works without it.
  }
}

// entry: {id, token, style, method, kind (image or video), time, resultUrl, status}
export function addEntry(entry) {
  save([entry, ...loadHistory().filter((e) => e.id !== entry.id)]);
}

export function updateEntry(id, fields) {
  save(loadHistory().map((e) => (e.id === id ? { ...e, ...fields } : e)));
}

export function clearHistory() {
  save([]);
}

export function renderHistory(list, empty, clearButton) {
  const entries = loadHistory();
  list.replaceChildren(...entries.map(historyItem));
  empty.hidden = entries.length > 0;
  clearButton.hidden = entries.length === 0;
}

function historyItem(entry) {
  const item = document.createElement("li");
  const when = new Date(entry.time).toLocaleString();
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.append(`${entry.style} · ${entry.method}`);
  const detail = document.createElement("small");
  detail.textContent = `${when} · ${entry.status}`;
  meta.append(detail);
  if (entry.status === "succeeded") {
    const link = document.createElement("a");
    link.href = entry.resultUrl;
    link.target = "_blank";
    link.rel = "noopener";
    let image;
    if (entry.kind === "video") {
      image = document.createElement("video"); // its first frame, as a thumbnail
      image.muted = true;
      image.preload = "metadata";
      image.setAttribute("aria-label", `Result: ${entry.style}, ${when}`);
    } else {
      image = document.createElement("img");
      image.alt = `Result: ${entry.style}, ${when}`;
      image.loading = "lazy";
    }
    image.src = entry.resultUrl;
    // Results expire on the server after a day: say so instead of showing a broken image.
    image.addEventListener("error", () => {
      link.replaceWith(placeholder());
      detail.textContent = `${when} · expired on the server`;
    });
    link.append(image);
    item.append(link, meta);
  } else {
    item.append(placeholder(), meta);
  }
  return item;
}

function placeholder() {
  const box = document.createElement("span");
  box.className = "no-image";
  return box;
}
