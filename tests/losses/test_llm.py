"""LLM losses: linear cross-entropy, vocabulary-parallel CE, distillation, preference losses.

References are the naive full-logits computations in float64 written here with torch's
``log_softmax`` / ``cross_entropy`` (never the chunked kernels' formulas), torch's own
``F.cross_entropy`` and ``F.linear_cross_entropy``, hand-computed values, and a dispatch-mode
recorder proving that no ``(tokens, vocab)`` tensor is ever allocated.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import lossforge as lf
import lossforge.functional as LF

F64 = torch.float64


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-10, atol: float = 1e-12) -> None:
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


class LargestTensor(TorchDispatchMode):
    """Records the largest tensor any operator produces (forward and backward)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def _problem(n=13, d=5, v=11, *, seed=0, dtype=F64, ignored=False, shape=None):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, d, generator=g, dtype=F64).to(dtype)
    w = (torch.randn(v, d, generator=g, dtype=F64) * 0.7).to(dtype)
    y = torch.randint(v, (n,), generator=g)
    if ignored:
        y[::3] = -100
    if shape is not None:
        h, y = h.reshape(*shape, d), y.reshape(shape)
    return h, w, y


def naive_lce(h, w, y, *, bias=None, ignore_index=-100, label_smoothing=0.0, z_loss=0.0, softcap=None,
              reduction="mean", sample_weight=None, mask=None, normalizer=None):
    """Full logits, torch's log_softmax, float64."""
    z = F.linear(h, w, bias)
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    logp = F.log_softmax(z, -1)
    valid = y != ignore_index if ignore_index is not None else torch.ones_like(y, dtype=torch.bool)
    safe = torch.where(valid, y, 0)
    nll = -logp.gather(-1, safe[..., None]).squeeze(-1)
    u = (1 - label_smoothing) * nll + label_smoothing * (-logp.mean(-1)) + z_loss * torch.logsumexp(z, -1) ** 2
    wt = valid.to(u.dtype)
    if sample_weight is not None:
        wt = wt * sample_weight
    if mask is not None:
        wt = wt * mask.to(u.dtype)
    u = torch.where(wt != 0, u * wt, torch.zeros_like(u))
    return _reduce(u, wt, reduction, normalizer)


def _reduce(u, wt, reduction, normalizer=None):
    """The reference reduction: mean = sum(U w) / sum(w) (0 when nothing is kept), or / normalizer."""
    denom = wt.sum() if normalizer is None else torch.as_tensor(normalizer, dtype=u.dtype)
    mean = u.sum() / denom if denom > 0 else u.sum() * 0
    return {"none": u, "sum": u.sum(), "mean": mean}[reduction]


