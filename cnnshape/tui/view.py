"""What the studio shows, as rich Text built from an Evaluation (no Textual here)."""

from dataclasses import dataclass

from rich.text import Text

from ..design import Design, Evaluation, format_value, type_of, values_of
from ..layers import LAYER_TYPES
from ..units import binary_bytes as nbytes  # the one byte formatter (binary units, as check)
from ..render import human, rf_text, shape_text
from .markup import escape

STATUS_MARK = {"ok": ("✓", "green"), "warning": ("⚠", "yellow"), "error": ("✗", "bold red"),
               "unreached": ("·", "dim")}
#: (key, heading) of the table's columns, in display order
COLUMNS = (("mark", ""), ("index", "#"), ("name", "name"), ("output", "output"), ("type", "type"),
           ("params", "params"), ("macs", "MACs"), ("rf", "RF size /jump"))
#: the columns always shown (what identifies a row, the status and the output shape), and
#: the others in the order they get the room that is left (params and MACs give way first)
REQUIRED = ("mark", "name", "output", "type")
OPTIONAL = ("index", "rf", "params", "macs")


def visible_columns(rows: list[dict], width: int) -> tuple:
    """The columns that fit in ``width`` cells (each column: its widest cell + 2 padding):
    the status mark, the name, the output shape and the type always; then each other
    column, most important first, when it still fits."""
    widths = {key: max([len(head)] + [r[key].cell_len for r in rows]) + 2 for key, head in COLUMNS}
    keep = list(REQUIRED)
    used = sum(widths[k] for k in keep)
    for key in OPTIONAL:
        if used + widths[key] <= width:
            keep.append(key)
            used += widths[key]
    return tuple((key, head) for key, head in COLUMNS if key in keep)


#: the narrowest a type or name cell is cut to (with an ellipsis) when the columns do not fit
MIN_CUT = {"type": 11, "name": 8}


def column_widths(rows: list[dict], columns, width: int) -> dict:
    """Content widths of ``columns`` (cells + 2 padding must fit in ``width``): each its
    widest cell; when they do not fit, the type column gives way first, then the name (the
    name tells nested rows apart), not below MIN_CUT. Cells wider than their column are cut
    with "…"."""
    widths = {key: max([len(head)] + [r[key].cell_len for r in rows]) for key, head in columns}
    over = sum(w + 2 for w in widths.values()) - width
    for key in ("type", "name"):
        if over > 0 and key in widths:
            cut = min(over, max(0, widths[key] - MIN_CUT[key]))
            widths[key] -= cut
            over -= cut
    for key in ("name", "type"):
        if key in widths:
            for r in rows:
                if r[key].cell_len > widths[key]:
                    r[key].truncate(widths[key], overflow="ellipsis")
    return widths


def input_cells(design: Design, ev: Evaluation) -> dict:
    """The table's first row: the input shape (red when the top level has errors; the
    valid input sizes are in the details pane, where they fit)."""
    inp = design.get("input")
    inp_text = shape_text(inp) if isinstance(inp, list) else repr(inp)
    top_bad = any(e.index is None for e in ev.errors)
    return {"mark": Text(*STATUS_MARK["error" if top_bad else "ok"]), "index": Text(""),
            "name": Text("input", style="bold"), "output": Text(inp_text, style="bold red" if top_bad else ""),
            "type": Text("Input", style="dim"),
            "params": Text(""), "macs": Text(""),
            "rf": Text("1" if isinstance(inp, list) and len(inp) > 1 else "-")}


def totals_text(design: Design, ev: Evaluation, memory: str | None = None) -> Text:
    rep = ev.report
    if rep is None:
        return Text("totals: fix the top-level errors first", style="red")
    t = rep.totals
    spec = rep.spec
    reached = len(rep.layers) == len(design.items)
    partial = "" if ev.ok else "  (with errors: as analysed)" if reached else "  (up to the first error)"
    out = Text()
    out.append(f"params {t.params:,}", style="bold")
    out.append(f" (trainable {t.trainable_params:,}) = {nbytes(t.param_bytes)} {spec.dtype}   ")
    out.append(f"MACs {human(t.macs)}", style="bold")
    last = rep.output or (rep.layers[-1].output if reached and rep.layers else None)
    out.append(f"/sample   output {shape_text(last) if last else '-'}{partial}\n")
    if memory:
        out.append(f"batch {spec.batch}: input {nbytes(t.input_bytes)}, MACs {human(t.macs * spec.batch)}; {memory}",
                   style="dim")
    else:
        out.append(f"batch {spec.batch}: input {nbytes(t.input_bytes)}, activations {nbytes(t.activation_bytes)}, "
                   f"MACs {human(t.macs * spec.batch)}", style="dim")
    return out


