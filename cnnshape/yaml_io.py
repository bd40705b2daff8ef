"""Safe YAML reading with positions.

The document is *composed* (parsed to a node graph) by ruamel.yaml and converted here
to plain Python values, so that:

- only the YAML core types exist (map, list, str, int, float, bool, null): any other tag
  (``!!python/object``, ``!!binary``, timestamps, custom ``!tags``) is a located error;
- every value keeps its 1-based line/column (``Positions``);
- aliases cannot blow up memory: the conversion counts the values it produces and stops
  at ``MAX_NODES`` ("billion laughs" fails in milliseconds with a clear message);
- files over ``MAX_BYTES`` are refused before parsing.
"""

import math
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

from .errors import Diagnostic, SpecError, SpecFileError
from .limits import MAX_BYTES, MAX_DEPTH, MAX_DIGITS, MAX_ITEMS, MAX_NODES, MAX_STR

_CORE = "tag:yaml.org,2002:"
_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+)$")
_FLOAT_SPECIAL = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}
_SURROGATE = re.compile("[\ud800-\udfff]")
#: seconds to wait for data from a pipe/FIFO/device before giving up
READ_TIMEOUT = 5.0
#: the whole read of a pipe/FIFO/device: at most this many READ_TIMEOUTs
READ_TOTAL_FACTOR = 2


@dataclass
class Positions:
    """1-based (line, column) of values, keyed by path: ``("layers", 3)`` is the fourth
    layer, ``("layers", 3, "kernel_size")`` the position of that key."""

    table: dict[tuple, tuple[int, int]] = field(default_factory=dict)

    def get(self, *path) -> tuple[int | None, int | None]:
        """Position of the deepest known prefix of ``path``."""
        while path:
            if path in self.table:
                return self.table[path]
            path = path[:-1]
        return (None, None)

    def exact(self, *path) -> tuple[int | None, int | None]:
        return self.table.get(path, (None, None))


def _too_large(name: str, size: str) -> SpecFileError:
    return SpecFileError(f"{name}: {size} is larger than the {MAX_BYTES:,}-byte limit for a spec "
                         "(README: Limits)")


def read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a spec file, at most ``MAX_BYTES``; SpecFileError (exit 2) when the path
    is empty, missing, a folder, unreadable, too large, or a pipe/device that sends nothing
    for ``READ_TIMEOUT`` seconds. Never blocks forever: the file is opened non-blocking and
    its type checked before reading; the size is counted while reading (``st_size`` of
    /dev/zero is 0)."""
    name = os.fspath(path)
    if not name:
        raise SpecFileError("'': an empty path (give a spec file, or - for standard input)")
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise SpecFileError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise SpecFileError(f"{name}: is a directory, not a spec file") from None
    except OSError as exc:
        raise SpecFileError(f"{name}: cannot read ({exc.strerror})") from None
    except ValueError as exc:  # e.g. a NUL byte in the path
        raise SpecFileError(f"{name!r}: not a valid path ({exc})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise SpecFileError(f"{name}: is a directory, not a spec file")
        if stat.S_ISREG(st.st_mode):
            if st.st_size > MAX_BYTES:
                raise _too_large(name, f"{st.st_size:,} bytes")
            os.set_blocking(fd, True)
            return read_fd(fd, name, timeout=None)
        return read_fd(fd, name, timeout=READ_TIMEOUT)
    finally:
        os.close(fd)


def read_fd(fd: int, name: str, timeout: float | None = None) -> bytes:
    """Read ``fd`` to its end, refusing more than ``MAX_BYTES``; with ``timeout``, give up
    when no data arrives for that many seconds (a pipe whose writer never writes)."""
    import select
    import time

    chunks, size = [], 0
    # a writer that trickles a byte every few seconds is stopped too: the whole read of a
    # pipe or device takes at most READ_TOTAL_FACTOR times the timeout
    deadline = None if timeout is None else time.monotonic() + READ_TOTAL_FACTOR * timeout
    while True:
        if timeout is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SpecFileError(f"{name}: still sending after {READ_TOTAL_FACTOR * timeout:g} s (a pipe or "
                                    "device that trickles?); save the spec to a file")
            try:
                ready, _, _ = select.select([fd], [], [], min(timeout, left))
            except (OSError, ValueError):
                ready = [fd]
            if not ready:
                if time.monotonic() >= deadline:
                    continue
                raise SpecFileError(f"{name}: no data arrived for {timeout:g} s (a pipe or device "
                                    "with no writer?)")
        try:
            chunk = os.read(fd, min(1 << 16, MAX_BYTES + 1 - size))
        except BlockingIOError:
            continue
        except OSError as exc:
            raise SpecFileError(f"{name}: cannot read ({exc.strerror})") from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BYTES:
            raise _too_large(name, "the input")


def decode(data: bytes, source: str | None = None) -> str:
    """UTF-8 (with or without a BOM) to text; a located SpecError for other encodings."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError([Diagnostic("the file is UTF-16 text, not UTF-8", "save the spec as UTF-8 YAML",
                                    line=1, column=1)], source)
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = body[:exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        raise SpecError([Diagnostic(f"the file is not UTF-8 text (byte {body[exc.start]:#04x} at line "
                                    f"{line}, column {column})", "save the spec as UTF-8 YAML",
                                    line=line, column=column)], source) from None


def read_text(path: str | os.PathLike) -> str:
    """Read a spec file (see :func:`read_bytes`) and decode it (see :func:`decode`)."""
    return decode(read_bytes(path), os.fspath(path))


def _prescan(text: str, source: str | None) -> None:
    """Refuse, before the (slow, pure-Python) parser runs, documents over the item or bracket
    nesting limits: both are counted with C-speed scans over the text."""
    if len(text) > MAX_BYTES:
        raise _too_large(source or "<text>", f"{len(text):,} characters")

    def at(pos: int, message: str, hint: str) -> SpecError:
        line = text.count("\n", 0, pos) + 1
        col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        return SpecError([Diagnostic(message, hint, line=line, column=col)], source)

    if text.count("\n") + text.count(",") > MAX_ITEMS:
        for n, m in enumerate(re.finditer("[\n,]", text)):
            if n == MAX_ITEMS:
                raise at(m.start(), f"the spec has more than {MAX_ITEMS:,} lines and list items "
                                    "(README: Limits)", "split the network, or use Repeat for repeated layers")
    if text.count("[") + text.count("{") > MAX_DEPTH:
        depth = 0
        for m in re.finditer(r"[\[\]{}]|\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|(?:^|(?<=\s))#[^\n]*", text):
            c = m.group()
            if c in "[{":
                depth += 1
                if depth > MAX_DEPTH:
                    raise at(m.start(), f"the document is nested more than {MAX_DEPTH} levels deep "
                                        "(README: Limits)", "flatten the brackets")
            elif c in "]}":
                depth = max(depth - 1, 0)


def check_plain(data: Any, source: str | None = None) -> None:
    """Limits for data given as Python values (``load(dict)``): nesting depth (a dict that
    contains itself is refused too), value count, integer magnitude and string contents."""
    count = 0
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise SpecError([Diagnostic(f"the data has more than {MAX_NODES:,} values (README: Limits)")], source)
        if depth > MAX_DEPTH:
            raise SpecError([Diagnostic(f"the data is nested more than {MAX_DEPTH} levels deep, or contains "
                                        "itself (README: Limits)")], source)
        if isinstance(value, dict):
            for k, v in value.items():
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str):
            problem = _check_str(value)
            if problem:
                raise SpecError([Diagnostic(problem)], source)
        elif isinstance(value, int) and value.bit_length() > 4 * MAX_DIGITS:
            raise SpecError([Diagnostic(f"an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits: "
                                        f"numbers in a spec have at most {MAX_DIGITS} (README: Limits)")], source)


