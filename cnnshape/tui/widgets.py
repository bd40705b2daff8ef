"""The design screen's widgets. Each draws what it is given and reports what the user
chose with a message; none knows the design or edits it."""

from textual.message import Message
from textual.widgets import DataTable, Footer, OptionList
from textual.widgets._footer import FooterKey
from textual.widgets.option_list import Option

from ..term import plural
from .keys import FOOTER_WIDE, NARROW_HIDDEN, bindings
from .view import column_widths, diagnostic_label, visible_columns


class LayerTable(DataTable):
    """The layer tree as a table: row 0 is the input. Its arrows open and close blocks
    (instead of scrolling sideways); the least important columns give way when narrow."""

    BINDINGS = bindings(layer_table=True)

    def __init__(self, **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.shown_columns: tuple = ()

    def show(self, rows: list[dict], cursor_row: int) -> None:
        """Draw ``rows`` (cells by column key, see view.COLUMNS), cursor on ``cursor_row``."""
        room = self.scrollable_content_region.width or self.app.size.width // 2
        if len(rows) + 1 > self.scrollable_content_region.height and not self.show_vertical_scrollbar:
            room -= self.styles.scrollbar_size_vertical  # the scrollbar these rows will bring
        columns = visible_columns(rows, room)
        widths = column_widths(rows, columns, room)
        # new columns of explicit widths each time: with auto widths, rows re-added under the
        # same keys were drawn from the table's line cache at the old widths (names cut)
        self.clear(columns=True)
        for key, label in columns:
            self.add_column(label, width=widths[key])
        self.shown_columns = columns
        for k, cells in enumerate(rows):
            self.add_row(*(cells[key] for key, _ in columns), key="input" if k == 0 else f"n{k - 1}")
        if self.row_count:
            self.move_cursor(row=max(0, min(cursor_row, self.row_count - 1)), animate=False)


class ProblemsList(OptionList):
    """Errors and warnings; enter on one posts :class:`ProblemsList.Chosen`."""

    class Chosen(Message):
        def __init__(self, diagnostic) -> None:
            super().__init__()
            self.diagnostic = diagnostic

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.diagnostics: list = []

    def show(self, errors, warnings) -> None:
        self.diagnostics = [*errors, *warnings]
        self.clear_options()
        self.add_options([Option(diagnostic_label(d), id=str(k)) for k, d in enumerate(self.diagnostics)]
                         or [Option("[green]✓ no problems[/]", id="none", disabled=True)])
        if self.diagnostics:
            self.highlighted = 0
        counts = [f"{plural(n, what)}" for n, what in ((len(errors), "error"), (len(warnings), "warning")) if n]
        self.border_title = "problems" + (f": {', '.join(counts)}" if counts else "")  # fits a 30-cell pane

    def _on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id and event.option.id.isdigit():
            self.post_message(self.Chosen(self.diagnostics[int(event.option.id)]))


class StudioFooter(Footer):
    """The footer; on a narrow screen the keys marked ``wide`` in :data:`.keys.KEYS` are
    left out (they stay in help and the palette), so that the rest fits, uncut."""

    def __init__(self, **kwargs):
        super().__init__(compact=True, **kwargs)
        self._narrow: bool | None = None

    def compose(self):
        self._narrow = narrow = self.app.size.width < FOOTER_WIDE
        for widget in super().compose():
            if narrow and isinstance(widget, FooterKey) and widget.action in NARROW_HIDDEN:
                widget.display = False
            yield widget

    def on_resize(self) -> None:
        if self._narrow is not None and self._narrow != (self.app.size.width < FOOTER_WIDE):
            self.refresh(recompose=True)
