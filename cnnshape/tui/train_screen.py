"""The train panel: brief training of the current design in a worker thread.

The design is locked while a run is in progress (the studio's editing keys are disabled
under this screen, and the screen cannot be left until the run is stopped or done). The
loop itself is :func:`cnnshape.torch_backend.train.train`; this screen only collects the
options, shows progress and keeps the result for the feature-map view.
"""

import threading
import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    Button,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    Select,
    Static,
)
from textual_plotext import PlotextPlot

from . import extras
from .markup import escape

DATA_CHOICES = [("digits (real handwritten, offline)", "digits"), ("shapes (generated)", "shapes"),
                ("mnist (downloaded once, cached)", "mnist"),
                ("fashion-mnist (downloaded once, cached)", "fashion-mnist"),
                ("kmnist (downloaded once, cached)", "kmnist"), ("cifar10 (downloaded once, cached)", "cifar10"),
                ("cifar100 (downloaded once, cached)", "cifar100"), ("folder (one sub-folder per class)", "folder")]


def probe_devices() -> list[tuple[str, str, bool]]:
    """(value, label, available) for cpu, cuda and mps (imports torch)."""
    import torch

    out = [("cpu", "cpu", True)]
    if torch.cuda.is_available():
        out.append(("cuda", f"cuda ({torch.cuda.get_device_name(0)})", True))
    else:
        out.append(("cuda", "cuda: not available", False))
    mps = getattr(torch.backends, "mps", None)
    ok = bool(mps is not None and mps.is_available())
    out.append(("mps", "mps" if ok else "mps: not available", ok))
    return out


def free_memory(device: str) -> int | None:
    """Bytes free on ``device`` ("cpu", "cuda", "auto"), None when unknown."""
    if device in ("cuda", "auto"):
        import torch

        if torch.cuda.is_available():
            return int(torch.cuda.mem_get_info()[0])
        if device == "cuda":
            return None
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def line_plot(plot: PlotextPlot, title: str, series: list[tuple[str, list, list]], ylabel: str) -> None:
    """Draw ``series`` [(label, xs, ys)] on a plotext widget with axes and a legend."""
    plt = plot.plt
    plt.clear_figure()
    plt.title(title)
    plt.xlabel("step")
    plt.ylabel(ylabel)
    for label, xs, ys in series:
        if xs:
            plt.plot(xs, ys, label=label, marker="braille")
    plot.refresh()


#: the panel's field for each command-line option that training and data messages name
#: (they are written for `cnnshape train`)
PANEL_FIELDS = {"--data": "data", "--data-dir": "data dir", "--device": "device", "--epochs": "epochs",
                "--steps": "steps", "--lr": "learning rate", "--batch-size": "batch size", "--batch": "batch size",
                "--optimizer": "optimizer"}


def panel_legend(message: str) -> str:
    """A line that says which panel field each command-line option in ``message`` is
    (empty when it names none); the message itself is shown as written."""
    import re

    flags = dict.fromkeys(re.findall(r"--[a-z][a-z-]*", message))
    parts = [f"{f} is the '{PANEL_FIELDS[f]}' field" if f in PANEL_FIELDS else f"{f} is a command-line option "
             "(`cnnshape train`), not in this panel" for f in flags]
    return f"here: {'; '.join(parts)}" if parts else ""


def epoch_line(p, stopped: bool) -> str:
    """The log line of an epoch's end report; a run stopped inside the epoch says so (its
    figures cover the steps done, not a finished epoch)."""
    where = f"epoch {p.epoch}/{p.epochs}"
    if stopped:
        where += f" (run stopped at step {p.step}; figures over the steps done)"
    train = f"train loss {p.loss:.4f} acc {p.accuracy:.1%}"
    val = f" · val loss {p.val_loss:.4f} acc {p.val_accuracy:.1%}" if p.val_accuracy is not None else ""
    return f"{where}: {train}{val}"


