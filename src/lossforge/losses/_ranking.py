"""Ranking losses: pairwise and listwise losses on scores."""

from __future__ import annotations

__all__: list[str] = []
