"""Which input sizes work? The exact set, per spatial axis, derived analytically (no torch).

For one spatial axis of the input varied alone (channels and the other axes as declared),
every layer maps the incoming size ``x`` along the tracked dim to
``floor((a*x + b) / c)`` — possibly a different such map per residue class of ``x`` (a
ceil-mode pooling, or the sizes at which a stride drops pixels) — under input constraints
(``x >= lo``, ``x <= hi``) and always ``output >= 1`` (no zero-size tensor). Each layer
class owns that piece (:meth:`Layer.size_rule`, built with the helpers here); each block
class owns its merge (:meth:`Block.size_flow`: a ``Residual`` keeps the sizes at which body
and shortcut agree, a ``Concat`` those at which all branches agree).

The engine keeps the set of input sizes ``n`` still possible as disjoint *pieces*: a
residue class ``n ≡ r (mod m)`` cut to ``lo <= n <= hi``, carrying the current size
``floor((a*n + b) / c)``. Composing with a layer is integer arithmetic on (a, b, c)
(``floor((floor(y) + B)/C) = floor((y + B)/C)``); where a layer multiplies, or needs the
residue of its input, a piece is split into classes on which its map is exactly affine.
Merges intersect pieces (Chinese remainder theorem) and solve ``f(n) = g(n)``, which is
linear on such classes. Nothing is evaluated size by size, except rendering the final set
as a short union of arithmetic progressions.

A layer type without a size rule makes the axis *unknown* (reported with the layer),
never a guessed answer. ``sizes(spec_or_report)`` returns a frozen :class:`SizesReport`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import gcd
from typing import Any, NamedTuple

BIG = 1 << 62  # "no upper bound"
MAX_PIECES = 1 << 14  # beyond this many residue classes the axis is reported unknown (never a hang)
RENDER_LIMIT = 1 << 20  # beyond this, the set is printed as its raw (still exact) pieces


# --------------------------------------------------------------------------- layer rules
@dataclass(frozen=True, slots=True)
class Case:
    """For inputs ``x ≡ res (mod mod)`` with ``lo <= x <= hi``: ``out = floor((a*x + b) / c)``.

    ``drops``: at such sizes the layer leaves real input pixels unused (a stride or pool
    that does not tile the input).
    """

    a: int = 1
    b: int = 0
    c: int = 1
    lo: int = 1
    hi: int = BIG
    mod: int = 1
    res: int = 0
    drops: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    """How a layer maps the size along one dim: ``cases`` (one per residue class of the
    input size, or one for all) and ``dim``, the index of that size in the output."""

    cases: tuple[Case, ...]
    dim: int
    #: the dim was merged with other spatial dims (Flatten): a fixed consumer after it
    #: couples the axes
    merges: bool = False
    #: the rule when the spec is re-analysed at another input (``check --input``), where
    #: inferred arguments (in_features, in_channels, ...) adapt; None: the same rule
    reinferred: Rule | None = None


@lru_cache(maxsize=4096)
def same(dim: int) -> Rule:
    """The size passes through unchanged (pointwise layers)."""
    return Rule((Case(),), dim)


@lru_cache(maxsize=4096)
def fixed(dim: int, value: int, out: int | None = None, inferred: bool = False) -> Rule:
    """The size must equal ``value`` (a parameter fixed at the declared input); the
    output size is ``out`` (default: ``value``). ``inferred``: the parameter was not
    written but inferred, so a re-analysis at another input adapts it."""
    free = None
    if inferred:
        free = same(dim) if out is None else constant(dim, out)
    return Rule((Case(0, value if out is None else out, 1, value, value),), dim, reinferred=free)


@lru_cache(maxsize=4096)
def constant(dim: int, value: int) -> Rule:
    """Any size gives ``value`` (adaptive pooling)."""
    return Rule((Case(0, value, 1),), dim)


@lru_cache(maxsize=4096)
def affine(dim: int, a: int, b: int = 0, c: int = 1, lo: int = 1) -> Rule:
    """``out = floor((a*x + b) / c)`` for every ``x >= lo``."""
    return Rule((Case(a, b, c, lo),), dim)


@lru_cache(maxsize=4096)
def window(dim: int, k_eff: int, stride: int, pad_left: int, pad_right: int, *, ceil_mode: bool = False,
           min_in: int = 1, drops: bool = True) -> Rule:
    """A sliding window (convolution or pooling) as torch sizes it.

    floor: ``out = floor((x + pl + pr - k_eff) / stride) + 1``; ``ceil_mode`` (pooling,
    ``pl == pr``): ceil, then the last window is dropped if it would start in the right
    padding. ``drops`` marks the residues at which real pixels past the last window are
    left unused (only where ``k_eff >= stride``, as ``cnnshape check`` warns).
    """
    s, pl, pr = stride, pad_left, pad_right
    if ceil_mode:
        cases = []
        for rho in range(s):
            kappa = (rho + pl + pr - k_eff + s - 1) // s
            b = pl + pr - k_eff + s - 1 if kappa * s >= rho + pl else pl + pr - k_eff + 2 * s - 1
            cases.append(Case(1, b, s, min_in, BIG, s, rho))
        return Rule(tuple(cases), dim)
    b = pl + pr - k_eff + s
    if s == 1 or not drops or k_eff < s:
        return Rule((Case(1, b, s, min_in),), dim)
    return Rule(tuple(Case(1, b, s, min_in, BIG, s, rho, (rho + pl + pr - k_eff) % s > pr) for rho in range(s)), dim)


# --------------------------------------------------------------------------- arithmetic
def _first(m: int, r: int, lo: int) -> int:
    return lo + (r - lo) % m


def _last(m: int, r: int, hi: int) -> int:
    return hi - (hi - r) % m


def _canon(m: int, r: int, a: int, b: int, c: int) -> tuple[int, int, int]:
    """A canonical (a, b, c) for ``floor((a*n + b)/c)`` on ``n ≡ r (mod m)``."""
    if a == 0:
        return 0, b // c, 1
    g = gcd(a * m, c)
    b -= (a * r + b) % g
    h = gcd(gcd(a, b), c)
    if h > 1:
        a, b, c = a // h, b // h, c // h
    return a, b, c


def _lower(a: int, b: int, c: int, low: int) -> int | None:
    """Smallest n with floor((a n + b)/c) >= low (None: never when a == 0; -BIG: always)."""
    if a == 0:
        return -BIG if b // c >= low else None
    return -((b - low * c) // a)


def _upper(a: int, b: int, c: int, high: int) -> int | None:
    """Largest n with floor((a n + b)/c) <= high."""
    if high >= BIG:
        return BIG
    if a == 0:
        return BIG if b // c <= high else None
    return ((high + 1) * c - 1 - b) // a


def _crt(m1: int, r1: int, m2: int, r2: int) -> tuple[int, int] | None:
    g = gcd(m1, m2)
    if (r2 - r1) % g:
        return None
    l = m1 // g * m2
    k = ((r2 - r1) // g * pow(m1 // g, -1, m2 // g)) % (m2 // g) if m2 // g > 1 else 0
    return l, (r1 + m1 * k) % l


# A piece: (m, r, lo, hi, a, b, c, clean) -- n ≡ r (mod m), lo <= n <= hi, size floor((a n + b)/c)
Piece = tuple


def _make(m, r, lo, hi, a, b, c, clean) -> Piece | None:
    first = _first(m, r, max(lo, 1))
    if first > hi:
        return None
    # canonical bounds (the loosest giving the same set), so that classes can merge
    lo = max(1, first - m + 1)
    if hi < BIG:
        hi = _last(m, r, hi) + m - 1
    a, b, c = _canon(m, r, a, b, c)
    return (m, r % m, lo, hi, a, b, c, clean)


def _value(p: Piece, n: int) -> int:
    return (p[4] * n + p[5]) // p[6]


def _split(p: Piece, factor: int) -> list[Piece]:
    """``p`` as ``factor`` classes modulo ``m * factor``."""
    if factor == 1:
        return [p]
    if factor > MAX_PIECES:
        raise SizeUnknown(f"the size map needs more than {MAX_PIECES} residue classes (modulus {p[0] * factor})")
    m, r, lo, hi, a, b, c, clean = p
    out = []
    for j in range(factor):
        q = _make(m * factor, r + m * j, lo, hi, a, b, c, clean)
        if q is not None:
            out.append(q)
    return out


def _exact_factor(p: Piece) -> int:
    """How many subclasses make ``p``'s size exactly affine (c | a*n + b)."""
    m, a, c = p[0], p[4], p[6]
    if c == 1 or a == 0:
        return 1
    return c // gcd(a * m, c)


