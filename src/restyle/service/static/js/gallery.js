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
// ones, so one style is chosen in all. Their pictures need the token.
export function renderPersonal(container, styles) {
  const chosen = selectedStyle(container);
  container.replaceChildren(
    ...styles.map((style) => {
      const expires = style.expires_at
        ? `until ${new Date(style.expires_at * 1000).toLocaleDateString()}`
        : "kept";
      return card(
        { ...style, artist: `yours, ${expires}`, thumbnail_url: withToken(style.preview_url) },
        style.id === chosen,
      );
    }),
  );
  container.hidden = styles.length === 0;
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
