"""SSIM / MS-SSIM machinery (issue 6 benchmark work): the strip-wise, layout-changing filters and
the closed-form gradient computed in the forward pass must not change values or gradients.

- Independent float64 reference: a full (non-separable) Gaussian kernel and autograd, MS-SSIM
  with ``F.avg_pool2d`` between scales (odd sizes floored), compared with tight tolerances.
- Strip sizes, pooled strips (MS-SSIM scales pooled strip by strip from the input), 2D and 3D.
- Gradient paths: x only, y only, both; a second backward pass through a retained graph (which
  recomputes the gradient) agrees bit for bit with the first.
- pytorch-msssim, where installed, for values *and* gradients. Parameter mapping:
  ``1 - pytorch_msssim.ssim(X, Y, data_range=L, win_size=w, win_sigma=s, K=(k1, k2),
  size_average=False)`` == ``ssim_loss(X, Y, data_range=L, window_size=w, sigma=s, k1=k1, k2=k2,
  reduction="none")`` and ``1 - pytorch_msssim.ms_ssim(...)`` == ``ms_ssim_loss(...)`` (same
  keywords; sizes divisible by 16, as pytorch-msssim pads odd sizes where lossforge floors them).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

import lossforge.functional as LF
from lossforge.losses import _image

from ._image_inputs import gaussian_window, image_pair

HAS_MSSSIM = importlib.util.find_spec("pytorch_msssim") is not None


_pair = image_pair


_gauss = gaussian_window


def _reference(x, y, *, window, sigma=1.5, c1=1e-4, c2=9e-4, cs_only=False):
    """Per-(N, C) mean SSIM (or CS), full Gaussian kernel, plain autograd."""
    g = _gauss(window, sigma).to(x.dtype)
    d = x.dim() - 2
    kernel = g
    for _ in range(d - 1):
        kernel = kernel.unsqueeze(-1) * g
    c = x.shape[1]
    conv = F.conv2d if d == 2 else F.conv3d

    def f(t):
        return conv(t, kernel.expand(c, 1, *kernel.shape), groups=c)

    mx, my = f(x), f(y)
    sxx, syy, sxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    s = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs
    return (cs if cs_only else s).flatten(2).mean(-1)


def _ms_reference(x, y, *, window, weights):
    pool = F.avg_pool2d if x.dim() == 4 else F.avg_pool3d
    terms = []
    for j, w in enumerate(weights):
        last = j == len(weights) - 1
        terms.append(_reference(x, y, window=window, cs_only=not last).clamp_min(0) ** w)
        x, y = pool(x, 2), pool(y, 2)
    out = terms[0]
    for t in terms[1:]:
        out = out * t
    return 1 - out.mean(1)


def _grads(loss, x, y, weights):
    return torch.autograd.grad((loss * weights).sum(), [t for t in (x, y) if t.requires_grad])


@pytest.mark.parametrize("shape,window,weights", [
    ((2, 2, 37, 45), 3, (0.2, 0.3, 0.5)),       # odd sizes: pooling floors them
    ((1, 3, 50, 33), 5, (0.6, 0.4)),
    ((2, 1, 17, 18, 19), 3, (0.5, 0.5)),         # 3D
])
@pytest.mark.parametrize("strip", [None, 1, 300])
def test_ms_ssim_values_and_gradients_match_reference(monkeypatch, shape, window, weights, strip):
    if strip is not None:
        monkeypatch.setattr(_image, "_STRIP_ELEMENTS", strip)
    x, y = _pair(*shape, seed=11)
    x.requires_grad_(True)
    y.requires_grad_(True)
    ours = LF.ms_ssim_loss(x, y, window_size=window, weights=weights, reduction="none")
    ref = _ms_reference(x, y, window=window, weights=weights)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    w = torch.linspace(0.5, 1.5, shape[0], dtype=torch.float64)
    for a, b in zip(_grads(ours, x, y, w), _grads(ref, x, y, w)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("need", ["x", "y", "both"])
@pytest.mark.parametrize("strip", [None, 1])
def test_ssim_gradient_paths(monkeypatch, need, strip):
    if strip is not None:
        monkeypatch.setattr(_image, "_STRIP_ELEMENTS", strip)
    x, y = _pair(3, 2, 31, 26, seed=12)
    x.requires_grad_(need in ("x", "both"))
    y.requires_grad_(need in ("y", "both"))
    ours = LF.ssim_loss(x, y, window_size=7, reduction="none")
    ref = 1 - _reference(x, y, window=7).mean(1)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    w = torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64)
    for a, b in zip(_grads(ours, x, y, w), _grads(ref, x, y, w)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name,kw", [("ssim", {"window_size": 5}),
                                     ("ms_ssim", {"window_size": 3, "weights": (0.3, 0.3, 0.4)})])
def test_second_backward_through_retained_graph_is_identical(name, kw):
    """The first backward pass uses the gradient computed in the forward pass (scaled in place);
    a second one recomputes it, with the same operations in the same order."""
    fn = getattr(LF, f"{name}_loss")
    x, y = _pair(2, 2, 30, 28, seed=13)
    x.requires_grad_(True)
    y.requires_grad_(True)
    loss = fn(x, y, reduction="none", **kw)
    w = torch.tensor([0.7, 1.9], dtype=torch.float64)
    first = torch.autograd.grad((loss * w).sum(), (x, y), retain_graph=True)
    second = torch.autograd.grad((loss * w).sum(), (x, y))
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_no_gradient_work_without_grad():
    x, y = _pair(2, 1, 20, 20, seed=14)
    with torch.no_grad():
        a = LF.ssim_loss(x.requires_grad_(True), y, window_size=5)
    b = LF.ssim_loss(x.detach(), y, window_size=5)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.skipif(not HAS_MSSSIM, reason="pytorch-msssim not installed")
@pytest.mark.parametrize("ms", [False, True])
def test_values_and_gradients_match_pytorch_msssim(ms):
    import pytorch_msssim

    x, y = _pair(2, 3, 192, 176, seed=15, noise=0.1)  # float64; sizes divisible by 16
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    if ms:
        want = 1 - pytorch_msssim.ms_ssim(xa, y, data_range=1.0, size_average=False)
        got = LF.ms_ssim_loss(xb, y, reduction="none")
    else:
        want = 1 - pytorch_msssim.ssim(xa, y, data_range=1.0, win_size=7, win_sigma=1.0, K=(0.02, 0.04),
                                       size_average=False)
        got = LF.ssim_loss(xb, y, window_size=7, sigma=1.0, k1=0.02, k2=0.04, reduction="none")
    # pytorch-msssim builds its window in float32: agreement to float32 precision
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    w = torch.tensor([0.4, 1.6], dtype=torch.float64)
    (ga,) = torch.autograd.grad((want * w).sum(), xa)
    (gb,) = torch.autograd.grad((got * w).sum(), xb)
    torch.testing.assert_close(gb, ga, rtol=1e-4, atol=1e-4 * ga.abs().max().item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("grad", [False, True])
def test_identical_images_give_exactly_zero(dtype, grad):
    x = torch.rand(2, 3, 64, 70, generator=torch.Generator().manual_seed(16), dtype=dtype)
    a = x.clone().requires_grad_(grad)
    assert LF.ssim_loss(a, x, reduction="none").eq(0).all()
    assert LF.ms_ssim_loss(a, x, window_size=3, weights=(0.3, 0.3, 0.4), reduction="none").eq(0).all()