def _apply_case(p: Piece, case: Case) -> list[Piece]:
    """Compose piece ``p`` (its size is the input x of the case) with ``case``."""
    m, r, lo, hi, a, b, c, clean = p
    lo_n = _lower(a, b, c, case.lo)
    hi_n = _upper(a, b, c, case.hi)
    if lo_n is None or hi_n is None:
        return []
    lo, hi = max(lo, lo_n), min(hi, hi_n)
    if hi < lo:
        return []
    A, B, C = case.a, case.b, case.c
    if A > 1 and not (c == 1 or ((a * m) % c == 0 and (a * r + b) % c == 0)):
        pieces = _split((m, r, lo, hi, a, b, c, clean), _exact_factor(p))
        return [q for x in pieces for q in _apply_case(x, case)]
    if A == 0:
        na, nb, nc = 0, B, C
    else:
        na, nb, nc = A * a, A * b + B * c, c * C
    lo1 = _lower(na, nb, nc, 1)  # no zero-size output
    if lo1 is None:
        return []
    q = _make(m, r, max(lo, lo1), hi, na, nb, nc, clean and not case.drops)
    return [] if q is None else [q]


def _is_identity(case: Case) -> bool:
    return (case.a == 1 and case.b == 0 and case.c == 1 and case.lo <= 1 and case.hi >= BIG and case.mod == 1
            and not case.drops)


