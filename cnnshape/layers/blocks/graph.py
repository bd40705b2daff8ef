"""The Graph block: named tensors, nodes that name their inputs (any DAG inside one module).

```yaml
- type: Graph
  name: layer1                       # one nn.Module; its children keep the nodes' (dotted) names
  nodes:
    - {name: conv1, type: Conv2d, out_channels: 8, kernel_size: 1}      # from: the previous node
    - {name: convs.0, type: Conv2d, from: conv1, out_channels: 8, kernel_size: 3, padding: 1}
    - {name: proj, type: Conv2d, from: x, out_channels: 8, kernel_size: 1}  # x: the block's input
    - {name: sum, type: Add, from: [convs.0, proj]}                     # merges: Add, Mul, Cat
    - {name: act, type: ReLU}
  output: act                        # default: the last node
```

A node is any layer or block plus ``from:`` (a node name or ``x``; a list for the merges
``Add`` / ``Mul`` / ``Cat``; default: the node before it, the first node the block's
input). Names may be dotted (``convs.0``): the compiled module nests them, so keys equal
timm's ``ModuleList`` keys (``convs.0.weight``). A layer node (not a block) may also be the
parent of deeper nodes (RDNet: ``blk`` a LayerScale2d holding ``gamma``, ``blk.layers`` a
Sequential): keys ``blk.gamma``, ``blk.layers.0.weight``. Merges register no module. The analysis
walks the nodes in order: shapes, located errors, receptive field (merges: the union of
their inputs', "not aligned" warned), params/MACs (sums), sizes (merges intersect the sizes
at which their inputs agree), memory (tensors freed after their last use) all go through it.
"""

from typing import Any

from ..args import _kind
from ..base import Arg, Kind, Layer, LayerError, _type_name, register
from ._base import Block, child_row, item_name, merge_rf

INPUT = "x"


@_kind
class SourcesKind(Kind):
    """One entry per node: null (the previous node), a name, or a list of names."""

    name = "sources"
    schema_default = False

    def validate(self, arg, v, rank):
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"expected a list (one entry per node), received {_type_name(v)}")
        out = []
        for item in v:
            if item is None or isinstance(item, str):
                out.append(item)
            elif isinstance(item, (list, tuple)) and item and all(isinstance(x, str) for x in item):
                out.append(tuple(item))
            else:
                raise ValueError(f"each from: is a node name or a list of names, received {_type_name(item)} {item!r}")
        return tuple(out)

    def schema(self, arg, rank):
        return {"type": "array", "items": _FROM_SCHEMA}

    def describe(self, arg, rank):
        return "one per node: null, a name, or a list of names"

    def to_plain(self, v):
        return [list(x) if isinstance(x, tuple) else x for x in v]


_FROM_SCHEMA = {"anyOf": [{"type": "null"}, {"type": "string"},
                          {"type": "array", "minItems": 1, "items": {"type": "string"}}]}


class _Refused(Layer):
    """Stand-in analysed in a node's place to report that node's problem at the node."""

    def infer(self, shape, batch):
        raise self._error


def _refused(node, error: LayerError) -> Layer:
    stand = _Refused(name=node.name) if node.name is not None else _Refused()
    object.__setattr__(stand, "_error", error)
    return stand


_Refused.type = "node"


def _check_parents(names: list, nodes) -> None:
    """A block node cannot also be the container of another ('convs' and 'convs.0': its own
    children would mix with the other node's); a layer node can (RDNet's block: its gamma and
    its layers)."""
    for name, node in zip(names, nodes):
        for other in names:
            if other.startswith(name + ".") and (node.is_block or node.is_merge):
                raise LayerError(f"Graph node '{name}' ({node.type}) is also the parent of node '{other}'",
                                 f"rename one of them, e.g. {name}_out", "nodes")


