"""Which input sizes work? The exact set, per spatial axis, derived analytically (no torch).

For one spatial axis of the input varied alone (channels and the other axes as declared),
every layer maps the incoming size ``x`` along the tracked dim to
``floor((a*x + b) / c)`` — possibly a different such map per residue class of ``x`` (a
ceil-mode pooling, or the sizes at which a stride drops pixels) — under input constraints
(``x >= lo``, ``x <= hi``) and always ``output >= 1`` (no zero-size tensor). Each layer
class owns that piece (:meth:`Layer.size_rule`, built with the helpers here); each block
class owns its merge (:meth:`Block.size_flow`: a ``Residual`` keeps the sizes at which body
and shortcut agree, a ``Concat`` those at which all branches agree).

This module is the walker; the pieces live beside it: the rule vocabulary in
:mod:`cnnshape.rules`, the arithmetic in :mod:`cnnshape.size_algebra`, the report types in
:mod:`cnnshape.size_report` (all re-exported here). The engine keeps the set of input sizes ``n`` still possible as disjoint *pieces*: a
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

import dataclasses

from .analysis import Report, analyze, check
from .layers.base import AXIS_NAMES, Layer
from .rules import BIG, Case, Rule, SizeUnknown, affine, constant, fixed, same, window
from .size_algebra import MAX_PIECES, Piece, State, _apply_rule, _find, equal, equal_or_one, start
from .size_report import AxisSizes, Progression, SizesReport, _output_text, _progressions, members, nearest
from .spec import Spec

__all__ = ["BIG", "MAX_PIECES", "AxisSizes", "Case", "Piece", "Progression", "Rule", "SizeUnknown", "Sizer",
           "SizesReport", "State", "affine", "axis_sizes", "constant", "fixed", "members", "nearest", "same", "sizes",
           "window"]

#: the base class's size rule (pointwise layers pass sizes through without a Rule)
_BASE_RULE = Layer.size_rule


class Sizer:
    """Walks an analysed report's rows for one tracked axis (blocks call back ``rows`` and
    ``equal``)."""

    def __init__(self, declared: int, defer_coupled: bool = False, batch: int = 1, reinfer: bool = False):
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
        if layer.pointwise and type(layer).size_rule is _BASE_RULE:
            return state if state.shape == row.output else State(state.pieces, state.dim, row.output, state.merged)
        if layer.is_block:  # a nested sequence's row too (layers.blocks.NESTED)
            out = layer.size_flow(row, state, self)
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
        if state.merged and is_fixed and any(p.a != 0 for p in pieces):
            where = f"{row.path or row.name} ({row.layer.type})" if row is not None else "a layer"
            self.coupled.append((state, cs[0].lo, where))
            if self.defer_coupled:  # assume it holds (the square analysis checks it)
                pieces = [p._replace(a=0, b=cs[0].lo, c=1) for p in pieces]
        out = _apply_rule(pieces, rule)
        if len(out) > MAX_PIECES:
            raise SizeUnknown(f"more than {MAX_PIECES} residue classes of input sizes")
        merged = (state.merged or rule.merges) and not is_fixed and any(p.a != 0 for p in out)
        return State(tuple(out), rule.dim, state.shape, merged)

    # merges (blocks call these) ----------------------------------------------------
    def equal(self, states: list[State], dims=None) -> State:
        """Sizes at which every state's dims (``dims``: indices, default all) agree; the
        first state's map is kept."""
        return equal(states, dims)

    def equal_or_one(self, x: State, g: State) -> State:
        """Sizes at which the tracked size of ``g`` is 1 or equals that of ``x``."""
        return equal_or_one(x, g)


def _run(report, dim: int, defer: bool = False, reinfer: bool = False) -> tuple[State, Sizer]:
    spec = report.spec
    n0 = spec.input[dim]
    sizer = Sizer(n0, defer, spec.batch, reinfer)
    state = start(dim, spec.input)
    sizer.last_map = None
    for row in report.layers:
        if not state.pieces:
            break
        before = state
        state = sizer.row(row, state)
        if state.dim != dim or state.merged or all(p.a == 0 for p in state.pieces):
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
    spec = report.spec
    rank = len(spec.input) - 1
    name = AXIS_NAMES[rank][dim - 1]
    try:
        state, sizer = _run(report, dim, reinfer=reinfer)
    except SizeUnknown as exc:
        return AxisSizes(name, dim, spec.input[dim], None, None, None, str(exc)), []
    valid = _progressions(state.pieces)
    clean = _progressions([p for p in state.pieces if p.clean])
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
            if any(all(p.hi < n for p in s) for s in sets):
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
    return _progressions([Piece(1, 0, n, n, 0, 0, 1, True) for n in out])


def sizes(obj, *, input=None, reinfer: bool = False) -> SizesReport:
    """The input sizes that work, per spatial axis: ``obj`` is a Report, a Spec, a path,
    YAML text or a dict (loaded and analysed). Never imports torch.

    By default: the model compiled at the declared input (inferred in_features etc. fixed
    there). ``reinfer=True``: the spec re-analysed at each size (what ``cnnshape check
    --input`` accepts: inferred arguments adapt, written ones stay)."""
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


def _declared_report(source, input_shape):
    """The report of ``source`` at its own declared input, when that analyses and
    ``input_shape`` differs from it only in sizes (same rank and channels); else None."""
    from .errors import CnnshapeError

    try:
        base = check(source)
    except CnnshapeError:
        return None
    declared = tuple(base.spec.input)
    if not base.ok or len(input_shape) != len(declared) or input_shape[0] != declared[0]:
        return None
    return base


def _square_nearby(res, input_shape) -> list[str]:
    """Coupled axes changed together: the nearest square sizes, when ``input_shape`` is
    square and outside them."""
    if res.square is None or len(set(input_shape[1:])) != 1:
        return []
    n = input_shape[1]
    if any(n in g for g in res.square):
        return []
    near = nearest(res.square, n)
    names = " = ".join(a.axis for a in res.axes)
    return [f"{names}: {', '.join(map(str, near))}" if near else "no square size works"]


def _axes_nearby(changed, input_shape) -> list[str]:
    """The nearest working sizes of each changed axis whose size is outside its set."""
    parts = []
    for ax in changed:
        n = input_shape[ax.dim]
        if ax.valid is not None and n not in ax:
            near = ax.nearest(n)
            parts.append(f"{ax.axis}: {', '.join(map(str, near))}" if near else f"no {ax.axis} works")
    return parts


def with_nearby_sizes(report, source, input_shape):
    """``report`` (a failed ``check --input``) with "sizes that work nearby: ..." added to
    its first error's hint, when the spec analyses at its own declared input and a size
    of ``input_shape`` is outside the working set of its axis. Only run on failure."""
    if report.ok or not report.errors or input_shape is None:
        return report
    base = _declared_report(source, input_shape)
    if base is None:
        return report
    res = sizes(base, reinfer=True)
    changed = [ax for ax in res.axes if input_shape[ax.dim] != ax.declared]
    square = res.coupled and len(changed) > 1
    parts = _square_nearby(res, input_shape) if square else _axes_nearby(changed, input_shape)
    if not parts:
        return report
    first = report.errors[0]
    text = f"sizes that work nearby: {'; '.join(parts)} (cnnshape sizes lists them all)"
    hint = f"{first.hint}\n{text}" if first.hint else text
    return dataclasses.replace(report, errors=(dataclasses.replace(first, hint=hint),) + report.errors[1:])
