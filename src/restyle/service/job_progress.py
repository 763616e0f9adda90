"""A running job's side of the store: progress and previews written as the engine reports,
heartbeats while it runs, and the checks that stop it (cancelled, deleted, out of time)."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import torch

from restyle.engines.costs import duration
from restyle.imaging import encode_image, tensor_to_image
from restyle.progress import Progress
from restyle.service.jobs import (
    JobError,
    JobRecord,
    JobStatus,
    JobStopped,
    stop_unless_still_running,
)
from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import Backend

log = logging.getLogger("restyle.service")

_PROGRESS_EVERY_S = 0.5
_VIDEO_PREVIEW_EVERY_S = 1.0
_PREVIEW_SIDE = 384


class ProgressReporter:
    """The engine's progress callback: throttled progress, previews, cancellation, timeout."""

    def __init__(self, backend: Backend, record: JobRecord, settings: ServiceSettings) -> None:
        self.backend, self.record, self.settings = backend, record, settings
        self.video = record.kind == "video"
        self.last = 0.0
        self.last_preview = -math.inf
        self.previews = 0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        final = progress.step >= progress.total
        # A video reports every batch with its latest frame: stored at most once a second.
        preview = progress.preview is not None and (
            not self.video or now - self.last_preview >= _VIDEO_PREVIEW_EVERY_S
        )
        if preview:
            assert progress.preview is not None
            self.previews += 1
            self.last_preview = now
            self.backend.blobs.put(self.record.id, "preview", _preview(progress.preview))
        elif not final and now - self.last < _PROGRESS_EVERY_S:
            return
        self.last = now
        fields: dict[str, Any]
        if self.video:  # the total the API counted: the container may not declare one
            total = max(self.record.frames_total, progress.step, 1)
            fields = {
                "progress": min(1.0, progress.step / total),
                "message": f"frame {progress.step} of {total}",
                "frames_done": progress.step,
                "frames_total": total,
            }
        elif progress.time_limit and not final:  # as many steps as fit: the clock runs down
            left = max(progress.time_limit - progress.elapsed, 0.0)
            fields = {
                "progress": min(1.0, progress.elapsed / progress.time_limit),
                "message": f"step {progress.step}, about {duration(left)} left",
            }
        else:
            fields = {
                "progress": min(1.0, progress.step / max(progress.total, 1)),
                "message": f"step {progress.step}/{progress.total}",
            }
        if preview:
            fields["preview_version"] = self.previews
        stop_unless_still_running(self.backend.jobs.update(self.record.id, **fields), self.record)
        started = self.record.started_at or time.time()
        limit = self.settings.job_time_limit(self.record.frames_total)
        if time.time() - started > limit:
            message = f"the job ran longer than {limit:g} s"
            raise JobStopped(JobStatus.FAILED, JobError(code="timeout", message=message))


def stop_if_abandoned(backend: Backend, record: JobRecord) -> None:
    """Raise JobStopped if the job was cancelled or deleted while it ran (a fast job has no
    progress callback to stop it earlier)."""
    current = backend.jobs.get(record.id)
    if current is None or current.cancel_requested:
        raise JobStopped(JobStatus.CANCELLED, None)


@contextlib.contextmanager
def heartbeat(
    backend: Backend, records: list[JobRecord], settings: ServiceSettings
) -> Iterator[None]:
    """While the block runs, one thread marks every job of `records` alive each heartbeat_s."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(settings.heartbeat_s):
            for record in records:
                try:
                    backend.jobs.update(record.id, heartbeat_at=time.time())
                except Exception:  # a store hiccup must not kill the job; the next beat retries
                    log.warning("heartbeat of job %s failed", record.id, exc_info=True)

    thread = threading.Thread(target=beat, name="restyle-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _preview(tensor: torch.Tensor) -> bytes:
    image = tensor_to_image(tensor)
    image.thumbnail((_PREVIEW_SIDE, _PREVIEW_SIDE))
    return encode_image(image, format="JPEG", quality=85)
