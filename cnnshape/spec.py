"""The spec: a validated, immutable description of a network (documented in docs/spec.md, section 1).

``load(path | text | dict)`` is the single entry point; it returns a :class:`Spec` or
raises :class:`~cnnshape.errors.SpecError` carrying every located problem (with "did you
mean" for misspelled types and keys), or :class:`~cnnshape.errors.SpecFileError` when the
file cannot be read.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .errors import Diagnostic, SpecError
from .layers import LAYER_TYPES, ArgErrors, Layer
from .layers.base import closest, did_you_mean
from .limits import MAX_INT, MAX_LAYERS, shown
from .names import RESERVED_NAMES, name_problem  # noqa: F401  (RESERVED_NAMES: old import path)
from .units import DTYPE_BYTES
from .yaml_io import Positions, check_plain, parse, read_text

TOP_KEYS = ("name", "description", "input", "batch", "dtype", "layers")

@dataclass(frozen=True)
class Source:
    """Where a spec came from: file name, text and value positions (for diagnostics)."""

    path: str | None = None
    text: str | None = None
    positions: Positions = field(default_factory=Positions)

    def line(self, number: int) -> str | None:
        if self.text is None or number is None:
            return None
        lines = self.text.splitlines()
        return lines[number - 1] if 0 < number <= len(lines) else None


@dataclass(frozen=True)
class Spec:
    """A network: input shape (one sample, channels first), batch, dtype and layers."""

    input: tuple[int, ...]
    layers: tuple[Layer, ...]
    batch: int = 1
    dtype: str = "float32"
    name: str | None = None
    description: str | None = None
    source: Source | None = field(default=None, compare=False, repr=False)

    @property
    def names(self) -> list[str]:
        """Child names as the compiled nn.Sequential has them."""
        return [layer.name if layer.name is not None else str(i) for i, layer in enumerate(self.layers)]

    @property
    def itemsize(self) -> int:
        return DTYPE_BYTES[self.dtype]

    def to_dict(self) -> dict[str, Any]:
        """Plain data as in the YAML (only what differs from defaults at top level)."""
        out: dict[str, Any] = {}
        if self.name is not None:
            out["name"] = self.name
        if self.description is not None:
            out["description"] = self.description
        out["input"] = list(self.input)
        if self.batch != 1:
            out["batch"] = self.batch
        if self.dtype != "float32":
            out["dtype"] = self.dtype
        out["layers"] = [layer.to_item() for layer in self.layers]
        return out

    def replace(self, **changes) -> "Spec":
        return replace(self, **changes)

    # positions --------------------------------------------------------------------
    def position(self, *path) -> tuple[int | None, int | None]:
        if self.source is None:
            return (None, None)
        return self.source.positions.get(*path)


# --------------------------------------------------------------------------- loading
class SpecPath(os.PathLike):
    """A path given verbatim (a command-line argument): :func:`load` reads it as a file
    whatever it looks like (``[v2] spec.yaml``, ``#1.yaml``, ``net: v2.yaml``, ``""``)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __fspath__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"SpecPath({self.name!r})"


class YAMLText(str):
    """YAML text given explicitly (e.g. read from standard input): :func:`load` never
    takes it for a path."""


def load(obj: "str | os.PathLike[str] | dict[str, Any]", *, input: "Sequence[int] | None" = None,
         batch: int | None = None) -> Spec:
    """Load and validate a spec from a path, YAML text or a dict.

    A ``str`` naming an existing file is a path; otherwise it is YAML text when it contains
    a newline, starts with ``{``, ``[`` or ``#`` or contains ``": "``, else a (missing)
    path. :class:`SpecPath` / :class:`YAMLText` / ``pathlib.Path`` say which without
    guessing. ``input`` / ``batch`` override the file's values.
    """
    source_name = None
    if isinstance(obj, dict):
        check_plain(obj)
        data, src = obj, Source()
    else:
        if isinstance(obj, os.PathLike) or (isinstance(obj, str) and not isinstance(obj, YAMLText)
                                             and _looks_like_path(obj)):
            source_name = os.fspath(obj)
            text = read_text(obj)
        elif isinstance(obj, str):
            text = str(obj)
        else:
            raise TypeError(f"load() takes a path, YAML text or a dict, not {type(obj).__name__}")
        data, positions = parse(text, source_name)
        src = Source(source_name, text, positions)
    overrides = {}
    if input is not None:
        overrides["input"] = list(input)
    if batch is not None:
        overrides["batch"] = batch
    return from_data(data, src, overrides)


def _looks_like_path(s: str) -> bool:
    if not s.strip() or "\n" in s or "\x00" in s or len(s) > 4096:
        return False
    try:
        if os.path.isfile(s):
            return True
    except (OSError, ValueError):
        return False
    return not (s.lstrip().startswith(("{", "[", "#")) or ": " in s)


def expanded_count(layers) -> int:
    """How many layers ``layers`` instantiate once every Repeat is expanded (capped just
    above MAX_LAYERS, so the count itself stays cheap)."""
    total = 0
    for layer in layers:
        if layer.is_block:
            inner = sum(expanded_count(seq) for _, _, seq in layer.sequences())
            total += 1 + inner * layer.copy_count()
        else:
            total += 1
        if total > MAX_LAYERS:
            return MAX_LAYERS + 1
    return total


def from_data(data: Any, src: Source | None = None, overrides: dict | None = None) -> Spec:
    """Validate already-parsed data (see :func:`load`)."""
    src = src or Source()
    pos = src.positions
    diags: list[Diagnostic] = []

    def top(message, hint="", key=None):
        line, col = pos.get(key) if key else (1, 1) if src.text else (None, None)
        kl, kc = pos.exact(key) if key else (None, None)
        diags.append(Diagnostic(message, hint, line=line, column=col, key=key,
                                key_line=kl if key else None, key_column=kc if key else None))

    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        raise SpecError([Diagnostic(
            f"a spec is a mapping with input: and layers:, received {_kind(data) or kind}",
            "start from:\n  input: [1, 28, 28]\n  layers:\n    - {type: Conv2d, out_channels: 4, kernel_size: 3}",
            line=1 if src.text else None, column=1 if src.text else None)], src.path)
    data = {**data, **(overrides or {})}
    _check_top_level(data, top)
    layers, recovered, first_bad = _load_layers(data, pos, top, diags)
    shape, batch, dtype = data.get("input"), data.get("batch", 1), data.get("dtype", "float32")

    def spec(with_layers) -> Spec:
        return Spec(tuple(shape), tuple(with_layers), batch, dtype, data.get("name"), data.get("description"), src)

    if diags:
        top_ok = not any(d.index is None for d in diags)
        valid_prefix = layers[: first_bad if first_bad is not None else len(layers)]
        partial = spec(valid_prefix) if top_ok and valid_prefix else None
        rec = spec(recovered) if top_ok else None
        diags.sort(key=lambda d: (d.index is not None, d.index or 0))
        raise SpecError(diags, src.path, partial, rec)
    return spec(layers)


def _check_top_level(data: dict, top) -> None:
    """The top-level keys and values other than ``layers`` (problems go to ``top``)."""
    for key in data:
        if key not in TOP_KEYS:
            top(f"unknown top-level key '{key}'{did_you_mean(str(key), TOP_KEYS)}",
                f"a spec has: {', '.join(TOP_KEYS)}", key)
    for key in ("name", "description"):
        if data.get(key) is not None and not isinstance(data[key], str):
            top(f"{key} must be a string, received {_kind(data[key])}", f'quote it: {key}: "..."', key)
    shape = data.get("input")
    if "input" not in data:
        top("the spec has no input shape", "add input: [C, H, W] (one sample, channels first, no batch), "
            "e.g. input: [1, 28, 28]")
    elif not (isinstance(shape, list) and 1 <= len(shape) <= 4
              and all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_INT for s in shape)):
        top(f"input must be a list of 1 to 4 positive ints (at most {MAX_INT:,}: README Limits) ([F], [C, L], [C, H, W] or [C, D, H, W]), "
            f"received {shown(shape)}", "e.g. input: [1, 28, 28] (no batch dimension)", "input")
    batch = data.get("batch", 1)
    if not (isinstance(batch, int) and not isinstance(batch, bool) and 1 <= batch <= MAX_INT):
        top(f"batch must be a positive int (at most {MAX_INT:,}), received {shown(batch)}", "e.g. batch: 64", "batch")
    dtype = data.get("dtype", "float32")
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        top(f"unknown dtype {shown(dtype)}{did_you_mean(str(dtype), DTYPE_BYTES)}",
            f"use one of {', '.join(DTYPE_BYTES)}", "dtype")


