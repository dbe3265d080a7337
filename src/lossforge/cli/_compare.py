"""``lossforge compare SPEC SPEC ... [--data NAME] [--seeds 0,1,2]``: several losses, same data and seeds, one table."""

from __future__ import annotations

import argparse
from typing import Any

from ..demo import MissingDependencyError
from ._common import CLIError
from ._train import add_training_arguments, data_epilog, training_setup

__all__ = ["add_parser", "run"]


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, e.g. 0,1,2, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"must be distinct comma-separated integers, got {text!r}")
    return seeds


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "compare", parents=parents, help="train several loss specs on the same data and seeds; table and plot",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the task's model once per loss spec and seed, every spec from the same initial "
                    "weights and on the same batches for a given seed; print a side-by-side table of the test "
                    "metrics (mean ± sd over the seeds) and write comparison.json, comparison.csv and one plot, "
                    "comparison.png, into --out. Needs the demo extra: pip install 'lossforge[demo]'.",
        epilog=data_epilog() + "\n\nexample: lossforge compare cross_entropy 'focal(gamma=2)' class_balanced "
                               "--data digits-imbalanced --seeds 0,1,2",
    )
    p.add_argument("specs", nargs="+", metavar="SPEC", help="loss specs, e.g. cross_entropy 'focal(gamma=2)'")
    p.add_argument("--seeds", metavar="S,S,...", type=_seeds, default=(0,),
                   help="seeds of the initial weights and batch order, comma-separated (default: 0)")
    add_training_arguments(p, out="runs/compare")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo.trainer import prepare, run_compare

    if len(set(args.specs)) != len(args.specs):
        raise CLIError(f"lossforge compare: each SPEC must be given once, got {args.specs}.")
    task, data, config = training_setup(args, args.specs, "compare")
    try:
        prepare(args.specs, task, data)
    except ValueError as exc:
        raise CLIError(f"lossforge compare: {exc}") from exc
    try:
        run_compare(args.specs, task, data, args.out, config, seeds=args.seeds, plot=args.plot,
                    progress=args.progress)
    except MissingDependencyError as exc:
        raise CLIError(str(exc), code=1) from exc
    return 0
