"""LLM-scale losses: linear cross-entropy without the logits, vocabulary-parallel CE, distillation, preference."""

from __future__ import annotations

__all__: list[str] = []
