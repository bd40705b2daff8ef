"""Padding layers: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad, CircularPad (1d/2d/3d).

``padding`` is an int (every side) or ``2*rank`` ints in torch's order, last axis first:
``[left, right]`` (1d), ``[left, right, top, bottom]`` (2d), ``[left, right, top, bottom,
front, back]`` (3d). Negative values crop.

Shape (per padded axis): ``out = in + pad_before + pad_after`` (must stay ≥ 1). The last
``rank`` axes are padded; ``ZeroPad``/``ConstantPad`` also work on maps of higher rank
(``ZeroPad1d`` on ``[C, H, W]`` pads W only), the other modes need exactly ``[C, *rank axes]``.
A pad layer that would pad the channel axis (``ZeroPad2d`` on ``[C, L]``) or the batch axis is
refused: torch would read the batch as channels (use the matching rank instead).
Limits (torch's): reflection ``pad < in`` on each side; circular ``pad ≤ in`` and, with negative
values, only the combinations torch's copy steps accept (replayed exactly); zero / constant
padding crops first, so the crops together must not exceed ``in``.

Receptive field: a window of size 1, stride 1 that starts ``pad_before`` earlier along each
padded axis (``start -= pad_before * jump``); other axes unchanged.
"""

from typing import Any, ClassVar

from ..rules import affine, same
from .. import formulas as F
from .base import AXIS_NAMES, Arg, Inference, Layer, LayerError, Saved, Shape, register, shape_str

SIDES = {1: ("left", "right"), 2: ("left", "right", "top", "bottom"),
         3: ("left", "right", "top", "bottom", "front", "back")}


class _Pad(Layer):
    family = "padding"
    kind: ClassVar[str] = ""
    #: constant padding works on any map with at least rank+1 dims; others need exactly rank+1
    any_rank: ClassVar[bool] = False

    padding = Arg("ints", doc="An int (every side) or 2*rank ints, last axis first: "
                  "[left, right, top, bottom, front, back]; negative crops.")

    def check_args(self, values: dict) -> None:
        p = values["padding"]
        if isinstance(p, list) and len(p) != 2 * self.rank:
            names = ", ".join(SIDES[self.rank])
            raise LayerError(f"{self.type}.padding: expected an int or {2 * self.rank} ints [{names}], "
                             f"received {len(p)} values {p}", f"give {2 * self.rank} values or one int", "padding")

    def pads(self) -> list[tuple[int, int]]:
        """(before, after) per padded axis, in the map's axis order (first padded axis first)."""
        p = self.padding if isinstance(self.padding, list) else [self.padding] * (2 * self.rank)
        pairs = [(p[2 * i], p[2 * i + 1]) for i in range(self.rank)]  # last axis first
        return pairs[::-1]

    def infer(self, shape: Shape, batch: int) -> Inference:
        r = self.rank
        if len(shape) <= r:
            hint = "this layer needs a feature map: move Flatten/Linear after it"
            fix = None
            if len(shape) >= 2:
                hint = f"the incoming map is {len(shape) - 1}-d: use {self.type[:-2]}{len(shape) - 1}d"
                fix = {"type": f"{self.type[:-2]}{len(shape) - 1}d"}
            what = "channel" if len(shape) == r else "batch"
            raise LayerError(
                f"{self.type} pads the last {r} axes; the incoming {shape_str(shape)} has "
                f"{len(shape) - 1} spatial ax{'is' if len(shape) == 2 else 'es'}, so it would pad the {what} axis "
                f"(expected at least {r + 1} dims per sample)", hint, fix=fix)
        if not self.any_rank and len(shape) != r + 1:
            layout = {1: "[C, L]", 2: "[C, H, W]", 3: "[C, D, H, W]"}[r]
            self.expect_rank(shape, (r + 1,), layout)
        lead = len(shape) - r
        axes = AXIS_NAMES.get(len(shape) - 1, tuple(f"axis {i}" for i in range(1, len(shape))))[lead - 1:]
        out = list(shape[:lead])
        for ax, n, (a, b) in zip(axes, shape[lead:], self.pads()):
            self.check_axis(ax, n, a, b, batch * F.prod(out))
            o = n + a + b
            if o < 1:
                raise LayerError(
                    f"output size too small along {ax}: {n} + {a} + {b} = {o} (negative padding crops "
                    "more than the input)", f"crop less than {n} in total along {ax}", "padding")
            out.append(o)
        windows = tuple([(1, 1, 0)] * (lead - 1) + [(1, 1, a) for a, _ in self.pads()])
        return Inference(tuple(out), rf=windows)

    def check_axis(self, ax: str, n: int, a: int, b: int, outer: int) -> None:
        """Mode-specific limits of the padding along one axis (``outer``: the product of the
        output's batched dims before this axis)."""

    #: smallest input size for padding (before, after): (a, b) -> min size
    def min_size(self, a: int, b: int) -> int:
        return 1

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """A padded axis grows by before + after (mode limits: reflect needs in > pad,
        circular in >= pad); other axes pass."""
        lead = len(shape) - self.rank
        if dim < lead:
            return same(dim)
        a, b = self.pads()[dim - lead]
        return affine(dim, 1, a + b, lo=max(1, self.min_size(a, b)))

    def explain(self, shape: Shape) -> list[str]:
        if len(shape) <= self.rank:
            return []
        lead = len(shape) - self.rank
        axes = AXIS_NAMES.get(len(shape) - 1, ())[lead - 1:]
        return [f"{ax}: {n} + {a} + {b} = {n + a + b}" for ax, n, (a, b) in zip(axes, shape[lead:], self.pads())]

    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        return super().torch_kwargs(shape)


