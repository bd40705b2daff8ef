"""The Sequential block."""

from ..base import Arg, register
from ._base import Block, _named, is_container, is_plain_sequential


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
        if is_container(module, "Sequence", "_steps"):  # a sequence holding inline blocks
            return {"type": "Sequential", "body": items(_named(module, module._steps), "")}
        if not is_plain_sequential(module):
            return None
        return {"type": "Sequential", "body": items(list(module._modules.items()), "")}
