"""Binary / multilabel losses (sigmoid): independent references, identities, extremes, errors.

References used here: torch's own ``binary_cross_entropy_with_logits`` (with ``pos_weight``, on the
smoothed target for label smoothing); torchvision's ``sigmoid_focal_loss`` formula re-derived in
float64 (torchvision is not a dependency); the asymmetric loss written from the paper's equations
in float64. The fused kernels (closed-form gradient computed in the forward pass) are checked with
small blocks too, so that block boundaries and the ``pos_weight`` tiling are exercised.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import lossforge as lf
import lossforge.functional as LF
from lossforge.losses import _binary

REDUCTIONS = ("none", "mean", "sum")


@pytest.fixture(params=[_binary.BLOCK_ELEMENTS, 7], ids=["default-blocks", "7-element-blocks"])
def blocks(request, monkeypatch):
    """Run a test with the default block size and with tiny blocks (many boundaries, partial last block)."""
    monkeypatch.setattr(_binary, "BLOCK_ELEMENTS", request.param)
    return request.param


def _data(shape=(6, 5), *, dtype=torch.float32, seed=0, scale=3.0, soft=False):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    u = torch.rand(shape, generator=g, dtype=torch.float64)
    t = (u if soft else (u > 0.5).double()).to(dtype)
    return x, t


def _value_and_grad(fn, x, t, **kwargs):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, t, **kwargs)
    (g,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), g


# ------------------------------------------------------------------------------------------------
# binary_cross_entropy_with_logits against torch
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pos_weight", [None, "scalar", "per-class", "full", "column"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_matches_torch(blocks, pos_weight, reduction):
    x, t = _data((6, 5), soft=True)
    pw = {None: None, "scalar": torch.tensor(2.5), "per-class": torch.linspace(0.5, 3.0, 5),
          "full": torch.rand(6, 5) * 3, "column": torch.rand(6, 1) * 3}[pos_weight]
    got, g_got = _value_and_grad(LF.binary_cross_entropy_with_logits, x, t, pos_weight=pw, reduction=reduction)
    want, g_want = _value_and_grad(F.binary_cross_entropy_with_logits, x, t, pos_weight=pw, reduction=reduction)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(g_got, g_want)


@pytest.mark.parametrize("shape, pw_shape", [((2, 3, 4, 5), (3, 1, 1)), ((3, 4, 5), (4, 5)), ((2, 3, 4), (2, 1, 4)),
                                             ((37,), (37,)), ((4, 9), (1,))])
def test_bce_pos_weight_broadcast_tiling(blocks, shape, pw_shape):
    x, t = _data(shape, soft=True, seed=3)
    pw = torch.rand(pw_shape, generator=torch.Generator().manual_seed(1)) * 3
    got, g_got = _value_and_grad(LF.binary_cross_entropy_with_logits, x, t, pos_weight=pw, reduction="none")
    want, g_want = _value_and_grad(F.binary_cross_entropy_with_logits, x, t, pos_weight=pw, reduction="none")
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(g_got, g_want)


@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0])
def test_bce_label_smoothing_is_bce_on_smoothed_target(blocks, eps):
    x, t = _data((8, 3))
    pw = torch.tensor([1.0, 2.0, 0.5])
    smoothed = t * (1 - eps) + eps / 2
    for r in REDUCTIONS:
        got, g_got = _value_and_grad(LF.binary_cross_entropy_with_logits, x, t, label_smoothing=eps, pos_weight=pw,
                                     reduction=r)
        want, g_want = _value_and_grad(F.binary_cross_entropy_with_logits, x, smoothed, pos_weight=pw, reduction=r)
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(g_got, g_want)


def test_bce_number_pos_weight_equals_tensor():
    x, t = _data()
    torch.testing.assert_close(LF.binary_cross_entropy_with_logits(x, t, pos_weight=3.0),
                               F.binary_cross_entropy_with_logits(x, t, pos_weight=torch.tensor(3.0)))


def test_bce_gradients_wrt_target_and_pos_weight():
    """A target or pos_weight that requires grad takes the plain formula: the gradients w.r.t. logits
    and target equal torch's; w.r.t. pos_weight (torch has none) the float64 formula's."""
    x, t = _data((5, 4), soft=True, dtype=torch.float64)
    pw = torch.linspace(0.5, 2.0, 4, dtype=torch.float64)
    grads = []
    for fn in (LF.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits):
        xs, ts = x.clone().requires_grad_(True), t.clone().requires_grad_(True)
        fn(xs, ts, pos_weight=pw).backward()
        grads.append((xs.grad, ts.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
    pws = pw.clone().requires_grad_(True)
    LF.binary_cross_entropy_with_logits(x, t, pos_weight=pws, reduction="sum").backward()
    pwr = pw.clone().requires_grad_(True)
    p = torch.sigmoid(x)
    (-(pwr * t * torch.log(p) + (1 - t) * torch.log(1 - p))).sum().backward()
    torch.testing.assert_close(pws.grad, pwr.grad)


def test_bce_pos_weight_gradient_at_logit_zero():
    """torch's test_bce_with_logits_with_pos_weight_has_correct_grad_at_zero: the gradient is 0.5."""
    x = torch.zeros(3, 1, requires_grad=True)
    LF.binary_cross_entropy_with_logits(x, torch.zeros(3, 1), pos_weight=torch.ones(1), reduction="sum").backward()
    torch.testing.assert_close(x.grad, torch.full((3, 1), 0.5))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("magnitude", [120.0, 1e4])
