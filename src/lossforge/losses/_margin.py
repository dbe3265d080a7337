"""Margin classification losses: multi-class and binary hinge losses on raw scores."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._core.base import FunctionLoss, loss_function
from .._core.checks import (
    check_class_target_shape,
    check_class_weight,
    check_float,
    check_index_range,
    check_index_target,
    check_range,
    check_same_shape,
)
from .._core.errors import message
from .._core.reduction import Reduction, ignore_index_mask, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, rand, randint, randn
from .._core.validation import validation_enabled

__all__ = [
    "multi_margin_loss", "MultiMarginLoss",
    "hinge_loss", "HingeLoss",
    "squared_hinge_loss", "SquaredHingeLoss",
]


def _compute_dtype(x: Tensor) -> torch.dtype:
    """float64 stays float64; every other floating dtype is computed in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


# --------------------------------------------------------------------------------------------------
# multi_margin_loss
# --------------------------------------------------------------------------------------------------


def _check_multi_margin_args(*, p: int = 1, margin: float = 1.0, **_: object) -> None:
    loss = "multi_margin_loss"
    if isinstance(p, bool) or not isinstance(p, int):
        raise TypeError(message(loss, "p", "must be the int 1 or 2", repr(p)))
    if p not in (1, 2):
        raise ValueError(message(loss, "p", "must be 1 or 2", p))
    check_range(margin, "margin", loss, low=0.0)


