"""Metric-learning losses against pytorch-metric-learning (PML): NT-Xent and triplet mining on CPU.

Forward + backward, float32, d = 128. Every speed number is a ratio measured in one process with
the implementations interleaved; memory is the peak resident-set growth of one call in a fresh
process. PML's NT-Xent at n = 256 takes ~16 s and ~13 GiB, so it runs once, in a fresh process with
a timeout, between two lossforge measurements in that same process.

    python -m benchmarks.bench_metric            # the issue's sizes
    python -m benchmarks.bench_metric --quick    # small sizes, no PML run at n = 256
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

import lossforge.functional as LF
from lossforge.losses._metric_ops import label_masks, safe_normalize, softmax_pair_terms_reference

from ._harness import environment, interleaved, mib, report_peak_extra, table

D = 128
TEMPERATURE = 0.07
MARGIN = 0.2
GiB = 2**30


def _pml():
    try:
        from pytorch_metric_learning import losses, miners
    except ImportError:
        return None
    return losses, miners


def half_shared_labels(n: int) -> torch.Tensor:
    """PML issue #203's layout: half the batch shares one label, the rest come in pairs."""
    half = n // 2
    pairs = torch.arange(1, (n - half) // 2 + 1).repeat(2)
    t = torch.cat([torch.zeros(half, dtype=torch.long), pairs])
    return t[torch.randperm(n, generator=torch.Generator().manual_seed(1))]


def pk_labels(n: int, k: int = 4) -> torch.Tensor:
    """P x K sampling: n / k classes with k samples each (the usual triplet batch)."""
    return torch.arange(n // k).repeat_interleave(k)


def embeddings(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed)).requires_grad_(True)


def step(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """Forward + backward; returns the loss (the gradient is left in ``x.grad``)."""

    def run() -> torch.Tensor:
        x.grad = None
        out = fn(x)
        out.backward()
        return out.detach()

    return run


def naive_ntxent(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The same loss through plain autograd (no fused backward), for the memory comparison."""
    xn = safe_normalize(x)
    pos, neg = label_masks(t)
    u = softmax_pair_terms_reference(xn, xn, pos, neg, 1.0 / TEMPERATURE, "pairs")
    return u.sum() / pos.sum()


def _lf_case(case: str, n: int) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    if case.startswith("triplet"):
        mining = case.split(":", 1)[1]
        t = pk_labels(n)
        return (lambda e: LF.triplet_loss(e, t, margin=MARGIN, mining=mining, normalize=True,
                                          average_nonzero=True)), t
    t = half_shared_labels(n)
    if case == "ntxent":
        return (lambda e: LF.ntxent_loss(e, t, temperature=TEMPERATURE)), t
    if case == "ntxent-naive":
        return (lambda e: naive_ntxent(e, t)), t
    if case == "supcon":
        return (lambda e: LF.supcon_loss(e, t, temperature=TEMPERATURE)), t
    if case == "info_nce":
        keys = torch.randn(n, D, generator=torch.Generator().manual_seed(9))
        return (lambda e: LF.info_nce_loss(e, keys, temperature=TEMPERATURE)), t
    raise ValueError(f"unknown case {case!r}")


# ------------------------------------------------------------------------------ fresh-process measurements

def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def peak_of(run: Callable[[], object]) -> tuple[object, int]:
    """Run once; the growth of the resident set's high-water mark over the resident set before (Linux:
    the mark is reset through /proc/self/clear_refs first, as the harness does)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_kib("VmRSS")
    out = run()
    return out, max(_status_kib("VmHWM") - base, 0) * 1024


def memory_case(case: str, n: int) -> None:
    """In a fresh process: warm the kernels up on a tiny batch, then one call at size n."""
    fn, _ = _lf_case(case, 16)
    step(fn, embeddings(16))()
    fn, _ = _lf_case(case, n)
    report_peak_extra(step(fn, embeddings(n)))


def pml_ntxent_case(n: int, repeats: int) -> None:
    """In a fresh process: lossforge (median of ``repeats``), PML once, lossforge again; value and
    gradient differences; PML's peak resident-set growth."""
    losses, _ = _pml()
    t = half_shared_labels(n)
    x = embeddings(n)
    ours = step(lambda e: LF.ntxent_loss(e, t, temperature=TEMPERATURE), x)
    times = []
    for _ in range(2):
        ours()
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = ours()
        times.append(time.perf_counter() - t0)
    grad = x.grad.clone()
    theirs = step(lambda e: losses.NTXentLoss(temperature=TEMPERATURE)(e, t), x)
    t0 = time.perf_counter()
    pml_value, pml_peak = peak_of(theirs)
    pml_time = time.perf_counter() - t0
    pml_grad = x.grad.clone()
    for _ in range(repeats):
        t0 = time.perf_counter()
        ours()
        times.append(time.perf_counter() - t0)
    print(json.dumps({
        "ours": statistics.median(times), "pml": pml_time, "pml_peak": pml_peak,
        "dvalue": abs(float(value) - float(pml_value)),  # type: ignore[arg-type]
        "rel_dvalue": abs(float(value) / float(pml_value) - 1),  # type: ignore[arg-type]
        "dgrad": float((grad - pml_grad).abs().max()), "grad_scale": float(pml_grad.abs().max()),
    }))


def _fresh(args: list[str], timeout: float) -> dict[str, float] | str:
    try:
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_metric", *args], capture_output=True, text=True,
                             timeout=timeout, cwd=Path(__file__).resolve().parents[1])
    except subprocess.TimeoutExpired:
        return f"did not finish in {timeout:.0f} s"
    if out.returncode != 0:
        reason = "killed (out of memory?)" if out.returncode < 0 else out.stderr.strip().splitlines()[-1:]
        return f"failed: {reason}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak(case: str, n: int) -> str:
    result = _fresh(["--memory-case", case, "--n", str(n), "--threads", str(torch.get_num_threads())], timeout=600)
    return result if isinstance(result, str) else mib(result["peak_extra"])


# --------------------------------------------------------------------------------------------- the run

def _compare(ours: Callable[[], torch.Tensor], theirs: Callable[[], torch.Tensor], x: torch.Tensor) -> tuple[str, str]:
    a = ours()
    ga = x.grad.clone()
    b = theirs()
    gb = x.grad.clone()
    rel = abs(float(a) / float(b) - 1) if float(b) != 0 else abs(float(a))
    return f"{rel:.1e}", f"{float((ga - gb).abs().max()) / max(float(gb.abs().max()), 1e-30):.1e}"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory-case", default="")
    parser.add_argument("--pml-ntxent", action="store_true")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_case:
        memory_case(args.memory_case, args.n)
        return ""
    if args.pml_ntxent:
        pml_ntxent_case(args.n, args.repeats)
        return ""

    pml = _pml()
    rows: list[list[str]] = []
    notes: list[str] = []
    header = ["workload", "n", "lossforge ms", "PML ms", "PML / lossforge", "rel. diff loss", "rel. diff grad",
              "lossforge peak extra", "PML peak extra"]

    # NT-Xent against PML, interleaved in this process at a size PML finishes in about a second
    n_small = 64 if args.quick else 128
    x = embeddings(n_small)
    t = half_shared_labels(n_small)
    ours = step(lambda e: LF.ntxent_loss(e, t, temperature=TEMPERATURE), x)
    if pml is not None:
        theirs = step(lambda e: pml[0].NTXentLoss(temperature=TEMPERATURE)(e, t), x)
        times = interleaved({"ours": ours, "pml": theirs}, repeats=3, warmup=1)
        dv, dg = _compare(ours, theirs, x)
        rows.append(["NT-Xent (interleaved)", str(n_small), f"{times['ours'] * 1e3:.2f}", f"{times['pml'] * 1e3:.0f}",
                     f"{times['pml'] / times['ours']:.0f}x", dv, dg, peak("ntxent", n_small), "-"])
    # NT-Xent at n = 256: PML once, in a fresh process with a timeout
    if pml is not None and not args.quick:
        result = _fresh(["--pml-ntxent", "--n", "256", "--repeats", str(args.repeats),
                         "--threads", str(torch.get_num_threads())], timeout=300)
        if isinstance(result, str):
            notes.append(f"PML NT-Xent at n = 256 {result}.")
        else:
            rows.append(["NT-Xent (fresh process)", "256", f"{result['ours'] * 1e3:.2f}", f"{result['pml'] * 1e3:.0f}",
                         f"{result['pml'] / result['ours']:.0f}x", f"{result['rel_dvalue']:.1e}",
                         f"{result['dgrad'] / result['grad_scale']:.1e}", peak("ntxent", 256),
                         f"{result['pml_peak'] / GiB:.1f} GiB"])
    # lossforge alone at the large sizes (PML cannot run them: its memory grows as n^4 for this layout)
    for case, label in (("ntxent", "NT-Xent"), ("supcon", "SupCon"), ("info_nce", "InfoNCE"),
                        ("ntxent-naive", "NT-Xent, plain autograd (reference)")):
        sizes = (1024,) if args.quick else (1024, 4096)
        for n in sizes:
            if case != "ntxent" and n != sizes[-1]:
                continue
            fn, _ = _lf_case(case, n)
            xs = embeddings(n)
            times = interleaved({"ours": step(fn, xs)}, repeats=args.repeats, warmup=1)
            rows.append([label, str(n), f"{times['ours'] * 1e3:.1f}", "-", "-", "-", "-", peak(case, n), "-"])

    # triplet mining against PML at n = 1024 (P x K = 256 x 4), interleaved
    n_t = 256 if args.quick else 1024
    x = embeddings(n_t, seed=2)
    t = pk_labels(n_t)
    if pml is not None:
        losses, miners = pml
        pml_loss = losses.TripletMarginLoss(margin=MARGIN)  # LpDistance(normalize_embeddings=True), AvgNonZero
        hard_miner = miners.BatchHardMiner()
        semi_miner = miners.TripletMarginMiner(margin=MARGIN, type_of_triplets="semihard")
        pairs = {
            "batch_hard": lambda e: pml_loss(e, t, hard_miner(e, t)),
            "semi_hard": lambda e: pml_loss(e, t, semi_miner(e, t)),
            "all": lambda e: pml_loss(e, t),
        }
        pml_name = {"batch_hard": "BatchHardMiner", "semi_hard": "TripletMarginMiner(semihard)", "all": "no miner"}
        hard_ms = float("nan")
        probe = interleaved({"gram": step(lambda e: (e @ e.T).sum(), x)}, repeats=args.repeats, warmup=1)["gram"]
        rows.append(["probe: x @ x.T, forward + backward", str(n_t), f"{probe * 1e3:.1f}", "-", "-", "-", "-", "-",
                     "-"])
        for mining, theirs_fn in pairs.items():
            ours = step(lambda e, m=mining: LF.triplet_loss(e, t, margin=MARGIN, mining=m, normalize=True,
                                                            average_nonzero=True), x)
            theirs = step(theirs_fn, x)
            times = interleaved({"ours": ours, "pml": theirs}, repeats=3, warmup=1)
            dv, dg = _compare(ours, theirs, x)
            rows.append([f"triplet {mining} vs PML {pml_name[mining]}", str(n_t), f"{times['ours'] * 1e3:.1f}",
                         f"{times['pml'] * 1e3:.0f}", f"{times['pml'] / times['ours']:.0f}x", dv, dg,
                         peak(f"triplet:{mining}", n_t), "-"])
            if mining == "batch_hard":
                hard_ms = times["ours"]
            elif mining == "semi_hard":
                notes.append(f"The issue's PML anchor (TripletMarginLoss with its TripletMarginMiner, ~5 s) against "
                             f"lossforge's batch_hard: {times['pml'] / hard_ms:.0f}x (different triplets; the rows "
                             f"above compare the same triplets).")
    else:
        notes.append("pytorch-metric-learning is not installed: the PML columns are skipped.")

    out = (f"Metric losses, forward + backward, float32, d = {D}; {environment()}\n\n"
           + table(rows, header) + ("\n\n" + "\n".join(f"- {n}" for n in notes) if notes else ""))
    print(out)
    return out


if __name__ == "__main__":
    main()
