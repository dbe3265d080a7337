"""Segmentation and region losses: independent float64 references (naive loops over images and classes),
the region battery R1-R7 (reliability.md §5.3), the fused kernels against plain autograd, the Lovász fast
path against a full sort, exact distance transforms, the shared softmax of ``dice + cross_entropy``,
deep supervision and class selection, and cross-checks against MONAI and kornia where their semantics match.

The generic checks (reductions, masks, weights, empty batch, gradcheck, half precision, module == function,
error inputs, ...) run for every registered loss in ``tests/test_conformance.py``.
"""

from __future__ import annotations

import itertools
import math
import warnings

import pytest
import torch

import lossforge as lf
import lossforge.functional as LF
from lossforge._core import activation
from lossforge.losses import _region_kernels as K
from lossforge.losses._distance import signed_distance, squared_edt, unsigned_distance
from lossforge.wrappers import ClassSelect, DeepSupervision, resize_target

F64 = torch.float64
# The shared region-loss battery: losses with per-class statistics and the family's options (classes=, per_image=,
# skip_empty=, soft labels). The whole-image scores with their own parameters have their own files:
# tests/losses/test_wasserstein_dice.py and test_unified_focal.py.
OWN_OPTIONS = {"generalized_wasserstein_dice", "unified_focal"}
SEG = [n for n in lf.list_losses("segmentation") if n not in OWN_OPTIONS]
MULTI = [n for n in SEG if lf.get_loss(n).target_kind == "index"]
BINARY = [n for n in SEG if lf.get_loss(n).target_kind == "binary"]
STATS = ["dice", "jaccard", "tversky", "focal_tversky", "mcc"]
CLOSE = dict(rtol=1e-10, atol=1e-12)


def fn(name):
    return lf.get_loss(name).function


def _inputs(n=3, c=4, shape=(6, 7), seed=0, scale=2.0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, c, *shape, generator=g, dtype=F64) * scale).to(dtype)
    target = torch.randint(0, c, (n, *shape), generator=g)
    return logits, target


def _binary_inputs(n=3, c=2, shape=(6, 7), seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, *shape, generator=g, dtype=F64) * scale
    target = (torch.rand(n, c, *shape, generator=g) > 0.5).to(F64)
    return logits, target


# ======================================================================= independent references


def _ref_units(p, g, keep, per_image):
    """Loop over images and classes: ``(I, P, T, K)`` per unit with ``I = sum min(p, t)``."""
    n, c = p.shape[:2]
    rows = []
    for i in range(n):
        row = []
        for k in range(c):
            pk, gk = p[i, k].reshape(-1), g[i, k].reshape(-1)
            kk = torch.ones_like(pk) if keep is None else keep[i, 0 if keep.shape[1] == 1 else k].reshape(-1).to(F64)
            row.append(torch.stack([(torch.minimum(pk, gk) * kk).sum(), (pk * kk).sum(), (gk * kk).sum(), kk.sum()]))
        rows.append(torch.stack(row))
    units = torch.stack(rows)  # (N, C, 4)
    return units if per_image else units.sum(0)


def _onehot(target, c, ignore_index=-100):
    keep = target != ignore_index
    safe = torch.where(keep, target, 0)
    g = torch.nn.functional.one_hot(safe, c).movedim(-1, 1).to(F64) * keep.unsqueeze(1)
    return g, keep.unsqueeze(1)


def _score(name, i, p, t, k, **kw):
    snr, sdr = kw.get("smooth_nr", 1.0), kw.get("smooth_dr", 1.0)
    if name == "dice":
        return 1 - (2 * i + snr) / (p + t + sdr)
    if name == "jaccard":
        return 1 - (i + snr) / (p + t - i + sdr)
    a, b = kw.get("alpha", 0.5 if name == "tversky" else 0.7), kw.get("beta", 0.5 if name == "tversky" else 0.3)
    if name in ("tversky", "focal_tversky"):
        ti = (i + snr) / (i + a * (p - i) + b * (t - i) + sdr)
        return (1 - ti) if name == "tversky" else (1 - ti) ** (1 / kw.get("gamma", 4 / 3))
    s = kw.get("smooth", 1.0)
    tp, fp, fn_, tn = i + s, p - i, t - i, k - p - t + i + s
    return 1 - (tp * tn - fp * fn_) / math.sqrt((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_))


def _ref_stats_loss(name, p, g, keep, per_image=True, **kw):
    units = _ref_units(p, g, keep, per_image)
    flat = units.reshape(-1, 4)
    u = torch.stack([torch.as_tensor(_score(name, *map(float, row), **kw), dtype=F64) for row in flat])
    return u.reshape(units.shape[:-1])


@pytest.mark.parametrize("name", STATS)
@pytest.mark.parametrize("per_image", [True, False])
def test_statistics_losses_match_loop_reference(name, per_image):
    logits, target = _inputs()
    target[0, :2] = -100
    kw = {"alpha": 0.2, "beta": 0.8} if "tversky" in name else {}
    got = fn(name)(logits, target, per_image=per_image, reduction="none", **kw)
    g, keep = _onehot(target, 4)
    ref = _ref_stats_loss(name, torch.softmax(logits, 1), g, keep, per_image, **kw)
    torch.testing.assert_close(got, ref, **CLOSE)
    b_logits, b_target = _binary_inputs(seed=1)
    got = fn(f"binary_{name}")(b_logits, b_target, per_image=per_image, reduction="none", **kw)
    ref = _ref_stats_loss(name, torch.sigmoid(b_logits), b_target, None, per_image, **kw)
    torch.testing.assert_close(got, ref, **CLOSE)


def test_generalized_dice_matches_loop_reference():
    logits, target = _inputs(c=3)
    target[1][target[1] == 2] = 0  # class 2 absent from image 1
    cw = torch.tensor([1.0, 2.0, 0.5], dtype=F64)
    for per_image, wt in itertools.product((True, False), ("square", "simple", "uniform")):
        got = LF.generalized_dice_loss(logits, target, per_image=per_image, weight_type=wt, class_weight=cw,
                                       reduction="none")
        g, _ = _onehot(target, 3)
        units = _ref_units(torch.softmax(logits, 1), g, None, per_image)
        units = units if per_image else units.unsqueeze(0)
        out = []
        for row in units:
            t = row[:, 2]
            w = {"square": 1 / t.clamp_min(1e-30) ** 2, "simple": 1 / t.clamp_min(1e-30),
                 "uniform": torch.ones_like(t)}[wt]
            w = torch.where(t > 0, w, w[t > 0].max())
            w = w / w.sum() * cw
            out.append(1 - (2 * (w * row[:, 0]).sum() + 1.0) / ((w * (row[:, 1] + row[:, 2])).sum() + 1.0))
        torch.testing.assert_close(got, torch.stack(out) if per_image else out[0], **CLOSE)


