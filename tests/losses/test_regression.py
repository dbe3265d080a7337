"""Regression and robust losses: independent references, golden values, identities, edge cases, errors.

References are torch's own losses where torch has the loss, closed forms written here
(never the implementation's formula) and hand-computed golden values otherwise.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import lossforge as lf
import lossforge.functional as LF

REDUCTIONS = ("none", "mean", "sum")
F64 = torch.float64


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-10, atol: float = 1e-12) -> None:
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


def _grad(fn, *inputs: torch.Tensor) -> list[torch.Tensor]:
    leaves = [x.detach().clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    return list(torch.autograd.grad(out.sum(), leaves))


# --------------------------------------------------------------------------------------------------
# torch as the reference: l1, mse, huber, smooth_l1, poisson_nll, gaussian_nll, cosine_embedding
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("ours", "theirs", "kwargs"),
    [
        (LF.l1_loss, F.l1_loss, {}),
        (LF.mse_loss, F.mse_loss, {}),
        (LF.huber_loss, F.huber_loss, {}),
        (LF.huber_loss, F.huber_loss, {"delta": 0.3}),
        (LF.huber_loss, F.huber_loss, {"delta": 2.5}),
        (LF.smooth_l1_loss, F.smooth_l1_loss, {}),
        (LF.smooth_l1_loss, F.smooth_l1_loss, {"beta": 0.4}),
        (LF.smooth_l1_loss, F.smooth_l1_loss, {"beta": 0.0}),
    ],
)
def test_pointwise_losses_equal_torch(ours, theirs, kwargs, reduction):
    pred, target = torch.randn(7, 5, dtype=F64) * 2, torch.randn(7, 5, dtype=F64)
    _close(ours(pred, target, **kwargs, reduction=reduction), theirs(pred, target, **kwargs, reduction=reduction))
    g_ours = _grad(lambda p, t: ours(p, t, **kwargs, reduction=reduction), pred, target)
    g_theirs = _grad(lambda p, t: theirs(p, t, **kwargs, reduction=reduction), pred, target)
    for a, b in zip(g_ours, g_theirs):
        _close(a, b)


def test_smooth_l1_beta_zero_is_l1_with_finite_gradient():
    pred = torch.tensor([0.0, 1e-30, -2.0, 3.0])
    target = torch.zeros(4)
    _close(LF.smooth_l1_loss(pred, target, beta=0.0, reduction="none"), LF.l1_loss(pred, target, reduction="none"))
    (g,) = _grad(lambda p: LF.smooth_l1_loss(p, target, beta=0.0, reduction="sum"), pred)
    assert torch.isfinite(g).all()
    assert g.tolist() == [0.0, 1.0, -1.0, 1.0]


def test_huber_is_delta_times_smooth_l1():
    pred, target = torch.randn(50, dtype=F64) * 3, torch.randn(50, dtype=F64)
    for delta in (0.1, 1.0, 4.0):
        _close(LF.huber_loss(pred, target, delta=delta, reduction="none"),
               delta * LF.smooth_l1_loss(pred, target, beta=delta, reduction="none"))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
def test_poisson_nll_equals_torch(log_input, full, reduction):
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(6, 4, generator=g, dtype=F64)
    if not log_input:
        pred = pred.abs() + 0.05
    target = torch.randint(0, 7, (6, 4), generator=g).to(F64)  # counts 0..6: both sides of the Stirling cut at 1
    kw = {"log_input": log_input, "full": full, "eps": 1e-8}
    ours = LF.poisson_nll_loss(pred, target, **kw, reduction=reduction)
    _close(ours, F.poisson_nll_loss(pred, target, **kw, reduction=reduction))
    (g_ours,) = _grad(lambda p: LF.poisson_nll_loss(p, target, **kw, reduction=reduction), pred)
    (g_torch,) = _grad(lambda p: F.poisson_nll_loss(p, target, **kw, reduction=reduction), pred)
    _close(g_ours, g_torch)


def test_poisson_nll_zero_rate_is_finite():
    pred = torch.tensor([0.0, 2.0])
    target = torch.tensor([3.0, 0.0])
    out = LF.poisson_nll_loss(pred, target, log_input=False, reduction="none")
    _close(out, F.poisson_nll_loss(pred, target, log_input=False, reduction="none"), rtol=1e-6, atol=1e-6)
    (g,) = _grad(lambda p: LF.poisson_nll_loss(p, target, log_input=False), pred)
    assert torch.isfinite(out).all() and torch.isfinite(g).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("var_shape", [(6, 4), (6,), (6, 1), (1, 4), None])
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll_equals_torch(var_shape, full, reduction):
    g = torch.Generator().manual_seed(2)
    pred, target = torch.randn(6, 4, generator=g, dtype=F64), torch.randn(6, 4, generator=g, dtype=F64)
    if var_shape is None:
        var: torch.Tensor | float = 0.7
    else:
        var = torch.rand(var_shape, generator=g, dtype=F64) + 0.1
        var.view(-1)[0] = 1e-9  # below eps: clamped in the value, gradient passes straight through (torch)
    kw = {"full": full, "eps": 1e-6}
    _close(LF.gaussian_nll_loss(pred, target, var, **kw, reduction=reduction),
           F.gaussian_nll_loss(pred, target, var, **kw, reduction=reduction))
    if isinstance(var, torch.Tensor):
        ours = _grad(lambda p, t, v: LF.gaussian_nll_loss(p, t, v, **kw, reduction=reduction), pred, target, var)
        theirs = _grad(lambda p, t, v: F.gaussian_nll_loss(p, t, v, **kw, reduction=reduction), pred, target, var)
        for a, b in zip(ours, theirs):
            _close(a, b, rtol=1e-9, atol=1e-9)


def test_gaussian_nll_negative_var():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match=r"gaussian_nll_loss: var must be >= 0, got a minimum of -1\."):
        LF.gaussian_nll_loss(x, x, torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"gaussian_nll_loss: var must be >= 0, got -0.5\."):
        LF.gaussian_nll_loss(x, x, -0.5)
    with lf.validation(False):  # no device sync: the floor applies instead, finite
        out = LF.gaussian_nll_loss(x, x + 1, torch.tensor([1.0, -1.0, 1.0]), reduction="none")
    assert torch.isfinite(out).all()
    assert out[1].item() == pytest.approx(0.5 * (math.log(1e-6) + 1 / 1e-6), rel=1e-5)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.3, -0.4])
def test_cosine_embedding_equals_torch(margin, reduction):
    g = torch.Generator().manual_seed(3)
    x1, x2 = torch.randn(9, 5, generator=g, dtype=F64), torch.randn(9, 5, generator=g, dtype=F64)
    x1[0] = 0.0  # a zero vector: cosine 0, finite gradient
    y = torch.tensor([1, -1, 1, -1, -1, 1, 1, -1, -1])
    _close(LF.cosine_embedding_loss(x1, x2, y, margin=margin, reduction=reduction),
           F.cosine_embedding_loss(x1, x2, y, margin=margin, reduction=reduction))
    ours = _grad(lambda a, b: LF.cosine_embedding_loss(a, b, y, margin=margin, reduction=reduction), x1, x2)
    theirs = _grad(lambda a, b: F.cosine_embedding_loss(a, b, y, margin=margin, reduction=reduction), x1, x2)
    for a, b in zip(ours, theirs):
        _close(a, b, rtol=1e-8, atol=1e-8)
        assert torch.isfinite(a).all()


def test_cosine_embedding_unbatched_and_zero_vectors():
    a, b = torch.tensor([1.0, 2.0, 2.0]), torch.tensor([2.0, 1.0, 2.0])
    # cos = (2 + 2 + 4) / (3 * 3) = 8/9; y = 1 -> 1 - 8/9 = 1/9
    assert LF.cosine_embedding_loss(a, b, torch.tensor(1)).item() == pytest.approx(1 / 9, rel=1e-6)
    z = torch.zeros(2, 3)
    gz = _grad(lambda p, q: LF.cosine_embedding_loss(p, q, torch.tensor([1.0, -1.0])), z, z)
    assert all(torch.isfinite(t).all() for t in gz)
    with pytest.raises(ValueError, match=r"cosine_embedding_loss: y must hold only 1 and -1, got values \[0.0, 1.0\]"):
        LF.cosine_embedding_loss(z, z, torch.tensor([0.0, 1.0]))


# --------------------------------------------------------------------------------------------------
# general_robust: closed forms of its special cases (Barron 2019, eq. 1 and its limits)
# --------------------------------------------------------------------------------------------------


def _barron_direct(x: torch.Tensor, alpha: float, c: float) -> torch.Tensor:
    """Barron's eq. (1) written out with pow, float64, for alpha not in {0, 2}."""
    b = abs(alpha - 2.0)
    return b / alpha * (((x / c) ** 2 / b + 1.0) ** (alpha / 2.0) - 1.0)


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_general_robust_special_cases(scale):
    x = torch.linspace(-6, 6, 41, dtype=F64)
    zero = torch.zeros_like(x)
    z2 = (x / scale) ** 2

    def gr(alpha):
        return LF.general_robust_loss(x, zero, alpha=alpha, scale=scale, reduction="none")

    _close(gr(2.0), 0.5 * z2)                                   # L2
    _close(gr(0.0), torch.log(0.5 * z2 + 1.0))                  # Cauchy
    _close(gr(-2.0), 2.0 * z2 / (z2 + 4.0))                     # Geman-McClure
    _close(gr(1.0), torch.sqrt(z2 + 1.0) - 1.0)                 # pseudo-Huber / Charbonnier
    _close(gr(-math.inf), 1.0 - torch.exp(-0.5 * z2))           # Welsch, exactly
    torch.testing.assert_close(gr(-1e6), 1.0 - torch.exp(-0.5 * z2), rtol=1e-4, atol=1e-5)  # Welsch as a limit
    for alpha in (-7.0, -0.5, 0.5, 1.5, 3.0):
        _close(gr(alpha), _barron_direct(x, alpha, scale), rtol=1e-9, atol=1e-12)
    # continuity into the special points
    torch.testing.assert_close(gr(1e-7), gr(0.0), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(gr(2.0 - 1e-7), gr(2.0), rtol=1e-5, atol=1e-8)


def test_general_robust_named_identities():
    x, t = torch.randn(30, dtype=F64) * 4, torch.randn(30, dtype=F64)
    c = 0.7

    def gr(alpha):
        return LF.general_robust_loss(x, t, alpha=alpha, scale=c, reduction="none")

    _close(LF.cauchy_loss(x, t, scale=c, reduction="none"), gr(0.0))
    _close(LF.geman_mcclure_loss(x, t, scale=c, reduction="none"), gr(-2.0))
    _close(LF.welsch_loss(x, t, scale=c, reduction="none"), gr(-math.inf))
    _close(LF.charbonnier_loss(x, t, eps=c, reduction="none") / c, gr(1.0))
    _close(LF.mse_loss(x, t, reduction="none") / (2 * c * c), gr(2.0))


def test_general_robust_tensor_alpha_gradients_are_finite_at_special_points():
    x = torch.tensor([[0.0, 1.0, -3.0, 1e30, 2.0]]).expand(6, 5).contiguous()
    alpha = torch.tensor([[2.0], [0.0], [-2.0], [-math.inf], [1.0], [1.9999]]).requires_grad_(True)
    scale = torch.tensor(0.8, requires_grad=True)
    pred = x.clone().requires_grad_(True)
    keep = ~((x.abs() > 1e20) & (alpha.detach() > 1.5))  # alpha near 2 at 1e30 overflows to inf by design
    out = LF.general_robust_loss(pred, torch.zeros_like(x), alpha=alpha, scale=scale, mask=keep)
    out.backward()
    assert torch.isfinite(out)
    for t in (pred.grad, alpha.grad, scale.grad):
        assert t is not None and torch.isfinite(t).all()
    # alpha = 2, 0, -inf use closed forms that do not depend on alpha; -2 goes through the general formula
    assert alpha.grad[[0, 1, 3]].abs().sum().item() == 0.0
    assert (alpha.grad[[2, 4, 5]].abs() > 0).all()


def test_general_robust_alpha_gradient_matches_finite_differences():
    x, t = torch.randn(20, dtype=F64) * 3, torch.zeros(20, dtype=F64)
    for a0 in (-3.0, -0.7, 0.4, 1.3):
        alpha = torch.tensor(a0, dtype=F64, requires_grad=True)
        scale = torch.tensor(1.3, dtype=F64, requires_grad=True)
        torch.autograd.gradcheck(lambda a, c: LF.general_robust_loss(x, t, alpha=a, scale=c), (alpha, scale))


def test_general_robust_learnable_module_trains():
    torch.manual_seed(0)
    crit = lf.GeneralRobustLoss(alpha=1.5, scale=2.0, learnable=True)
    assert {n for n, _ in crit.named_parameters()} == {"alpha_raw", "scale_raw"}
    assert crit.alpha_value().item() == pytest.approx(1.5, rel=1e-6)
    assert crit.scale_value().item() == pytest.approx(2.0, rel=1e-6)
    pred = torch.randn(256) * 0.3
    pred[:20] += 8.0  # outliers
    target = torch.zeros(256)
    loss0 = crit(pred, target)
    loss0.backward()
    assert crit.alpha_raw.grad is not None and crit.alpha_raw.grad.item() != 0.0
    assert crit.scale_raw.grad is not None and crit.scale_raw.grad.item() != 0.0
    opt = torch.optim.Adam(crit.parameters(), lr=0.05)
    for _ in range(25):
        opt.zero_grad()
        crit(pred, target).backward()
        opt.step()
    with torch.no_grad():
        assert crit(pred, target).item() < loss0.item()
        a = crit.alpha_value().item()
        assert 0.0 < a < 2.0
        assert crit.scale_value().item() > 1e-5
    assert "learnable=True" in repr(crit)


def test_general_robust_learnable_per_channel_and_range():
    crit = lf.GeneralRobustLoss(alpha=torch.tensor([-1.0, 0.5, 3.0]), scale=torch.ones(3), learnable=True,
                                alpha_range=(-2.0, 4.0))
    assert crit.alpha_raw.shape == (3,)
    torch.testing.assert_close(crit.alpha_value().detach(), torch.tensor([-1.0, 0.5, 3.0]))
    out = crit(torch.randn(5, 3), torch.randn(5, 3))
    out.backward()
    assert crit.alpha_raw.grad.shape == (3,)
    with pytest.raises(ValueError, match=r"GeneralRobustLoss: alpha must lie strictly inside alpha_range \(0, 2\)"):
        lf.GeneralRobustLoss(alpha=2.0, learnable=True)
    with pytest.raises(ValueError, match=r"GeneralRobustLoss: alpha_range must be two finite numbers"):
        lf.GeneralRobustLoss(learnable=True, alpha_range=(2.0, 0.0))
    with pytest.raises(ValueError, match=r"general_robust_loss: scale must be > 0, got a minimum of -1"):
        lf.GeneralRobustLoss(scale=torch.tensor([1.0, -1.0]))


# --------------------------------------------------------------------------------------------------
# hand-computed golden values
# --------------------------------------------------------------------------------------------------


def _none(fn, pred, target=None, **kw):
    pred = torch.tensor(pred, dtype=F64)
    target = torch.zeros_like(pred) if target is None else torch.tensor(target, dtype=F64)
    return fn(pred, target, **kw, reduction="none")


def test_golden_values():
    # log cosh: log(cosh 1) = log(1.5430806348) = 0.4337808305; log(cosh 3) = log(10.0676619958) = 2.3093285046
    _close(_none(LF.log_cosh_loss, [1.0, -3.0, 0.0]), torch.tensor([0.4337808305, 2.3093285046, 0.0], dtype=F64),
           rtol=1e-9, atol=0)
    # charbonnier, eps=0.5: sqrt(1.2^2 + 0.25) - 0.5 = sqrt(1.69) - 0.5 = 1.3 - 0.5 = 0.8
    _close(_none(LF.charbonnier_loss, [1.2, -1.2], eps=0.5), torch.tensor([0.8, 0.8], dtype=F64))
    # cauchy, c=2: x=4 -> log(0.5 * 4 + 1) = log 3 = 1.0986122887
    _close(_none(LF.cauchy_loss, [4.0], scale=2.0), torch.tensor([math.log(3.0)], dtype=F64))
    # geman-mcclure, c=1: x=2 -> 2*4/(4+4) = 1; x=6 -> 2*36/40 = 1.8
    _close(_none(LF.geman_mcclure_loss, [2.0, -6.0]), torch.tensor([1.0, 1.8], dtype=F64))
    # welsch, c=2: x=2 -> 1 - exp(-0.5) = 0.3934693403
    _close(_none(LF.welsch_loss, [2.0], scale=2.0), torch.tensor([0.3934693402873666], dtype=F64))
    # tukey, c=4: x=2 -> 16/6 * (1 - (1 - 1/4)^3) = 2.6667 * 0.578125 = 1.5416667; x=9 -> 16/6 = 2.6666667
    _close(_none(LF.tukey_biweight_loss, [2.0, -9.0], c=4.0), torch.tensor([37 / 24, 8 / 3], dtype=F64))
    # quantile tau=0.25: r = y - yhat; r=2 -> 0.25*2 = 0.5; r=-2 -> 0.75*2 = 1.5
    _close(_none(LF.quantile_loss, [0.0, 4.0], [2.0, 2.0], quantile=0.25), torch.tensor([0.5, 1.5], dtype=F64))
    # wing w=10, eps=2: x=4 -> 10 ln 3 = 10.986122887; x=12 -> 12 - (10 - 10 ln 6) = 2 + 17.917594692 = 19.9175947
    _close(_none(LF.wing_loss, [4.0, -12.0]), torch.tensor([10 * math.log(3), 2 + 10 * math.log(6)], dtype=F64))
    # mape: |90 - 100| / 100 = 0.1; |-1 - (-4)| / 4 = 0.75; target 0 -> |2| / 1e-7 = 2e7
    _close(_none(LF.mape_loss, [90.0, -1.0, 2.0], [100.0, -4.0, 0.0]), torch.tensor([0.1, 0.75, 2e7], dtype=F64))
    # msle: (log 4 - log 2)^2 = (log 2)^2 = 0.480453014
    _close(_none(LF.msle_loss, [3.0], [1.0]), torch.tensor([math.log(2.0) ** 2], dtype=F64))
    # general robust, alpha=1, c=1: x=3 -> sqrt(10) - 1 = 2.16227766; alpha=-2: 2*9/13 = 1.384615
    _close(_none(LF.general_robust_loss, [3.0], alpha=1.0), torch.tensor([math.sqrt(10) - 1], dtype=F64))
    _close(_none(LF.general_robust_loss, [3.0], alpha=-2.0), torch.tensor([18 / 13], dtype=F64))


def test_log_cosh_is_finite_with_unit_gradient_at_huge_residuals():
    pred = torch.tensor([1e30, -1e30, 800.0, -800.0, 3e38])
    target = torch.zeros(5)
    out = LF.log_cosh_loss(pred, target, reduction="none")
    assert torch.isfinite(out).all()
    ln2 = math.log(2.0)
    torch.testing.assert_close(out[:4], torch.tensor([1e30, 1e30, 800.0 - ln2, 800.0 - ln2]))
    (g,) = _grad(lambda p: LF.log_cosh_loss(p, target, reduction="sum"), pred)
    assert g.tolist() == [1.0, -1.0, 1.0, -1.0, 1.0]


def test_log_cosh_matches_float64_log_cosh_and_tanh():
    x = torch.cat([torch.logspace(-6, 1.5, 60), -torch.logspace(-6, 1.5, 60), torch.zeros(1)])
    out = LF.log_cosh_loss(x, torch.zeros_like(x), reduction="none")
    xd = x.double()
    # float64 log(cosh x) loses relative precision below |x| ~ 0.1; use the Taylor series there
    series = xd**2 / 2 - xd**4 / 12 + xd**6 / 45 - 17 * xd**8 / 2520
    ref = torch.where(xd.abs() < 0.1, series, torch.log(torch.cosh(xd)))
    torch.testing.assert_close(out.double(), ref, rtol=2e-6, atol=1e-30)  # relative precision near 0 too
    (g,) = _grad(lambda p: LF.log_cosh_loss(p, torch.zeros_like(x), reduction="sum"), x)
    torch.testing.assert_close(g, torch.tanh(x), rtol=1e-5, atol=1e-7)


ROBUST_FINITE_AT_1E30 = [
    (LF.l1_loss, {}), (LF.huber_loss, {}), (LF.smooth_l1_loss, {}), (LF.smooth_l1_loss, {"beta": 0.0}),
    (LF.log_cosh_loss, {}), (LF.charbonnier_loss, {}), (LF.cauchy_loss, {}), (LF.cauchy_loss, {"scale": 1e-3}),
    (LF.geman_mcclure_loss, {}), (LF.welsch_loss, {}), (LF.tukey_biweight_loss, {}), (LF.quantile_loss, {}),
    (LF.wing_loss, {}), (LF.general_robust_loss, {"alpha": 1.0}), (LF.general_robust_loss, {"alpha": 0.0}),
    (LF.general_robust_loss, {"alpha": -2.0}), (LF.general_robust_loss, {"alpha": -math.inf}),
    (LF.general_robust_loss, {"alpha": -1e4}), (LF.general_robust_loss, {"alpha": 1e-6}),
    (LF.mape_loss, {}), (LF.welsch_loss, {"scale": 1e-9}), (LF.geman_mcclure_loss, {"scale": 1e-9}),
    (LF.general_robust_loss, {"alpha": 0.0, "scale": 1e-9}),
    (LF.general_robust_loss, {"alpha": -math.inf, "scale": 1e-9}),
]


@pytest.mark.parametrize(("fn", "kw"), ROBUST_FINITE_AT_1E30, ids=lambda v: getattr(v, "__name__", str(v)))
def test_finite_value_and_gradient_at_1e30_in_float32(fn, kw):
    pred = torch.tensor([1e30, -1e30, 1e30, 0.0, 1.0, 3e38])
    target = torch.tensor([-1e30, 1e30, 1.0, 1e30, 1.0, 1.0])
    leaves = [pred.clone().requires_grad_(True), target.clone().requires_grad_(True)]
    out = fn(*leaves, **kw, reduction="none")
    assert torch.isfinite(out).all(), out
    gs = torch.autograd.grad(out.sum(), leaves)
    assert all(torch.isfinite(g).all() for g in gs), gs


def test_msle_finite_at_1e30_and_near_minus_one():
    pred = torch.tensor([1e30, -0.999999, 0.0, 3e38])
    target = torch.tensor([-0.999999, 1e30, 0.0, 0.0])
    leaves = [pred.clone().requires_grad_(True), target.clone().requires_grad_(True)]
    out = LF.msle_loss(*leaves, reduction="none")
    gs = torch.autograd.grad(out.sum(), leaves)
    assert torch.isfinite(out).all() and all(torch.isfinite(g).all() for g in gs)


def test_masked_overflow_gives_finite_gradients():
    # alpha near 2 and alpha = 2 overflow to inf at 1e30 by design; masked out, gradients stay finite (no 0 * inf)
    x = torch.tensor([1e30, 3e38, 1.0])
    keep = torch.tensor([False, False, True])
    for kw in ({"alpha": 2.0}, {"alpha": 1.99}, {"alpha": 1.0, "scale": 1e-9}):
        pred = x.clone().requires_grad_(True)
        alpha = torch.tensor(kw["alpha"], requires_grad=True)
        scale = torch.tensor(kw.get("scale", 1.0), requires_grad=True)
        out = LF.general_robust_loss(pred, torch.zeros(3), alpha=alpha, scale=scale, mask=keep)
        out.backward()
        assert torch.isfinite(out), kw
        for t in (pred.grad, alpha.grad, scale.grad):
            assert torch.isfinite(t).all(), kw
        none = LF.general_robust_loss(x, torch.zeros(3), **kw, reduction="none")
        assert torch.isinf(none[:2]).all() and not torch.isnan(none).any()


def test_bounded_losses_saturate():
    big = torch.tensor([1e30, -1e20, 1e10])
    zero = torch.zeros(3)
    torch.testing.assert_close(LF.geman_mcclure_loss(big, zero, reduction="none"), torch.full((3,), 2.0))
    torch.testing.assert_close(LF.welsch_loss(big, zero, reduction="none"), torch.ones(3))
    torch.testing.assert_close(LF.tukey_biweight_loss(big, zero, c=3.0, reduction="none"), torch.full((3,), 1.5))
    torch.testing.assert_close(LF.general_robust_loss(big, zero, alpha=-6.0, reduction="none"),
                               torch.full((3,), 8.0 / 6.0))  # bound |alpha - 2| / |alpha| for alpha < 0


def test_mse_overflow_is_inf_not_nan():
    out = LF.mse_loss(torch.tensor([1e30]), torch.tensor([-1e30]), reduction="none")
    assert torch.isinf(out).all()


def test_tukey_zero_gradient_beyond_c_and_continuity():
    c = 2.5
    x = torch.tensor([c - 1e-6, c, c + 1e-6, 10.0, -10.0], dtype=F64)
    out = LF.tukey_biweight_loss(x, torch.zeros_like(x), c=c, reduction="none")
    torch.testing.assert_close(out, torch.full((5,), c * c / 6, dtype=F64), rtol=1e-9, atol=1e-9)
    (g,) = _grad(lambda p: LF.tukey_biweight_loss(p, torch.zeros_like(x), c=c, reduction="sum"), x)
    torch.testing.assert_close(g, torch.zeros(5, dtype=F64), rtol=0, atol=1e-9)


def test_wing_is_continuous_at_w():
    w, eps = 10.0, 2.0
    for d in (1e-9, 1e-6):
        x = torch.tensor([w - d, w + d, -w - d, -w + d], dtype=F64)
        out = LF.wing_loss(x, torch.zeros_like(x), w=w, epsilon=eps, reduction="none")
        at_w = w * math.log(1 + w / eps)
        torch.testing.assert_close(out, torch.full((4,), at_w, dtype=F64), rtol=0, atol=3 * d)
    # the slope jumps from w / (eps + w) to 1 at |x| = w
    (g,) = _grad(lambda p: LF.wing_loss(p, torch.zeros(2, dtype=F64), reduction="sum"),
                 torch.tensor([w - 1e-9, w + 1e-9], dtype=F64))
    torch.testing.assert_close(g, torch.tensor([w / (eps + w), 1.0], dtype=F64))


def test_charbonnier_minimum_is_zero():
    x = torch.zeros(3, requires_grad=True)
    out = LF.charbonnier_loss(x, torch.zeros(3), eps=1e-3)
    out.backward()
    assert out.item() == 0.0 and x.grad.abs().sum().item() == 0.0


# --------------------------------------------------------------------------------------------------
# quantile: several quantiles
# --------------------------------------------------------------------------------------------------


def test_quantile_several_against_a_loop():
    g = torch.Generator().manual_seed(4)
    taus = [0.05, 0.5, 0.8, 0.95]
    pred = torch.randn(3, 5, len(taus), generator=g, dtype=F64)
    target = torch.randn(3, 5, generator=g, dtype=F64)
    ref = torch.empty_like(pred)
    for idx in torch.cartesian_prod(torch.arange(3), torch.arange(5)).tolist():
        for k, tau in enumerate(taus):
            r = float(target[idx[0], idx[1]] - pred[idx[0], idx[1], k])
            ref[idx[0], idx[1], k] = max(tau * r, (tau - 1) * r)
    for q in (taus, tuple(taus), torch.tensor(taus, dtype=F64)):
        _close(LF.quantile_loss(pred, target, quantile=q, reduction="none"), ref)
        _close(LF.quantile_loss(pred, target, quantile=q), ref.mean())
    module = lf.QuantileLoss(quantile=taus, reduction="sum")
    assert isinstance(module.quantile, torch.Tensor) and module.quantile.shape == (4,)
    _close(module(pred, target), ref.sum(), rtol=1e-6)  # a list becomes a float32 buffer
    # one quantile per channel equals calling each quantile separately
    for k, tau in enumerate(taus):
        _close(LF.quantile_loss(pred[..., k], target, quantile=tau, reduction="none"), ref[..., k])


def test_quantile_half_is_half_l1():
    pred, target = torch.randn(40, dtype=F64), torch.randn(40, dtype=F64)
    _close(LF.quantile_loss(pred, target, quantile=0.5), 0.5 * LF.l1_loss(pred, target))


def test_quantile_errors():
    p, t = torch.randn(4, 3), torch.randn(4)
    with pytest.raises(ValueError, match=r"quantile_loss: pred must have a last dimension of size Q=2"):
        LF.quantile_loss(p, t, quantile=[0.1, 0.9])
    with pytest.raises(ValueError, match=r"quantile_loss: target must have shape pred.shape\[:-1\] = \(4,\)"):
        LF.quantile_loss(p, p, quantile=[0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match=r"quantile_loss: quantile must hold quantiles in \(0, 1\), "
                                         r"got values in \[0.5, 1.2\]"):
        LF.quantile_loss(p, t, quantile=torch.tensor([0.5, 1.2, 0.7]))
    with pytest.raises(ValueError, match=r"quantile_loss: quantile must be in \(0, 1\), got 1.5"):
        lf.QuantileLoss(quantile=[0.5, 1.5])
    with lf.validation(False):
        with pytest.raises(ValueError, match=r"quantile must hold quantiles in \(0, 1\)"):
            lf.QuantileLoss(quantile=torch.tensor([0.5, 1.5]))  # construction always checks tensor values


# --------------------------------------------------------------------------------------------------
# errors: messages
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "module", "kwargs", "exc", "match"),
    [
        (LF.huber_loss, lf.HuberLoss, {"delta": 0}, ValueError, r"^huber_loss: delta must be > 0, got 0\.$"),
        (LF.huber_loss, lf.HuberLoss, {"delta": 1j}, TypeError, r"^huber_loss: delta must be a float or int, got 1j"),
        (LF.smooth_l1_loss, lf.SmoothL1Loss, {"beta": -1.0}, ValueError, r"smooth_l1_loss: beta must be >= 0, got -1"),
        (LF.charbonnier_loss, lf.CharbonnierLoss, {"eps": 0.0}, ValueError, r"charbonnier_loss: eps must be > 0"),
        (LF.cauchy_loss, lf.CauchyLoss, {"scale": -1.0}, ValueError, r"cauchy_loss: scale must be > 0, got -1.0"),
        (LF.geman_mcclure_loss, lf.GemanMcclureLoss, {"scale": 0}, ValueError, r"geman_mcclure_loss: scale must be >"),
        (LF.welsch_loss, lf.WelschLoss, {"scale": "2"}, TypeError, r"welsch_loss: scale must be a float or int"),
        (LF.tukey_biweight_loss, lf.TukeyBiweightLoss, {"c": -4.685}, ValueError, r"tukey_biweight_loss: c must be >"),
        (LF.general_robust_loss, lf.GeneralRobustLoss, {"alpha": math.nan}, ValueError,
         r"general_robust_loss: alpha must be a real number or -inf, got nan"),
        (LF.general_robust_loss, lf.GeneralRobustLoss, {"scale": torch.tensor([1, 2])}, TypeError,
         r"general_robust_loss: scale must be a float or a floating-point tensor, got dtype torch.int64"),
        (LF.quantile_loss, lf.QuantileLoss, {"quantile": 0.0}, ValueError, r"quantile_loss: quantile must be in \(0,"),
        (LF.wing_loss, lf.WingLoss, {"epsilon": 0.0}, ValueError, r"wing_loss: epsilon must be > 0, got 0.0"),
        (LF.poisson_nll_loss, lf.PoissonNLLLoss, {"full": 1}, TypeError, r"poisson_nll_loss: full must be a bool"),
        (LF.mape_loss, lf.MAPELoss, {"eps": -1e-7}, ValueError, r"mape_loss: eps must be > 0"),
    ],
)
def test_hyperparameter_errors_at_call_and_construction(fn, module, kwargs, exc, match):
    x = torch.rand(4, 3)
    with pytest.raises(exc, match=match):
        fn(x, x, **kwargs)
    with pytest.raises(exc, match=match):
        module(**kwargs)


