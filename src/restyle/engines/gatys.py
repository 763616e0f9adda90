"""The `gatys` engine: optimise the output's pixels against VGG19 content, style and TV losses.

Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks" (CVPR 2016),
with the coarse-to-fine schedule of Gatys et al. 2017 ("Controlling Perceptual Factors"):
optimise a small image first, upsample the result and refine it at the next scale. That both
speeds convergence (most of the structure forms where steps are cheap) and bounds memory at
print sizes, where L-BFGS's history is shortened to fit `history_bytes`.

Split into prepare (targets per scale, computed once), run one scale, and finish; the ladder is
planned in `gatys_plan`, and each scale's L-BFGS loop (a CUDA graph on CUDA) and the progress
reports are in `gatys_loop`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from restyle.devices import autocast_dtype, resolve_device
from restyle.engines.first_pass import FirstPass, feed_forward_start
from restyle.engines.gatys_config import GatysOptions, GatysSetup
from restyle.engines.gatys_loop import (
    Budget,
    LbfgsLoop,
    Reporter,
    StepClock,
    check_finite,
    run_with_cuda_graph,
    tf32_matmuls,
)
from restyle.engines.gatys_plan import (
    ScalePlan,
    open_ended_steps,
    plan_scales,
    within_reach,
)
from restyle.engines.gatys_targets import Targets, scale_targets
from restyle.errors import InvalidParameterError
from restyle.imaging import check_painting_shape, resize_tensor
from restyle.losses import content_loss, total_variation, weighted_style_loss
from restyle.options import normalise_weights
from restyle.progress import ProgressCallback
from restyle.vgg import VGG19Features
from restyle.vgg_layers import LAYER_NAMES


class GatysEngine:
    """VGG19 on a device, built once; `run` may be called many times with any options.

    A service worker builds one at start and serves every gatys job with it. `vgg` gives a full
    VGG19 (up to relu5_4) shared with other engines on the same device (`Engines.vgg`); each run
    asks it only for its own layers and pooling. `first_pass` makes the feed-forward start
    (`init="feed_forward"`) with the holder's engines; an engine built alone makes a holder of
    its own the first time it needs one.
    """

    name = "gatys"

    def __init__(
        self,
        setup: GatysSetup | None = None,
        *,
        device: str | torch.device | None = None,
        vgg: Callable[[], VGG19Features] | None = None,
        first_pass: FirstPass | None = None,
    ) -> None:
        self.setup = setup or GatysSetup()
        self.device = resolve_device(device)
        self._first_pass = first_pass
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

    def first_pass(self) -> FirstPass:
        """What makes the feed-forward start (the holder's, else one of this engine's own)."""
        if self._first_pass is None:
            from restyle.engines.holder import Engines

            holder = Engines(device=self.device)
            self._first_pass = functools.partial(feed_forward_start, holder)
        return self._first_pass

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

    def _targets(
        self,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor],
        blend: Sequence[float],
        size: tuple[int, int],
    ) -> Targets:
        return scale_targets(self._features, self.config, content, styles, blend, size)

    # -- run one scale --------------------------------------------------------------------

    def objective(
        self, image: torch.Tensor, targets: Targets
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted total loss and its terms (content, style, tv) for a (1, 3, H, W) image."""
        cfg = self.config
        features = self._features(image)
        c = sum(
            factor * content_loss(features[layer], targets.content[layer])
            for layer, factor in targets.content_factors.items()
        )
        s = weighted_style_loss(features, targets.style_grams, targets.style_factors)
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
        targets: Targets,
        plan: ScalePlan,
        steps: int,
        clock: StepClock,
        report: Reporter,
    ) -> torch.Tensor:
        if self.config.optimizer == "adam":
            return self._run_adam(image, targets, steps, clock, report)
        loop = LbfgsLoop(
            lambda x: self._loss_and_grad(x, targets),
            image,
            history=plan.lbfgs_history,
            lr=self.config.learning_rate or 1.0,
            max_step=self.config.max_step,
        )
        clock.evaluated()  # the loop's first evaluation: the pace of this scale's steps
        if self.device.type == "cuda" and self.engine.setup.cuda_graphs:
            run_with_cuda_graph(loop, steps, report, clock)
        else:
            for _ in range(steps):
                if not clock.room():
                    break
                loop.step()
                clock.stepped()
                report(loop.values, loop.names, loop.image)
        check_finite(loop.values, report)
        report.finish()
        return loop.image

    def _loss_and_grad(
        self, x: torch.Tensor, targets: Targets
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        x = x.detach().requires_grad_(True)
        total, terms = self.objective(x, targets)
        (grad,) = torch.autograd.grad(total, x)
        return total.detach(), {k: v.detach() for k, v in terms.items()}, grad

    def _run_adam(
        self,
        image: torch.Tensor,
        targets: Targets,
        steps: int,
        clock: StepClock,
        report: Reporter,
    ) -> torch.Tensor:
        x = image.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([x], lr=self.config.learning_rate or 0.02)
        values = torch.zeros(1)
        for _ in range(steps):
            if not clock.room():
                break
            optimizer.zero_grad(set_to_none=True)
            total, terms = self.objective(x, targets)
            total.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            clock.stepped()
            values = torch.stack([total.detach(), *(v.detach() for v in terms.values())])
            report(values, list(terms), x.detach())
        check_finite(values, report)
        report.finish()
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
        started = time.perf_counter()  # a time limit counts the start and the targets too
        cfg = self.config
        blend = normalise_weights(style_blend, len(styles))
        for style in styles:
            check_painting_shape(style)
        content = content.to(self.device, torch.float32)
        styles = [s.to(self.device, torch.float32) for s in styles]
        plans = within_reach(plan_scales((content.shape[-2], content.shape[-1]), cfg))
        generator = torch.Generator(device="cpu")
        if cfg.seed is not None:
            generator.manual_seed(cfg.seed)
        budget = Budget(started, cfg.time_limit_s)
        steps = [open_ended_steps(plans) if p.open_ended else p.iterations for p in plans]
        report = Reporter(
            total=sum(steps),
            scales=len(plans),
            callback=callback,
            every=cfg.report_every or (25 if self.device.type == "cuda" else 1),
            preview_every=cfg.preview_every,
            started=started,
            time_limit=cfg.time_limit_s,
        )
        image = self._initial_image(content, styles, blend, init_image, plans, generator)
        cuda_autocast = self.engine._autocast_dtype is not None and self.device.type == "cuda"
        with tf32_matmuls(cuda_autocast):
            for index in range(len(plans)):
                ladder = (plans[index:], index, steps[index])
                image = self._run_one(image, content, styles, blend, ladder, budget, report)
        return image.detach().clamp(0.0, 1.0)

    def _run_one(
        self,
        image: torch.Tensor,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor],
        blend: Sequence[float],
        ladder: tuple[Sequence[ScalePlan], int, int],
        budget: Budget,
        report: Reporter,
    ) -> torch.Tensor:
        """One rung of the ladder (the plans from it on, its index, its steps): upsample,
        targets at this size, optimise until its steps are done or its share of the time
        limit is spent. A rung the time left cannot set up only resizes."""
        rest, index, steps = ladder
        plan = rest[0]
        if tuple(image.shape[-2:]) != plan.size:
            # Unclamped: the optimiser works on unconstrained pixels; clamping happens once,
            # at the end.
            image = F.interpolate(image, size=plan.size, mode="bicubic", align_corners=False)
        report.start_scale(index + 1, plan.size)
        if not budget.affords(plan, final=len(rest) == 1):
            report.finish()
            return image
        began = time.perf_counter()
        targets = self._targets(content, styles, blend, plan.size)
        clock = StepClock(budget.deadline_of(rest), self.device)
        image = self._run_scale(image, targets, plan, steps, clock, report)
        budget.set_up(plan, clock.steps_began - began)
        return image

    def _initial_image(
        self,
        content: torch.Tensor,
        styles: Sequence[torch.Tensor],
        blend: Sequence[float],
        init_image: torch.Tensor | None,
        plans: Sequence[ScalePlan],
        generator: torch.Generator,
    ) -> torch.Tensor:
        init, size = self.config.init, plans[0].size
        if init_image is not None and self.config.starts_from_image:
            # The caller's picture wins: a start made elsewhere, or the one asked for.
            return resize_tensor(init_image.to(self.device, torch.float32), size)
        if init == "feed_forward":
            start = self.engine.first_pass()(content, styles, blend, plans[-1].size)
            return resize_tensor(start.to(self.device, torch.float32), size)
        if init == "content":
            return resize_tensor(content, size)
        if init == "noise":
            noise = torch.rand((1, 3, *size), generator=generator)
            return noise.to(self.device)
        raise InvalidParameterError("init: 'image' needs an init_image, none was given")
