"""Self-supervised and softmax-contrastive losses: InfoNCE, NT-Xent (SimCLR), SupCon, CLIP,
Barlow Twins, VICReg.

NT-Xent, InfoNCE and SupCon share one fused kernel (:class:`SoftmaxPairTerms`): per anchor, the
log-sum-exp over its negatives (or over all other samples) and the positive terms, from one
``(N, M)`` similarity matrix that is recomputed in the backward instead of being kept. This is an
exact O(N^2) reformulation of the per-positive-pair softmax (pytorch-metric-learning builds
``[positive pairs x negative pairs]`` masks instead, O(N^4) for unbalanced labels).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._core.base import FunctionLoss, loss_function, refuse_unexpected
from .._core.checks import check_number, upcast
from .._core.errors import ShapeError, message
from .._core.reduction import Reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, randn
from ._metric_ops import (
    check_embeddings,
    check_flag,
    check_labels,
    check_nonnegative,
    check_positive,
    check_views,
    gather_rows,
    gather_unit_args,
    label_masks,
    label_samples,
    norm_eps,
    safe_normalize,
    softmax_pair_terms,
)
from ._metric_pairs import hyper_error, label_errors, label_extremes, prepare_labelled

__all__ = [
    "BarlowTwinsLoss",
    "CLIPLoss",
    "InfoNCELoss",
    "NTXentLoss",
    "SupConLoss",
    "VICRegLoss",
    "barlow_twins_loss",
    "clip_loss",
    "info_nce_loss",
    "ntxent_loss",
    "supcon_loss",
    "vicreg_loss",
]


# -------------------------------------------------------------------------------------------- NT-Xent

def _check_temperature(loss: str, *, temperature: float, **_: object) -> None:
    check_positive(temperature, "temperature", loss)


def _check_ntxent_args(**kw: Any) -> None:
    _check_temperature("ntxent_loss", **kw)


@loss_function
def ntxent_loss(
    embeddings: Tensor,
    target: Tensor,
    /,
    *,
    temperature: float = 0.07,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""NT-Xent (normalised temperature-scaled cross-entropy), the SimCLR loss, with labels.

    Every pair of samples with the same label is a positive pair; every pair with different
    labels is a negative pair. Each positive pair :math:`(a, p)` is a softmax over :math:`p` and
    the negatives of :math:`a`, on cosine similarities divided by the temperature:

    .. math::
        \ell_{ap} = -\log \frac{e^{s_{ap}/\tau}}{e^{s_{ap}/\tau} + \sum_{n \in N(a)} e^{s_{an}/\tau}}
                  = \operatorname{softplus}\Big(\operatorname{LSE}_{n \in N(a)} \frac{s_{an}}{\tau}
                    - \frac{s_{ap}}{\tau}\Big),
        \qquad U_a = \sum_{p \in P(a)} \ell_{ap}

    For SimCLR's two augmented views ``z1, z2`` of ``B`` images, pass
    ``embeddings = torch.cat([z1, z2])`` and ``target = torch.arange(B).repeat(2)``.

    Args:
        embeddings: ``(N, D)`` embeddings (normalised here).
        target: ``(N,)`` integer labels.
        temperature: :math:`\tau > 0`.
        gather_distributed: All-gather embeddings and labels over the ranks of ``process_group``
            (gradients flow back to each rank's own rows), so negatives come from every rank. A no-op
            when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: an anchor (the sum over its
            positive pairs); ``"mean"`` divides by the weighted number of positive pairs, i.e. it
            is the mean over positive pairs, as pytorch-metric-learning's ``NTXentLoss``.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``.
        - output: ``(N,)`` (``(N_global,)`` when gathering) if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``embeddings`` is not ``(N, D)`` or ``target`` not ``(N,)``.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``temperature`` is not positive.

    Note:
        Exact and O(N^2) in time and memory: one similarity matrix, a masked log-sum-exp per
        anchor, and a fused backward that recomputes the matrix instead of storing it (n = 4096
        needs a few ``(n, n)`` float32 matrices). A positive pair without negatives (all labels
        equal) costs 0; a batch without positive pairs (all labels distinct, or one sample) gives
        0.0 with zero gradients. Zero-norm embeddings are finite in every dtype. With
        ``gather_distributed=True`` every rank returns the same global loss; multiply it by the
        world size under DDP (which averages gradients) to train as one process on the whole batch.

    References:
        Chen, Kornblith, Norouzi and Hinton, *A Simple Framework for Contrastive Learning of
        Visual Representations* (SimCLR), ICML 2020. https://arxiv.org/abs/2002.05709

    Examples:
        >>> import torch
        >>> from lossforge.functional import ntxent_loss
        >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
        >>> ntxent_loss(x, torch.tensor([0, 0, 1, 1]), temperature=0.5)
        tensor(0.4302)
        >>> ntxent_loss(torch.cat([x, x + 0.1]), torch.arange(4).repeat(2), temperature=0.5)  # SimCLR views
        tensor(1.1745)
    """
    _check_ntxent_args(temperature=temperature)
    x, y, sample_weight, mask = prepare_labelled(embeddings, target, "ntxent_loss", gather_distributed,
                                                 process_group, sample_weight, mask)
    xn = safe_normalize(x, norm_eps(embeddings.dtype))
    pos, neg = label_masks(y)
    u = softmax_pair_terms(xn, xn, pos, neg, 1.0 / temperature, "pairs")
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask,
                       mean_weight=pos.sum(1).to(u.dtype), loss_name="ntxent_loss")


class NTXentLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.ntxent_loss`.

    Args:
        temperature, gather_distributed, process_group, reduction: As in the function.
    """

    function = ntxent_loss
    validate = _check_ntxent_args

    def __init__(self, *, temperature: float = 0.07, gather_distributed: bool = False, process_group: Any = None,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, temperature=temperature, gather_distributed=gather_distributed,
                         process_group=process_group)


# ------------------------------------------------------------------------------------------- InfoNCE

def _check_info_nce_args(**kw: Any) -> None:
    _check_temperature("info_nce_loss", **kw)


@loss_function
def info_nce_loss(
    query: Tensor,
    key: Tensor,
    /,
    *,
    temperature: float = 0.07,
    labels: Tensor | None = None,
    negative_keys: Tensor | None = None,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""InfoNCE between two views: each query must pick its own key among the keys of the batch.

    Query :math:`q_i` and key :math:`k_i` are two views of sample :math:`i`; the other keys (and
    ``negative_keys``, e.g. a MoCo queue) are its negatives. With ``labels``, every key with the
    query's label is a positive and the others are negatives.

    .. math::
        U_i = \sum_{p \in P(i)} -\log \frac{e^{s(q_i, k_p)/\tau}}{e^{s(q_i, k_p)/\tau}
              + \sum_{n \in N(i)} e^{s(q_i, k_n)/\tau}}

    with :math:`s` the cosine similarity. Without labels :math:`P(i) = \{i\}` and this is the
    cross-entropy of the logits ``q k^T / tau`` with targets ``arange(N)``.

    Args:
        query: ``(N, D)`` first view (normalised here).
        key: ``(N, D)`` second view (normalised here).
        temperature: :math:`\tau > 0`.
        labels: Optional ``(N,)`` integer labels shared by query ``i`` and key ``i``.
        negative_keys: Optional ``(M, D)`` extra negatives for every query (not gathered).
        gather_distributed: All-gather queries, keys and labels over the ranks of ``process_group``
            (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: a query (the sum over its
            positive keys); ``"mean"`` divides by the weighted number of (query, positive key) pairs.

    Shape:
        - query, key: ``(N, D)``; labels: ``(N,)``; negative_keys: ``(M, D)``.
        - output: ``(N,)`` (``(N_global,)`` when gathering) if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If the views differ in shape or are not ``(N, D)``, or ``negative_keys`` has
            another embedding size.
        TypeError: If ``labels`` is not an integer tensor.
        ValueError: If ``temperature`` is not positive.

    Note:
        Unlike :func:`ntxent_loss` on ``cat([q, k])``, the negatives of a query are keys only
        (CPC/MoCo's form, one direction). Same fused O(N^2) kernel as :func:`ntxent_loss`. A query
        without negatives costs 0; a batch of one with no ``negative_keys`` gives 0.0.

    References:
        van den Oord, Li and Vinyals, *Representation Learning with Contrastive Predictive Coding*,
        2018. https://arxiv.org/abs/1807.03748 ; He et al., *Momentum Contrast* (MoCo), CVPR 2020.
        https://arxiv.org/abs/1911.05722

    Examples:
        >>> import torch
        >>> from lossforge.functional import info_nce_loss
        >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.2]])
        >>> k = torch.tensor([[0.9, 0.1], [0.2, 1.0], [-1.0, -0.3]])
        >>> info_nce_loss(q, k, temperature=0.5)
        tensor(0.2025)
    """
    _check_info_nce_args(temperature=temperature)
    q, k = check_views(query, key, "info_nce_loss", ("query", "key"))
    check_flag(gather_distributed, "gather_distributed", "info_nce_loss")
    if labels is not None:
        check_labels(labels, q, "info_nce_loss", argument="labels")
    extra = None
    extra_eps = 0.0
    if negative_keys is not None:
        extra_eps = norm_eps(negative_keys.dtype)
        extra = upcast(check_embeddings(negative_keys, "negative_keys", "info_nce_loss"))
        if extra.shape[1] != q.shape[1] or extra.device != q.device:
            raise ShapeError(message("info_nce_loss", "negative_keys", f"must have shape (M, {q.shape[1]}) on "
                                     f"{q.device}", f"{tuple(extra.shape)} on {extra.device}"),
                             expected=("M", q.shape[1]), actual=tuple(extra.shape))
    n_local = q.shape[0]
    q = gather_rows(upcast(q), gather_distributed, process_group)
    k = gather_rows(upcast(k), gather_distributed, process_group)
    sample_weight, mask = gather_unit_args(sample_weight, mask, n_local, gather_distributed, process_group)
    if labels is None:
        pos = torch.eye(q.shape[0], dtype=torch.bool, device=q.device)
    else:
        lab = gather_rows(labels, gather_distributed, process_group)
        pos = label_masks(lab, lab)[0]
    neg = ~pos
    eps = norm_eps(query.dtype)
    keys = safe_normalize(k, norm_eps(key.dtype))
    if extra is not None:
        keys = torch.cat([keys, safe_normalize(extra, extra_eps)])
        pad = torch.zeros(q.shape[0], extra.shape[0], dtype=torch.bool, device=q.device)
        pos, neg = torch.cat([pos, pad], 1), torch.cat([neg, ~pad], 1)
    u = softmax_pair_terms(safe_normalize(q, eps), keys, pos, neg, 1.0 / temperature, "pairs")
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask,
                       mean_weight=pos.sum(1).to(u.dtype), loss_name="info_nce_loss")


class InfoNCELoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.info_nce_loss`.

    Args:
        temperature, gather_distributed, process_group, reduction: As in the function.
        (``labels`` and ``negative_keys`` are given at call time, as keywords.)
    """

    function = info_nce_loss
    validate = _check_info_nce_args

    def __init__(self, *, temperature: float = 0.07, gather_distributed: bool = False, process_group: Any = None,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, temperature=temperature, gather_distributed=gather_distributed,
                         process_group=process_group)

    def forward(self, query: Tensor, key: Tensor, *, labels: Tensor | None = None,  # type: ignore[override]
                negative_keys: Tensor | None = None, sample_weight: Tensor | None = None,
                mask: Tensor | None = None, **unexpected: Any) -> Tensor:
        refuse_unexpected(type(self).__name__, unexpected, ("labels", "negative_keys", "sample_weight", "mask"))
        return info_nce_loss(query, key, **self.hparams(), labels=labels, negative_keys=negative_keys,
                             reduction=self.reduction, sample_weight=sample_weight, mask=mask)


# -------------------------------------------------------------------------------------------- SupCon

def _check_supcon_args(**kw: Any) -> None:
    _check_temperature("supcon_loss", **kw)


@loss_function
def supcon_loss(
    embeddings: Tensor,
    target: Tensor,
    /,
    *,
    temperature: float = 0.1,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Supervised contrastive loss (SupCon, :math:`\mathcal{L}^{sup}_{out}`).

    Each anchor averages the log-probability of its positives under a softmax over all other
    samples of the batch:

    .. math::
        U_a = -\frac{1}{|P(a)|} \sum_{p \in P(a)} \log
              \frac{e^{s_{ap}/\tau}}{\sum_{k \ne a} e^{s_{ak}/\tau}}

    with :math:`s` the cosine similarity. For several views per image, concatenate them and
    repeat the labels.

    Args:
        embeddings: ``(N, D)`` embeddings (normalised here).
        target: ``(N,)`` integer labels.
        temperature: :math:`\tau > 0` (paper: 0.1).
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
        ValueError: If ``temperature`` is not positive.

    Note:
        Same fused O(N^2) kernel as :func:`ntxent_loss`; with exactly one positive per anchor
        (SimCLR's layout) the two losses are equal. An anchor needs a positive and a negative
        to count: a batch with all labels distinct, all labels equal, or one sample gives 0.0 with
        zero gradients (the formula alone would give :math:`\log |P(a)|` without negatives).

    References:
        Khosla et al., *Supervised Contrastive Learning*, NeurIPS 2020.
        https://arxiv.org/abs/2004.11362

    Examples:
        >>> import torch
        >>> from lossforge.functional import supcon_loss
        >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
        >>> supcon_loss(x, torch.tensor([0, 0, 1, 1]), temperature=0.5)
        tensor(0.4302)
    """
    _check_supcon_args(temperature=temperature)
    x, y, sample_weight, mask = prepare_labelled(embeddings, target, "supcon_loss", gather_distributed,
                                                 process_group, sample_weight, mask)
    xn = safe_normalize(x, norm_eps(embeddings.dtype))
    pos, neg = label_masks(y)
    u = softmax_pair_terms(xn, xn, pos, pos | neg, 1.0 / temperature, "supcon")
    keep = pos.any(1) & neg.any(1)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=keep, loss_name="supcon_loss")


class SupConLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.supcon_loss`.

    Args:
        temperature, gather_distributed, process_group, reduction: As in the function.
    """

    function = supcon_loss
    validate = _check_supcon_args

    def __init__(self, *, temperature: float = 0.1, gather_distributed: bool = False, process_group: Any = None,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, temperature=temperature, gather_distributed=gather_distributed,
                         process_group=process_group)


# ----------------------------------------------------------------------------------------------- CLIP

def _check_clip_args(*, max_scale: float, **_: object) -> None:
    check_positive(max_scale, "max_scale", "clip_loss")


@loss_function
def clip_loss(
    image_embeddings: Tensor,
    text_embeddings: Tensor,
    logit_scale: Tensor | float,
    /,
    *,
    max_scale: float = 100.0,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""CLIP's symmetric image-text contrastive loss with a learnable temperature.

    Image :math:`i` must pick text :math:`i` among the batch's texts, and text :math:`i` image
    :math:`i`, with logits :math:`L = e^{t}\, \hat I \hat T^\top` (cosine similarities times the
    learned scale :math:`e^t`, capped at ``max_scale``):

    .. math::
        U_i = \tfrac12 \Big(-\log \operatorname{softmax}(L_{i,:})_i - \log \operatorname{softmax}(L_{:,i})_i\Big)

    Args:
        image_embeddings: ``(N, D)`` image embeddings (normalised here).
        text_embeddings: ``(N, D)`` text embeddings (normalised here).
        logit_scale: :math:`t`, the log of the inverse temperature (CLIP's ``logit_scale``
            parameter, initialised to ``log(1 / 0.07)``); a scalar tensor (learnable) or a float.
        max_scale: Cap on :math:`e^t` (CLIP: 100); above it the scale gets no gradient.
        gather_distributed: All-gather both embeddings over the ranks of ``process_group``
            (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: an image-text pair.

    Shape:
        - image_embeddings, text_embeddings: ``(N, D)``; logit_scale: ``()``.
        - output: ``(N,)`` (``(N_global,)`` when gathering) if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If the embeddings differ in shape or are not ``(N, D)``, or ``logit_scale``
            is not a scalar.
        ValueError: If ``max_scale`` is not positive.

    Note:
        Log-softmax over rows and columns: finite for any scale. With ``gather_distributed=True``
        every rank returns the same global loss; the encoders' gradients are then 1/W of the
        single-process ones after DDP's averaging (multiply the loss by W), while ``logit_scale``,
        which sees the whole batch on every rank, already gets the full gradient (divide its
        gradient by W if the loss is multiplied by W).

    References:
        Radford et al., *Learning Transferable Visual Models From Natural Language Supervision*
        (CLIP), ICML 2021. https://arxiv.org/abs/2103.00020

    Examples:
        >>> import math, torch
        >>> from lossforge.functional import clip_loss
        >>> img = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.2]])
        >>> txt = torch.tensor([[0.9, 0.1], [0.2, 1.0], [-1.0, -0.3]])
        >>> clip_loss(img, txt, math.log(2.0))
        tensor(0.1994)
    """
    _check_clip_args(max_scale=max_scale)
    img, txt = check_views(image_embeddings, text_embeddings, "clip_loss", ("image_embeddings", "text_embeddings"))
    check_flag(gather_distributed, "gather_distributed", "clip_loss")
    img, txt = upcast(img), upcast(txt)
    if isinstance(logit_scale, Tensor):
        if not logit_scale.is_floating_point():
            raise TypeError(message("clip_loss", "logit_scale", "must be a floating-point scalar tensor or a float",
                                    f"dtype {logit_scale.dtype}"))
        if logit_scale.numel() != 1:
            raise ShapeError(message("clip_loss", "logit_scale", "must be a scalar tensor", tuple(logit_scale.shape)),
                             expected=(), actual=tuple(logit_scale.shape))
        t = upcast(logit_scale.reshape(())).to(device=img.device, dtype=img.dtype)
    else:
        t = torch.tensor(check_number(logit_scale, "logit_scale", "clip_loss"), dtype=img.dtype, device=img.device)
    scale = torch.exp(torch.clamp(t, max=math.log(max_scale)))
    n_local = img.shape[0]
    img = safe_normalize(gather_rows(img, gather_distributed, process_group), norm_eps(image_embeddings.dtype))
    txt = safe_normalize(gather_rows(txt, gather_distributed, process_group), norm_eps(text_embeddings.dtype))
    sample_weight, mask = gather_unit_args(sample_weight, mask, n_local, gather_distributed, process_group)
    logits = scale * (img @ txt.T)
    idx = torch.arange(img.shape[0], device=img.device)
    u = 0.5 * (F.cross_entropy(logits, idx, reduction="none") + F.cross_entropy(logits.T, idx, reduction="none"))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="clip_loss")


class CLIPLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.clip_loss`; owns the learnable ``logit_scale``.

    Args:
        temperature: Initial temperature; ``logit_scale`` starts at ``log(1 / temperature)`` (CLIP: 0.07).
        learnable: Make ``logit_scale`` an ``nn.Parameter`` (else a buffer).
        max_scale, gather_distributed, process_group, reduction: As in the function.
    """

    function = clip_loss
    validate = _check_clip_args

    def __init__(self, *, temperature: float = 0.07, learnable: bool = True, max_scale: float = 100.0,
                 gather_distributed: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        check_positive(temperature, "temperature", "CLIPLoss")
        check_flag(learnable, "learnable", "CLIPLoss")
        super().__init__(reduction=reduction, max_scale=max_scale, gather_distributed=gather_distributed,
                         process_group=process_group)
        init = torch.tensor(math.log(1.0 / temperature))
        if learnable:
            self.logit_scale = nn.Parameter(init)
        else:
            self.register_buffer("logit_scale", init)

    def forward(self, image_embeddings: Tensor, text_embeddings: Tensor, *,  # type: ignore[override]
                sample_weight: Tensor | None = None, mask: Tensor | None = None, **unexpected: Any) -> Tensor:
        return super().forward(image_embeddings, text_embeddings, self.logit_scale, sample_weight=sample_weight,
                               mask=mask, **unexpected)


# ---------------------------------------------------------------------------------------- Barlow Twins

def _check_barlow_args(*, lambda_: float, **_: object) -> None:
    check_nonnegative(lambda_, "lambda_", "barlow_twins_loss")


def _too_small(a: Tensor, b: Tensor) -> Tensor:
    """0.0 connected to both inputs' graphs (batch statistics need two samples)."""
    return (a.sum() + b.sum()) * 0.0


