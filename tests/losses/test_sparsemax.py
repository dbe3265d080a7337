"""Sparsemax loss against a float64 loop of the paper's formula, and its gradient p - e_y."""

from __future__ import annotations

import pytest
import torch

import lossforge as lf
from lossforge.functional import sparsemax_loss


def _sparsemax(z: list[float]) -> tuple[list[float], float]:
    """Sparsemax and its threshold by the paper's algorithm (sort, then the largest valid prefix)."""
    ranked = sorted(z, reverse=True)
    total, size, tau_sum = 0.0, 0, 0.0
    for k, v in enumerate(ranked, start=1):
        total += v
        if 1 + k * v > total:
            size, tau_sum = k, total
    tau = (tau_sum - 1) / size
    return [max(v - tau, 0.0) for v in z], tau


def test_matches_the_paper_formula() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 6, dtype=torch.float64, generator=g) * 1.5
    y = torch.randint(0, 6, (12,), generator=g)
    u = sparsemax_loss(x, y, reduction="none")
    for n in range(12):
        z = x[n].tolist()
        _, tau = _sparsemax(z)
        ref = 0.5 * sum(v * v - tau * tau for v in z if v > tau) + 0.5 - z[int(y[n])]
        assert float(u[n]) == pytest.approx(ref, rel=1e-10, abs=1e-12)


def test_gradient_is_sparsemax_minus_one_hot() -> None:
    x = (torch.randn(10, 5, dtype=torch.float64) * 2).requires_grad_()
    y = torch.randint(0, 5, (10,))
    (grad,) = torch.autograd.grad(sparsemax_loss(x, y, reduction="sum"), x)
    for n in range(10):
        p, _ = _sparsemax(x[n].tolist())
        expected = torch.tensor(p, dtype=torch.float64)
        expected[int(y[n])] -= 1
        torch.testing.assert_close(grad[n], expected)


def test_zero_when_the_target_wins_by_a_margin_of_one_and_finite_at_extremes() -> None:
    x = torch.tensor([[3.0, 1.9, -5.0], [1e4, -1e4, 0.0]], requires_grad=True)
    u = sparsemax_loss(x, torch.tensor([0, 0]), reduction="none")
    assert float(u.detach().abs().max()) == 0.0
    big = sparsemax_loss(x, torch.tensor([1, 1]), reduction="none")
    assert float(big[1].detach()) == pytest.approx(2e4, rel=1e-6)  # sparsemax = e_0, so U = z_0 - z_1
    big.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_spatial_ignore_index_and_module() -> None:
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    y = torch.randint(0, 4, (2, 3, 3))
    flat = sparsemax_loss(x.permute(0, 2, 3, 1).reshape(-1, 4), y.reshape(-1), reduction="none")
    torch.testing.assert_close(sparsemax_loss(x, y, reduction="none").reshape(-1), flat)
    ignored = y.clone()
    ignored[0] = -100
    torch.testing.assert_close(sparsemax_loss(x, ignored), flat[9:].mean())
    torch.testing.assert_close(lf.SparsemaxLoss()(x, y), flat.mean())
