"""Image losses: a predicted image and a target image ``(N, C, *spatial)`` of one shape.

Every loss here has one unit, the image: ``U`` has shape ``(N,)``, each entry averaged over the
channels and the spatial positions of that image.

SSIM and MS-SSIM run through one autograd function (:class:`_SSIMPyramid`) that filters the four
local statistics (means of x, y, x^2 + y^2 and 2xy) with a separable Gaussian window, in strips
along the first spatial dimension (see "SSIM machinery" for the layout), and computes the
gradient of the finest scale in closed form in the same pass (see :func:`_level`). Nothing but
the inputs and that gradient is kept between the forward and the backward pass: the extra
memory is the gradient plus one strip's working set, whatever the image size; the coarser
MS-SSIM scales are recomputed in the backward pass. For float32 2D images on the CPU a native C
kernel (``lossforge/_native/ssim.c``, :mod:`._ssim_native`) does the same in one streamed pass per
scale, with no strip buffers (see :func:`_native_level` and :func:`_native_coarse`); this module's
torch implementation is used everywhere else (other dtypes and devices, 3D, windows over 15 taps,
``torch.compile``, ``torch.func``, ``LOSSFORGE_NATIVE=0``, no C compiler).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from .._core.base import FunctionLoss, loss_function
from .._core.checks import check_float, check_range, check_same_shape, upcast
from .._core.errors import ShapeError, message
from .._core.reduction import Reduction, check_reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, rand, randn
from . import _ssim_native

__all__ = [
    "ssim_loss", "ms_ssim_loss", "psnr_loss", "total_variation_loss", "gradient_difference_loss",
    "spectral_loss", "local_ncc_loss",
    "SSIMLoss", "MSSSIMLoss", "PSNRLoss", "TotalVariationLoss", "GradientDifferenceLoss", "SpectralLoss",
    "LocalNCCLoss",
]

#: The five scale weights of Wang, Simoncelli & Bovik (2003), finest first.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

#: Elements of one map of a strip (384 KiB in float32): the strip height follows, never fewer
#: output rows than the window size (so the recomputed halo is at most half a strip). The working
#: set of a strip is about 15 such maps: with 4x3x512x512 float32 images it is 0.85x one input, the
#: gradient 1x, so the peak stays under 2x. Larger strips are a little faster but cross 2x (one
#: run, times relative to L1: 4.7x at 2/3 of this size, 4.1x at it, 3.8x at 4/3, 3.7x at 8/3).
_STRIP_ELEMENTS = 3 << 15

_POOL: dict[int, Callable[..., Tensor]] = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_LAYOUTS = {"(N, C, L)": 1, "(N, C, H, W)": 2, "(N, C, D, H, W)": 3}


# ----------------------------------------------------------------------------------------- checks


def _layout(dims: Sequence[int]) -> str:
    return " or ".join(k for k, v in _LAYOUTS.items() if v in dims)


def _prepare(pred: Tensor, target: Tensor | None, loss: str, spatial: Sequence[int] = (1, 2, 3)
             ) -> tuple[Tensor, Tensor]:
    """Checks (float, same shape, ``(N, C, *spatial)``), float32 for half inputs, one common dtype."""
    check_float(pred, "pred", loss)
    if target is not None:
        check_float(target, "target", loss)
        check_same_shape(pred, target, loss)
    if pred.dim() - 2 not in spatial:
        expected = _layout(spatial)
        raise ShapeError(message(loss, "pred", f"must have shape {expected}", tuple(pred.shape)),
                         expected=expected, actual=tuple(pred.shape))
    pred = upcast(pred)
    if target is None:
        return pred, pred
    target = upcast(target)
    if target.dtype != pred.dtype:
        common = torch.promote_types(pred.dtype, target.dtype)
        pred, target = pred.to(common), target.to(common)
    return pred, target


def _check_window(window_size: object, loss: str, *, odd: bool = True) -> int:
    if isinstance(window_size, bool) or not isinstance(window_size, int):
        raise TypeError(message(loss, "window_size", "must be an int", repr(window_size)))
    if window_size < 1 or (odd and window_size % 2 == 0):
        raise ValueError(message(loss, "window_size", "must be a positive odd int" if odd else "must be >= 1",
                                 window_size))
    return window_size


def _check_size(x: Tensor, minimum: int, loss: str, why: str) -> None:
    spatial = tuple(x.shape[2:])
    if any(s < minimum for s in spatial):
        raise ValueError(message(loss, "pred", f"must have every spatial size >= {minimum} ({why})",
                                 f"spatial size {spatial}",
                                 hint="use a smaller window_size or larger images"))


def _per_image(u: Tensor) -> Tensor:
    """Mean over every dimension but the first: ``(N, ...) -> (N,)``."""
    return u.flatten(1).mean(1) if u.dim() > 1 else u


# ------------------------------------------------------------------------------------ SSIM machinery
#
# Layout. The planes ``x (P, R, *S)`` are processed in strips of rows (the first spatial axis, R).
# A strip's maps are stored rows outermost and planes innermost: a stack of ``m`` maps is a
# contiguous ``(n, m, *S, P)`` tensor. Seen as ``(1, P, n*m, *S)`` it is a channels-last image on
# which oneDNN's depthwise convolutions filter the axes of ``S`` fast, and no map or row mixes with
# another along those axes; seen as an ``(n, m*|S|*P)`` matrix, filtering along the rows is a
# product with a banded Gaussian matrix, done in tiles of ``_TILE`` output rows (one GEMM per tile,
# ``_TILE + k - 1`` multiply-adds per output). The elementwise algebra runs on maps ``(n, *S, P)``,
# each a view whose rows are contiguous; the only layout changes are copying a strip of ``x`` and
# ``y`` into the stack and adding the gradient strip back into ``dx``. Every working buffer is
# reused from strip to strip (:class:`_Buffers`), and when an input requires a gradient it is
# computed in the same pass as the value (:func:`_level`), so nothing is filtered twice.

#: Output rows per GEMM along the first spatial axis.
_TILE = 8


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _band(window: Tensor, rows: int) -> Tensor:
    """``(rows, rows + k - 1)``: row ``i`` holds the window in columns ``i .. i + k - 1`` (the 'valid'
    filter of ``rows + k - 1`` rows as a matrix; its transpose is the adjoint, the 'full' one)."""
    k = window.numel()
    band = window.new_zeros(rows, rows + k - 1)
    band.as_strided((rows, k), (rows + k, 1)).copy_(window.expand(rows, k))
    return band


class _Buffers:
    """Working buffers of one pass, reused by every strip (allocated at the first strip's size, the
    largest): a fresh allocation per strip would be served by ``mmap`` and page-faulted in again
    each time, which costs more than the arithmetic on it."""

    def __init__(self, like: Tensor) -> None:
        self.like = like
        self.store: dict[str, Tensor] = {}

    def get(self, name: str, shape: Sequence[int], dtype: torch.dtype | None = None) -> Tensor:
        """A contiguous buffer of ``shape``: the first rows of the one kept under ``name``."""
        buf = self.store.get(name)
        if buf is None or buf.shape[1:] != tuple(shape[1:]) or buf.shape[0] < shape[0]:
            buf = self.store[name] = self.like.new_empty(tuple(shape), dtype=dtype or self.like.dtype)
        return buf[:shape[0]]


def _filter_rows(src: Tensor, band: Tensor, out: Tensor, *, adjoint: bool = False) -> None:
    """Filter the rows of a matrix ``src`` into ``out`` with ``band`` (:func:`_band`): 'valid'
    (``out = band @ src``, ``k - 1`` rows fewer) or, with ``adjoint``, 'full' (``out = band.T @
    src``, ``k - 1`` rows more), one GEMM per tile of ``_TILE`` output rows on the band's non-zero
    columns only."""
    n_out, k = out.shape[0], band.shape[1] - band.shape[0] + 1
    for r in range(0, n_out, _TILE):
        h = min(_TILE, n_out - r)
        if adjoint:
            lo, hi = max(0, r - k + 1), min(band.shape[0], r + h)
            torch.mm(band[lo:hi, r:r + h].t(), src[lo:hi], out=out[r:r + h])
        else:
            torch.mm(band[r:r + h, r:r + h + k - 1], src[r:r + h + k - 1], out=out[r:r + h])


def _filter_other(stack: Tensor, window: Tensor, *, adjoint: bool) -> Tensor:
    """Depthwise filtering of a stack ``(n, m, *S, P)`` along every axis of ``S``: 'valid'
    correlation (each size shrinks by ``k - 1``), or with ``adjoint`` its adjoint, the 'full'
    convolution (each size grows by ``k - 1``)."""
    n, m, *sizes, planes = stack.shape
    d, k = len(sizes), window.numel()
    w = window.flip(0) if adjoint else window
    conv = F.conv2d if d == 1 else F.conv3d
    img = stack.view(1, n * m, *sizes, planes).movedim(-1, 1)  # channels-last (1, P, n*m, *S)
    for axis in reversed(range(d)):  # the innermost axis first
        shape = [1] * (d + 1)
        shape[axis + 1] = k
        pad = [0] * (d + 1)
        pad[axis + 1] = k - 1 if adjoint else 0
        img = conv(img, w.view(1, 1, *shape).expand(planes, 1, *shape), padding=tuple(pad), groups=planes)
    return img.movedim(1, -1).contiguous().view(n, m, *img.shape[3:], planes)  # a no-op where channels-last


def _filter_valid(stack: Tensor, window: Tensor, band: Tensor, out: Tensor) -> Tensor:
    """'Valid' separable Gaussian filtering of a stack ``(n, m, *S, P)`` into ``out``, every size
    ``k - 1`` smaller (``band``: :func:`_band` for ``n - k + 1`` rows)."""
    other = _filter_other(stack, window, adjoint=False)
    _filter_rows(other.view(other.shape[0], -1), band, out.view(out.shape[0], -1))
    return out


def _filter_full(grads: Tensor, window: Tensor, band: Tensor, rows: Tensor) -> Tensor:
    """The adjoint of :func:`_filter_valid` ('full' convolution, every size ``k - 1`` larger) of a
    stack ``grads``; ``rows`` receives the filtering along the rows (``k - 1`` rows more)."""
    _filter_rows(grads.view(grads.shape[0], -1), band, rows.view(rows.shape[0], -1), adjoint=True)
    return _filter_other(rows, window, adjoint=True)


def _into(out: Tensor, op: Callable[..., Tensor], *args: Any, **kwargs: Any) -> Tensor:
    """``op(*args, **kwargs, out=out)``. Under ``torch.compile``, which refuses an ``out=`` tensor
    that is not contiguous, the result is computed and copied in instead (the compiler fuses the
    two)."""
    if torch.compiler.is_compiling():
        return out.copy_(op(*args, **kwargs))
    return op(*args, **kwargs, out=out)


def _stack(xs: Tensor, ys: Tensor, cq: float, cp: float, out: Tensor) -> Tensor:
    """The maps ``x, y, x^2 + y^2 + cq, 2xy + cp`` of strips ``xs, ys (P, n, *S)`` into ``out (n,
    4, *S, P)``."""
    x, y, q, p = out.unbind(1)
    x.copy_(xs.movedim(0, -1))
    y.copy_(ys.movedim(0, -1))
    _into(q, torch.addcmul, x.new_tensor(cq), x, x).addcmul_(y, y)
    _into(p, torch.addcmul, x.new_tensor(cp), x, y).addcmul_(x, y)  # as q: equal bits where x == y
    return out


def _strips(x: Tensor, k: int, factor: int = 1, pooled: bool = False) -> list[tuple[int, int]]:
    """Output-row ranges ``[r0, r1)`` along the first spatial dimension of ``x (P, *spatial)``
    pooled ``factor`` times, about ``_STRIP_ELEMENTS`` elements of one map each (half of that
    for the pooled levels of MS-SSIM, ``pooled``: their gradient is added to the full one in the
    backward pass, so their working set comes on top of it)."""
    sizes = [s // factor for s in x.shape[1:]]
    rows_out = sizes[0] - k + 1
    per_row = x.shape[0] * math.prod(sizes[1:])
    height = max(k, (_STRIP_ELEMENTS // 2 if pooled else _STRIP_ELEMENTS) // max(per_row, 1))
    return [(r0, min(r0 + height, rows_out)) for r0 in range(0, rows_out, height)]


def _rows(x: Tensor, r0: int, r1: int, factor: int) -> Tensor:
    """Rows ``r0 .. r1`` of ``x (P, *spatial)`` average-pooled ``factor`` (a power of 2) times along
    every spatial axis, odd sizes floored, as ``avg_pool`` with kernel 2 applied ``log2(factor)``
    times; computed from those rows of ``x`` only."""
    if factor == 1:
        return x[:, r0:r1]
    x = x[(slice(None), slice(r0 * factor, r1 * factor), *(slice(0, s // factor * factor) for s in x.shape[2:]))]
    while factor > 1:  # 2x: add the two halves of every axis (contiguous rows first), then scale
        for axis in range(1, x.dim()):
            pairs = x.unflatten(axis, (x.shape[axis] // 2, 2))
            x = pairs.select(axis + 1, 0) + pairs.select(axis + 1, 1)
        x = x.mul_(0.5 ** (x.dim() - 1))
        factor //= 2
    return x


#: A gradient sink of :func:`_level`: (0 for x or 1 for y, the full-resolution gradient to write or
#: add to, per-plane weights ``(P,)`` or None for 1).
_Sink = tuple[int, Tensor, Tensor | None]


def _level(x: Tensor, y: Tensor, window: Tensor, c1: float, c2: float, cs_only: bool,
           sinks: Sequence[_Sink] = (), factor: int = 1, first: bool = True, pool: int = 1) -> Tensor:
    """Per-plane mean of the SSIM map (with ``cs_only``, the contrast-structure map) of ``x, y
    (P, *spatial)``, average-pooled ``pool`` times strip by strip (a level of the MS-SSIM pyramid),
    over the 'valid' positions; and, for each sink, the gradient of ``sum(weight * mean)`` with
    respect to the inputs, in the same pass. The sinks have the full resolution, ``factor`` times
    finer than the level: each gradient value is spread over its ``factor**d`` pixels (the adjoint
    of the pooling). ``first``: the sinks are uninitialised and this call writes every element;
    otherwise it adds.
    """
    # S = A1 A2 / (B1 B2), CS = A2 / B2 with A1 = 2 mx my + c1, B1 = mx^2 + my^2 + c1,
    # A2 = 2 sigma_xy + c2 = P - A1 and B2 = sigma_x^2 + sigma_y^2 + c2 = max(Q - B1, c2) (the
    # variance clamped at 0), from the filtered maps mx, my, Q = E[x^2 + y^2] + c1 + c2 and
    # P = E[2xy] + c1 + c2. For the SSIM map
    #   g3 = dS/dP = A1 / (B1 B2),   g2n = -dS/dQ = S / B2 [var > 0],
    #   dS/dmx / 2 = my e + mx f,  dS/dmy / 2 = mx e + my f,  e = (A2 - A1) / (B1 B2),  f = g2n - S / B1;
    # for the contrast-structure map
    #   g3 = 1 / B2,   g2n = CS / B2 [var > 0],   dCS/dmx / 2 = mx g2n - my g3,  dCS/dmy / 2 = my g2n - mx g3.
    # With dQ/dx = 2x, dP/dx = 2y, the adjoint filter K^T and M positions, the gradient of the mean is
    #   d/dx = (2 / M) (K^T (d/dmx / 2) - x K^T g2n + y K^T g3),  d/dy likewise with x and y swapped.
    native = _native_level(x, y, window, c1, c2, cs_only, sinks, factor, first, pool)
    if native is not None:
        return native
    planes, k, d = x.shape[0], window.numel(), x.dim() - 1
    sizes = [s // pool for s in x.shape[2:]]
    valid = [s - k + 1 for s in sizes]
    count = math.prod([s // pool - k + 1 for s in x.shape[1:]])
    total = x.new_zeros(planes)
    bands: dict[int, Tensor] = {}
    c1_ = x.new_tensor(c1)
    per_plane = (planes,) + (1,) * d
    scales = [(j, z, (x.new_full(per_plane, 2 / count) if w is None else w.view(per_plane) * (2 / count)))
              for j, z, w in sinks]
    m = 2 + len(sinks)
    unit = math.prod(valid) * planes  # elements of one row of one map, filtered
    buffers = _Buffers(x)
    for i, (r0, r1) in enumerate(_strips(x, k, pool, factor > 1)):
        n = r1 - r0
        stack = _stack(_rows(x, r0, r1 + k - 1, pool), _rows(y, r0, r1 + k - 1, pool), c1 + c2, c1 + c2,
                       buffers.get("stack", (n + k - 1, 4, *sizes, planes)))
        # one buffer for the statistics (n rows of 4 maps) and, later, the gradient maps filtered
        # along the rows (n + k - 1 rows of m maps)
        work = buffers.get("work", (max(4 * n, m * (n + k - 1) if sinks else 0) * unit,))
        band = bands[n] if n in bands else bands.setdefault(n, _band(window, n))
        stats = _filter_valid(stack, window, band, work[:4 * n * unit].view(n, 4, *valid, planes))
        mx, my, q, p = stats.unbind(1)

        def temp(name: str, dtype: torch.dtype | None = None) -> Tensor:
            return buffers.get(name, (n, *valid, planes), dtype)  # noqa: B023

        # A1 and B1 (and the maps P and Q) are formed by the same operations in the same order,
        # so identical images give S = CS = 1 exactly
        a1 = _into(temp("a1") if not sinks else buffers.get("grads", (n, m, *valid, planes))[:, 1], torch.addcmul,
                   c1_, mx, my).addcmul_(mx, my)
        a2 = p.sub_(a1)
        b1 = _into(temp("b1"), torch.addcmul, c1_, mx, mx).addcmul_(my, my)
        var = q.sub_(b1)
        if not sinks:
            b2 = var.clamp_min_(c2)  # the variance clamped at 0
            value = a2.div_(b2) if cs_only else a1.div_(b1).mul_(a2.div_(b2))
            total += value.sum(tuple(range(value.dim() - 1)))
            continue
        grads = buffers.get("grads", (n, m, *valid, planes))
        g2n, g3, *gm = grads.unbind(1)  # g3 holds A1 for now
        means = (mx, my)
        positive = _into(temp("positive", torch.bool), torch.gt, var, c2)
        b2 = var.clamp_min_(c2)
        if cs_only:
            value = _into(temp("t"), torch.div, a2, b2)  # CS
            total += value.sum(tuple(range(value.dim() - 1)))
            _into(g3, torch.reciprocal, b2)
            _into(g2n, torch.div, value, b2).mul_(positive)
            for g, (j, _, _) in zip(gm, sinks):
                _into(g, torch.mul, means[j], g2n).addcmul_(means[1 - j], g3, value=-1)
        else:
            q1, q2 = a1.div_(b1), a2.div_(b2)  # A1 / B1 (in g3), A2 / B2
            value = _into(temp("t"), torch.mul, q1, q2)  # S
            total += value.sum(tuple(range(value.dim() - 1)))
            g3 = q1.div_(b2)  # A1 / (B1 B2)
            _into(g2n, torch.div, value, b2).mul_(positive)
            e = q2.div_(b1).sub_(g3)  # (A2 - A1) / (B1 B2)
            f = _into(value, torch.addcdiv, g2n, value, b1, value=-1)
            for g, (j, _, _) in zip(gm, sinks):
                _into(g, torch.mul, e, means[1 - j]).addcmul_(f, means[j])
        back = _filter_full(grads, window, band, work[:m * (n + k - 1) * unit].view(n + k - 1, m, *valid, planes))
        images = (stack[:, 0], stack[:, 1])  # the strips of x and y, in the stack's layout
        for slot, (j, z, scale) in enumerate(scales, start=2):
            part = back[:, slot].addcmul_(images[j], back[:, 0], value=-1).addcmul_(images[1 - j], back[:, 1])
            _spread(z, part.movedim(-1, 0), scale, r0, factor, d, overlap=0 if i == 0 else k - 1, first=first)
    return total / count


def _native_level(x: Tensor, y: Tensor, window: Tensor, c1: float, c2: float, cs_only: bool,
                  sinks: Sequence[_Sink], factor: int, first: bool, pool: int) -> Tensor | None:
    """:func:`_level` at full resolution (``factor == pool == 1``, the sinks written, not weighted)
    through the native kernel (2D float32 planes on the CPU: :func:`_ssim_native.kernel`), which
    writes the gradient straight into the sinks; None where it does not apply."""
    if factor != 1 or pool != 1 or not first or any(w is not None for _, _, w in sinks) or x.dim() != 3:
        return None
    fn = _ssim_native.kernel(x, y, window)
    if fn is None:
        return None
    out: list[Tensor | None] = [None, None]
    for j, z, _ in sinks:
        out[j] = z
    return _ssim_native.level(fn, x, y, window, c1, c2, cs_only, out)


def _spread(z: Tensor, part: Tensor, scale: Tensor, r0: int, factor: int, d: int, *, overlap: int, first: bool
            ) -> None:
    """Write ``scale * part`` (a gradient strip ``(P, n, *S)`` of a level ``factor`` times coarser
    than ``z``, at that level's rows ``r0 ..``) into ``z``. ``first``: ``z`` is written by this level
    for the first time (the rows the strip shares with the previous one, its first ``overlap``,
    are added, the rest written); otherwise everything is added."""
    planes, n, *sizes = part.shape
    if factor == 1:
        region = z[:, r0:r0 + n]
        if not first:
            region.addcmul_(part, scale)
        else:
            region[:, :overlap].addcmul_(part[:, :overlap], scale)
            _into(region[:, overlap:], torch.mul, part[:, overlap:], scale)
        return
    index = (slice(None), slice(r0 * factor, (r0 + n) * factor), *(slice(0, s * factor) for s in sizes))
    split, spread = [planes], [planes]
    for s in (n, *sizes):
        split += [s, factor]
        spread += [s, 1]
    z[index].view(split).addcmul_(part.reshape(spread), scale.view(planes, *[1] * (2 * d)), value=1 / factor**d)


def _pooled(x: Tensor, factor: int) -> Tensor:
    """``x (P, *spatial)`` average-pooled ``factor`` times (as :func:`_rows`), a few rows at a time
    so that the temporaries stay small."""
    out = x.new_empty((x.shape[0], *[s // factor for s in x.shape[1:]]))
    height = max(1, _STRIP_ELEMENTS // max(1, math.prod(x.shape[2:]) * factor * x.shape[0]))
    for r0 in range(0, out.shape[1], height):
        r1 = min(r0 + height, out.shape[1])
        out[:, r0:r1] = _rows(x, r0, r1, factor)
    return out


def _coarse(x: Tensor, y: Tensor, scales: int) -> Iterator[tuple[Tensor, Tensor, int]]:
    """For the scales ``1 .. scales - 1``: the images to pool from and the pooling factor. Scale 1
    is pooled from the inputs strip by strip; the others from one stored copy at scale 2 (an
    eighth of the inputs, where a copy at scale 1 would cost half)."""
    if scales > 1:
        yield x, y, 2
    if scales > 2:
        x2, y2 = _pooled(x, 4), _pooled(y, 4)
        for j in range(2, scales):
            yield x2, y2, 2 ** (j - 2)


#: The coarse scales' gradients from :func:`_native_coarse`: for each scale ``1 .. M-1``, the buffers
#: for x and y (None where not wanted), at that scale's resolution.
_CoarseGrads = list[list[Tensor | None]]


def _native_coarse(x: Tensor, y: Tensor, window: Tensor, c1: float, c2: float, scales: int,
                   need: Sequence[bool]) -> tuple[Tensor, _CoarseGrads] | None:
    """The coarse MS-SSIM scales ``1 .. scales - 1`` through the native kernel: their per-plane
    means ``(scales - 1, P)`` (contrast-structure terms, SSIM at the last scale) and the gradients
    of those means w.r.t. each scale's pooled x and y where ``need`` says so (unweighted, at the
    scale's resolution: about a third of an input in all); None where the kernel does not apply.

    The planes are taken a group at a time (a quarter of them, or one per thread), so that the
    pooled copies stay small: each scale is pooled whole from the previous one (2x2 average
    pooling, odd sizes floored).
    """
    fn = _ssim_native.kernel(x, y, window) if x.dim() == 3 else None
    if fn is None:
        return None
    planes, h, w = x.shape
    values = x.new_empty(scales - 1, planes)
    grads = [[torch.empty((planes, h >> j, w >> j), dtype=x.dtype) if wanted else None for wanted in need[:2]]
             for j in range(1, scales)]
    group = max(torch.get_num_threads(), -(-planes // 4))
    for a in range(0, planes, group):
        b = min(a + group, planes)
        xj, yj = x[a:b], y[a:b]
        for j in range(1, scales):
            xj, yj = _ssim_native.avg_pool2(xj), _ssim_native.avg_pool2(yj)
            values[j - 1, a:b] = _ssim_native.level(fn, xj, yj, window, c1, c2, j < scales - 1,
                                                    [None if g is None else g[a:b] for g in grads[j - 1]])
    return values, grads


def _native_coarse_backward(grads: _CoarseGrads, sinks: Sequence[_Sink], grad: Tensor) -> None:
    """Add the coarse scales' gradients (:func:`_native_coarse`, consumed), weighted per plane by
    ``grad[j]``, into the sinks: each scale's spread into the one at scale 1 (the adjoint of the
    pooling), which is spread into the sink once."""
    for i, z, _ in sinks:
        acc = grads[0][i]
        if acc is None:
            continue
        acc.mul_(grad[1].view(-1, 1, 1))
        for j in range(2, len(grads) + 1):
            g = grads[j - 1][i]
            if g is not None:
                _ssim_native.spread(g, acc, grad[j], 2 ** (j - 1))
        _ssim_native.spread(acc, z, None, 2)


class _SSIMPyramid(torch.autograd.Function):
    """``(M, P)``: per-plane mean contrast-structure terms at scales ``0 .. M-2`` and mean SSIM at
    scale ``M-1`` of ``x, y (P, *spatial)`` (2x average pooling between scales; ``M = 1``: SSIM).

    Only the inputs are saved. The gradient of the finest scale (the bulk of the work) is computed
    in the forward pass, in the same strips as the values, when an input requires it: each plane's
    term depends on that plane only, so the backward pass just scales it per plane, in place. The
    coarser scales are recomputed in the backward pass and added to the full-resolution gradient
    through the adjoint of the pooling. Scale 1 is pooled from the inputs strip by strip, the
    coarser scales from one copy at scale 2 (see :func:`_coarse`). Where the native kernel applies
    (:func:`_native_level`, :func:`_native_coarse`), the coarse scales' gradients are computed in
    the forward pass too, and kept at their own resolutions (a third of an input).
    """

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, y: Tensor, window: Tensor, c1: float, c2: float, scales: int
                ) -> Tensor:
        ctx.save_for_backward(x, y, window)
        ctx.args = (c1, c2, scales)  # type: ignore[attr-defined]
        need = ctx.needs_input_grad[:2]  # type: ignore[attr-defined]
        grads = [torch.empty(z.shape, dtype=z.dtype, device=z.device) if wanted else None
                 for z, wanted in zip((x, y), need)]
        ctx.grads = grads  # type: ignore[attr-defined]
        ctx.coarse = None  # type: ignore[attr-defined]
        if x.shape[0] == 0:
            return x.new_zeros(scales, 0)
        values = []
        with torch.autocast(x.device.type, enabled=False):  # the GEMMs and convolutions in x's dtype
            sinks = [(j, z, None) for j, z in enumerate(grads) if z is not None]
            values.append(_level(x, y, window, c1, c2, scales > 1, sinks))
            coarse = _native_coarse(x, y, window, c1, c2, scales, need) if scales > 1 else None
            if coarse is not None:
                values.extend(coarse[0].unbind(0))
                ctx.coarse = coarse[1]  # type: ignore[attr-defined]
            else:
                for j, (xj, yj, pool) in enumerate(_coarse(x, y, scales), start=1):
                    values.append(_level(xj, yj, window, c1, c2, j < scales - 1, factor=2**j, pool=pool))
        return torch.stack(values)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, y, window = ctx.saved_tensors
        c1, c2, scales = ctx.args
        grads, ctx.grads = ctx.grads, None  # scaled in place: a second backward pass recomputes them
        coarse, ctx.coarse = ctx.coarse, None
        if x.shape[0] == 0:
            return (*[None if g is None else g.zero_() for g in grads], None, None, None, None)
        per_plane = (-1,) + (1,) * (x.dim() - 1)
        need = ctx.needs_input_grad[:2]
        with torch.autocast(x.device.type, enabled=False):
            if grads is None:  # exactly as in the forward pass, so that both passes agree bit for bit
                grads = [torch.empty(z.shape, dtype=z.dtype, device=z.device) if wanted else None
                         for z, wanted in zip((x, y), need)]
                _level(x, y, window, c1, c2, scales > 1, [(j, z, None) for j, z in enumerate(grads) if z is not None])
                if scales > 1:
                    recomputed = _native_coarse(x, y, window, c1, c2, scales, need)
                    coarse = None if recomputed is None else recomputed[1]
            for z in grads:
                if z is not None:
                    z.mul_(grad[0].view(per_plane))
            sinks = [(j, z, None) for j, z in enumerate(grads) if z is not None]
            if coarse is not None:
                _native_coarse_backward(coarse, sinks, grad)
                return grads[0], grads[1], None, None, None, None
            for j, (xj, yj, pool) in enumerate(_coarse(x, y, scales), start=1):
                _level(xj, yj, window, c1, c2, j < scales - 1, [(i, z, grad[j]) for i, z, _ in sinks], factor=2**j,
                       first=False, pool=pool)
        return grads[0], grads[1], None, None, None, None


def _ssim_pyramid(x: Tensor, y: Tensor, window: Tensor, data_range: float, k1: float, k2: float, scales: int
                  ) -> Tensor:
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    out: Tensor = _SSIMPyramid.apply(x, y, window, c1, c2, scales)  # type: ignore[no-untyped-call]
    return out


def _check_ssim_args(*, data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5, k1: float = 0.01,
                     k2: float = 0.03, loss: str = "ssim_loss", **_: object) -> None:
    check_range(data_range, "data_range", loss, low=0.0, low_inclusive=False)
    _check_window(window_size, loss)
    check_range(sigma, "sigma", loss, low=0.0, low_inclusive=False)
    check_range(k1, "k1", loss, low=0.0, low_inclusive=False)
    check_range(k2, "k2", loss, low=0.0, low_inclusive=False)


def _planes(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    n, c, *spatial = pred.shape
    return pred.reshape(n * c, *spatial), target.reshape(n * c, *spatial)


# ------------------------------------------------------------------------------------------- SSIM


@loss_function
def ssim_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""SSIM loss: one minus the mean structural similarity of each image.

    For image restoration and reconstruction, where SSIM tracks perceived quality better than a
    pixel-wise error; 2D and 3D images.

    .. math::
        U_n = 1 - \frac{1}{C|\Omega|} \sum_{c} \sum_{p \in \Omega}
              \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}{(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)},
        \quad C_1 = (k_1 L)^2,\ C_2 = (k_2 L)^2

    with local statistics from a Gaussian window (size ``window_size``, std ``sigma``) over the
    "valid" positions :math:`\Omega` (no padding, as in the authors' MATLAB code), :math:`L` the
    data range.

    Args:
        pred: Images ``(N, C, H, W)`` or volumes ``(N, C, D, H, W)``.
        target: Reference images, the shape of ``pred``.
        data_range: :math:`L`, the value range of the images (1.0 for ``[0, 1]``, 255 for 8 bits).
        window_size: Odd size of the Gaussian window.
        sigma: Standard deviation of the window, > 0.
        k1, k2: Stabilising constants, > 0.
        reduction, sample_weight, mask: See the conventions page. Unit: one image.

    Shape:
        - pred, target: ``(N, C, *spatial)``, 2 or 3 spatial dimensions, each at least ``window_size``.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested; each image's value is in ``[0, 2]`` (0 for identical images).

    Raises:
        ShapeError: If the shapes differ or the layout is not ``(N, C, *spatial)``.
        TypeError: If an input is not floating point, or ``window_size`` is not an int.
        ValueError: If an image is smaller than the window (the message names the minimum size),
            ``window_size`` is even, or a constant is not positive.

    Note:
        Constant images have zero variance; :math:`C_1, C_2 > 0` keep every ratio finite. The
        variance :math:`\sigma_x^2 + \sigma_y^2` is clamped at 0 against rounding. The local
        statistics are filtered in strips; when an input requires a gradient, its gradient is
        computed in the same pass (each image's loss depends on that image only, so the backward
        pass just scales it), so the extra memory is the gradient plus one strip's working set
        (a few MiB) whatever the image size; double backward is not supported. Float32 2D images
        on the CPU go through a native kernel (the same formulas, to float32 rounding).
        Parameter mapping: pytorch-msssim's ``1 - ssim(X, Y, data_range=L, size_average=False)``
        equals ``reduction="none"``; kornia's ``ssim_loss(x, y, window_size, max_val=L, eps=0,
        padding="valid")`` equals half of this loss (kornia uses :math:`(1 - \mathrm{SSIM}) / 2`,
        averaged over pixels).

    References:
        Wang, Bovik, Sheikh & Simoncelli, *Image Quality Assessment: From Error Visibility to
        Structural Similarity*, IEEE TIP 2004. https://doi.org/10.1109/TIP.2003.819861

    Examples:
        >>> import torch
        >>> from lossforge.functional import ssim_loss
        >>> x = torch.linspace(0, 1, 256).view(1, 1, 16, 16)
        >>> ssim_loss(x, x)
        tensor(0.)
        >>> ssim_loss(x, (x + 0.1 * torch.cos(torch.arange(256.0)).view(1, 1, 16, 16)).clamp(0, 1), window_size=7)
        tensor(0.2316)
    """
    check_reduction(reduction, "ssim_loss")
    _check_ssim_args(data_range=data_range, window_size=window_size, sigma=sigma, k1=k1, k2=k2)
    pred, target = _prepare(pred, target, "ssim_loss", (2, 3))
    _check_size(pred, window_size, "ssim_loss", f"window_size={window_size}")
    x, y = _planes(pred, target)
    window = _gaussian_window(window_size, float(sigma), pred.dtype, pred.device)
    s = _ssim_pyramid(x, y, window, float(data_range), float(k1), float(k2), 1)[0]
    u = 1 - s.view(pred.shape[0], pred.shape[1]).mean(1)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="ssim_loss")


