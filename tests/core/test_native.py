"""The optional native kernels (``lossforge/_native``): building, caching, switching off, and the fused
elementwise block sums they provide, held to the ATen path and to float64."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

import lossforge.functional as LF
from lossforge import _native
from lossforge.losses import _fused

F64 = torch.float64
# several native blocks and a ragged last one
N = 2 * _fused.NATIVE_BLOCK_ELEMENTS + 37

CASES = [
    (LF.mse_loss, {}, "mse"),
    (LF.l1_loss, {}, "l1"),
    (LF.huber_loss, {"delta": 0.7}, "huber"),
    (LF.smooth_l1_loss, {"beta": 0.5}, "smooth_l1"),
    (LF.smooth_l1_loss, {"beta": 0.0}, "l1"),
    (LF.log_cosh_loss, {}, "log_cosh"),
    (LF.charbonnier_loss, {"eps": 0.1}, "charbonnier"),
    (LF.cauchy_loss, {"scale": 0.7}, "cauchy"),
    (LF.welsch_loss, {"scale": 1.3}, "welsch"),
    (LF.geman_mcclure_loss, {"scale": 0.8}, "geman_mcclure"),
    (LF.tukey_biweight_loss, {"c": 2.0}, "tukey_biweight"),
    (LF.wing_loss, {"w": 2.0, "epsilon": 0.5}, "wing"),
]
IDS = [f"{fn.__name__}{kw}" for fn, kw, _ in CASES]
# losses of logits and a target in [0, 1]
BINARY_CASES = [
    (LF.binary_cross_entropy_with_logits, {}, "bce"),
    (LF.binary_cross_entropy_with_logits, {"label_smoothing": 0.1}, "bce"),
    (LF.binary_focal_loss, {}, "binary_focal_g2"),
    (LF.binary_focal_loss, {"gamma": 0.5, "alpha": None}, "binary_focal"),
    (LF.binary_focal_loss, {"gamma": 0.0, "alpha": None}, "bce"),
    (LF.binary_focal_loss, {"gamma": 3.0}, "binary_focal_int"),
    (LF.asymmetric_loss, {}, "asymmetric_clip_int"),
    (LF.asymmetric_loss, {"gamma_pos": 1.0, "gamma_neg": 3.0, "clip": 0.0}, "asymmetric_int"),
    (LF.asymmetric_loss, {"gamma_pos": 0.5, "gamma_neg": 2.5, "clip": 0.0}, "asymmetric"),
    (LF.asymmetric_loss, {"gamma_pos": 0.0, "gamma_neg": 1.5, "clip": 0.1}, "asymmetric_clip"),
]
BINARY_IDS = [f"{fn.__name__}{kw}" for fn, kw, _ in BINARY_CASES]
_BINARY = {fn for fn, _, _ in BINARY_CASES}


def _native_available() -> bool:
    return _native.library("elementwise") is not None


needs_native = pytest.mark.skipif(
    not _native_available() and os.environ.get("LOSSFORGE_NATIVE") != "1",
    reason="no C compiler: the native kernels are off (CI sets LOSSFORGE_NATIVE=1, which makes this an error)")


@pytest.fixture
def aten_only(monkeypatch):
    """Run the fused losses without the native kernels (their ATen block sums)."""
    monkeypatch.setattr(_fused, "_native_sum", lambda kernel, x, t: None)


def _value_and_grad(fn, kwargs, pred, target, reduction="mean"):
    p = pred.clone().requires_grad_(True)
    out = fn(p, target, reduction=reduction, **kwargs)
    out.backward()
    return out.detach(), p.grad


def _inputs(n: int = N, scale: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, generator=g) * scale, torch.randn(n, generator=g)


@needs_native
def test_native_library_builds_and_is_used():
    assert _native.status()["elementwise"].startswith("on:")
    lib = _native.library("elementwise")
    for _, _, name in CASES:
        assert hasattr(lib, f"lf_{name}_sum_f32")
    used = []
    original = _fused._native_block_sum

    def spy(*args, **kwargs):
        used.append(True)
        return original(*args, **kwargs)

    pred, target = _inputs(100)
    _fused._native_block_sum = spy
    try:
        LF.huber_loss(pred.requires_grad_(True), target).backward()
    finally:
        _fused._native_block_sum = original
    assert used


@needs_native
@pytest.mark.parametrize(("fn", "kwargs", "name"), CASES, ids=IDS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_native_equals_aten_and_float64(fn, kwargs, name, reduction, monkeypatch):
    pred, target = _inputs()
    value, grad = _value_and_grad(fn, kwargs, pred, target, reduction)
    ref, ref_grad = _value_and_grad(fn, kwargs, pred.double(), target.double(), reduction)
    torch.testing.assert_close(value.double(), ref, rtol=2e-6, atol=0)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-5, atol=1e-6 * float(ref_grad.abs().max()))
    monkeypatch.setattr(_fused, "_native_sum", lambda kernel, x, t: None)
    aten, aten_grad = _value_and_grad(fn, kwargs, pred, target, reduction)
    torch.testing.assert_close(value, aten, rtol=2e-6, atol=0)
    torch.testing.assert_close(grad, aten_grad, rtol=1e-5, atol=1e-6 * float(aten_grad.abs().max()))


def _binary_inputs(n: int = N, scale: float = 4.0, hard: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, generator=g) * scale
    t = torch.rand(n, generator=g)
    return x, t.round() if hard else t


@needs_native
@pytest.mark.parametrize(("fn", "kwargs", "name"), BINARY_CASES, ids=BINARY_IDS)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("scale", [4.0, 40.0])
def test_native_binary_equals_aten_and_float64(fn, kwargs, name, hard, scale, monkeypatch):
    x, t = _binary_inputs(hard=hard, scale=scale)
    value, grad = _value_and_grad(fn, kwargs, x, t)
    ref, ref_grad = _value_and_grad(fn, kwargs, x.double(), t.double())
    torch.testing.assert_close(value.double(), ref, rtol=1e-5, atol=0)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-4, atol=1e-6 * float(ref_grad.abs().max()))
    monkeypatch.setattr(_fused, "_native_sum", lambda kernel, x, t: None)
    aten, aten_grad = _value_and_grad(fn, kwargs, x, t)
    torch.testing.assert_close(value, aten, rtol=1e-5, atol=0)
    torch.testing.assert_close(grad, aten_grad, rtol=1e-4, atol=1e-6 * float(aten_grad.abs().max()))


@needs_native
def test_native_binary_kernels_are_used():
    seen = []
    original = _fused._native_sum

    def spy(kernel, x, t):
        seen.append(kernel.native)
        return original(kernel, x, t)

    x, t = _binary_inputs(100)
    _fused._native_sum = spy
    try:
        for fn, kwargs, _ in BINARY_CASES:
            fn(x, t, **kwargs)
    finally:
        _fused._native_sum = original
    assert seen == [name for _, _, name in BINARY_CASES]


@needs_native
@pytest.mark.parametrize(("fn", "kwargs", "name"), CASES, ids=IDS)
@pytest.mark.parametrize("n", [1, 15, 16, 17, 1000])
def test_native_small_and_ragged_sizes(fn, kwargs, name, n):
    pred, target = _inputs(n)
    value, grad = _value_and_grad(fn, kwargs, pred, target)
    ref, ref_grad = _value_and_grad(fn, kwargs, pred.double(), target.double())
    torch.testing.assert_close(value.double(), ref, rtol=2e-6, atol=1e-12)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-5, atol=1e-6 * float(ref_grad.abs().max()))


@needs_native
@pytest.mark.parametrize(("fn", "kwargs", "name"), CASES, ids=IDS)
def test_native_without_gradient_and_tiny_residuals(fn, kwargs, name):
    pred, target = _inputs(scale=1e-3)
    target = torch.zeros_like(target)
    with torch.no_grad():
        value = fn(pred, target, **kwargs)
    ref = fn(pred.double(), target.double(), reduction="none", **kwargs).mean()
    torch.testing.assert_close(value.double(), ref, rtol=1e-5, atol=0)


@needs_native
@pytest.mark.parametrize(("fn", "kwargs", "name"), CASES, ids=IDS)
def test_native_overflowing_block_is_redone_exactly(fn, kwargs, name):
    """Residuals whose square overflows float32 in one block: that block is done again by the exact
    ATen kernel, so the value and gradient match the ``"none"`` path."""
    if fn is LF.mse_loss:
        pytest.skip("the squared error itself overflows")
    pred, target = _inputs()
    pred[_fused.NATIVE_BLOCK_ELEMENTS + 3: _fused.NATIVE_BLOCK_ELEMENTS + 6] = torch.tensor([1e30, -1e30, 1e25])
    value, grad = _value_and_grad(fn, kwargs, pred, target)
    p = pred.clone().requires_grad_(True)
    fn(p, target, reduction="none", **kwargs).mean().backward()
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    ref = fn(pred.double(), target.double(), reduction="none", **kwargs).mean()
    torch.testing.assert_close(value.double(), ref, rtol=2e-6, atol=0)
    torch.testing.assert_close(grad, p.grad, rtol=1e-5, atol=1e-6 * float(p.grad.abs().max()))


@needs_native
@pytest.mark.parametrize(("fn", "kwargs", "name"), CASES, ids=IDS)
def test_native_propagates_nan(fn, kwargs, name):
    pred, target = _inputs(1000)
    pred[10] = float("nan")
    assert torch.isnan(fn(pred, target, **kwargs))


@needs_native
@pytest.mark.parametrize("n", [3 * _fused.NATIVE_BLOCK_ELEMENTS + 5, 40 * _fused.NATIVE_BLOCK_ELEMENTS + 3])
def test_native_is_deterministic_and_independent_of_threads(n):
    """Blocks of the minimum size, and the larger blocks of a larger input (``n // 16`` elements)."""
    pred, target = _inputs(n)
    threads = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2, 1, 2):
            torch.set_num_threads(count)
            results.append(_value_and_grad(LF.log_cosh_loss, {}, pred, target))
    finally:
        torch.set_num_threads(threads)
    for value, grad in results[1:]:
        assert torch.equal(value, results[0][0]) and torch.equal(grad, results[0][1])
    ref, ref_grad = _value_and_grad(LF.log_cosh_loss, {}, pred.double(), target.double())
    torch.testing.assert_close(results[0][0].double(), ref, rtol=2e-6, atol=0)
    torch.testing.assert_close(results[0][1].double(), ref_grad, rtol=1e-5, atol=1e-6 * float(ref_grad.abs().max()))


