"""Image losses: ssim, ms_ssim, psnr, total_variation, gradient_difference, spectral, local_ncc.

1. Conformance: every generic check of ``lossforge.verify`` on each loss of the family.
2. Independent references in float64: SSIM with a full 2-D (3-D) Gaussian kernel and autograd
   (no strips, no hand-written backward), MS-SSIM from it, loops for TV and the gradient
   difference, ``numpy``-free closed forms for PSNR and constant images.
3. Cross-checks where installed, with the parameter mapping:

   - pytorch-msssim: ``1 - ssim(X, Y, data_range=L, win_size=w, win_sigma=s, K=(k1, k2),
     size_average=False)`` == ``ssim_loss(X, Y, data_range=L, window_size=w, sigma=s, k1=k1, k2=k2,
     reduction="none")``; ``1 - ms_ssim(...)`` == ``ms_ssim_loss(...)`` for sizes divisible by 16.
   - kornia: ``2 * kornia.losses.ssim_loss(x, y, w, max_val=L, eps=0, padding="valid")`` ==
     ``ssim_loss(x, y, window_size=w, data_range=L)`` (kornia's DSSIM is ``(1 - SSIM) / 2``, averaged
     over pixels; kornia's sigma is fixed at 1.5); ``kornia.losses.psnr_loss(x, y, max_val=L)`` ==
     ``psnr_loss`` for a batch of one image; ``kornia.losses.total_variation(img, "sum")`` gives
     per-(N, C) sums that ``total_variation_loss`` divides by the number of differences per axis.
   - MONAI: ``JukeboxLoss(spatial_dims=d)`` == ``spectral_loss`` for one channel;
     ``LocalNormalizedCrossCorrelationLoss(spatial_dims=d, kernel_size=w, smooth_nr=0,
     smooth_dr=eps, reduction="none")`` is minus the correlation map with zero padding: its interior
     gives ``local_ncc_loss = 1 + mean(map[interior])``.
4. The battery: I1-I5 (constant images, identical images, images smaller than the window,
   MS-SSIM with negative contrast-structure terms, PSNR of identical images).
"""

from __future__ import annotations

import importlib.util
import re

import pytest
import torch
import torch.nn.functional as F

import lossforge as lf
import lossforge.functional as LF
from lossforge.losses import _image
from lossforge.verify import run_checks

from ._image_inputs import gaussian_window, image_pair

NAMES = ["ssim", "ms_ssim", "psnr", "total_variation", "gradient_difference", "spectral", "local_ncc"]
HAS_MSSSIM = importlib.util.find_spec("pytorch_msssim") is not None
HAS_KORNIA = importlib.util.find_spec("kornia") is not None
HAS_MONAI = importlib.util.find_spec("monai") is not None


_pair = image_pair


# ------------------------------------------------------------------------------------------ conformance


def test_family_is_complete():
    assert set(NAMES) <= set(lf.list_losses("image"))
    for name in NAMES:
        assert lf.get_loss(name).unit == "image"


@pytest.mark.parametrize("name", NAMES)
def test_conformance(name):
    failed = [str(r) for r in run_checks(lf.get_loss(name)) if not r.ok]
    assert not failed, "\n".join(failed)


# ------------------------------------------------------------------------------- SSIM: references


_gauss = gaussian_window


def ssim_reference(x, y, *, window=11, sigma=1.5, data_range=1.0, k1=0.01, k2=0.03, cs_only=False):
    """Per-(N, C) mean SSIM (or CS) with a full, non-separable Gaussian kernel."""
    g = _gauss(window, sigma).to(x.dtype)
    d = x.dim() - 2
    kernel = g
    for _ in range(d - 1):
        kernel = kernel.unsqueeze(-1) * g
    c = x.shape[1]
    w = kernel.expand(c, 1, *kernel.shape)
    conv = F.conv2d if d == 2 else F.conv3d

    def f(t):
        return conv(t, w, groups=c)

    mx, my = f(x), f(y)
    sxx, syy, sxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    s = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs
    return (cs if cs_only else s).flatten(2).mean(-1)


