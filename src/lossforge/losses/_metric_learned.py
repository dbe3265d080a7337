"""Metric losses with learnable parameters: normalized softmax, SoftTriple and large-margin softmax
(L-Softmax) with class centres, and the margin loss with its learnable boundary beta.

As in :mod:`._metric_margins` (whose checks, modules and registration these reuse), the functions
take the parameters as tensor arguments: centres ``(C, D)`` or, for SoftTriple, ``(C, K, D)``;
the margin loss's ``beta`` ``(1,)`` or ``(C,)``. The modules own them as ``nn.Parameter``\\ s.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._core.base import FunctionLoss, loss_function, refuse_unexpected
from .._core.checks import check_float, check_index_range, check_range, upcast
from .._core.errors import ShapeError, message
from .._core.reduction import Reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, randn
from ._metric_margins import _CentersLoss, _chebyshev, _cosines, _prepare, _register, _with_target
from ._metric_ops import (
    check_distance,
    check_flag,
    check_nonnegative,
    check_positive,
    distance_matrix,
    label_masks,
    label_samples,
    norm_eps,
    safe_norm,
    safe_normalize,
    zero_where,
)
from ._metric_pairs import hyper_error, label_extremes, prepare_labelled

__all__ = [
    "LargeMarginSoftmaxLoss",
    "MarginLoss",
    "NormalizedSoftmaxLoss",
    "SoftTripleLoss",
    "large_margin_softmax_loss",
    "margin_loss",
    "normalized_softmax_loss",
    "soft_triple_loss",
]


# ---------------------------------------------------------------------------------- normalized softmax

def _check_normalized_softmax_args(*, temperature: float, **_: object) -> None:
    check_positive(temperature, "temperature", "normalized_softmax_loss")


@loss_function
def normalized_softmax_loss(
    embeddings: Tensor,
    target: Tensor,
    centers: Tensor,
    /,
    *,
    temperature: float = 0.05,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Normalized softmax: cross-entropy over the temperature-scaled cosines to the class centres.

    A classification loss used as a metric-learning baseline: with both embeddings and centres on
    the unit sphere it learns an embedding whose cosine similarities rank like the classes.

    .. math::
        U_i = -\log \frac{e^{\cos\theta_{i y_i} / T}}{\sum_{c} e^{\cos\theta_{ic} / T}},
        \qquad \cos\theta_{ic} = \frac{x_i \cdot W_c}{\lVert x_i \rVert \lVert W_c \rVert}

    Args:
        embeddings: ``(N, D)`` embeddings (normalised here).
        target: ``(N,)`` class indices in ``[0, C)``.
        centers: ``(C, D)`` class centres (normalised; the module owns them as a parameter).
        temperature: :math:`T > 0` (paper: 0.05).
        reduction, sample_weight, mask: See the conventions page. Unit: a sample.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``; centers: ``(C, D)``.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``centers`` is not ``(C, D)`` for embeddings ``(N, D)``, or the labels do not match.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``temperature`` is not positive; in validation mode, if a label is not in ``[0, C)``.

    Note:
        Log-softmax: finite for any temperature. Zero-norm embeddings or centres have cosine 0 and
        finite gradients. Per sample, so DDP needs no gathering. With ``temperature = 1/s`` this is
        :func:`cosface_loss` with ``margin=0``.

    References:
        Zhai and Wu, *Classification is a Strong Baseline for Deep Metric Learning*, BMVC 2019.
        https://arxiv.org/abs/1811.12649

    Examples:
        >>> import torch
        >>> from lossforge.functional import normalized_softmax_loss
        >>> x = torch.tensor([[1.0, 0.2], [0.1, 1.0], [-1.0, 0.0]])
        >>> centers = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
        >>> normalized_softmax_loss(x, torch.tensor([0, 1, 2]), centers, temperature=0.5)
        tensor(0.1981)
    """
    _check_normalized_softmax_args(temperature=temperature)
    x, y, w = _prepare(embeddings, target, centers, "normalized_softmax_loss")
    logits = _cosines(x, w, norm_eps(embeddings.dtype)) / temperature
    return reduce_loss(F.cross_entropy(logits, y, reduction="none"), reduction, sample_weight=sample_weight,
                       mask=mask, loss_name="normalized_softmax_loss")


