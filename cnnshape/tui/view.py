"""What the studio shows, as rich Text built from an Evaluation (no Textual here)."""

from dataclasses import dataclass

from rich.text import Text

from .markup import escape
from ..design import Design, Evaluation, format_value, type_of, values_of
from ..layers import LAYER_TYPES
from ..render import human, mb, rf_text, shape_text

STATUS_MARK = {"ok": ("✓", "green"), "warning": ("⚠", "yellow"), "error": ("✗", "bold red"),
               "unreached": ("·", "dim")}
COLUMNS = ("#", "name", "type", "output", "RF size /jump", "params", "MACs", "")


def input_cells(design: Design, ev: Evaluation) -> tuple:
    """The table's first row: the input shape (red when the top level has errors)."""
    inp = design.get("input")
    inp_text = shape_text(inp) if isinstance(inp, list) else repr(inp)
    top_bad = any(e.index is None for e in ev.errors)
    return (Text(""), Text("input", style="bold"), Text("Input", style="dim"),
            Text(inp_text, style="bold red" if top_bad else ""),
            Text("1" if isinstance(inp, list) and len(inp) > 1 else "-"), Text(""), Text(""),
            Text(*STATUS_MARK["error" if top_bad else "ok"]))


def totals_text(design: Design, ev: Evaluation) -> Text:
    rep = ev.report
    if rep is None:
        return Text("totals: fix the top-level errors first", style="red")
    t = rep.totals
    spec = rep.spec
    partial = "" if ev.ok else "  (up to the first error)"
    out = Text()
    out.append(f"params {t.params:,}", style="bold")
    out.append(f" (trainable {t.trainable_params:,}) = {mb(t.param_bytes)} {spec.dtype}   ")
    out.append(f"MACs {human(t.macs)}", style="bold")
    out.append(f"/sample   output {shape_text(rep.output) if rep.output else '-'}{partial}\n")
    out.append(f"batch {spec.batch}: input {mb(t.input_bytes)}, activations {mb(t.activation_bytes)} "
               f"(x2 with gradients), MACs {human(t.macs * spec.batch)}", style="dim")
    return out


def _arg_lines(data) -> list[str]:
    cls = LAYER_TYPES.get(type_of(data))
    values = values_of(data)
    lines = []
    if cls is None:
        return [f"  {escape(k)}: {escape(repr(v))}" for k, v in values.items()]
    for key, arg in cls.ARGS.items():
        if key in values:
            shown = format_value(values[key])
            shown = shown if len(shown) < 60 else f"{shown[:57]}..."
            lines.append(f"  [b]{key}[/b]: {escape(shown)}")
        elif arg.required:
            lines.append(f"  [b red]{key}[/]: [red]missing (required)[/]")
        elif arg.kind not in ("layers", "overrides"):
            lines.append(f"  [dim]{key}: {escape(format_value(arg.default))} (default)[/]")
    return lines


