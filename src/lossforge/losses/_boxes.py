"""Detection-box regression losses: predicted and target boxes ``(..., 4)`` in xyxy or cxcywh format.

Every loss here is ``1 - (IoU - penalty)`` for one pair of boxes, so its unit is one box. The shared
geometry (:func:`_geometry`) guards every division, ``atan`` and fractional power with the
double-``where`` pattern, so degenerate boxes (zero width, zero height, a point) give finite values
and finite gradients. Policies, the same for every loss of the family:

- a zero-area box against an identical box has IoU 1 (loss 0); against any other box it has IoU 0;
- a penalty term whose denominator is zero (the enclosing box has no area, the two centres
  coincide...) is 0;
- an inverted box (``x2 < x1`` or ``y2 < y1``; a negative width or height in cxcywh) raises
  ``ValueError`` in validation mode, naming its index; outside validation mode it is treated as an
  empty box that matches nothing (IoU 0), never as a perfect match;
- integer and half-precision boxes are computed in float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from .._core.base import FunctionLoss, loss_function
from .._core.checks import check_choice, check_range, check_same_shape
from .._core.errors import ShapeError, message
from .._core.numerics import safe_pow
from .._core.reduction import Reduction, check_reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, rand
from .._core.validation import validation_enabled

__all__ = [
    "iou_loss", "giou_loss", "diou_loss", "ciou_loss", "eiou_loss", "siou_loss",
    "IoULoss", "GIoULoss", "DIoULoss", "CIoULoss", "EIoULoss", "SIoULoss",
]

BoxFormat = Literal["xyxy", "cxcywh"]
BOX_FORMATS: tuple[str, ...] = ("xyxy", "cxcywh")
_LOW_PRECISION = (torch.float16, torch.bfloat16)


# ----------------------------------------------------------------------------------------- checks


def _as_float(boxes: object, argument: str, loss: str) -> Tensor:
    """Integer and half boxes become float32; float32/float64 stay; anything else is a TypeError."""
    if not isinstance(boxes, Tensor):
        raise TypeError(message(loss, argument, "must be a torch.Tensor", type(boxes).__name__))
    if boxes.dtype == torch.bool or boxes.is_complex():
        raise TypeError(message(loss, argument, "must be a real (floating-point or integer) tensor",
                                f"dtype {boxes.dtype}"))
    if not boxes.is_floating_point() or boxes.dtype in _LOW_PRECISION:
        return boxes.float()
    return boxes


def _first_inverted(boxes: Tensor, box_format: str) -> tuple[int, ...] | None:
    """Index (over the leading dimensions) of the first inverted box, or ``None``. Syncs the device."""
    if box_format == "xyxy":
        size = boxes[..., 2:] - boxes[..., :2]
    else:
        size = boxes[..., 2:]
    bad = (size < 0).any(-1)
    if not bool(bad.any()):
        return None
    flat = int(bad.reshape(-1).nonzero()[0])
    return tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), bad.shape)) if bad.dim() else ()


def _prepare(boxes: Tensor, target: Tensor, box_format: str, loss: str) -> tuple[Tensor, Tensor]:
    """Checks, float compute dtype, and conversion to xyxy corners."""
    check_choice(box_format, "box_format", loss, BOX_FORMATS)
    b = _as_float(boxes, "boxes", loss)
    t = _as_float(target, "target", loss)
    if b.dim() == 0 or b.shape[-1] != 4:
        raise ShapeError(message(loss, "boxes", "must have shape (..., 4)", tuple(b.shape)),
                         expected="(..., 4)", actual=tuple(b.shape))
    check_same_shape(b, t, loss, ("boxes", "target"))
    if b.dtype != t.dtype:
        common = torch.promote_types(b.dtype, t.dtype)
        b, t = b.to(common), t.to(common)
    if validation_enabled():
        expect = "(x1 <= x2 and y1 <= y2)" if box_format == "xyxy" else "(width and height >= 0)"
        for argument, x in (("boxes", b), ("target", t)):
            index = _first_inverted(x, box_format)
            if index is not None:
                shown = [round(float(v), 6) for v in x[index].detach()]
                raise ValueError(message(
                    loss, argument, f"must hold well-formed {box_format} boxes {expect}",
                    f"an inverted box at index {index[0] if len(index) == 1 else index}: {shown}",
                    hint="check box_format ('xyxy' = corners, 'cxcywh' = centre and size)"))
    if box_format == "cxcywh":
        b = torch.cat([b[..., :2] - 0.5 * b[..., 2:], b[..., :2] + 0.5 * b[..., 2:]], dim=-1)
        t = torch.cat([t[..., :2] - 0.5 * t[..., 2:], t[..., :2] + 0.5 * t[..., 2:]], dim=-1)
    return b, t


# ------------------------------------------------------------------------------------------ numerics


def _safe_div(num: Tensor, den: Tensor, fallback: Tensor | float = 0.0) -> Tensor:
    """``num / den`` where ``den > 0``, else ``fallback``; finite gradients everywhere (double where)."""
    ok = den > 0
    return torch.where(ok, num / torch.where(ok, den, 1.0), fallback)


class _Geometry(NamedTuple):
    """Per-box quantities (each of the leading shape); sizes are clamped at 0."""

    iou: Tensor  # intersection over union, with the degenerate-box policy
    union: Tensor
    w: Tensor  # prediction width and height
    h: Tensor
    wt: Tensor  # target width and height
    ht: Tensor
    cw: Tensor  # width and height of the smallest enclosing box
    ch: Tensor
    dx: Tensor  # target centre minus prediction centre
    dy: Tensor


def _axis(lo: Tensor, hi: Tensor, lo_t: Tensor, hi_t: Tensor) -> tuple[Tensor, ...]:
    """One axis: raw size of the prediction, sizes (clamped), overlap, enclosing size, centre offset.

    With ``s`` the sum of the two raw sizes and ``a = |hi - hi_t| + |lo - lo_t|``, the overlap is
    ``(s - a) / 2`` and the enclosing size ``(s + a) / 2`` (min and max written with ``abs``, whose
    backward is one elementwise product, instead of ``minimum``/``maximum``).
    """
    raw, raw_t = hi - lo, hi_t - lo_t
    d_lo, d_hi = lo - lo_t, hi - hi_t
    total = raw + raw_t
    spread = d_lo.abs() + d_hi.abs()
    overlap = ((total - spread) * 0.5).clamp_min(0)
    enclosing = ((total + spread) * 0.5).clamp_min(0)
    offset = (d_lo + d_hi) * -0.5
    return raw, raw.clamp_min(0), raw_t.clamp_min(0), overlap, enclosing, offset


def _geometry(b: Tensor, t: Tensor) -> _Geometry:
    """The quantities every IoU-family loss is built from; ``b``, ``t`` are xyxy corners.

    Written on the four unbound coordinates (one ``unbind`` per box tensor, whose backward is a
    single ``stack``), which keeps the autograd graph about as short as the unguarded formula's.
    """
    x1, y1, x2, y2 = b.unbind(-1)
    X1, Y1, X2, Y2 = t.unbind(-1)
    w_raw, w, wt, iw, cw, dx = _axis(x1, x2, X1, X2)
    h_raw, h, ht, ih, ch, dy = _axis(y1, y2, Y1, Y2)
    inter = iw * ih
    union = torch.addcmul(w * h, wt, ht) - inter
    with torch.no_grad():
        # Two zero-area boxes: IoU 1 if they are the same well-formed box, else 0.
        same = ((b == t).all(-1) & (w_raw >= 0) & (h_raw >= 0)).to(b.dtype)
    iou = _safe_div(inter, union, same)
    return _Geometry(iou, union, w, h, wt, ht, cw, ch, dx, dy)


def _safe_atan2(y: Tensor, x: Tensor) -> Tensor:
    """``atan2(y, x)`` (= ``atan(y / x)`` for ``x > 0``), 0 with zero gradient at ``(0, 0)``."""
    ok = (y != 0) | (x != 0)
    return torch.where(ok, torch.atan2(torch.where(ok, y, 1.0), torch.where(ok, x, 1.0)), 0.0)


def _distance_term(g: _Geometry) -> Tensor:
    """``rho^2(b, b_gt) / c^2``: squared centre distance over the enclosing box's squared diagonal."""
    return _safe_div(torch.addcmul(g.dx * g.dx, g.dy, g.dy), torch.addcmul(g.cw * g.cw, g.ch, g.ch))


