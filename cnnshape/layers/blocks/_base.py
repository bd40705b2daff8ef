"""The Block base class: what every block type owns (see the package docstring)."""

from typing import Any, ClassVar

from ... import formulas as F
from ...limits import MAX_LAYERS
from ..base import Arg, Layer, LayerError, Note
from ..hooks import ChildCompiler, EmitterContext, SizerContext, TracerContext, WalkContext


class Block(Layer):
    """Base of the block types (``is_block``); children are Layer tuples.

    A block class is the one place that knows, for its type:

    - its child sequences (``sequences``) and how their items are named in errors
      (``item_prefix``);
    - its shape / merge rule (``analyze``, calling back ``walk.seq`` / ``walk.nested``);
    - its torch module (``compile``) and the exported constructor (``export_expr``);
    - how an existing torch module is recognised on import (``from_torch``);
    - its children in the studio's tree (``tree_children``, ``tree_note``).

    The container torch modules live in :mod:`cnnshape.torch_backend.modules` (plain
    torch, copied into exported code); the backend passes them to the compile hook, so a
    block never imports the backend, and torch is only imported inside the hooks.
    """

    family = "block"
    is_block = True
    inline = Arg("bool", False, "No module of its own: its layers are registered by their own names on the "
                 "enclosing module (torchvision's SqueezeNet Fire, Inception's nested concats).")

    def to_dict(self) -> dict[str, Any]:
        out = {"type": self.type}
        for k in self._set:
            v = getattr(self, k)
            out[k] = v if v is None else self.ARGS[k].kind_of.to_plain(v)
        return out

    # ------------------------------------------------------------------ structure
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

    @classmethod
    def item_prefix(cls, key: str, branch: int | None, values: dict, dotted: str) -> tuple[str, int]:
        """(dotted module path of the sequence ``key`` [branch], name offset of its items)
        from the raw YAML ``values``: how errors inside the block are named."""
        return (dotted if branch is None else f"{dotted}.{branch}"), 0

    def override_group(self, key: str, branch: int | None) -> tuple[str | None, int]:
        """(child module name grouping the sequence, or None when its items are direct
        children; name offset of its items): how ``Repeat.first`` paths reach into it."""
        return (str(branch) if branch is not None else None), 0

    def replace_sequence(self, key: str, branch: int | None, layers: tuple) -> "Block":
        """A copy with the sequence ``key`` [branch] replaced by ``layers``."""
        if branch is None:
            return self.replace(**{key: layers})
        seqs = list(getattr(self, key))
        seqs[branch] = layers
        return self.replace(**{key: tuple(seqs)})

    def copy_count(self) -> int:
        """How many times the compiled block instantiates its child sequences (a Repeat's
        or a DenseBlock's ``n``)."""
        return 1

    def expanded_rows(self) -> int:
        """Rows this block expands to in a report (itself and every nested row); cheap
        arithmetic over the spec's structure (a Repeat multiplies, never expands)."""
        return 1 + sum(expanded_rows(x) for _, _, seq in self.sequences() for x in seq) \
            + sum(1 for _, b, _ in self.sequences() if b is not None)

    # ------------------------------------------------------------------ analysis
    def analyze(self, shape, rf, walk: WalkContext) -> tuple:  # pragma: no cover - abstract
        """(output shape, receptive field, child LayerReports) via ``walk``; raise LayerError."""
        raise NotImplementedError

    def size_flow(self, row, state, sizer: SizerContext):
        """The input sizes still possible after this block (a
        :class:`cnnshape.size_algebra.State`; ``state._replace(shape=...)`` gives it another
        declared shape), given ``state`` before it; ``row`` is the block's analysed row (children with their
        declared shapes); ``sizer.rows``/``sizer.row`` walk child rows, ``sizer.equal``
        keeps the sizes at which branch outputs agree. None: no rule (``cnnshape sizes``
        reports the axis as unknown, never a guess)."""
        return None

    def memory(self, row, mem: TracerContext, value):
        """Replay this block's analysed ``row`` on the memory tracer ``mem``
        (:class:`cnnshape.memory.Tracer`, see :class:`~cnnshape.layers.hooks.TracerContext`) and return the output's handle: the children in
        order by default. Merges (add, cat, multiply) go through ``mem.merge``."""
        return mem.seq(row.children, value)

    def own_parameters(self) -> tuple[tuple[str, str], ...]:
        """(attribute name, description) of the parameters registered on the block's module
        itself (a Residual's ``layer_scale``)."""
        return ()

    def own_params(self, out) -> int:
        """Parameters registered on the block's module itself (not in a child), e.g. a
        Residual's layer_scale, for output shape ``out``."""
        return 0

    def infer(self, shape, batch):  # blocks are analysed through analyze()
        raise LayerError(f"{self.type} is a block: analyse it with cnnshape.analyze")

    # ------------------------------------------------------------------ torch
    #: the container class in :mod:`cnnshape.torch_backend.modules` that takes the child
    #: rows' modules as one OrderedDict (None: an ``nn.Sequential`` of them)
    container: ClassVar[str | None] = None

    def compile(self, row, child: ChildCompiler):
        """The torch module of the analysed ``row`` of this block. ``child`` comes from the
        backend (:class:`cnnshape.torch_backend.build.Compiler`): ``child(r)`` builds the
        module of a child row, ``child.sequence(rows)`` an ``nn.Sequential`` of rows,
        ``child.modules`` holds the container classes. Default: ``container`` (or an
        ``nn.Sequential``) of the child rows."""
        if self.container is None:
            return child.sequence(row.children)
        from collections import OrderedDict

        return getattr(child.modules, self.container)(OrderedDict((c.name, child(c)) for c in row.children))

    def export_expr(self, row, em: EmitterContext, depth: int) -> str:
        """Python constructor expression of ``row`` (``em``: the exporter's Emitter)."""
        if self.container is None:
            return em.sequential(row.children, depth)
        em.needs.add(self.container)
        return em.call(self.container, [em.odict(row.children, depth + 1)], depth)

    @classmethod
    def from_torch(cls, module, items) -> dict | None:
        """Spec data for ``module`` if it is this block type, else None. ``items(pairs,
        prefix_suffix, offset=0)`` turns (name, module) pairs into spec items."""
        return None

    # ------------------------------------------------------------------ figure
    #: ``cnnshape draw`` opens this block at every depth (a plain grouping such as a named
    #: Sequential); other blocks collapse to one box below ``--depth``
    draw_transparent: ClassVar[bool] = False

    def draw_lanes(self, row):
        """How ``cnnshape draw`` shows the analysed ``row``: (lanes, merge sign, rows after
        the merge), each lane a list of child rows (an empty lane is an identity skip), or
        None when the children are a plain sequence."""
        return None

    # ------------------------------------------------------------------ studio
    @classmethod
    def tree_children(cls, data: dict, row, path: tuple, label: str, first=None) -> list[tuple]:
        """(data path, data, report row or None, label, first) of the children shown in the
        studio's tree, in compiled order; ``first`` is passed to that child's own call."""
        body = data.get("body") if isinstance(data.get("body"), list) else []
        return [(path + ("body", j), x, child_row(row, j), f"{label}.{item_name(x, j)}", None)
                for j, x in enumerate(body)]

    @classmethod
    def tree_note(cls, data: dict) -> str:
        """Short text after the type in the tree (e.g. a Repeat's ×n)."""
        return ""


