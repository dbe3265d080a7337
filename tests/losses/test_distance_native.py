"""The native distance transforms (``lossforge/_native/edt.c``) against the torch path and a brute force.

Both paths of :mod:`lossforge.losses._distance` must give the same exact squared distances: the native
kernels on the CPU, the torch passes where the kernels are off or unavailable (and on other devices,
under ``torch.compile``). Every case is checked against a brute force over all pairs of pixels; the
fallback path is tested with the kernels switched off, so that it stays covered on machines that build
them.
"""

from __future__ import annotations

import ctypes
import math

import pytest
import torch

import lossforge.functional as LF
from lossforge import _native
from lossforge.losses import _distance as D

F32, F64 = torch.float32, torch.float64


@pytest.fixture
def native():
    """Skip where the edt kernels cannot be built (``LOSSFORGE_NATIVE=1`` makes that an error instead)."""
    if _native.function("edt", "lf_edt_planes_f32", ctypes.c_int, D._PLANES_ARGS) is None:
        pytest.skip(f"native edt kernels unavailable: {_native.status().get('edt')}")


@pytest.fixture
def no_native(monkeypatch):
    """The torch path: every native function unavailable."""
    monkeypatch.setattr(_native, "function", lambda *args, **kwargs: None)


def _big(shape):
    return 4.0 * sum(s * s for s in shape[1:]) + 4.0


def _brute(sites, big):
    """Squared distance of every pixel to the nearest site of its image (all pairs), ``big`` without sites."""
    out = torch.full(sites.shape, big, dtype=F64)
    grid = torch.stack(torch.meshgrid(*[torch.arange(s) for s in sites.shape[1:]], indexing="ij"), -1)
    coords = grid.reshape(-1, sites.dim() - 1).to(F64)
    for b in range(sites.shape[0]):
        where = coords[sites[b].reshape(-1)]
        if len(where):
            out[b] = ((coords[:, None] - where[None]) ** 2).sum(-1).amin(1).reshape(sites.shape[1:])
    return out


