"""Blocks: layers that contain layers (nested sequences, repeats, residuals, branches).

A block owns its structure (which child sequences it has, how they are named in the
compiled module, i.e. the ``state_dict`` prefixes) and its merge rule; the generic walk
over child sequences lives in :mod:`cnnshape.analysis` (``Walk``), which a block calls
back through ``walk.seq``. Shapes:

- ``Sequential``: ``body`` applied in order (an ``nn.Sequential`` child).
- ``Repeat``: ``n`` copies of ``body``, the first one changed by ``first``; children
  ``0 .. n-1`` (a one-item body is the copy itself, as torchvision's ``layer1.0``).
- ``Residual``: ``y = after(body(x) + shortcut(x))``; the add needs equal shapes;
  ``shortcut`` defaults to the identity.
- ``Concat``: ``cat([branch(x) for branch in branches], dim=channels)``; branch outputs
  need equal spatial sizes; output channels are the sum.
"""

from typing import Any

from .. import formulas as F
from .base import LAYER_TYPES, Arg, ArgErrors, Layer, LayerError, Shape, did_you_mean, register, shape_str


class Block(Layer):
    """Base of the block types (``is_block``); children are Layer tuples."""

    family = "block"
    is_block = True

    def to_dict(self) -> dict[str, Any]:
        out = {"type": self.type}
        for k in self._set:
            v = getattr(self, k)
            kind = self.ARGS[k].kind
            if kind == "layers":
                v = [x.to_item() for x in v]
            elif kind == "branches":
                v = [[x.to_item() for x in b] for b in v]
            elif kind == "overrides":
                v = {p: (ov if not isinstance(ov, tuple) else [x.to_item() for x in ov]) for p, ov in v.items()}
            out[k] = v
        return out

    def sequences(self) -> list[tuple[str, int | None, tuple[Layer, ...]]]:
        """(argument key, branch index or None, layers) of every child sequence, in order."""
        out = []
        for key, arg in self.ARGS.items():
            v = getattr(self, key)
            if arg.kind == "layers" and v:
                out.append((key, None, v))
            elif arg.kind == "branches":
                out += [(key, i, b) for i, b in enumerate(v)]
        return out

    def analyze(self, shape: Shape, rf, walk) -> tuple[Shape, Any, list]:  # pragma: no cover - abstract
        """(output shape, receptive field, child LayerReports) via ``walk``; raise LayerError."""
        raise NotImplementedError

    def infer(self, shape, batch):  # blocks are analysed through analyze()
        raise LayerError(f"{self.type} is a block: analyse it with cnnshape.analyze")


def child_names(layers, offset: int = 0) -> list[str]:
    return [x.name if x.name is not None else str(i + offset) for i, x in enumerate(layers)]


def union_rf(rfs, what: str, notes: list):
    """Receptive field of merged branches: the union of their regions (Araujo et al.);
    a note when the branches are not centred alike (not aligned)."""
    if any(r is None for r in rfs) or len({len(r) for r in rfs}) != 1:
        return None
    out = []
    misaligned = False
    for axes in zip(*rfs):
        if len({a.jump for a in axes}) != 1:
            return None
        lo = min(a.start - (a.size - 1) / 2 for a in axes)
        hi = max(a.start + (a.size - 1) / 2 for a in axes)
        if len({a.start for a in axes}) != 1:
            misaligned = True
        out.append(F.RFAxis(int(round(hi - lo + 1)), axes[0].jump, (lo + hi) / 2))
    if misaligned:
        starts = "; ".join(", ".join(f"{a.start:g}" for a in r) for r in rfs)
        from .base import Note

        notes.append(Note(f"{what} are not aligned: their receptive fields are centred at different "
                          f"input positions ({starts}); the merged features mix shifted views",
                          "give the branches padding that keeps their centres equal (e.g. padding = (k-1)/2 "
                          "for odd kernels with stride 1)"))
    return tuple(out)


@register
class Sequential(Block):
    """A nested sequence (compiled to an ``nn.Sequential`` child).

    Shape: ``body`` applied in order.
    """

    body = Arg("layers", doc="The layers of the sequence.")

    def analyze(self, shape, rf, walk):
        return walk.seq(self.body, shape, rf, "body")


