"""`restyle serve` and `restyle worker`: the HTTP service and its scale-out workers."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def add_parser(commands: Any, name: str) -> None:
    """The parser of `serve` or `worker`."""
    if name == "serve":
        _add_serve(commands)
    else:
        _add_worker(commands)


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the HTTP API (embedded queue and workers unless RESTYLE_REDIS_URL is set)",
        description=(
            "Run the HTTP API with OpenAPI docs at /docs. Settings come from RESTYLE_* "
            "environment variables (see restyle.service.settings); data under "
            "RESTYLE_DATA_DIR (default ./restyle-data)."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--redis", default=None, help="Redis URL: scale-out mode (no local workers)")
    serve.add_argument("--data-dir", default=None, help="overrides RESTYLE_DATA_DIR")
    serve.add_argument(
        "--interactive-workers",
        type=int,
        default=None,
        help="embedded: threads for quick jobs (default 1)",
    )
    serve.add_argument(
        "--heavy-workers",
        type=int,
        default=None,
        help="embedded: threads for slow jobs: gatys, videos, refinements (default 1)",
    )


def _add_worker(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="pull jobs from Redis and run them (scale-out mode, e.g. on a GPU machine)",
    )
    worker.add_argument("--redis", default=None, help="Redis URL (default RESTYLE_REDIS_URL)")
    worker.add_argument("--device", default=None, help="compute device (default: auto)")
    worker.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    worker.add_argument("--name", default=None, help="worker name (default host-pid)")
    worker.add_argument(
        "--lanes",
        default="interactive,heavy",
        help="the lanes this worker serves, in the order it looks at them (default "
        "interactive,heavy; e.g. a GPU machine for the heavy lane: --lanes heavy)",
    )


def _settings(args: argparse.Namespace) -> Any:
    from restyle.service.settings import ServiceSettings

    overrides = {
        "redis_url": args.redis,
        "data_dir": getattr(args, "data_dir", None),
        "interactive_workers": getattr(args, "interactive_workers", None),
        "heavy_workers": getattr(args, "heavy_workers", None),
        "device": getattr(args, "device", None),
    }
    return ServiceSettings(**{k: v for k, v in overrides.items() if v is not None})


def run_serve(args: argparse.Namespace) -> int:
    from restyle.service.app import create_app
    from restyle.service.serving import serve

    settings = _settings(args)
    mode = f"Redis at {settings.redis_url}" if settings.redis_url else "embedded"
    print(
        f"restyle: serving on http://{args.host}:{args.port} ({mode}; API docs at /docs, "
        f"data in {os.path.abspath(settings.data_dir)})",
        flush=True,
    )
    serve(create_app(settings), settings, host=args.host, port=args.port)
    return 0


def run_worker(args: argparse.Namespace) -> int:
    from restyle.cli.common import EXIT_USAGE
    from restyle.service.lanes import parse_lanes
    from restyle.service.worker import work

    try:
        lanes = parse_lanes(args.lanes)
    except ValueError as exc:
        print(f"restyle worker: {exc}", file=sys.stderr)
        return EXIT_USAGE
    work(_settings(args), burst=args.burst, name=args.name, lanes=lanes)
    return 0
