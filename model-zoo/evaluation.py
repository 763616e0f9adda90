"""Shared by the zoo and arbitrary evaluations: photos, cached Gatys results, contact sheets."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from recipes import ROOT, RUNS

EVAL_PHOTOS = ROOT / ".." / "shared" / "data" / "eval" / "photos"
DEFAULT_PHOTOS = ("kodim04", "kodim13", "kodim23")
DEFAULT_GATYS_PHOTOS = ("kodim04",)


def add_evaluation_arguments(parser: Any) -> None:
    """The options every evaluation shares: photos, result size, Gatys's photos and steps."""
    parser.add_argument("--photos", nargs="+", default=list(DEFAULT_PHOTOS), metavar="NAME")
    parser.add_argument(
        "--gatys-photos",
        nargs="+",
        default=list(DEFAULT_GATYS_PHOTOS),
        metavar="NAME",
        help="the photos scored against Gatys (a subset of --photos: Gatys is slow on a CPU)",
    )
    parser.add_argument("--size", type=int, default=256, help="long side of every result")
    parser.add_argument("--gatys-iterations", type=int, default=100)
    parser.add_argument("--gatys-coarse-iterations", type=int, default=50)


def eval_photos(names: list[str], size: int) -> dict[str, Any]:
    """Evaluation photos (never trained on) at `size` px on the long side, by name."""
    from restyle.imaging import as_tensor, resize_tensor_to_long_side

    return {
        name: resize_tensor_to_long_side(as_tensor(EVAL_PHOTOS / f"{name}.jpg"), size)
        for name in names
    }


def gatys_settings(
    size: int, coarse_iterations: int, iterations: int
) -> tuple[dict[str, Any], Path]:
    """Gatys's options for an evaluation, and the cache folder of results made with them: the
    run from the photo up the ladder with absolute losses (the engine's default before it
    started from the feed-forward result), which the zoo's scores were measured with."""
    options = {
        "size": size,
        "iterations": iterations,
        "coarse_iterations": coarse_iterations,
        "seed": 0,
        "init": "content",
        "loss_scale": "absolute",
    }
    return options, RUNS / "eval" / f"gatys-{size}-{coarse_iterations}-{iterations}"


def gatys_result(cached: Path, photo: Any, painting: Path, options: dict[str, Any]) -> Any:
    """Gatys's result for (photo, painting), computed once and kept as a PNG at `cached`."""
    from restyle.api import stylize_tensor
    from restyle.imaging import as_tensor, save_image

    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        save_image(stylize_tensor(photo, painting, method="gatys", **options), cached)
        seconds = time.perf_counter() - began
        print(f"{cached.parent.name}/{cached.stem}: gatys {seconds:.0f} s", file=sys.stderr)
    return as_tensor(cached)


def tile(tensor: Any, cell: int) -> Image.Image:
    from restyle.imaging import tensor_to_image

    image = tensor_to_image(tensor)
    image.thumbnail((cell, cell), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (cell, cell), "white")
    canvas.paste(image, ((cell - image.width) // 2, (cell - image.height) // 2))
    return canvas


def sheet(cells: list[list[Any]], labels: list[str], cell: int) -> Image.Image:
    """Rows of images (tensors, PIL images or None) under a header row of column labels."""
    header = 18
    columns = max(len(row) for row in cells)
    sheet = Image.new("RGB", (columns * cell, header + len(cells) * cell), "white")
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(labels):
        draw.text((c * cell + 4, 3), label[: cell // 6], fill="black")
    for r, row in enumerate(cells):
        for c, item in enumerate(row):
            if item is None:
                continue
            image = item if isinstance(item, Image.Image) else tile(item, cell)
            if image.size != (cell, cell):
                image = image.copy()
                image.thumbnail((cell, cell), Image.Resampling.LANCZOS)
            sheet.paste(image, (c * cell, header + r * cell))
    return sheet
