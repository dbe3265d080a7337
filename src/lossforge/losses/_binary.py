"""Binary and multilabel classification losses: sigmoid logits and targets of the same shape."""

from __future__ import annotations

__all__: list[str] = []
