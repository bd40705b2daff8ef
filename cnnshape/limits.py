"""The limits that keep every answer proportional to the text the user wrote.

Each limit is checked as early as possible and refused with a message that names it
(README "Limits"). The values are generous for real networks (the largest shipped spec
uses a few hundred values and 5 levels of nesting) and small enough that ``check``
answers any input inside them in about a second.
"""

import re

#: bytes of a spec file (or of YAML text / stdin); larger inputs are refused unread
MAX_BYTES = 1024 * 1024
#: separators (lines + commas) of a spec: a cheap count taken before parsing, because the
#: pure-Python YAML parser needs ~0.1 ms per value
MAX_ITEMS = 20_000
#: values the YAML expands to (aliases included: "billion laughs" stops here)
MAX_NODES = 50_000
#: nesting of lists/mappings in the document (YAML and dict input alike)
MAX_DEPTH = 64
#: layers after expanding every Repeat (what build would instantiate)
MAX_LAYERS = 10_000
#: magnitude of every integer: sizes, channels, arguments, batch, and every output dimension
MAX_INT = 2**40
#: decimal digits of an integer literal (Python's int-string limit is 4300)
MAX_DIGITS = 30
#: characters of a string value (names, descriptions)
MAX_STR = 10_000
#: numbers of a fixed ``weight`` list
MAX_WEIGHT = 10_000


def shown(value, width: int = 60) -> str:
    """``repr(value)`` safe for messages: huge integers (Python refuses to print more than
    4300 digits) become ``an integer of about N digits``, long texts are cut, lone
    surrogates escaped."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3 * MAX_DIGITS:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits"
    if isinstance(value, (list, tuple, dict)):
        if isinstance(value, dict):
            parts = (f"{shown(k, 20)}: {shown(v, 20)}" for k, v in list(value.items())[:8])
            text = "{" + ", ".join(parts) + (", …}" if len(value) > 8 else "}")
        else:
            parts = (shown(v, 20) for v in list(value)[:8])
            text = "[" + ", ".join(parts) + (", …]" if len(value) > 8 else "]")
    else:
        text = repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= width else text[: width - 1] + "…"


#: characters no output shows safely: C0/C1 controls (ESC drives terminals, a newline would
#: start a forged ``::error`` line in a CI log), bidirectional and zero-width format
#: characters, line/paragraph separators, the BOM, non-characters and lone surrogates
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
                     "\ufeff\ufff9-\ufffb\ufffe\uffff\ud800-\udfff]")
#: a line that a GitHub runner would read as a workflow command (leading blanks are trimmed)
_COMMAND_LINE = re.compile(r"^([ \t]*(?:\x1b\[[0-9;]*m)*[ \t]*)(::)", re.MULTILINE)


def _escape(m: "re.Match[str]") -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, keep: str = "") -> str:
    """``text`` with every unsafe character (see ``_UNSAFE``) written as ``\\xNN`` /
    ``\\uNNNN``, except those in ``keep`` (e.g. ``"\\n"`` for multi-line messages)."""
    if not _UNSAFE.search(text):
        return text
    if keep:
        return "".join(printable(part) if part not in keep else part
                       for part in re.split("([" + re.escape(keep) + "])", text))
    return _UNSAFE.sub(_escape, text)


def no_commands(text: str) -> str:
    """Human output never has a line a CI runner takes for a command (``::error ...``):
    such a line gets a ``› `` in front."""
    return _COMMAND_LINE.sub(r"\1› \2", text)


def human_text(text: str) -> str:
    """Text for a terminal or log: unsafe characters escaped (line breaks and tabs kept),
    no line starting with ``::``."""
    return no_commands(printable(text, "\n\t"))
