"""The native SSIM kernels (``lossforge/_native/ssim.c``) for float32 2D planes on the CPU.

:func:`level` computes what ``_image._level`` computes for one scale (the per-plane mean of the SSIM
or contrast-structure map over the 'valid' positions and, for each input that needs it, the
gradient of that mean), value and gradient in one streamed pass with no strip-sized temporaries:
each C call works through tiles of 256 columns row by row, keeping rings of the last ``k`` filtered
rows (about 100 KiB). The work is split into units of whole planes or, when there are fewer planes
than threads, of row ranges of one plane (each recomputes the ``k - 1`` rows of statistics above
it), shared among ``torch.get_num_threads()`` threads (``ctypes`` releases the GIL). Every value is
computed by the same operations whatever the split, and each row's sum (float64) is kept apart and
the rows added in order, so the result does not depend on the number of threads.
:func:`avg_pool2` and :func:`spread` are the MS-SSIM pyramid's pooling and its adjoint.
:func:`kernel` says whether the kernels apply (float32, CPU, plain tensors, a window of at most
:data:`MAX_WINDOW` taps, not traced by ``torch.compile`` or a ``torch.func`` transform, native
kernels available: ``lossforge._native.status()``).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .. import _native
from .._core.threads import run_blocks
from ._fused import transforms_active

__all__: list[str] = []

_I64, _PTR, _F64 = ctypes.c_int64, ctypes.c_void_p, ctypes.c_double
# lf_ssim2d_f32(x, y, x_plane, x_row, y_plane, y_row, gx, gy, planes, h, w, window, k, c1, c2,
#               cs_only, scale, r0, r1, rowsum) -> 0, -1 when out of memory, -2 for a window it does not take
_ARGS = (_PTR, _PTR, _I64, _I64, _I64, _I64, _PTR, _PTR, _I64, _I64, _I64, _PTR, _I64, _F64, _F64,
         ctypes.c_int32, _F64, _I64, _I64, _PTR)

#: The largest window the kernel takes (``LF_MAX_WINDOW`` in ssim.c); larger ones take the torch path.
MAX_WINDOW = 15

#: Work units per thread when whole planes are shared out (for balance), and the fewest rows of a
#: row range, in windows (so that the recomputed k - 1 rows stay under a quarter of it).
_UNITS_PER_THREAD = 4
_MIN_ROWS_PER_WINDOW = 4

# lf_avgpool2_f32(x, x_plane, x_row, out, planes, h, w)
_POOL_ARGS = (_PTR, _I64, _I64, _PTR, _I64, _I64, _I64)

# lf_spread_f32(g, weights, scale, z, planes, hc, wc, h, w, factor) -> 0, or -1 when out of memory
_SPREAD_ARGS = (_PTR, _PTR, _F64, _PTR, _I64, _I64, _I64, _I64, _I64, _I64)

def kernel(x: Tensor, y: Tensor, window: Tensor) -> Callable[..., int] | None:
    """The native kernel for planes ``x, y (P, H, W)`` and ``window``, or None where it does not apply."""
    if torch.compiler.is_compiling() or transforms_active():  # first: traced tensors have no data
        return None
    plain = all(type(z) in (Tensor, nn.Parameter) and z.dtype == torch.float32 and z.device.type == "cpu"
                and z.layout == torch.strided for z in (x, y, window))
    if not plain or x.dim() != 3 or window.numel() > MAX_WINDOW:
        return None
    return _native.function("ssim", "lf_ssim2d_f32", ctypes.c_int, _ARGS)


def _units(planes: int, rows: int, k: int, threads: int) -> list[tuple[int, int, int, int]]:
    """Work units ``(first plane, end plane, first row, end row)`` covering ``planes`` x ``rows``."""
    if threads <= 1:
        return [(0, planes, 0, rows)]
    wanted = _UNITS_PER_THREAD * threads
    if planes >= wanted:
        step = -(-planes // wanted)
        return [(p, min(p + step, planes), 0, rows) for p in range(0, planes, step)]
    chunks = max(1, min(-(-wanted // planes), rows // (_MIN_ROWS_PER_WINDOW * k)))
    height = -(-rows // chunks)
    return [(p, p + 1, r, min(r + height, rows)) for p in range(planes) for r in range(0, rows, height)]


def avg_pool2(x: Tensor) -> Tensor:
    """``F.avg_pool2d(x, 2)`` of planes ``x (P, H, W)`` (odd sizes floored) with the native kernel,
    for an ``x`` that :func:`kernel` accepts; the four values added as ``_image._rows`` adds them."""
    fn = _native.function("ssim", "lf_avgpool2_f32", None, _POOL_ARGS)
    if fn is None:
        raise RuntimeError("ssim: the native kernels are unavailable")
    x = _rows_contiguous(x)
    planes, h, w = x.shape
    out = torch.empty((planes, h // 2, w // 2), dtype=x.dtype)
    if out.numel() == 0:
        return out
    size, (sp, sr, _) = x.element_size(), x.stride()
    step = -(-planes // torch.get_num_threads())  # memory-bound and uniform: one unit per thread
    xp, op, plane_out = x.data_ptr(), out.data_ptr(), (h // 2) * (w // 2)

    def body(u: int) -> None:
        p0, p1 = u * step, min(u * step + step, planes)
        fn(xp + p0 * sp * size, sp, sr, op + p0 * plane_out * size, p1 - p0, h, w)

    run_blocks(-(-planes // step), body)
    return out


def spread(g: Tensor, z: Tensor, weights: Tensor | None, factor: int) -> None:
    """Add the adjoint of ``factor`` x ``factor`` average pooling of ``g (P, h, w)``, times the
    per-plane ``weights (P,)`` (or 1), to ``z (P, H, W)``: each value of ``g`` divided by
    ``factor**2`` over its block of ``z`` (pixels past ``factor * h`` rows or ``factor * w`` columns
    get nothing, as pooling floors). ``g`` and ``z`` are contiguous float32 CPU tensors."""
    fn = _native.function("ssim", "lf_spread_f32", ctypes.c_int, _SPREAD_ARGS)
    if fn is None:
        raise RuntimeError("ssim: the native kernels are unavailable")
    planes, hc, wc = g.shape
    _, h, w = z.shape
    if weights is not None:
        weights = weights.detach().to(torch.float32).contiguous()
    step = -(-planes // torch.get_num_threads())  # memory-bound and uniform: one unit per thread
    size, gp, zp = g.element_size(), g.data_ptr(), z.data_ptr()
    wp = None if weights is None else weights.data_ptr()
    failed: list[int] = []

    def body(u: int) -> None:
        p0, p1 = u * step, min(u * step + step, planes)
        code = fn(gp + p0 * hc * wc * size, None if wp is None else wp + p0 * size, 1.0 / factor**2,
                  zp + p0 * h * w * size, p1 - p0, hc, wc, h, w, factor)
        if code != 0:
            failed.append(code)

    run_blocks(-(-planes // step), body)
    _check(failed)


def _check(codes: Sequence[int]) -> None:
    """Raise for the error codes of the native calls (-1: out of memory)."""
    if -1 in codes:
        raise MemoryError("ssim: the native kernel could not allocate its working memory")
    if codes:
        raise RuntimeError(f"ssim: the native kernel failed (code {codes[0]})")


def _rows_contiguous(z: Tensor) -> Tensor:
    """``z`` if its rows are contiguous (any plane and row strides), else a contiguous copy."""
    return z if z.stride(-1) == 1 or z.shape[-1] == 1 else z.contiguous()


def level(fn: Callable[..., int], x: Tensor, y: Tensor, window: Tensor, c1: float, c2: float, cs_only: bool,
          grads: Sequence[Tensor | None]) -> Tensor:
    """Per-plane mean ``(P,)`` of the SSIM map (``cs_only``: contrast-structure map) of ``x, y (P, H,
    W)`` over the 'valid' positions; and ``grads[0]`` (``grads[1]``), where not None, a contiguous
    ``(P, H, W)`` buffer, receives the gradient of that mean w.r.t. ``x`` (``y``)."""
    planes, h, w = x.shape
    k = window.numel()
    ho, wo = h - k + 1, w - k + 1
    x, y = _rows_contiguous(x), _rows_contiguous(y)
    window = window.contiguous()
    gx, gy = grads
    for g in grads:
        if g is not None and not (g.is_contiguous() and g.dtype == torch.float32 and g.shape == x.shape):
            raise ValueError("ssim: a gradient buffer must be a contiguous float32 tensor of the inputs' shape")
    need = gx is not None or gy is not None
    rowsum = torch.empty((planes, ho), dtype=torch.float64)
    size = x.element_size()
    xs, ys = x.stride(), y.stride()
    base = (x.data_ptr(), y.data_ptr(), None if gx is None else gx.data_ptr(), None if gy is None else gy.data_ptr(),
            rowsum.data_ptr())
    scale = 2.0 / (ho * wo)
    units = _units(planes, h if need else ho, k, torch.get_num_threads())
    failed: list[int] = []

    def body(u: int) -> None:
        p0, p1, r0, r1 = units[u]
        code = fn(base[0] + p0 * xs[0] * size, base[1] + p0 * ys[0] * size, xs[0], xs[1], ys[0], ys[1],
                  None if base[2] is None else base[2] + p0 * h * w * size,
                  None if base[3] is None else base[3] + p0 * h * w * size,
                  p1 - p0, h, w, window.data_ptr(), k, c1, c2, int(cs_only), scale, r0, r1,
                  base[4] + p0 * ho * 8)
        if code != 0:
            failed.append(code)

    run_blocks(len(units), body)
    _check(failed)
    return rowsum.sum(1).div_(ho * wo).to(x.dtype)
