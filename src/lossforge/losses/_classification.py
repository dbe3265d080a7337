"""Classification losses: logits ``(N, C, *)`` with class indices ``(N, *)``, or binary logits and targets."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .._core.activation import provided
from .._core.base import FunctionLoss, loss_function
from .._core.checks import (
    check_class_target_shape,
    check_class_weight,
    check_float,
    check_index_range,
    check_index_target,
    check_probabilities,
    check_range,
    check_same_shape,
    upcast,
)
from .._core.errors import ShapeError, message
from .._core.reduction import Reduction, ignore_index_mask, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, rand, randint, randn
from .._core.validation import validation_enabled
from ._softmax_kernels import target_log_prob

__all__ = [
    "BiTemperedLoss",
    "ClassBalancedLoss",
    "CrossEntropyLoss",
    "DistillationLoss",
    "FocalLoss",
    "GeneralizedCrossEntropyLoss",
    "JSDConsistencyLoss",
    "LDAMLoss",
    "Poly1Loss",
    "SoftCrossEntropyLoss",
    "SymmetricCrossEntropyLoss",
    "bi_tempered_loss",
    "class_balanced_loss",
    "class_balanced_weights",
    "cross_entropy",
    "distillation_loss",
    "focal_loss",
    "generalized_cross_entropy_loss",
    "jsd_consistency_loss",
    "ldam_loss",
    "poly1_loss",
    "soft_cross_entropy",
    "symmetric_cross_entropy_loss",
]


def _index_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    """Logits ``(N, C, *)`` with index targets: plain first, then ignored entries and class weights."""
    g = generator(0)
    logits = randn(8, 5, gen=g, dtype=dtype, device=device, scale=2.0)
    target = randint(5, 8, gen=g, device=device)
    spatial = randn(3, 4, 2, 3, gen=g, dtype=dtype, device=device)
    spatial_t = randint(4, 3, 2, 3, gen=g, device=device)
    ignored = target.clone()
    ignored[::3] = -100
    cw = rand(5, gen=g, dtype=torch.float32, device=device, low=0.5, high=2.0)
    return [
        Sample((logits, target), name="(N, C)"),
        Sample((spatial, spatial_t), name="(N, C, H, W)"),
        Sample((logits, ignored), {"ignore_index": -100}, name="ignored", plain=False),
        Sample((logits, target), {"class_weight": cw}, name="class_weight", plain=False),
    ]


def _index_errors(loss: str, *, extra: list[ErrorSample] | None = None) -> list[ErrorSample]:
    """Bad inputs shared by every (logits, index target) loss."""
    x = torch.randn(4, 3)
    t = torch.tensor([0, 1, 2, 1])
    return [
        ErrorSample((x, t.float()), {}, TypeError, rf"{loss}: target must be an integer tensor of class indices"),
        ErrorSample((x, t[:3]), {}, ValueError, rf"{loss}: target must have shape \(N, \*\) = \(4,\)"),
        ErrorSample((x, t.view(4, 1)), {}, ValueError, r"got \(4, 1\)"),
        ErrorSample((x.long(), t), {}, TypeError, rf"{loss}: logits must be a floating-point tensor"),
        ErrorSample((x, t), {"class_weight": torch.ones(2)}, ValueError,
                    r"class_weight must have shape \(C,\) = \(3,\)"),
        ErrorSample((x, t), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((x, t), {"weight": torch.ones(3)}, TypeError, r"Hint: use sample_weight=.*class_weight="),
        *(extra or []),
    ]


def _prepare_index(
    logits: Tensor, target: Tensor, class_weight: Tensor | None, ignore_index: int | None, loss: str
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """Checks, float32 compute, sanitised target and ``keep`` mask, class weights on the right device."""
    check_float(logits, "logits", loss)
    check_index_target(target, loss)
    check_class_target_shape(logits, target, loss)
    logits = upcast(logits)
    cw = check_class_weight(class_weight, logits.shape[1], logits, loss)
    check_index_range(target, logits.shape[1], loss, ignore_index)
    safe, keep = ignore_index_mask(target, ignore_index)
    return logits, safe.long(), keep, cw


def _check_cross_entropy_args(*, label_smoothing: float, **_: object) -> None:
    check_range(label_smoothing, "label_smoothing", "cross_entropy", low=0.0, high=1.0)


@loss_function
def cross_entropy(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    class_weight: Tensor | None = None,
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Softmax cross-entropy with class-index targets.

    The standard loss for single-label classification and per-pixel segmentation.

    .. math::
        U_n = (1-\varepsilon)\, w_{y_n} (-\log p_{n,y_n})
              + \frac{\varepsilon}{C} \sum_c w_c (-\log p_{n,c}),
        \qquad p_n = \operatorname{softmax}(x_n)

    With ``reduction="mean"`` the sum is divided by :math:`\sum_n w_{y_n}` over
    the kept units (torch's definition).

    Args:
        logits: Unnormalised scores ``(N, C, *)``.
        target: Class indices ``(N, *)`` in ``[0, C)``, or ``ignore_index``.
        class_weight: Per-class weights :math:`w`, shape ``(C,)``.
        ignore_index: Target value that is left out (``None``: none is).
        label_smoothing: :math:`\varepsilon \in [0, 1]`, mass spread uniformly over the classes.
        reduction, sample_weight, mask: See the conventions page. Unit: one element of ``(N, *)``.

    Shape:
        - logits: ``(N, C, *)``; target: ``(N, *)``.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` is not ``(N, *)`` for logits ``(N, C, *)``.
        TypeError: If ``target`` is not an integer tensor, or ``logits`` not floating point.
        ValueError: If ``label_smoothing`` is outside ``[0, 1]``; in validation mode,
            if a class index is out of range.

    Note:
        Computed with ``log_softmax`` (finite for logits of any magnitude). Equals
        ``torch.nn.functional.cross_entropy``; when every target is ignored,
        ``"mean"`` returns 0.0 with zero gradients (torch: NaN).

    References:
        Szegedy et al., *Rethinking the Inception Architecture*, CVPR 2016
        (label smoothing). https://arxiv.org/abs/1512.00567

    Examples:
        >>> import torch
        >>> from lossforge.functional import cross_entropy
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
        >>> cross_entropy(logits, torch.tensor([0, 2]))
        tensor(0.1609)
        >>> cross_entropy(logits, torch.tensor([0, -100]), label_smoothing=0.1)
        tensor(0.3365)
    """
    _check_cross_entropy_args(label_smoothing=label_smoothing)
    logits, safe, keep, cw = _prepare_index(logits, target, class_weight, ignore_index, "cross_entropy")
    # inside a composition, share one softmax pass with the region losses (lossforge._core.activation)
    shared = None if label_smoothing else provided("softmax_target", logits, target, ignore_index)
    if shared is not None:
        u = -shared.log_pt if cw is None else -shared.log_pt * cw[safe]
    else:
        u = F.cross_entropy(logits, safe, weight=cw, label_smoothing=label_smoothing, reduction="none")
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=keep,
                       mean_weight=None if cw is None else cw[safe], loss_name="cross_entropy")


class CrossEntropyLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.cross_entropy`.

    Args:
        class_weight: Per-class weights ``(C,)`` (a buffer).
        ignore_index: Target value that is left out.
        label_smoothing: In ``[0, 1]``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = cross_entropy
    validate = _check_cross_entropy_args

    def __init__(self, *, class_weight: Tensor | None = None, ignore_index: int | None = -100,
                 label_smoothing: float = 0.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, class_weight=class_weight, ignore_index=ignore_index,
                         label_smoothing=label_smoothing)


register_loss(
    name="cross_entropy", function=cross_entropy, module=CrossEntropyLoss, family="classification",
    input_kind="logits", target_kind="index", unit="element of (N, *)",
    reference="torch.nn.functional.cross_entropy; Szegedy et al. 2016 (label smoothing), arXiv:1512.00567",
    sample_inputs=_index_samples,
    error_inputs=lambda: _index_errors("cross_entropy", extra=[
        ErrorSample((torch.randn(4, 3), torch.tensor([0, 1, 2, 1])), {"label_smoothing": 1.5}, ValueError,
                    r"cross_entropy: label_smoothing must be in \[0, 1\], got 1.5"),
    ]),
    aliases=("ce",),
)


# --------------------------------------------------------------------------------------------------
# Shared pieces of the softmax / index-target family
# --------------------------------------------------------------------------------------------------


def _compute_dtype(x: Tensor) -> torch.dtype:
    """float64 stays float64; every other floating dtype is computed in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _prepare_lean(
    logits: Tensor, target: Tensor, class_weight: Tensor | None, ignore_index: int | None, loss: str
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """As :func:`_prepare_index`, without the float32 copy of half logits (:func:`target_log_prob`
    reads them block by block); class weights come back in the compute dtype."""
    check_float(logits, "logits", loss)
    check_index_target(target, loss)
    check_class_target_shape(logits, target, loss)
    cw = check_class_weight(class_weight, logits.shape[1], logits, loss)
    if cw is not None and class_weight is not None:
        cw = class_weight.to(device=logits.device, dtype=_compute_dtype(logits))
    check_index_range(target, logits.shape[1], loss, ignore_index)
    safe, keep = ignore_index_mask(target, ignore_index)
    return logits, safe.long(), keep, cw


def _neg_expm1(x: Tensor) -> Tensor:
    """``1 - exp(x)`` without cancellation (``1 - p_t`` from ``log p_t``)."""
    return -torch.expm1(x)


def _with(samples: list[Sample], **kwargs: object) -> list[Sample]:
    """The same samples with extra keyword arguments."""
    return [Sample(s.args, {**s.kwargs, **kwargs}, s.name, s.plain) for s in samples]


def _index_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    """Logits of +-1e4 towards and away from the target, and a tie: value and gradient stay finite."""
    x = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [0.0, 0.0, 0.0], [30.0, -30.0, 5.0]],
                     dtype=torch.float64).to(device=device, dtype=dtype)
    t = torch.tensor([0, 0, 2, 1], device=device)
    return [Sample((x, t), name="logits +-1e4")]


def _hparam_error(loss: str, kwargs: dict[str, object], exc: type[BaseException], match: str,
                  *, construction: bool = False) -> ErrorSample:
    x, t = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    return ErrorSample((x, t), kwargs, exc, match, at_construction=construction)


# --------------------------------------------------------------------------------------------------
# soft_cross_entropy
# --------------------------------------------------------------------------------------------------


def _check_soft_cross_entropy_args(*, label_smoothing: float, **_: object) -> None:
    check_range(label_smoothing, "label_smoothing", "soft_cross_entropy", low=0.0, high=1.0)


def _class_view(w: Tensor, ndim: int) -> Tensor:
    """``(C,)`` -> ``(C, 1, ..., 1)`` broadcasting along dim 1 of an ``ndim``-dimensional tensor."""
    return w.view(-1, *([1] * (ndim - 2)))


def _check_soft_target(target: Tensor, loss: str) -> None:
    """Validation mode only: values in ``[0, 1]`` and rows summing to 1 within the dtype's rounding."""
    if not validation_enabled() or target.numel() == 0:
        return
    t = target.detach()
    check_probabilities(t, "target", loss)
    tol = {torch.float16: 1e-2, torch.bfloat16: 5e-2}.get(t.dtype, 1e-3)
    err = float((t.double().sum(1) - 1).abs().max())
    if err > tol:
        raise ValueError(message(loss, "target", "must sum to 1 along dim 1", f"an error of {err:.3g}",
                                 hint="normalise the rows, or use binary_cross_entropy_with_logits for multi-label"))


@loss_function
def soft_cross_entropy(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    class_weight: Tensor | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Softmax cross-entropy with probability targets (soft labels).

    For targets that are distributions over the classes: mixup and cutmix labels, averaged
    annotator votes, a teacher's probabilities used as fixed labels.

    .. math::
        U_n = -\sum_c w_c\, y'_{n,c} \log p_{n,c}, \qquad
        y' = (1-\varepsilon)\, y + \frac{\varepsilon}{C}, \qquad p_n = \operatorname{softmax}(x_n)

    Args:
        logits: Unnormalised scores ``(N, C, *)``.
        target: Probabilities of the logits' shape, summing to 1 along dim 1.
        class_weight: Per-class weights :math:`w`, shape ``(C,)``.
        label_smoothing: :math:`\varepsilon \in [0, 1]`, mass spread uniformly over the classes.
        reduction, sample_weight, mask: See the conventions page. Unit: one element of ``(N, *)``.

    Shape:
        - logits, target: ``(N, C, *)``.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target``'s shape differs from ``logits``', or ``logits`` has fewer than 2 dims.
        TypeError: If ``logits`` or ``target`` is not floating point; ``ignore_index`` is passed
            (it does not exist for probability targets: weight the units with ``mask`` instead).
        ValueError: If ``label_smoothing`` is outside ``[0, 1]``; in validation mode, if ``target``
            holds values outside ``[0, 1]`` or rows that do not sum to 1.

    Note:
        Computed with ``log_softmax``. Equals ``torch.nn.functional.cross_entropy`` with probability
        targets, including its class weights: they multiply the terms and ``"mean"`` divides by the
        number of units, not by a sum of weights (torch's definition for probability targets). With
        one-hot targets it equals :func:`cross_entropy` without class weights. The target gets a
        gradient too (detach it for fixed labels). ``N = 0`` gives 0.0 for ``"mean"``.

    References:
        Szegedy et al., *Rethinking the Inception Architecture*, CVPR 2016 (label smoothing).
        https://arxiv.org/abs/1512.00567

    Examples:
        >>> import torch
        >>> from lossforge.functional import soft_cross_entropy
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
        >>> soft_cross_entropy(logits, torch.tensor([[0.8, 0.2, 0.0], [0.0, 0.5, 0.5]]))
        tensor(0.9859)
        >>> soft_cross_entropy(logits, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), reduction="none")
        tensor([0.1698, 0.1520])
    """
    loss = "soft_cross_entropy"
    _check_soft_cross_entropy_args(label_smoothing=label_smoothing)
    check_float(logits, "logits", loss)
    check_float(target, "target", loss)
    check_same_shape(logits, target, loss, ("logits", "target"))
    if logits.dim() < 2:
        raise ShapeError(message(loss, "logits", "must have shape (N, C, *)", tuple(logits.shape)),
                         expected="(N, C, *)", actual=tuple(logits.shape))
    _check_soft_target(target, loss)
    logits = upcast(logits)
    target = upcast(target).to(logits.dtype)
    num_classes = logits.shape[1]
    cw = check_class_weight(class_weight, num_classes, logits, loss)
    y = target if label_smoothing == 0.0 else target * (1.0 - label_smoothing) + label_smoothing / num_classes
    if cw is not None:
        y = y * _class_view(cw, logits.dim())
    u = -(y * F.log_softmax(logits, 1)).sum(1)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class SoftCrossEntropyLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.soft_cross_entropy`.

    Args:
        class_weight: Per-class weights ``(C,)`` (a buffer).
        label_smoothing: In ``[0, 1]``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = soft_cross_entropy
    validate = _check_soft_cross_entropy_args

    def __init__(self, *, class_weight: Tensor | None = None, label_smoothing: float = 0.0,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, class_weight=class_weight, label_smoothing=label_smoothing)


def _soft_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(1)
    logits = randn(8, 5, gen=g, dtype=dtype, device=device, scale=2.0)
    target = torch.softmax(randn(8, 5, gen=g, dtype=torch.float64, device="cpu", scale=2.0), 1)
    spatial = randn(3, 4, 2, 3, gen=g, dtype=dtype, device=device)
    spatial_t = torch.softmax(randn(3, 4, 2, 3, gen=g, dtype=torch.float64, device="cpu"), 1)
    cw = rand(5, gen=g, dtype=torch.float32, device=device, low=0.5, high=2.0)
    target_d, spatial_d = target.to(device=device, dtype=dtype), spatial_t.to(device=device, dtype=dtype)
    return [
        Sample((logits, target_d), name="(N, C)"),
        Sample((spatial, spatial_d), name="(N, C, H, W)"),
        # class weights leave the mean's denominator alone here, so the sample stays plain
        Sample((logits, target_d), {"class_weight": cw}, name="class_weight"),
        Sample((logits, target_d), {"label_smoothing": 0.1}, name="label_smoothing"),
    ]


def _soft_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    x, t = _index_extremes(dtype, device)[0].args
    return [Sample((x, F.one_hot(t, 3).to(dtype)), name="logits +-1e4, one-hot targets")]


def _soft_errors() -> list[ErrorSample]:
    loss = "soft_cross_entropy"
    x = torch.randn(4, 3)
    y = torch.softmax(torch.randn(4, 3), 1)
    return [
        ErrorSample((x, y[:, :2]), {}, ValueError, rf"{loss}: target must have the shape of logits \(4, 3\)"),
        ErrorSample((x, torch.tensor([0, 1, 2, 1])), {}, TypeError, rf"{loss}: target must be a floating-point"),
        ErrorSample((x.long(), y), {}, TypeError, rf"{loss}: logits must be a floating-point tensor"),
        ErrorSample((x, y), {"ignore_index": -100}, TypeError, r"unexpected keyword argument 'ignore_index'"),
        ErrorSample((x, y), {"class_weight": torch.ones(2)}, ValueError,
                    r"class_weight must have shape \(C,\) = \(3,\)"),
        ErrorSample((x, y), {"label_smoothing": -0.1}, ValueError, rf"{loss}: label_smoothing must be in \[0, 1\]"),
        ErrorSample((x, y), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((x, y), {"weight": torch.ones(3)}, TypeError, r"Hint: use sample_weight=.*class_weight="),
    ]


register_loss(
    name="soft_cross_entropy", function=soft_cross_entropy, module=SoftCrossEntropyLoss, family="classification",
    input_kind="logits", target_kind="probs", unit="element of (N, *)",
    reference="torch.nn.functional.cross_entropy (probability targets); Szegedy et al. 2016, arXiv:1512.00567",
    sample_inputs=_soft_samples, error_inputs=_soft_errors, extreme_inputs=_soft_extremes,
)


# --------------------------------------------------------------------------------------------------
# Losses of the target's log-probability: U = f(log p_t)
# --------------------------------------------------------------------------------------------------


def _reduce_index(
    u: Tensor, safe: Tensor, keep: Tensor | None, cw: Tensor | None, reduction: Reduction,
    sample_weight: Tensor | None, mask: Tensor | None, loss: str, per_unit: Tensor | None = None,
) -> Tensor:
    """Class weights ``w_{y_n}`` (times ``per_unit``) as unit weights: they multiply ``U`` and,
    with ``"mean"``, make the denominator (torch's cross-entropy convention)."""
    uw = None if cw is None else cw[safe]
    if per_unit is not None:
        uw = per_unit if uw is None else uw * per_unit
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=keep, unit_weight=uw,
                       loss_name=loss)


def _shared_log_pt(logits: Tensor, target: Tensor, safe: Tensor, ignore_index: int | None) -> Tensor:
    """``log p_t`` of the (sanitised) target: inside a composition, from the shared softmax node.

    The node is the one ``cross_entropy`` and the region losses use (``"softmax_target"`` in
    :mod:`lossforge._core.activation`), keyed on the logits as given, so ``lf.build("dice + focal")``
    runs one softmax pass forward and one backward. Its ``log p_t`` at ignored entries has no
    gradient, which is what these losses need (ignored units are masked). Outside a composition
    (or under ``torch.compile``) the lean :func:`target_log_prob` kernel computes it.
    """
    shared = provided("softmax_target", logits, target, ignore_index)
    if shared is not None and shared.log_pt is not None:
        return shared.log_pt  # type: ignore[no-any-return]
    return target_log_prob(logits, safe)


def _check_focal_args(*, gamma: float, alpha: float | None = None, **_: object) -> None:
    check_range(gamma, "gamma", "focal_loss", low=0.0)
    if alpha is not None:
        check_range(alpha, "alpha", "focal_loss", low=0.0, high=1.0)


def _focal_factor(log_pt: Tensor, gamma: float) -> Tensor:
    """``(1 - p_t)^gamma`` with a finite gradient everywhere, ``gamma < 1`` at ``p_t -> 1`` included.

    ``1 - p_t`` is floored at the dtype's smallest normal number, where ``gamma * b^(gamma - 1)``
    is still finite (at most ``1 / tiny``); below the floor the factor is flat (zero gradient),
    and its value there (at most ``tiny^gamma``) multiplies ``-log p_t <= tiny``.
    """
    base = _neg_expm1(log_pt).clamp_min(torch.finfo(log_pt.dtype).tiny)
    return base if gamma == 1.0 else base.pow(gamma)


