"""The gatys engine on small real images with the real VGG19 weights (CPU, a few seconds)."""

from __future__ import annotations

import itertools

import pytest
import torch

from restyle.engines.gatys import GatysEngine, plan_scales
from restyle.engines.gatys_config import MAX_ITERATIONS, GatysOptions
from restyle.errors import InvalidParameterError
from restyle.progress import Progress

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def engine() -> GatysEngine:
    """One engine (one VGG19) for every run of this module: options are per call."""
    return GatysEngine(device=CPU)


def _run(
    engine: GatysEngine, options: GatysOptions, content, styles, **kwargs
) -> tuple[torch.Tensor, list[Progress]]:
    reports: list[Progress] = []
    out = engine.run(content, styles, options, callback=reports.append, **kwargs)
    return out, reports


def test_loss_decreases_over_steps(engine: GatysEngine, small_content, small_style) -> None:
    options = GatysOptions(size=48, scales=1, iterations=25, seed=0)
    out, reports = _run(engine, options, small_content, [small_style])
    losses = [r.loss for r in reports]
    assert len(losses) == 25
    assert losses[-1] < 0.2 * losses[0]
    # L-BFGS without a line search may go up now and then, but not often.
    rises = sum(b > a for a, b in itertools.pairwise(losses))
    assert rises <= 5
    assert out.shape == (1, 3, 48, 48)
    # The image returned is the optimised one: its Gram matrices (what the style loss compares)
    # are several times closer to the painting's than the photo's are.
    with torch.no_grad():
        painting, result, photo = (
            {
                layer: f.flatten(2) @ f.flatten(2).transpose(1, 2) / f[0].numel()  # (1, C, C)
                for layer, f in engine.vgg(image, layers=options.style_layers).items()
            }
            for image in (small_style, out, small_content)
        )
    distance = {
        name: sum(
            ((g - painting[k]).square().sum() / painting[k].square().sum()).item()
            for k, g in grams.items()
        )
        for name, grams in (("result", result), ("photo", photo))
    }
    assert distance["result"] < 0.35 * distance["photo"]


def test_progress_reports_carry_steps_terms_and_previews(
    engine: GatysEngine, small_content, small_style
) -> None:
    options = GatysOptions(
        size=48,
        min_scale_size=24,
        iterations=4,
        coarse_iterations=3,
        tv_weight=1e-3,
        preview_every=2,
        init="content",  # the photo: the coarse-to-fine ladder
    )
    _, reports = _run(engine, options, small_content, [small_style])
    assert [r.step for r in reports] == list(range(1, 8))
    assert all(r.total == 7 for r in reports)
    assert [r.scale for r in reports] == [1, 1, 1, 2, 2, 2, 2]
    assert reports[0].size == (24, 24) and reports[-1].size == (48, 48)
    assert set(reports[0].losses) == {"content", "style", "tv"}
    assert reports[0].loss == pytest.approx(sum(reports[0].losses.values()), rel=1e-5)
    previews = [r.preview for r in reports if r.preview is not None]
    assert len(previews) == 4  # steps 2, 4, 6 and the last
    assert previews[-1].shape == (1, 3, 48, 48)
    # One clock for the whole run (not restarted per scale), counting from the run's start.
    elapsed = [r.elapsed for r in reports]
    assert elapsed == sorted(elapsed) and 0 < elapsed[0] < elapsed[-1] < 60


def test_same_seed_same_result_noise_init(engine: GatysEngine, small_content, small_style) -> None:
    options = GatysOptions(size=32, scales=1, iterations=5, init="noise", seed=7)
    a, _ = _run(engine, options, small_content, [small_style])
    b, _ = _run(engine, options, small_content, [small_style])
    c, _ = _run(
        engine,
        GatysOptions(size=32, scales=1, iterations=5, init="noise", seed=8),
        small_content,
        [small_style],
    )
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_style_with_zero_weight_is_ignored(
    engine: GatysEngine, small_content, small_style, small_style_2
) -> None:
    options = GatysOptions(size=32, scales=1, iterations=6, seed=0)
    alone, _ = _run(engine, options, small_content, [small_style])
    blended, _ = _run(
        engine, options, small_content, [small_style, small_style_2], style_blend=[1.0, 0.0]
    )
    assert torch.allclose(alone, blended, atol=1e-5)


