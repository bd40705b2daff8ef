"""Layer types of the spec format, one module per torch.nn family.

``LAYER_TYPES`` maps each type name to its class, in palette order. Every module of this
package (and of ``blocks``) is imported here, so a new layer type is one module with
``@register`` classes: no line to add. ``PALETTE`` places known modules; one not named
there comes after them (by name), before the blocks.
"""

from .base import LAYER_TYPES, Arg, ArgErrors, Inference, Layer, LayerError, Note
from .discover import import_modules

#: the palette order of the family modules (LAYER_TYPES follows the import order)
PALETTE = ("conv", "pool", "norm", "resample", "padding", "dropout", "activation", "reshape", "linear", "timm_layers",
           "same_padding", "split_attention", "mixed_conv", "blur_pool", "global_context",
           "merge")
import_modules(__name__, __path__, first=PALETTE, last=("blocks",))

__all__ = ["LAYER_TYPES", "Arg", "ArgErrors", "Inference", "Layer", "LayerError", "Note"]
