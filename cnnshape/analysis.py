"""The analytic calculator: ``analyze(spec) -> Report`` (no torch).

Walks the layers once, asking each layer for its :class:`~cnnshape.layers.Inference`,
and composes receptive fields, parameter and MAC totals and memory.

Errors are recovered from like a compiler does, where the consequence is known: a declared
``in_channels``/``in_features``/``num_features`` that disagrees with the incoming shape is
reported, and the walk goes on with the output torch would produce if the declaration were
right (the layer with the inferred value). Later errors are marked ``after_error``. Any
other :class:`~cnnshape.layers.LayerError` ends the walk (the shape is unknown from there):
the report holds every layer before it and the located errors.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import Diagnostic
from .formulas import RFAxis, prod
from .layers import Inference, Layer, LayerError
from .layers.base import KEEP, MIX, Shape, shape_str
from .limits import MAX_INT
from .layers.blocks import NESTED, child_names
from .layers.blocks._base import MAX_EXPANDED_ROWS, expanded_rows
from .spec import Spec


@dataclass(frozen=True, slots=True)
class LayerReport:
    """One analysed layer (shapes per sample, batch excluded)."""

    index: int
    name: str
    type: str
    input: Shape
    output: Shape
    params: int
    trainable_params: int
    macs: int
    receptive_field: tuple[RFAxis, ...] | None
    layer: Layer = field(repr=False, compare=False)
    #: dotted module path = state_dict prefix of the compiled model ("layer2.0.conv1")
    path: str = ""
    #: rows of the layers inside a block (empty for plain layers)
    children: tuple["LayerReport", ...] = ()

    def walk(self):
        """This row and every nested row, depth first."""
        yield self
        for c in self.children:
            yield from c.walk()

    def to_dict(self) -> dict[str, Any]:
        rf = self.receptive_field
        out = {
            "index": self.index, "name": self.name, "type": self.type,
            "input": list(self.input), "output": list(self.output),
            "params": self.params, "trainable_params": self.trainable_params, "macs": self.macs,
            "receptive_field": None if rf is None else {
                "size": [a.size for a in rf], "jump": [a.jump for a in rf],
                "start": [float(a.start) for a in rf]},
        }
        if self.path and self.path != self.name:
            out["path"] = self.path
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        return out


@dataclass(frozen=True, slots=True)
class Totals:
    params: int
    trainable_params: int
    macs: int
    param_bytes: int
    input_bytes: int
    activation_bytes: int

    @property
    def frozen_params(self) -> int:
        return self.params - self.trainable_params

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params, "trainable_params": self.trainable_params, "macs": self.macs,
                "frozen_params": self.frozen_params, "param_bytes": self.param_bytes,
                "input_bytes": self.input_bytes, "activation_bytes": self.activation_bytes}


@dataclass(frozen=True)
class Report:
    """The result of :func:`analyze`; ``to_dict()`` is the JSON report of docs/spec.md, section 4."""

    spec: Spec
    layers: tuple[LayerReport, ...]
    errors: tuple[Diagnostic, ...]
    warnings: tuple[Diagnostic, ...]
    totals: Totals

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def output(self) -> Shape | None:
        if not self.ok:
            return None
        return self.layers[-1].output if self.layers else self.spec.input

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "input": list(self.spec.input),
            "batch": self.spec.batch,
            "output": None if self.output is None else list(self.output),
            "layers": [lr.to_dict() for lr in self.layers],
            "totals": self.totals.to_dict(),
            "errors": [d.to_dict() for d in self.errors],
            "warnings": [d.to_dict() for d in self.warnings],
            "dtype": self.spec.dtype,
        }


def _initial_rf(shape: Shape) -> tuple[RFAxis, ...] | None:
    if len(shape) < 2:
        return None
    return tuple(RFAxis(1, 1, 0.0) for _ in shape[1:])


class _Stop(Exception):
    """An error with no known consequence was recorded: unwind the walk."""


class Walk:
    """One pass over a spec, recursing into blocks (which call back ``seq``/``nested``).

    Collects rows, located errors/warnings and the totals; an error stops it unless the
    layer's output is known anyway (an argument that restates the incoming shape,
    ``Layer.RESTATED``, declared with ``Arg(inferred_from=...)``). ``assumed_from`` is the top-level
    index of the first layer read as a stand-in by the loader (errors from there on are
    found after an earlier error).
    """

    def __init__(self, spec: Spec, assumed_from: int | None = None):
        self.assumed_from = assumed_from
        self.spec = spec
        self.batch = spec.batch
        self.errors: list[Diagnostic] = []
        self.warnings: list[Diagnostic] = []
        self.act_elems = 0
        self.size_bound = False  # a Flatten merged spatial axes whose size depends on the input
        self.adaptive = False
        self.top = 0
        self.ctx: list[tuple[tuple, str, bool]] = []  # (YAML path, dotted path, trainable) of open blocks
        self._copies: dict = {}  # Repeat copies analysed so far (see copy)

    # ------------------------------------------------------------------ locating
    def _diag(self, note, ypath: tuple, dotted: str, severity: str) -> Diagnostic:
        pos = self.spec.source.positions if self.spec.source else None
        line, col = pos.get(*ypath) if pos else (None, None)
        key = note.key
        kl, kc = pos.exact(*ypath, key) if key and pos else (None, None)
        if key and kl is None:
            key = None  # the argument was not written: point at the layer only
        after = severity == "error" and (bool(self.errors) or (
            self.assumed_from is not None and self.top >= self.assumed_from))
        return Diagnostic(note.message, note.hint, index=self.top, name=dotted, line=line, column=col,
                          key=key, key_line=kl, key_column=kc, severity=severity,
                          fix=getattr(note, "fix", None), after_error=after)

    def fail(self, exc: LayerError, ypath: tuple, dotted: str) -> None:
        """Record a located error."""
        self.errors.append(self._diag(exc, ypath, dotted, "error"))

    def recover(self, layer: Layer, shape: Shape, exc: LayerError, ypath: tuple, dotted: str):
        """The Inference of ``layer`` with its restated argument corrected as ``exc.fix``
        says, or raise _Stop when the error has no known consequence."""
        if not exc.fix or not set(exc.fix) <= layer.RESTATED:
            raise _Stop from None
        try:
            return layer.replace(**exc.fix).infer(shape, self.batch)
        except LayerError as again:
            self.fail(again, ypath, dotted)
            raise _Stop from None

    def warn(self, note) -> None:
        ypath, dotted, _ = self.ctx[-1]
        self.warnings.append(self._diag(note, ypath, dotted, "warning"))

    def merge_memory(self, shape: Shape) -> None:
        self.act_elems += prod(shape)

    # ------------------------------------------------------------------ walking
    def item(self, layer: Layer, shape: Shape, rf, ypath: tuple, dotted: str, name: str, index: int,
             tuple_ok: bool) -> LayerReport:
        trainable = layer.trainable and (not self.ctx or self.ctx[-1][2])  # ctx entries are cumulative
        if layer.is_block:
            return self._block(layer, shape, rf, ypath, dotted, name, index, trainable)
        inf = self._infer(layer, shape, ypath, dotted, tuple_ok)
        if layer.fixes_size:
            self.adaptive = True
        if layer.flattens and inf.rf == MIX and not self.adaptive:
            self.size_bound = True
        if getattr(layer, "in_features", None) is not None:
            self.size_bound = False
        for note in inf.notes:
            self.warnings.append(self._diag(note, ypath, dotted, "warning"))
        self.act_elems += prod(inf.output)
        p = inf.params
        return LayerReport(index, name, layer.type, shape, inf.output, p, p if trainable else 0, inf.macs,
                           _compose_rf(rf, inf.rf), layer, dotted)

    def _block(self, layer, shape: Shape, rf, ypath: tuple, dotted: str, name: str, index: int,
               trainable: bool) -> LayerReport:
        """The row of a block: its children analysed by the block's own ``analyze``."""
        self.ctx.append((ypath, dotted, trainable))
        try:
            rows = expanded_rows(layer)
            if rows > MAX_EXPANDED_ROWS:
                raise LayerError(
                    f"{layer.type} expands to {rows:,} layers (every Repeat copy counted); cnnshape analyses "
                    f"at most {MAX_EXPANDED_ROWS:,} layers in one spec",
                    "lower n" if "n" in layer.ARGS else "lower the counts (n) of the Repeats inside it",
                    "n" if "n" in layer.ARGS else None)
            out, out_rf, children = layer.analyze(shape, rf, self)
            if any(d > MAX_INT for d in out):  # a merge (Concat, DenseBlock) past the limit
                raise LayerError(f"{layer.type} would output {shape_str(out)}: sizes are limited to "
                                 f"{MAX_INT:,} (README: Limits)", "use fewer or narrower branches")
            _check_registered(children)
            own = layer.own_params(out)
        except LayerError as exc:
            self.fail(exc, ypath, dotted)
            raise _Stop from None
        finally:
            self.ctx.pop()
        params = sum(c.params for c in children) + own
        return LayerReport(index, name, layer.type, shape, out, params,
                           sum(c.trainable_params for c in children) + (own if trainable else 0),
                           sum(c.macs for c in children), out_rf, layer, dotted, tuple(children))

    def _infer(self, layer: Layer, shape: Shape, ypath: tuple, dotted: str, tuple_ok: bool) -> Inference:
        """A leaf's Inference; on an error with a known consequence, that of the corrected
        layer (without its warnings), else _Stop."""
        try:
            inf = layer.infer(shape, self.batch)
            if any(d > MAX_INT for d in inf.output):
                raise LayerError(f"{layer.type} would output {shape_str(inf.output)}: sizes are limited to "
                                 f"{MAX_INT:,} (README: Limits)", "use smaller sizes")
            if layer.returns_tuple() and not tuple_ok:
                raise LayerError(
                    f"{layer.type} with return_indices: true returns (values, indices); the next "
                    "layer would receive a tuple",
                    "set return_indices: false (indices are only usable on the last layer)",
                    "return_indices")
            return inf
        except LayerError as exc:
            if self.size_bound and exc.key == "in_features":
                # the likely cause: the input size or a layer before Flatten changed
                exc.hint += (" (the flattened length follows the input size and the layers before "
                             "Flatten; adaptive pooling before Flatten fixes it)")
            self.fail(exc, ypath, dotted)
            inf = self.recover(layer, shape, exc, ypath, dotted)
            return Inference(inf.output, inf.params, inf.macs, inf.rf)  # its warnings would be noise

    def seq(self, layers, shape: Shape, rf, ykey, names=None, offset: int = 0):
        """Run ``layers`` (a child sequence of the current block; ``ykey`` its YAML key
        below the block, e.g. "body" or ("branches", 1)) -> (shape, rf, rows)."""
        ypath, dotted, _ = self.ctx[-1]
        ykey = (ykey,) if isinstance(ykey, str) else tuple(ykey)
        names = names or child_names(layers, offset)
        rows = []
        for j, (layer, name) in enumerate(zip(layers, names)):
            here = dotted if layer.inline else _sub(dotted, name)
            row = self.item(layer, shape, rf, ypath + ykey + (j,), here, name, j + offset, False)
            rows.append(row)
            shape, rf = row.output, row.receptive_field
        return shape, rf, rows

    def copy(self, i: int, body, shape: Shape, rf, ykey, nested: bool, name: str | None = None):
        """Copy ``i`` of a Repeat's ``body`` (child ``str(i)``: the body's one item itself,
        or an nn.Sequential when ``nested``) -> (shape, rf, rows).

        A body is analysed once per distinct input (shape, receptive field and walk state):
        a later copy with the same input reuses the first analysis, its rows relabelled to
        the copy's module path and its warnings and memory repeated."""
        _, dotted, trainable = self.ctx[-1]
        key = (id(body), shape, rf, self.adaptive, self.size_bound, trainable, dotted)
        name = str(i) if name is None else name
        hit = self._copies.get(key)
        if hit is None:
            w0, a0 = len(self.warnings), self.act_elems
            if nested:
                out, out_rf, rows = self.nested(name, body, shape, rf, ykey, i)
            else:
                out, out_rf, rows = self.seq(body, shape, rf, ykey, names=[name], offset=i)
            self._copies[key] = (name, out, out_rf, rows, self.warnings[w0:], self.act_elems - a0,
                                 self.adaptive, self.size_bound, body)
            return out, out_rf, rows
        name0, out, out_rf, rows, warns, act, self.adaptive, self.size_bound, _ = hit
        old, new = _sub(dotted, name0), _sub(dotted, name)
        self.act_elems += act
        self.warnings += [replace(w, name=new + w.name[len(old):]) if w.name and (w.name == old or
                          w.name.startswith(old + ".")) else w for w in warns]
        return out, out_rf, [_relabel(r, old, new, name, i) for r in rows]

    def nested(self, name: str, layers, shape: Shape, rf, ykey, index: int | None = None):
        """Run ``layers`` as one nn.Sequential child called ``name`` -> (shape, rf, [row])."""
        ypath, dotted, trainable = self.ctx[-1]
        self.ctx.append((ypath, _sub(dotted, name), trainable))
        try:
            out, out_rf, rows = self.seq(layers, shape, rf, ykey)
        finally:
            self.ctx.pop()
        index = index if index is not None else int(name) if name.isdecimal() and name.isascii() else 0
        row = LayerReport(index, name, "Sequential", shape, out,
                          sum(r.params for r in rows), sum(r.trainable_params for r in rows),
                          sum(r.macs for r in rows), out_rf, NESTED, _sub(dotted, name), tuple(rows))
        return out, out_rf, [row]


