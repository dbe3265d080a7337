"""The native Lovász-softmax kernels (``lossforge/_native/lovasz.c``) against the torch path and a float64 reference.

With class-index targets, ``lovasz_softmax_loss`` runs the native kernels on the CPU for float32 (and
half) logits and the torch path of :class:`_LovaszSoftmaxFn` elsewhere. Both start from the same torch
softmax, so they sort the same errors in the same order (ties by position) and must agree to float32
rounding, ties included; both must match Berman et al.'s algorithm, run per unit in float64. The
torch fallback is tested with the kernels switched off.
"""

from __future__ import annotations

import pytest
import torch

import lossforge.functional as LF
from lossforge import _native
from lossforge.losses import _region_kernels as K

F32, F64 = torch.float32, torch.float64
CLOSE32 = dict(rtol=1e-5, atol=1e-6)


@pytest.fixture
def native():
    """Skip where the lovasz kernels cannot be built (``LOSSFORGE_NATIVE=1`` makes that an error instead)."""
    if _native.function("lovasz", *K._LV_ROWS) is None:
        pytest.skip(f"native lovasz kernels unavailable: {_native.status().get('lovasz')}")


def _torch_path():
    """A context in which every native function is unavailable (the torch path runs)."""

    class _Off:
        def __enter__(self):
            self.saved = _native.function
            _native.function = lambda *args, **kwargs: None

        def __exit__(self, *exc):
            _native.function = self.saved

    return _Off()


def _run(x, target, **kw):
    """``(loss, d loss.w / d logits)`` with a fixed random weight ``w`` of the loss's shape."""
    a = x.detach().clone().requires_grad_(True)
    u = LF.lovasz_softmax_loss(a, target, **kw)
    w = torch.rand(u.shape, generator=torch.Generator().manual_seed(5), dtype=F64).to(u.dtype)
    (u * w).sum().backward()
    return u.detach(), a.grad


def _berman(errors, fg):
    """Berman et al.'s algorithm for one unit (float64): sort, cumulative Jaccard, dot product."""
    if errors.numel() == 0:
        return errors.sum()
    e, perm = torch.sort(errors, descending=True, stable=True)
    gt = fg[perm].to(F64)
    gts = gt.sum()
    inter = gts - gt.cumsum(0)
    union = gts + (1 - gt).cumsum(0)
    jac = 1 - inter / union
    jac = torch.cat([jac[:1], jac[1:] - jac[:-1]])
    return (e * jac).sum()


def _reference(x, target, *, per_image=True, ignore_index=-100, classes=None):
    """Loss per unit ``(N, K)`` or ``(K,)`` in float64 (``reduction='none'``), with its autograd gradient."""
    x64 = x.detach().to(F64).requires_grad_(True)
    p = torch.softmax(x64, 1)
    n, c = p.shape[:2]
    sel = list(range(c)) if classes is None else list(classes)
    images = [(p[i].reshape(c, -1), target[i].reshape(-1)) for i in range(n)] if per_image else \
        [(p.movedim(1, 0).reshape(c, -1), target.reshape(-1))]
    units = []
    for prob, lab in images:
        keep = torch.ones_like(lab, dtype=torch.bool) if ignore_index is None else lab != ignore_index
        units.append(torch.stack([_berman(((lab[keep] == k).to(F64) - prob[k][keep]).abs(), lab[keep] == k)
                                  for k in sel]))
    return torch.stack(units) if per_image else units[0], x64


def _check_three_ways(x, target, **kw):
    """Native == torch path (to float32 rounding) and both == the float64 reference (values, gradients)."""
    u_nat, g_nat = _run(x, target, reduction="none", **kw)
    with _torch_path():
        u_torch, g_torch = _run(x, target, reduction="none", **kw)
    torch.testing.assert_close(u_nat, u_torch, **CLOSE32)
    torch.testing.assert_close(g_nat, g_torch, **CLOSE32)
    ref, x64 = _reference(x, target, **{k: v for k, v in kw.items() if k in ("per_image", "ignore_index", "classes")})
    torch.testing.assert_close(u_nat.to(F64), ref, rtol=1e-5, atol=1e-6)
    w = torch.rand(ref.shape, generator=torch.Generator().manual_seed(5), dtype=F64).to(F32).to(F64)
    (g_ref,) = torch.autograd.grad((ref * w).sum(), x64)
    torch.testing.assert_close(g_nat.to(F64), g_ref, rtol=1e-4, atol=1e-6)


