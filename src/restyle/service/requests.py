"""Reading a stylization request: the multipart form, its images, its options.

Everything a client sends is checked here, before a job exists: the body's size, time and
completeness (while it streams), the content type, each image and every option against the
server's limits. Images are not decoded here: their headers are (format, dimensions, mode,
decompression bombs; `restyle.imaging.inspect_image`), since a 100 kB upload can decode to
gigabytes; the workers decode them. From the photo's dimensions each job gets its budget: an
output no larger than `default_size` unless a size is asked for, and for gatys at most
`max_gatys_megapixel_iterations` of work.

A video (`content` recognised as one by its first bytes, whatever its name) is copied to a file
as it streams in (never held in memory) and checked from its container before a job exists:
its header (size, duration) and its packets, demuxed and counted but not decoded, against the
`max_video_*` settings. PyAV is imported only then.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import ValidationError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from restyle import zoo
from restyle.engines.registry import ENGINES
from restyle.errors import (
    ImageTooLargeError,
    InvalidImageError,
    InvalidParameterError,
    InvalidVideoError,
)
from restyle.imaging import ImageHeader, ImageLimits, check_painting_shape, inspect_image
from restyle.options import OptionSpec, option_specs
from restyle.service.errors import ApiError, validation_message
from restyle.service.jobs import STYLE_ID_PATTERN, JobOptions
from restyle.service.personal import is_personal, valid_id
from restyle.service.settings import ServiceSettings
from restyle.video.config import SIGNATURE_BYTES, VideoOptions, has_video_signature

if TYPE_CHECKING:
    from restyle.video.io import VideoInfo

REQUEST_FIELDS = frozenset({"content", "style", "style_image", "method", "format", "response"})
"""The form's own fields; the rest are the engines' public options (`option_fields`)."""


def option_fields() -> dict[str, dict[str, OptionSpec]]:
    """Each engine's public options by name: what a form may carry besides REQUEST_FIELDS."""
    return {
        name: {spec.name: spec for spec in engine.public_option_specs()}
        for name, engine in ENGINES.items()
    }


def video_option_fields() -> dict[str, OptionSpec]:
    """The options a video job may set besides its engine's (`VideoOptions`' public ones)."""
    return {spec.name: spec for spec in option_specs(VideoOptions) if spec.public}


def takes_video(method: str) -> bool:
    """Whether jobs of engine `method` may be videos: the interactive engines (gatys optimises
    every frame, minutes each on a CPU)."""
    return ENGINES[method].interactive


IMAGE_FORMATS = ("png", "jpeg", "webp")
VIDEO_FORMATS = ("mp4", "webm")
"""A video job's containers: H.264 in MP4 (the default), VP9 in WebM."""

FORM_FIELDS = (
    REQUEST_FIELDS
    | {name for fields in option_fields().values() for name in fields}
    | set(video_option_fields())
)
_FORM_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class StylizeRequest:
    options: JobOptions
    content: bytes | Path
    """The photo's bytes, or the path of a video's file (`discard` removes it, unless a backend
    has taken it into its store)."""
    style_image: bytes | None
    response: str  # "image" or "json" (base64), for POST /api/stylize
    frames: int = 0
    """A video's frames, as counted from its container."""

    @property
    def is_video(self) -> bool:
        return isinstance(self.content, Path)

    def discard(self) -> None:
        """Remove the video's file, if it is still there (a job not admitted)."""
        if isinstance(self.content, Path):
            self.content.unlink(missing_ok=True)


async def read_stylize_request(
    request: Request, settings: ServiceSettings, *, scratch: Path | None = None
) -> StylizeRequest:
    """The request's form, checked. A video is accepted only with `scratch`, the folder its
    file is copied to (the backend's `scratch_dir`); without one it is a 400."""
    limits = {
        "content": (settings.max_upload_bytes, settings.max_video_bytes),
        "style_image": (settings.max_style_upload_bytes, settings.max_style_upload_bytes),
    }
    form = await _read_form(request, max_files=2, max_fields=len(FORM_FIELDS), limits=limits)
    try:
        return await _parse(form, settings, scratch)
    finally:
        await form.close()