def _arg_lines(data, override: dict | None = None) -> list[str]:
    """The arguments as written; ``override``: a Repeat's ``first:`` changes of this layer
    (shown as the value the first copy really has)."""
    cls = LAYER_TYPES.get(type_of(data))
    values = values_of(data)
    override = override or {}
    lines = []
    if cls is None:
        return [f"  {escape(k)}: {escape(format_value(v))}" for k, v in values.items()]
    for key, arg in cls.ARGS.items():
        if key in override:
            body = format_value(values[key]) if key in values else f"{format_value(arg.default)} (default)"
            lines.append(f"  [b]{key}[/b]: [b]{escape(format_value(override[key]))}[/b] "
                         f"[cyan](first copy, set by first:; the other copies: {escape(body)})[/]")
        elif key in values and arg.kind == "layers" and isinstance(values[key], list):
            n = len(values[key])
            lines.append(f"  [b]{key}[/b]: {n} layer{'s' if n != 1 else ''} [dim](rows below when open)[/]")
        elif key in values:
            shown = format_value(values[key])
            shown = shown if len(shown) < 200 else f"{shown[:197]}..."
            lines.append(f"  [b]{key}[/b]: {escape(shown)}")
        elif arg.required:
            lines.append(f"  [b red]{key}[/]: [red]missing (required)[/]")
        elif arg.kind not in ("layers", "overrides"):
            lines.append(f"  [dim]{key}: {escape(format_value(arg.default))} (default)[/]")
    return lines


def doc_markup(doc: str | None) -> str:
    """A layer docstring for the details pane: paragraphs joined into lines that the pane
    wraps on words, ``code`` shown bold (not as raw reST markup)."""
    import inspect
    import re

    if not doc:
        return ""
    paras = [" ".join(p.split()) for p in inspect.cleandoc(doc).split("\n\n") if p.strip()]
    text = "\n".join(escape(p) for p in paras)
    return re.sub(r"``(.+?)``", r"[b]\1[/b]", text)


def fix_line(fix) -> list[str]:
    """The promise of ``f``: shown only when there is a fix, saying what it changes."""
    return [f"[b]press f[/b]: {escape(fix.label)}"] if fix is not None else []


def _input_details(design: Design, ev: Evaluation, sizes: str | None, fix) -> str:
    """The details of the input row."""
    lines = ["[b]Input[/b]  (e: edit input shape, batch, dtype, name)"]
    errs = [d for d in ev.errors if d.index is None]
    lines += _diag_lines(errs)
    if fix is not None:
        lines += [""] + fix_line(fix)
    lines.append("")
    for k, v in design.top:
        lines.append(f"  [b]{k}[/b]: {escape(format_value(v))}")
    if sizes:
        lines += ["", f"[b]valid input sizes[/b]: {escape(sizes)}"]
    lines += ["", ("[dim]Shapes are per sample, channels first, batch excluded: "
                   "[C, H, W] for images, [C, L] for sequences, [C, D, H, W] for volumes.[/]")]
    return "\n".join(lines)


def _around_lines(around) -> list[str]:
    """The block around fails (its add): this layer is not analysed on its own."""
    out = []
    for d in around:
        color = "red" if d.severity == "error" else "yellow"
        out += ["", f"[b {color}]{d.severity} in {escape(d.name)}[/] (around this layer): {escape(d.message)}"]
        if d.hint:
            out.append(f"  [cyan]fix:[/] {escape(d.hint)}")
    return out


def _rf_line(rf) -> str:
    if rf is None:
        return "[dim]receptive field: undefined here (positions were mixed)[/]"
    return ("receptive field " + " x ".join(str(a.size) for a in rf) + " px, jump "
            + " x ".join(str(a.jump) for a in rf) + ", first centre " + ", ".join(f"{a.start:g}" for a in rf))


def _figure_lines(node: "Node", lr) -> list[str]:
    """An analysed row's parameters, MACs, receptive field, output-size formulas."""
    frozen = "" if lr.trainable_params or not lr.params else " (frozen)"
    lines = ["", f"params {lr.params:,}{frozen} · MACs {lr.macs:,}", _rf_line(lr.receptive_field)]
    formulas = lr.layer.explain(lr.input) if not lr.layer.is_block else []
    if formulas:
        lines += ["", "[b]output size[/b] (floor((in + 2*pad - dil*(k-1) - 1)/stride + 1)):"]
        lines += [f"  {escape(f)}" for f in formulas]
    if node.is_block:
        lines.append(f"[dim]{node.inside} rows when open ({'→' if not node.expanded else '←'}: "
                     f"{'open' if not node.expanded else 'close'})[/]")
    return lines