def details_markup(design: Design, ev: Evaluation, node: "Node | None") -> str:
    """Markup for the details pane; ``node`` None means the input row."""
    if node is None:
        lines = ["[b]Input[/b]  (e: edit input shape, batch, dtype, name)", ""]
        for k, v in design.top:
            lines.append(f"  [b]{k}[/b]: {escape(format_value(v))}")
        errs = [d for d in ev.errors if d.index is None]
        lines += _diag_lines(errs)
        lines += ["", "[dim]Shapes are per sample, channels first, batch excluded: "
                  "[C, H, W] for images, [C, L] for sequences, [C, D, H, W] for volumes.[/]"]
        return "\n".join(lines)
    from ..design import get_data

    data = get_data(design, node.path)
    lr = node.report
    title = f"[b]{escape(node.label)} · {escape(node.type)}[/b]"
    if node.depth:
        title += f"  [dim](inside item {node.path[0]})[/]"
    lines = [title]
    if lr is not None:
        lines.append(f"{shape_text(lr.input)} → [b]{shape_text(lr.output)}[/b]")
        frozen = "" if lr.trainable_params or not lr.params else " (frozen)"
        lines.append(f"params {lr.params:,}{frozen} · MACs {lr.macs:,}")
        rf = lr.receptive_field
        if rf is not None:
            lines.append("receptive field " + " x ".join(str(a.size) for a in rf) + " px, jump "
                         + " x ".join(str(a.jump) for a in rf) + ", first centre "
                         + ", ".join(f"{a.start:g}" for a in rf))
        else:
            lines.append("[dim]receptive field: undefined here (positions were mixed)[/]")
        formulas = lr.layer.explain(lr.input) if lr.layer is not None and not lr.layer.is_block else []
        if formulas:
            lines += ["", "[b]output size[/b] (floor((in + 2*pad - dil*(k-1) - 1)/stride + 1)):"]
            lines += [f"  {escape(f)}" for f in formulas]
        if node.is_block:
            lines.append(f"[dim]{len(list(lr.walk())) - 1} rows inside ({'→' if not node.expanded else '←'}: "
                         f"{'expand' if not node.expanded else 'collapse'})[/]")
    elif node.status == "unreached":
        lines.append("[dim]not analysed: an earlier layer has an error[/]")
    lines += ["", "[b]arguments[/b] (e: edit)"] + _arg_lines(data)
    top = node.path[0]
    diags = [d for d in (*ev.errors, *ev.warnings) if d.index == top and
             (node.depth == 0 or d.name == node.label or (d.name or "").startswith(node.label + "."))]
    lines += _diag_lines(diags)
    t = node.type
    cls = LAYER_TYPES.get(t)
    if cls is not None and cls.__doc__:
        lines += ["", f"[dim]{escape(cls.__doc__.strip().splitlines()[0])}[/]"]
    return "\n".join(lines)


def _diag_lines(diags) -> list[str]:
    out = []
    for d in diags:
        color = "red" if d.severity == "error" else "yellow"
        out += ["", f"[b {color}]{d.severity}[/]: {escape(d.message)}"]
        if d.hint:
            out.append(f"  [cyan]fix:[/] {escape(d.hint)}")
        if d.fix:
            out.append("  [b]press f to apply[/b]: " + ", ".join(
                f"{k}: {'(remove)' if v is None else v}" for k, v in d.fix.items()))
    return out


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


def _block_class(data):
    """The block class of raw item ``data`` (None for a leaf or an unknown type)."""
    cls = LAYER_TYPES.get(type_of(data))
    return cls if cls is not None and cls.is_block else None


def tree_nodes(design: Design, ev: Evaluation, expanded, everything: bool = False) -> list[Node]:
    """Rows of the layer table: top-level items, and the children of expanded blocks."""
    errors = {(e.index, e.name) for e in ev.errors}
    warns = {(w.index, w.name) for w in ev.warnings}
    out: list[Node] = []

    def visit(path, data, rr, label, depth, top_status, top, first=None, parent=""):
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
        out.append(Node(path, depth, label, str(t), status, rr, block, is_open, note, short))
        if is_open and isinstance(data, dict):
            for cpath, cdata, crr, clabel, cfirst in cls.tree_children(data, rr, path, label, first):
                if isinstance(cdata, dict) and cdata.get("inline") is True and _block_class(cdata):
                    clabel = label  # an inline block's layers take their names on this module
                visit(cpath, cdata, crr, clabel, depth + 1, status, top, cfirst, label)

    for row, item in zip(ev.rows, design.items):
        visit((row.index,), item.data, row.report, row.name, 0, row.status, row.index)
    return out


def node_cells(node: Node) -> tuple:
    mark, style = STATUS_MARK[node.status]
    lr = node.report
    dim = "dim" if node.status == "unreached" else ("red" if node.status == "error" else "")
    twisty = ("▾ " if node.expanded else "▸ ") if node.is_block else "  "
    label = "  " * node.depth + twisty + (node.short or node.label)
    if lr is not None:
        params = f"{lr.params:,}" + ("" if lr.trainable_params or not lr.params else " ❄")
        cells = (shape_text(lr.output), rf_text(lr.receptive_field), params, human(lr.macs) if lr.macs else "0")
    else:
        cells = ("✗ error" if node.status == "error" else "?", "", "", "")
    idx = str(node.path[0]) if node.depth == 0 else ""
    return (Text(idx, style=dim), Text(label, style=dim), Text(node.type + (f" {node.note}" if node.note else ""), style=dim),
            *(Text(c, style=dim) for c in cells), Text(mark, style=style))
