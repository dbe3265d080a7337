"""A user's loss as the checks see it: :func:`target_for` and the :class:`UserLoss` adapter.

The checks call a loss with tensors positionally and ``reduction``, ``sample_weight``, ``mask`` and
``ignore_index`` by keyword, and read what it accepts from its signature. :class:`UserLoss` makes any
callable look that way: a module's ``forward`` signature is its own, a module that keeps its reduction
in ``self.reduction`` (as torch's losses do) takes ``reduction=`` (applied to a copy), a required
``mask`` or ``sample_weight`` defaults to "keep everything", and float64 calls use a float64 copy of
a module with float32 parameters or buffers.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._core.registry import LossSpec, get_loss, list_losses
from .._core.samples import CALL_KWARGS, Sample
from ._inputs import TASKS, Task, get_task, task_of_spec
from ._target import LOW_PRECISION, CheckTarget

__all__ = ["UserLoss", "as_sample_fn", "registered_spec", "target_for"]

P = inspect.Parameter
DefaultTensors = Callable[[tuple[Any, ...]], tuple[int, ...]]


def _signature(obj: Any) -> inspect.Signature | None:
    """The call signature (a module's ``forward``, whose ``__call__`` takes ``*args, **kwargs``)."""
    try:
        return inspect.signature(obj.forward if isinstance(obj, nn.Module) else obj)
    except (TypeError, ValueError):
        return None


def _display_name(obj: Any) -> str:
    if isinstance(obj, nn.Module):
        return type(obj).__name__
    inner = getattr(obj, "func", obj)  # functools.partial
    return str(getattr(inner, "__qualname__", None) or getattr(inner, "__name__", None) or type(obj).__name__)


class UserLoss:
    """Calls a user's loss (a function or a module instance) the way the checks call every loss.

    Args:
        obj: The loss.
        name: How the checks name it.
        mask_shape: ``args -> shape`` of the all-True ``mask`` (or all-ones ``sample_weight``) passed
            when the loss requires one and the check gives none.
        positional: Names for the tensors of a loss that takes ``*args`` only (so the checks know which
            one is the target).
    """

    def __init__(self, obj: Callable[..., Tensor], *, name: str, mask_shape: DefaultTensors,
                 positional: Sequence[str] = ()) -> None:
        self.obj = obj
        self._positional = tuple(positional)
        self.__name__ = self.__qualname__ = name
        self.__doc__ = getattr(obj, "__doc__", None)
        self._mask_shape = mask_shape
        self._copies: dict[tuple[str | None, bool], nn.Module] = {}
        self.is_module = isinstance(obj, nn.Module)
        sig = _signature(obj)
        params = dict(sig.parameters) if sig is not None else {}
        self.required = tuple(n for n in ("mask", "sample_weight") if n in params
                              and params[n].default is P.empty and params[n].kind not in (P.VAR_POSITIONAL,
                                                                                          P.VAR_KEYWORD))
        self.module_reduction = (self.is_module and "reduction" not in params
                                 and isinstance(getattr(obj, "reduction", None), str))
        if sig is not None:
            self.__signature__ = self._exposed(sig)

    def _exposed(self, sig: inspect.Signature) -> inspect.Signature:
        """The signature the checks read: required masks become optional keywords, a module's
        ``self.reduction`` a ``reduction`` keyword."""
        positional, var_pos, keywords, var_kw = [], [], [], []
        for p in sig.parameters.values():
            if p.name in self.required:
                keywords.append(p.replace(kind=P.KEYWORD_ONLY, default=None))
            elif p.kind == P.VAR_POSITIONAL:
                var_pos.append(p)
            elif p.kind == P.VAR_KEYWORD:
                var_kw.append(p)
            elif p.kind == P.KEYWORD_ONLY:
                keywords.append(p)
            else:
                positional.append(p)
        if self.module_reduction:
            keywords.append(P("reduction", P.KEYWORD_ONLY, default=getattr(self.obj, "reduction", "mean")))
        if not positional and var_pos and self._positional:
            positional = [P(n, P.POSITIONAL_ONLY) for n in self._positional]
        return sig.replace(parameters=[*positional, *var_pos, *keywords, *var_kw])

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        reduction = kwargs.pop("reduction", None) if self.module_reduction else None
        for name in self.required:
            if kwargs.get(name) is None:
                shape = self._mask_shape(args)
                first = next((a for a in args if isinstance(a, Tensor)), None)
                device = first.device if first is not None else torch.device("cpu")
                kwargs[name] = (torch.ones(shape, dtype=torch.bool, device=device) if name == "mask"
                                else torch.ones(shape, device=device))
        return self._callable(args, reduction)(*args, **kwargs)

    def _callable(self, args: Sequence[Any], reduction: str | None) -> Callable[..., Tensor]:
        obj = self.obj
        if not isinstance(obj, nn.Module):
            return obj
        f64 = any(isinstance(a, Tensor) and a.dtype == torch.float64 for a in args)
        state = [*obj.parameters(), *obj.buffers()]
        widen = f64 and any(t.is_floating_point() and t.dtype != torch.float64 for t in state)
        if reduction is None and not widen:
            return obj
        key = (reduction, widen)
        module = self._copies.get(key)
        if module is None:
            module = copy.deepcopy(obj)
            if reduction is not None:
                setattr(module, "reduction", reduction)  # noqa: B010 - a plain attribute, not a submodule
            if widen:
                module.double()
            self._copies[key] = module
        return module

    def with_options(self, **options: Any) -> UserLoss | None:
        """A copy of the module with the given attributes set (``gamma=0.0``), or ``None`` when it lacks one."""
        if not isinstance(self.obj, nn.Module) or not all(hasattr(self.obj, k) for k in options):
            return None
        module = copy.deepcopy(self.obj)
        for k, v in options.items():
            setattr(module, k, v)
        return UserLoss(module, name=self.__name__, mask_shape=self._mask_shape, positional=self._positional)


def registered_spec(obj: Any) -> LossSpec | None:
    """The registry entry ``obj`` names or is (a name, a spec, a registered function or module class).

    Raises:
        ValueError: For a string that is not a registered name.
    """
    if isinstance(obj, LossSpec):
        return obj
    if isinstance(obj, str):
        return get_loss(obj)
    for key in list_losses():
        spec = get_loss(key)
        if obj is spec.function or (spec.module is not None and obj is spec.module):
            return spec
    return None


def _cast(value: Any, dtype: torch.dtype, device: torch.device | str) -> Any:
    if isinstance(value, Tensor):
        if value.is_floating_point():
            return value.detach().to(device=device, dtype=dtype)
        return value.detach().to(device=device)
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(v, dtype, device) for v in value)
    return value


