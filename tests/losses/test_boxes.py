"""Detection-box losses: iou, giou, diou, ciou, eiou, siou.

1. Conformance: every generic check of ``lossforge.verify`` on each loss of the family.
2. Independent references: a float64 scalar loop over boxes written from the papers' formulas
   (``math`` only, no tensors), including SIoU's angle cost in its ``arcsin`` form.
3. Cross-check against torchvision's formulas. torchvision is not installable in this
   environment (its build needs a different torch), so the test carries an independent eager
   reimplementation of ``torchvision.ops.{generalized,distance,complete}_box_iou_loss`` written from
   their documented formulas (``eps=1e-7`` added to the union and the enclosing diagonal, CIoU's
   ``alpha`` under ``no_grad``); on well-formed boxes the two agree to the effect of that ``eps``.
4. Known values (torchvision's GIoU table): a box against itself 0, a quarter-overlapping box
   0.75, touching boxes 1.0, diagonal boxes 1.5.
5. The battery: B1-B6 of the reliability notes (degenerate boxes, inverted boxes, empty batch,
   integer and half inputs) and E15 (inverted box named by index in validation mode).
"""

from __future__ import annotations

import math

import pytest
import torch

import lossforge as lf
import lossforge.functional as LF
from lossforge.verify import run_checks

NAMES = ["iou", "giou", "diou", "ciou", "eiou", "siou"]
FUNCS = {n: getattr(LF, f"{n}_loss") for n in NAMES}


# ------------------------------------------------------------------------------------------ conformance


def test_family_is_complete():
    assert set(NAMES) <= set(lf.list_losses("boxes"))
    for name in NAMES:
        spec = lf.get_loss(name)
        assert spec.function is FUNCS[name]
        assert spec.module.__name__ == {"iou": "IoULoss", "giou": "GIoULoss", "diou": "DIoULoss", "ciou": "CIoULoss",
                                        "eiou": "EIoULoss", "siou": "SIoULoss"}[name]
        assert spec.unit == "box"


@pytest.mark.parametrize("name", NAMES)
def test_conformance(name):
    failed = [str(r) for r in run_checks(lf.get_loss(name)) if not r.ok]
    assert not failed, "\n".join(failed)


# ------------------------------------------------------------------------------- independent reference


def _reference(name: str, b: list[float], t: list[float], theta: float = 4.0) -> float:
    """One box pair, float64 scalars, straight from the papers (non-degenerate boxes)."""
    x1, y1, x2, y2 = b
    X1, Y1, X2, Y2 = t
    w, h, W, H = x2 - x1, y2 - y1, X2 - X1, Y2 - Y1
    iw = max(0.0, min(x2, X2) - max(x1, X1))
    ih = max(0.0, min(y2, Y2) - max(y1, Y1))
    inter = iw * ih
    union = w * h + W * H - inter
    iou = inter / union
    cw = max(x2, X2) - min(x1, X1)
    ch = max(y2, Y2) - min(y1, Y1)
    dx = (X1 + X2) / 2 - (x1 + x2) / 2
    dy = (Y1 + Y2) / 2 - (y1 + y2) / 2
    rho2, c2 = dx * dx + dy * dy, cw * cw + ch * ch
    if name == "iou":
        return 1 - iou
    if name == "giou":
        return 1 - iou + (cw * ch - union) / (cw * ch)
    if name == "diou":
        return 1 - iou + rho2 / c2
    if name == "ciou":
        v = 4 / math.pi**2 * (math.atan(W / H) - math.atan(w / h)) ** 2
        alpha = v / ((1 - iou) + v)
        return 1 - iou + rho2 / c2 + alpha * v
    if name == "eiou":
        return 1 - iou + rho2 / c2 + (w - W) ** 2 / cw**2 + (h - H) ** 2 / ch**2
    # SIoU, with the angle cost written as in the paper: 1 - 2 sin^2(arcsin(c_h / sigma) - pi/4).
    sigma = math.sqrt(rho2)
    angle = 1 - 2 * math.sin(math.asin(abs(dy) / sigma) - math.pi / 4) ** 2
    gamma = 2 - angle
    distance = (1 - math.exp(-gamma * (dx / cw) ** 2)) + (1 - math.exp(-gamma * (dy / ch) ** 2))
    shape = (1 - math.exp(-abs(w - W) / max(w, W))) ** theta + (1 - math.exp(-abs(h - H) / max(h, H))) ** theta
    return 1 - iou + (distance + shape) / 2


