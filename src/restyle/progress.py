"""Progress reports for anything slow: one small frozen dataclass, passed to a callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Progress:
    """One progress report.

    `step` counts optimisation steps over all scales (1-based) out of `total` (a training run
    with a time limit projects `total` from its pace, and its last report has `step == total`;
    a video reports frames); `losses` holds the weighted terms of the objective (e.g. content,
    style, tv) and `loss` their sum (a training run with a content target adds the measured
    `content_distance` and the content weight's `content_factor`, not part of the sum).
    `preview` is the current image, (1, 3, H, W) RGB in [0, 1] on the CPU, when previews were
    asked for. `time_limit` is the run's budget in seconds (0: none): a gatys run with one
    projects `total` from its pace too, and its time left is the budget less `elapsed`.
    """

    step: int
    total: int
    loss: float
    elapsed: float
    losses: dict[str, float] = field(default_factory=dict)
    scale: int = 1
    scales: int = 1
    size: tuple[int, int] = (0, 0)
    preview: torch.Tensor | None = None
    time_limit: float = 0.0


ProgressCallback = Callable[[Progress], None]
