"""Options declared once: every engine option is a dataclass field made with `option()`.

An option's name, type, default, label, help, limits and choices live in its field. Everything
else is derived from those declarations: the validation below (one place, one wording of errors),
the CLI's flags, the service's form fields and JSON schema, the web page's controls and the docs'
tables. Adding an option is one field plus its test.

Two kinds of dataclasses use `option()`:
- *setup* (`GatysSetup`, `FastSetup`, ...): what an engine is built with once (precision,
  weights, runtime). Changing it means building another engine.
- *options* (`GatysOptions`, `FastOptions`, `PostprocessConfig`, ...): what each call may
  change (size, iterations, strength). `public=True` marks those an HTTP client may set; the
  rest (optimiser internals, layer lists) are for the library and the CLI.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from restyle.errors import InvalidParameterError

Precision = Literal["auto", "float32", "float16", "bfloat16"]
"""Compute precision of an engine's network. "auto": the fastest precision known to keep the
look on the device (see each engine's setup)."""

Kind = Literal["int", "float", "str", "bool", "str_list", "float_list", "int_pair"]

_META_KEY = "restyle.option"

MAX_LABEL = 40
"""Longest label: it must fit beside a control on a phone (390 px) without wrapping twice."""


@dataclass(frozen=True)
class OptionMeta:
    label: str  # a control's name, in plain words ("Style strength")
    help: str  # what it does and how to choose (the CLI's --help, the page's "?")
    minimum: float | None = None
    maximum: float | None = None
    public: bool = False
    flag: str | None = None  # the CLI flag, when not --name-with-dashes
    bare: str | None = None  # the value of the CLI flag given without one
    duration: bool = False  # seconds, written in text as "90", "90s", "5m" or "1.5h"


def option(
    default: Any,
    *,
    label: str,
    help: str,
    minimum: float | None = None,
    maximum: float | None = None,
    public: bool = False,
    flag: str | None = None,
    bare: str | None = None,
    duration: bool = False,
) -> Any:
    """A dataclass field that declares an option (see the module docstring).

    `label` names the option where space is short (the web page's controls, the docs' tables):
    at most `MAX_LABEL` characters of plain words, not its `help` again. `help` says what it does
    and how to choose (the CLI's `--help`, the page's help text, the schema's description).
    `duration` marks a float of seconds that text (a flag, a form field) may give with a unit.
    """
    _check_label(label, help)
    meta = OptionMeta(
        label=label,
        help=help,
        minimum=minimum,
        maximum=maximum,
        public=public,
        flag=flag,
        bare=bare,
        duration=duration,
    )
    return dataclasses.field(default=default, metadata={_META_KEY: meta})


def _check_label(label: str, help: str) -> None:
    # A TypeError/ValueError at declaration (import time), so no option ships without a label.
    if not isinstance(label, str):
        raise TypeError(f"option label: a string expected, got {label!r}")
    text = label.strip()
    if not text or text != label or len(label) > MAX_LABEL:
        raise ValueError(
            f"option label: 1..{MAX_LABEL} characters without outer spaces, got {label!r} "
            f"({len(label)})"
        )
    if text.casefold() == help.strip().casefold():
        raise ValueError(f"option label: {label!r} repeats its help; the help should say more")


@dataclass(frozen=True)
class OptionSpec:
    """One option as every surface sees it."""

    name: str
    kind: Kind
    default: Any
    label: str
    help: str
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    public: bool = False
    flag: str | None = None
    bare: str | None = None
    duration: bool = False

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def json_schema(self) -> dict[str, Any]:
        """JSON schema of the value (what the service accepts; the web page builds from it)."""
        schema: dict[str, Any]
        if self.kind in ("int", "float"):
            schema = {"type": "integer" if self.kind == "int" else "number"}
            if self.minimum is not None:
                schema["minimum"] = self.minimum
            if self.maximum is not None:
                schema["maximum"] = self.maximum
        elif self.kind == "str":
            schema = {"type": "string"}
            if self.choices is not None:
                schema["enum"] = list(self.choices)
        elif self.kind == "bool":
            schema = {"type": "boolean"}
        else:
            item = {"str_list": "string", "float_list": "number", "int_pair": "integer"}[self.kind]
            schema = {"type": "array", "items": {"type": item}}
            if self.kind == "int_pair":
                schema.update(minItems=2, maxItems=2)
        if self.nullable:
            schema = {"anyOf": [schema, {"type": "null"}]}
        schema["title"] = self.label
        schema["description"] = self.help
        schema["default"] = list(self.default) if isinstance(self.default, tuple) else self.default
        return schema

    def parse(self, text: str) -> Any:
        """A value from text (a CLI argument or a form field), checked by `check` later."""
        text = text.strip()
        if self.nullable and text.lower() in ("", "none", "null"):
            return None
        try:
            if self.kind == "int":
                return int(text)
            if self.kind == "float":
                return parse_duration(text) if self.duration else float(text)
            if self.kind == "bool":
                lowered = text.lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise ValueError(text)
                return lowered in ("true", "1", "yes", "on")
            if self.kind == "str_list":
                return tuple(part.strip() for part in text.split(",") if part.strip())
            if self.kind == "float_list":
                return tuple(float(part) for part in text.split(",") if part.strip())
            if self.kind == "int_pair":
                height, width = text.lower().replace("x", ",").split(",")
                return (int(height), int(width))
        except ValueError as exc:
            raise InvalidParameterError(
                f"{self.name}: expected {self._expected()}, got {text!r}"
            ) from exc
        return text

    def check(self, value: Any) -> None:
        """Raise InvalidParameterError naming the option unless `value` is valid."""
        if value is None and self.nullable:
            return
        if self.kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool) and self._in_range(value)
        elif self.kind == "float":
            ok = (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and self._in_range(value)
            )
        elif self.kind == "str":
            ok = isinstance(value, str) and (self.choices is None or value in self.choices)
        elif self.kind == "bool":
            ok = isinstance(value, bool)
        else:
            ok = self._check_sequence(value)
        if not ok:
            raise InvalidParameterError(f"{self.name}: expected {self._expected()}, got {value!r}")

    def _check_sequence(self, value: Any) -> bool:
        if not isinstance(value, tuple | list):
            return False
        if self.kind == "str_list":
            return all(isinstance(v, str) for v in value)
        numbers = all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        )
        if self.kind == "float_list":
            return numbers
        return (
            numbers
            and len(value) == 2
            and all(isinstance(v, int) and self._in_range(v) for v in value)
        )

    def _in_range(self, value: float) -> bool:
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        return bool(low <= value <= high)

    def _expected(self) -> str:
        bounds = ""
        if self.minimum is not None or self.maximum is not None:
            low = "" if self.minimum is None else f"{self.minimum:g}"
            high = "" if self.maximum is None else f"{self.maximum:g}"
            bounds = f" in [{low}, {high}]"
        text = {
            "int": f"an integer{bounds}",
            "float": f"a duration in seconds{bounds} (90, 90s, 5m, 1.5h)"
            if self.duration
            else f"a finite number{bounds}",
            "str": "one of " + ", ".join(self.choices) if self.choices else "a string",
            "bool": "true or false",
            "str_list": "a comma-separated list",
            "float_list": "a comma-separated list of numbers",
            "int_pair": f"HEIGHTxWIDTH with sides{bounds}",
        }[self.kind]
        return text + (" or none" if self.nullable else "")


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in `text`: a number with an optional unit, s, m or h ("90", "5m", "1.5h");
    ValueError otherwise (the option's `check` judges the range)."""
    value = text.strip().lower()
    unit = _DURATION_UNITS.get(value[-1:])
    return float(value[:-1] if unit else value) * (unit or 1.0)


def option_specs(cls: type) -> tuple[OptionSpec, ...]:
    """The declared options of a setup or options dataclass, in field order."""
    return _specs(cls)


_SPEC_CACHE: dict[type, tuple[OptionSpec, ...]] = {}


def _specs(cls: type) -> tuple[OptionSpec, ...]:
    cached = _SPEC_CACHE.get(cls)
    if cached is not None:
        return cached
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get(_META_KEY)
        if meta is None:
            continue
        kind, nullable, choices = _kind_of(hints[f.name], f"{cls.__name__}.{f.name}")
        specs.append(
            OptionSpec(
                name=f.name,
                kind=kind,
                default=f.default,
                label=meta.label,
                help=meta.help,
                nullable=nullable,
                minimum=meta.minimum,
                maximum=meta.maximum,
                choices=choices,
                public=meta.public,
                flag=meta.flag,
                bare=meta.bare,
                duration=meta.duration,
            )
        )
    _SPEC_CACHE[cls] = result = tuple(specs)
    return result


def _kind_of(hint: Any, where: str) -> tuple[Kind, bool, tuple[str, ...] | None]:
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        kind, _, choices = _kind_of(rest[0], where)
        return kind, True, choices
    if origin is Literal:
        return "str", False, tuple(str(a) for a in args)
    simple: dict[Any, Kind] = {int: "int", float: "float", str: "str", bool: "bool"}
    if hint in simple:
        return simple[hint], False, None
    if origin is tuple:
        if args == (str, Ellipsis):
            return "str_list", False, None
        if args == (float, Ellipsis):
            return "float_list", False, None
        if args == (int, int):
            return "int_pair", False, None
    raise TypeError(f"{where}: no option kind for the type {hint!r}")


def check_options(instance: Any) -> None:
    """Validate every declared option of a dataclass instance (call from `__post_init__`).

    Lists arrive from JSON as lists; they are stored as the declared tuples.
    """
    for spec in _specs(type(instance)):
        value = getattr(instance, spec.name)
        spec.check(value)
        if isinstance(value, list):
            object.__setattr__(instance, spec.name, tuple(value))


def normalise_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """The one rule for blend weights: one per style, >= 0, not all 0; scaled to sum to 1.

    None gives equal weights.
    """
    if count < 1:
        raise InvalidParameterError("style: at least one style is needed")
    if weights is None:
        return [1.0 / count] * count
    values = list(weights)
    if len(values) != count:
        raise InvalidParameterError(
            f"style_weights: one weight per style expected ({count}), got {len(values)}: {values}"
        )
    for w in values:
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
            raise InvalidParameterError(
                f"style_weights: weights must be finite numbers >= 0, got {values}"
            )
    total = float(sum(values))
    if total <= 0:
        raise InvalidParameterError(f"style_weights: weights must not all be 0, got {values}")
    return [float(w) / total for w in values]
