"""Issue 6 workloads: SSIM against L1, box losses against torchvision's formula, MMD and sliced
Wasserstein memory scaling. Every number is a ratio measured in one run (cases interleaved A B A B).

- SSIM / MS-SSIM, 4x3x512x512 float32, 11x11 window, forward + backward: time relative to torch's
  ``l1_loss`` on the same tensors, next to pytorch-msssim, kornia and MONAI where installed; peak
  extra memory of the call (a fresh process per case, resident-set growth) relative to the size
  of one input image tensor (the gradient it returns is part of the extra).
- Box losses, 100k boxes, forward + backward: relative to an eager reimplementation of
  torchvision's ``generalized/distance/complete_box_iou_loss`` formulas (torchvision is not
  installable here: its build needs another torch), written in this file from the documented
  formulas (``eps = 1e-7``, CIoU's alpha under ``no_grad``, mean reduction).
- MMD and sliced Wasserstein: peak extra memory (fresh process) and time at n, 2n, 4n points;
  MMD's memory is O(n^2), sliced Wasserstein's O(K n) (time O(K n log n)).

    python -m benchmarks.bench_issue6             # full sizes
    python -m benchmarks.bench_issue6 --quick     # small sizes, a smoke test
    python -m benchmarks.bench_issue6 --threads 2

Memory is measured in a child process per case, with glibc told to hand freed memory back at once
(``MALLOC_MMAP_THRESHOLD_=65536``, ``MALLOC_TRIM_THRESHOLD_=0``) and freed memory trimmed before the
measured call, so the resident-set peak follows live memory, not allocator caching.

``--threads`` defaults to 1: the machines this is run on are shared, and with more OpenMP threads
than free cores every parallel region waits on descheduled threads, which penalises
implementations with many small kernels (a strip-wise SSIM) far more than one big kernel (L1).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F

import lossforge.functional as LF

from ._harness import environment, fwd_bwd, interleaved, mib, peak_extra_memory, report_peak_extra, table

MODULE = "benchmarks.bench_issue6"


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


# ------------------------------------------------------------------------------------------- SSIM


def _images(shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """A target and a noisy prediction, made without temporaries of the input's size (freed
    temporaries would stay resident and hide part of the peak of the measured call)."""
    g = torch.Generator().manual_seed(0)
    y = torch.rand(shape, generator=g)
    x = torch.rand(shape, generator=g).mul_(0.2).add_(y, alpha=0.8).requires_grad_(True)
    return x, y


def _release_free_memory() -> None:
    """Hand freed heap memory back to the OS (glibc), so the resident set before the measured step
    holds only live data."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _ssim_cases() -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    cases: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "torch l1_loss": F.l1_loss,
        "lossforge ssim_loss": lambda a, b: LF.ssim_loss(a, b),
    }
    if _installed("pytorch_msssim"):
        import pytorch_msssim

        cases["pytorch-msssim 1 - ssim"] = lambda a, b: 1 - pytorch_msssim.ssim(a, b, data_range=1.0)
    if _installed("kornia"):
        import kornia

        cases["kornia ssim_loss (valid)"] = lambda a, b: kornia.losses.ssim_loss(a, b, 11, padding="valid")
    if _installed("monai"):
        from monai.losses import SSIMLoss

        monai_ssim = SSIMLoss(spatial_dims=2, data_range=1.0, win_size=11)
        cases["MONAI SSIMLoss"] = lambda a, b: monai_ssim(a, b)
    return cases


def _ms_ssim_cases() -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    cases: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "torch l1_loss": F.l1_loss,
        "lossforge ms_ssim_loss": lambda a, b: LF.ms_ssim_loss(a, b),
    }
    if _installed("pytorch_msssim"):
        import pytorch_msssim

        cases["pytorch-msssim 1 - ms_ssim"] = lambda a, b: 1 - pytorch_msssim.ms_ssim(a, b, data_range=1.0)
    return cases