def _random_boxes(n: int, seed: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lo = torch.rand(n, 2, generator=g, dtype=torch.float64) * 10
    size = torch.rand(n, 2, generator=g, dtype=torch.float64) * 5 + 0.1
    boxes = torch.cat([lo, lo + size], 1)
    jitter = torch.randn(n, 4, generator=g, dtype=torch.float64)
    target = boxes + jitter
    lo_t, hi_t = torch.minimum(target[:, :2], target[:, 2:]), torch.maximum(target[:, :2], target[:, 2:])
    target = torch.cat([lo_t, hi_t + 0.05], 1)
    return boxes.to(dtype), target.to(dtype)


@pytest.mark.parametrize("name", NAMES)
def test_matches_scalar_reference(name):
    boxes, target = _random_boxes(64, 1)
    got = FUNCS[name](boxes, target, reduction="none")
    want = torch.tensor([_reference(name, b.tolist(), t.tolist()) for b, t in zip(boxes, target)],
                        dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_siou_theta_reference():
    boxes, target = _random_boxes(16, 2)
    got = LF.siou_loss(boxes, target, theta=2.5, reduction="none")
    want = torch.tensor([_reference("siou", b.tolist(), t.tolist(), theta=2.5) for b, t in zip(boxes, target)],
                        dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_cxcywh_equals_xyxy(name):
    boxes, target = _random_boxes(32, 3)

    def convert(b):
        return torch.cat([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], 1)

    torch.testing.assert_close(FUNCS[name](convert(boxes), convert(target), box_format="cxcywh", reduction="none"),
                               FUNCS[name](boxes, target, reduction="none"), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------- torchvision's formulas, reimplemented


def _tv_inter_union(b, t):
    x1, y1, x2, y2 = b.unbind(-1)
    X1, Y1, X2, Y2 = t.unbind(-1)
    iw = (torch.min(x2, X2) - torch.max(x1, X1)).clamp(min=0)
    ih = (torch.min(y2, Y2) - torch.max(y1, Y1)).clamp(min=0)
    inter = iw * ih
    union = (x2 - x1) * (y2 - y1) + (X2 - X1) * (Y2 - Y1) - inter
    return inter, union


def tv_giou(b, t, eps=1e-7):
    inter, union = _tv_inter_union(b, t)
    iou = inter / (union + eps)
    cw = torch.max(b[..., 2], t[..., 2]) - torch.min(b[..., 0], t[..., 0])
    ch = torch.max(b[..., 3], t[..., 3]) - torch.min(b[..., 1], t[..., 1])
    area = cw * ch
    return 1 - (iou - (area - union) / (area + eps))


def _tv_diou_terms(b, t, eps=1e-7):
    inter, union = _tv_inter_union(b, t)
    iou = inter / (union + eps)
    cw = torch.max(b[..., 2], t[..., 2]) - torch.min(b[..., 0], t[..., 0])
    ch = torch.max(b[..., 3], t[..., 3]) - torch.min(b[..., 1], t[..., 1])
    diag = cw**2 + ch**2 + eps
    cx, cy = (b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2
    tx, ty = (t[..., 0] + t[..., 2]) / 2, (t[..., 1] + t[..., 3]) / 2
    return iou, ((cx - tx) ** 2 + (cy - ty) ** 2) / diag


def tv_diou(b, t, eps=1e-7):
    iou, dist = _tv_diou_terms(b, t, eps)
    return 1 - iou + dist


def tv_ciou(b, t, eps=1e-7):
    iou, dist = _tv_diou_terms(b, t, eps)
    w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    W, H = t[..., 2] - t[..., 0], t[..., 3] - t[..., 1]
    v = (4 / math.pi**2) * (torch.atan(W / H) - torch.atan(w / h)) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return 1 - iou + dist + alpha * v


@pytest.mark.parametrize(("name", "tv"), [("giou", tv_giou), ("diou", tv_diou), ("ciou", tv_ciou)])
def test_matches_torchvision_formula_values_and_gradients(name, tv):
    boxes, target = _random_boxes(200, 4, dtype=torch.float32)
    a = boxes.clone().requires_grad_(True)
    b = boxes.clone().requires_grad_(True)
    ours = FUNCS[name](a, target, reduction="none")
    theirs = tv(b, target)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    ours.sum().backward()
    theirs.sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5)


def test_ciou_exact_gradient_variant():
    boxes, target = _random_boxes(6, 5)
    x = boxes.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: LF.ciou_loss(z, target, detach_alpha=False, reduction="none"), (x,))
    # The default treats alpha as a constant: not the gradient of the value, by design.
    assert not torch.autograd.gradcheck(lambda z: LF.ciou_loss(z, target, reduction="none"), (x,),
                                        raise_exception=False)
    torch.testing.assert_close(LF.ciou_loss(boxes, target, detach_alpha=False),
                               LF.ciou_loss(boxes, target))


# ---------------------------------------------------------------------------------------- known values


def test_giou_known_values():
    box = torch.tensor([[0.0, 0.0, 100.0, 100.0]])
    cases = {
        "identical": (box, 0.0),
        "quarter": (torch.tensor([[0.0, 0.0, 50.0, 50.0]]), 0.75),
        "touching": (torch.tensor([[100.0, 0.0, 200.0, 100.0]]), 1.0),
        "diagonal": (torch.tensor([[100.0, 100.0, 200.0, 200.0]]), 1.5),
    }
    for what, (other, want) in cases.items():
        assert LF.giou_loss(box, other).item() == pytest.approx(want, abs=1e-6), what
        assert LF.giou_loss(other, box).item() == pytest.approx(want, abs=1e-6), what


@pytest.mark.parametrize("name", NAMES)
def test_identical_boxes_give_zero_with_zero_gradient(name):
    boxes, _ = _random_boxes(10, 6)
    x = boxes.clone().requires_grad_(True)
    out = FUNCS[name](x, boxes, reduction="none")
    torch.testing.assert_close(out, torch.zeros(10, dtype=torch.float64), atol=1e-12, rtol=0)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_iou_family_ordering():
    # Every penalty is non-negative: iou <= giou and iou <= diou <= ciou, diou <= eiou.
    boxes, target = _random_boxes(100, 7)
    values = {n: FUNCS[n](boxes, target, reduction="none") for n in NAMES}
    for bigger in ("giou", "diou", "ciou", "eiou", "siou"):
        assert (values[bigger] >= values["iou"] - 1e-12).all(), bigger
    assert (values["ciou"] >= values["diou"] - 1e-12).all()
    assert (values["eiou"] >= values["diou"] - 1e-12).all()


# ------------------------------------------------------------------------------------------ the battery

DEGENERATE = torch.tensor([
    [0.0, 0.0, 0.0, 0.0],  # a point
    [1.0, 1.0, 1.0, 3.0],  # zero width
    [1.0, 1.0, 3.0, 1.0],  # zero height
    [0.0, 0.0, 2.0, 0.0],  # zero height on the target's edge
    [5.0, 5.0, 5.0, 5.0],  # a point inside the target
])
DEGENERATE_TARGET = torch.tensor([
    [0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 2.0, 2.0],
    [0.0, 0.0, 2.0, 2.0],
    [0.0, 0.0, 2.0, 2.0],
    [4.0, 4.0, 6.0, 6.0],
])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_degenerate_boxes_finite_values_and_gradients(name, dtype):
    """B3 (and row 48: CIoU's NaN gradient for a zero-height box)."""
    for boxes, target in ((DEGENERATE, DEGENERATE_TARGET), (DEGENERATE_TARGET, DEGENERATE)):
        x = boxes.to(dtype).clone().requires_grad_(True)
        t = target.to(dtype).clone().requires_grad_(True)
        out = FUNCS[name](x, t, reduction="none")
        assert torch.isfinite(out).all()
        out.sum().backward()
        assert torch.isfinite(x.grad).all() and torch.isfinite(t.grad).all()


def test_ciou_zero_height_gradient_is_finite_where_atan_w_over_h_is_not():
    box = torch.tensor([[0.0, 0.0, 2.0, 0.0]], requires_grad=True)
    target = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    LF.ciou_loss(box, target).backward()
    assert torch.isfinite(box.grad).all()
    naive = torch.tensor([[0.0, 0.0, 2.0, 0.0]], requires_grad=True)
    tv_ciou(naive, target).sum().backward()
    assert not torch.isfinite(naive.grad).all()  # the failure mode this guards against


@pytest.mark.parametrize("name", NAMES)
def test_zero_area_box_against_itself_is_zero(name):
    """B2: the policy is 0 (torchvision: 1.0 for GIoU, issue #7746)."""
    points = torch.tensor([[0.0, 0.0, 0.0, 0.0], [3.0, 1.0, 3.0, 4.0], [2.0, 2.0, 5.0, 2.0]], requires_grad=True)
    out = FUNCS[name](points, points.detach(), reduction="none")
    assert torch.equal(out.detach(), torch.zeros(3))
    out.sum().backward()
    assert torch.isfinite(points.grad).all()
    # torchvision's formula with its eps gives 1 here.
    assert tv_giou(points.detach(), points.detach())[0].item() == pytest.approx(1.0)


def test_zero_area_boxes_that_differ_do_not_match():
    a = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    b = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    assert LF.iou_loss(a, b).item() == 1.0
    assert LF.giou_loss(a, b).item() == 2.0  # the enclosing box is all empty
    assert LF.diou_loss(a, b).item() == 2.0  # rho = c: the points are the enclosing box's corners


@pytest.mark.parametrize("name", NAMES)
def test_inverted_box_is_an_error_in_validation_mode(name):
    """B4 / E15: the message names the first inverted box's index."""
    fn = FUNCS[name]
    good = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 3)
    bad = good.clone()
    bad[2] = torch.tensor([3.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=rf"{fn.__name__}: boxes must hold well-formed xyxy boxes .*index 2"):
        fn(bad, good)
    with pytest.raises(ValueError, match=r"target must hold well-formed .*index 2"):
        fn(good, bad)
    batched = torch.stack([good, bad])
    with pytest.raises(ValueError, match=r"index \(1, 2\)"):
        fn(batched, torch.stack([good, good]))
    cx = torch.tensor([[0.5, 0.5, 1.0, -0.1]])
    with pytest.raises(ValueError, match=r"well-formed cxcywh boxes .*index 0"):
        fn(cx, cx.abs(), box_format="cxcywh")


@pytest.mark.parametrize("name", NAMES)
def test_inverted_box_is_never_a_perfect_match_outside_validation(name):
    inverted = torch.tensor([[3.0, 0.0, 1.0, 1.0], [0.0, 3.0, 1.0, 1.0], [3.0, 3.0, 1.0, 1.0]])
    with lf.validation(False):
        out = FUNCS[name](inverted, inverted.clone(), reduction="none")
        assert (out >= 1.0).all()
        well = torch.tensor([[0.0, 0.0, 3.0, 3.0]] * 3)
        assert (FUNCS[name](inverted, well, reduction="none") >= 1.0).all()


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch(name):
    """B5: mean 0.0 connected to the graph, none empty."""
    x = torch.zeros(0, 4, requires_grad=True)
    out = FUNCS[name](x, torch.zeros(0, 4))
    assert out.item() == 0.0
    out.backward()
    assert x.grad is not None and x.grad.shape == (0, 4)
    assert FUNCS[name](x, torch.zeros(0, 4), reduction="none").shape == (0,)


@pytest.mark.parametrize("name", NAMES)
def test_integer_and_half_boxes_are_computed_in_float32(name):
    """B6: no overflow or rounding from integer/half area products."""
    boxes = torch.tensor([[0, 0, 300, 300], [100, 100, 400, 500]])
    target = torch.tensor([[10, 20, 290, 310], [120, 90, 410, 480]])
    want = FUNCS[name](boxes.double(), target.double(), reduction="none")
    for b, t in ((boxes, target), (boxes.half(), target.half()), (boxes.int(), target.half())):
        got = FUNCS[name](b, t, reduction="none")
        assert got.dtype == torch.float32
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)
    # fp16 area products would overflow (300 * 300 > 65504); the float32 compute does not.
    assert torch.isfinite(FUNCS[name](boxes.half() * 2, target.half() * 2)).all()


def test_half_gradient_in_input_dtype():
    x = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=torch.float16, requires_grad=True)
    out = LF.giou_loss(x, torch.tensor([[1.0, 1.0, 3.0, 3.0]], dtype=torch.float16))
    assert out.dtype == torch.float32
    out.backward()
    assert x.grad.dtype == torch.float16


def test_bad_inputs():
    b = torch.rand(3, 4)
    with pytest.raises(ValueError, match=r"giou_loss: boxes must have shape \(\.\.\., 4\), got \(3, 5\)"):
        LF.giou_loss(torch.rand(3, 5), torch.rand(3, 5))
    with pytest.raises(ValueError, match=r"target must have the shape of boxes \(3, 4\), got \(3, 1, 4\)"):
        LF.giou_loss(b, b.unsqueeze(1))
    with pytest.raises(ValueError, match=r"box_format must be one of \('xyxy', 'cxcywh'\), got 'xywh'"):
        LF.diou_loss(b, b, box_format="xywh")
    with pytest.raises(ValueError, match=r"box_format must be one of"):
        lf.CIoULoss(box_format="xywh")
    with pytest.raises(ValueError, match=r"siou_loss: theta must be > 0, got -1"):
        LF.siou_loss(b, b, theta=-1)
    with pytest.raises(TypeError, match=r"boxes must be a real .* got dtype torch.complex64"):
        LF.iou_loss(b.to(torch.complex64), b)
    with pytest.raises(TypeError, match=r"weight= is not an argument"):
        LF.iou_loss(b, b, weight=torch.ones(3))


def test_module_and_spec():
    boxes, target = _random_boxes(8, 8)
    crit = lf.build("giou + 0.5*ciou(box_format='xyxy')")
    want = LF.giou_loss(boxes, target) + 0.5 * LF.ciou_loss(boxes, target)
    torch.testing.assert_close(crit(boxes, target), want)
    assert "box_format='cxcywh'" in repr(lf.SIoULoss(box_format="cxcywh"))
