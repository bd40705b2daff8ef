"""``cnnshape tui``: the Textual design studio (imports Textual, not torch)."""

import click


@click.command("tui")
@click.argument("spec", metavar="SPEC")
@click.option("--input", "input_shape", metavar="SHAPE",
              help="One sample's shape, e.g. 3,32,32: needed for a Python model (FILE.py:ATTR).")
def tui_cmd(spec, input_shape):
    """Open SPEC in the design studio (a missing file starts a new design there).

    Edit layers with live re-analysis, undo/redo, save keeping your comments.
    FILE.py:ATTR imports the model (README: import) and shows it read-only ("this design
    comes from FILE.py:ATTR"); ctrl+s saves it as YAML (FILE_ATTR.yaml offered), which can
    then be edited. Press ? inside for the keys.
    """
    import sys

    from ..cli import is_python_target

    design = origin = None
    if is_python_target(spec):
        origin = spec
        spec, design = _imported(spec, input_shape)
    try:
        from ..tui import run
    except ImportError as exc:  # textual is a dependency, but be clear if it is broken
        raise click.ClickException(f"the TUI needs the 'textual' package ({exc}); pip install textual") from None

    sys.exit(run(spec, design=design, origin=origin))


def _imported(target: str, input_shape):
    """(the YAML path offered for saving, the Design) of ``FILE.py:ATTR``, imported."""
    import os

    from ..cli import _parse_shape, exit_on_load_error, load_arg
    from ..design import Design
    from ..torch_backend.importer import finished

    path, _, attr = target.rpartition(":")
    out = os.path.splitext(path)[0] + f"_{attr}.yaml"
    with exit_on_load_error(target):
        spec = finished(load_arg(target, _parse_shape(None, None, input_shape) if input_shape else None))
    return out, Design.from_data(spec.to_dict())
