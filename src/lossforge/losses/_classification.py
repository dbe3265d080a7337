"""Classification losses: logits ``(N, C, *)`` with class indices ``(N, *)``, or binary logits and targets."""

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
    upcast,
)
from .._core.reduction import Reduction, ignore_index_mask, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, rand, randint, randn

__all__ = ["cross_entropy", "CrossEntropyLoss"]


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
        ErrorSample((x, t), {"class_weight": torch.ones(2)}, ValueError, r"class_weight must have shape \(C,\) = \(3,\)"),
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
    return logits, safe, keep, cw


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
        tensor(0.1519)
        >>> cross_entropy(logits, torch.tensor([0, -100]), label_smoothing=0.1)
        tensor(0.3103)
    """
    _check_cross_entropy_args(label_smoothing=label_smoothing)
    logits, safe, keep, cw = _prepare_index(logits, target, class_weight, ignore_index, "cross_entropy")
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