def _title_lines(node: "Node") -> list[str]:
    title = f"[b]{escape(node.label)} · {escape(node.type)}[/b]"
    if node.depth:
        title += f"  [dim](inside item {node.path[0]})[/]"
    lines = [title]
    if node.copy:
        lines.append(f"[cyan]copy {node.copy + 1} of the Repeat: the same layers as its first copy "
                     f"(without the first: changes). Edit them in the first copy (.0): every copy follows.[/]")
    if node.report is not None:
        lines.append(f"{shape_text(node.report.input)} → [b]{shape_text(node.report.output)}[/b]")
    return lines


def details_markup(design: Design, ev: Evaluation, node: "Node | None", sizes: str | None = None,
                   fix=None) -> str:
    """Markup for the details pane; ``node`` None means the input row (``sizes``: the valid
    input sizes, when known; ``fix``: what ``f`` would do here, see design.choose_fix).
    The problems of the row and their hints come first, where a small pane shows them."""
    if node is None:
        return _input_details(design, ev, sizes, fix)
    from ..design import diagnostics_of, first_copy_override, get_data

    data = get_data(design, node.path)
    lr = node.report
    lines = _title_lines(node)
    override = first_copy_override(get_data(design, node.first[0]), node.first[1]) if node.first else {}
    own, around = diagnostics_of(ev, node.path[0], node.label, node.depth)
    if lr is None and node.status != "error" and not own and not around:
        lines.append("[dim]not analysed: an earlier layer has an error[/]")
    lines += _diag_lines(own) + _around_lines(around)
    if fix is not None:
        lines += [""] + fix_line(fix)
    if lr is not None:
        lines += _figure_lines(node, lr)
    lines += ["", "[b]arguments[/b] (e: edit)"] + _arg_lines(data, override)
    cls = LAYER_TYPES.get(node.type)
    if cls is not None and cls.__doc__:
        lines += ["", f"[dim]{doc_markup(cls.__doc__)}[/]"]
    return "\n".join(lines)


def _diag_lines(diags) -> list[str]:
    out = []
    for d in diags:
        color = "red" if d.severity == "error" else "yellow"
        out += ["", f"[b {color}]{d.severity}[/]: {escape(d.message)}"]
        if d.hint:
            out.append(f"  [cyan]fix:[/] {escape(d.hint)}")
    return out


def preview_markup(trial: Design, path: tuple, label: str) -> str:
    """The edit form's live line: the layer's output for the values typed so far, or the
    error they cause, on the layer itself or on a block around it (a Residual add)."""
    from ..design import diagnostics_of, evaluate

    ev = evaluate(trial)
    me = next((n for n in tree_nodes(trial, ev, set(), everything=True) if n.path == path and not n.copy), None)
    own, around = diagnostics_of(ev, path[0], label, me.depth if me else len(path) > 1)
    own = [d for d in own if d.severity == "error"]
    around = [d for d in around if d.severity == "error"]

    def errs(ds, where=""):
        return "\n".join(f"[red]✗ {escape(where or '')}{escape(d.message)}[/]\n  [cyan]{escape(d.hint)}[/]" for d in ds)
    if me is not None and me.report is not None and not own:
        out = f"output → [b]{shape_text(me.report.output)}[/b]"
        if around:
            return out + "\n" + errs(around[:1], f"{around[0].name}: ")
        if not ev.ok:
            out += f"\n[red]then: {escape(ev.errors[0].name)}: {escape(ev.errors[0].message)}[/]"
        return out
    if own:
        return errs(own)
    if around:
        return errs(around[:1], f"{around[0].name}: ")
    return "[dim]not analysed (an earlier layer has an error)[/]"


def diagnostic_label(d) -> str:
    where = f"{d.index} {d.name}" if d.index is not None else "top"
    color = "red" if d.severity == "error" else "yellow"
    mark = "✗" if d.severity == "error" else "⚠"
    fix = "  [b](f: fix)[/b]" if d.fix else ""
    return f"[{color}]{mark}[/] [b]{escape(where)}[/b]: {escape(d.message)}{fix}"


# ----------------------------------------------------------------------- tree
@dataclass(frozen=True)
class Node:
    """One row of the layer tree: a layer or block at data ``path`` (see design.get_data)."""

    path: tuple
    depth: int
    label: str            # dotted module path (state_dict prefix) or index
    type: str
    status: str
    report: object        # LayerReport | None
    is_block: bool
    expanded: bool
    note: str = ""
    short: str = ""       # the label relative to the enclosing block ("conv1", "downsample.0")
    first: tuple | None = None  # (Repeat path, path inside the copy) for a layer of a Repeat's first copy
    copy: int = 0         # a Repeat's copies 2..n (listed collapsed; they share the body): the index
    inside: int = 0       # rows shown when this block is opened


