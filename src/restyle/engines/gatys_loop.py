"""The gatys engine's optimisation loop: L-BFGS as a fixed sequence of device operations (on
CUDA, one step recorded as a CUDA graph and replayed), and the progress reports of a run.
"""

from __future__ import annotations

import collections
import contextlib
import math
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Sequence

import torch

from restyle.engines.gatys_plan import ScalePlan
from restyle.errors import NumericalError
from restyle.lbfgs import CompactLBFGS
from restyle.progress import Progress, ProgressCallback

LossAndGrad = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]]
"""A (1, 3, H, W) image → its total loss, the loss's terms by name, and the gradient (each
detached): one evaluation of a scale's objective."""


class Reporter:
    """Turns per-step losses into Progress reports, syncing with the device only when reporting."""

    def __init__(
        self,
        *,
        total: int,
        scales: int,
        callback: ProgressCallback | None,
        every: int,
        preview_every: int,
        started: float | None = None,
        time_limit: float = 0.0,
    ) -> None:
        self.planned, self.scales, self.callback = total, scales, callback
        self.every, self.preview_every = every, preview_every
        self.step, self.scale, self.size = 0, 1, (0, 0)
        self.start = time.perf_counter() if started is None else started
        self.time_limit = time_limit
        self.reported = (0, 0)  # (step, total) of the last report sent
        self.last: tuple[torch.Tensor, list[str], torch.Tensor] | None = None  # the last step
        self.scale_began = (time.perf_counter(), 0)  # (when, step) the scale's steps began

    @property
    def total(self) -> int:
        """The steps the run will take: as planned, or under a time limit the steps so far
        plus as many more as the time left holds at this scale's pace (never over the plan)."""
        if not self.time_limit or self.step == 0:
            return self.planned
        now = time.perf_counter()
        began, first = self.scale_began
        done = self.step - first
        if done <= 0:
            return self.planned
        pace = (now - began) / done
        left = self.start + self.time_limit - now
        return min(self.planned, self.step + max(0, math.floor(left / pace)))

    def start_scale(self, scale: int, size: tuple[int, int]) -> None:
        self.scale, self.size = scale, size
        self.scale_began = (time.perf_counter(), self.step)

    def __call__(self, values: torch.Tensor, names: list[str], image: torch.Tensor) -> None:
        """`values` holds the total loss then one entry per name in `names`."""
        self.step += 1
        if self.callback is None:
            return
        self.last = (values, names, image)
        total = self.total
        if self.step % self.every and self.step != total:
            return
        self._send(values, names, image, total)

    def finish(self) -> None:
        """A scale ended; at the last one's end, a time limit may have stopped the run short
        of its planned steps: the last report then says so (`step == total`)."""
        if self.scale != self.scales:
            return
        self.planned = self.step
        if self.last is not None and self.reported != (self.step, self.step):
            self._send(*self.last, self.step)

    def _send(
        self, values: torch.Tensor, names: list[str], image: torch.Tensor, total: int
    ) -> None:
        assert self.callback is not None
        preview = None
        if self.preview_every and (self.step % self.preview_every == 0 or self.step == total):
            preview = image.detach().clamp(0, 1).float().cpu()
        loss, *terms = values.float().cpu().tolist()
        if not math.isfinite(loss):
            raise _diverged(loss, self)
        self.reported = (self.step, total)
        self.callback(
            Progress(
                step=self.step,
                total=total,
                loss=loss,
                elapsed=time.perf_counter() - self.start,
                losses=dict(zip(names, terms, strict=True)),
                scale=self.scale,
                scales=self.scales,
                size=self.size,
                preview=preview,
                time_limit=self.time_limit,
            )
        )


class Budget:
    """A run's time limit shared out over its scales (no limit: every scale runs all its steps).

    A scale's share of the time left is its share of the work left (pixels x (steps + 2): its
    targets and first evaluation cost about two steps). Setting a scale up is timed, so a later
    coarse scale that the time left cannot set up is skipped rather than overrun the limit; the
    final scale is set up unless the time is already spent (its steps are what the limit buys).
    """

    def __init__(self, started: float, limit: float) -> None:
        self.deadline = started + limit if limit else None
        self.setup_per_pixel: float | None = None

    def affords(self, plan: ScalePlan, *, final: bool) -> bool:
        """Whether to set `plan`'s scale up: time is left, and for a coarse scale enough to set
        it up (by the last scale's setup time per pixel)."""
        if self.deadline is None:
            return True
        per_pixel = 0.0 if final else self.setup_per_pixel or 0.0
        setup = per_pixel * plan.size[0] * plan.size[1]
        return time.perf_counter() + setup < self.deadline

    def deadline_of(self, plans: Sequence[ScalePlan]) -> float | None:
        """When the first of `plans` (the scales left) must stop stepping."""
        if self.deadline is None:
            return None
        now = time.perf_counter()

        def work(plan: ScalePlan) -> float:
            return float(plan.size[0] * plan.size[1] * (plan.iterations + 2))

        share = work(plans[0]) / sum(work(p) for p in plans)
        return now + max(self.deadline - now, 0.0) * share

    def set_up(self, plan: ScalePlan, seconds: float) -> None:
        """`plan`'s scale took `seconds` from its start to its first step."""
        self.setup_per_pixel = seconds / (plan.size[0] * plan.size[1])


