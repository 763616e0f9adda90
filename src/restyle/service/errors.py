"""Errors the API returns: always JSON `{"error": {"code": ..., "message": ...}}`.

`ApiError` is raised by the routes; `install_error_handlers` maps it, and FastAPI's and
Starlette's own errors, to that shape. A failed job's error code maps to its HTTP status through
`JOB_ERROR_STATUS` (`api_error_for_job`), for the routes that answer with a job's outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from restyle.service.jobs import JobError

_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_parameter",
    429: "too_many_jobs",
    503: "unavailable",
}


class ApiError(Exception):
    """A problem to report to the client, with its HTTP status and a stable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


JOB_ERROR_STATUS: Mapping[str, int] = MappingProxyType(
    {
        # The request's fault: its images or options.
        "image_too_large": 413,
        "invalid_image": 400,
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
"""HTTP status of each job error code (see runner.py and sweeper.py); any other code is a 500."""


def api_error_for_job(error: JobError | None) -> ApiError:
    """The error to answer with for a job that did not succeed (`error` None: no reason given)."""
    if error is None:
        return ApiError(500, "failed", "the job failed")
    return ApiError(JOB_ERROR_STATUS.get(error.code, 500), error.code, error.message)


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def install_error_handlers(app: FastAPI, on_error: Any = None) -> None:
    """Map every error (ours, FastAPI's validation, Starlette's 404/405) to the JSON shape."""

    def respond(status: int, code: str, message: str) -> JSONResponse:
        if on_error is not None:
            on_error(code)
        return JSONResponse(error_body(code, message), status_code=status)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return respond(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return respond(422, "invalid_parameter", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES_BY_STATUS.get(exc.status_code, "error")
        return respond(exc.status_code, code, str(exc.detail))
