"""The flat functional namespace: ``import lossforge.functional as LF``.

Every loss function of the catalog, re-exported (nothing is defined here).
"""

from .losses._binary import *  # noqa: F403
from .losses._binary import __all__ as _binary_all
from .losses._classification import *  # noqa: F403
from .losses._classification import __all__ as _classification_all
from .losses._margin import *  # noqa: F403
from .losses._margin import __all__ as _margin_all
from .losses._metric import *  # noqa: F403
from .losses._metric import __all__ as _metric_all
from .losses._regression import *  # noqa: F403
from .losses._regression import __all__ as _regression_all
from .losses._segmentation import *  # noqa: F403
from .losses._segmentation import __all__ as _segmentation_all

__all__ = [
    n
    for n in [*_regression_all, *_classification_all, *_binary_all, *_margin_all, *_segmentation_all, *_metric_all]
    if not n[:1].isupper()
]
