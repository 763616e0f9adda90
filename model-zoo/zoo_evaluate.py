"""`build.py evaluate`: score every shipped style against Gatys and write docs/model-zoo.md.

For a fixed set of evaluation photos (never trained on), each style's shipped network and the
Gatys engine (same painting, same output size) stylize every photo; VGG19 content and style
distances (`restyle.metrics`) of both are recorded in docs/model-zoo.json, and two images are
drawn: the grid (photos × styles) and a fast-vs-Gatys sheet. Gatys results are cached under
zoo-runs/eval/ so that re-running after new training only stylizes with the networks.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from typing import Any

from evaluation import add_evaluation_arguments, eval_photos, gatys_result, gatys_settings, sheet
from PIL import Image
from recipes import ROOT, load_recipes

DOCS = ROOT / "docs"


def add_evaluate_parser(commands: Any) -> None:
    evaluate = commands.add_parser("evaluate", help="fast vs Gatys distances, grid, docs")
    add_evaluation_arguments(evaluate)
    evaluate.add_argument(
        "--gatys-only", action="store_true", help="fill the Gatys cache, write no docs"
    )
    evaluate.add_argument("--only", nargs="+", metavar="ID", help="these styles only")
    evaluate.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    import torch

    from restyle import zoo
    from restyle.api import stylize_tensor
    from restyle.imaging import as_tensor
    from restyle.metrics import StyleMetrics

    torch.manual_seed(0)
    recipes = load_recipes()
    styles = [recipes.style(i) for i in args.only] if args.only else recipes.styles
    photos = eval_photos(args.photos, args.size)
    gatys_options, cache = gatys_settings(
        args.size, args.gatys_coarse_iterations, args.gatys_iterations
    )
    metrics = None if args.gatys_only else StyleMetrics()
    rows: list[dict[str, Any]] = []
    images: dict[tuple[str, str, str], torch.Tensor] = {}
    for style in styles:
        painting = as_tensor(recipes.painting_path(style))
        entry = zoo.find(style.id)
        if entry is None and not args.gatys_only:
            print(f"{style.id}: not packaged, skipped", file=sys.stderr)
            continue
        for name, photo in photos.items():
            gatys = None
            if name in args.gatys_photos:
                cached = cache / style.id / f"{name}.png"
                gatys = gatys_result(cached, photo, recipes.painting_path(style), gatys_options)
            if metrics is None or entry is None:
                continue
            fast = stylize_tensor(photo, style.id, method="fast", size=args.size)
            images[style.id, name, "fast"] = fast
            fast_d = metrics.distances(fast, photo, painting)
            row = {
                "style": style.id,
                "photo": name,
                "network": entry.default_variant.name,
                "fast": {"content": fast_d.content, "style": fast_d.style},
            }
            if gatys is not None:
                images[style.id, name, "gatys"] = gatys
                gatys_d = metrics.distances(gatys, photo, painting)
                row["gatys"] = {"content": gatys_d.content, "style": gatys_d.style}
            rows.append(row)
    if metrics is None:
        return 0
    settings = {
        "photos": args.photos,
        "gatys_photos": args.gatys_photos,
        "size": args.size,
        "gatys": gatys_options,
        "machine": f"{platform.machine()} CPU, torch {torch.__version__}",
    }
    summary = _summarise(rows)
    DOCS.joinpath("model-zoo.json").write_text(
        json.dumps({"settings": settings, "summary": summary, "rows": rows}, indent=1) + "\n",
        "utf-8",
    )
    ids = [s.id for s in styles if zoo.find(s.id) is not None]
    _grid(ids, photos, images).save(DOCS / "images" / "model-zoo-grid.jpg", quality=85)
    _fast_vs_gatys(ids, args.gatys_photos[0], photos, images).save(
        DOCS / "images" / "model-zoo-fast-vs-gatys.jpg", quality=85
    )
    DOCS.joinpath("model-zoo.md").write_text(_markdown(ids, settings, summary), "utf-8")
    print("wrote docs/model-zoo.md, docs/model-zoo.json and two images", file=sys.stderr)
    return 0


def _summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per style: median distances over the photos, and the fast/Gatys style-distance ratio."""
    summary = {}
    for style in dict.fromkeys(r["style"] for r in rows):
        mine = [r for r in rows if r["style"] == style and "gatys" in r]
        median = {
            f"{engine}_{kind}": statistics.median(r[engine][kind] for r in mine)
            for engine in ("fast", "gatys")
            for kind in ("content", "style")
        }
        every = [r for r in rows if r["style"] == style]
        for kind in ("content", "style"):
            median[f"fast_{kind}_all"] = statistics.median(r["fast"][kind] for r in every)
        median["style_ratio"] = median["fast_style"] / median["gatys_style"]
        median["content_ratio"] = median["fast_content"] / median["gatys_content"]
        summary[style] = median
    return summary