async def read_painting(request: Request, settings: ServiceSettings) -> bytes:
    """A form with one file, `style_image` (the live mode's painting), checked like any upload."""
    limits = {"style_image": (settings.max_style_upload_bytes,) * 2}
    form = await _read_form(request, max_files=1, max_fields=1, limits=limits)
    try:
        upload = form.get("style_image")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "missing_style_image", "field 'style_image': a painting file")
        data, _ = await _read_image(
            upload, "style_image", settings.max_style_upload_bytes, settings
        )
        return data
    finally:
        await form.close()


REFINE_FIELDS = frozenset({"painting", "painting_style", "minutes", "name"})
MAX_NAME_CHARS = 80


@dataclass(frozen=True)
class RefineRequest:
    """POST /api/refines, checked: a painting (uploaded, or a zoo style's), a budget, a name."""

    painting: bytes | None
    painting_style: str | None
    minutes: float
    name: str


async def read_refine_request(request: Request, settings: ServiceSettings) -> RefineRequest:
    """The refinement's form: `painting` (a file) or `painting_style` (a zoo style id), and
    optionally `minutes` (the time budget, at most `refine_max_minutes`) and `name`."""
    limits = {"painting": (settings.max_style_upload_bytes,) * 2}
    form = await _read_form(request, max_files=1, max_fields=len(REFINE_FIELDS), limits=limits)
    try:
        unknown = set(form.keys()) - REFINE_FIELDS
        if unknown:
            raise ApiError(
                400,
                "invalid_parameter",
                f"unknown field(s) {sorted(unknown)}; expected {sorted(REFINE_FIELDS)}",
            )
        upload = form.get("painting")
        style = form.get("painting_style")
        if upload is not None and not isinstance(upload, UploadFile):
            raise ApiError(400, "invalid_parameter", "field 'painting' must be a file")
        if style is not None and not isinstance(style, str):
            raise ApiError(400, "invalid_parameter", "field 'painting_style' must be a style id")
        if (upload is None) == (style is None):
            raise ApiError(
                400,
                "invalid_style",
                "give exactly one of 'painting' (a file) or 'painting_style' (a style id from "
                "/api/styles)",
            )
        if style is not None:
            entry = zoo.find(style) if re.fullmatch(STYLE_ID_PATTERN, style) else None
            if entry is None or ":" in style:
                known = ", ".join(e.id for e in zoo.entries())
                raise ApiError(
                    400, "unknown_style", f"painting_style: no style {style!r}; known: {known}"
                )
        painting = None
        if isinstance(upload, UploadFile):
            painting, _ = await _read_image(
                upload, "painting", settings.max_style_upload_bytes, settings
            )
        return RefineRequest(
            painting=painting,
            painting_style=style,
            minutes=_minutes(form.get("minutes"), settings),
            name=style_name(form.get("name")),
        )
    finally:
        await form.close()


def _minutes(value: Any, settings: ServiceSettings) -> float:
    if value is None:
        return min(settings.refine_default_minutes, settings.refine_max_minutes)
    try:
        minutes = float(value) if isinstance(value, str) else math.nan
    except ValueError:
        minutes = math.nan
    if not math.isfinite(minutes) or minutes <= 0:
        raise ApiError(400, "invalid_parameter", f"minutes: a number above 0, got {value!r}")
    if minutes > settings.refine_max_minutes:
        raise ApiError(
            400,
            "over_budget",
            f"minutes: {minutes:g} is over this server's limit of "
            f"{settings.refine_max_minutes:g} (RESTYLE_REFINE_MAX_MINUTES)",
        )
    return minutes


