"""The arithmetic of input sizes: sets of sizes as residue classes carrying a size map.

The engine of :mod:`cnnshape.sizes`. It keeps the set of input sizes ``n`` still possible
as disjoint :class:`Piece` s: a residue class ``n ≡ r (mod m)`` cut to ``lo <= n <= hi``,
carrying the current size ``floor((a*n + b) / c)``. Composing with a layer's
:class:`~cnnshape.rules.Rule` is integer arithmetic on (a, b, c)
(``floor((floor(y) + B)/C) = floor((y + B)/C)``); where a layer multiplies, or needs the
residue of its input, a piece is split into classes on which its map is exactly affine.
Merges intersect pieces (Chinese remainder theorem) and solve ``f(n) = g(n)``, which is
linear on such classes. Pure integers: no layer, no analysis, no torch.
"""

from __future__ import annotations

from math import gcd
from typing import NamedTuple

from .rules import BIG, Case, Rule, SizeUnknown

MAX_PIECES = 1 << 14  # beyond this many residue classes the axis is reported unknown (never a hang)


class Piece(NamedTuple):
    """Input sizes ``n ≡ r (mod m)``, ``lo <= n <= hi``, where the tracked size is
    ``floor((a*n + b) / c)``; ``clean``: no input pixel was dropped so far."""

    m: int
    r: int
    lo: int
    hi: int
    a: int
    b: int
    c: int
    clean: bool

    @property
    def map(self) -> tuple[int, int, int]:
        """The size map ``(a, b, c)``."""
        return self.a, self.b, self.c


class Span(NamedTuple):
    """A residue class cut to bounds (the meet of two pieces, before a size map is chosen)."""

    m: int
    r: int
    lo: int
    hi: int
    clean: bool


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


def _make(m, r, lo, hi, a, b, c, clean) -> Piece | None:
    first = _first(m, r, max(lo, 1))
    if first > hi:
        return None
    # canonical bounds (the loosest giving the same set), so that classes can merge
    lo = max(1, first - m + 1)
    if hi < BIG:
        hi = _last(m, r, hi) + m - 1
    a, b, c = _canon(m, r, a, b, c)
    return Piece(m, r % m, lo, hi, a, b, c, clean)


def _value(p: Piece, n: int) -> int:
    return (p.a * n + p.b) // p.c


def _split(p: Piece, factor: int) -> list[Piece]:
    """``p`` as ``factor`` classes modulo ``m * factor``."""
    if factor == 1:
        return [p]
    if factor > MAX_PIECES:
        raise SizeUnknown(f"the size map needs more than {MAX_PIECES} residue classes (modulus {p.m * factor})")
    m, r, lo, hi, a, b, c, clean = p
    out = []
    for j in range(factor):
        q = _make(m * factor, r + m * j, lo, hi, a, b, c, clean)
        if q is not None:
            out.append(q)
    return out


