"""The fast engine: transform network, checkpoints, tiled inference, ONNX, library calls."""

from __future__ import annotations

import importlib.util
import itertools
import math
import platform
from pathlib import Path

import pytest
import torch
from torch import nn

from restyle.api import stylize_tensor
from restyle.cpu_runtimes import OpenVinoTransformNet, openvino_precision
from restyle.engines.fast import FastEngine, FastStylizer
from restyle.engines.fast_config import FastOptions, FastSetup
from restyle.engines.tiling import plan_spans, run_tiled
from restyle.errors import InvalidParameterError, WeightsError
from restyle.models.checkpoint import load_transform_net, read_metadata, save_transform_net
from restyle.models.instance_norm import InstanceNorm
from restyle.models.transform_net import (
    SIZES,
    TransformNet,
    TransformNetConfig,
    count_parameters,
)
from restyle.onnx_export import OnnxTransformNet, export_onnx
from restyle.progress import Progress

CPU = torch.device("cpu")
# A network whose receptive field is a few pixels: tiles with enough overlap must then reproduce
# the whole-image result exactly, which isolates the statistics and blending logic.
NARROW = TransformNetConfig(channels=(8, 8, 8), residual_blocks=0, outer_kernel=3)


def _net(config: TransformNetConfig, seed: int = 0) -> TransformNet:
    torch.manual_seed(seed)
    net = TransformNet(config).eval()
    # Non-trivial affine norms, so the statistics' effect is not hidden by weight 1, bias 0.
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, InstanceNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return net


