"""The checks: one function per promise of the conventions, shared by the test suite and ``lossforge check``.

Each ``check_<name>(target, *, device="cpu") -> CheckResult`` looks only at a
:class:`CheckTarget`, never raises for a failing loss (an exception inside the
loss becomes a failed result naming the call and the exception), and never
changes the global random state. The checks run in validation mode, as the test
suite does, except where noted (garbage and extreme inputs are what a loss must
survive in production, where validation is off; compile must not sync), and on one
CPU thread (the inputs are tiny; more threads only contend on a busy machine).

The reliability battery numbers (U1-U22) are those of the project's research
notes; the contract itself is CONVENTIONS.md §2 (reduction, weights, masks,
empty policy, numerics), §3 (errors) and §5 (docstrings).
"""

from __future__ import annotations

import inspect
import io
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.autograd.gradcheck import GradcheckError

from .._core.errors import did_you_mean
from .._core.registry import LossSpec
from .._core.samples import CALL_KWARGS, ErrorSample, Sample, generator, rand
from .._core.validation import validation
from ._support import (
    Fail,
    Skip,
    batch_positions,
    build_module,
    call,
    call_checked,
    call_module,
    clone_tree,
    describe_kwargs,
    diff_positions,
    exc_text,
    fmt_index,
    grads,
    make_module,
    mismatch,
    nonfinite,
    plain_sample,
    random_mask,
    same_bits,
    samples,
    scalar_of,
    take,
    with_grad,
)
from ._target import CheckResult, CheckTarget
from ._tolerances import (
    COMPILE,
    COMPILE_ERRORS,
    EXTREME,
    GRADCHECK,
    GRADCHECK_FULL_MAX,
    low_precision_compute_tolerance,
    low_precision_tolerance,
    tolerance,
)
from ._user import UserLoss

__all__ = ["CHECKS", "CHECKS_SLOW", "Check", "run_checks"]

F64 = torch.float64
F32 = torch.float32
REDUCTIONS = ("none", "mean", "sum")


class Check(Protocol):
    """A check: ``check(target, *, device="cpu") -> CheckResult``."""

    __name__: str

    def __call__(self, target: CheckTarget, *, device: str | torch.device = "cpu", **options: Any) -> CheckResult:
        ...


#: The checks every loss runs, in order.
CHECKS: dict[str, Check] = {}
#: Opt-in checks that take seconds per loss (``torch.compile``).
CHECKS_SLOW: dict[str, Check] = {}


def _register(name: str, *, slow: bool = False, validate: bool = True) -> Callable[[Callable[..., str]], Check]:
    """Turn ``body(target, device, **options) -> detail`` into a registered check."""

    def decorate(body: Callable[..., str]) -> Check:
        def check(target: CheckTarget, *, device: str | torch.device = "cpu", **options: Any) -> CheckResult:
            dev = torch.device(device)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # tiny inputs: threads only add contention on a busy machine
            rng_devices = [dev] if dev.type == "cuda" else []
            try:
                with validation(validate), torch.random.fork_rng(devices=rng_devices):
                    detail = body(target, dev, **options)
            except Skip as skip:
                return CheckResult(name, "skipped", str(skip))
            except Fail as fail:
                return CheckResult(name, "failed", str(fail))
            except Exception as exc:
                return CheckResult(name, "failed", f"the check stopped on {exc_text(exc)}")
            finally:
                torch.set_num_threads(threads)
            return CheckResult(name, "passed", detail)

        check.__name__ = check.__qualname__ = body.__name__
        check.__doc__ = body.__doc__
        check.__module__ = body.__module__
        (CHECKS_SLOW if slow else CHECKS)[name] = check
        return check

    return decorate


# ----------------------------------------------------------------------------------------------- helpers


def _expect(problem: str | None) -> None:
    if problem:
        raise Fail(problem)


def _need_reduction(target: CheckTarget) -> None:
    if not target.accepts_reduction:
        raise Skip("the loss takes no reduction keyword")


def _need_conventions(target: CheckTarget) -> None:
    if not target.conventions:
        raise Skip("a lossforge convention, not required of your own loss")


def _finite_result(out: Tensor, leaves: Sequence[Tensor], names: Sequence[str], what: str) -> str:
    """``out`` is finite with finite gradients (the policy for a user's loss, which need not return 0.0)."""
    _expect(nonfinite(out, what))
    if out.numel():
        _check_grads(grads(out, leaves, what), leaves, names, what)
    shown = f"{out.item():.4g}" if out.numel() == 1 else f"shape {tuple(out.shape)}"
    return f"{what} is {shown}, finite, with finite gradients"


def _unit_shape(target: CheckTarget, s: Sample) -> tuple[int, ...]:
    """The shape of the unreduced loss (from ``reduction="none"``) or, without a reduction, of a mask."""
    if target.accepts_reduction:
        return tuple(call(target, s.args, s.kwargs, sample=s.name, reduction="none").shape)
    if target.unit_shape is None:
        raise Skip("the loss takes no reduction keyword, so the shape of a mask is unknown")
    return tuple(target.unit_shape(tuple(s.args)))


def _red(target: CheckTarget, reduction: str) -> dict[str, Any]:
    return {"reduction": reduction} if target.accepts_reduction else {}


def _label(sample: Sample) -> str:
    return f" on sample {sample.name!r}" if sample.name else ""


def _check_grads(gs: Sequence[Tensor], leaves: Sequence[Tensor], names: Sequence[str], what: str,
                 *, zero: bool = False, allow_inf: bool = False) -> None:
    for g, leaf, name in zip(gs, leaves, names):
        if g.shape != leaf.shape:
            raise Fail(f"the gradient of {what} w.r.t. {name} has shape {tuple(g.shape)}, expected {tuple(leaf.shape)}")
        bad = (torch.isnan(g) if allow_inf else ~torch.isfinite(g)).any()
        if bool(bad):
            _expect(nonfinite(g, f"the gradient of {what}", name))
        if zero and bool((g != 0).any()):
            nz = g != 0
            first = nz.nonzero()[0].tolist() if g.dim() else []
            raise Fail(f"the gradient of {what} is nonzero at {int(nz.sum())} of {g.numel()} positions, "
                       f"first at {name}{fmt_index(first)} ({g[tuple(first)].item():.4g})")


def _zero_connected(out: Tensor, leaves: Sequence[Tensor], names: Sequence[str], what: str) -> None:
    """``out`` is a scalar 0.0 connected to the graph with zero, finite gradients."""
    if out.dim() != 0:
        raise Fail(f"{what} has shape {tuple(out.shape)}, expected a scalar")
    value = out.item()
    if value != 0.0:
        raise Fail(f"{what} is {value:.6g}, expected 0.0")
    _check_grads(grads(out, leaves, what), leaves, names, what, zero=True)


def _all_zero(out: Tensor, what: str) -> None:
    """Every entry of ``out`` is exactly 0."""
    _expect(nonfinite(out, what))
    if bool((out != 0).any()):
        nz = out != 0
        first = nz.nonzero()[0].tolist() if out.dim() else []
        raise Fail(f"{what} is nonzero at {int(nz.sum())} of {out.numel()} positions, "
                   f"first at {fmt_index(first) or '()'} ({out[tuple(first)].item():.4g})")


def _names(target: CheckTarget, positions: Sequence[int]) -> list[str]:
    return [target.arg_name(i) for i in positions]


def _error_inputs(target: CheckTarget) -> list[ErrorSample]:
    try:
        return list(target.error_inputs())
    except Exception as exc:
        raise Fail(f"error_inputs() raised {exc_text(exc)}") from None


def _describe_args(args: Sequence[Any]) -> str:
    parts = []
    for a in args:
        if isinstance(a, Tensor):
            parts.append(f"{tuple(a.shape)} {str(a.dtype).replace('torch.', '')}")
        else:
            parts.append(repr(a))
    return ", ".join(parts)


def _same_default(a: object, b: object) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape and bool(torch.equal(a, b))
    try:
        return bool(a == b)
    except Exception:
        return False


# ------------------------------------------------------------------------------------------- the checks


