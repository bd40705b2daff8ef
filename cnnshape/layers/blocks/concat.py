"""The Concat block (parallel branches)."""

from ..base import Arg, LayerError, register, shape_str
from ._base import Block, child_row, is_container, merge_rf, seq_children


@register
class Concat(Block):
    """Parallel branches concatenated along channels (Inception style).

    Shape: every branch gets the input; outputs ``[C_i, *S]`` with equal spatial sizes
    ``S`` give ``[sum C_i, *S]``. Children ``0 .. k-1`` (one ``nn.Sequential`` per branch).
    """

    torch_container = "Concat"

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
        return out, merge_rf(walk, rfs, "the Concat branches"), reports

    def size_flow(self, row, state, sizer):
        """Sizes at which every branch gives the same spatial sizes (channels add up)."""
        from ...sizes import SizeUnknown, State

        outs = [sizer.row(branch, state) for branch in row.children]
        if any(o.dim == 0 for o in outs):
            raise SizeUnknown(f"Concat '{row.path}' adds up channels that depend on the input size")
        merged = sizer.equal(outs, dims=range(1, len(outs[0].shape)))
        return State(merged.pieces, merged.dim, tuple(row.output), merged.merged)

    def compile(self, row, child):
        from ...torch_backend.modules import Concat

        return Concat([child(c) for c in row.children])

    def export_expr(self, row, em, depth):
        em.needs.add("Concat")
        return em.call("Concat", [em.list([em.expr(c, depth + 2) for c in row.children], depth + 1)], depth)

    @classmethod
    def from_torch(cls, module, items):
        if not is_container(module, "Concat"):
            return None
        return {"type": "Concat", "branches": [items(seq_children(b), f"{k}.")
                                               for k, b in enumerate(module.children())]}

    @classmethod
    def tree_children(cls, data, row, path, label, first=None):
        out = []
        for b, branch in enumerate(data.get("branches") or []):
            br = child_row(row, b)
            for j, x in enumerate(branch if isinstance(branch, list) else []):
                out.append((path + ("branches", b, j), x, child_row(br, j), f"{label}.{b}.{j}", None))
        return out
