"""Segmentation and region losses: logits ``(N, C, *)`` with class indices, or binary logits per channel.

Every region loss is computed from sums per *unit*: one (image, class) pair with per-image
statistics (``per_image=True``, the default, as MONAI), or one class with whole-batch statistics
(``per_image=False``, as segmentation_models_pytorch). The options every region loss shares:

- ``per_image``: per-image or whole-batch statistics;
- soft labels: a floating target (binary forms: same shape; multiclass forms: class probabilities
  ``(N, C, *)``) gives the same value as the hard target when it holds 0/1;
- ``ignore_index``: ignored pixels are left out of every sum, after the activation;
- ``class_weight`` (``(C,)``, enters the mean's denominator) and ``classes`` (a subset);
- 2D and 3D (any number of spatial dimensions);
- the empty-target policy: an empty target with an empty prediction gives 0, an empty target with a
  confident foreground gives (close to) the maximum; ``skip_empty=True`` (opt-in) leaves units with
  an empty target out of the average. Units without any counted pixel (all ignored) never count;
- ``sync_dist=True``: statistics summed (batch statistics) or gathered (per-image statistics) over
  a ``torch.distributed`` group, so every rank computes the single-process loss of the whole batch.

The statistics come from the fused kernels of :mod:`._region_kernels` (one pass over the logits,
no one-hot, no saved probabilities). Distance maps come from :mod:`._distance` (exact, in torch).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._core.activation import provided, register_provider
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
)
from .._core.distributed import all_gather_cat, all_reduce_sum, is_distributed
from .._core.errors import ShapeError, message
from .._core.numerics import safe_pow
from .._core.reduction import Reduction, ignore_index_mask, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, rand, randint, randn
from ._distance import signed_distance, unsigned_distance
from ._region_kernels import (
    RegionStats,
    lovasz_rows,
    lovasz_softmax_index,
    sigmoid_stats,
    softmax_index_stats,
    softmax_soft_stats,
)

__all__ = [
    "dice_loss", "DiceLoss", "binary_dice_loss", "BinaryDiceLoss",
    "jaccard_loss", "JaccardLoss", "binary_jaccard_loss", "BinaryJaccardLoss",
    "tversky_loss", "TverskyLoss", "binary_tversky_loss", "BinaryTverskyLoss",
    "focal_tversky_loss", "FocalTverskyLoss", "binary_focal_tversky_loss", "BinaryFocalTverskyLoss",
    "generalized_dice_loss", "GeneralizedDiceLoss",
    "mcc_loss", "MCCLoss", "binary_mcc_loss", "BinaryMCCLoss",
    "lovasz_softmax_loss", "LovaszSoftmaxLoss", "lovasz_hinge_loss", "LovaszHingeLoss",
    "boundary_loss", "BoundaryLoss", "binary_boundary_loss", "BinaryBoundaryLoss",
    "hausdorff_dt_loss", "HausdorffDTLoss", "binary_hausdorff_dt_loss", "BinaryHausdorffDTLoss",
    "cl_dice_loss", "ClDiceLoss", "binary_cl_dice_loss", "BinaryClDiceLoss",
]

_FAMILY = "segmentation"

# ============================================================================ argument checks


def _check_flag(value: object, argument: str, loss: str) -> None:
    if not isinstance(value, bool):
        raise TypeError(message(loss, argument, "must be a bool", repr(value)))


def _check_classes(classes: object, loss: str, num_classes: int | None = None) -> None:
    if classes is None:
        return
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (Sequence, range)):
        raise TypeError(message(loss, "classes", "must be a sequence of class indices or None",
                                type(classes).__name__))
    items = list(classes)
    if not items or any(isinstance(c, bool) or not isinstance(c, int) for c in items):
        raise ValueError(message(loss, "classes", "must be a non-empty sequence of int class indices", items))
    if len(set(items)) != len(items):
        raise ValueError(message(loss, "classes", "must not repeat a class", items))
    if num_classes is not None and (min(items) < 0 or max(items) >= num_classes):
        raise ValueError(message(loss, "classes", f"must hold classes in [0, {num_classes - 1}]", items))


def _check_shared(loss: str, *, per_image: object = True, skip_empty: object = False, sync_dist: object = False,
                  classes: object = None, ignore_index: object = None) -> None:
    _check_flag(per_image, "per_image", loss)
    _check_flag(skip_empty, "skip_empty", loss)
    _check_flag(sync_dist, "sync_dist", loss)
    _check_classes(classes, loss)
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(message(loss, "ignore_index", "must be an int or None", repr(ignore_index)))


def _check_smooth(loss: str, **values: object) -> None:
    for name, value in values.items():
        check_range(value, name, loss, low=0.0)


# ============================================================================ inputs -> statistics
def _pixels(x: Tensor) -> int:
    """The number of pixels of one image of ``x`` ``(N, C, *spatial)``."""
    return math.prod(x.shape[2:])




def _spatial(logits: Tensor, loss: str, *, need_spatial: bool) -> None:
    if logits.dim() < (3 if need_spatial else 2):
        layout = "(N, C, *spatial) with at least one spatial dimension" if need_spatial else "(N, C, *)"
        raise ShapeError(message(loss, "logits", f"must have shape {layout}", tuple(logits.shape)),
                         expected=layout, actual=tuple(logits.shape))


def _multiclass_target(logits: Tensor, target: Tensor, ignore_index: int | None, loss: str, *,
                       need_spatial: bool = False, sanitise: bool = True) -> tuple[Tensor, Tensor | None, bool]:
    """Checks; returns ``(target, keep, soft)``: sanitised indices ``(N, *)`` or probabilities ``(N, C, *)``.

    With ``sanitise=False`` index targets are returned as given (the fused kernel sanitises block by block).
    """
    check_float(logits, "logits", loss)
    _spatial(logits, loss, need_spatial=need_spatial)
    if logits.shape[1] < 2:
        raise ValueError(message(loss, "logits", "must have at least 2 classes along dim 1 for a softmax",
                                 f"shape {tuple(logits.shape)}",
                                 hint=f"for one foreground channel use binary_{loss}"))
    if isinstance(target, Tensor) and target.is_floating_point():
        check_same_shape(logits, target, loss, ("logits", "target"))
        if ignore_index is not None and ignore_index != -100:
            raise ValueError(message(loss, "ignore_index", "is not supported with class-probability targets",
                                     ignore_index, hint="pass ignore_index=None, or class indices"))
        check_probabilities(target, "target", loss, sums_to_one_dim=1)
        return target, None, True
    check_index_target(target, loss)
    check_class_target_shape(logits, target, loss)
    check_index_range(target, logits.shape[1], loss, ignore_index)
    if not sanitise:
        return target, None, False
    safe, keep = ignore_index_mask(target, ignore_index)
    return safe, keep, False


def _softmax_target_provider(logits: Tensor, target: Tensor, ignore_index: int | None) -> RegionStats:
    """Shared node of ``softmax_target``: the fused statistics, with ``log_pt`` in the target's shape."""
    n, c, px = *logits.shape[:2], _pixels(logits)
    stats = softmax_index_stats(logits.reshape(n, c, px), target.reshape(n, px), ignore_index, need_log_pt=True)
    log_pt = stats.log_pt
    return stats._replace(log_pt=None if log_pt is None else log_pt.reshape(target.shape))


register_provider("softmax_target", _softmax_target_provider)


def _multiclass_stats(logits: Tensor, target: Tensor, ignore_index: int | None, loss: str) -> RegionStats:
    """``(N, C)`` statistics of softmax probabilities against indices or class probabilities."""
    safe, _, soft = _multiclass_target(logits, target, ignore_index, loss, sanitise=False)
    n, c, px = *logits.shape[:2], _pixels(logits)
    if soft:
        return softmax_soft_stats(logits.reshape(n, c, px), safe.reshape(n, c, px))
    shared = provided("softmax_target", logits, target, ignore_index)
    if shared is not None:
        return shared  # type: ignore[no-any-return]
    return softmax_index_stats(logits.reshape(n, c, px), target.reshape(n, px), ignore_index)


def _binary_target(logits: Tensor, target: Tensor, ignore_index: int | None, loss: str, *,
                   need_spatial: bool = False) -> tuple[Tensor, Tensor | None]:
    """Checks; returns ``(target, keep)``: a float target of the logits' shape, ignored entries set to 0."""
    check_float(logits, "logits", loss)
    if not isinstance(target, Tensor):
        raise TypeError(message(loss, "target", "must be a torch.Tensor", type(target).__name__))
    if not (target.is_floating_point() or target.dtype == torch.bool):
        raise TypeError(message(loss, "target", "must be a floating-point or bool tensor of 0/1 or soft labels",
                                f"dtype {target.dtype}",
                                hint=f"for class indices use {loss.removeprefix('binary_')}; else call target.float()"))
    check_same_shape(logits, target, loss, ("logits", "target"))
    _spatial(logits, loss, need_spatial=need_spatial)
    t = target if target.is_floating_point() else target.to(logits.dtype if logits.dtype == torch.float64
                                                            else torch.float32)
    keep = None
    if ignore_index is not None:
        keep = t != ignore_index
        t = t * keep
    check_probabilities(t, "target", loss)
    return t, keep


def _binary_stats(logits: Tensor, target: Tensor, ignore_index: int | None, loss: str) -> RegionStats:
    """``(N, C)`` statistics of sigmoid probabilities against a same-shape target, per channel."""
    t, keep = _binary_target(logits, target, ignore_index, loss)
    n, c, px = *logits.shape[:2], _pixels(logits)
    stats = sigmoid_stats(logits.reshape(n * c, px), t.reshape(n * c, px),
                          None if keep is None else keep.reshape(n * c, px))
    return RegionStats(*(s.reshape(n, c) for s in stats[:4]))


# ============================================================================ statistics -> units -> result


def _class_index(classes: Sequence[int] | None, num_classes: int, ref: Tensor, loss: str) -> Tensor | None:
    if classes is None:
        return None
    _check_classes(classes, loss, num_classes)
    return torch.tensor(list(classes), dtype=torch.int64, device=ref.device)


def _select(parts: list[Tensor], index: Tensor | None) -> list[Tensor]:
    return parts if index is None else [p.index_select(1, index) for p in parts]


def _units(parts: list[Tensor], *, per_image: bool, sync_dist: bool, group: Any) -> list[Tensor]:
    """Per-unit sums from ``(N, C', ...)`` parts: per image (gathered over ranks) or summed over the batch."""
    stacked = torch.stack([p.to(parts[0].dtype) for p in parts], -1)
    if per_image:
        if sync_dist:
            stacked = all_gather_cat(stacked, group)
    else:
        stacked = stacked.sum(0)
        if sync_dist:
            stacked = all_reduce_sum(stacked, group)
    return list(stacked.unbind(-1))


def _gather_factor(t: Tensor | None, local_shape: torch.Size, argument: str, loss: str, group: Any) -> Tensor | None:
    """A call-time weight or mask of the local units, gathered over ranks (per-image ``sync_dist``)."""
    if t is None:
        return None
    if not isinstance(t, Tensor):
        raise TypeError(message(loss, argument, "must be a torch.Tensor or None", type(t).__name__))
    try:
        ok = torch.broadcast_shapes(t.shape, local_shape) == local_shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ShapeError(message(loss, argument, f"must broadcast to the unreduced loss shape {tuple(local_shape)}",
                                 tuple(t.shape)), expected=tuple(local_shape), actual=tuple(t.shape))
    full = t.expand(local_shape)
    if t.dtype == torch.bool:
        return all_gather_cat(full.to(torch.uint8).contiguous(), group).bool()
    return all_gather_cat(full.contiguous(), group)


def _finish(u: Tensor, *, tsum: Tensor, count: Tensor, local_units: torch.Size, skip_empty: bool,
            class_weight: Tensor | None, reduction: Reduction, sample_weight: Tensor | None, mask: Tensor | None,
            per_image: bool, sync_dist: bool, group: Any, loss: str, class_dim: bool = True) -> Tensor:
    """Apply the unit mask (no counted pixel; optionally an empty target) and the one reduction."""
    keep = count > 0
    if skip_empty:
        keep = keep & (tsum > 0)
    if per_image and sync_dist and is_distributed(group):
        sample_weight = _gather_factor(sample_weight, local_units, "sample_weight", loss, group)
        mask = _gather_factor(mask, local_units, "mask", loss, group)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=keep,
                       unit_weight=class_weight if class_dim else None, loss_name=loss)


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    """``num / den``, and 1 (a perfect score) where ``den == 0``; finite gradients everywhere."""
    ok = den > 0
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.ones_like(num))


def _region(stats: RegionStats, score: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor], *,
            class_weight: Tensor | None, classes: Sequence[int] | None, per_image: bool, skip_empty: bool,
            sync_dist: bool, group: Any, reduction: Reduction, sample_weight: Tensor | None,
            mask: Tensor | None, loss: str) -> Tensor:
    """The common tail of the statistics losses: select classes, form units, ``U = score(I, P, T, K)``, reduce."""
    num_classes = stats.inter.shape[1]
    index = _class_index(classes, num_classes, stats.inter, loss)
    cw = check_class_weight(class_weight, num_classes, stats.inter, loss)
    if cw is not None and index is not None:
        cw = cw.index_select(0, index)
    count = stats.kept.expand_as(stats.inter)
    parts = _select([stats.inter, stats.psum, stats.tsum, count], index)
    local = parts[0].shape if per_image else parts[0].shape[1:]
    inter, psum, tsum, cnt = _units(parts, per_image=per_image, sync_dist=sync_dist, group=group)
    u = score(inter, psum, tsum, cnt)
    return _finish(u, tsum=tsum, count=cnt, local_units=local, skip_empty=skip_empty, class_weight=cw,
                   reduction=reduction, sample_weight=sample_weight, mask=mask, per_image=per_image,
                   sync_dist=sync_dist, group=group, loss=loss)


def _dice_score(smooth_nr: float, smooth_dr: float) -> Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]:
    def score(i: Tensor, p: Tensor, t: Tensor, k: Tensor) -> Tensor:
        return 1.0 - _ratio(2.0 * i + smooth_nr, p + t + smooth_dr)
    return score


def _jaccard_score(smooth_nr: float, smooth_dr: float) -> Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]:
    def score(i: Tensor, p: Tensor, t: Tensor, k: Tensor) -> Tensor:
        return 1.0 - _ratio(i + smooth_nr, p + t - i + smooth_dr)
    return score


