"""The gatys engine's optimisation loop: L-BFGS as a fixed sequence of device operations (on
CUDA, one step recorded as a CUDA graph and replayed), and the progress reports of a run.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterator

import torch

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


def run_with_cuda_graph(loop: LbfgsLoop, iterations: int, report: Reporter) -> None:
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
