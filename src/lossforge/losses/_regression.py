"""Regression and robust losses: the prediction and the target are real tensors of one shape."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._core.base import FunctionLoss, loss_function
from .._core.checks import check_float, check_number, check_range, check_same_device, check_same_shape, upcast
from .._core.errors import ShapeError, message
from .._core.reduction import Reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, rand, randint, randn
from .._core.validation import validation_enabled
from ._fused import BlockFn, Kernel, PlainFn, SumFn, plain_float, reduced, transforms_active

__all__ = [
    "CauchyLoss",
    "CharbonnierLoss",
    "CosineEmbeddingLoss",
    "GaussianNLLLoss",
    "GemanMcclureLoss",
    "GeneralRobustLoss",
    "HuberLoss",
    "L1Loss",
    "LogCoshLoss",
    "MAPELoss",
    "MSELoss",
    "MSLELoss",
    "PoissonNLLLoss",
    "QuantileLoss",
    "SmoothL1Loss",
    "TukeyBiweightLoss",
    "WelschLoss",
    "WingLoss",
    "cauchy_loss",
    "charbonnier_loss",
    "cosine_embedding_loss",
    "gaussian_nll_loss",
    "geman_mcclure_loss",
    "general_robust_loss",
    "huber_loss",
    "l1_loss",
    "log_cosh_loss",
    "mape_loss",
    "mse_loss",
    "msle_loss",
    "poisson_nll_loss",
    "quantile_loss",
    "smooth_l1_loss",
    "tukey_biweight_loss",
    "welsch_loss",
    "wing_loss",
]

_LN2 = math.log(2.0)
_SOFTPLUS_OUT = torch.ops.aten.softplus.out
#: |x/c| beyond which 1 - exp(-(x/c)^2 / 2) is exactly 1 in float64 (exp(-2048) underflows).
_WELSCH_Z = 64.0
SampleFn = Callable[[torch.dtype, "torch.device | str"], list[Sample]]


# ----------------------------------------------------------------------------------------------
# shared helpers: samples, errors, checks, stable pieces
# ----------------------------------------------------------------------------------------------


def _randn(shape: tuple[int, ...], g: torch.Generator, dtype: torch.dtype, device: torch.device | str) -> Tensor:
    """``randn`` that also makes 0-dim tensors (``torch.randn(generator=...)`` needs a size)."""
    return randn(*(shape or (1,)), gen=g, dtype=dtype, device=device).reshape(shape)


def _rand(shape: tuple[int, ...], g: torch.Generator, dtype: torch.dtype, device: torch.device | str,
          low: float, high: float) -> Tensor:
    """``rand`` in ``[low, high)`` that also makes 0-dim tensors."""
    return rand(*(shape or (1,)), gen=g, dtype=dtype, device=device, low=low, high=high).reshape(shape)


def _real_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    """Typical (pred, target) pairs: 2-D, 3-D and a scalar."""
    out = []
    for seed, shape in enumerate([(6, 4), (3, 2, 5), ()]):
        g = generator(seed)
        out.append(Sample((_randn(shape, g, dtype, device), _randn(shape, g, dtype, device)), name=f"shape{shape}"))
    return out


def _samples_with(*variants: dict[str, Any]) -> SampleFn:
    """The typical pairs, then the first pair again with each set of hyper-parameters."""

    def samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        out = _real_samples(dtype, device)
        for kw in variants:
            out.append(Sample(out[0].args, dict(kw), name=", ".join(f"{k}={v}" for k, v in kw.items())))
        return out

    return samples


def _huge(dtype: torch.dtype) -> float:
    """1e30 where the dtype holds it, else 1e4 (float16)."""
    return 1e30 if torch.finfo(dtype).max > 1e35 else 1e4


def _extreme_pairs(magnitude: float | None = None, *variants: dict[str, Any]) -> SampleFn:
    """Residuals of +-``magnitude`` (default: 1e30, or 1e4 in float16), zero residuals and exact ties."""

    def samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        big = _huge(dtype) if magnitude is None else magnitude
        pred = torch.tensor([big, -big, big, 0.0, 1.0, -big / 2, 0.0], dtype=torch.float64)
        target = torch.tensor([-big, big, 0.0, big, 1.0, 0.5, 0.0], dtype=torch.float64)
        args = (pred.to(device=device, dtype=dtype), target.to(device=device, dtype=dtype))
        out = [Sample(args, name=f"+-{big:g}")]
        out += [Sample(args, dict(kw), name=f"+-{big:g}, " + ", ".join(f"{k}={v}" for k, v in kw.items()))
                for kw in variants]
        return out

    return samples


def _real_errors(loss: str, *, positive: bool = False) -> list[ErrorSample]:
    """Bad inputs shared by every (pred, target) regression loss (``positive``: valid values are >= 0)."""
    x = torch.randn(4, 3).abs() if positive else torch.randn(4, 3)
    return [
        ErrorSample((x, torch.randn(4)), {}, ValueError, rf"{loss}: target must have the shape of pred \(4, 3\)"),
        ErrorSample((torch.randn(4, 1), torch.randn(4)), {}, ValueError, r"got \(4,\).*Hint: pred.squeeze\(-1\)"),
        ErrorSample((x.long(), x), {}, TypeError, rf"{loss}: pred must be a floating-point tensor"),
        ErrorSample((x, x), {"reduction": "avg"}, ValueError, r"reduction must be one of .*Did you mean 'mean'"),
        ErrorSample((x, x), {"weight": torch.ones(4, 3)}, TypeError, r"weight=.*Hint: use sample_weight="),
    ]


def _hparam_errors(loss: str, *cases: tuple[dict[str, Any], type[BaseException], str]) -> list[ErrorSample]:
    """Each bad hyper-parameter set, at call time and at module construction."""
    x = torch.rand(4, 3)
    out = []
    for kwargs, exc, match in cases:
        out.append(ErrorSample((x, x.clone()), kwargs, exc, rf"{loss}: {match}"))
        out.append(ErrorSample((), kwargs, exc, rf"{loss}: {match}", at_construction=True))
    return out


def _prepare(pred: Tensor, target: Tensor, loss: str) -> tuple[Tensor, Tensor]:
    """Metadata checks and float32 compute for half inputs."""
    check_float(pred, "pred", loss)
    check_float(target, "target", loss)
    check_same_shape(pred, target, loss)
    return upcast(pred), upcast(target)


def _positive(value: object, argument: str, loss: str) -> float:
    return check_range(value, argument, loss, low=0.0, low_inclusive=False)


def _check_bool(value: object, argument: str, loss: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(message(loss, argument, "must be a bool", repr(value)))
    return value


def _check_min(x: Tensor, argument: str, loss: str, low: float, *, inclusive: bool) -> None:
    """Validation mode only: every value of ``x`` is ``>= low`` (or ``> low``); NaN is left to propagate."""
    if not validation_enabled() or x.numel() == 0:
        return
    lo = float(x.detach().nan_to_num(nan=math.inf).min())
    if lo < low or (not inclusive and lo == low):
        raise ValueError(message(loss, argument, f"must be {'>=' if inclusive else '>'} {low:g}",
                                 f"a minimum of {lo:g}"))


def _log1p_square(x: Tensor, k: float | Tensor) -> Tensor:
    """``log(1 + (x/k)^2)`` for ``k > 0``, finite with a finite gradient for every finite ``x``.

    Large ratios use ``2 (log|x| - log k) + log1p((k/x)^2)``, so neither ``x/k`` nor its
    square is formed where they could overflow.
    """
    a = x.abs()
    kt = k if isinstance(k, Tensor) else a.new_tensor(float(k))
    big = a > kt
    a_small = torch.where(big, a.new_zeros(()), a)  # double where: neither branch sees the other's inputs
    a_big = torch.where(big, a, kt)
    near = (a_small / kt).square().log1p()
    far = 2.0 * (a_big.log() - kt.log()) + (kt / a_big).square().log1p()
    return torch.where(big, far, near)


# ----------------------------------------------------------------------------------------------
# fused kernels of the residual losses (._fused): U(d) and dU/dd for d = pred - target, so that
# dU/dpred = f'(d) and dU/dtarget = -f'(d). Each ``_*_plain`` formula is the loss's definition
# and its fallback; each ``_*_block`` computes the same values (and the closed-form derivative) on
# one block without allocating beyond its scratch.
# ----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _constant(value: float, dtype: torch.dtype, device: torch.device, log: bool = False) -> Tensor:
    """A 0-dim tensor of ``value`` (or of its ``log``, computed by torch in ``dtype``), made once."""
    with torch.inference_mode(False), torch.no_grad():
        c = torch.tensor(value, dtype=dtype, device=device)
        return c.log() if log else c


def _residual_loss(block_fn: BlockFn, plain_fn: PlainFn, params: tuple[Any, ...], scratch: int,
                   pred: Tensor, target: Tensor, reduction: Reduction, *, sample_weight: Tensor | None,
                   mask: Tensor | None, loss_name: str, fast: SumFn | None = None,
                   native: tuple[str, tuple[float, ...]] | None = None) -> Tensor:
    """The reduced loss of ``pred - target``: the fused kernel for two plain float32/float64 tensors of
    one dtype, shape and device (a plain mean or sum never forming ``U``: ``._fused.reduced``), else
    (and under compile and ``torch.func``) the formula; either way reduced by ``reduce_loss``'s rules.

    ``fast`` is the kernel's ``sum_fn`` for a plain mean or sum, where the loss has one, and ``native``
    the name and parameters of the native kernel (``lossforge/_native/elementwise.c``) that computes the
    same for float32 in one pass.
    """
    if (torch.compiler.is_compiling() or transforms_active() or pred.dtype != target.dtype
            or pred.shape != target.shape or pred.device != target.device
            or not (plain_float(pred) and plain_float(target))):
        return reduce_loss(plain_fn(pred, target, None, *params), reduction, sample_weight=sample_weight,
                           mask=mask, loss_name=loss_name)
    name, native_params = native or (None, ())
    kernel = Kernel(block_fn, plain_fn, params, scratch, target_sign=-1.0, sum_fn=fast, native=name,
                    native_params=native_params)
    return reduced(kernel, pred, target, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss_name)


def _moderate(value: float) -> bool:
    """Whether a scale is far enough from 0 and infinity that its reciprocal and square stay normal
    float32 numbers (the fast block sums and gradients divide by it)."""
    return 1e-15 <= value <= 1e15


# Block sums of a plain mean or sum (._fused.reduced): ``*_sum(x, t, g, scale, s, *params)`` returns
# the block's sum of U and, unless ``g`` is None, writes ``scale * dU/dpred`` into ``g``. A sum may
# overflow to inf where U is still finite (``d^2``): the block is then done again with the ``*_block``
# kernel, which never overflows on finite inputs.


def _l1_sum(x: Tensor, t: Tensor, g: Tensor | None, scale: float, s: list[Tensor]) -> Tensor:
    d = torch.sub(x, t, out=s[0])
    if g is not None:
        torch.sign(d, out=g).mul_(_constant(scale, d.dtype, d.device))
    return d.abs_().sum()


def _mse_sum(x: Tensor, t: Tensor, g: Tensor | None, scale: float, s: list[Tensor]) -> Tensor:
    d = torch.sub(x, t, out=s[0])
    if g is not None:
        torch.mul(d, _constant(2.0 * scale, d.dtype, d.device), out=g)
    return d.square_().sum()


def _huber_sum(x: Tensor, t: Tensor, g: Tensor | None, scale: float, s: list[Tensor], delta: float) -> Tensor:
    """``U = c (d - c/2)`` and ``dU/dd = c``, ``c = clamp(d, -delta, delta)`` (= ``q (|d| - q/2)``,
    ``q = min(|d|, delta)``, the block kernel's form). (ATen's fused ``huber_loss`` and its backward,
    each a single pass, measured no faster: the forward allocates a temporary per block.)"""
    d = torch.sub(x, t, out=s[0])
    c = torch.clamp(d, -delta, delta, out=s[1])
    if g is not None:
        torch.mul(c, _constant(scale, d.dtype, d.device), out=g)
    return d.sub_(c, alpha=0.5).mul_(c).sum()


def _smooth_l1_sum(x: Tensor, t: Tensor, g: Tensor | None, scale: float, s: list[Tensor],
                   beta: float) -> Tensor:
    return _huber_sum(x, t, g, scale / beta, s, beta).div_(beta)


def _l1_plain(x: Tensor, t: Tensor, w: Tensor | None) -> Tensor:
    return (x - t).abs()


def _l1_block(x: Tensor, t: Tensor, w: Tensor | None, u: Tensor, g: Tensor | None, s: list[Tensor]) -> None:
    d = torch.sub(x, t, out=s[0])
    torch.abs(d, out=u)
    if g is not None:
        torch.sign(d, out=g)


def _mse_plain(x: Tensor, t: Tensor, w: Tensor | None) -> Tensor:
    return (x - t).square()


def _mse_block(x: Tensor, t: Tensor, w: Tensor | None, u: Tensor, g: Tensor | None, s: list[Tensor]) -> None:
    d = torch.sub(x, t, out=s[0])
    torch.mul(d, d, out=u)
    if g is not None:
        torch.mul(d, 2.0, out=g)


def _huber_plain(x: Tensor, t: Tensor, w: Tensor | None, delta: float) -> Tensor:
    return _huber_core((x - t).abs(), delta)


def _huber_block(x: Tensor, t: Tensor, w: Tensor | None, u: Tensor, g: Tensor | None, s: list[Tensor],
                 delta: float) -> None:
    """``U = q (|d| - q/2)``, ``q = min(|d|, delta)``; ``dU/dd = clamp(d, -delta, delta)``."""
    d, a, q = s
    torch.sub(x, t, out=d)
    torch.abs(d, out=a)
    torch.clamp(a, max=delta, out=q)
    torch.add(a, q, alpha=-0.5, out=u).mul_(q)
    if g is not None:
        torch.clamp(d, -delta, delta, out=g)


def _smooth_l1_plain(x: Tensor, t: Tensor, w: Tensor | None, beta: float) -> Tensor:
    a = (x - t).abs()
    return a if beta == 0 else _huber_core(a, beta) / beta


def _smooth_l1_block(x: Tensor, t: Tensor, w: Tensor | None, u: Tensor, g: Tensor | None, s: list[Tensor],
                     beta: float) -> None:
    _huber_block(x, t, w, u, g, s, beta)
    u.div_(beta)
    if g is not None:
        g.div_(beta)


def _log_cosh_plain(x: Tensor, t: Tensor, w: Tensor | None) -> Tensor:
    a = (x - t).abs()
    small = a < 1.0
    a_small = torch.where(small, a, a.new_zeros(()))  # double where: sinh never sees a large residual
    near = torch.sinh(0.5 * a_small).square().mul(2.0).log1p()
    far = a + F.softplus(-2.0 * a) - _LN2
    return torch.where(small, near, far)


def _log_cosh_block(x: Tensor, t: Tensor, w: Tensor | None, u: Tensor, g: Tensor | None, s: list[Tensor]) -> None:
    """``log1p(2 sinh(|d|/2)^2)`` below 1, ``|d| + softplus(-2|d|) - log 2`` beyond; ``dU/dd = tanh(d)``."""
    d, a, near, far = s
    torch.sub(x, t, out=d)
    torch.abs(d, out=a)
    torch.clamp(a, max=1.0, out=near).mul_(0.5)  # the small branch only keeps |d| < 1
    torch.sinh(near, out=near)
    near.mul_(near).mul_(2.0).log1p_()
    torch.mul(a, -2.0, out=far)
    _SOFTPLUS_OUT(far, 1, 20, out=far)
    far.add_(a).sub_(_LN2)
    torch.where(a < 1.0, near, far, out=u)
    if g is not None:
        torch.tanh(d, out=g)


def _charbonnier_plain(x: Tensor, t: Tensor, w: Tensor | None, eps: float) -> Tensor:
    d = x - t
    return torch.hypot(d, d.new_tensor(eps)) - eps


def _charbonnier_block(x: Tensor, t: Tensor, w: Tensor | None, u: Tensor, g: Tensor | None, s: list[Tensor],
                       eps: float) -> None:
    """``U = hypot(d, eps) - eps``, ``dU/dd = d / hypot(d, eps)``."""
    d, h = s
    torch.sub(x, t, out=d)
    torch.hypot(d, _constant(eps, d.dtype, d.device), out=h)
    torch.sub(h, eps, out=u)
    if g is not None:
        torch.div(d, h, out=g)


def _cauchy_plain(x: Tensor, t: Tensor, w: Tensor | None, k: float) -> Tensor:
    return _log1p_square(x - t, k)


def _cauchy_block(x: Tensor, t: Tensor, w: Tensor | None, u: Tensor, g: Tensor | None, s: list[Tensor],
                  k: float) -> None:
    """:func:`_log1p_square` of ``d``; ``dU/dd = 2 / (k (r + 1/r))``, ``r = d/k`` (no square to overflow)."""
    d, a, near, far, tmp = s
    kt = _constant(k, d.dtype, d.device)
    torch.sub(x, t, out=d)
    torch.abs(d, out=a)
    big = a > kt
    torch.clamp(a, max=k, out=near).div_(kt)  # the near branch only keeps |d| <= k
    near.mul_(near).log1p_()
    torch.clamp(a, min=k, out=far)  # the far branch only keeps |d| > k
    torch.div(kt, far, out=tmp).mul_(tmp).log1p_()
    far.log_().sub_(_constant(k, d.dtype, d.device, log=True)).mul_(2.0).add_(tmp)
    torch.where(big, far, near, out=u)
    if g is not None:
        torch.div(d, kt, out=g)
        g.add_(torch.reciprocal(g, out=tmp)).mul_(k).reciprocal_().mul_(2.0)


def _geman_mcclure_plain(x: Tensor, t: Tensor, w: Tensor | None, scale: float) -> Tensor:
    d = x - t
    r = d / torch.hypot(d, d.new_tensor(2.0 * scale))  # = z / hypot(z, 2), z = x / c never formed
    return 2.0 * r.square()


def _geman_mcclure_block(x: Tensor, t: Tensor, w: Tensor | None, u: Tensor, g: Tensor | None, s: list[Tensor],
                         scale: float) -> None:
    """``U = 2 r^2``, ``r = d / h``, ``h = hypot(d, 2c)``; ``dU/dd = 16 c^2 d / h^4 = 4 (2c/h)^2 r / h``."""
    d, h, r = s
    c2 = _constant(2.0 * scale, d.dtype, d.device)
    torch.sub(x, t, out=d)
    torch.hypot(d, c2, out=h)
    torch.div(d, h, out=r)
    torch.mul(r, r, out=u).mul_(2.0)
    if g is not None:
        torch.div(c2, h, out=g)
        g.mul_(g).mul_(r).mul_(4.0).div_(h)


def _welsch_plain(x: Tensor, t: Tensor, w: Tensor | None, scale: float) -> Tensor:
    z = ((x - t) / scale).clamp(-_WELSCH_Z, _WELSCH_Z)  # beyond, the value is exactly 1
    return -torch.expm1(-0.5 * z.square())


def _welsch_block(x: Tensor, t: Tensor, w: Tensor | None, u: Tensor, g: Tensor | None, s: list[Tensor],
                  scale: float) -> None:
    """``U = 1 - exp(-z^2/2)``, ``z = d / c``; ``dU/dd = z exp(-z^2/2) / c``."""
    z, e = s
    torch.sub(x, t, out=z).div_(scale).clamp_(-_WELSCH_Z, _WELSCH_Z)
    torch.mul(z, z, out=e).mul_(-0.5)
    torch.expm1(e, out=u).neg_()
    if g is not None:
        torch.mul(z, e.exp_(), out=g).div_(scale)


def _log_cosh_sum(x: Tensor, t: Tensor, g: Tensor | None, scale: float, s: list[Tensor]) -> Tensor:
    """``log cosh a = a + log1p(y/2)`` and ``tanh a = -y / (2 + y)``, ``a = |d|``, ``y = expm1(-2a)``: two
    transcendental functions, nothing to overflow. The value's error is a few units in the last place of
    ``a`` (the ``"none"`` path keeps full relative precision near 0 as well); the gradient's is a few
    units in its own last place."""
    d, a, y, r = s[0], s[1], s[2], s[3]
    torch.sub(x, t, out=d)
    torch.abs(d, out=a)
    torch.mul(a, _constant(-2.0, d.dtype, d.device), out=y).expm1_()
    if g is not None:
        torch.add(y, _constant(2.0, d.dtype, d.device), out=g)
        torch.addcdiv(_constant(0.0, d.dtype, d.device), y, g, value=-scale, out=r)  # scale tanh |d|
        torch.copysign(r, d, out=g)
    return a.add_(y.mul_(_constant(0.5, d.dtype, d.device)).log1p_()).sum()


def _charbonnier_sum(x: Tensor, t: Tensor, g: Tensor | None, scale: float, s: list[Tensor],
                     eps: float) -> Tensor:
    """``U = d^2 / (sqrt(q) + eps)`` (no cancellation) and ``dU/dd = d / sqrt(q)``, ``q = d^2 + eps^2``; an
    overflowing ``d^2`` makes the sum NaN, and the block is then done again with ``hypot``."""
    d, d2, q = s[0], s[1], s[2]
    torch.sub(x, t, out=d)
    torch.mul(d, d, out=d2)
    torch.add(d2, _constant(eps * eps, d.dtype, d.device), out=q)
    r = torch.rsqrt(q, out=s[3])
    if g is not None:
        torch.addcmul(_constant(0.0, d.dtype, d.device), d, r, value=scale, out=g)
    return d2.div_(torch.addcmul(_constant(eps, d.dtype, d.device), q, r, out=q)).sum()


def _cauchy_sum(x: Tensor, t: Tensor, g: Tensor | None, scale: float, s: list[Tensor], k: float) -> Tensor:
    """``log1p(q)`` and ``dU/dd = 2 d / (k^2 (1 + q))``, ``q = (d/k)^2``: an overflowing square makes the
    sum inf, and the block is then done again in the two-branch form."""
    d, q = s[0], s[1]
    zero = _constant(0.0, x.dtype, x.device)
    torch.sub(x, t, out=d)
    torch.addcmul(zero, d, d, value=1.0 / (k * k), out=q)
    if g is not None:
        torch.add(q, _constant(1.0, d.dtype, d.device), out=g)
        torch.addcdiv(zero, d, g, value=2.0 * scale / (k * k), out=g)
    return q.log1p_().sum()


def _welsch_sum(x: Tensor, t: Tensor, g: Tensor | None, scale: float, s: list[Tensor], c: float) -> Tensor:
    """``U = -expm1(q)``, ``q = -d^2 / (2 c^2)`` (an overflowing square gives exactly the limit 1), and
    ``dU/dd = d e^q / c^2`` with ``e^q = 1 + expm1(q)``: one transcendental function. ``e^q`` then has
    an absolute error of a unit in the last place of 1, as in autograd's derivative of the plain
    formula (torch differentiates ``expm1`` as ``expm1 + 1``)."""
    d, e = s[0], s[1]
    zero = _constant(0.0, x.dtype, x.device)
    torch.sub(x, t, out=d)
    torch.addcmul(zero, d, d, value=-0.5 / (c * c), out=e).expm1_()
    total = e.sum().neg_()
    if g is not None:
        torch.add(e, _constant(1.0, d.dtype, d.device), out=g)
        torch.addcmul(zero, g, d, value=scale / (c * c), out=g)
    return total


def _tukey_plain(x: Tensor, t: Tensor, w: Tensor | None, c: float) -> Tensor:
    s = ((x - t) / c).clamp(-1.0, 1.0).square()
    return (c * c / 6.0) * s * (3.0 - 3.0 * s + s * s)


def _tukey_block(x: Tensor, t: Tensor, w: Tensor | None, u: Tensor, g: Tensor | None, s: list[Tensor],
                 c: float) -> None:
    """``U = c^2/6 s (3 - 3s + s^2)``, ``s = r^2``, ``r = clamp(d/c, -1, 1)``;
    ``dU/dd = c r ((1 - r)(1 + r))^2`` (``1 - s`` factored: no cancellation near ``|r| = 1``)."""
    r, sq, p = s
    torch.sub(x, t, out=r).div_(c).clamp_(-1.0, 1.0)
    torch.mul(r, r, out=sq)
    torch.mul(sq, sq, out=u)
    torch.mul(sq, -3.0, out=p).add_(3.0).add_(u)
    torch.mul(sq, c * c / 6.0, out=u).mul_(p)
    if g is not None:
        torch.add(r, 1.0, out=g).mul_(torch.neg(r, out=p).add_(1.0))
        g.mul_(g).mul_(r).mul_(c)


def _wing_native(width: float, eps: float) -> tuple[str, tuple[float, ...]] | None:
    """The native wing kernel's parameters ``(w, 1/e, w - w log1p(w/e))``, where float32 holds them."""
    if not (_moderate(width) and _moderate(eps) and _moderate(width / eps)):
        return None
    return "wing", (width, 1.0 / eps, width - width * math.log1p(width / eps))


