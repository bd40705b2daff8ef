"""Output for CI: GitHub workflow annotations and Markdown summaries of ``check`` results.

``results`` are ``(path, report_or_None, exception_or_None, extra_errors)`` tuples as the
``check`` command collects them.
"""

import html
import re

from .errors import SpecFileError
from .limits import printable

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|<>#~!])")


def md_text(s: str) -> str:
    """``s`` as literal Markdown text on one line (a table cell or a list item): unsafe
    characters escaped, ``&`` as an entity, Markdown's punctuation backslash-escaped
    (``|`` cannot split a table row, ``<`` cannot open HTML)."""
    return _MD_SPECIAL.sub(r"\\\1", printable(s).replace("&", "&amp;"))


def md_code(s: str) -> str:
    """``s`` as inline code on one line: a plain code span when that is safe, else an HTML
    ``<code>`` element with ``|`` and backticks as entities."""
    s = printable(s)
    if s and not re.search(r"[`|\\]", s) and s.strip() == s:
        return f"`{s}`"
    return "<code>" + html.escape(s).replace("|", "&#124;").replace("`", "&#96;").replace("\\", "&#92;") + "</code>"


def _esc_data(s: str) -> str:
    return printable(s, "\r\n").replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _esc_prop(s: str) -> str:
    return _esc_data(s).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, path: str, d) -> str:
    """``::error file=...,line=...,col=...,title=...::message — hint``."""
    props = [f"file={_esc_prop(path)}"]
    line = d.key_line or d.line
    col = d.key_column if d.key_line else d.column
    if line:
        props.append(f"line={line}")
    if col:
        props.append(f"col={col}")
    where = f"layer {d.name}" if d.name is not None else "spec"
    props.append(f"title={_esc_prop('cnnshape: ' + where)}")
    text = d.message + (f" — {d.hint}" if d.hint else "")
    return f"::{level} {','.join(props)}::{_esc_data(text)}"


def _diagnostics(report, exc, extra):
    if report is not None:
        return list(report.errors) + list(extra), list(report.warnings)
    if isinstance(exc, SpecFileError):
        return [], []
    return list(exc.diagnostics) + list(extra), []


def github(results) -> list[str]:
    """One annotation line per error/warning, plus a notice per valid file."""
    lines = []
    for path, report, exc, extra in results:
        if isinstance(exc, SpecFileError):
            lines.append(f"::error file={_esc_prop(path)},title=cnnshape::{_esc_data(str(exc))}")
            continue
        errors, warnings = _diagnostics(report, exc, extra)
        lines += [annotation("error", path, d) for d in errors]
        lines += [annotation("warning", path, d) for d in warnings]
        if not errors:
            t = report.totals
            lines.append(f"::notice file={_esc_prop(path)},title=cnnshape::valid: output "
                         f"{list(report.output)}, {t.params:,} params, {t.macs:,} MACs")
    return lines


def markdown(results) -> str:
    """A Markdown summary (GitHub job summary / PR comment): one section per file."""
    from .units import si

    out = []
    for path, report, exc, extra in results:
        if isinstance(exc, SpecFileError):
            out += [f"### ✗ {md_code(path)}", "", f"could not read: {md_text(str(exc))}", ""]
            continue
        errors, warnings = _diagnostics(report, exc, extra)
        mark = "✓" if not errors else "✗"
        out += [f"### {mark} {md_code(path)}" + (f" — {md_text(report.spec.name)}" if report is not None
                                                 and report.spec.name else ""),
                ""]
        if report is not None and report.layers:
            t = report.totals
            out += [f"input `{list(report.spec.input)}` → output "
                    f"`{list(report.output) if report.output is not None else '-'}` · "
                    f"**{t.params:,}** params ({si(t.params, digits='.3g')}) · **{si(t.macs, digits='.3g')}** MACs", "",
                    "| # | name | type | output | params | MACs |", "|---:|---|---|---|---:|---:|"]
            for r in report.layers:
                out.append(f"| {r.index} | {md_code(r.name)} | {r.type} | `{list(r.output)}` | {r.params:,} | "
                           f"{r.macs:,} |")
            out.append("")
        for d in errors:
            out.append(f"- ✗ **error** line {d.line}: {md_text(d.message)}" + (f" — _{md_text(d.hint)}_" if d.hint else ""))
        for d in warnings:
            out.append(f"- ⚠ warning line {d.line}: {md_text(d.message)}" + (f" — _{md_text(d.hint)}_" if d.hint else ""))
        out.append("")
    return "\n".join(out)
