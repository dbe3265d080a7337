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

**A plain ``"mean"`` or ``"sum"`` never forms U.** :func:`reduced` is the entry point the losses
call, and it returns exactly ``reduce_loss(elementwise(...), reduction, sample_weight=..., mask=...)``.
When the reduction is ``"mean"`` or ``"sum"`` with no ``sample_weight`` and no ``mask`` and the input
is not empty (the case where :func:`~lossforge._core.reduction.reduce_loss` itself only sums ``U``
and divides by its number of elements), the forward pass (:class:`FusedReduced`) runs a *block sum*
``kernel.sum_fn`` instead: it returns the block's sum of ``U`` (the partial sums are added in
float64, in block order, so the result is deterministic) and writes ``dU/dx``, already multiplied by
the reduction's factor (``1/N`` for a mean), into the buffer that becomes the gradient; ``U`` itself
is never stored. The backward pass multiplies that buffer in place by the incoming gradient, and does
nothing at all when it is 1 (a loss that is back-propagated directly). That is the traffic of a
``torch.compile``d kernel: read ``x`` and ``t``, write the gradient (12 bytes per float32 element, and
one fresh gradient-sized buffer), against the 28 bytes and two fresh buffers of ``U`` + ``dU/dx`` +
a separate reduction. (Recomputing ``dU/dx`` in the backward instead would read ``x`` and ``t``
twice: measured slower, because the first touch of the fresh gradient buffer, which every
implementation pays once, dominates.) The result is finished by
:func:`~lossforge._core.reduction.reduce_total`, the function ``reduce_loss`` uses for that case, so
the two paths share one definition. Everything else (``"none"``, a weight, a mask, an empty input, a
gradient w.r.t. ``t`` the kernel cannot give, ``torch.compile``, ``torch.func``) goes through
``reduce_loss`` on the unreduced loss: one reduction mechanism, and the empty policy unchanged.
Without ``sum_fn`` (and off the CPU) the block sum is derived from ``block_fn``. A ``sum_fn`` may take
a shortcut that overflows where the exact formula is still finite (``log1p(d^2)`` for a huge ``d``): a
block whose partial sum is not finite is done again with ``block_fn``, which never overflows on finite
inputs, so the shortcut costs nothing on ordinary data.

