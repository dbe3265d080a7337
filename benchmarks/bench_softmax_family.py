"""Softmax / index-target losses on materialised logits: lossforge vs torch's cross-entropy.

Forward + backward of each loss on float32 logits ``(N, C)`` with class-index targets, timed
interleaved with ``torch.nn.functional.cross_entropy`` in one process (median of the repeats), and
the peak extra memory of one forward + backward over the inputs, each case in a fresh process
(resident-set peak). Goals (docs/PERFORMANCE.md): focal and poly-1 at most 1.2x torch
cross-entropy's time and at most 1.1x the logits' size in extra memory, at 8192 x 32768.

    python -m benchmarks.bench_softmax_family            # 8192 x 32768 (1 GiB of logits)
    python -m benchmarks.bench_softmax_family --quick    # 1024 x 4096, a smoke test
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F

import lossforge.functional as LF

from ._harness import copy_bandwidth, environment, fwd_bwd, interleaved, mib, peak_extra_memory, table

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _eager_focal(x: torch.Tensor, t: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """The usual eager formula: log_softmax, gather, pow (the anchor libraries' shape)."""
    log_pt = F.log_softmax(x, 1).gather(1, t[:, None]).squeeze(1)
    return (-(1 - log_pt.exp()) ** gamma * log_pt).mean()


CASES: dict[str, Loss] = {
    "torch cross_entropy": lambda x, t: F.cross_entropy(x, t),
    "lossforge focal (gamma=2)": lambda x, t: LF.focal_loss(x, t, gamma=2.0),
    "lossforge focal (gamma=0.5, alpha)": lambda x, t: LF.focal_loss(x, t, gamma=0.5, alpha=0.25),
    "lossforge poly1": lambda x, t: LF.poly1_loss(x, t),
    "lossforge generalized_cross_entropy": lambda x, t: LF.generalized_cross_entropy_loss(x, t),
    "lossforge symmetric_cross_entropy": lambda x, t: LF.symmetric_cross_entropy_loss(x, t),
    "eager focal formula": _eager_focal,
}
BASELINE = "torch cross_entropy"
GOALS = {"lossforge focal (gamma=2)": (1.2, 1.1), "lossforge focal (gamma=0.5, alpha)": (1.2, 1.1),
         "lossforge poly1": (1.2, 1.1)}


def _inputs(n: int, c: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, generator=g).requires_grad_()
    t = torch.randint(c, (n,), generator=g)
    return x, t


def _memory_case(case: str, n: int, c: int) -> None:
    from ._harness import report_peak_extra

    x, t = _inputs(n, c)
    report_peak_extra(fwd_bwd(CASES[case], x, t))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1024 x 4096 logits, for a smoke test")
    parser.add_argument("--n", type=int, default=None, help="rows (default 8192, quick 1024)")
    parser.add_argument("--c", type=int, default=None, help="classes (default 32768, quick 4096)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip the fresh-process memory runs")
    parser.add_argument("--memory-case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n = args.n or (1024 if args.quick else 8192)
    c = args.c or (4096 if args.quick else 32768)
    if args.memory_case is not None:
        _memory_case(args.memory_case, n, c)
        return

    logits_bytes = n * c * 4
    print(f"# softmax family, logits {n} x {c} float32 ({mib(logits_bytes)}), forward + backward")
    print(f"# {environment()}")
    # memory first: a child's resident-set peak starts at its parent's size (Linux keeps ru_maxrss
    # across fork and exec), so the fresh processes must start before this one holds the logits
    memory: dict[str, int] = {}
    if not args.no_memory:
        for name in CASES:
            memory[name] = peak_extra_memory("benchmarks.bench_softmax_family", name, "--n", str(n), "--c", str(c))
    bw = copy_bandwidth()
    x, t = _inputs(n, c)
    steps = {name: fwd_bwd(fn, x, t) for name, fn in CASES.items()}
    times = interleaved(steps, repeats=args.repeats, warmup=1)
    base = times[BASELINE]
    rows = []
    for name in CASES:
        # ideal traffic of a fused pass: read the logits, write the gradient (8 bytes per element)
        frac = (8 * n * c / times[name]) / bw
        mem = memory.get(name)
        goal = GOALS.get(name)
        verdict = ""
        if goal is not None:
            ok_t = times[name] / base <= goal[0]
            ok_m = mem is None or mem / logits_bytes <= goal[1]
            verdict = "met" if ok_t and ok_m else "MISSED"
        rows.append([name, f"{times[name] * 1e3:.0f}", f"{times[name] / base:.2f}x",
                     f"{100 * frac:.0f}%", "-" if mem is None else mib(mem),
                     "-" if mem is None else f"{mem / logits_bytes:.2f}x", verdict])
    print(f"# copy bandwidth {bw / 1e9:.1f} GB/s (same run); median of {args.repeats}, interleaved")
    print(table(rows, ["loss", "ms", "time / torch CE", "of copy BW at 8 B/elt", "peak extra", "extra / logits",
                       "goal (<=1.2x time, <=1.1x memory)"]))


if __name__ == "__main__":
    main()
