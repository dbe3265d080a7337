"""Binary and multilabel classification losses: sigmoid logits and targets of the same shape.

``binary_cross_entropy_with_logits`` and ``binary_focal_loss`` run on a fused kernel: one pass over
the input, block by block (each block small enough to stay in the L2 cache), computes the
unreduced loss *and* its closed-form derivative with respect to the logits; the backward pass
then only scales that derivative in place by the incoming gradient. This is several times faster
than autograd over a chain of elementwise operations, and moves far fewer bytes. The plain
differentiable formula of each loss is used instead when a gradient is needed with respect to the
target or ``pos_weight``, under ``torch.compile`` (so the compiler sees and fuses the formula), and
for higher derivatives.

On the CPU each block is below ATen's parallel grain, so every operation on it runs inline on the
thread that issues it, and the blocks are shared out dynamically among ``torch.get_num_threads()``
threads (the caller and a small pool). There is then no OpenMP fork and join per operation: on a
busy machine thousands of them would each wait for a descheduled worker.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._core.base import FunctionLoss, loss_function
from .._core.checks import check_float, check_number, check_probabilities, check_range, check_same_shape
from .._core.errors import ShapeError, message
from .._core.reduction import Reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, rand, randint, randn
from .._core.validation import validation_enabled
from . import _fused
from ._fused import BlockFn, PlainFn

__all__ = [
    "binary_cross_entropy_with_logits", "BCEWithLogitsLoss",
    "binary_focal_loss", "BinaryFocalLoss",
    "asymmetric_loss", "AsymmetricLoss",
]

#: Elements per block of the fused kernels on the CPU (see :mod:`._fused`); read at each call.
BLOCK_ELEMENTS = _fused.BLOCK_ELEMENTS

_LOG_SIGMOID_OUT = torch.ops.aten.log_sigmoid_forward.output


def _compute_dtype(x: Tensor) -> torch.dtype:
    """float64 stays float64; every other floating dtype is computed in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _tiny(x: Tensor) -> float:
    return torch.finfo(x.dtype).tiny


# --------------------------------------------------------------------------------------------------
# The fused engine (shared with the regression losses: ._fused)
# --------------------------------------------------------------------------------------------------


def _log_sigmoid_into(x: Tensor, out: Tensor, scratch: Tensor) -> None:
    """``out = log sigmoid(x)`` without allocating (the CPU kernel also writes ``exp(-|x|)`` to ``scratch``)."""
    if x.device.type == "cpu":
        _LOG_SIGMOID_OUT(x, output=out, buffer=scratch)
    else:
        out.copy_(F.logsigmoid(x))


def _elementwise(block_fn: BlockFn, plain_fn: PlainFn, params: tuple[Any, ...], scratch: int,
                 x: Tensor, t: Tensor, w: Tensor | None) -> Tensor:
    """The unreduced loss, through the fused kernel where it applies, else the plain formula
    (under ``torch.compile`` and ``torch.func`` transforms, and for gradients w.r.t. ``t`` or ``w``)."""
    return _fused.elementwise(_fused.Kernel(block_fn, plain_fn, params, scratch, BLOCK_ELEMENTS), x, t, w)


# --------------------------------------------------------------------------------------------------
# Shared checks and samples
# --------------------------------------------------------------------------------------------------


def _prepare(logits: Tensor, target: Tensor, loss: str) -> tuple[Tensor, Tensor]:
    """Metadata checks, targets in [0, 1] in validation mode, float32 compute for half inputs."""
    check_float(logits, "logits", loss)
    check_float(target, "target", loss)
    check_same_shape(logits, target, loss, ("logits", "target"))
    check_probabilities(target.detach(), "target", loss)
    dtype = _compute_dtype(logits)
    return logits.to(dtype), target.to(dtype)


def _binary_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    """Multilabel logits with hard targets (plain), soft targets, a 4-D map and a scalar."""
    g = generator(0)
    logits = randn(6, 4, gen=g, dtype=dtype, device=device, scale=2.0)
    hard = randint(2, 6, 4, gen=g, device=device).to(dtype)
    soft_x = randn(3, 2, 5, gen=g, dtype=dtype, device=device, scale=2.0)
    soft = rand(3, 2, 5, gen=g, dtype=dtype, device=device)
    fmap = randn(2, 3, 2, 2, gen=g, dtype=dtype, device=device)
    fmap_t = randint(2, 2, 3, 2, 2, gen=g, device=device).to(dtype)
    return [
        Sample((logits, hard), name="(N, C) hard"),
        Sample((soft_x, soft), name="(N, C, L) soft"),
        Sample((fmap, fmap_t), name="(N, C, H, W)"),
        Sample((logits[0, 0], hard[0, 0]), name="scalar"),
    ]


def _binary_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    """Logits of +-120 and +-1e4, right and wrong, with hard and soft targets."""
    x = torch.tensor([[120.0, -120.0, 120.0, -120.0, 1e4, -1e4, 1e4, -1e4, 0.0, 30.0]], dtype=torch.float64)
    t = torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.5]], dtype=torch.float64)
    return [Sample((x.to(device=device, dtype=dtype), t.to(device=device, dtype=dtype)), name="logits +-120, +-1e4")]


