"""The family batteries (reliability notes §5.2-§5.8): checks that apply to one task's losses.

Each check names the tasks it applies to and is skipped, with the reason, for a loss of another task
(a registered loss's task comes from its family and target kind; a user's from ``task=``). It reads the
layout from the loss's plain sample, so it works on registered and generated inputs alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import _check_grads, _expect, _index_target, _names, _red, _register
from ._support import (
    Fail,
    Skip,
    call,
    describe_kwargs,
    diff_positions,
    exc_text,
    grads,
    mismatch,
    nonfinite,
    plain_sample,
    with_grad,
)
from ._target import CheckTarget
from ._tolerances import EXTREME, tolerance

__all__ = [
    "FAMILY_CHECKS", "check_constant_images", "check_degenerate_boxes", "check_degenerate_labels",
    "check_empty_target", "check_extreme_logits", "check_gamma_zero", "check_ignore_index", "check_k_dim",
    "check_perfect_prediction", "check_zero_distance", "check_zero_probabilities",
]

F64 = torch.float64
F32 = torch.float32

#: Check name -> the tasks it applies to.
FAMILY_CHECKS: dict[str, tuple[str, ...]] = {}

#: The logit of a confident prediction (probabilities exactly 0 and 1 in float32, not an overflow test).
CONFIDENT = 30.0


def _family(name: str, tasks: tuple[str, ...], *, validate: bool = True) -> Callable[[Callable[..., str]], Any]:
    """Register a family check: skipped unless the target's task is one of ``tasks``."""

    def decorate(body: Callable[..., str]) -> Any:
        def gated(target: CheckTarget, device: torch.device, **options: Any) -> str:
            if target.task not in tasks:
                shown = f"task {target.task!r}" if target.task else "no task"
                raise Skip(f"applies to {', '.join(tasks)}; the loss has {shown}")
            return body(target, device, **options)

        gated.__name__ = body.__name__
        gated.__doc__ = body.__doc__
        FAMILY_CHECKS[name] = tasks
        return _register(name, validate=validate)(gated)

    return decorate


def _pair(target: CheckTarget, args: Sequence[Any]) -> tuple[int, int]:
    """``(prediction position, target position)``: both tensors, or a skip."""
    tp = target.target_position
    if tp is None or tp >= len(args) or not isinstance(args[tp], Tensor):
        raise Skip("the loss takes no target tensor")
    for i, a in enumerate(args):
        if i != tp and isinstance(a, Tensor) and a.is_floating_point():
            return i, tp
    raise Skip("the loss takes no floating-point prediction")


def _class_layout(x: Tensor, t: Tensor) -> bool:
    """Whether ``t`` holds class indices for the logits ``x`` (classes along dim 1)."""
    return (not t.is_floating_point() and t.dtype != torch.bool and x.dim() >= 2
            and t.dim() == x.dim() - 1 and t.shape[:1] == x.shape[:1] and t.shape[1:] == x.shape[2:])


def _one_hot(t: Tensor, classes: int) -> Tensor:
    """``(N, *)`` indices -> ``(N, C, *)`` bool (out-of-range entries, such as ignored ones, all False)."""
    valid = (t >= 0) & (t < classes)
    hot = F.one_hot(t.clamp(0, classes - 1), classes).movedim(-1, 1).bool()
    return hot & valid.unsqueeze(1)


def _toward(target: CheckTarget, x: Tensor, t: Tensor, magnitude: float) -> Tensor:
    """Logits of magnitude ``magnitude`` that predict ``t`` exactly (index, binary or sign targets)."""
    if _class_layout(x, t):
        hot = _one_hot(t, x.shape[1])
        return torch.where(hot, torch.full_like(x, magnitude), torch.full_like(x, -magnitude))
    if t.shape == x.shape and t.is_floating_point():
        positive = t > 0.5 if target.target_kind != "sign" else t > 0
        return torch.where(positive, torch.full_like(x, magnitude), torch.full_like(x, -magnitude))
    raise Skip(f"no confident prediction for a target of shape {tuple(t.shape)} and dtype {t.dtype} "
               f"against logits {tuple(x.shape)}")


