"""LLM-scale losses: linear cross-entropy without the logits, vocabulary-parallel CE, distillation, preference."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor
from torch.autograd.function import once_differentiable

from .._core.base import loss_function, refuse_unexpected
from .._core.checks import (
    check_choice,
    check_float,
    check_index_range,
    check_index_target,
    check_range,
    check_same_device,
    upcast,
)
from .._core.distributed import all_reduce_sum, is_distributed
from .._core.distributed import rank as dist_rank
from .._core.errors import ShapeError, message
from .._core.reduction import Reduction, check_reduction, ignore_index_mask, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, randint, randn
from .._core.validation import validation_enabled
from ._llm_kernels import (
    CEOptions,
    DistillOptions,
    ce_rows,
    compute_dtype,
    distill_rows,
    reduction_coefficients,
    run_head_loss,
)
from ._preference import (
    CallTimeLoss,
    DPOLoss,
    IPOLoss,
    KTOLoss,
    ORPOLoss,
    SimPOLoss,
    dpo_loss,
    ipo_loss,
    kto_loss,
    orpo_loss,
    simpo_loss,
)

__all__ = [
    "DPOLoss",
    "IPOLoss",
    "KTOLoss",
    "LinearCrossEntropyLoss",
    "LinearDistillationLoss",
    "ORPOLoss",
    "SimPOLoss",
    "VocabParallelCrossEntropyLoss",
    "dpo_loss",
    "global_token_count",
    "ipo_loss",
    "kto_loss",
    "linear_cross_entropy",
    "linear_distillation_loss",
    "orpo_loss",
    "sequence_log_probs",
    "simpo_loss",
    "vocab_parallel_cross_entropy",
]

F = TypeVar("F", bound=Callable[..., Tensor])

DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")


# ------------------------------------------------------------------------------------------- helpers


def head_loss_function(fn: F) -> F:
    """Like ``@loss_function``, for losses whose tensors include a positional-only ``weight`` (an LM head):
    only keyword-capable names are accepted as keywords, and ``weight=`` gets a hint."""
    params = inspect.signature(fn).parameters
    accepted = frozenset(n for n, p in params.items() if p.kind != inspect.Parameter.POSITIONAL_ONLY)
    name = fn.__name__
    positional = [n for n, p in params.items() if p.kind == inspect.Parameter.POSITIONAL_ONLY]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Tensor:
        if not accepted.issuperset(kwargs):
            unexpected = {k: v for k, v in kwargs.items() if k not in accepted}
            key = "weight" if "weight" in unexpected else next(iter(unexpected))
            if key in positional:
                raise TypeError(
                    f"{name}: {key} is positional-only (the tensors are {', '.join(positional)}, in this order), "
                    f"got {key}= as a keyword. Hint: pass it positionally; per-token weights are sample_weight=.")
            refuse_unexpected(name, unexpected, accepted)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _check_chunk_size(chunk_size: object, loss: str) -> None:
    if chunk_size is None:
        return
    values = chunk_size if isinstance(chunk_size, tuple) else (chunk_size,)
    ok = len(values) in (1, 2) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values)
    if not ok or (not isinstance(chunk_size, tuple) and not isinstance(chunk_size, int)):
        raise ValueError(message(loss, "chunk_size", "must be None, a positive int (tokens per chunk) or a pair "
                                 "(tokens, vocabulary block) of positive ints", repr(chunk_size)))


def _check_ignore_index(ignore_index: object, loss: str) -> None:
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(message(loss, "ignore_index", "must be an int or None", repr(ignore_index)))


def _check_softcap(softcap: object, loss: str) -> None:
    if softcap is not None:
        check_range(softcap, "softcap", loss, low=0.0, high=math.inf, low_inclusive=False, high_inclusive=False)


def _check_normalizer(normalizer: object, reduction: str, loss: str) -> None:
    """``None``, a positive number, or a 0-d tensor (positive: checked in validation mode)."""
    if normalizer is None:
        return
    if reduction != "mean":
        raise ValueError(message(loss, "normalizer", "replaces the denominator of the mean, so it needs "
                                 "reduction='mean'", f"reduction={reduction!r}"))
    if isinstance(normalizer, Tensor):
        if normalizer.dim() != 0 or normalizer.is_complex() or normalizer.dtype == torch.bool:
            raise TypeError(message(loss, "normalizer", "must be a positive number or a 0-d real tensor",
                                    f"a tensor of shape {tuple(normalizer.shape)} and dtype {normalizer.dtype}"))
        if validation_enabled() and not bool(normalizer > 0):
            raise ValueError(message(loss, "normalizer", "must be > 0", f"{normalizer.item():g}"))
        return
    check_range(normalizer, "normalizer", loss, low=0.0, high=math.inf, low_inclusive=False, high_inclusive=False)


def _finisher(reduction: str, normalizer: float | Tensor | None, sample_weight: Tensor | None,
              mask: Tensor | None, keep: Tensor | None, loss: str) -> Callable[[Tensor], Tensor]:
    """The reduction of ``U``: :func:`reduce_loss`, its mean's denominator replaced by ``normalizer``."""
    chosen: Reduction = "sum" if normalizer is not None else reduction  # type: ignore[assignment]

    def finish(u: Tensor) -> Tensor:
        out = reduce_loss(u, chosen, sample_weight=sample_weight, mask=mask, keep=keep, loss_name=loss)
        if normalizer is None:
            return out
        norm = normalizer.to(device=out.device, dtype=out.dtype) if isinstance(normalizer, Tensor) else normalizer
        return out / norm

    return finish


def _active_rows(shape: torch.Size, sample_weight: Tensor | None, mask: Tensor | None, keep: Tensor | None,
                 device: torch.device, loss: str) -> Tensor | None:
    """Indices of the rows whose weight is nonzero (``None``: all of them, or under ``torch.compile``,
    where the data-dependent selection is skipped and the rows of weight 0 are computed and dropped)."""
    if torch.compiler.is_compiling() or (sample_weight is None and mask is None and keep is None):
        return None
    with torch.no_grad():
        w = reduce_loss(torch.ones(shape, device=device), "none", sample_weight=sample_weight, mask=mask, keep=keep,
                        loss_name=loss)
        index = (w.reshape(-1) != 0).nonzero().squeeze(1)
    n = 1
    for s in shape:
        n *= s
    return None if index.numel() == n else index