@loss_function
def focal_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    gamma: float = 2.0,
    alpha: float | None = None,
    class_weight: Tensor | None = None,
    ignore_index: int | None = -100,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Softmax focal loss with class-index targets.

    Cross-entropy scaled down on well-classified units, so training concentrates on the hard
    ones: for dense detection and segmentation with many easy negatives, and class imbalance.

    .. math::
        U_n = -(1 - p_{n,y_n})^{\gamma} \log p_{n,y_n},
        \qquad p_n = \operatorname{softmax}(x_n)

    multiplied by the weight :math:`\alpha_{y_n} w_{y_n}` of the target class, which with
    ``reduction="mean"`` also makes the denominator (as torch's cross-entropy does with ``weight``).

    Args:
        logits: Unnormalised scores ``(N, C, *)``.
        target: Class indices ``(N, *)`` in ``[0, C)``, or ``ignore_index``.
        gamma: Focusing parameter :math:`\gamma \ge 0`; 0 gives cross-entropy.
        alpha: Background/foreground balance in ``[0, 1]``: class 0 (the background) weighs
            :math:`1-\alpha` and every other class :math:`\alpha`, the multi-class form of the
            paper's :math:`\alpha_t` (MONAI's convention). It is shorthand for
            ``class_weight=[1 - alpha, alpha, ..., alpha]`` and multiplies ``class_weight`` when
            both are given. ``None``: no balance. For per-class values use ``class_weight``.
        class_weight: Per-class weights :math:`w`, shape ``(C,)``.
        ignore_index: Target value that is left out (``None``: none is).
        reduction, sample_weight, mask: See the conventions page. Unit: one element of ``(N, *)``.

    Shape:
        - logits: ``(N, C, *)``; target: ``(N, *)``.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` is not ``(N, *)`` for logits ``(N, C, *)``.
        TypeError: If ``target`` is not an integer tensor, or ``logits`` not floating point.
        ValueError: If ``gamma < 0`` or ``alpha`` is outside ``[0, 1]``; in validation mode, if a
            class index is out of range.

    Note:
        With ``gamma=0`` and ``alpha=None`` it equals :func:`cross_entropy` (same class weights,
        same ``ignore_index``, same mean). ``log p_t`` comes from ``log_softmax`` arithmetic and
        :math:`1-p_t` from ``-expm1(log p_t)``, so values and gradients are finite for logits of
        any magnitude, and for :math:`\gamma < 1` the gradient at :math:`p_t \to 1` is finite
        (the factor's derivative :math:`\gamma(1-p_t)^{\gamma-1}` is guarded; kornia #918).
        Memory: the gradient is the only ``(N, C, *)`` tensor a forward and backward pass
        allocates (no log-softmax or softmax copies). When every target is ignored, ``"mean"``
        returns 0.0 with zero gradients.

    References:
        Lin et al., *Focal Loss for Dense Object Detection*, ICCV 2017.
        https://arxiv.org/abs/1708.02002

    Examples:
        >>> import torch
        >>> from lossforge.functional import focal_loss
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [0.0, 1.0, 0.0]])
        >>> target = torch.tensor([0, 2, 0])
        >>> focal_loss(logits, target, reduction="none")
        tensor([0.0041, 0.0030, 0.9635])
        >>> focal_loss(logits, target, gamma=0.0)  # cross-entropy
        tensor(0.6244)
        >>> focal_loss(logits, target, alpha=0.25)
        tensor(0.4151)
    """
    loss = "focal_loss"
    _check_focal_args(gamma=gamma, alpha=alpha)
    logits, safe, keep, cw = _prepare_lean(logits, target, class_weight, ignore_index, loss)
    log_pt = _shared_log_pt(logits, target, safe, ignore_index)
    u = -log_pt if gamma == 0.0 else _focal_factor(log_pt, gamma) * -log_pt
    alpha_t = None
    if alpha is not None:
        alpha_t = torch.where(safe == 0, log_pt.new_full((), 1.0 - alpha), log_pt.new_full((), alpha))
    return _reduce_index(u, safe, keep, cw, reduction, sample_weight, mask, loss, alpha_t)


class FocalLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.focal_loss`.

    Args:
        gamma: Focusing parameter, ``>= 0``.
        alpha: Background (class 0) / foreground balance in ``[0, 1]``, or ``None``.
        class_weight: Per-class weights ``(C,)`` (a buffer).
        ignore_index: Target value that is left out.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = focal_loss
    validate = _check_focal_args

    def __init__(self, *, gamma: float = 2.0, alpha: float | None = None, class_weight: Tensor | None = None,
                 ignore_index: int | None = -100, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, gamma=gamma, alpha=alpha, class_weight=class_weight,
                         ignore_index=ignore_index)


def _focal_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    base = _index_samples(dtype, device)
    logits, target = base[0].args
    return [*base,
            Sample((logits, target), {"gamma": 0.5}, name="gamma=0.5"),
            Sample((logits, target), {"gamma": 0.0}, name="gamma=0"),
            Sample((logits, target), {"alpha": 0.25}, name="alpha=0.25", plain=False)]


def _focal_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    base = _index_extremes(dtype, device)
    return [*base, *(_with(base, gamma=0.5)), *(_with(base, gamma=0.0, alpha=0.75))]


register_loss(
    name="focal", function=focal_loss, module=FocalLoss, family="classification",
    input_kind="logits", target_kind="index", unit="element of (N, *)",
    reference="Lin et al. 2017, Focal Loss for Dense Object Detection, arXiv:1708.02002",
    sample_inputs=_focal_samples, extreme_inputs=_focal_extremes,
    error_inputs=lambda: _index_errors("focal_loss", extra=[
        _hparam_error("focal_loss", {"gamma": -1.0}, ValueError, r"focal_loss: gamma must be >= 0, got -1.0"),
        _hparam_error("focal_loss", {"alpha": 1.5}, ValueError, r"focal_loss: alpha must be in \[0, 1\], got 1.5"),
        _hparam_error("focal_loss", {"gamma": "2"}, TypeError, r"focal_loss: gamma must be a float or int"),
        _hparam_error("focal_loss", {"gamma": -0.5}, ValueError, r"gamma must be >= 0", construction=True),
    ]),
)


def _check_poly1_args(*, epsilon: float, **_: object) -> None:
    check_range(epsilon, "epsilon", "poly1_loss", low=-1.0)