def _finite_call(target: CheckTarget, args: Sequence[Any], kwargs: dict[str, Any], positions: Sequence[int],
                 what: str, **extra: Any) -> Tensor:
    """Call with fresh leaves at ``positions``; the value and every gradient must be finite."""
    leaves_args, leaves = with_grad(args, positions)
    out = call(target, leaves_args, kwargs, sample=what, **extra)
    _expect(nonfinite(out, what))
    if out.numel() and positions:
        _check_grads(grads(out, leaves, what), leaves, _names(target, positions), what)
    return out


def _value(out: Tensor) -> str:
    return f"{out.item():.4g}" if out.numel() == 1 else f"shape {tuple(out.shape)}"


# ------------------------------------------------------------------------------------ classification


@_family("ignore_index", ("classification", "segmentation"))
def check_ignore_index(target: CheckTarget, device: torch.device) -> str:
    """[C1] Targets equal to ``ignore_index`` (with ±1e4 logits there) leave value and gradients finite; for
    classification those positions get zero gradient and the loss equals the loss on the kept samples."""
    if not target.accepts_ignore_index:
        raise Skip("the loss takes no ignore_index")
    s = plain_sample(target, F64, device)
    ti = _index_target(s.args)
    if ti is None:
        raise Skip("the plain sample has no integer target")
    pi, _ = _pair(target, s.args)
    x, t = s.args[pi], s.args[ti]
    if not _class_layout(x, t) or t.numel() < 3:
        raise Skip(f"logits {tuple(x.shape)} and target {tuple(t.shape)} are not (N, C, ...) and (N, ...)")
    kwargs = dict(s.kwargs)
    value = kwargs.get("ignore_index", target.keyword_defaults.get("ignore_index"))
    if value is None:
        value = -100
        kwargs["ignore_index"] = value
    flat = torch.arange(t.numel(), device=device).reshape(t.shape)
    drop = flat % 3 == 1
    ignored = torch.where(drop, torch.full_like(t, value), t)
    spread = drop.unsqueeze(1).expand_as(x)
    signs = torch.where(torch.arange(x.numel(), device=device).reshape(x.shape) % 2 == 0, EXTREME, -EXTREME)
    garbage = torch.where(spread, signs.to(x.dtype), x)
    args = list(s.args)
    args[pi], args[ti] = garbage, ignored
    leaves_args, leaves = with_grad(args, [pi])
    what = f"the loss with {int(drop.sum())} of {t.numel()} targets = {value} and ±{EXTREME:g} logits there"
    out = call(target, leaves_args, kwargs, sample="ignored", **_red(target, "mean"))
    _expect(nonfinite(out, what))
    (g,) = grads(out, leaves, what)
    _expect(nonfinite(g, f"the gradient of {what}", target.arg_name(pi)))
    leak = g[spread] != 0
    detail = f"{int(drop.sum())} of {t.numel()} targets ignored: finite, zero gradient there"
    if bool(leak.any()):
        leaking = f"the ignored positions get a nonzero gradient at {int(leak.sum())} of {int(spread.sum())} entries"
        if target.task == "classification":
            raise Fail(f"{what}: {leaking}")
        detail = f"{int(drop.sum())} of {t.numel()} targets ignored: finite; {leaking} (a spatial operator " \
                 f"reads them)"
    if target.task != "classification" or x.dim() != 2 or not target.separable:
        return detail
    keep = ~drop
    kept_args = list(s.args)
    kept_args[pi], kept_args[ti] = x[keep], t[keep]
    tol = tolerance(F64)
    for r in ("mean", "sum") if target.accepts_reduction else (None,):
        extra = {} if r is None else {"reduction": r}
        got = call(target, args, kwargs, sample="ignored", **extra)
        want = call(target, kept_args, kwargs, sample="the kept samples", **extra)
        problem = mismatch(got, want, f"{r or 'the loss'} with {int(drop.sum())} of {t.numel()} targets ignored "
                                      f"(vs the loss on the {int(keep.sum())} kept samples)", **tol)
        if problem and got.numel() == 1 and mismatch(got * t.numel() / keep.sum(), want, "", **tol) is None:
            problem += f"; it divides by all {t.numel()} samples instead of the {int(keep.sum())} kept ones"
        _expect(problem)
    return detail + "; equals the loss on the kept samples"