@loss_function
def multi_margin_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    p: int = 1,
    margin: float = 1.0,
    class_weight: Tensor | None = None,
    ignore_index: int | None = -100,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Multi-class hinge loss (Weston-Watkins / Crammer-Singer style, torch's ``multi_margin_loss``).

    The multi-class SVM loss: every wrong class whose score comes within ``margin`` of the target
    class's score is penalised, linearly (``p=1``) or quadratically (``p=2``). An alternative to
    cross-entropy that stops pushing once the margin is met.

    .. math::
        U_n = \frac{1}{C} \sum_{c \ne y_n} \max(0,\ m - x_{n,y_n} + x_{n,c})^{p}

    multiplied by the class weight :math:`w_{y_n}`, which with ``reduction="mean"`` also makes the
    denominator (as for :func:`cross_entropy`).

    Args:
        logits: Raw class scores :math:`x`, ``(N, C, *)``.
        target: Class indices ``(N, *)`` in ``[0, C)``, or ``ignore_index``.
        p: 1 (hinge) or 2 (squared hinge).
        margin: The margin :math:`m \ge 0`.
        class_weight: Per-class weights :math:`w`, shape ``(C,)`` (torch's ``weight``).
        ignore_index: Target value that is left out (``None``: none is).
        reduction, sample_weight, mask: See the conventions page. Unit: one element of ``(N, *)``.

    Shape:
        - logits: ``(N, C, *)``; target: ``(N, *)``.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` is not ``(N, *)`` for logits ``(N, C, *)``.
        TypeError: If ``target`` is not an integer tensor, ``logits`` not floating point, or ``p``
            not an int.
        ValueError: If ``p`` is not 1 or 2 or ``margin < 0``; in validation mode, if a class
            index is out of range.

    Note:
        Equals ``torch.nn.functional.multi_margin_loss`` (with ``weight=class_weight``) for
        ``reduction="none"`` and ``"sum"``, and for ``"mean"`` without class weights. With class
        weights torch's ``"mean"`` divides by :math:`N`; lossforge divides by
        :math:`\sum_n w_{y_n}`, the rule of every lossforge loss with ``class_weight`` (torch's
        value is ``reduction="sum"`` divided by :math:`N`). Unlike torch it also takes
        ``(N, C, *)`` logits and ``ignore_index``. The hinge is a ``relu``: at exactly zero the
        gradient is 0, as in torch. It is piecewise linear (quadratic), so finite for any finite
        logits. When every target is ignored, ``"mean"`` returns 0.0 with zero gradients.

    References:
        Weston and Watkins, *Support Vector Machines for Multi-Class Pattern Recognition*,
        ESANN 1999; PyTorch ``torch.nn.MultiMarginLoss``:
        https://docs.pytorch.org/docs/stable/generated/torch.nn.MultiMarginLoss.html

    Examples:
        >>> import torch
        >>> from lossforge.functional import multi_margin_loss
        >>> logits = torch.tensor([[2.0, 0.0, 1.5], [0.5, 0.5, 3.0], [0.0, 1.0, 0.2]])
        >>> target = torch.tensor([0, 2, 0])
        >>> multi_margin_loss(logits, target, reduction="none")
        tensor([0.1667, 0.0000, 1.0667])
        >>> multi_margin_loss(logits, target, p=2, margin=0.5)
        tensor(0.3044)
    """
    loss = "multi_margin_loss"
    _check_multi_margin_args(p=p, margin=margin)
    check_float(logits, "logits", loss)
    check_index_target(target, loss)
    check_class_target_shape(logits, target, loss)
    x = logits.to(_compute_dtype(logits))
    num_classes = x.shape[1]
    cw = check_class_weight(class_weight, num_classes, x, loss)
    check_index_range(target, num_classes, loss, ignore_index)
    safe, keep = ignore_index_mask(target, ignore_index)
    index = safe.long().unsqueeze(1)
    h = F.relu(x - x.gather(1, index) + margin)
    if p == 2:
        h = h.square()
    h = h.scatter(1, index, 0.0)  # the target class itself is not a violation
    u = h.sum(1) / num_classes
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=keep,
                       unit_weight=None if cw is None else cw[safe], loss_name=loss)


class MultiMarginLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.multi_margin_loss`.

    Args:
        p: 1 or 2.
        margin: The margin, ``>= 0``.
        class_weight: Per-class weights ``(C,)`` (a buffer).
        ignore_index: Target value that is left out.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = multi_margin_loss
    validate = _check_multi_margin_args

    def __init__(self, *, p: int = 1, margin: float = 1.0, class_weight: Tensor | None = None,
                 ignore_index: int | None = -100, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, p=p, margin=margin, class_weight=class_weight,
                         ignore_index=ignore_index)


def _multi_margin_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    logits = randn(8, 5, gen=g, dtype=dtype, device=device, scale=1.5)
    target = randint(5, 8, gen=g, device=device)
    spatial = randn(3, 4, 2, 3, gen=g, dtype=dtype, device=device)
    spatial_t = randint(4, 3, 2, 3, gen=g, device=device)
    ignored = target.clone()
    ignored[::3] = -100
    cw = rand(5, gen=g, dtype=torch.float32, device=device, low=0.5, high=2.0)
    return [
        Sample((logits, target), name="(N, C)"),
        Sample((spatial, spatial_t), name="(N, C, H, W)"),
        Sample((logits, target), {"p": 2, "margin": 0.5}, name="p=2, margin=0.5"),
        Sample((logits, ignored), {"ignore_index": -100}, name="ignored", plain=False),
        Sample((logits, target), {"class_weight": cw, "p": 2}, name="class_weight", plain=False),
    ]


def _multi_margin_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0], [30.0, -30.0, 5.0]],
                     dtype=torch.float64).to(device=device, dtype=dtype)
    t = torch.tensor([0, 0, 2, 1], device=device)
    return [Sample((x, t), name="scores +-1e4"), Sample((x / 100, t), {"p": 2}, name="p=2, scores +-100")]