def _tversky_index(i: Tensor, p: Tensor, t: Tensor, alpha: float, beta: float, smooth_nr: float,
                   smooth_dr: float) -> Tensor:
    return _ratio(i + smooth_nr, i + alpha * (p - i) + beta * (t - i) + smooth_dr)


def _tversky_score(alpha: float, beta: float, smooth_nr: float,
                   smooth_dr: float) -> Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]:
    def score(i: Tensor, p: Tensor, t: Tensor, k: Tensor) -> Tensor:
        return 1.0 - _tversky_index(i, p, t, alpha, beta, smooth_nr, smooth_dr)
    return score


def _focal_tversky_score(alpha: float, beta: float, gamma: float, smooth_nr: float,
                         smooth_dr: float) -> Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]:
    def score(i: Tensor, p: Tensor, t: Tensor, k: Tensor) -> Tensor:
        base = (1.0 - _tversky_index(i, p, t, alpha, beta, smooth_nr, smooth_dr)).clamp_min(0.0)
        return safe_pow(base, 1.0 / gamma)
    return score


def _safe_sqrt(x: Tensor) -> Tensor:
    ok = x > 0
    return torch.where(ok, torch.where(ok, x, torch.ones_like(x)).sqrt(), torch.zeros_like(x))


def _mcc_score(smooth: float) -> Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]:
    def score(i: Tensor, p: Tensor, t: Tensor, k: Tensor) -> Tensor:
        tp = i + smooth
        fp = (p - i).clamp_min(0.0)
        fn = (t - i).clamp_min(0.0)
        tn = (k - p - t + i).clamp_min(0.0) + smooth
        num = tp * tn - fp * fn
        den = _safe_sqrt((tp + fp) * (tp + fn)) * _safe_sqrt((tn + fp) * (tn + fn))
        ok = den > 0
        degenerate = torch.where(fp + fn > 0, torch.zeros_like(num), torch.ones_like(num))
        mcc = torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), degenerate)
        return 1.0 - mcc
    return score


_SHARED_ARGS = """per_image: Statistics per (image, class) unit (default, as MONAI), or summed over the
            batch into one unit per class (``False``, as segmentation_models_pytorch).
        class_weight: Per-class weights ``(C,)``; with ``reduction="mean"`` the denominator is the
            sum of the weights of the counted units.
        classes: Evaluate only these classes (e.g. ``range(1, C)`` to leave out the background);
            the unreduced loss then has ``len(classes)`` columns.
        skip_empty: Leave units whose target is empty out of the average (opt-in; by default an
            empty target counts, so false positives on empty images are penalised).
        ignore_index: Target value whose pixels are left out of every sum (``None``: none is).
        sync_dist: Sum (batch statistics) or gather (per-image statistics) the statistics over the
            ranks of ``process_group``, so every rank computes the single-process loss of the whole
            batch; a no-op when torch.distributed is not initialised.
        process_group: The ``torch.distributed`` group for ``sync_dist`` (``None``: the default group).
        reduction, sample_weight, mask: See the conventions page. Unit: one (image, class) pair, or
            one class with ``per_image=False``."""


def _check_dice_args(*, smooth_nr: float = 1.0, smooth_dr: float = 1.0, per_image: bool = True,
                     classes: Sequence[int] | None = None, skip_empty: bool = False,
                     ignore_index: int | None = None, sync_dist: bool = False, loss: str = "dice_loss",
                     **_: object) -> None:
    _check_smooth(loss, smooth_nr=smooth_nr, smooth_dr=smooth_dr)
    _check_shared(loss, per_image=per_image, skip_empty=skip_empty, sync_dist=sync_dist, classes=classes,
                  ignore_index=ignore_index)


@loss_function
def dice_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    smooth_nr: float = 1.0,
    smooth_dr: float = 1.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = -100,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Soft Dice loss on softmax probabilities, per (image, class).

    The standard overlap loss for semantic segmentation, insensitive to the share of each class in
    the image; usually combined with cross-entropy (``lf.build("dice + cross_entropy")``, which runs
    one softmax pass for both).

    .. math::
        U_{n,c} = 1 - \frac{2 I_{n,c} + s_{nr}}{P_{n,c} + T_{n,c} + s_{dr}},\qquad
        I = \sum_i \min(p_{i,c}, t_{i,c}),\; P = \sum_i p_{i,c},\; T = \sum_i t_{i,c}

    with :math:`p = \operatorname{softmax}(x)` over the classes, :math:`t` the one-hot target (or
    the class probabilities), and the sums over the counted pixels of image :math:`n` (of the whole
    batch with ``per_image=False``). For 0/1 targets :math:`\min(p, t) = p\,t`.

    Args:
        logits: Unnormalised scores ``(N, C, *)``, ``C >= 2``.
        target: Class indices ``(N, *)`` in ``[0, C)`` or ``ignore_index``; or class probabilities
            ``(N, C, *)`` (soft labels, rows summing to 1; ``ignore_index`` must then be ``None`` or
            its default).
        smooth_nr: :math:`s_{nr} \ge 0`, added to the numerator (in pixels: 1, as nnU-Net).
        smooth_dr: :math:`s_{dr} \ge 0`, added to the denominator.
        {shared}

    Shape:
        - logits: ``(N, C, *)``; target: ``(N, *)`` or ``(N, C, *)``.
        - output: ``(N, K)`` (``K`` = ``C`` or ``len(classes)``) if ``reduction="none"``, ``(K,)`` with
          ``per_image=False``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the target's shape does not match the logits.
        TypeError: If ``logits`` is not floating point, or an index target is not an integer tensor.
        ValueError: If ``C < 2``, a smoothing constant is negative, ``classes`` is invalid; in
            validation mode, if a class index is out of range or probabilities are outside ``[0, 1]``.

    Note:
        Empty-target policy: an empty target with an empty prediction gives 0 (through the
        smoothing constants, or by definition when the denominator is exactly 0 with ``smooth=0``);
        an empty target with confident foreground gives :math:`\approx 1`, the maximum. The
        smoothing is in pixels: an "empty" prediction of total mass :math:`P` on an empty target
        costs :math:`P/(P + s)`, about :math:`P` with the default 1 (MONAI's default 1e-5 makes a
        prediction of 1e-9 per pixel on a 512x512 empty image cost 0.96).
        Units without any counted pixel (all ignored) are left out; when nothing is left,
        ``"mean"`` returns 0.0 with zero gradients. A perfect prediction gives 0 exactly.
        The statistics come from one fused pass over the logits (no one-hot, no saved
        probabilities); peak extra memory is the gradient plus ``(N, *)``.

    References:
        Milletari, Navab and Ahmadi, *V-Net*, 3DV 2016. https://arxiv.org/abs/1606.04797;
        Wang and Blaschko, *Dice Semimetric Losses* (soft labels), MICCAI 2023.
        https://arxiv.org/abs/2303.16296

    Examples:
        >>> import torch
        >>> from lossforge.functional import dice_loss
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, 3.0]], [[-1.0, 2.0], [1.0, -2.0]]]])
        >>> target = torch.tensor([[[0, 1], [1, 0]]])
        >>> dice_loss(logits, target)
        tensor(0.0963)
        >>> dice_loss(logits, target, reduction="none")
        tensor([[0.0892, 0.1035]])
    """
    _check_dice_args(smooth_nr=smooth_nr, smooth_dr=smooth_dr, per_image=per_image, classes=classes,
                     skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist)
    stats = _multiclass_stats(logits, target, ignore_index, "dice_loss")
    return _region(stats, _dice_score(smooth_nr, smooth_dr), class_weight=class_weight, classes=classes,
                   per_image=per_image, skip_empty=skip_empty, sync_dist=sync_dist, group=process_group,
                   reduction=reduction, sample_weight=sample_weight, mask=mask, loss="dice_loss")


@loss_function
def binary_dice_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    smooth_nr: float = 1.0,
    smooth_dr: float = 1.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = None,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Soft Dice loss on sigmoid probabilities, per (image, channel): binary and multilabel masks.

    For one foreground channel, or several independent (possibly overlapping) channels.

    .. math::
        U_{n,c} = 1 - \frac{2 \sum_i \min(p_i, t_i) + s_{nr}}{\sum_i p_i + \sum_i t_i + s_{dr}},
        \qquad p = \sigma(x)

    over the pixels of channel :math:`c` of image :math:`n`.

    Args:
        logits: Scores ``(N, C, *)``, one independent channel each.
        target: Binary (0/1, float or bool) or soft target in ``[0, 1]`` of the logits' shape.
        smooth_nr, smooth_dr: Smoothing constants, as in :func:`dice_loss`.
        {shared}

    Shape:
        - logits, target: ``(N, C, *)``.
        - output: ``(N, K)`` if ``reduction="none"`` (``(K,)`` with ``per_image=False``), else ``()``.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` does not have the logits' shape.
        TypeError: If ``logits`` is not floating point or ``target`` is an integer tensor.
        ValueError: For a negative smoothing constant; in validation mode, for target values
            outside ``[0, 1]`` (other than ``ignore_index``).

    Note:
        The soft intersection :math:`\min(p, t)` equals :math:`p\,t` for 0/1 targets and makes
        the loss minimal at :math:`p = t` for soft ones (MONAI's ``soft_label=True``). Same
        empty-target policy as :func:`dice_loss`.

    References:
        Milletari, Navab and Ahmadi, *V-Net*, 3DV 2016. https://arxiv.org/abs/1606.04797

    Examples:
        >>> import torch
        >>> from lossforge.functional import binary_dice_loss
        >>> logits = torch.tensor([[[3.0, -2.0, 1.0, -4.0]]])
        >>> binary_dice_loss(logits, torch.tensor([[[1.0, 0.0, 1.0, 0.0]]]))
        tensor(0.0941)
        >>> binary_dice_loss(torch.full((1, 1, 4), -30.0), torch.zeros(1, 1, 4))  # empty and empty
        tensor(0.)
    """
    _check_dice_args(smooth_nr=smooth_nr, smooth_dr=smooth_dr, per_image=per_image, classes=classes,
                     skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist,
                     loss="binary_dice_loss")
    stats = _binary_stats(logits, target, ignore_index, "binary_dice_loss")
    return _region(stats, _dice_score(smooth_nr, smooth_dr), class_weight=class_weight, classes=classes,
                   per_image=per_image, skip_empty=skip_empty, sync_dist=sync_dist, group=process_group,
                   reduction=reduction, sample_weight=sample_weight, mask=mask, loss="binary_dice_loss")


class DiceLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.dice_loss`.

    Args:
        smooth_nr, smooth_dr, per_image, class_weight, classes, skip_empty, ignore_index, sync_dist,
        process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = dice_loss
    validate = _check_dice_args

    def __init__(self, *, smooth_nr: float = 1.0, smooth_dr: float = 1.0, per_image: bool = True,
                 class_weight: Tensor | None = None, classes: Sequence[int] | None = None,
                 skip_empty: bool = False, ignore_index: int | None = -100, sync_dist: bool = False,
                 process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, smooth_nr=smooth_nr, smooth_dr=smooth_dr, per_image=per_image,
                         class_weight=class_weight, classes=classes, skip_empty=skip_empty,
                         ignore_index=ignore_index, sync_dist=sync_dist, process_group=process_group)


class BinaryDiceLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.binary_dice_loss`.

    Args:
        smooth_nr, smooth_dr, per_image, class_weight, classes, skip_empty, ignore_index, sync_dist,
        process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = binary_dice_loss
    validate = functools.partial(_check_dice_args, loss="binary_dice_loss")

    def __init__(self, *, smooth_nr: float = 1.0, smooth_dr: float = 1.0, per_image: bool = True,
                 class_weight: Tensor | None = None, classes: Sequence[int] | None = None,
                 skip_empty: bool = False, ignore_index: int | None = None, sync_dist: bool = False,
                 process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, smooth_nr=smooth_nr, smooth_dr=smooth_dr, per_image=per_image,
                         class_weight=class_weight, classes=classes, skip_empty=skip_empty,
                         ignore_index=ignore_index, sync_dist=sync_dist, process_group=process_group)


@loss_function
def jaccard_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    smooth_nr: float = 1.0,
    smooth_dr: float = 1.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = -100,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Soft Jaccard (IoU) loss on softmax probabilities, per (image, class).

    Optimises the intersection over union, the usual segmentation metric, directly.

    .. math::
        U_{n,c} = 1 - \frac{I + s_{nr}}{P + T - I + s_{dr}}

    with :math:`I, P, T` as in :func:`dice_loss` (the soft intersection, probability mass and target
    mass of the unit).

    Args:
        logits: Unnormalised scores ``(N, C, *)``, ``C >= 2``.
        target: Class indices ``(N, *)``, or class probabilities ``(N, C, *)``.
        smooth_nr, smooth_dr: Smoothing constants ``>= 0``.
        {shared}

    Shape:
        As :func:`dice_loss`.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError, TypeError, ValueError: As :func:`dice_loss`.

    Note:
        The soft intersection :math:`\min(p, t)` makes the loss the Jaccard metric loss of Wang and
        Blaschko for soft labels, equal to the classic soft Jaccard for 0/1 targets. Same
        empty-target policy as :func:`dice_loss`.

    References:
        Wang and Blaschko, *Jaccard Metric Losses*, NeurIPS 2023. https://arxiv.org/abs/2302.05666

    Examples:
        >>> import torch
        >>> from lossforge.functional import jaccard_loss
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, 3.0]], [[-1.0, 2.0], [1.0, -2.0]]]])
        >>> jaccard_loss(logits, torch.tensor([[[0, 1], [1, 0]]]))
        tensor(0.1484)
    """
    _check_dice_args(smooth_nr=smooth_nr, smooth_dr=smooth_dr, per_image=per_image, classes=classes,
                     skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist, loss="jaccard_loss")
    stats = _multiclass_stats(logits, target, ignore_index, "jaccard_loss")
    return _region(stats, _jaccard_score(smooth_nr, smooth_dr), class_weight=class_weight, classes=classes,
                   per_image=per_image, skip_empty=skip_empty, sync_dist=sync_dist, group=process_group,
                   reduction=reduction, sample_weight=sample_weight, mask=mask, loss="jaccard_loss")


@loss_function
def binary_jaccard_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    smooth_nr: float = 1.0,
    smooth_dr: float = 1.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = None,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Soft Jaccard (IoU) loss on sigmoid probabilities, per (image, channel).

    The binary and multilabel form of :func:`jaccard_loss`.

    .. math::
        U_{n,c} = 1 - \frac{\sum_i \min(p_i, t_i) + s_{nr}}
                          {\sum_i p_i + \sum_i t_i - \sum_i \min(p_i, t_i) + s_{dr}},\qquad p = \sigma(x)

    Args:
        logits: Scores ``(N, C, *)``.
        target: Binary or soft target of the logits' shape.
        smooth_nr, smooth_dr: Smoothing constants ``>= 0``.
        {shared}

    Shape:
        As :func:`binary_dice_loss`.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError, TypeError, ValueError: As :func:`binary_dice_loss`.

    Note:
        Same empty-target policy as :func:`dice_loss`.

    References:
        Wang and Blaschko, *Jaccard Metric Losses*, NeurIPS 2023. https://arxiv.org/abs/2302.05666

    Examples:
        >>> import torch
        >>> from lossforge.functional import binary_jaccard_loss
        >>> binary_jaccard_loss(torch.tensor([[[3.0, -2.0, 1.0, -4.0]]]), torch.tensor([[[1.0, 0.0, 1.0, 0.0]]]))
        tensor(0.1446)
    """
    _check_dice_args(smooth_nr=smooth_nr, smooth_dr=smooth_dr, per_image=per_image, classes=classes,
                     skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist,
                     loss="binary_jaccard_loss")
    stats = _binary_stats(logits, target, ignore_index, "binary_jaccard_loss")
    return _region(stats, _jaccard_score(smooth_nr, smooth_dr), class_weight=class_weight, classes=classes,
                   per_image=per_image, skip_empty=skip_empty, sync_dist=sync_dist, group=process_group,
                   reduction=reduction, sample_weight=sample_weight, mask=mask, loss="binary_jaccard_loss")


