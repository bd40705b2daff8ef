"""Torch modules to spec items: a leaf layer (its arguments, as torch keeps them) or a block
(asked of every block class's ``from_torch``); the checks a spec needs (shared weights, partly
frozen layers); ``instantiate`` for ``FILE.py:ATTR``. Used by the fx importer."""


from ..errors import CnnshapeError
from ..layers import LAYER_TYPES
from ..layers.blocks._base import is_plain_sequential

#: written apart from the layer's torch arguments (or not at all: a fixed weight)
SKIP = {"name", "trainable", "weight"}


def _plain(v, collapse: bool):
    """tuple -> list; convolutions store every size as a tuple (the spec may have used an
    int), so equal entries collapse back to one int; pools keep what the user passed."""
    if isinstance(v, tuple):
        v = list(v)
        if collapse and v and all(x == v[0] for x in v):
            return v[0]
    return v


def _default_equal(value, default):
    if default is None:
        return value is None
    if isinstance(value, list):  # torch kept the list the user gave: keep it too
        return False
    return value == default


def _items(children, prefix: str, offset: int = 0) -> list:
    return [_item(child_name, child, i + offset, prefix) for i, (child_name, child) in enumerate(children)]


def _item(child_name: str, child, i: int, prefix: str, keep_inputs: bool = False) -> dict:
    """One child module as spec data (blocks: asked of every block class in turn)."""
    from ..layers.blocks import BLOCK_TYPES

    where = f"{prefix}{child_name}" if child_name is not None else prefix.rstrip(".")

    def items(pairs, sub: str = "", offset: int = 0) -> list:
        return _items(pairs, f"{where}.{sub}", offset)

    d = None
    for cls in BLOCK_TYPES.values():
        d = cls.from_torch(child, items)
        if d is not None:
            break
    if d is None:
        if child_name is None:  # an inline block: its layers are registered on the enclosing module
            raise CnnshapeError(f"'{where}' holds an inline {type(child).__name__}, which cnnshape does not "
                                "recognise as a block")
        d = _leaf(where, child, keep_inputs)
    if child_name is None:
        d["inline"] = True
    elif child_name != str(i):
        d["name"] = child_name
    return d


def _layer_class(child):
    """The layer class for a torch leaf module: ``torch.nn.<Type>`` itself, or a class named
    like a layer's ``torch_module`` (layer_modules.py, or its copy in an exported file)."""
    from torch import nn

    type_name = type(child).__name__
    cls = LAYER_TYPES.get(type_name)
    if cls is not None and not cls.is_block and getattr(nn, type_name, None) is type(child):
        return cls
    for c in LAYER_TYPES.values():
        if getattr(c, "torch_module", None) == type_name:
            return c
    return None


def torch_base_class(module):
    """The layer class of the torch.nn layer that ``module``'s class extends when its own
    class is no layer type (timm's BatchNormAct2d is a BatchNorm2d, its LayerNorm2d a
    LayerNorm, its Linear a Linear); None otherwise."""
    from torch import nn

    if _layer_class(module) is not None:
        return None
    for c in type(module).__mro__[1:]:
        cls = LAYER_TYPES.get(c.__name__)
        if cls is not None and not cls.is_block and getattr(nn, c.__name__, None) is c:
            return cls
    return None


def _stores_kernel_as_stride(cls, kernel_size) -> bool:
    """True when ``cls(kernel_size)`` keeps ``stride`` equal to the kernel (MaxPool, AvgPool),
    False when it keeps None (LPPool): only then is a stride equal to the kernel a default."""
    try:
        return cls(kernel_size).stride is not None
    except (TypeError, ValueError):
        return False


def _leaf(where: str, child, keep_inputs: bool = False, cls=None) -> dict:
    """The item of a leaf module (``cls``: read it as that layer type, e.g. its torch base)."""
    from torch import nn

    cls = cls or _layer_class(child)
    if cls is None:
        raise _unsupported(where, child)
    _check_trainable(where, child)
    d = {"type": cls.type}
    collapse = isinstance(child, nn.modules.conv._ConvNd)
    for key, arg in cls.ARGS.items():
        if key in SKIP or (arg.inferred_from and not arg.required and not keep_inputs) or not hasattr(child, key):
            continue
        value = _arg_value(child, key, arg, collapse)
        if value is not _LEFT_OUT:
            d[key] = value
    for key, value in cls.values_from_torch(child).items():  # arguments kept under another name
        if key in cls.ARGS and not _default_equal(value, cls.ARGS[key].default):
            d[key] = value
        else:
            d.pop(key, None)
    params = list(child.parameters())
    if params and not any(p.requires_grad for p in params):
        d["trainable"] = False
    return d


_LEFT_OUT = object()


def _arg_value(child, key: str, arg, collapse: bool):
    """The spec value of argument ``key`` as ``child`` keeps it, or _LEFT_OUT (its default)."""
    value = child.bias is not None if key == "bias" else getattr(child, key)
    value = _plain(value, collapse)
    if key == "stride" and value == _plain(getattr(child, "kernel_size", None), collapse) \
            and arg.default is None and _stores_kernel_as_stride(type(child), child.kernel_size):
        return _LEFT_OUT  # the module turned stride=None into the kernel size: the spec leaves it out
    if not arg.required and _default_equal(value, arg.default):
        return _LEFT_OUT
    return value


def _unsupported(where: str, child) -> CnnshapeError:
    from torch import nn

    type_name = type(child).__name__
    if isinstance(child, nn.Sequential):
        return CnnshapeError(f"child '{where}' is a {type_name}, a subclass of nn.Sequential with its own "
                             "forward: what it computes is not the sequence of its children, so cnnshape "
                             "cannot describe it; use a plain nn.Sequential, or import its parts")
    return CnnshapeError(f"child '{where}' is a {type_name}, which cnnshape does not support; "
                         f"supported: {', '.join(LAYER_TYPES)} (and nn.Sequential)")


def _check_trainable(where: str, child) -> None:
    """A spec freezes whole layers only: a layer with some parameters frozen and others
    trainable cannot be represented (refused rather than reported as fully trainable)."""
    flags = {n: p.requires_grad for n, p in child.named_parameters()}
    if len(set(flags.values())) > 1:
        frozen = ", ".join(n for n, g in flags.items() if not g)
        live = ", ".join(n for n, g in flags.items() if g)
        raise CnnshapeError(f"child '{where}' ({type(child).__name__}) is partly frozen: {frozen} frozen, {live} "
                            "trainable; a spec freezes whole layers only (trainable: false), so this cannot be "
                            "imported exactly: freeze or unfreeze the whole layer first")


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