def _value_and_grads(fn, inputs, upstream_seed=1):
    leaves = [None if x is None else x.detach().clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    g = torch.Generator().manual_seed(upstream_seed)
    weights = torch.rand(out.shape, generator=g, dtype=out.dtype) + 0.5
    diff = [x for x in leaves if x is not None]
    grads = torch.autograd.grad((out * weights).sum(), diff)
    return out.detach(), grads


# --------------------------------------------------------------------------------------------------
# linear_cross_entropy: values and gradients against the naive float64 computation
# --------------------------------------------------------------------------------------------------

COMBOS = list(itertools.product([None, -100], [0.0, 0.1], [0.0, 1e-2], [None, 2.5], ["none", "mean", "sum"]))


@pytest.mark.parametrize("chunk_size", [None, 4, (4, 3), (1, 1)], ids=["auto", "tokens4", "blocks4x3", "1x1"])
@pytest.mark.parametrize(("ignore_index", "label_smoothing", "z_loss", "softcap", "reduction"), COMBOS)
def test_lce_equals_naive(ignore_index, label_smoothing, z_loss, softcap, reduction, chunk_size):
    h, w, y = _problem(ignored=ignore_index is not None)
    b = torch.randn(w.shape[0], dtype=F64, generator=torch.Generator().manual_seed(3))
    kw = dict(ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss, softcap=softcap,
              reduction=reduction)
    got, g_got = _value_and_grads(lambda h, w, b: LF.linear_cross_entropy(h, w, y, bias=b, chunk_size=chunk_size,
                                                                          **kw), (h, w, b))
    want, g_want = _value_and_grads(lambda h, w, b: naive_lce(h, w, y, bias=b, **kw), (h, w, b))
    _close(got, want)
    for a, c in zip(g_got, g_want):
        _close(a, c)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_lce_equals_torch_cross_entropy(reduction, label_smoothing):
    h, w, y = _problem(n=20, ignored=True, shape=(4, 5))
    got, g_got = _value_and_grads(lambda h, w: LF.linear_cross_entropy(
        h, w, y, label_smoothing=label_smoothing, reduction=reduction), (h, w))
    shape = {"none": y.shape}.get(reduction, ())
    want, g_want = _value_and_grads(lambda h, w: F.cross_entropy(
        (h @ w.T).flatten(0, 1), y.flatten(), label_smoothing=label_smoothing, reduction=reduction).reshape(shape),
        (h, w))
    _close(got, want)
    for a, c in zip(g_got, g_want):
        _close(a, c)


@pytest.mark.parametrize("chunked", [False, True])
def test_lce_equals_torch_linear_cross_entropy(chunked):
    h, w, y = _problem(n=64, d=8, v=40, ignored=True)
    options = torch.nn.LinearCrossEntropyOptions() if chunked else None
    got, g_got = _value_and_grads(lambda h, w: LF.linear_cross_entropy(h, w, y), (h, w))
    want, g_want = _value_and_grads(lambda h, w: F.linear_cross_entropy(h, w, y, options=options), (h, w))
    _close(got, want)
    for a, c in zip(g_got, g_want):
        _close(a, c)


def test_lce_golden_value():
    """Hand-computable: two classes, zero head -> log 2 per token; a decisive logit -> log(1 + e^-4)."""
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64)
    w = torch.tensor([[2.0, 0.0], [-2.0, 0.0]], dtype=F64)
    y = torch.tensor([0, 1])
    u = LF.linear_cross_entropy(h, w, y, reduction="none")
    _close(u, torch.tensor([math.log1p(math.exp(-4.0)), math.log(2.0)], dtype=F64))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_lce_sample_weight_and_mask(reduction):
    h, w, y = _problem(n=12, ignored=True)
    g = torch.Generator().manual_seed(5)
    sw = torch.rand(12, generator=g, dtype=F64) + 0.25
    sw[4] = 0.0
    m = torch.rand(12, generator=g) < 0.7
    got, g_got = _value_and_grads(lambda h, w, sw: LF.linear_cross_entropy(
        h, w, y, sample_weight=sw, mask=m, reduction=reduction), (h, w, sw))
    want, g_want = _value_and_grads(lambda h, w, sw: naive_lce(
        h, w, y, sample_weight=sw, mask=m, reduction=reduction), (h, w, sw))
    _close(got, want)
    for a, c in zip(g_got, g_want):  # the sample weights are differentiated too
        _close(a, c)


# --------------------------------------------------------------------------------------------------
# normalizer: gradient accumulation equals the big batch exactly
# --------------------------------------------------------------------------------------------------


def test_accumulation_with_normalizer_equals_one_batch():
    g = torch.Generator().manual_seed(7)
    d, v = 6, 17
    w = torch.randn(v, d, generator=g, dtype=F64)
    parts = []
    for k, n in enumerate([5, 9, 3, 7]):
        h = torch.randn(n, d, generator=g, dtype=F64)
        y = torch.randint(v, (n,), generator=g)
        y[: k + 1] = -100  # a different number of ignored tokens in each micro-batch
        parts.append((h, y))
    big_h = torch.cat([p[0] for p in parts]).requires_grad_()
    big_w = w.clone().requires_grad_()
    big = LF.linear_cross_entropy(big_h, big_w, torch.cat([p[1] for p in parts]))
    big.backward()

    count = LF.global_token_count(*[p[1] for p in parts])
    assert int(count) == sum(int((p[1] != -100).sum()) for p in parts)
    acc_w = w.clone().requires_grad_()
    total = torch.zeros((), dtype=F64)
    dh = []
    for h, y in parts:
        hh = h.clone().requires_grad_()
        loss = LF.linear_cross_entropy(hh, acc_w, y, normalizer=count)
        loss.backward()
        total = total + loss.detach()
        dh.append(hh.grad)
    _close(total, big.detach(), rtol=1e-13, atol=1e-14)
    _close(acc_w.grad, big_w.grad, rtol=1e-12, atol=1e-14)
    _close(torch.cat(dh), big_h.grad, rtol=1e-12, atol=1e-14)
    # the plain mean of the micro-batch means is *not* the big-batch loss here: the test can fail
    naive_mean = sum(LF.linear_cross_entropy(h, w, y) for h, y in parts) / 4
    assert abs(float(naive_mean) - float(big.detach())) > 1e-3


