"""More of the universal battery (every loss, every task): silent broadcasting, ``reduction`` honoured,
non-contiguous inputs, NaN and ±inf inputs, unbatched inputs, float32 against float64, autocast and
CUDA parity. Registered into :data:`~lossforge.verify.CHECKS` like the checks of ``_checks``.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ._checks import _check_grads, _expect, _label, _names, _need_reduction, _red, _register
from ._support import (
    Fail,
    Skip,
    batch_positions,
    call,
    diff_positions,
    exc_text,
    fmt_index,
    grads,
    mismatch,
    nonfinite,
    plain_sample,
    same_bits,
    take,
    with_grad,
)
from ._target import CheckTarget
from ._tolerances import low_precision_compute_tolerance, tolerance
from ._user import UserLoss

__all__ = [
    "check_autocast", "check_broadcast", "check_cuda", "check_float32_vs_float64", "check_non_contiguous",
    "check_nonfinite_inputs", "check_reduction_honoured", "check_unbatched",
]

F64 = torch.float64
F32 = torch.float32


def _prediction_position(target: CheckTarget, args: Sequence[Any]) -> int:
    """The position of the prediction: the first floating-point tensor that is not the target."""
    tp = target.target_position
    for i, a in enumerate(args):
        if i != tp and isinstance(a, Tensor) and a.is_floating_point():
            return i
    raise Skip("the loss takes no floating-point prediction")


def _shown(out: Tensor) -> str:
    if out.dim() == 0:
        return f"a value ({out.item():.4g})"
    return f"a tensor of shape {tuple(out.shape)}"


def _try(target: CheckTarget, args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[Tensor | None, str]:
    """``(output, "")``, or ``(None, exception type)`` when the loss raises; warnings are recorded, not raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = target.function(*args, **kwargs)
        except Exception as exc:
            return None, type(exc).__name__
    if not isinstance(out, Tensor):
        raise Fail(f"the loss returned a {type(out).__name__}, not a tensor")
    return out, (f" (with only a {caught[0].category.__name__})" if caught else "")


@_register("broadcast")
def check_broadcast(target: CheckTarget, device: torch.device) -> str:
    """[E1, G4] No silent broadcasting: a prediction ``(N, 1)`` with a target ``(N,)``, and the reverse (for
    class indices: a target ``(N, 1)``), is refused, or gives the value of the matching shapes (the loss
    flattens, or follows a documented broadcast rule); a different value is the silent-broadcasting bug."""
    tp = target.target_position
    s = plain_sample(target, F32, device)
    if tp is None or tp >= len(s.args) or not isinstance(s.args[tp], Tensor):
        raise Skip("the loss takes no target tensor")
    pi = _prediction_position(target, s.args)
    x, t = s.args[pi], s.args[tp]
    if x.dim() == 0 or x.numel() == 0:
        raise Skip("the prediction is a scalar or empty")
    call(target, s.args, s.kwargs, sample=s.name)  # the matching shapes work, so a refusal below means something
    pairs: list[tuple[Tensor, Tensor, list[tuple[Tensor, Tensor]]]] = []
    if x.shape == t.shape:  # the classic: (N, 1) against (N,), built from each sample's first entry
        n = x.shape[0]
        x1, t1 = x.reshape(n, -1)[:, 0], t.reshape(n, -1)[:, 0]
        matching = [(x1, t1), (x1.unsqueeze(-1), t1.unsqueeze(-1))]
        pairs = [(x1.unsqueeze(-1), t1, matching), (x1, t1.unsqueeze(-1), matching)]
    else:  # class indices and other layouts: the target with a trailing 1
        pairs = [(x, t.unsqueeze(-1), [(x, t)])]
    found = []
    for xa, ta, matching in pairs:
        args = list(s.args)
        args[pi], args[tp] = xa, ta
        shapes = f"{target.arg_name(pi)} {tuple(xa.shape)} with {target.arg_name(tp)} {tuple(ta.shape)}"
        out, note = _try(target, args, s.kwargs)
        if out is None:
            found.append(f"{shapes} raises {note}")
            continue
        ref = None
        for xm, tm in matching:
            margs = list(s.args)
            margs[pi], margs[tp] = xm, tm
            ref, _ = _try(target, margs, s.kwargs)
            if ref is not None:
                break
        if ref is not None and mismatch(out, ref, "the loss", **tolerance(F32)) is None:
            found.append(f"{shapes} gives the value of the matching shapes")
            continue
        try:
            both = f"; they broadcast to {tuple(torch.broadcast_shapes(xa.shape, ta.shape))}"
        except RuntimeError:
            both = ""
        expected = f"the matching shapes give {_shown(ref)}" if ref is not None else "the matching shapes raise"
        raise Fail(f"silent broadcasting: {shapes} returned {_shown(out)} instead of raising{note} "
                   f"({expected}{both})")
    return "; ".join(found)


