r"""The four tasks of ``lossforge train``: which losses fit, the model, the targets, the metrics.

================  ==============================  ======================  ===============================
task              losses (input → target kinds)   model                   test metrics
================  ==============================  ======================  ===============================
classification    logits → index, binary, probs,  :class:`SmallCNN`       accuracy, macro-F1, expected
                  sign                                                    calibration error (ECE)
segmentation      logits → index, binary          :class:`TinyUNet`       Dice, IoU (foreground classes)
regression        real → real                     :class:`MLP`            MAE, RMSE
embedding         embeddings → labels, index      :class:`SmallCNN`       recall@1
================  ==============================  ======================  ===============================

The targets follow the loss's ``target_kind`` from the registry: class indices as they
are for ``index``/``labels``, one-hot for ``binary``/``probs`` (class dimension 1), ``±1``
one-hot for ``sign``. Arguments a loss cannot be built without and that the data knows
(``num_classes``, ``embedding_dim``, ``class_counts``) are filled in when the spec leaves
them out, so ``class_balanced`` and ``arcface`` work as plain names.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import lossforge as lf

from .._core.spec import parse
from .datasets import DATASETS, TaskData
from .metrics import confusion_matrix, expected_calibration_error, macro_f1, recall_per_class
from .model import SmallCNN

__all__ = [
    "EMBEDDING_DIM", "MLP", "TASKS", "Task", "TinyUNet", "adapt_target", "build_criterion", "evaluate", "headline",
    "infer_task", "make_model", "predict", "recall_at_1", "segmentation_scores", "spec_terms", "target_kind",
]

#: Output size of the embedding model.
EMBEDDING_DIM = 32


@dataclass(frozen=True)
class Task:
    """One task: the loss kinds it takes, its default data, its metrics and training defaults.

    Attributes:
        headline: ``(key, title, higher_is_better)`` of the metrics shown in tables and plots.
    """

    name: str
    input_kind: str
    target_kinds: tuple[str, ...]
    default_data: str
    headline: tuple[tuple[str, str, bool], ...]
    epochs: int
    batch_size: int
    lr: float


TASKS: dict[str, Task] = {
    "classification": Task("classification", "logits", ("index", "binary", "probs", "sign"), "digits",
                           (("accuracy", "accuracy", True), ("macro_f1", "macro-F1", True),
                            ("ece", "calibration error (ECE)", False)), 20, 32, 1e-3),
    "segmentation": Task("segmentation", "logits", ("index", "binary"), "shapes",
                         (("dice", "Dice (foreground)", True), ("iou", "IoU (foreground)", True),
                          ("empty_correct", "empty images kept empty", True)), 20, 16, 3e-3),
    "regression": Task("regression", "real", ("real",), "regression-outliers",
                       (("mae", "MAE", False), ("rmse", "RMSE", False)), 150, 64, 1e-3),
    "embedding": Task("embedding", "embeddings", ("labels", "index"), "digits-unseen",
                      (("recall_at_1", "recall@1", True),), 20, 64, 1e-3),
}


# ---- models -------------------------------------------------------------------------------------

class MLP(nn.Module):
    """Two hidden layers with ReLU; one output per sample, returned as ``(N,)``.

    Examples:
        >>> MLP(8)(torch.zeros(5, 8)).shape
        torch.Size([5])
    """

    def __init__(self, features: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class TinyUNet(nn.Module):
    """A two-level U-Net: logits ``(N, num_classes, H, W)`` for images ``(N, C, H, W)``, H and W divisible by 4.

    Each level is two 3x3 convolutions with batch normalisation and ReLU; the decoder upsamples
    (nearest) and concatenates the encoder's features of the same size.

    Examples:
        >>> TinyUNet(1, 4)(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 4, 32, 32])
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 12) -> None:
        super().__init__()
        w = width
        self.enc1, self.enc2, self.mid = _block(in_channels, w), _block(w, 2 * w), _block(2 * w, 4 * w)
        self.dec2, self.dec1 = _block(6 * w, 2 * w), _block(3 * w, w)
        self.head = nn.Conv2d(w, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        m = self.mid(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(m, scale_factor=2.0), e2], dim=1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0), e1], dim=1))
        return self.head(d1)


def make_model(task: str, data: TaskData) -> nn.Module:
    """The task's model for ``data`` (initialised from torch's global generator)."""
    if task == "classification":
        return SmallCNN(data.input_shape, data.num_classes)
    if task == "embedding":
        return SmallCNN(data.input_shape, EMBEDDING_DIM)
    if task == "segmentation":
        return TinyUNet(data.input_shape[0], data.num_classes)
    return MLP(data.input_shape[0])


