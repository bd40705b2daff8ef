"""The design studio: ``cnnshape tui SPEC``.

The app only opens the file and shows the right first screen: the design screen
(:mod:`.design_screen`, which owns the editing keys), an error screen for a file that is
not a spec, or a question when the file does not exist (a mistyped name?).
"""

from pathlib import Path

from textual import events
from textual.app import App, SystemCommand

from ..errors import SpecFileError
from ..roundtrip import DesignFile
from .design_screen import DesignScreen
from .screens import ChoiceScreen, ErrorScreen, handle_key_in_order, paste_in_order


def similar_files(path: Path) -> list[Path]:
    """Existing spec files whose names look like ``path``'s (a mistyped name)."""
    import difflib

    folder = path.parent if str(path.parent) else Path(".")
    try:
        names = [p.name for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()]
    except OSError:
        return []
    return [folder / n for n in difflib.get_close_matches(path.name, names, n=3, cutoff=0.6)]


class DesignApp(App):
    """Edit a spec with live analysis."""

    CSS_PATH = "app.tcss"
    TITLE = "cnnshape"

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self.studio: DesignScreen | None = None
        self.similar: list[Path] = []
        self.open_error: str | None = None
        self.file: DesignFile | None = None
        try:
            self.file = DesignFile.open(self.path)
        except SpecFileError as exc:
            self.open_error = str(exc)

    def on_mount(self) -> None:
        if self.open_error is not None:
            self.push_screen(ErrorScreen(self.open_error))
            return
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

    def open_studio(self, path: Path, file: DesignFile, message: str = "") -> None:
        self.path, self.file = path, file
        self.studio = DesignScreen(path, file, message)
        self.push_screen(self.studio)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded and await handle_key_in_order(self, event):
            return
        if isinstance(event, events.Paste) and not event.is_forwarded and paste_in_order(self, event):
            return
        await super().on_event(event)

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        if isinstance(screen, DesignScreen):
            for title, help_, callback in screen.commands():
                yield SystemCommand(title, help_, callback)


def run(path: str | Path) -> int:
    """Run the studio; the exit code (2 when the file could not be opened as a spec)."""
    app = DesignApp(path)
    app.run()
    return app.return_code or 0
