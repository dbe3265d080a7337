"""The flat functional namespace: ``import lossforge.functional as LF``.

Every loss function of the catalog, re-exported (nothing is defined here).
"""

from .losses import (
    _binary,
    _boxes,
    _classification,
    _distribution,
    _image,
    _llm,
    _margin,
    _metric,
    _multilabel,
    _ranking,
    _regression,
    _segmentation,
    _sequence,
    _sparsemax,
    _unified_focal,
    _wasserstein_dice,
)
from .losses._binary import *  # noqa: F403
from .losses._boxes import *  # noqa: F403
from .losses._classification import *  # noqa: F403
from .losses._distribution import *  # noqa: F403
from .losses._image import *  # noqa: F403
from .losses._llm import *  # noqa: F403
from .losses._margin import *  # noqa: F403
from .losses._metric import *  # noqa: F403
from .losses._multilabel import *  # noqa: F403
from .losses._ranking import *  # noqa: F403
from .losses._regression import *  # noqa: F403
from .losses._segmentation import *  # noqa: F403
from .losses._sequence import *  # noqa: F403
from .losses._sparsemax import *  # noqa: F403
from .losses._unified_focal import *  # noqa: F403
from .losses._wasserstein_dice import *  # noqa: F403

_FAMILIES = (
    _binary,
    _boxes,
    _classification,
    _distribution,
    _image,
    _llm,
    _margin,
    _metric,
    _multilabel,
    _ranking,
    _regression,
    _segmentation,
    _sequence,
    _sparsemax,
    _unified_focal,
    _wasserstein_dice,
)
__all__ = [name for module in _FAMILIES for name in module.__all__ if not name[:1].isupper()]