def _load_layers(data: dict, pos: Positions, top, diags: list) -> tuple[list, list, int | None]:
    """(valid layers, valid layers and stand-ins up to the first layer with neither, index of
    the first broken layer or None); located problems go to ``diags``, top-level ones to ``top``."""
    raw_layers = data.get("layers")
    layers: list[Layer] = []
    recovered: list[Layer] = []
    first_bad = None
    if "layers" not in data:
        top("the spec has no layers", "add layers: with at least one layer, e.g. - {type: Linear, out_features: 10}")
        return layers, recovered, first_bad
    if not isinstance(raw_layers, list) or not raw_layers:
        top(f"layers must be a non-empty list, received {_kind(raw_layers)}",
            "write one layer per line: - {type: Conv2d, ...} or - ReLU", "layers")
        return layers, recovered, first_bad
    lost = False
    for i, item in enumerate(raw_layers):
        layer, errs = _layer_from_item(item, i, pos)
        if errs:
            diags.extend(errs)
            first_bad = i if first_bad is None else first_bad
        else:
            layers.append(layer)
        lost = lost or layer is None
        if not lost:
            recovered.append(layer)
    _check_names(raw_layers, layers, first_bad, pos, diags)
    if first_bad is None and expanded_count(layers) > MAX_LAYERS:
        top(f"the spec expands to more than {MAX_LAYERS:,} layers (Repeat n multiplies its body; "
            "README: Limits)", "use smaller Repeat counts", "layers")
    return layers, recovered, first_bad


