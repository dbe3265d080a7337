"""Shared pieces of the metric-learning family: checks, safe distances, masked log-sum-exp, gathering.

Everything here works on whole ``(N, M)`` matrices built with matrix products: no Python loop
over anchors. Half inputs are computed in float32 by the callers (``upcast``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._core.checks import check_choice, check_float, check_range
from .._core.distributed import all_gather_cat, world_size
from .._core.errors import ShapeError, message
from .._core.samples import Sample, generator, randint, randn

__all__ = [
    "DISTANCES",
    "SoftmaxPairTerms",
    "check_distance",
    "check_embeddings",
    "check_flag",
    "check_labels",
    "check_nonnegative",
    "check_positive",
    "check_views",
    "distance_matrix",
    "gather_rows",
    "gather_unit_args",
    "label_masks",
    "label_samples",
    "masked_logsumexp",
    "masked_max",
    "masked_min",
    "norm_eps",
    "pair_labels",
    "safe_norm",
    "safe_normalize",
    "safe_sqrt",
    "softmax_pair_terms_reference",
    "zero_where",
]

DISTANCES = ("euclidean", "squared_euclidean", "cosine")


# ----------------------------------------------------------------------------------------------- checks

def check_embeddings(x: object, argument: str, loss: str) -> Tensor:
    """A floating-point ``(N, D)`` tensor (returned, typed)."""
    check_float(x, argument, loss)
    if not isinstance(x, Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else None
        hint = f"{argument}.flatten(1)" if isinstance(x, Tensor) and x.dim() > 2 else None
        raise ShapeError(message(loss, argument, "must have shape (N, D)", shape, hint=hint),
                         expected="(N, D)", actual=shape)
    return x


def check_labels(target: object, embeddings: Tensor, loss: str, argument: str = "target") -> Tensor:
    """Integer labels ``(N,)`` on the embeddings' device (returned, typed)."""
    if not isinstance(target, Tensor):
        raise TypeError(message(loss, argument, "must be a torch.Tensor of integer labels", type(target).__name__))
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(message(loss, argument, "must be an integer tensor of labels", f"dtype {target.dtype}",
                                hint=f"call {argument}.long()"))
    if target.device != embeddings.device:
        raise ValueError(f"{loss}: embeddings is on {embeddings.device} but {argument} is on {target.device}. "
                         f"Hint: move both to one device.")
    expected = (embeddings.shape[0],)
    if tuple(target.shape) != expected:
        hint = f"{argument}.flatten()" if target.numel() == expected[0] else None
        raise ShapeError(message(loss, argument, f"must have shape (N,) = {expected} to match embeddings "
                                 f"{tuple(embeddings.shape)}", tuple(target.shape), hint=hint),
                         expected=expected, actual=tuple(target.shape))
    return target


def check_views(a: object, b: object, loss: str, names: tuple[str, str]) -> tuple[Tensor, Tensor]:
    """Two ``(N, D)`` floating-point views of one batch, with equal shapes, on one device."""
    x = check_embeddings(a, names[0], loss)
    y = check_embeddings(b, names[1], loss)
    if x.device != y.device:
        raise ValueError(f"{loss}: {names[0]} is on {x.device} but {names[1]} is on {y.device}. "
                         f"Hint: move both to one device.")
    if x.shape != y.shape:
        raise ShapeError(message(loss, names[1], f"must have the shape of {names[0]} {tuple(x.shape)}",
                                 tuple(y.shape)), expected=tuple(x.shape), actual=tuple(y.shape))
    return x, y


def check_positive(value: object, argument: str, loss: str) -> float:
    """A number > 0."""
    return check_range(value, argument, loss, low=0.0, low_inclusive=False)


def check_nonnegative(value: object, argument: str, loss: str) -> float:
    """A number >= 0."""
    return check_range(value, argument, loss, low=0.0)


def check_flag(value: object, argument: str, loss: str) -> bool:
    """A Python bool."""
    if not isinstance(value, bool):
        raise TypeError(message(loss, argument, "must be a bool", repr(value)))
    return value


def check_distance(value: object, loss: str) -> str:
    """One of :data:`DISTANCES`."""
    return check_choice(value, "distance", loss, DISTANCES)


