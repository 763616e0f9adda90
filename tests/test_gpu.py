"""Checks that need a CUDA device; skipped cleanly without one (`pytest -m gpu`)."""

from __future__ import annotations

import pytest
import torch

from restyle.engines.gatys import GatysEngine, plan_scales
from restyle.engines.gatys_config import GatysOptions, GatysSetup
from restyle.engines.holder import Engines

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_bf16_objective_matches_float32_on_cuda(small_content, small_style) -> None:
    cuda = torch.device("cuda")
    image = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0)).to(cuda)
    values = {}
    engines = Engines(device=cuda)  # one VGG19 for both precisions
    for precision in ("float32", "bfloat16"):
        engine = engines.get("gatys", GatysSetup(precision=precision))
        assert isinstance(engine, GatysEngine)
        gatys = engine.prepare(GatysOptions(size=48, scales=1))
        targets = gatys._targets(small_content.to(cuda), [small_style.to(cuda)], [1.0], (48, 48))
        values[precision] = gatys.objective(image, targets)[0].item()
    assert engines.loads == {"vgg19": 1, "gatys": 2}
    assert values["bfloat16"] == pytest.approx(values["float32"], rel=0.05)


def test_cuda_run_matches_cpu_run_closely(small_content, small_style) -> None:
    setup = GatysSetup(precision="float32")
    options = GatysOptions(size=48, scales=1, iterations=10, seed=0)
    cpu = GatysEngine(setup, device="cpu").run(small_content, [small_style], options)
    gpu = GatysEngine(setup, device="cuda").run(small_content, [small_style], options)
    assert (cpu - gpu.cpu()).abs().mean() < 0.02


def test_multiscale_2048_peak_memory_below_single_scale() -> None:
    """Coarse-to-fine with a bounded L-BFGS history keeps print sizes within memory."""
    cuda = torch.device("cuda")
    content = torch.rand(1, 3, 2048, 2048, generator=torch.Generator().manual_seed(0))
    style = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(1))
    peaks = {}
    engine = GatysEngine(device=cuda)
    for name, options in {
        "single": GatysOptions(
            size=2048, scales=1, iterations=3, lbfgs_history=100, history_bytes=2**40
        ),
        "multi": GatysOptions(size=2048, iterations=3, coarse_iterations=3, lbfgs_history=100),
    }.items():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        engine.run(content, [style], options)
        peaks[name] = torch.cuda.max_memory_allocated()
    print({k: f"{v / 2**30:.1f} GiB" for k, v in peaks.items()})
    assert peaks["multi"] < 0.6 * peaks["single"]
    assert plan_scales((2048, 2048), GatysOptions(size=2048))[-1].lbfgs_history < 50


def _fast_checkpoint(tmp_path):  # type: ignore[no-untyped-def]
    from restyle.models.checkpoint import save_transform_net
    from restyle.models.transform_net import SIZES, TransformNet

    torch.manual_seed(0)
    return save_transform_net(tmp_path / "net.safetensors", TransformNet(SIZES["standard"]))


def test_fast_float16_on_cuda_matches_float32_on_cpu(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from restyle.engines.fast import FastStylizer
    from restyle.engines.fast_config import FastSetup

    path = _fast_checkpoint(tmp_path)
    image = torch.rand(1, 3, 270, 480, generator=torch.Generator().manual_seed(0))
    cpu = FastStylizer(path, setup=FastSetup(runtime="torch"), device="cpu").stylize(image)
    gpu = FastStylizer(path, device="cuda").stylize(image)
    assert (cpu - gpu).abs().mean() < 0.01


def test_fast_tiled_on_cuda_matches_whole(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from restyle.engines.fast import FastStylizer
    from restyle.engines.fast_config import FastOptions, FastSetup

    path = _fast_checkpoint(tmp_path)
    image = torch.rand(1, 3, 1000, 1500, generator=torch.Generator().manual_seed(1))
    image = torch.nn.functional.avg_pool2d(image, 9, 1, 4, count_include_pad=False)
    stylizer = FastStylizer(path, setup=FastSetup(precision="float32"), device="cuda")
    whole = stylizer.stylize(image)
    tiled = stylizer.stylize(image, FastOptions(tile_size=512, tile_overlap=192))
    assert (whole - tiled).abs().mean() < 0.005


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
    last = log[-1]  # the throughput is the images seen over the time taken
    assert last["images_per_second"] == pytest.approx(4 * last["step"] / last["elapsed"], rel=0.05)
    assert result.steps == 20


def test_arbitrary_on_cuda_matches_cpu(tmp_path, small_content, small_style) -> None:  # type: ignore[no-untyped-def]
    from restyle.engines.arbitrary import ArbitraryEngine
    from restyle.engines.arbitrary_config import ArbitrarySetup
    from restyle.models.checkpoint import save_meta_net
    from restyle.models.meta_net import MetaNet

    torch.manual_seed(0)
    meta = MetaNet()
    with torch.no_grad():
        meta.head_weight.normal_(0, 0.01)
    path = save_meta_net(tmp_path / "meta.safetensors", meta)
    outputs = {}
    for device in ("cpu", "cuda"):
        engine = ArbitraryEngine(
            ArbitrarySetup(network="metanet", model=str(path), runtime="torch"), device=device
        )
        outputs[device] = engine.run(small_content, [small_style])
    # float16 weights and activations on CUDA against float32 on the CPU.
    assert (outputs["cpu"] - outputs["cuda"]).abs().mean() < 0.01
