"""Declarative layer arguments: :class:`Arg` and the argument kinds that validate them.

A :class:`Kind` owns one kind of value: its validation (with the message the user reads),
its JSON Schema and its words in the docs. The block kinds (``layers``, ``branches``,
``overrides``) hold layers and live beside :class:`~cnnshape.layers.layer.Layer`.
"""

import math
from typing import Any, ClassVar

from ..limits import MAX_INT, MAX_WEIGHT, shown
from .values import AXIS_NAMES, _is_int, _type_name, did_you_mean

REQUIRED = object()

#: what an argument with ``inferred_from`` restates of the incoming per-sample shape
RESTATES = {
    "channels": "the channels (the first axis)",
    "features": "the size of the last axis",
    "trailing": "the trailing axes (as many as the value lists)",
}


class Kind:
    """One kind of argument value: how it is validated, its JSON Schema and its words in
    the docs. Subclasses register one instance each under their ``name`` (see :class:`Arg`)."""

    name: ClassVar[str] = ""
    #: whether the JSON Schema carries the argument's default
    schema_default: ClassVar[bool] = True

    def validate(self, arg: "Arg", v: Any, rank: int | None) -> Any:
        """The (possibly normalised) value; ValueError with a message when it does not fit."""
        return v

    def schema(self, arg: "Arg", rank: int | None) -> dict:
        raise NotImplementedError

    def describe(self, arg: "Arg", rank: int | None) -> str:
        """What the argument accepts, in words (docs/spec.md)."""
        return self.name

    def to_plain(self, v: Any) -> Any:
        """The value as written in YAML (layers back to their items)."""
        return v


KINDS: dict[str, Kind] = {}


def _kind(cls: type[Kind]) -> type[Kind]:
    KINDS[cls.name] = cls()
    return cls


def _bounded(word: str, arg: "Arg") -> str:
    lo = f" ≥ {arg.ge}" if arg.ge is not None else ""
    hi = f" ≤ {arg.le}" if arg.le is not None else ""
    return word + lo + ("," if lo and hi else "") + hi


def _is_number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float))


@_kind
class IntKind(Kind):
    name = "int"

    def validate(self, arg, v, rank):
        if not _is_int(v):
            raise ValueError(f"expected an int, received {_type_name(v)} {shown(v)}")
        arg.check_bounds(v, arg.name)
        return v

    def schema(self, arg, rank):
        return arg.number_schema("integer")

    def describe(self, arg, rank):
        return _bounded("int", arg)


@_kind
class FloatKind(Kind):
    name = "float"

    def validate(self, arg, v, rank):
        if not _is_number(v):
            raise ValueError(f"expected a number, received {_type_name(v)} {shown(v)}")
        arg.check_bounds(v, arg.name)
        return float(v)

    def schema(self, arg, rank):
        return arg.number_schema("number")

    def describe(self, arg, rank):
        return _bounded("number", arg)


@_kind
class BoolKind(Kind):
    name = "bool"

    def validate(self, arg, v, rank):
        if not isinstance(v, bool):
            raise ValueError(f"expected true or false, received {_type_name(v)} {shown(v)}")
        return v

    def schema(self, arg, rank):
        return {"type": "boolean"}

    def describe(self, arg, rank):
        return "true / false"


@_kind
class StrKind(Kind):
    name = "str"

    def validate(self, arg, v, rank):
        if not isinstance(v, str):
            raise ValueError(f"expected a string, received {_type_name(v)} {shown(v)}")
        return v

    def schema(self, arg, rank):
        return {"type": "string"}

    def describe(self, arg, rank):
        return "string"


@_kind
class ChoiceKind(Kind):
    name = "choice"

    def validate(self, arg, v, rank):
        if v not in arg.choices:
            hint = did_you_mean(v, arg.choices) if isinstance(v, str) else ""
            raise ValueError(f"expected one of {', '.join(map(str, arg.choices))}, received {shown(v)}{hint}")
        return v

    def schema(self, arg, rank):
        return {"enum": list(arg.choices)}

    def describe(self, arg, rank):
        return " / ".join(f"`{c}`" for c in arg.choices)


