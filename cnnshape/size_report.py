"""What :func:`cnnshape.sizes.sizes` returns: the sets of input sizes that work, as short
unions of arithmetic progressions, per axis, with their JSON form (SPEC.md section 4)."""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from typing import Any

from .rules import BIG
from .size_algebra import State, _canon, _first, _last

RENDER_LIMIT = 1 << 20  # beyond this, the set is printed as its raw (still exact) pieces


@dataclass(frozen=True, slots=True)
class Progression:
    """``{start, start + step, ...}`` up to ``stop`` inclusive (None: unbounded)."""

    start: int
    stop: int | None
    step: int = 1

    def __contains__(self, n: int) -> bool:
        return n >= self.start and (self.stop is None or n <= self.stop) and (n - self.start) % self.step == 0

    def at_most(self, n: int) -> int | None:
        if n < self.start:
            return None
        top = n if self.stop is None else min(n, self.stop)
        return self.start + (top - self.start) // self.step * self.step

    def at_least(self, n: int) -> int | None:
        if n <= self.start:
            return self.start
        v = self.start + -(-(n - self.start) // self.step) * self.step
        return v if self.stop is None or v <= self.stop else None

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.start, "to": self.stop, "step": self.step}

    def text(self, x: str) -> str:
        a, b, s = self.start, self.stop, self.step
        if b == a:
            return f"{x} = {a}"
        if s == 1:
            return f"{x} ≥ {a}" if b is None else f"{a} ≤ {x} ≤ {b}"
        if b is None:
            if a == s:
                return f"{x} multiple of {s}"
            return f"{x} ∈ {{{a}, {a + s}, {a + 2 * s}, ...}}"
        count = (b - a) // s + 1
        if count <= 4:
            return f"{x} ∈ {{{', '.join(str(v) for v in range(a, b + 1, s))}}}"
        return f"{x} ∈ {{{a}, {a + s}, ..., {b}}}"


