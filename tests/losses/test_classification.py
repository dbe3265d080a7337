"""Softmax / index-target classification losses: independent references, identities, edge cases, errors.

References used here: torch's own cross-entropy and KL divergence, closed forms, and slow
per-sample Python loops in float64 written from the papers' formulas.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import lossforge as lf
import lossforge.functional as LF
from lossforge.losses._softmax_kernels import target_log_prob

INDEX_LOSSES = {
    "cross_entropy": {},
    "focal": {"gamma": 2.0},
    "poly1": {"epsilon": 1.0},
    "symmetric_cross_entropy": {},
    "generalized_cross_entropy": {"q": 0.7},
    "bi_tempered": {"t1": 0.5, "t2": 2.0},
    "ldam": {"class_counts": [100, 30, 10, 3, 1]},
    "class_balanced": {"class_counts": [100, 30, 10, 3, 1], "beta": 0.99, "gamma": 0.5},
}


def _fn(name: str):
    return lf.get_loss(name).function


def _data(n: int = 12, c: int = 5, *, dtype=torch.float64, seed: int = 0, scale: float = 2.0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n, c, generator=g, dtype=torch.float64) * scale).to(dtype)
    t = torch.randint(c, (n,), generator=g)
    return x, t


# ------------------------------------------------------------------------------------------------
# cross-entropy against torch, and focal with gamma=0 equal to it
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ignore_index", [-100, 255])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_matches_torch(ignore_index, label_smoothing, weighted):
    x, t = _data(10, 4, dtype=torch.float32)
    t[::3] = ignore_index
    w = torch.tensor([0.5, 2.0, 1.0, 3.0]) if weighted else None
    for r in ("none", "sum", "mean"):
        got = LF.cross_entropy(x, t, class_weight=w, ignore_index=ignore_index, label_smoothing=label_smoothing,
                               reduction=r)
        want = F.cross_entropy(x, t, weight=w, ignore_index=ignore_index, label_smoothing=label_smoothing,
                               reduction=r)
        torch.testing.assert_close(got, want)


def test_cross_entropy_k_dim_equals_flattened():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 3, 5, generator=g)
    t = torch.randint(4, (2, 3, 5), generator=g)
    t[0, 1] = 255
    flat_x, flat_t = x.movedim(1, -1).reshape(-1, 4), t.reshape(-1)
    for name in ("cross_entropy", "focal", "poly1", "generalized_cross_entropy", "bi_tempered"):
        got = _fn(name)(x, t, ignore_index=255, reduction="none")
        want = _fn(name)(flat_x, flat_t, ignore_index=255, reduction="none").view(2, 3, 5)
        torch.testing.assert_close(got, want, msg=name)
    torch.testing.assert_close(LF.focal_loss(x, t, gamma=0.0, ignore_index=255),
                               F.cross_entropy(x, t, ignore_index=255))


@pytest.mark.parametrize("weighted", [False, True])
def test_focal_gamma_zero_is_cross_entropy(weighted):
    x, t = _data(16, 6, dtype=torch.float32)
    t[2] = -100
    w = torch.linspace(0.5, 2.0, 6) if weighted else None
    for r in ("none", "sum", "mean"):
        got = LF.focal_loss(x, t, gamma=0.0, class_weight=w, reduction=r)
        want = F.cross_entropy(x, t, weight=w, reduction=r)
        # the same log_softmax kernel: bit for bit per unit; sums may add in another order
        torch.testing.assert_close(got, want, rtol=0 if r == "none" else 1e-6, atol=0)


def test_focal_alpha_is_background_foreground_class_weight():
    x, t = _data(20, 4)
    a = 0.25
    cw = torch.tensor([1 - a, a, a, a], dtype=torch.float64)
    for r in ("none", "sum", "mean"):
        torch.testing.assert_close(LF.focal_loss(x, t, alpha=a, reduction=r),
                                   LF.focal_loss(x, t, class_weight=cw, reduction=r))
    both = LF.focal_loss(x, t, alpha=a, class_weight=torch.full((4,), 2.0, dtype=torch.float64), reduction="sum")
    torch.testing.assert_close(both, 2 * LF.focal_loss(x, t, alpha=a, reduction="sum"))


def test_poly1_epsilon_zero_and_bi_tempered_t1_t2_one_are_cross_entropy():
    x, t = _data(16, 6, dtype=torch.float32)
    t[3] = -100
    ce = F.cross_entropy(x, t, reduction="none")
    torch.testing.assert_close(LF.poly1_loss(x, t, epsilon=0.0, reduction="none"), ce, rtol=0, atol=0)
    torch.testing.assert_close(LF.bi_tempered_loss(x, t, t1=1.0, t2=1.0, reduction="none"), ce)
    torch.testing.assert_close(LF.symmetric_cross_entropy_loss(x, t, alpha=1.0, beta=0.0, reduction="none"), ce)
    torch.testing.assert_close(LF.ldam_loss(x, t, class_counts=[5, 4, 3, 2, 1, 1], max_m=0.0, s=1.0,
                                            reduction="none"), ce)


def test_generalized_cross_entropy_small_q_is_cross_entropy_without_cancellation():
    x, t = _data(16, 6, dtype=torch.float32, scale=5.0)
    ce = F.cross_entropy(x, t, reduction="none")
    for q in (1e-6, 1e-9, 1e-12):
        torch.testing.assert_close(LF.generalized_cross_entropy_loss(x, t, q=q, reduction="none"), ce,
                                   rtol=1e-5, atol=1e-6)
    # q = 1 is the mean absolute error of the probabilities, 1 - p_t
    p_t = torch.softmax(x, 1).gather(1, t[:, None]).squeeze(1)
    torch.testing.assert_close(LF.generalized_cross_entropy_loss(x, t, q=1.0, reduction="none"), 1 - p_t)


# ------------------------------------------------------------------------------------------------
# Slow per-sample references in float64, from the papers' formulas
# ------------------------------------------------------------------------------------------------


def _row_log_softmax(row: list[float]) -> list[float]:
    m = max(row)
    s = sum(math.exp(v - m) for v in row)
    return [v - m - math.log(s) for v in row]


def _ref_focal(row, y, gamma):
    p = math.exp(_row_log_softmax(row)[y])
    return -((1 - p) ** gamma) * math.log(p)


def _ref_poly1(row, y, eps):
    p = math.exp(_row_log_softmax(row)[y])
    return -math.log(p) + eps * (1 - p)


def _ref_gce(row, y, q):
    p = math.exp(_row_log_softmax(row)[y])
    return (1 - p**q) / q


def _ref_sce(row, y, alpha, beta, a):
    probs = [math.exp(v) for v in _row_log_softmax(row)]
    ce = -math.log(probs[y])
    rce = -sum(p * (0.0 if c == y else a) for c, p in enumerate(probs))  # log of the one-hot, log 0 -> A
    return alpha * ce + beta * rce


def _ref_ldam(row, y, counts, max_m, s):
    raw = [n ** -0.25 for n in counts]
    margins = [m * max_m / max(raw) for m in raw]
    z = [s * (v - (margins[c] if c == y else 0.0)) for c, v in enumerate(row)]
    return -_row_log_softmax(z)[y]


def _exp_t(u, t):
    return math.exp(u) if t == 1 else max(1 + (1 - t) * u, 0.0) ** (1 / (1 - t))


def _log_t(v, t):
    return math.log(v) if t == 1 else (v ** (1 - t) - 1) / (1 - t)


def _ref_bi_tempered(row, y, t1, t2, smoothing):
    # normaliser by bisection: sum_c exp_t2(x_c - lam) = 1, decreasing in lam
    lo, hi = max(row) - 50.0, max(row) + 50.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(_exp_t(v - mid, t2) for v in row) > 1 else (lo, mid)
    probs = [_exp_t(v - (lo + hi) / 2, t2) for v in row]
    c = len(row)
    labels = [(1 - smoothing) * (k == y) + smoothing / c for k in range(c)]
    total = 0.0
    for lab, p in zip(labels, probs):
        total += (lab * _log_t(lab, t1) if lab > 0 else 0.0) - lab * _log_t(p, t1)
        total -= (lab ** (2 - t1) - p ** (2 - t1)) / (2 - t1)
    return total


REFERENCES = [
    ("focal", {"gamma": 2.0}, lambda r, y: _ref_focal(r, y, 2.0)),
    ("focal", {"gamma": 0.5}, lambda r, y: _ref_focal(r, y, 0.5)),
    ("poly1", {"epsilon": 2.0}, lambda r, y: _ref_poly1(r, y, 2.0)),
    ("poly1", {"epsilon": -1.0}, lambda r, y: _ref_poly1(r, y, -1.0)),
    ("generalized_cross_entropy", {"q": 0.7}, lambda r, y: _ref_gce(r, y, 0.7)),
    ("generalized_cross_entropy", {"q": 0.05}, lambda r, y: _ref_gce(r, y, 0.05)),
    ("symmetric_cross_entropy", {}, lambda r, y: _ref_sce(r, y, 0.1, 1.0, -4.0)),
    ("symmetric_cross_entropy", {"alpha": 0.5, "beta": 2.0, "log_zero": -6.0},
     lambda r, y: _ref_sce(r, y, 0.5, 2.0, -6.0)),
    ("ldam", {"class_counts": [500, 120, 40, 9, 2]}, lambda r, y: _ref_ldam(r, y, [500, 120, 40, 9, 2], 0.5, 30.0)),
    ("ldam", {"class_counts": [5, 5, 4, 1, 3], "max_m": 1.0, "s": 4.0},
     lambda r, y: _ref_ldam(r, y, [5, 5, 4, 1, 3], 1.0, 4.0)),
    ("bi_tempered", {"t1": 0.8, "t2": 1.2}, lambda r, y: _ref_bi_tempered(r, y, 0.8, 1.2, 0.0)),
    ("bi_tempered", {"t1": 0.2, "t2": 4.0, "num_iters": 20}, lambda r, y: _ref_bi_tempered(r, y, 0.2, 4.0, 0.0)),
    ("bi_tempered", {"t1": 0.5, "t2": 1.5, "label_smoothing": 0.2},
     lambda r, y: _ref_bi_tempered(r, y, 0.5, 1.5, 0.2)),
    ("bi_tempered", {"t1": 1.0, "t2": 2.0}, lambda r, y: _ref_bi_tempered(r, y, 1.0, 2.0, 0.0)),
]


@pytest.mark.parametrize(("name", "kwargs", "ref"), REFERENCES, ids=lambda v: str(v) if isinstance(v, str) else "")
def test_per_sample_loop_reference(name, kwargs, ref):
    x, t = _data(12, 5, scale=0.5 if name == "ldam" else 2.0)
    got = _fn(name)(x, t, **kwargs, reduction="none")
    want = torch.tensor([ref(row, int(y)) for row, y in zip(x.tolist(), t)], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)
    # float32 against the float64 reference
    got32 = _fn(name)(x.float(), t, **kwargs, reduction="none")
    torch.testing.assert_close(got32.double(), want, rtol=1e-5, atol=1e-5)


def test_bi_tempered_normaliser_converges_for_many_classes():
    from lossforge.losses._classification import _tempered_log_softmax

    g = torch.Generator().manual_seed(3)
    for t2, scale, classes in ((1.2, 5.0, 2000), (2.0, 100.0, 2000), (4.0, 1.0, 20000), (8.0, 1.0, 3),
                               (1.0001, 3.0, 100), (4.0, 1e4, 5)):
        a = torch.randn(4, classes, generator=g, dtype=torch.float64) * scale
        total = _tempered_log_softmax(a, t2, 10).exp().sum(1)
        torch.testing.assert_close(total, torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-11)


# ------------------------------------------------------------------------------------------------
# distillation, consistency, soft targets, class-balanced weights
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_distillation_is_batchmean_kl_times_t_squared(temperature):
    s, te = _data(9, 7, seed=1)[0], _data(9, 7, seed=2)[0]
    want = F.kl_div(F.log_softmax(s / temperature, 1), F.log_softmax(te / temperature, 1), reduction="batchmean",
                    log_target=True) * temperature**2
    torch.testing.assert_close(LF.distillation_loss(s, te, temperature=temperature), want)
    torch.testing.assert_close(LF.distillation_loss(s, s, temperature=temperature), torch.zeros((), dtype=s.dtype),
                               atol=1e-12, rtol=0)
    # per sample: summed over the classes
    none = LF.distillation_loss(s, te, temperature=temperature, reduction="none")
    assert none.shape == (9,)
    torch.testing.assert_close(none.mean(), want)


def test_distillation_teacher_underflow_is_finite():
    s = torch.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    te = torch.tensor([[-1e4, 1e4, 0.0]], requires_grad=True)
    v = LF.distillation_loss(s, te, temperature=1.0)
    v.backward()
    assert torch.isfinite(v) and torch.isfinite(s.grad).all() and torch.isfinite(te.grad).all()
    torch.testing.assert_close(v, torch.tensor(2e4))


def test_jsd_consistency_reference_and_bounds():
    g = torch.Generator().manual_seed(4)
    views = torch.randn(3, 6, 5, generator=g, dtype=torch.float64) * 2
    p = torch.softmax(views, 2)
    m = p.mean(0)
    want = sum((pk * (pk.log() - m.log())).sum(1) for pk in p) / 3
    got = LF.jsd_consistency_loss(views, reduction="none")
    torch.testing.assert_close(got, want)
    # AugMix's form: mean of the three KL(p_k || m) with batchmean
    augmix = sum(F.kl_div(m.log(), pk, reduction="batchmean") for pk in p) / 3
    torch.testing.assert_close(LF.jsd_consistency_loss(views), augmix)
    same = views[:1].expand(4, 6, 5)
    torch.testing.assert_close(LF.jsd_consistency_loss(same), torch.zeros((), dtype=torch.float64), atol=1e-12,
                               rtol=0)
    disjoint = torch.tensor([[[1e4, 0.0, 0.0]], [[0.0, 1e4, 0.0]], [[0.0, 0.0, 1e4]]])
    torch.testing.assert_close(LF.jsd_consistency_loss(disjoint), torch.tensor(math.log(3)))
    empty = torch.zeros(3, 0, 5, requires_grad=True)
    out = LF.jsd_consistency_loss(empty)
    out.backward()
    assert out.item() == 0.0 and LF.jsd_consistency_loss(empty, reduction="none").shape == (0,)
    # AugMix's concatenated batch as a view
    cat = torch.cat(list(views))
    torch.testing.assert_close(LF.jsd_consistency_loss(cat.view(3, 6, 5)), LF.jsd_consistency_loss(views))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_soft_cross_entropy_matches_torch_probability_targets(label_smoothing):
    x, _ = _data(8, 5, dtype=torch.float32)
    y = torch.softmax(torch.randn(8, 5), 1)
    w = torch.tensor([1.0, 2.0, 0.5, 1.5, 3.0])
    for kw, tkw in (({}, {}), ({"class_weight": w}, {"weight": w})):
        for r in ("none", "sum", "mean"):
            got = LF.soft_cross_entropy(x, y, label_smoothing=label_smoothing, reduction=r, **kw)
            want = F.cross_entropy(x, y, label_smoothing=label_smoothing, reduction=r, **tkw)
            torch.testing.assert_close(got, want)
    t = torch.randint(5, (8,))
    torch.testing.assert_close(LF.soft_cross_entropy(x, F.one_hot(t, 5).float()), F.cross_entropy(x, t))


def test_class_balanced_weights_closed_form():
    counts = [5000, 500, 50, 5, 1]
    for beta in (0.0, 0.9, 0.99, 0.999, 0.9999, 1.0):
        raw = [1 / n if beta == 1.0 else (1 - beta) / (1 - beta**n) for n in counts]
        want = torch.tensor([5 * r / sum(raw) for r in raw], dtype=torch.float32)
        got = LF.class_balanced_weights(counts, beta=beta)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
        assert got.dtype == torch.float32 and got.shape == (5,)
        torch.testing.assert_close(got.sum(), torch.tensor(5.0))
    # tensors work too, and beta close to 1 with large counts has no cancellation
    got = LF.class_balanced_weights(torch.tensor([1e6, 1e5]), beta=1 - 1e-9)
    raw = [-math.expm1(math.log1p(-1e-9)) / -math.expm1(n * math.log1p(-1e-9)) for n in (1e6, 1e5)]
    torch.testing.assert_close(got, torch.tensor([2 * r / sum(raw) for r in raw]), rtol=1e-6, atol=0)


def test_class_balanced_loss_is_focal_with_class_balanced_weights():
    x, t = _data(20, 5)
    t[4] = -100
    counts = [100, 30, 10, 3, 1]
    w = LF.class_balanced_weights(counts, beta=0.99).double()
    for gamma in (0.0, 2.0):
        for r in ("none", "sum", "mean"):
            got = LF.class_balanced_loss(x, t, class_counts=counts, beta=0.99, gamma=gamma, reduction=r)
            want = LF.focal_loss(x, t, gamma=gamma, class_weight=w, reduction=r)
            torch.testing.assert_close(got, want)
    torch.testing.assert_close(LF.class_balanced_loss(x.float(), t, class_counts=counts, beta=0.99),
                               F.cross_entropy(x.float(), t, weight=w.float()))
    module = lf.ClassBalancedLoss(class_counts=counts, beta=0.99)
    assert module.class_counts.shape == (5,) and "class_counts" in module.state_dict()
    torch.testing.assert_close(module(x, t), LF.class_balanced_loss(x, t, class_counts=counts, beta=0.99))


def test_ldam_margins_follow_the_reference_implementation():
    # LDAM-DRW: m = 1 / n^(1/4), rescaled so the largest is max_m; x_y - m_y, then CE of s * x
    x, t = _data(10, 4, scale=0.3)
    counts = torch.tensor([400.0, 100.0, 25.0, 4.0])
    m = 1.0 / counts.double().sqrt().sqrt()
    m = m * (0.5 / m.max())
    shifted = x - F.one_hot(t, 4) * m[t][:, None]
    want = F.cross_entropy(30.0 * shifted, t, weight=torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    got = LF.ldam_loss(x, t, class_counts=counts, class_weight=torch.tensor([1.0, 2.0, 3.0, 4.0]))
    torch.testing.assert_close(got, want)


# ------------------------------------------------------------------------------------------------
# The custom autograd function
# ------------------------------------------------------------------------------------------------


def test_target_log_prob_gradcheck_and_gradgradcheck():
    for shape in ((6, 5), (3, 4, 2, 3)):
        g = torch.Generator().manual_seed(5)
        x = torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
        t = torch.randint(shape[1], (shape[0], *shape[2:]), generator=g)
        assert torch.autograd.gradcheck(lambda x, t=t: target_log_prob(x, t), (x,))
        assert torch.autograd.gradgradcheck(lambda x, t=t: target_log_prob(x, t), (x,))


def test_target_log_prob_equals_torch_bit_for_bit_and_eager_gradient():
    import lossforge.losses._softmax_kernels as kernels

    g = torch.Generator().manual_seed(6)
    x = torch.randn(37, 300, generator=g, requires_grad=True)
    t = torch.randint(300, (37,), generator=g)
    w = torch.randn(37, generator=g)
    old = kernels.MIN_BLOCK_ELEMENTS
    try:
        kernels.MIN_BLOCK_ELEMENTS = 1000  # several row blocks, a ragged last one
        assert len(kernels._row_blocks(x)) > 2
        lp = target_log_prob(x, t)
    finally:
        kernels.MIN_BLOCK_ELEMENTS = old
    torch.testing.assert_close(lp, -F.cross_entropy(x, t, reduction="none"), rtol=0, atol=0)
    (lp * w).sum().backward()
    got = x.grad.clone()
    x.grad = None
    (F.log_softmax(x, 1).gather(1, t[:, None]).squeeze(1) * w).sum().backward()
    torch.testing.assert_close(got, x.grad, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_target_log_prob_half_inputs_blockwise(dtype):
    import lossforge.losses._softmax_kernels as kernels

    g = torch.Generator().manual_seed(7)
    x = (torch.randn(20, 50, generator=g) * 3).to(dtype).requires_grad_()
    t = torch.randint(50, (20,), generator=g)
    w = torch.randn(20, generator=g)
    old = kernels.MIN_BLOCK_ELEMENTS
    try:
        kernels.MIN_BLOCK_ELEMENTS = 128
        lp = target_log_prob(x, t)
        (lp * w).sum().backward()
    finally:
        kernels.MIN_BLOCK_ELEMENTS = old
    assert lp.dtype == torch.float32 and x.grad.dtype == dtype
    xf = x.detach().float().requires_grad_()
    ref = F.log_softmax(xf, 1).gather(1, t[:, None]).squeeze(1)
    (ref * w).sum().backward()
    torch.testing.assert_close(lp, ref)
    torch.testing.assert_close(x.grad.float(), xf.grad, rtol=0, atol=1e-2)


def test_target_log_prob_non_contiguous_and_no_grad():
    g = torch.Generator().manual_seed(8)
    base = torch.randn(7, 9, generator=g, requires_grad=True)
    x = base.t()  # (9, 7), non-contiguous
    t = torch.randint(7, (9,), generator=g)
    lp = target_log_prob(x, t)
    lp.sum().backward()
    got = base.grad.clone()
    base.grad = None
    F.log_softmax(base.t(), 1).gather(1, t[:, None]).sum().backward()
    torch.testing.assert_close(got, base.grad)
    with torch.no_grad():
        assert target_log_prob(x, t).grad_fn is None


# ------------------------------------------------------------------------------------------------
# Edge cases: extreme logits, p -> 1 with gamma < 1, all ignored, inputs untouched
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", list(INDEX_LOSSES))
def test_extreme_logits_finite_value_and_gradient(name, dtype):
    x = torch.tensor([[1e4, -1e4, 0.0, 0.0, 0.0], [-1e4, 1e4, 0.0, 0.0, 0.0], [0.0] * 5],
                     dtype=torch.float32).to(dtype).requires_grad_()
    t = torch.tensor([0, 0, 4])
    v = _fn(name)(x, t, **INDEX_LOSSES[name], reduction="none")
    assert v.dtype == torch.float32 and torch.isfinite(v).all()
    v.sum().backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad).all()
    # perfect prediction: the minimum, 0 (t2 = 2's heavy tail still leaves 4 classes ~1e-4 each)
    assert v[0].item() == pytest.approx(0.0, abs=1e-5 if name == "bi_tempered" else 1e-6)


@pytest.mark.parametrize("name", ["distillation", "jsd_consistency", "soft_cross_entropy"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_extreme_logits_distribution_losses(name, dtype):
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]]).to(dtype).requires_grad_()
    other = torch.tensor([[-1e4, 0.0, 1e4], [0.0, 1e4, -1e4]]).to(dtype)
    if name == "jsd_consistency":
        v = LF.jsd_consistency_loss(torch.stack([x, other]))
    elif name == "distillation":
        v = LF.distillation_loss(x, other, temperature=2.0)
    else:
        v = LF.soft_cross_entropy(x, torch.softmax(other.float(), 1).to(dtype))
    v.backward()
    assert v.dtype == torch.float32 and torch.isfinite(v) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("gamma", [0.1, 0.5, 0.9])
def test_focal_gamma_below_one_at_p_one_has_finite_gradient(gamma):
    # kornia #918: d/dp (1-p)^gamma = -gamma (1-p)^(gamma-1) is infinite at p = 1
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor([[100.0, 0.0, 0.0], [60.0, 0.0, 0.0], [17.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
                         dtype=dtype, requires_grad=True)
        t = torch.tensor([0, 0, 0, 0])
        v = LF.focal_loss(x, t, gamma=gamma, reduction="sum")
        v.backward()
        assert torch.isfinite(v) and torch.isfinite(x.grad).all(), (dtype, x.grad)
        assert x.grad[0].abs().max() < 1e-6  # p_t = 1 exactly: the loss is flat there
    x = torch.tensor([[0.3, -0.2, 0.1]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: LF.focal_loss(x, torch.tensor([0]), gamma=gamma), (x,))


@pytest.mark.parametrize("name", list(INDEX_LOSSES))
def test_all_ignored_gives_zero_with_zero_gradient(name):
    x = torch.randn(4, 5, requires_grad=True)
    t = torch.full((4,), -100)
    kwargs = INDEX_LOSSES[name]
    mean = _fn(name)(x, t, **kwargs)
    mean.backward()
    assert mean.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))
    assert _fn(name)(x, t, **kwargs, reduction="sum").item() == 0.0
    none = _fn(name)(x, t, **kwargs, reduction="none")
    assert none.shape == (4,) and torch.equal(none, torch.zeros(4))
    empty = _fn(name)(torch.randn(0, 5, requires_grad=True), torch.zeros(0, dtype=torch.long), **kwargs)
    assert empty.item() == 0.0


@pytest.mark.parametrize("name", list(INDEX_LOSSES))
def test_ignored_targets_are_the_masked_subset(name):
    x, t = _data(12, 5)
    ti = t.clone()
    ti[::4] = 255
    keep = ti != 255
    kwargs = INDEX_LOSSES[name]
    for r in ("sum", "mean"):
        torch.testing.assert_close(_fn(name)(x, ti, ignore_index=255, **kwargs, reduction=r),
                                   _fn(name)(x[keep], t[keep], **kwargs, reduction=r))


def test_inputs_untouched_and_int32_targets():
    x, t = _data(8, 5, dtype=torch.float32)
    x0, t0 = x.clone(), t.clone()
    xr = x.clone().requires_grad_()
    for name, kwargs in INDEX_LOSSES.items():
        _fn(name)(xr, t, **kwargs).backward()
        torch.testing.assert_close(_fn(name)(x, t.int(), **kwargs), _fn(name)(x, t, **kwargs))
    assert torch.equal(xr.detach(), x0) and torch.equal(t, t0)


# ------------------------------------------------------------------------------------------------
# Modules, specs, errors
# ------------------------------------------------------------------------------------------------


def test_modules_equal_functions_and_build_from_specs():
    x, t = _data(8, 5, dtype=torch.float32)
    pairs = [
        (lf.FocalLoss(gamma=0.5, alpha=0.25), LF.focal_loss(x, t, gamma=0.5, alpha=0.25)),
        (lf.Poly1Loss(epsilon=2.0), LF.poly1_loss(x, t, epsilon=2.0)),
        (lf.LDAMLoss(class_counts=[9, 7, 5, 3, 1]), LF.ldam_loss(x, t, class_counts=[9, 7, 5, 3, 1])),
        (lf.build("focal(gamma=0.5, alpha=0.25)"), LF.focal_loss(x, t, gamma=0.5, alpha=0.25)),
        (lf.build("ldam(class_counts=[9, 7, 5, 3, 1], s=10.0)"),
         LF.ldam_loss(x, t, class_counts=[9, 7, 5, 3, 1], s=10.0)),
        (lf.build({"loss": "class_balanced", "class_counts": [9, 7, 5, 3, 1], "gamma": 1.0}),
         LF.class_balanced_loss(x, t, class_counts=[9, 7, 5, 3, 1], gamma=1.0)),
    ]
    for module, want in pairs:
        torch.testing.assert_close(module(x, t), want)
    kd = lf.build("distillation(temperature=3.0)")
    torch.testing.assert_close(kd(x, x.flip(0)), LF.distillation_loss(x, x.flip(0), temperature=3.0))


@pytest.mark.parametrize(("call", "exc", "match"), [
    (lambda: LF.focal_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), gamma=-0.5), ValueError,
     r"focal_loss: gamma must be >= 0, got -0.5"),
    (lambda: lf.FocalLoss(alpha=2.0), ValueError, r"focal_loss: alpha must be in \[0, 1\], got 2.0"),
    (lambda: LF.focal_loss(torch.randn(4, 3), torch.tensor([0, 1, 3, 1])), ValueError,
     r"focal_loss: target must hold class indices in \[0, 2\] or ignore_index=-100, got class 3"),
    (lambda: LF.focal_loss(torch.randn(4, 3), torch.tensor([0.0, 1, 2, 1])), TypeError,
     r"focal_loss: target must be an integer tensor of class indices"),
    (lambda: LF.poly1_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), epsilon=-1.5), ValueError,
     r"poly1_loss: epsilon must be >= -1, got -1.5"),
    (lambda: lf.GeneralizedCrossEntropyLoss(q=0.0), ValueError,
     r"generalized_cross_entropy_loss: q must be in \(0, 1\], got 0.0"),
    (lambda: lf.SymmetricCrossEntropyLoss(log_zero=0.5), ValueError,
     r"symmetric_cross_entropy_loss: log_zero must be < 0, got 0.5"),
    (lambda: lf.BiTemperedLoss(t2=0.8), ValueError, r"bi_tempered_loss: t2 must be >= 1, got 0.8"),
    (lambda: lf.BiTemperedLoss(num_iters=2.5), ValueError, r"num_iters must be an int >= 1, got 2.5"),
    (lambda: LF.ldam_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), class_counts=torch.tensor([3.0, 0.0, 1.0])),
     ValueError, r"ldam_loss: class_counts must hold positive finite counts, got 0"),
    (lambda: LF.ldam_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), class_counts=[3, 2]), ValueError,
     r"ldam_loss: class_counts must have shape \(C,\) = \(3,\), got \(2,\)"),
    (lambda: LF.ldam_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1])), TypeError, r"class_counts"),
    (lambda: LF.ldam_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), class_counts=["a", "b", "c"]), TypeError,
     r"ldam_loss: class_counts must be a sequence of numbers or a tensor, got \['a', 'b', 'c'\]"),
    (lambda: lf.LDAMLoss(class_counts=torch.tensor([3.0, -2.0])), ValueError,
     r"ldam_loss: class_counts must hold positive finite counts, got -2"),
    (lambda: lf.LDAMLoss(class_counts=[3, 2], s=0), ValueError, r"ldam_loss: s must be > 0, got 0"),
    (lambda: LF.class_balanced_weights([10, -1]), ValueError,
     r"class_balanced_weights: class_counts must hold positive finite counts, got -1"),
    (lambda: LF.class_balanced_weights([10, 1], beta=1.5), ValueError,
     r"class_balanced_weights: beta must be in \[0, 1\], got 1.5"),
    (lambda: LF.class_balanced_weights(torch.ones(2, 2)), ValueError,
     r"class_balanced_weights: class_counts must have shape \(C,\), got \(2, 2\)"),
    (lambda: LF.class_balanced_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), class_counts=[3, 2, 1],
                                    class_weight=torch.ones(3)), TypeError,
     r"unexpected keyword argument 'class_weight'"),
    (lambda: LF.soft_cross_entropy(torch.randn(4, 3), torch.tensor([[0.5, 0.6, 0.0]] * 4)), ValueError,
     r"soft_cross_entropy: target must sum to 1 along dim 1, got an error of 0.1"),
    (lambda: LF.soft_cross_entropy(torch.randn(4, 3), torch.tensor([[1.5, -0.5, 0.0]] * 4)), ValueError,
     r"soft_cross_entropy: target must hold probabilities in \[0, 1\]"),
    (lambda: LF.soft_cross_entropy(torch.randn(4, 3), torch.full((4, 3), 1 / 3), ignore_index=0), TypeError,
     r"unexpected keyword argument 'ignore_index'"),
    (lambda: LF.soft_cross_entropy(torch.randn(4, 3), torch.tensor([0, 1, 2, 1])), TypeError,
     r"soft_cross_entropy: target must be a floating-point tensor"),
    (lambda: LF.distillation_loss(torch.randn(4, 3), torch.randn(4, 3), temperature=0), ValueError,
     r"distillation_loss: temperature must be > 0, got 0"),
    (lambda: LF.distillation_loss(torch.randn(4, 3), torch.randn(3, 3)), ValueError,
     r"teacher_logits must have the shape of student_logits \(4, 3\), got \(3, 3\)"),
    (lambda: LF.jsd_consistency_loss(torch.randn(1, 4, 3)), ValueError,
     r"jsd_consistency_loss: logits must stack K >= 2 views on dim 0.*Hint: torch.stack"),
    (lambda: LF.jsd_consistency_loss(torch.randn(4, 3)), ValueError,
     r"jsd_consistency_loss: logits must have shape \(K, N, C, \*\) with K >= 2 views, got \(4, 3\)"),
    (lambda: LF.focal_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), weight=torch.ones(3)), TypeError,
     r"weight= is not an argument.*Hint: use sample_weight="),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_registry_error_inputs_raise_as_declared():
    import re

    for name in ("soft_cross_entropy", "focal", "poly1", "symmetric_cross_entropy", "generalized_cross_entropy",
                 "bi_tempered", "ldam", "class_balanced", "distillation", "jsd_consistency"):
        spec = lf.get_loss(name)
        for e in spec.error_inputs():
            with pytest.raises(e.exc_type) as info:
                if e.at_construction:
                    spec.module(**e.kwargs)
                else:
                    spec.function(*e.args, **e.kwargs)
            assert re.search(e.match, str(info.value)), (name, e.match, str(info.value))


@pytest.mark.slow
def test_focal_loss_compiles_fullgraph():
    x, t = _data(16, 7, dtype=torch.float32)
    t[3] = -100
    w = torch.linspace(0.5, 2.0, 7)
    compiled = torch.compile(LF.focal_loss, fullgraph=True)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    with lf.validation(False):  # value checks sync the device, so they stay out of compiled code
        got = compiled(xa, t, gamma=0.5, alpha=0.25, class_weight=w)
    want = LF.focal_loss(xb, t, gamma=0.5, alpha=0.25, class_weight=w)
    got.backward()
    want.backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(xa.grad, xb.grad)
    # a bad hyper-parameter still raises (without fullgraph: Dynamo cannot let an exception leave a full graph)
    with pytest.raises(ValueError, match=r"focal_loss: gamma must be >= 0, got -1.0"):
        torch.compile(LF.focal_loss)(x, t, gamma=-1.0)
