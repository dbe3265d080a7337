"""Sample and error inputs: what the registry holds for every loss (OpInfo style).

A loss's ``sample_inputs(dtype, device)`` returns a list of :class:`Sample`; its
``error_inputs()`` returns a list of :class:`ErrorSample`. The conformance suite
and the verifier run the same checks over them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

__all__ = ["Sample", "ErrorSample", "generator", "randn", "randint", "rand", "CALL_KWARGS"]

#: Keyword arguments given at call time (not to a module's constructor).
CALL_KWARGS = frozenset({"sample_weight", "mask"})


@dataclass
class Sample:
    """One set of inputs: positional tensors and keyword arguments.

    ``plain`` means no class weights and no ignored targets, so that
    ``mean == none.sum() / none.numel()``: the generic reduction checks use it.
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    plain: bool = True

    def module_kwargs(self) -> dict[str, Any]:
        """The keyword arguments a module takes at construction."""
        return {k: v for k, v in self.kwargs.items() if k not in CALL_KWARGS}

    def call_kwargs(self) -> dict[str, Any]:
        """The keyword arguments a module takes at call time."""
        return {k: v for k, v in self.kwargs.items() if k in CALL_KWARGS}


@dataclass
class ErrorSample:
    """Inputs that must raise ``exc_type`` with a message matching ``match``.

    With ``at_construction=True`` the ``kwargs`` go to the module's constructor
    and ``args`` are ignored.
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    exc_type: type[BaseException]
    match: str
    at_construction: bool = False


def generator(seed: int = 0) -> torch.Generator:
    """A CPU generator, so samples are the same on every device."""
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device | str,
          scale: float = 1.0) -> Tensor:
    """Normal samples made on the CPU in float64, then cast (identical across dtypes)."""
    return (torch.randn(shape, generator=gen, dtype=torch.float64) * scale).to(device=device, dtype=dtype)


def rand(*shape: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device | str,
         low: float = 0.0, high: float = 1.0) -> Tensor:
    """Uniform samples in ``[low, high)`` made on the CPU in float64, then cast."""
    u = torch.rand(shape, generator=gen, dtype=torch.float64)
    return (low + (high - low) * u).to(device=device, dtype=dtype)


def randint(high: int, *shape: int, gen: torch.Generator, device: torch.device | str) -> Tensor:
    """Integer samples in ``[0, high)``, int64."""
    return torch.randint(high, shape, generator=gen).to(device)
