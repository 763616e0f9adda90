"""The HTTP API (FastAPI; OpenAPI docs at /docs). `create_app(settings)` builds it.

Jobs: POST /api/jobs → 202 {id, token, urls}; the token (as `Authorization: Bearer <token>`, or
`?token=` where a browser cannot set headers: EventSource, <img>) is needed for everything else
about the job. POST /api/stylize runs fast/arbitrary requests synchronously.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Path, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from sse_starlette.sse import EventSourceResponse

from restyle import zoo
from restyle.service.backend import Backend
from restyle.service.errors import ApiError, install_error_handlers
from restyle.service.jobs import (
    JOB_ID_PATTERN,
    STYLE_ID_PATTERN,
    JobRecord,
    JobStatus,
    new_job_id,
    new_token,
    token_matches,
)
from restyle.service.metrics import ServiceMetrics
from restyle.service.requests import (
    BodyLimitMiddleware,
    body_limit,
    read_painting,
    read_stylize_request,
)
from restyle.service.settings import ServiceSettings
from restyle.service.sweeper import Sweeper, sweep
from restyle.service.web import mount_web_app

log = logging.getLogger("restyle.service")

JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN)]
_SYNC_METHODS = ("fast", "arbitrary")
_EVENT_POLL_S = 0.25


def make_backend(settings: ServiceSettings) -> Backend:
    if settings.redis_url:
        from restyle.service.redis_backend import RedisBackend

        return RedisBackend(settings)
    from restyle.service.embedded import EmbeddedBackend

    return EmbeddedBackend(settings)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    backend = make_backend(settings)
    metrics = ServiceMetrics(backend)
    sweeper = Sweeper(backend, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if backend.mode == "embedded":
            # This process is the only worker: whatever was running when it stopped is lost.
            sweep(backend, settings, all_lost=True)
        backend.start()
        sweeper.start()
        log.info("restyle service: %s mode", backend.mode)
        yield
        sweeper.stop()
        backend.stop()

    app = FastAPI(
        title="Restyle",
        summary="Neural style transfer: turn a photo into a painting in the style of any artwork.",
        version="1",
        lifespan=lifespan,
    )
    app.state.backend, app.state.settings = backend, settings
    app.add_middleware(BodyLimitMiddleware, limit=body_limit(settings))
    install_error_handlers(app, metrics.count_error)

    def authorised(request: Request, job_id: str) -> JobRecord:
        token = _token(request)
        record = backend.get(job_id)
        if record is None:
            raise ApiError(404, "not_found", f"no job {job_id!r} (finished jobs expire)")
        if token is None:
            raise ApiError(401, "unauthorized", "this job needs its token: Authorization: Bearer")
        if not token_matches(token, record):
            raise ApiError(403, "forbidden", "the token does not match this job")
        return record

    # Health and metrics ----------------------------------------------------------------------
    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        ready = backend.ready()
        return JSONResponse(
            {"ready": ready, "mode": backend.mode}, status_code=200 if ready else 503
        )

    @app.get("/metrics", tags=["operations"])
    def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    # Styles ----------------------------------------------------------------------------------
    @app.get("/api/styles", tags=["styles"])
    def styles(request: Request) -> dict[str, Any]:
        arbitrary = zoo.arbitrary_model() is not None
        return {
            "styles": [
                {
                    "id": entry.id,
                    "title": entry.title,
                    "artist": entry.artist,
                    "year": entry.year,
                    "licence": entry.licence,
                    "thumbnail_url": str(request.url_for("style_thumbnail", style_id=entry.id)),
                    "engines": ["fast", "gatys", *(["arbitrary"] if arbitrary else [])],
                    "networks": sorted(entry.variants),
                    "provisional": entry.provisional,
                }
                for entry in zoo.entries()
            ],
            "methods": ["fast", "gatys", *(["arbitrary"] if arbitrary else [])],
        }

    @app.get("/api/styles/{style_id}/thumbnail", tags=["styles"], name="style_thumbnail")
    def style_thumbnail(style_id: Annotated[str, Path(pattern=STYLE_ID_PATTERN)]) -> FileResponse:
        entry = zoo.find(style_id)
        if entry is None:
            raise ApiError(404, "unknown_style", f"no style {style_id!r}")
        return FileResponse(entry.painting_path, media_type="image/jpeg")

    # Live mode: the browser runs these networks on camera frames --------------------------
    onnx_cache = settings.data_dir / "onnx"

    @app.get("/api/styles/{style_id}/model.onnx", tags=["live"])
    async def style_onnx(style_id: Annotated[str, Path(pattern=STYLE_ID_PATTERN)]) -> FileResponse:
        """The style's `lite` network as ONNX: input `image` (1, 3, H, W) in [0, 1]."""
        from restyle.service.live_models import zoo_style_onnx

        if zoo.find(style_id) is None:
            raise ApiError(404, "unknown_style", f"no style {style_id!r}")
        path = await asyncio.to_thread(zoo_style_onnx, style_id, onnx_cache)
        return FileResponse(path, media_type="application/octet-stream")

    @app.post("/api/live/model.onnx", tags=["live"])
    async def painting_onnx_model(request: Request) -> FileResponse:
        """The network the MetaNet writes for an uploaded painting (`style_image`), as ONNX."""
        from restyle.service.live_models import painting_onnx

        if zoo.arbitrary_model() is None:
            raise ApiError(400, "method_unavailable", "live mode with a painting needs the MetaNet")
        painting = await read_painting(request, settings)
        path = await asyncio.to_thread(painting_onnx, painting, onnx_cache, device="cpu")
        return FileResponse(path, media_type="application/octet-stream")

    # Jobs ------------------------------------------------------------------------------------
    @app.post("/api/jobs", status_code=202, tags=["jobs"])
    async def create_job(request: Request) -> JSONResponse:
        parsed = await read_stylize_request(request, settings)
        client = _client(request)
        if await asyncio.to_thread(backend.active_count, client) >= settings.max_jobs_per_client:
            raise ApiError(
                429,
                "too_many_jobs",
                f"at most {settings.max_jobs_per_client} queued or running jobs per client",
            )
        if await asyncio.to_thread(backend.queue_depth) >= settings.max_queued_jobs:
            raise ApiError(503, "queue_full", "the queue is full; try again later")
        token, token_sha256 = new_token()
        record = JobRecord(
            id=new_job_id(),
            token_sha256=token_sha256,
            client=client,
            options=parsed.options,
            style_upload=parsed.style_image is not None,
        )
        await asyncio.to_thread(backend.submit, record, _blobs(parsed))
        base = str(request.url_for("job_status", job_id=record.id))
        return JSONResponse(
            {
                **record.public(),
                "token": token,
                "urls": {
                    "self": base,
                    "events": f"{base}/events",
                    "result": f"{base}/result",
                    "preview": f"{base}/preview",
                },
            },
            status_code=202,
        )

    @app.get("/api/jobs/{job_id}", tags=["jobs"], name="job_status")
    def job_status(job_id: JobId, request: Request) -> dict[str, Any]:
        return authorised(request, job_id).public()

    @app.delete("/api/jobs/{job_id}", tags=["jobs"])
    def cancel_job(job_id: JobId, request: Request) -> dict[str, Any]:
        record = authorised(request, job_id)
        if record.status.finished:
            return record.public()
        updated = backend.update(
            job_id,
            status=JobStatus.CANCELLED,
            cancel_requested=True,
            finished_at=time.time(),
            message="cancelled",
        )
        if updated is None:
            raise ApiError(404, "not_found", f"no job {job_id!r}")
        backend.count_finished(JobStatus.CANCELLED, None, "")
        return updated.public()

    @app.get("/api/jobs/{job_id}/result", tags=["jobs"])
    def job_result(job_id: JobId, request: Request) -> Response:
        record = authorised(request, job_id)
        if record.status != JobStatus.SUCCEEDED:
            if record.status.finished:
                raise ApiError(409, "no_result", f"the job ended {record.status.value}")
            raise ApiError(409, "not_ready", f"the job is {record.status.value}")
        data = backend.get_blob(job_id, "result")
        if data is None:
            raise ApiError(404, "not_found", "the result has expired")
        extension = record.options.format.replace("jpeg", "jpg")
        return Response(
            data,
            media_type=record.result_type,
            headers={"content-disposition": f'inline; filename="restyle-{job_id}.{extension}"'},
        )

    @app.get("/api/jobs/{job_id}/preview", tags=["jobs"])
    def job_preview(job_id: JobId, request: Request) -> Response:
        authorised(request, job_id)
        data = backend.get_blob(job_id, "preview")
        if data is None:
            raise ApiError(404, "no_preview", "no preview yet (only gatys jobs have previews)")
        return Response(data, media_type="image/jpeg", headers={"cache-control": "no-store"})

    @app.get("/api/jobs/{job_id}/events", tags=["jobs"])
    async def job_events(job_id: JobId, request: Request) -> EventSourceResponse:
        await asyncio.to_thread(authorised, request, job_id)
        return EventSourceResponse(_events(backend, job_id, request), ping=10)

    # Synchronous stylization -----------------------------------------------------------------
    @app.post("/api/stylize", tags=["stylize"])
    async def stylize_now(request: Request) -> Response:
        parsed = await read_stylize_request(request, settings)
        if parsed.options.method not in _SYNC_METHODS:
            raise ApiError(
                400,
                "invalid_parameter",
                f"method {parsed.options.method!r} is slow: use POST /api/jobs for it",
            )
        record = JobRecord(
            id=new_job_id(),
            token_sha256="",
            client=_client(request),
            options=parsed.options,
            style_upload=parsed.style_image is not None,
            priority=10,
        )
        await asyncio.to_thread(backend.submit, record, _blobs(parsed))
        try:
            final = await backend.wait_finished(record.id, settings.sync_timeout_s)
            if final is None or not final.status.finished:
                raise ApiError(503, "timeout", "the server is busy; try again or use /api/jobs")
            if final.status != JobStatus.SUCCEEDED:
                error = final.error
                code = error.code if error else "failed"
                status = (
                    413 if code == "image_too_large" else 400 if code.startswith("invalid") else 500
                )
                raise ApiError(status, code, error.message if error else "the job failed")
            data = await asyncio.to_thread(backend.get_blob, record.id, "result")
            if data is None:
                raise ApiError(500, "internal_error", "the result was lost")
        finally:
            await asyncio.to_thread(_forget, backend, record.id)
        if parsed.response == "json":
            return JSONResponse(
                {
                    "mime": final.result_type,
                    "image": base64.b64encode(data).decode("ascii"),
                }
            )
        return Response(data, media_type=final.result_type)

    mount_web_app(app)
    return app