def style_name(value: Any) -> str:
    """A personal style's name as given (a refinement's `name`, a rename): whitespace runs
    become one space; printable text of at most MAX_NAME_CHARS, else a 400."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, "invalid_parameter", "field 'name' must be text")
    name = " ".join(value.split())
    if len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise ApiError(
            400, "invalid_parameter", f"name: printable text, at most {MAX_NAME_CHARS} characters"
        )
    return name


async def _read_form(
    request: Request, *, max_files: int, max_fields: int, limits: Mapping[str, tuple[int, int]]
) -> FormData:
    """The multipart form of `request`; the body's size, time and completeness are checked as
    it streams (`BodyLimitMiddleware`), which raises its ApiErrors through Starlette's parser,
    and so is each file's size (`limits`: field → its limit as a photo, as a video)."""
    content_type = request.headers.get("content-type", "")
    # The media type parsed, not a prefix: "multipart/form-dataX" is not multipart.
    media_type, _ = parse_options_header(content_type)
    if media_type != b"multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"expected a multipart/form-data body, got {content_type or 'no content type'!r}",
        )
    try:
        async with contextlib.aclosing(request.stream()) as stream:
            parser = _BoundedMultiPartParser(
                request.headers,
                stream,
                limits=limits,
                max_files=max_files,
                max_fields=max_fields,
                max_part_size=4096,
            )
            return await parser.parse()
    except ApiError:
        raise
    except ClientDisconnect as exc:
        raise _truncated() from exc
    except Exception as exc:  # Starlette reports a malformed multipart body in several ways
        detail = getattr(exc, "message", None) or str(exc)
        raise ApiError(400, "bad_request", f"malformed multipart body: {detail}") from exc


