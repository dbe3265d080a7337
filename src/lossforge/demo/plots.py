"""The demo's figure: both runs' curves, per epoch, in one PNG (matplotlib, Agg canvas)."""

from __future__ import annotations

from pathlib import Path

from ._deps import require
from .train import RunResult

__all__ = ["plot_curves"]

_STYLES = ("-", "--", ":", "-.")


def plot_curves(runs: list[RunResult], path: Path, *, title: str, rare_span: str) -> Path:
    """Three panels: train loss per term, test accuracy, test recall on the rare classes.

    Uses a ``Figure`` with an Agg canvas directly, so no global matplotlib backend is
    changed and no display is needed.

    Raises:
        MissingDependencyError: If matplotlib is not installed.
    """
    require("matplotlib", "to draw the curves")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_acc, ax_rare = fig.subplots(1, 3)
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    for run, color in zip(runs, colors):
        tag = run.label.split(" ", 1)[0] if run.label.startswith("(") else run.key
        epochs = [row["epoch"] for row in run.history]
        terms = list(run.history[0]["train_loss"])
        shown = terms if len(terms) > 2 else [t for t in terms if t != "total"]  # one term: total == term
        for term, style in zip(shown, _STYLES):
            ax_loss.plot(epochs, [row["train_loss"][term] for row in run.history], style, color=color,
                         label=f"{tag} {term}")
        ax_acc.plot(epochs, [row["test_accuracy"] for row in run.history], "-", color=color, marker=".",
                    label=run.label)
        ax_rare.plot(epochs, [row["test_rare_recall"] for row in run.history], "-", color=color, marker=".",
                     label=run.label)
    ax_loss.set(title="Training loss by term (epoch mean)", xlabel="epoch", ylabel="loss", yscale="log")
    ax_acc.set(title="Test accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    ax_rare.set(title=f"Test recall on the rare classes {rare_span}", xlabel="epoch", ylabel="mean recall",
                ylim=(0, 1.02))
    ax_loss.legend(fontsize="small")
    ax_acc.legend(fontsize="small", loc="lower right")
    ax_rare.legend(fontsize="small", loc="lower right")
    for ax in (ax_loss, ax_acc, ax_rare):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    return path