def _check_tversky_args(*, alpha: float = 0.5, beta: float = 0.5, smooth_nr: float = 1.0,
                        smooth_dr: float = 1.0, loss: str = "tversky_loss", **shared: Any) -> None:
    check_range(alpha, "alpha", loss, low=0.0)
    check_range(beta, "beta", loss, low=0.0)
    _check_dice_args(smooth_nr=smooth_nr, smooth_dr=smooth_dr, loss=loss, **shared)


@loss_function
def tversky_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    smooth_nr: float = 1.0,
    smooth_dr: float = 1.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = -100,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Tversky loss on softmax probabilities: Dice with separate weights on false positives and negatives.

    For imbalanced segmentation where a missed pixel costs more than a false alarm (``beta > alpha``).

    .. math::
        U_{n,c} = 1 - \frac{I + s_{nr}}{I + \alpha\,(P - I) + \beta\,(T - I) + s_{dr}}

    :math:`P - I` is the soft false-positive mass and :math:`T - I` the false-negative mass.

    Args:
        logits: Unnormalised scores ``(N, C, *)``, ``C >= 2``.
        target: Class indices ``(N, *)``, or class probabilities ``(N, C, *)``.
        alpha: :math:`\alpha \ge 0`, weight of the false positives.
        beta: :math:`\beta \ge 0`, weight of the false negatives.
        smooth_nr, smooth_dr: Smoothing constants ``>= 0``.
        {shared}

    Shape:
        As :func:`dice_loss`.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError, TypeError: As :func:`dice_loss`.
        ValueError: As :func:`dice_loss`, or if ``alpha`` or ``beta`` is negative.

    Note:
        ``alpha = beta = 0.5`` is :func:`dice_loss`; ``alpha = beta = 1`` is :func:`jaccard_loss`.

    References:
        Salehi, Erdogmus and Gholipour, *Tversky loss function for image segmentation using 3D
        fully convolutional deep networks*, MLMI 2017. https://arxiv.org/abs/1706.05721

    Examples:
        >>> import torch
        >>> from lossforge.functional import tversky_loss
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, 3.0]], [[-1.0, 2.0], [1.0, -2.0]]]])
        >>> tversky_loss(logits, torch.tensor([[[0, 1], [1, 0]]]), alpha=0.3, beta=0.7)
        tensor(0.0809)
    """
    _check_tversky_args(alpha=alpha, beta=beta, smooth_nr=smooth_nr, smooth_dr=smooth_dr, per_image=per_image,
                        classes=classes, skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist)
    stats = _multiclass_stats(logits, target, ignore_index, "tversky_loss")
    return _region(stats, _tversky_score(alpha, beta, smooth_nr, smooth_dr), class_weight=class_weight,
                   classes=classes, per_image=per_image, skip_empty=skip_empty, sync_dist=sync_dist,
                   group=process_group, reduction=reduction, sample_weight=sample_weight, mask=mask,
                   loss="tversky_loss")


@loss_function
def binary_tversky_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    smooth_nr: float = 1.0,
    smooth_dr: float = 1.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = None,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Tversky loss on sigmoid probabilities, per (image, channel).

    The binary and multilabel form of :func:`tversky_loss`.

    .. math::
        U_{n,c} = 1 - \frac{I + s_{nr}}{I + \alpha\,(P - I) + \beta\,(T - I) + s_{dr}},\qquad p = \sigma(x)

    Args:
        logits: Scores ``(N, C, *)``.
        target: Binary or soft target of the logits' shape.
        alpha, beta: Weights ``>= 0`` of the false positives and false negatives.
        smooth_nr, smooth_dr: Smoothing constants ``>= 0``.
        {shared}

    Shape:
        As :func:`binary_dice_loss`.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError, TypeError, ValueError: As :func:`binary_dice_loss`, or for a negative
            ``alpha`` or ``beta``.

    Note:
        ``alpha = beta = 0.5`` is :func:`binary_dice_loss`.

    References:
        Salehi, Erdogmus and Gholipour, MLMI 2017. https://arxiv.org/abs/1706.05721

    Examples:
        >>> import torch
        >>> from lossforge.functional import binary_tversky_loss
        >>> x, t = torch.tensor([[[3.0, -2.0, 1.0, -4.0]]]), torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
        >>> binary_tversky_loss(x, t, alpha=0.3, beta=0.7)
        tensor(0.0891)
    """
    _check_tversky_args(alpha=alpha, beta=beta, smooth_nr=smooth_nr, smooth_dr=smooth_dr, per_image=per_image,
                        classes=classes, skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist,
                        loss="binary_tversky_loss")
    stats = _binary_stats(logits, target, ignore_index, "binary_tversky_loss")
    return _region(stats, _tversky_score(alpha, beta, smooth_nr, smooth_dr), class_weight=class_weight,
                   classes=classes, per_image=per_image, skip_empty=skip_empty, sync_dist=sync_dist,
                   group=process_group, reduction=reduction, sample_weight=sample_weight, mask=mask,
                   loss="binary_tversky_loss")


def _check_focal_tversky_args(*, alpha: float = 0.7, beta: float = 0.3, gamma: float = 4.0 / 3.0,
                              loss: str = "focal_tversky_loss", **rest: Any) -> None:
    check_range(gamma, "gamma", loss, low=0.0, low_inclusive=False)
    _check_tversky_args(alpha=alpha, beta=beta, loss=loss, **rest)


@loss_function
def focal_tversky_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    alpha: float = 0.7,
    beta: float = 0.3,
    gamma: float = 4.0 / 3.0,
    smooth_nr: float = 1.0,
    smooth_dr: float = 1.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = -100,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Focal Tversky loss on softmax probabilities: the Tversky loss raised to the power :math:`1/\gamma`.

    For small structures: with :math:`\gamma > 1` the loss of poorly segmented units (large
    Tversky loss) weighs relatively more than that of well segmented ones.

    .. math::
        U_{n,c} = \left(1 - \mathrm{TI}_{n,c}\right)^{1/\gamma},\qquad
        \mathrm{TI} = \frac{I + s_{nr}}{I + \alpha\,(P - I) + \beta\,(T - I) + s_{dr}}

    Args:
        logits: Unnormalised scores ``(N, C, *)``, ``C >= 2``.
        target: Class indices ``(N, *)``, or class probabilities ``(N, C, *)``.
        alpha, beta: Weights ``>= 0`` of the false positives and false negatives (the paper: 0.7, 0.3).
        gamma: :math:`\gamma > 0`, the paper's focal parameter (4/3 there).
        smooth_nr, smooth_dr: Smoothing constants ``>= 0``.
        {shared}

    Shape:
        As :func:`dice_loss`.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError, TypeError: As :func:`dice_loss`.
        ValueError: As :func:`tversky_loss`, or if ``gamma <= 0``.

    Note:
        ``gamma = 1`` is :func:`tversky_loss`. segmentation_models_pytorch's ``TverskyLoss(gamma=g)``
        computes :math:`(1 - \mathrm{TI})^{g}`, i.e. ``gamma = 1/g`` here. For :math:`\gamma > 1` the
        power's derivative is unbounded at 0; the gradient at an exactly perfect unit is defined as 0.

    References:
        Abraham and Khan, *A Novel Focal Tversky loss function with improved Attention U-Net for
        lesion segmentation*, ISBI 2019. https://arxiv.org/abs/1810.07842

    Examples:
        >>> import torch
        >>> from lossforge.functional import focal_tversky_loss
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, 3.0]], [[-1.0, 2.0], [1.0, -2.0]]]])
        >>> focal_tversky_loss(logits, torch.tensor([[[0, 1], [1, 0]]]))
        tensor(0.1473)
    """
    _check_focal_tversky_args(alpha=alpha, beta=beta, gamma=gamma, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                              per_image=per_image, classes=classes, skip_empty=skip_empty,
                              ignore_index=ignore_index, sync_dist=sync_dist)
    stats = _multiclass_stats(logits, target, ignore_index, "focal_tversky_loss")
    return _region(stats, _focal_tversky_score(alpha, beta, gamma, smooth_nr, smooth_dr),
                   class_weight=class_weight, classes=classes, per_image=per_image, skip_empty=skip_empty,
                   sync_dist=sync_dist, group=process_group, reduction=reduction, sample_weight=sample_weight,
                   mask=mask, loss="focal_tversky_loss")


@loss_function
def binary_focal_tversky_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    alpha: float = 0.7,
    beta: float = 0.3,
    gamma: float = 4.0 / 3.0,
    smooth_nr: float = 1.0,
    smooth_dr: float = 1.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = None,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Focal Tversky loss on sigmoid probabilities, per (image, channel).

    The binary and multilabel form of :func:`focal_tversky_loss`.

    .. math::
        U_{n,c} = \left(1 - \mathrm{TI}_{n,c}\right)^{1/\gamma},\qquad p = \sigma(x)

    Args:
        logits: Scores ``(N, C, *)``.
        target: Binary or soft target of the logits' shape.
        alpha, beta, gamma: As :func:`focal_tversky_loss`.
        smooth_nr, smooth_dr: Smoothing constants ``>= 0``.
        {shared}

    Shape:
        As :func:`binary_dice_loss`.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError, TypeError, ValueError: As :func:`binary_tversky_loss`, or if ``gamma <= 0``.

    Note:
        ``gamma = 1`` is :func:`binary_tversky_loss`.

    References:
        Abraham and Khan, ISBI 2019. https://arxiv.org/abs/1810.07842

    Examples:
        >>> import torch
        >>> from lossforge.functional import binary_focal_tversky_loss
        >>> x, t = torch.tensor([[[3.0, -2.0, 1.0, -4.0]]]), torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
        >>> binary_focal_tversky_loss(x, t)
        tensor(0.1308)
    """
    _check_focal_tversky_args(alpha=alpha, beta=beta, gamma=gamma, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                              per_image=per_image, classes=classes, skip_empty=skip_empty,
                              ignore_index=ignore_index, sync_dist=sync_dist, loss="binary_focal_tversky_loss")
    stats = _binary_stats(logits, target, ignore_index, "binary_focal_tversky_loss")
    return _region(stats, _focal_tversky_score(alpha, beta, gamma, smooth_nr, smooth_dr),
                   class_weight=class_weight, classes=classes, per_image=per_image, skip_empty=skip_empty,
                   sync_dist=sync_dist, group=process_group, reduction=reduction, sample_weight=sample_weight,
                   mask=mask, loss="binary_focal_tversky_loss")


_WEIGHT_TYPES = ("square", "simple", "uniform")


def _check_generalized_dice_args(*, weight_type: str = "square", loss: str = "generalized_dice_loss",
                                 **rest: Any) -> None:
    from .._core.checks import check_choice

    check_choice(weight_type, "weight_type", loss, _WEIGHT_TYPES)
    _check_dice_args(loss=loss, **rest)


def _gdl_weights(tsum: Tensor, weight_type: str) -> Tensor:
    """Sudre's class weights from the target masses (last dim = classes), without gradient.

    An absent class (``T = 0``) gets the largest weight of the present classes of its unit, as MONAI
    (uniform weights when no class is present); the weights are then normalised to sum to 1 over the
    classes of the unit.
    """
    t = tsum.detach()
    present = t > 0
    if weight_type == "uniform":
        raw = torch.ones_like(t)
    else:
        power = 2.0 if weight_type == "square" else 1.0
        floor = torch.finfo(t.dtype).tiny ** 0.25
        raw = t.clamp_min(floor).pow(-power)
    raw = torch.where(present, raw, torch.zeros_like(raw))
    top = raw.amax(-1, keepdim=True)
    w = torch.where(present, raw, top)
    w = torch.where(top > 0, w, torch.ones_like(w))  # no class present: uniform
    return w / w.sum(-1, keepdim=True)


