"""The embedded mode's worker threads: each takes the next queued job and runs it.

A disk that is full or read-only is an outage of the store, not a fault of the job at hand:
the threads wait with a pause that doubles up to `_MAX_PAUSE_S`, logging once per outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from restyle.service.stores.base import StoreUnavailable
from restyle.service.stores.embedded_jobs import EmbeddedJobStore

log = logging.getLogger("restyle.service")

_FIRST_PAUSE_S = 0.5
_MAX_PAUSE_S = 10.0  # the longest a queued job waits after the disk is writable again


class _Outage:
    """The worker threads' shared backoff while the store cannot be written: the pause doubles
    up to `_MAX_PAUSE_S`, and the outage is logged when it starts and when it ends, not at every
    attempt."""

    def __init__(self) -> None:
        self.pause = 0.0
        self._lock = threading.Lock()

    def failed(self, error: Exception) -> float:
        with self._lock:
            if self.pause == 0.0:
                log.error("the job store cannot be written (%s); retrying with backoff", error)
            self.pause = min(max(2 * self.pause, _FIRST_PAUSE_S), _MAX_PAUSE_S)
            return self.pause

    def succeeded(self) -> None:
        with self._lock:
            if self.pause:
                log.warning("the job store can be written again")
            self.pause = 0.0


class WorkerPool:
    """`workers` threads, each of which calls `setup` (the engines, built once: the first job
    waits for them), then runs each queued job of `jobs` it takes with `run(job_id)`."""

    def __init__(
        self,
        jobs: EmbeddedJobStore,
        run: Callable[[str], None],
        *,
        setup: Callable[[], object],
        workers: int,
    ) -> None:
        self.jobs, self.run, self.setup, self.workers = jobs, run, setup, workers
        self.stopping = False
        self._outage = _Outage()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.workers):
            thread = threading.Thread(target=self._work_loop, name=f"restyle-worker-{i}")
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        with self.jobs.work:
            self.stopping = True
            self.jobs.work.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def _next_queued(self) -> str | None:
        with self.jobs.work:
            while not self.stopping:
                job_id = self.jobs.first_queued()
                if job_id is not None:
                    return job_id
                self.jobs.work.wait(timeout=1.0)
        return None

    def _work_loop(self) -> None:
        try:
            self.setup()  # off the event loop; the first job waits for it
        except Exception:  # a broken engine fails its jobs with a clear error, not the pool
            log.exception("building the engines failed")
        while not self.stopping:
            job_id = None
            try:
                job_id = self._next_queued()
                if job_id is None:
                    return
                self.run(job_id)
            except StoreUnavailable as exc:  # a full or read-only disk: wait, do not spin
                self._pause(self._outage.failed(exc))
                continue
            except Exception:  # the pool must outlive any one job
                log.exception("worker crashed on job %s", job_id)
                time.sleep(0.1)
                continue
            self._outage.succeeded()

    def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the pool stops."""
        with self.jobs.work:
            if not self.stopping:
                self.jobs.work.wait(timeout=seconds)