def _wing_plain(x: Tensor, t: Tensor, w: Tensor | None, width: float, eps: float) -> Tensor:
    a = (x - t).abs()
    return torch.where(a < width, width * torch.log1p(a / eps), a - (width - width * math.log1p(width / eps)))


def _wing_block(x: Tensor, t: Tensor, w: Tensor | None, u: Tensor, g: Tensor | None, s: list[Tensor],
                width: float, eps: float) -> None:
    """``w log1p(|d|/e)`` below ``w``, ``|d| - C`` beyond; ``dU/dd = sign(d) (w / (e + |d|) or 1)``."""
    d, a, near, far = s
    torch.sub(x, t, out=d)
    torch.abs(d, out=a)
    torch.div(a, eps, out=near).log1p_().mul_(width)
    torch.sub(a, width - width * math.log1p(width / eps), out=far)
    small = a < width
    torch.where(small, near, far, out=u)
    if g is not None:
        torch.add(a, eps, out=g).reciprocal_().mul_(width)
        torch.where(small, g, _constant(1.0, g.dtype, g.device), out=g).mul_(torch.sign(d, out=near))


# ----------------------------------------------------------------------------------------------
# l1, mse, huber, smooth_l1
# ----------------------------------------------------------------------------------------------


@loss_function
def l1_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Mean absolute error.

    The Laplace log-likelihood up to constants: estimates the conditional median,
    so it is less sensitive to outliers than the squared error.

    .. math::
        U_i = |\hat y_i - y_i|

    Args:
        pred: Predictions, any shape.
        target: Targets, the shape of ``pred`` (no broadcasting).
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If either input is not floating point.

    Note:
        Finite for every finite input; the gradient at a zero residual is 0 (the
        subgradient ``torch.abs`` uses). Equals ``torch.nn.functional.l1_loss`` for
        equal shapes; on an empty input ``"mean"`` returns 0.0 (torch: NaN).

    References:
        Laplace, *Mémoire sur la probabilité des causes par les évènements*, 1774
        (least absolute deviations).

    Examples:
        >>> import torch
        >>> from lossforge.functional import l1_loss
        >>> l1_loss(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 0.0, 1.0]))
        tensor(1.6667)
    """
    pred, target = _prepare(pred, target, "l1_loss")
    return _residual_loss(_l1_block, _l1_plain, (), 1, pred, target, reduction, sample_weight=sample_weight,
                          mask=mask, loss_name="l1_loss", fast=_l1_sum, native=("l1", ()))


class L1Loss(FunctionLoss):
    """Module form of :func:`lossforge.functional.l1_loss`.

    Args:
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = l1_loss

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


register_loss(
    name="l1", function=l1_loss, module=L1Loss, family="regression", input_kind="real",
    target_kind="real", unit="element", reference="Laplace 1774 (least absolute deviations); "
    "torch.nn.functional.l1_loss", sample_inputs=_real_samples, error_inputs=lambda: _real_errors("l1_loss"),
    extreme_inputs=_extreme_pairs(), aliases=("mae",),
)


