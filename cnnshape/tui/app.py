"""The design studio: ``cnnshape tui SPEC``.

A thin shell: keys and widgets here, every edit is a pure function of
:mod:`cnnshape.design` recorded in a :class:`~cnnshape.design.History`, every view is
re-drawn from :func:`~cnnshape.design.evaluate` after each change.
"""

from pathlib import Path

from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from .. import design as D
from ..errors import SpecFileError
from ..roundtrip import ChangedOnDisk, DesignFile
from .screens import (ChoiceScreen, ErrorScreen, Field, FormScreen, PaletteScreen, PromptScreen,
                      TextScreen, handle_key_in_order, layer_fields)
from .view import COLUMNS, details_markup, diagnostic_label, input_cells, node_cells, totals_text, tree_nodes

HELP = """\
[b]cnnshape design studio[/b]

Every change is re-analysed at once: shapes, receptive fields, params, MACs, errors.

[b]Layers[/b] (the table; row 0 is the input)
  e / enter    edit the selected layer's arguments (or the input shape, batch, dtype)
  a            add a layer after the selection (palette: type to filter)
  i            insert a layer before the selection
  d / delete   delete the layer          y  duplicate it
  K / J        move it up / down (also shift+up / shift+down)
  r            rename it (the child-module name in the compiled nn.Sequential)
  f            apply the automatic fix of the selected layer's problem
  → / ←, space open / close a block (Sequential, Repeat, Residual, Concat): its layers are
               edited like any other (a Repeat shows its body once, as the first copy)
[b]History and files[/b]
  ctrl+z / u   undo                      ctrl+y / U  redo
  ctrl+s       save (comments and layout of the file are kept)
  S            save as                   v  view the YAML of the design
[b]Training[/b] (imports torch on first use)
  t            train the design briefly (data, device, epochs, lr...; live loss plot, Stop)
  m            filters and feature maps of a sample, before/after training
  q            quit (asks when there are unsaved changes)
[b]Elsewhere[/b]
  tab          move between table and problems list; enter on a problem jumps to its layer
  ctrl+p       command palette            ?  this help

Status marks: ✓ ok  ⚠ warning  ✗ error  · not analysed (after an error).
"""


class LayerTable(DataTable):
    """The layer table; its arrows open and close blocks (instead of scrolling sideways)."""

    BINDINGS = [
        Binding("right,l", "app.expand", "Open block", show=False),
        Binding("left,h", "app.collapse", "Close block", show=False),
        Binding("space", "app.toggle", "Open/close", show=False),
    ]


