"""The ``cnnshape`` command line (click). Heavy imports (torch, textual, rich) happen
inside the commands that need them: ``check`` never imports torch."""

import json
import re
import sys
from contextlib import contextmanager

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


def _parse_qty(ctx, param, value):
    """A count or a size with an optional unit (5M, 1.5G, 8GiB, 512MB): budgets and
    --memory-limit share one parser (cnnshape.units.parse_quantity)."""
    if value is None:
        return None
    from .units import parse_quantity

    try:
        return parse_quantity(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


class LazyGroup(click.Group):
    """Subcommands are imported only when invoked (keeps ``check`` start-up light)."""

    lazy = {
        "verify": ("cnnshape.commands.torch_cmds", "verify_cmd"),
        "export": ("cnnshape.commands.torch_cmds", "export_cmd"),
        "import": ("cnnshape.commands.torch_cmds", "import_cmd"),
        "tui": ("cnnshape.commands.tui_cmd", "tui_cmd"),
        "train": ("cnnshape.commands.train_cmds", "train_cmd"),
        "viz": ("cnnshape.commands.train_cmds", "viz_cmd"),
        "zoo": ("cnnshape.commands.zoo", "zoo_cmd"),
        "sizes": ("cnnshape.commands.sizes", "sizes_cmd"),
        "diff": ("cnnshape.commands.diff_cmd", "diff_cmd"),
        "draw": ("cnnshape.commands.draw_cmd", "draw_cmd"),
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

    Write the network as a YAML spec, then `cnnshape check spec.yaml`. The format and
    the reports are documented in docs/spec.md (`cnnshape layers` lists every layer type).
    """


@main.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "github", "markdown"]), default="table",
              show_default=True, help="table for people, json (documented in docs/spec.md) for programs, github for workflow "
              "annotations, markdown for a job summary or PR comment.")
@click.option("--input", "input_shape", callback=_parse_shape, metavar="SHAPE",
              help="Override the spec's input shape, e.g. 3,32,32 (one sample, no batch).")
@click.option("--batch", type=click.IntRange(min=1), help="Override the spec's batch size.")
@click.option("--no-warnings", is_flag=True, help="Hide warnings (table format).")
@click.option("--depth", type=click.IntRange(min=1), default=1, show_default=True,
              help="Table rows for blocks: 1 = one row per top-level item (e.g. per ResNet stage), "
                   "2+ = also the layers inside blocks, that many levels deep.")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam", "adamw"]), default="adam",
              show_default=True, help="Optimizer of the training-memory figures (state per parameter).")
@click.option("--memory-limit", callback=_parse_qty, metavar="SIZE",
              help="Device memory, e.g. 8GiB or 12GB: also print the largest batch that fits.")
@click.option("--cpu-isa", type=click.Choice(["auto", "avx2", "avx512", "default"]), default="auto",
              show_default=True, help="CPU kind the memory peaks are modelled for (oneDNN's temporaries "
              "differ): auto = this machine's, capped by ONEDNN_MAX_CPU_ISA like oneDNN; default = "
              "neither AVX2 nor AVX-512 (e.g. ARM). Peaks are CPU-allocator figures, not CUDA's.")
@click.option("--max-params", callback=_parse_qty, metavar="N", help="Budget: fail (exit 1) above N params, e.g. 5M.")
@click.option("--max-trainable-params", callback=_parse_qty, metavar="N", help="Budget on trainable params.")
@click.option("--max-macs", callback=_parse_qty, metavar="N", help="Budget: MACs per sample, e.g. 1G.")
@click.option("--max-memory", callback=_parse_qty, metavar="SIZE",
              help="Budget: memory of one training step at the spec's batch (with --optimizer), e.g. 8GiB.")
@click.option("--min-rf", type=click.IntRange(min=1), help="Budget: the final receptive field is at least this.")
@click.option("--max-rf", type=click.IntRange(min=1), help="Budget: the final receptive field is at most this.")
@click.option("--expect-output", "expect_output", callback=_parse_shape, metavar="SHAPE",
              help="Budget: the output shape must be SHAPE, e.g. 10.")
def check(specs, fmt, input_shape, batch, no_warnings, depth, optimizer, memory_limit, cpu_isa, max_params,
          max_trainable_params, max_macs, max_memory, min_rf, max_rf, expect_output):
    """Validate specs analytically: shapes, receptive fields, params, MACs, memory.

    Exit status: 0 all valid, 1 a spec has errors, 2 a file could not be read.
    Never imports torch.
    """
    budgets = _budgets(optimizer, cpu_isa, expect_output, max_params, max_trainable_params, max_macs, max_memory,
                       min_rf, max_rf)
    results, status = [], EXIT_OK
    for path in specs:
        report, exc, code = _check_one(path, input_shape, batch, budgets)
        results.append((path, report, exc))
        status = EXIT_FAILED if code == EXIT_FAILED else max(status, code)
    mem = {"optimizer": optimizer, "memory_limit": memory_limit, "cpu_isa": cpu_isa}
    _print_results(results, fmt, mem, show_warnings=not no_warnings, depth=depth, multi=len(specs) > 1)
    sys.exit(status)


def _budgets(optimizer, cpu_isa, expect_output, *limits):
    """The check's Budgets, None when none is asked for (cnnshape.gates only then: start-up time)."""
    if not expect_output and all(v is None for v in limits):
        return None
    from .gates import Budgets

    return Budgets(*limits, tuple(expect_output) if expect_output else None, optimizer, cpu_isa)


def _check_one(path, input_shape, batch, budgets):
    """(report, None, exit status) of one spec, or (None, the error, exit status)."""
    from .analysis import check as analysis_check
    from .errors import SpecError, SpecFileError

    try:
        src = None if is_python_target(path) else _spec_arg(path)  # read once (stdin cannot be read twice)
        report = check_arg(path, input_shape, batch) if src is None else analysis_check(src, input=input_shape, batch=batch)
        if input_shape and not report.ok and src is not None:  # which sizes would work (only on failure)
            from .sizes import with_nearby_sizes
            report = with_nearby_sizes(report, src, input_shape)
        if budgets is not None:
            from .gates import check_budgets

            over = check_budgets(report, budgets)
            if over:
                from dataclasses import replace

                report = replace(report, errors=report.errors + tuple(over))
        return report, None, EXIT_OK if report.ok else EXIT_INVALID
    except SpecError as exc:
        return None, exc, EXIT_INVALID
    except SpecFileError as exc:
        return None, exc, EXIT_FAILED


def _print_results(results, fmt: str, mem: dict, show_warnings: bool, depth: int, multi: bool) -> None:
    if fmt == "json":
        docs = [_json_doc(path, report, exc, multi=multi, mem=mem) for path, report, exc in results]
        click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
    elif fmt in ("github", "markdown"):
        from . import ci_formats

        rows = [(path, report, exc, ()) for path, report, exc in results]
        click.echo("\n".join(ci_formats.github(rows)) if fmt == "github" else ci_formats.markdown(rows))
    else:
        _print_tables(results, show_warnings=show_warnings, depth=depth, mem=mem)


def is_python_target(arg) -> bool:
    """``FILE.py:ATTR`` or ``PACKAGE:NAME`` (``torchvision:resnet18``, ``timm:resnet18``; the
    packages of :data:`cnnshape.torch_backend.pyload.PACKAGES`): a Python model (imported
    through torch.fx) instead of a spec."""
    if not isinstance(arg, str):
        return False
    path, sep, attr = arg.rpartition(":")
    if not sep:
        return False
    if path.endswith(".py"):
        return attr.isidentifier()
    from .torch_backend.pyload import PACKAGES  # no torch imported (its imports are lazy)

    return path in PACKAGES and bool(attr) and all(part.isidentifier() for part in attr.split("."))


@contextmanager
def exit_on_load_error(path: str):
    """Inside: a SPEC being loaded. A file that cannot be read (or a user's model file that
    fails) exits 2, a spec that cannot be analysed at all exits 1, each said as ``check`` says it."""
    from .errors import SpecError, SpecFileError

    try:
        yield
    except SpecFileError as exc:
        print_file_error(consoles()[1], path, exc)
        sys.exit(EXIT_FAILED)
    except SpecError as exc:
        print_diagnostics(consoles()[1], path, None, exc)
        sys.exit(EXIT_INVALID)


def load_arg(path: str, input_shape=None, batch=None):
    """What a command-line SPEC names, loaded: ``FILE.py:ATTR`` runs the user's file and
    imports the model through torch.fx (a :class:`~cnnshape.spec.Spec` located at the
    user's lines; needs ``input_shape``), anything else is a spec path (``-``: stdin) left
    for :func:`cnnshape.analysis.check` to read. The one loader every command shares."""
    if is_python_target(path):
        from .torch_backend.pyload import load_python

        return load_python(path, input_shape, batch)
    return _spec_arg(path)


def check_arg(path: str, input_shape=None, batch=None):
    """The analysis report of a command-line SPEC (see :func:`load_arg`); raises SpecError
    when nothing could be analysed, SpecFileError when the file cannot be read."""
    from .analysis import check as run_check

    if is_python_target(path):
        from dataclasses import replace

        report = run_check(load_arg(path, input_shape, batch))
        return replace(report, errors=tuple(_python_hint(d) for d in report.errors))
    return run_check(_spec_arg(path), input=input_shape, batch=batch)


def _python_hint(d):
    """A diagnostic of an imported model: the fix said as the constructor argument."""
    from dataclasses import replace

    fix = d.fix or {}
    keys = [k for k in ("in_channels", "in_features", "num_features") if isinstance(fix.get(k), int)]
    if not keys:
        return d
    said = ", ".join(f"{k}={fix[k]}" for k in keys)
    return replace(d, hint=f"construct it with {said} (or change the layers before it)")


def _spec_arg(path: str):
    """A command-line SPEC: always a path (whatever it looks like), ``-`` = standard input."""
    from .spec import SpecPath, YAMLText
    from .yaml_io import decode, read_fd

    if path == "-":
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):  # a replaced stdin (tests, embedding)
            from .limits import MAX_BYTES

            text = sys.stdin.read(MAX_BYTES + 1)
            if len(text) > MAX_BYTES:
                from .errors import SpecFileError

                raise SpecFileError(f"<stdin>: the input is larger than the {MAX_BYTES:,}-byte limit for a spec") from None
            return YAMLText(text)
        import os
        import stat

        from .yaml_io import READ_TIMEOUT

        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            regular = False
        # a pipe or terminal that sends nothing: give up after READ_TIMEOUT (README: Limits)
        return YAMLText(decode(read_fd(fd, "<stdin>", timeout=None if regular else READ_TIMEOUT), "<stdin>"))
    return SpecPath(path)


def _json_doc(path, report, exc, multi: bool, mem=None):
    from .errors import SpecFileError

    if report is not None:
        from .memory import add_to_json

        doc = add_to_json(report.to_dict(), report, **(mem or {}))
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


def consoles():
    """(stdout, stderr) consoles: plain text, ANSI styles only on a terminal, lines never
    wrapped (CI logs get whole lines)."""
    from .term import Console

    return Console(), Console(stderr=True)


from .term import plural  # noqa: E402  (cheap: plain-text helpers)


def print_file_error(err, path: str, exc) -> None:
    """``path: error: message`` for a file that could not be read (no path twice)."""
    message = str(exc)
    from .errors import UserCodeError
    from .term import Text

    if isinstance(exc, UserCodeError):  # already located at the user's line
        err.print(Text.assemble(Text("error:", "bold red"), " ", message))
        return
    if message.startswith(f"{path}: "):
        message = message[len(path) + 2:]
    from .term import Text

    err.print(Text.assemble(Text(path, "bold"), ": ", Text("error:", "bold red"), " ", message))


def print_diagnostics(err, path: str, report, exc) -> None:
    """The located errors of a spec (a report with errors, or a SpecError), then the
    ``✗ path: N errors`` line: the same format for check, verify and export."""
    from .render import diagnostic_text

    if report is None:
        for d in exc.diagnostics:
            err.print(diagnostic_text(d, exc.source, _line_reader(exc.source or path)), end="")
        n = len(exc.diagnostics)
    else:
        spec = report.spec
        src_line = spec.source.line if spec.source else None
        for d in report.errors:
            err.print(diagnostic_text(d, shown_path(spec, path), src_line), end="")
        n = len(report.errors)
    from .term import Text

    err.print(Text(f"✗ {path}: {plural(n, 'error')}", "bold red"))


def shown_path(spec, path: str) -> str:
    """The file a spec's diagnostics point into: the user's .py file for an imported model."""
    return spec.source.path if is_python_target(path) and spec.source and spec.source.path else path


def _print_tables(results, show_warnings: bool, depth: int = 1, mem=None):
    from .errors import SpecFileError
    from .render import diagnostic_text, report_table, totals_text
    from .term import Text

    out, err = consoles()
    for n, (path, report, exc) in enumerate(results):
        if n:
            out.print()
        if isinstance(exc, SpecFileError):
            print_file_error(err, path, exc)
            continue
        if report is None:
            print_diagnostics(err, path, None, exc)
            continue
        spec = report.spec
        from .limits import printable

        title = printable(path) + (f" — {printable(spec.name)}" if spec.name else "")
        if report.layers or report.ok:
            out.print(report_table(report, title=title, depth=depth))
            out.print(totals_text(report, **(mem or {})))
        src_line = spec.source.line if spec.source else None
        if show_warnings:
            for d in report.warnings:
                out.print(diagnostic_text(d, shown_path(spec, path), src_line), end="")
        if report.ok:
            warn = f", {plural(len(report.warnings), 'warning')}" if report.warnings else ""
            out.print(Text.assemble(Text(f"✓ {path}: valid", "bold green"), warn))
        else:
            print_diagnostics(err, path, report, None)


def _line_reader(path):
    """Line ``number`` of the file at ``path`` for a diagnostic, or None: only a regular file
    is read again (a FIFO or stdin could block or differ), at most MAX_BYTES of it, and
    bytes that are not UTF-8 are shown replaced (the diagnostic says where they are)."""
    import os
    import stat

    from .limits import MAX_BYTES

    def read(number):
        try:
            if path == "-" or not stat.S_ISREG(os.stat(path).st_mode):
                return None
            with open(path, "rb") as f:
                data = f.read(MAX_BYTES + 1)
        except (OSError, ValueError):
            return None
        lines = data.decode("utf-8-sig", "replace").splitlines()
        return lines[number - 1] if number is not None and 0 < number <= len(lines) else None
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
