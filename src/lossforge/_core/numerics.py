"""Numerically safe building blocks shared by the loss families."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["safe_pow", "sum_over"]


def safe_pow(x: Tensor, exponent: float) -> Tensor:
    """``x ** exponent`` for ``x >= 0`` and ``exponent > 0``, with a finite gradient at ``x = 0``.

    For ``exponent >= 1`` this is ``pow`` (its gradient at 0 is finite). A fractional power has an
    infinite slope at 0 (a perfectly segmented class, a certain prediction, a zero-width box), so
    there the value is 0 and the gradient is 0 instead of ``inf`` (``inf * 0 = nan`` downstream).

    Examples:
        >>> import torch
        >>> x = torch.tensor([0.0, 0.25], requires_grad=True)
        >>> y = safe_pow(x, 0.5)
        >>> y.sum().backward()
        >>> y.detach(), x.grad
        (tensor([0.0000, 0.5000]), tensor([0., 1.]))
    """
    if exponent >= 1.0:
        return x.pow(exponent)
    ok = x > 0
    return torch.where(ok, torch.where(ok, x, torch.ones_like(x)).pow(exponent), torch.zeros_like(x))


def sum_over(t: Tensor, dims: tuple[int, ...]) -> Tensor:
    """``t`` summed over ``dims``, and ``t`` itself when ``dims`` is empty (``t.sum(())`` sums everything)."""
    return t.sum(dims) if dims else t