class StepClock:
    """Whether one more step fits before a scale's deadline, judged by the pace of its steps
    so far (a run without a time limit: always). On CUDA a timed step waits for the device,
    so the pace is the device's, not the launch queue's."""

    def __init__(self, deadline: float | None, device: torch.device) -> None:
        self.deadline = deadline
        self.sync = device.type == "cuda" and deadline is not None
        self.last = self.steps_began = self._now()
        self.pace: float | None = None
        self.recent: collections.deque[float] = collections.deque(maxlen=3)  # step times

    def _now(self) -> float:
        if self.sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def evaluated(self) -> None:
        """The scale's first evaluation is done: one step takes about as long."""
        now = self._now()
        self.pace, self.last, self.steps_began = now - self.last, now, now

    def stepped(self) -> None:
        if self.deadline is not None:
            now = self._now()
            self.recent.append(now - self.last)
            self.last = now
            # The median of the last three steps: a busy machine's steps jitter, and one slow
            # (or quick) step should not stop the run early (or late).
            self.pace = statistics.median(self.recent)

    def room(self) -> bool:
        """Whether a step started now would end by the deadline."""
        if self.deadline is None:
            return True
        return self._now() + (self.pace or 0.0) <= self.deadline


class LbfgsLoop:
    """One scale's L-BFGS optimisation as a fixed sequence of device operations.

    All state lives in tensors allocated up front and updated in place, so `step` can be
    recorded as a CUDA graph and replayed.
    """

    def __init__(
        self,
        loss_and_grad: LossAndGrad,
        image: torch.Tensor,
        *,
        history: int,
        lr: float,
        max_step: float,
    ) -> None:
        self.loss_and_grad, self.shape = loss_and_grad, image.shape
        self.x = image.detach().reshape(-1).clone()  # (3*H*W,)
        self.lbfgs = CompactLBFGS(
            self.x.numel(), history=history, lr=lr, max_step=max_step, device=self.x.device
        )
        total, terms, grad = loss_and_grad(self.image)
        self.names = list(terms)
        self.values = torch.stack([total, *terms.values()])  # (1 + terms,)
        self.grad = grad.reshape(-1).clone()

    @property
    def image(self) -> torch.Tensor:
        return self.x.view(self.shape)

    def step(self) -> None:
        s = self.lbfgs.step(self.grad)
        x_new = self.x + s
        total, terms, new_grad = self.loss_and_grad(x_new.view(self.shape))
        new_grad = new_grad.reshape(-1)
        self.lbfgs.update(s, new_grad - self.grad)
        self.x.copy_(x_new)
        self.grad.copy_(new_grad)
        self.values.copy_(torch.stack([total, *terms.values()]))


_GRAPH_WARMUP_STEPS = 3


@contextlib.contextmanager
def tf32_matmuls(enabled: bool) -> Iterator[None]:
    """Let float32 matmuls (the Gram matrices) use TF32 tensor cores while running.

    In bfloat16 mode the Grams are still float32 (see `GatysRun._features`), and in plain
    float32 they cost more GPU time than VGG19's convolutions at 512 px (measured on an H100).
    TF32 keeps float32 range with a 10-bit mantissa, ample next to bf16 features. PyTorch only
    offers this as a process-wide flag, so it is set for the run and restored after;
    precision="float32" leaves it alone.
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


def run_with_cuda_graph(
    loop: LbfgsLoop, iterations: int, report: Reporter, clock: StepClock
) -> None:
    """Run `iterations` steps, replaying one recorded CUDA graph after a few eager ones.

    Eager PyTorch spends ~8 ms of host time per step launching ~250 small kernels (measured on
    an H100 at 512 px), several times the GPU's own work; a graph replay launches them all at
    once. The warm-up steps are real steps (CUDA graphs need them on a side stream first).
    """
    warmup = min(_GRAPH_WARMUP_STEPS, iterations)
    side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
    side.wait_stream(torch.cuda.current_stream())
    done = 0
    with torch.cuda.stream(side):
        while done < warmup and clock.room():
            loop.step()
            clock.stepped()
            report(loop.values, loop.names, loop.image)
            done += 1
    torch.cuda.current_stream().wait_stream(side)
    if done == iterations or not clock.room():
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
        for _ in range(iterations - done):
            if not clock.room():
                return
            loop.step()
            clock.stepped()
            report(loop.values, loop.names, loop.image)
        return
    for _ in range(iterations - done):
        if not clock.room():
            return
        graph.replay()
        clock.stepped()
        report(loop.values, loop.names, loop.image)


def check_finite(values: torch.Tensor, report: Reporter) -> None:
    # One host sync per scale, so a diverged run fails loudly instead of returning a clamped
    # image of garbage.
    loss = values[0].item()
    if not math.isfinite(loss):
        raise _diverged(loss, report)


def _diverged(loss: float, report: Reporter) -> NumericalError:
    return NumericalError(
        f"optimisation diverged: loss became {loss} by step {report.step} (scale "
        f"{report.scale} of {report.scales}); try a smaller learning_rate or max_step"
    )
