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


class Emitter:
    """Writes constructor expressions of analysed rows; blocks call back ``expr``,
    ``sequential``, ``odict``, ``list`` and ``call``. ``needs`` collects the names the
    exported file must define or import (container and layer-module classes, OrderedDict)."""

    def __init__(self):
        self.needs: set = set()

    @staticmethod
    def pad(depth: int) -> str:
        return "    " * depth

    def expr(self, row, depth: int) -> str:
        layer = row.layer
        if layer.is_block:  # a nested sequence's row too (layers.blocks.NESTED)
            if layer.inline:
                self.needs.add("Inline")
                return f"Inline({layer.export_expr(row, self, depth)})"
            return layer.export_expr(row, self, depth)
        kwargs = ", ".join(f"{k}={_fmt(v)}" for k, v in layer.torch_kwargs(row.input).items())
        name = layer.torch_module
        if name:
            self.needs.add(name)
            return f"{name}({kwargs})"
        return f"nn.{layer.type}({kwargs})"

    def sequential(self, rows, depth: int) -> str:
        self.needs.add("OrderedDict")
        pad = self.pad(depth + 1)
        items = "".join(f"{pad}({r.name!r}, {self.expr(r, depth + 1)}),  # -> {list(r.output)}\n" for r in rows)
        inline = any(r.layer.inline for r in rows)
        if inline:
            self.needs.add("Sequence")
        return f"{'Sequence' if inline else 'nn.Sequential'}(OrderedDict([\n{items}{self.pad(depth)}]))"

    def odict(self, rows, depth: int) -> str:
        self.needs.add("OrderedDict")
        if not rows:
            return "OrderedDict()"
        pad = self.pad(depth + 1)
        items = "".join(f"{pad}({r.name!r}, {self.expr(r, depth + 1)}),\n" for r in rows)
        return f"OrderedDict([\n{items}{self.pad(depth)}])"

    def list(self, exprs, depth: int) -> str:
        pad = self.pad(depth + 1)
        return "[\n" + "".join(f"{pad}{e},\n" for e in exprs) + f"{self.pad(depth)}]"

    def call(self, name: str, args, depth: int) -> str:
        pad = self.pad(depth + 1)
        return f"{name}(\n" + "".join(f"{pad}{a},\n" for a in args) + f"{self.pad(depth)})"


def _block_sources(needs: set) -> list[str]:
    """Source of every container / layer-module class the exported code uses."""
    import inspect

    from . import layer_modules, modules

    out = []
    containers = {n for n in needs if getattr(getattr(modules, n, None), "__module__", None) == modules.__name__}
    if containers:  # every container runs its steps through these helpers
        needs = needs | {"Inline"}
        out += [inspect.getsource(modules.Inline), "", "",
                inspect.getsource(modules._adopt), "", "", inspect.getsource(modules._run), "", ""]
    classes = [n for n in sorted(needs - {"OrderedDict", "Inline"})
               if getattr(modules, n, None) is not None or getattr(layer_modules, n, None) is not None]
    helpers = _layer_module_helpers(layer_modules, [n for n in classes if getattr(modules, n, None) is None])
    for text in helpers:
        out += text.splitlines() + ["", ""]
    for name in classes:
        cls = getattr(modules, name, None) or getattr(layer_modules, name, None)
        out += inspect.getsource(cls).splitlines() + ["", ""]
    return out


def _layer_module_helpers(layer_modules, names: list[str]) -> list[str]:
    """Source of the module-level helpers (functions, constants, other classes) of
    layer_modules.py that the classes ``names`` use, directly or through each other, in file
    order: an exported file copies a class's source, so it needs those too (StdConv2d's
    ``_get_padding``, GammaAct's ``_GAMMA_ACTS``, MixedConv2d's ``Conv2dSame``)."""
    import ast
    import inspect

    source = inspect.getsource(layer_modules)
    tree = ast.parse(source)
    defs: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    defs[t.id] = node
    wanted: set[str] = set()
    todo = [defs[n] for n in names if n in defs]
    while todo:
        for sub in ast.walk(todo.pop()):
            ref = sub.id if isinstance(sub, ast.Name) else None
            if ref in defs and ref not in wanted and ref not in names:
                wanted.add(ref)
                todo.append(defs[ref])
    return [ast.get_source_segment(source, node) for node in tree.body
            if any(n in wanted for n in _names_of(node))]


def _names_of(node) -> list[str]:
    import ast

    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    return []


def _target(sub: str, attr: str) -> str:
    return f"self.{sub}" if sub == attr else f"self.get_submodule({sub!r})"


