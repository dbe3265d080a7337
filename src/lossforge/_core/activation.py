"""Shared activations: one softmax pass for every term of a composition that reads the same logits.

Inside :meth:`lossforge.WeightedSum.terms` (and so inside every call of a composed loss) a per-call
cache is active. A loss family registers a *provider* under a name (``register_provider``); a loss
asks for its result with :func:`provided`. The first request computes it, later requests in the same
call with the same inputs get the same objects back, so the terms share one autograd node: one
forward pass over the logits and one backward pass that writes one gradient.

Inputs are keyed by identity and version counter (``id(t)``, ``t._version``): an in-place change of a
tensor between two terms is a new key. The cache holds references to its key tensors, so an id can
not be reused while the call lasts; it is dropped when the outermost ``terms()`` returns. Outside a
composition :func:`provided` returns ``None`` and each loss computes on its own.

The segmentation family provides ``"softmax_target"``: for logits ``(N, C, *)``, class indices
``(N, *)`` and an ``ignore_index`` it returns the log-probability of the target class (what
cross-entropy, focal and poly-1 need) together with the per-(image, class) soft intersections and
probability sums (what the Dice family needs), from one fused pass. See ``docs/segmentation.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
from torch import Tensor

__all__ = ["shared_activations", "sharing_active", "register_provider", "provided", "cached"]

_CACHE: ContextVar[dict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] | None] = ContextVar(
    "lossforge_shared_activations", default=None)
_PROVIDERS: dict[str, Callable[..., Any]] = {}


@contextmanager
def shared_activations() -> Iterator[None]:
    """Activate the per-call cache for the block (re-entrant: an inner block shares the outer cache)."""
    if _CACHE.get() is not None:
        yield
        return
    token = _CACHE.set({})
    try:
        yield
    finally:
        _CACHE.reset(token)


def sharing_active() -> bool:
    """Whether a composition's per-call cache is active."""
    return _CACHE.get() is not None


def _key_part(value: Any) -> Any:
    if isinstance(value, Tensor):
        return ("tensor", id(value), -1 if value.is_inference() else value._version)
    if isinstance(value, (list, tuple)):
        return tuple(_key_part(v) for v in value)
    return value


def cached(name: str, inputs: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """``compute()`` once per composition call for the same ``inputs``; without a cache, just ``compute()``."""
    cache = _CACHE.get()
    if cache is None:
        return compute()
    key = (name, *(_key_part(v) for v in inputs))
    hit = cache.get(key)
    if hit is not None:
        return hit[1]
    value = compute()
    cache[key] = (inputs, value)  # the inputs are held so their ids stay unique during the call
    return value


def register_provider(name: str, fn: Callable[..., Any]) -> None:
    """Make ``fn(*inputs)`` available to every loss as :func:`provided(name, *inputs) <provided>`."""
    _PROVIDERS[name] = fn


def provided(name: str, *inputs: Any) -> Any:
    """The shared result of provider ``name`` on ``inputs`` while a composition call is active, else ``None``.

    A loss that gets ``None`` computes on its own (the result is the same, only not shared).
    """
    fn = _PROVIDERS.get(name)
    if fn is None or torch.compiler.is_compiling() or _CACHE.get() is None:
        return None
    return cached(name, inputs, lambda: fn(*inputs))
