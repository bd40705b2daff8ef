"""Dropout, Dropout1d, Dropout2d, Dropout3d, AlphaDropout, FeatureAlphaDropout,
StochasticDepth. Shape: unchanged.

``Dropout`` takes any shape. ``Dropout1d`` needs ``[C, L]`` (torch would read a ``[F]``
input's batch axis as channels, so cnnshape rejects it). ``Dropout2d``/``Dropout3d`` expect
``[C, H, W]``/``[C, D, H, W]``; on other ranks torch only warns, and so does cnnshape.
"""


from typing import ClassVar

from .base import KEEP, Arg, Inference, Layer, Note, Saved, Shape, register, shape_str


class _Dropout(Layer):
    family = "dropout"
    pointwise = True
    expected: ClassVar[int | None] = None
    layout: ClassVar[str] = ""

    p = Arg("float", 0.5, "Drop probability in [0, 1].", ge=0.0, le=1.0)
    inplace = Arg("bool", False, "Operate in place.")

    def infer(self, shape: Shape, batch: int) -> Inference:
        notes = ()
        if self.expected is not None and len(shape) != self.expected:
            notes = (Note(
                f"{self.type} expects {self.layout}, received {shape_str(shape)}: torch warns "
                "and drops channels of a different layout",
                f"use Dropout{len(shape) - 1}d" if 2 <= len(shape) <= 4 else "use Dropout"),)
        return Inference(shape, 0, 0, KEEP, notes)

    def mask_numel(self, shape: Shape, batch: int) -> int:
        """Elements of the mask torch multiplies by (the input's dtype)."""
        n = batch
        for s in shape:
            n *= s
        return n

    def saved(self, shape, out, batch):
        """The mask (p = 1: a scalar zero; p = 0: nothing, the input is returned)."""
        if self.p == 0:
            return ()
        return (Saved("new", 1 if self.p == 1 else self.mask_numel(shape, batch)),)

    def aliases_input(self, training: bool = True) -> bool:
        return self.inplace or self.p == 0 or not training  # eval: the input itself

    def contiguous_output(self, contiguous_input: bool) -> bool:
        return contiguous_input


def _feature_mask(self, shape: Shape, batch: int) -> int:
    """One mask value per (sample, channel)."""
    return batch * shape[0]


@register
class Dropout(_Dropout):
    """Element-wise dropout; any shape, unchanged."""


@register
class Dropout1d(_Dropout):
    """Channel dropout over ``[C, L]``; shape unchanged."""
    mask_numel = _feature_mask

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (2,), "[C, L]",
                         "use Dropout for feature vectors" if len(shape) == 1 else
                         f"use Dropout{len(shape) - 1}d" if len(shape) <= 4 else "use Dropout")
        return Inference(shape)


@register
class Dropout2d(_Dropout):
    """Channel dropout over ``[C, H, W]``; shape unchanged."""
    mask_numel = _feature_mask
    expected = 3
    layout = "[C, H, W]"


@register
class Dropout3d(_Dropout):
    """Channel dropout over ``[C, D, H, W]``; shape unchanged."""
    mask_numel = _feature_mask
    expected = 4
    layout = "[C, D, H, W]"


@register
class AlphaDropout(_Dropout):
    """Alpha dropout (keeps SELU's mean and variance); any shape, unchanged."""

    def aliases_input(self, training: bool = True) -> bool:
        return self.p == 0 or not training  # inplace alpha dropout still returns a new tensor


@register
class FeatureAlphaDropout(_Dropout):
    """Alpha dropout of whole channels; any shape, unchanged."""
    mask_numel = _feature_mask
    aliases_input = AlphaDropout.aliases_input


@register
class StochasticDepth(Layer):
    """Drop the whole input per sample (``mode: row``) or per batch (``mode: batch``) with
    probability ``p`` in training (``torchvision.ops.StochasticDepth``); any shape, unchanged."""

    family = "dropout"
    pointwise = True
    torch_module = "StochasticDepth"
    p = Arg("float", doc="Drop probability in [0, 1].", ge=0.0, le=1.0)
    mode = Arg("choice", doc="row: per sample; batch: the whole batch.", choices=("row", "batch"))

    def saved(self, shape, out, batch):
        """The per-sample (row) or whole-batch (batch) keep mask, p = 0: nothing."""
        return () if self.p == 0 else (Saved("new", batch if self.mode == "row" else 1),)

    def aliases_input(self, training: bool = True) -> bool:
        return self.p == 0 or not training

    def infer(self, shape: Shape, batch: int) -> Inference:
        return Inference(shape)

    def torch_kwargs(self, shape: Shape) -> dict:
        return {"p": self.p, "mode": self.mode}
