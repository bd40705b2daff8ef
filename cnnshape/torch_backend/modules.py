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
            for n, p in module.module.named_parameters(recurse=False):  # its own (a Residual's layer scale):
                owner.register_parameter(n, p)  # the same tensor, in the owner's parameters and state_dict
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
    is None; ``layer_scale`` (a per-channel parameter, registered under its name: ``layer_scale``
    by default, timm's ``gamma``; shape ``[C, 1, ...]`` or ``[C]`` when flat) only when given. The add needs equal
    shapes (no broadcasting), as the analysis requires.

    Children (state_dict prefixes): the body's layers by name, the shortcut under
    ``shortcut_name``, then the layers after the add.
    """

    def __init__(self, body, shortcut=None, shortcut_name="shortcut", after=None, layer_scale=None):
        super().__init__()
        self._scale = None
        if layer_scale is not None:  # (value, channels, rank[, parameter name[, flat[, scalar]]])
            value, channels, rank, *rest = layer_scale
            name = rest[0] if rest else "layer_scale"
            flat = len(rest) > 1 and rest[1]
            scalar = len(rest) > 2 and rest[2]
            shape = () if scalar else (channels,) if flat else (channels,) + (1,) * rank
            self.register_parameter(name, nn.Parameter(torch.full(shape, float(value))))
            # viewed against the batched body output
            self._scale = (name, () if scalar else (1, channels) + (1,) * rank)
        self._body = _adopt(self, body)
        self._shortcut = shortcut_name if shortcut is not None else None
        if shortcut is not None:
            self.add_module(shortcut_name, shortcut)
        self._after = _adopt(self, after or OrderedDict())

    def forward(self, x):
        h = _run(self, self._body, x)
        if self._scale is not None:
            h = h * self._parameters[self._scale[0]].view(self._scale[1])
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


class Graph(nn.Module):
    """Named tensors: ``steps`` are (name, op, input names, argument) run in order, ``x`` the
    block's input; op "module" runs the child registered under name (a dotted name nests it:
    ``convs.0`` is child ``0`` of a container ``convs``, the keys of a ModuleList), "add" /
    "mul" sum / multiply the inputs, "cat" concatenates them along dim argument. A tensor is
    dropped after its last reader; the block returns the tensor named ``output``."""

    def __init__(self, modules, steps, output):
        super().__init__()
        for path, module in modules.items():
            owner, *parents, leaf = [self] + path.split(".")
            for p in parents:
                if p not in owner._modules:
                    owner.add_module(p, nn.Module())
                owner = owner._modules[p]
            made = owner._modules.get(leaf)
            if made is not None and type(made) is nn.Module:  # made for a deeper node ('2.layers'): the
                for k, m in made._modules.items():  # layer named '2' holds it (keys '2.gamma', '2.layers...')
                    module.add_module(k, m)
            owner.add_module(leaf, module)
        self._steps = [tuple(s) for s in steps]
        self._output = output
        last = {}
        for i, step in enumerate(self._steps):
            for s in step[2]:
                last[s] = i
        self._free = [[s for s in dict.fromkeys(srcs) if last[s] == i and s != output]
                      for i, (_, _, srcs, _) in enumerate(self._steps)]

    def forward(self, x):
        env = {"x": x}
        for (name, op, srcs, arg), free in zip(self._steps, self._free):
            ins = [env[s] for s in srcs]
            for s in free:
                del env[s]
            if op == "module":
                y = self.get_submodule(name)(ins[0])
            elif op == "cat":
                y = torch.cat(ins, dim=arg)
            else:
                y = ins[0]
                for t in ins[1:]:
                    y = y + t if op == "add" else y * t
            env[name] = y
        return env[self._output]
