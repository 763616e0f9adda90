"""Where one gatys step spends its time: torch.profiler over a few eager steps.

Prints the top operators by device (or CPU) time and the device time per step, to tell
launch-bound from compute-bound. Usage:

    python benchmarks/profile_gatys_step.py --size 512 --steps 20
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from restyle.devices import resolve_device
from restyle.engines.gatys import GatysEngine
from restyle.engines.gatys_config import GatysOptions, GatysSetup
from restyle.examples import example_path
from restyle.imaging import as_tensor


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
    options = GatysOptions(size=args.size, scales=1, iterations=args.steps, report_every=args.steps)
    setup = GatysSetup(precision=args.precision, cuda_graphs=False)
    engine = GatysEngine(setup, device=device)
    engine.run(content, [style], options)  # warm-up
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        engine.run(content, [style], options)
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
