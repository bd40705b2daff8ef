"""Saving, reloading and quitting: the design screen's file actions (a mixin; they
use the screen's ``file``, ``path``, ``history`` and ``saved``)."""

from pathlib import Path

from .. import design as D
from ..errors import SpecFileError
from ..roundtrip import ChangedOnDisk, DesignFile
from . import recovery
from .screens import ChoiceScreen, PromptScreen

#: the id of the unsaved-changes question (a second ctrl+q while it is open does nothing)
QUIT_QUESTION = "quit-question"


class FileActions:
    """ctrl+s, S, q and the clobber dialog."""

    def action_save(self, then=None) -> None:
        if self.read_only:  # a design imported from elsewhere: saved as a new YAML file
            self.action_save_as(then=then)
            return
        self._do_save(then=then)

    def _do_save(self, force=False, path=None, then=None) -> None:
        """Save (``path``: save as); a file changed on disk since it was opened asks first."""
        try:
            saved = self.file.save(self.design, force=force, path=path)
        except ChangedOnDisk as exc:
            if path is not None or force:
                self.say(f"[red]not saved: {exc}[/]")
                return

            def answer(choice):
                if choice == "overwrite":
                    self._do_save(force=True, then=then)
                elif choice == "reload":
                    self._reload()
                elif choice == "saveas":
                    self.action_save_as()
            self.app.push_screen(ChoiceScreen(
                "File changed on disk", f"{self.path} was changed by another program since you opened it.\n"
                "Overwrite it with your design, reload it (your edits are lost), or save elsewhere?",
                [("saveas", "Save as… (s)"), ("reload", "Reload (r)"), ("overwrite", "Overwrite (o)"),
                 ("cancel", "Cancel (c)")]), answer)
            return
        except OSError as exc:
            self.say(f"[red]not saved: {exc}[/]")
            return
        self._saved(saved, then)

    def _saved(self, path: Path, then=None) -> None:
        if path != self.path:
            recovery.remove(self.path)
        self.path = self.app.path = path
        self.read_only = None
        self.saved = self.design
        self.message = f"saved {path}"
        self.refresh_view()
        if then:
            then()

    def action_save_as(self, then=None) -> None:
        def done(name):
            if name:
                target = Path(name).expanduser()
                if target.exists() and (target != self.path or self.read_only):
                    self.say(f"[red]{target} exists: choose another name[/]")
                    return
                self._do_save(path=target, then=then)
        self.app.push_screen(PromptScreen("Save as YAML" if self.read_only else "Save as", str(self.path)), done)

    def autosave(self) -> None:
        """Keep the unsaved design in the recovery file (removed once nothing is unsaved)."""
        if self.read_only:
            return
        if not self.dirty:
            recovery.remove(self.path)
            return
        try:
            recovery.write(self.path, self.design, self.file.text)
        except OSError as exc:
            self.message += f"  [yellow](unsaved edits not kept on disk: {exc})[/]"

    def _reload(self) -> None:
        try:
            self.file = DesignFile.open(self.path)
        except SpecFileError as exc:
            self.say(f"[red]cannot reload: {exc}[/]")
            return
        self.history = D.History(self.file.original)
        self.saved = self.file.original
        self.message = f"reloaded {self.path} (undo history cleared)"
        self.refresh_view()

    def action_quit_app(self) -> None:
        """Quit; with unsaved edits, ask: save / discard / cancel (every way out: q,
        ctrl+q, ctrl+c comes here)."""
        if not self.dirty or self.read_only:
            self.app.exit()
            return
        if self.app.screen.id == QUIT_QUESTION:
            return

        def answer(choice):
            if choice == "save":
                self.action_save(then=self.app.exit)
            elif choice == "discard":
                recovery.remove(self.path)
                self.app.exit()
        self.app.push_screen(ChoiceScreen("Unsaved changes", f"Save your changes to {self.path} before quitting?",
                                          [("save", "Save and quit (s)"), ("discard", "Quit without saving (d)"),
                                           ("cancel", "Cancel (c)")], id=QUIT_QUESTION), answer)
