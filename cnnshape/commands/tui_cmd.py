"""``cnnshape tui``: the Textual design studio (imports Textual, not torch)."""

import click


@click.command("tui")
@click.argument("spec", metavar="SPEC")
@click.option("--input", "input_shape", metavar="SHAPE",
              help="One sample's shape, e.g. 3,32,32: needed for a Python model (FILE.py:ATTR).")
def tui_cmd(spec, input_shape):
    """Open SPEC in the design studio (a missing file starts a new design there).

    Edit layers with live re-analysis, undo/redo, save keeping your comments.
    FILE.py:ATTR imports the model (README: import) into FILE_ATTR.yaml beside it and opens
    that. Press ? inside for the keys.
    """
    import sys

    from ..cli import is_python_target

    if is_python_target(spec):
        spec = _imported(spec, input_shape)
    try:
        from ..tui import run
    except ImportError as exc:  # textual is a dependency, but be clear if it is broken
        raise click.ClickException(f"the TUI needs the 'textual' package ({exc}); pip install textual") from None

    sys.exit(run(spec))


def _imported(target: str, input_shape) -> str:
    """Import ``FILE.py:ATTR`` into ``FILE_ATTR.yaml`` (never over an existing file)."""
    import os
    import sys

    from ..atomic import write_atomic
    from ..cli import EXIT_FAILED, EXIT_INVALID, _parse_shape, consoles, load_arg, print_diagnostics, print_file_error
    from ..errors import SpecError, SpecFileError
    from ..yaml_out import dump_spec

    path, _, attr = target.rpartition(":")
    out = os.path.splitext(path)[0] + f"_{attr}.yaml"
    if os.path.lexists(out):
        click.echo(f"error: {out} exists (an earlier import?): open it with cnnshape tui {out}, or remove it",
                   err=True)
        sys.exit(EXIT_FAILED)
    try:
        from ..torch_backend.importer import finished

        spec = finished(load_arg(target, _parse_shape(None, None, input_shape) if input_shape else None))
    except SpecFileError as exc:
        print_file_error(consoles()[1], target, exc)
        sys.exit(EXIT_FAILED)
    except SpecError as exc:
        print_diagnostics(consoles()[1], target, None, exc)
        sys.exit(EXIT_INVALID)
    try:
        write_atomic(out, f"# imported by cnnshape from {target}\n" + dump_spec(spec))
    except OSError as exc:
        click.echo(f"error: cannot write {out}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"imported {target} into {out}", err=True)
    return out