def _grad_wanted(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _check_head(hidden: Tensor, weight: Tensor, bias: Tensor | None, loss: str,
                names: tuple[str, str, str] = ("hidden", "weight", "bias")) -> tuple[int, int]:
    """``hidden (*, D)`` and ``weight (V, D)`` floating point, ``bias (V,)``; returns ``(V, D)``."""
    check_float(hidden, names[0], loss)
    check_float(weight, names[1], loss)
    check_same_device(hidden, weight, loss, names[:2])
    if hidden.dim() < 1:
        raise ShapeError(message(loss, names[0], "must have shape (*, D)", tuple(hidden.shape)),
                         expected="(*, D)", actual=tuple(hidden.shape))
    d = hidden.shape[-1]
    if weight.dim() != 2 or weight.shape[1] != d:
        raise ShapeError(
            message(loss, names[1], f"must have shape (V, D) with D = {d} (the last dim of {names[0]})",
                    tuple(weight.shape), hint=f"the head maps the last dim of {names[0]} to the vocabulary"),
            expected=("V", d), actual=tuple(weight.shape))
    if bias is not None:
        check_float(bias, names[2], loss)
        check_same_device(weight, bias, loss, names[1:])
        if tuple(bias.shape) != (weight.shape[0],):
            raise ShapeError(message(loss, names[2], f"must have shape (V,) = ({weight.shape[0]},)",
                                     tuple(bias.shape)), expected=(weight.shape[0],), actual=tuple(bias.shape))
    return int(weight.shape[0]), int(d)


def _check_tokens(hidden: Tensor, target: Tensor, loss: str) -> None:
    """``target`` holds one class index per row of ``hidden``: shape ``hidden.shape[:-1]``."""
    check_index_target(target, loss)
    check_same_device(hidden, target, loss, ("hidden", "target"))
    if tuple(target.shape) != tuple(hidden.shape[:-1]):
        hint = "flatten both, or drop the last dim of target" if target.dim() == hidden.dim() else None
        raise ShapeError(message(loss, "target", f"must have shape hidden.shape[:-1] = {tuple(hidden.shape[:-1])}",
                                 tuple(target.shape), hint=hint),
                         expected=tuple(hidden.shape[:-1]), actual=tuple(target.shape))


def _reshape_rows(x: Tensor) -> Tensor:
    return x.reshape(-1, x.shape[-1])


# -------------------------------------------------------------------------------- linear cross-entropy


def _check_lce_args(*, ignore_index: int | None = -100, label_smoothing: float = 0.0, z_loss: float = 0.0,
                    softcap: float | None = None, chunk_size: object = None, loss: str = "linear_cross_entropy",
                    **_: object) -> None:
    _check_ignore_index(ignore_index, loss)
    check_range(label_smoothing, "label_smoothing", loss, low=0.0, high=1.0)
    check_range(z_loss, "z_loss", loss, low=0.0, high=math.inf, high_inclusive=False)
    _check_softcap(softcap, loss)
    _check_chunk_size(_as_chunk(chunk_size), loss)


def _as_chunk(chunk_size: object) -> Any:
    """Lists (from a spec string or a config file) become tuples."""
    return tuple(chunk_size) if isinstance(chunk_size, list) else chunk_size


@head_loss_function
def linear_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    /,
    *,
    bias: Tensor | None = None,
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: Reduction = "mean",
    normalizer: float | Tensor | None = None,
    chunk_size: int | tuple[int, int] | None = None,
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Cross-entropy of a linear head (an LLM's output layer) that never holds the (tokens, vocab) logits.

    Equals ``cross_entropy(hidden @ weight.T + bias, target)`` in value and gradients, but processes
    the tokens (and, when it is very large, the vocabulary) in chunks and computes each chunk's
    gradients as soon as its logits exist, so the extra memory is the gradients themselves plus one
    chunk of logits (about a third of their size) instead of several copies of the full ``(N, V)`` logits. Tokens
    equal to ``ignore_index`` (or masked, or of weight 0) are dropped before any matrix product, so
    they cost nothing. Gemma-style logit soft-capping, PaLM's z-loss and label smoothing are fused in.

    .. math::
        z_n = s \tanh\!\big((W h_n + b) / s\big), \qquad \ell_n = \log \textstyle\sum_c e^{z_{n,c}},

        U_n = (1-\varepsilon)(\ell_n - z_{n,y_n}) + \varepsilon\Big(\ell_n - \frac1V \sum_c z_{n,c}\Big)
              + \lambda\, \ell_n^2

    (without the cap when ``softcap`` is None). ``"mean"`` divides :math:`\sum_n w_n U_n` by
    :math:`\sum_n w_n` (the number of kept tokens), or by ``normalizer`` when it is given.

    Args:
        hidden: Hidden states :math:`h`, ``(*, D)`` (for example ``(B, T, D)`` or ``(N, D)``).
        weight: The head :math:`W`, ``(V, D)`` (positional-only: the LM head's weight matrix, not a
            per-sample weight; those are ``sample_weight``).
        target: Token indices ``(*)`` in ``[0, V)``, or ``ignore_index``.
        bias: Head bias :math:`b`, ``(V,)``.
        ignore_index: Target value that is left out (``None``: none is).
        label_smoothing: :math:`\varepsilon \in [0, 1]`, mass spread uniformly over the vocabulary.
        z_loss: :math:`\lambda \ge 0`, weight of the squared log-partition (PaLM uses ``1e-4``).
        softcap: :math:`s > 0`, the logits soft cap (Gemma 2 uses 30.0); ``None``: no cap.
        normalizer: Replaces the mean's denominator: the number of kept tokens over every
            gradient-accumulation micro-batch and data-parallel rank (see :func:`global_token_count`), so
            accumulation and DDP give exactly the big-batch loss. Needs ``reduction="mean"``.
        chunk_size: Tokens per chunk, or ``(tokens, vocabulary block)``; ``None`` sizes a chunk of logits
            to about a third of the head's size (16 to 128 MiB; larger chunks read the head fewer
            times). Results do not depend on it beyond float rounding.
        reduction, sample_weight, mask: See the conventions page. Unit: one token of ``(*)``.

    Shape:
        - hidden: ``(*, D)``; weight: ``(V, D)``; target: ``(*)``; bias: ``(V,)``.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``weight`` is not ``(V, D)`` for ``hidden (*, D)``, ``target`` is not ``hidden.shape[:-1]``
            or ``bias`` is not ``(V,)``.
        TypeError: If ``hidden``, ``weight`` or ``bias`` is not floating point, ``target`` is not an integer
            tensor, or ``weight`` is passed by keyword.
        ValueError: For a hyper-parameter out of range, a ``normalizer`` with a reduction other than
            ``"mean"``; in validation mode, a target index out of range or a ``normalizer`` that is not positive.

    Note:
        For a scalar reduction the gradients are computed in the forward (``6·N·D·V`` FLOPs, as the naive
        computation; so compute evaluation losses under ``torch.no_grad()``) and kept for the backward,
        which hands them over without a copy when the loss is back-propagated as it is or as a term of
        a sum, and scales copies of them otherwise (``(loss / k).backward()`` costs a copy of the head's
        gradient: prefer ``normalizer=``); ``retain_graph=True`` works. ``reduction="none"`` recomputes the
        logits in the backward instead (``8·N·D·V``) and supports any upstream gradient. float16 /
        bfloat16 inputs are computed in float32 (on CPU the head is converted once, ``4·V·D`` bytes) and
        their gradients come back in their dtype. Every token ignored gives ``0.0`` with zero gradients
        (torch: NaN). Under ``torch.compile`` the ignored tokens are computed and zero-weighted instead of
        dropped (no data-dependent shapes).
        Only the first-order gradient exists (no double backward).

    References:
        Wijmans et al., *Cut Your Losses in Large-Vocabulary Language Models*, 2024 (the memory
        problem and the lower bound). https://arxiv.org/abs/2411.09009 ;
        Chowdhery et al., *PaLM*, 2022 (z-loss), https://arxiv.org/abs/2204.02311 ;
        Gemma Team, *Gemma 2*, 2024 (logit soft-capping), https://arxiv.org/abs/2408.00118

    Examples:
        >>> import torch
        >>> from lossforge.functional import linear_cross_entropy
        >>> g = torch.Generator().manual_seed(0)
        >>> hidden = torch.randn(4, 8, generator=g)
        >>> head = torch.randn(10, 8, generator=g)
        >>> target = torch.tensor([1, 5, -100, 9])
        >>> linear_cross_entropy(hidden, head, target)
        tensor(1.7468)
        >>> torch.nn.functional.cross_entropy(hidden @ head.T, target)
        tensor(1.7468)
        >>> linear_cross_entropy(hidden, head, target, reduction="none")
        tensor([0.0437, 2.1219, 0.0000, 3.0749])
    """
    loss = "linear_cross_entropy"
    chunk_size = _as_chunk(chunk_size)
    _check_lce_args(ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss, softcap=softcap,
                    chunk_size=chunk_size)
    check_reduction(reduction, loss)
    _check_normalizer(normalizer, reduction, loss)
    vocab, _ = _check_head(hidden, weight, bias, loss)
    _check_tokens(hidden, target, loss)
    check_index_range(target, vocab, loss, ignore_index)
    safe, keep = ignore_index_mask(target, ignore_index)
    finish = _finisher(reduction, normalizer, sample_weight, mask, keep, loss)
    shape = target.shape
    dtype = compute_dtype(hidden, weight, bias)
    index = _active_rows(shape, sample_weight, mask, keep, hidden.device, loss)
    coef = reduction_coefficients(finish, shape, dtype, hidden.device) if _grad_wanted(hidden, weight, bias) else None
    options = CEOptions(label_smoothing=float(label_smoothing), z_loss=float(z_loss),
                        softcap=None if softcap is None else float(softcap), chunk_size=chunk_size)
    run = functools.partial(ce_rows, target=safe.reshape(-1), index=index, n_total=safe.numel(), options=options)
    u = run_head_loss(run, None if coef is None else coef.reshape(-1), _reshape_rows(hidden), weight, bias)
    return finish(u.view(shape))


class LinearCrossEntropyLoss(CallTimeLoss):
    """Module form of :func:`lossforge.functional.linear_cross_entropy`; called as ``loss(hidden, weight, target)``.

    Args:
        bias: Head bias ``(V,)`` (an ``nn.Parameter`` stays trainable; it can also be given at call time).
        ignore_index: Target value that is left out.
        label_smoothing: In ``[0, 1]``.
        z_loss: Weight of the squared log-partition, ``>= 0``.
        softcap: Logits soft cap, ``> 0``, or ``None``.
        normalizer: The mean's denominator; usually given at call time, ``loss(h, W, y, normalizer=n)``.
        chunk_size: Tokens per chunk, or ``(tokens, vocabulary block)``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = linear_cross_entropy
    validate = _check_lce_args
    call_time = ("bias", "normalizer")
    tensor_params = ("bias",)

    def __init__(self, *, bias: Tensor | None = None, ignore_index: int | None = -100, label_smoothing: float = 0.0,
                 z_loss: float = 0.0, softcap: float | None = None, normalizer: float | Tensor | None = None,
                 chunk_size: int | tuple[int, int] | None = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, bias=bias, ignore_index=ignore_index, label_smoothing=label_smoothing,
                         z_loss=z_loss, softcap=softcap, normalizer=normalizer, chunk_size=_as_chunk(chunk_size))
        _check_normalizer(normalizer, reduction, type(self).__name__)


def _lce_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    h = randn(6, 4, gen=g, dtype=dtype, device=device)
    w = randn(5, 4, gen=g, dtype=dtype, device=device, scale=0.8)
    t = randint(5, 6, gen=g, device=device)
    h3 = randn(2, 3, 4, gen=g, dtype=dtype, device=device)
    t3 = randint(5, 2, 3, gen=g, device=device)
    b = randn(5, gen=g, dtype=dtype, device=device, scale=0.5)
    ignored = t.clone()
    ignored[::3] = -100
    return [
        Sample((h, w, t), name="(N, D)"),
        Sample((h3, w, t3), name="(B, T, D)"),
        Sample((h, w, t), {"bias": b, "label_smoothing": 0.1, "z_loss": 0.01, "softcap": 3.0},
               name="bias, label smoothing, z-loss, softcap"),
        Sample((h, w, t), {"chunk_size": (4, 2), "label_smoothing": 0.2, "softcap": 2.0}, name="vocabulary blocks"),
        Sample((h, w, ignored), {"ignore_index": -100}, name="ignored", plain=False),
    ]


def _lce_errors() -> list[ErrorSample]:
    loss = "linear_cross_entropy"
    h, w, t = torch.randn(4, 3), torch.randn(5, 3), torch.tensor([0, 1, 4, 2])
    return [
        ErrorSample((h, torch.randn(5, 2), t), {}, ValueError, rf"{loss}: weight must have shape \(V, D\) with D = 3"),
        ErrorSample((h, w, t.float()), {}, TypeError, rf"{loss}: target must be an integer tensor"),
        ErrorSample((h.long(), w, t), {}, TypeError, rf"{loss}: hidden must be a floating-point tensor"),
        ErrorSample((h, w.long(), t), {}, TypeError, rf"{loss}: weight must be a floating-point tensor"),
        ErrorSample((h, w, t[:3]), {}, ValueError, rf"{loss}: target must have shape hidden.shape\[:-1\] = \(4,\)"),
        ErrorSample((h, w, torch.tensor([0, 1, 5, 2])), {}, ValueError,
                    rf"{loss}: target must hold class indices in \[0, 4\] or ignore_index=-100, got class 5"),
        ErrorSample((h, w, t), {"bias": torch.zeros(4)}, ValueError, rf"{loss}: bias must have shape \(V,\) = \(5,\)"),
        ErrorSample((h, w, t), {"label_smoothing": 1.5}, ValueError, r"label_smoothing must be in \[0, 1\], got 1.5"),
        ErrorSample((h, w, t), {"z_loss": -1.0}, ValueError, r"z_loss must be >= 0, got -1.0"),
        ErrorSample((h, w, t), {"softcap": 0.0}, ValueError, r"softcap must be > 0, got 0.0"),
        ErrorSample((h, w, t), {"chunk_size": 0}, ValueError, r"chunk_size must be None, a positive int"),
        ErrorSample((h, w, t), {"normalizer": 0.0}, ValueError, r"normalizer must be > 0, got 0.0"),
        ErrorSample((h, w, t), {"normalizer": 4.0, "reduction": "sum"}, ValueError,
                    r"normalizer replaces the denominator of the mean, so it needs reduction='mean'"),
        ErrorSample((h, w, t), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((h, t), {"weight": w}, TypeError, r"weight is positional-only.*sample_weight="),
        ErrorSample((), {"softcap": -1.0}, ValueError, r"softcap must be > 0", at_construction=True),
    ]


register_loss(
    name="linear_cross_entropy", function=linear_cross_entropy, module=LinearCrossEntropyLoss, family="sequence",
    input_kind="embeddings", target_kind="index", unit="token of (*)",
    reference="Wijmans et al. 2024, Cut Your Losses in Large-Vocabulary Language Models, arXiv:2411.09009; "
              "torch.nn.functional.linear_cross_entropy",
    sample_inputs=_lce_samples, error_inputs=_lce_errors, aliases=("lce",),
)


def global_token_count(*targets: Tensor, ignore_index: int | None = -100, group: Any = None) -> Tensor:
    r"""The number of tokens other than ``ignore_index`` in the targets given, summed over the ranks of ``group``.

    Pass it as ``normalizer=`` of :func:`linear_cross_entropy` (or of any loss here that takes one)
    for every micro-batch of an optimizer step: the micro-batches' gradients then add up to exactly
    the gradient of the mean over the whole (global) batch, whatever the number of ignored tokens in
    each part. DDP *averages* the gradients over its :math:`W` ranks, so under DDP pass
    ``normalizer=count / W``.

    .. math::
        n = \sum_{\text{ranks}} \sum_{k} \#\{t \in \text{target}_k : t \ne \text{ignore\_index}\}

    Args:
        targets: The target tensors of every micro-batch of the step (on this rank).
        ignore_index: The value left out (``None``: every token counts).
        group: The ``torch.distributed`` group to sum over (default group; nothing when not initialised).

    Returns:
        A 0-d int64 tensor on the first target's device (the same value on every rank).

    Examples:
        >>> import torch
        >>> from lossforge.functional import global_token_count
        >>> global_token_count(torch.tensor([[1, 2, -100]]), torch.tensor([[-100, 3, 4]]))
        tensor(4)
    """
    name = "global_token_count"
    if not targets:
        raise TypeError(f"{name}: expected at least one target tensor, got none.")
    _check_ignore_index(ignore_index, name)
    for k, t in enumerate(targets):
        check_index_target(t, name, argument=f"targets[{k}]")
    device = targets[0].device
    count = torch.zeros((), dtype=torch.int64, device=device)
    for t in targets:
        count = count + (torch.tensor(t.numel()) if ignore_index is None else (t != ignore_index).sum()).to(device)
    return all_reduce_sum(count, group)


# ---------------------------------------------------------------------------- per-sequence log-probs


@head_loss_function
def sequence_log_probs(
    hidden: Tensor,
    weight: Tensor,
    target: Tensor,
    /,
    *,
    bias: Tensor | None = None,
    ignore_index: int | None = -100,
    average: bool = False,
    softcap: float | None = None,
    chunk_size: int | tuple[int, int] | None = None,
) -> Tensor:
    r"""Log-probability of each target sequence under a linear head, computed chunked (no ``(B, T, V)`` logits).

    The input of the preference losses (:func:`dpo_loss`, :func:`ipo_loss`, :func:`simpo_loss`,
    :func:`orpo_loss`, :func:`kto_loss`) from hidden states: the log-softmax of each token's logits is
    taken chunk by chunk, and the backward recomputes the chunks instead of storing them.

    .. math::
        \log\pi(y_b) = \sum_{t:\, y_{b,t} \ne \text{ignore}} \log\operatorname{softmax}(W h_{b,t} + b)_{y_{b,t}}
        \qquad (\text{divided by the number of kept tokens with } \texttt{average=True})

    Args:
        hidden: Hidden states ``(*, T, D)`` (usually ``(B, T, D)``, already shifted so that ``hidden[:, t]``
            predicts ``target[:, t]``).
        weight: The head ``(V, D)``.
        target: Token indices ``(*, T)``; ``ignore_index`` marks the prompt and the padding.
        bias: Head bias ``(V,)``.
        ignore_index: The value of tokens left out.
        average: Divide by the number of kept tokens (SimPO, ORPO, IPO as in TRL).
        softcap: Logits soft cap, as in :func:`linear_cross_entropy`.
        chunk_size: As in :func:`linear_cross_entropy`.

    Shape:
        - hidden ``(*, T, D)``, target ``(*, T)`` → output ``(*)``, float32 for half inputs.

    Returns:
        The per-sequence log-probabilities (0.0 for a sequence whose tokens are all ignored).

    Examples:
        >>> import torch
        >>> from lossforge.functional import sequence_log_probs
        >>> g = torch.Generator().manual_seed(0)
        >>> hidden, head = torch.randn(2, 3, 8, generator=g), torch.randn(10, 8, generator=g)
        >>> target = torch.tensor([[1, 2, -100], [4, -100, -100]])
        >>> sequence_log_probs(hidden, head, target)
        tensor([-10.4449,  -2.1301])
    """
    name = "sequence_log_probs"
    if not isinstance(average, bool):
        raise TypeError(message(name, "average", "must be a bool", repr(average)))
    if isinstance(target, Tensor) and target.dim() < 1:
        raise ShapeError(message(name, "target", "must have shape (*, T)", tuple(target.shape)),
                         expected="(*, T)", actual=tuple(target.shape))
    u = linear_cross_entropy(hidden, weight, target, bias=bias, ignore_index=ignore_index, softcap=softcap,
                             chunk_size=chunk_size, reduction="none")
    log_probs = -u.sum(-1)
    if not average:
        return log_probs
    kept = target.new_full(target.shape, 1) if ignore_index is None else (target != ignore_index)
    return log_probs / kept.sum(-1).clamp_min(1).to(log_probs.dtype)


# ----------------------------------------------------------------------- vocabulary-parallel cross-entropy


def _all_reduce(x: Tensor, op: Any, group: Any) -> Tensor:
    if is_distributed(group):
        dist.all_reduce(x, op=op, group=group)
    return x


class _VocabParallelCE(torch.autograd.Function):
    """``U`` of a vocabulary shard ``(N, V_local)``; the statistics are summed over the group."""

    @staticmethod
    def forward(ctx: Any, logits: Tensor, target: Tensor, start: int, group: Any, eps: float,
                z_loss: float) -> Tensor:
        z = upcast(logits)
        vl = z.shape[1]
        m = _all_reduce(z.amax(1) if vl else z.new_full((z.shape[0],), -math.inf), dist.ReduceOp.MAX, group)
        inside = (target >= start) & (target < start + vl)
        local = (target - start).clamp(0, max(vl - 1, 0))
        zy = torch.where(inside, z.gather(1, local[:, None]).squeeze(1), z.new_zeros(())) if vl else z.new_zeros(
            z.shape[0])
        stats = [torch.exp(z - m[:, None]).sum(1), zy]
        if eps:
            stats.append(z.sum(1))
        packed = _all_reduce(torch.cat([*stats, z.new_tensor([float(vl)])]), dist.ReduceOp.SUM, group)
        n = z.shape[0]
        norm, zy = packed[:n], packed[n: 2 * n]
        vocab = packed[-1]
        lse = m + norm.log()
        u = lse - zy
        if eps:
            u = (1.0 - eps) * u + eps * (lse - packed[2 * n: 3 * n] / vocab)
        if z_loss:
            u = u + z_loss * lse.square()
        ctx.save_for_backward(logits, lse, local, inside, vocab)
        ctx.eps, ctx.z_loss = eps, z_loss
        return u

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, du: Tensor) -> tuple[Tensor | None, ...]:
        logits, lse, local, inside, vocab = ctx.saved_tensors
        z = upcast(logits)
        g = (z - lse[:, None]).exp_().mul_((du * (1.0 + 2.0 * ctx.z_loss * lse))[:, None])
        if g.shape[1]:
            hit = torch.where(inside, -(1.0 - ctx.eps) * du, du.new_zeros(()))
            g.scatter_add_(1, local[:, None], hit[:, None])
        if ctx.eps:
            g.sub_((du * ctx.eps / vocab)[:, None])
        return g.to(logits.dtype), None, None, None, None, None


def _check_vp_args(*, vocab_start: int | None = None, ignore_index: int | None = -100, label_smoothing: float = 0.0,
                   z_loss: float = 0.0, loss: str = "vocab_parallel_cross_entropy", **_: object) -> None:
    if vocab_start is not None and (isinstance(vocab_start, bool) or not isinstance(vocab_start, int)
                                    or vocab_start < 0):
        raise ValueError(message(loss, "vocab_start", "must be None or an int >= 0", repr(vocab_start)))
    _check_ignore_index(ignore_index, loss)
    check_range(label_smoothing, "label_smoothing", loss, low=0.0, high=1.0)
    check_range(z_loss, "z_loss", loss, low=0.0, high=math.inf, high_inclusive=False)


@head_loss_function
def vocab_parallel_cross_entropy(
    logits: Tensor,
    target: Tensor,
    /,
    *,
    group: Any = None,
    vocab_start: int | None = None,
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    reduction: Reduction = "mean",
    normalizer: float | Tensor | None = None,
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Cross-entropy over a vocabulary sharded across the ranks of a ``torch.distributed`` group.

    For tensor-parallel LM heads (Megatron style): each rank holds the logits of its slice of the
    vocabulary, ``(*, V / W)``, and the global target indices. The softmax statistics are combined
    with two all-reduces (the max, then the sum of exponentials, the target logit and, for label
    smoothing, the sum of logits), so every rank gets the unsharded loss, and each rank's gradient is
    its slice of the unsharded gradient; nothing of size ``V`` is gathered.

    .. math::
        \ell_n = \log \sum_{r} \sum_{c \in \text{shard}_r} e^{z_{n,c}}, \qquad
        U_n = (1-\varepsilon)(\ell_n - z_{n,y_n}) + \varepsilon\Big(\ell_n - \frac1V \sum_c z_{n,c}\Big)
              + \lambda \ell_n^2

    Args:
        logits: This rank's shard of the logits, ``(*, V_local)``.
        target: Global token indices ``(*)`` in ``[0, V)``, the same on every rank, or ``ignore_index``.
        group: The ``torch.distributed`` group the vocabulary is sharded over (default group). Without an
            initialised process group the loss is the ordinary cross-entropy of ``logits``.
        vocab_start: Global index of this shard's first entry (default ``rank * V_local``: equal shards in
            rank order).
        ignore_index: Target value that is left out.
        label_smoothing: :math:`\varepsilon \in [0, 1]` over the whole vocabulary.
        z_loss: :math:`\lambda \ge 0`.
        normalizer: Replaces the mean's denominator, as in :func:`linear_cross_entropy`.
        reduction, sample_weight, mask: See the conventions page. Unit: one token of ``(*)``.

    Shape:
        - logits: ``(*, V_local)``; target: ``(*)``.
        - output: ``(*)`` if ``reduction="none"``, else ``()`` (the same on every rank); float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If ``target`` is not ``logits.shape[:-1]``.
        TypeError: If ``logits`` is not floating point or ``target`` not an integer tensor.
        ValueError: For a hyper-parameter out of range; in validation mode, a target out of ``[0, V)``.

    Note:
        Every rank must call it with the same ``target``, ``reduction``, weights and mask. The backward is
        local (no communication): the upstream gradient is the same on every rank. With ``z_loss`` or
        label smoothing the statistics are global too, so the result still equals the unsharded loss.

    References:
        Shoeybi et al., *Megatron-LM: Training Multi-Billion Parameter Language Models Using Model
        Parallelism*, 2019. https://arxiv.org/abs/1909.08053

    Examples:
        >>> import torch
        >>> from lossforge.functional import vocab_parallel_cross_entropy
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
        >>> vocab_parallel_cross_entropy(logits, torch.tensor([0, 2]))  # one process: plain cross-entropy
        tensor(0.1609)
    """
    loss = "vocab_parallel_cross_entropy"
    _check_vp_args(vocab_start=vocab_start, ignore_index=ignore_index, label_smoothing=label_smoothing,
                   z_loss=z_loss)
    check_reduction(reduction, loss)
    _check_normalizer(normalizer, reduction, loss)
    check_float(logits, "logits", loss)
    check_index_target(target, loss)
    check_same_device(logits, target, loss, ("logits", "target"))
    if logits.dim() < 1 or tuple(target.shape) != tuple(logits.shape[:-1]):
        raise ShapeError(message(loss, "target", f"must have shape logits.shape[:-1] = {tuple(logits.shape[:-1])}",
                                 tuple(target.shape)), expected=tuple(logits.shape[:-1]), actual=tuple(target.shape))
    vl = logits.shape[-1]
    start = dist_rank(group) * vl if vocab_start is None else vocab_start
    if validation_enabled():
        total = int(_all_reduce(torch.tensor([vl], dtype=torch.int64, device=logits.device), dist.ReduceOp.SUM,
                                group).item())
        check_index_range(target, total, loss, ignore_index)
    safe, keep = ignore_index_mask(target, ignore_index)
    finish = _finisher(reduction, normalizer, sample_weight, mask, keep, loss)
    u = _VocabParallelCE.apply(logits.reshape(-1, vl), safe.reshape(-1), start, group, float(label_smoothing),
                               float(z_loss))
    return finish(u.view(target.shape))


class VocabParallelCrossEntropyLoss(CallTimeLoss):
    """Module form of :func:`lossforge.functional.vocab_parallel_cross_entropy`.

    Args:
        group: The ``torch.distributed`` group of the vocabulary shards.
        vocab_start: Global index of this rank's first vocabulary entry (default ``rank * V_local``).
        ignore_index: Target value that is left out.
        label_smoothing: In ``[0, 1]``.
        z_loss: ``>= 0``.
        normalizer: The mean's denominator; usually given at call time.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = vocab_parallel_cross_entropy
    validate = _check_vp_args
    call_time = ("normalizer",)

    def __init__(self, *, group: Any = None, vocab_start: int | None = None, ignore_index: int | None = -100,
                 label_smoothing: float = 0.0, z_loss: float = 0.0, normalizer: float | Tensor | None = None,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, group=group, vocab_start=vocab_start, ignore_index=ignore_index,
                         label_smoothing=label_smoothing, z_loss=z_loss, normalizer=normalizer)
        _check_normalizer(normalizer, reduction, type(self).__name__)


def _vp_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    logits = randn(6, 5, gen=g, dtype=dtype, device=device, scale=2.0)
    t = randint(5, 6, gen=g, device=device)
    ignored = t.clone()
    ignored[::2] = -100
    return [
        Sample((logits, t), name="(N, V)"),
        Sample((logits.view(2, 3, 5), t.view(2, 3)), name="(B, T, V)"),
        Sample((logits, t), {"label_smoothing": 0.1, "z_loss": 0.01}, name="label smoothing, z-loss"),
        Sample((logits, ignored), {"ignore_index": -100}, name="ignored", plain=False),
    ]


def _vp_errors() -> list[ErrorSample]:
    loss = "vocab_parallel_cross_entropy"
    x, t = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    return [
        ErrorSample((x, t.float()), {}, TypeError, rf"{loss}: target must be an integer tensor"),
        ErrorSample((x, t[:3]), {}, ValueError, rf"{loss}: target must have shape logits.shape\[:-1\] = \(4,\)"),
        ErrorSample((x.long(), t), {}, TypeError, rf"{loss}: logits must be a floating-point tensor"),
        ErrorSample((x, torch.tensor([0, 3, 1, 1])), {}, ValueError, r"target must hold class indices in \[0, 2\]"),
        ErrorSample((x, t), {"vocab_start": -1}, ValueError, rf"{loss}: vocab_start must be None or an int >= 0"),
        ErrorSample((x, t), {"label_smoothing": 2.0}, ValueError, r"label_smoothing must be in \[0, 1\]"),
        ErrorSample((x, t), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((x, t), {"weight": torch.ones(3)}, TypeError, r"sample_weight="),
    ]


register_loss(
    name="vocab_parallel_cross_entropy", function=vocab_parallel_cross_entropy, module=VocabParallelCrossEntropyLoss,
    family="sequence", input_kind="logits", target_kind="index", unit="token of (*)",
    reference="Shoeybi et al. 2019, Megatron-LM, arXiv:1909.08053 (vocabulary-parallel cross-entropy)",
    sample_inputs=_vp_samples, error_inputs=_vp_errors,
)


# ---------------------------------------------------------------------------------- linear distillation


def _check_distill_args(*, divergence: str = "forward_kl", beta: float = 0.5, temperature: float = 1.0,
                        chunk_size: object = None, loss: str = "linear_distillation_loss", **_: object) -> None:
    check_choice(divergence, "divergence", loss, DIVERGENCES)
    check_range(beta, "beta", loss, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    check_range(temperature, "temperature", loss, low=0.0, high=math.inf, low_inclusive=False, high_inclusive=False)
    chunk = _as_chunk(chunk_size)
    _check_chunk_size(chunk, loss)


@loss_function
def linear_distillation_loss(
    student_hidden: Tensor,
    student_weight: Tensor,
    teacher_hidden: Tensor,
    teacher_weight: Tensor,
    /,
    *,
    divergence: str = "forward_kl",
    beta: float = 0.5,
    temperature: float = 1.0,
    student_bias: Tensor | None = None,
    teacher_bias: Tensor | None = None,
    reduction: Reduction = "mean",
    normalizer: float | Tensor | None = None,
    chunk_size: int | tuple[int, int] | None = None,
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Token-level distillation between a student's and a teacher's LM heads, without the (tokens, vocab) logits.

    Both heads' logits are computed a chunk of tokens at a time; the divergence and its gradient for
    the student are computed at once, so the memory is the student's gradients plus one chunk.
    Forward KL (Hinton's distillation, mass-covering), reverse KL (mode-seeking, MiniLLM) or the
    generalised Jensen-Shannon divergence of GKD.

    .. math::
        q = \operatorname{softmax}\!\big((W_t h^t_n + b_t)/T\big), \quad
        p = \operatorname{softmax}\!\big((W_s h^s_n + b_s)/T\big), \quad m = \beta q + (1-\beta) p,

        U_n = T^2 \cdot \begin{cases} \mathrm{KL}(q \,\|\, p) & \text{forward\_kl} \\
              \mathrm{KL}(p \,\|\, q) & \text{reverse\_kl} \\
              \beta\, \mathrm{KL}(q \,\|\, m) + (1-\beta)\, \mathrm{KL}(p \,\|\, m) & \text{jsd} \end{cases}

    Args:
        student_hidden: The student's hidden states ``(*, D_s)``.
        student_weight: The student's head ``(V, D_s)``.
        teacher_hidden: The teacher's hidden states ``(*, D_t)`` (the same tokens).
        teacher_weight: The teacher's head ``(V, D_t)`` (the same vocabulary).
        divergence: ``"forward_kl"``, ``"reverse_kl"`` or ``"jsd"``.
        beta: :math:`\beta \in (0, 1)`, the teacher's share of the mixture (``"jsd"`` only; 0.5 is the
            symmetric JSD).
        temperature: :math:`T > 0`; the :math:`T^2` factor keeps the gradient scale independent of it.
        student_bias, teacher_bias: Head biases ``(V,)``.
        normalizer: Replaces the mean's denominator, as in :func:`linear_cross_entropy`.
        chunk_size: Tokens per chunk (``None``: working buffers of about a third of the student head's size).
        reduction, sample_weight, mask: See the conventions page (mask the prompt and the padding).
            Unit: one token of ``(*)``.

    Shape:
        - student_hidden ``(*, D_s)``, teacher_hidden ``(*, D_t)``; the heads ``(V, D_s)`` and ``(V, D_t)``.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the heads do not match their hidden states or each other's vocabulary, or the
            hidden states cover different tokens.
        TypeError: If an input is not floating point.
        ValueError: If ``divergence`` is unknown, ``beta`` is outside ``(0, 1)`` or ``temperature <= 0``.

    Note:
        The teacher is a constant: its tensors get no gradient. Every term is computed from
        log-probabilities (``log_softmax``, ``logaddexp``), so a probability that underflows contributes
        exactly 0 and the loss is finite for logits of any size. ``"forward_kl"`` equals
        :func:`distillation_loss` on the materialised logits.

    References:
        Hinton, Vinyals and Dean, *Distilling the Knowledge in a Neural Network*, 2015,
        https://arxiv.org/abs/1503.02531 ; Agarwal et al., *On-Policy Distillation of Language Models:
        Learning from Self-Generated Mistakes* (GKD, generalised JSD), ICLR 2024,
        https://arxiv.org/abs/2306.13649 ; Gu et al., *MiniLLM* (reverse KL), ICLR 2024,
        https://arxiv.org/abs/2306.08543

    Examples:
        >>> import torch
        >>> from lossforge.functional import linear_distillation_loss
        >>> g = torch.Generator().manual_seed(0)
        >>> hs, ws = torch.randn(4, 8, generator=g), torch.randn(10, 8, generator=g)
        >>> ht, wt = torch.randn(4, 16, generator=g), torch.randn(10, 16, generator=g)
        >>> linear_distillation_loss(hs, ws, ht, wt, temperature=2.0)
        tensor(5.0066)
        >>> linear_distillation_loss(hs, ws, ht, wt, divergence="jsd", beta=0.5)
        tensor(0.4316)
    """
    loss = "linear_distillation_loss"
    chunk_size = _as_chunk(chunk_size)
    _check_distill_args(divergence=divergence, beta=beta, temperature=temperature, chunk_size=chunk_size)
    check_reduction(reduction, loss)
    _check_normalizer(normalizer, reduction, loss)
    vocab, _ = _check_head(student_hidden, student_weight, student_bias, loss,
                           ("student_hidden", "student_weight", "student_bias"))
    vt, _ = _check_head(teacher_hidden, teacher_weight, teacher_bias, loss,
                        ("teacher_hidden", "teacher_weight", "teacher_bias"))
    check_same_device(student_hidden, teacher_hidden, loss, ("student_hidden", "teacher_hidden"))
    if vt != vocab:
        raise ShapeError(message(loss, "teacher_weight", "must have the student's vocabulary, (V, D_t) with "
                                 f"V = {vocab}", tuple(teacher_weight.shape)),
                         expected=(vocab, "D_t"), actual=tuple(teacher_weight.shape))
    shape = student_hidden.shape[:-1]
    if teacher_hidden.shape[:-1] != shape:
        raise ShapeError(message(loss, "teacher_hidden", f"must cover the student's tokens, shape (*, D_t) with "
                                 f"* = {tuple(shape)}", tuple(teacher_hidden.shape)),
                         expected=(*shape, "D_t"), actual=tuple(teacher_hidden.shape))
    finish = _finisher(reduction, normalizer, sample_weight, mask, None, loss)
    dtype = compute_dtype(student_hidden, student_weight, student_bias)
    index = _active_rows(shape, sample_weight, mask, None, student_hidden.device, loss)
    wanted = _grad_wanted(student_hidden, student_weight, student_bias)
    coef = reduction_coefficients(finish, shape, dtype, student_hidden.device) if wanted else None
    options = DistillOptions(divergence=divergence, beta=float(beta), temperature=float(temperature),
                             chunk_size=chunk_size)
    n = 1
    for s in shape:
        n *= s
    run = functools.partial(
        distill_rows, teacher_hidden=_reshape_rows(teacher_hidden.detach()), teacher_weight=teacher_weight.detach(),
        teacher_bias=None if teacher_bias is None else teacher_bias.detach(), index=index, n_total=n, options=options)
    u = run_head_loss(run, None if coef is None else coef.reshape(-1), _reshape_rows(student_hidden), student_weight,
                      student_bias)
    return finish(u.view(shape))


class LinearDistillationLoss(CallTimeLoss):
    """Module form of :func:`lossforge.functional.linear_distillation_loss`.

    Args:
        divergence: ``"forward_kl"``, ``"reverse_kl"`` or ``"jsd"``.
        beta: In ``(0, 1)`` (``"jsd"``).
        temperature: ``> 0``.
        student_bias, teacher_bias: Head biases (also at call time).
        normalizer: The mean's denominator; usually given at call time.
        chunk_size: Tokens per chunk.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = linear_distillation_loss
    validate = _check_distill_args
    call_time = ("student_bias", "teacher_bias", "normalizer")
    tensor_params = ("student_bias", "teacher_bias")

    def __init__(self, *, divergence: str = "forward_kl", beta: float = 0.5, temperature: float = 1.0,
                 student_bias: Tensor | None = None, teacher_bias: Tensor | None = None,
                 normalizer: float | Tensor | None = None, chunk_size: int | tuple[int, int] | None = None,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, divergence=divergence, beta=beta, temperature=temperature,
                         student_bias=student_bias, teacher_bias=teacher_bias, normalizer=normalizer,
                         chunk_size=_as_chunk(chunk_size))
        _check_normalizer(normalizer, reduction, type(self).__name__)


def _distill_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    hs = randn(6, 4, gen=g, dtype=dtype, device=device)
    ws = randn(5, 4, gen=g, dtype=dtype, device=device, scale=0.8)
    ht = randn(6, 3, gen=g, dtype=dtype, device=device)
    wt = randn(5, 3, gen=g, dtype=dtype, device=device, scale=0.8)
    bs = randn(5, gen=g, dtype=dtype, device=device, scale=0.5)
    bt = randn(5, gen=g, dtype=dtype, device=device, scale=0.5)
    return [
        Sample((hs, ws, ht, wt), name="forward KL"),
        Sample((hs, ws, ht, wt), {"divergence": "reverse_kl", "temperature": 2.0, "chunk_size": 4},
               name="reverse KL, T = 2, chunks of 4"),
        Sample((hs, ws, ht, wt), {"divergence": "jsd", "beta": 0.3, "student_bias": bs, "teacher_bias": bt},
               name="JSD, beta 0.3, biases"),
        Sample((hs.view(2, 3, 4), ws, ht.view(2, 3, 3), wt), {"divergence": "jsd"}, name="(B, T, D)"),
    ]


def _distill_errors() -> list[ErrorSample]:
    loss = "linear_distillation_loss"
    hs, ws, ht, wt = torch.randn(4, 3), torch.randn(5, 3), torch.randn(4, 2), torch.randn(5, 2)
    return [
        ErrorSample((hs, ws, ht, torch.randn(6, 2)), {}, ValueError,
                    rf"{loss}: teacher_weight must have the student's vocabulary, \(V, D_t\) with V = 5"),
        ErrorSample((hs, ws, ht[:3], wt), {}, ValueError, rf"{loss}: teacher_hidden must cover the student's tokens"),
        ErrorSample((hs, torch.randn(5, 2), ht, wt), {}, ValueError,
                    rf"{loss}: student_weight must have shape \(V, D\) with D = 3"),
        ErrorSample((hs.long(), ws, ht, wt), {}, TypeError, rf"{loss}: student_hidden must be a floating-point tensor"),
        ErrorSample((hs, ws, ht, wt), {"divergence": "jsdd"}, ValueError, r"Did you mean 'jsd'"),
        ErrorSample((hs, ws, ht, wt), {"divergence": "jsd", "beta": 1.0}, ValueError, r"beta must be in \(0, 1\)"),
        ErrorSample((hs, ws, ht, wt), {"temperature": 0.0}, ValueError, r"temperature must be > 0"),
        ErrorSample((hs, ws, ht, wt), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((hs, ws, ht, wt), {"weight": torch.ones(4)}, TypeError, r"Hint: use sample_weight="),
        ErrorSample((), {"temperature": -1.0}, ValueError, r"temperature must be > 0", at_construction=True),
    ]


register_loss(
    name="linear_distillation", function=linear_distillation_loss, module=LinearDistillationLoss, family="sequence",
    input_kind="embeddings", target_kind="none", unit="token of (*)",
    reference="Hinton et al. 2015, arXiv:1503.02531; Agarwal et al. 2024 (GKD), arXiv:2306.13649",
    sample_inputs=_distill_samples, error_inputs=_distill_errors, differentiable_args=(0, 1),
)
