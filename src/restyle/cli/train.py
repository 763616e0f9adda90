"""`restyle train` and `restyle export`: the command lines of training and ONNX export.

Imported only when one of these commands runs, so that stylizing never imports training code.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from restyle.cli.common import EXIT_OK, ProgressBar, config_defaults, resolve_image
from restyle.cli.flags import add_declared_flags
from restyle.engines.arbitrary_config import ArbitrarySetup
from restyle.engines.registry import ENGINES, painting_engine, trained_engine
from restyle.errors import InvalidParameterError
from restyle.options import option_specs
from restyle.options import parse_duration as parse_seconds
from restyle.training.config import (
    MAX_STEPS,
    PERSONAL_CPU,
    REFINE_CPU,
    FastLossConfig,
    RefineRecipe,
    TrainConfig,
)

REFINE_RECIPES: dict[str, RefineRecipe] = {"personal": PERSONAL_CPU, "refine-cpu": REFINE_CPU}


def parse_duration(text: str) -> float:
    """Seconds in `text`: a number with an optional unit, s, m or h (\"90\", \"5m\", \"1.5h\")."""
    try:
        seconds = parse_seconds(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 5m, 1.5h)") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"a duration must be positive, got {text!r}")
    return seconds


def add_parser(commands: Any, name: str) -> None:
    """The parser of `train` or `export`."""
    if name == "export":
        add_export_parser(commands)
    else:
        add_train_parser(commands)


def add_train_parser(commands: Any) -> None:
    train = commands.add_parser(
        "train", help="train a network (fast: one painting; arbitrary: any painting)"
    )
    engines = train.add_subparsers(dest="engine", required=True)
    fast = engines.add_parser(
        "fast",
        help="train a feed-forward network for one painting",
        description=(
            "Train a transform network for the painting STYLE on the photos under DATA. Writes "
            "OUT/model.safetensors (pass it to `restyle stylize --method fast --style`), "
            "OUT/train_state.safetensors (for --resume), OUT/train_log.jsonl and OUT/samples/."
        ),
    )
    fast.add_argument("--style", required=True, help="painting (path or bundled example name)")
    fast.add_argument(
        "--size",
        dest="network_size",
        default="standard",
        help="network size from scratch: standard or lite",
    )
    fast.add_argument(
        "--init",
        choices=("scratch", "arbitrary"),
        default="scratch",
        help="scratch: a new transform network; arbitrary: refine the arbitrary network's pass "
        "for STYLE (MicroAST with the painting's style signals), far sooner good",
    )
    fast.add_argument(
        "--signal-size",
        type=int,
        default=0,
        help="--init arbitrary: painting short side px for its style signals (0: 512)",
    )
    frozen = next(s for s in option_specs(RefineRecipe) if s.name == "frozen")
    fast.add_argument(frozen.cli_flag, default="", help=f"--init arbitrary: {frozen.help}")
    fast.add_argument(
        "--recipe",
        choices=[*sorted(REFINE_RECIPES), "none"],
        default=None,
        help="--init arbitrary: start from a recipe's options (personal, the default: what "
        "the service's personal styles run; refine-cpu: the zoo's first recipe; none: the "
        "loop's plain defaults); options given too override them",
    )
    _add_common_options(fast)
    fast.set_defaults(build_task=_fast_task)
    arbitrary = engines.add_parser(
        "arbitrary",
        help="train a MetaNet that writes a network for any painting",
        description=(
            "Train the arbitrary engine's MetaNet on the paintings under STYLES and the photos "
            "under DATA. A seeded fraction of the paintings (--holdout) is never trained on; "
            "the checkpoint lists them. Writes the same files as `train fast`."
        ),
    )
    arbitrary.add_argument("--styles", type=Path, required=True, help="folder of paintings")
    arbitrary.add_argument(
        "--holdout", type=float, default=0.1, help="fraction of paintings kept out (0.1)"
    )
    arbitrary.add_argument(
        "--hidden", type=int, default=64, help="MetaNet hidden units per generated layer (64)"
    )
    _add_common_options(arbitrary)
    arbitrary.set_defaults(build_task=_arbitrary_task)


def _add_common_options(p: argparse.ArgumentParser) -> None:
    """The training loop's and the loss's options (from their declarations), shared by every
    engine, and where a run reads and writes."""
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="folder of training photos (fast --init arbitrary: 13 bundled photos if not given)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    # `--time` reads a duration ("5m"), and `--lr` is the learning rate's short spelling.
    add_declared_flags(
        p,
        option_specs(TrainConfig),
        overrides={"time_limit_s": {"type": parse_duration, "metavar": "DURATION"}},
        aliases={"learning_rate": ("--lr",)},
    )
    add_declared_flags(p, option_specs(FastLossConfig))
    p.add_argument("--resume", action="store_true", help="continue from OUT's training state")
    p.add_argument("--device", default=None, help="cpu, cuda ... (auto)")
    p.add_argument("--weights", dest="vgg_weights", default=None, help="VGG19 weights file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_export_parser(commands: Any) -> None:
    export = commands.add_parser("export", help="export a trained style")
    formats = export.add_subparsers(dest="format", required=True)
    onnx = formats.add_parser(
        "onnx", help="ONNX model with dynamic height and width, for onnxruntime or a browser"
    )
    onnx.add_argument(
        "--style",
        required=True,
        help="trained style id or checkpoint file; with --method arbitrary, any painting",
    )
    painting = painting_engine(feed_forward=True)
    onnx.add_argument(
        "--method",
        choices=[name for name, spec in ENGINES.items() if spec.feed_forward],
        default=trained_engine().name,
        help=f"{painting.name if painting else 'a painting engine'}: export the painting "
        "STYLE's network from that engine (default: a trained style's)",
    )
    network = next(s for s in option_specs(ArbitrarySetup) if s.name == "network")
    onnx.add_argument(
        "--network",
        choices=network.choices,
        default=network.default,
        help=f"arbitrary: {network.help} (default {network.default})",
    )
    onnx.add_argument("--model", default="", help="arbitrary: the network's checkpoint (shipped)")
    onnx.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")


# What `--init arbitrary` runs when no recipe is named: the loop's plain defaults (a from-scratch
# network's learning rate and loss) took a good start several times further from the painting.
DEFAULT_RECIPE = "personal"


def refining(args: argparse.Namespace) -> bool:
    """Whether the command refines a network from a start (`train fast --init arbitrary`)
    rather than training one from scratch; only `train fast` takes --init."""
    return getattr(args, "init", "scratch") != "scratch"


def recipe_of(args: argparse.Namespace) -> str | None:
    """The recipe a `train` command stands for: the one named, or a refinement's default."""
    named: str | None = getattr(args, "recipe", None)
    if named is None and refining(args):
        return DEFAULT_RECIPE
    return None if named == "none" else named


def with_recipe(args: argparse.Namespace, recipe: str) -> argparse.Namespace:
    """A recipe spelt out: its options, then the ones given (which win), parsed again; the
    command the network records is this one, every option named."""
    from restyle.cli import build_parser

    if not refining(args):
        raise InvalidParameterError(
            "--recipe: recipes refine the arbitrary network (--init arbitrary)"
        )
    start = args.argv.index(args.engine, args.argv.index("train")) + 1
    given: list[str] = []
    skip = False
    for arg in args.argv[start:]:
        if skip or arg.startswith("--recipe="):
            skip = False
        elif arg == "--recipe":
            skip = True
        else:
            given.append(arg)
    spelt_out = REFINE_RECIPES[recipe].train_arguments()
    # A recorded command already starts with its recipe spelt out: run again, it stays as it is.
    prefix = [] if given[: len(spelt_out)] == spelt_out else spelt_out
    argv = [*args.argv[:start], *prefix, *given]
    spelt = build_parser("train").parse_args(argv)
    spelt.argv = argv
    return spelt


def run_train(args: argparse.Namespace) -> int:
    from restyle.training.loop import train

    recipe = recipe_of(args)
    if recipe is not None:
        args = with_recipe(args, recipe)
    given = dict(vars(args))
    if "time_limit_s" in given and "steps" not in given and "epochs" not in given:
        given["steps"] = MAX_STEPS  # the time alone decides
    train_config = TrainConfig(
        **{k: v for k, v in given.items() if k in config_defaults(TrainConfig)}
    )
    loss_config = FastLossConfig(
        **{k: v for k, v in given.items() if k in config_defaults(FastLossConfig)}
    )
    task = args.build_task(args, loss_config, train_config)
    with ProgressBar(disabled=args.quiet, unit="step") as bar:
        result = train(
            task,
            train_config,
            data=_data(args),
            out_dir=args.out,
            device=args.device,
            resume=args.resume,
            command="restyle " + shlex.join(args.argv),
            callback=bar.update,
        )
    if not args.quiet:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items())
        print(
            f"wrote {result.model_path} after {result.steps} steps "
            f"({result.images_per_second:.1f} images/s; {losses})",
            file=sys.stderr,
        )
    return EXIT_OK


def _data(args: argparse.Namespace) -> Path:
    """--data, or for a refinement the bundled photos: a few minutes' training needs no more."""
    if args.data is not None:
        path: Path = args.data
        return path
    if refining(args):
        from restyle.examples import refine_photos

        return refine_photos()
    raise InvalidParameterError(
        "--data: a folder of training photos is needed (only a refinement, fast --init "
        "arbitrary, has a bundled set)"
    )


def _fast_task(
    args: argparse.Namespace, loss_config: FastLossConfig, train_config: TrainConfig
) -> Any:
    from restyle.imaging import as_tensor
    from restyle.models.checkpoint import file_sha256
    from restyle.models.transform_net import size_config
    from restyle.training.fast_task import FastStyleTask

    style_path = resolve_image(args.style)
    style_info = {
        "name": style_path.stem,
        "file": style_path.name,
        "sha256": file_sha256(style_path),
    }
    if refining(args):
        from restyle.training.fast_task import RefineStyleTask

        return RefineStyleTask(
            as_tensor(style_path),
            loss=loss_config,
            style_info=style_info,
            signal_size=args.signal_size,
            frozen=tuple(part for part in args.freeze.split(",") if part),
            vgg_weights=args.vgg_weights,
        )
    return FastStyleTask(
        as_tensor(style_path),
        network=size_config(args.network_size),
        loss=loss_config,
        style_info={**style_info, "network_size": args.network_size},
        vgg_weights=args.vgg_weights,
    )


def _arbitrary_task(
    args: argparse.Namespace, loss_config: FastLossConfig, train_config: TrainConfig
) -> Any:
    from restyle.models.meta_net import MetaNetConfig
    from restyle.training.arbitrary_task import ArbitraryStyleTask

    return ArbitraryStyleTask(
        args.styles,
        meta=MetaNetConfig(hidden=args.hidden),
        loss=loss_config,
        holdout=args.holdout,
        seed=train_config.seed,
        vgg_weights=args.vgg_weights,
    )


def run_export(args: argparse.Namespace) -> int:
    import torch

    from restyle.engines.fast import resolve_model, signals_network, signals_variant
    from restyle.models.checkpoint import load_fast_network
    from restyle.onnx_export import OnnxTransformNet, export_onnx

    spec = ENGINES[args.method]
    if spec.styles == "painting":  # any painting: the engine's network for it
        setup = spec.setup(network=args.network, model=args.model)
        engine: Any = spec.engine_class()(setup, device="cpu")
        _, net = engine.network(resolve_image(args.style))
    elif (variant := signals_variant(args.style)) is not None:
        net, _ = signals_network(variant)
    else:
        net, _ = load_fast_network(resolve_model(args.style))
    written = export_onnx(net, args.output)
    # Check the file before calling it done: same output as PyTorch on an odd-sized image.
    probe = torch.rand(1, 3, 67, 93, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        difference = (OnnxTransformNet(written)(probe) - net(probe)).abs().max().item()
    print(
        f"wrote {written} (max |onnx - torch| on a test image: {difference:.2e})", file=sys.stderr
    )
    return EXIT_OK
