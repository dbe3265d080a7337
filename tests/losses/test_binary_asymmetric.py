"""asymmetric_loss's fused closed-form kernel against its plain formula (issue 2).

The plain formula (``_asymmetric_plain``: log-space terms differentiated by autograd) is the
definition; the fused block kernel computes the same value and a closed-form gradient. Independent
references for the loss itself (timm's formula, golden values) live in test_binary.py.
"""

from __future__ import annotations

import pytest
import torch

import lossforge.functional as LF
from lossforge.losses import _binary, _fused

F64 = torch.float64
N = 2 * _fused.BLOCK_ELEMENTS + 33

PARAMS = [
    {},  # the paper's: gamma_pos=0, gamma_neg=4, clip=0.05
    {"gamma_pos": 1.0, "gamma_neg": 0.5, "clip": 0.0},
    {"gamma_pos": 0.5, "gamma_neg": 2.0, "clip": 0.2},
    {"gamma_pos": 0.0, "gamma_neg": 0.0, "clip": 0.0},
    {"gamma_pos": 2.0, "gamma_neg": 0.0, "clip": 0.1},
    {"gamma_neg": 0.5, "clip": 0.3},
    {"gamma_neg": 1.0, "clip": 0.05},
    {"gamma_pos": 3.0, "gamma_neg": 2.0, "clip": 0.0},
]


def _full(kwargs: dict) -> tuple[float, float, float]:
    return (float(kwargs.get("gamma_pos", 0.0)), float(kwargs.get("gamma_neg", 4.0)), float(kwargs.get("clip", 0.05)))


def _inputs(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, generator=g, dtype=dtype) * 4
    x[:10] = torch.tensor([1e4, -1e4, 100.0, -100.0, 30.0, -30.0, 0.0, 1e-30, -2.9444, 2.9444], dtype=dtype)
    t = (torch.rand(N, generator=g) > 0.5).to(dtype)
    t[1000:2000] = torch.rand(1000, generator=g, dtype=dtype)  # soft targets mix the two terms
    return x, t


@pytest.mark.parametrize("kwargs", PARAMS, ids=str)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_fused_equals_plain_formula_float64(kwargs, reduction):
    x, t = _inputs(F64)
    a = x.clone().requires_grad_(True)
    out = LF.asymmetric_loss(a, t, reduction=reduction, **kwargs)
    (out.sum() if reduction == "none" else out).backward()
    b = x.clone().requires_grad_(True)
    u = _binary._asymmetric_plain(b, t, None, *_full(kwargs))
    ref = {"none": u, "mean": u.mean(), "sum": u.sum()}[reduction]
    (ref.sum() if reduction == "none" else ref).backward()
    torch.testing.assert_close(out, ref.detach(), rtol=1e-10, atol=1e-300)
    # atol: autograd's sigmoid backward forms 1 - sigma(x), which cancels for large logits (the kernel
    # uses sigma(-x)): the plain formula's gradient is the less precise one there
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-14)
    assert torch.isfinite(a.grad).all()


@pytest.mark.parametrize("kwargs", PARAMS, ids=str)
def test_fused_float32_gradient_is_as_close_to_float64_as_autograd(kwargs):
    x, t = _inputs(torch.float32)
    a = x.clone().requires_grad_(True)
    LF.asymmetric_loss(a, t, reduction="sum", **kwargs).backward()
    b = x.clone().requires_grad_(True)
    _binary._asymmetric_plain(b, t, None, *_full(kwargs)).sum().backward()
    c = x.double().requires_grad_(True)
    _binary._asymmetric_plain(c, t.double(), None, *_full(kwargs)).sum().backward()
    fused_err = (a.grad.double() - c.grad).abs().max()
    plain_err = (b.grad.double() - c.grad).abs().max()
    assert fused_err <= max(2 * plain_err, 1e-6), (fused_err, plain_err)
    value = LF.asymmetric_loss(x, t, reduction="none", **kwargs)
    torch.testing.assert_close(value.double(), _binary._asymmetric_plain(x.double(), t.double(), None, *_full(kwargs)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", PARAMS[:6], ids=str)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_gradcheck_float64(kwargs, reduction):
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(40, generator=g, dtype=F64) * 3).requires_grad_(True)
    t = (torch.rand(40, generator=g) > 0.5).to(F64)
    t[:6] = torch.rand(6, generator=g, dtype=F64)
    fn = lambda z: LF.asymmetric_loss(z, t, reduction=reduction, **kwargs)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_target_gradient_takes_the_plain_formula():
    x, t = _inputs(F64)
    x, t = x[:500], t[:500].clone().requires_grad_(True)
    (gt,) = torch.autograd.grad(LF.asymmetric_loss(x, t), t)
    t2 = t.detach().clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(_binary._asymmetric_plain(x, t2, None, *_full({})).mean(), t2)
    torch.testing.assert_close(gt, ref, rtol=1e-12, atol=0)


def test_masked_and_weighted_reductions_use_the_one_mechanism():
    x, t = _inputs(F64)
    u = LF.asymmetric_loss(x, t, reduction="none")
    w = torch.rand(N, dtype=F64)
    m = torch.rand(N) > 0.5
    torch.testing.assert_close(LF.asymmetric_loss(x, t, sample_weight=w), (u * w).sum() / w.sum())
    torch.testing.assert_close(LF.asymmetric_loss(x, t, mask=m, reduction="sum"), u[m].sum())


def test_clipped_easy_negatives_are_exactly_zero():
    x = torch.tensor([-10.0, -4.0, -3.0])  # sigmoid < 0.05: the shifted probability is 0
    out = LF.asymmetric_loss(x.clone().requires_grad_(True), torch.zeros(3), reduction="none")
    assert torch.equal(out.detach(), torch.zeros(3))
    a = x.clone().requires_grad_(True)
    LF.asymmetric_loss(a, torch.zeros(3), reduction="sum").backward()
    assert torch.equal(a.grad, torch.zeros(3))
