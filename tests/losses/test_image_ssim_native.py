"""The native SSIM kernel (``lossforge/_native/ssim.c`` through ``losses/_ssim_native.py``): float32
SSIM / MS-SSIM on the CPU, value and gradient in one pass.

- Native against the torch path (the same loss with the native kernels unavailable) and against an
  independent float64 reference (full non-separable Gaussian kernel, autograd): values and
  gradients w.r.t. x, y or both; odd sizes, images as small as the window, several column tiles
  (the kernel works in tiles of 256 columns), window sizes 1-15 and sigmas, data_range, k1, k2.
- Constant and identical images; batch and channel dimensions; non-contiguous inputs (strided rows
  are read in place, other layouts copied) give the bits of their contiguous copies; the number of
  threads (planes split into row ranges) changes no bit; a second backward pass (which recomputes
  the gradient) equals the first.
- Where the kernel does not apply (float64, 3D, windows over 15 taps, ``LOSSFORGE_NATIVE=0``, no
  native library) the torch path runs, and gives the same values as before.
- The pooling and spreading helpers of the MS-SSIM pyramid against torch.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

import lossforge.functional as LF
from lossforge import _native
from lossforge.losses import _image, _ssim_native

from ._image_inputs import gaussian_window, image_pair

NATIVE = _native.library("ssim") is not None
needs_native = pytest.mark.skipif(not NATIVE, reason=f"native ssim kernel unavailable: {_native.status()['ssim']}")


class _TorchPath:
    """Within it the native kernels are unavailable (``_native.function`` returns None)."""

    def __enter__(self):
        self.saved = _native.function
        _native.function = lambda *a, **k: None

    def __exit__(self, *exc):
        _native.function = self.saved


@pytest.fixture
def torch_path():
    return _TorchPath()


_pair = functools.partial(image_pair, dtype=torch.float32)


_gauss = gaussian_window


def _ref_ssim(x, y, *, window=11, sigma=1.5, data_range=1.0, k1=0.01, k2=0.03, cs_only=False):
    """Per-(N, C) mean SSIM (or CS) in float64, full 2D Gaussian kernel, plain autograd."""
    g = _gauss(window, sigma)
    kernel = (g[:, None] * g[None, :]).expand(x.shape[1], 1, window, window)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2

    def f(t):
        return F.conv2d(t, kernel, groups=x.shape[1])

    mx, my = f(x), f(y)
    sxx, syy, sxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    s = (2 * mx * my + c1) / (mx**2 + my**2 + c1) * cs
    return (cs if cs_only else s).flatten(2).mean(-1)


def _ref_ms(x, y, *, window, weights, sigma=1.5):
    out = None
    for j, w in enumerate(weights):
        term = _ref_ssim(x, y, window=window, sigma=sigma, cs_only=j < len(weights) - 1).clamp_min(0) ** w
        out = term if out is None else out * term
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return 1 - out.mean(1)


def _run(fn, x, y, need="x", **kw):
    """The loss (reduction none) and the gradients of a weighted sum w.r.t. the inputs in ``need``."""
    x = x.detach().clone().requires_grad_(need in ("x", "both"))
    y = y.detach().clone().requires_grad_(need in ("y", "both"))
    loss = fn(x, y, reduction="none", **kw)
    w = torch.linspace(0.5, 1.5, loss.numel(), dtype=loss.dtype)
    wanted = [t for t in (x, y) if t.requires_grad]
    grads = torch.autograd.grad((loss * w).sum(), wanted) if wanted else ()
    return loss.detach(), [g.detach() for g in grads]


def _reference(x, y, need="x", ms=False, **kw):
    x, y = x.double(), y.double()
    if ms:
        weights = kw.pop("weights")
        return _run(lambda a, b, reduction: _ref_ms(a, b, weights=weights, **kw), x, y, need)
    window = kw.pop("window_size", 11)
    return _run(lambda a, b, reduction: 1 - _ref_ssim(a, b, window=window, **kw).mean(1), x, y, need)


def _close(ours, ref, *, value_atol=1e-6, grad_rtol=1e-5):
    loss, grads = ours
    ref_loss, ref_grads = ref
    torch.testing.assert_close(loss.double(), ref_loss, rtol=0, atol=value_atol)
    assert len(grads) == len(ref_grads)
    for g, r in zip(grads, ref_grads):
        scale = r.abs().max().item()
        torch.testing.assert_close(g.double(), r, rtol=0, atol=grad_rtol * scale + 1e-12)


# ------------------------------------------------------------------------------------------ values


SSIM_CASES = [
    ((2, 3, 37, 45), {"window_size": 7}),                       # odd sizes
    ((1, 1, 11, 11), {}),                                       # the image is the window
    ((1, 2, 11, 30), {}),                                       # one valid row
    ((2, 1, 30, 11), {}),                                       # one valid column
    ((1, 2, 40, 300), {}),                                      # two column tiles
    ((1, 1, 33, 600), {"window_size": 15, "sigma": 2.5}),       # three tiles, the largest window
    ((2, 1, 20, 600), {"window_size": 7, "sigma": 1.0}),        # three tiles
    ((3, 1, 24, 29), {"window_size": 1}),
    ((1, 2, 26, 19), {"window_size": 3, "sigma": 0.7}),
    ((2, 2, 31, 26), {"window_size": 5, "data_range": 255.0, "k1": 0.02, "k2": 0.05}),
    ((1, 1, 45, 50), {"window_size": 9, "sigma": 1.0}),
    ((1, 1, 30, 28), {"window_size": 13, "sigma": 3.0}),
]


@needs_native
@pytest.mark.parametrize("shape,kw", SSIM_CASES)
@pytest.mark.parametrize("need", ["x", "y", "both"])
def test_ssim_native_matches_torch_path_and_reference(torch_path, shape, kw, need):
    x, y = _pair(*shape, seed=1)
    scale = kw.get("data_range", 1.0)
    x, y = x * scale, y * scale
    native = _run(LF.ssim_loss, x, y, need, **kw)
    with torch_path:
        torch_ = _run(LF.ssim_loss, x, y, need, **kw)
    ref = _reference(x, y, need, **kw)
    # a 1-tap window: the variance is the difference of two equal float32 sums (both paths)
    tol = {"value_atol": 5e-5, "grad_rtol": 5e-5} if kw.get("window_size") == 1 else {}
    _close(native, ref, **tol)
    _close(torch_, ref, **tol)


@needs_native
def test_ssim_native_is_used():
    x, y = _pair(2, 3, 20, 20)
    window = _image._gaussian_window(11, 1.5, torch.float32, x.device)
    assert _ssim_native.kernel(x[0], y[0], window) is not None
    for a, b, win in [(x[0].double(), y[0].double(), window.double()),      # float64
                      (x[0], y[0], _image._gaussian_window(17, 1.5, torch.float32, x.device)),  # > 15 taps
                      (x, y, window)]:                                       # not (P, H, W)
        assert _ssim_native.kernel(a, b, win) is None


@needs_native
def test_constant_images(torch_path):
    """Finite value and gradient; SSIM of constants is the luminance term alone (to float32 rounding
    of the zero variance, relative to c2: both paths)."""
    x = torch.full((1, 1, 20, 24), 0.5)
    for a in (0.5, 0.25):
        y = torch.full((1, 1, 20, 24), a)
        c1 = 0.01**2
        want = 1 - (2 * 0.5 * a + c1) / (0.25 + a * a + c1)
        native = _run(LF.ssim_loss, x, y, "both", window_size=5)
        with torch_path:
            plain = _run(LF.ssim_loss, x, y, "both", window_size=5)
        for loss, grads in (native, plain):
            assert loss.item() == pytest.approx(want, abs=1e-4)
            assert all(torch.isfinite(g).all() for g in grads)


@needs_native
@pytest.mark.parametrize("need", ["x", "y", "both"])
def test_identical_images_give_exactly_zero_value_and_gradient(need):
    x, _ = _pair(2, 3, 40, 300, seed=2)
    loss, grads = _run(LF.ssim_loss, x, x, need)
    assert loss.eq(0).all()
    for g in grads:
        assert g.eq(0).all()
    loss, _ = _run(LF.ms_ssim_loss, x, x, need, window_size=3, weights=(0.3, 0.3, 0.4))
    assert loss.eq(0).all()


@needs_native
def test_batch_and_channels():
    x, y = _pair(3, 4, 21, 23, seed=3)
    per_image = LF.ssim_loss(x, y, window_size=5, reduction="none")
    assert per_image.shape == (3,)
    for n in range(3):
        torch.testing.assert_close(per_image[n:n + 1], LF.ssim_loss(x[n:n + 1], y[n:n + 1], window_size=5,
                                                                    reduction="none"), rtol=0, atol=0)
    torch.testing.assert_close(LF.ssim_loss(x, y, window_size=5), per_image.mean())


@needs_native
@pytest.mark.parametrize("name", ["ssim", "ms_ssim"])
def test_non_contiguous_inputs_give_the_bits_of_contiguous_ones(name):
    fn = getattr(LF, f"{name}_loss")
    kw = {"window_size": 5, "weights": (0.5, 0.5)} if name == "ms_ssim" else {"window_size": 5}
    big_x, big_y = _pair(2, 3, 40, 50, seed=4)
    views = [
        (big_x[:, :, 3:-4, 2:-5], big_y[:, :, 3:-4, 2:-5]),                   # strided rows, read in place
        (big_x.transpose(-1, -2), big_y.transpose(-1, -2)),                   # columns not contiguous
        (big_x.to(memory_format=torch.channels_last), big_y.to(memory_format=torch.channels_last)),
        (big_x[:, :1].expand(2, 3, 40, 50), big_y),                           # a broadcast input
    ]
    for a, b in views:
        got = _run(fn, a, b, "both", **kw)
        want = _run(fn, a.contiguous(), b.contiguous(), "both", **kw)
        assert torch.equal(got[0], want[0])
        for g, h in zip(got[1], want[1]):
            assert torch.equal(g, h)


@needs_native
@pytest.mark.parametrize("name", ["ssim", "ms_ssim"])
@pytest.mark.parametrize("shape", [(1, 1, 200, 300), (2, 3, 96, 70), (12, 1, 40, 40)])
def test_threads_change_no_bit(name, shape):
    """One plane is split into row ranges, a few planes share out; the result is the same."""
    fn = getattr(LF, f"{name}_loss")
    kw = {"window_size": 5, "weights": (0.5, 0.3, 0.2)} if name == "ms_ssim" else {}
    x, y = _pair(*shape, seed=5)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            results.append(_run(fn, x, y, "both", **kw))
    finally:
        torch.set_num_threads(before)
    for loss, grads in results[1:]:
        assert torch.equal(loss, results[0][0])
        for g, h in zip(grads, results[0][1]):
            assert torch.equal(g, h)


def test_row_ranges_split_the_planes():
    assert _ssim_native._units(12, 512, 11, 1) == [(0, 12, 0, 512)]
    assert _ssim_native._units(12, 512, 11, 2) == [(p, p + 2, 0, 512) for p in range(0, 12, 2)]
    units = _ssim_native._units(1, 200, 11, 4)
    assert [(r0, r1) for _, _, r0, r1 in units] == [(0, 50), (50, 100), (100, 150), (150, 200)]
    assert _ssim_native._units(2, 11, 11, 4) == [(0, 1, 0, 11), (1, 2, 0, 11)]


@needs_native
@pytest.mark.parametrize("name", ["ssim", "ms_ssim"])
def test_second_backward_equals_the_first(name):
    fn = getattr(LF, f"{name}_loss")
    kw = {"window_size": 3, "weights": (0.3, 0.3, 0.4)} if name == "ms_ssim" else {"window_size": 5}
    x, y = _pair(2, 2, 30, 28, seed=6)
    x.requires_grad_(True)
    y.requires_grad_(True)
    loss = fn(x, y, reduction="none", **kw)
    w = torch.tensor([0.7, 1.9])
    first = torch.autograd.grad((loss * w).sum(), (x, y), retain_graph=True)
    second = torch.autograd.grad((loss * w).sum(), (x, y))
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@needs_native
def test_no_grad_value_equals_grad_value():
    x, y = _pair(2, 3, 50, 270, seed=7)
    with torch.no_grad():
        a = LF.ssim_loss(x, y, reduction="none")
    b = LF.ssim_loss(x.requires_grad_(True), y, reduction="none")
    assert torch.equal(a, b.detach())


@needs_native
def test_half_inputs_take_the_native_float32_path(torch_path):
    x, y = _pair(2, 1, 24, 24, seed=8, dtype=torch.float16)
    a = LF.ssim_loss(x, y, window_size=5)
    with torch_path:
        b = LF.ssim_loss(x, y, window_size=5)
    assert a.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------------------- MS-SSIM


MS_CASES = [
    ((2, 3, 37, 45), {"window_size": 3, "weights": (0.2, 0.3, 0.5)}),
    ((1, 2, 180, 190), {}),
    ((2, 1, 64, 70), {"window_size": 5, "weights": (0.5, 0.5)}),
    ((13, 1, 24, 21), {"window_size": 3, "weights": (0.4, 0.6)}),          # several plane groups
    ((1, 1, 70, 600), {"window_size": 7, "sigma": 1.0, "weights": (0.25, 0.25, 0.25, 0.25)}),
]


@needs_native
@pytest.mark.parametrize("shape,kw", MS_CASES)
@pytest.mark.parametrize("need", ["x", "y", "both"])
def test_ms_ssim_native_matches_torch_path_and_reference(torch_path, shape, kw, need):
    x, y = _pair(*shape, seed=9)
    native = _run(LF.ms_ssim_loss, x, y, need, **kw)
    with torch_path:
        torch_ = _run(LF.ms_ssim_loss, x, y, need, **kw)
    ref_kw = dict(kw)
    ref_kw.setdefault("weights", _image.MS_SSIM_WEIGHTS)
    ref_kw.setdefault("window_size", 11)
    ref = _reference(x, y, need, ms=True, window=ref_kw.pop("window_size"), **ref_kw)
    _close(native, ref, value_atol=1e-5, grad_rtol=1e-3)
    _close(torch_, ref, value_atol=1e-5, grad_rtol=1e-3)


@needs_native
@pytest.mark.parametrize("shape", [(3, 20, 31), (2, 9, 8), (2, 3, 2)])
def test_avg_pool2_matches_torch(shape):
    x = torch.rand(*shape)
    torch.testing.assert_close(_ssim_native.avg_pool2(x), F.avg_pool2d(x, 2), rtol=1e-6, atol=1e-7)
    strided = torch.rand(shape[0], shape[1] + 3, shape[2] + 2)[:, 1:-2, 2:]
    torch.testing.assert_close(_ssim_native.avg_pool2(strided), F.avg_pool2d(strided, 2), rtol=1e-6, atol=1e-7)


@needs_native
@pytest.mark.parametrize("factor", [2, 4])
def test_spread_is_the_adjoint_of_pooling(factor):
    g = torch.rand(3, 5, 7)
    z = torch.rand(3, 5 * factor + 1, 7 * factor + 3)
    w = torch.tensor([0.5, 2.0, -1.0])
    want = z.clone()
    block = g.repeat_interleave(factor, 1).repeat_interleave(factor, 2) * w.view(3, 1, 1) / factor**2
    want[:, :5 * factor, :7 * factor] += block
    _ssim_native.spread(g, z, w, factor)
    torch.testing.assert_close(z, want, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------------------ fallback


@pytest.fixture
def native_off(monkeypatch):
    monkeypatch.setenv("LOSSFORGE_NATIVE", "0")
    _native._reset()
    yield
    _native._reset()  # the environment is restored after this: the next call looks again


@pytest.mark.parametrize("name", ["ssim", "ms_ssim"])
def test_native_off_takes_the_torch_path(native_off, torch_path, name):
    fn = getattr(LF, f"{name}_loss")
    kw = {"window_size": 3, "weights": (0.5, 0.5)} if name == "ms_ssim" else {"window_size": 5}
    x, y = _pair(2, 2, 30, 34, seed=10)
    window = _image._gaussian_window(5, 1.5, torch.float32, x.device)
    assert _ssim_native.kernel(x[0], y[0], window) is None
    off = _run(fn, x, y, "both", **kw)
    with torch_path:
        plain = _run(fn, x, y, "both", **kw)
    assert torch.equal(off[0], plain[0])
    for a, b in zip(off[1], plain[1]):
        assert torch.equal(a, b)
    if name == "ms_ssim":
        ref = _reference(x, y, "both", ms=True, window=3, weights=(0.5, 0.5))
    else:
        ref = _reference(x, y, "both", window_size=5)
    _close(off, ref, value_atol=1e-5, grad_rtol=1e-3)


@pytest.mark.parametrize("shape,kw", [((2, 1, 17, 18, 19), {"window_size": 3}),   # 3D
                                      ((1, 2, 30, 31), {"window_size": 17})])    # a window over 15 taps
def test_where_the_kernel_does_not_apply_the_torch_path_runs(torch_path, shape, kw):
    x, y = _pair(*shape, seed=11)
    a = _run(LF.ssim_loss, x, y, "both", **kw)
    with torch_path:
        b = _run(LF.ssim_loss, x, y, "both", **kw)
    assert torch.equal(a[0], b[0])
    for g, h in zip(a[1], b[1]):
        assert torch.equal(g, h)
