"""Metric-learning and self-supervised losses: embeddings ``(N, D)`` with labels, or two views."""

from __future__ import annotations

__all__: list[str] = []
