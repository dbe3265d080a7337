"""Chunked kernels of the LLM losses: the (tokens, vocab) logits are never held whole.

The engine (:class:`_HeadLoss`) runs a *kernel* over the rows (tokens) that carry weight, a chunk of
rows at a time. A kernel computes, for one chunk, the per-token loss ``U`` and, when asked, the
gradient of ``sum(coef * U)`` with respect to the chunk's logits, which the engine turns into the
gradients of the hidden states (``g @ W``), of the head (``g.T @ h``, accumulated over the chunks)
and of the bias (``g.sum(0)``). Two modes:

- *precomputed* (the result is a scalar): the coefficients ``coef = d result / d U`` are known in
  the forward, so the gradients are computed there, chunk by chunk, and the backward only scales
  them by the upstream gradient (``6·N·D·V`` FLOPs in all, as the naive computation);
- *recompute* (``reduction="none"``, per-sequence log-probabilities): the forward computes ``U``
  only and the backward runs the kernel again with ``coef = dU`` (``8·N·D·V`` FLOPs).

Half-precision inputs are computed in float32 (CPU matrix products have no float32 output for
half inputs, so the head is converted once); gradients come back in the inputs' dtypes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .._core.checks import upcast

__all__ = [
    "CEOptions",
    "DistillOptions",
    "ce_rows",
    "distill_rows",
    "chunk_budget",
    "plan_chunks",
    "reduction_coefficients",
    "run_head_loss",
]

MIB = 1 << 20
#: The working buffers of one chunk take this fraction of the head + hidden states' size by default ...
BUDGET_FRACTION = 0.3
#: ... but at least this many bytes ...
MIN_BUDGET = 16 * MIB
#: ... and at most this many.
MAX_BUDGET = 128 * MIB
#: Fewest rows per chunk before the vocabulary is split into blocks as well.
MIN_ROWS = 32


def chunk_budget(problem_bytes: int) -> int:
    """Default bytes of one chunk's working buffers: about a third of the head plus the hidden states
    (which is also the size of their gradients), between :data:`MIN_BUDGET` and :data:`MAX_BUDGET`.

    Each chunk reads the head twice and the head's gradient once (read and write), so larger chunks
    mean less memory traffic; tying the chunk to the gradients' size keeps the peak memory of a
    training step near ``1.3x`` the gradients' own.
    """
    return int(min(max(BUDGET_FRACTION * problem_bytes, MIN_BUDGET), MAX_BUDGET))


def plan_chunks(rows: int, vocab: int, buffers: int, chunk_size: int | tuple[int, int] | None,
                itemsize: int = 4, budget: int = MIN_BUDGET) -> tuple[int, int]:
    """``(rows per chunk, vocabulary block)`` for ``buffers`` working arrays of ``rows x block`` each.

    ``chunk_size`` is the number of tokens per chunk, or ``(tokens, vocab block)``; ``None`` sizes
    the chunk to ``budget`` bytes, splitting the vocabulary only when fewer than :data:`MIN_ROWS`
    full rows would fit.
    """
    vocab = max(vocab, 1)
    if isinstance(chunk_size, tuple):
        return max(int(chunk_size[0]), 1), min(max(int(chunk_size[1]), 1), vocab)
    if chunk_size is not None:
        return max(int(chunk_size), 1), vocab
    per_row = vocab * buffers * itemsize
    fit = budget // per_row
    if fit >= MIN_ROWS:
        fit = fit // 16 * 16 if fit >= 64 else fit
        # about equal chunks (no small, inefficient last one), rounded up to a multiple of 32 rows: the
        # chunk is the small dimension of the products, and CPU GEMMs slow down badly off their tile sizes
        chunks = -(-max(rows, 1) // fit)
        even = -(-max(rows, 1) // chunks)
        return int(min(-(-even // 32) * 32, fit, max(rows, 1))), vocab
    block = max(budget // (MIN_ROWS * buffers * itemsize), 1)
    return MIN_ROWS, int(min(block, vocab))


def reduction_coefficients(finish: Callable[[Tensor], Tensor], shape: Sequence[int], dtype: torch.dtype,
                           device: torch.device) -> Tensor | None:
    """``d finish(U) / d U`` when ``finish`` (the loss's reduction) returns a scalar, else ``None``.

    The reductions are linear in ``U`` with weights that do not depend on it, so the derivative is
    the per-token coefficient vector the gradients are precomputed with; it is taken from the
    reduction itself, so the two can never disagree (``torch.func.grad`` under ``torch.compile``,
    plain autograd otherwise, which costs no import).
    """
    if torch.compiler.is_compiling():
        probe = torch.zeros(tuple(shape), dtype=dtype, device=device)
        if finish(probe).dim() != 0:
            return None
        return torch.func.grad(finish)(probe).detach()
    with torch.enable_grad():
        probe = torch.zeros(tuple(shape), dtype=dtype, device=device, requires_grad=True)
        out = finish(probe)
        if out.dim() != 0:
            return None
        (coef,) = torch.autograd.grad(out, probe)
    return coef.detach()


# ------------------------------------------------------------------------------------------ the engine


Kernel = Callable[..., tuple[Tensor, tuple[Tensor | None, ...]]]


class _HeadLoss(torch.autograd.Function):
    """Autograd node of a chunked head loss. ``inputs`` are the differentiable tensors; ``run`` is
    ``run(inputs, coef, needs) -> (U, grads)`` (``coef=None``: no gradients).

    Precomputed gradients are saved like any saved tensor: freed after the backward, kept (and
    reusable) with ``retain_graph=True``. When the upstream gradient is exactly the one they were
    computed for (a loss back-propagated as it is, or as one term of a sum) they are handed over
    without a copy, so autograd can take them as the ``.grad`` of a leaf; otherwise they are scaled
    into new tensors.
    """

    @staticmethod
    def forward(ctx: Any, run: Kernel, coef: Tensor | None, *inputs: Any) -> Tensor:
        needs = tuple(bool(n) for n in ctx.needs_input_grad[2:])
        ctx.run = run
        ctx.needs = needs
        ctx.precomputed = coef is not None and any(needs)
        ctx.compiling = torch.compiler.is_compiling()
        if ctx.precomputed:
            u, grads = run(inputs, coef, needs)
            ctx.slots = tuple(g is not None for g in grads) + (False,) * (len(inputs) - len(grads))
            ctx.save_for_backward(coef, *[g for g in grads if g is not None])
        else:
            u, _ = run(inputs, None, needs)
            ctx.save_for_backward(*[x if isinstance(x, Tensor) else None for x in inputs])
        return u

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, du: Tensor) -> tuple[Tensor | None, ...]:
        if not ctx.precomputed:
            _, grads = ctx.run(ctx.saved_tensors, du, ctx.needs)
            return (None, None, *grads)
        coef, *saved = ctx.saved_tensors
        c = coef.double()
        # the upstream gradient is (d total / d result) * coef: recover the scalar by projection
        scale = (du.double() * c).sum() / (c * c).sum().clamp_min(1e-300)
        if ctx.compiling or not bool(scale == 1.0):  # no data-dependent branch under torch.compile
            saved = [g * scale.to(g.dtype) for g in saved]
        it = iter(saved)
        return (None, None, *(next(it) if slot else None for slot in ctx.slots))


def run_head_loss(run: Kernel, coef: Tensor | None, *inputs: Any) -> Tensor:
    """Apply the chunked autograd node (precomputed gradients when ``coef`` is given)."""
    return _HeadLoss.apply(run, coef, *inputs)


def compute_dtype(*tensors: Tensor | None) -> torch.dtype:
    """float32 for half inputs, else the promoted floating dtype."""
    dtype = torch.float32
    for t in tensors:
        if t is not None:
            dtype = torch.promote_types(dtype, upcast(t).dtype)
    return dtype


def _rows(x: Tensor, index: Tensor | None, dtype: torch.dtype) -> Tensor:
    x = x if index is None else x.index_select(0, index)
    return x.to(dtype)


def _scatter_rows(values: Tensor, index: Tensor | None, n: int) -> Tensor:
    if index is None:
        return values
    out = values.new_zeros((n, *values.shape[1:]))
    return out.index_copy_(0, index, values)


# -------------------------------------------------------------------------------- cross-entropy kernel


@dataclass(frozen=True)
class CEOptions:
    """Hyper-parameters of the chunked cross-entropy kernel."""

    label_smoothing: float = 0.0
    z_loss: float = 0.0
    softcap: float | None = None
    chunk_size: int | tuple[int, int] | None = None


def _logits_block(h: Tensor, w: Tensor, b: Tensor | None, out: Tensor, softcap: float | None) -> Tensor:
    """``out = softcap * tanh((h @ w.T + b) / softcap)``, rows = tokens (without the cap when ``softcap`` is None)."""
    torch.mm(h, w.t(), out=out)
    if b is not None:
        out.add_(b)
    if softcap is not None:
        out.div_(softcap).tanh_().mul_(softcap)
    return out


def _logits_t(w: Tensor, h: Tensor, b: Tensor | None, out: Tensor, softcap: float | None) -> Tensor:
    """The transposed logits block, vocabulary-major: ``out = cap(w @ h.T + b[:, None])``, shape ``(Vb, n)``.

    The head is the large operand of the product, the chunk of hidden states the small one, which
    CPU GEMMs pack once per call; the reductions over the vocabulary then run along dim 0.
    """
    torch.mm(w, h.t(), out=out)
    if b is not None:
        out.add_(b[:, None])
    if softcap is not None:
        out.div_(softcap).tanh_().mul_(softcap)
    return out


def _cap_derivative(z: Tensor, softcap: float | None, out: Tensor | None) -> Tensor | None:
    """``1 - (z / softcap)^2``, the derivative of the cap expressed through its output."""
    if softcap is None or out is None:
        return None
    torch.div(z, softcap, out=out)
    return out.square_().neg_().add_(1.0)


def _ce_token_loss(lse: Tensor, zy: Tensor, zsum: Tensor | None, vocab: int, o: CEOptions) -> Tensor:
    eps = o.label_smoothing
    u = lse - zy
    if eps and zsum is not None:
        u = (1.0 - eps) * u + eps * (lse - zsum / vocab)
    if o.z_loss:
        u = u + o.z_loss * lse.square()
    return u


def _ce_grad_t(e: Tensor, norm: Tensor, lse: Tensor, y: Tensor, coef: Tensor, vocab: int, o: CEOptions,
               v0: int, deriv: Tensor | None) -> Tensor:
    """Turn ``e = exp(z - shift)`` (vocabulary-major block starting at ``v0``) into the logits gradient
    ``coef * ((1 + 2λ lse) p - (1-ε) onehot - ε/V) * cap'`` in place, where ``p = e / norm``."""
    g = e.mul_((coef * (1.0 + 2.0 * o.z_loss * lse) / norm)[None, :])
    hit = -(1.0 - o.label_smoothing) * coef
    vb = g.shape[0]
    if v0 == 0 and vb == vocab:
        g.scatter_add_(0, y[None, :], hit[None, :])
    else:
        inside = (y >= v0) & (y < v0 + vb)
        local = (y - v0).clamp(0, vb - 1)
        g.scatter_add_(0, local[None, :], torch.where(inside, hit, hit.new_zeros(()))[None, :])
    if o.label_smoothing:
        g.sub_((coef * (o.label_smoothing / vocab))[None, :])
    if deriv is not None:
        g.mul_(deriv)
    return g


def _grads_t(g: Tensor, hc: Tensor, W: Tensor, dhc: Tensor | None, dW: Tensor | None, db: Tensor | None, v0: int,
             *, accumulate_dh: bool) -> None:
    """Vocabulary-major block ``g (Vb, n)``: ``dhc (+)= g.T @ W_b``, ``dW_b += g @ h``, ``db_b += g.sum(1)``."""
    v1 = v0 + g.shape[0]
    if dhc is not None:
        if accumulate_dh:
            dhc.addmm_(g.t(), W[v0:v1])
        else:
            torch.mm(g.t(), W[v0:v1], out=dhc)
    if dW is not None:
        dW[v0:v1].addmm_(g, hc)
    if db is not None:
        db[v0:v1] += g.sum(1)


def _take(x: Tensor, index: Tensor | None, s: int, e: int) -> Tensor:
    """Rows ``[s, e)`` of ``x``, or of ``x[index]`` (gathered one chunk at a time: no full copy)."""
    return x[s:e] if index is None else x.index_select(0, index[s:e])


def ce_rows(inputs: Sequence[Any], coef: Tensor | None, needs: Sequence[bool], *, target: Tensor,
            index: Tensor | None, n_total: int, options: CEOptions) -> tuple[Tensor, tuple[Tensor | None, ...]]:
    """The linear cross-entropy kernel: ``inputs = (hidden (N, D), weight (V, D), bias (V,) | None)``.

    ``target`` holds the class of each row (sanitised), ``index`` the rows that carry weight
    (``None``: all); ``coef`` is the per-row coefficient of the gradient, ``(N,)``, or ``None``.
    Returns ``U`` of shape ``(N,)`` (0 at the rows left out) and the gradients of ``inputs``.

    With the whole vocabulary in one block, each chunk's logits are computed once and turned into
    their gradient in place; with vocabulary blocks, a first pass computes the log-sum-exp online
    and a second recomputes each block for its gradient.
    """
    hidden, weight, bias = inputs
    o = options
    dtype = compute_dtype(hidden, weight, bias)
    W = weight.to(dtype)
    b = None if bias is None else bias.to(dtype)
    m_rows = n_total if index is None else int(index.numel())
    d = hidden.shape[-1]
    vocab = W.shape[0]
    want = coef is not None
    two = want and o.softcap is not None
    itemsize = torch.finfo(dtype).bits // 8
    budget = chunk_budget((vocab + n_total) * d * itemsize)
    rows, block = plan_chunks(m_rows, vocab, 2 if two else 1, o.chunk_size, itemsize, budget)
    rows = max(min(rows, m_rows), 1)
    u = W.new_empty(m_rows)
    dh = None
    if want and needs[0]:
        dh = W.new_zeros(n_total, d) if index is not None else W.new_empty(n_total, d)
    dW = torch.zeros_like(W) if want and needs[1] else None
    db = torch.zeros_like(b) if (want and b is not None and len(needs) > 2 and needs[2]) else None
    flat = W.new_empty(block * rows if m_rows else 0)
    flat2 = torch.empty_like(flat) if two else None
    single = block >= vocab
    for s in range(0, m_rows, rows):
        e = min(s + rows, m_rows)
        n = e - s
        hc = _take(hidden, index, s, e).to(dtype)
        yc = _take(target, index, s, e)
        cc = None if coef is None else _take(coef, index, s, e).to(dtype)
        dhc = None
        if dh is not None:
            dhc = dh[s:e] if index is None else W.new_empty(n, d)
        if single:
            z = _logits_t(W, hc, b, flat[: vocab * n].view(vocab, n), o.softcap)
            zy = z.gather(0, yc[None, :]).squeeze(0)
            zsum = z.sum(0) if o.label_smoothing else None
            m = z.amax(0)
            deriv = _cap_derivative(z, o.softcap, None if flat2 is None else flat2[: vocab * n].view(vocab, n))
            ex = z.sub_(m[None, :]).exp_()
            norm = ex.sum(0)
            lse = m + norm.log()
            u[s:e] = _ce_token_loss(lse, zy, zsum, vocab, o)
            if cc is not None:
                g = _ce_grad_t(ex, norm, lse, yc, cc, vocab, o, 0, deriv)
                _grads_t(g, hc, W, dhc, dW, db, 0, accumulate_dh=False)
        else:
            # the vocabulary in blocks: the statistics first (online log-sum-exp), then the gradients
            m = hc.new_full((n,), -math.inf)
            norm = hc.new_zeros(n)
            zy = hc.new_zeros(n)
            zsum = hc.new_zeros(n) if o.label_smoothing else None
            for v0 in range(0, vocab, block):
                v1 = min(v0 + block, vocab)
                z = _logits_t(W[v0:v1], hc, None if b is None else b[v0:v1],
                              flat[: (v1 - v0) * n].view(v1 - v0, n), o.softcap)
                inside = (yc >= v0) & (yc < v1)
                local = (yc - v0).clamp(0, v1 - v0 - 1)
                zy += torch.where(inside, z.gather(0, local[None, :]).squeeze(0), zy.new_zeros(()))
                if zsum is not None:
                    zsum += z.sum(0)
                m_new = torch.maximum(m, z.amax(0))
                norm = norm * torch.exp(m - m_new) + z.sub_(m_new[None, :]).exp_().sum(0)
                m = m_new
            lse = m + norm.log()
            u[s:e] = _ce_token_loss(lse, zy, zsum, vocab, o)
            if cc is not None:
                if dhc is not None:
                    dhc.zero_()
                ones = hc.new_ones(n)
                for v0 in range(0, vocab, block):
                    v1 = min(v0 + block, vocab)
                    z = _logits_t(W[v0:v1], hc, None if b is None else b[v0:v1],
                                  flat[: (v1 - v0) * n].view(v1 - v0, n), o.softcap)
                    view2 = None if flat2 is None else flat2[: (v1 - v0) * n].view(v1 - v0, n)
                    deriv = _cap_derivative(z, o.softcap, view2)
                    ex = z.sub_(lse[None, :]).exp_()
                    g = _ce_grad_t(ex, ones, lse, yc, cc, vocab, o, v0, deriv)
                    _grads_t(g, hc, W, dhc, dW, db, v0, accumulate_dh=True)
        if dh is not None and index is not None and dhc is not None:
            dh.index_copy_(0, index[s:e], dhc)
    grads = (
        None if dh is None else dh.to(hidden.dtype),
        None if dW is None else dW.to(weight.dtype),
        None if db is None or bias is None else db.to(bias.dtype),
    )
    return _scatter_rows(u, index, n_total), grads[: len(inputs)]


def _head_grads(g: Tensor, hc: Tensor, W: Tensor, dh: Tensor | None, dW: Tensor | None, db: Tensor | None,
                s: int, e: int) -> None:
    """Token-major chunk ``g (n, V)``: ``dh[s:e] = g @ W``, ``dW += g.T @ h``, ``db += g.sum(0)``."""
    if dh is not None:
        torch.mm(g, W, out=dh[s:e])
    if dW is not None:
        dW.addmm_(g.t(), hc)
    if db is not None:
        db += g.sum(0)


# --------------------------------------------------------------------------------- distillation kernel


@dataclass(frozen=True)
class DistillOptions:
    """Hyper-parameters of the chunked distillation kernel."""

    divergence: str = "forward_kl"
    beta: float = 0.5
    temperature: float = 1.0
    chunk_size: int | tuple[int, int] | None = None


def _log_softmax_(z: Tensor) -> Tensor:
    """In-place log-softmax over dim 1."""
    return z.sub_(torch.logsumexp(z, 1, keepdim=True))


def _rowdot(a: Tensor, b: Tensor) -> Tensor:
    """``(a * b).sum(1)`` without an ``(n, V)`` temporary."""
    return torch.bmm(a.unsqueeze(1), b.unsqueeze(2)).view(-1)


def distill_rows(inputs: Sequence[Any], coef: Tensor | None, needs: Sequence[bool], *, teacher_hidden: Tensor,
                 teacher_weight: Tensor, teacher_bias: Tensor | None, index: Tensor | None, n_total: int,
                 options: DistillOptions) -> tuple[Tensor, tuple[Tensor | None, ...]]:
    """The linear distillation kernel: ``inputs = (student hidden, student head, student bias | None)``;
    the teacher is a constant. Returns ``U`` ``(N,)`` and the student's gradients."""
    hidden, weight, bias = inputs
    o = options
    dtype = compute_dtype(hidden, weight, bias, teacher_hidden, teacher_weight, teacher_bias)
    W = weight.to(dtype)
    b = None if bias is None else bias.to(dtype)
    Wt = teacher_weight.to(dtype)
    bt = None if teacher_bias is None else teacher_bias.to(dtype)
    h = _rows(hidden, index, dtype)
    ht = _rows(teacher_hidden, index, dtype)
    c = None if coef is None else _rows(coef, index, dtype)
    m_rows, d = h.shape
    vocab = W.shape[0]
    want = c is not None
    chunk = o.chunk_size[0] if isinstance(o.chunk_size, tuple) else o.chunk_size
    itemsize = torch.finfo(dtype).bits // 8
    rows, _ = plan_chunks(m_rows, vocab, 5, chunk, itemsize, chunk_budget((vocab + m_rows) * d * itemsize))
    T = o.temperature
    beta = o.beta
    u = h.new_empty(m_rows)
    dh = h.new_empty(m_rows, d) if want and needs[0] else None
    dW = torch.zeros_like(W) if want and needs[1] else None
    db = torch.zeros_like(b) if (want and b is not None and len(needs) > 2 and needs[2]) else None
    for s in range(0, m_rows, rows):
        e = min(s + rows, m_rows)
        lq = _log_softmax_(_logits_block(h[s:e], W, b, h.new_empty(e - s, vocab), None).div_(T))
        lp = _log_softmax_(_logits_block(ht[s:e], Wt, bt, h.new_empty(e - s, vocab), None).div_(T))
        if o.divergence == "forward_kl":
            p = lp.exp()
            u[s:e] = (T * T) * _rowdot(p, lp.sub_(lq))
            g = lq.exp_().sub_(p) if want else None
        elif o.divergence == "reverse_kl":
            q = lq.exp()
            a = lq.sub_(lp)
            kl = _rowdot(q, a)
            u[s:e] = (T * T) * kl
            g = a.sub_(kl[:, None]).mul_(q) if want else None
        else:
            lm = torch.logaddexp(lp + math.log(beta), lq + math.log1p(-beta))
            p = lp.exp()
            q = lq.exp()
            kl_p = _rowdot(p, lp.sub_(lm))
            a = lq.sub_(lm)
            kl_q = _rowdot(q, a)
            u[s:e] = (T * T) * (beta * kl_p + (1.0 - beta) * kl_q)
            g = a.sub_(kl_q[:, None]).mul_(q).mul_(1.0 - beta) if want else None
        if g is None or c is None:
            continue
        g.mul_((T * c[s:e])[:, None])
        _head_grads(g, h[s:e], W, dh, dW, db, s, e)
    grads = (
        None if dh is None else _scatter_rows(dh, index, n_total).to(hidden.dtype),
        None if dW is None else dW.to(weight.dtype),
        None if db is None or bias is None else db.to(bias.dtype),
    )
    return _scatter_rows(u, index, n_total), grads[: len(inputs)]
