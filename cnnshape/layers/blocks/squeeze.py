"""The SqueezeExcitation block (a gate computed from the input scales the input)."""

from ...rules import SizeUnknown, fixed
from ..base import LAYER_TYPES, Arg, LayerError, register, shape_str
from ._base import Block, _named, is_container, item_name

SHORT_NAMES = ("avgpool", "fc1", "activation", "fc2", "scale_activation")


@register
class SqueezeExcitation(Block):
    """Squeeze-and-excitation: ``y = x * gate(x)``.

    Shape: the input's ``[C, *S]``; the gate's output must be ``[C, 1, ...]`` (broadcast over
    the spatial axes) or ``[C, *S]``. Short form (torchvision.ops.SqueezeExcitation, children
    avgpool, fc1, fc2, activation, scale_activation): ``AdaptiveAvgPool(1)`` → 1x1 conv to
    ``squeeze_channels`` → ``activation`` → 1x1 conv back to ``C`` → ``scale_activation``.
    Long form: ``gate: [layers]`` (children by their names). Params/MACs: the gate's.
    Receptive field: the input path's (the gate is a global per-channel scale).
    """

    container = "SqueezeExcitation"

    squeeze_channels = Arg("int", None, "Channels of the squeeze (short form).", ge=1, nullable=True)
    activation = Arg("str", "ReLU", "Activation between fc1 and fc2 (short form), e.g. ReLU or SiLU.")
    scale_activation = Arg("str", "Sigmoid", "Activation of the gate (short form), e.g. Sigmoid or Hardsigmoid.")
    gate = Arg("layers", None, "The gate's layers (long form, instead of squeeze_channels).", nullable=True)

    def check_args(self, values):
        if (values.get("squeeze_channels") is None) == (not values.get("gate")):
            raise LayerError("SqueezeExcitation needs either squeeze_channels (short form) or gate: [layers]",
                             "e.g. {type: SqueezeExcitation, squeeze_channels: 8}", "squeeze_channels")
        for key in ("activation", "scale_activation"):
            t = values.get(key)
            if t is not None and (t not in LAYER_TYPES or LAYER_TYPES[t].is_block):
                raise LayerError(f"SqueezeExcitation.{key}: unknown layer type {t!r}",
                                 "use an activation type name such as ReLU, SiLU, Sigmoid, Hardsigmoid", key)

    def short_gate(self, shape):
        """The short form's gate layers for input ``shape``."""
        rank = len(shape) - 1
        if rank not in (1, 2, 3):
            raise LayerError(f"SqueezeExcitation needs a feature map [C, *S], received {shape_str(shape)}",
                             "put it before Flatten")
        make = LAYER_TYPES
        return (make[f"AdaptiveAvgPool{rank}d"](output_size=1, name="avgpool"),
                make[f"Conv{rank}d"](out_channels=self.squeeze_channels, kernel_size=1, name="fc1"),
                make[self.activation](name="activation"),
                make[f"Conv{rank}d"](out_channels=shape[0], kernel_size=1, name="fc2"),
                make[self.scale_activation](name="scale_activation"))

    def analyze(self, shape, rf, walk):
        if self.gate:
            out, _, rows = walk.seq(self.gate, shape, rf, "gate")
        else:
            out, _, rows = walk.seq(self.short_gate(shape), shape, rf, "squeeze_channels")
        ones = (shape[0], *(1 for _ in shape[1:]))
        if out != shape and out != ones:
            raise LayerError(f"SqueezeExcitation gate outputs {shape_str(out)}, which cannot scale the input "
                             f"{shape_str(shape)}: it must be {shape_str(ones)} or {shape_str(shape)}",
                             f"end the gate with {shape[0]} channels (and a global pooling for one value per "
                             "channel)", "gate" if self.gate else "squeeze_channels")
        walk.merge_memory(shape)
        return shape, rf, rows

    def size_flow(self, row, state, sizer):
        """Sizes at which the gate's output is [C, 1, ...] or the input's shape."""
        g = sizer.rows(row.children, state)
        x, d = tuple(row.input), state.dim
        if g.dim != d or d == 0 or g.shape[0] != x[0]:
            raise SizeUnknown(f"SqueezeExcitation '{row.path}': the gate moves the input-dependent size")
        rest = [i for i in range(1, len(x)) if i != d]
        can_full = all(g.shape[i] == x[i] for i in rest)
        can_ones = all(g.shape[i] == 1 for i in rest)
        if can_full and can_ones:
            out = sizer.equal_or_one(state, g)
        elif can_ones:  # where the gate is 1: the sizes both have
            out = sizer.equal([state, sizer.apply(fixed(d, 1), g)], dims=())
        else:
            out = sizer.equal([state, g])
        return out._replace(shape=tuple(row.output))

    def memory(self, row, mem, value):
        """``x * gate(x)``: the multiply keeps x for the gate's gradient and the gate's output
        for x's gradient."""
        x = mem.share(value)
        g = mem.seq(row.children, value)
        keeps = tuple(i for i, other in ((0, g), (1, x)) if other.grad)
        return mem.merge(row, [x, g], keeps)

    def draw_lanes(self, row):
        """The input passes (identity lane) and is multiplied by the gate's output."""
        return [[], list(row.children)], "x", []

    @classmethod
    def from_torch(cls, module, items):
        if is_container(module, "SqueezeExcitation", "_gate"):
            return {"type": "SqueezeExcitation", "gate": items(_named(module, module._gate), "")}
        kids = dict(module._modules)
        if type(module).__name__ == "SqueezeExcitation" and set(kids) == set(SHORT_NAMES) \
                and type(module).__module__.startswith("torchvision"):  # torchvision.ops.SqueezeExcitation
            return {"type": "SqueezeExcitation", "gate": items([(n, kids[n]) for n in SHORT_NAMES], "")}
        return None

    @classmethod
    def tree_children(cls, data, row, path, label, first=None):
        gate = data.get("gate") if isinstance(data.get("gate"), list) else []
        rows = list(row.children) if row is not None else []
        if not gate:  # short form: the gate is generated from squeeze_channels (nothing to edit)
            return []
        return [(path + ("gate", j), x, rows[j] if j < len(rows) else None, f"{label}.{item_name(x, j)}", None)
                for j, x in enumerate(gate)]
