"""Exceptions and the error-message template (CONVENTIONS §3)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = ["LossforgeError", "ShapeError", "did_you_mean", "message"]


class LossforgeError(Exception):
    """Base class of every exception that lossforge raises on its own."""


class ShapeError(LossforgeError, ValueError):
    """A tensor has the wrong shape. Carries ``expected`` and ``actual``."""

    def __init__(self, msg: str, *, expected: Any = None, actual: Any = None) -> None:
        super().__init__(msg)
        self.expected = expected
        self.actual = actual


def did_you_mean(value: object, options: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest option, or ``""``."""
    close = difflib.get_close_matches(str(value), list(options), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def message(loss: str, argument: str, requirement: str, actual: object, hint: str | None = None) -> str:
    """Format ``"{loss}: {argument} {requirement}, got {actual}." [Hint: {hint}.]``."""
    text = f"{loss}: {argument} {requirement}, got {actual}."
    if hint:
        text += f" Hint: {hint.rstrip('.')}."
    return text
