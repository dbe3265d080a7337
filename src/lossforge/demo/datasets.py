r"""The data sets of ``lossforge train`` and ``lossforge compare``: shipped or generated, all deterministic.

Nothing is downloaded. The digits come with scikit-learn (``load_digits``: 1797 grey
8x8 images, about 180 per class); the other sets are generated here from a seeded
:class:`torch.Generator`, so the same arguments give the same tensors on every machine.

- ``digits`` (classification, embedding): the digits, balanced.
- ``digits-imbalanced`` (classification, embedding): classes 5-9 keep ``keep`` (10%) of their
  training images.
- ``digits-symmetric-noise`` (classification): ``noise`` (40%) of the training labels moved to
  another class, uniformly at random.
- ``digits-asymmetric-noise`` (classification): class-dependent flips between similar digits, each
  source class losing ``noise`` (40%) of its training labels: 2→7, 3→8, 5↔6, 7→1.
- ``shapes`` (segmentation): generated 32x32 images with discs (class 1), squares (2) and
  triangles (3) of random brightness on noise; 20% of the images are empty.
- ``regression-outliers`` (regression): a smooth function of 8 inputs plus small noise;
  ``outliers`` (10%) of the training targets get a gross error of 5-15 standard deviations with a
  random sign.
- ``digits-unseen`` (embedding): train on the digits 0-4, measure recall@1 on the unseen 5-9.

Only the training set is corrupted (label noise, outliers, imbalance): every metric is
measured on a clean test set, which is what tells whether a loss coped with the corruption.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .data import RARE_CLASSES, load_digits_data

__all__ = [
    "ASYMMETRIC_FLIPS", "DATASETS", "DatasetInfo", "TaskData", "asymmetric_noise", "load_dataset", "make_regression",
    "make_shapes", "symmetric_noise",
]

#: Class-dependent label noise between similar-looking digits (Patrini et al., CVPR 2017, for MNIST).
ASYMMETRIC_FLIPS: dict[int, int] = {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}

#: The image side of the digits in ``train``/``compare``: the 8x8 originals upsampled to 16x16
#: (the demo uses 32x32; 16 keeps every detail of an 8x8 image and trains four times faster).
DIGITS_SIZE = 16

SHAPE_NAMES: tuple[str, ...] = ("background", "disc", "square", "triangle")


@dataclass(frozen=True)
class TaskData:
    """Train and test tensors of one data set.

    Attributes:
        name: The data set's name (``"digits-imbalanced"``, ...).
        task: The task it is loaded for.
        x_train, x_test: Inputs: images ``(N, C, H, W)`` or features ``(N, D)``, float32.
        y_train, y_test: Targets: class indices ``(N,)``, masks ``(N, H, W)`` (int64) or values ``(N,)`` (float32).
        num_classes: Classes of the targets (training classes for embeddings); 0 for regression.
        rare_classes: Classes thinned out in the training set (reported separately).
        info: What ``metrics.json`` records about the data (source, counts, corruption).
        summary: One line for the terminal.
        y_train_clean: The training targets before corruption (label noise, outliers), if any.
    """

    name: str
    task: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    summary: str
    info: dict[str, Any] = field(default_factory=dict)
    rare_classes: tuple[int, ...] = ()
    y_train_clean: Tensor | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input (``(C, H, W)`` or ``(D,)``)."""
        return tuple(self.x_train.shape[1:])


@dataclass(frozen=True)
class DatasetInfo:
    """One entry of :data:`DATASETS`: the tasks it serves (the first is the default), its options, a summary."""

    tasks: tuple[str, ...]
    options: dict[str, float]
    summary: str
    loader: Callable[..., TaskData]


def symmetric_noise(target: Tensor, rate: float, num_classes: int, generator: torch.Generator) -> Tensor:
    """Move exactly ``round(rate * N)`` labels, picked at random, to a uniformly drawn *other* class.

    Examples:
        >>> y = torch.arange(10) % 5
        >>> noisy = symmetric_noise(y, 0.4, 5, torch.Generator().manual_seed(0))
        >>> int((noisy != y).sum())
        4
    """
    n = len(target)
    k = round(rate * n)
    idx = torch.randperm(n, generator=generator)[:k]
    shift = torch.randint(1, num_classes, (k,), generator=generator)
    noisy = target.clone()
    noisy[idx] = (target[idx] + shift) % num_classes
    return noisy


