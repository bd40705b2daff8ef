"""timm's anti-aliasing ``BlurPool2d`` (Zhang 2019, "Making Convolutional Networks
Shift-Invariant Again"; resnetblur*, densenetblur121d, ``aa_layer="blur"`` / ``"blurpc"``).

It pads the input with ``F.pad`` (``pad_mode``, ``reflect`` by default) by
``p = ((stride-1) + (filt_size-1)) // 2`` on every side, then convolves each channel with a
fixed binomial filter (the outer product of the ``filt_size`` coefficients ``C(n, k) / 2^n``,
``n = filt_size-1``; they sum to 1) at ``stride``: a depthwise convolution whose weight is
the non-persistent buffer ``filt`` (no ``state_dict`` key, no parameter). So per spatial
axis ``out = floor((in + 2p - filt_size) / stride) + 1``; reflect padding needs
``in > p`` (torch's limit), circular ``in >= p``.

Memory: the padded copy is what the convolution keeps for backward (its input), and
reflect / replicate padding also keep their own input for the input's gradient; measured
against autograd (tests/test_timm_blur_pool.py).
"""

from typing import Any

from .. import formulas as F
from ..rules import fixed
from .base import AXIS_NAMES, INPUT_LAYOUT, Arg, Inference, Layer, LayerError, Saved, Shape, register
from .conv import Conv2d, check_channels

PAD_MODES = ("reflect", "constant", "replicate", "circular")


def binomial(filt_size: int) -> list[float]:
    """The 1-d blur coefficients of timm's filter, ``C(n, k) / 2^n`` for ``n = filt_size-1``.

    >>> binomial(3)
    [0.25, 0.5, 0.25]
    """
    import math

    n = filt_size - 1
    return [math.comb(n, k) / 2 ** n for k in range(filt_size)]


@register
class BlurPool2d(Layer):
    """timm's ``BlurPool2d`` (anti-aliased downsampling: resnetblur*, densenetblur121d): pad by
    ``p = ((stride-1) + (filt_size-1)) // 2`` with ``pad_mode``, then a fixed binomial blur per
    channel at ``stride`` (a depthwise convolution with the non-persistent buffer ``filt``).
    ``[C, H, W]`` -> ``[C, H_out, W_out]``, per axis
    ``out = floor((in + 2*((stride + filt_size - 2) // 2) - filt_size) / stride) + 1`` (``in + 2p``:
    the padded size); 0 params; MACs ``C * H_out * W_out * filt_size^2``; reflect padding needs ``in > p``."""

    family = "timm"
    rank = 2
    torch_module = "BlurPool2d"
    channels = Arg("int", None, "Channels C; inferred from the input when omitted.", ge=1, nullable=True,
                   inferred_from="channels")
    filt_size = Arg("int", 3, "Size of the binomial blur filter (coefficients C(n, k) / 2^n, n = filt_size-1).",
                    ge=2)
    stride = Arg("int", 2, "Downsampling stride.", ge=1)
    pad_mode = Arg("choice", "reflect", "F.pad's mode for the padding ((stride-1) + (filt_size-1)) // 2 per side "
                   "(timm's 'blurpc' anti-aliasing uses constant).", choices=PAD_MODES)

    def pad(self) -> int:
        """Padding on every side: timm's ``get_padding(filt_size, stride)``."""
        return ((self.stride - 1) + (self.filt_size - 1)) // 2

    def window(self) -> F.Window:
        p = self.pad()
        return F.Window(self.filt_size, self.stride, p, p)

    def padded(self, shape: Shape) -> Shape:
        p = self.pad()
        return (shape[0], *(n + 2 * p for n in shape[1:]))

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (3,), INPUT_LAYOUT[2])
        check_channels(self, self.channels, shape[0], "channels", shape)
        p, k, w = self.pad(), self.filt_size, self.window()
        out = [shape[0]]
        for ax, n in zip(AXIS_NAMES[2], shape[1:]):
            if self.pad_mode == "reflect" and p >= n:
                raise LayerError(
                    f"BlurPool2d reflect-pads by {p} (filt_size {k}, stride {self.stride}): reflect padding must be "
                    f"smaller than the input along {ax}, expected a size ≥ {p + 1}, received {n}",
                    f"give this layer an input of at least {p + 1} along {ax} (fewer downsamplings before it), "
                    "a smaller filt_size / stride, or pad_mode: replicate / constant", "pad_mode")
            if self.pad_mode == "circular" and p > n:
                raise LayerError(
                    f"BlurPool2d circular padding by {p} wraps around more than once along {ax}: expected a size "
                    f"≥ {p}, received {n}", f"give this layer an input of at least {p} along {ax}, or use "
                    "pad_mode: reflect / replicate / constant", "pad_mode")
            o = w.out(n)
            if o < 1:
                raise LayerError(
                    f"BlurPool2d's filter ({k}) is larger than the padded input along {ax} ({n} + {p} + {p})",
                    f"give this layer an input of at least {k - 2 * p} along {ax}, or a smaller filt_size",
                    "filt_size")
            out.append(o)
        rf = tuple([w.rf] * 2)
        return Inference(tuple(out), 0, shape[0] * F.prod(out[1:]) * k * k, rf)

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return {"channels": shape[0], **{k: v for k, v in self.args().items() if k != "channels"}}

    def saved(self, shape, out, batch):
        """The convolution keeps its input, the padded copy; reflect / replicate padding keep
        their input too when it needs a gradient (constant and circular do not)."""
        copy = Saved("new", batch * F.prod(self.padded(shape)))
        keep = (Saved("input", when="input"),) if self.pad_mode in ("reflect", "replicate") else ()
        return keep + (copy,)

    def _conv(self, shape: Shape) -> Conv2d:
        return Conv2d(in_channels=shape[0], out_channels=shape[0], kernel_size=self.filt_size, stride=self.stride,
                      groups=shape[0], bias=False)

    def workspace(self, shape, out, batch, itemsize, kept, input_grad, isa="avx2"):
        """The depthwise convolution's on the padded copy (Conv2d's estimate), plus the copy
        while the convolution runs when autograd does not keep it."""
        padded = self.padded(shape)
        fwd, bwd = self._conv(shape).workspace(padded, out, batch, itemsize, kept, input_grad, isa)
        return fwd + (0 if kept else batch * F.prod(padded) * itemsize), bwd

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels pass (fixed when ``channels`` is written); spatial: the blur window on the
        padded axis (reflect needs ``in > p``, circular ``in >= p``)."""
        if dim == 0:
            return fixed(0, shape[0], inferred=self.channels is None)
        p = self.pad()
        min_in = {"reflect": p + 1, "circular": p}.get(self.pad_mode, 1)
        return self.window().rule(dim, min_in=max(min_in, 1))

    def explain(self, shape: Shape) -> list[str]:
        if len(shape) != 3:
            return []
        p, k, s = self.pad(), self.filt_size, self.stride
        coeffs = ", ".join(f"{c:g}" for c in binomial(k))
        lines = [f"filter: [{coeffs}] (outer product, per channel), {self.pad_mode} padding {p}"]
        lines += [f"{ax}: floor(({n} + 2*{p} - {k}) / {s}) + 1 = {self.window().out(n)}"
                  for ax, n in zip(AXIS_NAMES[2], shape[1:])]
        return lines
