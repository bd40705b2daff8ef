"""The layer base class, declarative arguments and the layer registry.

A layer class owns everything about its type: its arguments (declared with :class:`Arg`,
torch's names and defaults), their validation, the shape rule (:meth:`Layer.infer`), and
the keyword arguments of the torch module it compiles to (:meth:`Layer.torch_kwargs`).
Adding a layer type means adding one class in one family file, decorated with
:func:`register`.

Why not pydantic: ``cnnshape check`` must start in well under 0.25 s. Importing pydantic
and building ~40 models costs ~0.23 s on our machines before any YAML is read; these
plain declarations validate the same things (a ``type`` tag, unknown keys rejected, typed
and ranged values) and generate the JSON Schema, for ~1 ms.
"""

import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Union

from ..limits import MAX_INT, MAX_WEIGHT, shown

Shape = tuple[int, ...]

#: registry: type name -> layer class (filled by @register, in definition order)
LAYER_TYPES: dict[str, type["Layer"]] = {}

AXIS_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
INPUT_LAYOUT = {1: "[C, L]", 2: "[C, H, W]", 3: "[C, D, H, W]"}
REQUIRED = object()
COMMON_KEYS = ("type", "name", "trainable")


class LayerError(Exception):
    """A fatal problem of one layer: what is wrong, and how to fix it.

    ``key`` names the offending argument (its YAML position is reported) or is None for
    the layer as a whole.
    """

    def __init__(self, message: str, hint: str = "", key: str | None = None, fix: dict | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.key = key
        #: machine-applicable form of the hint: argument changes ({key: value}, None
        #: removes the key) that make this layer fit; used by the TUI's "apply fix"
        self.fix = fix


class ArgErrors(Exception):
    """All problems found while validating one layer mapping (a list of LayerError)."""

    def __init__(self, errors: list[LayerError]):
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Note:
    """A non-fatal warning on one layer."""

    message: str
    hint: str = ""
    key: str | None = None
    fix: dict | None = None


#: receptive-field rule of a layer: KEEP (pointwise), MIX (positions mixed: RF undefined
#: from here on), a tuple of (kernel_eff, stride, pad_left) per spatial axis, or a callable
#: mapping the incoming per-axis RF tuple to the outgoing one (None: undefined), for
#: layers that are not sliding windows (upsampling, pixel shuffle).
KEEP = "keep"
MIX = "mix"
Window = tuple[int, int, int]
RFRule = Union[str, tuple[Window, ...], Callable]


@dataclass(frozen=True, slots=True)
class Inference:
    """What a layer does to an incoming shape (all per sample, batch excluded)."""

    output: Shape
    params: int = 0
    macs: int = 0
    rf: RFRule = KEEP
    notes: tuple[Note, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Saved:
    """One tensor a layer's autograd node keeps for the backward pass (parameters excluded).

    ``what``: ``"input"`` / ``"output"`` (the layer's input or output storage: shared with
    the layers around it, counted once) or ``"new"`` (a storage of its own: pooling
    indices, dropout masks, normalisation statistics, a padded copy). ``numel`` counts the
    batch; ``dtype`` None = the spec's dtype. ``when``: kept only when that gradient is
    needed: ``"any"`` (the input's or the parameters'), ``"input"`` (e.g. F.pad keeps its
    input for the input's gradient) or ``"params"`` (Linear's mm keeps its input for the
    weight's gradient).
    """

    what: str
    numel: int = 0
    dtype: str | None = None
    when: str = "any"


def shape_str(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def ntuple(value, rank: int) -> tuple:
    """Expand an int-or-list argument to one value per spatial axis."""
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,) * rank


def did_you_mean(word: str, options) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    options = list(options)
    lower = {o.lower(): o for o in options}
    if word.lower() in lower:
        return f" (did you mean '{lower[word.lower()]}'?)"
    import difflib  # only on a problem: keeps `check` start-up light

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        close = [o for o in options if o.startswith(word) or word.startswith(o)][:1]
    return f" (did you mean '{close[0]}'?)" if close else ""


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _type_name(v) -> str:
    return {bool: "a boolean", int: "an int", float: "a float", str: "a string", list: "a list",
            dict: "a mapping", type(None): "null"}.get(type(v), type(v).__name__)


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
class LayersKind(Kind):
    """A list of layers (already built by the loader: a block's body)."""

    name = "layers"
    schema_default = False

    def validate(self, arg, v, rank):
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, Layer) for x in v):
            raise ValueError(f"expected a list of layers, received {_type_name(v)}")
        if not v and not arg.nullable:
            raise ValueError(f"{arg.name} needs at least one layer")
        return tuple(v)

    def schema(self, arg, rank):
        return {"type": "array", "items": {"$ref": "#/$defs/layer"}}

    def describe(self, arg, rank):
        return "list of layers"

    def to_plain(self, v):
        return [x.to_item() for x in v]