# --------------------------------------------------------------------------------------------- numerics

def norm_eps(dtype: torch.dtype) -> float:
    """Shortest norm that is divided by when normalising embeddings of this (input) dtype: its
    machine epsilon (9.8e-4 in float16, 1.2e-7 in float32), so that ``1 / eps`` times a gradient
    still fits the dtype the gradient flows back in."""
    return float(torch.finfo(dtype).eps)


def safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(max(x, 0))`` with a zero (finite) gradient where ``x <= 0`` (the double-``where`` pattern)."""
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def safe_norm(x: Tensor) -> Tensor:
    """Euclidean norm of each row, with a finite gradient at the zero vector."""
    return safe_sqrt((x * x).sum(-1))


def safe_normalize(x: Tensor, eps: float | None = None) -> Tensor:
    """Rows scaled to unit norm. A row shorter than ``eps`` (default: the dtype's epsilon; pass
    :func:`norm_eps` of the *input* dtype for half inputs computed in float32) has no direction: it
    is divided by ``eps`` (so the value stays continuous and a zero row stays zero) and gets a zero
    gradient, finite in every dtype."""
    eps = norm_eps(x.dtype) if eps is None else eps
    n = safe_norm(x).unsqueeze(-1)
    long_enough = n > eps
    return torch.where(long_enough, x / torch.where(long_enough, n, torch.ones_like(n)), x.detach() / eps)


def distance_matrix(x: Tensor, y: Tensor, distance: str, eps: float | None = None) -> Tensor:
    """``(N, M)`` distances between the rows of ``x`` and ``y`` from one matrix product.

    ``"cosine"``: ``1 - cos`` (rows normalised here, ``eps`` as in :func:`safe_normalize`);
    ``"squared_euclidean"``: ``|x|^2 + |y|^2 - 2 x.y`` clamped at 0; ``"euclidean"``: its safe
    square root (finite gradient where two rows coincide).
    """
    if distance == "cosine":
        return 1.0 - safe_normalize(x, eps) @ safe_normalize(y, eps).T
    # One product of augmented rows [x, |x|^2, 1] . [-2y, 1, |y|^2]: no (N, M) temporaries.
    ones_x, ones_y = x.new_ones(x.shape[0], 1), y.new_ones(y.shape[0], 1)
    left = torch.cat([x, (x * x).sum(1, keepdim=True), ones_x], 1)
    right = torch.cat([-2.0 * y, ones_y, (y * y).sum(1, keepdim=True)], 1)
    sq = (left @ right.T).clamp_min_(0.0) if not torch.is_grad_enabled() else (left @ right.T).clamp_min(0.0)
    return sq if distance == "squared_euclidean" else safe_sqrt(sq)


def label_masks(labels: Tensor, ref_labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(positive, negative)`` boolean ``(N, M)`` masks; without ``ref_labels`` the diagonal
    (an anchor with itself) is neither."""
    if ref_labels is None:
        same = labels.unsqueeze(1) == labels.unsqueeze(0)
        eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
        return same & ~eye, ~same
    same = labels.unsqueeze(1) == ref_labels.unsqueeze(0)
    return same, ~same


def masked_logsumexp(x: Tensor, keep: Tensor, dim: int = 1) -> Tensor:
    """``log(sum(exp(x)))`` over the kept entries. A row with nothing kept gives a very negative
    finite number (``finfo.min + log M``, never ``-inf``), so sums and gradients stay finite;
    callers zero such rows explicitly."""
    fill = torch.finfo(x.dtype).min
    return torch.logsumexp(x.masked_fill(~keep, fill), dim=dim)


def masked_max(x: Tensor, keep: Tensor, dim: int = 1) -> Tensor:
    """Maximum over the kept entries (``finfo.min`` for an empty row)."""
    fill = torch.finfo(x.dtype).min
    if x.shape[dim] == 0:
        return x.sum(dim) + fill
    return x.masked_fill(~keep, fill).amax(dim=dim)


