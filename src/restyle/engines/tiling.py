"""Tiled inference for feed-forward networks: any image size in bounded memory, without seams.

Two things make naive tiling show seams: each tile's instance norms see only that tile's
statistics, and a convolution near a tile's edge sees reflected padding instead of the real
neighbours. The first is fixed exactly, the second made invisible:

- Whole-image statistics. For each instance norm in forward order, every tile is run up to that
  norm (earlier norms already fixed to whole-image statistics) and contributes the sums of the
  activations it *owns*; the tiles' owned regions partition the image, so the combined mean and
  variance are those of a whole-image run. This costs about half a forward pass per norm, so
  tiling is used only when an image is too large to run whole.
- Overlap blending. Tiles overlap by `overlap` pixels; outputs crossfade across the middle of
  each overlap and the outer quarters get no weight, so every pixel comes from tiles that saw at
  least a quarter of the overlap of real context around it.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from restyle.engines.fast_config import ALIGN
from restyle.errors import InvalidParameterError
from restyle.models.instance_norm import InstanceNorm
from restyle.models.transform_net import pad_to_multiple


@dataclass(frozen=True)
class Span:
    """One tile along one axis: input [start, stop) and the part it owns [own_start, own_stop)."""

    start: int
    stop: int
    own_start: int
    own_stop: int


@dataclass(frozen=True)
class Tile:
    rows: Span
    cols: Span


def plan_spans(length: int, *, tile: int, overlap: int) -> list[Span]:
    """Cover [0, length) with tiles of `tile` px overlapping by at least `overlap` px."""
    if tile % ALIGN or overlap % ALIGN or length % ALIGN:
        raise InvalidParameterError(
            f"tiling: tile ({tile}), overlap ({overlap}) and length ({length}) must be "
            f"multiples of {ALIGN}"
        )
    if not 0 <= overlap < tile:
        raise InvalidParameterError(f"tile_overlap: must be in [0, tile size), got {overlap}")
    if length <= tile:
        return [Span(0, length, 0, length)]
    stride = tile - overlap
    count = -(-(length - overlap) // stride)
    starts = [min(i * stride, length - tile) for i in range(count)]
    # Each pair of neighbours splits ownership at the middle of their overlap.
    cuts = [0]
    for before, after in itertools.pairwise(starts):
        middle = (after + before + tile) // 2
        cuts.append(middle - middle % ALIGN)
    cuts.append(length)
    return [Span(s, s + tile, cuts[i], cuts[i + 1]) for i, s in enumerate(starts)]


def plan_tiles(height: int, width: int, *, tile: int, overlap: int) -> list[Tile]:
    rows = plan_spans(height, tile=tile, overlap=overlap)
    cols = plan_spans(width, tile=tile, overlap=overlap)
    return [Tile(r, c) for r in rows for c in cols]


class _StopForward(Exception):
    """Raised by the statistics observer: nothing after the observed norm is needed."""


class _MomentCollector:
    """Accumulates per-channel sums over the owned part of each tile's activations."""

    def __init__(self) -> None:
        self.total = torch.zeros(0, dtype=torch.float64)
        self.total_sq = torch.zeros(0, dtype=torch.float64)
        self.count = 0
        self.region: tuple[Tile, int, int] | None = None  # tile, its input height, width

    def __call__(self, x: torch.Tensor) -> None:
        assert self.region is not None
        tile, in_h, in_w = self.region
        # Activations sit at 1, 1/2 or 1/4 of the input resolution; owned bounds are aligned.
        sy, sx = in_h // x.shape[-2], in_w // x.shape[-1]
        r, c = tile.rows, tile.cols
        owned = x[
            ...,
            (r.own_start - r.start) // sy : (r.own_stop - r.start) // sy,
            (c.own_start - c.start) // sx : (c.own_stop - c.start) // sx,
        ].double()
        sums = owned.sum(dim=(0, 2, 3)).cpu()
        sums_sq = owned.square().sum(dim=(0, 2, 3)).cpu()
        if self.count == 0:
            self.total, self.total_sq = sums, sums_sq
        else:
            self.total += sums
            self.total_sq += sums_sq
        self.count += owned.shape[-1] * owned.shape[-2]
        raise _StopForward

    def stats(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.total / self.count
        var = (self.total_sq / self.count - mean.square()).clamp_min(0.0)
        shape = (1, -1, 1, 1)
        return mean.float().view(shape).to(device), var.float().view(shape).to(device)


def run_tiled(
    net: nn.Module,
    image: torch.Tensor,
    *,
    tile: int,
    overlap: int,
    device: torch.device,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
    on_tile: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Apply `net` to a (1, 3, H, W) image on the CPU tile by tile; returns (1, 3, H, W) on the CPU.

    `forward` (default `net`) is what runs each tile, e.g. in half precision. `on_tile(done,
    total)` is called after each tile pass (statistics passes included).
    """
    if image.shape[0] != 1:
        raise InvalidParameterError(f"tiling: one image at a time, got a batch of {image.shape[0]}")
    run = forward or net
    height, width = image.shape[-2:]
    padded = pad_to_multiple(image, ALIGN)
    tiles = plan_tiles(padded.shape[-2], padded.shape[-1], tile=tile, overlap=overlap)
    norms = [m for m in net.modules() if isinstance(m, InstanceNorm)]
    passes = (len(norms) + 1) * len(tiles) if len(tiles) > 1 else 1
    counter = _Counter(passes, on_tile)
    try:
        if len(tiles) > 1:
            _fix_whole_image_stats(run, padded, tiles, norms, device, counter)
        out = _blend_tiles(run, padded, tiles, device, counter)
    finally:
        for norm in norms:
            norm.fixed_stats = None
            norm.observer = None
    return out[..., :height, :width]


class _Counter:
    def __init__(self, total: int, report: Callable[[int, int], None] | None) -> None:
        self.done, self.total, self.report = 0, total, report

    def tick(self) -> None:
        self.done += 1
        if self.report is not None:
            self.report(self.done, self.total)


def _crop(image: torch.Tensor, tile: Tile) -> torch.Tensor:
    return image[..., tile.rows.start : tile.rows.stop, tile.cols.start : tile.cols.stop]


def _fix_whole_image_stats(
    run: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    tiles: list[Tile],
    norms: list[InstanceNorm],
    device: torch.device,
    counter: _Counter,
) -> None:
    for norm in norms:
        collector = _MomentCollector()
        norm.observer = collector
        for tile in tiles:
            crop = _crop(image, tile).to(device)
            collector.region = (tile, crop.shape[-2], crop.shape[-1])
            with contextlib.suppress(_StopForward):
                run(crop)
            counter.tick()
        norm.observer = None
        norm.fixed_stats = collector.stats(device)


def _ramp(span: Span, first: bool, last: bool) -> torch.Tensor:
    """Blend weights along one axis: 1 inside, 0 near inner edges, crossing over at the cuts.

    Each crossfade is centred on the ownership cut and spans the middle half of the overlap,
    so the quarter of the overlap nearest a tile's edge, where padding disturbs the output
    most, gets no weight at all. Neighbouring ramps sum to 1.
    """
    positions = torch.arange(span.start, span.stop, dtype=torch.float32) + 0.5
    weight = torch.ones(span.stop - span.start)
    if not first:
        half = max((span.own_start - span.start) / 2, 0.5)
        weight = torch.minimum(weight, (positions - span.own_start + half) / (2 * half))
    if not last:
        half = max((span.stop - span.own_stop) / 2, 0.5)
        weight = torch.minimum(weight, (span.own_stop + half - positions) / (2 * half))
    return weight.clamp(1e-6, 1.0)


def _blend_tiles(
    run: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    tiles: list[Tile],
    device: torch.device,
    counter: _Counter,
) -> torch.Tensor:
    if len(tiles) == 1:
        out = run(image.to(device)).float().cpu()
        counter.tick()
        return out
    out = torch.zeros_like(image, dtype=torch.float32)
    weight_sum = torch.zeros(image.shape[-2:], dtype=torch.float32)
    height, width = image.shape[-2:]
    for tile in tiles:
        result = run(_crop(image, tile).to(device)).float().cpu()
        r, c = tile.rows, tile.cols
        weight = torch.outer(
            _ramp(r, r.start == 0, r.stop == height), _ramp(c, c.start == 0, c.stop == width)
        )
        out[..., r.start : r.stop, c.start : c.stop] += result * weight
        weight_sum[r.start : r.stop, c.start : c.stop] += weight
        counter.tick()
    return out / weight_sum
