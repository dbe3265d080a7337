"""Preference-optimisation losses on per-sequence log-probabilities: DPO, IPO, SimPO, ORPO, KTO.

The log-probabilities come from the model however it computes them; for an LLM head without the
(batch, length, vocab) logits use :func:`lossforge.functional.sequence_log_probs`, which computes
them chunked (the preference loss then costs no (B, T, V) memory). Re-exported by ``_llm``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from .._core.base import FunctionLoss, loss_function, refuse_unexpected
from .._core.checks import check_float, check_number, check_range, check_same_shape, upcast
from .._core.errors import message
from .._core.reduction import Reduction, reduce_loss
from .._core.registry import register_loss
from .._core.samples import ErrorSample, Sample, generator, rand, randint
from .._core.validation import validation_enabled

__all__ = [
    "CallTimeLoss",
    "DPOLoss",
    "IPOLoss",
    "KTOLoss",
    "ORPOLoss",
    "SimPOLoss",
    "dpo_loss",
    "ipo_loss",
    "kto_loss",
    "orpo_loss",
    "simpo_loss",
]


class CallTimeLoss(FunctionLoss):
    """A :class:`FunctionLoss` whose per-batch tensor keywords (listed in ``call_time``: reference
    log-probabilities, a head bias, a normalizer) may be given at call time as well as at construction."""

    call_time: ClassVar[tuple[str, ...]] = ()

    def forward(  # type: ignore[override]
        self, *inputs: Any, sample_weight: Tensor | None = None, mask: Tensor | None = None, **given: Any
    ) -> Tensor:
        unexpected = {k: v for k, v in given.items() if k not in self.call_time}
        refuse_unexpected(type(self).__name__, unexpected, (*self.call_time, "sample_weight", "mask"))
        hp = self.hparams()
        hp.update({k: v for k, v in given.items() if v is not None})
        return type(self).function(*inputs, **hp, reduction=self.reduction, sample_weight=sample_weight, mask=mask)


def _pair(chosen: Tensor, rejected: Tensor, loss: str, names: tuple[str, str] = (
        "chosen_log_probs", "rejected_log_probs")) -> tuple[Tensor, Tensor]:
    check_float(chosen, names[0], loss)
    check_float(rejected, names[1], loss)
    check_same_shape(chosen, rejected, loss, names)
    return upcast(chosen), upcast(rejected)


def _references(chosen: Tensor, ref_chosen: Tensor | None, ref_rejected: Tensor | None,
                loss: str) -> tuple[Tensor | float, Tensor | float]:
    """Both reference log-probabilities or neither (reference-free: a uniform reference, 0)."""
    if (ref_chosen is None) != (ref_rejected is None):
        given, missing = ("ref_chosen_log_probs", "ref_rejected_log_probs")[:: 1 if ref_chosen is not None else -1]
        raise ValueError(message(loss, missing, f"must be given together with {given}", "None",
                                 hint="pass both reference log-probabilities, or neither for the reference-free loss"))
    if ref_chosen is None or ref_rejected is None:
        return 0.0, 0.0
    for name, ref in (("ref_chosen_log_probs", ref_chosen), ("ref_rejected_log_probs", ref_rejected)):
        check_float(ref, name, loss)
        check_same_shape(chosen, ref, loss, ("chosen_log_probs", name))
    return upcast(ref_chosen), upcast(ref_rejected)


def _check_beta(beta: object, loss: str) -> None:
    check_range(beta, "beta", loss, low=0.0, high=math.inf, low_inclusive=False, high_inclusive=False)


def _smoothed_logsigmoid(x: Tensor, label_smoothing: float) -> Tensor:
    """``-(1 - ε) log σ(x) - ε log σ(-x)`` (the conservative-DPO loss of the margin ``x``)."""
    u = -F.logsigmoid(x)
    if label_smoothing:
        u = (1.0 - label_smoothing) * u - label_smoothing * F.logsigmoid(-x)
    return u


def _pair_samples(refs: bool, average: bool = False) -> Any:
    def samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
        g = generator(0)
        low = -2.5 if average else -40.0
        c = rand(6, gen=g, dtype=dtype, device=device, low=low, high=low / 20)
        r = rand(6, gen=g, dtype=dtype, device=device, low=low, high=low / 20)
        out = [Sample((c, r), name="pairs")]
        if refs:
            rc = rand(6, gen=g, dtype=dtype, device=device, low=low, high=low / 20)
            rr = rand(6, gen=g, dtype=dtype, device=device, low=low, high=low / 20)
            out.append(Sample((c, r), {"ref_chosen_log_probs": rc, "ref_rejected_log_probs": rr},
                              name="with a reference model"))
        c2 = rand(2, 3, gen=g, dtype=dtype, device=device, low=low, high=low / 20)
        r2 = rand(2, 3, gen=g, dtype=dtype, device=device, low=low, high=low / 20)
        out.append(Sample((c2, r2), name="(2, 3) pairs"))
        return out

    return samples


def _pair_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    c = torch.tensor([0.0, -1e4, -1e-30, -1e4, 0.0, -3.0], dtype=dtype, device=device)
    r = torch.tensor([-1e4, 0.0, -1e4, -1e-30, 0.0, -1e4], dtype=dtype, device=device)
    return [Sample((c, r), name="log-probabilities 0 and -1e4")]


def _pair_errors(loss: str, extra: list[ErrorSample] | None = None) -> list[ErrorSample]:
    c, r = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -0.5])
    return [
        ErrorSample((c, r[:1]), {}, ValueError, rf"{loss}: rejected_log_probs must have the shape of chosen_log_probs"),
        ErrorSample((c.long(), r), {}, TypeError, rf"{loss}: chosen_log_probs must be a floating-point tensor"),
        ErrorSample((c, r), {"beta": 0.0}, ValueError, rf"{loss}: beta must be > 0, got 0.0"),
        ErrorSample((c, r), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((c, r), {"weight": torch.ones(2)}, TypeError, r"Hint: use sample_weight="),
        ErrorSample((), {"beta": -1.0}, ValueError, rf"{loss}: beta must be > 0", at_construction=True),
        *(extra or []),
    ]


def _ref_errors(loss: str) -> list[ErrorSample]:
    c, r = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -0.5])
    return [
        ErrorSample((c, r), {"ref_chosen_log_probs": c}, ValueError,
                    rf"{loss}: ref_rejected_log_probs must be given together with ref_chosen_log_probs"),
        ErrorSample((c, r), {"ref_chosen_log_probs": c, "ref_rejected_log_probs": r[:1]}, ValueError,
                    r"ref_rejected_log_probs must have the shape of chosen_log_probs"),
        ErrorSample((c, r), {"label_smoothing": 0.7}, ValueError, r"label_smoothing must be in \[0, 0.5\], got 0.7"),
    ]


# ------------------------------------------------------------------------------------------------ DPO


def _check_dpo_args(*, beta: float = 0.1, label_smoothing: float = 0.0, loss: str = "dpo_loss", **_: object) -> None:
    _check_beta(beta, loss)
    check_range(label_smoothing, "label_smoothing", loss, low=0.0, high=0.5)


@loss_function
def dpo_loss(
    chosen_log_probs: Tensor,
    rejected_log_probs: Tensor,
    /,
    *,
    ref_chosen_log_probs: Tensor | None = None,
    ref_rejected_log_probs: Tensor | None = None,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Direct Preference Optimization: a logistic loss on the policy's preference margin over a reference.

    Fine-tunes a language model on pairs (chosen, rejected) without a reward model: the implicit
    reward is :math:`\beta` times the log-ratio of the policy to the reference model.

    .. math::
        m_i = \big(\log\pi(y^+_i) - \log\pi_{\text{ref}}(y^+_i)\big)
              - \big(\log\pi(y^-_i) - \log\pi_{\text{ref}}(y^-_i)\big),

        U_i = -(1-\varepsilon)\log\sigma(\beta m_i) - \varepsilon \log\sigma(-\beta m_i)

    Args:
        chosen_log_probs: :math:`\log\pi(y^+)`, the policy's summed log-probability of each chosen
            response, ``(*)`` (e.g. from :func:`sequence_log_probs`).
        rejected_log_probs: :math:`\log\pi(y^-)`, the same shape.
        ref_chosen_log_probs, ref_rejected_log_probs: The reference model's; both or neither
            (neither: the reference-free variant, a uniform reference).
        beta: :math:`\beta > 0`, the strength of the KL regularisation (0.1 to 0.5 are usual).
        label_smoothing: :math:`\varepsilon \in [0, 0.5]`, the assumed rate of flipped preference labels
            (conservative DPO).
        reduction, sample_weight, mask: See the conventions page. Unit: one pair.

    Shape:
        - every log-probability tensor: ``(*)``, one entry per pair.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If an input is not floating point.
        ValueError: If ``beta <= 0``, ``label_smoothing`` is outside ``[0, 0.5]``, or only one reference is given.

    Note:
        Computed with ``logsigmoid``: finite for margins of any size. The reference log-probabilities are
        used as given (detach them, or compute them under ``torch.no_grad()``, for a frozen reference).

    References:
        Rafailov et al., *Direct Preference Optimization: Your Language Model is Secretly a Reward Model*,
        NeurIPS 2023. https://arxiv.org/abs/2305.18290 ; Mitchell, *A note on DPO with noisy preferences*,
        2023 (label smoothing).

    Examples:
        >>> import torch
        >>> from lossforge.functional import dpo_loss
        >>> chosen, rejected = torch.tensor([-12.0, -30.0]), torch.tensor([-15.0, -28.0])
        >>> dpo_loss(chosen, rejected, ref_chosen_log_probs=torch.tensor([-13.0, -29.0]),
        ...          ref_rejected_log_probs=torch.tensor([-14.0, -29.0]), reduction="none")
        tensor([0.5981, 0.7981])
    """
    loss = "dpo_loss"
    _check_dpo_args(beta=beta, label_smoothing=label_smoothing)
    c, r = _pair(chosen_log_probs, rejected_log_probs, loss)
    rc, rr = _references(c, ref_chosen_log_probs, ref_rejected_log_probs, loss)
    margin = (c - rc) - (r - rr)
    u = _smoothed_logsigmoid(beta * margin, label_smoothing)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class DPOLoss(CallTimeLoss):
    """Module form of :func:`lossforge.functional.dpo_loss`.

    Args:
        beta: ``> 0``.
        label_smoothing: In ``[0, 0.5]``.
        ref_chosen_log_probs, ref_rejected_log_probs: Usually given at call time.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = dpo_loss
    validate = _check_dpo_args
    call_time = ("ref_chosen_log_probs", "ref_rejected_log_probs")
    tensor_params = call_time

    def __init__(self, *, beta: float = 0.1, label_smoothing: float = 0.0, ref_chosen_log_probs: Tensor | None = None,
                 ref_rejected_log_probs: Tensor | None = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, beta=beta, label_smoothing=label_smoothing,
                         ref_chosen_log_probs=ref_chosen_log_probs, ref_rejected_log_probs=ref_rejected_log_probs)


register_loss(
    name="dpo", function=dpo_loss, module=DPOLoss, family="sequence", input_kind="log_probs", target_kind="none",
    unit="pair", reference="Rafailov et al. 2023, Direct Preference Optimization, arXiv:2305.18290",
    sample_inputs=_pair_samples(refs=True), extreme_inputs=_pair_extremes,
    error_inputs=lambda: _pair_errors("dpo_loss", _ref_errors("dpo_loss")),
)


# ------------------------------------------------------------------------------------------------ IPO


def _check_ipo_args(*, beta: float = 0.1, loss: str = "ipo_loss", **_: object) -> None:
    _check_beta(beta, loss)


@loss_function
def ipo_loss(
    chosen_log_probs: Tensor,
    rejected_log_probs: Tensor,
    /,
    *,
    ref_chosen_log_probs: Tensor | None = None,
    ref_rejected_log_probs: Tensor | None = None,
    beta: float = 0.1,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Identity Preference Optimisation: a squared loss pulling the preference margin to :math:`1/(2\beta)`.

    A DPO variant that does not over-fit deterministic preferences: the margin is regressed to a
    finite target instead of being pushed to infinity.

    .. math::
        U_i = \Big(m_i - \frac{1}{2\beta}\Big)^2, \qquad
        m_i = \big(\log\pi(y^+_i) - \log\pi_{\text{ref}}(y^+_i)\big)
              - \big(\log\pi(y^-_i) - \log\pi_{\text{ref}}(y^-_i)\big)

    Args:
        chosen_log_probs: :math:`\log\pi(y^+)`, ``(*)``. The IPO paper uses summed log-probabilities; TRL
            averages them over the response's tokens (``sequence_log_probs(..., average=True)``).
        rejected_log_probs: :math:`\log\pi(y^-)`, the same shape.
        ref_chosen_log_probs, ref_rejected_log_probs: The reference model's; both or neither.
        beta: :math:`\beta > 0` (the paper's :math:`\tau`).
        reduction, sample_weight, mask: See the conventions page. Unit: one pair.

    Shape:
        - every log-probability tensor: ``(*)``.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If an input is not floating point.
        ValueError: If ``beta <= 0`` or only one reference is given.

    Note:
        The gradient grows linearly with the margin (no saturation), by design.

    References:
        Azar et al., *A General Theoretical Paradigm to Understand Learning from Human Preferences*,
        AISTATS 2024. https://arxiv.org/abs/2310.12036

    Examples:
        >>> import torch
        >>> from lossforge.functional import ipo_loss
        >>> ipo_loss(torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.5]), beta=0.5, reduction="none")
        tensor([1.0000, 2.2500])
    """
    loss = "ipo_loss"
    _check_ipo_args(beta=beta)
    c, r = _pair(chosen_log_probs, rejected_log_probs, loss)
    rc, rr = _references(c, ref_chosen_log_probs, ref_rejected_log_probs, loss)
    margin = (c - rc) - (r - rr)
    u = (margin - 1.0 / (2.0 * beta)).square()
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class IPOLoss(CallTimeLoss):
    """Module form of :func:`lossforge.functional.ipo_loss`.

    Args:
        beta: ``> 0``.
        ref_chosen_log_probs, ref_rejected_log_probs: Usually given at call time.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = ipo_loss
    validate = _check_ipo_args
    call_time = ("ref_chosen_log_probs", "ref_rejected_log_probs")
    tensor_params = call_time

    def __init__(self, *, beta: float = 0.1, ref_chosen_log_probs: Tensor | None = None,
                 ref_rejected_log_probs: Tensor | None = None, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, beta=beta, ref_chosen_log_probs=ref_chosen_log_probs,
                         ref_rejected_log_probs=ref_rejected_log_probs)


register_loss(
    name="ipo", function=ipo_loss, module=IPOLoss, family="sequence", input_kind="log_probs", target_kind="none",
    unit="pair", reference="Azar et al. 2024, A General Theoretical Paradigm to Understand Learning from Human "
                           "Preferences, arXiv:2310.12036",
    sample_inputs=_pair_samples(refs=True), extreme_inputs=_pair_extremes,
    error_inputs=lambda: _pair_errors("ipo_loss", _ref_errors("ipo_loss")[:2]),
)


# ---------------------------------------------------------------------------------------------- SimPO


def _check_simpo_args(*, beta: float = 2.0, gamma: float = 1.0, label_smoothing: float = 0.0,
                      loss: str = "simpo_loss", **_: object) -> None:
    _check_beta(beta, loss)
    check_range(gamma, "gamma", loss, low=-math.inf, high=math.inf, low_inclusive=False, high_inclusive=False)
    check_range(label_smoothing, "label_smoothing", loss, low=0.0, high=0.5)


@loss_function
def simpo_loss(
    chosen_log_probs: Tensor,
    rejected_log_probs: Tensor,
    /,
    *,
    beta: float = 2.0,
    gamma: float = 1.0,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""SimPO: a reference-free preference loss on length-normalised log-probabilities with a target margin.

    The implicit reward is the *average* log-probability of a response (no reference model), and the
    chosen response must win by at least :math:`\gamma`.

    .. math::
        U_i = -(1-\varepsilon)\log\sigma\big(\beta(\bar\ell^+_i - \bar\ell^-_i) - \gamma\big)
              - \varepsilon\log\sigma\big(\gamma - \beta(\bar\ell^+_i - \bar\ell^-_i)\big)

    Args:
        chosen_log_probs: :math:`\bar\ell^+`, the *average* per-token log-probability of each chosen
            response, ``(*)`` (``sequence_log_probs(..., average=True)``).
        rejected_log_probs: :math:`\bar\ell^-`, the same shape.
        beta: :math:`\beta > 0` (the paper uses 2.0 to 2.5).
        gamma: :math:`\gamma`, the target reward margin (the paper's :math:`\gamma/\beta` is about 0.5).
        label_smoothing: :math:`\varepsilon \in [0, 0.5]`.
        reduction, sample_weight, mask: See the conventions page. Unit: one pair.

    Shape:
        - chosen_log_probs, rejected_log_probs: ``(*)``.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If an input is not floating point.
        ValueError: If ``beta <= 0``, ``gamma`` is not finite, or ``label_smoothing`` is outside ``[0, 0.5]``.

    Note:
        Computed with ``logsigmoid``: finite for any margin.

    References:
        Meng, Xia and Chen, *SimPO: Simple Preference Optimization with a Reference-Free Reward*,
        NeurIPS 2024. https://arxiv.org/abs/2405.14734

    Examples:
        >>> import torch
        >>> from lossforge.functional import simpo_loss
        >>> simpo_loss(torch.tensor([-0.8, -1.2]), torch.tensor([-1.5, -1.0]), reduction="none")
        tensor([0.5130, 1.6204])
    """
    loss = "simpo_loss"
    _check_simpo_args(beta=beta, gamma=gamma, label_smoothing=label_smoothing)
    c, r = _pair(chosen_log_probs, rejected_log_probs, loss)
    u = _smoothed_logsigmoid(beta * (c - r) - gamma, label_smoothing)
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class SimPOLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.simpo_loss`.

    Args:
        beta: ``> 0``.
        gamma: The target margin.
        label_smoothing: In ``[0, 0.5]``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = simpo_loss
    validate = _check_simpo_args

    def __init__(self, *, beta: float = 2.0, gamma: float = 1.0, label_smoothing: float = 0.0,
                 reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, beta=beta, gamma=gamma, label_smoothing=label_smoothing)


register_loss(
    name="simpo", function=simpo_loss, module=SimPOLoss, family="sequence", input_kind="log_probs",
    target_kind="none", unit="pair",
    reference="Meng, Xia and Chen 2024, SimPO: Simple Preference Optimization with a Reference-Free Reward, "
              "arXiv:2405.14734",
    sample_inputs=_pair_samples(refs=False, average=True), extreme_inputs=_pair_extremes,
    error_inputs=lambda: _pair_errors("simpo_loss", [
        ErrorSample((torch.tensor([-1.0]), torch.tensor([-2.0])), {"gamma": math.inf}, ValueError,
                    r"simpo_loss: gamma must be a finite number, got inf"),
    ]),
)


# ---------------------------------------------------------------------------------------------- ORPO


def _check_orpo_args(*, beta: float = 0.1, nll: bool = True, loss: str = "orpo_loss", **_: object) -> None:
    _check_beta(beta, loss)
    if not isinstance(nll, bool):
        raise TypeError(message(loss, "nll", "must be a bool", repr(nll)))


def _log_odds(avg: Tensor) -> Tensor:
    r"""``log(p / (1 - p))`` for ``p = exp(avg)``: ``avg - log(1 - exp(avg))``, stable on both sides of
    ``-log 2`` and finite at ``avg = 0`` (clamped to the largest log-probability below 0 that stays finite)."""
    x = avg.clamp(max=-torch.finfo(avg.dtype).eps)
    near = x > -math.log(2.0)
    # double where: each branch only sees arguments where it is finite
    a = torch.log(-torch.expm1(torch.where(near, x, x.new_full((), -1.0))))
    b = torch.log1p(-torch.exp(torch.where(near, x.new_full((), -1.0), x)))
    return x - torch.where(near, a, b)


@loss_function
def orpo_loss(
    chosen_log_probs: Tensor,
    rejected_log_probs: Tensor,
    /,
    *,
    beta: float = 0.1,
    nll: bool = True,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""ORPO: supervised fine-tuning plus an odds-ratio preference term, without a reference model.

    One loss does SFT on the chosen responses and pushes the odds of the chosen response above those
    of the rejected one.

    .. math::
        U_i = -\bar\ell^+_i \,[\text{nll}] - \beta \log\sigma\Big(\log\frac{\text{odds}(\bar\ell^+_i)}
              {\text{odds}(\bar\ell^-_i)}\Big),
        \qquad \log\text{odds}(\bar\ell) = \bar\ell - \log(1 - e^{\bar\ell})

    Args:
        chosen_log_probs: :math:`\bar\ell^+ \le 0`, the *average* per-token log-probability of each chosen
            response, ``(*)`` (``sequence_log_probs(..., average=True)``).
        rejected_log_probs: :math:`\bar\ell^-`, the same shape.
        beta: :math:`\beta > 0`, the weight of the odds-ratio term (the paper's :math:`\lambda`, 0.1 to 1).
        nll: Include the SFT term :math:`-\bar\ell^+` (per pair; TRL averages it over the chosen tokens of
            the batch instead, which weights long responses more).
        reduction, sample_weight, mask: See the conventions page. Unit: one pair.

    Shape:
        - chosen_log_probs, rejected_log_probs: ``(*)``.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If an input is not floating point, or ``nll`` is not a bool.
        ValueError: If ``beta <= 0``; in validation mode, if a log-probability is positive.

    Note:
        :math:`\log(1 - e^{\bar\ell})` is computed with ``expm1`` / ``log1p`` (exact for :math:`\bar\ell` near 0
        and very negative); an average log-probability of exactly 0 (odds infinite) is clamped to
        ``-eps`` of the dtype, so the loss and its gradient stay finite.

    References:
        Hong, Lee and Thorne, *ORPO: Monolithic Preference Optimization without Reference Model*,
        EMNLP 2024. https://arxiv.org/abs/2403.07691

    Examples:
        >>> import torch
        >>> from lossforge.functional import orpo_loss
        >>> orpo_loss(torch.tensor([-0.8, -1.2]), torch.tensor([-1.5, -1.0]), reduction="none")
        tensor([0.8302, 1.2855])
    """
    loss = "orpo_loss"
    _check_orpo_args(beta=beta, nll=nll)
    c, r = _pair(chosen_log_probs, rejected_log_probs, loss)
    if validation_enabled():
        for name, x in (("chosen_log_probs", c), ("rejected_log_probs", r)):
            if x.numel() and bool((x > 0).any()):
                raise ValueError(message(loss, name, "must hold log-probabilities (<= 0)", f"a maximum of {x.max():g}"))
    u = -beta * F.logsigmoid(_log_odds(c) - _log_odds(r))
    if nll:
        u = u - c
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class ORPOLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.orpo_loss`.

    Args:
        beta: ``> 0``.
        nll: Include the SFT term.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = orpo_loss
    validate = _check_orpo_args

    def __init__(self, *, beta: float = 0.1, nll: bool = True, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, beta=beta, nll=nll)


