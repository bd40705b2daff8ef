"""Layer types of the spec format, one module per torch.nn family.

``LAYER_TYPES`` maps each type name to its class, in palette order.
"""

from . import conv, pool, norm, resample, padding, dropout, activation, reshape, linear, timm_layers, same_padding  # noqa: F401  (registers)
from . import split_attention, mixed_conv, blur_pool, merge, blocks  # noqa: F401  (registers)
from .base import LAYER_TYPES, Arg, ArgErrors, Inference, Layer, LayerError, Note

__all__ = ["LAYER_TYPES", "Arg", "ArgErrors", "Inference", "Layer", "LayerError", "Note"]