def _lovasz_reference(errors, fg):
    """Berman et al.'s algorithm for one unit: sort, cumulative Jaccard, dot product."""
    if errors.numel() == 0:
        return errors.sum()
    e, perm = torch.sort(errors, descending=True)
    gt = fg[perm].to(F64)
    gts = gt.sum()
    inter = gts - gt.cumsum(0)
    union = gts + (1 - gt).cumsum(0)
    jac = 1 - inter / union
    jac[1:] = jac[1:] - jac[:-1]
    return (e * jac).sum()


@pytest.mark.parametrize("per_image", [True, False])
def test_lovasz_softmax_matches_berman_loop(per_image):
    logits, target = _inputs(c=3, seed=2)
    target[0, 0] = -100
    target[1][target[1] == 1] = 0  # an absent class
    got = LF.lovasz_softmax_loss(logits, target, per_image=per_image, reduction="none")
    p = torch.softmax(logits, 1)
    images = [(p[i], target[i]) for i in range(3)] if per_image else [(p.movedim(1, 0), target)]
    units = []
    for prob, lab in images:  # prob (C, *), lab (*)
        keep = lab != -100
        units.append(torch.stack([_lovasz_reference(((lab[keep] == c).to(F64) - prob[c][keep]).abs(), lab[keep] == c)
                                  for c in range(3)]))
    ref = torch.stack(units) if per_image else units[0]
    torch.testing.assert_close(got, ref, **CLOSE)
    skipped = LF.lovasz_softmax_loss(logits, target, per_image=per_image, skip_empty=True, reduction="none")
    present = torch.stack([(target[i] == c).any() for i in range(3) for c in range(3)]).reshape(3, 3)
    present = present if per_image else present.any(0)
    torch.testing.assert_close(skipped, torch.where(present, ref, 0.0), **CLOSE)


def test_lovasz_hinge_matches_berman_loop():
    logits, target = _binary_inputs(c=2, seed=3)
    got = LF.lovasz_hinge_loss(logits, target, reduction="none")
    ref = torch.stack([torch.stack([_lovasz_reference(torch.relu(1 - logits[i, c] * (2 * target[i, c] - 1)).reshape(-1),
                                                      target[i, c].reshape(-1) > 0.5) for c in range(2)])
                       for i in range(3)])
    torch.testing.assert_close(got, ref, **CLOSE)


def _brute_distance(mask, to):
    """Distance of every pixel of ``mask`` (one image) to the nearest pixel where ``to`` is True (loops over pixels)."""
    grid = torch.meshgrid(*[torch.arange(s) for s in mask.shape], indexing="ij")
    coords = torch.stack(grid, -1).reshape(-1, mask.dim())
    sites = coords[to.reshape(-1)].to(F64)
    if len(sites) == 0:
        return None
    d = ((coords.to(F64)[:, None, :] - sites[None]) ** 2).sum(-1).min(1).values.sqrt()
    return d.reshape(mask.shape)


@pytest.mark.parametrize("shape,p", [((3, 17, 13), 0.96), ((2, 9, 8, 7), 0.9), ((2, 33), 0.7), ((1, 40, 3), 0.99)])
def test_squared_edt_is_exact(shape, p):
    g = torch.Generator().manual_seed(4)
    sites = torch.rand(*shape, generator=g) > p
    sites[0] = False  # an image without sites
    got = squared_edt(sites)
    assert torch.isinf(got[0]).all()
    for b in range(1, shape[0]):
        ref = _brute_distance(sites[b], sites[b])
        torch.testing.assert_close(got[b], (ref ** 2).round(), rtol=0, atol=0)


@pytest.mark.parametrize("windows", [(), (1,), (2, 4, 8, 16)])
def test_squared_edt_windows_and_envelope_agree(monkeypatch, windows):
    """The windowed min-plus (certified rows) and the lower envelope (the others) give the same exact
    distances: every split between them equals a brute force, lines longer than 126 (int16 first pass)
    included."""
    from lossforge.losses import _distance as D

    monkeypatch.setattr(D, "_WINDOWS", windows)
    g = torch.Generator().manual_seed(5)
    for shape, p in (((2, 11, 9, 10), 0.97), ((2, 11, 9, 10), 0.3), ((2, 5, 131), 0.98), ((1, 40, 37), 0.995)):
        sites = torch.rand(*shape, generator=g) > p
        sites[0, 0] = True  # noisy and sparse images side by side
        got = squared_edt(sites)
        for b in range(shape[0]):
            ref = _brute_distance(sites[b], sites[b])
            torch.testing.assert_close(got[b], (ref ** 2).round(), rtol=0, atol=0)


