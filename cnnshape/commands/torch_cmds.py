"""verify / export / import: the commands that need torch (imported only when run)."""

import sys

import click

from ..cli import EXIT_FAILED, EXIT_INVALID


def _fail(message: str, code: int = EXIT_FAILED):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _load(path, input_shape=None):
    """Check ``path`` analytically first (YAML: no torch, fast; ``FILE.py:ATTR``: the model
    imported through torch.fx) with the same located diagnostics as ``cnnshape check``;
    exit 1 on errors, 2 when the file cannot be read (or the user's code fails)."""
    from ..cli import check_arg, consoles, exit_on_load_error, print_diagnostics

    with exit_on_load_error(path):
        report = check_arg(path, input_shape)
    if not report.ok:
        print_diagnostics(consoles()[1], path, report, None)
        sys.exit(EXIT_INVALID)
    return report.spec


def _shape(value):
    from ..cli import _parse_shape

    return _parse_shape(None, None, value) if value else None


INPUT_HELP = "One sample's shape, e.g. 3,32,32: needed for a Python model (FILE.py:ATTR), overrides a spec's."


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
@click.option("--input", "input_shape", metavar="SHAPE", help=INPUT_HELP)
def verify_cmd(spec, device, batch, no_torchinfo, input_shape):
    """Build SPEC (a spec, or FILE.py:ATTR), run a real forward pass, compare with the
    analysis and torchinfo."""
    s = _load(spec, _shape(input_shape))
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
@click.option("--input", "input_shape", metavar="SHAPE", help=INPUT_HELP)
def export_cmd(spec, target, output, class_name, input_shape):
    """Write SPEC (a spec, or FILE.py:ATTR) as a plain PyTorch module (class Net(nn.Module))
    that needs no cnnshape."""
    s = _load(spec, _shape(input_shape))
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
@click.option("--checkpoint", type=click.Path(dir_okay=False),
              help="Also write the model's weights with the spec as a cnnshape checkpoint (loaded strictly first).")
@click.option("--pretrained", is_flag=True,
              help="torchvision:NAME / timm:NAME: the weights the package's own loader fetches (needs --checkpoint).")
def import_cmd(target, input_shape, output, checkpoint, pretrained):
    """Turn a PyTorch model into a spec: ATTR in FILE.py is an nn.Module, a class with a
    no-argument constructor or a function returning a model. It is traced with torch.fx
    (README: import); state_dict keys are kept, so the compiled spec loads the model's
    weights with strict=True.

    This RUNS FILE.py (its top level and the model's constructor, as importing it would).
    With --checkpoint, the model's weights (a file's: as its constructor makes them on the
    CPU; a package's: random, or --pretrained) are loaded into the compiled spec with
    strict=True and saved with it (cnnshape.torch_backend.checkpoint).

    Exit status: 0 imported, 1 the model cannot be written as a spec or does not fit
    --input (located errors), 2 the file cannot be read or its code fails (or the weights
    cannot be had).
    """
    from ..cli import _parse_shape, consoles, exit_on_load_error, is_python_target, load_arg, print_diagnostics
    from ..errors import SpecError
    from ..torch_backend.importer import finished
    from ..yaml_out import dump_spec

    if not is_python_target(target):
        _fail(f"expected FILE.py:ATTR (a Python file and a name in it, e.g. model.py:net) or torchvision:NAME / "
              f"timm:NAME; received {target!r}")
    _check_output(output)
    if pretrained and not checkpoint:
        _fail("--pretrained needs --checkpoint PATH (the spec itself holds no weights)")
    if checkpoint:
        _check_output(checkpoint)
    shape = _parse_shape(None, None, input_shape)
    with exit_on_load_error(target):  # what a spec cannot say is reported at the user's line
        spec = load_arg(target, shape)
    try:
        spec = finished(spec)
    except SpecError as exc:  # layers built for another shape
        print_diagnostics(consoles()[1], target, None, exc)
        click.echo(f"  the model does not accept --input {','.join(map(str, shape))} as it is: give the input "
                   "shape the model was made for, or fix the layers named above", err=True)
        sys.exit(EXIT_INVALID)
    text = f"# imported by cnnshape from {target}\n" + dump_spec(spec)
    if checkpoint:
        _write_weights(target, spec, checkpoint, pretrained)
    if output:
        _write(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


def _write_weights(target, spec, path, pretrained: bool) -> None:
    """The model's weights, loaded strictly into the compiled spec, saved with it."""
    from ..cli import exit_on_load_error
    from ..torch_backend.build import build
    from ..torch_backend.checkpoint import save_checkpoint
    from ..torch_backend.pyload import weighted_model

    with exit_on_load_error(target):
        model = weighted_model(target, pretrained)
    net = build(spec)
    try:
        net.load_state_dict(model.state_dict(), strict=True)
    except RuntimeError as exc:  # the CPU-built model differs from the traced one (random construction?)
        _fail(f"{target}: its weights do not fit the imported spec: {str(exc).splitlines()[0]}", EXIT_INVALID)
    save_checkpoint(path, net, spec, data=target)
    whose = "the package's pretrained" if pretrained else "the model's own"
    click.echo(f"wrote {path} ({whose} weights)", err=True)
