"""Batch normalisation: BatchNorm1d/2d/3d.

Shape: unchanged. ``BatchNorm1d`` takes ``[C]`` or ``[C, L]``, ``BatchNorm2d`` ``[C, H, W]``,
``BatchNorm3d`` ``[C, D, H, W]``. Params: ``2*C`` when ``affine`` (running stats are buffers).
"""


from typing import Any, ClassVar

from .. import formulas as F
from .base import KEEP, Arg, Inference, Layer, Note, Saved, Shape, register
from .conv import check_channels


class _BatchNorm(Layer):
    family = "normalisation"
    in_ranks: ClassVar[tuple[int, ...]] = ()
    layout: ClassVar[str] = ""

    num_features = Arg("int", None, "Channels C; inferred from the input when omitted.", ge=1, nullable=True)
    eps = Arg("float", 1e-5, "Added to the variance for numerical stability.", ge=0)
    momentum = Arg("float", 0.1, "Running-stat momentum (null: cumulative average).", nullable=True)
    affine = Arg("bool", True, "Learnable per-channel scale and shift (2*C params).")
    track_running_stats = Arg("bool", True, "Keep running mean/var buffers.")

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, self.in_ranks, self.layout)
        check_channels(self, self.num_features, shape[0], "num_features", shape)
        notes = ()
        per_channel = batch * F.prod(shape[1:])
        if per_channel == 1:
            notes = (Note(
                f"{self.type} in training mode needs more than 1 value per channel; with batch "
                f"{batch} and input {list(shape)} it gets 1 (training would fail, eval works)",
                "set batch: 2 or more in the spec (or train with batches of 2+)"),)
        return Inference(shape, 2 * shape[0] if self.affine else 0, 0, KEEP, notes)

    def saved(self, shape, out, batch):
        """The input and the batch mean and inverse std per channel (the input's dtype)."""
        return (Saved("input"), Saved("new", shape[0]), Saved("new", shape[0]))

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {**self.args(), "num_features": shape[0]}


@register
class BatchNorm1d(_BatchNorm):
    """Batch norm over ``[C]`` or ``[C, L]``; shape unchanged."""
    rank = 1
    in_ranks = (1, 2)
    layout = "[C] or [C, L]"


@register
class BatchNorm2d(_BatchNorm):
    """Batch norm over ``[C, H, W]``; shape unchanged."""
    rank = 2
    in_ranks = (3,)
    layout = "[C, H, W]"


@register
class BatchNorm3d(_BatchNorm):
    """Batch norm over ``[C, D, H, W]``; shape unchanged."""
    rank = 3
    in_ranks = (4,)
    layout = "[C, D, H, W]"
