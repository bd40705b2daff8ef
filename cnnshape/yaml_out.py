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


def _is_layer_list(v) -> bool:
    return isinstance(v, (list, tuple)) and bool(v) and all(
        isinstance(x, str) or (isinstance(x, dict) and "type" in x) for x in v) and any(
        isinstance(x, dict) for x in v)


def item_lines(item, indent: str = "  ") -> list[str]:
    """One layer list item: a bare type name, a flow mapping for a plain layer, and block
    style for a block (its nested layer lists one layer per line, as people write them)."""
    if not isinstance(item, dict):
        return [f"{indent}- {yaml_value(item)}"]
    if not any(_is_layer_list(v) for v in item.values()):
        return [f"{indent}- " + yaml_value(item)]
    lines, first = [], True
    for k, v in item.items():
        head = f"{indent}- " if first else f"{indent}  "
        first = False
        if _is_layer_list(v):
            lines.append(f"{head}{k}:")
            for sub in v:
                lines.extend(item_lines(sub, indent + "    "))
        elif isinstance(v, (list, tuple)) and v and all(_is_layer_list(b) for b in v):  # branches
            lines.append(f"{head}{k}:")
            lines.extend(f"{indent}    - {yaml_value(b)}" for b in v)
        else:
            lines.append(f"{head}{k}: {yaml_value(v)}")
    return lines


def dump_spec(spec: Spec) -> str:
    """A Spec as YAML text."""
    return dump_data(spec.to_dict())


def _plain(v):
    """Layer objects (in blocks' arguments) as their YAML items, recursively."""
    if hasattr(v, "to_item"):
        return _plain(v.to_item())
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def dump_data(d: dict) -> str:
    """Spec data (a dict in the YAML format, valid or not) as YAML text."""
    d = _plain(d)
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
        lines.extend(item_lines(item))
    return "\n".join(lines) + "\n"
