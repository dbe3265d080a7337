"""Fused elementwise losses: the unreduced loss and its closed-form derivative in one blockwise pass.

A loss ``U(x; t, w)`` that is elementwise in its input ``x`` (a target ``t`` of the same shape and
an optional per-element weight ``w`` broadcastable to it) is described by two functions:

- a *block kernel* ``block_fn(x, t, w, u, g, scratch, *params)`` that writes ``U`` into ``u`` and
  ``dU/dx`` into ``g`` (skipped when ``g`` is None) for one block of elements, using the given
  block-sized ``scratch`` temporaries and no other allocation;
- the *plain formula* ``plain_fn(x, t, w, *params) -> U``, differentiable with autograd: the
  definition of the loss, and what runs wherever the kernel does not apply.

:func:`elementwise` runs the kernel over the whole input, block by block (each block small enough to
stay in the L2 cache), and the backward pass only scales the stored derivative in place by the
incoming gradient: several times faster than autograd over a chain of elementwise operations, and
far fewer bytes moved. Where ``dU/dt = target_sign * dU/dx`` (a loss of the residual ``x - t``:
``target_sign=-1``) the gradient with respect to ``t`` comes from the same derivative; otherwise a
gradient with respect to ``t`` or ``w`` takes the plain formula. The plain formula is also used
under ``torch.compile`` (so the compiler sees and fuses the formula), under ``torch.func``
transforms, and for higher derivatives.

On the CPU each block is below ATen's parallel grain, so every operation on it runs inline on the
thread that issues it, and the blocks are shared out dynamically among ``torch.get_num_threads()``
threads (the caller and a small pool). There is then no OpenMP fork and join per operation: on a
busy machine thousands of them would each wait for a descheduled worker.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

__all__: list[str] = []

#: Elements per block on the CPU: below ATen's parallel grain (32768), so each operation on a block
#: runs inline, and small enough (float32: 120 KiB per temporary) that a block's temporaries stay in
#: the L2 cache. Other devices run the whole tensor as one block.
BLOCK_ELEMENTS = 30720

# A fused block kernel: (x, t, w, u, g, scratch, *params) writes U into ``u`` and dU/dx into ``g``
# (skipped when ``g`` is None); ``w`` is the block of a per-element weight or None.
BlockFn = Callable[..., None]
# The plain differentiable formula: (x, t, w, *params) -> U.
PlainFn = Callable[..., Tensor]


class Kernel(NamedTuple):
    """A fused elementwise loss: its block kernel, plain formula and how to run them."""

    block_fn: BlockFn
    plain_fn: PlainFn
    params: tuple[Any, ...]
    #: block-sized temporaries each thread hands to ``block_fn``
    scratch: int
    #: elements per block on the CPU (halved for 8-byte dtypes)
    block_elements: int = BLOCK_ELEMENTS
    #: ``dU/dt = target_sign * dU/dx``, or None where the derivative w.r.t. ``t`` is not that
    target_sign: float | None = None


def _block_size(x: Tensor, elements: int) -> int:
    if x.device.type != "cpu":
        return max(x.numel(), 1)
    return elements if x.element_size() <= 4 else max(elements // 2, 1)


_POOL: dict[str, Any] = {"pid": None, "size": 0, "executor": None}


def _executor(workers: int) -> ThreadPoolExecutor:
    """The pool of helper threads (made again after a fork, or when more threads are wanted)."""
    executor = _POOL["executor"]
    if executor is None or _POOL["pid"] != os.getpid() or _POOL["size"] < workers:
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lossforge-fused")
        _POOL.update(pid=os.getpid(), size=workers, executor=executor)
    return executor


def _periodic(w: Tensor, shape: torch.Size, n: int, block: int) -> tuple[Tensor, int]:
    """``(tile, period)`` with ``w.expand(shape).flatten()[k] == tile[k % period + j]`` for every block.

    ``w`` broadcasts to ``shape``; its flattened expansion repeats with the period of the trailing
    dimensions it varies along. The tile is long enough that a block starting at any offset within
    the period reads a contiguous slice of it.
    """
    dims = list(shape)
    wshape = [1] * (len(dims) - w.dim()) + list(w.shape)
    first = next((d for d, size in enumerate(wshape) if size != 1), len(dims))
    period = max(math.prod(dims[first:]), 1)
    tile = w.reshape(wshape[first:]).expand(dims[first:]).reshape(-1)
    if period >= n:
        return tile, period
    reps = -(-(period + block) // period)
    return tile.repeat(reps), period


def run(kernel: Kernel, x: Tensor, t: Tensor, w: Tensor | None, *, with_grad: bool) -> tuple[Tensor, Tensor | None]:
    """Run a fused kernel over ``x`` block by block: ``U`` and (optionally) ``dU/dx``, shaped like ``x``.

    Each thread taking part gets ``kernel.scratch`` block-sized temporaries of ``x``'s dtype and
    takes the next unprocessed block until none is left. Every element is computed the same way
    whichever thread runs its block, so the result is bitwise deterministic.
    """
    block_fn, params, scratch = kernel.block_fn, kernel.params, kernel.scratch
    n = x.numel()
    xf, tf = x.reshape(-1), t.reshape(-1)
    u = torch.empty_like(xf, memory_format=torch.contiguous_format)
    g = torch.empty_like(u) if with_grad else None
    if n == 0:
        return u.view(x.shape), None if g is None else g.view(x.shape)
    block = min(_block_size(x, kernel.block_elements), n)
    tile, period = (None, 1) if w is None or w.numel() == 1 else _periodic(w, x.shape, n, block)
    w0 = None if w is None or tile is not None else w.reshape(())
    n_blocks = -(-n // block)
    counter = itertools.count()  # next() is atomic under the GIL: a shared work queue
    inference = torch.is_inference_mode_enabled()

    def work() -> None:
        with torch.inference_mode() if inference else torch.no_grad():
            tmp = [u.new_empty(block) for _ in range(scratch)]
            while (b := next(counter)) < n_blocks:
                i = b * block
                j = min(i + block, n)
                k = j - i
                wb = w0 if tile is None else tile[i % period: i % period + k]
                block_fn(xf[i:j], tf[i:j], wb, u[i:j], None if g is None else g[i:j], [s[:k] for s in tmp], *params)

    threads = min(torch.get_num_threads(), n_blocks) if x.device.type == "cpu" else 1
    helpers: list[Future[None]] = []
    if threads > 1:
        executor = _executor(threads - 1)
        helpers = [executor.submit(work) for _ in range(threads - 1)]
    work()
    for f in helpers:
        f.result()
    return u.view(x.shape), None if g is None else g.view(x.shape)


class FusedElementwise(torch.autograd.Function):
    """``U(x; t, w)`` elementwise, with ``dU/dx`` computed in the forward pass and scaled in the backward.

    Differentiable w.r.t. ``x``, and w.r.t. ``t`` where ``kernel.target_sign`` is set.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor, w: Tensor | None, kernel: Kernel) -> Tensor:
        u, g = run(kernel, x, t, w, with_grad=True)
        ctx.grad_buffer = g
        ctx.kernel = kernel
        ctx.save_for_backward(x, t, w)
        return u

    @staticmethod
    def backward(ctx: Any, grad_u: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, t, w = ctx.saved_tensors
        kernel: Kernel = ctx.kernel
        need_x, need_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1] and kernel.target_sign is not None
        g, ctx.grad_buffer = ctx.grad_buffer, None  # released, so autograd can take it without a copy
        if not (need_x or need_t):
            return None, None, None, None
        if torch.is_grad_enabled():
            # create_graph=True: the derivative of the plain formula, itself differentiable
            wanted = [v for v, need in ((x, need_x), (t, need_t)) if need]
            with torch.enable_grad():
                grads = list(torch.autograd.grad(kernel.plain_fn(x, t, w, *kernel.params), wanted, grad_u,
                                                 create_graph=True))
            gx = grads.pop(0) if need_x else None
            return gx, grads.pop(0) if need_t else None, None, None
        if g is None:  # a second backward through a retained graph
            g = run(kernel, x, t, w, with_grad=True)[1]
            if g is None:
                return None, None, None, None
        g.mul_(grad_u)
        if not need_t:
            return g, None, None, None
        sign = float(kernel.target_sign)  # type: ignore[arg-type]
        if not need_x:
            return None, g if sign == 1.0 else g.mul_(sign), None, None
        return g, g.clone() if sign == 1.0 else torch.mul(g, sign), None, None