def bench_ssim(shape: tuple[int, ...], repeats: int, threads: int, ms: bool = False) -> str:
    x, y = _images(shape)
    cases = _ms_ssim_cases() if ms else _ssim_cases()
    times = interleaved({k: fwd_bwd(fn, x, y) for k, fn in cases.items()}, repeats=repeats, warmup=1)
    base = times["torch l1_loss"]
    in_bytes = x.numel() * x.element_size()
    rows = []
    for name in cases:
        case = ("ms_ssim:" if ms else "ssim:") + name
        try:
            extra = peak_extra_memory(MODULE, case, "x".join(map(str, shape)), str(threads))
            mem = f"{mib(extra)} ({extra / in_bytes:.2f}x)"
        except Exception as exc:  # a reference library failing in the child process is reported, not fatal
            mem = f"n/a ({type(exc).__name__})"
        rows.append([name, f"{times[name] * 1e3:.0f}", f"{times[name] / base:.2f}x", mem])
    title = "MS-SSIM" if ms else "SSIM"
    return (f"### {title}, {'x'.join(map(str, shape))} float32, 11x11 window, forward + backward\n\n"
            + table(rows, ["implementation", "ms", "time vs L1", "peak extra (vs one input)"])
            + f"\n\nOne input image tensor: {mib(in_bytes)}; goal: time <= 5x L1, peak extra <= 2x input.\n")


# -------------------------------------------------------------------------------------------- boxes