def _check_ms_ssim_args(*, weights: Sequence[float] | None = None, **kwargs: Any) -> None:
    _check_ssim_args(loss="ms_ssim_loss", **kwargs)
    if weights is not None:
        if isinstance(weights, Tensor) or not isinstance(weights, Sequence) or len(weights) == 0:
            raise TypeError(message("ms_ssim_loss", "weights", "must be a non-empty sequence of floats",
                                    type(weights).__name__))
        for w in weights:
            check_range(w, "weights", "ms_ssim_loss", low=0.0)


@loss_function
def ms_ssim_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    weights: Sequence[float] | None = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Multi-scale SSIM loss: one minus the weighted geometric mean of SSIM terms over scales.

    SSIM evaluated on an image pyramid (2x average pooling between scales), which weighs coarse
    structure as well as fine detail.

    .. math::
        U_n = 1 - \frac{1}{C}\sum_c \mathrm{SSIM}_M^{\,w_M} \prod_{j=1}^{M-1} \mathrm{CS}_j^{\,w_j},
        \qquad \mathrm{CS} = \overline{\frac{2\sigma_{xy} + C_2}{\sigma_x^2 + \sigma_y^2 + C_2}}

    where :math:`\mathrm{CS}_j` is the mean contrast-structure term at scale :math:`j` and
    :math:`\mathrm{SSIM}_M` the mean SSIM at the coarsest scale, each clamped at 0.

    Args:
        pred: Images ``(N, C, H, W)`` or volumes ``(N, C, D, H, W)``.
        target: Reference images, the shape of ``pred``.
        data_range: :math:`L`, the value range of the images.
        window_size: Odd size of the Gaussian window.
        sigma: Standard deviation of the window, > 0.
        k1, k2: Stabilising constants, > 0.
        weights: Exponents :math:`w_j`, finest scale first; their number is the number of scales
            (default: the paper's five, ``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``).
        reduction, sample_weight, mask: See the conventions page. Unit: one image.

    Shape:
        - pred, target: ``(N, C, *spatial)``, 2 or 3 spatial dimensions, each at least
          ``window_size * 2 ** (M - 1)`` (176 for the defaults).
        - output: ``(N,)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested; 0 for identical images.

    Raises:
        ShapeError: If the shapes differ or the layout is not ``(N, C, *spatial)``.
        TypeError: If an input is not floating point, or ``weights`` is not a sequence.
        ValueError: If an image is smaller than the minimum size (the message names it), or a
            parameter is out of range.

    Note:
        The CS and SSIM terms are clamped at 0 before the fractional powers, with a zero gradient
        where clamped, so negative correlations never give NaN. Pooling floors odd sizes.
        Parameter mapping: pytorch-msssim's ``1 - ms_ssim(X, Y, data_range=L, size_average=False)``
        equals ``reduction="none"`` for sizes divisible by :math:`2^{M-1}` (it pads odd sizes).

    References:
        Wang, Simoncelli & Bovik, *Multiscale Structural Similarity for Image Quality Assessment*,
        Asilomar 2003. https://doi.org/10.1109/ACSSC.2003.1292216

    Examples:
        >>> import torch
        >>> from lossforge.functional import ms_ssim_loss
        >>> x = torch.linspace(0, 1, 1024).view(1, 1, 32, 32)
        >>> ms_ssim_loss(x, x, window_size=3, weights=(0.5, 0.5))
        tensor(0.)
    """
    check_reduction(reduction, "ms_ssim_loss")
    _check_ms_ssim_args(data_range=data_range, window_size=window_size, sigma=sigma, k1=k1, k2=k2, weights=weights)
    w = MS_SSIM_WEIGHTS if weights is None else tuple(float(v) for v in weights)
    pred, target = _prepare(pred, target, "ms_ssim_loss", (2, 3))
    minimum = window_size * 2 ** (len(w) - 1)
    _check_size(pred, minimum, "ms_ssim_loss", f"window_size={window_size} at {len(w)} scales")
    x, y = _planes(pred, target)
    window = _gaussian_window(window_size, float(sigma), pred.dtype, pred.device)
    values = _ssim_pyramid(x, y, window, float(data_range), float(k1), float(k2), len(w))  # (M, P)
    exponents = values.new_tensor(w).unsqueeze(-1)
    positive = values > 0
    powered = torch.where(positive, torch.where(positive, values, values.new_ones(())) ** exponents,
                          values.new_zeros(()))
    ms = powered.prod(0).view(pred.shape[0], pred.shape[1]).mean(1)
    return reduce_loss(1 - ms, reduction, sample_weight=sample_weight, mask=mask, loss_name="ms_ssim_loss")


# ------------------------------------------------------------------------------------------- PSNR


def _check_psnr_args(*, data_range: float = 1.0, eps: float = 1e-10, **_: object) -> None:
    check_range(data_range, "data_range", "psnr_loss", low=0.0, low_inclusive=False)
    check_range(eps, "eps", "psnr_loss", low=0.0, low_inclusive=False)


@loss_function
def psnr_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    data_range: float = 1.0,
    eps: float = 1e-10,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""PSNR loss: the negative peak signal-to-noise ratio of each image, in decibels.

    Minimising it maximises PSNR; it is MSE on a log scale, so each image's contribution is
    relative to its own error.

    .. math::
        U_n = -10 \log_{10} \frac{L^2}{\max(\mathrm{MSE}_n,\ \varepsilon L^2)}, \qquad
        \mathrm{MSE}_n = \frac{1}{|x_n|}\sum (x_n - y_n)^2

    Args:
        pred: Images ``(N, *)`` (any layout; each sample is one image).
        target: Reference images, the shape of ``pred``.
        data_range: :math:`L`, the value range of the images.
        eps: Floor of the MSE relative to :math:`L^2`; caps PSNR at :math:`-10\log_{10}\varepsilon`
            (100 dB by default).
        reduction, sample_weight, mask: See the conventions page. Unit: one image.

    Shape:
        - pred, target: ``(N, *)``, equal.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss in decibels (negative: -30 means 30 dB), reduced as requested.

    Raises:
        ShapeError: If the shapes differ or the input is 0-d.
        TypeError: If an input is not floating point.
        ValueError: If ``data_range`` or ``eps`` is not positive.

    Note:
        Identical images give :math:`10\log_{10}\varepsilon` (-100 dB), never ``-inf`` or NaN; the
        gradient there is 0. The mean over a batch averages per-image PSNRs (not the PSNR of the
        batch MSE). Parameter mapping: kornia's ``psnr_loss(x, y, max_val=L)`` computes the PSNR of
        the whole batch's MSE; for a batch of one image it equals this loss.

    References:
        Huynh-Thu & Ghanbari, *Scope of validity of PSNR in image/video quality assessment*,
        Electronics Letters 2008. https://doi.org/10.1049/el:20080522

    Examples:
        >>> import torch
        >>> from lossforge.functional import psnr_loss
        >>> psnr_loss(torch.full((1, 4), 0.5), torch.full((1, 4), 0.6))
        tensor(-20.0000)
        >>> psnr_loss(torch.ones(1, 4), torch.ones(1, 4))
        tensor(-100.)
    """
    check_reduction(reduction, "psnr_loss")
    _check_psnr_args(data_range=data_range, eps=eps)
    check_float(pred, "pred", "psnr_loss")
    check_float(target, "target", "psnr_loss")
    check_same_shape(pred, target, "psnr_loss")
    if pred.dim() == 0:
        raise ShapeError(message("psnr_loss", "pred", "must have shape (N, *)", "a 0-d tensor"),
                         expected="(N, *)", actual=())
    pred, target = upcast(pred), upcast(target)
    err = (pred - target).square()
    mse = _per_image(err)
    peak = float(data_range) ** 2
    u = 10 * torch.log10(mse.clamp_min(float(eps) * peak)) - 10 * math.log10(peak)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="psnr_loss")


