"""Architecture diff: two specs compared layer by layer (no torch).

Layers are matched by their dotted module path (``layer2.0.conv1``), which is also their
``state_dict`` prefix, so a renamed layer shows as removed + added exactly as its weights
would. Formatting, comments and key order never count: only what the analysis sees.

>>> d = diff("input: [1, 8, 8]\\nlayers: [{type: Conv2d, out_channels: 4, kernel_size: 3}]",
...          "input: [1, 8, 8]\\nlayers: [{type: Conv2d, out_channels: 8, kernel_size: 3}]")
>>> d.same, d.rows[0].status, d.rows[0].args
(False, 'changed', {'out_channels': (4, 8)})
>>> d.totals["params"]
{'a': 40, 'b': 80, 'delta': 40, 'pct': 100.0}
"""

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .analysis import LayerReport, Report, check
from .ci_formats import md_code, md_text
from .limits import printable

#: row statuses, in the order a reader cares about them
ADDED, REMOVED, CHANGED, SAME = "added", "removed", "changed", "same"
#: a layer present in one spec whose counterpart exists but was not analysed (after an error)
UNANALYSED = "not analysed"
#: the layer at a spec's first error (its counterpart, if any, is in the other spec)
ERROR = "error"
_SEQ_KINDS = ("layers", "branches", "overrides")


def _args(row: LayerReport | None) -> dict[str, Any]:
    """The arguments of a row as written (children excluded: they are rows of their own)."""
    if row is None:
        return {}
    layer = row.layer
    out = {}
    for k, v in layer.to_dict().items():
        if k in ("type", "name"):
            continue
        arg = layer.ARGS.get(k)
        if arg is not None and arg.kind in _SEQ_KINDS:
            continue
        out[k] = v
    return out


def _rf(row: LayerReport | None):
    if row is None or row.receptive_field is None:
        return None
    return [a.size for a in row.receptive_field]


@dataclass(frozen=True)
class RowDiff:
    """One matched (or unmatched) layer or block."""

    path: str
    status: str
    type: tuple[str | None, str | None]
    depth: int
    #: argument -> (value in A, value in B) for the arguments that differ (missing = None)
    args: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    output: tuple[Any, Any] = (None, None)
    params: tuple[int | None, int | None] = (None, None)
    macs: tuple[int | None, int | None] = (None, None)
    receptive_field: tuple[Any, Any] = (None, None)
    saved_bytes: tuple[int | None, int | None] = (None, None)
    is_block: bool = False
    #: for an error / not-analysed row: which spec and why (e.g. the error's message)
    note: str = ""

    @property
    def changed_fields(self) -> list[str]:
        out = list(self.args)
        for name in ("output", "params", "macs", "receptive_field", "saved_bytes"):
            a, b = getattr(self, name)
            if a != b:
                out.append(name)
        return out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "status": self.status,
                             "type": {"a": self.type[0], "b": self.type[1]}, "block": self.is_block}
        if self.args:
            d["args"] = {k: {"a": a, "b": b} for k, (a, b) in self.args.items()}
        for name in ("output", "params", "macs", "receptive_field", "saved_bytes"):
            a, b = getattr(self, name)
            if a is None and b is None:
                continue
            entry: dict[str, Any] = {"a": a, "b": b}
            if isinstance(a, int) and isinstance(b, int):
                entry["delta"] = b - a
            d[name] = entry
        if self.note:
            d["note"] = self.note
        return d


def _total(a: int | None, b: int | None, both: bool = True) -> dict[str, Any]:
    """A and B's figures; the change only when both cover a whole network (``both``)."""
    out: dict[str, Any] = {"a": a, "b": b}
    if a is not None and b is not None and both:
        out["delta"] = b - a
        out["pct"] = None if a == 0 else round(100.0 * (b - a) / a, 2)
    return out


