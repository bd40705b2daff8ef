"""``cnnshape diff A B``: what changed between two architectures (no torch)."""

import json
import sys

import click

from ..cli import EXIT_FAILED, EXIT_INVALID, EXIT_OK, _spec_arg


@click.command("diff")
@click.argument("a", metavar="A.yaml")
@click.argument("b", metavar="B.yaml")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table",
              show_default=True, help="table for people, json for programs, markdown for a pull-request comment.")
@click.option("--input", "input_shape", metavar="SHAPE",
              help="One sample's shape, e.g. 3,32,32: needed for a Python model (FILE.py:ATTR).")
@click.option("--cpu-isa", type=click.Choice(["auto", "avx2", "avx512", "default"]), default="auto",
              show_default=True, help="CPU kind of the memory peaks (as for check): auto = this machine's.")
def diff_cmd(a, b, fmt, input_shape, cpu_isa):
    """Compare two specs layer by layer (matched by module path).

    Exit status: 0 the same architecture (formatting and comments ignored), 1 they differ,
    2 a file could not be read.
    """
    from ..analysis import check
    from ..cli import _parse_shape, check_arg, is_python_target
    from ..diff import diff, to_markdown, to_text
    from ..errors import SpecError, SpecFileError
    from ..limits import human_text

    reports = []
    for path in (a, b):
        try:
            reports.append(check_arg(path, _parse_shape(None, None, input_shape)) if is_python_target(path)
                           else check(_spec_arg(path)))
        except (SpecFileError, SpecError) as exc:  # a SpecError here: nothing of the spec could be read
            click.echo(human_text(f"{path}: error: {exc}"), err=True)
            sys.exit(EXIT_FAILED)
    d = diff(reports[0], reports[1], names=(a, b), cpu_isa=cpu_isa)
    if fmt == "json":
        click.echo(json.dumps(d.to_dict(), indent=2))
    elif fmt == "markdown":
        click.echo(to_markdown(d), nl=False)
    else:
        for line in to_text(d):
            click.echo(human_text(line))
    sys.exit(EXIT_OK if d.same else EXIT_INVALID)
