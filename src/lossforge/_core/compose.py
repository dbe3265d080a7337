"""Composition: ``a + 0.5 * b`` builds a :class:`WeightedSum` with per-term values.

Terms are flattened (a sum of sums is one sum), named after their registry keys
(suffixed ``_2``, ``_3`` on clashes), and must each return a scalar.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .activation import shared_activations
from .errors import message
from .registry import name_of

__all__ = ["Composable", "WeightedSum", "UncertaintyWeighting", "term_name"]

Term = nn.Module | Callable[..., Tensor]


def _coefficient(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise TypeError(message(where, "coefficient", "must be a finite float or int", repr(value),
                                hint="multiply a loss by a number, e.g. 0.5 * lf.FocalLoss()"))
    return float(value)


class Composable:
    """Operators shared by every lossforge loss module: ``+``, ``*`` and ``/`` by a number."""

    def __add__(self, other: Any) -> WeightedSum:
        return WeightedSum([(self, 1.0), (other, 1.0)])

    def __radd__(self, other: Any) -> Any:
        if isinstance(other, (int, float)) and other == 0:  # lets sum([...]) work
            return self
        return WeightedSum([(other, 1.0), (self, 1.0)])

    def __mul__(self, coefficient: Any) -> WeightedSum:
        return WeightedSum([(self, _coefficient(coefficient, "WeightedSum"))])

    __rmul__ = __mul__

    def __truediv__(self, divisor: Any) -> WeightedSum:
        d = _coefficient(divisor, "WeightedSum")
        if d == 0:
            raise ValueError("WeightedSum: divisor must be non-zero, got 0.")
        return WeightedSum([(self, 1.0 / d)])


def term_name(term: Term) -> str:
    """A term's name: its registry key, else its class or function name in snake case."""
    if isinstance(term, nn.Module):
        key = name_of(term) or getattr(type(term), "term_name", None)
        if key is not None:
            return key
        raw = type(term).__name__
    else:
        raw = getattr(term, "__name__", type(term).__name__)
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", raw).lower()
    return re.sub(r"_?loss$", "", snake) or "term"


