"""Hugging Face Transformers' ``Trainer`` + lossforge: ``compute_loss_func`` and per-term logging.

A tiny token classifier (an embedding and a linear layer, no download) is trained with the
``Trainer`` on ``cross_entropy + 0.5*focal(gamma=2)``. Its logits are ``(batch, tokens, classes)``
and the padding labels are -100, as Transformers models produce them;
:class:`lossforge.integrations.transformers.LossforgeLoss` moves the class dimension to where
lossforge expects it, ignores the padding, scales for gradient accumulation with
``num_items_in_batch``, and (``attach``) adds ``loss/cross_entropy`` and ``loss/focal`` to the logs.

    pip install transformers accelerate
    python examples/transformers_trainer.py
"""

from __future__ import annotations

import tempfile

import torch
from torch import nn

SPEC = "cross_entropy + 0.5*focal(gamma=2)"
VOCAB, TAGS, LENGTH = 20, 3, 12


class TinyTagger(nn.Module):
    """Tags each token: class = token id mod 3 (a pattern the model can learn)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 16)
        self.head = nn.Linear(16, TAGS)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"logits": self.head(torch.relu(self.embed(input_ids)))}


class TokenData(torch.utils.data.Dataset):
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(VOCAB, (n, LENGTH), generator=g)
        lengths = torch.randint(LENGTH // 2, LENGTH + 1, (n,), generator=g)
        self.labels = torch.where(torch.arange(LENGTH) < lengths[:, None], self.ids % TAGS, -100)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def main(epochs: int = 3, out: str | None = None) -> list[dict[str, float]]:
    """Train; return the Trainer's training log entries (with the ``loss/...`` terms)."""
    from transformers import Trainer, TrainingArguments

    from lossforge.integrations.transformers import LossforgeLoss

    torch.manual_seed(0)
    loss_fn = LossforgeLoss(SPEC)
    args = TrainingArguments(
        output_dir=out or tempfile.mkdtemp(prefix="lossforge-hf-"), per_device_train_batch_size=16,
        gradient_accumulation_steps=2, num_train_epochs=epochs, learning_rate=5e-2, logging_steps=2,
        report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True, seed=0,
    )
    trainer = Trainer(model=TinyTagger(), args=args, train_dataset=TokenData(256, 0), compute_loss_func=loss_fn)
    loss_fn.attach(trainer)
    trainer.train()
    logs = [e for e in trainer.state.log_history if "loss" in e]
    for e in logs:
        print(f"step {e['step']:3d}  loss {e['loss']:.4f}  cross_entropy {e['loss/cross_entropy']:.4f}  "
              f"focal {e['loss/focal']:.4f}")
    return logs


if __name__ == "__main__":
    main()