def masked_min(x: Tensor, keep: Tensor, dim: int = 1) -> Tensor:
    """Minimum over the kept entries (``finfo.max`` for an empty row)."""
    fill = torch.finfo(x.dtype).max
    if x.shape[dim] == 0:
        return x.sum(dim) + fill
    return x.masked_fill(~keep, fill).amin(dim=dim)


def zero_where(keep: Tensor, x: Tensor) -> Tensor:
    """``x`` where ``keep``, else 0 (a ``where``, so NaN or inf in dropped entries never reaches the
    result or its gradient)."""
    return torch.where(keep, x, torch.zeros_like(x))


# ------------------------------------------------------------------------------------------ distributed

def gather_rows(x: Tensor, enabled: bool, group: Any) -> Tensor:
    """All-gather ``x`` along dim 0 over ``group`` (with gradients to this rank's rows) when enabled."""
    if not enabled:
        return x
    if x.dtype == torch.bool:
        return all_gather_cat(x.to(torch.uint8), group).bool()
    return all_gather_cat(x, group)


def gather_unit_args(
    sample_weight: Tensor | None, mask: Tensor | None, n_local: int, enabled: bool, group: Any
) -> tuple[Tensor | None, Tensor | None]:
    """With ``gather_distributed``, per-anchor ``sample_weight``/``mask`` given for this rank's rows
    (first dimension ``n_local``) are gathered like the embeddings; scalars are left alone."""
    if not enabled or world_size(group) == 1:
        return sample_weight, mask

    def one(t: Tensor | None) -> Tensor | None:
        if not isinstance(t, Tensor) or t.dim() == 0 or t.shape[0] != n_local:
            return t
        return gather_rows(t, True, group)

    return one(sample_weight), one(mask)


# ------------------------------------------------------------------------------- fused softmax contrast

def softmax_pair_terms_reference(q: Tensor, r: Tensor, pos: Tensor, den: Tensor, scale: float, mode: str) -> Tensor:
    """The same per-anchor terms as :class:`SoftmaxPairTerms` with plain differentiable operations
    (used for double backward, where the fused backward cannot be differentiated)."""
    s = (q @ r.T) * scale
    lse = masked_logsumexp(s, den)
    if mode == "pairs":
        return torch.where(pos, torch.nn.functional.softplus(lse.unsqueeze(1) - s), torch.zeros_like(s)).sum(1)
    count = pos.sum(1)
    pos_mean = torch.where(pos, s, torch.zeros_like(s)).sum(1) / count.clamp_min(1).to(s.dtype)
    return torch.where(count > 0, lse - pos_mean, torch.zeros_like(lse))