class NormalizedSoftmaxLoss(_CentersLoss):
    """Module form of :func:`lossforge.functional.normalized_softmax_loss`; owns ``centers`` ``(C, D)``.

    Args:
        num_classes: C. embedding_dim: D.
        temperature, reduction: As in the function.
    """

    function = normalized_softmax_loss
    validate = _check_normalized_softmax_args

    def __init__(self, *, num_classes: int, embedding_dim: int, temperature: float = 0.05,
                 reduction: Reduction = "mean") -> None:
        super().__init__(num_classes=num_classes, embedding_dim=embedding_dim, reduction=reduction,
                         temperature=temperature)


# ------------------------------------------------------------------------------------------ SoftTriple

def _check_soft_triple_args(*, scale: float, gamma: float, margin: float, **_: object) -> None:
    check_positive(scale, "scale", "soft_triple_loss")
    check_positive(gamma, "gamma", "soft_triple_loss")
    check_nonnegative(margin, "margin", "soft_triple_loss")


@loss_function
def soft_triple_loss(
    embeddings: Tensor,
    target: Tensor,
    centers: Tensor,
    /,
    *,
    scale: float = 20.0,
    gamma: float = 0.1,
    margin: float = 0.01,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""SoftTriple loss: a softmax loss with K centres per class, which is a smoothed triplet loss.

    Each class is represented by K centres; the similarity to a class is the softmax-weighted
    mean of the similarities to its centres, and a small margin is taken off the target class:

    .. math::
        S_{ic} = \sum_{k} \frac{e^{s_{ick} / \gamma}}{\sum_{k'} e^{s_{ick'} / \gamma}} s_{ick},
        \qquad U_i = -\log \frac{e^{\lambda (S_{i y_i} - \delta)}}
                               {e^{\lambda (S_{i y_i} - \delta)} + \sum_{c \ne y_i} e^{\lambda S_{ic}}}

    with :math:`s_{ick}` the cosine between embedding :math:`i` and centre :math:`k` of class
    :math:`c`.

    Args:
        embeddings: ``(N, D)`` embeddings (normalised here).
        target: ``(N,)`` class indices in ``[0, C)``.
        centers: ``(C, K, D)`` K centres per class (normalised; the module owns them as a parameter).
        scale: :math:`\lambda > 0` (paper: 20).
        gamma: :math:`\gamma > 0`, the temperature of the softmax over a class's centres (paper: 0.1).
        margin: :math:`\delta \ge 0` (paper: 0.01).
        reduction, sample_weight, mask: See the conventions page. Unit: a sample.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``; centers: ``(C, K, D)``.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``centers`` is not ``(C, K, D)`` for embeddings ``(N, D)``, or the labels do not match.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``scale`` or ``gamma`` is not positive or ``margin`` negative; in validation
            mode, if a label is not in ``[0, C)``.

    Note:
        Log-softmax over classes and a softmax over centres: finite for any scale and temperature.
        Per sample, so DDP needs no gathering. The paper's regulariser that merges similar
        centres of a class (weight :math:`\tau`) is not part of the loss. With ``K = 1`` this is
        :func:`cosface_loss` with ``scale=lambda``, ``margin=delta``.

    References:
        Qian, Shang, Sun, Hu, Li and Jin, *SoftTriple Loss: Deep Metric Learning Without Triplet
        Sampling*, ICCV 2019. https://arxiv.org/abs/1909.05235

    Examples:
        >>> import torch
        >>> from lossforge.functional import soft_triple_loss
        >>> x = torch.tensor([[1.0, 0.2], [0.1, 1.0], [-1.0, 0.0]])
        >>> centers = torch.tensor([[[1.0, 0.0], [1.0, 1.0]], [[0.0, 1.0], [-1.0, 1.0]], [[-1.0, 0.0], [0.0, -1.0]]])
        >>> soft_triple_loss(x, torch.tensor([0, 1, 2]), centers, scale=4.0)
        tensor(0.2388)
    """
    _check_soft_triple_args(scale=scale, gamma=gamma, margin=margin)
    x, y, w = _prepare(embeddings, target, centers, "soft_triple_loss", sub_centers=True)
    eps = norm_eps(embeddings.dtype)
    c, k, d = w.shape
    s = (safe_normalize(x, eps) @ safe_normalize(w.reshape(c * k, d), eps).T).reshape(-1, c, k)
    sim = (torch.softmax(s / gamma, dim=2) * s).sum(2)
    sim_t = sim.gather(1, y.unsqueeze(1)).squeeze(1)
    logits = scale * _with_target(sim, y, sim_t - margin)
    return reduce_loss(F.cross_entropy(logits, y, reduction="none"), reduction, sample_weight=sample_weight,
                       mask=mask, loss_name="soft_triple_loss")


class SoftTripleLoss(_CentersLoss):
    """Module form of :func:`lossforge.functional.soft_triple_loss`; owns ``centers`` ``(C, K, D)``.

    Args:
        num_classes: C. embedding_dim: D. sub_centers: K, the centres per class (paper: 10).
        scale, gamma, margin, reduction: As in the function.
    """

    function = soft_triple_loss
    validate = _check_soft_triple_args

    def __init__(self, *, num_classes: int, embedding_dim: int, sub_centers: int = 10, scale: float = 20.0,
                 gamma: float = 0.1, margin: float = 0.01, reduction: Reduction = "mean") -> None:
        if isinstance(sub_centers, bool) or not isinstance(sub_centers, int) or sub_centers < 1:
            raise ValueError(message("SoftTripleLoss", "sub_centers", "must be a positive int", repr(sub_centers)))
        super().__init__(num_classes=num_classes, embedding_dim=embedding_dim, sub_centers=sub_centers,
                         reduction=reduction, scale=scale, gamma=gamma, margin=margin)


# ------------------------------------------------------------------------------- large-margin softmax

def _check_large_margin_args(*, margin: int, scale: float, **_: object) -> None:
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 1:
        raise ValueError(message("large_margin_softmax_loss", "margin", "must be an int >= 1 (the angle "
                                 "multiplier)", repr(margin)))
    check_positive(scale, "scale", "large_margin_softmax_loss")


@loss_function
def large_margin_softmax_loss(
    embeddings: Tensor,
    target: Tensor,
    centers: Tensor,
    /,
    *,
    margin: int = 4,
    scale: float = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Large-margin softmax (L-Softmax): a multiplicative angular margin on the unnormalised logits.

    The logits of the last linear layer are :math:`\lVert W_j \rVert \lVert x_i \rVert \cos\theta_j`;
    the target's :math:`\cos\theta` is replaced by the monotone extension of :math:`\cos(m\theta)`:

    .. math::
        \psi(\theta) = (-1)^k \cos(m\theta) - 2k, \quad \theta \in \Big[\frac{k\pi}{m}, \frac{(k+1)\pi}{m}\Big],
        \qquad U_i = -\log \operatorname{softmax}\big(s \lVert x_i \rVert
                     [\lVert W_j \rVert \cos\theta_j]_{j \ne y_i},
                     s \lVert x_i \rVert \lVert W_{y_i} \rVert \psi(\theta_{y_i})\big)_{y_i}

    Args:
        embeddings: ``(N, D)`` embeddings (features of the last layer; their norm scales the logits).
        target: ``(N,)`` class indices in ``[0, C)``.
        centers: ``(C, D)`` the last layer's weight :math:`W` (not normalised; the module owns it).
        margin: :math:`m \ge 1`, the integer angle multiplier (paper: 2 to 4); 1 is plain softmax.
        scale: :math:`s > 0`, an extra logit scale (1 in the paper).
        reduction, sample_weight, mask: See the conventions page. Unit: a sample.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``; centers: ``(C, D)``.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``centers`` is not ``(C, D)`` for embeddings ``(N, D)``, or the labels do not match.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``margin`` is not an int >= 1 or ``scale`` not positive; in validation
            mode, if a label is not in ``[0, C)``.

    Note:
        :math:`\cos(m\theta)` is the Chebyshev polynomial :math:`T_m(\cos\theta)` and the branch
        :math:`k` is piecewise constant, so no ``acos`` is differentiated: finite gradients at
        cosine exactly :math:`\pm 1` and at zero-norm rows. This is :func:`sphereface_loss` without
        normalising the centres. The paper's annealing with plain softmax
        (:math:`(\lambda \lVert W \rVert \lVert x \rVert \cos\theta + \ldots)/(1 + \lambda)`) is not applied.

    References:
        Liu, Wen, Yu and Yang, *Large-Margin Softmax Loss for Convolutional Neural Networks*, ICML 2016.
        https://arxiv.org/abs/1612.02295

    Examples:
        >>> import torch
        >>> from lossforge.functional import large_margin_softmax_loss
        >>> x = torch.tensor([[3.0, 0.2], [0.1, 3.0], [-3.0, 0.0]])
        >>> centers = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
        >>> large_margin_softmax_loss(x, torch.tensor([0, 1, 2]), centers, margin=2)
        tensor(0.0438)
    """
    _check_large_margin_args(margin=margin, scale=scale)
    x, y, w = _prepare(embeddings, target, centers, "large_margin_softmax_loss")
    cos = _cosines(x, w, norm_eps(embeddings.dtype))
    cos_t = cos.gather(1, y.unsqueeze(1)).squeeze(1)
    with torch.no_grad():
        k = torch.floor(torch.acos(cos_t.clamp(-1.0, 1.0)) * (margin / math.pi))
        sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
    psi = sign * _chebyshev(cos_t, margin) - 2.0 * k
    norms = (scale * safe_norm(x)).unsqueeze(1) * safe_norm(w).unsqueeze(0)
    logits = norms * _with_target(cos, y, psi)
    return reduce_loss(F.cross_entropy(logits, y, reduction="none"), reduction, sample_weight=sample_weight,
                       mask=mask, loss_name="large_margin_softmax_loss")