@loss_function
def generalized_dice_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    weight_type: str = "square",
    smooth_nr: float = 1.0,
    smooth_dr: float = 1.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = -100,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Generalized Dice loss: one Dice over all classes, each weighted by the inverse of its target volume.

    For highly imbalanced multi-class segmentation: small structures weigh as much as large ones.

    .. math::
        U_n = 1 - \frac{2 \sum_c w_c I_{n,c} + s_{nr}}{\sum_c w_c (P_{n,c} + T_{n,c}) + s_{dr}},
        \qquad w_c \propto 1 / T_{n,c}^2,\quad \sum_c w_c = 1

    (``weight_type="simple"``: :math:`1/T`; ``"uniform"``: 1). The weights carry no gradient; a class
    absent from the unit gets the largest weight of the present ones (all classes the same weight when
    none is present, so false positives on an empty unit still cost); ``class_weight`` multiplies
    :math:`w`. Normalising the weights leaves the ratio unchanged (so with ``smooth=0`` the value is
    Sudre's and MONAI's) and keeps the smoothing constants in pixels, as for :func:`dice_loss`.

    Args:
        logits: Unnormalised scores ``(N, C, *)``, ``C >= 2``.
        target: Class indices ``(N, *)``, or class probabilities ``(N, C, *)``.
        weight_type: ``"square"`` (the paper), ``"simple"`` or ``"uniform"``.
        smooth_nr, smooth_dr: Smoothing constants ``>= 0``.
        {shared}

    Shape:
        - logits: ``(N, C, *)``; target: ``(N, *)`` or ``(N, C, *)``.
        - output: ``(N,)`` if ``reduction="none"`` (``()`` with ``per_image=False``), else ``()``.
          The unit is one image (the whole batch with ``per_image=False``); ``class_weight`` enters
          the formula, not the mean's denominator. ``skip_empty`` leaves out units whose selected
          classes are all empty.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError, TypeError: As :func:`dice_loss`.
        ValueError: As :func:`dice_loss`, or for an unknown ``weight_type``.

    Note:
        Finite for absent classes (the weights stay finite, MONAI #371, #4656), for every
        ignored pixel (0), and for soft labels. With ``per_image=False`` the weights come from the
        batch's target volumes (they do not cancel, unlike MONAI #6765).

    References:
        Sudre et al., *Generalised Dice overlap as a deep learning loss function for highly
        unbalanced segmentations*, DLMIA 2017. https://arxiv.org/abs/1707.03237

    Examples:
        >>> import torch
        >>> from lossforge.functional import generalized_dice_loss
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, 3.0]], [[-1.0, 2.0], [1.0, -2.0]]]])
        >>> generalized_dice_loss(logits, torch.tensor([[[0, 1], [1, 0]]]))
        tensor(0.0958)
    """
    _check_generalized_dice_args(weight_type=weight_type, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                                 per_image=per_image, classes=classes, skip_empty=skip_empty,
                                 ignore_index=ignore_index, sync_dist=sync_dist)
    loss = "generalized_dice_loss"
    stats = _multiclass_stats(logits, target, ignore_index, loss)
    num_classes = stats.inter.shape[1]
    index = _class_index(classes, num_classes, stats.inter, loss)
    cw = check_class_weight(class_weight, num_classes, stats.inter, loss)
    if cw is not None and index is not None:
        cw = cw.index_select(0, index)
    parts = _select([stats.inter, stats.psum, stats.tsum, stats.kept.expand_as(stats.inter)], index)
    local = parts[0].shape[:1] if per_image else torch.Size()
    inter, psum, tsum, cnt = _units(parts, per_image=per_image, sync_dist=sync_dist, group=process_group)
    w = _gdl_weights(tsum, weight_type)
    if cw is not None:
        w = w * cw
    u = 1.0 - _ratio(2.0 * (w * inter).sum(-1) + smooth_nr, (w * (psum + tsum)).sum(-1) + smooth_dr)
    return _finish(u, tsum=tsum.sum(-1), count=cnt.amax(-1), local_units=local, skip_empty=skip_empty,
                   class_weight=None, reduction=reduction, sample_weight=sample_weight, mask=mask,
                   per_image=per_image, sync_dist=sync_dist, group=process_group, loss=loss, class_dim=False)


def _check_mcc_args(*, smooth: float = 1.0, loss: str = "mcc_loss", **rest: Any) -> None:
    _check_smooth(loss, smooth=smooth)
    _check_dice_args(loss=loss, **rest)


@loss_function
def mcc_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    smooth: float = 1.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = -100,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Matthews-correlation loss on softmax probabilities, one class against the rest per (image, class).

    Uses the true negatives too, so it is balanced between foreground and background errors.

    .. math::
        U_{n,c} = 1 - \frac{TP\cdot TN - FP\cdot FN}
                           {\sqrt{(TP+FP)(TP+FN)(TN+FP)(TN+FN)}}

    with the soft counts :math:`TP = I + s`, :math:`FP = P - I`, :math:`FN = T - I`,
    :math:`TN = K - P - T + I + s` (:math:`K` the number of counted pixels).

    Args:
        logits: Unnormalised scores ``(N, C, *)``, ``C >= 2``.
        target: Class indices ``(N, *)``, or class probabilities ``(N, C, *)``.
        smooth: :math:`s \ge 0`, added to the true positives and negatives.
        {shared}

    Shape:
        As :func:`dice_loss`.

    Returns:
        The loss, in ``[0, 2]``, reduced as requested.

    Raises:
        ShapeError, TypeError: As :func:`dice_loss`.
        ValueError: As :func:`dice_loss`, or for a negative ``smooth``.

    Note:
        Empty-target policy: empty target and prediction give 0 (with ``smooth=0`` by definition,
        where the correlation is 0/0); an empty target with confident foreground gives
        :math:`\approx 1`, the largest value an empty target allows (no anti-correlation exists).
        The square root is guarded, so gradients stay finite at degenerate units.

    References:
        Matthews, *Comparison of the predicted and observed secondary structure of T4 phage
        lysozyme*, BBA 1975; Abhishek and Hamarneh, *Matthews correlation coefficient loss for deep
        convolutional networks*, ISBI 2021. https://arxiv.org/abs/2010.13454

    Examples:
        >>> import torch
        >>> from lossforge.functional import mcc_loss
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, 3.0]], [[-1.0, 2.0], [1.0, -2.0]]]])
        >>> mcc_loss(logits, torch.tensor([[[0, 1], [1, 0]]]))
        tensor(0.1532)
    """
    _check_mcc_args(smooth=smooth, per_image=per_image, classes=classes, skip_empty=skip_empty,
                    ignore_index=ignore_index, sync_dist=sync_dist)
    stats = _multiclass_stats(logits, target, ignore_index, "mcc_loss")
    return _region(stats, _mcc_score(smooth), class_weight=class_weight, classes=classes, per_image=per_image,
                   skip_empty=skip_empty, sync_dist=sync_dist, group=process_group, reduction=reduction,
                   sample_weight=sample_weight, mask=mask, loss="mcc_loss")


@loss_function
def binary_mcc_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    smooth: float = 1.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = None,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Matthews-correlation loss on sigmoid probabilities, per (image, channel).

    The binary and multilabel form of :func:`mcc_loss` (segmentation_models_pytorch's ``MCCLoss``
    computes it over the whole batch: ``per_image=False``).

    .. math::
        U_{n,c} = 1 - \mathrm{MCC}(TP, FP, FN, TN),\qquad p = \sigma(x)

    Args:
        logits: Scores ``(N, C, *)``.
        target: Binary or soft target of the logits' shape.
        smooth: :math:`s \ge 0`, added to the true positives and negatives.
        {shared}

    Shape:
        As :func:`binary_dice_loss`.

    Returns:
        The loss, in ``[0, 2]``, reduced as requested.

    Raises:
        ShapeError, TypeError, ValueError: As :func:`binary_dice_loss`.

    Note:
        Same empty-target policy as :func:`mcc_loss`.

    References:
        Abhishek and Hamarneh, ISBI 2021. https://arxiv.org/abs/2010.13454

    Examples:
        >>> import torch
        >>> from lossforge.functional import binary_mcc_loss
        >>> x, t = torch.tensor([[[3.0, -2.0, 1.0, -4.0]]]), torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
        >>> binary_mcc_loss(x, t)
        tensor(0.1497)
    """
    _check_mcc_args(smooth=smooth, per_image=per_image, classes=classes, skip_empty=skip_empty,
                    ignore_index=ignore_index, sync_dist=sync_dist, loss="binary_mcc_loss")
    stats = _binary_stats(logits, target, ignore_index, "binary_mcc_loss")
    return _region(stats, _mcc_score(smooth), class_weight=class_weight, classes=classes, per_image=per_image,
                   skip_empty=skip_empty, sync_dist=sync_dist, group=process_group, reduction=reduction,
                   sample_weight=sample_weight, mask=mask, loss="binary_mcc_loss")


# ============================================================================ losses on full probability maps


def _compute_dtype(x: Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _is_hard(t: Tensor) -> bool:
    """Whether a float target holds only 0 and 1 (eager only; under torch.compile: ``False``)."""
    if torch.compiler.is_compiling():
        return False
    return bool(((t == 0) | (t == 1)).all())


def _maps(logits: Tensor, target: Tensor, ignore_index: int | None, loss: str, *, binary: bool,
          need_spatial: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor | None, bool]:
    """``(p, g, hard, keep, is_hard)``: probabilities, target mass, target mask, counted pixels, 0/1 target.

    ``p`` and ``g`` are ``(N, C, *)`` in the compute dtype, ``hard`` is bool ``(N, C, *)``, ``keep`` is
    bool and broadcastable to ``(N, C, *)`` (or ``None``). Ignored pixels are background in ``g`` and ``hard``.
    """
    dt = _compute_dtype(logits)
    if binary:
        t, keep = _binary_target(logits, target, ignore_index, loss, need_spatial=need_spatial)
        g = t.to(dt)
        hard_labels = target.dtype == torch.bool or _is_hard(g)
        return torch.sigmoid(logits.to(dt)), g, g >= 0.5, keep, hard_labels
    safe, keep, soft = _multiclass_target(logits, target, ignore_index, loss, need_spatial=need_spatial)
    p = torch.softmax(logits.to(dt), 1)
    if soft:
        g = safe.to(dt)
        return p, g, g >= 0.5, None, _is_hard(g)
    classes = torch.arange(logits.shape[1], device=logits.device).view(1, -1, *([1] * (logits.dim() - 2)))
    hard = safe.unsqueeze(1) == classes
    if keep is not None:
        keep = keep.unsqueeze(1)
        hard = hard & keep
    return p, hard.to(dt), hard, keep, True


def _sel(index: Tensor | None, x: Tensor) -> Tensor:
    """The selected classes of a map ``(N, C, *)`` (maps with one broadcast channel are kept)."""
    return x if index is None or x.shape[1] == 1 else x.index_select(1, index)


def _sel_keep(index: Tensor | None, keep: Tensor | None) -> Tensor | None:
    return None if keep is None else _sel(index, keep)


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], x.shape[1], _pixels(x))


def _pixel_sum(x: Tensor, keep: Tensor | None) -> Tensor:
    """Sum over the spatial dimensions of ``x`` ``(N, K, *)``, counting only kept pixels."""
    if keep is not None:
        x = x * keep
    return _flat(x).sum(-1)


def _counts(keep: Tensor | None, like: Tensor) -> Tensor:
    """Counted pixels per unit, shaped like ``like`` ``(N, K, *)``'s unit sums."""
    n, k = like.shape[:2]
    if keep is None:
        return like.new_full((n, k), float(_flat(like).shape[-1]))
    return _flat(keep.expand(n, keep.shape[1], *like.shape[2:])).sum(-1).to(like.dtype).expand(n, k)


def _mean_of(total: Tensor, count: Tensor) -> Tensor:
    ok = count > 0
    return torch.where(ok, total / torch.where(ok, count, torch.ones_like(count)), torch.zeros_like(total))


def _map_loss(parts: list[Tensor], u_of: Callable[[list[Tensor]], Tensor], *, class_weight: Tensor | None,
              index: Tensor | None, num_classes: int, per_image: bool, skip_empty: bool, sync_dist: bool,
              group: Any, reduction: Reduction, sample_weight: Tensor | None, mask: Tensor | None,
              loss: str) -> Tensor:
    """Tail of the map losses: ``parts = [*sums, tsum, count]`` per (image, selected class); ``u_of(units)``."""
    ref = parts[0]
    cw = check_class_weight(class_weight, num_classes, ref, loss)
    if cw is not None and index is not None:
        cw = cw.index_select(0, index)
    local = ref.shape if per_image else ref.shape[1:]
    units = _units(parts, per_image=per_image, sync_dist=sync_dist, group=group)
    u = u_of(units)
    return _finish(u, tsum=units[-2], count=units[-1], local_units=local, skip_empty=skip_empty,
                   class_weight=cw, reduction=reduction, sample_weight=sample_weight, mask=mask,
                   per_image=per_image, sync_dist=sync_dist, group=group, loss=loss)


def _check_map_args(*, loss: str, per_image: bool = True, classes: Sequence[int] | None = None,
                    skip_empty: bool = False, ignore_index: int | None = None, sync_dist: bool = False,
                    **_: object) -> None:
    _check_shared(loss, per_image=per_image, skip_empty=skip_empty, sync_dist=sync_dist, classes=classes,
                  ignore_index=ignore_index)


def _lovasz(errors: Tensor, fg: Tensor, keep: Tensor | None, g: Tensor, *, per_image: bool, sync_dist: bool,
            group: Any) -> tuple[Tensor, Tensor, Tensor, torch.Size]:
    """``(U, tsum, count, local unit shape)`` of the Lovász extension over rows (image, class) or (class)."""
    n, k = errors.shape[:2]
    e = _flat(errors)
    f = _flat(fg)
    valid = None if keep is None else _flat(keep.expand(n, keep.shape[1], *errors.shape[2:])).expand(n, k, -1)
    gm = _flat(g) if valid is None else _flat(g) * valid
    if per_image:
        px = e.shape[-1]
        u = lovasz_rows(e.reshape(n * k, px), f.reshape(n * k, px),
                        None if valid is None else valid.reshape(n * k, px)).reshape(n, k)
        cnt = e.new_full((n, k), float(e.shape[-1])) if valid is None else valid.sum(-1).to(e.dtype)
        units = _units([u, gm.sum(-1), cnt], per_image=True, sync_dist=sync_dist, group=group)
        return units[0], units[1], units[2], torch.Size((n, k))
    total = n * e.shape[-1]
    rows_e = e.transpose(0, 1).reshape(k, total)
    rows_f = f.transpose(0, 1).reshape(k, total)
    rows_v = None if valid is None else valid.transpose(0, 1).reshape(k, total)
    rows_g = gm.transpose(0, 1).reshape(k, total)
    if sync_dist and is_distributed(group):
        rows_e = all_gather_cat(rows_e.t().contiguous(), group).t()
        rows_f = all_gather_cat(rows_f.t().to(rows_e.dtype).contiguous(), group).t()
        rows_f = rows_f.bool() if fg.dtype == torch.bool else rows_f
        rows_g = all_gather_cat(rows_g.t().contiguous(), group).t()
        if rows_v is not None:
            rows_v = all_gather_cat(rows_v.t().to(torch.uint8).contiguous(), group).t().bool()
    u = lovasz_rows(rows_e, rows_f, rows_v)
    cnt = rows_e.new_full((k,), float(rows_e.shape[-1])) if rows_v is None else rows_v.sum(-1).to(rows_e.dtype)
    return u, rows_g.sum(-1), cnt, torch.Size((k,))


