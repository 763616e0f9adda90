"""Uploads while they stream: the request body's size, time and completeness, each file's
size, a photo's or painting's header, and a video copied to a file and checked from its
container.

Images are not decoded here: their headers are (format, dimensions, mode, decompression bombs;
`restyle.imaging.inspect_image`), since a 100 kB upload can decode to gigabytes; the workers
decode them. A video (`content` recognised as one by its first bytes, whatever its name) is
copied to a file as it streams in (never held in memory) and checked from its container before
a job exists: its header (size, duration) and its packets, demuxed and counted but not decoded,
against the `max_video_*` settings. PyAV is imported only then.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from restyle.errors import ImageTooLargeError, InvalidImageError, InvalidVideoError
from restyle.imaging import ImageHeader, ImageLimits, check_painting_shape, inspect_image
from restyle.service.errors import ApiError
from restyle.service.settings import ServiceSettings
from restyle.video.config import SIGNATURE_BYTES, has_video_signature

if TYPE_CHECKING:
    from restyle.video.io import VideoInfo

_FORM_OVERHEAD = 64 * 1024


async def read_form(
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


async def read_image(
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


async def read_video(
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