@pytest.mark.parametrize("shape", [(2, 2, 15, 13), (1, 2, 9, 8, 10)])
def test_ssim_value_and_gradients_match_reference(shape):
    window = 11 if len(shape) == 4 else 5
    x, y = _pair(*shape, seed=1)
    x.requires_grad_(True)
    y.requires_grad_(True)
    ours = LF.ssim_loss(x, y, window_size=window, reduction="none")
    ref = 1 - ssim_reference(x, y, window=window).mean(1)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    weights = torch.linspace(0.5, 1.5, shape[0], dtype=torch.float64)
    g_ours = torch.autograd.grad((ours * weights).sum(), (x, y))
    g_ref = torch.autograd.grad((ref * weights).sum(), (x, y))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)


def test_ssim_parameters_reach_the_formula():
    x, y = _pair(2, 1, 16, 16, seed=2)
    ours = LF.ssim_loss(x, y, window_size=7, sigma=2.0, data_range=2.0, k1=0.02, k2=0.05, reduction="none")
    ref = 1 - ssim_reference(x, y, window=7, sigma=2.0, data_range=2.0, k1=0.02, k2=0.05).mean(1)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_strips_do_not_change_the_result(monkeypatch):
    x, y = _pair(2, 2, 20, 17, seed=3)
    x.requires_grad_(True)
    whole = LF.ssim_loss(x, y, window_size=3, reduction="none")
    (g_whole,) = torch.autograd.grad(whole.sum(), x)
    monkeypatch.setattr(_image, "_STRIP_ELEMENTS", 1)  # the minimum: window_size output rows per strip
    assert [b - a for a, b in _image._strips(x.reshape(4, 20, 17), 3)] == [3, 3, 3, 3, 3, 3]
    strips = LF.ssim_loss(x, y, window_size=3, reduction="none")
    (g_strips,) = torch.autograd.grad(strips.sum(), x)
    torch.testing.assert_close(strips, whole, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g_strips, g_whole, rtol=1e-10, atol=1e-15)


def test_ssim_gradient_only_for_what_requires_it():
    x, y = _pair(1, 1, 12, 12, seed=4)
    y.requires_grad_(True)
    LF.ssim_loss(x, y, window_size=5).backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()


def test_ms_ssim_matches_reference():
    x, y = _pair(2, 2, 48, 40, seed=5)
    weights = (0.2, 0.3, 0.5)
    x.requires_grad_(True)
    ours = LF.ms_ssim_loss(x, y, window_size=5, weights=weights, reduction="none")
    a, b = x, y
    terms = []
    for j in range(3):
        terms.append((ssim_reference(a, b, window=5) if j == 2 else ssim_reference(a, b, window=5, cs_only=True))
                     .clamp_min(0) ** weights[j])
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    ref = 1 - (terms[0] * terms[1] * terms[2]).mean(1)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    g1 = torch.autograd.grad(ours.sum(), x)[0]
    g2 = torch.autograd.grad(ref.sum(), x)[0]
    torch.testing.assert_close(g1, g2, rtol=1e-9, atol=1e-14)


@pytest.mark.skipif(not HAS_MSSSIM, reason="pytorch-msssim not installed")
def test_ssim_and_ms_ssim_match_pytorch_msssim():
    import pytorch_msssim

    x, y = _pair(2, 3, 64, 48, seed=6, dtype=torch.float32)
    want = 1 - pytorch_msssim.ssim(x, y, data_range=1.0, size_average=False)
    torch.testing.assert_close(LF.ssim_loss(x, y, reduction="none"), want, rtol=1e-5, atol=1e-5)
    want = 1 - pytorch_msssim.ssim(x * 255, y * 255, data_range=255, win_size=7, win_sigma=1.0, K=(0.02, 0.04),
                                   size_average=False)
    got = LF.ssim_loss(x * 255, y * 255, data_range=255.0, window_size=7, sigma=1.0, k1=0.02, k2=0.04,
                       reduction="none")
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    x, y = _pair(2, 1, 192, 176, seed=7, dtype=torch.float32, noise=0.1)
    want = 1 - pytorch_msssim.ms_ssim(x, y, data_range=1.0, size_average=False)
    torch.testing.assert_close(LF.ms_ssim_loss(x, y, reduction="none"), want, rtol=1e-4, atol=1e-5)
    x3, y3 = _pair(2, 1, 14, 13, 12, seed=8, dtype=torch.float32)
    want = 1 - pytorch_msssim.ssim(x3, y3, data_range=1.0, win_size=5, size_average=False)
    torch.testing.assert_close(LF.ssim_loss(x3, y3, window_size=5, reduction="none"), want, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not HAS_KORNIA, reason="kornia not installed")
