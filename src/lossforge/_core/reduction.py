"""The one reduction mechanism (CONVENTIONS §2).

Every loss computes its unreduced loss ``U`` and hands it to :func:`reduce_loss`,
which applies ``sample_weight``, ``mask``, ``ignore_index`` (as ``keep``) and
gathered class weights, then reduces:

- ``"none"`` -> ``U * w`` (masked and ignored units are exactly 0),
- ``"sum"``  -> ``sum(U * w)``,
- ``"mean"`` -> ``sum(U * w) / sum(w)``; ``0.0`` connected to the graph (zero,
  finite gradients) when nothing is left to average.

where ``w = sample_weight * class_weight[target] * mask * keep`` (each factor 1 when absent).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor

from .errors import ShapeError, did_you_mean, message

__all__ = ["Reduction", "REDUCTIONS", "check_reduction", "reduce_loss", "reduce_total", "ignore_index_mask"]

Reduction = Literal["none", "mean", "sum"]
REDUCTIONS: tuple[str, ...] = get_args(Reduction)


_REDUCTION_ALIASES = {"avg": "mean", "average": "mean", "elementwise_mean": "mean", "batchmean": "mean",
                      "total": "sum", "sum_all": "sum", "None": "none", "no": "none"}


def check_reduction(reduction: object, loss: str = "loss") -> None:
    """``reduction`` must be one of ``'none'``, ``'mean'``, ``'sum'``."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        alias = _REDUCTION_ALIASES.get(str(reduction))
        suggestion = f" Did you mean {alias!r}?" if alias else did_you_mean(reduction, REDUCTIONS)
        raise ValueError(message(loss, "reduction", f"must be one of {REDUCTIONS}", repr(reduction)) + suggestion)


def _broadcasts_to(small: tuple[int, ...], big: tuple[int, ...]) -> bool:
    """Whether ``small`` broadcasts to exactly ``big`` (plain Python: also exact under torch.compile)."""
    if len(small) > len(big):
        return False
    return all(s == 1 or s == b for s, b in zip(reversed(small), reversed(big)))


def _unit_factor(t: Tensor | None, shape: torch.Size, argument: str, loss: str, *, boolean: bool) -> None:
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(message(loss, argument, "must be a torch.Tensor or None", type(t).__name__))
    if boolean and t.dtype != torch.bool:
        raise TypeError(message(loss, argument, "must be a bool tensor (True = keep)", f"dtype {t.dtype}",
                                hint=f"pass {argument}.bool()"))
    if not boolean and not t.is_floating_point():
        raise TypeError(message(loss, argument, "must be a floating-point tensor", f"dtype {t.dtype}"))
    if not _broadcasts_to(tuple(t.shape), tuple(shape)):
        raise ShapeError(
            message(loss, argument, f"must broadcast to the unreduced loss shape {tuple(shape)}", tuple(t.shape),
                    hint="see reduction='none' for the loss's unit"),
            expected=tuple(shape),
            actual=tuple(t.shape),
        )


def reduce_total(total: Tensor, count: int, reduction: Reduction) -> Tensor:
    """``"sum"`` or ``"mean"`` of ``count`` units from their sum ``total``, with no weight or mask.

    What :func:`reduce_loss` does when nothing but the reduction applies; the fused elementwise
    kernels, which sum ``U`` block by block without forming it, finish with it too, so both paths
    share one definition (and the empty policy: a mean over no unit divides by 1).
    """
    return total if reduction == "sum" else total / max(count, 1)


def reduce_loss(
    loss: Tensor,
    reduction: Reduction = "mean",
    *,
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
    keep: Tensor | None = None,
    unit_weight: Tensor | None = None,
    mean_weight: Tensor | None = None,
    loss_name: str = "loss",
) -> Tensor:
    """Turn the unreduced loss ``U`` into the result.

    Args:
        loss: The unreduced loss ``U``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        sample_weight: User weights, broadcastable to ``U``.
        mask: User mask, bool, broadcastable to ``U``; ``True`` keeps a unit.
        keep: The loss's own mask (``ignore_index``), bool, broadcastable to ``U``.
        unit_weight: The loss's own per-unit weights (gathered class weights),
            multiplied into ``U`` and counted in the mean's denominator.
        mean_weight: Per-unit weights counted in the mean's denominator only, for a
            loss whose ``U`` already carries its class weights (cross-entropy with
            label smoothing, as torch defines it).
        loss_name: Name used in error messages.
    """
    check_reduction(reduction, loss_name)
    shape = loss.shape
    _unit_factor(sample_weight, shape, "sample_weight", loss_name, boolean=False)
    _unit_factor(mask, shape, "mask", loss_name, boolean=True)
    if sample_weight is None and mask is None and keep is None and unit_weight is None and mean_weight is None:
        if reduction == "none":
            return loss
        return reduce_total(loss.sum(), loss.numel(), reduction)

    def combine(per_unit: Tensor | None) -> Tensor:
        w = loss.new_ones(())
        for factor in (sample_weight, per_unit):
            if factor is not None:
                w = w * factor.to(loss.dtype)
        for flag in (mask, keep):
            if flag is not None:
                w = torch.where(flag, w, w.new_zeros(()))
        return w.expand(shape)

    w = combine(unit_weight)
    weighted = torch.where(w != 0, loss * w, loss.new_zeros(()))  # 0 * inf -> 0, never NaN
    if reduction == "none":
        return weighted
    total = weighted.sum()
    if reduction == "sum":
        return total
    denom = (w if mean_weight is None else combine(mean_weight)).sum()
    return total / torch.where(denom != 0, denom, denom.new_ones(()))


def ignore_index_mask(target: Tensor, ignore_index: int | None) -> tuple[Tensor, Tensor | None]:
    """Return ``(safe_target, keep)``: ignored positions become class 0 and ``keep`` is False there.

    Applied before any gather or one-hot, so an ignored value never indexes anything.
    """
    if ignore_index is None:
        return target, None
    keep = target != ignore_index
    return torch.where(keep, target, target.new_zeros(())), keep
