"""Metric-learning and self-supervised losses.

1. Conformance over the registry's "metric" family (the generic checks every loss passes).
2. Independent float64 brute-force references that loop over every pair and triplet.
3. Cross-checks against pytorch-metric-learning (PML 2.9.0) where the semantics agree. Parameter
   mapping (PML -> lossforge), and each deliberate difference:

   - ``NTXentLoss(temperature=t)`` -> ``ntxent_loss(temperature=t)``: same value and gradient (mean
     over positive pairs).
   - ``SupConLoss(temperature=t)`` (AvgNonZeroReducer over anchors) -> ``supcon_loss(temperature=t)``
     (mean over anchors with a positive and a negative). They differ only for an anchor with
     positives but no negative in a batch that has negatives elsewhere: PML counts it
     (its term is ``log |P|``), lossforge does not (issue M2: no negatives -> no loss).
   - ``TripletMarginLoss(margin=m, smooth_loss=s, distance=D)`` (AvgNonZeroReducer) with
     ``BatchHardMiner()`` -> ``triplet_loss(mining="batch_hard", margin=m, soft_margin=s,
     average_nonzero=True)``; with no miner -> ``mining="all"``; with
     ``TripletMarginMiner(margin=m, type_of_triplets="hard"|"semihard"|"all")`` ->
     ``mining="hard"|"semi_hard"|"all"``. ``MeanReducer()`` -> ``average_nonzero=False``.
     Distances: ``LpDistance()`` (PML normalises by default) -> ``distance="euclidean",
     normalize=True``; ``LpDistance(normalize_embeddings=False)`` -> ``normalize=False``;
     ``LpDistance(power=2)`` -> ``"squared_euclidean"``; ``CosineSimilarity()`` -> ``"cosine"``
     (``1 - cos``, the same margins since only differences of similarities enter).
   - ``ContrastiveLoss(pos_margin=a, neg_margin=b)`` -> ``contrastive_loss(pos_margin=a, margin=b,
     squared=False, normalize=True)``: the same pair terms. PML reduces the positive and the
     negative pairs separately and adds the two averages; lossforge averages all ordered pairs
     (Hadsell et al.), so the test compares the positive and negative parts one at a time.
   - ``ArcFaceLoss(C, D, margin=degrees(m), scale=s)`` -> ``arcface_loss(..., centers=W.T,
     margin=m, scale=s)`` (PML's margin is in degrees, its weight is ``(D, C)``);
     ``CosFaceLoss(margin=m, scale=s)`` -> ``cosface_loss``; ``SphereFaceLoss(margin=m, scale=s)``
     -> ``sphereface_loss``; ``SubCenterArcFaceLoss(sub_centers=K)`` -> ``centers =
     W.T.reshape(C, K, D)``.
   - ``CircleLoss(m=m, gamma=g)`` -> ``circle_loss(margin=m, gamma=g)`` (AvgNonZero over anchors =
     mean over anchors with a positive and a negative).
   - ``MultiSimilarityLoss(alpha, beta, base)`` -> the same names. PML averages over all anchors,
     lossforge over anchors with a positive and a negative (as the paper's code): equal when
     every anchor has both.
   - ``ProxyAnchorLoss(margin=d, alpha=a)`` -> ``proxy_anchor_loss`` (same proxies);
     ``ProxyNCALoss(softmax_scale=k)`` -> ``proxy_nca_loss(temperature=1/k)``;
     ``LiftedStructureLoss(neg_margin=m, pos_margin=0, distance=LpDistance(normalize_embeddings=False))``
     -> ``lifted_structure_loss(margin=m)``; ``VICRegLoss(invariance_lambda, variance_mu,
     covariance_v, eps)`` -> ``vicreg_loss(invariance_weight, variance_weight, covariance_weight, eps)``.
4. Numerics M1-M8 of the reliability battery, and property tests.
"""

from __future__ import annotations

import inspect
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import lossforge as lf
import lossforge.functional as LF

METRIC = lf.list_losses("metric")
F64 = torch.float64


def _spec(name):
    return lf.get_loss(name)


def _call(spec, sample, **kw):
    return spec.function(*sample.args, **{**sample.kwargs, **kw})


def _leaves(spec, sample):
    """Copies of the sample's differentiable arguments that require grad, and the new args."""
    args = list(sample.args)
    positions = spec.differentiable_args or tuple(
        i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.is_floating_point())
    for i in positions:
        args[i] = args[i].detach().clone().requires_grad_(True)
    return [args[i] for i in positions], tuple(args)


def _module_and_args(spec, sample, **kw):
    build = spec.extra.get("module_for_sample")
    if build is not None:
        return build(sample, **kw)
    return spec.module(**sample.module_kwargs(), **kw), sample.args, sample.call_kwargs()


# ------------------------------------------------------------------------------------------ conformance

def test_family_is_complete():
    expected = {"contrastive", "triplet", "info_nce", "ntxent", "supcon", "clip", "arcface", "cosface",
                "sphereface", "subcenter_arcface", "circle", "multi_similarity", "proxy_anchor", "proxy_nca",
                "lifted_structure", "barlow_twins", "vicreg"}
    assert expected <= set(METRIC)
    for name in METRIC:
        spec = _spec(name)
        assert spec.reference and spec.unit and spec.extreme_inputs is not None
        assert spec.error_inputs(), name
        samples = spec.sample_inputs(F64, "cpu")
        assert samples[0].plain, name
        assert hasattr(lf, spec.module.__name__) and hasattr(LF, spec.function.__name__)


@pytest.mark.parametrize("name", METRIC)
def test_signature(name):
    spec = _spec(name)
    params = inspect.signature(spec.function).parameters
    kinds = [p.kind for p in params.values()]
    n_pos = sum(k == inspect.Parameter.POSITIONAL_ONLY for k in kinds)
    assert n_pos >= 2 and all(k == inspect.Parameter.KEYWORD_ONLY for k in kinds[n_pos:])
    assert params["reduction"].default == "mean"
    assert params["sample_weight"].default is None and params["mask"].default is None
    assert "weight" not in params
    assert spec.summary and spec.function.__doc__.index("Args:") < spec.function.__doc__.index("Shape:") \
        < spec.function.__doc__.index("Returns:") < spec.function.__doc__.index("Raises:") \
        < spec.function.__doc__.index("Note:") < spec.function.__doc__.index("References:") \
        < spec.function.__doc__.index("Examples:")


@pytest.mark.parametrize("name", METRIC)
def test_reductions(name):
    spec = _spec(name)
    for sample in spec.sample_inputs(F64, "cpu"):
        none = _call(spec, sample, reduction="none")
        total = _call(spec, sample, reduction="sum")
        mean = _call(spec, sample, reduction="mean")
        torch.testing.assert_close(none.sum(), total)
        assert mean.shape == () and total.shape == ()
        if sample.plain:
            torch.testing.assert_close(mean, none.sum() / max(none.numel(), 1))


