"""Ranking losses: pairwise and listwise losses on scores.

Pairwise losses on explicit pairs (``margin_ranking_loss``, ``bpr_loss``) have one pair as unit.
Losses on lists take ``scores`` and graded ``relevance`` of shape ``(..., L)`` (the list along the
last dimension) and have one list as unit, ``U`` of shape ``(...)``. Shared policies:

- pairs of items with equal relevance carry no preference and are skipped;
- a list without ranking information (fewer than two valid items, or every valid item with the
  same relevance, which includes "no relevant item") has ``U = 0`` and is left out of the mean;
- ``item_mask`` (bool, ``(..., L)``, True = a real item) removes padded items from every sum.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._core.base import FunctionLoss, loss_function
from .._core.checks import check_float, check_number, check_range, check_same_shape, upcast
from .._core.errors import ShapeError, message
from .._core.reduction import Reduction, check_reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, randint, randn
from .._core.validation import validation_enabled

__all__ = [
    "margin_ranking_loss", "pairwise_logistic_loss", "bpr_loss", "listnet_loss", "listmle_loss", "approx_ndcg_loss",
    "MarginRankingLoss", "PairwiseLogisticLoss", "BPRLoss", "ListNetLoss", "ListMLELoss", "ApproxNDCGLoss",
]


# ---------------------------------------------------------------------------------------- helpers


def _real(t: object, argument: str, loss: str) -> Tensor:
    """A real tensor (float or integer, not bool/complex), as a float tensor."""
    if not isinstance(t, Tensor):
        raise TypeError(message(loss, argument, "must be a torch.Tensor", type(t).__name__))
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(message(loss, argument, "must be a real tensor", f"dtype {t.dtype}"))
    return t if t.is_floating_point() else t.float()


def _prepare_lists(scores: Tensor, relevance: Tensor, item_mask: Tensor | None, loss: str
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """Checks; float32 for half scores; relevance in the scores' dtype; ``valid`` (bool) items."""
    check_float(scores, "scores", loss)
    rel = _real(relevance, "relevance", loss)
    check_same_shape(scores, rel, loss, ("scores", "relevance"))
    if scores.dim() == 0:
        raise ShapeError(message(loss, "scores", "must have shape (..., L) (lists along the last dimension)",
                                 "a 0-d tensor"), expected="(..., L)", actual=())
    s = upcast(scores)
    rel = rel.to(s.dtype)
    if item_mask is None:
        valid = torch.ones(s.shape, dtype=torch.bool, device=s.device)
    else:
        if not isinstance(item_mask, Tensor) or item_mask.dtype != torch.bool:
            got = f"dtype {item_mask.dtype}" if isinstance(item_mask, Tensor) else type(item_mask).__name__
            raise TypeError(message(loss, "item_mask", "must be a bool tensor (True = a real item)", got))
        if item_mask.shape != s.shape:
            raise ShapeError(message(loss, "item_mask", f"must have the shape of scores {tuple(s.shape)}",
                                     tuple(item_mask.shape)), expected=tuple(s.shape), actual=tuple(item_mask.shape))
        valid = item_mask.to(s.device)
    return s, rel, valid


def _informative(rel: Tensor, valid: Tensor) -> Tensor:
    """Lists with at least two valid items of different relevance: ``(...)`` bool."""
    big = torch.finfo(rel.dtype).max
    hi = torch.where(valid, rel, rel.new_full((), -big)).amax(-1) if rel.shape[-1] else rel.new_zeros(rel.shape[:-1])
    lo = torch.where(valid, rel, rel.new_full((), big)).amin(-1) if rel.shape[-1] else rel.new_zeros(rel.shape[:-1])
    return valid.any(-1) & (hi > lo)


def _masked_fill(x: Tensor, valid: Tensor) -> Tensor:
    """``x`` where valid, else a very negative finite number (so ``exp`` gives 0, never NaN)."""
    return torch.where(valid, x, x.new_full((), torch.finfo(x.dtype).min / 8))


def _finish(u: Tensor, keep: Tensor, reduction: Reduction, sample_weight: Tensor | None, mask: Tensor | None,
            loss: str) -> Tensor:
    u = torch.where(keep, u, u.new_zeros(()))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=keep, loss_name=loss)


