"""Writing specs as YAML: one flow mapping per layer, as people write them by hand."""

import json

from .spec import Spec


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, str):
        return v if v.replace("_", "").isalnum() and not v.replace(".", "").isdigit() else json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return repr(v)


def dump_spec(spec: Spec) -> str:
    d = spec.to_dict()
    lines = []
    for key in ("name", "description"):
        if key in d:
            lines.append(f"{key}: {_value(d[key])}")
    lines.append(f"input: {_value(d['input'])}")
    for key in ("batch", "dtype"):
        if key in d:
            lines.append(f"{key}: {_value(d[key])}")
    lines.append("layers:")
    for item in d["layers"]:
        if isinstance(item, str):
            lines.append(f"  - {item}")
        else:
            lines.append("  - {" + ", ".join(f"{k}: {_value(v)}" for k, v in item.items()) + "}")
    return "\n".join(lines) + "\n"