def test_bce_extreme_logits(dtype, magnitude):
    """torch's test_bce_with_logits_stability: +-120 (and +-1e4) stays finite, linear in the wrong logit."""
    x = torch.tensor([magnitude, -magnitude, magnitude, -magnitude], dtype=dtype, requires_grad=True)
    t = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=dtype)
    u = LF.binary_cross_entropy_with_logits(x, t, reduction="none", pos_weight=torch.tensor(2.0))
    assert u.dtype == torch.float32
    big = float(torch.tensor(magnitude, dtype=dtype))
    torch.testing.assert_close(u, torch.tensor([0.0, 0.0, big, 2 * big]))
    u.sum().backward()
    assert x.grad.dtype == dtype
    torch.testing.assert_close(x.grad.float(), torch.tensor([0.0, 0.0, 1.0, -2.0]))


def test_bce_half_matches_float32_on_rounded_inputs():
    x, t = _data((7, 3), soft=True)
    for dtype in (torch.float16, torch.bfloat16):
        xh = x.to(dtype)
        got, g = _value_and_grad(LF.binary_cross_entropy_with_logits, xh, t, reduction="none")
        want, gw = _value_and_grad(LF.binary_cross_entropy_with_logits, xh.float(), t, reduction="none")
        assert got.dtype == torch.float32 and g.dtype == dtype
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(g, gw.to(dtype))


# ------------------------------------------------------------------------------------------------
# binary_focal_loss against torchvision's formula (float64, re-derived)
# ------------------------------------------------------------------------------------------------


