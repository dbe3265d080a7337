"""Segmentation and region losses: logits ``(N, C, *)`` with class indices, or binary logits per channel."""

from __future__ import annotations

__all__: list[str] = []
