"""Image losses: structural similarity, PSNR, smoothness and frequency losses on (N, C, H, W) or (N, C, D, H, W)."""

from __future__ import annotations

__all__: list[str] = []
