"""Generated sample inputs per task, for checking a loss that is not registered.

``lossforge.check(my_loss, task="classification")`` calls ``my_loss`` with the samples of
:data:`TASKS` ``["classification"]``: small, seeded, the same on every run and every device. A task
also says what the checks may assume about the loss: which argument is the prediction and which the
target, what kind of values they hold, whether the loss is separable over the batch (every sample
contributes on its own, so the batch can be split), and the shape of a ``mask`` when the loss wants one.

Examples:
    >>> from lossforge.verify import TASKS, get_task
    >>> task = get_task("multiclass")
    >>> task.name, task.input_kind, task.target_kind
    ('classification', 'logits', 'index')
    >>> [tuple(a.shape) for a in task.samples(torch.float32, "cpu")[0].args]
    [(8, 5), (8,)]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._core.errors import did_you_mean
from .._core.registry import LossSpec
from .._core.samples import Sample, generator, rand, randint, randn

__all__ = ["TASKS", "TASK_ALIASES", "Task", "get_task", "task_of_spec"]

SampleFn = Callable[[torch.dtype, "torch.device | str"], list[Sample]]


@dataclass(frozen=True)
class Task:
    """What a task's loss takes and what the checks may assume about it.

    Attributes:
        name: The task's name (a key of :data:`TASKS`).
        inputs: One line: the positional arguments the loss is called with.
        input_kind, target_kind: As in :class:`~lossforge.LossSpec` (``"logits"``, ``"index"``...).
        separable: Whether the loss is a sum or mean of per-sample terms (batch-split additive).
        differentiable_args: Positions gradients are checked for (``None``: every float tensor).
        samples: ``(dtype, device) -> list[Sample]``; the first one is plain.
        mask_shape: ``args -> shape`` of a ``mask`` (or ``sample_weight``) for a loss that wants one
            and takes no ``reduction`` to reveal the shape of its unreduced loss.
    """

    name: str
    inputs: str
    input_kind: str
    target_kind: str
    separable: bool
    differentiable_args: tuple[int, ...] | None
    samples: SampleFn
    mask_shape: Callable[[tuple[Any, ...]], tuple[int, ...]]


def _target_shape(args: tuple[Any, ...]) -> tuple[int, ...]:
    return tuple(args[1].shape)


def _per_sample(args: tuple[Any, ...]) -> tuple[int, ...]:
    return tuple(args[0].shape[:1])


def _labels(n: int, classes: int, gen: torch.Generator, device: torch.device | str) -> Tensor:
    """``n`` class indices in which every class of ``range(classes)`` appears at least once (``n >= classes``)."""
    base = torch.arange(n) % classes
    return base[torch.randperm(n, generator=gen)].to(device)


def _classification(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, (n, c) in enumerate([(8, 5), (6, 3)]):
        g = generator(100 + seed)
        out.append(Sample((randn(n, c, gen=g, dtype=dtype, device=device, scale=2.0), _labels(n, c, g, device)),
                          name=f"logits ({n}, {c})"))
    return out


def _binary_target(shape: tuple[int, ...], gen: torch.Generator, dtype: torch.dtype,
                   device: torch.device | str) -> Tensor:
    flat = (torch.rand(shape, generator=gen) < 0.5).reshape(-1)
    flat[0], flat[-1] = True, False  # both classes present
    return flat.reshape(shape).to(device=device, dtype=dtype)


def _binary(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, n in enumerate([8, 5]):
        g = generator(110 + seed)
        out.append(Sample((randn(n, gen=g, dtype=dtype, device=device, scale=2.0),
                           _binary_target((n,), g, dtype, device)), name=f"logits ({n},)"))
    return out


def _multilabel(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, (n, c) in enumerate([(6, 4), (3, 2)]):
        g = generator(120 + seed)
        out.append(Sample((randn(n, c, gen=g, dtype=dtype, device=device, scale=2.0),
                           _binary_target((n, c), g, dtype, device)), name=f"logits ({n}, {c})"))
    return out


def _regression(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, shape in enumerate([(8,), (4, 3)]):
        g = generator(130 + seed)
        out.append(Sample((randn(*shape, gen=g, dtype=dtype, device=device),
                           randn(*shape, gen=g, dtype=dtype, device=device)), name=f"pred {shape}"))
    return out


def _segmentation(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, (n, c, h, w) in enumerate([(2, 3, 5, 6), (3, 2, 4, 4)]):
        g = generator(140 + seed)
        target = _labels(n * h * w, c, g, "cpu").reshape(n, h, w).to(device)
        out.append(Sample((randn(n, c, h, w, gen=g, dtype=dtype, device=device, scale=2.0), target),
                          name=f"logits ({n}, {c}, {h}, {w})"))
    return out


def _embedding(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, (n, d, classes) in enumerate([(8, 4, 4), (6, 3, 2)]):
        g = generator(150 + seed)
        out.append(Sample((randn(n, d, gen=g, dtype=dtype, device=device), _labels(n, classes, g, device)),
                          name=f"embeddings ({n}, {d})"))
    return out


def _boxes(n: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device | str) -> Tensor:
    xy = rand(n, 2, gen=gen, dtype=torch.float64, device="cpu", low=0.0, high=10.0)
    wh = rand(n, 2, gen=gen, dtype=torch.float64, device="cpu", low=1.0, high=5.0)
    return torch.cat([xy, xy + wh], dim=1).to(device=device, dtype=dtype)


def _box_pairs(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, n in enumerate([6, 4]):
        g = generator(160 + seed)
        target = _boxes(n, g, torch.float64, "cpu")
        shift = rand(n, 4, gen=g, dtype=torch.float64, device="cpu", low=-1.0, high=1.0)
        pred = target + shift
        pred[:, 2:] = torch.maximum(pred[:, 2:], pred[:, :2] + 0.5)  # well-formed, mostly overlapping
        out.append(Sample((pred.to(device=device, dtype=dtype), target.to(device=device, dtype=dtype)),
                          name=f"boxes ({n}, 4)"))
    return out


def _distribution(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, (n, c) in enumerate([(6, 5), (3, 4)]):
        g = generator(170 + seed)
        log_probs = randn(n, c, gen=g, dtype=torch.float64, device="cpu", scale=2.0).log_softmax(1)
        probs = randn(n, c, gen=g, dtype=torch.float64, device="cpu").softmax(1)
        out.append(Sample((log_probs.to(device=device, dtype=dtype), probs.to(device=device, dtype=dtype)),
                          name=f"log_probs ({n}, {c})"))
    return out


def _images(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, (n, c, h, w) in enumerate([(2, 1, 16, 16), (1, 3, 16, 16)]):
        g = generator(180 + seed)
        target = rand(n, c, h, w, gen=g, dtype=torch.float64, device="cpu")
        noise = randn(n, c, h, w, gen=g, dtype=torch.float64, device="cpu", scale=0.1)
        pred = (target + noise).clamp(0.0, 1.0)
        out.append(Sample((pred.to(device=device, dtype=dtype), target.to(device=device, dtype=dtype)),
                          name=f"images ({n}, {c}, {h}, {w})"))
    return out


def _ranking(dtype: torch.dtype, device: torch.device | str) -> list[Sample]:
    out = []
    for seed, (n, length) in enumerate([(4, 6), (2, 5)]):
        g = generator(190 + seed)
        relevance = randint(4, n, length, gen=g, device="cpu").to(device=device, dtype=dtype)
        out.append(Sample((randn(n, length, gen=g, dtype=dtype, device=device), relevance),
                          name=f"scores ({n}, {length})"))
    return out


#: The tasks ``lossforge.check`` generates inputs for.
TASKS: dict[str, Task] = {t.name: t for t in (
    Task("classification", "logits (N, C), class indices (N,) int64", "logits", "index", True, (0,),
         _classification, _target_shape),
    Task("binary", "logits (N,), targets (N,) of 0.0 and 1.0", "logits", "binary", True, (0,),
         _binary, _target_shape),
    Task("multilabel", "logits (N, C), targets (N, C) of 0.0 and 1.0", "logits", "binary", True, (0,),
         _multilabel, _target_shape),
    Task("regression", "predictions and targets of one shape, (N,) or (N, D)", "real", "real", True, None,
         _regression, _target_shape),
    Task("segmentation", "logits (N, C, H, W), class indices (N, H, W) int64", "logits", "index", False, (0,),
         _segmentation, _target_shape),
    Task("embedding", "embeddings (N, D), labels (N,) int64 (every label at least twice)", "embeddings", "labels",
         False, (0,), _embedding, _target_shape),
    Task("boxes", "predicted and target boxes (N, 4) as (x1, y1, x2, y2)", "boxes", "boxes", True, (0,),
         _box_pairs, _per_sample),
    Task("distribution", "log-probabilities (N, C), target probabilities (N, C)", "log_probs", "probs", True, (0,),
         _distribution, _per_sample),
    Task("image", "predicted and target images (N, C, H, W) in [0, 1]", "real", "real", True, None,
         _images, _target_shape),
    Task("ranking", "scores (N, L), relevance grades (N, L) in 0..3", "scores", "relevance", True, (0,),
         _ranking, _target_shape),
)}

#: Other names for the tasks (the registry's family names among them).
TASK_ALIASES: dict[str, str] = {
    "multiclass": "classification", "multi-class": "classification", "binary_classification": "binary",
    "multi-label": "multilabel", "metric": "embedding", "embeddings": "embedding", "detection": "boxes",
    "box": "boxes", "probabilistic": "distribution", "kl": "distribution", "images": "image",
}


def get_task(name: str) -> Task:
    """The :class:`Task` called ``name`` (or one of its aliases).

    Raises:
        ValueError: For an unknown task, naming the known ones.
    """
    key = TASK_ALIASES.get(name, name)
    if key not in TASKS:
        raise ValueError(f"check: task must be one of {', '.join(TASKS)}, got {name!r}."
                         + did_you_mean(name, [*TASKS, *TASK_ALIASES]))
    return TASKS[key]


_BY_FAMILY = {"segmentation": "segmentation", "metric": "embedding", "boxes": "boxes", "image": "image",
              "distribution": "distribution", "ranking": "ranking", "regression": "regression"}


def task_of_spec(spec: LossSpec) -> str | None:
    """The task whose family battery applies to a registered loss (``None``: the universal battery only)."""
    if spec.family in _BY_FAMILY:
        return _BY_FAMILY[spec.family]
    if spec.family == "classification" or spec.family == "custom":
        if spec.target_kind == "index":
            return "classification"
        if spec.target_kind in ("binary", "sign"):
            return "binary"
        if spec.family == "custom" and spec.target_kind == "real":
            return "regression"
        return "classification" if spec.family == "classification" else None
    return None