def _multi_margin_errors() -> list[ErrorSample]:
    loss = "multi_margin_loss"
    x = torch.randn(4, 3)
    t = torch.tensor([0, 1, 2, 1])
    return [
        ErrorSample((x, t.float()), {}, TypeError, rf"{loss}: target must be an integer tensor of class indices"),
        ErrorSample((x, t[:3]), {}, ValueError, rf"{loss}: target must have shape \(N, \*\) = \(4,\)"),
        ErrorSample((x, t.view(4, 1)), {}, ValueError, r"got \(4, 1\)"),
        ErrorSample((x.long(), t), {}, TypeError, rf"{loss}: logits must be a floating-point tensor"),
        ErrorSample((x, torch.tensor([0, 1, 3, 1])), {}, ValueError,
                    rf"{loss}: target must hold class indices in \[0, 2\] or ignore_index=-100, got class 3"),
        ErrorSample((x, t), {"class_weight": torch.ones(2)}, ValueError,
                    r"class_weight must have shape \(C,\) = \(3,\)"),
        ErrorSample((x, t), {"p": 3}, ValueError, rf"{loss}: p must be 1 or 2, got 3"),
        ErrorSample((x, t), {"p": 1.0}, TypeError, rf"{loss}: p must be the int 1 or 2, got 1.0"),
        ErrorSample((x, t), {"margin": -1.0}, ValueError, rf"{loss}: margin must be >= 0, got -1.0"),
        ErrorSample((x, t), {"p": 0}, ValueError, r"p must be 1 or 2", at_construction=True),
        ErrorSample((x, t), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((x, t), {"weight": torch.ones(3)}, TypeError, r"Hint: use sample_weight=.*class_weight="),
    ]


register_loss(
    name="multi_margin", function=multi_margin_loss, module=MultiMarginLoss, family="classification",
    input_kind="logits", target_kind="index", unit="element of (N, *)",
    reference="torch.nn.functional.multi_margin_loss; Weston and Watkins 1999, ESANN",
    sample_inputs=_multi_margin_samples, extreme_inputs=_multi_margin_extremes,
    error_inputs=_multi_margin_errors,
)


# --------------------------------------------------------------------------------------------------
# hinge_loss, squared_hinge_loss
# --------------------------------------------------------------------------------------------------


def _check_hinge_args(loss: str, margin: float) -> None:
    check_range(margin, "margin", loss, low=0.0)


def _check_hinge(*, margin: float = 1.0, **_: object) -> None:
    _check_hinge_args("hinge_loss", margin)


def _check_squared_hinge(*, margin: float = 1.0, **_: object) -> None:
    _check_hinge_args("squared_hinge_loss", margin)


def _prepare_sign(logits: Tensor, target: Tensor, loss: str) -> tuple[Tensor, Tensor]:
    """Checks (targets in {-1, +1} in validation mode) and the compute dtype."""
    check_float(logits, "logits", loss)
    if not isinstance(target, Tensor):
        raise TypeError(message(loss, "target", "must be a torch.Tensor", type(target).__name__))
    if target.dtype == torch.bool or target.is_complex() or target.dtype == torch.uint8:
        raise TypeError(message(loss, "target", "must hold the labels -1 and +1 (a float or signed integer tensor)",
                                f"dtype {target.dtype}", hint="for 0/1 labels pass 2 * target.float() - 1"))
    check_same_shape(logits, target, loss, ("logits", "target"))
    if validation_enabled() and target.numel():
        bad = (target != 1) & (target != -1)
        if bool(bad.any()):
            first = target[bad][0].item()
            raise ValueError(message(loss, "target", "must hold the labels -1 and +1", f"the value {first:g}",
                                     hint="for 0/1 labels pass 2 * target - 1"))
    dtype = _compute_dtype(logits)
    return logits.to(dtype), target.to(dtype)


@loss_function
def hinge_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    margin: float = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Binary hinge loss on raw scores, with labels :math:`-1` and :math:`+1`.

    The soft-margin SVM loss: zero once an element is on the right side of the decision boundary
    by at least ``margin``, linear in the score otherwise. Works elementwise, so it also serves
    multilabel outputs (one score per label).

    .. math::
        U_i = \max(0,\ m - y_i x_i), \qquad y_i \in \{-1, +1\}

    Args:
        logits: Raw scores :math:`x` (decision values, the sign is the predicted class), any shape.
        target: Labels :math:`y \in \{-1, +1\}`, a float or signed integer tensor of the shape of
            ``logits`` (no broadcasting).
        margin: The margin :math:`m \ge 0`.
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - logits, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` differs in shape from ``logits``.
        TypeError: If ``logits`` is not floating point or ``target`` is a bool or unsigned tensor
            (0/1 labels).
        ValueError: If ``margin < 0``; in validation mode, if a label is not -1 or +1 (0/1 labels
            included: pass ``2 * target - 1``).

    Note:
        Labels are :math:`\pm 1` (the SVM convention, and torch's for ``soft_margin_loss`` and
        ``hinge_embedding_loss``); 0/1 labels are refused rather than silently read as "negative"
        (a 0 label would give :math:`U = m`, a constant, and no gradient). The hinge is a ``relu``:
        the gradient is :math:`-y` where :math:`y x < m` and 0 elsewhere (0 at the kink). Piecewise
        linear, so finite for any finite scores. On an empty input ``"mean"`` returns 0.0 with
        zero gradients.

    References:
        Cortes and Vapnik, *Support-Vector Networks*, Machine Learning 20, 1995.
        https://doi.org/10.1007/BF00994018

    Examples:
        >>> import torch
        >>> from lossforge.functional import hinge_loss
        >>> scores = torch.tensor([2.0, 0.3, -0.5, -2.0])
        >>> labels = torch.tensor([1.0, 1.0, 1.0, -1.0])
        >>> hinge_loss(scores, labels, reduction="none")
        tensor([0.0000, 0.7000, 1.5000, 0.0000])
        >>> hinge_loss(scores, labels)
        tensor(0.5500)
    """
    loss = "hinge_loss"
    _check_hinge_args(loss, margin)
    x, y = _prepare_sign(logits, target, loss)
    u = F.relu(margin - y * x)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


@loss_function
def squared_hinge_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    margin: float = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Squared binary hinge loss on raw scores, with labels :math:`-1` and :math:`+1`.

    The L2-SVM loss: like :func:`hinge_loss` but quadratic inside the margin, so it is
    differentiable everywhere and penalises large violations more.

    .. math::
        U_i = \max(0,\ m - y_i x_i)^2, \qquad y_i \in \{-1, +1\}

    Args:
        logits: Raw scores :math:`x` (decision values), any shape.
        target: Labels :math:`y \in \{-1, +1\}`, a float or signed integer tensor of the shape of
            ``logits`` (no broadcasting).
        margin: The margin :math:`m \ge 0`.
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - logits, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` differs in shape from ``logits``.
        TypeError: If ``logits`` is not floating point or ``target`` is a bool or unsigned tensor.
        ValueError: If ``margin < 0``; in validation mode, if a label is not -1 or +1.

    Note:
        Labels are :math:`\pm 1`, as for :func:`hinge_loss` (0/1 labels are refused; pass
        ``2 * target - 1``). Equals ``hinge_loss(...) ** 2`` elementwise and Keras'
        ``squared_hinge`` on :math:`\pm 1` labels. The gradient :math:`-2 y \max(0, m - y x)` is
        continuous. Finite for finite scores (it overflows float32 only beyond
        :math:`|x| \approx 10^{19}`). On an empty input ``"mean"`` returns 0.0 with zero gradients.

    References:
        Lee and Mangasarian, *SSVM: A Smooth Support Vector Machine for Classification*,
        Computational Optimization and Applications 20, 2001. https://doi.org/10.1023/A:1011215321374

    Examples:
        >>> import torch
        >>> from lossforge.functional import squared_hinge_loss
        >>> scores = torch.tensor([2.0, 0.3, -0.5, -2.0])
        >>> labels = torch.tensor([1.0, 1.0, 1.0, -1.0])
        >>> squared_hinge_loss(scores, labels, reduction="none")
        tensor([0.0000, 0.4900, 2.2500, 0.0000])
        >>> squared_hinge_loss(scores, labels, margin=0.5)
        tensor(0.2600)
    """
    loss = "squared_hinge_loss"
    _check_hinge_args(loss, margin)
    x, y = _prepare_sign(logits, target, loss)
    u = F.relu(margin - y * x).square()
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class HingeLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.hinge_loss`.

    Args:
        margin: The margin, ``>= 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = hinge_loss
    validate = _check_hinge

    def __init__(self, *, margin: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, margin=margin)


class SquaredHingeLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.squared_hinge_loss`.

    Args:
        margin: The margin, ``>= 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = squared_hinge_loss
    validate = _check_squared_hinge

    def __init__(self, *, margin: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, margin=margin)


def _sign_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, shape in enumerate([(8, 3), (3, 2, 4), ()]):
        g = generator(seed)
        x = randn(*shape, gen=g, dtype=dtype, device=device, scale=1.5)
        y = (2 * randint(2, *shape, gen=g, device=device) - 1).to(dtype)
        out.append(Sample((x, y), name=f"shape{shape}"))
    x, y = out[0].args
    out.append(Sample((x, y.long()), {"margin": 0.5}, name="int64 labels, margin=0.5"))
    return out


def _sign_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    x = torch.tensor([[1e4, -1e4, 1e4, -1e4, 0.0, 1.0]], dtype=torch.float64).to(device=device, dtype=dtype)
    y = torch.tensor([[1.0, -1.0, -1.0, 1.0, 1.0, 1.0]], dtype=torch.float64).to(device=device, dtype=dtype)
    return [Sample((x, y), name="scores +-1e4")]


def _sign_errors(loss: str) -> list[ErrorSample]:
    x = torch.randn(4, 3)
    y = torch.ones(4, 3)
    return [
        ErrorSample((x, y[:, 0]), {}, ValueError,
                    rf"{loss}: target must have the shape of logits \(4, 3\), got \(4,\)"),
        ErrorSample((x.long(), y), {}, TypeError, rf"{loss}: logits must be a floating-point tensor"),
        ErrorSample((x, torch.zeros(4, 3)), {}, ValueError,
                    rf"{loss}: target must hold the labels -1 and \+1, got the value 0.*2 \* target - 1"),
        ErrorSample((x, y.bool()), {}, TypeError, rf"{loss}: target must hold the labels -1 and \+1.*dtype torch.bool"),
        ErrorSample((x, y), {"margin": -1.0}, ValueError, rf"{loss}: margin must be >= 0, got -1.0"),
        ErrorSample((x, y), {"margin": -0.5}, ValueError, r"margin must be >= 0", at_construction=True),
        ErrorSample((x, y), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((x, y), {"weight": torch.ones(3)}, TypeError, r"Hint: use sample_weight="),
    ]


register_loss(
    name="hinge", function=hinge_loss, module=HingeLoss, family="classification",
    input_kind="logits", target_kind="sign", unit="element",
    reference="Cortes and Vapnik 1995, Support-Vector Networks, doi:10.1007/BF00994018",
    sample_inputs=_sign_samples, extreme_inputs=_sign_extremes, error_inputs=lambda: _sign_errors("hinge_loss"),
    differentiable_args=(0,),
)

register_loss(
    name="squared_hinge", function=squared_hinge_loss, module=SquaredHingeLoss, family="classification",
    input_kind="logits", target_kind="sign", unit="element",
    reference="Lee and Mangasarian 2001, SSVM, doi:10.1023/A:1011215321374",
    sample_inputs=_sign_samples, extreme_inputs=_sign_extremes,
    error_inputs=lambda: _sign_errors("squared_hinge_loss"),
    differentiable_args=(0,),
)
