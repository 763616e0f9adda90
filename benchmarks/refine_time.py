"""Quality against time of a personal style: refinement from the arbitrary network on a CPU.

For each painting, `restyle train fast --init arbitrary` with no recipe named (which runs the
personal-style recipe PERSONAL_CPU, as the service's refine jobs do, on the 13 photos bundled
for refinement)
runs for the first budget, then resumes to each later one (2, 5 and 15 minutes by default:
three runs of 2, 3 and 10 minutes). The learning rate is constant in this recipe, so a run
resumed at 2 minutes continues exactly as one 15-minute run would (the optimiser's state is
resumed too): one training per painting gives all budgets.
The budgets count training only; setting up (VGG19, the painting's style signals) comes first.

Each network and the arbitrary pass it started from stylize the evaluation photos (never
trained on) at `--size`; the medians of `restyle.metrics` distances are reported, with the
style distance relative to the arbitrary pass, and the artefact measures of `restyle.metrics`.
Targets: at least 15% lower after 2 minutes and 30% lower after 15, content distance no worse
than 0.9, and no more streaks than the arbitrary pass. A
contact sheet shows, per painting, the painting, then one photo through each stage.

    python benchmarks/refine_time.py --json docs/refine-time-cpu.json \\
        --sheet docs/images/refine-time.jpg
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

from machine import describe
from restyle.api import stylize_tensor
from restyle.engines.holder import Engines
from restyle.examples import refine_photos
from restyle.imaging import as_tensor, resize_tensor_to_long_side, tensor_to_image
from restyle.metrics import StyleMetrics, artefacts
from restyle.models.checkpoint import STYLED_MICROAST_FORMAT, read_metadata
from restyle.training.loop import MODEL_FILE

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "data" / "eval"
EVAL_PHOTOS = ["kodim04", "kodim13", "kodim23", "kodim05", "kodim15", "kodim21"]
# No recipe named: `--init arbitrary` runs the personal-style recipe (PERSONAL_CPU, as the
# service does) by default, which is what this measures; with a time, not steps.
RECIPE = ["--sample-every", "0", "--checkpoint-every", "0", "--seed", "0"]


def refine(painting: Path, out: Path, minutes: float, *, resume: bool) -> dict[str, Any]:
    """One stage: train (or resume) for `minutes`; the checkpoint's training record."""
    command = [
        "restyle", "train", "fast", "--init", "arbitrary", "--style", str(painting),
        "--out", str(out), "--time", f"{minutes * 60:g}s", "--quiet", *RECIPE,
    ]  # fmt: skip
    if resume:
        command.append("--resume")
    from restyle.cli import main

    if main(command[1:]) != 0:
        raise SystemExit(f"refinement failed: {' '.join(command)}")
    training: dict[str, Any] = read_metadata(out / MODEL_FILE, kind=STYLED_MICROAST_FORMAT)["info"][
        "training"
    ]
    return training


def label(image: Image.Image, text: str) -> Image.Image:
    canvas = Image.new("RGB", (image.width, image.height + 18), "white")
    canvas.paste(image, (0, 18))
    ImageDraw.Draw(canvas).text((4, 3), text, fill="black")
    return canvas


def score(
    run: Any, photos: dict[str, torch.Tensor], art: torch.Tensor, metrics: StyleMetrics
) -> dict[str, Any]:
    """Median content and style distances of `run` over the photos, its artefact measures
    (median and worst streaks, worst grid, the flags raised against each photo's own) and its
    results."""
    results = {photo: run(tensor) for photo, tensor in photos.items()}
    distances = [metrics.distances(results[p], photos[p], art) for p in photos]
    found = {p: artefacts(results[p].clamp(0, 1)) for p in photos}
    return {
        "content": statistics.median(d.content for d in distances),
        "style": statistics.median(d.style for d in distances),
        "streaks": statistics.median(a.streaks for a in found.values()),
        "streaks_worst": max(a.streaks for a in found.values()),
        "grid_worst": max(a.grid for a in found.values()),
        "flags": sorted(
            f"{p}: {f}" for p, a in found.items() for f in a.flags(photo=artefacts(photos[p]))
        ),
        "results": results,
    }


