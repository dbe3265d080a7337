"""Distribution losses: divergences between distributions and between samples.

Two kinds of input:

- ``kl_div`` and ``js_div`` compare two categorical distributions per sample: ``log_probs`` and
  ``target`` of shape ``(N, C, *)``, the class dimension summed, so the unit is one sample
  (one position of ``(N, *)``).
- ``mmd_loss``, ``sinkhorn_loss`` and ``sliced_wasserstein_loss`` compare two *sets* of points
  ``x (..., N, D)`` and ``y (..., M, D)``: the unit is one pair of sets, ``U`` has the leading
  shape ``(...)`` (a scalar for ``(N, D)`` inputs). They couple the points of a set, so they are
  not separable along ``N``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from .._core.base import FunctionLoss, loss_function
from .._core.checks import check_float, check_probabilities, check_range, check_same_shape, upcast
from .._core.errors import ShapeError, message
from .._core.reduction import Reduction, check_reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, randn

__all__ = [
    "kl_div", "js_div_loss", "mmd_loss", "sinkhorn_loss", "sliced_wasserstein_loss",
    "KLDivLoss", "JSDivLoss", "MMDLoss", "SinkhornLoss", "SlicedWassersteinLoss",
]

_LOG2 = math.log(2.0)


# --------------------------------------------------------------------------------- categorical


def _prepare_categorical(log_probs: Tensor, target: Tensor, log_target: bool, loss: str) -> tuple[Tensor, Tensor]:
    check_float(log_probs, "log_probs", loss)
    check_float(target, "target", loss)
    check_same_shape(log_probs, target, loss, ("log_probs", "target"))
    if log_probs.dim() < 2:
        raise ShapeError(message(loss, "log_probs", "must have shape (N, C, *)", tuple(log_probs.shape),
                                 hint="add a batch dimension with log_probs.unsqueeze(0)"),
                         expected="(N, C, *)", actual=tuple(log_probs.shape))
    lp, t = upcast(log_probs), upcast(target)
    if t.dtype != lp.dtype:
        common = torch.promote_types(lp.dtype, t.dtype)
        lp, t = lp.to(common), t.to(common)
    if not log_target:
        check_probabilities(t.detach(), "target", loss)
    return lp, t


def _log_and_prob(t: Tensor, log_target: bool) -> tuple[Tensor, Tensor, Tensor]:
    """``(log q, q, q > 0)`` with ``log q = -inf`` where ``q = 0``; finite gradients everywhere."""
    if log_target:
        positive = t > -math.inf
        safe = torch.where(positive, t, t.new_zeros(()))
        return torch.where(positive, safe, t), torch.where(positive, safe.exp(), t.new_zeros(())), positive
    positive = t > 0
    safe = torch.where(positive, t, t.new_ones(()))
    return torch.where(positive, safe.log(), t.new_full((), -math.inf)), t, positive


def _xlog_ratio(prob: Tensor, log_prob: Tensor, log_other: Tensor, positive: Tensor) -> Tensor:
    """``prob * (log_prob - log_other)`` where ``prob > 0``, else 0 (``0 log 0 = 0``), no ``0 * inf``."""
    safe_log = torch.where(positive, log_prob, log_prob.new_zeros(()))
    diff = safe_log - torch.where(positive, log_other, log_other.new_zeros(()))
    return torch.where(positive, prob * diff, prob.new_zeros(()))


@loss_function
def kl_div(
    log_probs: Tensor,
    target: Tensor,
    /,
    *,
    log_target: bool = False,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Kullback-Leibler divergence :math:`\mathrm{KL}(q \,\|\, p)` of a target distribution from the model's.

    The loss of distillation and of fitting a predicted distribution to soft targets. Unlike
    ``torch.nn.functional.kl_div``, the default ``"mean"`` is the true KL per sample.

    .. math::
        U_n = \sum_c q_{n,c} \big(\log q_{n,c} - \log p_{n,c}\big), \qquad 0 \log 0 = 0

    Args:
        log_probs: Log-probabilities :math:`\log p` of the model, ``(N, C, *)`` (``log_softmax``
            over dimension 1).
        target: Target probabilities :math:`q` (or :math:`\log q` with ``log_target=True``), the
            shape of ``log_probs``.
        log_target: Whether ``target`` holds log-probabilities.
        reduction, sample_weight, mask: See the conventions page. Unit: one sample (one position of
            ``(N, *)``), the class dimension summed.

    Shape:
        - log_probs, target: ``(N, C, *)``, equal.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ or the input has fewer than 2 dimensions.
        TypeError: If an input is not floating point.
        ValueError: In validation mode, if ``target`` (with ``log_target=False``) is outside ``[0, 1]``.

    Note:
        Mapping to torch's reductions: lossforge ``"mean"`` on ``(N, C)`` equals torch's
        ``reduction="batchmean"``; torch's ``"mean"`` also divides by ``C`` (not a KL);
        ``"sum"`` and ``"none"`` (summed over dim 1) agree. Entries with :math:`q = 0` contribute 0,
        with zero gradient w.r.t. both inputs, also where :math:`\log p = -\infty` and, with
        ``log_target=True``, where :math:`\log q = -\infty` (torch: NaN gradients w.r.t. the
        target there).

    References:
        Kullback & Leibler, *On Information and Sufficiency*, Ann. Math. Statist. 1951.
        https://doi.org/10.1214/aoms/1177729694

    Examples:
        >>> import torch
        >>> from lossforge.functional import kl_div
        >>> log_p = torch.tensor([[0.5, 0.5], [0.9, 0.1]]).log()
        >>> kl_div(log_p, torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
        tensor(0.6020)
    """
    check_reduction(reduction, "kl_div")
    lp, t = _prepare_categorical(log_probs, target, log_target, "kl_div")
    log_q, q, positive = _log_and_prob(t, log_target)
    u = _xlog_ratio(q, log_q, lp, positive).sum(1)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="kl_div")


