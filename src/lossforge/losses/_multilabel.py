"""Multilabel and quality-target losses on sigmoid logits: quality focal, ZLPR and soft F1.

Inputs follow the binary family (``losses/_binary.py``): ``logits`` and a float ``target`` of the
same shape, targets in ``[0, 1]`` (checked in validation mode), float32 compute for half inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._core.base import FunctionLoss, loss_function
from .._core.checks import check_number
from .._core.errors import ShapeError, message
from .._core.reduction import Reduction, check_reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, rand, randint, randn
from .._core.validation import validation_enabled
from ._binary import _binary_errors, _binary_extremes, _binary_samples, _hparam_error, _prepare

__all__ = [
    "quality_focal_loss", "QualityFocalLoss",
    "zlpr_loss", "ZLPRLoss",
    "soft_f1_loss", "SoftF1Loss",
]


# ---------------------------------------------------------------------------------- quality focal


def _check_qfl_args(*, beta: float = 2.0, **_: object) -> None:
    value = check_number(beta, "beta", "quality_focal_loss")
    if not (value == 0.0 or value >= 1.0):
        raise ValueError(message("quality_focal_loss", "beta", "must be 0 or >= 1 (a smaller power has an "
                                 "infinite gradient where the prediction meets the target)", repr(beta)))


@loss_function
def quality_focal_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    beta: float = 2.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Quality focal loss: binary cross-entropy against a soft quality target, scaled by the distance to it.

    From Generalized Focal Loss: a detector's classification score is trained towards the IoU
    of its box (a continuous target in :math:`[0, 1]`) instead of 1, and the focal modulation
    becomes the distance :math:`|y - \sigma|` so that both easy positives and easy negatives are
    down-weighted.

    .. math::
        U = |y - \sigma(x)|^{\beta}\,\big(-y \log \sigma(x) - (1 - y) \log(1 - \sigma(x))\big)

    Args:
        logits: Logits :math:`x`, any shape.
        target: Quality targets :math:`y \in [0, 1]`, the shape of ``logits`` (0 for background).
        beta: Modulating exponent :math:`\beta`, 0 or at least 1 (the paper: 2); 0 gives BCE.
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - logits, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If ``logits`` or ``target`` is not floating point.
        ValueError: If ``beta`` is in (0, 1) or negative; in validation mode, if a target is outside [0, 1].

    Note:
        For hard targets it equals ``binary_focal_loss`` with ``gamma=beta, alpha=None``. The
        cross-entropy is computed from the logits (``softplus``), finite for any logit.

    References:
        Li et al., *Generalized Focal Loss: Learning Qualified and Distributed Bounding Boxes for
        Dense Object Detection*, NeurIPS 2020. https://arxiv.org/abs/2006.04388

    Examples:
        >>> import torch
        >>> from lossforge.functional import quality_focal_loss
        >>> quality_focal_loss(torch.tensor([0.0, 2.0]), torch.tensor([0.5, 0.9]), reduction="none")
        tensor([0.0000, 0.0001])
    """
    loss = "quality_focal_loss"
    check_reduction(reduction, loss)
    _check_qfl_args(beta=beta)
    x, y = _prepare(logits, target, loss)
    bce = F.softplus(x) - x * y
    u = bce if beta == 0 else (y - torch.sigmoid(x)).abs().pow(float(beta)) * bce
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class QualityFocalLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.quality_focal_loss`.

    Args:
        beta: Modulating exponent, 0 or >= 1.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = quality_focal_loss
    validate = _check_qfl_args

    def __init__(self, *, beta: float = 2.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, beta=beta)


# -------------------------------------------------------------------------------------------- ZLPR


def _class_layout(logits: Tensor, loss: str) -> None:
    if logits.dim() < 2:
        raise ShapeError(message(loss, "logits", "must have shape (N, C, *) (classes along dim 1)",
                                 tuple(logits.shape)), expected="(N, C, *)", actual=tuple(logits.shape))


def _hard_targets(y: Tensor, loss: str) -> None:
    if validation_enabled() and y.numel() and not bool(((y == 0) | (y == 1)).all()):
        bad = y.detach()[(y != 0) & (y != 1)][0].item()
        raise ValueError(message(loss, "target", "must hold 0 or 1 (multilabel membership)", f"the value {bad:g}"))


def _log1p_sum_exp(z: Tensor, include: Tensor) -> Tensor:
    """``log(1 + sum_{include} exp(z))`` along dim 1, stable for any ``z``."""
    very_negative = torch.finfo(z.dtype).min / 4
    masked = torch.where(include, z, z.new_full((), very_negative))
    zero = z.new_zeros(()).expand_as(z.narrow(1, 0, 1))
    return torch.logsumexp(torch.cat([zero, masked], dim=1), dim=1)


@loss_function
def zlpr_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""ZLPR: a softmax-like multilabel loss that ranks every positive label above 0 and every negative below it.

    A multilabel extension of cross-entropy with a learned-free threshold at 0: no per-class
    weighting is needed for label imbalance, and the number of positives per sample may vary.

    .. math::
        U_n = \log\Big(1 + \sum_{i \in \Omega^+_n} e^{-x_{n,i}}\Big)
            + \log\Big(1 + \sum_{j \in \Omega^-_n} e^{x_{n,j}}\Big)

    Args:
        logits: Scores ``(N, C, *)`` (classes along dim 1); predict label ``i`` where ``x_i > 0``.
        target: Membership ``(N, C, *)`` in {0, 1}, float.
        reduction, sample_weight, mask: See the conventions page. Unit: one element of ``(N, *)``.

    Shape:
        - logits, target: ``(N, C, *)``, equal.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ or ``logits`` has fewer than 2 dimensions.
        TypeError: If ``logits`` or ``target`` is not floating point.
        ValueError: In validation mode, if a target is not 0 or 1.

    Note:
        Each sum runs through ``logsumexp`` with the ``1`` as an extra zero logit, finite for any
        scores; a sample with no positive (or no negative) label has that term equal to 0.

    References:
        Su et al., *ZLPR: A Novel Loss for Multi-label Classification*, 2022.
        https://arxiv.org/abs/2208.02955

    Examples:
        >>> import torch
        >>> from lossforge.functional import zlpr_loss
        >>> zlpr_loss(torch.tensor([[2.0, -1.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0]]), reduction="none")
        tensor([0.9889])
    """
    loss = "zlpr_loss"
    check_reduction(reduction, loss)
    x, y = _prepare(logits, target, loss)
    _class_layout(x, loss)
    _hard_targets(y, loss)
    positive = y > 0.5
    u = _log1p_sum_exp(-x, positive) + _log1p_sum_exp(x, ~positive)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class ZLPRLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.zlpr_loss`.

    Args:
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = zlpr_loss

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


