"""The fused plain-mean/sum path of the residual losses (``losses/_fused.reduced``, issue 2).

A ``"mean"`` or ``"sum"`` with no weight and no mask never forms the unreduced loss: block sums in the
forward pass, the gradient written there too. These tests hold it to ``reduce_loss`` applied to the
unreduced loss (the ``"none"`` path) and to float64 references, over inputs of many blocks.
"""

from __future__ import annotations

import math

import pytest
import torch

import lossforge.functional as LF
from lossforge.losses import _fused

F64 = torch.float64
# several blocks and a ragged last one
N = 3 * _fused.BLOCK_ELEMENTS + 17

CASES = [
    (LF.mse_loss, {}),
    (LF.l1_loss, {}),
    (LF.huber_loss, {"delta": 0.7}),
    (LF.smooth_l1_loss, {"beta": 0.5}),
    (LF.smooth_l1_loss, {"beta": 0.0}),
    (LF.log_cosh_loss, {}),
    (LF.charbonnier_loss, {"eps": 0.1}),
    (LF.charbonnier_loss, {"eps": 1e-30}),  # no shortcut for such an eps: the block kernel's sum
    (LF.cauchy_loss, {"scale": 0.7}),
    (LF.welsch_loss, {"scale": 1.3}),
    (LF.geman_mcclure_loss, {}),  # block sums derived from the block kernel
    (LF.tukey_biweight_loss, {}),
    (LF.wing_loss, {}),
]
IDS = [f"{fn.__name__}{kw}" for fn, kw in CASES]


# welsch's block sum forms e^q as 1 + expm1(q), as autograd of its plain formula does: where e^q is
# tiny the gradient has an absolute error of a few units in the last place of 1 times |d| / c^2
_WELSCH_ATOL = {torch.float64: 1e-14, torch.float32: 2e-5}


