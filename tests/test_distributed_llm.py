"""Two gloo processes on CPU: vocabulary-parallel cross-entropy equals the unsharded loss and gradients,
and ``normalizer=global_token_count(...) / world_size`` under DDP-style gradient averaging equals the
single-process big batch exactly."""

from __future__ import annotations

import gc
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

import lossforge.functional as LF

WORLD = 2
F64 = torch.float64


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-13)


def _reference(logits: torch.Tensor, y: torch.Tensor, eps: float, z_loss: float, reduction: str) -> torch.Tensor:
    """The unsharded loss, from torch's cross_entropy plus the z-loss term."""
    ce = F.cross_entropy(logits, y, label_smoothing=eps, reduction="none")
    valid = y != -100
    lse = torch.logsumexp(logits, -1)
    u = torch.where(valid, ce + z_loss * lse**2, torch.zeros_like(ce))
    return {"none": u, "sum": u.sum(), "mean": u.sum() / valid.sum()}[reduction]


def _check_vocab_parallel(rank: int) -> None:
    g = torch.Generator().manual_seed(0)  # the same data on every rank
    n, v = 12, 10
    logits = torch.randn(n, v, generator=g, dtype=F64) * 3
    y = torch.randint(v, (n,), generator=g)
    y[::4] = -100
    for (cut, explicit), eps, z_loss, reduction in [
        ((5, False), 0.0, 0.0, "mean"),
        ((5, False), 0.1, 1e-2, "none"),
        ((3, True), 0.2, 0.0, "sum"),  # uneven shards: vocab_start given
    ]:
        lo, hi = (0, cut) if rank == 0 else (cut, v)
        shard = logits[:, lo:hi].clone().requires_grad_()
        start = lo if explicit else None
        out = LF.vocab_parallel_cross_entropy(shard, y, vocab_start=start, label_smoothing=eps, z_loss=z_loss,
                                              reduction=reduction)
        full = logits.clone().requires_grad_()
        ref = _reference(full, y, eps, z_loss, reduction)
        _close(out, ref)
        up = torch.linspace(0.5, 1.5, out.numel(), dtype=F64).reshape(out.shape)
        (out * up).sum().backward()
        (ref * up).sum().backward()
        _close(shard.grad, full.grad[:, lo:hi])


def _check_ddp_normalizer(rank: int) -> None:
    """Each rank has its own micro-batches; DDP averages the head's gradient over the ranks."""
    g = torch.Generator().manual_seed(1)
    d, v = 4, 9
    w = torch.randn(v, d, generator=g, dtype=F64)
    data = []
    for r in range(WORLD):
        for k in range(2):  # two accumulation micro-batches per rank
            n = 5 + 2 * r + k
            h = torch.randn(n, d, generator=g, dtype=F64)
            y = torch.randint(v, (n,), generator=g)
            y[: r + k] = -100
            data.append((r, h, y))
    mine = [(h, y) for r, h, y in data if r == rank]
    count = LF.global_token_count(*[y for _, y in mine])
    assert int(count) == sum(int((y != -100).sum()) for _, _, y in data)
    local = w.clone().requires_grad_()
    for h, y in mine:
        LF.linear_cross_entropy(h, local, y, normalizer=count / WORLD).backward()
    grad = local.grad.clone()
    dist.all_reduce(grad)
    grad /= WORLD  # what DDP does
    big = w.clone().requires_grad_()
    LF.linear_cross_entropy(torch.cat([h for _, h, _ in data]), big, torch.cat([y for _, _, y in data])).backward()
    _close(grad, big.grad)


def _worker(rank: int, port: int) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        _check_vocab_parallel(rank)
        _check_ddp_normalizer(rank)
        dist.barrier()  # every rank is done with its collectives before the group goes
    finally:
        gc.collect()  # DDP's reducer (which holds the group) goes first
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes() -> None:
    mp.spawn(_worker, args=(_free_port(),), nprocs=WORLD, join=True)
