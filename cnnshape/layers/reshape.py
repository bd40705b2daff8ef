"""Flatten.

Shape: dims ``start_dim..end_dim`` of the batched tensor ``(N, *shape)`` are merged into
one: ``(N, 4, 13, 13)`` -> ``(N, 676)`` with the defaults ``start_dim=1, end_dim=-1``.
"""


from .. import formulas as F
from .base import KEEP, MIX, Arg, Inference, Layer, LayerError, Shape, register


@register
class Flatten(Layer):
    """Merge dims ``start_dim..end_dim`` (indices of the batched tensor)."""

    family = "reshape"
    flattens = True
    start_dim = Arg("int", 1, "First dim to merge (index of the batched tensor).")
    end_dim = Arg("int", -1, "Last dim to merge (index of the batched tensor).")

    def dims(self, ndim: int) -> tuple[int, int]:
        """Normalised (start, end) for a batched tensor of ``ndim`` dims; raise when out of range."""
        out = []
        for key in ("start_dim", "end_dim"):
            v = getattr(self, key)
            if not -ndim <= v < ndim:
                raise LayerError(
                    f"{key} out of range: expected {-ndim} ≤ {key} ≤ {ndim - 1} for the batched "
                    f"{ndim}-d tensor, received {key}: {v}",
                    f"use {key}: {1 if key == 'start_dim' else -1}", key)
            out.append(v % ndim)
        return out[0], out[1]

    def aliases_input(self, training: bool = True) -> bool:
        return True  # a view

    def infer(self, shape: Shape, batch: int) -> Inference:
        batched = (batch, *shape)
        s, e = self.dims(len(batched))
        if s > e:
            raise LayerError(
                f"start_dim cannot come after end_dim: start_dim {self.start_dim} is dim {s}, "
                f"end_dim {self.end_dim} is dim {e} of the batched {len(batched)}-d tensor",
                "use start_dim: 1, end_dim: -1", "start_dim")
        if s == 0 and e > 0:
            raise LayerError(
                "Flatten merges the batch axis into the features (start_dim: 0), so the model "
                "would no longer be batched and every shape would depend on the batch size",
                "use start_dim: 1", "start_dim")
        if s == e:
            return Inference(shape)
        out = batched[:s] + (F.prod(batched[s:e + 1]),) + batched[e + 1:]
        # merging a spatial axis (batched index >= 2) mixes positions: no receptive field after
        return Inference(out[1:], rf=MIX if e >= 2 else KEEP)
