"""More metric losses on embeddings ``(N, D)`` and labels ``(N,)``: NCA, angular, tuplet margin,
signal-to-noise-ratio contrastive, and the histogram-based FastAP and histogram losses.

Like :mod:`._metric_pairs`, every loss builds ``(N, N)`` matrices with matrix products and works on
them with label masks; nothing loops over anchors. Anchors without a positive or without a negative
give 0 and are left out of ``"mean"``, so a batch without any gives 0.0 with zero gradients.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._core.base import FunctionLoss, loss_function
from .._core.checks import check_range
from .._core.errors import message
from .._core.reduction import Reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import Sample, generator, randn
from ._metric_ops import (
    check_distance,
    check_flag,
    check_nonnegative,
    check_positive,
    distance_matrix,
    label_masks,
    label_samples,
    masked_logsumexp,
    masked_max,
    norm_eps,
    pair_labels,
    safe_normalize,
    safe_sqrt,
    zero_where,
)
from ._metric_pairs import hyper_error, label_errors, label_extremes, prepare_labelled

__all__ = [
    "AngularLoss",
    "FastAPLoss",
    "HistogramLoss",
    "NCALoss",
    "SNRContrastiveLoss",
    "TupletMarginLoss",
    "angular_loss",
    "fast_ap_loss",
    "histogram_loss",
    "nca_loss",
    "snr_contrastive_loss",
    "tuplet_margin_loss",
]


# ------------------------------------------------------------------------------------------------- NCA

def _check_nca_args(*, temperature: float, distance: str, normalize: bool, **_: object) -> None:
    check_positive(temperature, "temperature", "nca_loss")
    check_distance(distance, "nca_loss")
    check_flag(normalize, "normalize", "nca_loss")


@loss_function
def nca_loss(
    embeddings: Tensor,
    target: Tensor,
    /,
    *,
    temperature: float = 1.0,
    distance: str = "squared_euclidean",
    normalize: bool = False,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Neighbourhood components analysis: the log-probability that an anchor's stochastic nearest
    neighbour in the batch has its label.

    Each anchor picks a neighbour :math:`j \ne i` with probability :math:`p_{ij}`, a softmax over the
    negative distances; the loss is the negative log of the probability mass on its own class:

    .. math::
        p_{ij} = \frac{e^{-d_{ij} / T}}{\sum_{k \ne i} e^{-d_{ik} / T}}, \qquad
        U_i = -\log \sum_{j \in P(i)} p_{ij}
            = \operatorname{LSE}_{k \ne i}(-d_{ik}/T) - \operatorname{LSE}_{j \in P(i)}(-d_{ij}/T)

    with :math:`d` the squared Euclidean distance (the paper) and :math:`P(i)` the other samples of
    :math:`i`'s label.

    Args:
        embeddings: ``(N, D)`` embeddings (the paper's :math:`A x`).
        target: ``(N,)`` integer labels.
        temperature: :math:`T > 0`, divides the distances (1 in the paper).
        distance: ``"squared_euclidean"`` (the paper), ``"euclidean"`` or ``"cosine"`` (``1 - cos``).
        normalize: Scale embeddings to unit norm before the distance.
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
        TypeError: If ``target`` is not an integer tensor or ``normalize`` not a bool.
        ValueError: If ``temperature`` is not positive or ``distance`` unknown.

    Note:
        Both sums are masked log-sum-exps, so the loss is finite for any temperature and any
        distance (no probability is formed and then logged). An anchor without a positive has
        no defined loss, one without a negative a loss of exactly 0: both give 0 and are not
        counted; a batch without any anchor left gives 0.0 with zero gradients.

    References:
        Goldberger, Roweis, Hinton and Salakhutdinov, *Neighbourhood Components Analysis*,
        NeurIPS 2004. https://www.cs.toronto.edu/~hinton/absps/nca.pdf

    Examples:
        >>> import torch
        >>> from lossforge.functional import nca_loss
        >>> x = torch.tensor([[0.0, 0.0], [0.3, 0.4], [1.0, 0.0], [0.0, 2.0]])
        >>> nca_loss(x, torch.tensor([0, 0, 1, 1]))
        tensor(2.1283)
        >>> nca_loss(x, torch.tensor([0, 0, 1, 1]), reduction="none")
        tensor([0.4027, 0.5659, 4.8909, 2.6535])
    """
    _check_nca_args(temperature=temperature, distance=distance, normalize=normalize)
    x, y, sample_weight, mask = prepare_labelled(embeddings, target, "nca_loss", gather_distributed,
                                                 process_group, sample_weight, mask)
    eps = norm_eps(embeddings.dtype)
    if normalize:
        x = safe_normalize(x, eps)
    logits = distance_matrix(x, x, distance, eps) / -temperature
    pos, neg = label_masks(y)
    valid = pos.any(1) & neg.any(1)
    u = masked_logsumexp(logits, pos | neg) - masked_logsumexp(logits, pos)
    return reduce_loss(zero_where(valid, u), reduction, sample_weight=sample_weight, mask=mask, keep=valid,
                       loss_name="nca_loss")


class NCALoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.nca_loss`.

    Args:
        temperature, distance, normalize, gather_distributed, process_group, reduction: As in the function.
    """

    function = nca_loss
    validate = _check_nca_args

    def __init__(self, *, temperature: float = 1.0, distance: str = "squared_euclidean", normalize: bool = False,
                 gather_distributed: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, temperature=temperature, distance=distance, normalize=normalize,
                         gather_distributed=gather_distributed, process_group=process_group)


# --------------------------------------------------------------------------------------------- angular

#: Largest angle accepted (degrees): up to it the factored log-sum-exp below stays exact in float32.
ANGULAR_MAX_ALPHA = 60.0


def _check_angular_args(*, alpha: float, **_: object) -> None:
    check_range(alpha, "alpha", "angular_loss", low=0.0, high=ANGULAR_MAX_ALPHA, low_inclusive=False)


@loss_function
def angular_loss(
    embeddings: Tensor,
    target: Tensor,
    /,
    *,
    alpha: float = 40.0,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Angular loss: bounds the angle at the negative of the triangle (anchor, positive, negative).

    For a positive pair :math:`(a, p)` every negative :math:`n` of the anchor is pushed away from
    the pair's centre until the angle at :math:`n` is at most :math:`\alpha`; the paper's N-pair
    form (a log-sum-exp over the negatives) on unit-normalised embeddings, over every positive
    pair of the batch:

    .. math::
        f_{apn} = 4 \tan^2\alpha \, (x_a + x_p)^\top x_n - 2 (1 + \tan^2\alpha)\, x_a^\top x_p,
        \qquad U_a = \sum_{p \in P(a)} \log\Big(1 + \sum_{n \in N(a)} e^{f_{apn}}\Big)

    ``"mean"`` divides by the number of positive pairs (of anchors with a negative), so it is the
    paper's mean over pairs.

    Args:
        embeddings: ``(N, D)`` embeddings (normalised here).
        target: ``(N,)`` integer labels.
        alpha: :math:`\alpha`, the angle bound **in degrees**, in ``(0, 60]`` (paper: 36 to 55;
            45 on CUB).
        gather_distributed: All-gather embeddings and labels over the ranks of ``process_group``
            (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: an anchor (the sum over its
            positive pairs); ``"mean"`` divides by the number of those pairs.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``.
        - output: ``(N,)`` (``(N_global,)`` when gathering) if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``embeddings`` is not ``(N, D)`` or ``target`` not ``(N,)``.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``alpha`` is not in ``(0, 60]``.

    Note:
        The sum over negatives is factored as
        :math:`\log \sum_n e^{A_{an}} e^{A_{pn}}` with :math:`A = 4\tan^2\alpha\, X X^\top`, one
        ``(N, N) @ (N, N)`` product of row-shifted exponentials (never an ``(N, N, N)`` tensor).
        With unit vectors each factor spans at most :math:`e^{8 \tan^2\alpha}`, which float32
        holds exactly up to :math:`\alpha = 60°`: hence the bound on ``alpha``. Anchors without a
        positive or a negative give 0 and are not counted; a batch without any gives 0.0 with zero
        gradients. Zero-norm embeddings are finite (their cosines are 0).

    References:
        Wang, Zhou, Wen, Liu and Lin, *Deep Metric Learning with Angular Loss*, ICCV 2017.
        https://arxiv.org/abs/1708.01682

    Examples:
        >>> import torch
        >>> from lossforge.functional import angular_loss
        >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
        >>> angular_loss(x, torch.tensor([0, 0, 1, 1]))
        tensor(0.3124)
    """
    _check_angular_args(alpha=alpha)
    x, y, sample_weight, mask = prepare_labelled(embeddings, target, "angular_loss", gather_distributed,
                                                 process_group, sample_weight, mask)
    xn = safe_normalize(x, norm_eps(embeddings.dtype))
    s = xn @ xn.T
    tan2 = math.tan(math.radians(alpha)) ** 2
    pos, neg = label_masks(y)
    has_neg = neg.any(1)
    a = (4.0 * tan2) * s
    # LSE_n (A_an + A_pn) over the anchor's negatives = log(E1 @ E2^T) + m1_a + m2_p, both factors
    # shifted by their row maxima (the anchor's over its negatives, the positive's over the batch).
    m1 = zero_where(has_neg, masked_max(a, neg)).detach()
    m2 = (a.amax(1) if a.shape[0] else a.sum(1)).detach()
    e1 = zero_where(neg, torch.exp(zero_where(neg, a - m1.unsqueeze(1))))
    e2 = torch.exp(a - m2.unsqueeze(1))
    prod = e1 @ e2.T
    usable = pos & has_neg.unsqueeze(1)
    lse = torch.log(torch.where(usable, prod, torch.ones_like(prod))) + m1.unsqueeze(1) + m2.unsqueeze(0)
    f = lse - (2.0 * (1.0 + tan2)) * s
    u = zero_where(usable, F.softplus(f)).sum(1)
    count = usable.sum(1).to(u.dtype)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, mean_weight=count,
                       loss_name="angular_loss")


class AngularLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.angular_loss`.

    Args:
        alpha, gather_distributed, process_group, reduction: As in the function.
    """

    function = angular_loss
    validate = _check_angular_args

    def __init__(self, *, alpha: float = 40.0, gather_distributed: bool = False, process_group: Any = None,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, alpha=alpha, gather_distributed=gather_distributed,
                         process_group=process_group)


# ---------------------------------------------------------------------------------------- tuplet margin

def _check_tuplet_args(*, margin: float, scale: float, **_: object) -> None:
    check_range(margin, "margin", "tuplet_margin_loss", low=0.0, high=math.pi / 2)
    check_positive(scale, "scale", "tuplet_margin_loss")


@loss_function
def tuplet_margin_loss(
    embeddings: Tensor,
    target: Tensor,
    /,
    *,
    margin: float = 0.1,
    scale: float = 64.0,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Tuplet margin loss: each positive pair against all negatives of its anchor, with an angular
    slack on the positive.

    .. math::
        U_a = \sum_{p \in P(a)} \log\Big(1 + \sum_{n \in N(a)}
              e^{s (\cos\theta_{an} - \cos(\theta_{ap} - \beta))}\Big)

    with :math:`\theta` the angle between embeddings. The margin :math:`\beta` *lowers* the
    positive's target angle, which keeps easy positives from being pulled together further (the
    paper's "slack"). ``"mean"`` divides by the number of positive pairs (of anchors with a negative).

    Args:
        embeddings: ``(N, D)`` embeddings (normalised here).
        target: ``(N,)`` integer labels.
        margin: :math:`\beta \in [0, \pi/2]`, **in radians** (paper: 0.1).
        scale: :math:`s > 0` (paper: 64).
        gather_distributed: All-gather embeddings and labels over the ranks of ``process_group``
            (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: an anchor (the sum over its
            positive pairs); ``"mean"`` divides by the number of those pairs.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``.
        - output: ``(N,)`` (``(N_global,)`` when gathering) if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``embeddings`` is not ``(N, D)`` or ``target`` not ``(N,)``.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``margin`` is not in ``[0, pi/2]`` or ``scale`` not positive.

    Note:
        :math:`\cos(\theta - \beta)` is computed as :math:`c \cos\beta + \sqrt{1 - c^2} \sin\beta`
        with a safe square root, so no ``acos`` is differentiated and the gradient is finite at
        cosine exactly 1 (a positive equal to its anchor), where ``acos`` has none. The sum over
        negatives only depends on the anchor: one masked log-sum-exp per row, so the loss costs
        one ``(N, N)`` similarity matrix. Anchors without a positive or a negative give 0 and are
        not counted; a batch without any gives 0.0 with zero gradients. The paper's optional
        intra-pair variance term is a separate loss.

    References:
        Yu and Tao, *Deep Metric Learning with Tuplet Margin Loss*, ICCV 2019.
        https://arxiv.org/abs/1812.04120

    Examples:
        >>> import torch
        >>> from lossforge.functional import tuplet_margin_loss
        >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
        >>> tuplet_margin_loss(x, torch.tensor([0, 0, 1, 1]), scale=8.0)
        tensor(0.0617)
    """
    _check_tuplet_args(margin=margin, scale=scale)
    x, y, sample_weight, mask = prepare_labelled(embeddings, target, "tuplet_margin_loss", gather_distributed,
                                                 process_group, sample_weight, mask)
    xn = safe_normalize(x, norm_eps(embeddings.dtype))
    s = xn @ xn.T
    pos, neg = label_masks(y)
    has_neg = neg.any(1)
    lse_neg = zero_where(has_neg, masked_logsumexp(scale * s, neg))
    shifted = s * math.cos(margin) + safe_sqrt(1.0 - s * s) * math.sin(margin)  # cos(theta - beta)
    usable = pos & has_neg.unsqueeze(1)
    u = zero_where(usable, F.softplus(lse_neg.unsqueeze(1) - scale * shifted)).sum(1)
    count = usable.sum(1).to(u.dtype)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, mean_weight=count,
                       loss_name="tuplet_margin_loss")


class TupletMarginLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.tuplet_margin_loss`.

    Args:
        margin, scale, gather_distributed, process_group, reduction: As in the function.
    """

    function = tuplet_margin_loss
    validate = _check_tuplet_args

    def __init__(self, *, margin: float = 0.1, scale: float = 64.0, gather_distributed: bool = False,
                 process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, margin=margin, scale=scale, gather_distributed=gather_distributed,
                         process_group=process_group)


# ----------------------------------------------------------------------------- signal-to-noise ratio

def _check_snr_args(*, margin: float, pos_margin: float, normalize: bool, **_: object) -> None:
    check_nonnegative(margin, "margin", "snr_contrastive_loss")
    check_nonnegative(pos_margin, "pos_margin", "snr_contrastive_loss")
    check_flag(normalize, "normalize", "snr_contrastive_loss")


def snr_distance_matrix(x: Tensor, floor: float) -> tuple[Tensor, Tensor]:
    r"""``(N, N)`` SNR distances :math:`\operatorname{Var}(x_j - x_i) / \operatorname{Var}(x_i)` (row
    ``i`` the anchor), from one matrix product of the feature-centred rows: the variance of a row is
    its centred squared norm over ``D - 1``, a factor that cancels in the ratio. Also returns which
    anchors have a signal (centred squared norm above ``floor``); the rows of the others are
    divided by 1 instead, and must be dropped by the caller."""
    c = x - x.mean(1, keepdim=True)
    var = (c * c).sum(1)
    has_signal = var > floor
    var = torch.where(has_signal, var, torch.ones_like(var))
    return distance_matrix(c, c, "squared_euclidean") / var.unsqueeze(1), has_signal


@loss_function
def snr_contrastive_loss(
    embeddings: Tensor,
    target: Tensor,
    /,
    *,
    margin: float = 1.0,
    pos_margin: float = 0.0,
    normalize: bool = False,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Contrastive loss with the signal-to-noise-ratio distance.

    The SNR distance treats the anchor as signal and the difference to the other embedding as
    noise; pairs are then hinged as in the contrastive loss (linear hinges, as in the paper):

    .. math::
        d_{ij} = \frac{\operatorname{Var}(x_j - x_i)}{\operatorname{Var}(x_i)}, \qquad
        \ell_{ij} = [y_i = y_j] \max(0, d_{ij} - m_+) + [y_i \ne y_j] \max(0, m - d_{ij}),
        \qquad U_i = \frac{1}{N-1} \sum_{j \ne i} \ell_{ij}

    with variances over the :math:`D` features. ``pos_margin`` = 0 is the paper.

    Args:
        embeddings: ``(N, D)`` embeddings, ``D >= 2``.
        target: ``(N,)`` integer labels; equal labels make a positive pair.
        margin: :math:`m \ge 0`, the SNR distance negatives are pushed to.
        pos_margin: :math:`m_+ \ge 0`, the SNR distance below which positives cost nothing.
        normalize: Scale embeddings to unit norm first (the distance is not scale-invariant per row).
        gather_distributed: All-gather embeddings and labels over the ranks of ``process_group``
            (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: an anchor ``i`` with a
            signal (the mean of its ``N - 1`` pair terms), so ``"mean"`` is the mean over all
            ordered pairs.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``.
        - output: ``(N,)`` (``(N_global,)`` when gathering) if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``embeddings`` is not ``(N, D)`` or ``target`` not ``(N,)``.
        TypeError: If ``target`` is not an integer tensor or ``normalize`` not a bool.
        ValueError: If a margin is negative.

    Note:
        The distance is asymmetric (the anchor's variance divides). All ``(N, N)`` distances
        come from one matrix product of the feature-centred rows (the variances' ``1/(D-1)``
        cancels). An anchor whose features are (almost) all equal has no signal and an infinite
        SNR distance to everything: when its centred squared norm :math:`\sum_k (x_k - \bar x)^2`
        is at most the input dtype's ``eps`` (1.2e-7 in float32, 9.8e-4 in float16) it gives 0 and
        is left out of ``"mean"``, with zero (finite) gradients, as a zero-norm embedding in
        ``normalize``. A batch of one has no pair and gives 0.0 with zero gradients. The paper's zero-mean
        regulariser :math:`\lambda \sum_i |\sum_k x_{ik}|` is a separate term
        (``lam * x.sum(1).abs().mean()``).

    References:
        Yuan, Chen, Wang, Yu, Shi and Wang, *Signal-To-Noise Ratio: A Robust Distance Metric for Deep
        Metric Learning*, CVPR 2019.

    Examples:
        >>> import torch
        >>> from lossforge.functional import snr_contrastive_loss
        >>> x = torch.tensor([[1.0, 0.0, 2.0], [1.0, 0.5, 2.0], [2.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
        >>> snr_contrastive_loss(x, torch.tensor([0, 0, 1, 1]))
        tensor(0.7966)
    """
    _check_snr_args(margin=margin, pos_margin=pos_margin, normalize=normalize)
    x, y, sample_weight, mask = prepare_labelled(embeddings, target, "snr_contrastive_loss", gather_distributed,
                                                 process_group, sample_weight, mask)
    if normalize:
        x = safe_normalize(x, norm_eps(embeddings.dtype))
    d, has_signal = snr_distance_matrix(x, norm_eps(embeddings.dtype))
    pos, neg = label_masks(y)
    pair = torch.where(pos, F.relu(d - pos_margin), torch.where(neg, F.relu(margin - d), torch.zeros_like(d)))
    n = x.shape[0]
    keep = has_signal & (n > 1)
    u = zero_where(keep, pair.sum(1) / max(n - 1, 1))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=keep,
                       loss_name="snr_contrastive_loss")


class SNRContrastiveLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.snr_contrastive_loss`.

    Args:
        margin, pos_margin, normalize, gather_distributed, process_group, reduction: As in the function.
    """

    function = snr_contrastive_loss
    validate = _check_snr_args

    def __init__(self, *, margin: float = 1.0, pos_margin: float = 0.0, normalize: bool = False,
                 gather_distributed: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, margin=margin, pos_margin=pos_margin, normalize=normalize,
                         gather_distributed=gather_distributed, process_group=process_group)


# ---------------------------------------------------------------------------------------------- FastAP

def _check_bins(num_bins: object, loss: str, low: int) -> None:
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < low:
        raise ValueError(message(loss, "num_bins", f"must be an int >= {low}", repr(num_bins)))


def _check_fast_ap_args(*, num_bins: int, **_: object) -> None:
    _check_bins(num_bins, "fast_ap_loss", 1)


@loss_function
def fast_ap_loss(
    embeddings: Tensor,
    target: Tensor,
    /,
    *,
    num_bins: int = 10,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""FastAP: one minus a differentiable average precision of each anchor's ranking of the batch.

    Each anchor ranks the rest of the batch by squared Euclidean distance between unit-normalised
    embeddings (in :math:`[0, 4]`); the distances are soft-binned into :math:`L` bins with
    triangular kernels of width :math:`\Delta = 4/L` centred at :math:`z_l = l\Delta`, and AP
    is computed from the histograms:

    .. math::
        h^+_l = \sum_{j \in P(i)} \delta(d_{ij}, z_l), \quad h_l = \sum_{j \ne i} \delta(d_{ij}, z_l),
        \quad H^{(+)}_l = \sum_{k \le l} h^{(+)}_k, \qquad
        U_i = 1 - \frac{1}{|P(i)|} \sum_{l=0}^{L} \frac{h^+_l H^+_l}{H_l}

    with :math:`\delta(d, z) = \max(0, 1 - |d - z| / \Delta)`.

    Args:
        embeddings: ``(N, D)`` embeddings (normalised here).
        target: ``(N,)`` integer labels.
        num_bins: :math:`L \ge 1`, the number of histogram bins (paper: 10).
        gather_distributed: All-gather embeddings and labels over the ranks of ``process_group``
            (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: an anchor with at least one
            positive and one negative; others are left out of ``"mean"``.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``.
        - output: ``(N,)`` (``(N_global,)`` when gathering) if ``reduction="none"``, else ``()``.

    Returns:
        The loss, in ``[0, 1]`` per anchor, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``embeddings`` is not ``(N, D)`` or ``target`` not ``(N,)``.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``num_bins`` is not an int >= 1.

    Note:
        The histograms are ``(N, L + 1)``, formed from an ``(N, N, L + 1)`` tensor of kernel
        weights (no loop over anchors): memory grows with :math:`N^2 L`. A bin with an empty
        cumulative histogram contributes 0 (a guarded division). An anchor without negatives has
        AP 1 and loss 0, one without positives no AP: neither is counted; a batch without any
        anchor left gives 0.0 with zero gradients.

    References:
        Cakir, He, Xia, Kulis and Sclaroff, *Deep Metric Learning to Rank*, CVPR 2019. The authors'
        code: https://github.com/kunhe/FastAP-metric-learning

    Examples:
        >>> import torch
        >>> from lossforge.functional import fast_ap_loss
        >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
        >>> fast_ap_loss(x, torch.tensor([0, 0, 1, 1]))  # every positive ranked first: AP = 1
        tensor(0.)
        >>> fast_ap_loss(x, torch.tensor([0, 1, 0, 1]), reduction="none")
        tensor([0.5000, 0.6667, 0.6667, 0.5000])
    """
    _check_fast_ap_args(num_bins=num_bins)
    x, y, sample_weight, mask = prepare_labelled(embeddings, target, "fast_ap_loss", gather_distributed,
                                                 process_group, sample_weight, mask)
    xn = safe_normalize(x, norm_eps(embeddings.dtype))
    d = distance_matrix(xn, xn, "squared_euclidean")
    pos, neg = label_masks(y)
    delta = 4.0 / num_bins
    centres = torch.arange(num_bins + 1, dtype=d.dtype, device=d.device) * delta
    pulse = F.relu(1.0 - (d.unsqueeze(2) - centres).abs() / delta)  # (N, N, L + 1)
    h_pos = torch.einsum("ij,ijl->il", pos.to(d.dtype), pulse)
    h_all = torch.einsum("ij,ijl->il", (pos | neg).to(d.dtype), pulse)
    cum_pos, cum_all = h_pos.cumsum(1), h_all.cumsum(1)
    filled = cum_all > 0
    precision = torch.where(filled, cum_pos / torch.where(filled, cum_all, torch.ones_like(cum_all)),
                            torch.zeros_like(cum_all))
    n_pos = pos.sum(1)
    valid = (n_pos > 0) & neg.any(1)
    ap = (h_pos * precision).sum(1) / n_pos.clamp_min(1).to(d.dtype)
    u = zero_where(valid, 1.0 - ap)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=valid, loss_name="fast_ap_loss")


class FastAPLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.fast_ap_loss`.

    Args:
        num_bins, gather_distributed, process_group, reduction: As in the function.
    """

    function = fast_ap_loss
    validate = _check_fast_ap_args

    def __init__(self, *, num_bins: int = 10, gather_distributed: bool = False, process_group: Any = None,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, num_bins=num_bins, gather_distributed=gather_distributed,
                         process_group=process_group)


# ------------------------------------------------------------------------------------------- histogram

def _check_histogram_args(*, num_bins: int, **_: object) -> None:
    _check_bins(num_bins, "histogram_loss", 2)


def _soft_histogram(s: Tensor, keep: Tensor, num_bins: int) -> Tensor:
    """Linear-interpolation histogram of the kept entries of ``s`` (in ``[-1, 1]``) on the
    ``num_bins + 1`` nodes ``-1 + r * 2 / num_bins``, normalised to sum to 1 (0 if nothing is kept):
    each value splits between its two neighbouring nodes (the triangular kernel)."""
    pos = (s.clamp(-1.0, 1.0) + 1.0) * (num_bins / 2.0)
    low = torch.nan_to_num(pos.detach().floor(), nan=0.0).clamp(0, num_bins - 1)  # a NaN input stays in frac
    frac = pos - low
    w = keep.to(s.dtype)
    idx = low.long().flatten()
    hist = s.new_zeros(num_bins + 1)
    hist = hist.scatter_add(0, idx, ((1.0 - frac) * w).flatten()).scatter_add(0, idx + 1, (frac * w).flatten())
    return hist / keep.sum().clamp_min(1).to(s.dtype)


@loss_function
def histogram_loss(
    embeddings: Tensor,
    target: Tensor,
    /,
    *,
    num_bins: int = 100,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Histogram loss: the probability that a random negative pair is more similar than a random
    positive pair, estimated from the batch's two similarity histograms.

    The cosine similarities of the positive and of the negative pairs (each unordered pair once)
    are soft-binned on :math:`R = L + 1` nodes :math:`t_r = -1 + r\Delta`, :math:`\Delta = 2/L`,
    with triangular kernels, into normalised histograms :math:`h^+` and :math:`h^-`:

    .. math::
        U = \sum_{r} h^-_r \, \Phi^+_r, \qquad \Phi^+_r = \sum_{q \le r} h^+_q

    Args:
        embeddings: ``(N, D)`` embeddings (normalised here).
        target: ``(N,)`` integer labels.
        num_bins: :math:`L \ge 2`, the number of intervals between the nodes (the paper's
            :math:`R - 1`; pytorch-metric-learning's ``n_bins``; :math:`\Delta = 2/L`).
        gather_distributed: All-gather embeddings and labels over the ranks of ``process_group``
            (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: the batch (the loss
            compares two distributions over all pairs), so ``U`` is a scalar and weights and
            masks must be scalars.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``.
        - output: ``()``.

    Returns:
        The loss, in ``[0, 1]``; float32 for half inputs.

    Raises:
        ShapeError: If ``embeddings`` is not ``(N, D)`` or ``target`` not ``(N,)``.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``num_bins`` is not an int >= 2.

    Note:
        Each similarity adds to its two neighbouring nodes (a scatter-add over the ``(N, N)``
        matrix, no ``(N, N, R)`` tensor); a similarity of exactly :math:`\pm 1` goes to the end
        node. The bin choice is piecewise constant, the split linear, so the gradient is the one
        of the paper. A batch without a positive or without a negative pair gives 0.0 with zero
        gradients.

    References:
        Ustinova and Lempitsky, *Learning Deep Embeddings with Histogram Loss*, NeurIPS 2016.
        https://arxiv.org/abs/1611.00822

    Examples:
        >>> import torch
        >>> from lossforge.functional import histogram_loss
        >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
        >>> histogram_loss(x, torch.tensor([0, 0, 1, 1]), num_bins=10)
        tensor(0.)
        >>> histogram_loss(x, torch.tensor([0, 1, 0, 1]), num_bins=10)
        tensor(0.7500)
    """
    _check_histogram_args(num_bins=num_bins)
    x, y, sample_weight, mask = prepare_labelled(embeddings, target, "histogram_loss", gather_distributed,
                                                 process_group, sample_weight, mask)
    xn = safe_normalize(x, norm_eps(embeddings.dtype))
    s = xn @ xn.T
    pos, neg = label_masks(y)
    upper = torch.ones_like(pos).triu(1)
    pos, neg = pos & upper, neg & upper
    h_pos = _soft_histogram(s, pos, num_bins)
    h_neg = _soft_histogram(s, neg, num_bins)
    valid = pos.any() & neg.any()
    u = zero_where(valid, (h_neg * h_pos.cumsum(0)).sum())
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=valid, loss_name="histogram_loss")


class HistogramLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.histogram_loss`.

    Args:
        num_bins, gather_distributed, process_group, reduction: As in the function.
    """

    function = histogram_loss
    validate = _check_histogram_args

    def __init__(self, *, num_bins: int = 100, gather_distributed: bool = False, process_group: Any = None,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, num_bins=num_bins, gather_distributed=gather_distributed,
                         process_group=process_group)


# ------------------------------------------------------------------------------------------ registration

def _args() -> tuple[Tensor, Tensor]:
    """Embeddings and labels for the bad-input samples (made when the samples are asked for)."""
    return torch.randn(4, 3), torch.tensor([0, 1, 0, 1])


def _extra_samples(**extra: dict[str, Any]) -> Any:
    """:func:`label_samples` plus one sample per keyword set in ``extra`` (uneven classes)."""

    def samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        g = generator(21)
        x = randn(10, 4, gen=g, dtype=dtype, device=device)
        t = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3], device=device)
        return [*label_samples(dtype, device),
                *(Sample((x, t), kw, name=name, plain=False) for name, kw in extra.items())]

    return samples


register_loss(
    name="nca", function=nca_loss, module=NCALoss, family="metric",
    input_kind="embeddings", target_kind="labels", unit="anchor with a positive and a negative",
    reference="Goldberger et al., NeurIPS 2004, https://www.cs.toronto.edu/~hinton/absps/nca.pdf",
    sample_inputs=_extra_samples(cosine={"distance": "cosine", "temperature": 0.1},
                                 normalized={"normalize": True, "distance": "euclidean"}),
    error_inputs=lambda: label_errors("nca_loss", extra=[
        *hyper_error(_args(), {"temperature": 0.0}, ValueError, r"nca_loss: temperature must be > 0, got 0.0"),
        *hyper_error(_args(), {"distance": "euclidian"}, ValueError, r"distance must be one of .* Did you mean"),
    ]),
    extreme_inputs=lambda dtype, device: [*label_extremes(dtype, device),
                                          *label_extremes(dtype, device, temperature=0.01, normalize=True)],
    separable=False, differentiable_args=(0,),
)

register_loss(
    name="angular", function=angular_loss, module=AngularLoss, family="metric",
    input_kind="embeddings", target_kind="labels", unit="anchor (sum over its positive pairs)",
    reference="Wang et al., ICCV 2017, arXiv:1708.01682",
    sample_inputs=_extra_samples(wide={"alpha": 60.0}, narrow={"alpha": 20.0}),
    error_inputs=lambda: label_errors("angular_loss", extra=[
        *hyper_error(_args(), {"alpha": 75.0}, ValueError, r"angular_loss: alpha must be in \(0, 60\], got 75.0"),
        *hyper_error(_args(), {"alpha": 0.0}, ValueError, r"angular_loss: alpha must be in \(0, 60\], got 0.0"),
    ]),
    extreme_inputs=lambda dtype, device: [*label_extremes(dtype, device),
                                          *label_extremes(dtype, device, alpha=60.0)],
    separable=False, differentiable_args=(0,),
)

register_loss(
    name="tuplet_margin", function=tuplet_margin_loss, module=TupletMarginLoss, family="metric",
    input_kind="embeddings", target_kind="labels", unit="anchor (sum over its positive pairs)",
    reference="Yu and Tao, ICCV 2019, arXiv:1812.04120",
    sample_inputs=_extra_samples(small={"scale": 8.0, "margin": 0.3}),
    error_inputs=lambda: label_errors("tuplet_margin_loss", extra=[
        *hyper_error(_args(), {"margin": 2.0}, ValueError, r"tuplet_margin_loss: margin must be in \[0, 1.5708\]"),
        *hyper_error(_args(), {"scale": -1.0}, ValueError, r"tuplet_margin_loss: scale must be > 0, got -1.0"),
    ]),
    extreme_inputs=label_extremes, separable=False, differentiable_args=(0,),
)

register_loss(
    name="snr_contrastive", function=snr_contrastive_loss, module=SNRContrastiveLoss, family="metric",
    input_kind="embeddings", target_kind="labels", unit="anchor with a signal (mean of its N-1 pair terms)",
    reference="Yuan et al., CVPR 2019 (Signal-To-Noise Ratio: A Robust Distance Metric for DML)",
    sample_inputs=_extra_samples(margins={"margin": 2.0, "pos_margin": 0.3}, normalized={"normalize": True}),
    error_inputs=lambda: label_errors("snr_contrastive_loss", extra=[
        *hyper_error(_args(), {"margin": -1.0}, ValueError, r"snr_contrastive_loss: margin must be >= 0, got -1.0"),
    ]),
    extreme_inputs=label_extremes, separable=False, differentiable_args=(0,),
)

register_loss(
    name="fast_ap", function=fast_ap_loss, module=FastAPLoss, family="metric",
    input_kind="embeddings", target_kind="labels", unit="anchor with a positive and a negative",
    reference="Cakir et al., CVPR 2019 (Deep Metric Learning to Rank)",
    sample_inputs=_extra_samples(fine={"num_bins": 40}, coarse={"num_bins": 1}),
    error_inputs=lambda: label_errors("fast_ap_loss", extra=[
        *hyper_error(_args(), {"num_bins": 0}, ValueError, r"fast_ap_loss: num_bins must be an int >= 1, got 0"),
        *hyper_error(_args(), {"num_bins": 2.5}, ValueError, r"fast_ap_loss: num_bins must be an int >= 1, got 2.5"),
    ]),
    extreme_inputs=label_extremes, separable=False, differentiable_args=(0,),
)


def _histogram_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    """Layouts without per-anchor weights (the unit is the batch)."""
    g = generator(23)
    x = randn(8, 5, gen=g, dtype=dtype, device=device)
    uneven = randn(10, 4, gen=g, dtype=dtype, device=device)
    uneven_t = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3], device=device)
    return [
        Sample((x, pair_labels(4, device)), {}, name="pairs"),
        Sample((uneven, uneven_t), {}, name="uneven classes", plain=False),
        Sample((uneven, uneven_t), {"num_bins": 10}, name="coarse", plain=False),
    ]


register_loss(
    name="histogram", function=histogram_loss, module=HistogramLoss, family="metric",
    input_kind="embeddings", target_kind="labels", unit="batch (scalar)",
    reference="Ustinova and Lempitsky, NeurIPS 2016, arXiv:1611.00822",
    sample_inputs=_histogram_samples,
    error_inputs=lambda: label_errors("histogram_loss", extra=[
        *hyper_error(_args(), {"num_bins": 1}, ValueError, r"histogram_loss: num_bins must be an int >= 2, got 1"),
    ]),
    extreme_inputs=label_extremes, separable=False, differentiable_args=(0,),
)
