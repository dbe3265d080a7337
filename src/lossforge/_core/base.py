"""The ``Loss`` base class, the catalog's module base, and the keyword guard of every loss function."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from .checks import check_float, check_same_shape, upcast
from .compose import Composable
from .errors import did_you_mean
from .reduction import Reduction, check_reduction, reduce_loss

__all__ = ["Loss", "FunctionLoss", "loss_function", "refuse_unexpected"]

F = TypeVar("F", bound=Callable[..., Tensor])

_WEIGHT_HINT = ("use sample_weight= for per-sample or per-element weights, "
                "or class_weight= for per-class weights")


def refuse_unexpected(loss: str, unexpected: dict[str, Any], accepted: Any) -> None:
    """Raise ``TypeError`` for unknown keywords; ``weight=`` gets a hint (CONVENTIONS §2)."""
    if not unexpected:
        return
    key = next(iter(unexpected))
    if key == "weight":
        raise TypeError(f"{loss}: weight= is not an argument of lossforge losses (torch uses the name for "
                        f"three different things). Hint: {_WEIGHT_HINT}.")
    raise TypeError(f"{loss}: got an unexpected keyword argument {key!r}." + did_you_mean(key, list(accepted)))


def loss_function(fn: F) -> F:
    """Decorate a catalog loss function: unknown keywords (``weight=`` above all) raise a clear ``TypeError``.

    The check is a set difference on the keyword names, pure Python, so it costs
    nothing measurable and holds under ``torch.compile``.
    """
    accepted = frozenset(name for name, p in inspect.signature(fn).parameters.items()
                         if p.kind != inspect.Parameter.POSITIONAL_ONLY)
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Tensor:
        if not accepted.issuperset(kwargs):
            refuse_unexpected(name, {k: v for k, v in kwargs.items() if k not in accepted}, accepted)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Loss(Composable, nn.Module):
    """Base class of every lossforge loss module, and of users' own losses.

    A subclass writes ``elementwise(self, pred, target)`` returning the unreduced
    loss ``U``; the base adds ``reduction``, ``sample_weight``, ``mask``, the shape
    check (prediction and target must match: no silent broadcasting), float32
    compute for half inputs, a ``repr`` and composition (``+``, ``*``).
    Subclasses with other inputs override ``forward`` and end with :func:`reduce_loss`.

    Examples:
        >>> import torch, lossforge as lf
        >>> class LogCosh(lf.Loss):
        ...     def elementwise(self, pred, target):
        ...         d = pred - target
        ...         return d.abs() + torch.nn.functional.softplus(-2 * d.abs()) - 0.6931471805599453
        >>> round(float(LogCosh()(torch.tensor([0.0, 2.0]), torch.tensor([0.0, 0.0]))), 4)
        0.6625
    """

    #: Require ``pred.shape == target.shape`` in the default ``forward``.
    same_shape: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__mro__[: cls.__mro__.index(Loss)]
        defines = any(k in vars(c) for c in own for k in ("elementwise", "forward", "function"))
        if not defines:
            raise TypeError(f"{cls.__name__}: a lossforge.Loss subclass must define elementwise(pred, target) "
                            f"or forward(...), got neither.")

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__()
        check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        """The unreduced loss ``U`` (what ``reduction="none"`` returns)."""
        raise TypeError(f"{type(self).__name__}: elementwise(pred, target) is not defined; "
                        f"override elementwise or forward.")

    def forward(self, pred: Tensor, target: Tensor, *, sample_weight: Tensor | None = None,
                mask: Tensor | None = None, **unexpected: Any) -> Tensor:
        name = type(self).__name__
        refuse_unexpected(name, unexpected, ("sample_weight", "mask"))
        check_float(pred, "pred", name)
        if self.same_shape:
            check_same_shape(pred, target, name)
        if isinstance(target, Tensor) and target.is_floating_point():
            target = upcast(target)
        return reduce_loss(self.elementwise(upcast(pred), target), self.reduction,
                           sample_weight=sample_weight, mask=mask, loss_name=name)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class FunctionLoss(Loss):
    """Module form of a loss function: holds its hyper-parameters and calls it.

    Subclasses set ``function`` (the loss function) and, optionally, ``validate``
    (called with the hyper-parameters at construction, so a bad value fails
    early). Tensor hyper-parameters become buffers (they follow ``.to(device)``
    and ``state_dict``); lists given for them (from a spec string) become tensors.
    """

    function: ClassVar[Callable[..., Tensor]]
    validate: ClassVar[Callable[..., None] | None] = None
    #: Hyper-parameters that are tensors when given (lists are converted).
    tensor_params: ClassVar[tuple[str, ...]] = ("class_weight", "pos_weight")

    def __init__(self, *, reduction: Reduction = "mean", **hparams: Any) -> None:
        super().__init__(reduction=reduction)
        for key in self.tensor_params:
            value = hparams.get(key)
            if isinstance(value, (list, tuple)):
                if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                    raise TypeError(f"{type(self).__name__}: {key} must be a tensor or a list of numbers, "
                                    f"got {value!r}.")
                hparams[key] = torch.tensor(value, dtype=torch.float32)
        validate = type(self).validate
        if validate is not None:
            validate(**hparams)
        self._hparam_names = tuple(hparams)
        for key, value in hparams.items():
            if isinstance(value, Tensor) and not isinstance(value, nn.Parameter):
                self.register_buffer(key, value.detach().clone())
            else:
                setattr(self, key, value)

    def hparams(self) -> dict[str, Any]:
        """The hyper-parameters passed to the function."""
        return {k: getattr(self, k) for k in self._hparam_names}

    def forward(  # type: ignore[override]
        self, *inputs: Any, sample_weight: Tensor | None = None, mask: Tensor | None = None, **unexpected: Any
    ) -> Tensor:
        refuse_unexpected(type(self).__name__, unexpected, ("sample_weight", "mask"))
        return type(self).function(*inputs, **self.hparams(), reduction=self.reduction,
                                   sample_weight=sample_weight, mask=mask)

    def extra_repr(self) -> str:
        parts = []
        for k, v in self.hparams().items():
            shown = f"tensor{tuple(v.shape)}" if isinstance(v, Tensor) and v.numel() > 4 else (
                v.tolist() if isinstance(v, Tensor) else repr(v))
            parts.append(f"{k}={shown}")
        parts.append(f"reduction={self.reduction!r}")
        return ", ".join(parts)