# ---------------------------------------------------------------------------------- pairwise losses


def _check_margin_args(*, margin: float = 0.0, **_: object) -> None:
    check_number(margin, "margin", "margin_ranking_loss")


@loss_function
def margin_ranking_loss(
    scores1: Tensor,
    scores2: Tensor,
    target: Tensor,
    /,
    *,
    margin: float = 0.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Margin ranking loss: a hinge on the score difference of each pair, in the direction of ``target``.

    For learning from explicit preferences: ``target = 1`` means the first item should score
    higher by at least ``margin``, ``-1`` the second.

    .. math::
        U_i = \max\big(0,\ -y_i\,(s^{(1)}_i - s^{(2)}_i) + m\big)

    Args:
        scores1: Scores of the first items, any shape.
        scores2: Scores of the second items, the shape of ``scores1``.
        target: :math:`y \in \{1, -1\}`, the shape of ``scores1`` (float or integer).
        margin: :math:`m`, a real number.
        reduction, sample_weight, mask: See the conventions page. Unit: one pair.

    Shape:
        - scores1, scores2, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ (no broadcasting, unlike torch).
        TypeError: If a score tensor is not floating point or ``target`` is bool/complex.
        ValueError: In validation mode, if ``target`` holds a value other than 1 and -1.

    Note:
        Equals ``torch.nn.functional.margin_ranking_loss`` for equal shapes; the hinge's
        gradient at the kink is 0 (torch's convention).

    References:
        ``torch.nn.MarginRankingLoss``; Herbrich, Graepel & Obermayer, *Large Margin Rank Boundaries
        for Ordinal Regression*, 2000.

    Examples:
        >>> import torch
        >>> from lossforge.functional import margin_ranking_loss
        >>> margin_ranking_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.5]), torch.tensor([1, 1]),
        ...                     margin=0.5)
        tensor(0.5000)
    """
    check_reduction(reduction, "margin_ranking_loss")
    _check_margin_args(margin=margin)
    loss = "margin_ranking_loss"
    check_float(scores1, "scores1", loss)
    check_float(scores2, "scores2", loss)
    y = _real(target, "target", loss)
    check_same_shape(scores1, scores2, loss, ("scores1", "scores2"))
    check_same_shape(scores1, y, loss, ("scores1", "target"))
    if validation_enabled() and y.numel() and not bool(((y == 1) | (y == -1)).all()):
        bad = y.detach()[(y != 1) & (y != -1)][0].item()
        raise ValueError(message(loss, "target", "must hold 1 or -1", f"the value {bad:g}"))
    a, b = upcast(scores1), upcast(scores2)
    if a.dtype != b.dtype:
        common = torch.promote_types(a.dtype, b.dtype)
        a, b = a.to(common), b.to(common)
    u = torch.clamp_min(-y.to(a.dtype) * (a - b) + float(margin), 0)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


@loss_function
def bpr_loss(
    pos_scores: Tensor,
    neg_scores: Tensor,
    /,
    *,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Bayesian personalised ranking: the logistic loss of the positive item's score margin over a negative's.

    The standard loss for implicit-feedback recommendation: each observed (positive) item should
    score above a sampled unobserved (negative) one.

    .. math::
        U = -\log \sigma\big(s^{+} - s^{-}\big) = \log\big(1 + e^{-(s^{+} - s^{-})}\big)

    Args:
        pos_scores: Scores of the positive items, ``(*)``.
        neg_scores: Scores of the negative items: the shape of ``pos_scores``, or
            ``(*, K)`` for ``K`` negatives per positive (``pos_scores`` is then repeated along the
            last dimension, the one documented broadcast).
        reduction, sample_weight, mask: See the conventions page. Unit: one (positive, negative) pair.

    Shape:
        - pos_scores: ``(*)``; neg_scores: ``(*)`` or ``(*, K)``.
        - output: the shape of ``neg_scores`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``neg_scores`` is neither the shape of ``pos_scores`` nor that shape plus one
            trailing dimension.
        TypeError: If a score tensor is not floating point.

    Note:
        Computed with ``softplus``, finite for score differences of any size.

    References:
        Rendle et al., *BPR: Bayesian Personalized Ranking from Implicit Feedback*, UAI 2009.
        https://arxiv.org/abs/1205.2618

    Examples:
        >>> import torch
        >>> from lossforge.functional import bpr_loss
        >>> bpr_loss(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0]))
        tensor(0.4100)
    """
    check_reduction(reduction, "bpr_loss")
    loss = "bpr_loss"
    check_float(pos_scores, "pos_scores", loss)
    check_float(neg_scores, "neg_scores", loss)
    if pos_scores.device != neg_scores.device:
        raise ValueError(f"{loss}: pos_scores is on {pos_scores.device} but neg_scores is on {neg_scores.device}. "
                         f"Hint: move both to one device.")
    pos, neg = upcast(pos_scores), upcast(neg_scores)
    if neg.shape != pos.shape:
        if neg.dim() == pos.dim() + 1 and neg.shape[:-1] == pos.shape:
            pos = pos.unsqueeze(-1)
        else:
            raise ShapeError(message(loss, "neg_scores", f"must have the shape of pos_scores {tuple(pos.shape)} "
                                     f"or {(*pos.shape, 'K')}", tuple(neg.shape)),
                             expected=tuple(pos.shape), actual=tuple(neg.shape))
    u = F.softplus(neg - pos)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


