"""Run one job: claim it, stylize, write the result and the status.

Shared by the embedded worker threads and `restyle worker` (RQ). A worker builds its `Engines`
once at start and passes them to every job, so models stay loaded between jobs whatever their
size, style or options. Inputs are decoded (`job_inputs`) and reach the engines as tensors;
results are encoded by the library's one encoder (`restyle.imaging.encode_image`), so the
service and the CLI write the same bytes. While a job runs, a heartbeat thread marks it alive
(`job_progress`), so the sweeper can tell a slow job from a worker that was killed.

An image job runs here, alone or in a batch of alike queued jobs where its engine batches; a
video job streams its clip from file to file (`video_job`); a refinement trains a network
(`refine`, which imports training code only when such a job comes).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from restyle.api import stylize_batch, stylize_tensor
from restyle.engines.holder import Engines
from restyle.engines.registry import ENGINES
from restyle.imaging import encode_image
from restyle.service.job_inputs import job_input, job_style, output_side, personal_style
from restyle.service.job_progress import ProgressReporter, heartbeat, stop_if_abandoned
from restyle.service.jobs import (
    JobError,
    JobRecord,
    JobStatus,
    JobStopped,
    library_error_code,
    new_reference,
)
from restyle.service.personal import is_personal
from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import Backend
from restyle.service.video_job import stylize_video_job

log = logging.getLogger("restyle.service")

MIME_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "webm": "video/webm",
}


def claim(backend: Backend, job_id: str) -> JobRecord | None:
    """Mark a queued job running (one more attempt); None when it should not run."""
    record = backend.jobs.claim(job_id, time.time())
    if record is not None and record.cancel_requested:
        _finish(backend, record, JobStatus.CANCELLED, None)
        return None
    return record


def execute(
    backend: Backend, record: JobRecord, settings: ServiceSettings, engines: Engines
) -> JobRecord | None:
    """Run a claimed job to its end; returns its final record."""
    with heartbeat(backend, [record], settings):
        try:
            if record.kind == "video":
                stylize_video_job(backend, record, settings, engines)
            elif record.kind == "refine":
                from restyle.service.refine import refine  # training code: only when needed

                refine(backend, record, settings, engines)
                return _finish(
                    backend, record, JobStatus.SUCCEEDED, None, result_type="application/json"
                )
            else:
                result = _stylize(backend, record, settings, engines)
                stop_if_abandoned(backend, record)
                _store_result(backend, record, result)
            return _finish(
                backend,
                record,
                JobStatus.SUCCEEDED,
                None,
                result_type=MIME_TYPES[record.options.format],
            )
        except JobStopped as stopped:
            if record.kind != "image" and stopped.status == JobStatus.CANCELLED:
                _drop_job_files(backend, record.id)
            return _finish(backend, record, stopped.status, stopped.error)
        except backend.unavailable:
            # The store is away (its backend has retried already), which is no fault of the job:
            # the worker waits for the store and the sweeper queues the job again.
            raise
        except Exception as exc:  # every failure must end as a status the client can read
            return _finish(backend, record, JobStatus.FAILED, _error_of(exc, record.id))


def run(backend: Backend, job_id: str, settings: ServiceSettings, engines: Engines) -> None:
    """Claim and execute one job (what a worker does with a job id from the queue).

    A job of an engine that batches takes along queued jobs with the same options (style, size,
    strength...) and runs them as one batch: on a GPU, a batch of equal-size photos costs little
    more than one. Jobs taken along are claimed like any other, so no other worker runs them.
    """
    record = backend.jobs.claim(job_id, time.time())
    if record is not None:
        run_claimed(backend, record, settings, engines)  # which ends it if it was cancelled


def run_claimed(
    backend: Backend, record: JobRecord, settings: ServiceSettings, engines: Engines
) -> None:
    """Run a job this worker has claimed (`run`, or `backend.lanes.take`)."""
    if record.cancel_requested:
        _finish(backend, record, JobStatus.CANCELLED, None)
        return
    mates = _batch_mates(backend, record, settings, engines)
    if mates:
        execute_batch(backend, [record, *mates], settings, engines)
    else:
        execute(backend, record, settings, engines)


def _batch_mates(
    backend: Backend, record: JobRecord, settings: ServiceSettings, engines: Engines
) -> list[JobRecord]:
    if settings.max_batch < 2 or not ENGINES[record.options.method].batches:
        return []
    if record.style_upload or record.kind != "image":
        return []
    if engines.device.type == "cpu" and not settings.batch_on_cpu:
        return []  # measured: 8 × 512² at once is no faster on a CPU and peaks at 2.2 GB RSS
    mates: list[JobRecord] = []
    for other in backend.jobs.queued(4 * settings.max_batch):
        if len(mates) + 1 >= settings.max_batch:
            break
        if (
            other.options == record.options
            and other.lane == record.lane
            and not other.style_upload
            and other.kind == "image"
        ):
            claimed = claim(backend, other.id)
            if claimed is not None:
                mates.append(claimed)
    return mates


def execute_batch(
    backend: Backend, records: list[JobRecord], settings: ServiceSettings, engines: Engines
) -> None:
    """Run claimed jobs with equal options, of an engine that batches, as batches; on any
    failure, one by one."""
    options = records[0].options
    assert options.style is not None
    try:
        with heartbeat(backend, records, settings):
            side = output_side(ENGINES[options.method].split(dict(options.options))[1])
            contents = [job_input(backend, r, "content", settings, reduce_to=side) for r in records]
            style = (
                personal_style(backend, options.style, True)
                if is_personal(options.style)
                else options.style
            )
            outputs = stylize_batch(contents, style, engines=engines, **options.options)
    except backend.unavailable:
        raise  # as in `execute`
    except Exception:  # one bad photo must not fail its batch mates: run them alone
        log.info("batch of %d failed; running its jobs one by one", len(records), exc_info=True)
        for record in records:
            execute(backend, record, settings, engines)
        return
    for record, output in zip(records, outputs, strict=True):
        current = backend.jobs.get(record.id)
        if current is None or current.cancel_requested:
            _finish(backend, record, JobStatus.CANCELLED, None)
            continue
        _store_result(backend, record, output)
        _finish(backend, record, JobStatus.SUCCEEDED, None, result_type=MIME_TYPES[options.format])


def _stylize(
    backend: Backend, record: JobRecord, settings: ServiceSettings, engines: Engines
) -> torch.Tensor:
    options = record.options
    engine = ENGINES[options.method]
    values = dict(options.options)
    _, engine_options, _ = engine.split(values)
    content = job_input(backend, record, "content", settings, reduce_to=output_side(engine_options))
    style = job_style(backend, record, settings)
    if hasattr(engine_options, "preview_every"):  # about eight previews over a planned run
        values["preview_every"] = max(1, engine_options.final_steps // 8)
    return stylize_tensor(
        content,
        style,
        method=options.method,
        progress=ProgressReporter(backend, record, settings),
        engines=engines,
        **values,
    )


def _drop_job_files(backend: Backend, job_id: str) -> None:
    """A cancelled video or refinement job keeps nothing: its upload (up to `max_video_bytes`;
    a refinement's painting) and its last preview go at once, not when the job expires. (The
    cancel route drops them too; a preview written after it is dropped here.)"""
    for name in ("content", "style", "preview"):
        backend.blobs.delete(job_id, name)


def _store_result(backend: Backend, record: JobRecord, result: torch.Tensor) -> None:
    encoded = encode_image(result, format=record.options.format)
    backend.blobs.put(record.id, "result", encoded)


def _finish(
    backend: Backend,
    record: JobRecord,
    status: JobStatus,
    error: JobError | None,
    **fields: Any,
) -> JobRecord | None:
    current = backend.jobs.get(record.id)
    if current is None or current.status.finished or current.attempts != record.attempts:
        return current  # deleted, already ended by the sweeper, or retried elsewhere
    now = time.time()
    final = backend.jobs.update(
        record.id,
        status=status,
        error=error,
        finished_at=now,
        progress=1.0 if status == JobStatus.SUCCEEDED else current.progress,
        message=status.value,
        **fields,
    )
    seconds = now - record.started_at if record.started_at else None
    backend.stats.count_finished(status, seconds, error.code if error else "")
    if record.priority > 0 and status == JobStatus.CANCELLED:
        # A synchronous request nobody waits for any more: nothing to keep.
        backend.jobs.delete(record.id)
        return None
    return final


def _error_of(exc: Exception, job_id: str) -> JobError:
    """What the client reads about a failed job. The library's own errors are written for
    users (they name the argument and the value); anything else, e.g. an OSError naming a file
    under the data directory, is logged with a reference and the client gets only that."""
    code = library_error_code(exc)
    if code == "out_of_memory":
        return JobError(code=code, message="the worker ran out of memory")
    if code is not None:
        return JobError(code=code, message=str(exc))
    reference = new_reference()
    log.error("job %s failed (reference %s)", job_id, reference, exc_info=exc)
    return JobError(code="internal_error", message=f"internal error (reference {reference})")
