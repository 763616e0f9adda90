"""The `restyle` command line: parses argv, calls the library, draws progress, maps errors to exits.

Exit codes: 0 success, 2 bad arguments or parameters, 3 unreadable or oversized image,
4 model weights missing or corrupt, 5 requested device unavailable, 1 any other Restyle error,
130 interrupted. Errors go to stderr as one line, never a traceback.

Commands live in modules of their own. `train` and `export` (training code) and `serve` and
`worker` (the service) are imported only when their command runs, so `restyle stylize` never
loads them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from restyle.cli.common import EXIT_INTERRUPTED, exit_code
from restyle.cli.stylize import parse_style
from restyle.errors import RestyleError

# command → (module, runner, one-line help): the module adds its parser only when its command runs.
_LAZY_COMMANDS = {
    "train": (
        "train",
        "run_train",
        "train a network (fast: one painting; arbitrary: any painting)",
    ),
    "export": ("train", "run_export", "export a trained style (ONNX)"),
    "serve": (
        "service",
        "run_serve",
        "run the HTTP API (embedded queue and workers unless RESTYLE_REDIS_URL is set)",
    ),
    "worker": (
        "service",
        "run_worker",
        "pull jobs from Redis and run them (scale-out mode, e.g. on a GPU machine)",
    ),
}
_STYLIZE_COMMANDS = {
    "stylize": "run_stylize",
    "demo": "run_demo",
    "examples": "run_examples",
    "styles": "run_styles",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; the arguments of a lazy command are added only when it is `command`."""
    from restyle.cli import stylize

    parser = argparse.ArgumentParser(
        prog="restyle", description="Neural style transfer: turn a photo into a painting."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    stylize.add_parsers(commands)
    for name, (module, _, help_text) in _LAZY_COMMANDS.items():
        if name == command:
            _module(module).add_parser(commands, name)
        else:
            commands.add_parser(name, help=help_text, add_help=False)
    return parser


def _module(name: str) -> Any:
    return importlib.import_module(f"restyle.cli.{name}")


def _command_of(argv: Sequence[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_command_of(arguments)).parse_args(arguments)
    args.argv = arguments  # recorded by `train`
    try:
        if args.command in _LAZY_COMMANDS:
            module, runner, _ = _LAZY_COMMANDS[args.command]
            code: int = getattr(_module(module), runner)(args)
        else:
            from restyle.cli import stylize

            code = getattr(stylize, _STYLIZE_COMMANDS[args.command])(args)
        return code
    except KeyboardInterrupt:
        print("restyle: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RestyleError as exc:
        print(f"restyle: error: {exc}", file=sys.stderr)
        return exit_code(exc)


__all__ = ["build_parser", "main", "parse_style"]
