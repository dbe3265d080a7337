"""The one reduction mechanism: semantics, empty policy, weights, masks, errors."""

from __future__ import annotations

import pytest
import torch

from lossforge import ShapeError, reduce_loss
from lossforge._core.reduction import ignore_index_mask


def test_plain_reductions():
    u = torch.tensor([1.0, 2.0, 6.0])
    assert torch.equal(reduce_loss(u, "none"), u)
    assert reduce_loss(u, "sum").item() == 9.0
    assert reduce_loss(u, "mean").item() == 3.0


def test_weighted_mean_divides_by_weight_sum():
    u = torch.tensor([1.0, 2.0, 6.0])
    w = torch.tensor([1.0, 0.0, 3.0])
    # (1*1 + 6*3) / (1 + 3) = 19 / 4
    assert reduce_loss(u, "mean", sample_weight=w).item() == pytest.approx(4.75)
    assert reduce_loss(u, "sum", sample_weight=w).item() == pytest.approx(19.0)
    assert torch.equal(reduce_loss(u, "none", sample_weight=w), torch.tensor([1.0, 0.0, 18.0]))


def test_mask_is_subset():
    u = torch.randn(5, 4).abs()
    m = torch.rand(5, 4) > 0.5
    assert torch.allclose(reduce_loss(u, "mean", mask=m), u[m].mean())
    assert torch.allclose(reduce_loss(u, "sum", mask=m), u[m].sum())


def test_per_unit_weight_broadcasts_over_trailing_dims():
    u = torch.ones(2, 3)
    w = torch.tensor([[1.0], [3.0]])
    assert reduce_loss(u, "mean", sample_weight=w).item() == pytest.approx(1.0)
    assert reduce_loss(u, "sum", sample_weight=w).item() == pytest.approx(12.0)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_empty_policy_all_masked_is_zero_with_finite_zero_grad(reduction):
    x = torch.randn(4, requires_grad=True)
    u = x.exp()
    out = reduce_loss(u, reduction, mask=torch.zeros(4, dtype=torch.bool))
    assert out.item() == 0.0 and out.requires_grad
    out.backward()
    assert torch.equal(x.grad, torch.zeros(4))


def test_empty_policy_n0():
    x = torch.randn(0, 3, requires_grad=True)
    out = reduce_loss(x.square(), "mean")
    assert out.item() == 0.0
    out.backward()
    assert x.grad.shape == (0, 3)
    assert reduce_loss(x.square(), "none").shape == (0, 3)


def test_masked_inf_does_not_poison_value():
    u = torch.tensor([1.0, float("inf")])
    out = reduce_loss(u, "mean", mask=torch.tensor([True, False]))
    assert out.item() == 1.0


def test_keep_and_mean_weight():
    u = torch.tensor([2.0, 4.0, 8.0])
    keep = torch.tensor([True, True, False])
    # U already carries class weights; the denominator counts them: (2 + 4) / (0.5 + 1.5)
    out = reduce_loss(u, "mean", keep=keep, mean_weight=torch.tensor([0.5, 1.5, 7.0]))
    assert out.item() == pytest.approx(3.0)


@pytest.mark.parametrize("bad,match", [("avg", "Did you mean 'mean'"), ("batchmean", "Did you mean 'mean'"),
                                       ("summ", "Did you mean 'sum'"), (None, "reduction must be one of")])
def test_invalid_reduction(bad, match):
    with pytest.raises(ValueError, match=match):
        reduce_loss(torch.ones(2), bad)


def test_weight_that_would_broadcast_the_loss_is_refused():
    with pytest.raises(ShapeError, match=r"sample_weight must broadcast to the unreduced loss shape \(4,\)"):
        reduce_loss(torch.ones(4), "mean", sample_weight=torch.ones(4, 1))


def test_mask_must_be_bool():
    with pytest.raises(TypeError, match=r"mask must be a bool tensor .*got dtype torch.float32"):
        reduce_loss(torch.ones(4), "mean", mask=torch.ones(4))


def test_ignore_index_mask_sanitises_before_gather():
    t = torch.tensor([2, 255, 0])
    safe, keep = ignore_index_mask(t, 255)
    assert safe.tolist() == [2, 0, 0]
    assert keep.tolist() == [True, False, True]
    assert ignore_index_mask(t, None) == (t, None)
