"""``cnnshape sizes``: which input sizes work, per spatial axis (SPEC.md section 4), and the
"sizes that work nearby" hint ``cnnshape check --input`` adds when a size fails. Never
imports torch."""

import json
import sys

import click

EXIT_OK, EXIT_INVALID, EXIT_FAILED = 0, 1, 2


@click.command("sizes")
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people, json (SPEC.md section 4) for programs.")
@click.option("--near", type=click.IntRange(min=1), metavar="N",
              help="Also give the valid sizes closest to N on every axis (e.g. --near 500).")
@click.option("--input", "input_shape", metavar="SHAPE",
              help="One sample's shape, e.g. 3,32,32: needed for a Python model (FILE.py:ATTR).")
def sizes_cmd(specs, fmt, near, input_shape):
    """Which input sizes work? For each spatial axis (the others as declared), the exact
    set of sizes at which the model compiled from SPEC runs, the output size as a formula,
    and the sizes at which no input pixel is dropped.

    Derived analytically from the layer formulas (no torch, no trial runs).
    Exit status: 0 all specs analyse, 1 a spec has errors, 2 a file could not be read.
    """
    from ..analysis import check
    from ..cli import _parse_shape, _spec_arg, check_arg, is_python_target
    from ..errors import SpecError, SpecFileError
    from ..sizes import SizesReport, sizes

    results, status = [], EXIT_OK
    for path in specs:
        try:
            report = check_arg(path, _parse_shape(None, None, input_shape)) if is_python_target(path) else \
                check(_spec_arg(path))
            res = sizes(report)
            if not res.ok:
                status = max(status, EXIT_INVALID)
            results.append((path, res, report, None))
        except SpecError as exc:
            results.append((path, SizesReport(False, (), (), tuple(exc.diagnostics)), None, exc))
            status = max(status, EXIT_INVALID)
        except SpecFileError as exc:
            results.append((path, None, None, exc))
            status = EXIT_FAILED
    if fmt == "json":
        docs = []
        for path, res, _, exc in results:
            if res is None:
                doc = {"ok": False, "input": None, "axes": [],
                       "errors": [{"index": None, "name": None, "line": None, "column": None,
                                   "message": str(exc), "hint": "check the path"}]}
            else:
                doc = res.to_dict(near)
                if exc is not None:
                    doc["input"] = None
            docs.append({"file": path, **doc} if len(specs) > 1 else doc)
        click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2, ensure_ascii=False))
    else:
        _print(results, near)
    sys.exit(status)


def _shown(text: str) -> str:
    """A file name or message as literal text (no markup, no controls)."""
    from rich.markup import escape

    from ..limits import no_commands, printable

    return escape(no_commands(printable(str(text), "\n")))


def _print_failure(err, path, res, report, exc) -> None:
    """A file that could not be read, or a spec that does not analyse at its declared input."""
    from rich.markup import escape

    from ..limits import printable
    from ..render import diagnostic_text
    from ..term import Console as TermConsole

    if res is None:
        err.print(f"[bold]{_shown(path)}[/]: [bold red]error:[/] {escape(printable(str(exc), chr(10)))}")
        return
    src = report.spec.source.line if report is not None and report.spec.source else None
    plain_err = TermConsole(stderr=True)  # escapes what the spec brings, no '::' line starts
    for d in res.errors:
        plain_err.print(diagnostic_text(d, path, src), end="")
    err.print(f"[bold red]✗ {_shown(path)}: does not analyse at its declared input; fix it first[/]")


def _axes_table(res, title: str, near):
    """The table of an input's axes: declared size, sizes that work, no pixel dropped,
    output size (and the sizes nearest ``near``)."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in ("axis", "declared", "sizes that work", "no pixel dropped", "output size"):
        t.add_column(col)
    if near is not None:
        t.add_column(f"near {near}")
    for ax in res.axes:
        nd = "-" if not ax.no_drop else " or ".join(g.text(ax.axis) for g in ax.no_drop[:3]) + (
            " or ..." if len(ax.no_drop) > 3 else "")
        row = [ax.axis, str(ax.declared), ax.summary if ax.valid is not None else f"unknown: {ax.unknown}",
               nd if ax.valid is not None else "",
               ax.output or (f"last map {ax.feature_map}" if ax.feature_map else "fixed / flattened")]
        if near is not None:
            row.append(", ".join(map(str, ax.nearest(near))) or "-")
        t.add_row(*row)
    return t


def _print_sizes(out, path, res, near) -> None:
    from rich.markup import escape

    title = f"{_shown(path)} — input {list(res.input)}"
    if not res.axes:
        out.print(f"{title}: a feature-vector input has no spatial axis")
        return
    out.print(_axes_table(res, title, near))
    if res.coupled:
        sq = "" if res.square is None else (
            "; square inputs that work: " + (" or ".join(g.text("n") for g in res.square) or "none"))
        out.print(f"[yellow]note:[/] {escape(res.coupled + sq)}", soft_wrap=True)
    out.print(f"[bold green]✓ {_shown(path)}[/]: " + escape(res.summary), soft_wrap=True)


def _print(results, near):
    from rich.console import Console

    out = Console(highlight=False, soft_wrap=False)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for k, (path, res, report, exc) in enumerate(results):
        if k:
            out.print()
        if res is None or not res.ok:
            _print_failure(err, path, res, report, exc)
        else:
            _print_sizes(out, path, res, near)
