"""``@elementwise_loss``: a function returning the unreduced loss becomes a full loss."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Any, overload

from torch import Tensor

from .base import FunctionLoss, refuse_unexpected
from .checks import check_float, check_same_shape, upcast
from .errors import message
from .reduction import check_reduction, reduce_loss
from .registry import register_loss
from .samples import ErrorSample, Sample, generator, randint, randn

__all__ = ["elementwise_loss", "default_samples"]


def default_samples(input_kind: str, target_kind: str) -> Callable[[Any, Any], list[Sample]]:
    """Sample inputs for a user loss: ``(4, 5)`` predictions and matching targets."""

    def samples(dtype: Any, device: Any) -> list[Sample]:
        out = []
        for seed, shape in enumerate([(4, 5), (3, 2, 6)]):
            g = generator(seed)
            pred = randn(*shape, gen=g, dtype=dtype, device=device)
            if target_kind == "binary":
                target = randint(2, *shape, gen=g, device=device).to(dtype)
            elif target_kind == "index":
                target = randint(shape[1], shape[0], *shape[2:], gen=g, device=device)
            else:
                target = randn(*shape, gen=g, dtype=dtype, device=device)
            out.append(Sample((pred, target), name=f"shape{shape}"))
        return out

    return samples


def _module_name(name: str) -> str:
    base = re.sub(r"_loss$", "", name)
    return "".join(part[:1].upper() + part[1:] for part in base.split("_") if part) + "Loss"


@overload
def elementwise_loss(fn: Callable[..., Tensor], /) -> Callable[..., Tensor]: ...
@overload
def elementwise_loss(
    fn: None = None, /, *, name: str | None = None, family: str = "custom", same_shape: bool = True,
    input_kind: str = "real", target_kind: str = "real", unit: str = "element", reference: str = "",
    sample_inputs: Callable[..., list[Sample]] | None = None,
    error_inputs: Callable[[], list[ErrorSample]] | None = None, separable: bool = True,
) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]: ...
def elementwise_loss(
    fn: Callable[..., Tensor] | None = None, /, *, name: str | None = None, family: str = "custom",
    same_shape: bool = True, input_kind: str = "real", target_kind: str = "real", unit: str = "element",
    reference: str = "", sample_inputs: Callable[..., list[Sample]] | None = None,
    error_inputs: Callable[[], list[ErrorSample]] | None = None, separable: bool = True,
) -> Any:
    """Turn ``fn(pred, target, *, hyper=...) -> U`` into a complete loss function.

    The result takes ``(pred, target, /, *, <fn's keywords>, reduction="mean",
    sample_weight=None, mask=None)``, checks that ``pred`` is floating point and
    (with ``same_shape=True``) that ``target`` has its shape, computes half
    inputs in float32, and reduces ``U`` with the one reduction mechanism.
    It carries ``.elementwise`` (``fn`` itself) and ``.Module`` (an ``nn.Module``
    class taking the keywords in its constructor). With ``name=``, the loss is
    registered, so specs (``lf.build("name")``), composition and ``lossforge check``
    can use it.

    Examples:
        >>> import torch, lossforge as lf
        >>> @lf.elementwise_loss
        ... def scaled_l1(pred, target, *, scale=1.0):
        ...     return scale * (pred - target).abs()
        >>> float(scaled_l1(torch.tensor([1.0, -1.0]), torch.tensor([0.0, 0.0]), scale=2.0))
        2.0
        >>> scaled_l1.Module(scale=2.0, reduction="sum")
        ScaledL1Loss(scale=2.0, reduction='sum')
    """
    if fn is None:
        return functools.partial(
            elementwise_loss, name=name, family=family, same_shape=same_shape, input_kind=input_kind,
            target_kind=target_kind, unit=unit, reference=reference, sample_inputs=sample_inputs,
            error_inputs=error_inputs, separable=separable,
        )
    loss_name = name or fn.__name__
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if len(params) < 2 or any(p.kind == p.VAR_POSITIONAL for p in params):
        raise TypeError(f"elementwise_loss: {fn.__name__} must take (pred, target, *, hyper=...), "
                        f"got {sig}.")
    hyper = {p.name: p.default for p in params[2:]}
    reserved = {"reduction", "sample_weight", "mask", "weight"} & set(hyper)
    if reserved:
        raise TypeError(f"elementwise_loss: {fn.__name__} must not take {sorted(reserved)}; "
                        f"the decorator adds reduction, sample_weight and mask.")
    accepted = frozenset(hyper) | {"reduction", "sample_weight", "mask"}

    @functools.wraps(fn)
    def loss(pred: Tensor, target: Tensor, /, **kwargs: Any) -> Tensor:
        if not accepted.issuperset(kwargs):
            refuse_unexpected(loss_name, {k: v for k, v in kwargs.items() if k not in accepted}, accepted)
        reduction = kwargs.pop("reduction", "mean")
        sample_weight = kwargs.pop("sample_weight", None)
        mask = kwargs.pop("mask", None)
        check_reduction(reduction, loss_name)
        check_float(pred, "pred", loss_name)
        if same_shape:
            check_same_shape(pred, target, loss_name)
        if isinstance(target, Tensor) and target.is_floating_point():
            target = upcast(target)
        u = fn(upcast(pred), target, **kwargs)
        if not isinstance(u, Tensor):
            raise TypeError(message(loss_name, "the elementwise function's result", "must be a Tensor",
                                    type(u).__name__))
        return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss_name)

    new_params = [
        inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_ONLY, annotation=p.annotation) for p in params[:2]
    ] + [
        inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default, annotation=p.annotation)
        for p in params[2:]
    ] + [
        inspect.Parameter("reduction", inspect.Parameter.KEYWORD_ONLY, default="mean"),
        inspect.Parameter("sample_weight", inspect.Parameter.KEYWORD_ONLY, default=None),
        inspect.Parameter("mask", inspect.Parameter.KEYWORD_ONLY, default=None),
    ]
    loss.__signature__ = sig.replace(parameters=new_params)  # type: ignore[attr-defined]

    def init(self: FunctionLoss, *, reduction: str = "mean", **kwargs: Any) -> None:
        unknown = {k: v for k, v in kwargs.items() if k not in hyper}
        refuse_unexpected(type(self).__name__, unknown, [*hyper, "reduction"])
        FunctionLoss.__init__(self, reduction=reduction, **{**hyper, **kwargs})  # type: ignore[arg-type]

    module = type(
        _module_name(loss_name),
        (FunctionLoss,),
        {
            "function": staticmethod(loss),
            "same_shape": same_shape,
            "term_name": re.sub(r"_loss$", "", loss_name),
            "__init__": init,
            "__doc__": f"Module form of :func:`{fn.__name__}` (made by ``@elementwise_loss``).",
            "__module__": fn.__module__,
        },
    )
    loss.elementwise = fn  # type: ignore[attr-defined]
    loss.Module = module  # type: ignore[attr-defined]
    if name is not None:
        register_loss(
            name=name, function=loss, module=module, family=family, input_kind=input_kind,
            target_kind=target_kind, unit=unit, reference=reference,
            sample_inputs=sample_inputs or default_samples(input_kind, target_kind),
            error_inputs=error_inputs or (lambda: []), separable=separable,
        )
    return loss
