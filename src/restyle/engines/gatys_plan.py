"""The gatys engine's coarse-to-fine ladder: each scale's size, steps and L-BFGS history.

Gatys et al. 2017 ("Controlling Perceptual Factors"): optimise a small image first, upsample
the result and refine it at the next scale. Planning needs no PyTorch, so the cost model
(`engines.costs`) reads a run's work from the same plan the engine runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from restyle.engines.gatys_config import MAX_ITERATIONS, MAX_SIZE, GatysOptions
from restyle.errors import InvalidImageError, InvalidParameterError

_BYTES_PER_FLOAT = 4
_MAX_AUTO_SCALES = 6
MIN_SIDE = 16  # VGG19 halves a side four times before relu5_1: a shorter one pools to nothing


@dataclass(frozen=True)
class ScalePlan:
    """One rung of the coarse-to-fine ladder."""

    size: tuple[int, int]  # (H, W)
    iterations: int
    """Steps planned; an open-ended rung runs on while its run's time limit allows."""
    lbfgs_history: int
    open_ended: bool = False


def plan_scales(content_hw: tuple[int, int], config: GatysOptions) -> list[ScalePlan]:
    """Sizes, iterations and L-BFGS history per scale, smallest first.

    The final scale's long side is `config.size`; each earlier one is `scale_factor` smaller,
    down to `min_scale_size`; a run that starts from a picture has one scale unless `scales`
    says otherwise. Coarse scales get `coarse_iterations` steps (half of the final scale's
    unless set), the final one `iterations` (`DEFAULT_STEPS` unless set; open-ended under a
    time limit without a step count).
    """
    h, w = content_hw
    long_side = max(h, w)
    final = config.size if config.size is not None else long_side
    if final > MAX_SIZE:
        raise InvalidParameterError(
            f"size: the output's long side would be {final} px, over the limit of {MAX_SIZE}"
        )
    if config.scales is not None:
        n = config.scales
    elif config.starts_from_image:
        n = 1
    else:
        ratio = final / config.min_scale_size
        n = 1 + max(0, math.floor(math.log(ratio) / math.log(config.scale_factor) + 1e-9))
        n = min(n, _MAX_AUTO_SCALES)
    plans = []
    for index in range(n):
        side = final / config.scale_factor ** (n - 1 - index)
        hw = (max(1, round(h * side / long_side)), max(1, round(w * side / long_side)))
        last = index == n - 1
        iterations = config.final_steps if last else config.coarse_steps
        if iterations == 0 and not last:
            continue
        numel = 3 * hw[0] * hw[1]
        fits = config.history_bytes // (2 * numel * _BYTES_PER_FLOAT)
        history = max(1, min(config.lbfgs_history, int(fits)))
        plans.append(
            ScalePlan(
                size=hw,
                iterations=iterations,
                lbfgs_history=history,
                open_ended=last and config.open_ended,
            )
        )
    total = sum(p.iterations for p in plans)
    if total > MAX_ITERATIONS:
        raise InvalidParameterError(
            f"iterations: {len(plans)} scales would run {total} steps, over the limit of "
            f"{MAX_ITERATIONS} steps per request"
        )
    return plans


def within_reach(plans: list[ScalePlan]) -> list[ScalePlan]:
    """`plans` without the coarse scales whose short side VGG19 cannot take (a thin photo's);
    a final scale that short is an `InvalidImageError`."""
    height, width = plans[-1].size
    if min(height, width) < MIN_SIDE:
        raise InvalidImageError(
            f"photo: too thin for the gatys engine at this size: it comes out {width}x{height} "
            f"px, a side under the {MIN_SIDE} px its VGG19 takes; ask for a larger size, or use "
            "the fast or arbitrary engine"
        )
    return [p for p in plans[:-1] if min(p.size) >= MIN_SIDE] + plans[-1:]


def open_ended_steps(plans: list[ScalePlan]) -> int:
    """The most steps an open-ended final scale may take: what the per-request cap leaves."""
    return MAX_ITERATIONS - sum(p.iterations for p in plans[:-1])