def _apply_rule(pieces: list[Piece], rule: Rule) -> list[Piece]:
    cases = rule.cases
    if len(cases) == 1 and _is_identity(cases[0]):
        return pieces
    out: list[Piece] = []
    if len(cases) == 1 and cases[0].mod == 1:
        for p in pieces:
            out += _apply_case(p, cases[0])
        return _merge(out)
    M = cases[0].mod
    by_res = {cs.res: cs for cs in cases}
    one_map = len(cases) == M and len({(cs.a, cs.b, cs.c, cs.lo, cs.hi) for cs in cases}) == 1
    for p in pieces:
        if one_map and not p[7]:  # only the drop flag differs and p already drops
            out += _apply_case(p, cases[0])
            continue
        m, a, c = p[0], p[4], p[6]
        if a == 0:
            parts = [p]
        else:
            t1 = _exact_factor(p)
            delta = a * m * t1 // c  # size step per t1 steps of the class
            parts = _split(p, t1 * (M // gcd(delta, M)))
        for q in parts:
            case = by_res.get(_value(q, q[1]) % M)
            if case is not None:  # residues without a case do not run
                out += _apply_case(q, case)
    return _merge(out)


def _merge(pieces: list[Piece]) -> list[Piece]:
    """Join residue classes that carry the same size map (keeps the piece count small)."""
    if len(pieces) < 2:
        return pieces
    changed = True
    while changed:
        changed = False
        groups: dict[tuple, dict[int, Piece]] = {}
        for p in pieces:
            groups.setdefault((p[0], p[2], p[3], p[4], p[6], p[7]), {})[p[1]] = p
        out = []
        for (m, lo, hi, a, c, clean), byr in groups.items():
            if len(byr) < 2 or m == 1:
                out += byr.values()
                continue
            for q in _primes(m):
                sub = m // q
                done = set()
                for r0 in sorted(byr):
                    rho = r0 % sub
                    if rho in done:
                        continue
                    members = [byr.get(rho + j * sub) for j in range(q)]
                    if any(x is None for x in members):
                        continue
                    bs = [x[5] for x in members]
                    gs = [gcd(a * m, c) if a else 1 for _ in members]
                    B = max(bs)
                    if a and B > min(b + g - 1 for b, g in zip(bs, gs)):
                        continue
                    if not a and len(set(bs)) != 1:
                        continue
                    done.add(rho)
                    for x in members:
                        del byr[x[1]]
                    new = _make(sub, rho, lo, hi, a, B, c, clean)
                    if new is not None:
                        out.append(new)
                    changed = True
                if changed:
                    break
            out += byr.values()
        pieces = out
    return pieces


def _primes(m: int) -> list[int]:
    out, d = [], 2
    while d * d <= m:
        if m % d == 0:
            out.append(d)
            while m % d == 0:
                m //= d
        d += 1
    if m > 1:
        out.append(m)
    return out


def _intersect(p: Piece, q: Piece) -> tuple | None:
    cls = _crt(p[0], p[1], q[0], q[1])
    if cls is None:
        return None
    lo, hi = max(p[2], q[2]), min(p[3], q[3])
    if hi < lo or _first(cls[0], cls[1], max(lo, 1)) > hi:
        return None
    return cls[0], cls[1], lo, hi, p[7] and q[7]


def _equal_on(m, r, lo, hi, clean, f, g) -> list[Piece]:
    """Pieces of {n ≡ r (mod m), lo <= n <= hi} where size maps f == g (f carried)."""
    fa, fb, fc = _canon(m, r, *f)
    ga, gb, gc = _canon(m, r, *g)
    if (fa, fb, fc) == (ga, gb, gc):
        q = _make(m, r, lo, hi, fa, fb, fc, clean)
        return [] if q is None else [q]
    tf = 1 if fc == 1 or fa == 0 else fc // gcd(fa * m, fc)
    tg = 1 if gc == 1 or ga == 0 else gc // gcd(ga * m, gc)
    t = tf * tg // gcd(tf, tg)
    out = []
    for j in range(t):
        mm, rr = m * t, (r + m * j) % (m * t)
        if _first(mm, rr, max(lo, 1)) > hi:
            continue
        # exact on this class: (fa n + fb)/fc == (ga n + gb)/gc  <=>  k n = e
        a1, b1, c1 = _canon(mm, rr, fa, fb, fc)
        a2, b2, c2 = _canon(mm, rr, ga, gb, gc)
        k = a1 * c2 - a2 * c1
        e = b2 * c1 - b1 * c2
        if k == 0:
            if e == 0:
                q = _make(mm, rr, lo, hi, fa, fb, fc, clean)
                if q is not None:
                    out.append(q)
            continue
        if e % k:
            continue
        n0 = e // k
        if lo <= n0 <= hi and n0 % mm == rr:
            q = _make(mm, rr, n0, n0, fa, fb, fc, clean)
            if q is not None:
                out.append(q)
    return out


# --------------------------------------------------------------------------- the walk
class SizeUnknown(Exception):
    """No exact answer for this axis (a layer without a size rule, an unsupported merge)."""


class State(NamedTuple):
    """The sizes still possible and the tracked size, at one point of the network.

    ``pieces``: disjoint (m, r, lo, hi, a, b, c, clean) — input sizes n ≡ r (mod m),
    lo <= n <= hi, where the tracked size is floor((a*n + b)/c) (clean: no pixel dropped
    so far); ``shape``: the declared shape there; ``dim``: where the tracked size sits.
    """

    pieces: tuple
    dim: int
    shape: tuple
    #: the tracked dim was merged with other spatial dims (by a Flatten)
    merged: bool = False

    def at(self, d: int, n: int) -> int | None:
        """Size of dim ``d`` for input size ``n`` (None: n not possible)."""
        if d != self.dim:
            return self.shape[d] if _find(self.pieces, n) is not None else None
        p = _find(self.pieces, n)
        return None if p is None else _value(p, n)

    def map_of(self, d: int) -> tuple | None:
        return None if d == self.dim else (0, self.shape[d], 1)


def _base_rule():
    from .layers.base import Layer

    return Layer.size_rule


_BASE_RULE = None


def _find(pieces, n: int) -> Piece | None:
    for p in pieces:
        if p[2] <= n <= p[3] and n % p[0] == p[1]:
            return p
    return None


class Sizer:
    """Walks an analysed report's rows for one tracked axis (blocks call back ``rows`` and
    ``equal``)."""

    def __init__(self, declared: int, defer_coupled: bool = False, batch: int = 1, reinfer: bool = False):
        global _BASE_RULE
        if _BASE_RULE is None:
            _BASE_RULE = _base_rule()
        self.declared = declared
        self.batch = batch
        self.reinfer = reinfer
        self.defer_coupled = defer_coupled
        #: (state before, K) of fixed consumers on a dim merged with other spatial dims
        self.coupled: list[tuple[State, int, str]] = []

    # rows ------------------------------------------------------------------------
    def rows(self, rows, state: State) -> State:
        for row in rows:
            if not state.pieces:
                return state
            state = self.row(row, state)
        return state

    def row(self, row, state: State) -> State:
        layer = row.layer
        if layer is not None and layer.pointwise and type(layer).size_rule is _BASE_RULE:
            return state if state.shape == row.output else State(state.pieces, state.dim, row.output, state.merged)
        if layer is None:  # a nested nn.Sequential (branch, multi-layer Repeat copy)
            out = self.rows(row.children, state)
        elif layer.is_block:
            flow = getattr(layer, "size_flow", None)
            out = flow(row, state, self) if flow is not None else None
            if out is None:
                raise SizeUnknown(f"the {layer.type} block '{row.path or row.name}' has no size rule")
        else:
            try:
                rule = layer.size_rule(tuple(row.input), state.dim, self.batch)
            except SizeUnknown as exc:
                raise SizeUnknown(f"layer '{row.path or row.name}' ({layer.type}): {exc}") from None
            if rule is None:
                raise SizeUnknown(f"layer '{row.path or row.name}' ({layer.type}) has no size rule")
            if self.reinfer and rule.reinferred is not None:
                rule = rule.reinferred
            out = self.apply(rule, state, row)
        if out.shape != tuple(row.output):
            out = State(out.pieces, out.dim, tuple(row.output), out.merged)
        return out

    def apply(self, rule: Rule, state: State, row=None) -> State:
        pieces = list(state.pieces)
        cs = rule.cases
        is_fixed = len(cs) == 1 and cs[0].lo == cs[0].hi
        if state.merged and is_fixed and any(p[4] != 0 for p in pieces):
            where = f"{row.path or row.name} ({row.layer.type})" if row is not None else "a layer"
            self.coupled.append((state, cs[0].lo, where))
            if self.defer_coupled:  # assume it holds (the square analysis checks it)
                pieces = [p[:4] + (0, cs[0].lo, 1) + p[7:] for p in pieces]
        out = _apply_rule(pieces, rule)
        if len(out) > MAX_PIECES:
            raise SizeUnknown(f"more than {MAX_PIECES} residue classes of input sizes")
        merged = (state.merged or rule.merges) and not is_fixed and any(p[4] != 0 for p in out)
        return State(tuple(out), rule.dim, state.shape, merged)

    # merges ----------------------------------------------------------------------
    def equal(self, states: list[State], dims=None) -> State:
        """Sizes at which every state's dims (``dims``: indices, default all) agree; the
        first state's map is kept."""
        first = states[0]
        dims = range(len(first.shape)) if dims is None else dims
        cur = first
        for other in states[1:]:
            if len(other.shape) != len(cur.shape):
                raise SizeUnknown("a merge of tensors of different ranks")
            if other.dim == cur.dim and other.pieces == cur.pieces:  # the same sizes: nothing to cut
                cur = State(cur.pieces, cur.dim, cur.shape, cur.merged or other.merged)
                continue
            pieces = []
            for p in cur.pieces:
                for q in other.pieces:
                    cls = _intersect(p, q)
                    if cls is None:
                        continue
                    m, r, lo, hi, clean = cls
                    parts = [(m, r, lo, hi, clean, p[4:7])]
                    for d in dims:
                        f = p[4:7] if d == cur.dim else (0, cur.shape[d], 1)
                        g = q[4:7] if d == other.dim else (0, other.shape[d], 1)
                        if d != cur.dim and d != other.dim:
                            continue
                        nxt = []
                        for (m1, r1, lo1, hi1, cl1, keep) in parts:
                            for x in _equal_on(m1, r1, lo1, hi1, cl1, f, g):
                                nxt.append((x[0], x[1], x[2], x[3], x[7], keep))
                        parts = nxt
                    for (m1, r1, lo1, hi1, cl1, keep) in parts:
                        x = _make(m1, r1, lo1, hi1, *keep, cl1)
                        if x is not None:
                            pieces.append(x)
            cur = State(tuple(_merge(pieces)), cur.dim, cur.shape, cur.merged or other.merged)
        return cur


    def equal_or_one(self, x: State, g: State) -> State:
        """Sizes at which the tracked size of ``g`` is 1 or equals that of ``x`` (a gate that
        scales ``x``: one value per channel, or a full map); ``x``'s map is kept."""
        pieces = []
        for p in x.pieces:
            for q in g.pieces:
                cls = _intersect(p, q)
                if cls is None:
                    continue
                m, r, lo, hi, clean = cls
                up = _upper(*_canon(m, r, *q[4:7]), 1)  # g == 1 exactly for n <= up (g >= 1)
                keep = p[4:7]
                if up is not None and up >= lo:
                    pieces.append(_make(m, r, lo, min(hi, up), *keep, clean))
                if up is not None and up >= hi:
                    continue
                start = lo if up is None else max(lo, up + 1)
                for e in _equal_on(m, r, start, hi, clean, p[4:7], q[4:7]):
                    pieces.append(_make(e[0], e[1], max(e[2], start), e[3], *keep, clean))
        out = _merge([z for z in pieces if z is not None])
        return State(tuple(out), x.dim, x.shape, x.merged or g.merged)


# --------------------------------------------------------------------------- results
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
    out = []
    covered = bytearray(t0)
    if unb:
        p = next(d for d in range(1, period + 1)
                 if period % d == 0 and bits[t0:t0 + 2 * period - d] == bits[t0 + d:t0 + 2 * period])
        for n0 in range(t0, t0 + p):
            if not bits[n0]:
                continue
            start = n0
            while start - p >= 1 and bits[start - p]:
                start -= p
            out.append(Progression(start, None, p))
            if start < t0:
                covered[start:t0:p] = b"\x01" * len(range(start, t0, p))
    pts = [n for n in range(1, t0) if bits[n] and not covered[n]]
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
    return tuple(sorted(out, key=lambda g: g.start))


def _nearest(valid, n: int) -> tuple[int, ...]:
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
    maps = {p[4:7] for p in state.pieces}
    if all(mp[0] == 0 for mp in maps):
        return None
    if len(maps) == 1:
        return _fmt_map(*maps.pop(), x)
    # one floor form for all pieces, if their b ranges meet
    acs = {(mp[0], mp[2]) for mp in maps}
    if len(acs) == 1:
        a, c = acs.pop()
        lo_b = max(p[5] for p in state.pieces)
        hi_b = min(p[5] + gcd(a * p[0], c) - 1 for p in state.pieces)
        if lo_b <= hi_b:
            return _fmt_map(*_canon(1, 0, a, lo_b, c), x)
    parts = sorted(state.pieces, key=lambda p: (p[0], p[1], p[2]))
    text = "; ".join(f"{x} ≡ {p[1]} (mod {p[0]}): {_fmt_map(*p[4:7], x)}" if p[0] > 1 else _fmt_map(*p[4:7], x)
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
        return _nearest(self.valid, n)

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


def _run(report, dim: int, defer: bool = False, reinfer: bool = False) -> tuple[State, Sizer]:
    spec = report.spec
    n0 = spec.input[dim]
    sizer = Sizer(n0, defer, spec.batch, reinfer)
    state = State(((1, 0, 1, BIG, 1, 0, 1, True),), dim, tuple(spec.input))
    sizer.last_map = None
    for row in report.layers:
        if not state.pieces:
            break
        before = state
        state = sizer.row(row, state)
        if state.dim != dim or state.merged or all(p[4] == 0 for p in state.pieces):
            if sizer.last_map is None and before.pieces and before.dim == dim:
                sizer.last_map = before
        if not defer and state is not before and state.pieces:
            got = state.at(state.dim, n0)
            if got != row.output[state.dim]:
                raise SizeUnknown(f"internal: the size rules disagree with the shape rules at "
                                  f"'{row.path or row.name}' ({row.type}) for the declared input "
                                  f"(sizes gives {got}, check gives {row.output[state.dim]})")
    return state, sizer


def axis_sizes(report, dim: int, reinfer: bool = False) -> tuple[AxisSizes, list]:
    from .layers.base import AXIS_NAMES

    spec = report.spec
    rank = len(spec.input) - 1
    name = AXIS_NAMES[rank][dim - 1]
    try:
        state, sizer = _run(report, dim, reinfer=reinfer)
    except SizeUnknown as exc:
        return AxisSizes(name, dim, spec.input[dim], None, None, None, str(exc)), []
    valid = _progressions(state.pieces)
    clean = _progressions([p for p in state.pieces if p[7]])
    coupled = None
    if sizer.coupled:
        coupled = (f"{sizer.coupled[0][2]} fixes the flattened length, which {name} shares with the "
                   "other spatial axes: this set holds with the other axes as declared")
    last = sizer.last_map
    feature = None if last is None else _output_text(last, dim, len(spec.input), name)
    return AxisSizes(name, dim, spec.input[dim], valid, clean, _output_text(state, dim, len(spec.input), name),
                     None, coupled, feature), sizer.coupled


def _square(report, dims, reinfer: bool = False) -> tuple[Progression, ...] | None:
    """All spatial axes equal to n: separable constraints per axis, and the coupled
    consumer's product condition (each factor is nondecreasing in n)."""
    sets, recs = [], []
    for d in dims:
        try:
            state, sizer = _run(report, d, defer=True, reinfer=reinfer)
        except SizeUnknown:
            return None
        if len(sizer.coupled) != 1:
            return None
        sets.append(state.pieces)
        recs.append(sizer.coupled[0])
    k = recs[0][1]
    target = k ** len(dims)
    out = []
    for n in range(1, 1 << 16):
        if any(_find(s, n) is None for s in sets):
            if any(all(p[3] < n for p in s) for s in sets):
                break
            continue
        prod = 1
        for st_, _, _ in recs:
            prod *= st_.at(st_.dim, n)
        if prod == target:
            out.append(n)
        elif prod > target:
            break
    else:
        return None
    return _progressions([(1, 0, n, n, 0, 0, 1, True) for n in out])


def sizes(obj, *, input=None, reinfer: bool = False) -> SizesReport:
    """The input sizes that work, per spatial axis: ``obj`` is a Report, a Spec, a path,
    YAML text or a dict (loaded and analysed). Never imports torch.

    By default: the model compiled at the declared input (inferred in_features etc. fixed
    there). ``reinfer=True``: the spec re-analysed at each size (what ``cnnshape check
    --input`` accepts: inferred arguments adapt, written ones stay)."""
    from .analysis import Report, analyze, check
    from .spec import Spec

    if isinstance(obj, Report):
        report = obj
    elif isinstance(obj, Spec):
        report = analyze(obj)
    else:
        report = check(obj, input=input)
    spec = report.spec
    if not report.ok:
        return SizesReport(False, tuple(spec.input), (), tuple(report.errors))
    rank = len(spec.input) - 1
    axes, coupled_any = [], []
    for d in range(1, rank + 1):
        ax, coupled = axis_sizes(report, d, reinfer)
        axes.append(ax)
        coupled_any.append(bool(coupled))
    note, square = None, None
    if rank > 1 and any(coupled_any):
        names = ", ".join(a.axis for a in axes)
        note = (f"{axes[coupled_any.index(True)].coupled.split(' fixes')[0]} fixes the flattened length: "
                f"{names} interact. Each axis's set assumes the other axes as declared; "
                f"'square' is the set of n for an input with {' = '.join(a.axis for a in axes)} = n")
        square = _square(report, range(1, rank + 1), reinfer)
    return SizesReport(True, tuple(spec.input), tuple(axes), (), note, square)
