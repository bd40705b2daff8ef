"""The Concat block (parallel branches, optionally on channel splits)."""

from ...limits import shown
from ...names import name_problem
from ...rules import SizeUnknown
from ..base import Arg, LayerError, register, shape_str
from ._base import Block, _named, child_row, is_container, item_name, merge_rf, seq_children


@register
class Concat(Block):
    """Parallel branches concatenated along channels (Inception style), then ``after``.

    Shape: every branch gets the input ``[C, *S]`` (with ``split: true``, branch i gets the
    i-th of k equal channel chunks ``[C/k, *S]``; an empty branch ``[]`` passes its input
    through); outputs ``[C_i, *S]`` with equal spatial sizes give ``[sum C_i, *S]``.
    Children: one ``nn.Sequential`` per non-empty branch named ``names[i]`` (default
    ``0 .. k-1``), or with ``flat: true`` every branch layer by its own name; then
    ``after``'s layers. Receptive field: the union of the branches'.
    """

    branches = Arg("branches", doc="Two or more lists of layers ([] passes its input through).")
    names = Arg("names", None, "Child names of the branch modules (default 0 .. k-1).", nullable=True)
    flat = Arg("bool", False, "No module per branch: every branch layer is registered by its own name on the "
               "Concat (names unique across branches; default names count on across branches).")
    split = Arg("bool", False, "Split the input channels into k equal chunks (torch.chunk); branch i gets "
                "chunk i (ShuffleNetV2).")
    after = Arg("layers", None, "Layers applied after the concatenation (e.g. ChannelShuffle).", nullable=True)

    def check_args(self, values):
        branches = values.get("branches", ())
        if len(branches) < 2:
            raise LayerError("Concat needs at least 2 branches", "add another list under branches:", "branches")
        names = values.get("names")
        if names is not None:
            if len(names) != len(branches):
                raise LayerError(f"Concat has {len(branches)} branches but {len(names)} names",
                                 "give one name per branch", "names")
            if values.get("flat"):
                raise LayerError("Concat.names names branch modules, but flat: true has none",
                                 "name the branch layers themselves (name: ...), or drop flat", "names")
            for n in names:  # what torch accepts and every output can show (cnnshape.names)
                problem = name_problem(n, "nn.Module")
                if problem is not None:
                    raise LayerError(f"Concat.names: {problem[0]}", problem[1], "names")
            if len(set(names)) != len(names):
                raise LayerError(f"Concat.names must be unique module names, received {shown(list(names), 200)}",
                                 "e.g. names: [branch1, branch2]", "names")

    # ------------------------------------------------------------------ structure
    def _branch_offsets(self) -> list[int]:
        out, k = [], 0
        for b in self.branches:
            out.append(k)
            k += len(b)
        return out

    def branch_name(self, i: int) -> str:
        return self.names[i] if self.names else str(i)

    def after_offset(self) -> int:
        return sum(len(b) for b in self.branches) if self.flat else len(self.branches)

    @classmethod
    def item_prefix(cls, key, branch, values, dotted):
        if key == "after":
            raw = values.get("branches") if isinstance(values.get("branches"), list) else []
            flat = values.get("flat") is True
            return dotted, (sum(len(b) for b in raw if isinstance(b, list)) if flat else len(raw))
        if values.get("flat") is True:
            raw = values.get("branches") if isinstance(values.get("branches"), list) else []
            return dotted, sum(len(b) for b in raw[:branch] if isinstance(b, list))
        names = values.get("names")
        name = names[branch] if isinstance(names, list) and branch < len(names) else branch
        return f"{dotted}.{name}", 0

    def override_group(self, key, branch):
        if key == "after":
            return None, self.after_offset()
        if self.flat:
            return None, self._branch_offsets()[branch]
        return self.branch_name(branch), 0

    # ------------------------------------------------------------------ analysis
    def analyze(self, shape, rf, walk):
        k = len(self.branches)
        x = shape
        if self.split:
            if shape[0] % k:
                fix_c = shape[0] - shape[0] % k
                raise LayerError(f"Concat split: {shape[0]} input channels cannot be split into {k} equal parts",
                                 f"give the layer before {fix_c or k} or {fix_c + k} channels (a multiple of {k}), "
                                 "or drop split", "split")
            x = (shape[0] // k, *shape[1:])
        outs, rfs, reports = [], [], []
        offsets = self._branch_offsets()
        for i, branch in enumerate(self.branches):
            if not branch:
                o, r, rep = x, rf, []
            elif self.flat:
                o, r, rep = walk.seq(branch, x, rf, ("branches", i), offset=offsets[i])
            else:
                o, r, rep = walk.nested(self.branch_name(i), branch, x, rf, ("branches", i))
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
        rf = merge_rf(walk, rfs, "the Concat branches")
        if self.after:
            out, rf, a_rep = walk.seq(self.after, out, rf, "after", offset=self.after_offset())
            reports += a_rep
        return out, rf, reports

    def split_rows(self, rows):
        """(per branch: its rows (flat) / its one nested row / None when empty, after rows)."""
        rows = list(rows)
        per, k = [], 0
        for b in self.branches:
            if not b:
                per.append(None)
            elif self.flat:
                n = _count_rows(b)
                per.append(rows[k:k + n])
                k += n
            else:
                per.append(rows[k])
                k += 1
        return per, rows[k:]

    def size_flow(self, row, state, sizer):
        """Sizes at which every branch gives the same spatial sizes (channels add up; with
        split, each branch gets its channel chunk; an empty branch passes it); then after."""
        if state.dim == 0:
            raise SizeUnknown(f"Concat '{row.path}' on channels that depend on the input size")
        per, after = self.split_rows(row.children)
        k = len(self.branches)
        shape = tuple(row.input)
        x = state._replace(shape=(shape[0] // k, *shape[1:]) if self.split else shape)
        outs = [x if p is None else sizer.rows(p, x) if self.flat else sizer.row(p, x) for p in per]
        if any(o.dim == 0 for o in outs):
            raise SizeUnknown(f"Concat '{row.path}' adds up channels that depend on the input size")
        merged = sizer.equal(outs, dims=range(1, len(outs[0].shape)))
        cat = (sum(o.shape[0] for o in outs), *outs[0].shape[1:])
        return sizer.rows(after, merged._replace(shape=cat))

    def memory(self, row, mem, value):
        """Every branch gets the input (``split``: a view of its channel chunk); branch
        outputs live until the cat, which keeps nothing; then ``after``."""
        per, after = self.split_rows(row.children)
        ins = [value] + [mem.share(value) for _ in per[1:]]
        if self.split and mem.batch > 1:
            for v in ins:
                v.contig = False  # channel chunks of a batched map are strided views
        outs = [v if rows is None else mem.seq(rows, v) if self.flat else mem.run(rows, v)
                for rows, v in zip(per, ins)]
        shape = after[0].input if after else row.output  # the cat's output
        return mem.seq(after, mem.merge(row, outs, shape=shape))

    def draw_lanes(self, row):
        """One lane per branch (an empty branch of a split passes its part through),
        concatenated on channels, then the layers after."""
        per, after = self.split_rows(row.children)
        lanes = [[] if p is None else list(p) if self.flat else list(p.children) for p in per]
        return lanes, "C", after

    # ------------------------------------------------------------------ torch
    def compile(self, row, child):
        from collections import OrderedDict

        Concat = child.modules.Concat
        per, after = self.split_rows(row.children)
        branches = [None if p is None else OrderedDict((c.name, child(c)) for c in p) if self.flat else child(p)
                    for p in per]
        return Concat(branches, list(self.names) if self.names else None, self.split,
                      OrderedDict((c.name, child(c)) for c in after))

    def export_expr(self, row, em, depth):
        em.needs.add("Concat")
        per, after = self.split_rows(row.children)
        exprs = ["None" if p is None else em.odict(p, depth + 2) if self.flat else em.expr(p, depth + 2)
                 for p in per]
        args = [em.list(exprs, depth + 1)]
        if self.names:
            args.append(f"names={list(self.names)!r}")
        if self.split:
            args.append("split=True")
        if after:
            args.append("after=" + em.odict(after, depth + 1))
        return em.call("Concat", args, depth)

    @classmethod
    def from_torch(cls, module, items):
        if not is_container(module, "Concat"):
            return None
        if not hasattr(module, "_branches"):  # an older exported Concat: one child per branch
            return {"type": "Concat", "branches": [items(seq_children(b), f"{k}.")
                                                   for k, b in enumerate(module._modules.values())]}
        d: dict = {"type": "Concat", "branches": []}

        def wrapped(steps):  # one branch module (nn.Sequential-like) named by the branch
            return len(steps) == 1 and isinstance(steps[0], str) and \
                type(getattr(module, steps[0])).__name__ in ("Sequential", "Sequence")

        flat = any(steps and not wrapped(steps) for steps in module._branches)
        names, k = [], 0
        for steps in module._branches:
            if not flat and steps:
                sub = getattr(module, steps[0])
                d["branches"].append(items(_named(sub, sub._steps) if hasattr(sub, "_steps")
                                           else seq_children(sub), f"{steps[0]}."))
                names.append(steps[0])
            else:
                d["branches"].append(items(_named(module, steps), "", k))
                names.append(None)  # flat, or an empty branch (no module: any unused name)
            k += len(steps)
        if flat:
            d["flat"] = True
        else:
            names = [n if n is not None else next(c for c in (str(i), f"branch{i}", f"_{i}") if c not in names)
                     for i, n in enumerate(names)]
            if names != [str(i) for i in range(len(names))]:
                d["names"] = names
        if module._split:
            d["split"] = True
        if module._after:
            d["after"] = items(_named(module, module._after), "", k if flat else len(module._branches))
        return d

    @classmethod
    def tree_children(cls, data, row, path, label, first=None):
        out = []
        branches = data.get("branches") if isinstance(data.get("branches"), list) else []
        names = data.get("names") if isinstance(data.get("names"), list) else []
        flat = data.get("flat") is True
        k = 0
        for b, branch in enumerate(branches):
            branch = branch if isinstance(branch, list) else []
            if flat:
                for j, x in enumerate(branch):
                    out.append((path + ("branches", b, j), x, child_row(row, k), f"{label}.{item_name(x, k)}", None))
                    k += 1
                continue
            if not branch:
                continue
            br = child_row(row, k)
            k += 1
            bname = names[b] if b < len(names) else str(b)
            for j, x in enumerate(branch):
                out.append((path + ("branches", b, j), x, child_row(br, j), f"{label}.{bname}.{item_name(x, j)}", None))
        after = data.get("after") if isinstance(data.get("after"), list) else []
        off = k if flat else len(branches)
        out += [(path + ("after", j), x, child_row(row, k + j), f"{label}.{item_name(x, off + j)}", None)
                for j, x in enumerate(after)]
        return out


def _count_rows(layers) -> int:
    """Rows a flat sequence produces (one per item)."""
    return len(layers)