# ------------------------------------------------------------------------------- gradient-based losses


def _differences(x: Tensor) -> list[Tensor]:
    """Forward differences of ``x (N, C, *spatial)`` along each spatial dimension of size >= 2."""
    return [x.diff(dim=d) for d in range(2, x.dim()) if x.shape[d] >= 2]


def _abs_pow(x: Tensor, p: float) -> Tensor:
    if p == 1.0:
        return x.abs()
    if p == 2.0:
        return x.square()
    return x.abs() ** p


def _check_tv_args(*, p: float = 1.0, **_: object) -> None:
    check_range(p, "p", "total_variation_loss", low=1.0)


@loss_function
def total_variation_loss(
    pred: Tensor,
    /,
    *,
    p: float = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Total variation: the mean absolute difference between neighbouring pixels, summed over axes.

    A smoothness regulariser (denoising, deblurring, style transfer, deformation fields); it takes
    one image and no target.

    .. math::
        U_n = \sum_{d} \frac{1}{|\Delta_d|} \sum_{c,\,i} \big|x_{n,c,i + e_d} - x_{n,c,i}\big|^p

    where :math:`d` runs over the spatial axes (of size at least 2) and :math:`|\Delta_d|` is the
    number of differences along axis :math:`d`.

    Args:
        pred: Images ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``.
        p: Exponent :math:`p \ge 1` of the differences (1: anisotropic TV; 2: squared gradients).
        reduction, sample_weight, mask: See the conventions page. Unit: one image.

    Shape:
        - pred: ``(N, C, *spatial)``, 1 to 3 spatial dimensions.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the layout is not ``(N, C, *spatial)``.
        TypeError: If ``pred`` is not floating point.
        ValueError: If ``p < 1``.

    Note:
        Axes of size 1 contribute 0. The gradient of :math:`|x|` at 0 is 0. Parameter mapping:
        kornia's ``total_variation(img, reduction="sum")`` returns per-(N, C) sums; this loss
        divides each axis's sum by its count and averages over channels.

    References:
        Rudin, Osher & Fatemi, *Nonlinear total variation based noise removal algorithms*,
        Physica D 1992. https://doi.org/10.1016/0167-2789(92)90242-F

    Examples:
        >>> import torch
        >>> from lossforge.functional import total_variation_loss
        >>> total_variation_loss(torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]]))
        tensor(1.)
    """
    check_reduction(reduction, "total_variation_loss")
    _check_tv_args(p=p)
    x, _ = _prepare(pred, None, "total_variation_loss")
    diffs = _differences(x)
    u = sum((_per_image(_abs_pow(d, float(p))) for d in diffs[1:]), _per_image(_abs_pow(diffs[0], float(p)))) \
        if diffs else 0 * x.flatten(1).sum(1)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="total_variation_loss")


def _check_gdl_args(*, alpha: float = 1.0, **_: object) -> None:
    check_range(alpha, "alpha", "gradient_difference_loss", low=1.0)


@loss_function
def gradient_difference_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    alpha: float = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Gradient difference loss: the difference of the absolute image gradients of prediction and target.

    Sharpens predicted images (video prediction, super-resolution) by matching edges rather than
    intensities; usually added to an L1 or L2 loss.

    .. math::
        U_n = \sum_d \frac{1}{|\Delta_d|} \sum_{c,\,i}
              \Big|\, |\Delta_d y_{n,c,i}| - |\Delta_d x_{n,c,i}| \,\Big|^\alpha

    Args:
        pred: Images ``(N, C, *spatial)``, 1 to 3 spatial dimensions.
        target: Reference images, the shape of ``pred``.
        alpha: Exponent :math:`\alpha \ge 1` (the paper uses 1 or 2).
        reduction, sample_weight, mask: See the conventions page. Unit: one image.

    Shape:
        - pred, target: ``(N, C, *spatial)``, equal.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ or the layout is not ``(N, C, *spatial)``.
        TypeError: If an input is not floating point.
        ValueError: If ``alpha < 1``.

    Note:
        The paper sums over pixels; this loss averages each axis's differences, so it does not grow
        with the image size. Axes of size 1 contribute 0.

    References:
        Mathieu, Couprie & LeCun, *Deep multi-scale video prediction beyond mean square error*,
        ICLR 2016. https://arxiv.org/abs/1511.05440

    Examples:
        >>> import torch
        >>> from lossforge.functional import gradient_difference_loss
        >>> x = torch.tensor([[[[0.0, 1.0, 2.0]]]])
        >>> gradient_difference_loss(x, 2 * x)
        tensor(1.)
    """
    check_reduction(reduction, "gradient_difference_loss")
    _check_gdl_args(alpha=alpha)
    x, y = _prepare(pred, target, "gradient_difference_loss")
    terms = [_per_image(_abs_pow(dy.abs() - dx.abs(), float(alpha)))
             for dx, dy in zip(_differences(x), _differences(y))]
    u = sum(terms[1:], terms[0]) if terms else 0 * (x + y).flatten(1).sum(1)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="gradient_difference_loss")