register_loss(
    name="orpo", function=orpo_loss, module=ORPOLoss, family="sequence", input_kind="log_probs", target_kind="none",
    unit="pair", reference="Hong, Lee and Thorne 2024, ORPO: Monolithic Preference Optimization without Reference "
                           "Model, arXiv:2403.07691",
    sample_inputs=_pair_samples(refs=False, average=True), extreme_inputs=_pair_extremes,
    error_inputs=lambda: _pair_errors("orpo_loss", [
        ErrorSample((torch.tensor([0.5]), torch.tensor([-2.0])), {}, ValueError,
                    r"orpo_loss: chosen_log_probs must hold log-probabilities \(<= 0\), got a maximum of 0.5"),
        ErrorSample((torch.tensor([-0.5]), torch.tensor([-2.0])), {"nll": 1}, TypeError,
                    r"orpo_loss: nll must be a bool"),
    ]),
)


# ----------------------------------------------------------------------------------------------- KTO


def _check_kto_args(*, beta: float = 0.1, kl: float | Tensor = 0.0, desirable_weight: float = 1.0,
                    undesirable_weight: float = 1.0, loss: str = "kto_loss", **_: object) -> None:
    _check_beta(beta, loss)
    if not isinstance(kl, Tensor):
        check_number(kl, "kl", loss)
    elif kl.dim() != 0 or not kl.is_floating_point():
        raise TypeError(message(loss, "kl", "must be a number or a 0-d floating-point tensor",
                                f"shape {tuple(kl.shape)}, dtype {kl.dtype}"))
    check_range(desirable_weight, "desirable_weight", loss, low=0.0, high=math.inf, high_inclusive=False)
    check_range(undesirable_weight, "undesirable_weight", loss, low=0.0, high=math.inf, high_inclusive=False)


