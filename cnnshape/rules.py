"""The size-rule vocabulary: how one layer maps the size along one dim, for any size.

A rule is a few :class:`Case` s, each ``out = floor((a*x + b) / c)`` on a residue class of
the input size ``x`` under bounds. Layer classes build their rule with the helpers here
(:func:`same`, :func:`fixed`, :func:`constant`, :func:`affine`, :func:`window`) in
:meth:`Layer.size_rule`; :mod:`cnnshape.sizes` composes them over a whole network.
Pure integer data: no layer, no analysis, no torch (the bottom of the package, beside
:mod:`cnnshape.formulas`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

BIG = 1 << 62  # "no upper bound"


class SizeUnknown(Exception):
    """No exact answer for this axis (a layer without a size rule, an unsupported merge)."""


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