@loss_function
def barlow_twins_loss(
    embeddings_a: Tensor,
    embeddings_b: Tensor,
    /,
    *,
    lambda_: float = 5.1e-3,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Barlow Twins: the cross-correlation of two views' features should be the identity.

    .. math::
        \mathcal{L} = \sum_i (1 - C_{ii})^2 + \lambda \sum_i \sum_{j \ne i} C_{ij}^2,
        \qquad C = \frac{1}{N} \tilde A^\top \tilde B

    where :math:`\tilde A, \tilde B` are the views standardised per feature over the batch
    (mean 0, biased variance 1, eps 1e-5, as a BatchNorm without affine parameters).

    Args:
        embeddings_a: ``(N, D)`` first view.
        embeddings_b: ``(N, D)`` second view.
        lambda_: :math:`\lambda \ge 0`, weight of the off-diagonal (redundancy) terms (paper: 5.1e-3).
        gather_distributed: All-gather both views over the ranks of ``process_group`` before the
            statistics (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: the batch (the loss couples
            every sample and feature), so ``U`` is a scalar and weights and masks must be scalars.

    Shape:
        - embeddings_a, embeddings_b: ``(N, D)``.
        - output: ``()``.

    Returns:
        The loss; float32 for half inputs.

    Raises:
        ShapeError: If the views differ in shape or are not ``(N, D)``.
        ValueError: If ``lambda_`` is negative.

    Note:
        Batch statistics need two samples: a batch of fewer than two gives 0.0 with zero
        gradients. A constant feature has zero variance; the eps keeps it finite.

    References:
        Zbontar, Jing, Misra, LeCun and Deny, *Barlow Twins: Self-Supervised Learning via Redundancy
        Reduction*, ICML 2021. https://arxiv.org/abs/2103.03230

    Examples:
        >>> import torch
        >>> from lossforge.functional import barlow_twins_loss
        >>> a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5], [0.5, -1.0]])
        >>> barlow_twins_loss(a, a + 0.1 * a.flip(0))
        tensor(0.0032)
    """
    _check_barlow_args(lambda_=lambda_)
    a, b = check_views(embeddings_a, embeddings_b, "barlow_twins_loss", ("embeddings_a", "embeddings_b"))
    check_flag(gather_distributed, "gather_distributed", "barlow_twins_loss")
    a = gather_rows(upcast(a), gather_distributed, process_group)
    b = gather_rows(upcast(b), gather_distributed, process_group)
    n = a.shape[0]
    if n < 2:
        return reduce_loss(_too_small(a, b), reduction, sample_weight=sample_weight, mask=mask,
                           loss_name="barlow_twins_loss")

    def standardise(z: Tensor) -> Tensor:
        centred = z - z.mean(0)
        return centred / torch.sqrt((centred * centred).mean(0) + 1e-5)

    c = standardise(a).T @ standardise(b) / n
    diag = torch.diagonal(c)
    off = (c * c).sum() - (diag * diag).sum()
    u = ((1.0 - diag) ** 2).sum() + lambda_ * off
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="barlow_twins_loss")


class BarlowTwinsLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.barlow_twins_loss`.

    Args:
        lambda_, gather_distributed, process_group, reduction: As in the function.
    """

    function = barlow_twins_loss
    validate = _check_barlow_args

    def __init__(self, *, lambda_: float = 5.1e-3, gather_distributed: bool = False, process_group: Any = None,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, lambda_=lambda_, gather_distributed=gather_distributed,
                         process_group=process_group)


