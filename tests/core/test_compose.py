"""Composition: +, *, flattening, naming, terms(), coefficients, refusal of non-scalar terms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lossforge as lf
import lossforge.functional as LF


def test_sum_and_scalar_product_flatten_and_name_terms():
    c = lf.MSELoss() + 0.5 * (lf.CrossEntropyLoss() + 2 * lf.MSELoss())
    assert list(c.coefficients) == ["mse", "cross_entropy", "mse_2"]
    assert list(c.coefficients.values()) == [1.0, 0.5, 1.0]
    assert len(c) == 3
    assert isinstance(c["cross_entropy"], lf.CrossEntropyLoss)
    assert list((lf.MSELoss() / 4).coefficients.values()) == [0.25]


def test_terms_from_one_forward_and_total_backpropagates():
    pred = torch.tensor([1.0, 3.0], requires_grad=True)
    target = torch.zeros(2)
    c = lf.MSELoss() + 0.25 * lf.MSELoss(reduction="sum")
    terms = c.terms(pred, target)
    # mse mean = (1 + 9) / 2 = 5; mse sum = 10; total = 5 + 0.25 * 10 = 7.5
    assert terms["mse"].item() == 5.0 and terms["mse_2"].item() == 10.0
    assert terms["total"].item() == 7.5
    terms["total"].backward()
    # d/dpred [mean(p^2) + 0.25 sum(p^2)] = p + 0.5 p
    assert torch.allclose(pred.grad, torch.tensor([1.5, 4.5]))


def test_coefficients_change_during_training():
    c = lf.MSELoss() + lf.MSELoss()
    c.set_coefficient("mse_2", 0.0)
    x = torch.tensor([2.0])
    assert c(x, torch.zeros(1)).item() == 4.0
    with pytest.raises(ValueError, match=r"name must be one of \('mse', 'mse_2'\), got 'ms'.*Did you mean"):
        c.set_coefficient("ms", 1.0)
    with pytest.raises(TypeError, match="coefficient must be a finite float or int"):
        c.set_coefficient("mse", float("nan"))


def test_call_time_mask_is_passed_to_every_term():
    c = lf.MSELoss() + lf.MSELoss(reduction="sum")
    pred, target = torch.tensor([1.0, 100.0]), torch.zeros(2)
    m = torch.tensor([True, False])
    terms = c.terms(pred, target, mask=m)
    assert terms["mse"].item() == 1.0 and terms["mse_2"].item() == 1.0


def test_non_scalar_terms_refused_at_construction():
    with pytest.raises(ValueError, match=r"term 'mse' must reduce to a scalar, got reduction='none'"):
        _ = lf.MSELoss() + lf.MSELoss(reduction="none")


def test_non_number_coefficient_refused():
    with pytest.raises(TypeError, match="coefficient must be a finite float or int, got 'a'"):
        _ = "a" * lf.MSELoss()  # type: ignore[operator]
    with pytest.raises(TypeError, match="coefficient must be a finite float or int"):
        _ = lf.MSELoss() * torch.tensor(2.0)


def test_plain_torch_modules_and_functions_compose():
    c = lf.MSELoss() + nn.L1Loss()
    assert list(c.coefficients) == ["mse", "l1"]
    c2 = sum([lf.MSELoss(), lf.MSELoss()])
    assert isinstance(c2, lf.WeightedSum)

    def my_penalty(pred, target):
        return pred.abs().mean()

    c3 = lf.MSELoss() + my_penalty
    assert list(c3.coefficients) == ["mse", "my_penalty"]
    assert c3(torch.tensor([2.0]), torch.zeros(1)).item() == 6.0


def test_composite_is_a_module_with_state_dict_and_repr():
    c = lf.CrossEntropyLoss(class_weight=torch.tensor([1.0, 2.0])) + 0.5 * lf.MSELoss()
    assert "losses.cross_entropy.class_weight" in c.state_dict()
    assert "1*cross_entropy + 0.5*mse" in repr(c)


def test_functional_reexports_match_modules():
    x, t = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.equal(lf.MSELoss()(x, t), LF.mse_loss(x, t))


def test_uncertainty_weighting_formula_and_learning():
    uw = lf.UncertaintyWeighting(2, kinds=["regression", "classification"], init_log_var=0.5)
    l1, l2 = torch.tensor(2.0), torch.tensor(3.0)
    s = 0.5
    expected = 0.5 * torch.exp(torch.tensor(-s)) * 2.0 + 0.5 * s + torch.exp(torch.tensor(-s)) * 3.0 + 0.5 * s
    assert torch.allclose(uw(l1, l2), expected)
    opt = torch.optim.SGD(uw.parameters(), lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        uw(l1, l2).backward()
        opt.step()
    # optimum of 0.5 e^{-s} L + 0.5 s is s = log L (regression); e^{-s} L + 0.5 s -> s = log 2L
    assert torch.allclose(uw.log_vars.detach(), torch.log(torch.tensor([2.0, 6.0])), atol=1e-2)
    assert set(uw.weights()) == {"task0", "task1"}


def test_uncertainty_weighting_errors():
    with pytest.raises(ValueError, match=r"losses must be 2 scalars, got 1"):
        lf.UncertaintyWeighting(2)(torch.tensor(1.0))
    with pytest.raises(ValueError, match=r"kinds must hold 'regression' or 'classification', got 'reg'"):
        lf.UncertaintyWeighting(1, kinds=["reg"])
    uw = lf.UncertaintyWeighting(["a", "b"])
    assert uw(a=torch.tensor(1.0), b=torch.tensor(1.0)).item() == pytest.approx(1.0)