def _kind(v) -> str:
    kinds = {dict: "a mapping", list: "a list", str: "the string ", type(None): "nothing", bool: "the boolean ",
             int: "the number ", float: "the number "}
    kind = kinds.get(type(v), "")
    return kind + shown(v) if kind.endswith(" ") or not kind else kind


def _layer_from_item(item, i: int, pos: Positions, path: tuple | None = None,
                     dotted: str | None = None) -> tuple[Layer | None, list[Diagnostic]]:
    """One layer item (recursively for blocks). ``path`` is its YAML path (default
    ``("layers", i)``), ``dotted`` its module path; diagnostics carry the top-level index.

    Returns ``(layer, [])`` for a valid item, ``(None, errors)`` for a broken one, and
    ``(stand_in, errors)`` for a broken one whose shape consequence is known (a misspelled
    type read as its suggestion, a block whose broken children all have stand-ins)."""
    path = path or ("layers", i)
    top = path[1]

    def diag(message, hint="", key=None, suggestion=None):
        own = item.get("name") if isinstance(item, dict) and isinstance(item.get("name"), str) else None
        return _located(pos, path, message, hint, index=top, key=key,
                        name=dotted if dotted is not None else (own or str(i)), suggestion=suggestion)

    parsed = _type_and_values(item, diag)
    if isinstance(parsed, Diagnostic):
        return None, [parsed]
    type_name, values = parsed
    if not isinstance(type_name, str) or type_name not in LAYER_TYPES:
        guess = closest(type_name, LAYER_TYPES) if isinstance(type_name, str) else None
        stand_in = None
        if guess:  # read it as the suggestion, so the analysis can go on past this layer
            stand_in, errs = _layer_from_item({**item, "type": guess} if isinstance(item, dict) else guess,
                                              i, pos, path, dotted)
            stand_in = None if errs else stand_in
        return stand_in, [_unknown_type(type_name, guess, isinstance(item, dict), diag)]
    cls = LAYER_TYPES[type_name]
    errors: list[Diagnostic] = []
    if cls.is_block:
        values, errors = _block_values(cls, values, pos, path, dotted if dotted is not None else
                                       (values.get("name") if isinstance(values.get("name"), str) else str(i)))
    try:
        layer = cls(**values)
    except ArgErrors as exc:
        return None, errors + [diag(e.message, e.hint, e.key, suggestion=e.suggestion) for e in exc.errors]
    return layer, errors  # with errors, the layer is a stand-in (see _layer_from_item's result)


