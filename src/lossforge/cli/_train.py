"""``lossforge train --loss SPEC [--task T] [--data NAME]``: train a small model on one loss spec.

The options shared with ``lossforge compare`` (task, data, schedule, seeds, output) are
defined here (:func:`add_training_arguments`) and read by :func:`training_setup`.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..demo import MissingDependencyError
from ..demo.datasets import DATASETS
from ..demo.tasks import TASKS
from ._common import CLIError

__all__ = ["add_parser", "add_training_arguments", "data_epilog", "run", "training_setup"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value


def data_epilog() -> str:
    """The data sets and the tasks, for ``--help``."""
    lines = ["data sets (--data):"]
    width = max(map(len, DATASETS))
    for name, entry in DATASETS.items():
        opts = "".join(f" [--{k} {v:g}]" for k, v in entry.options.items())
        lines.append(f"  {name.ljust(width)}  {'/'.join(entry.tasks)}: {entry.summary}{opts}")
    lines.append("tasks (--task): " + "; ".join(
        f"{t.name} ({t.input_kind} → {'|'.join(t.target_kinds)}, default data {t.default_data})"
        for t in TASKS.values()))
    return "\n".join(lines)


def add_training_arguments(p: argparse.ArgumentParser, *, out: str) -> None:
    """The options ``train`` and ``compare`` share."""
    p.add_argument("--task", choices=tuple(TASKS), default=None,
                   help="what to train (default: from --data, else from the loss's kinds)")
    p.add_argument("--data", metavar="NAME", default=None,
                   help="data set (default: the task's; see below)")
    p.add_argument("--out", metavar="DIR", default=out, help=f"output folder (default: {out})")
    p.add_argument("--epochs", metavar="N", type=_positive_int, default=None,
                   help="epochs (default: the task's: " + ", ".join(f"{t.name} {t.epochs}" for t in TASKS.values())
                   + ")")
    p.add_argument("--batch-size", metavar="N", type=_positive_int, default=None, help="default: the task's")
    p.add_argument("--lr", metavar="LR", type=_positive_float, default=None, help="Adam's learning rate "
                   "(default: the task's)")
    p.add_argument("--data-seed", metavar="S", type=int, default=0,
                   help="seed of the data: split, corruption, generation (default: 0)")
    p.add_argument("--noise", metavar="RATE", type=_fraction, default=None,
                   help="label noise of the digits-*-noise sets (default 0.4)")
    p.add_argument("--keep", metavar="FRAC", type=_fraction, default=None,
                   help="share of their training images the rare classes keep in digits-imbalanced (default 0.1)")
    p.add_argument("--outliers", metavar="FRAC", type=_fraction, default=None,
                   help="share of training targets with a gross error in regression-outliers (default 0.1)")
    p.add_argument("--progress", choices=("auto", "rich", "plain", "none"), default="auto",
                   help="progress display (default: a rich bar on a terminal, plain lines otherwise)")
    p.add_argument("--no-plot", dest="plot", action="store_false", help="skip the PNG (no matplotlib needed)")


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "train", parents=parents, help="train a small model on a loss spec: metrics, JSON/CSV, curves",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a small model on a loss spec (anything lossforge.build takes, e.g. "
                    "'dice + 0.5*focal(gamma=2)') on shipped or generated data, seeded and deterministic. "
                    "Shows a progress bar, logs every term of a composite, and writes metrics.json, "
                    "metrics.csv and curves.png into --out. Needs the demo extra: pip install 'lossforge[demo]'.",
        epilog=data_epilog() + "\n\nexample: lossforge train --loss 'focal(gamma=2)' --data digits-imbalanced",
    )
    p.add_argument("--loss", metavar="SPEC", required=True, help="loss spec, e.g. 'cross_entropy + 0.1*focal'")
    p.add_argument("--seed", metavar="S", type=int, default=0,
                   help="seed of the initial weights and the batch order (default: 0)")
    add_training_arguments(p, out="runs/train")
    p.set_defaults(func=run)


def training_setup(args: argparse.Namespace, specs: list[str], command: str) -> tuple[str, Any, Any]:
    """``(task, data, config)`` from the parsed options.

    Raises:
        CLIError: Code 2 for a bad spec, data name or option; code 1 for a missing dependency.
    """
    from ..demo.tasks import infer_task
    from ..demo.trainer import TrainConfig, load_for

    try:
        task = infer_task(specs, args.task, args.data)
        data = load_for(task, args.data, data_seed=args.data_seed, noise=args.noise, keep=args.keep,
                        outliers=args.outliers)
    except MissingDependencyError as exc:
        raise CLIError(str(exc), code=1) from exc
    except ValueError as exc:
        raise CLIError(f"lossforge {command}: {exc}") from exc
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=getattr(args, "seed", 0),
                         data_seed=args.data_seed)
    return task, data, config


def run(args: argparse.Namespace) -> int:
    from ..demo.trainer import prepare, run_train

    task, data, config = training_setup(args, [args.loss], "train")
    try:
        prepare([args.loss], task, data)
    except ValueError as exc:
        raise CLIError(f"lossforge train: {exc}") from exc
    try:
        run_train(args.loss, task, data, args.out, config, plot=args.plot, progress=args.progress)
    except MissingDependencyError as exc:
        raise CLIError(str(exc), code=1) from exc
    return 0