@_register("reduction_honoured")
def check_reduction_honoured(target: CheckTarget, device: torch.device) -> str:
    """``reduction`` is not ignored: ``"none"``, ``"sum"`` and ``"mean"`` are not all the same value, and
    ``"sum"`` differs from ``"mean"`` over more than one unit."""
    _need_reduction(target)
    s = plain_sample(target, F64, device)
    none = call(target, s.args, s.kwargs, sample=s.name, reduction="none")
    total = call(target, s.args, s.kwargs, sample=s.name, reduction="sum")
    mean = call(target, s.args, s.kwargs, sample=s.name, reduction="mean")
    at = _label(s)
    if none.dim() == 0 and same_bits(none, total) and same_bits(total, mean):
        if target.separable or (not target.conventions and mean.item() != 0.0):
            raise Fail(f"reduction is ignored{at}: 'none', 'sum' and 'mean' all return {mean.item():.6g}")
        return f"one unit per batch: 'none', 'sum' and 'mean' coincide ({mean.item():.4g})"
    n = none.numel()
    if n > 1 and total.dim() == 0 and mean.dim() == 0 and mean.item() != 0.0 \
            and mismatch(total, mean, "sum", **tolerance(F64)) is None:
        raise Fail(f"reduction is ignored{at}: 'sum' and 'mean' both return {mean.item():.6g} over {n} units")
    if total.dim() != 0 or mean.dim() != 0:
        raise Fail(f"reduction='sum' returns shape {tuple(total.shape)} and 'mean' {tuple(mean.shape)}, "
                   f"expected scalars")
    return f"'none' {tuple(none.shape)}, 'sum' {total.item():.4g}, 'mean' {mean.item():.4g}"


def _non_contiguous(x: Tensor) -> Tensor:
    """The same values in a strided, non-contiguous view (differentiable)."""
    return torch.stack([x, x], dim=-1)[..., 0]


@_register("non_contiguous")
def check_non_contiguous(target: CheckTarget, device: torch.device) -> str:
    """[U6] Non-contiguous (strided) inputs give the same value and gradients as contiguous ones."""
    tol = tolerance(F64)
    s = plain_sample(target, F64, device)
    positions = diff_positions(target, s.args)
    names = _names(target, positions)
    strided = [i for i, a in enumerate(s.args) if isinstance(a, Tensor) and a.numel() > 1]
    if not strided:
        raise Skip("no tensor with more than one entry")
    ca, cl = with_grad(s.args, positions)
    na, nl = with_grad(s.args, positions)
    nc = [(_non_contiguous(a) if i in strided else a) for i, a in enumerate(na)]
    for r in ("mean", "none") if target.accepts_reduction else (None,):
        extra = {} if r is None else {"reduction": r}
        ref = call(target, ca, s.kwargs, sample=s.name, **extra)
        with warnings.catch_warnings():  # torch's "non-contiguous, extra copy" performance notes are not bugs
            warnings.filterwarnings("ignore", message=".*non-contiguous", category=UserWarning)
            out = call(target, nc, s.kwargs, sample=f"{s.name}, non-contiguous", **extra)
        what = f"{r or 'the loss'} on non-contiguous inputs{_label(s)}"
        _expect(mismatch(out, ref, what, **tol))
        if r == "none" or not positions:
            continue
        for g, want, name in zip(grads(out, nl, what), grads(ref, cl, "the loss"), names):
            _expect(mismatch(g, want, f"the gradient w.r.t. {name} on non-contiguous inputs", **tol))
    return f"{len(strided)} strided inputs: same value and gradients"


#: Tasks whose unit is one element or one sample of smooth terms, where a NaN input must reach the loss.
_PROPAGATING = ("classification", "binary", "multilabel", "regression")