@_kind
class AxesKind(Kind):
    """An int, or a list with one int per spatial axis (``words``: strings such as ``same``;
    ``null_items``: null entries allowed)."""

    name = "axes"

    def validate(self, arg, v, rank):
        if isinstance(v, str):
            if v in arg.words:
                return v
            extra = f", or one of {', '.join(arg.words)}" if arg.words else ""
            raise ValueError(f"expected an int or a list of ints{extra}, received a string '{v}'"
                             + (did_you_mean(v, arg.words) if arg.words else ""))
        if isinstance(v, list):
            if rank is not None and len(v) != rank:
                axes = ", ".join(AXIS_NAMES[rank])
                raise ValueError(f"expected an int or a list of {rank} ints ({axes}), "
                                 f"received {len(v)} values {shown(v)}")
            for item in v:
                if item is None and arg.null_items:
                    continue
                if not _is_int(item):
                    raise ValueError(f"expected a list of ints, received {_type_name(item)} {shown(item)} "
                                     f"in {shown(v)}")
                arg.check_bounds(item, f"each {arg.name} value")
            return list(v)
        if not _is_int(v):
            raise ValueError(f"expected an int or a list of ints, received {_type_name(v)} {shown(v)}")
        arg.check_bounds(v, arg.name)
        return v

    def schema(self, arg, rank):
        item = arg.number_schema("integer")
        if arg.null_items:
            item = {"anyOf": [item, {"type": "null"}]}
        arr = {"type": "array", "items": item}
        if rank:
            arr["minItems"] = arr["maxItems"] = rank
        return {"anyOf": [arg.number_schema("integer"), arr] + ([{"enum": list(arg.words)}] if arg.words else [])}

    def describe(self, arg, rank):
        per_axis = "[int]" if rank == 1 else f"a list of {rank} ints" if rank else "a list, one per spatial axis"
        text = _bounded("int", arg) + f", or {per_axis}" + (" (null entries keep the size)" if arg.null_items else "")
        return text + (", or " + " / ".join(f"`{w}`" for w in arg.words) if arg.words else "")


@_kind
class IntsKind(Kind):
    """An int or a list of ints of any length (the layer checks the length)."""

    name = "ints"
    item = "an int"
    schema_type = "integer"

    def ok(self, x) -> bool:
        return _is_int(x)

    def convert(self, x):
        return x

    def validate(self, arg, v, rank):
        if isinstance(v, list):
            for item in v:
                if not self.ok(item):
                    raise ValueError(f"expected {self.item} or a list, received {_type_name(item)} {item!r} in {v}")
                arg.check_bounds(item, f"each {arg.name} value")
            return [self.convert(x) for x in v]
        if not self.ok(v):
            raise ValueError(f"expected {self.item} or a list, received {_type_name(v)} {v!r}")
        arg.check_bounds(v, arg.name)
        return self.convert(v)

    def schema(self, arg, rank):
        item = arg.number_schema(self.schema_type)
        return {"anyOf": [item, {"type": "array", "items": item}]}

    def describe(self, arg, rank):
        word = "int" if self.schema_type == "integer" else "number"
        return _bounded(word, arg) + f", or a list of {word}s"


@_kind
class FloatsKind(IntsKind):
    """A number or a list of numbers."""

    name = "floats"
    item = "a number"
    schema_type = "number"

    def ok(self, x) -> bool:
        return _is_number(x)

    def convert(self, x):
        return float(x)


@_kind
class WeightKind(Kind):
    """Nested lists of numbers (a convolution's fixed kernel)."""

    name = "weight"
    schema_default = False

    def validate(self, arg, v, rank):
        _weight_shape(v)
        return v

    def schema(self, arg, rank):
        return {"type": "array", "items": {"anyOf": [{"type": "number"}, {"type": "array"}]}}

    def describe(self, arg, rank):
        return "nested lists of numbers"


@_kind
class NamesKind(Kind):
    name = "names"

    def validate(self, arg, v, rank):
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
            raise ValueError(f"expected a list of names, received {_type_name(v)} {v!r}")
        return tuple(v)

    def schema(self, arg, rank):
        return {"type": "array", "items": {"type": "string"}}

    def describe(self, arg, rank):
        return "list of names"


