"""The demo, end to end: data, two training runs on the same initial weights, table, JSON, figure."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

import lossforge as lf

from ._deps import require
from .data import load_digits_data
from .losses import ConfidencePenaltyLoss, balanced_class_weight
from .model import SmallCNN
from .plots import plot_curves
from .progress import make_progress
from .report import print_table, rounded, table_rows, write_metrics
from .train import RunResult, train_run

__all__ = ["DEFAULT_EPOCHS", "QUICK_EPOCHS", "DemoConfig", "DemoReport", "run_demo"]

DEFAULT_EPOCHS = 20
QUICK_EPOCHS = 2


@dataclass(frozen=True)
class DemoConfig:
    """Settings of one demo (the CLI flags, plus the fixed training settings).

    Attributes:
        epochs: Epochs per run.
        seed: Seed of the weight initialisation and of the batch order (the data split is fixed).
        batch_size: Images per step.
        lr: Adam's learning rate.
        penalty: Coefficient of the confidence penalty in the custom run.
        data_seed: Seed of the train/test split and of the thinning of the rare classes.
        threads: torch's intra-op threads during training. One: the model is small, so more
            threads gain little, while on a busy machine (a test run beside it) they lose a lot
            waiting for each other; and one thread sums in the same order on every machine.
    """

    epochs: int = DEFAULT_EPOCHS
    seed: int = 0
    batch_size: int = 32
    lr: float = 1e-3
    penalty: float = 0.1
    data_seed: int = 0
    threads: int = 1


@dataclass
class DemoReport:
    """What :func:`run_demo` returns: the metrics (as written to ``metrics.json``) and the files."""

    metrics: dict[str, Any]
    rows: list[list[str]]
    metrics_path: Path
    plot_path: Path | None
    runs: list[RunResult] = field(default_factory=list)
    seconds: float = 0.0


@contextmanager
def _deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seed torch, turn on deterministic algorithms, set the thread count; restore all three afterwards."""
    previous, previous_threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous)
            torch.set_num_threads(previous_threads)


def run_demo(out: str | Path, config: DemoConfig | None = None, *, plot: bool = True,
             progress: str = "auto", show_table: bool = True) -> DemoReport:
    """Train the small CNN twice on the imbalanced digits and compare the two criteria.

    (a) ``lf.CrossEntropyLoss()``; (b) ``lf.CrossEntropyLoss(class_weight=w) + penalty *
    ConfidencePenaltyLoss()`` with inverse-frequency weights ``w`` from the training
    counts. Both runs start from the same initial weights and see the same batches.
    Writes ``metrics.json`` and (with ``plot``) ``curves.png`` into ``out``.

    Raises:
        MissingDependencyError: If scikit-learn (or, with ``plot``, matplotlib) is missing.
    """
    config = config or DemoConfig()
    if config.epochs < 1 or config.threads < 1:
        raise ValueError(f"lossforge demo: epochs and threads must be at least 1, got {config.epochs} "
                         f"and {config.threads}.")
    start = time.perf_counter()
    require("sklearn", "to load the digits")
    if plot:
        require("matplotlib", "to draw the curves (or pass --no-plot)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_digits_data(seed=config.data_seed)
    counts = data.train_counts()
    bar = make_progress(progress)
    print(data.describe())

    with _deterministic(config.seed, config.threads):
        init = SmallCNN(data.image_shape, data.num_classes).state_dict()
        init = copy.deepcopy(init)
        class_weight = balanced_class_weight(counts)
        criteria: dict[str, tuple[str, torch.nn.Module]] = {
            "builtin": ("(a) lf.CrossEntropyLoss()", lf.CrossEntropyLoss()),
            "custom": (f"(b) weighted CE + {config.penalty:g}*penalty",
                       lf.CrossEntropyLoss(class_weight=class_weight) + config.penalty * ConfidencePenaltyLoss()),
        }
        runs = []
        for key, (label, criterion) in criteria.items():
            model = SmallCNN(data.image_shape, data.num_classes)
            model.load_state_dict(init)
            runs.append(train_run(key, label, criterion, model, data, epochs=config.epochs,
                                  batch_size=config.batch_size, lr=config.lr, seed=config.seed, progress=bar))

    span = f"{data.rare_classes[0]}-{data.rare_classes[-1]}"
    metrics = rounded({
        "lossforge_version": lf.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "config": asdict(config),
        "data": {
            "source": "sklearn.datasets.load_digits, 8x8 upsampled (bilinear) to 32x32, 3 channels",
            "image_shape": list(data.image_shape),
            "rare_classes": list(data.rare_classes),
            "rare_keep_fraction": data.keep_fraction,
            "train_counts": counts,
            "test_counts": data.test_counts(),
        },
        "runs": {r.key: {"label": r.label, "criterion": r.criterion,
                         **({"class_weight": class_weight.tolist()} if r.key == "custom" else {}),
                         "final": r.final, "history": r.history}
                 for r in runs},
    })
    metrics_path = write_metrics(out / "metrics.json", metrics)
    plot_path = None
    if plot:
        plot_path = plot_curves(runs, out / "curves.png", rare_span=span,
                                title=f"lossforge demo: digits 3x32x32, rare classes {span} keep "
                                      f"{data.keep_fraction:.0%} of their training images; seed {config.seed}")
    rows = table_rows(runs, data.rare_classes, data.num_classes)
    seconds = time.perf_counter() - start
    if show_table:
        print_table(rows, title=f"Test set ({len(data.y_test)} images, balanced) after {config.epochs} epochs",
                    use_rich=None if progress in ("auto", "rich") else False)
        print(f"(b) = lf.CrossEntropyLoss(class_weight=N/(C*n_c)) + {config.penalty:g} * ConfidencePenaltyLoss() "
              f"(lossforge.demo.losses); n_c = training images of class c")
        print(f"wrote {metrics_path}" + (f" and {plot_path}" if plot_path else "") + f" in {seconds:.1f} s")
    return DemoReport(metrics=metrics, rows=rows, metrics_path=metrics_path, plot_path=plot_path,
                      runs=runs, seconds=seconds)
