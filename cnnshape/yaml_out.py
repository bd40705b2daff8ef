"""Writing specs as YAML: one flow mapping per layer, as people write them by hand."""

import json

from .spec import Spec


def yaml_value(v) -> str:
    """One value in YAML flow style (``[3, 5]``, ``same``, ``\"yes\"``, ``null``)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, str):
        plain = (v.replace("_", "").isalnum() and not v[0].isdigit()
                 and v.lower() not in {"true", "false", "null", "yes", "no", "on", "off", "y", "n"})
        return v if plain else json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(yaml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{yaml_value(str(k))}: {yaml_value(x)}" for k, x in v.items()) + "}"
    return repr(v)


def dump_spec(spec: Spec) -> str:
    """A Spec as YAML text."""
    return dump_data(spec.to_dict())


def dump_data(d: dict) -> str:
    """Spec data (a dict in the YAML format, valid or not) as YAML text."""
    lines = []
    for key in ("name", "description"):
        if key in d:
            lines.append(f"{key}: {yaml_value(d[key])}")
    if "input" in d:
        lines.append(f"input: {yaml_value(d['input'])}")
    for key in ("batch", "dtype"):
        if key in d:
            lines.append(f"{key}: {yaml_value(d[key])}")
    lines.append("layers:")
    for item in d["layers"]:
        if isinstance(item, str):
            lines.append(f"  - {item}")
        else:
            lines.append("  - {" + ", ".join(f"{k}: {yaml_value(v)}" for k, v in item.items()) + "}")
    return "\n".join(lines) + "\n"
