"""`restyle worker`: a process (on a GPU machine, anywhere) that pulls jobs from Redis.

It connects out to `RESTYLE_REDIS_URL` (no public address needed), builds its engines once
(`Engines.setup`: VGG19, the MetaNet, ...), and runs RQ's `SimpleWorker`, which executes each
job in this process with those engines: no job loads a model another job loaded.

It serves the lanes it is given (`--lanes`, default all: interactive first): RQ looks at their
queues in that order, and each ticket it takes runs its lane's next job (`run_next`). A worker
that serves both lanes may be busy with a heavy job when interactive work comes; run at least
one worker with `--lanes interactive` to keep quick work quick.

A Redis outage does not end the worker: its commands are retried through `store_retry_s`
(stores.redis_backend.store_retry), and should RQ's loop still give up on a lost connection,
the worker enters it again after a pause that doubles up to `_MAX_PAUSE_S`. Only a stop request
ends it.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import time
from types import FrameType
from typing import Any

from rq import SimpleWorker
from rq.exceptions import StopRequested

from restyle.engines.holder import Engines
from restyle.service import runner
from restyle.service.lanes import LANES, Lane, parse_lanes
from restyle.service.settings import ServiceSettings

# RQ calls `run_next` by name with only the lane: what the worker built at start is kept here.
_state: dict[str, object] = {}


def run_next(lane: str) -> None:
    """What RQ calls with a lane's ticket (see stores.redis_jobs.RUN_NEXT): take the lane's
    next job, if any is left, and run it."""
    from restyle.service.stores.redis_backend import RedisBackend

    settings = _state.get("settings")
    if not isinstance(settings, ServiceSettings):
        settings = _state["settings"] = ServiceSettings()
    backend = _state.get("backend")
    if not isinstance(backend, RedisBackend):
        backend = _state["backend"] = RedisBackend(settings)
    engines = _state.get("engines")
    if not isinstance(engines, Engines):
        engines = _state["engines"] = settings.engines()
    record = backend.lanes.take(parse_lanes(lane), time.time())
    if record is not None:
        runner.run_claimed(backend, record, settings, engines)


_FIRST_PAUSE_S = 0.5
_MAX_PAUSE_S = 30.0
log = logging.getLogger("restyle.service")


class _Worker(SimpleWorker):
    """RQ's SimpleWorker, remembering a stop request: RQ's `work` returns alike whether it was
    asked to stop or gave up on an error, and only the first must end `restyle worker`."""

    stop_requested = False

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]  # RQ: no hints


def work(
    settings: ServiceSettings,
    *,
    burst: bool = False,
    name: str | None = None,
    lanes: tuple[Lane, ...] = LANES,
) -> bool:
    """Serve jobs of `lanes` until stopped (or, with `burst`, until their queues are empty)."""
    from rq.serializers import JSONSerializer

    from restyle.service.stores.redis_backend import RedisBackend

    if not settings.redis_url:
        raise ValueError("a worker needs RESTYLE_REDIS_URL (or --redis)")
    backend = RedisBackend(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if lanes == ("heavy",) and settings.heavy_nice > 0:
        # A heavy-only worker beside an interactive one on the same machine lets it have the
        # cores first (as the embedded server's heavy thread does); alone it loses nothing.
        os.nice(settings.heavy_nice)
    engines = settings.engines()
    built = engines.setup()
    logging.getLogger("restyle.service").info(
        "engines ready on %s: %s; serving the lanes %s",
        engines.device,
        ", ".join(built),
        ", ".join(lanes),
    )
    _state.update(settings=settings, backend=backend, engines=engines)
    base_name = name or f"restyle-{socket.gethostname()}-{os.getpid()}"
    worked, pause = False, _FIRST_PAUSE_S
    for round_ in itertools.count():
        # A new name each round: a worker that could not record its death in Redis is still
        # registered under the old one until that registration expires.
        worker = _Worker(
            [backend.jobs.queues[lane] for lane in lanes],
            connection=backend.redis,
            serializer=JSONSerializer,
            name=base_name if round_ == 0 else f"{base_name}-{round_}",
        )
        started = time.monotonic()
        try:
            worked = _work_once(worker, burst=burst) or worked
        except backend.unavailable:  # RQ's teardown after a lost connection fails too
            log.warning("lost the connection to Redis", exc_info=True)
        if worker.stop_requested or burst:
            break
        log.warning("worker loop ended without a stop request; again in %.1f s", pause)
        try:
            time.sleep(pause)
        except StopRequested:  # RQ's signal handler, still installed, when asked to stop now
            break
        # Back to a short pause after a good long run: this was a new outage, not the same one.
        long_run = time.monotonic() - started > _MAX_PAUSE_S
        pause = _FIRST_PAUSE_S if long_run else min(2 * pause, _MAX_PAUSE_S)
    return worked


def _work_once(worker: Any, *, burst: bool) -> bool:
    """One run of RQ's work loop; it ends on a stop request, in burst mode when the queues are
    empty, or when it meets an error it does not handle (a lost connection mid-job)."""
    return bool(worker.work(burst=burst, with_scheduler=False, logging_level="INFO"))
