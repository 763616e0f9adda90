"""The options tables of the docs, written from the declarations (`docs/options.md`).

    python -m restyle.cli.options_doc > docs/options.md

A test checks that the file in the repository is what this prints, so the docs cannot drift
from the declarations. It reads the engines' and the video's options, so it sits above both,
beside the other surfaces built from them (the command line's flags).
"""

from __future__ import annotations

from restyle.engines.registry import ENGINES
from restyle.options import OptionSpec, option_specs
from restyle.video.config import VideoOptions  # declarations only: no PyAV, no OpenCV


def options_markdown() -> str:
    lines = [
        "# Engine options",
        "",
        "Written by `python -m restyle.cli.options_doc` from the option declarations; do not",
        "edit by hand. *Setup* is fixed when an engine is built (per process or worker); *options*",
        "may change with every call. The CLI flag of `name_with_underscores` is "
        "`--name-with-dashes`",
        "(other flags are given). Options marked *API* can be set by HTTP clients "
        "(`GET /api/engines`",
        "gives them with the server's own limits). The *label* is what the web page calls an",
        "option; the *meaning* is its help (`--help`, and the help button beside its control",
        "on the page).",
    ]
    for engine in ENGINES.values():
        lines += [
            "",
            f"## `{engine.name}`: {engine.title}",
            "",
            f"{engine.summary[:1].upper()}{engine.summary[1:]}.",
            "",
        ]
        lines += [_HEADER, _RULE]
        for part, specs in (("setup", engine.setup_specs()), ("", engine.option_specs())):
            lines += [_row(spec, part) for spec in specs]
    lines += [
        "",
        "## Video inputs",
        "",
        "`restyle stylize clip.mp4 -o out.mp4` and `restyle.video.stylize_video` take these "
        "besides the",
        "engine's options (see `docs/video.md`). Those marked *API* can be set by a video job of "
        "the",
        "service (`GET /api/engines` gives them as each engine's `video_options`).",
        "",
        _HEADER,
        _RULE,
    ]
    lines += [_row(spec, "") for spec in option_specs(VideoOptions)]
    return "\n".join(lines) + "\n"


_HEADER = "| option | label | kind | default | range or choices | API | meaning |"
_RULE = "|---|---|---|---|---|---|---|"


def _row(spec: OptionSpec, part: str) -> str:
    flag = f" (`{spec.flag}`)" if spec.flag else ""
    kind = f"{part} " if part else ""
    return (
        f"| `{spec.name}`{flag} | {spec.label} | {kind}{spec.kind.replace('_', ' ')}"
        f"{' or none' if spec.nullable else ''} | {_value(spec.default)} | {_range(spec)} | "
        f"{'yes' if spec.public else ''} | {spec.help} |"
    )


def _value(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "(uniform)"
    if value == "":
        return '""'
    return f"{value}"


def _range(spec: OptionSpec) -> str:
    if spec.choices is not None:
        return ", ".join(spec.choices)
    if spec.minimum is None and spec.maximum is None:
        return ""
    low = "" if spec.minimum is None else f"{spec.minimum:g}"
    high = "" if spec.maximum is None else f"{spec.maximum:g}"
    return f"{low} … {high}"


if __name__ == "__main__":
    print(options_markdown(), end="")