@needs_native
def test_native_non_contiguous_inputs():
    pred, target = _inputs(2 * 1000)
    p, t = pred[::2], target[1::2]
    value, grad = _value_and_grad(LF.welsch_loss, {}, p, t)
    ref, ref_grad = _value_and_grad(LF.welsch_loss, {}, p.double(), t.double())
    torch.testing.assert_close(value.double(), ref, rtol=2e-6, atol=0)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("fn", "kwargs", "name"), CASES, ids=IDS)
def test_aten_block_sums_without_native(fn, kwargs, name, aten_only):
    pred, target = _inputs()
    value, grad = _value_and_grad(fn, kwargs, pred, target)
    ref, ref_grad = _value_and_grad(fn, kwargs, pred.double(), target.double())
    torch.testing.assert_close(value.double(), ref, rtol=2e-6, atol=0)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-5, atol=1e-6 * float(ref_grad.abs().max()))


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with ``env`` added (the library state is per process)."""
    full = {k: v for k, v in os.environ.items() if k not in ("CC", "LOSSFORGE_NATIVE")}
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, check=False,
                          timeout=300)


STATUS = "from lossforge import _native; print(_native.status()['elementwise'])"
LOSS = ("import torch, lossforge.functional as LF; x = torch.randn(1000); "
        "print(float(LF.log_cosh_loss(x, torch.zeros(1000))))")


def test_switched_off_by_environment(tmp_path):
    done = _run(STATUS, LOSSFORGE_NATIVE="0", LOSSFORGE_CACHE_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("off: off (LOSSFORGE_NATIVE=0)")
    assert not list(tmp_path.iterdir())


def test_without_a_compiler_the_losses_still_work(tmp_path):
    code = f"{STATUS}; {LOSS}"
    done = _run(code, CC=str(tmp_path / "no-such-compiler"), PATH="/nonexistent", LOSSFORGE_CACHE_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("off: no C compiler found")
    assert float(done.stdout.split()[-1]) > 0


def test_a_failing_compiler_is_reported_and_required_mode_raises(tmp_path):
    failing = tmp_path / "cc"
    failing.write_text("#!/bin/sh\necho 'cc: broken' >&2\nexit 1\n")
    failing.chmod(0o755)
    done = _run(f"{STATUS}; {LOSS}", CC=str(failing), LOSSFORGE_CACHE_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("off: could not build elementwise.c") and "broken" in done.stdout
    done = _run(LOSS, CC=str(failing), LOSSFORGE_NATIVE="1", LOSSFORGE_CACHE_DIR=str(tmp_path))
    assert done.returncode != 0 and "NativeUnavailableError: LOSSFORGE_NATIVE=1 but could not build" in done.stderr


@needs_native
def test_built_once_then_loaded_from_the_cache(tmp_path):
    first = _run(STATUS, LOSSFORGE_CACHE_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("on: built ")
    built = sorted(p.name for p in tmp_path.glob("lossforge-elementwise-*"))
    assert len(built) == 1 and built[0].endswith(".so")
    second = _run(STATUS, LOSSFORGE_CACHE_DIR=str(tmp_path))
    assert second.stdout.startswith("on: loaded ")
    assert sorted(p.name for p in tmp_path.glob("lossforge-elementwise-*")) == built


def test_cli_native_reports_each_source(tmp_path):
    code = "import sys; from lossforge.cli import main; sys.exit(main(['native']))"
    done = _run(code, LOSSFORGE_NATIVE="0", LOSSFORGE_CACHE_DIR=str(tmp_path))
    assert done.returncode == 1
    assert "elementwise  off: off (LOSSFORGE_NATIVE=0)" in done.stdout
    if _native_available():
        done = _run(code.replace("'native'", "'native', '--json'"), LOSSFORGE_CACHE_DIR=str(tmp_path))
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["elementwise"].startswith("on: ")


@needs_native
def test_native_exp_is_faithful():
    """``lf_exp`` (the vectorisable exp of elementwise.c) against float64: within 1 ulp on normal
    results, correct overflow, gradual underflow, infinities and NaN."""
    import ctypes

    fn = _native.function("elementwise", "lf_exp_f32", None, (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64))
    special = [0.0, -0.0, float("inf"), -float("inf"), 88.72, 88.73, -87.33, -103.97, -103.98, 1e-30, -1e-30]
    x = torch.cat([torch.linspace(-110.0, 95.0, 400_001), torch.randn(100_000) * 5, torch.tensor(special)])
    out = torch.empty_like(x)
    fn(x.data_ptr(), out.data_ptr(), x.numel())
    ref = torch.exp(x.double())
    ref32 = ref.float()
    normal = torch.isfinite(ref32) & (ref32 >= torch.finfo(torch.float32).tiny)
    ulp = (torch.nextafter(ref32, torch.tensor(float("inf"))) - ref32).double()
    assert float(((out.double() - ref).abs() / ulp)[normal].max()) <= 1.0
    sub = ref32 < torch.finfo(torch.float32).tiny
    assert float((out.double() - ref)[sub].abs().max()) <= 1.5e-45  # within a subnormal step
    torch.testing.assert_close(out[-len(special):], ref32[-len(special):], rtol=1.2e-7, atol=0)
    nan = torch.tensor([float("nan")])
    fn(nan.data_ptr(), out.data_ptr(), 1)
    assert torch.isnan(out[0])


@needs_native
def test_native_log1p_is_accurate():
    """``lf_log1p`` against float64: within 1.5 ulp over (-1, 3.4e38), exact edge values."""
    import ctypes

    fn = _native.function("elementwise", "lf_log1p_f32", None, (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64))
    x = torch.cat([torch.linspace(-0.999999, 3.0, 400_001), torch.logspace(-40, 38, 100_001),
                   -torch.logspace(-40, -1e-7, 100_001), torch.rand(100_000) * 1e6])
    out = torch.empty_like(x)
    fn(x.data_ptr(), out.data_ptr(), x.numel())
    ref = torch.log1p(x.double())
    ref32 = ref.float()
    ulp = (torch.nextafter(ref32.abs(), torch.tensor(float("inf"))) - ref32.abs()).double()
    keep = ref32 != 0
    assert float(((out.double() - ref).abs() / ulp)[keep].max()) <= 1.5
    edges = torch.tensor([0.0, -0.0, -1.0, -1.5, float("inf"), float("nan"), 1e-45])
    got = torch.empty_like(edges)
    fn(edges.data_ptr(), got.data_ptr(), edges.numel())
    assert [got[i].item() for i in (0, 1, 2, 4)] == [0.0, -0.0, -float("inf"), float("inf")]
    assert torch.isnan(got[3]) and torch.isnan(got[5]) and got[6].item() == edges[6].item()
    assert math.copysign(1.0, got[1].item()) == -1.0


@needs_native
def test_a_damaged_cached_library_is_built_again(tmp_path):
    first = _run(STATUS, LOSSFORGE_CACHE_DIR=str(tmp_path))
    assert first.stdout.startswith("on: built "), first.stdout + first.stderr
    (cached,) = tmp_path.glob("lossforge-elementwise-*.so")
    cached.write_bytes(b"not a shared library")
    again = _run(STATUS, LOSSFORGE_CACHE_DIR=str(tmp_path))
    assert again.stdout.startswith("on: built "), again.stdout + again.stderr
    assert cached.read_bytes() != b"not a shared library"


@needs_native
def test_an_unwritable_cache_falls_back_to_the_temporary_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory would go")
    (tmp_path / "tmp").mkdir()
    done = _run(STATUS, LOSSFORGE_CACHE_DIR=str(blocker / "cache"), TMPDIR=str(tmp_path / "tmp"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("on: ") and str(tmp_path / "tmp" / "lossforge-cache") in done.stdout
