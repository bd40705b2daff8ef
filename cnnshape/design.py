"""Editable designs: pure edit operations, undo/redo history and live evaluation.

This module is the logic behind the TUI (which only displays and dispatches keys). A
:class:`Design` holds the spec as the user's *data* (what the YAML says), not as a
validated :class:`~cnnshape.spec.Spec`: an edit may leave a layer invalid (a kernel that
does not fit, a typo in a value) and the design must show that, not refuse it or lose
the rest. :func:`evaluate` turns a design into a report plus one status per layer.

Every edit is a pure function ``Design -> Design`` (raising :class:`EditError` for an
impossible request, such as moving the first layer up); :class:`History` stacks them for
undo/redo. Each layer item remembers which item of the opened file it came from
(``origin``) so that saving can keep that item's comments and style (see
:mod:`cnnshape.roundtrip`).
"""

from dataclasses import dataclass, field, replace
from typing import Any

from .analysis import Report, analyze
from .errors import Diagnostic, SpecError
from .layers import LAYER_TYPES
from .layers.base import did_you_mean
from .layers.values import closest  # noqa: F401  (the studio asks D.closest)
from .spec import TOP_KEYS, from_data

#: sentinel: remove the argument (use the layer's default)
UNSET = object()


class EditError(ValueError):
    """An edit that cannot be applied (the design is unchanged)."""


@dataclass(frozen=True)
class Item:
    """One layer as written: a type name (``"ReLU"``) or a mapping with ``type``."""

    data: Any
    origin: int | None = None  # index of the item in the opened file, None if new

    @property
    def type(self) -> str:
        return type_of(self.data)

    @property
    def values(self) -> dict[str, Any]:
        """The written arguments (without ``type``)."""
        return values_of(self.data)

    @property
    def name(self) -> str | None:
        v = self.values.get("name")
        return v if isinstance(v, str) else None


def type_of(data) -> str:
    """The type name of a written layer item ("?" when it has none)."""
    if isinstance(data, str):
        return data
    return str(data.get("type", "?")) if isinstance(data, dict) else "?"


def values_of(data) -> dict[str, Any]:
    """The written arguments of a layer item (without ``type``)."""
    return {k: v for k, v in data.items() if k != "type"} if isinstance(data, dict) else {}


def _item_data(type_name: str, values: dict[str, Any]) -> Any:
    return type_name if not values else {"type": type_name, **values}


@dataclass(frozen=True)
class Design:
    """A spec being edited: ordered top-level values (without ``layers``) and items."""

    top: tuple[tuple[str, Any], ...]
    items: tuple[Item, ...]

    @classmethod
    def from_data(cls, data: dict) -> "Design":
        top = tuple((k, v) for k, v in data.items() if k != "layers")
        layers = data.get("layers")
        layers = layers if isinstance(layers, list) else []
        return cls(top, tuple(Item(x, i) for i, x in enumerate(layers)))

    def get(self, key: str, default=None):
        return dict(self.top).get(key, default)

    def data(self) -> dict[str, Any]:
        """Plain data as :func:`cnnshape.spec.from_data` takes it (and YAML writes it)."""
        return {**dict(self.top), "layers": [it.data for it in self.items]}

    def names(self) -> list[str]:
        return [it.name if it.name is not None else str(i) for i, it in enumerate(self.items)]

    def _with_items(self, items) -> "Design":
        return replace(self, items=tuple(items))

    def _check_index(self, i: int) -> None:
        if not 0 <= i < len(self.items):
            raise EditError(f"no layer {i}: the design has {len(self.items)} layers")


# ------------------------------------------------------------------------ edits
def set_top(d: Design, key: str, value: Any) -> Design:
    """Set (or with UNSET remove) a top-level value such as ``input`` or ``batch``."""
    if key not in TOP_KEYS or key == "layers":
        raise EditError(f"unknown top-level key '{key}'{did_you_mean(key, TOP_KEYS)}")
    top = dict(d.top)
    if value is UNSET:
        top.pop(key, None)
    else:
        top[key] = value
    order = [k for k, _ in d.top] + [k for k in TOP_KEYS if k not in dict(d.top)]
    return replace(d, top=tuple((k, top[k]) for k in order if k in top))


Path = "int | tuple"  # a top-level index, or (index, key, index, ...) into nested layer lists


def _norm(path) -> tuple:
    return (path,) if isinstance(path, int) else tuple(path)


