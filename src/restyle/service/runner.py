"""Run one job: read its inputs from the backend, stylize, write the result and the status.

Shared by the embedded worker threads and `restyle worker` (RQ). A worker builds its `Engines`
once at start and passes them to every job, so models stay loaded between jobs whatever their
size, style or options. Inputs are decoded here and reach the engines as tensors; results are
encoded by the library's one encoder (`restyle.imaging.encode_image`), so the service and the
CLI write the same bytes. While a job runs, a heartbeat thread marks it alive, so the sweeper can
tell a slow job from a worker that was killed.

A video job streams its clip from file to file through `restyle.video.stylize_video` (imported
by the first video job: PyAV and OpenCV stay out of a worker until then): the upload is read
where the store keeps it (embedded) or from a temporary copy (Redis), the result is written in
the job's work folder and moved into the store. Progress is counted in frames, and the latest
stylized frame becomes the job's preview at most once a second.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import torch

from restyle import zoo
from restyle.api import stylize_batch, stylize_tensor
from restyle.engines.holder import Engines
from restyle.engines.registry import ENGINES
from restyle.errors import InvalidParameterError, RestyleError
from restyle.imaging import ImageLimits, as_tensor, encode_image, tensor_to_image
from restyle.progress import Progress
from restyle.service.jobs import (
    JobError,
    JobRecord,
    JobStatus,
    JobStopped,
    library_error_code,
    new_reference,
    stop_unless_still_running,
)
from restyle.service.personal import is_personal
from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import Backend

log = logging.getLogger("restyle.service")

_PROGRESS_EVERY_S = 0.5
_VIDEO_PREVIEW_EVERY_S = 1.0
_PREVIEW_SIDE = 384
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
    with _heartbeat(backend, [record], settings):
        try:
            if record.kind == "video":
                _stylize_video(backend, record, settings, engines)
            elif record.kind == "refine":
                from restyle.service.refine import refine  # training code: only when needed

                refine(backend, record, settings, engines)
                return _finish(
                    backend, record, JobStatus.SUCCEEDED, None, result_type="application/json"
                )
            else:
                result = _stylize(backend, record, settings, engines)
                _stop_if_abandoned(backend, record)
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
                _drop_video_files(backend, record.id)
            return _finish(backend, record, stopped.status, stopped.error)
        except backend.unavailable:
            # The store is away (its backend has retried already), which is no fault of the job:
            # the worker waits for the store and the sweeper queues the job again.
            raise
        except Exception as exc:  # every failure must end as a status the client can read
            return _finish(backend, record, JobStatus.FAILED, _error_of(exc, record.id))


def _stop_if_abandoned(backend: Backend, record: JobRecord) -> None:
    """Raise JobStopped if the job was cancelled or deleted while it ran (a fast job has no
    progress callback to stop it earlier)."""
    current = backend.jobs.get(record.id)
    if current is None or current.cancel_requested:
        raise JobStopped(JobStatus.CANCELLED, None)


def run(backend: Backend, job_id: str, settings: ServiceSettings, engines: Engines) -> None:
    """Claim and execute one job (what a worker does with a job id from the queue).

    A fast-engine job takes along queued jobs with the same options (style, size, strength...)
    and runs them as one batch: on a GPU, a batch of equal-size photos costs little more than
    one. Jobs taken along are claimed like any other, so no other worker runs them.
    """
    record = claim(backend, job_id)
    if record is None:
        return
    mates = _batch_mates(backend, record, settings, engines)
    if mates:
        execute_batch(backend, [record, *mates], settings, engines)
    else:
        execute(backend, record, settings, engines)


def _batch_mates(
    backend: Backend, record: JobRecord, settings: ServiceSettings, engines: Engines
) -> list[JobRecord]:
    if settings.max_batch < 2 or record.options.method != "fast" or record.style_upload:
        return []
    if record.kind != "image":
        return []
    if engines.device.type == "cpu" and not settings.batch_on_cpu:
        return []  # measured: 8 × 512² at once is no faster on a CPU and peaks at 2.2 GB RSS
    mates: list[JobRecord] = []
    for other in backend.jobs.queued(4 * settings.max_batch):
        if len(mates) + 1 >= settings.max_batch:
            break
        if other.options == record.options and not other.style_upload and other.kind == "image":
            claimed = claim(backend, other.id)
            if claimed is not None:
                mates.append(claimed)
    return mates


def execute_batch(
    backend: Backend, records: list[JobRecord], settings: ServiceSettings, engines: Engines
) -> None:
    """Run claimed fast jobs with equal options as batches; on any failure, one by one."""
    options = records[0].options
    assert options.style is not None
    try:
        with _heartbeat(backend, records, settings):
            side = _output_side(ENGINES[options.method].split(dict(options.options))[1])
            contents = [_input(backend, r, "content", settings, reduce_to=side) for r in records]
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
    content = _input(backend, record, "content", settings, reduce_to=_output_side(engine_options))
    style = _style(backend, record, settings)
    if hasattr(engine_options, "preview_every"):  # about eight previews over a run
        values["preview_every"] = max(1, engine_options.iterations // 8)
    return stylize_tensor(
        content,
        style,
        method=options.method,
        progress=_Reporter(backend, record, settings),
        engines=engines,
        **values,
    )


def _style(backend: Backend, record: JobRecord, settings: ServiceSettings) -> Any:
    """The job's style as its engine takes it: a trained network's id, or a painting."""
    options = record.options
    if record.style_upload:
        return _input(backend, record, "style", settings)
    assert options.style is not None
    if is_personal(options.style):
        return personal_style(backend, options.style, ENGINES[options.method].styles == "trained")
    entry = zoo.find(zoo.split_spec(options.style)[0])
    if entry is None:
        raise InvalidParameterError(f"style: unknown style id {options.style!r}")
    # A trained-style engine runs the network; the others read the painting itself.
    if ENGINES[options.method].styles == "trained":
        return options.style
    return as_tensor(entry.painting_path)


def personal_style(backend: Backend, style_id: str, trained: bool) -> Any:
    """A personal style as an engine takes it: its network's local file (fast), or its
    painting (the engines that read paintings)."""
    style = backend.personal.get(style_id)
    if style is None:
        raise InvalidParameterError(f"style: the personal style {style_id!r} was deleted")
    if trained:
        return str(backend.personal.model_path(style))
    painting = backend.personal.file(style_id, "thumbnail.jpg")
    if painting is None:
        raise InvalidParameterError(f"style: the personal style {style_id!r} was deleted")
    return as_tensor(painting)


def _stylize_video(
    backend: Backend, record: JobRecord, settings: ServiceSettings, engines: Engines
) -> None:
    """Stylize the job's clip, file to file, and store the result (see the module docstring)."""
    from restyle.video import stylize_video

    options = record.options
    style = _style(backend, record, settings)
    reporter = _Reporter(backend, record, settings)
    with (
        backend.blobs.as_file(record.id, "content") as source,
        backend.blobs.work_dir(record.id) as work,
    ):
        if source is None:
            raise JobStopped(JobStatus.FAILED, JobError(code="input_lost", message="input expired"))
        output = work / f"result.{options.format}"
        try:
            stylize_video(
                source,
                output,
                style,
                method=options.method,
                progress=reporter,
                engines=engines,
                limits=_limits(settings),
                **options.options,
            )
        except RestyleError as exc:
            # The library names its files: here the store's paths, which clients must not see.
            names = {str(source): "content", str(output): "result", str(work): "work"}
            raise _renamed(exc, names) from exc
        _stop_if_abandoned(backend, record)
        backend.blobs.put_file(record.id, "result", output)


