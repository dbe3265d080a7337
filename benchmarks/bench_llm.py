"""Linear + cross-entropy (an LLM head and its loss): lossforge against the naive computation and torch's own.

Forward + backward of ``loss(hidden @ weight.T, target)`` with gradients for ``hidden`` and
``weight``, float32, each implementation timed interleaved in one process (median of the
repeats), the peak extra memory of one forward + backward over the inputs in a fresh process per
case (resident-set peak; the gradients dX + dW are part of it), the compute floor (the three
matrix products alone, ``6·N·D·V`` FLOPs, into preallocated buffers, timed interleaved with the
cases, so it sees the same machine load) as a fraction of each time, and the largest gradient error
against a float64 computation on the first tokens. Goals (design/PERFORMANCE.md): time <= 1.0x naive, peak extra <=
1.5x (dX + dW), and with 50% of the tokens ignored <= 0.6x the time without.

Implementations:
- naive: ``F.cross_entropy(hidden @ weight.T, target)``;
- torch reference / torch chunked: ``F.linear_cross_entropy`` with ``options=None`` and with
  ``options=LinearCrossEntropyOptions()`` (torch >= 2.13);
- cut-cross-entropy's ``impl="torch_compile"`` when the package is installed (else a note);
- lossforge ``linear_cross_entropy``, and the same with half of the tokens ignored.

    python -m benchmarks.bench_llm                 # 2048 x 1024 x 32768 and 4096 x 512 x 65536
    python -m benchmarks.bench_llm --quick         # 512 x 256 x 8192, a smoke test
    python -m benchmarks.bench_llm --shape 2048,1024,32768 --output docs/benchmarks_llm.md
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
from collections.abc import Callable

import torch
import torch.nn.functional as F

import lossforge.functional as LF

from ._harness import Step, environment, fwd_bwd, interleaved, mib, peak_extra_memory, table

Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Shape = tuple[int, int, int]

SHAPES: list[Shape] = [(2048, 1024, 32768), (4096, 512, 65536)]
QUICK: list[Shape] = [(512, 256, 8192)]
NAIVE = "naive F.cross_entropy(h @ W.T, y)"
LF_CASE = "lossforge linear_cross_entropy"
LF_IGNORED = "lossforge, 50% tokens ignored"
FLOOR = "the three matrix products alone"
HAS_CCE = importlib.util.find_spec("cut_cross_entropy") is not None


def _torch_chunked(h: torch.Tensor, w: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.linear_cross_entropy(h, w, y, options=torch.nn.LinearCrossEntropyOptions())


def _cce(h: torch.Tensor, w: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    from cut_cross_entropy import linear_cross_entropy as cce_lce  # optional anchor

    return cce_lce(h, w, y, impl="torch_compile")


def _cases() -> dict[str, Loss]:
    cases: dict[str, Loss] = {
        NAIVE: lambda h, w, y: F.cross_entropy(h @ w.T, y),
        "torch F.linear_cross_entropy (reference)": lambda h, w, y: F.linear_cross_entropy(h, w, y),
    }
    if hasattr(torch.nn, "LinearCrossEntropyOptions"):
        cases["torch F.linear_cross_entropy (chunked)"] = _torch_chunked
    if HAS_CCE:
        cases["cut-cross-entropy torch_compile"] = _cce
    cases[LF_CASE] = lambda h, w, y: LF.linear_cross_entropy(h, w, y)
    cases[LF_IGNORED] = lambda h, w, y: LF.linear_cross_entropy(h, w, y)
    return cases


def _inputs(n: int, d: int, v: int, *, ignored: bool = False, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, d, generator=g).requires_grad_()
    w = (torch.randn(v, d, generator=g) / d**0.5).requires_grad_()
    y = torch.randint(v, (n,), generator=g)
    if ignored:
        y[torch.randperm(n, generator=g)[: n // 2]] = -100
    return h, w, y


def _gemm_floor(h: torch.Tensor, w: torch.Tensor) -> Step:
    """The three products of a linear + CE forward and backward, nothing else: the compute floor."""
    h, w = h.detach(), w.detach()
    z = torch.empty(h.shape[0], w.shape[0])
    dx, dw = torch.empty_like(h), torch.empty_like(w)

    def step() -> None:
        torch.mm(h, w.T, out=z)
        torch.mm(z, w, out=dx)
        torch.mm(z.T, h, out=dw)

    return step


def _memory_case(case: str, n: int, d: int, v: int) -> None:
    from ._harness import report_peak_extra

    h, w, y = _inputs(n, d, v, ignored=case == LF_IGNORED)
    fn = _cases()[case]
    report_peak_extra(fwd_bwd(lambda h, w: fn(h, w, y), h, w))


def _grad_error(fn: Loss, n: int, d: int, v: int, tokens: int) -> float:
    """Largest |grad - grad_fp64| / max|grad_fp64| over dX and dW, on the first ``tokens`` tokens."""
    h, w, y = _inputs(n, d, v)
    h = h[:tokens].detach()
    y = y[:tokens]
    ref = []
    h64, w64 = h.double().requires_grad_(), w.detach().double().requires_grad_()
    F.cross_entropy(h64 @ w64.T, y).backward()
    ref = [h64.grad, w64.grad]
    h32, w32 = h.clone().requires_grad_(), w.detach().clone().requires_grad_()
    fn(h32, w32, y).backward()
    errs = []
    for got, want in zip((h32.grad, w32.grad), ref):
        if got is None or want is None:
            return float("nan")
        errs.append(float((got.double() - want).abs().max() / want.abs().max()))
    return max(errs)


def _run_shape(shape: Shape, memory: dict[str, int], repeats: int, check_tokens: int) -> list[str]:
    n, d, v = shape
    cases = _cases()
    grads_bytes = (n * d + v * d) * 4
    h, w, y = _inputs(n, d, v)
    _, _, y_ign = _inputs(n, d, v, ignored=True)
    steps = {}
    for name, fn in cases.items():
        target = y_ign if name == LF_IGNORED else y
        steps[name] = fwd_bwd(lambda h, w, fn=fn, target=target: fn(h, w, target), h, w)
    steps[FLOOR] = _gemm_floor(h, w)
    times = interleaved(steps, repeats=repeats, warmup=1)
    floor = times.pop(FLOOR)
    base = times[NAIVE]
    useful = 6 * n * d * v
    rows = []
    for name in cases:
        t = times[name]
        mem = memory.get(name)
        err = "" if name == LF_IGNORED else f"{_grad_error(cases[name], n, d, v, check_tokens):.1e}"
        rows.append([name, f"{t:.2f}", f"{t / base:.2f}x", f"{100 * floor / t:.0f}%" if name != LF_IGNORED
                     else "-", "-" if mem is None else mib(mem), "-" if mem is None else f"{mem / grads_bytes:.2f}x",
                     err])
    t_lf, t_ign = times[LF_CASE], times[LF_IGNORED]
    mem_lf = memory.get(LF_CASE)
    ok_time = t_lf / base <= 1.0
    ok_mem = mem_lf is None or mem_lf / grads_bytes <= 1.5
    ok_ign = t_ign / t_lf <= 0.6
    out = [f"## {n} tokens x {d} hidden x {v} vocabulary, float32",
           "",
           f"logits {mib(n * v * 4)}; gradients dX + dW {mib(grads_bytes)}; 6·N·D·V = {useful / 1e9:.0f} GFLOP; "
           f"the three products alone (the compute floor) take {floor:.2f} s = {useful / floor / 1e9:.0f} GFLOP/s; "
           f"median of {repeats}, interleaved.",
           "",
           table(rows, ["implementation", "s", "time / naive", "floor / time", "peak extra", "extra / (dX+dW)",
                        f"grad err vs fp64 ({check_tokens} tok)"]),
           "",
           f"Goals: lossforge time / naive {t_lf / base:.2f} (<= 1.0: {'met' if ok_time else 'MISSED'}); "
           f"peak extra / (dX + dW) {'-' if mem_lf is None else f'{mem_lf / grads_bytes:.2f}'} "
           f"(<= 1.5: {'met' if ok_mem else 'MISSED'}); 50% ignored / no ignored {t_ign / t_lf:.2f} "
           f"(<= 0.6: {'met' if ok_ign else 'MISSED'}).",
           ""]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="512 x 256 x 8192, a smoke test")
    parser.add_argument("--shape", action="append", default=None, help="N,D,V (repeatable)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check-tokens", type=int, default=256, help="tokens of the float64 gradient check")
    parser.add_argument("--no-memory", action="store_true", help="skip the fresh-process memory runs")
    parser.add_argument("--output", default=None, help="also write the report to this markdown file")
    parser.add_argument("--memory-case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    if args.shape:
        shapes = [tuple(int(x) for x in s.split(",")) for s in args.shape]
    else:
        shapes = QUICK if args.quick else SHAPES
    if args.memory_case is not None:
        n, d, v = shapes[0]
        _memory_case(args.memory_case, n, d, v)
        return
    # memory first: a child's resident-set peak starts at its parent's size (Linux keeps ru_maxrss
    # across fork and exec), so the fresh processes start before this one holds any input
    memory: dict[tuple[Shape, str], int] = {}
    if not args.no_memory:
        for shape in shapes:
            for name in _cases():
                memory[(shape, name)] = peak_extra_memory(
                    "benchmarks.bench_llm", name, "--shape", ",".join(map(str, shape)))
    lines = ["# Linear + cross-entropy benchmark (CPU)", "",
             f"{environment()}; {datetime.date.today().isoformat()}. Command: "
             f"`python -m benchmarks.bench_llm{' --quick' if args.quick else ''}`.", ""]
    if not HAS_CCE:
        lines += ["cut-cross-entropy is not installed: its `impl=\"torch_compile\"` anchor is skipped "
                  "(`pip install cut-cross-entropy` adds it to the table).", ""]
    for shape in shapes:
        mem = {name: b for (s, name), b in memory.items() if s == shape}
        lines += _run_shape(shape, mem, args.repeats, min(args.check_tokens, shape[0]))
    report = "\n".join(lines)
    print(report, flush=True)
    if args.output:
        with open(args.output, "w") as fh:
            fh.write(report + "\n")


if __name__ == "__main__":
    main()
