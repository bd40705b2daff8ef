"""Attention across convolution branches: timm's ``SplitAttn`` (ResNeSt) and ``SelectiveKernel``
(SKNet), each one self-contained timm module with fixed children, so one layer type with
timm's arguments (read back from the module on import).

Both run a few convolutions, average the branches' sum over the map, squeeze it through
1x1 convolutions and weigh the branches with a softmax across them (per channel), then sum:
the output is one branch's shape. Params and MACs count every convolution (the 1x1 ones on
a 1x1 map) and BatchNorm's affine pairs; the weighting is a per-channel gate, so the
receptive field is the convolutions' (SelectiveKernel: the largest path's), as for
``SqueezeExcitation``. Memory: what autograd keeps, measured on timm's modules (training,
float32) and checked to the byte (tests/test_timm_split_attention.py).
"""

from typing import Any

from .. import formulas as F
from ..rules import fixed
from .base import AXIS_NAMES, INPUT_LAYOUT, Arg, Inference, Layer, LayerError, Note, Saved, Shape, register, shape_str
from .conv import check_channels


#: in-place activations whose backward needs their input: autograd copies it first (measured)
_CLONING = ("SiLU", "ReLU6", "Hardswish")


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None, round_limit: float = .9) -> int:
    """timm's ``make_divisible``: ``v`` rounded to the nearest multiple of ``divisor`` (at least
    ``min_value``, default ``divisor``), one more multiple if that lost over 10%.

    >>> make_divisible(8 * 2 * 0.25, min_value=32), make_divisible(256 / 16), make_divisible(60, 16)
    (32, 16, 64)
    """
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < round_limit * v else new_v


def _check_fits(layer: Layer, what: str, n: int, k_eff: int, pad: int, ax: str, key: str) -> None:
    """A located error when a window of ``k_eff`` is larger than the padded axis ``n``."""
    if k_eff > n + 2 * pad:
        raise LayerError(f"{layer.type}: the {what} kernel (effective {k_eff}) is larger than the padded input "
                         f"along {ax} ({n} + 2*{pad} = {n + 2 * pad})",
                         f"use a smaller kernel_size or a larger input along {ax}", key)


def _divides(layer: Layer, what: str, n: int, by: int, by_what: str, key: str) -> None:
    if n % by:
        raise LayerError(f"{layer.type}: {what} = {n} must be divisible by {by_what} = {by} ({n} % {by} = {n % by})",
                         f"choose {what} as a multiple of {by}", key)


def _new_numel(saved) -> int:
    return sum(s.numel for s in saved if s.what == "new")


def _bn_note(layer: Layer, batch: int) -> tuple[Note, ...]:
    if batch > 1:
        return ()
    return (Note(f"{layer.type}'s attention BatchNorm sees one value per channel at batch 1 (a 1x1 map): torch "
                 "refuses it in training (eval works)", "set batch: 2 or more in the spec (or train with batches "
                 "of 2+)"),)


