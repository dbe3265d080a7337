"""``lossforge.check``: run every check on any loss and return a :class:`CheckReport`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ._checks import CHECKS, CHECKS_SLOW, run_checks
from ._target import CheckResult, CheckTarget

__all__ = ["CheckReport", "check", "parse_dtypes"]

_NOT_THIS_TASK = "applies to "


@dataclass
class CheckReport:
    """The results of :func:`check` on one loss: every check, passed, failed or skipped, with its reason.

    Iterating gives the :class:`CheckResult` objects in order; ``report["broadcast"]`` picks one by name.

    Attributes:
        loss: The loss's name.
        task: The task whose family battery ran (``None``: the universal battery only).
        results: One result per check, in order.
        seconds: How long the checks took.
    """

    loss: str
    task: str | None
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no check failed (skips are not failures)."""
        return all(r.ok for r in self.results)

    @property
    def passed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "passed"]

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def skipped(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "skipped"]

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, key: int | str) -> CheckResult:
        if isinstance(key, int):
            return self.results[key]
        for r in self.results:
            if r.name == key:
                return r
        raise KeyError(f"CheckReport: no check named {key!r}; the checks are {', '.join(r.name for r in self)}")

    def summary(self) -> str:
        """``"21 passed, 1 failed, 12 skipped"``."""
        return f"{len(self.passed)} passed, {len(self.failed)} failed, {len(self.skipped)} skipped"

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the loss, its task, the counts and every result."""
        return {
            "loss": self.loss, "task": self.task, "ok": self.ok,
            "passed": len(self.passed), "failed": len(self.failed), "skipped": len(self.skipped),
            "seconds": round(self.seconds, 3),
            "results": [{"name": r.name, "status": r.status, "detail": r.detail} for r in self.results],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def table(self, *, width: int | None = None) -> str:
        """The results as a table (checks of other tasks' batteries folded into one line), without the
        summary line."""
        shown = [r for r in self.results if not (r.status == "skipped" and r.detail.startswith(_NOT_THIS_TASK))]
        folded = len(self.results) - len(shown)
        name_w = max([len("check"), *(len(r.name) for r in shown)])
        status_w = len("skipped")
        lines = [f"  {'check':<{name_w}}  {'result':<{status_w}}  detail"]
        for r in shown:
            status = "FAILED" if r.status == "failed" else r.status
            detail = r.detail
            if width is not None:
                room = max(20, width - name_w - status_w - 6)
                if len(detail) > room:
                    detail = detail[: room - 3] + "..."
            lines.append(f"  {r.name:<{name_w}}  {status:<{status_w}}  {detail}".rstrip())
        if folded:
            lines.append(f"  ({folded} checks of other tasks' batteries skipped)")
        return "\n".join(lines)

    def __str__(self) -> str:
        task = f"task {self.task}" if self.task else "no task: the universal battery only"
        head = f"{self.loss} ({task}; {len(self.results)} checks in {self.seconds:.1f} s)"
        return f"{head}\n{self.table()}\n{self.summary()}"


_DTYPE_NAMES = {
    "float16": torch.float16, "half": torch.float16, "fp16": torch.float16, "f16": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


def parse_dtypes(dtypes: Sequence[torch.dtype | str] | None) -> tuple[torch.dtype, ...] | None:
    """The low-precision dtypes among ``dtypes`` (``torch.float16`` or ``"bf16"``); float32 and float64
    are always checked and are dropped here.

    Raises:
        ValueError: For a name or dtype that is not a floating-point dtype.
    """
    if dtypes is None:
        return None
    out: list[torch.dtype] = []
    for d in dtypes:
        if isinstance(d, str):
            key = d.lower().replace("torch.", "")
            if key in ("float32", "float", "fp32", "float64", "double", "fp64"):
                continue
            if key not in _DTYPE_NAMES:
                raise ValueError(f"check: dtypes must be float16 or bfloat16 (float32 and float64 are always "
                                 f"checked), got {d!r}.")
            d = _DTYPE_NAMES[key]
        if not isinstance(d, torch.dtype) or not d.is_floating_point:
            raise ValueError(f"check: dtypes must be floating-point torch dtypes, got {d!r}.")
        if d in (torch.float16, torch.bfloat16) and d not in out:
            out.append(d)
    return tuple(out)


def _fits(target: CheckTarget, device: str | torch.device) -> None:
    """A user's loss can be called with its inputs at all (else every check would fail the same way)."""
    if target.conventions or target.signature is None:
        return
    try:
        first = target.sample_inputs(torch.float32, device)[0]
    except Exception:
        return  # the checks report it
    try:
        target.signature.bind(*first.args, **first.kwargs)
    except TypeError as exc:
        shapes = ", ".join(str(tuple(a.shape)) if isinstance(a, torch.Tensor) else type(a).__name__
                           for a in first.args)
        where = f"the {target.task} task's inputs" if target.task else "the inputs"
        sig = target.signature
        bare = sig.replace(parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()],
                           return_annotation=sig.empty)
        raise ValueError(f"check: {target.name}{bare} cannot be called with {where} ({shapes}): "
                         f"{exc}. Hint: pass inputs= (its own positional tensors) or another task.") from None