@dataclass(frozen=True)
class Diff:
    """The result of :func:`diff`: ``same`` (exit 0) or not (exit 1)."""

    a: Report
    b: Report
    names: tuple[str, str]
    rows: tuple[RowDiff, ...]
    #: top-level fields (input, batch, dtype) that differ: name -> (A, B)
    top: dict[str, tuple[Any, Any]]
    totals: dict[str, dict[str, Any]]

    @property
    def same(self) -> bool:
        """The same architecture: equal layers (as data, names included), input, batch and
        dtype; the free-text name/description, comments and formatting do not count."""
        if self.top or any(r.status != SAME for r in self.rows):
            return False
        if self.a.ok and self.b.ok:
            return self.a.spec.layers == self.b.spec.layers
        # a spec with errors is only partly analysed: compare what the files say
        return _written(self.a) == _written(self.b) is not None

    @property
    def changes(self) -> list[RowDiff]:
        """Every row that is not the same (knock-on changes included)."""
        return [r for r in self.rows if r.status != SAME]

    def counts(self) -> dict[str, int]:
        out = {ADDED: 0, REMOVED: 0, CHANGED: 0, UNANALYSED: 0, ERROR: 0}
        for r in _shown(self):
            out[r.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "same": self.same,
            "a": {"file": self.names[0], "ok": self.a.ok, "input": list(self.a.spec.input),
                  "output": None if self.a.output is None else list(self.a.output)},
            "b": {"file": self.names[1], "ok": self.b.ok, "input": list(self.b.spec.input),
                  "output": None if self.b.output is None else list(self.b.output)},
            "top": {k: {"a": a, "b": b} for k, (a, b) in self.top.items()},
            "totals": self.totals,
            "counts": self.counts(),
            "layers": [r.to_dict() for r in self.changes],
            "errors": {"a": [d.to_dict() for d in self.a.errors], "b": [d.to_dict() for d in self.b.errors]},
        }


def _written(report: Report):
    """The spec's layers as written (parsed YAML data, comments and formatting gone), or
    None when the report has no source text."""
    src = report.spec.source
    if src is None or src.text is None:
        return None
    from .yaml_io import parse

    data, _ = parse(src.text, src.path)
    return data.get("layers") if isinstance(data, dict) else data


def first_error(report: Report) -> int | None:
    """Index of the top-level layer of ``report``'s first located error (None: no error at
    a layer; then, for a spec with errors, nothing was analysed)."""
    return min((d.index for d in report.errors if d.index is not None), default=None)


def _analysed_layers(report: Report) -> list[LayerReport]:
    """The top-level rows analysed on real shapes: those before the first error (later rows
    were analysed on assumed shapes by the recovery: not compared, not counted)."""
    if report.ok:
        return list(report.layers)
    first = first_error(report)
    return [] if first is None else [r for r in report.layers if r.index < first]


def _rows_by_path(report: Report) -> dict[str, tuple[LayerReport, int]]:
    out: dict[str, tuple[LayerReport, int]] = {}

    def visit(row: LayerReport, depth: int) -> None:
        out.setdefault(row.path or row.name, (row, depth))
        for c in row.children:
            visit(c, depth + 1)

    for row in _analysed_layers(report):
        visit(row, 0)
    return out


def _not_reached(report: Report) -> dict[str, tuple[int, str]]:
    """Top-level layers of ``report``'s spec the analysis did not reach (at or after its
    first error): name -> (index, type). Every layer of a spec with errors but no located
    layer error."""
    if report.ok:
        return {}
    first = first_error(report) or 0
    spec = report.spec
    return {spec.names[i]: (i, spec.layers[i].type) for i in range(first, len(spec.layers))}


def _merged_order(a: list[str], b: list[str]) -> list[str]:
    """A's paths in order, each of B's new paths after its predecessor in B (consecutive
    additions in B's order). Linear: each new path is grouped under the last path of B
    before it that A has too."""
    in_a = set(a)
    after: dict[str | None, list[str]] = {}
    anchor = None
    seen = set()
    for p in b:
        if p in in_a:
            anchor = p
        elif p not in seen:
            seen.add(p)
            after.setdefault(anchor, []).append(p)
    out = list(after.get(None, ()))
    for p in a:
        out.append(p)
        out += after.get(p, ())
    return out


def _note(status: str, path: str, *sides) -> str:
    """Why a row has no figures on a side: the error there, or not analysed after it."""
    parts = []
    for label, (report, reached, first) in zip("AB", sides):
        if path not in reached:
            continue
        index = reached[path][0]
        err = next((d for d in report.errors if d.index == first), None)
        where = f"line {err.line}" if err is not None and err.line else f"layer {first}"
        if status == ERROR and index == first and err is not None:
            parts.append(f"the error in {label} ({where}): {err.message}")
        elif first is None:
            parts.append(f"not analysed in {label} (the spec has errors)")
        else:
            parts.append(f"not analysed in {label} (after its error at layer {first}, {where})")
    return "; ".join(parts)