class NestedSequence(Block):
    """The layer of a nested sequence's row (a Concat branch, a Residual's shortcut, a
    multi-layer Repeat copy): an ``nn.Sequential`` of the row's children, without arguments
    of its own. A null object in place of ``layer=None``: the walkers run such a row through
    the block hooks like any block, and these treat it as the plain sequence of its rows.
    Not a type of the spec format (not registered)."""

    type = "Sequential"

    def size_flow(self, row, state, sizer: SizerContext):
        return sizer.rows(row.children, state)


#: the layer of every nested sequence's row (``LayerReport.layer``)
NESTED = NestedSequence()


#: most rows (layers, counting every Repeat copy and nested row) one report may hold;
#: beyond it analysis is refused with a located error (see docs/spec-extensions.md)
MAX_EXPANDED_ROWS = MAX_LAYERS  # one limit for the loader and the analysis (README: Limits)


def expanded_rows(layer) -> int:
    """Rows ``layer`` expands to in a report (1 for a leaf)."""
    return layer.expanded_rows() if layer.is_block else 1


def item_name(x, j: int) -> str:
    """The child name of raw item ``x`` at position ``j``."""
    return x.get("name") if isinstance(x, dict) and isinstance(x.get("name"), str) else str(j)


def child_row(row, k: int):
    """The k-th child row of ``row`` (None when absent)."""
    if row is None or k >= len(row.children):
        return None
    return row.children[k]


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
        notes.append(Note(f"{what} are not aligned: their receptive fields are centred at different "
                          f"input positions ({starts}); the merged features mix shifted views",
                          "give the branches padding that keeps their centres equal (e.g. padding = (k-1)/2 "
                          "for odd kernels with stride 1)"))
    return tuple(out)


def merge_rf(walk, rfs, what: str):
    """union_rf, with its notes given to ``walk`` as warnings."""
    notes: list = []
    rf = union_rf(rfs, what, notes)
    for n in notes:
        walk.warn(n)
    return rf


def seq_children(module) -> list:
    """(name, module) pairs of a branch/shortcut module: its children when it is a plain
    nn.Sequential, else the module itself as child "0"."""
    from torch import nn

    return list(module._modules.items()) if type(module) is nn.Sequential else [("0", module)]


def is_plain_sequential(module) -> bool:
    """nn.Sequential, or a subclass that keeps its forward (it computes the sequence)."""
    from torch import nn

    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def is_container(module, name: str, *attrs: str) -> bool:
    """``module`` is cnnshape's container ``name`` (by class name and attributes, so the
    class copied into an exported file is recognised too)."""
    return type(module).__name__ == name and all(hasattr(module, a) for a in attrs)


def _named(module, steps) -> list:
    """(name, module) pairs of a container's steps: a name is a registered child, a module
    is an inline block (its pair's name is None)."""
    return [(s, getattr(module, s)) if isinstance(s, str) else (None, s) for s in steps]