@_register("nonfinite_inputs", validate=False)
def check_nonfinite_inputs(target: CheckTarget, device: torch.device) -> str:
    """[U13, U14] NaN and ±inf in the prediction never crash (a ``ValueError`` naming them is accepted); for
    element-wise and per-sample tasks the NaN reaches the loss, never silently dropped."""
    s = plain_sample(target, F32, device)
    pi = _prediction_position(target, s.args)
    x = s.args[pi]
    if x.numel() == 0:
        raise Skip("the prediction is empty")
    name = target.arg_name(pi)
    first = fmt_index([0] * x.dim())
    parts = []
    for label, value in (("NaN", float("nan")), ("+inf", float("inf")), ("-inf", float("-inf"))):
        args = list(s.args)
        bad = x.clone()
        bad.view(-1)[0] = value
        args[pi] = bad
        try:
            out = target.function(*args, **s.kwargs)
        except ValueError:
            parts.append(f"{label} refused with ValueError")
            continue
        except Exception as exc:
            raise Fail(f"{label} at {name}{first} raised {exc_text(exc)}") from None
        if not isinstance(out, Tensor):
            raise Fail(f"{label} at {name}{first} returned a {type(out).__name__}, not a tensor")
        if label == "NaN":
            if target.task in _PROPAGATING and target.separable and not bool(torch.isnan(out).any()):
                raise Fail(f"a NaN at {name}{first} gives {_shown(out)}: the NaN is silently dropped (U13)")
            parts.append("NaN propagates" if bool(torch.isnan(out).any()) else "NaN gives a finite value")
        else:
            parts.append(f"{label} gives {'a finite value' if bool(torch.isfinite(out).all()) else 'inf or NaN'}")
    return f"at {name}{first}: " + "; ".join(parts)


#: Tasks whose losses read an input without its batch dimension as one sample (as torch's do).
_UNBATCHED = ("classification", "binary", "multilabel", "regression")


@_register("unbatched")
def check_unbatched(target: CheckTarget, device: torch.device) -> str:
    """[U22] For element-wise and class-index losses that accept one unbatched sample (the batch dimension
    dropped), it equals the batch of that one sample."""
    if target.task not in _UNBATCHED:
        raise Skip(f"applies to {', '.join(_UNBATCHED)}: other losses read a missing batch dimension as "
                   f"another layout")
    if not target.separable:
        raise Skip("the loss is declared non-separable (a lone sample is a batch of one)")
    tol = tolerance(F64)
    s = plain_sample(target, F64, device)
    n, batch = batch_positions(s.args, target.batch_dim)
    if n < 1:
        raise Skip("the plain sample is empty")
    single = tuple(a.select(target.batch_dim, 0) if i in batch else a for i, a in enumerate(s.args))
    try:
        out = target.function(*single, **s.kwargs)
    except Exception as exc:
        raise Skip(f"the loss refuses unbatched inputs ({exc_text(exc)})") from None
    if not isinstance(out, Tensor):
        raise Fail(f"unbatched inputs gave a {type(out).__name__}, not a tensor")
    ref = call(target, take(s.args, batch, slice(0, 1), target.batch_dim), s.kwargs, sample="a batch of one")
    if out.numel() == ref.numel():
        _expect(mismatch(out.reshape(ref.shape), ref, "the loss of one unbatched sample (vs a batch of one)", **tol))
    else:
        raise Fail(f"one unbatched sample gives shape {tuple(out.shape)}, a batch of one {tuple(ref.shape)}: the "
                   f"loss reads the unbatched input another way")
    shapes = ", ".join(str(tuple(a.shape)) for a in single if isinstance(a, Tensor))
    return f"unbatched {shapes} equals the batch of one"


@_register("float32_vs_float64")
def check_float32_vs_float64(target: CheckTarget, device: torch.device) -> str:
    """[U2] Float32 agrees with float64 on the same inputs (value ``rtol 1e-4``, gradients ``rtol 1e-3``,
    relative to their magnitude): no catastrophic cancellation or overflow in float32."""
    s64 = plain_sample(target, F64, device)
    s32 = plain_sample(target, F32, device)
    positions = diff_positions(target, s64.args)
    names = _names(target, positions)
    a64, l64 = with_grad(s64.args, positions)
    a32, l32 = with_grad(s32.args, positions)
    red = _red(target, "mean")
    ref = call(target, a64, s64.kwargs, sample=s64.name, **red)
    out = call(target, a32, s32.kwargs, sample=s32.name, **red)
    scale = float(ref.detach().abs().max()) if ref.numel() else 0.0
    _expect(mismatch(out, ref, f"the float32 loss{_label(s32)} vs float64", rtol=1e-4, atol=1e-5 * max(scale, 1e-2)))
    if positions and ref.numel():
        for g, want, name in zip(grads(out, l32, "the float32 loss"), grads(ref, l64, "the float64 loss"), names):
            _expect(nonfinite(g, "the float32 gradient", name))
            gscale = float(want.abs().max()) if want.numel() else 0.0
            _expect(mismatch(g, want, f"the float32 gradient w.r.t. {name} vs float64", rtol=1e-3,
                             atol=1e-4 * max(gscale, 1e-6)))
    return "float32 value and gradients within 1e-4 / 1e-3 of float64"


