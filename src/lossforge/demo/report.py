"""The final side-by-side table and ``metrics.json``."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from ._deps import optional
from .train import RunResult

__all__ = ["format_table", "print_table", "rounded", "table_rows", "write_metrics"]


def rounded(value: Any, digits: int = 6) -> Any:
    """Floats rounded (recursively through dicts and lists), so the JSON is short and stable."""
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def _span(classes: tuple[int, ...]) -> str:
    return f"{classes[0]}-{classes[-1]}" if list(classes) == list(range(classes[0], classes[-1] + 1)) else (
        ",".join(map(str, classes)))


def table_rows(runs: list[RunResult], rare_classes: tuple[int, ...], num_classes: int) -> list[list[str]]:
    """Header row, then one row per metric and per loss term, one column per run."""
    common = tuple(c for c in range(num_classes) if c not in rare_classes)
    rows = [["", *(r.label for r in runs)]]
    metrics = [
        ("accuracy", "accuracy"),
        ("macro-F1", "macro_f1"),
        (f"recall, common classes {_span(common)}", "common_recall"),
        (f"recall, rare classes {_span(rare_classes)}", "rare_recall"),
        ("calibration error (ECE)", "ece"),
    ]
    for title, key in metrics:
        rows.append([title, *(f"{r.final[key]:.3f}" for r in runs)])
    terms: list[str] = []
    for r in runs:
        terms += [t for t in r.final["train_loss"] if t != "total" and t not in terms]
    for term in [*terms, "total"]:
        rows.append([f"train loss: {term}",
                     *(f"{r.final['train_loss'][term]:.4f}" if term in r.final["train_loss"] else "-" for r in runs)])
    return rows


def format_table(rows: list[list[str]]) -> str:
    """Plain-text table: left-aligned first column, right-aligned values."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_table(rows: list[list[str]], *, title: str, use_rich: bool | None = None) -> None:
    """Print the table with rich or as plain text.

    ``use_rich=None``: rich when it is installed and stdout is a terminal.
    """
    if use_rich is None:
        use_rich = sys.stdout.isatty()
    box = optional("rich.table") if use_rich else None
    if box is None:
        print(title)
        print(format_table(rows))
        return
    from rich.console import Console

    table = box.Table(title=title, title_justify="left")
    table.add_column("")
    for header in rows[0][1:]:
        table.add_column(header, justify="right")
    for row in rows[1:]:
        table.add_row(*row)
    Console().print(table)


_NUMBER_LIST = re.compile(r"\[\s*((?:-?[\d.eE+-]+,\s*)*-?[\d.eE+-]+)\s*\]")


def write_metrics(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (rounded) as indented JSON, lists of numbers on one line; return the path."""
    text = json.dumps(rounded(payload), indent=2)
    text = _NUMBER_LIST.sub(lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    path.write_text(text + "\n", encoding="utf-8")
    return path
