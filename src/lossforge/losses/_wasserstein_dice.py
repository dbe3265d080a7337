"""The generalised Wasserstein Dice loss: a Dice loss whose errors are weighted by a distance between classes."""

from __future__ import annotations

import torch
from torch import Tensor

from .._core.base import FunctionLoss, loss_function
from .._core.checks import check_class_target_shape, check_float, check_index_range, check_index_target, upcast
from .._core.errors import ShapeError, message
from .._core.numerics import sum_over
from .._core.reduction import Reduction, check_reduction, ignore_index_mask, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, randint, randn
from .._core.validation import validation_enabled

__all__ = ["generalized_wasserstein_dice_loss", "GeneralizedWassersteinDiceLoss"]

_LOSS = "generalized_wasserstein_dice_loss"


def _check_distance_matrix(m: object, num_classes: int | None, background: int) -> None:
    if not isinstance(m, Tensor) or not m.is_floating_point():
        got = f"dtype {m.dtype}" if isinstance(m, Tensor) else type(m).__name__
        raise TypeError(message(_LOSS, "distance_matrix", "must be a floating-point tensor (C, C)", got))
    if m.dim() != 2 or m.shape[0] != m.shape[1] or (num_classes is not None and m.shape[0] != num_classes):
        want = "(C, C)" if num_classes is None else f"({num_classes}, {num_classes}) (C, C)"
        raise ShapeError(message(_LOSS, "distance_matrix", f"must have shape {want}", tuple(m.shape)),
                         expected=want, actual=tuple(m.shape))
    if not 0 <= background < m.shape[0]:
        raise ValueError(message(_LOSS, "background", f"must be a class index in [0, {m.shape[0] - 1}]",
                                 repr(background)))
    if validation_enabled() and m.numel():
        d = m.detach()
        if bool((d < 0).any()) or bool(d.diagonal().ne(0).any()) or not torch.equal(d, d.T):
            raise ValueError(message(_LOSS, "distance_matrix", "must be symmetric, >= 0, with a zero diagonal",
                                     "a matrix that is not"))


