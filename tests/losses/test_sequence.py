"""CTC: against a float64 forward-algorithm loop, torch's CTC, and the sequence battery (S1-S3)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import lossforge as lf
from lossforge.functional import ctc_loss


def _reference_nll(lp: torch.Tensor, target: list[int], frames: int, blank: int) -> float:
    """-log p(target) by the CTC forward recursion over the blank-extended label sequence."""
    ext = [blank]
    for label in target:
        ext += [label, blank]
    alpha = [-math.inf] * len(ext)
    if frames == 0:
        return 0.0 if not target else math.inf
    alpha[0] = float(lp[0, blank])
    if len(ext) > 1:
        alpha[1] = float(lp[0, ext[1]])
    for t in range(1, frames):
        new = [-math.inf] * len(ext)
        for s, label in enumerate(ext):
            terms = [alpha[s]]
            if s >= 1:
                terms.append(alpha[s - 1])
            if s >= 2 and label != blank and ext[s - 2] != label:
                terms.append(alpha[s - 2])
            top = max(terms)
            if top > -math.inf:
                new[s] = top + math.log(sum(math.exp(v - top) for v in terms)) + float(lp[t, label])
        alpha = new
    ends = alpha[-2:] if len(ext) > 1 else alpha[-1:]
    top = max(ends)
    if top == -math.inf:
        return math.inf
    return -(top + math.log(sum(math.exp(v - top) for v in ends)))


def _batch(seed: int = 0, classes: int = 5, blank: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                       torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lp = torch.randn(10, 4, classes, generator=g, dtype=torch.float64).log_softmax(-1)  # (T, N, C)
    labels = [c for c in range(classes) if c != blank]
    targets = torch.tensor(labels)[torch.randint(0, len(labels), (4, 5), generator=g)]
    targets[0, 1] = targets[0, 0]  # a repeat
    return lp, targets, torch.tensor([10, 7, 4, 9]), torch.tensor([5, 3, 0, 4])


@pytest.mark.parametrize("blank", [0, 2, 4])
def test_matches_the_forward_recursion(blank: int) -> None:
    lp, targets, il, tl = _batch(blank=blank)
    u = ctc_loss(lp, targets, il, tl, blank=blank, reduction="none")
    for n in range(4):
        ref = _reference_nll(lp[:, n], targets[n, : tl[n]].tolist(), int(il[n]), blank)
        assert float(u[n]) == pytest.approx(ref, rel=1e-10)


def test_matches_torch_sum_and_mean() -> None:
    lp, targets, il, tl = _batch()
    ours = ctc_loss(lp, targets, il, tl, reduction="sum")
    torch.testing.assert_close(ours, F.ctc_loss(lp, targets, il, tl, reduction="sum"))
    ours_mean = ctc_loss(lp, targets, il, tl, length_normalized=True)
    torch.testing.assert_close(ours_mean, F.ctc_loss(lp, targets, il, tl, reduction="mean"))


def test_batch_first_concatenated_targets_and_list_lengths_agree() -> None:
    lp, targets, il, tl = _batch()
    base = ctc_loss(lp, targets, il, tl, reduction="none")
    flat = torch.cat([targets[n, : tl[n]] for n in range(4)])
    torch.testing.assert_close(ctc_loss(lp, flat, il.tolist(), tl.tolist(), reduction="none"), base)
    torch.testing.assert_close(ctc_loss(lp.transpose(0, 1), targets, il, tl, batch_first=True, reduction="none"), base)
    module = lf.CTCLoss(batch_first=True, reduction="none")
    torch.testing.assert_close(module(lp.transpose(0, 1), targets, il, tl), base)


def test_gradient_is_the_derivative_and_agrees_with_torch_through_log_softmax() -> None:
    lp, targets, il, tl = _batch()
    x = lp.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda v: ctc_loss(v, targets, il, tl, reduction="none"), (x,))
    logits = torch.randn(10, 4, 5, dtype=torch.float64, requires_grad=True)
    (ours,) = torch.autograd.grad(ctc_loss(logits.log_softmax(-1), targets, il, tl, reduction="sum"), logits)
    (theirs,) = torch.autograd.grad(F.ctc_loss(logits.log_softmax(-1), targets, il, tl, reduction="sum"), logits)
    torch.testing.assert_close(ours, theirs)


def test_infeasible_sample_inf_or_left_out() -> None:  # battery S1
    lp, targets, _, tl = _batch()
    short = torch.tensor([10, 3, 4, 9])  # sample 1 has 3 frames ...
    targets[1, :3] = torch.tensor([2, 2, 3])  # ... but "2 2 3" needs 4 (2, blank, 2, 3)
    u = ctc_loss(lp, targets, short, tl, reduction="none")
    assert math.isinf(float(u[1])) and torch.isfinite(u[[0, 2, 3]]).all()
    x = lp.clone().requires_grad_()
    u0 = ctc_loss(x, targets, short, tl, zero_infinity=True, reduction="none")
    assert float(u0[1].detach()) == 0.0
    mean = ctc_loss(x, targets, short, tl, zero_infinity=True)
    torch.testing.assert_close(mean, u0[[0, 2, 3]].mean())  # left out of the mean, not averaged in as 0
    (g,) = torch.autograd.grad(mean, x)
    assert torch.isfinite(g).all() and float(g[:, 1].abs().max()) == 0.0 and float(g[:, 0].abs().max()) > 0
    every = ctc_loss(x[:, 1:2], targets[1:2], short[1:2], tl[1:2], zero_infinity=True)
    assert float(every.detach()) == 0.0 and every.requires_grad  # empty policy: nothing left to average


def test_empty_targets_and_inputs() -> None:  # battery S2
    lp = torch.randn(4, 2, 3, dtype=torch.float64).log_softmax(-1)
    u = ctc_loss(lp, torch.zeros(2, 0, dtype=torch.long), [4, 0], [0, 0], reduction="none")
    torch.testing.assert_close(u[0], -lp[:, 0, 0].sum())
    assert float(u[1]) == 0.0
    empty = torch.zeros(0, 0, 3, requires_grad=True)
    out = ctc_loss(empty, torch.zeros(0, 2, dtype=torch.long), [], [])
    assert float(out.detach()) == 0.0
    out.backward()
    assert empty.grad is not None


def test_lengths_longer_than_the_tensor_name_the_maximum() -> None:  # battery S3
    lp, targets, _, tl = _batch()
    with pytest.raises(ValueError, match=r"input_lengths must be at most T \(the frames of log_probs\)=10, got a "
                                         r"length of 11"):
        ctc_loss(lp, targets, torch.tensor([11, 7, 4, 9]), tl)


def test_half_inputs_compute_in_float32() -> None:
    lp, targets, il, tl = _batch()
    out = ctc_loss(lp.half(), targets, il, tl)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ctc_loss(lp.half().float(), targets, il, tl))


def test_validation_mode_catches_raw_logits() -> None:
    lp, targets, il, tl = _batch()
    with lf.validation(), pytest.raises(ValueError, match=r"Hint: pass log_softmax\(logits, dim=-1\)"):
        ctc_loss(lp.exp() * 3, targets, il, tl)


def test_compiles_fullgraph() -> None:
    lp, targets, il, tl = _batch()
    x = lp.float().clone().requires_grad_()
    compiled = torch.compile(ctc_loss, fullgraph=True, backend="aot_eager")
    out = compiled(x, targets, il, tl)
    torch.testing.assert_close(out, ctc_loss(lp.float(), targets, il, tl))
    out.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