class Arg:
    """Declaration of one layer argument: kind, default, bounds and documentation.

    ``kind`` names a :class:`Kind` in :data:`KINDS`, which owns the validation, the JSON
    Schema and the words in the docs: ``int``, ``float``, ``bool``, ``str``, ``choice``
    (one of ``choices``), ``axes`` (an int or one int per spatial axis; ``words`` allows
    strings such as ``same``; ``null_items`` null entries), ``ints`` / ``floats`` (a value
    or a list of any length), ``weight`` (nested lists of numbers), and the block kinds
    ``layers``, ``branches``, ``names``, ``overrides``. ``ge``/``le`` bound numbers.

    ``inferred_from`` marks an argument that restates the incoming shape (one of
    :data:`RESTATES`): optional ones are inferred when omitted (and left out on import),
    and a declared value that disagrees is an error whose consequence is known, so the
    analysis goes on with the value corrected. This declaration is the one list of such
    arguments (analysis, importer and the torch oracle of the tests read it).
    """

    __slots__ = ("kind", "default", "doc", "ge", "le", "choices", "nullable", "words",
                 "null_items", "name", "kind_of", "inferred_from")

    def __init__(self, kind: str, default: Any = REQUIRED, doc: str = "", *, ge=None, le=None,
                 choices: tuple = (), nullable: bool = False, words: tuple = (),
                 null_items: bool = False, inferred_from: str | None = None):
        if kind not in KINDS:
            raise ValueError(f"unknown argument kind {kind!r}; kinds: {', '.join(KINDS)}")
        if inferred_from is not None and inferred_from not in RESTATES:
            raise ValueError(f"unknown inferred_from {inferred_from!r}; one of {', '.join(RESTATES)}")
        self.kind, self.default, self.doc = kind, default, doc
        self.ge, self.le, self.choices, self.nullable = ge, le, choices, nullable
        self.words, self.null_items = words, null_items
        self.inferred_from = inferred_from
        self.name = ""
        self.kind_of: Kind = KINDS[kind]

    def inferred_value(self, shape) -> Any:
        """The value this argument takes for an incoming per-sample ``shape`` when omitted
        (None: not inferred, e.g. a required argument restating several axes)."""
        if self.inferred_from == "channels":
            return shape[0] if shape else None
        if self.inferred_from == "features":
            return shape[-1] if shape else None
        return None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check_bounds(self, v, what: str) -> None:
        """The magnitude limits every number obeys, then ``ge``/``le`` (ValueError)."""
        check_magnitude(v, what)
        if self.ge is not None and v < self.ge:
            raise ValueError(f"expected {what} ≥ {self.ge}, received {v}")
        if self.le is not None and v > self.le:
            raise ValueError(f"expected {what} ≤ {self.le}, received {v}")

    def number_schema(self, json_type: str) -> dict:
        """``{"type": json_type}`` with this argument's bounds."""
        s: dict[str, Any] = {"type": json_type}
        if self.ge is not None:
            s["minimum"] = self.ge
        if self.le is not None:
            s["maximum"] = self.le
        return s

    def validate(self, v: Any, rank: int | None) -> Any:
        """Return the (possibly normalised) value or raise ValueError with a message."""
        if v is None:
            if self.nullable:
                return None
            raise ValueError(f"{self.name} cannot be null")
        return self.kind_of.validate(self, v, rank)

    def json_schema(self, rank: int | None) -> dict:
        s = self.kind_of.schema(self, rank)
        if self.nullable:
            s = {"anyOf": [s, {"type": "null"}]}
        if self.doc:
            s["description"] = self.doc
        if not self.required and self.default is not None and self.kind_of.schema_default:
            s["default"] = self.default
        return s

    def describe(self, rank: int | None) -> str:
        """What the argument accepts, in words (the docs' argument tables)."""
        text = self.kind_of.describe(self, rank)
        return text + (", or null" if self.nullable and self.kind != "weight" else "")


def check_magnitude(v, what: str) -> None:
    """The limits every number of a spec obeys (README: Limits): finite floats, integers
    of at most ``MAX_INT`` in magnitude. (One hook for every numeric argument kind.)"""
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"expected {what} to be a finite number, received {v}")
    if isinstance(v, int) and abs(v) > MAX_INT:
        raise ValueError(f"expected {what} of at most {MAX_INT:,} (README: Limits), received {shown(v)}")


def _weight_shape(value) -> tuple[int, ...]:
    """Shape of a rectangular nested list of finite numbers (at most ``MAX_WEIGHT``);
    ValueError otherwise. One pass, level by level (no recursion)."""
    shape: list[int] = []
    level, path = [value], ""
    while True:
        if all(isinstance(x, list) for x in level):
            sizes = {len(x) for x in level}
            if 0 in sizes:
                raise ValueError(f"empty list in weight{path}")
            if len(sizes) != 1:
                raise ValueError(f"weight{path} is not rectangular: its rows have different lengths")
            shape.append(sizes.pop())
            count = len(level) * shape[-1]
            if count > MAX_WEIGHT:
                raise ValueError(f"a fixed weight has at most {MAX_WEIGHT:,} numbers (README: Limits)")
            level = [y for x in level for y in x]
            path += "[…]"
            continue
        for x in level:
            if isinstance(x, list):
                raise ValueError(f"weight{path} is not rectangular: it mixes numbers and lists")
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise ValueError(f"weight{path} must hold numbers, received {shown(x)}")
            check_magnitude(x, "each weight")
        return tuple(shape)