# --------------------------------------------------------------------------------------------- VICReg

def _check_vicreg_args(*, invariance_weight: float, variance_weight: float, covariance_weight: float,
                       gamma: float, eps: float, **_: object) -> None:
    check_nonnegative(invariance_weight, "invariance_weight", "vicreg_loss")
    check_nonnegative(variance_weight, "variance_weight", "vicreg_loss")
    check_nonnegative(covariance_weight, "covariance_weight", "vicreg_loss")
    check_positive(gamma, "gamma", "vicreg_loss")
    check_positive(eps, "eps", "vicreg_loss")


@loss_function
def vicreg_loss(
    embeddings_a: Tensor,
    embeddings_b: Tensor,
    /,
    *,
    invariance_weight: float = 25.0,
    variance_weight: float = 25.0,
    covariance_weight: float = 1.0,
    gamma: float = 1.0,
    eps: float = 1e-4,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""VICReg: variance-invariance-covariance regularisation of two views.

    .. math::
        \mathcal{L} = \lambda\, s(A, B) + \mu\, \tfrac12 [v(A) + v(B)] + \nu\, [c(A) + c(B)]

    with :math:`s` the mean squared difference over samples and features,
    :math:`v(Z) = \frac1D \sum_j \max(0, \gamma - \sqrt{\operatorname{Var}(Z_{:,j}) + \epsilon})`
    (unbiased variance) and :math:`c(Z) = \frac1D \sum_{i \ne j} \operatorname{Cov}(Z)_{ij}^2`,
    as in the authors' code.

    Args:
        embeddings_a: ``(N, D)`` first view.
        embeddings_b: ``(N, D)`` second view.
        invariance_weight: :math:`\lambda \ge 0` (paper: 25).
        variance_weight: :math:`\mu \ge 0` (paper: 25).
        covariance_weight: :math:`\nu \ge 0` (paper: 1).
        gamma: :math:`\gamma > 0`, the target standard deviation (paper: 1).
        eps: :math:`\epsilon > 0` inside the square root (paper: 1e-4).
        gather_distributed: All-gather both views over the ranks of ``process_group`` before the
            statistics (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: the batch (``U`` is a scalar).

    Shape:
        - embeddings_a, embeddings_b: ``(N, D)``.
        - output: ``()``.

    Returns:
        The loss; float32 for half inputs.

    Raises:
        ShapeError: If the views differ in shape or are not ``(N, D)``.
        ValueError: If a weight is negative or ``gamma``/``eps`` not positive.

    Note:
        The unbiased variance needs two samples: a batch of fewer than two gives 0.0 with zero
        gradients. pytorch-metric-learning's ``VICRegLoss`` computes the same terms.

    References:
        Bardes, Ponce and LeCun, *VICReg: Variance-Invariance-Covariance Regularization for
        Self-Supervised Learning*, ICLR 2022. https://arxiv.org/abs/2105.04906

    Examples:
        >>> import torch
        >>> from lossforge.functional import vicreg_loss
        >>> a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.5], [0.5, -1.0]])
        >>> vicreg_loss(a, a + 0.1 * a.flip(0))
        tensor(3.6629)
    """
    _check_vicreg_args(invariance_weight=invariance_weight, variance_weight=variance_weight,
                       covariance_weight=covariance_weight, gamma=gamma, eps=eps)
    a, b = check_views(embeddings_a, embeddings_b, "vicreg_loss", ("embeddings_a", "embeddings_b"))
    check_flag(gather_distributed, "gather_distributed", "vicreg_loss")
    a = gather_rows(upcast(a), gather_distributed, process_group)
    b = gather_rows(upcast(b), gather_distributed, process_group)
    n, dim = a.shape
    if n < 2:
        return reduce_loss(_too_small(a, b), reduction, sample_weight=sample_weight, mask=mask,
                           loss_name="vicreg_loss")
    invariance = ((a - b) ** 2).mean()

    def variance_and_covariance(z: Tensor) -> tuple[Tensor, Tensor]:
        centred = z - z.mean(0)
        cov = centred.T @ centred / (n - 1)
        diag = torch.diagonal(cov)
        std = torch.sqrt(diag + eps)
        return F.relu(gamma - std).mean(), ((cov * cov).sum() - (diag * diag).sum()) / dim

    va, ca = variance_and_covariance(a)
    vb, cb = variance_and_covariance(b)
    u = invariance_weight * invariance + variance_weight * 0.5 * (va + vb) + covariance_weight * (ca + cb)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="vicreg_loss")


class VICRegLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.vicreg_loss`.

    Args:
        invariance_weight, variance_weight, covariance_weight, gamma, eps, gather_distributed,
        process_group, reduction: As in the function.
    """

    function = vicreg_loss
    validate = _check_vicreg_args

    def __init__(self, *, invariance_weight: float = 25.0, variance_weight: float = 25.0,
                 covariance_weight: float = 1.0, gamma: float = 1.0, eps: float = 1e-4,
                 gather_distributed: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, invariance_weight=invariance_weight, variance_weight=variance_weight,
                         covariance_weight=covariance_weight, gamma=gamma, eps=eps,
                         gather_distributed=gather_distributed, process_group=process_group)