def test_signed_and_unsigned_distances():
    mask = torch.zeros(3, 6, 5, dtype=torch.bool)
    mask[0, 2:4, 1:3] = True
    mask[2] = True
    diag = math.hypot(6, 5)
    sd, ud = signed_distance(mask), unsigned_distance(mask)
    inside = _brute_distance(mask[0], ~mask[0])
    outside = _brute_distance(mask[0], mask[0])
    torch.testing.assert_close(sd[0], torch.where(mask[0], -inside, outside))
    torch.testing.assert_close(ud[0], torch.where(mask[0], inside, outside))
    assert (sd[1] == diag).all() and (sd[2] == -diag).all() and (ud[1] == diag).all() and (ud[2] == diag).all()


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("per_image", [True, False])
def test_boundary_and_hausdorff_match_brute_force(binary, per_image):
    if binary:
        logits, target = _binary_inputs(c=2, shape=(5, 6), seed=5)
        p, g = torch.sigmoid(logits), target
    else:
        logits, target = _inputs(c=3, shape=(5, 6), seed=5)
        p, g = torch.softmax(logits, 1), _onehot(target, 3)[0]
    n, c = p.shape[:2]
    diag = math.hypot(5, 6)
    b_units, h_units = torch.zeros(n, c, 2, dtype=F64), torch.zeros(n, c, 2, dtype=F64)
    for i, k in itertools.product(range(n), range(c)):
        m, pm = g[i, k] > 0.5, p[i, k] > 0.5

        def dist(a, b):
            d = _brute_distance(a, b)
            return torch.full(a.shape, diag, dtype=F64) if d is None else d

        phi = torch.where(m, -dist(m, ~m), dist(m, m))
        d_t = torch.where(m, dist(m, ~m), dist(m, m))
        d_p = torch.where(pm, dist(pm, ~pm), dist(pm, pm))
        b_units[i, k] = torch.stack([(phi * (p[i, k] - g[i, k])).sum(), torch.tensor(30.0, dtype=F64)])
        h_units[i, k] = torch.stack([((p[i, k] - g[i, k]) ** 2 * (d_p ** 2 + d_t ** 2)).sum(),
                                     torch.tensor(30.0, dtype=F64)])
    prefix = "binary_" if binary else ""
    for name, units in (("boundary", b_units), ("hausdorff_dt", h_units)):
        u = units if per_image else units.sum(0)
        got = fn(prefix + name)(logits, target, per_image=per_image, reduction="none")
        torch.testing.assert_close(got, u[..., 0] / u[..., 1], **CLOSE)


# ======================================================================= the region battery R1-R7

#: Largest value a loss reaches on an empty target with confident foreground (L = image diagonal).
_SIDE = 16
_DIAG = math.hypot(_SIDE, _SIDE)
_MAXIMUM = {"boundary": _DIAG, "hausdorff_dt": 2 * _DIAG ** 2, "lovasz_hinge": 21.0,
            "cl_dice": _SIDE / (_SIDE + 2)}  # a skeleton of S pixels against smooth = 1: S / (S + 2)


