"""Hydra / OmegaConf: a config node turned into a loss with :func:`lossforge.build`.

A loss in a config is any of the three forms :func:`lossforge.build` takes, so all of these
give the same criterion::

    loss: "dice + 0.5*focal(gamma=2.0)"              # a spec string
    loss: [{loss: dice}, {loss: focal, gamma: 2.0, coef: 0.5}]   # a list for a sum
    loss:                                            # for hydra.utils.instantiate
      _target_: lossforge.integrations.hydra.build_loss
      spec: "dice + 0.5*focal(gamma=2.0)"            # or: terms: [...], or: loss: focal, gamma: 2.0

and ``build_loss(cfg.loss)`` (or ``hydra.utils.instantiate(cfg.loss)`` for the last one) builds it.
OmegaConf containers are converted to plain ones (interpolations resolved) first; the values
stay literals, never evaluated. ``import lossforge`` imports neither this module nor OmegaConf.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

import lossforge as lf

__all__ = ["build_loss", "to_spec"]


def _omegaconf() -> Any:
    try:
        import omegaconf
    except ImportError:
        return None
    return omegaconf


def to_spec(config: Any) -> Any:
    """Plain Python containers from an OmegaConf ``DictConfig``/``ListConfig`` (resolved); anything else as is.

    Examples:
        >>> to_spec({"loss": "focal", "gamma": 2.0})
        {'loss': 'focal', 'gamma': 2.0}
    """
    omegaconf = _omegaconf()
    if omegaconf is not None and omegaconf.OmegaConf.is_config(config):
        return omegaconf.OmegaConf.to_container(config, resolve=True)
    if isinstance(config, Mapping):
        return {k: to_spec(v) for k, v in config.items()}
    if isinstance(config, Sequence) and not isinstance(config, str):
        return [to_spec(v) for v in config]
    return config


def build_loss(config: Any = None, /, **fields: Any) -> nn.Module:
    """Build the loss a config describes.

    ``config`` is a spec string, a ``{loss: NAME, ...}`` mapping, a list of those, or a mapping with
    a single ``spec`` (a string) or ``terms`` (a list) key. Without ``config`` the keyword
    arguments are the mapping, which is how ``hydra.utils.instantiate`` calls it
    (``_target_`` removed).

    Raises:
        ValueError: For a config that names no loss or an unknown one (with "did you mean").

    Examples:
        >>> build_loss({"spec": "l1 + 0.5*mse"}).coefficients
        {'l1': 1.0, 'mse': 0.5}
        >>> build_loss(loss="huber", delta=2.0)
        HuberLoss(delta=2.0, reduction='mean')
    """
    if config is None:
        if not fields:
            raise ValueError("build_loss: config must describe a loss, got nothing.")
        config = fields
    elif fields:
        raise TypeError(f"build_loss: give a config or keyword fields, not both, got fields {sorted(fields)}.")
    spec = to_spec(config)
    if isinstance(spec, Mapping):
        spec = {k: v for k, v in spec.items() if k not in ("_target_", "_convert_", "_recursive_", "_partial_")}
        if set(spec) == {"spec"}:
            spec = spec["spec"]
        elif set(spec) == {"terms"}:
            spec = spec["terms"]
        elif "loss" not in spec:
            raise ValueError(f"build_loss: a mapping needs a 'loss', 'spec' or 'terms' key, got keys {sorted(spec)}.")
    return lf.build(spec)