def _inputs(n=3, c=4, shape=(9, 11), seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, *shape, generator=g) * scale
    t = torch.randint(0, c, (n, *shape), generator=g)
    return x, t


def test_native_path_is_taken(native):
    x, t = _inputs()
    out = K._lovasz_native_forward(x.reshape(3, 4, -1), t.reshape(3, -1), -100, None, True)
    assert out is not None
    assert out.u.shape == (12,) and out.s.shape == (3, 4, 99)
    with _torch_path():
        assert K._lovasz_native_forward(x.reshape(3, 4, -1), t.reshape(3, -1), -100, None, True) is None
    # float64 and empty inputs take the torch path
    assert K._lovasz_native_forward(x.reshape(3, 4, -1).double(), t.reshape(3, -1), -100, None, True) is None
    assert K._lovasz_native_forward(x[:, :, :0].reshape(3, 4, 0), t[:, :0].reshape(3, 0), -100, None, True) is None


@pytest.mark.parametrize("per_image", [True, False])
@pytest.mark.parametrize("scale", [0.5, 2.0, 8.0])
def test_native_matches_torch_and_reference(native, per_image, scale):
    for seed in range(3):
        x, t = _inputs(seed=seed, scale=scale, c=2 + seed)
        t[0, 0, :3] = -100
        _check_three_ways(x, t, per_image=per_image)


@pytest.mark.parametrize("per_image", [True, False])
def test_native_ignore_index_and_class_subset(native, per_image):
    x, t = _inputs(c=5, seed=3)
    t[torch.rand(t.shape, generator=torch.Generator().manual_seed(1)) < 0.3] = 255
    _check_three_ways(x, t, per_image=per_image, ignore_index=255)
    _check_three_ways(x, t, per_image=per_image, ignore_index=255, classes=[4, 1, 2])
    _check_three_ways(x, t, per_image=per_image, ignore_index=255, classes=[0])
    t2 = t.clone()
    t2[t2 == 255] = 0
    _check_three_ways(x, t2, per_image=per_image, ignore_index=None)


@pytest.mark.parametrize("per_image", [True, False])
def test_native_absent_single_present_and_all_ignored(native, per_image):
    x, t = _inputs(c=4, seed=4)
    t[1] = 2  # image 1: a single class present, the others absent
    t[2][t[2] == 3] = 0  # class 3 absent from image 2
    _check_three_ways(x, t, per_image=per_image)
    t[0] = -100  # image 0 all ignored
    _check_three_ways(x, t, per_image=per_image)
    everything = torch.full_like(t, -100)
    u_nat, g_nat = _run(x, everything, per_image=per_image)
    with _torch_path():
        u_torch, g_torch = _run(x, everything, per_image=per_image)
    assert u_nat == 0 and u_torch == 0
    assert torch.equal(g_nat, torch.zeros_like(g_nat)) and torch.equal(g_torch, g_nat)


@pytest.mark.parametrize("per_image", [True, False])
def test_native_ties_equal_the_torch_path(native, per_image):
    """Rounded logits (many equal errors, ties broken by position in both paths) and p == 1 (zero errors)."""
    for seed in range(6):
        x, t = _inputs(c=2 + seed % 3, seed=10 + seed, scale=1.5)
        x = x.round()
        if seed % 2:
            x[:, 0, 0] = 200.0
        t[torch.rand(t.shape, generator=torch.Generator().manual_seed(seed)) < 0.2] = -100
        kw = dict(per_image=per_image, reduction="none")
        u_nat, g_nat = _run(x, t, **kw)
        with _torch_path():
            u_torch, g_torch = _run(x, t, **kw)
        torch.testing.assert_close(u_nat, u_torch, **CLOSE32)
        torch.testing.assert_close(g_nat, g_torch, **CLOSE32)
        # the value is continuous at ties: equal to the float64 reference
        ref, _ = _reference(x, t, per_image=per_image)
        torch.testing.assert_close(u_nat.to(F64), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("per_image", [True, False])
def test_native_large_rows(native, per_image):
    """Rows with thousands of overlapping errors (the radix sort, not the small-row insertion sort)."""
    x, t = _inputs(n=2, c=3, shape=(48, 40), seed=20, scale=6.0)
    t[0, :5] = -100
    _check_three_ways(x, t, per_image=per_image)
    p, lab = torch.softmax(x[1], 0).reshape(3, -1), t[1].reshape(-1)  # image 1, class 0: its overlap
    fg = lab == 0
    e = torch.where(fg, 1 - p[0], p[0])
    assert int((fg & (e <= e[~fg].max())).sum() + (~fg & (e >= e[fg].min())).sum()) > 200


def test_native_3d_weights_reductions(native):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 3, 5, 6, 7, generator=g) * 3
    t = torch.randint(0, 3, (2, 5, 6, 7), generator=g)
    t[0, 0] = -100
    for per_image in (True, False):
        _check_three_ways(x, t, per_image=per_image)
        for kw in (dict(class_weight=torch.tensor([0.2, 1.0, 3.0])), dict(skip_empty=True),
                   dict(reduction="sum"), dict(classes=[2, 0], class_weight=torch.tensor([1.0, 2.0, 0.5]))):
            u_nat, g_nat = _run(x, t, per_image=per_image, **kw)
            with _torch_path():
                u_torch, g_torch = _run(x, t, per_image=per_image, **kw)
            torch.testing.assert_close(u_nat, u_torch, **CLOSE32)
            torch.testing.assert_close(g_nat, g_torch, **CLOSE32)