@pytest.mark.parametrize("fn", [LF.l1_loss, LF.huber_loss, LF.log_cosh_loss, LF.general_robust_loss, LF.wing_loss])
def test_shape_and_dtype_errors(fn):
    name = fn.__name__
    with pytest.raises(lf.ShapeError, match=rf"{name}: target must have the shape of pred \(4, 1\), got \(4,\)\. "
                                            r"Hint: pred.squeeze\(-1\)"):
        fn(torch.randn(4, 1), torch.randn(4))
    with pytest.raises(TypeError, match=rf"{name}: pred must be a floating-point tensor, got dtype torch.int64"):
        fn(torch.ones(3, dtype=torch.long), torch.ones(3))
    with pytest.raises(ValueError, match=r"reduction must be one of .*Did you mean 'mean'\?"):
        fn(torch.ones(3), torch.ones(3), reduction="avg")
    with pytest.raises(TypeError, match=rf"{name}: weight= is not an argument.*Hint: use sample_weight="):
        fn(torch.ones(3), torch.ones(3), weight=torch.ones(3))


def test_domain_errors_in_validation_mode_only():
    x = torch.tensor([0.5, -1.5])
    with pytest.raises(ValueError, match=r"msle_loss: pred must be > -1, got a minimum of -1.5"):
        LF.msle_loss(x, torch.zeros(2))
    with pytest.raises(ValueError, match=r"poisson_nll_loss: target must be >= 0, got a minimum of -1.5"):
        LF.poisson_nll_loss(torch.zeros(2), x)
    with pytest.raises(ValueError, match=r"poisson_nll_loss: pred must be >= 0, got a minimum of -1.5"):
        LF.poisson_nll_loss(x, torch.ones(2), log_input=False)
    with pytest.raises(ValueError, match=r"general_robust_loss: scale must be > 0, got a minimum of 0"):
        LF.general_robust_loss(x, x, scale=torch.tensor([1.0, 0.0]))
    with lf.validation(False):  # outside the domain: clamped, finite value and gradient, no device sync
        for fn in (lambda p: LF.msle_loss(p, torch.zeros(2)),
                   lambda p: LF.poisson_nll_loss(p, torch.ones(2), log_input=False)):
            (g,) = _grad(fn, x)
            assert torch.isfinite(fn(x)) and torch.isfinite(g).all()


