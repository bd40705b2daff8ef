"""The layer vocabulary in one import (kept for the many modules that import it from here).

The definitions live in three modules, one responsibility each:

- :mod:`cnnshape.layers.values`: errors, warnings and value types (``LayerError``,
  ``Note``, ``Inference``, ``Saved``, ``KEEP``/``MIX``, shape text);
- :mod:`cnnshape.layers.args`: declarative arguments (``Arg``) and their kinds;
- :mod:`cnnshape.layers.layer`: the ``Layer`` base class and the registry
  (``LAYER_TYPES``, ``register``).
"""

from .args import (
    KINDS, REQUIRED, AxesKind, Arg, BoolKind, ChoiceKind, FloatKind, FloatsKind, IntKind, IntsKind, Kind, NamesKind,
    StrKind, WeightKind, _weight_shape, check_magnitude,
)
from .layer import LAYER_TYPES, BranchesKind, Layer, LayersKind, OverridesKind, register
from .values import (
    AXIS_NAMES, INPUT_LAYOUT, KEEP, MIX, ArgErrors, Inference, LayerError, Note, RFRule, Saved, Shape, Window,
    _is_int, _type_name, closest, did_you_mean, ntuple, shape_str,
)

__all__ = [
    "AXIS_NAMES", "INPUT_LAYOUT", "KEEP", "KINDS", "LAYER_TYPES", "MIX", "REQUIRED", "Arg", "ArgErrors", "AxesKind",
    "BoolKind", "BranchesKind", "ChoiceKind", "FloatKind", "FloatsKind", "Inference", "IntKind", "IntsKind", "Kind",
    "Layer", "LayerError", "LayersKind", "NamesKind", "Note", "OverridesKind", "RFRule", "Saved", "Shape", "StrKind",
    "WeightKind", "Window", "_is_int", "_type_name", "_weight_shape", "check_magnitude", "closest", "did_you_mean",
    "ntuple",
    "register", "shape_str",
]
