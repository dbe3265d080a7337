"""Classification-style metric losses with learnable class centres or proxies: ArcFace, CosFace,
SphereFace, sub-centre ArcFace, Proxy-Anchor, Proxy-NCA.

The functions take the centres as a tensor argument ``(C, D)`` (sub-centre ArcFace: ``(C, K, D)``);
the modules own them as ``nn.Parameter``\\ s created from ``num_classes`` and ``embedding_dim``.
Cosines come from one matrix product of normalised rows; angular margins are applied with
polynomials in the cosine (no ``acos`` in the differentiated path), finite at cosine exactly +-1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._core.base import FunctionLoss, loss_function, refuse_unexpected
from .._core.checks import check_float, check_index_range, check_range, upcast
from .._core.errors import ShapeError, message
from .._core.reduction import Reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, randn
from ._metric_ops import (
    check_embeddings,
    check_flag,
    check_labels,
    check_nonnegative,
    check_positive,
    gather_rows,
    masked_logsumexp,
    norm_eps,
    safe_norm,
    safe_normalize,
    safe_sqrt,
)

__all__ = [
    "ArcFaceLoss",
    "CosFaceLoss",
    "ProxyAnchorLoss",
    "ProxyNCALoss",
    "SphereFaceLoss",
    "SubCenterArcFaceLoss",
    "arcface_loss",
    "cosface_loss",
    "proxy_anchor_loss",
    "proxy_nca_loss",
    "sphereface_loss",
    "subcenter_arcface_loss",
]


def _prepare(embeddings: object, target: object, centers: object, loss: str, argument: str = "centers",
             sub_centers: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Checks (centres ``(C, D)`` or ``(C, K, D)`` matching the embeddings), float32 compute for half
    inputs, and in validation mode every label in ``[0, C)``."""
    x = check_embeddings(embeddings, "embeddings", loss)
    y = check_labels(target, x, loss)
    check_float(centers, argument, loss)
    w = cast(Tensor, centers)
    layout = "(C, K, D)" if sub_centers else "(C, D)"
    if w.dim() != (3 if sub_centers else 2) or w.shape[-1] != x.shape[1]:
        raise ShapeError(message(loss, argument, f"must have shape {layout} with D = {x.shape[1]} (the embeddings' "
                                 f"size)", tuple(w.shape)), expected=layout, actual=tuple(w.shape))
    if w.device != x.device:
        raise ValueError(f"{loss}: embeddings is on {x.device} but {argument} is on {w.device}. "
                         f"Hint: move both to one device.")
    check_index_range(y, w.shape[0], loss)
    return upcast(x), y, upcast(w).to(upcast(x).dtype)


def _cosines(x: Tensor, w: Tensor, eps: float) -> Tensor:
    """``(N, C)`` cosines; for sub-centres ``(C, K, D)`` the best of each class's K. ``eps``: the
    shortest norm divided by (:func:`norm_eps` of the input dtype)."""
    xn = safe_normalize(x, eps)
    if w.dim() == 3:
        c, k, d = w.shape
        return (xn @ safe_normalize(w.reshape(c * k, d), eps).T).reshape(-1, c, k).amax(-1)
    return xn @ safe_normalize(w, eps).T


def _with_target(cos: Tensor, target: Tensor, value: Tensor) -> Tensor:
    """``cos`` with each row's target entry replaced by ``value`` (differentiable in both)."""
    return cos.scatter(1, target.unsqueeze(1), value.unsqueeze(1))


def _arc(cos_t: Tensor, margin: float) -> Tensor:
    r"""ArcFace's :math:`\cos(\theta + m)` as :math:`c \cos m - \sqrt{1 - c^2} \sin m`, with the
    paper's fallback :math:`c - m \sin m` beyond :math:`\theta > \pi - m` (monotone in :math:`\theta`)."""
    sin_t = safe_sqrt(1.0 - cos_t * cos_t)  # zero gradient at |c| = 1: finite
    shifted = cos_t * math.cos(margin) - sin_t * math.sin(margin)
    return torch.where(cos_t >= math.cos(math.pi - margin), shifted, cos_t - margin * math.sin(margin))


def _centers_samples(sub_centers: int = 0, per_class: bool = False,
                     **kwargs: Any) -> Callable[[torch.dtype, torch.device | str], list[Sample]]:
    """Embeddings ``(8, 4)``, every one of 5 classes present, centres; weights and masks per unit
    (per sample, or per class with ``per_class``)."""

    def samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        g = generator(8)
        shape = (5, sub_centers, 4) if sub_centers else (5, 4)
        x = randn(8, 4, gen=g, dtype=dtype, device=device)
        w = randn(*shape, gen=g, dtype=dtype, device=device)
        t = torch.tensor([0, 1, 2, 3, 4, 1, 3, 0], device=device)  # every class present
        units = 5 if per_class else 8
        sw = (torch.rand(units, generator=g, dtype=torch.float64) + 0.5).to(device=device, dtype=torch.float32)
        m = torch.tensor([True, True, False, True, True, False, True, True][:units], device=device)
        return [
            Sample((x, t, w), dict(kwargs), name="plain"),
            Sample((x * 5.0, t, w), {**kwargs, "sample_weight": sw}, name="sample_weight", plain=False),
            Sample((x, t, w), {**kwargs, "mask": m}, name="mask", plain=False),
        ]

    return samples


