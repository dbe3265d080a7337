"""Shared measuring tools: interleaved timing, copy-bandwidth probe, peak extra memory in a fresh process.

CPU machines here are shared and noisy, so every number reported is a *ratio* between
implementations timed alternately (A B A B ...) in one process, or against a probe measured
in the same run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

Step = Callable[[], object]


def interleaved(cases: dict[str, Step], *, repeats: int = 7, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each case, running the cases alternately so drift hits all of them alike."""
    for _ in range(warmup):
        for step in cases.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, step in cases.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def fwd_bwd(loss_fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> Step:
    """A step that runs forward and backward, clearing the gradients first."""
    grads = [x for x in inputs if x.requires_grad]

    def step() -> None:
        for x in grads:
            x.grad = None
        loss_fn(*inputs).backward()

    return step


def copy_bandwidth(numel: int = 1 << 25, repeats: int = 7) -> float:
    """Bytes per second of ``dst.copy_(src)`` (read + write) on float32, median of repeats."""
    src = torch.randn(numel)
    dst = torch.empty_like(src)
    t = interleaved({"copy": lambda: dst.copy_(src)}, repeats=repeats)["copy"]
    return 2 * 4 * numel / t


def sgemm_flops(n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of a float32 n x n matrix product."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    t = interleaved({"mm": lambda: a @ b}, repeats=repeats)["mm"]
    return 2 * n**3 / t


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def peak_extra_memory(module: str, case: str, *args: str) -> int:
    """Run ``python -m <module> --memory-case <case> ...`` in a fresh process; it prints a JSON line
    ``{"peak_extra": bytes}`` (use :func:`report_peak_extra`)."""
    out = subprocess.run([sys.executable, "-m", module, "--memory-case", case, *args],
                         capture_output=True, text=True, check=True).stdout
    return int(json.loads(out.strip().splitlines()[-1])["peak_extra"])


def report_peak_extra(step: Step) -> None:
    """Inside the fresh process, inputs already allocated: run the step once and print the growth of the
    resident set's high-water mark over the resident set before the step (Linux: the mark is reset through
    /proc/self/clear_refs, so what the process did before does not count)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kib("VmRSS")
    step()
    peak = _status_kib("VmHWM")
    print(json.dumps({"peak_extra": max(peak - base, 0) * 1024}))


def mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.0f} MiB"


def table(rows: list[list[str]], header: list[str]) -> str:
    """A GitHub-flavoured markdown table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def environment() -> str:
    import platform

    return (f"torch {torch.__version__}, Python {platform.python_version()}, {platform.machine()}, "
            f"{torch.get_num_threads()} threads")
