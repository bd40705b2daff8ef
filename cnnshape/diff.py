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
from typing import Any

from .analysis import LayerReport, Report, check

#: row statuses, in the order a reader cares about them
ADDED, REMOVED, CHANGED, SAME = "added", "removed", "changed", "same"
#: a layer present in one spec whose counterpart exists but was not analysed (after an error)
UNANALYSED = "not analysed"
_SEQ_KINDS = ("layers", "branches", "overrides")


def _args(row: LayerReport | None) -> dict[str, Any]:
    """The arguments of a row as written (children excluded: they are rows of their own)."""
    if row is None or row.layer is None:
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
        return d


def _total(a: int | None, b: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"a": a, "b": b}
    if a is not None and b is not None:
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
        out = {ADDED: 0, REMOVED: 0, CHANGED: 0, UNANALYSED: 0}
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


def _rows_by_path(report: Report) -> dict[str, tuple[LayerReport, int]]:
    out: dict[str, tuple[LayerReport, int]] = {}

    def visit(row: LayerReport, depth: int) -> None:
        out.setdefault(row.path or row.name, (row, depth))
        for c in row.children:
            visit(c, depth + 1)

    # rows from the first error on were analysed on assumed shapes (recovery): not compared
    first = min((d.index for d in report.errors if d.index is not None), default=None)
    for row in report.layers:
        if first is not None and row.index >= first:
            break
        visit(row, 0)
    return out


def _unanalysed(report: Report, path: str) -> bool:
    """True when ``path``'s top-level layer exists in ``report``'s spec at or after its first
    error (so the analysis never reached it: absent, but not removed)."""
    if report.ok:
        return False
    first = min((d.index for d in report.errors if d.index is not None), default=None)
    if first is None:
        return True
    top = path.split(".", 1)[0]
    names = report.spec.names
    return top in names and names.index(top) >= first


def _merged_order(a: list[str], b: list[str]) -> list[str]:
    """A's paths in order, B's new paths inserted after their predecessor in B."""
    out = list(a)
    seen = set(a)
    for i, p in enumerate(b):
        if p in seen:
            continue
        before = next((b[j] for j in range(i - 1, -1, -1) if b[j] in seen), None)
        pos = out.index(before) + 1 if before is not None else 0
        # keep B's consecutive additions in B's order
        while pos < len(out) and out[pos] not in a and out[pos] in b and b.index(out[pos]) < i:
            pos += 1
        out.insert(pos, p)
        seen.add(p)
    return out


def _memory(report: Report) -> tuple[dict[str, int] | None, dict[str, int]]:
    """(saved-for-backward bytes per module path, memory totals) from the memory model;
    (None, {}) for a spec with errors (its figures would cover part of the network)."""
    if not report.ok:
        return None, {}
    from .memory import estimate, saved_per_path

    est = estimate(report)
    per_path = saved_per_path(est)  # a block's share: what the layers inside it keep
    totals = {"saved_bytes": est.saved_bytes, "training_peak_bytes": est.training_peak_bytes,
              "inference_peak_bytes": est.inference_peak_bytes}
    return per_path, totals