@loss_function
def mse_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Mean squared error.

    The Gaussian log-likelihood up to constants: the default for regression
    without outliers.

    .. math::
        U_i = (\hat y_i - y_i)^2

    Args:
        pred: Predictions, any shape.
        target: Targets, the shape of ``pred`` (no broadcasting).
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If either input is not floating point.

    Note:
        Equals ``torch.nn.functional.mse_loss`` for equal shapes; on an empty
        input ``"mean"`` returns 0.0 (torch: NaN). Residuals beyond about 1.8e19
        overflow to ``inf`` in float32 (never NaN): use a robust loss there.

    References:
        Gauss, *Theoria motus corporum coelestium*, 1809 (least squares).

    Examples:
        >>> import torch
        >>> from lossforge.functional import mse_loss
        >>> mse_loss(torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 0.0, 1.0]))
        tensor(4.3333)
    """
    pred, target = _prepare(pred, target, "mse_loss")
    return _residual_loss(_mse_block, _mse_plain, (), 1, pred, target, reduction, sample_weight=sample_weight,
                          mask=mask, loss_name="mse_loss", fast=_mse_sum, native=("mse", ()))


class MSELoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.mse_loss`.

    Args:
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = mse_loss

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


register_loss(
    name="mse", function=mse_loss, module=MSELoss, family="regression", input_kind="real",
    target_kind="real", unit="element", reference="Gauss 1809 (least squares); torch.nn.functional.mse_loss",
    sample_inputs=_real_samples, error_inputs=lambda: _real_errors("mse_loss"), extreme_inputs=_extreme_pairs(1e4),
)


def _check_huber_args(*, delta: float, **_: object) -> None:
    _positive(delta, "delta", "huber_loss")


def _huber_core(a: Tensor, delta: float) -> Tensor:
    """``0.5 a^2`` for ``a < delta``, ``delta (a - delta / 2)`` beyond, for ``a = |x| >= 0``; no overflow."""
    q = a.clamp(max=delta)
    return q * (a - 0.5 * q)


@loss_function
def huber_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    delta: float = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Huber loss: quadratic near zero, linear beyond ``delta``.

    Robust regression: the squared error's smooth minimum with the absolute
    error's bounded gradient for outliers (the gradient's magnitude is at most ``delta``).

    .. math::
        U_i = \begin{cases} \tfrac12 x_i^2 & |x_i| < \delta \\
              \delta\,(|x_i| - \tfrac12\delta) & \text{otherwise} \end{cases},
        \qquad x_i = \hat y_i - y_i

    Args:
        pred: Predictions, any shape.
        target: Targets, the shape of ``pred`` (no broadcasting).
        delta: :math:`\delta > 0`, where the loss turns from quadratic to linear.
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If either input is not floating point, or ``delta`` is not a number.
        ValueError: If ``delta <= 0``.

    Note:
        Computed as :math:`q(|x| - q/2)` with :math:`q = \min(|x|, \delta)`, which
        never squares a large residual: finite value and gradient for residuals
        up to the dtype's range. Equals ``torch.nn.functional.huber_loss`` and
        ``delta * smooth_l1_loss(..., beta=delta)``. On an empty input ``"mean"``
        returns 0.0 (torch: NaN).

    References:
        Huber, *Robust Estimation of a Location Parameter*, Ann. Math. Statist. 35(1), 1964.
        https://doi.org/10.1214/aoms/1177703732

    Examples:
        >>> import torch
        >>> from lossforge.functional import huber_loss
        >>> huber_loss(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0]))
        tensor(1.3125)
        >>> huber_loss(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0]), delta=2.0, reduction="none")
        tensor([0.1250, 4.0000])
    """
    _check_huber_args(delta=delta)
    pred, target = _prepare(pred, target, "huber_loss")
    return _residual_loss(_huber_block, _huber_plain, (float(delta),), 3, pred, target, reduction,
                          sample_weight=sample_weight, mask=mask, loss_name="huber_loss",
                          fast=_huber_sum, native=("huber", (float(delta),)))


class HuberLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.huber_loss`.

    Args:
        delta: Where the loss turns linear, ``> 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = huber_loss
    validate = _check_huber_args

    def __init__(self, *, delta: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, delta=delta)


register_loss(
    name="huber", function=huber_loss, module=HuberLoss, family="regression", input_kind="real",
    target_kind="real", unit="element", reference="Huber 1964, doi:10.1214/aoms/1177703732; "
    "torch.nn.functional.huber_loss",
    sample_inputs=_samples_with({"delta": 0.5}, {"delta": 2.0}),
    error_inputs=lambda: [*_real_errors("huber_loss"), *_hparam_errors(
        "huber_loss", ({"delta": 0.0}, ValueError, r"delta must be > 0, got 0.0"),
        ({"delta": -1}, ValueError, r"delta must be > 0, got -1"),
        ({"delta": 1j}, TypeError, r"delta must be a float or int, got 1j"),
        ({"delta": torch.tensor(1.0)}, TypeError, r"delta must be a float or int, got tensor"),
    )],
    extreme_inputs=_extreme_pairs(None, {"delta": 0.5}),
)


def _check_smooth_l1_args(*, beta: float, **_: object) -> None:
    check_range(beta, "beta", "smooth_l1_loss", low=0.0)


@loss_function
def smooth_l1_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    beta: float = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Smooth L1 loss: the Huber loss divided by its threshold.

    Box regression in detectors (Fast R-CNN): the absolute error with a
    quadratic neighbourhood of width ``beta`` around zero.

    .. math::
        U_i = \begin{cases} \tfrac{1}{2\beta} x_i^2 & |x_i| < \beta \\
              |x_i| - \tfrac12\beta & \text{otherwise} \end{cases},
        \qquad x_i = \hat y_i - y_i

    Args:
        pred: Predictions, any shape.
        target: Targets, the shape of ``pred`` (no broadcasting).
        beta: :math:`\beta \ge 0`, the width of the quadratic zone; ``0`` gives the L1 loss.
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If either input is not floating point, or ``beta`` is not a number.
        ValueError: If ``beta < 0``.

    Note:
        ``beta=0`` equals :func:`l1_loss` exactly, with a finite gradient (no
        division by ``beta``). For ``beta > 0`` equals ``huber_loss(delta=beta) / beta``
        and ``torch.nn.functional.smooth_l1_loss``; finite for residuals up to the
        dtype's range. On an empty input ``"mean"`` returns 0.0 (torch: NaN).

    References:
        Girshick, *Fast R-CNN*, ICCV 2015. https://arxiv.org/abs/1504.08083

    Examples:
        >>> import torch
        >>> from lossforge.functional import smooth_l1_loss
        >>> smooth_l1_loss(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0]))
        tensor(1.3125)
        >>> smooth_l1_loss(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0]), beta=2.0, reduction="none")
        tensor([0.0625, 2.0000])
    """
    _check_smooth_l1_args(beta=beta)
    pred, target = _prepare(pred, target, "smooth_l1_loss")
    if beta == 0:
        return _residual_loss(_l1_block, _l1_plain, (), 1, pred, target, reduction, sample_weight=sample_weight,
                              mask=mask, loss_name="smooth_l1_loss", fast=_l1_sum,
                              native=("l1", ()))
    return _residual_loss(_smooth_l1_block, _smooth_l1_plain, (float(beta),), 3, pred, target, reduction,
                          sample_weight=sample_weight, mask=mask, loss_name="smooth_l1_loss",
                          fast=_smooth_l1_sum,
                          native=("smooth_l1", (float(beta), 1.0 / float(beta))) if _moderate(float(beta)) else None)


class SmoothL1Loss(FunctionLoss):
    """Module form of :func:`lossforge.functional.smooth_l1_loss`.

    Args:
        beta: Width of the quadratic zone, ``>= 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = smooth_l1_loss
    validate = _check_smooth_l1_args

    def __init__(self, *, beta: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, beta=beta)


register_loss(
    name="smooth_l1", function=smooth_l1_loss, module=SmoothL1Loss, family="regression", input_kind="real",
    target_kind="real", unit="element", reference="Girshick 2015 (Fast R-CNN), arXiv:1504.08083; "
    "torch.nn.functional.smooth_l1_loss",
    sample_inputs=_samples_with({"beta": 0.0}, {"beta": 0.5}),
    error_inputs=lambda: [*_real_errors("smooth_l1_loss"), *_hparam_errors(
        "smooth_l1_loss", ({"beta": -0.5}, ValueError, r"beta must be >= 0, got -0.5"),
        ({"beta": "1"}, TypeError, r"beta must be a float or int, got '1'"),
    )],
    extreme_inputs=_extreme_pairs(None, {"beta": 0.0}),
)


# ----------------------------------------------------------------------------------------------
# log_cosh, charbonnier, cauchy, geman_mcclure, welsch, tukey_biweight
# ----------------------------------------------------------------------------------------------


@loss_function
def log_cosh_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Log-cosh loss: about :math:`x^2/2` for small residuals, :math:`|x| - \log 2` for large ones.

    A smooth robust loss with no hyper-parameter: twice differentiable
    everywhere, with a gradient :math:`\tanh(x)` bounded by 1.

    .. math::
        U_i = \log\cosh(x_i), \qquad x_i = \hat y_i - y_i

    Args:
        pred: Predictions, any shape.
        target: Targets, the shape of ``pred`` (no broadcasting).
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If either input is not floating point.

    Note:
        ``cosh`` is never evaluated (it overflows at :math:`|x| \approx 89` in
        float32): :math:`|x| \ge 1` uses :math:`|x| + \operatorname{softplus}(-2|x|) - \log 2`
        and :math:`|x| < 1` uses :math:`\operatorname{log1p}(2\sinh^2(x/2))`, which keeps
        full relative precision near zero. A plain ``"mean"`` or ``"sum"`` (no weight, no
        mask) adds :math:`|x| + \operatorname{log1p}(\operatorname{expm1}(-2|x|)/2)` block by
        block instead, without storing the elementwise loss: each term's error is then a few
        units in the last place of :math:`|x|` rather than of the term. Value and gradient are
        finite for residuals up to the dtype's range (at :math:`|x| = 10^{30}` the gradient is
        :math:`\pm 1`). On an empty input ``"mean"`` returns 0.0.

    References:
        Saleh and Saleh, *Statistical Properties of the log-cosh Loss Function Used
        in Machine Learning*, 2022. https://arxiv.org/abs/2208.04564

    Examples:
        >>> import torch
        >>> from lossforge.functional import log_cosh_loss
        >>> log_cosh_loss(torch.tensor([0.0, 2.0, 1e30]), torch.tensor([0.0, 0.0, 0.0]), reduction="none")
        tensor([0.0000e+00, 1.3250e+00, 1.0000e+30])
    """
    pred, target = _prepare(pred, target, "log_cosh_loss")
    return _residual_loss(_log_cosh_block, _log_cosh_plain, (), 4, pred, target, reduction,
                          sample_weight=sample_weight, mask=mask, loss_name="log_cosh_loss",
                          fast=_log_cosh_sum, native=("log_cosh", ()))


class LogCoshLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.log_cosh_loss`.

    Args:
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = log_cosh_loss

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


register_loss(
    name="log_cosh", function=log_cosh_loss, module=LogCoshLoss, family="regression", input_kind="real",
    target_kind="real", unit="element", reference="Saleh & Saleh 2022, arXiv:2208.04564",
    sample_inputs=_real_samples, error_inputs=lambda: _real_errors("log_cosh_loss"),
    extreme_inputs=_extreme_pairs(),
)


def _check_charbonnier_args(*, eps: float, **_: object) -> None:
    _positive(eps, "eps", "charbonnier_loss")