@loss_function
def pairwise_logistic_loss(
    scores: Tensor,
    relevance: Tensor,
    /,
    *,
    item_mask: Tensor | None = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Pairwise logistic (RankNet) loss over every ordered pair of items in each list.

    For each pair where item :math:`i` is more relevant than item :math:`j`, the logistic loss of
    the score difference; averaged over the pairs of the list.

    .. math::
        U_n = \frac{1}{|\mathcal{P}_n|}\sum_{(i, j) \in \mathcal{P}_n} \log\big(1 + e^{-(s_i - s_j)}\big),
        \qquad \mathcal{P}_n = \{(i, j) : r_i > r_j\}

    Args:
        scores: Predicted scores ``(..., L)``.
        relevance: Graded relevance ``(..., L)`` (float or integer; larger is more relevant).
        item_mask: Bool ``(..., L)``, True for real items (padding left out), or ``None``.
        reduction, sample_weight, mask: See the conventions page. Unit: one list.

    Shape:
        - scores, relevance, item_mask: ``(..., L)``, equal.
        - output: ``(...)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested (``"mean"`` over the lists that have pairs).

    Raises:
        ShapeError: If the shapes differ or ``scores`` is 0-d.
        TypeError: If ``scores`` is not floating point or ``item_mask`` not bool.

    Note:
        Pairs with equal relevance are skipped; a list without a pair has ``U = 0`` and is left out
        of the mean. Memory :math:`O(L^2)` per list.

    References:
        Burges et al., *Learning to Rank using Gradient Descent* (RankNet), ICML 2005.
        https://doi.org/10.1145/1102351.1102363

    Examples:
        >>> import torch
        >>> from lossforge.functional import pairwise_logistic_loss
        >>> pairwise_logistic_loss(torch.tensor([[2.0, 1.0, 0.0]]), torch.tensor([[2, 1, 0]]))
        tensor(0.2512)
    """
    check_reduction(reduction, "pairwise_logistic_loss")
    s, rel, valid = _prepare_lists(scores, relevance, item_mask, "pairwise_logistic_loss")
    pairs = (rel.unsqueeze(-1) > rel.unsqueeze(-2)) & valid.unsqueeze(-1) & valid.unsqueeze(-2)
    logistic = F.softplus(s.unsqueeze(-2) - s.unsqueeze(-1))  # [i, j] = log(1 + exp(-(s_i - s_j)))
    total = torch.where(pairs, logistic, logistic.new_zeros(())).sum((-2, -1))
    count = pairs.sum((-2, -1))
    keep = count > 0
    u = total / torch.where(keep, count, torch.ones_like(count)).to(s.dtype)
    return _finish(u, keep, reduction, sample_weight, mask, "pairwise_logistic_loss")


# ---------------------------------------------------------------------------------- listwise losses


@loss_function
def listnet_loss(
    scores: Tensor,
    relevance: Tensor,
    /,
    *,
    item_mask: Tensor | None = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""ListNet: cross-entropy between the top-one probabilities of the relevance and of the scores.

    A listwise loss for learning to rank: each list's scores are pushed to put probability mass
    where the relevance does.

    .. math::
        U_n = -\sum_i \operatorname{softmax}(r_n)_i \, \log \operatorname{softmax}(s_n)_i

    Args:
        scores: Predicted scores ``(..., L)``.
        relevance: Graded relevance ``(..., L)``.
        item_mask: Bool ``(..., L)``, True for real items, or ``None``.
        reduction, sample_weight, mask: See the conventions page. Unit: one list.

    Shape:
        - scores, relevance, item_mask: ``(..., L)``, equal.
        - output: ``(...)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested (``"mean"`` over the lists with ranking information).

    Raises:
        ShapeError: If the shapes differ or ``scores`` is 0-d.
        TypeError: If ``scores`` is not floating point or ``item_mask`` not bool.

    Note:
        The top-one probabilities follow the paper (:math:`\varphi = \exp` for both). The minimum
        is the entropy of :math:`\operatorname{softmax}(r)`, not 0. A list whose valid items all
        have one relevance (including "no relevant item") has ``U = 0`` and is left out of the mean.

    References:
        Cao et al., *Learning to Rank: From Pairwise Approach to Listwise Approach*, ICML 2007.
        https://doi.org/10.1145/1273496.1273513

    Examples:
        >>> import torch
        >>> from lossforge.functional import listnet_loss
        >>> listnet_loss(torch.tensor([[3.0, 1.0, 0.0]]), torch.tensor([[2.0, 1.0, 0.0]]))
        tensor(0.9294)
    """
    check_reduction(reduction, "listnet_loss")
    s, rel, valid = _prepare_lists(scores, relevance, item_mask, "listnet_loss")
    target = torch.softmax(_masked_fill(rel, valid), -1)
    log_p = torch.log_softmax(_masked_fill(s, valid), -1)
    u = -torch.where(valid, target * log_p, s.new_zeros(())).sum(-1)
    return _finish(u, _informative(rel, valid), reduction, sample_weight, mask, "listnet_loss")


@loss_function
def listmle_loss(
    scores: Tensor,
    relevance: Tensor,
    /,
    *,
    item_mask: Tensor | None = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""ListMLE: the negative log-likelihood of the relevance order under the Plackett-Luce model of the scores.

    .. math::
        U_n = \sum_{i=1}^{L} \Big(\log \sum_{k \ge i} e^{s_{\pi(k)}} - s_{\pi(i)}\Big)

    where :math:`\pi` sorts the items by decreasing relevance.

    Args:
        scores: Predicted scores ``(..., L)``.
        relevance: Graded relevance ``(..., L)``.
        item_mask: Bool ``(..., L)``, True for real items, or ``None``.
        reduction, sample_weight, mask: See the conventions page. Unit: one list.

    Shape:
        - scores, relevance, item_mask: ``(..., L)``, equal.
        - output: ``(...)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested (``"mean"`` over the lists with ranking information).

    Raises:
        ShapeError: If the shapes differ or ``scores`` is 0-d.
        TypeError: If ``scores`` is not floating point or ``item_mask`` not bool.

    Note:
        Ties in relevance are broken by position (a stable sort), so the loss is deterministic.
        Computed with ``logcumsumexp``, finite for scores of any size. A list without ranking
        information has ``U = 0`` and is left out of the mean.

    References:
        Xia et al., *Listwise Approach to Learning to Rank: Theory and Algorithm*, ICML 2008.
        https://doi.org/10.1145/1390156.1390306

    Examples:
        >>> import torch
        >>> from lossforge.functional import listmle_loss
        >>> listmle_loss(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]]))  # log 2
        tensor(0.6931)
    """
    check_reduction(reduction, "listmle_loss")
    s, rel, valid = _prepare_lists(scores, relevance, item_mask, "listmle_loss")
    order = torch.sort(_masked_fill(rel, valid), dim=-1, descending=True, stable=True).indices
    s_sorted = s.gather(-1, order)
    v_sorted = valid.gather(-1, order)
    z = _masked_fill(s_sorted, v_sorted)
    tail = torch.logcumsumexp(z.flip(-1), -1).flip(-1)
    u = torch.where(v_sorted, tail - s_sorted, s.new_zeros(())).sum(-1)
    return _finish(u, _informative(rel, valid), reduction, sample_weight, mask, "listmle_loss")


def _check_ndcg_args(*, temperature: float = 1.0, **_: object) -> None:
    check_range(temperature, "temperature", "approx_ndcg_loss", low=0.0, low_inclusive=False)


@loss_function
def approx_ndcg_loss(
    scores: Tensor,
    relevance: Tensor,
    /,
    *,
    temperature: float = 1.0,
    item_mask: Tensor | None = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""ApproxNDCG: one minus NDCG with each item's rank replaced by a smooth (sigmoid) approximation.

    Optimises the ranking metric itself; ``temperature`` trades smoothness for accuracy.

    .. math::
        U_n = 1 - \frac{1}{\mathrm{IDCG}_n}\sum_i \frac{2^{r_i} - 1}{\log_2(1 + \hat\pi_i)}, \qquad
        \hat\pi_i = 1 + \sum_{j \ne i} \sigma\Big(\frac{s_j - s_i}{T}\Big)

    with :math:`\mathrm{IDCG}_n` the DCG of the ideal order.

    Args:
        scores: Predicted scores ``(..., L)``.
        relevance: Graded relevance ``(..., L)``, >= 0.
        temperature: :math:`T > 0`; smaller is closer to the true rank.
        item_mask: Bool ``(..., L)``, True for real items, or ``None``.
        reduction, sample_weight, mask: See the conventions page. Unit: one list.

    Shape:
        - scores, relevance, item_mask: ``(..., L)``, equal.
        - output: ``(...)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, in ``[0, 1)`` per list, reduced as requested (``"mean"`` over the lists with
        ranking information).

    Raises:
        ShapeError: If the shapes differ or ``scores`` is 0-d.
        TypeError: If ``scores`` is not floating point or ``item_mask`` not bool.
        ValueError: If ``temperature <= 0``; in validation mode, if a relevance is negative.

    Note:
        A list with no relevant item (IDCG = 0) or whose valid items all have one relevance (its
        NDCG is 1 for every order) has ``U = 0`` and is left out of the mean. Memory
        :math:`O(L^2)` per list.

    References:
        Qin, Liu & Li, *A General Approximation Framework for Direct Optimization of Information
        Retrieval Measures*, Information Retrieval 2010. https://doi.org/10.1007/s10791-009-9124-x

    Examples:
        >>> import torch
        >>> from lossforge.functional import approx_ndcg_loss
        >>> approx_ndcg_loss(torch.tensor([[10.0, 0.0]]), torch.tensor([[1.0, 0.0]]), temperature=0.1)
        tensor(0.)
    """
    check_reduction(reduction, "approx_ndcg_loss")
    _check_ndcg_args(temperature=temperature)
    loss = "approx_ndcg_loss"
    s, rel, valid = _prepare_lists(scores, relevance, item_mask, loss)
    if validation_enabled() and rel.numel() and bool((rel[valid] < 0).any()):
        raise ValueError(message(loss, "relevance", "must be >= 0 (gains are 2^r - 1)",
                                 f"a minimum of {float(rel.detach()[valid].min()):g}"))
    n_items = s.shape[-1]
    pair = valid.unsqueeze(-2) & ~torch.eye(n_items, dtype=torch.bool, device=s.device)  # [i, j]: j counts for i
    sig = torch.sigmoid((s.unsqueeze(-2) - s.unsqueeze(-1)) / float(temperature))  # [i, j] = sigma((s_j - s_i)/T)
    rank = 1 + torch.where(pair, sig, sig.new_zeros(())).sum(-1)
    gain = torch.where(valid, torch.exp2(rel) - 1, rel.new_zeros(()))
    dcg = (gain / torch.log2(1 + rank)).sum(-1)
    ideal = gain.sort(-1, descending=True).values
    discounts = torch.log2(torch.arange(2, n_items + 2, device=s.device, dtype=s.dtype))
    idcg = (ideal / discounts).sum(-1)
    keep = _informative(rel, valid) & (idcg > 0)
    u = 1 - dcg / torch.where(keep, idcg, idcg.new_ones(()))
    return _finish(u, keep, reduction, sample_weight, mask, loss)