@pytest.mark.parametrize("name", METRIC)
def test_mask_weights_and_empty_policy(name):
    spec = _spec(name)
    sample = spec.sample_inputs(F64, "cpu")[0]
    none = _call(spec, sample, reduction="none")
    if none.dim() == 0:
        masked = _call(spec, sample, mask=torch.tensor(False))
        assert masked.item() == 0.0
        return
    n = none.shape[0]
    m = torch.arange(n) % 2 == 0
    torch.testing.assert_close(_call(spec, sample, reduction="sum", mask=m), (none * m).sum())
    torch.testing.assert_close(_call(spec, sample, mask=torch.ones(n, dtype=torch.bool)), _call(spec, sample))
    # weights: a constant weight leaves "mean" unchanged and scales "sum"
    w = torch.full((n,), 3.0, dtype=F64)
    torch.testing.assert_close(_call(spec, sample, sample_weight=w), _call(spec, sample))
    torch.testing.assert_close(_call(spec, sample, sample_weight=w, reduction="sum"),
                               3 * _call(spec, sample, reduction="sum"))
    # empty policy: everything masked -> 0.0 connected to the graph, zero finite gradients
    leaves, args = _leaves(spec, sample)
    out = spec.function(*args, **sample.kwargs, mask=torch.zeros(n, dtype=torch.bool))
    assert out.item() == 0.0
    out.backward()
    for leaf in leaves:
        assert leaf.grad is not None and torch.all(leaf.grad == 0)


@pytest.mark.parametrize("name", METRIC)
def test_gradcheck_float64(name):
    spec = _spec(name)
    if not spec.extra.get("exact_gradient", True):
        pytest.skip("declared: the gradient treats some weights as constants (checked against a brute force)")
    for sample in spec.sample_inputs(F64, "cpu"):
        leaves, args = _leaves(spec, sample)
        positions = [i for i, a in enumerate(args) if any(a is leaf for leaf in leaves)]

        def fn(*diff, _args=args, _pos=positions, _sample=sample):
            full = list(_args)
            for i, value in zip(_pos, diff):
                full[i] = value
            return spec.function(*full, **_sample.kwargs)

        assert torch.autograd.gradcheck(fn, tuple(leaves), eps=1e-6, atol=1e-5, rtol=1e-4), (name, sample.name)


@pytest.mark.parametrize("name", METRIC)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_extreme_inputs_finite(name, dtype):
    spec = _spec(name)
    for sample in spec.extreme_inputs(dtype, "cpu"):
        leaves, args = _leaves(spec, sample)
        out = spec.function(*args, **sample.kwargs)
        assert out.dtype == torch.float32 and torch.isfinite(out), (name, sample.name, out)
        assert out.item() >= 0.0, (name, sample.name)
        out.backward()
        for leaf in leaves:
            assert leaf.grad is not None and leaf.grad.dtype == dtype
            assert torch.isfinite(leaf.grad).all(), (name, sample.name)


@pytest.mark.parametrize("name", METRIC)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_matches_float32(name, dtype):
    spec = _spec(name)
    sample = spec.sample_inputs(torch.float32, "cpu")[0]
    ref = _call(spec, sample)
    rounded = tuple(a.to(dtype).float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                    for a in sample.args)
    half = tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in sample.args)
    out = spec.function(*half, **sample.kwargs)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, spec.function(*rounded, **sample.kwargs), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out, ref, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("name", METRIC)
def test_module_equals_function(name):
    spec = _spec(name)
    for sample in spec.sample_inputs(F64, "cpu"):
        for reduction in ("mean", "none"):
            module, args, call_kwargs = _module_and_args(spec, sample, reduction=reduction)
            torch.testing.assert_close(module(*args, **call_kwargs), _call(spec, sample, reduction=reduction))
        assert repr(module).startswith(type(module).__name__)


@pytest.mark.parametrize("name", METRIC)
def test_error_inputs(name):
    spec = _spec(name)
    for err in spec.error_inputs():
        with pytest.raises(err.exc_type, match=err.match):
            if err.at_construction:
                spec.module(**err.kwargs)
            else:
                spec.function(*err.args, **err.kwargs)


@pytest.mark.parametrize("name", [n for n in METRIC if _spec(n).separable])
def test_batch_split_additivity(name):
    spec = _spec(name)
    sample = spec.sample_inputs(F64, "cpu")[0]
    x, t, *rest = sample.args
    whole = spec.function(x, t, *rest, reduction="sum")
    parts = spec.function(x[:3], t[:3], *rest, reduction="sum") + spec.function(x[3:], t[3:], *rest, reduction="sum")
    torch.testing.assert_close(whole, parts)


@pytest.mark.parametrize("name", METRIC)
def test_inputs_not_modified_and_noncontiguous(name):
    spec = _spec(name)
    sample = spec.sample_inputs(F64, "cpu")[0]
    before = [a.clone() if isinstance(a, torch.Tensor) else a for a in sample.args]
    ref = _call(spec, sample)
    for a, b in zip(sample.args, before):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b)
    strided = tuple(a.T.contiguous().T if isinstance(a, torch.Tensor) and a.dim() == 2 else a for a in sample.args)
    assert not strided[0].is_contiguous()
    torch.testing.assert_close(spec.function(*strided, **sample.kwargs), ref)


def test_registry_names_and_spec_strings():
    assert lf.get_loss("simclr").name == "ntxent"
    crit = lf.build("ntxent(temperature=0.2) + 0.5*triplet(mining='all')")
    x, t = torch.randn(8, 4), torch.arange(4).repeat(2)
    expected = LF.ntxent_loss(x, t, temperature=0.2) + 0.5 * LF.triplet_loss(x, t, mining="all")
    torch.testing.assert_close(crit(x, t), expected)


def test_weight_keyword_is_refused():
    with pytest.raises(TypeError, match="weight= is not an argument"):
        LF.ntxent_loss(torch.randn(4, 3), torch.tensor([0, 0, 1, 1]), weight=torch.ones(4))
    with pytest.raises(TypeError, match="weight= is not an argument"):
        lf.ArcFaceLoss(num_classes=3, embedding_dim=2)(torch.randn(4, 2), torch.tensor([0, 1, 2, 0]),
                                                       weight=torch.ones(4))


def test_module_construction_errors():
    with pytest.raises(ValueError, match=r"ArcFaceLoss: num_classes must be a positive int, got 0"):
        lf.ArcFaceLoss(num_classes=0, embedding_dim=4)
    with pytest.raises(ValueError, match=r"SubCenterArcFaceLoss: sub_centers must be a positive int"):
        lf.SubCenterArcFaceLoss(num_classes=3, embedding_dim=4, sub_centers=0)
    with pytest.raises(ValueError, match=r"CLIPLoss: temperature must be > 0"):
        lf.CLIPLoss(temperature=0.0)


