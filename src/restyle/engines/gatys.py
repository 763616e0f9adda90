"""The `gatys` engine: optimise the output's pixels against VGG19 content, style and TV losses.

Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks" (CVPR 2016),
with the coarse-to-fine schedule of Gatys et al. 2017 ("Controlling Perceptual Factors"):
optimise a small image first, upsample the result and refine it at the next scale. That both
speeds convergence (most of the structure forms where steps are cheap) and bounds memory at
print sizes, where L-BFGS's history is shortened to fit `history_bytes`.

Split into prepare (targets per scale, computed once), run one scale, and finish.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from restyle.devices import autocast_dtype, resolve_device
from restyle.engines.gatys_config import MAX_ITERATIONS, MAX_SIZE, GatysOptions, GatysSetup
from restyle.errors import InvalidImageError, InvalidParameterError, NumericalError
from restyle.imaging import check_painting_shape, resize_tensor
from restyle.lbfgs import CompactLBFGS
from restyle.losses import content_loss, gram, total_variation, weighted_style_loss
from restyle.options import normalise_weights
from restyle.progress import Progress, ProgressCallback
from restyle.vgg import VGG19Features
from restyle.vgg_layers import LAYER_NAMES

_BYTES_PER_FLOAT = 4
_MAX_AUTO_SCALES = 6
_MIN_SIDE = 16  # VGG19 halves a side four times before relu5_1: a shorter one pools to nothing


@dataclass(frozen=True)
class ScalePlan:
    """One rung of the coarse-to-fine ladder."""

    size: tuple[int, int]  # (H, W)
    iterations: int
    lbfgs_history: int


def plan_scales(content_hw: tuple[int, int], config: GatysOptions) -> list[ScalePlan]:
    """Sizes, iterations and L-BFGS history per scale, smallest first.

    The final scale's long side is `config.size`; each earlier one is `scale_factor` smaller,
    down to `min_scale_size`. Coarse scales get `coarse_iterations` steps (half of `iterations`
    unless set), the final one `iterations`.
    """
    h, w = content_hw
    long_side = max(h, w)
    final = config.size if config.size is not None else long_side
    if final > MAX_SIZE:
        raise InvalidParameterError(
            f"size: the output's long side would be {final} px, over the limit of {MAX_SIZE}"
        )
    if config.scales is not None:
        n = config.scales
    else:
        ratio = final / config.min_scale_size
        n = 1 + max(0, math.floor(math.log(ratio) / math.log(config.scale_factor) + 1e-9))
        n = min(n, _MAX_AUTO_SCALES)
    plans = []
    for index in range(n):
        side = final / config.scale_factor ** (n - 1 - index)
        hw = (max(1, round(h * side / long_side)), max(1, round(w * side / long_side)))
        iterations = config.iterations if index == n - 1 else config.coarse_steps
        if iterations == 0 and index != n - 1:
            continue
        numel = 3 * hw[0] * hw[1]
        fits = config.history_bytes // (2 * numel * _BYTES_PER_FLOAT)
        history = max(1, min(config.lbfgs_history, int(fits)))
        plans.append(ScalePlan(size=hw, iterations=iterations, lbfgs_history=history))
    total = sum(p.iterations for p in plans)
    if total > MAX_ITERATIONS:
        raise InvalidParameterError(
            f"iterations: {len(plans)} scales would run {total} steps, over the limit of "
            f"{MAX_ITERATIONS} steps per request"
        )
    return plans


def _within_reach(plans: list[ScalePlan]) -> list[ScalePlan]:
    """`plans` without the coarse scales whose short side VGG19 cannot take (a thin photo's);
    a final scale that short is an `InvalidImageError`."""
    height, width = plans[-1].size
    if min(height, width) < _MIN_SIDE:
        raise InvalidImageError(
            f"photo: too thin for the gatys engine at this size: it comes out {width}x{height} "
            f"px, a side under the {_MIN_SIDE} px its VGG19 takes; ask for a larger size, or use "
            "the fast or arbitrary engine"
        )
    return [p for p in plans[:-1] if min(p.size) >= _MIN_SIDE] + plans[-1:]


@dataclass
class _Targets:
    """Precomputed targets at one scale: content features and the blended style Grams."""

    content: dict[str, torch.Tensor]
    style_grams: dict[str, torch.Tensor]
    # Σ_s b_s·mse(G, A_s) = mse(G, Σ_s b_s·A_s) + const when Σ b_s = 1: one Gram comparison per
    # layer instead of one per style, with this constant added back so reported losses are exact.
    style_constant: float


class GatysEngine:
    """VGG19 on a device, built once; `run` may be called many times with any options.

    A service worker builds one at start and serves every gatys job with it. `vgg` gives a full
    VGG19 (up to relu5_4) shared with other engines on the same device (`Engines.vgg`); each run
    asks it only for its own layers and pooling.
    """

    name = "gatys"

    def __init__(
        self,
        setup: GatysSetup | None = None,
        *,
        device: str | torch.device | None = None,
        vgg: Callable[[], VGG19Features] | None = None,
    ) -> None:
        self.setup = setup or GatysSetup()
        self.device = resolve_device(device)
        if vgg is None:
            network = VGG19Features(LAYER_NAMES, weights_path=self.setup.weights_path)
        else:
            network = vgg()
        self.vgg = network.to(self.device)
        self._channels_last = self.device.type == "cuda"
        if self._channels_last:
            # nn.Module.to accepts memory_format; torch's type stubs do not say so.
            self.vgg = self.vgg.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        # bfloat16 on CUDA and on CPUs that compute it natively (AVX512-BF16, AMX): same loss
        # within 1% at equal steps and the same look (docs/benchmarks.md), VGG19 much faster.
        self._autocast_dtype = autocast_dtype(self.setup.precision, self.device)

    def prepare(self, options: GatysOptions | None = None) -> GatysRun:
        """One run's state (options, losses); `GatysRun.run` optimises."""
        return GatysRun(self, options or GatysOptions())

    def run(
        self,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor],
        options: GatysOptions | None = None,
        *,
        style_blend: Sequence[float] | None = None,
        init_image: torch.Tensor | None = None,
        callback: ProgressCallback | None = None,
    ) -> torch.Tensor:
        """Stylize `content` (1, 3, H, W, [0, 1]) with `styles`; returns (1, 3, h, w) in [0, 1].

        `style_blend` weighs several styles (normalised to sum to 1; a weight of 0 ignores a
        style). The output's long side is `options.size` (the content's own size if None).
        """
        return self.prepare(options).run(
            content, styles, style_blend=style_blend, init_image=init_image, callback=callback
        )


