r"""``lossforge plot``: a loss and its gradient against the residual or the margin, for a few hyper-parameters.

What the horizontal axis is follows the loss's kinds in the registry:

- ``real → real`` (regression): the residual :math:`r = \hat y - y` with ``y = --target`` (0);
  the gradient is :math:`\partial U / \partial \hat y`.
- ``logits → index`` and ``logits → probs`` (softmax losses): the margin
  :math:`m = z_y - \max_{j \ne y} z_j` of ``C`` logits (``--classes``, 2) with every other
  logit 0; the gradient is :math:`\partial U / \partial z_y`.
- ``logits → binary`` and ``logits → sign`` (sigmoid and hinge losses): the margin
  :math:`m = z` of one logit whose target is positive (1 or +1); the gradient is :math:`\partial U / \partial z`.

Region losses (Dice, Tversky, ...) see each point as a one-pixel image, so their curves show how
the per-image score reacts to one pixel's logit.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import lossforge as lf

from ._deps import require

__all__ = ["LossCurves", "axis_of", "loss_curves", "plot_loss_curves"]

_AXES = {
    ("real", "real"): "residual  ŷ − y",
    ("logits", "index"): "margin  z_y − max_{j≠y} z_j",
    ("logits", "probs"): "margin  z_y − max_{j≠y} z_j  (one-hot target)",
    ("logits", "binary"): "margin  z  (target 1)",
    ("logits", "sign"): "margin  z  (target +1)",
}


@dataclass
class LossCurves:
    """Loss and gradient along ``x``, one curve per hyper-parameter setting.

    Attributes:
        name: Registry name.
        x: The points (residuals or margins).
        axis: What ``x`` is.
        curves: ``[(label, kwargs, loss values, gradient values), ...]``.
    """

    name: str
    x: Tensor
    axis: str
    curves: list[tuple[str, dict[str, Any], Tensor, Tensor]] = field(default_factory=list)


def axis_of(spec: lf.LossSpec) -> str:
    """What the horizontal axis is for this loss.

    Raises:
        ValueError: For kinds ``lossforge plot`` cannot draw (embeddings, boxes, rankings, ...).
    """
    key = (spec.input_kind, spec.target_kind)
    if key not in _AXES:
        kinds = ", ".join(f"{i} → {t}" for i, t in _AXES)
        raise ValueError(f"plot draws losses of kinds {kinds}; {spec.name!r} takes "
                         f"{spec.input_kind} → {spec.target_kind}.")
    return _AXES[key]


def _inputs(spec: lf.LossSpec, x: Tensor, classes: int, target: float) -> tuple[Tensor, Tensor, Tensor]:
    """``(leaf, input, target)``: the leaf the gradient is taken for, the loss's input built from it."""
    leaf = x.clone().requires_grad_(True)
    n = len(x)
    kind = (spec.input_kind, spec.target_kind)
    region = spec.family == "segmentation"
    if kind == ("real", "real"):
        t = torch.full_like(x, target)
        return leaf, leaf + t, t
    if kind in (("logits", "binary"), ("logits", "sign")):
        t = torch.ones_like(x)
        if region:  # one-pixel images of one class: (N, 1, 1, 1)
            return leaf, leaf.view(n, 1, 1, 1), t.view(n, 1, 1, 1)
        return leaf, leaf, t
    others = torch.zeros(n, classes - 1, dtype=x.dtype)
    logits = torch.cat([leaf[:, None], others], dim=1)
    index = torch.zeros(n, dtype=torch.int64)
    if kind == ("logits", "probs"):
        return leaf, logits, torch.nn.functional.one_hot(index, classes).to(x.dtype)
    if region:  # one-pixel images: logits (N, C, 1, 1), target (N, 1, 1)
        return leaf, logits[:, :, None, None], index.view(n, 1, 1)
    return leaf, logits, index


def loss_curves(name: str, params: dict[str, list[Any]] | None = None, *, lo: float = -4.0, hi: float = 4.0,
                points: int = 401, classes: int = 2, target: float = 0.0) -> LossCurves:
    """Evaluate the loss ``name`` (its function, ``reduction="none"``) on every combination of ``params``.

    Each point is its own sample; where the unreduced loss has more than one entry per sample
    (a region loss's classes), they are averaged, as ``reduction="mean"`` would.

    Raises:
        ValueError: For an unknown name, kinds that cannot be drawn, bad ranges, or values the loss refuses.

    Examples:
        >>> c = loss_curves("huber", {"delta": [1.0]}, lo=-2, hi=2, points=5)
        >>> c.curves[0][2].tolist(), c.curves[0][3].tolist()
        ([1.5, 0.5, 0.0, 0.5, 1.5], [-1.0, -1.0, 0.0, 1.0, 1.0])
    """
    spec = lf.get_loss(name)
    axis = axis_of(spec)
    if not lo < hi or points < 2:
        raise ValueError(f"plot: the range must have lo < hi and at least 2 points, got [{lo}, {hi}], {points}.")
    if classes < 2:
        raise ValueError(f"plot: classes must be at least 2, got {classes}.")
    params = params or {}
    x = torch.linspace(lo, hi, points, dtype=torch.float64)
    x = torch.where(x.abs() < 1e-9 * (hi - lo), torch.zeros_like(x), x)  # an exact 0 where the range holds it
    out = LossCurves(name=spec.name, x=x, axis=axis + (f"  (C = {classes})" if "z_y" in axis else ""))
    keys = list(params)
    for combo in itertools.product(*(params[k] for k in keys)) if keys else [()]:
        kwargs = dict(zip(keys, combo))
        leaf, inp, tgt = _inputs(spec, x, classes, target)
        try:
            u = spec.function(inp, tgt, reduction="none", **kwargs)
        except (TypeError, ValueError, RuntimeError) as exc:
            args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            raise ValueError(f"plot: {spec.name}({args}) could not be evaluated on these inputs: {exc}") from None
        if u.dim() == 0 or u.shape[0] != points:
            raise ValueError(f"plot: {spec.name} does not give one loss per sample (unreduced shape "
                             f"{tuple(u.shape)}), so it has no curve against the {axis.split()[0]}.")
        values = u.reshape(points, -1).mean(dim=1)
        (grad,) = torch.autograd.grad(values.sum(), leaf, allow_unused=True)
        grad = torch.zeros_like(x) if grad is None else grad
        label = ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults"
        out.curves.append((label, kwargs, values.detach(), grad.detach()))
    return out


def plot_loss_curves(curves: LossCurves, path: str | Path) -> Path:
    """Two panels, loss and gradient against ``x``, one line per setting; a PNG (Agg canvas).

    Raises:
        MissingDependencyError: If matplotlib is not installed.
    """
    require("matplotlib", "to draw the plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_grad = fig.subplots(1, 2)
    x = curves.x.numpy()
    for label, _, values, grad in curves.curves:
        ax_loss.plot(x, values.numpy(), label=label)
        ax_grad.plot(x, grad.numpy(), label=label)
    var = "ŷ" if curves.axis.startswith("residual") else ("z_y" if "z_y" in curves.axis else "z")
    ax_loss.set(title=f"{curves.name}: loss", xlabel=curves.axis, ylabel="U")
    ax_grad.set(title=f"{curves.name}: gradient", xlabel=curves.axis, ylabel=f"∂U/∂{var}")
    for ax in (ax_loss, ax_grad):
        ax.axhline(0, color="black", linewidth=0.6)
        ax.axvline(0, color="black", linewidth=0.6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    path = Path(path)
    if path.parent != Path("."):
        path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
