"""Diagnostics (located errors and warnings) and the exceptions that carry them."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One located problem. ``line``/``column`` (1-based) point at the layer (or the
    top-level key) in the YAML file; ``key_line``/``key_column`` at the offending key."""

    message: str
    hint: str = ""
    index: int | None = None
    name: str | None = None
    line: int | None = None
    column: int | None = None
    key: str | None = None
    key_line: int | None = None
    key_column: int | None = None
    severity: str = "error"  # "error" | "warning"
    #: argument changes that fix the layer ({key: value}; None removes), or None
    fix: dict | None = field(default=None, compare=False)
    #: a "did you mean": ("argument" | "type", what was written, what was meant), or None
    suggestion: tuple[str, str, str] | None = field(default=None, compare=False)
    #: found after an earlier error, on the shapes the analysis assumed when recovering
    #: from it (the JSON carries ``"after_error": true``)
    after_error: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of docs/spec.md section 4 (``key*`` fields only when a key is involved)."""
        out = {"index": self.index, "name": self.name, "line": self.line, "column": self.column,
               "message": self.message, "hint": self.hint}
        if self.key is not None:
            out.update(key=self.key, key_line=self.key_line, key_column=self.key_column)
        if self.after_error:
            out["after_error"] = True
        return out


class CnnshapeError(Exception):
    """Base of cnnshape's exceptions."""


class SpecFileError(CnnshapeError):
    """The spec could not be read at all (missing, unreadable, too large): exit 2."""


class UserCodeError(SpecFileError):
    """The user's Python file (``FILE.py:ATTR``) could not give a model: it raised, exited,
    or lacks the attribute. The message starts with the user's ``file:line:col`` when
    known (exit 2, as for a file that cannot be read)."""


class SpecError(CnnshapeError):
    """The spec is invalid: carries every located diagnostic (exit 1).

    ``partial`` is the valid prefix of the spec (layers before the first broken one) when
    the top level is sound, so callers can still report those layers. ``recovered`` goes
    further: broken layers with a confident stand-in (a misspelled type read as its "did
    you mean" suggestion) are replaced by it, up to the first layer that has none; the
    analysis continues on it to find later independent errors.
    """

    def __init__(self, diagnostics: list[Diagnostic], source: str | None = None, partial=None,
                 recovered=None):
        self.diagnostics = list(diagnostics)
        self.source = source
        self.partial = partial
        self.recovered = recovered if recovered is not None else partial
        first = self.diagnostics[0] if self.diagnostics else None
        where = ""
        if first is not None and first.line is not None:
            where = f"{source or '<spec>'}:{first.line}:{first.column}: "
        more = f" (+{len(self.diagnostics) - 1} more)" if len(self.diagnostics) > 1 else ""
        super().__init__(f"{where}{first.message if first else 'invalid spec'}{more}")
