"""Regression and robust losses: the prediction and the target are real tensors of one shape."""

from __future__ import annotations

import torch
from torch import Tensor

from .._core.base import FunctionLoss, loss_function
from .._core.checks import check_float, check_range, check_same_shape, upcast
from .._core.reduction import Reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, randn

__all__ = ["mse_loss", "MSELoss"]


def _real_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    """Typical (pred, target) pairs: 2-D, 3-D and a scalar."""
    out = []
    for seed, shape in enumerate([(6, 4), (3, 2, 5), ()]):
        g = generator(seed)
        out.append(Sample((randn(*shape, gen=g, dtype=dtype, device=device),
                           randn(*shape, gen=g, dtype=dtype, device=device)), name=f"shape{shape}"))
    return out


def _real_errors(loss: str) -> list[ErrorSample]:
    """Bad inputs shared by every (pred, target) regression loss."""
    x = torch.randn(4, 3)
    return [
        ErrorSample((x, torch.randn(4)), {}, ValueError, rf"{loss}: target must have the shape of pred \(4, 3\)"),
        ErrorSample((torch.randn(4, 1), torch.randn(4)), {}, ValueError, r"got \(4,\).*Hint: pred.squeeze\(-1\)"),
        ErrorSample((x.long(), x), {}, TypeError, rf"{loss}: pred must be a floating-point tensor"),
        ErrorSample((x, x), {"reduction": "avg"}, ValueError, r"reduction must be one of .*Did you mean 'mean'"),
        ErrorSample((x, x), {"weight": torch.ones(4, 3)}, TypeError, r"weight=.*Hint: use sample_weight="),
    ]


def _prepare(pred: Tensor, target: Tensor, loss: str) -> tuple[Tensor, Tensor]:
    """Metadata checks and float32 compute for half inputs."""
    check_float(pred, "pred", loss)
    check_float(target, "target", loss)
    check_same_shape(pred, target, loss)
    return upcast(pred), upcast(target)


@loss_function
def mse_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Mean squared error.

    The Gaussian log-likelihood up to constants: the default for regression
    without outliers.

    .. math::
        U_i = (\hat y_i - y_i)^2

    Args:
        pred: Predictions, any shape.
        target: Targets, the shape of ``pred`` (no broadcasting).
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If either input is not floating point.

    Note:
        Equals ``torch.nn.functional.mse_loss`` for equal shapes; on an empty
        input ``"mean"`` returns 0.0 (torch: NaN).

    References:
        Gauss, *Theoria motus corporum coelestium*, 1809 (least squares).

    Examples:
        >>> import torch
        >>> from lossforge.functional import mse_loss
        >>> mse_loss(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 0.0, 1.0]))
        tensor(4.3333)
    """
    pred, target = _prepare(pred, target, "mse_loss")
    return reduce_loss((pred - target).square(), reduction, sample_weight=sample_weight, mask=mask,
                       loss_name="mse_loss")


class MSELoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.mse_loss`.

    Args:
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = mse_loss

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


register_loss(
    name="mse", function=mse_loss, module=MSELoss, family="regression", input_kind="real",
    target_kind="real", unit="element", reference="Gauss 1809 (least squares); torch.nn.functional.mse_loss",
    sample_inputs=_real_samples, error_inputs=lambda: _real_errors("mse_loss"),
)