# -------------------------------------------------------------------------------------- the formulas


def _iou_u(b: Tensor, t: Tensor) -> Tensor:
    return 1 - _geometry(b, t).iou


def _giou_u(b: Tensor, t: Tensor) -> Tensor:
    g = _geometry(b, t)
    hull = g.cw * g.ch
    return 1 - g.iou + _safe_div(hull - g.union, hull)


def _diou_u(b: Tensor, t: Tensor) -> Tensor:
    g = _geometry(b, t)
    return 1 - g.iou + _distance_term(g)


def _ciou_u(b: Tensor, t: Tensor, *, detach_alpha: bool = True) -> Tensor:
    g = _geometry(b, t)
    aspect = _safe_atan2(g.wt, g.ht) - _safe_atan2(g.w, g.h)
    v = (4 / math.pi**2) * aspect.square()
    alpha = _safe_div(v, (1 - g.iou) + v)
    if detach_alpha:
        alpha = alpha.detach()
    return 1 - g.iou + _distance_term(g) + alpha * v


def _eiou_u(b: Tensor, t: Tensor) -> Tensor:
    g = _geometry(b, t)
    side = _safe_div((g.w - g.wt).square(), g.cw.square()) + _safe_div((g.h - g.ht).square(), g.ch.square())
    return 1 - g.iou + _distance_term(g) + side