def test_modules_own_parameters():
    arc = lf.ArcFaceLoss(num_classes=5, embedding_dim=3)
    assert [n for n, _ in arc.named_parameters()] == ["centers"] and arc.centers.shape == (5, 3)
    sub = lf.SubCenterArcFaceLoss(num_classes=5, embedding_dim=3, sub_centers=2)
    assert sub.centers.shape == (5, 2, 3)
    proxy = lf.ProxyAnchorLoss(num_classes=5, embedding_dim=3)
    assert [n for n, _ in proxy.named_parameters()] == ["proxies"]
    clip = lf.CLIPLoss()
    assert [n for n, _ in clip.named_parameters()] == ["logit_scale"]
    assert clip.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert list(lf.CLIPLoss(learnable=False).parameters()) == []
    x, t = torch.randn(6, 3), torch.tensor([0, 1, 2, 3, 4, 0])
    arc(x, t).backward()
    assert arc.centers.grad is not None and torch.isfinite(arc.centers.grad).all()
    state = arc.state_dict()
    again = lf.ArcFaceLoss(num_classes=5, embedding_dim=3)
    again.load_state_dict(state)
    torch.testing.assert_close(again(x, t), arc(x, t))
    assert "num_classes=5" in repr(arc)


# ------------------------------------------------------------------------------ brute-force references

def _cos(a, b):
    return (a * b).sum() / (a.norm() * b.norm())


def _val(t):
    return t.detach().item()


def _dist(a, b, distance="euclidean"):
    if distance == "cosine":
        return 1 - _cos(a, b)
    sq = ((a - b) ** 2).sum()
    return sq if distance == "squared_euclidean" else sq.sqrt()


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


LABELS = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])


def _data(n=10, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=F64)


def _ref_triplet(x, t, margin, mining, distance="euclidean", soft=False, nonzero=False, normalize=False):
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    n = len(t)
    d = [[_dist(x[i], x[j], distance) for j in range(n)] for i in range(n)]
    total, count = x.new_zeros(()), 0
    hinge = F.softplus if soft else F.relu
    for a in range(n):
        pos = [p for p in range(n) if p != a and t[p] == t[a]]
        neg = [k for k in range(n) if t[k] != t[a]]
        if not pos or not neg:
            continue
        if mining == "batch_hard":
            hp = max((d[a][p] for p in pos), key=_val)
            hn = min((d[a][k] for k in neg), key=_val)
            v = hinge(hp - hn + margin)
            total, count = total + v, count + (1 if not nonzero or v > 0 else 0)
            continue
        for p in pos:
            if mining == "batch_semi_hard":
                farther = [d[a][k] for k in neg if _val(d[a][k]) > _val(d[a][p])]
                dn = min(farther, key=_val) if farther else max((d[a][k] for k in neg), key=_val)
                v = hinge(d[a][p] - dn + margin)
                total, count = total + v, count + (1 if not nonzero or v > 0 else 0)
                continue
            for k in neg:
                dap, dan = _val(d[a][p]), _val(d[a][k])
                chosen = {"all": True, "hard": dan <= dap, "semi_hard": dap < dan < dap + margin}[mining]
                if chosen:
                    v = F.relu(d[a][p] - d[a][k] + margin)
                    total, count = total + v, count + (1 if not nonzero or v > 0 else 0)
    return total / max(count, 1)


@pytest.fixture(params=["direct", "sorted"])
def triplet_path(request, monkeypatch):
    """Both implementations of the many-triplet minings: direct (N, P, N) sums, and sorted prefix sums."""
    from lossforge.losses import _metric_pairs

    if request.param == "sorted":
        monkeypatch.setattr(_metric_pairs, "DIRECT_TRIPLET_LIMIT", 0)
    return request.param


@pytest.mark.parametrize("mining", ["batch_hard", "batch_semi_hard", "all", "hard", "semi_hard"])
@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean", "cosine"])
def test_triplet_brute_force(mining, distance, triplet_path):
    x = _data()
    margin = 0.3 if distance == "cosine" else 1.0
    for nonzero, normalize in [(False, False), (True, True)]:
        _assert_same(
            lambda e, nz=nonzero, nm=normalize: LF.triplet_loss(e, LABELS, margin=margin, mining=mining,
                                                                distance=distance, average_nonzero=nz, normalize=nm),
            lambda e, nz=nonzero, nm=normalize: _ref_triplet(e, LABELS, margin, mining, distance, nonzero=nz,
                                                             normalize=nm),
            x)


@pytest.mark.parametrize("mining", ["batch_hard", "batch_semi_hard"])
def test_triplet_soft_margin_brute_force(mining, triplet_path):
    x = _data(seed=1)
    _assert_same(lambda e: LF.triplet_loss(e, LABELS, margin=0.2, mining=mining, soft_margin=True),
                 lambda e: _ref_triplet(e, LABELS, 0.2, mining, soft=True), x)


def test_triplet_all_is_exact_in_float32_for_many_triplets(triplet_path):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(200, 16, generator=g)
    t = torch.randint(0, 4, (200,), generator=g)
    for mining in ("all", "semi_hard", "hard"):
        a = LF.triplet_loss(x, t, mining=mining, margin=0.5)
        b = LF.triplet_loss(x.double(), t, mining=mining, margin=0.5)
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-6)


def _ref_contrastive(x, t, margin, pos_margin, distance, squared):
    n = len(t)
    total = x.new_zeros(())
    for i, j in itertools.permutations(range(n), 2):
        d = _dist(x[i], x[j], distance)
        h = F.relu(d - pos_margin) if t[i] == t[j] else F.relu(margin - d)
        total = total + (h * h if squared else h)
    return total / (n * (n - 1))


@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean", "cosine"])
@pytest.mark.parametrize("squared", [True, False])
def test_contrastive_brute_force(distance, squared):
    x = _data(seed=2)
    kw = {"margin": 2.5, "pos_margin": 0.4} if distance != "cosine" else {"margin": 0.9, "pos_margin": 0.1}
    _assert_same(lambda e: LF.contrastive_loss(e, LABELS, distance=distance, squared=squared, **kw),
                 lambda e: _ref_contrastive(e, LABELS, kw["margin"], kw["pos_margin"], distance, squared), x)


def _ref_lifted(x, t, margin):
    n = len(t)
    total, count = x.new_zeros(()), 0
    for i, j in itertools.permutations(range(n), 2):
        if t[i] != t[j]:
            continue
        terms = [margin - _dist(x[i], x[k]) for k in range(n) if t[k] != t[i]]
        terms += [margin - _dist(x[j], x[k]) for k in range(n) if t[k] != t[j]]
        if not terms:
            continue
        big = torch.logsumexp(torch.stack(terms), 0) + _dist(x[i], x[j])
        total, count = total + 0.5 * F.relu(big) ** 2, count + 1
    return total / max(count, 1)


def test_lifted_structure_brute_force():
    x = _data(seed=4)
    _assert_same(lambda e: LF.lifted_structure_loss(e, LABELS, margin=1.5),
                 lambda e: _ref_lifted(e, LABELS, 1.5), x)


def _ref_circle(x, t, m, gamma):
    n = len(t)
    total, count = x.new_zeros(()), 0
    for a in range(n):
        sp = [_cos(x[a], x[p]) for p in range(n) if p != a and t[p] == t[a]]
        sn = [_cos(x[a], x[k]) for k in range(n) if t[k] != t[a]]
        if not sp or not sn:
            continue
        lp = [-gamma * F.relu(1 + m - s.detach()) * (s - (1 - m)) for s in sp]
        ln = [gamma * F.relu(s.detach() + m) * (s - m) for s in sn]
        inner = sum(torch.exp(a_ + b_) for a_ in lp for b_ in ln)
        total, count = total + torch.log1p(inner), count + 1
    return total / max(count, 1)


