"""Modal screens of the design studio: forms, palette, prompts, choices, YAML, help, errors.

Screens only collect input and hand it back with ``dismiss``; what an answer means is
decided by the app, using :mod:`cnnshape.design`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.dom import NoScreen
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Button,
    Footer,
    Input,
    Label,
    OptionList,
    Select,
    Static,
    TextArea,
)
from textual.widgets.option_list import Option

from ..design import UNSET, format_value, parse_value, similar_types
from ..layers import LAYER_TYPES
from .markup import escape


class FieldInput(Input):
    """A form field: selects its text when reached by Tab, and its keys are handled in
    the order they arrive (see :func:`handle_key_in_order`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, select_on_focus=False, **kwargs)  # selected synchronously instead


def _active_field(app: App) -> Input | None:
    """The focused text field of the active screen (None while a dialog is being closed)."""
    field = app.focused
    if not isinstance(field, Input):
        return None
    try:
        return field if field.screen is app.screen else None
    except NoScreen:
        return None


def paste_in_order(app: App, event: events.Paste) -> bool:
    """A paste into the focused text field, inserted at once (so that keys typed right
    after it cannot overtake it; see :func:`handle_key_in_order`)."""
    field = _active_field(app)
    if field is None or not event.text:
        return False
    lines = event.text.strip("\r\n").splitlines()
    if len(lines) > 1:  # a field holds one line: refuse rather than keep a part silently
        app.notify(f"not pasted: the text has {len(lines)} lines and this field takes one "
                   "(paste a single line, e.g. [3, 5] or a name)", severity="warning")
        return True
    line = lines[0] if lines else ""
    selection = field.selection
    if selection.is_empty:
        field.insert_text_at_cursor(line)
    else:
        field.replace(line, *selection)
    return True


async def handle_key_in_order(app: App, event: events.Key) -> bool:
    """Handle a key for a focused text field completely before the next key is read.

    Textual inserts a printable key in the focused Input at once but runs a bound key
    (backspace, end, tab...) only after the event has bubbled up to the app, so in a burst
    of keys (pasting, fast typing, tmux send-keys) ``End BSpace 7`` inserts the 7 first
    and a Tab is overtaken by the next character, which lands in the old field
    (Textual issue #6605). The app calls this from ``on_event``, before forwarding: the
    key's priority bindings, its character, or the bindings of the focus chain run here,
    in arrival order. False: not handled (the key goes the usual way).
    """
    field = _active_field(app)
    if field is None:
        return False
    if await app._check_bindings(event.key, priority=True):
        return True
    if event.is_printable and event.character:
        selection = field.selection
        if selection.is_empty:
            field.insert_text_at_cursor(event.character)
        else:
            field.replace(event.character, *selection)
        return True
    if await app._check_bindings(event.key):
        now = app.focused
        if now is not field and isinstance(now, FieldInput):
            now.select_all()  # Tab into a field: typing replaces its value
        return True
    return False


@dataclass(frozen=True)
class Field:
    """One form field: a layer argument or a top-level value."""

    key: str
    kind: str              # int/float/str/axes/weight/choice/bool
    value: Any             # current value or UNSET
    default: Any = None
    choices: tuple = ()
    doc: str = ""
    required: bool = False


def layer_fields(type_name: str, values: dict[str, Any], first_only=frozenset()) -> list[Field]:
    """The form of a layer type, made from its declared arguments (``first_only``: keys a
    Repeat's ``first:`` sets for this layer of its first copy)."""
    cls = LAYER_TYPES[type_name]
    out = []
    for key, arg in cls.ARGS.items():
        doc = arg.doc + (" [first copy only: set by the Repeat's first:]" if key in first_only else "")
        out.append(Field(key, arg.kind, values.get(key, UNSET), arg.default,
                         tuple(arg.choices or ()), doc, arg.required))
    return out


