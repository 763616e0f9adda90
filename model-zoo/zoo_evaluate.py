"""`build.py evaluate`: score every style's networks, decide which ship, write docs/model-zoo.md.

For fixed evaluation photos (never trained on), each style is rendered with the arbitrary
network's pass (its 'arbitrary' variant: MicroAST with the painting's recorded signals) and,
where the registry has one, its refined network, at two sizes (512 px, and 1024 px where
artefacts show first), and with Gatys (one photo, 256 px: Gatys is slow on a CPU). Each result
gets the VGG19 content and style distances and the artefact measures of `restyle.metrics`
(streaks, grid, seams, judged against the photo's own). Results go to docs/model-zoo.json, one
sheet per style to docs/images/zoo/ID.jpg (painting; per photo: photo / arbitrary / network /
Gatys; then 1:1 crops of 1024 px results where the decoder's hairlines showed), and the rule
to docs/model-zoo.md.

A refined network earns its place when, over the photos at 512 px, its median style distance
is at least 10% below the arbitrary pass's at no larger median content distance, and no result
at 512 or 1024 px raises an artefact flag. `--gate` removes the refined networks that do not
(weights and registry entry): those styles are served by the arbitrary variant, which needs no
file and no training. Gatys results are cached under zoo-runs/eval/.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from typing import Any

from evaluation import eval_photos, gatys_result, gatys_settings, sheet
from PIL import Image
from recipes import ROOT, load_recipes

DOCS = ROOT / "docs"
SHEETS = DOCS / "images" / "zoo"
STYLE_GAIN_TARGET = 0.10  # style distance at least this much below the arbitrary pass's
SIZES = (512, 1024)  # artefacts (stripes, grids) show at print-like sizes first
CROP_PHOTO = "kodim23"  # the parrot's beak and the green behind: where the hairlines showed
CROP_AT = (300, 500)  # top, left of the 1:1 crop in the 1024 px result
CELL = 224


def add_evaluate_parser(commands: Any) -> None:
    evaluate = commands.add_parser("evaluate", help="arbitrary vs network vs Gatys, docs")
    evaluate.add_argument(
        "--photos", nargs="+", default=["kodim04", "kodim13", "kodim23"], metavar="NAME"
    )
    evaluate.add_argument("--gatys-photo", default="kodim04", metavar="NAME")
    evaluate.add_argument("--gatys-size", type=int, default=256)
    evaluate.add_argument("--gatys-iterations", type=int, default=100)
    evaluate.add_argument("--gatys-coarse-iterations", type=int, default=50)
    evaluate.add_argument(
        "--no-gatys",
        dest="gatys",
        action="store_false",
        help="skip Gatys (its scores from the last run that had them are kept)",
    )
    evaluate.add_argument("--only", nargs="+", metavar="ID", help="these styles only")
    evaluate.add_argument(
        "--gate", action="store_true", help="remove the refined networks that do not earn a place"
    )
    evaluate.set_defaults(run=run_evaluate)


def score_runner(
    runner: Any, photos: dict[int, dict[str, Any]], painting: Any, metrics: Any
) -> dict[str, Any]:
    """A network's results on every photo and size: distances, artefacts and their flags.

    Artefacts are measured on each result as it is; the VGG19 distances of results larger than
    the first size on that size (result and photo downscaled), which keeps strokes at their size
    relative to the picture and costs a quarter (VGG19 at 1024 px takes seconds on a CPU)."""
    from restyle.imaging import resize_tensor_to_long_side
    from restyle.metrics import artefacts

    scored_at = min(photos)
    rows, images = [], {}
    for size, named in photos.items():
        for name, photo in named.items():
            out = runner.stylize(photo).clamp(0, 1)
            images[(size, name)] = out
            if size > scored_at:
                d = metrics.distances(
                    resize_tensor_to_long_side(out, scored_at), photos[scored_at][name], painting
                )
            else:
                d = metrics.distances(out, photo, painting)
            found = artefacts(out)
            flags = found.flags(photo=artefacts(photo))
            rows.append(
                {"photo": name, "size": size, "content": d.content, "style": d.style,
                 **found.as_dict(), "flags": flags}
            )  # fmt: skip
    summary = {}
    for size in photos:
        at = [r for r in rows if r["size"] == size]
        summary[str(size)] = {
            **{k: statistics.median(r[k] for r in at) for k in ("content", "style")},
            **{k: max(r[k] for r in at) for k in ("streaks", "grid", "seams")},
        }
    return {
        "rows": rows,
        "summary": summary,
        "flags": sorted({f"{r['photo']} {r['size']} px: {f}" for r in rows for f in r["flags"]}),
        "images": images,
    }


def earns_place(network: dict[str, Any], arbitrary: dict[str, Any]) -> tuple[bool, float]:
    """The rule: ≥10% lower median style at 512 px, no larger content, no artefact flag."""
    n, a = network["summary"]["512"], arbitrary["summary"]["512"]
    gain = 1 - n["style"] / a["style"]
    return gain >= STYLE_GAIN_TARGET and n["content"] <= a["content"] and not network["flags"], gain


def run_evaluate(args: argparse.Namespace) -> int:
    import torch

    from restyle import zoo
    from restyle.engines.fast import FastStylizer
    from restyle.imaging import as_tensor
    from restyle.metrics import StyleMetrics

    torch.manual_seed(0)
    recipes = load_recipes()
    styles = [recipes.style(i) for i in args.only] if args.only else recipes.styles
    photos = {size: eval_photos(args.photos, size) for size in SIZES}
    gatys_photo = eval_photos([args.gatys_photo], args.gatys_size)[args.gatys_photo]
    gatys_options, cache = gatys_settings(
        args.gatys_size, args.gatys_coarse_iterations, args.gatys_iterations
    )
    metrics = StyleMetrics()
    previous = _previous_results()
    results: dict[str, Any] = {}
    dropped: list[str] = []
    SHEETS.mkdir(parents=True, exist_ok=True)
    for style in styles:
        entry = zoo.find(style.id)
        if entry is None or "arbitrary" not in entry.variants:
            print(f"{style.id}: no arbitrary variant (build.py signals), skipped", file=sys.stderr)
            continue
        painting = as_tensor(recipes.painting_path(style))
        runners = {"arbitrary": FastStylizer(f"{style.id}:arbitrary")}
        if "refined" in entry.variants:
            runners["refined"] = FastStylizer(f"{style.id}:refined")
        scored = {k: score_runner(r, photos, painting, metrics) for k, r in runners.items()}
        record: dict[str, Any] = {
            k: {key: v[key] for key in ("summary", "flags", "rows")} for k, v in scored.items()
        }
        shipped = "arbitrary"
        if "refined" in scored:
            earned, gain = earns_place(scored["refined"], scored["arbitrary"])
            refined = entry.variants["refined"]
            record["refined"].update(
                style_gain=gain,
                earns_place=earned,
                command=refined.training.get("command"),
                training_seconds=refined.training.get("seconds"),
            )
            if earned:
                shipped = "refined"
            elif args.gate:
                dropped.append(style.id)
        record["shipped"] = shipped
        if args.gatys:
            cached = cache / style.id / f"{args.gatys_photo}.png"
            gatys = gatys_result(cached, gatys_photo, recipes.painting_path(style), gatys_options)
            g = metrics.distances(gatys, gatys_photo, painting)
            record["gatys"] = {"photo": args.gatys_photo, "content": g.content, "style": g.style}
        else:
            gatys = None
            record["gatys"] = previous.get(style.id, {}).get("gatys")
        _sheet(style.id, entry, scored, photos, gatys, args.gatys_photo)
        results[style.id] = record
        print(_line(style.id, record), file=sys.stderr)
    if dropped:
        _drop_refined(dropped)
    results = {**previous, **results}
    settings = {
        "photos": args.photos,
        "sizes": list(SIZES),
        "crop": {"photo": CROP_PHOTO, "size": SIZES[-1], "top_left": list(CROP_AT)},
        "gatys": {"photo": args.gatys_photo, "size": args.gatys_size, **gatys_options},
        "machine": _machine(),
    }
    DOCS.joinpath("model-zoo.json").write_text(
        json.dumps({"settings": settings, "styles": results}, indent=1) + "\n", "utf-8"
    )
    ids = [s.id for s in recipes.styles if s.id in results]
    DOCS.joinpath("model-zoo.md").write_text(_markdown(ids, settings, results), "utf-8")
    print("wrote docs/model-zoo.md, docs/model-zoo.json and docs/images/zoo/", file=sys.stderr)
    return 0


def _line(style_id: str, record: dict[str, Any]) -> str:
    a = record["arbitrary"]["summary"]["512"]
    text = f"{style_id}: arbitrary style {a['style']:.3f} content {a['content']:.2f}"
    if "refined" in record:
        r = record["refined"]
        n = r["summary"]["512"]
        text += (
            f"; refined style {n['style']:.3f} ({-r['style_gain']:+.0%}) content "
            f"{n['content']:.2f}, flags {len(r['flags'])}: ships {record['shipped']}"
        )
    return text


def _sheet(
    style_id: str,
    entry: Any,
    scored: dict[str, Any],
    photos: dict[int, dict[str, Any]],
    gatys: Any,
    gatys_photo: str,
) -> None:
    """Painting; per photo at 512 px the photo and each network (and Gatys); 1:1 crops at 1024."""
    small, large = SIZES
    rows: list[list[Any]] = [[_painting(entry.painting_path)]]
    for name, photo in photos[small].items():
        row = [photo, *(s["images"][(small, name)] for s in scored.values())]
        rows.append([*row, gatys] if gatys is not None and name == gatys_photo else row)
    top, left = CROP_AT
    if CROP_PHOTO in photos[large]:
        crops = [
            image[..., top : top + CELL, left : left + CELL]
            for image in (
                photos[large][CROP_PHOTO],
                *(s["images"][(large, CROP_PHOTO)] for s in scored.values()),
            )
        ]
        rows.append(crops)
    labels = ["photo (last: 1:1 crop at 1024 px)", *scored, "gatys"]
    sheet(rows, labels, CELL).save(SHEETS / f"{style_id}.jpg", quality=85)


def _drop_refined(style_ids: list[str]) -> None:
    """Remove refined networks that did not earn their place: the file and the registry entry."""
    from zoo_package import REGISTRY, ZOO_DIR

    registry = json.loads(REGISTRY.read_text("utf-8"))
    for entry in registry["styles"]:
        if entry["id"] in style_ids:
            record = entry["variants"].pop("refined", None)
            if record is not None:
                (ZOO_DIR / record["file"]).unlink(missing_ok=True)
                print(f"{entry['id']}: refined network removed", file=sys.stderr)
    REGISTRY.write_text(json.dumps(registry, indent=1, ensure_ascii=False) + "\n", "utf-8")


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
    refined = [i for i in ids if results[i]["shipped"] == "refined"]
    small, large = settings["sizes"]
    lines = [
        "# The model zoo",
        "",
        "<!-- Written by `python model-zoo/build.py evaluate`: edit that script instead -->",
        "",
        f"Restyle ships {len(entries)} styles, each a painting in the public domain. `restyle "
        "styles` lists them; `restyle stylize --style ID photo.jpg -o out.jpg` uses one (the "
        "fast engine), as do the service, the web app and the live camera.",
        "",
        "Every style can run the **arbitrary network's pass**: MicroAST (`docs/arbitrary.md`) "
        "with the painting's style signals, computed once by `python model-zoo/build.py "
        "signals` and written into `registry.json` (512 numbers; no file, nothing to train, "
        "the same result as `--method arbitrary` with the painting). A style ships its own "
        "**refined network** (that pass fine-tuned for the painting by `restyle train fast "
        "--init arbitrary`) only where the network earns its place: over the evaluation photos "
        f"at {small} px, a median style distance at least {STYLE_GAIN_TARGET:.0%} below the "
        "arbitrary pass's at no larger median content distance, and no artefact flag "
        f"(`restyle.metrics`: streaks, grid, seams, judged against the photo's own) at {small} "
        f"or {large} px. `build.py evaluate --gate` applies the rule. "
        f"Refined networks shipped: {len(refined)} of {len(ids)}"
        + (f" ({', '.join(f'`{i}`' for i in refined)})." if refined else "."),
        "",
        "## Scores",
        "",
        f"Photos {', '.join(settings['photos'])} (Kodak, never trained on); medians over the "
        f"photos, streaks the largest; {large} px results are scored by VGG19 downscaled to "
        f"{small} px and their artefacts measured at full size. Distances are "
        "`restyle.metrics` (VGG19; content at relu4_2, style over relu1_1..relu5_1, both "
        "relative: 0 is the photo's content or the painting's texture); streaks: column "
        "against row energy of the red-green chroma's "
        "second differences (a photo 1.0-1.1; limit 1.25). Gatys: the same painting on "
        f"{gatys['photo']} at {gatys['size']} px, {gatys['coarse_iterations']} + "
        f"{gatys['iterations']} L-BFGS steps, default weights (one photo: Gatys is slow on a "
        f"CPU). Machine: {settings['machine']}.",
        "",
        f"| style | ships | arbitrary content | arbitrary style | arbitrary streaks {small} / "
        f"{large} | refined content | refined style | style vs arbitrary | refined streaks "
        f"{small} / {large} | refined flags | Gatys content | Gatys style |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i in ids:
        r = results[i]
        a = r["arbitrary"]["summary"]
        row = (
            f"| `{i}` | {r['shipped']} | {a[str(small)]['content']:.2f} | "
            f"{a[str(small)]['style']:.3f} | {a[str(small)]['streaks']:.2f} / "
            f"{a[str(large)]['streaks']:.2f} |"
        )
        if "refined" in r:
            n = r["refined"]["summary"]
            row += (
                f" {n[str(small)]['content']:.2f} | {n[str(small)]['style']:.3f} | "
                f"{-r['refined']['style_gain']:+.0%} | {n[str(small)]['streaks']:.2f} / "
                f"{n[str(large)]['streaks']:.2f} | {len(r['refined']['flags']) or 'none'} |"
            )
        else:
            row += " – | – | – | – | – |"
        g = r.get("gatys")
        row += f" {g['content']:.2f} | {g['style']:.3f} |" if g else " – | – |"
        lines.append(row)
    lines += ["", "## Sheets", ""]
    lines += [
        f"Per style: the painting; per photo at {small} px the photo, the arbitrary pass, the "
        f"refined network (where one was evaluated) and (on {gatys['photo']}) Gatys; last row, "
        f"1:1 crops of {settings['crop']['photo']} at {large} px, where the decoder's hairlines "
        "showed (docs/artefacts.md).",
        "",
    ]
    for i in ids:
        picture = f"![{i}: painting, arbitrary pass, network](images/zoo/{i}.jpg)"
        lines += [f"### `{i}`", "", picture, ""]
    lines += [
        "## Styles and commands",
        "",
        "| id | painting | runs | how it was made |",
        "|---|---|---|---|",
    ]
    for e in entries:
        v = e.default_variant
        year = f", {e.year}" if e.year else ""
        lines.append(
            f"| `{e.id}` | {e.title} ({e.artist}{year}) | {v.summary} | `{v.training['command']}` |"
        )
    lines += [
        "",
        "## Reproducing the zoo",
        "",
        "Every refined checkpoint records its exact command, seed and the sha256 of its "
        "training data (`restyle styles --json`, under `variants.*.training`). From the "
        "repository root with `../shared/data` beside it:",
        "",
        "```",
        "python model-zoo/build.py signals                          # every style's signals",
        "python model-zoo/build.py train --profile refine-cpu      # minutes per style, 2-core CPU",
        "python model-zoo/build.py package --profile refine-cpu",
        "python model-zoo/build.py evaluate --gate",
        "```",
        "",
        "Refinement on a CPU with native bfloat16 (AVX512-BF16 or AMX: AMD Zen 4, Intel "
        "Sapphire Rapids) runs VGG19 in bf16 autocast and the network in channels-last memory; "
        "elsewhere in float32, about twice as long.",
        "",
        "`model-zoo/train_gpu.sh` runs the GPU profiles (longer refinement, the `standard` "
        "networks from scratch) in calls of under ten minutes each when a GPU is available; "
        "`python model-zoo/pack_runs.py` packs their runs into the few files such a machine "
        "hands back, and `unpack` checks every sha256 before `build.py package`.",
        "",
        "## Licences",
        "",
        "The paintings are in the public domain; the networks are MicroAST's published weights "
        "(MIT licence, `src/restyle/zoo/MICROAST-LICENSE`), with its decoder's last stage "
        "fine-tuned by Restyle (docs/artefacts.md).",
        "",
    ]
    lines += [f"- `{e.id}`: {e.attribution}" for e in entries]
    return "\n".join(lines) + "\n"