@loss_function
def charbonnier_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    eps: float = 1e-3,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Charbonnier loss: a differentiable L1 loss, shifted so a perfect prediction scores 0.

    Image restoration and super-resolution (LapSRN, EDVR) and optical flow:
    the absolute error with its corner at zero rounded off over a width ``eps``.

    .. math::
        U_i = \sqrt{x_i^2 + \varepsilon^2} - \varepsilon, \qquad x_i = \hat y_i - y_i

    Args:
        pred: Predictions, any shape.
        target: Targets, the shape of ``pred`` (no broadcasting).
        eps: :math:`\varepsilon > 0`, the smoothing width.
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If either input is not floating point, or ``eps`` is not a number.
        ValueError: If ``eps <= 0``.

    Note:
        The papers' form :math:`\sqrt{x^2+\varepsilon^2}` is this loss plus the
        constant :math:`\varepsilon`: identical gradients, minimum 0 here instead of
        :math:`\varepsilon`. With ``eps=c`` it equals ``c * general_robust_loss(alpha=1, scale=c)``
        (kornia's ``charbonnier_loss`` is ``eps=1``). Computed with ``torch.hypot``,
        so residuals up to the dtype's range give a finite value and gradient.
        On an empty input ``"mean"`` returns 0.0.

    References:
        Charbonnier et al., *Two deterministic half-quadratic regularization
        algorithms for computed imaging*, ICIP 1994. https://doi.org/10.1109/ICIP.1994.413553 ;
        Lai et al., *Deep Laplacian Pyramid Networks*, CVPR 2017. https://arxiv.org/abs/1704.03915

    Examples:
        >>> import torch
        >>> from lossforge.functional import charbonnier_loss
        >>> charbonnier_loss(torch.tensor([0.0, 3.0]), torch.tensor([0.0, 0.0]), eps=4.0, reduction="none")
        tensor([0., 1.])
    """
    _check_charbonnier_args(eps=eps)
    pred, target = _prepare(pred, target, "charbonnier_loss")
    return _residual_loss(_charbonnier_block, _charbonnier_plain, (float(eps),), 2, pred, target, reduction,
                          sample_weight=sample_weight, mask=mask, loss_name="charbonnier_loss",
                          fast=_charbonnier_sum if _moderate(eps) else None, native=("charbonnier", (float(eps),)))


class CharbonnierLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.charbonnier_loss`.

    Args:
        eps: Smoothing width, ``> 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = charbonnier_loss
    validate = _check_charbonnier_args

    def __init__(self, *, eps: float = 1e-3, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, eps=eps)


register_loss(
    name="charbonnier", function=charbonnier_loss, module=CharbonnierLoss, family="regression",
    input_kind="real", target_kind="real", unit="element",
    reference="Charbonnier et al. 1994, doi:10.1109/ICIP.1994.413553; Lai et al. 2017, arXiv:1704.03915",
    sample_inputs=_samples_with({"eps": 1.0}),
    error_inputs=lambda: [*_real_errors("charbonnier_loss"), *_hparam_errors(
        "charbonnier_loss", ({"eps": 0.0}, ValueError, r"eps must be > 0, got 0.0"),
        ({"eps": None}, TypeError, r"eps must be a float or int, got None"),
    )],
    extreme_inputs=_extreme_pairs(),
)


def _check_scale(scale: object, loss: str) -> float:
    return _positive(scale, "scale", loss)


def _check_cauchy_args(*, scale: float, **_: object) -> None:
    _check_scale(scale, "cauchy_loss")


@loss_function
def cauchy_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    scale: float = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Cauchy (Lorentzian) loss: grows only logarithmically in the residual.

    Robust fitting with many outliers: the negative log-likelihood of a Cauchy
    distribution, whose outliers' influence decays as :math:`1/|x|`.

    .. math::
        U_i = \log\!\left(\tfrac12 (x_i / c)^2 + 1\right), \qquad x_i = \hat y_i - y_i

    Args:
        pred: Predictions, any shape.
        target: Targets, the shape of ``pred`` (no broadcasting).
        scale: :math:`c > 0`, the residual scale of the quadratic zone.
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If either input is not floating point, or ``scale`` is not a number.
        ValueError: If ``scale <= 0``.

    Note:
        Equals ``general_robust_loss(alpha=0, scale=c)`` and kornia's
        ``cauchy_loss`` for ``c = 1``. Large residuals use
        :math:`2(\log|x| - \log k) + \operatorname{log1p}((k/x)^2)` with :math:`k = c\sqrt2`, so
        neither :math:`x/k` nor its square is formed: finite value and gradient for residuals up
        to the dtype's range. On an empty input ``"mean"`` returns 0.0.

    References:
        Barron, *A General and Adaptive Robust Loss Function*, CVPR 2019.
        https://arxiv.org/abs/1701.03077

    Examples:
        >>> import torch
        >>> from lossforge.functional import cauchy_loss
        >>> cauchy_loss(torch.tensor([0.0, 2.0, 1e30]), torch.tensor([0.0, 0.0, 0.0]), reduction="none")
        tensor([  0.0000,   1.0986, 137.4620])
    """
    _check_cauchy_args(scale=scale)
    pred, target = _prepare(pred, target, "cauchy_loss")
    k = float(scale) * math.sqrt(2.0)
    return _residual_loss(_cauchy_block, _cauchy_plain, (k,), 5, pred, target, reduction,
                          sample_weight=sample_weight, mask=mask, loss_name="cauchy_loss",
                          fast=_cauchy_sum if _moderate(k) else None,
                          native=("cauchy", (1.0 / (k * k),)) if _moderate(k) else None)


class CauchyLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.cauchy_loss`.

    Args:
        scale: Residual scale ``c > 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = cauchy_loss
    validate = _check_cauchy_args

    def __init__(self, *, scale: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, scale=scale)


def _scale_errors(loss: str) -> list[ErrorSample]:
    return [*_real_errors(loss), *_hparam_errors(
        loss, ({"scale": 0.0}, ValueError, r"scale must be > 0, got 0.0"),
        ({"scale": -2}, ValueError, r"scale must be > 0, got -2"),
        ({"scale": 1 + 2j}, TypeError, r"scale must be a float or int, got \(1\+2j\)"),
    )]


register_loss(
    name="cauchy", function=cauchy_loss, module=CauchyLoss, family="regression", input_kind="real",
    target_kind="real", unit="element", reference="Barron 2019, arXiv:1701.03077 (alpha = 0)",
    sample_inputs=_samples_with({"scale": 0.5}), error_inputs=lambda: _scale_errors("cauchy_loss"),
    extreme_inputs=_extreme_pairs(None, {"scale": 1e-3}),
)


def _check_geman_mcclure_args(*, scale: float, **_: object) -> None:
    _check_scale(scale, "geman_mcclure_loss")


@loss_function
def geman_mcclure_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    scale: float = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Geman-McClure loss: bounded by 2, so an outlier's cost saturates.

    Robust fitting where gross outliers should stop pulling the fit (its
    influence decays as :math:`1/|x|^3`); non-convex, so start from a good guess.

    .. math::
        U_i = \frac{2 (x_i/c)^2}{(x_i/c)^2 + 4}, \qquad x_i = \hat y_i - y_i

    Args:
        pred: Predictions, any shape.
        target: Targets, the shape of ``pred`` (no broadcasting).
        scale: :math:`c > 0`, the residual scale.
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If either input is not floating point, or ``scale`` is not a number.
        ValueError: If ``scale <= 0``.

    Note:
        Equals ``general_robust_loss(alpha=-2, scale=c)`` and kornia's
        ``geman_mcclure_loss`` for ``c = 1``. Computed as :math:`2 r^2` with
        :math:`r = x / \operatorname{hypot}(x, 2c)`, which never squares the
        residual: value and gradient are finite for residuals up to
        the dtype's range. On an empty input ``"mean"`` returns 0.0.

    References:
        Geman and McClure, *Statistical methods for tomographic image
        reconstruction*, Bull. ISI 52(4), 1987; Barron, CVPR 2019.
        https://arxiv.org/abs/1701.03077

    Examples:
        >>> import torch
        >>> from lossforge.functional import geman_mcclure_loss
        >>> geman_mcclure_loss(torch.tensor([0.0, 2.0, 1e30]), torch.tensor([0.0, 0.0, 0.0]), reduction="none")
        tensor([0.0000, 1.0000, 2.0000])
    """
    _check_geman_mcclure_args(scale=scale)
    pred, target = _prepare(pred, target, "geman_mcclure_loss")
    return _residual_loss(_geman_mcclure_block, _geman_mcclure_plain, (float(scale),), 3, pred, target, reduction,
                          sample_weight=sample_weight, mask=mask, loss_name="geman_mcclure_loss",
                          native=("geman_mcclure", (4.0 * float(scale) ** 2,)) if _moderate(float(scale)) else None)


class GemanMcclureLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.geman_mcclure_loss`.

    Args:
        scale: Residual scale ``c > 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = geman_mcclure_loss
    validate = _check_geman_mcclure_args

    def __init__(self, *, scale: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, scale=scale)


register_loss(
    name="geman_mcclure", function=geman_mcclure_loss, module=GemanMcclureLoss, family="regression",
    input_kind="real", target_kind="real", unit="element",
    reference="Geman & McClure 1987; Barron 2019, arXiv:1701.03077 (alpha = -2)",
    sample_inputs=_samples_with({"scale": 0.5}), error_inputs=lambda: _scale_errors("geman_mcclure_loss"),
    extreme_inputs=_extreme_pairs(None, {"scale": 1e-3}),
)


def _check_welsch_args(*, scale: float, **_: object) -> None:
    _check_scale(scale, "welsch_loss")


@loss_function
def welsch_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    scale: float = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Welsch (Leclerc) loss: one minus a Gaussian bump, bounded by 1.

    The most outlier-tolerant of the classic robust losses: an outlier's
    influence decays exponentially. Non-convex; start from a good guess.

    .. math::
        U_i = 1 - \exp\!\left(-\tfrac12 (x_i/c)^2\right), \qquad x_i = \hat y_i - y_i

    Args:
        pred: Predictions, any shape.
        target: Targets, the shape of ``pred`` (no broadcasting).
        scale: :math:`c > 0`, the residual scale.
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If either input is not floating point, or ``scale`` is not a number.
        ValueError: If ``scale <= 0``.

    Note:
        Equals the limit :math:`\alpha \to -\infty` of ``general_robust_loss``
        (``alpha=float("-inf")``) and kornia's ``welsch_loss`` for ``c = 1``.
        Computed with ``expm1`` (full precision near zero); the ratio :math:`x/c`
        is clamped to :math:`\pm 64`, where the value already rounds to exactly 1,
        so any finite residual gives 1 with a zero gradient, never NaN. On an empty
        input ``"mean"`` returns 0.0.

    References:
        Dennis and Welsch, *Techniques for nonlinear least squares and robust
        regression*, Commun. Statist. B 7(4), 1978; Barron, CVPR 2019.
        https://arxiv.org/abs/1701.03077

    Examples:
        >>> import torch
        >>> from lossforge.functional import welsch_loss
        >>> welsch_loss(torch.tensor([0.0, 2.0, 1e30]), torch.tensor([0.0, 0.0, 0.0]), reduction="none")
        tensor([0.0000, 0.8647, 1.0000])
    """
    _check_welsch_args(scale=scale)
    pred, target = _prepare(pred, target, "welsch_loss")
    return _residual_loss(_welsch_block, _welsch_plain, (float(scale),), 2, pred, target, reduction,
                          sample_weight=sample_weight, mask=mask, loss_name="welsch_loss",
                          fast=_welsch_sum if _moderate(scale) else None,
                          native=("welsch", (float(scale) ** -2.0,)) if _moderate(scale) else None)


class WelschLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.welsch_loss`.

    Args:
        scale: Residual scale ``c > 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = welsch_loss
    validate = _check_welsch_args

    def __init__(self, *, scale: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, scale=scale)


register_loss(
    name="welsch", function=welsch_loss, module=WelschLoss, family="regression", input_kind="real",
    target_kind="real", unit="element",
    reference="Dennis & Welsch 1978; Barron 2019, arXiv:1701.03077 (alpha -> -inf)",
    sample_inputs=_samples_with({"scale": 2.0}), error_inputs=lambda: _scale_errors("welsch_loss"),
    extreme_inputs=_extreme_pairs(None, {"scale": 1e-3}),
)


def _check_tukey_args(*, c: float, **_: object) -> None:
    _positive(c, "c", "tukey_biweight_loss")


@loss_function
def tukey_biweight_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    c: float = 4.685,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Tukey's biweight (bisquare) loss: constant beyond ``c``, so outliers get zero gradient.

    A redescending M-estimator for robust regression: residuals beyond ``c``
    are ignored entirely. Non-convex; start from a good guess (e.g. an L1 fit).

    .. math::
        U_i = \frac{c^2}{6}\left(1 - \left(1 - t_i^2\right)^3\right),
        \qquad t_i = \operatorname{clamp}\!\left(\frac{\hat y_i - y_i}{c}, -1, 1\right)

    Args:
        pred: Predictions, any shape.
        target: Targets, the shape of ``pred`` (no broadcasting).
        c: Tuning constant ``> 0``; the default 4.685 gives 95 % asymptotic
            efficiency for Gaussian residuals of unit scale.
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If either input is not floating point, or ``c`` is not a number.
        ValueError: If ``c <= 0``.

    Note:
        The region switch is a ``clamp`` (no ``where`` over a NaN-prone branch):
        every residual, up to the dtype's range, has a finite value and
        gradient; the loss and its first derivative are continuous at
        :math:`|x| = c`, where the value reaches its maximum :math:`c^2/6`. The
        polynomial is evaluated as :math:`s(3 - 3s + s^2)` with :math:`s = t^2`
        (no cancellation near zero). On an empty input ``"mean"`` returns 0.0.

    References:
        Beaton and Tukey, *The Fitting of Power Series, Meaning Polynomials,
        Illustrated on Band-Spectroscopic Data*, Technometrics 16(2), 1974.
        https://doi.org/10.1080/00401706.1974.10489171

    Examples:
        >>> import torch
        >>> from lossforge.functional import tukey_biweight_loss
        >>> tukey_biweight_loss(torch.tensor([0.0, 1.0, 5.0]), torch.tensor([0.0, 0.0, 0.0]), c=2.0,
        ...                     reduction="none")
        tensor([0.0000, 0.3854, 0.6667])
    """
    _check_tukey_args(c=c)
    pred, target = _prepare(pred, target, "tukey_biweight_loss")
    return _residual_loss(_tukey_block, _tukey_plain, (float(c),), 3, pred, target, reduction,
                          sample_weight=sample_weight, mask=mask, loss_name="tukey_biweight_loss",
                          native=("tukey_biweight", (1.0 / float(c), float(c))) if _moderate(float(c)) else None)


class TukeyBiweightLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.tukey_biweight_loss`.

    Args:
        c: Tuning constant ``> 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = tukey_biweight_loss
    validate = _check_tukey_args

    def __init__(self, *, c: float = 4.685, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, c=c)


register_loss(
    name="tukey_biweight", function=tukey_biweight_loss, module=TukeyBiweightLoss, family="regression",
    input_kind="real", target_kind="real", unit="element",
    reference="Beaton & Tukey 1974, doi:10.1080/00401706.1974.10489171",
    sample_inputs=_samples_with({"c": 1.0}),
    error_inputs=lambda: [*_real_errors("tukey_biweight_loss"), *_hparam_errors(
        "tukey_biweight_loss", ({"c": 0}, ValueError, r"c must be > 0, got 0"),
        ({"c": [1.0]}, TypeError, r"c must be a float or int, got \[1.0\]"),
    )],
    extreme_inputs=_extreme_pairs(None, {"c": 1e-3}),
)


# ----------------------------------------------------------------------------------------------
# general_robust (Barron 2019)
# ----------------------------------------------------------------------------------------------

_GR = "general_robust_loss"


def _check_general_robust_values(alpha: float | Tensor, scale: float | Tensor) -> None:
    """Tensor hyper-parameters' values (the function runs this in validation mode only)."""
    if isinstance(alpha, Tensor) and alpha.numel():
        a = alpha.detach()
        if bool(a.isnan().any() | (a == math.inf).any()):
            raise ValueError(message(_GR, "alpha", "must hold real numbers or -inf", "a NaN or +inf entry"))
    if isinstance(scale, Tensor) and scale.numel():
        lo = float(scale.detach().nan_to_num(nan=-1.0).min())
        if lo <= 0:
            raise ValueError(message(_GR, "scale", "must be > 0", f"a minimum of {lo:g}"))


def _check_general_robust_args(*, alpha: float | Tensor, scale: float | Tensor, **_: object) -> None:
    for name, value in (("alpha", alpha), ("scale", scale)):
        if isinstance(value, Tensor):
            if not value.is_floating_point():
                raise TypeError(message(_GR, name, "must be a float or a floating-point tensor",
                                        f"dtype {value.dtype}"))
        elif name == "alpha":
            v = check_number(value, "alpha", _GR)
            if math.isnan(v) or v == math.inf:
                raise ValueError(message(_GR, "alpha", "must be a real number or -inf", value))
        else:
            _positive(value, "scale", _GR)
    if validation_enabled():
        _check_general_robust_values(alpha, scale)


def _as_hparam(value: float | Tensor, name: str, x: Tensor, loss: str) -> Tensor:
    """A float or a tensor broadcastable to ``x`` (without changing its shape), in ``x``'s dtype and device."""
    if not isinstance(value, Tensor):
        return x.new_tensor(float(value))
    try:
        ok = torch.broadcast_shapes(value.shape, x.shape) == x.shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ShapeError(message(loss, name, f"must broadcast to the shape of pred {tuple(x.shape)}",
                                 tuple(value.shape)), expected=tuple(x.shape), actual=tuple(value.shape))
    return value.to(device=x.device, dtype=x.dtype)


@loss_function
def general_robust_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    alpha: float | Tensor = 1.0,
    scale: float | Tensor = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Barron's general and adaptive robust loss: one shape parameter spans L2 to Welsch.

    One loss whose shape :math:`\alpha` moves continuously through the
    classic robust losses (L2, pseudo-Huber/Charbonnier, Cauchy,
    Geman-McClure, Welsch), so robustness can be tuned, or learned with
    :class:`lossforge.GeneralRobustLoss` ``(learnable=True)``.

    .. math::
        U_i = \frac{|\alpha - 2|}{\alpha}\left(\left(\frac{(x_i/c)^2}{|\alpha-2|} + 1\right)^{\alpha/2} - 1\right),
        \qquad x_i = \hat y_i - y_i

    with its limits: :math:`\alpha = 2`: :math:`\tfrac12 (x/c)^2`; :math:`\alpha = 0`:
    :math:`\log(\tfrac12 (x/c)^2 + 1)`; :math:`\alpha \to -\infty`: :math:`1 - \exp(-\tfrac12 (x/c)^2)`.

    Args:
        pred: Predictions, any shape.
        target: Targets, the shape of ``pred`` (no broadcasting).
        alpha: Shape :math:`\alpha`: a real number or ``float("-inf")``, or a
            floating-point tensor broadcastable to ``pred`` (per-element or
            per-channel shapes; gradients flow into it). ``1`` (default) is the
            pseudo-Huber/Charbonnier loss, ``-2`` Geman-McClure.
        scale: :math:`c > 0`, the size of the quadratic zone: a number or a
            positive tensor broadcastable to ``pred``.
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal; alpha, scale: ``()`` or broadcastable to ``(*)``.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ, or ``alpha``/``scale`` do not broadcast to ``pred``.
        TypeError: If an input is not floating point, or a hyper-parameter is not a number or float tensor.
        ValueError: If ``alpha`` is NaN or ``+inf``, or ``scale <= 0`` (tensor values: in validation mode).

    Note:
        :math:`\alpha = 0`, :math:`2` and :math:`-\infty` are evaluated by their
        closed forms, selected per element with a double ``where``, so there is no
        0/0 and the gradient is finite everywhere, also for a tensor ``alpha``
        that holds those values (the gradient with respect to ``alpha`` is 0 at
        exactly those points). Otherwise the power is computed as
        ``expm1(alpha/2 * log1p(z^2/|alpha-2|))`` with an overflow-free
        ``log(1 + s^2)``: for :math:`\alpha \le 0` the value and gradient are finite
        for residuals up to the dtype's range (the loss is bounded for
        :math:`\alpha < 0`); for :math:`\alpha > 0` the loss grows as
        :math:`|x/c|^\alpha` and becomes ``inf`` (never NaN), with a zero
        gradient, where it would leave the dtype's range (above about
        :math:`e^{83} \approx 10^{36}` in float32; :math:`\alpha = 2` beyond
        :math:`|x/c| \approx 1.8\cdot 10^{19}`), so masked overflows stay harmless. Identities:
        ``alpha=0`` equals :func:`cauchy_loss`, ``alpha=-2`` :func:`geman_mcclure_loss`,
        ``alpha=-inf`` :func:`welsch_loss`, ``alpha=2`` ``mse_loss / (2 c^2)``,
        ``alpha=1`` ``charbonnier_loss(eps=c) / c``. On an empty input ``"mean"`` returns 0.0.

    References:
        Barron, *A General and Adaptive Robust Loss Function*, CVPR 2019.
        https://arxiv.org/abs/1701.03077

    Examples:
        >>> import torch
        >>> from lossforge.functional import general_robust_loss
        >>> x, zero = torch.tensor([0.0, 2.0, 10.0]), torch.zeros(3)
        >>> general_robust_loss(x, zero, alpha=1.0, reduction="none")
        tensor([0.0000, 1.2361, 9.0499])
        >>> general_robust_loss(x, zero, alpha=0.0, scale=2.0, reduction="none")
        tensor([0.0000, 0.4055, 2.6027])
        >>> general_robust_loss(x, zero, alpha=torch.tensor([2.0, -2.0, -float("inf")]), reduction="none")
        tensor([0., 1., 1.])
    """
    _check_general_robust_args(alpha=alpha, scale=scale)
    pred, target = _prepare(pred, target, _GR)
    x = pred - target
    a = _as_hparam(alpha, "alpha", x, _GR)
    c = _as_hparam(scale, "scale", x, _GR)
    is_two, is_zero, is_ninf = a == 2.0, a == 0.0, a == -math.inf
    special = is_two | is_zero | a.isinf()
    a_safe = torch.where(special, a.new_ones(()), a)  # double where: the general formula never sees 0, 2 or inf
    b_safe = (a_safe - 2.0).abs()
    exponent = (0.5 * a_safe) * _log1p_square(x, c * b_safe.sqrt())
    # alpha > 0 only: where (b/a) * expm1(exponent) would leave the dtype's range, the value is inf
    log_max = math.log(torch.finfo(x.dtype).max) - 0.01
    overflow = exponent + (b_safe / a_safe.abs()).log().clamp(min=0.0) > log_max
    general = (b_safe / a_safe) * torch.expm1(torch.where(overflow, exponent.new_zeros(()), exponent))
    general = torch.where(overflow, math.inf, general)
    fits = x.abs() < c * math.sqrt(torch.finfo(x.dtype).max)  # x / c and its square are representable
    z = torch.where(fits, x, x.new_zeros(())) / c
    l2 = torch.where(fits, 0.5 * z.square(), math.inf)
    welsch = torch.where(fits, -torch.expm1(-0.5 * z.clamp(-_WELSCH_Z, _WELSCH_Z).square()), 1.0)
    cauchy = _log1p_square(x, c * math.sqrt(2.0))
    u = torch.where(is_two, l2, torch.where(is_zero, cauchy, torch.where(is_ninf, welsch, general)))
    return reduce_loss(u.expand(x.shape), reduction, sample_weight=sample_weight, mask=mask, loss_name=_GR)


def _inverse_softplus(y: Tensor) -> Tensor:
    return y + torch.log(-torch.expm1(-y))


class GeneralRobustLoss(FunctionLoss):
    r"""Module form of :func:`lossforge.functional.general_robust_loss`, with an optional learnable shape and scale.

    Args:
        alpha: Shape (a number or tensor; with ``learnable=True`` the initial value,
            strictly inside ``alpha_range``; a tensor gives one learnable shape per entry).
        scale: Scale ``> 0`` (with ``learnable=True`` the initial value, ``> scale_floor``).
        learnable: Learn ``alpha`` and ``scale``: they become the parameters
            ``alpha_raw`` and ``scale_raw``, with :math:`\alpha = lo + (hi - lo)\,\sigma(\mathrm{alpha\_raw})`,
            inside ``alpha_range``, and
            :math:`c = \operatorname{softplus}(\mathrm{scale\_raw}) + \mathrm{scale\_floor}`, positive.
            ``alpha_value()`` and ``scale_value()`` return the values in use.
        alpha_range: ``(lo, hi)``, the open interval a learnable ``alpha`` lives in
            (default ``(0, 2)``: from Cauchy to L2).
        scale_floor: The smallest learnable scale, ``> 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.

    Examples:
        >>> import torch, lossforge as lf
        >>> crit = lf.GeneralRobustLoss(alpha=1.0, scale=0.5, learnable=True)
        >>> loss = crit(torch.tensor([0.0, 3.0]), torch.zeros(2))
        >>> loss.backward()
        >>> [round(float(v.detach()), 4) for v in (crit.alpha_value(), crit.scale_value())]
        [1.0, 0.5]
        >>> crit.alpha_raw.grad is not None and crit.scale_raw.grad is not None
        True
    """

    function = general_robust_loss
    validate = _check_general_robust_args
    tensor_params = ("alpha", "scale")

    def __init__(self, *, alpha: float | Tensor = 1.0, scale: float | Tensor = 1.0, learnable: bool = False,
                 alpha_range: Sequence[float] = (0.0, 2.0), scale_floor: float = 1e-5,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, alpha=alpha, scale=scale)
        name = type(self).__name__
        self.learnable = _check_bool(learnable, "learnable", name)
        initial = FunctionLoss.hparams(self)
        _check_general_robust_values(initial["alpha"], initial["scale"])  # one-off: always, not only in validation

        if not self.learnable:
            return
        if (not isinstance(alpha_range, (list, tuple)) or len(alpha_range) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in alpha_range)
                or not (math.isfinite(alpha_range[0]) and math.isfinite(alpha_range[1]))
                or not alpha_range[0] < alpha_range[1]):
            raise ValueError(message(name, "alpha_range", "must be two finite numbers (lo, hi) with lo < hi",
                                     repr(alpha_range)))
        lo, hi = float(alpha_range[0]), float(alpha_range[1])
        floor = _positive(scale_floor, "scale_floor", name)
        a0 = torch.as_tensor(initial["alpha"], dtype=torch.float32).detach().clone()
        c0 = torch.as_tensor(initial["scale"], dtype=torch.float32).detach().clone()
        if a0.numel() and not bool(((a0 > lo) & (a0 < hi)).all()):
            raise ValueError(message(name, "alpha", f"must lie strictly inside alpha_range ({lo:g}, {hi:g}) "
                                     f"when learnable=True", a0.tolist()))
        if c0.numel() and not bool((c0 > floor).all()):
            raise ValueError(message(name, "scale", f"must be > scale_floor={floor:g} when learnable=True",
                                     c0.tolist()))
        del self.alpha, self.scale
        self.alpha_range = (lo, hi)
        self.scale_floor = floor
        u = (a0 - lo) / (hi - lo)
        self.alpha_raw = nn.Parameter(torch.log(u) - torch.log1p(-u))
        self.scale_raw = nn.Parameter(_inverse_softplus(c0 - floor))

    def alpha_value(self) -> float | Tensor:
        r"""The shape :math:`\alpha` the loss uses now (a tensor carrying gradients when learnable)."""
        if not self.learnable:
            return FunctionLoss.hparams(self)["alpha"]  # type: ignore[no-any-return]
        lo, hi = self.alpha_range
        return lo + (hi - lo) * torch.sigmoid(self.alpha_raw)

    def scale_value(self) -> float | Tensor:
        """The scale :math:`c` the loss uses now (a tensor carrying gradients when learnable)."""
        if not self.learnable:
            return FunctionLoss.hparams(self)["scale"]  # type: ignore[no-any-return]
        return F.softplus(self.scale_raw) + self.scale_floor

    def hparams(self) -> dict[str, Any]:
        return {"alpha": self.alpha_value(), "scale": self.scale_value()}

    def extra_repr(self) -> str:
        return super().extra_repr() + (f", learnable=True, alpha_range={self.alpha_range}" if self.learnable else "")


def _general_robust_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = _real_samples(dtype, device)
    args = out[0].args
    g = generator(7)
    per_column = rand(4, gen=g, dtype=torch.float32, device=device, low=-3.0, high=1.9)
    for kw in ({"alpha": 0.0}, {"alpha": 2.0}, {"alpha": -2.0}, {"alpha": 0.5, "scale": 0.3},
               {"alpha": -math.inf}, {"alpha": 1e-4}, {"alpha": 1.9999}):
        out.append(Sample(args, dict(kw), name=", ".join(f"{k}={v}" for k, v in kw.items())))
    per_column_scale = torch.tensor([0.5, 1.0, 2.0, 1.0], device=device)
    out.append(Sample(args, {"alpha": per_column, "scale": per_column_scale}, name="per-column tensors"))
    return out


register_loss(
    name="general_robust", function=general_robust_loss, module=GeneralRobustLoss, family="regression",
    input_kind="real", target_kind="real", unit="element", reference="Barron 2019, arXiv:1701.03077",
    sample_inputs=_general_robust_samples,
    error_inputs=lambda: [*_real_errors(_GR), *_hparam_errors(
        _GR, ({"alpha": math.inf}, ValueError, r"alpha must be a real number or -inf, got inf"),
        ({"alpha": math.nan}, ValueError, r"alpha must be a real number or -inf, got nan"),
        ({"scale": 0.0}, ValueError, r"scale must be > 0, got 0.0"),
        ({"alpha": "1"}, TypeError, r"alpha must be a float or int, got '1'"),
        ({"alpha": torch.tensor([1, 2])}, TypeError, r"alpha must be a float or a floating-point tensor"),
    ), ErrorSample((torch.randn(4, 3), torch.randn(4, 3)), {"alpha": torch.ones(2)}, ValueError,
                   r"general_robust_loss: alpha must broadcast to the shape of pred \(4, 3\), got \(2,\)"),
        ErrorSample((), {"alpha": 2.0, "learnable": True}, ValueError,
                    r"GeneralRobustLoss: alpha must lie strictly inside alpha_range \(0, 2\)", at_construction=True),
        ErrorSample((), {"learnable": 1}, TypeError, r"GeneralRobustLoss: learnable must be a bool",
                    at_construction=True),
    ],
    extreme_inputs=_extreme_pairs(None, {"alpha": 0.0}, {"alpha": -2.0}, {"alpha": -math.inf}, {"alpha": 0.5},
                                  {"alpha": -50.0}, {"alpha": 1e-4}),
)


# ----------------------------------------------------------------------------------------------
# quantile, wing
# ----------------------------------------------------------------------------------------------

_QL = "quantile_loss"


def _check_quantile_values(quantile: Tensor) -> None:
    if quantile.numel():
        q = quantile.detach()
        lo, hi = float(q.nan_to_num(nan=-1.0).min()), float(q.nan_to_num(nan=2.0).max())
        if lo <= 0.0 or hi >= 1.0:
            raise ValueError(message(_QL, "quantile", "must hold quantiles in (0, 1)", f"values in [{lo:g}, {hi:g}]"))


def _check_quantile_args(*, quantile: float | Sequence[float] | Tensor, **_: object) -> None:
    if isinstance(quantile, Tensor):
        if not quantile.is_floating_point():
            raise TypeError(message(_QL, "quantile", "must be a float, a sequence of floats or a floating-point "
                                    "tensor", f"dtype {quantile.dtype}"))
        if quantile.dim() > 1 or quantile.numel() == 0:
            raise ShapeError(message(_QL, "quantile", "must be a float or a non-empty 1-D tensor of quantiles",
                                     f"shape {tuple(quantile.shape)}"), expected="() or (Q,)",
                             actual=tuple(quantile.shape))
        if validation_enabled():
            _check_quantile_values(quantile)
    elif isinstance(quantile, (list, tuple)):
        if not quantile:
            raise ValueError(message(_QL, "quantile", "must hold at least one quantile", repr(quantile)))
        for q in quantile:
            check_range(q, "quantile", _QL, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    else:
        check_range(quantile, "quantile", _QL, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)


@loss_function
def quantile_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    quantile: float | Sequence[float] | Tensor = 0.5,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Quantile (pinball) loss, for one quantile or several at once.

    Quantile regression and prediction intervals: minimised by the
    conditional :math:`\tau`-quantile of the target (the median for
    :math:`\tau = 0.5`). Several quantiles share one call, one per prediction channel.

    .. math::
        U = \max\!\big(\tau\, r,\ (\tau - 1)\, r\big) = \tau\, r + \max(-r, 0),
        \qquad r = y - \hat y

    Args:
        pred: Predictions. For one quantile, any shape; for several, ``(*, Q)``,
            the last dimension holding one prediction per quantile.
        target: Targets: the shape of ``pred`` for one quantile; ``(*)``, that is
            ``pred.shape[:-1]``, for several (each target is compared with all
            ``Q`` predictions).
        quantile: :math:`\tau \in (0, 1)`: a float (or a 0-dim tensor) for one
            quantile; a list/tuple of floats or a 1-D tensor of ``Q`` values for several.
        reduction, sample_weight, mask: See the conventions page. Unit: one element
            (one quantile), or one (element, quantile) pair (several).

    Shape:
        - one quantile: pred, target ``(*)``, equal; output ``(*)`` if ``reduction="none"``.
        - several: pred ``(*, Q)``, target ``(*)``, quantile ``(Q,)``; output ``(*, Q)`` if
          ``reduction="none"``, so ``sample_weight``/``mask`` broadcast to ``(*, Q)``.
        - otherwise ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested (``"mean"`` averages over elements and quantiles).

    Raises:
        ShapeError: If the shapes break the rule above, or ``quantile`` is a tensor of 2 or more dimensions.
        TypeError: If an input is not floating point, or ``quantile`` is not a float, sequence or float tensor.
        ValueError: If a quantile is outside ``(0, 1)`` (tensor values: in validation mode).

    Note:
        Piecewise linear: finite value and gradient for residuals up to the
        dtype's range; at :math:`r = 0` the gradient with respect to ``pred`` is
        :math:`-\tau`. ``quantile=0.5`` equals ``0.5 * l1_loss``. On an empty input
        ``"mean"`` returns 0.0.

    References:
        Koenker and Bassett, *Regression Quantiles*, Econometrica 46(1), 1978.
        https://doi.org/10.2307/1913643

    Examples:
        >>> import torch
        >>> from lossforge.functional import quantile_loss
        >>> quantile_loss(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0]), quantile=0.9, reduction="none")
        tensor([0.9000, 0.1000])
        >>> quantile_loss(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([2.0]), quantile=[0.1, 0.5, 0.9],
        ...               reduction="none")
        tensor([[0.1000, 0.0000, 0.1000]])
    """
    _check_quantile_args(quantile=quantile)
    if isinstance(quantile, Tensor):
        taus: Tensor | list[float] | None = quantile if quantile.dim() == 1 else None
        single: float | Tensor = quantile
    elif isinstance(quantile, (list, tuple)):
        taus, single = [float(v) for v in quantile], 0.0
    else:
        taus, single = None, check_number(quantile, "quantile", _QL)
    if taus is None:
        pred, target = _prepare(pred, target, _QL)
        r = target - pred
        tau = single.to(device=r.device, dtype=r.dtype) if isinstance(single, Tensor) else single
    else:
        check_float(pred, "pred", _QL)
        check_float(target, "target", _QL)
        check_same_device(pred, target, _QL, ("pred", "target"))
        q = len(taus)
        if pred.dim() == 0 or pred.shape[-1] != q:
            raise ShapeError(message(_QL, "pred", f"must have a last dimension of size Q={q} (one per quantile)",
                                     tuple(pred.shape)), expected=f"(*, {q})", actual=tuple(pred.shape))
        if target.shape != pred.shape[:-1]:
            raise ShapeError(message(_QL, "target", f"must have shape pred.shape[:-1] = {tuple(pred.shape[:-1])} "
                                     f"with several quantiles", tuple(target.shape),
                                     hint="for one quantile per target pass a float quantile"),
                             expected=tuple(pred.shape[:-1]), actual=tuple(target.shape))
        pred, target = upcast(pred), upcast(target)
        r = target.unsqueeze(-1) - pred
        tau = (taus.to(device=r.device, dtype=r.dtype) if isinstance(taus, Tensor)
               else torch.tensor(taus, dtype=r.dtype, device=r.device))
    u = tau * r + torch.relu(-r)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=_QL)


class QuantileLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.quantile_loss`.

    Args:
        quantile: One quantile in ``(0, 1)``, or several (a list becomes a ``(Q,)`` buffer).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = quantile_loss
    validate = _check_quantile_args
    tensor_params = ("quantile",)

    def __init__(self, *, quantile: float | Sequence[float] | Tensor = 0.5, reduction: Reduction = "mean") -> None:
        _check_quantile_args(quantile=quantile)  # lists checked as given, with the function's messages
        super().__init__(reduction=reduction, quantile=quantile)
        if isinstance(self.quantile, Tensor):
            _check_quantile_values(self.quantile)  # one-off, so always (not only in validation mode)


def _quantile_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = _real_samples(dtype, device)
    out.append(Sample(out[0].args, {"quantile": 0.9}, name="quantile=0.9"))
    g = generator(11)
    pred = randn(6, 3, gen=g, dtype=dtype, device=device)
    target = randn(6, gen=g, dtype=dtype, device=device)
    out.append(Sample((pred, target), {"quantile": [0.1, 0.5, 0.9]}, name="three quantiles (list)"))
    out.append(Sample((pred.view(2, 3, 3), target.view(2, 3)),
                      {"quantile": torch.tensor([0.25, 0.5, 0.75], device=device)}, name="three quantiles (tensor)"))
    return out


def _quantile_errors() -> list[ErrorSample]:
    p3, t = torch.randn(4, 3), torch.randn(4)
    qs = [0.1, 0.5, 0.9]
    return [*_real_errors(_QL), *_hparam_errors(
        _QL, ({"quantile": 1.0}, ValueError, r"quantile must be in \(0, 1\), got 1.0"),
        ({"quantile": 0}, ValueError, r"quantile must be in \(0, 1\), got 0"),
        ({"quantile": [0.5, 1.5]}, ValueError, r"quantile must be in \(0, 1\), got 1.5"),
        ({"quantile": []}, ValueError, r"quantile must hold at least one quantile, got \[\]"),
        ({"quantile": "0.5"}, TypeError, r"quantile must be a float or int, got '0.5'"),
        ({"quantile": torch.ones(2, 2) / 2}, ValueError, r"quantile must be a float or a non-empty 1-D tensor"),
    ), ErrorSample((torch.randn(4, 2), t), {"quantile": qs}, ValueError,
                   r"quantile_loss: pred must have a last dimension of size Q=3 \(one per quantile\), got \(4, 2\)"),
        ErrorSample((p3, torch.randn(4, 3)), {"quantile": qs}, ValueError,
                    r"quantile_loss: target must have shape pred.shape\[:-1\] = \(4,\) with several quantiles, "
                    r"got \(4, 3\)"),
    ]


def _quantile_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = _extreme_pairs(None, {"quantile": 0.05})(dtype, device)
    big = _huge(dtype)
    pred = torch.tensor([[big, -big], [0.0, big]], dtype=torch.float64).to(device=device, dtype=dtype)
    target = torch.tensor([-big, 0.0], dtype=torch.float64).to(device=device, dtype=dtype)
    out.append(Sample((pred, target), {"quantile": [0.1, 0.9]}, name=f"+-{big:g}, two quantiles"))
    return out


register_loss(
    name="quantile", function=quantile_loss, module=QuantileLoss, family="regression", input_kind="real",
    target_kind="real", unit="element (one (element, quantile) pair with several quantiles)",
    reference="Koenker & Bassett 1978, doi:10.2307/1913643", sample_inputs=_quantile_samples,
    error_inputs=_quantile_errors, extreme_inputs=_quantile_extremes, aliases=("pinball",),
)


def _check_wing_args(*, w: float, epsilon: float, **_: object) -> None:
    _positive(w, "w", "wing_loss")
    _positive(epsilon, "epsilon", "wing_loss")


@loss_function
def wing_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    w: float = 10.0,
    epsilon: float = 2.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Wing loss: logarithmic for small and medium residuals, linear for large ones.

    Facial landmark regression: it amplifies small and medium errors (which
    L1/L2 under-weight once training has converged) while staying linear
    for outliers.

    .. math::
        U_i = \begin{cases} w \ln(1 + |x_i|/\epsilon) & |x_i| < w \\
              |x_i| - C & \text{otherwise} \end{cases},
        \qquad C = w - w\ln(1 + w/\epsilon),\ x_i = \hat y_i - y_i

    Args:
        pred: Predictions, any shape (e.g. landmark coordinates ``(N, K, 2)``).
        target: Targets, the shape of ``pred`` (no broadcasting).
        w: :math:`w > 0`, the width of the logarithmic zone (paper: 10).
        epsilon: :math:`\epsilon > 0`, the curvature of the logarithmic zone (paper: 2).
        reduction, sample_weight, mask: See the conventions page. Unit: one element
            (one coordinate; sum over the last dimension and use ``"mean"`` for
            the paper's per-landmark normalisation).

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If either input is not floating point, or a hyper-parameter is not a number.
        ValueError: If ``w <= 0`` or ``epsilon <= 0``.

    Note:
        :math:`C` makes the two pieces meet at :math:`|x| = w` (the value is
        continuous; the slope drops from :math:`w/(\epsilon + w)` to 1). Both
        pieces are finite for every finite residual, so the ``where`` is safe;
        the gradient at a zero residual is 0. On an empty input ``"mean"`` returns 0.0.

    References:
        Feng et al., *Wing Loss for Robust Facial Landmark Localisation with
        Convolutional Neural Networks*, CVPR 2018. https://arxiv.org/abs/1711.06753

    Examples:
        >>> import torch
        >>> from lossforge.functional import wing_loss
        >>> wing_loss(torch.tensor([0.0, 2.0, 20.0]), torch.zeros(3), reduction="none")
        tensor([ 0.0000,  6.9315, 27.9176])
    """
    _check_wing_args(w=w, epsilon=epsilon)
    pred, target = _prepare(pred, target, "wing_loss")
    return _residual_loss(_wing_block, _wing_plain, (float(w), float(epsilon)), 4, pred, target, reduction,
                          sample_weight=sample_weight, mask=mask, loss_name="wing_loss",
                          native=_wing_native(float(w), float(epsilon)))


class WingLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.wing_loss`.

    Args:
        w: Width of the logarithmic zone, ``> 0``.
        epsilon: Its curvature, ``> 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = wing_loss
    validate = _check_wing_args

    def __init__(self, *, w: float = 10.0, epsilon: float = 2.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, w=w, epsilon=epsilon)


register_loss(
    name="wing", function=wing_loss, module=WingLoss, family="regression", input_kind="real",
    target_kind="real", unit="element", reference="Feng et al. 2018, arXiv:1711.06753",
    sample_inputs=_samples_with({"w": 0.5, "epsilon": 0.25}),
    error_inputs=lambda: [*_real_errors("wing_loss"), *_hparam_errors(
        "wing_loss", ({"w": 0.0}, ValueError, r"w must be > 0, got 0.0"),
        ({"epsilon": -2.0}, ValueError, r"epsilon must be > 0, got -2.0"),
        ({"w": None}, TypeError, r"w must be a float or int, got None"),
    )],
    extreme_inputs=_extreme_pairs(None, {"w": 0.5, "epsilon": 1e-3}),
)


# ----------------------------------------------------------------------------------------------
# poisson_nll, gaussian_nll
# ----------------------------------------------------------------------------------------------


def _check_poisson_args(*, log_input: bool, full: bool, eps: float, **_: object) -> None:
    _check_bool(log_input, "log_input", "poisson_nll_loss")
    _check_bool(full, "full", "poisson_nll_loss")
    _positive(eps, "eps", "poisson_nll_loss")


@loss_function
def poisson_nll_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Negative log-likelihood of a Poisson target, with the rate predicted in log space or directly.

    Count regression (events, photons, cells): the target is a non-negative
    count drawn from a Poisson distribution whose rate the model predicts.

    .. math::
        U_i = \begin{cases} e^{\hat y_i} - y_i \hat y_i & \text{log\_input} \\
              \hat y_i - y_i \log(\hat y_i + \varepsilon) & \text{otherwise} \end{cases}
        \;+\; [\text{full}]\,[y_i > 1]\,\big(y_i \log y_i - y_i + \tfrac12 \log(2\pi y_i)\big)

    Args:
        pred: The log-rate (``log_input=True``) or the rate ``>= 0``, any shape.
        target: Counts ``>= 0`` (float), the shape of ``pred``.
        log_input: Whether ``pred`` is the log of the rate.
        full: Add the Stirling approximation of :math:`\log(y!)` (for :math:`y > 1`;
            0 otherwise, as torch), so the value is the full negative log-likelihood.
        eps: :math:`\varepsilon > 0`, keeps :math:`\log` finite at a zero rate (``log_input=False`` only).
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If an input is not floating point, ``log_input``/``full`` are not bools,
            or ``eps`` is not a number.
        ValueError: If ``eps <= 0``; in validation mode, if ``target`` has a negative
            count or (``log_input=False``) ``pred`` a negative rate.

    Note:
        Equals ``torch.nn.functional.poisson_nll_loss`` in all four modes. With
        ``log_input=True`` the value grows as :math:`e^{\hat y}` and overflows to
        ``inf`` above :math:`\hat y \approx 88` in float32 (never NaN); with
        ``log_input=False`` a rate below :math:`-\varepsilon` (outside the domain,
        refused in validation mode) is clamped inside the logarithm, so the value stays finite.
        The Stirling term is piecewise in the target (it jumps at :math:`y = 1`),
        so only ``pred`` is differentiated in the conformance checks. On an empty
        input ``"mean"`` returns 0.0 (torch: NaN).

    References:
        PyTorch, ``torch.nn.PoissonNLLLoss``.
        https://pytorch.org/docs/stable/generated/torch.nn.PoissonNLLLoss.html

    Examples:
        >>> import torch
        >>> from lossforge.functional import poisson_nll_loss
        >>> poisson_nll_loss(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 3.0]), reduction="none")
        tensor([ 1.0000, -0.2817])
        >>> poisson_nll_loss(torch.tensor([2.0]), torch.tensor([3.0]), log_input=False, full=True)
        tensor(1.6846)
    """
    _check_poisson_args(log_input=log_input, full=full, eps=eps)
    loss = "poisson_nll_loss"
    pred, target = _prepare(pred, target, loss)
    _check_min(target, "target", loss, 0.0, inclusive=True)
    if log_input:
        u = torch.exp(pred) - target * pred
    else:
        _check_min(pred, "pred", loss, 0.0, inclusive=True)
        u = pred - target * torch.log((pred + float(eps)).clamp(min=torch.finfo(pred.dtype).tiny))
    if full:
        counted = target > 1.0
        t = torch.where(counted, target, target.new_ones(()))  # double where: log never sees t <= 1
        stirling = t * t.log() - t + 0.5 * (2.0 * math.pi * t).log()
        u = u + torch.where(counted, stirling, stirling.new_zeros(()))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class PoissonNLLLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.poisson_nll_loss`.

    Args:
        log_input: Whether the prediction is the log-rate.
        full: Add the Stirling term.
        eps: Floor inside the logarithm (``log_input=False``), ``> 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = poisson_nll_loss
    validate = _check_poisson_args

    def __init__(self, *, log_input: bool = True, full: bool = False, eps: float = 1e-8,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, log_input=log_input, full=full, eps=eps)


def _poisson_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, shape in enumerate([(6, 4), (3, 2, 5), ()]):
        g = generator(seed)
        out.append(Sample((_randn(shape, g, dtype, device), randint(6, *shape, gen=g, device=device).to(dtype)),
                          name=f"shape{shape}"))
    g = generator(5)
    rate = rand(6, 4, gen=g, dtype=dtype, device=device, low=0.1, high=4.0)
    counts = randint(6, 6, 4, gen=g, device=device).to(dtype)
    out.append(Sample(out[0].args, {"full": True}, name="full"))
    out.append(Sample((rate, counts), {"log_input": False}, name="rate"))
    out.append(Sample((rate, counts), {"log_input": False, "full": True, "eps": 1e-4}, name="rate, full"))
    return out


def _poisson_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    big = _huge(dtype)
    top = 80.0 if big > 1e4 else 9.0  # exp(80) and exp(9) stay finite in float32 / float16 ranges
    log_rate = torch.tensor([top, -top, 0.0, top, -top], dtype=torch.float64).to(device=device, dtype=dtype)
    counts = torch.tensor([0.0, 1e4, 0.0, 1e4, 0.0], dtype=torch.float64).to(device=device, dtype=dtype)
    rate = torch.tensor([big, 0.0, 0.0, big, 1e-30], dtype=torch.float64).to(device=device, dtype=dtype)
    return [Sample((log_rate, counts), name=f"log-rate +-{top:g}"),
            Sample((log_rate, counts), {"full": True}, name=f"log-rate +-{top:g}, full"),
            Sample((rate, counts), {"log_input": False, "full": True}, name=f"rate 0 and {big:g}")]


register_loss(
    name="poisson_nll", function=poisson_nll_loss, module=PoissonNLLLoss, family="regression", input_kind="real",
    target_kind="counts", unit="element", reference="torch.nn.functional.poisson_nll_loss",
    sample_inputs=_poisson_samples,
    error_inputs=lambda: [*_real_errors("poisson_nll_loss", positive=True), *_hparam_errors(
        "poisson_nll_loss", ({"eps": 0.0}, ValueError, r"eps must be > 0, got 0.0"),
        ({"log_input": 1}, TypeError, r"log_input must be a bool, got 1"),
        ({"full": "yes"}, TypeError, r"full must be a bool, got 'yes'"),
    )],
    extreme_inputs=_poisson_extremes, differentiable_args=(0,),
)


_GN = "gaussian_nll_loss"


def _check_gaussian_args(*, full: bool, eps: float, **_: object) -> None:
    _check_bool(full, "full", _GN)
    _positive(eps, "eps", _GN)


def _gaussian_var(var: Tensor | float, pred: Tensor) -> Tensor:
    """``var`` as a tensor broadcastable to ``pred``, by torch's rules (documented in the function)."""
    if not isinstance(var, Tensor):
        v = check_range(var, "var", _GN, low=0.0)
        return torch.full_like(pred, v)
    check_float(var, "var", _GN)
    check_same_device(pred, var, _GN, ("pred", "var"))
    shape, vshape = tuple(pred.shape), tuple(var.shape)
    if vshape != shape:
        if pred.dim() >= 1 and vshape == shape[:-1]:
            var = var.unsqueeze(-1)
        elif not (len(vshape) == len(shape)
                  and sum(1 for p, v in zip(shape, vshape) if p != v) == 1
                  and all(v == 1 for p, v in zip(shape, vshape) if p != v)):
            raise ShapeError(message(_GN, "var", f"must have the shape of pred {shape}, that shape without its "
                                     f"last dimension {shape[:-1]}, or that shape with one dimension of size 1",
                                     vshape), expected=shape, actual=vshape)
    _check_min(var, "var", _GN, 0.0, inclusive=True)
    return upcast(var)


@loss_function
def gaussian_nll_loss(
    pred: Tensor,
    target: Tensor,
    var: Tensor | float,
    /,
    *,
    full: bool = False,
    eps: float = 1e-6,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Negative log-likelihood of a Gaussian target with a predicted mean and variance.

    Heteroscedastic regression: the model predicts a mean and a variance per
    output, so it can say where it is uncertain (Nix & Weigend 1994).

    .. math::
        U_i = \tfrac12\left(\log v_i + \frac{(\hat y_i - y_i)^2}{v_i}\right)
              + [\text{full}]\,\tfrac12 \log(2\pi), \qquad v_i = \max(\mathrm{var}_i, \varepsilon)

    Args:
        pred: Predicted means, any shape.
        target: Targets, the shape of ``pred`` (no broadcasting).
        var: Predicted variances ``>= 0``: a number, or a tensor of the shape of
            ``pred`` (heteroscedastic), of ``pred.shape[:-1]`` (one variance
            shared by the last dimension; it is unsqueezed), or of ``pred``'s shape with
            exactly one dimension of size 1 (shared along that dimension): torch's rules.
        full: Add the constant :math:`\tfrac12\log(2\pi)`.
        eps: :math:`\varepsilon > 0`, the variance floor.
        reduction, sample_weight, mask: See the conventions page. Unit: one element of ``pred``.

    Shape:
        - pred, target: ``(*)``, equal; var: ``(*)``, ``(*)[:-1]``, ``(*)`` with one size set to 1, or a number.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` differs from ``pred`` in shape, or ``var``'s shape breaks the rules above.
        TypeError: If a tensor is not floating point, ``full`` is not a bool or ``eps`` not a number.
        ValueError: If ``eps <= 0`` or a number ``var`` is negative; a negative tensor
            ``var`` in validation mode only (torch always checks it, which syncs the device).

    Note:
        The floor is applied as torch does: the value uses :math:`\max(\mathrm{var}, \varepsilon)`
        while the gradient passes through the floor unchanged (``var`` below
        :math:`\varepsilon` still learns). Values and gradients equal
        ``torch.nn.functional.gaussian_nll_loss``; on an empty input ``"mean"``
        returns 0.0 (torch: NaN).

    References:
        Nix and Weigend, *Estimating the mean and variance of the target
        probability distribution*, ICNN 1994. https://doi.org/10.1109/ICNN.1994.374138

    Examples:
        >>> import torch
        >>> from lossforge.functional import gaussian_nll_loss
        >>> gaussian_nll_loss(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0]), torch.tensor([1.0, 4.0]),
        ...                   reduction="none")
        tensor([0.5000, 0.6931])
    """
    _check_gaussian_args(full=full, eps=eps)
    pred, target = _prepare(pred, target, _GN)
    v = _gaussian_var(var, pred)
    v = v.detach().clamp(min=float(eps)) + (v - v.detach())  # torch's floor: exact value, gradient straight through
    u = 0.5 * (torch.log(v) + (pred - target).square() / v)
    if full:
        u = u + 0.5 * math.log(2.0 * math.pi)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=_GN)


class GaussianNLLLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.gaussian_nll_loss` (called as ``loss(pred, target, var)``).

    Args:
        full: Add the constant term.
        eps: Variance floor, ``> 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = gaussian_nll_loss
    validate = _check_gaussian_args

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, full=full, eps=eps)


def _gaussian_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, shape in enumerate([(6, 4), (3, 2, 5)]):
        g = generator(seed)
        out.append(Sample((randn(*shape, gen=g, dtype=dtype, device=device),
                           randn(*shape, gen=g, dtype=dtype, device=device),
                           rand(*shape, gen=g, dtype=dtype, device=device, low=0.2, high=2.0)),
                          name=f"heteroscedastic {shape}"))
    pred, target, _ = out[0].args
    g = generator(9)
    out.append(Sample((pred, target, rand(6, gen=g, dtype=dtype, device=device, low=0.2, high=2.0)),
                      name="var (N,)"))
    out.append(Sample((pred, target, rand(6, 1, gen=g, dtype=dtype, device=device, low=0.2, high=2.0)),
                      {"full": True}, name="var (N, 1), full"))
    out.append(Sample((pred, target, rand(1, 4, gen=g, dtype=dtype, device=device, low=0.2, high=2.0)),
                      {"eps": 1e-3}, name="var (1, D)"))
    return out


def _gaussian_errors() -> list[ErrorSample]:
    x, v = torch.randn(4, 3), torch.ones(4, 3)
    return [
        ErrorSample((x, torch.randn(4), v), {}, ValueError, r"gaussian_nll_loss: target must have the shape of pred"),
        ErrorSample((x, x, torch.ones(2, 3)), {}, ValueError,
                    r"gaussian_nll_loss: var must have the shape of pred \(4, 3\), that shape without its last "
                    r"dimension \(4,\), or that shape with one dimension of size 1, got \(2, 3\)"),
        ErrorSample((x, x, torch.ones(4, 3, 1)), {}, ValueError, r"var must have the shape of pred .* got \(4, 3, 1\)"),
        ErrorSample((x.long(), x, v), {}, TypeError, r"gaussian_nll_loss: pred must be a floating-point tensor"),
        ErrorSample((x, x, v.long()), {}, TypeError, r"gaussian_nll_loss: var must be a floating-point tensor"),
        ErrorSample((x, x, -1.0), {}, ValueError, r"gaussian_nll_loss: var must be >= 0, got -1.0"),
        ErrorSample((x, x, v), {"reduction": "avg"}, ValueError, r"reduction must be one of .*Did you mean 'mean'"),
        ErrorSample((x, x, v), {"weight": v}, TypeError, r"weight=.*Hint: use sample_weight="),
        ErrorSample((x, x, v), {"eps": 0.0}, ValueError, r"gaussian_nll_loss: eps must be > 0, got 0.0"),
        ErrorSample((), {"eps": -1e-6}, ValueError, r"gaussian_nll_loss: eps must be > 0, got -1e-06",
                    at_construction=True),
        ErrorSample((x, x, v), {"full": None}, TypeError, r"gaussian_nll_loss: full must be a bool, got None"),
        ErrorSample((), {"full": 0}, TypeError, r"gaussian_nll_loss: full must be a bool, got 0",
                    at_construction=True),
    ]


def _gaussian_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    def t(values: list[float]) -> Tensor:
        return torch.tensor(values, dtype=torch.float64).to(device=device, dtype=dtype)

    pred, target = t([1e4, -1e4, 0.0, 1e4, 0.0]), t([-1e4, 1e4, 0.0, 1e4, 1e4])
    var = t([1e4, 1e-8 if dtype != torch.float16 else 1e-7, 0.0, 1e-3, 0.0])
    return [Sample((pred, target, var), name="+-1e4, var 0 to 1e4"),
            Sample((pred, target, var), {"full": True, "eps": 1e-3}, name="+-1e4, full")]


register_loss(
    name="gaussian_nll", function=gaussian_nll_loss, module=GaussianNLLLoss, family="regression",
    input_kind="real", target_kind="real", unit="element",
    reference="Nix & Weigend 1994, doi:10.1109/ICNN.1994.374138; torch.nn.functional.gaussian_nll_loss",
    sample_inputs=_gaussian_samples, error_inputs=_gaussian_errors, extreme_inputs=_gaussian_extremes,
)


# ----------------------------------------------------------------------------------------------
# cosine_embedding
# ----------------------------------------------------------------------------------------------

_CE = "cosine_embedding_loss"
_COSINE_EPS = 1e-12  # added to the squared norms, as torch does


def _check_cosine_embedding_args(*, margin: float, **_: object) -> None:
    check_range(margin, "margin", _CE, low=-1.0, high=1.0)


@loss_function
def cosine_embedding_loss(
    x1: Tensor,
    x2: Tensor,
    y: Tensor,
    /,
    *,
    margin: float = 0.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Cosine embedding loss: pull similar pairs to cosine 1, push dissimilar ones below a margin.

    Learning embeddings from labelled pairs (same / different) when only
    the direction of a vector matters, e.g. semi-supervised or retrieval set-ups.

    .. math::
        U_n = \begin{cases} 1 - \cos(x_{1,n}, x_{2,n}) & y_n = 1 \\
              \max\!\big(0, \cos(x_{1,n}, x_{2,n}) - m\big) & y_n = -1 \end{cases},
        \qquad \cos(a, b) = \frac{a \cdot b}{\sqrt{(\lVert a\rVert^2 + 10^{-12})(\lVert b\rVert^2 + 10^{-12})}}

    Args:
        x1: First embeddings ``(N, D)``, or one pair's ``(D,)``.
        x2: Second embeddings, the shape of ``x1``.
        y: Pair labels ``(N,)`` (or ``()``), ``1`` similar and ``-1`` dissimilar; any real or integer dtype.
        margin: :math:`m \in [-1, 1]`; 0 to 0.5 is the usual range.
        reduction, sample_weight, mask: See the conventions page. Unit: one pair.

    Shape:
        - x1, x2: ``(N, D)`` or ``(D,)``, equal; y: ``(N,)`` or ``()``.
        - output: ``(N,)`` (or ``()``) if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``x1`` and ``x2`` differ, are not 1-D or 2-D, or ``y`` is not ``x1.shape[:-1]``.
        TypeError: If ``x1`` or ``x2`` is not floating point, or ``y`` is not a real tensor.
        ValueError: If ``margin`` is outside ``[-1, 1]``; in validation mode, if ``y`` holds
            a value other than 1 and -1.

    Note:
        Equals ``torch.nn.functional.cosine_embedding_loss`` (the same
        :math:`10^{-12}` in the norms): a zero vector has cosine 0 and a finite
        gradient. On an empty batch ``"mean"`` returns 0.0 (torch: NaN).

    References:
        PyTorch, ``torch.nn.CosineEmbeddingLoss``.
        https://pytorch.org/docs/stable/generated/torch.nn.CosineEmbeddingLoss.html

    Examples:
        >>> import torch
        >>> from lossforge.functional import cosine_embedding_loss
        >>> x1 = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
        >>> x2 = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
        >>> cosine_embedding_loss(x1, x2, torch.tensor([1, -1, 1]), margin=0.5, reduction="none")
        tensor([1.0000, 0.2071, 1.0000])
    """
    _check_cosine_embedding_args(margin=margin)
    check_float(x1, "x1", _CE)
    check_float(x2, "x2", _CE)
    check_same_shape(x1, x2, _CE, ("x1", "x2"))
    if x1.dim() not in (1, 2):
        raise ShapeError(message(_CE, "x1", "must have shape (N, D) or (D,)", tuple(x1.shape)),
                         expected="(N, D) or (D,)", actual=tuple(x1.shape))
    if not isinstance(y, Tensor):
        raise TypeError(message(_CE, "y", "must be a torch.Tensor", type(y).__name__))
    if y.is_complex() or y.dtype == torch.bool:
        raise TypeError(message(_CE, "y", "must be a real tensor of 1 and -1", f"dtype {y.dtype}"))
    check_same_device(x1, y, _CE, ("x1", "y"))
    if y.shape != x1.shape[:-1]:
        raise ShapeError(message(_CE, "y", f"must have shape {tuple(x1.shape[:-1])} to match x1 {tuple(x1.shape)}",
                                 tuple(y.shape), hint="y.squeeze(-1)" if y.shape == (*x1.shape[:-1], 1) else None),
                         expected=tuple(x1.shape[:-1]), actual=tuple(y.shape))
    if validation_enabled() and y.numel() and not bool(((y == 1) | (y == -1)).all()):
        raise ValueError(message(_CE, "y", "must hold only 1 and -1",
                                 f"values {sorted({float(v) for v in y.detach().unique().tolist()})}"))
    a, b = upcast(x1), upcast(x2)
    cos = (a * b).sum(-1) / ((a * a).sum(-1) + _COSINE_EPS).sqrt() / ((b * b).sum(-1) + _COSINE_EPS).sqrt()
    u = torch.where(y > 0, 1.0 - cos, (cos - float(margin)).clamp(min=0.0))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=_CE)


class CosineEmbeddingLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.cosine_embedding_loss` (called as ``loss(x1, x2, y)``).

    Args:
        margin: In ``[-1, 1]``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = cosine_embedding_loss
    validate = _check_cosine_embedding_args

    def __init__(self, *, margin: float = 0.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, margin=margin)


def _cosine_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    x1 = randn(8, 5, gen=g, dtype=dtype, device=device)
    x2 = randn(8, 5, gen=g, dtype=dtype, device=device)
    y = (2 * randint(2, 8, gen=g, device=device) - 1).to(dtype)
    return [
        Sample((x1, x2, y), name="(N, D)"),
        Sample((x1, x2, y), {"margin": 0.2}, name="margin=0.2"),
        Sample((x1, x2, y), {"margin": -0.5}, name="margin=-0.5"),
        Sample((x1[0], x2[0], y[0]), name="one pair (D,)"),
    ]


def _cosine_errors() -> list[ErrorSample]:
    a, b, y = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([1.0, -1.0, 1.0, -1.0])
    return [
        ErrorSample((a, torch.randn(4, 2), y), {}, ValueError, r"cosine_embedding_loss: x2 must have the shape of x1"),
        ErrorSample((a, b, y[:, None]), {}, ValueError,
                    r"cosine_embedding_loss: y must have shape \(4,\) to match x1 \(4, 3\), got \(4, 1\)\. "
                    r"Hint: y.squeeze\(-1\)"),
        ErrorSample((a[None], b[None], y[None]), {}, ValueError, r"x1 must have shape \(N, D\) or \(D,\)"),
        ErrorSample((a.long(), b, y), {}, TypeError, r"cosine_embedding_loss: x1 must be a floating-point tensor"),
        ErrorSample((a, b, y > 0), {}, TypeError, r"cosine_embedding_loss: y must be a real tensor of 1 and -1"),
        ErrorSample((a, b, y), {"reduction": "avg"}, ValueError, r"reduction must be one of .*Did you mean 'mean'"),
        ErrorSample((a, b, y), {"weight": y}, TypeError, r"weight=.*Hint: use sample_weight="),
        ErrorSample((a, b, y), {"margin": 1.5}, ValueError, r"cosine_embedding_loss: margin must be in \[-1, 1\], "
                                                              r"got 1.5"),
        ErrorSample((), {"margin": -2}, ValueError, r"cosine_embedding_loss: margin must be in \[-1, 1\], got -2",
                    at_construction=True),
        ErrorSample((), {"margin": 0.1j}, TypeError, r"margin must be a float or int", at_construction=True),
    ]


def _cosine_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    x1 = torch.tensor([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1e4, 1e4, 1e4]], dtype=torch.float64)
    x2 = torch.tensor([[-1e4, 1e4, 1.0], [0.0, 0.0, 0.0], [1e4, 0.0, 0.0], [1e4, 1e4, 1e4]], dtype=torch.float64)
    y = torch.tensor([-1.0, 1.0, -1.0, 1.0], dtype=torch.float64)
    args = tuple(t.to(device=device, dtype=dtype) for t in (x1, x2, y))
    return [Sample(args, name="+-1e4 and zero vectors"), Sample(args, {"margin": -1.0}, name="margin=-1")]


register_loss(
    name="cosine_embedding", function=cosine_embedding_loss, module=CosineEmbeddingLoss, family="regression",
    input_kind="embeddings", target_kind="sign", unit="pair", reference="torch.nn.functional.cosine_embedding_loss",
    sample_inputs=_cosine_samples, error_inputs=_cosine_errors, extreme_inputs=_cosine_extremes,
    differentiable_args=(0, 1),
)


# ----------------------------------------------------------------------------------------------
# mape, msle (P2)
# ----------------------------------------------------------------------------------------------


def _check_mape_args(*, eps: float, **_: object) -> None:
    _positive(eps, "eps", "mape_loss")


@loss_function
def mape_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    eps: float = 1e-7,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Mean absolute percentage error, as a fraction.

    Forecasting, when errors matter relative to the size of the target
    (sales, demand). Minimised by a weighted median that favours small
    predictions; avoid it for targets near zero.

    .. math::
        U_i = \frac{|\hat y_i - y_i|}{\max(|y_i|, \varepsilon)}

    Args:
        pred: Predictions, any shape.
        target: Targets, the shape of ``pred`` (no broadcasting).
        eps: :math:`\varepsilon > 0`, the smallest denominator.
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If either input is not floating point, or ``eps`` is not a number.
        ValueError: If ``eps <= 0``.

    Note:
        A fraction, not a percentage: multiply by 100 for Keras's
        ``mean_absolute_percentage_error`` (same :math:`\varepsilon = 10^{-7}`);
        equals scikit-learn's ``mean_absolute_percentage_error`` up to its
        :math:`\varepsilon`. A zero target gives :math:`|\hat y| / \varepsilon`:
        finite but large, with a finite gradient. On an empty input ``"mean"`` returns 0.0.

    References:
        de Myttenaere et al., *Mean Absolute Percentage Error for regression
        models*, Neurocomputing 192, 2016. https://arxiv.org/abs/1605.02541

    Examples:
        >>> import torch
        >>> from lossforge.functional import mape_loss
        >>> mape_loss(torch.tensor([110.0, 1.0]), torch.tensor([100.0, 2.0]), reduction="none")
        tensor([0.1000, 0.5000])
    """
    _check_mape_args(eps=eps)
    pred, target = _prepare(pred, target, "mape_loss")
    u = (pred - target).abs() / target.abs().clamp(min=float(eps))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="mape_loss")


class MAPELoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.mape_loss`.

    Args:
        eps: Smallest denominator, ``> 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = mape_loss
    validate = _check_mape_args

    def __init__(self, *, eps: float = 1e-7, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, eps=eps)


