"""Binary-family losses on 2^26 float32 elements: lossforge vs torch's BCE-with-logits, forward + backward.

All cases are timed interleaved in one process (A B C ... A B C, median of the repeats), together
with a copy-bandwidth probe ``dst.copy_(src)`` of the same size, so every number is a ratio measured
under the same conditions:

- ``vs torch bce``: time / time of ``torch.nn.functional.binary_cross_entropy_with_logits``
  (the goal for ``binary_focal_loss`` is <= 1.5);
- ``of copy bw``: achieved fraction of copy bandwidth at the minimum traffic of an elementwise loss,
  12 bytes per element (read logits and target, write the gradient).

Cases: torch's BCE-with-logits (the anchor), lossforge's ``binary_cross_entropy_with_logits``
(plain, and with a per-class ``pos_weight``), ``binary_focal_loss`` (gamma 2 with alpha 0.25, and
gamma 0.5), ``asymmetric_loss`` (fused closed-form kernel), torchvision's sigmoid focal formula and
the asymmetric loss's log-space formula run eagerly (torchvision itself is not needed), and
optionally ``torch.compile`` of those formulas.

    python -m benchmarks.bench_binary_family            # 2^26 elements
    python -m benchmarks.bench_binary_family --quick    # 2^20 elements, a smoke test

On the reference CPU VM a large part of every case's time is the first touch (page faults) of the
freshly allocated output and gradient buffers; ``THP_MEM_ALLOC_ENABLE=1`` (a PyTorch setting: 2 MiB
pages for large CPU allocations) cuts that cost about 4x for every case alike.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F

import lossforge.functional as LF

from ._harness import environment, fwd_bwd, interleaved, table

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def torchvision_focal(x: torch.Tensor, t: torch.Tensor, gamma: float = 2.0, alpha: float = 0.25) -> torch.Tensor:
    """torchvision.ops.sigmoid_focal_loss's formula (reduction="mean"), as an eager chain of operations."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * t + (1 - alpha) * (1 - t)
    return (alpha_t * loss).mean()


def asymmetric_formula(x: torch.Tensor, t: torch.Tensor, gamma_neg: float = 4.0, clip: float = 0.05) -> torch.Tensor:
    """The asymmetric loss (gamma_pos=0, reduction="mean") as an eager chain of log-space operations: what
    ``asymmetric_loss`` ran before its fused kernel."""
    pos = -F.logsigmoid(x)
    shifted = torch.sigmoid(x) - clip
    keep = shifted > torch.finfo(x.dtype).tiny
    pm = torch.where(keep, shifted, torch.full_like(shifted, 0.5))
    neg = torch.where(keep, -torch.log1p(-pm) * pm.pow(gamma_neg), torch.zeros_like(pm))
    return (t * pos + (1 - t) * neg).mean()


def _cases(classes: int, *, eager_focal: bool, compiled: bool) -> dict[str, Loss]:
    pos_weight = torch.linspace(0.5, 4.0, classes)
    cases: dict[str, Loss] = {
        "torch bce_with_logits": F.binary_cross_entropy_with_logits,
        "lossforge bce_with_logits": LF.binary_cross_entropy_with_logits,
        "lossforge bce, pos_weight (C,)": lambda x, t: LF.binary_cross_entropy_with_logits(x, t, pos_weight=pos_weight),
        "torch bce, pos_weight (C,)": lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=pos_weight),
        "lossforge binary_focal (gamma 2, alpha 0.25)": LF.binary_focal_loss,
        "lossforge binary_focal (gamma 0.5)": lambda x, t: LF.binary_focal_loss(x, t, gamma=0.5),
        "lossforge asymmetric": LF.asymmetric_loss,
    }
    if eager_focal:
        cases["torchvision focal formula, eager"] = torchvision_focal
        cases["asymmetric formula, eager"] = asymmetric_formula
    if compiled:
        cases["torchvision focal formula, torch.compile"] = torch.compile(torchvision_focal, fullgraph=True)
        cases["asymmetric formula, torch.compile"] = torch.compile(asymmetric_formula, fullgraph=True)
    return cases


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2^20 elements and 3 repeats")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--classes", type=int, default=64, help="last dimension (pos_weight has one per class)")
    parser.add_argument("--no-eager-focal", action="store_true", help="skip torchvision's formula and the asymmetric "
                        "formula run eagerly (each needs ~2.5 GiB of temporaries at 2^26)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of those formulas")
    args = parser.parse_args(argv)
    numel = 1 << (20 if args.quick else 26)
    repeats = 3 if args.quick else max(args.repeats, 5)
    torch.manual_seed(0)
    shape = (numel // args.classes, args.classes)
    logits = torch.randn(shape, requires_grad=True)
    target = (torch.rand(shape) > 0.5).float()
    src, dst = torch.randn(numel), torch.empty(numel)

    steps = {"copy probe": lambda: dst.copy_(src)}
    for name, fn in _cases(args.classes, eager_focal=not args.no_eager_focal, compiled=args.compile).items():
        steps[name] = fwd_bwd(fn, logits, target)
    times = interleaved(steps, repeats=repeats)

    bandwidth = 2 * 4 * numel / times.pop("copy probe")
    anchor = times["torch bce_with_logits"]
    rows = [[name, f"{t * 1e3:.1f}", f"{t / anchor:.2f}", f"{12 * numel / t / bandwidth:.1%}"]
            for name, t in times.items()]
    out = (f"binary family, {numel} float32 elements {shape}, forward + backward, median of {repeats} interleaved "
           f"repeats; {environment()}; copy bandwidth {bandwidth / 1e9:.1f} GB/s in the same run\n\n"
           + table(rows, ["case", "ms", "vs torch bce", "of copy bw (12 B/element)"]))
    print(out)
    return out


if __name__ == "__main__":
    main()
