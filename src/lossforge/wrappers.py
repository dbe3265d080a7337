"""Wrappers usable with any loss: deep supervision over several output scales, and per-class selection.

- :class:`DeepSupervision` applies one loss to every output scale of a network (a U-Net's auxiliary
  heads) with the target resized to each scale (nearest neighbour, so class indices stay class
  indices), and sums the results with weights.
- :class:`ClassSelect` evaluates a loss on a subset of the classes (channels) only.

Both are modules that compose like any loss (``lf.DeepSupervision(lf.DiceLoss()) + lf.CrossEntropyLoss()``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._core.compose import Composable
from ._core.errors import ShapeError, did_you_mean, message

__all__ = ["DeepSupervision", "ClassSelect", "resize_target"]

LossFn = nn.Module | Callable[..., Tensor]

_INTERPOLATIONS = ("nearest", "area")


def _wrap(loss: LossFn, where: str) -> nn.Module | Callable[..., Tensor]:
    if not callable(loss):
        raise TypeError(message(where, "loss", "must be a loss module or callable", type(loss).__name__))
    return loss


def _nearest_index(size_in: int, size_out: int, device: torch.device) -> Tensor:
    """Centre-aligned nearest source index of every output position (torch's ``nearest-exact``)."""
    scale = size_in / size_out
    idx = ((torch.arange(size_out, device=device, dtype=torch.float64) + 0.5) * scale).floor().to(torch.int64)
    return idx.clamp_(0, size_in - 1)


def resize_target(target: Tensor, size: Sequence[int], *, channel_dim: bool, interpolation: str = "nearest") -> Tensor:
    """Resize a target's spatial dimensions to ``size``.

    Args:
        target: Class indices ``(N, *spatial)`` (``channel_dim=False``) or a target ``(N, C, *spatial)``.
        size: The new spatial size.
        channel_dim: Whether dimension 1 is a channel dimension (not resized).
        interpolation: ``"nearest"`` (centre-aligned, exact for any dtype: class indices and
            ``ignore_index`` values are kept as they are), or ``"area"`` (floating targets only: the
            mean of each output cell, so a binary mask becomes the fraction of foreground).

    Returns:
        The resized target, of the input's dtype.
    """
    first = 2 if channel_dim else 1
    spatial = tuple(target.shape[first:])
    size = tuple(int(s) for s in size)
    if len(size) != len(spatial):
        raise ShapeError(message("resize_target", "size", f"must have {len(spatial)} entries for a target of "
                                 f"shape {tuple(target.shape)}", size), expected=len(spatial), actual=len(size))
    if size == spatial:
        return target
    if interpolation == "area":
        if not target.is_floating_point():
            raise TypeError(message("resize_target", "target", "must be floating point for interpolation='area'",
                                    f"dtype {target.dtype}", hint="use interpolation='nearest' for class indices"))
        x = target if channel_dim else target.unsqueeze(1)
        out = F.interpolate(x, size=size, mode="area")
        return out if channel_dim else out.squeeze(1)
    out = target
    for d, (n_in, n_out) in enumerate(zip(spatial, size)):
        if n_in != n_out:
            out = out.index_select(first + d, _nearest_index(n_in, n_out, target.device))
    return out


class DeepSupervision(Composable, nn.Module):
    """One loss over several output scales, the target resized to each: deep supervision.

    Called with a sequence of outputs (``[full, 1/2, 1/4, ...]``, each ``(N, C, *spatial_i)``) and
    one target at any resolution, it returns

    .. math::
        L = \\sum_i w_i\\, \\ell\\big(y_i,\\ \\operatorname{resize}(t, \\text{size of } y_i)\\big).

    Args:
        loss: Any loss module or callable ``loss(output, target, **kwargs)``.
        weights: One weight per scale; default ``2^{-i}`` normalised to sum to 1 (nnU-Net's
            choice), for as many scales as the call passes.
        interpolation: How the target is resized: ``"nearest"`` (default; centre-aligned, keeps
            class indices and ``ignore_index`` exact) or ``"area"`` (floating targets: soft
            labels as the fraction of each cell).

    A target with one dimension less than the outputs is taken as class indices ``(N, *spatial)``;
    one with the outputs' number of dimensions as ``(N, C, *spatial)``. Call-time keywords
    (``sample_weight``, ``mask``) are passed to every scale. :meth:`terms` returns each scale's value.

    Examples:
        >>> import torch, lossforge as lf
        >>> from lossforge.wrappers import DeepSupervision
        >>> ds = DeepSupervision(lf.DiceLoss(), weights=[1.0, 0.5])
        >>> target = torch.zeros(1, 4, 4, dtype=torch.long)
        >>> target[:, :2] = 1
        >>> full, half = torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 2, 2)
        >>> {k: round(float(v), 4) for k, v in ds.terms([full, half], target).items()}
        {'scale0': 0.4706, 'scale1': 0.4, 'total': 0.6706}
    """

    def __init__(self, loss: LossFn, *, weights: Sequence[float] | None = None,
                 interpolation: str = "nearest") -> None:
        super().__init__()
        self.loss = _wrap(loss, "DeepSupervision")
        if weights is not None:
            ws = list(weights)
            if not ws or any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 for w in ws):
                raise ValueError(message("DeepSupervision", "weights", "must be a non-empty sequence of numbers >= 0",
                                         ws))
            weights = [float(w) for w in ws]
        self.weights = weights
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(message("DeepSupervision", "interpolation", f"must be one of {_INTERPOLATIONS}",
                                     repr(interpolation)) + did_you_mean(interpolation, _INTERPOLATIONS))
        self.interpolation = interpolation
        self.reduction = getattr(loss, "reduction", "mean")

    def scale_weights(self, scales: int) -> list[float]:
        """The weight of each of ``scales`` outputs."""
        if self.weights is None:
            raw = [2.0 ** -i for i in range(scales)]
            total = sum(raw)
            return [w / total for w in raw]
        if len(self.weights) != scales:
            raise ValueError(message("DeepSupervision", "outputs", f"must hold {len(self.weights)} scales (one per "
                                     "weight)", f"{scales} outputs"))
        return list(self.weights)

    def terms(self, outputs: Sequence[Tensor] | Tensor, target: Tensor, **kwargs: Any) -> dict[str, Tensor]:
        """Each scale's (unweighted) loss ``"scale0"``, ``"scale1"``, ... and the weighted ``"total"``."""
        outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
        if not outs or not all(isinstance(o, Tensor) for o in outs):
            raise TypeError(message("DeepSupervision", "outputs", "must be a tensor or a non-empty sequence of tensors",
                                    type(outputs).__name__))
        weights = self.scale_weights(len(outs))
        values: dict[str, Tensor] = {}
        total: Tensor | None = None
        for i, (out, w) in enumerate(zip(outs, weights)):
            if target.dim() == out.dim() - 1:
                resized = resize_target(target, out.shape[2:], channel_dim=False, interpolation=self.interpolation)
            elif target.dim() == out.dim():
                resized = resize_target(target, out.shape[2:], channel_dim=True, interpolation=self.interpolation)
            else:
                raise ShapeError(message("DeepSupervision", "target", f"must have {out.dim() - 1} (class indices) or "
                                         f"{out.dim()} dimensions for output {i} of shape {tuple(out.shape)}",
                                         tuple(target.shape)), expected=out.dim(), actual=target.dim())
            value = self.loss(out, resized, **kwargs)
            values[f"scale{i}"] = value
            if w != 0.0:
                total = w * value if total is None else total + w * value
        values["total"] = total if total is not None else values["scale0"] * 0.0
        return values

    def forward(self, outputs: Sequence[Tensor] | Tensor, target: Tensor, **kwargs: Any) -> Tensor:
        return self.terms(outputs, target, **kwargs)["total"]

    def extra_repr(self) -> str:
        return f"weights={self.weights}, interpolation={self.interpolation!r}"