class LargeMarginSoftmaxLoss(_CentersLoss):
    """Module form of :func:`lossforge.functional.large_margin_softmax_loss`; owns ``centers`` ``(C, D)``.

    Args:
        num_classes: C. embedding_dim: D.
        margin, scale, reduction: As in the function.
    """

    function = large_margin_softmax_loss
    validate = _check_large_margin_args

    def __init__(self, *, num_classes: int, embedding_dim: int, margin: int = 4, scale: float = 1.0,
                 reduction: Reduction = "mean") -> None:
        super().__init__(num_classes=num_classes, embedding_dim=embedding_dim, reduction=reduction, margin=margin,
                         scale=scale)


# ----------------------------------------------------------------------------------------------- margin

def _check_margin_args(*, margin: float, nu: float, distance: str, normalize: bool, average_nonzero: bool,
                       **_: object) -> None:
    check_nonnegative(margin, "margin", "margin_loss")
    check_nonnegative(nu, "nu", "margin_loss")
    check_distance(distance, "margin_loss")
    check_flag(normalize, "normalize", "margin_loss")
    check_flag(average_nonzero, "average_nonzero", "margin_loss")


def _check_beta(beta: object, y: Tensor, x: Tensor) -> Tensor:
    check_float(beta, "beta", "margin_loss")
    b = cast(Tensor, beta)
    if b.dim() != 1 or b.shape[0] < 1:
        raise ShapeError(message("margin_loss", "beta", "must have shape (1,) (one boundary) or (C,) (one per "
                                 "class)", tuple(b.shape), hint="beta.reshape(1)" if b.numel() == 1 else None),
                         expected="(1,) or (C,)", actual=tuple(b.shape))
    if b.device != x.device:
        raise ValueError(f"margin_loss: embeddings is on {x.device} but beta is on {b.device}. "
                         f"Hint: move both to one device.")
    if b.shape[0] > 1:
        check_index_range(y, b.shape[0], "margin_loss")
    return upcast(b).to(x.dtype)