def _centers_extremes(sub_centers: int = 0, **kwargs: Any) -> Callable[[torch.dtype, torch.device | str],
                                                                      list[Sample]]:
    def samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        g = generator(9)
        shape = (3, sub_centers, 4) if sub_centers else (3, 4)
        w = randn(*shape, gen=g, dtype=dtype, device=device)
        first = w[:, 0] if sub_centers else w
        t = torch.tensor([0, 1, 2, 0], device=device)
        exact = torch.stack([first[0], -first[1], first[2] * 3.0, -first[0]])  # cosine exactly +1 and -1
        zero = torch.zeros(4, 4, dtype=dtype, device=device)
        return [
            Sample((exact, t, w), dict(kwargs), name="cosine exactly +-1"),
            Sample((zero, t, w), dict(kwargs), name="zero-norm embeddings"),
            Sample((exact * 1e4, t, w), dict(kwargs), name="large norms"),
            Sample((exact[:1], t[:1], w), dict(kwargs), name="batch of one"),
        ]

    return samples


def _centers_errors(loss: str, argument: str = "centers", sub_centers: bool = False,
                    extra: list[ErrorSample] | None = None) -> list[ErrorSample]:
    x = torch.randn(4, 3)
    t = torch.tensor([0, 1, 2, 1])
    w = torch.randn(3, 2, 3) if sub_centers else torch.randn(3, 3)
    bad = torch.randn(3, 2, 5) if sub_centers else torch.randn(3, 5)
    layout = r"\(C, K, D\)" if sub_centers else r"\(C, D\)"
    return [
        ErrorSample((x, t.float(), w), {}, TypeError, rf"{loss}: target must be an integer tensor of labels"),
        ErrorSample((x, t[:2], w), {}, ValueError, rf"{loss}: target must have shape \(N,\) = \(4,\)"),
        ErrorSample((x, t, bad), {}, ValueError, rf"{loss}: {argument} must have shape {layout} with D = 3"),
        ErrorSample((x, t, w.long()), {}, TypeError, rf"{loss}: {argument} must be a floating-point tensor"),
        ErrorSample((x, t + 2, w), {}, ValueError, rf"{loss}: target must hold class indices in \[0, 2\], got class 4"),
        ErrorSample((x[0], t, w), {}, ValueError, rf"{loss}: embeddings must have shape \(N, D\)"),
        ErrorSample((x, t, w), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((x, t, w), {"weight": w}, TypeError, r"weight= is not an argument"),
        *(extra or []),
    ]


def _hyper_error(args: tuple[Any, ...], kwargs: dict[str, Any], exc: type[BaseException], match: str,
                 module_kwargs: dict[str, Any]) -> list[ErrorSample]:
    return [ErrorSample(args, kwargs, exc, match),
            ErrorSample((), {**module_kwargs, **kwargs}, exc, match, at_construction=True)]


def _module_for_sample(
    cls: type[nn.Module], attribute: str
) -> Callable[..., tuple[nn.Module, tuple[Any, ...], dict[str, Any]]]:
    """``(sample, **kwargs) -> (module, args, call_kwargs)``: the module built for a sample's centres,
    with its parameter set to them, and what to call it with."""

    def build(sample: Sample, **kwargs: Any) -> tuple[nn.Module, tuple[Any, ...], dict[str, Any]]:
        x, t, w = sample.args
        sizes: dict[str, int] = {"num_classes": w.shape[0], "embedding_dim": w.shape[-1]}
        if w.dim() == 3:
            sizes["sub_centers"] = w.shape[1]
        module = cls(**sizes, **sample.module_kwargs(), **kwargs).to(dtype=w.dtype, device=w.device)
        with torch.no_grad():
            getattr(module, attribute).copy_(w)
        return module, (x, t), sample.call_kwargs()

    return build


class _CentersLoss(FunctionLoss):
    """A loss module that owns ``(num_classes, [sub_centers,] embedding_dim)`` centres."""

    parameter_name = "centers"

    def __init__(self, *, num_classes: int, embedding_dim: int, sub_centers: int = 0,
                 reduction: Reduction = "mean", **hparams: Any) -> None:
        name = type(self).__name__
        for arg, value in (("num_classes", num_classes), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(message(name, arg, "must be a positive int", repr(value)))
        super().__init__(reduction=reduction, **hparams)
        shape = (num_classes, sub_centers, embedding_dim) if sub_centers else (num_classes, embedding_dim)
        weight = nn.Parameter(torch.empty(shape))
        self.init_parameter(weight)
        setattr(self, self.parameter_name, weight)
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim

    def init_parameter(self, weight: Tensor) -> None:
        nn.init.normal_(weight, std=0.01)

    def forward(self, embeddings: Tensor, target: Tensor, *,  # type: ignore[override]
                sample_weight: Tensor | None = None, mask: Tensor | None = None, **unexpected: Any) -> Tensor:
        refuse_unexpected(type(self).__name__, unexpected, ("sample_weight", "mask"))
        return type(self).function(embeddings, target, getattr(self, self.parameter_name), **self.hparams(),
                                   reduction=self.reduction, sample_weight=sample_weight, mask=mask)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}, " + super().extra_repr()


# ---------------------------------------------------------------------------------------------- ArcFace

def _check_arcface_args(*, margin: float, scale: float, **_: object) -> None:
    _check_margin_scale("arcface_loss", margin, scale, high=math.pi / 2)


def _check_margin_scale(loss: str, margin: float, scale: float, high: float = math.inf) -> None:
    check_range(margin, "margin", loss, low=0.0, high=high)
    check_positive(scale, "scale", loss)


@loss_function
def arcface_loss(
    embeddings: Tensor,
    target: Tensor,
    centers: Tensor,
    /,
    *,
    margin: float = 0.5,
    scale: float = 64.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""ArcFace (additive angular margin) loss against learnable class centres.

    The softmax over the scaled cosines to the class centres, with an angular margin added to
    the angle of the target class:

    .. math::
        U_i = -\log \frac{e^{s \cos(\theta_{y_i} + m)}}{e^{s \cos(\theta_{y_i} + m)}
              + \sum_{j \ne y_i} e^{s \cos \theta_j}},
        \qquad \cos\theta_j = \frac{x_i \cdot W_j}{\lVert x_i \rVert \lVert W_j \rVert}

    For :math:`\theta_{y_i} > \pi - m`, :math:`\cos(\theta + m)` is replaced by
    :math:`\cos\theta - m \sin m`, which keeps the target logit decreasing in the angle (the
    authors' code).

    Args:
        embeddings: ``(N, D)`` embeddings.
        target: ``(N,)`` class indices in ``[0, C)``.
        centers: ``(C, D)`` class centres :math:`W` (the module owns them as a parameter).
        margin: :math:`m \in [0, \pi/2]`, in radians (paper: 0.5).
        scale: :math:`s > 0` (paper: 64).
        reduction, sample_weight, mask: See the conventions page. Unit: a sample.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``; centers: ``(C, D)``.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``centers`` is not ``(C, D)`` for embeddings ``(N, D)``, or the labels do not match.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``margin`` or ``scale`` is out of range; in validation mode, if a label is
            not in ``[0, C)``.

    Note:
        :math:`\cos(\theta + m)` is computed as :math:`c \cos m - \sqrt{1 - c^2} \sin m` with a
        safe square root, so the gradient is finite at cosine exactly :math:`\pm 1`, where
        ``acos`` has none; log-softmax keeps large scales finite. Zero-norm embeddings are finite.
        The loss is per sample (no batch coupling), so DDP needs no gathering.

    References:
        Deng, Guo, Xue and Zafeiriou, *ArcFace: Additive Angular Margin Loss for Deep Face
        Recognition*, CVPR 2019. https://arxiv.org/abs/1801.07698

    Examples:
        >>> import torch
        >>> from lossforge.functional import arcface_loss
        >>> x = torch.tensor([[1.0, 0.2], [0.1, 1.0], [-1.0, 0.0]])
        >>> centers = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
        >>> arcface_loss(x, torch.tensor([0, 1, 2]), centers, scale=8.0)
        tensor(0.0050)
    """
    _check_arcface_args(margin=margin, scale=scale)
    x, y, w = _prepare(embeddings, target, centers, "arcface_loss")
    cos = _cosines(x, w, norm_eps(embeddings.dtype))
    cos_t = cos.gather(1, y.unsqueeze(1)).squeeze(1)
    logits = scale * _with_target(cos, y, _arc(cos_t, margin))
    return reduce_loss(F.cross_entropy(logits, y, reduction="none"), reduction, sample_weight=sample_weight,
                       mask=mask, loss_name="arcface_loss")


class ArcFaceLoss(_CentersLoss):
    """Module form of :func:`lossforge.functional.arcface_loss`; owns ``centers`` ``(C, D)``.

    Args:
        num_classes: C. embedding_dim: D.
        margin, scale, reduction: As in the function.
    """

    function = arcface_loss
    validate = _check_arcface_args

    def __init__(self, *, num_classes: int, embedding_dim: int, margin: float = 0.5, scale: float = 64.0,
                 reduction: Reduction = "mean") -> None:
        super().__init__(num_classes=num_classes, embedding_dim=embedding_dim, reduction=reduction, margin=margin,
                         scale=scale)


# ---------------------------------------------------------------------------------------------- CosFace

def _check_cosface_args(*, margin: float, scale: float, **_: object) -> None:
    _check_margin_scale("cosface_loss", margin, scale)


@loss_function
def cosface_loss(
    embeddings: Tensor,
    target: Tensor,
    centers: Tensor,
    /,
    *,
    margin: float = 0.35,
    scale: float = 64.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""CosFace (large margin cosine) loss against learnable class centres.

    .. math::
        U_i = -\log \frac{e^{s (\cos\theta_{y_i} - m)}}{e^{s (\cos\theta_{y_i} - m)}
              + \sum_{j \ne y_i} e^{s \cos \theta_j}}

    Args:
        embeddings: ``(N, D)`` embeddings.
        target: ``(N,)`` class indices in ``[0, C)``.
        centers: ``(C, D)`` class centres (the module owns them as a parameter).
        margin: :math:`m \ge 0`, the cosine margin (paper: 0.35).
        scale: :math:`s > 0` (paper: 64).
        reduction, sample_weight, mask: See the conventions page. Unit: a sample.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``; centers: ``(C, D)``.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``centers`` is not ``(C, D)`` for embeddings ``(N, D)``, or the labels do not match.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``margin`` or ``scale`` is out of range; in validation mode, if a label is
            not in ``[0, C)``.

    Note:
        Log-softmax keeps large scales finite; zero-norm embeddings are finite. Per sample, so
        DDP needs no gathering.

    References:
        Wang et al., *CosFace: Large Margin Cosine Loss for Deep Face Recognition*, CVPR 2018.
        https://arxiv.org/abs/1801.09414

    Examples:
        >>> import torch
        >>> from lossforge.functional import cosface_loss
        >>> x = torch.tensor([[1.0, 0.2], [0.1, 1.0], [-1.0, 0.0]])
        >>> centers = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
        >>> cosface_loss(x, torch.tensor([0, 1, 2]), centers, scale=8.0)
        tensor(0.0171)
    """
    _check_cosface_args(margin=margin, scale=scale)
    x, y, w = _prepare(embeddings, target, centers, "cosface_loss")
    cos = _cosines(x, w, norm_eps(embeddings.dtype))
    cos_t = cos.gather(1, y.unsqueeze(1)).squeeze(1)
    logits = scale * _with_target(cos, y, cos_t - margin)
    return reduce_loss(F.cross_entropy(logits, y, reduction="none"), reduction, sample_weight=sample_weight,
                       mask=mask, loss_name="cosface_loss")


class CosFaceLoss(_CentersLoss):
    """Module form of :func:`lossforge.functional.cosface_loss`; owns ``centers`` ``(C, D)``.

    Args:
        num_classes: C. embedding_dim: D.
        margin, scale, reduction: As in the function.
    """

    function = cosface_loss
    validate = _check_cosface_args

    def __init__(self, *, num_classes: int, embedding_dim: int, margin: float = 0.35, scale: float = 64.0,
                 reduction: Reduction = "mean") -> None:
        super().__init__(num_classes=num_classes, embedding_dim=embedding_dim, reduction=reduction, margin=margin,
                         scale=scale)


# ------------------------------------------------------------------------------------------- SphereFace

def _check_sphereface_args(*, margin: int, scale: float, **_: object) -> None:
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 1:
        raise ValueError(message("sphereface_loss", "margin", "must be an int >= 1 (the angle multiplier)",
                                 repr(margin)))
    check_positive(scale, "scale", "sphereface_loss")


def _chebyshev(c: Tensor, m: int) -> Tensor:
    """:math:`\\cos(m \\theta) = T_m(\\cos \\theta)`, by the three-term recurrence (a loop over m)."""
    prev, cur = torch.ones_like(c), c
    for _ in range(m - 1):
        prev, cur = cur, 2.0 * c * cur - prev
    return cur if m >= 1 else prev


@loss_function
def sphereface_loss(
    embeddings: Tensor,
    target: Tensor,
    centers: Tensor,
    /,
    *,
    margin: int = 4,
    scale: float = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""SphereFace (A-Softmax, multiplicative angular margin) loss against learnable class centres.

    Logits are :math:`s \lVert x_i \rVert \cos\theta_j` with the target's :math:`\cos\theta`
    replaced by the monotone extension of :math:`\cos(m\theta)`:

    .. math::
        \psi(\theta) = (-1)^k \cos(m\theta) - 2k, \quad \theta \in \Big[\frac{k\pi}{m}, \frac{(k+1)\pi}{m}\Big],
        \qquad U_i = -\log \operatorname{softmax}\big(s \lVert x_i \rVert [\cos\theta_j]_{j \ne y_i},
                     s \lVert x_i \rVert \psi(\theta_{y_i})\big)_{y_i}

    Args:
        embeddings: ``(N, D)`` embeddings (their norm scales the logits).
        target: ``(N,)`` class indices in ``[0, C)``.
        centers: ``(C, D)`` class centres (normalised; the module owns them as a parameter).
        margin: :math:`m \ge 1`, the integer angle multiplier (paper: 4).
        scale: :math:`s > 0`, an extra logit scale (1 in the paper).
        reduction, sample_weight, mask: See the conventions page. Unit: a sample.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``; centers: ``(C, D)``.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``centers`` is not ``(C, D)`` for embeddings ``(N, D)``, or the labels do not match.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``margin`` is not an int >= 1 or ``scale`` not positive; in validation
            mode, if a label is not in ``[0, C)``.

    Note:
        :math:`\cos(m\theta)` is the Chebyshev polynomial :math:`T_m(\cos\theta)` and the branch
        :math:`k` is piecewise constant, so no ``acos`` is differentiated: finite gradients at
        cosine exactly :math:`\pm 1`. The paper's annealing with plain softmax is not applied.

    References:
        Liu et al., *SphereFace: Deep Hypersphere Embedding for Face Recognition*, CVPR 2017.
        https://arxiv.org/abs/1704.08063

    Examples:
        >>> import torch
        >>> from lossforge.functional import sphereface_loss
        >>> x = torch.tensor([[3.0, 0.2], [0.1, 3.0], [-3.0, 0.0]])
        >>> centers = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
        >>> sphereface_loss(x, torch.tensor([0, 1, 2]), centers, margin=2)
        tensor(0.0698)
    """
    _check_sphereface_args(margin=margin, scale=scale)
    x, y, w = _prepare(embeddings, target, centers, "sphereface_loss")
    cos = _cosines(x, w, norm_eps(embeddings.dtype))
    cos_t = cos.gather(1, y.unsqueeze(1)).squeeze(1)
    with torch.no_grad():
        k = torch.floor(torch.acos(cos_t.clamp(-1.0, 1.0)) * (margin / math.pi))
        sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
    psi = sign * _chebyshev(cos_t, margin) - 2.0 * k
    logits = (scale * safe_norm(x)).unsqueeze(1) * _with_target(cos, y, psi)
    return reduce_loss(F.cross_entropy(logits, y, reduction="none"), reduction, sample_weight=sample_weight,
                       mask=mask, loss_name="sphereface_loss")


class SphereFaceLoss(_CentersLoss):
    """Module form of :func:`lossforge.functional.sphereface_loss`; owns ``centers`` ``(C, D)``.

    Args:
        num_classes: C. embedding_dim: D.
        margin, scale, reduction: As in the function.
    """

    function = sphereface_loss
    validate = _check_sphereface_args

    def __init__(self, *, num_classes: int, embedding_dim: int, margin: int = 4, scale: float = 1.0,
                 reduction: Reduction = "mean") -> None:
        super().__init__(num_classes=num_classes, embedding_dim=embedding_dim, reduction=reduction, margin=margin,
                         scale=scale)


# -------------------------------------------------------------------------------------- sub-centre ArcFace

def _check_subcenter_args(*, margin: float, scale: float, **_: object) -> None:
    _check_margin_scale("subcenter_arcface_loss", margin, scale, high=math.pi / 2)


@loss_function
def subcenter_arcface_loss(
    embeddings: Tensor,
    target: Tensor,
    centers: Tensor,
    /,
    *,
    margin: float = 0.5,
    scale: float = 64.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Sub-centre ArcFace: ArcFace with K centres per class, each class taking its closest one.

    .. math::
        \cos\theta_j = \max_{k} \frac{x_i \cdot W_{jk}}{\lVert x_i \rVert \lVert W_{jk} \rVert},
        \qquad U_i = \text{ArcFace}(\cos\theta, y_i)

    so noisy samples can gather around a non-dominant sub-centre instead of pulling the class apart.

    Args:
        embeddings: ``(N, D)`` embeddings.
        target: ``(N,)`` class indices in ``[0, C)``.
        centers: ``(C, K, D)`` sub-centres (the module owns them as a parameter).
        margin: :math:`m \in [0, \pi/2]`, in radians (paper: 0.5).
        scale: :math:`s > 0` (paper: 64).
        reduction, sample_weight, mask: See the conventions page. Unit: a sample.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``; centers: ``(C, K, D)``.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``centers`` is not ``(C, K, D)`` for embeddings ``(N, D)``, or the labels do not match.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``margin`` or ``scale`` is out of range; in validation mode, if a label is
            not in ``[0, C)``.

    Note:
        With ``K = 1`` this equals :func:`arcface_loss`. Same safe margin as ArcFace.

    References:
        Deng, Guo, Liu, Xue and Zafeiriou, *Sub-center ArcFace: Boosting Face Recognition by
        Large-Scale Noisy Web Faces*, ECCV 2020. https://doi.org/10.1007/978-3-030-58621-8_43

    Examples:
        >>> import torch
        >>> from lossforge.functional import subcenter_arcface_loss
        >>> x = torch.tensor([[1.0, 0.2], [0.1, 1.0], [-1.0, 0.0]])
        >>> centers = torch.tensor([[[1.0, 0.0], [0.0, -1.0]], [[0.0, 1.0], [1.0, 1.0]], [[-1.0, 0.0], [-1.0, 1.0]]])
        >>> subcenter_arcface_loss(x, torch.tensor([0, 1, 2]), centers, scale=8.0)
        tensor(0.3960)
    """
    _check_subcenter_args(margin=margin, scale=scale)
    x, y, w = _prepare(embeddings, target, centers, "subcenter_arcface_loss", sub_centers=True)
    cos = _cosines(x, w, norm_eps(embeddings.dtype))
    cos_t = cos.gather(1, y.unsqueeze(1)).squeeze(1)
    logits = scale * _with_target(cos, y, _arc(cos_t, margin))
    return reduce_loss(F.cross_entropy(logits, y, reduction="none"), reduction, sample_weight=sample_weight,
                       mask=mask, loss_name="subcenter_arcface_loss")


class SubCenterArcFaceLoss(_CentersLoss):
    """Module form of :func:`lossforge.functional.subcenter_arcface_loss`; owns ``centers`` ``(C, K, D)``.

    Args:
        num_classes: C. embedding_dim: D. sub_centers: K (paper: 3).
        margin, scale, reduction: As in the function.
    """

    function = subcenter_arcface_loss
    validate = _check_subcenter_args

    def __init__(self, *, num_classes: int, embedding_dim: int, sub_centers: int = 3, margin: float = 0.5,
                 scale: float = 64.0, reduction: Reduction = "mean") -> None:
        if isinstance(sub_centers, bool) or not isinstance(sub_centers, int) or sub_centers < 1:
            raise ValueError(message("SubCenterArcFaceLoss", "sub_centers", "must be a positive int",
                                     repr(sub_centers)))
        super().__init__(num_classes=num_classes, embedding_dim=embedding_dim, sub_centers=sub_centers,
                         reduction=reduction, margin=margin, scale=scale)
        self.sub_centers = sub_centers


# ---------------------------------------------------------------------------------------- Proxy-Anchor

def _check_proxy_anchor_args(*, margin: float, alpha: float, **_: object) -> None:
    check_nonnegative(margin, "margin", "proxy_anchor_loss")
    check_positive(alpha, "alpha", "proxy_anchor_loss")


@loss_function
def proxy_anchor_loss(
    embeddings: Tensor,
    target: Tensor,
    proxies: Tensor,
    /,
    *,
    margin: float = 0.1,
    alpha: float = 32.0,
    gather_distributed: bool = False,
    process_group: Any = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Proxy-Anchor loss: each class proxy is an anchor against every embedding of the batch.

    .. math::
        \mathcal{L} = \frac{1}{|P^+|} \sum_{p \in P^+}
                      \log\Big(1 + \sum_{x \in X_p^+} e^{-\alpha (s(x, p) - \delta)}\Big)
                    + \frac{1}{|P|} \sum_{p \in P} \log\Big(1 + \sum_{x \in X_p^-} e^{\alpha (s(x, p) + \delta)}\Big)

    with :math:`s` the cosine similarity, :math:`P^+` the proxies with a positive in the batch,
    :math:`X_p^\pm` the embeddings of the proxy's class / of other classes. Per proxy,
    :math:`U_p = [p \in P^+]\, \text{pos}_p + \frac{|P^+|}{|P|}\, \text{neg}_p`, counted in
    ``"mean"`` only for :math:`p \in P^+`, so that ``"mean"`` is exactly the formula above.

    Args:
        embeddings: ``(N, D)`` embeddings (normalised here).
        target: ``(N,)`` class indices in ``[0, C)``.
        proxies: ``(C, D)`` class proxies (the module owns them as a parameter).
        margin: :math:`\delta \ge 0` (paper: 0.1).
        alpha: :math:`\alpha > 0` (paper: 32).
        gather_distributed: All-gather embeddings and labels over the ranks of ``process_group``
            (gradients flow back to each rank's own rows). A no-op when not distributed.
        process_group: The ``torch.distributed`` group (default: the world).
        reduction, sample_weight, mask: See the conventions page. Unit: a proxy (class).

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``; proxies: ``(C, D)``.
        - output: ``(C,)`` if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``proxies`` is not ``(C, D)`` for embeddings ``(N, D)``, or the labels do not match.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``margin`` is negative or ``alpha`` not positive; in validation mode, if a
            label is not in ``[0, C)``.

    Note:
        ``log(1 + sum exp)`` is ``softplus(logsumexp)`` over masked entries: finite for any
        ``alpha``. An empty batch gives 0.0 with zero gradients. With ``gather_distributed=True``
        every rank computes the global loss: the proxies then get the full gradient on every rank
        (exact after DDP's averaging), the encoder 1/W of it (multiply the loss by W and divide the
        proxies' gradient by W).

    References:
        Kim, Kim, Cho and Kwak, *Proxy Anchor Loss for Deep Metric Learning*, CVPR 2020.
        https://arxiv.org/abs/2003.13911

    Examples:
        >>> import torch
        >>> from lossforge.functional import proxy_anchor_loss
        >>> x = torch.tensor([[1.0, 0.2], [0.1, 1.0], [-1.0, 0.0]])
        >>> proxies = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
        >>> proxy_anchor_loss(x, torch.tensor([0, 1, 1]), proxies, alpha=4.0)
        tensor(2.8280)
    """
    _check_proxy_anchor_args(margin=margin, alpha=alpha)
    x, y, w = _prepare(embeddings, target, proxies, "proxy_anchor_loss", argument="proxies")
    check_flag(gather_distributed, "gather_distributed", "proxy_anchor_loss")
    x = gather_rows(x, gather_distributed, process_group)
    y = gather_rows(y, gather_distributed, process_group)
    cos = _cosines(x, w, norm_eps(embeddings.dtype))
    pos = F.one_hot(y, w.shape[0]).bool()
    pos_term = F.softplus(masked_logsumexp(-alpha * (cos - margin), pos, dim=0))
    neg_term = F.softplus(masked_logsumexp(alpha * (cos + margin), ~pos, dim=0))
    has_pos = pos.any(0)
    n_with = has_pos.sum().to(cos.dtype)
    u = torch.where(has_pos, pos_term, torch.zeros_like(pos_term)) + neg_term * (n_with / w.shape[0])
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, mean_weight=has_pos.to(u.dtype),
                       loss_name="proxy_anchor_loss")


class ProxyAnchorLoss(_CentersLoss):
    """Module form of :func:`lossforge.functional.proxy_anchor_loss`; owns ``proxies`` ``(C, D)``.

    Args:
        num_classes: C. embedding_dim: D.
        margin, alpha, gather_distributed, process_group, reduction: As in the function.
    """

    function = proxy_anchor_loss
    validate = _check_proxy_anchor_args
    parameter_name = "proxies"

    def __init__(self, *, num_classes: int, embedding_dim: int, margin: float = 0.1, alpha: float = 32.0,
                 gather_distributed: bool = False, process_group: Any = None, reduction: Reduction = "mean") -> None:
        super().__init__(num_classes=num_classes, embedding_dim=embedding_dim, reduction=reduction, margin=margin,
                         alpha=alpha, gather_distributed=gather_distributed, process_group=process_group)

    def init_parameter(self, weight: Tensor) -> None:
        nn.init.kaiming_normal_(weight, mode="fan_out")


# -------------------------------------------------------------------------------------------- Proxy-NCA

def _check_proxy_nca_args(*, temperature: float, **_: object) -> None:
    check_positive(temperature, "temperature", "proxy_nca_loss")


@loss_function
def proxy_nca_loss(
    embeddings: Tensor,
    target: Tensor,
    proxies: Tensor,
    /,
    *,
    temperature: float = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Proxy-NCA: a softmax over the (negative, squared) distances to the class proxies.

    .. math::
        U_i = -\log \frac{e^{-\lVert \hat x_i - \hat p_{y_i} \rVert^2 / T}}
                         {\sum_{c} e^{-\lVert \hat x_i - \hat p_c \rVert^2 / T}}

    with unit-normalised embeddings and proxies (Proxy-NCA++'s form, whose denominator includes
    the positive proxy; pytorch-metric-learning's ``ProxyNCALoss`` is the same with
    ``softmax_scale = 1 / T``).

    Args:
        embeddings: ``(N, D)`` embeddings (normalised here).
        target: ``(N,)`` class indices in ``[0, C)``.
        proxies: ``(C, D)`` class proxies (the module owns them as a parameter).
        temperature: :math:`T > 0` (Proxy-NCA++: 1/9).
        reduction, sample_weight, mask: See the conventions page. Unit: a sample.

    Shape:
        - embeddings: ``(N, D)``; target: ``(N,)``; proxies: ``(C, D)``.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``.

    Returns:
        The loss, reduced as requested; float32 for half inputs.

    Raises:
        ShapeError: If ``proxies`` is not ``(C, D)`` for embeddings ``(N, D)``, or the labels do not match.
        TypeError: If ``target`` is not an integer tensor.
        ValueError: If ``temperature`` is not positive; in validation mode, if a label is not in ``[0, C)``.

    Note:
        Log-softmax: finite for any temperature. Per sample, so DDP needs no gathering.

    References:
        Movshovitz-Attias et al., *No Fuss Distance Metric Learning using Proxies*, ICCV 2017.
        https://arxiv.org/abs/1703.07464 ; Teh, DeVries and Taylor, *ProxyNCA++*, ECCV 2020.
        https://arxiv.org/abs/2004.01113

    Examples:
        >>> import torch
        >>> from lossforge.functional import proxy_nca_loss
        >>> x = torch.tensor([[1.0, 0.2], [0.1, 1.0], [-1.0, 0.0]])
        >>> proxies = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
        >>> proxy_nca_loss(x, torch.tensor([0, 1, 2]), proxies, temperature=0.5)
        tensor(0.0336)
    """
    _check_proxy_nca_args(temperature=temperature)
    x, y, w = _prepare(embeddings, target, proxies, "proxy_nca_loss", argument="proxies")
    sq_dist = 2.0 - 2.0 * _cosines(x, w, norm_eps(embeddings.dtype))
    return reduce_loss(F.cross_entropy(-sq_dist / temperature, y, reduction="none"), reduction,
                       sample_weight=sample_weight, mask=mask, loss_name="proxy_nca_loss")


class ProxyNCALoss(_CentersLoss):
    """Module form of :func:`lossforge.functional.proxy_nca_loss`; owns ``proxies`` ``(C, D)``.

    Args:
        num_classes: C. embedding_dim: D.
        temperature, reduction: As in the function.
    """

    function = proxy_nca_loss
    validate = _check_proxy_nca_args
    parameter_name = "proxies"

    def __init__(self, *, num_classes: int, embedding_dim: int, temperature: float = 1.0,
                 reduction: Reduction = "mean") -> None:
        super().__init__(num_classes=num_classes, embedding_dim=embedding_dim, reduction=reduction,
                         temperature=temperature)


# ------------------------------------------------------------------------------------------ registration

_SIZES = {"num_classes": 3, "embedding_dim": 3}


def _register(name: str, function: Callable[..., Tensor], module: type[_CentersLoss], reference: str,
              errors: list[tuple[dict[str, Any], type[BaseException], str]], *, sub_centers: int = 0,
              separable: bool = True, unit: str = "sample", extreme_kwargs: dict[str, Any] | None = None) -> None:
    argument = module.parameter_name
    loss = function.__name__
    sizes = {**_SIZES, **({"sub_centers": sub_centers} if sub_centers else {})}

    def error_inputs() -> list[ErrorSample]:
        w = torch.randn(3, sub_centers, 3) if sub_centers else torch.randn(3, 3)
        args = (torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), w)
        extra = [e for kw, exc, match in errors for e in _hyper_error(args, kw, exc, match, sizes)]
        return _centers_errors(loss, argument, sub_centers=bool(sub_centers), extra=extra)

    def extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        out = _centers_extremes(sub_centers)(dtype, device)
        if extreme_kwargs:
            out += _centers_extremes(sub_centers, **extreme_kwargs)(dtype, device)
        return out

    register_loss(
        name=name, function=function, module=module, family="metric", input_kind="embeddings",
        target_kind="index", unit=unit, reference=reference,
        sample_inputs=_centers_samples(sub_centers, per_class=not separable),
        error_inputs=error_inputs, extreme_inputs=extremes, separable=separable, differentiable_args=(0, 2),
        extra={"module_for_sample": _module_for_sample(module, argument)},
    )


_register("arcface", arcface_loss, ArcFaceLoss, "Deng et al., CVPR 2019, arXiv:1801.07698",
          [({"margin": 2.0}, ValueError, r"arcface_loss: margin must be in \[0, 1.5708\], got 2.0"),
           ({"scale": 0.0}, ValueError, r"arcface_loss: scale must be > 0, got 0.0")],
          extreme_kwargs={"scale": 64.0, "margin": 0.5})
_register("cosface", cosface_loss, CosFaceLoss, "Wang et al., CVPR 2018, arXiv:1801.09414",
          [({"margin": -0.1}, ValueError, r"cosface_loss: margin must be >= 0, got -0.1")],
          extreme_kwargs={"scale": 64.0})
_register("sphereface", sphereface_loss, SphereFaceLoss, "Liu et al., CVPR 2017, arXiv:1704.08063",
          [({"margin": 1.5}, ValueError, r"sphereface_loss: margin must be an int >= 1")],
          extreme_kwargs={"margin": 4})
_register("subcenter_arcface", subcenter_arcface_loss, SubCenterArcFaceLoss,
          "Deng et al., ECCV 2020, doi:10.1007/978-3-030-58621-8_43",
          [({"scale": -1.0}, ValueError, r"subcenter_arcface_loss: scale must be > 0, got -1.0")], sub_centers=2,
          extreme_kwargs={"scale": 64.0})
_register("proxy_anchor", proxy_anchor_loss, ProxyAnchorLoss, "Kim et al., CVPR 2020, arXiv:2003.13911",
          [({"alpha": 0.0}, ValueError, r"proxy_anchor_loss: alpha must be > 0, got 0.0")],
          separable=False, unit="proxy (class)", extreme_kwargs={"alpha": 256.0})
_register("proxy_nca", proxy_nca_loss, ProxyNCALoss,
          "Movshovitz-Attias et al., ICCV 2017, arXiv:1703.07464; Teh et al., ECCV 2020, arXiv:2004.01113",
          [({"temperature": 0.0}, ValueError, r"proxy_nca_loss: temperature must be > 0, got 0.0")],
          extreme_kwargs={"temperature": 0.01})

