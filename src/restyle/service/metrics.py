"""/metrics in the Prometheus text format: queue depth (and each lane's line and workers), job
outcomes and durations, API errors.

Job statistics come from the backend (workers may be other processes or machines), read at
scrape time; API errors are counted in this process.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from restyle.service.lanes import LANES
from restyle.service.stores.base import DURATION_BUCKETS, Backend

# `*_created` timestamps double every counter's lines and say nothing a scraper needs here.
disable_created_metrics()  # type: ignore[no-untyped-call]


class _JobCollector(Collector):
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def collect(self) -> Iterator[Metric]:
        stats = self.backend.stats.counters()
        queued = GaugeMetricFamily("restyle_queue_depth", "Jobs waiting for a worker")
        queued.add_metric([], self.backend.stats.queue_depth())
        yield queued
        running = GaugeMetricFamily("restyle_jobs_running", "Jobs running now")
        running.add_metric([], len(self.backend.jobs.running()))
        yield running
        yield from self._lanes()
        finished = CounterMetricFamily(
            "restyle_jobs_finished", "Jobs that ended, by status", labels=["status"]
        )
        for status in ("succeeded", "failed", "cancelled"):
            finished.add_metric([status], stats.get(f"finished:{status}", 0.0))
        yield finished
        errors = CounterMetricFamily(
            "restyle_job_errors", "Failed jobs by error code", labels=["code"]
        )
        for key, value in sorted(stats.items()):
            if key.startswith("errors:"):
                errors.add_metric([key.removeprefix("errors:")], value)
        yield errors
        buckets = [
            (str(le), stats.get(f"duration_bucket:{le}", 0.0)) for le in DURATION_BUCKETS
        ] + [("+Inf", stats.get("duration_bucket:+Inf", 0.0))]
        durations = HistogramMetricFamily(
            "restyle_job_duration_seconds", "Run time of finished jobs"
        )
        durations.add_metric([], buckets, sum_value=stats.get("duration_sum", 0.0))
        yield durations

    def _lanes(self) -> Iterator[Metric]:
        """Each lane's queued and running jobs and its workers: what to size workers by."""
        families = {
            "queued": GaugeMetricFamily("restyle_lane_queued", "Jobs waiting", labels=["lane"]),
            "running": GaugeMetricFamily("restyle_lane_running", "Jobs running", labels=["lane"]),
            "workers": GaugeMetricFamily(
                "restyle_lane_workers", "Workers serving the lane", labels=["lane"]
            ),
        }
        for lane in LANES:
            line = self.backend.lanes.line(lane)
            families["queued"].add_metric([lane], len(line.waiting))
            families["running"].add_metric([lane], len(line.running))
            families["workers"].add_metric([lane], line.workers or 0)
        yield from families.values()


class ServiceMetrics:
    """The registry of one API process."""

    def __init__(self, backend: Backend) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_JobCollector(backend))
        self.api_errors = Counter(
            "restyle_api_errors",
            "Requests answered with an error, by code",
            ["code"],
            registry=self.registry,
        )

    def count_error(self, code: str) -> None:
        self.api_errors.labels(code=code).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