def test_normalizer_as_number_and_module_call_time():
    h, w, y = _problem(ignored=True)
    a = LF.linear_cross_entropy(h, w, y, normalizer=20.0)
    _close(a, LF.linear_cross_entropy(h, w, y, reduction="sum") / 20)
    module = lf.LinearCrossEntropyLoss()
    _close(module(h, w, y, normalizer=torch.tensor(20.0)), a)
    _close(module(h, w, y), LF.linear_cross_entropy(h, w, y))


def test_global_token_count():
    a = torch.tensor([[1, -100, 3], [4, 5, -100]])
    b = torch.tensor([-100, 2])
    assert int(LF.global_token_count(a, b)) == 5
    assert int(LF.global_token_count(a, ignore_index=None)) == 6
    assert LF.global_token_count(a).dtype == torch.int64
    with pytest.raises(TypeError, match=r"global_token_count: targets\[0\] must be an integer tensor"):
        LF.global_token_count(a.float())
    with pytest.raises(TypeError, match=r"global_token_count: expected at least one target tensor"):
        LF.global_token_count()


# --------------------------------------------------------------------------------------------------
# memory: the (tokens, vocab) logits never exist; ignored tokens are never multiplied
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_lce_never_materialises_logits(reduction):
    n, d, v, chunk = 96, 4, 60, 8
    h, w, y = _problem(n=n, d=d, v=v, dtype=torch.float32)
    h.requires_grad_()
    w.requires_grad_()
    with LargestTensor() as rec:
        out = LF.linear_cross_entropy(h, w, y, reduction=reduction, chunk_size=chunk)
        out.sum().backward()
    assert rec.largest <= max(chunk * v, v * d, n * d) < n * v
    with LargestTensor() as rec_naive:
        F.cross_entropy(h @ w.T, y).backward()
    assert rec_naive.largest == n * v  # the recorder sees the logits when they exist


def test_vocab_blocks_bound_the_chunk():
    n, d, v = 16, 4, 1000
    h, w, y = _problem(n=n, d=d, v=v, dtype=torch.float32)
    w.requires_grad_()
    with LargestTensor() as rec:
        LF.linear_cross_entropy(h, w, y, chunk_size=(4, 64)).backward()
    assert rec.largest <= v * d  # the head (and its gradient) is the largest tensor; a block is 4 x 64