def get_data(d: Design, path) -> Any:
    """The written data of the layer at ``path`` (e.g. ``(4, "body", 0)``)."""
    p = _norm(path)
    d._check_index(p[0])
    node = d.items[p[0]].data
    for k in p[1:]:
        try:
            node = node[k]
        except (KeyError, IndexError, TypeError):
            raise EditError(f"no layer at {'/'.join(map(str, p))}") from None
    return node


def _set_in(data, rest, fn):
    if not rest:
        return fn(data)
    k = rest[0]
    try:
        new = dict(data) if isinstance(data, dict) else list(data)
        new[k] = _set_in(data[k], rest[1:], fn)
    except (KeyError, IndexError, TypeError):
        raise EditError(f"no layer at {k}") from None
    return new


def _update(d: Design, path, fn) -> Design:
    """Replace the data at ``path`` by ``fn(old data)``."""
    p = _norm(path)
    d._check_index(p[0])
    items = list(d.items)
    items[p[0]] = replace(items[p[0]], data=_set_in(items[p[0]].data, p[1:], fn))
    return d._with_items(items)


def _list_op(d: Design, path, op) -> Design:
    """Apply ``op(list, index) -> list`` to the list that holds ``path``'s layer.

    The top level is a list of Items (with origins), nested lists hold plain data."""
    p = _norm(path)
    if len(p) == 1:
        items = op(list(d.items), p[0], Item)
        return d._with_items(items)
    return _update(d, p[:-1], lambda lst: op(list(lst), p[-1], None))


def _unwrap(x):
    return x.data if isinstance(x, Item) else x


def set_tops(d: Design, changes: dict[str, Any]) -> Design:
    """Several :func:`set_top` changes as one edit."""
    for key, value in changes.items():
        d = set_top(d, key, value)
    return d


def set_args(d: Design, path, changes: dict[str, Any]) -> Design:
    """Change arguments of the layer at ``path`` (UNSET removes one); ``type`` too."""
    def change(data):
        type_name = changes.get("type", type_of(data))
        if type_name is UNSET:
            raise EditError("a layer needs a type")
        values = values_of(data)
        for k, v in changes.items():
            if k == "type":
                continue
            if v is UNSET:
                values.pop(k, None)
            else:
                values[k] = v
        return _item_data(type_name, values)
    get_data(d, path)
    return _update(d, path, change)


def apply_fix(d: Design, diag: Diagnostic, path=None) -> Design:
    """Apply a diagnostic's machine-applicable fix to its layer (``path`` for a nested
    layer; default: the top-level item the diagnostic names)."""
    if not diag.fix or diag.index is None:
        raise EditError("this problem has no automatic fix; follow the hint")
    return set_args(d, diag.index if path is None else path,
                    {k: UNSET if v is None else v for k, v in diag.fix.items()})


def insert(d: Design, at, type_name: str, values: dict[str, Any] | None = None) -> Design:
    """Insert a new layer of ``type_name`` at position ``at`` (an index of the top level,
    or a path whose last element is the position in a nested list)."""
    if type_name not in LAYER_TYPES:
        raise EditError(f"unknown layer type '{type_name}'{did_you_mean(type_name, LAYER_TYPES)}")
    data = _item_data(type_name, dict(values) if values is not None else default_values(type_name))

    def op(lst, i, wrap):
        if not 0 <= i <= len(lst):
            raise EditError(f"cannot insert at {i}: positions are 0..{len(lst)}")
        lst.insert(i, wrap(data) if wrap else data)
        return lst
    return _list_op(d, at, op)


def default_values(type_name: str) -> dict[str, Any]:
    """Values a freshly inserted layer starts with: its required arguments filled with
    the most common choice (so the new layer is usually valid right away; a new block
    holds a shape-keeping ReLU to edit)."""
    start = {"out_channels": 16, "kernel_size": 3, "out_features": 10, "output_size": 1, "n": 2,
             "body": ["ReLU"], "branches": [["ReLU"], ["Identity"]]}
    cls = LAYER_TYPES[type_name]
    if cls.family == "pooling":
        start["kernel_size"] = 2  # MaxPool2d(2): halves the size (stride defaults to the kernel)
    return {k: start.get(k, 1) for k, a in cls.ARGS.items() if a.required}


def similar_types(text: str, n: int = 5) -> list[str]:
    """Layer types whose names look like ``text`` (a misspelled search: "batchnrm")."""
    import difflib

    lower = {name.lower(): name for name in LAYER_TYPES}
    return [lower[m] for m in difflib.get_close_matches(text.strip().lower(), list(lower), n=n, cutoff=0.5)]


