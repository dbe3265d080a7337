"""PyTorch Lightning: a ``LightningModule`` that trains on a lossforge criterion and logs every term.

Lightning (``lightning``, or the older ``pytorch_lightning``) is imported when
:class:`LossforgeModule` is first used; ``import lossforge`` imports neither this module nor Lightning.

    import lightning as L
    from lossforge.integrations.lightning import LossforgeModule

    module = LossforgeModule(model, "cross_entropy + 0.1*focal(gamma=2)", lr=1e-3)
    L.Trainer(max_epochs=5).fit(module, train_loader, val_loader)
    # logged: train/cross_entropy, train/focal, train/total (and val/..., test/...)

In a LightningModule of your own, :func:`log_terms` does the logging part::

    terms = self.criterion.terms(logits, target)   # a lf.WeightedSum
    log_terms(self, terms, "train", batch_size=len(target))
    return terms["total"]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

import lossforge as lf

__all__ = ["LossforgeModule", "as_weighted_sum", "criterion_terms", "log_terms"]  # noqa: F822 (module __getattr__)


def as_weighted_sum(loss: Any) -> lf.WeightedSum:
    """``loss`` (a spec for :func:`lossforge.build` or a module) as a :class:`lossforge.WeightedSum`,
    so ``.terms`` works for a single loss too."""
    criterion = lf.build(loss)
    return criterion if isinstance(criterion, lf.WeightedSum) else lf.WeightedSum([(criterion, 1.0)])


def criterion_terms(criterion: lf.WeightedSum, *args: Any) -> dict[str, Tensor]:
    """``criterion.terms(*args)``; under ``torch.inference_mode`` (Lightning's validation and test loops)
    each term is computed on its own and summed here, because the activation sharing of
    ``WeightedSum.terms`` keys its cache on tensor version counters, which inference tensors lack."""
    if not torch.is_inference_mode_enabled():
        return criterion.terms(*args)
    values = {name: term(*args) for name, term in criterion.losses.items()}
    total = sum((coef * values[name] for name, coef in criterion.coefficients.items()), torch.zeros(()))
    return {**values, "total": total}


def log_terms(module: Any, terms: Mapping[str, Tensor], stage: str, **kwargs: Any) -> None:
    """Log every term as ``{stage}/{name}`` and the total in the progress bar.

    ``kwargs`` go to ``LightningModule.log`` (``batch_size=...``, ``sync_dist=True``, ...). Training
    logs per step and per epoch; validation and test per epoch.
    """
    on_step = stage == "train"
    for name, value in terms.items():
        module.log(f"{stage}/{name}", value.detach(), on_step=on_step, on_epoch=True, prog_bar=name == "total",
                   **kwargs)


def _lightning() -> Any:
    import importlib

    for name in ("lightning.pytorch", "pytorch_lightning"):  # the package's current and older names
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("lossforge.integrations.lightning needs PyTorch Lightning. Hint: pip install lightning.")


_CLASSES: dict[str, type] = {}


def _module_class() -> type:
    """Define :class:`LossforgeModule` on Lightning's ``LightningModule`` (once, when first asked for)."""
    if "LossforgeModule" in _CLASSES:
        return _CLASSES["LossforgeModule"]
    base: Any = _lightning().LightningModule

    class LossforgeModule(base):  # type: ignore[misc,valid-type]
        """A ``LightningModule`` around ``model`` that trains on a lossforge criterion and logs each term.

        Batches are ``(input, target, *rest)``; the loss is ``criterion(model(input), target)``. The
        criterion's own parameters (the proxies of ``arcface``, a learnable ``general_robust``) are
        optimised with the model's.

        Args:
            model: The network.
            loss: Anything :func:`lossforge.build` takes: ``"dice + 0.5*focal(gamma=2)"``, a dict, a list,
                or a loss module.
            lr: Learning rate.
            optimizer: A class from ``torch.optim`` (default Adam), called as ``optimizer(params, lr=lr)``.
            target_transform: Applied to the target before the loss (e.g. one-hot for a binary loss).

        Example::

            module = LossforgeModule(nn.Linear(4, 3), "cross_entropy + 0.5*focal")
            sorted(module.criterion.losses)  # ['cross_entropy', 'focal']
        """

        def __init__(self, model: nn.Module, loss: Any, *, lr: float = 1e-3,
                     optimizer: Callable[..., torch.optim.Optimizer] = torch.optim.Adam,
                     target_transform: Callable[[Tensor], Tensor] | None = None) -> None:
            super().__init__()
            if not lr > 0:
                raise ValueError(f"LossforgeModule: lr must be positive, got {lr}.")
            self.model = model
            self.criterion = as_weighted_sum(loss)
            self.lr = lr
            self.optimizer_class = optimizer
            self.target_transform = target_transform

        def forward(self, x: Tensor) -> Tensor:
            return self.model(x)

        def _step(self, batch: Any, stage: str) -> Tensor:
            x, target = batch[0], batch[1]
            if self.target_transform is not None:
                target = self.target_transform(target)
            terms = criterion_terms(self.criterion, self(x), target)
            log_terms(self, terms, stage, batch_size=len(x))
            return terms["total"]

        def training_step(self, batch: Any, batch_idx: int) -> Tensor:
            return self._step(batch, "train")

        def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
            return self._step(batch, "val")

        def test_step(self, batch: Any, batch_idx: int) -> Tensor:
            return self._step(batch, "test")

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return self.optimizer_class(self.parameters(), lr=self.lr)

    LossforgeModule.__module__ = __name__
    LossforgeModule.__qualname__ = "LossforgeModule"  # pickle finds it through the module's __getattr__
    _CLASSES["LossforgeModule"] = LossforgeModule
    return LossforgeModule


def __getattr__(name: str) -> Any:
    if name == "LossforgeModule":
        return _module_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
