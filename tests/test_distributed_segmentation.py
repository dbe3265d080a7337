"""Region losses with ``sync_dist=True`` on 2 gloo processes equal one process on the concatenated batch:
the value on every rank and each rank's gradient slice (to 1e-9 in float64), for batch statistics (summed
over ranks) and per-image statistics (gathered), with sample weights and masks; and the scaling convention
under DDP's gradient averaging: ``loss * world_size`` trains exactly as one process on the whole batch.
"""

from __future__ import annotations

import gc
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD = 2
SHARDS = (2, 3)  # unequal shards on purpose


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batch():
    g = torch.Generator().manual_seed(0)
    n = sum(SHARDS)
    logits = torch.randn(n, 3, 6, 5, generator=g, dtype=torch.float64) * 2
    target = torch.randint(0, 3, (n, 6, 5), generator=g)
    target[1, :2] = -100
    target[3][target[3] == 2] = 0  # a class absent from one image
    b_logits = torch.randn(n, 2, 6, 5, generator=g, dtype=torch.float64) * 2
    b_target = (torch.rand(n, 2, 6, 5, generator=g) > 0.6).to(torch.float64)
    weight = torch.rand(n, 3, generator=g, dtype=torch.float64) + 0.5
    keep = torch.rand(n, 3, generator=g) > 0.3
    return logits, target, b_logits, b_target, weight, keep


def _slice(rank):
    start = sum(SHARDS[:rank])
    return slice(start, start + SHARDS[rank])


def _grads(fn, x):
    leaf = x.detach().clone().requires_grad_(True)
    out = fn(leaf)
    return out.detach(), torch.autograd.grad(out, leaf)[0]


def _worker(rank, port):
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

    logits, target, b_logits, b_target, weight, keep = _batch()
    sl = _slice(rank)
    close = dict(rtol=1e-9, atol=1e-11)
    # every loss shares the same reduction tail; these cover each statistics path (fused softmax, sigmoid,
    # generalized weights, Lovász rows, distance maps, skeletons)
    multi = [LF.dice_loss, LF.focal_tversky_loss, LF.generalized_dice_loss, LF.mcc_loss, LF.lovasz_softmax_loss,
             LF.boundary_loss, LF.cl_dice_loss]
    binary = [LF.binary_dice_loss, LF.lovasz_hinge_loss, LF.binary_hausdorff_dt_loss]
    cases = [(f, logits, target) for f in multi] + [(f, b_logits, b_target) for f in binary]
    for fn, x, t in cases:
        for per_image in (True, False):
            extras = [({}, {})]
            if per_image and fn in (LF.dice_loss, LF.binary_dice_loss, LF.lovasz_softmax_loss):
                c = x.shape[1]
                extras += [({"sample_weight": weight[:, :c]}, {"sample_weight": weight[sl, :c]}),
                           ({"mask": keep[:, :c], "reduction": "sum"}, {"mask": keep[sl, :c], "reduction": "sum"})]
            if not per_image:
                extras += [({"skip_empty": True}, {"skip_empty": True})]
            for full, local in extras:
                what = f"{fn.__name__} per_image={per_image} {sorted(local)}"
                ref, g_ref = _grads(lambda z, f=fn, tt=t, k=full, pi=per_image: f(z, tt, per_image=pi, **k), x)
                out, g = _grads(lambda z, f=fn, tt=t[sl], k=local, pi=per_image: f(z, tt, per_image=pi, sync_dist=True,
                                                                                   **k), x[sl])
                torch.testing.assert_close(out, ref, **close, msg=f"{what}: value")
                torch.testing.assert_close(g, g_ref[sl], **close, msg=f"{what}: gradient")
        none = fn(x[sl], t[sl], sync_dist=True, reduction="none")
        torch.testing.assert_close(none, fn(x, t, reduction="none"), **close)  # the whole batch's units
    # a composition: the shared softmax node and the gathered statistics together
    import lossforge as lf

    combo = lf.DiceLoss(per_image=False, sync_dist=True) + lf.CrossEntropyLoss()
    single = lf.DiceLoss(per_image=False) + lf.CrossEntropyLoss()
    out, g = _grads(lambda z: combo.terms(z, target[sl])["dice"], logits[sl])
    ref, g_ref = _grads(lambda z: single.terms(z, target)["dice"], logits)
    torch.testing.assert_close(out, ref, **close)
    torch.testing.assert_close(g, g_ref[sl], **close)


def _check_ddp_convention(rank):
    import lossforge as lf

    logits, target, *_ = _batch()
    x = logits.detach()
    sl = _slice(rank)
    torch.manual_seed(1)
    single = torch.nn.Conv2d(3, 3, 3, padding=1).double()
    net = torch.nn.Conv2d(3, 3, 3, padding=1).double()
    net.load_state_dict(single.state_dict())
    lf.DiceLoss(per_image=False)(single(x), target).backward()  # one process, the whole batch

    w = dist.get_world_size()
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    # DDP averages parameter gradients over the W ranks; with sync_dist every rank's loss is the whole
    # batch's, and its input gradient is the rank's slice of the whole gradient, so the loss is multiplied
    # by W to train exactly as one process on the whole batch.
    (lf.DiceLoss(per_image=False, sync_dist=True)(ddp(x[sl]), target[sl]) * w).backward()
    for (name, p), (_, q) in zip(net.named_parameters(), single.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-11, msg=f"DDP gradient of {name}")


@pytest.mark.slow
def test_sync_dist_two_gloo_processes():
    mp.spawn(_worker, args=(_free_port(),), nprocs=WORLD, join=True)