def delete(d: Design, path) -> Design:
    def op(lst, i, wrap):
        if not 0 <= i < len(lst):
            raise EditError(f"no layer {i}: the list has {len(lst)} layers")
        if wrap is None and len(lst) == 1:
            raise EditError("a block needs at least one layer here: delete the block instead")
        del lst[i]
        return lst
    return _list_op(d, path, op)


def duplicate(d: Design, path) -> Design:
    """Copy the layer at ``path`` right after itself (a named copy gets a fresh name)."""
    def op(lst, i, wrap):
        if not 0 <= i < len(lst):
            raise EditError(f"no layer {i}: the list has {len(lst)} layers")
        data = _unwrap(lst[i])
        name = data.get("name") if isinstance(data, dict) else None
        if isinstance(name, str):
            taken = {_unwrap(x).get("name") for x in lst if isinstance(_unwrap(x), dict)}
            n = 2
            while f"{name}_{n}" in taken:
                n += 1
            data = {**data, "name": f"{name}_{n}"}
        lst.insert(i + 1, wrap(data) if wrap else data)
        return lst
    return _list_op(d, path, op)


def move(d: Design, path, delta: int) -> Design:
    def op(lst, i, wrap):
        if not 0 <= i < len(lst):
            raise EditError(f"no layer {i}: the list has {len(lst)} layers")
        j = i + delta
        if not 0 <= j < len(lst):
            raise EditError(f"layer {i} is already {'first' if delta < 0 else 'last'}")
        lst.insert(j, lst.pop(i))
        return lst
    return _list_op(d, path, op)


def rename(d: Design, path, name: str | None) -> Design:
    """Give the layer at ``path`` a child-module name (None or empty: its position)."""
    return set_args(d, path, {"name": UNSET if not name else name})


# ----------------------------------------------------------------------- history
@dataclass
class History:
    """Undo/redo over designs. ``apply(op, ...)`` records one step with a label."""

    current: Design
    _undo: list[tuple[Design, str]] = field(default_factory=list)
    _redo: list[tuple[Design, str]] = field(default_factory=list)
    limit: int = 500

    def apply(self, label: str, op, *args, **kwargs) -> Design:
        new = op(self.current, *args, **kwargs)
        self.push(new, label)
        return new

    def push(self, new: Design, label: str) -> None:
        if new == self.current:
            return
        self._undo.append((self.current, label))
        del self._undo[: -self.limit]
        self._redo.clear()
        self.current = new

    def _shift(self, source: list, target: list, what: str) -> str:
        if not source:
            raise EditError(f"nothing to {what}")
        design, label = source.pop()
        target.append((self.current, label))
        self.current = design
        return label

    def undo(self) -> str:
        """Step back; returns the label of the undone edit (EditError if none)."""
        return self._shift(self._undo, self._redo, "undo")

    def redo(self) -> str:
        """Step forward again; returns the label of the redone edit (EditError if none)."""
        return self._shift(self._redo, self._undo, "redo")

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)


# -------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class Row:
    """One design item with what the analysis says about it.

    ``status``: ``ok``, ``warning``, ``error`` or ``unreached`` (after the first error,
    shapes are unknown).
    """

    index: int
    name: str
    type: str
    status: str
    report: Any  # LayerReport | None


@dataclass(frozen=True)
class Evaluation:
    report: Report | None  # None when the top level (input, batch...) is invalid
    rows: tuple[Row, ...]
    errors: tuple[Diagnostic, ...]
    warnings: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not self.errors



def evaluate(d: Design) -> Evaluation:
    """Validate and analyse a design; never raises for bad data."""
    report = None
    try:
        spec = from_data(d.data())
        report = analyze(spec)
        errors, warnings = report.errors, report.warnings
    except SpecError as exc:
        if exc.recovered is not None:  # the same recovery as `cnnshape check`: a misspelled
            report = analyze(exc.recovered, tuple(exc.diagnostics))  # type read as its suggestion
            errors, warnings = report.errors, report.warnings
        else:
            errors, warnings = tuple(exc.diagnostics), ()
    by_index = {lr.index: lr for lr in report.layers} if report is not None else {}
    bad = {e.index for e in errors if e.index is not None}
    warned = {w.index for w in warnings}
    top_bad = any(e.index is None for e in errors)
    rows = []
    for i, (item, name) in enumerate(zip(d.items, d.names())):
        if i in bad:
            status = "error"
        elif top_bad or i not in by_index:  # after an error the analysis could not go past
            status = "unreached"
        elif i in warned:
            status = "warning"
        else:
            status = "ok"
        rows.append(Row(i, name, item.type, status, by_index.get(i)))
    return Evaluation(report, tuple(rows), tuple(errors), tuple(warnings))


