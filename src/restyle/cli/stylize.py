"""`restyle stylize`, `demo`, `styles` and `examples`: the commands that use trained engines."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from restyle.cli.common import EXIT_OK, ProgressBar, resolve_image
from restyle.cli.flags import add_option_flags, add_video_flags
from restyle.engines.registry import ENGINES
from restyle.errors import InvalidParameterError
from restyle.examples import bundled, example_names


def add_parsers(commands: Any) -> None:
    _add_stylize(
        commands.add_parser(
            "stylize",
            help="stylize photos (gatys or arbitrary: any painting; fast: a trained style)",
            description=(
                "Stylize CONTENT in the style of one or more STYLEs: a painting's image (any "
                "file), or a zoo style's name (`restyle styles`), which runs its trained network "
                "(fast) or, with --method gatys/arbitrary, its painting. Says which engine runs "
                "and why, and the expected time of a long run, on stderr."
            ),
        )
    )
    demo = commands.add_parser("demo", help="stylize the bundled example photos")
    demo.add_argument("--output-dir", type=Path, default=Path("out"))
    demo.add_argument("--size", type=int, default=256, help="output long side (default 256)")
    demo.add_argument("--device", default=None)
    commands.add_parser("examples", help="list the bundled example photos and the styles' names")
    styles = commands.add_parser(
        "styles",
        help="list the trained styles shipped with restyle (the model zoo)",
        description="List the zoo's trained styles; use an id with `restyle stylize --style ID`.",
    )
    styles.add_argument(
        "--json", action="store_true", help="every field of every entry, with file paths"
    )


def _add_stylize(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "content",
        nargs="+",
        help="photo(s) to stylize (paths or bundled example names; several need -o DIR), or "
        "one video (.mp4, .mov, .mkv, .webm, ...: its sound and rotation are kept)",
    )
    p.add_argument(
        "-s",
        "--style",
        action="append",
        required=True,
        metavar="STYLE[:WEIGHT]",
        help=(
            "a painting's image, a zoo style's name (`restyle styles`) or a trained network "
            "(.safetensors), repeatable; :WEIGHT blends several (default equal)"
        ),
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output file (.png, .jpg, .webp, .tif; a video: .mp4, .mov, .mkv, .webm), or a "
        "folder for several photos",
    )
    engines = "; ".join(f"{spec.name}: {spec.summary}" for spec in ENGINES.values())
    p.add_argument(
        "--method",
        default="auto",
        choices=("auto", *ENGINES),
        help=(
            "engine (auto: fast for zoo styles and trained networks; for paintings gatys where "
            f"it is expected within a minute here, else arbitrary; {engines})"
        ),
    )
    p.add_argument("--init-image", type=Path, default=None, help="gatys: image for --init image")
    p.add_argument(
        "--region",
        action="append",
        default=[],
        metavar="MASK=STYLE",
        help="a grey mask (white: the region) and the style there, repeatable, laid over in "
        "order with feathered edges; STYLE none keeps the photo there (fast, arbitrary)",
    )
    p.add_argument(
        "--bit-depth", type=int, choices=(8, 16), default=8, help="16 for 16-bit PNG output"
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(
        option_names=tuple(add_option_flags(p)), video_option_names=tuple(add_video_flags(p))
    )


def parse_style(spec: str) -> tuple[str, float]:
    """'path[:weight]' -> (path, weight); a trailing part that is not a number is the path's."""
    path, sep, weight = spec.rpartition(":")
    if sep:
        try:
            value = float(weight)
        except ValueError:
            return spec, 1.0
        if not math.isfinite(value) or value < 0:
            raise InvalidParameterError(f"--style {spec!r}: weight must be >= 0, got {weight}")
        return path, value
    return spec, 1.0


def parse_region(spec: str) -> tuple[Path, str | None]:
    """'mask.png=style' -> (mask path, style; None for 'none')."""
    mask, sep, style = spec.rpartition("=")
    if not sep or not mask or not style:
        raise InvalidParameterError(
            f"--region {spec!r}: expected MASK=STYLE, e.g. sky.png=the-scream"
        )
    return Path(mask), None if style.lower() == "none" else style


