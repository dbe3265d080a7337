"""Hugging Face Transformers: a lossforge criterion as the ``Trainer``'s ``compute_loss_func``.

::

    from transformers import Trainer
    from lossforge.integrations.transformers import LossforgeLoss

    loss_fn = LossforgeLoss("cross_entropy + 0.5*focal(gamma=2)")
    trainer = Trainer(model=model, args=args, train_dataset=train, compute_loss_func=loss_fn)
    loss_fn.attach(trainer)   # optional: log every term (loss/cross_entropy, loss/focal) with the loss
    trainer.train()

:class:`LossforgeLoss` itself needs nothing from Transformers; :meth:`LossforgeLoss.attach`
imports it. ``import lossforge`` imports neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

import lossforge as lf

from .._core.registry import name_of

__all__ = ["LossforgeLoss", "terms_callback"]

_CLASS_TARGETS = ("index", "labels")


class LossforgeLoss:
    """A ``compute_loss_func(outputs, labels, num_items_in_batch=None)`` computing a lossforge criterion.

    - The logits are ``outputs["logits"]`` (``logits_key``). For class-index targets, logits of
      shape ``(B, T, C)`` (token classification, language models) are moved to lossforge's
      ``(B, C, T)``; ``shift_labels=True`` predicts token ``t + 1`` from position ``t`` (causal LM).
      Labels equal to ``ignore_index`` (-100, Transformers' padding label) are ignored by the
      losses that take ``ignore_index``. Regression logits ``(B, 1)`` are squeezed to ``(B,)``.
    - With gradient accumulation the Trainer passes ``num_items_in_batch`` (the labels of the whole
      accumulated batch that are not ``ignore_index``) and does not rescale the loss itself; each
      micro-batch's loss is then multiplied by its share of those items, so the accumulated
      gradient is that of the whole batch's mean (exactly so for per-token losses without class
      weights).
    - While gradients are enabled (training, not evaluation), every term's value is summed, so
      :meth:`attach` can log their means with the Trainer's loss.

    The criterion's own parameters (``arcface``'s proxies, ...) are not the model's, so the
    Trainer's optimizer does not see them: keep such losses inside the model.

    Args:
        loss: Anything :func:`lossforge.build` takes, or a loss module.
        logits_key: Where the logits are in the model's outputs (a key or an index).
        shift_labels: Shift logits and labels by one position (causal language modelling).
        ignore_index: The label that marks padding.

    Examples:
        >>> loss_fn = LossforgeLoss("cross_entropy + 0.5*focal")
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
        >>> round(float(loss_fn({"logits": logits}, torch.tensor([0, 1]))), 4)
        0.2262
        >>> sorted(loss_fn.term_means())
        ['cross_entropy', 'focal', 'total']
    """

    def __init__(self, loss: Any, *, logits_key: str | int = "logits", shift_labels: bool = False,
                 ignore_index: int = -100) -> None:
        criterion = lf.build(loss)
        self.criterion = criterion if isinstance(criterion, lf.WeightedSum) else lf.WeightedSum([(criterion, 1.0)])
        self.logits_key = logits_key
        self.shift_labels = shift_labels
        self.ignore_index = ignore_index
        kinds = set()
        for module in self.criterion.losses.values():
            name = name_of(module)
            kinds.add(lf.get_loss(name).target_kind if name else "index")
        self.target_kinds = frozenset(kinds)
        self._sums: dict[str, Tensor] = {}
        self._count = 0

    def _logits(self, outputs: Any) -> Tensor:
        if isinstance(outputs, Tensor):
            return outputs
        if isinstance(self.logits_key, str) and isinstance(outputs, Mapping):
            if self.logits_key not in outputs:
                raise KeyError(f"LossforgeLoss: logits_key {self.logits_key!r} is not in the model's outputs "
                               f"(keys: {list(outputs.keys())}).")
            return outputs[self.logits_key]
        return outputs[self.logits_key]

    def __call__(self, outputs: Any, labels: Tensor, num_items_in_batch: Tensor | int | None = None) -> Tensor:
        logits = self._logits(outputs)
        if labels is None:
            raise ValueError("LossforgeLoss: labels must be given, got None. Hint: the dataset needs a 'labels' "
                             "column.")
        if self.shift_labels:
            logits, labels = logits[..., :-1, :], labels[..., 1:]
        if self.target_kinds <= set(_CLASS_TARGETS) and logits.dim() > 2 and labels.dim() == logits.dim() - 1:
            logits = logits.movedim(-1, 1)
        elif self.target_kinds == {"real"} and logits.dim() == labels.dim() + 1 and logits.shape[-1] == 1:
            logits = logits.squeeze(-1)
        device = logits.device
        if any(t.device != device for t in (*self.criterion.parameters(), *self.criterion.buffers())):
            self.criterion.to(device)
        terms = self.criterion.terms(logits, labels)
        if torch.is_grad_enabled():
            for name, value in terms.items():
                v = value.detach()
                self._sums[name] = self._sums[name] + v if name in self._sums else v
            self._count += 1
        total = terms["total"]
        if num_items_in_batch is not None:
            if labels.is_floating_point():
                local = torch.tensor(labels.numel(), device=device)
            else:
                local = (labels != self.ignore_index).sum()
            total = total * local / num_items_in_batch
        return total

    def term_means(self, *, reset: bool = True) -> dict[str, float]:
        """Each term's mean over the training calls since the last reset (unweighted; ``total`` weighted)."""
        means = {k: float(v) / self._count for k, v in self._sums.items()} if self._count else {}
        if reset:
            self._sums, self._count = {}, 0
        return means

    def attach(self, trainer: Any, *, prefix: str = "loss/") -> Any:
        """Register :func:`terms_callback` first in ``trainer``'s callbacks, so every log entry gets
        ``{prefix}{term}`` (reporting integrations included, since it runs before them). Returns the callback."""
        callback = terms_callback(self, prefix=prefix)
        trainer.callback_handler.callbacks.insert(0, callback)
        return callback


def terms_callback(loss_fn: LossforgeLoss, *, prefix: str = "loss/") -> Any:
    """A ``transformers.TrainerCallback`` adding ``loss_fn``'s term means to each training log entry.

    It adds them to the ``logs`` the later callbacks see and to ``state.log_history``.
    """
    from transformers import TrainerCallback

    class LossTermsCallback(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            if logs is None or "loss" not in logs:  # evaluation and end-of-training entries
                return
            means = {f"{prefix}{k}": round(v, 6) for k, v in loss_fn.term_means().items()}
            logs.update(means)
            if state.log_history and state.log_history[-1].get("loss") == logs.get("loss"):
                state.log_history[-1].update(means)

    return LossTermsCallback()