@register
class Graph(Block):
    """Named-tensor graph: each node (a layer or block) reads the tensors its ``from:`` names
    (``x`` = the block's input; default the node before), merges (``Add``, ``Mul``, ``Cat``)
    read several; the output is ``output`` (default the last node). One module whose
    children are the nodes by their (possibly dotted) names; merges have no module.

    Shape: the output node's. Params / MACs / receptive field: node by node (merges: see their
    types)."""

    #: node names may be dotted paths (nested children, e.g. timm's ``convs.0``)
    dotted_names = True

    nodes = Arg("layers", doc="The nodes, in an order where every input comes before its reader.")
    inputs = Arg("sources", None, "The nodes' from: (filled from each node's from: key).", nullable=True)
    output = Arg("str", None, "Name of the node whose tensor the block returns (default: the last node).",
                 nullable=True)

    @classmethod
    def read_values(cls, values: dict) -> dict:
        """The loader's hook: move each node's ``from:`` into ``inputs`` (same positions)."""
        nodes = values.get("nodes")
        if not isinstance(nodes, list) or "inputs" in values:
            return values
        inputs, clean = [], []
        for item in nodes:
            if isinstance(item, dict) and "from" in item:
                inputs.append(item["from"])
                clean.append({k: v for k, v in item.items() if k != "from"})
            else:
                inputs.append(None)
                clean.append(item)
        out = {**values, "nodes": clean}
        if any(x is not None for x in inputs):
            out["inputs"] = inputs
        return out

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        srcs = out.pop("inputs", None)
        if srcs:
            nodes = []
            for item, src in zip(out["nodes"], srcs):
                if src is not None:
                    item = {"type": item} if isinstance(item, str) else dict(item)
                    item["from"] = src
                nodes.append(item)
            out["nodes"] = nodes
        return out

    @classmethod
    def json_schema(cls) -> dict:
        s = super().json_schema()
        s["properties"]["nodes"] = {
            "type": "array", "minItems": 1, "description": cls.ARGS["nodes"].doc + " Each node is a layer "
            "item (see $defs/layer) plus from: (a node name or x; a list for Add / Mul / Cat).",
            "items": {"anyOf": [{"type": "string"}, {"type": "object", "required": ["type"],
                                                     "properties": {"from": _FROM_SCHEMA,
                                                                    "name": {"type": "string"},
                                                                    "type": {"type": "string"}}}]}}
        return s

    # ------------------------------------------------------------------ structure
    def node_names(self) -> list[str]:
        return [x.name if x.name is not None else str(j) for j, x in enumerate(self.nodes)]

    def sources(self) -> list[tuple[str, ...]]:
        """The input names of every node (the previous node by default)."""
        names = self.node_names()
        srcs = self.inputs or (None,) * len(self.nodes)
        out = []
        for j, s in enumerate(srcs):
            if s is None:
                out.append((names[j - 1] if j else INPUT,))
            else:
                out.append((s,) if isinstance(s, str) else tuple(s))
        return out

    def out_name(self) -> str:
        return self.output if self.output is not None else self.node_names()[-1]

    def check_args(self, values):
        nodes, srcs = values.get("nodes", ()), values.get("inputs")
        if srcs is not None and len(srcs) != len(nodes):
            raise LayerError(f"Graph has {len(nodes)} nodes but {len(srcs)} inputs entries",
                             "write from: on the nodes themselves", "inputs")
        names = [x.name if x.name is not None else str(j) for j, x in enumerate(nodes)]
        inline = [n for n, x in zip(names, nodes) if x.inline]
        if inline:
            raise LayerError(f"Graph node '{inline[0]}' is inline: a Graph's nodes are its own children",
                             "remove inline: true from the node (dotted node names nest children instead)", "nodes")
        seen: set = set()
        for j, name in enumerate(names):
            parts = name.split(".")
            if name == INPUT or any(not p or p.startswith("_") for p in parts):
                raise LayerError(f"Graph node name {name!r} (node {j}) is not usable: 'x' is the block's input; "
                                 "each dotted part must be a non-empty name not starting with '_'",
                                 "rename the node, e.g. conv1 or convs.0", "nodes")
            if name in seen:
                raise LayerError(f"duplicate Graph node name '{name}' (node {j})", "give every node its own name",
                                 "nodes")
            seen.add(name)
        _check_parents(names, nodes)
        out = values.get("output")
        if out is not None and out not in seen:
            raise LayerError(f"Graph output '{out}' is not a node", f"use one of: {', '.join(names)}", "output")

    # ------------------------------------------------------------------ analysis
    def analyze(self, shape, rf, walk):
        ypath, dotted, _ = walk.ctx[-1]
        env = {INPUT: (shape, rf)}
        rows = []
        names = self.node_names()
        for j, (node, name, srcs) in enumerate(zip(self.nodes, names, self.sources())):
            problem = self._source_problem(node, name, srcs, env, names)
            where = ypath + ("nodes", j)
            if problem is not None:
                walk.item(_refused(node, problem), shape, rf, where, f"{dotted}.{name}", name, j, False)
            if node.is_merge:
                shapes = [env[s][0] for s in srcs]
                walk.ctx.append((where, f"{dotted}.{name}", True))
                try:
                    m_rf = merge_rf(walk, [env[s][1] for s in srcs], f"the inputs of {node.type} '{name}'")
                finally:
                    walk.ctx.pop()
                row = walk.item(node.bind(shapes), shapes[0], m_rf, where, f"{dotted}.{name}", name, j, False)
            else:
                s_shape, s_rf = env[srcs[0]]
                row = walk.item(node, s_shape, s_rf, where, f"{dotted}.{name}", name, j, False)
            rows.append(row)
            env[name] = (row.output, row.receptive_field)
        out, out_rf = env[self.out_name()]
        return out, out_rf, rows

    def _source_problem(self, node, name, srcs, env, names):
        merge = node.is_merge
        for s in srcs:
            if s not in env:
                later = s in names
                return LayerError(
                    f"node '{name}' reads '{s}', which is " + ("a later node (nodes run in order)" if later else
                                                               "not a node of this Graph (nor x, its input)"),
                    f"use x or one of the nodes before it: {', '.join(list(env)[:8])}", "from")
        if merge and len(srcs) < node.min_inputs:
            return LayerError(f"{node.type} node '{name}' merges {len(srcs)} tensor(s); it needs at least "
                              f"{node.min_inputs}", "give it from: [a, b]", "from")
        if not merge and len(srcs) != 1:
            return LayerError(f"node '{name}' ({node.type}) takes one input, but from: names {len(srcs)}",
                              "merge them first with an Add, Mul or Cat node", "from")
        return None

    # ------------------------------------------------------------------ sizes / memory / draw
    def size_flow(self, row, state, sizer):
        """Node by node; a merge keeps the sizes at which its inputs agree (Cat: every axis
        but its own; the tracked axis must not be the concatenated one)."""
        from ...rules import SizeUnknown
        from ...size_algebra import State

        env = {INPUT: state}
        for r, node, srcs in zip(row.children, self.nodes, self.sources()):
            ins = [env[s] for s in srcs]
            if not node.is_merge:
                env[r.name] = sizer.row(r, ins[0])
                continue
            merged = _merged_sizes(r, node, ins, sizer)
            env[r.name] = State(merged.pieces, merged.dim, tuple(r.output), merged.merged)
        # nodes the output does not read still run: the sizes where they fail fail the block
        out = env[self.out_name()]
        dead = [env[n] for n in self._dead()]
        if any(len(d.shape) != len(out.shape) for d in dead):
            raise SizeUnknown(f"Graph '{row.path}': a node the output does not read changes the rank")
        return sizer.equal([out] + dead, dims=()) if dead else out

    def _dead(self) -> list[str]:
        """Nodes whose tensor the output does not depend on (they run all the same)."""
        srcs = dict(zip(self.node_names(), self.sources()))
        live, todo = set(), [self.out_name()]
        while todo:
            n = todo.pop()
            if n in live or n == INPUT:
                continue
            live.add(n)
            todo.extend(srcs[n])
        return [n for n in self.node_names() if n not in live]

    def memory(self, row, mem, value):
        """Node by node; each tensor lives until its last reader (or the block's output);
        Add and Cat keep nothing for backward, Mul keeps each operand for the others' gradients."""
        srcs = self.sources()
        uses: dict[str, int] = {}
        for s in srcs:
            for n in s:
                uses[n] = uses.get(n, 0) + 1
        out_name = self.out_name()
        uses[out_name] = uses.get(out_name, 0) + 1
        env = {INPUT: value}

        def take(n):
            uses[n] -= 1
            return env.pop(n) if uses[n] == 0 else mem.share(env[n])

        if uses.get(INPUT, 0) == 0:
            mem.release(env.pop(INPUT))
        shapes = {INPUT: tuple(row.input)}
        for r, node, s in zip(row.children, self.nodes, srcs):
            ins = [take(n) for n in s]
            shapes[r.name] = tuple(r.output)
            if node.type == "Cat":
                env[r.name] = mem.merge(r, ins)
            elif node.is_merge:  # torch: ((a op b) op c) ..., one new tensor per step
                acc, acc_shape = ins[0], shapes[s[0]]
                for v, n in zip(ins[1:], s[1:]):
                    acc_shape = tuple(max(a, b) for a, b in zip(acc_shape, shapes[n]))
                    keeps = tuple(i for i, other in ((0, v), (1, acc)) if other.grad) if node.type == "Mul" else ()
                    acc = mem.merge(r, [acc, v], keeps, shape=acc_shape)
                env[r.name] = acc
            else:
                env[r.name] = mem.run(r, ins[0])
            if uses.get(r.name, 0) == 0:
                mem.release(env.pop(r.name))
        return env[out_name]

    # ------------------------------------------------------------------ torch
    def compile(self, row, child):
        from collections import OrderedDict

        modules = OrderedDict((r.name, child(r)) for r, node in zip(row.children, self.nodes)
                              if not node.is_merge)
        return child.modules.Graph(modules, self.steps(), self.out_name())

    def steps(self) -> list:
        """(name, op, input names, argument) of every node: op "module" or the merge's."""
        out = []
        for node, name, srcs in zip(self.nodes, self.node_names(), self.sources()):
            if node.is_merge:
                out.append((name, node.type.lower(), list(srcs), getattr(node, "dim", None)))
            else:
                out.append((name, "module", list(srcs), None))
        return out

    def export_expr(self, row, em, depth):
        em.needs.update({"OrderedDict", "Graph"})
        mods = [r for r, node in zip(row.children, self.nodes) if not node.is_merge]
        return em.call("Graph", [em.odict(mods, depth + 1), repr(self.steps()), repr(self.out_name())], depth)

    @classmethod
    def from_torch(cls, module, items):
        if type(module).__name__ != "Graph" or not hasattr(module, "_steps"):
            return None
        nodes, inputs, prev = [], [], "x"
        for name, op, srcs, arg in module._steps:
            if op == "module":
                item = items([(name, module.get_submodule(name))], "")[0]
            else:
                item = {"type": op.capitalize(), "name": name, **({"dim": arg} if op == "cat" and arg != 1 else {})}
            nodes.append(item)
            inputs.append(None if op == "module" and list(srcs) == [prev] else
                          srcs[0] if len(srcs) == 1 and op == "module" else list(srcs))
            prev = name
        d = {"type": "Graph", "nodes": nodes}
        if any(x is not None for x in inputs):
            d["inputs"] = inputs
        if module._output != module._steps[-1][0]:
            d["output"] = module._output
        return d

    # ------------------------------------------------------------------ studio
    @classmethod
    def tree_children(cls, data, row, path, label, first=None):
        nodes = data.get("nodes") if isinstance(data.get("nodes"), list) else []
        return [(path + ("nodes", j), x, child_row(row, j), f"{label}.{item_name(x, j)}", None)
                for j, x in enumerate(nodes)]


def _merged_sizes(r, node, ins, sizer):
    """The sizes at which the merge node ``node`` (row ``r``) can merge the states ``ins``."""
    from ...rules import SizeUnknown

    if any(len(i.shape) != len(ins[0].shape) for i in ins):
        raise SizeUnknown(f"{node.type} '{r.path}' merges tensors of different ranks")
    if node.type == "Cat":
        a = node.axis(ins[0].shape)
        if any(i.dim == a for i in ins):
            raise SizeUnknown(f"Cat '{r.path}' concatenates along the axis that depends on the input size")
        return sizer.equal(ins, dims=[d for d in range(len(ins[0].shape)) if d != a])
    if node.type == "Mul" and len({i.shape for i in ins}) != 1:
        full = [i for i in ins if tuple(i.shape) == tuple(r.output)]
        if not full or any(i.dim != full[0].dim or i.pieces != full[0].pieces for i in ins
                           if tuple(i.shape) != tuple(r.output)):
            raise SizeUnknown(f"Mul '{r.path}' broadcasts a gate whose size depends on the input size")
        return full[0]
    return sizer.equal(ins)