@register
class Repeat(Block):
    """``n`` copies of ``body`` in sequence; ``first`` changes the first copy.

    Shape: ``body`` applied ``n`` times (the first copy with ``first``'s changes, e.g. a
    stride 2 and a projection shortcut that start a ResNet stage).
    """

    n = Arg("int", doc="How many copies.", ge=1)
    body = Arg("layers", doc="The repeated layers (one item: each copy is that item itself).")
    first = Arg("overrides", None, "Changes to the first copy: {child path: {argument: value}}, or "
                "{argument of the repeated block: value}.", nullable=True)

    def copies(self) -> list[tuple[Layer, ...]]:
        """The body of every copy (the first with ``first`` applied); LayerError if a path
        of ``first`` names nothing."""
        first = self.body
        if self.first:
            first = apply_overrides(self.body, self.first)
        return [first] + [self.body] * (self.n - 1)

    def analyze(self, shape, rf, walk):
        reports = []
        for i, body in enumerate(self.copies()):
            if len(body) == 1:
                shape, rf, rep = walk.seq(body, shape, rf, "body", names=[str(i)], offset=i)
            else:
                shape, rf, rep = walk.nested(str(i), body, shape, rf, "body")
            reports += rep
        return shape, rf, reports


def apply_overrides(body: tuple[Layer, ...], overrides: dict) -> tuple[Layer, ...]:
    """``body`` with ``overrides`` ({path or argument: value}) applied (see Repeat.first)."""
    body = list(body)
    for path, change in overrides.items():
        single = body[0] if len(body) == 1 else None
        if single is not None and getattr(single, "is_block", False) and path in single.ARGS and path != "name":
            try:
                body[0] = single.replace(**{path: change})
            except ArgErrors as exc:
                raise LayerError(f"Repeat.first: '{path}': {exc}", "check the value", "first") from None
            continue
        if not isinstance(change, dict):
            raise LayerError(f"Repeat.first: '{path}' must map to argument changes like {{stride: 2}}, "
                             f"received {change!r}", "e.g. first: {conv1: {stride: 2}}", "first")
        parts = path.split(".")
        body = list(_override_path(tuple(body), parts, change, path))
    return tuple(body)


def _override_path(layers, parts, change, full, offset=0):
    names = child_names(layers, offset)
    target = parts[0]
    if target not in names:
        # a one-item body that is a block: the path starts inside it (a ResNet stage's copy
        # is the Residual itself, so first: {conv1: ...} names the Residual's conv1)
        if len(layers) == 1 and getattr(layers[0], "is_block", False):
            return (_override_inside(layers[0], parts, change, full),)
        raise LayerError(f"Repeat.first: no child '{target}' for '{full}'{did_you_mean(target, names)}",
                         f"children here: {', '.join(names)}", "first")
    i = names.index(target)
    out = list(layers)
    if len(parts) == 1:
        try:
            out[i] = layers[i].replace(**change)
        except (ArgErrors, TypeError) as exc:  # from the changed layer: report them on first
            raise LayerError(f"Repeat.first: '{full}': {exc}", "check the argument names and values", "first") from None
    elif getattr(layers[i], "is_block", False):
        out[i] = _override_inside(layers[i], parts[1:], change, full)
    else:
        raise LayerError(f"Repeat.first: '{full}': '{target}' is a {layers[i].type}, not a block",
                         "a path goes through blocks only", "first")
    return tuple(out)


def _override_inside(block, parts, change, full):
    every = []
    for key, bi, seq in block.sequences():
        group = block.shortcut_name if key == "shortcut" else str(bi) if bi is not None else None
        if group is not None:
            every.append(group)
            if parts[0] == group and len(parts) > 1:
                new = _override_path(seq, parts[1:], change, full)
            else:
                continue
        else:
            offset = len(block.body) if key == "after" else 0
            names = child_names(seq, offset)
            every += names
            if parts[0] not in names:
                continue
            new = _override_path(seq, parts, change, full, offset)
        if bi is None:
            return block.replace(**{key: new})
        branches = list(block.branches)
        branches[bi] = new
        return block.replace(branches=tuple(branches))
    raise LayerError(f"Repeat.first: no child '{parts[0]}' in {block.type} for '{full}'"
                     f"{did_you_mean(parts[0], every)}", f"children: {', '.join(every)}", "first")