On the CPU each block is below ATen's parallel grain, so every operation on it runs inline on the
thread that issues it, and the blocks are shared out dynamically among ``torch.get_num_threads()``
threads (the caller and a small pool). There is then no OpenMP fork and join per operation: on a
busy machine thousands of them would each wait for a descheduled worker.
"""

from __future__ import annotations

import ctypes
import itertools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from .. import _native
from .._core.reduction import reduce_loss, reduce_total
from .._core.threads import run_runs, run_shared

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
#: Block-sized temporaries a ``sum_fn`` may use at least (``kernel.scratch + 1`` where more).
SUM_SCRATCH = 4
# A block sum: (x, t, g, scale, scratch, *params) -> a 0-dim tensor, the sum of U over the block (no
# weight), and, unless ``g`` is None, scale * dU/dx written into ``g``; ``scale`` is a Python float on
# the CPU, else a 0-dim tensor.
SumFn = Callable[..., Tensor]


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
    #: the sum of ``U`` over a block and its scaled ``dU/dx`` (CPU), or None: from ``block_fn``
    sum_fn: SumFn | None = None
    #: the name of a native block sum (``lf_<name>_sum_f32`` in ``lossforge/_native``) computing what
    #: ``sum_fn`` does for float32 on the CPU in one vectorised pass; None where there is none
    native: str | None = None
    #: the native kernel's parameters (p0, p1, p2), derived from ``params``
    native_params: tuple[float, ...] = ()


def _block_size(x: Tensor, elements: int) -> int:
    if x.device.type != "cpu":
        return max(x.numel(), 1)
    return elements if x.element_size() <= 4 else max(elements // 2, 1)


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


def _for_blocks(x: Tensor, block: int, scratch: int, body: Callable[[int, int, int, list[Tensor]], None]) -> None:
    """Call ``body(b, i, j, tmp)`` for every block ``[i, j)`` of ``x.numel()`` elements.

    Each thread taking part gets ``scratch`` block-sized temporaries of ``x``'s dtype and takes the
    next unprocessed block until none is left. Every element is computed the same way whichever
    thread runs its block, so the result is bitwise deterministic.
    """
    n = x.numel()
    n_blocks = -(-n // block)
    counter = itertools.count()  # next() is atomic under the GIL: a shared work queue
    inference = torch.is_inference_mode_enabled()

    def work() -> None:
        with torch.inference_mode() if inference else torch.no_grad():
            tmp = [x.new_empty(block) for _ in range(scratch)]
            while (b := next(counter)) < n_blocks:
                i = b * block
                j = min(i + block, n)
                body(b, i, j, tmp if j - i == block else [s[:j - i] for s in tmp])

    run_shared(work, min(torch.get_num_threads(), n_blocks) if x.device.type == "cpu" else 1)


def run(kernel: Kernel, x: Tensor, t: Tensor, w: Tensor | None, *, with_grad: bool) -> tuple[Tensor, Tensor | None]:
    """Run a fused kernel over ``x`` block by block: ``U`` and (optionally) ``dU/dx``, shaped like ``x``."""
    block_fn, params = kernel.block_fn, kernel.params
    n = x.numel()
    xf, tf = x.reshape(-1), t.reshape(-1)
    u = torch.empty_like(xf, memory_format=torch.contiguous_format)
    g = torch.empty_like(u) if with_grad else None
    if n == 0:
        return u.view(x.shape), None if g is None else g.view(x.shape)
    block = min(_block_size(x, kernel.block_elements), n)
    tile, period = (None, 1) if w is None or w.numel() == 1 else _periodic(w, x.shape, n, block)
    w0 = None if w is None or tile is not None else w.reshape(())

    def body(b: int, i: int, j: int, tmp: list[Tensor]) -> None:
        wb = w0 if tile is None else tile[i % period: i % period + j - i]
        block_fn(xf[i:j], tf[i:j], wb, u[i:j], None if g is None else g[i:j], tmp, *params)

    _for_blocks(x, block, kernel.scratch, body)
    return u.view(x.shape), None if g is None else g.view(x.shape)


def _derived_sum(kernel: Kernel) -> SumFn:
    """``block_fn``: its ``U`` written into the last scratch buffer and summed, its ``dU/dx`` scaled."""
    block_fn, k = kernel.block_fn, kernel.scratch

    def sum_fn(x: Tensor, t: Tensor, g: Tensor | None, scale: float | Tensor, s: list[Tensor], *params: Any) -> Tensor:
        block_fn(x, t, None, s[k], g, s[:k], *params)
        if g is not None:
            g.mul_(scale)
        return s[k].sum()

    return sum_fn


def block_sum(kernel: Kernel, x: Tensor, t: Tensor, grad_scale: float | Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``(U.sum(), grad_scale * dU/dx)`` without forming ``U``: the sum in float64 (per-block sums added
    in block order), the derivative shaped like ``x`` (None when ``grad_scale`` is None).

    ``x`` and ``t`` have one shape and at least one element. ``kernel.sum_fn`` is used on the CPU; a
    block whose shortcut sum is not finite is done again (sum and derivative) with ``block_fn``.
    """
    native = _native_sum(kernel, x, t)
    if native is not None:
        return _native_block_sum(native, kernel, x, t, grad_scale)
    n = x.numel()
    xf, tf = x.reshape(-1), t.reshape(-1)
    g = None if grad_scale is None else torch.empty_like(xf, memory_format=torch.contiguous_format)
    block = min(_block_size(x, kernel.block_elements), n)
    safe = _derived_sum(kernel)
    fast = kernel.sum_fn if kernel.sum_fn is not None and x.device.type == "cpu" else safe
    params = kernel.params
    scale = 1.0 if grad_scale is None else grad_scale
    sums: list[Tensor] = [xf.new_zeros(())] * -(-n // block)
    # every block's views made at once (one call each, not three slices per block)
    xs, ts = xf.split(block), tf.split(block)
    gs: tuple[Tensor, ...] | list[None] = [None] * len(sums) if g is None else g.split(block)

    def body(b: int, i: int, j: int, tmp: list[Tensor]) -> None:
        sums[b] = fast(xs[b], ts[b], gs[b], scale, tmp, *params)

    scratch = max(kernel.scratch + 1, SUM_SCRATCH)
    _for_blocks(x, block, scratch, body)
    partial = torch.stack(sums)
    total = partial.sum(dtype=torch.float64)
    if fast is not safe and not bool(torch.isfinite(total)):  # a shortcut overflowed (or an input is not finite)
        with torch.no_grad():
            tmp = [xf.new_empty(block) for _ in range(scratch)]
            for b in torch.nonzero(~torch.isfinite(partial)).flatten().tolist():
                i, j = b * block, min(b * block + block, n)
                partial[b] = safe(xf[i:j], tf[i:j], None if g is None else g[i:j], scale,
                                  [s[:j - i] for s in tmp], *params)
        total = partial.sum(dtype=torch.float64)
    return total, None if g is None else g.view(x.shape)


#: Elements per native block, at least: a native sum is one pass with no temporaries, so its blocks
#: need not fit a cache, only share the work out. Larger inputs take larger blocks (up to
#: :data:`NATIVE_BLOCK_MAX`, about 16 per input): fewer calls, and each thread writes (and first
#: touches) long runs of the fresh gradient buffer. The size depends on the input's size only, so the
#: result does not depend on the thread count.
NATIVE_BLOCK_ELEMENTS = 1 << 16
NATIVE_BLOCK_MAX = 1 << 20
# lf_<name>_sum_f32(x, t, g or NULL, n, scale, p0, p1, p2) -> the block's sum of U, as a double
_NATIVE_SUM_ARGS = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                    ctypes.c_double, ctypes.c_double, ctypes.c_double, ctypes.c_double)


