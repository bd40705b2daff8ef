"""The DenseBlock block (DenseNet: every copy sees everything before it)."""

from ...rules import SizeUnknown
from ..base import Arg, LayerError, register, shape_str
from ._base import Block, _named, child_row, expanded_rows, is_container, item_name, merge_rf
from ._copies import check_child_names, child_names_arg, copy_name


@register
class DenseBlock(Block):
    """DenseNet's dense block: ``n`` copies of ``body``; copy i gets the channel concatenation
    of the block's input and every earlier copy's output; the block outputs the
    concatenation of its input and all copies' outputs.

    Shape: input ``[C, *S]``, copies output ``[G_i, *S]`` (each analysed on its own input
    ``[C + G_1 + .. + G_{i-1}, *S]``, so inferred in_channels/num_features adapt) give
    ``[C + sum G_i, *S]``; a body must keep the spatial size ``S``. Children: the copies,
    named by ``child_names`` (a one-item body is the copy itself, else an nn.Sequential).
    Receptive field: the union of the input's and the copies'.
    """

    container = "DenseBlock"

    n = Arg("int", doc="How many copies (layers of the dense block).", ge=1)
    body = Arg("layers", doc="One copy's layers (e.g. BatchNorm, ReLU, 1x1 conv, BatchNorm, ReLU, 3x3 conv).")
    child_names = child_names_arg

    def check_args(self, values):
        check_child_names(values.get("child_names", "{index}"), values.get("n", 1))

    def expanded_rows(self):
        return 1 + self.n * (sum(expanded_rows(x) for x in self.body) + (1 if len(self.body) > 1 else 0))

    def analyze(self, shape, rf, walk):
        if len(shape) < 2:
            raise LayerError(f"DenseBlock needs a feature map [C, *S], received {shape_str(shape)}",
                             "put it before Flatten")
        channels, rfs, reports = shape[0], [rf], []
        for i in range(self.n):
            x = (channels, *shape[1:])
            name = copy_name(self.child_names, i)
            out, out_rf, rep = walk.copy(i, self.body, x, merge_rf(walk, rfs, "the dense block's inputs"),
                                         "body", len(self.body) != 1, name)
            if len(out) != len(shape) or out[1:] != shape[1:]:
                raise LayerError(f"DenseBlock copy {name} outputs {shape_str(out)} from {shape_str(x)}: the body "
                                 "must keep the spatial size to be concatenated with its input",
                                 "use stride 1 and 'same' padding in the body (e.g. kernel_size 3, padding 1)",
                                 "body")
            channels += out[0]
            rfs.append(out_rf)
            reports += rep
            walk.merge_memory((channels, *shape[1:]))
        return (channels, *shape[1:]), merge_rf(walk, rfs, "the dense block's outputs"), reports

    def size_flow(self, row, state, sizer):
        """Sizes at which every copy keeps the spatial size of the block's input."""
        if state.dim == 0:
            raise SizeUnknown(f"DenseBlock '{row.path}' on channels that depend on the input size")
        cur = state
        for copy in row.children:
            x = cur._replace(shape=tuple(copy.input))
            cur = sizer.equal([x, sizer.row(copy, x)], dims=range(1, len(x.shape)))
        return cur._replace(shape=tuple(row.output))

    def memory(self, row, mem, value):
        """Copy i runs on a new storage: the cat of the input and the earlier outputs (all
        held until the block's final cat); the cats keep nothing."""
        feats = [value]
        for c in row.children:
            x = mem.merge(c, [mem.share(f) for f in feats], shape=c.input)
            feats.append(mem.run(c, x))
        return mem.merge(row, feats)

    @classmethod
    def from_torch(cls, module, items):
        if not is_container(module, "DenseBlock", "_copies"):
            return None
        copies = _named(module, module._copies)
        return _dense_from_copies(copies, items)

    @classmethod
    def tree_children(cls, data, row, path, label, first=None):
        body = data.get("body") if isinstance(data.get("body"), list) else []
        try:
            c0 = copy_name(data["child_names"], 0) if isinstance(data.get("child_names"), str) else "0"
        except (ValueError, KeyError, IndexError):
            c0 = "0"
        copy0 = child_row(row, 0)
        return [(path + ("body", j), x, copy0 if len(body) == 1 else child_row(copy0, j),
                 f"{label}.{c0}" if len(body) == 1 else f"{label}.{c0}.{item_name(x, j)}", None)
                for j, x in enumerate(body)]


def _dense_from_copies(copies, items) -> dict | None:
    """A DenseBlock item from its copies' (name, module) pairs, when every copy has the
    same layer types (their channel counts differ by design: inferred on import)."""
    from ._base import seq_children

    if not copies:
        return None
    single = [type(m).__name__ not in ("Sequential", "Sequence") for _, m in copies]
    bodies = [[{k: v for k, v in items([(n, m)], "")[0].items() if k != "name"}] if one else
              items(_named(m, m._steps) if hasattr(m, "_steps") else seq_children(m), f"{n}.")
              for (n, m), one in zip(copies, single)]
    names = [n for n, _ in copies]
    fmt = None
    for cand in ("{index}", "{number}"):
        for prefix in {n.rstrip("0123456789") for n in names}:
            f = prefix + cand
            if [copy_name(f, i) for i in range(len(names))] == names:
                fmt = f
    if fmt is None or len(set(single)) != 1 or any(b != bodies[0] for b in bodies):
        return None
    d = {"type": "DenseBlock", "n": len(copies), "body": bodies[0]}
    if fmt != "{index}":
        d["child_names"] = fmt
    return d