def _siou_u(b: Tensor, t: Tensor, *, theta: float = 4.0) -> Tensor:
    g = _geometry(b, t)
    dx2, dy2 = g.dx.square(), g.dy.square()
    # Angle cost: 1 - 2 sin^2(arcsin(|dy| / sigma) - pi/4) = sin(2 alpha) = 2 |dx| |dy| / sigma^2.
    angle = _safe_div(2 * (g.dx * g.dy).abs(), dx2 + dy2)
    gamma = 2 - angle
    distance = 2 - torch.exp(-gamma * _safe_div(dx2, g.cw.square())) - torch.exp(-gamma * _safe_div(dy2, g.ch.square()))
    omega_w = _safe_div((g.w - g.wt).abs(), torch.maximum(g.w, g.wt))
    omega_h = _safe_div((g.h - g.ht).abs(), torch.maximum(g.h, g.ht))
    shape = safe_pow(1 - torch.exp(-omega_w), theta) + safe_pow(1 - torch.exp(-omega_h), theta)
    return 1 - g.iou + 0.5 * (distance + shape)


def _box_loss(u_fn: Callable[..., Tensor], name: str, boxes: Tensor, target: Tensor, box_format: str,
              reduction: Reduction, sample_weight: Tensor | None, mask: Tensor | None, **options: object) -> Tensor:
    check_reduction(reduction, name)
    b, t = _prepare(boxes, target, box_format, name)
    return reduce_loss(u_fn(b, t, **options), reduction, sample_weight=sample_weight, mask=mask, loss_name=name)


# --------------------------------------------------------------------------------- public functions