def end_line(result, total: int) -> str:
    """The stats line at the end of a run: the mean time per step over the whole run
    (total time / steps), not the last step's."""
    what = "done" if result.stopped is None else f"stopped ({result.stopped})"
    speed = f" · {result.seconds / result.steps * 1e3:.1f} ms/step (mean)" if result.steps else ""
    return f"[b]{what}[/b] at step {result.steps}/{total} · {result.seconds:.1f} s{speed}"


class TrainScreen(Screen):
    """Options, Start/Stop, progress, live loss and accuracy plots, per-step timing."""

    #: the screen's keys (footer and command palette); the ctrl keys win over the text
    #: fields (priority), where ctrl+x would cut and ctrl+k delete to the end of the line
    BINDINGS = [
        Binding("escape", "back", "Back to design", tooltip="back to the design (when no run is in progress)"),
        Binding("ctrl+r", "start", "Start", priority=True, tooltip="start a training run with these options"),
        Binding("ctrl+x", "stop", "Stop", priority=True, tooltip="stop the run after the current step"),
        Binding("m", "maps", "Maps", tooltip="filters and feature maps, before/after training"),
        Binding("ctrl+k", "save_checkpoint", "Save checkpoint", priority=True,
                tooltip="save the trained weights (a checkpoint .pt file)"),
    ]

    def __init__(self, spec, title: str):
        super().__init__()
        self.spec = spec
        self.title_text = title
        self.running = False
        self.stop_event = threading.Event()
        self.losses: list[float] = []
        self.accs: list[float] = []
        self.steps: list[int] = []
        self.val: list[tuple[int, float, float]] = []  # (step, val loss, val accuracy) per epoch
        self.last_speed = ""
        self.total_steps = 0
        self.warned_fit = False  # a run that will not fit starts on the second ctrl+r
        self.free: dict[str, int | None] = {}
        self.result = None
        self.dataset = None
        self.log_lines: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="train-main"):
            with VerticalScroll(id="train-options"):
                yield Label("[b]Train briefly[/b]  " + escape(self.title_text))
                yield Label("data")
                yield Select(DATA_CHOICES, value="digits", allow_blank=False, id="t-data", compact=True)
                yield Input(placeholder="data dir (mnist) or folder path", id="t-path", compact=True)
                yield Label("device")
                yield Select([("auto", "auto"), ("cpu", "cpu")], value="auto", allow_blank=False, id="t-device",
                             compact=True)
                yield Static("[dim]checking devices…[/]", id="t-devices")
                for key, label, value in (("epochs", "epochs", "3"), ("steps", "steps (instead of epochs)", ""),
                                          ("lr", "learning rate (empty: the optimizer's default)", ""),
                                          ("batch", "batch size", "64")):
                    yield Label(label)
                    yield Input(value=value, id=f"t-{key}", compact=True)
                yield Label("optimizer")
                yield Select([("sgd + momentum 0.9", "momentum"), ("sgd", "sgd"), ("adam", "adam"), ("adamw", "adamw")],
                             value="momentum", allow_blank=False, id="t-optimizer", compact=True)
                yield Static("", id="t-memory")
                with Horizontal(classes="buttons"):
                    yield Button("Start (ctrl+r)", id="t-start", variant="success")
                    yield Button("Stop (ctrl+x)", id="t-stop", variant="error", disabled=True)
            with Vertical(id="train-view"):
                yield Static("The design is locked while training runs (stop it to edit again).", id="t-lock")
                yield ProgressBar(total=100, show_eta=True, id="t-progress")
                yield Static("", id="t-stats")
                with Horizontal(id="t-plots"):
                    yield PlotextPlot(id="t-loss")
                    yield PlotextPlot(id="t-acc")
                with VerticalScroll(id="t-log-box"):
                    yield Static("", id="t-log")
        yield Footer()

    def commands(self):
        """(title, help, callback) of the command palette: this screen's keys."""
        for b in self.BINDINGS:
            yield b.description, b.tooltip, (lambda action=b.action: self.run_action(action))

    def on_mount(self) -> None:
        self.query_one("#t-lock").display = False
        self._plot()
        self.probe()

    @work(thread=True, exclusive=True, group="probe", exit_on_error=False)
    def probe(self) -> None:
        try:
            devices = probe_devices()
            free = {d: free_memory(d) for d in ("cpu", "cuda", "auto")}
        except Exception as exc:  # noqa: BLE001 - a broken torch install must not close the studio
            self.app.call_from_thread(self._probe_failed, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self._show_devices, devices, free)

    def _probe_failed(self, message: str) -> None:
        self.query_one("#t-devices", Static).update(f"[red]cannot check devices: {escape(message)}[/]")
        self.query_one("#t-device", Select).set_options([("cpu", "cpu")])

    def _show_devices(self, devices, free=None) -> None:
        self.free = free or {}
        sel = self.query_one("#t-device", Select)
        sel.set_options([("auto", "auto")] + [(label, value) for value, label, ok in devices if ok])
        sel.value = "auto"
        text = " · ".join(f"[green]{escape(label)}[/]" if ok else f"[dim]{escape(label)}[/]"
                          for _, label, ok in devices)
        self.query_one("#t-devices", Static).update(text)
        self._check_fit()

    @on(Input.Changed, "#t-batch")
    @on(Select.Changed, "#t-device, #t-optimizer")
    def _check_fit(self, event=None) -> str | None:
        """Show (and return) the warning when the batch will not fit the chosen device (a
        changed batch, device or optimizer asks again before the next run)."""
        if event is not None:
            self.warned_fit = False
        warning = None
        try:
            batch = int(self.query_one("#t-batch", Input).value)
        except ValueError:
            batch = None
        device = self.query_one("#t-device", Select).value
        if batch and batch > 0 and isinstance(device, str):
            from ..analysis import analyze

            optimizer = self.query_one("#t-optimizer", Select).value  # the same names as the memory model
            warning = extras.fit_warning(analyze(self.spec), batch=batch, optimizer=optimizer,
                                         free_bytes=self.free.get(device), device=device)
        self.query_one("#t-memory", Static).update(f"[yellow]⚠ {escape(warning)}[/]" if warning else "")
        return warning

    # ------------------------------------------------------------------ options
    def _options(self) -> dict:
        def number(key, kind, allow_empty=False):
            text = self.query_one(f"#t-{key}", Input).value.strip()
            if not text and allow_empty:
                return None
            try:
                v = kind(text)
            except ValueError:
                raise ValueError(f"{key}: expected a number, received {text!r}") from None
            if v <= 0:
                raise ValueError(f"{key} must be positive, received {text}")
            return v

        data = self.query_one("#t-data", Select).value
        path = self.query_one("#t-path", Input).value.strip()
        if data == "folder":
            if not path:
                raise ValueError("folder data: type the folder path (one sub-folder per class)")
            data = f"folder:{path}"
        from ..torch_backend.train import TrainConfig, TrainError  # torch-free module top

        try:  # validated where the CLI and the API validate it
            config = TrainConfig(epochs=number("epochs", int, True), steps=number("steps", int, True),
                                 lr=number("lr", float, True), batch_size=number("batch", int),
                                 optimizer=self.query_one("#t-optimizer", Select).value)
        except TrainError as exc:
            raise ValueError(str(exc)) from None
        return {"data": data, "data_dir": path or None, "device": self.query_one("#t-device", Select).value,
                "config": config}

    # ------------------------------------------------------------------- actions
    @on(Button.Pressed, "#t-start")
    def action_start(self) -> None:
        if self.running:
            return
        try:
            opts = self._options()
        except ValueError as exc:
            self._log(f"[red]{escape(str(exc))}[/]")
            return
        warning = self._check_fit()
        if warning and not self.warned_fit:
            self.warned_fit = True
            self._log(f"[yellow]⚠ {escape(warning)}: press ctrl+r again to run anyway[/]")
            return
        self.running = True
        self.result = None
        self.stop_event.clear()
        self.losses, self.accs, self.steps, self.val = [], [], [], []
        self.last_speed, self.total_steps = "", 0
        self._plot()
        self.query_one("#t-progress", ProgressBar).update(total=100, progress=0)
        self.query_one("#t-stats", Static).update("")
        self.query_one("#t-start", Button).disabled = True
        self.query_one("#t-stop", Button).disabled = False
        self.query_one("#t-lock").display = True
        self.log_lines = []
        self._log(f"loading {opts['data']} and torch…")
        self.run_training(opts)

    @on(Button.Pressed, "#t-stop")
    def action_stop(self) -> None:
        if self.running:
            self.stop_event.set()
            self._log("stopping after the current step…")
        else:
            self.notify("no run in progress (ctrl+r starts one)", severity="warning")

    def action_back(self) -> None:
        if self.running:
            self.notify("training is running: stop it first (ctrl+x)", severity="warning")
            return
        self.dismiss(self.result)

    def action_maps(self) -> None:
        if self.running:
            self.notify("wait for the run to finish or stop it", severity="warning")
            return
        from .maps_screen import MapsScreen

        self.app.push_screen(MapsScreen(self.spec, self.result, self.dataset))

    def action_save_checkpoint(self) -> None:
        if self.result is None:
            self.notify("train first", severity="warning")
            return
        from pathlib import Path

        from .screens import PromptScreen

        def save(name):
            if not name:
                return
            from ..torch_backend.checkpoint import save_checkpoint

            path = Path(name).expanduser()
            try:
                save_checkpoint(path, self.result.model, self.spec, metrics=self.result.to_dict(),
                                classes=self.dataset.classes, data=self.dataset.name)
            except Exception as exc:  # noqa: BLE001 - a failed write is reported, the studio stays
                self._log(f"[red]checkpoint not saved: {escape(f'{type(exc).__name__}: {exc}')}[/]")
                return
            self._log(f"checkpoint saved: {escape(str(path.resolve()))}")
        default = str(self.app.path.with_suffix(".pt"))
        self.app.push_screen(PromptScreen("Save the trained weights (checkpoint) to", default,
                                          "path of the .pt file"), save)

    # -------------------------------------------------------------------- worker
    @work(thread=True, exclusive=True, group="train", exit_on_error=False)
    def run_training(self, opts: dict) -> None:
        from ..analysis import analyze
        from ..errors import CnnshapeError
        from ..torch_backend.data import load_data
        from ..torch_backend.train import train

        call = self.app.call_from_thread
        try:
            out = analyze(self.spec).output
            outputs = out[0] if out is not None and len(out) == 1 else None
            ds = load_data(opts["data"], self.spec.input, data_dir=opts["data_dir"], outputs=outputs,
                           download=True, on_download=self._download_reporter())
            for n in ds.notices:
                call(self._log, f"[cyan]note:[/] {escape(n)}")
                if panel_legend(n):
                    call(self._log, f"[dim]  {escape(panel_legend(n))}[/]")
            self.dataset = ds
            t0 = time.perf_counter()
            result = train(self.spec, ds, opts["config"], device=opts["device"],
                           on_progress=lambda p: call(self._progress, p), should_stop=self.stop_event.is_set,
                           progress_every=5)
            call(self._done, result, time.perf_counter() - t0)
        except CnnshapeError as exc:
            call(self._failed, str(exc))
        except Exception as exc:  # noqa: BLE001 - torch errors (CUDA out of memory...) go to the panel
            call(self._failed, f"training failed: {type(exc).__name__}: {exc}")

    def _download_reporter(self):
        """A download-event callback for the worker thread: the bar and the stats line follow
        the bytes (at most ~10 updates a second), notes and finished files go to the log."""
        call, last = self.app.call_from_thread, [0.0]

        def report(ev) -> None:
            now = time.perf_counter()
            if ev.kind == "bytes" and now - last[0] < 0.1 and ev.done != ev.total:
                return
            last[0] = now
            call(self._download_event, ev)
        return report

    def _download_event(self, ev) -> None:
        if ev.kind == "note":
            self._log(f"[yellow]note:[/] {escape(ev.message)}")
        elif ev.kind == "done":
            self._log(f"downloaded {escape(ev.file)} ({ev.done / 1e6:.1f} MB), MD5 verified")
        elif ev.kind in ("start", "bytes"):
            if ev.kind == "start":
                self._log(f"downloading {escape(ev.url)}" + (f" (resuming at {ev.done:,} bytes)" if ev.done else ""))
            size = f" of {ev.total / 1e6:.1f}" if ev.total else ""
            self.query_one("#t-progress", ProgressBar).update(total=ev.total, progress=ev.done)
            self.query_one("#t-stats", Static).update(f"downloading {escape(ev.file)}: {ev.done / 1e6:.1f}{size} MB")

    def _progress(self, p) -> None:
        if not self.running:
            return  # a report that arrived after the run ended
        bar = self.query_one("#t-progress", ProgressBar)
        self.total_steps = p.total_steps
        bar.update(total=p.total_steps, progress=p.step)
        if p.val_accuracy is not None:
            self._log(epoch_line(p, stopped=self.stop_event.is_set()))
            self.val.append((p.step, p.val_loss, p.val_accuracy))
            self._plot()
            return
        self.losses.append(p.loss)
        self.accs.append(p.accuracy)
        self.steps.append(p.step)
        self._plot()
        self.last_speed = f"{p.images_per_s:,.0f} img/s · {p.step_ms:.1f} ms/step"
        self.query_one("#t-stats", Static).update(
            f"step {p.step}/{p.total_steps} · epoch {p.epoch}/{p.epochs} · loss [b]{p.loss:.4f}[/b] · "
            f"acc [b]{p.accuracy:.1%}[/b] · {self.last_speed}")

    def _plot(self) -> None:
        vs = [v[0] for v in self.val]
        line_plot(self.query_one("#t-loss", PlotextPlot), "loss", [
            ("train", self.steps, self.losses), ("validation", vs, [v[1] for v in self.val])], "loss")
        line_plot(self.query_one("#t-acc", PlotextPlot), "accuracy (%)", [
            ("train", self.steps, [100 * a for a in self.accs]),
            ("validation", vs, [100 * v[2] for v in self.val])], "%")

    def _finish(self) -> None:
        self.running = False
        self.query_one("#t-start", Button).disabled = False
        self.query_one("#t-stop", Button).disabled = True
        self.query_one("#t-lock").display = False

    def _done(self, result, seconds: float) -> None:
        self.result = result
        self._finish()
        bar = self.query_one("#t-progress", ProgressBar)
        total = self.total_steps or result.steps
        bar.update(total=max(total, 1), progress=total if result.stopped is None else result.steps)
        self.query_one("#t-stats", Static).update(end_line(result, total))
        color = "green" if result.stopped is None else "yellow" if result.stopped != "nan" else "red"
        for w in result.warnings:
            self._log(f"[yellow]warning:[/] {escape(w)}")
        self._log(f"[{color}]{escape(result.message)}[/]  (m: filters & feature maps, ctrl+k: save checkpoint)")

    def _failed(self, message: str) -> None:
        self._finish()
        self._log(f"[red]{escape(message)}[/]")
        if panel_legend(message):
            self._log(f"[cyan]  {escape(panel_legend(message))}[/]")

    def _log(self, line: str) -> None:
        self.log_lines = (self.log_lines + [line])[-14:]
        self.query_one("#t-log", Static).update("\n".join(self.log_lines))
        self.query_one("#t-log-box").scroll_end(animate=False)  # the newest line in view
