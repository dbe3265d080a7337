"""The verifier: the checks every lossforge loss passes, for the test suite and ``lossforge check``.

:func:`check` runs them on any loss (a registered name, a lossforge function or module, your own
function or ``nn.Module``) and returns a :class:`CheckReport`. Underneath, ``run_checks(target)``
runs every check of :data:`CHECKS` on a :class:`CheckTarget` (``CheckTarget.from_spec(spec)`` for a
registered loss, ``CheckTarget.from_callable(fn, task="classification")`` for any other) and returns
one :class:`CheckResult` per check: the universal battery, then the family battery of the loss's task
(:data:`FAMILY_CHECKS`); the slow ones (:data:`CHECKS_SLOW`, ``torch.compile``) are opt-in by name.
A check never raises for a failing loss: the failure is its result.

Examples:
    >>> import lossforge as lf
    >>> from lossforge.verify import CheckTarget, run_checks
    >>> target = CheckTarget.from_spec(lf.get_loss("mse"))
    >>> for result in run_checks(target, ["reductions", "all_ignored"]):
    ...     print(result.name, result.status)
    reductions passed
    all_ignored skipped
"""

from ._checks import (
    CHECKS,
    CHECKS_SLOW,
    Check,
    check_all_ignored,
    check_all_masked,
    check_batch_additivity,
    check_compile,
    check_determinism,
    check_docstring,
    check_empty_batch,
    check_error_inputs,
    check_extreme_inputs,
    check_gradcheck,
    check_invalid_reduction,
    check_low_precision,
    check_mask_subset,
    check_masked_garbage,
    check_module_equals_function,
    check_no_grad,
    check_no_mutation,
    check_permutation,
    check_reductions,
    check_signature,
    check_state_dict,
    check_weights,
    run_checks,
)
from ._family import (
    FAMILY_CHECKS,
    check_constant_images,
    check_degenerate_boxes,
    check_degenerate_labels,
    check_empty_target,
    check_extreme_logits,
    check_gamma_zero,
    check_ignore_index,
    check_k_dim,
    check_perfect_prediction,
    check_zero_distance,
    check_zero_probabilities,
)
from ._inputs import TASKS, Task, get_task
from ._report import CheckReport, check
from ._target import CheckResult, CheckTarget, Status
from ._tolerances import low_precision_tolerance, tolerance
from ._universal import (
    check_autocast,
    check_broadcast,
    check_cuda,
    check_float32_vs_float64,
    check_non_contiguous,
    check_nonfinite_inputs,
    check_reduction_honoured,
    check_unbatched,
)

#: The order checks run and are reported in: lossforge's conventions, the universal battery, the family batteries.
_ORDER = (
    "signature", "docstring", "broadcast", "reductions", "reduction_honoured", "invalid_reduction", "mask_subset",
    "weights", "empty_batch", "all_ignored", "all_masked", "masked_garbage", "gradcheck", "float32_vs_float64",
    "extreme_inputs", "nonfinite_inputs", "low_precision", "autocast", "module_equals_function",
    "batch_additivity", "permutation", "unbatched", "non_contiguous", "no_mutation", "determinism", "state_dict",
    "no_grad", "error_inputs", "cuda",
)


def _order_checks() -> None:
    ordered = {name: CHECKS[name] for name in _ORDER if name in CHECKS}
    ordered.update({name: c for name, c in CHECKS.items() if name not in ordered and name not in FAMILY_CHECKS})
    ordered.update({name: CHECKS[name] for name in FAMILY_CHECKS})
    CHECKS.clear()
    CHECKS.update(ordered)


_order_checks()

__all__ = [
    "CHECKS",
    "CHECKS_SLOW",
    "FAMILY_CHECKS",
    "TASKS",
    "Check",
    "CheckReport",
    "CheckResult",
    "CheckTarget",
    "Status",
    "Task",
    "check",
    "check_autocast",
    "check_broadcast",
    "check_constant_images",
    "check_cuda",
    "check_degenerate_boxes",
    "check_degenerate_labels",
    "check_empty_target",
    "check_extreme_logits",
    "check_float32_vs_float64",
    "check_gamma_zero",
    "check_ignore_index",
    "check_k_dim",
    "check_non_contiguous",
    "check_nonfinite_inputs",
    "check_perfect_prediction",
    "check_reduction_honoured",
    "check_unbatched",
    "check_zero_distance",
    "check_zero_probabilities",
    "get_task",
    "check_all_ignored",
    "check_all_masked",
    "check_batch_additivity",
    "check_compile",
    "check_determinism",
    "check_docstring",
    "check_empty_batch",
    "check_error_inputs",
    "check_extreme_inputs",
    "check_gradcheck",
    "check_invalid_reduction",
    "check_low_precision",
    "check_mask_subset",
    "check_masked_garbage",
    "check_module_equals_function",
    "check_no_grad",
    "check_no_mutation",
    "check_permutation",
    "check_reductions",
    "check_signature",
    "check_state_dict",
    "check_weights",
    "low_precision_tolerance",
    "run_checks",
    "tolerance",
]