@loss_function
def js_div_loss(
    log_probs: Tensor,
    target: Tensor,
    /,
    *,
    log_target: bool = False,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Jensen-Shannon divergence between the model's distribution and a target distribution.

    A symmetric, bounded (by :math:`\log 2`) divergence, finite even when the supports differ;
    used for consistency regularisation (AugMix) and distribution matching.

    .. math::
        U_n = \tfrac{1}{2}\mathrm{KL}(p \,\|\, m) + \tfrac{1}{2}\mathrm{KL}(q \,\|\, m), \qquad
        m = \tfrac{1}{2}(p + q)

    computed in log space: :math:`\log m = \mathrm{logaddexp}(\log p, \log q) - \log 2`.

    Args:
        log_probs: Log-probabilities :math:`\log p` of the model, ``(N, C, *)``.
        target: Target probabilities :math:`q` (or :math:`\log q` with ``log_target=True``).
        log_target: Whether ``target`` holds log-probabilities.
        reduction, sample_weight, mask: See the conventions page. Unit: one sample, the class
            dimension summed.

    Shape:
        - log_probs, target: ``(N, C, *)``, equal.
        - output: ``(N, *)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss in nats, in :math:`[0, \log 2]` per sample, reduced as requested.

    Raises:
        ShapeError: If the shapes differ or the input has fewer than 2 dimensions.
        TypeError: If an input is not floating point.
        ValueError: In validation mode, if ``target`` is outside ``[0, 1]``.

    Note:
        Zero probabilities on either side contribute 0 with finite gradients.

    References:
        Lin, *Divergence measures based on the Shannon entropy*, IEEE Trans. Inf. Theory 1991.
        https://doi.org/10.1109/18.61115

    Examples:
        >>> import torch
        >>> from lossforge.functional import js_div_loss
        >>> js_div_loss(torch.tensor([[1.0, 0.0]]).log(), torch.tensor([[0.0, 1.0]]))  # disjoint: log 2
        tensor(0.6931)
    """
    check_reduction(reduction, "js_div_loss")
    lp, t = _prepare_categorical(log_probs, target, log_target, "js_div_loss")
    log_q, q, q_pos = _log_and_prob(t, log_target)
    p_pos = lp > -math.inf
    lp_safe = torch.where(p_pos, lp, lp.new_zeros(()))
    p = torch.where(p_pos, lp_safe.exp(), lp.new_zeros(()))
    # logaddexp with a -inf argument has a zero gradient for it; both -inf only where both are 0.
    both = p_pos | q_pos
    log_m = torch.where(both, torch.logaddexp(torch.where(p_pos, lp_safe, lp.new_full((), -1e30)),
                                              torch.where(q_pos, log_q, lp.new_full((), -1e30))) - _LOG2,
                        lp.new_zeros(()))
    u = 0.5 * (_xlog_ratio(p, lp_safe, log_m, p_pos) + _xlog_ratio(q, log_q, log_m, q_pos)).sum(1)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="js_div_loss")


# ----------------------------------------------------------------------------------------- sets


def _prepare_sets(x: Tensor, y: Tensor, loss: str, *, min_points: int = 1) -> tuple[Tensor, Tensor]:
    """``x (..., N, D)`` and ``y (..., M, D)``: same leading shape and ``D``, float, one dtype."""
    check_float(x, "x", loss)
    check_float(y, "y", loss)
    if x.device != y.device:
        raise ValueError(f"{loss}: x is on {x.device} but y is on {y.device}. Hint: move both to one device.")
    for name, t in (("x", x), ("y", y)):
        if t.dim() < 2:
            raise ShapeError(message(loss, name, "must have shape (..., N, D) (points in rows)", tuple(t.shape),
                                     hint=f"use {name}.unsqueeze(-1) for scalar samples"),
                             expected="(..., N, D)", actual=tuple(t.shape))
        if t.shape[-2] < min_points:
            raise ValueError(message(loss, name, f"must hold at least {min_points} point"
                                     + ("s" if min_points > 1 else "") + " (dimension -2)",
                                     f"shape {tuple(t.shape)}"))
    if x.shape[:-2] != y.shape[:-2] or x.shape[-1] != y.shape[-1]:
        expected = "(" + ", ".join([*(str(s) for s in x.shape[:-2]), "M", str(x.shape[-1])]) + ")"
        raise ShapeError(message(loss, "y", f"must have shape {expected} to match x {tuple(x.shape)}",
                                 tuple(y.shape)), expected=expected, actual=tuple(y.shape))
    x, y = upcast(x), upcast(y)
    if x.dtype != y.dtype:
        common = torch.promote_types(x.dtype, y.dtype)
        x, y = x.to(common), y.to(common)
    return x, y


def _sq_dists(a: Tensor, b: Tensor) -> Tensor:
    """Squared Euclidean distances ``(..., N, M)`` by the matrix-product expansion, clamped at 0.

    Both sets are first centred on their joint mean (detached; distances do not change), which
    keeps the expansion accurate for data far from the origin.
    """
    centre = torch.cat([a, b], dim=-2).mean(-2, keepdim=True).detach()
    a, b = a - centre, b - centre
    d2 = a.square().sum(-1).unsqueeze(-1) + b.square().sum(-1).unsqueeze(-2) - 2 * a @ b.transpose(-1, -2)
    return d2.clamp_min(0)


def _safe_sqrt(x: Tensor) -> Tensor:
    ok = x > 0
    return torch.where(ok, torch.where(ok, x, torch.ones_like(x)).sqrt(), torch.zeros_like(x))


def _check_mmd_args(*, bandwidths: Sequence[float] | None = None, unbiased: bool = False, **_: object) -> None:
    if bandwidths is not None:
        if isinstance(bandwidths, Tensor) or not isinstance(bandwidths, Sequence) or len(bandwidths) == 0:
            raise TypeError(message("mmd_loss", "bandwidths", "must be None or a non-empty sequence of floats",
                                    type(bandwidths).__name__))
        for b in bandwidths:
            check_range(b, "bandwidths", "mmd_loss", low=0.0, low_inclusive=False)
    if not isinstance(unbiased, bool):
        raise TypeError(message("mmd_loss", "unbiased", "must be a bool", repr(unbiased)))


@loss_function
def mmd_loss(
    x: Tensor,
    y: Tensor,
    /,
    *,
    bandwidths: Sequence[float] | None = None,
    unbiased: bool = False,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Maximum mean discrepancy with a multi-bandwidth Gaussian (RBF) kernel.

    A two-sample distance between sets of points: 0 when the distributions agree; used for domain
    adaptation, generative models and distribution matching of embeddings.

    .. math::
        U = \frac{1}{N^2}\sum_{i,i'} k(x_i, x_{i'}) + \frac{1}{M^2}\sum_{j,j'} k(y_j, y_{j'})
            - \frac{2}{NM}\sum_{i,j} k(x_i, y_j), \qquad
        k(a, b) = \frac{1}{|S|}\sum_{\sigma \in S} e^{-\|a - b\|^2 / (2\sigma^2)}

    Args:
        x: Points ``(..., N, D)``.
        y: Points ``(..., M, D)`` (same leading shape and ``D``).
        bandwidths: The kernel widths :math:`\sigma`; ``None`` (default) uses
            :math:`2\sigma^2 \in m \cdot \{1/4, 1/2, 1, 2, 4\}` with :math:`m` the median squared
            distance between distinct points of the pooled set (detached: the bandwidths get no
            gradient).
        unbiased: Use the unbiased U-statistic (diagonal terms left out; may be slightly negative).
        reduction, sample_weight, mask: See the conventions page. Unit: one pair of sets.

    Shape:
        - x: ``(..., N, D)``; y: ``(..., M, D)``.
        - output: ``(...)`` if ``reduction="none"`` (``()`` for 2-D inputs), else ``()``.

    Returns:
        The squared MMD (biased V-statistic by default, always >= 0 up to rounding).

    Raises:
        ShapeError: If the leading shapes or ``D`` differ, or an input has fewer than 2 dimensions.
        TypeError: If an input is not floating point or ``bandwidths`` is not a sequence.
        ValueError: If a set is empty (or has one point with ``unbiased=True``), or a bandwidth
            is not positive.

    Note:
        Time and memory are :math:`O((N+M)^2)` per pair of sets (the pooled distance matrix and
        one kernel matrix per bandwidth, kept for the backward pass). Squared distances come from
        the matrix-product expansion after centring, clamped at 0.

    References:
        Gretton et al., *A Kernel Two-Sample Test*, JMLR 2012. https://jmlr.org/papers/v13/gretton12a.html

    Examples:
        >>> import torch
        >>> from lossforge.functional import mmd_loss
        >>> x = torch.tensor([[0.0], [1.0]])
        >>> mmd_loss(x, x, bandwidths=[1.0])
        tensor(0.)
        >>> mmd_loss(x, x + 1.0, bandwidths=[1.0])
        tensor(0.4323)
    """
    check_reduction(reduction, "mmd_loss")
    _check_mmd_args(bandwidths=bandwidths, unbiased=unbiased)
    x, y = _prepare_sets(x, y, "mmd_loss", min_points=2 if unbiased else 1)
    n, m = x.shape[-2], y.shape[-2]
    centre = torch.cat([x, y], dim=-2).mean(-2, keepdim=True).detach()
    x, y = x - centre, y - centre
    lead = x.shape[:-2]
    if bandwidths is None:
        with torch.no_grad():
            pooled = torch.cat([x, y], dim=-2)
            d2 = _pair_sq_dists(pooled, pooled)
            off = ~torch.eye(n + m, dtype=torch.bool, device=d2.device)
            med = (d2[..., off] if n + m > 1 else d2.flatten(-2)).median(-1).values
            del d2, pooled
            med = torch.where(med > 0, med, torch.ones_like(med))
            scales = torch.stack([med * 2.0**k for k in range(-2, 3)])
    else:
        scales = torch.tensor([2.0 * float(b) ** 2 for b in bandwidths], dtype=x.dtype, device=x.device)
        scales = scales.view(-1, *([1] * len(lead))).expand(-1, *lead)
    u: Tensor = _MMD.apply(x, y, scales.reshape(*scales.shape, 1, 1), bool(unbiased))  # type: ignore[no-untyped-call]
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="mmd_loss")


