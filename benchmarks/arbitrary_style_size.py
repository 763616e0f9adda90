"""The arbitrary engine's painting analysis size (`style_size`): a sweep, and the size it suggests.

The engine reads a painting at a short side of `MICROAST_STYLE_SIZE` (512 px) unless
`ArbitraryOptions.style_size` says otherwise; smaller gives larger strokes. For each analysis
size in `--sizes` and each result size in `--result-sizes` (the photo's long side), every
(photo, painting) pair is stylized with `ArbitraryEngine().run(photo, [painting],
ArbitraryOptions(style_size=S))` (one engine, the network it ships, built once) and scored:

- `restyle.metrics.StyleMetrics().distances(result, photo, painting)`: VGG19 content distance
  (relu4_2, 0 = the photo untouched) and style distance (Gram matrices relu1_1..relu5_1, the
  painting resized to the result's area; 0 = the painting's statistics);
- `restyle.metrics.artefacts(result)`: streaks (fine colour stripes; a photo scores 1.0-1.1),
  grid and seams, always on the result at full resolution.

Paintings: the two of ../shared/data/eval/styles (never trained on by any Restyle network) and
the ten of the model zoo (each entry's `painting_path`). Photos: `--photos` from
../shared/data/eval/photos (500 px squares: results at 1024 px are upscaled photos).

What the default run leaves out, to stay near 15 minutes on a 2-core CPU (VGG19 up to relu5_1
costs about 3.4 s at 512x512 and 14 s at 1024x1024 there, next to a training job; the run of
docs/arbitrary-style-size-cpu.json took 21 minutes at a load average of 4 to 8):
- pairs: each painting meets `--pairs-per-painting` photos (default 1), taken in turn from
  `--photos`, so the 12 paintings spread over the 6 photos (each photo twice); every size
  stylizes the same pairs, so sizes compare pair by pair (0: every photo with every painting);
- scoring size: results longer than `--score-size` px (default 512) are scored downscaled to it,
  the photo alike (the painting is resized by the metric to the same area): strokes keep their
  size relative to the picture, finer detail is not scored. `--score-size 0` scores at the
  result's own size (about 4x the time at 1024 px).
The photo's and the painting's VGG19 features are computed once per pair (they do not change
with the analysis size): `StyleMetrics.vgg` is wrapped by a small cache keyed by the input's
pixels, so the numbers are `distances()`'s own; the first score is checked against an uncached
call and the difference recorded.

Reported per (result size, analysis size): medians of content, style, streaks, grid and seams;
the style distance relative to the default's (ratio of medians) and the median of the per-pair
changes. Recommended per result size: the analysis size with the lowest median style distance
whose median content distance is at most 5% above the default's and whose median streaks are at
most the default's + 0.05.

    python benchmarks/arbitrary_style_size.py --json docs/arbitrary-style-size-cpu.json
    python benchmarks/arbitrary_style_size.py --sizes 384 512 --result-sizes 384 \\
        --photos kodim04 --paintings 2                                    # smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

import restyle
from machine import describe
from restyle import zoo
from restyle.engines.arbitrary import MICROAST_STYLE_SIZE, ArbitraryEngine
from restyle.engines.arbitrary_config import ArbitraryOptions
from restyle.imaging import as_tensor, resize_tensor_to_long_side
from restyle.metrics import StyleMetrics, artefacts

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "data" / "eval"
EVAL_PHOTOS = ["kodim04", "kodim13", "kodim23", "kodim05", "kodim15", "kodim21"]
SIZES = [256, 320, 384, 448, 512, 640]
RESULT_SIZES = [512, 1024]
DEFAULT = MICROAST_STYLE_SIZE  # the analysis size every other is compared with
CONTENT_SLACK = 0.05  # a recommended size's median content distance: at most 5% above default's
STREAK_SLACK = 0.05  # its median streaks: at most the default's + 0.05
MEASURES = ("content", "style", "streaks", "grid", "seams")


class CachedFeatures:
    """`StyleMetrics.vgg` with its last few outputs kept, keyed by the input's pixels.

    `distances(result, photo, painting)` runs VGG19 on all three; within a pair only the result
    changes, so the photo's and painting's features come from here. Three entries suffice in the
    order `distances` calls them (result, photo, painting): a new result evicts the last one.
    """

    def __init__(self, vgg: Callable[[torch.Tensor], dict[str, torch.Tensor]], keep: int = 3):
        self.vgg = vgg
        self.keep = keep
        self.bypass = False
        self.hits = 0
        self.misses = 0
        self._kept: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.bypass:
            return self.vgg(x)
        digest = hashlib.sha256(f"{tuple(x.shape)} {x.dtype}".encode())
        digest.update(x.detach().contiguous().cpu().numpy().tobytes())
        key = digest.hexdigest()
        if key in self._kept:
            self.hits += 1
            self._kept.move_to_end(key)
            return self._kept[key]
        self.misses += 1
        out = self.vgg(x)
        self._kept[key] = out
        while len(self._kept) > self.keep:
            self._kept.popitem(last=False)
        return out

    @contextmanager
    def uncached(self) -> Iterator[None]:
        self.bypass = True
        try:
            yield
        finally:
            self.bypass = False


def load_paintings(count: int) -> dict[str, dict[str, Any]]:
    """The eval paintings, then the zoo's, by key: path, group, pixels."""
    found = [(p.stem, p, "eval") for p in sorted((EVAL / "styles").glob("*.jpg"))]
    if not count or count > len(found):
        found += [(e.id, e.painting_path, "zoo") for e in zoo.entries()]
    if count:
        found = found[:count]
    return {
        key: {"path": path, "group": group, "tensor": as_tensor(path)} for key, path, group in found
    }


