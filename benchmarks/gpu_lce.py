"""Linear + cross-entropy on a GPU: one script, under five minutes, for a machine with CUDA.

Prints the device, the versions, a copy-bandwidth probe and a bf16 GEMM probe, then the time
(forward + backward, median of the repeats, implementations interleaved) and the peak extra
memory (``torch.cuda.max_memory_allocated`` over the inputs) of each implementation at the Gemma 2
head shape, 8192 tokens x 2304 hidden x 256000 vocabulary in bfloat16:

- naive ``F.cross_entropy(hidden @ weight.T, target)`` (logits in bf16, loss upcast by torch);
- ``torch.compile`` of the naive function;
- torch's ``F.linear_cross_entropy`` with its chunked option (torch >= 2.13);
- lossforge ``linear_cross_entropy``;
- cut-cross-entropy (``impl="cce"``) and Liger-Kernel's fused linear cross-entropy when importable.

The gradients dX + dW alone are the memory lower bound (the goal in design/PERFORMANCE.md:
lossforge within 1.1x of Cut Cross-Entropy's time at <= 1.05x that bound).

    python -m benchmarks.gpu_lce                        # the Gemma 2 head shape on cuda
    python -m benchmarks.gpu_lce --shape 4096,2048,131072
    python -m benchmarks.gpu_lce --device cpu --quick   # a smoke test of the script itself
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import lossforge
import lossforge.functional as LF

Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

GEMMA2 = (8192, 2304, 256000)
QUICK = (256, 64, 2048)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def copy_bandwidth(device: torch.device, mib: int) -> float:
    """GB/s of a device-to-device copy (read + write counted), best of 5."""
    src = torch.empty(mib * 2**20 // 4, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    best = min(_timed(lambda: dst.copy_(src), device) for _ in range(5))
    return 2 * src.numel() * 4 / best / 1e9


def gemm_tflops(device: torch.device, dtype: torch.dtype, size: int) -> float:
    """TFLOP/s of one square matrix product, best of 5."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    best = min(_timed(lambda: a @ b, device) for _ in range(5))
    return 2 * size**3 / best / 1e12


def _cases(device: torch.device) -> dict[str, Loss]:
    def naive(h: torch.Tensor, w: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(h @ w.T, y)

    cases: dict[str, Loss] = {"naive F.cross_entropy(h @ W.T, y)": naive}
    if device.type == "cuda":  # the CPU smoke test skips compiling (minutes of C++ on a small machine)
        cases["torch.compile(naive)"] = torch.compile(naive)
    if hasattr(torch.nn, "LinearCrossEntropyOptions"):
        options = torch.nn.LinearCrossEntropyOptions()
        cases["torch F.linear_cross_entropy (chunked)"] = (
            lambda h, w, y: F.linear_cross_entropy(h, w, y, options=options))
    cases["lossforge linear_cross_entropy"] = lambda h, w, y: LF.linear_cross_entropy(h, w, y)
    if device.type == "cuda" and importlib.util.find_spec("cut_cross_entropy") is not None:
        from cut_cross_entropy import linear_cross_entropy as cce  # optional anchor

        cases["cut-cross-entropy (cce)"] = lambda h, w, y: cce(h, w, y, impl="cce")
    if device.type == "cuda" and importlib.util.find_spec("liger_kernel") is not None:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss  # optional anchor

        liger = LigerFusedLinearCrossEntropyLoss()
        cases["Liger fused linear CE"] = lambda h, w, y: liger(w, h, y)
    return cases


def _inputs(shape: tuple[int, int, int], device: torch.device, dtype: torch.dtype
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n, d, v = shape
    g = torch.Generator(device=device).manual_seed(0)
    h = torch.randn(n, d, device=device, dtype=dtype, generator=g).requires_grad_()
    w = (torch.randn(v, d, device=device, dtype=dtype, generator=g) / d**0.5).requires_grad_()
    y = torch.randint(v, (n,), device=device, generator=g)
    return h, w, y


def _step(fn: Loss, h: torch.Tensor, w: torch.Tensor, y: torch.Tensor) -> float:
    h.grad = w.grad = None
    loss = fn(h, w, y)
    loss.backward()
    return float(loss.detach())


def _peak_extra(fn: Loss, h: torch.Tensor, w: torch.Tensor, y: torch.Tensor, device: torch.device) -> int | None:
    if device.type != "cuda":
        return None
    h.grad = w.grad = None
    _sync(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    _step(fn, h, w, y)
    _sync(device)
    return torch.cuda.max_memory_allocated(device) - base


def run(shape: tuple[int, int, int], device: torch.device, dtype: torch.dtype, repeats: int) -> list[str]:
    """The report's lines: environment, probes, and one row per implementation."""
    lines = [
        f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or 'cpu'}",
        f"torch {torch.__version__}, lossforge {lossforge.__version__}, Python {platform.python_version()}, "
        f"CUDA {torch.version.cuda}",
        f"copy bandwidth: {copy_bandwidth(device, 1024 if device.type == 'cuda' else 64):.0f} GB/s",
        f"{str(dtype).removeprefix('torch.')} GEMM: "
        f"{gemm_tflops(device, dtype, 8192 if device.type == 'cuda' else 512) * 1e3:.0f} GFLOP/s",
    ]
    n, d, v = shape
    h, w, y = _inputs(shape, device, dtype)
    grads = (n * d + v * d) * h.element_size()
    lines.append(f"shape {n} x {d} x {v} {str(dtype).removeprefix('torch.')}; "
                 f"gradients dX + dW = {grads / 2**20:.0f} MiB (the memory lower bound)")
    cases = _cases(device)
    values: dict[str, float] = {}
    peaks: dict[str, int | None] = {}
    for name, fn in cases.items():  # warm-up (and compilation), value, memory
        values[name] = _step(fn, h, w, y)
        peaks[name] = _peak_extra(fn, h, w, y, device)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            times[name].append(_timed(lambda fn=fn: _step(fn, h, w, y), device))  # type: ignore[misc]
    naive = statistics.median(times[next(iter(cases))])
    lines.append(f"{'implementation':42} {'ms':>9} {'/ naive':>8} {'peak extra MiB':>15} {'/ grads':>8} {'loss':>10}")
    for name in cases:
        t = statistics.median(times[name])
        peak = peaks[name]
        shown = ("-", "-") if peak is None else (f"{peak / 2**20:.0f}", f"{peak / grads:.2f}")
        lines.append(f"{name:42} {t * 1e3:9.1f} {t / naive:8.2f} {shown[0]:>15} {shown[1]:>8} {values[name]:10.5f}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a smoke test)")
    parser.add_argument("--shape", help="N,D,V (default: the Gemma 2 head, 8192,2304,256000)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help=f"the small shape {QUICK}")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_lce: no CUDA device here; run it on a GPU machine, or pass --device cpu --quick "
                         "to smoke-test the script")
    shape = QUICK if args.quick else tuple(int(s) for s in args.shape.split(",")) if args.shape else GEMMA2
    if len(shape) != 3:
        raise SystemExit(f"gpu_lce: --shape must be N,D,V, got {args.shape!r}")
    dtype = getattr(torch, args.dtype)
    for line in run(shape, device, dtype, args.repeats):  # type: ignore[arg-type]
        print(line, flush=True)


if __name__ == "__main__":
    main()