def _pair_sq_dists(a: Tensor, b: Tensor) -> Tensor:
    """``|a_i - b_j|^2`` by the expansion (inputs already centred), clamped at 0."""
    d2 = a.square().sum(-1).unsqueeze(-1) + b.square().sum(-1).unsqueeze(-2) - 2 * a @ b.transpose(-1, -2)
    return d2.clamp_min_(0)


class _MMD(torch.autograd.Function):
    """The MMD statistic from the three kernel blocks, one block in memory at a time.

    The backward pass recomputes each block's distances instead of saving the kernel matrices:
    with ``G = dL/dD`` (``D`` the squared distances of a block ``(a, b)``), the gradients are
    ``2 (rowsum(G) a - G b)`` and ``2 (colsum(G) b - G^T a)``.
    """

    @staticmethod
    def _blocks(x: Tensor, y: Tensor, unbiased: bool) -> list[tuple[str, float, bool]]:
        n, m = x.shape[-2], y.shape[-2]
        if unbiased:
            return [("xx", 1 / (n * (n - 1)), True), ("yy", 1 / (m * (m - 1)), True), ("xy", -2 / (n * m), False)]
        return [("xx", 1 / n**2, False), ("yy", 1 / m**2, False), ("xy", -2 / (n * m), False)]

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, y: Tensor, scales: Tensor, unbiased: bool) -> Tensor:
        ctx.save_for_backward(x, y, scales)
        ctx.unbiased = unbiased  # type: ignore[attr-defined]
        sets = {"x": x, "y": y}
        u = x.new_zeros(x.shape[:-2])
        for name, coef, drop_diagonal in _MMD._blocks(x, y, unbiased):
            d2 = _pair_sq_dists(sets[name[0]], sets[name[1]])
            kernel = torch.zeros_like(d2)
            for s in scales.unbind(0):
                kernel += torch.exp(d2 / -s)
            if drop_diagonal:
                kernel.diagonal(dim1=-2, dim2=-1).zero_()
            u += (coef / scales.shape[0]) * kernel.sum((-2, -1))
        return u

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, y, scales = ctx.saved_tensors
        sets = {"x": x, "y": y}
        grads = {"x": torch.zeros_like(x), "y": torch.zeros_like(y)}
        g_out = grad.unsqueeze(-1).unsqueeze(-1)
        for name, coef, drop_diagonal in _MMD._blocks(x, y, ctx.unbiased):
            a, b = sets[name[0]], sets[name[1]]
            d2 = _pair_sq_dists(a, b)
            slope = torch.zeros_like(d2)
            for s in scales.unbind(0):
                slope -= torch.exp(d2 / -s) / s
            del d2
            if drop_diagonal:
                slope.diagonal(dim1=-2, dim2=-1).zero_()
            g = slope.mul_(g_out * (coef / scales.shape[0]))
            grads[name[0]] += 2 * (g.sum(-1, keepdim=True) * a - g @ b)
            grads[name[1]] += 2 * (g.sum(-2).unsqueeze(-1) * b - g.transpose(-1, -2) @ a)
        return grads["x"], grads["y"], None, None


