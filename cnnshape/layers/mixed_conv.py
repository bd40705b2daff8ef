"""timm's ``MixedConv2d`` (MixNet's mixed depthwise convolution, mixnet_* and tf_mixnet_*):
the input channels split into one group per kernel, each group convolved with its own
kernel, the outputs concatenated along the channels.

One self-contained module with fixed children (``0``, ``1``, ...: ``nn.Conv2d`` or, with
TensorFlow "SAME" padding that cannot be static, ``Conv2dSame``), so one layer type with
timm's arguments, read back from the module on import.
"""

from typing import Any

from .. import formulas as F
from ..rules import Rule, fixed
from .base import AXIS_NAMES, INPUT_LAYOUT, Arg, Inference, Layer, LayerError, Saved, Shape, register, shape_str
from .conv import Conv2d, check_channels
from .same_padding import same_rule


def split_channels(n: int, groups: int) -> list[int]:
    """timm's ``_split_channels``: equal parts, the first takes the remainder.

    >>> split_channels(10, 3)
    [4, 3, 3]
    """
    split = [n // groups] * groups
    split[0] += n - sum(split)
    return split


@register
class MixedConv2d(Layer):
    """timm's ``MixedConv2d`` (MixNet): the channels split into one group per kernel of
    ``kernel_size`` (the first group takes the remainder), each convolved with its kernel
    (``depthwise``: one group per input channel), concatenated. ``[C_in, H, W]`` ->
    ``[C_out, H_out, W_out]``, per axis ``out = floor((in + 2*padding - dilation*(kernel_size-1) - 1)/stride + 1)``
    (an int padding), ``floor((in + 2*((stride-1)//2) - 1)/stride) + 1`` (timm's default ``""``, odd
    effective kernels) or ``ceil(in / stride)`` (``"same"``). Params and MACs: the sum of the
    groups' convolutions."""

    family = "timm"
    rank = 2
    torch_module = "MixedConv2d"
    in_channels = Arg("int", None, "Input channels; inferred from the input when omitted.", ge=1, nullable=True,
                      inferred_from="channels")
    out_channels = Arg("int", doc="Output channels (split like the input).", ge=1)
    kernel_size = Arg("ints", 3, "One kernel per channel group (an int: one group).", ge=1)
    stride = Arg("int", 1, "Stride of every group.", ge=1)
    padding = Arg("axes", "", "'' timm's ((stride-1) + dilation*(k-1)) // 2; 'same' TensorFlow's (computed per "
                  "input size where it cannot be static); 'valid' none; an int (or one per axis): that padding on "
                  "every group.", ge=0, words=("", "same", "valid"))
    dilation = Arg("int", 1, "Dilation of every group.", ge=1)
    depthwise = Arg("bool", False, "Each group's convolution depthwise (groups = its input channels).")
    bias = Arg("bool", False, "A bias per convolution (timm's create_conv2d_pad default: false).")

    @classmethod
    def values_from_torch(cls, module) -> dict:
        """The kernels, stride, dilation, depthwise and bias from the children; ``same`` when
        a child is a ``Conv2dSame`` (a static SAME child is timm's default padding)."""
        convs = list(module.values())
        ks = [c.kernel_size[0] for c in convs]
        first = convs[0]
        s, d = first.stride[0], first.dilation[0]
        pads = {tuple(c.padding) for c in convs}
        if any(type(c).__name__ == "Conv2dSame" for c in convs):
            padding: Any = "same"
        elif all(tuple(c.padding) == (((s - 1) + d * (k - 1)) // 2,) * 2 for c, k in zip(convs, ks)):
            padding = ""
        elif pads == {(0, 0)}:
            padding = "valid"
        else:  # one explicit padding for every group (several cannot be written)
            (pad,) = pads if len(pads) == 1 else (first.padding,)
            padding = pad[0] if pad[0] == pad[1] else list(pad)
        return {"kernel_size": ks if len(ks) > 1 else ks[0], "stride": s, "dilation": d,
                "depthwise": first.groups > 1, "bias": first.bias is not None, "padding": padding}

    def kernels(self) -> list[int]:
        return list(self.kernel_size) if isinstance(self.kernel_size, list) else [self.kernel_size]

    def dynamic(self, k: int) -> bool:
        """This kernel's group pads per input size (timm's Conv2dSame)."""
        return self.padding == "same" and not (self.stride == 1 and (self.dilation * (k - 1)) % 2 == 0)

    def pads(self, k: int, spatial) -> list[tuple[int, int]]:
        """(before, after) padding of the group with kernel ``k`` for an input of ``spatial``."""
        k_eff = F.effective_kernel(k, self.dilation)
        if self.dynamic(k):
            return [F.tf_same_padding(n, k_eff, self.stride) for n in spatial]
        if not isinstance(self.padding, str):
            return [(p, p) for p in (self.padding if isinstance(self.padding, list) else [self.padding] * 2)]
        p = 0 if self.padding == "valid" else ((self.stride - 1) + self.dilation * (k - 1)) // 2
        return [(p, p)] * len(spatial)

    def groups_of(self, c_in: int) -> list[tuple[int, int, int, int]]:
        """(kernel, in channels, out channels, conv groups) per group."""
        ks = self.kernels()
        return [(k, i, o, i if self.depthwise else 1)
                for k, i, o in zip(ks, split_channels(c_in, len(ks)), split_channels(self.out_channels, len(ks)))]

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (3,), INPUT_LAYOUT[2])
        c_in = shape[0]
        check_channels(self, self.in_channels, c_in, "in_channels", shape)
        n = len(self.kernels())
        for what, c in (("in_channels", c_in), ("out_channels", self.out_channels)):
            if c < n:
                raise LayerError(f"MixedConv2d splits {what} = {c} into {n} groups (one per kernel): a group "
                                 "would have no channels", f"use at most {c} kernels, or more channels", "kernel_size")
        outs, params, macs, best = [], 0, 0, None
        for k, i, o, g in self.groups_of(c_in):
            if o % g:
                raise LayerError(f"MixedConv2d depthwise: the group with kernel {k} has {o} output channels for "
                                 f"{i} input channels, not a multiple", "make out_channels a multiple of in_channels "
                                 "(split the same way), or depthwise: false", "out_channels")
            k_eff = F.effective_kernel(k, self.dilation)
            size = []
            for ax, m, (lo, hi) in zip(AXIS_NAMES[2], shape[1:], self.pads(k, shape[1:])):
                if k_eff > m + lo + hi:
                    raise LayerError(f"MixedConv2d: kernel {k} (effective {k_eff}) is larger than the padded input "
                                     f"along {ax} ({m} + {lo} + {hi})", f"use a smaller kernel or a larger input "
                                     f"along {ax}", "kernel_size")
                size.append(F.Window(k_eff, self.stride, lo, hi).out(m))
            outs.append(tuple(size))
            params += o * (i // g) * k * k + (o if self.bias else 0)
            macs += o * F.prod(size) * (i // g) * k * k
            if best is None or k_eff > best[0]:
                best = (k_eff, [(k_eff, self.stride, lo) for lo, _ in self.pads(k, shape[1:])])
        if len(set(outs)) > 1:
            raise LayerError(f"MixedConv2d's groups give different sizes {[list(o) for o in outs]} for input "
                             f"{shape_str(shape)}: they cannot be concatenated", "use odd kernels, or padding: same",
                             "kernel_size")
        return Inference((self.out_channels, *outs[0]), params, macs, tuple(best[1]))

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {"in_channels": shape[0], **{k: v for k, v in self.args().items() if k != "in_channels"}}

    def saved(self, shape, out, batch):
        """Every group's convolution keeps its input: a view of the layer's input, or the
        padded copy of a group that pads per input size."""
        s = []
        for k, i, _, _ in self.groups_of(shape[0]):
            if self.dynamic(k):
                s.append(Saved("new", batch * i * F.prod(m + lo + hi for m, (lo, hi) in
                                                         zip(shape[1:], self.pads(k, shape[1:])))))
            elif not any(x.what == "input" for x in s):
                s.append(Saved("input"))
        return tuple(s)

    def workspace(self, shape, out, batch, itemsize, kept, input_grad, isa="avx2"):
        """Forward temporaries besides the input and the output: the groups' outputs before
        their concatenation (the output's size), a group's padded copy when not kept; in
        training the kept copies are allocated here too; plus the largest group convolution's
        own temporaries (Conv2d's model: oneDNN's blocked copies). Estimates, not to the byte."""
        saved = self.saved(shape, out, batch)
        copies = [s.numel for s in saved if s.what == "new"]
        n_out = batch * F.prod(out)
        conv_f = conv_b = 0
        for k, i, o, g in self.groups_of(shape[0]):  # each group's convolution (oneDNN's copies)
            conv = Conv2d(out_channels=o, kernel_size=k, stride=self.stride, dilation=self.dilation, groups=g)
            padded = (i, *(m + lo + hi for m, (lo, hi) in zip(shape[1:], self.pads(k, shape[1:]))))
            f, b = conv.workspace(padded, (o, *out[1:]), batch, itemsize, kept, input_grad, isa)
            conv_f, conv_b = max(conv_f, f), max(conv_b, b)
        del conv_f  # the forward's blocked copies overlap the groups' outputs counted here
        if kept:
            return (sum(copies) + n_out) * itemsize, conv_b
        return (n_out + max(copies, default=0)) * itemsize, 0

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels fixed; spatial: ``ceil(in / stride)`` with ``same``, else the groups' window
        when every group's gives the same sizes (drops marked where any group drops);
        otherwise no rule (unknown)."""
        if dim == 0:
            return fixed(0, shape[0], self.out_channels, inferred=self.in_channels is None)
        ks = self.kernels()
        if self.padding == "same":
            return same_rule(dim, F.effective_kernel(max(ks), self.dilation), self.stride)
        rules = [F.Window(F.effective_kernel(k, self.dilation), self.stride, *self.pads(k, shape[1:])[dim - 1])
                 .rule(dim) for k in ks]
        plain = {tuple(c.__class__(c.a, c.b, c.c, c.lo, c.hi, c.mod, c.res) for c in r.cases) for r in rules}
        if len(plain) > 1:
            return None
        cases = tuple(c.__class__(c.a, c.b, c.c, c.lo, c.hi, c.mod, c.res, any(r.cases[j].drops for r in rules))
                      for j, c in enumerate(rules[0].cases))
        return Rule(cases, dim)

    def explain(self, shape: Shape) -> list[str]:
        if len(shape) != 3:
            return []
        return [f"group {j}: {i} -> {o} channels, kernel {k}" + (" (depthwise)" if g > 1 else "")
                for j, (k, i, o, g) in enumerate(self.groups_of(shape[0]))]