def _block_class(data):
    """The block class of raw item ``data`` (None for a leaf or an unknown type)."""
    cls = LAYER_TYPES.get(type_of(data))
    return cls if cls is not None and cls.is_block else None


def tree_nodes(design: Design, ev: Evaluation, expanded, everything: bool = False) -> list[Node]:
    """Rows of the layer table: top-level items, and the children of expanded blocks.

    An open Repeat lists its first copy's layers (editable; ``first:`` changes shown) and
    then its other copies as collapsed rows."""
    errors = {(e.index, e.name) for e in ev.errors}
    warns = {(w.index, w.name) for w in ev.warnings}
    out: list[Node] = []

    def visit(path, data, rr, label, depth, top_status, top, first=None, parent="", copy0=None):
        cls = _block_class(data)
        block = cls is not None
        is_open = block and (everything or path in expanded)
        if (top, label) in errors:
            status = "error"
        elif top_status in ("unreached", "error") and depth:
            status = "unreached" if rr is None else top_status if top_status == "unreached" else "ok"
        elif (top, label) in warns:
            status = "warning"
        else:
            status = top_status if depth == 0 else ("ok" if rr is not None else "unreached")
        t = type_of(data)
        note = cls.tree_note(data) if block and isinstance(data, dict) else ""
        short = label[len(parent) + 1:] if parent and label.startswith(parent + ".") else label
        rel = label[len(copy0[1]) + 1:] if copy0 and label.startswith(copy0[1] + ".") else None
        kids = cls.tree_children(data, rr, path, label, first) if block and isinstance(data, dict) else []
        # a block of n copies whose first may differ (Repeat): the kids are the first copy's
        n_copies = data.get("n") if kids and "first" in cls.ARGS and isinstance(data.get("n"), int) else 1
        out.append(Node(path, depth, label, str(t), status, rr, block, is_open, note, short,
                        (copy0[0], rel) if rel else None, 0, len(kids) + max(0, n_copies - 1)))
        if not is_open:
            return
        inner_copy = copy0
        if n_copies > 1 or (kids and "first" in cls.ARGS):
            k0 = kids[0][3]
            inner_copy = (path, k0 if len(data.get("body") or ()) == 1 else k0.rsplit(".", 1)[0])
        for cpath, cdata, crr, clabel, cfirst in kids:
            if isinstance(cdata, dict) and cdata.get("inline") is True and _block_class(cdata):
                clabel = label  # an inline block's layers take their names on this module
            visit(cpath, cdata, crr, clabel, depth + 1, status, top, cfirst, label, inner_copy)
        if n_copies > 1:
            body = data.get("body") if isinstance(data.get("body"), list) else []
            copies = list(rr.children) if rr is not None else []
            kind = type_of(body[0]) if len(body) == 1 else "copy"
            for i in range(1, n_copies):
                crr = copies[i] if i < len(copies) else None
                clabel = crr.path if crr is not None and getattr(crr, "path", None) else f"{label}.{i}"
                out.append(Node(path + ("body", 0), depth + 1, clabel, kind, "ok" if crr is not None else "unreached",
                                crr, False, False, f"copy {i + 1}/{n_copies}", clabel[len(label) + 1:], None, i))

    for row, item in zip(ev.rows, design.items):
        visit((row.index,), item.data, row.report, row.name, 0, row.status, row.index)
    return out


def node_cells(node: Node) -> tuple:
    mark, style = STATUS_MARK[node.status]
    lr = node.report
    dim = "dim" if node.status == "unreached" else ("red" if node.status == "error" else "")
    twisty = ("▾ " if node.expanded else "▸ ") if node.is_block else "≡ " if node.copy else "  "
    label = " " * node.depth + twisty + (node.short or node.label)
    if lr is not None:
        params = f"{lr.params:,}" + ("" if lr.trainable_params or not lr.params else " ❄")
        cells = (shape_text(lr.output), rf_text(lr.receptive_field), params, human(lr.macs) if lr.macs else "0")
    else:
        cells = ("✗ error" if node.status == "error" else "?", "", "", "")
    idx = str(node.path[0]) if node.depth == 0 else ""
    out, rf, params, macs = (Text(c, style=dim) for c in cells)
    return {"mark": Text(mark, style=style), "index": Text(idx, style=dim), "name": Text(label, style=dim),
            "output": out, "type": Text(node.type + (f" {node.note}" if node.note else ""), style=dim),
            "params": params, "macs": macs, "rf": rf}