def _type_and_values(item, diag) -> "tuple[Any, dict] | Diagnostic":
    """(type name as written, arguments) of a layer item, or the Diagnostic of an item that
    names no type."""
    where = "the layer"  # diagnostics already name the layer (index and module path)
    if isinstance(item, str):
        return item, {}
    if not isinstance(item, dict):
        return diag(f"{where} must be a type name or a mapping, received {_kind(item)}",
                    "e.g. - ReLU or - {type: Linear, out_features: 10}")
    if "type" in item:
        return item["type"], {str(k): v for k, v in item.items() if k != "type"}
    guess = ""
    if len(item) == 1:
        (k, v), = item.items()
        if k in LAYER_TYPES or did_you_mean(str(k), LAYER_TYPES):
            guess = f" (write {{type: {k}, ...}} instead of {k}: ...)"
    return diag(f"{where} has no type{guess}", "each layer is a type name (- ReLU) or a mapping with type: "
                "(- {type: Conv2d, out_channels: 8, kernel_size: 3})")


def _unknown_type(type_name, guess: str | None, keyed: bool, diag) -> Diagnostic:
    """The error of a type that is not registered (``guess``: the type it likely misspells;
    ``keyed``: written as ``type:`` of a mapping)."""
    written = type_name if isinstance(type_name, str) else _kind(type_name)
    hint = (f"use type: {guess} (`cnnshape layers` lists every type)" if guess else
            "supported types: " + ", ".join(LAYER_TYPES))
    return diag(f"unknown layer type '{written}'" + (f" (did you mean '{guess}'?)" if guess else ""),
                hint, "type" if keyed else None, suggestion=("type", type_name, guess) if guess else None)


def _block_values(cls, values: dict, pos: Positions, path: tuple, dotted: str):
    """Convert a block's nested layer lists to Layer tuples (collecting located errors)."""
    values = cls.read_values(values) if hasattr(cls, "read_values") else values  # e.g. a Graph's from:
    dotted_ok = getattr(cls, "dotted_names", False)  # child names may be dotted paths (a Graph's nodes)
    out = dict(values)
    errors: list[Diagnostic] = []

    def seq(raw, key_path: tuple, prefix: str, offset: int = 0):
        if not isinstance(raw, list):
            return raw  # the Arg validation reports the wrong type
        layers, names = [], []
        for j, sub in enumerate(raw):
            child = _item_name(sub, j + offset)
            layer, errs = _layer_from_item(sub, path[1], pos, key_path + (j,), f"{prefix}.{child}")
            errors.extend(errs)
            if layer is not None:
                layers.append(layer)
            names.append((child, key_path + (j,)))
        _check_child_names(names, prefix, path[1], pos, errors, dotted_ok)
        return layers if len(layers) == len(raw) else raw

    for key, arg in cls.ARGS.items():
        if key not in values or values[key] is None:
            continue
        if arg.kind == "layers":
            prefix, offset = cls.item_prefix(key, None, values, dotted)
            out[key] = seq(values[key], path + (key,), prefix, offset)
        elif arg.kind == "branches" and isinstance(values[key], list):
            out[key] = [seq(b, path + (key, bi), *cls.item_prefix(key, bi, values, dotted))
                        for bi, b in enumerate(values[key])]
        elif arg.kind == "overrides" and isinstance(values[key], dict):
            out[key] = _override_values(values[key], out.get("body"), lambda v, k: seq(
                v, path + (key, k), f"{dotted}.0.{k}"))
    if "shortcut_name" in cls.ARGS:
        _check_shortcut_name(values, pos, path, dotted, errors)
    return out, errors


def _item_name(sub, j: int) -> str:
    """The child name of raw item ``sub`` at position ``j`` (its ``name:``, else the index)."""
    return sub.get("name") if isinstance(sub, dict) and isinstance(sub.get("name"), str) else str(j)