def torchvision_sigmoid_focal(x, t, alpha=0.25, gamma=2.0, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss's definition in float64 (alpha < 0 turns the balance off)."""
    x, t = x.double(), t.double()
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("alpha", [None, 0.25, 0.75])
@pytest.mark.parametrize("soft", [False, True])
def test_binary_focal_matches_torchvision_formula(blocks, gamma, alpha, soft):
    x, t = _data((6, 7), soft=soft, seed=int(10 * gamma) + (alpha is None))
    for r in REDUCTIONS:
        got, g_got = _value_and_grad(LF.binary_focal_loss, x, t, gamma=gamma, alpha=alpha, reduction=r)
        want, g_want = _value_and_grad(lambda a, b, **k: torchvision_sigmoid_focal(a, b, **k), x, t,
                                       alpha=-1.0 if alpha is None else alpha, gamma=gamma, reduction=r)
        torch.testing.assert_close(got, want.float(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(g_got, g_want.float(), rtol=1e-5, atol=1e-6)


def test_binary_focal_default_is_torchvision_default():
    x, t = _data()
    torch.testing.assert_close(LF.binary_focal_loss(x, t), torchvision_sigmoid_focal(x, t, reduction="mean").float())


def test_binary_focal_gamma0_no_alpha_equals_bce(blocks):
    x, t = _data((9, 4), soft=True)
    for r in REDUCTIONS:
        got, g_got = _value_and_grad(LF.binary_focal_loss, x, t, gamma=0.0, alpha=None, reduction=r)
        want, g_want = _value_and_grad(LF.binary_cross_entropy_with_logits, x, t, reduction=r)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        torch.testing.assert_close(g_got, g_want, rtol=0, atol=0)


@pytest.mark.parametrize("gamma", [0.1, 0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_binary_focal_gamma_below_one_finite_gradient_at_p_one(gamma, dtype):
    """kornia #918: (1 - p_t)^gamma with gamma < 1 has an infinite derivative at p_t = 1; the loss's
    gradient must stay finite (and equal the float64 limit) as the prediction becomes perfect."""
    x = torch.tensor([10.0, 20.0, 40.0, 90.0, 120.0, 1e4, -20.0, -90.0, -1e4], dtype=dtype)
    t = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0], dtype=dtype)
    for path in ("fused", "plain"):
        xs = x.clone().requires_grad_(True)
        ts = t.clone().requires_grad_(path == "plain")
        u = LF.binary_focal_loss(xs, ts, gamma=gamma, alpha=None, reduction="none")
        u.sum().backward()
        assert torch.isfinite(u).all() and torch.isfinite(xs.grad).all(), (path, u, xs.grad)
        # closed form of the limit: -(1 - p)^gamma * (1 - p) * (1 + gamma log p ...) -> 0; tiny but finite
        assert float(xs.grad.abs().max()) < 1e-3
        assert float(xs.grad[0]) < 0  # still pushes towards the target where representable


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_binary_focal_extreme_logits(dtype, gamma):
    x = torch.tensor([120.0, -120.0, 120.0, -120.0, 1e4, -1e4, 1e4, -1e4], dtype=dtype, requires_grad=True)
    t = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0], dtype=dtype)
    u = LF.binary_focal_loss(x, t, gamma=gamma, alpha=None, reduction="none")
    u.sum().backward()
    assert torch.isfinite(u).all() and torch.isfinite(x.grad).all()
    big = float(torch.tensor(1e4, dtype=dtype))
    # wrong and confident: p_t = 0, the factor is 1 and the loss is the cross-entropy, linear in the logit
    torch.testing.assert_close(u, torch.tensor([0.0, 0.0, 120.0, 120.0, 0.0, 0.0, big, big]))
    torch.testing.assert_close(x.grad.float(), torch.tensor([0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 1.0, -1.0]))


def test_binary_focal_gradcheck_fused_float64():
    """The custom autograd function's closed-form gradient against finite differences, and its
    double backward (through the plain formula)."""
    x, t = _data((4, 3), dtype=torch.float64, soft=True, scale=2.0)
    t[0] = t[0].round()
    for gamma, alpha in [(2.0, 0.25), (0.5, None), (1.0, 0.6), (0.0, None)]:
        for r in ("none", "mean"):

            def fn(a, gamma=gamma, alpha=alpha, r=r):
                return LF.binary_focal_loss(a, t, gamma=gamma, alpha=alpha, reduction=r)

            xs = x.clone().requires_grad_(True)
            assert torch.autograd.gradcheck(fn, (xs,))
            assert torch.autograd.gradgradcheck(fn, (xs,))
    pw = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)
    xs = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a: LF.binary_cross_entropy_with_logits(a, t, pos_weight=pw, label_smoothing=0.2, reduction="none"),
        (xs,))
    assert torch.autograd.gradgradcheck(lambda a: LF.binary_cross_entropy_with_logits(a, t, pos_weight=pw), (xs,))