# ---- losses -------------------------------------------------------------------------------------

def spec_terms(spec: str) -> list[tuple[float, str, dict[str, Any]]]:
    """``[(coefficient, registry name, kwargs), ...]`` of a spec string (the parser of :func:`lossforge.build`)."""
    return [(coef, lf.get_loss(name).name, kwargs) for coef, name, kwargs in parse(spec)]


def infer_task(specs: list[str], task: str | None, data: str | None) -> str:
    """The task from ``--task``, else from ``--data``, else from the first loss's family and kinds.

    Raises:
        ValueError: If ``--task`` and ``--data`` disagree, or a spec does not parse.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}.")
    if data is not None and data in DATASETS:
        tasks = DATASETS[data].tasks
        if task is not None:
            if task not in tasks:
                raise ValueError(f"data {data!r} serves the task(s) {', '.join(tasks)}, not {task!r}.")
            return task
        if len(tasks) == 1:
            return tasks[0]
        guessed = _task_of(spec_terms(specs[0])[0][1]) if specs else None
        return guessed if guessed in tasks else tasks[0]
    if task is not None:
        return task
    guessed = _task_of(spec_terms(specs[0])[0][1]) if specs else None
    return guessed or "classification"


def _task_of(name: str) -> str | None:
    spec = lf.get_loss(name)
    if spec.family == "segmentation":
        return "segmentation"
    for key, task in TASKS.items():
        if spec.input_kind == task.input_kind and spec.target_kind in task.target_kinds:
            return key
    return None


def _check_kinds(name: str, task: Task) -> lf.LossSpec:
    spec = lf.get_loss(name)
    if spec.input_kind != task.input_kind or spec.target_kind not in task.target_kinds:
        fits = [t.name for t in TASKS.values()
                if spec.input_kind == t.input_kind and spec.target_kind in t.target_kinds]
        hint = f" Hint: --task {fits[0]}." if fits else " No task of lossforge train takes it."
        raise ValueError(f"loss {name!r} takes {spec.input_kind} → {spec.target_kind}; the {task.name} task "
                         f"needs {task.input_kind} → {' | '.join(task.target_kinds)}.{hint}")
    return spec


def _context(task: Task, data: TaskData) -> dict[str, Any]:
    ctx: dict[str, Any] = {"embedding_dim": EMBEDDING_DIM} if task.name == "embedding" else {}
    if data.num_classes:
        ctx["num_classes"] = data.num_classes
        if task.name != "regression":
            labels = data.y_train.flatten()
            ctx["class_counts"] = torch.bincount(labels, minlength=data.num_classes).tolist()
    return ctx


def build_criterion(spec: str, task: str, data: TaskData) -> tuple[nn.Module, dict[str, dict[str, Any]]]:
    """Build ``spec`` for ``task``: check each term's kinds, fill in what the data knows.

    Returns the criterion and, per term, the arguments that were filled in.

    Raises:
        ValueError: For a spec that does not parse, an unknown name, a loss whose kinds the task
            cannot feed, or arguments the loss refuses.
    """
    t = TASKS[task]
    ctx = _context(t, data)
    entries: list[dict[str, Any]] = []
    filled: dict[str, dict[str, Any]] = {}
    for coef, name, kwargs in spec_terms(spec):
        loss = _check_kinds(name, t)
        added: dict[str, Any] = {}
        if loss.module is not None:
            params = inspect.signature(loss.module).parameters
            for key, param in params.items():
                if param.default is inspect.Parameter.empty and key not in kwargs and key in ctx:
                    added[key] = ctx[key]
        if added:
            filled[name] = {k: (f"[{len(v)} counts]" if k == "class_counts" else v) for k, v in added.items()}
        entries.append({"loss": name, "coef": coef, **kwargs, **added})
    return lf.build(entries), filled


def adapt_target(target: Tensor, kind: str, num_classes: int) -> Tensor:
    """Targets in the form a loss of ``target_kind`` ``kind`` takes (class dimension 1 for one-hot).

    Examples:
        >>> adapt_target(torch.tensor([0, 2]), "sign", 3)
        tensor([[ 1., -1., -1.],
                [-1., -1.,  1.]])
    """
    if kind in ("binary", "probs", "sign"):
        onehot = F.one_hot(target, num_classes).movedim(-1, 1).float()
        return onehot * 2 - 1 if kind == "sign" else onehot
    return target


def target_kind(criterion: nn.Module) -> str:
    """The target kind every term of ``criterion`` shares (``"index"`` for an unregistered module).

    Raises:
        ValueError: If the terms want targets of different kinds.
    """
    from .._core.registry import name_of

    modules = list(criterion.losses.values()) if isinstance(criterion, lf.WeightedSum) else [criterion]
    kinds = set()
    for m in modules:
        name = name_of(m)
        kinds.add(lf.get_loss(name).target_kind if name else "index")
    kinds = {"index" if k == "labels" else k for k in kinds}
    if len(kinds) > 1:
        raise ValueError(f"the terms of a sum must take targets of one kind, got {', '.join(sorted(kinds))}.")
    return kinds.pop()


# ---- metrics ------------------------------------------------------------------------------------

def predict(model: nn.Module, x: Tensor, batch_size: int = 256) -> Tensor:
    """The model's outputs on ``x`` in eval mode, without gradients, in batches."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def segmentation_scores(pred: Tensor, target: Tensor, num_classes: int) -> dict[str, Any]:
    """Dice and IoU of each class over the whole test set, their means over the foreground classes (1..C-1),
    pixel accuracy, and the fraction of empty images (only background) predicted empty.

    Examples:
        >>> t = torch.tensor([[[0, 1], [1, 1]], [[0, 0], [0, 0]]])
        >>> p = torch.tensor([[[0, 1], [1, 0]], [[0, 0], [0, 1]]])
        >>> s = segmentation_scores(p, t, 2)
        >>> round(s["dice"], 4), round(s["iou"], 4), s["empty_correct"]
        (0.6667, 0.5, 0.0)
    """
    inter = torch.stack([((pred == c) & (target == c)).sum() for c in range(num_classes)]).double()
    p_sum = torch.stack([(pred == c).sum() for c in range(num_classes)]).double()
    t_sum = torch.stack([(target == c).sum() for c in range(num_classes)]).double()
    dice = torch.where(p_sum + t_sum > 0, 2 * inter / (p_sum + t_sum).clamp_min(1), torch.ones_like(inter))
    union = p_sum + t_sum - inter
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter))
    empty = target.flatten(1).amax(1) == 0
    kept = (pred.flatten(1).amax(1) == 0) & empty
    return {
        "dice": float(dice[1:].mean()),
        "iou": float(iou[1:].mean()),
        "pixel_accuracy": float((pred == target).double().mean()),
        "empty_correct": float(kept.sum() / empty.sum().clamp_min(1)),
        "dice_per_class": dice.tolist(),
        "iou_per_class": iou.tolist(),
    }


