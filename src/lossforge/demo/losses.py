r"""The demo's own loss, written with the lossforge toolkit, and its class weights.

``ConfidencePenaltyLoss`` subclasses :class:`lossforge.Loss`: it writes only the
unreduced loss ``U`` (``elementwise``), and the base class adds ``reduction``,
``sample_weight``, ``mask``, the float32 compute for half inputs, ``repr`` and
composition, so it can be summed with a built-in loss::

    criterion = lf.CrossEntropyLoss(class_weight=w) + 0.1 * ConfidencePenaltyLoss()
    criterion.terms(logits, target)  # {'cross_entropy': ..., 'confidence_penalty': ..., 'total': ...}
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

import lossforge as lf

__all__ = ["ConfidencePenaltyLoss", "balanced_class_weight"]


class ConfidencePenaltyLoss(lf.Loss):
    r"""Confidence penalty: how far each softmax output is from uniform.

    Cross-entropy keeps rewarding ever larger logits on the training set, and a
    re-weighted cross-entropy pushes the rare classes there even harder; the
    penalty pulls the predicted distribution towards uniform, which keeps the
    model's confidence closer to its accuracy (better calibration).

    .. math::
        U_n = \operatorname{KL}(p_n \,\|\, \tfrac1C) = \log C + \sum_c p_{n,c} \log p_{n,c}
            = \log C - H(p_n), \qquad p_n = \operatorname{softmax}(x_n)

    ``U`` lies in ``[0, log C]``: 0 for a uniform output, ``log C`` for a one-hot one.
    Its gradient is that of the negative entropy (Pereyra et al.'s penalty); the
    ``log C`` only makes the value non-negative. It is computed from
    ``log_softmax``, so it is finite for logits of any magnitude.

    The target is not used by the penalty; it is taken, and checked, so the loss
    sits in a sum with cross-entropy, whose terms are all called with the same
    ``(logits, target)``. Its shape must be exactly ``(N, *)`` for logits
    ``(N, C, *)``: a ``(N, 1)`` or ``(1,)`` target, which would broadcast, raises
    :class:`lossforge.ShapeError`.

    Args:
        reduction: ``"none"`` (``U`` per sample), ``"mean"`` or ``"sum"``.

    References:
        Pereyra et al., *Regularizing Neural Networks by Penalizing Confident Output
        Distributions*, ICLR 2017 workshop. https://arxiv.org/abs/1701.06548

    Examples:
        >>> logits = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
        >>> ConfidencePenaltyLoss(reduction="none")(logits, torch.tensor([0, 0]))
        tensor([0.0000, 1.0976])
        >>> ConfidencePenaltyLoss()(logits, torch.tensor([[0], [0]]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lossforge._core.errors.ShapeError: ConfidencePenaltyLoss: target must have shape (N, *) = (2,) ... (2, 1)...
    """

    same_shape = False  # logits (N, C, *) and an index target (N, *): checked in elementwise

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        name = type(self).__name__
        if pred.dim() < 2:
            raise lf.ShapeError(f"{name}: logits must have shape (N, C, *), got {tuple(pred.shape)}.",
                                expected="(N, C, *)", actual=tuple(pred.shape))
        if not isinstance(target, Tensor) or target.is_floating_point() or target.dtype == torch.bool:
            got = f"dtype {target.dtype}" if isinstance(target, Tensor) else type(target).__name__
            raise TypeError(f"{name}: target must be an integer tensor of class indices, got {got}.")
        expected = (pred.shape[0], *pred.shape[2:])
        if tuple(target.shape) != expected:
            hint = " Hint: target.squeeze(1)." if target.dim() == pred.dim() and target.shape[1] == 1 else ""
            raise lf.ShapeError(
                f"{name}: target must have shape (N, *) = {expected} to match logits {tuple(pred.shape)}, "
                f"got {tuple(target.shape)}.{hint}", expected=expected, actual=tuple(target.shape))
        log_p = torch.log_softmax(pred, dim=1)
        return math.log(pred.shape[1]) + (log_p.exp() * log_p).sum(dim=1)


def balanced_class_weight(counts: Tensor | list[int]) -> Tensor:
    r"""Inverse-frequency class weights :math:`w_c = N / (C\, n_c)` from the training counts.

    Every class then carries the same total weight in the loss (scikit-learn's
    ``class_weight="balanced"``). A class without samples gets weight 0.

    Examples:
        >>> balanced_class_weight([90, 10])
        tensor([0.5556, 5.0000])
    """
    n = torch.as_tensor(counts, dtype=torch.float32)
    if n.dim() != 1 or bool((n < 0).any()):
        raise ValueError(f"balanced_class_weight: counts must be a 1-D list of non-negative counts, got {n.tolist()}.")
    total, classes = n.sum(), n.numel()
    return torch.where(n > 0, total / (classes * n.clamp_min(1)), torch.zeros_like(n))
