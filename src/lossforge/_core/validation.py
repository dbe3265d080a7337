"""Validation mode: value checks that need a device sync run only when it is on."""

from __future__ import annotations

from types import TracebackType

__all__ = ["validation", "validation_enabled", "set_validation"]

_state = {"enabled": False}


def validation_enabled() -> bool:
    """Whether value checks (class index in range, probabilities in [0, 1], ...) run."""
    return _state["enabled"]


def set_validation(enabled: bool) -> None:
    """Turn validation mode on or off for the whole process."""
    _state["enabled"] = bool(enabled)


class validation:  # noqa: N801 - used like a function and as a context manager
    """Turn value checks on or off.

    ``lossforge.validation(True)`` switches the mode on for the process;
    ``with lossforge.validation(True): ...`` switches it on for the block and
    restores the previous mode afterwards. The value checks force a device
    synchronisation, which is why they are off by default.

    Examples:
        >>> import lossforge as lf
        >>> with lf.validation(True):
        ...     lf.validation_enabled()
        True
    """

    def __init__(self, enabled: bool = True) -> None:
        self._previous = validation_enabled()
        set_validation(enabled)

    def __enter__(self) -> validation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        set_validation(self._previous)