def asymmetric_noise(target: Tensor, rate: float, generator: torch.Generator,
                     flips: dict[int, int] | None = None) -> Tensor:
    """For each source class ``c`` of ``flips``, move ``round(rate * n_c)`` of its labels to ``flips[c]``.

    The labels are picked from the clean ones, so ``5 -> 6`` and ``6 -> 5`` do not undo each other.

    Examples:
        >>> y = torch.tensor([2, 2, 2, 2, 0, 0])
        >>> asymmetric_noise(y, 0.5, torch.Generator().manual_seed(0)).tolist()
        [7, 7, 2, 2, 0, 0]
    """
    flips = ASYMMETRIC_FLIPS if flips is None else flips
    noisy = target.clone()
    for source, dest in flips.items():
        idx = (target == source).nonzero().flatten()
        k = round(rate * len(idx))
        noisy[idx[torch.randperm(len(idx), generator=generator)[:k]]] = dest
    return noisy


def _check_fraction(name: str, option: str, value: float, *, low_open: bool = False, high: float = 1.0) -> None:
    ok = (0.0 < value if low_open else 0.0 <= value) and value <= high
    if not ok or not math.isfinite(value):
        lo = "(0" if low_open else "[0"
        raise ValueError(f"{name}: {option} must be in {lo}, {high:g}], got {value}.")


def _digits(name: str, task: str, seed: int, keep: float = 1.0) -> tuple[Any, str]:
    rare = RARE_CLASSES if keep < 1.0 else ()
    data = load_digits_data(size=DIGITS_SIZE, rare_classes=rare, keep_fraction=keep, seed=seed)
    return data, f"sklearn.datasets.load_digits, 8x8 upsampled (bilinear) to {DIGITS_SIZE}x{DIGITS_SIZE}, 3 channels"


def _digits_task(name: str, task: str, data: Any, source: str, summary: str, **extra: Any) -> TaskData:
    counts = torch.bincount(data.y_train, minlength=10).tolist()
    info = {"source": source, "image_shape": list(data.x_train.shape[1:]), "train_counts": counts,
            "test_counts": torch.bincount(data.y_test, minlength=10).tolist(), **extra.pop("info", {})}
    return TaskData(name=name, task=task, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test,
                    y_test=data.y_test, num_classes=10, summary=summary, info=info, **extra)


def _load_digits(task: str, seed: int) -> TaskData:
    data, source = _digits("digits", task, seed)
    return _digits_task("digits", task, data, source,
                        f"digits 3x{DIGITS_SIZE}x{DIGITS_SIZE}: {len(data.y_train)} train, {len(data.y_test)} test, "
                        f"balanced")


def _load_imbalanced(task: str, seed: int, keep: float) -> TaskData:
    _check_fraction("digits-imbalanced", "keep", keep, low_open=True)
    data, source = _digits("digits-imbalanced", task, seed, keep)
    counts = torch.bincount(data.y_train, minlength=10).tolist()
    rare = [counts[c] for c in RARE_CLASSES]
    common = [n for c, n in enumerate(counts) if c not in RARE_CLASSES]
    summary = (f"digits-imbalanced 3x{DIGITS_SIZE}x{DIGITS_SIZE}: {len(data.y_train)} train ({min(common)}-"
               f"{max(common)} per common class, {min(rare)}-{max(rare)} per rare class 5-9), "
               f"{len(data.y_test)} test (balanced)")
    return _digits_task("digits-imbalanced", task, data, source, summary, rare_classes=RARE_CLASSES,
                        info={"rare_classes": list(RARE_CLASSES), "rare_keep_fraction": keep})


def _load_noisy(name: str, task: str, seed: int, noise: float) -> TaskData:
    _check_fraction(name, "noise", noise, high=0.9)
    data, source = _digits(name, task, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    if name == "digits-symmetric-noise":
        noisy = symmetric_noise(data.y_train, noise, 10, gen)
        how = f"{noise:.0%} of the training labels moved to another class uniformly at random"
    else:
        noisy = asymmetric_noise(data.y_train, noise, gen)
        how = f"{noise:.0%} of each of the classes 2, 3, 5, 6, 7 flipped (2→7, 3→8, 5↔6, 7→1)"
    actual = float((noisy != data.y_train).double().mean())
    summary = (f"{name} 3x{DIGITS_SIZE}x{DIGITS_SIZE}: {len(noisy)} train, {actual:.1%} of their labels wrong; "
               f"{len(data.y_test)} test, clean labels")
    clean = data.y_train
    data = type(data)(x_train=data.x_train, y_train=noisy, x_test=data.x_test, y_test=data.y_test,
                      num_classes=10, rare_classes=(), keep_fraction=1.0)
    return _digits_task(name, task, data, source, summary, y_train_clean=clean,
                        info={"noise": how, "noise_rate": noise, "wrong_label_fraction": actual})


def _load_unseen(task: str, seed: int) -> TaskData:
    data, source = _digits("digits-unseen", task, seed)
    train, test = data.y_train < 5, data.y_test >= 5
    summary = (f"digits-unseen 3x{DIGITS_SIZE}x{DIGITS_SIZE}: {int(train.sum())} train images of the digits 0-4; "
               f"recall@1 among {int(test.sum())} test images of the unseen digits 5-9")
    info = {"source": source, "image_shape": list(data.x_train.shape[1:]), "train_classes": [0, 1, 2, 3, 4],
            "test_classes": [5, 6, 7, 8, 9], "train_size": int(train.sum()), "test_size": int(test.sum())}
    return TaskData(name="digits-unseen", task=task, x_train=data.x_train[train], y_train=data.y_train[train],
                    x_test=data.x_test[test], y_test=data.y_test[test], num_classes=5, summary=summary, info=info)


def _triangle(xx: Tensor, yy: Tensor, cx: float, cy: float, r: float, angle: float) -> Tensor:
    corners = [(cx + r * math.cos(angle + k * 2 * math.pi / 3), cy + r * math.sin(angle + k * 2 * math.pi / 3))
               for k in range(3)]
    inside = torch.ones_like(xx, dtype=torch.bool)
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1]):
        # the corners go round counter-clockwise (in x-right, y-down pixels: clockwise on screen)
        inside &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0
    return inside


