"""Sequence losses: connectionist temporal classification (CTC).

``ctc_loss`` wraps torch's CTC kernels (CPU, CUDA, cuDNN) and fixes what they leave to the caller:

- **feasibility**: a target needs ``L + R`` frames (``R`` = adjacent repeated labels, each needing a
  blank in between); an infeasible sample has ``U = inf``, or with ``zero_infinity=True``
  ``U = 0`` with a zero gradient *and is left out of the mean* (torch counts it as a zero in the
  mean, so the loss depends on how many infeasible samples a batch happens to hold);
- **the gradient**: torch's kernels return ``exp(log_probs) - gamma`` (``gamma`` the posterior
  occupation of each label), the gradient of the loss *composed with* ``log_softmax``; the true
  partial derivative with respect to ``log_probs`` is ``-gamma``. The two give the same gradient
  through a ``log_softmax``, but only the second is the derivative of the value (so gradcheck, and
  any use of ``log_probs`` that is not a ``log_softmax`` output, get the right answer);
- **errors**: lengths longer than the tensors, labels out of range or equal to ``blank``, and (in
  validation mode) raw logits passed where log-probabilities are expected give a ``ValueError``
  naming the argument and the limit;
- **empty batches** and half-precision inputs (computed in float32) work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .._core.base import FunctionLoss, loss_function
from .._core.checks import check_float, upcast
from .._core.errors import ShapeError, message
from .._core.reduction import Reduction, check_reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, randint, randn
from .._core.validation import validation_enabled

__all__ = ["ctc_loss", "CTCLoss"]

_LOSS = "ctc_loss"


def _lengths(lengths: object, argument: str, n: int, limit: int, limit_name: str, device: torch.device) -> Tensor:
    """Per-sample lengths as an int64 tensor ``(N,)``, each in ``[0, limit]``."""
    if isinstance(lengths, Tensor):
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise TypeError(message(_LOSS, argument, "must hold integers", f"dtype {lengths.dtype}"))
        out = lengths.to(device=device, dtype=torch.long)
    elif isinstance(lengths, Sequence) and all(isinstance(v, int) and not isinstance(v, bool) for v in lengths):
        out = torch.tensor(list(lengths), dtype=torch.long, device=device)
    else:
        raise TypeError(message(_LOSS, argument, "must be an integer tensor or a list of ints",
                                type(lengths).__name__))
    if out.shape != (n,):
        raise ShapeError(message(_LOSS, argument, f"must have shape ({n},) (one length per sample)",
                                 tuple(out.shape)), expected=(n,), actual=tuple(out.shape))
    if n and not torch.compiler.is_compiling():  # a host sync: skipped while tracing
        low, high = int(out.min()), int(out.max())
        if low < 0:
            raise ValueError(message(_LOSS, argument, "must be >= 0", f"a length of {low}"))
        if high > limit:
            raise ValueError(message(_LOSS, argument, f"must be at most {limit_name}={limit}",
                                     f"a length of {high}"))
    return out


def _padded_targets(targets: object, target_lengths: object, n: int, device: torch.device
                    ) -> tuple[Tensor, Tensor]:
    """``(N, S)`` padded targets and their lengths, from padded or concatenated (1-D) targets."""
    if not isinstance(targets, Tensor):
        raise TypeError(message(_LOSS, "targets", "must be a torch.Tensor", type(targets).__name__))
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise TypeError(message(_LOSS, "targets", "must hold integer labels", f"dtype {targets.dtype}"))
    if targets.device != device:
        raise ValueError(f"{_LOSS}: log_probs is on {device} but targets is on {targets.device}. "
                         f"Hint: move both to one device.")
    if targets.dim() == 2:
        if targets.shape[0] != n:
            raise ShapeError(message(_LOSS, "targets", f"must have shape ({n}, S) (padded) or (sum of lengths,)",
                                     tuple(targets.shape)), expected=(n, "S"), actual=tuple(targets.shape))
        lengths = _lengths(target_lengths, "target_lengths", n, targets.shape[1], "S (the targets' width)", device)
        return targets.long(), lengths
    if targets.dim() == 1:
        lengths = _lengths(target_lengths, "target_lengths", n, targets.numel(), "the number of targets", device)
        if torch.compiler.is_compiling():
            width = targets.numel()  # the static bound: no host sync while tracing
        else:
            total = int(lengths.sum())
            if total != targets.numel():
                raise ValueError(message(_LOSS, "target_lengths", f"must sum to the number of concatenated "
                                         f"targets ({targets.numel()})", f"a sum of {total}"))
            width = int(lengths.max()) if n else 0
        positions = torch.arange(width, device=device)
        inside = positions < lengths.unsqueeze(1)
        if targets.numel() == 0:
            return targets.new_zeros((n, width), dtype=torch.long), lengths
        starts = torch.cumsum(lengths, 0) - lengths
        index = (starts.unsqueeze(1) + positions).clamp_max(targets.numel() - 1)
        return torch.where(inside, targets.long()[index], 0), lengths
    raise ShapeError(message(_LOSS, "targets", "must have shape (N, S) (padded) or (sum of lengths,)",
                             tuple(targets.shape)), expected=(n, "S"), actual=tuple(targets.shape))


def _frames_needed(targets: Tensor, lengths: Tensor) -> Tensor:
    """Frames a target needs: its length plus one blank between each pair of equal adjacent labels."""
    if targets.shape[1] < 2:
        return lengths
    inside = torch.arange(1, targets.shape[1], device=targets.device) < lengths.unsqueeze(1)
    repeats = ((targets[:, 1:] == targets[:, :-1]) & inside).sum(1)
    return lengths + repeats


def _validate(lp: Tensor, targets: Tensor, target_lengths: Tensor, input_lengths: Tensor, blank: int) -> None:
    """Validation-mode checks: labels in range and not blank; rows of ``log_probs`` normalised."""
    num_classes = lp.shape[2]
    inside = torch.arange(targets.shape[1], device=targets.device) < target_lengths.unsqueeze(1)
    labels = targets[inside]
    if labels.numel():
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise ValueError(message(_LOSS, "targets", f"must hold labels in [0, {num_classes - 1}] "
                                     f"(C={num_classes} classes)", f"the label {bad}"))
        if bool((labels == blank).any()):
            raise ValueError(message(_LOSS, "targets", f"must not contain the blank label {blank}",
                                     "a blank inside a target") + " Hint: strip blanks or pass blank= another index.")
    frames = torch.arange(lp.shape[0], device=lp.device).unsqueeze(1) < input_lengths.unsqueeze(0)
    total = torch.logsumexp(lp.detach(), dim=2)[frames]
    if total.numel() and float(total.abs().max()) > 1e-2:
        worst = float(total[total.abs().argmax()].exp())
        raise ValueError(message(_LOSS, "log_probs", "must be log-probabilities over the classes",
                                 f"frames whose probabilities sum to {worst:.4g}")
                         + " Hint: pass log_softmax(logits, dim=-1).")


@torch.library.custom_op("lossforge::ctc_nll", mutates_args=())
def _ctc_nll_op(lp: Tensor, targets: Tensor, input_len: Tensor, target_len: Tensor, blank: int,
                zero_infinity: bool) -> tuple[Tensor, Tensor]:
    """torch's CTC kernel, as an opaque operator with a static output shape.

    Returns ``(nll (N,), log_alpha (N, T, 2S + 1))``; ``log_alpha`` (the forward variables the
    backward kernel reads) is padded to the targets' width ``S``, so that ``torch.compile`` can
    trace the loss (aten's own output shape depends on ``max(target_lengths)``).
    """
    nll, log_alpha = torch.ops.aten._ctc_loss(lp, targets, input_len, target_len, blank, zero_infinity)
    width = 2 * targets.shape[1] + 1
    padded = log_alpha.new_full((lp.shape[1], lp.shape[0], width), float("-inf"))
    padded[:, :, : log_alpha.shape[2]] = log_alpha
    return nll, padded


@_ctc_nll_op.register_fake
def _(lp: Tensor, targets: Tensor, input_len: Tensor, target_len: Tensor, blank: int,
      zero_infinity: bool) -> tuple[Tensor, Tensor]:
    return lp.new_empty(lp.shape[1]), lp.new_empty((lp.shape[1], lp.shape[0], 2 * targets.shape[1] + 1))


@torch.library.custom_op("lossforge::ctc_nll_backward", mutates_args=())
def _ctc_nll_backward_op(grad: Tensor, lp: Tensor, targets: Tensor, input_len: Tensor, target_len: Tensor,
                         nll: Tensor, log_alpha: Tensor, blank: int, zero_infinity: bool) -> Tensor:
    """The derivative of ``nll`` w.r.t. ``lp``: torch's backward kernel minus its ``exp(lp)`` term."""
    width = 2 * (int(target_len.max()) if target_len.numel() else 0) + 1
    out = torch.ops.aten._ctc_loss_backward(grad, lp, targets, input_len, target_len, nll,
                                            log_alpha[:, :, :width].contiguous(), blank, zero_infinity)
    valid = torch.arange(lp.shape[0], device=lp.device).unsqueeze(1) < input_len.unsqueeze(0)  # (T, N)
    if zero_infinity:
        valid = valid & ~torch.isinf(nll).unsqueeze(0)
    scale = torch.where(valid, grad.to(lp.dtype).unsqueeze(0), 0.0)
    return out - lp.exp() * scale.unsqueeze(2)


@_ctc_nll_backward_op.register_fake
def _(grad: Tensor, lp: Tensor, targets: Tensor, input_len: Tensor, target_len: Tensor, nll: Tensor,
      log_alpha: Tensor, blank: int, zero_infinity: bool) -> Tensor:
    return torch.empty_like(lp)


def _ctc_setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
    lp, targets, input_len, target_len, blank, zero_infinity = inputs
    ctx.save_for_backward(lp, targets, input_len, target_len, *output)
    ctx.blank, ctx.zero_infinity = blank, zero_infinity


def _ctc_backward(ctx: Any, grad: Tensor, _grad_alpha: Tensor) -> tuple[Tensor | None, ...]:
    lp, targets, input_len, target_len, nll, log_alpha = ctx.saved_tensors
    grad_lp = _ctc_nll_backward_op(grad.contiguous(), lp, targets, input_len, target_len, nll, log_alpha,
                                   ctx.blank, ctx.zero_infinity)
    return grad_lp, None, None, None, None, None


_ctc_nll_op.register_autograd(_ctc_backward, setup_context=_ctc_setup)


def _ctc_nll(lp: Tensor, targets: Tensor, input_len: Tensor, target_len: Tensor, blank: int,
             zero_infinity: bool) -> Tensor:
    """``-log p(target | lp)`` per sample, with the exact gradient (see the module docstring)."""
    return _ctc_nll_op(lp, targets, input_len, target_len, blank, zero_infinity)[0]


@loss_function
def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor | Sequence[int],
    target_lengths: Tensor | Sequence[int],
    /,
    *,
    blank: int = 0,
    zero_infinity: bool = False,
    batch_first: bool = False,
    length_normalized: bool = False,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Connectionist temporal classification: the negative log-likelihood of a label sequence over all alignments.

    For sequence outputs without a frame-level alignment (speech, handwriting, OCR): the
    probability of target :math:`l` sums over every frame path :math:`\pi` that collapses to it
    (merge repeats, then drop blanks), computed by the forward-backward recursion.

    .. math::
        U_n = -\log \sum_{\pi \in \mathcal{B}^{-1}(l_n)} \prod_{t=1}^{T_n} p_t(\pi_t),
        \qquad \text{optionally divided by } \max(|l_n|, 1)

    Args:
        log_probs: Log-probabilities over ``C`` classes (blank included), ``(T, N, C)``, or
            ``(N, T, C)`` with ``batch_first=True``: a ``log_softmax`` output.
        targets: Labels, padded ``(N, S)`` or concatenated ``(sum(target_lengths),)``; integers in
            ``[0, C)``, never ``blank``.
        input_lengths: Frames per sample, ``(N,)`` tensor or list, each ``<= T``.
        target_lengths: Labels per sample, ``(N,)`` tensor or list, each ``<= S``.
        blank: Index of the blank class.
        zero_infinity: Give an infeasible sample (fewer frames than its target needs) ``U = 0``
            and a zero gradient, and leave it out of the mean. Otherwise its ``U`` is ``inf``.
        batch_first: ``log_probs`` is ``(N, T, C)``.
        length_normalized: Divide each ``U_n`` by its target length (at least 1): with
            ``reduction="mean"`` this is torch's ``reduction="mean"``.
        reduction, sample_weight, mask: See the conventions page. Unit: one sequence.

    Shape:
        - log_probs: ``(T, N, C)`` or ``(N, T, C)``; targets: ``(N, S)`` or ``(sum of lengths,)``.
        - output: ``(N,)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``log_probs`` is not 3-D or the targets or lengths do not fit the batch.
        TypeError: If ``log_probs`` is not floating point or the targets or lengths are not integers.
        ValueError: If a length is negative or longer than its tensor (naming the maximum), if the
            concatenated targets do not match the lengths; in validation mode, if a label is out of
            range or ``blank``, or if the rows of ``log_probs`` are not normalised.

    Note:
        Without ``zero_infinity`` and ``length_normalized`` and with no infeasible sample,
        ``reduction="sum"`` equals torch's. The gradient is the exact derivative of the value with
        respect to ``log_probs`` (torch's kernels return it plus ``exp(log_probs)``, which a
        following ``log_softmax`` removes); no double backward (as in torch).

    References:
        Graves et al., *Connectionist Temporal Classification: Labelling Unsegmented Sequence Data
        with Recurrent Neural Networks*, ICML 2006. https://doi.org/10.1145/1143844.1143891

    Examples:
        >>> import torch
        >>> from lossforge.functional import ctc_loss
        >>> log_probs = torch.full((3, 1, 3), 1 / 3).log()  # 3 frames, uniform over {blank, a, b}
        >>> ctc_loss(log_probs, torch.tensor([[1]]), [3], [1])  # paths to "a": 6 of 27
        tensor(1.5041)
    """
    check_reduction(reduction, _LOSS)
    check_float(log_probs, "log_probs", _LOSS)
    if log_probs.dim() != 3:
        layout = "(N, T, C)" if batch_first else "(T, N, C)"
        raise ShapeError(message(_LOSS, "log_probs", f"must have shape {layout}", tuple(log_probs.shape)),
                         expected=layout, actual=tuple(log_probs.shape))
    if isinstance(blank, bool) or not isinstance(blank, int) or not 0 <= blank < log_probs.shape[2]:
        raise ValueError(message(_LOSS, "blank", f"must be an int in [0, {log_probs.shape[2] - 1}]", repr(blank)))
    lp = upcast(log_probs)
    lp = lp.transpose(0, 1) if batch_first else lp  # (T, N, C)
    frames, n = lp.shape[0], lp.shape[1]
    device = lp.device
    input_len = _lengths(input_lengths, "input_lengths", n, frames, "T (the frames of log_probs)", device)
    padded, target_len = _padded_targets(targets, target_lengths, n, device)
    if validation_enabled() and not torch.compiler.is_compiling():  # host syncs
        _validate(lp, padded, target_len, input_len, blank)
    feasible = input_len >= _frames_needed(padded, target_len)

    if n == 0 or frames == 0 or lp.shape[2] == 0:
        # torch's kernels refuse empty tensors: no frame gives U = 0 for an empty target, else inf.
        u = torch.where(target_len == 0, 0.0, float("inf")).to(lp.dtype) + lp.sum((0, 2)) * 0
    else:
        u = _ctc_nll(lp, padded, input_len, target_len, blank, zero_infinity)
        if zero_infinity:
            u = torch.where(torch.isinf(u), u.new_zeros(()), u)
    if length_normalized:
        u = u / target_len.clamp_min(1).to(u.dtype)
    keep = feasible if zero_infinity else None
    if keep is not None:
        u = torch.where(keep, u, u.new_zeros(()))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, keep=keep, loss_name=_LOSS)


def _check_ctc_args(*, blank: int = 0, zero_infinity: bool = False, batch_first: bool = False,
                    length_normalized: bool = False, **_: object) -> None:
    if isinstance(blank, bool) or not isinstance(blank, int) or blank < 0:
        raise ValueError(message(_LOSS, "blank", "must be an int >= 0", repr(blank)))
    for name, value in (("zero_infinity", zero_infinity), ("batch_first", batch_first),
                        ("length_normalized", length_normalized)):
        if not isinstance(value, bool):
            raise TypeError(message(_LOSS, name, "must be a bool", repr(value)))


class CTCLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.ctc_loss`.

    Called as ``loss(log_probs, targets, input_lengths, target_lengths)``.

    Args:
        blank: Index of the blank class.
        zero_infinity: Infeasible samples give 0 (zero gradient) and leave the mean.
        batch_first: ``log_probs`` is ``(N, T, C)`` instead of ``(T, N, C)``.
        length_normalized: Divide each sequence's loss by its target length.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = ctc_loss
    validate = _check_ctc_args

    def __init__(self, *, blank: int = 0, zero_infinity: bool = False, batch_first: bool = False,
                 length_normalized: bool = False, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, blank=blank, zero_infinity=zero_infinity, batch_first=batch_first,
                         length_normalized=length_normalized)


# ----------------------------------------------------------------------------------- registration


def _log_probs(n: int, frames: int, classes: int, gen: torch.Generator, dtype: torch.dtype,
               device: torch.device | str, scale: float = 1.0) -> Tensor:
    logits = randn(n, frames, classes, gen=gen, dtype=torch.float64, device=device) * scale
    return torch.log_softmax(logits, -1).to(dtype)


def _ctc_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    lp = _log_probs(4, 9, 5, g, dtype, device)
    targets = 1 + randint(4, 4, 4, gen=g, device=device)
    targets[1, 1] = targets[1, 0]  # a repeated label: needs a blank in between
    target_len = torch.tensor([4, 2, 0, 3], device=device)
    input_len = torch.tensor([9, 6, 5, 9], device=device)
    infeasible_len = torch.tensor([9, 2, 5, 9], device=device)  # sample 1 needs 3 frames, has 2
    return [
        Sample((lp, targets, input_len, target_len), {"batch_first": True}, name="(N, T, C), padded targets"),
        Sample((lp, targets, input_len, target_len), {"batch_first": True, "length_normalized": True},
               name="length_normalized"),
        Sample((lp, targets, infeasible_len, target_len), {"batch_first": True, "zero_infinity": True},
               name="an infeasible sample, zero_infinity", plain=False),
        Sample((_log_probs(4, 9, 6, g, dtype, device), targets, input_len, target_len),
               {"batch_first": True, "blank": 5}, name="blank=5"),
    ]


def _ctc_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(1)
    peaked = _log_probs(3, 6, 4, g, dtype, device, scale=1e4)
    targets = torch.tensor([[1, 2, 3], [2, 2, 0], [3, 0, 0]], device=device)
    return [
        Sample((peaked, targets, torch.tensor([6, 6, 6], device=device), torch.tensor([3, 2, 1], device=device)),
               {"batch_first": True}, name="peaked log-probs (logits x 1e4)"),
        Sample((peaked, targets, torch.tensor([2, 6, 6], device=device), torch.tensor([3, 2, 1], device=device)),
               {"batch_first": True, "zero_infinity": True}, name="infeasible with zero_infinity"),
    ]


def _ctc_errors() -> list[ErrorSample]:
    lp = torch.randn(6, 2, 4).log_softmax(-1)
    targets = torch.tensor([[1, 2], [3, 1]])
    il, tl = torch.tensor([6, 6]), torch.tensor([2, 2])
    return [
        ErrorSample((lp, targets, torch.tensor([7, 6]), tl), {}, ValueError,
                    r"ctc_loss: input_lengths must be at most T \(the frames of log_probs\)=6, got a length of 7"),
        ErrorSample((lp, targets, il, torch.tensor([3, 2])), {}, ValueError,
                    r"target_lengths must be at most S \(the targets' width\)=2, got a length of 3"),
        ErrorSample((lp, targets, il, tl[:1]), {}, ValueError, r"target_lengths must have shape \(2,\)"),
        ErrorSample((lp, targets.float(), il, tl), {}, TypeError, r"targets must hold integer labels"),
        ErrorSample((lp.long(), targets, il, tl), {}, TypeError, r"log_probs must be a floating-point tensor"),
        ErrorSample((lp[0], targets, il, tl), {}, ValueError, r"log_probs must have shape \(T, N, C\)"),
        ErrorSample((lp, torch.tensor([1, 2, 3]), il, tl), {}, ValueError,
                    r"target_lengths must sum to the number of concatenated targets \(3\), got a sum of 4"),
        ErrorSample((lp, torch.tensor([[1, 4], [3, 1]]), il, tl), {}, ValueError,
                    r"targets must hold labels in \[0, 3\] \(C=4 classes\), got the label 4"),
        ErrorSample((lp, torch.tensor([[1, 0], [3, 1]]), il, tl), {}, ValueError,
                    r"targets must not contain the blank label 0"),
        ErrorSample((lp * 3, targets, il, tl), {}, ValueError, r"log_probs must be log-probabilities"),
        ErrorSample((lp, targets, il, tl), {"blank": 4}, ValueError, r"blank must be an int in \[0, 3\]"),
        ErrorSample((lp, targets, [6.0, 6.0], tl), {}, TypeError, r"input_lengths must be an integer tensor"),
        ErrorSample((lp, targets, il, tl), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((lp, targets, il, tl), {"weight": torch.ones(2)}, TypeError, r"Hint: use sample_weight="),
        ErrorSample((), {"blank": -1}, ValueError, r"blank must be an int >= 0", at_construction=True),
    ]


register_loss(
    name="ctc", function=ctc_loss, module=CTCLoss, family="sequence", input_kind="log_probs",
    target_kind="labels", unit="sequence", reference="Graves et al. 2006, ICML, doi:10.1145/1143844.1143891",
    sample_inputs=_ctc_samples, extreme_inputs=_ctc_extremes, error_inputs=_ctc_errors, differentiable_args=(0,),
)