def test_circle_brute_force():
    x = _data(seed=5)
    _assert_same(lambda e: LF.circle_loss(e, LABELS, margin=0.25, gamma=8.0),
                 lambda e: _ref_circle(e, LABELS, 0.25, 8.0), x)


def _ref_ms(x, t, alpha, beta, base):
    n = len(t)
    total, count = x.new_zeros(()), 0
    for a in range(n):
        sp = [_cos(x[a], x[p]) for p in range(n) if p != a and t[p] == t[a]]
        sn = [_cos(x[a], x[k]) for k in range(n) if t[k] != t[a]]
        if not sp or not sn:
            continue
        pos = torch.log(1 + sum(torch.exp(-alpha * (s - base)) for s in sp)) / alpha
        neg = torch.log(1 + sum(torch.exp(beta * (s - base)) for s in sn)) / beta
        total, count = total + pos + neg, count + 1
    return total / max(count, 1)


def test_multi_similarity_brute_force():
    x = _data(seed=6)
    _assert_same(lambda e: LF.multi_similarity_loss(e, LABELS, alpha=2.0, beta=10.0, base=0.3),
                 lambda e: _ref_ms(e, LABELS, 2.0, 10.0, 0.3), x)


def _ref_ntxent(x, t, tau):
    n = len(t)
    total, count = x.new_zeros(()), 0
    for a, p in itertools.permutations(range(n), 2):
        if t[a] != t[p]:
            continue
        num = torch.exp(_cos(x[a], x[p]) / tau)
        den = num + sum((torch.exp(_cos(x[a], x[k]) / tau) for k in range(n) if t[k] != t[a]), x.new_zeros(()))
        total, count = total - torch.log(num / den), count + 1
    return total / max(count, 1)


def test_ntxent_brute_force():
    x = _data(seed=7)
    _assert_same(lambda e: LF.ntxent_loss(e, LABELS, temperature=0.3), lambda e: _ref_ntxent(e, LABELS, 0.3), x)


def test_ntxent_simclr_two_views_equals_cross_entropy_form():
    """SimCLR: 2B embeddings, one positive each; the loss is CE over the 2B-1 others."""
    z = _data(12, 5, seed=8)
    t = torch.arange(6).repeat(2)
    zn = F.normalize(z, dim=1)
    logits = zn @ zn.T / 0.5
    logits.fill_diagonal_(-math.inf)
    target = torch.arange(12).roll(6)
    torch.testing.assert_close(LF.ntxent_loss(z, t, temperature=0.5), F.cross_entropy(logits, target))


def _ref_supcon(x, t, tau):
    n = len(t)
    total, count = x.new_zeros(()), 0
    for a in range(n):
        pos = [p for p in range(n) if p != a and t[p] == t[a]]
        if not pos or all(t[k] == t[a] for k in range(n)):
            continue
        den = sum(torch.exp(_cos(x[a], x[k]) / tau) for k in range(n) if k != a)
        total = total - sum(torch.log(torch.exp(_cos(x[a], x[p]) / tau) / den) for p in pos) / len(pos)
        count += 1
    return total / max(count, 1)


def test_supcon_brute_force():
    x = _data(seed=9)
    _assert_same(lambda e: LF.supcon_loss(e, LABELS, temperature=0.2), lambda e: _ref_supcon(e, LABELS, 0.2), x)


def _ref_info_nce(q, k, tau, labels=None, negs=None):
    n = q.shape[0]
    total, count = q.new_zeros(()), 0
    for i in range(n):
        pos = [j for j in range(n) if (j == i if labels is None else labels[j] == labels[i])]
        neg = [k[j] for j in range(n) if j not in pos] + ([] if negs is None else list(negs))
        for p in pos:
            num = torch.exp(_cos(q[i], k[p]) / tau)
            den = num + sum((torch.exp(_cos(q[i], v) / tau) for v in neg), q.new_zeros(()))
            total, count = total - torch.log(num / den), count + 1
    return total / count


def test_info_nce_brute_force():
    q, k, negs = _data(8, 4, seed=10), _data(8, 4, seed=11), _data(3, 4, seed=12)
    labels = torch.tensor([0, 1, 1, 2, 3, 3, 3, 4])
    _assert_same(lambda a, b: LF.info_nce_loss(a, b, temperature=0.4),
                 lambda a, b: _ref_info_nce(a, b, 0.4), q, k)
    _assert_same(lambda a, b: LF.info_nce_loss(a, b, temperature=0.4, labels=labels),
                 lambda a, b: _ref_info_nce(a, b, 0.4, labels=labels), q, k)
    _assert_same(lambda a, b, c: LF.info_nce_loss(a, b, temperature=0.4, negative_keys=c),
                 lambda a, b, c: _ref_info_nce(a, b, 0.4, negs=c), q, k, negs)


def test_info_nce_without_labels_is_cross_entropy():
    q, k = _data(6, 3, seed=13), _data(6, 3, seed=14)
    logits = F.normalize(q, dim=1) @ F.normalize(k, dim=1).T / 0.1
    torch.testing.assert_close(LF.info_nce_loss(q, k, temperature=0.1), F.cross_entropy(logits, torch.arange(6)))


def _ref_clip(img, txt, logit_scale):
    n = img.shape[0]
    s = logit_scale.exp()
    total = img.new_zeros(())
    for i in range(n):
        row = torch.stack([s * _cos(img[i], txt[j]) for j in range(n)])
        col = torch.stack([s * _cos(img[j], txt[i]) for j in range(n)])
        total = total - 0.5 * (torch.log_softmax(row, 0)[i] + torch.log_softmax(col, 0)[i])
    return total / n


def test_clip_brute_force_and_learnable_scale():
    img, txt = _data(6, 4, seed=15), _data(6, 4, seed=16)
    t = torch.tensor(math.log(1 / 0.07), dtype=F64)
    _assert_same(LF.clip_loss, _ref_clip, img, txt, t)
    # above max_scale the scale is capped and gets no gradient
    big = torch.tensor(math.log(200.0), dtype=F64, requires_grad=True)
    out = LF.clip_loss(img, txt, big)
    out.backward()
    assert big.grad.item() == 0.0
    torch.testing.assert_close(out, LF.clip_loss(img, txt, math.log(100.0)))


def _ref_barlow(a, b, lam):
    n, d = a.shape

    def bn(z):
        mu = sum(z[i] for i in range(n)) / n
        var = sum((z[i] - mu) ** 2 for i in range(n)) / n
        return (z - mu) / torch.sqrt(var + 1e-5)

    za, zb = bn(a), bn(b)
    total = a.new_zeros(())
    for i in range(d):
        for j in range(d):
            c = sum(za[k, i] * zb[k, j] for k in range(n)) / n
            total = total + ((1 - c) ** 2 if i == j else lam * c**2)
    return total


def test_barlow_twins_brute_force():
    a, b = _data(8, 3, seed=17), _data(8, 3, seed=18)
    _assert_same(lambda x, y: LF.barlow_twins_loss(x, y, lambda_=0.1), lambda x, y: _ref_barlow(x, y, 0.1), a, b)


