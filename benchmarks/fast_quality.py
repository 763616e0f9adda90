"""Output quality of trained fast-engine networks: VGG19 distances and a before/after sheet.

For each network, stylizes the same photos at the same size and reports the median content
and style distances (`restyle.metrics`: lower style = closer to the painting's textures,
lower content = more of the photo kept), next to an untrained network and, optionally, a
Gatys result on the same photos. Also writes a contact sheet: one row per photo; columns are
the photo, then each network's output.

    python benchmarks/fast_quality.py --painting starry_night \\
        --model untrained=random:lite --model lite=out/lite/model.safetensors \\
        --photos ../shared/data/eval/photos --count 6 --size 384 \\
        --sheet docs/images/fast-before-after.jpg --json docs/fast-quality.json

`random:SIZE` is a network of that size with the seed-0 initial weights that training starts
from: the "before" of a before/after comparison.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from restyle.devices import resolve_device
from restyle.engines.fast import FastStylizer
from restyle.engines.fast_config import FastSetup
from restyle.engines.gatys import GatysEngine
from restyle.engines.gatys_config import GatysOptions
from restyle.examples import example_path
from restyle.imaging import as_tensor, resize_tensor_to_long_side, tensor_to_image
from restyle.metrics import StyleMetrics
from restyle.models.checkpoint import save_transform_net
from restyle.models.transform_net import TransformNet, size_config


def _model_path(spec: str, scratch: Path) -> Path:
    if spec.startswith("random:"):
        torch.manual_seed(0)
        net = TransformNet(size_config(spec.removeprefix("random:")))
        return save_transform_net(scratch / f"{spec.replace(':', '-')}.safetensors", net)
    return Path(spec)


def _image_path(name: str) -> Path:
    """A path as given, or a bundled example's path when no such file exists."""
    path = Path(name)
    return path if path.exists() else example_path(name) or path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--painting", required=True, help="style image or bundled name")
    parser.add_argument("--model", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--photos", type=Path, default=Path("../shared/data/eval/photos"))
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--size", type=int, default=512, help="long side of the photos")
    parser.add_argument("--gatys-iterations", type=int, default=0, help="0: no Gatys column")
    parser.add_argument("--sheet", type=Path, default=None)
    parser.add_argument("--tile", type=int, default=256, help="sheet cell long side")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    painting_path = _image_path(args.painting)
    painting = as_tensor(painting_path)
    photos_paths = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    photos = [
        resize_tensor_to_long_side(as_tensor(p), args.size) for p in photos_paths[: args.count]
    ]
    metrics = StyleMetrics(device=device)
    scratch = Path("/tmp/restyle-fast-quality")
    scratch.mkdir(exist_ok=True)

    columns: dict[str, list[torch.Tensor]] = {"photo": photos}
    results = []
    for spec in args.model:
        name, _, path = spec.partition("=")
        stylizer = FastStylizer(
            _model_path(path, scratch), setup=FastSetup(runtime="torch"), device=device
        )
        outputs, times = [], []
        for photo in photos:
            began = time.perf_counter()
            outputs.append(stylizer.stylize(photo))
            times.append(time.perf_counter() - began)
        columns[name] = outputs
        results.append(_summary(name, outputs, photos, painting, metrics, times))
    if args.gatys_iterations:
        engine = GatysEngine(device=device)
        options = GatysOptions(size=args.size, iterations=args.gatys_iterations, seed=0)
        outputs, times = [], []
        for photo in photos:
            began = time.perf_counter()
            outputs.append(engine.run(photo, [painting], options).cpu())
            times.append(time.perf_counter() - began)
        columns["gatys"] = outputs
        results.append(_summary("gatys", outputs, photos, painting, metrics, times))

    print(f"{'model':<14} {'content':>8} {'style':>8} {'ms/img':>8}   (medians over photos)")
    for r in results:
        print(f"{r['model']:<14} {r['content']:>8.3f} {r['style']:>8.3f} {r['ms']:>8.0f}")
    if args.json:
        record = {
            "painting": painting_path.name,
            "photos": [p.name for p in photos_paths[: args.count]],
            "size": args.size,
            "device": str(device),
            "results": results,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    if args.sheet:
        _write_sheet(args.sheet, columns, painting, args.tile)


def _summary(
    name: str,
    outputs: list[torch.Tensor],
    photos: list[torch.Tensor],
    painting: torch.Tensor,
    metrics: StyleMetrics,
    times: list[float],
) -> dict[str, object]:
    distances = [metrics.distances(o, p, painting) for o, p in zip(outputs, photos, strict=True)]
    return {
        "model": name,
        "content": statistics.median(d.content for d in distances),
        "style": statistics.median(d.style for d in distances),
        "ms": 1000 * statistics.median(times),
        "per_photo": [{"content": d.content, "style": d.style} for d in distances],
    }


def _write_sheet(
    path: Path, columns: dict[str, list[torch.Tensor]], painting: torch.Tensor, tile: int
) -> None:
    names = list(columns)
    rows = len(columns["photo"])
    label = 18
    sheet = Image.new("RGB", (tile * (len(names) + 1), label + tile * rows), "white")
    draw = ImageDraw.Draw(sheet)
    for col, name in enumerate(["painting", *names]):
        draw.text((col * tile + 4, 3), name, fill="black")
    art = tensor_to_image(painting)
    art.thumbnail((tile, tile))
    sheet.paste(art, (0, label))
    for col, name in enumerate(names, start=1):
        for row, image in enumerate(columns[name]):
            cell = tensor_to_image(image)
            cell.thumbnail((tile, tile))
            sheet.paste(cell, (col * tile, label + row * tile))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=88)


if __name__ == "__main__":
    main()
