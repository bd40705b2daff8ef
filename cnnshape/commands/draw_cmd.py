"""``cnnshape draw SPEC -o net.svg|net.png``: the network as a picture (no torch)."""

import os
import sys

import click

from ..cli import EXIT_FAILED, EXIT_INVALID, EXIT_OK, _spec_arg


@click.command("draw")
@click.argument("spec", metavar="SPEC")
@click.option("-o", "--output", "out", required=True, metavar="FILE",
              help="Picture to write: .svg (vector) or .png (raster).")
@click.option("--depth", type=click.IntRange(min=1), default=1, show_default=True,
              help="Block levels drawn open: 1 = one box per top-level block (e.g. per ResNet stage).")
@click.option("--input", "input_shape", metavar="SHAPE", help="Override the input shape, e.g. 3,64,64.")
def draw_cmd(spec, out, depth, input_shape):
    """Draw SPEC: feature maps as boxes scaled by channels and size, kernels and strides on
    the arrows, blocks as frames with their skip connections and branches.

    Exit status: 0 drawn, 1 the spec has errors (the analysed part is still drawn),
    2 the spec or the output could not be read/written.
    """
    from ..analysis import check
    from ..cli import _parse_shape, check_arg, is_python_target
    from ..draw import PictureTooLarge, render
    from ..limits import no_commands, printable
    from ..errors import SpecError, SpecFileError

    fmt = out.rsplit(".", 1)[-1].lower() if "." in os.path.basename(out) else ""
    if fmt not in ("svg", "png"):
        click.echo(f"error: -o {printable(out)}: use a file name ending in .svg or .png", err=True)
        sys.exit(EXIT_FAILED)
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        click.echo(f"error: -o {printable(out)}: folder {printable(folder)} does not exist", err=True)
        sys.exit(EXIT_FAILED)
    shape = _parse_shape(None, None, input_shape) if input_shape else None
    try:
        report = check_arg(spec, shape) if is_python_target(spec) else check(_spec_arg(spec), input=shape)
    except SpecFileError as exc:
        click.echo(no_commands(f"error: {printable(str(exc), chr(10))}"), err=True)
        sys.exit(EXIT_FAILED)
    except SpecError as exc:
        click.echo(no_commands(f"error: {printable(str(exc), chr(10))}"), err=True)
        sys.exit(EXIT_INVALID)
    try:
        render(report, out, depth=depth)
    except OSError as exc:
        click.echo(f"error: cannot write {printable(out)}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_FAILED)
    except PictureTooLarge as exc:
        click.echo(f"error: -o {printable(out)}: {exc}; write an .svg, or draw fewer block levels "
                   f"(--depth {max(1, depth - 1)})", err=True)
        sys.exit(EXIT_FAILED)
    for d in report.errors:
        click.echo(no_commands(f"{printable(spec)}:{d.line}:{d.column}: error: {printable(d.message)}"
                               + (" (drawn up to this error; later layers not analysed)" if d is report.errors[0]
                                  else "")), err=True)
    click.echo(f"wrote {printable(out)}")
    sys.exit(EXIT_OK if report.ok else EXIT_INVALID)