def diff(a, b, *, names: tuple[str, str] | None = None) -> Diff:
    """Compare two specs (anything :func:`cnnshape.check` accepts, or Reports)."""
    ra = a if isinstance(a, Report) else check(a)
    rb = b if isinstance(b, Report) else check(b)
    if names is None:
        names = (ra.spec.source.path if ra.spec.source and ra.spec.source.path else "A",
                 rb.spec.source.path if rb.spec.source and rb.spec.source.path else "B")
    pa, pb = _rows_by_path(ra), _rows_by_path(rb)
    (sa, ma), (sb, mb) = _memory(ra), _memory(rb)
    rows = []
    for path in _merged_order(list(pa), list(pb)):
        x, dx = pa.get(path, (None, None))
        y, dy = pb.get(path, (None, None))
        depth = dx if dx is not None else dy
        block = bool((x is not None and x.children) or (y is not None and y.children))
        args: dict[str, tuple[Any, Any]] = {}
        if x is not None and y is not None:
            ax, ay = _args(x), _args(y)
            for k in list(ax) + [k for k in ay if k not in ax]:
                if ax.get(k) != ay.get(k):
                    args[k] = (ax.get(k), ay.get(k))
        row = RowDiff(
            path=path, status=SAME, type=(x.type if x else None, y.type if y else None), depth=depth,
            args=args,
            output=(list(x.output) if x else None, list(y.output) if y else None),
            params=(x.params if x else None, y.params if y else None),
            macs=(x.macs if x else None, y.macs if y else None),
            receptive_field=(_rf(x), _rf(y)),
            saved_bytes=((sa.get(path, 0) if x else None, sb.get(path, 0) if y else None)
                         if sa is not None and sb is not None else (None, None)),
            is_block=block)
        if x is None:
            status = UNANALYSED if _unanalysed(ra, path) else ADDED
        elif y is None:
            status = UNANALYSED if _unanalysed(rb, path) else REMOVED
        elif x.type != y.type or row.changed_fields:
            status = CHANGED
        else:
            status = SAME
        rows.append(RowDiff(**{**row.__dict__, "status": status}))
    top = {}
    for key in ("input", "batch", "dtype"):
        va, vb = getattr(ra.spec, key), getattr(rb.spec, key)
        if va != vb:
            top[key] = (list(va) if isinstance(va, tuple) else va, list(vb) if isinstance(vb, tuple) else vb)
    ta, tb = ra.totals, rb.totals
    totals = {"params": _total(ta.params, tb.params),
              "trainable_params": _total(ta.trainable_params, tb.trainable_params),
              "macs": _total(ta.macs, tb.macs)}
    for key in ("saved_bytes", "training_peak_bytes", "inference_peak_bytes"):
        if key in ma or key in mb:
            totals[key] = _total(ma.get(key), mb.get(key))
    return Diff(ra, rb, names, tuple(rows), top, totals)


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
    the layers after an error are summarised once, knock-on changes are counted, not listed."""
    out, gone = [], []
    for r in d.changes:
        if any(r.path.startswith(g + ".") for g in gone) or _ripple(r):
            continue
        if r.status in (ADDED, REMOVED, UNANALYSED):
            gone.append(r.path)
        out.append(r)
    return out


def _ripples(d: Diff) -> int:
    return sum(1 for r in d.changes if _ripple(r))


def _what(r: RowDiff) -> str:
    """One-line description of what changed in a row."""
    if r.status == UNANALYSED:
        side = "A" if r.type[0] is None else "B"
        return f"not analysed in {side} (after an error there)"
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
    lines = [f"### cnnshape diff: `{d.names[0]}` → `{d.names[1]}`", ""]
    if d.same:
        lines += ["**Same architecture** (formatting and comments ignored).", ""]
    else:
        lines += [f"**{c[CHANGED]} changed, {c[ADDED]} added, {c[REMOVED]} removed layers/blocks"
                  + (f", {c[UNANALYSED]} not analysed (after an error)" if c[UNANALYSED] else "") + ".**", ""]
    if _ripples(d):
        lines += [f"{_ripples(d)} more layers/blocks changed only as a consequence (receptive field, "
                  "MACs or block totals; listed in `--format json`).", ""]
    if not (d.a.ok and d.b.ok):
        lines += ["Totals cover the analysed layers only (a spec has errors).", ""]
    for key, (a, b) in d.top.items():
        lines.append(f"- `{key}`: `{_v(a)}` → `{_v(b)}`")
    if d.top:
        lines.append("")
    lines += ["| total | A | B | Δ | Δ% |", "|---|---:|---:|---:|---:|"]
    for key, e in d.totals.items():
        lines.append(f"| {TOTAL_LABELS.get(key, key)} | {_v(e['a'])} | {_v(e['b'])} | {_delta(e)} | {_pct(e)} |")
    if d.changes:
        lines += ["", "| layer | status | what changed |", "|---|---|---|"]
        for r in _shown(d):
            what = _what(r).replace("|", "\\|")
            lines.append(f"| `{r.path}` | {r.status} | {what} |")
    for side, rep in (("A", d.a), ("B", d.b)):
        for e in rep.errors:
            lines.append(f"\n> ✗ {side} line {e.line}: {e.message}")
    return "\n".join(lines) + "\n"


def to_text(d: Diff) -> list[str]:
    """Plain lines (whole lines, no wrapping) for terminals and CI logs."""
    c = d.counts()
    out = [f"cnnshape diff {d.names[0]} → {d.names[1]}"]
    for key, (a, b) in d.top.items():
        out.append(f"  {key}: {_v(a)} → {_v(b)}")
    marks = {ADDED: "+", REMOVED: "-", CHANGED: "~", UNANALYSED: "?"}
    for r in _shown(d):
        out.append(f"  {marks[r.status]} {'  ' * r.depth}{r.path}: {_what(r)}")
    width = max(len(TOTAL_LABELS.get(k, k)) for k in d.totals)
    if _ripples(d):
        out.append(f"  ({_ripples(d)} more layers/blocks changed only as a consequence: receptive field, "
                   "MACs or block totals; see --format json)")
    if not (d.a.ok and d.b.ok):
        out.append("  totals cover the analysed layers only (a spec has errors):")
    for key, e in d.totals.items():
        out.append(f"  {TOTAL_LABELS.get(key, key).ljust(width)}  {_v(e['a']):>16} → {_v(e['b']):>16}"
                   f"  {_delta(e):>14} {_pct(e):>8}".rstrip())
    for side, rep in (("A", d.a), ("B", d.b)):
        for e in rep.errors:
            out.append(f"  ✗ {side} line {e.line}: {e.message}")
    out.append("same architecture" if d.same else
               f"differ: {c[CHANGED]} changed, {c[ADDED]} added, {c[REMOVED]} removed"
               + (f", {c[UNANALYSED]} not analysed (after an error)" if c[UNANALYSED] else ""))
    return out