_REST = ("drop", "merge")


class ClassSelect(Composable, nn.Module):
    """Evaluate a loss on a subset of the classes (channels) only.

    Args:
        loss: Any loss module or callable ``loss(logits, target, **kwargs)``.
        classes: The classes to keep, in the order the wrapped loss sees them.
        rest: What happens to the other classes.

            - ``"drop"`` (default): their channels are removed. A target of the logits' shape
              (binary, multilabel) loses the same channels; in a class-index target their pixels
              become ``ignore_index`` and the kept classes are renumbered ``0..K-1`` (a softmax
              loss then normalises over the kept classes only).
            - ``"merge"``: they are merged into one extra last channel, the ``logsumexp`` of their
              logits, so the softmax probabilities of the kept classes are exactly the full
              model's; in a class-index target their pixels become class ``K``, in a
              class-probability target their probabilities are summed. The wrapped loss sees
              ``K + 1`` classes.
        ignore_index: The value that marks ignored pixels of a class-index target (kept as it is);
            must be the wrapped loss's ``ignore_index``.

    Examples:
        >>> import torch, lossforge as lf
        >>> logits, target = torch.randn(2, 4, 3, 3), torch.randint(0, 4, (2, 3, 3))
        >>> from lossforge.wrappers import ClassSelect
        >>> sel = ClassSelect(lf.CrossEntropyLoss(), classes=[1, 3])
        >>> x, t = sel.select(logits, target)
        >>> tuple(x.shape), sorted(set(t.unique().tolist()) - {-100}) <= [0, 1]
        ((2, 2, 3, 3), True)
    """

    def __init__(self, loss: LossFn, classes: Sequence[int], *, rest: str = "drop", ignore_index: int = -100) -> None:
        super().__init__()
        self.loss = _wrap(loss, "ClassSelect")
        items = list(classes)
        if not items or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in items):
            raise ValueError(message("ClassSelect", "classes", "must be a non-empty sequence of class indices >= 0",
                                     items))
        if len(set(items)) != len(items):
            raise ValueError(message("ClassSelect", "classes", "must not repeat a class", items))
        if rest not in _REST:
            raise ValueError(message("ClassSelect", "rest", f"must be one of {_REST}", repr(rest))
                             + did_you_mean(rest, _REST))
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise TypeError(message("ClassSelect", "ignore_index", "must be an int", repr(ignore_index)))
        self.classes = items
        self.rest = rest
        self.ignore_index = ignore_index
        self.reduction = getattr(loss, "reduction", "mean")

    def select(self, logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """The logits and target the wrapped loss receives."""
        if not isinstance(logits, Tensor) or logits.dim() < 2:
            raise ShapeError(message("ClassSelect", "logits", "must be a tensor (N, C, *)",
                                     tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__),
                             expected="(N, C, *)", actual=getattr(logits, "shape", None))
        c = logits.shape[1]
        if max(self.classes) >= c:
            raise ValueError(message("ClassSelect", "classes", f"must hold classes in [0, {c - 1}]", self.classes))
        keep = torch.tensor(self.classes, device=logits.device)
        others = [k for k in range(c) if k not in set(self.classes)]
        merge = self.rest == "merge" and bool(others)
        x = logits.index_select(1, keep)
        if merge:
            rest_idx = torch.tensor(others, device=logits.device)
            x = torch.cat([x, torch.logsumexp(logits.index_select(1, rest_idx), 1, keepdim=True)], 1)
        if target.dim() == logits.dim():  # (N, C, *): binary, multilabel or class probabilities
            t = target.index_select(1, keep)
            if merge:
                t = torch.cat([t, target.index_select(1, rest_idx).sum(1, keepdim=True)], 1)
            return x, t
        if target.is_floating_point():
            raise TypeError(message("ClassSelect", "target", "must be integer class indices when it has no class "
                                    "dimension", f"dtype {target.dtype}"))
        lut = torch.full((c,), len(self.classes) if merge else self.ignore_index, dtype=target.dtype,
                         device=target.device)
        lut[keep] = torch.arange(len(self.classes), dtype=target.dtype, device=target.device)
        ignored = target == self.ignore_index
        safe = torch.where(ignored, torch.zeros_like(target), target).clamp(0, c - 1)
        return x, torch.where(ignored, target, lut[safe])

    def forward(self, logits: Tensor, target: Tensor, **kwargs: Any) -> Tensor:
        x, t = self.select(logits, target)
        return self.loss(x, t, **kwargs)

    def extra_repr(self) -> str:
        return f"classes={self.classes}, rest={self.rest!r}, ignore_index={self.ignore_index}"
