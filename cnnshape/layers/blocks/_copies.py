"""What Repeat and DenseBlock share: ``child_names`` formats for their copies.

The limits apply to the names a format *makes*, not only to the format: a width or
precision is at most ``MAX_NAME`` (so formatting one name is bounded before it runs), and
every produced name is a valid, distinct module name of at most ``MAX_NAME`` characters
(checked for all ``n`` copies: work proportional to the copies the spec asks for).
"""

import re
from string import Formatter

from ...limits import MAX_LAYERS, shown
from ...names import name_problem
from ..base import Arg, LayerError

#: characters of a name made by child_names (and the largest width/precision in it)
MAX_NAME = 100

child_names_arg = Arg("str", "{index}", "Child name of each copy: a format with {index} (0-based) and/or "
                      "{number} (1-based), e.g. denselayer{number} or block1-{index}.")

_HINT = "use {index} or {number}, e.g. denselayer{number}"


def _fields(fmt: str) -> set[str]:
    """The fields of ``fmt``; ValueError for a malformed format, or one whose width or
    precision exceeds MAX_NAME or that nests fields (``{index:{number}}``)."""
    fields = set()
    for _, name, spec, _ in Formatter().parse(fmt):
        if name is None:
            continue
        fields.add(name)
        if spec and ("{" in spec or "}" in spec):
            raise ValueError("nested fields in a format spec are not supported")
        for digits in re.findall(r"\d+", spec or ""):
            if len(digits) > 4 or int(digits) > MAX_NAME:
                raise ValueError(f"a width or precision of {shown(digits, 20)} is above the "
                                 f"{MAX_NAME}-character limit of a child name")
    return fields


def copy_name(fmt: str, i: int) -> str:
    """The child name of copy ``i`` (0-based). ValueError/KeyError/IndexError for a format
    check_child_names refuses (never an unbounded string)."""
    if fmt == "{index}":
        return str(i)
    _fields(fmt)
    try:
        return fmt.format(index=i, number=i + 1)
    except (TypeError, OverflowError) as exc:
        raise ValueError(str(exc)) from None


def check_child_names(fmt: str, n: int) -> None:
    """LayerError unless ``fmt`` gives n distinct valid module names (each checked)."""
    if not isinstance(fmt, str) or fmt == "{index}":
        return
    try:
        fields = _fields(fmt)
        copy_name(fmt, 0)
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise LayerError(f"child_names {shown(fmt)} is not a valid format ({shown(str(exc), 120)})",
                         _HINT, "child_names") from None
    if not fields <= {"index", "number"} or (n > 1 and not fields):
        raise LayerError(f"child_names {shown(fmt)} must contain {{index}} or {{number}} (and nothing else in braces)",
                         "e.g. child_names: \"layer{number}\"", "child_names")
    if not isinstance(n, int) or n < 1:
        return  # n's own check reports it
    # every name when the count is within the layer limit (else that limit refuses the spec)
    which = range(n) if n <= MAX_LAYERS else (0, n - 1)
    seen: dict[str, int] = {}
    for i in which:
        try:
            name = copy_name(fmt, i)
        except (ValueError, KeyError, IndexError) as exc:
            raise LayerError(f"child_names {shown(fmt)} cannot name copy {i} ({shown(str(exc), 120)})",
                             _HINT, "child_names") from None
        if len(name) > MAX_NAME:
            raise LayerError(f"child_names {shown(fmt)} makes a name of {len(name):,} characters for copy {i}; "
                             f"child names have at most {MAX_NAME} (README: Limits)", _HINT, "child_names")
        problem = name_problem(name, "nn.Module")
        if problem is not None:
            raise LayerError(f"child_names {shown(fmt)} gives {shown(name)} for copy {i}: {problem[0]}",
                             problem[1], "child_names")
        if name in seen:
            raise LayerError(f"child_names {shown(fmt)} gives the same name {shown(name)} to copies {seen[name]} "
                             f"and {i}", _HINT, "child_names")
        seen[name] = i
