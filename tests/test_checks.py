"""The verifier catches what it claims to catch.

A tiny correct loss (``good_l2``, ``good_ce``) passes every check; each mutant below carries one
real-world bug class and must make THAT check fail (style.md §13.8 item 8: a test that cannot fail
is a defect). The registry's exemplar losses pass every check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

import lossforge as lf
from lossforge._core.base import FunctionLoss, loss_function
from lossforge._core.checks import (
    check_class_target_shape,
    check_float,
    check_index_target,
    check_same_shape,
    upcast,
)
from lossforge._core.reduction import Reduction, ignore_index_mask, reduce_loss
from lossforge._core.samples import ErrorSample, Sample, generator, randint, randn
from lossforge.verify import CHECKS, CHECKS_SLOW, CheckResult, CheckTarget, run_checks

# ----------------------------------------------------------------------------- a correct real-valued loss


@loss_function
def good_l2(pred: Tensor, target: Tensor, /, *, scale: float = 1.0, reduction: Reduction = "mean",
            sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    r"""Scaled squared error (a test loss).

    .. math::
        U_i = s\,(\hat y_i - y_i)^2

    Args:
        pred: Predictions.
        target: Targets of the shape of ``pred``.
        scale: The factor :math:`s`.
        reduction, sample_weight, mask: As every lossforge loss.

    Shape:
        - pred, target: ``(*)``; output ``(*)`` for ``"none"``, else ``()``.

    References:
        Gauss 1809.

    Examples:
        >>> good_l2(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0]))
        tensor(5.)
    """
    check_float(pred, "pred", "good_l2")
    check_same_shape(pred, target, "good_l2")
    u = scale * (upcast(pred) - upcast(target)).square()
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name="good_l2")


class GoodL2Loss(FunctionLoss):
    """Module form of ``good_l2``."""

    function = good_l2

    def __init__(self, *, scale: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, scale=scale)


def _pairs(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, shape in enumerate([(6, 4), (5,)]):
        g = generator(seed)
        out.append(Sample((randn(*shape, gen=g, dtype=dtype, device=device),
                           randn(*shape, gen=g, dtype=dtype, device=device)), name=f"shape{shape}"))
    return out


def _l2_errors() -> list[ErrorSample]:
    x = torch.randn(4, 3)
    return [
        ErrorSample((x, torch.randn(4)), {}, ValueError, r"good_l2: target must have the shape of pred"),
        ErrorSample((torch.randn(4), torch.randn(4, 1)), {}, ValueError, r"target must have the shape of pred \(4,\)"),
        ErrorSample((x, x), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
    ]


GOOD = CheckTarget(name="good_l2", function=good_l2, sample_inputs=_pairs, module_factory=GoodL2Loss,
                   error_inputs=_l2_errors, reference="Gauss 1809")


def mutant(function: Callable[..., Tensor] | None = None, base: CheckTarget = GOOD, **changes: Any) -> CheckTarget:
    """``base`` with another function (its docstring kept) or other fields."""
    if function is not None:
        function.__doc__ = base.function.__doc__
        changes["function"] = function
    return dataclasses.replace(base, **changes)


def _u(pred: Tensor, target: Tensor) -> Tensor:
    return (upcast(pred) - upcast(target)).square()


# ----------------------------------------------------------------------------- a correct index-target loss


@loss_function
def good_ce(logits: Tensor, target: Tensor, /, *, ignore_index: int | None = -100, reduction: Reduction = "mean",
            sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    r"""Cross-entropy (a test loss).

    .. math::
        U_n = -\log \operatorname{softmax}(x_n)_{y_n}

    Args:
        logits: Scores ``(N, C)``.
        target: Class indices ``(N,)``.
        ignore_index: Left out.
        reduction, sample_weight, mask: As every lossforge loss.

    Shape:
        - logits ``(N, C)``, target ``(N,)``.

    References:
        Any textbook.

    Examples:
        >>> good_ce(torch.zeros(2, 4), torch.tensor([0, 3]))
        tensor(1.3863)
    """
    check_float(logits, "logits", "good_ce")
    check_index_target(target, "good_ce")
    check_class_target_shape(logits, target, "good_ce")
    safe, keep = ignore_index_mask(target, ignore_index)
    u = -upcast(logits).log_softmax(1).gather(1, safe.unsqueeze(1)).squeeze(1)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=keep, loss_name="good_ce")


def _index(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    logits = randn(8, 4, gen=g, dtype=dtype, device=device, scale=2.0)
    target = randint(4, 8, gen=g, device=device)
    ignored = target.clone()
    ignored[::3] = -100
    return [Sample((logits, target), name="(N, C)"), Sample((logits, ignored), name="ignored", plain=False)]


GOOD_CE = CheckTarget(name="good_ce", function=good_ce, sample_inputs=_index, input_kind="logits",
                      target_kind="index", reference="textbook",
                      error_inputs=lambda: [ErrorSample((torch.randn(4, 3), torch.zeros(4)), {}, TypeError,
                                                        r"integer tensor of class indices")])


# ---------------------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("target", [GOOD, GOOD_CE], ids=lambda t: t.name)
def test_correct_tiny_losses_pass(target: CheckTarget, check: str) -> None:
    result = CHECKS[check](target)
    assert result.status != "failed", str(result)


@pytest.mark.parametrize("name", ["mse", "cross_entropy"])
def test_exemplars_pass_every_check(name: str) -> None:
    results = run_checks(CheckTarget.from_spec(lf.get_loss(name)))
    assert [r.name for r in results] == list(CHECKS)
    failed = [str(r) for r in results if r.status == "failed"]
    assert not failed, "; ".join(failed)


def _fails(target: CheckTarget, check: str, *fragments: str) -> CheckResult:
    result = CHECKS[check](target)
    assert result.status == "failed", f"{check} did not catch {target.name}: {result}"
    for fragment in fragments:
        assert fragment in result.detail, result.detail
    return result


# ---- reductions (U4), invalid reduction (U5)


@loss_function
def _ignores_reduction(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                       sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    return _u(pred, target).mean()  # timm/SMP: unknown or "sum" reductions silently become mean


def test_reductions_catches_a_loss_ignoring_reduction() -> None:
    bad = mutant(_ignores_reduction, name="ignores_reduction")
    _fails(bad, "reductions", "none", "leading batch dimension")
    _fails(bad, "invalid_reduction", "was accepted")


@loss_function
def _mean_over_batch(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                     sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    u = _u(pred, target)
    if reduction == "mean":  # divides by N instead of the number of units (kornia's mean-over-C focal)
        return u.sum() / u.shape[0]
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask)


def test_reductions_catches_a_wrong_mean_denominator() -> None:
    _fails(mutant(_mean_over_batch, name="mean_over_batch"), "reductions", "mean", "24 units")


@loss_function
def _vague_reduction_error(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                           sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")  # torch's message: no hint
    return reduce_loss(_u(pred, target), reduction, sample_weight=sample_weight, mask=mask)


def test_invalid_reduction_wants_the_hint() -> None:
    _fails(mutant(_vague_reduction_error, name="vague"), "invalid_reduction", "Did you mean")


# ---- mask and weights


@loss_function
def _masks_inputs(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                  sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    if mask is not None:  # MONAI MaskedLoss: mask the inputs, not the loss terms
        pred, target = pred * mask, target * mask
    return reduce_loss(_u(pred, target), reduction, sample_weight=sample_weight)


def test_mask_subset_catches_masking_the_inputs() -> None:
    _fails(mutant(_masks_inputs, name="masks_inputs"), "mask_subset", "mean with a mask")


@loss_function
def _weight_not_in_denominator(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                               sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    u = _u(pred, target)
    if sample_weight is not None and reduction == "mean":
        return (u * sample_weight).sum() / u.numel()  # huber-style: divides by N, not Σw
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask)


def test_weights_catches_a_mean_not_normalised_by_the_weights() -> None:
    _fails(mutant(_weight_not_in_denominator, name="w_denominator"), "weights", "sample_weight")


# ---- empty policy (U12), all ignored, all masked


@loss_function
def _torch_mse(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
               sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    if sample_weight is not None or mask is not None:
        return reduce_loss(_u(pred, target), reduction, sample_weight=sample_weight, mask=mask)
    return F.mse_loss(pred, target, reduction=reduction)  # NaN for an empty mean


def test_empty_batch_catches_nan_for_an_empty_mean() -> None:
    _fails(mutant(_torch_mse, name="torch_mse"), "empty_batch", "nan")


@loss_function
def _torch_ce(logits: Tensor, target: Tensor, /, *, ignore_index: int | None = -100, reduction: Reduction = "mean",
              sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    if reduction == "mean" and sample_weight is None and mask is None:
        return F.cross_entropy(logits.float(), target, ignore_index=-100 if ignore_index is None else ignore_index)
    return good_ce(logits, target, ignore_index=ignore_index, reduction=reduction, sample_weight=sample_weight,
                   mask=mask)


def test_all_ignored_catches_nan_when_every_target_is_ignored() -> None:
    _fails(mutant(_torch_ce, base=GOOD_CE, name="torch_ce"), "all_ignored", "nan")


@loss_function
def _divides_by_mask_sum(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                         sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    u = _u(pred, target)
    if mask is not None and reduction == "mean":
        return (u * mask).sum() / mask.sum()  # 0 / 0 when everything is masked
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask)


def test_all_masked_catches_zero_over_zero() -> None:
    _fails(mutant(_divides_by_mask_sum, name="mask_sum"), "all_masked", "nan")


# ---- numerics: masked garbage, extreme inputs, gradcheck, low precision


def _binary(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    return [Sample((randn(6, 3, gen=g, dtype=dtype, device=device),
                    randint(2, 6, 3, gen=g, device=device).to(dtype)), name="(N, K)")]


@loss_function
def _log_then_mask(logits: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                   sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    p = torch.sigmoid(upcast(logits))  # log of a computed probability, then mask: NaN gradients
    u = -(target * torch.log(p) + (1 - target) * torch.log(1 - p))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask)


@loss_function
def _good_bce(logits: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
              sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    u = F.binary_cross_entropy_with_logits(upcast(logits), upcast(target), reduction="none")
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask)


GOOD_BCE = mutant(_good_bce, name="good_bce", sample_inputs=_binary, input_kind="logits", target_kind="binary",
                  module_factory=None, error_inputs=lambda: [])


def test_masked_garbage_catches_log_of_probability_then_mask() -> None:
    assert CHECKS["masked_garbage"](GOOD_BCE).status == "passed"
    _fails(mutant(_log_then_mask, base=GOOD_BCE, name="log_then_mask"), "masked_garbage", "NaN")


@loss_function
def _softmax_then_log(logits: Tensor, target: Tensor, /, *, ignore_index: int | None = -100,
                      reduction: Reduction = "mean", sample_weight: Tensor | None = None,
                      mask: Tensor | None = None) -> Tensor:
    safe, keep = ignore_index_mask(target, ignore_index)
    p = upcast(logits).softmax(1)  # not log_softmax
    u = -p.gather(1, safe.unsqueeze(1)).squeeze(1).log()
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=keep)


def test_extreme_inputs_catch_softmax_then_log() -> None:
    assert CHECKS["extreme_inputs"](GOOD_CE).status == "passed"
    _fails(mutant(_softmax_then_log, base=GOOD_CE, name="softmax_log"), "extreme_inputs", "NaN")


def test_spec_extreme_inputs_must_be_finite() -> None:
    def huge(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        return [Sample((torch.full((3,), 1e30, dtype=dtype, device=device), torch.zeros(3, dtype=dtype,
                                                                                          device=device)))]

    _fails(mutant(name="l2_overflow", extreme_inputs=huge), "extreme_inputs", "inf")


class _WrongSquare(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return 3 * x * grad  # should be 2x


@loss_function
def _wrong_gradient(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                    sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    u = _WrongSquare.apply(upcast(pred) - upcast(target))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask)


def test_gradcheck_catches_a_wrong_backward_and_says_where() -> None:
    _fails(mutant(_wrong_gradient, name="wrong_grad"), "gradcheck", "analytically", "numerically", "pred[")


class _OnceSquare(torch.autograd.Function):
    """x², with its gradient computed in the forward and handed over once (as chunked LLM losses do)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, factor: float) -> Tensor:
        ctx.grad = factor * x
        return x * x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        if ctx.grad is None:
            raise RuntimeError("this loss supports one backward per forward")
        out, ctx.grad = ctx.grad * grad, None
        return out, None