def _battery_inputs(name, kind):
    """Target empty for the evaluated class; logits: 'empty', 'full' (confident foreground), 'thin' (a confident
    foreground line) or 'perfect'."""
    shape = (2, _SIDE, _SIDE)
    if name in BINARY:
        target = torch.zeros(2, 1, _SIDE, _SIDE, dtype=F64)
        if kind == "perfect":
            target[:, :, 1:4, 2:5] = 1.0
            return target * 2e4 - 1e4, target, {}
        logits = torch.full_like(target, -30.0 if kind in ("empty", "thin") else 20.0)
        if kind == "thin":  # a one-pixel-wide false positive line (clDice sees thin structures)
            logits[..., _SIDE // 2, :] = 20.0
        return logits, target, {}
    target = torch.zeros(shape, dtype=torch.long)
    logits = torch.zeros(2, 3, _SIDE, _SIDE, dtype=F64)
    if kind == "perfect":
        target[:, 1:4, 2:5] = 1
        target[:, 0, :] = 2
        return torch.nn.functional.one_hot(target, 3).movedim(-1, 1).to(F64) * 2e4 - 1e4, target, {}
    logits[:, 0] = 15.0 if kind == "empty" else -15.0
    logits[:, 1] = -15.0 if kind == "empty" else 15.0
    logits[:, 2] = -15.0
    if kind == "thin":  # a one-pixel-wide false positive line (clDice sees thin structures)
        logits[:, 0], logits[:, 1] = 15.0, -15.0
        logits[:, 0, _SIDE // 2], logits[:, 1, _SIDE // 2] = -15.0, 15.0
    return logits, target, {"classes": [1]}


def _base(name):
    return name.removeprefix("binary_")


@pytest.mark.parametrize("name", SEG)
def test_R1_empty_target_empty_prediction_is_zero(name):
    logits, target, kw = _battery_inputs(name, "empty")
    x = logits.clone().requires_grad_(True)
    out = fn(name)(x, target, **kw)
    assert abs(out.item()) < 1e-6, out
    (g,) = torch.autograd.grad(out, x)
    assert torch.isfinite(g).all() and g.abs().max() < 1e-4


@pytest.mark.parametrize("name", SEG)
def test_R2_empty_target_confident_foreground_is_near_the_maximum(name):
    logits, target, kw = _battery_inputs(name, "thin" if "cl_dice" in name else "full")
    out = fn(name)(logits, target, **kw)
    top = _MAXIMUM.get(_base(name), 1.0)
    assert out.item() >= 0.9 * top, (out, top)
    if name != "generalized_dice":
        skipped = fn(name)(logits, target, skip_empty=True, **kw)  # the opt-in leaves the empty class out
        assert skipped.item() == 0.0


@pytest.mark.parametrize("name", SEG)
def test_R3_absent_class_finite_value_and_gradient(name):
    if name in BINARY:
        logits, target = _binary_inputs(seed=6)
        target[:, 1] = 0
    else:
        logits, target = _inputs(c=4, seed=6)
        target[target == 3] = 1
    x = logits.clone().requires_grad_(True)
    out = fn(name)(x, target)
    (g,) = torch.autograd.grad(out, x)
    assert torch.isfinite(out) and torch.isfinite(g).all()


@pytest.mark.parametrize("name", SEG)
def test_R4_all_pixels_ignored_is_a_connected_zero(name):
    logits, target = (_binary_inputs() if name in BINARY else _inputs())
    target = torch.full_like(target, 255)
    x = logits.clone().requires_grad_(True)
    out = fn(name)(x, target, ignore_index=255)
    assert out.dim() == 0 and out.item() == 0.0 and out.requires_grad
    (g,) = torch.autograd.grad(out, x)
    assert (g == 0).all()
    for per_image in (True, False):
        assert fn(name)(x, target, ignore_index=255, per_image=per_image, reduction="sum").item() == 0.0


_SMOOTH = {"dice": ("smooth_nr", "smooth_dr"), "jaccard": ("smooth_nr", "smooth_dr"),
           "tversky": ("smooth_nr", "smooth_dr"), "focal_tversky": ("smooth_nr", "smooth_dr"),
           "generalized_dice": ("smooth_nr", "smooth_dr"), "mcc": ("smooth",), "cl_dice": ("smooth",)}


@pytest.mark.parametrize("name", [n for n in SEG if _base(n) in _SMOOTH])
def test_R5_no_smoothing_finite_and_empty_policy_kept(name):
    zero = {k: 0.0 for k in _SMOOTH[_base(name)]}
    logits, target = (_binary_inputs() if name in BINARY else _inputs())
    x = logits.clone().requires_grad_(True)
    out = fn(name)(x, target, **zero)
    (g,) = torch.autograd.grad(out, x)
    assert torch.isfinite(out) and torch.isfinite(g).all()
    logits, target, kw = _battery_inputs(name, "empty")
    if name in BINARY:
        logits = torch.full_like(logits, -1e4)
    else:
        logits = logits * 1e3
    x = logits.clone().requires_grad_(True)
    out = fn(name)(x, target, **kw, **zero)
    (g,) = torch.autograd.grad(out, x)
    assert out.item() == 0.0 and torch.isfinite(g).all()


@pytest.mark.parametrize("name", SEG)
def test_R6_perfect_prediction_is_zero(name):
    logits, target, kw = _battery_inputs(name, "perfect")
    x = logits.clone().requires_grad_(True)
    out = fn(name)(x, target, **kw)
    top = 1e-6 * _MAXIMUM.get(_base(name), 1.0) if _base(name) != "lovasz_hinge" else 1e-6
    assert abs(out.item()) <= top, out
    (g,) = torch.autograd.grad(out, x)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("name", SEG)
def test_R7_soft_labels_equal_hard_labels_on_0_1(name):
    if name in BINARY:
        logits, target = _binary_inputs(seed=7)
        hard = fn(name)(logits, target > 0.5, reduction="none")
        soft = fn(name)(logits, target, reduction="none")
    else:
        logits, target = _inputs(seed=7)
        hard = fn(name)(logits, target, reduction="none")
        soft = fn(name)(logits, _onehot(target, 4)[0], ignore_index=None, reduction="none")
    torch.testing.assert_close(soft, hard, **CLOSE)


@pytest.mark.parametrize("name", ["dice", "jaccard", "tversky"])
def test_soft_labels_are_minimised_at_the_target(name):
    """With the fuzzy intersection min(p, t) the loss is smallest where p = t (MONAI #8094)."""
    g = torch.Generator().manual_seed(8)
    t = torch.rand(2, 1, 5, 5, generator=g, dtype=F64) * 0.8 + 0.1
    logit_t = torch.log(t / (1 - t))
    at_target = fn(f"binary_{name}")(logit_t, t, smooth_nr=0.0, smooth_dr=0.0)
    assert at_target.item() < 1e-12
    for shift in (-0.5, 0.5):
        assert fn(f"binary_{name}")(logit_t + shift, t, smooth_nr=0.0, smooth_dr=0.0).item() > 1e-3


# ======================================================================= options shared by every region loss


@pytest.mark.parametrize("name", SEG)
def test_classes_subset_weights_and_batch_statistics(name):
    logits, target = (_binary_inputs(c=3) if name in BINARY else _inputs(c=3))
    f = fn(name)
    full = f(logits, target, reduction="none")
    if name == "generalized_dice":
        sub = f(logits, target, classes=[0, 2], reduction="none")
        assert sub.shape == (3,) and torch.isfinite(sub).all()
        return
    sub = f(logits, target, classes=[2, 0], reduction="none")
    torch.testing.assert_close(sub, full[:, [2, 0]], **CLOSE)
    cw = torch.tensor([0.5, 2.0, 1.0], dtype=F64)
    mean = f(logits, target, class_weight=cw)
    torch.testing.assert_close(mean, (full * cw).sum() / (cw.sum() * 3), **CLOSE)
    batch = f(logits, target, per_image=False, reduction="none")
    assert batch.shape == (3,)
    torch.testing.assert_close(f(logits, target, per_image=False), batch.mean(), **CLOSE)
    # sync_dist is a no-op without torch.distributed
    torch.testing.assert_close(f(logits, target, per_image=False, sync_dist=True), batch.mean(), **CLOSE)
    torch.testing.assert_close(f(logits, target, sync_dist=True, reduction="none"), full, **CLOSE)


@pytest.mark.parametrize("name", ["dice", "binary_dice", "lovasz_softmax", "boundary", "binary_hausdorff_dt"])
def test_3d_equals_stacked_slices_for_per_image_sums(name):
    """A (N, C, 1, H, W) volume gives the same loss as the (N, C, H, W) image."""
    logits, target = (_binary_inputs() if name in BINARY else _inputs())
    flat = fn(name)(logits, target, reduction="none")
    vol = fn(name)(logits.unsqueeze(2), target.unsqueeze(2 if name in BINARY else 1), reduction="none")
    torch.testing.assert_close(vol, flat, **CLOSE)


def test_ignore_index_equals_the_loss_on_the_kept_pixels():
    logits, target = _inputs(n=1, shape=(1, 12))
    target[..., 4:] = 255
    ignored = LF.dice_loss(logits, target, ignore_index=255, reduction="none")
    kept = LF.dice_loss(logits[..., :4], target[..., :4], reduction="none")
    torch.testing.assert_close(ignored, kept, **CLOSE)
    b_logits, b_target = _binary_inputs(n=1, shape=(1, 12))
    b_target[..., 4:] = 255
    torch.testing.assert_close(LF.binary_jaccard_loss(b_logits, b_target, ignore_index=255, reduction="none"),
                               LF.binary_jaccard_loss(b_logits[..., :4], b_target[..., :4], reduction="none"), **CLOSE)


def test_skip_empty_leaves_empty_units_out():
    logits, target = _inputs(c=3)
    target[0][target[0] == 2] = 0
    none = LF.dice_loss(logits, target, reduction="none")
    skipped = LF.dice_loss(logits, target, skip_empty=True, reduction="none")
    assert skipped[0, 2] == 0 and none[0, 2] > 0
    torch.testing.assert_close(LF.dice_loss(logits, target, skip_empty=True), skipped.sum() / 8, **CLOSE)


def test_half_precision_is_computed_in_float32():
    logits, target = _inputs(dtype=torch.float16)
    x = logits.clone().requires_grad_(True)
    out = LF.dice_loss(x, target)
    assert out.dtype == torch.float32
    out.backward()
    assert x.grad.dtype == torch.float16 and torch.isfinite(x.grad).all()
    torch.testing.assert_close(out, LF.dice_loss(logits.float(), target), rtol=1e-5, atol=1e-6)


def test_sample_weight_shape_error_names_the_unit_shape():
    logits, target = _inputs()
    with pytest.raises(ValueError, match=r"dice_loss: sample_weight must broadcast to the unreduced loss shape \(3, 4"):
        LF.dice_loss(logits, target, sample_weight=torch.ones(3, 3, dtype=F64))
    with pytest.raises(ValueError, match=r"binary_dice_loss: classes must hold classes in \[0, 1\], got \[5\]"):
        LF.binary_dice_loss(*_binary_inputs(), classes=[5])
    with pytest.raises(TypeError, match="classes must be a sequence"):
        lf.DiceLoss(classes=3)
    with pytest.raises(ValueError, match=r"at least 2 classes.*Hint: for one foreground channel use binary_dice_loss"):
        LF.dice_loss(torch.randn(2, 1, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))


# ======================================================================= kernels against plain autograd


@pytest.mark.parametrize("block", [1 << 18, 8])
@pytest.mark.parametrize("with_keep", [False, True])
def test_fused_softmax_kernel_equals_plain_autograd(monkeypatch, block, with_keep):
    monkeypatch.setattr(K, "BLOCK_ELEMENTS", block)  # 8: each image cut into column blocks
    g = torch.Generator().manual_seed(9)
    x = torch.randn(2, 3, 9, generator=g, dtype=F64, requires_grad=True)
    t = torch.randint(0, 3, (2, 9), generator=g)
    ignore = None
    km = 1.0
    if with_keep:
        ignore = 255
        keep = torch.rand(2, 9, generator=g) > 0.2
        t = torch.where(keep, t, 255)
        km = keep.to(F64)

    def masked(outs):  # log p_t is a placeholder at ignored pixels
        return [o * km if i == 0 else o for i, o in enumerate(outs[:3])]

    a = masked(K._SoftmaxIndexFn.apply(x, t, ignore, True))
    b = masked(K._softmax_index_plain(x, t, ignore))
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, **CLOSE)
    w = [torch.randn(u.shape, generator=g, dtype=F64) for u in a]
    ga = torch.autograd.grad(sum((u * v).sum() for u, v in zip(a, w)), x, retain_graph=True)[0]
    gb = torch.autograd.grad(sum((u * v).sum() for u, v in zip(b, w)), x, retain_graph=True)[0]
    torch.testing.assert_close(ga, gb, **CLOSE)
    # each output alone (the backward's branches), and without log p_t
    for k in range(3):
        gk = torch.autograd.grad((a[k] * w[k]).sum(), x, retain_graph=True)[0]
        torch.testing.assert_close(gk, torch.autograd.grad((b[k] * w[k]).sum(), x, retain_graph=True)[0], **CLOSE)
    lean = K._SoftmaxIndexFn.apply(x, t, ignore, False)
    assert lean[0].numel() == 0
    torch.testing.assert_close(torch.autograd.grad((lean[1] * w[1]).sum() + (lean[2] * w[2]).sum(), x)[0],
                               torch.autograd.grad((b[1] * w[1]).sum() + (b[2] * w[2]).sum(), x)[0], **CLOSE)
    assert torch.autograd.gradcheck(lambda z: masked(K._SoftmaxIndexFn.apply(z, t, ignore, True)), (x,))
    assert torch.autograd.gradgradcheck(lambda z: masked(K._SoftmaxIndexFn.apply(z, t, ignore, True)), (x,))


@pytest.mark.parametrize("block", [1 << 18, 8])
def test_fused_sigmoid_kernel_equals_plain_autograd(monkeypatch, block):
    monkeypatch.setattr(K, "BLOCK_ELEMENTS", block)
    g = torch.Generator().manual_seed(10)
    x = torch.randn(5, 23, generator=g, dtype=F64, requires_grad=True)
    keep = torch.rand(5, 23, generator=g) > 0.3
    t = torch.rand(5, 23, generator=g, dtype=F64) * keep
    for kp in (None, keep):
        a, b = K._SigmoidFn.apply(x, t, kp), K._sigmoid_plain(x, t, kp)
        for u, v in zip(a, b):
            torch.testing.assert_close(u, v, **CLOSE)
        ga = torch.autograd.grad(a[0].sum() * 2 + a[1].sum(), x)[0]
        gb = torch.autograd.grad(b[0].sum() * 2 + b[1].sum(), x)[0]
        torch.testing.assert_close(ga, gb, **CLOSE)
        assert torch.autograd.gradgradcheck(lambda z, kp=kp: K._SigmoidFn.apply(z, t, kp)[:2], (x,))


def test_lovasz_fast_path_equals_full_sort():
    g = torch.Generator().manual_seed(11)
    for _ in range(4):
        e = torch.rand(7, 50, generator=g, dtype=F64, requires_grad=True)
        fg = torch.rand(7, 50, generator=g) > 0.6
        fg[0], fg[1] = False, True
        valid = torch.rand(7, 50, generator=g) > 0.2
        valid[2] = False
        for v in (None, valid):
            a, b = K._lovasz_fast(e, fg, v), K._lovasz_sorted(e, fg, v)
            torch.testing.assert_close(a, b, **CLOSE)
            torch.testing.assert_close(torch.autograd.grad(a.sum(), e)[0], torch.autograd.grad(b.sum(), e)[0], **CLOSE)


def _lovasz_general():
    """``lovasz_softmax_loss`` through the general path (probability maps and ``lovasz_rows``)."""
    from lossforge.losses import _segmentation as S

    def call(*args, **kwargs):
        fused = S._lovasz_softmax_fused
        S._lovasz_softmax_fused = lambda *a, **k: None
        try:
            return LF.lovasz_softmax_loss(*args, **kwargs)
        finally:
            S._lovasz_softmax_fused = fused

    return call


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_lovasz_softmax_fused_kernel_equals_general_path(dtype):
    """The fused kernel (one softmax, the overlap sorted once by a packed key, closed-form backward)
    gives the values and gradients of the general path: ties (rounded logits), probabilities of
    exactly 1, ignored pixels, absent classes, a class subset, per-image and whole-batch rows."""
    general = _lovasz_general()
    g = torch.Generator().manual_seed(12)
    close = CLOSE if dtype == F64 else dict(rtol=1e-5, atol=1e-6)
    for trial in range(24):
        c = 2 + trial % 4
        x = torch.randn(3, c, 5, 7, generator=g, dtype=F64) * [0.5, 1.0, 4.0, 30.0][trial % 4]
        if trial % 3 == 0:
            x = x.round()  # ties between errors
        if trial % 5 == 0:
            x[:, 0, 0] = 200.0  # p == 1: zero errors
        t = torch.randint(0, c, (3, 5, 7), generator=g)
        t[1][t[1] == c - 1] = 0  # an absent class in image 1
        if trial % 2 == 0:
            t[torch.rand(t.shape, generator=g) < 0.3] = -100
        kw = dict(per_image=trial % 4 < 2, reduction="none")
        if trial % 6 == 5 and c > 2:
            kw["classes"] = [c - 1, 0]
        a = x.to(dtype).requires_grad_(True)
        b = x.to(dtype).requires_grad_(True)
        ua, ub = LF.lovasz_softmax_loss(a, t, **kw), general(b, t, **kw)
        torch.testing.assert_close(ua, ub, **close)
        w = torch.rand(ua.shape, generator=g, dtype=F64).to(dtype)
        (ua * w).sum().backward()
        (ub * w).sum().backward()
        torch.testing.assert_close(a.grad, b.grad, **close)


def test_lovasz_softmax_fused_kernel_gradcheck():
    x = torch.randn(2, 3, 4, 5, dtype=F64, requires_grad=True)
    t = torch.randint(0, 3, (2, 4, 5))
    t[0, 0, 0] = -100
    for per_image in (True, False):
        kw = dict(per_image=per_image)
        assert torch.autograd.gradcheck(lambda z, kw=kw: LF.lovasz_softmax_loss(z, t, **kw), (x,))
        assert torch.autograd.gradgradcheck(lambda z, kw=kw: LF.lovasz_softmax_loss(z, t, classes=[2, 0], **kw),
                                            (x,))


# ======================================================================= shared softmax in compositions


def test_dice_plus_cross_entropy_shares_one_softmax_pass(monkeypatch):
    calls = []
    original = K._SoftmaxIndexFn.apply
    monkeypatch.setattr(K._SoftmaxIndexFn, "apply", lambda *a: calls.append(1) or original(*a))
    logits, target = _inputs(c=4)
    target[0, 0] = -100
    for spec in ("dice + cross_entropy", "cross_entropy + 0.5 * dice + jaccard"):
        calls.clear()
        criterion = lf.build(spec)
        x = logits.clone().requires_grad_(True)
        terms = criterion.terms(x, target)
        assert len(calls) == 1, spec  # one fused softmax node for every term
        terms["total"].backward()
        separate = {name: criterion[name](logits, target) for name in criterion.coefficients}
        for name, value in separate.items():
            torch.testing.assert_close(terms[name], value, **CLOSE)
        y = logits.clone().requires_grad_(True)
        sum(c * criterion[name](y, target) for name, c in criterion.coefficients.items()).backward()
        torch.testing.assert_close(x.grad, y.grad, **CLOSE)
    calls.clear()
    LF.dice_loss(logits, target) + LF.cross_entropy(logits, target)  # outside a composition: no cache
    assert len(calls) == 1 and not activation.sharing_active()


@pytest.mark.parametrize("spec", ["dice + focal", "dice + poly1", "jaccard + 0.5 * focal(gamma=0.5, alpha=0.25)",
                                  "focal + poly1(epsilon=-0.5) + cross_entropy + tversky"])
@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_dice_plus_focal_or_poly1_shares_one_softmax_pass(monkeypatch, spec, dtype):
    """focal and poly1 read ``log p_t`` from the shared node: one softmax pass for every term, and
    the lean standalone kernel (``target_log_prob``) is not called at all; values and gradients are
    those of the terms called one by one (which do not share)."""
    from lossforge.losses import _classification as C

    calls, lean = [], []
    original, original_lean = K._SoftmaxIndexFn.apply, C.target_log_prob
    monkeypatch.setattr(K._SoftmaxIndexFn, "apply", lambda *a: calls.append(1) or original(*a))
    monkeypatch.setattr(C, "target_log_prob", lambda *a: lean.append(1) or original_lean(*a))
    logits, target = _inputs(c=4, dtype=dtype)
    target[0, 0] = -100
    target[1, 2, 3] = -100
    criterion = lf.build(spec)
    x = logits.clone().requires_grad_(True)
    terms = criterion.terms(x, target)
    assert len(calls) == 1 and not lean, spec  # one fused softmax node for every term, no separate kernel
    terms["total"].backward()
    calls.clear()
    separate = {name: criterion[name](logits, target) for name in criterion.coefficients}
    assert len(calls) == sum(1 for name in criterion.coefficients if _is_region(criterion[name]))
    assert lean  # alone, focal and poly1 use their own kernel
    close = CLOSE if dtype == F64 else dict(rtol=2e-6, atol=1e-7)
    for name, value in separate.items():
        torch.testing.assert_close(terms[name], value, **close)
    y = logits.clone().requires_grad_(True)
    sum(c * criterion[name](y, target) for name, c in criterion.coefficients.items()).backward()
    torch.testing.assert_close(x.grad, y.grad, **close)


def _is_region(term):
    return isinstance(term, (lf.DiceLoss, lf.JaccardLoss, lf.TverskyLoss))


def test_shared_focal_keeps_extreme_logits_finite():
    """Logits of +-1e4 inside a composition: the shared ``log p_t`` is exact where ``p_t`` underflows."""
    logits = torch.tensor([[[1e4, -1e4, 0.0, 30.0]], [[-1e4, 1e4, 0.0, -30.0]], [[0.0, 0.0, 0.0, 5.0]]])
    logits = logits.permute(1, 0, 2).contiguous()  # (1, 3, 4)
    target = torch.tensor([[0, 0, 2, 1]])
    for spec in ("dice + focal(gamma=0.5)", "dice + poly1(epsilon=-1.0)"):
        criterion = lf.build(spec)
        x = logits.clone().requires_grad_(True)
        terms = criterion.terms(x, target)
        terms["total"].backward()
        name = spec.split(" + ")[1].split("(")[0]
        torch.testing.assert_close(terms[name], criterion[name](logits, target), rtol=1e-5, atol=1e-6)
        assert torch.isfinite(x.grad).all()


def test_shared_cross_entropy_keeps_class_weights_and_label_smoothing():
    logits, target = _inputs(c=4)
    cw = torch.tensor([1.0, 2.0, 0.5, 1.5], dtype=F64)
    for ce in (lf.CrossEntropyLoss(class_weight=cw), lf.CrossEntropyLoss(label_smoothing=0.1)):
        combo = lf.DiceLoss() + ce
        terms = combo.terms(logits, target)
        torch.testing.assert_close(terms["cross_entropy"], ce(logits, target), **CLOSE)


def test_cache_is_keyed_on_identity_and_version():
    x = torch.randn(2, 3)
    with activation.shared_activations():
        a = activation.cached("k", (x,), lambda: object())
        assert activation.cached("k", (x,), lambda: object()) is a
        x.add_(1.0)  # an in-place change is a new key
        assert activation.cached("k", (x,), lambda: object()) is not a
    assert not activation.sharing_active()


# ======================================================================= wrappers


def test_deep_supervision_resizes_index_targets_by_nearest_and_weights_scales():
    logits, target = _inputs(n=2, c=3, shape=(8, 8))
    half = torch.randn(2, 3, 4, 4, dtype=F64)
    quarter = torch.randn(2, 3, 2, 2, dtype=F64)
    target[0, 0, 0] = -100
    ds = DeepSupervision(lf.DiceLoss())
    terms = ds.terms([logits, half, quarter], target)
    weights = [4 / 7, 2 / 7, 1 / 7]
    for i, out in enumerate([logits, half, quarter]):
        step = 8 // out.shape[-1]
        small = target[:, step // 2::step, step // 2::step]  # centre-aligned nearest: floor((o + 1/2) * step)
        torch.testing.assert_close(terms[f"scale{i}"], LF.dice_loss(out, small), **CLOSE)
    torch.testing.assert_close(terms["total"], sum(w * terms[f"scale{i}"] for i, w in enumerate(weights)), **CLOSE)
    assert resize_target(target, (4, 4), channel_dim=False).dtype == torch.long
    soft = resize_target((target[:, None] == 1).to(F64), (4, 4), channel_dim=True, interpolation="area")
    assert soft.shape == (2, 1, 4, 4) and ((soft >= 0) & (soft <= 1)).all()
    with pytest.raises(ValueError, match=r"DeepSupervision: outputs must hold 2 scales"):
        DeepSupervision(lf.DiceLoss(), weights=[1.0, 0.5])([logits], target)
    with pytest.raises(ValueError, match=r"interpolation must be one of .*Did you mean 'area'"):
        DeepSupervision(lf.DiceLoss(), interpolation="aera")
    combo = DeepSupervision(lf.DiceLoss() + lf.CrossEntropyLoss(), weights=[1.0, 0.5])
    ref = (lf.DiceLoss() + lf.CrossEntropyLoss())
    torch.testing.assert_close(combo([logits, half], target),
                               ref(logits, target) + 0.5 * ref(half, target[:, 1::2, 1::2]), **CLOSE)


def test_deep_supervision_with_any_loss_and_binary_targets():
    logits, target = _binary_inputs(c=2, shape=(8, 8))
    ds = DeepSupervision(LF.binary_dice_loss, weights=[1.0, 1.0])
    half = torch.randn(3, 2, 4, 4, dtype=F64)
    out = ds([logits, half], target)
    ref = LF.binary_dice_loss(logits, target) + LF.binary_dice_loss(half, target[:, :, 1::2, 1::2])
    torch.testing.assert_close(out, ref, **CLOSE)
    x = logits.clone().requires_grad_(True)
    DeepSupervision(lf.CrossEntropyLoss())([x[:, :2]], target[:, 0].long()).backward()
    assert torch.isfinite(x.grad).all()


def test_class_select_drop_and_merge():
    logits, target = _inputs(c=4)
    ce = lf.CrossEntropyLoss()
    # drop: the softmax over the kept classes, other pixels ignored
    got = ClassSelect(ce, [1, 3])(logits, target)
    keep = (target == 1) | (target == 3)
    ref = torch.nn.functional.cross_entropy(logits[:, [1, 3]], torch.where(target == 3, 1, 0), reduction="none")
    torch.testing.assert_close(got, ref[keep].mean(), **CLOSE)
    # merge: the kept classes' probabilities are exactly the full model's
    x, t = ClassSelect(lf.DiceLoss(), [2, 0], rest="merge").select(logits, target)
    torch.testing.assert_close(torch.softmax(x, 1)[:, :2], torch.softmax(logits, 1)[:, [2, 0]], **CLOSE)
    assert set(t.unique().tolist()) <= {0, 1, 2}
    # same-shape targets lose the same channels
    b_logits, b_target = _binary_inputs(c=3)
    torch.testing.assert_close(ClassSelect(lf.BinaryDiceLoss(reduction="none"), [2])(b_logits, b_target),
                               LF.binary_dice_loss(b_logits[:, [2]], b_target[:, [2]], reduction="none"), **CLOSE)
    # equivalent to the region losses' own classes= for same-shape targets
    torch.testing.assert_close(ClassSelect(lf.BinaryDiceLoss(), [0, 2])(b_logits, b_target),
                               LF.binary_dice_loss(b_logits, b_target, classes=[0, 2]), **CLOSE)
    with pytest.raises(ValueError, match=r"ClassSelect: classes must hold classes in \[0, 3\]"):
        ClassSelect(ce, [4])(logits, target)
    with pytest.raises(ValueError, match=r"rest must be one of .*Did you mean 'merge'"):
        ClassSelect(ce, [1], rest="marge")


# ======================================================================= MONAI and kornia cross-checks


def _monai():
    return pytest.importorskip("monai.losses")


def _quiet(fn_, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn_(*a, **k)


@pytest.mark.parametrize("batch", [False, True])
def test_monai_dice_tversky_generalized_dice(batch):
    """MONAI ``softmax=True, to_onehot_y=True``; ``batch`` = ``not per_image``; ``smooth_nr/dr`` as given;
    MONAI's ``jaccard=True`` is ``(2I + s)/(2(P+T-I) + s)``: ours with ``smooth / 2``."""
    ml = _monai()
    logits, target = _inputs(c=3, seed=12)
    y = target.unsqueeze(1)
    kw = dict(softmax=True, to_onehot_y=True, batch=batch, reduction="none")
    per_image = not batch

    def m(loss):
        return _quiet(loss, logits, y).squeeze()

    torch.testing.assert_close(LF.dice_loss(logits, target, per_image=per_image, smooth_nr=1e-3, smooth_dr=1e-3,
                                            reduction="none"),
                               m(ml.DiceLoss(smooth_nr=1e-3, smooth_dr=1e-3, **kw)), **CLOSE)
    torch.testing.assert_close(LF.jaccard_loss(logits, target, per_image=per_image, smooth_nr=5e-4, smooth_dr=5e-4,
                                               reduction="none"),
                               m(ml.DiceLoss(jaccard=True, smooth_nr=1e-3, smooth_dr=1e-3, **kw)), **CLOSE)
    torch.testing.assert_close(LF.tversky_loss(logits, target, alpha=0.3, beta=0.7, per_image=per_image,
                                               smooth_nr=1e-5, smooth_dr=1e-5, reduction="none"),
                               m(ml.TverskyLoss(alpha=0.3, beta=0.7, **kw)), **CLOSE)
    target[0][target[0] == 2] = 0  # an absent class: MONAI replaces its infinite weight by the largest
    y = target.unsqueeze(1)
    torch.testing.assert_close(LF.generalized_dice_loss(logits, target, per_image=per_image, smooth_nr=0.0,
                                                        smooth_dr=0.0, reduction="none"),
                               _quiet(ml.GeneralizedDiceLoss(smooth_nr=0.0, smooth_dr=0.0, **kw), logits, y)
                               .reshape(-1).squeeze(), rtol=1e-6, atol=1e-7)  # MONAI's weights are float32
    # include_background=False is classes=range(1, C)
    torch.testing.assert_close(LF.dice_loss(logits, target, classes=[1, 2], per_image=per_image, smooth_nr=1e-5,
                                            smooth_dr=1e-5, reduction="none"),
                               m(ml.DiceLoss(include_background=False, **kw)), **CLOSE)


def test_monai_sigmoid_dice_mcc_hausdorff_cldice():
    """MONAI ``sigmoid=True``; MCC with ``smooth_nr=0`` and a vanishing ``smooth_dr`` is ours with ``smooth=0``;
    clDice: ``SoftclDiceLoss(smooth_nr=s, smooth_dr=s, smooth=0)`` on one channel is ``binary_cl_dice(smooth=s)``."""
    ml = _monai()
    pytest.importorskip("scipy")
    logits, target = _binary_inputs(c=1, shape=(9, 8), seed=13)
    kw = dict(sigmoid=True, reduction="none")
    torch.testing.assert_close(LF.binary_dice_loss(logits, target, smooth_nr=1e-5, smooth_dr=1e-5, reduction="none"),
                               _quiet(ml.DiceLoss(**kw), logits, target).squeeze(-1).squeeze(-1), **CLOSE)
    torch.testing.assert_close(LF.binary_mcc_loss(logits, target, smooth=0.0, reduction="none"),
                               _quiet(ml.MCCLoss(smooth_nr=0.0, smooth_dr=1e-30, **kw), logits, target),
                               rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(LF.binary_hausdorff_dt_loss(logits, target, reduction="none"),
                               _quiet(ml.HausdorffDTLoss(**kw), logits, target).squeeze(-1).squeeze(-1),
                               rtol=1e-6, atol=1e-7)  # MONAI's distance maps are float32
    # our soft erosion treats the outside as background: MONAI agrees on an image with a background border
    padded_logits = torch.nn.functional.pad(logits, (1, 1, 1, 1), value=-1e4)
    padded_target = torch.nn.functional.pad(target, (1, 1, 1, 1), value=0.0)
    ours = LF.binary_cl_dice_loss(logits, target, smooth=0.5, reduction="none").squeeze(1)
    torch.testing.assert_close(ours, LF.binary_cl_dice_loss(padded_logits, padded_target, smooth=0.5,
                                                            reduction="none").squeeze(1), **CLOSE)
    monai_cl = ml.SoftclDiceLoss(iter_=3, smooth_nr=0.5, smooth_dr=0.5, smooth=1e-12, **kw)
    torch.testing.assert_close(ours, _quiet(monai_cl, padded_logits, padded_target), rtol=1e-9, atol=1e-11)


def test_monai_boundary_distance_map_matches_ours():
    """MONAI's signed map is ``d_out`` outside and ``-(d_in - 1)`` inside (scipy); ours is ``d_out - d_in``."""
    ml = _monai()
    pytest.importorskip("scipy")
    target = torch.zeros(2, 1, 9, 8)
    target[0, 0, 2:6, 3:7] = 1
    target[1, 0, 1:3, 1:8] = 1
    theirs = _quiet(ml.BoundaryLoss().compute_distance_map, target).to(F64)
    ours = signed_distance(target[:, 0] > 0.5).unsqueeze(1)
    torch.testing.assert_close(ours + (target > 0.5).to(F64), theirs, rtol=1e-6, atol=1e-6)  # float32 there


def test_kornia_dice_and_lovasz():
    """kornia ``dice_loss(average="macro", eps=e)`` is ours with ``smooth_nr=0, smooth_dr=e``; kornia's
    ``lovasz_softmax_loss`` sorts per image and averages over images and classes (ours per image);
    ``lovasz_hinge_loss`` takes one channel and averages over images."""
    kl = pytest.importorskip("kornia.losses")
    logits, target = _inputs(c=3, seed=14)
    torch.testing.assert_close(LF.dice_loss(logits, target, smooth_nr=0.0, smooth_dr=1e-8),
                               kl.dice_loss(logits, target, average="macro", eps=1e-8), **CLOSE)
    torch.testing.assert_close(LF.lovasz_softmax_loss(logits, target), kl.lovasz_softmax_loss(logits, target), **CLOSE)
    b_logits, b_target = _binary_inputs(c=1, seed=15)
    torch.testing.assert_close(LF.lovasz_hinge_loss(b_logits, b_target),
                               kl.lovasz_hinge_loss(b_logits, b_target[:, 0].long()), **CLOSE)
