"""What the checks look at (:class:`CheckTarget`) and what they report (:class:`CheckResult`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from .._core.registry import LossSpec
from .._core.samples import ErrorSample, Sample
from ._inputs import task_of_spec

__all__ = ["KEYWORD_NAMES", "LOW_PRECISION", "CheckResult", "CheckTarget", "ModuleForSample", "Status"]

Status = Literal["passed", "failed", "skipped"]
SampleFn = Callable[[torch.dtype, "torch.device | str"], list[Sample]]
ErrorFn = Callable[[], list[ErrorSample]]
#: ``(sample, **constructor_keywords) -> (module, args, call_kwargs)``.
ModuleForSample = Callable[..., tuple[nn.Module, tuple[Any, ...], dict[str, Any]]]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one loss.

    Attributes:
        name: The check's name (a key of ``CHECKS`` or ``CHECKS_SLOW``).
        status: ``"passed"``, ``"failed"`` or ``"skipped"``.
        detail: One line: what was found, with numbers; for a skip, why.
    """

    name: str
    status: Status
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True unless the check failed (a skip is not a failure)."""
        return self.status != "failed"

    def __str__(self) -> str:
        return f"{self.name}: {self.status}" + (f" ({self.detail})" if self.detail else "")


_TARGET_NAMES = ("target", "targets", "y", "labels", "label")
#: Keywords the checks pass by name, never positionally (even when a user's loss declares them positional).
KEYWORD_NAMES = frozenset({"reduction", "sample_weight", "mask", "ignore_index"})
LOW_PRECISION = (torch.float16, torch.bfloat16)


def _no_errors() -> list[ErrorSample]:
    return []


@dataclass
class CheckTarget:
    """A loss as the checks see it: a callable, its module, its inputs and its promises.

    Everything a check needs is here, so a check never reads the registry; what the
    callable accepts (``reduction``, ``sample_weight``, ``mask``, ``ignore_index``)
    is read from its signature when the target is made.

    Attributes:
        name: How results name the loss (the registry key).
        function: The loss: tensors positionally, everything else by keyword.
        sample_inputs: ``(dtype, device) -> list[Sample]``; the first sample is plain.
        module_factory: ``(**hparams) -> nn.Module`` taking the function's keywords
            (less ``sample_weight`` and ``mask``), or ``None``.
        extreme_inputs: ``(dtype, device) -> list[Sample]`` on which value and gradient
            must be finite, or ``None`` (the checks then build their own).
        error_inputs: ``() -> list[ErrorSample]``.
        separable: Whether the sum over a batch equals the sum over its parts (dim 0).
        differentiable_args: Positions of the inputs gradients are checked for
            (``None``: every floating-point positional tensor).
        input_kind, target_kind, unit: As in :class:`~lossforge.LossSpec`.
        reference: The paper or documentation followed (``None``: not known).
        module_for_sample: ``(sample, **constructor_keywords) -> (module, args, call_kwargs)`` for a
            module that owns some of the function's inputs (class centres, a learnable temperature);
            ``None``: the module is ``module_factory(**sample.module_kwargs())``, called with the
            sample's tensors and its call-time keywords.
        single_backward: ``True`` for a loss whose graph supports one backward only (gradients
            computed in the forward, as chunked LLM losses do): gradients are then checked against
            central differences, one backward per forward, instead of ``torch.autograd.gradcheck``.
        batch_dim: The dimension of the positional tensors that indexes samples (``0``; ``1`` for
            stacked views ``(K, N, ...)``).
        exact_gradient: ``False`` when the gradient is by design not the derivative of the value
            (detached self-paced weights), so finite differences do not apply.
        task: The task whose family battery applies (a key of :data:`~lossforge.verify.TASKS`), or ``None``.
        conventions: Hold the loss to lossforge's own conventions too (signature, docstring, error
            messages, the empty policy's exact 0.0, a float32 result for half inputs). ``False`` for a
            user's loss, which is checked for correctness only.
        instance: The module a user's loss is (its ``state_dict`` is checked), or ``None``.
        unit_shape: ``args -> shape`` of a ``mask`` for a loss that takes one but no ``reduction``.
        low_precision_dtypes: The dtypes compared with float32 (``low_precision``, ``autocast``).
    """

    name: str
    function: Callable[..., Tensor]
    sample_inputs: SampleFn
    module_factory: Callable[..., nn.Module] | None = None
    extreme_inputs: SampleFn | None = None
    error_inputs: ErrorFn = _no_errors
    separable: bool = True
    differentiable_args: tuple[int, ...] | None = None
    input_kind: str = "real"
    target_kind: str = "real"
    unit: str = "element"
    reference: str | None = None
    module_for_sample: ModuleForSample | None = None
    exact_gradient: bool = True
    batch_dim: int = 0
    single_backward: bool = False
    task: str | None = None
    conventions: bool = True
    instance: nn.Module | None = None
    unit_shape: Callable[[tuple[Any, ...]], tuple[int, ...]] | None = None
    low_precision_dtypes: tuple[torch.dtype, ...] = LOW_PRECISION
    signature: inspect.Signature | None = field(init=False, repr=False)
    arg_names: tuple[str, ...] = field(init=False, repr=False)
    keyword_defaults: dict[str, Any] = field(init=False, repr=False)
    accepts_reduction: bool = field(init=False)
    accepts_sample_weight: bool = field(init=False)
    accepts_mask: bool = field(init=False)
    accepts_ignore_index: bool = field(init=False)

    def __post_init__(self) -> None:
        try:
            sig: inspect.Signature | None = inspect.signature(self.function)
        except (TypeError, ValueError):
            sig = None
        self.signature = sig
        params = {} if sig is None else dict(sig.parameters)
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.arg_names = tuple(p.name for p in params.values()
                               if p.kind in positional and p.default is p.empty and p.name not in KEYWORD_NAMES)
        by_name = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.keyword_defaults = {n: p.default for n, p in params.items()
                                 if p.kind in by_name and p.default is not p.empty}
        self.accepts_reduction = "reduction" in params
        self.accepts_sample_weight = "sample_weight" in params
        self.accepts_mask = "mask" in params
        self.accepts_ignore_index = "ignore_index" in params

    @property
    def target_position(self) -> int | None:
        """The position of the target among the positional tensors (``None`` when there is none):
        the argument named ``target`` (or ``y``, ``labels``), else the last of two or more."""
        if self.target_kind == "none" or len(self.arg_names) < 2:
            return None
        for i, name in enumerate(self.arg_names):
            if name in _TARGET_NAMES:
                return i
        return len(self.arg_names) - 1

    @property
    def forward_keywords(self) -> frozenset[str]:
        """The keywords the module takes at call time (named in its ``forward``)."""
        forward = getattr(self.module_factory, "forward", None)
        if forward is None:
            return frozenset()
        try:
            params = inspect.signature(forward).parameters
        except (TypeError, ValueError):
            return frozenset()
        named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return frozenset(n for n, p in params.items() if p.kind in named and n != "self")

    @property
    def function_name(self) -> str:
        """The callable's ``__name__`` (what its error messages start with)."""
        return str(getattr(self.function, "__name__", self.name))

    def arg_name(self, position: int) -> str:
        """The name of positional argument ``position`` (``args[i]`` when unknown)."""
        return self.arg_names[position] if position < len(self.arg_names) else f"args[{position}]"

    def with_options(self, **options: Any) -> Callable[..., Tensor] | None:
        """The loss with some hyper-parameters changed (``gamma=0.0``), or ``None`` when it has no such
        options: passed as keywords to a function that takes them, set on a copy of a module."""
        if self.signature is not None and all(k in self.signature.parameters for k in options):
            fn = self.function
            return lambda *args, **kwargs: fn(*args, **{**options, **kwargs})
        change = getattr(self.function, "with_options", None)
        if callable(change):
            changed: Callable[..., Tensor] | None = change(**options)
            return changed
        return None

    @classmethod
    def from_callable(cls, obj: Any, task: str | None = None, inputs: Any = None, **settings: Any) -> CheckTarget:
        """The target for any loss: a registered name, a function, an ``nn.Module`` class or instance.

        Args:
            obj: The loss. A registered name, function or module class gives :meth:`from_spec`'s target.
            task: Selects generated inputs and the family battery (a key of
                :data:`~lossforge.verify.TASKS`); needed for an unregistered loss unless ``inputs`` is given.
            inputs: The loss's own positional tensors (a tuple), a :class:`~lossforge.Sample`, a list of
                samples, or ``(dtype, device) -> list[Sample]``; floating tensors are cast per check.
            settings: ``name``, ``separable`` (override the task's claim) or
                ``low_precision_dtypes``.

        Raises:
            ValueError: For an unknown task or registered name, or an unregistered loss without ``task``
                or ``inputs``.
            TypeError: If ``obj`` is not callable.
        """
        from ._user import target_for

        return target_for(obj, task=task, inputs=inputs, **settings)

    @classmethod
    def from_spec(cls, spec: LossSpec) -> CheckTarget:
        """The target for a registered loss."""
        return cls(
            name=spec.name,
            function=spec.function,
            sample_inputs=spec.sample_inputs,
            module_factory=spec.module,
            extreme_inputs=spec.extreme_inputs,
            error_inputs=spec.error_inputs,
            separable=spec.separable,
            differentiable_args=spec.differentiable_args,
            input_kind=spec.input_kind,
            target_kind=spec.target_kind,
            unit=spec.unit,
            reference=spec.reference,
            module_for_sample=spec.extra.get("module_for_sample"),
            exact_gradient=bool(spec.extra.get("exact_gradient", True)),
            batch_dim=int(spec.extra.get("batch_dim", 0)),
            single_backward=bool(spec.extra.get("single_backward", False)),
            task=task_of_spec(spec),
        )
