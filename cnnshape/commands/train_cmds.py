"""``cnnshape train`` and ``cnnshape viz`` (torch imported only when they run)."""

import json
import os
import sys

import click

from ..cli import EXIT_INVALID
from .torch_cmds import _fail, _load

DATA_HELP = ("digits (real, offline), mnist, fashion-mnist, kmnist, cifar10, cifar100 (downloaded once, verified, "
             "cached), shapes (generated), folder:PATH.")
DATA_DIR_HELP = ("Where the downloadable sets are looked for and downloaded to (a torchvision root works) "
                 "[default: CNNSHAPE_DATA, else ./data then the cache folder ~/.cache/cnnshape/data].")


class DownloadView:
    """Shows download events (:class:`cnnshape.torch_backend.download.Event`) on ``console``:
    a rich progress bar per file in a terminal, one line per file when piped, nothing when quiet."""

    def __init__(self, console, quiet: bool = False):
        self.console, self.quiet, self.live = console, quiet, console.is_terminal and not quiet
        self.bar = None
        self.tasks: dict[str, int] = {}

    def __call__(self, ev) -> None:
        if self.quiet:
            return
        if ev.kind == "note":
            (self.bar.console if self.bar else self.console).print(f"[yellow]note:[/] {ev.message}",
                                                                   highlight=False)
        elif ev.kind == "start":
            resumed = f" (resuming at {ev.done:,} bytes)" if ev.done else ""
            if not self.live:
                self.console.print(f"downloading {ev.url}{resumed}", highlight=False)
                return
            if self.bar is None:
                from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                           TransferSpeedColumn)

                self.bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                    TransferSpeedColumn(), TimeRemainingColumn(), console=self.console)
                self.bar.start()
            if ev.file in self.tasks:
                self.bar.update(self.tasks[ev.file], completed=ev.done, total=ev.total)
            else:
                self.tasks[ev.file] = self.bar.add_task(ev.file, total=ev.total, completed=ev.done)
        elif ev.kind == "bytes" and self.bar is not None and ev.file in self.tasks:
            self.bar.update(self.tasks[ev.file], completed=ev.done, total=ev.total)
        elif ev.kind == "done":
            if self.bar is not None and ev.file in self.tasks:
                self.bar.update(self.tasks[ev.file], completed=ev.done, total=ev.total,
                                description=f"{ev.file} ✓ MD5")
            else:
                self.console.print(f"downloaded {ev.file} ({ev.done:,} bytes), MD5 verified", highlight=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _data(name, spec, data_dir, limit, samples, seed, classifier: bool = False, download: bool = True,
          console=None, quiet: bool = False):
    """Load the data (downloading a missing downloadable set unless ``download`` is off);
    with ``classifier`` the spec is checked against the data's class count first (no data
    is read or fetched for a spec that cannot train on it)."""
    from rich.console import Console

    from ..analysis import analyze
    from ..torch_backend.data import DataError, known_classes, load_data
    from ..torch_backend.train import TrainError, check_fit

    report = analyze(spec)
    out = report.output
    if classifier:
        from ..torch_backend.shapes_data import classes_for

        wanted = known_classes(name)
        if wanted is None and name.lower() == "shapes" and out is not None and len(out) == 1:
            wanted = min(out[0], len(classes_for(spec.input)))
        try:  # before any data is read; a wider classifier is the trainer's warning
            check_fit(spec, wanted or 1)
        except TrainError as exc:
            _fail(str(exc), EXIT_INVALID)
    outputs = out[0] if out is not None and len(out) == 1 else None
    view = DownloadView(console or Console(stderr=True, highlight=False, soft_wrap=True), quiet)
    try:
        return load_data(name, spec.input, data_dir=data_dir, limit=limit, samples=samples, seed=seed,
                         outputs=outputs, download=download, on_download=view)
    except DataError as exc:
        _fail(str(exc), EXIT_INVALID)
    except KeyboardInterrupt:
        view.close()
        _fail("interrupted; a partial download is kept as NAME.part and resumed by the next run", 130)
    finally:
        view.close()


def _device(device):
    from ..torch_backend.build import BuildError, resolve_device

    try:
        dev = resolve_device(device)
    except BuildError as exc:
        _fail(str(exc))
    if dev.type == "meta":
        _fail("--device meta holds shapes only (no values): training and viz need cpu, cuda or mps")
    if device == "auto":
        why = [] if dev.type == "cuda" else ["no CUDA GPU"] + ([] if dev.type == "mps" else ["no Apple MPS"])
        note = f"device: {dev} (auto{': ' + ', '.join(why) if why else ''})"
    else:
        note = f"device: {dev}"
    return dev, note


def _prepare_out(out_dir: str) -> None:
    """Create ``--out`` and check its two files can be written, before training (exit 2)."""
    from ..atomic import WriteRefused, check_target

    try:
        os.makedirs(out_dir, exist_ok=True)
        for name in ("checkpoint.pt", "metrics.json"):
            check_target(os.path.join(out_dir, name))
    except WriteRefused as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"--out {out_dir}: cannot create the folder ({exc.strerror or exc})")


