"""The figure of ``lossforge train`` and ``lossforge compare``: loss terms and test metrics per epoch, one PNG."""

from __future__ import annotations

from pathlib import Path

from ._deps import require
from .train import RunResult

__all__ = ["plot_runs"]

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray")
_STYLES = ("-", "--", ":", "-.")


def _band(values: list[list[float]]) -> tuple[list[float], list[float], list[float]]:
    columns = list(zip(*values))
    return ([sum(c) / len(c) for c in columns], [min(c) for c in columns], [max(c) for c in columns])


def plot_runs(runs: dict[str, list[RunResult]], metrics: list[tuple[str, str, bool]], path: Path, *,
              title: str) -> Path:
    """One panel of training loss, then one per metric (at most five), three to a row; one colour per spec.

    With one spec, the loss panel shows each term of a composite; with several, each spec's
    total. With several seeds per spec, lines are the mean and the band spans min to max.
    Drawn on a ``Figure`` with an Agg canvas: no global backend is changed, no display needed.

    Raises:
        MissingDependencyError: If matplotlib is not installed.
    """
    require("matplotlib", "to draw the curves")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = metrics[:5]
    panels = 1 + len(shown)
    cols = min(3, panels)
    rows = (panels + cols - 1) // cols
    fig = Figure(figsize=(4.8 * cols, 3.9 * rows + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(rows, cols, squeeze=False).flatten()
    for ax in grid[panels:]:
        ax.set_visible(False)
    axes = list(grid[:panels])
    ax_loss = axes[0]
    single = len(runs) == 1
    all_positive = True
    for (spec, rs), color in zip(runs.items(), _COLORS):
        epochs = [row["epoch"] for row in rs[0].history]
        terms = list(rs[0].history[0]["train_loss"])
        if single:
            names = terms if len(terms) > 2 else ["total"]
        else:
            names = ["total"]
        for term, style in zip(names, _STYLES):
            mean, lo, hi = _band([[row["train_loss"][term] for row in r.history] for r in rs])
            all_positive &= min(lo) > 0
            ax_loss.plot(epochs, mean, style, color=color, label=term if single else spec)
            if len(rs) > 1:
                ax_loss.fill_between(epochs, lo, hi, color=color, alpha=0.15)
        for ax, (key, _, _) in zip(axes[1:], shown):
            mean, lo, hi = _band([[row["test"][key] for row in r.history] for r in rs])
            ax.plot(epochs, mean, "-", marker="." if len(epochs) <= 40 else None, color=color, label=spec)
            if len(rs) > 1:
                ax.fill_between(epochs, lo, hi, color=color, alpha=0.15)
    ax_loss.set(title="Training loss" + (" by term" if single else " (total)") + ", epoch mean", xlabel="epoch",
                ylabel="loss", yscale="log" if all_positive else "linear")
    ax_loss.legend(fontsize="small")
    for ax, (_, name, higher) in zip(axes[1:], shown):
        ax.set(title=f"Test {name} ({'higher' if higher else 'lower'} is better)", xlabel="epoch", ylabel=name)
    if not single:
        axes[1].legend(fontsize="small")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    return Path(path)
