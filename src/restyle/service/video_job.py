"""A video job: its clip streamed from file to file through `restyle.video.stylize_video`
(imported by the first video job: PyAV and OpenCV stay out of a worker until then).

The upload is read where the store keeps it (embedded) or from a temporary copy (Redis), the
result is written in the job's work folder and moved into the store. Progress is counted in
frames, and the latest stylized frame becomes the job's preview at most once a second.
"""

from __future__ import annotations

from restyle.engines.holder import Engines
from restyle.errors import RestyleError
from restyle.service.job_inputs import image_limits, job_style
from restyle.service.job_progress import ProgressReporter, stop_if_abandoned
from restyle.service.jobs import JobError, JobRecord, JobStatus, JobStopped
from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import Backend


def stylize_video_job(
    backend: Backend, record: JobRecord, settings: ServiceSettings, engines: Engines
) -> None:
    """Stylize the job's clip, file to file, and store the result (see the module docstring)."""
    from restyle.video import stylize_video

    options = record.options
    style = job_style(backend, record, settings)
    reporter = ProgressReporter(backend, record, settings)
    blobs = backend.blobs
    with blobs.as_file(record.id, "content") as source, blobs.work_dir(record.id) as work:
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
                limits=image_limits(settings),
                **options.options,
            )
        except RestyleError as exc:
            # The library names its files: here the store's paths, which clients must not see.
            names = {str(source): "content", str(output): "result", str(work): "work"}
            raise _renamed(exc, names) from exc
        stop_if_abandoned(backend, record)
        blobs.put_file(record.id, "result", output)


def _renamed(exc: RestyleError, names: dict[str, str]) -> RestyleError:
    """`exc` again, with each path of `names` in its message replaced by its name."""
    message = str(exc)
    for path, name in names.items():
        message = message.replace(repr(path), name).replace(path, name)
    return type(exc)(message)