# ----------------------------------------------------------------------------------------- soft F1


@loss_function
def soft_f1_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Soft (macro) F1 loss: one minus each class's F1 score computed with sigmoid probabilities as counts.

    Optimises the F1 score directly for imbalanced multilabel or binary problems: true
    positives, false positives and false negatives are summed over the batch with
    :math:`p = \sigma(x)` in place of hard predictions.

    .. math::
        U_c = 1 - \frac{2\,TP_c}{2\,TP_c + FP_c + FN_c},\quad
        TP_c = \sum_n p_{n,c}\,y_{n,c},\ FP_c = \sum_n p_{n,c}(1 - y_{n,c}),\ FN_c = \sum_n (1 - p_{n,c})\,y_{n,c}

    Args:
        logits: Logits ``(N, C)`` (or ``(N,)`` for one binary class).
        target: Targets in [0, 1] (soft allowed), the shape of ``logits``.
        reduction: ``"mean"`` (macro F1 loss), ``"sum"`` or ``"none"`` (per class).
        sample_weight: Per-class weights ``(C,)`` (the unit is a class).
        mask: Bool ``(C,)``: classes to include.

    Shape:
        - logits, target: ``(N, C)`` or ``(N,)``.
        - output: ``(C,)`` (``()`` for ``(N,)`` inputs) if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ or the inputs are not 1-D or 2-D.
        TypeError: If ``logits`` or ``target`` is not floating point.
        ValueError: In validation mode, if a target is outside [0, 1].

    Note:
        A batch statistic: the loss of a batch is not the mean of its samples' losses. A class
        with nothing to count (an empty batch) is left out of the mean; when every class is, the
        loss is 0.0 with zero gradients (the empty policy).

    References:
        The soft-F1 surrogate, e.g. Bénédict et al., *sigmoidF1: A Smooth F1 Score Surrogate Loss
        for Multilabel Classification*, 2021. https://arxiv.org/abs/2108.10566

    Examples:
        >>> import torch
        >>> from lossforge.functional import soft_f1_loss
        >>> soft_f1_loss(torch.tensor([[4.0], [-4.0]]), torch.tensor([[1.0], [0.0]]))
        tensor(0.0180)
    """
    loss = "soft_f1_loss"
    check_reduction(reduction, loss)
    x, y = _prepare(logits, target, loss)
    if x.dim() not in (1, 2):
        raise ShapeError(message(loss, "logits", "must have shape (N, C) or (N,)", tuple(x.shape)),
                         expected="(N, C)", actual=tuple(x.shape))
    p = torch.sigmoid(x)
    tp = (p * y).sum(0)
    fp = (p * (1 - y)).sum(0)
    fn = ((1 - p) * y).sum(0)
    denominator = 2 * tp + fp + fn
    keep = denominator > 0
    u = 1 - 2 * tp / torch.where(keep, denominator, torch.ones_like(denominator))
    u = torch.where(keep, u, u.new_zeros(()))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=keep, loss_name=loss)


class SoftF1Loss(FunctionLoss):
    """Module form of :func:`lossforge.functional.soft_f1_loss`.

    Args:
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = soft_f1_loss

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


