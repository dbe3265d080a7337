"""Asymmetric unified focal loss against a float64 loop of the paper's formulas."""

from __future__ import annotations

import math

import pytest
import torch

import lossforge as lf
from lossforge.functional import unified_focal_loss


def _reference(x: torch.Tensor, t: torch.Tensor, lam: float, delta: float, gamma: float, b: int,
               s: float) -> list[float]:
    out = []
    classes = x.shape[1]
    for n in range(x.shape[0]):
        p = torch.softmax(x[n].reshape(classes, -1), 0)
        labels = t[n].reshape(-1).tolist()
        focal = 0.0
        for i, label in enumerate(labels):
            pt = float(p[label, i])
            focal += (1 - delta) * (1 - pt) ** gamma * -math.log(pt) if label == b else delta * -math.log(pt)
        focal /= len(labels)
        ft = 0.0
        for c in range(classes):
            tp = sum(float(p[c, i]) for i, label in enumerate(labels) if label == c)
            fn = sum(1 - float(p[c, i]) for i, label in enumerate(labels) if label == c)
            fp = sum(float(p[c, i]) for i, label in enumerate(labels) if label != c)
            index = (tp + s) / (tp + delta * fn + (1 - delta) * fp + s)
            ft += (1 - index) if c == b else (1 - index) ** (1 - gamma)
        out.append(lam * focal + (1 - lam) * ft / classes)
    return out


@pytest.mark.parametrize(("lam", "delta", "gamma", "b", "s"),
                         [(0.5, 0.6, 0.5, 0, 1.0), (0.2, 0.7, 0.2, 2, 1e-5), (1.0, 0.5, 0.0, 0, 1.0),
                          (0.0, 0.6, 0.9, 1, 0.0)])
def test_matches_a_loop(lam: float, delta: float, gamma: float, b: int, s: float) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, 4, 4, dtype=torch.float64, generator=g) * 2
    t = torch.randint(0, 3, (3, 4, 4), generator=g)
    u = unified_focal_loss(x, t, weight_focal=lam, delta=delta, gamma=gamma, background=b, smooth=s,
                           reduction="none")
    assert u.tolist() == pytest.approx(_reference(x, t, lam, delta, gamma, b, s), rel=1e-9)


def test_perfect_segmentation_scores_zero_with_finite_gradient() -> None:
    x = torch.tensor([[[40.0, -40.0, -40.0], [-40.0, 40.0, 40.0]]], dtype=torch.float64, requires_grad=True)
    u = unified_focal_loss(x, torch.tensor([[0, 1, 1]]), smooth=0.0)
    u.backward()
    assert float(u.detach()) < 1e-12
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_ignored_pixels_and_images() -> None:
    x = torch.randn(2, 3, 6, dtype=torch.float64)
    t = torch.randint(0, 3, (2, 6))
    ignored = t.clone()
    ignored[:, 4:] = -100
    torch.testing.assert_close(unified_focal_loss(x, ignored, reduction="none"),
                               unified_focal_loss(x[..., :4], t[:, :4], reduction="none"))
    ignored[0] = -100  # every pixel of image 0: left out of the mean
    torch.testing.assert_close(unified_focal_loss(x, ignored), unified_focal_loss(x[1:, :, :4], t[1:, :4]))


def test_module_and_spec() -> None:
    x, t = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    torch.testing.assert_close(lf.build("unified_focal(gamma=0.2)")(x, t), unified_focal_loss(x, t, gamma=0.2))
