"""Optional dependencies of the demo (the ``demo`` extra), imported only when needed."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingDependencyError", "optional", "require"]

INSTALL_HINT = "pip install 'lossforge[demo]'"


class MissingDependencyError(ImportError):
    """An optional package the demo needs is not installed; the message names the extra to install."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` with a one-line install hint."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        name = {"sklearn": "scikit-learn"}.get(package, package)
        raise MissingDependencyError(
            f"lossforge demo: {name} is needed {purpose} but is not installed. Hint: {INSTALL_HINT}."
        ) from None


def optional(module: str) -> ModuleType | None:
    """Import ``module`` if it is installed, else return ``None``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None
