"""Export a spec as a readable, self-contained PyTorch module (no cnnshape imports)."""

import re

from ..analysis import analyze
from ..errors import SpecError
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
    for lr in report.layers:
        layer = lr.layer
        attr = _attr(lr.name, lr.index, lr.type, used)
        kwargs = ", ".join(f"{k}={_fmt(v)}" for k, v in layer.torch_kwargs(lr.input).items())
        init.append(f"        self.{attr} = nn.{lr.type}({kwargs})")
        if getattr(layer, "weight", None) is not None:
            fixed.append((attr, layer.weight, lr.layer.groups, len(lr.input)))
        if not layer.trainable and lr.params:
            init.append(f"        self.{attr}.requires_grad_(False)  # trainable: false")
        forward.append(f"        x = self.{attr}(x)  # {list(lr.input)} -> {list(lr.output)}")
        mapping.append((lr.name, attr))
    src = [
        f'"""{spec.name or "Network"}: exported by cnnshape from a spec; plain PyTorch, no cnnshape needed.',
        "",
        f"Input: (N, {', '.join(map(str, spec.input))})  Output: (N, {', '.join(map(str, report.output))})",
        f"Parameters: {report.totals.params:,} (trainable {report.totals.trainable_params:,})",
        '"""',
        "",
        "import torch",
        "from torch import nn",
        "",
        "",
        f"class {class_name}(nn.Module):",
        "    def __init__(self):",
        "        super().__init__()",
        *init,
    ]
    for attr, weight, _groups, _rank in fixed:
        src.append("        with torch.no_grad():  # fixed kernel values from the spec")
        src.append(f"            w = torch.tensor({weight!r}, dtype=torch.float32)")
        src.append(f"            self.{attr}.weight.copy_(w.reshape(self.{attr}.weight.shape))")
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