@_kind
class BranchesKind(Kind):
    """A list of layer lists (a Concat's branches; ``[]`` passes its input through)."""

    name = "branches"
    schema_default = False

    def validate(self, arg, v, rank):
        if not isinstance(v, (list, tuple)) or not all(
                isinstance(b, (list, tuple)) and all(isinstance(x, Layer) for x in b) for b in v):
            raise ValueError("expected a list of branches, each a list of layers ([] passes its input through)")
        return tuple(tuple(b) for b in v)

    def schema(self, arg, rank):
        return {"type": "array", "minItems": 2, "items": {"type": "array", "items": {"$ref": "#/$defs/layer"}}}

    def describe(self, arg, rank):
        return "list of layer lists"

    def to_plain(self, v):
        return [[x.to_item() for x in b] for b in v]


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


@_kind
class OverridesKind(Kind):
    """``{child path: {argument: value}}`` (a Repeat's changes to its first copy)."""

    name = "overrides"

    def validate(self, arg, v, rank):
        if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
            raise ValueError(f"expected a mapping {{child path: {{argument: value}}}}, received {_type_name(v)}")
        return dict(v)

    def schema(self, arg, rank):
        return {"type": "object"}

    def describe(self, arg, rank):
        return "mapping {child: {argument: value}}"

    def to_plain(self, v):
        """Layer lists inside the overrides (e.g. a first copy's new shortcut) as YAML items."""
        def plain(x):
            if isinstance(x, Layer):
                return x.to_item()
            if isinstance(x, (list, tuple)):
                return [plain(y) for y in x]
            if isinstance(x, dict):
                return {k: plain(y) for k, y in x.items()}
            return x

        return {p: plain(ov) for p, ov in v.items()}


class Arg:
    """Declaration of one layer argument: kind, default, bounds and documentation.

    ``kind`` names a :class:`Kind` in :data:`KINDS`, which owns the validation, the JSON
    Schema and the words in the docs: ``int``, ``float``, ``bool``, ``str``, ``choice``
    (one of ``choices``), ``axes`` (an int or one int per spatial axis; ``words`` allows
    strings such as ``same``; ``null_items`` null entries), ``ints`` / ``floats`` (a value
    or a list of any length), ``weight`` (nested lists of numbers), and the block kinds
    ``layers``, ``branches``, ``names``, ``overrides``. ``ge``/``le`` bound numbers.
    """

    __slots__ = ("kind", "default", "doc", "ge", "le", "choices", "nullable", "words",
                 "null_items", "name", "kind_of")

    def __init__(self, kind: str, default: Any = REQUIRED, doc: str = "", *, ge=None, le=None,
                 choices: tuple = (), nullable: bool = False, words: tuple = (),
                 null_items: bool = False):
        if kind not in KINDS:
            raise ValueError(f"unknown argument kind {kind!r}; kinds: {', '.join(KINDS)}")
        self.kind, self.default, self.doc = kind, default, doc
        self.ge, self.le, self.choices, self.nullable = ge, le, choices, nullable
        self.words, self.null_items = words, null_items
        self.name = ""
        self.kind_of: Kind = KINDS[kind]

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

    _bounds = check_bounds  # the former name

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


