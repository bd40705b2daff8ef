"""Flatten, Unflatten, Permute.

Shape: ``Flatten``: dims ``start_dim..end_dim`` of the batched tensor ``(N, *shape)`` are
merged into one: ``(N, 4, 13, 13)`` -> ``(N, 676)`` with the defaults ``start_dim=1, end_dim=-1``.
``Unflatten``: dim ``dim`` is split into ``unflattened_size``. ``Permute``: dims reordered.
Dims index the batched tensor, as in torch; none of them may touch the batch axis.

Receptive field: Flatten/Unflatten/Permute mix positions (the spatial axes lose their
meaning) unless they leave the spatial axes as they are: Flatten over channels only,
Unflatten into one size, the identity Permute.
"""


from ..rules import Case, Rule, fixed, same
from .. import formulas as F
from .base import KEEP, MIX, Arg, Inference, Layer, LayerError, Shape, register


@register
class Flatten(Layer):
    """Merge dims ``start_dim..end_dim`` (indices of the batched tensor): ``[C, H, W]`` -> ``[C*H*W]`` by default."""

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

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """The merged dim's size is the tracked size times the other merged sizes."""
        s, e = self.dims(len(shape) + 1)
        s, e = s - 1, e - 1  # per-sample indices
        if dim < s or s >= e:
            return same(dim)
        if dim > e:
            return same(dim - (e - s))
        others = F.prod(shape[s:e + 1]) // shape[dim]
        spatial = any(i >= 1 and i != dim for i in range(s, e + 1))
        return Rule((Case(others),), s, merges=spatial and dim >= 1)


def _batched_dim(layer: Layer, key: str, value: int, ndim: int) -> int:
    """``value`` normalised for a batched tensor of ``ndim`` dims; a located error when out of
    range or when it names the batch axis (0)."""
    if not -ndim <= value < ndim:
        raise LayerError(
            f"{key} out of range: expected {-ndim} ≤ {key} ≤ {ndim - 1} for the batched {ndim}-d tensor, "
            f"received {key}: {value}", f"use {key}: 1 (channels / features)", key)
    if value % ndim == 0:
        raise LayerError(
            f"{layer.type}.{key} {value} is the batch axis (dim 0 of the batched tensor): the model "
            "would no longer be batched", f"use {key} ≥ 1 (1 = channels / features)", key)
    return value % ndim


