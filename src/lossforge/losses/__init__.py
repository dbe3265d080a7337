"""The catalog: one private module per family. Importing this registers every loss."""

from . import (
    _binary,
    _boxes,
    _classification,
    _distribution,
    _image,
    _llm,
    _margin,
    _metric,
    _ranking,
    _regression,
    _segmentation,
)
from ._binary import *  # noqa: F403
from ._boxes import *  # noqa: F403
from ._classification import *  # noqa: F403
from ._distribution import *  # noqa: F403
from ._image import *  # noqa: F403
from ._llm import *  # noqa: F403
from ._margin import *  # noqa: F403
from ._metric import *  # noqa: F403
from ._ranking import *  # noqa: F403
from ._regression import *  # noqa: F403
from ._segmentation import *  # noqa: F403

_FAMILIES = (
    _binary,
    _boxes,
    _classification,
    _distribution,
    _image,
    _llm,
    _margin,
    _metric,
    _ranking,
    _regression,
    _segmentation,
)
__all__ = [name for module in _FAMILIES for name in module.__all__]