def test_fused_and_plain_paths_agree():
    """The fused kernel (logits' gradient in the forward pass) and the plain formula (taken when the
    target requires grad) give the same value and logits gradient."""
    x, t = _data((13, 11), soft=True)
    cases = [(LF.binary_focal_loss, {"gamma": 2.0}), (LF.binary_focal_loss, {"gamma": 0.7, "alpha": None}),
             (LF.binary_cross_entropy_with_logits, {"pos_weight": torch.rand(11) * 2, "label_smoothing": 0.1})]
    for fn, kwargs in cases:
        fused, g_fused = _value_and_grad(fn, x, t, reduction="none", **kwargs)
        xs = x.clone().requires_grad_(True)
        plain = fn(xs, t.clone().requires_grad_(True), reduction="none", **kwargs)
        (g_plain,) = torch.autograd.grad(plain.sum(), xs)
        torch.testing.assert_close(fused, plain.detach())
        torch.testing.assert_close(g_fused, g_plain)


def test_fused_backward_twice_with_retained_graph():
    x, t = _data(soft=True)
    xs = x.clone().requires_grad_(True)
    out = LF.binary_focal_loss(xs, t, sample_weight=torch.rand(6, 5))
    out.backward(retain_graph=True)
    first = xs.grad.clone()
    out.backward()
    torch.testing.assert_close(xs.grad, 2 * first)


def test_fused_no_grad_equals_grad_path():
    x, t = _data((9, 9), soft=True)
    with torch.no_grad():
        a = LF.binary_focal_loss(x.requires_grad_(True), t, reduction="none")
    b = LF.binary_focal_loss(x, t, reduction="none")
    torch.testing.assert_close(a, b.detach(), rtol=0, atol=0)
    assert not a.requires_grad


def test_threads_give_bitwise_equal_results(monkeypatch):
    """Blocks are shared out among torch.get_num_threads() threads; the result does not depend on it."""
    monkeypatch.setattr(_binary, "BLOCK_ELEMENTS", 64)
    x, t = _data((50, 21), soft=True)
    threads = torch.get_num_threads()
    runs = []
    for n in (1, 3):
        torch.set_num_threads(n)
        try:
            runs.append(_value_and_grad(LF.binary_focal_loss, x, t, reduction="none"))
        finally:
            torch.set_num_threads(threads)
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_torch_func_transforms_take_the_plain_formula():
    x, t = _data((3, 4), soft=True)
    g = torch.func.grad(lambda a: LF.binary_focal_loss(a, t))(x)
    torch.testing.assert_close(g, _value_and_grad(LF.binary_focal_loss, x, t)[1])
    batched = torch.vmap(lambda a: LF.binary_cross_entropy_with_logits(a, t[0]))(x)
    torch.testing.assert_close(batched, F.binary_cross_entropy_with_logits(x, t[0].expand(3, 4), reduction="none")
                               .mean(1))


def test_non_contiguous_inputs(blocks):
    x, t = _data((5, 8), soft=True)
    xt, tt = x.t(), t.t()
    for fn in (LF.binary_focal_loss, LF.binary_cross_entropy_with_logits, LF.asymmetric_loss):
        got, g_got = _value_and_grad(fn, xt, tt, reduction="none")
        want, g_want = _value_and_grad(fn, xt.contiguous(), tt.contiguous(), reduction="none")
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(g_got, g_want)


@pytest.mark.parametrize("fn", [LF.binary_cross_entropy_with_logits, LF.binary_focal_loss, LF.asymmetric_loss])
def test_empty_batch(fn):
    x = torch.zeros(0, 4, requires_grad=True)
    t = torch.zeros(0, 4)
    mean = fn(x, t)
    assert mean.item() == 0.0
    (g,) = torch.autograd.grad(mean, x)
    assert g.shape == (0, 4)
    assert fn(x, t, reduction="sum").item() == 0.0
    assert fn(x, t, reduction="none").shape == (0, 4)