def run_stylize(args: argparse.Namespace) -> int:
    from restyle.api import stylize_tensor
    from restyle.engines.holder import Engines
    from restyle.imaging import check_output_path, save_image

    if len(args.content) == 1 and _is_video(args.content[0]):
        return _run_video(args)
    for name in args.video_option_names:
        if name in vars(args):
            raise InvalidParameterError(
                f"--{name.replace('_', '-')}: an option of video inputs; "
                f"{args.content[0]!r} is not a video"
            )
    outputs = _output_paths(args.content, args.output)
    for output in outputs:
        check_output_path(output, bit_depth=args.bit_depth)
    options = {k: v for k, v in vars(args).items() if k in args.option_names}
    styles, weights = zip(*(parse_style(spec) for spec in args.style), strict=True)
    engines = Engines(device=args.device)  # built once for every photo of this run
    sizes = [_image_hw(resolve_image(content)) for content in args.content]
    method = _choose(args, styles, options, sizes[0], engines.device)
    # Painting engines take style images (zoo names allowed); fast takes trained styles.
    trained = ENGINES[method].styles == "trained"
    style_inputs = [s if trained else resolve_image(s) for s in styles]
    regions = [
        (mask, style if style is None or trained else resolve_image(style))
        for mask, style in map(parse_region, args.region)
    ]
    for content, output, hw in zip(args.content, outputs, sizes, strict=True):
        work = None if args.quiet else _announce_time(method, options, hw, engines.device)
        unit = "tile" if ENGINES[method].interactive else "step"  # tiles of a large image
        with ProgressBar(disabled=args.quiet, unit=unit, work_megapixels=work) as bar:
            result = stylize_tensor(
                resolve_image(content),
                style_inputs,
                method=method,
                style_weights=list(weights),
                init_image=args.init_image,
                progress=bar.update,
                engines=engines,
                regions=regions,
                **options,
            )
        written = save_image(result, output, bit_depth=args.bit_depth)
        if not args.quiet:
            print(f"wrote {written}", file=sys.stderr)
    return EXIT_OK


LONG_RUN_SECONDS = 10.0
"""Runs expected to take longer than this say so before they start."""


def _choose(
    args: argparse.Namespace,
    styles: Sequence[str],
    options: dict[str, Any],
    content_hw: tuple[int, int] | None,
    device: Any,
    *,
    video: bool = False,
) -> str:
    """The engine to run, said on stderr with the reason (auto) unless --quiet."""
    from restyle.engines.choice import choose_engine

    if args.method == "auto":
        choice = choose_engine(
            styles, options=options, content_hw=content_hw, device=device, video=video
        )
        method, reason = choice.method, choice.reason
    else:
        method, reason = args.method, "asked for with --method"
    if not args.quiet:
        print(f"engine: {method} ({ENGINES[method].title.lower()}): {reason}", file=sys.stderr)
    return method


def _announce_time(
    method: str, options: dict[str, Any], content_hw: tuple[int, int] | None, device: Any
) -> float | None:
    """Before a run expected to take more than LONG_RUN_SECONDS: how long, on this machine.

    Returns the run's work in megapixel-steps where it has many steps (gatys), for the
    progress bar's projection of the time left."""
    from restyle.engines.choice import DEFAULT_CONTENT_HW

    expected = ENGINES[method].expected(options, content_hw or DEFAULT_CONTENT_HW, device)
    if expected is None:  # an engine whose cost was never measured: nothing to say
        return None
    if expected.seconds >= LONG_RUN_SECONDS:
        print(f"expected time: {expected}", file=sys.stderr)
    if expected.work.open_ended:  # as many steps as fit: the bar counts the time limit down
        return None
    return expected.work.megapixels if expected.work.passes > 1 else None