class DesignApp(App):
    """Edit a spec with live analysis."""

    CSS_PATH = "app.tcss"
    TITLE = "cnnshape"
    BINDINGS = [
        Binding("e", "edit", "Edit"),
        Binding("a", "add", "Add"),
        Binding("i", "insert_before", "Insert", show=False),
        Binding("d,delete", "delete", "Delete"),
        Binding("y", "duplicate", "Dup"),
        Binding("K,shift+up", "move(-1)", "Up", show=False),
        Binding("J,shift+down", "move(1)", "Down", show=False),
        Binding("r", "rename", "Rename"),
        Binding("f", "fix", "Fix"),
        Binding("ctrl+z,u", "undo", "Undo"),
        Binding("ctrl+y,U", "redo", "Redo"),
        Binding("ctrl+s", "save", "Save"),
        Binding("S", "save_as", "Save as", show=False),
        Binding("v", "yaml", "YAML"),
        Binding("t", "train", "Train"),
        Binding("m", "maps", "Maps", show=False),
        Binding("question_mark,f1", "help", "Help"),
        Binding("q", "quit_app", "Quit"),
    ]
    STUDIO_ACTIONS = frozenset(b.action.split("(")[0] for b in BINDINGS)

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self.open_error: str | None = None
        self.file: DesignFile | None = None
        try:
            self.file = DesignFile.open(self.path)
        except SpecFileError as exc:
            self.open_error = str(exc)
        start = self.file.original if self.file else D.Design((), ())
        self.history = D.History(start)
        self.saved = start
        self.evaluation = D.evaluate(start) if self.file else None
        self.message = ""
        self.train_screen = None  # kept while the design is unchanged (its result feeds the maps)
        self.expanded: set[tuple] = set()  # paths of the blocks shown open in the tree
        self.nodes = []

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield LayerTable(id="layers", cursor_type="row", zebra_stripes=True)
                yield Static(id="totals")
            with Vertical(id="right"):
                with VerticalScroll(id="details-box"):
                    yield Static(id="details")
                yield OptionList(id="problems")
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        if self.open_error is not None:
            self.push_screen(ErrorScreen(self.open_error))
            return
        table = self.query_one("#layers", DataTable)
        table.add_columns(*COLUMNS)
        self.query_one("#details-box").border_title = "layer"
        self.query_one("#problems").border_title = "problems"
        table.border_title = "layers"
        if self.file.is_new:
            self.message = f"new design: {self.path} does not exist yet (ctrl+s creates it)"
        first_bad = next((e for e in self.evaluation.errors if e.index is not None), None)
        if first_bad is not None:
            self.show_problem(first_bad)
        else:
            self.redraw()
        table.focus()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded and await handle_key_in_order(self, event):
            return
        await super().on_event(event)

    def check_action(self, action: str, parameters) -> bool | None:
        """Studio keys act on the main screen only (not under a dialog or the error screen)."""
        if action in self.STUDIO_ACTIONS and self.screen is not self.screen_stack[0]:
            return False
        return True

    # ----------------------------------------------------------------- drawing
    @property
    def design(self) -> D.Design:
        return self.history.current

    @property
    def dirty(self) -> bool:
        return self.design != self.saved

    @property
    def selected_node(self):
        """The selected tree node (None: the input row)."""
        row = self.query_one("#layers", DataTable).cursor_row
        if row <= 0 or not self.nodes:
            return None
        return self.nodes[min(row - 1, len(self.nodes) - 1)]

    @property
    def selected_path(self) -> tuple | None:
        node = self.selected_node
        return None if node is None else node.path

    @property
    def selected(self) -> int | None:
        """Top-level index of the selected row (None: the input row)."""
        path = self.selected_path
        return None if path is None else path[0]

    def refresh_view(self, select="keep") -> None:
        """Re-analyse the current design and redraw everything. ``select``: a layer index
        or path to put the cursor on, None for the input row, "keep" to stay."""
        self.evaluation = D.evaluate(self.design)
        self.redraw(select)

    def redraw(self, select="keep") -> None:
        """Redraw from the current evaluation (opening/closing blocks needs no analysis)."""
        ev = self.evaluation
        table = self.query_one("#layers", DataTable)
        row = table.cursor_row
        self.nodes = tree_nodes(self.design, ev, self.expanded)
        if select != "keep":
            want = None if select is None else (select,) if isinstance(select, int) else tuple(select)
            row = 0 if want is None else next((k + 1 for k, n in enumerate(self.nodes) if n.path == want), row)
        table.clear()
        table.add_row(*input_cells(self.design, ev), key="input")
        for k, node in enumerate(self.nodes):
            table.add_row(*node_cells(node), key=f"n{k}")
        if table.row_count:
            table.move_cursor(row=max(0, min(row, table.row_count - 1)), animate=False)
        self.query_one("#totals", Static).update(totals_text(self.design, ev))
        problems = self.query_one("#problems", OptionList)
        problems.clear_options()
        diags = [*ev.errors, *ev.warnings]
        problems.add_options([Option(diagnostic_label(d), id=str(k)) for k, d in enumerate(diags)]
                             or [Option("[green]✓ no problems[/]", id="none", disabled=True)])
        if diags:
            problems.highlighted = 0
        problems.border_title = f"problems ({len(ev.errors)} errors, {len(ev.warnings)} warnings)"
        self._update_details()
        name = self.design.get("name")
        self.title = f"cnnshape · {self.path.name}{' ●' if self.dirty else ''}"
        self.sub_title = (name if isinstance(name, str) else "") + ("  (modified)" if self.dirty else "")
        self._show_status()

    def _update_details(self) -> None:
        self.query_one("#details", Static).update(details_markup(self.design, self.evaluation, self.selected_node))

    def _show_status(self) -> None:
        ev = self.evaluation
        state = "[green]✓ valid[/]" if ev.ok else f"[red]✗ {len(ev.errors)} error(s)[/]"
        self.query_one("#status", Static).update(f" {state}  {self.message}")

    def say(self, message: str) -> None:
        self.message = message
        self._show_status()

    @on(DataTable.RowHighlighted, "#layers")
    def _row_changed(self, event: DataTable.RowHighlighted) -> None:
        if self.evaluation is not None:
            self._update_details()

    @on(OptionList.OptionSelected, "#problems")
    def _jump(self, event: OptionList.OptionSelected) -> None:
        diags = [*self.evaluation.errors, *self.evaluation.warnings]
        if event.option.id and event.option.id.isdigit():
            self.show_problem(diags[int(event.option.id)])
            self.query_one("#layers", DataTable).focus()

    def show_problem(self, diag) -> None:
        """Put the cursor on the layer of ``diag``, opening the blocks around it."""
        path = self._path_of(diag)
        if path is None:
            self.redraw(select=None)
            return
        for k in range(1, len(path)):
            prefix = path[:k]
            if isinstance(prefix[-1], int):
                self.expanded.add(prefix)
        self.redraw(select=path)

    # ------------------------------------------------------------------ editing
    def edit(self, label: str, op, *args, select="keep") -> bool:
        """Apply one pure edit, record it for undo, re-analyse and redraw (cursor on
        ``select``). False if refused."""
        try:
            self.history.apply(label, op, *args)
        except D.EditError as exc:
            self.say(f"[yellow]{exc}[/]")
            return False
        self.message = label
        self.refresh_view(select)
        return True

    def action_edit(self) -> None:
        node = self.selected_node
        if node is None:
            self._edit_top()
            return
        path, label = node.path, node.label
        data = D.get_data(self.design, path)
        type_name = D.type_of(data)
        if type_name not in D.LAYER_TYPES:
            self.push_screen(PaletteScreen(f"{label}: unknown type '{type_name}', pick one"),
                             lambda t: t and self.edit(f"set type of {label} to {t}", D.set_args, path, {"type": t}))
            return
        fields = layer_fields(type_name, D.values_of(data))

        def preview(values: dict) -> str:
            try:
                trial = D.set_args(self.design, path, values)
            except D.EditError as exc:
                return f"[red]{exc}[/]"
            ev = D.evaluate(trial)
            nodes = tree_nodes(trial, ev, set(), everything=True)
            me = next((n for n in nodes if n.path == path), None)
            mine = [d for d in ev.errors if d.index == path[0] and (len(path) == 1 or d.name == label)]
            if me is not None and me.report is not None and not mine:
                downstream = "" if ev.ok else f"\n[red]then: {ev.errors[0].name}: {ev.errors[0].message}[/]"
                return f"output → [b]{list(me.report.output)}[/b]{downstream}"
            return "\n".join(f"[red]✗ {d.message}[/]\n  [cyan]{d.hint}[/]" for d in mine) \
                or "[dim]not analysed (an earlier layer has an error)[/]"

        def done(changes):
            if changes:
                self.edit(f"{label} ({type_name}): set {', '.join(changes)}", D.set_args, path, changes)

        self.push_screen(FormScreen(f"Edit {label}: {type_name}", fields, preview), done)

    def _edit_top(self) -> None:
        top = dict(self.design.top)
        fields = [
            Field("input", "axes", top.get("input", D.UNSET), None, doc="one sample, channels first: [C, H, W]",
                  required=True),
            Field("batch", "int", top.get("batch", D.UNSET), 1, doc="batch size for memory and MAC totals"),
            Field("dtype", "choice", top.get("dtype", D.UNSET), "float32",
                  ("float32", "float16", "bfloat16", "float64"), "parameter/activation dtype"),
            Field("name", "str", top.get("name", D.UNSET), None),
            Field("description", "str", top.get("description", D.UNSET), None),
        ]

        def done(changes):
            if changes:
                self.edit(f"set {', '.join(changes)}", D.set_tops, changes)

        self.push_screen(FormScreen("Input and top-level settings", fields), done)

    def _insert_at(self, at) -> None:
        at = (at,) if isinstance(at, int) else tuple(at)
        where = "/".join(map(str, at))

        def done(type_name):
            if type_name:
                self.edit(f"insert {type_name} at {where}", D.insert, at, type_name, select=at)
        self.push_screen(PaletteScreen(f"Insert a layer at position {where}"), done)

    def action_add(self) -> None:
        path = self.selected_path
        self._insert_at(0 if path is None else path[:-1] + (path[-1] + 1,))

    def action_insert_before(self) -> None:
        path = self.selected_path
        self._insert_at(0 if path is None else path)

    def _need_layer(self):
        path = self.selected_path
        if path is None or not self.design.items:
            self.say("[yellow]select a layer first (row 0 is the input)[/]")
            return None
        return path

    def _label(self, path) -> str:
        node = next((n for n in self.nodes if n.path == path), None)
        return node.label if node else "/".join(map(str, path))

    def action_delete(self) -> None:
        path = self._need_layer()
        if path is not None:
            data = D.get_data(self.design, path)
            t = D.type_of(data)
            self.edit(f"delete {self._label(path)} ({t})", D.delete, path)

    def action_duplicate(self) -> None:
        path = self._need_layer()
        if path is not None:
            self.edit(f"duplicate {self._label(path)}", D.duplicate, path, select=path[:-1] + (path[-1] + 1,))

    def action_move(self, delta: int) -> None:
        path = self._need_layer()
        if path is not None:
            self.edit(f"move {self._label(path)} {'up' if delta < 0 else 'down'}", D.move, path, delta,
                      select=path[:-1] + (path[-1] + delta,))

    def action_rename(self) -> None:
        path = self._need_layer()
        if path is None:
            return
        data = D.get_data(self.design, path)
        current = data.get("name", "") if isinstance(data, dict) else ""
        label = self._label(path)

        def done(name):
            if name is not None:
                self.edit(f"rename {label} to {name or path[-1]}", D.rename, path, name.strip() or None)
        self.push_screen(PromptScreen(f"Name of {label} (empty: its position)", current or "", "e.g. conv1"), done)

    def _path_of(self, diag) -> tuple | None:
        """The data path of the layer a diagnostic names (nested names via the full tree)."""
        if diag.index is None:
            return None
        for n in tree_nodes(self.design, self.evaluation, set(), everything=True):
            if n.path[0] == diag.index and n.label == diag.name:
                return n.path
        return (diag.index,)

    def action_fix(self) -> None:
        ev = self.evaluation
        node = self.selected_node
        diags = [d for d in (*ev.errors, *ev.warnings) if d.fix]
        mine = [d for d in diags if node is not None and d.index == node.path[0]
                and (node.depth == 0 or d.name == node.label)]
        candidates = mine or [d for d in ev.errors if d.fix]
        if not candidates:
            self.say("[yellow]no automatic fix here: follow the hint in the layer pane[/]")
            return
        d = candidates[0]
        path = self._path_of(d)
        change = ", ".join(f"{k}: {v}" for k, v in d.fix.items())
        self.edit(f"fix {d.name}: {change}", D.apply_fix, d, path, select=path)

    def action_expand(self) -> None:
        node = self.selected_node
        if node is not None and node.is_block and not node.expanded:
            self.expanded.add(node.path)
            self.redraw(select=node.path)

    def action_collapse(self) -> None:
        node = self.selected_node
        if node is None:
            return
        if node.is_block and node.expanded:
            self.expanded.discard(node.path)
            self.redraw(select=node.path)
        elif node.depth:  # go to the enclosing block and close it
            parent = next(n for n in reversed(self.nodes[: self.nodes.index(node)]) if n.depth < node.depth)
            self.expanded.discard(parent.path)
            self.redraw(select=parent.path)

    def action_toggle(self) -> None:
        node = self.selected_node
        if node is not None and node.is_block:
            (self.action_collapse if node.expanded else self.action_expand)()

    def _step(self, step, done: str) -> None:
        try:
            label = step()
        except D.EditError as exc:
            self.say(f"[yellow]{exc}[/]")
            return
        self.message = f"{done}: {label}"
        self.refresh_view()

    def action_undo(self) -> None:
        self._step(self.history.undo, "undone")

    def action_redo(self) -> None:
        self._step(self.history.redo, "redone")

    # ------------------------------------------------------------------- files
    def action_save(self, then=None) -> None:
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
            self.push_screen(ChoiceScreen(
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
        self.path = path
        self.saved = self.design
        self.message = f"saved {path}"
        self.refresh_view()
        if then:
            then()

    def action_save_as(self) -> None:
        def done(name):
            if name:
                target = Path(name).expanduser()
                if target.exists() and target != self.path:
                    self.say(f"[red]{target} exists: choose another name[/]")
                    return
                self._do_save(path=target)
        self.push_screen(PromptScreen("Save as", str(self.path)), done)

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

    def _spec_for_torch(self):
        """The current design as a Spec, or None (with a message) when it has errors."""
        from ..spec import from_data

        if not self.evaluation.ok:
            self.say("[yellow]fix the errors first: only a valid design can train or show feature maps[/]")
            return None
        return from_data(self.design.data())

    def action_train(self) -> None:
        spec = self._spec_for_torch()
        if spec is None:
            return
        from .train_screen import TrainScreen

        if self.train_screen is None or self.train_screen.spec != spec:
            self.train_screen = TrainScreen(spec, str(self.path.name))
        self.push_screen(self.train_screen)

    def action_maps(self) -> None:
        spec = self._spec_for_torch()
        if spec is None:
            return
        from .maps_screen import MapsScreen

        ts = self.train_screen if self.train_screen is not None and self.train_screen.spec == spec else None
        self.push_screen(MapsScreen(spec, ts.result if ts else None, ts.dataset if ts else None))

    def action_yaml(self) -> None:
        self.push_screen(TextScreen(f"YAML of {self.path.name} (as it would be saved)",
                                    self.file.render(self.design), "yaml"))

    def action_help(self) -> None:
        self.push_screen(TextScreen("Help", HELP))

    def action_quit_app(self) -> None:
        if not self.dirty:
            self.exit()
            return

        def answer(choice):
            if choice == "save":
                self.action_save(then=self.exit)
            elif choice == "discard":
                self.exit()
        self.push_screen(ChoiceScreen("Unsaved changes", f"Save your changes to {self.path} before quitting?",
                                      [("save", "Save and quit (s)"), ("discard", "Quit without saving (d)"),
                                       ("cancel", "Cancel (c)")]), answer)

    # ----------------------------------------------------------- command palette
    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        for title, help_, action in (
            ("Edit layer", "edit the selected layer's arguments", self.action_edit),
            ("Add layer", "insert a layer after the selection", self.action_add),
            ("Delete layer", "delete the selected layer", self.action_delete),
            ("Duplicate layer", "copy the selected layer", self.action_duplicate),
            ("Apply fix", "apply the automatic fix of the selected problem", self.action_fix),
            ("Undo", "undo the last edit", self.action_undo),
            ("Redo", "redo the undone edit", self.action_redo),
            ("Save", "save the spec (keeps comments)", self.action_save),
            ("Save as", "save to another file", self.action_save_as),
            ("Show YAML", "the design as YAML", self.action_yaml),
            ("Train", "train the design briefly on digits / shapes / your data", self.action_train),
            ("Filters and feature maps", "see what the layers compute for a sample", self.action_maps),
            ("Help", "keys and marks", self.action_help),
        ):
            yield SystemCommand(title, help_, action)


def run(path: str | Path) -> int:
    """Run the studio; the exit code (2 when the file could not be opened as a spec)."""
    app = DesignApp(path)
    app.run()
    return app.return_code or 0
