"""How `restyle serve` runs the API under uvicorn: its limits on connections, and its logs.

uvicorn bounds what it can: requests at once (`limit_concurrency`) and idle keep-alive
connections (`timeout_keep_alive`). Two things it leaves open are closed here, in a small
subclass of its h11 protocol (the `http=` class uvicorn accepts):

- it waits for ever for a request's headers, so a client that connects and sends nothing, or
  half a request line, holds a connection (and counts against `limit_concurrency`) for ever:
  `header_timeout_s` bounds that wait;
- a request over `limit_concurrency` gets uvicorn's own plain-text 503: here the JSON error of
  every other response (`busy`, with Retry-After).

A request body that drips is bounded in the ASGI layer (`uploads.BodyLimitMiddleware`).

Logs: a job's token may travel as `?token=` (EventSource and <img> cannot send headers), and
uvicorn's access log writes whole URLs. `RedactSecrets` blanks tokens in every log line the
server writes, its own and Restyle's; uvicorn never logs headers, so `Authorization` stays out.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from typing import Any
from urllib.parse import unquote_plus

import uvicorn
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from restyle.service.errors import error_body
from restyle.service.settings import ServiceSettings

_SECRET_QUERY_KEYS = frozenset({"token"})
_QUERY_PAIR = re.compile(r"(?P<lead>[?&;])(?P<key>[^=&;\s?#\"]+)=(?P<value>[^&;\s#\"]*)")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',]+")
_REDACTED = "[redacted]"
_BUSY_RETRY_AFTER_S = 1


def redact(text: str) -> str:
    """`text` with the values of `token` query parameters (however the key is percent-encoded)
    and bearer credentials replaced by `[redacted]`."""

    def pair(match: re.Match[str]) -> str:
        if unquote_plus(match["key"]).lower() not in _SECRET_QUERY_KEYS:
            return match[0]
        return f"{match['lead']}{match['key']}={_REDACTED}"

    return _BEARER.sub(rf"\g<1>{_REDACTED}", _QUERY_PAIR.sub(pair, text))


def _redacted(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """A logging filter that redacts tokens from a record's message and its arguments (uvicorn's
    access line passes the URL as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redacted(v) for k, v in record.args.items()}
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, with `RedactSecrets` on its handlers and Restyle's
    loggers (`restyle.*`) written by the same handler as uvicorn's errors."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_secrets": {"()": f"{__name__}.RedactSecrets"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_secrets"]
    config["loggers"]["restyle"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


class _BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers and a JSON 503 over
    uvicorn's `limit_concurrency`. `protocol_class` makes a subclass that sets the deadline."""

    header_timeout_s: float

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None
        # uvicorn's limit, by uvicorn's rule, but answered in JSON by `_admit`.
        self._concurrency_limit, self.limit_concurrency = self.limit_concurrency, None
        self._app = self.app
        self.app = self._admit

    async def _admit(self, scope: Scope, receive: Receive, send: Send) -> None:
        # This connection and this request's task are already counted, as in uvicorn's rule.
        limit = self._concurrency_limit
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) > limit):
            self.logger.warning("Exceeded concurrency limit.")
            body = error_body("busy", "the server is at its connection limit; try again shortly")
            headers = {"retry-after": str(_BUSY_RETRY_AFTER_S), "connection": "close"}
            await JSONResponse(body, status_code=503, headers=headers)(scope, receive, send)
            return
        await self._app(scope, receive, send)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()  # the next request's headers are due in time too

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        if not self.transport.is_closing():
            self._header_deadline = self.loop.call_later(self.header_timeout_s, self._overdue)

    def _overdue(self) -> None:
        # A request whose headers came is running (its body has its own deadline): leave it.
        waiting_for_headers = self.cycle is None or self.cycle.response_complete
        if waiting_for_headers and not self.transport.is_closing():
            self.logger.info("Closing a connection whose request headers did not arrive in time.")
            self.transport.close()


def protocol_class(settings: ServiceSettings) -> type[H11Protocol]:
    """The h11 protocol with this server's header deadline."""
    deadline = {"header_timeout_s": settings.header_timeout_s}
    return type("BoundedH11Protocol", (_BoundedH11Protocol,), deadline)


def serve(app: ASGIApp, settings: ServiceSettings, *, host: str, port: int) -> None:
    """Run `app` under uvicorn with the settings' limits and redacted logs, until stopped."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=protocol_class(settings),
        limit_concurrency=settings.limit_concurrency,
        timeout_keep_alive=settings.keep_alive_timeout_s,
        log_config=log_config(),
        log_level="info",
    )