def pairs_of(paintings: list[str], photos: list[str], per_painting: int) -> list[tuple[str, str]]:
    """(painting, photo) pairs: each painting with `per_painting` photos in turn (0: all)."""
    if per_painting <= 0 or per_painting >= len(photos):
        return [(p, q) for p in paintings for q in photos]
    return [
        (p, photos[(i * per_painting + j) % len(photos)])
        for i, p in enumerate(paintings)
        for j in range(per_painting)
    ]


def summarise(rows: list[dict[str, Any]], sizes: list[int], result_sizes: list[int]) -> dict:
    """Medians per (result size, analysis size), the changes against the default, and the pick."""
    summary: dict[str, Any] = {}
    for r in result_sizes:
        mine = [row for row in rows if row["result_size"] == r]
        default = {
            (row["painting"], row["photo"]): row["style"]
            for row in mine
            if row["style_size"] == DEFAULT
        }
        by_size: dict[str, dict[str, Any]] = {}
        for s in sizes:
            cell = [row for row in mine if row["style_size"] == s]
            if not cell:
                continue
            entry: dict[str, Any] = {"n": len(cell)}
            for measure in MEASURES:
                entry[measure] = statistics.median(row[measure] for row in cell)
            entry["seconds"] = statistics.median(row["seconds"] for row in cell)
            changes = [
                row["style"] / default[row["painting"], row["photo"]] - 1
                for row in cell
                if (row["painting"], row["photo"]) in default
            ]
            entry["paired_style_change"] = statistics.median(changes) if changes else None
            entry["pairs_lower_style"] = sum(c < 0 for c in changes)
            by_size[str(s)] = entry
        base = by_size[str(DEFAULT)]
        for entry in by_size.values():
            entry["style_vs_default"] = entry["style"] / base["style"] - 1
            entry["eligible"] = (
                entry["content"] <= base["content"] * (1 + CONTENT_SLACK)
                and entry["streaks"] <= base["streaks"] + STREAK_SLACK
            )
        best = min(
            (s for s, e in by_size.items() if e["eligible"]), key=lambda s: by_size[s]["style"]
        )
        photo_streaks = {row["photo"]: row["photo_streaks"] for row in mine}
        summary[str(r)] = {
            "by_style_size": by_size,
            "photo_streaks_median": statistics.median(photo_streaks.values()),
            "recommended": int(best),
            "recommended_style_vs_default": by_size[best]["style_vs_default"],
        }
    return summary


