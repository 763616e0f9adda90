"""What every command shares: exit codes, the progress bar, names of bundled examples."""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

from restyle.errors import (
    DeviceError,
    InvalidImageError,
    InvalidParameterError,
    RestyleError,
    WeightsError,
)
from restyle.examples import example_path

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
    """A path as given, or a bundled example's path when no such file exists."""
    path = Path(name)
    if path.exists():
        return path
    example = example_path(name)
    return example if example is not None else path


class ProgressBar:
    """A tqdm bar on stderr fed by the library's Progress reports."""

    def __init__(self, *, disabled: bool, unit: str = "step") -> None:
        self.disabled = disabled
        self.unit = unit
        self.bar: Any = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, progress: Any) -> None:
        if self.disabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            total = progress.total or None  # a clip that does not declare its length: no ETA
            self.bar = tqdm(total=total, unit=self.unit, file=sys.stderr, leave=True)
        postfix = {"loss": f"{progress.loss:.4g}"} if math.isfinite(progress.loss) else {}
        if progress.scales > 1:
            postfix["scale"] = f"{progress.scale}/{progress.scales}"
        postfix["size"] = "x".join(map(str, progress.size[::-1]))
        self.bar.set_postfix(postfix, refresh=False)
        if progress.total and progress.total != self.bar.total:  # a timed run's projection
            self.bar.total = progress.total
        self.bar.update(progress.step - self.bar.n)
