// The gallery of shipped styles: each is a radio button inside its card, so arrow keys move
// between styles and screen readers announce "The Starry Night, Vincent van Gogh, 1 of 10".

import { apiJson, localPath, radioLabel } from "./api.js";

export async function loadStyles() {
  return apiJson("/api/styles"); // {styles: [...], methods: [...]}
}

export function renderGallery(container, styles, onChange) {
  container.replaceChildren(...styles.map((style, index) => card(style, index === 0)));
  container.addEventListener("change", (event) => {
    if (event.target.name === "style") onChange(event.target.value);
  });
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

export function clearSelection(container) {
  for (const input of container.querySelectorAll('input[name="style"]')) input.checked = false;
}