def test_ignored_tokens_are_dropped_before_the_product():
    """Hidden states at ignored positions may hold anything (here NaN): they are never multiplied."""
    h, w, y = _problem(ignored=True)
    h = h.clone()
    h[y == -100] = float("nan")
    h.requires_grad_()
    w.requires_grad_()
    loss = LF.linear_cross_entropy(h, w, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(w.grad).all()
    assert (h.grad[y == -100] == 0).all()
    h2, _, _ = _problem(ignored=True)
    _close(loss.detach(), LF.linear_cross_entropy(h2, w.detach(), y))


def test_all_ignored_and_empty():
    h, w, y = _problem()
    h.requires_grad_()
    w.requires_grad_()
    out = LF.linear_cross_entropy(h, w, torch.full_like(y, -100))
    out.backward()
    assert out.item() == 0.0 and (w.grad == 0).all() and (h.grad == 0).all()
    e = LF.linear_cross_entropy(h[:0], w, y[:0], reduction="none")
    assert e.shape == (0,)


# --------------------------------------------------------------------------------------------------
# autograd contract: retain_graph, scaled upstream, sums, no_grad, half precision, frozen head
# --------------------------------------------------------------------------------------------------


def test_retain_graph_and_scaled_upstream():
    h, w, y = _problem()
    w1 = w.clone().requires_grad_()
    loss = LF.linear_cross_entropy(h, w1, y)
    loss.backward(retain_graph=True)
    first = w1.grad.clone()
    loss.backward()  # the saved gradients are reused, not consumed
    _close(w1.grad, 2 * first)
    w2 = w.clone().requires_grad_()
    (3.0 * LF.linear_cross_entropy(h, w2, y) + LF.linear_cross_entropy(h, w2, y, label_smoothing=0.1)).backward()
    w3 = w.clone().requires_grad_()
    (3.0 * naive_lce(h, w3, y) + naive_lce(h, w3, y, label_smoothing=0.1)).backward()
    _close(w2.grad, w3.grad)


def test_backward_twice_without_retain_graph_raises():
    h, w, y = _problem()
    w.requires_grad_()
    loss = LF.linear_cross_entropy(h, w, y)
    loss.backward()
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_no_grad_and_frozen_head():
    h, w, y = _problem()
    with torch.no_grad():
        a = LF.linear_cross_entropy(h, w.requires_grad_(), y)
    assert not a.requires_grad
    with torch.inference_mode():
        b = LF.linear_cross_entropy(h, w, y)
    _close(a, b)
    frozen = w.detach()
    hh = h.clone().requires_grad_()
    LF.linear_cross_entropy(hh, frozen, y).backward()
    hr = h.clone().requires_grad_()
    naive_lce(hr, frozen, y).backward()
    _close(hh.grad, hr.grad)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_computed_in_float32(dtype):
    h, w, y = _problem(n=24, d=8, v=30, dtype=dtype, ignored=True)
    hl, wl = h.clone().requires_grad_(), w.clone().requires_grad_()
    out = LF.linear_cross_entropy(hl, wl, y, label_smoothing=0.1, z_loss=1e-3, softcap=5.0)
    out.backward()
    assert out.dtype == torch.float32
    assert hl.grad.dtype == dtype and wl.grad.dtype == dtype
    h32, w32 = h.float().requires_grad_(), w.float().requires_grad_()
    ref = naive_lce(h32, w32, y, label_smoothing=0.1, z_loss=1e-3, softcap=5.0)
    ref.backward()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(wl.grad, w32.grad.to(dtype))


def test_module_bias_parameter_is_trained():
    h, w, y = _problem()
    bias = torch.nn.Parameter(torch.zeros(w.shape[0], dtype=F64))
    module = lf.LinearCrossEntropyLoss(bias=bias, label_smoothing=0.1)
    assert any(p is bias for p in module.parameters())
    module(h, w, y).backward()
    b2 = torch.zeros(w.shape[0], dtype=F64, requires_grad=True)
    naive_lce(h, w, y, bias=b2, label_smoothing=0.1).backward()
    _close(bias.grad, b2.grad)
    assert "label_smoothing=0.1" in repr(module)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 30), v=st.integers(2, 25), rows=st.integers(1, 40), block=st.integers(1, 30),
       seed=st.integers(0, 10_000))
def test_chunking_never_changes_the_result(n, v, rows, block, seed):
    h, w, y = _problem(n=n, d=3, v=v, seed=seed, ignored=seed % 2 == 0)
    kw = dict(label_smoothing=0.05, softcap=4.0, z_loss=1e-3)
    a, ga = _value_and_grads(lambda h, w: LF.linear_cross_entropy(h, w, y, chunk_size=(rows, block), **kw), (h, w))
    b, gb = _value_and_grads(lambda h, w: LF.linear_cross_entropy(h, w, y, **kw), (h, w))
    _close(a, b)
    for x, z in zip(ga, gb):
        _close(x, z)


# --------------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------------


