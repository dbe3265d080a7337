"""The loss registry: one :class:`LossSpec` per loss, keyed by name (CONVENTIONS §4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import did_you_mean
from .samples import ErrorSample, Sample

__all__ = ["LossSpec", "register_loss", "unregister_loss", "get_loss", "list_losses", "name_of", "FAMILIES"]

FAMILIES = (
    "regression", "classification", "segmentation", "metric", "boxes", "image",
    "distribution", "ranking", "sequence", "custom",
)

SampleFn = Callable[[torch.dtype, "torch.device | str"], list[Sample]]
ErrorFn = Callable[[], list[ErrorSample]]


def _no_errors() -> list[ErrorSample]:
    return []


@dataclass(frozen=True)
class LossSpec:
    """Everything the library, the verifier and the CLI know about one loss.

    Attributes:
        name: Registry key (the function's name without ``_loss``).
        function: The loss function.
        module: The ``nn.Module`` class (``None`` for a function-only user loss).
        family: One of :data:`FAMILIES`.
        input_kind: ``"real"``, ``"logits"``, ``"probs"``, ``"log_probs"``, ``"embeddings"``, ...
        target_kind: ``"real"``, ``"index"``, ``"binary"``, ``"probs"``, ``"labels"``, ``"sign"``, ``"none"``.
        unit: What one entry of the unreduced loss is (``"element"``, ``"sample"``, ...).
        reference: The paper or documentation the loss follows.
        sample_inputs: ``(dtype, device) -> list[Sample]``; the first sample is plain.
        error_inputs: ``() -> list[ErrorSample]``: loss-specific bad inputs.
        extreme_inputs: ``(dtype, device) -> list[Sample]``: inputs at the edge of the range,
            on which value and gradient must stay finite.
        separable: ``loss(a ++ b, sum) == loss(a, sum) + loss(b, sum)`` along dim 0.
        differentiable_args: Positions of the arguments gradients are checked for
            (default: every floating-point positional tensor).
        aliases: Other names the registry accepts.
    """

    name: str
    function: Callable[..., torch.Tensor]
    module: type[torch.nn.Module] | None
    family: str
    input_kind: str
    target_kind: str
    unit: str
    reference: str
    sample_inputs: SampleFn
    error_inputs: ErrorFn = _no_errors
    extreme_inputs: SampleFn | None = None
    separable: bool = True
    differentiable_args: tuple[int, ...] | None = None
    aliases: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """The first line of the function's docstring."""
        doc = (self.function.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


_REGISTRY: dict[str, LossSpec] = {}
_ALIASES: dict[str, str] = {}
_BY_MODULE: dict[type, str] = {}


def register_loss(spec: LossSpec | None = None, /, *, replace: bool = False, **fields: Any) -> LossSpec:
    """Add a loss to the registry, so specs, composition and the CLI can name it.

    Pass a :class:`LossSpec`, or its fields as keywords (``name``, ``function``,
    ``module``, ``family`` and ``sample_inputs`` are required; the rest default
    to ``"custom"``-style values).

    Raises:
        ValueError: If the name is taken (unless ``replace=True``) or the family is unknown.
    """
    if spec is None:
        fields.setdefault("module", None)
        fields.setdefault("family", "custom")
        fields.setdefault("input_kind", "real")
        fields.setdefault("target_kind", "real")
        fields.setdefault("unit", "element")
        fields.setdefault("reference", "")
        spec = LossSpec(**fields)
    if spec.family not in FAMILIES:
        raise ValueError(f"register_loss: family must be one of {FAMILIES}, got {spec.family!r}."
                         + did_you_mean(spec.family, FAMILIES))
    names = (spec.name, *spec.aliases)
    for n in names:
        if not n.isidentifier() or n != n.lower():
            raise ValueError(f"register_loss: name must be a lower-case identifier, got {n!r}.")
        taken = _REGISTRY.get(_ALIASES.get(n, n))
        if taken is not None and not replace and taken.name != spec.name:
            raise ValueError(f"register_loss: name {n!r} is already registered for {taken.name!r}.")
        if n in _REGISTRY and not replace:
            raise ValueError(f"register_loss: name {n!r} is already registered. Hint: pass replace=True.")
    _REGISTRY[spec.name] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = spec.name
    if spec.module is not None:
        _BY_MODULE[spec.module] = spec.name
    return spec


def unregister_loss(name: str) -> LossSpec:
    """Remove a loss (and its aliases) from the registry; returns its spec. For tests and notebooks."""
    spec = get_loss(name)
    del _REGISTRY[spec.name]
    for alias in spec.aliases:
        _ALIASES.pop(alias, None)
    if spec.module is not None:
        _BY_MODULE.pop(spec.module, None)
    return spec


def get_loss(name: str) -> LossSpec:
    """The :class:`LossSpec` of a registered loss (or alias).

    Raises:
        ValueError: For an unknown name, suggesting the nearest registered one.
    """
    key = _ALIASES.get(name, name)
    try:
        return _REGISTRY[key]
    except KeyError:
        raise ValueError(
            f"get_loss: name must be a registered loss, got {name!r}."
            + did_you_mean(name, [*_REGISTRY, *_ALIASES])
            + " Hint: lossforge.list_losses() lists them."
        ) from None


def list_losses(family: str | None = None) -> list[str]:
    """Sorted registry keys, optionally of one family."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"list_losses: family must be one of {FAMILIES}, got {family!r}."
                         + did_you_mean(family, FAMILIES))
    return sorted(n for n, s in _REGISTRY.items() if family is None or s.family == family)


def name_of(module: torch.nn.Module) -> str | None:
    """The registry key of a module's class, or ``None``."""
    for cls in type(module).__mro__:
        if cls in _BY_MODULE:
            return _BY_MODULE[cls]
    return None