# ----------------------------------------------------------------------------------- registration


def _qfl_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    base = _binary_samples(dtype, device)
    logits, target = base[0].args
    return [*base, Sample((logits, target), {"beta": 0.0}, name="beta=0 (BCE)"),
            Sample((logits, target), {"beta": 1.0}, name="beta=1")]


def _zlpr_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    logits = randn(6, 5, gen=g, dtype=dtype, device=device, scale=2.0)
    target = randint(2, 6, 5, gen=g, device=device).to(dtype)
    target[0] = 0  # no positive label
    target[1] = 1  # no negative label
    fmap = randn(2, 3, 2, 2, gen=g, dtype=dtype, device=device)
    fmap_t = randint(2, 2, 3, 2, 2, gen=g, device=device).to(dtype)
    return [Sample((logits, target), name="(N, C)"), Sample((fmap, fmap_t), name="(N, C, H, W)")]


def _zlpr_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    x = torch.tensor([[1e4, -1e4, 1e4, -1e4], [120.0, -120.0, 0.0, 30.0]], dtype=torch.float64)
    t = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    return [Sample((x.to(device=device, dtype=dtype), t.to(device=device, dtype=dtype)), name="logits +-1e4")]


def _f1_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    logits = randn(8, 4, gen=g, dtype=dtype, device=device, scale=2.0)
    hard = randint(2, 8, 4, gen=g, device=device).to(dtype)
    soft = rand(8, 4, gen=g, dtype=dtype, device=device)
    return [Sample((logits, hard), name="(N, C) hard"), Sample((logits, soft), name="(N, C) soft"),
            Sample((logits[:, 0], hard[:, 0]), name="(N,) binary")]


def _f1_errors() -> list[ErrorSample]:
    x, t = torch.randn(4, 3), torch.rand(4, 3)
    return [
        ErrorSample((x, t[:, 0]), {}, ValueError, r"soft_f1_loss: target must have the shape of logits \(4, 3\)"),
        ErrorSample((x.view(2, 2, 3), t.view(2, 2, 3)), {}, ValueError,
                    r"soft_f1_loss: logits must have shape \(N, C\) or \(N,\), got \(2, 2, 3\)"),
        ErrorSample((x.long(), t), {}, TypeError, r"logits must be a floating-point tensor"),
        ErrorSample((x, t * 2), {}, ValueError, r"target must hold probabilities in \[0, 1\]"),
        ErrorSample((x, t), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((x, t), {"weight": torch.ones(3)}, TypeError, r"Hint: use sample_weight="),
    ]


register_loss(
    name="quality_focal", function=quality_focal_loss, module=QualityFocalLoss, family="classification",
    input_kind="logits", target_kind="binary", unit="element",
    reference="Li et al. 2020, Generalized Focal Loss, arXiv:2006.04388",
    sample_inputs=_qfl_samples, extreme_inputs=_binary_extremes,
    error_inputs=lambda: _binary_errors("quality_focal_loss", extra=[
        _hparam_error({"beta": 0.5}, ValueError, r"quality_focal_loss: beta must be 0 or >= 1"),
        _hparam_error({"beta": -1.0}, ValueError, r"beta must be 0 or >= 1", construction=True),
        _hparam_error({"beta": "2"}, TypeError, r"quality_focal_loss: beta must be a float or int"),
    ]),
    differentiable_args=(0,), aliases=("qfl",),
)
register_loss(
    name="zlpr", function=zlpr_loss, module=ZLPRLoss, family="classification", input_kind="logits",
    target_kind="binary", unit="element of (N, *)", reference="Su et al. 2022, ZLPR, arXiv:2208.02955",
    sample_inputs=_zlpr_samples, extreme_inputs=_zlpr_extremes,
    error_inputs=lambda: [
        *_binary_errors("zlpr_loss")[:4],
        ErrorSample((torch.randn(4, 3), torch.rand(4, 3)), {}, ValueError, r"zlpr_loss: target must hold 0 or 1"),
        ErrorSample((torch.randn(4), torch.ones(4)), {}, ValueError, r"zlpr_loss: logits must have shape \(N, C, \*\)"),
        ErrorSample((torch.randn(4, 3), torch.ones(4, 3)), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
    ],
    differentiable_args=(0,),
)
register_loss(
    name="soft_f1", function=soft_f1_loss, module=SoftF1Loss, family="classification", input_kind="logits",
    target_kind="binary", unit="class", reference="soft F1 surrogate; Bénédict et al. 2021, arXiv:2108.10566",
    sample_inputs=_f1_samples, error_inputs=_f1_errors, separable=False, differentiable_args=(0,),
)
