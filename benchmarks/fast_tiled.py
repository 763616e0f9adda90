"""Tiled inference of the fast engine: agreement with a whole-image run, time and peak memory.

Each measurement runs in its own process so `ru_maxrss` is that run's peak. For a checkpoint
and a photo resized to WIDTHxHEIGHT:
- `whole`: the network on the whole image at once;
- `tiled`: tiles of --tile px overlapping by --overlap, whole-image norm statistics;
then the two outputs are compared (mean and max absolute difference, PSNR).

    python benchmarks/fast_tiled.py --model runs/scream/model.safetensors --photo lighthouse \\
        --size 2400x1600 --tile 512 --overlap 192
    python benchmarks/fast_tiled.py --model ... --size 12000x8000 --tile 1024 --only tiled
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def _run_one(args: argparse.Namespace, mode: str, out: Path) -> dict[str, float]:
    from restyle.engines.fast import FastStylizer
    from restyle.engines.fast_config import FastOptions, FastSetup
    from restyle.examples import example_path
    from restyle.imaging import as_tensor, resize_tensor

    width, height = (int(v) for v in args.size.split("x"))
    photo_path = Path(args.photo)
    if not photo_path.exists():
        photo_path = example_path(args.photo) or photo_path
    photo = resize_tensor(as_tensor(photo_path), (height, width))
    # Whole: a tile larger than the image. Tiled: the requested tile size.
    tile = 8192 if mode == "whole" else args.tile
    options = FastOptions(tile_size=tile, tile_overlap=args.overlap)
    stylizer = FastStylizer(args.model, setup=FastSetup(runtime="torch"), device=args.device)
    began = time.perf_counter()
    result = stylizer.stylize(photo, options)
    seconds = time.perf_counter() - began
    torch.save(result, out)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(peak_mib)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--photo", default="lighthouse")
    parser.add_argument("--size", default="2400x1600", help="WIDTHxHEIGHT")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=192)
    parser.add_argument("--only", choices=("whole", "tiled"), default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_run_one(args, args.child, args.child_out)))
        return
    modes = [args.only] if args.only else ["whole", "tiled"]
    record: dict[str, object] = {"settings": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory() as scratch:
        outputs = {}
        for mode in modes:
            out = Path(scratch) / f"{mode}.pt"
            child = [
                sys.executable,
                __file__,
                *sys.argv[1:],
                "--child",
                mode,
                "--child-out",
                str(out),
            ]
            done = subprocess.run(child, capture_output=True, text=True, check=True)
            record[mode] = json.loads(done.stdout.strip().splitlines()[-1])
            outputs[mode] = out
            print(mode, record[mode])
        if len(outputs) == 2:
            whole = torch.load(outputs["whole"])
            tiled = torch.load(outputs["tiled"])
            difference = (whole - tiled).abs()
            mse = difference.square().mean().item()
            record["agreement"] = {
                "mean_abs": round(difference.mean().item(), 5),
                "max_abs": round(difference.max().item(), 4),
                "psnr_db": round(10 * math.log10(1 / mse), 1) if mse > 0 else math.inf,
            }
            print("tiled vs whole", record["agreement"])
    if args.json:
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