class FormScreen(ModalScreen[dict | None]):
    """Edit fields; dismisses with ``{key: value or UNSET}`` for the changed fields.

    ``preview(values) -> str`` (optional) is shown live under the form, e.g. the layer's
    output shape or its error for the values typed so far.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply")]

    def __init__(self, title: str, fields: list[Field], preview: Callable[[dict], str] | None = None):
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.preview = preview

    def compose(self) -> ComposeResult:
        with Vertical(id="form", classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static("", id="form-preview")
            with VerticalScroll(id="form-fields"):
                for f in self.fields:
                    with Horizontal(classes="field"):
                        yield Label(f.key + (" *" if f.required else ""), classes="field-key")
                        yield self._widget(f)
                    if f.doc:
                        yield Static(escape(f.doc), classes="field-doc")
            with Horizontal(classes="buttons"):
                yield Button("Apply (ctrl+s)", variant="primary", id="apply")
                yield Button("Cancel (esc)", id="cancel")

    def _widget(self, f: Field):
        wid = f"f-{f.key}"
        if f.kind in ("choice", "bool"):
            opts = [(str(c), c) for c in f.choices] if f.kind == "choice" else [("true", True), ("false", False)]
            default = "" if f.default is None else f" ({format_value(f.default)})"
            return Select(opts, prompt=f"default{default}", allow_blank=True,
                          value=Select.NULL if f.value is UNSET else f.value, id=wid, classes="field-input",
                          compact=True)
        placeholder = "required" if f.required else f"default: {format_value(f.default)}"
        return FieldInput(value="" if f.value is UNSET else format_value(f.value), placeholder=placeholder,
                          id=wid, classes="field-input", compact=True)

    def on_resize(self) -> None:
        """The fields scroll so that the preview and the buttons stay on a short screen."""
        room = int(self.app.size.height * 0.9) - 14  # the dialog's border, title, preview, buttons
        self.query_one("#form-fields").styles.max_height = max(4, min(24, room))

    def on_mount(self) -> None:
        self.on_resize()
        self._update_preview()
        first = self.query(".field-input").first()
        self.set_focus(first)
        if isinstance(first, FieldInput):
            first.select_all()

    def values(self) -> dict[str, Any]:
        """Every field's value as typed (UNSET where blank)."""
        out = {}
        for f in self.fields:
            w = self.query_one(f"#f-{f.key}")
            if isinstance(w, Select):
                out[f.key] = UNSET if w.value is Select.NULL else w.value
            else:
                out[f.key] = parse_value(w.value)
        return out

    def changes(self) -> dict[str, Any]:
        """Only the fields whose value differs from what the form opened with."""
        out = {}
        for key, new in self.values().items():
            old = self._field(key).value
            same = (new is UNSET and old is UNSET) or (
                new is not UNSET and old is not UNSET and new == old and type(new) is type(old))
            if not same:
                out[key] = new
        return out

    def _field(self, key: str) -> Field:
        return next(f for f in self.fields if f.key == key)

    def _update_preview(self) -> None:
        if self.preview is not None:
            self.query_one("#form-preview", Static).update(self.preview(self.values()))

    def on_input_changed(self, event: Input.Changed) -> None:
        self._update_preview()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._update_preview()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_apply()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "apply":
            self.action_apply()
        else:
            self.action_cancel()

    def action_apply(self) -> None:
        self.dismiss(self.changes())

    def action_cancel(self) -> None:
        self.dismiss(None)


def _first_paragraph(cls) -> str:
    return " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()).replace("``", "")


