"""Margin losses: multi-class hinge against torch, binary hinge and squared hinge against closed forms.

References used here: ``torch.nn.functional.multi_margin_loss`` (p = 1, 2, margins, class weights),
a per-sample Python loop of its definition in float64 for ``(N, C, *)`` inputs, and the closed
forms ``max(0, m - y x)`` and its square with their (sub)gradients.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import lossforge as lf
import lossforge.functional as LF

REDUCTIONS = ("none", "mean", "sum")


def _index_data(n=9, c=5, *, dtype=torch.float32, seed=0, scale=1.5):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, c, generator=g, dtype=torch.float64) * scale).to(dtype)
    t = torch.randint(c, (n,), generator=g)
    return x, t


def _sign_data(shape=(7, 4), *, dtype=torch.float32, seed=0, scale=1.5):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    y = (2 * torch.randint(2, shape, generator=g) - 1).to(dtype)
    return x, y


def _value_and_grad(fn, x, *args, **kwargs):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args, **kwargs)
    (g,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), g


# ------------------------------------------------------------------------------------------------
# multi_margin_loss
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_multi_margin_matches_torch(p, margin, weighted):
    x, t = _index_data(seed=p)
    w = torch.tensor([0.5, 2.0, 1.0, 3.0, 0.25]) if weighted else None
    for r in ("none", "sum") if weighted else REDUCTIONS:
        got, g_got = _value_and_grad(LF.multi_margin_loss, x, t, p=p, margin=margin, class_weight=w, reduction=r)
        want, g_want = _value_and_grad(F.multi_margin_loss, x, t, p=p, margin=margin, weight=w, reduction=r)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(g_got, g_want)


def test_multi_margin_weighted_mean_divides_by_the_weights_used():
    """lossforge's class_weight rule (as cross_entropy): mean = torch's sum / sum_n w[y_n]; torch's own
    weighted mean divides by N instead (documented)."""
    x, t = _index_data()
    w = torch.tensor([0.5, 2.0, 1.0, 3.0, 0.25])
    got = LF.multi_margin_loss(x, t, class_weight=w)
    torch.testing.assert_close(got, F.multi_margin_loss(x, t, weight=w, reduction="sum") / w[t].sum())
    torch.testing.assert_close(LF.multi_margin_loss(x, t, class_weight=torch.full((5,), 7.0)),
                               F.multi_margin_loss(x, t))  # uniform weights change nothing


def _multi_margin_loop(x, t, p, margin):
    """The definition, one unit at a time, for logits (N, C, *) and targets (N, *), in float64."""
    x = x.double().movedim(1, -1).reshape(-1, x.shape[1])
    t = t.reshape(-1)
    out = []
    for xi, yi in zip(x, t.tolist()):
        total = 0.0
        for c in range(x.shape[1]):
            if c != yi:
                total += max(0.0, margin - float(xi[yi]) + float(xi[c])) ** p
        out.append(total / x.shape[1])
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin_spatial_matches_loop(p):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 3, 5, generator=g, dtype=torch.float64)
    t = torch.randint(4, (2, 3, 5), generator=g)
    got = LF.multi_margin_loss(x, t, p=p, margin=0.7, reduction="none")
    assert got.shape == (2, 3, 5)
    torch.testing.assert_close(got.reshape(-1), _multi_margin_loop(x, t, p, 0.7))


def test_multi_margin_ignore_index_is_the_subset():
    x, t = _index_data(12, 4)
    t[::3] = -100
    keep = t != -100
    for r in ("sum", "mean"):
        torch.testing.assert_close(LF.multi_margin_loss(x, t, reduction=r),
                                   F.multi_margin_loss(x[keep], t[keep], reduction=r))
    none = LF.multi_margin_loss(x, t, reduction="none")
    assert (none[~keep] == 0).all()


def test_multi_margin_all_ignored_and_empty():
    x, _ = _index_data(4, 3)
    xs = x.clone().requires_grad_(True)
    out = LF.multi_margin_loss(xs, torch.full((4,), -100))
    assert out.item() == 0.0
    (g,) = torch.autograd.grad(out, xs)
    assert (g == 0).all()
    xe = torch.zeros(0, 3, requires_grad=True)
    out = LF.multi_margin_loss(xe, torch.zeros(0, dtype=torch.long))
    assert out.item() == 0.0 and torch.autograd.grad(out, xe)[0].shape == (0, 3)
    assert LF.multi_margin_loss(xe, torch.zeros(0, dtype=torch.long), reduction="none").shape == (0,)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_multi_margin_extremes(dtype):
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=dtype, requires_grad=True)
    t = torch.tensor([0, 0])
    for p in (1, 2):
        u = LF.multi_margin_loss(x, t, p=p, reduction="none")
        assert u.dtype == torch.float32
        (g,) = torch.autograd.grad(u.sum(), x)
        assert torch.isfinite(u).all() and torch.isfinite(g).all() and g.dtype == dtype
        big = float(torch.tensor(1e4, dtype=dtype))
        want = [0.0, ((2 * big + 1) ** p + (big + 1) ** p) / 3]
        torch.testing.assert_close(u, torch.tensor(want), rtol=1e-5, atol=0.0)


def test_multi_margin_half_matches_float32():
    x, t = _index_data()
    for dtype in (torch.float16, torch.bfloat16):
        xh = x.to(dtype)
        got, g = _value_and_grad(LF.multi_margin_loss, xh, t, p=2, reduction="none")
        want, gw = _value_and_grad(LF.multi_margin_loss, xh.float(), t, p=2, reduction="none")
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(g, gw.to(dtype))


def test_multi_margin_gradcheck():
    x, t = _index_data(4, 3, dtype=torch.float64)
    for p in (1, 2):
        xs = x.clone().requires_grad_(True)
        assert torch.autograd.gradcheck(lambda a, p=p: LF.multi_margin_loss(a, t, p=p, margin=0.5, reduction="none"),
                                        (xs,))


def test_multi_margin_module_and_errors():
    x, t = _index_data(4, 3)
    w = torch.tensor([1.0, 2.0, 0.5])
    m = lf.MultiMarginLoss(p=2, margin=0.5, class_weight=w)
    assert "class_weight" in dict(m.named_buffers())
    torch.testing.assert_close(m(x, t), LF.multi_margin_loss(x, t, p=2, margin=0.5, class_weight=w))
    name = "multi_margin_loss"
    with pytest.raises(TypeError, match=rf"{name}: target must be an integer tensor of class indices"):
        LF.multi_margin_loss(x, t.float())
    with pytest.raises(lf.ShapeError, match=rf"{name}: target must have shape \(N, \*\) = \(4,\)"):
        LF.multi_margin_loss(x, t[:3])
    with pytest.raises(TypeError, match=rf"{name}: logits must be a floating-point tensor"):
        LF.multi_margin_loss(x.long(), t)
    with pytest.raises(ValueError, match=rf"{name}: target must hold class indices in \[0, 2\].*got class 3"):
        LF.multi_margin_loss(x, torch.tensor([0, 1, 3, 1]))
    with pytest.raises(ValueError, match=r"class_weight must have shape \(C,\) = \(3,\), got \(2,\)"):
        LF.multi_margin_loss(x, t, class_weight=torch.ones(2))
    with pytest.raises(ValueError, match=rf"{name}: p must be 1 or 2, got 3"):
        LF.multi_margin_loss(x, t, p=3)
    with pytest.raises(TypeError, match=rf"{name}: p must be the int 1 or 2, got 2.0"):
        lf.MultiMarginLoss(p=2.0)
    with pytest.raises(ValueError, match=rf"{name}: margin must be >= 0, got -1"):
        LF.multi_margin_loss(x, t, margin=-1)
    with pytest.raises(TypeError, match=r"weight= is not an argument.*class_weight="):
        LF.multi_margin_loss(x, t, weight=w)


# ------------------------------------------------------------------------------------------------
# hinge_loss, squared_hinge_loss
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("margin", [0.0, 0.5, 1.0, 2.0])
def test_hinge_closed_forms(margin):
    x, y = _sign_data(dtype=torch.float64)
    z = margin - y * x
    want = z.clamp_min(0)
    want_g = torch.where(z > 0, -y, torch.zeros_like(y))
    for r in REDUCTIONS:
        scale = {"none": 1.0, "sum": 1.0, "mean": 1.0 / x.numel()}[r]
        got, g = _value_and_grad(LF.hinge_loss, x, y, margin=margin, reduction=r)
        torch.testing.assert_close(got, {"none": want, "sum": want.sum(), "mean": want.mean()}[r])
        torch.testing.assert_close(g, want_g * scale)
        got2, g2 = _value_and_grad(LF.squared_hinge_loss, x, y, margin=margin, reduction=r)
        torch.testing.assert_close(got2, {"none": want**2, "sum": (want**2).sum(), "mean": (want**2).mean()}[r])
        torch.testing.assert_close(g2, -2 * y * want * scale)


def test_squared_hinge_is_hinge_squared_and_integer_labels_work():
    x, y = _sign_data((5, 3, 2))
    torch.testing.assert_close(LF.squared_hinge_loss(x, y, reduction="none"),
                               LF.hinge_loss(x, y, reduction="none") ** 2)
    for fn in (LF.hinge_loss, LF.squared_hinge_loss):
        torch.testing.assert_close(fn(x, y.long()), fn(x, y))
        torch.testing.assert_close(fn(x, y.to(torch.int8), margin=0.3), fn(x, y, margin=0.3))


def test_hinge_kink_has_zero_gradient():
    """At y x = m exactly the subgradient taken is 0 (relu), as torch's multi_margin_loss does."""
    x = torch.tensor([1.0, -1.0, 0.5], requires_grad=True)
    y = torch.tensor([1.0, -1.0, 1.0])
    LF.hinge_loss(x, y, reduction="sum").backward()
    torch.testing.assert_close(x.grad, torch.tensor([0.0, 0.0, -1.0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_hinge_extremes_and_half(dtype):
    x = torch.tensor([1e4, -1e4, 1e4, -1e4], dtype=dtype, requires_grad=True)
    y = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=dtype)
    for fn, p in ((LF.hinge_loss, 1), (LF.squared_hinge_loss, 2)):
        u = fn(x, y, reduction="none")
        assert u.dtype == torch.float32
        (g,) = torch.autograd.grad(u.sum(), x)
        assert torch.isfinite(u).all() and torch.isfinite(g).all() and g.dtype == dtype
        big = float(torch.tensor(1e4, dtype=dtype))
        torch.testing.assert_close(u, torch.tensor([0.0, 0.0, (big + 1) ** p, (big + 1) ** p]))


def test_hinge_empty_and_modules():
    for fn, module in ((LF.hinge_loss, lf.HingeLoss), (LF.squared_hinge_loss, lf.SquaredHingeLoss)):
        xe = torch.zeros(0, 3, requires_grad=True)
        out = fn(xe, torch.zeros(0, 3))
        assert out.item() == 0.0 and torch.autograd.grad(out, xe)[0].shape == (0, 3)
        x, y = _sign_data()
        torch.testing.assert_close(module(margin=0.5, reduction="sum")(x, y), fn(x, y, margin=0.5, reduction="sum"))


@pytest.mark.parametrize("fn", [LF.hinge_loss, LF.squared_hinge_loss])
def test_hinge_errors(fn):
    name = fn.__name__
    x, y = _sign_data((4, 3))
    with pytest.raises(ValueError, match=rf"{name}: target must hold the labels -1 and \+1, got the value 0\. "
                                         r"Hint: for 0/1 labels pass 2 \* target - 1"):
        fn(x, (y > 0).float())
    with pytest.raises(ValueError, match=r"got the value 0.5"):
        fn(x, torch.full((4, 3), 0.5))
    with pytest.raises(TypeError, match=rf"{name}: target must hold the labels -1 and \+1.*dtype torch.bool.*"
                                        r"2 \* target.float\(\) - 1"):
        fn(x, y > 0)
    with pytest.raises(lf.ShapeError, match=rf"{name}: target must have the shape of logits \(4, 3\), got \(4,\)"):
        fn(x, y[:, 0])
    with pytest.raises(TypeError, match=rf"{name}: logits must be a floating-point tensor"):
        fn(x.long(), y)
    with pytest.raises(ValueError, match=rf"{name}: margin must be >= 0, got -1"):
        fn(x, y, margin=-1)
    with pytest.raises(TypeError, match=r"weight= is not an argument.*Hint: use sample_weight="):
        fn(x, y, weight=torch.ones(3))
    with lf.validation(False):  # the label check reads values (a device sync): validation mode only
        torch.testing.assert_close(fn(x, torch.zeros(4, 3), margin=0.5), torch.tensor(0.5 ** (1 if "squared" not in
                                                                                              name else 2)))