def _ref_vicreg(a, b, lam, mu, nu, gamma, eps):
    n, d = a.shape
    inv = sum(((a[i] - b[i]) ** 2).sum() for i in range(n)) / (n * d)

    def var_cov(z):
        mean = sum(z[i] for i in range(n)) / n
        cov = [[sum((z[k, i] - mean[i]) * (z[k, j] - mean[j]) for k in range(n)) / (n - 1) for j in range(d)]
               for i in range(d)]
        v = sum(F.relu(gamma - torch.sqrt(cov[i][i] + eps)) for i in range(d)) / d
        c = sum(cov[i][j] ** 2 for i in range(d) for j in range(d) if i != j) / d
        return v, c

    va, ca = var_cov(a)
    vb, cb = var_cov(b)
    return lam * inv + mu * (va + vb) / 2 + nu * (ca + cb)


def test_vicreg_brute_force():
    a, b = _data(8, 3, seed=19) * 0.5, _data(8, 3, seed=20) * 0.5
    kw = {"invariance_weight": 2.0, "variance_weight": 3.0, "covariance_weight": 0.5, "gamma": 1.2, "eps": 1e-3}
    _assert_same(lambda x, y: LF.vicreg_loss(x, y, **kw), lambda x, y: _ref_vicreg(x, y, 2.0, 3.0, 0.5, 1.2, 1e-3),
                 a, b)


def _ref_margin_softmax(x, t, w, target_logit, other_scale):
    """-log softmax over classes, the target logit transformed; w (C, D) or (C, K, D)."""
    total = x.new_zeros(())
    for i in range(x.shape[0]):
        if w.dim() == 3:
            cos = [max((_cos(x[i], w[c, k]) for k in range(w.shape[1])), key=_val) for c in range(w.shape[0])]
        else:
            cos = [_cos(x[i], w[c]) for c in range(w.shape[0])]
        logits = [target_logit(c_, x[i]) if c == t[i] else other_scale(x[i]) * c_ for c, c_ in enumerate(cos)]
        total = total - torch.log_softmax(torch.stack(logits), 0)[t[i]]
    return total / x.shape[0]


T5 = torch.tensor([0, 1, 2, 3, 4, 1, 3, 0])


def test_arcface_brute_force():
    x, w = _data(8, 4, seed=21), _data(5, 4, seed=22)
    m, s = 0.5, 10.0

    def target(c, _):
        theta = torch.acos(c)
        return s * (torch.cos(theta + m) if _val(theta) <= math.pi - m else c - m * math.sin(m))

    _assert_same(lambda e, c: LF.arcface_loss(e, T5, c, margin=m, scale=s),
                 lambda e, c: _ref_margin_softmax(e, T5, c, target, lambda _: s), x, w)


def test_arcface_fallback_branch_brute_force():
    """Targets at angles beyond pi - m take the fallback cos(theta) - m sin(m)."""
    w = _data(3, 4, seed=23)
    x = torch.stack([-w[0] + 0.05 * w[1], -w[1] + 0.05 * w[2], w[2] + 0.3 * w[0]])
    t = torch.tensor([0, 1, 2])
    m, s = 0.5, 4.0

    def target(c, _):
        theta = torch.acos(c)
        return s * (torch.cos(theta + m) if _val(theta) <= math.pi - m else c - m * math.sin(m))

    _assert_same(lambda e, c: LF.arcface_loss(e, t, c, margin=m, scale=s),
                 lambda e, c: _ref_margin_softmax(e, t, c, target, lambda _: s), x, w)


def test_cosface_brute_force():
    x, w = _data(8, 4, seed=24), _data(5, 4, seed=25)
    _assert_same(lambda e, c: LF.cosface_loss(e, T5, c, margin=0.3, scale=7.0),
                 lambda e, c: _ref_margin_softmax(e, T5, c, lambda c_, _: 7.0 * (c_ - 0.3), lambda _: 7.0), x, w)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_sphereface_brute_force(m):
    x, w = _data(8, 4, seed=26), _data(5, 4, seed=27)

    def target(c, xi):
        theta = torch.acos(c)
        k = math.floor(_val(theta) * m / math.pi)
        return 1.5 * xi.norm() * ((-1) ** k * torch.cos(m * theta) - 2 * k)

    _assert_same(lambda e, c: LF.sphereface_loss(e, T5, c, margin=m, scale=1.5),
                 lambda e, c: _ref_margin_softmax(e, T5, c, target, lambda xi: 1.5 * xi.norm()), x, w)


def test_subcenter_arcface_brute_force_and_k1_is_arcface():
    x, w = _data(8, 4, seed=28), _data(15, 4, seed=29).reshape(5, 3, 4)
    m, s = 0.4, 9.0

    def target(c, _):
        theta = torch.acos(c)
        return s * (torch.cos(theta + m) if _val(theta) <= math.pi - m else c - m * math.sin(m))

    _assert_same(lambda e, c: LF.subcenter_arcface_loss(e, T5, c, margin=m, scale=s),
                 lambda e, c: _ref_margin_softmax(e, T5, c, target, lambda _: s), x, w)
    torch.testing.assert_close(LF.subcenter_arcface_loss(x, T5, w[:, :1]), LF.arcface_loss(x, T5, w[:, 0]))


def _ref_proxy_anchor(x, t, p, delta, alpha):
    c = p.shape[0]
    pos_total, with_pos, neg_total = x.new_zeros(()), 0, x.new_zeros(())
    for j in range(c):
        sp = [_cos(x[i], p[j]) for i in range(x.shape[0]) if t[i] == j]
        sn = [_cos(x[i], p[j]) for i in range(x.shape[0]) if t[i] != j]
        if sp:
            pos_total = pos_total + torch.log(1 + sum(torch.exp(-alpha * (s - delta)) for s in sp))
            with_pos += 1
        neg_total = neg_total + torch.log(1 + sum((torch.exp(alpha * (s + delta)) for s in sn), x.new_zeros(())))
    return pos_total / max(with_pos, 1) + neg_total / c


def test_proxy_anchor_brute_force():
    x, p = _data(8, 4, seed=30), _data(6, 4, seed=31)  # class 5 has no sample
    _assert_same(lambda e, q: LF.proxy_anchor_loss(e, T5, q, margin=0.1, alpha=8.0),
                 lambda e, q: _ref_proxy_anchor(e, T5, q, 0.1, 8.0), x, p)


def test_proxy_nca_brute_force():
    x, p = _data(8, 4, seed=32), _data(5, 4, seed=33)

    def ref(e, q):
        total = e.new_zeros(())
        for i in range(e.shape[0]):
            logits = torch.stack([-(e[i] / e[i].norm() - q[c] / q[c].norm()).pow(2).sum() / 0.5
                                  for c in range(q.shape[0])])
            total = total - torch.log_softmax(logits, 0)[T5[i]]
        return total / e.shape[0]

    _assert_same(lambda e, q: LF.proxy_nca_loss(e, T5, q, temperature=0.5), ref, x, p)


# ------------------------------------------------------------------------ pytorch-metric-learning

pml = pytest.importorskip("pytorch_metric_learning")
from pytorch_metric_learning import distances, losses, miners, reducers  # noqa: E402