@loss_function
def iou_loss(
    boxes: Tensor,
    target: Tensor,
    /,
    *,
    box_format: BoxFormat = "xyxy",
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""IoU loss: one minus the intersection over union of each predicted box and its target.

    The plain overlap loss (UnitBox); it is flat (gradient 0) for boxes that do not overlap, which
    :func:`giou_loss` and :func:`diou_loss` fix.

    .. math::
        U_i = 1 - \mathrm{IoU}(b_i, b^{gt}_i), \qquad
        \mathrm{IoU} = \frac{|b \cap b^{gt}|}{|b \cup b^{gt}|}

    Args:
        boxes: Predicted boxes ``(..., 4)``.
        target: Target boxes, the shape of ``boxes``.
        box_format: ``"xyxy"`` (corners ``x1, y1, x2, y2``) or ``"cxcywh"`` (centre and size).
        reduction, sample_weight, mask: See the conventions page. Unit: one box.

    Shape:
        - boxes, target: ``(..., 4)``, equal; integer, half or float.
        - output: ``(...)`` (one entry per box) if ``reduction="none"``, else ``()``; float32 for
          integer and half inputs, else the input dtype.

    Returns:
        The loss, reduced as requested; each box's value is in ``[0, 1]``.

    Raises:
        ShapeError: If the last dimension is not 4 or the shapes differ.
        TypeError: If a box tensor is bool or complex.
        ValueError: For an unknown ``box_format``; in validation mode, for an inverted box
            (the message names its index).

    Note:
        Degenerate boxes: a zero-area box against an identical box gives 0, against any other
        box 1; values and gradients are finite for every finite input. Outside validation mode an
        inverted box counts as empty (IoU 0). Unlike torchvision, no ``eps`` is added to the union,
        so IoU is exact for tiny boxes.

    References:
        Yu et al., *UnitBox: An Advanced Object Detection Network*, ACM MM 2016.
        https://arxiv.org/abs/1608.01471

    Examples:
        >>> import torch
        >>> from lossforge.functional import iou_loss
        >>> iou_loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 1.0, 3.0, 3.0]]))
        tensor(0.8571)
    """
    return _box_loss(_iou_u, "iou_loss", boxes, target, box_format, reduction, sample_weight, mask)


@loss_function
def giou_loss(
    boxes: Tensor,
    target: Tensor,
    /,
    *,
    box_format: BoxFormat = "xyxy",
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Generalized IoU loss: IoU minus the empty fraction of the smallest enclosing box.

    For box regression in detectors (DETR, FCOS...): unlike :func:`iou_loss` it still has a
    gradient when the boxes do not overlap.

    .. math::
        U_i = 1 - \mathrm{IoU} + \frac{|C| - |b \cup b^{gt}|}{|C|}

    where :math:`C` is the smallest box enclosing :math:`b` and :math:`b^{gt}`.

    Args:
        boxes: Predicted boxes ``(..., 4)``.
        target: Target boxes, the shape of ``boxes``.
        box_format: ``"xyxy"`` or ``"cxcywh"``.
        reduction, sample_weight, mask: See the conventions page. Unit: one box.

    Shape:
        - boxes, target: ``(..., 4)``, equal; integer, half or float.
        - output: ``(...)`` (one entry per box) if ``reduction="none"``, else ``()``; float32 for
          integer and half inputs, else the input dtype.

    Returns:
        The loss, reduced as requested; each box's value is in ``[0, 2]``.

    Raises:
        ShapeError: If the last dimension is not 4 or the shapes differ.
        TypeError: If a box tensor is bool or complex.
        ValueError: For an unknown ``box_format``; in validation mode, for an inverted box.

    Note:
        Known values: a box against itself 0; a quarter-overlapping box 0.75; touching boxes 1.0;
        diagonal (corner-touching) boxes 1.5. A zero-area box against itself gives 0 (torchvision:
        1.0); the enclosing-box term is 0 when the enclosing box has no area. Equals torchvision's
        ``generalized_box_iou_loss`` on well-formed boxes up to its ``eps=1e-7``.

    References:
        Rezatofighi et al., *Generalized Intersection over Union*, CVPR 2019.
        https://arxiv.org/abs/1902.09630

    Examples:
        >>> import torch
        >>> from lossforge.functional import giou_loss
        >>> box = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
        >>> giou_loss(box, torch.tensor([[2.0, 0.0, 4.0, 2.0]]))  # touching
        tensor(1.)
        >>> giou_loss(box, torch.tensor([[2.0, 2.0, 4.0, 4.0]]))  # diagonal
        tensor(1.5000)
    """
    return _box_loss(_giou_u, "giou_loss", boxes, target, box_format, reduction, sample_weight, mask)


