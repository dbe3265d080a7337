"""Classification metrics in plain torch: confusion matrix, recall, macro-F1, calibration error."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["confusion_matrix", "expected_calibration_error", "f1_per_class", "macro_f1", "recall_per_class"]


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """``M[i, j]`` = number of samples of true class ``i`` predicted as ``j`` (int64).

    Examples:
        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), 2)
        tensor([[1, 1],
                [0, 1]])
    """
    flat = target.long() * num_classes + pred.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    num, den = num.double(), den.double()
    return torch.where(den > 0, num / den.clamp_min(1), torch.zeros_like(num))


def recall_per_class(cm: Tensor) -> Tensor:
    """Recall of each class (0 for a class without samples)."""
    return _ratio(cm.diagonal(), cm.sum(dim=1))


def f1_per_class(cm: Tensor) -> Tensor:
    """F1 of each class; 0 where precision and recall are both 0 (scikit-learn's ``zero_division=0``)."""
    recall = recall_per_class(cm)
    precision = _ratio(cm.diagonal(), cm.sum(dim=0))
    return _ratio(2 * precision * recall, precision + recall)


def macro_f1(cm: Tensor) -> float:
    """Unweighted mean of the per-class F1 scores.

    Examples:
        >>> round(macro_f1(torch.tensor([[2, 0], [1, 1]])), 4)
        0.7333
    """
    return float(f1_per_class(cm).mean())


def expected_calibration_error(probs: Tensor, target: Tensor, bins: int = 15) -> float:
    """Expected calibration error of the top-1 prediction, with ``bins`` equal-width confidence bins.

    ``sum_b (n_b / N) |accuracy_b - confidence_b|``: 0 when the model's confidence
    matches its accuracy in every bin.

    Examples:
        >>> probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
        >>> round(expected_calibration_error(probs, torch.tensor([0, 1, 0, 1])), 4)
        0.35
    """
    confidence, pred = probs.max(dim=1)
    correct = (pred == target).double()
    confidence = confidence.double()
    index = (confidence * bins).long().clamp(0, bins - 1)
    acc_sum = torch.bincount(index, weights=correct, minlength=bins)
    conf_sum = torch.bincount(index, weights=confidence, minlength=bins)
    return float((acc_sum - conf_sum).abs().sum() / max(len(target), 1))
