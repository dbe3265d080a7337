"""A small CNN whose classifier size follows from the input shape."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["SmallCNN"]


class SmallCNN(nn.Module):
    """Three conv-ReLU-maxpool blocks and a two-layer classifier.

    The number of features entering the classifier is measured with one dummy
    forward pass through the convolutional part at construction, so any input
    size works (for 3x32x32: 64 channels x 4 x 4 after three 2x2 pools = 1024)
    and a changed layer cannot leave a stale hard-coded number behind.

    Args:
        input_shape: ``(channels, height, width)`` of one input.
        num_classes: Number of outputs (logits).
        width: Channels of the first block (doubled in each following block).
        hidden: Width of the hidden classifier layer.

    Raises:
        ValueError: If the input is too small for three 2x2 poolings (under 8x8).

    Examples:
        >>> SmallCNN((3, 32, 32)).flat_features
        1024
        >>> SmallCNN((1, 28, 20), num_classes=4)(torch.zeros(2, 1, 28, 20)).shape
        torch.Size([2, 4])
    """

    def __init__(self, input_shape: tuple[int, ...] = (3, 32, 32), num_classes: int = 10, *,
                 width: int = 16, hidden: int = 128) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"SmallCNN: input_shape must be (channels, height, width), got {tuple(input_shape)}.")
        channels, height, w = input_shape
        if min(height, w) < 8:
            raise ValueError(f"SmallCNN: input height and width must be at least 8 for three 2x2 poolings, "
                             f"got {height}x{w}.")
        blocks: list[nn.Module] = []
        c_in = channels
        for c_out in (width, 2 * width, 4 * width):
            blocks += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        with torch.no_grad():
            self.flat_features = int(self.features(torch.zeros(1, *input_shape)).numel())
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(self.flat_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
        self.input_shape = tuple(input_shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
