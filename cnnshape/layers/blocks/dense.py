"""The DenseBlock block (DenseNet: every copy sees everything before it)."""

from ... import formulas as F
from ...limits import MAX_INT
from ...rules import SizeUnknown
from ..base import Arg, LayerError, Note, register, shape_str
from ._base import Block, _named, child_row, expanded_rows, is_container, item_name
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

    def copy_count(self) -> int:
        return self.n

    def expanded_rows(self):
        return 1 + self.n * (sum(expanded_rows(x) for x in self.body) + (1 if len(self.body) > 1 else 0))

    def analyze(self, shape, rf, walk):
        """Linear in n: the union of the receptive fields seen so far is kept as running
        bounds (not recomputed over all earlier copies for each copy)."""
        if len(shape) < 2:
            raise LayerError(f"DenseBlock needs a feature map [C, *S], received {shape_str(shape)}",
                             "put it before Flatten")
        channels, reports = shape[0], []
        union = RFUnion(rf)
        for i in range(self.n):
            x = (channels, *shape[1:])
            name = copy_name(self.child_names, i)
            out, out_rf, rep = walk.copy(i, self.body, x, union.result(walk, "the dense block's inputs"),
                                         "body", len(self.body) != 1, name)
            if len(out) != len(shape) or out[1:] != shape[1:]:
                raise LayerError(f"DenseBlock copy {name} outputs {shape_str(out)} from {shape_str(x)}: the body "
                                 "must keep the spatial size to be concatenated with its input",
                                 "use stride 1 and 'same' padding in the body (e.g. kernel_size 3, padding 1)",
                                 "body")
            channels += out[0]
            if channels > MAX_INT:  # the merged map, before anything is built at that size
                raise LayerError(f"DenseBlock: after copy {name} the concatenation has {channels:,} channels, "
                                 f"more than the {MAX_INT:,} (2^40) limit of every size (README: Limits)",
                                 "use fewer or narrower copies", "n")
            union.add(out_rf)
            reports += rep
            walk.merge_memory((channels, *shape[1:]))
        return (channels, *shape[1:]), union.result(walk, "the dense block's outputs", final=True), reports

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
        held until the block's final cat); the cats keep nothing. Linear in n: a cat that
        keeps nothing only needs to know whether any operand needs a gradient (sharing and
        releasing every earlier output for each copy changed nothing but the cost)."""
        feats = [value]
        grad = value.grad
        for c in row.children:
            x = mem.merge(c, [], shape=c.input, grad=grad)
            feats.append(mem.run(c, x))
            grad = grad or feats[-1].grad
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


class RFUnion:
    """The union of a growing list of receptive fields (``union_rf`` of them all) in O(1)
    per added field: running bounds per axis, the first field's jumps and centres."""

    #: fields whose centres a misalignment note lists
    SHOWN = 8

    def __init__(self, rf):
        self.axes = None if rf is None else [[a.start - (a.size - 1) / 2, a.start + (a.size - 1) / 2, a.jump,
                                              a.start] for a in rf]
        self.starts = [] if rf is None else [tuple(a.start for a in rf)]
        self.count = 1
        self.misaligned = self.warned = False

    def add(self, rf) -> None:
        self.count += 1
        if self.axes is None:
            return
        if rf is None or len(rf) != len(self.axes) or any(a.jump != ax[2] for a, ax in zip(rf, self.axes)):
            self.axes = None
            return
        for a, ax in zip(rf, self.axes):
            ax[0] = min(ax[0], a.start - (a.size - 1) / 2)
            ax[1] = max(ax[1], a.start + (a.size - 1) / 2)
            self.misaligned = self.misaligned or a.start != ax[3]
        if len(self.starts) < self.SHOWN:
            self.starts.append(tuple(a.start for a in rf))

    def result(self, walk, what: str, final: bool = False):
        """The union so far (None when undefined); a warning the first time the fields are
        not aligned, and once more for the block's outputs."""
        if self.axes is None:
            return None
        if self.misaligned and (final or not self.warned):
            self.warned = True
            starts = "; ".join(", ".join(f"{s:g}" for s in r) for r in self.starts)
            more = f"; … ({self.count - len(self.starts):,} more)" if self.count > len(self.starts) else ""
            walk.warn(Note(f"{what} are not aligned: their receptive fields are centred at different "
                           f"input positions ({starts}{more}); the merged features mix shifted views",
                           "give the branches padding that keeps their centres equal (e.g. padding = (k-1)/2 "
                           "for odd kernels with stride 1)"))
        return tuple(F.RFAxis(int(round(hi - lo + 1)), jump, (lo + hi) / 2) for lo, hi, jump, _ in self.axes)