def _drop_video_files(backend: Backend, job_id: str) -> None:
    """A cancelled video or refinement job keeps nothing: its upload (up to `max_video_bytes`;
    a refinement's painting) and its last preview go at once, not when the job expires. (The
    cancel route drops them too; a preview written after it is dropped here.)"""
    for name in ("content", "style", "preview"):
        backend.blobs.delete(job_id, name)


def _renamed(exc: RestyleError, names: dict[str, str]) -> RestyleError:
    """`exc` again, with each path of `names` in its message replaced by its name."""
    message = str(exc)
    for path, name in names.items():
        message = message.replace(repr(path), name).replace(path, name)
    return type(exc)(message)


def _input(
    backend: Backend,
    record: JobRecord,
    name: str,
    settings: ServiceSettings,
    *,
    reduce_to: int | None = None,
) -> Any:
    """A job's uploaded image, decoded with the server's limits; with `reduce_to` (the output's
    long side), decoded no larger than a clean resize to it needs (`imaging.load_image`)."""
    data = backend.blobs.get(record.id, name)
    if data is None:
        raise JobStopped(JobStatus.FAILED, JobError(code="input_lost", message="input expired"))
    return as_tensor(data, limits=_limits(settings), reduce_to=reduce_to)


def _output_side(engine_options: Any) -> int | None:
    """The long side the engine resizes the photo to; None (or 0) for the photo's own size, which
    the API has already bounded by `default_size`."""
    size = getattr(engine_options, "size", None)
    return size if isinstance(size, int) and size > 0 else None


def _store_result(backend: Backend, record: JobRecord, result: torch.Tensor) -> None:
    encoded = encode_image(result, format=record.options.format)
    backend.blobs.put(record.id, "result", encoded)


def _limits(settings: ServiceSettings) -> ImageLimits:
    return ImageLimits(
        max_bytes=max(settings.max_upload_bytes, settings.max_style_upload_bytes),
        max_pixels=settings.max_upload_pixels,
    )


class _Reporter:
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


@contextlib.contextmanager
def _heartbeat(
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


def _preview(tensor: torch.Tensor) -> bytes:
    image = tensor_to_image(tensor)
    image.thumbnail((_PREVIEW_SIDE, _PREVIEW_SIDE))
    return encode_image(image, format="JPEG", quality=85)
