"""Where one gatys step spends its time: torch.profiler over a few eager steps.

Prints the top operators by device (or CPU) time and the device time per step, to tell
launch-bound from compute-bound. Usage:

    python benchmarks/profile_gatys_step.py --size 512 --steps 20
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from restyle.api import as_tensor
from restyle.devices import resolve_device
from restyle.engines.gatys import GatysEngine
from restyle.engines.gatys_config import GatysConfig
from restyle.examples import example_path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    content = as_tensor(example_path("parrots"))
    style = as_tensor(example_path("starry_night"))
    config = GatysConfig(
        size=args.size,
        scales=1,
        iterations=args.steps,
        cuda_graphs=False,
        precision=args.precision,
        report_every=args.steps,
    )
    engine = GatysEngine(config, device=device)
    engine.run(content, [style])  # warm-up
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        engine.run(content, [style])
        if device.type == "cuda":
            torch.cuda.synchronize()
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=25))
    if device.type == "cuda":
        events = prof.key_averages()
        device_us = sum(e.self_device_time_total for e in events)
        print(f"device time per step: {device_us / args.steps / 1000:.3f} ms")


if __name__ == "__main__":
    main()