def check(loss: Any, *, task: str | None = None, inputs: Any = None,
          dtypes: Sequence[torch.dtype | str] | None = None, compile: bool = False,
          checks: Sequence[str] | None = None, device: str | torch.device = "cpu",
          name: str | None = None, separable: bool | None = None) -> CheckReport:
    """Check a loss for the bugs that cost GPU weeks: silent broadcasting, NaN gradients at the edges,
    in-place changes to the inputs, reductions that are ignored or wrong, half-precision overflow, and more.

    Works on any loss: a registered name (``"focal"``), a lossforge function or module, or your own
    function or ``nn.Module``. Every check runs and reports; none raises for a failing loss.

    Args:
        loss: The loss. A class is instantiated with its defaults.
        task: ``"classification"``, ``"binary"``, ``"multilabel"``, ``"regression"``, ``"segmentation"``,
            ``"embedding"``, ``"boxes"``, ``"distribution"``, ``"image"`` or ``"ranking"``: generated inputs
            and the family battery. A registered loss has its own; your loss needs ``task`` or ``inputs``.
        inputs: Your loss's positional tensors (a tuple), or :class:`~lossforge.Sample` objects; with a
            ``task`` the family battery still runs on them.
        dtypes: The low-precision dtypes to compare with float32 (default float16 and bfloat16).
        compile: Also check ``torch.compile(fullgraph=True)`` (graph breaks, parity; seconds per loss).
        checks: Run only these checks (names of ``lossforge.verify.CHECKS``).
        device: Where the inputs live.
        name: How the report names the loss.
        separable: Whether the loss is a sum or mean of per-sample terms (default: the task's claim),
            which enables the batch-split and permutation checks.

    Returns:
        A :class:`CheckReport`: ``.ok``, iteration over results, ``.to_json()``, a readable ``str()``.

    Raises:
        ValueError: For an unknown task, registered name or check name, your loss without ``task``
            and ``inputs``, or a loss whose signature cannot take the task's inputs.
        TypeError: If ``loss`` is not callable.

    Examples:
        >>> import torch
        >>> from lossforge.verify import check
        >>> def my_mse(pred, target):
        ...     return ((pred - target) ** 2).mean()
        >>> report = check(my_mse, task="regression", checks=["broadcast", "gradcheck"])
        >>> report.ok, report["broadcast"].status, report["gradcheck"].status
        (False, 'failed', 'passed')
        >>> print(report["broadcast"].detail)  # doctest: +ELLIPSIS
        silent broadcasting: pred (8, 1) with target (8,) returned a value (...) instead of raising ...
        >>> print(report.summary())
        1 passed, 1 failed, 0 skipped
    """
    low = parse_dtypes(dtypes)
    if isinstance(loss, CheckTarget):
        target = loss
    else:
        target = CheckTarget.from_callable(loss, task=task, inputs=inputs, name=name, separable=separable,
                                           low_precision_dtypes=low)
    _fits(target, device)
    if checks is not None:
        names = list(checks)
    else:
        names = list(CHECKS) + (["compile"] if compile else [])
    if compile and "compile" not in names:
        names.append("compile")
    unknown = [n for n in names if n not in CHECKS and n not in CHECKS_SLOW]
    if unknown:  # run_checks says it with "did you mean"
        run_checks(target, unknown[:1], device=device)
    start = time.perf_counter()
    results = run_checks(target, names, device=device)
    return CheckReport(target.name, target.task, results, time.perf_counter() - start)