def _frozen_lines(row, sub: str, attr: str) -> list[str]:
    """``requires_grad_(False)`` lines of a row written ``trainable: false``: a layer with
    parameters none of which train, a block whose own parameters (e.g. layer_scale) are
    frozen while its children's train as declared."""
    layer = row.layer
    if not layer.is_block:
        if row.params and not row.trainable_params:
            return [f"        {_target(sub, attr)}.requires_grad_(False)  # trainable: false"]
        return []
    own = row.params - sum(c.params for c in row.children)
    if not own or row.trainable_params != sum(c.trainable_params for c in row.children):
        return []
    return [f"        {_target(sub, attr)}.{name}.requires_grad_(False)  # trainable: false"
            for name, _ in layer.own_parameters()]


class _Body:
    """``__init__`` and ``forward`` lines of the exported class, the map from the compiled
    Sequential's child names to its attributes, and the fixed kernels to copy in."""

    def __init__(self, report, em: "Emitter"):
        self.init: list[str] = []
        self.forward: list[str] = []
        self.mapping: list[tuple[str, str]] = []
        self.fixed: list[tuple[str, object]] = []
        # a top-level inline block registers its layers on the Net itself: one step list
        self.top_inline = any(lr.layer.inline for lr in report.layers)
        if self.top_inline:
            em.needs.update({"Inline", "OrderedDict"})
            self.init.append("        self._steps = _adopt(self, OrderedDict([")
        used: set = set()
        for lr in report.layers:
            self._top_row(lr, em, used)
        if self.top_inline:
            self.init.append("        ]))")
            self.forward.append("        x = _run(self, self._steps, x)")

    def _top_row(self, lr, em: "Emitter", used: set) -> None:
        attr = lr.name if self.top_inline else _attr(lr.name, lr.index, lr.type, used)
        if self.top_inline:
            self.init.append(f"            ({attr!r}, {em.expr(lr, 3)}),  # {list(lr.input)} -> {list(lr.output)}")
        else:
            self.init.append(f"        self.{attr} = {em.expr(lr, 2)}")
        for row in lr.walk():
            sub = row.path if self.top_inline else attr + row.path[len(lr.path):]
            if not row.layer.is_block and getattr(row.layer, "weight", None) is not None:
                self.fixed.append((sub, row.layer.weight))
            self.init += _frozen_lines(row, sub, attr)
        if not self.top_inline:
            self.forward.append(f"        x = self.{attr}(x)  # {list(lr.input)} -> {list(lr.output)}")
        self.mapping.append((lr.name, attr))


def _fixed_lines(fixed) -> list[str]:
    out = []
    for sub, weight in fixed:
        target = f"self.{sub}" if "." not in sub else f"self.get_submodule({sub!r})"
        out.append("        with torch.no_grad():  # fixed kernel values from the spec")
        out.append(f"            w = torch.tensor({weight!r}, dtype=torch.float32)")
        out.append(f"            {target}.weight.copy_(w.reshape({target}.weight.shape))")
    return out


def _header(spec, report, needs: set) -> list[str]:
    return [
        f'"""{spec.name or "Network"}: exported by cnnshape from a spec; plain PyTorch, no cnnshape needed.',
        "",
        f"Input: (N, {', '.join(map(str, spec.input))})  Output: (N, {', '.join(map(str, report.output))})",
        f"Parameters: {report.totals.params:,} (trainable {report.totals.trainable_params:,})",
        '"""',
        "",
        *(["from collections import OrderedDict", ""] if "OrderedDict" in needs else []),
        "import torch",
        "from torch import nn",
        "",
        "",
        *_block_sources(needs),
    ]


def _footer(spec, class_name: str, mapping) -> list[str]:
    return [
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


def export_python(spec, class_name: str = "Net") -> str:
    """Python source of ``class Net(nn.Module)`` with ``__init__``/``forward`` and a shape
    comment per line. State-dict keys use the layers' attribute names; ``load_sequential_state``
    in the file maps the keys of the compiled ``nn.Sequential``."""
    if not isinstance(spec, Spec):
        spec = load(spec)
    report = analyze(spec)
    if not report.ok:
        raise BuildError(list(report.errors))
    em = Emitter()
    body = _Body(report, em)
    src = [
        *_header(spec, report, em.needs),
        f"class {class_name}(nn.Module):",
        "    def __init__(self):",
        "        super().__init__()",
        *body.init,
        *_fixed_lines(body.fixed),
        "",
        "    def forward(self, x):",
        *body.forward,
        "        return x",
        "",
        "",
        *_footer(spec, class_name, body.mapping),
    ]
    return "\n".join(src)