def _smooth(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Blurred noise: photo-like local correlation, reproducible."""
    noise = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    return nn.functional.avg_pool2d(noise, 5, 1, 2, count_include_pad=False)


@pytest.fixture(scope="module")
def lite_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "lite.safetensors"
    return save_transform_net(path, _net(SIZES["lite"]), info={"style": {"name": "test"}})


@pytest.mark.parametrize("size", ["standard", "lite"])
@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (1, 3, 5, 7), (2, 3, 33, 47), (1, 3, 64, 64)])
def test_any_input_size_maps_to_same_size(size: str, shape: tuple[int, ...]) -> None:
    net = _net(SIZES[size])
    with torch.no_grad():
        out = net(torch.rand(shape))
    assert out.shape == shape
    assert torch.isfinite(out).all()


def test_parameter_counts_and_no_transposed_convolutions() -> None:
    standard, lite = TransformNet(SIZES["standard"]), TransformNet(SIZES["lite"])
    # Johnson et al.'s network with 9×9 outer kernels: 1.68 M parameters.
    assert 1_670_000 < count_parameters(standard) < 1_690_000
    assert count_parameters(lite) < count_parameters(standard) / 5
    for net in (standard, lite):
        assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())
        assert not any(isinstance(m, nn.ZeroPad2d) for m in net.modules())


@pytest.mark.parametrize(
    "kwargs",
    [{"channels": (8, 8)}, {"channels": (0, 8, 8)}, {"residual_blocks": -1}, {"outer_kernel": 4}],
)
def test_bad_network_config_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidParameterError):
        TransformNetConfig(**kwargs)  # type: ignore[arg-type]


def test_config_round_trips_through_dict() -> None:
    config = SIZES["lite"]
    assert TransformNetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(InvalidParameterError, match="unknown keys"):
        TransformNetConfig.from_dict({"channels": [1, 2, 3], "depth": 3})


def test_checkpoint_round_trip_keeps_outputs_and_metadata(tmp_path: Path) -> None:
    net = _net(SIZES["lite"], seed=3)
    path = save_transform_net(tmp_path / "a.safetensors", net, info={"style": {"name": "x"}})
    loaded, info = load_transform_net(path)
    assert info == {"style": {"name": "x"}}
    assert loaded.config == net.config
    x = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    half = save_transform_net(tmp_path / "h.safetensors", net, dtype=torch.float16)
    assert half.stat().st_size < path.stat().st_size * 0.6
    with torch.no_grad():
        assert (load_transform_net(half)[0](x) - net(x)).abs().max() < 0.05


def test_bad_checkpoints_raise_weights_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match="not a readable"):
        load_transform_net(junk)
    with pytest.raises(WeightsError, match="no such file"):
        load_transform_net(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign), metadata={"format": "other"})
    with pytest.raises(WeightsError, match="not a Restyle transform network"):
        read_metadata(foreign)
    newer = tmp_path / "newer.safetensors"
    metadata = {"format": "restyle.transform_net", "format_version": "99", "config": "{}"}
    save_file({"w": torch.zeros(2)}, str(newer), metadata=metadata)
    with pytest.raises(WeightsError, match="newer"):
        read_metadata(newer)


def test_tile_spans_cover_and_owned_parts_partition() -> None:
    for length, tile, overlap in [(1000, 256, 64), (260, 256, 64), (256, 256, 64), (4096, 512, 0)]:
        spans = plan_spans(length, tile=tile, overlap=overlap)
        assert spans[0].start == 0 and spans[-1].stop == length
        assert all(s.stop - s.start == min(tile, length) for s in spans)
        assert [s.own_start for s in spans[1:]] == [s.own_stop for s in spans[:-1]]
        for before, after in itertools.pairwise(spans):
            assert before.stop - after.start >= overlap
            assert after.start <= after.own_start <= before.stop
    with pytest.raises(InvalidParameterError):
        plan_spans(100, tile=64, overlap=64)


def test_tiled_equals_whole_when_overlap_covers_the_receptive_field() -> None:
    net = _net(NARROW)
    image = _smooth((1, 3, 301, 450))
    with torch.inference_mode():
        whole = net(image)
        tiled = run_tiled(net, image, tile=128, overlap=32, device=CPU)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 1e-4


def test_whole_image_statistics_are_what_remove_seams() -> None:
    """Per-tile normalisation (the naive way) differs visibly; whole-image statistics do not."""
    net = _net(SIZES["lite"])
    image = _smooth((1, 3, 256, 384), seed=1)
    image[..., :, 192:] *= 0.5  # tiles with different content statistics
    with torch.inference_mode():
        whole = net(image)
        tiled = run_tiled(net, image, tile=160, overlap=96, device=CPU)
        naive = torch.zeros_like(whole)
        for top in range(0, 256, 128):
            for left in range(0, 384, 128):
                crop = image[..., top : top + 128, left : left + 128]
                naive[..., top : top + 128, left : left + 128] = net(crop)
    assert (naive - whole).abs().mean() > 0.02
    assert (tiled - whole).abs().mean() < 0.002
    # Statistics are reset afterwards: the network is left as it was found.
    assert all(m.fixed_stats is None for m in net.modules() if isinstance(m, InstanceNorm))


def test_stylizer_tiles_large_images_and_matches_whole(lite_checkpoint: Path) -> None:
    image = _smooth((1, 3, 200, 300), seed=2)
    whole = FastStylizer(lite_checkpoint, setup=FastSetup(runtime="torch")).stylize(image)
    reports: list[Progress] = []
    tiled = FastStylizer(lite_checkpoint).stylize(
        image, FastOptions(tile_size=160, tile_overlap=96), callback=reports.append
    )
    assert whole.shape == tiled.shape == image.shape
    # 2 × 4 tiles, one pass per instance norm (11 in lite) plus the output pass.
    assert [r.step for r in reports] == list(range(1, 97))
    assert all(r.total == 96 and r.size == (200, 300) for r in reports)
    assert (tiled - whole).abs().mean() < 0.002
    # The whole-image pass is the checkpoint's network called directly (this untrained network
    # draws far outside [0, 1]: the stylizer clamps what it returns).
    with torch.no_grad():
        reference = _net(SIZES["lite"])(image).clamp(0, 1)
    torch.testing.assert_close(whole, reference, atol=1e-5, rtol=0)


def test_onnx_export_matches_pytorch_at_odd_sizes(tmp_path: Path) -> None:
    net = _net(SIZES["lite"])
    model = OnnxTransformNet(export_onnx(net, tmp_path / "lite.onnx"))
    for shape in [(1, 3, 64, 64), (1, 3, 67, 93), (2, 3, 9, 8), (1, 3, 301, 17)]:
        x = torch.rand(shape)
        with torch.inference_mode():
            expected = net(x)
        got = model(x)
        assert got.shape == expected.shape
        assert (got - expected).abs().max() < 1e-4


def test_onnx_and_torch_runtimes_agree(
    lite_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTYLE_CACHE_DIR", str(tmp_path))
    image = _smooth((1, 3, 90, 120), seed=4)
    via_torch = FastStylizer(lite_checkpoint, setup=FastSetup(runtime="torch")).stylize(image)
    via_onnx = FastStylizer(lite_checkpoint, setup=FastSetup(runtime="onnx")).stylize(image)
    assert (via_torch - via_onnx).abs().max() < 1e-4
    assert list((tmp_path / "onnx").glob("*.onnx")), "the export is cached for the next run"


def test_library_strength_zero_returns_the_content(lite_checkpoint: Path) -> None:
    image = _smooth((1, 3, 48, 64), seed=5)
    out = stylize_tensor(image, str(lite_checkpoint), method="fast", strength=0.0)
    assert (out - image).abs().max() < 1e-6
    styled = stylize_tensor(image, str(lite_checkpoint), method="fast", runtime="torch")
    assert (styled - image).abs().mean() > 0.01


def test_library_size_and_blend(lite_checkpoint: Path, tmp_path: Path) -> None:
    other = save_transform_net(tmp_path / "other.safetensors", _net(SIZES["lite"], seed=9))
    image = _smooth((1, 3, 40, 80), seed=6)
    resized = stylize_tensor(image, str(lite_checkpoint), method="fast", size=120)
    assert resized.shape[-2:] == (60, 120)
    first = stylize_tensor(image, str(lite_checkpoint), method="fast", runtime="torch")
    second = stylize_tensor(image, str(other), method="fast", runtime="torch")
    only_first = stylize_tensor(
        image,
        [str(lite_checkpoint), str(other)],
        method="fast",
        style_weights=[1, 0],
        runtime="torch",
    )
    half = stylize_tensor(
        image,
        [str(lite_checkpoint), str(other)],
        method="fast",
        style_weights=[1, 1],
        runtime="torch",
    )
    assert (only_first - first).abs().max() < 1e-6
    assert (half - (first + second) / 2).abs().max() < 2e-6


def test_bad_fast_requests_raise_clear_errors(lite_checkpoint: Path) -> None:
    image = _smooth((1, 3, 32, 32))
    with pytest.raises(InvalidParameterError, match="neither a checkpoint file nor"):
        stylize_tensor(image, "no-such-style", method="fast")
    with pytest.raises(InvalidParameterError, match="iterations"):
        stylize_tensor(image, str(lite_checkpoint), method="fast", iterations=10)
    with pytest.raises(InvalidParameterError, match="runtime"):
        FastSetup(runtime="tensorrt")
    with pytest.raises(InvalidParameterError, match="tile_size"):
        FastOptions(tile_size=30)
    with pytest.raises(InvalidParameterError, match="style_weights"):
        stylize_tensor(image, [str(lite_checkpoint)], method="fast", style_weights=[-1])


def test_tiny_images_stylize(lite_checkpoint: Path) -> None:
    for shape in [(1, 3, 1, 1), (1, 3, 3, 200)]:
        out = FastStylizer(lite_checkpoint).stylize(torch.rand(shape))
        assert out.shape == shape


def test_stylizing_never_imports_training_code(lite_checkpoint: Path) -> None:
    import subprocess
    import sys

    script = (
        "import sys, torch, restyle.api as api\n"
        f"api.stylize_tensor(torch.rand(1, 3, 16, 16), {str(lite_checkpoint)!r}, method='fast')\n"
        "print(sorted(m for m in sys.modules if m.startswith('restyle.training')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


def test_engine_loads_each_network_once_and_again_when_the_file_changes(
    lite_checkpoint: Path, tmp_path: Path
) -> None:
    engine = FastEngine(FastSetup(runtime="torch"), device="cpu", max_styles=2)
    first = engine.stylizer(lite_checkpoint)
    assert engine.stylizer(str(lite_checkpoint)) is first and engine.loads == 1
    # A retrained file at the same path is another network.
    path = save_transform_net(tmp_path / "style.safetensors", _net(SIZES["lite"], seed=1))
    before = engine.stylizer(path)
    save_transform_net(path, _net(SIZES["lite"], seed=2), dtype=torch.float16)
    after = engine.stylizer(path)
    assert after is not before and engine.loads == 3
    # Only the `max_styles` most recently used networks are kept.
    assert engine.stylizer(path) is after and engine.loads == 3
    engine.stylizer(lite_checkpoint)
    assert engine.loads == 4  # evicted by the two networks of `path`
    with pytest.raises(InvalidParameterError, match="not Tensor"):
        engine.run(torch.rand(1, 3, 16, 16), [torch.rand(1, 3, 16, 16)])  # type: ignore[list-item]


def test_engine_batch_equals_one_photo_at_a_time(lite_checkpoint: Path) -> None:
    engine = FastEngine(FastSetup(runtime="torch"), device="cpu")
    photos = [
        _smooth((1, 3, 40, 60), seed=1),  # 48×72 once resized
        _smooth((1, 3, 20, 30), seed=2),  # 48×72 too: one forward pass with the first
        _smooth((1, 3, 50, 50), seed=3),  # 72×72, over tile_size²: tiled on its own
        _smooth((1, 3, 90, 120), seed=4),  # 54×72
    ]
    options = FastOptions(size=72, tile_size=64, tile_overlap=32)
    batch = engine.run_batch(photos, lite_checkpoint, options)
    for photo, out in zip(photos, batch, strict=True):
        alone = engine.run(photo, [lite_checkpoint], options)
        assert out.shape == alone.shape and max(out.shape[-2:]) == 72
        assert (out - alone).abs().max() < 1e-5
    assert engine.loads == 1


def test_tile_size_is_the_options_or_a_side_that_fits_memory(lite_checkpoint: Path) -> None:
    stylizer = FastStylizer(lite_checkpoint, device="cpu")
    assert stylizer.tile_size(FastOptions(tile_size=512)) == 512
    auto = stylizer.tile_size()
    assert auto == stylizer.tile_size(FastOptions()) and auto % 4 == 0 and auto >= 2048


def test_openvino_matches_onnxruntime_on_any_shape(
    lite_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("openvino")
    monkeypatch.setenv("RESTYLE_CACHE_DIR", str(tmp_path))
    image = _smooth((1, 3, 90, 120), seed=4)
    via_onnx = FastStylizer(lite_checkpoint, setup=FastSetup(runtime="onnx")).stylize(image)
    exact = FastStylizer(lite_checkpoint, setup=FastSetup(runtime="openvino", precision="float32"))
    assert openvino_precision(exact.setup.precision) == "f32"
    assert (exact.stylize(image) - via_onnx).abs().max() < 1e-4
    # bf16 (what auto computes in on a CPU with native bf16): the same picture within noise.
    half = FastStylizer(lite_checkpoint, setup=FastSetup(runtime="openvino", precision="bfloat16"))
    mse = ((half.stylize(image) - via_onnx) ** 2).mean().item()
    assert 10 * math.log10(1 / max(mse, 1e-12)) > 30, mse
    # One compiled network takes any batch and size (compiled once, with dynamic shapes).
    batch = _smooth((2, 3, 64, 48), seed=1)
    via_onnx = FastStylizer(lite_checkpoint, setup=FastSetup(runtime="onnx")).stylize(batch)
    assert (exact.stylize(batch) - via_onnx).abs().max() < 1e-4
    assert isinstance(exact._exported_net(), OpenVinoTransformNet)


def test_auto_runs_openvino_in_bf16_only_on_cpus_with_native_bf16(
    lite_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESTYLE_CACHE_DIR", str(tmp_path))
    stylizer = FastStylizer(lite_checkpoint)  # the default setup: runtime and precision auto
    monkeypatch.setenv("RESTYLE_CPU_BF16", "0")  # a CPU without native bf16 (forced)
    assert stylizer.exported_runtime() == "onnx"  # OpenVINO in float32 is no faster
    assert openvino_precision("auto") == "f32" and openvino_precision("float32") == "f32"
    monkeypatch.setenv("RESTYLE_CPU_BF16", "1")  # one with it (forced)
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    openvino = x86 and importlib.util.find_spec("openvino") is not None
    assert stylizer.exported_runtime() == ("openvino" if openvino else "onnx")
    assert openvino_precision(stylizer.setup.precision) == "bf16"
    assert openvino_precision("float32") == "f32"  # asked for: kept
    if openvino:  # the stylizer's network computes in bf16
        network = FastStylizer(lite_checkpoint)._exported_net()
        assert isinstance(network, OpenVinoTransformNet) and network.precision == "bf16"
