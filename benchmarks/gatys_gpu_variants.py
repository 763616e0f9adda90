"""Warm gatys timings on one device under a few switches, side by side in one process.

Times `iterations` steps at one scale (no coarse-to-fine) after a warm-up run, for
CUDA graphs, precision, cudnn.benchmark and L-BFGS history. Usage:

    python benchmarks/gatys_gpu_variants.py --size 512 --iterations 500
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from restyle.devices import resolve_device
from restyle.engines.gatys_config import GatysOptions, GatysSetup
from restyle.engines.holder import Engines
from restyle.examples import example_path
from restyle.imaging import as_tensor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    engines = Engines(device=device)  # one VGG19 for every variant
    content = as_tensor(example_path("parrots"))
    style = as_tensor(example_path("starry_night"))
    print("cuda_graphs precision cudnn_benchmark history seconds final_loss")
    variants = [
        *itertools.product((False, True), ("float32", "bfloat16"), (False,), (50,)),
        (True, "bfloat16", True, 50),
        (True, "bfloat16", False, 20),
        (True, "bfloat16", False, 100),
    ]
    for graphs, precision, bench, history in variants:
        torch.backends.cudnn.benchmark = bench
        options = GatysOptions(
            size=args.size,
            scales=1,
            iterations=args.iterations,
            lbfgs_history=history,
            seed=0,
            report_every=args.iterations,
        )
        engine = engines.get("gatys", GatysSetup(precision=precision, cuda_graphs=graphs))
        losses: list = []
        engine.run(content, [style], options)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        engine.run(content, [style], options, callback=losses.append)
        elapsed = time.perf_counter() - start
        print(
            f"{graphs} {precision} {bench} {history} {elapsed:.3f} {losses[-1].loss:.4g}",
            flush=True,
        )


if __name__ == "__main__":
    main()