def test_ssim_psnr_tv_match_kornia():
    import kornia

    x, y = _pair(3, 2, 32, 30, seed=9, dtype=torch.float32)
    want = 2 * kornia.losses.ssim_loss(x, y, 9, max_val=1.0, eps=0.0, padding="valid")
    torch.testing.assert_close(LF.ssim_loss(x, y, window_size=9), want, rtol=1e-5, atol=1e-6)
    one_x, one_y = x[:1], y[:1]
    torch.testing.assert_close(LF.psnr_loss(one_x, one_y), kornia.losses.psnr_loss(one_x, one_y, 1.0),
                               rtol=1e-5, atol=1e-5)
    sums = kornia.losses.total_variation(x, reduction="sum")  # (N, C)
    h, w = x.shape[-2:]
    # kornia sums both axes together; split them to divide by each axis's count.
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().sum((-2, -1))
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().sum((-2, -1))
    torch.testing.assert_close(dh + dw, sums)
    want = (dh / ((h - 1) * w) + dw / (h * (w - 1))).mean(1)
    torch.testing.assert_close(LF.total_variation_loss(x, reduction="none"), want, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------ the battery


@pytest.mark.parametrize("a", [0.5, 0.25])
def test_constant_images_ssim(a):
    """I1: finite value and gradient; SSIM of constants is the luminance term alone."""
    x = torch.full((1, 1, 12, 12), 0.5, dtype=torch.float64, requires_grad=True)
    y = torch.full((1, 1, 12, 12), a, dtype=torch.float64)
    out = LF.ssim_loss(x, y, window_size=5)
    c1 = 0.01**2
    want = 1 - (2 * 0.5 * a + c1) / (0.25 + a * a + c1)
    assert out.item() == pytest.approx(want, abs=1e-12)
    out.backward()
    assert torch.isfinite(x.grad).all()
    ms = LF.ms_ssim_loss(torch.full((1, 1, 24, 24), 0.5, requires_grad=True), torch.full((1, 1, 24, 24), a),
                         window_size=3, weights=(0.5, 0.5))
    assert torch.isfinite(ms)


@pytest.mark.parametrize("name", ["ssim", "ms_ssim", "gradient_difference", "spectral"])
def test_identical_images_give_zero(name):
    """I2."""
    x, _ = _pair(2, 2, 32, 32, seed=10)
    kw = {"window_size": 3, "weights": (0.5, 0.5)} if name == "ms_ssim" else {}
    x.requires_grad_(True)
    out = lf.get_loss(name).function(x, x.detach(), reduction="none", **kw)
    torch.testing.assert_close(out, torch.zeros(2, dtype=torch.float64), atol=1e-12, rtol=0)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(("name", "kwargs", "size", "minimum"), [
    ("ssim", {}, (1, 1, 10, 40), 11),
    ("ssim", {"window_size": 7}, (1, 1, 6, 6, 6), 7),
    ("ms_ssim", {}, (1, 1, 175, 200), 176),
    ("ms_ssim", {"window_size": 3, "weights": (0.5, 0.5)}, (1, 1, 5, 9), 6),
    ("local_ncc", {"window_size": 5}, (1, 1, 4, 8), 5),
])
def test_images_smaller_than_the_window(name, kwargs, size, minimum):
    """I3: a clear error naming the minimum size."""
    x = torch.rand(size)
    pattern = rf"every spatial size >= {minimum} .*got spatial size {re.escape(str(tuple(size[2:])))}"
    with pytest.raises(ValueError, match=pattern):
        lf.get_loss(name).function(x, x, **kwargs)


def test_ms_ssim_negative_contrast_structure_is_not_nan():
    """I4: anti-correlated images make CS < 0; the clamp keeps the fractional powers finite."""
    x, _ = _pair(2, 1, 32, 32, seed=11)
    x.requires_grad_(True)
    y = 1 - x.detach()
    assert (ssim_reference(x.detach(), y, window=3, cs_only=True) < 0).all()
    out = LF.ms_ssim_loss(x, y, window_size=3, weights=(0.5, 0.5), reduction="none")
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.ones(2, dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_psnr_identical_images_capped():
    """I5: -10 log10(eps) dB, never -inf or NaN; zero gradient."""
    x = torch.rand(2, 3, 4, 4, requires_grad=True)
    out = LF.psnr_loss(x, x.detach(), reduction="none")
    torch.testing.assert_close(out, torch.full((2,), -100.0))
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert LF.psnr_loss(x.detach(), x.detach(), eps=1e-6).item() == pytest.approx(-60.0)


def test_psnr_closed_form():
    x, y = _pair(3, 2, 5, 4, seed=12)
    mse = (x - y).square().flatten(1).mean(1)
    torch.testing.assert_close(LF.psnr_loss(x, y, reduction="none"), 10 * torch.log10(mse))
    torch.testing.assert_close(LF.psnr_loss(2 * x, 2 * y, data_range=2.0, reduction="none"), 10 * torch.log10(mse))
    assert LF.psnr_loss(torch.zeros(1, 4), torch.full((1, 4), 0.1)).item() == pytest.approx(-20.0)


# ------------------------------------------------------------------------------- gradient-based losses


def _axis_means(x, fn):
    """Loop reference: sum over axes of the mean of fn(forward difference)."""
    total = torch.zeros(x.shape[0], dtype=x.dtype)
    for d in range(2, x.dim()):
        if x.shape[d] < 2:
            continue
        n = x.shape[d]
        diffs = [x.select(d, i + 1) - x.select(d, i) for i in range(n - 1)]
        total = total + torch.stack([fn(t).flatten(1).sum(1) for t in diffs]).sum(0) / (
            (n - 1) * x[0].numel() / n)
    return total


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (2, 1, 9), (1, 2, 3, 4, 5), (2, 1, 1, 6)])
@pytest.mark.parametrize("p", [1.0, 2.0, 1.5])
def test_total_variation_reference(shape, p):
    x = torch.randn(*shape, dtype=torch.float64)
    torch.testing.assert_close(LF.total_variation_loss(x, p=p, reduction="none"),
                               _axis_means(x, lambda t: t.abs() ** p))


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (2, 1, 9), (1, 2, 3, 4, 5)])
def test_gradient_difference_reference(shape):
    x, y = torch.randn(*shape, dtype=torch.float64), torch.randn(*shape, dtype=torch.float64)
    for alpha in (1.0, 2.0):
        got = LF.gradient_difference_loss(x, y, alpha=alpha, reduction="none")
        want = torch.zeros(shape[0], dtype=torch.float64)
        for d in range(2, len(shape)):
            gx, gy = x.diff(dim=d).abs(), y.diff(dim=d).abs()
            want = want + ((gy - gx).abs() ** alpha).flatten(1).mean(1)
        torch.testing.assert_close(got, want)