@loss_function
def kto_loss(
    log_probs: Tensor,
    ref_log_probs: Tensor,
    desirable: Tensor,
    /,
    *,
    kl: float | Tensor = 0.0,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    reduction: Reduction = "mean",
    sample_weight: Tensor | None = None,
    mask: Tensor | None = None,
) -> Tensor:
    r"""Kahneman-Tversky Optimisation: a prospect-theory loss on unpaired desirable / undesirable responses.

    Needs no preference pairs: each response is labelled good or bad, and its implied reward
    :math:`r = \log\pi/\pi_{\text{ref}}` is compared with a reference point :math:`z_0` (an estimate of
    :math:`\mathrm{KL}(\pi \| \pi_{\text{ref}})`).

    .. math::
        U_i = \begin{cases} \lambda_D \big(1 - \sigma(\beta (r_i - z_0))\big) & \text{desirable} \\
              \lambda_U \big(1 - \sigma(\beta (z_0 - r_i))\big) & \text{undesirable} \end{cases},
        \qquad r_i = \log\pi(y_i) - \log\pi_{\text{ref}}(y_i)

    Args:
        log_probs: :math:`\log\pi(y)`, the policy's summed log-probability of each response, ``(*)``.
        ref_log_probs: :math:`\log\pi_{\text{ref}}(y)`, the same shape.
        desirable: bool ``(*)``, True for a desirable response.
        kl: :math:`z_0`, the reference point (a number or a 0-d tensor; never differentiated). TRL
            estimates it from mismatched prompt/response pairs, clamped at 0 and averaged over the ranks.
        beta: :math:`\beta > 0`.
        desirable_weight, undesirable_weight: :math:`\lambda_D, \lambda_U \ge 0` (balance them when the
            two kinds are not equally frequent; the paper keeps :math:`\lambda_D n_D / \lambda_U n_U` in [1, 4/3]).
        reduction, sample_weight, mask: See the conventions page. Unit: one response.

    Shape:
        - log_probs, ref_log_probs, desirable: ``(*)``.
        - output: ``(*)`` if ``reduction="none"``, else ``()``; float32 for half inputs.

    Returns:
        The loss, reduced as requested.

    Raises:
        ShapeError: If the shapes differ.
        TypeError: If a log-probability tensor is not floating point, ``desirable`` is not bool, or ``kl`` is
            neither a number nor a 0-d floating-point tensor.
        ValueError: If ``beta <= 0`` or a class weight is negative.

    Note:
        :math:`1 - \sigma(x)` is computed as :math:`\sigma(-x)`: exact for large :math:`x`.

    References:
        Ethayarajh et al., *KTO: Model Alignment as Prospect Theoretic Optimization*, ICML 2024.
        https://arxiv.org/abs/2402.01306

    Examples:
        >>> import torch
        >>> from lossforge.functional import kto_loss
        >>> kto_loss(torch.tensor([-10.0, -20.0]), torch.tensor([-12.0, -18.0]), torch.tensor([True, False]),
        ...          beta=0.5, reduction="none")
        tensor([0.2689, 0.2689])
    """
    loss = "kto_loss"
    _check_kto_args(beta=beta, kl=kl, desirable_weight=desirable_weight, undesirable_weight=undesirable_weight)
    lp, ref = _pair(log_probs, ref_log_probs, loss, ("log_probs", "ref_log_probs"))
    if not isinstance(desirable, Tensor) or desirable.dtype != torch.bool:
        got = f"dtype {desirable.dtype}" if isinstance(desirable, Tensor) else type(desirable).__name__
        raise TypeError(message(loss, "desirable", "must be a bool tensor (True = desirable)", got,
                                hint="pass desirable.bool()"))
    check_same_shape(lp, desirable, loss, ("log_probs", "desirable"))
    z0 = kl.detach().to(device=lp.device, dtype=lp.dtype) if isinstance(kl, Tensor) else float(kl)
    x = beta * (lp - ref - z0)
    u = torch.where(desirable, desirable_weight * torch.sigmoid(-x), undesirable_weight * torch.sigmoid(x))
    return reduce_loss(u, reduction, sample_weight=sample_weight, mask=mask, loss_name=loss)


