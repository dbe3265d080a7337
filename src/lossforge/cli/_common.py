"""Shared pieces of the CLI subcommands: the usage error and small formatting helpers."""

from __future__ import annotations

import sys

import lossforge as lf

from .._core.errors import did_you_mean

__all__ = ["CLIError", "arrow", "known_names", "unknown_loss"]


class CLIError(Exception):
    """A user error: printed as one line, the process exits with ``code`` (2: usage, 1: failure)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def arrow() -> str:
    """``"→"`` where stdout can print it, else ``"->"``."""
    try:
        "→".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "->"
    return "→"


def known_names() -> list[str]:
    """Every registered name and alias."""
    names = lf.list_losses()
    return [*names, *(a for n in names for a in lf.get_loss(n).aliases)]


def unknown_loss(command: str, name: str) -> CLIError:
    """The usage error for a name that is not registered, with "did you mean"."""
    return CLIError(f"lossforge {command}: unknown loss {name!r}.{did_you_mean(name, known_names())} "
                    f"'lossforge list' shows the registered losses.")