class _ConstantLike(_Pad):
    any_rank = True

    @staticmethod
    def crop(a: int, b: int) -> int:
        """Input positions that negative padding removes (torch crops first, then pads)."""
        return -min(a, 0) - min(b, 0)

    def min_size(self, a: int, b: int) -> int:
        return max(1, self.crop(a, b))

    def check_axis(self, ax: str, n: int, a: int, b: int, outer: int) -> None:
        crop = self.crop(a, b)
        if crop > n:  # torch crops first, then pads
            raise LayerError(
                f"negative padding crops more than the input along {ax}: expected a total crop ≤ {n}, "
                f"received ({a}, {b}) (torch crops before it pads)", f"crop at most {n} along {ax}", "padding")


def _keeps_input(self, shape, out, batch):
    """Reflection/replication padding's backward reads the input."""
    return (Saved("input"),)


class _Reflect(_Pad):
    saved = _keeps_input

    def min_size(self, a: int, b: int) -> int:
        return max(a, b) + 1

    def check_axis(self, ax: str, n: int, a: int, b: int, outer: int) -> None:
        if a >= n or b >= n:
            raise LayerError(
                f"reflection padding must be smaller than the input along {ax}: expected padding < {n}, "
                f"received ({a}, {b})", f"reduce padding to ≤ {n - 1} along {ax}, or use ReplicationPad / "
                f"ZeroPad", "padding")


class _Circular(_Pad):
    def min_size(self, a: int, b: int) -> int:
        return max(a, b)

    def check_axis(self, ax: str, n: int, a: int, b: int, outer: int) -> None:
        if a > n or b > n:
            raise LayerError(
                f"circular padding wraps around more than once along {ax}: expected padding ≤ {n}, "
                f"received ({a}, {b})", f"reduce padding to ≤ {n} along {ax}", "padding")
        if n + a + b >= 1 and not _circular_copies_fit(n, a, b, outer):
            raise LayerError(
                f"circular padding ({a}, {b}) on an axis of size {n} along {ax}: with this negative padding "
                "torch's circular copies do not fit (it fails with a size mismatch)",
                f"use padding ≥ 0 for CircularPad, and crop with ZeroPad{self.rank}d (negative padding) "
                "before or after it", "padding")


def _slice_len(size: int, start: int, end: int) -> int:
    """Length of ATen's ``slice(start, end)`` on an axis of ``size`` (negative indices wrap once,
    then both ends are clamped)."""
    start, end = start + size if start < 0 else start, end + size if end < 0 else end
    start = min(max(start, 0), size)
    return min(max(end, start), size) - start


def _circular_copies_fit(n: int, a: int, b: int, outer: int) -> bool:
    """Replay torch's circular padding (aten ``_pad_circular_symint``) along one axis: the core
    copy and the two wrap-around copies need equal (or broadcastable, size-1) slices; a
    wrap-around copy whose source and destination partly overlap is refused by torch when the
    slices are dense in memory, i.e. when every batched dim before this axis has size 1
    (``outer == 1``); otherwise torch copies without checking."""
    out = n + a + b

    def fits(dest: tuple[int, int], src: tuple[int, int], same_tensor: bool = True) -> bool:
        ld, ls = _slice_len(out, *dest), _slice_len(out if same_tensor else n, *src)
        if ls not in (ld, 1):
            return False
        if same_tensor and outer == 1 and ld and ls:
            (d0, d1), (s0, s1) = _span(out, *dest), _span(out, *src)
            if (d0, d1) != (s0, s1) and d0 < s1 and s0 < d1:
                return False  # partial overlap
        return True

    if not fits((max(a, 0), out - max(b, 0)), (max(-a, 0), n - max(-b, 0)), same_tensor=False):
        return False
    if a > 0 and not fits((0, a), (out - a - max(b, 0), out - max(b, 0))):
        return False
    return not (b > 0 and not fits((out - b, out), (max(a, 0), max(a, 0) + b)))


def _span(size: int, start: int, end: int) -> tuple[int, int]:
    start = start + size if start < 0 else start
    start = min(max(start, 0), size)
    return start, start + _slice_len(size, start, end)
def _make(base, prefix: str, doc: str, extra: dict | None = None):
    for r in (1, 2, 3):
        name = f"{prefix}{r}d"
        ns = {"rank": r, "__doc__": f"{doc} the last {r} ax{'is' if r == 1 else 'es'}: per axis "
              "``out = in + pad_before + pad_after``.", "__module__": __name__, **(extra or {})}
        globals()[name] = register(type(name, (base,), ns))


_make(_ConstantLike, "ZeroPad", "Zero-pad")
_make(_ConstantLike, "ConstantPad", "Pad with the constant ``value``",
      {"value": Arg("float", doc="The fill value.")})
_make(_Reflect, "ReflectionPad", "Reflect-pad (mirror without the edge; pad < in)")
_make(_Pad, "ReplicationPad", "Replicate-pad (repeat the edge)", {"saved": _keeps_input})
_make(_Circular, "CircularPad", "Circular-pad (wrap around; pad ≤ in)")