@loss_function
def margin_loss(
    embeddings: Tensor,
    target: Tensor,
    beta: Tensor,
    /,
    *,
    margin: float = 0.2,
    nu: float = 0.0,
    distance: str = "euclidean",
    normalize: bool = True,
    average_nonzero: bool = True,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Margin loss ("Sampling Matters"): positives inside, negatives outside a learnable boundary.

    Every triplet :math:`(a, p, n)` of the batch pays two hinges around the boundary
    :math:`\beta_{y_a}` (one shared :math:`\beta`, or one per class), plus the paper's
    regulariser :math:`\nu \beta` that lets the boundary shrink:

    .. math::
        U_a = \frac{1}{|P(a)| |N(a)|} \sum_{p \in P(a)} \sum_{n \in N(a)} \Big([\alpha + d_{ap} - \beta_{y_a}]_+
              + [\alpha - d_{an} + \beta_{y_a}]_+ + \nu \beta_{y_a}\Big)

    the mean over the anchor's triplets, computed as
    :math:`\frac{1}{|P(a)|} \sum_p [\cdot]_+ + \frac{1}{|N(a)|} \sum_n [\cdot]_+ + \nu \beta_{y_a}`
    (no triplet tensor). With ``average_nonzero=False`` ``"mean"`` is the mean over anchors. With
    ``average_nonzero=True`` (the default, as the authors' code) an anchor counts in the mean's
    denominator by its number of active hinges (:math:`> 0`, two candidates per triplet) per
    triplet, so that with equally many triplets per anchor (P x K batches) ``"mean"`` is the sum
    over all triplets divided by the number of active hinges, the authors' normalisation.

    Args:
        embeddings: ``(N, D)`` embeddings.
        target: ``(N,)`` integer labels (class indices in ``[0, C)`` for per-class boundaries).
        beta: ``(1,)`` one boundary :math:`\beta`, or ``(C,)`` one per class; learnable (the
            module owns it as a parameter, initialised to 1.2 as in the paper).
        margin: :math:`\alpha \ge 0`, the half-width of the band around the boundary (paper: 0.2).
        nu: :math:`\nu \ge 0`, the weight of the boundary regulariser (0 turns it off).
        distance: ``"euclidean"`` (the paper), ``"squared_euclidean"`` or ``"cosine"`` (``1 - cos``).
        normalize: Scale embeddings to unit norm before the distance (the paper: True).
        average_nonzero: Count each anchor in ``"mean"`` by its active hinges per triplet (True),
            or once (False: the mean over anchors with a triplet).
        gather_distributed: All-gather embeddings and labels over the ranks of ``process_group``
            (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: an anchor (the mean over its
            triplets); anchors without a positive or a negative give 0 and count nothing.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``; beta: ``(1,)`` or ``(C,)``.
        - output: ``(N,)`` (``(N_global,)`` when gathering) if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``embeddings`` is not ``(N, D)``, ``target`` not ``(N,)`` or ``beta`` not ``(1,)``/``(C,)``.
        TypeError: If ``target`` is not an integer tensor or ``beta`` not a floating-point tensor.
        ValueError: If ``margin`` or ``nu`` is negative or ``distance`` unknown; in validation
            mode, if a label is not in ``[0, C)`` with per-class boundaries.

    Note:
        The paper samples one negative per pair by distance-weighted sampling; that is a miner,
        not part of the loss: here every triplet of the batch is used. Distances come from one
        matrix product with a safe square root (finite gradient where two embeddings coincide).
        A batch without any triplet gives 0.0 with zero gradients.

    References:
        Wu, Manmatha, Smola and Krähenbühl, *Sampling Matters in Deep Embedding Learning*, ICCV 2017.
        https://arxiv.org/abs/1706.07567

    Examples:
        >>> import torch
        >>> from lossforge.functional import margin_loss
        >>> x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8]])
        >>> margin_loss(x, torch.tensor([0, 0, 1, 1]), torch.tensor([0.8]))
        tensor(0.0471)
    """
    _check_margin_args(margin=margin, nu=nu, distance=distance, normalize=normalize,
                       average_nonzero=average_nonzero)
    x, y, sample_weight, mask = prepare_labelled(embeddings, target, "margin_loss", gather_distributed,
                                                 process_group, sample_weight, mask)
    b = _check_beta(beta, y, x)
    b = b[y] if b.shape[0] > 1 else b.expand(x.shape[0])
    eps = norm_eps(embeddings.dtype)
    if normalize:
        x = safe_normalize(x, eps)
    d = distance_matrix(x, x, distance, eps)
    pos, neg = label_masks(y)
    n_pos, n_neg = pos.sum(1).to(d.dtype), neg.sum(1).to(d.dtype)
    bu = b.unsqueeze(1)
    h_pos = zero_where(pos, F.relu(margin + d - bu))
    h_neg = zero_where(neg, F.relu(margin - d + bu))
    valid = (n_pos > 0) & (n_neg > 0)
    inv_pos, inv_neg = 1.0 / n_pos.clamp_min(1.0), 1.0 / n_neg.clamp_min(1.0)
    u = zero_where(valid, h_pos.sum(1) * inv_pos + h_neg.sum(1) * inv_neg + nu * b)
    if average_nonzero:  # active hinges per triplet: |N| #active_p + |P| #active_n over |P| |N|
        active = (h_pos > 0).sum(1).to(d.dtype) * inv_pos + (h_neg > 0).sum(1).to(d.dtype) * inv_neg
        count = zero_where(valid, active)
    else:
        count = valid.to(d.dtype)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, mean_weight=count,
                       loss_name="margin_loss")


class MarginLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.margin_loss`; owns the learnable boundary ``beta``.

    Args:
        beta: The boundary's initial value (paper: 1.2).
        num_classes: ``None`` for one shared boundary ``(1,)``, else one per class ``(C,)``.
        margin, nu, distance, normalize, average_nonzero, gather_distributed, process_group, reduction:
            As in the function.
    """

    function = margin_loss
    validate = _check_margin_args

    def __init__(self, *, beta: float = 1.2, num_classes: int | None = None, margin: float = 0.2, nu: float = 0.0,
                 distance: str = "euclidean", normalize: bool = True, average_nonzero: bool = True,
                 gather_distributed: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        check_range(beta, "beta", "MarginLoss")
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                        or num_classes < 1):
            raise ValueError(message("MarginLoss", "num_classes", "must be None or a positive int", repr(num_classes)))
        super().__init__(reduction=reduction, margin=margin, nu=nu, distance=distance, normalize=normalize,
                         average_nonzero=average_nonzero, gather_distributed=gather_distributed,
                         process_group=process_group)
        self.num_classes = num_classes
        self.beta = nn.Parameter(torch.full((num_classes or 1,), float(beta)))

    def forward(self, embeddings: Tensor, target: Tensor, *,  # type: ignore[override]
                sample_weight: Tensor | None = None, mask: Tensor | None = None, **unexpected: Any) -> Tensor:
        refuse_unexpected(type(self).__name__, unexpected, ("sample_weight", "mask"))
        return margin_loss(embeddings, target, self.beta, **self.hparams(), reduction=self.reduction,
                           sample_weight=sample_weight, mask=mask)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, " + super().extra_repr()


