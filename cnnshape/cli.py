"""The ``cnnshape`` command line (click). Heavy imports (rich, torch, textual) happen
inside the commands that need them: ``check`` never imports torch."""

import json
import re
import sys

import click

EXIT_OK, EXIT_INVALID, EXIT_FAILED = 0, 1, 2


def _parse_shape(ctx, param, value):
    if value is None:
        return None
    parts = [p for p in re.split(r"[\s,x×\[\]()]+", value.strip()) if p]
    try:
        shape = [int(p) for p in parts]
    except ValueError:
        raise click.BadParameter(f"expected ints like 3,32,32 or [3, 32, 32], received {value!r}") from None
    if not 1 <= len(shape) <= 4 or any(s < 1 for s in shape):
        raise click.BadParameter(f"expected 1 to 4 positive sizes (one sample, no batch), received {value!r}")
    return shape


class LazyGroup(click.Group):
    """Subcommands are imported only when invoked (keeps ``check`` start-up light)."""

    lazy = {
        "verify": ("cnnshape.commands.torch_cmds", "verify_cmd"),
        "export": ("cnnshape.commands.torch_cmds", "export_cmd"),
        "import": ("cnnshape.commands.torch_cmds", "import_cmd"),
        "tui": ("cnnshape.commands.tui_cmd", "tui_cmd"),
        "train": ("cnnshape.commands.train_cmds", "train_cmd"),
        "viz": ("cnnshape.commands.train_cmds", "viz_cmd"),
        "sizes": ("cnnshape.commands.sizes", "sizes_cmd"),
    }

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx, name):
        if name in self.lazy:
            import importlib

            module, attr = self.lazy[name]
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cnnshape")
def main():
    """Design convolutional networks without guessing shapes.

    Write the network as a YAML spec (see SPEC.md), then `cnnshape check spec.yaml`.
    """


@main.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people, json (SPEC.md) for programs.")
@click.option("--input", "input_shape", callback=_parse_shape, metavar="SHAPE",
              help="Override the spec's input shape, e.g. 3,32,32 (one sample, no batch).")
@click.option("--batch", type=click.IntRange(min=1), help="Override the spec's batch size.")
@click.option("--no-warnings", is_flag=True, help="Hide warnings (table format).")
@click.option("--depth", type=click.IntRange(min=1), default=1, show_default=True,
              help="Table rows for blocks: 1 = one row per top-level item (e.g. per ResNet stage), "
                   "2+ = also the layers inside blocks, that many levels deep.")
def check(specs, fmt, input_shape, batch, no_warnings, depth):
    """Validate specs analytically: shapes, receptive fields, params, MACs, memory.

    Exit status: 0 all valid, 1 a spec has errors, 2 a file could not be read.
    Never imports torch.
    """
    from .analysis import check as run_check
    from .errors import SpecError, SpecFileError

    results, status = [], EXIT_OK
    for path in specs:
        try:
            src = path if path != "-" else sys.stdin.read()
            report = run_check(src, input=input_shape, batch=batch)
            if input_shape and not report.ok:  # which sizes would work (only on failure)
                from .commands.sizes import with_nearby_sizes
                report = with_nearby_sizes(report, src, input_shape)
            results.append((path, report, None))
            if not report.ok:
                status = max(status, EXIT_INVALID)
        except SpecError as exc:
            results.append((path, None, exc))
            status = max(status, EXIT_INVALID)
        except SpecFileError as exc:
            results.append((path, None, exc))
            status = EXIT_FAILED
    if fmt == "json":
        docs = [_json_doc(path, report, exc, multi=len(specs) > 1) for path, report, exc in results]
        click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
    else:
        _print_tables(results, show_warnings=not no_warnings, depth=depth)
    sys.exit(status)


def _json_doc(path, report, exc, multi: bool):
    from .errors import SpecFileError

    if report is not None:
        doc = report.to_dict()
    else:
        doc = {"ok": False, "input": None, "batch": None, "output": None, "layers": [],
               "totals": None, "errors": [], "warnings": []}
        if isinstance(exc, SpecFileError):
            doc["errors"] = [{"index": None, "name": None, "line": None, "column": None,
                              "message": str(exc), "hint": "check the path"}]
        else:
            doc["errors"] = [d.to_dict() for d in exc.diagnostics]
    if multi:
        doc = {"file": path, **doc}
    return doc


def _print_tables(results, show_warnings: bool, depth: int = 1):
    from rich.console import Console

    from .errors import SpecFileError
    from .render import diagnostic_text, report_table, totals_text

    out = Console(highlight=False, soft_wrap=False)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for n, (path, report, exc) in enumerate(results):
        if n:
            out.print()
        if isinstance(exc, SpecFileError):
            err.print(f"[bold]{path}[/]: [bold red]error:[/] {exc}")
            continue
        if report is None:
            src = exc
            for d in exc.diagnostics:
                err.print(diagnostic_text(d, exc.source, _line_reader(path)), end="")
            err.print(f"[bold red]✗ {path}: {len(src.diagnostics)} error(s)[/]")
            continue
        spec = report.spec
        title = f"{path}" + (f" — {spec.name}" if spec.name else "")
        if report.layers or report.ok:
            out.print(report_table(report, title=title, depth=depth))
            out.print(totals_text(report))
        src_line = spec.source.line if spec.source else None
        if show_warnings:
            for d in report.warnings:
                out.print(diagnostic_text(d, path, src_line), end="", soft_wrap=True)
        for d in report.errors:
            err.print(diagnostic_text(d, path, src_line), end="")
        if report.ok:
            warn = f", {len(report.warnings)} warning(s)" if report.warnings else ""
            out.print(f"[bold green]✓ {path}: valid[/]{warn}")
        else:
            err.print(f"[bold red]✗ {path}: {len(report.errors)} error(s)[/]")


def _line_reader(path):
    def read(number):
        try:
            with open(path, encoding="utf-8-sig") as f:
                for i, line in enumerate(f, 1):
                    if i == number:
                        return line.rstrip("\n")
        except OSError:
            return None
        return None
    return read


@main.command()
@click.option("--indent", type=int, default=2, show_default=True)
def schema(indent):
    """Print the JSON Schema of the spec format (for editors' YAML language servers)."""
    from .schema import json_schema

    click.echo(json.dumps(json_schema(), indent=indent))


@main.command()
def layers():
    """List the supported layer types and their arguments."""
    from .layers import LAYER_TYPES

    for name, cls in LAYER_TYPES.items():
        args = ", ".join(f"{k}" + ("" if a.required else f"={a.default!r}") for k, a in cls.ARGS.items()
                         if k not in ("name", "trainable"))
        click.echo(f"{name}({args})")
