"""Terminal rendering of reports: the layer table and compiler-style diagnostics
(plain text with ANSI styles on a terminal, see :mod:`cnnshape.term`; no rich: fast start)."""

from .analysis import Report
from .errors import Diagnostic
from .limits import printable
from .units import decimal_mb, si

SEVERITY_STYLE = {"error": "bold red", "warning": "bold yellow"}


human = si  # 1234567 -> '1.23 M'
mb = decimal_mb  # 150000 -> '0.15 MB'


def shape_text(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def rf_text(rf) -> str:
    if rf is None:
        return "-"
    sizes = "x".join(str(a.size) for a in rf)
    jumps = "x".join(str(a.jump) for a in rf) if len({a.jump for a in rf}) > 1 else str(rf[0].jump)
    return f"{sizes} /{jumps}"


def report_table(report: Report, title: str | None = None, depth: int = 1):
    """A Table: input row, one row per layer, totals in the footer. ``depth`` > 1
    also lists the layers inside blocks (indented, with their dotted module paths)."""
    from .term import Table, Text

    spec = report.spec
    t = report.totals
    table = Table(title=title)
    broken = {d.index for d in report.errors if d.index is not None}
    warned = {d.index for d in report.warnings}
    table.add_column("#", justify="right", footer="")
    table.add_column("name", footer="total")
    table.add_column("type", footer="")
    table.add_column("output", footer=shape_text(report.output) if report.output else "-")
    table.add_column("RF size /jump", footer="")
    table.add_column("params", justify="right", footer=f"{t.params:,}")
    table.add_column("MACs", justify="right", footer=human(t.macs))
    table.add_row("", Text("input", style="dim"), "", shape_text(spec.input), "1" if len(spec.input) > 1 else "-",
                  "", "")
    for lr in report.layers:
        mark = (Text(" ✗", style="bold red") if lr.index in broken else
                Text(" ⚠", style="yellow") if lr.index in warned else Text(""))
        frozen = Text(" (frozen)", style="cyan") if lr.params and not lr.trainable_params else Text("")
        table.add_row(str(lr.index), Text.assemble(printable(lr.name), mark), lr.type, shape_text(lr.output),
                      rf_text(lr.receptive_field), Text.assemble(f"{lr.params:,}", frozen),
                      f"{lr.macs:,}" if lr.macs else "0")
        _nested_rows(table, lr, depth, 1)
    shown = len(report.layers)
    for i in range(shown, len(spec.layers)):
        style = "bold red" if i in broken else "dim"
        mark = "✗" if i in broken else "·"
        table.add_row(Text(str(i), style=style), Text(printable(spec.names[i]), style=style),
                      Text(spec.layers[i].type, style=style), Text(mark, style=style), "", "", "")
    if len(table.rows) > MAX_TABLE_ROWS:  # a readable table; the JSON report has every layer
        more = len(table.rows) - MAX_TABLE_ROWS + 1
        table.rows[MAX_TABLE_ROWS - 1:] = [[Text(""), Text(f"… {more:,} more rows (--format json lists every layer)",
                                                          style="dim")] + [Text("")] * (len(table.columns) - 2)]
    return table


#: rows of the table drawn in full (the JSON report always has every layer)
MAX_TABLE_ROWS = 400


def _nested_rows(table, lr, depth: int, level: int) -> None:
    from .term import Text

    if level >= depth:
        return
    for c in lr.children:
        table.add_row("", Text("  " * level + printable(c.path), style="dim" if c.children else ""), Text(c.type, style="dim"),
                      shape_text(c.output), rf_text(c.receptive_field), f"{c.params:,}",
                      f"{c.macs:,}" if c.macs else "0")
        _nested_rows(table, c, depth, level + 1)


def totals_text(report: Report, *, optimizer: str = "adam", memory_limit: int | None = None,
                cpu_isa: str | None = None):
    """Footer lines: params, MACs and memory (cnnshape.memory: saved-for-backward bytes and
    the estimated peaks; the largest batch when ``memory_limit`` is given)."""
    from .term import Text

    t = report.totals
    spec = report.spec
    lines = [
        f"params: {t.params:,} (trainable {t.trainable_params:,}, frozen {t.frozen_params:,})"
        f" = {mb(t.param_bytes)} in {spec.dtype}",
        f"MACs per sample: {t.macs:,} ({human(t.macs)}); batch {spec.batch}: {human(t.macs * spec.batch)}",
    ]
    if report.ok:
        from .memory import summary_lines

        lines += summary_lines(report, optimizer=optimizer, memory_limit=memory_limit, cpu_isa=cpu_isa)
    return Text("\n".join(lines), style="dim")


def diagnostic_text(d: Diagnostic, source_path: str | None, source_text_line=None):
    """Compiler-style: ``file:line:col: error: message``, the YAML line, a caret, the hint."""
    from .term import Text

    out = Text()
    line = d.key_line or d.line
    col = d.key_column or d.column
    where = printable(source_path or "<spec>")
    if line is not None:
        where += f":{line}:{col}"
    out.append(f"{where}: ", style="bold")
    out.append(f"{d.severity}: ", style=SEVERITY_STYLE[d.severity])
    if d.after_error:
        out.append("(found after an earlier error) ", style="italic")
    layer = f"layer {d.index} ({printable(d.name or '')}): " if d.index is not None else ""
    out.append(f"{layer}{d.message}\n")
    if line is not None and source_text_line is not None:
        text = source_text_line(line)
        if text is not None:
            gutter = f"{line:>5} | "
            out.append(gutter, style="dim")
            out.append(text + "\n")
            if d.key and d.key_column:
                width = len(d.key)
            elif d.index is not None:  # the whole layer item
                width = max(1, len(text.rstrip()) - (col or 1) + 1)
            else:
                width = 1
            out.append(" " * (len(gutter) - 2) + "| ", style="dim")
            out.append(" " * ((col or 1) - 1) + "^" + "~" * (width - 1) + "\n", style="bold green")
    if d.hint:
        out.append("  hint: ", style="bold cyan")
        out.append(d.hint.replace("\n", "\n        ") + "\n")
    return out
