"""The Sequential block."""

from ..base import Arg, register
from ._base import Block


@register
class Sequential(Block):
    """A nested sequence (compiled to an ``nn.Sequential`` child).

    Shape: ``body`` applied in order.
    """

    body = Arg("layers", doc="The layers of the sequence.")
    draw_transparent = True

    def analyze(self, shape, rf, walk):
        return walk.seq(self.body, shape, rf, "body")

    def size_flow(self, row, state, sizer):
        return sizer.rows(row.children, state)

    @classmethod
    def from_torch(cls, module, items):
        from torch import nn

        if type(module) is not nn.Sequential:
            return None
        return {"type": "Sequential", "body": items(list(module.named_children()), "")}
