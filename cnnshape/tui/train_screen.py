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
from textual.widgets import Button, Footer, Header, Input, Label, ProgressBar, Select, Sparkline, Static

from .markup import escape

DATA_CHOICES = [("digits (real handwritten, offline)", "digits"), ("shapes (generated)", "shapes"),
                ("mnist (IDX files in data dir)", "mnist"), ("fashion-mnist (IDX files in data dir)", "fashion-mnist"),
                ("folder (one sub-folder per class)", "folder")]


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


class TrainScreen(Screen):
    """Options, Start/Stop, progress, live loss and accuracy plots, per-step timing."""

    BINDINGS = [
        Binding("escape", "back", "Back to design"),
        Binding("ctrl+r", "start", "Start"),
        Binding("ctrl+x", "stop", "Stop"),
        Binding("m", "maps", "Filters & maps"),
        Binding("ctrl+k", "save_checkpoint", "Save checkpoint"),
    ]

    def __init__(self, spec, title: str):
        super().__init__()
        self.spec = spec
        self.title_text = title
        self.running = False
        self.stop_event = threading.Event()
        self.losses: list[float] = []
        self.accs: list[float] = []
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
                                          ("lr", "learning rate", "0.01"), ("batch", "batch size", "64")):
                    yield Label(label)
                    yield Input(value=value, id=f"t-{key}", compact=True)
                yield Label("optimizer")
                yield Select([("sgd (momentum 0.9)", "sgd"), ("adam", "adam")], value="sgd", allow_blank=False,
                             id="t-optimizer", compact=True)
                with Horizontal(classes="buttons"):
                    yield Button("Start (ctrl+r)", id="t-start", variant="success")
                    yield Button("Stop (ctrl+x)", id="t-stop", variant="error", disabled=True)
            with Vertical(id="train-view"):
                yield Static("The design is locked while training runs (stop it to edit again).", id="t-lock")
                yield ProgressBar(total=100, show_eta=True, id="t-progress")
                yield Static("", id="t-stats")
                yield Label("loss")
                yield Sparkline([], id="t-loss")
                yield Label("training accuracy")
                yield Sparkline([], id="t-acc")
                yield Static("", id="t-log")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#t-lock").display = False
        self.probe()

    @work(thread=True, exclusive=True, group="probe")
    def probe(self) -> None:
        devices = probe_devices()
        self.app.call_from_thread(self._show_devices, devices)

    def _show_devices(self, devices) -> None:
        sel = self.query_one("#t-device", Select)
        sel.set_options([("auto", "auto")] + [(label, value) for value, label, ok in devices if ok])
        sel.value = "auto"
        text = " · ".join(f"[green]{escape(label)}[/]" if ok else f"[dim]{escape(label)}[/]"
                          for _, label, ok in devices)
        self.query_one("#t-devices", Static).update(text)

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
        return {"data": data, "data_dir": path or None, "device": self.query_one("#t-device", Select).value,
                "epochs": number("epochs", int, True), "steps": number("steps", int, True),
                "lr": number("lr", float), "batch_size": number("batch", int),
                "optimizer": self.query_one("#t-optimizer", Select).value}

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
        self.running = True
        self.stop_event.clear()
        self.losses, self.accs = [], []
        self.query_one("#t-loss", Sparkline).data = []
        self.query_one("#t-acc", Sparkline).data = []
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
        from ..torch_backend.checkpoint import save_checkpoint

        path = self.app.path.with_suffix(".pt")
        save_checkpoint(path, self.result.model, self.spec, metrics=self.result.to_dict(),
                        classes=self.dataset.classes, data=self.dataset.name)
        self._log(f"checkpoint saved: {escape(str(path))}")

    # -------------------------------------------------------------------- worker
    @work(thread=True, exclusive=True, group="train")
    def run_training(self, opts: dict) -> None:
        from ..analysis import analyze
        from ..errors import CnnshapeError
        from ..torch_backend.data import load_data
        from ..torch_backend.train import train

        call = self.app.call_from_thread
        try:
            out = analyze(self.spec).output
            outputs = out[0] if out is not None and len(out) == 1 else None
            ds = load_data(opts["data"], self.spec.input, data_dir=opts["data_dir"], outputs=outputs)
            for n in ds.notices:
                call(self._log, f"[cyan]note:[/] {escape(n)}")
            self.dataset = ds
            t0 = time.perf_counter()
            result = train(self.spec, ds, device=opts["device"], epochs=opts["epochs"], steps=opts["steps"],
                           batch_size=opts["batch_size"], lr=opts["lr"], optimizer=opts["optimizer"],
                           on_progress=lambda p: call(self._progress, p), should_stop=self.stop_event.is_set,
                           progress_every=5)
            call(self._done, result, time.perf_counter() - t0)
        except CnnshapeError as exc:
            call(self._failed, str(exc))

    def _progress(self, p) -> None:
        bar = self.query_one("#t-progress", ProgressBar)
        bar.update(total=p.total_steps, progress=p.step)
        if p.val_accuracy is not None:
            self._log(f"epoch {p.epoch}/{p.epochs}: train loss {p.loss:.4f} acc {p.accuracy:.1%} · "
                      f"val loss {p.val_loss:.4f} acc {p.val_accuracy:.1%}")
            return
        self.losses.append(p.loss)
        self.accs.append(p.accuracy)
        self.query_one("#t-loss", Sparkline).data = list(self.losses)
        self.query_one("#t-acc", Sparkline).data = list(self.accs)
        self.query_one("#t-stats", Static).update(
            f"step {p.step}/{p.total_steps} · epoch {p.epoch}/{p.epochs} · loss [b]{p.loss:.4f}[/b] · "
            f"acc [b]{p.accuracy:.1%}[/b] · {p.images_per_s:,.0f} img/s · {p.step_ms:.1f} ms/step")

    def _finish(self) -> None:
        self.running = False
        self.query_one("#t-start", Button).disabled = False
        self.query_one("#t-stop", Button).disabled = True
        self.query_one("#t-lock").display = False

    def _done(self, result, seconds: float) -> None:
        self.result = result
        self._finish()
        color = "green" if result.stopped is None else "yellow" if result.stopped != "nan" else "red"
        for w in result.warnings:
            self._log(f"[yellow]warning:[/] {escape(w)}")
        self._log(f"[{color}]{escape(result.message)}[/]  (m: filters & feature maps, ctrl+k: save checkpoint)")

    def _failed(self, message: str) -> None:
        self._finish()
        self._log(f"[red]{escape(message)}[/]")

    def _log(self, line: str) -> None:
        self.log_lines = (self.log_lines + [line])[-14:]
        self.query_one("#t-log", Static).update("\n".join(self.log_lines))