def _once(factor: float) -> Callable[..., Tensor]:
    @loss_function
    def once(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
             sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        u = _OnceSquare.apply(upcast(pred) - upcast(target), factor)
        return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask)

    return once


def test_single_backward_losses_are_checked_by_finite_differences() -> None:
    _fails(mutant(_once(2.0), name="once"), "gradcheck", "one backward per forward")
    assert CHECKS["gradcheck"](mutant(_once(2.0), name="once", single_backward=True)).status == "passed"
    _fails(mutant(_once(3.0), name="once_wrong", single_backward=True), "gradcheck", "analytically")


@loss_function
def _half_compute(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                  sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    return reduce_loss((pred - target).square(), reduction, sample_weight=sample_weight, mask=mask)  # no upcast


def test_low_precision_catches_a_half_result() -> None:
    _fails(mutant(_half_compute, name="no_upcast"), "low_precision", "float16", "expected float32")


# ---- module and signature


class _DriftedModule(FunctionLoss):
    function = good_l2

    def __init__(self, *, scale: float = 2.0, reduction: Reduction = "mean") -> None:  # function says 1.0
        super().__init__(reduction=reduction, scale=scale)


def test_module_default_drift_is_caught_twice() -> None:
    bad = mutant(name="drift", module_factory=_DriftedModule)
    _fails(bad, "signature", "scale=2.0")
    _fails(bad, "module_equals_function", "module(reduction=")


def _swallows_weight(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                     sample_weight: Tensor | None = None, mask: Tensor | None = None, **kwargs: Any) -> Tensor:
    return reduce_loss(_u(pred, target), reduction, sample_weight=sample_weight, mask=mask)


def _keyword_tensors(pred: Tensor, target: Tensor, *, reduction: Reduction = "mean",
                     sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    return good_l2(pred, target, reduction=reduction, sample_weight=sample_weight, mask=mask)


def _torch_style(pred: Tensor, target: Tensor, weight: Tensor | None = None, reduction: str = "elementwise_mean",
                 ) -> Tensor:
    return good_l2(pred, target)


def test_signature_catches_swallowed_weight_keyword_tensors_and_torch_style() -> None:
    _fails(mutant(_swallows_weight, name="swallow", module_factory=None), "signature", "weight= is accepted")
    _fails(mutant(_keyword_tensors, name="kw", module_factory=None), "signature", "not positional-only")
    _fails(mutant(_torch_style, name="torch_style", module_factory=None), "signature", "'weight'",
           "no keyword 'mask'", "'reduction' is not keyword-only")


def test_docstring_catches_a_missing_section_and_missing_error_inputs() -> None:
    def no_refs(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """Squared error.

        Args:
            pred: Predictions.

        Examples:
            >>> 1
            1
        """
        return good_l2(pred, target, reduction=reduction, sample_weight=sample_weight, mask=mask)

    bad = dataclasses.replace(GOOD, function=no_refs, error_inputs=lambda: [], reference="")
    _fails(bad, "docstring", "formula", "Shape:", "References:", "no error inputs", "no reference")


# ---- batch structure (U10, U11)


@loss_function
def _batch_centred(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                   sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    r = upcast(pred) - upcast(target)
    return reduce_loss((r - r.mean(0)).square(), reduction, sample_weight=sample_weight, mask=mask)


def test_batch_additivity_catches_hidden_batch_coupling() -> None:
    bad = mutant(_batch_centred, name="centred")
    _fails(bad, "batch_additivity", "sum over")
    assert CHECKS["batch_additivity"](dataclasses.replace(bad, separable=False)).status == "skipped"


@loss_function
def _position_weighted(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                       sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    u = _u(pred, target)
    ramp = torch.arange(1, u.shape[0] + 1, dtype=u.dtype, device=u.device).reshape(-1, *([1] * (u.dim() - 1)))
    return reduce_loss(u * ramp, reduction, sample_weight=sample_weight, mask=mask)


def test_permutation_catches_a_position_dependent_loss() -> None:
    _fails(mutant(_position_weighted, name="ramp"), "permutation", "permuted")


@loss_function
def _view_distance(views: Tensor, /, *, reduction: Reduction = "mean", sample_weight: Tensor | None = None,
                   mask: Tensor | None = None) -> Tensor:
    u = (upcast(views[0]) - upcast(views[1])).square().sum(-1)  # views (2, N, D): one unit per sample
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask)


def _views(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    return [Sample((randn(2, 6, 3, gen=generator(0), dtype=dtype, device=device),), name="(2, N, D)")]


def test_batch_dim_other_than_zero() -> None:
    views = mutant(_view_distance, name="views", sample_inputs=_views, module_factory=None, target_kind="none")
    assert CHECKS["batch_additivity"](views).status == "failed"  # dim 0 holds the views, not the samples
    stacked = dataclasses.replace(views, batch_dim=1)
    for check in ("empty_batch", "batch_additivity", "permutation"):
        result = CHECKS[check](stacked)
        assert result.status == "passed", str(result)


# ---- side effects (U15, U16, U20, U21)


@loss_function
def _sanitises_in_place(logits: Tensor, target: Tensor, /, *, ignore_index: int | None = -100,
                        reduction: Reduction = "mean", sample_weight: Tensor | None = None,
                        mask: Tensor | None = None) -> Tensor:
    keep = target != ignore_index
    target[~keep] = 0  # sanitising the caller's tensor
    u = -upcast(logits).log_softmax(1).gather(1, target.unsqueeze(1)).squeeze(1)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=keep)


def test_no_mutation_catches_in_place_target_sanitising() -> None:
    _fails(mutant(_sanitises_in_place, base=GOOD_CE, name="in_place"), "no_mutation", "target was modified in place")


class _RunningMean(FunctionLoss):
    """Keeps a running mean of the loss in a buffer (hidden state in forward)."""

    function = good_l2

    def __init__(self, *, scale: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, scale=scale)
        self.register_buffer("running", torch.zeros(()))

    def forward(self, *inputs: Any, **kwargs: Any) -> Tensor:
        out = super().forward(*inputs, **kwargs)
        self.running.add_(out.detach().mean())
        return out


def test_no_mutation_catches_state_changed_in_forward() -> None:
    _fails(mutant(name="running", module_factory=_RunningMean), "no_mutation", "module state 'running' was modified")


@loss_function
def _noisy(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
           sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    u = _u(pred, target)
    return reduce_loss(u + 1e-6 * torch.rand_like(u), reduction, sample_weight=sample_weight, mask=mask)


def test_determinism_catches_noise() -> None:
    _fails(mutant(_noisy, name="noisy"), "determinism", "two runs differ")


class _ForgetsScale(FunctionLoss):
    """Keeps a tensor hyper-parameter in a non-persistent buffer: lost by state_dict."""

    function = good_l2

    def __init__(self, *, scale: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction)
        self.register_buffer("scale_t", torch.tensor(scale), persistent=False)

    def forward(self, *inputs: Any, **kwargs: Any) -> Tensor:
        return self.scale_t * good_l2(*inputs, reduction=self.reduction, **kwargs)


def test_state_dict_catches_a_non_persistent_buffer() -> None:
    _fails(mutant(name="forgets", module_factory=_ForgetsScale), "state_dict", "reloaded")


@loss_function
def _forces_grad(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                 sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    with torch.enable_grad():  # timm: re-enables grad inside the caller's no_grad
        return reduce_loss(_u(pred, target), reduction, sample_weight=sample_weight, mask=mask)


def test_no_grad_catches_grad_re_enabled() -> None:
    _fails(mutant(_forces_grad, name="forces_grad"), "no_grad", "torch.no_grad()")


# ---- errors


@loss_function
def _broadcasts(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
    return reduce_loss(_u(pred, target), reduction, sample_weight=sample_weight, mask=mask)  # (N,) vs (N, 1)


def test_error_inputs_catch_silent_broadcasting() -> None:
    result = _fails(mutant(_broadcasts, name="broadcasts"), "error_inputs", "did not raise ValueError")
    assert "(4,) float32, (4, 1) float32" in result.detail


def test_error_inputs_catch_a_wrong_message_and_a_wrong_type() -> None:
    def errors() -> list[ErrorSample]:
        x = torch.randn(4, 3)
        return [ErrorSample((x, torch.randn(4)), {}, ValueError, r"expected the same shape"),
                ErrorSample((x.long(), x), {}, ValueError, r"pred")]

    result = _fails(mutant(name="bad_errors", error_inputs=errors), "error_inputs", "2 of 2", "does not match",
                    "expected ValueError")
    assert "TypeError" in result.detail


def test_at_construction_errors_go_through_the_module() -> None:
    errors = [ErrorSample((), {"scale": "big"}, ValueError, r"scale", at_construction=True)]
    _fails(mutant(name="ctor", error_inputs=lambda: errors), "error_inputs", "did not raise")


# ---- the runner


def test_a_loss_that_always_raises_gives_results_not_exceptions() -> None:
    def broken(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
               sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        raise RuntimeError("kernel exploded")

    results = run_checks(mutant(broken, name="broken", module_factory=None))
    assert [r.name for r in results] == list(CHECKS)
    assert {r.name for r in results if r.status == "passed"} <= {"docstring"}
    reductions = next(r for r in results if r.name == "reductions")
    assert "RuntimeError: kernel exploded" in reductions.detail


def test_run_checks_accepts_a_spec_and_refuses_unknown_names() -> None:
    results = run_checks(lf.get_loss("cross_entropy"), ["reductions", "gradcheck"])
    assert [r.status for r in results] == ["passed", "passed"]
    with pytest.raises(ValueError, match=r"names must be check names, got 'gradchek'. Did you mean 'gradcheck'"):
        run_checks(GOOD, ["gradchek"])


def test_target_detects_what_the_callable_accepts() -> None:
    assert (GOOD.accepts_reduction, GOOD.accepts_sample_weight, GOOD.accepts_mask) == (True, True, True)
    assert not GOOD.accepts_ignore_index and GOOD_CE.accepts_ignore_index
    assert GOOD.arg_names == ("pred", "target") and GOOD.target_position == 1
    plain = mutant(_torch_style, name="plain", module_factory=None)
    assert not plain.accepts_mask and not plain.accepts_sample_weight


def test_checks_leave_the_global_rng_and_threads_alone() -> None:
    threads = torch.get_num_threads()
    state = torch.get_rng_state()
    run_checks(mutant(_noisy, name="noisy"), ["determinism", "gradcheck", "permutation"])
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.get_num_threads() == threads


def test_result_str_and_ok() -> None:
    result = CheckResult("gradcheck", "skipped", "no float input")
    assert result.ok and str(result) == "gradcheck: skipped (no float input)"
    assert not CheckResult("x", "failed").ok


# ---- compile (U17)


@pytest.mark.slow
def test_compile_passes_for_the_tiny_loss_and_catches_item_branches() -> None:
    assert CHECKS_SLOW["compile"](GOOD).status == "passed"

    @loss_function
    def branches(pred: Tensor, target: Tensor, /, *, reduction: Reduction = "mean",
                 sample_weight: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        u = _u(pred, target)
        if u.max().item() > 1e6:  # data-dependent Python control flow: a graph break
            u = u.clamp(max=1e6)
        return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask)

    _fails_slow = CHECKS_SLOW["compile"](mutant(branches, name="branches"))
    assert _fails_slow.status == "failed" and "fullgraph" in _fails_slow.detail, str(_fails_slow)


@pytest.mark.slow
def test_compile_with_inductor_on_an_exemplar() -> None:
    result = CHECKS_SLOW["compile"](CheckTarget.from_spec(lf.get_loss("mse")), backend="inductor")
    assert result.status == "passed", str(result)