def as_sample_fn(inputs: Any) -> Callable[[torch.dtype, torch.device | str], list[Sample]]:
    """``(dtype, device) -> list[Sample]`` from what a user passes as ``inputs``: a tuple of tensors,
    a :class:`~lossforge.Sample`, a list of samples, or such a function already."""
    if callable(inputs) and not isinstance(inputs, (Tensor, Sample)):
        fn: Callable[[torch.dtype, torch.device | str], list[Sample]] = inputs
        return fn
    if isinstance(inputs, Sample):
        given = [inputs]
    elif isinstance(inputs, (list, tuple)) and inputs and all(isinstance(s, Sample) for s in inputs):
        given = list(inputs)
    elif isinstance(inputs, (list, tuple)) and inputs:
        given = [Sample(tuple(inputs), name="your inputs")]
    else:
        raise TypeError(f"check: inputs must be a tuple of tensors, a Sample, a list of samples or "
                        f"(dtype, device) -> list[Sample], got {type(inputs).__name__}.")

    def sample_inputs(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        return [Sample(_cast(tuple(s.args), dtype, device), _cast_kwargs(s.kwargs, dtype, device), name=s.name,
                       plain=s.plain) for s in given]

    return sample_inputs


def _cast_kwargs(kwargs: dict[str, Any], dtype: torch.dtype, device: torch.device | str) -> dict[str, Any]:
    return {k: _cast(v, dtype, device) for k, v in kwargs.items()}


def _fallback_mask_shape(args: tuple[Any, ...]) -> tuple[int, ...]:
    tensors = [a for a in args if isinstance(a, Tensor)]
    if len(tensors) >= 2:
        return tuple(tensors[1].shape)
    return tuple(tensors[0].shape[:1]) if tensors else ()


def _instantiate(cls: type) -> nn.Module:
    try:
        module = cls()
    except Exception as exc:
        raise ValueError(f"check: could not instantiate {cls.__name__} with its defaults: {type(exc).__name__}: "
                         f"{exc}. Hint: pass an instance.") from None
    if not isinstance(module, nn.Module):
        raise TypeError(f"check: a class must be an nn.Module subclass, got {cls.__name__}.")
    return module


def _spec_samples(spec: LossSpec, module: nn.Module) -> Callable[[torch.dtype, torch.device | str], list[Sample]]:
    """The registered samples an instance can be called with (those whose keywords its ``forward`` takes)."""
    sig = _signature(module)
    accepted = set(CALL_KWARGS) | (set(sig.parameters) if sig is not None else set())

    def sample_inputs(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        return [s for s in spec.sample_inputs(dtype, device) if set(s.kwargs) <= accepted]

    return sample_inputs


def target_for(obj: Any, *, task: str | None = None, inputs: Any = None, name: str | None = None,
               separable: bool | None = None,
               low_precision_dtypes: Sequence[torch.dtype] | None = None) -> CheckTarget:
    """The :class:`CheckTarget` for any loss (see :meth:`CheckTarget.from_callable`)."""
    dtypes = tuple(low_precision_dtypes) if low_precision_dtypes is not None else LOW_PRECISION
    chosen: Task | None = get_task(task) if task is not None else None
    spec = registered_spec(obj)
    if spec is not None:
        target = CheckTarget.from_spec(spec)
        changes: dict[str, Any] = {"low_precision_dtypes": dtypes}
        if inputs is not None:
            changes["sample_inputs"] = as_sample_fn(inputs)
            changes["extreme_inputs"] = None
        if chosen is not None:
            changes["task"] = chosen.name
        if separable is not None:
            changes["separable"] = separable
        if name is not None:
            changes["name"] = name
        return _replace(target, changes)
    if isinstance(obj, type):
        obj = _instantiate(obj)
    if not callable(obj):
        raise TypeError(f"check: loss must be callable (a function or an nn.Module), got {type(obj).__name__}.")
    shown = name or _display_name(obj)
    own = registered_spec(type(obj)) if isinstance(obj, nn.Module) else None
    positional = _positional_names(own.function) if own is not None else ("input", "target")
    if own is not None and chosen is None and inputs is None and "module_for_sample" not in own.extra:
        mask_shape = _fallback_mask_shape
        return CheckTarget(
            name=shown, function=UserLoss(obj, name=shown, mask_shape=mask_shape, positional=positional),
            sample_inputs=_spec_samples(own, obj), separable=own.separable if separable is None else separable,
            differentiable_args=own.differentiable_args, input_kind=own.input_kind, target_kind=own.target_kind,
            unit=own.unit, reference=own.reference, exact_gradient=bool(own.extra.get("exact_gradient", True)),
            batch_dim=int(own.extra.get("batch_dim", 0)), task=task_of_spec(own), conventions=False,
            instance=obj, unit_shape=mask_shape, low_precision_dtypes=dtypes,
        )
    if chosen is None and inputs is None:
        raise ValueError(f"check: {shown} is not a registered loss, so it needs task= (one of "
                         f"{', '.join(TASKS)}) or inputs= (its positional tensors).")
    shape_of: DefaultTensors = chosen.mask_shape if chosen is not None else _fallback_mask_shape
    if chosen is not None:
        kinds = (chosen.input_kind, chosen.target_kind, chosen.differentiable_args)
        claim = chosen.separable
    else:
        kinds = _inferred_kinds(as_sample_fn(inputs))
        claim = False
    return CheckTarget(
        name=shown, function=UserLoss(obj, name=shown, mask_shape=shape_of, positional=positional),
        sample_inputs=chosen.samples if inputs is None and chosen is not None else as_sample_fn(inputs),
        separable=claim if separable is None else separable, unit="element" if claim else "batch",
        reference=None, task=chosen.name if chosen is not None else None, conventions=False,
        instance=obj if isinstance(obj, nn.Module) else None, unit_shape=shape_of, low_precision_dtypes=dtypes,
        input_kind=kinds[0], target_kind=kinds[1], differentiable_args=kinds[2],
    )


def _positional_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    sig = _signature(fn)
    if sig is None:
        return ()
    return tuple(p.name for p in sig.parameters.values() if p.kind == P.POSITIONAL_ONLY)


def _inferred_kinds(sample_inputs: Callable[[torch.dtype, torch.device | str], list[Sample]],
                    ) -> tuple[str, str, tuple[int, ...] | None]:
    """Input and target kinds guessed from the user's own tensors (an integer target: class indices)."""
    samples = sample_inputs(torch.float32, "cpu")
    tensors = [a for a in samples[0].args if isinstance(a, Tensor)] if samples else []
    target_kind = "real"
    if len(tensors) >= 2 and not tensors[1].is_floating_point() and tensors[1].dtype != torch.bool:
        target_kind = "index"
    elif len(tensors) < 2:
        target_kind = "none"
    return "real", target_kind, None


def _replace(target: CheckTarget, changes: dict[str, Any]) -> CheckTarget:
    return dataclasses.replace(target, **changes)
