"""The layer base class and the layer registry.

A layer class owns everything about its type: its arguments (declared with
:class:`~cnnshape.layers.args.Arg`, torch's names and defaults), their validation, the
shape rule (:meth:`Layer.infer`), its size rule (:meth:`Layer.size_rule`) and the keyword
arguments of the torch module it compiles to (:meth:`Layer.torch_kwargs`). Adding a layer
type means adding one class in one family file, decorated with :func:`register`.

Why not pydantic: ``cnnshape check`` must start in well under 0.25 s. Importing pydantic
and building ~40 models costs ~0.23 s on our machines before any YAML is read; these
plain declarations validate the same things (a ``type`` tag, unknown keys rejected, typed
and ranged values) and generate the JSON Schema, for ~1 ms.
"""

from typing import Any, ClassVar

from ..rules import same
from .args import Arg, Kind, _kind
from .values import ArgErrors, Inference, LayerError, Saved, Shape, _type_name, closest, shape_str

#: registry: type name -> layer class (filled by @register, in definition order)
LAYER_TYPES: dict[str, type["Layer"]] = {}


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
    #: registered without a module of its own (a block argument, see ``Block.inline``;
    #: never a leaf layer)
    inline: ClassVar[bool] = False
    #: a merge node of a Graph block (Add, Mul, Cat: several inputs)
    is_merge: ClassVar[bool] = False
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
    #: the arguments that restate the incoming shape (declared with ``inferred_from``)
    RESTATED: ClassVar[frozenset[str]] = frozenset()

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
        cls.RESTATED = frozenset(k for k, a in cls.ARGS.items() if a.inferred_from)

    def __init__(self, **values):
        errors = []
        for key in values:
            if key not in self.ARGS:
                meant = closest(key, self.ARGS)
                errors.append(LayerError(
                    f"unknown argument '{key}' for {self.type}" + (f" (did you mean '{meant}'?)" if meant else ""),
                    f"{self.type} takes: {', '.join(self.ARGS)}", key,
                    suggestion=("argument", key, meant) if meant else None))
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

    @classmethod
    def values_from_torch(cls, module) -> dict:
        """On import: arguments that ``module`` (this layer's torch module, or the library's
        class of the same name) does not keep under the argument's own name. The importer
        reads every other argument as an attribute of that name."""
        return {}

    def size_rule(self, shape: Shape, dim: int, batch: int = 1):
        """How the size along per-sample ``dim`` of an input shaped like ``shape`` (the
        declared one) maps to the output, for any size of that dim: a
        :class:`cnnshape.sizes.Rule` (see the helpers there). None: no rule (``cnnshape
        sizes`` then reports the axis as unknown, never a guess). Pointwise layers pass
        the size through."""
        if self.pointwise:
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
