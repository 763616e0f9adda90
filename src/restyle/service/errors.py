"""Errors the API returns: always JSON `{"error": {"code", "message", "request_id"}}`.

`ApiError` is raised by the routes; `install_error_handlers` maps it, and FastAPI's and
Starlette's own errors, to that shape. `ErrorMiddleware`, the outermost layer, gives every request
an id (`X-Request-ID`) and answers any other exception in the same shape (`failure_of`): a store
that fails is a 503 `store_unavailable`, a library error about the request's input a 4xx, anything
else a 500 `internal_error` whose details go to the log only, under the request id. A failed job's
error code maps to its HTTP status through `JOB_ERROR_STATUS` (`api_error_for_job`), for the
routes that answer with a job's outcome.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis import RedisError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from restyle.service.jobs import (
    JOB_ID_PATTERN,
    STYLE_ID_PATTERN,
    JobError,
    library_error_code,
    new_reference,
)
from restyle.service.stores.base import StoreUnavailable

log = logging.getLogger("restyle.service")

STORE_RETRY_AFTER_S = 5
"""What a 503 `store_unavailable` tells a client to wait (`Retry-After`) before trying again."""

_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    408: "request_timeout",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_parameter",
    429: "too_many_jobs",
    503: "unavailable",
}


class ApiError(Exception):
    """A problem to report to the client, with its HTTP status and a stable code."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


JOB_ERROR_STATUS: Mapping[str, int] = MappingProxyType(
    {
        # The request's fault: its images or options.
        "image_too_large": 413,
        "invalid_image": 400,
        "invalid_video": 400,
        "video_too_long": 413,
        "video_too_large": 413,
        "invalid_parameter": 400,
        "invalid_style": 400,
        "unknown_style": 400,
        # The server's: busy or lost a worker (worth trying again), or it could not paint.
        "timeout": 503,
        "worker_lost": 503,
        "input_lost": 500,
        "out_of_memory": 500,
        "diverged": 500,
        "weights_error": 500,
        "device_error": 500,
        "stylize_error": 500,
        "internal_error": 500,
    }
)
"""HTTP status of each job error code (written by runner.py and the modules it calls, and by
sweeper.py); any other code is a 500."""


def api_error_for_job(error: JobError | None) -> ApiError:
    """The error to answer with for a job that did not succeed (`error` None: no reason given)."""
    if error is None:
        return ApiError(500, "failed", "the job failed")
    return ApiError(JOB_ERROR_STATUS.get(error.code, 500), error.code, error.message)


ID_FORMS: Mapping[str, str] = MappingProxyType(
    {
        JOB_ID_PATTERN: "a job id (16 to 64 letters, digits, '-' or '_')",
        STYLE_ID_PATTERN: "a style id (up to 64 lower-case letters, digits or '-', not starting "
        "with '-', then optionally ':' and a network variant)",
    }
)
"""The ids' patterns in words, for the message about a value that does not fit one."""


def validation_message(error: Mapping[str, Any], *, quote_input: bool = False) -> str:
    """A pydantic validation error in words, naming the field (and with `quote_input` the
    value). A regular expression means nothing to most clients: a value that does not fit an
    id's pattern is answered with what the id looks like, and the value."""
    where = ".".join(str(part) for part in error.get("loc", ())) or "request"
    if error.get("type") == "string_pattern_mismatch":
        form = ID_FORMS.get(error.get("ctx", {}).get("pattern"), "of the expected form")
        return f"{where}: {_shown(error.get('input'))} is not {form}"
    message = f"{where}: {error.get('msg', 'invalid')}"
    return f"{message} (got {_shown(error.get('input'))})" if quote_input else message


def _shown(value: Any, limit: int = 80) -> str:
    """`value` as a message quotes it, cut short: a path or a field may be long."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def error_body(code: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    detail = {"code": code, "message": message}
    if request_id is not None:
        detail["request_id"] = request_id
    return {"error": detail}


def request_id_of(request: Request) -> str | None:
    """The id `ErrorMiddleware` gave this request (None in an app without it)."""
    return getattr(request.state, "request_id", None)


def _is_store_failure(exc: BaseException) -> bool:
    """Whether `exc` says the job store (SQLite, the data directory's files, Redis) cannot be
    used now: a full or read-only disk, a missing folder, Redis away. Timeouts and broken
    connections to a client are OSErrors too, but not the store's."""
    if isinstance(exc, StoreUnavailable | sqlite3.OperationalError | RedisError):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, TimeoutError | ConnectionError)


def failure_of(exc: BaseException, reference: str) -> ApiError:
    """The answer to an exception no route handled. Only messages written for users reach the
    client (ours, and the library's about the request's input); the rest, which may name files
    and hosts, stay in the log under `reference`."""
    if isinstance(exc, ApiError):
        return exc
    if _is_store_failure(exc):
        return ApiError(
            503,
            "store_unavailable",
            f"the job store is unavailable; try again later (reference {reference})",
            headers={"retry-after": str(STORE_RETRY_AFTER_S)},
        )
    code = library_error_code(exc)
    status = JOB_ERROR_STATUS.get(code or "internal_error", 500)
    if code is not None and status < 500:
        return ApiError(status, code, str(exc))
    return ApiError(status, code or "internal_error", f"internal error (reference {reference})")


def install_error_handlers(app: FastAPI, on_error: Callable[[str], None] | None = None) -> None:
    """Map every error (ours, FastAPI's validation, Starlette's 404/405) to the JSON shape."""

    def respond(
        request: Request,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> JSONResponse:
        if on_error is not None:
            on_error(code)
        body = error_body(code, message, request_id_of(request))
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return respond(request, exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        return respond(request, 422, "invalid_parameter", validation_message(first))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES_BY_STATUS.get(exc.status_code, "error")
        return respond(request, exc.status_code, code, str(exc.detail), exc.headers)


class ErrorMiddleware:
    """The outermost layer: an id for every request (`X-Request-ID`, and in error bodies), and
    a JSON answer for any exception that escapes the routes.

    A pure ASGI middleware rather than an exception handler for `Exception`: Starlette sends
    such a handler's response from `ServerErrorMiddleware` and then re-raises, so the server
    logs a traceback and drops the connection; here the error is answered like any other and a
    keep-alive connection stays usable. The log line has the request id, the method and the
    path, never the query string (it may carry a job's token).
    """

    def __init__(self, app: ASGIApp, on_error: Callable[[str], None] | None = None) -> None:
        self.app, self.on_error = app, on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_reference()
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).append("x-request-id", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            error = failure_of(exc, request_id)
            self._log(scope, request_id, error, exc)
            if self.on_error is not None:
                self.on_error(error.code)
            if started:
                return  # too late for an error response: the server closes the connection
            body = error_body(error.code, error.message, request_id)
            headers = {**error.headers, "x-request-id": request_id}
            await JSONResponse(body, status_code=error.status, headers=headers)(
                scope, receive, send
            )

    @staticmethod
    def _log(scope: Scope, request_id: str, error: ApiError, exc: Exception) -> None:
        where = f"{scope.get('method', '')} {scope.get('path', '')}"
        if error.status < 500:
            log.info("request %s %s: %s %s", request_id, where, error.status, error.code)
        else:
            log.error(
                "request %s %s failed: %s %s",
                request_id,
                where,
                error.status,
                error.code,
                exc_info=exc,
            )
