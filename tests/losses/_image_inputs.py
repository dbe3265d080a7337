"""Inputs shared by the image-loss tests."""

from __future__ import annotations

import torch


def image_pair(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64,
               noise: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` in [0, 1]: ``y`` uniform, ``x`` = ``y`` plus Gaussian noise of std ``noise``, clamped."""
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(*shape, generator=g, dtype=torch.float64)
    x = (y + noise * torch.randn(*shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x.to(dtype), y.to(dtype)


def gaussian_window(size: int, sigma: float) -> torch.Tensor:
    """The normalised 1-D Gaussian window of ``size`` taps, in float64."""
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()
