"""The contexts a block's hooks are given, declared as ``typing.Protocol``s.

A block never imports the walkers that call it: each walker hands the hook an object with
the methods below, and these protocols are that contract (typing only; nothing here runs).

| hook | context | implemented by |
|---|---|---|
| ``Block.analyze(shape, rf, walk)`` | :class:`WalkContext` | ``cnnshape.analysis.Walk`` |
| ``Block.size_flow(row, state, sizer)`` | :class:`SizerContext` | ``cnnshape.sizes.Sizer`` |
| ``Block.memory(row, mem, value)`` | :class:`TracerContext` | ``cnnshape.memory.Tracer`` |
| ``Block.compile(row, child)`` | :class:`ChildCompiler` | ``cnnshape.torch_backend.build.Compiler`` |
| ``Block.export_expr(row, em, depth)`` | :class:`EmitterContext` | ``cnnshape.torch_backend.export.Emitter`` |

``tests/test_architecture.py`` checks that each implementation has every member.
"""

from typing import Any, Protocol


class WalkContext(Protocol):
    """The analysis walk (``cnnshape.analysis.Walk``): a block analyses its children by
    calling back ``seq`` / ``nested`` / ``copy`` / ``item``."""

    #: (YAML path, dotted module path, trainable) of the blocks open around the call
    ctx: list

    def seq(self, layers, shape, rf, ykey, names=None, offset: int = 0) -> tuple:
        """Analyse ``layers`` in order -> (output shape, receptive field, rows)."""

    def nested(self, name: str, layers, shape, rf, ykey, index: int | None = None) -> tuple:
        """Analyse ``layers`` as one nn.Sequential child called ``name`` -> (shape, rf, [row])."""

    def copy(self, i: int, body, shape, rf, ykey, nested: bool, name: str | None = None) -> tuple:
        """Copy ``i`` of a Repeat's body -> (shape, rf, rows)."""

    def item(self, layer, shape, rf, ypath: tuple, dotted: str, name: str, index: int, tuple_ok: bool) -> Any:
        """Analyse one layer or block -> its row."""

    def warn(self, note) -> None:
        """Record a warning located at the innermost open block."""

    def merge_memory(self, shape) -> None:
        """Count the activation a merge (add, cat, multiply) creates."""


class SizerContext(Protocol):
    """The size-set walker (``cnnshape.sizes.Sizer``) a block's ``size_flow`` composes."""

    def rows(self, rows, state) -> Any:
        """The state after the analysed ``rows`` in order."""

    def row(self, row, state) -> Any:
        """The state after one analysed row."""

    def apply(self, rule, state, row=None) -> Any:
        """The state after a size rule (``cnnshape.rules``)."""

    def equal(self, states: list, dims=None) -> Any:
        """The sizes at which ``states`` agree (on ``dims``)."""

    def equal_or_one(self, x, g) -> Any:
        """The sizes at which gate ``g`` equals ``x`` or is 1 (a broadcast multiply)."""


class TracerContext(Protocol):
    """The memory tracer (``cnnshape.memory.Tracer``) a block's ``memory`` replays itself on."""

    #: the batch size traced
    batch: int

    def seq(self, rows, value) -> Any:
        """Run ``rows`` in order on ``value``'s handle."""

    def run(self, row, value) -> Any:
        """Run one analysed row."""

    def merge(self, row, values: list, keeps: tuple[int, ...] = (), shape=None, grad: bool = False) -> Any:
        """A merge (add, cat, multiply) of ``values`` into a new storage."""

    def hold(self, row, on: bool, shape=None) -> None:
        """Keep a gradient alive while other paths of a merge run backward."""

    def share(self, value) -> Any:
        """Another reader of ``value``'s storage."""

    def release(self, value) -> None:
        """One reader of ``value``'s storage is done."""


class ChildCompiler(Protocol):
    """The backend's compiler of child rows (``cnnshape.torch_backend.build.Compiler``)."""

    #: the container classes (``cnnshape.torch_backend.modules``)
    modules: Any

    def __call__(self, row) -> Any:
        """The torch module of a child row."""

    def sequence(self, rows) -> Any:
        """An ``nn.Sequential`` of rows."""


class EmitterContext(Protocol):
    """The exporter's writer of constructor expressions (``cnnshape.torch_backend.export.Emitter``)."""

    #: the names the exported file must define or import
    needs: set

    def expr(self, row, depth: int) -> str:
        """The constructor expression of a row."""

    def sequential(self, rows, depth: int) -> str:
        """An ``nn.Sequential(OrderedDict(...))`` of rows."""

    def odict(self, rows, depth: int) -> str:
        """An ``OrderedDict`` of rows' expressions."""

    def list(self, exprs, depth: int) -> str:
        """A list literal of expressions."""

    def call(self, name: str, args, depth: int) -> str:
        """``name(args...)`` over several lines."""