def test_blend_weights_move_the_result_between_styles(
    engine: GatysEngine, small_content, small_style, small_style_2
) -> None:
    # From the photo: the feed-forward start blends the paintings its own way.
    options = GatysOptions(size=32, scales=1, iterations=15, seed=0, init="content")
    styles = [small_style, small_style_2]
    a = engine.run(small_content, styles, options, style_blend=[1, 0])
    b = engine.run(small_content, styles, options, style_blend=[0, 1])
    mid = engine.run(small_content, styles, options, style_blend=[1, 1])
    # The 50/50 blend lies between the two single-style results in mean colour.
    for channel in range(3):
        lo, hi = sorted((a[0, channel].mean().item(), b[0, channel].mean().item()))
        assert lo - 0.02 <= mid[0, channel].mean().item() <= hi + 0.02
    assert (a - b).abs().mean() > 0.02


def test_blended_loss_equals_sum_of_per_style_losses(
    engine: GatysEngine, small_content, small_style, small_style_2
) -> None:
    """The blended-Gram shortcut must report the same loss as weighting each style's loss."""
    gatys = engine.prepare(GatysOptions(size=32, scales=1, iterations=0))
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    both = gatys._targets(small_content, [small_style, small_style_2], [0.25, 0.75], (32, 32))
    one = gatys._targets(small_content, [small_style], [1.0], (32, 32))
    two = gatys._targets(small_content, [small_style_2], [1.0], (32, 32))
    style_both = gatys.objective(image, both)[1]["style"]
    expected = (
        0.25 * gatys.objective(image, one)[1]["style"]
        + 0.75 * gatys.objective(image, two)[1]["style"]
    )
    assert style_both.item() == pytest.approx(expected.item(), rel=1e-4)


def test_style_distance_drops_content_stays_bounded_multiscale(
    engine: GatysEngine, small_content, small_style
) -> None:
    options = GatysOptions(
        size=48, min_scale_size=24, iterations=15, coarse_iterations=10, seed=0, init="content"
    )
    _, reports = _run(engine, options, small_content, [small_style])
    final = [r for r in reports if r.scale == r.scales]
    assert final[-1].losses["style"] < 0.5 * final[0].losses["style"]


def test_init_image_is_used(engine: GatysEngine, small_content, small_style) -> None:
    options = GatysOptions(size=32, scales=1, iterations=0, init="image")
    grey = torch.full((1, 3, 16, 16), 0.5)
    out, _ = _run(engine, options, small_content, [small_style], init_image=grey)
    assert torch.allclose(out, torch.full_like(out, 0.5), atol=1e-6)
    with pytest.raises(InvalidParameterError, match="init_image"):
        engine.run(small_content, [small_style], options)


def test_plan_scales_coarse_to_fine() -> None:
    options = GatysOptions(
        size=512, min_scale_size=128, iterations=100, coarse_iterations=50, init="content"
    )
    plans = plan_scales((300, 400), options)
    assert [p.size for p in plans] == [(96, 128), (192, 256), (384, 512)]
    assert [p.iterations for p in plans] == [50, 50, 100]


def test_history_shrinks_to_fit_memory_budget_at_print_size() -> None:
    options = GatysOptions(size=2048, lbfgs_history=100, history_bytes=2 * 1024**3, init="content")
    plans = plan_scales((2048, 2048), options)
    final = plans[-1]
    pair_bytes = 2 * 3 * 2048 * 2048 * 4
    assert final.lbfgs_history * pair_bytes <= 2 * 1024**3
    assert final.lbfgs_history < 100
    assert plans[0].lbfgs_history == 100  # small scales keep the full history


