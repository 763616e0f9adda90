"""The photo-start gatys run's style weight against what users see: a sweep on unseen photos.

(The default run, started from the feed-forward result with relative losses, has its own sweep:
`benchmarks/gatys_quick.py --weights ...`.)

For each style weight (`--weights`), each eval photo (`--photos`, the first N of
`../shared/data/eval/photos`) and each painting (`--paintings`: the two unseen eval paintings
and a zoo painting by default), a default gatys run at `--size` px (the engine's defaults
otherwise, started from the photo with absolute losses as before the feed-forward start: 300
steps at the final scale, coarse-to-fine, seed 0), scored with
`restyle.metrics` (content and style distance, as in the model-zoo evaluation). Prints the
medians per weight, writes `--json` and a grid (`--grid`: rows photo × painting, columns the
weights) to look at.

    python benchmarks/gatys_weight_sweep.py --json docs/gatys-weight-sweep.json \\
        --grid docs/images/gatys-weight-sweep.jpg
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "data" / "eval"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=float, nargs="+", default=[3.0, 10.0, 30.0, 100.0])
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--paintings", type=Path, nargs="+", default=None)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--grid", type=Path, default=None)
    args = parser.parse_args()

    from restyle.api import stylize_tensor
    from restyle.engines.holder import Engines
    from restyle.imaging import as_tensor, resize_tensor_to_long_side, tensor_to_image
    from restyle.metrics import StyleMetrics
    from restyle.zoo import find

    photos = sorted(p for p in (EVAL / "photos").glob("*.jpg"))[: args.photos]
    starry = find("starry-night")
    paintings = args.paintings or [
        *sorted((EVAL / "styles").glob("*.jpg")),
        *([starry.painting_path] if starry else []),
    ]
    engines, metrics = Engines(device="cpu"), StyleMetrics()
    rows: list[dict[str, Any]] = []
    tiles: dict[tuple[str, str], list[Image.Image]] = {}
    for painting_path in paintings:
        painting = as_tensor(painting_path)
        for photo_path in photos:
            photo = resize_tensor_to_long_side(as_tensor(photo_path), args.size)
            key = (photo_path.stem, Path(painting_path).stem)
            tiles[key] = [tensor_to_image(photo)]
            for weight in args.weights:
                began = time.perf_counter()
                result = stylize_tensor(
                    photo, painting, method="gatys", engines=engines, size=args.size,
                    iterations=args.iterations, style_weight=weight, seed=0,
                    init="content", loss_scale="absolute",
                )  # fmt: skip
                seconds = time.perf_counter() - began
                d = metrics.distances(result, photo, painting)
                rows.append(
                    {"photo": key[0], "painting": key[1], "style_weight": weight,
                     "content": d.content, "style": d.style, "seconds": seconds}
                )  # fmt: skip
                tiles[key].append(tensor_to_image(result))
                print(f"{key[1]} {key[0]} w={weight:g}: content {d.content:.3f} "
                      f"style {d.style:.3f} ({seconds:.0f} s)", flush=True)  # fmt: skip
    summary = {}
    for weight in args.weights:
        mine = [r for r in rows if r["style_weight"] == weight]
        summary[str(weight)] = {
            "content": statistics.median(r["content"] for r in mine),
            "style": statistics.median(r["style"] for r in mine),
        }
    print("| style weight | content (median) | style (median) |\n|---|---|---|")
    for weight, medians in summary.items():
        print(f"| {float(weight):g} | {medians['content']:.3f} | {medians['style']:.3f} |")
    if args.json is not None:
        machine = {"platform": platform.platform(), "torch": torch.__version__}
        payload = {"machine": machine, "config": {k: str(v) for k, v in vars(args).items()},
                   "summary": summary, "rows": rows}  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
    if args.grid is not None:
        _grid(tiles, ["photo", *(f"w={w:g}" for w in args.weights)], args.grid)


def _grid(tiles: dict[tuple[str, str], list[Image.Image]], header: list[str], path: Path) -> None:
    side = 160
    rows = list(tiles.items())
    sheet = Image.new("RGB", (side * len(header), 20 + side * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for column, text in enumerate(header):
        draw.text((column * side + 4, 4), text, fill="black")
    for row, ((photo, painting), images) in enumerate(rows):
        for column, image in enumerate(images):
            thumb = image.copy()
            thumb.thumbnail((side, side))
            sheet.paste(thumb, (column * side, 20 + row * side))
        draw.text((4, 20 + row * side + side - 14), f"{photo} / {painting}", fill="white")
    sheet.save(path, quality=85)


if __name__ == "__main__":
    main()
