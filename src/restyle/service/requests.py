"""Reading a stylization request: the multipart form, its images, its options.

Everything a client sends is checked here, before a job exists: the body size (while it
streams), the content type, each image (decoded once with Restyle's limits: header checked
before pixels, decompression bombs refused) and every option against the server's limits.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from restyle import zoo
from restyle.engines.registry import ENGINES
from restyle.errors import ImageTooLargeError, InvalidImageError, InvalidParameterError
from restyle.imaging import ImageLimits, load_image
from restyle.options import OptionSpec
from restyle.service.errors import ApiError, error_body
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
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"expected a multipart/form-data body, got {content_type or 'no content type'!r}",
        )
    try:
        form = await request.form(max_files=2, max_fields=len(FORM_FIELDS), max_part_size=4096)
    except ClientDisconnect as exc:
        raise ApiError(400, "bad_request", "the client disconnected mid-upload") from exc
    except _BodyTooLarge as exc:
        raise ApiError(413, "too_large", "the request body is over the upload limits") from exc
    except Exception as exc:  # Starlette reports a malformed multipart body in several ways
        raise ApiError(400, "bad_request", f"malformed multipart body: {exc}") from exc
    try:
        return await _parse(form, settings)
    finally:
        await form.close()


async def read_painting(request: Request, settings: ServiceSettings) -> bytes:
    """A form with one file, `style_image` (the live mode's painting), checked like any upload."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "expected a multipart/form-data body")
    try:
        form = await request.form(max_files=1, max_fields=1, max_part_size=4096)
    except _BodyTooLarge as exc:
        raise ApiError(413, "too_large", "the request body is over the upload limits") from exc
    except Exception as exc:
        raise ApiError(400, "bad_request", f"malformed multipart body: {exc}") from exc
    try:
        upload = form.get("style_image")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "missing_style_image", "field 'style_image': a painting file")
        return await _read_image(upload, "style_image", settings.max_style_upload_bytes, settings)
    finally:
        await form.close()


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
    content = await _read_image(content_file, "content", settings.max_upload_bytes, settings)
    style = None
    if style_file is not None:
        style = await _read_image(
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
    bounds = {
        "size": (16, size_limit(method, settings)),
        "iterations": (1, settings.max_iterations),
    }
    for name, (low, high) in bounds.items():
        schema = properties.get(name)
        if schema is None:
            continue
        target = schema["anyOf"][0] if "anyOf" in schema else schema
        target["minimum"] = max(low, target.get("minimum", low))
        target["maximum"] = min(high, target.get("maximum", high))
        if isinstance(schema.get("default"), int) and schema["default"] > target["maximum"]:
            schema["default"] = target["maximum"]
    return described


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


async def _read_image(
    upload: UploadFile, field: str, max_bytes: int, settings: ServiceSettings
) -> bytes:
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(413, "too_large", f"{field}: over the upload limit of {max_bytes} bytes")
    if not data:
        raise ApiError(400, "invalid_image", f"{field}: the file is empty")
    limits = ImageLimits(max_bytes=max_bytes, max_pixels=settings.max_upload_pixels)
    try:
        await asyncio.to_thread(load_image, data, limits=limits)
    except ImageTooLargeError as exc:
        raise ApiError(413, "image_too_large", f"{field}: {exc}") from exc
    except InvalidImageError as exc:
        raise ApiError(400, "invalid_image", f"{field}: {exc}") from exc
    return data


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over `limit` bytes while they stream (413), chunked ones included."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_413(send, self.limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_413(send, self.limit)


async def _send_413(send: Send, limit: int) -> None:
    import json

    body = json.dumps(
        error_body("too_large", f"the request body is over the limit of {limit} bytes")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def body_limit(settings: ServiceSettings) -> int:
    return settings.max_upload_bytes + settings.max_style_upload_bytes + _FORM_OVERHEAD
