"""Pure integer shape arithmetic, exactly as torch computes it.

No pydantic, no torch: every function here takes and returns plain ints/floats, so it
can be imported by anything (the CLI, the TUI, tests) at no cost. Each formula is checked
against real torch forward passes by the property suite in ``tests/``.

>>> conv_out(28, kernel_size=3)
26
>>> conv_out(28, kernel_size=3, padding=1, stride=2)
14
>>> pool_out(5, kernel_size=2, ceil_mode=True)
3
>>> conv_transpose_out(7, kernel_size=3, stride=2, padding=1, output_padding=1)
14
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .rules import window


def effective_kernel(kernel_size: int, dilation: int = 1) -> int:
    """Span of a dilated kernel: ``dilation*(kernel_size-1)+1``.

    >>> effective_kernel(3, dilation=2)
    5
    """
    return dilation * (kernel_size - 1) + 1


@dataclass(frozen=True, slots=True)
class Window:
    """A sliding window along one axis (convolution or pooling): the one value a windowed
    layer derives its output size (:meth:`out`), the pixels it leaves unused
    (:meth:`dropped`), its receptive-field step (:attr:`rf`) and its size rule
    (:meth:`rule`) from.

    ``ceil``: pooling's ``ceil_mode`` (the division rounds up, then the last window is
    dropped when it would start inside the right padding).

    >>> w = Window(3, stride=2, pad_lo=1, pad_hi=1)
    >>> w.out(28), w.rf, w.dropped(28)
    (14, (3, 2, 1), 0)
    """

    k_eff: int
    stride: int = 1
    pad_lo: int = 0
    pad_hi: int = 0
    ceil: bool = False

    def out(self, n: int) -> int:
        """Output length for an input of length ``n`` (may be < 1: the caller reports it)."""
        numerator = n + self.pad_lo + self.pad_hi - self.k_eff
        out = (numerator + (self.stride - 1 if self.ceil else 0)) // self.stride + 1
        if self.ceil and (out - 1) * self.stride >= n + self.pad_lo:
            out -= 1
        return out

    def dropped(self, n: int) -> int:
        """Real input positions (not padding) past the last window (<= 0: none)."""
        return (n + self.pad_lo + self.pad_hi - self.k_eff) % self.stride - self.pad_hi

    @property
    def rf(self) -> tuple[int, int, int]:
        """(kernel_eff, stride, pad_left): the step :meth:`RFAxis.window` composes."""
        return self.k_eff, self.stride, self.pad_lo

    def rule(self, dim: int, *, min_in: int = 1, drops: bool = True):
        """The size rule (:func:`cnnshape.rules.window`) of this window on per-sample ``dim``."""
        return window(dim, self.k_eff, self.stride, self.pad_lo, self.pad_hi, ceil_mode=self.ceil,
                      min_in=min_in, drops=drops)


def conv_out(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
             dilation: int = 1, padding_right: int | None = None) -> int:
    """Output length of a convolution along one axis (may be < 1: the caller reports it).

    ``floor((in + pad_left + pad_right - k_eff) / stride) + 1``; symmetric padding when
    ``padding_right`` is None.

    >>> conv_out(7, kernel_size=3, dilation=2)
    3
    """
    right = padding if padding_right is None else padding_right
    return Window(effective_kernel(kernel_size, dilation), stride, padding, right).out(size)


def pool_out(size: int, kernel_size: int, stride: int | None = None, padding: int = 0,
             dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output length of max/avg pooling along one axis (torch's ``pooling_output_shape``).

    With ``ceil_mode`` the division rounds up, then the last window is dropped when it
    would start inside the right padding.

    >>> pool_out(6, kernel_size=3, stride=2, ceil_mode=True)
    3
    >>> pool_out(5, kernel_size=2, stride=2, padding=1, ceil_mode=True)
    3
    """
    stride = kernel_size if stride is None else stride
    return Window(effective_kernel(kernel_size, dilation), stride, padding, padding, ceil_mode).out(size)


def conv_transpose_out(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                       output_padding: int = 0, dilation: int = 1) -> int:
    """Output length of a transposed convolution along one axis.

    ``(in-1)*stride - 2*padding + dilation*(kernel_size-1) + output_padding + 1``

    >>> conv_transpose_out(13, kernel_size=2, stride=2)
    26
    """
    return ((size - 1) * stride - 2 * padding + effective_kernel(kernel_size, dilation)
            + output_padding)


def sizeable_loss(dropped: int, size: int) -> bool:
    """True when ``dropped`` trailing positions of an axis of ``size`` are worth a warning:
    a quarter of the axis or more (a strided window always drops a small remainder).

    >>> sizeable_loss(1, 7), sizeable_loss(2, 5)
    (False, True)
    """
    return 4 * dropped >= size


def same_padding(kernel_size: int, dilation: int = 1) -> tuple[int, int]:
    """(left, right) padding of ``padding='same'`` (stride 1): the odd pixel goes right.

    >>> same_padding(4)
    (1, 2)
    >>> same_padding(3, dilation=2)
    (2, 2)
    """
    total = dilation * (kernel_size - 1)
    left = total // 2
    return left, total - left


def tf_same_padding(size: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's "SAME" (timm's ``pad_same``) for an input of
    ``size``: the output is ``ceil(size / stride)``, the total padding
    ``max((out-1)*stride + dilation*(kernel_size-1) + 1 - size, 0)``, the odd pixel after.

    >>> tf_same_padding(7, 3, 2), tf_same_padding(8, 3, 2), tf_same_padding(5, 1, 2)
    ((1, 1), (0, 1), (0, 0))
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + effective_kernel(kernel_size, dilation) - size, 0)
    return total // 2, total - total // 2


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """The [start, end) windows torch's adaptive pooling uses along one axis.

    >>> adaptive_windows(5, 3)
    [(0, 2), (1, 4), (3, 5)]
    """
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


@dataclass(frozen=True, slots=True)
class RFAxis:
    """Receptive field along one axis (Araujo et al., Distill 2019).

    ``size``: input pixels one output unit sees (padding included); ``jump``: input pixels
    between two adjacent output units; ``start``: input coordinate of the centre of the
    first unit's region (pixel centres are 0, 1, 2, ...).
    """

    size: int
    jump: int
    start: float

    def window(self, kernel_eff: int, stride: int, pad_left: int) -> "RFAxis":
        """Compose with a sliding window (conv or pool).

        >>> RFAxis(1, 1, 0.0).window(3, 1, 0)
        RFAxis(size=3, jump=1, start=1.0)
        >>> RFAxis(3, 1, 1.0).window(2, 2, 0)
        RFAxis(size=4, jump=2, start=1.5)
        """
        return RFAxis(
            size=self.size + (kernel_eff - 1) * self.jump,
            jump=self.jump * stride,
            start=self.start + ((kernel_eff - 1) / 2 - pad_left) * self.jump,
        )


def prod(values) -> int:
    """Product of ints (1 for an empty sequence)."""
    return math.prod(values)