def coverage(report: Report) -> str | None:
    """What a spec's totals cover when it has errors (None: the whole network)."""
    if report.ok:
        return None
    first = first_error(report)
    if not first:
        return "nothing (an error before the first layer)"
    return f"layers 0–{first - 1} only (analysed before its error at layer {first})" if first > 1 else \
        "layer 0 only (analysed before its error at layer 1)"


def _partial_totals(report: Report) -> dict[str, int]:
    """params / trainable params / MACs over the analysed layers (all of them when ok)."""
    if report.ok:
        t = report.totals
        return {"params": t.params, "trainable_params": t.trainable_params, "macs": t.macs}
    rows = _analysed_layers(report)
    return {"params": sum(r.params for r in rows), "trainable_params": sum(r.trainable_params for r in rows),
            "macs": sum(r.macs for r in rows)}


def _memory(report: Report, cpu_isa: str | None = None) -> tuple[dict[str, int] | None, dict[str, int]]:
    """(saved-for-backward bytes per module path, memory totals) from the memory model;
    (None, {}) for a spec with errors (its figures would cover part of the network)."""
    if not report.ok:
        return None, {}
    from .memory import estimate, saved_per_path

    est = estimate(report, cpu_isa=cpu_isa)
    per_path = saved_per_path(est)  # a block's share: what the layers inside it keep
    totals = {"saved_bytes": est.saved_bytes, "training_peak_bytes": est.training_peak_bytes,
              "inference_peak_bytes": est.inference_peak_bytes}
    return per_path, totals


class _Side(NamedTuple):
    """One spec of a diff: its report, analysed rows by path, top-level rows not reached
    (path -> (index, type)), first error, saved bytes per path and memory totals."""

    report: Report
    rows: dict[str, tuple[LayerReport, int]]
    unreached: dict[str, tuple[int, str]]
    first: int | None
    saved: dict[str, int] | None
    memory: dict[str, int]

    @classmethod
    def of(cls, report: Report, cpu_isa: str | None) -> "_Side":
        rows, unreached = _rows_by_path(report), _not_reached(report)
        return cls(report, rows, unreached, first_error(report), *_memory(report, cpu_isa))

    @property
    def order(self) -> list[str]:
        return list(self.rows) + [p for p in self.unreached if p not in self.rows]

    def name(self, default: str) -> str:
        source = self.report.spec.source
        return source.path if source and source.path else default

    def spec_type(self, path: str, row: LayerReport | None) -> str | None:
        """A row's type; for a side the analysis did not reach, the type from the spec."""
        if row is not None:
            return row.type
        return self.unreached[path][1] if path in self.unreached else None

    def at_error(self, path: str) -> bool:
        return path in self.unreached and self.unreached[path][0] == self.first


def _changed_args(x: LayerReport | None, y: LayerReport | None) -> dict[str, tuple[Any, Any]]:
    """{argument: (A's value, B's value)} of the arguments written differently."""
    if x is None or y is None:
        return {}
    ax, ay = _args(x), _args(y)
    return {k: (ax.get(k), ay.get(k)) for k in list(ax) + [k for k in ay if k not in ax] if ax.get(k) != ay.get(k)}


def _figures(path: str, A: _Side, B: _Side) -> RowDiff:
    """The row of ``path`` with both sides' figures (status not yet decided)."""
    x, dx = A.rows.get(path, (None, None))
    y, dy = B.rows.get(path, (None, None))
    depth = dx if dx is not None else dy if dy is not None else 0
    saved = ((A.saved.get(path, 0) if x else None, B.saved.get(path, 0) if y else None)
             if A.saved is not None and B.saved is not None else (None, None))
    return RowDiff(
        path=path, status=SAME, type=(A.spec_type(path, x), B.spec_type(path, y)), depth=depth,
        args=_changed_args(x, y),
        output=(list(x.output) if x else None, list(y.output) if y else None),
        params=(x.params if x else None, y.params if y else None),
        macs=(x.macs if x else None, y.macs if y else None),
        receptive_field=(_rf(x), _rf(y)),
        saved_bytes=saved,
        is_block=bool((x is not None and x.children) or (y is not None and y.children)))


def _status(row: RowDiff, A: _Side, B: _Side) -> str:
    path, na, nb = row.path, A.unreached, B.unreached
    if path in na and path in nb and A.report.spec.layers[na[path][0]] == B.report.spec.layers[nb[path][0]]:
        return SAME  # written alike on both sides (neither analysed): not a change
    if A.at_error(path) or B.at_error(path):
        return ERROR
    if path in na or path in nb:
        return UNANALYSED
    if path not in A.rows:
        return ADDED
    if path not in B.rows:
        return REMOVED
    if row.type[0] != row.type[1] or row.changed_fields:
        return CHANGED
    return SAME


