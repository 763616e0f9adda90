// The gallery of shipped styles: each is a radio button inside its card, so arrow keys move
// between styles and screen readers announce "The Starry Night, Vincent van Gogh, 1 of 10".

import { apiJson, localPath, radioLabel } from "./api.js";
import { ownerHeaders, withToken } from "./refine.js";

// {styles: [...], methods: [...], personal: [...] (this browser's own), refine: {...}}
export async function loadStyles() {
  return apiJson("/api/styles", { headers: ownerHeaders() });
}

export function renderGallery(container, styles, onChange) {
  container.replaceChildren(...styles.map((style, index) => card(style, index === 0)));
  container.addEventListener("change", (event) => {
    if (event.target.name === "style") onChange(event.target.value);
  });
}

// The personal styles, in their own gallery: radio buttons of the same group as the shipped
// ones, so one style is chosen in all. Their pictures need the token. Beside each card's radio
// button (not inside its label, which names the radio button) are its Keep, Rename and Delete
// buttons: `actions.keep(style)`, `actions.rename(style)` and `actions.remove(style)`.
export function renderPersonal(container, styles, actions) {
  const chosen = selectedStyle(container);
  container.replaceChildren(
    ...styles.map((style) => personalCard(style, style.id === chosen, actions)),
  );
  container.hidden = styles.length === 0;
}

function personalCard(style, checked, actions) {
  const item = document.createElement("div");
  item.className = "personal-card";
  item.dataset.style = style.id;
  const shown = {
    ...style,
    artist: `yours, ${expiry(style)}`,
    thumbnail_url: withToken(style.preview_url),
  };
  item.append(card(shown, checked), personalActions(style, actions));
  return item;
}

function expiry(style) {
  if (!style.expires_at) return "kept";
  return `until ${new Date(style.expires_at * 1000).toLocaleDateString()}`;
}

function personalActions(style, actions) {
  const bar = document.createElement("div");
  bar.className = "card-actions";
  if (style.expires_at) {
    bar.append(actionButton("Keep", `Keep ${style.title}`, () => actions.keep(style)));
  }
  bar.append(
    actionButton("Rename", `Rename ${style.title}`, () => actions.rename(style)),
    actionButton("Delete", `Delete ${style.title}`, () => actions.remove(style)),
  );
  return bar;
}

function actionButton(text, label, onClick) {
  const button = document.createElement("button");
  button.type = "button"; // inside the form: never a submit
  button.className = "secondary small";
  button.textContent = text;
  button.setAttribute("aria-label", label);
  button.addEventListener("click", onClick);
  return button;
}

function card(style, checked) {
  const label = radioLabel("style-card", "style", style.id, checked);
  const image = document.createElement("img");
  image.src = localPath(style.thumbnail_url);
  image.alt = `${style.title} by ${style.artist}`;
  image.loading = "lazy";
  image.decoding = "async";
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = style.title;
  const artist = document.createElement("span");
  artist.className = "artist";
  artist.textContent = style.year ? `${style.artist}, ${style.year}` : style.artist;
  label.append(image, title, artist);
  if (style.network) {
    // What the zoo style runs: a network refined for the painting, or the any-painting one.
    const kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = style.network;
    label.append(kind);
  }
  return label;
}

export function selectedStyle(container) {
  const input = container.querySelector('input[name="style"]:checked');
  return input ? input.value : null;
}

export function selectedIn(containers) {
  for (const container of containers) {
    const chosen = selectedStyle(container);
    if (chosen) return chosen;
  }
  return null;
}

export function clearSelection(container) {
  for (const input of container.querySelectorAll('input[name="style"]')) input.checked = false;
}
