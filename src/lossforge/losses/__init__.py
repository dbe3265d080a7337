"""The catalog: one private module per family. Importing this registers every loss."""

from ._binary import *  # noqa: F403
from ._boxes import *  # noqa: F403
from ._classification import *  # noqa: F403
from ._distribution import *  # noqa: F403
from ._image import *  # noqa: F403
from ._llm import *  # noqa: F403
from ._margin import *  # noqa: F403
from ._metric import *  # noqa: F403
from ._multilabel import *  # noqa: F403
from ._ranking import *  # noqa: F403
from ._regression import *  # noqa: F403
from ._segmentation import *  # noqa: F403
from ._sequence import *  # noqa: F403
from ._sparsemax import *  # noqa: F403
from ._unified_focal import *  # noqa: F403
from ._wasserstein_dice import *  # noqa: F403

# No __all__ here: the star imports above re-export each family's public names (type checkers follow them).
