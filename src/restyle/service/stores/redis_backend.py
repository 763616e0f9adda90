"""The scale-out backend: records and files in Redis, jobs dispatched to `restyle worker` by RQ.

Why RQ: it is Redis-only (one moving part, which GPU machines reach by dialling out), runs plain
synchronous Python functions (what a PyTorch job is), keeps its queues as Redis lists (so Redis's
append-only file keeps queued jobs across a restart), and its `SimpleWorker` runs jobs in the
worker process itself, so models load once per worker. Celery and Dramatiq bring a broker
abstraction and their own result stores that this service does not need. RQ carries only the
job id, JSON-serialised: nothing from a client is ever pickled or unpickled.

The keys are listed in `redis_keys`; every store below shares one connection.

Every command is retried with backoff through a Redis outage of up to `store_retry_s` (a
restart, a fail-over), in the API and in the workers, RQ's own commands included: a worker that
is busy when Redis restarts keeps its job's outcome and writes it once Redis is back.
"""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from restyle.service.settings import ServiceSettings
from restyle.service.stores.base import Backend
from restyle.service.stores.redis_blobs import RedisBlobStore
from restyle.service.stores.redis_jobs import RedisJobStore
from restyle.service.stores.redis_lanes import RedisLaneStore
from restyle.service.stores.redis_personal import RedisPersonalStyleStore
from restyle.service.stores.redis_stats import RedisStatsStore


class RedisBackend(Backend):
    mode = "redis"
    unavailable = (redis.ConnectionError, redis.TimeoutError)
    jobs: RedisJobStore
    lanes: RedisLaneStore
    blobs: RedisBlobStore
    personal: RedisPersonalStyleStore
    stats: RedisStatsStore

    def __init__(self, settings: ServiceSettings, connection: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = connection or redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=10,
            socket_connect_timeout=5,
            health_check_interval=10,
            retry=store_retry(settings.store_retry_s),
        )
        # Readiness must answer at once while Redis is away, not after the retries above.
        self._probe = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(ExponentialBackoff(), 0),
        )
        # Long enough for the longest job a server admits (a video of max_video_frames).
        longest = settings.job_time_limit(settings.max_video_frames)
        blob_ttl = int(settings.result_ttl_s + longest + 3600)
        self.blobs = RedisBlobStore(self.redis, ttl=blob_ttl)
        self.jobs = RedisJobStore(self.redis, settings, blob_ttl=blob_ttl)
        self.lanes = RedisLaneStore(self.redis, self.jobs)
        self.personal = RedisPersonalStyleStore(self.redis)
        self.stats = RedisStatsStore(self.redis)

    def unready_reason(self) -> str | None:
        try:
            return None if self._probe.ping() else "Redis does not answer"
        except redis.RedisError:
            return "Redis does not answer"

    def stop(self) -> None:
        self.redis.close()
        self._probe.close()


def store_retry(seconds: float) -> Retry:
    """redis-py's retry policy for an outage of about `seconds`: waits from 50 ms doubling to
    1 s, as many as add up to `seconds` (each failed attempt takes its own time on top)."""
    backoff = ExponentialBackoff(cap=1.0, base=0.05)
    retries, waited = 0, 0.0
    while waited < seconds:
        retries += 1
        waited += backoff.compute(retries)
    return Retry(backoff, retries)