def _cost(a: Tensor, b: Tensor, p: int) -> Tensor:
    d2 = _sq_dists(a, b)
    return d2 if p == 2 else _safe_sqrt(d2)


def _entropic_ot(cost: Tensor, epsilon: float, num_iters: int, scaling: float) -> Tensor:
    """Entropic OT between uniform weights, log-domain Sinkhorn with epsilon annealing.

    The potentials are found without autograd; the value is the dual objective at them, written
    so that its gradient w.r.t. the cost is the transport plan (the envelope theorem).
    """
    n, m = cost.shape[-2], cost.shape[-1]
    log_a, log_b = -math.log(n), -math.log(m)
    with torch.no_grad():
        c = cost.detach()
        f = c.new_zeros(c.shape[:-1])
        g = c.new_zeros((*c.shape[:-2], m))
        top = c.amax((-2, -1), keepdim=True).clamp_min(epsilon)
        for it in range(num_iters):
            eps = (top * scaling**it).clamp_min(epsilon)
            f = -eps.squeeze(-1) * torch.logsumexp(log_b + (g.unsqueeze(-2) - c) / eps, dim=-1)
            g = -eps.squeeze(-1) * torch.logsumexp(log_a + (f.unsqueeze(-1) - c) / eps, dim=-2)
    plan = torch.exp((f.unsqueeze(-1) + g.unsqueeze(-2) - cost) / epsilon + (log_a + log_b))
    dual = f.mean(-1) + g.mean(-1)
    return dual - epsilon * (plan.sum((-2, -1)) - 1)


def _check_sinkhorn_args(*, epsilon: float = 0.1, num_iters: int = 100, p: int = 2, scaling: float = 0.5,
                         debias: bool = True, **_: object) -> None:
    loss = "sinkhorn_loss"
    check_range(epsilon, "epsilon", loss, low=0.0, low_inclusive=False)
    if isinstance(num_iters, bool) or not isinstance(num_iters, int) or num_iters < 1:
        raise ValueError(message(loss, "num_iters", "must be an int >= 1", repr(num_iters)))
    if p not in (1, 2) or isinstance(p, bool):
        raise ValueError(message(loss, "p", "must be 1 or 2", repr(p)))
    check_range(scaling, "scaling", loss, low=0.0, high=1.0, low_inclusive=False)
    if not isinstance(debias, bool):
        raise TypeError(message(loss, "debias", "must be a bool", repr(debias)))


