"""Margin classification losses: multi-class and binary hinge losses on raw scores."""

from __future__ import annotations

__all__: list[str] = []