# ------------------------------------------------------------------------------------------ registration

_register("normalized_softmax", normalized_softmax_loss, NormalizedSoftmaxLoss,
          "Zhai and Wu, BMVC 2019, arXiv:1811.12649",
          [({"temperature": 0.0}, ValueError, r"normalized_softmax_loss: temperature must be > 0, got 0.0")],
          extreme_kwargs={"temperature": 0.01})
_register("soft_triple", soft_triple_loss, SoftTripleLoss, "Qian et al., ICCV 2019, arXiv:1909.05235",
          [({"gamma": 0.0}, ValueError, r"soft_triple_loss: gamma must be > 0, got 0.0"),
           ({"margin": -0.1}, ValueError, r"soft_triple_loss: margin must be >= 0, got -0.1")],
          sub_centers=2, extreme_kwargs={"scale": 64.0, "gamma": 0.01})
_register("large_margin_softmax", large_margin_softmax_loss, LargeMarginSoftmaxLoss,
          "Liu et al., ICML 2016, arXiv:1612.02295",
          [({"margin": 1.5}, ValueError, r"large_margin_softmax_loss: margin must be an int >= 1"),
           ({"scale": 0.0}, ValueError, r"large_margin_softmax_loss: scale must be > 0, got 0.0")],
          extreme_kwargs={"margin": 4})