def test_total_variation_of_a_constant_and_a_single_pixel():
    x = torch.full((2, 1, 4, 4), 3.0, requires_grad=True)
    out = LF.total_variation_loss(x)
    assert out.item() == 0.0
    out.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    one = torch.rand(2, 3, 1, 1, requires_grad=True)
    assert LF.total_variation_loss(one).item() == 0.0


# ----------------------------------------------------------------------------------- spectral, NCC


def test_spectral_is_shift_invariant_and_parseval():
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    assert LF.spectral_loss(x, x.roll((3, 5), (-2, -1))).item() == pytest.approx(0.0, abs=1e-12)
    # Against a zero image: the mean squared magnitude is the mean square of the signal (Parseval).
    torch.testing.assert_close(LF.spectral_loss(x, torch.zeros_like(x), reduction="none"),
                               x.square().flatten(1).mean(1))


def test_spectral_gradient_finite_at_zero_frequency_components():
    x = torch.zeros(1, 1, 8, requires_grad=True)
    LF.spectral_loss(x, torch.ones(1, 1, 8)).backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.skipif(not HAS_MONAI, reason="MONAI not installed")
def test_spectral_matches_monai_jukebox_for_one_channel():
    from monai.losses import JukeboxLoss

    x, y = _pair(3, 1, 12, 10, seed=13, dtype=torch.float32)
    torch.testing.assert_close(LF.spectral_loss(x, y), JukeboxLoss(spatial_dims=2)(x, y), rtol=1e-5, atol=1e-6)
    x, y = _pair(2, 1, 6, 5, 4, seed=14, dtype=torch.float32)
    torch.testing.assert_close(LF.spectral_loss(x, y), JukeboxLoss(spatial_dims=3)(x, y), rtol=1e-5, atol=1e-6)


