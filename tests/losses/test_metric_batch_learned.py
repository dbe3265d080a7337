"""Metric-learning losses of ``_metric_batch`` and ``_metric_learned``: NCA, angular, tuplet
margin, SNR contrastive, FastAP, histogram, margin, normalized softmax, SoftTriple, large-margin
softmax.

1. Independent float64 references that loop over every anchor, pair and triplet (from the papers'
   formulas), for value and gradient.
2. Cross-checks against pytorch-metric-learning (PML 2.9.0), value and gradient. Parameter
   mapping (PML -> lossforge), and each deliberate difference:

   - ``NCALoss(softmax_scale=k)`` (PML's default distance ``LpDistance(power=2)`` normalises the
     embeddings) -> ``nca_loss(temperature=1/k, normalize=True)``. Both average over anchors with
     a positive (lossforge: and a negative, but an anchor without negatives only occurs in a
     one-class batch, where both give 0). PML also drops an anchor whose positive probability
     underflows to 0; lossforge works in log space and keeps it.
   - ``AngularLoss(alpha=a)`` (degrees) -> ``angular_loss(alpha=a)`` (degrees). PML's MeanReducer
     over positive pairs = lossforge's ``"mean"`` (sum over an anchor's positive pairs, divided by
     the number of pairs). PML normalises anchors and positives but takes the negatives ``x_n`` unnormalised (the paper
     normalises all three), so the test feeds both unit-norm embeddings (normalised inside the
     differentiated function, so the gradients still compare).
   - ``TupletMarginLoss(margin=b, scale=s)`` (``b`` in degrees) -> ``tuplet_margin_loss(
     margin=radians(b), scale=s)``; same reduction as angular.
   - ``SignalToNoiseRatioContrastiveLoss(pos_margin=a, neg_margin=b)`` (its ``SNRDistance``
     normalises the embeddings by default) -> ``snr_contrastive_loss(pos_margin=a, margin=b,
     normalize=True)``: the same pair terms. PML reduces positive and negative pairs
     separately (AvgNonZeroReducer each) and adds the two; lossforge averages all ordered pairs
     (as ``contrastive_loss``), so the test compares the two parts one at a time with PML's
     ``MeanReducer``.
   - ``MarginLoss(margin=a, nu=v, beta=b, learn_beta=True, num_classes=C)`` (all triplets,
     ``DivisorReducer``: divided by the number of active hinges; default distance
     ``LpDistance()``, normalised Euclidean) -> ``margin_loss(x, t, beta, margin=a, nu=v)`` with
     ``beta`` the ``(C,)`` tensor and ``average_nonzero=True``. lossforge's unit is an anchor (the
     mean over its triplets), so the two agree when every anchor has as many triplets (P x K
     batches, as the test uses); in other batches PML weighs an anchor by its triplet count. With one shared beta
     (``num_classes=None``) PML adds ``nu * beta`` once, undivided; lossforge adds it per triplet
     and divides by the active count (the authors' code, and PML's own per-class form): the
     shared case is compared with ``nu=0``.
   - ``NormalizedSoftmaxLoss(C, D, temperature=T)`` -> ``normalized_softmax_loss(x, t, W.T,
     temperature=T)`` (PML's weight is ``(D, C)``).
   - ``SoftTripleLoss(C, D, centers_per_class=K, la=l, gamma=g, margin=d)`` ->
     ``soft_triple_loss(x, t, fc.T.reshape(C, K, D), scale=l, gamma=g, margin=d)`` (PML's ``fc``
     is ``(D, C*K)``, class-major).
   - ``LargeMarginSoftmaxLoss(C, D, margin=m, scale=s)`` -> ``large_margin_softmax_loss(x, t, W.T,
     margin=m, scale=s)``.
   - ``FastAPLoss(num_bins=L)`` (default distance ``LpDistance(power=2)``, normalised) ->
     ``fast_ap_loss(num_bins=L)``: the same mean over anchors with a positive.
   - ``HistogramLoss(n_bins=L)`` (default ``CosineSimilarity``) -> ``histogram_loss(num_bins=L)``.
     PML takes the positive and negative pairs from all triplets, so a pair whose two ends both
     lack a positive (singleton classes) is left out of its negative histogram; lossforge uses
     every unordered pair. Equal when every sample has a positive (the test's batches).
3. Edge cases of the family's empty policy, and the conformance suite's generic checks run in
   ``tests/test_conformance.py`` and ``tests/losses/test_metric.py``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import lossforge as lf
import lossforge.functional as LF

F64 = torch.float64
NEW = ["nca", "angular", "tuplet_margin", "snr_contrastive", "fast_ap", "histogram", "margin", "normalized_softmax",
       "soft_triple", "large_margin_softmax"]


def _data(n=10, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=F64)


def _grad(fn, *tensors):
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*leaves)
    grads = torch.autograd.grad(out, leaves, allow_unused=True)
    return out.detach(), [torch.zeros_like(leaf) if g is None else g for leaf, g in zip(leaves, grads)]


def _assert_same(fn_a, fn_b, *tensors, rtol=1e-7, atol=1e-9):
    va, ga = _grad(fn_a, *tensors)
    vb, gb = _grad(fn_b, *tensors)
    torch.testing.assert_close(va, vb, rtol=rtol, atol=atol)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


LABELS = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])  # class 2 is a singleton: no positives


def _uneven_labels(n, seed=0):
    half = n // 2
    rest = torch.arange(1, (n - half) // 2 + 1).repeat_interleave(2)
    t = torch.cat([torch.zeros(half, dtype=torch.long), rest, torch.full((n - half - len(rest),), 99)])
    return t[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]


def test_registered_in_family():
    metric = set(lf.list_losses("metric"))
    assert set(NEW) <= metric
    for name in NEW:
        spec = lf.get_loss(name)
        assert hasattr(lf, spec.module.__name__) and hasattr(LF, spec.function.__name__)


# ------------------------------------------------------------------------------- float64 loop references

def _ref_nca(x, t, temperature=1.0, normalize=False):
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    total, count = x.new_zeros(()), 0
    n = len(t)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        if not any(t[j] == t[i] for j in others) or all(t[j] == t[i] for j in others):
            continue
        logits = torch.stack([-(x[i] - x[j]).pow(2).sum() / temperature for j in others])
        p = torch.softmax(logits, 0)
        mass = sum(p[k] for k, j in enumerate(others) if t[j] == t[i])
        total, count = total - torch.log(mass), count + 1
    return total / max(count, 1)


def _ref_angular(x, t, alpha):
    x = x / x.norm(dim=1, keepdim=True)
    tan2 = math.tan(math.radians(alpha)) ** 2
    total, count = x.new_zeros(()), 0
    n = len(t)
    for a in range(n):
        negs = [k for k in range(n) if t[k] != t[a]]
        if not negs:
            continue
        for p in range(n):
            if p == a or t[p] != t[a]:
                continue
            fs = [4 * tan2 * (x[a] + x[p]) @ x[k] - 2 * (1 + tan2) * x[a] @ x[p] for k in negs]
            total = total + torch.log(1 + torch.exp(torch.stack(fs)).sum())
            count += 1
    return total / max(count, 1)


def _ref_tuplet(x, t, margin, scale):
    x = x / x.norm(dim=1, keepdim=True)
    total, count = x.new_zeros(()), 0
    n = len(t)
    for a in range(n):
        negs = [k for k in range(n) if t[k] != t[a]]
        if not negs:
            continue
        for p in range(n):
            if p == a or t[p] != t[a]:
                continue
            cos_p = torch.cos(torch.acos(x[a] @ x[p]) - margin)
            terms = torch.stack([scale * (x[a] @ x[k] - cos_p) for k in negs])
            total = total + torch.log(1 + torch.exp(terms).sum())
            count += 1
    return total / max(count, 1)


def _ref_snr(x, t, margin, pos_margin):
    n = len(t)
    total = x.new_zeros(())
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            d = torch.var(x[j] - x[i]) / torch.var(x[i])
            total = total + (F.relu(d - pos_margin) if t[i] == t[j] else F.relu(margin - d))
    return total / (n * (n - 1))


def _ref_fast_ap(x, t, num_bins):
    x = x / x.norm(dim=1, keepdim=True)
    delta = 4.0 / num_bins
    n = len(t)
    total, count = x.new_zeros(()), 0
    for i in range(n):
        others = [j for j in range(n) if j != i]
        positives = [j for j in others if t[j] == t[i]]
        if not positives or len(positives) == len(others):
            continue
        h_pos, h_all = [], []
        for b in range(num_bins + 1):
            kernel = {j: F.relu(1 - ((x[i] - x[j]).pow(2).sum() - b * delta).abs() / delta) for j in others}
            h_pos.append(sum(kernel[j] for j in positives))
            h_all.append(sum(kernel[j] for j in others))
        ap, cum_pos, cum_all = x.new_zeros(()), 0.0, 0.0
        for b in range(num_bins + 1):
            cum_pos, cum_all = cum_pos + h_pos[b], cum_all + h_all[b]
            if float(torch.as_tensor(cum_all).detach()) > 0:
                ap = ap + h_pos[b] * cum_pos / cum_all
        total, count = total + 1 - ap / len(positives), count + 1
    return total / max(count, 1)


def _ref_histogram(x, t, num_bins):
    x = x / x.norm(dim=1, keepdim=True)
    delta = 2.0 / num_bins
    nodes = [-1 + r * delta for r in range(num_bins + 1)]
    n = len(t)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]

    def hist(selected):
        h = [sum(F.relu(1 - (x[i] @ x[j] - node).abs() / delta) for i, j in selected) / len(selected)
             for node in nodes]
        return torch.stack([torch.as_tensor(v, dtype=x.dtype) for v in h])

    h_pos = hist([(i, j) for i, j in pairs if t[i] == t[j]])
    h_neg = hist([(i, j) for i, j in pairs if t[i] != t[j]])
    return (h_neg * torch.cumsum(h_pos, 0)).sum()


def _ref_margin(x, t, beta, margin, nu, nonzero=True, normalize=True):
    """Per anchor: the mean over its triplets; the mean's denominator counts an anchor once, or by
    its active hinges per triplet."""
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    n = len(t)
    total, count = x.new_zeros(()), 0.0
    for a in range(n):
        b = beta[t[a]] if len(beta) > 1 else beta[0]
        anchor, triplets, active = x.new_zeros(()), 0, 0
        for p in range(n):
            if p == a or t[p] != t[a]:
                continue
            for k in range(n):
                if t[k] == t[a]:
                    continue
                hp = F.relu(margin + (x[a] - x[p]).norm() - b)
                hn = F.relu(margin - (x[a] - x[k]).norm() + b)
                anchor = anchor + hp + hn + nu * b
                triplets += 1
                active += int(hp > 0) + int(hn > 0)
        if triplets:
            total = total + anchor / triplets
            count += active / triplets if nonzero else 1.0
    return total / count if count else total


def _ref_normalized_softmax(x, t, w, temperature):
    total = x.new_zeros(())
    for i in range(len(t)):
        logits = torch.stack([x[i] @ w[c] / (x[i].norm() * w[c].norm()) for c in range(len(w))]) / temperature
        total = total - torch.log_softmax(logits, 0)[t[i]]
    return total / len(t)


def _ref_soft_triple(x, t, w, scale, gamma, margin):
    total = x.new_zeros(())
    for i in range(len(t)):
        sims = []
        for c in range(w.shape[0]):
            s = torch.stack([x[i] @ w[c, k] / (x[i].norm() * w[c, k].norm()) for k in range(w.shape[1])])
            sims.append((torch.softmax(s / gamma, 0) * s).sum())
        logits = scale * (torch.stack(sims) - margin * F.one_hot(t[i], w.shape[0]).to(x.dtype))
        total = total - torch.log_softmax(logits, 0)[t[i]]
    return total / len(t)


def _ref_large_margin(x, t, w, margin, scale):
    total = x.new_zeros(())
    for i in range(len(t)):
        logits = []
        for c in range(len(w)):
            cos = x[i] @ w[c] / (x[i].norm() * w[c].norm())
            if c == int(t[i]):
                theta = torch.acos(cos)
                k = math.floor(float(theta.detach()) * margin / math.pi)
                cos = (-1) ** k * torch.cos(margin * theta) - 2 * k
            logits.append(scale * x[i].norm() * w[c].norm() * cos)
        total = total - torch.log_softmax(torch.stack(logits), 0)[t[i]]
    return total / len(t)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 0.3])
def test_nca_against_loop(normalize, temperature):
    x = _data(10, 4, seed=1)
    _assert_same(lambda e: LF.nca_loss(e, LABELS, temperature=temperature, normalize=normalize),
                 lambda e: _ref_nca(e, LABELS, temperature, normalize), x)


@pytest.mark.parametrize("alpha", [20.0, 40.0, 60.0])
def test_angular_against_loop(alpha):
    x = _data(10, 4, seed=2)
    _assert_same(lambda e: LF.angular_loss(e, LABELS, alpha=alpha), lambda e: _ref_angular(e, LABELS, alpha), x)


@pytest.mark.parametrize(("margin", "scale"), [(0.1, 64.0), (0.4, 8.0), (0.0, 16.0)])
def test_tuplet_margin_against_loop(margin, scale):
    x = _data(10, 4, seed=3)
    _assert_same(lambda e: LF.tuplet_margin_loss(e, LABELS, margin=margin, scale=scale),
                 lambda e: _ref_tuplet(e, LABELS, margin, scale), x)


@pytest.mark.parametrize(("margin", "pos_margin"), [(1.0, 0.0), (2.5, 0.4)])
def test_snr_contrastive_against_loop(margin, pos_margin):
    x = _data(10, 5, seed=4)
    _assert_same(lambda e: LF.snr_contrastive_loss(e, LABELS, margin=margin, pos_margin=pos_margin),
                 lambda e: _ref_snr(e, LABELS, margin, pos_margin), x)


@pytest.mark.parametrize("num_bins", [1, 4, 10])
def test_fast_ap_against_loop(num_bins):
    x = _data(10, 4, seed=19)
    _assert_same(lambda e: LF.fast_ap_loss(e, LABELS, num_bins=num_bins), lambda e: _ref_fast_ap(e, LABELS, num_bins),
                 x)


@pytest.mark.parametrize("num_bins", [2, 10, 50])
def test_histogram_against_loop(num_bins):
    x = _data(10, 4, seed=20)
    _assert_same(lambda e: LF.histogram_loss(e, LABELS, num_bins=num_bins),
                 lambda e: _ref_histogram(e, LABELS, num_bins), x)


def test_histogram_exact_similarities():
    """Similarities of exactly -1, 0 and 1 land on nodes; the loss is then a count of rank inversions."""
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=F64, requires_grad=True)
    t = torch.tensor([0, 0, 1, 1])
    out = LF.histogram_loss(x, t, num_bins=4)
    # positives: s01 = 1, s23 = 0; negatives: s02 = s12 = -1, s03 = s13 = 0 -> P(s_neg >= s_pos) = 0.5 * 0.5
    torch.testing.assert_close(out, torch.tensor(0.25, dtype=F64))
    out.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("per_class", [False, True])
@pytest.mark.parametrize("nonzero", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
def test_margin_against_loop(per_class, nonzero, normalize):
    x = _data(10, 4, seed=5)
    beta = torch.tensor([0.9, 1.1, 1.0, 1.3], dtype=F64) if per_class else torch.tensor([1.0], dtype=F64)
    if not normalize:
        beta = beta * 2.0
    _assert_same(lambda e, b: LF.margin_loss(e, LABELS, b, margin=0.3, nu=0.1, average_nonzero=nonzero,
                                             normalize=normalize),
                 lambda e, b: _ref_margin(e, LABELS, b, 0.3, 0.1, nonzero, normalize), x, beta)


def test_normalized_softmax_against_loop():
    x, w = _data(8, 4, seed=6), _data(5, 4, seed=7)
    t = torch.tensor([0, 1, 2, 3, 4, 1, 3, 0])
    _assert_same(lambda e, c: LF.normalized_softmax_loss(e, t, c, temperature=0.1),
                 lambda e, c: _ref_normalized_softmax(e, t, c, 0.1), x, w)


@pytest.mark.parametrize(("scale", "gamma", "margin"), [(20.0, 0.1, 0.01), (5.0, 1.0, 0.3)])
def test_soft_triple_against_loop(scale, gamma, margin):
    x, w = _data(8, 4, seed=8), _data(15, 4, seed=9).reshape(5, 3, 4)
    t = torch.tensor([0, 1, 2, 3, 4, 1, 3, 0])
    _assert_same(lambda e, c: LF.soft_triple_loss(e, t, c, scale=scale, gamma=gamma, margin=margin),
                 lambda e, c: _ref_soft_triple(e, t, c, scale, gamma, margin), x, w)


@pytest.mark.parametrize("margin", [1, 2, 3, 4])
def test_large_margin_softmax_against_loop(margin):
    x, w = _data(8, 4, seed=10), _data(5, 4, seed=11)
    t = torch.tensor([0, 1, 2, 3, 4, 1, 3, 0])
    _assert_same(lambda e, c: LF.large_margin_softmax_loss(e, t, c, margin=margin, scale=0.7),
                 lambda e, c: _ref_large_margin(e, t, c, margin, 0.7), x, w)


# ---------------------------------------------------------------------------------------- identities

def test_identities():
    x, w = _data(8, 4, seed=12), _data(5, 4, seed=13)
    t = torch.tensor([0, 1, 2, 3, 4, 1, 3, 0])
    # normalized softmax = CosFace without margin, at scale 1/T
    torch.testing.assert_close(LF.normalized_softmax_loss(x, t, w, temperature=0.25),
                               LF.cosface_loss(x, t, w, margin=0.0, scale=4.0))
    # SoftTriple with one centre per class = CosFace
    torch.testing.assert_close(LF.soft_triple_loss(x, t, w.unsqueeze(1), scale=8.0, margin=0.2),
                               LF.cosface_loss(x, t, w, margin=0.2, scale=8.0))
    # L-Softmax with unit-norm centres = SphereFace; with margin 1 = plain softmax of the linear layer
    wn = w / w.norm(dim=1, keepdim=True)
    torch.testing.assert_close(LF.large_margin_softmax_loss(x, t, wn, margin=3),
                               LF.sphereface_loss(x, t, wn, margin=3))
    torch.testing.assert_close(LF.large_margin_softmax_loss(x, t, w, margin=1), F.cross_entropy(x @ w.T, t))


def test_tuplet_margin_finite_gradient_at_equal_positive():
    """A positive equal to its anchor (cosine exactly 1): acos has no derivative there."""
    x = _data(6, 3, seed=14)
    x[1] = x[0]
    x.requires_grad_(True)
    t = torch.tensor([0, 0, 1, 1, 2, 2])
    LF.tuplet_margin_loss(x, t).backward()
    assert torch.isfinite(x.grad).all()


def test_angular_large_batch_matches_loop_in_float32():
    """The factored log-sum-exp stays exact in float32 at the widest angle."""
    x = _data(24, 6, seed=15)
    t = torch.arange(6).repeat(4)
    ours = LF.angular_loss(x.float(), t, alpha=60.0)
    torch.testing.assert_close(ours.double(), _ref_angular(x, t, 60.0), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------- empty policy

PAIR_LOSSES = ["nca", "angular", "tuplet_margin", "margin", "fast_ap", "histogram"]


def _call(name, x, t, **kw):
    fn = lf.get_loss(name).function
    if name == "margin":
        return fn(x, t, torch.tensor([1.0], dtype=x.dtype), **kw)
    return fn(x, t, **kw)


@pytest.mark.parametrize("name", PAIR_LOSSES)
@pytest.mark.parametrize("layout", ["distinct", "equal", "one", "empty"])
def test_no_positives_no_negatives_batch_of_one_give_zero(name, layout):
    n = {"one": 1, "empty": 0}.get(layout, 6)
    x = torch.randn(n, 4, requires_grad=True)
    t = torch.arange(n) if layout == "distinct" else torch.zeros(n, dtype=torch.long)
    out = _call(name, x, t)
    assert out.item() == 0.0
    out.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert _call(name, x, t, reduction="none").shape == (() if name == "histogram" else (n,))


@pytest.mark.parametrize("name", [n for n in PAIR_LOSSES if n != "histogram"])
def test_anchor_without_positives_gives_zero(name):
    """The lone sample of class 2 has no positive: 0 (and finite everywhere)."""
    x = _data(7, 3, seed=16)
    t = torch.tensor([0, 0, 0, 1, 1, 1, 2])
    u = _call(name, x, t, reduction="none")
    assert u[6] == 0.0
    assert torch.isfinite(u).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, F64])
def test_snr_anchor_without_signal_is_left_out(dtype):
    """An anchor with all features equal has an infinite SNR distance: it gives 0, is not counted,
    and the gradients stay finite in every dtype."""
    x = torch.ones(4, 5, dtype=F64)
    x[1] = 0.0
    x[2:] = _data(2, 5, seed=17)
    t = torch.tensor([0, 0, 1, 1])
    x = x.to(dtype).requires_grad_(True)
    u = LF.snr_contrastive_loss(x, t, reduction="none")
    assert u[0] == 0.0 and u[1] == 0.0
    out = LF.snr_contrastive_loss(x, t)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(x.grad).all()
    torch.testing.assert_close(out, u.sum() / 2)


def test_margin_module_learns_beta():
    m = lf.MarginLoss(num_classes=4, beta=1.2, nu=0.1)
    assert m.beta.shape == (4,) and m.beta.requires_grad
    x = _data(10, 4, seed=18).float()
    m(x, LABELS).backward()
    assert m.beta.grad is not None and torch.isfinite(m.beta.grad).all()
    assert lf.MarginLoss().beta.shape == (1,)
    with pytest.raises(ValueError, match=r"MarginLoss: num_classes must be None or a positive int, got 0"):
        lf.MarginLoss(num_classes=0)
    with pytest.raises(ValueError, match=r"SoftTripleLoss: sub_centers must be a positive int, got 0"):
        lf.SoftTripleLoss(num_classes=3, embedding_dim=4, sub_centers=0)
    assert lf.SoftTripleLoss(num_classes=3, embedding_dim=4, sub_centers=2).centers.shape == (3, 2, 4)


# ------------------------------------------------------------------------ pytorch-metric-learning

pml = pytest.importorskip("pytorch_metric_learning")
from pytorch_metric_learning import losses, reducers  # noqa: E402


def test_pml_nca():
    x = _data(21, 6, seed=30)  # one singleton label: no positives
    t = _uneven_labels(21, seed=1)
    for k in (1.0, 4.0):
        pml_fn = losses.NCALoss(softmax_scale=k)
        _assert_same(lambda e, f=pml_fn: f(e, t), lambda e, k=k: LF.nca_loss(e, t, temperature=1 / k, normalize=True),
                     x, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("alpha", [36.0, 45.0, 55.0])
def test_pml_angular(alpha):
    x = _data(21, 6, seed=31)  # one singleton label: no positives
    t = _uneven_labels(21, seed=2)
    pml_fn = losses.AngularLoss(alpha=alpha)
    _assert_same(lambda e: pml_fn(F.normalize(e), t), lambda e: LF.angular_loss(e, t, alpha=alpha), x,
                 rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("degrees", "scale"), [(5.73, 64.0), (20.0, 16.0)])
def test_pml_tuplet_margin(degrees, scale):
    x = _data(21, 6, seed=32)  # one singleton label: no positives
    t = _uneven_labels(21, seed=3)
    pml_fn = losses.TupletMarginLoss(margin=degrees, scale=scale)
    _assert_same(lambda e: pml_fn(e, t),
                 lambda e: LF.tuplet_margin_loss(e, t, margin=math.radians(degrees), scale=scale),
                 x, rtol=1e-6, atol=1e-8)


def test_pml_snr_contrastive_pair_terms():
    x = _data(14, 5, seed=33)
    t = _uneven_labels(14, seed=4)
    n = len(t)
    same = (t[:, None] == t[None, :]).sum().item() - n
    diff = n * (n - 1) - same
    for pos_margin, neg_margin, count in ((0.05, 0.0, same), (100.0, 1.5, diff)):
        pml_fn = losses.SignalToNoiseRatioContrastiveLoss(pos_margin=pos_margin, neg_margin=neg_margin,
                                                          reducer=reducers.MeanReducer())
        _assert_same(lambda e, f=pml_fn: f(e, t),
                     lambda e, a=pos_margin, b=neg_margin, c=count: LF.snr_contrastive_loss(
                         e, t, pos_margin=a, margin=b, normalize=True) * n * (n - 1) / c,
                     x, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("num_classes", "nu"), [(None, 0.0), (4, 0.0), (4, 0.2)])
def test_pml_margin(num_classes, nu):
    x = _data(16, 5, seed=34)
    t = torch.arange(4).repeat(4)
    beta = torch.tensor([1.0, 0.9, 1.2, 1.1], dtype=F64)[: num_classes or 1]
    pml_fn = losses.MarginLoss(margin=0.2, nu=nu, beta=1.0, learn_beta=True, num_classes=num_classes)
    pml_fn.beta.data = beta.clone()

    _assert_same(lambda e: LF.margin_loss(e, t, beta, margin=0.2, nu=nu), lambda e: pml_fn(e, t), x,
                 rtol=1e-6, atol=1e-8)
    # the boundary's gradient, through PML's parameter
    pml_fn.beta.data = beta.clone()
    pml_fn.beta.grad = None
    pml_fn(x, t).backward()
    b = beta.clone().requires_grad_(True)
    LF.margin_loss(x, t, b, margin=0.2, nu=nu).backward()
    torch.testing.assert_close(pml_fn.beta.grad, b.grad, rtol=1e-6, atol=1e-8)


def _pml_vs_ours(pml_obj, attribute, transform, ours, x, t, centers):
    """Value and gradients (embeddings and centres) of a PML module holding ``transform(centers)``."""
    param = getattr(pml_obj, attribute)
    with torch.no_grad():
        param.copy_(transform(centers))
    _assert_same(lambda e: pml_obj(e, t), lambda e: ours(e, centers), x, rtol=1e-6, atol=1e-8)
    param.grad = None
    pml_obj(x, t).backward()
    c = centers.clone().requires_grad_(True)
    ours(x, c).backward()
    return param.grad, c.grad


def test_pml_normalized_softmax():
    x, w = _data(10, 6, seed=35), _data(4, 6, seed=36)
    t = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 3, 0])
    pml_obj = losses.NormalizedSoftmaxLoss(4, 6, temperature=0.1).double()
    g_pml, g_ours = _pml_vs_ours(pml_obj, "W", lambda c: c.T,
                                 lambda e, c: LF.normalized_softmax_loss(e, t, c, temperature=0.1), x, t, w)
    torch.testing.assert_close(g_pml.T, g_ours, rtol=1e-6, atol=1e-8)


def test_pml_soft_triple():
    x, w = _data(10, 6, seed=37), _data(12, 6, seed=38).reshape(4, 3, 6)
    t = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 3, 0])
    pml_obj = losses.SoftTripleLoss(4, 6, centers_per_class=3, la=20, gamma=0.1, margin=0.01).double()
    g_pml, g_ours = _pml_vs_ours(pml_obj, "fc", lambda c: c.reshape(12, 6).T,
                                 lambda e, c: LF.soft_triple_loss(e, t, c, scale=20.0, gamma=0.1, margin=0.01),
                                 x, t, w)
    torch.testing.assert_close(g_pml.T.reshape(4, 3, 6), g_ours, rtol=1e-6, atol=1e-8)


@pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")  # inside PML (scipy/numpy 2)
@pytest.mark.parametrize("margin", [2, 3, 4])
def test_pml_large_margin_softmax(margin):
    x, w = _data(10, 6, seed=39), _data(4, 6, seed=40)
    t = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 3, 0])
    pml_obj = losses.LargeMarginSoftmaxLoss(4, 6, margin=margin, scale=1).double()
    g_pml, g_ours = _pml_vs_ours(pml_obj, "W", lambda c: c.T,
                                 lambda e, c: LF.large_margin_softmax_loss(e, t, c, margin=margin, scale=1.0),
                                 x, t, w)
    torch.testing.assert_close(g_pml.T, g_ours, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("num_bins", [2, 10, 20])
def test_pml_fast_ap(num_bins):
    x = _data(21, 6, seed=41)  # one singleton label: no positives
    t = _uneven_labels(21, seed=5)
    pml_fn = losses.FastAPLoss(num_bins=num_bins)
    _assert_same(lambda e: pml_fn(e, t), lambda e: LF.fast_ap_loss(e, t, num_bins=num_bins), x, rtol=1e-6, atol=1e-8)


@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning")  # PML indexes with lists
@pytest.mark.parametrize("num_bins", [10, 100])
def test_pml_histogram(num_bins):
    x = _data(20, 6, seed=42)
    t = torch.arange(5).repeat(4)
    pml_fn = losses.HistogramLoss(n_bins=num_bins)
    # PML picks each similarity's bin in float32 (``distances.float()``): with 100 bins 3 of the 190
    # similarities fall in the neighbouring bin, which moves their gradient (not the value) by ~1e-7
    # against gradients of ~4e-2.
    _assert_same(lambda e: pml_fn(e, t), lambda e: LF.histogram_loss(e, t, num_bins=num_bins), x,
                 rtol=1e-6, atol=1e-8 if num_bins == 10 else 1e-6)