def test_lce_errors():
    h, w, y = _problem(n=4, d=3, v=5, dtype=torch.float32)
    name = "linear_cross_entropy"
    with pytest.raises(lf.ShapeError, match=rf"{name}: weight must have shape \(V, D\) with D = 3.*got \(5, 2\)"):
        LF.linear_cross_entropy(h, torch.randn(5, 2), y)
    with lf.validation(True), pytest.raises(ValueError, match=r"must hold class indices in \[0, 4\].*got class 5"):
        LF.linear_cross_entropy(h, w, torch.tensor([0, 5, 1, 2]))
    with lf.validation(True), pytest.raises(ValueError, match=r"got class -3"):
        LF.linear_cross_entropy(h, w, torch.tensor([0, -3, 1, 2]))
    with pytest.raises(TypeError, match=rf"{name}: target must be an integer tensor of class indices"):
        LF.linear_cross_entropy(h, w, y.float())
    with pytest.raises(TypeError, match=rf"{name}: hidden must be a floating-point tensor, got dtype torch.int64"):
        LF.linear_cross_entropy(h.long(), w, y)
    with pytest.raises(TypeError, match=rf"{name}: bias must be a floating-point tensor"):
        LF.linear_cross_entropy(h, w, y, bias=torch.zeros(5, dtype=torch.long))
    with pytest.raises(lf.ShapeError, match=r"target must have shape hidden.shape\[:-1\] = \(4,\)") as info:
        LF.linear_cross_entropy(h, w, y[None])
    assert info.value.expected == (4,)
    with pytest.raises(TypeError, match=r"weight is positional-only.*sample_weight="):
        LF.linear_cross_entropy(h, target=y, weight=w)
    with pytest.raises(TypeError, match=r"got an unexpected keyword argument 'label_smothing'. Did you mean"):
        LF.linear_cross_entropy(h, w, y, label_smothing=0.1)
    with pytest.raises(ValueError, match=r"normalizer replaces the denominator of the mean"):
        LF.linear_cross_entropy(h, w, y, reduction="none", normalizer=3.0)
    with pytest.raises(TypeError, match=r"normalizer must be a positive number or a 0-d real tensor"):
        LF.linear_cross_entropy(h, w, y, normalizer=torch.ones(2))
    with lf.validation(True), pytest.raises(ValueError, match=r"normalizer must be > 0, got -1"):
        LF.linear_cross_entropy(h, w, y, normalizer=torch.tensor(-1.0))
    with pytest.raises(ValueError, match=r"chunk_size must be None, a positive int"):
        LF.linear_cross_entropy(h, w, y, chunk_size=(4, 0))
    with pytest.raises(ValueError, match=r"softcap must be > 0"):
        lf.LinearCrossEntropyLoss(softcap=0.0)


# --------------------------------------------------------------------------------------------------
# per-sequence log-probabilities and the preference losses
# --------------------------------------------------------------------------------------------------


def naive_sequence_log_probs(h, w, y, average=False):
    logp = F.log_softmax(h @ w.T, -1)
    valid = y != -100
    tok = logp.gather(-1, torch.where(valid, y, 0)[..., None]).squeeze(-1) * valid
    out = tok.sum(-1)
    return out / valid.sum(-1).clamp_min(1) if average else out


@pytest.mark.parametrize("average", [False, True])
def test_sequence_log_probs(average):
    h, w, y = _problem(n=24, v=9, ignored=True, shape=(4, 6))
    got, g_got = _value_and_grads(lambda h, w: LF.sequence_log_probs(h, w, y, average=average), (h, w))
    want, g_want = _value_and_grads(lambda h, w: naive_sequence_log_probs(h, w, y, average), (h, w))
    _close(got, want)
    for a, c in zip(g_got, g_want):
        _close(a, c)