def _check_gwd_args(*, distance_matrix: object = None, background: int = 0, smooth_nr: float = 1.0,
                    smooth_dr: float = 1.0, **_: object) -> None:
    _check_distance_matrix(distance_matrix, None, background)
    for name, value in (("smooth_nr", smooth_nr), ("smooth_dr", smooth_dr)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(message(_LOSS, name, "must be a number >= 0", repr(value)))


@loss_function
def generalized_wasserstein_dice_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    distance_matrix: Tensor,
    background: int = 0,
    smooth_nr: float = 1.0,
    smooth_dr: float = 1.0,
    ignore_index: int | None = -100,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Generalised Wasserstein Dice loss: Dice with a penalty that depends on *which* wrong class was predicted.

    For hierarchical or related classes (tumour sub-regions, anatomical parts): confusing two
    close classes costs less than confusing a class with the background. Each pixel's error is
    the Wasserstein distance between its predicted distribution and its label under the class
    distance matrix :math:`M`; true positives are weighted by each class's distance to the
    background.

    .. math::
        W_i = \sum_c M_{l_i, c}\, p_{i,c}, \qquad
        TP = \sum_i M_{l_i, b}\,(1 - W_i), \qquad
        U_n = 1 - \frac{2\,TP + s_{nr}}{2\,TP + \sum_i W_i + s_{dr}}

    with :math:`p = \operatorname{softmax}(x)` over the classes, sums over the pixels of image
    :math:`n` and :math:`b` the background class.

    Args:
        logits: Unnormalised scores ``(N, C, *)``.
        target: Class indices ``(N, *)`` in ``[0, C)``, or ``ignore_index``.
        distance_matrix: :math:`M`, ``(C, C)``, symmetric, non-negative, zero diagonal (with
            ``1 - eye(C)`` the score is the Dice of the foreground as one region).
        background: Index :math:`b` of the background class.
        smooth_nr, smooth_dr: Smoothing of the numerator and denominator, in pixels (see the
            segmentation page's empty policy).
        ignore_index: Target value of pixels that are left out (``None``: none is).
        reduction, sample_weight, mask: See the conventions page. Unit: one image.

    Shape:
        - logits: ``(N, C, *)``; target: ``(N, *)``; distance_matrix: ``(C, C)``.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the target or the distance matrix does not fit the logits.
        TypeError: If ``target`` is not an integer tensor or ``logits`` not floating point.
        ValueError: If ``background`` or a smoothing constant is out of range; in validation mode,
            if a class index is out of range or ``M`` is not a distance matrix.

    Note:
        An image with only background, predicted as background, scores about 0 (perfect) thanks to
        the smoothing: without it (``smooth_nr = smooth_dr = 0``) its true positives are 0 and any
        residual error gives 1, so keep the smoothing for images that may hold no foreground. An
        image with every pixel ignored is left out of the mean (and 0.0 when every image is).
        Index targets only (no soft labels), and no per-class options: the score is one number
        per image over all classes.

    References:
        Fidon et al., *Generalised Wasserstein Dice Score for Imbalanced Multi-class Segmentation
        using Holistic Convolutional Networks*, BrainLes (MICCAI) 2017. https://arxiv.org/abs/1707.00478

    Examples:
        >>> import torch
        >>> from lossforge.functional import generalized_wasserstein_dice_loss
        >>> m = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5], [1.0, 0.5, 0.0]])
        >>> logits = torch.tensor([[[4.0, 0.0], [0.0, 0.0], [0.0, 4.0]]])  # 1 image, 2 pixels
        >>> generalized_wasserstein_dice_loss(logits, torch.tensor([[0, 2]]), distance_matrix=m)
        tensor(0.0206)
    """
    check_reduction(reduction, _LOSS)
    check_float(logits, "logits", _LOSS)
    check_index_target(target, _LOSS)
    check_class_target_shape(logits, target, _LOSS)
    _check_gwd_args(distance_matrix=distance_matrix, background=background, smooth_nr=smooth_nr,
                    smooth_dr=smooth_dr)
    _check_distance_matrix(distance_matrix, logits.shape[1], background)
    check_index_range(target, logits.shape[1], _LOSS, ignore_index)
    x = upcast(logits)
    m = distance_matrix.to(device=x.device, dtype=x.dtype)
    safe, keep = ignore_index_mask(target, ignore_index)
    safe = safe.long()
    p = torch.softmax(x, dim=1)
    # W_i = (M p_i)[l_i]: the label's row of M against the prediction, through one (C, C) product.
    wp = torch.einsum("lc,nc...->nl...", m, p) if x.shape[1] else p
    w = wp.gather(1, safe.unsqueeze(1)).squeeze(1)
    alpha = m[:, background][safe]
    if keep is not None:
        w = torch.where(keep, w, w.new_zeros(()))
        alpha = torch.where(keep, alpha, alpha.new_zeros(()))
    dims = tuple(range(1, w.dim()))
    tp = sum_over(alpha * (1 - w), dims)
    err = sum_over(w, dims)
    numerator = 2 * tp + float(smooth_nr)
    denominator = 2 * tp + err + float(smooth_dr)
    defined = denominator > 0
    u = 1 - numerator / torch.where(defined, denominator, torch.ones_like(denominator))
    u = torch.where(defined, u, u.new_zeros(()))
    if keep is None:
        return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=_LOSS)
    counted = keep.flatten(1).any(1) if keep.dim() > 1 else keep  # an image with every pixel ignored: left out
    u = torch.where(counted, u, u.new_zeros(()))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=counted, loss_name=_LOSS)


class GeneralizedWassersteinDiceLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.generalized_wasserstein_dice_loss`.

    Args:
        distance_matrix: Class distances ``(C, C)`` (a buffer).
        background: Index of the background class.
        smooth_nr, smooth_dr: Smoothing constants, in pixels.
        ignore_index: Target value of pixels that are left out.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = generalized_wasserstein_dice_loss
    validate = _check_gwd_args
    tensor_params = ("distance_matrix",)

    def __init__(self, *, distance_matrix: Tensor, background: int = 0, smooth_nr: float = 1.0,
                 smooth_dr: float = 1.0, ignore_index: int | None = -100, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, distance_matrix=distance_matrix, background=background,
                         smooth_nr=smooth_nr, smooth_dr=smooth_dr, ignore_index=ignore_index)


def _tree_distances(device: torch.device | str) -> Tensor:
    """Background 0 at distance 1 from everything; classes 1-2 and 3 close to each other."""
    return torch.tensor([[0.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.5, 0.7], [1.0, 0.5, 0.0, 0.6], [1.0, 0.7, 0.6, 0.0]],
                        device=device)


def _gwd_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    m = _tree_distances(device)
    logits = randn(3, 4, 5, 5, gen=g, dtype=dtype, device=device, scale=2.0)
    target = randint(4, 3, 5, 5, gen=g, device=device)
    target[1] = 0  # an image with background only
    ignored = target.clone()
    ignored[0, :2] = -100
    return [
        Sample((logits, target), {"distance_matrix": m}, name="(N, C, H, W)"),
        Sample((randn(4, 4, gen=g, dtype=dtype, device=device), randint(4, 4, gen=g, device=device)),
               {"distance_matrix": m}, name="(N, C): one pixel per image"),
        Sample((logits, ignored), {"distance_matrix": m}, name="ignored pixels"),
        Sample((logits, target), {"distance_matrix": 1 - torch.eye(4, device=device), "smooth_nr": 0.0,
                                  "smooth_dr": 0.0}, name="M = 1 - I, no smoothing"),
    ]


def _gwd_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    x = torch.tensor([[[1e4, -1e4], [-1e4, 1e4], [0.0, 0.0], [0.0, 0.0]]], dtype=torch.float64)
    return [Sample((x.to(device=device, dtype=dtype), torch.tensor([[0, 3]], device=device)),
                   {"distance_matrix": _tree_distances(device)}, name="logits +-1e4")]


def _gwd_errors() -> list[ErrorSample]:
    x, t, m = torch.randn(2, 4, 3), torch.randint(0, 4, (2, 3)), _tree_distances("cpu")
    return [
        ErrorSample((x, t), {"distance_matrix": m[:3, :3]}, ValueError,
                    rf"{_LOSS}: distance_matrix must have shape \(4, 4\) \(C, C\), got \(3, 3\)"),
        ErrorSample((x, t), {"distance_matrix": m.long()}, TypeError, r"distance_matrix must be a floating-point"),
        ErrorSample((x, t), {"distance_matrix": m + torch.eye(4)}, ValueError,
                    r"distance_matrix must be symmetric, >= 0, with a zero diagonal"),
        ErrorSample((x, t), {"distance_matrix": m, "background": 4}, ValueError,
                    r"background must be a class index in \[0, 3\]"),
        ErrorSample((x, t + 4), {"distance_matrix": m}, ValueError, r"class"),
        ErrorSample((x, t.float()), {"distance_matrix": m}, TypeError, r"target must be an integer tensor"),
        ErrorSample((x.long(), t), {"distance_matrix": m}, TypeError, r"logits must be a floating-point tensor"),
        ErrorSample((x, t), {"distance_matrix": m, "smooth_nr": -1.0}, ValueError, r"smooth_nr must be a number >= 0"),
        ErrorSample((x, t), {"distance_matrix": m, "reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((x, t), {"distance_matrix": m, "weight": torch.ones(2)}, TypeError, r"Hint: use sample_weight="),
    ]


register_loss(
    name="generalized_wasserstein_dice", function=generalized_wasserstein_dice_loss,
    module=GeneralizedWassersteinDiceLoss, family="segmentation", input_kind="logits", target_kind="index",
    unit="image", reference="Fidon et al. 2017, Generalised Wasserstein Dice Score, arXiv:1707.00478",
    sample_inputs=_gwd_samples, extreme_inputs=_gwd_extremes, error_inputs=_gwd_errors, differentiable_args=(0,),
)
