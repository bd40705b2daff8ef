"""The package's layering (docs/architecture.md), computed from the code itself.

Every ``import`` / ``from ... import`` of a cnnshape module anywhere in a file (module top,
inside functions, under ``TYPE_CHECKING``) is an edge of the import graph. The graph must
have no circle, and no module may import one of a higher layer than its own. Adding a
module means naming its layer in ``LAYERS`` below (the test says so).
"""

import ast
import fnmatch
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "cnnshape"

#: the layers, lowest first; a module may import modules of its own layer or of lower ones.
#: Names are module paths below ``cnnshape`` ("layers.*" = every module inside the
#: package); "" is the ``cnnshape`` package itself (its lazy public API).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("limits", "errors", "atomic", "term", "units", "yaml_io", "cpu_isa", "names")),
    ("shape math", ("formulas", "rules", "size_algebra", "size_report")),
    ("layer types", ("layers", "layers.*")),
    ("spec", ("spec", "yaml_out", "schema")),
    ("analysis", ("analysis",)),
    ("walkers", ("sizes", "memory", "gates", "draw", "diff", "render", "ci_formats", "design", "roundtrip",
                 "strategies", "pydantic", "zoo")),
    ("backends", ("torch_backend", "torch_backend.*")),
    ("interfaces", ("cli", "__main__", "commands", "commands.*", "tui", "tui.*", "")),
]


def module_files() -> dict[str, pathlib.Path]:
    """Module name below cnnshape ("" for the package) -> file."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: pathlib.Path, modules) -> set[str]:
    """The cnnshape modules ``name`` imports (names below cnnshape)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    if name == "":
        package = []
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and (node.module == "cnnshape" or node.module.startswith("cnnshape.")):
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:  # `from . import formulas` imports a module
                sub = ".".join(target + [alias.name])
                out.add(sub if sub in modules else ".".join(target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "cnnshape" or alias.name.startswith("cnnshape."):
                    out.add(".".join(alias.name.split(".")[1:]))
    return {m for m in out if m in modules and m != name}


def layer_of(name: str) -> int | None:
    for i, (_, patterns) in enumerate(LAYERS):
        if any(name == p or ("*" in p and fnmatch.fnmatchcase(name, p)) for p in patterns):
            return i
    return None


def graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            advanced = False
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_every_module_has_a_layer():
    missing = sorted(m for m in module_files() if layer_of(m) is None)
    assert not missing, (f"modules without a layer: {missing}; add each to LAYERS in tests/test_architecture.py "
                         "(and docs/architecture.md)")


def test_no_import_circle():
    found = cycles(graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_upward_import():
    upward = []
    for name, targets in graph().items():
        here = layer_of(name)
        for t in sorted(targets):
            there = layer_of(t)
            if here is not None and there is not None and there > here:
                upward.append(f"cnnshape.{name} ({LAYERS[here][0]}) imports cnnshape.{t} ({LAYERS[there][0]})")
    assert not upward, "imports from a lower layer up:\n" + "\n".join(upward)


@pytest.mark.parametrize("text, expected", [
    ("from .b import x", {"p.b"}),
    ("from . import b", {"p.b"}),
    ("from .. import top", {"top"}),
    ("def f():\n    from cnnshape.p import b", {"p.b"}),
    ("import cnnshape.top", {"top"}),
    ("from os import path", set()),
])
def test_the_graph_sees_every_kind_of_import(tmp_path, text, expected):
    """The checker itself: relative, absolute and function-local imports are edges."""
    path = tmp_path / "a.py"
    path.write_text(text)
    modules = {"p.a": path, "p.b": path, "top": path, "p": path}
    assert imports_of("p.a", path, modules) == expected


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def _walk():
    from cnnshape.analysis import Walk
    from cnnshape.spec import load

    return Walk(load("input: [3]\nlayers: [ReLU]\n"))


def _sizer():
    from cnnshape.sizes import Sizer

    return Sizer(8)


def _tracer():
    from cnnshape.memory import Tracer

    return Tracer(1, "float32", True)


def _compiler():
    from cnnshape.torch_backend.build import Compiler

    return Compiler()


def _emitter():
    from cnnshape.torch_backend.export import Emitter

    return Emitter()


@pytest.mark.parametrize("proto, make", [("WalkContext", _walk), ("SizerContext", _sizer),
                                         ("TracerContext", _tracer), ("ChildCompiler", _compiler),
                                         ("EmitterContext", _emitter)])
def test_the_hook_contexts_implement_their_protocols(proto, make):
    """Each walker hands a block's hooks an object with every member of the protocol that
    ``cnnshape.layers.hooks`` declares for it (methods callable, attributes present)."""
    from cnnshape.layers import hooks

    declared = getattr(hooks, proto)
    methods = {k for k, v in vars(declared).items() if callable(v) and (not k.startswith("_") or k == "__call__")}
    attrs = set(getattr(declared, "__annotations__", {}))
    assert methods, proto
    obj = make()
    for m in sorted(methods):
        assert callable(getattr(obj, m, None)), f"{type(obj).__name__} lacks {m}() that {proto} declares"
    for a in sorted(attrs):
        assert hasattr(obj, a), f"{type(obj).__name__} has no attribute {a} that {proto} declares"


def test_every_layer_module_is_found_without_a_registration_line():
    """``import cnnshape.layers`` imports every module of cnnshape/layers and layers/blocks
    (a new layer or block type is one file); the palette lists only modules that exist."""
    import sys

    import cnnshape.layers
    from cnnshape.layers import blocks

    for package, folder in ((cnnshape.layers, ROOT / "layers"), (blocks, ROOT / "layers" / "blocks")):
        names = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
        names |= {p.parent.name for p in folder.glob("*/__init__.py")}
        assert names, folder
        missing = sorted(n for n in names if f"{package.__name__}.{n}" not in sys.modules)
        assert not missing, f"not imported by {package.__name__}: {missing}"
        stale = [n for n in package.PALETTE if n not in names]
        assert not stale, f"{package.__name__}.PALETTE names no module: {stale}"


def test_discovery_order_is_palette_then_by_name(tmp_path, monkeypatch):
    """The palette's modules in its order, then the others by name, then ``last``;
    modules whose names start with ``_`` are helpers, not imported."""
    import sys

    from cnnshape.layers.discover import import_modules

    pkg = tmp_path / "fakelayers"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("ORDER = []\n")
    for name in ("zeta", "alpha", "mid", "blocks", "_helper"):
        (pkg / f"{name}.py").write_text(f"import fakelayers\nfakelayers.ORDER.append({name!r})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import fakelayers

    try:
        order = import_modules("fakelayers", fakelayers.__path__, first=("zeta", "gone"), last=("blocks",))
        assert order == ["zeta", "alpha", "mid", "blocks"] == fakelayers.ORDER
    finally:
        for m in [m for m in sys.modules if m == "fakelayers" or m.startswith("fakelayers.")]:
            del sys.modules[m]
