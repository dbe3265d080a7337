"""The verifier: the checks every lossforge loss passes, for the test suite and ``lossforge check``.

``run_checks(target)`` runs every check of :data:`CHECKS` on a :class:`CheckTarget`
(``CheckTarget.from_spec(lossforge.get_loss("focal"))``) and returns one
:class:`CheckResult` per check; the slow ones (:data:`CHECKS_SLOW`, ``torch.compile``)
are opt-in by name. A check never raises for a failing loss: the failure is its result.

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
from ._target import CheckResult, CheckTarget, Status
from ._tolerances import low_precision_tolerance, tolerance

__all__ = [
    "CHECKS",
    "CHECKS_SLOW",
    "Check",
    "CheckResult",
    "CheckTarget",
    "Status",
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
