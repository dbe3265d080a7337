"""lossforge: loss functions for PyTorch, correct at the edges, and the tools to write your own.

``import lossforge as lf`` gives the loss modules (``lf.FocalLoss``), the toolkit
(``lf.Loss``, ``lf.elementwise_loss``, ``lf.build``, ``lf.register_loss``) and the
registry (``lf.list_losses``, ``lf.get_loss``); ``lossforge.functional`` holds the
loss functions.
"""

from . import functional
from . import losses as _losses
from ._core.base import FunctionLoss, Loss
from ._core.compose import UncertaintyWeighting, WeightedSum
from ._core.decorator import elementwise_loss
from ._core.errors import LossforgeError, ShapeError
from ._core.reduction import REDUCTIONS, reduce_loss
from ._core.registry import LossSpec, get_loss, list_losses, register_loss, unregister_loss
from ._core.samples import ErrorSample, Sample
from ._core.spec import build
from ._core.validation import set_validation, validation, validation_enabled
from .losses import *  # noqa: F403
from .losses._classification import class_balanced_weights
from .verify import CheckReport, check
from .wrappers import ClassSelect, DeepSupervision

__version__ = "0.1.0"

__all__ = [
    "functional", "Loss", "FunctionLoss", "WeightedSum", "UncertaintyWeighting", "elementwise_loss",
    "LossforgeError", "ShapeError", "REDUCTIONS", "reduce_loss", "LossSpec", "get_loss", "list_losses",
    "register_loss", "unregister_loss", "class_balanced_weights", "Sample", "ErrorSample", "build", "validation",
    "validation_enabled", "set_validation", "check", "CheckReport", "DeepSupervision", "ClassSelect",
    *sorted(n for n in vars(_losses) if n[:1].isupper()),
]
