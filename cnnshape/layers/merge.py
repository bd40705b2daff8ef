"""Merges of several tensors: ``Add`` (n-ary sum), ``Mul`` (n-ary product), ``Cat``.

They take two or more inputs, so they are nodes of a ``Graph`` block (``from: [a, b, ...]``,
see :mod:`cnnshape.layers.blocks.graph`); the Graph binds the incoming shapes to the node
before analysing it (:meth:`Merge.bind`). No parameters, no MACs (elementwise adds and
products count none, as in torch's FlopCounter); no module (the Graph runs them).

- ``Add``: equal shapes (stricter than torch's broadcasting, as Residual);
- ``Mul``: equal shapes, or an operand of size 1 on spatial axes (``[C, 1, 1]`` gates, as
  SqueezeExcitation) — the output has the largest operand's shape;
- ``Cat``: equal shapes except along ``dim`` (of the batched tensor, default 1: channels).
"""

from .base import Arg, Inference, Layer, LayerError, Shape, register, shape_str


class Merge(Layer):
    """A node that merges the tensors named by its ``from`` (inside a Graph)."""

    family = "merge"
    is_merge = True
    #: at least this many inputs
    min_inputs = 2

    def bind(self, shapes) -> "Merge":
        """A copy that knows its input shapes (what :meth:`infer` merges)."""
        out = self.replace()
        object.__setattr__(out, "_inputs", tuple(tuple(s) for s in shapes))
        return out

    def inputs(self, shape: Shape) -> tuple[Shape, ...]:
        shapes = getattr(self, "_inputs", None)
        if shapes is None:
            raise LayerError(f"{self.type} merges several tensors: it is a node of a Graph block, with from: [a, b]",
                             "put it in a Graph's nodes and name its inputs with from:")
        return shapes

    def merged(self, shapes) -> Shape:  # pragma: no cover - abstract
        raise NotImplementedError

    def infer(self, shape: Shape, batch: int) -> Inference:
        return Inference(self.merged(self.inputs(shape)))

    def size_rule(self, shape, dim, batch=1):
        return None  # the Graph owns the merge (Graph.size_flow)

    def _mismatch(self, shapes, what: str, hint: str) -> LayerError:
        listed = ", ".join(shape_str(s) for s in shapes)
        return LayerError(f"{self.type} needs {what}: its inputs are {listed}", hint, "from")


@register
class Add(Merge):
    """Sum of its inputs (two or more, equal shapes): ``a + b + ...``. Shape: the inputs'."""

    def merged(self, shapes):
        if len({s for s in shapes}) != 1:
            raise self._mismatch(shapes, "equal shapes", "give the paths the same channels, stride and padding "
                                 "(a projection on the odd one out)")
        return shapes[0]


@register
class Mul(Merge):
    """Product of its inputs (two or more): equal shapes, or operands of size 1 on the
    spatial axes (a ``[C, 1, 1]`` gate scales ``[C, H, W]``). Shape: the largest operand's."""

    def merged(self, shapes):
        if len({len(s) for s in shapes}) != 1:
            raise self._mismatch(shapes, "inputs of one rank", "give the operands the same layout")
        full = tuple(max(s[i] for s in shapes) for i in range(len(shapes[0])))
        for s in shapes:
            if len(s) != len(full) or s[0] != full[0] or any(a not in (1, b) for a, b in zip(s[1:], full[1:])):
                raise self._mismatch(shapes, f"equal shapes or [C, 1, ...] gates of {shape_str(full)}",
                                     "give the operands the same channels")
        return full


@register
class Cat(Merge):
    """Concatenation of its inputs along ``dim`` (of the batched tensor, default 1: channels):
    the other axes must be equal; that axis adds up: ``[C1, H, W]`` and ``[C2, H, W]`` ->
    ``[C1 + C2, H, W]``."""

    dim = Arg("int", 1, "Axis of the batched tensor (1: channels; not 0, the batch).")

    def merged(self, shapes):
        ndim = len(shapes[0]) + 1
        if not -ndim <= self.dim < ndim or self.dim % ndim == 0:
            raise LayerError(f"Cat dim must be an axis of the sample: 1 ≤ dim ≤ {ndim - 1}, received dim: {self.dim}",
                             "use dim: 1 for channels", "dim")
        a = self.dim % ndim - 1
        rest = {s[:a] + s[a + 1:] for s in shapes}
        if len({len(s) for s in shapes}) != 1 or len(rest) != 1:
            raise self._mismatch(shapes, f"equal sizes except along dim {self.dim}",
                                 "give the paths the same stride and 'same' padding so their sizes agree")
        out = list(shapes[0])
        out[a] = sum(s[a] for s in shapes)
        return tuple(out)

    def axis(self, shape: Shape) -> int:
        return self.dim % (len(shape) + 1) - 1