def _extreme_logits(target: CheckTarget, x: Tensor, t: Tensor, magnitude: float) -> Tensor:
    """Half the samples confidently right, half confidently wrong, at ``±magnitude``."""
    right = _toward(target, x, t, magnitude)
    if _class_layout(x, t):
        parity = (torch.arange(x.shape[0], device=x.device) % 2 == 0).reshape((-1,) + (1,) * (x.dim() - 1))
    else:
        parity = torch.arange(x.numel(), device=x.device).reshape(x.shape) % 2 == 0
    return torch.where(parity, right, -right)


@_family("extreme_logits", ("classification", "binary", "multilabel", "segmentation"), validate=False)
def check_extreme_logits(target: CheckTarget, device: torch.device) -> str:
    """[C5, C9, C10] Logits at ±100 and ±1e4, half confidently right and half confidently wrong, in
    float32, float16 and bfloat16: finite value and gradients (log-space, never softmax then log)."""
    if target.input_kind != "logits":
        raise Skip(f"input_kind is {target.input_kind!r}, not logits")
    s = plain_sample(target, F32, device)
    pi, tp = _pair(target, s.args)
    x, t = s.args[pi], s.args[tp]
    dtypes = (F32, *target.low_precision_dtypes)
    for magnitude in (100.0, EXTREME):
        logits = _extreme_logits(target, x, t, magnitude)
        for dtype in dtypes:
            args = list(s.args)
            args[pi] = logits.to(dtype)
            short = str(dtype).replace("torch.", "")
            _finite_call(target, args, s.kwargs, [pi], f"the loss at logits ±{magnitude:g} in {short}")
    shown = ", ".join(str(d).replace("torch.", "") for d in dtypes)
    return f"logits ±100 and ±{EXTREME:g} ({shown}): finite value and gradients"


def _gamma_zero_loss(target: CheckTarget) -> tuple[Callable[..., Tensor], str]:
    params = target.signature.parameters if target.signature is not None else {}
    instance = target.instance
    has_alpha = "alpha" in params or (instance is not None and hasattr(instance, "alpha"))
    options: dict[str, Any] = {"gamma": 0.0, "alpha": None} if has_alpha else {"gamma": 0.0}
    fn = target.with_options(**options)
    if fn is None:
        raise Skip("the loss has no gamma (a focal-style modulation) to set to 0")
    return fn, describe_kwargs(options)


@_family("gamma_zero", ("classification", "binary", "multilabel"))
def check_gamma_zero(target: CheckTarget, device: torch.device) -> str:
    """[C9] A focal-style loss with ``gamma=0`` (and ``alpha=None``) equals cross-entropy (class indices) or
    binary cross-entropy with logits (binary targets): averaged over samples, not over classes."""
    if target.input_kind != "logits":
        raise Skip(f"input_kind is {target.input_kind!r}, not logits")
    fn, shown = _gamma_zero_loss(target)
    s = plain_sample(target, F64, device)
    extra_kwargs = {k: v for k, v in s.kwargs.items() if k != "ignore_index"}
    if extra_kwargs:
        raise Skip(f"the plain sample passes {', '.join(extra_kwargs)}, which may weight the loss")
    pi, tp = _pair(target, s.args)
    x, t = s.args[pi], s.args[tp]
    if _class_layout(x, t):
        ce = F.cross_entropy(x, t, reduction="none")
        name = "cross_entropy"
    elif t.shape == x.shape and t.is_floating_point() and target.target_kind == "binary":
        ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
        name = "binary_cross_entropy_with_logits"
    else:
        raise Skip(f"no cross-entropy reference for logits {tuple(x.shape)} and target {tuple(t.shape)}")
    try:
        out = fn(*s.args, **s.kwargs, **_red(target, "mean"))
    except Exception as exc:
        raise Skip(f"the loss with {shown} raised {exc_text(exc)}") from None
    if not isinstance(out, Tensor) or out.numel() != 1:
        raise Fail(f"the loss with {shown} returned {type(out).__name__}, not a scalar")
    tol = tolerance(F64)
    mean, total = ce.mean(), ce.sum()
    if mismatch(out.reshape(()), mean, "", **tol) is None:
        return f"with {shown}: equals {name} (mean {mean.item():.6g})"
    if not target.accepts_reduction and mismatch(out.reshape(()), total, "", **tol) is None:
        return f"with {shown}: equals {name} summed over samples ({total.item():.6g})"
    problem = f"with {shown} the loss is {out.item():.6g}, {name} is {mean.item():.6g}"
    ratio = out.item() / mean.item() if mean.item() else float("nan")
    classes = x.shape[1] if x.dim() >= 2 else 1
    if classes > 1 and abs(ratio * classes - 1) < 1e-6:
        problem += f" (1/{classes} of it: the loss averages over the {classes} classes, not only over samples)"
    elif ratio == ratio:
        problem += f" (ratio {ratio:.4g})"
    raise Fail(problem)


