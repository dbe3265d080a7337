"""Hydra / OmegaConf + lossforge: losses described in a config, built with ``lossforge.build``.

The same criterion from the three forms a config can use: a spec string, a list of terms, and a
node for ``hydra.utils.instantiate``. Interpolations (``${weights.focal}``) are resolved first.

    pip install hydra-core
    python examples/hydra_config.py
"""

from __future__ import annotations

import torch

CONFIG = """
weights:
  focal: 0.5
loss_string: "cross_entropy + ${weights.focal}*focal(gamma=2.0)"
loss_list:
  - {loss: cross_entropy}
  - {loss: focal, gamma: 2.0, coef: "${weights.focal}"}
loss_node:
  _target_: lossforge.integrations.hydra.build_loss
  spec: "cross_entropy + ${weights.focal}*focal(gamma=2.0)"
"""


def main() -> dict[str, float]:
    """Build the loss three ways and return each one's value on the same batch (all equal)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from lossforge.integrations.hydra import build_loss

    cfg = OmegaConf.create(CONFIG)
    criteria = {
        "string": build_loss(cfg.loss_string),
        "list": build_loss(cfg.loss_list),
        "instantiate": instantiate(cfg.loss_node),
    }
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(8, 3, generator=g), torch.randint(3, (8,), generator=g)
    values = {}
    for how, criterion in criteria.items():
        values[how] = float(criterion(logits, target))
        print(f"{how:12s} {' '.join(repr(criterion).split())[:70]}...  value {values[how]:.6f}")
    return values


if __name__ == "__main__":
    main()
