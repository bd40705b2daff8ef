"""The design screen: the layer tree, the selected layer, the problems, and every
editing key (see :mod:`.keys`). Each edit is a pure function of :mod:`cnnshape.design`
recorded in a :class:`~cnnshape.design.History`; the views are redrawn from
:func:`~cnnshape.design.evaluate` and the text builders of :mod:`.view`.
"""

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from .. import design as D
from ..roundtrip import DesignFile
from ..term import plural
from . import extras
from .files import FileActions
from .keys import bindings, help_table
from .markup import escape
from .screens import (
    Field,
    FormScreen,
    PaletteScreen,
    PromptScreen,
    TextScreen,
    layer_fields,
)
from .view import (
    details_markup,
    input_cells,
    node_cells,
    preview_markup,
    totals_text,
    tree_nodes,
)
from .widgets import LayerTable, ProblemsList, StudioFooter


class DesignScreen(FileActions, Screen):
    """Edit a spec with live analysis (the studio's main screen)."""

    BINDINGS = bindings()

    def __init__(self, path: Path, file: DesignFile, message: str = "", *, recovered: D.Design | None = None,
                 read_only: str | None = None):
        """``recovered``: unsaved edits of an earlier session, applied as one undoable edit;
        ``read_only``: why the design cannot be edited here (it came from a model in
        Python: saving it as YAML makes it editable)."""
        super().__init__()
        self.path = path
        self.file = file
        self.history = D.History(file.original)
        self.saved = file.original
        if recovered is not None:
            self.history.push(recovered, "recovered unsaved edits")
        self.read_only = read_only
        self.evaluation = D.evaluate(self.design)
        self.message = message or (f"[yellow]{read_only}[/]" if read_only else "")
        self.train_screen = None  # kept while the design is unchanged (its result feeds the maps)
        self.expanded: set[tuple] = set()  # paths of the blocks shown open in the tree
        self.nodes = []
        self.fix_here: D.Fix | None = None  # what f does on the selected row
        self._fixes: dict = {}           # row -> its fix, for the evaluation _fixes_of
        self._fixes_of = None
        self.sizes: str | None = None    # valid input sizes (cnnshape.sizes), when found
        self.memory: str | None = None   # memory figures (cnnshape.memory), when found

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield LayerTable(id="layers")
                yield Static(id="totals")
            with Vertical(id="right"):
                with VerticalScroll(id="details-box"):
                    yield Static(id="details")
                yield ProblemsList(id="problems")
        yield Static(id="status")
        yield StudioFooter()

    def on_mount(self) -> None:
        self.table = self.query_one(LayerTable)
        self.totals = self.query_one("#totals", Static)
        self.details = self.query_one("#details", Static)
        self.problems = self.query_one(ProblemsList)
        self.status = self.query_one("#status", Static)
        self.query_one("#details-box").border_title = "layer"
        self.table.border_title = "layers"
        first_bad = next((e for e in self.evaluation.errors if e.index is not None), None)
        if first_bad is not None:
            self.show_problem(first_bad)
        else:
            self.redraw()
        self._find_sizes(self.evaluation)
        self.table.focus()

    def on_resize(self) -> None:
        self.set_class(self.size.width < 110, "-narrow")
        self.set_class(self.size.width < 90, "-tiny")
        self.call_after_refresh(self.redraw)

    @on(DataTable.RowSelected, "#layers")
    def _enter(self) -> None:
        self.action_edit()

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
        row = self.table.cursor_row
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
        self.sizes = self.memory = None
        self.autosave()
        self.redraw(select)
        self._find_sizes(self.evaluation)

    def _find_sizes(self, ev) -> None:
        """The valid input sizes and the memory figures of a valid design, found in a
        thread (tens of ms on a ResNet-50) and shown when ready (if the design is still
        ``ev``'s): the sizes on the input row, the memory in the totals pane."""
        if not ev.ok:
            return

        def work():
            found = (extras.sizes_summary(ev.report), extras.memory_line(ev.report))
            if any(found):
                self.app.call_from_thread(self._show_sizes, ev, *found)
        self.run_worker(work, thread=True, exclusive=True, group="sizes", exit_on_error=False)

    def _show_sizes(self, ev, sizes: str | None, memory: str | None) -> None:
        if ev is self.evaluation:
            self.sizes, self.memory = sizes, memory
            self.redraw()

    def redraw(self, select="keep") -> None:
        """Redraw from the current evaluation (opening/closing blocks needs no analysis)."""
        ev = self.evaluation
        table = self.table
        row = table.cursor_row
        self.nodes = tree_nodes(self.design, ev, self.expanded)
        if select != "keep":
            want = None if select is None else (select,) if isinstance(select, int) else tuple(select)
            row = 0 if want is None else next((k + 1 for k, n in enumerate(self.nodes) if n.path == want), row)
        self.table.show([input_cells(self.design, ev)] + [node_cells(n) for n in self.nodes], row)
        self.totals.update(totals_text(self.design, ev, self.memory))
        self.problems.show(ev.errors, ev.warnings)
        self._update_details()
        name = self.design.get("name")
        state = " ● modified" if self.dirty else " (read-only)" if self.read_only else ""
        self.app.title = f"cnnshape · {self.path.name}{state}"
        self.app.sub_title = name if isinstance(name, str) else ""
        self._show_status()

    def _update_details(self) -> None:
        node = self.selected_node
        had = self.fix_here is not None
        self.fix_here = self._fix_for(node)
        self.details.update(details_markup(self.design, self.evaluation, node, self.sizes, self.fix_here))
        if had != (self.fix_here is not None):
            self.refresh_bindings()  # the footer offers f only where a fix exists

    def _fix_for(self, node) -> "D.Fix | None":
        """What f does with ``node`` selected (remembered per design and row: finding it
        may analyse a trial edit or two)."""
        if self._fixes_of is not self.evaluation:
            self._fixes, self._fixes_of = {}, self.evaluation
        key = None if node is None else (node.path, node.label)
        if key not in self._fixes:
            self._fixes[key] = D.choose_fix(self.design, self.evaluation, node.path if node else None,
                                            node.label if node else None, node.depth if node else 0,
                                            self._path_of)
        return self._fixes[key]

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "fix":
            return self.fix_here is not None and not self.read_only
        return True

    def _show_status(self) -> None:
        ev = self.evaluation
        state = "[green]✓ valid[/]" if ev.ok else f"[red]✗ {plural(len(ev.errors), 'error')}[/]"
        self.status.update(f" {state}  {self.message}")

    def say(self, message: str) -> None:
        self.message = message
        self._show_status()

    @on(DataTable.RowHighlighted, "#layers")
    def _row_changed(self, event: DataTable.RowHighlighted) -> None:
        if self.evaluation is not None:
            self._update_details()

    @on(ProblemsList.Chosen)
    def _jump(self, event: ProblemsList.Chosen) -> None:
        self.show_problem(event.diagnostic)
        self.table.focus()

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
        if not self.editable():
            return False
        try:
            self.history.apply(label, op, *args)
        except D.EditError as exc:
            self.say(f"[yellow]{exc}[/]")
            return False
        self.message = label
        self.refresh_view(select)
        return True

    def editable(self) -> bool:
        """False (saying why) when the design is read-only."""
        if self.read_only:
            self.say(f"[yellow]{self.read_only} (ctrl+s)[/]")
            return False
        return True

    def action_edit(self) -> None:
        if not self.editable():
            return
        node = self.selected_node
        if node is None:
            self._edit_top()
            return
        path, label = node.path, node.label
        data = D.get_data(self.design, path)
        type_name = D.type_of(data)
        if type_name not in D.LAYER_TYPES:
            guess = D.closest(type_name, D.LAYER_TYPES) or ""
            self.app.push_screen(PaletteScreen(f"{label}: unknown type '{type_name}', pick one", guess),
                             lambda t: t and self.edit(f"set type of {label} to {t}", D.set_args, path, {"type": t}))
            return
        override = D.first_copy_override(D.get_data(self.design, node.first[0]), node.first[1]) if node.first else {}
        fields = layer_fields(type_name, {**D.values_of(data), **override}, first_only=set(override))

        def apply(design, changes):
            if node.first:
                return D.edit_first_copy(design, path, node.first[0], node.first[1], changes)
            return D.set_args(design, path, changes)

        def preview(values: dict) -> str:
            try:
                trial = apply(self.design, values)
            except D.EditError as exc:
                return f"[red]{escape(str(exc))}[/]"
            return preview_markup(trial, path, label)

        def done(changes):
            if changes:
                self.edit(f"{label} ({type_name}): set {', '.join(changes)}", apply, changes)

        where = " (first copy)" if override else ""
        self.app.push_screen(FormScreen(f"Edit {label}: {type_name}{where}", fields, preview), done)

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

        self.app.push_screen(FormScreen("Input and top-level settings", fields), done)

    def _insert_at(self, at) -> None:
        if not self.editable():
            return
        at = (at,) if isinstance(at, int) else tuple(at)
        where = "/".join(map(str, at))

        def done(type_name):
            if type_name:
                self.edit(f"insert {type_name} at {where}", D.insert, at, type_name, select=at)
        self.app.push_screen(PaletteScreen(f"Insert a layer at position {where}"), done)

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
        path = self._need_layer() if self.editable() else None
        if path is None:
            return
        data = D.get_data(self.design, path)
        current = data.get("name", "") if isinstance(data, dict) else ""
        label = self._label(path)

        def done(name):
            if name is not None:
                self.edit(f"rename {label} to {name or path[-1]}", D.rename, path, name.strip() or None)
        self.app.push_screen(PromptScreen(f"Name of {label} (empty: its position)", current or "", "e.g. conv1"), done)

    def _path_of(self, diag) -> tuple | None:
        """The data path of the layer a diagnostic names (nested names via the full tree)."""
        if diag.index is None:
            return None
        for n in tree_nodes(self.design, self.evaluation, set(), everything=True):
            if n.path[0] == diag.index and n.label == diag.name:
                return n.path
        return (diag.index,)

    def action_fix(self) -> None:
        """Apply the fix offered for the selected row (f is only offered when there is one)."""
        fix = self._fix_for(self.selected_node)
        if fix is not None:
            self.edit(fix.label, D.set_args, fix.path, fix.changes, select=fix.path)

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

    def action_first_row(self) -> None:
        self.table.move_cursor(row=0, animate=False)

    def action_last_row(self) -> None:
        self.table.move_cursor(row=self.table.row_count - 1, animate=False)

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
        self.app.push_screen(self.train_screen)

    def action_maps(self) -> None:
        spec = self._spec_for_torch()
        if spec is None:
            return
        from .maps_screen import MapsScreen

        ts = self.train_screen if self.train_screen is not None and self.train_screen.spec == spec else None
        self.app.push_screen(MapsScreen(spec, ts.result if ts else None, ts.dataset if ts else None))

    def action_yaml(self) -> None:
        self.app.push_screen(TextScreen(f"YAML of {self.path.name} (as it would be saved)",
                                    self.file.render(self.design), "yaml"))

    def action_help(self) -> None:
        self.app.push_screen(TextScreen("Help", help_table()))

    # ----------------------------------------------------------- command palette
    def commands(self):
        """(title, help, callback) of the palette: the keys that have a title."""
        from .keys import KEYS

        for k in KEYS:
            if k.title:
                name = k.action.split("(")[0]
                args = k.action[len(name):].strip("()")
                fn = getattr(self, f"action_{name}")
                yield k.title, k.help, (lambda fn=fn, a=args: fn(int(a)) if a else fn())