def _check_str(value: str) -> str | None:
    if len(value) > MAX_STR:
        return f"a string of {len(value):,} characters is longer than the {MAX_STR:,}-character limit"
    if _SURROGATE.search(value):
        return f"the string {value.encode('utf-8', 'backslashreplace').decode()!r} is not valid Unicode " \
               "(a lone surrogate)"
    return None


class _Converter:
    def __init__(self, source: str | None):
        self.source = source
        self.positions = Positions()
        self.count = 0

    def fail(self, node, message: str, hint: str = "") -> SpecError:
        mark = node.start_mark
        return SpecError([Diagnostic(message, hint, line=mark.line + 1, column=mark.column + 1)], self.source)

    def convert(self, node, path: tuple, depth: int = 0) -> Any:
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(node, f"the document expands to more than {MAX_NODES:,} values "
                                  "(aliases referring to aliases: a 'billion laughs' document?)",
                            "write the spec without nested anchors/aliases")
        if depth > MAX_DEPTH:
            raise self.fail(node, f"the document is nested more than {MAX_DEPTH} levels deep (README: Limits)")
        mark = node.start_mark
        if len(path) <= 3 or not isinstance(node, ScalarNode):
            # every value of the top levels, and every mapping/list deeper (nested layers)
            self.positions.table.setdefault(path, (mark.line + 1, mark.column + 1))
        tag = node.tag.value if hasattr(node.tag, "value") else node.tag
        if isinstance(node, ScalarNode):
            return self.scalar(node, tag)
        if isinstance(node, SequenceNode):
            if tag != _CORE + "seq":
                raise self.fail(node, f"unsupported YAML tag {tag}", "remove the tag: specs use plain YAML")
            return [self.convert(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            if tag != _CORE + "map":
                raise self.fail(node, f"unsupported YAML tag {tag}", "remove the tag: specs use plain YAML")
            out: dict = {}
            for key_node, value_node in node.value:
                ktag = key_node.tag.value if hasattr(key_node.tag, "value") else key_node.tag
                if ktag == _CORE + "merge":
                    raise self.fail(key_node, "merge keys (<<) are not supported in specs",
                                    "write the keys out")
                if not isinstance(key_node, ScalarNode):
                    raise self.fail(key_node, "mapping keys must be plain names, not lists or mappings")
                key = self.scalar(key_node, ktag)
                if not isinstance(key, str):
                    key = str(key_node.value)
                if key in out:
                    raise self.fail(key_node, f"duplicate key '{key}'", "keep one of the two entries")
                kmark = key_node.start_mark
                self.positions.table[path + (key,)] = (kmark.line + 1, kmark.column + 1)
                out[key] = self.convert(value_node, path + (key,), depth + 1)
            return out
        raise self.fail(node, "unsupported YAML node")  # pragma: no cover

    def scalar(self, node, tag: str) -> Any:
        v = node.value
        if tag == _CORE + "str":
            problem = _check_str(v)
            if problem:
                raise self.fail(node, problem, "write plain text")
            return v
        if tag == _CORE + "null":
            return None
        if tag == _CORE + "bool":
            return v.lower() == "true"
        if tag == _CORE + "int" and _INT.match(v):
            if len(v) > MAX_DIGITS:
                raise self.fail(node, f"the integer {v[:12]}… has {len(v)} digits; numbers in a spec have at "
                                      f"most {MAX_DIGITS} (README: Limits)", "use a realistic size")
            try:
                return int(v.replace("_", ""), 0) if not re.match(r"[-+]?0[0-9]", v) else int(v.replace("_", ""))
            except ValueError:
                pass
        if tag == _CORE + "float":
            low = v.lower()
            if low in _FLOAT_SPECIAL:
                return _FLOAT_SPECIAL[low]
            try:
                return float(v.replace("_", ""))
            except ValueError:
                pass
        short = tag.replace(_CORE, "!!")
        raise self.fail(node, f"unsupported YAML value {v!r} with tag {short}",
                        "specs use plain YAML: numbers, strings, true/false, null, lists and mappings")


def _line_col(text: str, pos: int) -> tuple[int, int]:
    """1-based line and column of the character offset ``pos``."""
    return text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _marked_diagnostic(exc) -> Diagnostic:
    """A located ruamel error as a diagnostic; an unclosed bracket is shown where it was opened."""
    mark = exc.problem_mark or exc.context_mark
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    if exc.context and exc.problem:
        problem = f"{problem} ({exc.context})"
    line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
    opened = exc.context_mark
    if opened is not None and mark is not None and opened.line != mark.line and exc.context \
            and "flow" in exc.context:
        # an unclosed bracket: the parser notices lines later; point at where it was opened
        what = exc.context.strip().replace("while parsing a ", "")
        found = exc.problem.strip() if exc.problem else "unexpected end"
        problem = f"the {what} opened here is never closed ({found} at line {line}, column {col})"
        line, col = opened.line + 1, opened.column + 1
    return Diagnostic(f"invalid YAML: {problem}", _yaml_hint(problem), line=line, column=col)


def _compose(text: str, source: str | None):
    """ruamel's node tree of ``text``; SpecError, located, if the YAML is invalid."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt", pure=True)
    try:
        return yaml.compose(text)
    except MarkedYAMLError as exc:
        raise SpecError([_marked_diagnostic(exc)], source) from None
    except YAMLError as exc:
        pos = getattr(exc, "position", None)
        line, col = _line_col(text, pos) if pos is not None else (None, None)
        raise SpecError([Diagnostic(f"invalid YAML: {str(exc).splitlines()[0]}", "", line=line, column=col)],
                        source) from None
    except RecursionError:
        raise SpecError([Diagnostic(f"invalid YAML: the document is nested more than {MAX_DEPTH} levels deep",
                                    line=1, column=1)], source) from None
    except (ValueError, OverflowError) as exc:  # e.g. "\U0011FFFF": no such character
        m = re.search(r"\\U[0-9a-fA-F]{8}", text)
        line, col = _line_col(text, m.start() if m else 0)
        raise SpecError([Diagnostic(f"invalid YAML: {exc}", "an escape names a character that does not exist",
                                    line=line, column=col)], source) from None


def parse(text: str, source: str | None = None) -> tuple[Any, Positions]:
    """Parse YAML text to plain Python values and their positions; SpecError if invalid."""
    _prescan(text, source)
    node = _compose(text, source)
    if node is None:
        raise SpecError([Diagnostic("the spec is empty", "start from: input: [1, 28, 28] and a layers: list",
                                    line=1, column=1)], source)
    conv = _Converter(source)
    try:
        data = conv.convert(node, ())
    except RecursionError:  # pragma: no cover - MAX_DEPTH stops the conversion first
        raise SpecError([Diagnostic("the document is nested too deeply", line=1, column=1)], source) from None
    return data, conv.positions


def _yaml_hint(problem: str) -> str:
    if "tab" in problem.lower():
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return "put a space after ':' and quote values that contain ': '"
    if "expected ',' or" in problem:
        return "close the bracket of the flow list/mapping"
    return "check indentation and brackets around this position"
