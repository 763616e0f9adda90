"""`build.py evaluate`: score every shipped style and write docs/model-zoo.md.

For fixed evaluation photos (never trained on), each style is rendered three ways with the same
painting: the arbitrary engine's pass (MicroAST, no training), the style's shipped network (the
refined one where there is one) and Gatys (one photo, smaller: Gatys is slow on a CPU). VGG19
content and style distances (`restyle.metrics`) go to docs/model-zoo.json, one sheet per style
to docs/images/zoo/ID.jpg (painting, then per photo: photo / arbitrary pass / network / Gatys,
then a crop of a 1024 px result, where artefacts show), and docs/model-zoo.md says which styles
meet the targets. With `--write-flags` the registry's `provisional` flag of each network is set
from the targets: style distance at least 25% below the arbitrary pass's and content distance
at most 0.9 (medians over the photos), and no artefacts seen (a recipe marks a style whose
sheet shows them with `artefacts = "what was seen"`).
Gatys results are cached under zoo-runs/eval/.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from typing import Any

from evaluation import EVAL_PHOTOS, eval_photos, gatys_result, gatys_settings, sheet
from PIL import Image
from recipes import ROOT, load_recipes

DOCS = ROOT / "docs"
SHEETS = DOCS / "images" / "zoo"
STYLE_GAIN_TARGET = 0.25  # style distance at least this much below the arbitrary pass's
CONTENT_TARGET = 0.9
LARGE_SIZE = 1024  # artefacts (stripes, grids) show at print-like sizes first
LARGE_PHOTO = "kodim13"  # fine vertical detail (trees): where stripes showed in the probes
CELL = 224


def add_evaluate_parser(commands: Any) -> None:
    evaluate = commands.add_parser("evaluate", help="arbitrary vs network vs Gatys, docs")
    evaluate.add_argument(
        "--photos", nargs="+", default=["kodim04", "kodim13", "kodim23"], metavar="NAME"
    )
    evaluate.add_argument("--size", type=int, default=512, help="long side of the results")
    evaluate.add_argument("--gatys-photo", default="kodim04", metavar="NAME")
    evaluate.add_argument("--gatys-size", type=int, default=256)
    evaluate.add_argument("--gatys-iterations", type=int, default=100)
    evaluate.add_argument("--gatys-coarse-iterations", type=int, default=50)
    evaluate.add_argument("--only", nargs="+", metavar="ID", help="these styles only")
    evaluate.add_argument(
        "--write-flags", action="store_true", help="set the registry's provisional flags"
    )
    evaluate.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    import torch

    from restyle import zoo
    from restyle.engines.arbitrary import ArbitraryEngine
    from restyle.engines.fast import FastStylizer
    from restyle.imaging import as_tensor, resize_tensor_to_long_side
    from restyle.metrics import StyleMetrics

    torch.manual_seed(0)
    recipes = load_recipes()
    styles = [recipes.style(i) for i in args.only] if args.only else recipes.styles
    photos = eval_photos(args.photos, args.size)
    large = resize_tensor_to_long_side(as_tensor(EVAL_PHOTOS / f"{LARGE_PHOTO}.jpg"), LARGE_SIZE)
    gatys_photo = eval_photos([args.gatys_photo], args.gatys_size)[args.gatys_photo]
    gatys_options, cache = gatys_settings(
        args.gatys_size, args.gatys_coarse_iterations, args.gatys_iterations
    )
    metrics = StyleMetrics()
    arbitrary = ArbitraryEngine()
    previous = _previous_results()
    results: dict[str, Any] = {}
    SHEETS.mkdir(parents=True, exist_ok=True)
    for style in styles:
        entry = zoo.find(style.id)
        if entry is None:
            print(f"{style.id}: not packaged, skipped", file=sys.stderr)
            continue
        painting = as_tensor(recipes.painting_path(style))
        variant = entry.default_variant
        runners = {
            "arbitrary": arbitrary.stylizer([painting]),
            "network": FastStylizer(variant.verified_path()),
        }
        rows: list[list[Any]] = [[_painting(entry.painting_path)]]
        scores: dict[str, list[Any]] = {k: [] for k in runners}
        for name, photo in photos.items():
            row = [photo]
            for key, runner in runners.items():
                out = runner.stylize(photo).clamp(0, 1)
                d = metrics.distances(out, photo, painting)
                scores[key].append({"photo": name, "content": d.content, "style": d.style})
                row.append(out)
            rows.append(row)
        cached = cache / style.id / f"{args.gatys_photo}.png"
        gatys = gatys_result(cached, gatys_photo, recipes.painting_path(style), gatys_options)
        g = metrics.distances(gatys, gatys_photo, painting)
        rows[1 + list(photos).index(args.gatys_photo)].append(gatys)
        # Pixels 1:1 (a CELL² crop), where stripes and grids show if there are any.
        top, left = LARGE_SIZE // 10, LARGE_SIZE // 5
        crops = [
            runner.stylize(large).clamp(0, 1)[..., top : top + CELL, left : left + CELL]
            for runner in runners.values()
        ]
        rows.append([large[..., top : top + CELL, left : left + CELL], *crops])
        labels = ["photo (last: 1024 px crop)", "arbitrary pass", variant.name, "gatys"]
        sheet(rows, labels, CELL).save(SHEETS / f"{style.id}.jpg", quality=80)
        summary = {
            key: {kind: statistics.median(s[kind] for s in values) for kind in ("content", "style")}
            for key, values in scores.items()
        }
        gain = 1 - summary["network"]["style"] / summary["arbitrary"]["style"]
        artefacts = recipes.settings(style, _profile(variant)).get("artefacts", "")
        met = (
            variant.name == "refined"
            and gain >= STYLE_GAIN_TARGET
            and summary["network"]["content"] <= CONTENT_TARGET
            and not artefacts
        )
        results[style.id] = {
            "variant": variant.name,
            "summary": summary,
            "style_gain": gain,
            "gatys": {"photo": args.gatys_photo, "content": g.content, "style": g.style},
            "artefacts": artefacts,
            "targets_met": met,
            "training_seconds": variant.training.get("seconds"),
            "rows": scores,
        }
        print(
            f"{style.id}: style {summary['arbitrary']['style']:.3f} -> "
            f"{summary['network']['style']:.3f} ({gain:+.0%}), content "
            f"{summary['network']['content']:.2f}, targets {'met' if met else 'NOT met'}",
            file=sys.stderr,
        )
    results = {**previous, **results}
    settings = {
        "photos": args.photos,
        "size": args.size,
        "large": {"photo": LARGE_PHOTO, "size": LARGE_SIZE},
        "gatys": {"photo": args.gatys_photo, "size": args.gatys_size, **gatys_options},
        "machine": _machine(),
    }
    DOCS.joinpath("model-zoo.json").write_text(
        json.dumps({"settings": settings, "styles": results}, indent=1) + "\n", "utf-8"
    )
    ids = [s.id for s in recipes.styles if s.id in results]
    if args.write_flags:
        _write_flags({i: results[i] for i in ids})
    DOCS.joinpath("model-zoo.md").write_text(_markdown(ids, settings, results), "utf-8")
    print("wrote docs/model-zoo.md, docs/model-zoo.json and docs/images/zoo/", file=sys.stderr)
    return 0


def _profile(variant: Any) -> str:
    return str(variant.training.get("profile", ""))


def _previous_results() -> dict[str, Any]:
    """Styles scored by an earlier run (`--only` re-scores some and keeps the rest)."""
    path = DOCS / "model-zoo.json"
    if not path.is_file():
        return {}
    try:
        styles = json.loads(path.read_text("utf-8")).get("styles", {})
    except json.JSONDecodeError:
        return {}
    return styles if isinstance(styles, dict) else {}


def _machine() -> str:
    import torch

    from restyle.devices import cpu_has_fast_bf16

    cpu = torch.cpu.get_capabilities().get("cpu_name", platform.processor() or "CPU")
    bf16 = "native bf16" if cpu_has_fast_bf16() else "no native bf16"
    threads = torch.get_num_threads()
    return f"{cpu} ({platform.machine()}, {threads} threads, {bf16}), torch {torch.__version__}"


def _write_flags(results: dict[str, Any]) -> None:
    """The registry's `provisional` flag of each evaluated network: true unless targets met."""
    from zoo_package import REGISTRY

    registry = json.loads(REGISTRY.read_text("utf-8"))
    for entry in registry["styles"]:
        result = results.get(entry["id"])
        if result is not None:
            entry["variants"][result["variant"]]["provisional"] = not result["targets_met"]
    REGISTRY.write_text(json.dumps(registry, indent=1, ensure_ascii=False) + "\n", "utf-8")


