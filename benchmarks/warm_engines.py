"""What loading once saves: a warm engine call against one that builds its models first.

Before `Engines`, `restyle.api` built a new `GatysEngine` (a new VGG19 on the device) for every
gatys call, and kept fast and arbitrary stylizers in caches keyed by the whole config, size
included, so a new output size rebuilt the MetaNet and VGG19. This script measures, in one run
and on the same inputs, per call:

- `cold`: what a call paid then: build the engine (VGG19, and the MetaNet for arbitrary), then
  stylize;
- `warm`: what a worker's call pays now: `stylize_tensor(..., engines=holder)` on a holder that
  already served a call (of another size), so nothing is built;
- `build`: the engine construction alone (cold minus warm, measured directly).

Each is the median of `--repeats` calls. Gatys runs `--iterations` steps at each size (small, so
that the build is visible next to the optimisation; a real job's 300 steps dwarf it on a CPU but
not on a GPU, where 300 steps take about 1 s).

    python benchmarks/warm_engines.py --sizes 128 256 --json docs/benchmarks-warm-engines-cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch


def _median_time(call: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--iterations", type=int, default=5, help="gatys steps per call (5)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from restyle.api import stylize_tensor
    from restyle.engines.arbitrary import ArbitraryEngine
    from restyle.engines.gatys import GatysEngine
    from restyle.engines.holder import Engines
    from restyle.examples import example_path
    from restyle.imaging import as_tensor

    photo = as_tensor(example_path("parrots"))
    painting = as_tensor(example_path("starry_night"))
    holder = Engines(device=args.device)
    rows = []
    for method in ("gatys", "arbitrary"):
        options: dict[str, Any] = {"iterations": args.iterations} if method == "gatys" else {}
        # A first call of another size: the holder is warm, as in a worker after its first job.
        stylize_tensor(photo, painting, method=method, engines=holder, size=64, **options)
        for size in args.sizes:

            def warm(size: int = size, method: str = method, options: Any = options) -> None:
                stylize_tensor(photo, painting, method=method, engines=holder, size=size, **options)

            def cold(size: int = size, method: str = method, options: Any = options) -> None:
                fresh = Engines(device=args.device)  # a new VGG19 (and MetaNet), as before
                stylize_tensor(photo, painting, method=method, engines=fresh, size=size, **options)

            engine_class = GatysEngine if method == "gatys" else ArbitraryEngine
            build = _median_time(lambda c=engine_class: c(device=args.device), args.repeats)
            row = {
                "method": method,
                "size": size,
                "warm_s": _median_time(warm, args.repeats),
                "cold_s": _median_time(cold, args.repeats),
                "build_s": build,
            }
            row["cold_over_warm"] = row["cold_s"] / row["warm_s"]
            rows.append(row)
            print(
                f"{method:9s} {size:5d} px: warm {row['warm_s']:.3f} s, cold {row['cold_s']:.3f} s"
                f" ({row['cold_over_warm']:.2f}x), engine build {build:.3f} s",
                flush=True,
            )
    if args.json is not None:
        machine = {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "device": args.device,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        }
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
