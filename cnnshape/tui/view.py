"""What the studio shows, as rich Text built from an Evaluation (no Textual here)."""

from rich.text import Text

from .markup import escape
from ..design import Design, Evaluation, Item, format_value
from ..layers import LAYER_TYPES
from ..render import human, mb, rf_text, shape_text

STATUS_MARK = {"ok": ("✓", "green"), "warning": ("⚠", "yellow"), "error": ("✗", "bold red"),
               "unreached": ("·", "dim")}
COLUMNS = ("#", "name", "type", "output", "RF size /jump", "params", "MACs", "")


def table_rows(design: Design, ev: Evaluation) -> list[tuple]:
    """The input row, then one row per layer (cells as Text)."""
    inp = design.get("input")
    inp_text = shape_text(inp) if isinstance(inp, list) else repr(inp)
    top_bad = any(e.index is None for e in ev.errors)
    rows = [(Text(""), Text("input", style="bold"), Text("Input", style="dim"),
             Text(inp_text, style="bold red" if top_bad else ""),
             Text("1" if isinstance(inp, list) and len(inp) > 1 else "-"), Text(""), Text(""),
             Text(*STATUS_MARK["error" if top_bad else "ok"]))]
    for row in ev.rows:
        mark, style = STATUS_MARK[row.status]
        lr = row.report
        dim = "dim" if row.status == "unreached" else ("red" if row.status == "error" else "")
        if lr is not None:
            params = f"{lr.params:,}" + ("" if lr.trainable_params or not lr.params else " ❄")
            cells = (shape_text(lr.output), rf_text(lr.receptive_field), params, human(lr.macs) if lr.macs else "0")
        else:
            cells = ("✗ error" if row.status == "error" else "?", "", "", "")
        rows.append((Text(str(row.index), style=dim), Text(row.name, style=dim), Text(row.type, style=dim),
                     *(Text(c, style=dim) for c in cells), Text(mark, style=style)))
    return rows


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


def _arg_lines(item: Item) -> list[str]:
    cls = LAYER_TYPES.get(item.type)
    values = item.values
    lines = []
    if cls is None:
        return [f"  {escape(k)}: {escape(repr(v))}" for k, v in values.items()]
    for key, arg in cls.ARGS.items():
        if key in values:
            v = values[key]
            shown = format_value(v)
            shown = shown if len(shown) < 60 else f"{shown[:57]}..."
            lines.append(f"  [b]{key}[/b]: {escape(shown)}")
        elif arg.required:
            lines.append(f"  [b red]{key}[/]: [red]missing (required)[/]")
        else:
            lines.append(f"  [dim]{key}: {escape(format_value(arg.default))} (default)[/]")
    return lines


def details_markup(design: Design, ev: Evaluation, index: int | None) -> str:
    """Markup for the details pane; ``index`` None means the input row."""
    if index is None:
        lines = ["[b]Input[/b]  (e: edit input shape, batch, dtype, name)", ""]
        for k, v in design.top:
            lines.append(f"  [b]{k}[/b]: {escape(format_value(v))}")
        errs = [d for d in ev.errors if d.index is None]
        lines += _diag_lines(errs)
        lines += ["", "[dim]Shapes are per sample, channels first, batch excluded: "
                  "[C, H, W] for images, [C, L] for sequences, [C, D, H, W] for volumes.[/]"]
        return "\n".join(lines)
    item = design.items[index]
    row = ev.rows[index]
    lr = row.report
    title = f"[b]{index} · {escape(item.type)}[/b]" + (f"  name: {escape(row.name)}" if item.name else "")
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
        formulas = lr.layer.explain(lr.input)
        if formulas:
            lines += ["", "[b]output size[/b] (floor((in + 2*pad - dil*(k-1) - 1)/stride + 1)):"]
            lines += [f"  {escape(f)}" for f in formulas]
    elif row.status == "unreached":
        lines.append("[dim]not analysed: an earlier layer has an error[/]")
    lines += ["", "[b]arguments[/b] (e: edit)"] + _arg_lines(item)
    lines += _diag_lines(ev.diagnostics_for(index))
    cls = LAYER_TYPES.get(item.type)
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