def _row(path: str, A: _Side, B: _Side) -> RowDiff:
    row = _figures(path, A, B)
    status = _status(row, A, B)
    note = _note(status, path, (A.report, A.unreached, A.first), (B.report, B.unreached, B.first)) \
        if status in (ERROR, UNANALYSED) else ""
    return RowDiff(**{**row.__dict__, "status": status, "note": note})


def _top_changes(ra: Report, rb: Report) -> dict[str, tuple[Any, Any]]:
    """The spec-level settings (input, batch, dtype) that differ."""
    top = {}
    for key in ("input", "batch", "dtype"):
        va, vb = getattr(ra.spec, key), getattr(rb.spec, key)
        if va != vb:
            top[key] = (list(va) if isinstance(va, tuple) else va, list(vb) if isinstance(vb, tuple) else vb)
    return top


def _totals(A: _Side, B: _Side) -> dict[str, dict[str, Any]]:
    ra, rb = A.report, B.report
    ta, tb = _partial_totals(ra), _partial_totals(rb)
    totals = {key: _total(ta[key], tb[key], both=ra.ok and rb.ok) for key in ("params", "trainable_params", "macs")}
    for key in ("saved_bytes", "training_peak_bytes", "inference_peak_bytes"):
        if key in A.memory or key in B.memory:
            totals[key] = _total(A.memory.get(key), B.memory.get(key))
    return totals


def diff(a, b, *, names: tuple[str, str] | None = None, cpu_isa: str | None = None) -> Diff:
    """Compare two specs (anything :func:`cnnshape.check` accepts, or Reports); memory peaks
    for the CPU kind ``cpu_isa`` (:mod:`cnnshape.cpu_isa`; None: this machine's)."""
    ra = a if isinstance(a, Report) else check(a)
    rb = b if isinstance(b, Report) else check(b)
    A, B = _Side.of(ra, cpu_isa), _Side.of(rb, cpu_isa)
    if names is None:
        names = (A.name("A"), B.name("B"))
    rows = tuple(_row(path, A, B) for path in _merged_order(A.order, B.order))
    return Diff(ra, rb, names, rows, _top_changes(ra, rb), _totals(A, B))