@register
class SplitAttn(Layer):
    """timm's ``SplitAttn`` (ResNeSt's split attention, children ``conv``, ``bn0``, ``act0``, ``fc1``,
    ``bn1``, ``act1``, ``fc2``): ``conv`` makes ``radix`` splits of ``out_channels`` (grouped
    ``groups * radix``); their sum, averaged over the map, goes through ``fc1`` (to the attention
    width: ``rd_channels * radix``, else ``make_divisible(in_channels * radix * rd_ratio, rd_divisor,
    min 32)``) and ``fc2``; a softmax across the splits (sigmoid for radix 1) weighs them, summed.
    ``[C_in, H, W]`` -> ``[C_out, H_out, W_out]``, per axis
    ``out = floor((in + 2*padding - dilation*(kernel_size-1) - 1)/stride + 1)`` (padding defaults to kernel_size // 2)."""

    family = "timm"
    rank = 2
    torch_module = "SplitAttn"
    in_channels = Arg("int", None, "Input channels; inferred from the input when omitted.", ge=1, nullable=True,
                      inferred_from="channels")
    out_channels = Arg("int", None, "Output channels (default: in_channels).", ge=1, nullable=True)
    kernel_size = Arg("int", 3, "The split convolution's kernel.", ge=1)
    stride = Arg("int", 1, "Its stride.", ge=1)
    padding = Arg("int", None, "Its zero-padding per side (default: kernel_size // 2).", ge=0, nullable=True)
    dilation = Arg("int", 1, "Its dilation.", ge=1)
    groups = Arg("int", 1, "Cardinality: the convolution has groups * radix groups, fc1 and fc2 groups.", ge=1)
    bias = Arg("bool", False, "A bias on the split convolution.")
    radix = Arg("int", 2, "Splits weighed by the attention (1: a sigmoid gate).", ge=1)
    rd_ratio = Arg("float", 0.25, "Attention width per input channel and split (without rd_channels).", ge=0)
    rd_channels = Arg("int", None, "Attention width per split (fc1 has rd_channels * radix).", ge=1, nullable=True)
    rd_divisor = Arg("int", 8, "The attention width is a multiple of it (without rd_channels).", ge=1)
    act_layer = Arg("choice", "ReLU", "Activation after bn0 and bn1 (in place).",
                    choices=("ReLU", "ReLU6", "SiLU", "Hardswish", "LeakyReLU", "ELU"))
    norm_layer = Arg("choice", None, "BatchNorm2d: bn0 and bn1 are BatchNorm2d; null: Identity (timm's default).",
                     choices=("BatchNorm2d",), nullable=True)

    @classmethod
    def values_from_torch(cls, module) -> dict:
        """The convolution's geometry from ``conv``, the widths from ``fc1``, the norm and
        activation from the children's classes."""
        conv, fc1 = module.conv, module.fc1
        radix = module.radix
        out = {"out_channels": conv.out_channels // radix, "kernel_size": conv.kernel_size[0],
               "stride": conv.stride[0], "padding": conv.padding[0], "dilation": conv.dilation[0],
               "groups": conv.groups // radix, "bias": conv.bias is not None,
               "act_layer": type(module.act0).__name__,
               "norm_layer": "BatchNorm2d" if type(module.bn0).__name__ == "BatchNorm2d" else None}
        if out["padding"] == out["kernel_size"] // 2:
            out["padding"] = None
        if fc1.out_channels != make_divisible(conv.in_channels * radix * 0.25, 8, min_value=32):
            out["rd_channels"] = fc1.out_channels // radix
        return out

    def widths(self, c_in: int) -> tuple[int, int, int]:
        """(output channels, split channels out*radix, attention width)."""
        out = self.out_channels or c_in
        attn = self.rd_channels * self.radix if self.rd_channels is not None else \
            make_divisible(c_in * self.radix * self.rd_ratio, self.rd_divisor, min_value=32)
        return out, out * self.radix, attn

    def window(self) -> F.Window:
        pad = self.kernel_size // 2 if self.padding is None else self.padding
        return F.Window(F.effective_kernel(self.kernel_size, self.dilation), self.stride, pad, pad)

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (3,), INPUT_LAYOUT[2])
        c_in = shape[0]
        check_channels(self, self.in_channels, c_in, "in_channels", shape)
        out, mid, attn = self.widths(c_in)
        g, r = self.groups, self.radix
        _divides(self, "in_channels", c_in, g * r, "groups * radix", "groups")
        _divides(self, "out_channels", out, g, "groups", "groups")
        _divides(self, "the attention width (fc1's channels)", attn, g, "groups", "rd_channels")
        w = self.window()
        spatial = []
        for ax, n in zip(AXIS_NAMES[2], shape[1:]):
            _check_fits(self, "split convolution's", n, w.k_eff, w.pad_lo, ax, "kernel_size")
            spatial.append(w.out(n))
        k2 = self.kernel_size ** 2
        norm = 2 if self.norm_layer else 0
        params = (c_in // (g * r)) * mid * k2 + (mid if self.bias else 0) + norm * mid \
            + (out // g) * attn + attn + norm * attn + (attn // g) * mid + mid
        macs = mid * F.prod(spatial) * (c_in // (g * r)) * k2 + attn * (out // g) + mid * (attn // g)
        notes = _bn_note(self, batch) if self.norm_layer else ()
        return Inference((out, *spatial), params, macs, (w.rf, w.rf), notes)

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {"in_channels": shape[0], **{k: v for k, v in self.args().items() if k != "in_channels"}}

    def saved(self, shape, out, batch):
        """Measured on timm's module (training): the input (conv); with the norm, the split
        map before it and the batch statistics; the activated splits (act0's output, in
        place); the pooled sum (fc1's input); fc1's output and statistics with the norm; act1's
        output (fc2's input); the softmax / sigmoid weights. SiLU, ReLU6 and Hardswish in place
        need their input: autograd keeps a copy of act0's and of act1's."""
        c_out, mid, attn = self.widths(shape[0])
        n_mid = batch * mid * F.prod(out[1:])
        s = [Saved("input"), Saved("new", n_mid), Saved("new", batch * c_out), Saved("new", batch * attn),
             Saved("new", batch * mid)]
        if self.norm_layer:
            s += [Saved("new", n_mid), Saved("new", mid), Saved("new", mid), Saved("new", batch * attn),
                  Saved("new", attn), Saved("new", attn)]
        if self.act_layer in _CLONING:  # autograd keeps a copy of the in-place activation's input
            s += [Saved("new", n_mid), Saved("new", batch * attn)]
        return tuple(s)

    def workspace(self, shape, out, batch, itemsize, kept, input_grad, isa="avx2"):
        """Forward temporaries besides the input and the output: the weighted splits (before
        their sum) beside the activated splits, or the split map and its normalised copy;
        in training the kept tensors are allocated here too; the backward holds two split-sized
        gradients. Estimates, checked against the CPU allocator's peaks within 10%
        (tests/test_timm_split_attention.py), not to the byte."""
        n_mid = batch * self.widths(shape[0])[1] * F.prod(out[1:])
        if kept:  # backward: the splits' gradient
            return (_new_numel(self.saved(shape, out, batch)) + n_mid) * itemsize, 2 * n_mid * itemsize
        return 2 * n_mid * itemsize, 0

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels fixed; a spatial size slides the split convolution's window."""
        if dim == 0:
            out = self.widths(shape[0])[0]
            return fixed(0, shape[0], out, inferred=self.in_channels is None and self.out_channels is None)
        return self.window().rule(dim)

    def explain(self, shape: Shape) -> list[str]:
        if len(shape) != 3:
            return []
        out, mid, attn = self.widths(shape[0])
        w = self.window()
        return [f"conv: {shape[0]} -> {mid} channels ({self.radix} splits of {out}), groups {self.groups * self.radix}",
                f"attention width {attn}"] + [
            f"{ax}: floor(({n} + 2*{w.pad_lo} - {w.k_eff})/{w.stride}) + 1 = {w.out(n)}"
            for ax, n in zip(AXIS_NAMES[2], shape[1:])]


@register
class SelectiveKernel(Layer):
    """timm's ``SelectiveKernel`` (SKNet; children ``paths.i.conv`` / ``paths.i.bn``, ``attn.fc_reduce``,
    ``attn.bn``, ``attn.fc_select``): one path per kernel (``keep_3x3``: each a 3x3 with dilation
    ``dilation*(k-1)//2``), each conv (timm's padding ``((stride-1) + dilation*(k-1)) // 2``) + BN +
    ReLU on its share of the input channels (``split_input``) or on all; a softmax across the
    paths, from the pooled sum through ``fc_reduce`` (``rd_channels``, else
    ``make_divisible(out_channels * rd_ratio, rd_divisor)``) and ``fc_select``, weighs them.
    ``[C_in, H, W]`` -> ``[C_out, H_out, W_out]`` (every path's), per axis
    ``out = floor((in + 2*((stride-1)//2) - 1)/stride) + 1`` for odd effective kernels."""

    family = "timm"
    rank = 2
    torch_module = "SelectiveKernel"
    in_channels = Arg("int", None, "Input channels; inferred from the input when omitted.", ge=1, nullable=True,
                      inferred_from="channels")
    out_channels = Arg("int", None, "Output channels (default: in_channels).", ge=1, nullable=True)
    kernel_size = Arg("ints", None, "One kernel per path (an int: two paths of it); default [3, 5].", ge=1,
                      nullable=True)
    stride = Arg("int", 1, "Stride of every path.", ge=1)
    dilation = Arg("int", 1, "Dilation of the module (every path's is scaled by it).", ge=1)
    groups = Arg("int", 1, "Groups of each path's convolution (at most out_channels).", ge=1)
    rd_ratio = Arg("float", 1. / 16, "Attention width per output channel (without rd_channels).", ge=0)
    rd_channels = Arg("int", None, "Attention width (fc_reduce's channels).", ge=1, nullable=True)
    rd_divisor = Arg("int", 8, "The attention width is a multiple of it (without rd_channels).", ge=1)
    keep_3x3 = Arg("bool", True, "Every path a 3x3 kernel, a larger one as dilation (k-1)//2.")
    split_input = Arg("bool", True, "Each path convolves its share in_channels / paths of the input.")

    @classmethod
    def values_from_torch(cls, module) -> dict:
        """The paths' kernels and dilations (all 3x3: ``keep_3x3`` with kernel ``2*d + 1``), the
        groups and stride from the first path, the attention width from ``fc_reduce``."""
        convs = [p.conv for p in module.paths]
        ks, ds = [c.kernel_size[0] for c in convs], [c.dilation[0] for c in convs]
        out = {"stride": convs[0].stride[0], "groups": convs[0].groups,
               "rd_channels": module.attn.fc_reduce.out_channels}
        if all(k == 3 for k in ks):
            out.update(kernel_size=[2 * d + 1 for d in ds], dilation=1, keep_3x3=True)
        else:
            out.update(kernel_size=ks, dilation=ds[0], keep_3x3=False)
        if out["kernel_size"] == [3, 5]:
            out["kernel_size"] = None
        return out

    def paths(self) -> list[tuple[int, int]]:
        """(kernel, dilation) of each path, as timm derives them."""
        ks = self.kernel_size if self.kernel_size is not None else [3, 5]
        ks = list(ks) if isinstance(ks, list) else [ks, ks]
        if self.keep_3x3:
            return [(3, self.dilation * (k - 1) // 2) for k in ks]
        return [(k, self.dilation) for k in ks]

    def windows(self) -> list[F.Window]:
        s = self.stride
        return [F.Window(F.effective_kernel(k, d), s, ((s - 1) + d * (k - 1)) // 2, ((s - 1) + d * (k - 1)) // 2)
                for k, d in self.paths()]

    def widths(self, c_in: int) -> tuple[int, int, int]:
        """(output channels, each path's input channels, attention width)."""
        out = self.out_channels or c_in
        n = len(self.paths())
        return out, c_in // n if self.split_input else c_in, \
            self.rd_channels or make_divisible(out * self.rd_ratio, self.rd_divisor)

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (3,), INPUT_LAYOUT[2])
        c_in = shape[0]
        check_channels(self, self.in_channels, c_in, "in_channels", shape)
        ks = self.kernel_size if self.kernel_size is not None else [3, 5]
        first = ks[0] if isinstance(ks, list) else ks
        if first < 3 or first % 2 == 0:
            raise LayerError(f"SelectiveKernel's first kernel must be odd and at least 3 (timm asserts it), "
                             f"received {first}", "use kernel_size: [3, 5]", "kernel_size")
        paths = self.paths()
        if any(d < 1 for _, d in paths):
            raise LayerError(f"SelectiveKernel with keep_3x3 turns kernel k into dilation dilation*(k-1)//2: kernels "
                             f"{ks} give dilations {[d for _, d in paths]} (0 is not a dilation)",
                             "use kernels of 3 or more, or keep_3x3: false", "kernel_size")
        out, p_in, attn = self.widths(c_in)
        n = len(paths)
        if self.split_input:
            _divides(self, "in_channels", c_in, n, "the number of paths", "kernel_size")
        g = min(out, self.groups)
        _divides(self, "each path's input channels", p_in, g, "groups", "groups")
        _divides(self, "out_channels", out, g, "groups", "groups")
        outs = []
        for w, (k, _) in zip(self.windows(), paths):
            o = []
            for ax, size in zip(AXIS_NAMES[2], shape[1:]):
                _check_fits(self, f"{k}x{k} path's", size, w.k_eff, w.pad_lo, ax, "kernel_size")
                o.append(w.out(size))
            outs.append(tuple(o))
        if len(set(outs)) > 1:
            raise LayerError(f"SelectiveKernel's paths give different sizes {[list(o) for o in outs]} for input "
                             f"{shape_str(shape)}: they cannot be stacked", "use odd kernels", "kernel_size")
        k2 = sum(k * k for k, _ in paths)
        params = (p_in // g) * out * k2 + 2 * out * n + out * attn + 2 * attn + attn * out * n
        macs = out * F.prod(outs[0]) * (p_in // g) * k2 + attn * out + out * n * attn
        big = max(self.windows(), key=lambda w: w.k_eff)
        return Inference((out, *outs[0]), params, macs, (big.rf, big.rf), _bn_note(self, batch))

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {"in_channels": shape[0], **{k: v for k, v in self.args().items() if k != "in_channels"}}

    def saved(self, shape, out, batch):
        """Measured on timm's module (training): the input (every path's conv reads it or a
        view of it); per path the conv's output (BN's input), BN's statistics and the ReLU's
        output; the pooled sum (fc_reduce's input); fc_reduce's output, its statistics and the
        ReLU's; the softmax weights; the stacked paths (the product's input)."""
        c_out, _, attn = self.widths(shape[0])
        n = len(self.paths())
        m = batch * F.prod(out)
        s = [Saved("input")]
        for _ in range(n):
            s += [Saved("new", m), Saved("new", c_out), Saved("new", c_out), Saved("new", m)]
        s += [Saved("new", batch * c_out), Saved("new", batch * attn), Saved("new", attn), Saved("new", attn),
              Saved("new", batch * attn), Saved("new", batch * n * c_out), Saved("new", n * m)]
        return tuple(s)

    def workspace(self, shape, out, batch, itemsize, kept, input_grad, isa="avx2"):
        """Forward temporaries besides the input and the output: the paths' outputs, their
        stack and the weighted stack (each paths x the output), in eval a path's conv output
        beside its normalised copy; in training the kept tensors are allocated here too; the
        backward holds two stack-sized gradients (estimates, checked within 10%, not to the byte)."""
        n, m = len(self.paths()), batch * F.prod(out)
        if kept:  # backward: the stacked paths' gradient
            return (_new_numel(self.saved(shape, out, batch)) + n * m) * itemsize, 2 * n * m * itemsize
        return 3 * n * m * itemsize, 0

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels fixed; a spatial size slides the paths' window (odd effective kernels all
        give the same size; otherwise no rule: reported as unknown)."""
        if dim == 0:
            return fixed(0, shape[0], self.widths(shape[0])[0],
                         inferred=self.in_channels is None and self.out_channels is None)
        ws = self.windows()
        if any(w.k_eff % 2 == 0 for w in ws):
            return None
        return ws[0].rule(dim)

    def explain(self, shape: Shape) -> list[str]:
        if len(shape) != 3:
            return []
        out, p_in, attn = self.widths(shape[0])
        return [f"path {i}: {p_in} -> {out} channels, {k}x{k} dilation {d}" for i, (k, d) in enumerate(self.paths())] \
            + [f"attention width {attn}"]