class Layer:
    """Base of all layer specs: the common extras ``name`` and ``trainable``.

    Instances are immutable; use :meth:`replace` to derive an edited copy.
    """

    #: spatial rank (1, 2, 3) of the layer type, None for rank-agnostic layers
    rank: ClassVar[int | None] = None
    #: the torch.nn family, for grouping in palettes and docs
    family: ClassVar[str] = ""
    #: type name (set by @register)
    type: ClassVar[str] = ""
    #: output spatial size is fixed by the layer, whatever the input (adaptive pooling)
    fixes_size: ClassVar[bool] = False
    #: the layer merges axes into one (Flatten)
    flattens: ClassVar[bool] = False
    #: the layer contains layers (see cnnshape.layers.blocks)
    is_block: ClassVar[bool] = False
    #: every output dim has the size of the same input dim, at any size (activations,
    #: dropout): the default :meth:`size_rule` passes sizes through
    pointwise: ClassVar[bool] = False
    #: the layer reshapes its input (torch's reshape: a strided input is copied, and the
    #: copy is what :meth:`saved`'s "input" keeps)
    needs_contiguous: ClassVar[bool] = False
    #: name of a class in cnnshape/torch_backend/layer_modules.py when torch.nn lacks the
    #: module (build/export use it instead of ``torch.nn.<type>``)
    torch_module: ClassVar[str | None] = None
    #: declared arguments, in torch's order (collected from the class and its bases)
    ARGS: ClassVar[dict[str, Arg]] = {}

    name = Arg("str", None, "Child module name (default: its index, as nn.Sequential names it).", nullable=True)
    trainable = Arg("bool", True, "false freezes the layer's parameters.")

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        args: dict[str, Arg] = {}
        for base in reversed(cls.__mro__):
            for key, value in vars(base).items():
                if isinstance(value, Arg):
                    value.name = key
                    args[key] = value
        # torch arguments first (definition order), the extras last
        cls.ARGS = {k: v for k, v in args.items() if k not in ("name", "trainable")}
        cls.ARGS.update({"name": args["name"], "trainable": args["trainable"]})

    def __init__(self, **values):
        errors = []
        for key in values:
            if key not in self.ARGS:
                errors.append(LayerError(
                    f"unknown argument '{key}' for {self.type}{did_you_mean(key, self.ARGS)}",
                    f"{self.type} takes: {', '.join(self.ARGS)}", key))
        clean = {}
        for key, spec in self.ARGS.items():
            if key in values:
                try:
                    clean[key] = spec.validate(values[key], self.rank)
                except ValueError as exc:
                    errors.append(LayerError(f"{self.type}.{key}: {exc}", self._arg_hint(key), key))
            elif spec.required:
                errors.append(LayerError(f"{self.type} is missing the required argument '{key}'",
                                         f"add {key}: <value>", None))
        if not errors:
            try:
                self.check_args(clean)
            except LayerError as exc:
                errors.append(exc)
        if errors:
            raise ArgErrors(errors)
        object.__setattr__(self, "_set", tuple(clean))
        for key, spec in self.ARGS.items():
            object.__setattr__(self, key, clean.get(key, spec.default))

    def _arg_hint(self, key: str) -> str:
        spec = self.ARGS[key]
        if spec.doc:
            return f"{key}: {spec.doc}"
        return ""

    def check_args(self, values: dict) -> None:
        """Cross-argument checks that need no input shape (raise LayerError)."""

    # --- immutable value semantics -------------------------------------------------
    def __setattr__(self, key, value):
        raise AttributeError(f"{type(self).__name__} is immutable; use .replace({key}=...)")

    def __eq__(self, other):
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash((self.type, repr(self.to_dict())))

    def __repr__(self):
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._set)
        return f"{self.type}({inner})"

    @property
    def fields_set(self) -> tuple[str, ...]:
        """Argument names the user wrote."""
        return self._set

    def args(self) -> dict[str, Any]:
        """The torch arguments the user wrote (excluding the extras)."""
        return {k: getattr(self, k) for k in self._set if k not in ("name", "trainable")}

    def to_dict(self) -> dict[str, Any]:
        """``{"type": ..., **written arguments}``: what the YAML holds."""
        return {"type": self.type, **{k: getattr(self, k) for k in self._set}}

    def to_item(self) -> Any:
        """The list item as written in YAML: the bare type name when no argument is set."""
        d = self.to_dict()
        return d["type"] if len(d) == 1 else d

    def replace(self, **changes) -> "Layer":
        """A validated copy with ``changes`` applied (``None`` removes an argument)."""
        values = {k: getattr(self, k) for k in self._set}
        for k, v in changes.items():
            if v is None and not self.ARGS.get(k, Arg("int")).nullable:
                values.pop(k, None)
            else:
                values[k] = v
        return type(self)(**values)

    @classmethod
    def json_schema(cls) -> dict:
        summary = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())  # first paragraph
        props = {"type": {"const": cls.type, "description": summary}}
        for key, spec in cls.ARGS.items():
            props[key] = spec.json_schema(cls.rank)
        required = ["type"] + [k for k, s in cls.ARGS.items() if s.required]
        return {"type": "object", "title": cls.type, "properties": props, "required": required,
                "additionalProperties": False}

    # --- the shape rule -----------------------------------------------------------
    def infer(self, shape: Shape, batch: int) -> Inference:  # pragma: no cover - abstract
        """Output shape, params, MACs and RF rule for ``shape``; raise LayerError."""
        raise NotImplementedError

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """How the size along per-sample ``dim`` of an input shaped like ``shape`` (the
        declared one) maps to the output, for any size of that dim: a
        :class:`cnnshape.sizes.Rule` (see the helpers there). None: no rule (``cnnshape
        sizes`` then reports the axis as unknown, never a guess). Pointwise layers pass
        the size through."""
        if self.pointwise:
            from ..sizes import same

            return same(dim)
        return None

    def returns_tuple(self) -> bool:
        """True when the torch module returns a tuple (e.g. ``return_indices``)."""
        return False

    # --- memory (cnnshape.memory) --------------------------------------------------
    def saved(self, shape: Shape, out: Shape, batch: int) -> tuple[Saved, ...]:
        """What autograd keeps for this layer's backward when a gradient flows through it
        (its input requires grad or it has trainable parameters), measured on torch 2.13
        (CPU); parameters and buffers excluded. ``shape``/``out`` exclude the batch."""
        return ()

    def aliases_input(self, training: bool = True) -> bool:
        """True when the output shares the input's storage (a view or an in-place op)."""
        return False

    def contiguous_output(self, contiguous_input: bool) -> bool:
        """Whether the output is contiguous (new tensors are; elementwise ops keep the
        input's strides; Permute makes a strided view)."""
        return True

    def workspace(self, shape: Shape, out: Shape, batch: int, itemsize: int, kept: bool,
                  input_grad: bool, isa: str = "avx2") -> tuple[int, int]:
        """Bytes of the temporaries torch allocates and frees inside this layer's forward
        and backward on the CPU (peak estimates only); ``kept``: autograd keeps
        :meth:`saved` this time; ``input_grad``: the backward computes the input's gradient;
        ``isa``: the CPU kind (:mod:`cnnshape.cpu_isa`)."""
        return 0, 0

    def explain(self, shape: Shape) -> list[str]:
        """Human formulas with numbers plugged in (for the details view)."""
        return []

    # --- compile --------------------------------------------------------------------
    def torch_kwargs(self, shape: Shape) -> dict[str, Any]:
        """Constructor arguments of ``torch.nn.<type>`` for incoming ``shape``."""
        return {k: tuple(v) if isinstance(v, list) else v for k, v in self.args().items()}

    def expect_rank(self, shape: Shape, ranks: tuple[int, ...], layout: str, hint: str = "") -> None:
        """Raise a located error unless ``len(shape)`` is one of ``ranks``."""
        if len(shape) in ranks:
            return
        fix = None
        if not hint:
            if len(shape) == 1:
                hint = "this layer needs a feature map: move Flatten/Linear after it, or use a 1-d/2-d/3-d input"
            else:
                rank = len(shape) - 1
                family = self.type[:-2] if self.type[-2:] in ("1d", "2d", "3d") else None
                if family and rank in (1, 2, 3) and f"{family}{rank}d" in LAYER_TYPES:
                    hint = f"the incoming map is {rank}-d: use {family}{rank}d"
                    fix = {"type": f"{family}{rank}d"}
                else:
                    hint = "check the layers before this one"
        raise LayerError(
            f"{self.type} expects input {layout} ({ranks[-1]} dims per sample), "
            f"received {shape_str(shape)} ({len(shape)} dims)",
            hint,
            fix=fix,
        )


def register(cls):
    """Class decorator: add a concrete layer type (named like its class) to the registry."""
    cls.type = cls.__name__
    LAYER_TYPES[cls.__name__] = cls
    return cls
