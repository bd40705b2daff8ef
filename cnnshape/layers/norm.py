"""Normalisation: BatchNorm1d/2d/3d, GroupNorm, LayerNorm, LayerNorm2d, InstanceNorm1d/2d/3d,
LocalResponseNorm.

Shape: unchanged. ``BatchNorm1d`` takes ``[C]`` or ``[C, L]``, ``BatchNorm2d`` ``[C, H, W]``,
``BatchNorm3d`` ``[C, D, H, W]``; ``InstanceNormNd`` the same ranks as ``ConvNd``; ``GroupNorm``
and ``LayerNorm`` any rank. Params: ``2*C`` when ``affine`` (running stats are buffers);
``LayerNorm``: ``2*prod(normalized_shape)``; ``C`` when the shift is off (``bias: false``).
"""


from typing import Any, ClassVar

from ..rules import Case, Rule, affine, fixed, same
from .. import formulas as F
from .base import KEEP, Arg, Inference, Layer, LayerError, Note, Saved, Shape, register, shape_str
from .conv import check_channels


class _BatchNorm(Layer):
    family = "normalisation"
    in_ranks: ClassVar[tuple[int, ...]] = ()
    layout: ClassVar[str] = ""

    num_features = Arg("int", None, "Channels C; inferred from the input when omitted.", ge=1, nullable=True,
                       inferred_from="channels")
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

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels fixed at num_features (free without affine and running stats: nothing
        of that size is kept); other sizes pass through. Without running stats torch uses
        the batch's statistics even in eval: more than one value per channel."""
        if dim == 0 and (self.affine or self.track_running_stats):
            return fixed(0, shape[0], inferred=self.num_features is None)
        if dim > 0 and not self.track_running_stats and batch * F.prod(shape[1:]) // shape[dim] == 1:
            return affine(dim, 1, lo=2)
        return same(dim)


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


# ------------------------------------------------------------------ per-sample norms
# Receptive field: GroupNorm, InstanceNorm, LayerNorm and LayerNorm2d keep it (KEEP). Their
# statistics (one mean/variance per sample and group / channel / normalised slice) are
# computed over the whole map, so strictly every output depends on every input position of
# its group; cnnshape reports the local path only, as for BatchNorm (whose training-mode
# statistics are global too). LocalResponseNorm mixes channels only: KEEP.

def _values(v) -> list:
    return v if isinstance(v, list) else [v]