# ------------------------------------------------------------------------------------------ registration

def _view_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(5)
    a = randn(8, 5, gen=g, dtype=dtype, device=device)
    b = a + 0.3 * randn(8, 5, gen=g, dtype=dtype, device=device)
    a2 = randn(12, 3, gen=g, dtype=dtype, device=device)
    b2 = randn(12, 3, gen=g, dtype=dtype, device=device)
    return [Sample((a, b), name="two views"), Sample((a2, b2), name="independent views")]


def _info_nce_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    samples = _view_samples(dtype, device)
    g = generator(6)
    a, b = samples[0].args
    w = (torch.rand(8, generator=g, dtype=torch.float64) + 0.5).to(device=device, dtype=torch.float32)
    labels = torch.tensor([0, 1, 1, 2, 3, 3, 3, 4], device=device)
    negs = randn(5, 5, gen=g, dtype=dtype, device=device)
    return [
        *samples,
        Sample((a, b), {"labels": labels}, name="labels", plain=False),
        Sample((a, b), {"negative_keys": negs, "temperature": 0.2}, name="negative_keys"),
        Sample((a, b), {"sample_weight": w}, name="sample_weight", plain=False),
    ]


def _clip_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    samples = _view_samples(dtype, device)
    scale = torch.tensor(math.log(1 / 0.07), dtype=dtype, device=device)
    return [Sample((*s.args, scale), name=s.name) for s in samples] + [
        Sample((*samples[0].args, torch.tensor(6.0, dtype=dtype, device=device)), name="scale above the cap"),
    ]


