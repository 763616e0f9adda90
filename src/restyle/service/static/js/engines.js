// The engines this server runs (GET /api/engines, default first): the radios of the Engine
// step. Each engine comes with the JSON schema of its options, which options.js turns into the
// controls of the Options step.

import { apiJson, radioLabel } from "./api.js";

export async function loadEngines() {
  return (await apiJson("/api/engines")).engines; // [{name, title, summary, styles, options}]
}

export function renderEngines(container, engines, onChange) {
  container.replaceChildren(...engines.map((engine, index) => radio(engine, index === 0)));
  container.addEventListener("change", (event) => {
    if (event.target.name === "method") onChange(event.target.value);
  });
}

function sentence(text) {
  const trimmed = (text || "").trim();
  if (!trimmed) return "";
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

function radio(engine, checked) {
  const label = radioLabel("engine", "method", engine.name, checked);
  const text = document.createElement("span");
  const title = document.createElement("strong");
  title.textContent = engine.title || engine.name;
  const summary = document.createElement("small");
  summary.textContent = [
    sentence(engine.summary),
    engine.styles === "trained" ? "For gallery styles and styles you made." : "",
  ].filter(Boolean).join(" ");
  text.append(title, summary);
  label.append(text);
  return label;
}

// The engines that take the user's own painting, for the note beside the upload.
export function paintingNote(engines) {
  const titles = engines.filter((e) => e.styles === "painting").map((e) => e.title || e.name);
  return titles.length
    ? `(engines: ${titles.join(", ")})`
    : "(no engine on this server takes one)";
}
