"""Checks that need a CUDA device; skipped cleanly without one (`pytest -m gpu`)."""

from __future__ import annotations

import pytest
import torch

from restyle.engines.gatys import GatysEngine, plan_scales
from restyle.engines.gatys_config import GatysConfig

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_bf16_objective_matches_float32_on_cuda(small_content, small_style) -> None:
    cuda = torch.device("cuda")
    image = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0)).to(cuda)
    values = {}
    for precision in ("float32", "bfloat16"):
        engine = GatysEngine(GatysConfig(size=48, scales=1, precision=precision), device=cuda)
        targets = engine._targets(small_content.to(cuda), [small_style.to(cuda)], [1.0], (48, 48))
        values[precision] = engine.objective(image, targets)[0].item()
    assert values["bfloat16"] == pytest.approx(values["float32"], rel=0.05)


def test_cuda_run_matches_cpu_run_closely(small_content, small_style) -> None:
    config = GatysConfig(size=48, scales=1, iterations=10, precision="float32", seed=0)
    cpu = GatysEngine(config, device=torch.device("cpu")).run(small_content, [small_style])
    gpu = GatysEngine(config, device=torch.device("cuda")).run(small_content, [small_style])
    assert (cpu - gpu.cpu()).abs().mean() < 0.02


def test_multiscale_2048_peak_memory_below_single_scale() -> None:
    """Coarse-to-fine with a bounded L-BFGS history keeps print sizes within memory."""
    cuda = torch.device("cuda")
    content = torch.rand(1, 3, 2048, 2048, generator=torch.Generator().manual_seed(0))
    style = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(1))
    peaks = {}
    for name, config in {
        "single": GatysConfig(
            size=2048, scales=1, iterations=3, lbfgs_history=100, history_bytes=2**40
        ),
        "multi": GatysConfig(size=2048, iterations=3, coarse_iterations=3, lbfgs_history=100),
    }.items():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        GatysEngine(config, device=cuda).run(content, [style])
        peaks[name] = torch.cuda.max_memory_allocated()
    print({k: f"{v / 2**30:.1f} GiB" for k, v in peaks.items()})
    assert peaks["multi"] < 0.6 * peaks["single"]
    assert plan_scales((2048, 2048), GatysConfig(size=2048))[-1].lbfgs_history < 50


def _fast_checkpoint(tmp_path):  # type: ignore[no-untyped-def]
    from restyle.models.checkpoint import save_transform_net
    from restyle.models.transform_net import SIZES, TransformNet

    torch.manual_seed(0)
    return save_transform_net(tmp_path / "net.safetensors", TransformNet(SIZES["standard"]))


def test_fast_float16_on_cuda_matches_float32_on_cpu(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from restyle.engines.fast import FastStylizer
    from restyle.engines.fast_config import FastConfig

    path = _fast_checkpoint(tmp_path)
    image = torch.rand(1, 3, 270, 480, generator=torch.Generator().manual_seed(0))
    cpu = FastStylizer(path, config=FastConfig(runtime="torch"), device="cpu").stylize(image)
    gpu = FastStylizer(path, device="cuda").stylize(image)
    assert (cpu - gpu).abs().mean() < 0.01


def test_fast_tiled_on_cuda_matches_whole(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from restyle.engines.fast import FastStylizer
    from restyle.engines.fast_config import FastConfig

    path = _fast_checkpoint(tmp_path)
    image = torch.rand(1, 3, 1000, 1500, generator=torch.Generator().manual_seed(1))
    image = torch.nn.functional.avg_pool2d(image, 9, 1, 4, count_include_pad=False)
    whole = FastStylizer(path, config=FastConfig(precision="float32"), device="cuda")
    tiled = FastStylizer(
        path,
        config=FastConfig(precision="float32", tile_size=512, tile_overlap=192),
        device="cuda",
    )
    assert (whole.stylize(image) - tiled.stylize(image)).abs().mean() < 0.005


def test_fast_training_step_in_bf16_on_cuda(tmp_path, small_style) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    from PIL import Image

    from restyle.models.transform_net import SIZES
    from restyle.training.config import FastLossConfig, TrainConfig
    from restyle.training.fast_task import FastStyleTask
    from restyle.training.loop import train

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray((rng.random((96, 96, 3)) * 255).astype(np.uint8)).save(photos / f"{i}.png")
    task = FastStyleTask(
        small_style, network=SIZES["lite"], loss=FastLossConfig(), style_info={"name": "t"}
    )
    config = TrainConfig(
        steps=20,
        batch_size=4,
        image_size=64,
        workers=2,
        log_every=1,
        sample_every=0,
        checkpoint_every=0,
        learning_rate=1e-2,
    )
    result = train(task, config, data=photos, out_dir=tmp_path / "out", device="cuda")
    import json

    log = [json.loads(x) for x in (tmp_path / "out" / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < 0.5 * log[0]["loss"]
    assert result.images_per_second > 0


def test_arbitrary_on_cuda_matches_cpu(tmp_path, small_content, small_style) -> None:  # type: ignore[no-untyped-def]
    from restyle.engines.arbitrary import ArbitraryStylizer
    from restyle.engines.arbitrary_config import ArbitraryConfig
    from restyle.models.checkpoint import save_meta_net
    from restyle.models.meta_net import MetaNet

    torch.manual_seed(0)
    meta = MetaNet()
    with torch.no_grad():
        meta.head_weight.normal_(0, 0.01)
    path = save_meta_net(tmp_path / "meta.safetensors", meta)
    outputs = {}
    for device in ("cpu", "cuda"):
        config = ArbitraryConfig(model=str(path), runtime="torch")
        stylizer = ArbitraryStylizer(small_style, config=config, device=device)
        outputs[device] = stylizer.stylize(small_content)
    # float16 weights and activations on CUDA against float32 on the CPU.
    assert (outputs["cpu"] - outputs["cuda"]).abs().mean() < 0.01
