"""`build.py evaluate-arbitrary`: the MetaNet on paintings it never saw, against Gatys and fast.

Unseen paintings: the two of ../shared/data/eval/styles and the public-domain paintings of the
run's own held-out split (`--held-out` of them). Seen paintings: the zoo's, where the fast
engine's trained networks are the comparison (a zoo painting in the held-out split counts as
unseen by the MetaNet). Every result is at `--size` px on the long side
on the zoo's evaluation photos; distances are `restyle.metrics`, medians over the photos (Gatys,
slow on a CPU, is scored on `--gatys-photos` only).
Writes docs/arbitrary.json and docs/images/arbitrary-grid.jpg, and prints the tables.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from evaluation import add_evaluation_arguments, eval_photos, gatys_result, gatys_settings, sheet
from PIL import Image
from recipes import ROOT, load_recipes

DOCS = ROOT / "docs"
EVAL_STYLES = ROOT / ".." / "shared" / "data" / "eval" / "styles"


def add_evaluate_arbitrary_parser(commands: Any) -> None:
    evaluate = commands.add_parser(
        "evaluate-arbitrary", help="MetaNet vs Gatys (unseen paintings) and vs fast (zoo's)"
    )
    evaluate.add_argument("--model", default="", help="MetaNet checkpoint (default: shipped)")
    add_evaluation_arguments(evaluate)
    evaluate.add_argument("--held-out", type=int, default=2, help="PD held-out paintings used")
    evaluate.set_defaults(run=run_evaluate_arbitrary)


def run_evaluate_arbitrary(args: argparse.Namespace) -> int:
    from restyle import zoo
    from restyle.api import stylize_tensor
    from restyle.engines.arbitrary import ArbitraryEngine
    from restyle.engines.arbitrary_config import ArbitrarySetup
    from restyle.imaging import as_tensor
    from restyle.metrics import StyleMetrics

    recipes = load_recipes()
    engine = ArbitraryEngine(ArbitrarySetup(network="metanet", model=args.model), device="cpu")
    photos = eval_photos(args.photos, args.size)
    options, cache = gatys_settings(args.size, args.gatys_coarse_iterations, args.gatys_iterations)
    metrics = StyleMetrics()
    zoo_paintings = {recipes.painting_path(recipes.style(e.id)).name for e in zoo.entries()}
    unseen = sorted(EVAL_STYLES.glob("*.jpg")) + _public_domain_held_out(
        engine.info, ROOT / recipes.styles_dir, args.held_out, exclude=zoo_paintings
    )
    held_out = set(engine.info.get("styles", {}).get("held_out", []))
    rows: list[dict[str, Any]] = []
    cells: dict[tuple[str, str, str], Any] = {}
    for painting_path in unseen:
        painting, key = as_tensor(painting_path), painting_path.stem
        stylizer = engine.stylizer([painting])
        for name, photo in photos.items():
            # The photo itself is the baseline: a style distance under its own means progress.
            results = {"arbitrary": stylizer.stylize(photo), "input": photo}
            if name in args.gatys_photos:
                cached = cache / f"unseen-{key}" / f"{name}.png"
                results["gatys"] = gatys_result(cached, photo, painting_path, options)
            for method, image in results.items():
                cells[key, name, method] = image
            rows.append(_row("unseen", key, name, metrics, painting, photo, **results))
    for entry in zoo.entries():
        style = recipes.style(entry.id)
        painting_path = recipes.painting_path(style)
        painting = as_tensor(painting_path)
        # Some zoo paintings fall in the MetaNet's held-out split: unseen by it, not by fast.
        group = "unseen" if painting_path.name in held_out else "seen"
        stylizer = engine.stylizer([painting])
        for name, photo in photos.items():
            results = {
                "arbitrary": stylizer.stylize(photo),
                "input": photo,
                "fast": stylize_tensor(photo, entry.id, method="fast", size=args.size),
            }
            if name in args.gatys_photos:
                cached = cache / style.id / f"{name}.png"
                results["gatys"] = gatys_result(cached, photo, painting_path, options)
            rows.append(_row(group, entry.id, name, metrics, painting, photo, **results))
    summary = _summarise(rows)
    record = {"settings": {**vars(args), "run": None}, "summary": summary, "rows": rows}
    DOCS.joinpath("arbitrary.json").write_text(json.dumps(record, indent=1) + "\n", "utf-8")
    keys = [p.stem for p in unseen]
    grid = sheet(
        [
            [None, *(_thumbnail(p) for p in unseen)],
            *([photos[n], *(cells[k, n, "arbitrary"] for k in keys)] for n in photos),
            [None, *(cells[k, args.gatys_photos[0], "gatys"] for k in keys)],
        ],
        ["photo", *keys],
        192,
    )
    grid.save(DOCS / "images" / "arbitrary-grid.jpg", quality=85)
    print(_markdown(summary))
    return 0


def _public_domain_held_out(
    info: dict[str, Any], styles_dir: Path, count: int, *, exclude: set[str]
) -> list[Path]:
    """The first `count` paintings of the run's held-out split that may be shown (PD only),
    other than the zoo's (`exclude`), which are evaluated with the zoo."""
    with (styles_dir / "MANIFEST.tsv").open(encoding="utf-8", newline="") as handle:
        public = {
            row["file"]
            for row in csv.DictReader(handle, delimiter="\t")
            if row["license_notes"].startswith("PD |")
        }
    held_out = info.get("styles", {}).get("held_out", [])
    shown = [name for name in held_out if name in public and name not in exclude]
    return [styles_dir / name for name in shown][:count]


def _row(
    group: str,
    key: str,
    photo_name: str,
    metrics: Any,
    painting: Any,
    photo: Any,
    **results: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {"group": group, "painting": key, "photo": photo_name}
    for engine, image in results.items():
        d = metrics.distances(image, photo, painting)
        row[engine] = {"content": d.content, "style": d.style}
    print(
        f"{group} {key} {photo_name}: "
        + ", ".join(f"{e} {row[e]['content']:.2f}/{row[e]['style']:.3f}" for e in results),
        file=sys.stderr,
    )
    return row


def _summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for key in dict.fromkeys(r["painting"] for r in rows):
        mine = [r for r in rows if r["painting"] == key]
        engines = [e for e in ("arbitrary", "fast", "gatys", "input") if any(e in r for r in mine)]
        summary[key] = {"group": mine[0]["group"]} | {
            f"{e}_{kind}": statistics.median(r[e][kind] for r in mine if e in r)
            for e in engines
            for kind in ("content", "style")
        }
    return summary


def _markdown(summary: dict[str, Any]) -> str:
    lines = [
        "| painting | seen in training | arbitrary content | arbitrary style | fast content | "
        "fast style | Gatys content | Gatys style | photo style |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, s in summary.items():
        fast = f"{s['fast_content']:.2f} | {s['fast_style']:.3f}" if "fast_style" in s else "– | –"
        lines.append(
            f"| {key} | {'yes' if s['group'] == 'seen' else 'no'} | {s['arbitrary_content']:.2f} | "
            f"{s['arbitrary_style']:.3f} | {fast} | {s['gatys_content']:.2f} | "
            f"{s['gatys_style']:.3f} | {s['input_style']:.3f} |"
        )
    return "\n".join(lines)


def _thumbnail(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((192, 192))
        return image