def _native_sum(kernel: Kernel, x: Tensor, t: Tensor) -> Callable[..., float] | None:
    """The native block sum for this call, or None (no native kernel, not float32 on the CPU, or the
    native library unavailable: ``lossforge._native.status()``)."""
    if kernel.native is None or x.dtype != torch.float32 or x.device.type != "cpu" or t.dtype != torch.float32:
        return None
    return _native.function("elementwise", f"lf_{kernel.native}_sum_f32", ctypes.c_double, _NATIVE_SUM_ARGS)


def _native_block_sum(fn: Callable[..., float], kernel: Kernel, x: Tensor, t: Tensor,
                      grad_scale: float | Tensor | None) -> tuple[Tensor, Tensor | None]:
    """:func:`block_sum` through the native kernel ``fn``: one C call per block (of
    :data:`NATIVE_BLOCK_ELEMENTS` to :data:`NATIVE_BLOCK_MAX` elements), the blocks shared among
    threads (``ctypes`` releases the GIL), the partial sums (double) added in block order. A block whose
    sum is not finite is done again with the exact ATen kernel, as in :func:`block_sum`."""
    n = x.numel()
    xf, tf = x.reshape(-1).contiguous(), t.reshape(-1).contiguous()
    g = None if grad_scale is None else torch.empty(n, dtype=x.dtype)
    block = min(max(NATIVE_BLOCK_ELEMENTS, min(NATIVE_BLOCK_MAX, n // 16)), n)
    scale = 0.0 if grad_scale is None else float(grad_scale)
    p = [*kernel.native_params, 0.0, 0.0, 0.0]
    xp, tp, gp = xf.data_ptr(), tf.data_ptr(), None if g is None else g.data_ptr()
    size = xf.element_size()
    partial = [0.0] * -(-n // block)

    def body(b: int) -> None:
        i, j = b * block, min(b * block + block, n)
        partial[b] = fn(xp + i * size, tp + i * size, None if gp is None else gp + i * size, j - i,
                        scale, p[0], p[1], p[2])

    run_runs(len(partial), body)
    if not all(map(math.isfinite, partial)):  # a shortcut overflowed (or an input is not finite)
        safe = _derived_sum(kernel)
        scratch = max(kernel.scratch + 1, SUM_SCRATCH)
        with torch.no_grad():
            tmp = [xf.new_empty(block) for _ in range(scratch)]
            for b, value in enumerate(partial):
                if not math.isfinite(value):
                    i, j = b * block, min(b * block + block, n)
                    partial[b] = float(safe(xf[i:j], tf[i:j], None if g is None else g[i:j], scale,
                                            [s[:j - i] for s in tmp], *kernel.params))
    total = torch.tensor(sum(partial, 0.0), dtype=torch.float64)  # in block order: deterministic
    return total, None if g is None else g.view(x.shape)


class FusedReduced(torch.autograd.Function):
    """``reduce_total(sum(U(x; t)), numel, reduction)`` without forming ``U``.

    The forward pass writes ``dU/dx``, already multiplied by the reduction's factor (``1/N`` for a
    mean), into the buffer that becomes the gradient; the backward pass multiplies it in place by the
    incoming gradient (nothing to do when that is 1). Differentiable w.r.t. ``x``, and w.r.t. ``t``
    where ``kernel.target_sign`` is set.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor, kernel: Kernel, reduction: str) -> Tensor:
        n = x.numel()
        need = ctx.needs_input_grad[0] or (ctx.needs_input_grad[1] and kernel.target_sign is not None)
        scale = _reduction_scale(x, reduction)
        total, g = block_sum(kernel, x, t, scale if need else None)
        ctx.grad_buffer, ctx.kernel, ctx.reduction = g, kernel, reduction
        ctx.save_for_backward(x, t)
        return reduce_total(total, n, reduction).to(x.dtype)  # type: ignore[arg-type]

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, t = ctx.saved_tensors
        kernel: Kernel = ctx.kernel
        need_x, need_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1] and kernel.target_sign is not None
        g, ctx.grad_buffer = ctx.grad_buffer, None  # released, so autograd can take it without a copy
        if not (need_x or need_t):
            return None, None, None, None
        if torch.is_grad_enabled():
            # create_graph=True: the derivative of the plain formula, itself differentiable
            wanted = [v for v, need in ((x, need_x), (t, need_t)) if need]
            with torch.enable_grad():
                total = reduce_total(kernel.plain_fn(x, t, None, *kernel.params).sum(), x.numel(), ctx.reduction)
                grads = list(torch.autograd.grad(total, wanted, grad_out, create_graph=True))
            gx = grads.pop(0) if need_x else None
            return gx, grads.pop(0) if need_t else None, None, None
        if g is None:  # a second backward through a retained graph
            g = block_sum(kernel, x, t, _reduction_scale(x, ctx.reduction))[1]
            if g is None:
                return None, None, None, None
        if x.device.type != "cpu" or float(grad_out) != 1.0:
            g.mul_(grad_out)
        return (*_split_gradient(g, need_x, need_t, kernel), None, None)


def _split_gradient(g: Tensor, need_x: bool, need_t: bool, kernel: Kernel) -> tuple[Tensor | None, Tensor | None]:
    """The gradients w.r.t. ``x`` and ``t`` from ``g = dL/dx`` (``dL/dt = target_sign * dL/dx``), reusing
    ``g``'s buffer for one of them."""
    if not need_t:
        return g, None
    sign = float(kernel.target_sign)  # type: ignore[arg-type]
    if not need_x:
        return None, g if sign == 1.0 else g.mul_(sign)
    return g, g.clone() if sign == 1.0 else torch.mul(g, sign)


def _reduction_scale(x: Tensor, reduction: str) -> float | Tensor:
    """The derivative of ``reduce_total(total, x.numel(), reduction)`` w.r.t. ``total``: a Python float on
    the CPU, else a 0-dim tensor of ``x``'s dtype (no device synchronisation)."""
    one = torch.ones((), dtype=torch.float64)
    scale = reduce_total(one, x.numel(), reduction)  # type: ignore[arg-type]
    return float(scale) if x.device.type == "cpu" else scale.to(device=x.device, dtype=x.dtype)


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
        return (*_split_gradient(g, need_x, need_t, kernel), None, None)


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


def reduced(kernel: Kernel, x: Tensor, t: Tensor, reduction: str, *, sample_weight: Tensor | None = None,
            mask: Tensor | None = None, loss_name: str = "loss") -> Tensor:
    """``reduce_loss(elementwise(kernel, x, t, None), reduction, ...)``, without forming ``U`` for a
    plain ``"mean"`` or ``"sum"`` (no weight, no mask, at least one element) where the kernel applies.

    ``x`` and ``t`` are plain float tensors of one dtype, shape and device (the caller checks).
    """
    plain = reduction in ("mean", "sum") and sample_weight is None and mask is None and x.numel() > 0
    if (plain and not (torch.compiler.is_compiling() or transforms_active())
            and not (t.requires_grad and torch.is_grad_enabled() and kernel.target_sign is None)):
        if torch.is_grad_enabled() and (x.requires_grad or t.requires_grad):
            out: Tensor = FusedReduced.apply(x, t, kernel, reduction)
            return out
        total = block_sum(kernel, x, t, None)[0]
        return reduce_total(total, x.numel(), reduction).to(x.dtype)  # type: ignore[arg-type]
    return reduce_loss(elementwise(kernel, x, t, None), reduction,  # type: ignore[arg-type]
                       sample_weight=sample_weight, mask=mask, loss_name=loss_name)
