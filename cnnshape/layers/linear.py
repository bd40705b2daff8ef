"""Linear, applied to the last axis (as torch does).

Shape: ``[*, in_features]`` -> ``[*, out_features]``. Params ``in*out (+ out)``; MACs
``prod(output) * in_features``.
"""


from typing import Any

from ..rules import fixed, same
from .. import formulas as F
from .base import KEEP, MIX, Arg, Inference, Layer, LayerError, Note, Saved, Shape, register, shape_str


@register
class Linear(Layer):
    """Dense layer on the last axis: ``[*, in_features]`` -> ``[*, out_features]``."""

    family = "dense"
    needs_contiguous = True
    in_features = Arg("int", None, "Size of the last input axis; inferred when omitted.", ge=1, nullable=True,
                      inferred_from="features")
    out_features = Arg("int", doc="Size of the output's last axis.", ge=1)
    bias = Arg("bool", True, "Add a learnable bias.")

    def infer(self, shape: Shape, batch: int) -> Inference:
        last = shape[-1]
        if self.in_features is not None and self.in_features != last:
            where = (f"the size of the incoming {shape_str(shape)}" if len(shape) == 1 else
                     f"the last axis of the incoming {shape_str(shape)}")
            raise LayerError(
                f"Linear expected in_features = {last} ({where}), received in_features: {self.in_features}",
                f"set in_features: {last}, or remove in_features to have it inferred", "in_features",
                fix={"in_features": last})
        notes = ()
        if len(shape) > 1:
            notes = (Note(
                f"Linear is applied to the last axis of the feature map {shape_str(shape)} "
                f"(output {shape_str((*shape[:-1], self.out_features))}), not to all "
                f"{F.prod(shape)} values",
                "insert Flatten before this layer to connect every value"),)
        out = (*shape[:-1], self.out_features)
        params = last * self.out_features + (self.out_features if self.bias else 0)
        return Inference(out, params, F.prod(out) * last, KEEP if len(shape) == 1 else MIX, notes)

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """The last axis must equal in_features (fixed at the declared input)."""
        if dim == len(shape) - 1:
            return fixed(dim, shape[-1], self.out_features, inferred=self.in_features is None)
        return same(dim)

    def saved(self, shape, out, batch):
        return (Saved("input", when="params"),)  # a [N*..., in_features] view of it, for the weight

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        kw = {"in_features": shape[-1], "out_features": self.out_features}
        if "bias" in self.fields_set:
            kw["bias"] = self.bias
        return kw