def _progressions(pieces) -> tuple[Progression, ...]:
    """The pieces' set as a short union of disjoint progressions, sorted by start."""
    raw = []
    for m, r, lo, hi, *_ in pieces:
        f = _first(m, r, max(lo, 1))
        if f > hi:
            continue
        raw.append((f, None if hi >= BIG else _last(m, r, hi), m))
    if not raw:
        return ()
    unb = [x for x in raw if x[1] is None]
    period = 1
    for _, _, m in unb:
        period = period * m // gcd(period, m)
    t0 = max([f for f, _, _ in raw] + [l + 1 for _, l, _ in raw if l is not None])
    end = t0 + 2 * period
    if end > RENDER_LIMIT:
        return tuple(Progression(f, l, m if l != f else 1) for f, l, m in sorted(raw))
    bits = bytearray(end)
    for f, l, m in raw:
        top = end - 1 if l is None else l
        bits[f:top + 1:m] = b"\x01" * ((top - f) // m + 1)
    covered = bytearray(t0)
    out = _periodic(bits, t0, period, covered) if unb else []
    out += _finite([n for n in range(1, t0) if bits[n] and not covered[n]])
    return tuple(sorted(out, key=lambda g: g.start))


def _periodic(bits: bytearray, t0: int, period: int, covered: bytearray) -> list[Progression]:
    """The unbounded progressions of the set ``bits`` (periodic with ``period`` from ``t0``
    on), each extended down as far as it goes; the sizes below ``t0`` they cover are marked
    in ``covered``."""
    p = next(d for d in range(1, period + 1)
             if period % d == 0 and bits[t0:t0 + 2 * period - d] == bits[t0 + d:t0 + 2 * period])
    out = []
    for n0 in range(t0, t0 + p):
        if not bits[n0]:
            continue
        start = n0
        while start - p >= 1 and bits[start - p]:
            start -= p
        out.append(Progression(start, None, p))
        if start < t0:
            covered[start:t0:p] = b"\x01" * len(range(start, t0, p))
    return out


def _finite(pts: list[int]) -> list[Progression]:
    """Sorted sizes as runs of equal steps (a run of two with a step > 1 stays two points)."""
    out = []
    i = 0
    while i < len(pts):
        j = i
        if i + 1 < len(pts):
            step = pts[i + 1] - pts[i]
            j = i + 1
            while j + 1 < len(pts) and pts[j + 1] - pts[j] == step:
                j += 1
            if j - i + 1 == 2 and step != 1:
                j = i
        if j == i:
            out.append(Progression(pts[i], pts[i], 1))
            i += 1
        else:
            out.append(Progression(pts[i], pts[j], pts[i + 1] - pts[i]))
            i = j + 1
    return out


def members(progressions, upto: int) -> set[int]:
    """Every size of the progressions up to ``upto`` (for checks by enumeration)."""
    out = set()
    for g in progressions:
        top = upto if g.stop is None else min(g.stop, upto)
        out.update(range(g.start, top + 1, g.step))
    return out


def nearest(valid, n: int) -> tuple[int, ...]:
    """The closest sizes of the progressions ``valid`` at or below and at or above ``n``."""
    below = [v for g in valid if (v := g.at_most(n)) is not None]
    above = [v for g in valid if (v := g.at_least(n)) is not None]
    out = sorted({max(below)} if below else set()) + sorted({min(above)} if above else set())
    return tuple(sorted(set(out)))


def _fmt_map(a: int, b: int, c: int, x: str) -> str:
    if a == 0:
        return str(b // c)
    ax = x if a == 1 else f"{a}*{x}"
    if c == 1:
        return ax if b == 0 else f"{ax} + {b}" if b > 0 else f"{ax} - {-b}"
    q, rr = (b // c, 0) if b % c == 0 else (b // c + 1, b % c - c)
    inner = ax if rr == 0 else f"({ax} - {-rr})"
    head = f"floor({inner} / {c})"
    return head if q == 0 else f"{head} + {q}" if q > 0 else f"{head} - {-q}"


def _output_text(state: State, dim: int, rank: int, x: str) -> str | None:
    if state.dim != dim or len(state.shape) != rank or state.merged or not state.pieces:
        return None
    maps = {p.map for p in state.pieces}
    if all(a == 0 for a, _, _ in maps):
        return None
    if len(maps) == 1:
        return _fmt_map(*maps.pop(), x)
    # one floor form for all pieces, if their b ranges meet
    acs = {(a, c) for a, _, c in maps}
    if len(acs) == 1:
        a, c = acs.pop()
        lo_b = max(p.b for p in state.pieces)
        hi_b = min(p.b + gcd(a * p.m, c) - 1 for p in state.pieces)
        if lo_b <= hi_b:
            return _fmt_map(*_canon(1, 0, a, lo_b, c), x)
    parts = sorted(state.pieces, key=lambda p: (p.m, p.r, p.lo))
    text = "; ".join(f"{x} ≡ {p.r} (mod {p.m}): {_fmt_map(*p.map, x)}" if p.m > 1 else _fmt_map(*p.map, x)
                     for p in parts[:4])
    return text + ("; ..." if len(parts) > 4 else "")


@dataclass(frozen=True)
class AxisSizes:
    """The sizes of one input axis (the others as declared) for which the model runs."""

    axis: str
    dim: int
    declared: int
    valid: tuple[Progression, ...] | None
    no_drop: tuple[Progression, ...] | None = None
    output: str | None = None
    #: why the set is unknown (a layer without a size rule), else None
    unknown: str | None = None
    #: the axis meets the other axes in a fixed-size consumer (Flatten + Linear)
    coupled: str | None = None
    #: the size along this axis of the last feature map before it is fixed (adaptive
    #: pooling) or flattened, as a formula; None when the output keeps the axis
    feature_map: str | None = None

    def __contains__(self, n: int) -> bool:
        return self.valid is not None and any(n in g for g in self.valid)

    def nearest(self, n: int) -> tuple[int, ...]:
        """The closest valid sizes at or below and at or above ``n`` (one value when ``n``
        works; empty when nothing works)."""
        if self.valid is None:
            return ()
        if n in self:
            return (n,)
        return nearest(self.valid, n)

    @property
    def summary(self) -> str:
        """One line for people, e.g. ``H ≥ 32`` or ``H multiple of 32``."""
        if self.valid is None:
            return f"{self.axis}: unknown ({self.unknown})"
        if not self.valid:
            return f"no size of {self.axis} works"
        text = " or ".join(g.text(self.axis) for g in self.valid[:4])
        if len(self.valid) > 4:
            text += f" or ... ({len(self.valid)} ranges)"
        return text

    def to_dict(self, near: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "axis": self.axis, "dim": self.dim,
            "valid": None if self.valid is None else [g.to_dict() for g in self.valid],
            "output": self.output, "declared": self.declared, "summary": self.summary,
            "no_drop": None if self.no_drop is None else [g.to_dict() for g in self.no_drop],
        }
        if self.unknown:
            out["unknown"] = self.unknown
        if self.coupled:
            out["coupled"] = self.coupled
        if self.feature_map:
            out["feature_map"] = self.feature_map
        if near is not None:
            got = self.nearest(near)
            out["near"] = {"n": near, "below": got[0] if got and got[0] <= near else None,
                           "above": got[-1] if got and got[-1] >= near else None}
        return out


@dataclass(frozen=True)
class SizesReport:
    """``sizes(spec)``: per spatial axis, the input sizes that work (SPEC.md section 4)."""

    ok: bool
    input: tuple[int, ...]
    axes: tuple[AxisSizes, ...]
    errors: tuple = ()
    #: the axes interact (a fixed-size consumer after a Flatten): a note, else None
    coupled: str | None = None
    #: sizes n for which the all-axes-equal input (H = W = n) works, when coupled
    square: tuple[Progression, ...] | None = None

    def axis(self, key: int | str) -> AxisSizes:
        for a in self.axes:
            if key in (a.dim, a.axis):
                return a
        raise KeyError(key)

    def nearest(self, dim: int | str, n: int) -> tuple[int, ...]:
        """Closest working sizes of axis ``dim`` (index in ``input`` or name) to ``n``."""
        return self.axis(dim).nearest(n)

    @property
    def summary(self) -> str:
        if not self.ok:
            return "the spec does not analyse at its declared input"
        if not self.axes:
            return "no spatial axis (a feature-vector input)"
        return "; ".join(a.summary for a in self.axes)

    def to_dict(self, near: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "input": list(self.input),
                               "axes": [a.to_dict(near) for a in self.axes]}
        if self.coupled:
            out["coupled"] = self.coupled
            out["square"] = None if self.square is None else [g.to_dict() for g in self.square]
        if not self.ok:
            out["errors"] = [d.to_dict() for d in self.errors]
        return out
