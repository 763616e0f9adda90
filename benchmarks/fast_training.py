"""Training throughput of the fast engine and the wall time it takes to reach a quality plateau.

Trains one style with `restyle.training` (the code `restyle train fast` runs) in segments:
after each segment the network is scored on held-out photos with the VGG19 distances of
`restyle.metrics`, so the table shows quality against seconds of training. The learning rate
is constant, so segments resumed one after the other are the same run as one long run.
Also measures the data loader alone (images/s it can deliver), to show whether it keeps up.

On a GPU (the targets: 350+ images/s at 256², a plateau within 60 s):

    PYTHONPATH=src python benchmarks/fast_training.py --device cuda \\
        --data ../shared/data/photos --painting ../shared/data/styles/the_scream.jpg \\
        --checkpoints 250,500,1000,2000,3000 --json docs/benchmarks-fast-training-h100.json

On a CPU, small: --image-size 128 --batch-size 4 --checkpoints 25,50 --size lite.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from restyle.devices import resolve_device
from restyle.engines.fast import FastStylizer
from restyle.engines.fast_config import FastSetup
from restyle.examples import example_path
from restyle.imaging import as_tensor, resize_tensor_to_long_side
from restyle.metrics import StyleMetrics
from restyle.models.transform_net import size_config
from restyle.training.config import FastLossConfig, TrainConfig
from restyle.training.data import list_images, photo_loader
from restyle.training.fast_task import FastStyleTask
from restyle.training.loop import MODEL_FILE, train


def loader_throughput(data: Path, *, size: int, batch: int, workers: int, steps: int) -> float:
    files = list_images(data)
    loader = photo_loader(
        files,
        size=size,
        batch_size=batch,
        steps=steps,
        start_step=0,
        seed=0,
        rank=0,
        workers=workers,
        pin_memory=False,
    )
    iterator = iter(loader)
    next(iterator)  # worker start-up is not throughput
    began = time.perf_counter()
    count = sum(b.shape[0] for b in iterator)
    return count / (time.perf_counter() - began)


def _image_path(name: str) -> Path:
    """A path as given, or a bundled example's path when no such file exists."""
    path = Path(name)
    return path if path.exists() else example_path(name) or path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/photos"))
    parser.add_argument("--painting", default="the_scream")
    parser.add_argument("--eval-photos", type=Path, default=Path("../shared/data/eval/photos"))
    parser.add_argument("--eval-count", type=int, default=5)
    parser.add_argument("--eval-size", type=int, default=512)
    parser.add_argument("--size", default="standard", help="network size")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--style-weight", type=float, default=FastLossConfig.style_weight)
    parser.add_argument("--workers", type=int, default=-1)
    parser.add_argument("--checkpoints", default="250,500,1000,2000", help="steps to score at")
    parser.add_argument("--out", type=Path, default=Path("/tmp/restyle-fast-training"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    painting_path = _image_path(args.painting)
    painting = as_tensor(painting_path)
    workers = args.workers if args.workers >= 0 else (8 if device.type == "cuda" else 0)

    loader_rate = loader_throughput(
        args.data, size=args.image_size, batch=args.batch_size, workers=workers, steps=40
    )
    print(f"data loader alone: {loader_rate:.0f} images/s ({workers} workers)")

    eval_files = sorted(args.eval_photos.glob("*.jpg"))[: args.eval_count]
    photos = [resize_tensor_to_long_side(as_tensor(p), args.eval_size) for p in eval_files]
    metrics = StyleMetrics(device=device)

    task_args = {
        "network": size_config(args.size),
        "loss": FastLossConfig(style_weight=args.style_weight),
        "style_info": {"name": painting_path.stem},
    }
    rows = []
    trained_seconds = 0.0
    previous = 0
    for target in (int(s) for s in args.checkpoints.split(",")):
        config = TrainConfig(
            steps=target,
            batch_size=args.batch_size,
            image_size=args.image_size,
            workers=workers,
            sample_every=0,
            checkpoint_every=0,
            log_every=50,
        )
        result = train(
            FastStyleTask(painting, **task_args),
            config,
            data=args.data,
            out_dir=args.out,
            device=device,
            resume=previous > 0,
        )
        trained_seconds += result.elapsed
        stylizer = FastStylizer(
            args.out / MODEL_FILE, setup=FastSetup(runtime="torch"), device=device
        )
        scores = [metrics.distances(stylizer.stylize(p), p, painting) for p in photos]
        row = {
            "steps": target,
            "train_seconds": round(trained_seconds, 1),
            "images_per_second": round(result.images_per_second, 1),
            "content": round(statistics.median(s.content for s in scores), 4),
            "style": round(statistics.median(s.style for s in scores), 4),
        }
        rows.append(row)
        print(row)
        previous = target

    if args.json:
        record = {
            "machine": {
                "platform": platform.platform(),
                "processor": platform.processor(),
                "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                "torch": torch.__version__,
            },
            "settings": {k: str(v) for k, v in vars(args).items()},
            "loader_images_per_second": round(loader_rate, 1),
            "rows": rows,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