def _masks(shape, seed):
    """A batch of masks of every kind: random at several densities, empty, full, one site, one corner."""
    g = torch.Generator().manual_seed(seed)
    n = shape[0]
    masks = [torch.rand(shape[1:], generator=g) > p for p in (0.5, 0.9, 0.99, 0.999)]
    masks += [torch.zeros(shape[1:], dtype=torch.bool), torch.ones(shape[1:], dtype=torch.bool)]
    one = torch.zeros(shape[1:], dtype=torch.bool)
    one.view(-1)[one.numel() // 2] = True
    corner = torch.zeros(shape[1:], dtype=torch.bool)
    corner.view(-1)[-1] = True
    masks += [one, corner]
    return torch.stack(masks[:n] if n <= len(masks) else masks * (n // len(masks) + 1))[:n]


SHAPES = [
    (8, 33),  # one spatial dimension: the planes kernel with h = 1
    (8, 17, 13),
    (8, 1, 7),
    (8, 7, 1),
    (8, 40, 3),  # fewer columns than a tile
    (8, 5, 131),  # long lines (several tiles, window and envelope)
    (8, 64, 64),
    (8, 9, 8, 7),
    (8, 20, 1, 21),
    (4, 3, 4, 5, 6),  # two strided passes
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_native_equals_torch_path_and_brute_force(native, shape):
    sites = _masks(shape, seed=len(shape) * 100 + shape[-1])
    big = _big(shape)
    ref = _brute(sites, big)
    for dtype in (F32, F64):  # float64 is what larger images use: the same kernels in double
        got = D._native_squared_edt(sites, dtype, big)
        assert got is not None and got.dtype == dtype
        torch.testing.assert_close(got.to(F64), ref, rtol=0, atol=0)
        torch.testing.assert_close(got, D._torch_squared_edt(sites, dtype, big), rtol=0, atol=0)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_fallback_equals_brute_force(no_native, shape):
    sites = _masks(shape, seed=len(shape) * 100 + shape[-1])
    assert D._native_squared_edt(sites, F32, _big(shape)) is None
    f, big = D._squared_edt(sites)
    torch.testing.assert_close(f.to(F64), _brute(sites, big), rtol=0, atol=0)


@pytest.mark.parametrize("windows", [(), (1,), (2, 4, 8, 16)])
def test_fallback_windows_and_envelope_agree(no_native, monkeypatch, windows):
    """The torch path's windowed minimum and lower envelope, in every split, equal the brute force."""
    monkeypatch.setattr(D, "_WINDOWS", windows)
    for shape in ((8, 11, 9, 10), (8, 5, 131), (8, 40, 37)):
        sites = _masks(shape, seed=7)
        f, big = D._squared_edt(sites)
        torch.testing.assert_close(f.to(F64), _brute(sites, big), rtol=0, atol=0)


def test_native_window_and_envelope_lines(native):
    """Lines the windowed minimum certifies, lines it gives up on (long runs without a site), and lines
    of every length around the window's reach (16) in one batch."""
    for n in (15, 16, 17, 18, 33, 34, 35, 100):
        sites = torch.zeros(6, n, 5, dtype=torch.bool)
        sites[0, 0, 0] = sites[0, -1, 4] = True  # sites only at the ends: the envelope
        sites[1, ::3] = True  # dense: certified at a small window
        sites[2, n // 2, 2] = True
        sites[3, :, 1] = True
        sites[4, torch.arange(0, n, 17)] = True  # a site every 17 rows: the widest window
        sites[5, 1:-1:5, ::2] = True
        big = _big(sites.shape)
        got = D._native_squared_edt(sites, F32, big)
        torch.testing.assert_close(got.to(F64), _brute(sites, big), rtol=0, atol=0)
        torch.testing.assert_close(got, D._torch_squared_edt(sites, F32, big), rtol=0, atol=0)


def test_native_float64_images(native):
    """An image whose sentinel is not exact in float32 (``big >= 2^22``) gets float64 on both paths."""
    sites = _masks((3, 2, 1500), seed=3)
    f, big = D._squared_edt(sites)
    assert f.dtype == F64 and big >= 2.0 ** 22
    torch.testing.assert_close(f, D._torch_squared_edt(sites, F64, big), rtol=0, atol=0)
    torch.testing.assert_close(f, _brute(sites, big), rtol=0, atol=0)


def test_native_complement_and_inputs(native):
    """``complement=True`` equals the transforms of the mask and its complement; a non-contiguous or
    non-bool mask (nonzero = site) equals its contiguous bool copy."""
    sites = _masks((8, 12, 10, 9), seed=11)
    big = _big(sites.shape)
    both = D._native_squared_edt(sites, F32, big, complement=True)
    torch.testing.assert_close(both, D._native_squared_edt(torch.cat([sites, ~sites]), F32, big), rtol=0, atol=0)
    view = sites.transpose(1, 3)
    want = D._native_squared_edt(view.contiguous(), F32, big)
    torch.testing.assert_close(D._native_squared_edt(view, F32, big), want, rtol=0, atol=0)
    counts = sites.to(torch.uint8) * 2
    torch.testing.assert_close(D._native_squared_edt(counts, F32, big, complement=True), both, rtol=0, atol=0)


def test_native_blocks_and_threads(native, monkeypatch):
    """Many small blocks on several threads give the same values as one thread (each line is computed
    the same way whichever thread runs it)."""
    sites = _masks((8, 20, 18, 17), seed=13)
    big = _big(sites.shape)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = D._native_squared_edt(sites, F32, big, complement=True)
        monkeypatch.setattr(D, "_NATIVE_BLOCK", 50)
        torch.set_num_threads(3)
        many = D._native_squared_edt(sites, F32, big, complement=True)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(many, one, rtol=0, atol=0)
    torch.testing.assert_close(one.to(F64), _brute(torch.cat([sites, ~sites]), big), rtol=0, atol=0)


def test_native_blocks_report_failed_allocation():
    with pytest.raises(MemoryError, match="could not allocate"):
        D._native_blocks(4, D._NATIVE_BLOCK, lambda i, j: -1 if i == 2 else 0)  # one item a block


@pytest.mark.parametrize("dtype", [F32, F64])
def test_native_root_is_correctly_rounded(native, dtype):
    """``min(sqrt(f), cap)`` for every integer squared distance and the sentinel, rounded once."""
    for fdtype in (F32, F64):
        f = torch.cat([torch.arange(0, 5000, dtype=fdtype), torch.tensor([1e5, 110596.0], dtype=fdtype)])
        got = D._native_root(f, 120.5, dtype)
        # math.sqrt is correctly rounded; rounding that double to float32 gives the float32 root
        want = torch.tensor([min(math.sqrt(v), 120.5) for v in f.tolist()], dtype=F64).to(dtype)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        # torch's CPU sqrt may be off by an ulp
        torch.testing.assert_close(got, f.to(dtype).sqrt().clamp(max=120.5), rtol=2 ** -22, atol=0)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_signed_and_unsigned_distance_paths_agree(native, monkeypatch, dtype):
    mask = _masks((8, 14, 11, 9), seed=17)
    native_sd, native_ud = D.signed_distance(mask, dtype), D.unsigned_distance(mask, dtype)
    monkeypatch.setattr(_native, "function", lambda *args, **kwargs: None)
    torch_sd, torch_ud = D.signed_distance(mask, dtype), D.unsigned_distance(mask, dtype)
    tol = dict(rtol=2 ** -22 if dtype == F32 else 2 ** -51, atol=0)
    torch.testing.assert_close(native_sd, torch_sd, **tol)
    torch.testing.assert_close(native_ud, torch_ud, **tol)
    diag = math.sqrt(14 ** 2 + 11 ** 2 + 9 ** 2)
    assert (native_ud[4] == torch.tensor(diag, dtype=dtype)).all()  # no foreground
    assert (native_sd[5] == torch.tensor(-diag, dtype=dtype)).all()  # no background


@pytest.mark.parametrize("loss", ["binary_boundary_loss", "binary_hausdorff_dt_loss", "boundary_loss",
                                  "hausdorff_dt_loss"])
def test_losses_and_gradients_agree_with_fallback(native, monkeypatch, loss):
    g = torch.Generator().manual_seed(19)
    if loss.startswith("binary"):
        logits = torch.randn(2, 2, 12, 10, 9, generator=g)
        target = (torch.rand(2, 2, 12, 10, 9, generator=g) > 0.6).float()
    else:
        logits = torch.randn(2, 3, 12, 10, 9, generator=g)
        target = torch.randint(0, 3, (2, 12, 10, 9), generator=g)
    fn = getattr(LF, loss)

    def run():
        x = logits.clone().requires_grad_(True)
        value = fn(x, target)
        value.backward()
        return value.detach(), x.grad

    value, grad = run()
    monkeypatch.setattr(_native, "function", lambda *args, **kwargs: None)
    torch.testing.assert_close(run(), (value, grad), rtol=1e-6, atol=1e-7)


def test_native_off_by_environment(monkeypatch):
    """``LOSSFORGE_NATIVE=0`` switches the kernels off: the torch path gives the exact distances."""
    monkeypatch.setenv("LOSSFORGE_NATIVE", "0")
    _native._reset()
    try:
        sites = _masks((8, 9, 8), seed=23)
        assert D._native_squared_edt(sites, F32, _big(sites.shape)) is None
        f, big = D._squared_edt(sites)
        torch.testing.assert_close(f.to(F64), _brute(sites, big), rtol=0, atol=0)
    finally:
        monkeypatch.undo()
        _native._reset()
