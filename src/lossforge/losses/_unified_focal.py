"""The asymmetric unified focal loss: a focal cross-entropy and a focal Tversky term that spare the rare classes."""

from __future__ import annotations

import torch
from torch import Tensor

from .._core.base import FunctionLoss, loss_function
from .._core.checks import check_class_target_shape, check_float, check_index_range, check_index_target, upcast
from .._core.errors import message
from .._core.numerics import safe_pow, sum_over
from .._core.reduction import Reduction, check_reduction, ignore_index_mask, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, randint, randn

__all__ = ["unified_focal_loss", "UnifiedFocalLoss"]

_LOSS = "unified_focal_loss"


def _check_ufl_args(*, weight_focal: float = 0.5, delta: float = 0.6, gamma: float = 0.5, background: int = 0,
                    smooth: float = 1.0, **_: object) -> None:
    for name, value, low, high in (("weight_focal", weight_focal, 0.0, 1.0), ("delta", delta, 0.0, 1.0),
                                   ("gamma", gamma, 0.0, 1.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(message(_LOSS, name, "must be a float or int", type(value).__name__))
        if not low <= value <= high:
            raise ValueError(message(_LOSS, name, f"must be in [{low:g}, {high:g}]", repr(value)))
    if isinstance(smooth, bool) or not isinstance(smooth, (int, float)) or smooth < 0:
        raise ValueError(message(_LOSS, "smooth", "must be a number >= 0", repr(smooth)))
    if isinstance(background, bool) or not isinstance(background, int) or background < 0:
        raise ValueError(message(_LOSS, "background", "must be a class index >= 0", repr(background)))


@loss_function
def unified_focal_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    weight_focal: float = 0.5,
    delta: float = 0.6,
    gamma: float = 0.5,
    background: int = 0,
    smooth: float = 1.0,
    ignore_index: int | None = -100,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Asymmetric unified focal loss: focal cross-entropy plus focal Tversky, suppressing only the background.

    For segmentation with a dominant background and small structures. Both terms down-weight
    easy *background* pixels (focal) or enhance the loss of poorly segmented *foreground* classes
    (Tversky), and :math:`\delta` trades false negatives against false positives.

    .. math::
        F_n = \frac{1}{|I_n|}\sum_{i \in I_n} \begin{cases}
            (1 - \delta)\,(1 - p_{i,b})^{\gamma}\,(-\log p_{i,b}) & l_i = b \\
            \delta\,(-\log p_{i,l_i}) & l_i \ne b \end{cases}
        \qquad
        T_{n,c} = \frac{TP_c + s}{TP_c + \delta\,FN_c + (1 - \delta)\,FP_c + s}

    .. math::
        U_n = \lambda\,F_n + (1 - \lambda)\,\frac{1}{C}\Big[(1 - T_{n,b})
              + \sum_{c \ne b} (1 - T_{n,c})^{1 - \gamma}\Big]

    with :math:`p = \operatorname{softmax}(x)`, soft counts :math:`TP_c = \sum_i p_{i,c} y_{i,c}`,
    :math:`FN_c = \sum_i (1 - p_{i,c}) y_{i,c}`, :math:`FP_c = \sum_i p_{i,c} (1 - y_{i,c})` over
    the pixels :math:`I_n` of image :math:`n`.

    Args:
        logits: Unnormalised scores ``(N, C, *)``.
        target: Class indices ``(N, *)`` in ``[0, C)``, or ``ignore_index``.
        weight_focal: :math:`\lambda \in [0, 1]`, the weight of the focal term.
        delta: :math:`\delta \in [0, 1]`: class weight in the focal term, false-negative weight in
            the Tversky term (the paper: 0.6).
        gamma: :math:`\gamma \in [0, 1]`: background suppression and foreground enhancement
            (the paper: 0.5; 0 gives weighted cross-entropy and Tversky).
        background: Index :math:`b` of the background class.
        smooth: Smoothing :math:`s` of the Tversky index, in pixels.
        ignore_index: Target value of pixels that are left out (``None``: none is).
        reduction, sample_weight, mask: See the conventions page. Unit: one image.

    Shape:
        - logits: ``(N, C, *)``; target: ``(N, *)``.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` is not ``(N, *)`` for logits ``(N, C, *)``.
        TypeError: If ``target`` is not an integer tensor or ``logits`` not floating point.
        ValueError: If a parameter is out of range or ``background >= C``; in validation mode, if a
            class index is out of range.

    Note:
        The cross-entropy comes from ``log_softmax`` (finite for any logit); the fractional
        powers have a zero gradient where their base is 0 (``safe_pow``), so the gradient stays
        finite when a class is segmented perfectly. An image with every pixel ignored is left out
        of the mean (and 0.0 when every image is).

    References:
        Yeung et al., *Unified Focal loss: Generalising Dice and cross entropy-based losses to
        handle class imbalanced medical image segmentation*, Computerized Medical Imaging and
        Graphics, 2022. https://arxiv.org/abs/2102.04525

    Examples:
        >>> import torch
        >>> from lossforge.functional import unified_focal_loss
        >>> logits = torch.tensor([[[3.0, 3.0, -3.0], [-3.0, -3.0, 3.0]]])  # 1 image, 2 classes, 3 pixels
        >>> unified_focal_loss(logits, torch.tensor([[0, 0, 1]]))
        tensor(0.0110)
    """
    check_reduction(reduction, _LOSS)
    _check_ufl_args(weight_focal=weight_focal, delta=delta, gamma=gamma, background=background, smooth=smooth)
    check_float(logits, "logits", _LOSS)
    check_index_target(target, _LOSS)
    check_class_target_shape(logits, target, _LOSS)
    classes = logits.shape[1]
    if background >= classes:
        raise ValueError(message(_LOSS, "background", f"must be a class of the logits' C={classes}",
                                 repr(background)))
    check_index_range(target, classes, _LOSS, ignore_index)
    x = upcast(logits)
    safe, keep = ignore_index_mask(target, ignore_index)
    safe = safe.long()
    log_p = torch.log_softmax(x, dim=1)
    p = log_p.exp()
    one_hot = torch.zeros_like(p).scatter_(1, safe.unsqueeze(1), 1.0)
    valid = torch.ones_like(safe, dtype=p.dtype) if keep is None else keep.to(p.dtype)
    one_hot = one_hot * valid.unsqueeze(1)
    pv = p * valid.unsqueeze(1)

    log_pt = log_p.gather(1, safe.unsqueeze(1)).squeeze(1)
    suppressed = (1 - delta) * safe_pow(-torch.expm1(log_pt), gamma) if gamma else torch.full_like(log_pt, 1 - delta)
    focal_weight = torch.where(safe == background, suppressed, torch.full_like(log_pt, delta))
    pixels = tuple(range(1, safe.dim()))  # per image: (N,)
    counted = sum_over(valid, pixels)
    focal = sum_over(focal_weight * -log_pt * valid, pixels) / counted.clamp_min(1)

    spatial = tuple(range(2, p.dim()))  # per image and class: (N, C)
    tp = sum_over(pv * one_hot, spatial)
    fn = sum_over((valid.unsqueeze(1) - pv) * one_hot, spatial)
    fp = sum_over(pv * (1 - one_hot), spatial)
    denominator = tp + delta * fn + (1 - delta) * fp + smooth
    defined = denominator > 0
    tversky = torch.where(defined, (tp + smooth) / torch.where(defined, denominator, 1.0), 1.0)
    miss = (1 - tversky).clamp_min(0)
    enhanced = safe_pow(miss, 1 - gamma) if gamma < 1 else torch.ones_like(miss)  # (1 - T)^0 = 1
    is_background = torch.arange(classes, device=p.device) == background
    ft = torch.where(is_background, miss, enhanced).mean(1)
    u = weight_focal * focal + (1 - weight_focal) * ft
    keep = counted > 0  # an image with every pixel ignored has nothing to score
    u = torch.where(keep, u, u.new_zeros(()))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=keep, loss_name=_LOSS)


class UnifiedFocalLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.unified_focal_loss`.

    Args:
        weight_focal: Weight of the focal term, in [0, 1].
        delta: Class / false-negative weight, in [0, 1].
        gamma: Suppression / enhancement exponent, in [0, 1].
        background: Index of the background class.
        smooth: Smoothing of the Tversky index, in pixels.
        ignore_index: Target value of pixels that are left out.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = unified_focal_loss
    validate = _check_ufl_args

    def __init__(self, *, weight_focal: float = 0.5, delta: float = 0.6, gamma: float = 0.5, background: int = 0,
                 smooth: float = 1.0, ignore_index: int | None = -100, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, weight_focal=weight_focal, delta=delta, gamma=gamma,
                         background=background, smooth=smooth, ignore_index=ignore_index)


def _ufl_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    logits = randn(3, 3, 5, 5, gen=g, dtype=dtype, device=device, scale=2.0)
    target = randint(3, 3, 5, 5, gen=g, device=device)
    target[1] = 0  # background only
    ignored = target.clone()
    ignored[0, :2] = -100
    return [
        Sample((logits, target), name="(N, C, H, W)"),
        Sample((randn(4, 3, gen=g, dtype=dtype, device=device), randint(3, 4, gen=g, device=device)),
               name="(N, C): one pixel per image"),
        Sample((logits, ignored), name="ignored pixels"),
        Sample((logits, target), {"gamma": 0.0, "delta": 0.5, "weight_focal": 0.2, "background": 2},
               name="gamma=0, background=2"),
    ]


def _ufl_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    x = torch.tensor([[[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]]], dtype=torch.float64)
    perfect = torch.tensor([[[30.0, -30.0, -30.0], [-30.0, 30.0, 30.0]]], dtype=torch.float64)
    return [Sample((x.to(device=device, dtype=dtype), torch.tensor([[0, 0, 1]], device=device)), name="logits +-1e4"),
            Sample((perfect.to(device=device, dtype=dtype), torch.tensor([[0, 1, 1]], device=device)),
                   {"smooth": 0.0}, name="a perfect segmentation, no smoothing")]


def _ufl_errors() -> list[ErrorSample]:
    x, t = torch.randn(2, 3, 4), torch.randint(0, 3, (2, 4))
    return [
        ErrorSample((x, t), {"delta": 1.5}, ValueError, rf"{_LOSS}: delta must be in \[0, 1\], got 1.5"),
        ErrorSample((x, t), {"gamma": -0.1}, ValueError, r"gamma must be in \[0, 1\]"),
        ErrorSample((x, t), {"weight_focal": "a"}, TypeError, r"weight_focal must be a float or int"),
        ErrorSample((x, t), {"background": 3}, ValueError, r"background must be a class of the logits' C=3"),
        ErrorSample((x, t), {"smooth": -1.0}, ValueError, r"smooth must be a number >= 0"),
        ErrorSample((x, t.float()), {}, TypeError, r"target must be an integer tensor"),
        ErrorSample((x.long(), t), {}, TypeError, r"logits must be a floating-point tensor"),
        ErrorSample((x, t[:, :3]), {}, ValueError, r"target must have shape"),
        ErrorSample((x, t), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((x, t), {"weight": torch.ones(2)}, TypeError, r"Hint: use sample_weight="),
        ErrorSample((), {"delta": 2.0}, ValueError, r"delta must be in \[0, 1\]", at_construction=True),
    ]


register_loss(
    name="unified_focal", function=unified_focal_loss, module=UnifiedFocalLoss, family="segmentation",
    input_kind="logits", target_kind="index", unit="image",
    reference="Yeung et al. 2022, Unified Focal loss, arXiv:2102.04525",
    sample_inputs=_ufl_samples, extreme_inputs=_ufl_extremes, error_inputs=_ufl_errors, differentiable_args=(0,),
)
