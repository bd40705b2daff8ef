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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Diagnostic, SpecError, SpecFileError

MAX_BYTES = 8 * 1024 * 1024
MAX_NODES = 500_000
MAX_DEPTH = 64

_CORE = "tag:yaml.org,2002:"
_INT = re.compile(r"[-+]?(0|[1-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+)$")
_FLOAT_SPECIAL = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}


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


def read_text(path: str | os.PathLike) -> str:
    """Read a spec file; SpecFileError (exit 2) when missing, unreadable or too large."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise SpecFileError(f"{p}: no such file") from None
    except OSError as exc:
        raise SpecFileError(f"{p}: cannot read ({exc.strerror})") from None
    except ValueError as exc:  # e.g. a NUL byte in the path
        raise SpecFileError(f"{str(p)!r}: not a valid path ({exc})") from None
    if p.is_dir():
        raise SpecFileError(f"{p}: is a directory, not a spec file")
    if size > MAX_BYTES:
        raise SpecFileError(f"{p}: {size:,} bytes is larger than the {MAX_BYTES:,}-byte limit for a spec")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise SpecFileError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError([Diagnostic(f"the file is not UTF-8 text (byte {exc.start}: {data[exc.start]:#04x})",
                                    "save the spec as UTF-8 YAML")], str(p)) from None


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
            raise self.fail(node, f"the document is nested more than {MAX_DEPTH} levels deep")
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
            return v
        if tag == _CORE + "null":
            return None
        if tag == _CORE + "bool":
            return v.lower() == "true"
        if tag == _CORE + "int" and _INT.match(v):
            return int(v.replace("_", ""), 0) if not re.match(r"[-+]?0[0-9]", v) else int(v.replace("_", ""))
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


def parse(text: str, source: str | None = None) -> tuple[Any, Positions]:
    """Parse YAML text to plain Python values and their positions; SpecError if invalid."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    if len(text) > MAX_BYTES:
        raise SpecFileError(f"{source or '<text>'}: {len(text):,} characters is larger than the "
                            f"{MAX_BYTES:,}-byte limit for a spec")
    yaml = YAML(typ="rt", pure=True)
    try:
        node = yaml.compose(text)
    except MarkedYAMLError as exc:
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
        raise SpecError([Diagnostic(f"invalid YAML: {problem}", _yaml_hint(problem), line=line, column=col)],
                        source) from None
    except YAMLError as exc:
        line = col = None
        pos = getattr(exc, "position", None)
        if pos is not None:
            line = text.count("\n", 0, pos) + 1
            col = pos - (text.rfind("\n", 0, pos) + 1) + 1
        raise SpecError([Diagnostic(f"invalid YAML: {str(exc).splitlines()[0]}", "", line=line, column=col)],
                        source) from None
    except RecursionError:
        raise SpecError([Diagnostic("invalid YAML: the document is nested too deeply")], source) from None
    if node is None:
        raise SpecError([Diagnostic("the spec is empty", "start from: input: [1, 28, 28] and a layers: list",
                                    line=1, column=1)], source)
    conv = _Converter(source)
    try:
        data = conv.convert(node, ())
    except RecursionError:
        raise SpecError([Diagnostic("the document is nested too deeply")], source) from None
    return data, conv.positions


def _yaml_hint(problem: str) -> str:
    if "tab" in problem.lower():
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return "put a space after ':' and quote values that contain ': '"
    if "expected ',' or" in problem:
        return "close the bracket of the flow list/mapping"
    return "check indentation and brackets around this position"
