"""The arbitrary engine's models: MetaNet writes a TransformNet per style."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.func import functional_call

import restyle
from restyle.cli import main
from restyle.engines.arbitrary import ArbitraryEngine
from restyle.engines.arbitrary_config import ArbitraryOptions, ArbitrarySetup
from restyle.errors import InvalidParameterError, WeightsError
from restyle.examples import example_path
from restyle.imaging import as_tensor, image_to_tensor, resize_tensor
from restyle.models.checkpoint import load_meta_net, load_transform_net, save_meta_net
from restyle.models.meta_net import (
    SHARED_PREFIXES,
    MetaNet,
    MetaNetConfig,
    style_statistics,
    style_statistics_size,
)
from restyle.models.transform_net import TransformNet, TransformNetConfig, count_parameters
from restyle.onnx_export import OnnxTransformNet, export_onnx
from restyle.training.arbitrary_task import ArbitraryStyleTask, split_styles
from restyle.training.config import FastLossConfig

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
        torch.testing.assert_close(meta(x, stats), expected)
    torch.testing.assert_close(meta.transform_net(stats)(x), expected)


def test_gradients_reach_metanet_and_shared_layers_only() -> None:
    meta = MetaNet(TINY)
    x = torch.rand(2, 3, 16, 16)
    out = meta(x, _statistics(0))
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


@pytest.fixture(scope="module")
def style_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five small 'paintings': stripes and blobs of different colours and sizes."""
    root = tmp_path_factory.mktemp("styles")
    rng = np.random.default_rng(1)
    for i in range(5):
        height, width = 40 + 8 * i, 56 - 4 * i
        stripes = np.sin(np.arange(width) / (1 + i))[None, :, None] * rng.random((1, 1, 3))
        image = (np.broadcast_to(stripes, (height, width, 3)) * 127 + 128).astype(np.uint8)
        Image.fromarray(image).save(root / f"painting{i}.png")
    return root


def _train_args(photos: Path, styles: Path, out: Path, steps: int = 3) -> list[str]:
    return [
        "train", "arbitrary", "--styles", str(styles), "--data", str(photos),
        "--out", str(out), "--steps", str(steps), "--image-size", "32", "--batch-size", "2",
        "--style-size", "32", "--hidden", "4", "--holdout", "0.2", "--device", "cpu",
        "--quiet", "--sample-every", "0",
    ]  # fmt: skip


def test_style_split_is_seeded_and_disjoint(style_dir: Path) -> None:
    files = sorted(style_dir.iterdir())
    training, held_out = split_styles(files, holdout=0.4, seed=0)
    assert len(held_out) == 2 and not set(training) & set(held_out)
    assert split_styles(files, holdout=0.4, seed=0) == (training, held_out)
    with pytest.raises(InvalidParameterError, match="holdout"):
        split_styles(files, holdout=1.0, seed=0)


def test_the_style_balance_is_refused_rather_than_ignored(style_dir: Path) -> None:
    with pytest.raises(InvalidParameterError, match="style_balance"):
        ArbitraryStyleTask(style_dir, meta=TINY, loss=FastLossConfig(style_balance=0.5))


def test_each_step_trains_on_its_own_augmented_painting(style_dir: Path) -> None:
    task = ArbitraryStyleTask(
        style_dir, meta=TINY, loss=FastLossConfig(style_size=24), holdout=0.2, seed=0
    )
    task.setup(torch.device("cpu"), image_size=32, channels_last=False)
    assert len(task.paintings) == 4  # one of five held out
    a, a_again = task.style_of_step(7, 0), task.style_of_step(7, 0)
    assert a.shape == (1, 3, 24, 24) and torch.equal(a, a_again)
    others = [task.style_of_step(step, 0) for step in range(8, 14)]
    assert all(not torch.equal(a, other) for other in others)
    assert not torch.equal(task.style_of_step(7, 1), a)  # another DDP rank, another painting


