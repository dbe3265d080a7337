"""Integrations with training frameworks, each imported only when asked for by name.

- :mod:`lossforge.integrations.lightning`: a PyTorch Lightning ``LightningModule`` that trains on a
  lossforge criterion and logs every term of a composite (needs ``lightning``).
- :mod:`lossforge.integrations.transformers`: a ``compute_loss_func`` for Hugging Face
  Transformers' ``Trainer``, with a callback that logs every term (needs ``transformers``).
- :mod:`lossforge.integrations.hydra`: Hydra / OmegaConf configs turned into losses with
  :func:`lossforge.build` (needs ``omegaconf``; ``hydra-core`` for ``instantiate``).

``import lossforge`` imports none of them, and importing this package imports no framework.
"""

__all__: list[str] = []
