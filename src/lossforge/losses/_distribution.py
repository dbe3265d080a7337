"""Distribution losses: divergences between distributions and between samples."""

from __future__ import annotations

__all__: list[str] = []