def test_registered_error_inputs_raise_as_declared():
    for name in lf.list_losses("regression"):
        spec = lf.get_loss(name)
        for e in spec.error_inputs():
            with pytest.raises(e.exc_type, match=e.match):
                if e.at_construction:
                    spec.module(**e.kwargs)
                else:
                    spec.function(*e.args, **e.kwargs)


# --------------------------------------------------------------------------------------------------
# empty policy and low precision, over the family's registered samples
# --------------------------------------------------------------------------------------------------


def _family_samples(dtype):
    out = []
    for name in lf.list_losses("regression"):
        spec = lf.get_loss(name)
        for s in spec.sample_inputs(dtype, "cpu"):
            if all(not isinstance(a, torch.Tensor) or a.dim() >= 1 for a in s.args):
                out.append((spec, s))
                break
    return out


@pytest.mark.parametrize("name", lf.list_losses("regression"))
def test_empty_batch_mean_is_zero_with_zero_gradient(name):
    spec = lf.get_loss(name)
    s = next(s for s in spec.sample_inputs(torch.float32, "cpu")
             if all(not isinstance(a, torch.Tensor) or a.dim() >= 1 for a in s.args))
    diff = spec.differentiable_args or tuple(i for i, a in enumerate(s.args) if a.is_floating_point())
    args = [a[:0].clone().requires_grad_(i in diff) for i, a in enumerate(s.args)]
    out = spec.function(*args, **s.kwargs)
    assert out.shape == () and out.item() == 0.0
    out.backward()
    for i in diff:
        assert args[i].grad is not None and torch.equal(args[i].grad, torch.zeros_like(args[i]))
    assert spec.function(*args, **s.kwargs, reduction="sum").item() == 0.0
    assert spec.function(*args, **s.kwargs, reduction="none").numel() == 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_give_float32_equal_to_float32_on_rounded_inputs(dtype):
    for spec, s in _family_samples(dtype):
        diff = spec.differentiable_args or tuple(i for i, a in enumerate(s.args) if a.is_floating_point())
        half = [a.clone().requires_grad_(i in diff) for i, a in enumerate(s.args)]
        full = [(a.float() if a.is_floating_point() else a).clone().requires_grad_(i in diff)
                for i, a in enumerate(s.args)]
        out = spec.function(*half, **s.kwargs, reduction="sum")
        ref = spec.function(*full, **s.kwargs, reduction="sum")
        assert out.dtype == torch.float32, spec.name
        torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6, msg=spec.name)
        out.backward()
        ref.backward()
        for i in diff:
            assert half[i].grad.dtype == dtype, spec.name
            torch.testing.assert_close(half[i].grad, full[i].grad.to(dtype), rtol=0, atol=0, msg=spec.name)


def test_sample_weight_and_mask_use_the_one_mechanism():
    pred, target = torch.randn(5, 3, dtype=F64), torch.randn(5, 3, dtype=F64)
    u = LF.cauchy_loss(pred, target, reduction="none")
    w = torch.rand(5, 1, dtype=F64)
    m = torch.tensor([True, False, True, True, False])[:, None]
    got = LF.cauchy_loss(pred, target, sample_weight=w, mask=m)
    wm = (w * m).expand(5, 3)
    _close(got, (u * wm).sum() / wm.sum())