def test_iteration_cap_is_enforced() -> None:
    with pytest.raises(InvalidParameterError, match="iterations"):
        GatysOptions(iterations=MAX_ITERATIONS + 1)
    options = GatysOptions(
        size=4096,
        min_scale_size=16,
        scale_factor=1.5,
        iterations=10_000,
        coarse_iterations=5_000,
        init="content",
    )
    with pytest.raises(InvalidParameterError, match="limit"):
        plan_scales((4096, 4096), options)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("style_weight", -1.0),
        ("content_weight", float("nan")),
        ("size", 0),
        ("size", 100_000),
        ("optimizer", "sgd"),
        ("init", "random"),
        ("style_layers", ("relu6_1",)),
        ("style_layer_weights", (1.0, 2.0)),
        ("scale_factor", 1.0),
        ("style_scale", 0.0),
        ("learning_rate", -0.1),
        ("iterations", 1.5),
        ("style_layers", ("relu1_1", "relu1_1")),
    ],
)
def test_absurd_parameters_are_rejected(field: str, value: object) -> None:
    with pytest.raises(InvalidParameterError, match=field.split("_")[0]):
        GatysOptions(**{field: value})


def test_style_blend_errors(engine: GatysEngine, small_content, small_style) -> None:
    options = GatysOptions(size=32, scales=1, iterations=0)
    with pytest.raises(InvalidParameterError, match="style_weights"):
        engine.run(small_content, [small_style], options, style_blend=[0.0])
    with pytest.raises(InvalidParameterError, match="style_weights"):
        engine.run(small_content, [small_style], options, style_blend=[1.0, 1.0])
    with pytest.raises(InvalidParameterError, match="style"):
        engine.run(small_content, [], options)


def test_adam_optimiser_also_descends(engine: GatysEngine, small_content, small_style) -> None:
    options = GatysOptions(size=32, scales=1, iterations=30, optimizer="adam", seed=0)
    _, reports = _run(engine, options, small_content, [small_style])
    assert reports[-1].loss < 0.7 * reports[0].loss


def test_native_size_over_the_limit_is_rejected() -> None:
    with pytest.raises(InvalidParameterError, match="size"):
        plan_scales((9000, 300), GatysOptions(size=None))


def test_divergence_raises_numerical_error_not_garbage(
    engine: GatysEngine, small_content, small_style
) -> None:
    from restyle.errors import NumericalError

    options = GatysOptions(size=32, scales=1, iterations=3, optimizer="adam", learning_rate=1e30)
    with pytest.raises(NumericalError, match="diverged"):
        engine.run(small_content, [small_style], options)


@pytest.mark.parametrize(("forced", "expected"), [("1", torch.bfloat16), ("0", None)])
def test_auto_precision_follows_the_cpus_bfloat16(
    monkeypatch: pytest.MonkeyPatch, forced: str, expected: torch.dtype | None
) -> None:
    from restyle.devices import CPU_BF16_ENV
    from restyle.engines.gatys_config import GatysSetup

    monkeypatch.setenv(CPU_BF16_ENV, forced)
    assert GatysEngine(GatysSetup(), device=CPU)._autocast_dtype is expected
    # Asked for by name, either precision is used whatever the CPU.
    assert GatysEngine(GatysSetup(precision="float32"), device=CPU)._autocast_dtype is None
    bf16 = GatysEngine(GatysSetup(precision="bfloat16"), device=CPU)._autocast_dtype
    assert bf16 is torch.bfloat16


def test_bfloat16_on_the_cpu_reaches_the_float32_loss(small_content, small_style) -> None:
    from restyle.engines.gatys_config import GatysSetup

    options = GatysOptions(size=48, scales=1, iterations=30, seed=0)
    finals = {}
    for precision in ("float32", "bfloat16"):
        engine = GatysEngine(GatysSetup(precision=precision), device=CPU)
        out, reports = _run(engine, options, small_content, [small_style])
        assert torch.isfinite(out).all() and out.dtype == torch.float32
        assert all(torch.isfinite(torch.tensor(r.loss)) for r in reports)
        finals[precision] = reports[-1].loss
    # The Grams and losses stay float32; only VGG19's features are rounded.
    assert finals["bfloat16"] == pytest.approx(finals["float32"], rel=0.05)
