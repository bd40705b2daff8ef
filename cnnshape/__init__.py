"""cnnshape: design convolutional networks without guessing shapes.

>>> import cnnshape
>>> spec = cnnshape.load("input: [1, 28, 28]\\nlayers: [{type: Conv2d, out_channels: 4, kernel_size: 3}]")
>>> cnnshape.analyze(spec).layers[0].output
(4, 26, 26)

``load``/``analyze``/``check`` never import torch; ``build`` and the rest of the torch
backend import it on first use.
"""

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


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cnnshape' has no attribute {name!r}")


def __dir__():
    return __all__
