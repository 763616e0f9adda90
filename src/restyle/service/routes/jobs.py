"""Jobs: POST /api/jobs → 202 with the job's token and URLs; the token opens everything else
about the job (status, cancel, result, preview, server-sent events)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from sse_starlette.sse import EventSourceResponse

from restyle.engines.holder import Engines
from restyle.service.deps import (
    AuthorisedJob,
    BackendDep,
    ClientDep,
    EnginesDep,
    JobId,
    PlacesDep,
    SettingsDep,
    TokenDep,
    owned_style,
)
from restyle.service.errors import ApiError
from restyle.service.estimates import job_seconds
from restyle.service.jobs import JobRecord, JobStatus, new_job_id, new_token
from restyle.service.lanes import lane_for
from restyle.service.personal import is_personal
from restyle.service.places import Places
from restyle.service.requests import StylizeRequest, read_stylize_request
from restyle.service.routes.styles import personal_info
from restyle.service.schemas import (
    JobCreatedResponse,
    JobStatusResponse,
    error_responses,
    image_content,
)
from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import Backend, JobRefused

router = APIRouter(tags=["jobs"])

_ONE_JOB = error_responses(401, 403, 404, 422)  # the routes of a job, which need its token

_EVENT_POLL_S = 0.25


async def submit(
    backend: Backend,
    settings: ServiceSettings,
    engines: Engines,
    parsed: StylizeRequest,
    client: str,
    *,
    token_sha256: str = "",
    priority: int = 0,
) -> JobRecord:
    """Queue a parsed request as a job in its lane, with its images, if the client's and the
    queue's limits allow it (checked by the backend in the same step as the insert): 429 or 503
    otherwise."""
    method, kind = parsed.options.method, "video" if parsed.is_video else "image"
    expected = await asyncio.to_thread(
        job_seconds,
        method,
        parsed.options.options,
        parsed.content_hw,
        settings,
        engines,
        frames=parsed.frames,
    )
    lane = lane_for(
        kind=kind,
        method=method,
        priority=priority,
        expected_s=expected,
        interactive_max_s=settings.interactive_max_s,
    )
    record = JobRecord(
        id=new_job_id(),
        token_sha256=token_sha256,
        client=client,
        options=parsed.options,
        style_upload=parsed.style_image is not None,
        kind=kind,
        frames_total=parsed.frames,
        priority=priority,
        lane=lane,
        expected_s=expected,
    )
    blobs: dict[str, bytes | Path] = {"content": parsed.content}
    if parsed.style_image is not None:
        blobs["style"] = parsed.style_image
    await admit(backend, settings, record, blobs)
    return record


async def admit(
    backend: Backend, settings: ServiceSettings, record: JobRecord, blobs: dict[str, bytes | Path]
) -> None:
    """Store and queue a job with its files, if the client's and the queue's limits allow it
    (checked by the backend in the same step as the insert): 429 or 503 otherwise."""
    try:
        await asyncio.to_thread(
            backend.jobs.submit,
            record,
            blobs,
            max_per_client=settings.max_jobs_per_client,
            max_queued=settings.max_queued_jobs,
        )
    except JobRefused as refused:
        if refused.reason == "client":
            raise ApiError(
                429,
                "too_many_jobs",
                f"at most {settings.max_jobs_per_client} queued or running {record.lane} jobs "
                "per client",
            ) from None
        raise ApiError(503, "queue_full", "the queue is full; try again later") from None
    # A store that cannot take the job (`backend.unavailable`) reaches ErrorMiddleware, which
    # logs it under the request id and answers 503 `store_unavailable` with Retry-After.


def check_style_access(backend: Backend, parsed: StylizeRequest, token: str | None) -> None:
    """A personal style is only for the token that owns it: 404 to anyone else."""
    style = parsed.options.style
    if is_personal(style):
        assert style is not None
        owned_style(backend, style, token)


@router.post(
    "/api/jobs",
    status_code=202,
    responses=error_responses(400, 413, 415, 429, 503),
)
async def create_job(
    request: Request,
    backend: BackendDep,
    settings: SettingsDep,
    client: ClientDep,
    owner_token: TokenDep,
    engines: EnginesDep,
    places: PlacesDep,
) -> JobCreatedResponse:
    """Queue a stylization (multipart form: `content`, a photo or a video, and `style` or
    `style_image`, options). A personal style needs its owner's token (`Authorization:
    Bearer`); the job gets a token of its own."""
    parsed = await read_stylize_request(request, settings, scratch=backend.blobs.scratch_dir())
    token, token_sha256 = new_token()
    try:
        check_style_access(backend, parsed, owner_token)
        record = await submit(backend, settings, engines, parsed, client, token_sha256=token_sha256)
    finally:
        parsed.discard()  # a video the store did not take (refused, or the store failed)
    return await created(request, record, token, places)


async def created(
    request: Request, record: JobRecord, token: str, places: Places
) -> JobCreatedResponse:
    """The answer to a job's creation: its record and place in line, its token (shown this
    once) and its URLs."""
    places.forget(record.lane)
    status = await asyncio.to_thread(places.status, record)
    base = str(request.url_for("job_status", job_id=record.id))
    urls = {
        "self": base,
        "events": f"{base}/events",
        "result": f"{base}/result",
        "preview": f"{base}/preview",
    }
    return JobCreatedResponse.model_validate({**status, "token": token, "urls": urls})


@router.get("/api/jobs/{job_id}", name="job_status", responses=_ONE_JOB)
def job_status(record: AuthorisedJob, places: PlacesDep) -> JobStatusResponse:
    """The job: its status and progress, and while it is queued its place in its lane
    (`queue`: position, expected start and finish)."""
    return JobStatusResponse.model_validate(places.status(record))


@router.delete("/api/jobs/{job_id}", responses=_ONE_JOB)
def cancel_job(
    job_id: JobId, record: AuthorisedJob, backend: BackendDep, places: PlacesDep
) -> JobStatusResponse:
    """Cancel a queued or running job, freeing its place in its lane at once (a running one
    stops at its next step); a finished job is left as it is. A video job's files are removed
    at once (a running one stops after its current batch of frames)."""
    if record.status.finished:
        return JobStatusResponse.model_validate(places.status(record))
    updated = backend.jobs.update(
        job_id,
        status=JobStatus.CANCELLED,
        cancel_requested=True,
        finished_at=time.time(),
        message="cancelled",
    )
    if updated is None:
        raise ApiError(404, "not_found", f"no job {job_id!r}")
    if record.kind != "image":  # nothing is kept: the upload goes now, not when the job expires
        for name in ("content", "style", "preview"):
            backend.blobs.delete(job_id, name)
    backend.stats.count_finished(JobStatus.CANCELLED, None, "")
    places.forget(record.lane)
    return JobStatusResponse.model_validate(places.status(updated))


@router.get(
    "/api/jobs/{job_id}/result",
    response_class=Response,
    responses={
        200: {"content": image_content(video=True), "description": "The image or video"},
        206: {
            "content": {"video/mp4": {}, "video/webm": {}},
            "description": "A byte range of a video (`Range: bytes=...`)",
        },
        **_ONE_JOB,
        **error_responses(409, 416),
    },
)
def job_result(
    job_id: JobId, record: AuthorisedJob, backend: BackendDep, request: Request
) -> Response:
    """The result. A video answers byte ranges (`Range`, `206`), which a browser's `<video>`
    needs to seek."""
    if record.status != JobStatus.SUCCEEDED:
        if record.status.finished:
            raise ApiError(409, "no_result", f"the job ended {record.status.value}")
        raise ApiError(409, "not_ready", f"the job is {record.status.value}")
    if record.kind == "refine":  # its result is a personal style
        style = backend.personal.get(record.style_id)
        if style is None:
            raise ApiError(404, "not_found", "the style was deleted or has expired")
        return JSONResponse(personal_info(style, request))
    extension = record.options.format.replace("jpeg", "jpg")
    filename = f"restyle-{job_id}.{extension}"
    if record.kind == "video":
        path = backend.blobs.path(job_id, "result")
        if path is not None:  # the store's own file: Starlette answers ranges from it
            byte_range(request.headers.get("range"), path.stat().st_size)  # a 416 as JSON
            return FileResponse(
                path,
                media_type=record.result_type,
                filename=filename,
                content_disposition_type="inline",
            )
    data = backend.blobs.get(job_id, "result")
    if data is None:
        raise ApiError(404, "not_found", "the result has expired")
    headers = {"content-disposition": f'inline; filename="{filename}"'}
    if record.kind == "video":
        return ranged_response(data, record.result_type, headers, request.headers.get("range"))
    return Response(data, media_type=record.result_type, headers=headers)


def byte_range(range_header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range (first, last; inclusive) that `range_header` asks of `size` bytes;
    None for the whole (no range, another unit, several ranges, a malformed one: a server may
    always answer 200). A range outside the file is a 416 in the API's error shape."""
    if not range_header:
        return None
    unit, _, spec = range_header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        else:  # "-N": the last N bytes
            start, end = max(size - int(last), 0), size - 1
    except ValueError:
        return None
    if start < 0 or start >= size or end < start:
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"the range {spec.strip()!r} is outside the file's {size} bytes",
            headers={"content-range": f"bytes */{size}"},
        )
    return start, end


def ranged_response(
    data: bytes, media_type: str, headers: dict[str, str], range_header: str | None
) -> Response:
    """`data`, or the byte range `range_header` asks for (`206`)."""
    size = len(data)
    headers = {**headers, "accept-ranges": "bytes"}
    wanted = byte_range(range_header, size)
    if wanted is None:
        return Response(data, media_type=media_type, headers=headers)
    start, end = wanted
    headers["content-range"] = f"bytes {start}-{end}/{size}"
    return Response(data[start : end + 1], status_code=206, media_type=media_type, headers=headers)


@router.get(
    "/api/jobs/{job_id}/preview",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The latest preview"},
        **_ONE_JOB,
    },
)
def job_preview(job_id: JobId, record: AuthorisedJob, backend: BackendDep) -> Response:
    data = backend.blobs.get(job_id, "preview")
    if data is None:
        raise ApiError(404, "no_preview", "no preview yet (gatys and video jobs have previews)")
    return Response(data, media_type="image/jpeg", headers={"cache-control": "no-store"})


@router.get(
    "/api/jobs/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The job's events"},
        **_ONE_JOB,
    },
)
async def job_events(
    job_id: JobId,
    record: AuthorisedJob,
    backend: BackendDep,
    places: PlacesDep,
    request: Request,
) -> EventSourceResponse:
    """`status` events when the status, progress or message changes, or a queued job's place
    in line (a video's with its frames done and in all); `preview` events with the Gatys
    preview or a video's latest frame as a data URL; `end` with the final status, then the
    stream closes."""
    return EventSourceResponse(_events(backend, places, job_id, request), ping=10)


async def _events(
    backend: Backend, places: Places, job_id: str, request: Request
) -> AsyncIterator[dict[str, str]]:
    last: tuple[Any, ...] | None = None
    preview_version = 0
    while not await request.is_disconnected():
        record = await asyncio.to_thread(backend.jobs.get, job_id)
        if record is None:
            yield {"event": "end", "data": json.dumps({"status": "expired"})}
            return
        status = await asyncio.to_thread(places.status, record)
        queue = status["queue"] or {}
        finish = queue.get("expected_finish_s")
        state = (
            record.status,
            round(record.progress, 3),
            record.message,
            queue.get("position"),
            None if finish is None else round(finish / 5),  # a new estimate every 5 s or so
        )
        if state != last:
            last = state
            yield {"event": "status", "data": json.dumps(status)}
        if record.preview_version > preview_version:
            preview = await asyncio.to_thread(backend.blobs.get, job_id, "preview")
            if preview is not None:
                preview_version = record.preview_version
                image = "data:image/jpeg;base64," + base64.b64encode(preview).decode("ascii")
                yield {
                    "event": "preview",
                    "data": json.dumps({"version": preview_version, "image": image}),
                }
        if record.status.finished:
            yield {"event": "end", "data": json.dumps(status)}
            return
        await asyncio.sleep(_EVENT_POLL_S)
