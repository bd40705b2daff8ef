"""``from_module``: turn an existing ``nn.Sequential`` of supported layers into a spec."""

from ..analysis import analyze
from ..errors import CnnshapeError
from ..layers import LAYER_TYPES
from ..spec import Spec, from_data

SKIP = {"name", "trainable", "weight", "in_channels", "in_features", "num_features"}


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


def _item(child_name: str, child, i: int, prefix: str) -> dict:
    """One child module as spec data (blocks: asked of every block class in turn)."""
    from ..layers.blocks import BLOCK_TYPES

    where = f"{prefix}{child_name}"

    def items(pairs, sub: str = "", offset: int = 0) -> list:
        return _items(pairs, f"{where}.{sub}", offset)

    d = None
    for cls in BLOCK_TYPES.values():
        d = cls.from_torch(child, items)
        if d is not None:
            break
    if d is None:
        d = _leaf(where, child)
    if child_name != str(i):
        d["name"] = child_name
    return d


def _leaf(where: str, child) -> dict:
    from torch import nn

    type_name = type(child).__name__
    cls = LAYER_TYPES.get(type_name)
    from . import layer_modules

    home = layer_modules if cls is not None and cls.torch_module else nn
    if cls is None or cls.is_block or getattr(home, type_name, None) is not type(child):
        raise CnnshapeError(f"child '{where}' is a {type_name}, which cnnshape does not support; "
                            f"supported: {', '.join(LAYER_TYPES)} (and nn.Sequential)")
    d = {"type": type_name}
    collapse = isinstance(child, nn.modules.conv._ConvNd)
    for key, arg in cls.ARGS.items():
        if key in SKIP or not hasattr(child, key):
            continue
        value = getattr(child, key)
        if key == "bias":
            value = child.bias is not None
        value = _plain(value, collapse)
        if key == "stride" and value == _plain(getattr(child, "kernel_size", None), collapse) \
                and arg.default is None:
            continue
        if not arg.required and _default_equal(value, arg.default):
            continue
        d[key] = value
    params = list(child.parameters())
    if params and not any(p.requires_grad for p in params):
        d["trainable"] = False
    return d


def from_module(module, input_shape, *, batch: int = 1, name: str | None = None) -> Spec:
    """A spec for ``module`` (nn.Sequential, or a single supported layer) on ``input_shape``
    (one sample, no batch). Unsupported layers raise CnnshapeError naming them."""
    from torch import nn

    children = list(module.named_children()) if isinstance(module, nn.Sequential) else [("0", module)]
    layers = _items(children, "")
    data = {"input": list(input_shape), "layers": layers}
    if batch != 1:
        data["batch"] = batch
    if name:
        data["name"] = name
    spec = from_data(data)
    analyze(spec)
    return spec
