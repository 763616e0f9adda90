"""Measure the engines' cost model: seconds per unit of work as a multiple of the probe.

For each engine and precision, `restyle.stylize_tensor` runs on the bundled parrots photo at
several sizes (one engine holder, models loaded and warmed up first, so load time is not
counted), each run timed next to the probe of `restyle.engines.costs` on the same machine in
the same minute. The run's seconds divided by that probe's seconds, against the engine's work
(`EngineSpec.work`: passes and megapixels), are fitted by least squares:
`fixed + per_pass × passes + per_megapixel × megapixels`. The
fit is written to `src/restyle/engines/cost_model.json` with the machine it ran on; then the
default run of each engine is timed against its estimate as a check (the ratio is printed and
kept in the JSON as `check`).

Gatys is timed at a single scale with a few steps (its work is steps × megapixels whatever the
ladder), in float32 and, where the CPU has native bf16, bfloat16. The feed-forward engines
run a zoo style (fast) and a bundled painting (arbitrary).

    python benchmarks/cost_model.py                      # writes the JSON (about 5 minutes)
    python benchmarks/cost_model.py --quick --out /tmp/cost.json   # smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import machine
from restyle.api import stylize_tensor
from restyle.engines import costs
from restyle.engines.holder import Engines
from restyle.engines.registry import ENGINES
from restyle.examples import example_path
from restyle.imaging import as_tensor

PHOTO = "parrots"
PAINTING = "the_scream"
ZOO_STYLE = "starry-night"


def fresh_probe(device: torch.device, dtype: torch.dtype | None) -> float:
    """The probe, timed now (not the process's cached value): the machine's load moves."""
    costs._probe.cache_clear()
    return costs.probe_seconds(device, dtype)


def timed(run: Any, repeats: int, probe: Any) -> tuple[float, float, float]:
    """(seconds, probe seconds, ratio): medians over `repeats`, each run between two probes,
    so a change of the machine's load between runs moves both sides of the ratio."""
    samples = []
    for _ in range(repeats):
        before = probe()
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        around = (before + probe()) / 2
        samples.append((seconds, around, seconds / around))
    return tuple(statistics.median(s[i] for s in samples) for i in range(3))  # type: ignore[return-value]


def fit(points: list[tuple[costs.Work, float]], *, per_pass: bool) -> dict[str, float]:
    """Least squares: probes = fixed + per_pass × passes + per_megapixel × megapixels, with
    no coefficient below 0 (a negative one is dropped and the rest refitted)."""
    columns = ["fixed", "per_pass", "per_megapixel"] if per_pass else ["fixed", "per_megapixel"]
    while True:
        design = np.array(
            [
                [
                    {"fixed": 1.0, "per_pass": w.passes, "per_megapixel": w.megapixels}[c]
                    for c in columns
                ]
                for w, _ in points
            ]
        )
        target = np.array([y for _, y in points])
        solution, *_ = np.linalg.lstsq(design, target, rcond=None)
        negative = [
            c for c, v in zip(columns, solution, strict=True) if v < 0 and c != "per_megapixel"
        ]
        if not negative:
            break
        columns.remove(negative[0])
    fitted = dict.fromkeys(("fixed", "per_pass", "per_megapixel"), 0.0)
    fitted.update({c: round(float(v), 4) for c, v in zip(columns, solution, strict=True)})
    return fitted


def measure(
    name: str,
    style: Any,
    runs: list[dict[str, Any]],
    options: dict[str, Any],
    precision: str | None,
    engines: Engines,
    repeats: int,
) -> dict[str, Any]:
    spec = ENGINES[name]
    setup = spec.setup(precision=precision) if precision else spec.setup()
    dtype = spec.compute_dtype(setup, engines.device)
    photo = as_tensor(example_path(PHOTO))
    content_hw = (int(photo.shape[-2]), int(photo.shape[-1]))
    stylize_tensor(photo, [style], method=name, engines=engines, size=64, **options)  # warm-up
    points, rows = [], []
    for run in runs:
        run_options = {**options, **run}
        if precision:
            run_options["precision"] = precision
        _, engine_options, _ = spec.split(run_options)
        work = spec.work(engine_options, content_hw)
        seconds, probe, ratio = timed(
            lambda ro=run_options: stylize_tensor(
                photo, [style], method=name, engines=engines, **ro
            ),
            repeats,
            lambda: fresh_probe(engines.device, dtype),
        )
        points.append((work, ratio))
        rows.append(
            {
                **run,
                "passes": work.passes,
                "megapixels": round(work.megapixels, 4),
                "seconds": round(seconds, 3),
                "probe_s": round(probe, 5),
            }
        )
        print(
            f"{name:9s} {precision or 'default':8s} {run}: {work.passes:4.0f} passes, "
            f"{work.megapixels:7.3f} Mpx, {seconds:7.2f} s, probe {probe * 1e3:6.1f} ms, "
            f"{ratio:9.1f} probes",
            flush=True,
        )
    fitted = fit(points, per_pass=spec.work is costs.optimisation_work)
    return {**fitted, "runs": rows, "dtype": str(dtype).removeprefix("torch.")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--out", type=Path, default=costs.COST_MODEL_FILE)
    args = parser.parse_args()
    engines = Engines(device=args.device)
    device = engines.device
    # Gatys: sizes and step counts both vary, so a step's own overhead and its cost per
    # megapixel separate (the default ladder spends a third of its steps at 128 px).
    gatys_runs = [
        {"size": size, "iterations": steps}
        for size in ((96, 160) if args.quick else (128, 256, 384))
        for steps in ((2, 6) if args.quick else (4, 12))
    ]
    forward_runs = [{"size": s} for s in ((256, 512) if args.quick else (512, 1024, 1536))]
    repeats = 1 if args.quick else 3
    # From the photo: the constants price the steps; the work of a feed-forward start is
    # counted in `costs.optimisation_work` as one more evaluation.
    gatys_options = {"scales": 1, "seed": 0, "init": "content"}
    precisions = ["float32"]
    if device.type == "cuda" or machine.describe()["bf16_used_by_auto"]:
        precisions.append("bfloat16")
    painting = as_tensor(example_path(PAINTING))
    result: dict[str, Any] = {
        "machine": machine.describe() if device.type == "cpu" else torch.cuda.get_device_name(),
        "probe": {
            "channels": costs.PROBE_CHANNELS,
            "side": costs.PROBE_SIDE,
            "layers": costs.PROBE_LAYERS,
        },
        "engines": {"gatys": {}, "fast": {}, "arbitrary": {}},
    }
    for precision in precisions:
        result["engines"]["gatys"][precision] = measure(
            "gatys", painting, gatys_runs, gatys_options, precision, engines, repeats
        )
    result["engines"]["fast"]["float32"] = measure(
        "fast", ZOO_STYLE, forward_runs, {}, None, engines, repeats
    )
    result["engines"]["arbitrary"]["float32"] = measure(
        "arbitrary", painting, forward_runs, {}, None, engines, repeats
    )
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    costs.COST_MODEL_FILE = args.out  # the check estimates with what was just measured
    costs._measured.cache_clear()
    check(engines, painting, quick=args.quick, result=result)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


def check(engines: Engines, painting: torch.Tensor, *, quick: bool, result: dict[str, Any]) -> None:
    """Each engine's default run (gatys at a size that keeps this short) against its estimate."""
    photo = as_tensor(example_path(PHOTO))
    content_hw = (int(photo.shape[-2]), int(photo.shape[-1]))
    cases = [
        ("gatys", painting, {"size": 128 if quick else 256, "iterations": 20 if quick else 60}),
        ("fast", ZOO_STYLE, {}),
        ("arbitrary", painting, {"size": 1024}),
    ]
    checks = []
    for name, style, options in cases:
        spec = ENGINES[name]
        _, engine_options, _ = spec.split(options)
        costs._probe.cache_clear()
        estimate = spec.estimate(engine_options, content_hw, engines.device)
        assert estimate is not None, f"{name}: measured above"
        expected = estimate.seconds
        start = time.perf_counter()
        stylize_tensor(photo, [style], method=name, engines=engines, **options)
        seconds = time.perf_counter() - start
        print(
            f"check {name:9s} {options}: expected {expected:6.1f} s, took {seconds:6.1f} s "
            f"(ratio {seconds / expected:.2f})",
            flush=True,
        )
        checks.append(
            {
                "engine": name,
                "options": options,
                "expected_s": round(expected, 2),
                "seconds": round(seconds, 2),
            }
        )
    result["check"] = checks


if __name__ == "__main__":
    main()