@_family("k_dim", ("classification",))
def check_k_dim(target: CheckTarget, device: torch.device) -> str:
    """[C7] K-dimensional logits ``(N, C, d)`` with targets ``(N, d)`` equal the flattened ``(N·d, C)`` case."""
    s = plain_sample(target, F64, device)
    pi, tp = _pair(target, s.args)
    x, t = s.args[pi], s.args[tp]
    if not _class_layout(x, t) or x.dim() != 2 or x.shape[0] % 2:
        raise Skip(f"the plain sample is not logits (N, C) with an even N and indices (N,) "
                   f"(got {tuple(x.shape)} and {tuple(t.shape)})")
    n, c = x.shape
    args = list(s.args)
    args[pi] = x.reshape(n // 2, 2, c).transpose(1, 2)
    args[tp] = t.reshape(n // 2, 2)
    red = _red(target, "mean")
    try:
        out = target.function(*args, **s.kwargs, **red)
    except Exception as exc:
        raise Skip(f"the loss refuses (N, C, d) logits ({exc_text(exc)})") from None
    ref = call(target, s.args, s.kwargs, sample=s.name, **red)
    tol = tolerance(F64)
    _expect(mismatch(out, ref, f"the loss on logits {tuple(args[pi].shape)} (vs the same entries as ({n}, {c}))",
                     **tol))
    if target.accepts_reduction:
        none = call(target, args, s.kwargs, sample="(N, C, d)", reduction="none")
        flat = call(target, s.args, s.kwargs, sample=s.name, reduction="none")
        if none.numel() == flat.numel():
            _expect(mismatch(none.reshape(-1), flat.reshape(n // 2, 2).reshape(-1),
                             "none on (N, C, d) logits (vs none on (N·d, C))", **tol))
    return f"logits {tuple(args[pi].shape)} equal ({n}, {c})"


# -------------------------------------------------------------------------------------- segmentation


@_family("empty_target", ("segmentation",))
def check_empty_target(target: CheckTarget, device: torch.device) -> str:
    """[R1, R2, R3] An empty ground truth with an empty or a full prediction, and a class absent from the
    target: finite value and gradients; the full prediction on the empty target scores worse than the
    empty one (false positives on empty images are penalised)."""
    s = plain_sample(target, F32, device)
    pi, tp = _pair(target, s.args)
    x, t = s.args[pi], s.args[tp]
    index = _class_layout(x, t)
    if not index and not (t.shape == x.shape and t.is_floating_point()):
        raise Skip(f"target {tuple(t.shape)} is neither class indices nor a binary mask of the logits' shape")
    classes = x.shape[1] if x.dim() >= 2 else 1
    empty_t = torch.zeros_like(t)
    if index:
        if classes < 2:
            raise Skip("the logits have one class")
        empty_pred = _toward(target, x, empty_t, CONFIDENT)
        full_pred = _toward(target, x, torch.ones_like(t), CONFIDENT)
        absent = torch.where(t == classes - 1, torch.zeros_like(t), t)
    else:
        empty_pred = torch.full_like(x, -CONFIDENT)
        full_pred = torch.full_like(x, CONFIDENT)
        absent = t.clone()
        absent[:, -1] = 0
    red = _red(target, "mean")

    def run(pred: Tensor, truth: Tensor, what: str) -> Tensor:
        args = list(s.args)
        args[pi], args[tp] = pred, truth
        return _finite_call(target, args, s.kwargs, [pi], what, **red)

    empty = run(empty_pred, empty_t, "the loss of an empty prediction on an empty target")
    full = run(full_pred, empty_t, "the loss of a full prediction on an empty target")
    run(x, absent, f"the loss with class {classes - 1} absent from the target")
    if empty.numel() == 1 and full.numel() == 1 and not full.item() > empty.item():
        raise Fail(f"a full prediction on an empty target scores {full.item():.4g}, no worse than an empty one "
                   f"({empty.item():.4g}): false positives on empty images go unpenalised")
    return f"empty target: empty prediction {_value(empty)}, full prediction {_value(full)}; an absent class " \
           f"is finite"


@_family("perfect_prediction", ("regression", "segmentation", "boxes", "image"))
def check_perfect_prediction(target: CheckTarget, device: torch.device) -> str:
    """[G1, R6, B1, I2] A perfect prediction (``pred == target``, or logits ±30 toward the target) has
    finite gradients and scores no worse than the sample's prediction; identical boxes score 0."""
    s = plain_sample(target, F64, device)
    pi, tp = _pair(target, s.args)
    x, t = s.args[pi], s.args[tp]
    if target.input_kind == "logits":
        perfect = _toward(target, x, t, CONFIDENT)
        how = f"logits ±{CONFIDENT:g} toward the target"
    elif target.target_kind in ("real", "boxes") and t.shape == x.shape and t.is_floating_point():
        perfect = t.clone()
        how = f"{target.arg_name(pi)} == {target.arg_name(tp)}"
    else:
        raise Skip(f"no perfect prediction for input_kind {target.input_kind!r} and target_kind "
                   f"{target.target_kind!r}")
    red = _red(target, "mean")
    args = list(s.args)
    args[pi] = perfect
    positions = [i for i in diff_positions(target, args) if i == pi]
    best = _finite_call(target, args, s.kwargs, positions, f"the loss at a perfect prediction ({how})", **red)
    sample = call(target, s.args, s.kwargs, sample=s.name, **red)
    if best.numel() != 1 or sample.numel() != 1:
        return f"{how}: finite value and gradients"
    slack = 1e-6 * max(1.0, abs(sample.item()))
    if best.item() > sample.item() + slack:
        raise Fail(f"a perfect prediction ({how}) scores {best.item():.6g}, worse than the sample's prediction "
                   f"({sample.item():.6g})")
    if target.task == "boxes" and abs(best.item()) > 1e-6:
        raise Fail(f"identical boxes score {best.item():.6g}, expected 0 (within 1e-6)")
    return f"{how}: {best.item():.4g} (the sample's prediction: {sample.item():.4g}), finite gradients"


# ---------------------------------------------------------------------------------------- embeddings


def _embedding_pair(target: CheckTarget, s: Any) -> tuple[int, int | None]:
    tp = target.target_position
    pi = next((i for i, a in enumerate(s.args) if i != tp and isinstance(a, Tensor) and a.is_floating_point()
               and a.dim() == 2), None)
    if pi is None:
        raise Skip("the loss takes no (N, D) embeddings")
    ti = _index_target(s.args)
    return pi, ti


@_family("degenerate_labels", ("embedding",))
def check_degenerate_labels(target: CheckTarget, device: torch.device) -> str:
    """[M1, M2, M3] All labels distinct (no positive pair), all labels equal (no negative), a batch of
    one: finite value and gradients."""
    if target.target_kind not in ("labels",):
        raise Skip(f"target_kind is {target.target_kind!r}, not labels")
    s = plain_sample(target, F32, device)
    pi, ti = _embedding_pair(target, s)
    if ti is None:
        raise Skip("the plain sample has no integer labels")
    x, t = s.args[pi], s.args[ti]
    n = t.shape[0]
    values = []
    red = _red(target, "mean")
    for label, labels in (("distinct labels", torch.arange(n, device=device)),
                          ("equal labels", torch.zeros(n, dtype=t.dtype, device=device))):
        args = list(s.args)
        args[ti] = labels.to(t.dtype)
        out = _finite_call(target, args, s.kwargs, [pi], f"the loss with all {label}", **red)
        values.append(f"{label} {_value(out)}")
    args = list(s.args)
    args[pi], args[ti] = x[:1], t[:1]
    out = _finite_call(target, args, s.kwargs, [pi], "the loss of a batch of one", **red)
    values.append(f"a batch of one {_value(out)}")
    return "finite: " + ", ".join(values)


@_family("zero_distance", ("embedding",))
def check_zero_distance(target: CheckTarget, device: torch.device) -> str:
    """[M4, M5, M6] Positives at distance zero (same-label embeddings identical), every embedding
    identical, a zero-norm embedding, in float32 and float16: finite value and gradients (no ``sqrt``
    or normalisation without a guard at 0)."""
    s = plain_sample(target, F32, device)
    pi, ti = _embedding_pair(target, s)
    x = s.args[pi]
    cases: list[tuple[str, Tensor]] = []
    if ti is not None:
        t = s.args[ti]
        first = torch.stack([(t == t[i]).nonzero()[0, 0] for i in range(t.shape[0])])
        cases.append(("positives at distance 0", x[first]))
    cases.append(("every embedding identical", x[:1].expand_as(x).clone()))
    zero = x.clone()
    zero[0] = 0
    cases.append(("a zero-norm embedding", zero))
    red = _red(target, "mean")
    dtypes = [F32] + [d for d in target.low_precision_dtypes if d == torch.float16]
    for label, emb in cases:
        for dtype in dtypes:
            args = list(s.args)
            args[pi] = emb.to(dtype)
            _finite_call(target, args, s.kwargs, [pi],
                         f"the loss with {label} ({str(dtype).replace('torch.', '')})", **red)
    return "finite value and gradients with " + ", ".join(label for label, _ in cases)


# ------------------------------------------------------------------------- distributions, boxes, images


@_family("zero_probabilities", ("distribution",))
def check_zero_probabilities(target: CheckTarget, device: torch.device) -> str:
    """[P1] Target probabilities with exact zeros: finite value and finite gradient w.r.t. the input."""
    if target.target_kind != "probs":
        raise Skip(f"target_kind is {target.target_kind!r}, not probabilities")
    s = plain_sample(target, F64, device)
    pi, tp = _pair(target, s.args)
    t = s.args[tp]
    if t.dim() < 2 or t.shape[-1] < 2:
        raise Skip(f"target {tuple(t.shape)} has no class dimension to zero")
    zeroed = t.clone()
    zeroed[..., 0] = 0
    zeroed = zeroed / zeroed.sum(-1, keepdim=True)
    args = list(s.args)
    args[tp] = zeroed
    out = _finite_call(target, args, s.kwargs, [pi], "the loss with zero target probabilities",
                       **_red(target, "mean"))
    return f"class 0 at probability 0 in every row: {_value(out)}, finite gradient"


@_family("degenerate_boxes", ("boxes",))
def check_degenerate_boxes(target: CheckTarget, device: torch.device) -> str:
    """[B2, B3] A zero-area box against itself, and predictions of zero width or zero height: finite value
    and gradients."""
    s = plain_sample(target, F64, device)
    pi, tp = _pair(target, s.args)
    x, t = s.args[pi], s.args[tp]
    if x.shape[-1:] != (4,) or t.shape != x.shape:
        raise Skip(f"boxes {tuple(x.shape)} and {tuple(t.shape)} are not (..., 4) pairs")
    point = torch.cat([t[..., :2], t[..., :2]], dim=-1)
    thin = x.clone()
    thin[..., 2] = thin[..., 0]
    flat = x.clone()
    flat[..., 3] = flat[..., 1]
    red = _red(target, "mean")
    for label, pred, truth in (("a zero-area box against itself", point, point),
                               ("zero-width predictions", thin, t), ("zero-height predictions", flat, t)):
        args = list(s.args)
        args[pi], args[tp] = pred.clone(), truth.clone()
        _finite_call(target, args, s.kwargs, [pi], f"the loss of {label}", **red)
    return "finite value and gradients for zero-area, zero-width and zero-height boxes"


@_family("constant_images", ("image",))
def check_constant_images(target: CheckTarget, device: torch.device) -> str:
    """[I1, I5] Two equal constant images and two different ones: finite value and gradients (no 0/0 in
    variance terms, no log of 0)."""
    s = plain_sample(target, F64, device)
    pi, tp = _pair(target, s.args)
    x, t = s.args[pi], s.args[tp]
    if t.shape != x.shape or not t.is_floating_point():
        raise Skip(f"images {tuple(x.shape)} and {tuple(t.shape)} are not a pair of one shape")
    red = _red(target, "mean")
    values = []
    for label, a, b in (("equal constants", 0.5, 0.5), ("different constants", 0.2, 0.7)):
        args = list(s.args)
        args[pi], args[tp] = torch.full_like(x, a), torch.full_like(t, b)
        positions = [i for i in diff_positions(target, args) if i in (pi, tp)]
        out = _finite_call(target, args, s.kwargs, positions, f"the loss of two images of {label}", **red)
        values.append(f"{label} {_value(out)}")
    return "finite: " + ", ".join(values)
