"""Metric-learning and self-supervised losses: embeddings ``(N, D)`` with labels, or two views.

The family lives in six private modules, imported here (which registers every loss):

- :mod:`._metric_pairs`: contrastive, triplet (in-batch mining), lifted structure, circle, multi-similarity;
- :mod:`._metric_softmax`: NT-Xent, InfoNCE, SupCon, CLIP, Barlow Twins, VICReg;
- :mod:`._metric_margins`: ArcFace, CosFace, SphereFace, sub-centre ArcFace, Proxy-Anchor, Proxy-NCA;
- :mod:`._metric_batch`: NCA, angular, tuplet margin, SNR contrastive, FastAP, histogram (statistics of the batch);
- :mod:`._metric_learned`: normalized softmax, SoftTriple, large-margin softmax, margin (learned class weights,
  centres or boundary);
- :mod:`._metric_ops`: shared checks, safe distances, masked log-sum-exp, the fused softmax kernel,
  the cross-rank gather.
"""

from __future__ import annotations

from . import _metric_batch, _metric_learned, _metric_margins, _metric_pairs, _metric_softmax
from ._metric_batch import *  # noqa: F403
from ._metric_learned import *  # noqa: F403
from ._metric_margins import *  # noqa: F403
from ._metric_pairs import *  # noqa: F403
from ._metric_softmax import *  # noqa: F403

__all__ = [*_metric_pairs.__all__, *_metric_softmax.__all__, *_metric_margins.__all__,
           *_metric_batch.__all__, *_metric_learned.__all__]