class KTOLoss(FunctionLoss):
    """Module form of :func:`lossforge.functional.kto_loss`.

    Args:
        kl: The reference point :math:`z_0` (also settable as an attribute each step).
        beta: ``> 0``.
        desirable_weight, undesirable_weight: ``>= 0``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
    """

    function = kto_loss
    validate = _check_kto_args
    tensor_params = ("kl",)

    def __init__(self, *, kl: float | Tensor = 0.0, beta: float = 0.1, desirable_weight: float = 1.0,
                 undesirable_weight: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction=reduction, kl=kl, beta=beta, desirable_weight=desirable_weight,
                         undesirable_weight=undesirable_weight)


def _kto_samples(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    g = generator(0)
    lp = rand(8, gen=g, dtype=dtype, device=device, low=-30.0, high=-2.0)
    ref = rand(8, gen=g, dtype=dtype, device=device, low=-30.0, high=-2.0)
    good = randint(2, 8, gen=g, device=device).bool()
    return [
        Sample((lp, ref, good), name="responses"),
        Sample((lp, ref, good), {"kl": 0.5, "desirable_weight": 1.0, "undesirable_weight": 1.33}, name="kl, weights"),
    ]


def _kto_extremes(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    lp = torch.tensor([0.0, -1e4, 0.0, -1e4], dtype=dtype, device=device)
    ref = torch.tensor([-1e4, 0.0, -1e4, 0.0], dtype=dtype, device=device)
    return [Sample((lp, ref, torch.tensor([True, True, False, False], device=device)), name="extreme rewards")]


def _kto_errors() -> list[ErrorSample]:
    loss = "kto_loss"
    lp, ref, good = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -0.5]), torch.tensor([True, False])
    return [
        ErrorSample((lp, ref, good.long()), {}, TypeError, rf"{loss}: desirable must be a bool tensor"),
        ErrorSample((lp, ref, good[:1]), {}, ValueError, rf"{loss}: desirable must have the shape of log_probs"),
        ErrorSample((lp, ref[:1], good), {}, ValueError, rf"{loss}: ref_log_probs must have the shape of log_probs"),
        ErrorSample((lp.long(), ref, good), {}, TypeError, rf"{loss}: log_probs must be a floating-point tensor"),
        ErrorSample((lp, ref, good), {"beta": 0.0}, ValueError, rf"{loss}: beta must be > 0, got 0.0"),
        ErrorSample((lp, ref, good), {"kl": torch.zeros(2)}, TypeError, rf"{loss}: kl must be a number or a 0-d"),
        ErrorSample((lp, ref, good), {"desirable_weight": -1.0}, ValueError, r"desirable_weight must be >= 0"),
        ErrorSample((lp, ref, good), {"reduction": "avg"}, ValueError, r"Did you mean 'mean'"),
        ErrorSample((lp, ref, good), {"weight": torch.ones(2)}, TypeError, r"Hint: use sample_weight="),
    ]


register_loss(
    name="kto", function=kto_loss, module=KTOLoss, family="sequence", input_kind="log_probs", target_kind="binary",
    unit="response", reference="Ethayarajh et al. 2024, KTO: Model Alignment as Prospect Theoretic Optimization, "
                               "arXiv:2402.01306",
    sample_inputs=_kto_samples, extreme_inputs=_kto_extremes, error_inputs=_kto_errors,
)
