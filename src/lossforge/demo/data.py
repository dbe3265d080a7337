"""The demo's data: scikit-learn's handwritten digits as 3x32x32 images, with rare classes.

``sklearn.datasets.load_digits`` ships with scikit-learn (1797 grey 8x8 images of the
digits 0-9, about 180 per class), so nothing is downloaded. The images are

1. scaled to ``[0, 1]``, upsampled to ``size x size`` (bilinear) and repeated to 3 channels,
   the input shape of a small colour-image CNN;
2. split into train and test sets, stratified by class, with a fixed seed;
3. made imbalanced *in the training set only*: the common classes (0-4) keep every
   training image, the rare classes (5-9) keep ``keep_fraction`` of theirs (10%: about
   13 of about 126), picked with a seeded permutation;
4. standardised with the training set's mean and standard deviation.

The test set stays balanced (54 images per class), as in long-tailed benchmarks: with
10% of an imbalanced test set, each rare class would have 5 test images and its recall
could only move in steps of 20 points.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ._deps import require

__all__ = ["RARE_CLASSES", "DigitsData", "load_digits_data", "to_images"]

#: The digits the training set keeps only a fraction of.
RARE_CLASSES: tuple[int, ...] = (5, 6, 7, 8, 9)


@dataclass(frozen=True)
class DigitsData:
    """Train and test tensors of the demo.

    Attributes:
        x_train, x_test: Images ``(N, 3, size, size)``, float32, standardised.
        y_train, y_test: Class indices ``(N,)``, int64.
        num_classes: 10.
        rare_classes: The classes thinned out in the training set.
        keep_fraction: The fraction of their training images the rare classes keep.
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    rare_classes: tuple[int, ...]
    keep_fraction: float

    @property
    def image_shape(self) -> tuple[int, ...]:
        """``(channels, height, width)`` of one image."""
        return tuple(self.x_train.shape[1:])

    def train_counts(self) -> list[int]:
        """Training images per class."""
        return torch.bincount(self.y_train, minlength=self.num_classes).tolist()

    def test_counts(self) -> list[int]:
        """Test images per class."""
        return torch.bincount(self.y_test, minlength=self.num_classes).tolist()

    def describe(self) -> str:
        """One line: sizes and the imbalance."""
        tr = self.train_counts()
        rare = [tr[c] for c in self.rare_classes]
        common = [n for c, n in enumerate(tr) if c not in self.rare_classes]
        return (f"digits {'x'.join(map(str, self.image_shape))}: {len(self.y_train)} train "
                f"({min(common)}-{max(common)} per common class, {min(rare)}-{max(rare)} per rare class "
                f"{self.rare_classes[0]}-{self.rare_classes[-1]}), {len(self.y_test)} test (balanced)")


def to_images(images: Tensor, size: int = 32, channels: int = 3) -> Tensor:
    """Grey images ``(N, H, W)`` in ``[0, 1]`` -> ``(N, channels, size, size)`` by bilinear upsampling.

    Examples:
        >>> to_images(torch.zeros(2, 8, 8)).shape
        torch.Size([2, 3, 32, 32])
    """
    x = F.interpolate(images[:, None].float(), size=(size, size), mode="bilinear", align_corners=False)
    return x.repeat(1, channels, 1, 1)


def load_digits_data(
    *,
    size: int = 32,
    rare_classes: tuple[int, ...] = RARE_CLASSES,
    keep_fraction: float = 0.1,
    test_size: float = 0.3,
    seed: int = 0,
) -> DigitsData:
    """Load, upsample, split and thin out the digits (see the module docstring).

    Deterministic: the same arguments give the same tensors.

    Raises:
        MissingDependencyError: If scikit-learn is not installed.
        ValueError: If ``keep_fraction`` is not in ``(0, 1]``.
    """
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"load_digits_data: keep_fraction must be in (0, 1], got {keep_fraction}.")
    datasets = require("sklearn.datasets", "to load the digits")
    model_selection = require("sklearn.model_selection", "to split the digits")
    digits = datasets.load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32) / 16.0  # pixel values 0..16
    labels = torch.as_tensor(digits.target, dtype=torch.int64)
    all_idx = list(range(len(labels)))
    train_idx, test_idx = model_selection.train_test_split(
        all_idx, test_size=test_size, stratify=labels.numpy(), random_state=seed)
    train = torch.as_tensor(sorted(train_idx), dtype=torch.int64)
    test = torch.as_tensor(sorted(test_idx), dtype=torch.int64)

    gen = torch.Generator().manual_seed(seed)
    kept = []
    for c in range(10):
        idx = train[labels[train] == c]
        if c in rare_classes:
            k = max(1, round(keep_fraction * len(idx)))
            idx = idx[torch.randperm(len(idx), generator=gen)[:k]].sort().values
        kept.append(idx)
    train = torch.cat(kept).sort().values

    x = to_images(images, size)
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    return DigitsData(x_train=x[train], y_train=labels[train], x_test=x[test], y_test=labels[test],
                      num_classes=10, rare_classes=tuple(rare_classes), keep_fraction=keep_fraction)
