"""Helpers of the checks: calling the loss, gradients, comparisons and one-line descriptions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._core.samples import CALL_KWARGS, Sample, generator
from ._target import CheckTarget

__all__ = [
    "Fail",
    "Skip",
    "batch_positions",
    "build_module",
    "call",
    "call_checked",
    "call_module",
    "clone_tree",
    "describe_kwargs",
    "diff_positions",
    "exc_text",
    "fmt_index",
    "grads",
    "make_module",
    "mismatch",
    "nonfinite",
    "plain_sample",
    "random_mask",
    "same_bits",
    "samples",
    "scalar_of",
    "take",
    "with_grad",
]

_MAX_MESSAGE = 240


class Fail(Exception):  # noqa: N818 - control flow inside a check, never seen by users
    """Raised inside a check body: the check failed, the message is the detail."""


class Skip(Exception):  # noqa: N818
    """Raised inside a check body: the check does not apply, the message says why."""


def exc_text(exc: BaseException) -> str:
    """``"TypeName: first line of the message"``, shortened to one line."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > _MAX_MESSAGE:
        first = first[: _MAX_MESSAGE - 3] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def fmt_index(index: Sequence[int]) -> str:
    """``[0, 2]`` (empty for a 0-d tensor)."""
    return "[" + ", ".join(str(i) for i in index) + "]" if len(index) else ""


def _fmt_value(v: Any) -> str:
    if isinstance(v, Tensor):
        if v.numel() == 1 and v.dim() == 0:
            return f"tensor({v.item():.4g})"
        return f"tensor{tuple(v.shape)}"
    return repr(v)


def describe_kwargs(kwargs: dict[str, Any]) -> str:
    """``reduction='mean', mask=tensor(6, 4)``."""
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in kwargs.items())


def nonfinite(t: Tensor, what: str, where: str = "") -> str | None:
    """``"gradient is NaN at 3 of 64 positions, first at logits[0, 2]"``, or ``None`` if all finite."""
    t = t.detach()
    bad = ~torch.isfinite(t)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return None
    n_nan = int(torch.isnan(t).sum())
    kind = "NaN" if n_nan == n_bad else "inf" if n_nan == 0 else "NaN or inf"
    if t.numel() == 1:
        value = "NaN" if n_nan else f"{t.reshape(-1)[0].item()}"
        return f"{what} is {value}" + (f" at {where}" if where and where != what else "")
    first = bad.nonzero()[0].tolist() if t.dim() else []
    return f"{what} is {kind} at {n_bad} of {t.numel()} positions, first at {where or what}{fmt_index(first)}"


def mismatch(actual: object, expected: Tensor, what: str, *, rtol: float, atol: float) -> str | None:
    """A one-line description of how ``actual`` differs from ``expected``, or ``None`` if close."""
    if not isinstance(actual, Tensor):
        return f"{what} is a {type(actual).__name__}, not a tensor"
    if tuple(actual.shape) != tuple(expected.shape):
        return f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    if actual.numel() == 0:
        return None
    a = actual.detach().to(device="cpu", dtype=torch.float64)
    e = expected.detach().to(device="cpu", dtype=torch.float64)
    close = torch.isclose(a, e, rtol=rtol, atol=atol)
    if bool(close.all()):
        return None
    diff = (a - e).abs().nan_to_num(nan=float("inf"))
    diff = torch.where(close, diff.new_zeros(()), diff)
    flat = int(diff.argmax())
    index = list(torch.unravel_index(torch.tensor(flat), a.shape)) if a.dim() else []
    got, want = a.reshape(-1)[flat].item(), e.reshape(-1)[flat].item()
    tol = f"rtol {rtol:g}, atol {atol:g}"
    if a.numel() == 1:
        return f"{what} is {got:.8g}, expected {want:.8g} ({tol})"
    n_bad = int((~close).sum())
    at = fmt_index([int(i) for i in index])
    return f"{what} differs at {n_bad} of {a.numel()} positions, worst at {at}: {got:.8g} vs {want:.8g} ({tol})"


def same_bits(a: Tensor, b: Tensor) -> bool:
    """Equal shape, dtype and values (NaN equal to NaN)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    a, b = a.detach(), b.detach()
    if a.is_floating_point():
        return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
    return bool(torch.equal(a, b))


def samples(target: CheckTarget, dtype: torch.dtype, device: torch.device) -> list[Sample]:
    """The target's sample inputs (a failure if there are none)."""
    try:
        out = list(target.sample_inputs(dtype, device))
    except Exception as exc:
        raise Fail(f"sample_inputs({dtype}) raised {exc_text(exc)}") from None
    if not out:
        raise Fail("sample_inputs returned no samples")
    return out


def plain_sample(target: CheckTarget, dtype: torch.dtype, device: torch.device) -> Sample:
    """The first plain sample (no class weights, no ignored targets)."""
    for s in samples(target, dtype, device):
        if s.plain:
            return s
    raise Fail("sample_inputs has no plain sample (the first one must be plain)")


def diff_positions(target: CheckTarget, args: Sequence[Any]) -> list[int]:
    """Positions of the floating-point positional tensors gradients are checked for."""
    floating = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.is_floating_point()]
    if target.differentiable_args is None:
        return floating
    return [i for i in target.differentiable_args if i in floating]


def with_grad(args: Sequence[Any], positions: Sequence[int]) -> tuple[tuple[Any, ...], list[Tensor]]:
    """A copy of ``args`` whose ``positions`` are fresh leaves requiring grad, and those leaves."""
    new = list(args)
    leaves = []
    for i in positions:
        leaf = args[i].detach().clone().requires_grad_(True)
        new[i] = leaf
        leaves.append(leaf)
    return tuple(new), leaves


