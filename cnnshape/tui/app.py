"""The design studio: ``cnnshape tui SPEC``.

The app only opens the file and shows the right first screen: the design screen
(:mod:`.design_screen`, which owns the editing keys), an error screen for a file that is
not a spec, a question when the file does not exist (a mistyped name?), and an offer to
recover the unsaved edits a previous session left (:mod:`.recovery`). Every way out
(``q``, ``ctrl+q``, ``ctrl+c``) asks first when there are unsaved edits.
"""

import time
from pathlib import Path

from textual import events
from textual.app import App, SystemCommand

from ..design import Design
from ..errors import SpecFileError
from ..roundtrip import DesignFile
from . import recovery
from .design_screen import DesignScreen
from .screens import ChoiceScreen, ErrorScreen, handle_key_in_order, paste_in_order


def similar_files(path: Path) -> list[Path]:
    """Existing spec files whose names look like ``path``'s (a mistyped name): the names
    without their extension are compared, so a shared ``.yaml`` makes no match."""
    import difflib

    folder = path.parent if str(path.parent) else Path(".")
    try:
        stems = {p.stem: p.name for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()}
    except OSError:
        return []
    return [folder / stems[s] for s in difflib.get_close_matches(path.stem, list(stems), n=3, cutoff=0.75)]


class DesignApp(App):
    """Edit a spec with live analysis."""

    CSS_PATH = "app.tcss"
    TITLE = "cnnshape"

    def __init__(self, path: str | Path, *, design: Design | None = None, origin: str | None = None):
        """Open ``path``; or, with ``design``, show a design read from elsewhere (``origin``,
        e.g. ``net.py:Net``) read-only until it is saved as YAML at ``path``."""
        super().__init__()
        self.path = Path(path)
        self.studio: DesignScreen | None = None
        self.similar: list[Path] = []
        self.open_error: str | None = None
        self.file: DesignFile | None = None
        self.read_only = None
        if design is not None:
            self.file = DesignFile(self.path, design, None)
            self.read_only = f"this design comes from {origin or 'another file'}; save as YAML to edit"
            return
        try:
            self.file = DesignFile.open(self.path)
        except SpecFileError as exc:
            self.open_error = str(exc)

    def on_mount(self) -> None:
        if self.open_error is not None:
            self.push_screen(ErrorScreen(self.open_error))
            return
        if self.read_only:
            self.open_studio(self.path, self.file, read_only=self.read_only)
            return
        found = recovery.read(self.path, self.file.text)
        if found is not None and found.design.data() != self.file.original.data():
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(found.mtime))
            self.push_screen(ChoiceScreen(
                "Unsaved edits found", f"{self.path.name} has unsaved edits from {when} (a session that ended "
                f"without saving; kept in {found.where}).\nRecover them (you can undo that), or discard them "
                "and open the file as it is?",
                [("recover", "Recover (r)"), ("discard", "Discard (d)"), ("quit", "Quit (q)")]),
                lambda choice: self._answer_recovery(choice, found))
            return
        self._open_or_ask()

    def _answer_recovery(self, choice: str | None, found) -> None:
        if choice == "recover":
            self.open_studio(self.path, self.file, f"recovered the unsaved edits from {found.where}",
                             recovered=found.design)
        elif choice == "discard":
            recovery.remove(self.path)
            self._open_or_ask()
        else:
            self.exit()  # nothing touched: offered again next time

    def _open_or_ask(self) -> None:
        if not self.file.is_new:
            self.open_studio(self.path, self.file)
            return
        similar = self.similar = similar_files(self.path)
        choices = [(f"open{k}", f"Open {p.name} ({k + 1})") for k, p in enumerate(similar)]
        self.push_screen(ChoiceScreen(
            "New file?", f"{self.path} does not exist."
            + (" Did you mean one of these?" if similar else "") + "\nStart a new design there (ctrl+s creates it)?",
            [("new", "New design (n)")] + choices + [("quit", "Quit (q)")]), self._answer_new)

    def _answer_new(self, choice: str | None) -> None:
        if choice == "new":
            self.open_studio(self.path, self.file,
                             f"new design: {self.path} does not exist yet (ctrl+s creates it)")
        elif choice and choice.startswith("open"):
            path = self.similar[int(choice[4:])]
            try:
                self.open_studio(path, DesignFile.open(path))
            except SpecFileError as exc:
                self.push_screen(ErrorScreen(str(exc)))
        else:
            self.exit()

    def open_studio(self, path: Path, file: DesignFile, message: str = "", *, recovered: Design | None = None,
                    read_only: str | None = None) -> None:
        self.path, self.file = path, file
        self.studio = DesignScreen(path, file, message, recovered=recovered, read_only=read_only)
        self.push_screen(self.studio)

    # ------------------------------------------------------------------ quitting
    async def action_quit(self) -> None:
        """ctrl+q: asks first when there are unsaved edits."""
        self.request_quit()

    def action_help_quit(self) -> None:
        """ctrl+c (outside a text field, where it copies): the same as ctrl+q."""
        self.request_quit()

    def request_quit(self) -> None:
        if self.studio is None:
            self.exit(return_code=2 if self.open_error is not None else 0)
        else:
            self.studio.action_quit_app()

    def exit(self, *args, **kwargs) -> None:
        ts = self.studio.train_screen if self.studio is not None else None
        if ts is not None:
            ts.stop_event.set()  # a running training thread stops after its step
        super().exit(*args, **kwargs)

    # ------------------------------------------------------------------ events
    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded and await handle_key_in_order(self, event):
            return
        if isinstance(event, events.Paste) and not event.is_forwarded and paste_in_order(self, event):
            return
        await super().on_event(event)

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        commands = getattr(screen, "commands", None)
        if callable(commands):
            for title, help_, callback in commands():
                yield SystemCommand(title, help_, callback)


def run(path: str | Path, *, design: Design | None = None, origin: str | None = None) -> int:
    """Run the studio; the exit code (2 when the file could not be opened as a spec). With
    ``design`` (read from ``origin``, e.g. ``net.py:Net``): shown read-only until saved at ``path``."""
    app = DesignApp(path, design=design, origin=origin)
    app.run()
    return app.return_code or 0