def stage_results(
    painting: Path,
    art: torch.Tensor,
    photos: dict[str, torch.Tensor],
    args: argparse.Namespace,
    metrics: StyleMetrics,
    engines: Engines,
    work: Path,
) -> dict[str, Any]:
    """The arbitrary pass, then the refined network after each budget, scored."""

    def arbitrary(tensor: torch.Tensor) -> torch.Tensor:
        return stylize_tensor(tensor, painting, method="arbitrary", engines=engines)

    stages = {"arbitrary": score(arbitrary, photos, art, metrics)}
    out = work / painting.stem
    elapsed = 0.0
    for minutes in args.minutes:
        training = refine(painting, out, minutes - elapsed, resume=elapsed > 0)
        elapsed = minutes
        model = work / f"{painting.stem}-{minutes:g}m.safetensors"
        shutil.copy(out / MODEL_FILE, model)

        def refined(tensor: torch.Tensor, model: Path = model) -> torch.Tensor:
            return stylize_tensor(tensor, model, method="fast", engines=engines)

        entry = score(refined, photos, art, metrics)
        entry["steps"] = training["steps"]
        entry["command"] = training["command"]
        entry["style_change"] = entry["style"] / stages["arbitrary"]["style"] - 1
        stages[f"{minutes:g} min"] = entry
    for name, entry in stages.items():
        print(painting.name, name, f"content {entry['content']:.3f}",
              f"style {entry['style']:.4f}", f"streaks {entry['streaks']:.2f}",
              f"(worst {entry['streaks_worst']:.2f})", f"flags {len(entry['flags'])}",
              flush=True)  # fmt: skip
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--paintings",
        nargs="+",
        type=Path,
        default=sorted((EVAL / "styles").glob("*.jpg")),
        help="paintings no Restyle network was trained on (default: the two held out)",
    )
    parser.add_argument("--photos", nargs="+", default=EVAL_PHOTOS)
    parser.add_argument("--minutes", nargs="+", type=float, default=[2.0, 5.0, 15.0])
    parser.add_argument("--size", type=int, default=512, help="long side of the results")
    parser.add_argument("--sheet-photo", default="kodim23")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--sheet", type=Path, default=None)
    args = parser.parse_args()

    photos = {
        name: resize_tensor_to_long_side(as_tensor(EVAL / "photos" / f"{name}.jpg"), args.size)
        for name in args.photos
    }
    metrics = StyleMetrics()
    engines = Engines(device="cpu")
    report: dict[str, Any] = {
        "machine": describe(),
        "recipe": RECIPE,
        "training_photos": str(refine_photos().relative_to(ROOT / "src")),
        "evaluation": {"photos": args.photos, "size": args.size},
        "paintings": {},
    }
    rows: list[Image.Image] = []
    work = Path(tempfile.mkdtemp(prefix="refine-time-"))
    try:
        for painting in args.paintings:
            art = as_tensor(painting)
            stages = stage_results(painting, art, photos, args, metrics, engines, work)
            cells = [resize_tensor_to_long_side(art, 256)] + [
                resize_tensor_to_long_side(s["results"][args.sheet_photo], 256)
                for s in stages.values()
            ]
            names = ["painting", *stages]
            tiles = [label(tensor_to_image(c), n) for c, n in zip(cells, names, strict=True)]
            row = Image.new("RGB", (sum(t.width for t in tiles), max(t.height for t in tiles)))
            x = 0
            for tile in tiles:
                row.paste(tile, (x, 0))
                x += tile.width
            rows.append(row)
            report["paintings"][painting.name] = {
                k: {m: v for m, v in s.items() if m != "results"} for k, s in stages.items()
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.sheet is not None and rows:
        sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)))
        y = 0
        for row in rows:
            sheet.paste(row, (0, y))
            y += row.height
        sheet.save(args.sheet, quality=85)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
