"""``lossforge train`` and ``lossforge compare``: train the task's model on a loss spec, record, compare.

Every run is deterministic: the data are fixed by ``data_seed``; the initial weights, any
learnable parameters of the loss and the batch order come from ``seed``; training runs with
torch's deterministic algorithms on one thread (see :class:`TrainConfig`). Two specs
compared with the same seed start from the same weights and see the same batches.
"""

from __future__ import annotations

import csv
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import lossforge as lf

from ._deps import require
from .datasets import TaskData, load_dataset
from .progress import Progress, make_progress
from .report import print_table, rounded, write_metrics
from .run import _deterministic
from .tasks import TASKS, adapt_target, build_criterion, evaluate, headline, make_model, target_kind
from .train import RunResult, as_sum

__all__ = ["CompareReport", "TrainConfig", "TrainReport", "load_for", "prepare", "run_compare", "run_train",
           "train_spec"]


@dataclass(frozen=True)
class TrainConfig:
    """Training settings (``None``: the task's default, see :data:`lossforge.demo.tasks.TASKS`).

    Attributes:
        epochs, batch_size, lr: Adam's schedule.
        seed: Seed of the initial weights, the loss's own parameters and the batch order.
        data_seed: Seed of the data (split, corruption, generation).
        threads: torch's intra-op threads while training (one: the models are small, and one
            thread sums in the same order on every machine).
    """

    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int = 0
    data_seed: int = 0
    threads: int = 1

    def resolved(self, task: str) -> TrainConfig:
        """This config with the task's defaults filled in."""
        t = TASKS[task]
        return TrainConfig(epochs=self.epochs or t.epochs, batch_size=self.batch_size or t.batch_size,
                           lr=self.lr or t.lr, seed=self.seed, data_seed=self.data_seed, threads=self.threads)


def load_for(task: str, data_name: str | None, *, data_seed: int = 0, **options: float | None) -> TaskData:
    """The data for ``task``: ``data_name`` or the task's default data set."""
    return load_dataset(data_name or TASKS[task].default_data, task, seed=data_seed, **options)


def prepare(specs: list[str], task: str, data: TaskData) -> dict[str, dict[str, dict[str, Any]]]:
    """Build every spec once, before any training, so a bad one fails fast; returns the filled-in arguments.

    Raises:
        ValueError: For the first spec that cannot be built for ``task``.
    """
    filled = {}
    for spec in specs:
        try:
            _, filled[spec] = build_criterion(spec, task, data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{spec!r}: {exc}") from None
    return filled


def _summary(terms: dict[str, float], metrics: dict[str, Any], shown: list[tuple[str, str, bool]]) -> str:
    parts = [f"loss {terms['total']:.4f}"]
    if len(terms) > 2:
        parts.append("(" + ", ".join(f"{k} {v:.4f}" for k, v in terms.items() if k != "total") + ")")
    parts += [f"{key} {metrics[key]:.3f}" for key, _, _ in shown[:2]]
    return "  ".join(parts)


def train_spec(spec: str, task: str, data: TaskData, config: TrainConfig, *, progress: Progress,
               label: str | None = None) -> tuple[RunResult, nn.Module, nn.Module]:
    """Train the task's model on ``spec``; evaluate on the test set after every epoch.

    Every step: ``zero_grad`` → forward → ``criterion.terms`` → ``backward`` on the total →
    ``step``; each term's epoch mean is recorded. The loss's own parameters (the proxies
    of ``arcface``, ...) are trained with the model.

    Returns the run, the trained model and the criterion.
    """
    cfg = config.resolved(task)
    epochs, batch_size, lr = int(cfg.epochs or 1), int(cfg.batch_size or 1), float(cfg.lr or 1e-3)
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"epochs and batch_size must be at least 1 and lr positive, got {epochs}, {batch_size}, "
                         f"{lr}.")
    shown = headline(task, data)
    with _deterministic(cfg.seed, cfg.threads):
        model = make_model(task, data)
        criterion, _ = build_criterion(spec, task, data)
        summed = as_sum(criterion)
        kind = target_kind(criterion)
        optimizer = torch.optim.Adam([*model.parameters(), *criterion.parameters()], lr=lr)
        gen = torch.Generator().manual_seed(cfg.seed)
        n = len(data.y_train)
        full, rest = divmod(n, batch_size)
        # a last batch of one sample is dropped: batch losses (triplet, ntxent, ...) need two
        batches = full + (1 if rest > 1 or full == 0 else 0)
        result = RunResult(key=spec, label=label or spec, criterion=" ".join(repr(criterion).split()))
        progress.start(label or spec, epochs, batches)
        try:
            model.train()
            for epoch in range(1, epochs + 1):
                progress.begin_epoch(epoch)
                sums: dict[str, float] = {}
                seen = 0
                for idx in torch.randperm(n, generator=gen).split(batch_size)[:batches]:
                    x = data.x_train[idx]
                    y = adapt_target(data.y_train[idx], kind, data.num_classes)
                    optimizer.zero_grad(set_to_none=True)
                    terms = summed.terms(model(x), y)
                    terms["total"].backward()
                    optimizer.step()
                    for name, value in terms.items():
                        sums[name] = sums.get(name, 0.0) + float(value.detach()) * len(idx)
                    seen += len(idx)
                    progress.step()
                test = evaluate(task, model, data)
                epoch_terms = {k: v / seen for k, v in sums.items()}
                row = {"epoch": epoch, "train_loss": epoch_terms,
                       "test": {k: v for k, v in test.items() if isinstance(v, float)}}
                result.history.append(row)
                progress.end_epoch(epoch, _summary(epoch_terms, test, shown))
        finally:
            progress.finish()
    result.final = {**test, "train_loss": result.history[-1]["train_loss"]}
    return result, model, criterion


