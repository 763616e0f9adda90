"""`restyle.options`: option declarations, their parsing, checks and JSON schema, blend weights."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from restyle.engines.registry import ENGINES
from restyle.errors import InvalidParameterError
from restyle.options import (
    OptionSpec,
    check_options,
    normalise_weights,
    option,
    option_specs,
)
from restyle.postprocess_config import PostprocessConfig


@dataclass(frozen=True)
class Demo:
    """One option of every kind."""

    count: int = option(3, label="Count", help="a count", minimum=1, maximum=10, public=True)
    ratio: float = option(0.5, label="Ratio", help="a ratio", minimum=0.0, maximum=1.0)
    mode: Literal["a", "b"] = option("a", label="Mode", help="a mode")
    name: str = option("", label="Name", help="any text")
    flag: bool = option(False, label="Switch", help="a switch", flag="--switch")
    names: tuple[str, ...] = option(("x",), label="Names", help="names, comma-separated")
    weights: tuple[float, ...] = option((), label="Weights", help="weights, one per name")
    shape: tuple[int, int] | None = option(
        None, label="Shape", help="a shape", minimum=1, maximum=100
    )
    limit: int | None = option(None, label="Limit", help="a limit", minimum=0)
    plain: int = 5  # a field, not an option

    def __post_init__(self) -> None:
        check_options(self)


SPECS = {spec.name: spec for spec in option_specs(Demo)}


def _spec(name: str) -> OptionSpec:
    return SPECS[name]


def _error(name: str, value: str) -> str:
    """The pattern of an error that names the option and the offending value."""
    return rf"^{re.escape(name)}: .*{re.escape(value)}"


def test_declarations_give_kinds_limits_choices_and_flags() -> None:
    assert list(SPECS) == [
        "count", "ratio", "mode", "name", "flag", "names", "weights", "shape", "limit",
    ]  # fmt: skip
    kinds = {name: (spec.kind, spec.nullable) for name, spec in SPECS.items()}
    assert kinds == {
        "count": ("int", False),
        "ratio": ("float", False),
        "mode": ("str", False),
        "name": ("str", False),
        "flag": ("bool", False),
        "names": ("str_list", False),
        "weights": ("float_list", False),
        "shape": ("int_pair", True),
        "limit": ("int", True),
    }
    assert _spec("mode").choices == ("a", "b") and _spec("name").choices is None
    assert (_spec("count").minimum, _spec("count").maximum, _spec("count").public) == (1, 10, True)
    assert _spec("flag").cli_flag == "--switch" and _spec("limit").cli_flag == "--limit"
    assert option_specs(Demo) is option_specs(Demo)  # read once per class


def test_a_type_without_an_option_kind_is_a_declaration_error() -> None:
    @dataclass(frozen=True)
    class Bad:
        table: dict[str, int] = option(None, label="Table", help="no such kind")

    with pytest.raises(TypeError, match=r"Bad\.table"):
        option_specs(Bad)


def test_an_option_without_a_label_is_a_declaration_error() -> None:
    with pytest.raises(TypeError, match="label"):
        option(1, help="a count")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("", r"1\.\.40 characters"),
        ("   ", r"1\.\.40 characters"),
        (" Count", r"1\.\.40 characters"),
        ("A label of forty-one characters, one over", r"1\.\.40 characters.*\(41\)"),
        ("A count", "repeats its help"),
    ],
)
def test_a_label_that_is_empty_long_or_the_help_again_is_a_declaration_error(
    label: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        option(1, label=label, help="a count")


def test_a_label_of_forty_characters_is_enough() -> None:
    label = "A label of exactly forty characters, yes"
    assert len(label) == 40
    option(1, label=label, help="a count")


# -- parse ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("count", " 7 ", 7),
        ("count", "-3", -3),  # parsed; `check` judges the range
        ("ratio", "0.25", 0.25),
        ("ratio", "1e-3", 1e-3),
        ("mode", "b", "b"),
        ("name", "  hello ", "hello"),
        ("flag", "true", True),
        ("flag", "YES", True),
        ("flag", "on", True),
        ("flag", "1", True),
        ("flag", "false", False),
        ("flag", "no", False),
        ("flag", "Off", False),
        ("flag", "0", False),
        ("names", "relu1_1, relu2_1,,", ("relu1_1", "relu2_1")),
        ("names", "", ()),
        ("weights", "1, 2.5", (1.0, 2.5)),
        ("weights", "", ()),
        ("shape", "30x40", (30, 40)),
        ("shape", "30X40", (30, 40)),
        ("shape", "30,40", (30, 40)),
        ("shape", "none", None),
        ("shape", "NULL", None),
        ("shape", "", None),
        ("limit", "None", None),
        ("limit", "12", 12),
    ],
)
def test_parse_reads_each_kind_from_text(name: str, text: str, value: Any) -> None:
    parsed = _spec(name).parse(text)
    assert parsed == value and type(parsed) is type(value)


def test_parse_reads_nan_and_inf_as_numbers_that_check_rejects() -> None:
    spec = _spec("ratio")
    for text in ("nan", "inf", "-inf"):
        value = spec.parse(text)
        assert isinstance(value, float) and not math.isfinite(value)
        with pytest.raises(InvalidParameterError, match=_error("ratio", repr(value))):
            spec.check(value)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("count", "1.5"),
        ("count", "seven"),
        ("count", "none"),  # not nullable
        ("ratio", "half"),
        ("flag", "maybe"),
        ("flag", "2"),
        ("weights", "1,x"),
        ("shape", "30"),
        ("shape", "30x40x50"),
        ("shape", "30xforty"),
        ("limit", "lots"),
    ],
)
def test_parse_errors_name_the_option_and_the_text(name: str, text: str) -> None:
    with pytest.raises(InvalidParameterError, match=_error(name, repr(text.strip()))):
        _spec(name).parse(text)


def test_parse_errors_say_what_was_expected() -> None:
    with pytest.raises(InvalidParameterError, match=r"an integer in \[1, 10\]"):
        _spec("count").parse("x")
    with pytest.raises(InvalidParameterError, match="true or false"):
        _spec("flag").parse("x")
    with pytest.raises(
        InvalidParameterError, match=r"HEIGHTxWIDTH with sides in \[1, 100\] or none"
    ):
        _spec("shape").parse("x")


# -- check ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("count", 1),
        ("count", 10),
        ("ratio", 0),
        ("ratio", 1.0),
        ("ratio", 0.5),
        ("mode", "a"),
        ("name", "anything at all"),
        ("flag", True),
        ("names", ()),
        ("names", ["a", "b"]),
        ("weights", (1, 2.5)),
        ("weights", []),
        ("shape", (1, 100)),
        ("shape", [5, 6]),
        ("shape", None),
        ("limit", None),
        ("limit", 0),
    ],
)
def test_check_accepts_valid_values(name: str, value: Any) -> None:
    _spec(name).check(value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("count", 0),
        ("count", 11),
        ("count", 2.0),
        ("count", True),
        ("count", "3"),
        ("count", None),
        ("ratio", -0.1),
        ("ratio", 1.5),
        ("ratio", math.nan),
        ("ratio", math.inf),
        ("ratio", -math.inf),
        ("ratio", False),
        ("ratio", "0.5"),
        ("mode", "c"),
        ("mode", 1),
        ("name", None),
        ("flag", 1),
        ("flag", "true"),
        ("names", "relu1_1"),
        ("names", ("a", 1)),
        ("weights", (1.0, math.nan)),
        ("weights", (1.0, math.inf)),
        ("weights", (True,)),
        ("weights", ("1",)),
        ("weights", 1.0),
        ("shape", (10,)),
        ("shape", (10, 20, 30)),
        ("shape", (10.0, 20)),
        ("shape", (0, 20)),
        ("shape", (10, 101)),
        ("shape", (True, 20)),
        ("shape", "10x20"),
        ("limit", -1),
        ("limit", math.nan),
    ],
)
def test_check_rejects_invalid_values_naming_option_and_value(name: str, value: Any) -> None:
    with pytest.raises(InvalidParameterError, match=_error(name, repr(value))):
        _spec(name).check(value)


def test_check_error_lists_the_choices() -> None:
    with pytest.raises(InvalidParameterError, match="mode: expected one of a, b, got 'c'"):
        _spec("mode").check("c")


def test_check_options_validates_every_option_and_stores_tuples() -> None:
    demo = Demo(names=["p", "q"], weights=[1, 2], shape=[3, 4])  # type: ignore[arg-type]
    assert demo.names == ("p", "q") and isinstance(demo.names, tuple)
    assert demo.weights == (1, 2) and isinstance(demo.weights, tuple)
    assert demo.shape == (3, 4) and isinstance(demo.shape, tuple)
    assert Demo(plain="not checked").plain == "not checked"  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match=_error("count", "99")):
        Demo(count=99)
    with pytest.raises(InvalidParameterError, match=_error("limit", "-5")):
        Demo(limit=-5)
    # Options of real classes: a list from JSON becomes the declared tuple.
    post = PostprocessConfig(output_size=[10, 20])  # type: ignore[arg-type]
    assert post.output_size == (10, 20) and isinstance(post.output_size, tuple)
    gatys = ENGINES["gatys"].options(style_layers=["relu1_1", "relu2_1"])
    assert gatys.style_layers == ("relu1_1", "relu2_1")


# -- JSON schema ----------------------------------------------------------------------------


def test_json_schema_of_each_kind() -> None:
    schemas = {name: spec.json_schema() for name, spec in SPECS.items()}
    assert schemas["count"] == {
        "type": "integer", "minimum": 1, "maximum": 10,
        "title": "Count", "description": "a count", "default": 3,
    }  # fmt: skip
    assert schemas["ratio"] == {
        "type": "number", "minimum": 0.0, "maximum": 1.0,
        "title": "Ratio", "description": "a ratio", "default": 0.5,
    }  # fmt: skip
    assert schemas["mode"] == {
        "type": "string", "enum": ["a", "b"],
        "title": "Mode", "description": "a mode", "default": "a",
    }  # fmt: skip
    assert schemas["name"] == {
        "type": "string", "title": "Name", "description": "any text", "default": "",
    }  # fmt: skip
    assert schemas["flag"] == {
        "type": "boolean", "title": "Switch", "description": "a switch", "default": False,
    }  # fmt: skip
    assert schemas["names"] == {
        "type": "array", "items": {"type": "string"},
        "title": "Names", "description": "names, comma-separated", "default": ["x"],
    }  # fmt: skip
    assert schemas["weights"] == {
        "type": "array", "items": {"type": "number"},
        "title": "Weights", "description": "weights, one per name", "default": [],
    }  # fmt: skip
    assert schemas["shape"] == {
        "anyOf": [
            {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
            {"type": "null"},
        ],
        "title": "Shape",
        "description": "a shape",
        "default": None,
    }
    assert schemas["limit"] == {
        "anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}],
        "title": "Limit",
        "description": "a limit",
        "default": None,
    }
    json.dumps(schemas)  # plain JSON: tuples became lists


# -- blend weights ----------------------------------------------------------------------------


def test_normalise_weights_none_gives_equal_weights() -> None:
    assert normalise_weights(None, 1) == [1.0]
    assert normalise_weights(None, 4) == [0.25] * 4


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ([1, 3], [0.25, 0.75]),
        ((2.0, 2.0), [0.5, 0.5]),
        ([0, 5], [0.0, 1.0]),
        ([0.1, 0.2, 0.7], [0.1, 0.2, 0.7]),
        ([1e-9], [1.0]),
    ],
)
def test_normalise_weights_scales_to_sum_one(weights: Any, expected: list[float]) -> None:
    result = normalise_weights(weights, len(weights))
    assert result == pytest.approx(expected)
    assert math.fsum(result) == pytest.approx(1.0)
    assert all(type(w) is float for w in result)


@pytest.mark.parametrize(
    ("weights", "count", "message"),
    [
        ([1.0, 1.0], 3, r"style_weights: one weight per style expected \(3\), got 2: \[1.0, 1.0\]"),
        ([1.0], 2, r"style_weights: one weight per style expected \(2\), got 1"),
        ([-1.0, 2.0], 2, r"style_weights: .*>= 0, got \[-1.0, 2.0\]"),
        ([math.nan, 1.0], 2, r"style_weights: .*finite.*\[nan, 1.0\]"),
        ([math.inf, 1.0], 2, r"style_weights: .*finite.*\[inf, 1.0\]"),
        ([True, 1.0], 2, r"style_weights: .*\[True, 1.0\]"),
        (["1", 1.0], 2, r"style_weights: .*\['1', 1.0\]"),
        ([0, 0], 2, r"style_weights: weights must not all be 0, got \[0, 0\]"),
        ([0.0], 1, r"style_weights: weights must not all be 0, got \[0.0\]"),
        (None, 0, "style: at least one style"),
        ([], 0, "style: at least one style"),
    ],
)
def test_normalise_weights_rejects_bad_weights(weights: Any, count: int, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        normalise_weights(weights, count)


# -- every engine's declarations ----------------------------------------------------------------


def _declared_classes() -> list[type]:
    from restyle.training.config import FastLossConfig, RefineRecipe, TrainConfig

    classes: list[type] = [PostprocessConfig, TrainConfig, FastLossConfig, RefineRecipe]
    for spec in ENGINES.values():
        classes += [spec.setup, spec.options]
    return classes


@pytest.mark.parametrize("cls", _declared_classes(), ids=lambda cls: cls.__name__)
def test_every_option_has_help_and_a_default_that_passes_its_own_check(cls: type) -> None:
    instance = cls()  # the defaults pass __post_init__'s checks
    specs = option_specs(cls)
    assert specs, f"{cls.__name__} declares no options"
    for spec in specs:
        assert spec.help.strip(), f"{cls.__name__}.{spec.name} has no help"
        spec.check(spec.default)
        schema = spec.json_schema()
        assert schema["description"] == spec.help
        json.dumps(schema)
        if spec.kind in ("int", "float") and spec.default is not None:
            low = -math.inf if spec.minimum is None else spec.minimum
            high = math.inf if spec.maximum is None else spec.maximum
            assert low <= spec.default <= high, f"{cls.__name__}.{spec.name}"
        if spec.choices is not None and spec.default is not None:
            assert spec.default in spec.choices
        assert getattr(instance, spec.name) is not None or spec.nullable


def _every_declared_option() -> list[tuple[str, OptionSpec]]:
    """What every surface shows: each engine's setup and per-call options, the video's, and
    training's (`restyle train`'s flags)."""
    from restyle.training.config import FastLossConfig, RefineRecipe, TrainConfig
    from restyle.video.config import VideoOptions

    found = [
        (f"{engine.name}.{spec.name}", spec)
        for engine in ENGINES.values()
        for spec in (*engine.setup_specs(), *engine.option_specs())
    ]
    for cls in (VideoOptions, TrainConfig, FastLossConfig, RefineRecipe):
        found += [(f"{cls.__name__}.{spec.name}", spec) for spec in option_specs(cls)]
    return found


def test_every_declared_option_has_a_short_label_that_is_not_its_help() -> None:
    declared = _every_declared_option()
    assert len(declared) > 40  # the registry was read, not an empty list
    for where, spec in declared:
        assert 1 <= len(spec.label) <= 40, f"{where}: label {spec.label!r}"
        assert spec.label == spec.label.strip() and spec.label[0].isupper(), where
        assert spec.label.casefold() != spec.help.casefold(), f"{where}: label is its help"
        schema = spec.json_schema()
        assert (schema["title"], schema["description"]) == (spec.label, spec.help), where


def test_every_engine_lists_its_options_and_the_shared_post_processing() -> None:
    post = [spec.name for spec in option_specs(PostprocessConfig)]
    for engine in ENGINES.values():
        names = [spec.name for spec in engine.option_specs()]
        assert names[-len(post) :] == post
        assert len(names) == len(set(names)), f"{engine.name}: an option is declared twice"
        setup_names = {spec.name for spec in engine.setup_specs()}
        assert not setup_names & set(names), f"{engine.name}: setup and options overlap"
        public = engine.public_option_specs()
        assert public and all(spec.public for spec in public)
        described = engine.describe()
        assert set(described["options"]["properties"]) == {spec.name for spec in public}
        json.dumps(described)
