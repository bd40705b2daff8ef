"""Resampling: Upsample (and UpsamplingNearest2d/UpsamplingBilinear2d), PixelShuffle,
PixelUnshuffle, ChannelShuffle. No parameters, no MACs.

Shape (per spatial axis):

- ``Upsample``: ``out = size`` when ``size`` is given, else ``out = floor(in * scale_factor)``
  (exactly one of the two; torch computes the product in double precision, as here).
- ``PixelShuffle(r)``: ``[C*r*r, H, W]`` -> ``[C, H*r, W*r]``;
  ``PixelUnshuffle(r)``: ``[C, H*r, W*r]`` -> ``[C*r*r, H, W]`` (the last three axes).
- ``ChannelShuffle(g)``: unchanged (channels permuted; ``C % g == 0``).

Receptive field (decided here; ``null`` where it is not well defined):

- ``Upsample`` by an integer factor ``s`` along every axis (``scale_factor`` an integer, or
  ``size`` an exact multiple of the input), where every incoming jump is divisible by ``s``:
  ``jump /= s`` and ``start += (1/(2s) - 1/2)*jump_in`` (output unit ``u`` samples the input at
  ``(u + 1/2)/s - 1/2``). The regions of upsampled units are not evenly spaced (nearest: ``s``
  neighbours share one input unit), so ``size`` is the smallest window centred on the sampling
  position that covers every unit's region: ``size += (s-1)/s*jump_in`` for nearest,
  nearest-exact and area; for linear/bilinear/trilinear (2 taps) and bicubic (4 taps) it
  adds the taps' reach. Any other case (fractional factors, ``align_corners``, a jump that
  ``s`` does not divide, e.g. an upsample of the network input itself): ``null``.
- ``PixelShuffle(r)`` on ``[C, H, W]``: like nearest upsampling by ``r`` (``jump /= r``, null
  when a jump is not divisible); ``PixelUnshuffle(r)``: a window ``kernel=r, stride=r``.
  On inputs of other ranks the axes move: ``null``.
"""

import math
from typing import ClassVar

from ..rules import Case, Rule, SizeUnknown, affine, constant, same
from .base import AXIS_NAMES, INPUT_LAYOUT, KEEP, MIX, Arg, Inference, Layer, LayerError, Shape, register, shape_str
from ..formulas import RFAxis

MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
#: interpolating modes: the input rank each needs (None: any of 1, 2, 3 spatial axes)
MODE_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
TAPS = {"linear": 2, "bilinear": 2, "bicubic": 4, "trilinear": 2}


def _half_width(s: int, mode: str) -> float:
    """Largest distance (in input units) from the sampling position of an output unit to the
    centre of the farthest input unit it reads, for an integer upscale ``s``.

    Output unit ``u`` samples the input at ``x = (u + 0.5)/s - 0.5``. nearest / nearest-exact /
    area read unit ``floor(u/s)``, which is at most ``(s-1)/(2s)`` from ``x``; linear modes read
    ``floor(x) - (taps/2 - 1) .. floor(x) + taps/2`` (only ``x`` itself when it is an integer).
    """
    if mode not in TAPS:
        return (s - 1) / (2 * s)
    half_taps = TAPS[mode] / 2
    worst = 0.0
    for r in range(s):
        frac = ((r + 0.5) / s - 0.5) % 1
        if frac:
            worst = max(worst, frac + half_taps - 1, half_taps - frac)
    return worst


