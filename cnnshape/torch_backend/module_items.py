"""A torch module tree as spec items: each child module as a layer dict (blocks asked of
every block class in turn). Used by the importer (:mod:`.importer`) and the torch.fx
importer (:mod:`.fx_import`) alike."""

from ..errors import CnnshapeError
from ..layers import LAYER_TYPES
from ..layers.blocks._base import is_plain_sequential  # noqa: F401  (importer's old name)

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


def _stores_kernel_as_stride(cls, kernel_size) -> bool:
    """True when ``cls(kernel_size)`` keeps ``stride`` equal to the kernel (MaxPool, AvgPool),
    False when it keeps None (LPPool): only then is a stride equal to the kernel a default."""
    try:
        return cls(kernel_size).stride is not None
    except (TypeError, ValueError):
        return False


def _leaf(where: str, child, keep_inputs: bool = False) -> dict:
    from torch import nn

    type_name = type(child).__name__
    cls = _layer_class(child)
    if cls is None:
        if isinstance(child, nn.Sequential):
            raise CnnshapeError(f"child '{where}' is a {type_name}, a subclass of nn.Sequential with its own "
                                "forward: what it computes is not the sequence of its children, so cnnshape "
                                "cannot describe it; use a plain nn.Sequential, or import its parts")
        raise CnnshapeError(f"child '{where}' is a {type_name}, which cnnshape does not support; "
                            f"supported: {', '.join(LAYER_TYPES)} (and nn.Sequential)")
    _check_trainable(where, child)
    d = {"type": cls.type}
    collapse = isinstance(child, nn.modules.conv._ConvNd)
    for key, arg in cls.ARGS.items():
        if key in SKIP or (arg.inferred_from and not arg.required and not keep_inputs) or not hasattr(child, key):
            continue
        value = getattr(child, key)
        if key == "bias":
            value = child.bias is not None
        value = _plain(value, collapse)
        if key == "stride" and value == _plain(getattr(child, "kernel_size", None), collapse) \
                and arg.default is None and _stores_kernel_as_stride(type(child), child.kernel_size):
            continue  # the module turned stride=None into the kernel size: the spec leaves it out
        if not arg.required and _default_equal(value, arg.default):
            continue
        d[key] = value
    params = list(child.parameters())
    if params and not any(p.requires_grad for p in params):
        d["trainable"] = False
    return d


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
