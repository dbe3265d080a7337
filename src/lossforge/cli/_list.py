"""``lossforge list [PATTERN] [--family F] [--json]``: the registered losses, one per line."""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import sys
from typing import Any

import lossforge as lf

from .._core.errors import did_you_mean
from .._core.registry import FAMILIES
from ._common import CLIError, arrow

__all__ = ["add_parser", "entries", "format_rows", "run"]


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "list", parents=parents, help="list the registered losses",
        description="List the registered losses: name, family, input and target kinds, unit of the "
                    "unreduced loss, one-line summary.",
        epilog="PATTERN is a substring of the name or an alias, or a glob ('*focal*', 'binary_*').",
    )
    p.add_argument("pattern", nargs="?", metavar="PATTERN", help="only names matching this")
    p.add_argument("--family", metavar="F", help=f"only this family ({', '.join(FAMILIES)})")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    p.set_defaults(func=run)


def _matches(spec: lf.LossSpec, pattern: str | None) -> bool:
    if not pattern:
        return True
    names = [spec.name, *spec.aliases]
    pat = pattern.lower()
    if any(ch in pat for ch in "*?["):
        return any(fnmatch.fnmatchcase(n, pat) for n in names)
    return any(pat in n for n in names)


def entries(pattern: str | None = None, family: str | None = None) -> list[dict[str, Any]]:
    """The matching registry entries as plain dicts (what ``--json`` prints)."""
    if family is not None and family not in FAMILIES:
        raise CLIError(f"lossforge list: --family must be one of {', '.join(FAMILIES)}, got {family!r}."
                       + did_you_mean(family, FAMILIES))
    out = []
    for name in lf.list_losses(family):
        spec = lf.get_loss(name)
        if not _matches(spec, pattern):
            continue
        out.append({
            "name": spec.name,
            "aliases": list(spec.aliases),
            "family": spec.family,
            "input_kind": spec.input_kind,
            "target_kind": spec.target_kind,
            "unit": spec.unit,
            "summary": spec.summary,
            "function": getattr(spec.function, "__name__", repr(spec.function)),
            "module": spec.module.__name__ if spec.module is not None else None,
            "reference": spec.reference,
        })
    return out


def _clip(text: str, width: int | None) -> str:
    return text if width is None or len(text) <= width else text[: max(width - 1, 0)] + "…"


def format_rows(found: list[dict[str, Any]], width: int | None = None) -> list[str]:
    """Aligned text lines: name, family, input→target kinds, unit, summary.

    The unit column is cut at 24 characters (``lossforge show`` has it in full); with
    ``width`` (a terminal's), each line is cut to fit it.
    """
    to = arrow()
    rows = [(e["name"], e["family"], f"{e['input_kind']}{to}{e['target_kind']}", _clip(e["unit"], 24),
             e["summary"]) for e in found]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    return [_clip(line, width) for line in lines]


def run(args: argparse.Namespace) -> int:
    found = entries(args.pattern, args.family)
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        for line in format_rows(found, width=shutil.get_terminal_size().columns if sys.stdout.isatty() else None):
            print(line)
    if not found:
        where = f" in family {args.family!r}" if args.family else ""
        what = f" matching {args.pattern!r}" if args.pattern else ""
        raise CLIError(f"lossforge list: no registered loss{what}{where}.", code=1)
    return 0
