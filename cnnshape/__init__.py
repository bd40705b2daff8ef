"""cnnshape: design convolutional networks without guessing shapes.

>>> import cnnshape
>>> spec = cnnshape.load("input: [1, 28, 28]\\nlayers: [{type: Conv2d, out_channels: 4, kernel_size: 3}]")
>>> cnnshape.analyze(spec).layers[0].output
(4, 26, 26)

``load``/``analyze``/``check`` never import torch; ``build`` and the rest of the torch
backend import it on first use.
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {
    "load": ("cnnshape.spec", "load"),
    "Spec": ("cnnshape.spec", "Spec"),
    "analyze": ("cnnshape.analysis", "analyze"),
    "check": ("cnnshape.analysis", "check"),
    "Report": ("cnnshape.analysis", "Report"),
    "LayerReport": ("cnnshape.analysis", "LayerReport"),
    "Diagnostic": ("cnnshape.errors", "Diagnostic"),
    "SpecError": ("cnnshape.errors", "SpecError"),
    "SpecFileError": ("cnnshape.errors", "SpecFileError"),
    "CnnshapeError": ("cnnshape.errors", "CnnshapeError"),
    "LAYER_TYPES": ("cnnshape.layers", "LAYER_TYPES"),
    "json_schema": ("cnnshape.schema", "json_schema"),
    "build": ("cnnshape.torch_backend.build", "build"),
    "BuildError": ("cnnshape.torch_backend.build", "BuildError"),
    "verify": ("cnnshape.torch_backend.verify", "verify"),
    "export_python": ("cnnshape.torch_backend.export", "export_python"),
    "from_module": ("cnnshape.torch_backend.importer", "from_module"),
    "train": ("cnnshape.torch_backend.train", "train"),
    "load_data": ("cnnshape.torch_backend.data", "load_data"),
    "save_checkpoint": ("cnnshape.torch_backend.checkpoint", "save_checkpoint"),
    "load_checkpoint": ("cnnshape.torch_backend.checkpoint", "load_checkpoint"),
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # the real names, for type checkers and editors (imported lazily at run time)
    from .analysis import LayerReport as LayerReport
    from .analysis import Report as Report
    from .analysis import analyze as analyze
    from .analysis import check as check
    from .errors import CnnshapeError as CnnshapeError
    from .errors import Diagnostic as Diagnostic
    from .errors import SpecError as SpecError
    from .errors import SpecFileError as SpecFileError
    from .layers import LAYER_TYPES as LAYER_TYPES
    from .schema import json_schema as json_schema
    from .spec import Spec as Spec
    from .spec import load as load
    from .torch_backend.build import BuildError as BuildError
    from .torch_backend.build import build as build
    from .torch_backend.checkpoint import load_checkpoint as load_checkpoint
    from .torch_backend.checkpoint import save_checkpoint as save_checkpoint
    from .torch_backend.data import load_data as load_data
    from .torch_backend.export import export_python as export_python
    from .torch_backend.importer import from_module as from_module
    from .torch_backend.train import train as train
    from .torch_backend.verify import verify as verify


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cnnshape' has no attribute {name!r}")


def __dir__():
    return __all__
