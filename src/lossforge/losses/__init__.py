"""The catalog: one private module per family. Importing this registers every loss."""

from ._binary import *  # noqa: F403
from ._binary import __all__ as _binary_all
from ._classification import *  # noqa: F403
from ._classification import __all__ as _classification_all
from ._margin import *  # noqa: F403
from ._margin import __all__ as _margin_all
from ._metric import *  # noqa: F403
from ._metric import __all__ as _metric_all
from ._regression import *  # noqa: F403
from ._regression import __all__ as _regression_all
from ._segmentation import *  # noqa: F403
from ._segmentation import __all__ as _segmentation_all

__all__ = [*_regression_all, *_classification_all, *_binary_all, *_margin_all, *_segmentation_all, *_metric_all]
