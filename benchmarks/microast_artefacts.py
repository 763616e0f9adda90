"""Where MicroAST's hairlines come from, and what a change of its decoder does to them.

    python benchmarks/microast_artefacts.py --trace
    python benchmarks/microast_artefacts.py --models src/restyle/zoo/microast.safetensors \\
        zoo-runs/microast-degrid/microast.safetensors --json docs/microast-artefacts-cpu.json

`--trace` runs one photo through one painting's network layer by layer and prints, for each
output of the decoder's head, how far the energy at the frequency of a 4-pixel period stands out
from its neighbourhood of the spectrum, along columns and along rows (1: not at all). The
pattern is born where the number jumps.

`--models` scores each MicroAST checkpoint (the arbitrary engine's `model` setup) on the same
photos and paintings: content and style distance and the artefact measures of
`restyle.metrics` (streaks, grid), at each `--sizes` (medians; streaks and grid also the
worst). With `--filter` a third row per model adds the grid notch filter
(`restyle.models.grid_filter`) after the network, for comparison.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

import torch

from machine import describe
from restyle import zoo
from restyle.engines.arbitrary import ArbitraryEngine
from restyle.engines.arbitrary_config import ArbitrarySetup
from restyle.imaging import as_tensor, resize_tensor_to_long_side
from restyle.metrics import StyleMetrics, grid_energy, streak_ratio
from restyle.models.grid_filter import GridFilter
from restyle.models.transform_net import pad_to_multiple

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "data" / "eval"
PHOTOS = ["kodim04", "kodim13", "kodim23", "kodim05", "kodim15", "kodim21"]


def paintings(only: list[str] | None = None) -> dict[str, Path]:
    """The ten zoo paintings (their shipped thumbnails) and the two held-out eval paintings,
    or those of them named in `only`."""
    found = {e.id: e.painting_path for e in zoo.entries()}
    found.update({p.stem: p for p in sorted((EVAL / "styles").glob("*.jpg"))})
    return {k: v for k, v in found.items() if not only or k in only}


def peak(power: torch.Tensor, where: float) -> float:
    """Power at the normalised frequency `where` (1: Nyquist) over the median of its neighbours."""
    i = round(where * (power.shape[0] - 1))
    around = torch.cat([power[max(0, i - 6) : max(0, i - 1)], power[i + 2 : i + 7]])
    return float(power[i] / around.median().clamp_min(1e-20))


def trace(style: str, photo: str, size: int) -> list[dict[str, Any]]:
    """The period-4 peak along columns and rows after each layer of the decoder's head."""
    engine = ArbitraryEngine()
    _, net = engine.network(as_tensor(zoo.find(style).painting_path))  # type: ignore[union-attr]
    image = resize_tensor_to_long_side(as_tensor(EVAL / "photos" / f"{photo}.jpg"), size)
    rows = []
    with torch.no_grad():
        _, x = net.encoder(pad_to_multiple(image, 4))
        x = net.block2(net.norm1(net.block1(net.norm2(x))))
        for index, layer in enumerate(net.head):
            x = layer(x)
            flat = x[0].double() - x[0].double().mean(dim=(1, 2), keepdim=True)
            along_columns = torch.fft.rfft(flat, dim=2).abs().square().mean((0, 1))
            along_rows = torch.fft.rfft(flat, dim=1).abs().square().mean((0, 2))
            # A 4-px period of the output is Nyquist at half resolution, half of it at full.
            where = 1.0 if x.shape[-1] < image.shape[-1] else 0.5
            rows.append(
                {
                    "layer": f"head[{index}] {type(layer).__name__}",
                    "resolution": "1/2" if where == 1.0 else "1",
                    "columns": peak(along_columns, where),
                    "rows": peak(along_rows, where),
                }
            )
    return rows


def score(
    model: str,
    photos: list[str],
    sizes: list[int],
    filtered: bool,
    metrics: StyleMetrics,
    only: list[str] | None,
) -> dict[str, Any]:
    engine = ArbitraryEngine(ArbitrarySetup(model=model))
    notch = GridFilter()
    results: dict[str, Any] = {}
    for size in sizes:
        rows = []
        for name, path in paintings(only).items():
            art = as_tensor(path)
            runner = engine.stylizer([art])
            for photo_name in photos:
                photo = resize_tensor_to_long_side(
                    as_tensor(EVAL / "photos" / f"{photo_name}.jpg"), size
                )
                out = runner.stylize(photo)
                out = (notch(out) if filtered else out).clamp(0, 1)
                d = metrics.distances(out, photo, art)
                rows.append(
                    {"painting": name, "photo": photo_name, "content": d.content,
                     "style": d.style, "streaks": streak_ratio(out), "grid": grid_energy(out)}
                )  # fmt: skip
        results[str(size)] = {
            "content": statistics.median(r["content"] for r in rows),
            "style": statistics.median(r["style"] for r in rows),
            "streaks": statistics.median(r["streaks"] for r in rows),
            "streaks_worst": max(r["streaks"] for r in rows),
            "grid": statistics.median(r["grid"] for r in rows),
            "grid_worst": max(r["grid"] for r in rows),
            "rows": rows,
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", action="store_true", help="layer by layer, one photo")
    parser.add_argument("--trace-style", default="the-scream")
    parser.add_argument("--trace-photo", default="kodim23")
    parser.add_argument("--models", nargs="*", default=[], help="MicroAST checkpoints to score")
    parser.add_argument("--photos", nargs="+", default=PHOTOS)
    parser.add_argument("--sizes", nargs="+", type=int, default=[512])
    parser.add_argument("--paintings", nargs="+", help="these paintings only (ids or stems)")
    parser.add_argument("--filter", action="store_true", help="also score with the notch after")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": describe()}
    if args.trace:
        report["trace"] = trace(args.trace_style, args.trace_photo, 512)
        for row in report["trace"]:
            print(
                f"{row['layer']:<18} {row['resolution']:>3}  period-4 peak: columns "
                f"{row['columns']:6.2f}  rows {row['rows']:6.2f}"
            )
    metrics = StyleMetrics() if args.models else None
    report["models"] = {}
    for model in args.models:
        for filtered in (False, True) if args.filter else (False,):
            assert metrics is not None
            key = model + (" + notch" if filtered else "")
            report["models"][key] = found = score(
                model, args.photos, args.sizes, filtered, metrics, args.paintings
            )
            for size, s in found.items():
                print(
                    f"{key} @{size}: content {s['content']:.3f} style {s['style']:.3f} "
                    f"streaks {s['streaks']:.2f} (worst {s['streaks_worst']:.2f}) grid "
                    f"{s['grid']:.4f} (worst {s['grid_worst']:.3f})"
                )
    report["loadavg_after"] = describe()["loadavg_1_5_15"]
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", "utf-8")


if __name__ == "__main__":
    main()