# ---- reports ------------------------------------------------------------------------------------

def _header(task: str, data: TaskData, cfg: TrainConfig) -> dict[str, Any]:
    return {
        "lossforge_version": lf.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "task": task,
        "data": {"name": data.name, "summary": data.summary, **data.info},
        "config": asdict(cfg),
    }


def _csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return path


def _flat(run: RunResult, **extra: Any) -> list[dict[str, Any]]:
    return [{**extra, "epoch": row["epoch"], **{f"loss:{k}": v for k, v in row["train_loss"].items()},
             **row["test"]} for row in run.history]


@dataclass
class TrainReport:
    """What :func:`run_train` returns: the metrics (as in ``metrics.json``), table rows and files."""

    metrics: dict[str, Any]
    rows: list[list[str]]
    files: list[Path]
    run: RunResult
    model: nn.Module
    criterion: nn.Module
    seconds: float = 0.0


def run_train(spec: str, task: str, data: TaskData, out: str | Path, config: TrainConfig | None = None, *,
              plot: bool = True, progress: str = "auto", show_table: bool = True) -> TrainReport:
    """Train on ``spec``; write ``metrics.json``, ``metrics.csv`` and (with ``plot``) ``curves.png`` into ``out``.

    Raises:
        ValueError: If the spec cannot be built for the task.
        MissingDependencyError: With ``plot`` and no matplotlib.
    """
    start = time.perf_counter()
    if plot:
        require("matplotlib", "to draw the curves (or pass --no-plot)")
    cfg = (config or TrainConfig()).resolved(task)
    filled = prepare([spec], task, data)[spec]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print(data.summary)
    run, model, criterion = train_spec(spec, task, data, cfg, progress=make_progress(progress))
    shown = headline(task, data)
    metrics = rounded({**_header(task, data, cfg), "spec": spec, "criterion": run.criterion, "filled_in": filled,
                       "final": run.final, "history": run.history})
    files = [write_metrics(out / "metrics.json", metrics), _csv(out / "metrics.csv", _flat(run))]
    if plot:
        from .taskplots import plot_runs

        files.append(plot_runs({spec: [run]}, shown, out / "curves.png",
                               title=f"lossforge train: {spec} on {data.name} ({task}), seed {cfg.seed}"))
    rows = [["", spec], *([title, f"{run.final[key]:.3f}"] for key, title, _ in shown),
            *([f"train loss: {k}", f"{v:.4f}"] for k, v in run.final["train_loss"].items())]
    seconds = time.perf_counter() - start
    if show_table:
        print_table(rows, title=f"Test set of {data.name} after {cfg.epochs} epochs",
                    use_rich=None if progress in ("auto", "rich") else False)
        for name, args in filled.items():
            print(f"{name}: filled in from the data: " + ", ".join(f"{k}={v}" for k, v in args.items()))
        print("wrote " + ", ".join(str(f) for f in files) + f" in {seconds:.1f} s")
    return TrainReport(metrics=metrics, rows=rows, files=files, run=run, model=model, criterion=criterion,
                       seconds=seconds)


@dataclass
class CompareReport:
    """What :func:`run_compare` returns: the summary (as in ``comparison.json``), table rows, files, runs."""

    metrics: dict[str, Any]
    rows: list[list[str]]
    files: list[Path]
    runs: dict[str, list[RunResult]] = field(default_factory=dict)
    seconds: float = 0.0


