"""`restyle worker`: a process (on a GPU machine, anywhere) that pulls jobs from Redis.

It connects out to `RESTYLE_REDIS_URL` (no public address needed) and runs RQ's `SimpleWorker`,
which executes each job in this process: the engines' caches keep models loaded between jobs.
"""

from __future__ import annotations

import logging
import os
import socket

from restyle.service import runner
from restyle.service.settings import ServiceSettings

_state: dict[str, object] = {}


def run_job(job_id: str) -> None:
    """What RQ calls with a job id (see redis_backend.RUN_JOB)."""
    from restyle.service.redis_backend import RedisBackend

    settings = _state.get("settings")
    if not isinstance(settings, ServiceSettings):
        settings = _state["settings"] = ServiceSettings()
    backend = _state.get("backend")
    if not isinstance(backend, RedisBackend):
        backend = _state["backend"] = RedisBackend(settings)
    runner.run(backend, job_id, settings)


def work(settings: ServiceSettings, *, burst: bool = False, name: str | None = None) -> bool:
    """Serve jobs until stopped (or, with `burst`, until the queues are empty)."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from restyle.service.redis_backend import RedisBackend

    if not settings.redis_url:
        raise ValueError("a worker needs RESTYLE_REDIS_URL (or --redis)")
    backend = RedisBackend(settings)
    _state["settings"], _state["backend"] = settings, backend
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    worker = SimpleWorker(
        backend.queues,
        connection=backend.redis,
        serializer=JSONSerializer,
        name=name or f"restyle-{socket.gethostname()}-{os.getpid()}",
    )
    return bool(worker.work(burst=burst, with_scheduler=False, logging_level="INFO"))