@loss_function
def diou_loss(
    boxes: Tensor,
    target: Tensor,
    /,
    *,
    box_format: BoxFormat = "xyxy",
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Distance-IoU loss: IoU loss plus the normalised squared distance between the box centres.

    Converges faster than GIoU because the centre term pulls non-overlapping boxes together directly.

    .. math::
        U_i = 1 - \mathrm{IoU} + \frac{\rho^2(b, b^{gt})}{c^2}

    where :math:`\rho` is the distance between the centres and :math:`c` the diagonal of the
    smallest enclosing box.

    Args:
        boxes: Predicted boxes ``(..., 4)``.
        target: Target boxes, the shape of ``boxes``.
        box_format: ``"xyxy"`` or ``"cxcywh"``.
        reduction, sample_weight, mask: See the conventions page. Unit: one box.

    Shape:
        - boxes, target: ``(..., 4)``, equal; integer, half or float.
        - output: ``(...)`` (one entry per box) if ``reduction="none"``, else ``()``; float32 for
          integer and half inputs, else the input dtype.

    Returns:
        The loss, reduced as requested; each box's value is in ``[0, 2]``.

    Raises:
        ShapeError: If the last dimension is not 4 or the shapes differ.
        TypeError: If a box tensor is bool or complex.
        ValueError: For an unknown ``box_format``; in validation mode, for an inverted box.

    Note:
        Equals torchvision's ``distance_box_iou_loss`` on well-formed boxes up to its ``eps``.
        Degenerate boxes give finite values and gradients (see the module notes).

    References:
        Zheng et al., *Distance-IoU Loss*, AAAI 2020. https://arxiv.org/abs/1911.08287

    Examples:
        >>> import torch
        >>> from lossforge.functional import diou_loss
        >>> diou_loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[2.0, 0.0, 4.0, 2.0]]))
        tensor(1.2000)
    """
    return _box_loss(_diou_u, "diou_loss", boxes, target, box_format, reduction, sample_weight, mask)


@loss_function
def ciou_loss(
    boxes: Tensor,
    target: Tensor,
    /,
    *,
    box_format: BoxFormat = "xyxy",
    detach_alpha: bool = True,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Complete-IoU loss: DIoU plus an aspect-ratio consistency term.

    .. math::
        U_i = 1 - \mathrm{IoU} + \frac{\rho^2(b, b^{gt})}{c^2} + \alpha v, \qquad
        v = \frac{4}{\pi^2}\Big(\arctan\frac{w^{gt}}{h^{gt}} - \arctan\frac{w}{h}\Big)^2, \qquad
        \alpha = \frac{v}{(1 - \mathrm{IoU}) + v}

    Args:
        boxes: Predicted boxes ``(..., 4)``.
        target: Target boxes, the shape of ``boxes``.
        box_format: ``"xyxy"`` or ``"cxcywh"``.
        detach_alpha: Treat the trade-off weight :math:`\alpha` as a constant in the backward pass,
            as the authors' implementation and torchvision do (default). ``False`` differentiates
            it too, giving the exact gradient of the value.
        reduction, sample_weight, mask: See the conventions page. Unit: one box.

    Shape:
        - boxes, target: ``(..., 4)``, equal; integer, half or float.
        - output: ``(...)`` (one entry per box) if ``reduction="none"``, else ``()``; float32 for
          integer and half inputs, else the input dtype.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the last dimension is not 4 or the shapes differ.
        TypeError: If a box tensor is bool or complex.
        ValueError: For an unknown ``box_format``; in validation mode, for an inverted box.

    Note:
        :math:`\arctan(w/h)` is computed as ``atan2(w, h)``, so a zero-height box gives
        :math:`\pi/2` with a finite gradient (torchvision's ``atan(w / h)`` gives NaN gradients
        there); a zero-size box gives 0. :math:`\alpha` is 0 when :math:`v = 0` and IoU is 1.
        Equals torchvision's ``complete_box_iou_loss`` on well-formed boxes up to its ``eps``.

    References:
        Zheng et al., *Distance-IoU Loss*, AAAI 2020. https://arxiv.org/abs/1911.08287

    Examples:
        >>> import torch
        >>> from lossforge.functional import ciou_loss
        >>> ciou_loss(torch.tensor([[0.0, 0.0, 2.0, 1.0]]), torch.tensor([[0.0, 0.0, 1.0, 2.0]]))
        tensor(0.7629)
    """
    return _box_loss(_ciou_u, "ciou_loss", boxes, target, box_format, reduction, sample_weight, mask,
                     detach_alpha=bool(detach_alpha))


