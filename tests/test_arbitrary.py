"""The arbitrary engine's models: MetaNet writes a TransformNet per style."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.func import functional_call

from restyle.errors import InvalidParameterError
from restyle.models.meta_net import (
    SHARED_PREFIXES,
    MetaNet,
    MetaNetConfig,
    style_statistics,
    style_statistics_size,
)
from restyle.models.transform_net import TransformNet, TransformNetConfig, count_parameters
from restyle.onnx_export import OnnxTransformNet, export_onnx

TINY = MetaNetConfig(
    network=TransformNetConfig(channels=(4, 8, 8), residual_blocks=1, outer_kernel=3), hidden=4
)


def _statistics(seed: int) -> torch.Tensor:
    return torch.rand(1, style_statistics_size(), generator=torch.Generator().manual_seed(seed))


def test_default_metanet_is_small_enough_to_ship() -> None:
    meta = MetaNet()
    assert style_statistics_size() == 1920
    # 10 generated layers (2 down, 3 residual blocks × 2, 2 up) of an 8/16/32 network.
    assert len(meta.layers) == 10
    assert meta.generated_parameter_count() == 67_608
    # ~7.4 M parameters: 15 MB in float16, against the original's 870 MB.
    assert 7_000_000 < count_parameters(meta) < 7_600_000


def test_generated_network_has_the_configured_shape_and_runs_any_size() -> None:
    meta = MetaNet(TINY)
    net = meta.transform_net(_statistics(0))
    assert isinstance(net, TransformNet) and net.config == TINY.network
    for height, width in ((17, 23), (64, 48)):
        assert net(torch.rand(2, 3, height, width)).shape == (2, 3, height, width)


def test_generated_weights_differ_between_styles_and_repeat_for_one() -> None:
    torch.manual_seed(0)  # a head whose few hidden units are all dead would ignore the style
    meta = MetaNet(TINY)
    with torch.no_grad():
        meta.head_weight.normal_(0, 0.1)  # as after training: the style matters
    a, a_again, b = (meta.generate(_statistics(s)) for s in (0, 0, 1))
    generated = [n for n in a if not n.startswith(SHARED_PREFIXES)]
    assert generated and all(torch.equal(a[n], a_again[n]) for n in a)
    assert all(not torch.equal(a[n], b[n]) for n in generated)
    shared = [n for n in a if n.startswith(SHARED_PREFIXES)]
    assert shared and all(a[n] is b[n] for n in shared)  # the trained tensors themselves


def test_a_fresh_metanet_writes_a_normally_initialised_network() -> None:
    meta = MetaNet(TINY)
    params = meta.generate(_statistics(3))
    template = meta.template.state_dict()
    for name, tensor in params.items():
        torch.testing.assert_close(tensor, template[name], atol=0.05, rtol=0)


def test_materialised_network_equals_the_functional_forward() -> None:
    meta = MetaNet(TINY)
    stats = _statistics(0)
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        expected = functional_call(meta.template, meta.generate(stats), (x,))
    torch.testing.assert_close(meta.transform_net(stats)(x), expected)


def test_gradients_reach_metanet_and_shared_layers_only() -> None:
    meta = MetaNet(TINY)
    x = torch.rand(2, 3, 16, 16)
    out = functional_call(meta.template, meta.generate(_statistics(0)), (x,))
    out.square().mean().backward()
    assert meta.head_weight.grad is not None and meta.head_weight.grad.abs().sum() > 0
    assert meta.hidden.weight.grad is not None
    for name, param in meta.template.named_parameters():
        if name.startswith(SHARED_PREFIXES):
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        else:
            assert param.grad is None, name


def test_style_statistics_are_mean_and_std_per_channel() -> None:
    features = {
        name: torch.rand(1, channels, 6, 5)
        for name, channels in (
            ("relu1_1", 64),
            ("relu2_1", 128),
            ("relu3_1", 256),
            ("relu4_1", 512),
        )
    }
    stats = style_statistics(features)
    assert stats.shape == (1, 1920)
    torch.testing.assert_close(stats[0, :64], features["relu1_1"][0].flatten(1).mean(1))
    torch.testing.assert_close(stats[0, 64:128], features["relu1_1"][0].flatten(1).std(1))


def test_generated_network_exports_to_onnx_with_parity(tmp_path: Path) -> None:
    meta = MetaNet(TINY)
    with torch.no_grad():
        meta.head_weight.normal_(0, 0.1)
    net = meta.transform_net(_statistics(0))
    path = export_onnx(net, tmp_path / "generated.onnx")
    x = torch.rand(1, 3, 37, 45)
    with torch.no_grad():
        torch.testing.assert_close(OnnxTransformNet(path)(x), net(x), atol=1e-4, rtol=1e-4)


def test_config_round_trips_and_rejects_nonsense() -> None:
    assert MetaNetConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(InvalidParameterError, match="hidden"):
        MetaNetConfig(hidden=0)
    with pytest.raises(InvalidParameterError, match="unknown keys"):
        MetaNetConfig.from_dict({"hidden": 4, "depth": 3})