def _binary_errors(loss: str, *, extra: list[ErrorSample] | None = None) -> list[ErrorSample]:
    """Bad inputs shared by every (logits, binary target) loss."""
    x = torch.randn(4, 3)
    t = torch.rand(4, 3)
    return [
        ErrorSample((x, t[:, 0]), {}, ValueError,
                    rf"{loss}: target must have the shape of logits \(4, 3\), got \(4,\)"),
        ErrorSample((x[:, :1], t[:, 0]), {}, ValueError, r"got \(4,\).*Hint: logits.squeeze\(-1\)"),
        ErrorSample((x.long(), t), {}, TypeError, rf"{loss}: logits must be a floating-point tensor"),
        ErrorSample((x, t.round().long()), {}, TypeError,
                    rf"{loss}: target must be a floating-point tensor, got dtype torch.int64.*target.float\(\)"),
        ErrorSample((x, t * 2), {}, ValueError, rf"{loss}: target must hold probabilities in \[0, 1\]"),
        ErrorSample((x, t), {"reduction": "avg"}, ValueError, r"reduction must be one of .*Did you mean 'mean'"),
        ErrorSample((x, t), {"weight": torch.ones(3)}, TypeError, r"weight=.*Hint: use sample_weight="),
        *(extra or []),
    ]


def _hparam_error(kwargs: dict[str, object], exc: type[BaseException], match: str,
                  *, construction: bool = False) -> ErrorSample:
    return ErrorSample((torch.randn(4, 3), torch.rand(4, 3)), kwargs, exc, match, at_construction=construction)


# --------------------------------------------------------------------------------------------------
# binary_cross_entropy_with_logits
# --------------------------------------------------------------------------------------------------


def _bce_block(x: Tensor, t: Tensor, w: Tensor | None, u: Tensor, g: Tensor | None, s: list[Tensor],
               eps: float) -> None:
    """``U = (1 - t') x - l log sigma(x)``, ``dU/dx = l sigma(x) - w t'``, ``l = 1 + (w - 1) t'``."""
    ls, buf, ts = s
    if eps:
        t = torch.mul(t, 1.0 - eps, out=ts).add_(0.5 * eps)
    _log_sigmoid_into(x, ls, buf)
    torch.addcmul(x, t, x, value=-1.0, out=u)  # (1 - t) x
    if w is None:
        u.sub_(ls)
        if g is not None:
            torch.sigmoid(x, out=g).sub_(t)
        return
    lw = torch.mul(t, w, out=buf).sub_(t).add_(1.0)
    u.addcmul_(lw, ls, value=-1.0)
    if g is not None:
        torch.sigmoid(x, out=g).mul_(lw).addcmul_(w, t, value=-1.0)


def _bce_plain(x: Tensor, t: Tensor, w: Tensor | None, eps: float) -> Tensor:
    if eps:
        t = t * (1.0 - eps) + 0.5 * eps
    ls = F.logsigmoid(x)
    lw = ls if w is None else (1.0 + (w - 1.0) * t) * ls
    return (1.0 - t) * x - lw


def _check_bce_args(*, label_smoothing: float = 0.0, pos_weight: object = None, **_: object) -> None:
    loss = "binary_cross_entropy_with_logits"
    check_range(label_smoothing, "label_smoothing", loss, low=0.0, high=1.0)
    if pos_weight is not None and not isinstance(pos_weight, Tensor):
        if isinstance(pos_weight, bool) or not isinstance(pos_weight, (int, float)):
            raise TypeError(message(loss, "pos_weight", "must be a tensor broadcastable to logits, a number or None",
                                    type(pos_weight).__name__))
        check_range(pos_weight, "pos_weight", loss, low=0.0)


def _prepare_pos_weight(pos_weight: Tensor | float | None, logits: Tensor, loss: str) -> Tensor | None:
    """``pos_weight`` as a tensor of the compute dtype on the logits' device, broadcastable to them."""
    if pos_weight is None:
        return None
    if not isinstance(pos_weight, Tensor):
        return logits.new_full((), float(pos_weight))
    if not pos_weight.is_floating_point():
        raise TypeError(message(loss, "pos_weight", "must be a floating-point tensor", f"dtype {pos_weight.dtype}",
                                hint="call pos_weight.float()"))
    try:
        ok = torch.broadcast_shapes(pos_weight.shape, logits.shape) == logits.shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ShapeError(
            message(loss, "pos_weight", f"must broadcast to the shape of logits {tuple(logits.shape)}",
                    tuple(pos_weight.shape), hint="for (N, C) logits pass one weight per class, shape (C,)"),
            expected=tuple(logits.shape), actual=tuple(pos_weight.shape))
    if validation_enabled() and pos_weight.numel():
        low = float(pos_weight.detach().min())
        if low < 0:
            raise ValueError(message(loss, "pos_weight", "must be >= 0", f"a minimum of {low:g}"))
    return pos_weight.to(device=logits.device, dtype=logits.dtype)