class GatysRun:
    """The losses and optimisation of one run: prepare (targets per scale), run each scale."""

    def __init__(self, engine: GatysEngine, options: GatysOptions) -> None:
        self.engine, self.config, self.device = engine, options, engine.device
        self._layers = tuple(dict.fromkeys((*options.content_layers, *options.style_layers)))
        self._style_layer_weights = dict(
            zip(options.style_layers, options.style_layer_weights, strict=True)
        )

    # -- prepare --------------------------------------------------------------------------

    def _features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        engine = self.engine
        if engine._channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with torch.autocast(
            self.device.type,
            dtype=engine._autocast_dtype or torch.float32,
            enabled=engine._autocast_dtype is not None,
        ):
            features = engine.vgg(image, layers=self._layers, pooling=self.config.pooling)
        # Losses in float32 whatever the network ran in: Gram differences are small near
        # convergence and bf16 would hide them.
        return {name: f.float() for name, f in features.items()}

    @torch.no_grad()
    def _targets(
        self,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor],
        blend: Sequence[float],
        size: tuple[int, int],
    ) -> _Targets:
        cfg = self.config
        content_at = resize_tensor(content, size)
        content_features = self._features(content_at)
        content_targets = {layer: content_features[layer] for layer in cfg.content_layers}
        style_area = size[0] * size[1] * cfg.style_scale**2
        blended: dict[str, torch.Tensor] = {}
        constant = 0.0
        for style, weight in zip(styles, blend, strict=True):
            if weight == 0:
                continue
            sh, sw = style.shape[-2:]
            # Same area as the output (times style_scale²), but never a side over MAX_SIZE nor
            # a short side under _MIN_SIDE (a thin painting, a coarse scale, a small style_scale).
            factor = min(math.sqrt(style_area / (sh * sw)), MAX_SIZE / max(sh, sw))
            factor = max(factor, min(_MIN_SIDE / min(sh, sw), MAX_SIZE / max(sh, sw)))
            style_at = resize_tensor(
                style, (max(1, round(sh * factor)), max(1, round(sw * factor)))
            )
            features = self._features(style_at)
            for layer, layer_weight in zip(cfg.style_layers, cfg.style_layer_weights, strict=True):
                g = gram(features[layer])
                blended[layer] = blended.get(layer, 0) + weight * g
                constant += layer_weight * weight * g.pow(2).mean().item()
        for layer, layer_weight in zip(cfg.style_layers, cfg.style_layer_weights, strict=True):
            constant -= layer_weight * blended[layer].pow(2).mean().item()
        return _Targets(content_targets, blended, cfg.style_weight * max(constant, 0.0))

    # -- run one scale --------------------------------------------------------------------

    def objective(
        self, image: torch.Tensor, targets: _Targets
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted total loss and its terms (content, style, tv) for a (1, 3, H, W) image."""
        cfg = self.config
        features = self._features(image)
        c = sum(
            w * content_loss(features[layer], targets.content[layer])
            for layer, w in zip(cfg.content_layers, cfg.content_layer_weights, strict=True)
        )
        s = weighted_style_loss(features, targets.style_grams, self._style_layer_weights)
        terms = {
            "content": cfg.content_weight * c,
            "style": cfg.style_weight * s + targets.style_constant,
        }
        if cfg.tv_weight:
            terms["tv"] = cfg.tv_weight * total_variation(image)
        total = sum(terms.values())
        return total, terms  # type: ignore[return-value]

    def _run_scale(
        self,
        image: torch.Tensor,
        targets: _Targets,
        plan: ScalePlan,
        report: _Reporter,
    ) -> torch.Tensor:
        if self.config.optimizer == "adam":
            return self._run_adam(image, targets, plan, report)
        loop = _LbfgsLoop(self, image, targets, plan)
        if self.device.type == "cuda" and self.engine.setup.cuda_graphs:
            _run_with_cuda_graph(loop, plan.iterations, report)
        else:
            for _ in range(plan.iterations):
                loop.step()
                report(loop.values, loop.names, loop.image)
        _check_finite(loop.values, report)
        return loop.image

    def _loss_and_grad(
        self, x: torch.Tensor, targets: _Targets
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        x = x.detach().requires_grad_(True)
        total, terms = self.objective(x, targets)
        (grad,) = torch.autograd.grad(total, x)
        return total.detach(), {k: v.detach() for k, v in terms.items()}, grad

    def _run_adam(
        self, image: torch.Tensor, targets: _Targets, plan: ScalePlan, report: _Reporter
    ) -> torch.Tensor:
        x = image.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([x], lr=self.config.learning_rate or 0.02)
        values = torch.zeros(1)
        for _ in range(plan.iterations):
            optimizer.zero_grad(set_to_none=True)
            total, terms = self.objective(x, targets)
            total.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            values = torch.stack([total.detach(), *(v.detach() for v in terms.values())])
            report(values, list(terms), x.detach())
        _check_finite(values, report)
        return x.detach()

    # -- the whole ladder -----------------------------------------------------------------

    def run(
        self,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor],
        *,
        style_blend: Sequence[float] | None = None,
        init_image: torch.Tensor | None = None,
        callback: ProgressCallback | None = None,
    ) -> torch.Tensor:
        """See `GatysEngine.run`."""
        cfg = self.config
        blend = normalise_weights(style_blend, len(styles))
        for style in styles:
            check_painting_shape(style)
        content = content.to(self.device, torch.float32)
        styles = [s.to(self.device, torch.float32) for s in styles]
        plans = _within_reach(plan_scales((content.shape[-2], content.shape[-1]), cfg))
        generator = torch.Generator(device="cpu")
        if cfg.seed is not None:
            generator.manual_seed(cfg.seed)
        image = self._initial_image(content, init_image, plans[0].size, generator)
        report = _Reporter(
            total=sum(p.iterations for p in plans),
            scales=len(plans),
            callback=callback,
            every=cfg.report_every or (25 if self.device.type == "cuda" else 1),
            preview_every=cfg.preview_every,
        )
        cuda_autocast = self.engine._autocast_dtype is not None and self.device.type == "cuda"
        with _tf32_matmuls(cuda_autocast):
            for index, plan in enumerate(plans):
                image = self._run_one(image, content, styles, blend, plan, index, report)
        return image.detach().clamp(0.0, 1.0)

    def _run_one(
        self,
        image: torch.Tensor,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor],
        blend: Sequence[float],
        plan: ScalePlan,
        index: int,
        report: _Reporter,
    ) -> torch.Tensor:
        """One rung of the ladder: upsample, targets at this size, optimise."""
        if tuple(image.shape[-2:]) != plan.size:
            # Unclamped: the optimiser works on unconstrained pixels; clamping happens once,
            # at the end.
            image = F.interpolate(image, size=plan.size, mode="bicubic", align_corners=False)
        targets = self._targets(content, styles, blend, plan.size)
        report.start_scale(index + 1, plan.size)
        return self._run_scale(image, targets, plan, report)

    def _initial_image(
        self,
        content: torch.Tensor,
        init_image: torch.Tensor | None,
        size: tuple[int, int],
        generator: torch.Generator,
    ) -> torch.Tensor:
        init = self.config.init
        if init == "content":
            return resize_tensor(content, size)
        if init == "noise":
            noise = torch.rand((1, 3, *size), generator=generator)
            return noise.to(self.device)
        if init_image is None:
            raise InvalidParameterError("init: 'image' needs an init_image, none was given")
        return resize_tensor(init_image.to(self.device, torch.float32), size)


class _Reporter:
    """Turns per-step losses into Progress reports, syncing with the device only when reporting."""

    def __init__(
        self,
        *,
        total: int,
        scales: int,
        callback: ProgressCallback | None,
        every: int,
        preview_every: int,
    ) -> None:
        self.total, self.scales, self.callback = total, scales, callback
        self.every, self.preview_every = every, preview_every
        self.step, self.scale, self.size = 0, 1, (0, 0)
        self.start = time.perf_counter()

    def start_scale(self, scale: int, size: tuple[int, int]) -> None:
        self.scale, self.size = scale, size

    def __call__(self, values: torch.Tensor, names: list[str], image: torch.Tensor) -> None:
        """`values` holds the total loss then one entry per name in `names`."""
        self.step += 1
        if self.callback is None:
            return
        if self.step % self.every and self.step != self.total:
            return
        preview = None
        if self.preview_every and (self.step % self.preview_every == 0 or self.step == self.total):
            preview = image.detach().clamp(0, 1).float().cpu()
        loss, *terms = values.float().cpu().tolist()
        if not math.isfinite(loss):
            raise _diverged(loss, self)
        self.callback(
            Progress(
                step=self.step,
                total=self.total,
                loss=loss,
                elapsed=time.perf_counter() - self.start,
                losses=dict(zip(names, terms, strict=True)),
                scale=self.scale,
                scales=self.scales,
                size=self.size,
                preview=preview,
            )
        )


class _LbfgsLoop:
    """One scale's L-BFGS optimisation as a fixed sequence of device operations.

    All state lives in tensors allocated up front and updated in place, so `step` can be
    recorded as a CUDA graph and replayed.
    """

    def __init__(
        self, engine: GatysRun, image: torch.Tensor, targets: _Targets, plan: ScalePlan
    ) -> None:
        self.engine, self.targets, self.shape = engine, targets, image.shape
        self.x = image.detach().reshape(-1).clone()  # (3*H*W,)
        self.lbfgs = CompactLBFGS(
            self.x.numel(),
            history=plan.lbfgs_history,
            lr=engine.config.learning_rate or 1.0,
            max_step=engine.config.max_step,
            device=self.x.device,
        )
        total, terms, grad = engine._loss_and_grad(self.image, targets)
        self.names = list(terms)
        self.values = torch.stack([total, *terms.values()])  # (1 + terms,)
        self.grad = grad.reshape(-1).clone()

    @property
    def image(self) -> torch.Tensor:
        return self.x.view(self.shape)

    def step(self) -> None:
        s = self.lbfgs.step(self.grad)
        x_new = self.x + s
        total, terms, new_grad = self.engine._loss_and_grad(x_new.view(self.shape), self.targets)
        new_grad = new_grad.reshape(-1)
        self.lbfgs.update(s, new_grad - self.grad)
        self.x.copy_(x_new)
        self.grad.copy_(new_grad)
        self.values.copy_(torch.stack([total, *terms.values()]))


_GRAPH_WARMUP_STEPS = 3


@contextlib.contextmanager
def _tf32_matmuls(enabled: bool) -> Iterator[None]:
    """Let float32 matmuls (the Gram matrices) use TF32 tensor cores while running.

    In bfloat16 mode the Grams are still float32 (see `_features`), and in plain float32 they
    cost more GPU time than VGG19's convolutions at 512 px (measured on an H100). TF32 keeps
    float32 range with a 10-bit mantissa, ample next to bf16 features. PyTorch only offers this
    as a process-wide flag, so it is set for the run and restored after; precision="float32"
    leaves it alone.
    """
    if not enabled:
        yield
        return
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def _run_with_cuda_graph(loop: _LbfgsLoop, iterations: int, report: _Reporter) -> None:
    """Run `iterations` steps, replaying one recorded CUDA graph after a few eager ones.

    Eager PyTorch spends ~8 ms of host time per step launching ~250 small kernels (measured on
    an H100 at 512 px), several times the GPU's own work; a graph replay launches them all at
    once. The warm-up steps are real steps (CUDA graphs need them on a side stream first).
    """
    warmup = min(_GRAPH_WARMUP_STEPS, iterations)
    side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            loop.step()
            report(loop.values, loop.names, loop.image)
    torch.cuda.current_stream().wait_stream(side)
    if iterations == warmup:
        return
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            loop.step()
    except RuntimeError as exc:
        # Nothing ran during the failed capture, so the loop's state is intact: carry on
        # eagerly (slower, same result) rather than fail the request.
        warnings.warn(
            f"CUDA graph capture failed, running eagerly: {exc}", RuntimeWarning, stacklevel=2
        )
        for _ in range(iterations - warmup):
            loop.step()
            report(loop.values, loop.names, loop.image)
        return
    for _ in range(iterations - warmup):
        graph.replay()
        report(loop.values, loop.names, loop.image)


def _check_finite(values: torch.Tensor, report: _Reporter) -> None:
    # One host sync per scale, so a diverged run fails loudly instead of returning a clamped
    # image of garbage.
    loss = values[0].item()
    if not math.isfinite(loss):
        raise _diverged(loss, report)


def _diverged(loss: float, report: _Reporter) -> NumericalError:
    return NumericalError(
        f"optimisation diverged: loss became {loss} by step {report.step} (scale "
        f"{report.scale} of {report.scales}); try a smaller learning_rate or max_step"
    )


__all__ = ["GatysEngine", "GatysOptions", "GatysRun", "GatysSetup", "ScalePlan", "plan_scales"]
