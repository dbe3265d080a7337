"""Exact Euclidean distance transforms (private; used by the boundary and Hausdorff-DT losses).

:func:`squared_edt` computes, for every pixel of a batch of binary images, the squared Euclidean
distance to the nearest ``True`` pixel of the same image, by separable 1-D passes
(Felzenszwalb & Huttenlocher, *Distance Transforms of Sampled Functions*, Theory of Computing 2012):

1. along the last axis, the distance to the nearest site of the line, by a min-plus doubling scan
   on small integers (``log2(n)`` steps of shifted minima);
2. along every other axis, the lower envelope of the parabolas ``f(y) + (x - y)^2``, built for all
   lines at once (a loop over the positions of a line, vectorised over the lines, the no-site
   parabolas left out) and read back by counting breakpoints.

Lines whose values are all equal (no site in the plane, or all sites) are left out of step 2, since
the envelope of equal parabolas is the constant. The result is exact: integer squared distances,
computed in float32 while every integer involved is exactly representable (float64 beyond).
Nothing here is differentiable; the losses call it on detached masks.

On the CPU the same passes run as native kernels (``lossforge/_native/edt.c``, one line at a time,
the lines shared among threads) where they can be built: the envelope is sequential along a line, so
the tensor version pays a Python step per position. The torch path is the fallback
(``LOSSFORGE_NATIVE=0``, no C compiler, other devices, ``torch.compile``); both give the same
squared distances.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable

import torch
from torch import Tensor

from .. import _native
from .._core.threads import run_blocks

__all__ = ["squared_edt", "signed_distance", "unsigned_distance"]

_CHUNK = 1 << 16  # lines per envelope batch (the Python loop's cost is per batch: few, large ones)


def _first_pass(sites: Tensor, dtype: torch.dtype, big: float) -> Tensor:
    """Squared distance to the nearest site along the last axis (``big`` where the line has none).

    A min-plus doubling scan on small integers: starting from 0 at the sites and ``none`` elsewhere,
    step ``k = 1, 2, 4, ...`` takes the minimum with the neighbours ``k`` away plus ``k``. Any offset up
    to ``2k - 1`` is a sum of distinct powers of two taken in increasing order, so after ``log2(n)``
    steps every distance along the line is exact. uint8 (int16, int32) arithmetic keeps each step a
    few cheap vectorised passes (an index scan with ``cummax`` is several times slower on CPU).
    """
    n = sites.shape[-1]
    if n <= 126:
        itype, none = torch.uint8, 127  # none + the largest step (64) fits in uint8
    elif n <= 16383:
        itype, none = torch.int16, 1 << 14
    else:
        itype, none = torch.int32, 1 << 30
    d = torch.logical_not(sites).to(itype).mul_(none)  # 0 at a site, `none` elsewhere
    compiling = torch.compiler.is_compiling()
    k = 1
    while k < n:
        left = d[..., :-k] + k  # both from the values before this step
        right = d[..., k:] + k
        if compiling:  # no in-place writes into strided views
            pad = torch.full_like(d[..., :k], none)
            d = torch.minimum(d, torch.cat([pad, left], -1)).minimum(torch.cat([right, pad], -1))
        else:
            torch.minimum(d[..., k:], left, out=d[..., k:])
            torch.minimum(d[..., :-k], right, out=d[..., :-k])
        k *= 2
    f = d.to(dtype)
    return torch.where(d >= none, torch.tensor(big, dtype=dtype, device=d.device), f.mul_(f))


def _envelope(f: Tensor, big: float) -> Tensor:
    """``out[x, l] = min_y f[y, l] + (x - y)^2`` for every column ``l`` of ``f`` ``(n, L)``.

    Felzenszwalb-Huttenlocher's lower envelope, built for all columns at once: a loop over the
    positions ``q`` of a line, each adding parabola ``q`` to every column's stack; the pops touch only
    the columns that pop (and then only those that pop again). Parabolas of the no-site sentinel
    (``f >= big / 2``) are never pushed: they are never the lower envelope where a real parabola
    exists, and leaving them out removes most pops (a real parabola after a run of sentinels pops them
    all). Every column must hold at least one real value. The stack is read back by counting, for
    every ``x``, the breakpoints below it (a histogram and a cumulative sum). The values are integers
    (or the sentinel), exact in ``f``'s dtype.
    """
    n, lines = f.shape
    dt, dev = f.dtype, f.device
    qs = torch.arange(n, dtype=dt, device=dev)
    g = f + (qs * qs).unsqueeze(1)
    real = f < big / 2
    # the stacks hold parabolas as floats (exact small integers: no conversions in the loop);
    # entries above the top are never read, so they need no initial value
    v = torch.empty((n, lines), dtype=dt, device=dev)  # stack of parabolas (their y)
    z = torch.empty((n, lines), dtype=dt, device=dev)  # z[j]: where entry j starts
    v[0] = 0.0
    z[0] = -float("inf")
    k = torch.zeros((1, lines), dtype=torch.int64, device=dev)  # the top of every stack
    vk = torch.zeros(lines, dtype=dt, device=dev)
    gv = g[0].clone()
    zk = z[0].clone()
    for q in range(1, n):
        gq = g[q]
        rq = real[q]
        s = (gq - gv).div_((q - vk).mul_(2.0))
        sub = ((s <= zk) & rq).nonzero().squeeze(1)
        if sub.numel() > 0:
            gsub = gq[sub]
            while True:
                kp = k[0, sub] - 1
                k[0, sub] = kp
                vp = v[kp, sub]
                gvp = g[vp.to(torch.int64), sub]
                zp = z[kp, sub]
                sp = (gsub - gvp) / (2.0 * (q - vp))
                vk[sub] = vp
                gv[sub] = gvp
                zk[sub] = zp
                s[sub] = sp
                again = (sp <= zp).nonzero().squeeze(1)
                if again.numel() == 0:
                    break
                sub = sub[again]
                gsub = gsub[again]
        # push q where it is a real parabola (elsewhere the top is written back unchanged)
        k += rq
        vk = torch.where(rq, float(q), vk)
        v.scatter_(0, k, vk.unsqueeze(0))
        zk = torch.where(rq, s, zk)
        z.scatter_(0, k, zk.unsqueeze(0))
        gv = torch.where(rq, gq, gv)
    # entry j (1 <= j <= k) serves x from floor(z[j]) + 1 on: x's entry is the count of those <= x
    depth = torch.arange(n, device=dev).unsqueeze(1)
    first = torch.where(depth <= k, torch.floor(z).add_(1.0).clamp_(0, n), float(n))
    first[0] = n
    hist = torch.zeros((n + 1, lines), dtype=torch.int32, device=dev)
    hist.scatter_add_(0, first.to(torch.int64), torch.ones((1, 1), dtype=torch.int32, device=dev).expand(n, lines))
    vs = v.gather(0, hist[:n].cumsum(0).to(torch.int64))
    return (qs.unsqueeze(1) - vs).square_().add_(f.gather(0, vs.to(torch.int64)))


def _envelope_direct(f: Tensor) -> Tensor:
    """``min_y f[y, l] + (x - y)^2`` by direct minimisation (no data-dependent control flow)."""
    n = f.shape[0]
    q = torch.arange(n, dtype=f.dtype, device=f.device)
    return (f.unsqueeze(0) + (q.unsqueeze(1) - q.unsqueeze(0)).square().unsqueeze(2)).amin(1)


#: Window stages of the windowed min-plus: a line whose result is certified exact at a stage is done.
_WINDOWS = (2, 4, 8, 16)


def _windowed(f: Tensor) -> tuple[Tensor, Tensor]:
    """``(out, rest)``: ``min_y f[y] + (x - y)^2`` over ``|x - y| <= W`` for every row of ``f`` ``(L, n)``,
    widening ``W`` in stages; ``rest`` lists the rows never certified exact (their ``out`` is unfinished).

    A row is exact once ``max_x out[x] <= (W + 1)^2``: any ``y`` farther than ``W`` from ``x`` costs at
    least ``(W + 1)^2``. Lines near a boundary, and every line of a noisy mask, are done within a few
    steps of four vectorised passes each; certified rows leave the working set at every stage.
    """
    lines, n = f.shape
    out = torch.empty_like(f)  # every row is written: here when certified, by the caller otherwise
    rows = torch.arange(lines, device=f.device)
    sub_f, sub_o = f, f.clone()
    buf = torch.empty_like(f)
    reach = 0
    for w in _WINDOWS:
        top = min(w, n - 1)
        for delta in range(reach + 1, top + 1):
            step = float(delta * delta)
            tmp = buf[: sub_f.shape[0], : n - delta]
            torch.minimum(sub_o[:, delta:], torch.add(sub_f[:, :-delta], step, out=tmp), out=sub_o[:, delta:])
            torch.minimum(sub_o[:, :-delta], torch.add(sub_f[:, delta:], step, out=tmp), out=sub_o[:, :-delta])
        reach = top
        if reach >= n - 1:  # every y was within reach: exact
            out.index_copy_(0, rows, sub_o)
            return out, rows.new_zeros(0)
        certified = sub_o.amax(1) <= float((reach + 1) ** 2)
        ok = certified.nonzero().squeeze(1)
        if ok.numel() > 0:
            out.index_copy_(0, rows.index_select(0, ok), sub_o.index_select(0, ok))
            left = (~certified).nonzero().squeeze(1)
            rows, sub_f, sub_o = rows.index_select(0, left), sub_f.index_select(0, left), sub_o.index_select(0, left)
        if rows.numel() == 0:
            break
    return out, rows


def _pass(f: Tensor, dim: int, big: float) -> Tensor:
    """The envelope pass along ``dim`` of ``f`` ``(B, *spatial)``, skipping constant lines.

    Lines (rows of a ``(L, n)`` copy) are first minimised over a growing window (:func:`_windowed`);
    the lines not certified by the last window go through the exact lower envelope
    (:func:`_envelope`). Under ``torch.compile`` every line is minimised directly (quadratic in the
    line length, but traceable with static shapes).
    """
    moved = f.movedim(dim, -1)
    shape = moved.shape
    n = shape[-1]
    rows = moved.reshape(-1, n)
    if torch.compiler.is_compiling():
        return _envelope_direct(rows.t()).t().reshape(shape).movedim(-1, dim)
    varying = (rows.amax(1) != rows.amin(1)).nonzero().squeeze(1)
    if varying.numel() == 0:
        return f
    if rows.data_ptr() == f.data_ptr():
        rows = rows.clone()
    win, rest = _windowed(rows.index_select(0, varying))
    for i in range(0, rest.numel(), _CHUNK):
        part = rest[i: i + _CHUNK]
        lines = rows.index_select(0, varying.index_select(0, part)).t().contiguous()
        win.index_copy_(0, part, _envelope(lines, big).t())
    rows.index_copy_(0, varying, win)
    return rows.reshape(shape).movedim(-1, dim)


def squared_edt(sites: Tensor) -> Tensor:
    """Squared Euclidean distance of every pixel to the nearest ``True`` pixel of its image.

    Args:
        sites: bool ``(B, *spatial)``, one or more spatial dimensions.

    Returns:
        float64 ``(B, *spatial)``; ``inf`` throughout an image without any site.
    """
    f, big = _squared_edt(sites)
    return torch.where(f >= big / 2, float("inf"), f.to(torch.float64))


def _squared_edt(sites: Tensor, *, complement: bool = False) -> tuple[Tensor, float]:
    """``(f, big)``: squared distances, ``big`` (above every squared distance) where an image has no site.

    With ``complement``, those of ``sites`` and then those of ``~sites``: ``2B`` images. The native
    kernels (:func:`_native_squared_edt`) compute them on the CPU where they are available; the torch
    passes (:func:`_torch_squared_edt`) elsewhere, and under ``torch.compile``.
    """
    sites = sites.detach()
    # a sentinel above every squared distance of the image; float32 while its integers are exact
    big = 4.0 * sum(s * s for s in sites.shape[1:]) + 4.0
    dtype = torch.float32 if big < 2.0 ** 22 else torch.float64
    f = _native_squared_edt(sites, dtype, big, complement=complement)
    if f is None:
        f = _torch_squared_edt(torch.cat([sites, ~sites]) if complement else sites, dtype, big)
    return f, big


def _torch_squared_edt(sites: Tensor, dtype: torch.dtype, big: float) -> Tensor:
    """:func:`_squared_edt` by tensor operations (any device; traceable)."""
    if sites.numel() == 0:
        return sites.to(dtype)
    f = _first_pass(sites, dtype, big)
    for dim in range(sites.dim() - 2, 0, -1):
        f = _pass(f, dim, big)
    return f


_I64, _PTR, _F64 = ctypes.c_int64, ctypes.c_void_p, ctypes.c_double
# lf_edt_planes_<t>(sites, out, planes, start, stop, h, w, big); lf_edt_pass_<t>(f, n, inner, start,
# stop, big); lf_edt_root_<t>_<u>(f, out, start, stop, cap)
_PLANES_ARGS = (_PTR, _PTR, _I64, _I64, _I64, _I64, _I64, _F64)
_PASS_ARGS = (_PTR, _I64, _I64, _I64, _I64, _F64)
_ROOT_ARGS = (_PTR, _PTR, _I64, _I64, _F64)
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
#: Elements per block of native work (one C call; the blocks are shared among the threads).
_NATIVE_BLOCK = 1 << 15


def _native_squared_edt(sites: Tensor, dtype: torch.dtype, big: float, *, complement: bool = False) -> Tensor | None:
    """:func:`_squared_edt` by the native kernels (``lossforge/_native/edt.c``), or None where they do
    not apply (not on the CPU, no spatial dimension, no element, under ``torch.compile``) or are
    unavailable (``lossforge._native.status()``).

    The same passes as the torch path, one line at a time in C (the lower envelope is sequential
    along a line): the 2-D transform of every plane of the last two axes (both passes in cache, the
    complement read from the same mask), then the envelope along each remaining spatial axis. Each
    pass shares blocks of lines among ``torch.get_num_threads()`` threads (``ctypes`` releases the
    GIL); a line is computed the same way whichever thread runs it, and every value is exact.
    """
    if sites.device.type != "cpu" or sites.dim() < 2 or sites.numel() == 0 or torch.compiler.is_compiling():
        return None
    suffix = _SUFFIX[dtype]
    planes_fn = _native.function("edt", f"lf_edt_planes_{suffix}", ctypes.c_int, _PLANES_ARGS)
    pass_fn = _native.function("edt", f"lf_edt_pass_{suffix}", ctypes.c_int, _PASS_ARGS)
    if planes_fn is None or pass_fn is None:
        return None
    s = (sites if sites.dtype == torch.bool else sites != 0).contiguous()  # one byte, 0 or 1, per element
    shape = (2 * s.shape[0], *s.shape[1:]) if complement else tuple(s.shape)
    h, w = (shape[-2], shape[-1]) if len(shape) > 2 else (1, shape[-1])
    f = torch.empty(shape, dtype=dtype)
    sp, fp, planes = s.data_ptr(), f.data_ptr(), s.numel() // (h * w)
    _native_blocks(f.numel() // (h * w), h * w,
                   lambda i, j: planes_fn(sp, fp, planes, i, j, h, w, big))
    for dim in range(len(shape) - 3, 0, -1):
        n, inner = shape[dim], math.prod(shape[dim + 1:])

        def lines(i: int, j: int, n: int = n, inner: int = inner) -> int:
            return int(pass_fn(fp, n, inner, i, j, big))

        _native_blocks(math.prod(shape[:dim]) * inner, n, lines, align=16)  # whole tiles (16 lines)
    return f


def _native_root(f: Tensor, cap: float, dtype: torch.dtype) -> Tensor | None:
    """``f.to(dtype).sqrt_().clamp_(max=cap)`` in one native pass (the root correctly rounded, where
    torch's CPU ``sqrt`` may differ by an ulp), or None where the native kernels do not apply."""
    if (f.device.type != "cpu" or f.dtype not in _SUFFIX or dtype not in _SUFFIX or not f.is_contiguous()
            or torch.compiler.is_compiling()):
        return None
    fn = _native.function("edt", f"lf_edt_root_{_SUFFIX[f.dtype]}_{_SUFFIX[dtype]}", ctypes.c_int, _ROOT_ARGS)
    if fn is None:
        return None
    out = torch.empty(f.shape, dtype=dtype)
    fp, op = f.data_ptr(), out.data_ptr()
    _native_blocks(f.numel(), 1, lambda i, j: fn(fp, op, i, j, cap))
    return out


def _native_blocks(count: int, size: int, call: Callable[[int, int], int], align: int = 1) -> None:
    """``call(i, j)`` for blocks ``[i, j)`` covering ``range(count)`` (items of ``size`` elements, about
    :data:`_NATIVE_BLOCK` elements a block, a multiple of ``align`` items), on up to
    ``torch.get_num_threads()`` threads that take the next block until none is left; a nonzero
    return is a failed allocation."""
    per = -(-max(1, _NATIVE_BLOCK // max(size, 1)) // align) * align
    starts = range(0, count, per)
    failed: list[int] = []

    def block(b: int) -> None:
        i = starts[b]
        if call(i, min(i + per, count)) != 0:
            failed.append(b)

    run_blocks(len(starts), block)
    if failed:
        raise MemoryError("lossforge: the native distance transform could not allocate its scratch memory.")


def _distances(mask: Tensor, empty: float, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """``(d_out, d_in)``: distance to the mask (0 inside), distance to the background (0 outside).

    ``empty`` (at least the image diagonal) replaces the distance where the other side does not exist.
    """
    f, _ = _squared_edt(mask, complement=True)
    # the sentinel's root exceeds the diagonal: it becomes `empty`
    both = _native_root(f, empty, dtype)
    if both is None:
        both = f.to(dtype).sqrt_().clamp_(max=empty)
    d_out, d_in = both.chunk(2)
    return d_out, d_in


def _diagonal(mask: Tensor) -> float:
    return float(sum(s * s for s in mask.shape[1:]) ** 0.5)


def signed_distance(mask: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """``d_out - d_in`` per pixel of ``mask`` ``(B, *spatial)``: positive outside, negative inside.

    An image without foreground is ``+L`` everywhere and an image without background ``-L``,
    with ``L`` the length of the image's diagonal (the largest distance it can hold).
    """
    d_out, d_in = _distances(mask, _diagonal(mask), dtype)
    return d_out - d_in  # each is 0 on the other side


def unsigned_distance(mask: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """Distance of every pixel to the nearest pixel of the other label (``L`` where there is none)."""
    d_out, d_in = _distances(mask, _diagonal(mask), dtype)
    return d_out + d_in