# ---------------------------------------------------------------------------------------- modules


class MarginRankingLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.margin_ranking_loss`.

    Args:
        margin: The margin.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = margin_ranking_loss
    validate = _check_margin_args

    def __init__(self, *, margin: float = 0.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, margin=margin)


class BPRLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.bpr_loss`.

    Args:
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = bpr_loss

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


class _ListLoss(FunctionLoss):
    """A list loss module: ``item_mask`` may be set at construction or passed at call time (the call wins)."""

    def forward(  # type: ignore[override]
        self, scores: Tensor, relevance: Tensor, *, item_mask: Tensor | None = None,
        sample_weight: Tensor | None = None, mask: Tensor | None = None, **unexpected: Any
    ) -> Tensor:
        if unexpected:
            return super().forward(scores, relevance, sample_weight=sample_weight, mask=mask, **unexpected)
        hparams = self.hparams()
        if item_mask is not None:
            hparams["item_mask"] = item_mask
        return type(self).function(scores, relevance, **hparams, reduction=self.reduction,
                                   sample_weight=sample_weight, mask=mask)


class PairwiseLogisticLoss(_ListLoss):
    """Module form of :func:`lossforge.functional.pairwise_logistic_loss`.

    Args:
        item_mask: Bool ``(..., L)`` of real items, or ``None`` (also accepted at call time).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = pairwise_logistic_loss

    def __init__(self, *, item_mask: Tensor | None = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, item_mask=item_mask)


class ListNetLoss(_ListLoss):
    """Module form of :func:`lossforge.functional.listnet_loss`.

    Args:
        item_mask: Bool ``(..., L)`` of real items, or ``None`` (also accepted at call time).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = listnet_loss

    def __init__(self, *, item_mask: Tensor | None = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, item_mask=item_mask)


