"""The one table of float tolerances every check compares with.

Two computations of the same quantity in one dtype are compared with
``torch.testing.assert_close``'s per-dtype defaults. A half or bfloat16 input
is computed in float32 (CONVENTIONS §2), so its *value* is compared with the
float32 computation on the same rounded inputs much more tightly than the
input's own resolution; its *gradient* is returned in the input's dtype, so it
gets that dtype's tolerance.
"""

from __future__ import annotations

import torch

__all__ = [
    "COMPILE", "COMPILE_ERRORS", "EXTREME", "GRADCHECK", "GRADCHECK_FULL_MAX", "low_precision_compute_tolerance",
    "low_precision_tolerance", "tolerance",
]

#: (rtol, atol) for two computations of one quantity in one dtype
#: (``torch.testing.assert_close`` defaults).
_SAME_DTYPE: dict[torch.dtype, tuple[float, float]] = {
    torch.float64: (1e-7, 1e-7),
    torch.float32: (1.3e-6, 1e-5),
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
}

#: (rtol, atol) for the float32 result of a half/bfloat16 input against the
#: float32 computation on the rounded inputs (the loss computes in float32).
_LOW_PRECISION_VALUE = (1e-4, 1e-5)

#: Relative tolerance, scaled by the largest magnitude, for a loss that computes in the half dtype
#: itself (a user's loss may): a few roundings of the dtype's resolution.
_LOW_PRECISION_COMPUTE: dict[torch.dtype, float] = {torch.float16: 1e-2, torch.bfloat16: 6e-2}

#: ``torch.autograd.gradcheck`` settings (float64 inputs).
GRADCHECK: dict[str, float] = {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3}

#: Inputs with more entries than this are gradchecked in fast mode (a random projection of the
#: Jacobian instead of every column).
GRADCHECK_FULL_MAX = 64

#: Magnitude of the default extreme inputs (logits, residuals, embeddings).
EXTREME = 1e4

#: How many invalid arguments (the reduction first) are tried under ``torch.compile``.
COMPILE_ERRORS = 3

#: (rtol, atol) for compiled against eager in float32 (kernels may reorder sums).
COMPILE = (1e-5, 1e-5)


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    """``{"rtol": ..., "atol": ...}`` for two computations of one quantity in ``dtype``."""
    rtol, atol = _SAME_DTYPE.get(dtype, _SAME_DTYPE[torch.float32])
    return {"rtol": rtol, "atol": atol}


def low_precision_tolerance(dtype: torch.dtype) -> dict[str, dict[str, float]]:
    """Tolerances for a ``dtype`` input against float32 on the rounded inputs.

    Returns ``{"value": {...}, "grad": {...}}``: the value is computed in float32
    (tight), the gradient comes back in ``dtype`` (that dtype's resolution).
    """
    rtol, atol = _LOW_PRECISION_VALUE
    return {"value": {"rtol": rtol, "atol": atol}, "grad": tolerance(dtype)}


def low_precision_compute_tolerance(dtype: torch.dtype) -> float:
    """Relative tolerance (times the largest magnitude) for a result computed in ``dtype`` itself."""
    return _LOW_PRECISION_COMPUTE.get(dtype, _LOW_PRECISION_COMPUTE[torch.bfloat16])