def _away_from_zero_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, shape in enumerate([(6, 4), (3, 2, 5), ()]):
        g = generator(seed)
        sign = 2.0 * randint(2, *shape, gen=g, device=device).to(dtype) - 1.0
        target = sign * _rand(shape, g, dtype, device, 0.5, 2.0)
        out.append(Sample((_randn(shape, g, dtype, device), target), name=f"shape{shape}"))
    out.append(Sample(out[0].args, {"eps": 1.0}, name="eps=1"))
    return out


def _mape_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    big = _huge(dtype)
    pred = torch.tensor([big, -big, 0.0, 1.0, big], dtype=torch.float64).to(device=device, dtype=dtype)
    target = torch.tensor([-big, 1.0, big, 0.0, big], dtype=torch.float64).to(device=device, dtype=dtype)
    return [Sample((pred, target), name=f"+-{big:g} and a zero target", plain=True),
            Sample((pred, target), {"eps": 1e-3}, name="eps=1e-3")]


register_loss(
    name="mape", function=mape_loss, module=MAPELoss, family="regression", input_kind="real",
    target_kind="real", unit="element", reference="de Myttenaere et al. 2016, arXiv:1605.02541",
    sample_inputs=_away_from_zero_samples,
    error_inputs=lambda: [*_real_errors("mape_loss"), *_hparam_errors(
        "mape_loss", ({"eps": 0.0}, ValueError, r"eps must be > 0, got 0.0"),
        ({"eps": "small"}, TypeError, r"eps must be a float or int, got 'small'"),
    )],
    extreme_inputs=_mape_extremes,
)


