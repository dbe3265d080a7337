"""Argument checks shared by every loss (CONVENTIONS §3).

Metadata checks (shape, dtype, device, hyper-parameter ranges) always run and
are pure Python, so they also hold under ``torch.compile``. Checks that read
tensor *values* run only in validation mode (see :mod:`.validation`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .errors import ShapeError, message
from .validation import validation_enabled

__all__ = [
    "check_float",
    "check_index_target",
    "check_same_shape",
    "check_same_device",
    "check_number",
    "check_range",
    "check_class_weight",
    "check_class_target_shape",
    "check_index_range",
    "check_probabilities",
    "check_choice",
    "upcast",
]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def upcast(x: Tensor) -> Tensor:
    """float16 / bfloat16 -> float32 (autograd returns gradients in the input's dtype)."""
    return x.float() if x.dtype in _LOW_PRECISION else x


def check_float(x: object, argument: str, loss: str) -> None:
    """``x`` must be a floating-point tensor."""
    if not isinstance(x, Tensor):
        raise TypeError(message(loss, argument, "must be a torch.Tensor", type(x).__name__))
    if not x.is_floating_point():
        raise TypeError(
            message(loss, argument, "must be a floating-point tensor", f"dtype {x.dtype}",
                    hint=f"call {argument}.float()")
        )


def check_index_target(target: object, loss: str, *, argument: str = "target") -> None:
    """``target`` must be an integer tensor of class indices."""
    if not isinstance(target, Tensor):
        raise TypeError(message(loss, argument, "must be a torch.Tensor", type(target).__name__))
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(
            message(loss, argument, "must be an integer tensor of class indices", f"dtype {target.dtype}",
                    hint="for probability targets use soft_cross_entropy, or call target.long()")
        )


def check_same_device(a: Tensor, b: Tensor, loss: str, names: tuple[str, str] = ("input", "target")) -> None:
    """Both tensors must live on one device (checked before any kernel runs)."""
    if a.device != b.device:
        raise ValueError(
            f"{loss}: {names[0]} is on {a.device} but {names[1]} is on {b.device}. "
            f"Hint: move both to one device."
        )


def check_same_shape(
    a: Tensor, b: Tensor, loss: str, names: tuple[str, str] = ("pred", "target")
) -> None:
    """Shapes must match exactly: lossforge never broadcasts prediction against target."""
    check_same_device(a, b, loss, names)
    if a.shape != b.shape:
        hint = None
        if a.dim() == b.dim() + 1 and a.shape[-1] == 1:
            hint = f"{names[0]}.squeeze(-1)"
        elif b.dim() == a.dim() + 1 and b.shape[-1] == 1:
            hint = f"{names[1]}.squeeze(-1)"
        raise ShapeError(
            message(loss, names[1], f"must have the shape of {names[0]} {tuple(a.shape)}",
                    tuple(b.shape), hint=hint),
            expected=tuple(a.shape),
            actual=tuple(b.shape),
        )


def check_class_target_shape(logits: Tensor, target: Tensor, loss: str) -> None:
    """Index target ``(N, *)`` against logits ``(N, C, *)``."""
    check_same_device(logits, target, loss, ("logits", "target"))
    if logits.dim() < 2:
        raise ShapeError(
            message(loss, "logits", "must have shape (N, C, *)", tuple(logits.shape)),
            expected="(N, C, *)",
            actual=tuple(logits.shape),
        )
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        hint = "squeeze the class dimension of target" if target.dim() == logits.dim() else None
        raise ShapeError(
            message(loss, "target", f"must have shape (N, *) = {expected} to match logits {tuple(logits.shape)}",
                    tuple(target.shape), hint=hint),
            expected=expected,
            actual=tuple(target.shape),
        )


def check_number(value: object, argument: str, loss: str) -> float:
    """A real Python number (int or float, not bool, complex or tensor)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(message(loss, argument, "must be a float or int", repr(value)))
    return float(value)


def check_range(
    value: object,
    argument: str,
    loss: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """A number in the interval given; the message prints the interval."""
    v = check_number(value, argument, loss)
    ok_low = v >= low if low_inclusive else v > low
    ok_high = v <= high if high_inclusive else v < high
    if not (ok_low and ok_high) or v != v:  # v != v: NaN, without math.isnan (compile-friendly)
        if high == math.inf and low == -math.inf:
            requirement = "must be a finite number" if not high_inclusive or not low_inclusive else "must be a number"
        elif high == math.inf:
            requirement = f"must be {'>=' if low_inclusive else '>'} {low:g}"
        elif low == -math.inf:
            requirement = f"must be {'<=' if high_inclusive else '<'} {high:g}"
        else:
            lb = "[" if low_inclusive else "("
            rb = "]" if high_inclusive else ")"
            requirement = f"must be in {lb}{low:g}, {high:g}{rb}"
        raise ValueError(message(loss, argument, requirement, value))
    return v


def check_choice(value: object, argument: str, loss: str, choices: Sequence[str]) -> str:
    """One of a fixed set of option strings, with a "did you mean"."""
    from .errors import did_you_mean

    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            message(loss, argument, f"must be one of {tuple(choices)}", repr(value)) + did_you_mean(value, choices)
        )
    return value


def check_class_weight(class_weight: Tensor | None, num_classes: int, ref: Tensor, loss: str) -> Tensor | None:
    """``class_weight`` of shape ``(C,)``, converted to the reference's device and float dtype."""
    if class_weight is None:
        return None
    if not isinstance(class_weight, Tensor):
        raise TypeError(message(loss, "class_weight", "must be a tensor of shape (C,)", type(class_weight).__name__))
    if class_weight.dim() != 1 or class_weight.shape[0] != num_classes:
        raise ShapeError(
            message(loss, "class_weight", f"must have shape (C,) = ({num_classes},)", tuple(class_weight.shape)),
            expected=(num_classes,),
            actual=tuple(class_weight.shape),
        )
    return class_weight.to(device=ref.device, dtype=ref.dtype if ref.is_floating_point() else torch.float32)


def check_index_range(target: Tensor, num_classes: int, loss: str, ignore_index: int | None = None) -> None:
    """Validation mode only: every class index in ``[0, C)`` or equal to ``ignore_index``."""
    if not validation_enabled() or target.numel() == 0:
        return
    valid = target if ignore_index is None else target[target != ignore_index]
    if valid.numel() == 0:
        return
    lo, hi = int(valid.min()), int(valid.max())
    if lo < 0 or hi >= num_classes:
        bad = hi if hi >= num_classes else lo
        raise ValueError(
            message(loss, "target", f"must hold class indices in [0, {num_classes - 1}]"
                    + (f" or ignore_index={ignore_index}" if ignore_index is not None else ""),
                    f"class {bad}")
        )


def check_probabilities(x: Tensor, argument: str, loss: str, *, sums_to_one_dim: int | None = None) -> None:
    """Validation mode only: values in ``[0, 1]`` (and rows summing to 1 when asked, to a dtype-aware tolerance)."""
    if not validation_enabled() or x.numel() == 0:
        return
    x = x.detach()
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(message(loss, argument, "must hold probabilities in [0, 1]", f"values in [{lo:g}, {hi:g}]"))
    if sums_to_one_dim is not None:
        tolerance = {torch.float16: 1e-2, torch.bfloat16: 5e-2}.get(x.dtype, 1e-3)
        err = float((x.float().sum(sums_to_one_dim) - 1).abs().max())
        if err > tolerance:
            raise ValueError(
                message(loss, argument, f"must sum to 1 along dim {sums_to_one_dim}", f"an error of {err:.3g}")
            )
