"""``from_module`` and ``import_spec``: a spec from any torch.fx-traceable model (fx_import.py);
the module-to-item conversion lives in torch_items.py (re-exported here)."""

from ..analysis import analyze
from ..errors import CnnshapeError
from ..spec import Spec, from_data
from .torch_items import (  # noqa: F401  (re-exported: the names callers used before the split)
    SKIP,
    _check_shared,
    _check_trainable,
    _item,
    _items,
    _layer_class,
    _leaf,
    _top_children,
    instantiate,
    is_plain_sequential,
)


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
    from .fx_import import MAX_MODULE_DEPTH, module_depth

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
