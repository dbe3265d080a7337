"""The training loop and the evaluation of one run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

import lossforge as lf

from .data import DigitsData
from .metrics import confusion_matrix, expected_calibration_error, macro_f1, recall_per_class
from .progress import Progress

__all__ = ["RunResult", "as_sum", "evaluate", "train_run"]


@dataclass
class RunResult:
    """What one training run produced.

    Attributes:
        key: Short name (``"builtin"``, ``"custom"``).
        label: Human-readable description of the criterion.
        criterion: ``repr`` of the criterion.
        history: One dict per epoch: ``epoch``, ``train_loss`` (mean of every term over the
            epoch), ``test_accuracy``, ``test_macro_f1``, ``test_rare_recall``.
        final: The test metrics after the last epoch and the last epoch's train loss terms.
    """

    key: str
    label: str
    criterion: str
    history: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)


def as_sum(criterion: nn.Module) -> lf.WeightedSum:
    """The criterion as a :class:`lossforge.WeightedSum`, so ``.terms`` works for a single loss too.

    Examples:
        >>> import lossforge as lf
        >>> logits, target = torch.zeros(2, 3), torch.tensor([0, 2])
        >>> sorted(as_sum(lf.CrossEntropyLoss()).terms(logits, target))
        ['cross_entropy', 'total']
    """
    return criterion if isinstance(criterion, lf.WeightedSum) else lf.WeightedSum([(criterion, 1.0)])


def _predict(model: nn.Module, x: Tensor, batch_size: int = 256) -> Tensor:
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train()
    return out


def evaluate(model: nn.Module, x: Tensor, y: Tensor, num_classes: int,
             rare_classes: tuple[int, ...]) -> dict[str, Any]:
    """Test metrics: accuracy, macro-F1, recall per class, on the rare and on the common classes, ECE."""
    probs = torch.softmax(_predict(model, x), dim=1)
    cm = confusion_matrix(probs.argmax(dim=1), y, num_classes)
    recall = recall_per_class(cm)
    rare = torch.tensor(rare_classes)
    common = torch.tensor([c for c in range(num_classes) if c not in rare_classes])
    return {
        "accuracy": float(cm.diagonal().sum() / cm.sum()),
        "macro_f1": macro_f1(cm),
        "rare_recall": float(recall[rare].mean()),
        "common_recall": float(recall[common].mean()),
        "ece": expected_calibration_error(probs, y),
        "recall_per_class": recall.tolist(),
        "confusion_matrix": cm.tolist(),
    }


def train_run(
    key: str,
    label: str,
    criterion: nn.Module,
    model: nn.Module,
    data: DigitsData,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: Progress,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Train ``model`` in place with Adam on ``criterion`` and evaluate it after every epoch.

    Every step: ``zero_grad`` -> forward -> ``criterion.terms`` -> ``backward`` on the total
    -> ``step``. The batch order comes from a generator seeded with ``seed``, so two runs with
    the same seed see the same batches.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"train_run: epochs and batch_size must be at least 1, got {epochs} and {batch_size}.")
    summed = as_sum(criterion)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    steps = (n + batch_size - 1) // batch_size
    result = RunResult(key=key, label=label, criterion=" ".join(repr(criterion).split()))
    progress.start(label, epochs, steps)
    try:
        model.train()
        for epoch in range(1, epochs + 1):
            progress.begin_epoch(epoch)
            sums: dict[str, float] = {}
            for idx in torch.randperm(n, generator=gen).split(batch_size):
                x, y = data.x_train[idx], data.y_train[idx]
                optimizer.zero_grad(set_to_none=True)
                terms = summed.terms(model(x), y)
                terms["total"].backward()
                optimizer.step()
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + float(value.detach()) * len(idx)
                progress.step()
            test = evaluate(model, data.x_test, data.y_test, data.num_classes, data.rare_classes)
            row = {
                "epoch": epoch,
                "train_loss": {k: v / n for k, v in sums.items()},
                "test_accuracy": test["accuracy"],
                "test_macro_f1": test["macro_f1"],
                "test_rare_recall": test["rare_recall"],
            }
            result.history.append(row)
            progress.end_epoch(epoch, f"loss {row['train_loss']['total']:.4f}  acc {test['accuracy']:.3f}  "
                                      f"rare recall {test['rare_recall']:.3f}")
            if on_epoch is not None:
                on_epoch(row)
    finally:
        progress.finish()
    result.final = {**test, "train_loss": result.history[-1]["train_loss"]}
    return result