def _view_errors(loss: str, names: tuple[str, str], extra_args: tuple[Any, ...] = (),
                 extra: list[ErrorSample] | None = None) -> list[ErrorSample]:
    a = torch.randn(4, 3)
    return [
        ErrorSample((a, a[:3], *extra_args), {}, ValueError,
                    rf"{loss}: {names[1]} must have the shape of {names[0]} \(4, 3\), got \(3, 3\)"),
        ErrorSample((a[0], a[0], *extra_args), {}, ValueError, rf"{loss}: {names[0]} must have shape \(N, D\)"),
        ErrorSample((a.long(), a, *extra_args), {}, TypeError, rf"{loss}: {names[0]} must be a floating-point tensor"),
        ErrorSample((a, a, *extra_args), {"reduction": "total"}, ValueError, r"Did you mean 'sum'"),
        ErrorSample((a, a, *extra_args), {"weight": 1.0}, TypeError, r"weight= is not an argument"),
        *(extra or []),
    ]


def _view_extremes(dtype: torch.dtype, device: torch.device | str, *extra: Any, large: float = 10.0) -> list[Sample]:
    g = generator(7)
    a = randn(6, 4, gen=g, dtype=dtype, device=device)
    z = torch.zeros(6, 4, dtype=dtype, device=device)
    const = torch.ones(6, 4, dtype=dtype, device=device)
    return [
        Sample((a, a.clone(), *extra), name="identical views"),
        Sample((z, z.clone(), *extra), name="zero embeddings"),
        Sample((const, const.clone(), *extra), name="constant features"),
        Sample((a[:1], a[:1].clone(), *extra), name="batch of one"),
        Sample((a * large, a * -large, *extra), name="large, opposite"),
    ]


def _clip_module(sample: Sample, **kwargs: Any) -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
    """``(sample, **kwargs) -> (module, args, call_kwargs)``: the module's ``logit_scale`` set to the sample's."""
    img, txt, scale = sample.args
    module = CLIPLoss(**sample.module_kwargs(), **kwargs).to(dtype=img.dtype, device=img.device)
    with torch.no_grad():
        module.logit_scale.copy_(scale)
    return module, (img, txt), sample.call_kwargs()


def _info_nce_module(sample: Sample, **kwargs: Any) -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
    """``(sample, **kwargs) -> (module, args, call_kwargs)``: ``labels`` and ``negative_keys`` go to the call."""
    per_call = ("labels", "negative_keys")
    hparams = {k: v for k, v in sample.module_kwargs().items() if k not in per_call}
    call = {**sample.call_kwargs(), **{k: v for k, v in sample.kwargs.items() if k in per_call}}
    return InfoNCELoss(**hparams, **kwargs), sample.args, call


register_loss(
    name="ntxent", function=ntxent_loss, module=NTXentLoss, family="metric",
    input_kind="embeddings", target_kind="labels", unit="anchor (sum over its positive pairs)",
    reference="Chen et al. (SimCLR), ICML 2020, arXiv:2002.05709",
    sample_inputs=label_samples,
    error_inputs=lambda: label_errors("ntxent_loss", extra=hyper_error(
        (torch.randn(4, 3), torch.tensor([0, 1, 0, 1])), {"temperature": 0.0}, ValueError,
        r"ntxent_loss: temperature must be > 0, got 0.0")),
    extreme_inputs=lambda dtype, device: [*label_extremes(dtype, device),
                                          *label_extremes(dtype, device, temperature=0.01)],
    separable=False, differentiable_args=(0,), aliases=("nt_xent", "simclr"),
)