class _BoundedMultiPartParser(MultiPartParser):
    """Starlette's multipart parser, with each file bounded while it streams in (Starlette
    bounds the other fields only): a 413 `too_large`, the connection closed, as soon as a file
    passes its limit, before the rest of the body is read. A file's limit is its field's photo
    limit, or its video limit once its first bytes are a video's (`limits`; until those bytes
    have come, the larger). The request body as a whole is bounded by `BodyLimitMiddleware`.
    """

    def __init__(self, *args: Any, limits: Mapping[str, tuple[int, int]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        # A file in any other field is refused by the form's checks: the smallest limit here.
        smallest = min(min(pair) for pair in limits.values())
        self._other = (smallest, smallest)
        self._received = 0
        self._head = b""

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._received, self._head = 0, b""

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._current_part
        if part.file is not None:
            self._received += end - start
            missing = SIGNATURE_BYTES - len(self._head)
            if missing > 0:
                self._head += data[start : min(end, start + missing)]
            photo, video = self._limits.get(part.field_name, self._other)
            if len(self._head) < SIGNATURE_BYTES:
                limit, is_video = max(photo, video), False
            else:
                is_video = has_video_signature(self._head)
                limit = video if is_video else photo
            if self._received > limit:
                if is_video:
                    raise _video_too_large(limit)
                raise ApiError(
                    413,
                    "too_large",
                    f"{part.field_name}: over the upload limit of {limit} bytes",
                    headers=_CLOSE,
                )
        super().on_part_data(data, start, end)


async def _parse(form: FormData, settings: ServiceSettings, scratch: Path | None) -> StylizeRequest:
    unknown = set(form.keys()) - FORM_FIELDS
    if unknown:
        raise ApiError(
            400,
            "invalid_parameter",
            f"unknown field(s) {sorted(unknown)}; expected {sorted(FORM_FIELDS)}",
        )
    content_file = form.get("content")
    if not isinstance(content_file, UploadFile):
        raise ApiError(400, "missing_content", "field 'content': the photo file is required")
    style_file = form.get("style_image")
    if style_file is not None and not isinstance(style_file, UploadFile):
        raise ApiError(400, "invalid_parameter", "field 'style_image' must be a file")
    values: dict[str, str] = {
        k: v for k, v in form.items() if isinstance(v, str) and k not in ("response", "content")
    }
    for key, value in values.items():
        if value.strip() == "":
            raise ApiError(400, "invalid_parameter", f"field {key!r} is empty")
    response = str(form.get("response") or "image")
    if response not in ("image", "json"):
        raise ApiError(400, "invalid_parameter", f"response: 'image' or 'json', got {response!r}")
    head = await content_file.read(SIGNATURE_BYTES)
    await content_file.seek(0)
    video = has_video_signature(head)
    if video and scratch is None:
        raise ApiError(
            400,
            "invalid_parameter",
            "content: a video is stylized as a job; send it to POST /api/jobs",
        )
    options = _options(values, settings, has_style_image=style_file is not None, video=video)
    content: bytes | Path
    frames = 0
    if video:
        assert scratch is not None
        content, info = await _read_video(content_file, settings, scratch)
        frames = info.frames
    else:
        content, photo = await _read_image(
            content_file, "content", settings.max_upload_bytes, settings
        )
        options = budgeted(options, photo, settings)
    try:
        if video:
            options = budgeted_video(options, info, settings)
        style = None
        if style_file is not None:
            style, _ = await _read_image(
                style_file, "style_image", settings.max_style_upload_bytes, settings
            )
    except BaseException:
        if isinstance(content, Path):
            content.unlink(missing_ok=True)
        raise
    return StylizeRequest(
        options=options, content=content, style_image=style, response=response, frames=frames
    )


def _options(
    values: dict[str, str], settings: ServiceSettings, *, has_style_image: bool, video: bool = False
) -> JobOptions:
    method = values.pop("method", JobOptions.model_fields["method"].default)
    if method not in ENGINES:
        raise ApiError(
            400,
            "invalid_parameter",
            f"method: unknown engine {method!r}; available: {', '.join(ENGINES)}",
        )
    engine = ENGINES[method]
    if video and not takes_video(method):
        raise ApiError(
            400,
            "invalid_parameter",
            f"method: the {method} engine optimises every frame (minutes each on a CPU), so it "
            "does not take videos; use "
            + " or ".join(repr(name) for name in ENGINES if takes_video(name)),
        )
    request: dict[str, str] = {k: values.pop(k) for k in ("style", "format") if k in values}
    _check_format(request, video)
    video_specs = video_option_fields()
    video_values = {k: values.pop(k) for k in list(values) if k in video_specs}
    if video_values and not video:
        raise ApiError(
            400,
            "invalid_parameter",
            f"{sorted(video_values)[0]}: an option of video jobs, and the content is an image",
        )
    specs = option_fields()[method]
    misplaced = sorted(set(values) - set(specs))
    if misplaced:
        raise ApiError(
            400,
            "invalid_parameter",
            f"{misplaced[0]}: not an option of the {method} engine; its options: "
            f"{', '.join(sorted(specs))}",
        )
    try:
        parsed = {name: specs[name].parse(text) for name, text in values.items()}
        _check_limits(parsed, method, settings, video=video)
        engine.split(parsed)  # the engine's option classes validate every value
        video_parsed = {name: video_specs[name].parse(text) for name, text in video_values.items()}
        VideoOptions(**video_parsed)  # the declaration validates the values
    except InvalidParameterError as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from exc
    parsed |= video_parsed
    try:
        options = JobOptions.model_validate({**request, "method": method, "options": parsed})
    except ValidationError as exc:
        message = validation_message(exc.errors()[0], quote_input=True)
        raise ApiError(400, "invalid_parameter", message) from exc
    if has_style_image == (options.style is not None):
        raise ApiError(
            400,
            "invalid_style",
            "give exactly one of 'style' (a style id from /api/styles) or 'style_image' (a file)",
        )
    if is_personal(options.style):  # its owner is checked by the route, which has the token
        assert options.style is not None
        if not valid_id(options.style):
            raise ApiError(
                400, "unknown_style", f"style: {options.style!r} is not a personal style id"
            )
    elif options.style is not None:
        style_id, variant = zoo.split_spec(options.style)
        entry = zoo.find(style_id)
        if entry is None:
            known = ", ".join(e.id for e in zoo.entries())
            raise ApiError(400, "unknown_style", f"style: no style {style_id!r}; known: {known}")
        if variant is not None and variant not in entry.variants:
            raise ApiError(400, "unknown_style", f"style: {style_id!r} has no {variant!r} network")
    if engine.styles == "trained" and has_style_image:
        raise ApiError(
            400,
            "invalid_style",
            f"method {method!r} runs a trained style (field 'style'); for an uploaded painting "
            "use a method that takes any painting: "
            + ", ".join(repr(e.name) for e in ENGINES.values() if e.styles == "painting"),
        )
    if not engine.installed():
        raise ApiError(
            400, "method_unavailable", f"method {method!r}: its model is not installed here"
        )
    return options


def _check_format(request: dict[str, str], video: bool) -> None:
    """A video job writes a video container (mp4 unless asked), an image job an image."""
    wanted = request.get("format")
    formats, kind = (VIDEO_FORMATS, "a video") if video else (IMAGE_FORMATS, "an image")
    if wanted is None:
        if video:
            request["format"] = VIDEO_FORMATS[0]
        return
    if wanted not in formats and wanted in (*IMAGE_FORMATS, *VIDEO_FORMATS):
        raise ApiError(
            400,
            "invalid_parameter",
            f"format: the content is {kind}, so the result is one of {', '.join(formats)}; "
            f"got {wanted!r}",
        )


def engine_description(method: str, settings: ServiceSettings) -> dict[str, Any]:
    """The engine and its public options' JSON schema with this server's limits (what the
    web page builds its controls from, and what `_check_limits` enforces)."""
    described = ENGINES[method].describe()
    properties = described["options"]["properties"]
    bounds = server_bounds(method, settings)
    for name, (low, high) in bounds.items():
        schema = properties.get(name)
        if schema is None:
            continue
        target = schema["anyOf"][0] if "anyOf" in schema else schema
        target["minimum"] = max(low, target.get("minimum", low))
        target["maximum"] = min(high, target.get("maximum", high))
        if isinstance(schema.get("default"), int) and schema["default"] > target["maximum"]:
            schema["default"] = target["maximum"]
    described["limits"] = job_budget(method, settings)
    described["video_options"] = None
    described["video_formats"] = []
    if takes_video(method):
        video = {name: spec.json_schema() for name, spec in video_option_fields().items()}
        described["video_options"] = {
            "type": "object",
            "additionalProperties": False,
            "properties": video,
        }
        described["video_formats"] = list(VIDEO_FORMATS)
    return described


def job_budget(method: str, settings: ServiceSettings) -> dict[str, float]:
    """The budget `budgeted` applies, as `GET /api/engines` shows it beside the options."""
    budget: dict[str, float] = {
        "default_size": min(settings.default_size, size_limit(method, settings))
    }
    if method == "gatys":
        budget["max_megapixel_iterations"] = settings.max_gatys_megapixel_iterations
    if takes_video(method):
        budget |= {
            "max_video_bytes": settings.max_video_bytes,
            "max_video_seconds": settings.max_video_seconds,
            "max_video_frames": settings.max_video_frames,
            "max_video_pixels": settings.max_video_pixels,
            "max_video_size": min(settings.max_video_size, size_limit(method, settings)),
        }
    return budget


def size_limit(method: str, settings: ServiceSettings, *, video: bool = False) -> int:
    """The largest output long side this server accepts for `method` (for a video's frames)."""
    if video:
        return min(settings.max_video_size, settings.max_size)
    return settings.max_gatys_size if method == "gatys" else settings.max_size


def server_bounds(
    method: str, settings: ServiceSettings, *, video: bool = False
) -> dict[str, tuple[int, int]]:
    """This server's limits on options, tighter than the engines': they bound a job's cost."""
    return {
        "size": (16, size_limit(method, settings, video=video)),
        "iterations": (1, settings.max_iterations),
    }


def _check_limits(
    parsed: dict[str, Any], method: str, settings: ServiceSettings, *, video: bool = False
) -> None:
    bounds = server_bounds(method, settings, video=video)
    for name, (low, high) in bounds.items():
        value = parsed.get(name)
        if value is not None and not (isinstance(value, int) and low <= value <= high):
            kind = " videos" if video else ""
            raise InvalidParameterError(
                f"{name}: {low}..{high} for {method}{kind} on this server, got {value!r}"
            )
    # No size given: the engine's own default when this server allows it, else its largest.
    default = getattr(option_fields()[method].get("size"), "default", None)
    if parsed.get("size") is None and isinstance(default, int) and default > bounds["size"][1]:
        parsed["size"] = bounds["size"][1]


def budgeted(options: JobOptions, photo: ImageHeader, settings: ServiceSettings) -> JobOptions:
    """`options` within this server's budget for a photo of this size: no size (or 0, the
    photo's own) means at most `default_size`; a gatys job's output megapixels × iterations
    must stay under `max_gatys_megapixel_iterations` (400 `over_budget`)."""
    method = options.method
    values = dict(options.options)
    specs = option_fields()[method]
    size = values.get("size", getattr(specs.get("size"), "default", None))
    long_side = max(photo.width, photo.height)
    cap = min(settings.default_size, size_limit(method, settings))
    if "size" in specs and not size and long_side > cap:
        values["size"] = size = cap
    if method == "gatys":
        iterations = values.get("iterations", getattr(specs.get("iterations"), "default", 0))
        scale = (size or long_side) / long_side
        megapixels = photo.width * photo.height * scale * scale / 1e6
        cost = megapixels * iterations
        if cost > settings.max_gatys_megapixel_iterations:
            raise ApiError(
                400,
                "over_budget",
                f"size, iterations: {megapixels:.2f} Mpx output × {iterations} iterations = "
                f"{cost:.0f} Mpx·iterations, over this server's "
                f"{settings.max_gatys_megapixel_iterations:g} "
                "(RESTYLE_MAX_GATYS_MEGAPIXEL_ITERATIONS); ask for a smaller size or fewer "
                "iterations",
            )
    return options.model_copy(update={"options": values})


def budgeted_video(options: JobOptions, clip: VideoInfo, settings: ServiceSettings) -> JobOptions:
    """`options` for this clip: no size (or 0, the clip's own) means at most `max_video_size`.
    (Any clip's sound goes into either container: what WebM cannot hold is re-encoded to Opus.)"""
    values = dict(options.options)
    cap = size_limit(options.method, settings, video=True)
    if not values.get("size") and max(clip.width, clip.height) > cap:
        values["size"] = cap
    return options.model_copy(update={"options": values})


async def _read_video(
    upload: UploadFile, settings: ServiceSettings, scratch: Path
) -> tuple[Path, VideoInfo]:
    """The upload copied to a file in `scratch` (a chunk at a time), and its container checked
    against this server's video limits; the file is removed when it is refused."""
    limit = settings.max_video_bytes
    if upload.size is not None and upload.size > limit:
        raise _video_too_large(limit)
    path = await asyncio.to_thread(_spool, upload.file, scratch, limit)
    try:
        if path.stat().st_size > limit:
            raise _video_too_large(limit)
        info = await asyncio.to_thread(_inspect_clip, path, settings)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, info


def _video_too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"content: over the video upload limit of {limit} bytes (RESTYLE_MAX_VIDEO_BYTES)",
        headers=_CLOSE,
    )


def _spool(source: IO[bytes], scratch: Path, limit: int) -> Path:
    """Copy `source` into a new file in `scratch`, at most `limit` + 1 bytes (one more tells
    that it was over)."""
    scratch.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".upload-", suffix=".video", dir=scratch)
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as target:
            source.seek(0)
            remaining = limit + 1
            while remaining > 0:
                chunk = source.read(min(1 << 20, remaining))
                if not chunk:
                    break
                target.write(chunk)
                remaining -= len(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _inspect_clip(path: Path, settings: ServiceSettings) -> VideoInfo:
    """The clip's container against the limits: its header first (frame size, duration, the
    frames it declares), then its packets counted (a truncated file is found here, and a header
    that understates its frames)."""
    from restyle.video.io import VideoSource, inspect_video  # PyAV: once a video has come

    try:
        with VideoSource(path) as clip:
            _check_video(clip.info, settings, counted=False)
        info = inspect_video(path, stop_after=settings.max_video_frames)
    except InvalidVideoError as exc:
        # The library names the file: here a scratch path, which the client must not see.
        message = str(exc).replace(repr(str(path)), "content").replace(str(path), "content")
        raise ApiError(400, "invalid_video", message) from None
    _check_video(info, settings, counted=True)
    return info


def _check_video(info: VideoInfo, settings: ServiceSettings, *, counted: bool) -> None:
    pixels = info.width * info.height
    if pixels > settings.max_video_pixels:
        raise ApiError(
            413,
            "video_too_large",
            f"content: {info.width}x{info.height} frames ({pixels} pixels) are over this "
            f"server's limit of {settings.max_video_pixels} (RESTYLE_MAX_VIDEO_PIXELS)",
        )
    seconds = info.duration or (float(info.frames / info.rate) if info.rate else 0.0)
    if seconds > settings.max_video_seconds:
        raise ApiError(
            413,
            "video_too_long",
            f"content: {seconds:.1f} s of video, over this server's limit of "
            f"{settings.max_video_seconds:g} s (RESTYLE_MAX_VIDEO_SECONDS)",
        )
    if info.frames > settings.max_video_frames:
        more = "more than " if counted else ""
        shown = settings.max_video_frames if counted else info.frames
        raise ApiError(
            413,
            "video_too_long",
            f"content: {more}{shown} frames, over this server's limit of "
            f"{settings.max_video_frames} (RESTYLE_MAX_VIDEO_FRAMES)",
        )


async def _read_image(
    upload: UploadFile, field: str, max_bytes: int, settings: ServiceSettings
) -> tuple[bytes, ImageHeader]:
    """The upload's bytes and header; the pixels are left for a worker to decode."""
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(413, "too_large", f"{field}: over the upload limit of {max_bytes} bytes")
    if not data:
        raise ApiError(400, "invalid_image", f"{field}: the file is empty")
    limits = ImageLimits(max_bytes=max_bytes, max_pixels=settings.max_upload_pixels)
    try:
        header = await asyncio.to_thread(inspect_image, data, limits=limits)
    except ImageTooLargeError as exc:
        raise ApiError(413, "image_too_large", f"{field}: {exc}") from exc
    except InvalidImageError as exc:
        raise ApiError(400, "invalid_image", f"{field}: {exc}") from exc
    if field != "content":  # a painting: one too thin for every engine is refused now, not run
        check_painting_shape((header.height, header.width), name=field)  # a 400 invalid_image
    return data, header


class BodyLimitMiddleware:
    """Check request bodies while they stream: at most `limit` bytes (413, chunked bodies
    included), all of it within `timeout` seconds of the request's start (408: a client that
    drips its body, or stops, must not hold a connection), and as long as it said it was (400
    `truncated_request`: a Content-Length the client did not send in full).

    The errors are raised from `receive`, so they reach the route that reads the body (and,
    through it, the JSON error handlers); every one closes the connection, whose unread body
    is of no use. Once the body is complete `receive` is left alone: server-sent event streams
    wait on it for the client's disconnection for as long as they run.
    """

    def __init__(self, app: ASGIApp, limit: int, timeout: float) -> None:
        self.app, self.limit, self.timeout = app, limit, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            raise _too_large(self.limit)
        deadline = asyncio.get_running_loop().time() + self.timeout
        received = 0
        complete = False

        async def checked_receive() -> Message:
            nonlocal received, complete
            if complete:
                return await receive()
            message = await self._receive_by(receive, deadline, received, declared)
            if message["type"] == "http.disconnect":
                raise _truncated(received, declared)
            received += len(message.get("body", b""))
            if received > self.limit:
                raise _too_large(self.limit)
            complete = not message.get("more_body", False)
            if complete and declared is not None and received < declared:
                raise _truncated(received, declared)
            return message

        await self.app(scope, checked_receive, send)

    async def _receive_by(
        self, receive: Receive, deadline: float, received: int, declared: int | None
    ) -> Message:
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(max(remaining, 0)):
                return await receive()
        except TimeoutError:
            of = f" of {declared}" if declared is not None else ""
            raise ApiError(
                408,
                "request_timeout",
                f"the request body did not arrive within {self.timeout:g} s "
                f"({received}{of} bytes came)",
                headers=_CLOSE,
            ) from None


_CLOSE = {"connection": "close"}


def _content_length(scope: Scope) -> int | None:
    value = dict(scope.get("headers", [])).get(b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413, "too_large", f"the request body is over the limit of {limit} bytes", headers=_CLOSE
    )


def _truncated(received: int | None = None, declared: int | None = None) -> ApiError:
    got = "" if received is None else f": {received} of {declared or 'more'} bytes came"
    return ApiError(400, "truncated_request", f"the request body ended early{got}", headers=_CLOSE)


def body_limit(settings: ServiceSettings) -> int:
    """The largest request body: a photo or a video, a painting, and the form around them."""
    content = max(settings.max_upload_bytes, settings.max_video_bytes)
    return content + settings.max_style_upload_bytes + _FORM_OVERHEAD
