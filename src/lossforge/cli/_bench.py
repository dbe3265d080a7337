"""``lossforge bench [NAME ...|--all] [--against monai,kornia,smp,pml,torchvision] [--json]``: run the benchmarks.

The benchmarks are the ``benchmarks/bench_*.py`` scripts of the source repository (each runs
as ``python -m benchmarks.bench_NAME`` and prints markdown tables whose speed numbers are
ratios measured in one process). They do not ship in the wheel: the folder is looked up in
``--dir``, ``$LOSSFORGE_BENCHMARKS``, ``./benchmarks`` and next to the source checkout.

Each benchmark runs in a fresh process from the repository root; its tables are parsed, the
ratio columns (a ``/`` or ``ratio`` in the header, or cells like ``1.23x``) are printed, and
``--json`` prints everything as JSON. ``--against`` picks the benchmarks that compare with
those libraries (by their name in the script) and reports which of them are installed; the
list is passed to the scripts in ``$LOSSFORGE_BENCH_AGAINST``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._core.errors import did_you_mean
from ._common import CLIError

__all__ = ["LIBRARIES", "Benchmark", "add_parser", "discover", "find_dir", "parse_tables", "ratios", "run"]

#: ``--against`` names -> (import name, distribution name, words that show a benchmark compares with it).
LIBRARIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "monai": ("monai", "monai", ("monai", "MONAI")),
    "kornia": ("kornia", "kornia", ("kornia",)),
    "smp": ("segmentation_models_pytorch", "segmentation-models-pytorch",
            ("segmentation_models_pytorch", "segmentation-models-pytorch", "smp")),
    "pml": ("pytorch_metric_learning", "pytorch-metric-learning",
            ("pytorch_metric_learning", "pytorch-metric-learning", "PML")),
    "torchvision": ("torchvision", "torchvision", ("torchvision",)),
}


@dataclass
class Benchmark:
    """One ``bench_NAME.py`` script."""

    name: str
    path: Path
    summary: str
    libraries: list[str] = field(default_factory=list)


def find_dir(given: str | None = None) -> Path:
    """The ``benchmarks`` folder: ``given``, ``$LOSSFORGE_BENCHMARKS``, ``./benchmarks``, or the checkout's.

    Raises:
        CLIError: (code 1) If none holds a ``bench_*.py`` script.
    """
    candidates = [Path(given)] if given else []
    if not given:
        if os.environ.get("LOSSFORGE_BENCHMARKS"):
            candidates.append(Path(os.environ["LOSSFORGE_BENCHMARKS"]))
        candidates.append(Path.cwd() / "benchmarks")
        candidates.append(Path(__file__).resolve().parents[3] / "benchmarks")
    for path in candidates:
        if path.is_dir() and any(path.glob("bench_*.py")):
            return path.resolve()
    where = given or "./benchmarks or next to the source checkout"
    raise CLIError(f"lossforge bench: no benchmarks/bench_*.py found in {where}. The benchmarks ship with the "
                   f"source repository, not the wheel: run from a checkout or pass --dir.", code=1)


def _mentions(text: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text) for w in words)


def discover(folder: Path) -> dict[str, Benchmark]:
    """``{name: Benchmark}`` for every ``bench_NAME.py`` in ``folder``, sorted by name."""
    found = {}
    for path in sorted(folder.glob("bench_*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        doc = re.search(r'^[rb]?"""(.*?)(?:\n|""")', text, re.S | re.M)
        found[path.stem[len("bench_"):]] = Benchmark(
            name=path.stem[len("bench_"):], path=path, summary=doc.group(1).strip() if doc else "",
            libraries=[lib for lib, (_, _, words) in LIBRARIES.items() if _mentions(text, words)])
    return found


def _installed(lib: str) -> str | None:
    module, dist, _ = LIBRARIES[lib]
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "installed"


def parse_tables(text: str) -> list[dict[str, Any]]:
    """The markdown tables in ``text``: ``[{"header": [...], "rows": [[...], ...]}, ...]``.

    Examples:
        >>> parse_tables("| a | b |\\n|---|---|\\n| x | 1.5x |\\n")
        [{'header': ['a', 'b'], 'rows': [['x', '1.5x']]}]
    """
    tables: list[dict[str, Any]] = []
    block: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        s = line.strip()
        if s.startswith("|") and s.endswith("|") and len(s) > 1:
            block.append([c.strip() for c in s[1:-1].split("|")])
            continue
        if len(block) >= 2 and all(re.fullmatch(r":?-+:?", c) for c in block[1]):
            tables.append({"header": block[0], "rows": [r for r in block[2:] if len(r) == len(block[0])]})
        block = []
    return tables


_RATIO_CELL = re.compile(r"(\d+(?:\.\d+)?)\s*[x×]")


def ratios(table: dict[str, Any]) -> list[dict[str, Any]]:
    """The ratio cells of a table: ``[{"row": first cell, "column": header, "value": float | None, "text": cell}]``.

    A column holds ratios when its header has ``/`` or ``ratio``, or every filled cell reads like ``1.23x``.
    """
    header, rows = table["header"], table["rows"]
    out = []
    for j, col in enumerate(header[1:], start=1):
        cells = [r[j] for r in rows if r[j] not in ("", "-")]
        by_header = "/" in col or "ratio" in col.lower()
        by_cells = bool(cells) and all(_RATIO_CELL.fullmatch(c) for c in cells)
        if not (by_header or by_cells):
            continue
        for r in rows:
            m = re.match(r"\s*(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)", r[j])
            out.append({"row": r[0], "column": col, "value": float(m.group(1)) if m else None, "text": r[j]})
    return out


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    libs = ",".join(LIBRARIES)
    p = sub.add_parser(
        "bench", parents=parents, help="run the benchmarks/ workloads and print the speed ratios",
        description="Run the benchmark scripts of the source checkout (benchmarks/bench_*.py), each in a fresh "
                    "process, and print their ratio columns (every speed number is a ratio measured in one run). "
                    "Without NAME or --all: list the benchmarks and the libraries they compare with.",
        epilog=f"examples: lossforge bench --all --quick;  lossforge bench metric --json;  "
               f"lossforge bench --against {libs} --quick",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (bench_NAME.py)")
    p.add_argument("--all", action="store_true", help="run every benchmark")
    p.add_argument("--against", metavar="LIBS", default=None,
                   help=f"comma-separated libraries to compare with ({libs}); without NAME, runs the benchmarks "
                        f"that use them")
    p.add_argument("--quick", action="store_true", help="pass --quick to each benchmark (small sizes)")
    p.add_argument("--bench-args", metavar="ARGS", default="",
                   help="more arguments for each benchmark, one string: --bench-args='--only mse'")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--full", action="store_true", help="print each benchmark's whole output, not only the ratios")
    p.add_argument("--dir", metavar="DIR", default=None, help="the benchmarks folder (default: ./benchmarks)")
    p.add_argument("--timeout", metavar="S", type=float, default=3600.0,
                   help="seconds each benchmark may run (default: 3600)")
    p.set_defaults(func=run)


def _against(text: str | None) -> list[str]:
    if not text:
        return []
    libs = [s.strip().lower() for s in text.split(",") if s.strip()]
    for lib in libs:
        if lib not in LIBRARIES:
            raise CLIError(f"lossforge bench: --against takes {', '.join(LIBRARIES)}, got {lib!r}."
                           + did_you_mean(lib, LIBRARIES))
    return list(dict.fromkeys(libs))


def _run_one(bench: Benchmark, argv: list[str], against: list[str], timeout: float) -> dict[str, Any]:
    env = dict(os.environ, LOSSFORGE_BENCH_AGAINST=",".join(against))
    root = bench.path.parent.parent
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", f"{bench.path.parent.name}.{bench.path.stem}", *argv]
    start = time.perf_counter()
    try:
        # this interpreter running a benchmark script of the checkout: nothing from outside is executed
        res = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)  # noqa: S603
        code, stdout, stderr = res.returncode, res.stdout, res.stderr
    except subprocess.TimeoutExpired as exc:
        code = 124
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = f"timed out after {timeout:g} s"
    tables = parse_tables(stdout)
    return {
        "name": bench.name, "command": " ".join(shlex.quote(c) for c in ["python", *cmd[1:]]),
        "returncode": code, "seconds": round(time.perf_counter() - start, 2), "libraries": bench.libraries,
        "tables": tables, "ratios": [r for t in tables for r in ratios(t)], "stdout": stdout,
        "stderr_tail": "\n".join(stderr.strip().splitlines()[-5:]) if code else "",
    }


def _print_result(result: dict[str, Any], full: bool) -> None:
    status = "ok" if result["returncode"] == 0 else f"FAILED (exit {result['returncode']})"
    print(f"## {result['name']}: {status}, {result['seconds']:.1f} s  ({result['command']})")
    if full:
        print(result["stdout"].rstrip())
    else:
        for line in result["stdout"].splitlines():  # titles, environment, notes: everything but the tables
            if line.strip() and not line.strip().startswith("|"):
                print(line)
        for table in result["tables"]:
            found = [r for r in ratios(table) if r["value"] is not None or r["text"] not in ("", "-")]
            if not found:
                continue
            columns = list(dict.fromkeys(r["column"] for r in found))
            cells: dict[str, dict[str, str]] = {}
            for cell in found:
                cells.setdefault(cell["row"], {})[cell["column"]] = cell["text"]
            lines: list[list[str]] = [[table["header"][0] or "case", *columns],
                                      *([row, *(vals.get(c, "") for c in columns)] for row, vals in cells.items())]
            widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
            for n, line in enumerate(lines):
                print("  ".join([line[0].ljust(widths[0]),
                                 *(c.rjust(w) for c, w in zip(line[1:], widths[1:]))]).rstrip())
                if n == 0:
                    print("  ".join("-" * w for w in widths))
    if result["stderr_tail"]:
        print(result["stderr_tail"])
    print(flush=True)


def run(args: argparse.Namespace) -> int:
    folder = find_dir(args.dir)
    found = discover(folder)
    against = _against(args.against)
    installed = {lib: _installed(lib) for lib in against}
    for name in args.names:
        if name.removeprefix("bench_") not in found:
            raise CLIError(f"lossforge bench: unknown benchmark {name!r}; there are {', '.join(found)}."
                           + did_you_mean(name, found))
    if args.names:
        chosen = [found[n.removeprefix("bench_")] for n in args.names]
    elif args.all:
        chosen = list(found.values())
    elif against:
        chosen = [b for b in found.values() if set(b.libraries) & set(against)]
    else:
        chosen = []
    if not chosen:
        if against and not (args.names or args.all):
            print(f"no benchmark in {folder} compares with {', '.join(against)}")
        if args.json:
            print(json.dumps({"folder": str(folder), "benchmarks": [
                {"name": b.name, "summary": b.summary, "libraries": b.libraries} for b in found.values()]}, indent=2))
            return 0
        width = max(map(len, found))
        print(f"benchmarks in {folder} (run with NAME or --all):")
        for b in found.values():
            libs = f"  [vs {', '.join(b.libraries)}]" if b.libraries else ""
            print(f"  {b.name.ljust(width)}  {b.summary}{libs}")
        return 0 if not against else 1

    if against and not args.json:
        print("against: " + ", ".join(f"{lib} {v}" if v else f"{lib} (not installed: skipped by the benchmarks)"
                                      for lib, v in installed.items()))
    argv = (["--quick"] if args.quick else []) + shlex.split(args.bench_args)
    results = []
    for bench in chosen:
        if not args.json:
            print(f"running {bench.name} ...", file=sys.stderr, flush=True)
        result = _run_one(bench, argv, [lib for lib in against if installed[lib]], args.timeout)
        if against:
            result["against"] = {lib: {"installed": installed[lib], "used": lib in bench.libraries} for lib in against}
        results.append(result)
        if not args.json:
            _print_result(result, args.full)
    failed = [r["name"] for r in results if r["returncode"] != 0]
    if args.json:
        print(json.dumps({"folder": str(folder), "python": sys.executable, "against": installed,
                          "results": results}, indent=2))
    elif failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
