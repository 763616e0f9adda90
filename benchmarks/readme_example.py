"""Make the README's example image: the photo, then stylized with two bundled paintings.

Uses the library's defaults (as a user would get them). Usage:

    python benchmarks/readme_example.py --out docs/images/example.jpg
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from PIL import Image

import restyle
from restyle.examples import example_path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--photo", default="parrots")
    parser.add_argument("--styles", nargs="+", default=["starry_night", "the_scream"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--tile", type=int, default=384)
    args = parser.parse_args()
    tiles = [Image.open(example_path(args.photo)).convert("RGB")]
    for style in args.styles:
        start = time.perf_counter()
        tiles.append(
            restyle.stylize(example_path(args.photo), example_path(style), size=args.size, seed=0)
        )
        print(f"{args.photo} x {style}: {time.perf_counter() - start:.1f} s", flush=True)
    tiles = [t.resize((args.tile, args.tile * t.height // t.width)) for t in tiles]
    sheet = Image.new("RGB", (args.tile * len(tiles), max(t.height for t in tiles)), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, (i * args.tile, 0))
    sheet.save(args.out, quality=88)


if __name__ == "__main__":
    main()
