"""Quality focal, ZLPR and soft F1 against float64 loops and closed forms."""

from __future__ import annotations

import math

import pytest
import torch

import lossforge as lf
from lossforge.functional import binary_focal_loss, quality_focal_loss, soft_f1_loss, zlpr_loss


def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_quality_focal_matches_the_formula() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, dtype=torch.float64, generator=g) * 3
    y = torch.rand(20, dtype=torch.float64, generator=g)
    u = quality_focal_loss(x, y, beta=2.0, reduction="none")
    for i in range(20):
        p, t = _sigmoid(float(x[i])), float(y[i])
        ref = abs(t - p) ** 2 * -(t * math.log(p) + (1 - t) * math.log(1 - p))
        assert float(u[i]) == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_quality_focal_on_hard_targets_is_focal_without_alpha() -> None:
    x = torch.randn(6, 4, dtype=torch.float64) * 2
    y = torch.randint(0, 2, (6, 4)).double()
    torch.testing.assert_close(quality_focal_loss(x, y, beta=2.0), binary_focal_loss(x, y, gamma=2.0, alpha=None))
    torch.testing.assert_close(quality_focal_loss(x, y, beta=0.0),
                               lf.functional.binary_cross_entropy_with_logits(x, y))


def test_quality_focal_is_zero_where_the_prediction_meets_the_target() -> None:
    x = torch.tensor([0.0, 1.5], dtype=torch.float64, requires_grad=True)
    y = torch.sigmoid(x.detach())
    out = quality_focal_loss(x, y, reduction="sum")
    out.backward()
    assert float(out.detach()) == pytest.approx(0.0, abs=1e-15)
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_zlpr_matches_a_loop() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 5, dtype=torch.float64, generator=g) * 2
    y = torch.randint(0, 2, (7, 5), generator=g).double()
    y[0] = 0
    u = zlpr_loss(x, y, reduction="none")
    for n in range(7):
        pos = sum(math.exp(-float(x[n, i])) for i in range(5) if y[n, i] == 1)
        neg = sum(math.exp(float(x[n, j])) for j in range(5) if y[n, j] == 0)
        assert float(u[n]) == pytest.approx(math.log1p(pos) + math.log1p(neg), rel=1e-12)


def test_zlpr_spatial_layout_is_per_position() -> None:
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    y = torch.randint(0, 2, (2, 3, 4, 5)).double()
    u = zlpr_loss(x, y, reduction="none")
    assert u.shape == (2, 4, 5)
    flat = zlpr_loss(x.permute(0, 2, 3, 1).reshape(-1, 3), y.permute(0, 2, 3, 1).reshape(-1, 3), reduction="none")
    torch.testing.assert_close(u.reshape(-1), flat)


def test_soft_f1_matches_the_counts() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(9, 3, dtype=torch.float64, generator=g)
    y = torch.randint(0, 2, (9, 3), generator=g).double()
    u = soft_f1_loss(x, y, reduction="none")
    p = torch.sigmoid(x)
    for c in range(3):
        tp = sum(float(p[n, c] * y[n, c]) for n in range(9))
        fp = sum(float(p[n, c] * (1 - y[n, c])) for n in range(9))
        fn = sum(float((1 - p[n, c]) * y[n, c]) for n in range(9))
        assert float(u[c]) == pytest.approx(1 - 2 * tp / (2 * tp + fp + fn), rel=1e-12)
    torch.testing.assert_close(soft_f1_loss(x, y), u.mean())


def test_soft_f1_confident_and_right_is_near_zero_and_empty_batch_is_zero() -> None:
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert float(soft_f1_loss((y * 2 - 1) * 20, y)) < 1e-6
    empty = torch.zeros(0, 2, requires_grad=True)
    out = soft_f1_loss(empty, torch.zeros(0, 2))
    out.backward()
    assert float(out.detach()) == 0.0 and empty.grad is not None


def test_registry_and_spec_strings() -> None:
    assert lf.get_loss("qfl").name == "quality_focal"
    loss = lf.build("zlpr + 0.5*soft_f1")
    x, y = torch.randn(4, 3), torch.randint(0, 2, (4, 3)).float()
    torch.testing.assert_close(loss(x, y), zlpr_loss(x, y) + 0.5 * soft_f1_loss(x, y))
