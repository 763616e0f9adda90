"""What loading once saves: the same one-line library calls, timed call by call.

Before `Engines`, every gatys call built a new `GatysEngine` (a new VGG19 on the device), and
fast and arbitrary stylizers were kept in caches keyed by the whole config, size included, so a
third output size rebuilt the MetaNet and VGG19 and redid the painting's style pass. Now the
engines are built once per process (or per `Engines` holder) and serve every size.

This script only uses the public front door (`restyle.stylize_tensor` with PIL images), so the
same file measures any version of Restyle: run it once against the current tree and once with
`PYTHONPATH` pointing at an older checkout's `src/`, on the same machine, and compare.

For each method it cycles the output size through `--sizes` (as a service's requests do) for
`--rounds` rounds after one untimed warm-up call, and reports the median and the mean per call.
Gatys runs `--iterations` steps (few, so that per-call overheads show next to the
optimisation).

    python benchmarks/warm_engines.py --label after --json after.json
    PYTHONPATH=../old/src python benchmarks/warm_engines.py --label before --json before.json
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
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 192, 256])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=5, help="gatys steps per call (5)")
    parser.add_argument("--label", default="")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import restyle
    from restyle.examples import example_path

    photo = Image.open(example_path("parrots")).convert("RGB")
    painting = Image.open(example_path("starry_night")).convert("RGB")
    results: dict[str, Any] = {}
    for method in ("gatys", "arbitrary"):
        options: dict[str, Any] = {}
        if method == "gatys":  # coarse steps given: older versions defaulted them to 150
            options = {"iterations": args.iterations, "coarse_iterations": args.iterations}
        restyle.stylize_tensor(photo, painting, method=method, size=64, device="cpu", **options)
        times = []
        for _ in range(args.rounds):
            for size in args.sizes:
                start = time.perf_counter()
                restyle.stylize_tensor(
                    photo, painting, method=method, size=size, device="cpu", **options
                )
                times.append(time.perf_counter() - start)
        results[method] = {
            "median_s": statistics.median(times),
            "mean_s": statistics.fmean(times),
            "calls": len(times),
        }
        print(
            f"{args.label or restyle.__file__}: {method:9s} median {statistics.median(times):.3f}"
            f" s, mean {statistics.fmean(times):.3f} s per call ({len(times)} calls)",
            flush=True,
        )
    if args.json is not None:
        machine = {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        }
        config = {k: v for k, v in vars(args).items() if k != "json"}
        args.json.write_text(
            json.dumps({"machine": machine, "config": config, "results": results}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
