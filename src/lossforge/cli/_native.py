"""``lossforge native [--json]``: whether the native kernels are in use, per C source, and why not."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .. import _native

__all__ = ["add_parser", "run"]


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "native", parents=parents, help="show whether the native kernels are built and used",
        description="Build (or load from the cache) each native C source of lossforge and say whether its "
                    "kernels are in use, where from, or why not. LOSSFORGE_NATIVE=0 turns them off; "
                    "LOSSFORGE_NATIVE=1 makes a failed build an error.",
    )
    p.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one line per native source; exit 1 when one is not in use."""
    try:
        status = _native.status()
    except _native.NativeUnavailableError as err:
        status = {"all": f"off: {err}"}
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        width = max(map(len, status), default=0)
        for name, line in status.items():
            print(f"{name:<{width}}  {line}")
    return 0 if all(line.startswith("on:") for line in status.values()) else 1
