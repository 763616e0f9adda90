"""VGG19's layer names, free of PyTorch: option declarations and the CLI check them without
loading the network's code (see `restyle.vgg` for the network)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from restyle.errors import InvalidParameterError

# (block, number of convs, output channels) of VGG19's five blocks.
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))

Pooling = Literal["max", "avg"]


def _layer_names() -> tuple[str, ...]:
    names: list[str] = []
    for block, convs, _ in BLOCKS:
        names += [f"relu{block}_{i}" for i in range(1, convs + 1)]
    return tuple(names)


LAYER_NAMES: tuple[str, ...] = _layer_names()
"""The feature layers a caller may ask for, shallow to deep: relu1_1 ... relu5_4."""

LAYER_CHANNELS: dict[str, int] = {
    f"relu{block}_{i}": channels for block, convs, channels in BLOCKS for i in range(1, convs + 1)
}


def check_layers(layers: Iterable[str], *, argument: str) -> tuple[str, ...]:
    """Validate layer names; raise InvalidParameterError naming `argument` for an unknown one."""
    layers = tuple(layers)
    for layer in layers:
        if layer not in LAYER_CHANNELS:
            raise InvalidParameterError(
                f"{argument}: unknown VGG19 layer {layer!r}; choose from {', '.join(LAYER_NAMES)}"
            )
    return layers
