"""``cnnshape tui``: the Textual design studio (imports Textual, not torch)."""

import click


@click.command("tui")
@click.argument("spec", type=click.Path(dir_okay=False))
def tui_cmd(spec):
    """Open SPEC in the design studio (a missing file starts a new design there).

    Edit layers with live re-analysis, undo/redo, save keeping your comments.
    Press ? inside for the keys.
    """
    try:
        from ..tui import run
    except ImportError as exc:  # textual is a dependency, but be clear if it is broken
        raise click.ClickException(f"the TUI needs the 'textual' package ({exc}); pip install textual") from None
    import sys

    sys.exit(run(spec))