def call(target: CheckTarget, args: Sequence[Any], kwargs: dict[str, Any], *, sample: str = "",
         **extra: Any) -> Tensor:
    """``target.function(*args, **kwargs, **extra)``; an exception becomes a failure naming the call."""
    kw = {**kwargs, **extra}
    try:
        out = target.function(*args, **kw)
    except Exception as exc:
        where = f" on sample {sample!r}" if sample else ""
        raise Fail(f"{target.function_name}({describe_kwargs(kw)}){where} raised {exc_text(exc)}") from None
    if not isinstance(out, Tensor):
        raise Fail(f"{target.function_name}({describe_kwargs(kw)}) returned a {type(out).__name__}, not a tensor")
    return out


def make_module(target: CheckTarget, sample: Sample, device: torch.device,
                **ctor: Any) -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
    """``(module, args, call_kwargs)`` for a sample: the module built with the sample's constructor
    keywords plus ``ctor``, and what to call it with. Exceptions propagate."""
    if target.module_factory is None:
        raise Skip("the loss has no module form")
    if target.module_for_sample is not None:
        module, args, call_kwargs = target.module_for_sample(sample, **ctor)
    else:
        at_call = target.forward_keywords
        kwargs = {**sample.kwargs, **ctor}
        call_kwargs = {k: v for k, v in kwargs.items() if k in at_call or k in CALL_KWARGS}
        module = target.module_factory(**{k: v for k, v in kwargs.items() if k not in call_kwargs})
        args = tuple(sample.args)
    return module.to(device), tuple(args), dict(call_kwargs)


def build_module(target: CheckTarget, sample: Sample, device: torch.device,
                 **ctor: Any) -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
    """:func:`make_module`, with an exception turned into a failure."""
    try:
        return make_module(target, sample, device, **ctor)
    except Skip:
        raise
    except Exception as exc:
        shown = describe_kwargs({**sample.module_kwargs(), **ctor})
        raise Fail(f"building the module({shown}){_on(sample)} raised {exc_text(exc)}") from None


def call_module(target: CheckTarget, sample: Sample, device: torch.device,
                **ctor: Any) -> tuple[nn.Module, tuple[Any, ...], Tensor]:
    """Build the module for ``sample`` and call it: ``(module, args, output)``."""
    module, args, call_kwargs = build_module(target, sample, device, **ctor)
    shown = describe_kwargs({**sample.module_kwargs(), **ctor})
    return module, args, call_checked(module, args, call_kwargs, f"module({shown})(...){_on(sample)}")


def call_checked(module: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any], what: str) -> Tensor:
    """``module(*args, **kwargs)``; an exception becomes a failure."""
    try:
        out = module(*args, **kwargs)
    except Exception as exc:
        raise Fail(f"{what} raised {exc_text(exc)}") from None
    if not isinstance(out, Tensor):
        raise Fail(f"{what} returned a {type(out).__name__}, not a tensor")
    return out


def _on(sample: Sample) -> str:
    return f" on sample {sample.name!r}" if sample.name else ""


def scalar_of(out: Tensor) -> Tensor:
    """A scalar to differentiate: the output itself, or a fixed projection of a non-scalar output."""
    if out.dim() == 0:
        return out
    weights = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype, device=out.device).reshape(out.shape)
    return (out * weights).sum()


def grads(out: Tensor, inputs: Sequence[Tensor], what: str) -> list[Tensor]:
    """Gradients of ``scalar_of(out)`` w.r.t. ``inputs`` (zeros where unused)."""
    if not inputs:
        return []
    if not out.requires_grad:
        raise Fail(f"{what} does not require grad although its inputs do (not connected to the graph)")
    try:
        got = torch.autograd.grad(scalar_of(out), list(inputs), allow_unused=True)
    except Exception as exc:
        raise Fail(f"backward of {what} raised {exc_text(exc)}") from None
    return [torch.zeros_like(x) if g is None else g for g, x in zip(got, inputs)]


def batch_positions(args: Sequence[Any], batch_dim: int = 0) -> tuple[int, list[int]]:
    """``(N, positions)``: the batch size (dim ``batch_dim`` of the first tensor) and the tensors sharing it."""
    tensors = [(i, a) for i, a in enumerate(args) if isinstance(a, Tensor)]
    if not tensors or tensors[0][1].dim() <= batch_dim:
        raise Skip(f"the loss's first input has no batch dimension {batch_dim} (shape "
                   f"{tuple(tensors[0][1].shape) if tensors else '()'})")
    n = tensors[0][1].shape[batch_dim]
    return n, [i for i, a in tensors if a.dim() > batch_dim and a.shape[batch_dim] == n]


def take(args: Sequence[Any], positions: Sequence[int], index: slice | Tensor, batch_dim: int = 0) -> tuple[Any, ...]:
    """``args`` with the tensors at ``positions`` indexed by ``index`` along ``batch_dim``."""
    key = (slice(None),) * batch_dim + (index,)
    return tuple(a[key] if i in positions else a for i, a in enumerate(args))


def random_mask(shape: Sequence[int], device: torch.device, seed: int = 0) -> Tensor:
    """A random bool mask with about half True, at least one True and (for 2+ entries) one False."""
    g = generator(seed)
    numel = 1
    for d in shape:
        numel *= d
    flat = torch.rand(numel, generator=g) < 0.5
    if numel >= 1:
        flat[0] = True
    if numel >= 2:
        flat[-1] = False
    return flat.reshape(tuple(shape)).to(device)


def clone_tree(value: Any) -> Any:
    """Deep copy of tensors inside tuples, lists and dicts."""
    if isinstance(value, Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(clone_tree(v) for v in value)
    if isinstance(value, dict):
        return {k: clone_tree(v) for k, v in value.items()}
    return value