def test_mask_and_sample_weight_through_fused_path():
    x, t = _data((6, 5), soft=True)
    m = torch.rand(6, 5, generator=torch.Generator().manual_seed(4)) > 0.4
    w = torch.rand(6, 1) + 0.5
    got, g_got = _value_and_grad(LF.binary_focal_loss, x, t, mask=m, sample_weight=w)
    u = torchvision_sigmoid_focal(x, t).float()
    ww = (w * m).expand(6, 5)
    want = (u * ww).sum() / ww.sum()
    torch.testing.assert_close(got, want)
    xs = x.double().requires_grad_(True)
    ((torchvision_sigmoid_focal(xs, t) * ww).sum() / ww.sum()).backward()
    torch.testing.assert_close(g_got, xs.grad.float())


# ------------------------------------------------------------------------------------------------
# asymmetric_loss against the paper's equations (float64)
# ------------------------------------------------------------------------------------------------


def asl_reference(x, y, gamma_pos, gamma_neg, clip):
    """Ridnik et al. 2021, eq. (7)-(8): L+ = (1-p)^g+ log(p), L- = p_m^g- log(1 - p_m), p_m = max(p - m, 0);
    evaluated elementwise in float64 with a Python loop (moderate logits, so plain logs are exact enough)."""
    out = torch.empty(x.shape, dtype=torch.float64)
    for k, (xi, yi) in enumerate(zip(x.double().reshape(-1).tolist(), y.double().reshape(-1).tolist())):
        p = 1.0 / (1.0 + torch.exp(torch.tensor(-xi, dtype=torch.float64)).item())
        pm = max(p - clip, 0.0)
        l_pos = (1 - p) ** gamma_pos * torch.log(torch.tensor(p, dtype=torch.float64)).item()
        l_neg = pm ** gamma_neg * torch.log1p(torch.tensor(-pm, dtype=torch.float64)).item()
        out.view(-1)[k] = -yi * l_pos - (1 - yi) * l_neg
    return out


@pytest.mark.parametrize("gamma_pos, gamma_neg, clip", [(0.0, 4.0, 0.05), (1.0, 4.0, 0.05), (0.0, 0.0, 0.0),
                                                         (0.5, 2.0, 0.2), (2.0, 1.0, 0.0), (0.0, 0.5, 0.3)])