@click.command("train")
@click.argument("spec")
@click.option("--data", default="digits", show_default=True, help=DATA_HELP)
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@click.option("--no-download", is_flag=True, help="Never download: a missing data set is an error that says what "
              "to fetch and where to put it.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or notes on stderr (also when --format json).")
@click.option("--device", default="auto", show_default=True,
              help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps. A missing device is an error.")
@click.option("--epochs", type=click.IntRange(min=1), help="Passes over the training split (default 3).")
@click.option("--steps", type=click.IntRange(min=1), help="Optimizer steps instead of epochs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True),
              help="Learning rate (default: 0.01 for sgd/momentum, 0.001 for adam/adamw).")
@click.option("--optimizer", type=click.Choice(["sgd", "momentum", "adam", "adamw"]), default="momentum",
              show_default=True, help="momentum = SGD with momentum 0.9, as in the tutorials; the same names as "
              "`cnnshape check --optimizer` (memory figures).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds weights, split and order (reproducible on CPU).")
@click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True)
@click.option("--limit", type=click.IntRange(min=10), help="Use at most this many samples.")
@click.option("--samples", type=click.IntRange(min=10), help="How many samples --data shapes generates (default 2000).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write checkpoint.pt and metrics.json here.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def train_cmd(spec, data, data_dir, no_download, quiet, device, epochs, steps, batch_size, lr, optimizer, seed,
              val_fraction, limit, samples, out_dir, fmt):
    """Train SPEC briefly on real or generated data and report loss and accuracy."""
    from ..torch_backend.train import TrainConfig, TrainError

    s = _load(spec)
    if out_dir:
        _prepare_out(out_dir)
    try:
        config = TrainConfig(epochs=epochs, steps=steps, batch_size=batch_size, lr=lr, optimizer=optimizer,
                             seed=seed, val_fraction=val_fraction)
    except TrainError as exc:
        _fail(str(exc))
    lr = config.learning_rate
    dev, dev_note = _device(device)
    from rich.console import Console

    err = Console(stderr=True, highlight=False, soft_wrap=True)  # piped lines are not broken at 80 columns
    quiet = quiet or fmt == "json"
    ds = _data(data, s, data_dir, limit, samples, seed, classifier=True, download=not no_download, console=err,
               quiet=quiet)
    if not quiet:
        err.print(f"[bold]{spec}[/] on [bold]{ds.name}[/] ({len(ds)} samples, {ds.num_classes} classes) · {dev_note}"
                  f" · {optimizer} lr {lr} · batch {batch_size}")
        for n in ds.notices:
            err.print(f"[cyan]note:[/] {n}")
    result = _run_training(s, ds, config, dev, err, quiet)
    payload = {"spec": spec, "data": ds.name, "samples": len(ds), "classes": list(ds.classes),
               "notices": list(ds.notices), "optimizer": optimizer, "lr": lr, "batch_size": batch_size,
               "seed": seed, **result.to_dict()}
    out_dir, write_error = _write_results(out_dir, result, s, ds, payload)
    if fmt == "json":
        click.echo(json.dumps(payload, indent=2))
    else:
        _print_summary(result, ds, err, out_dir, payload)
    if write_error:
        _fail(write_error)
    if result.stopped == "nan":
        sys.exit(EXIT_INVALID)
    if result.stopped == "interrupted":
        sys.exit(130)


def _run_training(s, ds, config, dev, err, quiet: bool):
    """train() with a progress bar (or epoch lines) on ``err`` unless ``quiet``; exits on a TrainError/BuildError."""
    from ..torch_backend.build import BuildError
    from ..torch_backend.train import TrainError, train

    bar = None
    if quiet:
        progress_cb = None
    else:
        bar, progress_cb = _train_progress(err)
    try:
        if bar is not None:
            bar.start()
        return train(s, ds, config, device=dev, on_progress=progress_cb)
    except TrainError as exc:
        _fail(str(exc), EXIT_INVALID)
    except BuildError as exc:
        _fail(str(exc))
    finally:
        if bar is not None:
            bar.stop()


def _write_results(out_dir, result, s, ds, payload: dict):
    """Write checkpoint.pt and metrics.json into ``out_dir`` (when given) and add the
    checkpoint's path to ``payload``: (out_dir, None), or (None, the error) when the write
    failed (the result stays in memory until written; a failed write is reported, not lost)."""
    if not out_dir:
        return out_dir, None
    from ..torch_backend.checkpoint import save_checkpoint

    try:
        os.makedirs(out_dir, exist_ok=True)
        ck = save_checkpoint(os.path.join(out_dir, "checkpoint.pt"), result.model, s,
                             metrics=result.to_dict(), classes=ds.classes, data=ds.name)
        from ..atomic import write_atomic

        write_atomic(os.path.join(out_dir, "metrics.json"), json.dumps(payload, indent=2))
        payload["checkpoint"] = ck
    except OSError as exc:
        return None, f"could not write the results to {out_dir}: {getattr(exc, 'strerror', None) or exc}"
    return out_dir, None


