"""Every option of every engine reaches every surface, with the same choices and limits.

The declarations (`restyle.options` fields of the engines' setup and options classes, and of
the training configs) are the one source; the CLI's flags, the service's form fields and JSON
schema are derived from them. (The web page's controls are checked against /api/engines in
tests/test_web.py.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from PIL import Image

from restyle.cli import build_parser, main
from restyle.engines.registry import ENGINES
from restyle.options import OptionSpec, option_specs
from restyle.service.budgets import server_bounds
from restyle.service.form import FORM_FIELDS, engine_description
from restyle.service.settings import ServiceSettings
from restyle.training.config import FastLossConfig, RefineRecipe, TrainConfig

ALL_OPTIONS = [
    (engine.name, spec)
    for engine in ENGINES.values()
    for spec in (*engine.setup_specs(), *engine.option_specs())
]


def _stylize_flags() -> dict[str, argparse.Action]:
    parser = build_parser("stylize")
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {action.dest: action for action in sub.choices["stylize"]._actions}


@pytest.mark.parametrize(
    ("engine", "spec"), ALL_OPTIONS, ids=[f"{e}.{s.name}" for e, s in ALL_OPTIONS]
)
def test_every_option_is_a_cli_flag_with_its_choices(engine: str, spec: OptionSpec) -> None:
    action = _stylize_flags()[spec.name]
    assert spec.cli_flag in action.option_strings
    assert action.default is argparse.SUPPRESS  # the engine's default applies, written once
    if spec.choices is not None:
        # One flag for every engine that has the option: its choices are theirs together, in
        # the engines' order, and each engine's own declaration rejects the others (below).
        engines_choices = [s.choices or () for _, s in ALL_OPTIONS if s.name == spec.name]
        assert list(action.choices or ()) == list(
            dict.fromkeys(c for cs in engines_choices for c in cs)
        )
    if spec.kind != "bool":
        assert action.type is not None
        assert action.type(_text(spec.default)) == spec.default


@pytest.mark.parametrize(
    ("engine", "spec"), ALL_OPTIONS, ids=[f"{e}.{s.name}" for e, s in ALL_OPTIONS]
)
def test_every_public_option_is_in_the_service_schema(engine: str, spec: OptionSpec) -> None:
    settings = ServiceSettings()
    properties = engine_description(engine, settings)["options"]["properties"]
    if not spec.public:
        assert spec.name not in properties
        return
    assert spec.name in FORM_FIELDS
    schema = properties[spec.name]
    value = schema["anyOf"][0] if "anyOf" in schema else schema
    if spec.choices is not None:
        assert value["enum"] == list(spec.choices)
    # The page labels its control with the short title and offers the description as help.
    assert (schema["title"], schema["description"]) == (spec.label, spec.help)
    low, high = server_bounds(engine, settings).get(spec.name, (None, None))
    if spec.minimum is not None:
        assert value["minimum"] == (spec.minimum if low is None else max(low, spec.minimum))
    if spec.maximum is not None:
        assert value["maximum"] == (spec.maximum if high is None else min(high, spec.maximum))


def test_video_options_are_served_with_their_label_and_help() -> None:
    from restyle.video.config import VideoOptions

    public = {spec.name: spec for spec in option_specs(VideoOptions) if spec.public}
    for engine in ENGINES:
        video = engine_description(engine, ServiceSettings())["video_options"]
        if video is None:
            continue
        properties = video["properties"]
        assert set(properties) == set(public)
        for name, schema in properties.items():
            assert (schema["title"], schema["description"]) == (
                public[name].label,
                public[name].help,
            )


def test_the_cli_help_is_the_long_help() -> None:
    # A flag several engines share says the first engine's help.
    flags = _stylize_flags()
    for _, spec in ALL_OPTIONS:
        helps = [s.help for _, s in ALL_OPTIONS if s.name == spec.name]
        assert (flags[spec.name].help or "").startswith(helps[0]), spec.name


def _text(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--method", "gatys", "--size", "99999"], "size"),
        (["--method", "fast", "--strength", "1.5"], "strength"),
        (["--method", "fast", "--iterations", "3"], "iterations"),
        (["--method", "gatys", "--style-scale", "nan"], "style_scale"),
        (["--method", "gatys", "--precision", "float16"], "precision"),
    ],
)
def test_the_cli_rejects_what_the_declaration_rejects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    photo = tmp_path / "p.png"
    Image.new("RGB", (8, 8)).save(photo)
    style = "starry-night" if "fast" in argv else "starry_night"
    code = main(["stylize", str(photo), "-s", style, "-o", str(tmp_path / "o.png"), *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_the_service_rejects_an_option_its_engine_lacks() -> None:
    from restyle.service.errors import ApiError
    from restyle.service.form import parse_options as _options

    fields = {"method": "fast", "style": "starry-night", "iterations": "5"}
    with pytest.raises(ApiError, match="iterations: not an option of the fast engine") as caught:
        _options(fields, ServiceSettings(), has_style_image=False)
    assert caught.value.status == 400


def test_the_options_doc_is_written_from_the_declarations() -> None:
    from restyle.cli.options_doc import options_markdown

    doc = Path(__file__).resolve().parents[1] / "docs" / "options.md"
    assert doc.read_text(encoding="utf-8") == options_markdown(), (
        "docs/options.md is stale: run `python -m restyle.cli.options_doc > docs/options.md`"
    )


# -- restyle train ------------------------------------------------------------------------------


def _train_flags(engine: str) -> dict[str, argparse.Action]:
    parser = build_parser("train")
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = commands.choices["train"]
    engines = next(a for a in train._actions if isinstance(a, argparse._SubParsersAction))
    return {action.dest: action for action in engines.choices[engine]._actions}


TRAIN_OPTIONS = [*option_specs(TrainConfig), *option_specs(FastLossConfig)]


@pytest.mark.parametrize("engine", ["fast", "arbitrary"])
@pytest.mark.parametrize("spec", TRAIN_OPTIONS, ids=[s.name for s in TRAIN_OPTIONS])
def test_every_training_option_is_a_train_flag(engine: str, spec: OptionSpec) -> None:
    action = _train_flags(engine)[spec.name]
    assert action.option_strings[0] == spec.cli_flag
    assert action.default is argparse.SUPPRESS  # the config's default applies, written once
    assert (action.help or "").replace("%%", "%").startswith(spec.help)  # as --help prints it
    assert action.choices == (list(spec.choices) if spec.choices is not None else None)
    assert action.type is not None
    if spec.name == "time_limit_s":  # a duration: a number of seconds or with its unit
        assert [action.type(t) for t in ("90", "5m", "1.5h")] == [90.0, 300.0, 5400.0]
    else:
        assert action.type(_text(spec.default)) == spec.default


def test_train_flags_keep_their_other_spellings() -> None:
    flags = _train_flags("fast")
    assert flags["learning_rate"].option_strings == ["--learning-rate", "--lr"]
    assert flags["time_limit_s"].option_strings == ["--time"]


@pytest.mark.parametrize("name", ["personal", "refine-cpu"])
def test_a_recipe_spelt_out_as_flags_parses_back_to_the_recipe(name: str) -> None:
    """A recipe's `train_arguments` (recorded in every refined network's command) name the
    declared flags, and the configs they parse into hold the recipe's values."""
    from restyle.cli.train import REFINE_RECIPES

    recipe = REFINE_RECIPES[name]
    argv = ["train", "fast", "--init", "arbitrary", "--style", "x", "--out", "o"]
    given = vars(build_parser("train").parse_args([*argv, *recipe.train_arguments()]))
    configs = [
        cls(**{k: v for k, v in given.items() if k in {s.name for s in option_specs(cls)}})
        for cls in (TrainConfig, FastLossConfig)
    ]
    assert configs[1] == recipe.loss()
    for spec in option_specs(RefineRecipe):
        if spec.name == "frozen":
            assert tuple(given["freeze"].split(",")) == recipe.frozen
            continue
        config = next(c for c in configs if hasattr(c, spec.name))
        assert getattr(config, spec.name) == getattr(recipe, spec.name), spec.name


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch-size", "0"], "batch_size"),
        (["--zoom", "9"], "zoom"),
        (["--style-balance", "2"], "style_balance"),
        (["--content-layers", "relu9_9"], "content_layers"),
        (["--image-size", "30"], "multiple of 4"),
        (["--precision", "float16"], "invalid choice"),
        (["--time", "0"], "a duration must be positive"),
        (["--steps", "1.5"], "steps: expected an integer"),
    ],
)
def test_train_rejects_what_the_declaration_rejects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    args = ["train", "fast", "--style", "starry_night", "--out", str(tmp_path), "--quiet"]
    try:
        code = main([*args, *argv])
    except SystemExit as exc:  # argparse's own refusals
        code = int(exc.code or 0)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before any training
