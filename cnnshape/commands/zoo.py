"""``cnnshape zoo``: list the shipped specs, print one, or copy one to start a design.

Listing reads the zoo's index (figures computed by cnnshape's analysis when the zoo was
generated), so it is instant and imports no torch.
"""

import json
import os
import shlex
import sys

import click

from ..units import si


def _table(entries) -> str:
    rows = [("name", "input", "params", "MACs", "")]
    for e in entries:
        rows.append((e["name"], "x".join(map(str, e["input"])), f"{e['params']:,}", si(e["macs"], sep=""),
                     e["description"].split(";")[0]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for r in rows:
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2]), r[3].rjust(widths[3]), r[4]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


@click.command("zoo")
@click.argument("name", required=False)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write a copy of the spec to this file.")
@click.option("--force", is_flag=True, help="Overwrite the --output file if it exists.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="The listing as a table, or as JSON (name, input, output, params, trainable_params, macs).")
def zoo_cmd(name, output, force, fmt):
    """List the zoo, or start a design from one of its specs.

    \b
    cnnshape zoo                      every entry: input, params, MACs
    cnnshape zoo resnet50             print the spec
    cnnshape zoo resnet50 -o my.yaml  copy it to my.yaml to edit (--force to overwrite)

    The zoo has torchvision's 68 convolutional classifiers in torchvision's exact layout
    (their weights load with strict=True), a U-Net, a DCGAN generator and a convolutional
    autoencoder.
    """
    from .. import zoo
    from ..limits import printable

    if name is None:
        if output is not None:
            raise click.UsageError("-o/--output needs a NAME: cnnshape zoo NAME -o FILE")
        entries = zoo.entries()
        click.echo(json.dumps(entries, indent=2) if fmt == "json" else _table(entries))
        return
    try:
        path = zoo.path(name)
    except zoo.ZooError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if output is None or output == "-":  # -o - is standard output, as SPEC - is standard input
        click.echo(text, nl=False)
        return
    if not output:
        click.echo("error: -o '': an empty file name (give a file, or - for standard output)", err=True)
        sys.exit(2)
    if os.path.lexists(output) and not force:  # a dangling symlink counts: its target would be created
        click.echo(f"error: {printable(output)} exists; pass --force to overwrite it, or choose another file", err=True)
        sys.exit(2)
    from ..atomic import write_atomic

    try:
        write_atomic(output, text)
    except OSError as exc:
        click.echo(f"error: cannot write {printable(output)}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    shown = shlex.quote(output)
    click.echo(f"wrote {printable(output)} (a copy of the zoo's {name}); next: cnnshape check {printable(shown)}")