@loss_function
def eiou_loss(
    boxes: Tensor,
    target: Tensor,
    /,
    *,
    box_format: BoxFormat = "xyxy",
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Efficient-IoU loss: DIoU plus the width and height differences over the enclosing box's sides.

    Replaces CIoU's aspect-ratio term by direct width and height penalties, which do not vanish for
    boxes of the same aspect ratio but different size.

    .. math::
        U_i = 1 - \mathrm{IoU} + \frac{\rho^2(b, b^{gt})}{c^2}
              + \frac{(w - w^{gt})^2}{C_w^2} + \frac{(h - h^{gt})^2}{C_h^2}

    where :math:`C_w, C_h` are the width and height of the smallest enclosing box.

    Args:
        boxes: Predicted boxes ``(..., 4)``.
        target: Target boxes, the shape of ``boxes``.
        box_format: ``"xyxy"`` or ``"cxcywh"``.
        reduction, sample_weight, mask: See the conventions page. Unit: one box.

    Shape:
        - boxes, target: ``(..., 4)``, equal; integer, half or float.
        - output: ``(...)`` (one entry per box) if ``reduction="none"``, else ``()``; float32 for
          integer and half inputs, else the input dtype.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the last dimension is not 4 or the shapes differ.
        TypeError: If a box tensor is bool or complex.
        ValueError: For an unknown ``box_format``; in validation mode, for an inverted box.

    Note:
        This is the EIoU term without the paper's focal re-weighting (Focal-EIoU multiplies it by
        :math:`\mathrm{IoU}^\gamma`; compose with ``sample_weight`` for that). A side term whose
        enclosing side is 0 is 0.

    References:
        Zhang et al., *Focal and Efficient IOU Loss for Accurate Bounding Box Regression*,
        Neurocomputing 2022. https://arxiv.org/abs/2101.08158

    Examples:
        >>> import torch
        >>> from lossforge.functional import eiou_loss
        >>> eiou_loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
        tensor(1.3125)
    """
    return _box_loss(_eiou_u, "eiou_loss", boxes, target, box_format, reduction, sample_weight, mask)


def _check_siou_args(*, theta: float = 4.0, **_: object) -> None:
    check_range(theta, "theta", "siou_loss", low=0.0, low_inclusive=False)


@loss_function
def siou_loss(
    boxes: Tensor,
    target: Tensor,
    /,
    *,
    box_format: BoxFormat = "xyxy",
    theta: float = 4.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""SCYLLA-IoU loss: IoU loss plus angle-aware distance and shape costs.

    The distance cost is shaped by the angle between the centres' offset and the axes, so that a
    prediction first moves onto the nearest axis of the target.

    .. math::
        U_i = 1 - \mathrm{IoU} + \tfrac{1}{2}(\Delta + \Omega), \quad
        \Lambda = 1 - 2\sin^2\!\Big(\arcsin\frac{|\delta_y|}{\sigma} - \frac{\pi}{4}\Big)
                = \frac{2|\delta_x||\delta_y|}{\sigma^2},

        \Delta = \sum_{t \in \{x, y\}} \big(1 - e^{-(2 - \Lambda)\rho_t}\big), \quad
        \rho_t = \Big(\frac{\delta_t}{C_t}\Big)^2, \quad
        \Omega = \sum_{t \in \{w, h\}} \big(1 - e^{-\omega_t}\big)^\theta, \quad
        \omega_w = \frac{|w - w^{gt}|}{\max(w, w^{gt})}

    where :math:`\delta` is the offset between the centres, :math:`\sigma = \|\delta\|`, and
    :math:`C_x, C_y` the width and height of the smallest enclosing box.

    Args:
        boxes: Predicted boxes ``(..., 4)``.
        target: Target boxes, the shape of ``boxes``.
        box_format: ``"xyxy"`` or ``"cxcywh"``.
        theta: Exponent :math:`\theta > 0` of the shape cost (the paper uses 4).
        reduction, sample_weight, mask: See the conventions page. Unit: one box.

    Shape:
        - boxes, target: ``(..., 4)``, equal; integer, half or float.
        - output: ``(...)`` (one entry per box) if ``reduction="none"``, else ``()``; float32 for
          integer and half inputs, else the input dtype.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the last dimension is not 4 or the shapes differ.
        TypeError: If a box tensor is bool or complex.
        ValueError: If ``theta <= 0`` or ``box_format`` is unknown; in validation mode, for an
            inverted box.

    Note:
        The angle cost is computed in its closed form :math:`2|\delta_x||\delta_y|/\sigma^2`
        (equal to the paper's expression, without ``arcsin``), 0 when the centres coincide.

    References:
        Gevorgyan, *SIoU Loss: More Powerful Learning for Bounding Box Regression*, 2022.
        https://arxiv.org/abs/2205.12740

    Examples:
        >>> import torch
        >>> from lossforge.functional import siou_loss
        >>> siou_loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 1.0, 3.0, 3.0]]))
        tensor(0.9623)
    """
    _check_siou_args(theta=theta)
    return _box_loss(_siou_u, "siou_loss", boxes, target, box_format, reduction, sample_weight, mask,
                     theta=float(theta))


# ---------------------------------------------------------------------------------------- modules


def _check_box_args(*, box_format: str = "xyxy", **_: object) -> None:
    check_choice(box_format, "box_format", "box loss", BOX_FORMATS)


class IoULoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.iou_loss`.

    Args:
        box_format: ``"xyxy"`` or ``"cxcywh"``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = iou_loss
    validate = _check_box_args

    def __init__(self, *, box_format: BoxFormat = "xyxy", reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, box_format=box_format)


class GIoULoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.giou_loss`.

    Args:
        box_format: ``"xyxy"`` or ``"cxcywh"``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = giou_loss
    validate = _check_box_args

    def __init__(self, *, box_format: BoxFormat = "xyxy", reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, box_format=box_format)


class DIoULoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.diou_loss`.

    Args:
        box_format: ``"xyxy"`` or ``"cxcywh"``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = diou_loss
    validate = _check_box_args

    def __init__(self, *, box_format: BoxFormat = "xyxy", reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, box_format=box_format)


class CIoULoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.ciou_loss`.

    Args:
        box_format: ``"xyxy"`` or ``"cxcywh"``.
        detach_alpha: Treat the trade-off weight as a constant in the backward pass (default).
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = ciou_loss
    validate = _check_box_args

    def __init__(self, *, box_format: BoxFormat = "xyxy", detach_alpha: bool = True,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, box_format=box_format, detach_alpha=detach_alpha)


class EIoULoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.eiou_loss`.

    Args:
        box_format: ``"xyxy"`` or ``"cxcywh"``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = eiou_loss
    validate = _check_box_args

    def __init__(self, *, box_format: BoxFormat = "xyxy", reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, box_format=box_format)


def _check_siou_module_args(*, box_format: str = "xyxy", theta: float = 4.0, **_: object) -> None:
    _check_box_args(box_format=box_format)
    _check_siou_args(theta=theta)


class SIoULoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.siou_loss`.

    Args:
        box_format: ``"xyxy"`` or ``"cxcywh"``.
        theta: Exponent of the shape cost, > 0.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = siou_loss
    validate = _check_siou_module_args

    def __init__(self, *, box_format: BoxFormat = "xyxy", theta: float = 4.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, box_format=box_format, theta=theta)


# ----------------------------------------------------------------------------------- registration


def _random_boxes(n: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device | str,
                  scale: float = 10.0) -> Tensor:
    """Well-formed xyxy boxes: corners in ``[0, scale)``, sizes in ``[0.5, scale/2)``."""
    lo = rand(n, 2, gen=gen, dtype=torch.float64, device="cpu", high=scale)
    size = rand(n, 2, gen=gen, dtype=torch.float64, device="cpu", low=0.5, high=scale / 2)
    return torch.cat([lo, lo + size], dim=-1).to(device=device, dtype=dtype)


def _to_cxcywh(b: Tensor) -> Tensor:
    return torch.cat([0.5 * (b[..., :2] + b[..., 2:]), b[..., 2:] - b[..., :2]], dim=-1)


def _box_samples(extra: dict[str, Any] | None = None) -> Callable[[torch.dtype, torch.device | str], list[Sample]]:
    kw = dict(extra or {})

    def samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        g = generator(0)
        boxes = _random_boxes(8, g, dtype, device)
        target = _random_boxes(8, g, dtype, device)
        # Half the predictions near their targets, so every term is exercised with overlap.
        near = target + rand(8, 4, gen=g, dtype=dtype, device=device, low=-0.4, high=0.4)
        boxes = torch.where(torch.arange(8, device=device).unsqueeze(-1) % 2 == 0, near, boxes)
        batched = _random_boxes(6, g, dtype, device).view(2, 3, 4)
        batched_t = _random_boxes(6, g, dtype, device).view(2, 3, 4)
        return [
            Sample((boxes, target), dict(kw), name="(N, 4) xyxy"),
            Sample((batched, batched_t), dict(kw), name="(B, N, 4)"),
            Sample((_to_cxcywh(boxes), _to_cxcywh(target)), {**kw, "box_format": "cxcywh"}, name="cxcywh"),
            Sample((boxes, target.round().to(torch.int64)), dict(kw), name="integer target"),
        ]

    return samples


def _box_extremes(extra: dict[str, Any] | None = None) -> Callable[[torch.dtype, torch.device | str], list[Sample]]:
    kw = dict(extra or {})

    def samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        def t(rows: list[list[float]]) -> Tensor:
            return torch.tensor(rows, dtype=dtype, device=device)

        degenerate = t([[0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 2], [0, 0, 2, 0], [0, 0, 2, 2], [0, 0, 0, 2]])
        degenerate_t = t([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 2, 2], [0, 0, 0, 2], [0, 0, 0, 2]])
        far = t([[0, 0, 1, 1], [-1e4, -1e4, -1e4 + 1, -1e4 + 1], [0, 0, 1e4, 1e-3]])
        far_t = t([[1e4, 1e4, 1e4 + 1, 1e4 + 1], [1e4, 1e4, 1e4, 1e4], [0, 0, 1e-3, 1e4]])
        return [
            Sample((degenerate, degenerate_t), dict(kw), name="zero-area boxes"),
            Sample((far, far_t), dict(kw), name="far apart, thin"),
        ]

    return samples


