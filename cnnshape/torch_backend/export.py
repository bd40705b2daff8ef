"""Export a spec as a readable, self-contained PyTorch module (no cnnshape imports)."""

import re

from ..analysis import analyze
from ..spec import Spec, load
from .build import BuildError


def _attr(name: str, index: int, type_name: str, used: set) -> str:
    base = name if re.match(r"^[A-Za-z_]\w*$", name) and not name.isdigit() else f"{type_name.lower()}{index}"
    attr, n = base, 1
    while attr in used or attr in {"forward", "training"}:
        n += 1
        attr = f"{base}_{n}"
    used.add(attr)
    return attr


def _fmt(v):
    if isinstance(v, tuple):
        return "(" + ", ".join(map(repr, v)) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


def _expr(row, depth: int, needs: set) -> str:
    """Constructor expression of one analysed row (nested blocks as nested expressions)."""
    layer = row.layer
    pad = "    " * (depth + 1)
    end = "    " * depth

    def odict(rows):
        if not rows:
            return "OrderedDict()"
        items = "".join(f"{pad}    ({r.name!r}, {_expr(r, depth + 2, needs)}),\n" for r in rows)
        return f"OrderedDict([\n{items}{pad}])"

    if layer is None or layer.type in ("Sequential", "Repeat"):
        needs.add("OrderedDict")
        items = "".join(f"{pad}({r.name!r}, {_expr(r, depth + 1, needs)}),  # -> {list(r.output)}\n"
                        for r in row.children)
        return f"nn.Sequential(OrderedDict([\n{items}{end}]))"
    if layer.type == "Residual":
        needs.update({"OrderedDict", "Residual"})
        body, short, after = layer.split_rows(row.children)
        shortcut = "None" if short is None else _expr(short, depth + 1, needs)
        return (f"Residual(\n{pad}{odict(body)},\n{pad}shortcut={shortcut},\n"
                f"{pad}shortcut_name={layer.shortcut_name!r},\n{pad}after={odict(after)},\n{end})")
    if layer.type == "Concat":
        needs.add("Concat")
        items = "".join(f"{pad}{_expr(r, depth + 1, needs)},\n" for r in row.children)
        return f"Concat([\n{items}{end}])"
    kwargs = ", ".join(f"{k}={_fmt(v)}" for k, v in layer.torch_kwargs(row.input).items())
    if layer.torch_module:  # a class from layer_modules, copied into the file
        needs.add(layer.torch_module)
        return f"{layer.torch_module}({kwargs})"
    return f"nn.{layer.type}({kwargs})"


def _block_sources(needs: set) -> list[str]:
    import inspect

    from . import modules

    out = []
    from . import layer_modules

    for name in ("Residual", "Concat"):
        if name in needs:
            out += inspect.getsource(getattr(modules, name)).splitlines() + ["", ""]
    for name in sorted(needs):
        if isinstance(getattr(layer_modules, name, None), type):
            out += inspect.getsource(getattr(layer_modules, name)).splitlines() + ["", ""]
    return out


def export_python(spec, class_name: str = "Net") -> str:
    """Python source of ``class Net(nn.Module)`` with ``__init__``/``forward`` and a shape
    comment per line. State-dict keys use the layers' attribute names; ``load_sequential_state``
    in the file maps the keys of the compiled ``nn.Sequential``."""
    if not isinstance(spec, Spec):
        spec = load(spec)
    report = analyze(spec)
    if not report.ok:
        raise BuildError(list(report.errors))
    used: set = set()
    init, forward, mapping, fixed = [], [], [], []
    needs: set = set()
    for lr in report.layers:
        attr = _attr(lr.name, lr.index, lr.type, used)
        init.append(f"        self.{attr} = {_expr(lr, 2, needs)}")
        for row in lr.walk():
            sub = attr + row.path[len(lr.path):]
            if row.layer is not None and not row.layer.is_block and getattr(row.layer, "weight", None) is not None:
                fixed.append((sub, row.layer.weight))
            if row.layer is not None and not row.layer.is_block and row.params and not row.trainable_params:
                target = f"self.{sub}" if sub == attr else f"self.get_submodule({sub!r})"
                init.append(f"        {target}.requires_grad_(False)  # trainable: false")
        forward.append(f"        x = self.{attr}(x)  # {list(lr.input)} -> {list(lr.output)}")
        mapping.append((lr.name, attr))
    src = [
        f'"""{spec.name or "Network"}: exported by cnnshape from a spec; plain PyTorch, no cnnshape needed.',
        "",
        f"Input: (N, {', '.join(map(str, spec.input))})  Output: (N, {', '.join(map(str, report.output))})",
        f"Parameters: {report.totals.params:,} (trainable {report.totals.trainable_params:,})",
        '"""',
        "",
        *(["from collections import OrderedDict", ""] if needs else []),
        "import torch",
        "from torch import nn",
        "",
        "",
        *_block_sources(needs),
        f"class {class_name}(nn.Module):",
        "    def __init__(self):",
        "        super().__init__()",
        *init,
    ]
    for sub, weight in fixed:
        target = f"self.{sub}" if "." not in sub else f"self.get_submodule({sub!r})"
        src.append("        with torch.no_grad():  # fixed kernel values from the spec")
        src.append(f"            w = torch.tensor({weight!r}, dtype=torch.float32)")
        src.append(f"            {target}.weight.copy_(w.reshape({target}.weight.shape))")
    src += [
        "",
        "    def forward(self, x):",
        *forward,
        "        return x",
        "",
        "",
        f"SEQUENTIAL_NAMES = {dict(mapping)!r}",
        "",
        "",
        "def load_sequential_state(model, state_dict):",
        '    """Load a state_dict saved from the cnnshape-compiled nn.Sequential of the same spec."""',
        "    renamed = {}",
        "    for key, value in state_dict.items():",
        "        child, _, rest = key.partition('.')",
        "        renamed[SEQUENTIAL_NAMES.get(child, child) + '.' + rest] = value",
        "    return model.load_state_dict(renamed)",
        "",
        "",
        'if __name__ == "__main__":',
        f"    model = {class_name}()",
        f"    x = torch.zeros({max(spec.batch, 1)}, {', '.join(map(str, spec.input))})",
        "    print(model(x).shape)",
        "",
    ]
    return "\n".join(src)
