"""The container torch modules blocks compile to (named by each block class's compile hook).

They are plain ``nn.Module`` code with no cnnshape imports; ``cnnshape export --to
python`` copies this source into the exported file so that file stays self-contained.
"""

from collections import OrderedDict

import torch
from torch import nn


class Residual(nn.Module):
    """``y = after(body(x) + shortcut(x))``; identity shortcut when ``shortcut`` is None.

    Children (state_dict prefixes): the body's layers by name, the shortcut under
    ``shortcut_name``, then the layers after the add.
    """

    def __init__(self, body, shortcut=None, shortcut_name="shortcut", after=None):
        super().__init__()
        self._body = list(body)
        self._after = list(after or ())
        self._shortcut = shortcut_name if shortcut is not None else None
        for name, module in body.items():
            self.add_module(name, module)
        if shortcut is not None:
            self.add_module(shortcut_name, shortcut)
        for name, module in (after or OrderedDict()).items():
            self.add_module(name, module)

    def forward(self, x):
        h = x
        for name in self._body:
            h = getattr(self, name)(h)
        y = h + (getattr(self, self._shortcut)(x) if self._shortcut is not None else x)
        for name in self._after:
            y = getattr(self, name)(y)
        return y


class Concat(nn.Module):
    """Branches ``0 .. k-1`` all get the input; outputs are concatenated on channels."""

    def __init__(self, branches):
        super().__init__()
        for i, branch in enumerate(branches):
            self.add_module(str(i), branch)

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.children()], dim=1)
