"""The compact L-BFGS against torch.optim.LBFGS, which uses the two-loop recursion."""

import pytest
import torch

from restyle.lbfgs import CompactLBFGS


def _rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return ((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def _quadratic(a: torch.Tensor, b: torch.Tensor):
    return lambda x: 0.5 * x @ a @ x - b @ x


def _run_compact(f, x0: torch.Tensor, steps: int, history: int) -> list[torch.Tensor]:
    x = x0.clone()
    opt = CompactLBFGS(x.numel(), history=history)

    def grad_at(x: torch.Tensor) -> torch.Tensor:
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(f(x), x)
        return g

    g, path = grad_at(x), []
    for _ in range(steps):
        s = opt.step(g)
        x = x + s
        new_g = grad_at(x)
        opt.update(s, new_g - g)
        g = new_g
        path.append(x.clone())
    return path


def _run_torch(f, x0: torch.Tensor, steps: int, history: int) -> list[torch.Tensor]:
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x], lr=1.0, max_iter=1, history_size=history, tolerance_grad=0, tolerance_change=0
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss

    path = []
    for _ in range(steps):
        opt.step(closure)
        path.append(x.detach().clone())
    return path


def test_matches_two_loop_recursion_on_quadratic() -> None:
    torch.manual_seed(0)
    n = 20
    m = torch.randn(n, n, dtype=torch.float64)
    a = (m @ m.T + n * torch.eye(n, dtype=torch.float64)).float()
    b = torch.randn(n)
    f = _quadratic(a, b)
    x0 = torch.randn(n)
    ours = _run_compact(f, x0, steps=15, history=5)
    ref = _run_torch(f, x0, steps=15, history=5)
    for step, (p, q) in enumerate(zip(ours, ref, strict=True)):
        assert torch.allclose(p, q, rtol=1e-3, atol=1e-4), f"diverged at step {step}"
    solution = torch.linalg.solve(a, b)
    assert torch.allclose(ours[-1], solution, atol=1e-3)


def test_matches_torch_on_rosenbrock_with_ring_wraparound() -> None:
    x0 = torch.tensor([-1.2, 1.0, -0.5, 0.8], dtype=torch.float64).float()
    ours = _run_compact(_rosenbrock, x0, steps=12, history=3)  # history wraps 4 times
    ref = _run_torch(_rosenbrock, x0, steps=12, history=3)
    for p, q in zip(ours, ref, strict=True):
        assert torch.allclose(p, q, rtol=1e-3, atol=1e-3)
    assert _rosenbrock(ours[-1]) < _rosenbrock(x0)


def test_max_step_caps_the_largest_change() -> None:
    opt = CompactLBFGS(4, history=2, max_step=0.1)
    s = opt.step(torch.tensor([100.0, -5.0, 0.0, 1.0]))
    assert s.abs().max().item() == pytest.approx(0.1)
    unbounded = CompactLBFGS(4, history=2).step(torch.tensor([100.0, -5.0, 0.0, 1.0]))
    assert torch.allclose(s / s.abs().max(), unbounded / unbounded.abs().max())


def test_damping_keeps_direction_finite_for_non_convex_pair() -> None:
    opt = CompactLBFGS(3, history=4)
    s = torch.tensor([1.0, 0.0, 0.0])
    opt.update(s, -s)  # negative curvature: a two-loop update would be skipped
    d = opt.direction(torch.tensor([1.0, 1.0, 1.0]))
    assert torch.isfinite(d).all()