class ListMLELoss(_ListLoss):
    """Module form of :func:`lossforge.functional.listmle_loss`.

    Args:
        item_mask: Bool ``(..., L)`` of real items, or ``None`` (also accepted at call time).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = listmle_loss

    def __init__(self, *, item_mask: Tensor | None = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, item_mask=item_mask)


class ApproxNDCGLoss(_ListLoss):
    """Module form of :func:`lossforge.functional.approx_ndcg_loss`.

    Args:
        temperature: Sigmoid temperature, > 0.
        item_mask: Bool ``(..., L)`` of real items, or ``None`` (also accepted at call time).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = approx_ndcg_loss
    validate = _check_ndcg_args

    def __init__(self, *, temperature: float = 1.0, item_mask: Tensor | None = None,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, temperature=temperature, item_mask=item_mask)


# ----------------------------------------------------------------------------------- registration


def _graded(n: int, length: int, gen: torch.Generator, device: torch.device | str) -> Tensor:
    """Relevance 0..3 with every list informative (the first two items differ)."""
    rel = randint(4, n, length, gen=gen, device=device).float()
    rel[:, 0] = 3.0
    rel[:, 1] = 0.0
    return rel


def _list_samples(extra: dict[str, Any]) -> Callable[[torch.dtype, torch.device | str], list[Sample]]:
    def samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        g = generator(0)
        scores = randn(5, 6, gen=g, dtype=dtype, device=device)
        rel = _graded(5, 6, g, device)
        padded = torch.ones(5, 6, dtype=torch.bool, device=device)
        padded[1, 4:] = False
        padded[3, 1:] = False  # one real item: no ranking information
        uninformative = rel.clone()
        uninformative[2] = 1.0
        batched = randn(2, 3, 4, gen=g, dtype=dtype, device=device)
        return [
            Sample((scores, rel), dict(extra), name="(N, L)"),
            Sample((batched, _graded(6, 4, g, device).view(2, 3, 4)), dict(extra), name="(B, N, L)"),
            Sample((scores, rel.long()), dict(extra), name="integer relevance"),
            Sample((scores, rel), {**extra, "item_mask": padded}, name="padded lists", plain=False),
            Sample((scores, uninformative), dict(extra), name="an uninformative list", plain=False),
        ]

    return samples