register_loss(
    name="info_nce", function=info_nce_loss, module=InfoNCELoss, family="metric",
    input_kind="embeddings", target_kind="none", unit="query (sum over its positive keys)",
    reference="van den Oord et al. 2018, arXiv:1807.03748; He et al. (MoCo) 2020, arXiv:1911.05722",
    sample_inputs=_info_nce_samples,
    error_inputs=lambda: _view_errors("info_nce_loss", ("query", "key"), extra=[
        *hyper_error((torch.randn(4, 3), torch.randn(4, 3)), {"temperature": -1.0}, ValueError,
                     r"info_nce_loss: temperature must be > 0, got -1.0"),
        ErrorSample((torch.randn(4, 3), torch.randn(4, 3)), {"labels": torch.ones(4)}, TypeError,
                    r"info_nce_loss: labels must be an integer tensor of labels"),
        ErrorSample((torch.randn(4, 3), torch.randn(4, 3)), {"negative_keys": torch.randn(5, 2)}, ValueError,
                    r"info_nce_loss: negative_keys must have shape \(M, 3\)"),
    ]),
    extreme_inputs=lambda dtype, device: _view_extremes(dtype, device, large=1e3),
    separable=False, differentiable_args=(0, 1),
    extra={"module_for_sample": _info_nce_module},
)

register_loss(
    name="supcon", function=supcon_loss, module=SupConLoss, family="metric",
    input_kind="embeddings", target_kind="labels", unit="anchor with a positive and a negative",
    reference="Khosla et al., NeurIPS 2020, arXiv:2004.11362",
    sample_inputs=label_samples,
    error_inputs=lambda: label_errors("supcon_loss", extra=hyper_error(
        (torch.randn(4, 3), torch.tensor([0, 1, 0, 1])), {"temperature": -0.1}, ValueError,
        r"supcon_loss: temperature must be > 0, got -0.1")),
    extreme_inputs=label_extremes, separable=False, differentiable_args=(0,),
)


register_loss(
    name="clip", function=clip_loss, module=CLIPLoss, family="metric",
    input_kind="embeddings", target_kind="none", unit="image-text pair",
    reference="Radford et al. (CLIP), ICML 2021, arXiv:2103.00020",
    sample_inputs=_clip_samples,
    error_inputs=lambda: _view_errors("clip_loss", ("image_embeddings", "text_embeddings"), (2.0,), extra=[
        *hyper_error((torch.randn(4, 3), torch.randn(4, 3), 2.0), {"max_scale": 0.0}, ValueError,
                     r"clip_loss: max_scale must be > 0, got 0.0"),
        ErrorSample((torch.randn(4, 3), torch.randn(4, 3), torch.ones(2)), {}, ValueError,
                    r"clip_loss: logit_scale must be a scalar tensor, got \(2,\)"),
    ]),
    extreme_inputs=lambda dtype, device: _view_extremes(dtype, device, torch.tensor(10.0, dtype=dtype, device=device),
                                                        large=1e3),
    separable=False, differentiable_args=(0, 1, 2), extra={"module_for_sample": _clip_module},
)

register_loss(
    name="barlow_twins", function=barlow_twins_loss, module=BarlowTwinsLoss, family="metric",
    input_kind="embeddings", target_kind="none", unit="batch (scalar)",
    reference="Zbontar et al., ICML 2021, arXiv:2103.03230",
    sample_inputs=_view_samples,
    error_inputs=lambda: _view_errors("barlow_twins_loss", ("embeddings_a", "embeddings_b"), extra=hyper_error(
        (torch.randn(4, 3), torch.randn(4, 3)), {"lambda_": -1.0}, ValueError,
        r"barlow_twins_loss: lambda_ must be >= 0, got -1.0")),
    extreme_inputs=_view_extremes, separable=False, differentiable_args=(0, 1),
)

register_loss(
    name="vicreg", function=vicreg_loss, module=VICRegLoss, family="metric",
    input_kind="embeddings", target_kind="none", unit="batch (scalar)",
    reference="Bardes et al., ICLR 2022, arXiv:2105.04906",
    sample_inputs=_view_samples,
    error_inputs=lambda: _view_errors("vicreg_loss", ("embeddings_a", "embeddings_b"), extra=hyper_error(
        (torch.randn(4, 3), torch.randn(4, 3)), {"eps": 0.0}, ValueError, r"vicreg_loss: eps must be > 0, got 0.0")),
    extreme_inputs=_view_extremes, separable=False, differentiable_args=(0, 1),
)
