"""Housekeeping run by the API: lost workers, overrunning jobs, expired results.

A worker killed mid-job (`kill -9`, a lost GPU machine) stops sending heartbeats; after
`heartbeat_timeout_s` its job is queued again, up to `max_attempts` runs, then failed with
`worker_lost`. A job whose record says queued but which no queue holds (a worker died between
taking it and claiming it; the last second of Redis's append-only file was lost) is queued again
after `requeue_grace_s`, so it neither waits forever nor holds its client's slot. Finished jobs
are deleted `result_ttl_s` after they ended, and files that belong to no job (a submission
that died half-way) `orphan_grace_s` after they were written. Personal styles not kept are
deleted when their `personal_style_ttl_s` has passed.

A synchronous request (`POST /api/stylize`, priority > 0) whose worker is lost is deleted, not
retried: the request that waited for it has had its answer (a 503 on timeout, or no answer when
the API itself went down), so nobody would read its result.
"""

from __future__ import annotations

import logging
import threading
import time

from restyle.service.jobs import JobError, JobStatus
from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import Backend

log = logging.getLogger("restyle.service")


def sweep(
    backend: Backend, settings: ServiceSettings, *, now: float | None = None, all_lost: bool = False
) -> dict[str, int]:
    """One pass; `all_lost`: every running job is known to have no worker (start-up)."""
    now = time.time() if now is None else now
    counts = {"retried": 0, "lost": 0, "timed_out": 0, "stranded": 0, "expired": 0, "dropped": 0}
    counts["orphans"] = 0
    if all_lost:
        # Start-up: whoever waited for a queued synchronous request went down with the process.
        for record in backend.jobs.queued(settings.max_queued_jobs):
            if record.priority > 0:
                backend.jobs.delete(record.id)
                counts["dropped"] += 1
    for record in backend.jobs.running():
        beat = record.heartbeat_at or record.started_at or record.created_at
        if all_lost or now - beat > settings.heartbeat_timeout_s:
            if record.priority > 0:
                log.warning("job %s: synchronous request's worker lost, dropped", record.id)
                backend.jobs.delete(record.id)
                counts["dropped"] += 1
            elif record.attempts < settings.max_attempts:
                log.warning("job %s: worker lost, queued again", record.id)
                backend.jobs.requeue(record.id)
                counts["retried"] += 1
            else:
                message = f"the worker stopped responding ({record.attempts} attempts)"
                _fail(backend, record.id, "worker_lost", message, now)
                counts["lost"] += 1
        elif (
            record.started_at
            and now - record.started_at
            > (limit := settings.job_time_limit(record.frames_total)) + 60
        ):
            message = f"the job ran longer than {limit:g} s"
            _fail(backend, record.id, "timeout", message, now)
            counts["timed_out"] += 1
    for job_id in backend.jobs.stranded(now - settings.requeue_grace_s):
        log.warning("job %s: queued but in no queue, queued again", job_id)
        backend.jobs.requeue(job_id)
        counts["stranded"] += 1
    counts["restocked"] = backend.lanes.restock()
    for job_id in backend.jobs.finished_before(now - settings.result_ttl_s):
        backend.jobs.delete(job_id)
        counts["expired"] += 1
    counts["orphans"] += backend.blobs.remove_orphans(now - settings.orphan_grace_s)
    counts["styles_expired"] = 0
    for style_id in backend.personal.expired(now):
        log.info("personal style %s expired", style_id)
        backend.personal.delete(style_id)
        counts["styles_expired"] += 1
    return counts


def _fail(backend: Backend, job_id: str, code: str, message: str, now: float) -> None:
    record = backend.jobs.update(
        job_id,
        status=JobStatus.FAILED,
        error=JobError(code=code, message=message),
        finished_at=now,
        cancel_requested=True,  # should the worker be alive after all, it stops
        message="failed",
    )
    if record is not None:
        backend.stats.count_finished(JobStatus.FAILED, None, code)


class Sweeper:
    """Runs `sweep` every `cleanup_interval_s` on a daemon thread."""

    def __init__(self, backend: Backend, settings: ServiceSettings) -> None:
        self.backend, self.settings = backend, settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="restyle-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        interval = min(self.settings.cleanup_interval_s, self.settings.heartbeat_timeout_s / 2)
        while not self._stop.wait(interval):
            try:
                sweep(self.backend, self.settings)
            except Exception:  # a store outage must not end housekeeping for good
                log.warning("sweep failed", exc_info=True)