def _painting(style_id: str, cell: int) -> Image.Image:
    from restyle import zoo

    entry = zoo.find(style_id)
    assert entry is not None
    with Image.open(entry.painting_path) as image:
        canvas = Image.new("RGB", (cell, cell), "white")
        image = image.convert("RGB")
        image.thumbnail((cell, cell), Image.Resampling.LANCZOS)
        canvas.paste(image, ((cell - image.width) // 2, (cell - image.height) // 2))
        return canvas


def _grid(ids: list[str], photos: dict[str, Any], images: dict[Any, Any]) -> Image.Image:
    """First row: the paintings; then one row per photo: the photo, then every style."""
    cell = 192
    cells: list[list[Any]] = [[None, *(_painting(i, cell) for i in ids)]]
    for name, photo in photos.items():
        cells.append([photo, *(images[i, name, "fast"] for i in ids)])
    return sheet(cells, ["photo", *ids], cell)


def _fast_vs_gatys(
    ids: list[str], name: str, photos: dict[str, Any], images: dict[Any, Any]
) -> Image.Image:
    """One photo: per style a column of painting, fast network, Gatys."""
    cell = 192
    cells = [
        [None, *(_painting(i, cell) for i in ids)],
        [photos[name], *(images[i, name, "fast"] for i in ids)],
        [None, *(images[i, name, "gatys"] for i in ids)],
    ]
    return sheet(cells, ["painting / fast / gatys", *ids], cell)


def _markdown(ids: list[str], settings: dict[str, Any], summary: dict[str, Any]) -> str:
    from restyle import zoo

    entries = [e for e in (zoo.find(i) for i in ids) if e is not None]
    provisional = any(e.provisional for e in entries)
    lines = [
        "# The model zoo",
        "",
        "<!-- Written by `python model-zoo/build.py evaluate`: edit that script instead -->",
        "",
        f"Restyle ships {len(entries)} trained styles, each a painting in the public domain "
        "trained with `restyle train fast` on the photos of `../shared/data/photos`. "
        "`restyle styles` lists them; `restyle stylize --style ID photo.jpg -o out.jpg` uses one.",
        "",
    ]
    if provisional:
        lines += [
            "> **Provisional weights.** The networks shipped now are `lite` networks trained on "
            "a 2-core CPU for a few hundred steps at 128 px (`lite-cpu` profile of "
            "`model-zoo/recipes.toml`). The `standard` and `lite` GPU profiles have not been "
            "run yet; `model-zoo/train_gpu.sh` trains them. Expect weaker style and softer "
            "detail than a fully trained network.",
            "",
        ]
    lines += [
        "![every style on three evaluation photos](images/model-zoo-grid.jpg)",
        "",
        "## Styles",
        "",
        "| id | painting | network | steps | training command |",
        "|---|---|---|---|---|",
    ]
    for e in entries:
        v = e.default_variant
        year = f", {e.year}" if e.year else ""
        flag = " (provisional)" if v.provisional else ""
        lines.append(
            f"| `{e.id}` | {e.title} ({e.artist}{year}) | {v.name}{flag} | "
            f"{v.training['steps']} | `{v.training['command']}` |"
        )
    photos = ", ".join(settings["gatys_photos"])
    gatys = settings["gatys"]
    lines += [
        "",
        "## Fast network against Gatys",
        "",
        f"Gatys against the fast network on {photos} (Kodak, never trained on), every result "
        f"at {settings['size']} px on the long side. Gatys: the same painting, "
        f"{gatys['coarse_iterations']} L-BFGS steps at the coarse scale and "
        f"{gatys['iterations']} at the final one, default weights. Distances are "
        "`restyle.metrics` (VGG19; content at relu4_2, style over relu1_1..relu5_1, both "
        "relative: 0 is the photo's content or the painting's texture), medians where there are "
        "several photos; the last two columns are the fast network's medians over all of "
        f"{', '.join(settings['photos'])}. Machine: {settings['machine']}.",
        "",
        "| style | fast content | fast style | Gatys content | Gatys style | "
        "style fast/Gatys | content fast/Gatys | fast content (all) | fast style (all) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for style_id in ids:
        s = summary[style_id]
        lines.append(
            f"| `{style_id}` | {s['fast_content']:.2f} | {s['fast_style']:.3f} | "
            f"{s['gatys_content']:.2f} | {s['gatys_style']:.3f} | {s['style_ratio']:.1f} | "
            f"{s['content_ratio']:.2f} | {s['fast_content_all']:.2f} | "
            f"{s['fast_style_all']:.3f} |"
        )
    ratios = [summary[i]["style_ratio"] for i in ids]
    lines += [
        "",
        f"Median style ratio fast/Gatys: {statistics.median(ratios):.1f} "
        "(1 would be Gatys's match of the painting's texture; lower content distance is closer "
        "to the photo). Ratios compare at the content distance each engine lands on by default, "
        "which is not the same: read both columns.",
        "",
        "![painting, fast network and Gatys for one photo](images/model-zoo-fast-vs-gatys.jpg)",
        "",
        "## Reproducing a network",
        "",
        "Every checkpoint records its exact command, seed and the sha256 of its training data "
        "(`restyle styles --json`, under `variants.*.training`). From the repository root with "
        "`../shared/data` beside it, that command trains the same weights again "
        "(tests/test_zoo.py checks a short run bit for bit). To train and ship the whole zoo:",
        "",
        "```",
        "python model-zoo/build.py train --profile standard --jobs 4   # on a GPU",
        "python model-zoo/build.py package --profile standard",
        "python model-zoo/build.py evaluate",
        "```",
        "",
        "`model-zoo/train_gpu.sh` does the GPU part in calls of under ten minutes each.",
        "",
        "### Getting the runs back from a GPU machine",
        "",
        "A machine that returns only what a command writes under `$OUT` hands back at most 8 "
        "files, each at most 16 MiB, 64 MiB in all, no more than two folders down. With `$OUT` "
        "set, `train_gpu.sh` therefore packs the runs (weights, `train_log.jsonl`, `train.out`, "
        "last sample sheet; not the training state) flat into `$OUT` as `runs-1.tar`, "
        "`runs-2.tar`, ... plus `MANIFEST.json` (every member's sha256), with "
        '`python model-zoo/pack_runs.py pack zoo-runs "$OUT"`. A file over 16 MiB (the '
        "arbitrary MetaNet's float32 weights, 28 MiB) is split across archives. Ten `standard` "
        "networks in float32 are 64.1 MiB on their own, so the runs that do not fit are left "
        "for the next call: run the same `train_gpu.sh` command again, which trains no finished "
        "style again and delivers only what no earlier call delivered (`zoo-runs/.packed.json` "
        "remembers). Unpack each call's files into the same folder, then package:",
        "",
        "```",
        "python model-zoo/pack_runs.py unpack FILES_AT zoo-runs   # checks every sha256, "
        "restores zoo-runs/PROFILE/STYLE/",
        "python model-zoo/build.py package --profile standard --profile lite --arbitrary gpu",
        "```",
        "",
        "## Licences",
        "",
    ]
    lines += [f"- `{e.id}`: {e.attribution}" for e in entries]
    return "\n".join(lines) + "\n"
