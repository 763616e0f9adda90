"""A job's files in Redis: `blob:<id>:<name>`, expiring after `ttl` seconds (they need no sweep)."""

from __future__ import annotations

import redis

from restyle.service.stores import redis_keys as keys
from restyle.service.stores.base import BlobStore


class RedisBlobStore(BlobStore):
    def __init__(self, connection: redis.Redis, *, ttl: int) -> None:
        self.redis, self.ttl = connection, ttl

    def put(self, job_id: str, name: str, data: bytes) -> None:
        self.redis.set(keys.blob(job_id, name), data, ex=self.ttl)

    def get(self, job_id: str, name: str) -> bytes | None:
        value = self.redis.get(keys.blob(job_id, name))
        return value if isinstance(value, bytes) else None

    def delete(self, job_id: str, name: str) -> None:
        self.redis.delete(keys.blob(job_id, name))