# ----------------------------------------------------------------------------------------- spectral


@loss_function
def spectral_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Spectral loss: squared difference of the Fourier magnitudes of prediction and target.

    Matches the frequency content (texture, sharpness) of images or signals independently of phase
    (position), as in Jukebox's spectral loss.

    .. math::
        U_n = \frac{1}{C\,|\Omega|}\sum_{c}\sum_{\omega}
              \big(|\mathcal{F}x_{n,c}(\omega)| - |\mathcal{F}y_{n,c}(\omega)|\big)^2

    with :math:`\mathcal{F}` the orthonormal discrete Fourier transform over the spatial axes.

    Args:
        pred: Signals or images ``(N, C, *spatial)``, 1 to 3 spatial dimensions.
        target: References, the shape of ``pred``.
        reduction, sample_weight, mask: See the conventions page. Unit: one image.

    Shape:
        - pred, target: ``(N, C, *spatial)``, equal.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ or the layout is not ``(N, C, *spatial)``.
        TypeError: If an input is not floating point.

    Note:
        The magnitude's gradient at a zero frequency component is 0 (``torch.abs`` of a complex 0).
        Parameter mapping: MONAI's ``JukeboxLoss(spatial_dims=d)`` transforms over the channel axis
        as well; for ``C = 1`` its mean equals this loss's mean.

    References:
        Dhariwal et al., *Jukebox: A Generative Model for Music*, 2020, §3.3.
        https://arxiv.org/abs/2005.00341

    Examples:
        >>> import torch
        >>> from lossforge.functional import spectral_loss
        >>> x = torch.tensor([[[1.0, 0.0, 0.0, 0.0]]])
        >>> spectral_loss(x, x.roll(1, -1))  # a shift keeps the magnitudes
        tensor(0.)
    """
    check_reduction(reduction, "spectral_loss")
    x, y = _prepare(pred, target, "spectral_loss")
    if x.numel() == 0:
        return reduce_loss(0 * (x + y).flatten(1).sum(1), reduction, sample_weight=sample_weight, mask=mask,
                           loss_name="spectral_loss")
    dims = tuple(range(2, x.dim()))
    fx = torch.fft.fftn(x, dim=dims, norm="ortho").abs()
    fy = torch.fft.fftn(y, dim=dims, norm="ortho").abs()
    u = _per_image((fx - fy).square())
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="spectral_loss")


# ---------------------------------------------------------------------------------------- local NCC


def _check_ncc_args(*, window_size: int = 9, eps: float = 1e-5, **_: object) -> None:
    _check_window(window_size, "local_ncc_loss", odd=False)
    check_range(eps, "eps", "local_ncc_loss", low=0.0, low_inclusive=False)


@loss_function
def local_ncc_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    window_size: int = 9,
    eps: float = 1e-5,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Local normalised cross-correlation loss: one minus the mean squared local correlation.

    The similarity of deformable image registration (VoxelMorph): invariant to local affine
    changes of intensity, so it works across contrasts of one modality.

    .. math::
        U_n = 1 - \frac{1}{C|\Omega|}\sum_{c}\sum_{p \in \Omega}
              \frac{\mathrm{cov}_p(x, y)^2}{\max(\mathrm{var}_p(x), \varepsilon)\,\max(\mathrm{var}_p(y), \varepsilon)}

    with :math:`\mathrm{cov}_p, \mathrm{var}_p` the sums of centred products over the box window
    of side ``window_size`` at position :math:`p`, over the "valid" positions :math:`\Omega`.

    Args:
        pred: Images ``(N, C, *spatial)``, 1 to 3 spatial dimensions (registration: ``C = 1``).
        target: Reference images, the shape of ``pred``.
        window_size: Side of the square (cubic) window, >= 1.
        eps: Floor of each window's variance sum, > 0.
        reduction, sample_weight, mask: See the conventions page. Unit: one image.

    Shape:
        - pred, target: ``(N, C, *spatial)``, equal, each spatial size at least ``window_size``.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested; each image's value is in ``[0, 1]``.

    Raises:
        ShapeError: If the shapes differ or the layout is not ``(N, C, *spatial)``.
        TypeError: If an input is not floating point.
        ValueError: If an image is smaller than the window or ``eps <= 0``.

    Note:
        Windows where either image is constant have correlation 0 (the variance floor), so two
        identical constant images give 1, not 0. Only windows inside the image count (no zero
        padding). Parameter mapping: MONAI's ``LocalNormalizedCrossCorrelationLoss(spatial_dims=d,
        kernel_size=w, kernel_type="rectangular", smooth_nr=0, smooth_dr=eps, reduction="none")``
        returns minus the correlation map with zero padding; on the interior positions
        (``w // 2`` from each border) this loss equals ``1 + mean(map)``.

    References:
        Balakrishnan et al., *VoxelMorph: A Learning Framework for Deformable Medical Image
        Registration*, IEEE TMI 2019. https://arxiv.org/abs/1809.05231

    Examples:
        >>> import torch
        >>> from lossforge.functional import local_ncc_loss
        >>> x = torch.arange(36.0).view(1, 1, 6, 6).sin()
        >>> local_ncc_loss(x, 3 * x + 1, window_size=3).abs() < 1e-6  # affine change of intensity: no loss
        tensor(True)
    """
    check_reduction(reduction, "local_ncc_loss")
    _check_ncc_args(window_size=window_size, eps=eps)
    x, y = _prepare(pred, target, "local_ncc_loss")
    _check_size(x, window_size, "local_ncc_loss", f"window_size={window_size}")
    c, d = x.shape[1], x.dim() - 2
    volume = float(window_size**d)
    pool = _POOL[d]
    stats = pool(torch.cat([x, y, x * x, y * y, x * y], dim=1), window_size, stride=1)
    mx, my, exx, eyy, exy = stats.split(c, dim=1)
    cross = volume * (exy - mx * my)
    var_x = (volume * (exx - mx * mx)).clamp_min(float(eps))
    var_y = (volume * (eyy - my * my)).clamp_min(float(eps))
    ncc = cross.square() / (var_x * var_y)
    u = 1 - _per_image(ncc)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="local_ncc_loss")