def _override_values(overrides: dict, body, seq) -> dict:
    """A Repeat's ``first:`` with the layer lists of its one repeated block loaded
    (``seq(raw, key)``)."""
    single = body[0] if isinstance(body, list) and len(body) == 1 and isinstance(body[0], Layer) else None
    conv = {}
    for k, v in overrides.items():
        if single is not None and single.is_block and single.ARGS.get(k) is not None \
                and single.ARGS[k].kind == "layers" and isinstance(v, list):
            conv[k] = seq(v, k)
        else:
            conv[k] = v
    return conv


def _check_shortcut_name(values: dict, pos: Positions, path: tuple, dotted: str, errors: list) -> None:
    """The shortcut's child name against the children registered on the block module itself
    (body and after items), pointing at ``shortcut_name``."""
    short = values.get("shortcut_name", "shortcut" if values.get("shortcut") else None)
    if not isinstance(short, str):
        return
    body = values.get("body") if isinstance(values.get("body"), list) else None
    direct = [_item_name(s, j) for j, s in enumerate(body or [])]
    if isinstance(values.get("after"), list):
        direct += [_item_name(s, j + len(body or [])) for j, s in enumerate(values["after"])]
    names = [(c, path + ("body", j)) for j, c in enumerate(direct)] + [(short, path)]
    before = len(errors)
    _check_child_names(names, dotted, path[1], pos, errors)
    for d in errors[before:]:  # point at shortcut_name, say what it is
        if d.name == f"{dotted}.{short}":
            kl, kc = pos.exact(*path, "shortcut_name")
            errors[errors.index(d)] = replace(d, message="shortcut_name: " + d.message.replace(
                "layer name", "the shortcut's child name"), key="shortcut_name", key_line=kl, key_column=kc)


def _located(pos: Positions, path: tuple, message: str, hint: str = "", *, index: int | None = None,
             name: str | None = None, key: str | None = None, suggestion=None) -> Diagnostic:
    """A diagnostic located at the item at YAML ``path`` and, when given, at its ``key``."""
    line, col = pos.get(*path)
    kl, kc = pos.exact(*path, key) if key else (None, None)
    return Diagnostic(message, hint, index=index, name=name, line=line, column=col, key=key,
                      key_line=kl, key_column=kc, suggestion=suggestion)


def _name_problem(name: str, container: str) -> tuple[str, str] | None:
    """(message, hint) when ``name`` cannot name a child of a torch ``container``, else None."""
    return name_problem(name, container)


def _check_child_names(names, prefix, top, pos, errors, dotted: bool = False) -> None:
    """Names inside a block: valid module names (``dotted``: each part of a dotted path),
    unique within the block."""
    seen = set()
    for child, p in names:
        parts = child.split(".") if dotted and child else [child]
        problem = next((x for x in (_name_problem(part, "nn.Module") for part in parts) if x), None)
        if problem is None and child in seen:
            problem = (f"duplicate layer name {shown(child)} in {shown(prefix)[1:-1]}",
                       "names must be unique within a block (defaults are the positions)")
        if problem:
            errors.append(_located(pos, p, *problem, index=top, name=f"{prefix}.{child}", key="name"))
        seen.add(child)


def _check_names(raw_layers, layers, first_bad, pos, diags) -> None:
    """Top-level names: valid module names, unique (defaults are the indices)."""
    seen: dict[str, int] = {}
    for i, item in enumerate(raw_layers):
        explicit = item.get("name") if isinstance(item, dict) else None
        name = explicit if isinstance(explicit, str) else str(i)
        problem = _name_problem(explicit, "nn.Sequential") if isinstance(explicit, str) else None
        if problem:
            diags.append(_located(pos, ("layers", i), *problem, index=i, name=explicit, key="name"))
        if name in seen:
            j = seen[name]
            diags.append(_located(
                pos, ("layers", i), f"duplicate layer name {shown(name)}: layer {j} "
                f"{'is named' if str(j) != name else 'has the default name'} {shown(name)} too",
                "layer names must be unique (defaults are the layer indices)", index=i, name=name, key="name"))
        seen.setdefault(name, i)
