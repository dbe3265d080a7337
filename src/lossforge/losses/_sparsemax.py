"""The sparsemax loss: the Fenchel-Young loss of sparsemax, a sparse alternative to softmax cross-entropy."""

from __future__ import annotations

import torch
from torch import Tensor

from .._core.base import FunctionLoss, loss_function
from .._core.reduction import Reduction, check_reduction
from .._core.registry import register_loss
from ._classification import _index_errors, _index_extremes, _index_samples, _prepare_index, _reduce_index

__all__ = ["sparsemax_loss", "SparsemaxLoss"]


def _threshold(z: Tensor) -> Tensor:
    """Sparsemax's threshold :math:`\\tau(z)` along the last dimension (keepdim).

    Sorted descending, the support is the largest prefix ``k`` with ``1 + k z_(k) > sum_{j<=k} z_(j)``
    and :math:`\\tau = (\\sum_{j \\le k} z_{(j)} - 1) / k`; autograd through the sort and the
    gather gives :math:`\\partial\\tau/\\partial z_j = [j \\in S] / |S|`.
    """
    ranked = torch.sort(z, dim=-1, descending=True).values
    cumulative = ranked.cumsum(-1)
    k = torch.arange(1, z.shape[-1] + 1, device=z.device, dtype=z.dtype)
    size = (1 + k * ranked > cumulative).sum(-1, keepdim=True).clamp_min(1)  # the top entry is in (NaN: not)
    return (cumulative.gather(-1, size - 1) - 1) / size.to(z.dtype)


@loss_function
def sparsemax_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    class_weight: Tensor | None = None,
    ignore_index: int | None = -100,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Sparsemax loss: the classification loss whose prediction is sparsemax, which gives exact zeros.

    Sparsemax projects the scores onto the probability simplex,
    :math:`p = \max(z - \tau(z), 0)`, so that unlikely classes get probability exactly 0; this
    loss is to sparsemax what cross-entropy is to softmax (its gradient is :math:`p - e_y`).

    .. math::
        U_n = \tfrac12 \sum_{j \in S(z_n)} \big(z_{n,j}^2 - \tau(z_n)^2\big) + \tfrac12 - z_{n,y_n},
        \qquad S(z) = \{j : z_j > \tau(z)\}

    multiplied by the class weight :math:`w_{y_n}` (the mean's denominator, as in cross-entropy).

    Args:
        logits: Unnormalised scores ``(N, C, *)``.
        target: Class indices ``(N, *)`` in ``[0, C)``, or ``ignore_index``.
        class_weight: Per-class weights ``(C,)``.
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
        ValueError: In validation mode, if a class index is out of range.

    Note:
        Computed on scores shifted by their (detached) maximum, which leaves the loss unchanged
        (it is translation invariant) and keeps it exact for scores of any size, as
        :math:`\tfrac12 \sum_j p_j (z_j + \tau) + \tfrac12 - z_y`. Non-negative, and 0 exactly when
        sparsemax puts all its mass on the target. When every target is ignored, ``"mean"``
        returns 0.0 with zero gradients.

    References:
        Martins & Astudillo, *From Softmax to Sparsemax: A Sparse Model of Attention and
        Multi-Label Classification*, ICML 2016. https://arxiv.org/abs/1602.02068

    Examples:
        >>> import torch
        >>> from lossforge.functional import sparsemax_loss
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.2, 0.0, 0.1]])
        >>> sparsemax_loss(logits, torch.tensor([0, 1]), reduction="none")
        tensor([0.0000, 0.4433])
    """
    loss = "sparsemax_loss"
    check_reduction(reduction, loss)
    logits, safe, keep, cw = _prepare_index(logits, target, class_weight, ignore_index, loss)
    z = logits.movedim(1, -1)
    z = z - z.detach().amax(-1, keepdim=True) if z.shape[-1] else z
    tau = _threshold(z) if z.shape[-1] else z.sum(-1, keepdim=True)
    p = torch.clamp_min(z - tau, 0)
    z_target = z.gather(-1, safe.unsqueeze(-1)).squeeze(-1) if z.shape[-1] else z.sum(-1)
    u = 0.5 * (p * (z + tau)).sum(-1) + 0.5 - z_target
    u = u.clamp_min(0)  # >= 0 exactly; rounding can leave -1e-7
    return _reduce_index(u, safe, keep, cw, reduction, sample_weight, mask, loss)


class SparsemaxLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.sparsemax_loss`.

    Args:
        class_weight: Per-class weights ``(C,)`` (a buffer).
        ignore_index: Target value that is left out.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = sparsemax_loss

    def __init__(self, *, class_weight: Tensor | None = None, ignore_index: int | None = -100,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, class_weight=class_weight, ignore_index=ignore_index)


register_loss(
    name="sparsemax", function=sparsemax_loss, module=SparsemaxLoss, family="classification",
    input_kind="logits", target_kind="index", unit="element of (N, *)",
    reference="Martins & Astudillo 2016, From Softmax to Sparsemax, arXiv:1602.02068",
    sample_inputs=_index_samples, extreme_inputs=_index_extremes,
    error_inputs=lambda: _index_errors("sparsemax_loss"),
)
