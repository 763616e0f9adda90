"""POST /api/stylize: a fast or arbitrary stylization answered in the same request.

It runs as a job of the interactive lane that goes ahead of the lane's queued jobs, is waited
for, and is forgotten once answered. It counts against its client's limit of interactive jobs
like any other, since it takes a worker ahead of them.
"""

from __future__ import annotations

import asyncio
import base64

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from restyle.engines.registry import ENGINES
from restyle.service.deps import BackendDep, ClientDep, EnginesDep, SettingsDep, TokenDep
from restyle.service.errors import ApiError, api_error_for_job
from restyle.service.jobs import JobStatus
from restyle.service.requests import read_stylize_request
from restyle.service.routes.jobs import check_style_access, submit
from restyle.service.schemas import StylizeJsonResponse, error_responses, image_content
from restyle.service.stores.base import Backend

router = APIRouter(tags=["stylize"])

_RESPONSES = {
    200: {
        "model": StylizeJsonResponse,
        "content": image_content(),
        "description": "The image; with `response=json`, the image in base64",
    },
    **error_responses(400, 413, 415, 429, 500, 503),
}


@router.post("/api/stylize", response_class=Response, responses=_RESPONSES)
async def stylize_now(
    request: Request,
    backend: BackendDep,
    settings: SettingsDep,
    client: ClientDep,
    owner_token: TokenDep,
    engines: EnginesDep,
) -> Response:
    """Stylize with `fast` or `arbitrary` and answer with the image (the form of POST /api/jobs,
    plus `response`: `image` or `json`)."""
    parsed = await read_stylize_request(request, settings)
    if not ENGINES[parsed.options.method].interactive:
        raise ApiError(
            400,
            "invalid_parameter",
            f"method {parsed.options.method!r} is slow: use POST /api/jobs for it",
        )
    check_style_access(backend, parsed, owner_token)
    record = await submit(backend, settings, engines, parsed, client, priority=10)
    try:
        final = await backend.jobs.wait_finished(record.id, settings.sync_timeout_s)
        if final is None or not final.status.finished:
            raise ApiError(503, "timeout", "the server is busy; try again or use /api/jobs")
        if final.status != JobStatus.SUCCEEDED:
            raise api_error_for_job(final.error)
        data = await asyncio.to_thread(backend.blobs.get, record.id, "result")
        if data is None:
            raise ApiError(500, "internal_error", "the result was lost")
    finally:
        await asyncio.to_thread(_forget, backend, record.id)
    if parsed.response == "json":
        body = StylizeJsonResponse(
            mime=final.result_type, image=base64.b64encode(data).decode("ascii")
        )
        return JSONResponse(body.model_dump())
    return Response(data, media_type=final.result_type)


def _forget(backend: Backend, job_id: str) -> None:
    """Drop a synchronous request's job once answered (or abandoned on timeout)."""
    record = backend.jobs.get(job_id)
    if record is not None and record.status == JobStatus.RUNNING:
        # Its worker drops the job when it next looks: at a progress report, or at the end.
        updated = backend.jobs.update(job_id, cancel_requested=True)
        if updated is None or not updated.status.finished:
            return
    backend.jobs.delete(job_id)  # a queued job that is deleted is skipped by the worker