@_register("signature")
def check_signature(target: CheckTarget, device: torch.device) -> str:
    """Tensors positional-only; ``reduction="mean"``, ``sample_weight=None``, ``mask=None`` keyword-only;
    no ``weight`` (passing it raises ``TypeError`` naming ``sample_weight``); module defaults equal the function's."""
    _need_conventions(target)
    sig = target.signature
    if sig is None:
        raise Fail("the function's signature cannot be read")
    P = inspect.Parameter
    params = sig.parameters
    problems: list[str] = []
    positional = [p for p in params.values() if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    if not positional:
        problems.append("the function takes no positional tensor arguments")
    for p in positional:
        if p.default is not p.empty:
            problems.append(f"{p.name!r} has a default but is positional (hyper-parameters are keyword-only)")
        elif p.kind != P.POSITIONAL_ONLY:
            problems.append(f"tensor argument {p.name!r} is not positional-only (put '/' after the tensors)")
    for name, default in (("reduction", "mean"), ("sample_weight", None), ("mask", None)):
        q = params.get(name)
        if q is None:
            problems.append(f"no keyword {name!r}")
        elif q.kind != P.KEYWORD_ONLY:
            problems.append(f"{name!r} is not keyword-only")
        elif not _same_default(q.default, default):
            problems.append(f"{name!r} defaults to {q.default!r}, expected {default!r}")
    if "weight" in params and params["weight"].kind != P.POSITIONAL_ONLY:
        problems.append("a parameter is named 'weight' (use sample_weight or class_weight)")
    else:  # a positional-only tensor may be called weight (an LM head's matrix): weight= must still be refused
        problems += _weight_refused(target, device)
    if target.module_factory is not None:
        problems += _module_defaults(target, device)
    if problems:
        raise Fail("; ".join(problems))
    kw = [n for n, q in params.items() if q.kind == P.KEYWORD_ONLY]
    detail = f"positional-only {', '.join(p.name for p in positional)}; {len(kw)} keyword-only arguments"
    return detail + ("; module defaults match" if target.module_factory is not None else "")


def _weight_refused(target: CheckTarget, device: torch.device) -> list[str]:
    s = plain_sample(target, F32, device)
    try:
        target.function(*s.args, **s.kwargs, weight=torch.ones((), device=device))
    except TypeError as exc:
        if "sample_weight" not in str(exc):
            return [f"weight= raised TypeError without naming sample_weight: {exc_text(exc)}"]
        return []
    except Exception as exc:
        return [f"weight= raised {exc_text(exc)}, expected a TypeError naming sample_weight"]
    return ["weight= is accepted silently (expected a TypeError naming sample_weight)"]


def _module_defaults(target: CheckTarget, device: torch.device) -> list[str]:
    """The module's constructor takes the function's keywords with the same defaults (and requires
    the ones the function requires)."""
    factory = target.module_factory
    if factory is None or target.signature is None:
        return []
    P = inspect.Parameter
    try:
        mparams = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return ["the module's constructor signature cannot be read"]
    problems = [f"module argument {p.name!r} is not keyword-only" for p in mparams.values()
                if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    at_call = target.forward_keywords
    keywords = {n: p for n, p in target.signature.parameters.items()
                if p.kind == P.KEYWORD_ONLY and n not in CALL_KWARGS and n not in at_call}
    required = {n for n, p in keywords.items() if p.default is p.empty}
    # Built with the function's required keywords only (from the plain sample), the module holds its defaults.
    plain = plain_sample(target, F32, device)
    given = Sample(plain.args, {k: v for k, v in plain.kwargs.items() if k in required}, name=plain.name)
    instance: nn.Module | None = None
    try:
        instance = build_module(target, given, device)[0]
    except Fail as fail:
        problems.append(str(fail))
    for key, p in keywords.items():
        q = mparams.get(key)
        if key in required:
            if q is not None and q.default is not q.empty:
                problems.append(f"module argument {key!r} has a default but the function requires it")
            continue
        if q is not None and q.kind in (P.KEYWORD_ONLY, P.POSITIONAL_OR_KEYWORD):
            if q.default is q.empty:
                problems.append(f"module argument {key!r} is required but the function defaults to {p.default!r}")
                continue
            got = q.default
        elif instance is not None and hasattr(instance, key):
            got = getattr(instance, key)
        else:
            problems.append(f"the module has no argument {key!r}")
            continue
        if not _same_default(got, p.default):
            problems.append(f"module default {key}={got!r} differs from the function's {p.default!r}")
    return problems


_SECTIONS = ("Args:", "Shape:", "Returns:", "Raises:", "Note:", "References:", "Examples:")
_REQUIRED_SECTIONS = ("Args:", "Shape:", "References:", "Examples:")


@_register("docstring")
def check_docstring(target: CheckTarget, device: torch.device) -> str:
    """The docstring has a formula and the Args, Shape, References and Examples sections, in order;
    the loss names a reference and declares error inputs."""
    _need_conventions(target)
    doc = inspect.getdoc(target.function) or ""
    if not doc.strip():
        raise Fail("the function has no docstring")
    problems: list[str] = []
    if ".. math::" not in doc:
        problems.append("no '.. math::' formula")
    found = {}
    for section in _SECTIONS:
        m = re.search(rf"^[ \t]*{re.escape(section)}[ \t]*$", doc, re.MULTILINE)
        if m:
            found[section] = m.start()
    missing = [s for s in _REQUIRED_SECTIONS if s not in found]
    if missing:
        problems.append("missing section" + ("s " if len(missing) > 1 else " ") + ", ".join(missing))
    present = [s for s in _SECTIONS if s in found]
    in_doc_order = sorted(present, key=found.__getitem__)
    if in_doc_order != present:
        problems.append(f"sections in the order {' '.join(in_doc_order)}, expected {' '.join(present)}")
    if "Examples:" in found and ">>>" not in doc[found["Examples:"]:]:
        problems.append("Examples has no doctest (>>>)")
    if target.reference is not None and not target.reference.strip():
        problems.append("the registry entry names no reference")
    n_errors = len(_error_inputs(target))
    if n_errors == 0:
        problems.append("the loss declares no error inputs")
    factory = target.module_factory
    if factory is not None:
        mdoc = vars(factory).get("__doc__") if isinstance(factory, type) else getattr(factory, "__doc__", None)
        if not (mdoc or "").strip():
            problems.append("the module has no docstring")
    if problems:
        raise Fail("; ".join(problems))
    return f"sections {' '.join(present)}; {n_errors} error inputs" + (
        f"; reference {target.reference[:60]!r}" if target.reference else "")


@_register("reductions")
def check_reductions(target: CheckTarget, device: torch.device) -> str:
    """[U4] ``none.sum() == sum``; ``mean == sum / numel(U)`` on the plain sample;
    with ``sample_weight``: ``none == U*w``, ``mean == ΣU·w / Σw``."""
    _need_reduction(target)
    tol = tolerance(F64)
    ss = samples(target, F64, device)
    s = plain_sample(target, F64, device)
    at = _label(s)
    none = call(target, s.args, s.kwargs, sample=s.name, reduction="none")
    total = call(target, s.args, s.kwargs, sample=s.name, reduction="sum")
    mean = call(target, s.args, s.kwargs, sample=s.name, reduction="mean")
    for what, value in (("sum", total), ("mean", mean)):
        if value.dim() != 0:
            raise Fail(f"reduction={what!r}{at} returns shape {tuple(value.shape)}, expected a scalar")
    n = none.numel()
    first = next((a for a in s.args if isinstance(a, Tensor)), None)
    if target.separable and first is not None and first.dim() >= 1:
        batch = first.shape[0]
        if none.dim() == 0 or none.shape[0] != batch:
            raise Fail(f"none{at} has shape {tuple(none.shape)}, expected a leading batch dimension of {batch} "
                       f"(the loss is separable: one unit per sample or per element)")
    _expect(mismatch(total, none.sum(), f"sum{at} (vs none.sum())", **tol))
    want = none.sum() / n if n else none.new_zeros(())
    _expect(mismatch(mean, want, f"mean{at} (vs none.sum() / {n} units)", **tol))
    weighted = ""
    if target.accepts_sample_weight and n:
        w = rand(*none.shape, gen=generator(11), dtype=F64, device=device, low=0.25, high=2.0)
        nw = call(target, s.args, s.kwargs, sample=s.name, reduction="none", sample_weight=w)
        _expect(mismatch(nw, none * w, f"none with sample_weight{at} (vs U * w)", **tol))
        sw = call(target, s.args, s.kwargs, sample=s.name, reduction="sum", sample_weight=w)
        _expect(mismatch(sw, (none * w).sum(), f"sum with sample_weight{at} (vs Σ U·w)", **tol))
        mw = call(target, s.args, s.kwargs, sample=s.name, reduction="mean", sample_weight=w)
        _expect(mismatch(mw, (none * w).sum() / w.sum(), f"mean with sample_weight{at} (vs Σ U·w / Σ w)", **tol))
        weighted = "; weighted none, sum and mean agree"
    for other in ss:
        if other is s:
            continue
        o_none = call(target, other.args, other.kwargs, sample=other.name, reduction="none")
        o_sum = call(target, other.args, other.kwargs, sample=other.name, reduction="sum")
        o_mean = call(target, other.args, other.kwargs, sample=other.name, reduction="mean")
        if o_mean.dim() != 0 or o_sum.dim() != 0:
            raise Fail(f"mean or sum{_label(other)} is not a scalar")
        _expect(mismatch(o_sum, o_none.sum(), f"sum{_label(other)} (vs none.sum())", **tol))
    return f"none {tuple(none.shape)}; sum == none.sum(); mean == sum / {n}{weighted}; {len(ss)} samples"


@_register("invalid_reduction")
def check_invalid_reduction(target: CheckTarget, device: torch.device) -> str:
    """[U5] ``reduction="avg"`` raises ``ValueError`` with "Did you mean 'mean'?" (function and module)."""
    _need_reduction(target)
    s = plain_sample(target, F32, device)
    pattern = r"Did you mean 'mean'"

    def expect_raise(what: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception as exc:
            if not target.conventions:  # a user's loss only has to refuse it
                return
            if not isinstance(exc, ValueError):
                raise Fail(f"{what} raised {exc_text(exc)}, expected ValueError") from None
            if not re.search(pattern, str(exc)):
                raise Fail(f"{what} raised ValueError without \"Did you mean 'mean'?\": {exc_text(exc)}") from None
            return
        if target.conventions:
            raise Fail(f"{what} was accepted, expected ValueError (\"Did you mean 'mean'?\")")
        raise Fail(f"{what} was accepted: a misspelt reduction silently gives some other reduction")

    expect_raise("reduction='avg'", lambda: target.function(*s.args, **s.kwargs, reduction="avg"))
    factory = target.module_factory
    if factory is not None:

        def module_avg() -> object:
            module, args, kwargs = make_module(target, s, device, reduction="avg")
            return module(*args, **kwargs)

        expect_raise("module(reduction='avg')", module_avg)
    if not target.conventions:
        return "reduction='avg' is refused"
    return "ValueError with \"Did you mean 'mean'?\"" + (" from function and module" if factory else "")


@_register("mask_subset")
def check_mask_subset(target: CheckTarget, device: torch.device) -> str:
    """``mean`` (``sum``) with a random mask equals the mean (sum) of ``none[mask]``; ``none`` is 0 where masked.
    Without a ``reduction`` keyword: a mask that drops whole samples equals the loss on the kept samples."""
    if not target.accepts_mask:
        raise Skip("the loss takes no mask")
    if not target.accepts_reduction:
        return _mask_subset_of_samples(target, device)
    tol = tolerance(F64)
    s = plain_sample(target, F64, device)
    at = _label(s)
    none = call(target, s.args, s.kwargs, sample=s.name, reduction="none")
    if none.numel() == 0:
        raise Skip("the plain sample's unreduced loss is empty")
    masks = [random_mask(none.shape, device, seed=1)]
    if none.dim() >= 2:
        masks.append(random_mask((none.shape[0],) + (1,) * (none.dim() - 1), device, seed=2))
    for m in masks:
        full = m.expand(none.shape)
        kept = none[full]
        shape = f" of shape {tuple(m.shape)}"
        mean = call(target, s.args, s.kwargs, sample=s.name, reduction="mean", mask=m)
        _expect(mismatch(mean, kept.sum() / kept.numel(), f"mean with a mask{shape}{at} (vs mean of none[mask])",
                         **tol))
        total = call(target, s.args, s.kwargs, sample=s.name, reduction="sum", mask=m)
        _expect(mismatch(total, kept.sum(), f"sum with a mask{shape}{at} (vs sum of none[mask])", **tol))
        masked = call(target, s.args, s.kwargs, sample=s.name, reduction="none", mask=m)
        _expect(mismatch(masked, torch.where(full, none, none.new_zeros(())), f"none with a mask{shape}{at}", **tol))
    return f"mean/sum/none with a mask equal none[mask] ({int(masks[0].sum())} of {none.numel()} units kept)" + (
        "; broadcast (N, 1, ...) mask too" if len(masks) > 1 else "")


def _mask_subset_of_samples(target: CheckTarget, device: torch.device) -> str:
    if not target.separable:
        raise Skip("the loss takes no reduction keyword and is not separable, so a mask has no subset to "
                   "compare with")
    tol = tolerance(F64)
    s = plain_sample(target, F64, device)
    n, batch = batch_positions(s.args, target.batch_dim)
    shape = _unit_shape(target, s)
    if n < 2 or not shape or shape[0] != n:
        raise Skip(f"a mask of shape {shape} does not index the batch of {n}")
    keep_rows = random_mask((n,), device, seed=2)
    m = keep_rows.reshape((n,) + (1,) * (len(shape) - 1)).expand(shape)
    masked = call(target, s.args, s.kwargs, sample=s.name, mask=m)
    kept = take(s.args, batch, keep_rows.nonzero().squeeze(1), target.batch_dim)
    subset = call(target, kept, s.kwargs, sample=f"the {int(keep_rows.sum())} kept samples")
    _expect(mismatch(masked, subset, f"the loss with a mask keeping {int(keep_rows.sum())} of {n} samples "
                     f"(vs the loss on those samples alone)", **tol))
    return f"a mask keeping {int(keep_rows.sum())} of {n} samples equals the loss on those samples"


@_register("weights")
def check_weights(target: CheckTarget, device: torch.device) -> str:
    """All-ones ``sample_weight`` equals none; ``mean`` is invariant to scaling the weights by 10;
    weight 0 equals ``mask=False``."""
    _need_reduction(target)
    if not target.accepts_sample_weight:
        raise Skip("the loss takes no sample_weight")
    tol = tolerance(F64)
    s = plain_sample(target, F64, device)
    at = _label(s)
    none = call(target, s.args, s.kwargs, sample=s.name, reduction="none")
    if none.numel() == 0:
        raise Skip("the plain sample's unreduced loss is empty")
    ones = torch.ones(none.shape, dtype=F64, device=device)
    for r in REDUCTIONS:
        got = call(target, s.args, s.kwargs, sample=s.name, reduction=r, sample_weight=ones)
        ref = call(target, s.args, s.kwargs, sample=s.name, reduction=r)
        _expect(mismatch(got, ref, f"{r} with all-ones sample_weight{at} (vs no weight)", **tol))
    w = rand(*none.shape, gen=generator(12), dtype=F64, device=device, low=0.25, high=2.0)
    m1 = call(target, s.args, s.kwargs, sample=s.name, reduction="mean", sample_weight=w)
    m10 = call(target, s.args, s.kwargs, sample=s.name, reduction="mean", sample_weight=10 * w)
    _expect(mismatch(m10, m1, f"mean with sample_weight * 10{at} (vs sample_weight)", **tol))
    keep = random_mask(none.shape, device, seed=3)
    w0 = torch.where(keep, w, w.new_zeros(()))
    for r in ("mean", "sum"):
        got = call(target, s.args, s.kwargs, sample=s.name, reduction=r, sample_weight=w0)
        if target.accepts_mask:
            ref = call(target, s.args, s.kwargs, sample=s.name, reduction=r, sample_weight=w, mask=keep)
        else:
            ref = (none * w)[keep].sum() / (w[keep].sum() if r == "mean" else 1.0)
        _expect(mismatch(got, ref, f"{r} with zero weights{at} (vs mask=False there)", **tol))
    return "ones == no weight; mean invariant to w * 10; weight 0 == mask False"


@_register("empty_batch")
def check_empty_batch(target: CheckTarget, device: torch.device) -> str:
    """[U12] N = 0: ``mean`` is 0.0 connected to the graph with zero finite gradients, ``sum`` 0.0,
    ``none`` empty (or zeros); a clear ``ValueError`` (E17) is accepted and reported as a skip."""
    s = plain_sample(target, F32, device)
    _, batch = batch_positions(s.args, target.batch_dim)
    empty = take(s.args, batch, slice(0, 0), target.batch_dim)
    positions = diff_positions(target, empty)
    names = _names(target, positions)
    args, leaves = with_grad(empty, positions)
    try:
        mean = target.function(*args, **s.kwargs, **_red(target, "mean"))
    except ValueError as exc:
        raise Skip(f"the loss refuses an empty batch (E17): {exc_text(exc)}") from None
    except Exception as exc:
        raise Fail(f"an empty batch raised {exc_text(exc)}") from None
    if not isinstance(mean, Tensor):
        raise Fail(f"an empty batch gave a {type(mean).__name__}, not a tensor")
    if not target.conventions:
        parts = [_finite_result(mean, leaves, names, "the loss of an empty batch")]
        if target.accepts_reduction:
            none = call(target, empty, s.kwargs, reduction="none")
            _expect(nonfinite(none, "none of an empty batch"))
            _expect(nonfinite(call(target, empty, s.kwargs, reduction="sum"), "sum of an empty batch"))
            parts.append(f"sum finite, none {tuple(none.shape)}")
        return "; ".join(parts)
    _zero_connected(mean, leaves, names, "mean of an empty batch")
    parts = ["mean 0.0 with zero gradients"]
    if target.accepts_reduction:
        total = call(target, empty, s.kwargs, reduction="sum")
        _zero_scalar(total, "sum of an empty batch")
        none = call(target, empty, s.kwargs, reduction="none")
        _all_zero(none, "none of an empty batch")
        parts.append(f"sum 0.0, none {tuple(none.shape)}")
    if target.module_factory is not None:
        empty_sample = Sample(empty, dict(s.kwargs), name="empty batch", plain=True)
        module, _, out = call_module(target, empty_sample, device, **_red(target, "mean"))
        params = [p for p in module.parameters() if p.requires_grad]
        if out.item() != 0.0:
            raise Fail(f"the module's mean of an empty batch is {out.item():.6g}, expected 0.0")
        if params:
            gs = grads(out, params, "the module's mean of an empty batch")
            pnames = [n for n, p in module.named_parameters() if p.requires_grad]
            _check_grads(gs, params, pnames, "the module's mean of an empty batch", zero=True)
            parts.append(f"{len(params)} module parameters get zero gradients")
    return "; ".join(parts)


def _zero_scalar(out: Tensor, what: str) -> None:
    if out.dim() != 0:
        raise Fail(f"{what} has shape {tuple(out.shape)}, expected a scalar")
    if out.item() != 0.0:
        raise Fail(f"{what} is {out.item():.6g}, expected 0.0")


def _index_target(args: Sequence[Any]) -> int | None:
    for i, a in enumerate(args):
        if i >= 1 and isinstance(a, Tensor) and not a.is_floating_point() and not a.is_complex() \
                and a.dtype != torch.bool:
            return i
    return None


@_register("all_ignored")
def check_all_ignored(target: CheckTarget, device: torch.device) -> str:
    """Every target equal to ``ignore_index``: ``mean`` 0.0 with zero finite gradients, ``sum`` 0.0, ``none`` zeros."""
    if target.target_kind != "index":
        raise Skip(f"target_kind is {target.target_kind!r}, not class indices")
    if not target.accepts_ignore_index:
        raise Skip("the loss takes no ignore_index")
    s = plain_sample(target, F32, device)
    ti = _index_target(s.args)
    if ti is None:
        raise Skip("the plain sample has no integer target")
    kwargs = dict(s.kwargs)
    value = kwargs.get("ignore_index", target.keyword_defaults.get("ignore_index"))
    if value is None:
        value = -100
        kwargs["ignore_index"] = value
    ignored = list(s.args)
    ignored[ti] = torch.full_like(s.args[ti], value)
    positions = diff_positions(target, ignored)
    args, leaves = with_grad(ignored, positions)
    mean = call(target, args, kwargs, sample="all ignored", **_red(target, "mean"))
    if not target.conventions:
        detail = _finite_result(mean, leaves, _names(target, positions), f"the loss with every target = {value}")
        if target.accepts_reduction:
            _expect(nonfinite(call(target, ignored, kwargs, reduction="sum"), "sum with every target ignored"))
            _expect(nonfinite(call(target, ignored, kwargs, reduction="none"), "none with every target ignored"))
        return detail
    _zero_connected(mean, leaves, _names(target, positions), f"mean with every target = {value}")
    if target.accepts_reduction:
        _zero_scalar(call(target, ignored, kwargs, reduction="sum"), "sum with every target ignored")
        _all_zero(call(target, ignored, kwargs, reduction="none"), "none with every target ignored")
    return f"every {target.arg_name(ti)} = {value}: mean and sum 0.0, none zeros, gradients zero"


@_register("all_masked")
def check_all_masked(target: CheckTarget, device: torch.device) -> str:
    """``mask`` all False: ``mean`` 0.0 with zero finite gradients, ``sum`` 0.0, ``none`` zeros
    (for your own loss: finite value and gradients)."""
    if not target.accepts_mask:
        raise Skip("the loss takes no mask")
    s = plain_sample(target, F32, device)
    shape = _unit_shape(target, s)
    if len(shape) and 0 in shape:
        raise Skip("the plain sample's unreduced loss is empty")
    m = torch.zeros(shape, dtype=torch.bool, device=device)
    positions = diff_positions(target, s.args)
    args, leaves = with_grad(s.args, positions)
    mean = call(target, args, s.kwargs, sample=s.name, mask=m, **_red(target, "mean"))
    if not target.conventions:
        detail = _finite_result(mean, leaves, _names(target, positions), "the loss with every unit masked")
        if target.accepts_reduction:
            _expect(nonfinite(call(target, s.args, s.kwargs, reduction="sum", mask=m), "sum with every unit masked"))
            _expect(nonfinite(call(target, s.args, s.kwargs, reduction="none", mask=m),
                              "none with every unit masked"))
        return f"mask all False over {tuple(shape)}: {detail}"
    _zero_connected(mean, leaves, _names(target, positions), "mean with every unit masked")
    _zero_scalar(call(target, s.args, s.kwargs, reduction="sum", mask=m), "sum with every unit masked")
    _all_zero(call(target, s.args, s.kwargs, reduction="none", mask=m), "none with every unit masked")
    return f"mask all False over {tuple(shape)}: mean and sum 0.0, none zeros, gradients zero"


_GARBAGE_KINDS = ("logits", "real", "embeddings", "scores", "probs", "log_probs")


def _input_positions(target: CheckTarget, args: Sequence[Any]) -> list[int]:
    """The differentiable inputs that are predictions (the target too when it is real)."""
    target_pos = target.target_position if target.target_kind != "real" else None
    return [i for i in diff_positions(target, args) if i != target_pos]


def _garbage(target: CheckTarget, s: Sample) -> Sample:
    kind = target.input_kind
    if kind not in _GARBAGE_KINDS:
        raise Skip(f"no default garbage for input_kind {kind!r} and the loss gives no extreme_inputs")
    g = generator(5)
    args = list(s.args)
    for i in _input_positions(target, args):
        x = args[i]
        pick = (torch.rand(x.shape, generator=g) < 0.5).to(x.device)
        high = (torch.rand(x.shape, generator=g) < 0.5).to(x.device)
        if kind == "probs":
            hi, lo = 1.0, 0.0
        elif kind == "log_probs":
            hi, lo = 0.0, -EXTREME
        else:
            hi, lo = EXTREME, -EXTREME
        values = torch.where(high, torch.full_like(x, hi), torch.full_like(x, lo))
        args[i] = torch.where(pick, values, x)
    return Sample(tuple(args), dict(s.kwargs), name="garbage", plain=s.plain)


@_register("masked_garbage", validate=False)
def check_masked_garbage(target: CheckTarget, device: torch.device) -> str:
    """Extreme values (±1e4, or the loss's extreme inputs) with a random mask: the loss and every
    gradient are finite, at masked positions too (no ``log(p)`` then mask)."""
    if not (target.accepts_mask or target.accepts_sample_weight):
        raise Skip("the loss takes neither mask nor sample_weight")
    if target.extreme_inputs is not None:
        cases = list(target.extreme_inputs(F32, device))
        source = f"{len(cases)} extreme samples of the loss"
        if not cases:
            raise Fail("extreme_inputs returned no samples")
    else:
        cases = [_garbage(target, plain_sample(target, F32, device))]
        source = f"±{EXTREME:g} at half the input entries"
    for k, s in enumerate(cases):
        shape = _unit_shape(target, s)
        m = random_mask(shape, device, seed=7 + k)
        hide: dict[str, Tensor] = {"mask": m} if target.accepts_mask else {"sample_weight": m.to(F32)}
        positions = diff_positions(target, s.args)
        args, leaves = with_grad(s.args, positions)
        what = f"the loss with a random mask{_label(s)}"
        out = call(target, args, s.kwargs, sample=s.name, **hide, **_red(target, "mean"))
        _expect(nonfinite(out, what))
        _check_grads(grads(out, leaves, what), leaves, _names(target, positions), what)
        if target.accepts_reduction:
            none = call(target, s.args, s.kwargs, sample=s.name, reduction="none", **hide)
            _expect(nonfinite(none, f"none with a random mask{_label(s)}"))
    return f"finite value and gradients with {source} and a random {'mask' if 'mask' in hide else 'zero weight'}"


def _numerical_report(fn: Callable[..., Tensor], leaves: Sequence[Tensor], names: Sequence[str]) -> str | None:
    """Where the analytical gradient of ``scalar_of(fn)`` (one backward) differs most from central
    differences, or ``None`` when they agree everywhere (at most 2048 entries are probed)."""
    base = [x.detach().clone() for x in leaves]
    xs = [x.clone().requires_grad_(True) for x in base]
    analytical = torch.autograd.grad(scalar_of(fn(*xs)), xs, allow_unused=True)
    eps, atol, rtol = GRADCHECK["eps"], GRADCHECK["atol"], GRADCHECK["rtol"]
    worst: tuple[float, int, int, float, float] | None = None
    budget = 2048
    for k, x in enumerate(base):
        ga = (torch.zeros_like(x) if analytical[k] is None else analytical[k]).reshape(-1)
        for j in range(min(x.numel(), budget)):
            values = []
            for step in (eps, -eps):
                moved = list(base)
                moved[k] = x.clone()
                moved[k].view(-1)[j] += step
                with torch.no_grad():
                    values.append(float(scalar_of(fn(*moved))))
            numeric = (values[0] - values[1]) / (2 * eps)
            got = float(ga[j])
            diff = abs(got - numeric)
            if diff > atol + rtol * abs(numeric) and (worst is None or diff > worst[0]):
                worst = (diff, k, j, got, numeric)
        budget -= x.numel()
        if budget <= 0:
            break
    if worst is None:
        return None
    _, k, j, got, numeric = worst
    index = [int(i) for i in torch.unravel_index(torch.tensor(j), base[k].shape)] if base[k].dim() else []
    return f"d/d{names[k]}{fmt_index(index)} is {got:.6g} analytically, {numeric:.6g} numerically"


@_register("gradcheck")
def check_gradcheck(target: CheckTarget, device: torch.device) -> str:
    """[U1] ``torch.autograd.gradcheck`` in float64 on the plain sample w.r.t. the differentiable inputs,
    for ``reduction="mean"`` and ``"none"``."""
    if not target.exact_gradient:
        raise Skip("the loss declares that its gradient is by design not the derivative of its value "
                   "(exact_gradient=False)")
    s = plain_sample(target, F64, device)
    positions = diff_positions(target, s.args)
    if not positions:
        raise Skip("no floating-point positional tensor to differentiate")
    names = _names(target, positions)
    reductions: tuple[str | None, ...] = ("mean", "none") if target.accepts_reduction else (None,)
    numel = sum(s.args[i].numel() for i in positions)
    for r in reductions:
        extra = {} if r is None else {"reduction": r}

        def fn(*xs: Tensor, extra: dict[str, Any] = extra) -> Tensor:
            args = list(s.args)
            for i, x in zip(positions, xs):
                args[i] = x
            return target.function(*args, **s.kwargs, **extra)

        leaves = [s.args[i].detach().clone().requires_grad_(True) for i in positions]
        if target.single_backward:  # one backward per forward: central differences against it
            try:
                report = _numerical_report(fn, leaves, names)
            except Exception as exc:
                raise Fail(f"finite differences (reduction={r!r}){_label(s)} raised {exc_text(exc)}") from None
            if report:
                raise Fail(f"finite differences (reduction={r!r}){_label(s)}: {report}")
            continue
        try:
            torch.autograd.gradcheck(fn, tuple(leaves), eps=GRADCHECK["eps"], atol=GRADCHECK["atol"],
                                     rtol=GRADCHECK["rtol"], fast_mode=numel > GRADCHECK_FULL_MAX)
        except GradcheckError as exc:
            report = _numerical_report(fn, leaves, names)
            raise Fail(f"gradcheck (reduction={r!r}){_label(s)}: " + (report or exc_text(exc))) from None
        except Exception as exc:
            raise Fail(f"gradcheck (reduction={r!r}){_label(s)} raised {exc_text(exc)}") from None
    shown = " and ".join(repr(r) for r in reductions if r is not None) or "default"
    if target.single_backward:
        return f"float64 central differences (one backward per forward) w.r.t. {', '.join(names)} " \
               f"({numel} entries), reduction {shown}"
    return f"float64 gradcheck w.r.t. {', '.join(names)} ({numel} entries), reduction {shown}"


def _extreme_default(target: CheckTarget, s: Sample) -> tuple[Sample, str]:
    kind = target.input_kind
    args = list(s.args)
    inputs = _input_positions(target, args)
    if not inputs:
        raise Skip("no floating-point input to make extreme")
    tp = target.target_position
    real_pair = (kind == "real" and target.target_kind == "real" and tp is not None and tp > 0 and 0 in inputs
                 and isinstance(args[tp], Tensor) and args[tp].is_floating_point() and args[tp].shape == args[0].shape)
    if real_pair and tp is not None:
        residual = args[0] - args[tp]
        args[0] = args[tp] + residual * (EXTREME / residual.abs().max().clamp_min(1e-12))
        how = f"residuals scaled to ±{EXTREME:g}"
    elif kind in ("logits", "real", "embeddings", "scores"):
        for i in inputs:
            args[i] = args[i] * (EXTREME / args[i].abs().max().clamp_min(1e-12))
        how = f"{kind} scaled to ±{EXTREME:g}"
    elif kind == "probs":
        for i in inputs:
            args[i] = (args[i] > 0.5).to(args[i].dtype)
        how = "probabilities rounded to exactly 0 and 1"
    else:
        raise Skip(f"no default extreme inputs for input_kind {kind!r} and the loss gives none")
    return Sample(tuple(args), dict(s.kwargs), name="extreme", plain=s.plain), how


@_register("extreme_inputs", validate=False)
def check_extreme_inputs(target: CheckTarget, device: torch.device) -> str:
    """[U9] On the loss's extreme inputs, value and gradients are finite; on default ones (logits or
    residuals scaled to ±1e4, probabilities 0/1) they are never NaN."""
    if target.extreme_inputs is not None:
        cases = list(target.extreme_inputs(F32, device))
        if not cases:
            raise Fail("extreme_inputs returned no samples")
        strict, how = True, f"{len(cases)} extreme samples of the loss: finite"
    else:
        case, how = _extreme_default(target, plain_sample(target, F32, device))
        cases, strict = [case], False
        how += ": never NaN"
    reductions: tuple[str | None, ...] = REDUCTIONS if target.accepts_reduction else (None,)
    for s in cases:
        positions = diff_positions(target, s.args)
        names = _names(target, positions)
        for r in reductions:
            args, leaves = with_grad(s.args, positions)
            extra = {} if r is None else {"reduction": r}
            out = call(target, args, s.kwargs, sample=s.name, **extra)
            what = f"{r or 'the loss'}{_label(s)}"
            bad = ~torch.isfinite(out) if strict else torch.isnan(out)
            if bool(bad.any()):
                _expect(nonfinite(out, what))
            if out.numel():
                _check_grads(grads(out, leaves, what), leaves, names, what, allow_inf=not strict)
    return how


def _rounded_positions(target: CheckTarget, args: Sequence[Any]) -> list[int]:
    """The floating-point positional tensors a half-precision model would produce: every one but a
    non-real target (probabilities, binary labels), which stays as the data loader gives it."""
    target_pos = target.target_position if target.target_kind != "real" else None
    return [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.is_floating_point() and i != target_pos]


#: The large-magnitude variant of the low-precision check: each input kind scaled ``"to"`` a largest
#: entry or ``"by"`` a factor (confident logits, pixel-scale boxes), where half precision overflows first.
_LARGE: dict[str, tuple[str, float]] = {"logits": ("to", 30.0), "scores": ("to", 30.0),
                                        "embeddings": ("by", 10.0), "boxes": ("by", 100.0)}


def _large_sample(target: CheckTarget, s: Sample) -> Sample | None:
    """``s`` with its predictions (and a box or real target) at a large but realistic magnitude."""
    how = _LARGE.get(target.input_kind)
    if how is None:
        return None
    mode, value = how
    tp = target.target_position
    args = list(s.args)
    for i, a in enumerate(args):
        if not (isinstance(a, Tensor) and a.is_floating_point() and a.numel()):
            continue
        if i == tp and target.target_kind not in ("real", "boxes", "embeddings"):
            continue
        args[i] = a * (value / a.abs().max().clamp_min(1e-12)) if mode == "to" else a * value
    label = f"{target.input_kind} scaled {mode} {value:g}"
    return Sample(tuple(args), dict(s.kwargs), name=f"{s.name}, {label}" if s.name else label, plain=s.plain)


def _close_low(out: Tensor, want: Tensor, what: str, dtype: torch.dtype, conventions: bool) -> str | None:
    """How a low-precision result differs from float32: tightly for a lossforge loss (it computes in
    float32), relative to the result's magnitude for a user's loss (it may compute in ``dtype``)."""
    if conventions:
        return mismatch(out, want, what, **low_precision_tolerance(dtype)["value"])
    rtol = low_precision_compute_tolerance(dtype)
    scale = float(want.detach().abs().max()) if want.numel() else 0.0
    return mismatch(out, want, what, rtol=rtol, atol=rtol * scale)


@_register("low_precision")
def check_low_precision(target: CheckTarget, device: torch.device) -> str:
    """[U3] float16 and bfloat16 inputs (a non-real target stays float32), on the samples and on a
    large-magnitude copy (logits at ±30, boxes in pixels): finite value and gradients, close to float32 on
    the rounded inputs. A lossforge loss returns float32 (it computes half inputs in float32)."""
    base = samples(target, F32, device)
    cases = list(base)
    for s in base[:1]:
        large = _large_sample(target, s)
        if large is not None:
            cases.append(large)
    dtypes = target.low_precision_dtypes
    if not dtypes:
        raise Skip("no low-precision dtype asked for")
    for dtype in dtypes:
        tol = low_precision_tolerance(dtype)
        short = str(dtype).replace("torch.", "")
        limit = torch.finfo(dtype).max
        for s in cases:
            floating = _rounded_positions(target, s.args)
            if not floating:
                raise Skip("no floating-point input to round")
            low = list(s.args)
            ref = list(s.args)
            for i in floating:
                low[i] = s.args[i].to(dtype)
                ref[i] = low[i].float()
            positions = diff_positions(target, s.args)
            names = _names(target, positions)
            for r in ("mean", "none") if target.accepts_reduction else (None,):
                extra = {} if r is None else {"reduction": r}
                la, ll = with_grad(low, positions)
                ra, rl = with_grad(ref, positions)
                out = call(target, la, s.kwargs, sample=s.name, **extra)
                want = call(target, ra, s.kwargs, sample=s.name, **extra)
                what = f"the {short} result ({r or 'default'}){_label(s)}"
                if target.conventions and out.dtype != F32:
                    raise Fail(f"{what} is {str(out.dtype).replace('torch.', '')}, expected float32 "
                               f"(compute half inputs in float32)")
                representable = out.dtype != dtype or bool((want.detach().abs() <= limit).all())
                if representable:
                    _expect(nonfinite(out, what))
                    _expect(_close_low(out, want, f"{what} vs float32 on the rounded inputs", dtype,
                                       target.conventions))
                if r == "none" or not positions or not representable:
                    continue
                got_g = grads(out, ll, what)
                want_g = grads(want, rl, "the float32 result")
                for g, w, leaf, name in zip(got_g, want_g, ll, names):
                    if g.dtype != leaf.dtype:
                        raise Fail(f"the gradient w.r.t. {name} of {what} is {g.dtype}, expected {leaf.dtype}")
                    _expect(nonfinite(g, f"the {short} gradient{_label(s)}", name))
                    gwhat = f"the {short} gradient w.r.t. {name}{_label(s)} vs float32"
                    if target.conventions:
                        _expect(mismatch(g, w, gwhat, **tol["grad"]))
                    else:
                        rtol = low_precision_compute_tolerance(dtype)
                        _expect(mismatch(g, w, gwhat, rtol=rtol, atol=rtol * float(w.abs().max())))
    shown = " and ".join(str(d).replace("torch.", "") for d in dtypes)
    if not target.conventions:
        return f"{shown} on {len(cases)} samples: finite, close to float32 on the rounded inputs"
    return f"{shown} on {len(cases)} samples: float32 result within rtol " \
           f"{low_precision_tolerance(torch.float16)['value']['rtol']:g}, gradients in the input dtype"


@_register("module_equals_function")
def check_module_equals_function(target: CheckTarget, device: torch.device) -> str:
    """[U7] ``Module(**hparams, reduction=r)(*args, sample_weight=, mask=)`` equals the function:
    values and gradients."""
    if target.module_factory is None:
        raise Skip("the loss has no module form")
    tol = tolerance(F64)
    ss = samples(target, F64, device)
    cases: list[tuple[Sample, dict[str, Any]]] = [(s, {}) for s in ss]
    plain = next((s for s in ss if s.plain), None)
    extras: dict[str, Any] = {}
    if plain is not None and target.accepts_reduction:
        shape = call(target, plain.args, plain.kwargs, sample=plain.name, reduction="none").shape
        if target.accepts_sample_weight:
            extras["sample_weight"] = rand(*shape, gen=generator(13), dtype=F64, device=device, low=0.25, high=2.0)
        if target.accepts_mask:
            extras["mask"] = random_mask(shape, device, seed=4)
        if extras:
            cases.append((plain, extras))
    reductions: tuple[str | None, ...] = REDUCTIONS if target.accepts_reduction else (None,)
    for s, extra in cases:
        positions = diff_positions(target, s.args)
        names = _names(target, positions)
        for r in reductions:
            red = {} if r is None else {"reduction": r}
            fa, fl = with_grad(s.args, positions)
            ma, ml = with_grad(s.args, positions)
            f_out = call(target, fa, {**s.kwargs, **extra}, sample=s.name, **red)
            m_sample = Sample(ma, {**s.kwargs, **extra}, name=s.name, plain=s.plain)
            _, m_args, m_out = call_module(target, m_sample, device, **red)
            what = f"module(reduction={r!r}){_label(s)}" + (f" with {', '.join(extra)}" if extra else "")
            _expect(mismatch(m_out, f_out, what, **tol))
            # gradients w.r.t. the inputs the module is called with (it may own others, as parameters)
            shared = [k for k, leaf in enumerate(ml) if any(a is leaf for a in m_args)]
            if shared and f_out.numel():
                gm = grads(m_out, [ml[k] for k in shared], what)
                gf = grads(f_out, [fl[k] for k in shared], "the function")
                for a, b, k in zip(gm, gf, shared):
                    _expect(mismatch(a, b, f"the gradient w.r.t. {names[k]} of {what}", **tol))
    return f"values and gradients equal on {len(cases)} cases x {len(reductions)} reductions"


@_register("batch_additivity")
def check_batch_additivity(target: CheckTarget, device: torch.device) -> str:
    """[U10] ``loss(a ++ b, "sum") == loss(a, "sum") + loss(b, "sum")``; ``none`` concatenates (separable losses)."""
    if not target.separable:
        raise Skip("the loss is declared non-separable (its value couples the batch)")
    tol = tolerance(F64)
    s = plain_sample(target, F64, device)
    n, batch = batch_positions(s.args, target.batch_dim)
    if n < 2:
        raise Skip(f"the plain sample's batch has {n} entries")
    if not target.accepts_reduction:
        return _additivity_by_default(target, s, n, batch)
    k = n // 2
    head = take(s.args, batch, slice(0, k), target.batch_dim)
    tail = take(s.args, batch, slice(k, n), target.batch_dim)
    whole = call(target, s.args, s.kwargs, sample=s.name, reduction="sum")
    a = call(target, head, s.kwargs, sample=f"first {k}", reduction="sum")
    b = call(target, tail, s.kwargs, sample=f"last {n - k}", reduction="sum")
    _expect(mismatch(a + b, whole, f"sum over [:{k}] + sum over [{k}:]{_label(s)} (vs sum over all {n})", **tol))
    none = call(target, s.args, s.kwargs, sample=s.name, reduction="none")
    detail = f"sum over {n} == sum over {k} + sum over {n - k}"
    if none.dim() >= 1 and none.shape[0] == n:
        na = call(target, head, s.kwargs, reduction="none")
        nb = call(target, tail, s.kwargs, reduction="none")
        _expect(mismatch(torch.cat([na, nb]), none, f"none of the two halves concatenated{_label(s)}", **tol))
        detail += "; none concatenates"
    return detail


def _additivity_by_default(target: CheckTarget, s: Sample, n: int, batch: list[int]) -> str:
    """Batch-split additivity of a loss without a ``reduction`` keyword: its value on the batch is the
    sum of its values on two halves, or their size-weighted mean."""
    k = n // 2
    whole = call(target, s.args, s.kwargs, sample=s.name)
    a = call(target, take(s.args, batch, slice(0, k), target.batch_dim), s.kwargs, sample=f"first {k}")
    b = call(target, take(s.args, batch, slice(k, n), target.batch_dim), s.kwargs, sample=f"last {n - k}")
    if whole.dim() != 0 or a.dim() != 0 or b.dim() != 0:
        raise Skip(f"the loss returns shape {tuple(whole.shape)}, not a scalar, and takes no reduction keyword")
    tol = tolerance(F64)
    if mismatch(a + b, whole, "sum", **tol) is None:
        return f"the loss over {n} equals the sum of the losses over {k} and {n - k} (a sum over samples)"
    weighted = (k * a + (n - k) * b) / n
    if mismatch(weighted, whole, "mean", **tol) is None:
        return f"the loss over {n} equals the size-weighted mean of the losses over {k} and {n - k} " \
               f"(a mean over samples)"
    raise Fail(f"the loss over {n} samples is {whole.item():.6g}, over [:{k}] {a.item():.6g} and over [{k}:] "
               f"{b.item():.6g}: neither their sum ({(a + b).item():.6g}) nor their size-weighted mean "
               f"({weighted.item():.6g}); a wrong normaliser or batch coupling in a loss that claims to be separable")


@_register("permutation")
def check_permutation(target: CheckTarget, device: torch.device) -> str:
    """[U11] Permuting the batch leaves ``sum`` and ``mean`` unchanged and permutes ``none`` (separable losses)."""
    if not target.separable:
        raise Skip("the loss is declared non-separable (its value couples the batch)")
    tol = tolerance(F64)
    s = plain_sample(target, F64, device)
    n, batch = batch_positions(s.args, target.batch_dim)
    if n < 2:
        raise Skip(f"the plain sample's batch has {n} entries")
    perm = torch.randperm(n, generator=generator(6))
    if bool((perm == torch.arange(n)).all()):
        perm = perm.flip(0)
    perm = perm.to(device)
    shuffled = take(s.args, batch, perm, target.batch_dim)
    if not target.accepts_reduction:
        ref = call(target, s.args, s.kwargs, sample=s.name)
        got = call(target, shuffled, s.kwargs, sample="permuted")
        _expect(mismatch(got, ref, f"the loss on the permuted batch{_label(s)}", **tol))
        return f"the loss is unchanged by a permutation of {n}"
    for r in ("sum", "mean"):
        ref = call(target, s.args, s.kwargs, sample=s.name, reduction=r)
        got = call(target, shuffled, s.kwargs, sample="permuted", reduction=r)
        _expect(mismatch(got, ref, f"{r} of the permuted batch{_label(s)}", **tol))
    none = call(target, s.args, s.kwargs, sample=s.name, reduction="none")
    detail = f"sum and mean unchanged by a permutation of {n}"
    if none.dim() >= 1 and none.shape[0] == n:
        got = call(target, shuffled, s.kwargs, sample="permuted", reduction="none")
        _expect(mismatch(got, none[perm], f"none of the permuted batch{_label(s)} (vs none permuted)", **tol))
        detail += "; none permuted alike"
    return detail


def _changed(before: Any, after: Any, label: str) -> str | None:
    if isinstance(before, Tensor):
        if not isinstance(after, Tensor) or before.shape != after.shape or before.dtype != after.dtype:
            return f"{label} changed shape or dtype"
        if not same_bits(before, after.detach()):
            diff = before != after.detach()
            if before.is_floating_point():
                diff = diff & ~(torch.isnan(before) & torch.isnan(after.detach()))
            first = diff.nonzero()[0].tolist() if before.dim() else []
            return f"{label} was modified in place at {int(diff.sum())} of {before.numel()} positions, " \
                   f"first at {label}{fmt_index(first)}"
        return None
    if isinstance(before, (list, tuple)):
        for i, (b, a) in enumerate(zip(before, after)):
            found = _changed(b, a, f"{label}[{i}]")
            if found:
                return found
    if isinstance(before, dict):
        for k, b in before.items():
            found = _changed(b, after.get(k), f"{label} {k!r}")
            if found:
                return found
    return None


@_register("no_mutation")
def check_no_mutation(target: CheckTarget, device: torch.device) -> str:
    """[U16] Inputs, targets, keyword tensors and the module's state are unchanged by forward and backward."""
    ss = samples(target, F32, device)
    for s in ss:
        snapshot = clone_tree((s.args, s.kwargs))
        call(target, s.args, s.kwargs, sample=s.name)
        for k, (b, a) in enumerate(zip(snapshot[0], s.args)):
            _expect(_changed(b, a, target.arg_name(k)))
        _expect(_changed(snapshot[1], s.kwargs, "kwargs"))
        positions = diff_positions(target, s.args)
        for i in positions:
            s.args[i].requires_grad_(True)
        out = call(target, s.args, s.kwargs, sample=s.name)
        grads(out, [s.args[i] for i in positions], f"the loss{_label(s)}")
        for k, (b, a) in enumerate(zip(snapshot[0], s.args)):
            _expect(_changed(b, a, target.arg_name(k)))
        _expect(_changed(snapshot[1], s.kwargs, "kwargs"))
        if target.module_factory is not None:
            detached = tuple(a.detach() if isinstance(a, Tensor) else a for a in s.args)
            module, m_args, m_kwargs = build_module(target, Sample(detached, s.kwargs, name=s.name), device)
            state = clone_tree(dict(module.state_dict()))
            call_checked(module, m_args, m_kwargs, f"the module{_label(s)}")
            _expect(_changed(state, dict(module.state_dict()), "module state"))
    return f"inputs and keyword tensors unchanged by forward and backward on {len(ss)} samples"


@_register("determinism")
def check_determinism(target: CheckTarget, device: torch.device) -> str:
    """[U20] Two runs on the same inputs give bitwise-equal values and gradients."""
    ss = samples(target, F32, device)
    for s in ss:
        positions = diff_positions(target, s.args)
        names = _names(target, positions)
        for r in ("none", "mean") if target.accepts_reduction else (None,):
            extra = {} if r is None else {"reduction": r}
            runs = []
            for _ in range(2):
                args, leaves = with_grad(s.args, positions)
                out = call(target, args, s.kwargs, sample=s.name, **extra)
                gs = grads(out, leaves, "the loss") if out.numel() else []
                runs.append((out, gs))
            (o1, g1), (o2, g2) = runs
            what = f"{r or 'the loss'}{_label(s)}"
            if not same_bits(o1, o2):
                raise Fail("two runs differ: " + (mismatch(o2, o1, what, rtol=0.0, atol=0.0) or what))
            for a, b, name in zip(g1, g2, names):
                if not same_bits(a, b):
                    raise Fail("two runs differ: " + (mismatch(b, a, f"the gradient of {what} w.r.t. {name}",
                                                               rtol=0.0, atol=0.0) or name))
    return f"bitwise equal values and gradients over two runs on {len(ss)} samples"


@_register("state_dict")
def check_state_dict(target: CheckTarget, device: torch.device) -> str:
    """[U21] ``state_dict`` through ``torch.save``/``torch.load`` into a fresh module gives the same output
    (parameters and float buffers are perturbed first, so a missing entry shows)."""
    if target.instance is not None:
        return _instance_state_dict(target, target.instance, device)
    if target.module_factory is None:
        raise Skip("the loss has no module form")
    ss = samples(target, F32, device)
    entries = 0
    g = generator(8)
    for s in ss:
        module, m_args, m_kwargs = build_module(target, s, device)
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                if t.is_floating_point():
                    t.mul_(1 + 0.05 * torch.rand(t.shape, generator=g).to(t))
        try:
            before = module(*m_args, **m_kwargs)
        except Exception:  # the perturbed state is invalid for this loss: check the state as built
            module, m_args, m_kwargs = build_module(target, s, device)
            before = call_checked(module, m_args, m_kwargs, f"the module{_label(s)}")
        state = module.state_dict()
        entries += len(state)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        fresh, f_args, f_kwargs = build_module(target, s, device)
        try:
            fresh.load_state_dict(torch.load(buffer, weights_only=True))
        except Exception as exc:
            raise Fail(f"reloading the state{_label(s)} raised {exc_text(exc)}") from None
        after = call_checked(fresh, f_args, f_kwargs, f"the reloaded module{_label(s)}")
        _expect(mismatch(after, before, f"the reloaded module's output{_label(s)}", rtol=0.0, atol=0.0))
    return f"{entries} state entries over {len(ss)} samples survive torch.save/torch.load; outputs equal"


def _instance_state_dict(target: CheckTarget, module: nn.Module, device: torch.device) -> str:
    """A user's module: a perturbed copy's ``state_dict`` through ``torch.save``/``torch.load`` into another
    copy gives the perturbed copy's output."""
    import copy

    if not [*module.parameters(), *module.buffers()]:
        raise Skip("the module has no parameters or buffers")
    ss = samples(target, F32, device)
    g = generator(8)
    changed = copy.deepcopy(module).to(device)
    with torch.no_grad():
        for t in [*changed.parameters(), *changed.buffers()]:
            if t.is_floating_point():
                t.mul_(1 + 0.05 * torch.rand(t.shape, generator=g).to(t))
    state = changed.state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    fresh = copy.deepcopy(module).to(device)
    try:
        fresh.load_state_dict(torch.load(buffer, weights_only=True))
    except Exception as exc:
        raise Fail(f"reloading the state raised {exc_text(exc)}") from None
    shape = target.unit_shape or (lambda args: tuple(args[0].shape[:1]))
    for s in ss:
        before_fn = UserLoss(changed, name=target.name, mask_shape=shape)
        try:
            before = before_fn(*s.args, **s.kwargs)
        except Exception:  # the perturbed state is invalid for this loss: check the state as built
            changed, fresh = copy.deepcopy(module).to(device), copy.deepcopy(module).to(device)
            fresh.load_state_dict(changed.state_dict())
            before_fn = UserLoss(changed, name=target.name, mask_shape=shape)
            before = call_checked(before_fn, s.args, s.kwargs, f"the module{_label(s)}")
        after = call_checked(UserLoss(fresh, name=target.name, mask_shape=shape), s.args, s.kwargs,
                             f"the reloaded module{_label(s)}")
        _expect(mismatch(after, before, f"the reloaded module's output{_label(s)}", rtol=0.0, atol=0.0))
    return f"{len(state)} state entries survive torch.save/torch.load; outputs equal on {len(ss)} samples"


@_register("no_grad")
def check_no_grad(target: CheckTarget, device: torch.device) -> str:
    """[U15] Works under ``torch.no_grad()`` and ``torch.inference_mode()`` (no ``grad_fn``, same value)
    and on inputs that do not require grad."""
    tol = tolerance(F32)
    s = plain_sample(target, F32, device)
    positions = diff_positions(target, s.args)
    args, _ = with_grad(s.args, positions)
    ref = call(target, args, s.kwargs, sample=s.name)
    for label, ctx in (("torch.no_grad()", torch.no_grad), ("torch.inference_mode()", torch.inference_mode)):
        with ctx():
            out = call(target, args, s.kwargs, sample=s.name)
        if out.requires_grad or out.grad_fn is not None:
            raise Fail(f"under {label} the result requires grad")
        _expect(mismatch(out, ref, f"the result under {label}", **tol))
    plain = call(target, s.args, s.kwargs, sample=s.name)
    trainable = target.instance is not None and any(p.requires_grad for p in target.instance.parameters())
    if plain.requires_grad and not trainable:
        raise Fail("the result requires grad although no input does")
    _expect(mismatch(plain, ref, "the result on inputs without grad", **tol))
    if target.module_factory is not None:
        with torch.no_grad():
            _, _, out = call_module(target, Sample(args, s.kwargs, name=s.name), device)
        _expect(mismatch(out, ref, "the module's result under torch.no_grad()", **tol))
    return "same value under no_grad and inference_mode, no grad_fn"


@_register("error_inputs")
def check_error_inputs(target: CheckTarget, device: torch.device) -> str:
    """Every error input raises its exception type with a message matching its regex
    (``at_construction`` ones through the module)."""
    errors = _error_inputs(target)
    if not errors:
        raise Skip("the loss declares no error inputs")
    problems: list[str] = []
    ran = 0
    for k, e in enumerate(errors):
        shown = _describe_args(e.args) + (f"; {describe_kwargs(e.kwargs)}" if e.kwargs else "")
        label = f"error input {k} ({shown})"
        factory = target.module_factory
        if e.at_construction:
            if factory is None:
                continue
            label = f"error input {k} (module({describe_kwargs(e.kwargs)}))"
        ran += 1
        try:
            if e.at_construction and factory is not None:
                factory(**e.kwargs)
            else:
                target.function(*e.args, **e.kwargs)
        except Exception as exc:
            if not isinstance(exc, e.exc_type):
                problems.append(f"{label} raised {exc_text(exc)}, expected {e.exc_type.__name__}")
            elif not re.search(e.match, str(exc)):
                problems.append(f"{label}: message {str(exc)[:160]!r} does not match {e.match!r}")
        else:
            problems.append(f"{label} did not raise {e.exc_type.__name__}")
    if problems:
        raise Fail(f"{len(problems)} of {len(errors)} error inputs wrong: " + "; ".join(problems[:3])
                   + ("; ..." if len(problems) > 3 else ""))
    if ran == 0:
        raise Skip("every error input is at construction and the loss has no module form")
    return f"{ran} error inputs raise the declared type and message"


@_register("compile", slow=True, validate=False)
def check_compile(target: CheckTarget, device: torch.device, backend: str = "aot_eager") -> str:
    """[U17] ``torch.compile(fullgraph=True)`` equals eager on the plain sample (value and gradients), and an
    invalid reduction or hyper-parameter still raises under compile.

    The default backend, ``"aot_eager"``, traces the whole graph through Dynamo and AOTAutograd (graph
    breaks, functionalisation, validation bypassed by tracing) without generating kernels, so it costs
    about a second; pass ``backend="inductor"`` for the full pipeline.
    """
    import torch._dynamo

    torch._dynamo.reset()
    try:
        return _compile_body(target, device, backend)
    finally:
        torch._dynamo.reset()


def _raises(target: CheckTarget, e: ErrorSample) -> bool:
    """Whether eager raises ``e`` as declared (in the current validation mode)."""
    try:
        target.function(*e.args, **e.kwargs)
    except Exception as exc:
        return isinstance(exc, e.exc_type) and re.search(e.match, str(exc)) is not None
    return False


def _compile_body(target: CheckTarget, device: torch.device, backend: str) -> str:
    s = plain_sample(target, F32, device)
    positions = diff_positions(target, s.args)
    names = _names(target, positions)
    red = _red(target, "mean")
    ea, el = with_grad(s.args, positions)
    eager = call(target, ea, s.kwargs, sample=s.name, **red)
    eg = grads(eager, el, "the eager result") if positions else []
    compiled = torch.compile(target.function, fullgraph=True, backend=backend)
    ca, cl = with_grad(s.args, positions)
    try:
        out = compiled(*ca, **s.kwargs, **red)
        cg = grads(out, cl, "the compiled result") if positions else []
    except Fail:
        raise
    except Exception as exc:
        raise Fail(f"torch.compile(fullgraph=True, backend={backend!r}){_label(s)} raised {exc_text(exc)}") from None
    rtol, atol = COMPILE
    _expect(mismatch(out, eager, f"the compiled result{_label(s)} (vs eager)", rtol=rtol, atol=atol))
    for a, b, name in zip(cg, eg, names):
        _expect(mismatch(a, b, f"the compiled gradient w.r.t. {name} (vs eager)", rtol=rtol, atol=atol))
    # Invalid hyper-parameters that eager refuses without validation mode (pure Python checks) must
    # still be refused under compile, where a check inside a traced tensor expression can vanish.
    # Each refusal costs a trace (about a second), so the reduction and the first two hyper-parameter
    # errors are tried; bad tensors, whose checks are metadata, are left to eager.
    bad: list[tuple[str, Sequence[Any], dict[str, Any], type[BaseException], str]] = []
    if target.accepts_reduction and target.conventions:
        bad.append(("reduction='avg'", s.args, {**s.kwargs, "reduction": "avg"}, ValueError, r"Did you mean 'mean'"))
    elif target.accepts_reduction:
        avg = ErrorSample(tuple(s.args), {**s.kwargs, "reduction": "avg"}, Exception, "")
        if _raises(target, avg):
            bad.append(("reduction='avg'", s.args, avg.kwargs, Exception, ""))
    for e in _error_inputs(target):
        hyper = bool(e.kwargs) and not any(isinstance(v, Tensor) for v in e.kwargs.values())
        if hyper and not e.at_construction and all(isinstance(a, Tensor) for a in e.args) and _raises(target, e):
            bad.append((describe_kwargs(e.kwargs), e.args, e.kwargs, e.exc_type, e.match))
            if len(bad) == COMPILE_ERRORS:
                break
    loose = torch.compile(target.function, backend=backend)
    for label, args, kwargs, exc_type, pattern in bad:
        try:
            loose(*args, **kwargs)
        except Exception as exc:
            if not isinstance(exc, exc_type) or not re.search(pattern, str(exc)):
                raise Fail(f"under torch.compile, {label} raised {exc_text(exc)}, expected {exc_type.__name__} "
                           f"matching {pattern!r}") from None
        else:
            raise Fail(f"under torch.compile, {label} was accepted (expected {exc_type.__name__})")
    return f"fullgraph {backend} equals eager; {len(bad)} invalid arguments still raise under compile"


# --------------------------------------------------------------------------------------------- running


def run_checks(target: CheckTarget | LossSpec, names: Sequence[str] | None = None, *,
               device: str | torch.device = "cpu") -> list[CheckResult]:
    """Run checks on one loss and return their results, in order.

    Args:
        target: A :class:`CheckTarget` or a registry :class:`~lossforge.LossSpec`.
        names: Check names (keys of :data:`CHECKS` or :data:`CHECKS_SLOW`); default: every
            check of :data:`CHECKS` (the slow ones are opt-in).
        device: Where the inputs live.

    Raises:
        ValueError: For an unknown check name.
    """
    if isinstance(target, LossSpec):
        target = CheckTarget.from_spec(target)
    every = {**CHECKS, **CHECKS_SLOW}
    chosen = list(CHECKS) if names is None else list(names)
    for name in chosen:
        if name not in every:
            raise ValueError(f"run_checks: names must be check names, got {name!r}." + did_you_mean(name, every)
                             + f" Hint: the checks are {', '.join(every)}.")
    return [every[name](target, device=device) for name in chosen]