def _ncc_reference(x, y, w, eps):
    """Loop over windows in float64: squared correlation with floored variance sums."""
    n, _, h, wd = x.shape
    out = torch.zeros(n, dtype=torch.float64)
    count = 0
    for i in range(h - w + 1):
        for j in range(wd - w + 1):
            a = x[..., i:i + w, j:j + w].flatten(2)
            b = y[..., i:i + w, j:j + w].flatten(2)
            a0, b0 = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
            cross = (a0 * b0).sum(-1)
            va, vb = a0.square().sum(-1).clamp_min(eps), b0.square().sum(-1).clamp_min(eps)
            out = out + (cross**2 / (va * vb)).mean(1)
            count += 1
    return 1 - out / count


def test_local_ncc_reference_and_invariances():
    x, y = _pair(2, 2, 9, 8, seed=15)
    torch.testing.assert_close(LF.local_ncc_loss(x, y, window_size=3, reduction="none"), _ncc_reference(x, y, 3, 1e-5))
    assert LF.local_ncc_loss(x, 2 * x + 7, window_size=3).item() == pytest.approx(0.0, abs=1e-10)
    assert LF.local_ncc_loss(x, -x, window_size=3).item() == pytest.approx(0.0, abs=1e-10)  # squared
    flat = torch.full((1, 1, 6, 6), 0.3, dtype=torch.float64)
    assert LF.local_ncc_loss(flat, flat, window_size=3).item() == 1.0  # documented: constant windows


@pytest.mark.skipif(not HAS_MONAI, reason="MONAI not installed")
def test_local_ncc_matches_monai_interior():
    from monai.losses import LocalNormalizedCrossCorrelationLoss

    x, y = _pair(2, 1, 14, 12, seed=16, dtype=torch.float32)
    monai = LocalNormalizedCrossCorrelationLoss(spatial_dims=2, kernel_size=5, smooth_nr=0.0, smooth_dr=1e-5,
                                                reduction="none")(x, y)
    interior = monai[..., 2:-2, 2:-2].flatten(1).mean(1)
    torch.testing.assert_close(LF.local_ncc_loss(x, y, window_size=5, reduction="none"), 1 + interior,
                               rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------- bad inputs


def test_bad_inputs():
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match=r"ssim_loss: pred must have shape \(N, C, H, W\) or \(N, C, D, H, W\), "
                                         r"got \(1, 16\)"):
        LF.ssim_loss(x[0, 0, :1], x[0, 0, :1])
    with pytest.raises(ValueError, match=r"window_size must be a positive odd int, got 4"):
        lf.SSIMLoss(window_size=4)
    with pytest.raises(TypeError, match=r"window_size must be an int, got 11.0"):
        LF.ssim_loss(x, x, window_size=11.0)
    with pytest.raises(ValueError, match=r"ms_ssim_loss: weights must be >= 0"):
        LF.ms_ssim_loss(x, x, weights=(0.5, -1.0))
    with pytest.raises(ValueError, match=r"target must have the shape of pred \(1, 1, 16, 16\), got \(1, 1, 16, 15\)"):
        LF.gradient_difference_loss(x, x[..., :15])
    with pytest.raises(TypeError, match=r"pred must be a floating-point tensor, got dtype torch.int64"):
        LF.total_variation_loss(x.long())
    with pytest.raises(ValueError, match=r"total_variation_loss: pred must have shape \(N, C, L\) or"):
        LF.total_variation_loss(x[0, 0])


def test_half_inputs_compute_in_float32():
    x, y = _pair(2, 1, 16, 16, seed=17, dtype=torch.float32)
    for name in NAMES:
        kw = {"window_size": 3, "weights": (0.5, 0.5)} if name == "ms_ssim" else {}
        fn = lf.get_loss(name).function
        args = (x.half(),) if name == "total_variation" else (x.half(), y.half())
        ref = (x.half().float(),) if name == "total_variation" else (x.half().float(), y.half().float())
        out = fn(*args, **kw)
        assert out.dtype == torch.float32, name
        torch.testing.assert_close(out, fn(*ref, **kw), rtol=1e-4, atol=1e-5)
