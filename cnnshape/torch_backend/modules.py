"""The container torch modules blocks compile to (named by each block class's compile hook).

They are plain ``nn.Module`` code with no cnnshape imports; ``cnnshape export --to
python`` copies the classes an exported net uses into the exported file so that file
stays self-contained. A step of a container is a child name, or an ``Inline`` block
(``inline: true``): that block's children are registered on the container itself and the
block (kept out of the module tree) runs them.
"""

from collections import OrderedDict

import torch
from torch import nn


class Inline:
    """Wraps a block module whose children belong to the enclosing module (inline: true)."""

    def __init__(self, module):
        self.module = module


def _adopt(owner, items):
    """Register ``items`` ({name: module or Inline}) on ``owner``; its steps (names/blocks)."""
    steps = []
    for name, module in items.items():
        if isinstance(module, Inline):
            for n, m in module.module.named_children():
                owner.add_module(n, m)
            steps.append(module.module)
        else:
            owner.add_module(name, module)
            steps.append(name)
    return steps


def _run(owner, steps, h):
    for s in steps:
        h = (getattr(owner, s) if isinstance(s, str) else s)(h)
    return h


class Sequence(nn.Module):
    """Its steps in order (an nn.Sequential that may hold inline blocks)."""

    def __init__(self, items):
        super().__init__()
        self._steps = _adopt(self, items)

    def forward(self, x):
        return _run(self, self._steps, x)


class Residual(nn.Module):
    """``y = after(layer_scale * body(x) + shortcut(x))``; identity shortcut when ``shortcut``
    is None; ``layer_scale`` (a per-channel parameter) only when given. The add needs equal
    shapes (no broadcasting), as the analysis requires.

    Children (state_dict prefixes): the body's layers by name, the shortcut under
    ``shortcut_name``, then the layers after the add.
    """

    def __init__(self, body, shortcut=None, shortcut_name="shortcut", after=None, layer_scale=None):
        super().__init__()
        if layer_scale is not None:  # (value, channels, rank)
            value, channels, rank = layer_scale
            self.layer_scale = nn.Parameter(torch.full((channels,) + (1,) * rank, float(value)))
        self._body = _adopt(self, body)
        self._shortcut = shortcut_name if shortcut is not None else None
        if shortcut is not None:
            self.add_module(shortcut_name, shortcut)
        self._after = _adopt(self, after or OrderedDict())

    def forward(self, x):
        h = _run(self, self._body, x)
        if getattr(self, "layer_scale", None) is not None:
            h = self.layer_scale * h
        s = getattr(self, self._shortcut)(x) if self._shortcut is not None else x
        if h.shape != s.shape:  # no silent broadcasting: the add needs equal shapes
            raise RuntimeError(f"Residual add needs equal shapes: body outputs {list(h.shape[1:])}, "
                               f"shortcut outputs {list(s.shape[1:])}")
        return _run(self, self._after, h + s)


class Concat(nn.Module):
    """``after(cat([branch_i(x_i)], dim=1))``: every branch gets ``x`` (or, with ``split``, the
    i-th of k equal channel chunks). A branch is a module (child ``names[i]``, default
    ``str(i)``), None (passes its input through) or {name: module} registered directly
    here (``flat``)."""

    def __init__(self, branches, names=None, split=False, after=None):
        super().__init__()
        self._branches = []
        for i, b in enumerate(branches):
            if b is None:
                self._branches.append([])
            elif isinstance(b, dict):
                self._branches.append(_adopt(self, b))
            else:
                self._branches.append(_adopt(self, {names[i] if names else str(i): b}))
        self._split = split
        self._after = _adopt(self, after or OrderedDict())

    def forward(self, x):
        k = len(self._branches)
        parts = x.chunk(k, dim=1) if self._split else [x] * k
        y = torch.cat([_run(self, steps, h) for steps, h in zip(self._branches, parts)], dim=1)
        return _run(self, self._after, y)


class SqueezeExcitation(nn.Module):
    """``y = x * gate(x)`` (the gate's output broadcasts over the spatial axes)."""

    def __init__(self, gate):
        super().__init__()
        self._gate = _adopt(self, gate)

    def forward(self, x):
        return x * _run(self, self._gate, x)


class DenseBlock(nn.Module):
    """DenseNet: copy i gets ``cat([x, y_1, .., y_{i-1}])``; the output is ``cat([x, y_1, .., y_n])``."""

    def __init__(self, copies):
        super().__init__()
        self._copies = _adopt(self, copies)

    def forward(self, x):
        features = [x]
        for step in self._copies:
            features.append(_run(self, [step], torch.cat(features, 1)))
        return torch.cat(features, 1)