def transforms_active() -> bool:
    """Whether a ``torch.func`` transform (``grad``, ``vmap``, ...) is tracing the call."""
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return bool(active()) if active is not None else False


def plain_float(x: Tensor) -> bool:
    """Whether ``x`` is an ordinary dense float32/float64 tensor (no subclass, no forward-mode dual)."""
    return (type(x) in (Tensor, nn.Parameter) and x.layout == torch.strided
            and x.dtype in (torch.float32, torch.float64) and not _is_dual(x))


def _is_dual(x: Tensor) -> bool:
    try:
        return torch.autograd.forward_ad.unpack_dual(x).tangent is not None
    except RuntimeError:  # no forward-AD level is active
        return False


def elementwise(kernel: Kernel, x: Tensor, t: Tensor, w: Tensor | None) -> Tensor:
    """The unreduced loss, through the fused kernel where it applies, else the plain formula
    (under ``torch.compile`` and ``torch.func`` transforms, and for gradients w.r.t. ``w``, or
    w.r.t. ``t`` unless ``kernel.target_sign`` gives them)."""
    t_grad = t.requires_grad and kernel.target_sign is None
    others = t_grad or (w is not None and w.requires_grad)
    if torch.compiler.is_compiling() or transforms_active() or (torch.is_grad_enabled() and others):
        return kernel.plain_fn(x, t, w, *kernel.params)
    if torch.is_grad_enabled() and (x.requires_grad or t.requires_grad):
        out: Tensor = FusedElementwise.apply(x, t, w, kernel)
        return out
    return run(kernel, x, t, w, with_grad=False)[0]
