"""Job statistics in Redis (the `stats` hash of counters) and the live counts of the queue."""

from __future__ import annotations

import redis

from restyle.service.jobs import JobStatus
from restyle.service.lanes import LANES
from restyle.service.stores import redis_keys as keys
from restyle.service.stores.base import StatsStore, bucket_keys


class RedisStatsStore(StatsStore):
    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection

    def count_finished(self, status: JobStatus, seconds: float | None, error_code: str) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hincrbyfloat(keys.STATS, f"finished:{status.value}", 1)
            if error_code:
                pipe.hincrbyfloat(keys.STATS, f"errors:{error_code}", 1)
            if seconds is not None:
                for key in bucket_keys(seconds):
                    pipe.hincrbyfloat(keys.STATS, key, 1)
                pipe.hincrbyfloat(keys.STATS, "duration_sum", seconds)
                pipe.hincrbyfloat(keys.STATS, "duration_count", 1)
            pipe.execute()

    def counters(self) -> dict[str, float]:
        return {keys.text(k): float(v) for k, v in self.redis.hgetall(keys.STATS).items()}

    def active_count(self, client: str) -> int:
        return sum(int(self.redis.scard(keys.active(client, lane))) for lane in LANES)

    def queue_depth(self) -> int:
        # The records waiting, as admission counts them (a dropped synchronous request may
        # still have its entry in an RQ queue, which its worker skips).
        return int(self.redis.zcard(keys.QUEUED))