# ------------------------------------------------------------------ value input
def parse_value(text: str) -> Any:
    """A value typed into a form field, read as YAML: ``3`` -> 3, ``[3, 5]`` -> [3, 5],
    ``same`` -> 'same', ``true`` -> True, empty -> UNSET (the default)."""
    from .yaml_io import parse

    text = text.strip()
    if not text:
        return UNSET
    try:
        value, _ = parse(f"v: {text}\n")
    except SpecError:
        return text
    return value.get("v") if isinstance(value, dict) else text


def format_value(value: Any) -> str:
    """The inverse of :func:`parse_value` for display in a form field."""
    from .yaml_out import yaml_value

    if value is UNSET:
        return ""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_value(str(k))}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return yaml_value(value)


# ------------------------------------------------------------ studio logic (pure)
def suggestion(d: Design, diag: Diagnostic, path) -> tuple[str, str, str] | None:
    """("argument"|"type", what was written, what was meant) when ``diag`` is about an
    unknown type or argument of the layer at ``path`` that resembles a known one. Read
    from the data the loader attached to the diagnostic, else from the design's data and
    the diagnostic's key, never from its message."""
    if diag.suggestion is not None:
        return diag.suggestion
    if path is None:
        return None
    try:
        data = get_data(d, path)
    except EditError:
        return None
    written = type_of(data)
    cls = LAYER_TYPES.get(written)
    if cls is None:
        if not isinstance(data, (str, dict)) or diag.key not in (None, "type"):
            return None
        meant = closest(written, LAYER_TYPES)
        return ("type", written, meant) if meant else None
    key = diag.key
    if key is None or key in cls.ARGS or key not in values_of(data):
        return None
    meant = closest(key, cls.ARGS)
    return ("argument", key, meant) if meant else None


def fix_of(d: Design, diag: Diagnostic, path) -> dict | None:
    """The argument changes that fix ``diag`` on the layer at ``path``: its own ``fix``, or
    for a "did you mean" error the rename (``out_channel`` -> ``out_channels``, keeping
    the value; ``Relu`` -> ``ReLU``)."""
    if diag.fix:
        return {k: UNSET if v is None else v for k, v in diag.fix.items()}
    s = suggestion(d, diag, path)
    if s is None:
        return None
    kind, wrong, meant = s
    if kind == "type":
        return {"type": meant}
    values = values_of(get_data(d, path))
    if meant in values:
        return None
    return {wrong: UNSET, meant: values[wrong]}


def is_inside(label: str, outer: str | None) -> bool:
    """True when the dotted module path ``label`` lies inside ``outer``."""
    return bool(outer) and label.startswith(outer + ".")


def diagnostics_of(ev: Evaluation, top: int | None, label: str | None, depth: int) -> tuple[list, list]:
    """(own, enclosing) diagnostics of a row: those on the layer (or, for a top-level row,
    anywhere in its item) and those on a block around it (a Residual whose add fails)."""
    own, around = [], []
    for dg in (*ev.errors, *ev.warnings):
        if dg.index != top or top is None:
            continue
        if depth == 0 or dg.name == label or is_inside(dg.name or "", label):
            own.append(dg)
        elif is_inside(label or "", dg.name):
            around.append(dg)
    return own, around


