"""Hold a network's content distance near a target by adapting the content weight.

A fixed content weight suits one painting and not the next: with the same weight one painting's
refined network keeps the photo while taking little of the painting, another's dissolves the
photo (docs/fast.md). The controller multiplies the content weight by a factor that rises while
the training batches' content distance is above the target and falls while it is below, so
each painting takes as much style as that much change of the photo allows.

The distance of a batch of four random crops is noisy (one photo's may be twice another's), so
the controller follows its moving average, and the factor moves a little each step (a slowly
adapted multiplier: a hard bound switching on and off under Adam undid the style).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# How far the moving average looks back (steps, about 1 / (1 - SMOOTHING)).
SMOOTHING = 0.9
# Change of log(factor) per step per unit of relative error: at 10% over the target the factor
# grows 3% a step, so it can double within the first minutes of a CPU refinement.
RATE = 0.3
# The most log(factor) moves in one step (about 10%), however far off the distance is: the
# network answers a new weight over several steps, and a jump would overshoot.
MAX_STEP = 0.1
# The factor's range: a hundredfold either way is far past any weight that was useful.
LOWEST, HIGHEST = 0.01, 100.0


@dataclass
class ContentControl:
    """The content weight's factor for a target content distance; its state resumes.

    With `warmup` steps and no target, the mean distance of those first steps becomes the
    target (the factor stays 1 meanwhile): the starting network's distance is held.
    """

    target: float
    factor: float = 1.0
    average: float | None = None  # moving average of the batches' content distance
    warmup: int = 0
    seen: int = 0

    def update(self, distance: float) -> None:
        """Take one step's batch distance into account (after its loss used `factor`)."""
        if not math.isfinite(distance):
            return
        if self.seen < self.warmup:
            # The plain mean of the first steps, which becomes the target after the last.
            self.seen += 1
            previous = 0.0 if self.average is None else self.average
            self.average = previous + (distance - previous) / self.seen
            if self.seen == self.warmup:
                self.target = self.average
            return
        self.average = (
            distance
            if self.average is None
            else SMOOTHING * self.average + (1 - SMOOTHING) * distance
        )
        step = min(MAX_STEP, max(-MAX_STEP, RATE * (self.average / self.target - 1)))
        self.factor = min(HIGHEST, max(LOWEST, self.factor * math.exp(step)))

    def state(self) -> dict[str, Any]:
        return {"factor": self.factor, "average": self.average, "target": self.target,
                "seen": self.seen}  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        factor, average = state.get("factor"), state.get("average")
        target, seen = state.get("target"), state.get("seen")
        if self.warmup and isinstance(target, int | float) and isinstance(seen, int):
            self.target, self.seen = float(target), min(seen, self.warmup)
        if isinstance(factor, int | float) and LOWEST <= factor <= HIGHEST:
            self.factor = float(factor)
        if isinstance(average, int | float) and math.isfinite(average):
            self.average = float(average)
