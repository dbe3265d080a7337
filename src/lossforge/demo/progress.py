"""Training progress: a rich progress bar per epoch when rich is installed, plain lines otherwise."""

from __future__ import annotations

import sys
from typing import Any, Protocol

from ._deps import optional

__all__ = ["Progress", "make_progress"]


class Progress(Protocol):
    """What the training loop reports to."""

    def start(self, label: str, epochs: int, steps: int) -> None:
        """A run begins: ``epochs`` epochs of ``steps`` steps."""

    def begin_epoch(self, epoch: int) -> None:
        """Epoch ``epoch`` (1-based) begins."""

    def step(self) -> None:
        """One optimisation step is done."""

    def end_epoch(self, epoch: int, summary: str) -> None:
        """Epoch ``epoch`` is done; ``summary`` is its one-line result."""

    def finish(self) -> None:
        """The run is done."""


class _Silent:
    def start(self, label: str, epochs: int, steps: int) -> None:
        pass

    def begin_epoch(self, epoch: int) -> None:
        pass

    def step(self) -> None:
        pass

    def end_epoch(self, epoch: int, summary: str) -> None:
        pass

    def finish(self) -> None:
        pass


class _Plain(_Silent):
    """One text line per epoch, with a bar of the run so far, on stderr."""

    def __init__(self, width: int = 20) -> None:
        self.width = width
        self.label, self.epochs = "", 0

    def start(self, label: str, epochs: int, steps: int) -> None:
        self.label, self.epochs = label, epochs

    def end_epoch(self, epoch: int, summary: str) -> None:
        filled = round(self.width * epoch / max(self.epochs, 1))
        bar = "#" * filled + "." * (self.width - filled)
        digits = len(str(self.epochs))
        print(f"{self.label} [{bar}] epoch {epoch:>{digits}}/{self.epochs}  {summary}", file=sys.stderr, flush=True)


class _Rich(_Silent):
    """A rich bar that fills once per epoch, with the last epoch's result beside it."""

    def __init__(self, progress_module: Any) -> None:
        self._mod = progress_module
        self._bar: Any = None
        self._task: Any = None
        self.label, self.epochs, self.steps = "", 0, 0

    def start(self, label: str, epochs: int, steps: int) -> None:
        from rich.console import Console

        mod = self._mod
        self.label, self.epochs, self.steps = label, epochs, steps
        self._bar = mod.Progress(
            mod.TextColumn("{task.description}"), mod.BarColumn(), mod.MofNCompleteColumn(),
            mod.TimeElapsedColumn(), mod.TextColumn("{task.fields[summary]}"),
            console=Console(stderr=True),
        )
        self._bar.start()
        self._task = self._bar.add_task(label, total=steps, summary="")

    def begin_epoch(self, epoch: int) -> None:
        digits = len(str(self.epochs))
        self._bar.reset(self._task, total=self.steps,
                        description=f"{self.label} epoch {epoch:>{digits}}/{self.epochs}")

    def step(self) -> None:
        self._bar.advance(self._task)

    def end_epoch(self, epoch: int, summary: str) -> None:
        self._bar.update(self._task, summary=summary)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def make_progress(kind: str = "auto") -> Progress:
    """``"auto"``, ``"rich"``, ``"plain"`` or ``"none"``.

    ``"auto"`` is rich's live bar when rich is installed and stderr is a terminal, else
    plain lines (which read well in logs and CI output).
    """
    if kind not in ("auto", "rich", "plain", "none"):
        raise ValueError(f"make_progress: kind must be one of ('auto', 'rich', 'plain', 'none'), got {kind!r}.")
    if kind == "none":
        return _Silent()
    if kind == "rich" or (kind == "auto" and sys.stderr.isatty()):
        module = optional("rich.progress")
        if module is not None:
            return _Rich(module)
        if kind == "rich":
            from ._deps import require

            require("rich.progress", "for the progress bar")
    return _Plain()