def _list_extremes(extra: dict[str, Any]) -> Callable[[torch.dtype, torch.device | str], list[Sample]]:
    def samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        s = torch.tensor([[1e4, -1e4, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [-1e4, 1e4, 5.0, -5.0]], dtype=dtype,
                         device=device)
        rel = torch.tensor([[0.0, 3.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [2.0, 2.0, 2.0, 2.0]], device=device)
        every_item_masked = torch.zeros(3, 4, dtype=torch.bool, device=device)
        every_item_masked[0] = True
        return [
            Sample((s, rel), dict(extra), name="scores ±1e4, uninformative lists"),
            Sample((s, rel), {**extra, "item_mask": every_item_masked}, name="lists with every item masked"),
        ]

    return samples


def _list_errors(loss: str, extra: list[ErrorSample] | None = None) -> Callable[[], list[ErrorSample]]:
    def errors() -> list[ErrorSample]:
        s, r = torch.randn(3, 4), torch.randint(0, 3, (3, 4)).float()
        return [
            ErrorSample((s, r[:, :3]), {}, ValueError, rf"{loss}: relevance must have the shape of scores \(3, 4\)"),
            ErrorSample((s.long(), r), {}, TypeError, rf"{loss}: scores must be a floating-point tensor"),
            ErrorSample((s, r.bool()), {}, TypeError, r"relevance must be a real tensor"),
            ErrorSample((s[0, 0], r[0, 0]), {}, ValueError, r"scores must have shape \(\.\.\., L\)"),
            ErrorSample((s, r), {"item_mask": torch.ones(3, 4)}, TypeError, r"item_mask must be a bool tensor"),
            ErrorSample((s, r), {"item_mask": torch.ones(3, 3, dtype=torch.bool)}, ValueError,
                        r"item_mask must have the shape of scores \(3, 4\), got \(3, 3\)"),
            ErrorSample((s, r), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
            ErrorSample((s, r), {"weight": torch.ones(3)}, TypeError, r"Hint: use sample_weight="),
            *(extra or []),
        ]

    return errors


def _pair_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    a, b = randn(8, gen=g, dtype=dtype, device=device), randn(8, gen=g, dtype=dtype, device=device)
    y = torch.tensor([1, -1, 1, 1, -1, -1, 1, -1], device=device)
    a2, b2 = randn(3, 4, gen=g, dtype=dtype, device=device), randn(3, 4, gen=g, dtype=dtype, device=device)
    y2 = torch.where(randn(3, 4, gen=g, dtype=torch.float32, device=device) > 0, 1.0, -1.0)
    return [
        Sample((a, b, y), {"margin": 0.3}, name="(N,)"),
        Sample((a2, b2, y2), {}, name="(N, K), float target"),
        Sample((a, b, y), {"margin": -0.5}, name="negative margin"),
    ]


def _bpr_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    return [
        Sample((randn(8, gen=g, dtype=dtype, device=device), randn(8, gen=g, dtype=dtype, device=device)),
               name="(N,)"),
        Sample((randn(4, gen=g, dtype=dtype, device=device), randn(4, 3, gen=g, dtype=dtype, device=device)),
               name="(N,) vs (N, K)"),
    ]


def _bpr_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    return [Sample((torch.tensor([1e4, -1e4, 0.0], dtype=dtype, device=device),
                    torch.tensor([-1e4, 1e4, 0.0], dtype=dtype, device=device)), name="±1e4")]


register_loss(
    name="margin_ranking", function=margin_ranking_loss, module=MarginRankingLoss, family="ranking",
    input_kind="scores", target_kind="sign", unit="pair", reference="torch.nn.functional.margin_ranking_loss",
    sample_inputs=_pair_samples, differentiable_args=(0, 1),
    extreme_inputs=lambda dtype, device: [Sample((torch.tensor([1e4, -1e4], dtype=dtype, device=device),
                                                  torch.tensor([-1e4, 1e4], dtype=dtype, device=device),
                                                  torch.tensor([1, 1], device=device)), name="±1e4")],
    error_inputs=lambda: [
        ErrorSample((torch.randn(4), torch.randn(4), torch.tensor([1, 0, -1, 1])), {}, ValueError,
                    r"margin_ranking_loss: target must hold 1 or -1, got the value 0"),
        ErrorSample((torch.randn(4), torch.randn(3), torch.ones(4)), {}, ValueError,
                    r"scores2 must have the shape of scores1 \(4,\), got \(3,\)"),
        ErrorSample((torch.randn(4, 1), torch.randn(4, 1), torch.ones(4)), {}, ValueError,
                    r"target must have the shape of scores1 \(4, 1\), got \(4,\)"),
        ErrorSample((torch.randn(4).long(), torch.randn(4), torch.ones(4)), {}, TypeError,
                    r"scores1 must be a floating-point tensor"),
        ErrorSample((torch.randn(4), torch.randn(4), torch.ones(4)), {"margin": "1"}, TypeError,
                    r"margin must be a float or int"),
        ErrorSample((torch.randn(4), torch.randn(4), torch.ones(4)), {"reduction": "avg"}, ValueError,
                    r"Did you mean 'mean'"),
    ],
)
register_loss(
    name="bpr", function=bpr_loss, module=BPRLoss, family="ranking", input_kind="scores", target_kind="scores",
    unit="(positive, negative) pair", reference="Rendle et al. 2009, arXiv:1205.2618",
    sample_inputs=_bpr_samples, extreme_inputs=_bpr_extremes,
    error_inputs=lambda: [
        ErrorSample((torch.randn(4), torch.randn(3)), {}, ValueError,
                    r"bpr_loss: neg_scores must have the shape of pos_scores \(4,\) or \(4, 'K'\), got \(3,\)"),
        ErrorSample((torch.randn(4), torch.randn(4).long()), {}, TypeError, r"neg_scores must be a floating-point"),
        ErrorSample((torch.randn(4), torch.randn(4)), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((torch.randn(4), torch.randn(4)), {"weight": torch.ones(4)}, TypeError,
                    r"Hint: use sample_weight="),
    ],
)
for _name, _fn, _module, _ref, _extra, _errs in [
    ("pairwise_logistic", pairwise_logistic_loss, PairwiseLogisticLoss, "Burges et al. 2005 (RankNet), ICML",
     {}, None),
    ("listnet", listnet_loss, ListNetLoss, "Cao et al. 2007, ICML, doi:10.1145/1273496.1273513", {}, None),
    ("listmle", listmle_loss, ListMLELoss, "Xia et al. 2008, ICML, doi:10.1145/1390156.1390306", {}, None),
    ("approx_ndcg", approx_ndcg_loss, ApproxNDCGLoss, "Qin, Liu & Li 2010, doi:10.1007/s10791-009-9124-x",
     {"temperature": 0.5}, [
         ErrorSample((torch.randn(2, 3), torch.tensor([[1.0, -1.0, 0.0], [0.0, 1.0, 2.0]])), {}, ValueError,
                     r"approx_ndcg_loss: relevance must be >= 0 \(gains are 2\^r - 1\), got a minimum of -1"),
         ErrorSample((torch.randn(2, 3), torch.ones(2, 3)), {"temperature": 0.0}, ValueError,
                     r"temperature must be > 0, got 0.0"),
         ErrorSample((), {"temperature": -1.0}, ValueError, r"temperature must be > 0", at_construction=True),
     ]),
]:
    register_loss(
        name=_name, function=_fn, module=_module, family="ranking", input_kind="scores", target_kind="relevance",
        unit="list", reference=_ref, sample_inputs=_list_samples(_extra), extreme_inputs=_list_extremes(_extra),
        error_inputs=_list_errors(_fn.__name__, _errs), differentiable_args=(0,),
    )