# ---------------------------------------------------------------------------------------- modules


class SSIMLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.ssim_loss`.

    Args:
        data_range: Value range of the images.
        window_size: Odd Gaussian window size.
        sigma: Window standard deviation.
        k1, k2: Stabilising constants.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = ssim_loss
    validate = _check_ssim_args

    def __init__(self, *, data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5, k1: float = 0.01,
                 k2: float = 0.03, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, data_range=data_range, window_size=window_size, sigma=sigma, k1=k1,
                         k2=k2)


class MSSSIMLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.ms_ssim_loss`.

    Args:
        data_range: Value range of the images.
        window_size: Odd Gaussian window size.
        sigma: Window standard deviation.
        k1, k2: Stabilising constants.
        weights: Per-scale exponents, finest first (default: the paper's five).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = ms_ssim_loss
    validate = _check_ms_ssim_args

    def __init__(self, *, data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5, k1: float = 0.01,
                 k2: float = 0.03, weights: Sequence[float] | None = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, data_range=data_range, window_size=window_size, sigma=sigma, k1=k1,
                         k2=k2, weights=tuple(weights) if isinstance(weights, list) else weights)


class PSNRLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.psnr_loss`.

    Args:
        data_range: Value range of the images.
        eps: MSE floor relative to ``data_range ** 2``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = psnr_loss
    validate = _check_psnr_args

    def __init__(self, *, data_range: float = 1.0, eps: float = 1e-10, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, data_range=data_range, eps=eps)


class TotalVariationLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.total_variation_loss`.

    Args:
        p: Exponent of the differences, >= 1.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = total_variation_loss
    validate = _check_tv_args

    def __init__(self, *, p: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, p=p)


class GradientDifferenceLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.gradient_difference_loss`.

    Args:
        alpha: Exponent, >= 1.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = gradient_difference_loss
    validate = _check_gdl_args

    def __init__(self, *, alpha: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, alpha=alpha)


class SpectralLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.spectral_loss`.

    Args:
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = spectral_loss

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


class LocalNCCLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.local_ncc_loss`.

    Args:
        window_size: Side of the box window.
        eps: Variance floor.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = local_ncc_loss
    validate = _check_ncc_args

    def __init__(self, *, window_size: int = 9, eps: float = 1e-5, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, window_size=window_size, eps=eps)


# ----------------------------------------------------------------------------------- registration


def _pair(shape: tuple[int, ...], seed: int, dtype: torch.dtype, device: torch.device | str,
          noise: float = 0.2) -> tuple[Tensor, Tensor]:
    """A smooth-ish image in [0, 1] and a noisy copy of it (so SSIM terms are far from 0 and 1)."""
    g = generator(seed)
    target = rand(*shape, gen=g, dtype=torch.float64, device="cpu")
    pred = (target + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return pred.to(device=device, dtype=dtype), target.to(device=device, dtype=dtype)


def _image_samples(shapes: Sequence[tuple[tuple[int, ...], dict[str, Any]]]
                   ) -> Callable[[torch.dtype, torch.device | str], list[Sample]]:
    def samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        out = []
        for k, (shape, kw) in enumerate(shapes):
            out.append(Sample(_pair(shape, k, dtype, device), dict(kw), name=f"{shape} {kw}".strip()))
        return out

    return samples


def _single_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for k, (shape, kw) in enumerate([((3, 2, 6, 5), {}), ((2, 1, 7), {"p": 2.0}), ((2, 1, 3, 4, 4), {"p": 1.5})]):
        out.append(Sample((randn(*shape, gen=generator(k), dtype=dtype, device=device),), kw, name=f"{shape}"))
    return out


def _image_extremes(kw: dict[str, Any], shape: tuple[int, ...], single: bool = False
                    ) -> Callable[[torch.dtype, torch.device | str], list[Sample]]:
    def samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        g = generator(3)
        x = rand(*shape, gen=g, dtype=dtype, device=device)
        half = torch.full(shape, 0.5, dtype=dtype, device=device)
        big = randn(*shape, gen=g, dtype=dtype, device=device, scale=1e4)
        cases = [("constant", (half,) if single else (half, torch.full_like(half, 0.25))),
                 ("identical constant", (half,) if single else (half, half.clone())),
                 ("identical", (x,) if single else (x, x.clone())),
                 ("large values", (big,) if single else (big, big.flip(0)))]
        return [Sample(args, dict(kw), name=name) for name, args in cases]

    return samples


def _image_errors(loss: str, spatial: Sequence[int], extra: Sequence[ErrorSample] = (), *, single: bool = False,
                  small: tuple[tuple[int, ...], str] | None = None) -> Callable[[], list[ErrorSample]]:
    def errors() -> list[ErrorSample]:
        shape = (2, 1) + (16,) * min(spatial)
        x = torch.rand(shape)

        def args(*ts: Tensor) -> tuple[Tensor, ...]:
            return ts[:1] if single else ts

        out = [
            ErrorSample(args(x.long(), x), {}, TypeError, rf"{loss}: pred must be a floating-point tensor"),
            ErrorSample(args(x.flatten(), x.flatten()), {}, ValueError,
                        rf"{loss}: pred must have shape {re.escape(_layout(spatial))}, got \(\d+,\)"),
            ErrorSample(args(x, x), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
            ErrorSample(args(x, x), {"weight": torch.ones(2)}, TypeError, r"Hint: use sample_weight="),
            *extra,
        ]
        if not single:
            out.append(ErrorSample((x, x[:1]), {}, ValueError, rf"{loss}: target must have the shape of pred"))
        if small is not None:
            size, pattern = small
            t = torch.rand(size)
            out.append(ErrorSample(args(t, t), {}, ValueError, pattern))
        return out

    return errors


_SSIM_ERRORS = [
    ErrorSample((torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)), {"window_size": 4}, ValueError,
                r"window_size must be a positive odd int, got 4"),
    ErrorSample((torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)), {"data_range": 0.0}, ValueError,
                r"data_range must be > 0, got 0.0"),
    ErrorSample((), {"sigma": -1.0}, ValueError, r"sigma must be > 0", at_construction=True),
    ErrorSample((), {"window_size": 2.5}, TypeError, r"window_size must be an int", at_construction=True),
]

register_loss(
    name="ssim", function=ssim_loss, module=SSIMLoss, family="image", input_kind="real", target_kind="real",
    unit="image", reference="Wang et al. 2004, IEEE TIP, doi:10.1109/TIP.2003.819861",
    sample_inputs=_image_samples([((2, 2, 12, 10), {"window_size": 5}), ((1, 2, 7, 8, 9), {"window_size": 3}),
                                  ((2, 3, 11, 11), {"data_range": 2.0, "sigma": 1.0})]),
    extreme_inputs=_image_extremes({"window_size": 5}, (2, 1, 9, 9)),
    error_inputs=_image_errors("ssim_loss", (2, 3), _SSIM_ERRORS, small=(
        (1, 1, 8, 8), r"ssim_loss: pred must have every spatial size >= 11 \(window_size=11\), got spatial size "
                      r"\(8, 8\)")),
)
register_loss(
    name="ms_ssim", function=ms_ssim_loss, module=MSSSIMLoss, family="image", input_kind="real", target_kind="real",
    unit="image", reference="Wang, Simoncelli & Bovik 2003, doi:10.1109/ACSSC.2003.1292216",
    sample_inputs=_image_samples([((2, 2, 13, 12), {"window_size": 3, "weights": (0.3, 0.3, 0.4)}),
                                  ((1, 1, 8, 8, 8), {"window_size": 3, "weights": (0.5, 0.5)})]),
    extreme_inputs=_image_extremes({"window_size": 3, "weights": (0.3, 0.3, 0.4)}, (2, 1, 12, 12)),
    error_inputs=_image_errors("ms_ssim_loss", (2, 3), [
        ErrorSample((torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)), {"weights": 0.5}, TypeError,
                    r"weights must be a non-empty sequence"),
        ErrorSample((), {"weights": (0.5, -0.5)}, ValueError, r"weights must be >= 0, got -0.5",
                    at_construction=True),
    ], small=((1, 1, 100, 200), r"ms_ssim_loss: pred must have every spatial size >= 176 \(window_size=11 at 5 "
                                r"scales\), got spatial size \(100, 200\)")),
)
register_loss(
    name="psnr", function=psnr_loss, module=PSNRLoss, family="image", input_kind="real", target_kind="real",
    unit="image", reference="Huynh-Thu & Ghanbari 2008, doi:10.1049/el:20080522",
    sample_inputs=_image_samples([((3, 2, 5, 4), {}), ((4, 6), {"data_range": 2.0})]),
    extreme_inputs=_image_extremes({}, (2, 1, 4, 4)),
    error_inputs=lambda: [
        ErrorSample((torch.rand(2, 3), torch.rand(2, 3).long()), {}, TypeError,
                    r"psnr_loss: target must be a floating-point tensor"),
        ErrorSample((torch.rand(2, 3), torch.rand(2, 4)), {}, ValueError, r"target must have the shape of pred"),
        ErrorSample((torch.tensor(1.0), torch.tensor(1.0)), {}, ValueError, r"pred must have shape \(N, \*\)"),
        ErrorSample((torch.rand(2, 3), torch.rand(2, 3)), {"eps": 0.0}, ValueError, r"eps must be > 0"),
        ErrorSample((torch.rand(2, 3), torch.rand(2, 3)), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((), {"data_range": -1.0}, ValueError, r"data_range must be > 0", at_construction=True),
    ],
)
register_loss(
    name="total_variation", function=total_variation_loss, module=TotalVariationLoss, family="image",
    input_kind="real", target_kind="none", unit="image", reference="Rudin, Osher & Fatemi 1992, Physica D",
    sample_inputs=_single_samples, extreme_inputs=_image_extremes({}, (2, 1, 5, 5), single=True),
    error_inputs=_image_errors("total_variation_loss", (1, 2, 3), [
        ErrorSample((torch.rand(1, 1, 4, 4),), {"p": 0.5}, ValueError, r"p must be >= 1, got 0.5"),
    ], single=True),
)
register_loss(
    name="gradient_difference", function=gradient_difference_loss, module=GradientDifferenceLoss, family="image",
    input_kind="real", target_kind="real", unit="image", reference="Mathieu et al. 2016, arXiv:1511.05440",
    sample_inputs=_image_samples([((3, 2, 6, 5), {}), ((2, 1, 9), {"alpha": 2.0}), ((2, 1, 3, 4, 4), {})]),
    extreme_inputs=_image_extremes({}, (2, 1, 5, 5)),
    error_inputs=_image_errors("gradient_difference_loss", (1, 2, 3), [
        ErrorSample((torch.rand(1, 1, 4, 4), torch.rand(1, 1, 4, 4)), {"alpha": 0.0}, ValueError,
                    r"alpha must be >= 1, got 0.0"),
    ]),
)
register_loss(
    name="spectral", function=spectral_loss, module=SpectralLoss, family="image", input_kind="real",
    target_kind="real", unit="image", reference="Dhariwal et al. 2020 (Jukebox), arXiv:2005.00341",
    sample_inputs=_image_samples([((3, 2, 6, 5), {}), ((2, 1, 8), {}), ((1, 2, 3, 4, 4), {})]),
    extreme_inputs=_image_extremes({}, (2, 1, 5, 5)),
    error_inputs=_image_errors("spectral_loss", (1, 2, 3)),
)
register_loss(
    name="local_ncc", function=local_ncc_loss, module=LocalNCCLoss, family="image", input_kind="real",
    target_kind="real", unit="image", reference="Balakrishnan et al. 2019 (VoxelMorph), arXiv:1809.05231",
    sample_inputs=_image_samples([((2, 1, 8, 7), {"window_size": 3}), ((2, 1, 5, 5, 6), {"window_size": 3}),
                                  ((3, 2, 12), {"window_size": 5})]),
    extreme_inputs=_image_extremes({"window_size": 3}, (2, 1, 6, 6)),
    error_inputs=_image_errors("local_ncc_loss", (1, 2, 3), [
        ErrorSample((torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8)), {"eps": 0.0}, ValueError,
                    r"eps must be > 0"),
        ErrorSample((), {"window_size": 0}, ValueError, r"window_size must be >= 1, got 0", at_construction=True),
    ], small=((1, 1, 5, 5), r"local_ncc_loss: pred must have every spatial size >= 9")),
)
