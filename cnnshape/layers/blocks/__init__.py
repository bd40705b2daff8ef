"""Blocks: layers that contain layers (nested sequences, repeats, residuals, branches).

One module per block type; each class (a :class:`Block`) owns its structure (child
sequences, their names in the compiled module, i.e. the ``state_dict`` prefixes), its
merge rule, its torch module, export expression, import recognition and studio tree.
The generic walk over child sequences lives in :mod:`cnnshape.analysis` (``Walk``),
which a block calls back through ``walk.seq`` / ``walk.nested``. Adding a block type is
one module here (imported below, in palette order) plus its container torch module in
:mod:`cnnshape.torch_backend.modules`.
"""

from ..base import LAYER_TYPES
from ._base import Block, child_names, union_rf
from .sequential import Sequential
from .repeat import Repeat, apply_overrides
from .residual import Residual
from .concat import Concat
from .squeeze import SqueezeExcitation
from .dense import DenseBlock
from .graph import Graph

BLOCK_TYPES = {k: v for k, v in LAYER_TYPES.items() if v.is_block}

__all__ = ["BLOCK_TYPES", "Block", "Concat", "DenseBlock", "Graph", "SqueezeExcitation", "Repeat", "Residual", "Sequential", "apply_overrides",
           "child_names", "union_rf"]