class _FunctionTerm(nn.Module):
    """Wraps a plain callable so it can sit in a ``ModuleDict``."""

    def __init__(self, fn: Callable[..., Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.fn(*args, **kwargs)

    def extra_repr(self) -> str:
        return getattr(self.fn, "__name__", repr(self.fn))


class WeightedSum(Composable, nn.Module):
    """A weighted sum of losses, built by ``+`` and ``*`` (or :func:`lossforge.build`).

    Calling it returns the total; :meth:`terms` returns every term's value and
    ``"total"`` from one forward pass, for logging. Keyword arguments given at call
    time (``sample_weight``, ``mask``, ...) are passed to every term.

    Examples:
        >>> import torch, lossforge as lf
        >>> criterion = lf.L1Loss() + 0.5 * lf.MSELoss()
        >>> pred, target = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])
        >>> {k: round(float(v), 4) for k, v in criterion.terms(pred, target).items()}
        {'l1': 1.5, 'mse': 2.5, 'total': 2.75}
        >>> criterion.set_coefficient("mse", 0.0)
        >>> float(criterion(pred, target))
        1.5
    """

    def __init__(self, terms: Iterable[tuple[Any, float]] | Mapping[str, tuple[Any, float]]) -> None:
        super().__init__()
        self.losses = nn.ModuleDict()
        self._coefficients: dict[str, float] = {}
        items = terms.items() if isinstance(terms, Mapping) else ((None, t) for t in terms)
        for given_name, (term, coef) in items:
            self._add(term, _coefficient(coef, "WeightedSum"), given_name)
        if not self._coefficients:
            raise ValueError("WeightedSum: terms must not be empty, got 0 terms.")

    def _add(self, term: Any, coef: float, given_name: str | None) -> None:
        if isinstance(term, WeightedSum):
            for name, sub in term.losses.items():
                self._add(sub, coef * term._coefficients[name], None)
            return
        if not isinstance(term, nn.Module):
            if not callable(term):
                raise TypeError(message("WeightedSum", "term", "must be a loss module or callable",
                                        type(term).__name__))
            term = _FunctionTerm(term)
        if getattr(term, "reduction", "mean") == "none":
            raise ValueError(
                message("WeightedSum", f"term {term_name(term)!r}", "must reduce to a scalar",
                        "reduction='none'", hint="use reduction='mean' or 'sum' for every term")
            )
        base = given_name or term_name(term.fn if isinstance(term, _FunctionTerm) else term)
        name, k = base, 2
        while name in self.losses:
            name, k = f"{base}_{k}", k + 1
        self.losses[name] = term
        self._coefficients[name] = coef

    @property
    def coefficients(self) -> dict[str, float]:
        """A copy of ``{term name: coefficient}``; change one with :meth:`set_coefficient`."""
        return dict(self._coefficients)

    def set_coefficient(self, name: str, value: float) -> None:
        """Change one term's coefficient (for schedules during training)."""
        if name not in self._coefficients:
            from .errors import did_you_mean

            raise ValueError(message("WeightedSum", "name", f"must be one of {tuple(self._coefficients)}",
                                     repr(name)) + did_you_mean(name, self._coefficients))
        self._coefficients[name] = _coefficient(value, "WeightedSum")

    def __getitem__(self, name: str) -> nn.Module:
        return self.losses[name]

    def __len__(self) -> int:
        return len(self.losses)

    def terms(self, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        """Every term's (unweighted) value and ``"total"``, from one forward pass."""
        values: dict[str, Tensor] = {}
        total: Tensor | None = None
        with shared_activations():  # terms reading the same logits share one softmax pass
            for name, term in self.losses.items():
                values[name] = term(*args, **kwargs)
        for name, value in values.items():
            if value.dim() != 0:
                raise ValueError(message("WeightedSum", f"term {name!r}", "must return a scalar",
                                         f"shape {tuple(value.shape)}"))
            coef = self._coefficients[name]
            if coef != 0.0:
                contribution = value if coef == 1.0 else coef * value
                total = contribution if total is None else total + contribution
        if total is None:  # every coefficient is zero: keep the graph
            first = next(iter(values.values()))
            total = first * 0.0
        values["total"] = total
        return values

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        return self.terms(*args, **kwargs)["total"]

    def extra_repr(self) -> str:
        return " + ".join(f"{c:g}*{n}" for n, c in self._coefficients.items())


class UncertaintyWeighting(nn.Module):
    r"""Learnable multi-task weights by homoscedastic uncertainty.

    Each task ``i`` has a learnable ``s_i = log(sigma_i^2)``; its loss ``L_i`` enters as

    .. math::
        \text{regression: } \tfrac12 e^{-s_i} L_i + \tfrac12 s_i, \qquad
        \text{classification: } e^{-s_i} L_i + \tfrac12 s_i .

    Args:
        tasks: Number of tasks, or their names.
        kinds: ``"regression"`` or ``"classification"`` per task (default: all regression).
        init_log_var: Initial ``s_i``.

    Call it with one scalar loss per task (positionally, or as keywords when the
    tasks are named); :meth:`terms` returns each weighted term and ``"total"``.

    References:
        Kendall, Gal and Cipolla, *Multi-Task Learning Using Uncertainty to Weigh
        Losses for Scene Geometry and Semantics*, CVPR 2018. https://arxiv.org/abs/1705.07115

    Examples:
        >>> import torch, lossforge as lf
        >>> uw = lf.UncertaintyWeighting(["depth", "seg"], kinds=["regression", "classification"])
        >>> uw(torch.tensor(2.0), torch.tensor(1.0)).detach()
        tensor(2.)
    """

    def __init__(self, tasks: int | Iterable[str], *, kinds: Iterable[str] | None = None,
                 init_log_var: float = 0.0) -> None:
        super().__init__()
        names = [f"task{i}" for i in range(tasks)] if isinstance(tasks, int) else list(tasks)
        if not names:
            raise ValueError("UncertaintyWeighting: tasks must name at least one task, got 0.")
        kinds_list = ["regression"] * len(names) if kinds is None else list(kinds)
        if len(kinds_list) != len(names):
            raise ValueError(message("UncertaintyWeighting", "kinds", f"must have {len(names)} entries",
                                     len(kinds_list)))
        for k in kinds_list:
            if k not in ("regression", "classification"):
                raise ValueError(message("UncertaintyWeighting", "kinds",
                                         "must hold 'regression' or 'classification'", repr(k)))
        self.names = names
        self.kinds = kinds_list
        self.log_vars = nn.Parameter(torch.full((len(names),), float(init_log_var)))
        self._scale: Tensor
        self.register_buffer("_scale", torch.tensor([0.5 if k == "regression" else 1.0 for k in kinds_list]),
                             persistent=False)

    def terms(self, *losses: Tensor, **named: Tensor) -> dict[str, Tensor]:
        """Each task's weighted term (``scale*exp(-s)*L + s/2``) and ``"total"``."""
        if named:
            if losses or set(named) != set(self.names):
                raise ValueError(message("UncertaintyWeighting", "losses", f"must be given for {self.names}",
                                         sorted(named)))
            losses = tuple(named[n] for n in self.names)
        if len(losses) != len(self.names):
            raise ValueError(message("UncertaintyWeighting", "losses", f"must be {len(self.names)} scalars",
                                     len(losses)))
        out = {
            name: self._scale[i] * torch.exp(-self.log_vars[i]) * value + 0.5 * self.log_vars[i]
            for i, (name, value) in enumerate(zip(self.names, losses))
        }
        total = torch.stack([t.reshape(()) for t in out.values()]).sum()
        out["total"] = total
        return out

    def forward(self, *losses: Tensor, **named: Tensor) -> Tensor:
        return self.terms(*losses, **named)["total"]

    def weights(self) -> dict[str, float]:
        """The current effective weight ``scale * exp(-s)`` of each task."""
        w = (self._scale * torch.exp(-self.log_vars.detach())).tolist()
        return dict(zip(self.names, w))