def _uneven_labels(n, seed=0):
    """Half the batch shares one label, the rest pairs (the layout of PML issue #203)."""
    half = n // 2
    rest = torch.arange(1, (n - half) // 2 + 1).repeat_interleave(2)
    t = torch.cat([torch.zeros(half, dtype=torch.long), rest, torch.full((n - half - len(rest),), 99)])
    return t[torch.randperm(n, generator=torch.Generator().manual_seed(seed))]


def test_pml_ntxent_value_and_gradient():
    x = _data(40, 8, seed=40)
    t = _uneven_labels(40)
    _assert_same(lambda e: LF.ntxent_loss(e, t, temperature=0.07), lambda e: losses.NTXentLoss(temperature=0.07)(e, t),
                 x, rtol=1e-6, atol=1e-8)
    x32 = x.float()
    _assert_same(lambda e: LF.ntxent_loss(e, t, temperature=0.1), lambda e: losses.NTXentLoss(temperature=0.1)(e, t),
                 x32, rtol=2e-5, atol=1e-6)


def test_pml_supcon_value_and_gradient():
    x = _data(30, 6, seed=41)
    t = _uneven_labels(30, seed=1)
    t[t == 99] = 1  # every anchor has a positive and a negative
    _assert_same(lambda e: LF.supcon_loss(e, t, temperature=0.1), lambda e: losses.SupConLoss(temperature=0.1)(e, t),
                 x, rtol=1e-6, atol=1e-8)


PML_DISTANCES = {
    "euclidean": (lambda: distances.LpDistance(normalize_embeddings=False), {"distance": "euclidean"}),
    "normalized": (lambda: distances.LpDistance(), {"distance": "euclidean", "normalize": True}),
    "squared": (lambda: distances.LpDistance(normalize_embeddings=False, power=2),
                {"distance": "squared_euclidean"}),
    "cosine": (lambda: distances.CosineSimilarity(), {"distance": "cosine"}),
}


@pytest.mark.parametrize("dist", list(PML_DISTANCES))
@pytest.mark.parametrize("soft", [False, True])
def test_pml_triplet_batch_hard(dist, soft):
    x = _data(24, 6, seed=42)
    t = torch.arange(6).repeat(4)
    make, kw = PML_DISTANCES[dist]
    margin = 0.2 if dist in ("cosine", "normalized") else 1.0
    for reducer, nonzero in ((reducers.AvgNonZeroReducer(), True), (reducers.MeanReducer(), False)):
        loss_fn = losses.TripletMarginLoss(margin=margin, smooth_loss=soft, distance=make(), reducer=reducer)
        miner = miners.BatchHardMiner(distance=make())
        _assert_same(lambda e, f=loss_fn, mi=miner: f(e, t, mi(e, t)),
                     lambda e, nz=nonzero: LF.triplet_loss(e, t, margin=margin, mining="batch_hard", soft_margin=soft,
                                                           average_nonzero=nz, **kw), x, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dist", list(PML_DISTANCES))
@pytest.mark.parametrize("mining", ["all", "hard", "semihard", "no miner"])
def test_pml_triplet_with_margin_miner(dist, mining, triplet_path):
    x = _data(20, 5, seed=43)
    t = _uneven_labels(20, seed=2)
    make, kw = PML_DISTANCES[dist]
    margin = 0.2 if dist in ("cosine", "normalized") else 0.8
    loss_fn = losses.TripletMarginLoss(margin=margin, distance=make())
    ours = {"all": "all", "hard": "hard", "semihard": "semi_hard", "no miner": "all"}[mining]
    if mining == "no miner":
        def theirs(e):
            return loss_fn(e, t)
    else:
        miner = miners.TripletMarginMiner(margin=margin, type_of_triplets=mining, distance=make())

        def theirs(e):
            return loss_fn(e, t, miner(e, t))
    _assert_same(theirs, lambda e: LF.triplet_loss(e, t, margin=margin, mining=ours, average_nonzero=True, **kw),
                 x, rtol=1e-6, atol=1e-8)


def test_pml_triplet_all_triplets_mean_reducer(triplet_path):
    x = _data(16, 4, seed=44)
    t = _uneven_labels(16, seed=3)
    loss_fn = losses.TripletMarginLoss(margin=0.3, reducer=reducers.MeanReducer())
    _assert_same(lambda e: loss_fn(e, t), lambda e: LF.triplet_loss(e, t, margin=0.3, mining="all", normalize=True),
                 x, rtol=1e-6, atol=1e-8)


def test_pml_contrastive_pair_terms():
    """Positive and negative pair terms match PML's one part at a time (PML adds the two part means,
    lossforge averages all ordered pairs)."""
    x = _data(14, 5, seed=45)
    t = _uneven_labels(14, seed=4)
    n = len(t)
    same = (t[:, None] == t[None, :]).sum().item() - n
    diff = n * (n - 1) - same
    mean = reducers.MeanReducer()
    for pos_margin, neg_margin, count in ((0.1, 0.0, same), (5.0, 1.2, diff)):
        pml_fn = losses.ContrastiveLoss(pos_margin=pos_margin, neg_margin=neg_margin, reducer=mean)
        _assert_same(lambda e, f=pml_fn: f(e, t),
                     lambda e, a=pos_margin, b=neg_margin, c=count: LF.contrastive_loss(
                         e, t, pos_margin=a, margin=b, squared=False, normalize=True) * n * (n - 1) / c,
                     x, rtol=1e-6, atol=1e-8)


def _pml_with_weight(loss_obj, attribute, value):
    with torch.no_grad():
        getattr(loss_obj, attribute).copy_(value)
    return loss_obj


@pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")  # inside PML's SphereFace (scipy/numpy 2)
def test_pml_arcface_cosface_sphereface_subcenter():
    x, w = _data(10, 6, seed=46), _data(4, 6, seed=47)
    t = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 3, 0])
    arc = losses.ArcFaceLoss(4, 6, margin=math.degrees(0.5), scale=64).double()

    def pml_vs_ours(pml_obj, ours, centers, transform):
        def theirs(e, c):
            with torch.no_grad():
                pml_obj.W.copy_(transform(c))
            pml_obj.W.grad = None
            value = pml_obj(e, t)
            return value + 0.0 * c.sum()

        va, ga = _grad(theirs, x, centers)
        vb, gb = _grad(ours, x, centers)
        torch.testing.assert_close(va, vb, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(ga[0], gb[0], rtol=1e-6, atol=1e-8)
        # the centre gradient: PML's W is (D, C[*K])
        pml_obj.W.grad = None
        pml_obj(x, t).backward()
        return pml_obj.W.grad, gb[1]

    g_pml, g_ours = pml_vs_ours(arc, lambda e, c: LF.arcface_loss(e, t, c, margin=0.5, scale=64.0), w, lambda c: c.T)
    torch.testing.assert_close(g_pml.T, g_ours, rtol=1e-6, atol=1e-8)
    cos = losses.CosFaceLoss(4, 6, margin=0.35, scale=64).double()
    g_pml, g_ours = pml_vs_ours(cos, lambda e, c: LF.cosface_loss(e, t, c, margin=0.35, scale=64.0), w, lambda c: c.T)
    torch.testing.assert_close(g_pml.T, g_ours, rtol=1e-6, atol=1e-8)
    sph = losses.SphereFaceLoss(4, 6, margin=4, scale=1).double()
    g_pml, g_ours = pml_vs_ours(sph, lambda e, c: LF.sphereface_loss(e, t, c, margin=4, scale=1.0), w, lambda c: c.T)
    torch.testing.assert_close(g_pml.T, g_ours, rtol=1e-6, atol=1e-8)
    ws = _data(12, 6, seed=48).reshape(4, 3, 6)
    sub = losses.SubCenterArcFaceLoss(num_classes=4, embedding_size=6, sub_centers=3,
                                      margin=math.degrees(0.5), scale=64).double()
    g_pml, g_ours = pml_vs_ours(sub, lambda e, c: LF.subcenter_arcface_loss(e, t, c, margin=0.5, scale=64.0), ws,
                                lambda c: c.reshape(12, 6).T)
    torch.testing.assert_close(g_pml.T.reshape(4, 3, 6), g_ours, rtol=1e-6, atol=1e-8)


def test_pml_circle_and_multi_similarity():
    x = _data(24, 6, seed=49)
    t = torch.arange(6).repeat(4)
    _assert_same(lambda e: losses.CircleLoss(m=0.25, gamma=64)(e, t),
                 lambda e: LF.circle_loss(e, t, margin=0.25, gamma=64.0), x, rtol=1e-6, atol=1e-8)
    _assert_same(lambda e: losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5)(e, t),
                 lambda e: LF.multi_similarity_loss(e, t, alpha=2.0, beta=50.0, base=0.5), x, rtol=1e-6, atol=1e-8)