@register
class Residual(Block):
    """Skip connection: ``y = after(body(x) + shortcut(x))`` (shortcut: identity if omitted).

    Shape: the output of ``body``; it must equal the shortcut's output (elementwise add).
    Children are named as in torchvision: the body's layers directly, the shortcut as one
    ``nn.Sequential`` named ``shortcut_name``, then ``after``'s layers.
    """

    body = Arg("layers", doc="The main path.")
    shortcut = Arg("layers", None, "The skip path (default: identity), e.g. a 1x1 conv + BatchNorm projection.",
                   nullable=True)
    shortcut_name = Arg("str", "shortcut", "Child name of the shortcut (torchvision ResNets: downsample).")
    after = Arg("layers", None, "Layers applied after the add (e.g. ReLU).", nullable=True)

    def analyze(self, shape, rf, walk):
        out, body_rf, reports = walk.seq(self.body, shape, rf, "body")
        if self.shortcut:
            s_out, s_rf, s_rep = walk.nested(self.shortcut_name, self.shortcut, shape, rf, "shortcut")
            reports += s_rep
        else:
            s_out, s_rf = shape, rf
        if s_out != out:
            raise LayerError(*self._mismatch(shape, out, s_out))
        walk.merge_memory(out)
        notes = []
        rf = union_rf([body_rf, s_rf], "the body and the shortcut", notes)
        for n in notes:
            walk.warn(n)
        if self.after:
            out, rf, a_rep = walk.seq(self.after, out, rf, "after", offset=len(self.body))
            reports += a_rep
        return out, rf, reports

    def split_rows(self, rows) -> tuple[list, Any, list]:
        """(body rows, shortcut row or None, after rows) of this block's analysed children
        (the order ``analyze`` produces and the compiled module registers them in)."""
        rows, nb = list(rows), len(self.body)
        k = nb + (1 if self.shortcut else 0)
        return rows[:nb], (rows[nb] if self.shortcut else None), rows[k:]

    def _mismatch(self, x: Shape, body: Shape, short: Shape):
        what = "the shortcut" if self.shortcut else "the identity shortcut (the block's input)"
        msg = (f"Residual add needs equal shapes: body outputs {shape_str(body)}, {what} outputs "
               f"{shape_str(short)}")
        fix = None
        if len(body) == len(x) and len(body) >= 2 and not self.shortcut:
            strides = [a // b if b and a % b == 0 else None for a, b in zip(x[1:], body[1:])]
            if all(strides):
                rank = len(body) - 1
                stride = strides[0] if len(set(strides)) == 1 else strides
                proj = [{"type": f"Conv{rank}d", "out_channels": body[0], "kernel_size": 1, "stride": stride,
                         "bias": False}, {"type": f"BatchNorm{rank}d"}]
                fix = {"shortcut": proj}
                return (msg, f"add a projection shortcut: shortcut: [{{type: Conv{rank}d, out_channels: "
                             f"{body[0]}, kernel_size: 1, stride: {stride}, bias: false}}, "
                             f"{{type: BatchNorm{rank}d}}]", "body", fix)
        return (msg, "make the body keep the input's shape, or give the shortcut a stride/projection "
                     "that produces the body's shape", "shortcut" if self.shortcut else "body", fix)


@register
class Concat(Block):
    """Parallel branches concatenated along channels (Inception style).

    Shape: every branch gets the input; outputs ``[C_i, *S]`` with equal spatial sizes
    ``S`` give ``[sum C_i, *S]``. Children ``0 .. k-1`` (one ``nn.Sequential`` per branch).
    """

    branches = Arg("branches", doc="Two or more lists of layers.")

    def check_args(self, values):
        if len(values.get("branches", ())) < 2:
            raise LayerError("Concat needs at least 2 branches", "add another list under branches:",
                             "branches")

    def analyze(self, shape, rf, walk):
        outs, rfs, reports = [], [], []
        for i, branch in enumerate(self.branches):
            o, r, rep = walk.nested(str(i), branch, shape, rf, ("branches", i))
            outs.append(o)
            rfs.append(r)
            reports += rep
        first = outs[0]
        for i, o in enumerate(outs[1:], 1):
            if len(o) != len(first) or o[1:] != first[1:]:
                raise LayerError(
                    f"Concat needs equal spatial sizes: branch 0 outputs {shape_str(first)}, branch {i} "
                    f"outputs {shape_str(o)}",
                    "give the branches the same stride and 'same'-style padding so their spatial sizes agree",
                    "branches")
        out = (sum(o[0] for o in outs), *first[1:])
        walk.merge_memory(out)
        notes = []
        rf = union_rf(rfs, "the Concat branches", notes)
        for n in notes:
            walk.warn(n)
        return out, rf, reports


BLOCK_TYPES = {k: v for k, v in LAYER_TYPES.items() if getattr(v, "is_block", False)}