@loss_function
def binary_cross_entropy_with_logits(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    pos_weight: Tensor | float | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Binary cross-entropy on logits, for binary and multilabel classification.

    The standard loss when each output is an independent yes/no decision (binary classification,
    multilabel tagging, per-pixel foreground masks), computed from the logits so that it never
    takes the log of a rounded probability.

    .. math::
        U_i = -\bigl[\, w_i\, t'_i \log \sigma(x_i) + (1 - t'_i) \log(1 - \sigma(x_i)) \bigr],
        \qquad t'_i = t_i (1 - \varepsilon) + \tfrac{\varepsilon}{2}

    where :math:`w` is ``pos_weight`` (1 when absent) and :math:`\varepsilon` is ``label_smoothing``.

    Args:
        logits: Unnormalised scores :math:`x`, any shape.
        target: Targets :math:`t` in ``[0, 1]`` (hard 0/1 labels or soft probabilities), a
            floating-point tensor of the shape of ``logits`` (no broadcasting).
        pos_weight: Weight :math:`w \ge 0` of the positive term, a number or a tensor
            broadcastable to ``logits`` (one per class, ``(C,)``, for ``(N, C)`` logits); above 1 it
            raises recall, below 1 precision. A buffer on the module.
        label_smoothing: :math:`\varepsilon \in [0, 1]`: the target moves towards 1/2, so 0/1 labels
            become :math:`\varepsilon/2` and :math:`1 - \varepsilon/2`.
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - logits, target: ``(*)``, equal; pos_weight: broadcastable to ``(*)``.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` differs in shape from ``logits``, or ``pos_weight`` does not
            broadcast to it.
        TypeError: If ``logits``, ``target`` or ``pos_weight`` is not floating point.
        ValueError: If ``label_smoothing`` is outside ``[0, 1]``; in validation mode, if a target
            is outside ``[0, 1]`` or ``pos_weight`` is negative.

    Note:
        Equals ``torch.nn.functional.binary_cross_entropy_with_logits`` (with ``pos_weight``, for
        every reduction), and with ``label_smoothing`` equals it on the smoothed target. It is
        computed from ``logsigmoid``, so it is finite, with a finite gradient, for logits of any
        magnitude (linear in the logit when the prediction is wrong); the gradient with respect to
        the logits is computed in closed form in the same fused pass as the value. On an empty
        input ``"mean"`` returns 0.0 with zero gradients (torch: NaN).

    References:
        PyTorch, ``torch.nn.BCEWithLogitsLoss``:
        https://docs.pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html ;
        Szegedy et al., *Rethinking the Inception Architecture*, CVPR 2016 (label smoothing).
        https://arxiv.org/abs/1512.00567

    Examples:
        >>> import torch
        >>> from lossforge.functional import binary_cross_entropy_with_logits
        >>> logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 4.0]])
        >>> target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
        >>> binary_cross_entropy_with_logits(logits, target)
        tensor(0.3624)
        >>> binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor([1.0, 2.0, 3.0]))
        tensor(0.4839)
        >>> binary_cross_entropy_with_logits(logits, target, label_smoothing=0.1, reduction="none")
        tensor([[0.2269, 0.3633, 0.9491],
                [0.1986, 0.6931, 0.2181]])
    """
    loss = "binary_cross_entropy_with_logits"
    _check_bce_args(label_smoothing=label_smoothing, pos_weight=pos_weight)
    x, t = _prepare(logits, target, loss)
    w = _prepare_pos_weight(pos_weight, x, loss)
    if w is None:  # a plain mean or sum never forms the unreduced loss
        kernel = _fused.Kernel(_bce_block, _bce_plain, (float(label_smoothing),), 3, BLOCK_ELEMENTS,
                               native="bce", native_params=(float(label_smoothing),))
        return _fused.reduced(kernel, x, t, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)
    u = _elementwise(_bce_block, _bce_plain, (float(label_smoothing),), 3, x, t, w)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class BCEWithLogitsLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.binary_cross_entropy_with_logits`.

    Args:
        pos_weight: Weight of the positive term, a number or a tensor broadcastable to the logits (a buffer).
        label_smoothing: In ``[0, 1]``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = binary_cross_entropy_with_logits
    validate = _check_bce_args

    def __init__(self, *, pos_weight: Tensor | float | None = None, label_smoothing: float = 0.0,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, pos_weight=pos_weight, label_smoothing=label_smoothing)


def _bce_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    base = _binary_samples(dtype, device)
    logits, target = base[0].args
    g = generator(1)
    pw = rand(4, gen=g, dtype=dtype, device=device, low=0.5, high=3.0)
    return [*base,
            Sample((logits, target), {"pos_weight": pw}, name="pos_weight (C,)"),
            Sample((logits, target), {"label_smoothing": 0.1, "pos_weight": 2.0}, name="smoothing, scalar pos_weight")]


