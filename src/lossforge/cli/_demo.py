"""``lossforge demo``: train a small CNN on imbalanced digits with a built-in and a custom loss.

:mod:`lossforge.demo` imports scikit-learn, matplotlib and rich only inside the
functions that use them, so importing it here costs nothing extra.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..demo import DEFAULT_EPOCHS, QUICK_EPOCHS, DemoConfig, MissingDependencyError, run_demo
from ._common import CLIError

__all__ = ["add_parser", "run"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", parents=parents, help="train a small CNN on imbalanced digits: built-in vs custom loss",
        description="Train a small CNN on scikit-learn's digits (3x32x32, classes 5-9 kept at 10% in the "
                    "training set) twice from the same initial weights: (a) lf.CrossEntropyLoss(); (b) a "
                    "class-weighted cross-entropy plus 0.1 x a confidence penalty written with the toolkit. "
                    "Prints a progress bar per epoch and a side-by-side table; writes metrics.json and "
                    "curves.png. Needs the demo extra: pip install 'lossforge[demo]'.",
    )
    p.add_argument("--out", metavar="DIR", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--epochs", metavar="N", type=_positive_int, default=None,
                   help=f"epochs per run (default: {DEFAULT_EPOCHS}; {QUICK_EPOCHS} with --quick)")
    p.add_argument("--seed", metavar="S", type=int, default=0,
                   help="seed of the initial weights and the batch order (default: 0; the data split is fixed)")
    p.add_argument("--quick", action="store_true", help=f"{QUICK_EPOCHS} epochs: a few seconds, for tests")
    p.add_argument("--no-plot", dest="plot", action="store_false", help="skip curves.png (no matplotlib needed)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else DEFAULT_EPOCHS)
    try:
        run_demo(args.out, DemoConfig(epochs=epochs, seed=args.seed), plot=args.plot)
    except MissingDependencyError as exc:
        raise CLIError(str(exc), code=1) from exc
    return 0
