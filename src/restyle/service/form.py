"""The stylization form's fields and options, derived from the engine registry and
`VideoOptions`: which fields a form may carry, the options parsed and checked against the
engines' declarations and this server's limits, and each engine as `GET /api/engines` serves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from restyle import zoo
from restyle.engines.registry import ENGINES, EngineSpec
from restyle.errors import InvalidParameterError
from restyle.options import OptionSpec, option_specs
from restyle.service.budgets import (
    check_limits,
    job_budget,
    public_options,
    server_bounds,
    takes_video,
)
from restyle.service.errors import ApiError, validation_message
from restyle.service.jobs import JobOptions
from restyle.service.personal import is_personal, valid_id
from restyle.service.settings import ServiceSettings
from restyle.video.config import VideoOptions

REQUEST_FIELDS = frozenset({"content", "style", "style_image", "method", "format", "response"})
"""The form's own fields; the rest are the engines' public options (`option_fields`)."""


def option_fields() -> dict[str, dict[str, OptionSpec]]:
    """Each engine's public options by name: what a form may carry besides REQUEST_FIELDS."""
    return {name: public_options(name) for name in ENGINES}


def video_option_fields() -> dict[str, OptionSpec]:
    """The options a video job may set besides its engine's (`VideoOptions`' public ones)."""
    return {spec.name: spec for spec in option_specs(VideoOptions) if spec.public}


IMAGE_FORMATS = ("png", "jpeg", "webp")
VIDEO_FORMATS = ("mp4", "webm")
"""A video job's containers: H.264 in MP4 (the default), VP9 in WebM."""

FORM_FIELDS = (
    REQUEST_FIELDS
    | {name for fields in option_fields().values() for name in fields}
    | set(video_option_fields())
)


def parse_options(
    values: dict[str, str], settings: ServiceSettings, *, has_style_image: bool, video: bool = False
) -> JobOptions:
    """The form's text fields (`method`, `style`, `format`, the options; `values` is consumed)
    as checked JobOptions: a 400 ApiError naming the field for anything this server refuses."""
    method = values.pop("method", JobOptions.model_fields["method"].default)
    if method not in ENGINES:
        raise ApiError(
            400,
            "invalid_parameter",
            f"method: unknown engine {method!r}; available: {', '.join(ENGINES)}",
        )
    engine = ENGINES[method]
    if video and not takes_video(method):
        raise ApiError(
            400,
            "invalid_parameter",
            f"method: the {method} engine optimises every frame (minutes each on a CPU), so it "
            "does not take videos; use "
            + " or ".join(repr(name) for name in ENGINES if takes_video(name)),
        )
    request: dict[str, str] = {k: values.pop(k) for k in ("style", "format") if k in values}
    _check_format(request, video)
    video_specs = video_option_fields()
    video_values = {k: values.pop(k) for k in list(values) if k in video_specs}
    if video_values and not video:
        raise ApiError(
            400,
            "invalid_parameter",
            f"{sorted(video_values)[0]}: an option of video jobs, and the content is an image",
        )
    parsed = engine_values(method, values, settings, status=400, video=video)
    try:
        video_parsed = {name: video_specs[name].parse(text) for name, text in video_values.items()}
        VideoOptions(**video_parsed)  # the declaration validates the values
    except InvalidParameterError as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from exc
    parsed |= video_parsed
    try:
        options = JobOptions.model_validate({**request, "method": method, "options": parsed})
    except ValidationError as exc:
        message = validation_message(exc.errors()[0], quote_input=True)
        raise ApiError(400, "invalid_parameter", message) from exc
    _check_style(options, engine, has_style_image=has_style_image)
    if not engine.installed():
        raise ApiError(
            400, "method_unavailable", f"method {method!r}: its model is not installed here"
        )
    return options


