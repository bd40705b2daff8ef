"""Blocks: layers that contain layers (nested sequences, repeats, residuals, branches).

One module per block type; each class (a :class:`Block`) owns its structure (child
sequences, their names in the compiled module, i.e. the ``state_dict`` prefixes), its
merge rule, its torch module, export expression, import recognition and studio tree.
The generic walk over child sequences lives in :mod:`cnnshape.analysis` (``Walk``),
which a block calls back through ``walk.seq`` / ``walk.nested``. Adding a block type is
one module here (imported by discovery: ``PALETTE`` below only places it in the palette)
plus its container torch module in :mod:`cnnshape.torch_backend.modules`.
"""

from ..base import LAYER_TYPES
from ..discover import import_modules
from ._base import NESTED, Block, NestedSequence, child_names, union_rf

#: the palette order of the block modules; every module here is imported (one not named
#: here after these, by name), so a new block type is one module: no line to add
PALETTE = ("sequential", "repeat", "residual", "concat", "squeeze", "dense", "graph")
import_modules(__name__, __path__, first=PALETTE)

# re-exported names (the modules are imported above)
from .concat import Concat  # noqa: E402
from .dense import DenseBlock  # noqa: E402
from .graph import Graph  # noqa: E402
from .repeat import Repeat, apply_overrides  # noqa: E402
from .residual import Residual  # noqa: E402
from .sequential import Sequential  # noqa: E402
from .squeeze import SqueezeExcitation  # noqa: E402

BLOCK_TYPES = {k: v for k, v in LAYER_TYPES.items() if v.is_block}

__all__ = ["BLOCK_TYPES", "NESTED", "Block", "NestedSequence", "Concat", "DenseBlock", "Graph", "SqueezeExcitation",
           "Repeat", "Residual", "Sequential", "apply_overrides", "child_names", "union_rf"]
