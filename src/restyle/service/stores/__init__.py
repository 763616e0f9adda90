"""Where jobs, their files, personal styles and statistics are kept: one interface per kind of
thing kept (`base.py`), each with an embedded implementation (SQLite and files on this disk,
`embedded_*.py`) and a Redis one (`redis_*.py`). A `Backend` holds one of each, as `jobs`,
`blobs`, `personal` and `stats`, and starts and stops them: `EmbeddedBackend` (`embedded.py`,
with the worker threads of `restyle serve`) or `RedisBackend` (`redis_backend.py`, RQ's queues
for `restyle worker`). `restyle.service.app.make_backend` picks one from the settings.
"""