def _tv_inter_union(b: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x1, y1, x2, y2 = b.unbind(-1)
    X1, Y1, X2, Y2 = t.unbind(-1)
    inter = (torch.min(x2, X2) - torch.max(x1, X1)).clamp(min=0) * (torch.min(y2, Y2) - torch.max(y1, Y1)).clamp(min=0)
    union = (x2 - x1) * (y2 - y1) + (X2 - X1) * (Y2 - Y1) - inter
    return inter, union


def tv_giou(b: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    inter, union = _tv_inter_union(b, t)
    iou = inter / (union + eps)
    area = (torch.max(b[:, 2], t[:, 2]) - torch.min(b[:, 0], t[:, 0])) * (
        torch.max(b[:, 3], t[:, 3]) - torch.min(b[:, 1], t[:, 1]))
    return (1 - (iou - (area - union) / (area + eps))).mean()


def _tv_diou_terms(b: torch.Tensor, t: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    inter, union = _tv_inter_union(b, t)
    iou = inter / (union + eps)
    cw = torch.max(b[:, 2], t[:, 2]) - torch.min(b[:, 0], t[:, 0])
    ch = torch.max(b[:, 3], t[:, 3]) - torch.min(b[:, 1], t[:, 1])
    dx = (b[:, 0] + b[:, 2]) / 2 - (t[:, 0] + t[:, 2]) / 2
    dy = (b[:, 1] + b[:, 3]) / 2 - (t[:, 1] + t[:, 3]) / 2
    return iou, (dx**2 + dy**2) / (cw**2 + ch**2 + eps)


def tv_diou(b: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    iou, dist = _tv_diou_terms(b, t, eps)
    return (1 - iou + dist).mean()


def tv_ciou(b: torch.Tensor, t: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    iou, dist = _tv_diou_terms(b, t, eps)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    W, H = t[:, 2] - t[:, 0], t[:, 3] - t[:, 1]
    v = (4 / math.pi**2) * (torch.atan(W / H) - torch.atan(w / h)) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return (1 - iou + dist + alpha * v).mean()


def bench_boxes(n: int, repeats: int) -> str:
    g = torch.Generator().manual_seed(0)
    lo = torch.rand(n, 2, generator=g) * 100
    boxes = torch.cat([lo, lo + torch.rand(n, 2, generator=g) * 50 + 1], 1).requires_grad_(True)
    t_lo = lo + torch.randn(n, 2, generator=g) * 5
    target = torch.cat([t_lo, t_lo + torch.rand(n, 2, generator=g) * 50 + 1], 1)
    ours = {"giou": LF.giou_loss, "diou": LF.diou_loss, "ciou": LF.ciou_loss, "iou": LF.iou_loss,
            "eiou": LF.eiou_loss, "siou": LF.siou_loss}
    anchors = {"giou": tv_giou, "diou": tv_diou, "ciou": tv_ciou}
    steps = {f"lossforge {k}": fwd_bwd(fn, boxes, target) for k, fn in ours.items()}
    steps.update({f"torchvision-formula {k}": fwd_bwd(fn, boxes, target) for k, fn in anchors.items()})
    times = interleaved(steps, repeats=repeats, warmup=2)
    rows = []
    for k in ours:
        mine = times[f"lossforge {k}"]
        anchor = times.get(f"torchvision-formula {k}")
        ref = anchor if anchor is not None else times["torchvision-formula giou"]
        label = "torchvision formula" if anchor is not None else "torchvision giou formula (no anchor)"
        rows.append([k, f"{mine * 1e3:.2f}", f"{ref * 1e3:.2f}", label, f"{mine / ref:.2f}x"])
    return (f"### Box losses, {n} boxes float32, forward + backward (mean)\n\n"
            + table(rows, ["loss", "lossforge ms", "anchor ms", "anchor", "ratio (<= 1.0 goal)"])
            + "\n\nThe anchor is an eager reimplementation of torchvision's formulas (torchvision is not "
              "installable here).\n")


# ------------------------------------------------------------------------------------ MMD / sliced W


def _points(n: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, d, generator=g).requires_grad_(True), torch.randn(n, d, generator=g) + 0.5


def _set_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if name == "mmd":
        return lambda a, b: LF.mmd_loss(a, b, bandwidths=(0.5, 1.0, 2.0))
    return lambda a, b: LF.sliced_wasserstein_loss(a, b, num_projections=50, seed=0)


def bench_sets(sizes: dict[str, list[int]], d: int, repeats: int, threads: int) -> str:
    rows = []
    for name, ns in sizes.items():
        base_time = None
        for n in ns:
            x, y = _points(n, d)
            t = interleaved({"step": fwd_bwd(_set_loss(name), x, y)}, repeats=repeats, warmup=1)["step"]
            mem = peak_extra_memory(MODULE, f"set:{name}", str(n), str(threads), str(d))
            base_time = base_time or t
            rows.append([name, str(n), f"{t * 1e3:.1f}", f"{t / base_time:.2f}x", mib(mem),
                         f"{mem / n / 1024:.1f}"])
    return (f"### MMD and sliced Wasserstein, N = M points in {d} dimensions, forward + backward\n\n"
            + table(rows, ["loss", "n", "ms", "time vs smallest n", "peak extra", "KiB per point"])
            + "\n\nMMD (3 bandwidths) is O(n^2) in memory: the bytes per point double with n (one kernel block at "
              "a time, recomputed in the backward pass). Sliced Wasserstein (50 projections) is O(K n): a "
              "constant number of bytes per point; its time is O(K n log n).\n")


# ------------------------------------------------------------------------------------- memory cases


def _memory_case(case: str, args: list[str]) -> None:
    kind, _, name = case.partition(":")
    torch.set_num_threads(int(args[1]))
    if kind in ("ssim", "ms_ssim"):
        shape = tuple(int(s) for s in args[0].split("x"))
        cases = _ms_ssim_cases() if kind == "ms_ssim" else _ssim_cases()
        fn = cases[name]
        small = _images((1, shape[1], 192, 192))
        fwd_bwd(fn, *small)()  # load kernels and libraries before the baseline
        x, y = _images(shape)
        _release_free_memory()
        report_peak_extra(fwd_bwd(fn, x, y))
    elif kind == "set":
        n, d = int(args[0]), int(args[2])
        fn = _set_loss(name)
        fwd_bwd(fn, *_points(16, d))()
        points = _points(n, d)
        _release_free_memory()
        report_peak_extra(fwd_bwd(fn, *points))
    else:
        raise SystemExit(f"unknown memory case {case!r}")


def main(argv: list[str] | None = None) -> str:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--memory-case"]:
        _memory_case(argv[1], argv[2:])
        return ""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated: ssim, ms_ssim, boxes, sets")
    args = parser.parse_args(argv)
    # The memory cases run in child processes: make glibc return freed memory at once (no dynamic
    # mmap threshold, no trim threshold), so their resident-set peak tracks live memory rather than
    # allocator caching. The same for every implementation measured.
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")
    os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "0")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    wanted = set(args.only.split(",")) if args.only else {"ssim", "ms_ssim", "boxes", "sets"}
    image = (1, 3, 256, 256) if args.quick else (4, 3, 512, 512)
    parts = [f"Environment: {environment()}; repeats {args.repeats}, medians.\n"]
    if "ssim" in wanted:
        parts.append(bench_ssim(image, args.repeats, args.threads))
    if "ms_ssim" in wanted:
        parts.append(bench_ssim(image, args.repeats, args.threads, ms=True))
    if "boxes" in wanted:
        parts.append(bench_boxes(10_000 if args.quick else 100_000, max(args.repeats, 7)))
    if "sets" in wanted:
        sizes = ({"mmd": [250, 500, 1000], "sliced_wasserstein": [1000, 4000, 16000]} if args.quick
                 else {"mmd": [1000, 2000, 4000], "sliced_wasserstein": [4000, 16000, 64000]})
        parts.append(bench_sets(sizes, 16, args.repeats, args.threads))
    out = "\n".join(parts)
    print(out)
    return out


if __name__ == "__main__":
    main()