def _bce_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    base = _binary_extremes(dtype, device)
    x, t = base[0].args
    pw = torch.linspace(0.5, 3.0, x.shape[-1], dtype=torch.float64).to(device=device, dtype=dtype)
    return [*base, Sample((x, t), {"pos_weight": pw, "label_smoothing": 0.2}, name="pos_weight, smoothing")]


register_loss(
    name="binary_cross_entropy_with_logits", function=binary_cross_entropy_with_logits, module=BCEWithLogitsLoss,
    family="classification", input_kind="logits", target_kind="binary", unit="element",
    reference="torch.nn.functional.binary_cross_entropy_with_logits; Szegedy et al. 2016 (label smoothing), "
              "arXiv:1512.00567",
    sample_inputs=_bce_samples, extreme_inputs=_bce_extremes,
    error_inputs=lambda: _binary_errors("binary_cross_entropy_with_logits", extra=[
        _hparam_error({"label_smoothing": 1.5}, ValueError,
                      r"binary_cross_entropy_with_logits: label_smoothing must be in \[0, 1\], got 1.5"),
        _hparam_error({"label_smoothing": -0.1}, ValueError, r"label_smoothing must be in \[0, 1\]", construction=True),
        _hparam_error({"pos_weight": torch.ones(2)}, ValueError,
                      r"pos_weight must broadcast to the shape of logits \(4, 3\), got \(2,\)"),
        _hparam_error({"pos_weight": torch.ones(3, dtype=torch.long)}, TypeError,
                      r"pos_weight must be a floating-point tensor"),
        _hparam_error({"pos_weight": -torch.ones(3)}, ValueError, r"pos_weight must be >= 0"),
        _hparam_error({"pos_weight": "2"}, TypeError, r"pos_weight must be a tensor broadcastable to logits"),
    ]),
    # the fused kernel serves the logits' gradient; the target's goes through the plain formula,
    # which the family's tests check against torch
    differentiable_args=(0,),
    aliases=("bce_with_logits", "bce"),
)


# --------------------------------------------------------------------------------------------------
# binary_focal_loss
# --------------------------------------------------------------------------------------------------


def _focal_block(x: Tensor, t: Tensor, w: Tensor | None, u: Tensor, g: Tensor | None, s: list[Tensor],
                 gamma: float, alpha: float | None) -> None:
    """``U = a ce q^gamma`` and ``dU/dx = a q^gamma [(p - t) + gamma ce (1 - 2t) p s / q]``.

    ``p = sigma(x)``, ``s = sigma(-x)`` (each to full relative precision, no ``1 - p``), ``q = 1 -
    p_t = (1 - t) p + t s`` floored at the dtype's smallest normal number, ``ce`` the cross-entropy
    and ``a = alpha_t``. ``p s / q <= 1``, so the gradient has no ``q^(gamma - 1)`` factor that
    could overflow for ``gamma < 1``.
    """
    ls, e, p, sm = s
    _log_sigmoid_into(x, ls, e)
    torch.addcmul(x, t, x, value=-1.0, out=u).sub_(ls)  # ce = (1 - t) x - log sigma(x)
    if gamma == 0.0:
        if g is not None:
            torch.sigmoid(x, out=g).sub_(t)
    else:
        torch.sigmoid(x, out=p)
        torch.neg(x, out=sm).sigmoid_()
        q = torch.lerp(p, sm, t, out=e).clamp_min_(_tiny(e))
        if g is not None:
            torch.sub(p, t, out=g)
            sm.mul_(p).div_(q)  # r = p s / q
            torch.addcmul(u, t, u, value=-2.0, out=p)  # (1 - 2t) ce
            g.addcmul_(p, sm, value=gamma)
        if gamma == 2.0:
            q.square_()
        elif gamma != 1.0:
            q.pow_(gamma)
        u.mul_(q)
        if g is not None:
            g.mul_(q)
    if alpha is not None:
        a = torch.mul(t, 2.0 * alpha - 1.0, out=p).add_(1.0 - alpha)
        u.mul_(a)
        if g is not None:
            g.mul_(a)


def _focal_plain(x: Tensor, t: Tensor, w: Tensor | None, gamma: float, alpha: float | None) -> Tensor:
    u = (1.0 - t) * x - F.logsigmoid(x)
    if gamma != 0.0:
        q = torch.lerp(torch.sigmoid(x), torch.sigmoid(-x), t).clamp_min(_tiny(x))
        u = u * (q if gamma == 1.0 else q.pow(gamma))
    if alpha is not None:
        u = u * ((1.0 - alpha) + (2.0 * alpha - 1.0) * t)
    return u


def _small_integer(exponent: float) -> bool:
    """Whether the native kernels raise to this power by multiplication (``lf_ipow``)."""
    return float(exponent).is_integer() and 0.0 <= exponent <= 7.0


def _binary_focal_native(gamma: float, alpha: float | None) -> str:
    """The native kernel: gamma 0 without alpha is BCE (the same kernel, so the same values); gamma 2,
    and other small integers, by multiplication; else ``exp(gamma log q)``."""
    if gamma == 0.0 and alpha is None:
        return "bce"
    if gamma == 2.0:
        return "binary_focal_g2"
    return "binary_focal_int" if _small_integer(gamma) else "binary_focal"


