"""Elementwise regression losses on 2^26 float32 elements: lossforge vs torch vs torch.compile.

For each loss: forward + backward time of lossforge's function, of torch's own loss where torch has
one, and of ``torch.compile`` applied to the loss's plain eager formula, all interleaved in one run;
plus the achieved fraction of copy bandwidth (12 bytes per element at least: read pred and target,
write the gradient) against a copy probe of the same run.

    python -m benchmarks.bench_elementwise            # 2^26 elements
    python -m benchmarks.bench_elementwise --quick    # 2^20 elements, for a smoke test
    python -m benchmarks.bench_elementwise --threads 1  # one thread: less exposed to a busy machine
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

import lossforge.functional as LF

from ._harness import copy_bandwidth, environment, fwd_bwd, interleaved, table

LOG2 = math.log(2.0)

# name -> (lossforge function, torch's own loss or None, the plain eager formula)
Formula = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _cases() -> dict[str, tuple[Callable[..., torch.Tensor], Formula | None, Formula]]:
    cases: dict[str, tuple[Callable[..., torch.Tensor], Formula | None, Formula]] = {
        "mse": (LF.mse_loss, F.mse_loss, lambda p, t: ((p - t) ** 2).mean()),
    }
    optional: dict[str, tuple[str, Formula | None, Formula]] = {
        "l1": ("l1_loss", F.l1_loss, lambda p, t: (p - t).abs().mean()),
        "huber": ("huber_loss", F.huber_loss,
                  lambda p, t: torch.where((p - t).abs() < 1, 0.5 * (p - t) ** 2, (p - t).abs() - 0.5).mean()),
        "smooth_l1": ("smooth_l1_loss", F.smooth_l1_loss,
                      lambda p, t: torch.where((p - t).abs() < 1, 0.5 * (p - t) ** 2, (p - t).abs() - 0.5).mean()),
        "log_cosh": ("log_cosh_loss", None,
                     lambda p, t: ((p - t).abs() + F.softplus(-2 * (p - t).abs()) - LOG2).mean()),
        "charbonnier": ("charbonnier_loss", None, lambda p, t: torch.sqrt((p - t) ** 2 + 1e-6).mean()),
        "cauchy": ("cauchy_loss", None, lambda p, t: torch.log1p(0.5 * (p - t) ** 2).mean()),
        "welsch": ("welsch_loss", None, lambda p, t: (1 - torch.exp(-0.5 * (p - t) ** 2)).mean()),
        "geman_mcclure": ("geman_mcclure_loss", None,
                          lambda p, t: (2 * (p - t) ** 2 / ((p - t) ** 2 + 4)).mean()),
        "tukey_biweight": ("tukey_biweight_loss", None,
                           lambda p, t: (4.685 ** 2 / 6 * (1 - (1 - ((p - t) / 4.685).clamp(-1, 1) ** 2) ** 3)).mean()),
        "wing": ("wing_loss", None,
                 lambda p, t: torch.where((p - t).abs() < 10, 10 * torch.log1p((p - t).abs() / 2),
                                          (p - t).abs() - (10 - 10 * math.log1p(5.0))).mean()),
    }
    for name, (fn_name, ref, formula) in optional.items():
        fn = getattr(LF, fn_name, None)
        if fn is not None:
            cases[name] = (fn, ref, formula)
    return cases


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", default="", help="comma-separated loss names")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: leave as is)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    numel = 1 << (20 if args.quick else 26)
    torch.manual_seed(0)
    pred = torch.randn(numel, requires_grad=True)
    target = torch.randn(numel)
    bandwidth = copy_bandwidth(numel)
    rows = []
    wanted = set(args.only.split(",")) if args.only else None
    for name, (fn, ref, formula) in _cases().items():
        if wanted and name not in wanted:
            continue
        steps = {"lossforge": fwd_bwd(fn, pred, target)}
        if ref is not None:
            steps["torch"] = fwd_bwd(ref, pred, target)
        if not args.no_compile:
            steps["compiled"] = fwd_bwd(torch.compile(formula, fullgraph=True), pred, target)
        t = interleaved(steps, repeats=args.repeats)
        frac = 12 * numel / t["lossforge"] / bandwidth
        rows.append([
            name,
            f"{t['lossforge'] * 1e3:.1f}",
            f"{t['torch'] / t['lossforge']:.2f}" if "torch" in t else "-",
            f"{t['lossforge'] / t['compiled']:.2f}" if "compiled" in t else "-",
            f"{frac:.0%}",
        ])
    out = (f"elementwise losses, {numel} float32 elements, forward+backward; {environment()}; "
           f"copy bandwidth {bandwidth / 1e9:.1f} GB/s\n\n"
           + table(rows, ["loss", "lossforge ms", "torch / lossforge", "lossforge / compiled", "of copy bw"]))
    print(out)
    return out


if __name__ == "__main__":
    main()
