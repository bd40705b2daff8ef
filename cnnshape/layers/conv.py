"""Convolutions: Conv1d/2d/3d and ConvTranspose1d/2d/3d.

Shape (per spatial axis, ``k_eff = dilation*(kernel_size-1)+1``):

- ``ConvNd``: ``out = floor((in + pad_left + pad_right - k_eff) / stride) + 1``
- ``ConvTransposeNd``: ``out = (in-1)*stride - 2*padding + k_eff + output_padding``
"""


import math
from typing import Any, ClassVar

from ..rules import affine, fixed
from .. import formulas as F
from ..term import plural
from .base import (
    AXIS_NAMES, INPUT_LAYOUT, MIX, Arg, Inference, Layer, LayerError, Note, Shape, _weight_shape,
    Saved, ntuple, register, shape_str,
)


def check_channels(layer: Layer, declared: int | None, actual: int, key: str, shape: Shape) -> None:
    if declared is not None and declared != actual:
        raise LayerError(
            f"{layer.type} expected {key} = {actual} (the channels of the incoming "
            f"{shape_str(shape)}), received {key}: {declared}",
            f"set {key}: {actual}, or remove {key} to have it inferred",
            key,
            fix={key: actual},
        )


def _divisors(n: int) -> list[int]:
    """Divisors of ``n`` in increasing order (O(sqrt n): n ≤ MAX_INT keeps it ~1 ms)."""
    small = [g for g in range(1, math.isqrt(n) + 1) if n % g == 0]
    return sorted(set(small + [n // g for g in small]))


def check_groups(layer: Layer, in_ch: int, out_ch: int, groups: int) -> None:
    for what, n in (("in_channels", in_ch), ("out_channels", out_ch)):
        if n % groups:
            divisors = _divisors(math.gcd(in_ch, out_ch))
            raise LayerError(
                f"{what} must be divisible by groups: {what} = {n}, groups = {groups} "
                f"({n} % {groups} = {n % groups})",
                f"use groups in {divisors}" if len(divisors) <= 8 else
                f"use a groups value that divides both {in_ch} and {out_ch}",
                "groups",
            )


class _ConvBase(Layer):
    family = "convolution"

    in_channels = Arg("int", None, "Input channels; inferred from the input when omitted.", ge=1, nullable=True,
                      inferred_from="channels")
    out_channels = Arg("int", doc="Number of filters (output channels).", ge=1)
    kernel_size = Arg("axes", doc="Window size: int or one int per spatial axis.", ge=1)
    stride = Arg("axes", 1, "Step between windows: int or one int per axis.", ge=1)

    #: torch's constructor argument order (for readable exported code)
    torch_order: ClassVar[tuple[str, ...]] = ()

    def _axes(self, name: str) -> tuple[int, ...]:
        return ntuple(getattr(self, name), self.rank)

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        kw = {"in_channels": shape[0], "out_channels": self.out_channels, "kernel_size": self.kernel_size,
              **{k: v for k, v in self.args().items() if k not in ("in_channels", "weight")}}
        return {k: tuple(kw[k]) if isinstance(kw[k], list) else kw[k] for k in self.torch_order if k in kw}


class _ConvNd(_ConvBase):
    torch_order = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                   "groups", "bias", "padding_mode")
    padding = Arg("axes", 0, "Zero-padding per side: int, one int per axis, 'same' or 'valid'.",
                  ge=0, words=("same", "valid"))
    dilation = Arg("axes", 1, "Spacing between kernel elements.", ge=1)
    groups = Arg("int", 1, "Blocked connections: in_channels and out_channels must be divisible by it.", ge=1)
    bias = Arg("bool", True, "Add a learnable bias.")
    padding_mode = Arg("choice", "zeros", "How to pad.", choices=("zeros", "reflect", "replicate", "circular"))
    weight = Arg("weight", None, "Fixed kernel values, shape [out_channels, in_channels/groups, "
                 "*kernel_size] (the in_channels/groups level may be dropped when it is 1).", nullable=True)

    def weight_shape(self) -> tuple[int, ...]:
        """Shape of the nested ``weight`` list as written."""
        return _weight_shape(self.weight)

    def resolved_padding(self) -> tuple[tuple[int, int], ...]:
        """(left, right) per axis after resolving 'same' / 'valid'."""
        if self.padding == "valid":
            return ((0, 0),) * self.rank
        if self.padding == "same":
            return tuple(F.same_padding(k, d) for k, d in zip(self._axes("kernel_size"), self._axes("dilation")))
        return tuple((p, p) for p in self._axes("padding"))

    def windows(self) -> tuple[F.Window, ...]:
        """The sliding window along each spatial axis (output sizes, size rule and receptive
        field all come from these)."""
        return tuple(F.Window(F.effective_kernel(k, d), s, pl, pr) for k, s, d, (pl, pr) in
                     zip(self._axes("kernel_size"), self._axes("stride"), self._axes("dilation"),
                         self.resolved_padding()))

    def infer(self, shape: Shape, batch: int) -> Inference:
        rank = self.rank
        self.expect_rank(shape, (rank + 1,), INPUT_LAYOUT[rank])
        c_in, spatial = shape[0], shape[1:]
        check_channels(self, self.in_channels, c_in, "in_channels", shape)
        check_groups(self, c_in, self.out_channels, self.groups)
        ks, st, dl = self._axes("kernel_size"), self._axes("stride"), self._axes("dilation")
        notes: list[Note] = []
        if self.padding == "same":
            if any(s != 1 for s in st):
                raise LayerError(
                    f"padding='same' is not supported for strided convolutions: received stride {self.stride}",
                    "use stride: 1 with padding: same, or give explicit padding "
                    f"(e.g. padding: {[(F.effective_kernel(k, d) - 1) // 2 for k, d in zip(ks, dl)]})",
                    "padding",
                )
            odd = [AXIS_NAMES[rank][i] for i, (k, d) in enumerate(zip(ks, dl)) if (d * (k - 1)) % 2]
            if odd:
                notes.append(Note(
                    f"padding='same' with an even kernel pads asymmetrically along {', '.join(odd)} "
                    "(the extra pixel goes right/bottom)",
                    "use an odd kernel_size for symmetric padding", "padding"))
        windows = self.windows()
        out, unused = [], []
        for ax, n, k, d, w in zip(AXIS_NAMES[rank], spatial, ks, dl, windows):
            self._check_axis(ax, n, k, d, w)
            # input pixels past the last window; only worth a note when the windows tile the
            # input (k_eff >= stride) and real pixels, not just right padding, are lost
            dropped = w.dropped(n)
            if dropped > 0 and w.k_eff >= w.stride and F.sizeable_loss(dropped, n):
                unused.append(f"{plural(dropped, 'pixel')} of {n} along {ax}")
            out.append(w.out(n))
        if unused:
            notes.append(Note(
                f"stride {self.stride} leaves the last {', '.join(unused)} of the input unused",
                "adjust padding, or make (in + padding - k_eff) divisible by the stride", "stride"))
        if self.weight is not None:
            self._check_weight(c_in)
        cin_g = c_in // self.groups
        kprod = F.prod(ks)
        params = self.out_channels * cin_g * kprod + (self.out_channels if self.bias else 0)
        macs = self.out_channels * F.prod(out) * cin_g * kprod
        return Inference((self.out_channels, *out), params, macs, tuple(w.rf for w in windows), tuple(notes))

    def _check_axis(self, ax: str, n: int, k: int, d: int, w: F.Window) -> None:
        """The padding mode and the kernel against an input of size ``n`` along axis ``ax``."""
        pl, pr = w.pad_lo, w.pad_hi
        if self.padding_mode == "reflect" and (pl >= n or pr >= n):
            raise LayerError(
                f"reflect padding must be smaller than the input along {ax}: "
                f"padding ({pl}, {pr}) on an axis of size {n}",
                f"reduce padding to ≤ {n - 1} along {ax}, or use padding_mode: replicate or zeros",
                "padding")
        if self.padding_mode == "circular" and (pl > n or pr > n):
            raise LayerError(
                f"circular padding wraps around more than once along {ax}: "
                f"padding ({pl}, {pr}) on an axis of size {n}",
                f"reduce padding to ≤ {n} along {ax}, or use padding_mode: zeros", "padding")
        keff, padded = w.k_eff, n + pl + pr
        if keff > padded:
            max_k = (padded - 1) // d + 1
            need = -(-(keff - n) // 2)
            dil = f" (dilation {d}: effective {keff})" if d > 1 else ""
            raise LayerError(
                f"kernel larger than the padded input along {ax}: expected kernel_size ≤ {max_k}"
                f"{dil}, received {k}; padded input {n} + {pl} + {pr} = {padded}",
                f"reduce kernel_size to ≤ {max_k} along {ax} or add padding ≥ {need}",
                "kernel_size")

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels fixed at in_channels; a spatial size slides the window (reflect padding
        needs input > padding, circular input >= padding)."""
        if dim == 0:
            return fixed(0, shape[0], self.out_channels, inferred=self.in_channels is None)
        w = self.windows()[dim - 1]
        pad = max(w.pad_lo, w.pad_hi)
        min_in = {"reflect": pad + 1, "circular": pad}.get(self.padding_mode, 1)
        return w.rule(dim, min_in=max(min_in, 1))

    def saved(self, shape, out, batch):
        """The input; a padded copy when torch pads before the convolution: ``padding_mode``
        other than zeros (F.pad: reflect/replicate also keep the input when it needs a
        gradient, circular does not),
        or ``padding: same`` with an odd total padding (the extra pixel, constant pad)."""
        pads = self.resolved_padding()
        if self.padding_mode != "zeros":
            padded = batch * shape[0] * F.prod(n + left + right for n, (left, right) in zip(shape[1:], pads))
            keep = () if self.padding_mode == "circular" else (Saved("input", when="input"),)
            return keep + (Saved("new", padded),)
        if any(left != right for left, right in pads):
            return (Saved("new", batch * shape[0] * F.prod(n + abs(r - le) for n, (le, r) in zip(shape[1:], pads))),)
        return (Saved("input"),)

    def workspace(self, shape, out, batch, itemsize, kept, input_grad, isa="avx2"):
        """oneDNN (2-d and 3-d, float32/bfloat16) computes in a channel-blocked layout, channels
        padded to its block (:data:`cnnshape.cpu_isa.ONEDNN_BLOCK`: 8 with AVX2, 16 with
        AVX-512). Forward: a blocked copy of the input (when it has at least a block of
        channels, or the conv is grouped), of the weight and of the output, then the plain
        output; backward: blocked copies of the output's gradient, the input, the weight and
        the input's gradient. ``isa`` "default" (no blocked kernels): oneDNN's gemm
        convolution, an im2col buffer of one sample (not measured). Measured with torch 2.13 under both
        ``ONEDNN_MAX_CPU_ISA=AVX2`` and AVX-512 (docs/memory.md)."""
        from ..cpu_isa import ONEDNN_BLOCK

        if self.rank == 1 or itemsize == 8:  # 1-d and float64: ATen's own kernels, no copies
            return 0, 0
        ks = self._axes("kernel_size")
        cols = batch * shape[0] * F.prod(ks) * F.prod(out[1:]) * itemsize  # im2col of the batch
        block = ONEDNN_BLOCK[isa]
        if not self._uses_onednn(shape, batch):
            # ATen's slow_conv2d: an im2col buffer [N, C_in*kh*kw, out_h*out_w] (none for a
            # plain 1x1), recomputed in the backward next to its gradient
            plain = all(k == 1 for k in ks) and all(s == 1 for s in self._axes("stride")) and \
                all(p == (0, 0) for p in self.resolved_padding())
            return (0, 0) if plain else (cols, 2 * cols)
        weight = out[0] * (shape[0] // self.groups) * F.prod(ks) * itemsize
        if not block:
            one = cols // batch
            return one, 2 * one + weight

        def pad(c):
            return -(-c // block) * block

        def blocked(s):
            return batch * pad(s[0]) * F.prod(s[1:]) * itemsize

        plain_out = batch * F.prod(out) * itemsize  # already live in the replay
        if self.groups > 1:  # grouped/depthwise: the input is reordered too
            w_blk = pad(out[0]) * (shape[0] // self.groups) * F.prod(ks) * itemsize
            fwd = blocked(shape) + w_blk + blocked(out)
        else:
            reorder = shape[0] >= block
            w_blk = pad(out[0]) * (pad(shape[0]) if reorder else shape[0]) * F.prod(ks) * itemsize
            fwd = (blocked(shape) if reorder else 0) + w_blk + blocked(out)
        w_bwd = pad(out[0]) * pad(shape[0] // self.groups) * F.prod(ks) * itemsize if self.groups == 1 else w_blk
        # backward: the input's gradient (blocked, then plain) and the blocked input for the
        # weight's gradient; with AVX-512 a frozen input of 1-3 channels is used unblocked
        in_bwd = blocked(shape) if input_grad or block == 8 or shape[0] >= 4 else 0
        return max(fwd - plain_out, blocked(out)), blocked(out) + in_bwd + w_bwd

    def _uses_onednn(self, shape, batch) -> bool:
        """ATen's choice (Convolution.cpp ``use_mkldnn``, torch's default multi-threaded CPU):
        oneDNN unless a plain small convolution of one sample, where the native kernel wins."""
        ks = self._axes("kernel_size")
        return (self.groups > 1 or all(k > 3 for k in ks) or batch > 1
                or batch * F.prod(shape) > 20480)

    def _check_weight(self, c_in: int) -> None:
        ks = self._axes("kernel_size")
        cin_g = c_in // self.groups
        full = (self.out_channels, cin_g, *ks)
        got = self.weight_shape()
        ok = got == full or (cin_g == 1 and got == (self.out_channels, *ks))
        if not ok:
            short = f" (or {shape_str((self.out_channels, *ks))})" if cin_g == 1 else ""
            raise LayerError(
                f"weight has the wrong shape: expected {shape_str(full)}{short} = "
                f"[out_channels, in_channels/groups, *kernel_size], received {shape_str(got)}",
                "give one kernel per output channel, each of in_channels/groups x kernel_size values",
                "weight")

    def explain(self, shape: Shape) -> list[str]:
        if len(shape) != self.rank + 1:
            return []
        lines = []
        for ax, n, k, s, d, (pl, pr) in zip(AXIS_NAMES[self.rank], shape[1:], self._axes("kernel_size"),
                                            self._axes("stride"), self._axes("dilation"),
                                            self.resolved_padding()):
            pad = f"2*{pl}" if pl == pr else f"{pl} + {pr}"
            out = F.conv_out(n, k, s, pl, d, padding_right=pr)
            lines.append(f"{ax}: floor(({n} + {pad} - {d}*({k}-1) - 1)/{s} + 1) = {out}")
        return lines



class _ConvTransposeNd(_ConvBase):
    torch_order = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
                   "groups", "bias", "dilation", "padding_mode")
    padding = Arg("axes", 0, "Implicit zero-padding removed from each side of the output.", ge=0)
    output_padding = Arg("axes", 0, "Extra size added to one side of the output.", ge=0)
    groups = Arg("int", 1, "Blocked connections: in_channels and out_channels must be divisible by it.", ge=1)
    bias = Arg("bool", True, "Add a learnable bias.")
    dilation = Arg("axes", 1, "Spacing between kernel elements.", ge=1)
    padding_mode = Arg("choice", "zeros", "Only 'zeros' is supported by torch.", choices=("zeros",))

    def saved(self, shape, out, batch):
        return (Saved("input"),)

    def workspace(self, shape, out, batch, itemsize, kept, input_grad, isa="avx2"):
        """oneDNN's deconvolution (2-d and 3-d, float32/bfloat16), measured with torch 2.13
        under AVX2 and AVX-512: in the forward a copy of the input (channels padded to the
        block once there is a block of them) and of the weight with its output channels padded
        to the block (:data:`cnnshape.cpu_isa.ONEDNN_BLOCK`), then two more output-sized
        buffers while the result is copied out. Not counted: oneDNN's scratchpad (0.1-0.3 MB
        in the measured cases) and the backward's temporaries."""
        from ..cpu_isa import ONEDNN_BLOCK

        block = ONEDNN_BLOCK[isa]
        if self.rank == 1 or itemsize == 8 or not block:
            return 0, 0

        def pad(c):
            return -(-c // block) * block

        cin = pad(shape[0]) if shape[0] >= block else shape[0]
        x_copy = batch * cin * F.prod(shape[1:]) * itemsize
        weight = pad(out[0] // self.groups) * shape[0] * F.prod(self._axes("kernel_size")) * itemsize
        return max(x_copy + weight, 2 * batch * F.prod(out) * itemsize), 0

    def infer(self, shape: Shape, batch: int) -> Inference:
        rank = self.rank
        self.expect_rank(shape, (rank + 1,), INPUT_LAYOUT[rank])
        c_in, spatial = shape[0], shape[1:]
        check_channels(self, self.in_channels, c_in, "in_channels", shape)
        check_groups(self, c_in, self.out_channels, self.groups)
        ks, st, dl = self._axes("kernel_size"), self._axes("stride"), self._axes("dilation")
        pd, op = self._axes("padding"), self._axes("output_padding")
        out = []
        for ax, n, k, s, d, p, o in zip(AXIS_NAMES[rank], spatial, ks, st, dl, pd, op):
            if o >= s and o >= d:
                raise LayerError(
                    f"output_padding must be smaller than either stride or dilation along {ax}: "
                    f"received output_padding {o}, stride {s}, dilation {d}",
                    f"set output_padding ≤ {max(s, d) - 1}", "output_padding")
            size = F.conv_transpose_out(n, k, s, p, o, d)
            if size < 1:
                raise LayerError(
                    f"output size too small along {ax}: ({n}-1)*{s} - 2*{p} + {d}*({k}-1) + {o} + 1 = {size}",
                    f"reduce padding to ≤ {(F.conv_transpose_out(n, k, s, 0, o, d) - 1) // 2}", "padding")
            out.append(size)
        cout_g = self.out_channels // self.groups
        kprod = F.prod(ks)
        params = c_in * cout_g * kprod + (self.out_channels if self.bias else 0)
        macs = c_in * F.prod(spatial) * cout_g * kprod
        return Inference((self.out_channels, *out), params, macs, MIX)

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels fixed; ``out = (x-1)*stride - 2*padding + k_eff + output_padding``."""
        if dim == 0:
            return fixed(0, shape[0], self.out_channels, inferred=self.in_channels is None)
        i = dim - 1
        k, s, d = self._axes("kernel_size")[i], self._axes("stride")[i], self._axes("dilation")[i]
        p, o = self._axes("padding")[i], self._axes("output_padding")[i]
        return affine(dim, s, -s - 2 * p + F.effective_kernel(k, d) + o)

    def explain(self, shape: Shape) -> list[str]:
        if len(shape) != self.rank + 1:
            return []
        return [f"{ax}: ({n}-1)*{s} - 2*{p} + {d}*({k}-1) + {o} + 1 = {F.conv_transpose_out(n, k, s, p, o, d)}"
                for ax, n, k, s, d, p, o in zip(AXIS_NAMES[self.rank], shape[1:], self._axes("kernel_size"),
                                                self._axes("stride"), self._axes("dilation"),
                                                self._axes("padding"), self._axes("output_padding"))]



@register
class Conv1d(_ConvNd):
    """1-d convolution. Input ``[C_in, L]`` -> ``[C_out, L_out]``,
    ``L_out = floor((L + 2*padding - dilation*(kernel_size-1) - 1)/stride + 1)``."""
    rank = 1


@register
class Conv2d(_ConvNd):
    """2-d convolution. Input ``[C_in, H, W]`` -> ``[C_out, H_out, W_out]``, per axis
    ``out = floor((in + 2*padding - dilation*(kernel_size-1) - 1)/stride + 1)``."""
    rank = 2


@register
class Conv3d(_ConvNd):
    """3-d convolution. Input ``[C_in, D, H, W]`` -> ``[C_out, D_out, H_out, W_out]``, per axis
    ``out = floor((in + 2*padding - dilation*(kernel_size-1) - 1)/stride + 1)``."""
    rank = 3


@register
class ConvTranspose1d(_ConvTransposeNd):
    """1-d transposed convolution. ``[C_in, L]`` -> ``[C_out, L_out]``,
    ``L_out = (L-1)*stride - 2*padding + dilation*(kernel_size-1) + output_padding + 1``."""
    rank = 1


@register
class ConvTranspose2d(_ConvTransposeNd):
    """2-d transposed convolution. ``[C_in, H, W]`` -> ``[C_out, H_out, W_out]``, per axis
    ``out = (in-1)*stride - 2*padding + dilation*(kernel_size-1) + output_padding + 1``."""
    rank = 2


@register
class ConvTranspose3d(_ConvTransposeNd):
    """3-d transposed convolution. ``[C_in, D, H, W]`` -> ``[C_out, D_out, H_out, W_out]``, per axis
    ``out = (in-1)*stride - 2*padding + dilation*(kernel_size-1) + output_padding + 1``."""
    rank = 3
