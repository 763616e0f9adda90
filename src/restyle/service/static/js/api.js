// Talking to the Restyle API. Every error the API returns is JSON {"error": {code, message}};
// the page shows that message as it is, so what the user reads is what the server meant.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// fetch() that throws an ApiError for a network failure or any 4xx/5xx answer.
export async function apiFetch(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new ApiError(0, "network", `Cannot reach the server (${err.message}).`);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function apiJson(url, options = {}) {
  return (await apiFetch(url, options)).json();
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: a proxy's error page, say. Fall through to the status line.
  }
  const error = body && body.error;
  if (error && error.message) return new ApiError(response.status, error.code, error.message);
  const reason = response.statusText ? ` ${response.statusText}` : "";
  return new ApiError(response.status, `http_${response.status}`,
    `The server answered ${response.status}${reason}.`);
}

// The API answers with absolute URLs built from the Host header; the page and the API share an
// origin, so keep only the path: a proxy that rewrites Host cannot send the browser elsewhere
// (and the page's cross-origin isolation would block other origins anyway).
export function localPath(url) {
  const parsed = new URL(url, window.location.href);
  return parsed.pathname + parsed.search;
}

// Shows an error (an ApiError, any Error, or a string) in a role="alert" element.
export function showError(element, error) {
  element.replaceChildren();
  if (!error) {
    element.hidden = true;
    return;
  }
  const message = document.createElement("span");
  message.className = "error-message";
  message.textContent = typeof error === "string" ? error : error.message;
  element.append(message);
  if (error instanceof ApiError && error.code) {
    const code = document.createElement("code");
    code.textContent = ` (${error.code})`;
    element.append(code);
  }
  element.hidden = false;
}

// A <label class=className> holding a radio button of group `name`: the gallery's cards and
// the engine choice. The caller appends what the label shows after the input.
export function radioLabel(className, name, value, checked) {
  const label = document.createElement("label");
  label.className = className;
  const input = document.createElement("input");
  input.type = "radio";
  input.name = name;
  input.value = value;
  input.checked = checked;
  label.append(input);
  return label;
}
