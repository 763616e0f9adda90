"""A job's inputs as its engine takes them: the uploaded photo decoded with the server's limits,
the style as a trained network's id or file, or as a painting."""

from __future__ import annotations

from typing import Any

from restyle import zoo
from restyle.engines.registry import ENGINES
from restyle.errors import InvalidParameterError
from restyle.imaging import ImageLimits, as_tensor
from restyle.service.jobs import JobError, JobRecord, JobStatus, JobStopped
from restyle.service.personal import is_personal
from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import Backend


def job_input(
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
    return as_tensor(data, limits=image_limits(settings), reduce_to=reduce_to)


def job_style(backend: Backend, record: JobRecord, settings: ServiceSettings) -> Any:
    """The job's style as its engine takes it: a trained network's id, or a painting."""
    options = record.options
    if record.style_upload:
        return job_input(backend, record, "style", settings)
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


def output_side(engine_options: Any) -> int | None:
    """The long side the engine resizes the photo to; None (or 0) for the photo's own size, which
    the API has already bounded by `default_size`."""
    size = getattr(engine_options, "size", None)
    return size if isinstance(size, int) and size > 0 else None


def image_limits(settings: ServiceSettings) -> ImageLimits:
    return ImageLimits(
        max_bytes=max(settings.max_upload_bytes, settings.max_style_upload_bytes),
        max_pixels=settings.max_upload_pixels,
    )