def _lovasz_softmax_fused(logits: Tensor, target: Tensor, ignore_index: int | None, loss: str, *, per_image: bool,
                          classes: Sequence[int] | None, sync_dist: bool, group: Any,
                          ) -> tuple[Tensor, Tensor, Tensor, torch.Size, Tensor | None] | None:
    """``(U, tsum, count, local unit shape, class index)`` from the fused kernel, for class-index targets.

    ``None`` (the general path) for class-probability targets, under ``torch.compile``, and for
    whole-batch statistics synchronised over ranks (which gather the errors).
    """
    target, _, soft = _multiclass_target(logits, target, ignore_index, loss, sanitise=False)
    if soft or torch.compiler.is_compiling() or (not per_image and sync_dist and is_distributed(group)):
        return None
    n, c, px = *logits.shape[:2], _pixels(logits)
    index = _class_index(classes, c, logits, loss)
    flat_t = target.reshape(n, px)
    u, tsum = lovasz_softmax_index(logits.reshape(n, c, px), flat_t, ignore_index, index, per_image=per_image)
    k = c if index is None else index.numel()
    if ignore_index is None:
        kept = u.new_full((n,), float(px))
    else:
        kept = (flat_t != ignore_index).sum(-1).to(u.dtype)
    if per_image:
        units = _units([u.reshape(n, k), tsum.reshape(n, k), kept.unsqueeze(1).expand(n, k)], per_image=True,
                       sync_dist=sync_dist, group=group)
        return units[0], units[1], units[2], torch.Size((n, k)), index
    return u, tsum, kept.sum().expand(k), torch.Size((k,)), index


@loss_function
def lovasz_softmax_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = -100,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Lovász-softmax loss: the convex Lovász extension of the Jaccard loss, per (image, class).

    A tight convex surrogate of the IoU for multi-class segmentation.

    .. math::
        U_{n,c} = \sum_{i} e_{(i)}\, g_i,\qquad e_i = |t_{i,c} - p_{i,c}|,\qquad
        g_i = J(\pi_{1..i}) - J(\pi_{1..i-1}),\qquad J(S) = \frac{|S|}{|G_c \cup S|}

    with the errors sorted in decreasing order (:math:`\pi`) and :math:`G_c` the pixels of class
    :math:`c`.

    Args:
        logits: Unnormalised scores ``(N, C, *)``, ``C >= 2``.
        target: Class indices ``(N, *)``, or class probabilities ``(N, C, *)`` (fractional
            foreground counts; equal to the hard case for 0/1).
        {shared}

    Shape:
        As :func:`dice_loss`.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError, TypeError, ValueError: As :func:`dice_loss`.

    Note:
        No Python loop over classes or images: every (image, class) row is handled at once. With
        hard labels only the pixels whose errors overlap between foreground and background are
        sorted (the others have closed-form Lovász gradients), on the CPU by a native kernel (a radix
        sort per row; ``lossforge._native``, with a torch fallback); soft labels use one batched sort.
        The paper's default ``classes="present"`` is ``skip_empty=True`` here; by default an absent
        class counts with the loss of its largest false-positive probability (empty target and
        empty prediction: 0; confident foreground: :math:`\approx 1`). The paper's
        ``per_image=False`` is the whole-batch form; with ``sync_dist`` it gathers the errors of all
        ranks (memory of the whole batch's probabilities).

    References:
        Berman, Rannen Triki and Blaschko, *The Lovász-Softmax loss*, CVPR 2018.
        https://arxiv.org/abs/1705.08790

    Examples:
        >>> import torch
        >>> from lossforge.functional import lovasz_softmax_loss
        >>> logits = torch.tensor([[[[2.0, -1.0], [0.5, 3.0]], [[-1.0, 2.0], [1.0, -2.0]]]])
        >>> lovasz_softmax_loss(logits, torch.tensor([[[0, 1], [1, 0]]]))
        tensor(0.1799)
    """
    loss = "lovasz_softmax_loss"
    _check_map_args(loss=loss, per_image=per_image, classes=classes, skip_empty=skip_empty,
                    ignore_index=ignore_index, sync_dist=sync_dist)
    fused = _lovasz_softmax_fused(logits, target, ignore_index, loss, per_image=per_image, classes=classes,
                                  sync_dist=sync_dist, group=process_group)
    if fused is not None:
        u, tsum, cnt, local, index = fused
        num_classes = logits.shape[1]
        cw = check_class_weight(class_weight, num_classes, u, loss)
        if cw is not None and index is not None:
            cw = cw.index_select(0, index)
        return _finish(u, tsum=tsum, count=cnt, local_units=local, skip_empty=skip_empty, class_weight=cw,
                       reduction=reduction, sample_weight=sample_weight, mask=mask, per_image=per_image,
                       sync_dist=sync_dist, group=process_group, loss=loss)
    p, g, hard, keep, is_hard = _maps(logits, target, ignore_index, loss, binary=False, need_spatial=False)
    num_classes = logits.shape[1]
    index = _class_index(classes, num_classes, p, loss)
    p, g, hard = _sel(index, p), _sel(index, g), _sel(index, hard)
    fg: Tensor = hard if is_hard else g
    errors = (g - p).abs()
    u, tsum, cnt, local = _lovasz(errors, fg, keep, g, per_image=per_image, sync_dist=sync_dist, group=process_group)
    cw = check_class_weight(class_weight, num_classes, p, loss)
    if cw is not None and index is not None:
        cw = cw.index_select(0, index)
    return _finish(u, tsum=tsum, count=cnt, local_units=local, skip_empty=skip_empty, class_weight=cw,
                   reduction=reduction, sample_weight=sample_weight, mask=mask, per_image=per_image,
                   sync_dist=sync_dist, group=process_group, loss=loss)


@loss_function
def lovasz_hinge_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = None,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Lovász hinge loss: the Lovász extension of the Jaccard loss on hinge errors, per (image, channel).

    The binary and multilabel member of the Lovász family; works on raw logits (no sigmoid).

    .. math::
        U_{n,c} = \sum_i \operatorname{relu}(e_{(i)})\, g_i,\qquad e_i = 1 - x_i\,(2 t_i - 1)

    with :math:`g` the Lovász gradient of the Jaccard loss of the channel's foreground, as in
    :func:`lovasz_softmax_loss`.

    Args:
        logits: Scores ``(N, C, *)``.
        target: Binary or soft target of the logits' shape.
        {shared}

    Shape:
        As :func:`binary_dice_loss`.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError, TypeError, ValueError: As :func:`binary_dice_loss`.

    Note:
        Linear in the logits far from the margin, so unbounded above: an empty target with a
        confident foreground is penalised in proportion to the logit. Empty target and confidently
        empty prediction: 0.

    References:
        Berman, Rannen Triki and Blaschko, *The Lovász-Softmax loss*, CVPR 2018.
        https://arxiv.org/abs/1705.08790

    Examples:
        >>> import torch
        >>> from lossforge.functional import lovasz_hinge_loss
        >>> x, t = torch.tensor([[[3.0, -2.0, 0.5, -4.0]]]), torch.tensor([[[1.0, 0.0, 1.0, 0.0]]])
        >>> lovasz_hinge_loss(x, t)
        tensor(0.2500)
    """
    loss = "lovasz_hinge_loss"
    _check_map_args(loss=loss, per_image=per_image, classes=classes, skip_empty=skip_empty,
                    ignore_index=ignore_index, sync_dist=sync_dist)
    t, keep = _binary_target(logits, target, ignore_index, loss)
    dt = _compute_dtype(logits)
    g = t.to(dt)
    is_hard = target.dtype == torch.bool or _is_hard(g)
    num_classes = logits.shape[1]
    index = _class_index(classes, num_classes, g, loss)
    x, g, k2 = _sel(index, logits.to(dt)), _sel(index, g), _sel_keep(index, keep)
    errors = torch.relu(1.0 - x * (2.0 * g - 1.0))
    fg: Tensor = g >= 0.5 if is_hard else g
    u, tsum, cnt, local = _lovasz(errors, fg, k2, g, per_image=per_image, sync_dist=sync_dist, group=process_group)
    cw = check_class_weight(class_weight, num_classes, g, loss)
    if cw is not None and index is not None:
        cw = cw.index_select(0, index)
    return _finish(u, tsum=tsum, count=cnt, local_units=local, skip_empty=skip_empty, class_weight=cw,
                   reduction=reduction, sample_weight=sample_weight, mask=mask, per_image=per_image,
                   sync_dist=sync_dist, group=process_group, loss=loss)


def _map_parts(logits: Tensor, target: Tensor, ignore_index: int | None, classes: Sequence[int] | None,
               loss: str, *, binary: bool) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None, int]:
    """Selected ``(p, g, hard, keep)``, the class index and C, for the losses on probability maps."""
    p, g, hard, keep, _ = _maps(logits, target, ignore_index, loss, binary=binary)
    num_classes = logits.shape[1]
    index = _class_index(classes, num_classes, p, loss)
    return _sel(index, p), _sel(index, g), _sel(index, hard), _sel_keep(index, keep), index, num_classes


def _spatial_shape(x: Tensor) -> tuple[int, ...]:
    return tuple(x.shape[2:])


def _boundary(logits: Tensor, target: Tensor, *, binary: bool, loss: str, per_image: bool,
              class_weight: Tensor | None, classes: Sequence[int] | None, skip_empty: bool,
              ignore_index: int | None, sync_dist: bool, process_group: Any, reduction: Reduction,
              sample_weight: Tensor | None, mask: Tensor | None) -> Tensor:
    _check_map_args(loss=loss, per_image=per_image, classes=classes, skip_empty=skip_empty,
                    ignore_index=ignore_index, sync_dist=sync_dist)
    p, g, hard, keep, index, num_classes = _map_parts(logits, target, ignore_index, classes, loss, binary=binary)
    n, k = p.shape[:2]
    with torch.no_grad():
        phi = signed_distance(hard.reshape(n * k, *_spatial_shape(hard)), p.dtype).reshape(hard.shape)
    parts = [_pixel_sum(phi * (p - g), keep), _pixel_sum(g, keep), _counts(keep, p)]
    return _map_loss(parts, lambda s: _mean_of(s[0], s[-1]), class_weight=class_weight, index=index,
                     num_classes=num_classes, per_image=per_image, skip_empty=skip_empty, sync_dist=sync_dist,
                     group=process_group, reduction=reduction, sample_weight=sample_weight, mask=mask, loss=loss)


@loss_function
def boundary_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = -100,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Boundary loss: softmax probabilities weighted by the signed distance to the target's boundary.

    For highly unbalanced segmentation: a distance-based term that does not vanish for tiny regions;
    the paper adds it to a region loss (``lf.build("generalized_dice + 0.01 * boundary")``).

    .. math::
        U_{n,c} = \frac{1}{K} \sum_i \phi_{i,c}\,(p_{i,c} - t_{i,c}),\qquad
        \phi = d_{\text{out}} - d_{\text{in}}

    :math:`d_{\text{out}}` is the Euclidean distance (in pixels) of a pixel outside class :math:`c`
    to the nearest pixel of the class, :math:`d_{\text{in}}` that of a pixel inside to the nearest
    pixel outside; the distance maps are computed from the target, in torch, without gradient.

    Args:
        logits: Unnormalised scores ``(N, C, *spatial)``, ``C >= 2``, one or more spatial dimensions.
        target: Class indices ``(N, *spatial)``, or class probabilities ``(N, C, *spatial)`` (the
            distance map then comes from ``t >= 0.5``).
        {shared}

    Shape:
        As :func:`dice_loss`.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If there is no spatial dimension, or the target's shape does not match.
        TypeError, ValueError: As :func:`dice_loss`.

    Note:
        This is the paper's :math:`\frac1K\sum \phi\,p` minus its minimum over predictions
        :math:`\frac1K\sum \phi\,t` (a constant of the target), so a perfect prediction gives 0 and
        every term :math:`|\phi|\,|p - t|` is non-negative; the gradient is the paper's. The
        distances are exact (separable lower-envelope passes). Empty-target policy: a class absent
        from an image has :math:`\phi = L` (the image diagonal, the largest distance it holds)
        everywhere, so an empty prediction gives 0 and confident foreground :math:`\approx L`; a class
        filling the image has :math:`\phi = -L`. Ignored pixels are background for the distance
        map and are left out of the sums.

    References:
        Kervadec et al., *Boundary loss for highly unbalanced segmentation*, MIDL 2019 / MedIA 2021.
        https://arxiv.org/abs/1812.07032

    Examples:
        >>> import torch
        >>> from lossforge.functional import boundary_loss
        >>> target = torch.zeros(1, 1, 5, dtype=torch.long)
        >>> target[..., 1:3] = 1
        >>> logits = torch.zeros(1, 2, 1, 5)
        >>> logits[:, 1, :, 3] = 4.0  # a false positive next to the object
        >>> boundary_loss(logits, target)
        tensor(0.6964)
    """
    return _boundary(logits, target, binary=False, loss="boundary_loss", per_image=per_image,
                     class_weight=class_weight, classes=classes, skip_empty=skip_empty, ignore_index=ignore_index,
                     sync_dist=sync_dist, process_group=process_group, reduction=reduction,
                     sample_weight=sample_weight, mask=mask)


@loss_function
def binary_boundary_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = None,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Boundary loss on sigmoid probabilities, per (image, channel).

    The binary and multilabel form of :func:`boundary_loss`.

    .. math::
        U_{n,c} = \frac{1}{K} \sum_i \phi_{i}\,(p_i - t_i),\qquad p = \sigma(x),\quad
        \phi = d_{\text{out}} - d_{\text{in}} \text{ of the mask } t \ge 0.5

    Args:
        logits: Scores ``(N, C, *spatial)``.
        target: Binary or soft target of the logits' shape.
        {shared}

    Shape:
        As :func:`binary_dice_loss`.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError, TypeError, ValueError: As :func:`binary_dice_loss`, or without a spatial dimension.

    Note:
        As :func:`boundary_loss`.

    References:
        Kervadec et al., MIDL 2019. https://arxiv.org/abs/1812.07032

    Examples:
        >>> import torch
        >>> from lossforge.functional import binary_boundary_loss
        >>> target = torch.tensor([[[0.0, 1.0, 1.0, 0.0, 0.0]]])
        >>> binary_boundary_loss(torch.tensor([[[-4.0, 4.0, 4.0, 4.0, -4.0]]]), target)
        tensor(0.2144)
    """
    return _boundary(logits, target, binary=True, loss="binary_boundary_loss", per_image=per_image,
                     class_weight=class_weight, classes=classes, skip_empty=skip_empty, ignore_index=ignore_index,
                     sync_dist=sync_dist, process_group=process_group, reduction=reduction,
                     sample_weight=sample_weight, mask=mask)