def test_a_few_training_steps_lower_the_loss(style_dir: Path, photo_dir: Path) -> None:
    torch.manual_seed(0)
    task = ArbitraryStyleTask(
        style_dir, meta=TINY, loss=FastLossConfig(style_size=32), holdout=0.0, seed=0
    )
    task.setup(torch.device("cpu"), image_size=32, channels_last=False)
    meta = task.build_model()
    photos = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(meta.parameters(), lr=1e-2)

    def loss_on_fixed_styles() -> float:
        with torch.no_grad():
            return sum(task.loss(meta, photos, step=s, rank=0)[0].item() for s in range(3))

    before = loss_on_fixed_styles()
    for step in range(30):
        loss, _ = task.loss(meta, photos, step=step % 3, rank=0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss_on_fixed_styles() < 0.7 * before


def test_cli_trains_and_resumes_a_metanet_exactly(
    style_dir: Path, photo_dir: Path, tmp_path: Path
) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(_train_args(photo_dir, style_dir, straight, steps=4)) == 0
    assert main(_train_args(photo_dir, style_dir, resumed, steps=2)) == 0
    assert main([*_train_args(photo_dir, style_dir, resumed, steps=4), "--resume"]) == 0
    meta, info = load_meta_net(straight / "model.safetensors")
    assert info["engine"] == "arbitrary" and info["training"]["steps"] == 4
    assert info["styles"]["held_out"] == sorted(info["styles"]["held_out"])
    assert len(info["styles"]["held_out"]) == 1 and info["styles"]["images"] == 5
    again, _ = load_meta_net(resumed / "model.safetensors")
    for (name, a), b in zip(meta.state_dict().items(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)
    with pytest.raises(WeightsError, match="not a Restyle transform network"):
        load_transform_net(straight / "model.safetensors")


@pytest.fixture(scope="module")
def meta_model(style_dir: Path, photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MetaNet trained for 2 steps, its heads then given weight so that styles differ."""
    out = tmp_path_factory.mktemp("meta")
    assert main(_train_args(photo_dir, style_dir, out / "run", steps=2)) == 0
    meta, info = load_meta_net(out / "run" / "model.safetensors")
    with torch.no_grad():
        meta.head_weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(0))
    return save_meta_net(out / "meta.safetensors", meta, info=info)


def _engine(model: Path) -> ArbitraryEngine:
    return ArbitraryEngine(
        ArbitrarySetup(network="metanet", model=str(model), runtime="torch"), device="cpu"
    )


def _painting(index: int, style_dir: Path) -> torch.Tensor:
    with Image.open(style_dir / f"painting{index}.png") as image:
        return image_to_tensor(image.convert("RGB"))


def test_style_pass_runs_once_per_painting_and_is_deterministic(
    meta_model: Path, style_dir: Path
) -> None:
    engine = _engine(meta_model)
    key, net = engine.network(_painting(0, style_dir))
    key_again, net_again = engine.network(_painting(0, style_dir).clone())
    assert key == key_again and net is net_again  # cached by the painting's pixels
    fresh_key, fresh = _engine(meta_model).network(_painting(0, style_dir))
    assert fresh_key == key
    for a, b in zip(net.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other_key, other = engine.network(_painting(1, style_dir))
    assert other_key != key
    photo = torch.rand(1, 3, 40, 52, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (net(photo) - other(photo)).abs().mean() > 1e-3


def test_interpolation_at_0_and_1_equals_the_endpoints(meta_model: Path, style_dir: Path) -> None:
    engine = _engine(meta_model)
    a, b = _painting(0, style_dir), _painting(2, style_dir)
    photo = torch.rand(1, 3, 36, 44, generator=torch.Generator().manual_seed(2))
    ends = [engine.stylizer([style]).stylize(photo) for style in (a, b)]
    torch.testing.assert_close(engine.stylizer([a, b], [1.0, 0.0]).stylize(photo), ends[0])
    torch.testing.assert_close(engine.stylizer([a, b], [0.0, 1.0]).stylize(photo), ends[1])
    middle = engine.stylizer([a, b], [0.5, 0.5]).stylize(photo)
    assert (middle - ends[0]).abs().mean() > 1e-4 and (middle - ends[1]).abs().mean() > 1e-4


def test_large_images_are_tiled_like_the_fast_engine(meta_model: Path, style_dir: Path) -> None:
    engine = _engine(meta_model)
    painting = _painting(3, style_dir)
    photo = torch.rand(1, 3, 200, 170, generator=torch.Generator().manual_seed(3))
    whole = engine.run(photo, [painting])
    tiled = engine.run(photo, [painting], ArbitraryOptions(tile_size=96, tile_overlap=64))
    difference = (tiled - whole).abs()
    print(f"tiled vs whole: mean {difference.mean():.2e}, max {difference.max():.2e}")
    # Whole-image normalisation statistics make tiles agree; what is left comes from the
    # receptive field reaching past the overlap, on an untrained (high-contrast) network.
    assert difference.mean() < 4e-3 and difference.max() < 0.15


def test_library_and_cli_take_any_painting(
    meta_model: Path, style_dir: Path, tmp_path: Path
) -> None:
    painting = style_dir / "painting4.png"
    image = restyle.stylize(
        example_path("parrots"), painting, method="arbitrary", network="metanet",
        model=str(meta_model), size=48,
    )  # fmt: skip
    assert max(image.size) == 48
    same = restyle.stylize_tensor(
        example_path("parrots"), painting, method="arbitrary", network="metanet",
        model=str(meta_model), size=48, strength=0.0,
    )  # fmt: skip
    photo = resize_tensor(as_tensor(example_path("parrots")), tuple(same.shape[-2:]))
    torch.testing.assert_close(same, photo, atol=1e-3, rtol=0)  # strength 0: the photo
    out = tmp_path / "out.png"
    code = main(
        [
            "stylize", "--method", "arbitrary", "--network", "metanet", "--model", str(meta_model),
            "-s", str(painting),
            "parrots", "-o", str(out), "--size", "40", "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    with Image.open(out) as written:
        assert max(written.size) == 40
    onnx_file = tmp_path / "generated.onnx"
    code = main(
        [
            "export", "onnx", "--method", "arbitrary", "--network", "metanet",
            "--model", str(meta_model),
            "--style", str(painting), "-o", str(onnx_file),
        ]
    )  # fmt: skip
    assert code == 0 and onnx_file.stat().st_size > 10_000


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="is not a file"):
        ArbitraryEngine(ArbitrarySetup(network="metanet", model=str(tmp_path / "nope.safetensors")))
    with pytest.raises(InvalidParameterError, match="style_size"):
        ArbitraryOptions(style_size=10)


def test_without_a_shipped_metanet_the_error_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from restyle import zoo

    monkeypatch.setattr(zoo, "arbitrary_info", lambda: None)
    monkeypatch.setattr(zoo, "arbitrary_model", lambda: None)
    with pytest.raises(WeightsError, match="restyle train arbitrary"):
        ArbitraryEngine(ArbitrarySetup(network="metanet"))
    out = str(tmp_path / "x.png")
    argv = ["stylize", "--method", "arbitrary", "--network", "metanet", "-s", "starry_night"]
    code = main([*argv, "parrots", "-o", out])
    assert code == 4