def _check_binary_focal_args(*, gamma: float = 2.0, alpha: float | None = 0.25, **_: object) -> None:
    loss = "binary_focal_loss"
    check_range(gamma, "gamma", loss, low=0.0)
    if alpha is not None:
        value = check_number(alpha, "alpha", loss)
        if value < 0.0 or value > 1.0 or math.isnan(value):
            raise ValueError(message(loss, "alpha", "must be in [0, 1] or None", alpha,
                                     hint="pass alpha=None to turn the balance off (torchvision's alpha=-1)"))


@loss_function
def binary_focal_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    gamma: float = 2.0,
    alpha: float | None = 0.25,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Sigmoid focal loss, for binary and multilabel targets (torchvision's ``sigmoid_focal_loss``).

    Binary cross-entropy scaled down on well-classified elements, so that training concentrates on
    the hard ones: dense detection heads, segmentation and multilabel tagging with many easy
    negatives.

    .. math::
        U_i = \alpha_{t,i}\, (1 - p_{t,i})^{\gamma}\, \mathrm{BCE}(x_i, t_i),
        \qquad p_{t,i} = t_i\, \sigma(x_i) + (1 - t_i)(1 - \sigma(x_i)),
        \qquad \alpha_{t,i} = \alpha\, t_i + (1 - \alpha)(1 - t_i)

    Args:
        logits: Unnormalised scores :math:`x`, any shape (one per label for multilabel).
        target: Targets :math:`t` in ``[0, 1]`` (hard 0/1 labels or soft), a floating-point
            tensor of the shape of ``logits`` (no broadcasting).
        gamma: Focusing parameter :math:`\gamma \ge 0`; 0 gives (alpha-weighted) cross-entropy.
        alpha: Weight :math:`\alpha \in [0, 1]` of the positive term, :math:`1-\alpha` of the
            negative; ``None`` turns the balance off. The default 0.25 is the paper's and
            torchvision's (torchvision turns it off with ``alpha=-1``; lossforge with ``None``).
            Note that the softmax :func:`focal_loss` defaults to ``alpha=None``.
        reduction, sample_weight, mask: See the conventions page. Unit: one element.

    Shape:
        - logits, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` differs in shape from ``logits``.
        TypeError: If ``logits`` or ``target`` is not floating point.
        ValueError: If ``gamma < 0`` or ``alpha`` is outside ``[0, 1]``; in validation mode, if a
            target is outside ``[0, 1]``.

    Note:
        Equals ``torchvision.ops.sigmoid_focal_loss`` with the same ``alpha`` and ``gamma`` for
        every reduction: :math:`\alpha_t` is part of :math:`U`, so ``"mean"`` divides by the number
        of elements, as torchvision does. With ``gamma=0`` and ``alpha=None`` it equals
        :func:`binary_cross_entropy_with_logits`. The cross-entropy comes from ``logsigmoid`` and
        :math:`1 - p_t = (1-t)\sigma(x) + t\,\sigma(-x)` from :math:`\sigma(\pm x)` (no ``1 - p``
        cancellation), so values and gradients are finite for logits of any magnitude; for
        :math:`\gamma < 1` the gradient at :math:`p_t \to 1` is finite (the factor's base is
        floored at the dtype's smallest normal number and its derivative is computed in a form
        without :math:`(1-p_t)^{\gamma-1}`; kornia #918). The gradient with respect to the logits
        is computed in closed form in the same fused pass as the value. On an empty input
        ``"mean"`` returns 0.0 with zero gradients.

    References:
        Lin et al., *Focal Loss for Dense Object Detection*, ICCV 2017.
        https://arxiv.org/abs/1708.02002 ; torchvision ``sigmoid_focal_loss``:
        https://docs.pytorch.org/vision/stable/generated/torchvision.ops.sigmoid_focal_loss.html

    Examples:
        >>> import torch
        >>> from lossforge.functional import binary_focal_loss
        >>> logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 4.0]])
        >>> target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
        >>> binary_focal_loss(logits, target)
        tensor(0.0573)
        >>> binary_focal_loss(logits, target, reduction="none")
        tensor([[4.5089e-04, 1.6994e-02, 2.8306e-01],
                [8.1962e-05, 4.3322e-02, 1.4679e-06]])
        >>> binary_focal_loss(logits, target, gamma=0.0, alpha=None)  # binary cross-entropy
        tensor(0.3624)
    """
    loss = "binary_focal_loss"
    _check_binary_focal_args(gamma=gamma, alpha=alpha)
    x, t = _prepare(logits, target, loss)
    params = (float(gamma), None if alpha is None else float(alpha))
    balance = (0.0, 1.0) if alpha is None else (2.0 * float(alpha) - 1.0, 1.0 - float(alpha))  # a = A t + B
    kernel = _fused.Kernel(_focal_block, _focal_plain, params, 4, BLOCK_ELEMENTS,
                           native=_binary_focal_native(float(gamma), alpha), native_params=(float(gamma), *balance))
    return _fused.reduced(kernel, x, t, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class BinaryFocalLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.binary_focal_loss`.

    Args:
        gamma: Focusing parameter, ``>= 0``.
        alpha: Weight of the positive term in ``[0, 1]``, or ``None``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = binary_focal_loss
    validate = _check_binary_focal_args

    def __init__(self, *, gamma: float = 2.0, alpha: float | None = 0.25, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, gamma=gamma, alpha=alpha)


def _with(samples: list[Sample], **kwargs: object) -> list[Sample]:
    return [Sample(s.args, {**s.kwargs, **kwargs}, s.name, s.plain) for s in samples]


def _focal_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    base = _binary_samples(dtype, device)
    logits, target = base[0].args
    return [*base,
            Sample((logits, target), {"gamma": 0.5, "alpha": None}, name="gamma=0.5, no alpha"),
            Sample((logits, target), {"gamma": 0.0, "alpha": 0.75}, name="gamma=0"),
            Sample((logits, target), {"gamma": 3.0}, name="gamma=3")]


def _focal_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    base = _binary_extremes(dtype, device)
    return [*base, *_with(base, gamma=0.5), *_with(base, gamma=0.0, alpha=None), *_with(base, gamma=1.5)]


register_loss(
    name="binary_focal", function=binary_focal_loss, module=BinaryFocalLoss, family="classification",
    input_kind="logits", target_kind="binary", unit="element",
    reference="Lin et al. 2017, Focal Loss for Dense Object Detection, arXiv:1708.02002; "
              "torchvision.ops.sigmoid_focal_loss",
    sample_inputs=_focal_samples, extreme_inputs=_focal_extremes,
    error_inputs=lambda: _binary_errors("binary_focal_loss", extra=[
        _hparam_error({"gamma": -1.0}, ValueError, r"binary_focal_loss: gamma must be >= 0, got -1.0"),
        _hparam_error({"alpha": 1.5}, ValueError, r"binary_focal_loss: alpha must be in \[0, 1\] or None, got 1.5"),
        _hparam_error({"alpha": -1.0}, ValueError, r"alpha must be in \[0, 1\] or None.*Hint: pass alpha=None"),
        _hparam_error({"gamma": "2"}, TypeError, r"binary_focal_loss: gamma must be a float or int"),
        _hparam_error({"gamma": -0.5}, ValueError, r"gamma must be >= 0", construction=True),
    ]),
    differentiable_args=(0,),  # as for binary_cross_entropy_with_logits
    aliases=("sigmoid_focal",),
)


# --------------------------------------------------------------------------------------------------
# asymmetric_loss
# --------------------------------------------------------------------------------------------------


def _check_asymmetric_args(*, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05,
                           **_: object) -> None:
    loss = "asymmetric_loss"
    check_range(gamma_pos, "gamma_pos", loss, low=0.0)
    check_range(gamma_neg, "gamma_neg", loss, low=0.0)
    check_range(clip, "clip", loss, low=0.0, high=1.0, high_inclusive=False)


def _asymmetric_terms(x: Tensor, gamma_pos: float, gamma_neg: float, clip: float) -> tuple[Tensor, Tensor]:
    """``(L+, L-)``: the losses of a positive and of a negative label, in log space."""
    log_p = F.logsigmoid(x)
    log_1mp = F.logsigmoid(-x)
    pos = -log_p if gamma_pos == 0.0 else -log_p * torch.exp(gamma_pos * log_1mp)
    if clip == 0.0:
        neg = -log_1mp if gamma_neg == 0.0 else -log_1mp * torch.exp(gamma_neg * log_p)
        return pos, neg
    # shifted probability p_m = max(p - m, 0); below the smallest normal number the term is 0
    # (double where: the masked branch is evaluated at 1/2, where it and its derivative are finite)
    shifted = torch.sigmoid(x) - clip
    keep = shifted > _tiny(x)
    pm = torch.where(keep, shifted, torch.full_like(shifted, 0.5))
    term = -torch.log1p(-pm)
    if gamma_neg != 0.0:
        term = term * pm.pow(gamma_neg)
    return pos, torch.where(keep, term, torch.zeros_like(term))


_THRESHOLD_OUT = torch.ops.aten.threshold.out


def _pow_(x: Tensor, gamma: float) -> Tensor:
    """``x ** gamma`` in place (``gamma > 0``; 1, 2 and 4 by multiplication, not ``pow``)."""
    if gamma == 1.0:
        return x
    if gamma == 2.0:
        return x.square_()
    if gamma == 4.0:
        return x.square_().square_()
    return x.pow_(gamma)


def _asymmetric_block(x: Tensor, t: Tensor, w: Tensor | None, u: Tensor, g: Tensor | None, s: list[Tensor],
                      gamma_pos: float, gamma_neg: float, clip: float) -> None:
    """``U = lerp(L-, L+, t)`` and ``dU/dx = lerp(dL-/dx, dL+/dx, t)`` in closed form.

    With ``p = sigma(x)``, ``r = sigma(-x)``, ``l+ = log p`` and ``l- = log(1 - p)``, each from its own
    kernel to full relative precision:

    - ``L+ = -l+ r^g+``, ``dL+/dx = r^g+ (g+ p l+ - r)``;
    - no clip: ``L- = -l- p^g-``, ``dL-/dx = p^g- (p - g- r l-)``;
    - clip ``m``: ``q = p - m`` where it exceeds the dtype's smallest normal number, else 0 (as the plain
      formula), ``c = -log1p(-q)``, ``L- = c q^g-`` and ``dL-/dx = p r q^g- (1 / (1 - q) + g- c / q)``
      (``c / q`` is bounded: no ``q^(g- - 1)`` factor to overflow for ``g- < 1``; for ``g- = 0`` the
      derivative is masked by ``sign(q)``, as the plain formula's ``where``).
    """
    lp, e, p, r, neg, a, b = s
    _log_sigmoid_into(x, lp, e)
    torch.sigmoid(x, out=p)
    torch.neg(x, out=r).sigmoid_()
    # positive label: L+ into u, dL+/dx into g
    if gamma_pos == 0.0:
        torch.neg(lp, out=u)
        if g is not None:
            torch.neg(r, out=g)
    else:
        f = _pow_(e.copy_(r), gamma_pos)  # r^g+
        torch.mul(lp, f, out=u).neg_()
        if g is not None:
            torch.mul(p, lp, out=g).mul_(gamma_pos).sub_(r).mul_(f)
    # negative label: L- into neg, dL-/dx into a
    if clip == 0.0:
        ln = b
        _log_sigmoid_into(torch.neg(x, out=neg), ln, e)  # log(1 - p), not l+ - x: that cancels for x << 0
        if gamma_neg == 0.0:
            torch.neg(ln, out=neg)
            if g is not None:
                a.copy_(p)
        else:
            f = _pow_(e.copy_(p), gamma_neg)  # p^g-
            torch.mul(ln, f, out=neg).neg_()
            if g is not None:
                torch.mul(r, ln, out=a).mul_(-gamma_neg).add_(p).mul_(f)
    else:
        q = _THRESHOLD_OUT(torch.sub(p, clip, out=b), _tiny(x), 0.0, out=b)
        c = torch.neg(q, out=neg).log1p_().neg_()  # -log1p(-q)
        fq = None if gamma_neg == 0.0 else _pow_(e.copy_(q), gamma_neg)  # q^g-
        if g is not None:
            torch.neg(q, out=a).add_(1.0).reciprocal_()  # 1 / (1 - q)
            if fq is None:
                a.mul_(torch.sign(q, out=lp))
            else:
                torch.div(c, torch.clamp(q, min=_tiny(x), out=lp), out=lp)  # c / q, bounded
                a.add_(lp, alpha=gamma_neg).mul_(fq)
            a.mul_(p).mul_(r)
        if fq is not None:
            c.mul_(fq)
    torch.lerp(neg, u, t, out=u)
    if g is not None:
        torch.lerp(a, g, t, out=g)


def _asymmetric_plain(x: Tensor, t: Tensor, w: Tensor | None, gamma_pos: float, gamma_neg: float,
                      clip: float) -> Tensor:
    pos, neg = _asymmetric_terms(x, gamma_pos, gamma_neg, clip)
    return t * pos + (1.0 - t) * neg


@loss_function
def asymmetric_loss(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    gamma_pos: float = 0.0,
    gamma_neg: float = 4.0,
    clip: float = 0.05,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Asymmetric loss (ASL) for multilabel classification.

    Focal-style down-weighting with separate focusing for positive and negative labels, plus a
    probability margin that discards very easy negatives altogether: for multilabel problems where
    each image has a few positive labels among many negatives.

    .. math::
        U_i = t_i\, L^{+}_i + (1 - t_i)\, L^{-}_i, \qquad
        L^{+} = -(1 - p)^{\gamma_+} \log p, \qquad
        L^{-} = -p_m^{\gamma_-} \log(1 - p_m),

    with :math:`p = \sigma(x)` and the shifted probability :math:`p_m = \max(p - m, 0)`.

    Args:
        logits: Unnormalised scores :math:`x`, any shape (``(N, C)`` for ``C`` labels).
        target: Targets :math:`t` in ``[0, 1]``, a floating-point tensor of the shape of
            ``logits``; 0/1 labels give the paper's loss, soft targets mix :math:`L^+` and :math:`L^-`
            linearly.
        gamma_pos: Focusing :math:`\gamma_+ \ge 0` of positive labels (paper: 0).
        gamma_neg: Focusing :math:`\gamma_- \ge 0` of negative labels (paper: 4).
        clip: Probability margin :math:`m \in [0, 1)` (paper: 0.05); 0 turns the shift off.
        reduction, sample_weight, mask: See the conventions page. Unit: one element (one label
            of one sample).

    Shape:
        - logits, target: ``(*)``, equal.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` differs in shape from ``logits``.
        TypeError: If ``logits`` or ``target`` is not floating point.
        ValueError: If ``gamma_pos`` or ``gamma_neg`` is negative or ``clip`` is outside
            ``[0, 1)``; in validation mode, if a target is outside ``[0, 1]``.

    Note:
        The paper and timm's ``AsymmetricLossMultiLabel`` sum over every element: that is
        ``reduction="sum"`` here (the default ``"mean"`` divides by the number of elements). timm
        clamps probabilities at ``eps=1e-8`` before the log, so its loss saturates at 18.4 for
        very wrong logits; here :math:`\log p` and :math:`(1 - p)^{\gamma_+}` come from
        ``logsigmoid`` and :math:`-\log(1 - p_m)` from ``log1p`` (it is at most :math:`-\log m`),
        so the loss grows linearly in the logit and values and gradients are finite for logits of
        any magnitude, including :math:`\gamma_- < 1` at :math:`p_m \to 0` (the shifted
        probability is floored at the dtype's smallest normal number). The gradient flows through
        the focusing weights (timm's ``disable_torch_grad_focal_loss=False``). With
        ``gamma_pos=gamma_neg=clip=0`` it equals :func:`binary_cross_entropy_with_logits`. The
        gradient with respect to the logits is computed in closed form in the same fused blockwise
        pass as the value (a plain ``"mean"`` or ``"sum"`` never stores the elementwise loss). On an
        empty input ``"mean"`` returns 0.0 with zero gradients.

    References:
        Ridnik et al., *Asymmetric Loss For Multi-Label Classification*, ICCV 2021.
        https://arxiv.org/abs/2009.14119

    Examples:
        >>> import torch
        >>> from lossforge.functional import asymmetric_loss
        >>> logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 4.0]])
        >>> target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
        >>> asymmetric_loss(logits, target, reduction="none")
        tensor([[1.2693e-01, 5.6780e-04, 9.1253e-02],
                [0.0000e+00, 6.9315e-01, 1.8150e-02]])
        >>> asymmetric_loss(logits, target, reduction="sum")
        tensor(0.9300)
    """
    loss = "asymmetric_loss"
    _check_asymmetric_args(gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip)
    x, t = _prepare(logits, target, loss)
    params = (float(gamma_pos), float(gamma_neg), float(clip))
    if torch.compiler.is_compiling() or _fused.transforms_active() or not (_fused.plain_float(x)
                                                                         and _fused.plain_float(t)):
        return reduce_loss(_asymmetric_plain(x, t, None, *params), reduction, sample_weight=sample_weight,
                           mask=mask, loss_name=loss)
    kernel = _fused.Kernel(_asymmetric_block, _asymmetric_plain, params, 7, BLOCK_ELEMENTS,
                           native=("asymmetric" if clip == 0.0 else "asymmetric_clip")
                           + ("_int" if _small_integer(gamma_pos) and _small_integer(gamma_neg) else ""),
                           native_params=params)
    return _fused.reduced(kernel, x, t, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class AsymmetricLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.asymmetric_loss`.

    Args:
        gamma_pos: Focusing of positive labels, ``>= 0``.
        gamma_neg: Focusing of negative labels, ``>= 0``.
        clip: Probability margin in ``[0, 1)``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = asymmetric_loss
    validate = _check_asymmetric_args

    def __init__(self, *, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip)


def _asymmetric_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    base = _binary_samples(dtype, device)
    logits, target = base[0].args
    return [*base,
            Sample((logits, target), {"gamma_pos": 1.0, "gamma_neg": 0.5, "clip": 0.0}, name="timm gammas, no clip"),
            Sample((logits, target), {"gamma_pos": 0.5, "gamma_neg": 2.0, "clip": 0.2}, name="gamma_pos=0.5")]


def _asymmetric_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    base = _binary_extremes(dtype, device)
    return [*base, *_with(base, gamma_pos=0.5, gamma_neg=0.5, clip=0.0), *_with(base, gamma_neg=0.5, clip=0.3)]


register_loss(
    name="asymmetric", function=asymmetric_loss, module=AsymmetricLoss, family="classification",
    input_kind="logits", target_kind="binary", unit="element",
    reference="Ridnik et al. 2021, Asymmetric Loss For Multi-Label Classification, arXiv:2009.14119",
    sample_inputs=_asymmetric_samples, extreme_inputs=_asymmetric_extremes,
    error_inputs=lambda: _binary_errors("asymmetric_loss", extra=[
        _hparam_error({"gamma_neg": -1.0}, ValueError, r"asymmetric_loss: gamma_neg must be >= 0, got -1.0"),
        _hparam_error({"gamma_pos": -1.0}, ValueError, r"asymmetric_loss: gamma_pos must be >= 0, got -1.0"),
        _hparam_error({"clip": 1.0}, ValueError, r"asymmetric_loss: clip must be in \[0, 1\), got 1.0"),
        _hparam_error({"clip": -0.1}, ValueError, r"clip must be in \[0, 1\)", construction=True),
    ]),
    differentiable_args=(0,),  # targets sit on the ends of [0, 1]: finite differences would leave it
    aliases=("asl",),
)