def markdown(summary: dict[str, Any]) -> str:
    out = []
    for r, block in summary.items():
        out += [
            f"Results at {r} px (photo's streaks, median: {block['photo_streaks_median']:.2f})",
            "",
            "| analysis size | pairs | content | style | style vs 512 | paired change "
            "| pairs lower | streaks | grid | seams |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s, e in block["by_style_size"].items():
            mark = " (default)" if int(s) == DEFAULT else ""
            mark += " **recommended**" if int(s) == block["recommended"] else ""
            mark += "" if e["eligible"] else " (fails a limit)"
            change = e["paired_style_change"]
            out.append(
                f"| {s}{mark} | {e['n']} | {e['content']:.3f} | {e['style']:.3f} | "
                f"{e['style_vs_default']:+.1%} | "
                f"{'–' if change is None else f'{change:+.1%}'} | "
                f"{e['pairs_lower_style']}/{e['n']} | {e['streaks']:.3f} | {e['grid']:.3f} | "
                f"{e['seams']:.2f} |"
            )
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", nargs="+", default=EVAL_PHOTOS, help="eval photo names")
    parser.add_argument("--paintings", type=int, default=0, help="the first N paintings (0: all)")
    parser.add_argument("--sizes", nargs="+", type=int, default=SIZES, help="analysis sizes")
    parser.add_argument(
        "--result-sizes", nargs="+", type=int, default=RESULT_SIZES, help="results' long side"
    )
    parser.add_argument(
        "--pairs-per-painting",
        type=int,
        default=1,
        help="photos per painting, taken in turn (0: every photo with every painting)",
    )
    parser.add_argument(
        "--score-size",
        type=int,
        default=512,
        help="results longer than this are scored downscaled to it (0: at their own size)",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sizes = sorted(set(args.sizes) | {DEFAULT})

    began = time.perf_counter()
    machine = describe()
    engine = ArbitraryEngine()
    metrics = StyleMetrics()
    features = CachedFeatures(metrics.vgg)
    metrics.vgg = features  # type: ignore[assignment]
    paintings = load_paintings(args.paintings)
    originals = {n: as_tensor(EVAL / "photos" / f"{n}.jpg") for n in args.photos}
    pairs = pairs_of(list(paintings), args.photos, args.pairs_per_painting)
    print(
        f"{len(pairs)} pairs x {len(sizes)} analysis sizes x {len(args.result_sizes)} result "
        f"sizes; network {engine.setup.network} sha256 {engine.model_sha256[:12]}",
        flush=True,
    )

    rows: list[dict[str, Any]] = []
    check: dict[str, Any] | None = None
    for key, photo_name in pairs:  # pairs grouped by painting: its networks stay cached
        painting = paintings[key]["tensor"]
        for r in args.result_sizes:
            photo = resize_tensor_to_long_side(originals[photo_name], r)
            scored_at = r if not args.score_size else min(r, args.score_size)
            photo_scored = resize_tensor_to_long_side(originals[photo_name], scored_at)
            photo_streaks = artefacts(photo).streaks
            for s in sizes:
                start = time.perf_counter()
                result = engine.run(photo, [painting], ArbitraryOptions(style_size=s))
                seconds = time.perf_counter() - start
                scored = result if scored_at == r else resize_tensor_to_long_side(result, scored_at)
                d = metrics.distances(scored, photo_scored, painting)
                if check is None:
                    with features.uncached():
                        plain = metrics.distances(scored, photo_scored, painting)
                    check = {
                        "content_difference": abs(plain.content - d.content),
                        "style_difference": abs(plain.style - d.style),
                    }
                found = artefacts(result)
                rows.append(
                    {
                        "painting": key,
                        "photo": photo_name,
                        "result_size": r,
                        "scored_at": scored_at,
                        "style_size": s,
                        "content": d.content,
                        "style": d.style,
                        **found.as_dict(),
                        "photo_streaks": photo_streaks,
                        "seconds": seconds,
                    }
                )
                print(
                    f"{key} {photo_name} {r} px, analysed at {s}: content {d.content:.3f} "
                    f"style {d.style:.3f} streaks {found.streaks:.3f} "
                    f"({time.perf_counter() - began:.0f} s)",
                    flush=True,
                )

    summary = summarise(rows, sizes, args.result_sizes)
    elapsed = time.perf_counter() - began
    table = markdown(summary)
    print(table)
    for r, block in summary.items():
        best = block["recommended"]
        print(
            f"Recommended analysis size for {r} px results: {best}"
            + (" (the current default)" if best == DEFAULT else "")
            + f", style distance {block['recommended_style_vs_default']:+.1%} against {DEFAULT}"
        )
    record = {
        "settings": {
            "photos": args.photos,
            "paintings": {
                k: {"group": p["group"], "file": p["path"].name} for k, p in paintings.items()
            },
            "pairs": [list(p) for p in pairs],
            "pairs_per_painting": args.pairs_per_painting,
            "sizes": sizes,
            "result_sizes": args.result_sizes,
            "score_size": args.score_size,
            "default_style_size": DEFAULT,
            "limits": {"content_relative": CONTENT_SLACK, "streaks_absolute": STREAK_SLACK},
        },
        "restyle": {"version": restyle.__version__, "package": str(Path(restyle.__file__).parent)},
        "network": {
            "network": engine.setup.network,
            "model_sha256": engine.model_sha256,
            "runtime": engine.setup.runtime,
            "info": engine.info,
        },
        "machine": machine,
        "loadavg_1_5_15_before": machine["loadavg_1_5_15"],
        "loadavg_1_5_15_after": list(os.getloadavg()),
        "seconds": elapsed,
        "feature_cache": {"hits": features.hits, "misses": features.misses, "check": check},
        "summary": summary,
        "table": table,
        "rows": rows,
    }
    print(f"{elapsed / 60:.1f} min")
    if args.json is not None:
        args.json.write_text(json.dumps(record, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
