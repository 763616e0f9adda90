"""`restyle train` and `restyle export`: the command lines of training and ONNX export.

Kept apart from cli.py so that stylizing never imports training code.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from restyle.cli import ProgressBar, config_defaults, parse_layers, resolve_image
from restyle.training.config import FastLossConfig, TrainConfig

EXIT_OK = 0


def add_train_parser(commands: Any) -> None:
    train = commands.add_parser("train", help="train a network (fast: one style)")
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
    t, loss = config_defaults(TrainConfig), config_defaults(FastLossConfig)
    s = argparse.SUPPRESS
    fast.add_argument("--style", required=True, help="painting (path or bundled example name)")
    fast.add_argument("--data", type=Path, required=True, help="folder of training photos")
    fast.add_argument("--out", type=Path, required=True, help="output folder")
    fast.add_argument(
        "--size", dest="network_size", default="standard", help="network size: standard or lite"
    )
    fast.add_argument("--steps", type=int, default=s, help=f"optimiser steps ({t['steps']})")
    fast.add_argument(
        "--epochs", type=float, default=s, help="passes over DATA (overrides --steps)"
    )
    fast.add_argument("--batch-size", type=int, default=s, help=f"({t['batch_size']})")
    fast.add_argument("--image-size", type=int, default=s, help=f"crop side px ({t['image_size']})")
    fast.add_argument(
        "--learning-rate", "--lr", type=float, default=s, help=f"({t['learning_rate']})"
    )
    fast.add_argument("--lr-decay-to", type=float, default=s, help="final fraction of the lr (1)")
    fast.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default=s)
    fast.add_argument("--workers", type=int, default=s, help="data-loader processes (-1: auto)")
    fast.add_argument("--log-every", type=int, default=s, help=f"({t['log_every']})")
    fast.add_argument("--sample-every", type=int, default=s, help=f"({t['sample_every']})")
    fast.add_argument("--checkpoint-every", type=int, default=s, help=f"({t['checkpoint_every']})")
    fast.add_argument("--seed", type=int, default=s, help=f"({t['seed']})")
    fast.add_argument("--content-weight", type=float, default=s, help=f"({loss['content_weight']})")
    fast.add_argument("--style-weight", type=float, default=s, help=f"({loss['style_weight']})")
    fast.add_argument("--tv-weight", type=float, default=s, help=f"({loss['tv_weight']})")
    fast.add_argument(
        "--style-size", type=int, default=s, help="painting long side px (0: the crop size)"
    )
    fast.add_argument("--content-layers", type=parse_layers, default=s, help="(relu2_2)")
    fast.add_argument("--style-layers", type=parse_layers, default=s, help="(relu1_1,...,relu4_1)")
    fast.add_argument("--resume", action="store_true", help="continue from OUT's training state")
    fast.add_argument("--device", default=None, help="cpu, cuda ... (auto)")
    fast.add_argument("--weights", dest="vgg_weights", default=None, help="VGG19 weights file")
    fast.add_argument("--quiet", action="store_true", help="no progress bar")


def add_export_parser(commands: Any) -> None:
    export = commands.add_parser("export", help="export a trained style")
    formats = export.add_subparsers(dest="format", required=True)
    onnx = formats.add_parser(
        "onnx", help="ONNX model with dynamic height and width, for onnxruntime or a browser"
    )
    onnx.add_argument("--style", required=True, help="trained style id or checkpoint file")
    onnx.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")


def run_train(args: argparse.Namespace) -> int:
    from restyle.api import as_tensor
    from restyle.models.checkpoint import file_sha256
    from restyle.models.transform_net import size_config
    from restyle.training.fast_task import FastStyleTask
    from restyle.training.loop import train

    given = vars(args)
    train_config = TrainConfig(
        **{k: v for k, v in given.items() if k in config_defaults(TrainConfig)}
    )
    loss_config = FastLossConfig(
        **{k: v for k, v in given.items() if k in config_defaults(FastLossConfig)}
    )
    style_path = resolve_image(args.style)
    style = as_tensor(style_path)
    task = FastStyleTask(
        style,
        network=size_config(args.network_size),
        loss=loss_config,
        style_info={
            "name": style_path.stem,
            "file": style_path.name,
            "sha256": file_sha256(style_path),
            "network_size": args.network_size,
        },
        vgg_weights=args.vgg_weights,
    )
    with ProgressBar(disabled=args.quiet, unit="step") as bar:
        result = train(
            task,
            train_config,
            data=args.data,
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


def run_export(args: argparse.Namespace) -> int:
    import torch

    from restyle.engines.fast import resolve_model
    from restyle.models.checkpoint import load_transform_net
    from restyle.onnx_export import OnnxTransformNet, export_onnx

    net, _ = load_transform_net(resolve_model(args.style))
    written = export_onnx(net, args.output)
    # Check the file before calling it done: same output as PyTorch on an odd-sized image.
    probe = torch.rand(1, 3, 67, 93, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        difference = (OnnxTransformNet(written)(probe) - net(probe)).abs().max().item()
    print(
        f"wrote {written} (max |onnx - torch| on a test image: {difference:.2e})", file=sys.stderr
    )
    return EXIT_OK
