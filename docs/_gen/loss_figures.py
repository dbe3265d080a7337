"""The figure on each loss page: loss and gradient along one meaningful axis.

Losses of the kinds ``lossforge plot`` draws (regression residual, softmax / sigmoid / hinge margin)
get exactly its curves (:func:`lossforge.demo.lossplot.loss_curves`). The others get a scenario of
their own, one scalar per point, built here: a box slid past its target, two items of a ranked list,
two classes of embeddings at an angle, a noisy image, a preference pair, ... Losses with no scenario
get no figure (their page says so).
"""

from __future__ import annotations

import inspect
import io
import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import lossforge as lf
from lossforge.demo.lossplot import LossCurves, axis_of, loss_curves

__all__ = ["Drawn", "Figure", "draw", "draw_all", "figure_for", "render"]

#: Hyper-parameters drawn as separate curves on the registry plots (the CLI's ``--param``).
PARAMS: dict[str, dict[str, list[Any]]] = {
    "focal": {"gamma": [0, 1, 2, 5]},
    "binary_focal": {"gamma": [0, 1, 2, 5]},
    "huber": {"delta": [0.5, 1.0, 2.0]},
    "smooth_l1": {"beta": [0.5, 1.0, 2.0]},
    "general_robust": {"alpha": [-2.0, 0.0, 1.0, 2.0]},
    "quantile": {"quantile": [0.1, 0.5, 0.9]},
    "generalized_cross_entropy": {"q": [0.1, 0.4, 0.7, 1.0]},
    "poly1": {"epsilon": [-1.0, 0.0, 1.0, 2.0]},
    "cross_entropy": {"label_smoothing": [0.0, 0.1, 0.3]},
    "class_balanced": {"class_counts": [[100, 10]], "gamma": [0.0, 2.0]},
    "ldam": {"class_counts": [[10, 100], [100, 10]]},
    "tukey_biweight": {"c": [2.0, 4.685]},
    "wing": {"w": [5.0, 10.0]},
}


#: Fixed tensor hyper-parameters (not expressible with ``--param``), with the label of their curve.
FIXED: dict[str, tuple[dict[str, Any], str]] = {
    "generalized_wasserstein_dice": ({"distance_matrix": torch.tensor([[0.0, 1.0], [1.0, 0.0]])},
                                     "distance_matrix = [[0, 1], [1, 0]]"),
}


class Figure:
    """Curves plus how to label them; ``command`` is the CLI line that draws the same, if there is one."""

    def __init__(self, curves: LossCurves, var: str, caption: str, command: str | None = None) -> None:
        self.curves, self.var, self.caption, self.command = curves, var, caption, command


def _registry_figure(spec: lf.LossSpec) -> Figure | None:
    try:
        axis_of(spec)
    except ValueError:
        return None
    params = PARAMS.get(spec.name, {})
    fixed, fixed_label = FIXED.get(spec.name, ({}, ""))
    lo, hi = (-3.0, 3.0) if spec.input_kind == "real" else (-4.0, 4.0)
    try:
        curves = loss_curves(spec.name, {**params, **{k: [v] for k, v in fixed.items()}}, lo=lo, hi=hi, points=241)
    except ValueError:
        return None
    if fixed:
        curves.curves = [(fixed_label, *c[1:]) for c in curves.curves]
    var = "ŷ" if curves.axis.startswith("residual") else ("z_y" if "z_y" in curves.axis else "z")
    arg = " ".join(f"--param {k}={','.join(str(v) for v in vs).replace(' ', '')}" for k, vs in params.items())
    what = "residual" if curves.axis.startswith("residual") else "margin"
    command = None if fixed else f"lossforge plot {spec.name}" + (f" {arg}" if arg else "")
    return Figure(curves, var, f"Loss and gradient against the {what}, one sample per point.", command)


# --- scenarios: x -> the loss's positional arguments, evaluated one point at a time -------------------

Scenario = Callable[[Tensor], tuple[Any, ...]]
F64 = torch.float64