@loss_function
def poly1_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    epsilon: float = 1.0,
    class_weight: Tensor | None = None,
    ignore_index: int | None = -100,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Poly-1 loss: cross-entropy plus a linear term in :math:`1 - p_t`.

    The first-order member of the PolyLoss family: one extra coefficient that adjusts how strongly
    the loss pulls on units that are already classified correctly; a drop-in for cross-entropy.

    .. math::
        U_n = -\log p_{n,y_n} + \epsilon\, (1 - p_{n,y_n}), \qquad p_n = \operatorname{softmax}(x_n)

    multiplied by the class weight :math:`w_{y_n}` (the mean's denominator, as in cross-entropy).

    Args:
        logits: Unnormalised scores ``(N, C, *)``.
        target: Class indices ``(N, *)`` in ``[0, C)``, or ``ignore_index``.
        epsilon: Coefficient :math:`\epsilon \ge -1` of the polynomial term (the paper's default 1).
        class_weight: Per-class weights :math:`w`, shape ``(C,)``.
        ignore_index: Target value that is left out (``None``: none is).
        reduction, sample_weight, mask: See the conventions page. Unit: one element of ``(N, *)``.

    Shape:
        - logits: ``(N, C, *)``; target: ``(N, *)``.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` is not ``(N, *)`` for logits ``(N, C, *)``.
        TypeError: If ``target`` is not an integer tensor, or ``logits`` not floating point.
        ValueError: If ``epsilon < -1`` (the loss would no longer decrease in :math:`p_t`); in
            validation mode, if a class index is out of range.

    Note:
        With ``epsilon=0`` it equals :func:`cross_entropy`. :math:`1-p_t` is computed as
        ``-expm1(log p_t)`` (no cancellation); finite for logits of any magnitude. The gradient is
        the only ``(N, C, *)`` tensor a forward and backward pass allocates. When every target is ignored,
        ``"mean"`` returns 0.0 with zero gradients.

    References:
        Leng et al., *PolyLoss: A Polynomial Expansion Perspective of Classification Loss
        Functions*, ICLR 2022. https://arxiv.org/abs/2204.12511

    Examples:
        >>> import torch
        >>> from lossforge.functional import poly1_loss
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [0.0, 1.0, 0.0]])
        >>> poly1_loss(logits, torch.tensor([0, 2, 0]), reduction="none")
        tensor([0.3261, 0.2930, 2.3395])
        >>> poly1_loss(logits, torch.tensor([0, 2, 0]), epsilon=0.0)  # cross-entropy
        tensor(0.6244)
    """
    loss = "poly1_loss"
    _check_poly1_args(epsilon=epsilon)
    logits, safe, keep, cw = _prepare_lean(logits, target, class_weight, ignore_index, loss)
    log_pt = _shared_log_pt(logits, target, safe, ignore_index)
    u = -log_pt if epsilon == 0.0 else epsilon * _neg_expm1(log_pt) - log_pt
    return _reduce_index(u, safe, keep, cw, reduction, sample_weight, mask, loss)


class Poly1Loss(FunctionLoss):
    """Module form of :func:`lossforge.functional.poly1_loss`.

    Args:
        epsilon: Coefficient of the polynomial term, ``>= -1``.
        class_weight: Per-class weights ``(C,)`` (a buffer).
        ignore_index: Target value that is left out.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = poly1_loss
    validate = _check_poly1_args

    def __init__(self, *, epsilon: float = 1.0, class_weight: Tensor | None = None,
                 ignore_index: int | None = -100, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, epsilon=epsilon, class_weight=class_weight, ignore_index=ignore_index)


register_loss(
    name="poly1", function=poly1_loss, module=Poly1Loss, family="classification",
    input_kind="logits", target_kind="index", unit="element of (N, *)",
    reference="Leng et al. 2022, PolyLoss, arXiv:2204.12511",
    sample_inputs=lambda dtype, device: [*_index_samples(dtype, device),
                                         *_with(_index_samples(dtype, device)[:1], epsilon=-0.5)],
    extreme_inputs=lambda dtype, device: [*_index_extremes(dtype, device),
                                          *_with(_index_extremes(dtype, device), epsilon=-1.0)],
    error_inputs=lambda: _index_errors("poly1_loss", extra=[
        _hparam_error("poly1_loss", {"epsilon": -2.0}, ValueError, r"poly1_loss: epsilon must be >= -1, got -2.0"),
        _hparam_error("poly1_loss", {"epsilon": -3.0}, ValueError, r"epsilon must be >= -1", construction=True),
    ]),
)


def _check_sce_args(*, alpha: float, beta: float, log_zero: float, **_: object) -> None:
    loss = "symmetric_cross_entropy_loss"
    check_range(alpha, "alpha", loss, low=0.0)
    check_range(beta, "beta", loss, low=0.0)
    check_range(log_zero, "log_zero", loss, high=0.0, high_inclusive=False)


@loss_function
def symmetric_cross_entropy_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    alpha: float = 0.1,
    beta: float = 1.0,
    log_zero: float = -4.0,
    class_weight: Tensor | None = None,
    ignore_index: int | None = -100,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Symmetric cross-entropy: cross-entropy plus reverse cross-entropy, for noisy labels.

    The reverse term :math:`-\sum_c p_c \log q_c` swaps the roles of prediction and (one-hot)
    label; it is bounded, so mislabelled examples pull less than under cross-entropy alone.

    .. math::
        U_n = \alpha\,(-\log p_{n,y_n}) + \beta\,(-A)\,(1 - p_{n,y_n}),
        \qquad p_n = \operatorname{softmax}(x_n)

    where the reverse cross-entropy of a one-hot label, with :math:`\log 0` replaced by
    :math:`A`, is :math:`-\sum_{c \ne y} p_c A = -A (1 - p_y)`. Multiplied by the class weight
    :math:`w_{y_n}` (the mean's denominator, as in cross-entropy).

    Args:
        logits: Unnormalised scores ``(N, C, *)``.
        target: Class indices ``(N, *)`` in ``[0, C)``, or ``ignore_index``.
        alpha: Weight :math:`\alpha \ge 0` of the cross-entropy term (the paper's CIFAR-10 value 0.1).
        beta: Weight :math:`\beta \ge 0` of the reverse term (the paper's value 1.0).
        log_zero: :math:`A < 0`, the value that replaces :math:`\log 0` (the paper's -4).
        class_weight: Per-class weights :math:`w`, shape ``(C,)``.
        ignore_index: Target value that is left out (``None``: none is).
        reduction, sample_weight, mask: See the conventions page. Unit: one element of ``(N, *)``.

    Shape:
        - logits: ``(N, C, *)``; target: ``(N, *)``.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` is not ``(N, *)`` for logits ``(N, C, *)``.
        TypeError: If ``target`` is not an integer tensor, or ``logits`` not floating point.
        ValueError: If ``alpha < 0``, ``beta < 0`` or ``log_zero >= 0``; in validation mode, if a
            class index is out of range.

    Note:
        ``alpha=1, beta=0`` equals :func:`cross_entropy`; ``alpha=1, beta=-epsilon/A`` equals
        :func:`poly1_loss` with that ``epsilon``. The closed form of the reverse term is exact
        (no probability is clamped), :math:`1-p_t` comes from ``-expm1(log p_t)``, and the gradient
        is the only ``(N, C, *)`` tensor a forward and backward pass allocates. When every target is ignored,
        ``"mean"`` returns 0.0 with zero gradients.

    References:
        Wang et al., *Symmetric Cross Entropy for Robust Learning with Noisy Labels*, ICCV 2019.
        https://arxiv.org/abs/1908.06112

    Examples:
        >>> import torch
        >>> from lossforge.functional import symmetric_cross_entropy_loss
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [0.0, 1.0, 0.0]])
        >>> symmetric_cross_entropy_loss(logits, torch.tensor([0, 2, 0]), reduction="none")
        tensor([0.6418, 0.5793, 3.3074])
    """
    loss = "symmetric_cross_entropy_loss"
    _check_sce_args(alpha=alpha, beta=beta, log_zero=log_zero)
    logits, safe, keep, cw = _prepare_lean(logits, target, class_weight, ignore_index, loss)
    log_pt = target_log_prob(logits, safe)
    u = (-alpha) * log_pt + (-beta * log_zero) * _neg_expm1(log_pt)
    return _reduce_index(u, safe, keep, cw, reduction, sample_weight, mask, loss)


class SymmetricCrossEntropyLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.symmetric_cross_entropy_loss`.

    Args:
        alpha: Weight of the cross-entropy term, ``>= 0``.
        beta: Weight of the reverse cross-entropy term, ``>= 0``.
        log_zero: The value ``A < 0`` that replaces ``log 0``.
        class_weight: Per-class weights ``(C,)`` (a buffer).
        ignore_index: Target value that is left out.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = symmetric_cross_entropy_loss
    validate = _check_sce_args

    def __init__(self, *, alpha: float = 0.1, beta: float = 1.0, log_zero: float = -4.0,
                 class_weight: Tensor | None = None, ignore_index: int | None = -100,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, alpha=alpha, beta=beta, log_zero=log_zero, class_weight=class_weight,
                         ignore_index=ignore_index)


register_loss(
    name="symmetric_cross_entropy", function=symmetric_cross_entropy_loss, module=SymmetricCrossEntropyLoss,
    family="classification", input_kind="logits", target_kind="index", unit="element of (N, *)",
    reference="Wang et al. 2019, Symmetric Cross Entropy for Robust Learning with Noisy Labels, arXiv:1908.06112",
    sample_inputs=lambda dtype, device: [*_index_samples(dtype, device),
                                         *_with(_index_samples(dtype, device)[:1], alpha=1.0, beta=0.5)],
    extreme_inputs=_index_extremes,
    error_inputs=lambda: _index_errors("symmetric_cross_entropy_loss", extra=[
        _hparam_error("symmetric_cross_entropy_loss", {"alpha": -0.1}, ValueError,
                      r"symmetric_cross_entropy_loss: alpha must be >= 0, got -0.1"),
        _hparam_error("symmetric_cross_entropy_loss", {"beta": -1.0}, ValueError,
                      r"symmetric_cross_entropy_loss: beta must be >= 0, got -1.0"),
        _hparam_error("symmetric_cross_entropy_loss", {"log_zero": 0.0}, ValueError,
                      r"symmetric_cross_entropy_loss: log_zero must be < 0, got 0.0"),
        _hparam_error("symmetric_cross_entropy_loss", {"log_zero": 1.0}, ValueError, r"log_zero must be < 0",
                      construction=True),
    ]),
)


def _check_gce_args(*, q: float, **_: object) -> None:
    check_range(q, "q", "generalized_cross_entropy_loss", low=0.0, high=1.0, low_inclusive=False)


@loss_function
def generalized_cross_entropy_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    q: float = 0.7,
    class_weight: Tensor | None = None,
    ignore_index: int | None = -100,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Generalized cross-entropy (the :math:`L_q` loss), robust to noisy labels.

    Interpolates between cross-entropy (:math:`q \to 0`) and the bounded mean absolute error
    (:math:`q = 1`): a bounded loss caps how hard a mislabelled example can pull.

    .. math::
        U_n = \frac{1 - p_{n,y_n}^{\,q}}{q}, \qquad p_n = \operatorname{softmax}(x_n)

    multiplied by the class weight :math:`w_{y_n}` (the mean's denominator, as in cross-entropy).

    Args:
        logits: Unnormalised scores ``(N, C, *)``.
        target: Class indices ``(N, *)`` in ``[0, C)``, or ``ignore_index``.
        q: Exponent :math:`q \in (0, 1]` (the paper's default 0.7); 1 gives :math:`1 - p_t`.
        class_weight: Per-class weights :math:`w`, shape ``(C,)``.
        ignore_index: Target value that is left out (``None``: none is).
        reduction, sample_weight, mask: See the conventions page. Unit: one element of ``(N, *)``.

    Shape:
        - logits: ``(N, C, *)``; target: ``(N, *)``.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` is not ``(N, *)`` for logits ``(N, C, *)``.
        TypeError: If ``target`` is not an integer tensor, or ``logits`` not floating point.
        ValueError: If ``q`` is outside ``(0, 1]``; in validation mode, if a class index is out of range.

    Note:
        Computed as ``-expm1(q * log p_t) / q`` from ``log p_t``, never as a power of a computed
        probability: exact for small ``q`` (the limit :math:`q \to 0` is cross-entropy, reached
        without cancellation), bounded by :math:`1/q`, with the finite gradient
        :math:`-p_t^{\,q}` with respect to :math:`\log p_t`. The gradient is the only
        ``(N, C, *)`` tensor a forward and backward pass allocates. When every target is ignored,
        ``"mean"`` returns 0.0 with zero gradients.

    References:
        Zhang and Sabuncu, *Generalized Cross Entropy Loss for Training Deep Neural Networks with
        Noisy Labels*, NeurIPS 2018. https://arxiv.org/abs/1805.07836

    Examples:
        >>> import torch
        >>> from lossforge.functional import generalized_cross_entropy_loss
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [0.0, 1.0, 0.0]])
        >>> generalized_cross_entropy_loss(logits, torch.tensor([0, 2, 0]), reduction="none")
        tensor([0.1601, 0.1442, 0.9463])
        >>> generalized_cross_entropy_loss(logits, torch.tensor([0, 2, 0]), q=1e-6)  # ~ cross-entropy
        tensor(0.6244)
    """
    loss = "generalized_cross_entropy_loss"
    _check_gce_args(q=q)
    logits, safe, keep, cw = _prepare_lean(logits, target, class_weight, ignore_index, loss)
    log_pt = target_log_prob(logits, safe)
    u = _neg_expm1(q * log_pt) / q
    return _reduce_index(u, safe, keep, cw, reduction, sample_weight, mask, loss)


class GeneralizedCrossEntropyLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.generalized_cross_entropy_loss`.

    Args:
        q: Exponent in ``(0, 1]``.
        class_weight: Per-class weights ``(C,)`` (a buffer).
        ignore_index: Target value that is left out.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = generalized_cross_entropy_loss
    validate = _check_gce_args

    def __init__(self, *, q: float = 0.7, class_weight: Tensor | None = None, ignore_index: int | None = -100,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, q=q, class_weight=class_weight, ignore_index=ignore_index)


register_loss(
    name="generalized_cross_entropy", function=generalized_cross_entropy_loss, module=GeneralizedCrossEntropyLoss,
    family="classification", input_kind="logits", target_kind="index", unit="element of (N, *)",
    reference="Zhang & Sabuncu 2018, Generalized Cross Entropy Loss, arXiv:1805.07836",
    sample_inputs=lambda dtype, device: [*_index_samples(dtype, device),
                                         *_with(_index_samples(dtype, device)[:1], q=1.0),
                                         *_with(_index_samples(dtype, device)[:1], q=1e-3)],
    extreme_inputs=lambda dtype, device: [*_index_extremes(dtype, device),
                                          *_with(_index_extremes(dtype, device), q=1e-4)],
    error_inputs=lambda: _index_errors("generalized_cross_entropy_loss", extra=[
        _hparam_error("generalized_cross_entropy_loss", {"q": 0.0}, ValueError,
                      r"generalized_cross_entropy_loss: q must be in \(0, 1\], got 0.0"),
        _hparam_error("generalized_cross_entropy_loss", {"q": 1.5}, ValueError, r"q must be in \(0, 1\]",
                      construction=True),
    ]),
)


# --------------------------------------------------------------------------------------------------
# bi_tempered
# --------------------------------------------------------------------------------------------------


def _check_bi_tempered_args(*, t1: float, t2: float, num_iters: int, label_smoothing: float = 0.0,
                            **_: object) -> None:
    loss = "bi_tempered_loss"
    check_range(t1, "t1", loss, low=0.0, high=1.0)
    check_range(t2, "t2", loss, low=1.0)
    if isinstance(num_iters, bool) or not isinstance(num_iters, int) or num_iters < 1:
        raise ValueError(message(loss, "num_iters", "must be an int >= 1", repr(num_iters)))
    check_range(label_smoothing, "label_smoothing", loss, low=0.0, high=1.0)


def _log_t_scalar(v: float, t: float) -> float:
    """Tempered logarithm of a Python number (``v > 0``)."""
    return math.log(v) if t == 1.0 else math.expm1((1.0 - t) * math.log(v)) / (1.0 - t)


def _log_t(log_v: Tensor, t: float) -> Tensor:
    """Tempered logarithm :math:`(v^{1-t} - 1)/(1-t)` from ``log v`` (no power of a computed probability)."""
    return log_v if t == 1.0 else torch.expm1((1.0 - t) * log_v) / (1.0 - t)


def _tempered_log_softmax(a: Tensor, t: float, num_iters: int) -> Tensor:
    r"""``log exp_t(a - lambda(a))`` along dim 1, where :math:`\lambda` makes the probabilities sum to 1.

    :math:`\lambda` is found by Newton's method on :math:`Z(\lambda)^{1-t} = 1` started at the row
    maximum (at most 8 steps reached float64 precision for 3 to 32768 classes, :math:`t` from
    1.0001 to 8 and logits up to 1e4; the paper's fixed-point iteration stalls on some of these).
    Its gradient is the exact implicit one, the escort distribution :math:`p^t / \sum_c p_c^t`,
    attached without back-propagating through the iterations.
    """
    if t == 1.0:
        return F.log_softmax(a, 1)
    floor = -1.0 + torch.finfo(a.dtype).eps

    def log_p(lam: Tensor) -> Tensor:
        # t > 1: 1 + (1 - t) u >= 1 for u <= 0; the floor only guards an unconverged lambda
        return torch.log1p(((1.0 - t) * (a - lam)).clamp_min(floor)) / (1.0 - t)

    with torch.no_grad():
        lam = a.amax(1, keepdim=True)
        for _ in range(num_iters):
            lp = log_p(lam)
            log_z = torch.logsumexp(lp, 1, keepdim=True)
            # Newton step on g = Z^(1-t) - 1, g' = (t-1) Z^(-t) sum_c p_c^t: g is linear in lambda when
            # the logits are equal and nearly so otherwise, so a few steps suffice for any C
            slope = (t - 1.0) * torch.exp(torch.logsumexp(t * lp, 1, keepdim=True) - t * log_z)
            lam = lam - torch.expm1((1.0 - t) * log_z) / slope
        escort = torch.softmax(t * log_p(lam), 1)
    lam = lam + ((a - a.detach()) * escort).sum(1, keepdim=True)
    return log_p(lam)


@loss_function
def bi_tempered_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    t1: float = 0.8,
    t2: float = 1.2,
    num_iters: int = 10,
    label_smoothing: float = 0.0,
    class_weight: Tensor | None = None,
    ignore_index: int | None = -100,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Bi-tempered logistic loss: a bounded loss on a heavy-tailed softmax, for noisy labels.

    Replaces the logarithm of the loss by the tempered :math:`\log_{t_1}` (bounded for
    :math:`t_1 < 1`: outliers far from the boundary stop pulling) and the softmax by the tempered
    softmax with :math:`\exp_{t_2}` (heavier tails for :math:`t_2 > 1`: mislabelled examples close
    to the boundary pull less).

    .. math::
        U_n = \sum_c \Big[ y_c \log_{t_1} y_c - y_c \log_{t_1} p_c
              - \frac{y_c^{2-t_1} - p_c^{2-t_1}}{2-t_1} \Big],
        \qquad p_c = \exp_{t_2}(x_c - \lambda(x)),\ \sum_c p_c = 1

    with :math:`\log_t v = (v^{1-t}-1)/(1-t)`, :math:`\exp_t u = [1+(1-t)u]_+^{1/(1-t)}`, and
    :math:`y = (1-\varepsilon)\,\mathrm{onehot}(y_n) + \varepsilon/C`. Multiplied by the class weight
    :math:`w_{y_n}` (the mean's denominator, as in cross-entropy).

    Args:
        logits: Unnormalised scores ``(N, C, *)``.
        target: Class indices ``(N, *)`` in ``[0, C)``, or ``ignore_index``.
        t1: Temperature of the logarithm, :math:`t_1 \in [0, 1]` (1: the ordinary log).
        t2: Temperature of the softmax, :math:`t_2 \ge 1` (1: the ordinary softmax).
        num_iters: Newton iterations for the normalisation :math:`\lambda` when :math:`t_2 > 1`
            (8 reach float64 precision on every case tried, up to 32768 classes and :math:`t_2 = 8`).
        label_smoothing: :math:`\varepsilon \in [0, 1]`, as in :func:`cross_entropy`.
        class_weight: Per-class weights :math:`w`, shape ``(C,)``.
        ignore_index: Target value that is left out (``None``: none is).
        reduction, sample_weight, mask: See the conventions page. Unit: one element of ``(N, *)``.

    Shape:
        - logits: ``(N, C, *)``; target: ``(N, *)``.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` is not ``(N, *)`` for logits ``(N, C, *)``.
        TypeError: If ``target`` is not an integer tensor, or ``logits`` not floating point.
        ValueError: If ``t1`` is outside ``[0, 1]``, ``t2 < 1``, ``num_iters < 1`` or
            ``label_smoothing`` outside ``[0, 1]``; in validation mode, if a class index is out of range.

    Note:
        With ``t1 = t2 = 1`` and no smoothing it equals :func:`cross_entropy`; with smoothing it is
        the KL divergence from the smoothed label, which differs from smoothed cross-entropy by the
        label's entropy (a constant). Light tails (:math:`t_2 < 1`, where probabilities reach exactly 0)
        are not offered. Everything is computed from :math:`\log p` (``log1p`` of the tempered
        exponential's base, ``expm1`` for :math:`\log_{t_1}`), so values and gradients are finite for
        logits of any magnitude. The normaliser is found by Newton's method on
        :math:`(\sum_c p_c)^{1-t_2} = 1` (the paper's fixed-point iteration can stall for many
        classes) and its gradient is the exact implicit one. When every target is
        ignored, ``"mean"`` returns 0.0 with zero gradients.

    References:
        Amid et al., *Robust Bi-Tempered Logistic Loss Based on Bregman Divergences*, NeurIPS 2019.
        https://arxiv.org/abs/1906.03361

    Examples:
        >>> import torch
        >>> from lossforge.functional import bi_tempered_loss
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [0.0, 1.0, 0.0]])
        >>> bi_tempered_loss(logits, torch.tensor([0, 2, 0]), reduction="none")
        tensor([0.1600, 0.1476, 1.1052])
        >>> bi_tempered_loss(logits, torch.tensor([0, 2, 0]), t1=1.0, t2=1.0)  # cross-entropy
        tensor(0.6244)
    """
    loss = "bi_tempered_loss"
    _check_bi_tempered_args(t1=t1, t2=t2, num_iters=num_iters, label_smoothing=label_smoothing)
    logits, safe, keep, cw = _prepare_index(logits, target, class_weight, ignore_index, loss)
    num_classes = logits.shape[1]
    log_p = _tempered_log_softmax(logits, t2, num_iters)
    eps = label_smoothing
    on, off = 1.0 - eps + eps / num_classes, eps / num_classes
    # the label terms sum_c [y log_t1 y - y^(2-t1)/(2-t1)] are numbers: y takes two values
    const = on * _log_t_scalar(on, t1) if on > 0 else 0.0
    if off > 0:
        const += (num_classes - 1) * off * _log_t_scalar(off, t1)
    const -= (on ** (2.0 - t1) + (num_classes - 1) * off ** (2.0 - t1)) / (2.0 - t1)
    log_t_p = _log_t(log_p, t1)
    u = const - (on - off) * log_t_p.gather(1, safe.unsqueeze(1)).squeeze(1)
    if off > 0:
        u = u - off * log_t_p.sum(1)
    if t1 == 1.0 and t2 == 1.0:
        u = u + 1.0  # sum_c p_c / (2 - t1) = 1 exactly for the ordinary softmax
    else:
        u = u + torch.exp((2.0 - t1) * log_p).sum(1) / (2.0 - t1)
    return _reduce_index(u, safe, keep, cw, reduction, sample_weight, mask, loss)


class BiTemperedLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.bi_tempered_loss`.

    Args:
        t1: Temperature of the logarithm, in ``[0, 1]``.
        t2: Temperature of the softmax, ``>= 1``.
        num_iters: Newton iterations of the normalisation.
        label_smoothing: In ``[0, 1]``.
        class_weight: Per-class weights ``(C,)`` (a buffer).
        ignore_index: Target value that is left out.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = bi_tempered_loss
    validate = _check_bi_tempered_args

    def __init__(self, *, t1: float = 0.8, t2: float = 1.2, num_iters: int = 10, label_smoothing: float = 0.0,
                 class_weight: Tensor | None = None, ignore_index: int | None = -100,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, t1=t1, t2=t2, num_iters=num_iters, label_smoothing=label_smoothing,
                         class_weight=class_weight, ignore_index=ignore_index)


register_loss(
    name="bi_tempered", function=bi_tempered_loss, module=BiTemperedLoss, family="classification",
    input_kind="logits", target_kind="index", unit="element of (N, *)",
    reference="Amid et al. 2019, Robust Bi-Tempered Logistic Loss Based on Bregman Divergences, arXiv:1906.03361",
    sample_inputs=lambda dtype, device: [
        *_index_samples(dtype, device),
        *_with(_index_samples(dtype, device)[:1], t1=0.5, t2=2.0, label_smoothing=0.1),
        *_with(_index_samples(dtype, device)[:1], t1=1.0, t2=1.0),
    ],
    extreme_inputs=lambda dtype, device: [*_index_extremes(dtype, device),
                                          *_with(_index_extremes(dtype, device), t1=0.2, t2=4.0, label_smoothing=0.1)],
    error_inputs=lambda: _index_errors("bi_tempered_loss", extra=[
        _hparam_error("bi_tempered_loss", {"t1": 1.5}, ValueError,
                      r"bi_tempered_loss: t1 must be in \[0, 1\], got 1.5"),
        _hparam_error("bi_tempered_loss", {"t2": 0.5}, ValueError, r"bi_tempered_loss: t2 must be >= 1, got 0.5"),
        _hparam_error("bi_tempered_loss", {"num_iters": 0}, ValueError,
                      r"bi_tempered_loss: num_iters must be an int >= 1, got 0"),
        _hparam_error("bi_tempered_loss", {"t2": 0.9}, ValueError, r"t2 must be >= 1", construction=True),
    ]),
)


# --------------------------------------------------------------------------------------------------
# Class counts: ldam, class-balanced weights
# --------------------------------------------------------------------------------------------------

Counts = Tensor | Sequence[float]


def _counts(class_counts: object, loss: str, *, num_classes: int | None = None,
            device: torch.device | None = None, values: bool = True) -> Tensor:
    """``class_counts`` as a float64 tensor ``(C,)``; values (positive, finite) checked when asked."""
    if isinstance(class_counts, (list, tuple)):
        try:
            class_counts = torch.tensor(class_counts, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(message(loss, "class_counts", "must be a sequence of numbers or a tensor",
                                    repr(class_counts))) from None
    if not isinstance(class_counts, Tensor):
        raise TypeError(message(loss, "class_counts", "must be a tensor or a sequence of numbers",
                                type(class_counts).__name__))
    if class_counts.is_complex() or class_counts.dtype == torch.bool:
        raise TypeError(message(loss, "class_counts", "must hold real numbers", f"dtype {class_counts.dtype}"))
    if class_counts.dim() != 1 or class_counts.numel() == 0 or (
            num_classes is not None and class_counts.shape[0] != num_classes):
        expected = "(C,)" if num_classes is None else f"(C,) = ({num_classes},)"
        raise ShapeError(message(loss, "class_counts", f"must have shape {expected}", tuple(class_counts.shape)),
                         expected=expected, actual=tuple(class_counts.shape))
    counts = class_counts.to(device=device if device is not None else class_counts.device, dtype=torch.float64)
    if values and class_counts.numel() > 0:
        bad = counts[~(torch.isfinite(counts) & (counts > 0))]
        if bad.numel() > 0:
            raise ValueError(message(loss, "class_counts", "must hold positive finite counts",
                                     f"{float(bad[0]):g}", hint="drop classes that never occur, or count them as 1"))
    return counts


def _check_ldam_args(*, max_m: float, s: float, class_counts: object = None, **_: object) -> None:
    check_range(max_m, "max_m", "ldam_loss", low=0.0)
    check_range(s, "s", "ldam_loss", low=0.0, low_inclusive=False)
    if class_counts is not None:
        _counts(class_counts, "ldam_loss")


@loss_function
def ldam_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    class_counts: Counts,
    max_m: float = 0.5,
    s: float = 30.0,
    class_weight: Tensor | None = None,
    ignore_index: int | None = -100,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Label-distribution-aware margin (LDAM) loss, for long-tailed classification.

    Cross-entropy on scaled logits where the target logit is lowered by a class margin that is
    larger for rare classes, so their decision boundaries get more room.

    .. math::
        U_n = -\log \operatorname{softmax}\big(s\,(x_n - \Delta_{y_n} e_{y_n})\big)_{y_n},
        \qquad \Delta_j = \frac{K}{n_j^{1/4}},\ K \text{ such that } \max_j \Delta_j = m_{\max}

    multiplied by the class weight :math:`w_{y_n}` (the mean's denominator, as in cross-entropy;
    the paper's deferred re-weighting passes class-balanced weights here later in training).

    Args:
        logits: Unnormalised scores ``(N, C, *)`` (in the paper, cosine similarities of
            normalised features and weights).
        target: Class indices ``(N, *)`` in ``[0, C)``, or ``ignore_index``.
        class_counts: Training examples per class :math:`n_j`, shape ``(C,)``, positive (a tensor
            or a list).
        max_m: The largest margin :math:`m_{\max} \ge 0` (of the rarest class; the paper's 0.5).
        s: Logit scale :math:`s > 0` (the paper's 30).
        class_weight: Per-class weights :math:`w`, shape ``(C,)``.
        ignore_index: Target value that is left out (``None``: none is).
        reduction, sample_weight, mask: See the conventions page. Unit: one element of ``(N, *)``.

    Shape:
        - logits: ``(N, C, *)``; target: ``(N, *)``; class_counts: ``(C,)``.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` is not ``(N, *)`` for logits ``(N, C, *)``, or ``class_counts``
            is not ``(C,)``.
        TypeError: If ``target`` is not an integer tensor, ``logits`` not floating point, or
            ``class_counts`` not numbers.
        ValueError: If ``max_m < 0`` or ``s <= 0``; if a count is not positive (always for the
            module and lists, in validation mode for tensors given to the function); in validation
            mode, if a class index is out of range.

    Note:
        With ``max_m=0`` and ``s=1`` it equals :func:`cross_entropy`. Computed with log-softmax
        arithmetic on the scaled, shifted logits (finite for any magnitude); the softmax part
        allocates no log-softmax copy. When every target is ignored, ``"mean"`` returns 0.0
        with zero gradients.

    References:
        Cao et al., *Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss*,
        NeurIPS 2019. https://arxiv.org/abs/1906.07413

    Examples:
        >>> import torch
        >>> from lossforge.functional import ldam_loss
        >>> cosine = torch.tensor([[0.8, 0.1, -0.2], [0.1, 0.2, 0.6], [0.0, 0.3, 0.1]])
        >>> target = torch.tensor([0, 2, 1])
        >>> ldam_loss(cosine, target, class_counts=[500, 50, 5], s=10.0, reduction="none")
        tensor([0.0046, 1.5514, 1.4061])
        >>> ldam_loss(cosine, target, class_counts=[500, 50, 5], s=10.0, max_m=0.0, reduction="none")
        tensor([0.0010, 0.0247, 0.1698])
    """
    loss = "ldam_loss"
    _check_ldam_args(max_m=max_m, s=s)
    logits, safe, keep, cw = _prepare_index(logits, target, class_weight, ignore_index, loss)
    counts = _counts(class_counts, loss, num_classes=logits.shape[1], device=logits.device,
                     values=validation_enabled() or not isinstance(class_counts, Tensor))
    margins = counts.pow(-0.25)
    margins = (margins * (max_m / margins.amax())).to(logits.dtype)
    t = safe.unsqueeze(1)
    shifted = (logits * s).scatter_add(1, t, (-s * margins[safe]).unsqueeze(1))
    u = -target_log_prob(shifted, safe)
    return _reduce_index(u, safe, keep, cw, reduction, sample_weight, mask, loss)


class LDAMLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.ldam_loss`.

    Args:
        class_counts: Training examples per class ``(C,)`` (a buffer; lists are converted).
        max_m: The largest margin, ``>= 0``.
        s: Logit scale, ``> 0``.
        class_weight: Per-class weights ``(C,)`` (a buffer).
        ignore_index: Target value that is left out.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = ldam_loss
    validate = _check_ldam_args
    tensor_params = ("class_weight", "class_counts")

    def __init__(self, *, class_counts: Counts, max_m: float = 0.5, s: float = 30.0,
                 class_weight: Tensor | None = None, ignore_index: int | None = -100,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, class_counts=class_counts, max_m=max_m, s=s,
                         class_weight=class_weight, ignore_index=ignore_index)


def _counts_for(num_classes: int, device: torch.device | str, *, equal: bool = False) -> Tensor:
    """Long-tailed class counts 1000, 200, 40, ... (or all equal) for sample inputs."""
    if equal:
        return torch.full((num_classes,), 50.0, device=device)
    return torch.tensor([1000.0 / 5**j for j in range(num_classes)], device=device).round().clamp_min(1.0)


def _ldam_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = [Sample(s.args, {**s.kwargs, "class_counts": _counts_for(s.args[0].shape[1], device)}, s.name, s.plain)
           for s in _index_samples(dtype, device)]
    logits, target = out[0].args
    out.append(Sample((logits, target), {"class_counts": _counts_for(5, device), "max_m": 0.0, "s": 1.0},
                      name="max_m=0, s=1"))
    return out


def _with_counts(errors: list[ErrorSample], *, class_weight: bool = True) -> list[ErrorSample]:
    """Error samples of a 3-class problem, with class counts added (and class_weight ones dropped)."""
    counts = torch.tensor([30.0, 20.0, 10.0])
    return [ErrorSample(e.args, {"class_counts": counts, **e.kwargs}, e.exc_type, e.match, e.at_construction)
            for e in errors if class_weight or "class_weight" not in e.kwargs]


register_loss(
    name="ldam", function=ldam_loss, module=LDAMLoss, family="classification",
    input_kind="logits", target_kind="index", unit="element of (N, *)",
    reference="Cao et al. 2019, LDAM loss, arXiv:1906.07413",
    sample_inputs=_ldam_samples,
    extreme_inputs=lambda dtype, device: _with(_index_extremes(dtype, device), class_counts=_counts_for(3, device)),
    error_inputs=lambda: _with_counts(_index_errors("ldam_loss", extra=[
        _hparam_error("ldam_loss", {"max_m": -0.1}, ValueError, r"ldam_loss: max_m must be >= 0, got -0.1"),
        _hparam_error("ldam_loss", {"s": 0.0}, ValueError, r"ldam_loss: s must be > 0, got 0.0"),
        _hparam_error("ldam_loss", {"class_counts": torch.tensor([3.0, 2.0])}, ValueError,
                      r"ldam_loss: class_counts must have shape \(C,\) = \(3,\), got \(2,\)"),
        _hparam_error("ldam_loss", {"class_counts": [3, 0, 2]}, ValueError,
                      r"ldam_loss: class_counts must hold positive finite counts, got 0"),
        _hparam_error("ldam_loss", {"class_counts": [3, -1, 2]}, ValueError, r"class_counts must hold positive",
                      construction=True),
    ])),
)


def _check_beta(beta: object, loss: str) -> float:
    return check_range(beta, "beta", loss, low=0.0, high=1.0)


def _balanced_weights(counts: Tensor, beta: float) -> Tensor:
    """Normalised inverse effective numbers, float64."""
    if beta == 1.0:
        w = counts.reciprocal()
    elif beta == 0.0:
        w = torch.ones_like(counts)
    else:
        # (1 - beta) / (1 - beta^n), with 1 - beta^n = -expm1(n log beta) (no cancellation)
        w = -math.expm1(math.log(beta)) / -torch.expm1(counts * math.log(beta))
    return w * (counts.shape[0] / w.sum())


def class_balanced_weights(class_counts: Counts, beta: float = 0.9999) -> Tensor:
    r"""Class weights from the effective number of samples, normalised to sum to the number of classes.

    Re-weights classes by the inverse of their *effective number* of samples
    :math:`E_n = (1-\beta^n)/(1-\beta)`, which grows like :math:`n` for small counts and saturates
    at :math:`1/(1-\beta)`: between no re-weighting (:math:`\beta = 0`) and inverse class frequency
    (:math:`\beta \to 1`). Pass the result as ``class_weight`` to any loss that takes one.

    .. math::
        w_j = \frac{C\, \tilde w_j}{\sum_k \tilde w_k}, \qquad \tilde w_j = \frac{1-\beta}{1-\beta^{n_j}}

    Args:
        class_counts: Training examples per class :math:`n_j`, shape ``(C,)``, positive (a tensor
            or a list).
        beta: :math:`\beta \in [0, 1]`; 0 gives equal weights, 1 inverse frequency (the paper uses
            0.9, 0.99, 0.999, 0.9999).

    Shape:
        - class_counts: ``(C,)``; output: ``(C,)``, float32, on ``class_counts``' device.

    Returns:
        The weights, summing to :math:`C`.

    Raises:
        ShapeError: If ``class_counts`` is not one-dimensional and non-empty.
        TypeError: If ``class_counts`` is not numbers, or ``beta`` not a number.
        ValueError: If a count is not positive and finite, or ``beta`` is outside ``[0, 1]``.

    Note:
        Computed in float64 with :math:`1-\beta^n = -\operatorname{expm1}(n \log \beta)`, exact
        for :math:`\beta` close to 1 and large counts; :math:`\beta = 1` is the limit :math:`1/n`.

    References:
        Cui et al., *Class-Balanced Loss Based on Effective Number of Samples*, CVPR 2019.
        https://arxiv.org/abs/1901.05555

    Examples:
        >>> from lossforge.functional import class_balanced_weights
        >>> class_balanced_weights([1000, 100, 10], beta=0.999)
        tensor([0.0422, 0.2800, 2.6778])
        >>> class_balanced_weights([1000, 100, 10], beta=0.0)
        tensor([1., 1., 1.])
    """
    loss = "class_balanced_weights"
    b = _check_beta(beta, loss)
    counts = _counts(class_counts, loss)
    return _balanced_weights(counts, b).to(torch.float32)


def _check_class_balanced_args(*, beta: float, gamma: float, class_counts: object = None, **_: object) -> None:
    loss = "class_balanced_loss"
    _check_beta(beta, loss)
    check_range(gamma, "gamma", loss, low=0.0)
    if class_counts is not None:
        _counts(class_counts, loss)


@loss_function
def class_balanced_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    class_counts: Counts,
    beta: float = 0.9999,
    gamma: float = 0.0,
    ignore_index: int | None = -100,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Class-balanced cross-entropy (or focal) loss from the effective number of samples.

    Cross-entropy (``gamma=0``) or softmax focal loss (``gamma > 0``) with the class weights of
    :func:`class_balanced_weights`, for long-tailed training sets.

    .. math::
        U_n = -\,w_{y_n} (1 - p_{n,y_n})^{\gamma} \log p_{n,y_n},
        \qquad w = \text{class\_balanced\_weights}(n, \beta)

    With ``reduction="mean"`` the denominator is :math:`\sum_n w_{y_n}` (as torch's cross-entropy
    with ``weight``).

    Args:
        logits: Unnormalised scores ``(N, C, *)``.
        target: Class indices ``(N, *)`` in ``[0, C)``, or ``ignore_index``.
        class_counts: Training examples per class :math:`n_j`, shape ``(C,)``, positive.
        beta: :math:`\beta \in [0, 1]` of the effective number.
        gamma: Focal parameter :math:`\gamma \ge 0`; 0 gives cross-entropy.
        ignore_index: Target value that is left out (``None``: none is).
        reduction, sample_weight, mask: See the conventions page. Unit: one element of ``(N, *)``.

    Shape:
        - logits: ``(N, C, *)``; target: ``(N, *)``; class_counts: ``(C,)``.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` is not ``(N, *)`` for logits ``(N, C, *)``, or ``class_counts``
            is not ``(C,)``.
        TypeError: If ``target`` is not an integer tensor, ``logits`` not floating point, or
            ``class_counts`` not numbers.
        ValueError: If ``beta`` is outside ``[0, 1]`` or ``gamma < 0``; if a count is not positive
            (always for the module and lists, in validation mode for tensors given to the
            function); in validation mode, if a class index is out of range.

    Note:
        Equals ``focal_loss(logits, target, gamma=gamma, class_weight=class_balanced_weights(class_counts,
        beta))``, hence :func:`cross_entropy` with those weights for ``gamma=0``; ``beta=0`` (or equal
        counts) removes the weighting. The paper's sigmoid variant is ``binary_focal`` with these
        weights. When every target is ignored, ``"mean"`` returns 0.0 with zero gradients.

    References:
        Cui et al., *Class-Balanced Loss Based on Effective Number of Samples*, CVPR 2019.
        https://arxiv.org/abs/1901.05555

    Examples:
        >>> import torch
        >>> from lossforge.functional import class_balanced_loss
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [0.0, 1.0, 0.0]])
        >>> class_balanced_loss(logits, torch.tensor([0, 2, 1]), class_counts=[1000, 100, 10], beta=0.999)
        tensor(0.1895)
    """
    loss = "class_balanced_loss"
    _check_class_balanced_args(beta=beta, gamma=gamma)
    logits, safe, keep, _ = _prepare_lean(logits, target, None, ignore_index, loss)
    counts = _counts(class_counts, loss, num_classes=logits.shape[1], device=logits.device,
                     values=validation_enabled() or not isinstance(class_counts, Tensor))
    cw = _balanced_weights(counts, beta).to(_compute_dtype(logits))
    log_pt = target_log_prob(logits, safe)
    u = -log_pt if gamma == 0.0 else _focal_factor(log_pt, gamma) * -log_pt
    return _reduce_index(u, safe, keep, cw, reduction, sample_weight, mask, loss)


class ClassBalancedLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.class_balanced_loss`.

    Args:
        class_counts: Training examples per class ``(C,)`` (a buffer; lists are converted).
        beta: In ``[0, 1]``.
        gamma: Focal parameter, ``>= 0`` (0: cross-entropy).
        ignore_index: Target value that is left out.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = class_balanced_loss
    validate = _check_class_balanced_args
    tensor_params = ("class_counts",)

    def __init__(self, *, class_counts: Counts, beta: float = 0.9999, gamma: float = 0.0,
                 ignore_index: int | None = -100, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, class_counts=class_counts, beta=beta, gamma=gamma,
                         ignore_index=ignore_index)


def _class_balanced_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    base = [s for s in _index_samples(dtype, device) if "class_weight" not in s.kwargs]
    logits, target = base[0].args
    out = [Sample(s.args, {**s.kwargs, "class_counts": _counts_for(s.args[0].shape[1], device, equal=True)},
                  s.name + ", equal counts", s.plain) for s in base]
    out += [Sample((logits, target), {"class_counts": _counts_for(5, device), "beta": 0.99}, name="long tail",
                   plain=False),
            Sample((logits, target), {"class_counts": _counts_for(5, device), "beta": 0.999, "gamma": 2.0},
                   name="long tail, focal", plain=False)]
    return out


register_loss(
    name="class_balanced", function=class_balanced_loss, module=ClassBalancedLoss, family="classification",
    input_kind="logits", target_kind="index", unit="element of (N, *)",
    reference="Cui et al. 2019, Class-Balanced Loss Based on Effective Number of Samples, arXiv:1901.05555",
    sample_inputs=_class_balanced_samples,
    extreme_inputs=lambda dtype, device: _with(_index_extremes(dtype, device), class_counts=_counts_for(3, device),
                                               beta=0.99, gamma=0.5),
    error_inputs=lambda: [
        *_with_counts(_index_errors("class_balanced_loss", extra=[
            _hparam_error("class_balanced_loss", {"beta": 1.5}, ValueError,
                          r"class_balanced_loss: beta must be in \[0, 1\], got 1.5"),
            _hparam_error("class_balanced_loss", {"gamma": -1.0}, ValueError,
                          r"class_balanced_loss: gamma must be >= 0, got -1.0"),
            _hparam_error("class_balanced_loss", {"class_counts": [[1.0, 2.0, 3.0]]}, ValueError,
                          r"class_counts must have shape \(C,\) = \(3,\), got \(1, 3\)"),
            _hparam_error("class_balanced_loss", {"beta": -0.5}, ValueError, r"beta must be in \[0, 1\]",
                          construction=True),
        ]), class_weight=False),
        ErrorSample((torch.randn(4, 3), torch.tensor([0, 1, 2, 1])), {"class_counts": [3, 2, 1],
                    "class_weight": torch.ones(3)}, TypeError, r"unexpected keyword argument 'class_weight'"),
    ],
)


# --------------------------------------------------------------------------------------------------
# Distillation and consistency: distributions against distributions
# --------------------------------------------------------------------------------------------------


def _check_distillation_args(*, temperature: float, **_: object) -> None:
    check_range(temperature, "temperature", "distillation_loss", low=0.0, low_inclusive=False)


def _check_class_dim(x: Tensor, argument: str, loss: str, layout: str = "(N, C, *)", min_dim: int = 2) -> None:
    if x.dim() < min_dim:
        raise ShapeError(message(loss, argument, f"must have shape {layout}", tuple(x.shape)),
                         expected=layout, actual=tuple(x.shape))


@loss_function
def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    /,
    *,
    temperature: float = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Knowledge-distillation loss: KL divergence from the teacher's softened distribution, times :math:`T^2`.

    Trains a student to match a teacher's class probabilities at temperature :math:`T`; the
    :math:`T^2` factor keeps the gradient scale independent of :math:`T`, so the loss can be added
    to a hard-label cross-entropy with a fixed coefficient (``distillation + 0.5 * cross_entropy``
    with the labels is a composition of two losses, not an option here).

    .. math::
        U_n = T^2 \sum_c q_{n,c} \,(\log q_{n,c} - \log p_{n,c}),
        \qquad q_n = \operatorname{softmax}(t_n / T),\ p_n = \operatorname{softmax}(s_n / T)

    Args:
        student_logits: Student scores :math:`s`, ``(N, C, *)``.
        teacher_logits: Teacher scores :math:`t`, the same shape (detach them for a frozen teacher;
            the loss is differentiable in both).
        temperature: :math:`T > 0`; values of 2 to 20 are common (Hinton et al.).
        reduction, sample_weight, mask: See the conventions page. Unit: one element of ``(N, *)``
            (for ``(N, C)`` logits: one sample, its terms summed over the classes).

    Shape:
        - student_logits, teacher_logits: ``(N, C, *)``.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ, or the logits have fewer than 2 dims.
        TypeError: If either input is not floating point.
        ValueError: If ``temperature <= 0``.

    Note:
        ``"mean"`` is the true KL divergence per sample (torch's ``reduction="batchmean"`` for
        ``(N, C)`` logits, not its elementwise ``"mean"``): it equals
        ``torch.nn.functional.kl_div(log_softmax(s/T), log_softmax(t/T), reduction="batchmean",
        log_target=True) * T**2``. Both distributions are handled as log-probabilities
        (``log_softmax``; :math:`q \log q` is ``exp(log q) * log q``), so a teacher probability that
        underflows to 0 contributes exactly 0, with finite gradients for logits of any magnitude.
        ``N = 0`` gives 0.0 for ``"mean"``.

    References:
        Hinton, Vinyals and Dean, *Distilling the Knowledge in a Neural Network*, 2015.
        https://arxiv.org/abs/1503.02531

    Examples:
        >>> import torch
        >>> from lossforge.functional import distillation_loss
        >>> student = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
        >>> teacher = torch.tensor([[3.0, 1.0, -2.0], [0.0, 1.0, 2.0]])
        >>> distillation_loss(student, teacher, temperature=2.0, reduction="none")
        tensor([0.1449, 0.1988])
    """
    loss = "distillation_loss"
    _check_distillation_args(temperature=temperature)
    check_float(student_logits, "student_logits", loss)
    check_float(teacher_logits, "teacher_logits", loss)
    check_same_shape(student_logits, teacher_logits, loss, ("student_logits", "teacher_logits"))
    _check_class_dim(student_logits, "student_logits", loss)
    s, t = upcast(student_logits), upcast(teacher_logits)
    if s.dtype != t.dtype:
        s, t = s.to(torch.promote_types(s.dtype, t.dtype)), t.to(torch.promote_types(s.dtype, t.dtype))
    log_p = F.log_softmax(s / temperature, 1)
    log_q = F.log_softmax(t / temperature, 1)
    u = (temperature**2) * (log_q.exp() * (log_q - log_p)).sum(1)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class DistillationLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.distillation_loss`.

    Args:
        temperature: Softening temperature, ``> 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = distillation_loss
    validate = _check_distillation_args

    def __init__(self, *, temperature: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, temperature=temperature)


def _distillation_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(2)
    s, t = (randn(8, 5, gen=g, dtype=dtype, device=device, scale=2.0) for _ in range(2))
    s4, t4 = (randn(3, 4, 2, 3, gen=g, dtype=dtype, device=device) for _ in range(2))
    return [Sample((s, t), name="(N, C)"), Sample((s4, t4), name="(N, C, H, W)"),
            Sample((s, t), {"temperature": 4.0}, name="T=4")]


def _distillation_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    x = _index_extremes(dtype, device)[0].args[0]
    return [Sample((x, x.flip(1)), name="logits +-1e4"), Sample((x, x), {"temperature": 0.5}, name="equal, T=0.5")]


def _distillation_errors() -> list[ErrorSample]:
    loss = "distillation_loss"
    x = torch.randn(4, 3)
    return [
        ErrorSample((x, torch.randn(4, 2)), {}, ValueError,
                    rf"{loss}: teacher_logits must have the shape of student_logits \(4, 3\), got \(4, 2\)"),
        ErrorSample((torch.randn(3), torch.randn(3)), {}, ValueError,
                    rf"{loss}: student_logits must have shape \(N, C, \*\), got \(3,\)"),
        ErrorSample((x.long(), x), {}, TypeError, rf"{loss}: student_logits must be a floating-point tensor"),
        ErrorSample((x, x.long()), {}, TypeError, rf"{loss}: teacher_logits must be a floating-point tensor"),
        ErrorSample((x, x), {"temperature": 0.0}, ValueError, rf"{loss}: temperature must be > 0, got 0.0"),
        ErrorSample((x, x), {"temperature": -1.0}, ValueError, r"temperature must be > 0", at_construction=True),
        ErrorSample((x, x), {"reduction": "batchmean"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((x, x), {"weight": torch.ones(4)}, TypeError, r"Hint: use sample_weight="),
    ]


register_loss(
    name="distillation", function=distillation_loss, module=DistillationLoss, family="classification",
    input_kind="logits", target_kind="real", unit="element of (N, *) (a sample, summed over classes)",
    reference="Hinton et al. 2015, Distilling the Knowledge in a Neural Network, arXiv:1503.02531",
    sample_inputs=_distillation_samples, extreme_inputs=_distillation_extremes, error_inputs=_distillation_errors,
    aliases=("kd",),
)


@loss_function
def jsd_consistency_loss(
    logits: Tensor,
    /,
    *,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Jensen-Shannon consistency between the predictions on K views of each sample (AugMix).

    Makes a model's predictions stable under data augmentation: the predicted distributions on
    the clean image and its augmented views are pulled towards their mixture. Used as
    ``cross_entropy(clean_logits, target) + 12 * jsd_consistency(stacked_logits)`` in AugMix.

    .. math::
        U_n = \frac{1}{K} \sum_{k=1}^{K} \sum_c p^{(k)}_{n,c}
              \big(\log p^{(k)}_{n,c} - \log m_{n,c}\big),
        \qquad m_n = \frac{1}{K} \sum_k p^{(k)}_n,\ p^{(k)}_n = \operatorname{softmax}(x^{(k)}_n)

    Args:
        logits: The K views' logits stacked on a new leading dim, ``(K, N, C, *)`` with
            ``K >= 2``: ``torch.stack([clean, aug1, aug2])``, or, from AugMix's concatenated batch
            ``(K*N, C)``, ``logits.view(K, N, C)`` (no copy). The views play symmetric roles.
        reduction, sample_weight, mask: See the conventions page. Unit: one element of ``(N, *)``
            (one sample, summed over the classes and averaged over the views).

    Shape:
        - logits: ``(K, N, C, *)``.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested; between 0 (all views agree) and :math:`\log K`.

    Raises:
        ShapeError: If ``logits`` has fewer than 3 dims or fewer than 2 views.
        TypeError: If ``logits`` is not floating point.

    Note:
        Computed in log space: :math:`\log m` is ``logsumexp`` of the views' ``log_softmax`` minus
        :math:`\log K`, so no probability is clamped (AugMix's reference clamps :math:`m` at 1e-7)
        and values and gradients are finite for logits of any magnitude. Not separable along dim 0
        (that is the views' dim). ``N = 0`` gives 0.0 for ``"mean"``.

    References:
        Hendrycks et al., *AugMix: A Simple Data Processing Method to Improve Robustness and
        Uncertainty*, ICLR 2020. https://arxiv.org/abs/1912.02781

    Examples:
        >>> import torch
        >>> from lossforge.functional import jsd_consistency_loss
        >>> clean = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
        >>> views = torch.stack([clean, clean + torch.tensor([0.0, 1.0, 0.0]), clean.flip(1)])
        >>> jsd_consistency_loss(views, reduction="none")
        tensor([0.4068, 0.3608])
    """
    loss = "jsd_consistency_loss"
    check_float(logits, "logits", loss)
    _check_class_dim(logits, "logits", loss, "(K, N, C, *) with K >= 2 views", min_dim=3)
    if logits.shape[0] < 2:
        raise ShapeError(message(loss, "logits", "must stack K >= 2 views on dim 0, shape (K, N, C, *)",
                                 tuple(logits.shape), hint="torch.stack([clean, augmented, ...])"),
                         expected="(K, N, C, *) with K >= 2", actual=tuple(logits.shape))
    x = upcast(logits)
    views = x.shape[0]
    log_p = F.log_softmax(x, 2)
    log_m = torch.logsumexp(log_p, 0) - math.log(views)
    u = (log_p.exp() * (log_p - log_m)).sum((0, 2)) / views
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class JSDConsistencyLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.jsd_consistency_loss` (logits ``(K, N, C, *)``).

    Args:
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = jsd_consistency_loss

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


