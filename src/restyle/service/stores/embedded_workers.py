"""The embedded mode's worker threads: each serves one lane (`restyle.service.lanes`), taking
its next queued job and running it.

The threads share the CPU: a heavy lane's thread lowers its own scheduling priority (`nice`,
`heavy_nice`), and so do the threads its computations start (PyTorch's OpenMP team of a thread
is started by it and inherits its priority), so an interactive request still gets the cores
when it comes. Fewer intra-op threads would not do: PyTorch's thread count is one setting for
the whole process. Measured on 2 cores: a 0.37 s batch of convolutions took 0.71 s beside
a busy thread at the same priority and 0.42 s beside one at nice 10.

A disk that is full or read-only is an outage of the store, not a fault of the job at hand:
the threads wait with a pause that doubles up to `_MAX_PAUSE_S`, logging once per outage.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from restyle.service.jobs import JobRecord
from restyle.service.lanes import Lane
from restyle.service.stores.base import StoreUnavailable
from restyle.service.stores.embedded_jobs import EmbeddedJobStore
from restyle.service.stores.embedded_lanes import EmbeddedLaneStore

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
    """One thread per entry of `threads` (the lanes it serves, in order), each of which calls
    `setup` (the engines, built once: the first job waits for them), then runs each job it takes
    with `run(record)` (the job claimed). A thread serving the heavy lane runs at `heavy_nice`."""

    def __init__(
        self,
        jobs: EmbeddedJobStore,
        lanes: EmbeddedLaneStore,
        run: Callable[[JobRecord], None],
        *,
        setup: Callable[[], object],
        threads: Sequence[Sequence[Lane]],
        heavy_nice: int = 0,
    ) -> None:
        self.jobs, self.lanes, self.run, self.setup = jobs, lanes, run, setup
        self.threads = [tuple(lanes_of_thread) for lanes_of_thread in threads]
        self.heavy_nice = heavy_nice
        self.stopping = False
        self._outage = _Outage()
        self._threads: list[threading.Thread] = []

    def serving(self, lane: Lane) -> int:
        """How many threads serve `lane`."""
        return sum(lane in lanes for lanes in self.threads)

    def start(self) -> None:
        for i, lanes in enumerate(self.threads):
            thread = threading.Thread(
                target=self._work_loop, args=(lanes,), name=f"restyle-{'+'.join(lanes)}-{i}"
            )
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        with self.jobs.work:
            self.stopping = True
            self.jobs.work.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def _next_job(self, lanes: Sequence[Lane]) -> JobRecord | None:
        with self.jobs.work:
            while not self.stopping:
                record = self.lanes.take_held(lanes, time.time())
                if record is not None:
                    return record
                self.jobs.work.wait(timeout=1.0)
        return None

    def _lower_priority(self, lanes: Sequence[Lane]) -> None:
        if "heavy" not in lanes or self.heavy_nice <= 0:
            return
        try:  # this thread only (Linux: the nice value is a thread's); what it starts inherits it
            current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            os.setpriority(
                os.PRIO_PROCESS, threading.get_native_id(), min(current + self.heavy_nice, 19)
            )
        except (OSError, AttributeError):  # a platform without per-thread priorities
            log.info("could not lower the heavy lane's priority", exc_info=True)

    def _work_loop(self, lanes: Sequence[Lane]) -> None:
        self._lower_priority(lanes)
        try:
            self.setup()  # off the event loop; the first job waits for it
        except Exception:  # a broken engine fails its jobs with a clear error, not the pool
            log.exception("building the engines failed")
        while not self.stopping:
            job_id = None
            try:
                record = self._next_job(lanes)
                if record is None:
                    return
                job_id = record.id
                self.run(record)
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
