// A stylization job: submitted with POST /api/jobs, followed through its Server-Sent Events
// (status with progress, Gatys previews, end), cancelled with DELETE.

import { ApiError, apiJson, localPath } from "./api.js";

// `headers`: a personal style's owner token goes along (the job gets a token of its own).
export async function submitJob(fields, headers = {}) {
  const body = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (value !== null && value !== undefined && value !== "") body.append(name, value);
  }
  const job = await apiJson("/api/jobs", { method: "POST", body, headers });
  return {
    ...job,
    statusUrl: localPath(job.urls.self),
    eventsUrl: localPath(job.urls.events),
    resultUrl: `${localPath(job.urls.result)}?token=${encodeURIComponent(job.token)}`,
  };
}

// Calls onStatus(status), onPreview(dataUrl) and finally onEnd(status) once. Returns a function
// that stops following. EventSource cannot send headers, so the token goes in the query.
export function followJob(job, { onStatus, onPreview, onEnd }) {
  const source = new EventSource(`${job.eventsUrl}?token=${encodeURIComponent(job.token)}`);
  let ended = false;
  const finish = (status) => {
    if (ended) return;
    ended = true;
    source.close();
    onEnd(status);
  };
  source.addEventListener("status", (event) => onStatus(JSON.parse(event.data)));
  source.addEventListener("preview", (event) => onPreview(JSON.parse(event.data).image));
  source.addEventListener("end", (event) => finish(JSON.parse(event.data)));
  source.addEventListener("error", async () => {
    // EventSource reconnects by itself after a dropped connection (the server then sends the
    // current status again). It gives up only when the server refuses the stream: ask the
    // status endpoint why, so the user sees the API's own message.
    if (source.readyState !== EventSource.CLOSED || ended) return;
    try {
      const status = await jobStatus(job);
      if (status.status === "queued" || status.status === "running") {
        finish({ status: "failed", error: { code: "events_lost", message:
          "Lost the connection to the job's progress. It may still finish: see your results." } });
      } else {
        finish(status);
      }
    } catch (err) {
      finish({ status: "failed", error: { code: err.code || "network", message: err.message } });
    }
  });
  return () => {
    ended = true;
    source.close();
  };
}

export async function jobStatus(job) {
  return apiJson(job.statusUrl, { headers: { Authorization: `Bearer ${job.token}` } });
}

// Returns the job's status as the server answers it (cancelled, or how it had already ended).
export async function cancelJob(job) {
  return apiJson(job.statusUrl, {
    method: "DELETE",
    headers: { Authorization: `Bearer ${job.token}` },
  });
}

// A finished job's error as an ApiError (the page shows its message).
export function endError(status) {
  if (status.status === "cancelled") return new ApiError(0, "cancelled", "The job was cancelled.");
  if (status.status === "expired") {
    return new ApiError(0, "expired", "The job expired on the server before it finished.");
  }
  const error = status.error || {};
  return new ApiError(0, error.code || "failed", error.message || "The job failed.");
}