def keep_size_changes(data) -> list[dict]:
    """Argument changes that make a windowed layer keep its input size (the usual fix when
    a kernel change inside a block breaks its add): padding = dilation*(kernel-1)/2, and
    stride 1."""
    cls = LAYER_TYPES.get(type_of(data))
    values = values_of(data)
    if cls is None or "kernel_size" not in cls.ARGS or "padding" not in cls.ARGS:
        return []
    k, dil = values.get("kernel_size"), values.get("dilation", 1)
    ks = k if isinstance(k, list) else [k]
    dils = dil if isinstance(dil, list) else [dil] * len(ks)
    if not all(isinstance(x, int) and x % 2 == 1 for x in ks) or not all(isinstance(x, int) for x in dils):
        return []
    pads = [dl * (x - 1) // 2 for x, dl in zip(ks, dils)]
    pad = pads[0] if len(set(pads)) == 1 else pads
    out = [{"padding": pad}] if values.get("padding", 0) != pad else []
    if values.get("stride", 1) != 1:
        out += [{"stride": UNSET}, {"padding": pad, "stride": UNSET}] if out else [{"stride": UNSET}]
    return out


@dataclass(frozen=True)
class Fix:
    """What ``f`` does on a row: the label of the edit, the layer path and its changes."""

    label: str
    path: tuple
    changes: dict


def _describe(changes: dict) -> str:
    return ", ".join(f"{k}: {'(default)' if v is UNSET else v}" for k, v in changes.items())


def _own_fix(d: Design, own, path, depth: int, path_of) -> Fix | None:
    """The fix of the row's own first fixable problem."""
    for dg in own:
        where = path if depth else path_of(dg) or path
        ch = fix_of(d, dg, where)
        if ch:
            return Fix(f"fix {dg.name}: {_describe(ch)}", tuple(where), ch)
    return None


def _repair_around(d: Design, ev: Evaluation, around, path, label: str | None) -> Fix | None:
    """A change of this layer that repairs the failing block around it (a size-keeping
    padding/stride), checked by analysing the trial."""
    broken = [dg for dg in around if dg.severity == "error"]
    if not broken or path is None:
        return None
    for ch in keep_size_changes(get_data(d, path)):
        try:
            trial = evaluate(set_args(d, path, ch))
        except EditError:
            continue
        if len(trial.errors) < len(ev.errors) and not any(
                e.name == dg.name and e.message == dg.message for dg in broken for e in trial.errors):
            return Fix(f"fix {label} for {broken[0].name}: {_describe(ch)}", tuple(path), ch)
    return None


def _any_fix(d: Design, diags, path_of) -> Fix | None:
    """The first diagnostic of ``diags`` with a fix, at the layer it names."""
    for dg in diags:
        where = path_of(dg)
        ch = fix_of(d, dg, where)
        if ch and where is not None:
            return Fix(f"fix {dg.name}: {_describe(ch)}", tuple(where), ch)
    return None


def choose_fix(d: Design, ev: Evaluation, path, label: str | None, depth: int, path_of) -> Fix | None:
    """The fix ``f`` applies with the row at ``path`` selected (None: the input row).

    In order: the row's own problem (an automatic fix or a "did you mean"); a problem of a
    block around it that a change of this layer repairs (checked by analysing the trial);
    a block's own fix; else the first fixable error anywhere. ``path_of(diag)`` gives the
    data path of the layer a diagnostic names."""
    top = None if path is None else path[0]
    own, around = diagnostics_of(ev, top, label, depth) if path is not None else ([], [])
    return (_own_fix(d, own, path, depth, path_of) or _repair_around(d, ev, around, path, label)
            or _any_fix(d, [*around, *ev.errors], path_of))


def first_copy_override(repeat_data, rel: str) -> dict:
    """The ``first:`` changes a Repeat makes to the layer at ``rel`` (its dotted path inside
    the first copy, e.g. ``conv1``), {} if none."""
    first = repeat_data.get("first") if isinstance(repeat_data, dict) else None
    change = first.get(rel) if isinstance(first, dict) else None
    return dict(change) if isinstance(change, dict) else {}


def set_first_copy(d: Design, repeat_path, rel: str, changes: dict[str, Any]) -> Design:
    """Change the ``first:`` override of the layer ``rel`` of the Repeat at ``repeat_path``
    (UNSET removes a key; an override left empty is removed)."""
    def change(data):
        if not isinstance(data, dict):
            raise EditError("not a Repeat")
        first = dict(data.get("first") or {})
        entry = dict(first.get(rel) or {})
        for k, v in changes.items():
            if v is UNSET:
                entry.pop(k, None)
            else:
                entry[k] = v
        if entry:
            first[rel] = entry
        else:
            first.pop(rel, None)
        out = {k: v for k, v in data.items() if k != "first"}
        if first:
            out = {**{k: v for k, v in data.items() if k in ("type", "name", "n")}, "first": first,
                   **{k: v for k, v in data.items() if k not in ("type", "name", "n", "first")}}
        return out
    get_data(d, repeat_path)
    return _update(d, repeat_path, change)


def edit_first_copy(d: Design, path, repeat_path, rel: str, changes: dict[str, Any]) -> Design:
    """Edit a layer of a Repeat's first copy as the user sees it: arguments the ``first:``
    override sets are changed there (the first copy only), the others in the body (every
    copy)."""
    over = first_copy_override(get_data(d, repeat_path), rel)
    mine = {k: v for k, v in changes.items() if k in over}
    rest = {k: v for k, v in changes.items() if k not in over}
    if mine:
        d = set_first_copy(d, repeat_path, rel, mine)
    if rest:
        d = set_args(d, path, rest)
    return d
