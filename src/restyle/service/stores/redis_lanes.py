"""The Redis backend's lanes: a worker's ticket (`worker.run_next(lane)`) takes the lane's next
job with one Lua script, in the same fair order as `restyle.service.lanes.next_in_line`, then
claims it. The lanes' keys are in `redis_keys`."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import redis
from rq import Worker

from restyle.service.jobs import JobRecord, JobStatus
from restyle.service.lanes import LANES, TURNS_KEPT_S, Lane, LaneLine, Running, Waiting
from restyle.service.stores import redis_keys as keys
from restyle.service.stores.base import LaneStore
from restyle.service.stores.redis_jobs import RedisJobStore

# Take the lane's next job off its zset and count its client's turn, as one step: a synchronous
# request first (a negative score), else the client served least recently (never: 0), then the
# oldest job. Turns older than TURNS_KEPT_S are forgotten.
# KEYS: the lane's zset, its clients, its turns. ARGV: the time, TURNS_KEPT_S.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return false end
local best = first[1]
if tonumber(first[2]) >= 0 then
  local ids = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  local best_turn, best_score = nil, nil
  for i = 1, #ids, 2 do
    local client = redis.call('HGET', KEYS[2], ids[i]) or ''
    local turn = tonumber(redis.call('ZSCORE', KEYS[3], client) or '0')
    local score = tonumber(ids[i + 1])
    if best_turn == nil or turn < best_turn or (turn == best_turn and score < best_score) then
      best, best_turn, best_score = ids[i], turn, score
    end
  end
end
local client = redis.call('HGET', KEYS[2], best) or ''
redis.call('ZREM', KEYS[1], best)
redis.call('HDEL', KEYS[2], best)
redis.call('ZADD', KEYS[3], ARGV[1], client)
return best
"""

_WORKERS_TTL_S = 5.0  # RQ's registry of workers is read at most this often per lane


class RedisLaneStore(LaneStore):
    def __init__(self, connection: redis.Redis, jobs: RedisJobStore) -> None:
        self.redis, self.jobs = connection, jobs
        self._take = connection.register_script(_TAKE)
        self._workers: dict[Lane, tuple[float, int]] = {}

    def take(self, lanes: Sequence[Lane], now: float) -> JobRecord | None:
        for lane in lanes:
            script_keys = [keys.lane(lane), keys.lane_clients(lane), keys.turns(lane)]
            while True:
                taken = self._take(keys=script_keys, args=[json.dumps(now), TURNS_KEPT_S])
                if not taken:
                    break
                record = self.jobs.claim(keys.text(taken), now, lane=lane)
                if record is not None:
                    return record
                # Cancelled or deleted between the two steps: the next one.
        return None

    def line(self, lane: Lane) -> LaneLine:
        ids = [keys.text(i) for i in self.redis.zrange(keys.lane(lane), 0, -1)]
        running_ids = [keys.text(i) for i in self.redis.smembers(keys.RUNNING)]
        fields = ("client", "priority", "created_at", "expected_s", "lane", "status")
        more = ("started_at", "progress")
        with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(keys.job(job_id), *fields)
            for job_id in running_ids:
                pipe.hmget(keys.job(job_id), *fields, *more)
            pipe.zrange(keys.turns(lane), 0, -1, withscores=True)
            replies = pipe.execute()
        waiting, running = [], []
        for job_id, values in zip(ids, replies[: len(ids)], strict=True):
            if values[0] is None:
                continue  # deleted since the lane was read
            client, priority, created, expected = (json.loads(v or "null") for v in values[:4])
            waiting.append(
                Waiting(
                    id=job_id,
                    client=client,
                    priority=priority or 0,
                    queued_at=created or 0.0,
                    expected_s=expected,
                )
            )
        for values in replies[len(ids) : -1]:
            if values[0] is None:
                continue
            decoded = [json.loads(v or "null") for v in values]
            _, _, created, expected, job_lane, status, started, progress = decoded
            if job_lane == lane and status == JobStatus.RUNNING.value:
                running.append(
                    Running(
                        started_at=started or created or 0.0,
                        expected_s=expected,
                        progress=progress or 0.0,
                    )
                )
        served = {keys.text(client): float(at) for client, at in replies[-1]}
        return LaneLine(
            lane=lane,
            waiting=tuple(waiting),
            running=tuple(running),
            served=served,
            workers=self._serving(lane),
        )

    def _serving(self, lane: Lane) -> int | None:
        """The workers RQ lists as listening to the lane's queue (None: none)."""
        now = time.monotonic()
        cached = self._workers.get(lane)
        if cached is None or now - cached[0] > _WORKERS_TTL_S:
            cached = (now, Worker.count(connection=self.redis, queue=self.jobs.queues[lane]))
            self._workers[lane] = cached
        return cached[1] or None

    def restock(self) -> int:
        """A lane with more queued jobs than tickets gets the missing tickets (a ticket lost
        with a worker that died holding it, or never written when Redis failed after the
        admission). A ticket too many is harmless: it finds its lane empty."""
        added = 0
        for lane in LANES:
            missing = int(self.redis.zcard(keys.lane(lane))) - self.jobs.queues[lane].count
            if missing > 0:
                self.jobs.ticket(lane, missing)
                added += missing
        return added
