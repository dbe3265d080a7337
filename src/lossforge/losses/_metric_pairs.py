"""Pair-based metric losses on embeddings ``(N, D)`` and labels ``(N,)``: contrastive, triplet (with
in-batch mining), lifted structure, circle, multi-similarity.

Every loss builds one ``(N, N)`` distance or similarity matrix with a matrix product and works on it
with masks from label equality; mining is a masked max/min or a sorted search along its rows.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._core.base import FunctionLoss, loss_function
from .._core.checks import check_choice, check_number, upcast
from .._core.reduction import Reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, randn
from ._metric_ops import (
    check_distance,
    check_embeddings,
    check_flag,
    check_labels,
    check_nonnegative,
    check_positive,
    distance_matrix,
    gather_rows,
    gather_unit_args,
    label_masks,
    label_samples,
    masked_logsumexp,
    norm_eps,
    pair_labels,
    safe_normalize,
    safe_sqrt,
)

__all__ = [
    "CircleLoss",
    "ContrastiveLoss",
    "LiftedStructureLoss",
    "MultiSimilarityLoss",
    "TripletLoss",
    "circle_loss",
    "contrastive_loss",
    "lifted_structure_loss",
    "multi_similarity_loss",
    "triplet_loss",
]

MINING = ("batch_hard", "batch_semi_hard", "all", "hard", "semi_hard")


def prepare_labelled(
    embeddings: object, target: object, loss: str, gather_distributed: bool, process_group: Any,
    sample_weight: Tensor | None, mask: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """Checks, float32 compute for half inputs, and the cross-rank gather (embeddings, labels and
    per-anchor weights) when ``gather_distributed`` is on."""
    x = check_embeddings(embeddings, "embeddings", loss)
    y = check_labels(target, x, loss)
    check_flag(gather_distributed, "gather_distributed", loss)
    x = upcast(x)
    n_local = x.shape[0]
    x = gather_rows(x, gather_distributed, process_group)
    y = gather_rows(y, gather_distributed, process_group)
    sample_weight, mask = gather_unit_args(sample_weight, mask, n_local, gather_distributed, process_group)
    return x, y, sample_weight, mask


def label_errors(loss: str, *, extra: list[ErrorSample] | None = None) -> list[ErrorSample]:
    """Bad inputs shared by every (embeddings, labels) loss."""
    x = torch.randn(4, 3)
    t = torch.tensor([0, 1, 0, 1])
    return [
        ErrorSample((x, t.float()), {}, TypeError, rf"{loss}: target must be an integer tensor of labels"),
        ErrorSample((x, t[:3]), {}, ValueError, rf"{loss}: target must have shape \(N,\) = \(4,\) to match embeddings"),
        ErrorSample((x, t.view(4, 1)), {}, ValueError, r"got \(4, 1\)\. Hint: target\.flatten\(\)"),
        ErrorSample((x[0], t), {}, ValueError, rf"{loss}: embeddings must have shape \(N, D\), got \(3,\)"),
        ErrorSample((x.long(), t), {}, TypeError, rf"{loss}: embeddings must be a floating-point tensor"),
        ErrorSample((x, t), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((x, t), {"weight": torch.ones(4)}, TypeError, r"Hint: use sample_weight="),
        ErrorSample((x, t), {"gather_distributed": 1}, TypeError, rf"{loss}: gather_distributed must be a bool"),
        *(extra or []),
    ]


def hyper_error(args: tuple[Any, ...], kwargs: dict[str, Any], exc: type[BaseException],
                match: str) -> list[ErrorSample]:
    """The same bad hyper-parameter at call time and at module construction."""
    return [ErrorSample(args, kwargs, exc, match), ErrorSample((), kwargs, exc, match, at_construction=True)]


def label_extremes(dtype: torch.dtype, device: torch.device | str, **kwargs: Any) -> list[Sample]:
    """Edge layouts and values on which value and gradient must stay finite (reliability M1-M6)."""
    g = generator(1)
    x = randn(8, 5, gen=g, dtype=dtype, device=device)
    dup = x.clone()
    dup[4:] = dup[:4]
    labels = pair_labels(4, device)
    return [
        Sample((dup, labels), dict(kwargs), name="anchor equals positive"),
        Sample((torch.ones(8, 5, dtype=dtype, device=device), labels), dict(kwargs), name="all identical"),
        Sample((torch.zeros(8, 5, dtype=dtype, device=device), labels), dict(kwargs), name="zero norm"),
        Sample((x, torch.arange(8, device=device)), dict(kwargs), name="no positives"),
        Sample((x, torch.zeros(8, dtype=torch.long, device=device)), dict(kwargs), name="no negatives"),
        Sample((x[:1], labels[:1]), dict(kwargs), name="batch of one"),
        Sample((x * 1e3, labels), dict(kwargs), name="large norms"),
    ]


# ------------------------------------------------------------------------------------------ contrastive

def _check_contrastive_args(*, margin: float, pos_margin: float, distance: str, normalize: bool, squared: bool,
                            **_: object) -> None:
    check_nonnegative(margin, "margin", "contrastive_loss")
    check_nonnegative(pos_margin, "pos_margin", "contrastive_loss")
    check_distance(distance, "contrastive_loss")
    check_flag(normalize, "normalize", "contrastive_loss")
    check_flag(squared, "squared", "contrastive_loss")


@loss_function
def contrastive_loss(
    embeddings: Tensor,
    target: Tensor,
    /,
    *,
    margin: float = 1.0,
    pos_margin: float = 0.0,
    distance: str = "euclidean",
    normalize: bool = False,
    squared: bool = True,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Contrastive (pair margin) loss over every pair of a batch.

    Pulls same-label pairs together (to within ``pos_margin``) and pushes different-label pairs
    apart until they are ``margin`` away (Hadsell, Chopra and LeCun's siamese loss, applied to
    all :math:`N(N-1)` ordered pairs of the batch).

    .. math::
        \ell_{ij} = [y_i = y_j]\,\max(0, d_{ij} - m_+)^q + [y_i \ne y_j]\,\max(0, m - d_{ij})^q,
        \qquad U_i = \frac{1}{N-1} \sum_{j \ne i} \ell_{ij}

    with :math:`q = 2` (``squared=True``, the paper, without its constant 1/2) or :math:`q = 1`.

    Args:
        embeddings: ``(N, D)`` embeddings.
        target: ``(N,)`` integer labels; equal labels make a positive pair.
        margin: :math:`m \ge 0`, the distance negatives are pushed to.
        pos_margin: :math:`m_+ \ge 0`, the distance below which positives cost nothing.
        distance: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"`` (``1 - cos``).
        normalize: Scale embeddings to unit norm before the distance.
        squared: Square the hinges (``q = 2``); ``False`` gives linear hinges (``q = 1``).
        gather_distributed: All-gather embeddings and labels over the ranks of ``process_group``
            (gradients flow back to each rank's own rows), so every rank computes the loss of the
            whole global batch. A no-op when ``torch.distributed`` is not initialised.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: an anchor ``i`` (the mean of
            its ``N - 1`` pair terms), so ``"mean"`` is the mean over all ordered pairs.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``.
        - output: ``(N,)`` (``(N_global,)`` when gathering) if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``embeddings`` is not ``(N, D)`` or ``target`` not ``(N,)``.
        TypeError: If ``target`` is not an integer tensor or a flag is not a bool.
        ValueError: If a margin is negative or ``distance`` unknown.

    Note:
        Pairs are independent: with all labels distinct the negative pairs still within the
        margin give a positive loss (that is the method). A batch of one has no pair and gives
        0.0 with zero gradients. Distances come from one matrix product with a safe square root
        (finite gradient where two embeddings coincide). With ``gather_distributed=True`` every
        rank returns the same global loss and the gradient of its own embeddings; DDP then
        averages over the W ranks, so multiply the loss by W to match one process on the whole
        batch (see :mod:`lossforge._core.distributed`).

    References:
        Hadsell, Chopra and LeCun, *Dimensionality Reduction by Learning an Invariant Mapping*,
        CVPR 2006. https://doi.org/10.1109/CVPR.2006.100

    Examples:
        >>> import torch
        >>> from lossforge.functional import contrastive_loss
        >>> x = torch.tensor([[0.0, 0.0], [0.3, 0.4], [1.0, 0.0], [0.0, 2.0]])
        >>> contrastive_loss(x, torch.tensor([0, 0, 1, 1]))
        tensor(0.8813)
        >>> contrastive_loss(x, torch.tensor([0, 0, 1, 1]), squared=False, reduction="none")
        tensor([0.1667, 0.2313, 0.8099, 0.7454])
    """
    _check_contrastive_args(margin=margin, pos_margin=pos_margin, distance=distance, normalize=normalize,
                            squared=squared)
    x, y, sample_weight, mask = prepare_labelled(embeddings, target, "contrastive_loss", gather_distributed,
                                                 process_group, sample_weight, mask)
    eps = norm_eps(embeddings.dtype)
    if normalize:
        x = safe_normalize(x, eps)
    d = distance_matrix(x, x, distance, eps)
    pos, neg = label_masks(y)
    hinge = torch.where(pos, F.relu(d - pos_margin), torch.where(neg, F.relu(margin - d), torch.zeros_like(d)))
    pair = hinge * hinge if squared else hinge
    n = x.shape[0]
    u = pair.sum(1) / max(n - 1, 1)
    keep = torch.full((n,), n > 1, dtype=torch.bool, device=x.device)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=keep, loss_name="contrastive_loss")


class ContrastiveLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.contrastive_loss`.

    Args:
        margin, pos_margin, distance, normalize, squared, gather_distributed, process_group, reduction:
            As in the function.
    """

    function = contrastive_loss
    validate = _check_contrastive_args

    def __init__(self, *, margin: float = 1.0, pos_margin: float = 0.0, distance: str = "euclidean",
                 normalize: bool = False, squared: bool = True, gather_distributed: bool = False,
                 process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, margin=margin, pos_margin=pos_margin, distance=distance,
                         normalize=normalize, squared=squared, gather_distributed=gather_distributed,
                         process_group=process_group)


# ---------------------------------------------------------------------------------------------- triplet

def _check_triplet_args(*, margin: float, mining: str, distance: str, normalize: bool, soft_margin: bool,
                        average_nonzero: bool, **_: object) -> None:
    check_nonnegative(margin, "margin", "triplet_loss")
    check_choice(mining, "mining", "triplet_loss", MINING)
    check_distance(distance, "triplet_loss")
    check_flag(normalize, "normalize", "triplet_loss")
    check_flag(soft_margin, "soft_margin", "triplet_loss")
    check_flag(average_nonzero, "average_nonzero", "triplet_loss")
    if soft_margin and mining not in ("batch_hard", "batch_semi_hard"):
        raise ValueError(f"triplet_loss: soft_margin=True needs mining='batch_hard' or 'batch_semi_hard' (one "
                         f"triplet per unit), got mining={mining!r}. Hint: use the hinge (soft_margin=False).")


def _hinge(v: Tensor, soft: bool) -> Tensor:
    return F.softplus(v) if soft else F.relu(v)


def _sorted_negatives(d: Tensor, neg: Tensor) -> tuple[Tensor, Tensor]:
    """Each row's negative distances in ascending order (non-negatives last, at ``finfo.max``) and
    the number of negatives per row."""
    fill = torch.finfo(d.dtype).max
    return torch.sort(d.masked_fill(~neg, fill), dim=1).values, neg.sum(1)


def _row_distances(a: Tensor, b: Tensor, distance: str, eps: float) -> Tensor:
    """Distances between matching rows of ``a`` and ``b`` (O(N D), safe at coinciding rows)."""
    if distance == "cosine":
        return 1.0 - (safe_normalize(a, eps) * safe_normalize(b, eps)).sum(1)
    diff = a - b
    sq = (diff * diff).sum(1)
    return sq if distance == "squared_euclidean" else safe_sqrt(sq)


def _batch_hard(x: Tensor, y: Tensor, margin: float, distance: str, eps: float, soft: bool,
                average_nonzero: bool) -> tuple[Tensor, Tensor]:
    """Hermans' batch-hard terms. The hardest positive and negative are picked without gradient on a
    per-row ranking (for Euclidean distances ``|x_j|^2 - 2 x_i.x_j``, which orders row i like the
    distance; for cosine, the cosine); the two chosen distances per anchor are then recomputed from
    the rows, so the backward is O(N D), not a matrix product."""
    n = x.shape[0]
    same = y.unsqueeze(1) == y.unsqueeze(0)
    ys = torch.sort(y).values  # label counts in O(N log N), without an (N, N) reduction
    n_same = torch.searchsorted(ys, y, right=True) - torch.searchsorted(ys, y)
    valid = (n_same > 1) & (n_same < n)
    with torch.no_grad():
        if distance == "cosine":
            xn = safe_normalize(x, eps)
            ranking = (xn @ xn.T).neg_()
        else:
            ranking = (x @ x.T).mul_(-2.0).add_((x * x).sum(1).unsqueeze(0))
        if n == 0:  # an empty batch (argmax needs a non-empty row)
            hardest_pos = hardest_neg = torch.zeros(0, dtype=torch.long, device=x.device)
        else:
            low, high = torch.finfo(ranking.dtype).min, torch.finfo(ranking.dtype).max
            for_pos = torch.where(same, ranking, low)
            for_pos.diagonal().fill_(low)
            hardest_pos = for_pos.argmax(1)
            hardest_neg = ranking.masked_fill_(same, high).argmin(1)
    v = _row_distances(x, x[hardest_pos], distance, eps) - _row_distances(x, x[hardest_neg], distance, eps) + margin
    u = torch.where(valid, _hinge(v, soft), torch.zeros_like(v))
    count = valid & (u > 0) if average_nonzero else valid
    return u, count.to(u.dtype)


#: Largest (anchors x positives per anchor x batch) for the direct triplet path (64 MiB of float32).
DIRECT_TRIPLET_LIMIT = 1 << 24


def _direct_triplets(d: Tensor, pos: Tensor, neg: Tensor, margin: float, mining: str, soft: bool,
                     average_nonzero: bool, max_pos: int) -> tuple[Tensor, Tensor]:
    """The same terms as :func:`_mined_triplets`, computed directly on ``(N, P, N)`` triplet tensors,
    where ``P`` is the largest number of positives of an anchor: used when that is small (P x K
    batches), where the ``(N, P, N)`` tensors are small and no row needs sorting."""
    pos_flag, pos_idx = torch.topk(pos.to(d.dtype), max_pos, dim=1)  # each row's positives first
    has_p = (pos_flag > 0).unsqueeze(2)  # (N, P, 1)
    d_ap = d.gather(1, pos_idx).unsqueeze(2)  # (N, P, 1)
    d_an = d.unsqueeze(1)  # (N, 1, N)
    negative = neg.unsqueeze(1)  # (N, 1, N)
    if mining == "batch_semi_hard":
        farther = negative & (d_an > d_ap)
        fill = torch.finfo(d.dtype)
        semi = d_an.masked_fill(~farther, fill.max).amin(2, keepdim=True)
        farthest = d_an.masked_fill(~negative, fill.min).amax(2, keepdim=True)
        valid = has_p & negative.any(2, keepdim=True)
        chosen = torch.where(valid, torch.where(farther.any(2, keepdim=True), semi, farthest), d_ap)
        term = torch.where(valid, _hinge(d_ap - chosen + margin, soft), torch.zeros_like(d_ap))
        count = valid & (term > 0) if average_nonzero else valid
        return term.sum((1, 2)), count.sum((1, 2)).to(d.dtype)
    violation = d_ap - d_an + margin  # (N, P, N)
    chosen = has_p & negative
    if mining == "hard":
        chosen = chosen & (d_an <= d_ap)
    elif mining == "semi_hard":
        chosen = chosen & (d_an > d_ap) & (violation > 0)
    term = F.relu(violation.masked_fill(~chosen, -1.0))
    count = term > 0 if average_nonzero else chosen
    return term.sum((1, 2)), count.sum((1, 2), dtype=d.dtype)


def _mined_triplets(d: Tensor, pos: Tensor, neg: Tensor, margin: float, mining: str, soft: bool,
                    average_nonzero: bool) -> tuple[Tensor, Tensor]:
    """Per-anchor sum of the selected triplet terms and the number of units averaged over, for the
    minings other than batch-hard, from each row's sorted negative distances."""
    sorted_neg, n_neg = _sorted_negatives(d, neg)
    n_neg_col = n_neg.unsqueeze(1)
    if mining == "batch_semi_hard":
        # Per (anchor, positive): the closest negative farther than the positive, else the farthest negative.
        first_farther = torch.searchsorted(sorted_neg, d.contiguous(), right=True)
        has_semi = first_farther < n_neg_col
        semi = sorted_neg.gather(1, first_farther.clamp(max=max(d.shape[1] - 1, 0)))
        farthest = sorted_neg.gather(1, (n_neg_col - 1).clamp(min=0)).expand_as(d)
        valid = pos & n_neg_col.bool()
        chosen = torch.where(valid, torch.where(has_semi, semi, farthest), d)
        term = torch.where(valid, _hinge(d - chosen + margin, soft), torch.zeros_like(d))
        count = valid & (term > 0) if average_nonzero else valid
        return term.sum(1), count.sum(1).to(d.dtype)
    # "all", "hard", "semi_hard": each (anchor, positive) takes a range [lo, hi) of its row's sorted
    # negatives; the sum of the hinge terms over the range comes from prefix sums, accumulated in
    # float64 (exact to float32 rounding however many triplets an anchor has). O(N^2 log N) work and
    # O(N^2) memory: no (N, N, N) tensor.
    fill = torch.finfo(d.dtype).max
    prefix = F.pad(torch.cumsum(sorted_neg.masked_fill(sorted_neg == fill, 0.0), 1, dtype=torch.float64), (1, 0))
    d_col = d.contiguous()
    below_thr = torch.searchsorted(sorted_neg, d_col + margin)  # negatives with d_an < d_ap + margin
    lo: Tensor | None = None
    if mining == "all":
        hi = n_neg_col.expand_as(below_thr)
        active_hi = below_thr
    elif mining == "hard":  # d_an <= d_ap
        hi = torch.searchsorted(sorted_neg, d_col, right=True)
        active_hi = torch.minimum(hi, below_thr)
    else:  # semi_hard: d_ap < d_an < d_ap + margin
        lo = torch.searchsorted(sorted_neg, d_col, right=True)
        hi = active_hi = torch.maximum(below_thr, lo)
    start = prefix[:, :1] if lo is None else prefix.gather(1, lo)
    active = (active_hi if lo is None else active_hi - lo).to(torch.float64)
    total = active * (d.double() + margin) - (prefix.gather(1, active_hi) - start)
    total = torch.where(pos, total, 0.0)
    units = active if average_nonzero else (hi if lo is None else hi - lo).to(torch.float64)
    count = torch.where(pos, units, 0.0)
    return total.sum(1).to(d.dtype), count.sum(1).to(d.dtype)


@loss_function
def triplet_loss(
    embeddings: Tensor,
    target: Tensor,
    /,
    *,
    margin: float = 1.0,
    mining: str = "batch_hard",
    distance: str = "euclidean",
    normalize: bool = False,
    soft_margin: bool = False,
    average_nonzero: bool = False,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Triplet margin loss with in-batch mining over embeddings and labels.

    For an anchor :math:`a`, a positive :math:`p` (same label) and a negative :math:`n` (another
    label), the triplet term asks the negative to be at least ``margin`` farther than the positive:

    .. math::
        \ell_{apn} = \max(0,\ d_{ap} - d_{an} + m)
        \quad(\text{soft margin: } \log(1 + e^{d_{ap} - d_{an} + m}))

    ``mining`` chooses the triplets (each anchor's terms are summed into :math:`U_a`; ``"mean"``
    divides by the number of units named below):

    - ``"batch_hard"`` (Hermans et al.): per anchor, its farthest positive and closest negative.
      One unit per anchor that has both.
    - ``"batch_semi_hard"`` (FaceNet, as TensorFlow Addons): per (anchor, positive) pair, the
      closest negative farther than the positive, or the farthest negative if none is. One unit
      per positive pair.
    - ``"all"``: every triplet (one unit per triplet; Hermans' "batch all").
    - ``"hard"``: every triplet whose negative is not farther than the positive.
    - ``"semi_hard"``: every triplet with :math:`d_{ap} < d_{an} < d_{ap} + m`.

    With ``average_nonzero=True`` only units with a positive loss are counted in ``"mean"``
    (Hermans' batch-all average over active triplets; pytorch-metric-learning's default reducer).

    Args:
        embeddings: ``(N, D)`` embeddings.
        target: ``(N,)`` integer labels.
        margin: :math:`m \ge 0`.
        mining: ``"batch_hard"``, ``"batch_semi_hard"``, ``"all"``, ``"hard"`` or ``"semi_hard"``.
        distance: ``"euclidean"``, ``"squared_euclidean"`` or ``"cosine"`` (``1 - cos``).
        normalize: Scale embeddings to unit norm before the distance.
        soft_margin: Softplus instead of the hinge (only for the one-triplet-per-unit minings,
            ``"batch_hard"`` and ``"batch_semi_hard"``).
        average_nonzero: Count only units with a positive loss in ``"mean"``.
        gather_distributed: All-gather embeddings and labels over the ranks of ``process_group``
            (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: an anchor; :math:`U_a` is
            the sum of its selected terms, and ``"mean"`` divides the weighted sum by the weighted
            number of units (triplets, positive pairs or anchors, per ``mining``).

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``.
        - output: ``(N,)`` (``(N_global,)`` when gathering) if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``embeddings`` is not ``(N, D)`` or ``target`` not ``(N,)``.
        TypeError: If ``target`` is not an integer tensor or a flag is not a bool.
        ValueError: If ``margin`` is negative, ``mining`` or ``distance`` unknown, or
            ``soft_margin`` is combined with a mining that selects many triplets per anchor.

    Note:
        No Python loop and no ``(N, N, N)`` tensor: ``"batch_hard"`` is a masked arg-max/min over
        an ``(N, N)`` ranking matrix (without gradient), then the two chosen distances per anchor
        are recomputed from the rows, so its backward costs O(N D); the other minings sort each
        row's negative distances once and find, per (anchor, positive), the range of selected
        negatives with ``searchsorted``; the sum of their hinge terms comes from prefix sums (in
        float64, so exact to float32 rounding). When every anchor has few positives (P x K
        batches: anchors x positives x N up to 2^24) the terms are summed directly instead, which
        is faster (in eager mode; under ``torch.compile`` the sorted path is always used).
        Memory and work are O(N^2 log N) whatever the number of triplets. An anchor without a
        positive or a negative has no unit: all labels distinct, all equal, or a batch of one give
        0.0 with zero, finite gradients. With ``gather_distributed=True`` every rank returns the same
        global loss; multiply it by the world size under DDP (which averages gradients).

    References:
        Schroff, Kalenichenko and Philbin, *FaceNet*, CVPR 2015. https://arxiv.org/abs/1503.03832 ;
        Hermans, Beyer and Leibe, *In Defense of the Triplet Loss for Person Re-Identification*,
        2017. https://arxiv.org/abs/1703.07737

    Examples:
        >>> import torch
        >>> from lossforge.functional import triplet_loss
        >>> x = torch.tensor([[0.0, 0.0], [0.3, 0.4], [1.0, 0.0], [0.0, 2.0]])
        >>> y = torch.tensor([0, 0, 1, 1])
        >>> triplet_loss(x, y)
        tensor(1.3080)
        >>> triplet_loss(x, y, mining="all", margin=0.5, reduction="none")
        tensor([0.0000, 0.1938, 3.6659, 1.8443])
        >>> triplet_loss(x, y, mining="all", margin=0.5)  # the mean over the 8 triplets
        tensor(0.7130)
    """
    _check_triplet_args(margin=margin, mining=mining, distance=distance, normalize=normalize,
                        soft_margin=soft_margin, average_nonzero=average_nonzero)
    x, y, sample_weight, mask = prepare_labelled(embeddings, target, "triplet_loss", gather_distributed,
                                                 process_group, sample_weight, mask)
    eps = norm_eps(embeddings.dtype)
    if normalize:
        x = safe_normalize(x, eps)
    if mining == "batch_hard":
        u, count = _batch_hard(x, y, float(margin), distance, eps, soft_margin, average_nonzero)
    else:
        pos, neg = label_masks(y)
        d = distance_matrix(x, x, distance, eps)
        max_pos = 0 if torch.compiler.is_compiling() or x.shape[0] == 0 else int(pos.sum(1).max())
        if 0 < max_pos * x.shape[0] ** 2 <= DIRECT_TRIPLET_LIMIT:  # few positives per anchor (eager only)
            u, count = _direct_triplets(d, pos, neg, float(margin), mining, soft_margin, average_nonzero, max_pos)
        else:
            u, count = _mined_triplets(d, pos, neg, float(margin), mining, soft_margin, average_nonzero)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, mean_weight=count,
                       loss_name="triplet_loss")


class TripletLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.triplet_loss`.

    Args:
        margin, mining, distance, normalize, soft_margin, average_nonzero, gather_distributed,
        process_group, reduction: As in the function.
    """

    function = triplet_loss
    validate = _check_triplet_args

    def __init__(self, *, margin: float = 1.0, mining: str = "batch_hard", distance: str = "euclidean",
                 normalize: bool = False, soft_margin: bool = False, average_nonzero: bool = False,
                 gather_distributed: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, margin=margin, mining=mining, distance=distance, normalize=normalize,
                         soft_margin=soft_margin, average_nonzero=average_nonzero,
                         gather_distributed=gather_distributed, process_group=process_group)


# ------------------------------------------------------------------------------------- lifted structure

def _check_lifted_args(*, margin: float, normalize: bool, **_: object) -> None:
    check_number(margin, "margin", "lifted_structure_loss")
    check_flag(normalize, "normalize", "lifted_structure_loss")


@loss_function
def lifted_structure_loss(
    embeddings: Tensor,
    target: Tensor,
    /,
    *,
    margin: float = 1.0,
    normalize: bool = False,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Lifted structured embedding loss: every positive pair against all negatives of both ends.

    .. math::
        J_{ij} = \log\Big(\sum_{k \in N(i)} e^{m - d_{ik}} + \sum_{l \in N(j)} e^{m - d_{jl}}\Big) + d_{ij},
        \qquad U_i = \sum_{j \in P(i)} \tfrac12 \max(0, J_{ij})^2

    with Euclidean distances :math:`d`, :math:`P(i)` the other samples of :math:`i`'s label and
    :math:`N(i)` the samples of other labels. ``"mean"`` divides by the number of ordered positive
    pairs, which is the paper's :math:`\frac{1}{2|P|}\sum_{(i,j)\in P} \max(0, J_{ij})^2`.

    Args:
        embeddings: ``(N, D)`` embeddings.
        target: ``(N,)`` integer labels.
        margin: :math:`m`, the margin in the negatives' exponent.
        normalize: Scale embeddings to unit norm before the distance.
        gather_distributed: All-gather embeddings and labels over the ranks of ``process_group``
            (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: an anchor (the sum over its
            positive pairs); ``"mean"`` divides by the weighted number of positive pairs.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``.
        - output: ``(N,)`` (``(N_global,)`` when gathering) if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``embeddings`` is not ``(N, D)`` or ``target`` not ``(N,)``.
        TypeError: If ``target`` is not an integer tensor.

    Note:
        The log-sum-exp runs over a row's negatives with masked entries set to the dtype's
        lowest finite value, so it is finite for any distance; pairs without negatives (all labels
        equal) and anchors without positives contribute nothing: 0.0 with zero gradients.

    References:
        Oh Song, Xiang, Jegelka and Savarese, *Deep Metric Learning via Lifted Structured Feature
        Embedding*, CVPR 2016. https://arxiv.org/abs/1511.06452

    Examples:
        >>> import torch
        >>> from lossforge.functional import lifted_structure_loss
        >>> x = torch.tensor([[0.0, 0.0], [0.3, 0.4], [1.0, 0.0], [0.0, 2.0]])
        >>> lifted_structure_loss(x, torch.tensor([0, 0, 1, 1]))
        tensor(3.5127)
    """
    _check_lifted_args(margin=margin, normalize=normalize)
    x, y, sample_weight, mask = prepare_labelled(embeddings, target, "lifted_structure_loss", gather_distributed,
                                                 process_group, sample_weight, mask)
    if normalize:
        x = safe_normalize(x, norm_eps(embeddings.dtype))
    d = distance_matrix(x, x, "euclidean")
    pos, neg = label_masks(y)
    has_neg = neg.any(1)
    lse = masked_logsumexp(margin - d, neg)
    lse = torch.where(has_neg, lse, torch.zeros_like(lse))
    j = torch.logaddexp(lse.unsqueeze(1), lse.unsqueeze(0)) + d
    valid = pos & has_neg.unsqueeze(1)
    term = torch.where(valid, 0.5 * F.relu(j) ** 2, torch.zeros_like(j))
    return reduce_loss(term.sum(1), reduction, sample_weight=sample_weight, mask=mask,
                       mean_weight=valid.sum(1).to(term.dtype), loss_name="lifted_structure_loss")


class LiftedStructureLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.lifted_structure_loss`.

    Args:
        margin, normalize, gather_distributed, process_group, reduction: As in the function.
    """

    function = lifted_structure_loss
    validate = _check_lifted_args

    def __init__(self, *, margin: float = 1.0, normalize: bool = False, gather_distributed: bool = False,
                 process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, margin=margin, normalize=normalize,
                         gather_distributed=gather_distributed, process_group=process_group)


# ----------------------------------------------------------------------------------------------- circle

def _check_circle_args(*, margin: float, gamma: float, **_: object) -> None:
    check_nonnegative(margin, "margin", "circle_loss")
    check_positive(gamma, "gamma", "circle_loss")


@loss_function
def circle_loss(
    embeddings: Tensor,
    target: Tensor,
    /,
    *,
    margin: float = 0.4,
    gamma: float = 80.0,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Circle loss with pair-wise labels: self-paced weighting of cosine similarities.

    Each similarity is re-weighted by how far it is from its optimum, so the decision boundary is
    a circle in the :math:`(s_n, s_p)` plane:

    .. math::
        U_a = \log\Big(1 + \sum_{n \in N(a)} e^{\gamma \alpha_n (s_{an} - \Delta_n)}
                           \sum_{p \in P(a)} e^{-\gamma \alpha_p (s_{ap} - \Delta_p)}\Big),

    :math:`\alpha_p = [1 + m - s_{ap}]_+`, :math:`\alpha_n = [s_{an} + m]_+` (not
    differentiated, as in the paper's code), :math:`\Delta_p = 1 - m`, :math:`\Delta_n = m`, and
    :math:`s` the cosine similarity.

    Args:
        embeddings: ``(N, D)`` embeddings (normalised here).
        target: ``(N,)`` integer labels.
        margin: :math:`m \ge 0`, the relaxation (paper: 0.25 for faces, 0.4 for fine-grained retrieval).
        gamma: :math:`\gamma > 0`, the scale (paper: 256 for faces, 80 for fine-grained retrieval).
        gather_distributed: All-gather embeddings and labels over the ranks of ``process_group``
            (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: an anchor with at least one
            positive and one negative; others are left out of ``"mean"``.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``.
        - output: ``(N,)`` (``(N_global,)`` when gathering) if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``embeddings`` is not ``(N, D)`` or ``target`` not ``(N,)``.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``margin`` is negative or ``gamma`` not positive.

    Note:
        Computed as ``softplus(LSE_n + LSE_p)`` with masked log-sum-exps, finite and positive for
        any ``gamma`` (256 and more). Anchors without a positive or a negative give 0 and are not
        counted; a batch without any gives 0.0 with zero gradients.

    References:
        Sun et al., *Circle Loss: A Unified Perspective of Pair Similarity Optimization*, CVPR 2020.
        https://arxiv.org/abs/2002.10857

    Examples:
        >>> import torch
        >>> from lossforge.functional import circle_loss
        >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
        >>> circle_loss(x, torch.tensor([0, 0, 1, 1]), gamma=10.0)
        tensor(0.7494)
    """
    _check_circle_args(margin=margin, gamma=gamma)
    x, y, sample_weight, mask = prepare_labelled(embeddings, target, "circle_loss", gather_distributed,
                                                 process_group, sample_weight, mask)
    xn = safe_normalize(x, norm_eps(embeddings.dtype))
    s = xn @ xn.T
    pos, neg = label_masks(y)
    alpha_p = F.relu(1.0 + margin - s).detach()
    alpha_n = F.relu(s + margin).detach()
    lse_p = masked_logsumexp(-gamma * alpha_p * (s - (1.0 - margin)), pos)
    lse_n = masked_logsumexp(gamma * alpha_n * (s - margin), neg)
    valid = pos.any(1) & neg.any(1)
    z = torch.where(valid, lse_p, torch.zeros_like(lse_p)) + torch.where(valid, lse_n, torch.zeros_like(lse_n))
    u = torch.where(valid, F.softplus(z), torch.zeros_like(z))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=valid, loss_name="circle_loss")


class CircleLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.circle_loss`.

    Args:
        margin, gamma, gather_distributed, process_group, reduction: As in the function.
    """

    function = circle_loss
    validate = _check_circle_args

    def __init__(self, *, margin: float = 0.4, gamma: float = 80.0, gather_distributed: bool = False,
                 process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, margin=margin, gamma=gamma, gather_distributed=gather_distributed,
                         process_group=process_group)


# ------------------------------------------------------------------------------------- multi-similarity

def _check_ms_args(*, alpha: float, beta: float, base: float, **_: object) -> None:
    check_positive(alpha, "alpha", "multi_similarity_loss")
    check_positive(beta, "beta", "multi_similarity_loss")
    check_number(base, "base", "multi_similarity_loss")


@loss_function
def multi_similarity_loss(
    embeddings: Tensor,
    target: Tensor,
    /,
    *,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Multi-similarity loss: soft weighting of every positive and negative cosine similarity.

    .. math::
        U_a = \frac{1}{\alpha} \log\Big(1 + \sum_{p \in P(a)} e^{-\alpha (s_{ap} - \lambda)}\Big)
            + \frac{1}{\beta} \log\Big(1 + \sum_{n \in N(a)} e^{\beta (s_{an} - \lambda)}\Big)

    with :math:`s` the cosine similarity and :math:`\lambda` = ``base``. This is the weighting part
    of the paper; its pair mining is a separate step, not applied here.

    Args:
        embeddings: ``(N, D)`` embeddings (normalised here).
        target: ``(N,)`` integer labels.
        alpha: :math:`\alpha > 0`, the positive scale (paper: 2).
        beta: :math:`\beta > 0`, the negative scale (paper: 50).
        base: :math:`\lambda`, the similarity margin (paper: 1 in the text, 0.5 in its code).
        gather_distributed: All-gather embeddings and labels over the ranks of ``process_group``
            (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: an anchor with at least one
            positive and one negative (the paper's code skips the others); others are left out of ``"mean"``.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``.
        - output: ``(N,)`` (``(N_global,)`` when gathering) if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``embeddings`` is not ``(N, D)`` or ``target`` not ``(N,)``.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``alpha`` or ``beta`` is not positive.

    Note:
        ``log(1 + sum exp)`` is computed as ``softplus(logsumexp)`` over masked entries, finite for
        any scale. A batch without positives or without negatives gives 0.0 with zero gradients.

    References:
        Wang et al., *Multi-Similarity Loss with General Pair Weighting for Deep Metric Learning*,
        CVPR 2019. https://arxiv.org/abs/1904.06627

    Examples:
        >>> import torch
        >>> from lossforge.functional import multi_similarity_loss
        >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
        >>> multi_similarity_loss(x, torch.tensor([0, 0, 1, 1]))
        tensor(0.2688)
    """
    _check_ms_args(alpha=alpha, beta=beta, base=base)
    x, y, sample_weight, mask = prepare_labelled(embeddings, target, "multi_similarity_loss", gather_distributed,
                                                 process_group, sample_weight, mask)
    xn = safe_normalize(x, norm_eps(embeddings.dtype))
    s = xn @ xn.T
    pos, neg = label_masks(y)
    pos_term = F.softplus(masked_logsumexp(-alpha * (s - base), pos)) / alpha
    neg_term = F.softplus(masked_logsumexp(beta * (s - base), neg)) / beta
    valid = pos.any(1) & neg.any(1)
    u = torch.where(valid, pos_term + neg_term, torch.zeros_like(pos_term))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=valid,
                       loss_name="multi_similarity_loss")


class MultiSimilarityLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.multi_similarity_loss`.

    Args:
        alpha, beta, base, gather_distributed, process_group, reduction: As in the function.
    """

    function = multi_similarity_loss
    validate = _check_ms_args

    def __init__(self, *, alpha: float = 2.0, beta: float = 50.0, base: float = 0.5,
                 gather_distributed: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, alpha=alpha, beta=beta, base=base,
                         gather_distributed=gather_distributed, process_group=process_group)


# ------------------------------------------------------------------------------------------ registration

def _triplet_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    samples = label_samples(dtype, device)
    g = generator(3)
    x = randn(10, 4, gen=g, dtype=dtype, device=device)
    t = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3], device=device)
    extra = [Sample((x, t), {"mining": m}, name=f"mining={m}", plain=False)
             for m in ("batch_semi_hard", "all", "hard", "semi_hard")]
    extra += [
        Sample((x, t), {"mining": "all", "average_nonzero": True, "margin": 2.0}, name="all, nonzero", plain=False),
        Sample((x, t), {"soft_margin": True, "distance": "squared_euclidean"}, name="soft, squared", plain=False),
        Sample((x, t), {"distance": "cosine", "margin": 0.3, "mining": "semi_hard"}, name="cosine", plain=False),
    ]
    return samples + extra


def _contrastive_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    samples = label_samples(dtype, device)
    g = generator(4)
    x = randn(10, 4, gen=g, dtype=dtype, device=device)
    t = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3], device=device)
    return [
        *samples,
        Sample((x, t), {"squared": False, "pos_margin": 0.5, "margin": 3.0}, name="linear hinge", plain=False),
        Sample((x, t), {"distance": "cosine", "margin": 0.8}, name="cosine", plain=False),
        Sample((x, t), {"normalize": True, "distance": "squared_euclidean"}, name="normalized", plain=False),
    ]


register_loss(
    name="contrastive", function=contrastive_loss, module=ContrastiveLoss, family="metric",
    input_kind="embeddings", target_kind="labels", unit="anchor (mean of its N-1 pair terms)",
    reference="Hadsell, Chopra and LeCun, CVPR 2006, doi:10.1109/CVPR.2006.100",
    sample_inputs=_contrastive_samples,
    error_inputs=lambda: label_errors("contrastive_loss", extra=[
        *hyper_error((torch.randn(4, 3), torch.tensor([0, 1, 0, 1])), {"margin": -1.0}, ValueError,
                     r"contrastive_loss: margin must be >= 0, got -1.0"),
        *hyper_error((torch.randn(4, 3), torch.tensor([0, 1, 0, 1])), {"distance": "euclidian"}, ValueError,
                     r"distance must be one of .* Did you mean 'euclidean'"),
    ]),
    extreme_inputs=label_extremes, separable=False, differentiable_args=(0,),
)

register_loss(
    name="triplet", function=triplet_loss, module=TripletLoss, family="metric",
    input_kind="embeddings", target_kind="labels", unit="anchor (sum of its mined triplet terms)",
    reference="Schroff et al. 2015, arXiv:1503.03832; Hermans et al. 2017, arXiv:1703.07737",
    sample_inputs=_triplet_samples,
    error_inputs=lambda: label_errors("triplet_loss", extra=[
        *hyper_error((torch.randn(4, 3), torch.tensor([0, 1, 0, 1])), {"mining": "semihard"}, ValueError,
                     r"triplet_loss: mining must be one of .* Did you mean 'semi_hard'"),
        *hyper_error((torch.randn(4, 3), torch.tensor([0, 1, 0, 1])), {"margin": -0.1}, ValueError,
                     r"triplet_loss: margin must be >= 0, got -0.1"),
        *hyper_error((torch.randn(4, 3), torch.tensor([0, 1, 0, 1])), {"mining": "all", "soft_margin": True},
                     ValueError, r"soft_margin=True needs mining='batch_hard' or 'batch_semi_hard'"),
    ]),
    extreme_inputs=label_extremes, separable=False, differentiable_args=(0,),
)

register_loss(
    name="lifted_structure", function=lifted_structure_loss, module=LiftedStructureLoss, family="metric",
    input_kind="embeddings", target_kind="labels", unit="anchor (sum over its positive pairs)",
    reference="Oh Song et al., CVPR 2016, arXiv:1511.06452",
    sample_inputs=label_samples,
    error_inputs=lambda: label_errors("lifted_structure_loss", extra=[
        *hyper_error((torch.randn(4, 3), torch.tensor([0, 1, 0, 1])), {"margin": "1"}, TypeError,
                     r"lifted_structure_loss: margin must be a float or int, got '1'"),
    ]),
    extreme_inputs=label_extremes, separable=False, differentiable_args=(0,),
)

register_loss(
    name="circle", function=circle_loss, module=CircleLoss, family="metric",
    input_kind="embeddings", target_kind="labels", unit="anchor with a positive and a negative",
    reference="Sun et al., CVPR 2020, arXiv:2002.10857",
    sample_inputs=label_samples,
    error_inputs=lambda: label_errors("circle_loss", extra=[
        *hyper_error((torch.randn(4, 3), torch.tensor([0, 1, 0, 1])), {"gamma": 0.0}, ValueError,
                     r"circle_loss: gamma must be > 0, got 0.0"),
    ]),
    extreme_inputs=lambda dtype, device: [*label_extremes(dtype, device),
                                          *label_extremes(dtype, device, gamma=256.0, margin=0.25)],
    separable=False, differentiable_args=(0,),
    # The self-paced weights alpha_p, alpha_n are not differentiated (the paper's code), so the
    # gradient is by design not the derivative of the value: finite differences do not apply.
    extra={"exact_gradient": False},
)

register_loss(
    name="multi_similarity", function=multi_similarity_loss, module=MultiSimilarityLoss, family="metric",
    input_kind="embeddings", target_kind="labels", unit="anchor with a positive and a negative",
    reference="Wang et al., CVPR 2019, arXiv:1904.06627",
    sample_inputs=label_samples,
    error_inputs=lambda: label_errors("multi_similarity_loss", extra=[
        *hyper_error((torch.randn(4, 3), torch.tensor([0, 1, 0, 1])), {"beta": -1.0}, ValueError,
                     r"multi_similarity_loss: beta must be > 0, got -1.0"),
    ]),
    extreme_inputs=label_extremes, separable=False, differentiable_args=(0,),
)