def make_shapes(n: int, *, size: int = 32, empty_fraction: float = 0.2, max_shapes: int = 3,
                seed: int = 0) -> tuple[Tensor, Tensor]:
    """``n`` grey images ``(n, 1, size, size)`` and their masks ``(n, size, size)`` (0 background, 1-3 shapes).

    Each image is Gaussian noise (standard deviation 0.1); with probability ``1 - empty_fraction``
    it gets 1 to ``max_shapes`` shapes, each a disc (1), a square (2) or a triangle (3) of radius
    3.5-7 pixels, a random brightness in ``[0.5, 1]`` and a random place (later ones cover earlier
    ones). The brightness says nothing about the class: the model has to look at the shape.

    Examples:
        >>> x, m = make_shapes(4, size=16, seed=0)
        >>> x.shape, m.shape, m.dtype
        (torch.Size([4, 1, 16, 16]), torch.Size([4, 16, 16]), torch.int64)
    """
    gen = torch.Generator().manual_seed(seed)

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=gen))

    coords = torch.arange(size, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    images = 0.1 * torch.randn(n, 1, size, size, generator=gen)
    masks = torch.zeros(n, size, size, dtype=torch.int64)
    for i in range(n):
        if float(torch.rand((), generator=gen)) < empty_fraction:
            continue
        for _ in range(int(torch.randint(1, max_shapes + 1, (), generator=gen))):
            cls = int(torch.randint(1, 4, (), generator=gen))
            r = uniform(3.5, 7.0)
            cx, cy = uniform(r, size - r), uniform(r, size - r)
            if cls == 1:
                inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            elif cls == 2:
                half = 0.85 * r
                inside = ((xx - cx).abs() <= half) & ((yy - cy).abs() <= half)
            else:
                inside = _triangle(xx, yy, cx, cy, 1.2 * r, uniform(0, 2 * math.pi))
            images[i, 0][inside] = uniform(0.5, 1.0) + 0.1 * torch.randn(int(inside.sum()), generator=gen)
            masks[i][inside] = cls
    return images, masks


def _load_shapes(task: str, seed: int) -> TaskData:
    x_train, y_train = make_shapes(320, seed=seed)
    x_test, y_test = make_shapes(160, seed=seed + 1000)
    pixels = torch.bincount(y_train.flatten(), minlength=4)
    share = (pixels / pixels.sum()).tolist()
    empty = int((y_train.flatten(1).amax(1) == 0).sum())
    summary = (f"shapes 1x32x32: {len(y_train)} train ({empty} empty), {len(y_test)} test; pixels: "
               + ", ".join(f"{SHAPE_NAMES[c]} {share[c]:.1%}" for c in range(4)))
    info = {"source": "generated (lossforge.demo.datasets.make_shapes)", "image_shape": [1, 32, 32],
            "classes": list(SHAPE_NAMES), "train_size": len(y_train), "test_size": len(y_test),
            "empty_train_images": empty, "empty_test_images": int((y_test.flatten(1).amax(1) == 0).sum()),
            "train_pixel_share": share}
    return TaskData(name="shapes", task=task, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                    num_classes=4, summary=summary, info=info)


def _target_function(x: Tensor) -> Tensor:
    return (torch.sin(math.pi * x[:, 0]) + x[:, 1] * x[:, 2] + 0.8 * x[:, 3] ** 2 - 0.6 * x[:, 4]
            + 0.5 * torch.cos(2 * x[:, 5] + x[:, 6]) + 0.3 * x[:, 7])


def make_regression(n_train: int = 800, n_test: int = 400, *, outliers: float = 0.1, noise: float = 0.1,
                    seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Features ``U(-1, 1)^8``, targets ``f(x) / std + N(0, noise^2)``; gross errors on ``outliers`` of the train set.

    ``f`` is a fixed smooth function (a sine, a product, squares, a cosine, linear terms)
    scaled to unit standard deviation. A gross error adds ``s * u`` with ``u ~ U(5, 15)``
    and a random sign ``s``. Returns ``x_train, y_train, x_test, y_test, y_train_clean``.

    Examples:
        >>> x, y, xt, yt, clean = make_regression(100, 10, outliers=0.1)
        >>> x.shape, int(((y - clean).abs() > 1).sum())
        (torch.Size([100, 8]), 10)
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n_train + n_test, 8, generator=gen) * 2 - 1
    f = _target_function(x)
    f = (f - f.mean()) / f.std()
    y = f + noise * torch.randn(len(f), generator=gen)
    x_train, x_test, y_clean, y_test = x[:n_train], x[n_train:], y[:n_train], y[n_train:]
    k = round(outliers * n_train)
    idx = torch.randperm(n_train, generator=gen)[:k]
    sign = torch.randint(0, 2, (k,), generator=gen) * 2 - 1
    y_train = y_clean.clone()
    y_train[idx] += sign * (5 + 10 * torch.rand(k, generator=gen))
    return x_train, y_train, x_test, y_test, y_clean


def _load_regression(task: str, seed: int, outliers: float) -> TaskData:
    _check_fraction("regression-outliers", "outliers", outliers, high=0.5)
    x_train, y_train, x_test, y_test, clean = make_regression(outliers=outliers, seed=seed)
    k = int(((y_train - clean).abs() > 0).sum())
    summary = (f"regression-outliers 8 features: {len(y_train)} train ({k} with a gross error of 5-15 sd), "
               f"{len(y_test)} test (clean); target sd 1, noise sd 0.1")
    info = {"source": "generated (lossforge.demo.datasets.make_regression)", "features": 8,
            "train_size": len(y_train), "test_size": len(y_test), "outlier_fraction": outliers,
            "outliers": k, "noise_sd": 0.1}
    return TaskData(name="regression-outliers", task=task, x_train=x_train, y_train=y_train, x_test=x_test,
                    y_test=y_test, num_classes=0, summary=summary, info=info, y_train_clean=clean)


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(("classification", "embedding"), {}, "handwritten digits, balanced",
                          lambda task, seed: _load_digits(task, seed)),
    "digits-imbalanced": DatasetInfo(("classification", "embedding"), {"keep": 0.1},
                                     "digits, classes 5-9 keep 10% of their training images",
                                     lambda task, seed, keep: _load_imbalanced(task, seed, keep)),
    "digits-symmetric-noise": DatasetInfo(("classification",), {"noise": 0.4},
                                          "digits, 40% of training labels moved to a random other class",
                                          lambda task, seed, noise: _load_noisy("digits-symmetric-noise", task,
                                                                                seed, noise)),
    "digits-asymmetric-noise": DatasetInfo(("classification",), {"noise": 0.4},
                                           "digits, 40% of 2/3/5/6/7 flipped to a similar digit",
                                           lambda task, seed, noise: _load_noisy("digits-asymmetric-noise", task,
                                                                                 seed, noise)),
    "shapes": DatasetInfo(("segmentation",), {}, "generated discs, squares, triangles; 20% empty images",
                          lambda task, seed: _load_shapes(task, seed)),
    "regression-outliers": DatasetInfo(("regression",), {"outliers": 0.1},
                                       "smooth function of 8 inputs, 10% of training targets gross errors",
                                       lambda task, seed, outliers: _load_regression(task, seed, outliers)),
    "digits-unseen": DatasetInfo(("embedding",), {}, "digits 0-4 to train, recall@1 on the unseen 5-9",
                                 lambda task, seed: _load_unseen(task, seed)),
}


def load_dataset(name: str, task: str | None = None, *, seed: int = 0, **options: float | None) -> TaskData:
    """Load data set ``name`` for ``task`` (default: its first task).

    ``options`` are the data set's own (``keep``, ``noise``, ``outliers``); ``None`` keeps the default.

    Raises:
        ValueError: For an unknown name, a task the data set does not serve, or an option it does not take.
        MissingDependencyError: For the digits when scikit-learn is not installed.
    """
    from .._core.errors import did_you_mean

    if name not in DATASETS:
        raise ValueError(f"data must be one of {', '.join(DATASETS)}, got {name!r}.{did_you_mean(name, DATASETS)}")
    entry = DATASETS[name]
    task = task or entry.tasks[0]
    if task not in entry.tasks:
        raise ValueError(f"data {name!r} serves the task(s) {', '.join(entry.tasks)}, not {task!r}.")
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(entry.options))
    if unknown:
        takes = ", ".join(f"--{k}" for k in entry.options) or "no options"
        raise ValueError(f"data {name!r} takes {takes}, got --{unknown[0]}.")
    return entry.loader(task, seed, **{**entry.options, **given})