def _exact_factor(p: Piece) -> int:
    """How many subclasses make ``p``'s size exactly affine (c | a*n + b)."""
    m, a, c = p.m, p.a, p.c
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
        pieces = _split(Piece(m, r, lo, hi, a, b, c, clean), _exact_factor(p))
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
        if one_map and not p.clean:  # only the drop flag differs and p already drops
            out += _apply_case(p, cases[0])
            continue
        m, a, c = p.m, p.a, p.c
        if a == 0:
            parts = [p]
        else:
            t1 = _exact_factor(p)
            delta = a * m * t1 // c  # size step per t1 steps of the class
            parts = _split(p, t1 * (M // gcd(delta, M)))
        for q in parts:
            case = by_res.get(_value(q, q.r) % M)
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
            groups.setdefault((p.m, p.lo, p.hi, p.a, p.c, p.clean), {})[p.r] = p
        out = []
        for key, byr in groups.items():
            if len(byr) < 2 or key[0] == 1:
                out += byr.values()
                continue
            joined, changed = _merge_group(key, byr, changed)
            out += joined
        pieces = out
    return pieces


def _merge_group(key: tuple, byr: dict[int, Piece], changed: bool) -> tuple[list[Piece], bool]:
    """One pass over the classes ``byr`` (residue -> piece) of one modulus and map: the ``q``
    classes ``rho + j*m/q`` that together make the class ``rho (mod m/q)`` are joined, for the
    first prime ``q`` of ``m`` that joins any (``changed``: something was joined already)."""
    m, lo, hi, a, c, clean = key
    out = []
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
            b = _joined_offset(members, a, m, c)
            if b is None:
                continue
            done.add(rho)
            for x in members:
                del byr[x.r]
            new = _make(sub, rho, lo, hi, a, b, c, clean)
            if new is not None:
                out.append(new)
            changed = True
        if changed:
            break
    return out + list(byr.values()), changed


def _joined_offset(members: list[Piece], a: int, m: int, c: int) -> int | None:
    """The offset ``b`` one map ``floor((a*n + b)/c)`` takes on the union of ``members``
    (equal on each of them), or None when they do not share one."""
    bs = [x.b for x in members]
    if not a:
        return bs[0] if len(set(bs)) == 1 else None
    g = gcd(a * m, c)
    top = max(bs)
    return None if top > min(b + g - 1 for b in bs) else top


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


def _intersect(p: Piece, q: Piece) -> Span | None:
    cls = _crt(p.m, p.r, q.m, q.r)
    if cls is None:
        return None
    m, r = cls
    lo, hi = max(p.lo, q.lo), min(p.hi, q.hi)
    if hi < lo or _first(m, r, max(lo, 1)) > hi:
        return None
    return Span(m, r, lo, hi, p.clean and q.clean)


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




def _find(pieces, n: int) -> Piece | None:
    for p in pieces:
        if p.lo <= n <= p.hi and n % p.m == p.r:
            return p
    return None


class State(NamedTuple):
    """The sizes still possible and the tracked size, at one point of the network.

    ``pieces``: disjoint :class:`Piece` s (input sizes where the tracked size is
    ``floor((a*n + b)/c)``); ``shape``: the declared shape there; ``dim``: where the
    tracked size sits.
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

    def size_map(self, d: int) -> tuple[int, int, int] | None:
        """(a, b, c) of a dim that does not move with the input (None: the tracked dim)."""
        return None if d == self.dim else (0, self.shape[d], 1)


def start(dim: int, shape: tuple) -> State:
    """Every input size possible, the tracked size equal to it."""
    return State((Piece(1, 0, 1, BIG, 1, 0, 1, True),), dim, tuple(shape))


def _meet(p: Piece, q: Piece, cur: State, other: State, dims) -> list[Piece]:
    """Where pieces ``p`` (of ``cur``) and ``q`` (of ``other``) meet and agree on ``dims``;
    ``p``'s map is kept."""
    span = _intersect(p, q)
    if span is None:
        return []
    parts = [span]
    for d in dims:
        if d != cur.dim and d != other.dim:
            continue
        f = p.map if d == cur.dim else cur.size_map(d)
        g = q.map if d == other.dim else other.size_map(d)
        parts = [Span(x.m, x.r, x.lo, x.hi, x.clean) for s in parts
                 for x in _equal_on(s.m, s.r, s.lo, s.hi, s.clean, f, g)]
    out = [_make(s.m, s.r, s.lo, s.hi, *p.map, s.clean) for s in parts]
    return [x for x in out if x is not None]


def equal(states: list[State], dims=None) -> State:
    """Sizes at which every state's dims (``dims``: indices, default all) agree; the first
    state's map is kept."""
    cur = states[0]
    dims = range(len(cur.shape)) if dims is None else dims
    for other in states[1:]:
        if len(other.shape) != len(cur.shape):
            raise SizeUnknown("a merge of tensors of different ranks")
        merged = cur.merged or other.merged
        if other.dim == cur.dim and other.pieces == cur.pieces:  # the same sizes: nothing to cut
            cur = State(cur.pieces, cur.dim, cur.shape, merged)
            continue
        pieces = [x for p in cur.pieces for q in other.pieces for x in _meet(p, q, cur, other, dims)]
        cur = State(tuple(_merge(pieces)), cur.dim, cur.shape, merged)
    return cur


def equal_or_one(x: State, g: State) -> State:
    """Sizes at which the tracked size of ``g`` is 1 or equals that of ``x`` (a gate that
    scales ``x``: one value per channel, or a full map); ``x``'s map is kept."""
    pieces = []
    for p in x.pieces:
        for q in g.pieces:
            span = _intersect(p, q)
            if span is None:
                continue
            m, r, lo, hi, clean = span
            up = _upper(*_canon(m, r, *q.map), 1)  # g == 1 exactly for n <= up (g >= 1)
            if up is not None and up >= lo:
                pieces.append(_make(m, r, lo, min(hi, up), *p.map, clean))
            if up is not None and up >= hi:
                continue
            first = lo if up is None else max(lo, up + 1)
            for e in _equal_on(m, r, first, hi, clean, p.map, q.map):
                pieces.append(_make(e.m, e.r, max(e.lo, first), e.hi, *p.map, clean))
    out = _merge([z for z in pieces if z is not None])
    return State(tuple(out), x.dim, x.shape, x.merged or g.merged)