@_register("autocast")
def check_autocast(target: CheckTarget, device: torch.device) -> str:
    """[U18] Under ``torch.autocast`` (bfloat16 on CPU, float16 on CUDA) value and gradients are finite; the
    distance to float32 is reported (ops autocast lowers, such as convolutions, set it)."""
    wanted = torch.bfloat16 if device.type == "cpu" else torch.float16
    if wanted not in target.low_precision_dtypes:
        raise Skip(f"{str(wanted).replace('torch.', '')} is not among the dtypes asked for")
    s = plain_sample(target, F32, device)
    positions = diff_positions(target, s.args)
    names = _names(target, positions)
    aa, al = with_grad(s.args, positions)
    red = _red(target, "mean")
    ref = call(target, s.args, s.kwargs, sample=s.name, **red)
    short = str(wanted).replace("torch.", "")
    with torch.autocast(device.type, dtype=wanted):
        out = call(target, aa, s.kwargs, sample=s.name, **red)
    what = f"the loss under autocast({short}){_label(s)}"
    _expect(nonfinite(out, what))
    if out.shape != ref.shape:
        raise Fail(f"{what} has shape {tuple(out.shape)}, float32 {tuple(ref.shape)}")
    if positions and ref.numel():
        _check_grads(grads(out, al, what), al, names, what)
    scale = float(ref.detach().abs().max()) if ref.numel() else 0.0
    off = float((out.detach().float() - ref.detach()).abs().max()) / scale if scale else 0.0
    rtol = low_precision_compute_tolerance(wanted)
    closeness = ("equal to float32" if off == 0 else f"within {off:.2g} of float32") if off <= rtol else \
        f"{off:.0%} off float32 (computed in {short}; wrap it in torch.autocast(enabled=False) for float32)"
    return f"autocast({short}): finite value and gradients, {closeness}"


def _on(device: torch.device, value: Any) -> Any:
    return value.to(device) if isinstance(value, Tensor) else value


@_register("cuda")
def check_cuda(target: CheckTarget, device: torch.device) -> str:
    """[U19] On a CUDA device the value and gradients equal the CPU ones (``atol 4e-4``)."""
    if device.type != "cpu":
        raise Skip(f"the checks already run on {device}")
    if not torch.cuda.is_available():
        raise Skip("no CUDA device")
    cuda = torch.device("cuda")
    s = plain_sample(target, F32, device)
    positions = diff_positions(target, s.args)
    names = _names(target, positions)
    fn: Callable[..., Tensor] = target.function
    if target.instance is not None:
        moved = copy.deepcopy(target.instance).to(cuda)
        fn = UserLoss(moved, name=target.name, mask_shape=target.unit_shape or (lambda a: tuple(a[0].shape[:1])))
    ca, cl = with_grad(s.args, positions)
    ga, gl = with_grad([_on(cuda, a) for a in s.args], positions)
    red = _red(target, "mean")
    ref = call(target, ca, s.kwargs, sample=s.name, **red)
    try:
        out = fn(*ga, **{k: _on(cuda, v) for k, v in s.kwargs.items()}, **red)
    except Exception as exc:
        raise Fail(f"on CUDA the loss raised {exc_text(exc)}") from None
    _expect(mismatch(out.cpu(), ref, "the CUDA value vs CPU", rtol=1e-4, atol=4e-4))
    if positions and ref.numel():
        for g, want, name in zip(grads(out, gl, "the CUDA loss"), grads(ref, cl, "the CPU loss"), names):
            _expect(mismatch(g.cpu(), want, f"the CUDA gradient w.r.t. {name} vs CPU", rtol=1e-4, atol=4e-4))
    return "CUDA value and gradients equal the CPU ones within 4e-4"
