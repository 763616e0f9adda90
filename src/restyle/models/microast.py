"""MicroAST (Wang et al., AAAI 2023): arbitrary style transfer with no VGG at inference.

A content encoder and a style encoder of the same small shape (depthwise-separable
convolutions, a quarter of the resolution, 64 channels), a modulator that turns the style
encoding into per-channel modulation signals, and a decoder that applies the style twice: AdaIN
to the style's feature statistics, and "filter modulation" of its two residual blocks by the
signals. About 0.47 M parameters; the weights are the authors' (MIT licence, see
`restyle/zoo/MICROAST-LICENSE`).

Everything a painting contributes is a handful of per-channel vectors, `StyleSignals`: the
mean and standard deviation of its two encoder outputs and the four modulation vectors. So:
- several paintings blend in signal space (the weighted mean of their signals);
- a painting's network is the content encoder and the decoder with its signals *folded in*
  (`MicroAST.styled`): the filter modulation `w·conv(x) + b·x` is one convolution whose kernel is
  `w·W` plus `b` on the centre tap of each channel's own input, and AdaIN with fixed style
  statistics is an instance norm whose affine parameters are the style's. The result is a plain
  feed-forward network that the fast engine's runtime (onnxruntime, tiling with whole-image
  statistics, ONNX export for the browser) runs unchanged.

Where this departs from the authors' code: nothing in the maths of `MicroAST.forward`, which
reproduces their outputs exactly. Two additions: in a painting's network the AdaIN is an
`InstanceNorm` whose statistics can be fixed from outside, so that tiled inference of print sizes
normalises with whole-image statistics (the one place tiles could otherwise disagree); and a
feature-space strength that works. The authors' content/style mix `alpha` (kept in `forward` for
parity) leaves the range the decoder was trained on: at alpha 0.5 their own outputs average 4.7
on a [0, 1] scale (the parity fixtures), a flat saturated image. Interpolating the painting's
signals toward the photo's own (`StyleSignals.blend`) moves smoothly from a near-copy of the
photo to the full style instead; the arbitrary engine's `style_mix` does that.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from restyle.models.instance_norm import InstanceNorm
from restyle.models.transform_net import pad_to_multiple

CHANNELS = 64
EPS = 1e-5


class Conv(nn.Module):
    """Reflection padding of kernel // 2, then a convolution (optionally grouped or strided)."""

    def __init__(
        self, cin: int, cout: int, kernel: int, *, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__()
        self.pad = kernel // 2
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return self.conv(x)  # type: ignore[no-any-return]


class Residual(nn.Module):
    """x + conv2(relu(conv1(x))), two dense 3×3 convolutions."""

    def __init__(self, channels: int = CHANNELS) -> None:
        super().__init__()
        self.conv1 = Conv(channels, channels, 3)
        self.conv2 = Conv(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))  # type: ignore[no-any-return]


class Encoder(nn.Module):
    """Image (B, 3, H, W) → two feature maps (B, 64, H/4, W/4), after each of its two stages."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            Conv(3, 16, 9),
            nn.ReLU(),
            Conv(16, 32, 3, stride=2, groups=16),
            nn.ReLU(),
            Conv(32, 32, 1),
            nn.ReLU(),
            Conv(32, 64, 3, stride=2, groups=32),
            nn.ReLU(),
            Conv(64, 64, 1),
            nn.ReLU(),
            Residual(),
        )
        self.stage2 = Residual()

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f1 = self.stage1(image)
        return f1, self.stage2(f1)


class Modulator(nn.Module):
    """Style features → four modulation vectors (B, 64, 1, 1): depthwise 3×3 conv, global mean.

    `scale1`, `shift1` read the style encoder's first output, `scale2`, `shift2` its second.
    """

    def __init__(self) -> None:
        super().__init__()
        self.scale1 = Conv(CHANNELS, CHANNELS, 3, groups=CHANNELS)
        self.shift1 = Conv(CHANNELS, CHANNELS, 3, groups=CHANNELS)
        self.scale2 = Conv(CHANNELS, CHANNELS, 3, groups=CHANNELS)
        self.shift2 = Conv(CHANNELS, CHANNELS, 3, groups=CHANNELS)

    def forward(
        self, f1: torch.Tensor, f2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        def pooled(conv: Conv, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = conv(x)
            return out.mean(dim=(2, 3), keepdim=True)  # (B, 64, 1, 1)

        return (
            pooled(self.scale1, f1),
            pooled(self.shift1, f1),
            pooled(self.scale2, f2),
            pooled(self.shift2, f2),
        )


@dataclass(frozen=True)
class StyleSignals:
    """What a painting gives the decoder; every field is (B, 64, 1, 1).

    `mean1`, `std1`, `mean2`, `std2`: statistics of the style encoder's two outputs (AdaIN's
    targets); `scale1`, `shift1`, `scale2`, `shift2`: the modulator's outputs.
    """

    mean1: torch.Tensor
    std1: torch.Tensor
    mean2: torch.Tensor
    std2: torch.Tensor
    scale1: torch.Tensor
    shift1: torch.Tensor
    scale2: torch.Tensor
    shift2: torch.Tensor

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return (
            self.mean1,
            self.std1,
            self.mean2,
            self.std2,
            self.scale1,
            self.shift1,
            self.scale2,
            self.shift2,
        )

    @staticmethod
    def blend(parts: list[StyleSignals], weights: list[float]) -> StyleSignals:
        """The weighted mean of several paintings' signals (weights summing to 1)."""
        fields = zip(*(p.tensors() for p in parts), strict=True)
        mixed = [sum(w * t for w, t in zip(weights, ts, strict=True)) for ts in fields]
        return StyleSignals(*mixed)


def mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over H×W (unbiased variance + EPS, as AdaIN)."""
    mean = x.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    std = (x.var(dim=(2, 3), keepdim=True, unbiased=True) + EPS).sqrt()
    return mean, std


def adain(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """x with its per-channel statistics replaced by (mean, std)."""
    x_mean, x_std = mean_std(x)
    return (x - x_mean) / x_std * std + mean


def modulated_block(
    block: Residual, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor
) -> torch.Tensor:
    """A residual block under filter modulation: each conv's output is scale·conv(in) +
    shift·in (the authors' "filter modulation", applied to the block's two convolutions)."""
    h1: torch.Tensor = block.conv1(x)
    h2 = F.relu(scale * h1 + shift * x)
    h3: torch.Tensor = block.conv2(h2)
    return x + (scale * h3 + shift * h2)


class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block1 = Residual()
        self.block2 = Residual()
        self.head = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            Conv(64, 32, 3, groups=32),
            nn.ReLU(),
            Conv(32, 32, 1),
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            Conv(32, 16, 3, groups=16),
            nn.ReLU(),
            Conv(16, 16, 1),
            nn.ReLU(),
            Conv(16, 3, 9),
        )

    def forward(
        self, content2: torch.Tensor, signals: StyleSignals, *, alpha: float = 1.0
    ) -> torch.Tensor:
        """Content features (the encoder's second output) → image (unclamped)."""
        x = _mix(adain(content2, signals.mean2, signals.std2), content2, alpha)
        x = modulated_block(self.block1, x, signals.scale2, signals.shift2)
        x = _mix(adain(x, signals.mean1, signals.std1), x, alpha)
        x = modulated_block(self.block2, x, signals.scale1, signals.shift1)
        return self.head(x)  # type: ignore[no-any-return]


def _mix(styled: torch.Tensor, plain: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha * styled + (1.0 - alpha) * plain if alpha != 1.0 else styled


class MicroAST(nn.Module):
    """The whole network: `forward(content, style, alpha)`; `signals(style)`; `styled(signals)`.

    Images are (B, 3, H, W) RGB in [0, 1]; H and W multiples of 4 give the exact output size.
    `alpha` is the network's own content/style mix in feature space (1: full style).
    """

    def __init__(self) -> None:
        super().__init__()
        self.content_encoder = Encoder()
        self.style_encoder = Encoder()
        self.modulator = Modulator()
        self.decoder = Decoder()

    def signals(self, style: torch.Tensor) -> StyleSignals:
        s1, s2 = self.style_encoder(style)
        mean1, std1 = mean_std(s1)
        mean2, std2 = mean_std(s2)
        return StyleSignals(mean1, std1, mean2, std2, *self.modulator(s1, s2))

    def forward(
        self, content: torch.Tensor, style: torch.Tensor, *, alpha: float = 1.0
    ) -> torch.Tensor:
        _, c2 = self.content_encoder(content)
        return self.decoder(c2, self.signals(style), alpha=alpha)  # type: ignore[no-any-return]

    def styled(self, signals: StyleSignals) -> StyledMicroAST:
        """The feed-forward network of one painting (signals of batch 1), modulation folded in."""
        return StyledMicroAST(self, signals)


class StyleNorm(InstanceNorm):
    """AdaIN to fixed style statistics as an instance norm.

    (x − μ)/σ·σ_s + μ_s is an instance norm of x with affine weight σ_s and bias μ_s (AdaIN's
    unbiased variance; biased when tiling fixes whole-image statistics, where the difference is
    one part in the image's pixel count). Being an `InstanceNorm`, tiled inference fixes its
    statistics to the whole image's (`restyle.engines.tiling`).
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__(CHANNELS, eps=EPS)
        self.weight = nn.Parameter(std.detach().reshape(-1).clone())
        self.bias = nn.Parameter(mean.detach().reshape(-1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observer is not None:
            self.observer(x)
        if self.fixed_stats is not None:
            return super().forward(x)
        return adain(x, self.bias.view(1, -1, 1, 1), self.weight.view(1, -1, 1, 1))


def _folded_conv(conv: Conv, scale: torch.Tensor, shift: torch.Tensor) -> Conv:
    """`scale·conv(x) + shift·x` as one convolution (a dense, square, odd-kernel conv)."""
    out = Conv(conv.conv.in_channels, conv.conv.out_channels, conv.conv.kernel_size[0])
    weight = conv.conv.weight.detach() * scale.reshape(-1, 1, 1, 1)  # (C, C, k, k)
    centre = conv.conv.kernel_size[0] // 2
    index = torch.arange(weight.shape[0])
    weight[index, index, centre, centre] += shift.reshape(-1)
    out.conv.weight = nn.Parameter(weight)
    assert conv.conv.bias is not None
    out.conv.bias = nn.Parameter(conv.conv.bias.detach() * scale.reshape(-1))
    return out


class _FoldedBlock(nn.Module):
    """A modulated residual block with the modulation in its weights: x + conv2(relu(conv1(x)))."""

    def __init__(self, block: Residual, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.conv1 = _folded_conv(block.conv1, scale, shift)
        self.conv2 = _folded_conv(block.conv2, scale, shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))  # type: ignore[no-any-return]


class StyledMicroAST(nn.Module):
    """One painting's network: image (B, 3, H, W) in [0, 1] → stylized (unclamped), no style
    input. Built by `MicroAST.styled`; its own copy of the weights, frozen. Refinement
    (`restyle train fast --init arbitrary`) unfreezes and fine-tunes them, and the fast engine
    loads the result like any trained style (`StyledMicroAST.blank()` plus the saved weights).
    """

    full_resolution_channels = 16  # what bounds memory at print sizes (see FastStylizer)

    @classmethod
    def blank(cls) -> StyledMicroAST:
        """A network of the right shape for loading saved weights into."""
        ones = torch.ones(1, CHANNELS, 1, 1)
        return cls(MicroAST(), StyleSignals(*(ones,) * 8))

    def __init__(self, model: MicroAST, signals: StyleSignals) -> None:
        super().__init__()
        s = signals
        self.encoder = copy.deepcopy(model.content_encoder)
        self.norm2 = StyleNorm(s.mean2, s.std2)
        self.block1 = _FoldedBlock(model.decoder.block1, s.scale2, s.shift2)
        self.norm1 = StyleNorm(s.mean1, s.std1)
        self.block2 = _FoldedBlock(model.decoder.block2, s.scale1, s.shift1)
        self.head = copy.deepcopy(model.decoder.head)
        self.requires_grad_(False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        # Two stride-2 layers: sides that are multiples of 4 keep the output the input's size.
        _, x = self.encoder(pad_to_multiple(image, 4))
        x = self.block1(self.norm2(x))
        x = self.block2(self.norm1(x))
        out: torch.Tensor = self.head(x)
        return out[..., :height, :width]


def convert_authors_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' published state dicts (keys `PART.ORIGINAL_KEY`) → `MicroAST`'s keys."""
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        part, _, rest = key.partition(".")
        rest = rest.replace("conv_layer.", "conv.")
        if part in ("content_encoder", "style_encoder"):
            rest = rest.replace("enc1.", "stage1.").replace("enc2.0.", "stage2.")
        elif part == "modulator":
            name, _, tail = rest.partition(".0.")
            rest = (
                {"weight1": "scale1", "bias1": "shift1", "weight2": "scale2"}.get(
                    name, "shift2" if name == "bias2" else name
                )
                + "."
                + tail
            )
        elif part == "decoder":
            rest = (
                rest.replace("dec1.", "block1.")
                .replace("dec2.", "block2.")
                .replace("dec3.", "head.")
            )
        renamed[f"{part}.{rest}"] = value
    return renamed