def test_native_half_threads_and_double_backward(native):
    x, t = _inputs(c=4, seed=7, shape=(16, 16))
    # half logits: computed in float32 by both paths
    u_nat, g_nat = _run(x.half(), t)
    with _torch_path():
        u_torch, g_torch = _run(x.half(), t)
    assert u_nat.dtype == F32 and g_nat.dtype == torch.float16
    torch.testing.assert_close(u_nat, u_torch, **CLOSE32)
    torch.testing.assert_close(g_nat, g_torch, rtol=1e-3, atol=1e-5)
    # the thread count does not change the result
    threads = torch.get_num_threads()
    try:
        for per_image in (True, False):
            torch.set_num_threads(1)
            one = _run(x, t, per_image=per_image, reduction="none")
            torch.set_num_threads(2)
            two = _run(x, t, per_image=per_image, reduction="none")
            assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1])
    finally:
        torch.set_num_threads(threads)
    # create_graph: the differentiable backward from the native forward's saved tensors
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(8))
    results = []
    for off in (False, True):
        a = x.clone().requires_grad_(True)
        if off:
            with _torch_path():
                (grad,) = torch.autograd.grad(LF.lovasz_softmax_loss(a, t), a, create_graph=True)
        else:
            (grad,) = torch.autograd.grad(LF.lovasz_softmax_loss(a, t), a, create_graph=True)
        (gg,) = torch.autograd.grad((grad * v).sum(), a)
        results.append((grad.detach(), gg))
    torch.testing.assert_close(results[0][0], results[1][0], **CLOSE32)
    torch.testing.assert_close(results[0][1], results[1][1], **CLOSE32)


def test_native_rejects_targets_out_of_range(native):
    x, t = _inputs(c=3)
    t[0, 0, 0] = 3
    with pytest.raises(ValueError, match="class indices"):
        K.lovasz_softmax_index(x.reshape(3, 3, -1), t.reshape(3, -1), -100, None, per_image=True)


def test_fallback_when_native_is_off(monkeypatch):
    """``LOSSFORGE_NATIVE=0``: the torch path runs and still matches the float64 reference."""
    monkeypatch.setenv("LOSSFORGE_NATIVE", "0")
    _native._reset()
    try:
        assert _native.function("lovasz", *K._LV_ROWS) is None
        x, t = _inputs(c=4, seed=9)
        t[0, :2] = -100
        called = []
        real = K._lovasz_signed_grad
        monkeypatch.setattr(K, "_lovasz_signed_grad", lambda *a, **k: called.append(1) or real(*a, **k))
        for per_image in (True, False):
            u, g = _run(x, t, per_image=per_image, reduction="none")
            ref, x64 = _reference(x, t, per_image=per_image)
            torch.testing.assert_close(u.to(F64), ref, rtol=1e-5, atol=1e-6)
            w = torch.rand(ref.shape, generator=torch.Generator().manual_seed(5), dtype=F64).to(F32).to(F64)
            (g_ref,) = torch.autograd.grad((ref * w).sum(), x64)
            torch.testing.assert_close(g.to(F64), g_ref, rtol=1e-4, atol=1e-6)
        assert len(called) == 2
    finally:
        monkeypatch.undo()  # the environment as it was, before the libraries are looked up again
        _native._reset()
