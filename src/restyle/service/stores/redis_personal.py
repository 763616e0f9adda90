"""Personal styles in Redis (keys: `redis_keys`), and each machine's cache of their networks.

A worker or API process that needs a network copies it into a local cache folder, named by its
digest; the least recently used beyond `MODEL_CACHE_ENTRIES` are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis

from restyle.service.personal import FILES, PersonalStyle
from restyle.service.stores import redis_keys as keys
from restyle.service.stores.base import PersonalStyleStore

# Personal networks cached per machine (about 1.3 MB each): the least recently used beyond this
# many are removed, so a long-running worker's disk does not fill with styles deleted or expired
# elsewhere. A removed one is fetched from Redis again if it is used again.
MODEL_CACHE_ENTRIES = 64


class RedisPersonalStyleStore(PersonalStyleStore):
    def __init__(self, connection: redis.Redis) -> None:
        self.redis = connection

    def put(
        self, style: PersonalStyle, files: Mapping[str, bytes], *, most: int | None = None
    ) -> bool:
        owner = keys.owner(style.owner_sha256)
        for name in files:
            if name not in FILES:
                raise ValueError(f"not a personal style file: {name!r}")
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    # WATCH the owner's set: a style stored meanwhile voids this transaction
                    # and the count is taken again.
                    pipe.watch(owner)  # type: ignore[no-untyped-call]
                    if most is not None:
                        others = [i for i in pipe.zrange(owner, 0, -1) if keys.text(i) != style.id]
                        if len(others) >= most:
                            pipe.unwatch()
                            return False
                    pipe.multi()  # MULTI/EXEC: all of it or nothing
                    for name, data in files.items():
                        pipe.set(keys.style_file(style.id, name), data)
                    pipe.set(keys.style(style.id), style.model_dump_json())
                    pipe.zadd(owner, {style.id: style.created_at})
                    if style.expires_at is not None:
                        pipe.zadd(keys.STYLES_EXPIRING, {style.id: style.expires_at})
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    def get(self, style_id: str) -> PersonalStyle | None:
        value = self.redis.get(keys.style(style_id))
        return PersonalStyle.model_validate_json(value) if value else None

    def of_owner(self, owner_sha256: str) -> list[PersonalStyle]:
        ids = self.redis.zrange(keys.owner(owner_sha256), 0, -1)
        styles = (self.get(keys.text(i)) for i in ids)
        return [s for s in styles if s is not None]

    def update(self, style_id: str, **fields: Any) -> PersonalStyle | None:
        style = self.get(style_id)
        if style is None:
            return None
        style = PersonalStyle.model_validate({**style.model_dump(), **fields})
        with self.redis.pipeline() as pipe:
            pipe.set(keys.style(style_id), style.model_dump_json(), xx=True)
            if style.expires_at is None:
                pipe.zrem(keys.STYLES_EXPIRING, style_id)
            else:
                pipe.zadd(keys.STYLES_EXPIRING, {style_id: style.expires_at})
            pipe.execute()
        return style

    def delete(self, style_id: str) -> None:
        style = self.get(style_id)
        with self.redis.pipeline() as pipe:
            pipe.delete(keys.style(style_id), *(keys.style_file(style_id, n) for n in FILES))
            pipe.zrem(keys.STYLES_EXPIRING, style_id)
            if style is not None:
                pipe.zrem(keys.owner(style.owner_sha256), style_id)
            pipe.execute()

    def file(self, style_id: str, name: str) -> bytes | None:
        if name not in FILES:
            raise ValueError(f"not a personal style file: {name!r}")
        value = self.redis.get(keys.style_file(style_id, name))
        return value if isinstance(value, bytes) else None

    def expired(self, now: float) -> list[str]:
        return [keys.text(i) for i in self.redis.zrangebyscore(keys.STYLES_EXPIRING, 0, now)]

    def model_path(self, style: PersonalStyle) -> Path:
        folder = Path(tempfile.gettempdir()) / "restyle-personal-styles"
        path = folder / f"{style.model_sha256}.safetensors"
        if path.is_file():
            with contextlib.suppress(OSError):  # pruned by another process meanwhile: refetch
                os.utime(path)  # recently used: the last to be pruned
                return path
        data = self.file(style.id, "model.safetensors")
        if data is None or hashlib.sha256(data).hexdigest() != style.model_sha256:
            raise FileNotFoundError(f"personal style {style.id}: its network is missing")
        folder.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=".style-", dir=folder)
        with os.fdopen(handle, "wb") as target:
            target.write(data)
        os.replace(partial, path)  # readers never see half a file
        prune_model_cache(folder, keep=MODEL_CACHE_ENTRIES)
        return path


def prune_model_cache(folder: Path, *, keep: int) -> None:
    """Remove all but the `keep` most recently used networks in `folder` (by modification
    time, which a cache hit renews), and partial files left by a process that died writing."""

    def used_at(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # removed by another process meanwhile
            return 0.0

    models = sorted(folder.glob("*.safetensors"), key=used_at, reverse=True)
    stale = time.time() - 3600
    partials = [p for p in folder.glob(".style-*") if 0 < used_at(p) < stale]
    for path in [*models[keep:], *partials]:
        path.unlink(missing_ok=True)