def _cell(values: list[float], digits: int) -> str:
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def compare_rows(runs: dict[str, list[RunResult]], shown: list[tuple[str, str, bool]]) -> list[list[str]]:
    """Header, one row per headline metric (mean ± sd over the seeds), then the final training loss terms."""
    rows = [["", *runs]]
    for key, title, higher in shown:
        rows.append([f"{title} {'↑' if higher else '↓'}", *(_cell([r.final[key] for r in rs], 3)
                                                         for rs in runs.values())])
    terms: list[str] = []
    for rs in runs.values():
        terms += [t for t in rs[0].final["train_loss"] if t != "total" and t not in terms]
    for term in [*terms, "total"]:
        rows.append([f"train loss: {term}", *(_cell([r.final["train_loss"][term] for r in rs], 4)
                                              if term in rs[0].final["train_loss"] else "-" for rs in runs.values())])
    return rows


def run_compare(specs: list[str], task: str, data: TaskData, out: str | Path, config: TrainConfig | None = None, *,
                seeds: tuple[int, ...] = (0,), plot: bool = True, progress: str = "auto",
                show_table: bool = True) -> CompareReport:
    """Train every spec with every seed on the same data; print the table; write ``comparison.json``,
    ``comparison.csv`` and (with ``plot``) ``comparison.png`` into ``out``.

    With the same seed, every spec starts from the same initial weights and sees the same batches.

    Raises:
        ValueError: If a spec cannot be built for the task, or ``specs`` has duplicates.
        MissingDependencyError: With ``plot`` and no matplotlib.
    """
    start = time.perf_counter()
    if len(set(specs)) != len(specs):
        raise ValueError(f"specs must be distinct, got {specs}.")
    if not seeds:
        raise ValueError("seeds must name at least one seed, got none.")
    if plot:
        require("matplotlib", "to draw the comparison (or pass --no-plot)")
    base = (config or TrainConfig()).resolved(task)
    filled = prepare(specs, task, data)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print(data.summary)
    bar = make_progress(progress)
    runs: dict[str, list[RunResult]] = {spec: [] for spec in specs}
    for seed in seeds:
        cfg = TrainConfig(epochs=base.epochs, batch_size=base.batch_size, lr=base.lr, seed=seed,
                          data_seed=base.data_seed, threads=base.threads)
        for spec in specs:
            label = f"{spec} [seed {seed}]" if len(seeds) > 1 else spec
            runs[spec].append(train_spec(spec, task, data, cfg, progress=bar, label=label)[0])
    shown = headline(task, data)
    summary = {}
    for spec, rs in runs.items():
        keys = [k for k, v in rs[0].final.items() if isinstance(v, float)]
        summary[spec] = {
            "criterion": rs[0].criterion,
            "filled_in": filled[spec],
            "mean": {k: statistics.fmean(r.final[k] for r in rs) for k in keys},
            **({"sd": {k: statistics.stdev(r.final[k] for r in rs) for k in keys}} if len(rs) > 1 else {}),
            "per_seed": [{"seed": s, "final": r.final, "history": r.history} for s, r in zip(seeds, rs)],
        }
    metrics = rounded({**_header(task, data, base), "seeds": list(seeds), "specs": specs, "runs": summary})
    flat = [row for spec, rs in runs.items() for s, r in zip(seeds, rs) for row in _flat(r, spec=spec, seed=s)]
    files = [write_metrics(out / "comparison.json", metrics), _csv(out / "comparison.csv", flat)]
    if plot:
        from .taskplots import plot_runs

        seeds_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))} (mean, min-max)"
        files.append(plot_runs(runs, shown, out / "comparison.png",
                               title=f"lossforge compare on {data.name} ({task}), {seeds_text}"))
    rows = compare_rows(runs, shown)
    seconds = time.perf_counter() - start
    if show_table:
        what = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean ± sd over seeds {', '.join(map(str, seeds))}"
        print_table(rows, title=f"Test set of {data.name} after {base.epochs} epochs ({what})",
                    use_rich=None if progress in ("auto", "rich") else False)
        for spec in specs:
            for name, args in filled[spec].items():
                print(f"{name}: filled in from the data: " + ", ".join(f"{k}={v}" for k, v in args.items()))
        print("wrote " + ", ".join(str(f) for f in files) + f" in {seconds:.1f} s")
    return CompareReport(metrics=metrics, rows=rows, files=files, runs=runs, seconds=seconds)
