"""Pooling: MaxPool, AvgPool, LPPool and the adaptive poolings, in 1d/2d/3d.

Shape (per spatial axis, ``k_eff = dilation*(kernel_size-1)+1``, ``stride`` defaults to
``kernel_size``):

- ``MaxPoolNd`` / ``AvgPoolNd`` / ``LPPoolNd`` (no padding): ``out = floor((in + 2*padding - k_eff) / stride) + 1``;
  with ``ceil_mode`` ``ceil`` instead of ``floor``, then the last window is dropped if it
  would start in the right padding: ``if (out-1)*stride >= in + padding: out -= 1``.
- ``Adaptive*PoolNd``: ``out = output_size`` (``null`` entries keep the input size).
"""


from typing import Any, ClassVar

from ..rules import constant, same
from .. import formulas as F
from .base import (
    AXIS_NAMES, INPUT_LAYOUT, KEEP, MIX, Arg, Inference, Layer, LayerError, Note, Saved, Shape, ntuple,
    register,
)


class _WindowBase(Layer):
    """Shared rule of max, average and power-average pooling."""

    family = "pooling"
    #: torch's avg_pool3d also requires input >= kernel_size (padding not counted) (found by the property suite)
    kernel_must_fit: ClassVar[bool] = False
    kernel_size = Arg("axes", doc="Window size: int or one int per spatial axis.", ge=1)
    stride = Arg("axes", None, "Step between windows (default: kernel_size).", ge=1, nullable=True)

    def _axes(self, name: str) -> tuple[int, ...]:
        value = getattr(self, name, 0 if name == "padding" else 1)
        if name == "stride" and value is None:
            value = self.kernel_size
        return ntuple(value, self.rank)

    def windows(self) -> tuple[F.Window, ...]:
        """The pooling window along each spatial axis (output sizes, size rule and receptive
        field all come from these)."""
        return tuple(F.Window(F.effective_kernel(k, d), s, p, p, bool(self.ceil_mode)) for k, s, p, d in
                     zip(*(self._axes(n) for n in ("kernel_size", "stride", "padding", "dilation"))))

    def infer(self, shape: Shape, batch: int) -> Inference:
        rank = self.rank
        self.expect_rank(shape, (rank + 1,), INPUT_LAYOUT[rank])
        ks, st, pd, dl = (self._axes(n) for n in ("kernel_size", "stride", "padding", "dilation"))
        windows = self.windows()
        out, notes, unused = [], [], []
        for ax, n, k, s, p, d, w in zip(AXIS_NAMES[rank], shape[1:], ks, st, pd, dl, windows):
            if 2 * p > k:
                raise LayerError(
                    f"pad should be at most half of kernel_size along {ax}: expected padding ≤ {k // 2} "
                    f"(kernel_size {k} // 2), received {p}",
                    f"reduce padding to ≤ {k // 2} or increase kernel_size to ≥ {2 * p}", "padding")
            if self.kernel_must_fit and n < k:
                raise LayerError(
                    f"input smaller than the kernel along {ax}: expected kernel_size ≤ {n} (the unpadded "
                    f"input), received {k} ({self.type} requires it even with padding or ceil_mode)",
                    f"reduce kernel_size to ≤ {n} along {ax}, or remove this pooling layer", "kernel_size")
            o = w.out(n)
            if o < 1:
                keff = w.k_eff
                dil = f"{d}*({k}-1) - 1" if d > 1 else f"{k}"
                max_k = (n + 2 * p - 1) // d + 1
                raise LayerError(
                    f"output size too small along {ax}: floor(({n} + 2*{p} - {dil})/{s}) + 1 = {o}; "
                    f"the window ({keff}) is larger than the padded input ({n + 2 * p})",
                    f"reduce kernel_size to ≤ {max_k} along {ax}, or remove this pooling layer",
                    "kernel_size")
            keff = w.k_eff
            rem = w.dropped(n)  # real input pixels (not padding) past the last window
            # floor pooling drops a remainder by design (7 -> 3 with kernel 2); worth a warning
            # only when a sizeable part of the axis is lost
            if rem > 0 and keff >= s and not self.ceil_mode and F.sizeable_loss(rem, n):
                unused.append(f"{rem} of {n} input positions along {ax}")
            out.append(o)
        if unused:
            notes.append(Note(
                f"{self.type} ignores the last {', '.join(unused)} "
                "((in + 2*padding - k_eff) % stride positions fall after the last window)",
                "use ceil_mode: true, pad the input, or choose sizes divisible by the stride", "kernel_size"))
        return Inference((shape[0], *out), 0, 0, tuple(w.rf for w in windows), tuple(notes))

    def explain(self, shape: Shape) -> list[str]:
        if len(shape) != self.rank + 1:
            return []
        rnd = "ceil" if self.ceil_mode else "floor"
        return [f"{ax}: {rnd}(({n} + 2*{p} - {d}*({k}-1) - 1)/{s} + 1) = {F.pool_out(n, k, s, p, d, self.ceil_mode)}"
                for ax, n, k, s, p, d in zip(AXIS_NAMES[self.rank], shape[1:], *(self._axes(x) for x in
                                             ("kernel_size", "stride", "padding", "dilation")))]

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return super().torch_kwargs(shape)

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels pass; a spatial size slides the window (floor or ceil_mode)."""
        if dim == 0:
            return same(0)
        k = self._axes("kernel_size")[dim - 1]
        return self.windows()[dim - 1].rule(dim, min_in=k if self.kernel_must_fit else 1)


class _WindowPool(_WindowBase):
    padding = Arg("axes", 0, "Implicit padding on both sides (at most kernel_size // 2).", ge=0)


class _LPPool(_WindowBase):
    """``(sum over the window of x^p)^(1/p)``: average pooling of ``x^p`` (no padding) times the
    window size, to the power ``1/p``."""

    norm_type = Arg("float", doc="The power p (not 0; inf gives max pooling).")
    kernel_size = Arg("axes", doc="Window size: int or one int per spatial axis.", ge=1)
    stride = Arg("axes", None, "Step between windows (default: kernel_size).", ge=1, nullable=True)
    ceil_mode = Arg("bool", False, "Round the output size up (ceil) instead of down.")

    def saved(self, shape, out, batch):
        """(sum of x^p over windows)^(1/p) as torch composes it: the input, x^p and four
        output-sized intermediates (not the output itself)."""
        n_out = batch * F.prod(out)
        return ((Saved("input"), Saved("new", batch * F.prod(shape)))
                + tuple(Saved("new", n_out) for _ in range(4)))

    def check_args(self, values: dict) -> None:
        if values.get("norm_type") == 0:
            raise LayerError(f"{self.type}.norm_type: the power p cannot be 0 (the output is a 1/p root), "
                             "received 0", "use norm_type: 2 (or 1 for sum pooling)", "norm_type")


class _MaxPoolNd(_WindowPool):
    dilation = Arg("axes", 1, "Spacing between window elements.", ge=1)
    return_indices = Arg("bool", False, "Also return argmax indices (only allowed on the last layer).")
    ceil_mode = Arg("bool", False, "Round the output size up (ceil) instead of down.")

    def returns_tuple(self) -> bool:
        return self.return_indices

    def saved(self, shape, out, batch):
        """The input and the argmax indices (int64, one per output value)."""
        return (Saved("input"), Saved("new", batch * F.prod(out), "int64"))

    def workspace(self, shape, out, batch, itemsize, kept, input_grad, isa="avx2"):
        """The indices are computed (and dropped) even when nothing keeps them."""
        return (0 if kept else batch * F.prod(out) * 8), 0


class _AvgPoolNd(_WindowPool):
    ceil_mode = Arg("bool", False, "Round the output size up (ceil) instead of down.")
    count_include_pad = Arg("bool", True, "Count the zero-padding in the average.")

    def saved(self, shape, out, batch):
        return (Saved("input"),)


class _AvgPoolDivisor(_AvgPoolNd):
    divisor_override = Arg("int", None, "Divide by this instead of the window size (non-zero).", nullable=True)

    def check_args(self, values: dict) -> None:
        if values.get("divisor_override") == 0:
            raise LayerError(f"{self.type}.divisor_override: divisor must be not zero, received 0",
                             "remove divisor_override (divide by the window size) or use a non-zero int",
                             "divisor_override")


class _AdaptivePool(Layer):
    family = "pooling"
    fixes_size = True
    output_size = Arg("axes", doc="Target size: int, or a list per axis whose null entries keep "
                      "the input size.", ge=1, null_items=True)

    def sizes(self, spatial: Shape) -> tuple[int, ...]:
        want = ntuple(self.output_size, self.rank)
        return tuple(n if o is None else o for n, o in zip(spatial, want))

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (self.rank + 1,), INPUT_LAYOUT[self.rank])
        spatial = shape[1:]
        out = self.sizes(spatial)
        rf: Any = KEEP
        windows = []
        for n, o in zip(spatial, out):
            if n % o:
                rf = MIX
                break
            windows.append((n // o, n // o, 0))
        else:
            rf = tuple(windows)
        notes = ()
        if any(o > n for n, o in zip(spatial, out)):
            notes = (Note(f"{self.type} upsamples: output {list(out)} is larger than the input "
                          f"{list(spatial)} (windows repeat input pixels)",
                          "use a smaller output_size", "output_size"),)
        return Inference((shape[0], *out), 0, 0, rf, notes)

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return super().torch_kwargs(shape)

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """A spatial size becomes output_size (null entries keep it)."""
        want = ntuple(self.output_size, self.rank)
        if dim == 0 or want[dim - 1] is None:
            return same(dim)
        return constant(dim, want[dim - 1])

    def saved(self, shape, out, batch):
        """The input, except for an all-ones output size (torch takes the mean: nothing kept)."""
        return () if all(o == 1 for o in out[1:]) else (Saved("input"),)


class _AdaptiveMax(_AdaptivePool):
    return_indices = Arg("bool", False, "Also return argmax indices (only allowed on the last layer).")

    def returns_tuple(self) -> bool:
        return self.return_indices

    def saved(self, shape, out, batch):
        """The input and the argmax indices (int64, one per output value)."""
        return (Saved("input"), Saved("new", batch * F.prod(out), "int64"))

    workspace = _MaxPoolNd.workspace


_WINDOW_RULE = ("``out = floor((in + 2*padding - dilation*(kernel_size-1) - 1)/stride + 1)`` "
                "(``stride`` defaults to ``kernel_size``); with ``ceil_mode`` ``ceil`` instead of "
                "``floor``, and the last window is dropped if it would start in the right padding.")
_AVG_RULE = _WINDOW_RULE.replace("dilation*(kernel_size-1) - 1", "kernel_size")
_LP_RULE = ("``out = floor((in - kernel_size)/stride + 1)`` (no padding; ``stride`` defaults to "
            "``kernel_size``; ``ceil`` with ``ceil_mode``); each output is ``(sum over the window of "
            "x^p)^(1/p)``.")
_ADAPTIVE_RULE = "``out = output_size`` (a ``null`` entry keeps the input size)."


def _doc(kind: str, rank: int, rule: str) -> str:
    layout = INPUT_LAYOUT[rank]
    out = layout.replace("C,", "C,").replace("L", "L_out").replace("D,", "D_out,").replace("H,", "H_out,") \
        .replace("W]", "W_out]")
    return f"{kind}. Input ``{layout}`` -> ``{out}``, per axis\n{rule}"


@register
class MaxPool1d(_MaxPoolNd):
    __doc__ = _doc("1-d max pooling", 1, _WINDOW_RULE)
    rank = 1


@register
class MaxPool2d(_MaxPoolNd):
    __doc__ = _doc("2-d max pooling", 2, _WINDOW_RULE)
    rank = 2


@register
class MaxPool3d(_MaxPoolNd):
    __doc__ = _doc("3-d max pooling", 3, _WINDOW_RULE)
    rank = 3


@register
class AvgPool1d(_AvgPoolNd):
    __doc__ = _doc("1-d average pooling", 1, _AVG_RULE)
    rank = 1


@register
class AvgPool2d(_AvgPoolDivisor):
    __doc__ = _doc("2-d average pooling", 2, _AVG_RULE)
    rank = 2


@register
class AvgPool3d(_AvgPoolDivisor):
    __doc__ = _doc("3-d average pooling", 3, _AVG_RULE)
    rank = 3
    kernel_must_fit = True


@register
class AdaptiveAvgPool1d(_AdaptivePool):
    __doc__ = _doc("1-d adaptive average pooling", 1, _ADAPTIVE_RULE)
    rank = 1


@register
class AdaptiveAvgPool2d(_AdaptivePool):
    __doc__ = _doc("2-d adaptive average pooling", 2, _ADAPTIVE_RULE)
    rank = 2


@register
class AdaptiveAvgPool3d(_AdaptivePool):
    __doc__ = _doc("3-d adaptive average pooling", 3, _ADAPTIVE_RULE)
    rank = 3


@register
class AdaptiveMaxPool1d(_AdaptiveMax):
    __doc__ = _doc("1-d adaptive max pooling", 1, _ADAPTIVE_RULE)
    rank = 1


@register
class AdaptiveMaxPool2d(_AdaptiveMax):
    __doc__ = _doc("2-d adaptive max pooling", 2, _ADAPTIVE_RULE)
    rank = 2


@register
class AdaptiveMaxPool3d(_AdaptiveMax):
    __doc__ = _doc("3-d adaptive max pooling", 3, _ADAPTIVE_RULE)
    rank = 3


@register
class LPPool1d(_LPPool):
    __doc__ = _doc("1-d power-average pooling", 1, _LP_RULE)
    rank = 1

    def check_args(self, values: dict) -> None:
        super().check_args(values)
        k = values["kernel_size"]
        if isinstance(k, list):  # torch's lp_pool1d multiplies by kernel_size: a tuple fails in forward
            raise LayerError(f"LPPool1d.kernel_size: expected an int, received a list {k} (torch's "
                             "LPPool1d fails on a tuple kernel_size)", f"write kernel_size: {k[0]}",
                             "kernel_size", fix={"kernel_size": k[0]})


@register
class LPPool2d(_LPPool):
    __doc__ = _doc("2-d power-average pooling", 2, _LP_RULE)
    rank = 2


@register
class LPPool3d(_LPPool):
    __doc__ = _doc("3-d power-average pooling", 3, _LP_RULE)
    rank = 3
    kernel_must_fit = True