@loss_function
def msle_loss(
    pred: Tensor,
    target: Tensor,
    /,
    *,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Mean squared logarithmic error.

    Regression of positive quantities spanning orders of magnitude (prices,
    counts): relative errors count, and under-prediction costs more than over-prediction.

    .. math::
        U_i = \big(\log(1 + \hat y_i) - \log(1 + y_i)\big)^2

    Args:
        pred: Predictions ``> -1``, any shape.
        target: Targets ``> -1``, the shape of ``pred`` (no broadcasting).
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - pred, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If either input is not floating point.
        ValueError: In validation mode, if ``pred`` or ``target`` has a value ``<= -1``.

    Note:
        Computed with ``log1p`` (full precision near 0). Values at or below -1
        are outside the domain: validation mode refuses them; otherwise they
        are clamped to :math:`-1 + \epsilon_{\text{machine}}` so the value and
        gradient stay finite. Keras's ``mean_squared_logarithmic_error`` clamps
        at 0 instead and so differs for negative inputs. On an empty input
        ``"mean"`` returns 0.0.

    References:
        Keras, ``keras.losses.MeanSquaredLogarithmicError``.
        https://keras.io/api/losses/regression_losses/

    Examples:
        >>> import torch
        >>> from lossforge.functional import msle_loss
        >>> msle_loss(torch.tensor([0.0, 3.0]), torch.tensor([1.0, 3.0]), reduction="none")
        tensor([0.4805, 0.0000])
    """
    pred, target = _prepare(pred, target, "msle_loss")
    _check_min(pred, "pred", "msle_loss", -1.0, inclusive=False)
    _check_min(target, "target", "msle_loss", -1.0, inclusive=False)
    low = -1.0 + torch.finfo(pred.dtype).eps
    u = (pred.clamp(min=low).log1p() - target.clamp(min=low).log1p()).square()
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="msle_loss")


class MSLELoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.msle_loss`.

    Args:
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = msle_loss

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)


def _positive_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, shape in enumerate([(6, 4), (3, 2, 5), ()]):
        g = generator(seed)
        out.append(Sample((_rand(shape, g, dtype, device, 0.0, 3.0), _rand(shape, g, dtype, device, -0.5, 3.0)),
                          name=f"shape{shape}"))
    return out


def _msle_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    big = _huge(dtype)
    pred = torch.tensor([big, -0.99, 0.0, big], dtype=torch.float64).to(device=device, dtype=dtype)
    target = torch.tensor([-0.99, big, 0.0, big], dtype=torch.float64).to(device=device, dtype=dtype)
    return [Sample((pred, target), name=f"-0.99 to {big:g}")]


register_loss(
    name="msle", function=msle_loss, module=MSLELoss, family="regression", input_kind="real",
    target_kind="real", unit="element", reference="keras.losses.MeanSquaredLogarithmicError",
    sample_inputs=_positive_samples, error_inputs=lambda: _real_errors("msle_loss", positive=True),
    extreme_inputs=_msle_extremes,
)