def _check_hausdorff_args(*, alpha: float = 2.0, loss: str = "hausdorff_dt_loss", **rest: Any) -> None:
    check_range(alpha, "alpha", loss, low=0.0, low_inclusive=False)
    _check_map_args(loss=loss, **rest)


def _hausdorff(logits: Tensor, target: Tensor, *, binary: bool, loss: str, alpha: float, per_image: bool,
               class_weight: Tensor | None, classes: Sequence[int] | None, skip_empty: bool,
               ignore_index: int | None, sync_dist: bool, process_group: Any, reduction: Reduction,
               sample_weight: Tensor | None, mask: Tensor | None) -> Tensor:
    _check_hausdorff_args(alpha=alpha, loss=loss, per_image=per_image, classes=classes, skip_empty=skip_empty,
                          ignore_index=ignore_index, sync_dist=sync_dist)
    p, g, hard, keep, index, num_classes = _map_parts(logits, target, ignore_index, classes, loss, binary=binary)
    n, k = p.shape[:2]
    with torch.no_grad():
        masks = torch.cat([(p > 0.5), hard]).reshape(2 * n * k, *_spatial_shape(p))
        d_pred, d_true = unsigned_distance(masks, p.dtype).reshape(2, *p.shape).unbind(0)
        weight = d_pred.pow(alpha) + d_true.pow(alpha)
    parts = [_pixel_sum((p - g).square() * weight, keep), _pixel_sum(g, keep), _counts(keep, p)]
    return _map_loss(parts, lambda s: _mean_of(s[0], s[-1]), class_weight=class_weight, index=index,
                     num_classes=num_classes, per_image=per_image, skip_empty=skip_empty, sync_dist=sync_dist,
                     group=process_group, reduction=reduction, sample_weight=sample_weight, mask=mask, loss=loss)


@loss_function
def hausdorff_dt_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    alpha: float = 2.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = -100,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Hausdorff-distance loss by distance transforms, on softmax probabilities, per (image, class).

    Reduces the Hausdorff distance between prediction and target: errors far from either boundary
    weigh more.

    .. math::
        U_{n,c} = \frac1K \sum_i (p_{i,c} - t_{i,c})^2 \left(d_{P}(i)^{\alpha} + d_{T}(i)^{\alpha}\right)

    :math:`d_T(i)` is the Euclidean distance of pixel :math:`i` to the nearest pixel of the other
    label of the target mask, :math:`d_P(i)` the same for the predicted mask :math:`p > 0.5`; both
    are computed in torch, without gradient.

    Args:
        logits: Unnormalised scores ``(N, C, *spatial)``, ``C >= 2``.
        target: Class indices ``(N, *spatial)``, or class probabilities ``(N, C, *spatial)``.
        alpha: :math:`\alpha > 0`, the power of the distances (2 in the paper and MONAI).
        {shared}

    Shape:
        As :func:`dice_loss`.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If there is no spatial dimension, or the target's shape does not match.
        TypeError, ValueError: As :func:`dice_loss`, or if ``alpha <= 0``.

    Note:
        Empty-target policy: a mask without any pixel of the other label (empty or full) has the
        distance :math:`L` (the image diagonal) everywhere, so an empty target with an empty
        prediction gives 0 and with confident foreground :math:`\approx 2L^{\alpha}`, the maximum
        (MONAI uses a zero distance map there, so false positives on empty images cost nothing).
        Distances are exact.

    References:
        Karimi and Salcudean, *Reducing the Hausdorff Distance in Medical Image Segmentation with
        Convolutional Neural Networks*, IEEE TMI 2020. https://arxiv.org/abs/1904.10030

    Examples:
        >>> import torch
        >>> from lossforge.functional import hausdorff_dt_loss
        >>> target = torch.tensor([[[0, 1, 1, 0, 0]]])
        >>> logits = torch.zeros(1, 2, 1, 5)
        >>> logits[:, 1, :, 3] = 4.0
        >>> hausdorff_dt_loss(logits, target)
        tensor(6.1216)
    """
    return _hausdorff(logits, target, binary=False, loss="hausdorff_dt_loss", alpha=alpha, per_image=per_image,
                      class_weight=class_weight, classes=classes, skip_empty=skip_empty, ignore_index=ignore_index,
                      sync_dist=sync_dist, process_group=process_group, reduction=reduction,
                      sample_weight=sample_weight, mask=mask)


@loss_function
def binary_hausdorff_dt_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    alpha: float = 2.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = None,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Hausdorff-distance loss by distance transforms, on sigmoid probabilities, per (image, channel).

    The binary and multilabel form of :func:`hausdorff_dt_loss` (MONAI's
    ``HausdorffDTLoss(sigmoid=True)``).

    .. math::
        U_{n,c} = \frac1K \sum_i (p_i - t_i)^2 \left(d_{P}(i)^{\alpha} + d_{T}(i)^{\alpha}\right),
        \qquad p = \sigma(x)

    Args:
        logits: Scores ``(N, C, *spatial)``.
        target: Binary or soft target of the logits' shape (the distance map comes from ``t >= 0.5``).
        alpha: :math:`\alpha > 0`.
        {shared}

    Shape:
        As :func:`binary_dice_loss`.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError, TypeError, ValueError: As :func:`hausdorff_dt_loss`.

    Note:
        As :func:`hausdorff_dt_loss`.

    References:
        Karimi and Salcudean, IEEE TMI 2020. https://arxiv.org/abs/1904.10030

    Examples:
        >>> import torch
        >>> from lossforge.functional import binary_hausdorff_dt_loss
        >>> target = torch.tensor([[[0.0, 1.0, 1.0, 0.0, 0.0]]])
        >>> binary_hausdorff_dt_loss(torch.tensor([[[-4.0, 4.0, 4.0, 4.0, -4.0]]]), target)
        tensor(0.3866)
    """
    return _hausdorff(logits, target, binary=True, loss="binary_hausdorff_dt_loss", alpha=alpha,
                      per_image=per_image, class_weight=class_weight, classes=classes, skip_empty=skip_empty,
                      ignore_index=ignore_index, sync_dist=sync_dist, process_group=process_group,
                      reduction=reduction, sample_weight=sample_weight, mask=mask)


_POOLS = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def _soft_erode(x: Tensor) -> Tensor:
    """Minimum over the axis-aligned 3-neighbourhoods (a cross), as a max-pool of ``-x``.

    The outside of the image is background (0), so a mask filling the image still has a boundary,
    and its skeleton is not empty.
    """
    d = x.dim() - 2
    pool = _POOLS[d]
    out: Tensor | None = None
    for axis in range(d):
        kernel = tuple(3 if a == axis else 1 for a in range(d))
        pad = [0] * (2 * d)
        pad[2 * (d - 1 - axis)] = pad[2 * (d - 1 - axis) + 1] = 1
        e = -pool(-F.pad(x, pad, value=0.0), kernel, 1, 0)
        out = e if out is None else torch.minimum(out, e)
    return x if out is None else out


def _soft_dilate(x: Tensor) -> Tensor:
    return _POOLS[x.dim() - 2](x, 3, 1, 1)


def _soft_skeleton(x: Tensor, iterations: int) -> Tensor:
    """Soft skeleton of probability maps ``(B, 1, *spatial)`` (Shit et al., Algorithm 1)."""
    opened = _soft_dilate(_soft_erode(x))
    skel = torch.relu(x - opened)
    for _ in range(iterations):
        x = _soft_erode(x)
        opened = _soft_dilate(_soft_erode(x))
        delta = torch.relu(x - opened)
        skel = skel + torch.relu(delta - skel * delta)
    return skel


def _check_cl_dice_args(*, iterations: int = 3, smooth: float = 1.0, loss: str = "cl_dice_loss",
                        **rest: Any) -> None:
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(message(loss, "iterations", "must be an int >= 0", repr(iterations)))
    _check_smooth(loss, smooth=smooth)
    _check_map_args(loss=loss, **rest)


def _cl_dice(logits: Tensor, target: Tensor, *, binary: bool, loss: str, iterations: int, smooth: float,
             per_image: bool, class_weight: Tensor | None, classes: Sequence[int] | None, skip_empty: bool,
             ignore_index: int | None, sync_dist: bool, process_group: Any, reduction: Reduction,
             sample_weight: Tensor | None, mask: Tensor | None) -> Tensor:
    _check_cl_dice_args(iterations=iterations, smooth=smooth, loss=loss, per_image=per_image, classes=classes,
                        skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist)
    p, g, _, keep, index, num_classes = _map_parts(logits, target, ignore_index, classes, loss, binary=binary)
    if p.dim() - 2 not in _POOLS:
        raise ShapeError(message(loss, "logits", "must have 1, 2 or 3 spatial dimensions", tuple(logits.shape)),
                         expected="(N, C, *spatial), 1 to 3 spatial dimensions", actual=tuple(logits.shape))
    n, k = p.shape[:2]
    flat = (n * k, 1, *_spatial_shape(p))
    skel_p = _soft_skeleton(p.reshape(flat), iterations).reshape(p.shape)
    with torch.no_grad():
        skel_t = _soft_skeleton(g.reshape(flat), iterations).reshape(g.shape)
    parts = [_pixel_sum(skel_p * g, keep), _pixel_sum(skel_p, keep), _pixel_sum(skel_t * p, keep),
             _pixel_sum(skel_t, keep), _pixel_sum(g, keep), _counts(keep, p)]

    def u_of(s: list[Tensor]) -> Tensor:
        tprec = _ratio(s[0] + smooth, s[1] + smooth)
        tsens = _ratio(s[2] + smooth, s[3] + smooth)
        return 1.0 - _ratio(2.0 * tprec * tsens, tprec + tsens)

    return _map_loss(parts, u_of, class_weight=class_weight, index=index, num_classes=num_classes,
                     per_image=per_image, skip_empty=skip_empty, sync_dist=sync_dist, group=process_group,
                     reduction=reduction, sample_weight=sample_weight, mask=mask, loss=loss)


@loss_function
def cl_dice_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    iterations: int = 3,
    smooth: float = 1.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = -100,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Soft clDice loss on softmax probabilities: the Dice of skeletons, for tubular structures.

    Preserves the topology of thin structures (vessels, roads, neurons); the paper adds it to a
    region loss (``lf.build("0.5 * dice + 0.5 * cl_dice")``).

    .. math::
        U_{n,c} = 1 - \frac{2\, T_{prec} T_{sens}}{T_{prec} + T_{sens}},\quad
        T_{prec} = \frac{\sum S_P\, t + s}{\sum S_P + s},\quad
        T_{sens} = \frac{\sum S_T\, p + s}{\sum S_T + s}

    with :math:`S_P`, :math:`S_T` the soft skeletons (iterated min/max pooling) of the probability
    map and of the target; the outside of the image counts as background.

    Args:
        logits: Unnormalised scores ``(N, C, *spatial)``, ``C >= 2``, 1 to 3 spatial dimensions.
        target: Class indices ``(N, *spatial)``, or class probabilities ``(N, C, *spatial)``.
        iterations: Number of soft-skeleton iterations (``>= 0``; about the largest radius to thin).
        smooth: :math:`s \ge 0` (1 in the paper and MONAI).
        {shared}

    Shape:
        As :func:`dice_loss`.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: Without 1 to 3 spatial dimensions, or if the target's shape does not match.
        TypeError, ValueError: As :func:`dice_loss`, or for a negative ``iterations`` or ``smooth``.

    Note:
        The target's skeleton carries no gradient. Empty target and empty prediction give 0; an
        empty target with confident foreground gives :math:`\approx 1`, also when the prediction
        fills the image: the soft erosion treats the outside of the image as background (MONAI and
        the paper's code pad it as foreground, where a full mask has an empty skeleton and costs
        nothing; on images with a background border both agree).

    References:
        Shit et al., *clDice - a Novel Topology-Preserving Loss Function for Tubular Structure
        Segmentation*, CVPR 2021. https://arxiv.org/abs/2003.07311

    Examples:
        >>> import torch
        >>> from lossforge.functional import cl_dice_loss
        >>> target = torch.zeros(1, 5, 5, dtype=torch.long)
        >>> target[:, 2, :] = 1  # a horizontal line
        >>> logits = torch.zeros(1, 2, 5, 5)
        >>> logits[:, 1, 2, :4] = 4.0  # the line, one pixel short
        >>> cl_dice_loss(logits, target)
        tensor(0.1867)
    """
    return _cl_dice(logits, target, binary=False, loss="cl_dice_loss", iterations=iterations, smooth=smooth,
                    per_image=per_image, class_weight=class_weight, classes=classes, skip_empty=skip_empty,
                    ignore_index=ignore_index, sync_dist=sync_dist, process_group=process_group,
                    reduction=reduction, sample_weight=sample_weight, mask=mask)


@loss_function
def binary_cl_dice_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    iterations: int = 3,
    smooth: float = 1.0,
    per_image: bool = True,
    class_weight: Tensor | None = None,
    classes: Sequence[int] | None = None,
    skip_empty: bool = False,
    ignore_index: int | None = None,
    sync_dist: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Soft clDice loss on sigmoid probabilities, per (image, channel).

    The binary and multilabel form of :func:`cl_dice_loss` (MONAI's ``SoftclDiceLoss`` on
    probabilities).

    .. math::
        U_{n,c} = 1 - \frac{2\, T_{prec} T_{sens}}{T_{prec} + T_{sens}},\qquad p = \sigma(x)

    Args:
        logits: Scores ``(N, C, *spatial)``, 1 to 3 spatial dimensions.
        target: Binary or soft target of the logits' shape.
        iterations, smooth: As :func:`cl_dice_loss`.
        {shared}

    Shape:
        As :func:`binary_dice_loss`.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError, TypeError, ValueError: As :func:`cl_dice_loss`.

    Note:
        As :func:`cl_dice_loss`.

    References:
        Shit et al., CVPR 2021. https://arxiv.org/abs/2003.07311

    Examples:
        >>> import torch
        >>> from lossforge.functional import binary_cl_dice_loss
        >>> target = torch.zeros(1, 1, 5, 5)
        >>> target[:, :, 2, :] = 1.0
        >>> binary_cl_dice_loss(torch.where(target > 0, 4.0, -4.0), target)
        tensor(0.0076)
    """
    return _cl_dice(logits, target, binary=True, loss="binary_cl_dice_loss", iterations=iterations,
                    smooth=smooth, per_image=per_image, class_weight=class_weight, classes=classes,
                    skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist,
                    process_group=process_group, reduction=reduction, sample_weight=sample_weight, mask=mask)


class JaccardLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.jaccard_loss`.

    Args:
        smooth_nr, smooth_dr, per_image, class_weight, classes, skip_empty, ignore_index,
        sync_dist, process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = jaccard_loss
    validate = functools.partial(_check_dice_args, loss="jaccard_loss")

    def __init__(self, *, smooth_nr: float = 1.0, smooth_dr: float = 1.0, per_image: bool = True,
                 class_weight: Tensor | None = None, classes: Sequence[int] | None = None,
                 skip_empty: bool = False, ignore_index: int | None = -100, sync_dist: bool = False,
                 process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, smooth_nr=smooth_nr, smooth_dr=smooth_dr, per_image=per_image,
                         class_weight=class_weight, classes=classes, skip_empty=skip_empty,
                         ignore_index=ignore_index, sync_dist=sync_dist, process_group=process_group)


class BinaryJaccardLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.binary_jaccard_loss`.

    Args:
        smooth_nr, smooth_dr, per_image, class_weight, classes, skip_empty, ignore_index,
        sync_dist, process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = binary_jaccard_loss
    validate = functools.partial(_check_dice_args, loss="binary_jaccard_loss")

    def __init__(self, *, smooth_nr: float = 1.0, smooth_dr: float = 1.0, per_image: bool = True,
                 class_weight: Tensor | None = None, classes: Sequence[int] | None = None,
                 skip_empty: bool = False, ignore_index: int | None = None, sync_dist: bool = False,
                 process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, smooth_nr=smooth_nr, smooth_dr=smooth_dr, per_image=per_image,
                         class_weight=class_weight, classes=classes, skip_empty=skip_empty,
                         ignore_index=ignore_index, sync_dist=sync_dist, process_group=process_group)


class TverskyLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.tversky_loss`.

    Args:
        alpha, beta, smooth_nr, smooth_dr, per_image, class_weight, classes, skip_empty,
        ignore_index, sync_dist, process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = tversky_loss
    validate = functools.partial(_check_tversky_args, loss="tversky_loss")

    def __init__(self, *, alpha: float = 0.5, beta: float = 0.5, smooth_nr: float = 1.0,
                 smooth_dr: float = 1.0, per_image: bool = True, class_weight: Tensor | None = None,
                 classes: Sequence[int] | None = None, skip_empty: bool = False, ignore_index: int | None = -100,
                 sync_dist: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, alpha=alpha, beta=beta, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                         per_image=per_image, class_weight=class_weight, classes=classes, skip_empty=skip_empty,
                         ignore_index=ignore_index, sync_dist=sync_dist, process_group=process_group)


class BinaryTverskyLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.binary_tversky_loss`.

    Args:
        alpha, beta, smooth_nr, smooth_dr, per_image, class_weight, classes, skip_empty,
        ignore_index, sync_dist, process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = binary_tversky_loss
    validate = functools.partial(_check_tversky_args, loss="binary_tversky_loss")

    def __init__(self, *, alpha: float = 0.5, beta: float = 0.5, smooth_nr: float = 1.0,
                 smooth_dr: float = 1.0, per_image: bool = True, class_weight: Tensor | None = None,
                 classes: Sequence[int] | None = None, skip_empty: bool = False, ignore_index: int | None = None,
                 sync_dist: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, alpha=alpha, beta=beta, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                         per_image=per_image, class_weight=class_weight, classes=classes, skip_empty=skip_empty,
                         ignore_index=ignore_index, sync_dist=sync_dist, process_group=process_group)


class FocalTverskyLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.focal_tversky_loss`.

    Args:
        alpha, beta, gamma, smooth_nr, smooth_dr, per_image, class_weight, classes, skip_empty,
        ignore_index, sync_dist, process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = focal_tversky_loss
    validate = functools.partial(_check_focal_tversky_args, loss="focal_tversky_loss")

    def __init__(self, *, alpha: float = 0.7, beta: float = 0.3, gamma: float = 4.0 / 3.0,
                 smooth_nr: float = 1.0, smooth_dr: float = 1.0, per_image: bool = True,
                 class_weight: Tensor | None = None, classes: Sequence[int] | None = None,
                 skip_empty: bool = False, ignore_index: int | None = -100, sync_dist: bool = False,
                 process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, alpha=alpha, beta=beta, gamma=gamma, smooth_nr=smooth_nr,
                         smooth_dr=smooth_dr, per_image=per_image, class_weight=class_weight, classes=classes,
                         skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist,
                         process_group=process_group)


class BinaryFocalTverskyLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.binary_focal_tversky_loss`.

    Args:
        alpha, beta, gamma, smooth_nr, smooth_dr, per_image, class_weight, classes, skip_empty,
        ignore_index, sync_dist, process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = binary_focal_tversky_loss
    validate = functools.partial(_check_focal_tversky_args, loss="binary_focal_tversky_loss")

    def __init__(self, *, alpha: float = 0.7, beta: float = 0.3, gamma: float = 4.0 / 3.0,
                 smooth_nr: float = 1.0, smooth_dr: float = 1.0, per_image: bool = True,
                 class_weight: Tensor | None = None, classes: Sequence[int] | None = None,
                 skip_empty: bool = False, ignore_index: int | None = None, sync_dist: bool = False,
                 process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, alpha=alpha, beta=beta, gamma=gamma, smooth_nr=smooth_nr,
                         smooth_dr=smooth_dr, per_image=per_image, class_weight=class_weight, classes=classes,
                         skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist,
                         process_group=process_group)


class GeneralizedDiceLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.generalized_dice_loss`.

    Args:
        weight_type, smooth_nr, smooth_dr, per_image, class_weight, classes, skip_empty,
        ignore_index, sync_dist, process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = generalized_dice_loss
    validate = functools.partial(_check_generalized_dice_args, loss="generalized_dice_loss")

    def __init__(self, *, weight_type: str = "square", smooth_nr: float = 1.0, smooth_dr: float = 1.0,
                 per_image: bool = True, class_weight: Tensor | None = None,
                 classes: Sequence[int] | None = None, skip_empty: bool = False, ignore_index: int | None = -100,
                 sync_dist: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, weight_type=weight_type, smooth_nr=smooth_nr, smooth_dr=smooth_dr,
                         per_image=per_image, class_weight=class_weight, classes=classes, skip_empty=skip_empty,
                         ignore_index=ignore_index, sync_dist=sync_dist, process_group=process_group)


class MCCLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.mcc_loss`.

    Args:
        smooth, per_image, class_weight, classes, skip_empty, ignore_index, sync_dist,
        process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = mcc_loss
    validate = functools.partial(_check_mcc_args, loss="mcc_loss")

    def __init__(self, *, smooth: float = 1.0, per_image: bool = True, class_weight: Tensor | None = None,
                 classes: Sequence[int] | None = None, skip_empty: bool = False, ignore_index: int | None = -100,
                 sync_dist: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, smooth=smooth, per_image=per_image, class_weight=class_weight,
                         classes=classes, skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist,
                         process_group=process_group)


class BinaryMCCLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.binary_mcc_loss`.

    Args:
        smooth, per_image, class_weight, classes, skip_empty, ignore_index, sync_dist,
        process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = binary_mcc_loss
    validate = functools.partial(_check_mcc_args, loss="binary_mcc_loss")

    def __init__(self, *, smooth: float = 1.0, per_image: bool = True, class_weight: Tensor | None = None,
                 classes: Sequence[int] | None = None, skip_empty: bool = False, ignore_index: int | None = None,
                 sync_dist: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, smooth=smooth, per_image=per_image, class_weight=class_weight,
                         classes=classes, skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist,
                         process_group=process_group)


class LovaszSoftmaxLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.lovasz_softmax_loss`.

    Args:
        per_image, class_weight, classes, skip_empty, ignore_index, sync_dist, process_group,
        reduction: As the function's (``class_weight`` is a buffer).
    """

    function = lovasz_softmax_loss
    validate = functools.partial(_check_map_args, loss="lovasz_softmax_loss")

    def __init__(self, *, per_image: bool = True, class_weight: Tensor | None = None,
                 classes: Sequence[int] | None = None, skip_empty: bool = False, ignore_index: int | None = -100,
                 sync_dist: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, per_image=per_image, class_weight=class_weight, classes=classes,
                         skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist,
                         process_group=process_group)


class LovaszHingeLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.lovasz_hinge_loss`.

    Args:
        per_image, class_weight, classes, skip_empty, ignore_index, sync_dist, process_group,
        reduction: As the function's (``class_weight`` is a buffer).
    """

    function = lovasz_hinge_loss
    validate = functools.partial(_check_map_args, loss="lovasz_hinge_loss")

    def __init__(self, *, per_image: bool = True, class_weight: Tensor | None = None,
                 classes: Sequence[int] | None = None, skip_empty: bool = False, ignore_index: int | None = None,
                 sync_dist: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, per_image=per_image, class_weight=class_weight, classes=classes,
                         skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist,
                         process_group=process_group)


class BoundaryLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.boundary_loss`.

    Args:
        per_image, class_weight, classes, skip_empty, ignore_index, sync_dist, process_group,
        reduction: As the function's (``class_weight`` is a buffer).
    """

    function = boundary_loss
    validate = functools.partial(_check_map_args, loss="boundary_loss")

    def __init__(self, *, per_image: bool = True, class_weight: Tensor | None = None,
                 classes: Sequence[int] | None = None, skip_empty: bool = False, ignore_index: int | None = -100,
                 sync_dist: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, per_image=per_image, class_weight=class_weight, classes=classes,
                         skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist,
                         process_group=process_group)


class BinaryBoundaryLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.binary_boundary_loss`.

    Args:
        per_image, class_weight, classes, skip_empty, ignore_index, sync_dist, process_group,
        reduction: As the function's (``class_weight`` is a buffer).
    """

    function = binary_boundary_loss
    validate = functools.partial(_check_map_args, loss="binary_boundary_loss")

    def __init__(self, *, per_image: bool = True, class_weight: Tensor | None = None,
                 classes: Sequence[int] | None = None, skip_empty: bool = False, ignore_index: int | None = None,
                 sync_dist: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, per_image=per_image, class_weight=class_weight, classes=classes,
                         skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist,
                         process_group=process_group)


class HausdorffDTLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.hausdorff_dt_loss`.

    Args:
        alpha, per_image, class_weight, classes, skip_empty, ignore_index, sync_dist,
        process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = hausdorff_dt_loss
    validate = functools.partial(_check_hausdorff_args, loss="hausdorff_dt_loss")

    def __init__(self, *, alpha: float = 2.0, per_image: bool = True, class_weight: Tensor | None = None,
                 classes: Sequence[int] | None = None, skip_empty: bool = False, ignore_index: int | None = -100,
                 sync_dist: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, alpha=alpha, per_image=per_image, class_weight=class_weight,
                         classes=classes, skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist,
                         process_group=process_group)


class BinaryHausdorffDTLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.binary_hausdorff_dt_loss`.

    Args:
        alpha, per_image, class_weight, classes, skip_empty, ignore_index, sync_dist,
        process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = binary_hausdorff_dt_loss
    validate = functools.partial(_check_hausdorff_args, loss="binary_hausdorff_dt_loss")

    def __init__(self, *, alpha: float = 2.0, per_image: bool = True, class_weight: Tensor | None = None,
                 classes: Sequence[int] | None = None, skip_empty: bool = False, ignore_index: int | None = None,
                 sync_dist: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, alpha=alpha, per_image=per_image, class_weight=class_weight,
                         classes=classes, skip_empty=skip_empty, ignore_index=ignore_index, sync_dist=sync_dist,
                         process_group=process_group)


class ClDiceLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.cl_dice_loss`.

    Args:
        iterations, smooth, per_image, class_weight, classes, skip_empty, ignore_index, sync_dist,
        process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = cl_dice_loss
    validate = functools.partial(_check_cl_dice_args, loss="cl_dice_loss")

    def __init__(self, *, iterations: int = 3, smooth: float = 1.0, per_image: bool = True,
                 class_weight: Tensor | None = None, classes: Sequence[int] | None = None,
                 skip_empty: bool = False, ignore_index: int | None = -100, sync_dist: bool = False,
                 process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, iterations=iterations, smooth=smooth, per_image=per_image,
                         class_weight=class_weight, classes=classes, skip_empty=skip_empty,
                         ignore_index=ignore_index, sync_dist=sync_dist, process_group=process_group)


class BinaryClDiceLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.binary_cl_dice_loss`.

    Args:
        iterations, smooth, per_image, class_weight, classes, skip_empty, ignore_index, sync_dist,
        process_group, reduction: As the function's (``class_weight`` is a buffer).
    """

    function = binary_cl_dice_loss
    validate = functools.partial(_check_cl_dice_args, loss="binary_cl_dice_loss")

    def __init__(self, *, iterations: int = 3, smooth: float = 1.0, per_image: bool = True,
                 class_weight: Tensor | None = None, classes: Sequence[int] | None = None,
                 skip_empty: bool = False, ignore_index: int | None = None, sync_dist: bool = False,
                 process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, iterations=iterations, smooth=smooth, per_image=per_image,
                         class_weight=class_weight, classes=classes, skip_empty=skip_empty,
                         ignore_index=ignore_index, sync_dist=sync_dist, process_group=process_group)


# ============================================================================ docs, samples, registration

for _fn in (dice_loss, binary_dice_loss, jaccard_loss, binary_jaccard_loss, tversky_loss, binary_tversky_loss,
            focal_tversky_loss, binary_focal_tversky_loss, generalized_dice_loss, mcc_loss, binary_mcc_loss,
            lovasz_softmax_loss, lovasz_hinge_loss, boundary_loss, binary_boundary_loss, hausdorff_dt_loss,
            binary_hausdorff_dt_loss, cl_dice_loss, binary_cl_dice_loss):
    _fn.__doc__ = (_fn.__doc__ or "").replace("{shared}", _SHARED_ARGS)


