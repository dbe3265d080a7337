"""The lossforge demo: a small CNN on imbalanced digits, a built-in loss against a custom composite.

Run it with ``lossforge demo`` (or ``make demo``). It needs the ``demo`` extra
(``pip install 'lossforge[demo]'``: scikit-learn, matplotlib, rich), which is
imported only when the demo runs.

- :mod:`.data`: the digits as 3x32x32 images, rare classes thinned in the training set;
- :mod:`.model`: a small CNN whose classifier size is measured from the input shape;
- :mod:`.losses`: the demo's own loss (a :class:`lossforge.Loss` subclass) and class weights;
- :mod:`.train`: the training loop (``zero_grad`` every step, per-term logging) and evaluation;
- :mod:`.metrics`, :mod:`.report`, :mod:`.plots`, :mod:`.progress`: metrics, table, JSON, figure, bars;
- :mod:`.run`: all of it, end to end (:func:`run_demo`).
"""

from ._deps import MissingDependencyError
from .run import DEFAULT_EPOCHS, QUICK_EPOCHS, DemoConfig, DemoReport, run_demo

__all__ = ["DEFAULT_EPOCHS", "QUICK_EPOCHS", "DemoConfig", "DemoReport", "MissingDependencyError", "run_demo"]