# ----------------------------------------------------------------------------- text forms
def _v(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _pct(entry: dict[str, Any]) -> str:
    pct = entry.get("pct")
    if pct is None:
        return ""
    return f"{pct:+.1f}%"


def _delta(entry: dict[str, Any]) -> str:
    d = entry.get("delta")
    if d is None:
        return ""
    return f"{d:+,}"


TOTAL_LABELS = {"params": "params", "trainable_params": "trainable params", "macs": "MACs",
                "saved_bytes": "saved for backward (bytes)", "training_peak_bytes": "training peak (bytes)",
                "inference_peak_bytes": "inference peak (bytes)"}


def _ripple(r: RowDiff) -> bool:
    """A changed row whose own arguments and type are unchanged and whose output shape and
    (for a layer) parameters are too: only knock-on figures moved (receptive field, MACs,
    a block's totals), caused by a change elsewhere."""
    if r.status != CHANGED or r.args or r.type[0] != r.type[1] or r.output[0] != r.output[1]:
        return False
    return r.is_block or r.params[0] == r.params[1]


def _shown(d: Diff) -> list[RowDiff]:
    """The changes worth a line: the children of an added/removed block are implied by it,
    the layers after an error are summarised once, knock-on changes are counted, not listed.
    Linear: a row is hidden when one of its path's prefixes is an added/removed row."""
    out, gone = [], set()
    for r in d.changes:
        parts = r.path.split(".")
        if any(".".join(parts[:k]) in gone for k in range(1, len(parts))) or _ripple(r):
            continue
        if r.status in (ADDED, REMOVED, UNANALYSED, ERROR):
            gone.add(r.path)
        out.append(r)
    return out


def _ripples(d: Diff) -> int:
    return sum(1 for r in d.changes if _ripple(r))


def _what(r: RowDiff) -> str:
    """One-line description of what changed in a row."""
    if r.status in (UNANALYSED, ERROR):
        return r.note
    if r.status == ADDED:
        return f"added {r.type[1]} → {_v(r.output[1])}, {_v(r.params[1])} params"
    if r.status == REMOVED:
        return f"removed {r.type[0]} ({_v(r.output[0])}, {_v(r.params[0])} params)"
    parts = []
    if r.type[0] != r.type[1]:
        parts.append(f"type {r.type[0]} → {r.type[1]}")
    parts += [f"{k}: {_v(a)} → {_v(b)}" for k, (a, b) in r.args.items()]
    for name, label in (("output", "output"), ("params", "params"), ("macs", "MACs"),
                        ("receptive_field", "RF"), ("saved_bytes", "saved")):
        a, b = getattr(r, name)
        if a != b:
            parts.append(f"{label} {_v(a)} → {_v(b)}")
    return "; ".join(parts)


def to_markdown(d: Diff) -> str:
    """A pull-request comment: summary, totals table, changed layers table."""
    c = d.counts()
    lines = [f"### cnnshape diff: {md_code(d.names[0])} → {md_code(d.names[1])}", ""]
    if d.same:
        lines += ["**Same architecture** (formatting and comments ignored).", ""]
    else:
        lines += [f"**{c[CHANGED]} changed, {c[ADDED]} added, {c[REMOVED]} removed layers/blocks"
                  + (f", {c[ERROR]} at an error" if c[ERROR] else "")
                  + (f", {c[UNANALYSED]} not analysed (after an error)" if c[UNANALYSED] else "") + ".**", ""]
    if _ripples(d):
        lines += [f"{_ripples(d)} more layers/blocks changed only as a consequence (receptive field, "
                  "MACs or block totals; listed in `--format json`).", ""]
    for side, rep in (("A", d.a), ("B", d.b)):
        if coverage(rep):
            lines += [f"{side}'s totals cover {md_text(coverage(rep))}; no change is computed.", ""]
    for key, (a, b) in d.top.items():
        lines.append(f"- `{key}`: {md_code(_v(a))} → {md_code(_v(b))}")
    if d.top:
        lines.append("")
    lines += ["| total | A | B | Δ | Δ% |", "|---|---:|---:|---:|---:|"]
    for key, e in d.totals.items():
        lines.append(f"| {TOTAL_LABELS.get(key, key)} | {_v(e['a'])} | {_v(e['b'])} | {_delta(e)} | {_pct(e)} |")
    if d.changes:
        lines += ["", "| layer | status | what changed |", "|---|---|---|"]
        for r in _shown(d):
            lines.append(f"| {md_code(r.path)} | {r.status} | {md_text(_what(r))} |")
    for side, rep in (("A", d.a), ("B", d.b)):
        for e in rep.errors:
            lines.append(f"\n> ✗ {side} line {e.line}: {md_text(e.message)}")
    return "\n".join(lines) + "\n"


def to_text(d: Diff) -> list[str]:
    """Plain lines (whole lines, no wrapping) for terminals and CI logs."""
    c = d.counts()
    out = [f"cnnshape diff {printable(d.names[0])} → {printable(d.names[1])}"]
    for key, (a, b) in d.top.items():
        out.append(f"  {key}: {_v(a)} → {_v(b)}")
    marks = {ADDED: "+", REMOVED: "-", CHANGED: "~", UNANALYSED: "?", ERROR: "✗"}
    for r in _shown(d):
        out.append(f"  {marks[r.status]} {'  ' * r.depth}{printable(r.path)}: {printable(_what(r))}")
    width = max(len(TOTAL_LABELS.get(k, k)) for k in d.totals)
    if _ripples(d):
        out.append(f"  ({_ripples(d)} more layers/blocks changed only as a consequence: receptive field, "
                   "MACs or block totals; see --format json)")
    for side, rep in (("A", d.a), ("B", d.b)):
        if coverage(rep):
            out.append(f"  {side}'s totals cover {coverage(rep)}; no change is computed:")
    for key, e in d.totals.items():
        out.append(f"  {TOTAL_LABELS.get(key, key).ljust(width)}  {_v(e['a']):>16} → {_v(e['b']):>16}"
                   f"  {_delta(e):>14} {_pct(e):>8}".rstrip())
    for side, rep in (("A", d.a), ("B", d.b)):
        for e in rep.errors:
            out.append(f"  ✗ {side} line {e.line}: {printable(e.message)}")
    out.append("same architecture" if d.same else
               f"differ: {c[CHANGED]} changed, {c[ADDED]} added, {c[REMOVED]} removed"
               + (f", {c[ERROR]} at an error" if c[ERROR] else "")
               + (f", {c[UNANALYSED]} not analysed (after an error)" if c[UNANALYSED] else ""))
    return out