def _compose_rf(rf, rule):
    """The receptive field after a layer whose RF rule is ``rule`` (see ``Inference.rf``)."""
    if rf is None or rule == KEEP:
        return rf
    if rule == MIX:
        return None
    if callable(rule):
        return rule(rf)
    return None if len(rule) != len(rf) else tuple(a.window(*w) for a, w in zip(rf, rule))


def _sub(dotted: str, name: str) -> str:
    """The module path of child ``name`` of ``dotted`` ("" is the model itself: the children
    of a top-level inline block are the model's)."""
    return f"{dotted}.{name}" if dotted else name


def _check_registered(rows) -> None:
    """Two children registered under one module path (an inline block's layers are
    registered on the enclosing module): torch would silently keep only the last."""
    seen: set = set()
    for r in _registered(rows):
        if r.path in seen:
            raise LayerError(f"two layers are registered as '{r.path}' (an inline block's layers take their "
                             "names on the enclosing module)", "give the layers unique names", "inline")
        seen.add(r.path)


def _registered(rows):
    for r in rows:
        if r.layer.inline:
            yield from _registered(r.children)
        else:
            yield r


def _relabel(row: LayerReport, old: str, new: str, name: str | None = None, index: int = 0) -> LayerReport:
    """``row`` (and its children) moved from module path ``old`` to ``new``."""
    path = row.path
    if path == old or path.startswith(old + "."):
        path = new + path[len(old):]
    kids = tuple(_relabel(c, old, new) for c in row.children) if row.children else ()
    if name is None:
        name, index = row.name, row.index
    return LayerReport(index, name, row.type, row.input, row.output, row.params, row.trainable_params,
                       row.macs, row.receptive_field, row.layer, path, kids)