@register
class Unflatten(Layer):
    """Split dim ``dim`` (of the batched tensor) into ``unflattened_size``:
    ``[..., n, ...]`` -> ``[..., *unflattened_size, ...]`` with ``prod(unflattened_size) == n``
    (one entry may be -1: inferred)."""

    family = "reshape"
    dim = Arg("int", doc="Dim to split (index of the batched tensor; 1 = channels / features).")
    unflattened_size = Arg("ints", doc="New sizes of that dim, e.g. [64, 7, 7]; one entry may be -1.")

    def check_args(self, values: dict) -> None:
        sizes = values["unflattened_size"]
        sizes = sizes if isinstance(sizes, list) else [sizes]
        if not sizes:
            raise LayerError("Unflatten.unflattened_size: sizes must be non-empty, received []",
                             "give the new sizes, e.g. [64, 7, 7]", "unflattened_size")
        if sizes.count(-1) > 1:
            raise LayerError(f"Unflatten.unflattened_size: only one size can be inferred (-1), received {sizes}",
                             "replace all but one -1 by its size", "unflattened_size")
        bad = [s for s in sizes if s < 1 and s != -1]
        if bad:
            raise LayerError(f"Unflatten.unflattened_size: expected sizes ≥ 1 (or one -1), received {sizes}",
                             "use positive sizes", "unflattened_size")

    def _sizes(self) -> list[int]:
        return self.unflattened_size if isinstance(self.unflattened_size, list) else [self.unflattened_size]

    def torch_kwargs(self, shape: Shape) -> dict:
        """torch takes a tuple only (``unflattened_size: 2`` is the one-entry tuple)."""
        return {**super().torch_kwargs(shape), "unflattened_size": tuple(self._sizes())}

    def aliases_input(self, training: bool = True) -> bool:
        return True  # a view

    def contiguous_output(self, contiguous_input: bool) -> bool:
        return contiguous_input

    def infer(self, shape: Shape, batch: int) -> Inference:
        batched = (batch, *shape)
        d = _batched_dim(self, "dim", self.dim, len(batched))
        n, sizes = batched[d], self._sizes()
        known = F.prod(s for s in sizes if s != -1)
        if -1 in sizes:
            if n % known:
                raise LayerError(
                    f"Unflatten: provided sizes {sizes} don't multiply up to the size of dim {d} ({n}): "
                    f"{n} is not divisible by {known}",
                    f"choose sizes whose product divides {n}", "unflattened_size")
            sizes = [n // known if s == -1 else s for s in sizes]
        elif known != n:
            raise LayerError(
                f"Unflatten: provided sizes {sizes} don't multiply up to the size of dim {d}: expected product "
                f"{n}, received {known}",
                f"use sizes whose product is {n}, or write -1 for one of them", "unflattened_size")
        out = batched[1:d] + tuple(sizes) + batched[d + 1:]
        return Inference(out, rf=KEEP if len(sizes) == 1 else MIX)

    def explain(self, shape: Shape) -> list[str]:
        return [f"dim {self.dim}: {self._sizes()} (product = the split dim's size)"]

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """The split dim: with a -1 entry it must be a multiple of the known sizes (the -1
        entry gets the quotient), else equal to their product."""
        d = self.dim % (len(shape) + 1) - 1  # per-sample index
        sizes = self._sizes()
        if dim < d:
            return same(dim)
        if dim > d:
            return same(dim + len(sizes) - 1)
        known = F.prod(s for s in sizes if s != -1)
        if -1 in sizes:
            return Rule((Case(1, 0, known, mod=known, res=0),), d + sizes.index(-1))
        return fixed(d, shape[d], sizes[0])


@register
class Permute(Layer):
    """Reorder the dims of the batched tensor (``torchvision.ops.Permute``): output dim ``i`` is
    input dim ``dims[i]``; ``dims[0]`` must be 0 (the batch axis stays first): ``[C, H, W]`` ->
    ``[H, W, C]`` for ``dims: [0, 2, 3, 1]``."""

    family = "reshape"
    torch_module = "Permute"
    dims = Arg("ints", doc="A permutation of 0..ndim-1 of the batched tensor, e.g. [0, 2, 3, 1] "
               "(channels last).")

    def aliases_input(self, training: bool = True) -> bool:
        return True  # a strided view

    def contiguous_output(self, contiguous_input: bool) -> bool:
        dims = self.dims if isinstance(self.dims, list) else [self.dims]
        return contiguous_input and dims == sorted(dims)

    def infer(self, shape: Shape, batch: int) -> Inference:
        ndim = len(shape) + 1
        dims = self.dims if isinstance(self.dims, list) else [self.dims]
        if len(dims) != ndim:
            raise LayerError(
                f"Permute: number of dims don't match: the batched input has {ndim} dims "
                f"(N, {', '.join(map(str, shape))}), received {len(dims)} dims {dims}",
                f"give a permutation of 0..{ndim - 1}", "dims")
        norm = []
        for v in dims:
            if not -ndim <= v < ndim:
                raise LayerError(
                    f"Permute: dim {v} out of range: expected {-ndim} ≤ dim ≤ {ndim - 1}, received dims {dims}",
                    f"give a permutation of 0..{ndim - 1}", "dims")
            norm.append(v % ndim)
        if sorted(norm) != list(range(ndim)):
            raise LayerError(f"Permute: dims must be a permutation (each dim once), received {dims}",
                             f"give a permutation of 0..{ndim - 1}", "dims")
        if norm[0] != 0:
            raise LayerError(
                f"Permute moves the batch axis (dims[0] = {dims[0]}): the model would no longer be batched",
                "keep 0 first, e.g. [0, 2, 3, 1]", "dims")
        batched = (batch, *shape)
        out = tuple(batched[i] for i in norm[1:])
        # positions keep their meaning only for the identity permutation
        return Inference(out, rf=KEEP if norm == list(range(ndim)) else MIX)

    def explain(self, shape: Shape) -> list[str]:
        return [f"dims {self.dims}: output dim i = input dim dims[i] (batched)"]

    def torch_kwargs(self, shape: Shape) -> dict:
        return {"dims": list(self.dims) if isinstance(self.dims, list) else [self.dims]}

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """The size moves to the output dim that reads it."""
        ndim = len(shape) + 1
        norm = [v % ndim for v in (self.dims if isinstance(self.dims, list) else [self.dims])]
        return same(norm.index(dim + 1) - 1)
