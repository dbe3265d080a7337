"""Image losses: a predicted image and a target image ``(N, C, *spatial)`` of one shape.

Every loss here has one unit, the image: ``U`` has shape ``(N,)``, each entry averaged over the
channels and the spatial positions of that image.

SSIM and MS-SSIM run through one autograd function (:class:`_SSIMStats`) that filters the four
local statistics (mean of x, mean of y, mean of x^2 + y^2, mean of xy) with a separable Gaussian
window, in strips along the first spatial dimension, and recomputes them in the backward pass
instead of saving them: the extra memory is one strip's working set plus the gradient, whatever
the image size. The gradient is written in closed form (see ``_SSIMStats.backward``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
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

__all__ = [
    "ssim_loss", "ms_ssim_loss", "psnr_loss", "total_variation_loss", "gradient_difference_loss",
    "spectral_loss", "local_ncc_loss",
    "SSIMLoss", "MSSSIMLoss", "PSNRLoss", "TotalVariationLoss", "GradientDifferenceLoss", "SpectralLoss",
    "LocalNCCLoss",
]

#: The five scale weights of Wang, Simoncelli & Bovik (2003), finest first.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

#: Elements of the four-map stack filtered at once (2 MiB in float32): the strip height follows,
#: never fewer output rows than the window size (so the recomputed halo is at most half a strip).
_STRIP_ELEMENTS = 1 << 19

_CONV: dict[int, Callable[..., Tensor]] = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
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


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _separable(x: Tensor, window: Tensor, *, adjoint: bool) -> Tensor:
    """Depthwise filtering of ``x (1, G, *spatial)`` with ``window`` along every spatial dimension.

    ``adjoint=False``: "valid" correlation (each size shrinks by ``k - 1``); ``adjoint=True``: its
    adjoint, the "full" convolution (each size grows by ``k - 1``).
    """
    d = x.dim() - 2
    groups, k = x.shape[1], window.numel()
    conv = _CONV[d]
    w = window.flip(0) if adjoint else window
    for i in (reversed(range(d)) if adjoint else range(d)):
        shape = [1] * d
        shape[i] = k
        pad = [0] * d
        pad[i] = k - 1 if adjoint else 0
        x = conv(x, w.view(1, 1, *shape).expand(groups, 1, *shape), padding=tuple(pad), groups=groups)
    return x


_CHANNELS_LAST = {2: torch.channels_last, 3: torch.channels_last_3d}


def _channels_last_buffer(m: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """An uninitialised ``(1, m*P, *S)`` channels-last tensor for maps like ``(P, *S)``, and its
    ``(m, P, *S)`` view to write the maps into."""
    planes, *sizes = like.shape
    fmt = _CHANNELS_LAST.get(len(sizes), torch.contiguous_format)
    buf = torch.empty((1, m * planes, *sizes), dtype=like.dtype, device=like.device, memory_format=fmt)
    return buf, buf[0].view(m, planes, *sizes)


def _filter_buffer(buf: Tensor, window: Tensor, m: int, *, adjoint: bool) -> Tensor:
    """Filter a stack from :func:`_channels_last_buffer`: ``(m, P, *S')``, contiguous (map-major, so
    the elementwise work that follows runs on contiguous memory)."""
    out = _separable(buf, window, adjoint=adjoint).contiguous()
    return out.view(m, out.shape[1] // m, *out.shape[2:])


def _statistics(xs: Tensor, ys: Tensor, window: Tensor) -> Tensor:
    """Filtered ``x, y, x^2 + y^2, xy`` of a strip ``(P, *S)``: ``(4, P, *S')``, contiguous."""
    buf, maps = _channels_last_buffer(4, xs)
    maps[0].copy_(xs)
    maps[1].copy_(ys)
    maps[2].copy_(torch.addcmul(xs * xs, ys, ys))
    maps[3].copy_(xs * ys)
    return _filter_buffer(buf, window, 4, adjoint=False)


def _ssim_terms(stats: Tensor, c1: float, c2: float) -> tuple[Tensor, ...]:
    """``A1, A2, B1, 1/B2, positive-variance mask`` from the filtered statistics (overwritten)."""
    mx, my, q, p = stats.unbind(0)
    mxy = mx * my
    m2 = torch.mul(mx, mx).addcmul_(my, my)
    var = q.sub_(m2)
    positive = var > 0
    inv_b2 = var.clamp_min_(0).add_(c2).reciprocal_()
    a2 = p.sub_(mxy).mul_(2).add_(c2)
    b1 = m2.add_(c1)
    a1 = mxy.mul_(2).add_(c1)
    return a1, a2, b1, inv_b2, positive


class _SSIMStats(torch.autograd.Function):
    """Per-plane means of the SSIM map and of the contrast-structure map of ``x, y (P, *spatial)``."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, y: Tensor, window: Tensor, c1: float, c2: float) -> tuple[Tensor, Tensor]:
        planes, k = x.shape[0], window.numel()
        ctx.save_for_backward(x, y, window)
        ctx.c = (c1, c2)  # type: ignore[attr-defined]
        s_sum = x.new_zeros(planes)
        cs_sum = x.new_zeros(planes)
        if planes == 0:
            return s_sum, cs_sum
        dims = tuple(range(1, x.dim()))
        for r0, r1 in _strips(x, k):
            stats = _statistics(x[:, r0:r1 + k - 1], y[:, r0:r1 + k - 1], window)
            a1, a2, b1, inv_b2, _ = _ssim_terms(stats, c1, c2)
            cs = a2.mul_(inv_b2)
            cs_sum += cs.sum(dims)
            s_sum += a1.mul_(cs).div_(b1).sum(dims)
        count = math.prod([n - k + 1 for n in x.shape[1:]])
        return s_sum / count, cs_sum / count

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_s: Tensor, grad_cs: Tensor) -> tuple[Tensor | None, ...]:
        # S = A1 A2 / (B1 B2), CS = A2 / B2 with A1 = 2 mx my + c1, A2 = 2 (p - mx my) + c2,
        # B1 = mx^2 + my^2 + c1, B2 = max(q - mx^2 - my^2, 0) + c2 (q = E[x^2 + y^2], p = E[xy]).
        # With ws = dL/dmean(S) / M and wc = dL/dmean(CS) / M per plane:
        #   dL/dq  = -t,  t = [var > 0] (ws S + wc CS) / B2
        #   dL/dp  = 2 (ws A1 / B1 + wc) / B2
        #   dL/dmx = 2 (my a + mx b),  dL/dmy = 2 (mx a + my b),
        #   a = (ws (A2 - A1) / B1 - wc) / B2,  b = t - ws S / B1,
        # and the image gradients follow by the adjoint filter (K^T):
        #   dx = K^T dmx + 2 x K^T dq + y K^T dp,  dy = K^T dmy + 2 y K^T dq + x K^T dp.
        x, y, window = ctx.saved_tensors
        c1, c2 = ctx.c
        need_x, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        planes, k = x.shape[0], window.numel()
        dx = torch.zeros_like(x) if need_x else None
        dy = torch.zeros_like(y) if need_y else None
        if planes == 0 or not (need_x or need_y):
            return dx, dy, None, None, None
        count = math.prod([n - k + 1 for n in x.shape[1:]])
        per_plane = (planes,) + (1,) * (x.dim() - 1)
        ws, wc = (grad_s / count).view(per_plane), (grad_cs / count).view(per_plane)
        # The maps filtered back: d/dmx (only if x needs it), d/dmy (only if y does), d/dq, d/dp.
        slots = [j for j, need in enumerate((need_x, need_y, True, True)) if need]
        for r0, r1 in _strips(x, k):
            rows = slice(r0, r1 + k - 1)
            xs, ys = x[:, rows], y[:, rows]
            stats = _statistics(xs, ys, window)
            mx, my = stats[0], stats[1]  # _ssim_terms overwrites only stats[2:]
            a1, a2, b1, inv_b2, positive = _ssim_terms(stats, c1, c2)
            cs = a2 * inv_b2
            s = torch.mul(a1, cs).div_(b1)
            t = torch.mul(s, ws).addcmul_(cs, wc).mul_(inv_b2).mul_(positive)
            del cs, positive
            a = a2.sub_(a1).mul_(ws).div_(b1).sub_(wc).mul_(inv_b2)
            b = s.div_(b1).mul_(ws).neg_().add_(t)
            buf, grads = _channels_last_buffer(len(slots), mx)
            out = dict(zip(slots, grads))
            if need_x:
                out[0].copy_(torch.addcmul(my * a, mx, b).mul_(2))
            if need_y:
                out[1].copy_(torch.addcmul(mx * a, my, b).mul_(2))
            out[2].copy_(t.neg_())
            out[3].copy_(a1.div_(b1).mul_(ws).add_(wc).mul_(inv_b2).mul_(2))
            del stats, mx, my, a1, a2, b1, inv_b2, t, a, b, grads, out
            back = dict(zip(slots, _filter_buffer(buf, window, len(slots), adjoint=True).unbind(0)))
            for d, own, other, slot in ((dx, xs, ys, 0), (dy, ys, xs, 1)):
                if d is not None:
                    part = d[:, rows]
                    part.add_(back[slot]).addcmul_(own, back[2], value=2).addcmul_(other, back[3])
        return dx, dy, None, None, None


def _strips(x: Tensor, k: int) -> list[tuple[int, int]]:
    """Output-row ranges ``[r0, r1)`` along the first spatial dimension of ``x (P, *spatial)``."""
    rows_out = x.shape[1] - k + 1
    per_row = 4 * x.shape[0] * math.prod(x.shape[2:])
    height = max(k, _STRIP_ELEMENTS // max(per_row, 1) - (k - 1))
    return [(r0, min(r0 + height, rows_out)) for r0 in range(0, rows_out, height)]


def _ssim_planes(x: Tensor, y: Tensor, window: Tensor, data_range: float, k1: float, k2: float
                 ) -> tuple[Tensor, Tensor]:
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    out: tuple[Tensor, Tensor] = _SSIMStats.apply(x, y, window, c1, c2)  # type: ignore[no-untyped-call]
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
        statistics are filtered in strips and recomputed in the backward pass (nothing is saved
        but the inputs), so the extra memory is the gradient plus one strip's working set (a few
        MiB) whatever the image size; double backward is not supported. Parameter mapping: pytorch-msssim's
        ``1 - ssim(X, Y, data_range=L, size_average=False)`` equals ``reduction="none"``; kornia's
        ``ssim_loss(x, y, window_size, max_val=L, eps=0, padding="valid")`` equals half of this
        loss (kornia uses :math:`(1 - \mathrm{SSIM}) / 2`, averaged over pixels).

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
    s, _ = _ssim_planes(x, y, window, float(data_range), float(k1), float(k2))
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
    pool = _POOL[pred.dim() - 2]
    terms = []
    for j in range(len(w)):
        s, cs = _ssim_planes(x, y, window, float(data_range), float(k1), float(k2))
        terms.append(s if j == len(w) - 1 else cs)
        if j < len(w) - 1:
            x = pool(x.unsqueeze(1), 2).squeeze(1)
            y = pool(y.unsqueeze(1), 2).squeeze(1)
    values = torch.stack(terms)  # (M, P)
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