def _painting(path: Any) -> Image.Image:
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((CELL, CELL), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (CELL, CELL), "white")
        canvas.paste(image, ((CELL - image.width) // 2, (CELL - image.height) // 2))
        return canvas


def _markdown(ids: list[str], settings: dict[str, Any], results: dict[str, Any]) -> str:
    from restyle import zoo

    entries = [e for e in (zoo.find(i) for i in ids) if e is not None]
    gatys = settings["gatys"]
    met = [i for i in ids if results[i]["targets_met"]]
    lines = [
        "# The model zoo",
        "",
        "<!-- Written by `python model-zoo/build.py evaluate`: edit that script instead -->",
        "",
        f"Restyle ships {len(entries)} trained styles, each a painting in the public domain. "
        "`restyle styles` lists them; `restyle stylize --style ID photo.jpg -o out.jpg` uses one "
        "(the fast engine), as do the service, the web app and the live camera.",
        "",
        "Each style's network is **refined from the arbitrary network**: MicroAST (the "
        "arbitrary engine's pretrained network, `docs/arbitrary.md`) with the painting's style "
        "signals folded into its weights, fine-tuned for that painting with Johnson et al.'s "
        "perceptual loss by `restyle train fast --init arbitrary` on the photos of "
        "`../shared/data/photos` (profile `refine-cpu` of `model-zoo/recipes.toml`, a few "
        "minutes of a 2-core CPU per style; the exact command is in each checkpoint and in the "
        "table below). It replaces the `lite` networks trained from scratch on the same CPU, "
        "which were muddy.",
        "",
        f"**Targets** (a network is `provisional` unless it meets all three): style distance at "
        f"least {STYLE_GAIN_TARGET:.0%} below the arbitrary pass's, content distance at most "
        f"{CONTENT_TARGET}, and no artefacts (stripes, grids, casts) in its sheet, including "
        f"the crop of a {settings['large']['size']} px result. Met by {len(met)} of {len(ids)}"
        + (f": {', '.join(f'`{i}`' for i in met)}." if met else "."),
        "",
        "## Scores",
        "",
        f"Photos {', '.join(settings['photos'])} (Kodak, never trained on) at "
        f"{settings['size']} px; medians over the photos. Distances are `restyle.metrics` "
        "(VGG19; content at relu4_2, style over relu1_1..relu5_1, both relative: 0 is the "
        "photo's content or the painting's texture). Gatys: the same painting on "
        f"{gatys['photo']} at {gatys['size']} px, {gatys['coarse_iterations']} + "
        f"{gatys['iterations']} L-BFGS steps, default weights (one photo: Gatys is slow on a "
        f"CPU). Machine: {settings['machine']}.",
        "",
        "| style | network | arbitrary content | arbitrary style | network content | "
        "network style | style vs arbitrary | Gatys content | Gatys style | training | "
        "targets |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i in ids:
        r = results[i]
        a, n, g = r["summary"]["arbitrary"], r["summary"]["network"], r["gatys"]
        seconds = r.get("training_seconds")
        took = f"{seconds / 60:.1f} min" if seconds else "?"
        verdict = "met" if r["targets_met"] else "**not met**"
        if r.get("artefacts"):
            verdict += f" (artefacts: {r['artefacts']})"
        lines.append(
            f"| `{i}` | {r['variant']} | {a['content']:.2f} | {a['style']:.3f} | "
            f"{n['content']:.2f} | {n['style']:.3f} | {-r['style_gain']:+.0%} | "
            f"{g['content']:.2f} | {g['style']:.3f} | {took} | {verdict} |"
        )
    lines += ["", "## Sheets", ""]
    lines += [
        "Per style: the painting; per photo the photo, the arbitrary pass, the shipped network "
        f"and (on {gatys['photo']}) Gatys; last row, a crop of "
        f"{settings['large']['photo']} at {settings['large']['size']} px.",
        "",
    ]
    for i in ids:
        lines += [
            f"### `{i}`",
            "",
            f"![{i}: painting, arbitrary pass, network, Gatys](images/zoo/{i}.jpg)",
            "",
        ]
    lines += [
        "## Styles and commands",
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
    lines += [
        "",
        "## Reproducing a network",
        "",
        "Every checkpoint records its exact command, seed and the sha256 of its training data "
        "(`restyle styles --json`, under `variants.*.training`). From the repository root with "
        "`../shared/data` beside it:",
        "",
        "```",
        "python model-zoo/build.py train --profile refine-cpu      # ~5 min per style, 2-core CPU",
        "python model-zoo/build.py package --profile refine-cpu",
        "python model-zoo/build.py evaluate --write-flags",
        "```",
        "",
        "Refinement on a CPU with native bfloat16 (AVX512-BF16 or AMX: AMD Zen 4, Intel "
        "Sapphire Rapids) runs VGG19 in bf16 autocast and the network in channels-last memory; "
        "elsewhere in float32, about twice as long. The same weights are not bit-identical "
        "across the two (rounding), and equal in quality.",
        "",
        "`model-zoo/train_gpu.sh` runs the GPU profiles (longer refinement, the `standard` "
        "networks from scratch) in calls of under ten minutes each when a GPU is available.",
        "",
        "### Getting the runs back from a GPU machine",
        "",
        "A machine that returns only what a command writes under `$OUT` hands back at most 8 "
        "files, each at most 16 MiB, 64 MiB in all, no more than two folders down. With `$OUT` "
        "set, `train_gpu.sh` therefore packs the runs (weights, `train_log.jsonl`, `train.out`, "
        "last sample sheet; not the training state) flat into `$OUT` as `runs-1.tar`, "
        "`runs-2.tar`, ... plus `MANIFEST.json` (every member's sha256), with "
        '`python model-zoo/pack_runs.py pack zoo-runs "$OUT"`. A file over 16 MiB is split '
        "across archives; runs that do not fit are left for the next call "
        "(`zoo-runs/.packed.json` remembers). Unpack each call's files into the same folder, "
        "then package:",
        "",
        "```",
        "python model-zoo/pack_runs.py unpack FILES_AT zoo-runs   # checks every sha256",
        "python model-zoo/build.py package --profile refine-gpu",
        "```",
        "",
        "## Licences",
        "",
        "The paintings are in the public domain; the networks start from MicroAST's published "
        "weights (MIT licence, `src/restyle/zoo/MICROAST-LICENSE`).",
        "",
    ]
    lines += [f"- `{e.id}`: {e.attribution}" for e in entries]
    return "\n".join(lines) + "\n"