class SoftmaxPairTerms(torch.autograd.Function):
    r"""Per-anchor terms of the softmax-contrastive losses, from ``S = scale * q r^T``.

    ``mode="pairs"`` (NT-Xent, InfoNCE): ``U_a = sum_{p in P(a)} softplus(LSE_{n in N(a)} s_an - s_ap)``
    where ``N(a)`` is ``den``; ``mode="supcon"``: ``U_a = LSE_{k in den(a)} s_ak - mean_{p in P(a)} s_ap``
    (0 without positives). The forward keeps only ``q``, ``r``, the two boolean masks and the
    ``(N,)`` log-sum-exp; the backward recomputes ``S`` and forms the gradient in place, so the
    peak memory is a few ``(N, M)`` matrices and nothing ``(N, M)``-sized in float is kept between
    forward and backward. Under ``create_graph=True`` (double backward) the backward is taken
    through :func:`softmax_pair_terms_reference` instead, which is differentiable.
    """

    @staticmethod
    def forward(ctx: Any, q: Tensor, r: Tensor, pos: Tensor, den: Tensor, scale: float, mode: str) -> Tensor:
        s = (q @ r.T).mul_(scale)
        lse = masked_logsumexp(s, den)
        if mode == "pairs":
            t = s.neg_().add_(lse.unsqueeze(1))  # LSE_a - s_ap, in place
            u = torch.nn.functional.softplus(t).masked_fill_(~pos, 0.0).sum(1)
            count = None
        else:
            count = pos.sum(1)
            pos_mean = s.masked_fill_(~pos, 0.0).sum(1) / count.clamp_min(1).to(s.dtype)
            u = torch.where(count > 0, lse - pos_mean, torch.zeros_like(lse))
        ctx.save_for_backward(q, r, pos, den, lse, count)
        ctx.scale = scale
        ctx.mode = mode
        return u

    @staticmethod
    def backward(ctx: Any, grad_u: Tensor) -> tuple[Tensor | None, Tensor | None, None, None, None, None]:
        q, r, pos, den, lse, count = ctx.saved_tensors
        scale = ctx.scale
        if torch.is_grad_enabled():  # create_graph=True: a differentiable backward
            with torch.enable_grad():
                u = softmax_pair_terms_reference(q, r, pos, den, scale, ctx.mode)
                wanted = [t for t, need in zip((q, r), ctx.needs_input_grad[:2]) if need]
                grads = iter(torch.autograd.grad(u, wanted, grad_u, create_graph=True))
            return (next(grads) if ctx.needs_input_grad[0] else None,
                    next(grads) if ctx.needs_input_grad[1] else None, None, None, None, None)
        e = (q @ r.T).mul_(scale).sub_(lse.unsqueeze(1)).exp_()  # exp(s - LSE): the softmax over den
        g = grad_u.to(e.dtype).unsqueeze(1)
        if ctx.mode == "pairs":
            sig = e.add(1.0).reciprocal_().masked_fill_(~pos, 0.0)  # sigmoid(LSE - s_ap) on positives
            row = sig.sum(1, keepdim=True)
            grad_s = e.mul_(row * g).masked_fill_(~den, 0.0).sub_(sig.mul_(g))
        else:
            has = (count > 0).unsqueeze(1)
            inv = torch.where(has, 1.0 / count.clamp_min(1).to(e.dtype).unsqueeze(1), torch.zeros_like(g))
            grad_s = e.masked_fill_(~den, 0.0).mul_(g * has)
            grad_s.sub_(pos.to(e.dtype).mul_(g * inv))
        grad_s.mul_(scale)
        grad_q = grad_s @ r if ctx.needs_input_grad[0] else None
        grad_r = grad_s.T @ q if ctx.needs_input_grad[1] else None
        return grad_q, grad_r, None, None, None, None


def softmax_pair_terms(q: Tensor, r: Tensor, pos: Tensor, den: Tensor, scale: float, mode: str) -> Tensor:
    """:class:`SoftmaxPairTerms` in eager mode; the differentiable reference under ``torch.compile``
    (which cannot trace a custom function given the same tensor twice, and fuses the reference anyway)."""
    if torch.compiler.is_compiling():
        return softmax_pair_terms_reference(q, r, pos, den, scale, mode)
    return SoftmaxPairTerms.apply(q, r, pos, den, scale, mode)


# ---------------------------------------------------------------------------------------------- samples

def pair_labels(n_classes: int, device: torch.device | str) -> Tensor:
    """SimCLR layout: every label exactly twice (each anchor has one positive)."""
    return torch.arange(n_classes, device=device).repeat(2)


def label_samples(dtype: torch.dtype, device: torch.device | str, **kwargs: Any) -> list[Sample]:
    """Embeddings ``(N, D)`` with labels: the plain SimCLR layout first, then uneven classes
    (a singleton without positives), per-anchor weights and a mask."""
    g = generator(0)
    x = randn(8, 5, gen=g, dtype=dtype, device=device)
    uneven = randn(10, 4, gen=g, dtype=dtype, device=device)
    uneven_t = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3], device=device)
    w = (torch.rand(8, generator=g, dtype=torch.float64) + 0.5).to(device=device, dtype=torch.float32)
    m = torch.tensor([True, False, True, True, False, True, True, True], device=device)
    labels = pair_labels(4, device)
    return [
        Sample((x, labels), dict(kwargs), name="pairs"),
        Sample((uneven, uneven_t), dict(kwargs), name="uneven classes", plain=False),
        Sample((x, randint(3, 8, gen=g, device=device)), {**kwargs, "sample_weight": w}, name="sample_weight",
               plain=False),
        Sample((x, labels), {**kwargs, "mask": m}, name="mask", plain=False),
    ]
