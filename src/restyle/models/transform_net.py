"""Johnson et al.'s feed-forward transform network, with the fixes the field settled on.

Encoder (three convolutions, two of them stride 2) → residual blocks → decoder (two
upsample-then-convolve stages) → output convolution. Departures from the 2016 paper, as in
pytorch/examples and most later work:
- instance normalisation instead of batch normalisation (Ulyanov et al. 2016): sharper, and a
  result that does not depend on the batch;
- reflection padding instead of zero padding: no dark frame at the borders;
- nearest-neighbour upsampling followed by a convolution instead of transposed convolutions
  (Odena et al. 2016): no checkerboard artifacts.

Input and output are RGB in [0, 1]; the output is not squashed (a sigmoid or tanh costs
saturation), callers clamp it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restyle.errors import InvalidParameterError
from restyle.models.instance_norm import InstanceNorm

_DOWNSAMPLING = 4  # two stride-2 convolutions: inputs are padded to a multiple of this


@dataclass(frozen=True)
class TransformNetConfig:
    """Width and depth of a transform network.

    `channels` are the widths of the three encoder stages (the decoder mirrors them);
    `outer_kernel` is the size of the first and last convolutions, which see full resolution.
    """

    channels: tuple[int, int, int] = (32, 64, 128)
    residual_blocks: int = 5
    outer_kernel: int = 9

    def __post_init__(self) -> None:
        if len(self.channels) != 3 or any(int(c) < 1 or int(c) > 1024 for c in self.channels):
            raise InvalidParameterError(
                f"channels: three widths in 1..1024 expected, got {self.channels}"
            )
        if not 0 <= self.residual_blocks <= 64:
            raise InvalidParameterError(
                f"residual_blocks: must be in 0..64, got {self.residual_blocks}"
            )
        if self.outer_kernel not in (3, 5, 7, 9):
            raise InvalidParameterError(
                f"outer_kernel: must be 3, 5, 7 or 9, got {self.outer_kernel}"
            )
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels": list(self.channels),
            **{k: v for k, v in dataclasses.asdict(self).items() if k != "channels"},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransformNetConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidParameterError(f"transform network config: unknown keys {sorted(unknown)}")
        values = dict(data)
        if "channels" in values:
            values["channels"] = tuple(values["channels"])
        return cls(**values)


SIZES: dict[str, TransformNetConfig] = {
    # Johnson et al. 2016: 32/64/128 channels, five residual blocks, 9×9 outer convolutions.
    "standard": TransformNetConfig(),
    # For CPUs and browsers: half the width at full and half resolution, 48 channels in the
    # residual blocks, three of them, and 5×5 outer kernels: about 1/9 of the standard
    # network's multiply-adds. Chosen by onnxruntime CPU timings of candidate shapes (see
    # docs/fast.md); narrower bottlenecks cost less quality than narrower full-resolution layers.
    "lite": TransformNetConfig(channels=(16, 32, 48), residual_blocks=3, outer_kernel=5),
}


def size_config(name: str) -> TransformNetConfig:
    """The preset named `name` ("standard", "lite")."""
    if name not in SIZES:
        raise InvalidParameterError(f"size: unknown network size {name!r}; known: {sorted(SIZES)}")
    return SIZES[name]


class ConvLayer(nn.Sequential):
    """Reflection-padded convolution, optionally followed by instance norm and ReLU."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        *,
        stride: int = 1,
        norm: bool = True,
        relu: bool = True,
    ) -> None:
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(kernel // 2),
            nn.Conv2d(c_in, c_out, kernel, stride=stride),
        ]
        if norm:
            layers.append(InstanceNorm(c_out))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions with a skip connection; no ReLU after the sum (Gross & Wilber 2016)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3),
            ConvLayer(channels, channels, 3, relu=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x + self.body(x)
        return out


class UpsampleConv(nn.Sequential):
    """Nearest ×2 upsampling then a convolution: the checkerboard-free transposed convolution."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvLayer(c_in, c_out, 3))


class TransformNet(nn.Module):
    """(B, 3, H, W) image in [0, 1] → stylized (B, 3, H, W); any H and W."""

    def __init__(self, config: TransformNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or TransformNetConfig()
        c1, c2, c3 = self.config.channels
        k = self.config.outer_kernel
        self.encoder = nn.Sequential(
            ConvLayer(3, c1, k),
            ConvLayer(c1, c2, 3, stride=2),
            ConvLayer(c2, c3, 3, stride=2),
        )
        self.residuals = nn.Sequential(
            *(ResidualBlock(c3) for _ in range(self.config.residual_blocks))
        )
        self.decoder = nn.Sequential(
            UpsampleConv(c3, c2),
            UpsampleConv(c2, c1),
            ConvLayer(c1, 3, k, norm=False, relu=False),
        )

    @property
    def full_resolution_channels(self) -> int:
        """Channels of the layers at full resolution: what bounds memory at print sizes."""
        return self.config.channels[0]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        padded = pad_to_multiple(image, _DOWNSAMPLING)
        out: torch.Tensor = self.decoder(self.residuals(self.encoder(padded)))
        return out[..., :height, :width]


def pad_to_multiple(image: torch.Tensor, multiple: int, *, minimum: int = 8) -> torch.Tensor:
    """Pad bottom and right so both sides are multiples of `multiple` (and at least `minimum`).

    Reflection keeps the border statistics natural; sides too short to reflect are replicated.
    The stride-2 encoder needs the multiple to map back to exactly the input size.
    """
    height, width = image.shape[-2:]
    if torch.onnx.is_in_onnx_export():
        # Traced sizes are symbolic here: record the padding as graph arithmetic (Python's max
        # and branches would freeze the example's sizes into the graph).
        pad_h = (multiple - height % multiple) % multiple
        pad_w = (multiple - width % multiple) % multiple
        return F.pad(image, (0, pad_w, 0, pad_h), mode="reflect")
    pad_h = max(minimum, height + (-height) % multiple) - height
    pad_w = max(minimum, width + (-width) % multiple) - width
    if pad_h == 0 and pad_w == 0:
        return image
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(image, (0, pad_w, 0, pad_h), mode=mode)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