def _box_errors(loss: str, extra: list[ErrorSample] | None = None) -> Callable[[], list[ErrorSample]]:
    def errors() -> list[ErrorSample]:
        b = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0]])
        inverted = torch.tensor([[0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 1.0, 1.0]])
        return [
            ErrorSample((b, inverted), {}, ValueError,
                        rf"{loss}: target must hold well-formed xyxy boxes .*inverted box at index 1"),
            ErrorSample((inverted, b), {}, ValueError,
                        r"boxes must hold well-formed .*index 1: \[2.0, 0.0, 1.0, 1.0\]"),
            ErrorSample((b, torch.tensor([[0.5, 0.5, -1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])), {"box_format": "cxcywh"},
                        ValueError, r"well-formed cxcywh boxes \(width and height >= 0\).*index 0"),
            ErrorSample((b[:, :3], b[:, :3]), {}, ValueError,
                        rf"{loss}: boxes must have shape \(\.\.\., 4\), got \(2, 3\)"),
            ErrorSample((b, b[:1]), {}, ValueError, r"target must have the shape of boxes \(2, 4\), got \(1, 4\)"),
            ErrorSample((b, b.bool()), {}, TypeError, r"target must be a real .* got dtype torch.bool"),
            ErrorSample((b, b), {"box_format": "xywh"}, ValueError, r"box_format must be one of .*'xyxy'"),
            ErrorSample((b, b), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
            ErrorSample((b, b), {"weight": torch.ones(2)}, TypeError, r"Hint: use sample_weight="),
            ErrorSample((), {"box_format": "xywh"}, ValueError, r"box_format must be one of", at_construction=True),
            *(extra or []),
        ]

    return errors


_TV = "torchvision.ops "
for _name, _fn, _module, _ref, _extra, _errs in [
    ("iou", iou_loss, IoULoss, "Yu et al. 2016 (UnitBox), arXiv:1608.01471", None, None),
    ("giou", giou_loss, GIoULoss, "Rezatofighi et al. 2019, arXiv:1902.09630; " + _TV + "generalized_box_iou_loss",
     None, None),
    ("diou", diou_loss, DIoULoss, "Zheng et al. 2020, arXiv:1911.08287; " + _TV + "distance_box_iou_loss", None, None),
    # The default (alpha a constant in backward) is not the gradient of the value: gradcheck runs
    # on the exact-gradient variant first; the default is checked by the other samples.
    ("ciou", ciou_loss, CIoULoss, "Zheng et al. 2020, arXiv:1911.08287; " + _TV + "complete_box_iou_loss",
     {"detach_alpha": False}, None),
    ("eiou", eiou_loss, EIoULoss, "Zhang et al. 2022 (Focal-EIoU), arXiv:2101.08158", None, None),
    ("siou", siou_loss, SIoULoss, "Gevorgyan 2022, arXiv:2205.12740", None,
     [ErrorSample((torch.zeros(1, 4), torch.zeros(1, 4)), {"theta": 0.0}, ValueError,
                  r"siou_loss: theta must be > 0, got 0.0"),
      ErrorSample((), {"theta": -1.0}, ValueError, r"theta must be > 0", at_construction=True)]),
]:
    _samples = _box_samples(_extra)
    if _extra is not None:
        _plain = _samples

        def _with_default(dtype: torch.dtype, device: torch.device | str,
                          _plain: Callable[..., list[Sample]] = _plain) -> list[Sample]:
            out = _plain(dtype, device)
            first = out[0]
            return [*out, Sample(first.args, {}, name="defaults")]

        _samples = _with_default
    register_loss(
        name=_name, function=_fn, module=_module, family="boxes", input_kind="boxes", target_kind="boxes",
        unit="box", reference=_ref, sample_inputs=_samples, error_inputs=_box_errors(_fn.__name__, _errs),
        extreme_inputs=_box_extremes(_extra), differentiable_args=(0,),
    )
