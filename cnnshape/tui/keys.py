"""The studio's keys, in one list: the design screen's bindings, the help screen, the
command palette and the README key table are all generated from :data:`KEYS`."""

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    keys: str          # Textual key names, comma-separated ("ctrl+z,u")
    action: str        # the design screen's action ("move(-1)")
    short: str         # footer label
    title: str         # command palette title ("" = not in the palette)
    help: str          # one line for the help screen, the palette and the README
    group: str
    footer: bool = True
    wide: bool = False  # in the footer only where it is wide (see FOOTER_WIDE); help/palette always


KEYS: tuple[Key, ...] = (
    Key("e,enter", "edit", "Edit", "Edit layer", "edit the selected layer's arguments (live preview of its output "
        "or error); on the input row: input shape, batch, dtype", "Layers"),
    Key("a", "add", "Add", "Add layer", "add a layer after the selection (palette: type to filter)", "Layers"),
    Key("i", "insert_before", "Insert", "Insert layer", "insert a layer before the selection", "Layers", False),
    Key("d,delete", "delete", "Delete", "Delete layer", "delete the selected layer", "Layers"),
    Key("y", "duplicate", "Dup", "Duplicate layer", "duplicate the selected layer", "Layers", wide=True),
    Key("K,shift+up", "move(-1)", "Up", "Move layer up", "move the selected layer up", "Layers", False),
    Key("J,shift+down", "move(1)", "Down", "Move layer down", "move the selected layer down", "Layers", False),
    Key("r", "rename", "Rename", "Rename layer", "rename the layer (its child-module name in the compiled model)",
        "Layers", wide=True),
    Key("f", "fix", "Fix", "Apply fix", "apply the fix of the selected layer's problem (automatic fixes, "
        "\"did you mean\", a change of this layer that repairs the block around it)", "Layers"),
    Key("right,l", "expand", "Open", "", "open a block (Sequential, Repeat, Residual, Concat)", "Layers", False),
    Key("left,h", "collapse", "Close", "", "close a block (from inside: the enclosing one)", "Layers", False),
    Key("space", "toggle", "Open/close", "", "open or close a block", "Layers", False),
    Key("home", "first_row", "First", "", "jump to the first row (the input)", "Layers", False),
    Key("end", "last_row", "Last", "", "jump to the last row", "Layers", False),
    Key("ctrl+z,u", "undo", "Undo", "Undo", "undo the last edit", "History and files"),
    Key("ctrl+y,U", "redo", "Redo", "Redo", "redo the undone edit", "History and files", wide=True),
    Key("ctrl+s", "save", "Save", "Save", "save (comments and layout of the file are kept)", "History and files"),
    Key("S", "save_as", "Save as", "Save as", "save to another file", "History and files", False),
    Key("v", "yaml", "YAML", "Show YAML", "view the YAML of the design, as it would be saved", "History and files",
        wide=True),
    Key("t", "train", "Train", "Train", "train the design briefly (data, device, epochs; live plots, Stop)",
        "Training"),
    Key("m", "maps", "Maps", "Filters and feature maps", "filters and feature maps of a sample, before/after "
        "training", "Training", wide=True),
    Key("question_mark,f1", "help", "Help", "Help", "this help: keys and status marks", "Elsewhere"),
    Key("q", "quit_app", "Quit", "Quit", "quit; like ctrl+q and ctrl+c, asks save / discard / cancel when there are unsaved "
        "edits (kept meanwhile in a recovery file, offered on the next open)", "Elsewhere"),
)

#: the footer lists the keys marked ``wide`` only on screens at least this wide
FOOTER_WIDE = 120
#: actions left out of the footer on narrower screens
NARROW_HIDDEN = frozenset(k.action for k in KEYS if k.wide)

#: keys handled outside the design screen's bindings (Textual's own), for help and README
OTHER_KEYS = (("tab", "move between the panes: layers, the selected layer (scrolls), problems (enter on a "
                 "problem jumps to it); the focused pane has a heavy border"),
              ("ctrl+p", "command palette"))

_NAMES = {"question_mark": "?", "delete": "del", "shift+up": "shift+↑", "shift+down": "shift+↓", "right": "→",
          "left": "←", "enter": "enter", "home": "Home", "end": "End"}


def key_names(k: Key) -> str:
    return " / ".join(_NAMES.get(x, x) for x in k.keys.split(","))


def bindings(layer_table: bool = False) -> list[Binding]:
    """Textual bindings: the screen's (``layer_table``: the arrows, which the table would
    otherwise use to scroll sideways)."""
    arrows = {"expand", "collapse", "toggle", "first_row", "last_row"}
    return [Binding(k.keys, ("screen." if layer_table else "") + k.action, k.short, show=k.footer)
            for k in KEYS if (k.action in arrows) == layer_table]


def help_table():
    """The help screen as a Rich table (descriptions wrap in their own column)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=True)
    table.add_column(style="bold", no_wrap=True, min_width=16)
    table.add_column(ratio=1)
    group = None
    for k in KEYS:
        if k.group != group:
            group = k.group
            table.add_row(Text(""), Text(""))
            table.add_row(Text(group, style="bold underline"), Text(""))
        table.add_row(key_names(k), k.help)
    table.add_row(Text(""), Text(""))
    for keys, text in OTHER_KEYS:
        table.add_row(keys, text)
    return Group(Text("cnnshape design studio", style="bold"),
                 Text("Every change is re-analysed at once: shapes, receptive fields, params, MACs, errors."),
                 table, Text("\nStatus marks: ✓ ok  ⚠ warning  ✗ error  · not analysed (after an error)."))


def readme_table() -> str:
    """The README's key table (Markdown)."""
    rows = ["| key | action |", "|---|---|"]
    rows += [f"| {' / '.join(f'`{_NAMES.get(x, x)}`' for x in k.keys.split(','))} | {k.help} |" for k in KEYS]
    rows += [f"| `{keys}` | {text} |" for keys, text in OTHER_KEYS]
    return "\n".join(rows)
