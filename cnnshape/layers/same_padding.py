"""TensorFlow "SAME" padding: timm's ``Conv2dSame``, ``StdConv2dSame``, ``ScaledStdConv2dSame``,
``MaxPool2dSame`` and ``AvgPool2dSame`` (tf_efficientnet_*, tf_mobilenetv3_*, tf_mixnet_*,
dm_nfnet_*, ViT hybrids).

Each pads its input from the input's own size (timm's ``pad_same``), then runs the window
without padding: per spatial axis ``out = ceil(in / stride)`` (a pooling with ``ceil_mode``
and a window shorter than its stride may differ: computed, not assumed), total padding
``max((out-1)*stride + dilation*(kernel_size-1) + 1 - in, 0)``, ``total // 2`` before and the
rest after (:func:`cnnshape.formulas.tf_same_padding`). So every input size works, and the
padding, hence the receptive field's alignment, depends on the input size: the analysis
reports it at the spec's input.

Sizes: the padding is constant on each residue class of ``in`` modulo the stride, so the
size rule has one case per residue (one ``ceil(in / stride)`` rule when they agree).
Memory: the padded copy (F.pad always copies) is what the window keeps for backward,
instead of the input; timm's std convs pad statically (the convolution's own symmetric
padding, no copy) when the stride is 1 and ``dilation*(kernel_size-1)`` even, and so do
the compiled copies (cnnshape/torch_backend/layer_modules.py).
"""

from .. import formulas as F
from ..rules import BIG, Case, Rule, affine, fixed, same
from .base import AXIS_NAMES, INPUT_LAYOUT, Inference, Saved, Shape, register
from .conv import Conv2d, check_channels
from .pool import AvgPool2d, MaxPool2d
from .timm_layers import ScaledStdConv2d, StdConv2d, _drop_args