def _jsd_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(3)
    return [Sample((randn(3, 8, 5, gen=g, dtype=dtype, device=device, scale=2.0),), name="K=3, (N, C)"),
            Sample((randn(2, 3, 4, 2, 3, gen=g, dtype=dtype, device=device),), name="K=2, (N, C, H, W)")]


def _jsd_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    x = _index_extremes(dtype, device)[0].args[0]
    return [Sample((torch.stack([x, x.flip(1), x]),), name="logits +-1e4")]


def _jsd_errors() -> list[ErrorSample]:
    loss = "jsd_consistency_loss"
    return [
        ErrorSample((torch.randn(1, 4, 3),), {}, ValueError, rf"{loss}: logits must stack K >= 2 views on dim 0"),
        ErrorSample((torch.randn(4, 3),), {}, ValueError, rf"{loss}: logits must have shape \(K, N, C, \*\)"),
        ErrorSample((torch.randn(3, 4, 3).long(),), {}, TypeError, rf"{loss}: logits must be a floating-point"),
        ErrorSample((torch.randn(3, 4, 3), torch.randn(3, 4, 3)), {}, TypeError, r"positional argument"),
        ErrorSample((torch.randn(3, 4, 3),), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((torch.randn(3, 4, 3),), {"weight": torch.ones(4)}, TypeError, r"Hint: use sample_weight="),
    ]


register_loss(
    name="jsd_consistency", function=jsd_consistency_loss, module=JSDConsistencyLoss, family="classification",
    input_kind="logits", target_kind="none", unit="element of (N, *) (a sample; logits are (K, N, C, *))",
    reference="Hendrycks et al. 2020, AugMix, arXiv:1912.02781",
    sample_inputs=_jsd_samples, extreme_inputs=_jsd_extremes, error_inputs=_jsd_errors, separable=False,
)