def _index_samples(dtype: torch.dtype, device: torch.device | str, *, spatial: bool = True) -> list[Sample]:
    """Logits ``(N, C, *)`` with class indices: plain first; 3D; subset; soft labels; ignored; weights; empty."""
    g = generator(0)
    logits = randn(2, 3, 4, 5, gen=g, dtype=dtype, device=device, scale=2.0)
    target = randint(3, 2, 4, 5, gen=g, device=device)
    logits3 = randn(2, 3, 3, 4, 2, gen=g, dtype=dtype, device=device)
    target3 = randint(3, 2, 3, 4, 2, gen=g, device=device)
    soft = torch.softmax(randn(2, 3, 4, 5, gen=g, dtype=torch.float64, device=device), 1).to(dtype)
    ignored = target.clone()
    ignored[:, ::2, 1] = -100
    absent = target.clone()
    absent[0][absent[0] == 2] = 1  # class 2 absent from image 0
    cw = rand(3, gen=g, dtype=torch.float32, device=device, low=0.5, high=2.0)
    samples = [
        Sample((logits, target), name="(N, C, H, W)"),
        Sample((logits3, target3), name="(N, C, D, H, W)"),
        Sample((logits, target), {"classes": [1, 2]}, name="classes"),
        Sample((logits, soft), {"ignore_index": None}, name="soft labels"),
        Sample((logits, ignored), {"ignore_index": -100}, name="ignored", plain=False),
        Sample((logits, target), {"class_weight": cw}, name="class_weight", plain=False),
        Sample((logits, absent), {"skip_empty": True}, name="skip_empty", plain=False),
    ]
    if not spatial:
        samples.insert(2, Sample((logits[..., 0, 0], target[..., 0, 0]), name="(N, C)"))
    return samples


def _binary_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    """Logits ``(N, C, *)`` with a same-shape target: plain first; 3D; soft; ignored; weights; empty."""
    g = generator(1)
    logits = randn(2, 2, 4, 5, gen=g, dtype=dtype, device=device, scale=2.0)
    target = (rand(2, 2, 4, 5, gen=g, dtype=torch.float64, device=device) > 0.5).to(dtype)
    logits3 = randn(2, 1, 3, 4, 2, gen=g, dtype=dtype, device=device)
    target3 = (rand(2, 1, 3, 4, 2, gen=g, dtype=torch.float64, device=device) > 0.5).to(dtype)
    soft = rand(2, 2, 4, 5, gen=g, dtype=dtype, device=device)
    ignored = target.clone()
    ignored[:, :, ::2, 1] = 255
    empty = target.clone()
    empty[0, 1] = 0
    cw = rand(2, gen=g, dtype=torch.float32, device=device, low=0.5, high=2.0)
    return [
        Sample((logits, target), name="(N, C, H, W)"),
        Sample((logits3, target3), name="(N, 1, D, H, W)"),
        Sample((logits, soft), name="soft labels"),
        Sample((logits, target > 0.5), name="bool target"),
        Sample((logits, ignored), {"ignore_index": 255}, name="ignored", plain=False),
        Sample((logits, target), {"class_weight": cw}, name="class_weight", plain=False),
        Sample((logits, empty), {"skip_empty": True}, name="skip_empty", plain=False),
    ]


def _index_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(2)
    target = randint(3, 2, 4, 5, gen=g, device=device)
    perfect = torch.nn.functional.one_hot(target, 3).movedim(-1, 1).to(dtype) * 2e4 - 1e4
    wrong = -perfect
    return [Sample((perfect, target), name="perfect, logits 1e4"), Sample((wrong, target), name="wrong, logits 1e4")]


def _binary_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(3)
    target = (rand(2, 2, 4, 5, gen=g, dtype=torch.float64, device=device) > 0.5).to(dtype)
    perfect = target * 2e4 - 1e4
    return [Sample((perfect, target), name="perfect, logits 1e4"), Sample((-perfect, target), name="wrong")]


def _index_errors(loss: str, *, spatial: bool = True, extra: list[ErrorSample] | None = None) -> list[ErrorSample]:
    x = torch.randn(2, 3, 4, 4)
    t = torch.randint(0, 3, (2, 4, 4))
    return [
        ErrorSample((x, t.float()), {}, ValueError, rf"{loss}: target must have the shape of logits"),
        ErrorSample((x, t.to(torch.int32)[:, :3]), {}, ValueError, rf"{loss}: target must have shape \(N, \*\)"),
        ErrorSample((x.long(), t), {}, TypeError, rf"{loss}: logits must be a floating-point tensor"),
        ErrorSample((x[:, :1], t), {}, ValueError, rf"{loss}: logits must have at least 2 classes"),
        ErrorSample((x, t), {"class_weight": torch.ones(2)}, ValueError,
                    r"class_weight must have shape \(C,\) = \(3,\)"),
        ErrorSample((x, t), {"classes": [0, 3]}, ValueError, rf"{loss}: classes must hold classes in \[0, 2\]"),
        ErrorSample((x, t), {"classes": [1, 1]}, ValueError, "classes must not repeat a class"),
        ErrorSample((x, t), {"per_image": "yes"}, TypeError, rf"{loss}: per_image must be a bool"),
        ErrorSample((x, t), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((x, t), {"weight": torch.ones(3)}, TypeError, r"Hint: use sample_weight=.*class_weight="),
        ErrorSample((x, t + 5), {}, ValueError, rf"{loss}: target must hold class indices in \[0, 2\]"),
        ErrorSample((x, torch.softmax(x, 1)), {"ignore_index": 255}, ValueError,
                    "ignore_index is not supported with class-probability targets"),
        *([ErrorSample((x[..., 0, 0], t[..., 0, 0]), {}, ValueError, "at least one spatial dimension")]
          if spatial else []),
        ErrorSample((), {"classes": "all"}, TypeError, "classes must be a sequence", at_construction=True),
        *(extra or []),
    ]


def _binary_errors(loss: str, *, spatial: bool = True, extra: list[ErrorSample] | None = None) -> list[ErrorSample]:
    x = torch.randn(2, 2, 4, 4)
    t = (torch.rand(2, 2, 4, 4) > 0.5).float()
    return [
        ErrorSample((x, t.long()), {}, TypeError, rf"{loss}: target must be a floating-point or bool tensor"),
        ErrorSample((x, t[:, :1]), {}, ValueError, rf"{loss}: target must have the shape of logits"),
        ErrorSample((x.long(), t), {}, TypeError, rf"{loss}: logits must be a floating-point tensor"),
        ErrorSample((x, t * 3), {}, ValueError, rf"{loss}: target must hold probabilities in \[0, 1\]"),
        ErrorSample((x, t), {"class_weight": torch.ones(3)}, ValueError,
                    r"class_weight must have shape \(C,\) = \(2,\)"),
        ErrorSample((x, t), {"classes": [2]}, ValueError, rf"{loss}: classes must hold classes in \[0, 1\]"),
        ErrorSample((x, t), {"skip_empty": 1}, TypeError, rf"{loss}: skip_empty must be a bool"),
        ErrorSample((x, t), {"ignore_index": 0.5}, TypeError, rf"{loss}: ignore_index must be an int or None"),
        ErrorSample((x, t), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((x, t), {"weight": torch.ones(2)}, TypeError, r"Hint: use sample_weight=.*class_weight="),
        *([ErrorSample((x[..., 0, 0], t[..., 0, 0]), {}, ValueError, "at least one spatial dimension")]
          if spatial else []),
        ErrorSample((), {"sync_dist": "no"}, TypeError, "sync_dist must be a bool", at_construction=True),
        *(extra or []),
    ]


def _smooth_errors(loss: str, x: Tensor, t: Tensor, *names: str) -> list[ErrorSample]:
    out = []
    for name in names:
        out.append(ErrorSample((x, t), {name: -1.0}, ValueError, rf"{loss}: {name} must be >= 0, got -1.0"))
        out.append(ErrorSample((), {name: -1.0}, ValueError, rf"{loss}: {name} must be >= 0", at_construction=True))
    return out


_IX = (torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4)))
_BX = (torch.randn(2, 2, 4, 4), (torch.rand(2, 2, 4, 4) > 0.5).float())
_STATS_UNIT = "(image, class) pair (class with per_image=False)"


def _register(name: str, function: Callable[..., Tensor], module: type[FunctionLoss], *, binary: bool,
              reference: str, extra_errors: Callable[[], list[ErrorSample]] | None = None,
              spatial: bool = False, unit: str = _STATS_UNIT, aliases: tuple[str, ...] = ()) -> None:
    loss = function.__name__
    more = extra_errors or (lambda: [])
    if binary:
        register_loss(
            name=name, function=function, module=module, family=_FAMILY, input_kind="logits",
            target_kind="binary", unit=unit, reference=reference, sample_inputs=_binary_samples,
            error_inputs=lambda: _binary_errors(loss, spatial=spatial, extra=more()),
            extreme_inputs=_binary_extremes, separable=True, differentiable_args=(0,), aliases=aliases)
    else:
        register_loss(
            name=name, function=function, module=module, family=_FAMILY, input_kind="logits",
            target_kind="index", unit=unit, reference=reference,
            sample_inputs=lambda dtype, device: _index_samples(dtype, device, spatial=spatial),
            error_inputs=lambda: _index_errors(loss, spatial=spatial, extra=more()),
            extreme_inputs=_index_extremes, separable=True, differentiable_args=(0,), aliases=aliases)


_VNET = "Milletari et al. 2016, arXiv:1606.04797; Wang & Blaschko 2023 (soft labels), arXiv:2303.16296"
_JML = "Wang & Blaschko, Jaccard Metric Losses, NeurIPS 2023, arXiv:2302.05666"
_TVERSKY = "Salehi et al. 2017, arXiv:1706.05721"
_FTL = "Abraham & Khan 2019, arXiv:1810.07842"
_MCC = "Matthews 1975; Abhishek & Hamarneh 2021, arXiv:2010.13454"
_LOVASZ = "Berman et al., CVPR 2018, arXiv:1705.08790"
_BOUNDARY = "Kervadec et al., MIDL 2019, arXiv:1812.07032"
_HD = "Karimi & Salcudean, IEEE TMI 2020, arXiv:1904.10030"
_CLDICE = "Shit et al., CVPR 2021, arXiv:2003.07311"

_register("dice", dice_loss, DiceLoss, binary=False, reference=_VNET,
          extra_errors=lambda: _smooth_errors("dice_loss", *_IX, "smooth_nr", "smooth_dr"))
_register("binary_dice", binary_dice_loss, BinaryDiceLoss, binary=True, reference=_VNET,
          extra_errors=lambda: _smooth_errors("binary_dice_loss", *_BX, "smooth_nr"))
_register("jaccard", jaccard_loss, JaccardLoss, binary=False, reference=_JML,
          extra_errors=lambda: _smooth_errors("jaccard_loss", *_IX, "smooth_dr"))
_register("binary_jaccard", binary_jaccard_loss, BinaryJaccardLoss, binary=True, reference=_JML,
          extra_errors=lambda: _smooth_errors("binary_jaccard_loss", *_BX, "smooth_nr"))
_register("tversky", tversky_loss, TverskyLoss, binary=False, reference=_TVERSKY,
          extra_errors=lambda: _smooth_errors("tversky_loss", *_IX, "alpha", "beta"))
_register("binary_tversky", binary_tversky_loss, BinaryTverskyLoss, binary=True, reference=_TVERSKY,
          extra_errors=lambda: _smooth_errors("binary_tversky_loss", *_BX, "beta"))
_register("focal_tversky", focal_tversky_loss, FocalTverskyLoss, binary=False, reference=_FTL,
          extra_errors=lambda: [ErrorSample(_IX, {"gamma": 0.0}, ValueError,
                                            r"focal_tversky_loss: gamma must be > 0, got 0.0")])
_register("binary_focal_tversky", binary_focal_tversky_loss, BinaryFocalTverskyLoss, binary=True, reference=_FTL,
          extra_errors=lambda: [ErrorSample((), {"gamma": -1.0}, ValueError, "gamma must be > 0",
                                            at_construction=True)])
_register("generalized_dice", generalized_dice_loss, GeneralizedDiceLoss, binary=False,
          reference="Sudre et al., DLMIA 2017, arXiv:1707.03237", unit="image (the batch with per_image=False)",
          extra_errors=lambda: [ErrorSample(_IX, {"weight_type": "squre"}, ValueError, r"Did you mean 'square'")])
_register("mcc", mcc_loss, MCCLoss, binary=False, reference=_MCC,
          extra_errors=lambda: _smooth_errors("mcc_loss", *_IX, "smooth"))
_register("binary_mcc", binary_mcc_loss, BinaryMCCLoss, binary=True, reference=_MCC,
          extra_errors=lambda: _smooth_errors("binary_mcc_loss", *_BX, "smooth"))
_register("lovasz_softmax", lovasz_softmax_loss, LovaszSoftmaxLoss, binary=False, reference=_LOVASZ)
_register("lovasz_hinge", lovasz_hinge_loss, LovaszHingeLoss, binary=True, reference=_LOVASZ)
_register("boundary", boundary_loss, BoundaryLoss, binary=False, reference=_BOUNDARY, spatial=True)
_register("binary_boundary", binary_boundary_loss, BinaryBoundaryLoss, binary=True, reference=_BOUNDARY,
          spatial=True)
_register("hausdorff_dt", hausdorff_dt_loss, HausdorffDTLoss, binary=False, reference=_HD, spatial=True,
          extra_errors=lambda: [ErrorSample(_IX, {"alpha": 0.0}, ValueError, "hausdorff_dt_loss: alpha must be > 0")])
_register("binary_hausdorff_dt", binary_hausdorff_dt_loss, BinaryHausdorffDTLoss, binary=True, reference=_HD,
          spatial=True)
_register("cl_dice", cl_dice_loss, ClDiceLoss, binary=False, reference=_CLDICE, spatial=True,
          extra_errors=lambda: [ErrorSample(_IX, {"iterations": -1}, ValueError,
                                            r"cl_dice_loss: iterations must be an int >= 0, got -1")])
_register("binary_cl_dice", binary_cl_dice_loss, BinaryClDiceLoss, binary=True, reference=_CLDICE,
          spatial=True)
