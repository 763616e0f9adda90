"""What every command shares: exit codes, the progress bar, names of bundled examples."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restyle.engines.costs import duration
from restyle.errors import (
    DeviceError,
    InvalidImageError,
    InvalidParameterError,
    RestyleError,
    WeightsError,
)
from restyle.examples import example_path

if TYPE_CHECKING:
    from restyle.progress import Progress

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_IMAGE, EXIT_WEIGHTS, EXIT_DEVICE = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130


def exit_code(exc: RestyleError) -> int:
    for kind, code in (
        (InvalidParameterError, EXIT_USAGE),
        (InvalidImageError, EXIT_IMAGE),
        (WeightsError, EXIT_WEIGHTS),
        (DeviceError, EXIT_DEVICE),
    ):
        if isinstance(exc, kind):
            return code
    return EXIT_ERROR


def config_defaults(config_class: type) -> dict[str, Any]:
    fields = dataclasses.fields(config_class)
    return {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}


def parse_layers(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def resolve_image(name: str) -> Path:
    """A path as given, or else a bundled photo or a zoo style's painting by that name."""
    path = Path(name)
    if path.exists():
        return path
    example = example_path(name)
    return example if example is not None else path


class ProgressBar:
    """A tqdm bar on stderr fed by the library's Progress reports.

    With `work_megapixels` (a multi-scale optimisation's total, from the cost model), the time
    left is projected from the pixels stepped so far, not from the step rate: the coarse scales'
    steps are many times cheaper than the final scale's, so tqdm's own projection would promise
    a minute for a quarter-hour run.
    """

    def __init__(
        self, *, disabled: bool, unit: str = "step", work_megapixels: float | None = None
    ) -> None:
        self.disabled = disabled
        self.unit = unit
        self.work = work_megapixels
        self.done = 0.0  # megapixel-steps reported so far
        self.bar: Any = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, progress: Progress) -> None:
        if self.disabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            total = progress.total or None  # a clip that does not declare its length: no ETA
            own = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]"
            # None: tqdm's own layout, with its projection
            layout = own if self.work or progress.time_limit else None
            self.bar = tqdm(
                total=total, unit=self.unit, file=sys.stderr, leave=True, bar_format=layout
            )
        postfix = {"loss": f"{progress.loss:.4g}"} if math.isfinite(progress.loss) else {}
        if progress.scales > 1:
            postfix["scale"] = f"{progress.scale}/{progress.scales}"
        postfix["size"] = "x".join(map(str, progress.size[::-1]))
        left = self.time_left(progress)
        if left is not None:
            postfix["left"] = f"about {duration(left)}"
        self.bar.set_postfix(postfix, refresh=False)
        if progress.total and progress.total != self.bar.total:  # a timed run's projection
            self.bar.total = progress.total
        self.bar.update(progress.step - self.bar.n)

    def time_left(self, progress: Progress) -> float | None:
        """Seconds left by the pixels stepped so far (None without a work total), never more
        than a time limit leaves."""
        by_pixels = self._time_left_by_pixels(progress)
        if not progress.time_limit:
            return by_pixels
        by_clock = max(progress.time_limit - progress.elapsed, 0.0)
        return by_clock if by_pixels is None else min(by_pixels, by_clock)

    def _time_left_by_pixels(self, progress: Progress) -> float | None:
        if not self.work:
            return None
        steps = progress.step - (self.bar.n if self.bar is not None else 0)
        self.done += max(steps, 0) * progress.size[0] * progress.size[1] / 1e6
        if self.done <= 0 or progress.elapsed <= 0:
            return None
        left: float = progress.elapsed * (self.work - self.done) / self.done
        return max(left, 0.0)
