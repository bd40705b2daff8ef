"""Plain terminal output for ``check``: styled text and aligned tables, no rich.

``cnnshape check`` must start fast; rich alone costs about as much as everything else
`check` imports, for a table of a few columns. Colours (ANSI) only on a terminal that
wants them (not when piped, not with ``NO_COLOR``, not on ``TERM=dumb``); lines are never
wrapped, so CI logs get whole lines.
"""

from __future__ import annotations

import os
import sys
from typing import IO

from .limits import no_commands, printable

_SGR = {"bold": "1", "dim": "2", "italic": "3", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


def _sgr(style: str) -> str:
    codes = [_SGR[w] for w in style.split() if w in _SGR]
    return f"\x1b[{';'.join(codes)}m" if codes else ""


class Text:
    """A line (or lines) of text made of styled spans (``style``: words of ``_SGR``)."""

    __slots__ = ("parts",)

    def __init__(self, text: str = "", style: str = ""):
        # unsafe characters (ESC, other controls, bidi overrides) shown escaped, never sent raw
        self.parts: list[tuple[str, str]] = [(printable(text, "\n\t"), style)] if text else []

    def append(self, text: str | Text, style: str = "") -> Text:
        if isinstance(text, Text):
            self.parts.extend(text.parts)
        elif text:
            self.parts.append((printable(text, "\n\t"), style))
        return self

    @classmethod
    def assemble(cls, *parts: str | Text) -> Text:
        out = cls()
        for p in parts:
            out.append(p)
        return out

    @property
    def plain(self) -> str:
        return "".join(t for t, _ in self.parts)

    def __str__(self) -> str:
        return self.plain

    def __len__(self) -> int:
        return len(self.plain)

    def __rich__(self):
        """The same spans for a rich Console (commands that still print with rich)."""
        from rich.text import Text as RichText

        out = RichText()
        for text, style in self.parts:
            out.append(text, style=style or None)
        return out

    def render(self, color: bool) -> str:
        if not color:
            return self.plain
        out = []
        for text, style in self.parts:
            code = _sgr(style)
            # styles end at each line break so that a styled span never bleeds into the gutter
            out.append("\n".join(f"{code}{line}\x1b[0m" if code and line else line
                                 for line in text.split("\n")))
        return "".join(out)


def _text(cell) -> Text:
    return cell if isinstance(cell, Text) else Text(str(cell))


class Table:
    """Columns separated by two spaces, an optional title line, header and footer rows."""

    def __init__(self, title: str | None = None):
        self.title = title
        self.columns: list[tuple[str, str, Text]] = []  # (header, justify, footer)
        self.rows: list[list[Text]] = []

    def add_column(self, header: str, justify: str = "left", footer: str | Text = "") -> None:
        self.columns.append((header, justify, _text(footer)))

    def add_row(self, *cells) -> None:
        self.rows.append([_text(c) for c in cells])

    def render(self, color: bool) -> str:
        has_footer = any(len(f) for _, _, f in self.columns)
        body = [[Text(h, "bold") for h, _, _ in self.columns], *self.rows]
        if has_footer:
            body.append([Text(f.plain, "bold") for _, _, f in self.columns])
        widths = [max(len(row[i]) for row in body) for i in range(len(self.columns))]
        lines = [Text(self.title).render(color)] if self.title else []
        for row in body:
            cells = []
            for (_, justify, _), width, cell in zip(self.columns, widths, row):
                pad = " " * (width - len(cell))
                cells.append(pad + cell.render(color) if justify == "right" else cell.render(color) + pad)
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)


class Console:
    """Prints Text, Table or str to stdout or stderr."""

    def __init__(self, stderr: bool = False, file: IO[str] | None = None):
        self.file = file or (sys.stderr if stderr else sys.stdout)
        isatty = getattr(self.file, "isatty", lambda: False)()
        self.color = bool(isatty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb")

    def print(self, obj: str | Text | Table = "", end: str = "\n") -> None:
        text = printable(obj, "\n\t") if isinstance(obj, str) else obj.render(self.color)
        self.file.write(no_commands(text + end))


def plural(n: int, word: str) -> str:
    """``1 error``, ``2 errors``."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")