def _inputs(dtype: torch.dtype, *, huge: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(N, generator=g, dtype=dtype) * 3
    target = torch.randn(N, generator=g, dtype=dtype)
    if huge:  # residuals whose square overflows, in the second block only
        big = 1e30 if dtype == torch.float32 else 1e300
        pred[_fused.BLOCK_ELEMENTS + 5: _fused.BLOCK_ELEMENTS + 8] = torch.tensor([big, -big, 1e25], dtype=dtype)
    return pred, target


def _value_and_grads(fn, kwargs, pred, target, reduction):
    p, t = pred.clone().requires_grad_(True), target.clone().requires_grad_(True)
    if reduction == "none-mean":
        out = fn(p, t, reduction="none", **kwargs).mean()
    elif reduction == "none-sum":
        out = fn(p, t, reduction="none", **kwargs).sum()
    else:
        out = fn(p, t, reduction=reduction, **kwargs)
    out.backward()
    return out.detach(), p.grad, t.grad


@pytest.mark.parametrize(("fn", "kwargs"), CASES, ids=IDS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("huge", [False, True])
def test_reduced_equals_the_unreduced_loss_reduced(fn, kwargs, reduction, huge):
    if huge and fn is LF.mse_loss:
        pytest.skip("the squared error itself overflows")
    pred, target = _inputs(F64, huge=huge)
    value, gp, gt = _value_and_grads(fn, kwargs, pred, target, reduction)
    ref, rp, rt = _value_and_grads(fn, kwargs, pred, target, f"none-{reduction}")
    torch.testing.assert_close(value, ref, rtol=1e-12, atol=0)
    atol = _WELSCH_ATOL[pred.dtype] * float(rp.abs().max()) if fn is LF.welsch_loss else 1e-300
    torch.testing.assert_close(gp, rp, rtol=1e-12, atol=atol)
    torch.testing.assert_close(gt, rt, rtol=1e-12, atol=atol)
    assert torch.equal(gt, -gp)


@pytest.mark.parametrize(("fn", "kwargs"), CASES, ids=IDS)
@pytest.mark.parametrize("huge", [False, True])
def test_reduced_float32_against_float64(fn, kwargs, huge):
    if huge and fn is LF.mse_loss:
        pytest.skip("the squared error itself overflows")
    pred, target = _inputs(torch.float32, huge=huge)
    value, gp, _ = _value_and_grads(fn, kwargs, pred, target, "mean")
    ref, rp, _ = _value_and_grads(fn, kwargs, pred.double(), target.double(), "none-mean")
    assert value.dtype == torch.float32 and torch.isfinite(value) and torch.isfinite(gp).all()
    torch.testing.assert_close(value.double(), ref, rtol=2e-6, atol=0)
    atol = _WELSCH_ATOL[torch.float32] if fn is LF.welsch_loss else 1e-7
    torch.testing.assert_close(gp.double(), rp, rtol=1e-5, atol=atol * float(rp.abs().max()))


@pytest.mark.parametrize(("fn", "kwargs"), [(LF.log_cosh_loss, {}), (LF.cauchy_loss, {}), (LF.welsch_loss, {}),
                                            (LF.charbonnier_loss, {}), (LF.mse_loss, {}), (LF.huber_loss, {})])
def test_reduced_mean_of_tiny_residuals_keeps_relative_precision(fn, kwargs):
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(N, generator=g) * 1e-3
    target = torch.zeros(N)
    value = fn(pred, target, **kwargs)
    ref = fn(pred.double(), target.double(), reduction="none", **kwargs).mean()
    torch.testing.assert_close(value.double(), ref, rtol=1e-5, atol=0)


def test_log_cosh_reduced_gradient_is_tanh():
    x = torch.cat([torch.logspace(-6, 2.5, N // 2), -torch.logspace(-6, 2.5, N - N // 2)])
    p = x.clone().requires_grad_(True)
    LF.log_cosh_loss(p, torch.zeros_like(x), reduction="sum").backward()
    torch.testing.assert_close(p.grad, torch.tanh(x), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("fn", "kwargs"), [*CASES[:8:2], (LF.cauchy_loss, {}), (LF.welsch_loss, {})])
def test_reduced_backward_scales_retains_and_double_backward(fn, kwargs):
    pred, target = _inputs(F64)
    p, t = pred.clone().requires_grad_(True), target.clone().requires_grad_(True)
    out = 0.25 * fn(p, t, **kwargs)
    first = torch.autograd.grad(out, (p, t), retain_graph=True)
    second = torch.autograd.grad(out, (p, t), retain_graph=True)  # the buffer was handed out: recomputed
    ref = 0.25 * fn(p, t, reduction="none", **kwargs).mean()
    expected = torch.autograd.grad(ref, (p, t), create_graph=True)
    for a, b, c in zip(first, second, expected):
        assert torch.equal(a, b)
        # atol: torch's expm1 backward forms exp(q) as expm1(q) + 1 (welsch's plain formula), which loses
        # the relative precision of gradients below ~1e-16
        torch.testing.assert_close(a, c.detach(), rtol=1e-12, atol=1e-16)
    # create_graph: the plain formula's derivative, itself differentiable
    (gp,) = torch.autograd.grad(out, p, create_graph=True)
    hvp = torch.autograd.grad(gp.sum(), p, allow_unused=True)[0]
    hvp_ref = torch.autograd.grad(expected[0].sum(), p, allow_unused=True)[0]
    if hvp_ref is None:
        assert hvp is None or torch.all(hvp == 0)
    else:
        torch.testing.assert_close(hvp, hvp_ref, rtol=1e-10, atol=1e-300)


def test_reduced_gradient_of_the_target_alone():
    pred, target = _inputs(F64)
    t = target.clone().requires_grad_(True)
    (gt,) = torch.autograd.grad(LF.cauchy_loss(pred, t, reduction="sum"), t)
    t2 = target.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(LF.cauchy_loss(pred, t2, reduction="none").sum(), t2)
    torch.testing.assert_close(gt, ref, rtol=1e-12, atol=0)


def test_reduced_is_deterministic_and_thread_count_independent():
    pred, target = _inputs(torch.float32)
    p = pred.clone().requires_grad_(True)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (threads, 1, threads):
            torch.set_num_threads(n)
            p.grad = None
            out = LF.log_cosh_loss(p, target)
            out.backward()
            results.append((out.detach(), p.grad.clone()))
    finally:
        torch.set_num_threads(threads)
    for value, grad in results[1:]:
        assert torch.equal(value, results[0][0]) and torch.equal(grad, results[0][1])


def test_reduced_without_grad_and_under_inference_mode():
    pred, target = _inputs(F64)
    ref = LF.huber_loss(pred, target, reduction="none").mean()
    with torch.no_grad():
        torch.testing.assert_close(LF.huber_loss(pred.requires_grad_(True), target), ref, rtol=1e-12, atol=0)
    with torch.inference_mode():
        torch.testing.assert_close(LF.huber_loss(pred, target), ref, rtol=1e-12, atol=0)


def test_weights_masks_and_non_contiguous_inputs_keep_the_one_mechanism():
    g = torch.Generator().manual_seed(2)
    pred = torch.randn(64, 2 * _fused.BLOCK_ELEMENTS // 64 + 3, generator=g, dtype=F64)
    target = torch.randn(pred.shape, generator=g, dtype=F64)
    u = LF.cauchy_loss(pred, target, reduction="none")
    w = torch.rand(64, 1, generator=g, dtype=F64)
    m = torch.rand(pred.shape, generator=g) > 0.3
    torch.testing.assert_close(LF.cauchy_loss(pred, target, sample_weight=w), (u * w).sum() / w.expand_as(u).sum())
    torch.testing.assert_close(LF.cauchy_loss(pred, target, mask=m, reduction="sum"), u[m].sum())
    pt, tt = pred.t(), target.t()  # non-contiguous
    torch.testing.assert_close(LF.cauchy_loss(pt, tt), u.mean(), rtol=1e-12, atol=0)


def test_empty_input_keeps_the_empty_policy():
    p = torch.zeros(0, requires_grad=True)
    out = LF.log_cosh_loss(p, torch.zeros(0))
    assert out.item() == 0.0
    out.backward()
    assert p.grad is not None and p.grad.shape == (0,)


def test_func_transforms_use_the_plain_formula():
    pred, target = _inputs(F64)
    pred, target = pred[:100], target[:100]
    grad = torch.func.grad(lambda p: LF.welsch_loss(p, target))(pred)
    p = pred.clone().requires_grad_(True)
    LF.welsch_loss(p, target, reduction="mean").backward()
    torch.testing.assert_close(grad, p.grad, rtol=1e-12, atol=1e-16)  # atol: see above
    assert math.isfinite(float(LF.welsch_loss(pred, target)))