def _margin_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(22)
    shared = torch.tensor([0.9], dtype=dtype, device=device)
    per_class = (0.8 + 0.4 * torch.rand(4, generator=g, dtype=torch.float64)).to(dtype=dtype, device=device)
    x = randn(10, 4, gen=g, dtype=dtype, device=device)
    t = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3], device=device)
    # average_nonzero=False: "mean" is then the plain mean over anchors (the conformance checks' plain sample)
    out = [Sample((*s.args, shared), {**s.kwargs, "average_nonzero": False}, name=s.name, plain=s.plain)
           for s in label_samples(dtype, device)]
    return [*out,
            Sample((x, t, per_class), {"nu": 0.1}, name="per-class beta", plain=False),
            Sample((x, t, shared), {"normalize": False, "margin": 0.5}, name="active hinges", plain=False),
            Sample((x, t, per_class), {"distance": "squared_euclidean"}, name="squared", plain=False)]


def _margin_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    beta = torch.tensor([1.2], dtype=dtype, device=device)
    return [Sample((*s.args, beta), s.kwargs, name=s.name, plain=s.plain)
            for s in [*label_extremes(dtype, device), *label_extremes(dtype, device, normalize=False, nu=0.1)]]


def _margin_errors() -> list[ErrorSample]:
    x, t = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    b = torch.tensor([1.2])
    return [
        ErrorSample((x, t.float(), b), {}, TypeError, r"margin_loss: target must be an integer tensor of labels"),
        ErrorSample((x, t[:3], b), {}, ValueError, r"margin_loss: target must have shape \(N,\) = \(4,\)"),
        ErrorSample((x[0], t, b), {}, ValueError, r"margin_loss: embeddings must have shape \(N, D\), got \(3,\)"),
        ErrorSample((x, t, torch.tensor(1.2)), {}, ValueError,
                    r"margin_loss: beta must have shape \(1,\) .* got \(\)\. Hint: beta\.reshape\(1\)"),
        ErrorSample((x, t, b.long()), {}, TypeError, r"margin_loss: beta must be a floating-point tensor"),
        ErrorSample((x, t + 2, torch.ones(3)), {}, ValueError,
                    r"margin_loss: target must hold class indices in \[0, 2\], got class 3"),
        ErrorSample((x, t, b), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((x, t, b), {"weight": torch.ones(4)}, TypeError, r"Hint: use sample_weight="),
        *hyper_error((x, t, b), {"margin": -0.1}, ValueError, r"margin_loss: margin must be >= 0, got -0.1"),
        *hyper_error((x, t, b), {"nu": -1.0}, ValueError, r"margin_loss: nu must be >= 0, got -1.0"),
        *hyper_error((x, t, b), {"distance": "cos"}, ValueError, r"margin_loss: distance must be one of"),
    ]


def _margin_module_for_sample(sample: Sample, **kwargs: Any) -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
    x, t, beta = sample.args
    module = MarginLoss(num_classes=beta.shape[0] if beta.shape[0] > 1 else None, **sample.module_kwargs(),
                        **kwargs).to(dtype=beta.dtype, device=beta.device)
    with torch.no_grad():
        module.beta.copy_(beta)
    return module, (x, t), sample.call_kwargs()


register_loss(
    name="margin", function=margin_loss, module=MarginLoss, family="metric",
    input_kind="embeddings", target_kind="labels", unit="anchor (sum over its triplets)",
    reference="Wu et al., ICCV 2017, arXiv:1706.07567",
    sample_inputs=_margin_samples, error_inputs=_margin_errors, extreme_inputs=_margin_extremes,
    separable=False, differentiable_args=(0, 2),
    extra={"module_for_sample": _margin_module_for_sample},
)