def _print_summary(result, ds, err, out_dir, payload: dict) -> None:
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {w}")
    style = "green" if result.stopped is None else "yellow" if result.stopped != "nan" else "red"
    f = result.final
    chance = 1 / ds.num_classes
    summary = result.message
    if f is not None and f.val_accuracy is not None and result.stopped != "nan":
        summary += f" (chance: {chance:.0%})"
    click.echo(click.style(summary, fg=style))
    if out_dir:
        click.echo(f"checkpoint: {payload['checkpoint']} · metrics: {os.path.join(out_dir, 'metrics.json')}")


def _train_progress(err):
    """(rich Progress or None, callback) for a training run: a live bar (steps, loss,
    accuracy, img/s, ms/step, time left) in a terminal; when piped, one line per epoch."""

    def epoch_line(p):
        return (f"  epoch {p.epoch}: train loss {p.loss:.4f} acc {p.accuracy:.1%} · "
                f"val loss {p.val_loss:.4f} acc {p.val_accuracy:.1%}")

    if not err.is_terminal:
        def plain(p):
            if p.val_accuracy is not None:
                err.print(epoch_line(p))
        return None, plain
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.4f} · acc {task.fields[acc]:.1%} · "
                              "{task.fields[ips]:,.0f} img/s · {task.fields[ms]:.1f} ms/step"),
                   TimeElapsedColumn(), TextColumn("elapsed ·"), TimeRemainingColumn(), TextColumn("left"),
                   console=err, transient=False)
    task = None

    def live(p):
        nonlocal task
        if task is None:
            task = bar.add_task("train", total=p.total_steps, epoch=p.epoch, loss=p.loss, acc=p.accuracy,
                                ips=p.images_per_s, ms=p.step_ms)
        bar.update(task, completed=p.step, epoch=f"{p.epoch}/{p.epochs}", loss=p.loss, acc=p.accuracy,
                   ips=p.images_per_s, ms=p.step_ms)
        if p.val_accuracy is not None:
            bar.console.print(epoch_line(p))
    return bar, live


@click.command("viz")
@click.argument("spec")
@click.option("--checkpoint", type=click.Path(dir_okay=False), help="Weights from `cnnshape train --out` (default: "
              "the spec's initial weights, fixed `weight:` kernels included).")
@click.option("--layer", "layers", multiple=True, help="Layer name, index or dotted path into blocks, e.g. "
              "layer2.0.conv1; repeat for several (default: the first 8 conv layers).")
@click.option("--image", type=click.Path(dir_okay=False), help="Feed this picture (PNG, JPEG...; any size: resized "
              "and converted to the spec's input, with a note) instead of a data set sample.")
@click.option("--data", default="digits", show_default=True, help=DATA_HELP)
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@click.option("--no-download", is_flag=True, help="Never download a missing data set.")
@click.option("--sample", type=click.IntRange(min=0), default=0, show_default=True, help="Which sample to feed.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
def viz_cmd(spec, checkpoint, layers, image, data, data_dir, no_download, sample, seed, out_path):
    """Write filters and feature maps of SPEC's layers for one sample (or --image) as a PNG."""
    import torch

    from ..torch_backend import viz
    from ..torch_backend.build import BuildError, build
    from ..torch_backend.checkpoint import CheckpointError, load_checkpoint

    s = _load(spec)
    try:
        if checkpoint:
            model = load_checkpoint(checkpoint, s).model
        else:
            torch.manual_seed(seed)
            model = build(s, dtype="float32")
    except (CheckpointError, BuildError) as exc:
        _fail(str(exc), EXIT_INVALID)
    if image:
        try:
            x, notes = viz.load_image(image, s.input)
        except viz.VizError as exc:
            _fail(str(exc), EXIT_INVALID)
        for n in notes:
            click.echo(f"note: {n}", err=True)
        title = f"input: {os.path.basename(image)}"
    else:
        ds = _data(data, s, data_dir, None, 64 if data == "shapes" else None, seed, download=not no_download)
        if sample >= len(ds):
            _fail(f"--sample {sample}: the data set has {len(ds)} samples", EXIT_INVALID)
        x = ds.x[sample]
        title = f"input: sample {sample} of {ds.name} (class {ds.classes[int(ds.y[sample])]})"
    names = list(dict.fromkeys(layers)) or viz.conv_layers(model)[:8]
    if not names:
        _fail("the spec has no conv layers; pick one with --layer NAME to see its feature maps", EXIT_INVALID)
    panels = [viz.input_panel(title, x)]
    try:
        for name in names:
            lname, _ = viz.child(model, name)
            if lname in viz.conv_layers(model):
                w = viz.filters(model, lname)
                panels.append(viz.filters_panel(f"{lname}: {w.shape[0]} filters {list(w.shape[1:])}", w))
            maps = viz.feature_maps(model, x, lname)
            panels.append(viz.maps_panel(f"{lname}: feature maps {list(maps.shape)}", maps))
    except viz.VizError as exc:
        _fail(str(exc), EXIT_INVALID)
    try:
        viz.write_png(out_path, panels)
    except OSError as exc:
        _fail(f"cannot write {out_path}: {exc}")
    click.echo(f"wrote {out_path}: " + "; ".join(p.title for p in panels))
