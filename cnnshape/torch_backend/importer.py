"""``from_module``: turn an existing ``nn.Sequential`` of supported layers into a spec."""

from ..analysis import analyze
from ..errors import CnnshapeError
from ..limits import MAX_DEPTH
from ..layers.blocks._base import is_plain_sequential
from ..spec import Spec, from_data
from .module_items import (  # noqa: F401  (the conversion helpers' old home)
    SKIP, _check_trainable, _default_equal, _item, _items, _layer_class, _leaf, _plain, _stores_kernel_as_stride,
)

#: deepest nesting of child modules an imported model may have (a spec nests at most MAX_DEPTH)
MAX_MODULE_DEPTH = MAX_DEPTH // 2 - 1


def _check_shared(module) -> None:
    """Refuse weight sharing (a module with parameters or buffers used at two places);
    a stateless module (ReLU) used twice is imported as two layers, which is exact."""
    seen: dict = {}
    for path, m in module.named_modules(remove_duplicate=False):
        if id(m) in seen and m is not module and seen[id(m)] != path:
            has_state = any(True for _ in m.parameters()) or any(True for _ in m.buffers())
            if has_state:
                raise CnnshapeError(f"'{path or type(module).__name__}' is the same {type(m).__name__} as "
                                    f"'{seen[id(m)]}' (shared weights): a spec gives every layer its own "
                                    "parameters, so weight sharing cannot be expressed; give each place its own "
                                    "module")
        seen.setdefault(id(m), path)


def _top_children(module) -> list:
    """(name, module) pairs of the sequence ``module`` computes."""

    if is_plain_sequential(module):
        return list(module._modules.items())
    forward = getattr(type(module), "forward", None)
    names = getattr(forward, "__globals__", {}).get("SEQUENTIAL_NAMES")
    if isinstance(names, dict) and set(names.values()) == set(module._modules):  # a cnnshape-exported Net
        return [(seq_name, getattr(module, attr)) for seq_name, attr in names.items()]
    return [("0", module)]


def module_depth(model) -> int:
    """Deepest nesting of child modules (iterative: no recursion limit)."""
    deepest, stack, seen = 0, [(model, 0)], set()
    while stack:
        m, d = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        deepest = max(deepest, d)
        if deepest > MAX_MODULE_DEPTH:
            break
        stack.extend((c, d + 1) for c in m._modules.values() if c is not None)
    return deepest


def instantiate(obj, what: str, raw: bool = False):
    """The module named by ``FILE.py:ATTR``: an instance as is; a class or factory called
    with no arguments (a clear CnnshapeError when a class needs some, or the call raises)."""
    import inspect

    if hasattr(obj, "named_children") and not isinstance(obj, type):
        return obj
    if not callable(obj):
        raise CnnshapeError(f"{what} is a {type(obj).__name__}, not a torch module, class or factory")
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        sig = None
    if sig is not None and isinstance(obj, type):
        need = [p.name for p in sig.parameters.values() if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if need:
            raise CnnshapeError(f"{what} is a class that needs arguments ({', '.join(need)}); cnnshape calls it "
                                "with none: add a module-level instance, e.g. net = Net(...), and import that")
    if raw:  # the caller reports what the user's code raises
        return obj()
    try:
        return obj()
    except Exception as exc:  # noqa: BLE001 - the user's code raised: report it, no traceback
        raise CnnshapeError(f"{what}() raised {type(exc).__name__}: {exc}") from None


def import_spec(module, input, *, batch: int = 1, name: str | None = None, sites: dict | None = None,
                source=None) -> Spec:
    """The spec of ``module`` on ``input`` (one sample, no batch) through torch.fx, not yet
    analysed: layers keep their declared input sizes (in_channels, in_features,
    num_features) so that the analysis reports a module built for another shape.
    ``sites`` ({id(module): Site}) and ``source`` (a :class:`cnnshape.spec.Source` of the
    user's file) locate the layers at the lines that construct them. Raises
    :class:`~cnnshape.torch_backend.fx_import.ImportRefused` (a CnnshapeError) for what a
    spec cannot say."""
    from ..spec import Source
    from ..yaml_io import Positions
    from .fx_import import import_graph

    from .fx_import import ImportRefused

    if not hasattr(module, "named_modules"):
        raise CnnshapeError(f"expected a torch.nn.Module, received {type(module).__name__}")
    if module_depth(module) > MAX_MODULE_DEPTH:
        site = (sites or {}).get(id(module))
        raise ImportRefused(f"{type(module).__name__} nests modules more than {MAX_MODULE_DEPTH} levels deep; a spec "
                            f"holds at most {MAX_MODULE_DEPTH} (README: Limits)", "flatten the nesting", site)
    _check_shared(module)
    layers, table = import_graph(module, input, sites)
    data = {"input": list(input), "layers": layers}
    if batch != 1:
        data["batch"] = batch
    if name:
        data["name"] = name
    src = None
    if source is not None:
        src = Source(source.path, source.text, Positions(table))
    return from_data(data, src)


def from_module(module, input=None, *, batch: int = 1, name: str | None = None, input_shape=None) -> Spec:
    """A spec for ``module`` (any torch.fx-traceable model: nn.Sequential, a cnnshape-exported
    Net, an nn.Module whose forward calls its layers, torchvision's classifiers) on
    ``input`` (one sample's shape, no batch). What a spec cannot express raises
    CnnshapeError naming the module and the line (see the README's import section); a
    model whose layers do not fit ``input`` raises SpecError with the analysis's
    diagnostics. ``input_shape=`` is the old name of ``input`` (deprecated)."""
    if input_shape is not None:
        import warnings

        warnings.warn("from_module(input_shape=...) is deprecated: use input=...", DeprecationWarning, stacklevel=2)
        input = input_shape if input is None else input
    if input is None:
        raise TypeError("from_module() needs input=, one sample's shape, e.g. input=(3, 224, 224)")
    spec = import_spec(module, input, batch=batch, name=name)
    return finished(spec)


def finished(spec: Spec) -> Spec:
    """``spec`` analysed, without the declared input sizes (they equal the inferred ones);
    SpecError with the analysis's diagnostics when a layer does not fit."""
    from ..errors import SpecError
    from .fx_import import strip_inputs

    report = analyze(spec)
    if not report.ok:
        raise SpecError(list(report.errors), spec.source.path if spec.source else None)
    return from_data(strip_inputs(spec.to_dict()))
