"""Collectives with gradients, for losses whose statistics span a ``torch.distributed`` group.

Convention (the one every lossforge loss with ``sync_dist=`` / ``gather_distributed=`` follows):
every rank computes *the same* loss from the summed statistics or the gathered batch, equal to the
single-process loss on the concatenated batch; each rank's input gradient is the matching slice of
the single-process gradient. Under DDP, which averages parameter gradients over the W ranks, the
parameter gradient is then 1/W of the single-process one: multiply the loss by W (``world_size()``)
to train exactly as one process on the whole batch would.

All functions are no-ops (identity) when torch.distributed is unavailable or not initialised.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["is_distributed", "world_size", "rank", "all_reduce_sum", "all_gather_cat"]


def is_distributed(group: Any = None) -> bool:
    """Whether torch.distributed is initialised (and so collectives run)."""
    return dist.is_available() and dist.is_initialized()


def world_size(group: Any = None) -> int:
    """Number of ranks in ``group`` (1 when not distributed)."""
    return dist.get_world_size(group) if is_distributed(group) else 1


def rank(group: Any = None) -> int:
    """This process's rank in ``group`` (0 when not distributed)."""
    return dist.get_rank(group) if is_distributed(group) else 0


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, group: Any) -> Tensor:
        out = x.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        # Every rank computes the same loss of the sum, so d(loss)/d(local) = d(loss)/d(sum).
        return grad, None


class _AllGatherCat(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, group: Any) -> Tensor:
        n = world_size(group)
        sizes_t = torch.tensor([x.shape[0]], device=x.device)
        all_sizes = [torch.zeros_like(sizes_t) for _ in range(n)]
        dist.all_gather(all_sizes, sizes_t, group=group)
        sizes = [int(s.item()) for s in all_sizes]
        longest = max(sizes)
        padded = x
        if x.shape[0] < longest:
            padded = torch.cat([x, x.new_zeros((longest - x.shape[0], *x.shape[1:]))])
        parts = [torch.empty_like(padded) for _ in range(n)]
        dist.all_gather(parts, padded.contiguous(), group=group)
        me = rank(group)
        ctx.start = sum(sizes[:me])
        ctx.length = sizes[me]
        return torch.cat([p[:s] for p, s in zip(parts, sizes)])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        # Every rank computes the same loss of the gathered batch: keep this rank's slice.
        return grad[ctx.start: ctx.start + ctx.length], None


def all_reduce_sum(x: Tensor, group: Any = None) -> Tensor:
    """Sum ``x`` over the ranks of ``group`` with a gradient (identity when not distributed)."""
    if not is_distributed(group):
        return x
    return _AllReduceSum.apply(x, group)


def all_gather_cat(x: Tensor, group: Any = None) -> Tensor:
    """Concatenate every rank's ``x`` along dim 0 (sizes may differ), with a gradient to the own slice."""
    if not is_distributed(group):
        return x
    return _AllGatherCat.apply(x, group)
