"""Expected run times: a cost model per engine, measured once, scaled to this machine.

An engine's time is proportional to its *work*: gatys counts VGG19 forward+backward passes
and their megapixels over its coarse-to-fine ladder, the feed-forward engines the megapixels
of their one forward pass. What one unit of work costs was measured by `benchmarks/cost_model.py`
as a multiple of a *probe* (a few VGG19-like 3x3 convolutions) timed in the same run on the
same machine; the result lives in `cost_model.json` beside this module, with the machine it
was measured on. Here the probe runs once per device and precision (about 0.1 s on
a CPU), so an estimate follows this machine's cores, vector units, bf16 support and present
load without a table of CPUs. A ratio measured on one machine carries to another within a
factor of about 1.5 (docs/cost-model.md); the progress bar's own projection takes over once
a run has started.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported when something is timed, not when the registry is read
    import torch

COST_MODEL_FILE = Path(__file__).with_name("cost_model.json")

PROBE_CHANNELS = 64
PROBE_SIDE = 96
PROBE_LAYERS = 2
PROBE_REPEATS = 7
PROBE_WARMUPS = 3
"""Untimed calls first: the first pays for kernel selection and allocation, and the next few of a
fresh process still run about 1.3x slow (caches, clocks), which made a cold CLI's estimates
swing by half around auto's one-minute line."""


@dataclass(frozen=True)
class Estimate:
    """How long an engine is expected to take for one image on one device."""

    engine: str
    seconds: float
    device: str
    """The device in words, e.g. "CPU with 2 threads"."""
    work: Work
    """What the time was estimated from (the progress bar projects a run's rest from it)."""

    def __str__(self) -> str:
        return f"about {duration(self.seconds)} on this {self.device}"


def duration(seconds: float) -> str:
    """A rounded duration in words: '4 s', '40 s', '3 min', '1 h 10 min'."""
    if seconds < 1:
        return "1 s"
    if seconds < 10:
        return f"{seconds:.0f} s"
    if seconds < 90:
        return f"{round(seconds, -1):.0f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours, rest = divmod(round(minutes), 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


# Work per engine -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Work:
    """What a run's time is proportional to: passes through the network (each with its own
    overhead) and megapixels summed over those passes."""

    passes: float
    megapixels: float
    time_limit: float = 0.0
    """Seconds the run stops at whatever it has done (0: none)."""
    open_ended: bool = False
    """Runs until the time limit (its passes are only the plan's)."""


def optimisation_work(options: Any, content_hw: tuple[int, int]) -> Work:
    """Gatys: each scale's steps (+1 first evaluation), and those times its megapixels; a
    feed-forward start counts as one more evaluation at the final size (a MicroAST pass costs
    about one VGG19 forward and backward at the same size on a CPU). A time limit caps the
    estimate (`Work.time_limit`)."""
    from restyle.engines.gatys_plan import plan_scales

    plans = plan_scales(content_hw, options)
    evaluations = [(p.iterations + 1, p.size) for p in plans]
    if options.init == "feed_forward":
        evaluations.append((1, plans[-1].size))
    return Work(
        passes=sum(n for n, _ in evaluations),
        megapixels=sum(n * h * w / 1e6 for n, (h, w) in evaluations),
        time_limit=options.time_limit_s,
        open_ended=plans[-1].open_ended,
    )


def feed_forward_work(options: Any, content_hw: tuple[int, int]) -> Work:
    """Fast and arbitrary: one pass over the output's megapixels (`size` 0: the photo's)."""
    h, w = content_hw
    size = getattr(options, "size", 0) or max(h, w)
    scale = size / max(h, w)
    return Work(passes=1, megapixels=h * w * scale * scale / 1e6)


WorkOf = Callable[[Any, tuple[int, int]], Work]


def optimisation_dtype(setup: Any, device: torch.device) -> torch.dtype | None:
    """Gatys computes VGG19 under autocast: bfloat16 on CUDA and on CPUs with native bf16."""
    from restyle.devices import autocast_dtype

    return autocast_dtype(getattr(setup, "precision", "auto"), device)


