"""A contact sheet of gatys results over style weights, to choose a default by eye.

Rows: content/style pairs from the bundled examples; columns: style weights. Each tile is
labelled with its weight and the run's time. Usage:

    python benchmarks/style_weight_grid.py --out grid.png --size 512 --weights 30 100 300 1000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from restyle.devices import resolve_device
from restyle.engines.gatys import GatysEngine
from restyle.engines.gatys_config import GatysOptions
from restyle.examples import example_path
from restyle.imaging import as_tensor, tensor_to_image

PAIRS = (("parrots", "starry_night"), ("lighthouse", "the_scream"), ("cat", "great_wave"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--weights", type=float, nargs="+", default=[30, 100, 300, 1000])
    parser.add_argument("--tile", type=int, default=320)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    engine = GatysEngine(device=device)
    rows = []
    for photo, painting in PAIRS:
        content = as_tensor(example_path(photo))
        style = as_tensor(example_path(painting))
        tiles = [tensor_to_image(content)]
        for weight in args.weights:
            options = GatysOptions(size=args.size, style_weight=weight, seed=0)
            start = time.perf_counter()
            result = engine.run(content, [style], options)
            if device.type == "cuda":
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            tile = tensor_to_image(result)
            ImageDraw.Draw(tile).text((4, 4), f"sw={weight:g} {elapsed:.1f}s", fill=(255, 0, 0))
            tiles.append(tile)
            print(f"{photo}/{painting} style_weight={weight:g}: {elapsed:.2f} s", flush=True)
        rows.append([t.resize((args.tile, args.tile)) for t in tiles])
    sheet = Image.new("RGB", (args.tile * len(rows[0]), args.tile * len(rows)))
    for y, row in enumerate(rows):
        for x, tile in enumerate(row):
            sheet.paste(tile, (x * args.tile, y * args.tile))
    sheet.save(args.out)


if __name__ == "__main__":
    main()