@register
class GroupNorm(Layer):
    """Group norm over ``[C, *]`` (C divisible by num_groups); shape unchanged.
    Params ``2*C`` when ``affine`` (``C`` without ``bias``)."""

    family = "normalisation"
    num_groups = Arg("int", doc="Groups the channels are split into (must divide C).", ge=1)
    num_channels = Arg("int", None, "Channels C; inferred from the input when omitted.", ge=1, nullable=True,
                       inferred_from="channels")
    eps = Arg("float", 1e-5, "Added to the variance for numerical stability.", ge=0)
    affine = Arg("bool", True, "Learnable per-channel scale and shift.")
    bias = Arg("bool", True, "With affine: learn the shift too.")

    def saved(self, shape, out, batch):
        """The input and the mean and inverse std per (sample, group)."""
        return (Saved("input"), Saved("new", batch * self.num_groups), Saved("new", batch * self.num_groups))

    def infer(self, shape: Shape, batch: int) -> Inference:
        c = shape[0]
        check_channels(self, self.num_channels, c, "num_channels", shape)
        g = self.num_groups
        if c % g:
            divisors = [d for d in range(1, c + 1) if c % d == 0]
            raise LayerError(
                f"num_channels ({c}) must be divisible by num_groups ({g}): {c} % {g} = {c % g}",
                f"use num_groups in {divisors}" if len(divisors) <= 8 else f"use a num_groups that divides {c}",
                "num_groups")
        if batch * (c // g) * F.prod(shape[1:]) == 1:
            raise LayerError(
                f"GroupNorm needs more than 1 value per group: batch {batch} × {c // g} channel(s) per group "
                f"× {F.prod(shape[1:])} position(s) = 1 (torch refuses it, even in eval)",
                "use fewer groups, a larger map, or batch: 2 or more", "num_groups")
        params = (c * (2 if self.bias else 1)) if self.affine else 0
        return Inference(shape, params)

    def explain(self, shape: Shape) -> list[str]:
        return [f"{shape[0]} channels in {self.num_groups} groups of {shape[0] // self.num_groups}"] if shape else []

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels fixed; more than one value per group (batch × C/groups × positions)."""
        g = self.num_groups
        if dim == 0 and self.affine:
            return fixed(0, shape[0], inferred=self.num_channels is None)
        if dim == 0:  # no weight: only divisible by num_groups, > 1 value per group
            rest = batch * F.prod(shape[1:])
            return Rule((Case(1, 0, 1, 2 * g if rest == 1 else 1, mod=g, res=0),), 0)
        rest = batch * (shape[0] // g) * F.prod(shape[1:]) // shape[dim]
        return affine(dim, 1, lo=2 if rest == 1 else 1)

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {"num_groups": self.num_groups, "num_channels": shape[0],
                **{k: v for k, v in self.args().items() if k not in ("num_groups", "num_channels")}}


class _LayerNormBase(Layer):
    family = "normalisation"
    eps = Arg("float", 1e-5, "Added to the variance for numerical stability.", ge=0)
    elementwise_affine = Arg("bool", True, "Learnable scale (and shift) per normalised element.")
    bias = Arg("bool", True, "With elementwise_affine: learn the shift too.")

    def _params(self, n: int) -> int:
        return n * (2 if self.bias else 1) if self.elementwise_affine else 0


@register
class LayerNorm(_LayerNormBase):
    """Normalise over the trailing axes ``normalized_shape`` (the input must end with them);
    shape unchanged. Params ``2*prod(normalized_shape)`` with elementwise_affine."""

    normalized_shape = Arg("ints", doc="Trailing axes to normalise over, e.g. [C, H, W] or the last "
                           "axis size.", ge=1, inferred_from="trailing")

    def check_args(self, values: dict) -> None:
        if values["normalized_shape"] == []:
            raise LayerError("LayerNorm.normalized_shape: expected at least one axis, received []",
                             "give the size(s) of the trailing axes, e.g. [C, H, W]", "normalized_shape")

    def saved(self, shape, out, batch):
        """The input and the mean and inverse std per normalised slice."""
        k = len(self.normalized_shape) if isinstance(self.normalized_shape, list) else 1
        n = batch * F.prod(shape[:len(shape) - k])
        return (Saved("input"), Saved("new", n), Saved("new", n))

    def infer(self, shape: Shape, batch: int) -> Inference:
        ns = tuple(_values(self.normalized_shape))
        k = len(ns)
        if k > len(shape) or tuple(shape[-k:]) != ns:
            fit = list(shape[-k:]) if k <= len(shape) else list(shape)
            raise LayerError(
                f"LayerNorm normalized_shape {list(ns)} expects the input to end with {list(ns)}, "
                f"received {shape_str(shape)}" + (" (it would cover the batch axis)" if k > len(shape) else ""),
                f"set normalized_shape: {fit}", "normalized_shape", fix={"normalized_shape": fit})
        return Inference(shape, self._params(F.prod(ns)))

    def explain(self, shape: Shape) -> list[str]:
        return [f"normalise over the last {len(_values(self.normalized_shape))} axes {_values(self.normalized_shape)}"]

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """The normalised trailing axes are fixed at normalized_shape; others pass."""
        k = len(_values(self.normalized_shape))
        return fixed(dim, shape[dim]) if dim >= len(shape) - k else same(dim)


@register
class LayerNorm2d(_LayerNormBase):
    """LayerNorm over the channels of ``[C, H, W]`` (torchvision's ConvNeXt ``LayerNorm2d``);
    shape unchanged. Params ``2*C``."""

    torch_module = "LayerNorm2d"
    normalized_shape = Arg("ints", None, "Channels C; inferred from the input when omitted.", ge=1,
                           nullable=True, inferred_from="channels")

    def saved(self, shape, out, batch):
        """The (channels-last view of the) input and the mean and inverse std per position."""
        n = batch * F.prod(shape[1:])
        return (Saved("input"), Saved("new", n), Saved("new", n))

    def contiguous_output(self, contiguous_input: bool) -> bool:
        return False  # permuted back to channels first: a strided view

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (3,), "[C, H, W]", "LayerNorm2d works on 2-d maps; use LayerNorm for others")
        if self.normalized_shape is not None and _values(self.normalized_shape) != [shape[0]]:
            raise LayerError(
                f"LayerNorm2d expected normalized_shape = {shape[0]} (the channels of the incoming "
                f"{shape_str(shape)}), received normalized_shape: {self.normalized_shape}",
                f"set normalized_shape: {shape[0]}, or remove it to have it inferred", "normalized_shape",
                fix={"normalized_shape": shape[0]})
        return Inference(shape, self._params(shape[0]))

    def explain(self, shape: Shape) -> list[str]:
        return [f"normalise over the {shape[0]} channels at each of the {F.prod(shape[1:])} positions"] if shape else []

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {"normalized_shape": shape[0], **{k: v for k, v in self.args().items() if k != "normalized_shape"}}

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels fixed; spatial sizes pass."""
        return fixed(0, shape[0], inferred=self.normalized_shape is None) if dim == 0 else same(dim)


class _InstanceNorm(Layer):
    family = "normalisation"
    layout: ClassVar[str] = ""

    num_features = Arg("int", None, "Channels C; inferred from the input when omitted.", ge=1, nullable=True,
                       inferred_from="channels")
    eps = Arg("float", 1e-5, "Added to the variance for numerical stability.", ge=0)
    momentum = Arg("float", 0.1, "Running-stat momentum (null: cumulative average).", nullable=True)
    affine = Arg("bool", False, "Learnable per-channel scale and shift (2*C params).")
    track_running_stats = Arg("bool", False, "Keep running mean/var buffers (used in eval).")
    bias = Arg("bool", True, "With affine: learn the shift too.")

    def saved(self, shape, out, batch):
        """The input (as a [1, N*C, ...] view), the mean and inverse std per (sample, channel),
        and the per-sample copies torch makes of the weight (affine) and the running stats."""
        n = batch * shape[0]
        extra = (1 if self.affine else 0) + (2 if self.track_running_stats else 0)
        return (Saved("input"),) + tuple(Saved("new", n) for _ in range(2 + extra))

    def infer(self, shape: Shape, batch: int) -> Inference:
        # [C] / one rank lower is torch's *unbatched* form: it would read the batch as channels
        self.expect_rank(shape, (self.rank + 1,), self.layout)
        c, notes = shape[0], []
        if self.num_features is not None and self.num_features != c:
            if self.affine or self.track_running_stats:
                check_channels(self, self.num_features, c, "num_features", shape)
            notes.append(Note(
                f"{self.type} num_features: {self.num_features} differs from the {c} incoming channels "
                "(torch only warns without affine/running stats)",
                f"set num_features: {c}, or remove it", "num_features", fix={"num_features": c}))
        if F.prod(shape[1:]) == 1:
            if not self.track_running_stats:
                raise LayerError(
                    f"{self.type} needs more than 1 spatial element per channel, received {shape_str(shape)} "
                    "(torch refuses it, even in eval, without running stats)",
                    "normalise a larger map, or remove this layer", None)
            notes.append(Note(f"{self.type} in training mode needs more than 1 spatial element, received "
                              f"{shape_str(shape)} (training would fail, eval works)",
                              "normalise a larger map"))
        params = c * (2 if self.bias else 1) if self.affine else 0
        return Inference(shape, params, 0, KEEP, tuple(notes))

    def explain(self, shape: Shape) -> list[str]:
        return [f"per sample and channel: mean/variance over {F.prod(shape[1:])} positions"] if shape else []

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {**self.args(), "num_features": self.num_features or shape[0]}

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels fixed with affine / running stats; without running stats more than one
        spatial element per channel."""
        if dim == 0:
            return fixed(0, shape[0], inferred=self.num_features is None) if self.affine or self.track_running_stats else same(0)
        single = F.prod(shape[1:]) // shape[dim] == 1 and not self.track_running_stats
        return affine(dim, 1, lo=2 if single else 1)


@register
class InstanceNorm1d(_InstanceNorm):
    """Instance norm over ``[C, L]`` (per sample and channel); shape unchanged."""
    rank = 1
    layout = "[C, L]"


@register
class InstanceNorm2d(_InstanceNorm):
    """Instance norm over ``[C, H, W]`` (per sample and channel); shape unchanged."""
    rank = 2
    layout = "[C, H, W]"


@register
class InstanceNorm3d(_InstanceNorm):
    """Instance norm over ``[C, D, H, W]`` (per sample and channel); shape unchanged."""
    rank = 3
    layout = "[C, D, H, W]"


@register
class LocalResponseNorm(Layer):
    """Normalise each value by its ``size`` neighbouring channels (AlexNet); input ``[C, *spatial]``
    with at least one spatial axis; shape unchanged."""

    family = "normalisation"
    size = Arg("int", doc="Number of neighbouring channels.", ge=1)
    alpha = Arg("float", 1e-4, "Multiplicative factor.")
    beta = Arg("float", 0.75, "Exponent.")
    k = Arg("float", 1.0, "Additive factor.")

    def saved(self, shape, out, batch):
        """The input, the zero-padded squared input (channels + size - 1) and two
        input-sized intermediates (the divisor and its power)."""
        n = batch * F.prod(shape)
        padded = batch * (shape[0] + self.size - 1) * F.prod(shape[1:])
        return (Saved("input"), Saved("new", padded), Saved("new", n), Saved("new", n))

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, tuple(range(2, 9)), "[C, L], [C, H, W] or [C, D, H, W]",
                         "LocalResponseNorm needs a feature map with channels: move it before Flatten")
        notes = ()
        if len(shape) >= 4:
            notes = (Note(
                f"LocalResponseNorm on {shape_str(shape)} views its input as (N, 1, C, D, H*W...): torch "
                "fails if that input is a permuted (non-contiguous) tensor, e.g. right after a Permute",
                "put a layer that makes a new tensor (e.g. a convolution) between Permute and this layer"),)
        return Inference(shape, notes=notes)

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        return same(dim)

    def explain(self, shape: Shape) -> list[str]:
        return [f"x / ({self.k} + {self.alpha}/{self.size} * sum of x² over {self.size} neighbouring channels)^{self.beta}"]
