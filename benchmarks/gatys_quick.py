"""Best quality in a minute: the gatys engine's default against the arbitrary pass and against
Gatys from the photo, on unseen photos and paintings.

What runs, per (photo, painting) pair and per `--sizes` (each photo resized once to the size's
long side, so every method gets the same pixels; models loaded by an untimed warm-up):
- `arbitrary`: `stylize_tensor(..., method="arbitrary")`, the one-pass result;
- `default`: `method="gatys"` with its defaults (the feed-forward start refined at the output
  size with relative losses); `--checkpoints` scores its image after those steps too (from the
  run's previews, `iterations` raised to the largest), so one run gives the whole curve;
- `w=X` (`--weights`): the same with `style_weight=X`, for choosing the default weight;
- `photo-300` on the first `--baseline-pairs` pairs: Gatys from the photo as before this
  change (`init=content`, absolute losses, style weight 10, 300 final-scale steps on the
  coarse-to-fine ladder);
- `photo`: the photo itself, the distance every method starts from.

Scores: `restyle.metrics.StyleMetrics` (content distance at relu4_2, style distance over
relu1_1..relu5_1, both relative). Wall time: seconds of each call (checkpoints: the run's own
elapsed time at that step, which counts its start and targets). Targets (issue 30): the default
at 512 px within 60 s on a 2-core CPU, median style distance at most 0.8x the arbitrary pass's
at a content distance no higher than its, and no painting left behind (worst style distance at
most 1.5x the median).

Paintings: the two of ../shared/data/eval/styles and the first `--held-out` public-domain
paintings of the MetaNet's held-out split (`peer_arbitrary.held_out_paintings`).

    python benchmarks/gatys_quick.py --json docs/gatys-quick-cpu.json \\
        --sheet docs/images/gatys-quick.jpg
    python benchmarks/gatys_quick.py --sizes 384 --photos 3 --weights 3 10 30 \\
        --checkpoints 5 10 20 30 --no-default --json sweep.json      # the weight sweep
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "data" / "eval"
sys.path.insert(0, str(ROOT / "model-zoo"))

BASELINE = {"init": "content", "loss_scale": "absolute", "style_weight": 10.0, "iterations": 300}
"""Gatys from the photo, the engine's defaults before this benchmark's change."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[384, 512])
    parser.add_argument("--photos", type=int, default=4, help="first N eval photos (spread)")
    parser.add_argument("--held-out", type=int, default=2, help="held-out paintings")
    parser.add_argument("--weights", type=float, nargs="*", default=[])
    parser.add_argument("--checkpoints", type=int, nargs="*", default=[])
    parser.add_argument("--no-default", action="store_true", help="skip the default runs")
    parser.add_argument("--baseline-pairs", type=int, default=0)
    parser.add_argument("--baseline-sizes", type=int, nargs="*", default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--sheet", type=Path, default=None, help="contact sheet (largest size)")
    args = parser.parse_args()

    import machine
    from peer_arbitrary import held_out_paintings
    from restyle.api import stylize_tensor
    from restyle.engines.gatys_config import DEFAULT_STEPS, GatysOptions
    from restyle.engines.holder import Engines
    from restyle.imaging import as_tensor, resize_tensor_to_long_side
    from restyle.metrics import StyleMetrics

    all_photos = sorted((EVAL / "photos").glob("*.jpg"))
    step = max(1, len(all_photos) // max(args.photos, 1))
    photos = all_photos[::step][: args.photos]  # spread over Kodak and scikit-image
    paintings = [*sorted((EVAL / "styles").glob("*.jpg")), *held_out_paintings(args.held_out)]
    engines, metrics = Engines(device="cpu"), StyleMetrics()
    load_before = machine.describe()["loadavg_1_5_15"]
    warm = resize_tensor_to_long_side(as_tensor(photos[0]), 96)
    for method in ("arbitrary", "gatys"):  # untimed: loads every network once
        stylize_tensor(warm, as_tensor(paintings[0]), method=method, engines=engines, size=96)

    default_weight = GatysOptions().style_weight
    variants: list[tuple[str, dict[str, Any]]] = []
    if not args.no_default:
        variants.append(("default", {}))
    variants += [(f"w={w:g}", {"style_weight": w}) for w in args.weights]
    rows: list[dict[str, Any]] = []
    tiles: dict[tuple[str, str], dict[str, Image.Image]] = {}
    baseline_sizes = args.baseline_sizes if args.baseline_sizes is not None else args.sizes

    def record(size: int, photo_name: str, painting_name: str, method: str, **values: Any) -> None:
        rows.append(
            {"size": size, "photo": photo_name, "painting": painting_name, "method": method}
            | values
        )
        print(
            f"{size} {painting_name} {photo_name} {method}: content {values['content']:.3f} "
            f"style {values['style']:.3f} ({values['seconds']:.1f} s)",
            flush=True,
        )

    pair_index = 0
    for painting_path in paintings:
        painting = as_tensor(painting_path)
        for photo_path in photos:
            for size in args.sizes:
                photo = resize_tensor_to_long_side(as_tensor(photo_path), size)
                photo = (photo * 255).round() / 255
                key = (photo_path.stem, painting_path.stem)
                cell = tiles.setdefault(key, {}) if size == max(args.sizes) else {}
                cell["photo"], cell["painting"] = _image(photo), _image(painting)

                run = functools.partial(_run, stylize_tensor, photo, painting, engines, size)
                score = functools.partial(_score, metrics, photo, painting)
                names = (size, photo_path.stem, painting_path.stem)
                record(*names, "photo", **score(photo), seconds=0.0)
                out, seconds = run(method="arbitrary")
                record(*names, "arbitrary", **score(out), seconds=seconds)
                cell["arbitrary"] = _image(out)
                for label, extra in variants:
                    curve = _curve(run, extra, args.checkpoints, DEFAULT_STEPS)
                    for steps, (image, at) in sorted(curve.items(), key=lambda kv: kv[0] or 0):
                        if steps is None:
                            continue
                        record(*names, f"{label}@{steps}", **score(image), seconds=at)
                    out, seconds = curve[None]
                    weight = extra.get("style_weight", default_weight)
                    record(*names, label, **score(out), seconds=seconds, style_weight=weight)
                    cell[label] = _image(out)
                if pair_index < args.baseline_pairs and size in baseline_sizes:
                    out, seconds = run(method="gatys", seed=0, **BASELINE)
                    record(*names, "photo-300", **score(out), seconds=seconds)
                    cell["photo-300"] = _image(out)
            pair_index += 1

    summary = summarise(rows)
    report = {
        "machine": machine.describe() | {"loadavg_before": load_before},
        "config": {k: v if not isinstance(v, Path) else str(v) for k, v in vars(args).items()},
        "photos": [p.name for p in photos],
        "paintings": [p.name for p in paintings],
        "baseline": BASELINE,
        "summary": summary,
        "rows": rows,
    }
    print(markdown(summary))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.sheet is not None:
        columns = ["photo", "painting", "arbitrary", *(v for v, _ in variants), "photo-300"]
        sheet(tiles, columns, args.sheet)
    return 0


def _run(
    stylize: Callable[..., torch.Tensor],
    photo: torch.Tensor,
    painting: torch.Tensor,
    engines: Any,
    size: int,
    **options: Any,
) -> tuple[torch.Tensor, float]:
    began = time.perf_counter()
    out = stylize(photo, painting, engines=engines, size=size, **options)
    return out, time.perf_counter() - began


def _score(
    metrics: Any, photo: torch.Tensor, painting: torch.Tensor, image: torch.Tensor
) -> dict[str, float]:
    d = metrics.distances(image, photo, painting)
    return {"content": d.content, "style": d.style}


def _curve(
    run: Callable[..., tuple[torch.Tensor, float]],
    extra: dict[str, Any],
    checkpoints: list[int],
    default_steps: int,
) -> dict[int | None, tuple[torch.Tensor, float]]:
    """One gatys run with `extra`: the final image (key None) and, at each checkpoint, the
    image after that many steps and the run's elapsed seconds then."""
    seen: dict[int | None, tuple[torch.Tensor, float]] = {}
    if not checkpoints:
        seen[None] = run(method="gatys", seed=0, **extra)
        return seen
    wanted = set(checkpoints)

    def keep(progress: Any) -> None:
        if progress.step in wanted and progress.preview is not None:
            seen[progress.step] = (progress.preview, progress.elapsed)

    options = {"iterations": max(checkpoints), "preview_every": 1} | extra
    last = run(method="gatys", seed=0, progress=keep, **options)
    steps = extra.get("iterations", default_steps)
    if steps in seen:  # the variant's own step count was a checkpoint
        seen[None] = seen[steps]
    elif steps == max(checkpoints):
        seen[None] = last
    else:
        seen[None] = run(method="gatys", seed=0, **extra)
    return seen


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per size and method: medians, worst style, per-painting medians; and the targets."""
    summary: dict[str, Any] = {}
    for size in sorted({r["size"] for r in rows}):
        at_size = [r for r in rows if r["size"] == size]
        methods: dict[str, Any] = {}
        for method in dict.fromkeys(r["method"] for r in at_size):
            mine = [r for r in at_size if r["method"] == method]
            per_painting = {
                painting: statistics.median(r["style"] for r in mine if r["painting"] == painting)
                for painting in dict.fromkeys(r["painting"] for r in mine)
            }
            methods[method] = {
                "pairs": len(mine),
                "content": statistics.median(r["content"] for r in mine),
                "style": statistics.median(r["style"] for r in mine),
                "style_worst": max(r["style"] for r in mine),
                "style_by_painting": per_painting,
                "seconds": statistics.median(r["seconds"] for r in mine),
                "seconds_worst": max(r["seconds"] for r in mine),
            }
        entry: dict[str, Any] = {"methods": methods}
        if "default" in methods and "arbitrary" in methods:
            new, old = methods["default"], methods["arbitrary"]
            entry["targets"] = {
                "style_vs_arbitrary": new["style"] / old["style"],
                "style_at_most_0.8x_arbitrary": new["style"] <= 0.8 * old["style"],
                "content_at_most_arbitrary": new["content"] <= old["content"],
                "worst_over_median": new["style_worst"] / new["style"],
                "worst_at_most_1.5x_median": new["style_worst"] <= 1.5 * new["style"],
                "within_60_s": new["seconds_worst"] <= 60.0,
            }
        summary[str(size)] = entry
    return summary


def markdown(summary: dict[str, Any]) -> str:
    lines = []
    for size, entry in summary.items():
        lines += [
            f"\n{size} px\n",
            "| method | pairs | content (median) | style (median) | style (worst) | "
            "seconds (median / worst) |",
            "|---|---|---|---|---|---|",
        ]
        for method, m in entry["methods"].items():
            lines.append(
                f"| {method} | {m['pairs']} | {m['content']:.3f} | {m['style']:.3f} | "
                f"{m['style_worst']:.3f} | {m['seconds']:.1f} / {m['seconds_worst']:.1f} |"
            )
        if "targets" in entry:
            lines.append("\ntargets: " + json.dumps(entry["targets"]))
    return "\n".join(lines)


def _image(tensor: torch.Tensor) -> Image.Image:
    from restyle.imaging import tensor_to_image

    return tensor_to_image(tensor.detach().float().cpu().clamp(0, 1))


def sheet(
    tiles: dict[tuple[str, str], dict[str, Image.Image]], columns: list[str], path: Path
) -> None:
    """Rows photo × painting; columns as named (a missing one left blank)."""
    columns = [c for c in columns if any(c in cell for cell in tiles.values())]
    side, header = 256, 22
    sheet_image = Image.new("RGB", (side * len(columns), header + side * len(tiles)), "white")
    draw = ImageDraw.Draw(sheet_image)
    for column, name in enumerate(columns):
        draw.text((column * side + 6, 5), name, fill="black")
    for row, ((photo, painting), cell) in enumerate(tiles.items()):
        for column, name in enumerate(columns):
            if name not in cell:
                continue
            thumb = cell[name].copy()
            thumb.thumbnail((side, side))
            sheet_image.paste(thumb, (column * side, header + row * side))
        draw.text((4, header + row * side + side - 14), f"{photo} / {painting}", fill="white")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet_image.save(path, quality=88)


if __name__ == "__main__":
    raise SystemExit(main())
