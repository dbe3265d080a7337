"""PyTorch Lightning + lossforge: a composite loss whose every term is logged.

A tiny classifier on generated data (three classes from two features) trains on
``cross_entropy + 0.5*focal(gamma=2)``; :class:`lossforge.integrations.lightning.LossforgeModule`
logs ``train/cross_entropy``, ``train/focal`` and ``train/total`` every step and epoch, and the
same terms for the validation set.

    pip install lightning
    python examples/lightning_composite.py
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

SPEC = "cross_entropy + 0.5*focal(gamma=2)"


def make_data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()  # classes 0, 1, 2
    return TensorDataset(x, y)


def main(epochs: int = 5, batch_size: int = 32) -> dict[str, float]:
    """Train and return the last logged metrics (``train/...`` and ``val/...``)."""
    import lightning as L

    from lossforge.integrations.lightning import LossforgeModule

    L.seed_everything(0, verbose=False)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))
    module = LossforgeModule(model, SPEC, lr=1e-2)
    train = DataLoader(make_data(512, 0), batch_size=batch_size, shuffle=True)
    val = DataLoader(make_data(256, 1), batch_size=256)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1,
                        deterministic=True)
    with warnings.catch_warnings():  # "the dataloader does not have many workers": the data are tiny
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        trainer.fit(module, train, val)
    metrics = {k: float(v) for k, v in sorted(trainer.callback_metrics.items())}
    for name, value in metrics.items():
        print(f"{name:28s} {value:.4f}")
    return metrics


if __name__ == "__main__":
    main()
