"""Cross-rank negatives: ``gather_distributed=True`` on 2 gloo processes equals one process on the
concatenated batch (value and each rank's gradient slice), and the world-size convention under
DDP's gradient averaging: ``loss * world_size`` trains exactly as one process on the whole batch,
while a loss's own parameters (proxies, ``logit_scale``), which see the whole batch on every rank,
take their gradient divided by the world size.
"""

from __future__ import annotations

import gc
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD = 2
SHARDS = (5, 7)  # unequal shards on purpose


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batch():
    g = torch.Generator().manual_seed(0)
    n = sum(SHARDS)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    y = torch.randn(n, 5, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 4, 4])
    w = torch.rand(n, generator=g, dtype=torch.float64) + 0.5
    m = torch.arange(n) % 3 != 0
    proxies = torch.randn(5, 5, generator=g, dtype=torch.float64)
    return x, y, t, w, m, proxies


def _cases():
    import lossforge.functional as LF

    label = [
        ("contrastive", LF.contrastive_loss, {}), ("triplet", LF.triplet_loss, {}),
        ("triplet all", LF.triplet_loss, {"mining": "all", "average_nonzero": True}),
        ("triplet semi", LF.triplet_loss, {"mining": "batch_semi_hard"}),
        ("ntxent", LF.ntxent_loss, {"temperature": 0.2}), ("supcon", LF.supcon_loss, {}),
        ("circle", LF.circle_loss, {"gamma": 16.0}), ("multi_similarity", LF.multi_similarity_loss, {}),
        ("lifted_structure", LF.lifted_structure_loss, {}),
    ]
    views = [("info_nce", LF.info_nce_loss, {}), ("barlow_twins", LF.barlow_twins_loss, {}),
             ("vicreg", LF.vicreg_loss, {})]
    return label, views


def _slice(rank):
    start = sum(SHARDS[:rank])
    return slice(start, start + SHARDS[rank])


def _grads(fn, *tensors):
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*leaves)
    return out.detach(), torch.autograd.grad(out, leaves)


def _worker(rank, port):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        _check_equivalence(rank)
        _check_ddp_convention(rank)
        dist.barrier()  # every rank is done with its collectives before the group goes
    finally:
        gc.collect()  # DDP's reducer (which holds the group) goes first
        dist.destroy_process_group()


def _check_equivalence(rank):
    import lossforge.functional as LF

    x, y, t, w, m, proxies = _batch()
    sl = _slice(rank)
    label, views = _cases()
    close = dict(rtol=1e-9, atol=1e-11)
    for name, fn, kw in label:
        for extra_full, extra_local in (({}, {}), ({"sample_weight": w}, {"sample_weight": w[sl]}),
                                        ({"mask": m, "reduction": "sum"}, {"mask": m[sl], "reduction": "sum"})):
            ref, (g_ref,) = _grads(lambda e, f=fn, k=kw, ex=extra_full: f(e, t, **k, **ex), x)
            out, (g,) = _grads(lambda e, f=fn, k=kw, ex=extra_local: f(e, t[sl], **k, **ex, gather_distributed=True),
                               x[sl])
            torch.testing.assert_close(out, ref, **close, msg=f"{name} {extra_local} value")
            torch.testing.assert_close(g, g_ref[sl], **close, msg=f"{name} {extra_local} gradient")
        none = fn(x[sl], t[sl], **kw, reduction="none", gather_distributed=True)
        torch.testing.assert_close(none, fn(x, t, **kw, reduction="none"), **close)
    for name, fn, kw in views:
        ref, g_ref = _grads(lambda a, b, f=fn, k=kw: f(a, b, **k), x, y)
        out, g = _grads(lambda a, b, f=fn, k=kw: f(a, b, **k, gather_distributed=True), x[sl], y[sl])
        torch.testing.assert_close(out, ref, **close, msg=name)
        for a, b in zip(g, g_ref):
            torch.testing.assert_close(a, b[sl], **close, msg=f"{name} gradient")
    # info_nce with labels; clip with its scale; proxy_anchor with its proxies
    ref, g_ref = _grads(lambda a, b: LF.info_nce_loss(a, b, labels=t), x, y)
    out, g = _grads(lambda a, b: LF.info_nce_loss(a, b, labels=t[sl], gather_distributed=True), x[sl], y[sl])
    torch.testing.assert_close(out, ref, **close)
    torch.testing.assert_close(g[0], g_ref[0][sl], **close)
    scale = torch.tensor(2.0, dtype=torch.float64)
    ref, g_ref = _grads(lambda a, b, s: LF.clip_loss(a, b, s), x, y, scale)
    out, g = _grads(lambda a, b, s: LF.clip_loss(a, b, s, gather_distributed=True), x[sl], y[sl], scale)
    torch.testing.assert_close(out, ref, **close)
    torch.testing.assert_close(g[1], g_ref[1][sl], **close)
    torch.testing.assert_close(g[2], g_ref[2], **close)  # the scale sees the whole batch on every rank
    ref, g_ref = _grads(lambda e, p: LF.proxy_anchor_loss(e, t, p), x, proxies)
    out, g = _grads(lambda e, p: LF.proxy_anchor_loss(e, t[sl], p, gather_distributed=True), x[sl], proxies)
    torch.testing.assert_close(out, ref, **close)
    torch.testing.assert_close(g[0], g_ref[0][sl], **close)
    torch.testing.assert_close(g[1], g_ref[1], **close)


class _Net(torch.nn.Module):
    """An encoder and the losses it trains, one module (so DDP also averages the proxies' gradient)."""

    def __init__(self, gather: bool):
        import lossforge as lf

        super().__init__()
        self.encoder = torch.nn.Linear(5, 4)
        self.proxy_anchor = lf.ProxyAnchorLoss(num_classes=5, embedding_dim=4, alpha=8.0, gather_distributed=gather)
        self.ntxent = lf.NTXentLoss(temperature=0.3, gather_distributed=gather)

    def forward(self, x, t):
        z = self.encoder(x)
        return self.proxy_anchor(z, t) + self.ntxent(z, t)


def _check_ddp_convention(rank):
    x, _, t, _, _, _ = _batch()
    sl = _slice(rank)
    torch.manual_seed(1)
    single = _Net(gather=False).double()
    net = _Net(gather=True).double()
    net.load_state_dict(single.state_dict())
    single(x, t).backward()  # one process, the whole batch

    w = dist.get_world_size()
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    # DDP averages gradients over the W ranks. The encoder's gradient on a rank is its shard's share of
    # the global loss, so the loss is multiplied by W; the proxies see the gathered batch on every rank
    # (their local gradient is already the full one), so their gradient is divided by W again.
    net.proxy_anchor.proxies.register_hook(lambda grad: grad / w)
    (ddp(x[sl], t[sl]) * w).backward()
    for (name, p), (_, q) in zip(net.named_parameters(), single.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-11, msg=f"DDP gradient of {name}")
    # without the factor W the encoder would get 1/W of the single-process gradient
    net.zero_grad()
    ddp(x[sl], t[sl]).backward()
    torch.testing.assert_close(net.encoder.weight.grad * w, single.encoder.weight.grad, rtol=1e-9, atol=1e-11)


@pytest.mark.slow
def test_gather_distributed_two_gloo_processes():
    mp.spawn(_worker, args=(_free_port(),), nprocs=WORLD, join=True)