def test_pml_proxy_losses_lifted_and_vicreg():
    x, p = _data(10, 6, seed=50), _data(5, 6, seed=51)
    t = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 3])  # class 4 absent
    anchor = _pml_with_weight(losses.ProxyAnchorLoss(5, 6, margin=0.1, alpha=32).double(), "proxies", p)
    _assert_same(lambda e: anchor(e, t), lambda e: LF.proxy_anchor_loss(e, t, p, margin=0.1, alpha=32.0), x,
                 rtol=1e-6, atol=1e-8)
    nca = _pml_with_weight(losses.ProxyNCALoss(5, 6, softmax_scale=4.0).double(), "proxies", p)
    _assert_same(lambda e: nca(e, t), lambda e: LF.proxy_nca_loss(e, t, p, temperature=0.25), x, rtol=1e-6, atol=1e-8)
    lifted = losses.LiftedStructureLoss(neg_margin=1.2, pos_margin=0,
                                        distance=distances.LpDistance(normalize_embeddings=False))
    _assert_same(lambda e: lifted(e, t), lambda e: LF.lifted_structure_loss(e, t, margin=1.2), x, rtol=1e-6, atol=1e-8)
    y = _data(10, 6, seed=52)
    vic = losses.VICRegLoss(invariance_lambda=25, variance_mu=25, covariance_v=1, eps=1e-4)
    _assert_same(lambda a, b: vic(a, ref_emb=b), lambda a, b: LF.vicreg_loss(a, b), x, y, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------------- numerics (M1 - M8)

LABEL_LOSSES = ["contrastive", "triplet", "ntxent", "supcon", "circle", "multi_similarity", "lifted_structure"]
NEEDS_BOTH = [n for n in LABEL_LOSSES if n != "contrastive"]


@pytest.mark.parametrize("name", NEEDS_BOTH)
@pytest.mark.parametrize("layout", ["distinct", "equal", "one", "empty"])
def test_no_positives_no_negatives_batch_of_one_give_zero(name, layout):
    x = torch.randn(6, 4, requires_grad=True)
    t = {"distinct": torch.arange(6), "equal": torch.zeros(6, dtype=torch.long), "one": torch.tensor([3]),
         "empty": torch.zeros(0, dtype=torch.long)}[layout]
    xs = x[: len(t)]
    out = _spec(name).function(xs, t)
    assert out.item() == 0.0
    out.backward()
    assert torch.isfinite(x.grad).all() and torch.all(x.grad == 0)


def test_triplet_all_minings_zero_without_triplets(triplet_path):
    x = torch.randn(5, 3, requires_grad=True)
    for mining in ("batch_hard", "batch_semi_hard", "all", "hard", "semi_hard"):
        for t in (torch.arange(5), torch.zeros(5, dtype=torch.long)):
            out = LF.triplet_loss(x, t, mining=mining)
            assert out.item() == 0.0
            (g,) = torch.autograd.grad(out, x)
            assert torch.all(g == 0)


def test_contrastive_batch_of_one_and_all_negatives():
    x = torch.randn(1, 3, requires_grad=True)
    out = LF.contrastive_loss(x, torch.tensor([0]))
    out.backward()
    assert out.item() == 0.0 and torch.all(x.grad == 0)
    # pairs are independent: negatives within the margin cost something even without positives
    assert LF.contrastive_loss(torch.zeros(3, 2), torch.arange(3)).item() == pytest.approx(1.0)


@pytest.mark.parametrize("name", LABEL_LOSSES)
@pytest.mark.parametrize("distance", ["euclidean", "squared_euclidean", "cosine"])
def test_anchor_equal_to_positive_finite_gradient(name, distance):
    x = torch.randn(6, 4)
    x[3:] = x[:3]
    x.requires_grad_(True)
    t = torch.arange(3).repeat(2)
    kw = {"distance": distance} if name in ("contrastive", "triplet") else {}
    for mining in (("batch_hard", "batch_semi_hard", "all", "hard", "semi_hard") if name == "triplet" else (None,)):
        extra = {"mining": mining} if mining else {}
        out = _spec(name).function(x, t, **kw, **extra)
        (g,) = torch.autograd.grad(out, x)
        assert torch.isfinite(out) and torch.isfinite(g).all(), (name, distance, mining)


@pytest.mark.parametrize("name", METRIC)
def test_zero_norm_float16_finite(name):
    spec = _spec(name)
    sample = spec.sample_inputs(torch.float16, "cpu")[0]
    args = list(sample.args)
    args[0] = torch.zeros_like(args[0]).requires_grad_(True)
    out = spec.function(*args, **sample.kwargs)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(args[0].grad).all()


@pytest.mark.parametrize("fn", [LF.arcface_loss, LF.cosface_loss, LF.sphereface_loss])
def test_cosine_exactly_plus_minus_one_under_angular_margins(fn):
    w = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    x = torch.tensor([[2.0, 0.0, 0.0], [0.0, -3.0, 0.0], [0.0, 0.0, -1.0], [0.0, 5.0, 0.0]], requires_grad=True)
    t = torch.tensor([0, 1, 2, 1])
    wl = w.clone().requires_grad_(True)
    out = fn(x, t, wl)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(x.grad).all() and torch.isfinite(wl.grad).all()
    centers = torch.stack([w, -w], 1).requires_grad_(True)  # sub-centres exactly +-1 as well
    out = LF.subcenter_arcface_loss(x, t, centers)
    out.backward()
    assert torch.isfinite(centers.grad).all()


def test_large_scales_finite_and_positive():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(32, 16, generator=g, requires_grad=True)
    w = torch.randn(8, 16, generator=g, requires_grad=True)
    t = torch.arange(8).repeat(4)
    outs = [LF.arcface_loss(x, t, w, scale=64.0), LF.cosface_loss(x, t, w, scale=64.0),
            LF.subcenter_arcface_loss(x, t, w.reshape(8, 1, 16), scale=64.0),
            LF.circle_loss(x, t, gamma=256.0, margin=0.25), LF.circle_loss(x, t, gamma=1024.0),
            LF.proxy_anchor_loss(x, t, w, alpha=256.0), LF.multi_similarity_loss(x, t, beta=256.0),
            LF.ntxent_loss(x, t, temperature=1e-3), LF.supcon_loss(x, t, temperature=1e-3),
            LF.clip_loss(x, x.flip(0), 20.0)]
    for out in outs:
        assert torch.isfinite(out) and out.item() > 0
    sum(outs).backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(w.grad).all()


def test_ntxent_small_temperature_matches_float64():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(64, 8, generator=g)
    t = _uneven_labels(64)
    for tau in (0.01, 0.005):
        a, ga = _grad(lambda e, tau=tau: LF.ntxent_loss(e, t, temperature=tau), x)
        b, gb = _grad(lambda e, tau=tau: LF.ntxent_loss(e, t, temperature=tau), x.double())
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ga[0].double(), gb[0], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", ["ntxent", "supcon", "info_nce", "triplet", "contrastive", "arcface", "clip"])
def test_gradgradcheck(name):
    """Double backward, including through the fused softmax kernel (which switches to its
    differentiable reference path under create_graph=True)."""
    spec = _spec(name)
    for sample in spec.sample_inputs(F64, "cpu")[:1]:
        leaves, args = _leaves(spec, sample)
        positions = [i for i, a in enumerate(args) if any(a is leaf for leaf in leaves)]

        def fn(*diff, _args=args, _pos=positions, _sample=sample):
            full = list(_args)
            for i, value in zip(_pos, diff):
                full[i] = value
            return spec.function(*full, **_sample.kwargs)

        assert torch.autograd.gradgradcheck(fn, tuple(leaves), eps=1e-6, atol=1e-5, rtol=1e-4), (name, sample.name)


def test_fused_kernel_backward_equals_reference_path():
    from lossforge.losses._metric_ops import SoftmaxPairTerms, label_masks, softmax_pair_terms_reference

    g = torch.Generator().manual_seed(4)
    q = F.normalize(torch.randn(12, 5, generator=g, dtype=F64), dim=1)
    r = F.normalize(torch.randn(9, 5, generator=g, dtype=F64), dim=1)
    lq, lr = torch.randint(0, 3, (12,), generator=g), torch.randint(0, 3, (9,), generator=g)
    pos, neg = label_masks(lq, lr)
    w = torch.rand(12, generator=g, dtype=F64)
    for mode, den in (("pairs", neg), ("supcon", pos | neg)):
        _assert_same(lambda a, b, m=mode, d=den: (SoftmaxPairTerms.apply(a, b, pos, d, 7.0, m) * w).sum(),
                     lambda a, b, m=mode, d=den: (softmax_pair_terms_reference(a, b, pos, d, 7.0, m) * w).sum(),
                     q, r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", METRIC)
def test_empty_batch_gives_zero_with_zero_gradients(name):
    spec = _spec(name)
    sample = spec.sample_inputs(torch.float32, "cpu")[0]
    args = [a[:0] if isinstance(a, torch.Tensor) and a.dim() >= 1 and i < 2 else a
            for i, a in enumerate(sample.args)]
    leaves, args = _leaves(spec, type(sample)(tuple(args), {k: v for k, v in sample.kwargs.items()
                                                             if k not in ("sample_weight", "mask")}))
    out = spec.function(*args)
    out.backward()
    assert out.item() == 0.0
    for leaf in leaves:
        assert torch.all(leaf.grad == 0)


def test_views_batch_of_one_give_zero():
    for fn in (LF.barlow_twins_loss, LF.vicreg_loss):
        a = torch.randn(1, 4, requires_grad=True)
        out = fn(a, a * 2)
        out.backward()
        assert out.item() == 0.0 and torch.all(a.grad == 0)


def test_info_nce_negative_keys_shape_and_devices_checked():
    with pytest.raises(ValueError, match=r"info_nce_loss: negative_keys must have shape \(N, D\)"):
        LF.info_nce_loss(torch.randn(3, 2), torch.randn(3, 2), negative_keys=torch.randn(2))


def test_per_anchor_weights_weight_whole_anchors():
    x = _data(10, 4, seed=60)
    w = torch.rand(10, dtype=F64, generator=torch.Generator().manual_seed(1)) + 0.5
    for name in ("triplet", "ntxent", "lifted_structure"):
        fn = _spec(name).function
        none = fn(x, LABELS, reduction="none")
        total = fn(x, LABELS, reduction="sum", sample_weight=w)
        torch.testing.assert_close(total, (none * w).sum())


def test_gather_distributed_is_identity_when_not_initialised():
    x = _data(8, 3, seed=61)
    t = torch.arange(4).repeat(2)
    for name in ("contrastive", "triplet", "ntxent", "supcon", "circle", "multi_similarity", "lifted_structure"):
        fn = _spec(name).function
        torch.testing.assert_close(fn(x, t, gather_distributed=True), fn(x, t))


# ----------------------------------------------------------------------------------------- properties

@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 9), classes=st.integers(1, 4))
def test_permutation_invariance_and_nonnegativity(seed, n, classes):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=F64)
    t = torch.randint(0, classes, (n,), generator=g)
    perm = torch.randperm(n, generator=g)
    for name in LABEL_LOSSES:
        fn = _spec(name).function
        a = fn(x, t)
        b = fn(x[perm], t[perm])
        assert a.item() >= 0
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(fn(x, t, reduction="none")[perm], fn(x[perm], t[perm], reduction="none"))


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), mining=st.sampled_from(["all", "hard", "semi_hard", "batch_semi_hard"]),
       limit=st.sampled_from([0, 1 << 24]))
def test_triplet_random_layouts_against_brute_force(seed, mining, limit):
    from lossforge.losses import _metric_pairs

    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(2, 9, (1,), generator=g))
    x = torch.randn(n, 3, generator=g, dtype=F64)
    t = torch.randint(0, 3, (n,), generator=g)
    saved, _metric_pairs.DIRECT_TRIPLET_LIMIT = _metric_pairs.DIRECT_TRIPLET_LIMIT, limit
    try:
        out = LF.triplet_loss(x, t, mining=mining, margin=0.5)
    finally:
        _metric_pairs.DIRECT_TRIPLET_LIMIT = saved
    torch.testing.assert_close(out, _ref_triplet(x, t, 0.5, mining))


@pytest.mark.slow
def test_compile_fullgraph_matches_eager():
    x = _data(8, 4, seed=70).float()
    t = torch.arange(4).repeat(2)
    for fn in (LF.ntxent_loss, LF.supcon_loss, LF.triplet_loss):
        compiled = torch.compile(fn, fullgraph=True, backend="eager")
        torch.testing.assert_close(compiled(x, t), fn(x, t))
