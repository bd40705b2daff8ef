"""pydantic v2 types for embedding a cnnshape spec in your own configuration models.

Import this module only where you use it (``cnnshape check`` never does)::

    from pydantic import BaseModel
    import cnnshape.pydantic as cp

    class TrainConfig(BaseModel):
        model: cp.Spec          # validated by cnnshape: located errors as a ValidationError
        lr: float = 1e-3

    cfg = TrainConfig(model={"input": [1, 28, 28], "layers": ["Flatten", {"type": "Linear", "out_features": 10}]})
    cfg.model.spec              # the cnnshape.Spec; cfg.model.report: its analysis

* :data:`Spec` validates a mapping, YAML text or a path exactly as ``cnnshape check`` does
  (schema and shape errors: every located problem becomes one pydantic error whose ``loc``
  is the YAML path, e.g. ``('model', 'layers', 4, 'in_features')``, and whose context carries
  the YAML line/column and cnnshape's hint). Its JSON Schema is cnnshape's own
  (``cnnshape schema``), embedded with its ``$id`` so references resolve inside it.
* :data:`LAYER_MODELS` holds one pydantic model per layer type, generated from the layer
  classes' own argument declarations (the same declarations the schema comes from), for
  code that wants typed access to one layer's arguments.
"""

import copy
from dataclasses import dataclass
from typing import Any, Literal, Optional, Union

from pydantic import ConfigDict, Field, ValidationError, create_model
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from .analysis import Report, analyze, check
from .errors import CnnshapeError, SpecError
from .layers import LAYER_TYPES
from .schema import json_schema as _cnnshape_schema
from .spec import Spec as _Spec

__all__ = ["Spec", "ValidatedSpec", "LAYER_MODELS", "layer_model"]

SCHEMA_ID = "https://cnnshape.dev/schema/spec-v1.json"


# ----------------------------------------------------------------------------- layer models
def _annotation(arg) -> Any:
    """The pydantic annotation of one ``Arg`` declaration (by its kind)."""
    kind = arg.kind
    bounds = {k: v for k, v in (("ge", arg.ge), ("le", arg.le)) if v is not None}
    if kind == "int":
        t: Any = Annotated_int(bounds)
    elif kind == "float":
        t = Annotated_float(bounds)
    elif kind == "bool":
        t = bool
    elif kind == "str":
        t = str
    elif kind == "choice":
        t = Literal[tuple(arg.choices)]  # type: ignore[misc]
    elif kind == "axes":
        item = Annotated_int(bounds)
        if arg.null_items:
            item = Optional[item]
        options: list = [Annotated_int(bounds), list[item]]
        if arg.words:
            options.append(Literal[tuple(arg.words)])  # type: ignore[misc]
        t = Union[tuple(options)]  # type: ignore[misc]
    else:  # weights, nested layers, overrides: validated by cnnshape (see Spec)
        t = Any
    if arg.nullable:
        t = Optional[t]
    return t


def Annotated_int(bounds: dict):  # noqa: N802 - a type factory
    from typing import Annotated

    from pydantic import StrictInt

    return Annotated[StrictInt, Field(**bounds)] if bounds else StrictInt


def Annotated_float(bounds: dict):  # noqa: N802 - a type factory
    from typing import Annotated

    return Annotated[float, Field(strict=False, allow_inf_nan=False, **bounds)]


def layer_model(type_name: str):
    """The pydantic model of one layer type (extra keys forbidden, torch's defaults)."""
    cls = LAYER_TYPES[type_name]
    fields: dict[str, Any] = {"type": (Literal[type_name], type_name)}  # type: ignore[valid-type]
    for key, arg in cls.ARGS.items():
        default = ... if arg.required else arg.default
        fields[key] = (_annotation(arg), Field(default, description=arg.doc or None))
    return create_model(type_name, __config__=ConfigDict(extra="forbid", strict=True), **fields)


class _Models(dict):
    """Layer models, built on first use (generating ~100 models takes a moment)."""

    def __missing__(self, key):
        if key not in LAYER_TYPES:
            raise KeyError(key)
        model = layer_model(key)
        self[key] = model
        return model

    def __iter__(self):
        return iter(LAYER_TYPES)

    def __len__(self):
        return len(LAYER_TYPES)


LAYER_MODELS: dict = _Models()


# ----------------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class ValidatedSpec:
    """What a :data:`Spec` field holds after validation."""

    spec: _Spec
    report: Report

    def to_dict(self) -> dict:
        return self.spec.to_dict()


def _yaml_path(d) -> tuple:
    """The YAML path of a diagnostic: ('layers', i[, key]) or (top-level key,)."""
    if d.index is None:
        return (d.key,) if d.key else ()
    loc: tuple = ("layers", d.index)
    if d.key:
        loc += (d.key,)
    return loc


def _error(d, value) -> InitErrorDetails:
    where = f" (line {d.key_line or d.line}, column {d.key_column or d.column})" if d.line else ""
    text = d.message + where + (f"; hint: {d.hint}" if d.hint else "")
    ctx = {"line": d.line, "column": d.column, "hint": d.hint, "layer": d.name}
    return InitErrorDetails(type=PydanticCustomError("cnnshape", "{message}", {"message": text, **ctx}),
                            loc=_yaml_path(d), input=value)


def _validate(value: Any) -> ValidatedSpec:
    if isinstance(value, ValidatedSpec):
        return value
    try:  # exactly what `cnnshape check` reports: schema errors and shape errors together
        report = analyze(value) if isinstance(value, _Spec) else check(value)
    except SpecError as exc:
        raise ValidationError.from_exception_data("Spec", [_error(d, value) for d in exc.diagnostics]) from None
    except (TypeError, CnnshapeError) as exc:
        raise ValidationError.from_exception_data("Spec", [InitErrorDetails(
            type=PydanticCustomError("cnnshape", "{message}", {"message": str(exc)}), loc=(), input=value)]) from None
    if not report.ok:
        raise ValidationError.from_exception_data("Spec", [_error(d, value) for d in report.errors])
    return ValidatedSpec(report.spec, report)


def _absolute_refs(node):
    """cnnshape's schema with its internal references spelled against its ``$id`` (they
    resolve the same; pydantic leaves absolute references alone when it embeds a schema)."""
    if isinstance(node, dict):
        return {k: (SCHEMA_ID + v if k == "$ref" and isinstance(v, str) and v.startswith("#/") else _absolute_refs(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute_refs(x) for x in node]
    return node


def spec_json_schema() -> dict:
    """The JSON Schema a :data:`Spec` field has: ``cnnshape schema`` with absolute refs."""
    return _absolute_refs(copy.deepcopy(_cnnshape_schema()))


class _SpecType:
    """The pydantic type behind :data:`Spec`."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source, handler):
        return core_schema.no_info_plain_validator_function(
            _validate, serialization=core_schema.plain_serializer_function_ser_schema(
                lambda v: v.to_dict() if isinstance(v, ValidatedSpec) else v))

    @classmethod
    def __get_pydantic_json_schema__(cls, cs, handler):
        return spec_json_schema()


#: a network spec field: ``model: cnnshape.pydantic.Spec``
Spec = _SpecType