class PaletteScreen(ModalScreen[str | None]):
    """Pick a layer type: type to filter, arrows to choose, enter to insert."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("down", "to_list", "List", show=False)]

    def __init__(self, title: str = "Insert layer", start: str = ""):
        super().__init__()
        self.title_text = title
        self.start = start  # the filter it opens with (a "did you mean" suggestion)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="palette"):
            yield Label(self.title_text, classes="dialog-title")
            yield FieldInput(self.start, placeholder="filter: conv, pool, relu, 2d ...", id="palette-filter")
            yield OptionList(*self._options(self.start), id="palette-list")

    def on_mount(self) -> None:
        self._highlight_first()

    @staticmethod
    def _options(text: str) -> list[Option]:
        """The layer types matching every word typed; names that match come first (exact,
        then prefix, then anywhere in the name), then matches in the description."""
        words = text.lower().split()
        found = []
        for name, cls in LAYER_TYPES.items():
            doc = _first_paragraph(cls)
            hay = f"{name} {cls.family} {doc}".lower()
            if all(w in hay for w in words):
                low = name.lower()
                rank = 0 if words and low == words[0] else 1 if words and low.startswith(words[0]) else \
                    2 if words and words[0] in low else 3
                found.append((rank, name, cls, doc))
        from rich.table import Table

        out = []
        if not found and words:  # nothing matches: the types it may misspell
            similar = similar_types(text)
            found = [(0, name, LAYER_TYPES[name], _first_paragraph(LAYER_TYPES[name])) for name in similar]
            out.append(Option(f"no type matches '{escape(text.strip())}'"
                              + ("; did you mean:" if similar else " (`cnnshape layers` lists every type)"),
                              id="-none", disabled=True))
        for _, name, cls, doc in sorted(found, key=lambda f: f[0]):
            row = Table.grid(expand=True)  # one line: the description is cut, never wrapped under the name
            row.add_column(width=18, no_wrap=True, style="bold")
            row.add_column(width=14, no_wrap=True, style="dim")
            row.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
            row.add_row(name, cls.family, doc)
            out.append(Option(row, id=name))
        return out

    def on_input_changed(self, event: Input.Changed) -> None:
        ol = self.query_one(OptionList)
        ol.clear_options()
        ol.add_options(self._options(event.value))
        self._highlight_first()

    def _highlight_first(self) -> None:
        ol = self.query_one(OptionList)
        ol.highlighted = next((k for k in range(ol.option_count) if not ol.get_option_at_index(k).disabled), None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        ol = self.query_one(OptionList)
        if ol.highlighted is not None:
            self.dismiss(ol.get_option_at_index(ol.highlighted).id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_to_list(self) -> None:
        self.query_one(OptionList).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line of text (a name, a path)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", placeholder: str = ""):
        super().__init__()
        self.title_text, self.value, self.placeholder = title, value, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(value=self.value, placeholder=self.placeholder, id="prompt")
            yield Static("enter: OK · esc: cancel", classes="field-doc")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceScreen(ModalScreen[str | None]):
    """A question with a few answers (buttons; first letter keys work too)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    #: buttons side by side up to this many cells (label + border + margin), else one per line
    ROW_WIDTH = 70

    def __init__(self, title: str, message: str, choices: list[tuple[str, str]], id: str | None = None):
        super().__init__(id=id)
        self.title_text, self.message, self.choices = title, message, choices

    def compose(self) -> ComposeResult:
        wide = sum(len(label) + 6 for _, label in self.choices) > self.ROW_WIDTH
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(escape(self.message))
            with (Vertical if wide else Horizontal)(classes="buttons" + (" stacked" if wide else "")):
                for i, (cid, label) in enumerate(self.choices):
                    yield Button(label, id=f"c-{cid}", variant="primary" if i == 0 else "default", compact=wide)

    def on_mount(self) -> None:
        self.query(Button).first().focus()

    def on_key(self, event) -> None:
        for cid, label in self.choices:
            key = label.split("(")[-1].rstrip(")") if "(" in label else ""
            if key and event.key == key:
                event.stop()
                self.dismiss(cid)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id[2:])

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextScreen(ModalScreen[None]):
    """Read-only text (the YAML of the design, help)."""

    BINDINGS = [Binding("escape,q,v,question_mark", "close", "Close"),
                Binding("j", "scroll(1)", "Down", show=False), Binding("k", "scroll(-1)", "Up", show=False)]

    def __init__(self, title: str, text: str, language: str | None = None):
        super().__init__()
        self.title_text, self.text, self.language = title, text, language

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.title_text, classes="dialog-title")
            if self.language:
                yield TextArea(self.text, language=self.language, read_only=True, id="text-view")
            else:
                with VerticalScroll(id="text-scroll"):
                    yield Static(self.text, id="text-body")
            yield Static("↑↓ j k PgUp PgDn Home End: scroll · esc: close", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#text-scroll" if not self.language else "#text-view").focus()

    def action_scroll(self, lines: int) -> None:
        view = self.query_one("#text-scroll" if not self.language else "#text-view")
        view.scroll_relative(y=lines, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)


class ErrorScreen(Screen):
    """Shown instead of the studio when the file cannot be opened as a spec."""

    BINDINGS = [Binding("q,escape", "quit", "Quit")]

    def __init__(self, message: str):
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="error-screen"):
            yield Label("Cannot open this file as a cnnshape spec", classes="dialog-title error")
            yield Static(escape(self.message), id="error-message")
            yield Static("\nA spec is YAML like:\n\n  input: [1, 28, 28]\n  layers:\n"
                         "    - {type: Conv2d, out_channels: 8, kernel_size: 3}\n    - ReLU\n\n"
                         "Fix the file, or start a new design: cnnshape tui new.yaml\n\nq: quit",
                         classes="error-doc")
        yield Footer()

    def action_quit(self) -> None:
        self.app.exit(return_code=2)  # like `cnnshape check` on an unreadable file