def _upscale_rf(factors, mode: str):
    """RF rule of an integer upscale by ``factors`` (one per axis) in ``mode``."""

    def rule(rf):
        if rf is None or len(rf) != len(factors):
            return None
        out = []
        for a, s in zip(rf, factors):
            if a.jump % s:
                return None
            extra = round(2 * _half_width(s, mode) * a.jump)
            out.append(RFAxis(a.size + extra, a.jump // s, a.start + (1 / (2 * s) - 0.5) * a.jump))
        return tuple(out)

    return rule


class _Resize(Layer):
    family = "resampling"
    fixed_mode: ClassVar[str | None] = None

    size = Arg("ints", None, "Output size: an int (every spatial axis) or one int per axis.", ge=1, nullable=True)
    scale_factor = Arg("floats", None, "Multiplier of the spatial size: a number or one per axis "
                       "(output = floor(in * scale_factor)).", nullable=True)

    def mode_(self) -> str:
        return self.fixed_mode or self.mode

    def check_args(self, values: dict) -> None:
        size, scale = values.get("size"), values.get("scale_factor")
        if size is None and scale is None:
            raise LayerError(f"{self.type}: either size or scale_factor should be defined, received neither",
                             "add scale_factor: 2 (or size: [H, W])", None, fix={"scale_factor": 2.0})
        if size is not None and scale is not None:
            raise LayerError(f"{self.type}: only one of size or scale_factor should be defined, received both",
                             "remove one of them", "scale_factor", fix={"scale_factor": None})
        if scale is not None and any(s <= 0 for s in (scale if isinstance(scale, list) else [scale])):
            raise LayerError(f"{self.type}.scale_factor: expected a number > 0, received {scale}",
                             "use a positive scale_factor such as 2", "scale_factor")
        if values.get("recompute_scale_factor") and size is not None:
            raise LayerError(f"{self.type}: recompute_scale_factor is not meaningful with an explicit size",
                             "remove recompute_scale_factor", "recompute_scale_factor",
                             fix={"recompute_scale_factor": None})
        mode = self.fixed_mode or values.get("mode", "nearest")
        if values.get("align_corners") is not None and mode not in MODE_RANK:
            raise LayerError(
                f"align_corners can only be set with the interpolating modes linear, bilinear, bicubic, "
                f"trilinear; received mode {mode} with align_corners: {values['align_corners']}",
                "remove align_corners, or use an interpolating mode", "align_corners",
                fix={"align_corners": None})

    def _per_axis(self, key: str, rank: int) -> tuple:
        value = getattr(self, key)
        if isinstance(value, list):
            if len(value) != rank:
                axes = ", ".join(AXIS_NAMES[rank])
                raise LayerError(
                    f"{self.type}.{key}: the input has {rank} spatial axes ({axes}), received {len(value)} "
                    f"values {value}", f"give one value per spatial axis ({rank}) or a single number", key)
            return tuple(value)
        return (value,) * rank

    def outputs(self, shape: Shape) -> tuple[int, ...]:
        rank = len(shape) - 1
        if self.size is not None:
            return self._per_axis("size", rank)
        return tuple(math.floor(float(n) * s) for n, s in zip(shape[1:], self._per_axis("scale_factor", rank)))

    def infer(self, shape: Shape, batch: int) -> Inference:
        mode = self.mode_()
        need = MODE_RANK.get(mode)
        if need is not None:
            if len(shape) != need + 1:
                hint = "check the layers before this one"
                alt = {v: k for k, v in MODE_RANK.items() if k != "bicubic"}.get(len(shape) - 1)
                fix = None
                if alt and not self.fixed_mode:
                    hint, fix = f"the incoming map is {len(shape) - 1}-d: use mode: {alt}", {"mode": alt}
                raise LayerError(
                    f"{self.type} mode {mode} expects input {INPUT_LAYOUT[need]} ({need + 1} dims per sample), "
                    f"received {shape_str(shape)} ({len(shape)} dims)", hint, "mode" if not self.fixed_mode else None,
                    fix=fix)
        else:
            self.expect_rank(shape, (2, 3, 4), "[C, L], [C, H, W] or [C, D, H, W]")
        out = self.outputs(shape)
        if self.size is None:
            scales = self._per_axis("scale_factor", len(out))
            for ax, n, s, o in zip(AXIS_NAMES[len(shape) - 1], shape[1:], scales, out):
                if o < 1:
                    raise LayerError(
                        f"output size too small along {ax}: expected floor(in * scale_factor) ≥ 1, "
                        f"received floor({n} * {s}) = {o}",
                        f"use scale_factor ≥ {1 / n:.4g} along {ax}, or give size instead", "scale_factor")
        return Inference((shape[0], *out), 0, 0, self._rf(shape, out, mode))

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """``size``: fixed output; ``scale_factor`` s = p/q (the float's exact value):
        ``floor(p*x / q)``, exact while torch's double product rounds like the rational one
        (denominators up to 2**16 and sizes below 2**30); other factors: no rule."""
        from fractions import Fraction

        if dim == 0:
            return same(0)
        rank = len(shape) - 1
        if self.size is not None:
            return constant(dim, self._per_axis("size", rank)[dim - 1])
        s = Fraction(float(self._per_axis("scale_factor", rank)[dim - 1]))
        if s.denominator > 1 << 16 or s > 64:
            raise SizeUnknown(f"{self.type} scale_factor {float(s)} is not a short binary fraction: torch "
                              "rounds size * scale_factor in double precision, which is not periodic in the size")
        return affine(dim, s.numerator, 0, s.denominator)

    def _rf(self, shape: Shape, out, mode: str):
        if getattr(self, "align_corners", None) or (self.fixed_mode == "bilinear"):
            return MIX  # align_corners: the sampling grid is not a multiple of the input's
        factors = []
        for n, o in zip(shape[1:], out):
            if o % n:
                return MIX
            factors.append(o // n)
        if all(f == 1 for f in factors) and mode not in TAPS:
            return KEEP
        return _upscale_rf(tuple(factors), mode)

    def explain(self, shape: Shape) -> list[str]:
        if not 2 <= len(shape) <= 4:
            return []
        rank = len(shape) - 1
        try:
            out = self.outputs(shape)
            if self.size is not None:
                return [f"{ax}: size = {o}" for ax, o in zip(AXIS_NAMES[rank], out)]
            return [f"{ax}: floor({n} * {s}) = {o}" for ax, n, s, o in
                    zip(AXIS_NAMES[rank], shape[1:], self._per_axis("scale_factor", rank), out)]
        except LayerError:
            return []


@register
class Upsample(_Resize):
    """Upsample (interpolate) ``[C, *spatial]``: per axis ``out = size`` or
    ``out = floor(in * scale_factor)``; modes nearest, linear ([C, L]), bilinear/bicubic
    ([C, H, W]), trilinear ([C, D, H, W]), area, nearest-exact."""

    mode = Arg("choice", "nearest", "Interpolation: nearest, linear (1-d), bilinear, bicubic (2-d), "
               "trilinear (3-d), area, nearest-exact.", choices=MODES)
    align_corners = Arg("bool", None, "Interpolating modes only: align the corner pixels of input "
                        "and output.", nullable=True)
    recompute_scale_factor = Arg("bool", None, "Recompute the scale from the output size "
                                 "(scale_factor only).", nullable=True)


@register
class UpsamplingNearest2d(_Resize):
    """Nearest-neighbour upsampling (``Upsample(mode='nearest')``): per axis ``out = size`` or
    ``floor(in * scale_factor)``."""
    fixed_mode = "nearest"


@register
class UpsamplingBilinear2d(_Resize):
    """Bilinear upsampling with ``align_corners=True`` over ``[C, H, W]``: per axis
    ``out = size`` or ``floor(in * scale_factor)``."""
    fixed_mode = "bilinear"


class _Shuffle(Layer):
    family = "resampling"

    def _need_3(self, shape: Shape) -> None:
        self.expect_rank(shape, (3,), "[C, H, W]",
                         "PixelShuffle/PixelUnshuffle work on 2-d maps: check the layers before this one")


@register
class PixelShuffle(_Shuffle):
    """``[C*r*r, H, W]`` -> ``[C, H*r, W*r]`` (r = upscale_factor); no parameters."""

    upscale_factor = Arg("int", doc="Factor r: channels must be divisible by r*r.", ge=1)

    def infer(self, shape: Shape, batch: int) -> Inference:
        self._need_3(shape)
        r = self.upscale_factor
        c, h, w = shape
        if c % (r * r):
            lo, hi = c // (r * r) * r * r, (c // (r * r) + 1) * r * r
            raise LayerError(
                f"PixelShuffle needs channels divisible by upscale_factor² = {r * r}: received {c} channels "
                f"({c} % {r * r} = {c % (r * r)})",
                f"make the previous layer output {hi}" + (f" or {lo}" if lo else "") + " channels, "
                "or use another upscale_factor", "upscale_factor")
        return Inference((c // (r * r), h * r, w * r), rf=_upscale_rf((r, r), "nearest"))

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels divisible by r², divided by it; H and W multiplied by r."""
        r = self.upscale_factor
        if dim == 0:
            return Rule((Case(1, 0, r * r, mod=r * r, res=0),), 0)
        return affine(dim, r)

    def explain(self, shape: Shape) -> list[str]:
        if len(shape) != 3:
            return []
        r = self.upscale_factor
        return [f"C: {shape[0]} / {r}² = {shape[0] // (r * r)}", f"H: {shape[1]} * {r} = {shape[1] * r}",
                f"W: {shape[2]} * {r} = {shape[2] * r}"]


@register
class PixelUnshuffle(_Shuffle):
    """``[C, H*r, W*r]`` -> ``[C*r*r, H, W]`` (r = downscale_factor); no parameters."""

    downscale_factor = Arg("int", doc="Factor r: height and width must be divisible by r.", ge=1)

    def infer(self, shape: Shape, batch: int) -> Inference:
        self._need_3(shape)
        r = self.downscale_factor
        c, h, w = shape
        for ax, n in (("H", h), ("W", w)):
            if n % r:
                raise LayerError(
                    f"PixelUnshuffle needs {ax} divisible by downscale_factor {r}: received {ax} = {n} "
                    f"({n} % {r} = {n % r})",
                    f"resize the input to a multiple of {r} along {ax}, or use another downscale_factor",
                    "downscale_factor")
        return Inference((c * r * r, h // r, w // r), rf=((r, r, 0), (r, r, 0)))

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels multiplied by r²; H and W must be multiples of r, divided by it."""
        r = self.downscale_factor
        if dim == 0:
            return affine(0, r * r)
        return Rule((Case(1, 0, r, mod=r, res=0),), dim)

    def explain(self, shape: Shape) -> list[str]:
        if len(shape) != 3:
            return []
        r = self.downscale_factor
        return [f"C: {shape[0]} * {r}² = {shape[0] * r * r}", f"H: {shape[1]} / {r} = {shape[1] // r}",
                f"W: {shape[2]} / {r} = {shape[2] // r}"]


@register
class ChannelShuffle(Layer):
    """Shuffle channels in ``groups`` (ShuffleNet): shape unchanged, ``C % groups == 0``."""

    family = "resampling"
    groups = Arg("int", doc="Number of groups: the channels must be divisible by it.", ge=1)

    def infer(self, shape: Shape, batch: int) -> Inference:
        self.expect_rank(shape, (2, 3, 4), "[C, L], [C, H, W] or [C, D, H, W]",
                         "ChannelShuffle needs channels and at least one spatial axis")
        c = shape[0]
        if c % self.groups:
            divisors = [g for g in range(1, c + 1) if c % g == 0]
            raise LayerError(
                f"number of channels must be divisible by groups: received {c} channels and groups "
                f"{self.groups} ({c} % {self.groups} = {c % self.groups})",
                f"use groups in {divisors}" if len(divisors) <= 8 else f"use a groups value that divides {c}",
                "groups")
        return Inference(shape)

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """Channels divisible by groups; spatial sizes pass."""
        return Rule((Case(mod=self.groups, res=0),), 0) if dim == 0 else same(dim)

    def explain(self, shape: Shape) -> list[str]:
        return [f"{shape[0]} channels in {self.groups} groups of {shape[0] // self.groups}"] if shape else []