def analyze(spec: "Spec | str | os.PathLike[str] | dict[str, Any]",
            extra_errors: tuple[Diagnostic, ...] = ()) -> Report:
    """Analyse ``spec`` layer by layer (recursing into blocks) without torch.

    ``spec`` is a :class:`~cnnshape.spec.Spec` or anything :func:`~cnnshape.spec.load`
    accepts (a path, YAML text, a dict), which is loaded first (raising
    :class:`~cnnshape.errors.SpecError` when the spec is invalid; :func:`check` reports
    such errors in the report instead). ``extra_errors`` (e.g. schema errors of the
    layers after a valid prefix) are merged into the report's errors.
    """
    if not isinstance(spec, Spec):
        if not isinstance(spec, (str, os.PathLike, dict)):
            raise TypeError(f"analyze() takes a Spec, a path, YAML text or a dict, not {type(spec).__name__}")
        from .spec import load

        spec = load(spec)
    shape: Shape = tuple(spec.input)
    rf = _initial_rf(shape)
    names = spec.names
    schema_at = [d.index for d in extra_errors if d.index is not None]
    walk = Walk(spec, min(schema_at) if schema_at else None)
    reports: list[LayerReport] = []
    last = len(spec.layers) - 1
    expanded = 0
    for i, layer in enumerate(spec.layers):
        walk.top = i
        expanded += expanded_rows(layer)
        if expanded > MAX_EXPANDED_ROWS and expanded_rows(layer) <= MAX_EXPANDED_ROWS:
            walk.errors.append(walk._diag(LayerError(
                f"the spec expands to more than {MAX_EXPANDED_ROWS:,} layers (every Repeat copy counted) "
                f"at item {i}", "lower the Repeat counts, or split the network into several specs"),
                ("layers", i), names[i], "error"))
            break
        try:
            row = walk.item(layer, shape, rf, ("layers", i), "" if layer.inline else names[i],
                            names[i], i, i == last)
        except _Stop:
            break
        reports.append(row)
        shape, rf = row.output, row.receptive_field
        if layer.is_block and layer.inline:  # its layers register on the top module: names unique there
            try:
                _check_registered(reports)
            except LayerError as exc:
                walk.errors.append(walk._diag(exc, ("layers", i), names[i], "error"))
                break
    # in spec order (schema errors first at a layer: they are what torch meets first)
    errors = sorted(list(extra_errors) + walk.errors, key=lambda d: (d.index is not None, d.index or 0))
    item = spec.itemsize
    params = sum(r.params for r in reports)
    trainable = sum(r.trainable_params for r in reports)
    macs = sum(r.macs for r in reports)
    totals = Totals(params, trainable, macs, params * item, prod(spec.input) * spec.batch * item,
                    walk.act_elems * spec.batch * item)
    return Report(spec, tuple(reports), tuple(errors), tuple(walk.warnings), totals)


def check(obj: "Spec | str | os.PathLike[str] | dict[str, Any]", *, input: "Sequence[int] | None" = None,
          batch: int | None = None) -> Report:
    """Load and analyse in one call; schema errors become report errors.

    ``obj`` is what :func:`~cnnshape.spec.load` accepts (or a Spec); ``input``/``batch``
    override the spec's values. Raises :class:`~cnnshape.errors.SpecError` only when
    nothing of the spec could be analysed (invalid YAML, a broken top level),
    :class:`~cnnshape.errors.SpecFileError` when the file cannot be read, and TypeError
    for other argument types.
    """
    from .errors import SpecError
    from .spec import load

    if isinstance(obj, Spec):
        obj = obj.to_dict() if (input is not None or batch is not None) else obj
        if isinstance(obj, Spec):
            return analyze(obj)
    if not isinstance(obj, (str, os.PathLike, dict)):
        raise TypeError(f"check() takes a Spec, a path, YAML text or a dict, not {type(obj).__name__}")
    try:
        spec = load(obj, input=input, batch=batch)
    except SpecError as exc:
        if exc.recovered is None:
            raise
        return analyze(exc.recovered, tuple(exc.diagnostics))
    return analyze(spec)
