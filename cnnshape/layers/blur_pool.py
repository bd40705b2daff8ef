"""timm's ``BlurPool2d`` (anti-aliased downsampling: resnetblur*, mobilenetv4_conv_blur_medium):
a fixed binomial blur, applied depthwise with a stride after padding every side."""

from typing import Any

from .. import formulas as F
from ..rules import fixed
from .base import AXIS_NAMES, INPUT_LAYOUT, Arg, Inference, Layer, LayerError, Saved, Shape, register
from .conv import check_channels


@register
class BlurPool2d(Layer):
    """timm's ``BlurPool2d``: pad every side by ``p = ((stride-1) + (filt_size-1)) // 2`` (``pad_mode``),
    then a depthwise convolution with the fixed ``filt_size`` x ``filt_size`` binomial filter (no
    parameters: a non-persistent buffer). ``[C, H, W]`` -> ``[C, H_out, W_out]``, per axis
    floor((in + 2*p - filt_size)/stride) + 1; MACs ``C * H_out * W_out * filt_size²``."""

    family = "timm"
    rank = 2
    torch_module = "BlurPool2d"
    channels = Arg("int", None, "Channels C; inferred from the input when omitted.", ge=1, nullable=True,
                   inferred_from="channels")
    filt_size = Arg("int", 3, "Size of the binomial filter (timm asserts > 1).", ge=2)
    stride = Arg("int", 2, "Downsampling stride.", ge=1)
    pad_mode = Arg("choice", "reflect", "How to pad (F.pad's mode).", choices=("reflect", "constant", "replicate",
                                                                             "circular"))

    def pad(self) -> int:
        return ((self.stride - 1) + (self.filt_size - 1)) // 2

    def window(self) -> F.Window:
        return F.Window(self.filt_size, self.stride, self.pad(), self.pad())

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (3,), INPUT_LAYOUT[2])
        check_channels(self, self.channels, shape[0], "channels", shape)
        p, w = self.pad(), self.window()
        out = []
        for ax, n in zip(AXIS_NAMES[2], shape[1:]):
            if (self.pad_mode == "reflect" and p >= n) or (self.pad_mode == "circular" and p > n):
                need = p + 1 if self.pad_mode == "reflect" else p
                raise LayerError(f"BlurPool2d's {self.pad_mode} padding {p} needs {ax} ≥ {need}, received {n}",
                                 f"use pad_mode: constant or replicate, a smaller filt_size, or a larger input along "
                                 f"{ax}", "pad_mode")
            if w.out(n) < 1:
                raise LayerError(f"BlurPool2d's filter {self.filt_size} is larger than the padded input along {ax} "
                                 f"({n} + 2*{p})", "use a smaller filt_size", "filt_size")
            out.append(w.out(n))
        macs = shape[0] * F.prod(out) * self.filt_size ** 2
        return Inference((shape[0], *out), 0, macs, (w.rf, w.rf))

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {"channels": shape[0], **{k: v for k, v in self.args().items() if k != "channels"}}

    def saved(self, shape, out, batch):
        """The padded copy (the convolution's input); reflect / replicate padding also keeps
        its input for the input's gradient (measured, as Conv2d's padding modes)."""
        p = self.pad()
        padded = Saved("new", batch * shape[0] * F.prod(n + 2 * p for n in shape[1:]))
        if self.pad_mode in ("reflect", "replicate"):
            return (Saved("input", when="input"), padded)
        return (padded,)

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels fixed (the filter is repeated per channel); a spatial size slides the
        window (reflect needs in > p, circular in ≥ p)."""
        if dim == 0:
            return fixed(0, shape[0], inferred=self.channels is None)
        p = self.pad()
        min_in = {"reflect": p + 1, "circular": max(p, 1)}.get(self.pad_mode, 1)
        return self.window().rule(dim, min_in=min_in)

    def explain(self, shape: Shape) -> list[str]:
        if len(shape) != 3:
            return []
        p = self.pad()
        return [f"{ax}: floor(({n} + 2*{p} - {self.filt_size})/{self.stride}) + 1 = {self.window().out(n)}"
                for ax, n in zip(AXIS_NAMES[2], shape[1:])]
