"""The HTTP API (FastAPI; OpenAPI docs at /docs, offline: `docs_page`). `create_app(settings)`
builds it.

The routes are in `restyle.service.routes` (one router per area); they reach what is shared
(backend, settings, metrics, the engines) on `app.state` through `restyle.service.deps`.

Jobs: POST /api/jobs → 202 {id, token, urls}; the token (as `Authorization: Bearer <token>`, or
`?token=` where a browser cannot set headers: EventSource, <img>) is needed for everything else
about the job. POST /api/stylize runs fast/arbitrary requests synchronously.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from restyle.engines.holder import Engines
from restyle.service.docs_page import mount_docs
from restyle.service.errors import ErrorMiddleware, install_error_handlers
from restyle.service.estimates import warm
from restyle.service.metrics import ServiceMetrics
from restyle.service.places import Places
from restyle.service.routes import ROUTERS
from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import Backend
from restyle.service.sweeper import Sweeper, sweep
from restyle.service.uploads import BodyLimitMiddleware, body_limit
from restyle.service.web import mount_web_app

log = logging.getLogger("restyle.service")


def make_backend(settings: ServiceSettings, engines: Engines | None = None) -> Backend:
    """Redis when `settings.redis_url` is set, else the embedded store whose worker threads run
    jobs with `engines`."""
    if settings.redis_url:
        from restyle.service.stores.redis_backend import RedisBackend

        return RedisBackend(settings)
    from restyle.service.stores.embedded import EmbeddedBackend

    return EmbeddedBackend(settings, engines)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    # Embedded mode: the engines of this process's workers, which the live-mode routes share.
    # With Redis the jobs run elsewhere; the live-mode exports run here, on the CPU.
    engines = settings.engines(device="cpu" if settings.redis_url else None)
    backend = make_backend(settings, engines)
    metrics = ServiceMetrics(backend)
    sweeper = Sweeper(backend, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if backend.mode == "embedded":
            # This process is the only worker: whatever was running when it stopped is lost.
            sweep(backend, settings, all_lost=True)
        await asyncio.to_thread(warm, settings, engines)  # before the workers keep the CPU busy
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
        # FastAPI's /docs and /redoc load their scripts from a CDN; mount_docs serves /docs whole.
        docs_url=None,
        redoc_url=None,
    )
    app.state.backend, app.state.settings, app.state.metrics = backend, settings, metrics
    app.state.engines = engines
    app.state.places = Places(backend)
    app.add_middleware(
        BodyLimitMiddleware, limit=body_limit(settings), timeout=settings.body_timeout_s
    )
    app.add_middleware(ErrorMiddleware, on_error=metrics.count_error)  # the outermost: added last
    install_error_handlers(app, metrics.count_error)
    for router in ROUTERS:
        app.include_router(router)
    mount_docs(app)
    mount_web_app(app)
    return app