def feed_forward_dtype(setup: Any, device: torch.device) -> torch.dtype | None:
    """The feed-forward networks run float16 on CUDA (precision auto), float32 on the CPU."""
    import torch

    precision = getattr(setup, "precision", "auto")  # an engine may not declare one
    if device.type == "cuda" and precision in ("auto", "float16"):
        return torch.float16
    return torch.bfloat16 if precision == "bfloat16" else None


Precision = Callable[[Any, "torch.device"], "torch.dtype | None"]


# The measured constants ------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineCost:
    """seconds = probe seconds × (fixed + per_pass × passes + per_megapixel × megapixels),
    measured per engine and precision."""

    fixed: float
    per_pass: float
    per_megapixel: float

    def probes(self, work: Work) -> float:
        return self.fixed + self.per_pass * work.passes + self.per_megapixel * work.megapixels


@functools.cache
def _measured() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(COST_MODEL_FILE.read_text())
    return data


def engine_cost(engine: str, precision: str) -> EngineCost | None:
    """The measured constants of `engine` computing in `precision` ("float32", "bfloat16");
    None for an engine not measured yet (a new one: run benchmarks/cost_model.py)."""
    costs = _measured()["engines"].get(engine)
    if costs is None:
        return None
    record = costs.get(precision) or costs["float32"]
    return EngineCost(
        fixed=float(record["fixed"]),
        per_pass=float(record["per_pass"]),
        per_megapixel=float(record["per_megapixel"]),
    )


# The probe ---------------------------------------------------------------------------------------


def probe_seconds(device: torch.device, dtype: torch.dtype | None = None) -> float:
    """Seconds the probe takes now on `device`, computing in `dtype` (None: float32)."""
    return _probe(str(device), str(dtype).removeprefix("torch.") if dtype else "float32")


@functools.cache
def _probe(device_name: str, precision: str) -> float:
    import torch

    device = torch.device(device_name)
    generator = torch.Generator().manual_seed(0)
    shape = (1, PROBE_CHANNELS, PROBE_SIDE, PROBE_SIDE)
    x = torch.rand(shape, generator=generator).to(device).requires_grad_()
    kernels = [
        (torch.randn(PROBE_CHANNELS, PROBE_CHANNELS, 3, 3, generator=generator) * 0.05).to(device)
        for _ in range(PROBE_LAYERS)
    ]
    dtype = getattr(torch, precision) if precision != "float32" else None

    def once() -> float:
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            y = x
            for kernel in kernels:
                y = torch.relu(torch.nn.functional.conv2d(y, kernel, padding=1))
            loss = y.float().square().mean()
        loss.backward()  # type: ignore[no-untyped-call]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    for _ in range(PROBE_WARMUPS):
        once()
    return statistics.median(once() for _ in range(PROBE_REPEATS))


def device_words(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} GPU"
    threads = torch.get_num_threads()
    return f"CPU with {threads} thread{'s' if threads != 1 else ''}"


def estimate(
    engine: str,
    work: Work,
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> Estimate | None:
    """Expected seconds for `work` of `engine` on `device` computing in `dtype` (None: the
    engine's cost was never measured)."""
    precision = str(dtype).removeprefix("torch.") if dtype else "float32"
    cost = engine_cost(engine, precision)
    if cost is None:
        return None
    probes = cost.probes(work)
    seconds = probe_seconds(device, dtype) * probes
    if not math.isfinite(seconds):  # a probe that could not be timed: say nothing useful
        seconds = 0.0
    if work.time_limit:
        seconds = work.time_limit if work.open_ended else min(seconds, work.time_limit)
    return Estimate(engine=engine, seconds=seconds, device=device_words(device), work=work)


def reference_machine() -> str:
    """The machine the constants were measured on, in words (for docs and messages)."""
    return str(_measured().get("machine", "unknown"))
