"""Ranking losses: margin_ranking, bpr, pairwise_logistic, listnet, listmle, approx_ndcg.

1. Conformance: every generic check of ``lossforge.verify`` on each loss of the family.
2. Independent references in float64: Python loops over pairs and lists (RankNet's pairs,
   ListNet's top-one probabilities, ListMLE's Plackett-Luce likelihood as an explicit product,
   NDCG with the exact ranks), and ``torch.nn.functional.margin_ranking_loss``.
3. The policies of the family: pairs with equal relevance are skipped; a list without ranking
   information (no relevant item, all relevances equal, fewer than two real items) has U = 0 and
   is left out of the mean; ``item_mask`` equals dropping the padded items.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import lossforge as lf
import lossforge.functional as LF
from lossforge.verify import run_checks

NAMES = ["margin_ranking", "bpr", "pairwise_logistic", "listnet", "listmle", "approx_ndcg"]
LISTWISE = {"pairwise_logistic": LF.pairwise_logistic_loss, "listnet": LF.listnet_loss,
            "listmle": LF.listmle_loss, "approx_ndcg": LF.approx_ndcg_loss}


def _lists(n=4, length=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n, length, generator=g, dtype=torch.float64)
    rel = torch.randint(0, 4, (n, length), generator=g).double()
    rel[:, 0], rel[:, 1] = 3.0, 0.0
    return scores, rel


# ------------------------------------------------------------------------------------------ conformance


def test_family_is_complete():
    assert set(NAMES) <= set(lf.list_losses("ranking"))
    for name in ("pairwise_logistic", "listnet", "listmle", "approx_ndcg"):
        assert lf.get_loss(name).unit == "list"


@pytest.mark.parametrize("name", NAMES)
def test_conformance(name):
    failed = [str(r) for r in run_checks(lf.get_loss(name)) if not r.ok]
    assert not failed, "\n".join(failed)


# ---------------------------------------------------------------------------------------- pairwise


def test_margin_ranking_matches_torch():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(20, generator=g), torch.randn(20, generator=g)
    y = torch.where(torch.rand(20, generator=g) > 0.5, 1.0, -1.0)
    for margin in (0.0, 0.5, -0.2):
        for r in ("none", "sum", "mean"):
            torch.testing.assert_close(LF.margin_ranking_loss(a, b, y, margin=margin, reduction=r),
                                       F.margin_ranking_loss(a, b, y, margin=margin, reduction=r))
    # torch broadcasts a (N,) target against (N, 1) scores; lossforge refuses.
    with pytest.raises(ValueError, match=r"target must have the shape of scores1 \(20, 1\), got \(20,\)"):
        LF.margin_ranking_loss(a[:, None], b[:, None], y)


def test_bpr_closed_form_and_k_negatives():
    pos = torch.tensor([2.0, -1.0, 0.0], dtype=torch.float64)
    neg = torch.tensor([[0.0, 1.0], [-1.0, -3.0], [50.0, -50.0]], dtype=torch.float64)
    want = torch.tensor([[-math.log(1 / (1 + math.exp(-(p - n)))) for n in row] for p, row in
                         zip(pos.tolist(), neg.tolist())], dtype=torch.float64)
    torch.testing.assert_close(LF.bpr_loss(pos, neg, reduction="none"), want)
    torch.testing.assert_close(LF.bpr_loss(pos, neg), LF.bpr_loss(pos[:, None].expand(3, 2), neg))
    with pytest.raises(ValueError, match=r"neg_scores must have the shape of pos_scores \(3,\) or \(3, 'K'\)"):
        LF.bpr_loss(pos, neg.T)


def _pairwise_reference(s, r):
    out = []
    for srow, rrow in zip(s.tolist(), r.tolist()):
        terms = [math.log1p(math.exp(-(srow[i] - srow[j]))) for i in range(len(srow)) for j in range(len(srow))
                 if rrow[i] > rrow[j]]
        out.append(sum(terms) / len(terms) if terms else 0.0)
    return torch.tensor(out, dtype=torch.float64)


def test_pairwise_logistic_reference_and_equal_relevance_skipped():
    s, r = _lists(seed=2)
    torch.testing.assert_close(LF.pairwise_logistic_loss(s, r, reduction="none"), _pairwise_reference(s, r))
    # Ties add no pair: relevance (1, 1, 0) has exactly two pairs.
    got = LF.pairwise_logistic_loss(torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[1.0, 1.0, 0.0]]))
    want = (math.log1p(math.exp(2.0)) + math.log1p(math.exp(1.0))) / 2
    assert got.item() == pytest.approx(want)


# ---------------------------------------------------------------------------------------- listwise


def _listnet_reference(s, r):
    out = []
    for srow, rrow in zip(s.tolist(), r.tolist()):
        zt = sum(math.exp(v) for v in rrow)
        zs = sum(math.exp(v) for v in srow)
        out.append(-sum(math.exp(rv) / zt * math.log(math.exp(sv) / zs) for sv, rv in zip(srow, rrow)))
    return torch.tensor(out, dtype=torch.float64)


def _listmle_reference(s, r):
    out = []
    for srow, rrow in zip(s.tolist(), r.tolist()):
        order = sorted(range(len(srow)), key=lambda i: (-rrow[i], i))  # stable: ties by position
        prob = 1.0
        for k, i in enumerate(order):
            prob *= math.exp(srow[i]) / sum(math.exp(srow[j]) for j in order[k:])
        out.append(-math.log(prob))
    return torch.tensor(out, dtype=torch.float64)


def _ndcg(s, r):
    """Exact NDCG with ranks from the scores (ties broken by position)."""
    out = []
    for srow, rrow in zip(s.tolist(), r.tolist()):
        order = sorted(range(len(srow)), key=lambda i: (-srow[i], i))
        dcg = sum((2 ** rrow[i] - 1) / math.log2(2 + k) for k, i in enumerate(order))
        ideal = sorted(rrow, reverse=True)
        idcg = sum((2**v - 1) / math.log2(2 + k) for k, v in enumerate(ideal))
        out.append(dcg / idcg)
    return torch.tensor(out, dtype=torch.float64)


def test_listnet_reference():
    s, r = _lists(seed=3)
    torch.testing.assert_close(LF.listnet_loss(s, r, reduction="none"), _listnet_reference(s, r))


def test_listmle_reference_with_ties():
    s, r = _lists(seed=4)
    r[:, 2:4] = 2.0  # ties, broken by position
    torch.testing.assert_close(LF.listmle_loss(s, r, reduction="none"), _listmle_reference(s, r))
    big = torch.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    out = LF.listmle_loss(big, torch.tensor([[0.0, 2.0, 1.0]]))
    assert torch.isfinite(out) and out.item() == pytest.approx(3e4, rel=1e-6)  # (1e4 + 1e4) + 1e4 + 0
    out.backward()
    assert torch.isfinite(big.grad).all()


def test_approx_ndcg_tends_to_the_exact_metric():
    s, r = _lists(n=6, length=7, seed=5)
    exact = 1 - _ndcg(s, r)
    torch.testing.assert_close(LF.approx_ndcg_loss(s, r, temperature=1e-4, reduction="none"), exact,
                               rtol=1e-4, atol=1e-6)
    smooth = LF.approx_ndcg_loss(s, r, temperature=1.0, reduction="none")
    assert ((smooth >= 0) & (smooth < 1)).all()
    s.requires_grad_(True)
    LF.approx_ndcg_loss(s, r).backward()
    assert torch.isfinite(s.grad).all() and (s.grad != 0).any()


@pytest.mark.parametrize("name", list(LISTWISE))
def test_lists_without_ranking_information_are_left_out(name):
    fn = LISTWISE[name]
    s, r = _lists(n=3, length=5, seed=6)
    r[1] = 0.0  # no relevant item
    r[2] = 2.0  # every item equally relevant
    s.requires_grad_(True)
    none = fn(s, r, reduction="none")
    assert none[1].item() == 0.0 and none[2].item() == 0.0
    torch.testing.assert_close(fn(s, r), fn(s[:1], r[:1]))  # the mean counts only the informative list
    fn(s, r).backward()
    assert torch.equal(s.grad[1:], torch.zeros_like(s.grad[1:]))
    everything_uninformative = fn(s[1:], r[1:])
    assert everything_uninformative.item() == 0.0 and everything_uninformative.requires_grad


@pytest.mark.parametrize("name", list(LISTWISE))
def test_item_mask_equals_dropping_the_items(name):
    fn = LISTWISE[name]
    s, r = _lists(n=2, length=6, seed=7)
    item_mask = torch.ones(2, 6, dtype=torch.bool)
    item_mask[0, 4:] = False
    s_pad = s.clone()
    s_pad[0, 4:] = 1e4  # garbage in the padding
    r_pad = r.clone()
    r_pad[0, 4:] = 9.0
    s_pad.requires_grad_(True)
    masked = fn(s_pad, r_pad, item_mask=item_mask, reduction="none")
    torch.testing.assert_close(masked[0], fn(s[:1, :4], r[:1, :4], reduction="none")[0])
    torch.testing.assert_close(masked[1], fn(s[1:], r[1:], reduction="none")[0])
    masked.sum().backward()
    assert torch.isfinite(s_pad.grad).all() and torch.equal(s_pad.grad[0, 4:], torch.zeros(2, dtype=torch.float64))
    # Module: item_mask at call time.
    module = lf.get_loss(name).module(reduction="none")
    torch.testing.assert_close(module(s_pad, r_pad, item_mask=item_mask), masked)


def test_integer_relevance_and_batched_lists():
    s, r = _lists(n=6, length=5, seed=8)
    for fn in LISTWISE.values():
        torch.testing.assert_close(fn(s, r.long()), fn(s, r))
        torch.testing.assert_close(fn(s.view(2, 3, 5), r.view(2, 3, 5), reduction="none"),
                                   fn(s, r, reduction="none").view(2, 3))


def test_bad_inputs():
    s, r = _lists()
    with pytest.raises(ValueError, match=r"approx_ndcg_loss: relevance must be >= 0"):
        LF.approx_ndcg_loss(s, r - 5)
    with pytest.raises(ValueError, match=r"temperature must be > 0, got 0"):
        lf.ApproxNDCGLoss(temperature=0)
    with pytest.raises(ValueError, match=r"margin_ranking_loss: target must hold 1 or -1, got the value 2"):
        LF.margin_ranking_loss(s[0], s[1], torch.full((6,), 2.0))
    with pytest.raises(TypeError, match=r"item_mask must be a bool tensor"):
        LF.listnet_loss(s, r, item_mask=torch.ones_like(s))
    with pytest.raises(ValueError, match=r"listmle_loss: relevance must have the shape of scores \(4, 6\)"):
        LF.listmle_loss(s, r[:, :5])