@loss_function
def sinkhorn_loss(
    x: Tensor,
    y: Tensor,
    /,
    *,
    epsilon: float = 0.1,
    num_iters: int = 100,
    p: int = 2,
    scaling: float = 0.5,
    debias: bool = True,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Entropic optimal transport (Sinkhorn) between two point clouds, debiased by default.

    A differentiable Wasserstein-like distance between sets of points (shape matching, generative
    models, domain adaptation), with a smoothing :math:`\varepsilon` that trades accuracy for speed.

    .. math::
        \mathrm{OT}_\varepsilon(x, y) = \min_{P \in \Pi(a, b)} \langle P, C\rangle
            + \varepsilon\,\mathrm{KL}(P \,\|\, a \otimes b), \qquad C_{ij} = \|x_i - y_j\|^p,

        U = \mathrm{OT}_\varepsilon(x, y) - \tfrac{1}{2}\mathrm{OT}_\varepsilon(x, x)
            - \tfrac{1}{2}\mathrm{OT}_\varepsilon(y, y) \quad (\text{debias=True})

    with uniform weights :math:`a = 1/N`, :math:`b = 1/M`.

    Args:
        x: Points ``(..., N, D)``.
        y: Points ``(..., M, D)``.
        epsilon: Entropic regularisation :math:`\varepsilon > 0`, in the units of the cost
            (squared distance for ``p=2``). Stable (log domain) down to 1e-3 and below.
        num_iters: Sinkhorn iterations (each updates both potentials), >= 1.
        p: Cost exponent, 1 or 2.
        scaling: Epsilon annealing factor in ``(0, 1]``: iteration ``k`` uses
            :math:`\max(\varepsilon, \max C \cdot s^k)`, which makes small :math:`\varepsilon`
            converge in far fewer iterations; 1 disables it.
        debias: Return the Sinkhorn divergence (0 for identical sets) instead of
            :math:`\mathrm{OT}_\varepsilon(x, y)`; costs three solves.
        reduction, sample_weight, mask: See the conventions page. Unit: one pair of sets.

    Shape:
        - x: ``(..., N, D)``; y: ``(..., M, D)``.
        - output: ``(...)`` if ``reduction="none"`` (``()`` for 2-D inputs), else ``()``.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the leading shapes or ``D`` differ, or an input has fewer than 2 dimensions.
        TypeError: If an input is not floating point.
        ValueError: If a set is empty or a parameter is out of range.

    Note:
        The iterations run without autograd (memory :math:`O(NM)`, not
        :math:`O(\text{iterations} \cdot NM)`); the gradient is that of the dual objective at the
        final potentials, the transport plan contracted with :math:`\partial C` (exact at
        convergence, by the envelope theorem). Every iteration is in log space (``logsumexp``),
        so nothing overflows for small :math:`\varepsilon`.

    References:
        Cuturi, *Sinkhorn Distances*, NeurIPS 2013 (https://arxiv.org/abs/1306.0895); Feydy et al.,
        *Interpolating between Optimal Transport and MMD using Sinkhorn Divergences*, AISTATS 2019
        (https://arxiv.org/abs/1810.08278).

    Examples:
        >>> import torch
        >>> from lossforge.functional import sinkhorn_loss
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
        >>> sinkhorn_loss(x, x).abs() < 1e-6
        tensor(True)
        >>> sinkhorn_loss(x, x + torch.tensor([3.0, 0.0]), epsilon=0.01)  # shift by 3: W2^2 = 9
        tensor(9.)
    """
    check_reduction(reduction, "sinkhorn_loss")
    _check_sinkhorn_args(epsilon=epsilon, num_iters=num_iters, p=p, scaling=scaling, debias=debias)
    x, y = _prepare_sets(x, y, "sinkhorn_loss")
    eps, it, sc = float(epsilon), int(num_iters), float(scaling)
    u = _entropic_ot(_cost(x, y, p), eps, it, sc)
    if debias:
        u = u - 0.5 * (_entropic_ot(_cost(x, x, p), eps, it, sc) + _entropic_ot(_cost(y, y, p), eps, it, sc))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="sinkhorn_loss")


def _quantile_pairs(n: int, m: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Indices into the sorted ``x`` and ``y`` and the weights of the merged quantile intervals.

    The quantile functions of two empirical measures with ``n`` and ``m`` equal atoms are constant
    on the intervals between the levels ``{i/n} | {j/m}``; the exact 1-D Wasserstein distance is
    the weighted sum over those intervals. Computed in integers (levels scaled by ``n*m``).
    """
    levels = torch.unique(torch.cat([torch.arange(1, n + 1) * m, torch.arange(1, m + 1) * n]))
    prev = torch.cat([levels.new_zeros(1), levels[:-1]])
    ix = ((prev + levels) // (2 * m)).clamp_max(n - 1)
    iy = ((prev + levels) // (2 * n)).clamp_max(m - 1)
    weight = (levels - prev).double() / (n * m)
    return ix.to(device), iy.to(device), weight.to(device)


def _check_sw_args(*, num_projections: int = 50, p: float = 2.0, seed: int | None = None,
                   generator: torch.Generator | None = None, **_: object) -> None:
    loss = "sliced_wasserstein_loss"
    if isinstance(num_projections, bool) or not isinstance(num_projections, int) or num_projections < 1:
        raise ValueError(message(loss, "num_projections", "must be an int >= 1", repr(num_projections)))
    check_range(p, "p", loss, low=1.0)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(message(loss, "seed", "must be an int or None", repr(seed)))
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(message(loss, "generator", "must be a torch.Generator or None", type(generator).__name__))
    if seed is not None and generator is not None:
        raise ValueError(f"{loss}: pass seed or generator, not both.")


_MASK32 = 0xFFFFFFFF


def _mul32(x: Tensor, c: int) -> Tensor:
    """``x * c mod 2**32`` for ``0 <= x < 2**32`` in int64 without overflow (``c`` split in 16-bit halves)."""
    return (x * (c & 0xFFFF) + (((x * (c >> 16)) & _MASK32) << 16)) & _MASK32


def _seeded_normal(seed: int, count: int, device: torch.device) -> Tensor:
    """``count`` standard normal numbers from ``seed``: a counter-based integer hash (Wellons' lowbias32)
    and Box-Muller, in plain tensor operations, so the draw is the same on every device and traceable
    by ``torch.compile`` (a ``torch.Generator`` is neither)."""
    idx = torch.arange(2 * count, device=device, dtype=torch.int64)
    x = (_mul32(idx, 0x9E3779B9) + _mul32(torch.full_like(idx, seed & _MASK32), 0x85EBCA6B) + 0x632BE59B) & _MASK32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    x = x ^ (x >> 16)
    u = (x.double() + 0.5) / 2.0**32
    u1, u2 = u[:count], u[count:]
    return torch.sqrt(-2 * torch.log(u1)) * torch.cos(2 * math.pi * u2)


def _directions(d: int, k: int, like: Tensor, seed: int | None, gen: torch.Generator | None) -> Tensor:
    """``k`` random unit vectors in ``R^d`` as columns ``(d, k)``."""
    if gen is not None:
        theta = torch.randn(d, k, generator=gen, device=gen.device, dtype=torch.float64)
    elif seed is not None:
        theta = _seeded_normal(seed, d * k, like.device).view(d, k)
    else:
        theta = torch.randn(d, k, device=like.device, dtype=torch.float64)
    theta = theta / theta.norm(dim=0, keepdim=True)
    return theta.to(device=like.device, dtype=like.dtype)


@loss_function
def sliced_wasserstein_loss(
    x: Tensor,
    y: Tensor,
    /,
    *,
    num_projections: int = 50,
    p: float = 2.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Sliced Wasserstein distance (to the power ``p``) between two point clouds.

    Projects both sets on random directions and averages the exact 1-D Wasserstein distances
    (sorting): a cheap, scalable stand-in for optimal transport in high dimension.

    .. math::
        U = \frac{1}{K}\sum_{k=1}^{K} W_p^p\big(\theta_k^\top x,\ \theta_k^\top y\big), \qquad
        W_p^p(u, v) = \int_0^1 |F_u^{-1}(t) - F_v^{-1}(t)|^p\, dt

    with :math:`\theta_k` uniform on the unit sphere.

    Args:
        x: Points ``(..., N, D)``.
        y: Points ``(..., M, D)``; ``M`` may differ from ``N`` (the quantile functions are merged
            exactly).
        num_projections: Number :math:`K` of random directions, >= 1.
        p: Exponent, >= 1.
        seed: Draw the directions from this seed with a counter-based hash (deterministic and the
            same on every device, and traceable by ``torch.compile``).
        generator: Or draw them from this ``torch.Generator`` (eager mode only). With neither, the
            global RNG is used, so each call draws new directions (a stochastic estimate, as usual
            in training).
        reduction, sample_weight, mask: See the conventions page. Unit: one pair of sets.

    Shape:
        - x: ``(..., N, D)``; y: ``(..., M, D)``.
        - output: ``(...)`` if ``reduction="none"`` (``()`` for 2-D inputs), else ``()``.

    Returns:
        :math:`SW_p^p` (for ``p=2`` the squared sliced distance), reduced as requested.

    Raises:
        ShapeError: If the leading shapes or ``D`` differ, or an input has fewer than 2 dimensions.
        TypeError: If an input is not floating point, or ``seed``/``generator`` has the wrong type.
        ValueError: If a set is empty, a parameter is out of range, or both ``seed`` and
            ``generator`` are given.

    Note:
        Time :math:`O(K (N + M) \log(N + M) + K D (N + M))`; memory :math:`O(K (N + M))` (the
        projections and their sorted copies), never a pairwise matrix. The gradient flows through
        the sort (to the points at each quantile).

    References:
        Rabin, Peyre, Delon & Bernot, *Wasserstein Barycenter and its Application to Texture
        Mixing*, SSVM 2011 (https://doi.org/10.1007/978-3-642-24785-9_37); Kolouri et al.,
        *Sliced Wasserstein Auto-Encoders*, ICLR 2019 (https://openreview.net/forum?id=H1xaJn05FQ).

    Examples:
        >>> import torch
        >>> from lossforge.functional import sliced_wasserstein_loss
        >>> x = torch.tensor([[0.0], [1.0], [2.0]])
        >>> sliced_wasserstein_loss(x, x + 1.0, seed=0)  # 1-D: W2^2 of a shift by 1
        tensor(1.)
    """
    check_reduction(reduction, "sliced_wasserstein_loss")
    _check_sw_args(num_projections=num_projections, p=p, seed=seed, generator=generator)
    x, y = _prepare_sets(x, y, "sliced_wasserstein_loss")
    theta = _directions(x.shape[-1], num_projections, x, seed, generator)
    px = (x @ theta).sort(dim=-2).values
    py = (y @ theta).sort(dim=-2).values
    n, m = x.shape[-2], y.shape[-2]
    if n == m:
        diff = px - py
        weight: Tensor | None = None
    else:
        ix, iy, w = _quantile_pairs(n, m, x.device)
        diff = px.index_select(-2, ix) - py.index_select(-2, iy)
        weight = w.to(x.dtype).unsqueeze(-1)
    powered = diff.square() if float(p) == 2.0 else (diff.abs() if float(p) == 1.0 else diff.abs() ** float(p))
    per_direction = powered.mean(-2) if weight is None else (powered * weight).sum(-2)
    u = per_direction.mean(-1)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="sliced_wasserstein_loss")


# ---------------------------------------------------------------------------------------- modules


class KLDivLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.kl_div`.

    Args:
        log_target: Whether the target holds log-probabilities.
        reduction: ``"none"``, ``"mean"`` (true KL per sample, torch's ``"batchmean"``) or ``"sum"``.
    """

    function = kl_div

    def __init__(self, *, log_target: bool = False, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, log_target=log_target)


class JSDivLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.js_div_loss`.

    Args:
        log_target: Whether the target holds log-probabilities.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = js_div_loss

    def __init__(self, *, log_target: bool = False, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, log_target=log_target)


class MMDLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.mmd_loss`.

    Args:
        bandwidths: Kernel widths, or ``None`` for the median heuristic.
        unbiased: Use the unbiased estimate.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = mmd_loss
    validate = _check_mmd_args

    def __init__(self, *, bandwidths: Sequence[float] | None = None, unbiased: bool = False,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction,
                         bandwidths=tuple(bandwidths) if isinstance(bandwidths, list) else bandwidths,
                         unbiased=unbiased)


class SinkhornLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.sinkhorn_loss`.

    Args:
        epsilon: Entropic regularisation, > 0.
        num_iters: Sinkhorn iterations.
        p: Cost exponent, 1 or 2.
        scaling: Epsilon annealing factor in (0, 1].
        debias: Return the Sinkhorn divergence.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = sinkhorn_loss
    validate = _check_sinkhorn_args

    def __init__(self, *, epsilon: float = 0.1, num_iters: int = 100, p: int = 2, scaling: float = 0.5,
                 debias: bool = True, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, epsilon=epsilon, num_iters=num_iters, p=p, scaling=scaling,
                         debias=debias)


class SlicedWassersteinLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.sliced_wasserstein_loss`.

    Args:
        num_projections: Number of random directions.
        p: Exponent, >= 1.
        seed: Seed of the directions (``None``: the global RNG, new directions every call).
        generator: Or a generator to draw them from.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = sliced_wasserstein_loss
    validate = _check_sw_args

    def __init__(self, *, num_projections: int = 50, p: float = 2.0, seed: int | None = None,
                 generator: torch.Generator | None = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, num_projections=num_projections, p=p, seed=seed, generator=generator)


# ----------------------------------------------------------------------------------- registration


def _categorical_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    logits = randn(6, 4, gen=g, dtype=torch.float64, device="cpu", scale=2.0)
    target = torch.softmax(randn(6, 4, gen=g, dtype=torch.float64, device="cpu"), 1)
    spatial = torch.log_softmax(randn(2, 3, 2, 2, gen=g, dtype=torch.float64, device="cpu"), 1)
    spatial_t = torch.softmax(randn(2, 3, 2, 2, gen=g, dtype=torch.float64, device="cpu"), 1)
    sparse = target.clone()
    sparse[::2, 1:] = 0.0
    sparse = sparse / sparse.sum(1, keepdim=True)

    def cast(*ts: Tensor) -> tuple[Tensor, ...]:
        return tuple(t.to(device=device, dtype=dtype) for t in ts)

    lp = torch.log_softmax(logits, 1)
    return [
        Sample(cast(lp, target), name="(N, C)"),
        Sample(cast(spatial, spatial_t), name="(N, C, H, W)"),
        Sample(cast(lp, sparse), name="target with zeros"),
        Sample(cast(lp, sparse.log()), {"log_target": True}, name="log_target with -inf"),
    ]


def _categorical_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    lp = torch.log_softmax(torch.tensor([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64), 1)
    q = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    hard = torch.tensor([[0.0, -math.inf, 0.0], [-math.inf, -math.inf, 0.0]], dtype=torch.float64)
    return [
        Sample((lp.to(device=device, dtype=dtype), q.to(device=device, dtype=dtype)), name="one-hot target"),
        Sample((hard.clamp_min(-1e4).to(device=device, dtype=dtype), q.to(device=device, dtype=dtype)),
               name="log_probs -1e4"),
        Sample((lp.to(device=device, dtype=dtype), q.log().to(device=device, dtype=dtype)), {"log_target": True},
               name="log_target -inf"),
    ]


def _categorical_errors(loss: str) -> Callable[[], list[ErrorSample]]:
    def errors() -> list[ErrorSample]:
        lp = torch.log_softmax(torch.randn(4, 3), 1)
        q = torch.softmax(torch.randn(4, 3), 1)
        return [
            ErrorSample((lp, q[:, :2]), {}, ValueError, rf"{loss}: target must have the shape of log_probs \(4, 3\)"),
            ErrorSample((lp[0], q[0]), {}, ValueError, rf"{loss}: log_probs must have shape \(N, C, \*\), got \(3,\)"),
            ErrorSample((lp, q.long()), {}, TypeError, r"target must be a floating-point tensor"),
            ErrorSample((lp, q * 2), {}, ValueError, r"target must hold probabilities in \[0, 1\]"),
            ErrorSample((lp, q), {"reduction": "batchmean"}, ValueError, r"Did you mean 'mean'"),
            ErrorSample((lp, q), {"weight": torch.ones(4)}, TypeError, r"Hint: use sample_weight="),
        ]

    return errors


def _set_samples(extra: dict[str, Any], batched: bool = True, scale: float = 1.0
                 ) -> Callable[[torch.dtype, torch.device | str], list[Sample]]:
    def samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        g = generator(1)

        def pts(*shape: int, shift: float = 0.0, spread: float = 1.0) -> Tensor:
            return randn(*shape, gen=g, dtype=dtype, device=device, scale=scale * spread) + scale * shift

        out = [
            Sample((pts(4, 3), pts(3, 3, shift=0.5, spread=1.5)), dict(extra), name="(N, D)"),
            Sample((pts(3, 2), pts(3, 2, shift=-1.0)), dict(extra), name="N == M"),
        ]
        if batched:
            out.append(Sample((pts(2, 3, 2), pts(2, 2, 2, shift=1.0)), dict(extra), name="(B, N, D)"))
        return out

    return samples


def _set_extremes(extra: dict[str, Any]) -> Callable[[torch.dtype, torch.device | str], list[Sample]]:
    def samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        g = generator(2)
        x = randn(4, 2, gen=g, dtype=dtype, device=device)
        same = torch.zeros(4, 2, dtype=dtype, device=device)
        return [
            Sample((x, x.clone()), dict(extra), name="identical sets"),
            Sample((same, same.clone()), dict(extra), name="all points equal"),
            Sample((x * 100, x * 100 + 1e3), dict(extra), name="far apart, large scale"),
        ]

    return samples


def _set_errors(loss: str, extra: list[ErrorSample]) -> Callable[[], list[ErrorSample]]:
    def errors() -> list[ErrorSample]:
        x, y = torch.randn(5, 3), torch.randn(4, 3)
        return [
            ErrorSample((x, torch.randn(4, 2)), {}, ValueError, rf"{loss}: y must have shape \(M, 3\) to match x"),
            ErrorSample((x[0], y[0]), {}, ValueError, rf"{loss}: x must have shape \(\.\.\., N, D\)"),
            ErrorSample((x[:0], y), {}, ValueError, r"x must hold at least 1 point"),
            ErrorSample((x.long(), y), {}, TypeError, r"x must be a floating-point tensor"),
            ErrorSample((x, y), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
            ErrorSample((x, y), {"weight": torch.ones(())}, TypeError, r"Hint: use sample_weight="),
            *extra,
        ]

    return errors


for _name, _fn, _module, _ref in [
    ("kl_div", kl_div, KLDivLoss, "Kullback & Leibler 1951; torch.nn.functional.kl_div (batchmean)"),
    ("js_div", js_div_loss, JSDivLoss, "Lin 1991, doi:10.1109/18.61115"),
]:
    register_loss(
        name=_name, function=_fn, module=_module, family="distribution", input_kind="log_probs",
        target_kind="probs", unit="sample (class dimension summed)", reference=_ref,
        sample_inputs=_categorical_samples, extreme_inputs=_categorical_extremes,
        error_inputs=_categorical_errors(_fn.__name__), differentiable_args=(0,),
        aliases=("kl",) if _name == "kl_div" else ("js",),
    )

_RBF = {"bandwidths": (0.5, 1.0, 2.0)}
register_loss(
    name="mmd", function=mmd_loss, module=MMDLoss, family="distribution", input_kind="embeddings",
    target_kind="embeddings", unit="pair of sets", reference="Gretton et al. 2012, JMLR 13",
    # Fixed bandwidths first: the median heuristic is detached, so its gradient is not the value's.
    sample_inputs=lambda dtype, device: [*_set_samples(_RBF)(dtype, device),
                                         *_set_samples({}, batched=False)(dtype, device)[:1],
                                         Sample(_set_samples({})(dtype, device)[0].args, {"unbiased": True},
                                                name="unbiased")],
    extreme_inputs=_set_extremes({}), separable=False,
    error_inputs=_set_errors("mmd_loss", [
        ErrorSample((torch.randn(1, 2), torch.randn(3, 2)), {"unbiased": True}, ValueError,
                    r"x must hold at least 2 points"),
        ErrorSample((torch.randn(3, 2), torch.randn(3, 2)), {"bandwidths": (1.0, 0.0)}, ValueError,
                    r"bandwidths must be > 0, got 0.0"),
        ErrorSample((), {"bandwidths": 1.0}, TypeError, r"bandwidths must be None or a non-empty sequence",
                    at_construction=True),
    ]),
)
_SINKHORN = {"epsilon": 0.5, "num_iters": 50}
register_loss(
    name="sinkhorn", function=sinkhorn_loss, module=SinkhornLoss, family="distribution", input_kind="embeddings",
    target_kind="embeddings", unit="pair of sets",
    reference="Cuturi 2013, arXiv:1306.0895; Feydy et al. 2019, arXiv:1810.08278",
    # Small clouds and a moderate epsilon: Sinkhorn converges in 50 iterations, so the envelope
    # gradient matches finite differences to gradcheck's tolerance.
    sample_inputs=lambda dtype, device: [*_set_samples(_SINKHORN, scale=0.5)(dtype, device),
                                         Sample(_set_samples({}, scale=0.5)(dtype, device)[0].args,
                                                {**_SINKHORN, "p": 1, "debias": False}, name="p=1, biased")],
    extreme_inputs=_set_extremes({"epsilon": 1e-3}), separable=False,
    error_inputs=_set_errors("sinkhorn_loss", [
        ErrorSample((torch.randn(3, 2), torch.randn(3, 2)), {"epsilon": 0.0}, ValueError, r"epsilon must be > 0"),
        ErrorSample((torch.randn(3, 2), torch.randn(3, 2)), {"p": 3}, ValueError, r"p must be 1 or 2, got 3"),
        ErrorSample((), {"num_iters": 0}, ValueError, r"num_iters must be an int >= 1, got 0", at_construction=True),
        ErrorSample((), {"scaling": 1.5}, ValueError, r"scaling must be in \(0, 1\]", at_construction=True),
    ]),
)
register_loss(
    name="sliced_wasserstein", function=sliced_wasserstein_loss, module=SlicedWassersteinLoss,
    family="distribution", input_kind="embeddings", target_kind="embeddings", unit="pair of sets",
    reference="Rabin et al. 2011, doi:10.1007/978-3-642-24785-9_37; Kolouri et al. 2019 (SWAE)",
    sample_inputs=lambda dtype, device: [*_set_samples({"seed": 0, "num_projections": 8})(dtype, device),
                                         Sample(_set_samples({})(dtype, device)[0].args,
                                                {"seed": 1, "p": 1.5, "num_projections": 4}, name="p=1.5")],
    extreme_inputs=_set_extremes({"seed": 0}), separable=False,
    error_inputs=_set_errors("sliced_wasserstein_loss", [
        ErrorSample((torch.randn(3, 2), torch.randn(3, 2)), {"num_projections": 0}, ValueError,
                    r"num_projections must be an int >= 1, got 0"),
        ErrorSample((torch.randn(3, 2), torch.randn(3, 2)), {"seed": 0, "generator": torch.Generator()},
                    ValueError, r"pass seed or generator, not both"),
        ErrorSample((), {"p": 0.5}, ValueError, r"p must be >= 1, got 0.5", at_construction=True),
    ]),
)
