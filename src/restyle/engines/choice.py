"""`method="auto"`: which engine a request runs, and why, in words a user can read.

- Every style a trained network (a zoo style's name or a .safetensors file): `fast`, unless an
  option only the painting engines take was given (a zoo style's name is also its painting).
- Otherwise the painting engines. `gatys` (the highest quality) where the cost model expects it
  to finish within `QUICK_SECONDS` on this device (a GPU, a small size), else `arbitrary` (any
  painting in one pass), saying what gatys would cost. A user who asks for gatys gets it:
  `--method gatys`, or an option only gatys takes (`--iterations 50` means gatys).
- A video's frames never go to gatys by default (minutes per frame on a CPU).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restyle import zoo
from restyle.engines.costs import Estimate
from restyle.engines.registry import ENGINES, EngineSpec

if TYPE_CHECKING:
    import torch

QUICK_SECONDS = 60.0
"""Auto runs gatys on a painting only where it is expected within this (painterly in a minute)."""

DEFAULT_CONTENT_HW = (512, 512)
"""The photo's size assumed when the caller does not know it yet."""


@dataclass(frozen=True)
class EngineChoice:
    """The engine `auto` chose, why (one sentence), and its expected time where known."""

    method: str
    reason: str
    estimate: Estimate | None = None


def is_trained_style(style: Any) -> bool:
    """A zoo style's name (any spelling, ':variant' allowed) or a trained network's file."""
    if isinstance(style, os.PathLike):
        style = os.fspath(style)
    if not isinstance(style, str):
        return False
    if style.endswith(".safetensors"):
        return True
    return not Path(style).exists() and zoo.find(zoo.split_spec(style)[0]) is not None


def choose_engine(
    styles: Sequence[Any],
    *,
    options: Mapping[str, Any] | None = None,
    content_hw: tuple[int, int] | None = None,
    device: torch.device | None = None,
    video: bool = False,
) -> EngineChoice:
    """The engine `auto` runs for `styles` with `options` on `device` (see the module doc)."""
    options = dict(options or {})
    if styles and all(is_trained_style(s) for s in styles) and ENGINES["fast"].accepts(options):
        names = ", ".join(repr(str(s)) for s in styles)
        kind = "is a trained style" if len(styles) == 1 else "are trained styles"
        return EngineChoice("fast", f"{names} {kind}: one pass of a network")
    gatys, arbitrary = ENGINES["gatys"], ENGINES["arbitrary"]
    can_arbitrary = arbitrary.installed() and arbitrary.accepts(options)
    if video and can_arbitrary:
        return EngineChoice("arbitrary", "a painting on video: one pass per frame")
    expected = _estimate(gatys, options, content_hw, device)
    if not can_arbitrary:
        why = (
            "an option only gatys takes was given"
            if arbitrary.installed()
            else "the any-painting network is not installed"
        )
        return EngineChoice("gatys", f"a painting, and {why}", expected)
    if expected is not None and expected.seconds <= QUICK_SECONDS:
        return EngineChoice(
            "gatys",
            "a painting: the highest quality, within a minute here (--method arbitrary: one "
            "pass, seconds)",
            expected,
        )
    slow = f" ({expected})" if expected is not None else ""
    return EngineChoice(
        "arbitrary",
        "a painting: any painting in one pass; --method gatys gives the highest quality but "
        f"takes longer{slow}",
        _estimate(arbitrary, options, content_hw, device),
    )


def _estimate(
    spec: EngineSpec,
    options: Mapping[str, Any],
    content_hw: tuple[int, int] | None,
    device: torch.device | None,
) -> Estimate | None:
    if not spec.accepts(options):
        return None
    import torch

    return spec.expected(options, content_hw or DEFAULT_CONTENT_HW, device or torch.device("cpu"))