def engine_values(
    method: str,
    given: Mapping[str, Any],
    settings: ServiceSettings,
    *,
    status: int,
    video: bool = False,
) -> dict[str, Any]:
    """Engine `method`'s options as a client gave them (form text parsed by each option's
    declaration, JSON values as they are), checked against the declarations and this server's
    limits: an ApiError with `status` naming the first option refused."""
    specs = option_fields()[method]
    misplaced = sorted(set(given) - set(specs))
    if misplaced:
        raise ApiError(
            status,
            "invalid_parameter",
            f"{misplaced[0]}: not an option of the {method} engine; its options: "
            f"{', '.join(sorted(specs))}",
        )
    try:
        parsed = {name: _value(specs[name], value) for name, value in given.items()}
        check_limits(parsed, method, settings, video=video)
        ENGINES[method].split(parsed)  # the engine's option classes validate every value
    except InvalidParameterError as exc:
        raise ApiError(status, "invalid_parameter", str(exc)) from exc
    return parsed


def _value(spec: OptionSpec, given: Any) -> Any:
    if isinstance(given, str):
        return spec.parse(given)
    return tuple(given) if isinstance(given, list) else given


def _check_style(options: JobOptions, engine: EngineSpec, *, has_style_image: bool) -> None:
    """One style: a zoo style (and variant) that exists, a personal style's well-formed id, or
    an uploaded painting for an engine that takes one."""
    if has_style_image == (options.style is not None):
        raise ApiError(
            400,
            "invalid_style",
            "give exactly one of 'style' (a style id from /api/styles) or 'style_image' (a file)",
        )
    if is_personal(options.style):  # its owner is checked by the route, which has the token
        assert options.style is not None
        if not valid_id(options.style):
            raise ApiError(
                400, "unknown_style", f"style: {options.style!r} is not a personal style id"
            )
    elif options.style is not None:
        style_id, variant = zoo.split_spec(options.style)
        entry = zoo.find(style_id)
        if entry is None:
            known = ", ".join(e.id for e in zoo.entries())
            raise ApiError(400, "unknown_style", f"style: no style {style_id!r}; known: {known}")
        if variant is not None and variant not in entry.variants:
            raise ApiError(400, "unknown_style", f"style: {style_id!r} has no {variant!r} network")
    if engine.styles == "trained" and has_style_image:
        raise ApiError(
            400,
            "invalid_style",
            f"method {engine.name!r} runs a trained style (field 'style'); for an uploaded "
            "painting use a method that takes any painting: "
            + ", ".join(repr(e.name) for e in ENGINES.values() if e.styles == "painting"),
        )


def _check_format(request: dict[str, str], video: bool) -> None:
    """A video job writes a video container (mp4 unless asked), an image job an image."""
    wanted = request.get("format")
    formats, kind = (VIDEO_FORMATS, "a video") if video else (IMAGE_FORMATS, "an image")
    if wanted is None:
        if video:
            request["format"] = VIDEO_FORMATS[0]
        return
    if wanted not in formats and wanted in (*IMAGE_FORMATS, *VIDEO_FORMATS):
        raise ApiError(
            400,
            "invalid_parameter",
            f"format: the content is {kind}, so the result is one of {', '.join(formats)}; "
            f"got {wanted!r}",
        )


def engine_description(method: str, settings: ServiceSettings) -> dict[str, Any]:
    """The engine and its public options' JSON schema with this server's limits (what the
    web page builds its controls from, and what `check_limits` enforces)."""
    described = ENGINES[method].describe()
    properties = described["options"]["properties"]
    bounds = server_bounds(method, settings)
    for name, (low, high) in bounds.items():
        schema = properties.get(name)
        if schema is None:
            continue
        target = schema["anyOf"][0] if "anyOf" in schema else schema
        target["minimum"] = max(low, target.get("minimum", low))
        target["maximum"] = min(high, target.get("maximum", high))
        if isinstance(schema.get("default"), int) and schema["default"] > target["maximum"]:
            schema["default"] = target["maximum"]
    described["limits"] = job_budget(method, settings)
    described["video_options"] = None
    described["video_formats"] = []
    if takes_video(method):
        video = {name: spec.json_schema() for name, spec in video_option_fields().items()}
        described["video_options"] = {
            "type": "object",
            "additionalProperties": False,
            "properties": video,
        }
        described["video_formats"] = list(VIDEO_FORMATS)
    return described
