"""Distribution losses: kl_div, js_div, mmd, sinkhorn, sliced_wasserstein.

1. Conformance: every generic check of ``lossforge.verify`` on each loss of the family.
2. Independent references in float64: per-entry loops for KL and JS, an explicit double loop over
   point pairs for MMD, a plain (no annealing) log-domain Sinkhorn loop, and for the sliced
   Wasserstein distance the exact 1-D distance of sets made equal-sized by repeating each point
   ``lcm(N, M) / N`` times (then matching sorted values).
3. Cross-check against torch's ``kl_div``, with the mapping: lossforge ``"mean"`` == torch
   ``"batchmean"``; torch ``"mean"`` == lossforge ``"mean"`` / C; ``"sum"`` agrees; lossforge
   ``"none"`` == torch ``"none"`` summed over dimension 1.
4. The battery: P1-P3 (zeros in the target, ``-inf`` log-targets, KL reduction), identical sets,
   far-apart sets, small epsilon for Sinkhorn, determinism given a seed.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import lossforge as lf
import lossforge.functional as LF
from lossforge.losses._distribution import _directions
from lossforge.verify import run_checks

NAMES = ["kl_div", "js_div", "mmd", "sinkhorn", "sliced_wasserstein"]


def _dists(n=5, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    lp = torch.log_softmax(torch.randn(n, c, generator=g, dtype=torch.float64) * 2, 1)
    q = torch.softmax(torch.randn(n, c, generator=g, dtype=torch.float64), 1)
    return lp, q


# ------------------------------------------------------------------------------------------ conformance


def test_family_is_complete():
    assert set(NAMES) <= set(lf.list_losses("distribution"))
    assert lf.get_loss("kl").name == "kl_div" and lf.get_loss("js").name == "js_div"
    for name in ("mmd", "sinkhorn", "sliced_wasserstein"):
        assert not lf.get_loss(name).separable


@pytest.mark.parametrize("name", NAMES)
def test_conformance(name):
    failed = [str(r) for r in run_checks(lf.get_loss(name)) if not r.ok]
    assert not failed, "\n".join(failed)


# ----------------------------------------------------------------------------------------------- KL, JS


def test_kl_div_loop_reference_and_torch_mapping():
    lp, q = _dists()
    q[0, 1] = 0.0
    q = q / q.sum(1, keepdim=True)
    want = torch.tensor([sum(qi * (math.log(qi) - li) for qi, li in zip(qr.tolist(), lr.tolist()) if qi > 0)
                         for qr, lr in zip(q, lp)], dtype=torch.float64)
    torch.testing.assert_close(LF.kl_div(lp, q, reduction="none"), want)
    torch.testing.assert_close(LF.kl_div(lp, q), F.kl_div(lp, q, reduction="batchmean"))
    torch.testing.assert_close(LF.kl_div(lp, q, reduction="sum"), F.kl_div(lp, q, reduction="sum"))
    with pytest.warns(UserWarning, match="batchmean"):  # torch warns that its "mean" is not the KL
        torch_mean = F.kl_div(lp, q, reduction="mean")
    torch.testing.assert_close(LF.kl_div(lp, q) / q.shape[1], torch_mean)
    torch.testing.assert_close(LF.kl_div(lp, q, reduction="none"), F.kl_div(lp, q, reduction="none").sum(1))
    # log_target: torch agrees where the target has no zero; where it has one, torch gives NaN (P2).
    lt = q.log()
    torch.testing.assert_close(LF.kl_div(lp[1:], lt[1:], log_target=True),
                               F.kl_div(lp[1:], lt[1:], reduction="batchmean", log_target=True))
    assert torch.isnan(F.kl_div(lp, lt, reduction="batchmean", log_target=True))
    torch.testing.assert_close(LF.kl_div(lp, lt, log_target=True), LF.kl_div(lp, q))


def test_kl_div_spatial_unit_is_a_position():
    lp = torch.log_softmax(torch.randn(2, 3, 4, 5, dtype=torch.float64), 1)
    q = torch.softmax(torch.randn(2, 3, 4, 5, dtype=torch.float64), 1)
    none = LF.kl_div(lp, q, reduction="none")
    assert none.shape == (2, 4, 5)
    torch.testing.assert_close(none, F.kl_div(lp, q, reduction="none").sum(1))
    torch.testing.assert_close(LF.kl_div(lp, q), none.mean())


def test_kl_zero_target_finite_gradients_where_torch_is_nan():
    """P1/P2: 0 log 0 = 0 with finite gradients w.r.t. both inputs (torch: NaN w.r.t. the target)."""
    lp = torch.log_softmax(torch.tensor([[2.0, -1.0, 0.5]], dtype=torch.float64), 1).requires_grad_(True)
    q = torch.tensor([[0.7, 0.0, 0.3]], dtype=torch.float64, requires_grad=True)
    LF.kl_div(lp, q).backward()
    assert torch.isfinite(lp.grad).all() and torch.isfinite(q.grad).all()
    torch.testing.assert_close(lp.grad, -q.detach())
    q2 = q.detach().clone().requires_grad_(True)
    F.kl_div(lp.detach(), q2, reduction="batchmean").backward()
    assert not torch.isfinite(q2.grad).all()  # the torch behaviour this policy avoids
    # log_target with -inf entries, and log_probs -inf where the target is 0.
    lt = q.detach().log().requires_grad_(True)
    hard = torch.tensor([[0.0, -math.inf, 0.0]], dtype=torch.float64).log_softmax(1).requires_grad_(True)
    out = LF.kl_div(hard, lt, log_target=True)
    assert torch.isfinite(out)
    out.backward()
    assert torch.isfinite(hard.grad).all() and torch.isfinite(lt.grad).all()


def test_kl_infinite_where_the_model_excludes_target_mass():
    lp = torch.tensor([[0.0, -math.inf]])
    assert LF.kl_div(lp, torch.tensor([[0.5, 0.5]])).item() == math.inf


def test_js_div_reference_and_properties():
    lp, q = _dists(seed=1)
    p = lp.exp()
    m = (p + q) / 2
    want = 0.5 * (p * (p / m).log()).sum(1) + 0.5 * (q * (q / m).log()).sum(1)
    torch.testing.assert_close(LF.js_div_loss(lp, q, reduction="none"), want)
    torch.testing.assert_close(LF.js_div_loss(q.log(), p, reduction="none"), want)  # symmetric
    torch.testing.assert_close(LF.js_div_loss(lp, q.log(), log_target=True, reduction="none"), want)
    disjoint = LF.js_div_loss(torch.tensor([[0.0, -math.inf]]), torch.tensor([[0.0, 1.0]]))
    assert disjoint.item() == pytest.approx(math.log(2))
    assert LF.js_div_loss(lp, p).item() == pytest.approx(0.0, abs=1e-12)


def test_js_div_finite_gradient_with_zeros_on_both_sides():
    lp = torch.tensor([[0.0, -math.inf, -math.inf]], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    out = LF.js_div_loss(lp, q)
    out.backward()
    assert torch.isfinite(lp.grad).all() and torch.isfinite(q.grad).all()


# ------------------------------------------------------------------------------------------------ MMD


def _mmd_reference(x, y, sigmas, unbiased=False):
    def k(a, b):
        d2 = float(((a - b) ** 2).sum())
        return sum(math.exp(-d2 / (2 * s * s)) for s in sigmas) / len(sigmas)

    n, m = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if not unbiased or i != j)
    syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if not unbiased or i != j)
    sxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m))
    if unbiased:
        return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2 * sxy / (n * m)
    return sxx / n**2 + syy / m**2 - 2 * sxy / (n * m)


@pytest.mark.parametrize("unbiased", [False, True])
def test_mmd_loop_reference(unbiased):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64) + 5.0  # far from the origin: centring matters
    y = torch.randn(5, 3, generator=g, dtype=torch.float64) * 1.3 + 5.5
    sigmas = (0.5, 1.0, 3.0)
    got = LF.mmd_loss(x, y, bandwidths=sigmas, unbiased=unbiased)
    assert got.item() == pytest.approx(_mmd_reference(x, y, sigmas, unbiased), rel=1e-10, abs=1e-12)


def test_mmd_median_heuristic_and_batching():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 6, 2, generator=g, dtype=torch.float64)
    y = torch.randn(2, 4, 2, generator=g, dtype=torch.float64) + 1
    none = LF.mmd_loss(x, y, reduction="none")
    assert none.shape == (2,)
    for b in range(2):
        z = torch.cat([x[b], y[b]])
        d2 = torch.cdist(z, z).square()
        med = d2[~torch.eye(10, dtype=torch.bool)].median()
        sigmas = [math.sqrt(med.item() * 2.0**k / 2) for k in range(-2, 3)]
        assert none[b].item() == pytest.approx(_mmd_reference(x[b], y[b], sigmas), rel=1e-9)
        torch.testing.assert_close(LF.mmd_loss(x[b], y[b]), none[b])


def test_mmd_identical_and_degenerate_sets():
    x = torch.randn(5, 3, requires_grad=True)
    assert LF.mmd_loss(x, x.detach()).item() == pytest.approx(0.0, abs=1e-6)
    same = torch.zeros(4, 2, requires_grad=True)
    out = LF.mmd_loss(same, torch.zeros(3, 2))  # every distance 0: the median guard
    assert out.item() == pytest.approx(0.0, abs=1e-7)
    out.backward()
    assert torch.isfinite(same.grad).all()


# -------------------------------------------------------------------------------------------- Sinkhorn


def _sinkhorn_reference(x, y, eps, iters=3000):
    """Plain alternating log-domain Sinkhorn in float64 (no annealing), primal cost <P, C> + eps KL."""
    c = torch.cdist(x, y).square()
    n, m = c.shape
    f, g = torch.zeros(n, dtype=torch.float64), torch.zeros(m, dtype=torch.float64)
    for _ in range(iters):
        f = -eps * torch.logsumexp(-math.log(m) + (g[None, :] - c) / eps, 1)
        g = -eps * torch.logsumexp(-math.log(n) + (f[:, None] - c) / eps, 0)
    log_p = (f[:, None] + g[None, :] - c) / eps - math.log(n) - math.log(m)
    p = log_p.exp()
    return float((p * c).sum() + eps * (p * (log_p + math.log(n) + math.log(m))).sum())


def test_sinkhorn_matches_a_plain_loop():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 2, generator=g, dtype=torch.float64)
    y = torch.randn(5, 2, generator=g, dtype=torch.float64) + 0.5
    for eps in (1.0, 0.1):
        got = LF.sinkhorn_loss(x, y, epsilon=eps, num_iters=400, debias=False)
        assert got.item() == pytest.approx(_sinkhorn_reference(x, y, eps), rel=1e-6, abs=1e-8)
    full = (LF.sinkhorn_loss(x, y, epsilon=0.1, num_iters=400, debias=False)
            - 0.5 * LF.sinkhorn_loss(x, x, epsilon=0.1, num_iters=400, debias=False)
            - 0.5 * LF.sinkhorn_loss(y, y, epsilon=0.1, num_iters=400, debias=False))
    torch.testing.assert_close(LF.sinkhorn_loss(x, y, epsilon=0.1, num_iters=400), full)


def test_sinkhorn_small_epsilon_approaches_exact_w2_and_stays_finite():
    """Stable down to epsilon = 1e-3: for equal-size 1-D sets the exact W2^2 matches sorted points."""
    g = torch.Generator().manual_seed(5)
    # Well-separated points, so the optimal plan is a unique permutation.
    x = (torch.arange(8.0, dtype=torch.float64) + 0.2 * torch.rand(8, generator=g, dtype=torch.float64))
    x = x[torch.randperm(8, generator=g)].unsqueeze(1).requires_grad_(True)
    y = 1.5 * torch.arange(8.0, dtype=torch.float64).unsqueeze(1) - 2
    exact = (x.detach().sort(0).values - y.sort(0).values).square().mean()
    out = LF.sinkhorn_loss(x, y, epsilon=1e-3, num_iters=300)
    assert out.item() == pytest.approx(exact.item(), rel=1e-2)
    out.backward()
    assert torch.isfinite(x.grad).all()
    # The envelope gradient at convergence: 2 (x_i - matched y) / N for the sorted matching.
    order = x.detach()[:, 0].argsort()
    matched = torch.empty_like(x.detach())
    matched[order] = y.sort(0).values
    torch.testing.assert_close(x.grad, 2 * (x.detach() - matched) / 8, rtol=1e-3, atol=1e-4)
    for dtype in (torch.float32, torch.float16):
        a = (x.detach() * 100).to(dtype).requires_grad_(True)
        val = LF.sinkhorn_loss(a, (y * 100).to(dtype), epsilon=1e-3, num_iters=50)
        assert torch.isfinite(val)
        val.backward()
        assert torch.isfinite(a.grad).all()


def test_sinkhorn_p1_and_identical_sets():
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert LF.sinkhorn_loss(x, x.detach()).item() == pytest.approx(0.0, abs=1e-10)
    out = LF.sinkhorn_loss(x, x.detach() + 1.0, p=1, epsilon=0.01)
    assert out.item() == pytest.approx(math.sqrt(3), rel=0.05)  # every point moved by (1, 1, 1)
    out.backward()
    assert torch.isfinite(x.grad).all()


# -------------------------------------------------------------------------------- sliced Wasserstein


def _sw_reference(x, y, theta, p):
    n, m = len(x), len(y)
    lcm = n * m // math.gcd(n, m)
    total = 0.0
    for k in range(theta.shape[1]):
        px = sorted((x @ theta[:, k]).tolist() * (lcm // n))
        py = sorted((y @ theta[:, k]).tolist() * (lcm // m))
        total += sum(abs(a - b) ** p for a, b in zip(px, py)) / lcm
    return total / theta.shape[1]


@pytest.mark.parametrize(("n", "m", "p"), [(6, 6, 2.0), (6, 4, 2.0), (5, 3, 1.0), (4, 7, 1.5)])
def test_sliced_wasserstein_reference(n, m, p):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    y = torch.randn(m, 3, generator=g, dtype=torch.float64) * 2
    # The directions are an input of the reference: those the loss draws from seed 7.
    theta = _directions(3, 10, x, 7, None)
    assert torch.allclose(theta.norm(dim=0), torch.ones(10, dtype=torch.float64))
    got = LF.sliced_wasserstein_loss(x, y, num_projections=10, p=p, seed=7)
    assert got.item() == pytest.approx(_sw_reference(x, y, theta, p), rel=1e-10)


def test_seeded_directions_are_standard_normal_and_device_independent():
    from lossforge.losses._distribution import _seeded_normal

    z = _seeded_normal(3, 100_000, torch.device("cpu"))
    assert abs(z.mean().item()) < 0.02 and abs(z.std().item() - 1) < 0.02
    assert (z.abs() > 3).float().mean().item() == pytest.approx(0.0027, abs=0.001)
    assert not torch.equal(z[:10], _seeded_normal(4, 10, torch.device("cpu")))


def test_sliced_wasserstein_determinism_and_generator():
    x, y = torch.randn(10, 4), torch.randn(9, 4)
    a = LF.sliced_wasserstein_loss(x, y, seed=3)
    assert torch.equal(a, LF.sliced_wasserstein_loss(x, y, seed=3))
    assert not torch.equal(a, LF.sliced_wasserstein_loss(x, y, seed=4))
    gen1, gen2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(LF.sliced_wasserstein_loss(x, y, generator=gen1),
                       LF.sliced_wasserstein_loss(x, y, generator=gen2))
    torch.manual_seed(0)
    b = LF.sliced_wasserstein_loss(x, y)
    torch.manual_seed(0)
    assert torch.equal(b, LF.sliced_wasserstein_loss(x, y))


def test_sliced_wasserstein_1d_shift_and_batching():
    x = torch.randn(7, 1, dtype=torch.float64)
    assert LF.sliced_wasserstein_loss(x, x + 2.0, seed=0).item() == pytest.approx(4.0)
    xb, yb = torch.randn(3, 5, 2), torch.randn(3, 4, 2)
    none = LF.sliced_wasserstein_loss(xb, yb, seed=1, reduction="none")
    assert none.shape == (3,)
    for i in range(3):
        torch.testing.assert_close(none[i], LF.sliced_wasserstein_loss(xb[i], yb[i], seed=1))


def test_set_losses_bad_inputs():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"mmd_loss: y must have shape \(M, 3\) to match x \(4, 3\), got \(4, 2\)"):
        LF.mmd_loss(x, torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"y must have shape \(2, M, 3\) to match x \(2, 4, 3\), got \(3, 4, 3\)"):
        LF.sinkhorn_loss(torch.randn(2, 4, 3), torch.randn(3, 4, 3))
    with pytest.raises(ValueError, match=r"sliced_wasserstein_loss: y must hold at least 1 point"):
        LF.sliced_wasserstein_loss(x, x[:0])
    with pytest.raises(TypeError, match=r"seed must be an int or None, got 1.5"):
        LF.sliced_wasserstein_loss(x, x, seed=1.5)
    with pytest.raises(ValueError, match=r"sinkhorn_loss: epsilon must be > 0, got -0.1"):
        lf.SinkhornLoss(epsilon=-0.1)
    with pytest.raises(ValueError, match=r"kl_div: reduction must be one of .* got 'batchmean'. Did you mean 'mean'"):
        LF.kl_div(*_dists(), reduction="batchmean")
    with pytest.raises(ValueError, match=r"target must hold probabilities in \[0, 1\]"):
        LF.kl_div(_dists()[0], -_dists()[1])
