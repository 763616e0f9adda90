"""`restyle worker`: a process (on a GPU machine, anywhere) that pulls jobs from Redis.

It connects out to `RESTYLE_REDIS_URL` (no public address needed), builds its engines once
(`Engines.setup`: VGG19, the MetaNet, ...), and runs RQ's `SimpleWorker`, which executes each
job in this process with those engines: no job loads a model another job loaded.
"""

from __future__ import annotations

import logging
import os
import socket

from restyle.engines.holder import Engines
from restyle.service import runner
from restyle.service.settings import ServiceSettings

# RQ calls `run_job` by name with only the job id: what the worker built at start is kept here.
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
    engines = _state.get("engines")
    if not isinstance(engines, Engines):
        engines = _state["engines"] = settings.engines()
    runner.run(backend, job_id, settings, engines)


def work(settings: ServiceSettings, *, burst: bool = False, name: str | None = None) -> bool:
    """Serve jobs until stopped (or, with `burst`, until the queues are empty)."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from restyle.service.redis_backend import RedisBackend

    if not settings.redis_url:
        raise ValueError("a worker needs RESTYLE_REDIS_URL (or --redis)")
    backend = RedisBackend(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    engines = settings.engines()
    built = engines.setup()
    logging.getLogger("restyle.service").info(
        "engines ready on %s: %s", engines.device, ", ".join(built)
    )
    _state.update(settings=settings, backend=backend, engines=engines)
    worker = SimpleWorker(
        backend.queues,
        connection=backend.redis,
        serializer=JSONSerializer,
        name=name or f"restyle-{socket.gethostname()}-{os.getpid()}",
    )
    return bool(worker.work(burst=burst, with_scheduler=False, logging_level="INFO"))
