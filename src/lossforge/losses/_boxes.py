"""Detection-box regression losses: predicted and target boxes (N, 4) in xyxy or cxcywh format."""

from __future__ import annotations

__all__: list[str] = []
