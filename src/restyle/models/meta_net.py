"""MetaNet: a network that writes the weights of a transform network for any style image.

After Shen, Yan & Zeng (2018), "Neural Style Transfer via Meta Networks": the mean and standard
deviation of a painting's VGG19 features go through one shared hidden layer, and one head per
generated layer of a `TransformNet` maps its slice of that hidden layer to the layer's weights.
The first and last convolutions, which see full resolution, are ordinary trained parameters
shared by every style, as in the original design.

What is generated is a plain `TransformNet` state: inference, tiling, ONNX export and the
fast engine's runtime all apply to a generated network unchanged.

Size: every head is a linear map of `hidden` inputs to its layer's parameter count, so the
checkpoint is about `hidden` × (generated parameters). The original (a 32/64/128 network, 128
hidden units per head) is 870 MB; Restyle's default generates an 8/16/32 network, small enough to
run at video rate on a CPU, with 64 hidden units per head: about 6 M parameters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from restyle.errors import InvalidParameterError
from restyle.models.transform_net import TransformNet, TransformNetConfig

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
STYLE_CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512}
# The layers that see full resolution are trained directly and shared by every style.
SHARED_PREFIXES = ("encoder.0.", "decoder.2.")
# A third of the `lite` network's multiply-adds: video rate on a 2-core CPU.
GENERATED_NETWORK = TransformNetConfig(channels=(8, 16, 32), residual_blocks=3, outer_kernel=5)


@dataclass(frozen=True)
class MetaNetConfig:
    """The generated network's shape and the MetaNet's width (hidden units per generated layer)."""

    network: TransformNetConfig = field(default_factory=lambda: GENERATED_NETWORK)
    hidden: int = 64
    # The heads' output is multiplied by this: Adam moves every head weight by about the
    # learning rate per step whatever its scale, so unscaled heads rewrite the generated
    # weights many times over within a hundred steps and the generated networks collapse
    # (a constant image); scaled, the style-dependent part grows at a pace the networks survive.
    head_scale: float = 0.05

    def __post_init__(self) -> None:
        if not 1 <= self.hidden <= 1024:
            raise InvalidParameterError(f"hidden: must be in 1..1024, got {self.hidden}")
        if not 0 < self.head_scale <= 1:
            raise InvalidParameterError(f"head_scale: must be in (0, 1], got {self.head_scale}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": self.network.to_dict(),
            "hidden": self.hidden,
            "head_scale": self.head_scale,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetaNetConfig:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InvalidParameterError(f"MetaNet config: unknown keys {sorted(unknown)}")
        values = dict(data)
        if "network" in values:
            values["network"] = TransformNetConfig.from_dict(values["network"])
        return cls(**values)


def style_statistics_size() -> int:
    return 2 * sum(STYLE_CHANNELS[name] for name in STYLE_LAYERS)


def style_statistics(features: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, 1920): per-channel mean and standard deviation of each style layer's features."""
    parts = []
    for name in STYLE_LAYERS:
        flat = features[name].float().flatten(2)
        parts += [flat.mean(dim=2), flat.std(dim=2)]
    return torch.cat(parts, dim=1)


@dataclass(frozen=True)
class _Layer:
    """One generated layer: which TransformNet parameters it writes, at which offsets."""

    prefix: str
    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]

    @property
    def size(self) -> int:
        return sum(s.numel() for s in self.shapes)


