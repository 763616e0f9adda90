"""Reading a stylization request: the multipart form, its images, its options.

Everything a client sends is checked here, before a job exists: the body's size, time and
completeness (while it streams), the content type, each image and every option against the
server's limits. Images are not decoded here: their headers are (format, dimensions, mode,
decompression bombs; `restyle.imaging.inspect_image`), since a 100 kB upload can decode to
gigabytes; the workers decode them. From the photo's dimensions each job gets its budget: an
output no larger than `default_size` unless a size is asked for, and for gatys at most
`max_gatys_megapixel_iterations` of work.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from restyle import zoo
from restyle.engines.registry import ENGINES
from restyle.errors import ImageTooLargeError, InvalidImageError, InvalidParameterError
from restyle.imaging import ImageHeader, ImageLimits, inspect_image
from restyle.options import OptionSpec
from restyle.service.errors import ApiError
from restyle.service.jobs import JobOptions
from restyle.service.settings import ServiceSettings

REQUEST_FIELDS = frozenset({"content", "style", "style_image", "method", "format", "response"})
"""The form's own fields; the rest are the engines' public options (`option_fields`)."""


def option_fields() -> dict[str, dict[str, OptionSpec]]:
    """Each engine's public options by name: what a form may carry besides REQUEST_FIELDS."""
    return {
        name: {spec.name: spec for spec in engine.public_option_specs()}
        for name, engine in ENGINES.items()
    }


FORM_FIELDS = REQUEST_FIELDS | {name for fields in option_fields().values() for name in fields}
_FORM_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class StylizeRequest:
    options: JobOptions
    content: bytes
    style_image: bytes | None
    response: str  # "image" or "json" (base64), for POST /api/stylize


async def read_stylize_request(request: Request, settings: ServiceSettings) -> StylizeRequest:
    form = await _read_form(request, max_files=2, max_fields=len(FORM_FIELDS))
    try:
        return await _parse(form, settings)
    finally:
        await form.close()


async def read_painting(request: Request, settings: ServiceSettings) -> bytes:
    """A form with one file, `style_image` (the live mode's painting), checked like any upload."""
    form = await _read_form(request, max_files=1, max_fields=1)
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


async def _read_form(request: Request, *, max_files: int, max_fields: int) -> FormData:
    """The multipart form of `request`; the body's size, time and completeness are checked as
    it streams (`BodyLimitMiddleware`), which raises its ApiErrors through Starlette's parser."""
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
        return await request.form(max_files=max_files, max_fields=max_fields, max_part_size=4096)
    except ApiError:
        raise
    except ClientDisconnect as exc:
        raise _truncated() from exc
    except Exception as exc:  # Starlette reports a malformed multipart body in several ways
        raise ApiError(400, "bad_request", f"malformed multipart body: {exc}") from exc


async def _parse(form: FormData, settings: ServiceSettings) -> StylizeRequest:
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
    options = _options(values, settings, has_style_image=style_file is not None)
    content, photo = await _read_image(content_file, "content", settings.max_upload_bytes, settings)
    options = budgeted(options, photo, settings)
    style = None
    if style_file is not None:
        style, _ = await _read_image(
            style_file, "style_image", settings.max_style_upload_bytes, settings
        )
    response = str(form.get("response") or "image")
    if response not in ("image", "json"):
        raise ApiError(400, "invalid_parameter", f"response: 'image' or 'json', got {response!r}")
    return StylizeRequest(options=options, content=content, style_image=style, response=response)


def _options(
    values: dict[str, str], settings: ServiceSettings, *, has_style_image: bool
) -> JobOptions:
    method = values.pop("method", JobOptions.model_fields["method"].default)
    if method not in ENGINES:
        raise ApiError(
            400,
            "invalid_parameter",
            f"method: unknown engine {method!r}; available: {', '.join(ENGINES)}",
        )
    engine = ENGINES[method]
    request = {k: values.pop(k) for k in ("style", "format") if k in values}
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
        _check_limits(parsed, method, settings)
        engine.split(parsed)  # the engine's option classes validate every value
    except InvalidParameterError as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from exc
    try:
        options = JobOptions.model_validate({**request, "method": method, "options": parsed})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "options"
        raise ApiError(
            400, "invalid_parameter", f"{field}: {first['msg']} (got {first.get('input')!r})"
        ) from exc
    if has_style_image == (options.style is not None):
        raise ApiError(
            400,
            "invalid_style",
            "give exactly one of 'style' (a style id from /api/styles) or 'style_image' (a file)",
        )
    if options.style is not None:
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
    return described


def job_budget(method: str, settings: ServiceSettings) -> dict[str, float]:
    """The budget `budgeted` applies, as `GET /api/engines` shows it beside the options."""
    budget: dict[str, float] = {
        "default_size": min(settings.default_size, size_limit(method, settings))
    }
    if method == "gatys":
        budget["max_megapixel_iterations"] = settings.max_gatys_megapixel_iterations
    return budget


def size_limit(method: str, settings: ServiceSettings) -> int:
    """The largest output long side this server accepts for `method`."""
    return settings.max_gatys_size if method == "gatys" else settings.max_size


def server_bounds(method: str, settings: ServiceSettings) -> dict[str, tuple[int, int]]:
    """This server's limits on options, tighter than the engines': they bound a job's cost."""
    return {"size": (16, size_limit(method, settings)), "iterations": (1, settings.max_iterations)}


def _check_limits(parsed: dict[str, Any], method: str, settings: ServiceSettings) -> None:
    bounds = server_bounds(method, settings)
    for name, (low, high) in bounds.items():
        value = parsed.get(name)
        if value is not None and not (isinstance(value, int) and low <= value <= high):
            raise InvalidParameterError(
                f"{name}: {low}..{high} for {method} on this server, got {value!r}"
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
    return settings.max_upload_bytes + settings.max_style_upload_bytes + _FORM_OVERHEAD