def _forget(backend: Backend, job_id: str) -> None:
    """Drop a synchronous request's job once answered (or abandoned on timeout)."""
    record = backend.get(job_id)
    if record is not None and record.status == JobStatus.RUNNING:
        # Its worker drops the job when it next looks: at a progress report, or at the end.
        updated = backend.update(job_id, cancel_requested=True)
        if updated is None or not updated.status.finished:
            return
    backend.delete(job_id)  # a queued job that is deleted is skipped by the worker


def _blobs(parsed: Any) -> dict[str, bytes]:
    blobs = {"content": parsed.content}
    if parsed.style_image is not None:
        blobs["style"] = parsed.style_image
    return blobs


async def _events(backend: Backend, job_id: str, request: Request) -> AsyncIterator[dict[str, str]]:
    """`status` events when the status, progress or message changes; `preview` events with
    the Gatys preview as a data URL; `end` with the final status, then the stream closes."""
    last: tuple[Any, ...] | None = None
    preview_version = 0
    while not await request.is_disconnected():
        record = await asyncio.to_thread(backend.get, job_id)
        if record is None:
            yield {"event": "end", "data": json.dumps({"status": "expired"})}
            return
        state = (record.status, round(record.progress, 3), record.message)
        if state != last:
            last = state
            yield {"event": "status", "data": json.dumps(record.public())}
        if record.preview_version > preview_version:
            preview = await asyncio.to_thread(backend.get_blob, job_id, "preview")
            if preview is not None:
                preview_version = record.preview_version
                image = "data:image/jpeg;base64," + base64.b64encode(preview).decode("ascii")
                yield {
                    "event": "preview",
                    "data": json.dumps({"version": preview_version, "image": image}),
                }
        if record.status.finished:
            yield {"event": "end", "data": json.dumps(record.public())}
            return
        await asyncio.sleep(_EVENT_POLL_S)


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    match = re.fullmatch(r"Bearer\s+(\S+)", header.strip())
    if match:
        return match.group(1)
    return request.query_params.get("token")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"
