"""Exact Euclidean distance transforms in torch (private; used by the boundary and Hausdorff-DT losses).

:func:`squared_edt` computes, for every pixel of a batch of binary images, the squared Euclidean
distance to the nearest ``True`` pixel of the same image, by separable 1-D passes
(Felzenszwalb & Huttenlocher, *Distance Transforms of Sampled Functions*, Theory of Computing 2012):

1. along the last axis, the distance to the nearest site of the line, from two index scans
   (``cummax`` forwards, ``cummin`` backwards);
2. along every other axis, the lower envelope of the parabolas ``f(y) + (x - y)^2``, built for all
   lines at once (a loop over the positions of a line, vectorised over the lines) and read back
   with ``searchsorted``.

Lines whose values are all equal (no site in the plane, or all sites) are left out of step 2, since
the envelope of equal parabolas is the constant. The result is exact: integer squared distances,
computed in float32 while every integer involved is exactly representable (float64 beyond).
Nothing here is differentiable; the losses call it on detached masks.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["squared_edt", "signed_distance", "unsigned_distance"]

_CHUNK = 16384  # lines per envelope batch


def _first_pass(sites: Tensor, dtype: torch.dtype, big: float) -> Tensor:
    """Squared distance to the nearest site along the last axis (``big`` where the line has none).

    Arithmetic instead of ``torch.where`` (several times slower on CPU), int32 scans (several times
    faster than int64): a position without a site to its left (right) gets one at ``-far``, whose
    squared distance is above ``big``.
    """
    n = sites.shape[-1]
    far = int(big ** 0.5) + n + 1
    shifted = torch.arange(far, far + n, device=sites.device, dtype=torch.int32)  # idx + far
    s = sites.to(torch.int32)
    left = (s * shifted).cummax(-1).values - far  # last site at or before idx, else -far
    right = (s.flip(-1) * shifted).cummax(-1).values.flip(-1) - far  # mirrored: n - 1 - next site
    idx = shifted - far
    d = torch.minimum(idx - left, (n - 1 - right) - idx).to(dtype)
    return torch.minimum(d * d, torch.tensor(big, dtype=dtype, device=d.device))


def _envelope(f: Tensor) -> Tensor:
    """``out[x, l] = min_y f[y, l] + (x - y)^2`` for every column ``l`` of ``f`` ``(n, L)``.

    Felzenszwalb-Huttenlocher's lower envelope, built for all columns at once: a loop over the
    positions ``q`` of a line, each adding parabola ``q`` to every column's stack; the pops touch only
    the columns that pop. The values are integers (or the no-site sentinel), exact in ``f``'s dtype.
    """
    n, lines = f.shape
    dt, dev = f.dtype, f.device
    qs = torch.arange(n, dtype=dt, device=dev)
    g = f + (qs * qs).unsqueeze(1)
    v = torch.zeros((n, lines), dtype=torch.int64, device=dev)
    z = torch.full((n + 1, lines), float("inf"), dtype=dt, device=dev)
    z[0] = -float("inf")
    cols = torch.arange(lines, device=dev)
    k = torch.zeros(lines, dtype=torch.int64, device=dev)
    vk = torch.zeros(lines, dtype=torch.int64, device=dev)
    gv = g[0].clone()
    zk = z[0].clone()
    for q in range(1, n):
        gq = g[q]
        while True:
            s = (gq - gv) / (2 * (q - vk)).to(dt)
            popping = (s <= zk).nonzero().squeeze(1)
            if popping.numel() == 0:
                break
            kp = k[popping] - 1
            k[popping] = kp
            vp = v[kp, popping]
            vk[popping] = vp
            gv[popping] = g[vp, popping]
            zk[popping] = z[kp, popping]
        k += 1
        v[k, cols] = q
        z[k, cols] = s
        vk.fill_(q)
        gv = gq.clone()
        zk = s
    z = torch.where(torch.arange(n + 1, device=dev).unsqueeze(1) > k, float("inf"), z)
    pos = torch.searchsorted(z[1:].t().contiguous(), qs.expand(lines, n).contiguous(), side="left").t()
    vs = v.gather(0, pos)
    return (qs.unsqueeze(1) - vs.to(dt)) ** 2 + f.gather(0, vs)


def _envelope_direct(f: Tensor) -> Tensor:
    """``min_y f[y, l] + (x - y)^2`` by direct minimisation (no data-dependent control flow)."""
    n = f.shape[0]
    q = torch.arange(n, dtype=f.dtype, device=f.device)
    return (f.unsqueeze(0) + (q.unsqueeze(1) - q.unsqueeze(0)).square().unsqueeze(2)).amin(1)


def _pass(f: Tensor, dim: int) -> Tensor:
    """The envelope pass along ``dim`` of ``f`` ``(B, *spatial)``, skipping constant lines.

    Under ``torch.compile`` every line is minimised directly (quadratic in the line length,
    but traceable with static shapes).
    """
    moved = f.movedim(dim, 0)
    shape = moved.shape
    flat = moved.reshape(shape[0], -1)
    if torch.compiler.is_compiling():
        return _envelope_direct(flat).reshape(shape).movedim(0, dim)
    varying = (flat.amax(0) != flat.amin(0)).nonzero(as_tuple=True)[0]
    if varying.numel() == 0:
        return f
    out = flat.clone()
    for i in range(0, varying.numel(), _CHUNK):
        cols = varying[i: i + _CHUNK]
        out[:, cols] = _envelope(flat[:, cols])
    return out.reshape(shape).movedim(0, dim)


def squared_edt(sites: Tensor) -> Tensor:
    """Squared Euclidean distance of every pixel to the nearest ``True`` pixel of its image.

    Args:
        sites: bool ``(B, *spatial)``, one or more spatial dimensions.

    Returns:
        float64 ``(B, *spatial)``; ``inf`` throughout an image without any site.
    """
    f, big = _squared_edt(sites)
    return torch.where(f >= big / 2, float("inf"), f.to(torch.float64))


def _squared_edt(sites: Tensor) -> tuple[Tensor, float]:
    """``(f, big)``: squared distances, ``big`` (above every squared distance) where an image has no site."""
    sites = sites.detach()
    # a sentinel above every squared distance of the image; float32 while its integers are exact
    big = 4.0 * sum(s * s for s in sites.shape[1:]) + 4.0
    dtype = torch.float32 if big < 2.0 ** 22 else torch.float64
    if sites.numel() == 0:
        return sites.to(dtype), big
    f = _first_pass(sites, dtype, big)
    for dim in range(sites.dim() - 2, 0, -1):
        f = _pass(f, dim)
    return f, big


def _distances(mask: Tensor, empty: float, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """``(d_out, d_in)``: distance to the mask (0 inside), distance to the background (0 outside).

    ``empty`` (at least the image diagonal) replaces the distance where the other side does not exist.
    """
    f, _ = _squared_edt(torch.cat([mask, ~mask]))
    both = f.to(dtype).sqrt_().clamp_(max=empty)  # the sentinel's root exceeds the diagonal: it becomes `empty`
    d_out, d_in = both.chunk(2)
    return d_out, d_in


def _diagonal(mask: Tensor) -> float:
    return float(sum(s * s for s in mask.shape[1:]) ** 0.5)


def signed_distance(mask: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """``d_out - d_in`` per pixel of ``mask`` ``(B, *spatial)``: positive outside, negative inside.

    An image without foreground is ``+L`` everywhere and an image without background ``-L``,
    with ``L`` the length of the image's diagonal (the largest distance it can hold).
    """
    d_out, d_in = _distances(mask, _diagonal(mask), dtype)
    return d_out - d_in  # each is 0 on the other side


def unsigned_distance(mask: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """Distance of every pixel to the nearest pixel of the other label (``L`` where there is none)."""
    d_out, d_in = _distances(mask, _diagonal(mask), dtype)
    return d_out + d_in
