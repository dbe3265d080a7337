"""Fused statistics kernels of the region losses (private to the segmentation family).

Every Dice-type loss is a function of a few sums per (image, class) unit: the soft intersection
``I``, the probability mass ``P``, the target mass ``T`` and the number of counted pixels ``K``.
The kernels here compute them in one pass over the logits, block by block so each block stays in
cache, and save nothing of the logits' size for the backward, which recomputes the activation block
by block and writes the gradient into one fresh tensor. The only
allocation of the size of the logits in a forward and backward pass is that gradient.

- :func:`softmax_index_stats`: logits ``(N, C, P)``, class indices ``(N, P)``. The intersection of
  class ``c`` is the sum of ``p_c`` over the pixels labelled ``c``: a gather of ``p`` at the target
  and a ``scatter_add`` into ``(N, C)`` bins, no one-hot. Two passes over each block forward (a fused
  softmax, a sum), four backward. It also returns ``log p_target``, which is
  what cross-entropy needs, so a composition ``dice + cross_entropy`` runs one softmax pass
  (see :mod:`lossforge._core.activation`).
- :func:`sigmoid_stats`: logits and a binary or soft target of the same shape, rows ``(R, P)``;
  the intersection is the fuzzy ``sum(min(p, t))``, equal to ``sum(p * t)`` for 0/1 targets.
- :func:`softmax_soft_stats`: logits and class probabilities ``(N, C, P)`` (plain autograd).
- :func:`lovasz_rows`: the Lovász extension of the Jaccard loss for every row of an error matrix at
  once (no loop over classes or images).
- :func:`lovasz_softmax_index`: Lovász-softmax against class indices, one autograd node; on the CPU
  its rows run in native code (``lossforge/_native/lovasz.c``), with this module's torch path as the
  fallback.

Under ``torch.compile`` and for double backward the same formulas run as plain autograd.
"""

from __future__ import annotations

import ctypes
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .. import _native
from .._core.threads import run_blocks

__all__ = [
    "RegionStats",
    "softmax_index_stats",
    "softmax_soft_stats",
    "sigmoid_stats",
    "lovasz_rows",
    "lovasz_softmax_index",
    "BLOCK_ELEMENTS",
]

#: Elements per block (float32: 1 MiB): the block temporaries (a softmax, a copy of a strided block)
#: stay in cache and add a few percent to the peak memory (8 MiB blocks measured 1.33x the logits,
#: 1 MiB blocks 1.07x, on 8x21x512x512).
BLOCK_ELEMENTS = 1 << 18


class RegionStats(NamedTuple):
    """Per-unit sums: ``inter`` and ``psum`` carry gradients, ``tsum`` and ``kept`` (counted pixels) do not."""

    inter: Tensor
    psum: Tensor
    tsum: Tensor
    kept: Tensor
    log_pt: Tensor | None = None