def _sweep(spec: lf.LossSpec, make: Scenario, xs: Tensor, settings: list[dict[str, Any]], axis: str, *,
           batched: bool = True) -> LossCurves:
    """Loss and gradient along ``xs``; ``batched``: ``make`` builds one sample per point (``reduction="none"``),
    else ``make`` builds a whole batch for one point and the loss is evaluated once per point."""
    out = LossCurves(name=spec.name, x=xs, axis=axis)
    for kwargs in settings:
        if batched:
            x = xs.clone().requires_grad_(True)
            u = spec.function(*make(x), reduction="none", **kwargs).reshape(len(xs), -1).mean(dim=1)
            (g,) = torch.autograd.grad(u.sum(), x, allow_unused=True)
            values, grads = u.detach(), torch.zeros_like(xs) if g is None else g
        else:
            vals, grad_list = [], []
            for x0 in xs.tolist():
                x = torch.tensor(x0, dtype=F64, requires_grad=True)
                u = spec.function(*make(x), **kwargs)
                (g,) = torch.autograd.grad(u, x, allow_unused=True)
                vals.append(float(u.detach()))
                grad_list.append(0.0 if g is None else float(g))
            values, grads = torch.tensor(vals, dtype=F64), torch.tensor(grad_list, dtype=F64)
        label = ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults"
        out.curves.append((label, kwargs, values, grads))
    return out


def _box(shift: Tensor) -> tuple[Tensor, Tensor]:
    """2x2 boxes slid by ``shift`` along x, 0.5 higher than a 2x2 target at the origin (no box is aligned)."""
    zero = torch.zeros_like(shift)
    pred = torch.stack([shift, zero + 0.5, shift + 2.0, zero + 2.5], dim=1)
    target = torch.tensor([0.0, 0.0, 2.0, 2.0], dtype=F64).expand(len(shift), 4)
    return pred, target


def _embeddings(theta: Tensor) -> tuple[Tensor, Tensor]:
    """Two classes of two unit 2-D embeddings each: class 0 at ±0.2 rad, class 1 at theta ± 0.2 rad."""
    angles = torch.stack([theta * 0 - 0.2, theta * 0 + 0.2, theta - 0.2, theta + 0.2])
    emb = torch.stack([angles.cos(), angles.sin()], dim=1)
    return emb, torch.tensor([0, 0, 1, 1])


def _image(sigma: Tensor, size: int = 64) -> tuple[Tensor, Tensor]:
    """A smooth deterministic image in [0, 1], and the same plus ``sigma`` times fixed noise (one per sigma)."""
    g = torch.Generator().manual_seed(0)
    u = torch.linspace(0, 1, size, dtype=F64)
    clean = (0.5 + 0.25 * torch.sin(6.0 * u)[:, None] * torch.cos(4.0 * u)[None, :]
             + 0.2 * (u[:, None] > 0.5)).clamp(0, 1)[None, None]
    noise = torch.randn(clean.shape, generator=g, dtype=F64)
    return clean + sigma[:, None, None, None] * noise, clean.expand(len(sigma), 1, size, size)


def _two_items(m: Tensor) -> tuple[Tensor, Tensor]:
    """Lists of two items, relevance (1, 0), scores (m, 0): m is the score margin of the relevant item."""
    return torch.stack([m, torch.zeros_like(m)], dim=1), torch.tensor([1.0, 0.0], dtype=F64).expand(len(m), 2)


def _preference(m: Tensor) -> tuple[Tensor, Tensor]:
    """Chosen and rejected sequence log-probabilities whose difference is m."""
    return -2.0 + m / 2, -2.0 - m / 2