def test_asymmetric_matches_paper(gamma_pos, gamma_neg, clip):
    x, t = _data((5, 6), seed=7)
    got = LF.asymmetric_loss(x, t, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, reduction="none")
    want = asl_reference(x, t, gamma_pos, gamma_neg, clip)
    torch.testing.assert_close(got, want.float(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(LF.asymmetric_loss(x, t, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip,
                                                  reduction="sum"), want.sum().float(), rtol=1e-5, atol=1e-5)


def test_asymmetric_gradient_matches_float64_autograd():
    """The gradient flows through the focusing weights (timm's disable_torch_grad_focal_loss=False)."""
    x, t = _data((4, 5), seed=2, dtype=torch.float64)
    xs = x.clone().requires_grad_(True)
    LF.asymmetric_loss(xs, t, gamma_pos=1.0, gamma_neg=4.0, clip=0.05, reduction="sum").backward()
    xr = x.clone().requires_grad_(True)
    p = torch.sigmoid(xr)
    pm = (p - 0.05).clamp_min(0)
    ref = -(t * (1 - p) * torch.log(p) + (1 - t) * pm**4 * torch.log(1 - pm)).sum()
    ref.backward()
    torch.testing.assert_close(xs.grad, xr.grad)


def test_asymmetric_without_focusing_or_clip_is_bce():
    x, t = _data((7, 3), soft=True)
    torch.testing.assert_close(LF.asymmetric_loss(x, t, gamma_pos=0.0, gamma_neg=0.0, clip=0.0, reduction="none"),
                               F.binary_cross_entropy_with_logits(x, t, reduction="none"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("gamma_neg, clip", [(0.5, 0.05), (0.5, 0.0), (4.0, 0.05)])
def test_asymmetric_extremes_finite(dtype, gamma_neg, clip):
    """Logits +-120, +-1e4, and probabilities exactly at the margin (p_m -> 0 with gamma_neg < 1)."""
    at_margin = float(torch.logit(torch.tensor(clip if clip else 0.5)))
    x = torch.tensor([120.0, -120.0, 1e4, -1e4, at_margin, at_margin + 1e-3, at_margin - 1e-3], dtype=dtype,
                     requires_grad=True)
    t = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0], dtype=dtype)
    u = LF.asymmetric_loss(x, t, gamma_pos=0.5, gamma_neg=gamma_neg, clip=clip, reduction="none")
    u.sum().backward()
    assert torch.isfinite(u).all() and torch.isfinite(x.grad).all(), (u, x.grad)
    assert u[3].item() == pytest.approx(float(torch.tensor(1e4, dtype=dtype)), rel=1e-6)  # linear, no eps clamp


# ------------------------------------------------------------------------------------------------
# modules, registry, errors
# ------------------------------------------------------------------------------------------------


def test_modules_equal_functions_and_hold_pos_weight_as_buffer():
    x, t = _data(soft=True)
    pw = torch.linspace(0.5, 2.0, 5)
    m = lf.BCEWithLogitsLoss(pos_weight=pw, label_smoothing=0.1, reduction="sum")
    assert "pos_weight" in dict(m.named_buffers())
    torch.testing.assert_close(m(x, t), LF.binary_cross_entropy_with_logits(x, t, pos_weight=pw, label_smoothing=0.1,
                                                                              reduction="sum"))
    torch.testing.assert_close(lf.BinaryFocalLoss(gamma=1.0, alpha=None)(x, t),
                               LF.binary_focal_loss(x, t, gamma=1.0, alpha=None))
    torch.testing.assert_close(lf.AsymmetricLoss(gamma_pos=1.0)(x, t), LF.asymmetric_loss(x, t, gamma_pos=1.0))
    assert lf.get_loss("bce").name == "binary_cross_entropy_with_logits"
    assert lf.get_loss("asl").module is lf.AsymmetricLoss
    spec = lf.build("binary_focal(gamma=1.0) + 0.5*bce(pos_weight=[1.0, 2.0, 1.0, 1.0, 1.0])")
    want = LF.binary_focal_loss(x, t, gamma=1.0) + 0.5 * LF.binary_cross_entropy_with_logits(
        x, t, pos_weight=torch.tensor([1.0, 2.0, 1.0, 1.0, 1.0]))
    torch.testing.assert_close(spec(x, t), want)


X, T = torch.randn(4, 3), torch.rand(4, 3)


@pytest.mark.parametrize("fn", [LF.binary_cross_entropy_with_logits, LF.binary_focal_loss, LF.asymmetric_loss])
def test_shared_errors(fn):
    name = fn.__name__
    with pytest.raises(lf.ShapeError, match=rf"{name}: target must have the shape of logits \(4, 3\), got \(4,\)"):
        fn(X, T[:, 0])
    with pytest.raises(ValueError, match=r"got \(4,\)\. Hint: logits\.squeeze\(-1\)"):
        fn(X[:, :1], T[:, 0])
    with pytest.raises(TypeError, match=rf"{name}: logits must be a floating-point tensor, got dtype torch.int64"):
        fn(X.long(), T)
    with pytest.raises(TypeError, match=r"target must be a floating-point tensor, got dtype torch.int64.*target.float"):
        fn(X, T.round().long())
    with pytest.raises(ValueError, match=rf"{name}: target must hold probabilities in \[0, 1\], got values in"):
        fn(X, T * 2)
    with pytest.raises(TypeError, match=r"weight= is not an argument.*Hint: use sample_weight="):
        fn(X, T, weight=torch.ones(3))
    with pytest.raises(ValueError, match=r"reduction must be one of .*Did you mean 'mean'"):
        fn(X, T, reduction="avg")


def test_target_range_is_checked_only_in_validation_mode():
    with lf.validation(False):
        out = LF.binary_cross_entropy_with_logits(X, T * 2)  # no device sync: no check
    assert torch.isfinite(out)


def test_hyperparameter_errors():
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: label_smoothing must be in \[0, 1\], "
                                         r"got 1.5"):
        LF.binary_cross_entropy_with_logits(X, T, label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got -0.1"):
        lf.BCEWithLogitsLoss(label_smoothing=-0.1)
    with pytest.raises(lf.ShapeError, match=r"pos_weight must broadcast to the shape of logits \(4, 3\), got \(2,\)"):
        LF.binary_cross_entropy_with_logits(X, T, pos_weight=torch.ones(2))
    with pytest.raises(ValueError, match=r"pos_weight must broadcast.*got \(1, 4, 3\)"):
        LF.binary_cross_entropy_with_logits(X, T, pos_weight=torch.ones(1, 4, 3))
    with pytest.raises(TypeError, match=r"pos_weight must be a floating-point tensor, got dtype torch.int64"):
        LF.binary_cross_entropy_with_logits(X, T, pos_weight=torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"pos_weight must be >= 0, got a minimum of -1"):
        LF.binary_cross_entropy_with_logits(X, T, pos_weight=-torch.ones(3))
    with pytest.raises(ValueError, match=r"pos_weight must be >= 0, got -2"):
        lf.BCEWithLogitsLoss(pos_weight=-2.0)
    with pytest.raises(TypeError, match=r"pos_weight must be a tensor broadcastable to logits, a number or None"):
        LF.binary_cross_entropy_with_logits(X, T, pos_weight="2")
    with pytest.raises(ValueError, match=r"binary_focal_loss: gamma must be >= 0, got -1.0"):
        LF.binary_focal_loss(X, T, gamma=-1.0)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\] or None, got -1.*Hint: pass alpha=None"):
        LF.binary_focal_loss(X, T, alpha=-1)
    with pytest.raises(ValueError, match=r"binary_focal_loss: alpha must be in \[0, 1\] or None, got 1.5"):
        lf.BinaryFocalLoss(alpha=1.5)
    with pytest.raises(TypeError, match=r"binary_focal_loss: gamma must be a float or int, got '2'"):
        LF.binary_focal_loss(X, T, gamma="2")
    with pytest.raises(ValueError, match=r"asymmetric_loss: clip must be in \[0, 1\), got 1.0"):
        LF.asymmetric_loss(X, T, clip=1.0)
    with pytest.raises(ValueError, match=r"asymmetric_loss: gamma_neg must be >= 0, got -1"):
        lf.AsymmetricLoss(gamma_neg=-1)


@pytest.mark.slow
def test_binary_focal_compiles_fullgraph():
    """torch.compile(fullgraph=True) with inductor: same value and gradient as eager (the compiled
    graph takes the plain formula, which the compiler fuses)."""
    import torch._dynamo

    torch._dynamo.reset()
    x, t = _data((64, 33), soft=True)
    with lf.validation(False):  # value checks read tensors (a graph break by design)
        compiled = torch.compile(LF.binary_focal_loss, fullgraph=True)
        for kwargs in ({}, {"gamma": 0.5, "alpha": None, "reduction": "sum"}):
            got, g_got = _value_and_grad(compiled, x, t, **kwargs)
            want, g_want = _value_and_grad(LF.binary_focal_loss, x, t, **kwargs)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(g_got, g_want, rtol=1e-5, atol=1e-6)
        with pytest.raises(ValueError, match=r"binary_focal_loss: gamma must be >= 0, got -1.0"):
            torch.compile(LF.binary_focal_loss)(x, t, gamma=-1.0)  # checked in Python, before tracing tensors
    torch._dynamo.reset()
