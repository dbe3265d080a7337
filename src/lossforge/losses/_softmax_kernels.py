"""Memory-lean softmax kernels shared by the losses that depend on the target's log-probability only.

:func:`target_log_prob` returns ``log p_t = log_softmax(x)[t]`` along the class dimension 1 of
logits ``(N, C, *)``. It is a custom autograd function that saves only the logits (already alive
in the caller's graph) and the target. Its forward runs ``log_softmax`` row block by row block
into one reused buffer (a sixteenth of the logits at most) and keeps the gathered column; its
backward writes ``g * (onehot - softmax)`` into one freshly allocated tensor (torch's fused
softmax kernel with ``out=``, then two in-place operations). Any loss ``U = f(log p_t)``
(cross-entropy, focal, poly-1, generalized and symmetric cross-entropy) is then ordinary autograd
on ``(N, *)`` tensors: the only ``(N, C, *)`` allocation of a forward and backward pass is the
gradient itself, and the few large operations keep the number of parallel regions small.

Half-precision logits are read block by block in float32, the result is float32, and the gradient
is returned in the logits' dtype (no float32 copy of the whole input). Under ``torch.compile`` the
plain formulas are used instead of the row blocks, so the compiler fuses them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["BLOCKS", "MIN_BLOCK_ELEMENTS", "target_log_prob"]

#: The forward's buffer holds at most ``1 / BLOCKS`` of the logits ...
BLOCKS = 16
#: ... and at least this many elements (float32: 4 MiB), or the whole input if smaller.
MIN_BLOCK_ELEMENTS = 1 << 20


def _compute_dtype(x: Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _row_blocks(x: Tensor) -> list[tuple[int, int]]:
    """Row ranges along dim 0 covering ``x``, each of about ``max(numel / BLOCKS, MIN_BLOCK_ELEMENTS)``."""
    n = x.shape[0]
    per_row = max(x[:1].numel(), 1)
    rows = max(max(x.numel() // BLOCKS, MIN_BLOCK_ELEMENTS) // per_row, 1)
    return [(i, min(i + rows, n)) for i in range(0, n, rows)]


def _forward(logits: Tensor, target: Tensor) -> Tensor:
    """``log_softmax(logits, 1)`` gathered at ``target``, in the compute dtype."""
    dtype = _compute_dtype(logits)
    cast = None if logits.dtype == dtype else dtype
    t = target.unsqueeze(1)
    if torch.compiler.is_compiling():
        return torch.log_softmax(logits, 1, dtype=cast).gather(1, t).squeeze(1)
    blocks = _row_blocks(logits)
    rows = blocks[0][1] - blocks[0][0] if blocks else 0
    buffer = logits.new_empty((rows, *logits.shape[1:]), dtype=dtype)
    out = logits.new_empty(target.shape, dtype=dtype)
    for i, j in blocks:
        block = buffer[: j - i]
        torch.log_softmax(logits[i:j], 1, dtype=cast, out=block)
        torch.gather(block, 1, t[i:j], out=out[i:j].unsqueeze(1))
    return out


def _backward(logits: Tensor, target: Tensor, g: Tensor) -> Tensor:
    """``g * (onehot - softmax)`` written into one new tensor of the logits' dtype and layout."""
    dtype = _compute_dtype(logits)
    t = target.unsqueeze(1)
    gu = g.unsqueeze(1).to(dtype)
    if logits.dtype == dtype:
        if torch.compiler.is_compiling():
            return (-gu * torch.softmax(logits, 1)).scatter_add(1, t, gu)
        grad = torch.softmax(logits, 1, out=torch.empty_like(logits))
        return grad.mul_(gu.neg()).scatter_add_(1, t, gu)
    if torch.compiler.is_compiling():
        return (-gu * torch.softmax(logits, 1, dtype=dtype)).scatter_add(1, t, gu).to(logits.dtype)
    grad = torch.empty_like(logits)
    for i, j in _row_blocks(logits):
        block = torch.softmax(logits[i:j], 1, dtype=dtype).mul_(gu[i:j].neg()).scatter_add_(1, t[i:j], gu[i:j])
        grad[i:j] = block
    return grad


class _TargetLogProb(torch.autograd.Function):
    """``log softmax(x)[target]`` along dim 1 with the lean forward and backward described above."""

    @staticmethod
    def forward(logits: Tensor, target: Tensor) -> Tensor:  # type: ignore[override]
        return _forward(logits, target)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor], output: Tensor) -> None:
        logits, target = inputs
        ctx.save_for_backward(logits, target)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, None]:  # type: ignore[override]
        logits, target = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None
        if torch.is_grad_enabled():
            # create_graph=True: a differentiable formula, so higher derivatives exist
            soft = torch.softmax(logits, 1, dtype=_compute_dtype(logits))
            onehot = torch.zeros_like(soft).scatter_(1, target.unsqueeze(1), 1.0)
            return (g.unsqueeze(1) * (onehot - soft)).to(logits.dtype), None
        return _backward(logits, target, g), None


def target_log_prob(logits: Tensor, target: Tensor) -> Tensor:
    """``log softmax(logits, dim=1)`` gathered at ``target``: shape ``(N, *)`` for logits ``(N, C, *)``.

    ``target`` must be an int64 class index everywhere (ignored entries already sanitised). The
    result is float32 for half inputs, else the logits' dtype; it equals
    ``-cross_entropy(logits, target, reduction="none")`` bit for bit.
    """
    return _TargetLogProb.apply(logits, target)