def recall_at_1(embeddings: Tensor, labels: Tensor) -> float:
    """Leave-one-out recall@1: the share of samples whose nearest other sample (cosine) has their label.

    Examples:
        >>> e = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> recall_at_1(e, torch.tensor([0, 0, 1, 0]))
        0.5
    """
    e = F.normalize(embeddings.double(), dim=1)
    sim = e @ e.T
    sim.fill_diagonal_(float("-inf"))
    return float((labels[sim.argmax(dim=1)] == labels).double().mean())


def evaluate(task: str, model: nn.Module, data: TaskData) -> dict[str, Any]:
    """The task's test metrics (see the module docstring); per-class lists are included."""
    out = predict(model, data.x_test)
    y = data.y_test
    if task == "classification":
        probs = torch.softmax(out.double(), dim=1)
        cm = confusion_matrix(probs.argmax(dim=1), y, data.num_classes)
        recall = recall_per_class(cm)
        metrics: dict[str, Any] = {
            "accuracy": float(cm.diagonal().sum() / cm.sum()),
            "macro_f1": macro_f1(cm),
            "ece": expected_calibration_error(probs, y),
        }
        if data.rare_classes:
            rare = list(data.rare_classes)
            common = [c for c in range(data.num_classes) if c not in rare]
            metrics["rare_recall"] = float(recall[rare].mean())
            metrics["common_recall"] = float(recall[common].mean())
        metrics["recall_per_class"] = recall.tolist()
        return metrics
    if task == "segmentation":
        return segmentation_scores(out.argmax(dim=1), y, data.num_classes)
    if task == "regression":
        err = out.double() - y.double()
        return {"mae": float(err.abs().mean()), "rmse": float(err.pow(2).mean().sqrt()),
                "median_abs_error": float(err.abs().median())}
    return {"recall_at_1": recall_at_1(out, y)}


def headline(task: str, data: TaskData) -> list[tuple[str, str, bool]]:
    """``(key, title, higher_is_better)`` of the metrics to show for ``task`` on ``data``."""
    rows = list(TASKS[task].headline)
    if task == "classification" and data.rare_classes:
        span = f"{data.rare_classes[0]}-{data.rare_classes[-1]}"
        rows[2:2] = [("rare_recall", f"recall, rare classes {span}", True),
                     ("common_recall", "recall, common classes", True)]
    return rows
