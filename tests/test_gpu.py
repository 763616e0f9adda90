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
