"""verify / export / import: the commands that need torch (imported only when run)."""

import sys

import click

from ..cli import EXIT_FAILED, EXIT_INVALID, _spec_arg


def _fail(message: str, code: int = EXIT_FAILED):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _load(path):
    """Check ``path`` analytically first (no torch: fast, and the same located diagnostics
    as ``cnnshape check``); exit 1 on errors, 2 when the file cannot be read."""
    from ..analysis import check
    from ..cli import consoles, print_diagnostics, print_file_error
    from ..errors import SpecError, SpecFileError

    try:
        report = check(_spec_arg(path))
    except SpecFileError as exc:
        print_file_error(consoles()[1], path, exc)
        sys.exit(EXIT_FAILED)
    except SpecError as exc:
        print_diagnostics(consoles()[1], path, None, exc)
        sys.exit(EXIT_INVALID)
    if not report.ok:
        print_diagnostics(consoles()[1], path, report, None)
        sys.exit(EXIT_INVALID)
    return report.spec


def _check_output(output) -> None:
    """Refuse an output path that cannot be written before doing the work (exit 2)."""
    if output:
        from ..atomic import WriteRefused, check_target

        try:
            check_target(output)
        except WriteRefused as exc:
            _fail(str(exc))


def _write(output, text) -> None:
    from ..atomic import write_atomic

    try:
        write_atomic(output, text)
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")


@click.command("verify")
@click.argument("spec")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N, mps, meta or auto.")
@click.option("--batch", type=click.IntRange(min=1), help="Batch of the test pass (default: the spec's).")
@click.option("--no-torchinfo", is_flag=True, help="Skip the torchinfo comparison.")
def verify_cmd(spec, device, batch, no_torchinfo):
    """Build SPEC, run a real forward pass, compare with the analysis and torchinfo."""
    s = _load(spec)
    from rich.console import Console
    from rich.table import Table

    from ..torch_backend.build import BuildError
    from ..torch_backend.verify import verify

    try:
        result = verify(s, device=device, batch=batch, use_torchinfo=not no_torchinfo)
    except BuildError as exc:
        _fail(str(exc), EXIT_INVALID if exc.diagnostics else EXIT_FAILED)
    out = Console(highlight=False)
    table = Table(title=f"{spec}: analysis vs torch ({result.device})", box=None, header_style="bold",
                  title_justify="left")
    for col in ("#", "name", "type", "analysed shape", "torch shape", "params (cnnshape)", "params (torch)", ""):
        table.add_column(col, justify="right" if col.startswith(("#", "params")) else "left")
    for r in result.rows:
        mark = "[green]✓[/]" if r.ok else "[bold red]✗[/]"
        table.add_row(str(r.index), r.name, r.type, str(list(r.analysed_shape)), str(list(r.torch_shape)),
                      f"{r.analysed_params:,}", f"{r.torch_params:,}", mark)
    out.print(table)
    t = result.report.totals
    line = f"totals: cnnshape {t.params:,} params ({t.trainable_params:,} trainable)"
    if result.torchinfo_params is not None:
        line += f"; torchinfo {result.torchinfo_params:,} ({result.torchinfo_trainable:,} trainable)"
    out.print(line)
    if result.ok:
        out.print(f"[bold green]✓ {spec}: torch agrees with the analysis on every layer[/]")
    else:
        out.print(f"[bold red]✗ {spec}: torch disagrees with the analysis (please report this spec)[/]")
        sys.exit(EXIT_INVALID)


@click.command("export")
@click.argument("spec")
@click.option("--to", "target", type=click.Choice(["python"]), default="python", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file (default: stdout).")
@click.option("--class-name", default="Net", show_default=True)
def export_cmd(spec, target, output, class_name):
    """Write SPEC as a plain PyTorch module (class Net(nn.Module)) that needs no cnnshape."""
    s = _load(spec)
    from ..torch_backend.build import BuildError
    from ..torch_backend.export import export_python

    _check_output(output)
    try:
        source = export_python(s, class_name=class_name)
    except BuildError as exc:
        _fail(str(exc), EXIT_INVALID)
    if output:
        _write(output, source)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(source, nl=False)


@click.command("import")
@click.argument("target", metavar="FILE.py:ATTR")
@click.option("--input", "input_shape", required=True, help="One sample's shape, e.g. 1,28,28.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the spec here (default: stdout).")
def import_cmd(target, input_shape, output):
    """Turn an nn.Sequential (a module attribute, or a function returning one) into a spec."""
    import runpy

    from ..cli import _parse_shape
    from ..errors import CnnshapeError
    from ..torch_backend.importer import from_module, instantiate
    from ..yaml_out import dump_spec

    path, _, attr = target.rpartition(":")
    if not path or not attr:
        _fail("expected FILE.py:ATTR, e.g. model.py:net")
    _check_output(output)
    shape = _parse_shape(None, None, input_shape)
    try:
        namespace = runpy.run_path(path)
    except FileNotFoundError:
        _fail(f"{path}: no such file")
    except Exception as exc:  # noqa: BLE001 - the user's file raised: report it, no traceback
        _fail(f"{path} raised {type(exc).__name__}: {exc}")
    if attr not in namespace:
        _fail(f"{path} has no attribute {attr!r}")
    try:
        obj = instantiate(namespace[attr], f"{path}:{attr}")
    except CnnshapeError as exc:  # the user's code could not give a module: could not run
        _fail(str(exc))
    try:
        spec = from_module(obj, shape)
    except CnnshapeError as exc:
        _fail(str(exc), EXIT_INVALID)
    from ..analysis import analyze

    report = analyze(spec)
    actual = sum(p.numel() for p in obj.parameters()) if hasattr(obj, "parameters") else None
    if report.ok and actual is not None and actual != report.totals.params:
        _fail(f"the model does not accept --input {','.join(map(str, shape))}: on that input the imported "
              f"spec has {report.totals.params:,} parameters, the model {actual:,} (a layer's input size "
              "differs from what the model was made for)\n  give the input shape the model was made for",
              EXIT_INVALID)
    if not report.ok:
        d = report.errors[0]
        _fail(f"the model does not accept --input {','.join(map(str, shape))}: layer {d.name}: {d.message}"
              + (f"\n  hint: {d.hint}" if d.hint else "") + "\n  give the input shape the model was made for",
              EXIT_INVALID)
    text = f"# imported by cnnshape from {target}\n" + dump_spec(spec)
    if output:
        _write(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