def _image_hw(path: Path) -> tuple[int, int] | None:
    """A photo's (height, width) from its header, without decoding it; None if unreadable
    (the run itself then reports the problem)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return height, width


def _is_video(content: str) -> bool:
    # PyAV is imported only when the input is a clip; the name or the first bytes tell.
    from restyle.video.config import looks_like_video

    return looks_like_video(content)


def _run_video(args: argparse.Namespace) -> int:
    from restyle.engines.holder import Engines
    from restyle.video import stylize_video

    names = (*args.option_names, *args.video_option_names)
    options = {k: v for k, v in vars(args).items() if k in names}
    if args.init_image is not None or args.bit_depth != 8:
        raise InvalidParameterError("--init-image and --bit-depth: for photos, not videos")
    if args.region:
        raise InvalidParameterError(
            "--region: for photos, not videos (a still mask would not move)"
        )
    styles, weights = zip(*(parse_style(spec) for spec in args.style), strict=True)
    engines = Engines(device=args.device)
    engine_options = {k: v for k, v in options.items() if k in args.option_names}
    method = _choose(args, styles, engine_options, None, engines.device, video=True)
    trained = ENGINES[method].styles == "trained"
    style_inputs = [s if trained else resolve_image(s) for s in styles]
    frames = options.get("max_frames", 0)
    if method in ENGINES and not ENGINES[method].interactive and frames and not args.quiet:
        # The library refuses a whole clip; a limited one is allowed but rarely what was meant.
        print(
            f"warning: {method} optimises every frame, minutes each on a CPU: {frames} frames "
            f"take {frames} times as long as one photo (the fast and arbitrary engines run "
            "whole clips at several frames a second)",
            file=sys.stderr,
        )
    with ProgressBar(disabled=args.quiet, unit="frame") as bar:
        summary = stylize_video(
            args.content[0],
            args.output,
            style_inputs,
            method=method,
            style_weights=list(weights),
            progress=bar.update,
            engines=engines,
            **options,
        )
    if not args.quiet:
        cuts = f", {summary.cuts} scene cuts" if summary.cuts else ""
        print(
            f"wrote {summary.path} ({summary.frames} frames at {float(summary.rate):g} fps, "
            f"{summary.audio_note}{cuts})",
            file=sys.stderr,
        )
    return EXIT_OK


def _output_paths(contents: list[str], output: Path) -> list[Path]:
    """One output per photo: OUTPUT itself for one photo, OUTPUT/<photo>.<ext> for several."""
    if len(contents) == 1 and not output.is_dir():
        return [output]
    if output.suffix and not output.is_dir():
        raise InvalidParameterError(
            f"--output: {len(contents)} photos need a folder, got the file name {str(output)!r}"
        )
    output.mkdir(parents=True, exist_ok=True)
    names = [Path(c).stem for c in contents]
    if len(set(names)) != len(names):
        raise InvalidParameterError("content: two photos share a file name; run them separately")
    return [output / f"{name}.png" for name in names]


def run_demo(args: argparse.Namespace) -> int:
    from restyle.api import stylize_tensor
    from restyle.engines.holder import Engines
    from restyle.imaging import save_image

    args.output_dir.mkdir(parents=True, exist_ok=True)
    engines = Engines(device=args.device)
    pairs = list(zip(example_names("photos"), example_names("styles"), strict=False))
    options = {"size": args.size, "seed": 0}  # the engine's defaults: what users get
    for photo, style in pairs:
        out = args.output_dir / f"{photo}-{style}.jpg"
        print(f"{photo} in the style of {style} -> {out}", file=sys.stderr)
        hw = _image_hw(bundled(photo))
        work = _announce_time("gatys", options, hw, engines.device)
        with ProgressBar(disabled=False, work_megapixels=work) as bar:
            result = stylize_tensor(
                bundled(photo),
                bundled(style),
                method="gatys",
                progress=bar.update,
                engines=engines,
                **options,
            )
        save_image(result, out)
    return EXIT_OK


def run_styles(args: argparse.Namespace) -> int:
    import json

    from restyle import zoo

    entries = zoo.entries()
    if args.json:
        print(json.dumps([e.as_dict() for e in entries], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not entries:
        print("no trained styles installed", file=sys.stderr)
        return EXIT_OK
    width = max(len(e.id) for e in entries)
    for entry in entries:
        year = f", {entry.year}" if entry.year else ""
        print(
            f"{entry.id:<{width}}  {entry.title} ({entry.artist}{year})  "
            f"[{entry.default_variant.summary}]"
        )
    return EXIT_OK


def run_examples(_: argparse.Namespace) -> int:
    from restyle import zoo

    print(f"photos: {', '.join(example_names('photos'))}")
    print(f"styles: {', '.join(e.id for e in zoo.entries())} (details: restyle styles)")
    return EXIT_OK