def _scenario(spec: lf.LossSpec) -> Figure | None:
    n, fam = spec.name, spec.family

    def grid(lo: float, hi: float, points: int = 161) -> Tensor:
        return torch.linspace(lo, hi, points, dtype=F64)

    if fam == "boxes":
        curves = _sweep(spec, _box, grid(-4.0, 4.0), [{}],
                        "horizontal offset of a 2x2 box from its target (0.5 off vertically)")
        return Figure(curves, "offset", "A predicted box slid horizontally past its target: "
                      "the loss keeps a gradient without overlap only if it has a distance term.")
    if n in ("listnet", "listmle", "approx_ndcg", "pairwise_logistic"):
        curves = _sweep(spec, _two_items, grid(-4.0, 4.0), [{}],
                        "score margin  s_relevant − s_other  (a list of two items)")
        return Figure(curves, "m", "A list of two items, one relevant: loss and gradient against the score margin.")
    if n == "bpr":
        curves = _sweep(spec, lambda m: (m, torch.zeros_like(m)), grid(-4.0, 4.0), [{}],
                        "score margin  s_pos − s_neg")
        return Figure(curves, "m", "One (positive, negative) pair: loss and gradient against the score margin.")
    if n == "margin_ranking":
        curves = _sweep(spec, lambda m: (m, torch.zeros_like(m), torch.ones_like(m)), grid(-4.0, 4.0),
                        [{"margin": 0.0}, {"margin": 1.0}], "score margin  x1 − x2  (target +1)")
        return Figure(curves, "m", "One pair that should rank x1 first: loss and gradient against the score margin.")
    positional = [p for p in inspect.signature(spec.function).parameters.values() if p.kind == p.POSITIONAL_ONLY]
    if fam == "metric" and spec.target_kind == "labels" and len(positional) == 2:
        curves = _sweep(spec, _embeddings, grid(0.0, math.pi, 91), [{}],
                        "angle θ between the two classes (radians; unit 2-D embeddings)", batched=False)
        return Figure(curves, "θ", "Four unit embeddings, two per class, each class 0.4 rad wide: "
                      "loss and gradient as the classes move apart.")
    if n == "cosine_embedding":
        def pair(theta: Tensor, y: float) -> tuple[Tensor, ...]:
            a = torch.stack([torch.ones_like(theta), torch.zeros_like(theta)], dim=1)
            b = torch.stack([theta.cos(), theta.sin()], dim=1)
            return a, b, torch.full_like(theta, y)
        xs = grid(0.0, math.pi, 121)
        pos = _sweep(spec, lambda t: pair(t, 1.0), xs, [{}], "angle θ between the two embeddings (radians)")
        neg = _sweep(spec, lambda t: pair(t, -1.0), xs, [{"margin": 0.5}], pos.axis)
        pos.curves = [("similar pair (y = +1)", *pos.curves[0][1:]),
                      ("dissimilar pair (y = −1), margin=0.5", *neg.curves[0][1:])]
        return Figure(pos, "θ", "One pair of 2-D embeddings at angle θ.")
    if fam == "image":
        size = 176 if n == "ms_ssim" else 64
        only_pred = n == "total_variation"
        curves = _sweep(spec, lambda s: _image(s, size)[:1] if only_pred else _image(s, size),
                        grid(0.0, 0.5, 26), [{}], "standard deviation σ of the noise added to the image")
        what = "plus" if only_pred else "against itself plus"
        return Figure(curves, "σ", f"A smooth {size}x{size} test image {what} Gaussian noise of "
                      "standard deviation σ.")
    if n in ("dpo", "ipo", "simpo", "orpo"):
        curves = _sweep(spec, _preference, grid(-4.0, 4.0), [{}],
                        "log-probability margin  log π(chosen) − log π(rejected)")
        return Figure(curves, "m", "One preference pair (no reference model): loss and gradient against "
                      "the policy's margin.")
    if n in ("kl_div", "js_div"):
        def dist(m: Tensor) -> tuple[Tensor, Tensor]:
            logp = torch.log_softmax(torch.stack([m, torch.zeros_like(m)], dim=1), dim=1)
            return logp, torch.tensor([0.75, 0.25], dtype=F64).expand(len(m), 2)
        curves = _sweep(spec, dist, grid(-4.0, 4.0), [{}],
                        "logit margin z₁ − z₂ of the model's 2-class distribution")
        return Figure(curves, "z", "The model's distribution softmax(z₁, z₂) against the target (0.75, 0.25): "
                      "zero at z₁ − z₂ = log 3.")
    if fam == "metric" and spec.target_kind == "index" and len(positional) == 3:  # learnable centres or proxies
        def to_centre(theta: Tensor, per_class: bool) -> tuple[Tensor, ...]:
            theta = theta.reshape(-1)
            emb = torch.stack([theta.cos(), theta.sin()], dim=1)
            centres = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=F64)
            if per_class:  # (C, K, D) with K = 1 centre per class
                centres = centres[:, None, :]
            return emb, torch.zeros(len(theta), dtype=torch.int64), centres
        batched = spec.unit == "sample"
        axis = "angle θ between an embedding and its class centre (radians)"
        try:
            curves = _sweep(spec, lambda t: to_centre(t, False), grid(0.0, math.pi, 121), [{}], axis, batched=batched)
        except (ValueError, RuntimeError):
            curves = _sweep(spec, lambda t: to_centre(t, True), grid(0.0, math.pi, 121), [{}], axis, batched=batched)
        return Figure(curves, "θ", "A unit 2-D embedding of class 0 at angle θ from its centre (1, 0); the other "
                      "centres at 90° and 180°.")
    if n in ("mmd", "sinkhorn", "sliced_wasserstein"):
        cloud = torch.randn(24, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
        def shifted(t: Tensor) -> tuple[Tensor, Tensor]:
            return cloud, cloud + torch.stack([t, torch.zeros_like(t)])
        settings = [{"seed": 0}] if n == "sliced_wasserstein" else [{}]
        curves = _sweep(spec, shifted, grid(-3.0, 3.0, 31), settings,
                        "shift t of a copy of a 2-D point cloud along x", batched=False)
        return Figure(curves, "t", "24 points against the same points shifted by t.")
    if n in ("barlow_twins", "vicreg", "clip", "info_nce"):
        g = torch.Generator().manual_seed(0)
        base = torch.randn(32, 8, generator=g, dtype=F64)
        noise = torch.randn(32, 8, generator=g, dtype=F64)
        def views(sigma: Tensor) -> tuple[Tensor, ...]:
            a, b = base, base + sigma * noise
            if n == "clip":
                return a, b, torch.tensor(math.log(1 / 0.07), dtype=F64)
            return a, b
        curves = _sweep(spec, views, grid(0.0, 2.0, 41), [{}],
                        "standard deviation σ of the noise between the two views", batched=False)
        return Figure(curves, "σ", "A batch of 32 embeddings (dimension 8) against a second view of it with noise of "
                      "standard deviation σ.")
    if n in ("distillation", "linear_cross_entropy", "linear_distillation"):
        eye = torch.eye(2, dtype=F64)
        def two(m: Tensor) -> Tensor:
            return torch.stack([m, torch.zeros_like(m)], dim=1)
        if n == "distillation":
            make: Scenario = lambda m: (two(m), two(torch.full_like(m, 2.0)))  # noqa: E731
            settings: list[dict[str, Any]] = [{"temperature": 1.0}, {"temperature": 4.0}]
            axis = "student margin z₁ − z₂ (teacher margin 2)"
        elif n == "linear_cross_entropy":
            make = lambda m: (two(m), eye, torch.zeros(len(m), dtype=torch.int64))  # noqa: E731
            settings, axis = [{}], "margin of the target's logit (hidden state (m, 0), identity head)"
        else:
            make = lambda m: (two(m), eye, two(torch.full_like(m, 2.0)), eye)  # noqa: E731
            settings, axis = [{}], "student margin (teacher margin 2; identity heads)"
        curves = _sweep(spec, make, grid(-4.0, 6.0, 161), settings, axis)
        return Figure(curves, "m", "Two classes: loss and gradient against the student's (or the model's) margin.")
    if n == "jsd_consistency":
        def two_views(m: Tensor) -> tuple[Tensor]:
            zero = torch.zeros_like(m)
            return (torch.stack([torch.stack([m, zero], dim=1), torch.stack([zero, zero], dim=1)]),)
        curves = _sweep(spec, two_views, grid(-6.0, 6.0, 161), [{}],
                        "margin z₁ − z₂ of one view (the other view uniform)")
        return Figure(curves, "m", "Two views of a sample, one with logits (m, 0), one uniform.")
    if n == "kto":
        xs = grid(-4.0, 4.0, 161)
        curves = LossCurves(name=n, x=xs, axis="log-ratio  log π(y) − log π_ref(y)")
        for desirable in (True, False):
            c = _sweep(spec, lambda m, d=desirable: (m, torch.zeros_like(m), torch.full(m.shape, d)), xs, [{}],
                       curves.axis)
            curves.curves.append(("desirable" if desirable else "undesirable", {}, c.curves[0][2], c.curves[0][3]))
        return Figure(curves, "m", "One response, desirable or not: loss and gradient against its log-ratio "
                      "to the reference model.")
    if n == "zlpr":
        curves = _sweep(spec, lambda m: (torch.stack([m, -m], dim=1), torch.tensor([1.0, 0.0], dtype=F64).expand(
            len(m), 2)), grid(-4.0, 4.0), [{}], "margin m: logits (m, −m) for labels (1, 0)")
        return Figure(curves, "m", "Two labels, one positive: the positive's logit m and the negative's −m.")
    if n == "soft_f1":
        target = torch.tensor([[1.0], [1.0], [0.0], [0.0]], dtype=F64)
        curves = _sweep(spec, lambda m: ((2 * target - 1) * m, target), grid(-4.0, 4.0, 81), [{}],
                        "margin m: logit +m for the positives, −m for the negatives", batched=False)
        return Figure(curves, "m", "A batch of two positives and two negatives of one class, each scored with "
                      "margin m.")
    if n == "poisson_nll":
        curves = _sweep(spec, lambda r: (r, torch.full_like(r, 3.0)), grid(-2.0, 4.0, 121), [{}],
                        "predicted log-rate (target count 3)")
        return Figure(curves, "log λ", "A Poisson target of 3 counts: minimum at log 3.")
    if n == "gaussian_nll":
        xs = grid(-3.0, 3.0, 121)
        curves = LossCurves(name=n, x=xs, axis="residual  ŷ − y")
        for var in (0.25, 1.0, 4.0):
            c = _sweep(spec, lambda r, v=var: (r, torch.zeros_like(r), torch.full_like(r, v)), xs, [{}], curves.axis)
            curves.curves.append((f"var={var}", {}, c.curves[0][2], c.curves[0][3]))
        return Figure(curves, "ŷ", "Residual against the target, for three predicted variances.")
    if n == "ctc":
        def frames(m: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
            logits = torch.stack([torch.zeros_like(m), m, torch.zeros_like(m)], dim=1)  # blank, a, b
            log_probs = torch.log_softmax(logits, dim=1).unsqueeze(0).expand(3, len(m), 3)  # (T=3, N, C)
            ones = torch.ones(len(m), dtype=torch.int64)
            return log_probs, ones.unsqueeze(1), 3 * ones, ones
        curves = _sweep(spec, frames, grid(-4.0, 6.0), [{}], "logit m of the label 'a' in every frame (others 0)")
        return Figure(curves, "m", "Three frames over {blank, a, b}, target \"a\": every frame gives 'a' the logit m; "
                      "the loss sums over the 6 alignments that read \"a\".")
    if n == "margin":
        def with_beta(theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            emb, labels = _embeddings(theta)
            return emb, labels, torch.tensor([1.2], dtype=F64)
        curves = _sweep(spec, with_beta, grid(0.0, math.pi, 61), [{"margin": 0.2}], "angle θ between the classes "
                        "(radians)", batched=False)
        return Figure(curves, "θ", "Two classes of two unit 2-D embeddings, the second class θ away from the "
                      "first (boundary β = 1.2). The jumps are average_nonzero's divisor changing as hinges "
                      "switch off.")
    return None


def figure_for(spec: lf.LossSpec) -> Figure | None:
    """The figure of a loss's page, or ``None`` when no 1-D view of it is meaningful."""
    return _registry_figure(spec) or _scenario(spec)


def render(fig: Figure, path: Path | io.BytesIO) -> Path | io.BytesIO:
    """Two panels, loss and gradient, as ``lossforge plot`` draws them; a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    mfig = MplFigure(figsize=(10, 3.8), layout="constrained")
    FigureCanvasAgg(mfig)
    ax_loss, ax_grad = mfig.subplots(1, 2)
    x = fig.curves.x.numpy()
    for label, _, values, grad in fig.curves.curves:
        ax_loss.plot(x, values.numpy(), label=label)
        ax_grad.plot(x, grad.numpy(), label=label)
    name = fig.curves.name
    ax_loss.set(title=f"{name}: loss", xlabel=fig.curves.axis, ylabel="loss")
    ax_grad.set(title=f"{name}: gradient", xlabel=fig.curves.axis, ylabel=f"∂loss/∂{fig.var}")
    for ax in (ax_loss, ax_grad):
        ax.xaxis.label.set_fontsize("small")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.axvline(0, color="black", linewidth=0.6)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    mfig.savefig(path, dpi=90, format="png")
    return path


@dataclass
class Drawn:
    """A loss's figure as the page needs it: the PNG, its axis and caption (``png=None``: no figure)."""

    name: str
    png: bytes | None = None
    axis: str = ""
    caption: str = ""
    command: str | None = None
    error: str | None = None


def draw(name: str) -> Drawn:
    """Compute and render the figure of one loss; a scenario that fails is reported, not raised."""
    try:
        fig = figure_for(lf.get_loss(name))
    except Exception as exc:  # a scenario that does not fit a new loss
        return Drawn(name, error=f"{type(exc).__name__}: {exc}")
    if fig is None:
        return Drawn(name)
    buf = io.BytesIO()
    render(fig, buf)
    return Drawn(name, buf.getvalue(), fig.curves.axis, fig.caption, fig.command)


def _one_thread() -> None:
    torch.set_num_threads(1)


def draw_all(names: Sequence[str], workers: int | None = None) -> list[Drawn]:
    """:func:`draw` for every name, in ``workers`` processes (default: ``$LOSSFORGE_DOCS_WORKERS`` or up to 2).

    The processes are spawned (not forked from a process that has torch's thread pools) and each
    computes with one thread; the figures are small, so processes, not threads, are what helps.
    """
    if workers is None:
        workers = int(os.environ.get("LOSSFORGE_DOCS_WORKERS", min(2, os.cpu_count() or 1)))
    if workers <= 1 or len(names) < 8:
        return [draw(n) for n in names]
    here = str(Path(__file__).resolve().parent)  # the workers import this module by name
    old_path = sys.path.copy()
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_one_thread) as pool:
            return list(pool.map(draw, names, chunksize=4))
    except BrokenProcessPool:  # a worker could not start (an unusual __main__, a sandbox): draw here
        return [draw(n) for n in names]
    finally:
        sys.path[:] = old_path
