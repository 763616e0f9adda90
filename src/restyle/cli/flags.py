"""CLI flags generated from option declarations: `restyle stylize`'s engine and video flags,
`restyle train`'s loop and loss flags.

Each declared option becomes one flag with the option's type, choices and help; its default is
left to the declaration (the flag is absent unless given), so a default lives only in the
option's declaration and the help shows it. An option several engines share (`size`) is one
flag whose help names each engine's default.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from restyle.engines.registry import ENGINES
from restyle.errors import InvalidParameterError
from restyle.options import OptionSpec, option_specs


def stylize_option_specs() -> dict[str, list[tuple[str, OptionSpec]]]:
    """Every setup and per-call option of every engine: name → [(engine, spec), ...]."""
    found: dict[str, list[tuple[str, OptionSpec]]] = {}
    for engine in ENGINES.values():
        for spec in (*engine.setup_specs(), *engine.option_specs()):
            found.setdefault(spec.name, []).append((engine.name, spec))
    return found


def add_option_flags(parser: argparse.ArgumentParser) -> list[str]:
    """One flag per option of `stylize_option_specs`; returns the options' names."""
    groups: dict[str, Any] = {}
    names = []
    for name, owners in stylize_option_specs().items():
        engines = tuple(engine for engine, _ in owners)
        title = "all engines" if len(engines) == len(ENGINES) else ", ".join(engines)
        group = groups.get(title)
        if group is None:
            group = groups[title] = parser.add_argument_group(f"options of {title}")
        _add_flag(group, owners)
        names.append(name)
    return names


def add_video_flags(parser: argparse.ArgumentParser) -> list[str]:
    """The flags of `VideoOptions` (video inputs only); returns the options' names."""
    from restyle.video.config import VideoOptions

    group = parser.add_argument_group("options of video inputs")
    return add_declared_flags(group, option_specs(VideoOptions))


def add_declared_flags(
    group: argparse._ActionsContainer,
    specs: Iterable[OptionSpec],
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """One flag per option of one declaring class; returns the options' names.

    `overrides` are argparse settings of an option's flag where the command line reads more than
    the option's kind does (`--time 5m`: a `type` and a `metavar`); `aliases` are further
    spellings of a flag (`--lr`). Both belong to the command line, not to the option.
    """
    names = []
    for spec in specs:
        _add_flag(
            group,
            [("", spec)],
            overrides=(overrides or {}).get(spec.name, {}),
            aliases=(aliases or {}).get(spec.name, ()),
        )
        names.append(spec.name)
    return names


def _add_flag(
    group: argparse._ActionsContainer,
    owners: list[tuple[str, OptionSpec]],
    *,
    overrides: Mapping[str, Any] | None = None,
    aliases: Sequence[str] = (),
) -> None:
    spec = owners[0][1]
    kwargs: dict[str, Any] = {
        "dest": spec.name,
        "default": argparse.SUPPRESS,
        # argparse expands %-formats in help; a declaration's help is plain text.
        "help": f"{spec.help} ({_defaults(owners)})".replace("%", "%%"),
    }
    if spec.kind == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs["type"] = _parser(owners)
        kwargs["metavar"] = _metavar(spec)
        choices = _choices(owners)
        if choices is not None:
            kwargs["choices"] = choices
            kwargs.pop("metavar")
        if spec.bare is not None:
            kwargs.update(nargs="?", const=spec.bare)
    kwargs.update(overrides or {})
    group.add_argument(spec.cli_flag, *aliases, **kwargs)


def _parser(owners: list[tuple[str, OptionSpec]]) -> Callable[[str], Any]:
    # The most permissive of the engines' declarations parses; the engine checks the value.
    spec = next((s for _, s in owners if s.nullable), owners[0][1])

    def parse(text: str) -> Any:
        try:
            return spec.parse(text)
        except InvalidParameterError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    return parse


def _choices(owners: list[tuple[str, OptionSpec]]) -> list[str] | None:
    if owners[0][1].choices is None:
        return None
    merged: dict[str, None] = {}
    for _, spec in owners:
        merged.update(dict.fromkeys(spec.choices or ()))
    return list(merged)


def _defaults(owners: Iterable[tuple[str, OptionSpec]]) -> str:
    by_default: dict[str, list[str]] = {}
    for engine, spec in owners:
        by_default.setdefault(_show(spec.default), []).append(engine)
    if len(by_default) == 1:
        return f"default {next(iter(by_default))}"
    return "; ".join(f"{', '.join(engines)}: {value}" for value, engines in by_default.items())


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "empty"
    return str(value)


def _metavar(spec: OptionSpec) -> str:
    if spec.duration:
        return "DURATION"
    return {
        "int": "N",
        "float": "X",
        "str": "TEXT",
        "str_list": "A,B",
        "float_list": "X,Y",
        "int_pair": "HxW",
    }.get(spec.kind, "VALUE")