def test_dpo_from_hidden_states_never_holds_logits():
    """DPO on a policy head: chosen and rejected halves, log-probabilities chunked, gradients exact."""
    b, t, d, v = 4, 12, 4, 50
    h, w, y = _problem(n=b * t, d=d, v=v, shape=(b, t))
    y[:, :3] = -100  # the prompt
    ref = torch.randn(b, dtype=F64, generator=torch.Generator().manual_seed(2)) - 30

    def ours(h, w):
        lp = LF.sequence_log_probs(h, w, y, chunk_size=8)
        return LF.dpo_loss(lp[: b // 2], lp[b // 2:], ref_chosen_log_probs=ref[: b // 2],
                           ref_rejected_log_probs=ref[b // 2:], beta=0.2)

    def naive(h, w):
        lp = naive_sequence_log_probs(h, w, y)
        m = (lp[: b // 2] - ref[: b // 2]) - (lp[b // 2:] - ref[b // 2:])
        return -F.logsigmoid(0.2 * m).mean()

    got, g_got = _value_and_grads(ours, (h, w))
    want, g_want = _value_and_grads(naive, (h, w))
    _close(got, want)
    for a, c in zip(g_got, g_want):
        _close(a, c)
    hh, ww = h.float().requires_grad_(), w.float().requires_grad_()
    with LargestTensor() as rec:
        lp = LF.sequence_log_probs(hh, ww, y, chunk_size=8)
        LF.dpo_loss(lp[:2], lp[2:]).backward()
    assert rec.largest < b * t * v


def _pairs(n=6, seed=0, low=-30.0):
    g = torch.Generator().manual_seed(seed)
    return [low * torch.rand(n, generator=g, dtype=F64) for _ in range(4)]


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_dpo(label_smoothing):
    c, r, rc, rr = _pairs()
    beta = 0.3
    m = (c - rc) - (r - rr)
    want = -(1 - label_smoothing) * F.logsigmoid(beta * m) - label_smoothing * F.logsigmoid(-beta * m)
    got = LF.dpo_loss(c, r, ref_chosen_log_probs=rc, ref_rejected_log_probs=rr, beta=beta,
                      label_smoothing=label_smoothing, reduction="none")
    _close(got, want)
    # reference-free: a uniform reference, i.e. reference log-probabilities 0
    _close(LF.dpo_loss(c, r, beta=beta), LF.dpo_loss(c, r, ref_chosen_log_probs=0 * c, ref_rejected_log_probs=0 * r,
                                                    beta=beta))
    # golden: margin 2, beta 0.1 -> log(1 + e^-0.2)
    _close(LF.dpo_loss(torch.tensor([-1.0], dtype=F64), torch.tensor([-3.0], dtype=F64)),
           torch.tensor(math.log1p(math.exp(-0.2)), dtype=F64))
    module = lf.DPOLoss(beta=beta, label_smoothing=label_smoothing, reduction="none")
    _close(module(c, r, ref_chosen_log_probs=rc, ref_rejected_log_probs=rr), got)
    with pytest.raises(ValueError, match=r"dpo_loss: ref_chosen_log_probs must be given together with"):
        LF.dpo_loss(c, r, ref_rejected_log_probs=rr)


def test_ipo_simpo():
    c, r, rc, rr = _pairs()
    m = (c - rc) - (r - rr)
    _close(LF.ipo_loss(c, r, ref_chosen_log_probs=rc, ref_rejected_log_probs=rr, beta=0.25, reduction="none"),
           (m - 2.0) ** 2)
    _close(LF.ipo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]), beta=0.5), torch.tensor(1.0))
    ca, ra = c / 10, r / 10
    want = -0.9 * F.logsigmoid(2.5 * (ca - ra) - 1.2) - 0.1 * F.logsigmoid(1.2 - 2.5 * (ca - ra))
    _close(LF.simpo_loss(ca, ra, beta=2.5, gamma=1.2, label_smoothing=0.1, reduction="none"), want)


@pytest.mark.parametrize("nll", [True, False])
def test_orpo(nll):
    c, r = -3 * torch.rand(6, dtype=F64), -3 * torch.rand(6, dtype=F64)
    pc, pr = c.exp(), r.exp()
    log_odds = torch.log(pc / (1 - pc)) - torch.log(pr / (1 - pr))
    want = -0.2 * F.logsigmoid(log_odds) - (c if nll else 0)
    _close(LF.orpo_loss(c, r, beta=0.2, nll=nll, reduction="none"), want, rtol=1e-9)
    # an average log-probability of exactly 0 (odds infinite): finite loss and gradient
    x = torch.tensor([0.0, -1e-12, -50.0], dtype=F64, requires_grad=True)
    out = LF.orpo_loss(x, torch.full((3,), -2.0, dtype=F64))
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(x.grad).all()
    with lf.validation(True), pytest.raises(ValueError, match=r"orpo_loss: chosen_log_probs must hold log-prob"):
        LF.orpo_loss(torch.tensor([0.1]), torch.tensor([-1.0]))


def test_kto():
    g = torch.Generator().manual_seed(4)
    lp, ref = -30 * torch.rand(8, generator=g, dtype=F64), -30 * torch.rand(8, generator=g, dtype=F64)
    good = torch.rand(8, generator=g) < 0.5
    z0 = torch.tensor(0.7, dtype=F64, requires_grad=True)
    beta, ld, lu = 0.2, 1.0, 1.5
    reward = lp - ref
    want = torch.where(good, ld * (1 - torch.sigmoid(beta * (reward - 0.7))),
                       lu * (1 - torch.sigmoid(beta * (0.7 - reward)))).detach()
    lp.requires_grad_()
    got = LF.kto_loss(lp, ref, good, kl=z0, beta=beta, desirable_weight=ld, undesirable_weight=lu, reduction="none")
    _close(got, want)
    got.sum().backward()
    assert lp.grad is not None and z0.grad is None  # the reference point is never differentiated
    _close(LF.kto_loss(torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([True]), beta=0.5),
           torch.tensor(1 - 1 / (1 + math.exp(-1.0)), dtype=torch.float32))


# --------------------------------------------------------------------------------------------------
# vocabulary-parallel cross-entropy (one process; two processes: tests/test_distributed_llm.py)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_vocab_parallel_single_process_is_cross_entropy(reduction):
    h, w, y = _problem(n=12, v=9, ignored=True)
    logits = h @ w.T
    kw = dict(label_smoothing=0.1, z_loss=1e-2, reduction=reduction)
    got, g_got = _value_and_grads(lambda x: LF.vocab_parallel_cross_entropy(x, y, **kw), (logits,))
    want, g_want = _value_and_grads(lambda x: naive_lce(x, torch.eye(9, dtype=F64), y, **kw), (logits,))
    _close(got, want)
    _close(g_got[0], g_want[0])


def test_vocab_parallel_shards_in_one_process():
    """Two shards whose statistics are combined by hand equal the whole (what the all-reduce does)."""
    h, w, y = _problem(n=10, v=8)
    logits = h @ w.T
    full = LF.vocab_parallel_cross_entropy(logits, y, reduction="none")
    lse = torch.logsumexp(torch.stack([torch.logsumexp(logits[:, :4], 1), torch.logsumexp(logits[:, 4:], 1)]), 0)
    _close(full, lse - logits.gather(1, y[:, None]).squeeze(1))


# --------------------------------------------------------------------------------------------------
# linear distillation
# --------------------------------------------------------------------------------------------------


def naive_distill(hs, ws, ht, wt, *, divergence="forward_kl", beta=0.5, temperature=1.0, student_bias=None,
                  teacher_bias=None, reduction="mean", mask=None):
    lq = F.log_softmax(F.linear(hs, ws, student_bias) / temperature, -1)
    lp = F.log_softmax(F.linear(ht, wt, teacher_bias) / temperature, -1)
    p, q = lp.exp(), lq.exp()
    if divergence == "forward_kl":
        u = F.kl_div(lq, lp, log_target=True, reduction="none").sum(-1)
    elif divergence == "reverse_kl":
        u = F.kl_div(lp, lq, log_target=True, reduction="none").sum(-1)
    else:
        m = beta * p + (1 - beta) * q
        u = beta * (p * (lp - m.log())).sum(-1) + (1 - beta) * (q * (lq - m.log())).sum(-1)
    u = temperature**2 * u
    wt = torch.ones_like(u) if mask is None else mask.to(u.dtype)
    return _reduce(u * wt, wt, reduction)


@pytest.mark.parametrize("reduction", ["none", "mean"])
@pytest.mark.parametrize(("divergence", "beta"), [("forward_kl", 0.5), ("reverse_kl", 0.5), ("jsd", 0.5),
                                                  ("jsd", 0.2)])
def test_linear_distillation(divergence, beta, reduction):
    g = torch.Generator().manual_seed(9)
    hs, ws = torch.randn(3, 5, 4, generator=g, dtype=F64), torch.randn(13, 4, generator=g, dtype=F64)
    ht, wt = torch.randn(3, 5, 6, generator=g, dtype=F64), torch.randn(13, 6, generator=g, dtype=F64)
    bs, bt = torch.randn(13, generator=g, dtype=F64), torch.randn(13, generator=g, dtype=F64)
    m = torch.rand(3, 5, generator=g) < 0.7
    kw = dict(divergence=divergence, beta=beta, temperature=1.7, reduction=reduction)
    got, g_got = _value_and_grads(lambda hs, ws, bs: LF.linear_distillation_loss(
        hs, ws, ht, wt, student_bias=bs, teacher_bias=bt, mask=m, chunk_size=4, **kw), (hs, ws, bs))
    want, g_want = _value_and_grads(lambda hs, ws, bs: naive_distill(
        hs, ws, ht, wt, student_bias=bs, teacher_bias=bt, mask=m, **kw), (hs, ws, bs))
    _close(got, want)
    for a, c in zip(g_got, g_want):
        _close(a, c)


def test_linear_forward_kl_equals_distillation_loss_and_teacher_is_constant():
    g = torch.Generator().manual_seed(10)
    hs, ws = torch.randn(8, 4, generator=g, dtype=F64), torch.randn(7, 4, generator=g, dtype=F64)
    ht = torch.randn(8, 3, generator=g, dtype=F64, requires_grad=True)
    wt = torch.randn(7, 3, generator=g, dtype=F64, requires_grad=True)
    ws.requires_grad_()
    out = LF.linear_distillation_loss(hs, ws, ht, wt, temperature=3.0)
    _close(out, LF.distillation_loss(hs @ ws.T, (ht @ wt.T).detach(), temperature=3.0))
    out.backward()
    assert ht.grad is None and wt.grad is None and ws.grad is not None
    with LargestTensor() as rec:
        LF.linear_distillation_loss(hs.float(), ws.detach().float().requires_grad_(), ht.detach().float(),
                                    wt.detach().float(), chunk_size=2).backward()
    assert rec.largest <= max(2 * 7, 7 * 4, 8 * 4) < 8 * 7  # chunks of 2 x V, the heads, the hidden states


def test_distillation_errors():
    hs, ws, ht, wt = torch.randn(4, 3), torch.randn(5, 3), torch.randn(4, 2), torch.randn(5, 2)
    with pytest.raises(ValueError, match=r"linear_distillation_loss: divergence must be one of .* Did you mean 'jsd'"):
        LF.linear_distillation_loss(hs, ws, ht, wt, divergence="jsdd")
    with pytest.raises(lf.ShapeError, match=r"teacher_weight must have the student's vocabulary"):
        LF.linear_distillation_loss(hs, ws, ht, torch.randn(6, 2))
    with pytest.raises(ValueError, match=r"beta must be in \(0, 1\), got 0.0"):
        LF.linear_distillation_loss(hs, ws, ht, wt, divergence="jsd", beta=0.0)


@pytest.mark.slow
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_lce_under_torch_compile(reduction):
    """Compiled (fullgraph): ignored tokens are zero-weighted instead of dropped; same values and gradients."""
    h, w, y = _problem(ignored=True)
    sw = torch.rand(y.shape, dtype=F64, generator=torch.Generator().manual_seed(1))

    def fn(h, w):
        return LF.linear_cross_entropy(h, w, y, reduction=reduction, sample_weight=sw, label_smoothing=0.1,
                                       softcap=3.0, chunk_size=5)

    torch._dynamo.reset()
    try:
        compiled = torch.compile(fn, fullgraph=True, backend="aot_eager")
        with lf.validation(False):  # value checks sync: they are off where compile matters
            got, g_got = _value_and_grads(compiled, (h, w))
    finally:
        torch._dynamo.reset()
    want, g_want = _value_and_grads(lambda h, w: naive_lce(h, w, y, reduction=reduction, sample_weight=sw,
                                                           label_smoothing=0.1, softcap=3.0), (h, w))
    _close(got, want)
    for a, c in zip(g_got, g_want):
        _close(a, c)