def _compute_dtype(x: Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _blocks(n: int, per_row: int, length: int) -> list[tuple[int, int, int, int]]:
    """``(row0, row1, col0, col1)`` blocks of about :data:`BLOCK_ELEMENTS` elements.

    A row holds ``per_row`` elements in ``length`` columns; short rows are grouped, long rows are
    cut along the columns.
    """
    if n == 0 or length == 0:
        return []
    if per_row <= BLOCK_ELEMENTS:
        rows = max(BLOCK_ELEMENTS // max(per_row, 1), 1)
        return [(i, min(i + rows, n), 0, length) for i in range(0, n, rows)]
    cols = max(BLOCK_ELEMENTS * length // per_row, 1)
    return [(i, i + 1, j, min(j + cols, length)) for i in range(n) for j in range(0, length, cols)]


def _plain_path() -> bool:
    return torch.compiler.is_compiling()


# ----------------------------------------------------------------------------- softmax, index target


def _sanitise(target: Tensor, ignore_index: int | None) -> tuple[Tensor, Tensor | None]:
    """``(safe, keep)``: ignored entries become class 0, ``keep`` is False there (``None``: none ignored)."""
    if ignore_index is None:
        return target, None
    keep = target != ignore_index
    return target * keep, keep  # arithmetic: torch.where is several times slower on CPU


def _softmax_index_plain(logits: Tensor, target: Tensor, ignore_index: int | None) -> tuple[Tensor, ...]:
    dt = _compute_dtype(logits)
    safe, keep = _sanitise(target, ignore_index)
    x = logits.to(dt)
    logp = torch.log_softmax(x, 1)
    p = logp.exp()
    t1 = safe.unsqueeze(1)
    log_pt = logp.gather(1, t1).squeeze(1)
    pt = log_pt.exp()
    n, c = x.shape[:2]
    kf = torch.ones_like(pt) if keep is None else keep.to(dt)
    inter = pt.new_zeros((n, c)).scatter_add(1, safe, pt * kf)
    psum = (p * kf.unsqueeze(1)).sum(2)
    tcount = pt.new_zeros((n, c)).scatter_add(1, safe, kf)
    return log_pt, inter, psum, tcount


class _SoftmaxIndexFn(torch.autograd.Function):
    """``(log p_t, I, P, T)`` of logits ``(N, C, P)`` and indices ``(N, P)``; see the module docstring.

    Per block: one fused ``softmax``, the target's probability gathered and scattered into ``(N, C)``
    bins, ``P`` as a sum (a matrix-vector product with the counted pixels when some are ignored).
    Ignored entries are sanitised block by block, and nothing of the size of the logits is saved: the
    backward recomputes the softmax block by block. ``log p_t`` is only materialised when asked for
    (cross-entropy); its gradient at ignored pixels is taken as 0 (cross-entropy masks them).
    """

    @staticmethod
    def forward(ctx: Any, logits: Tensor, target: Tensor, ignore_index: int | None,
                need_log_pt: bool) -> tuple[Tensor, ...]:
        n, c, length = logits.shape
        dt = _compute_dtype(logits)
        tiny = torch.finfo(dt).tiny * 2.0 ** 24  # below this p_t loses precision: use x_t - logsumexp
        log_pt = logits.new_empty((n, length) if need_log_pt else (0,), dtype=dt)
        inter = logits.new_zeros((n, c), dtype=dt)
        psum = logits.new_zeros((n, c), dtype=dt)
        tcount = logits.new_zeros((n, c), dtype=dt)
        for a, b, p0, p1 in _blocks(n, c * length, length):
            x = logits[a:b, :, p0:p1].to(dt)
            t, keep = _sanitise(target[a:b, p0:p1], ignore_index)
            p = torch.softmax(x, 1)
            pt = p.gather(1, t.unsqueeze(1)).squeeze(1)
            if need_log_pt:
                lpt = pt.log()
                small = pt < tiny
                if bool(small.any()):
                    exact = (x.gather(1, t.unsqueeze(1)) - torch.logsumexp(x, 1, keepdim=True)).squeeze(1)
                    lpt = torch.where(small, exact, lpt)
                log_pt[a:b, p0:p1] = lpt
            if keep is None:
                counted = torch.ones_like(pt)
                psum[a:b] += p.sum(2)
            else:
                counted = keep.to(dt)
                pt = pt * counted
                psum[a:b] += torch.bmm(p, counted.unsqueeze(2)).squeeze(2)
            inter[a:b].scatter_add_(1, t, pt)
            tcount[a:b].scatter_add_(1, t, counted)
        ctx.save_for_backward(logits, target)
        ctx.ignore_index = ignore_index
        ctx.mark_non_differentiable(tcount)
        ctx.set_materialize_grads(False)
        return log_pt, inter, psum, tcount

    @staticmethod
    def backward(ctx: Any, g_lp: Tensor | None, g_inter: Tensor | None, g_psum: Tensor | None,
                 _g_count: Tensor | None) -> tuple[Tensor | None, None, None, None]:
        logits, target = ctx.saved_tensors
        ignore_index = ctx.ignore_index
        if g_lp is not None and g_lp.numel() == 0:
            g_lp = None
        if not ctx.needs_input_grad[0] or (g_lp is None and g_inter is None and g_psum is None):
            return None, None, None, None
        dt = _compute_dtype(logits)
        if torch.is_grad_enabled():  # create_graph=True: a differentiable formula
            safe, keep = _sanitise(target, ignore_index)
            p = torch.softmax(logits.to(dt), 1)
            grad = _softmax_index_grad(p, safe, keep, g_lp, g_inter, g_psum)
            return grad.to(logits.dtype), None, None, None
        n, c, length = logits.shape
        grad = torch.empty_like(logits)
        same = grad.dtype == dt
        for a, b, p0, p1 in _blocks(n, c * length, length):
            out = grad[a:b, :, p0:p1]
            t, keep = _sanitise(target[a:b, p0:p1], ignore_index)
            p = torch.softmax(logits[a:b, :, p0:p1].to(dt), 1)
            block = _softmax_index_grad(
                p, t, keep, None if g_lp is None else g_lp[a:b, p0:p1],
                None if g_inter is None else g_inter[a:b],
                None if g_psum is None else g_psum[a:b], out=out if same else None)
            if not same:
                out.copy_(block)
        return grad, None, None, None


def _softmax_index_grad(p: Tensor, target: Tensor, keep: Tensor | None, g_lp: Tensor | None,
                        g_inter: Tensor | None, g_psum: Tensor | None, *, out: Tensor | None = None) -> Tensor:
    """``dL/dx = k p (gP - r) + onehot * a`` with ``r = p.gP + p_t gI_t + g_lp``, ``a = k p_t gI_t + g_lp``.

    ``k`` is the counted-pixel mask; ``g_lp`` is taken as 0 at ignored pixels. With ``out`` the
    result is written there in place (``p`` is overwritten); otherwise it is differentiable.
    """
    dt = p.dtype
    t1 = target.unsqueeze(1)
    kf = None if keep is None else keep.to(dt)
    r: Tensor | None = None
    a: Tensor | None = None
    if g_psum is not None:
        r = torch.bmm(g_psum.to(dt).unsqueeze(1), p).squeeze(1)
    if g_inter is not None:
        a = p.gather(1, t1).squeeze(1) * g_inter.to(dt).gather(1, target)
        r = a if r is None else r + a
    if g_lp is not None:
        gl = g_lp.to(dt) if kf is None else g_lp.to(dt) * kf
        r = gl if r is None else r + gl
        a = gl if a is None else a + gl
    zero = torch.zeros_like(p[:, 0])
    r = zero if r is None else r
    a = zero if a is None else a
    if kf is not None:
        a = a * kf
        p = p.mul_(kf.unsqueeze(1)) if out is not None else p * kf.unsqueeze(1)
    rr = r.unsqueeze(1)
    if out is None:
        w = -rr if g_psum is None else g_psum.to(dt).unsqueeze(2) - rr
        return (p * w).scatter_add(1, t1, a.unsqueeze(1))
    if g_psum is None:
        torch.mul(p, rr, out=out).neg_()
    else:
        torch.mul(p, g_psum.to(dt).unsqueeze(2), out=out).addcmul_(p, rr, value=-1.0)
    return out.scatter_add_(1, t1, a.unsqueeze(1))


def softmax_index_stats(logits: Tensor, target: Tensor, ignore_index: int | None, *,
                        need_log_pt: bool = False) -> RegionStats:
    """Sums per (image, class) of softmax probabilities against class indices, one fused pass.

    Args:
        logits: ``(N, C, P)``, any float dtype (half is computed in float32, block by block).
        target: ``(N, P)`` int64 class indices in ``[0, C)`` or ``ignore_index``.
        ignore_index: The value of ignored pixels (left out of every sum), or ``None``.
        need_log_pt: Also return ``log p_target`` ``(N, P)`` (for cross-entropy).

    Returns:
        :class:`RegionStats` with ``inter``, ``psum``, ``tsum`` of shape ``(N, C)``, ``kept`` ``(N, 1)``
        and ``log_pt`` (``None`` unless asked for).
    """
    if _plain_path():
        log_pt, inter, psum, tcount = _softmax_index_plain(logits, target, ignore_index)
    else:
        log_pt, inter, psum, tcount = _SoftmaxIndexFn.apply(logits, target, ignore_index, need_log_pt)
    count = tcount.sum(1, keepdim=True)
    return RegionStats(inter, psum, tcount, count, log_pt if need_log_pt else None)


# ----------------------------------------------------------------------------- softmax, probability target


def softmax_soft_stats(logits: Tensor, target: Tensor) -> RegionStats:
    """Sums per (image, class) of softmax probabilities against class probabilities ``(N, C, P)``.

    The intersection is ``sum(min(p, t))``: equal to ``sum(p * t)`` for one-hot targets and
    minimised (for Dice) at ``p = t`` for soft ones.
    """
    dt = _compute_dtype(logits)
    p = torch.softmax(logits.to(dt), 1)
    t = target.to(dt)
    inter = _soft_min(p, t).sum(2)
    count = p.new_full((p.shape[0], 1), float(p.shape[2]))
    return RegionStats(inter, p.sum(2), t.sum(2), count)


# ----------------------------------------------------------------------------- sigmoid, same-shape target


def _soft_min(p: Tensor, t: Tensor) -> Tensor:
    """``min(p, t)`` written as ``t - relu(t - p)``: its derivative in ``p`` is ``[p < t]`` (0 at a tie)."""
    return t - torch.relu(t - p)


def _sigmoid_plain(logits: Tensor, target: Tensor, keep: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    dt = _compute_dtype(logits)
    p = torch.sigmoid(logits.to(dt))
    t = target.to(dt)
    if keep is not None:
        kf = keep.to(dt)
        return (_soft_min(p, t) * kf).sum(1), (p * kf).sum(1), (t * kf).sum(1)
    return _soft_min(p, t).sum(1), p.sum(1), t.sum(1)


class _SigmoidFn(torch.autograd.Function):
    """``(I, P, T)`` per row of sigmoid probabilities against a target of the same shape ``(R, P)``.

    The target must be 0 at ignored pixels (so ``min(p, t)`` and ``t`` vanish there by themselves).
    """

    @staticmethod
    def forward(ctx: Any, logits: Tensor, target: Tensor, keep: Tensor | None) -> tuple[Tensor, ...]:
        r, length = logits.shape
        dt = _compute_dtype(logits)
        inter = logits.new_zeros((r,), dtype=dt)
        psum = logits.new_zeros((r,), dtype=dt)
        tsum = logits.new_zeros((r,), dtype=dt)
        for a, b, p0, p1 in _blocks(r, length, length):
            p = torch.sigmoid(logits[a:b, p0:p1].to(dt))
            t = target[a:b, p0:p1].to(dt)
            inter[a:b] += torch.minimum(p, t).sum(1)
            tsum[a:b] += t.sum(1)
            if keep is not None:
                p.mul_(keep[a:b, p0:p1])
            psum[a:b] += p.sum(1)
        ctx.save_for_backward(logits, target, keep)
        ctx.mark_non_differentiable(tsum)
        ctx.set_materialize_grads(False)
        return inter, psum, tsum

    @staticmethod
    def backward(ctx: Any, g_inter: Tensor | None, g_psum: Tensor | None,
                 _g_t: Tensor | None) -> tuple[Tensor | None, None, None]:
        logits, target, keep = ctx.saved_tensors
        if not ctx.needs_input_grad[0] or (g_inter is None and g_psum is None):
            return None, None, None
        dt = _compute_dtype(logits)
        if torch.is_grad_enabled():
            p = torch.sigmoid(logits.to(dt))
            return _sigmoid_grad(p, target.to(dt), keep, g_inter, g_psum).to(logits.dtype), None, None
        r, length = logits.shape
        grad = torch.empty_like(logits)
        for a, b, p0, p1 in _blocks(r, length, length):
            p = torch.sigmoid(logits[a:b, p0:p1].to(dt))
            block = _sigmoid_grad(p, target[a:b, p0:p1].to(dt), None if keep is None else keep[a:b, p0:p1],
                                  None if g_inter is None else g_inter[a:b],
                                  None if g_psum is None else g_psum[a:b])
            grad[a:b, p0:p1] = block
        return grad, None, None


def _sigmoid_grad(p: Tensor, t: Tensor, keep: Tensor | None, g_inter: Tensor | None,
                  g_psum: Tensor | None) -> Tensor:
    """``k * (gP + gI [p < t]) * p (1 - p)`` (the derivative of ``min(p, t) = t - relu(t - p)``)."""
    dt = p.dtype
    gp = torch.zeros((), dtype=dt, device=p.device) if g_psum is None else g_psum.to(dt).unsqueeze(1)
    if g_inter is None:
        c = gp.expand_as(p).contiguous()
    elif torch.is_grad_enabled():
        c = (p < t).to(dt) * g_inter.to(dt).unsqueeze(1) + gp
    else:  # a broadcast torch.where is several times slower than these in-place steps
        c = torch.lt(p, t).to(dt).mul_(g_inter.to(dt).unsqueeze(1)).add_(gp)
    if keep is not None:
        c = c * keep.to(dt)
    if torch.is_grad_enabled():
        return c * (p * (1.0 - p))
    return torch.ops.aten.sigmoid_backward(c, p)


def sigmoid_stats(logits: Tensor, target: Tensor, keep: Tensor | None) -> RegionStats:
    """Sums per row of ``sigmoid(logits)`` against a binary or soft target of the same shape ``(R, P)``.

    ``target`` must already be sanitised (ignored entries hold a value in ``[0, 1]``). A target
    that requires a gradient is differentiated through (plain autograd).
    """
    if _plain_path() or target.requires_grad:
        inter, psum, tsum = _sigmoid_plain(logits, target, keep)
    else:
        inter, psum, tsum = _SigmoidFn.apply(logits, target, keep)
    length = logits.shape[1]
    if keep is None:
        count = inter.new_full(inter.shape, float(length)).detach()
    else:
        count = keep.sum(1).to(inter.dtype)
    return RegionStats(inter, psum, tsum, count)


# ----------------------------------------------------------------------------- Lovász extension


def _lovasz_sorted(errors: Tensor, fg: Tensor, valid: Tensor | None) -> Tensor:
    """Reference path: one batched sort of every row (handles soft ``fg``)."""
    dt = errors.dtype
    fgf = fg.to(dt)
    vf = torch.ones_like(fgf) if valid is None else valid.to(dt)
    fgf = fgf * vf
    _, perm = torch.sort(errors.detach(), dim=-1, descending=True)
    fg_s = fgf.gather(-1, perm)
    bg_s = (vf - fgf).gather(-1, perm)
    total = fgf.sum(-1, keepdim=True)
    inter = total - fg_s.cumsum(-1)
    union = total + bg_s.cumsum(-1)
    safe = torch.where(union > 0, union, torch.ones_like(union))
    jac = torch.where(union > 0, 1.0 - inter / safe, torch.zeros_like(union))
    g_sorted = torch.diff(jac, dim=-1, prepend=torch.zeros_like(jac[..., :1]))
    g = torch.zeros_like(errors).scatter_(-1, perm, g_sorted)
    return (errors * g).sum(-1)


def _lovasz_fast(errors: Tensor, fg: Tensor, valid: Tensor | None) -> Tensor:
    """Hard labels: only the pixels whose errors overlap between foreground and background are sorted.

    For a foreground pixel with ``b`` background errors above it the Lovász gradient is ``1/(F+b)``;
    for a background pixel with ``a`` foreground and ``b`` background errors above it, it is
    ``(F-a)/((F+b)(F+b+1))``. Foreground errors above every background error have ``b = 0`` and
    background errors below every foreground error have ``a = F`` (gradient 0), so only the overlap
    needs an order. A row without foreground puts its whole gradient on its largest error.
    """
    dt = errors.dtype
    e = errors.detach()
    isfg = fg if valid is None else fg & valid
    isbg = ~fg if valid is None else valid & ~fg
    nfg = isfg.sum(-1)
    fgf, bgf = isfg.to(dt), isbg.to(dt)
    # masked extrema by arithmetic (errors are >= 0): non-foreground -> above every error, non-background -> -1
    above = e.amax() + 1.0
    lo = torch.addcmul(e, fgf - 1.0, e - above).amin(-1, keepdim=True)  # e where foreground, else `above`
    bg_err = torch.addcmul(e, bgf - 1.0, e + 1.0)  # e where background, else -1
    hi = bg_err.amax(-1, keepdim=True)
    ff = nfg.clamp_min(1).to(dt).unsqueeze(-1)
    g = fgf / ff
    # rows without foreground: the largest background error gets the whole gradient
    top = bg_err.argmax(-1, keepdim=True)
    no_fg = (nfg == 0) & isbg.any(-1)
    g.scatter_(-1, top, torch.where(no_fg.unsqueeze(-1), 1.0, g.gather(-1, top)))
    active = (isfg & (e <= hi)) | (isbg & (e >= lo))
    rows, cols = active.nonzero(as_tuple=True)
    if rows.numel() > 0:
        vals = e[rows, cols]
        is_f = isfg[rows, cols]
        order = torch.argsort(vals, descending=True, stable=True)
        order = order[torch.argsort(rows[order], stable=True)]
        rows, cols, is_f = rows[order], cols[order], is_f[order]
        fgi = is_f.to(torch.int64)
        bgi = 1 - fgi
        n_rows = e.shape[0]
        fg_per = torch.zeros(n_rows, dtype=torch.int64, device=e.device).index_add_(0, rows, fgi)
        bg_per = torch.zeros(n_rows, dtype=torch.int64, device=e.device).index_add_(0, rows, bgi)
        fg_before = (fg_per.cumsum(0) - fg_per)[rows]
        bg_before = (bg_per.cumsum(0) - bg_per)[rows]
        a_ex = fgi.cumsum(0) - fgi - fg_before  # active foreground above, in this row
        b_ex = bgi.cumsum(0) - bgi - bg_before  # active background above, in this row
        big_f = nfg[rows]
        a = (big_f - fg_per[rows]) + a_ex  # inactive foreground errors are all above
        fgn = big_f.to(dt)
        fb = fgn + b_ex.to(dt)
        g_f = 1.0 / fb
        g_b = (fgn - a.to(dt)) / (fb * (fb + 1.0))
        g[rows, cols] = torch.where(is_f, g_f, g_b)
    return (errors * g).sum(-1)


def lovasz_rows(errors: Tensor, fg: Tensor, valid: Tensor | None = None) -> Tensor:
    """Lovász extension of the Jaccard loss of every row of ``errors`` ``(R, P)``.

    Args:
        errors: Non-negative errors (``|fg - p|`` for Lovász-softmax, ``relu(1 - x * sign)`` for
            the hinge), with gradients.
        fg: Foreground per pixel: bool (hard labels: only the overlapping errors are sorted), or
            float in ``[0, 1]`` (soft labels: one batched sort; equal to the hard case for 0/1).
        valid: Pixels that count (``False`` for ignored ones), or ``None``.

    Returns:
        ``(R,)``: the loss of each row (0 for a row without valid pixels).
    """
    if errors.numel() == 0:
        return errors.sum(-1)
    if fg.dtype == torch.bool and not _plain_path():
        return _lovasz_fast(errors, fg, valid)
    return _lovasz_sorted(errors, fg, valid)


# ----------------------------------------------------------------------------- Lovász-softmax, index target


def _row_top(d: Tensor, rows: Tensor, per_image: bool) -> tuple[Tensor, Tensor]:
    """``(flat position, d there)`` of the first largest ``d`` of each row in ``rows``.

    ``d`` is ``(N, K, P)``; a row is ``n * K + k`` (per image) or a class ``k`` of the whole batch,
    whose pixels are ordered ``(n, p)`` (the order of the reference layout ``(K, N * P)``).
    """
    n, k, length = d.shape
    if per_image:
        vals, cols = d.reshape(n * k, length)[rows].max(-1)
        return rows * length + cols, vals
    best = d.amax(-1)[:, rows]  # (N, R'): the largest d of every (image, class)
    first = (best == best.amax(0, keepdim=True)).to(torch.uint8).argmax(0)  # the first image that holds it
    vals, cols = d[first, rows].max(-1)
    return (first * k + rows) * length + cols, vals


def _lovasz_order(err: Tensor, row: Tensor, rows: int) -> Tensor:
    """The permutation that sorts elements by row, then by decreasing error, ties by position.

    float32 errors in ``[0, 1]`` have order-preserving bit patterns below ``2^30``, so one stable sort of
    the packed int64 key ``row * 2^30 + (bits(1.0) - bits(e))`` does both (a radix sort on CPU, several
    times faster than a float sort); other dtypes take two stable sorts.
    """
    if err.dtype == torch.float32 and rows < (1 << 32):
        key = row * (1 << 30) + (0x3F800000 - err.view(torch.int32)).to(torch.int64)
        return torch.sort(key, stable=True)[1]
    order = torch.argsort(err, descending=True, stable=True)
    return order[torch.argsort(row[order], stable=True)]


def _lovasz_signed_grad(d: Tensor, fg: Tensor, nfg: Tensor, lo: Tensor, per_image: bool) -> Tensor:
    """``s = g * sign(d)`` per pixel: the Lovász gradient ``g`` of ``e = |d|`` times ``de/dd``.

    ``d = p - fg`` ``(N, K, P)`` (0 at ignored pixels), ``fg`` the float 0/1 foreground (overwritten:
    it becomes ``s``), ``nfg`` the int64 foreground count and ``lo`` the smallest foreground error of
    every row (above every error where the row has no foreground). A row is an (image, class)
    (``per_image``, ``nfg`` ``(N, K)``) or a class of the whole batch (``nfg`` ``(K,)``). As in
    :func:`_lovasz_fast`, a foreground pixel with ``b`` background errors above it has
    ``g = 1 / (F + b)``, a background pixel with ``a`` foreground and ``b`` background errors above
    it ``(F - a) / ((F + b)(F + b + 1))``, and only the pixels where foreground and background errors
    overlap are sorted: foreground errors above every background error have ``g = 1 / F``, background
    errors below every foreground error ``g = 0``. A row without foreground puts its whole gradient
    on its (first) largest error.

    The overlap is found with float arithmetic only (comparisons, ``where`` and bool reductions are
    several times slower on CPU): ``hi`` (the largest background error) is ``max d``, and a pixel is
    sorted when ``y = d + (hi + lo) fg >= lo - margin`` (``d >= -hi`` for the foreground, ``d >= lo``
    for the background). Rounding only makes the sorted set larger: ``y`` is monotone in ``d`` within
    a row and a label, so every pixel left out is above (foreground) or below (background) every
    sorted one, which is all the closed forms need. Foreground pixels of error 0 are always sorted (they are
    below the others); sorted zero errors get ``sign(0) = 0``, as autograd's ``abs``.
    """
    n, k, length = d.shape
    dt, dev = d.dtype, d.device
    red = (-1,) if per_image else (0, -1)
    view = (n, k, 1) if per_image else (1, k, 1)
    rows = n * k if per_image else k
    eps = torch.finfo(dt).eps
    hi = d.amax(red).clamp_min(0.0)  # the largest background error (foreground d <= 0 <= background d)
    # y = d + (hi + lo) fg >= lo - margin (the margin covers y's two roundings), block by block: the
    # temporary stays in cache (a fresh tensor of the logits' size costs its page faults on CPU)
    c = (hi + lo).expand(n, k) if not per_image else hi + lo
    thr = (lo - 16.0 * eps).expand(n, k) if not per_image else lo - 16.0 * eps
    d2, f2 = d.reshape(n * k, length), fg.reshape(n * k, length)
    c2, thr2 = c.reshape(n * k, 1), thr.reshape(n * k, 1)
    act = torch.empty((n * k, length), dtype=torch.bool, device=dev)
    buf = torch.empty(min(BLOCK_ELEMENTS, n * k * length), dtype=dt, device=dev)
    for a, b, p0, p1 in _blocks(n * k, length, length):
        y = buf[: (b - a) * (p1 - p0)].view(b - a, p1 - p0)
        torch.addcmul(d2[a:b, p0:p1], f2[a:b, p0:p1], c2[a:b], out=y)
        torch.ge(y, thr2[a:b], out=act[a:b, p0:p1])
    flat = act.reshape(-1).nonzero().squeeze(1)  # row-major: by row, then by position
    del act
    m = flat.numel()
    code = None
    if m > 0:
        code = d.reshape(-1).index_select(0, flat).sign_().add_(fg.reshape(-1).index_select(0, flat), alpha=3.0)
    ff = nfg.clamp_min(1).to(dt)
    s = fg.mul_((-1.0 / ff).reshape(view))  # (in place) foreground above the overlap: -1/F; the rest: 0
    if code is not None:
        # sorted pixels per (image, class): flat is sorted, so its row boundaries are a binary search away
        bounds = torch.arange(n * k + 1, device=dev) * length
        counts = torch.diff(torch.searchsorted(flat, bounds))
        ids = torch.arange(n * k, device=dev)
        row = torch.repeat_interleave(ids if per_image else ids % k, counts, output_size=m)
        # code: sign(d) + 3 fg (foreground: 2, or 3 where d = 0; background: 0 or 1)
        order = _lovasz_order(d.reshape(-1).index_select(0, flat).abs_(), row, rows)
        flat = flat.index_select(0, order)
        code = code.index_select(0, order)
        if not per_image:  # sorted by class (per image the rows stay in place)
            row = torch.repeat_interleave(torch.arange(k, device=dev), counts.reshape(n, k).sum(0), output_size=m)
        is_f = code > 1.5
        fi = is_f.to(torch.int64)
        per_row = counts if per_image else counts.reshape(n, k).sum(0)
        ends = per_row.cumsum(0)
        starts = ends - per_row
        cf = torch.cat([fi.new_zeros(1), fi.cumsum(0)])  # foreground among the first i sorted
        first = cf[starts]
        big_f = nfg.reshape(-1)
        above = big_f - (cf[ends] - first)  # foreground outside the sorted set: above it
        ex = cf[:-1]  # foreground sorted before, from the start of the list
        # with a (foreground above: outside + sorted before in the row) and b (background sorted before in
        # the row): F + b = (F + first - start)[row] + i - ex and F - a = (F - above + first)[row] - ex
        fb = (big_f + first - starts).index_select(0, row).add_(torch.arange(m, device=dev)).sub_(ex).to(dt)
        f_a = (big_f - above + first).index_select(0, row).sub_(ex).to(dt)
        g_f = 1.0 / fb
        g_b = f_a / (fb * (fb + 1.0))
        sign = code - 3.0 * is_f  # sign(d)
        s.reshape(-1).scatter_(0, flat, torch.where(is_f, g_f, g_b).mul_(sign))
    empty = (nfg.reshape(-1) == 0).nonzero().squeeze(1)
    if empty.numel() > 0:
        top, val = _row_top(d, empty, per_image)
        s.reshape(-1).scatter_(0, top, (val > 0).to(dt))
    return s


def _row_dot(a: Tensor, b: Tensor) -> Tensor:
    """``(a * b).sum(1)`` for rows ``(R, P)``, block by block (the product stays in cache)."""
    rows, length = a.shape
    out = a.new_zeros(rows)
    buf = torch.empty(min(BLOCK_ELEMENTS, a.numel()), dtype=a.dtype, device=a.device)
    for r0, r1, p0, p1 in _blocks(rows, length, length):
        prod = torch.mul(a[r0:r1, p0:p1], b[r0:r1, p0:p1], out=buf[: (r1 - r0) * (p1 - p0)].view(r1 - r0, p1 - p0))
        out[r0:r1] += prod.sum(1)
    return out


_I64, _PTR = ctypes.c_int64, ctypes.c_void_p
# lovasz.c: lf_lovasz_labels(target, lab, c, lut, ignore, has_ignore, count);
# lf_lovasz_rows_f32(p, lab, s, u, f, n, c, k, length, index, per_image, r0, r1);
# lf_lovasz_backward_f32(p, s, gu, grad, c, k, length, lut, per_image, u0, u1)
_LV_LABELS = ("lf_lovasz_labels", ctypes.c_int, (_PTR, _PTR, _I64, _PTR, _I64, _I64, _I64))
_LV_ROWS = ("lf_lovasz_rows_f32", ctypes.c_int, (_PTR, _PTR, _PTR, _PTR, _PTR, _I64, _I64, _I64, _I64, _PTR, _I64,
                                                 _I64, _I64))
_LV_BACKWARD = ("lf_lovasz_backward_f32", None, (_PTR, _PTR, _PTR, _PTR, _I64, _I64, _I64, _PTR, _I64, _I64, _I64))
#: Elements per block of native work when several threads share it (one thread: one call).
_NATIVE_BLOCK = 1 << 16


def _native_fn(spec: tuple[str, Any, tuple[Any, ...]]) -> Any:
    return _native.function("lovasz", *spec)


def _native_pixel_blocks(pixels: int, channels: int, call: Any) -> None:
    """``call(u0, u1)`` over blocks of the pixels ``[0, pixels)`` (``channels`` elements each), shared among
    ``torch.get_num_threads()`` threads; one call on one thread."""
    per = pixels if torch.get_num_threads() == 1 else max(_NATIVE_BLOCK // max(channels, 1), 64)
    starts = range(0, pixels, per)
    run_blocks(len(starts), lambda b: call(starts[b], min(starts[b] + per, pixels)))


class _LovaszNative(NamedTuple):
    p: Tensor
    s: Tensor
    u: Tensor
    nfg: Tensor
    lut: Tensor


def _lovasz_native_forward(logits: Tensor, target: Tensor, ignore_index: int | None, index: Tensor | None,
                           per_image: bool) -> _LovaszNative | None:
    """The forward of :class:`_LovaszSoftmaxFn` by the native kernels (``lossforge/_native/lovasz.c``), or
    None where they do not apply (not on the CPU, float64, empty) or are unavailable.

    From torch's softmax (the torch path's ``p``, so the same errors and order) and a label per pixel
    (the slot of its class, -1 where ignored), one row at a time on ``torch.get_num_threads()``
    threads (``ctypes`` releases the GIL): the foreground count and extrema, the closed-form gradients
    and the overlap, radix-sorted (see the C source). The backward is one fused pass. Same values and
    gradients as the torch path, to float32 rounding (sums in another order).
    """
    n, c, length = logits.shape
    k = c if index is None else index.numel()
    rows, span = (n * k, length) if per_image else (k, n * k * length)  # span: a row's offsets in s
    if (logits.device.type != "cpu" or logits.dtype == torch.float64 or logits.numel() == 0 or k == 0
            or span > 1 << 32):
        return None
    fns = [_native_fn(spec) for spec in (_LV_LABELS, _LV_ROWS, _LV_BACKWARD)]
    if any(fn is None for fn in fns):
        return None
    labels_fn, rows_fn = fns[0], fns[1]
    p = torch.softmax(logits.detach().to(torch.float32), 1).contiguous()  # the torch path's p, bit for bit
    t = target.to(torch.int64).contiguous()
    idx = torch.arange(c) if index is None else index.to(torch.int64).contiguous()
    lut = torch.full((c,), k, dtype=torch.int64)
    lut[idx] = torch.arange(k)
    lab = torch.empty((n, length), dtype=torch.int32)
    s = torch.empty((n, k, length), dtype=torch.float32)
    u = torch.empty(rows, dtype=torch.float64)
    nfg = torch.empty(rows, dtype=torch.int64)
    pp, lp = p.data_ptr(), lab.data_ptr()
    ign = 0 if ignore_index is None else int(ignore_index)
    if labels_fn(t.data_ptr(), lp, c, lut.data_ptr(), ign, int(ignore_index is not None), n * length) != 0:
        raise ValueError(f"lovasz_softmax_loss: target must hold class indices in [0, {c}) or ignore_index, "
                         f"got values outside it.")
    bad: list[int] = []
    sp, up, fp, ip = s.data_ptr(), u.data_ptr(), nfg.data_ptr(), idx.data_ptr()
    per = 1 if torch.get_num_threads() > 1 else rows

    def row_block(b: int) -> None:
        r0 = b * per
        if rows_fn(pp, lp, sp, up, fp, n, c, k, length, ip, int(per_image), r0, min(r0 + per, rows)) != 0:
            bad.append(r0)

    run_blocks(-(-rows // per), row_block)
    if bad:
        raise MemoryError("lossforge: the native Lovász kernel could not allocate its scratch memory.")
    return _LovaszNative(p, s, u.to(torch.float32), nfg, lut)


def _lovasz_native_backward(p: Tensor, s: Tensor, g_u: Tensor, lut: Tensor, per_image: bool) -> Tensor | None:
    """``softmax_backward(s * g_u[row], p)`` (0 for the classes not selected) in one native pass."""
    fn = _native_fn(_LV_BACKWARD)
    if fn is None:
        return None
    n, c, length = p.shape
    k = s.shape[1]
    gu = g_u.detach().to(torch.float32).contiguous()
    grad = torch.empty_like(p)
    pp, sp, gp, op, lp = p.data_ptr(), s.data_ptr(), gu.data_ptr(), grad.data_ptr(), lut.data_ptr()
    _native_pixel_blocks(n * length, c, lambda u0, u1: fn(pp, sp, gp, op, c, k, length, lp, int(per_image), u0, u1))
    return grad


class _LovaszSoftmaxFn(torch.autograd.Function):
    """Lovász-softmax of logits ``(N, C, P)`` and class indices ``(N, P)``: ``(U, F)`` per row.

    Forward: one softmax, ``d = p - fg``, the signed Lovász gradient ``s`` (:func:`_lovasz_signed_grad`)
    and ``U = sum(d * s) = sum(|d| g)`` per row. Saved: ``p`` and ``s``. Backward in closed form (``g`` is
    constant where it is defined): ``dL/dx = softmax_backward(s * dL/dU, p)``, two passes. On the CPU
    (float32 and half logits) the native kernels compute ``s``, ``U`` and the backward from the same
    softmax (:func:`_lovasz_native_forward`).
    """

    @staticmethod
    def forward(ctx: Any, logits: Tensor, target: Tensor, ignore_index: int | None, index: Tensor | None,
                per_image: bool) -> tuple[Tensor, Tensor]:
        n, c, length = logits.shape
        dt = _compute_dtype(logits)
        native = _lovasz_native_forward(logits, target, ignore_index, index, per_image)
        ctx.index, ctx.per_image, ctx.lut = index, per_image, None
        if native is not None:
            ctx.save_for_backward(logits, native.p, native.s)
            ctx.lut = native.lut
            nf = native.nfg.to(dt)
            ctx.mark_non_differentiable(nf)
            return native.u, nf
        p = torch.softmax(logits.to(dt), 1)
        safe, keep = _sanitise(target, ignore_index)
        safe = safe.long()
        on = torch.ones_like(safe) if keep is None else keep.to(torch.int64)  # counted pixels
        if index is None:
            ps, k, slot = p, c, safe
        else:  # the selected classes; a pixel of another class is background for all of them
            k = index.numel()
            lut = torch.full((c,), -1, dtype=torch.int64, device=p.device)
            lut[index] = torch.arange(k, device=p.device)
            ps, slot = p.index_select(1, index), lut[safe]
            on = on * (slot >= 0)
            slot = slot.clamp_min(0)
        fg = p.new_zeros((n, k, length)).scatter_(1, slot.unsqueeze(1), on.unsqueeze(1).to(dt))
        nfg = on.new_zeros((n, k)).scatter_add_(1, slot, on)  # foreground counts
        # the smallest foreground error 1 - max p over the foreground: from the target's probabilities only
        pt = ps.gather(1, slot.unsqueeze(1)).squeeze(1).mul_(on)
        top = pt.new_zeros((n, k)).scatter_reduce_(1, slot, pt, "amax")
        d = ps - fg if keep is None else torch.mul(ps, keep.unsqueeze(1).to(dt)).sub_(fg)  # 0 where ignored
        if not per_image:
            nfg, top = nfg.sum(0), top.amax(0)
        lo = torch.where(nfg > 0, 1.0 - top, 2.0)  # none: above every error
        s = _lovasz_signed_grad(d, fg, nfg, lo, per_image)
        u = _row_dot(d.reshape(n * k, length), s.reshape(n * k, length)).reshape(n, k)
        if not per_image:
            u = u.sum(0)
        ctx.save_for_backward(logits, p, s)
        nf = nfg.to(dt)
        ctx.mark_non_differentiable(nf)
        return u.reshape(-1), nf.reshape(-1)

    @staticmethod
    def backward(ctx: Any, g_u: Tensor | None, _g_f: Tensor | None) -> tuple[Tensor | None, None, None, None, None]:
        logits, p, s = ctx.saved_tensors
        if g_u is None or not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        if ctx.lut is not None and not torch.is_grad_enabled():
            grad = _lovasz_native_backward(p, s, g_u, ctx.lut, ctx.per_image)
            if grad is not None:
                return grad.to(logits.dtype), None, None, None, None
        n, k = s.shape[:2]
        gv = g_u.reshape((n, k, 1) if ctx.per_image else (1, k, 1)).to(s.dtype)
        dp = s * gv
        if ctx.index is not None:
            dp = p.new_zeros(p.shape).index_copy_(1, ctx.index, dp)
        if torch.is_grad_enabled():  # create_graph=True: a differentiable formula
            q = torch.softmax(logits.to(p.dtype), 1)
            grad = q * (dp - (q * dp).sum(1, keepdim=True))
        else:
            grad = torch._softmax_backward_data(dp, p, 1, p.dtype)
        return grad.to(logits.dtype), None, None, None, None


def lovasz_softmax_index(logits: Tensor, target: Tensor, ignore_index: int | None, index: Tensor | None, *,
                         per_image: bool) -> tuple[Tensor, Tensor]:
    """Lovász-softmax of logits ``(N, C, P)`` against class indices ``(N, P)``, every row at once.

    Args:
        logits: ``(N, C, P)``, any float dtype (half is computed in float32).
        target: ``(N, P)`` int64 class indices in ``[0, C)`` or ``ignore_index``.
        ignore_index: The value of ignored pixels (left out of every row), or ``None``.
        index: The selected classes ``(K,)`` (``None``: all).
        per_image: Rows are (image, class) pairs ``N * K`` (else the ``K`` classes of the batch).

    Returns:
        ``(U, F)``: the loss of every row and its foreground count (no gradient), both ``(R,)``.
        Equal to :func:`lovasz_rows` on ``|[fg] - softmax(logits)|`` with a bool ``fg``.
    """
    return _LovaszSoftmaxFn.apply(logits, target, ignore_index, index, per_image)  # type: ignore[no-any-return]