def same_rule(dim: int, k_eff: int, stride: int, ceil: bool = False) -> Rule:
    """The size rule of a SAME-padded window on per-sample ``dim``: per residue ``rho`` of
    the input size modulo the stride the padding is constant, so the output grows by one
    per stride; one affine ``ceil(in / stride)`` when every residue gives that."""
    cases, plain = [], True
    for rho in range(stride):
        n0 = rho or stride
        lo, hi = F.tf_same_padding(n0, k_eff, stride)
        o = F.Window(k_eff, stride, 0, 0, ceil).out(n0 + lo + hi)
        plain = plain and o == -(-n0 // stride)
        cases.append(Case(1, o * stride - n0, stride, n0, BIG, stride, rho))
    return affine(dim, 1, stride - 1, stride) if plain else Rule(tuple(cases), dim)


class _Same:
    """The SAME mechanics shared by the convolutions and the pools (a mixin before the
    layer class it pads: the window itself is that class's, run on the padded input)."""

    family = "timm"
    padding = 0  # the window runs unpadded on the padded copy

    def dynamic(self) -> bool:
        """timm pads with F.pad (a copy) at run time; False: the window's own padding."""
        return True

    def _kd(self) -> list[tuple[int, int]]:
        """(effective kernel, stride) per spatial axis."""
        return [(F.effective_kernel(k, d), s) for k, s, d in
                zip(self._axes("kernel_size"), self._axes("stride"), self._axes("dilation"))]

    def same_pads(self, spatial) -> tuple[tuple[int, int], ...]:
        """(before, after) per spatial axis for an input of ``spatial`` sizes."""
        return tuple(F.tf_same_padding(n, k, s) for n, (k, s) in zip(spatial, self._kd()))

    def padded(self, shape: Shape) -> Shape:
        return (shape[0], *(n + lo + hi for n, (lo, hi) in zip(shape[1:], self.same_pads(shape[1:]))))

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (3,), INPUT_LAYOUT[2])
        if hasattr(self, "in_channels"):
            check_channels(self, self.in_channels, shape[0], "in_channels", shape)
        inf = super().infer(self.padded(shape), batch)
        rf = tuple((k, s, lo) for (k, s), (lo, _) in zip(self._kd(), self.same_pads(shape[1:])))
        return Inference(inf.output, inf.params, inf.macs, rf, inf.notes)

    def saved(self, shape, out, batch):
        """The window's, on the padded copy: where it keeps its input, it keeps the copy."""
        if not self.dynamic():
            return super().saved(shape, out, batch)
        padded = self.padded(shape)
        copy = Saved("new", batch * F.prod(padded))
        return tuple(Saved("new", copy.numel, s.dtype, s.when) if s.what == "input" else s
                     for s in super().saved(padded, out, batch))

    def workspace(self, shape, out, batch, itemsize, kept, input_grad, isa="avx2"):
        """The window's on the padded input, plus the copy while the window runs when
        autograd does not keep it."""
        if not self.dynamic():
            return super().workspace(shape, out, batch, itemsize, kept, input_grad, isa)
        padded = self.padded(shape)
        fwd, bwd = super().workspace(padded, out, batch, itemsize, kept, input_grad, isa)
        return fwd + (0 if kept else batch * F.prod(padded) * itemsize), bwd

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Spatial: ``ceil(in / stride)`` per residue (any size ≥ 1 works); channels as the window's."""
        if dim == 0:
            return super().size_rule(shape, dim, batch)
        k, s = self._kd()[dim - 1]
        return same_rule(dim, k, s, bool(getattr(self, "ceil_mode", False)))

    def explain(self, shape: Shape) -> list[str]:
        if len(shape) != 3:
            return []
        lines = []
        for ax, n, (k, s), (lo, hi) in zip(AXIS_NAMES[2], shape[1:], self._kd(), self.same_pads(shape[1:])):
            out = -(-n // s)
            lines.append(f"{ax}: SAME pads {lo} + {hi} (total max(({out}-1)*{s} + {k} - {n}, 0)), "
                         f"out = ceil({n}/{s}) = {out}")
        return lines


class _SameConv(_Same):
    padding_mode = "zeros"
    weight = None
    torch_order = ("in_channels", "out_channels", "kernel_size", "stride", "dilation", "groups", "bias")

    def resolved_padding(self):
        return ((0, 0), (0, 0))

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        if dim == 0:
            return fixed(0, shape[0], self.out_channels, inferred=self.in_channels is None)
        return super().size_rule(shape, dim, batch)


@register
class Conv2dSame(_SameConv, Conv2d):
    """timm's ``Conv2dSame`` (tf_efficientnet, tf_mixnet, tf_mobilenetv3): a Conv2d with TensorFlow
    "SAME" padding from the input's size. ``[C_in, H, W]`` -> ``[C_out, H_out, W_out]``, per axis
    ``out = ceil(in / stride)``; padding ``max((out-1)*stride + dilation*(kernel_size-1) + 1 - in, 0)``,
    half before (rounded down). Params and MACs as ``Conv2d``."""

    torch_module = "Conv2dSame"


class _SameStd(_SameConv):
    def dynamic(self) -> bool:
        """timm's std convs pad statically when the stride is 1 and every ``d*(k-1)`` is even."""
        return not all(s == 1 and (d * (k - 1)) % 2 == 0 for k, s, d in
                       zip(self._axes("kernel_size"), self._axes("stride"), self._axes("dilation")))


@register
class StdConv2dSame(_SameStd, StdConv2d):
    """timm's ``StdConv2dSame`` (ViT hybrids, BiT ``*_tf``): ``StdConv2d`` with TensorFlow "SAME"
    padding. ``[C_in, H, W]`` -> ``[C_out, H_out, W_out]``, per axis ``out = ceil(in / stride)``;
    params and MACs as ``Conv2d``."""

    torch_module = "StdConv2dSame"
    torch_order = _SameConv.torch_order + ("eps",)


@register
class ScaledStdConv2dSame(_SameStd, ScaledStdConv2d):
    """timm's ``ScaledStdConv2dSame`` (NFNet ``dm_nfnet_*``): ``ScaledStdConv2d`` with TensorFlow
    "SAME" padding. ``[C_in, H, W]`` -> ``[C_out, H_out, W_out]``, per axis ``out = ceil(in / stride)``;
    params ``Conv2d``'s + ``C_out`` (``gain``)."""

    torch_module = "ScaledStdConv2dSame"
    torch_order = _SameConv.torch_order + ("gamma", "eps", "gain_init")


class _SamePool(_Same):
    return_indices = False
    divisor_override = None

    @classmethod
    def values_from_torch(cls, module) -> dict:
        """timm keeps every size as a pair: equal pairs as one int (an unequal pair stays a list)."""
        out = {}
        for key in ("kernel_size", "stride", "dilation"):
            v = getattr(module, key, None)
            if key in cls.ARGS and isinstance(v, (tuple, list)) and len(set(v)) == 1:
                out[key] = v[0]
        if out.get("stride") is not None and out.get("stride") == out.get("kernel_size"):
            out["stride"] = None  # the default: the kernel size
        return out

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        return same(0) if dim == 0 else super().size_rule(shape, dim, batch)


@register
class MaxPool2dSame(_SamePool, MaxPool2d):
    """timm's ``MaxPool2dSame``: MaxPool2d with TensorFlow "SAME" padding (``-inf``). ``[C, H, W]`` ->
    ``[C, H_out, W_out]``, per axis ``out = ceil(in / stride)`` (stride defaults to kernel_size;
    ``ceil_mode`` with a window shorter than the stride can add one)."""

    torch_module = "MaxPool2dSame"


@register
class AvgPool2dSame(_SamePool, AvgPool2d):
    """timm's ``AvgPool2dSame``: AvgPool2d with TensorFlow "SAME" zero padding, the zeros always
    counted (``count_include_pad`` has no effect: the padding is explicit). ``[C, H, W]`` ->
    ``[C, H_out, W_out]``, per axis ``out = ceil(in / stride)`` (stride defaults to kernel_size)."""

    torch_module = "AvgPool2dSame"


_drop_args(Conv2dSame, "padding", "padding_mode", "weight")
_drop_args(StdConv2dSame, "padding")
_drop_args(ScaledStdConv2dSame, "padding")
_drop_args(MaxPool2dSame, "padding", "return_indices")
_drop_args(AvgPool2dSame, "padding", "divisor_override")
