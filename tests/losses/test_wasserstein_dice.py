"""Generalised Wasserstein Dice against a float64 loop and MONAI (where installed)."""

from __future__ import annotations

import pytest
import torch

import lossforge as lf
from lossforge.functional import generalized_wasserstein_dice_loss as gwd

M = torch.tensor([[0.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.5, 0.7], [1.0, 0.5, 0.0, 0.6], [1.0, 0.7, 0.6, 0.0]],
                 dtype=torch.float64)


def _reference(x: torch.Tensor, t: torch.Tensor, m: torch.Tensor, s_nr: float, s_dr: float) -> list[float]:
    out = []
    p = torch.softmax(x, 1)
    for n in range(x.shape[0]):
        tp = err = 0.0
        for i in range(t[n].numel()):
            label = int(t[n].reshape(-1)[i])
            pi = p[n].reshape(x.shape[1], -1)[:, i]
            w = sum(float(m[label, c] * pi[c]) for c in range(x.shape[1]))
            tp += float(m[label, 0]) * (1 - w)
            err += w
        out.append(1 - (2 * tp + s_nr) / (2 * tp + err + s_dr))
    return out


def test_matches_a_loop() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 4, 5, dtype=torch.float64, generator=g) * 2
    t = torch.randint(0, 4, (3, 4, 5), generator=g)
    u = gwd(x, t, distance_matrix=M, reduction="none")
    assert u.tolist() == pytest.approx(_reference(x, t, M, 1.0, 1.0), rel=1e-10)


def test_confusing_close_classes_costs_less_than_confusing_background() -> None:
    t = torch.full((1, 8), 1)
    to_close = torch.full((1, 4, 8), -5.0, dtype=torch.float64)
    to_close[:, 2] = 5.0  # predicts class 2 (distance 0.5 from 1)
    to_background = torch.full((1, 4, 8), -5.0, dtype=torch.float64)
    to_background[:, 0] = 5.0  # predicts the background (distance 1)
    assert float(gwd(to_close, t, distance_matrix=M)) < float(gwd(to_background, t, distance_matrix=M))


def test_background_only_image_predicted_as_background_is_perfect() -> None:
    x = torch.full((1, 4, 6), -30.0, dtype=torch.float64)
    x[:, 0] = 30.0
    assert float(gwd(x, torch.zeros(1, 6, dtype=torch.long), distance_matrix=M)) == pytest.approx(0.0, abs=1e-12)
    every_pixel_ignored = torch.full((1, 6), -100)
    assert float(gwd(x, every_pixel_ignored, distance_matrix=M, smooth_nr=0.0, smooth_dr=0.0)) == 0.0


def test_ignored_pixels_are_left_out() -> None:
    x = torch.randn(2, 4, 6, dtype=torch.float64)
    t = torch.randint(0, 4, (2, 6))
    ignored = t.clone()
    ignored[:, 4:] = -100
    torch.testing.assert_close(gwd(x, ignored, distance_matrix=M, reduction="none"),
                               gwd(x[..., :4], t[:, :4], distance_matrix=M, reduction="none"))


def test_image_with_every_pixel_ignored_is_left_out() -> None:
    x = torch.randn(2, 4, 6, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 4, (2, 6))
    t[0] = -100
    out = gwd(x, t, distance_matrix=M)
    torch.testing.assert_close(out, gwd(x[1:], t[1:], distance_matrix=M))
    t[1] = -100
    nothing = gwd(x, t, distance_matrix=M)
    (g,) = torch.autograd.grad(nothing, x)
    assert float(nothing.detach()) == 0.0 and float(g.abs().max()) == 0.0


def test_absent_class_gives_finite_gradients() -> None:
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 3, (2, 5, 5))  # class 3 absent
    (g,) = torch.autograd.grad(gwd(x, t, distance_matrix=M), x)
    assert torch.isfinite(g).all()


def test_module_and_spec() -> None:
    x, t = torch.randn(2, 4, 3, 3), torch.randint(0, 4, (2, 3, 3))
    module = lf.GeneralizedWassersteinDiceLoss(distance_matrix=M.float())
    torch.testing.assert_close(module(x, t), gwd(x, t, distance_matrix=M.float()))
    assert "distance_matrix" in dict(module.named_buffers())


def test_matches_monai() -> None:
    losses = pytest.importorskip("monai.losses")
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 6, 6, generator=g)
    t = torch.randint(0, 4, (2, 6, 6), generator=g)
    theirs = losses.GeneralizedWassersteinDiceLoss(dist_matrix=M.float(), reduction="mean")(x, t)
    ours = gwd(x, t, distance_matrix=M.float(), smooth_nr=1e-5, smooth_dr=1e-5)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