class MetaNet(nn.Module):
    """Style statistics (B, 1920) → the generated parameters of a `TransformNet`.

    Holds the shared (trained) parameters too, inside `template`: `generate` returns a complete
    state for the transform network of each style.
    """

    def __init__(self, config: MetaNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or MetaNetConfig()
        self.template = TransformNet(self.config.network)
        self.layers = _generated_layers(self.template)
        count, hidden = len(self.layers), self.config.hidden
        widest = max(layer.size for layer in self.layers)
        self.hidden = nn.Linear(style_statistics_size(), count * hidden)
        # All heads as one batched matrix product: each head's output is padded to the widest
        # layer, which wastes little because the residual convolutions dominate.
        self.head_weight = nn.Parameter(
            torch.randn(count, hidden, widest) * 1e-3 / hidden**0.5 / self.config.head_scale
        )
        # Biases start at a freshly initialised network's weights, so a new MetaNet writes a
        # sensible network for every style and training learns the style-dependent part.
        initial = torch.zeros(count, widest)
        state = self.template.state_dict()
        for i, layer in enumerate(self.layers):
            flat = torch.cat([state[n].flatten() for n in layer.names])
            initial[i, : flat.numel()] = flat
        self.head_bias = nn.Parameter(initial)
        # The MetaNet's input is standardised with the training paintings' statistics (set by
        # training, saved with the weights): raw log-statistics share one large common profile,
        # and without this the hidden layer sees nearly the same vector for every painting.
        size = style_statistics_size()
        self.input_mean: torch.Tensor
        self.input_scale: torch.Tensor
        self.register_buffer("input_mean", torch.zeros(size))
        self.register_buffer("input_scale", torch.ones(size))
        for name, param in self.template.named_parameters():
            if not name.startswith(SHARED_PREFIXES):
                param.requires_grad_(False)  # overwritten per style; never trained

    @torch.no_grad()
    def standardise_inputs(self, statistics: torch.Tensor) -> None:
        """Set the input standardisation from many paintings' statistics (N, 1920)."""
        logs = torch.log1p(statistics.float().clamp_min(0))
        self.input_mean.copy_(logs.mean(dim=0))
        # Channels that are dead for every painting have no spread: keep them at zero.
        self.input_scale.copy_(logs.std(dim=0).clamp_min(1e-2))

    def forward(self, photos: torch.Tensor, statistics: torch.Tensor) -> torch.Tensor:
        """Stylize `photos` (B, 3, H, W) with the network generated for one style (1, 1920).

        Used in training (it keeps DDP's gradient hooks in the forward pass); inference builds a
        standalone network once with `transform_net`.
        """
        out: torch.Tensor = functional_call(self.template, self.generate(statistics), (photos,))
        return out

    def heads(self, statistics: torch.Tensor) -> torch.Tensor:
        """(B, 1920) → (layers, B, widest): every generated layer's parameters, flat."""
        count, hidden = len(self.layers), self.config.hidden
        # log1p: feature statistics span several orders of magnitude across layers.
        standard = (torch.log1p(statistics.clamp_min(0)) - self.input_mean) / self.input_scale
        h = torch.relu(self.hidden(standard))
        h = h.view(-1, count, hidden).transpose(0, 1)  # (layers, B, hidden)
        return torch.baddbmm(
            self.head_bias.unsqueeze(1), h, self.head_weight, alpha=self.config.head_scale
        )

    def generate(self, statistics: torch.Tensor) -> dict[str, torch.Tensor]:
        """The full parameter set of one style's transform network (statistics: (1, 1920)).

        Shared parameters are the trained tensors themselves, so gradients reach them when this
        feeds `torch.func.functional_call` during training.
        """
        if statistics.ndim != 2 or statistics.shape[0] != 1:
            raise InvalidParameterError(
                f"statistics: expected (1, {style_statistics_size()}), got "
                f"{tuple(statistics.shape)}"
            )
        flat = self.heads(statistics)[:, 0]  # (layers, widest)
        params: dict[str, torch.Tensor] = {
            name: p
            for name, p in self.template.named_parameters()
            if name.startswith(SHARED_PREFIXES)
        }
        for i, layer in enumerate(self.layers):
            offset = 0
            for name, shape in zip(layer.names, layer.shapes, strict=True):
                params[name] = flat[i, offset : offset + shape.numel()].view(shape)
                offset += shape.numel()
        return params

    @torch.no_grad()
    def transform_net(self, statistics: torch.Tensor) -> TransformNet:
        """A standalone `TransformNet` for one style (eval mode, on the MetaNet's device)."""
        net = TransformNet(self.config.network).to(self.head_bias.device)
        net.load_state_dict({k: v.detach() for k, v in self.generate(statistics).items()})
        return net.eval()

    def generated_parameter_count(self) -> int:
        return sum(layer.size for layer in self.layers)


def _generated_layers(net: TransformNet) -> list[_Layer]:
    """Group the non-shared parameters by their conv layer (conv weight, bias, norm affine)."""
    groups: dict[str, list[tuple[str, torch.Size]]] = {}
    for name, param in net.named_parameters():
        if name.startswith(SHARED_PREFIXES):
            continue
        prefix = name.rsplit(".", 2)[0]  # e.g. "residuals.0.body.1" for ".1.weight"
        groups.setdefault(prefix, []).append((name, param.shape))
    return [
        _Layer(prefix, tuple(n for n, _ in items), tuple(s for _, s in items))
        for prefix, items in groups.items()
    ]
