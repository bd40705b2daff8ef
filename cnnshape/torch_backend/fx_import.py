"""Import any traceable PyTorch model through torch.fx: trace, propagate shapes on meta
tensors, and decompose the graph into the spec's nested blocks keeping every module's
qualified name (so ``build(spec).load_state_dict(model.state_dict(), strict=True)``).

Steps:

1. :func:`trace`: a ``torch.fx.Tracer`` whose leaves are the modules cnnshape has a layer or
   block for (and every other ``torch.nn`` layer, so that one is refused by name).
2. :func:`_propagate`: shapes per node with a batch of 2 on the meta device; a leaf's output
   shape comes from cnnshape's own analysis of the layer the module maps to (so a model
   with a shape mistake still imports, and the analysis reports the mistake); functional
   ops run on meta tensors.
3. :class:`_Scope`: nodes grouped by module path (``nn_module_stack``); each module that was
   traced through becomes one item (a ``Sequential``, or the merge block its forward
   computes: ``Residual`` for an add, ``Concat`` for a cat, ``SqueezeExcitation`` for
   ``x * gate(x)``); merges that are not a whole module become ``inline`` blocks.

What cannot be said in a spec raises :class:`ImportRefused`, naming the user's line.
"""

import functools
import operator
import sys
import traceback
from dataclasses import dataclass

import torch
from torch import fx, nn

from ..errors import CnnshapeError
from ..limits import MAX_DEPTH
from . import fx_rules as R

#: module nesting a spec can hold (each level is a mapping and a list in the document)
MAX_MODULE_DEPTH = MAX_DEPTH // 2 - 1
BATCH = 2  # propagate with batch 2: a view that keeps the batch axis is told from one that merges it
INPUT_KEYS = ("in_channels", "in_features", "num_features")


@dataclass(frozen=True)
class Site:
    """A place in the user's source: file, 1-based line and column."""

    path: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


class ImportRefused(CnnshapeError):
    """The model cannot be written as a spec: ``message`` (what and why), ``hint`` (what to
    do) and ``site`` (the user's line, when known)."""

    def __init__(self, message: str, hint: str = "", site: Site | None = None):
        super().__init__(f"{site}: {message}" if site else message)
        self.message = message
        self.hint = hint
        self.site = site


# ---------------------------------------------------------------------------- sites
class NotNested(ImportRefused):
    """A dataflow that nested blocks cannot say (a module with two inputs, a skip crossing a
    merge, a product of two computed tensors): the importer says it with a Graph block."""


class OwnParameter(ImportRefused):
    """A module's forward scales by its own parameter where no block holds it (RDNet's block):
    a Graph around it opens the module and holds the parameter in a layer named by its path."""


def _foreign_dirs() -> tuple[str, ...]:
    import os
    import sysconfig

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "purelib", "platlib")}
    return tuple(os.path.realpath(p) + os.sep for p in paths) + (os.path.realpath(here) + os.sep,)


_FOREIGN = None


@functools.lru_cache(maxsize=4096)
def is_user_file(filename: str | None) -> bool:
    """A file of the user's (not torch, not a library, not cnnshape, not <frozen ...>)."""
    import os

    global _FOREIGN
    if not filename or filename.startswith("<"):
        return False
    if _FOREIGN is None:
        _FOREIGN = _foreign_dirs()
    return not os.path.realpath(filename).startswith(_FOREIGN)


def site_of_frames(frames) -> Site | None:
    """The innermost (filename, line) of the user's among ``frames`` (outermost first)."""
    for filename, line in reversed(list(frames)):
        if is_user_file(filename) and line:
            return Site(filename, line, _first_column(filename, line))
    return None


def _first_column(filename: str, line: int) -> int:
    import linecache

    text = linecache.getline(filename, line)
    return len(text) - len(text.lstrip()) + 1 if text.strip() else 1


def site_of_exception(exc: BaseException) -> Site | None:
    tb = traceback.extract_tb(exc.__traceback__)
    return site_of_frames((f.filename, f.lineno) for f in tb)


def site_of_node(node) -> Site | None:
    """The user's line of a traced node (recorded by the tracer: the innermost frame of the
    user's while forward ran), or from fx's stack trace when one was recorded."""
    if node is None:
        return None
    where = node.meta.get("cnnshape_site")
    if where is not None:
        return Site(where[0], where[1], _first_column(*where))
    st = getattr(node, "stack_trace", None)
    if not st:
        return None
    frames = []
    for line in st.splitlines():
        line = line.strip()
        if line.startswith('File "'):
            name, _, rest = line[6:].partition('"')
            num = rest.split("line ", 1)[-1].split(",", 1)[0]
            if num.isdigit():
                frames.append((name, int(num)))
    return site_of_frames(frames)


# ---------------------------------------------------------------------------- tracing
def _recognised_block(module) -> bool:
    from ..layers.blocks import BLOCK_TYPES

    def dummy(pairs, sub="", offset=0):
        return [{} for _ in pairs]

    for cls in BLOCK_TYPES.values():
        try:
            if cls.from_torch(module, dummy) is not None:
                return True
        except (AttributeError, IndexError, KeyError, TypeError, ValueError, RuntimeError, NotImplementedError):
            continue  # not this block's module (or one it cannot read on this device)
    return False


def is_leaf(module) -> bool:
    """A module cnnshape maps to one item as a whole: a layer type, a recognised block
    (cnnshape's exported containers, torchvision.ops.SqueezeExcitation), or any other
    torch.nn layer (refused by name later)."""
    from .torch_items import _layer_class

    if isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)) and _plain_container(module):
        return False  # traced through: its layers keep their own construction sites
    if _layer_class(module) is not None or _recognised_block(module):
        return True
    return type(module).__module__.startswith("torch.nn.") and not isinstance(module, (nn.ModuleList, nn.ModuleDict))


def _plain_container(module) -> bool:
    return type(module).forward in (nn.Sequential.forward, nn.ModuleList.forward, nn.ModuleDict.forward) \
        or type(module) in (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class _ShapedProxy(fx.Proxy):
    """A proxy whose ``shape`` / ``size()`` / ``dim()`` are concrete when the tensor's shape is
    known (a module's input, recorded by a meta forward pass): ``if x.shape[-2] < 7:`` in a
    forward (timm's VGG head) then takes the branch the imported input shape takes."""

    def __getattr__(self, k):
        s = self.node.meta.get("cnnshape_shape")
        if s is not None:
            if k == "shape":
                return torch.Size(s)
            if k in ("ndim", "dim"):
                return len(s) if k == "ndim" else (lambda: len(s))
            if k == "size":
                return lambda d=None: torch.Size(s) if d is None else s[d]
        return super().__getattr__(k)


class _Tracer(fx.Tracer):
    """Leaves: :func:`is_leaf`. Each node records the innermost frame of the user's (a
    cheap frame walk; fx's own stack traces cost milliseconds per node). With ``shapes``
    (id(module) -> the input shapes of each of its calls, and the model's input shape),
    module inputs carry their shapes (see _ShapedProxy)."""

    top = None
    shapes: dict | None = None
    root_shape = None

    def proxy(self, node):
        if self.shapes is None:
            return super().proxy(node)
        if node.op == "placeholder" and self.root_shape is not None:
            node.meta["cnnshape_shape"], self.root_shape = self.root_shape, None
        return _ShapedProxy(node, self)

    def trace(self, root, concrete_args=None):
        self.top = sys._getframe()
        # decided before tracing: while fx traces, a module's parameters read as proxies
        self.leaves = {id(m) for m in root.modules() if m is not root and is_leaf(m)}
        return super().trace(root, concrete_args)

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        f = sys._getframe(1)
        while f is not None and f is not self.top:
            if is_user_file(f.f_code.co_filename):
                node.meta["cnnshape_site"] = (f.f_code.co_filename, f.f_lineno)
                break
            f = f.f_back
        return node

    def is_leaf_module(self, m, module_qualified_name):
        return id(m) in self.leaves

    def call_module(self, m, forward, args, kwargs):
        try:
            self.path_of_module(m)
        except NameError:  # an inline block (cnnshape's Inline): its layers are the owner's, trace through it
            return forward(*args, **kwargs)
        calls = self.shapes.get(id(m)) if self.shapes is not None else None
        if calls:
            for a, shape in zip(args, calls.pop(0)):
                if isinstance(a, fx.Proxy) and shape is not None:
                    a.node.meta["cnnshape_shape"] = shape
        return super().call_module(m, forward, args, kwargs)


def _shaped_forward(model, input_shape, exc) -> dict:
    """_input_shapes, or the tracing error when the model does not run on that input."""
    try:
        return _input_shapes(model, input_shape)
    except Exception as run:  # noqa: BLE001 - the user's model does not run on that input: say where
        where = site_of_exception(run)
        if where is None or where == site_of_exception(exc):  # it stops at the branch: a branch on a value
            raise exc from None
        shape = ",".join(map(str, input_shape))
        raise ImportRefused(f"forward branches on a shape (or a value); to follow a shape's branch cnnshape runs "
                            f"the model on --input {shape} on the meta device, and it does not run there: "
                            f"{type(run).__name__}: {str(run).splitlines()[0] if str(run) else ''}",
                            "give the input shape the model was made for", where) from None


def _input_shapes(model, input_shape) -> dict:
    """id(module) -> the shapes of its positional tensor inputs at each call, from one forward
    pass on the meta device (a model built on the CPU runs on a zero tensor there)."""
    calls: dict = {}

    def pre(m, args):
        calls.setdefault(id(m), []).append([tuple(a.shape) if isinstance(a, torch.Tensor) else None for a in args])
    hooks = [m.register_forward_pre_hook(pre) for m in model.modules()]
    device = next((p.device for p in model.parameters()), torch.device("meta"))
    try:
        with torch.no_grad():
            model(torch.zeros((BATCH, *input_shape), device=device))
    finally:
        for h in hooks:
            h.remove()
    return calls


def trace(model, input_shape=None) -> fx.Graph:
    """The fx graph of ``model`` in eval mode; ImportRefused at the user's line when the
    forward cannot be traced (control flow on a tensor's value, an op fx cannot follow).
    A forward that branches on a shape is traced again with the shapes of ``input_shape``."""
    was = model.training
    model.eval()
    try:
        try:
            return _in_place_results(_Tracer().trace(model))
        except fx.proxy.TraceError as exc:
            if input_shape is None or "control flow" not in str(exc):
                raise
            tracer = _Tracer()
            tracer.shapes, tracer.root_shape = _shaped_forward(model, input_shape, exc), (BATCH, *input_shape)
            return _in_place_results(tracer.trace(model))
    except fx.proxy.TraceError as exc:
        site = site_of_exception(exc)
        text = str(exc)
        if "control flow" in text or "iteration" in text or "len(" in text:
            raise ImportRefused("forward branches (or loops) on a tensor's value; cnnshape follows no such "
                                "branch", "make the branch depend on constructor arguments, not on the data",
                                site) from None
        raise ImportRefused(f"torch.fx cannot trace {type(model).__name__}.forward: {text}",
                            "cnnshape reads models by tracing them with torch.fx", site) from None
    except ImportRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's forward raised while tracing: locate it
        site = site_of_exception(exc)
        raise ImportRefused(f"tracing {type(model).__name__}.forward raised {type(exc).__name__}: {exc}",
                            "cnnshape reads models by tracing them with torch.fx (no data flows, so "
                            "forward may not look at tensor values)", site) from None
    finally:
        model.train(was)


def _in_place_results(graph: fx.Graph) -> fx.Graph:
    """``out.mul_(g)`` with its result dropped (timm's NFNet skipinit): fx keeps later uses of
    ``out`` on the node before the op, but at run time they read the mutated tensor; point them
    at the in-place op's node."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    for n in list(graph.nodes):
        if n.op != "call_method" or not n.target.endswith("_") or n.target.startswith("__") \
                or not n.args or not isinstance(n.args[0], fx.Node):
            continue
        x = n.args[0]
        for user in list(x.users):
            if user is not n and order[user] > order[n]:
                user.replace_input_with(x, n)
    return graph


# ---------------------------------------------------------------------------- shapes
def _meta(shape):
    return torch.empty(tuple(shape), device="meta")


def _map(a, f):
    return fx.node.map_arg(a, f)


def _tensor_nodes(node) -> list:
    out: list = []
    fx.node.map_arg((node.args, node.kwargs), out.append)
    return out


class _Graph:
    """The traced graph with shapes (``shape[node]``: batched tuple, or None when unknown /
    not a tensor) and the items of leaf modules."""

    def __init__(self, model, graph: fx.Graph, input_shape, sites: dict):
        self.model = model
        self.graph = graph
        self.sites = sites
        self.modules = dict(model.named_modules(remove_duplicate=False))
        self.nodes = list(graph.nodes)
        self.index = {n: i for i, n in enumerate(self.nodes)}
        self.value: dict = {}
        self.tensor: set = set()  # nodes whose value is a tensor (or an unknown tensor)
        self.params: set = set()  # get_attr nodes (parameters / buffers) and expressions of them only
        self.param_root: dict = {}  # a parameter expression (gamma.reshape(1, -1, 1, 1)) -> its get_attr
        self.leaf_items: dict = {}
        self._propagate(tuple(input_shape))

    # -- propagation
    def _propagate(self, input_shape):
        placeholders = [n for n in self.nodes if n.op == "placeholder"]
        for n in placeholders[1:]:
            if n.users:
                raise ImportRefused(f"forward takes several tensors ({', '.join(p.target for p in placeholders)}); "
                                    "a spec has one input", "wrap the model so forward takes one tensor",
                                    self.site_of_module(""))
        for n in self.nodes:
            if n.op == "placeholder":
                if n is placeholders[0]:
                    self.value[n] = _meta((BATCH, *input_shape))
                    self.tensor.add(n)
                else:
                    self.value[n] = n.args[0] if n.args else None
            elif n.op == "get_attr":
                v = _fetch(self.model, n.target)
                self.value[n] = _meta(v.shape) if isinstance(v, torch.Tensor) else v
                if isinstance(v, torch.Tensor):
                    self.params.add(n)
                    self.param_root[n] = n
            elif n.op == "call_module":
                self._call_module(n)
            elif n.op in ("call_function", "call_method"):
                self._call(n)

    def _call_module(self, n):
        module = self.modules[n.target]
        ins = [a for a in _tensor_nodes(n) if a in self.tensor]
        self.tensor.add(n)
        self.value[n] = None
        item = self.leaf_item(n.target, module, n)
        if len(ins) != 1 or self.value.get(ins[0]) is None:
            return
        shape = tuple(self.value[ins[0]].shape)
        out = _item_output(item, shape[1:])
        if out is not None:
            self.value[n] = _meta((shape[0], *out))

    def _call(self, n):
        args = _map((n.args, n.kwargs), lambda a: self.value.get(a))
        tensor_in = any(a in self.tensor or a in self.params for a in _tensor_nodes(n))
        unknown = any(a in self.tensor and self.value.get(a) is None for a in _tensor_nodes(n))
        self.value[n] = None
        if unknown:
            self.tensor.add(n)
            return
        if not tensor_in:  # shape arithmetic (size, getitem, floordiv, ...): plain Python on sizes
            try:
                fn = n.target if n.op == "call_function" else getattr(args[0][0], n.target)
                a, k = args if n.op == "call_function" else (args[0][1:], args[1])
                self.value[n] = fn(*a, **k)
            except Exception:  # noqa: BLE001 - not computable here: unknown
                return
            return
        if n.op == "call_method" and n.target in ("size", "dim", "numel", "ndimension"):
            self.value[n] = getattr(args[0][0], n.target)(*args[0][1:], **args[1])
            return
        if n.op == "call_function" and n.target is getattr:
            self.value[n] = getattr(*args[0])
            if isinstance(self.value[n], torch.Tensor):
                self.tensor.add(n)
            return
        if not any(a in self.tensor for a in _tensor_nodes(n)):
            self._param_expression(n, args)
            return
        # tensor ops are not run (running them on meta tensors imports torch._dynamo, seconds):
        # their output shape follows from the spec layers they map to, or a rule of their own
        self.tensor.add(n)
        out = self._static_shape(n, args)
        if isinstance(out, list):
            self.value[n] = [_meta(o) for o in out]
        elif out is not None:
            self.value[n] = _meta(out)

    def _param_expression(self, n, args):
        """An op on parameters only (``self.gamma.reshape(1, -1, 1, 1)``, ``self.weight.to(x.dtype)``):
        part of the parameter it reads (the op using it names that parameter), not a step of
        the data path."""
        first = next(a for a in _tensor_nodes(n) if a in self.param_root)
        self.params.add(n)
        self.param_root[n] = self.param_root[first]
        x = self.shape(first)
        name = _name_of(n)
        if x is None:
            return
        if name in R.RESHAPES:
            out = R.reshaped(name, x, args[0][1:], args[1])
        elif name in ("to", "float", "contiguous", "clone", "detach", "type_as"):
            out = x
        else:
            return
        if out is not None:
            self.value[n] = _meta(out)

    def _static_shape(self, n, args):
        """The output shape (batched) of a tensor op, or a list of shapes (chunk / split);
        None when unknown."""
        ins = [self.shape(a) for a in _tensor_nodes(n) if a in self.tensor or a in self.params]
        x = ins[0] if ins else None
        target = n.target
        if n.op == "call_function" and target is operator.getitem and not isinstance(args[0][0], torch.Tensor):
            seq, i = args[0]
            return tuple(seq[i].shape) if isinstance(seq, (list, tuple)) and isinstance(seq[i], torch.Tensor) else None
        merged = _merged_shape(n, ins)
        if merged is not _NOT_A_MERGE:
            return merged
        name = target if isinstance(target, str) else getattr(target, "__name__", "")
        if x is not None and name in ("chunk", "split", "tensor_split"):
            return _chunks(name, x, list(args[0][1:]), args[1])
        if x is not None and name in R.RESHAPES:
            return R.reshaped(name, x, args[0][1:], args[1])
        if name in ("expand_as", "type_as") and len(ins) > 1:
            return ins[1] if name == "expand_as" else x
        return self._shape_by_rule(n, x)

    def _shape_by_rule(self, n, x):
        """The output shape of ``n`` through the spec items its rule maps it to (a torch layer
        subclass's own op: that layer)."""
        if x is None:
            return None
        rule = R.FUNCTIONS.get(n.target) if n.op == "call_function" else R.METHODS.get(n.target)
        if rule is None:
            items = [self.own_op_item(n)]
        else:
            call = _Parser.bind(self, n, rule[0])
            call.out = None
            items = rule[1](call)
        if items is None or None in items:
            return None
        shape = x[1:]
        for item in items:
            shape = _item_output(item, shape)
            if shape is None:
                return None
        return (x[0], *shape)

    def own_op_item(self, n) -> dict | None:
        """The item of a torch layer subclass whose own parameters op ``n`` reads (F.batch_norm in
        timm's BatchNormAct2d: a BatchNorm2d), for its output shape; None for any other op."""
        from .torch_items import _leaf, torch_base_class

        for a in _tensor_nodes(n):
            root = self.param_root.get(a)
            if root is None:
                continue
            owner = root.target.rpartition(".")[0]
            module = self.modules.get(owner)
            base = torch_base_class(module) if module is not None and owner else None
            if base is None:
                return None
            try:
                item = _leaf(owner, module, cls=base)
            except CnnshapeError:
                return None
            item.pop("name", None)
            return item
        return None

    def unknown_root(self, n):
        """When ``n`` reads a tensor of unknown shape: the first op on the way there whose own
        inputs are known but whose output is not (an op with no spec layer, e.g. attention's
        ``q @ k.transpose(-2, -1)``); else None."""
        best, seen, stack = None, set(), [n]
        while stack:
            m = stack.pop()
            if m in seen:
                continue
            seen.add(m)
            unknown = [a for a in _tensor_nodes(m) if a in self.tensor and self.value.get(a) is None]
            if m is not n and not unknown and m.op in ("call_function", "call_method") \
                    and (best is None or self.index[m] < self.index[best]):
                best = m
            stack.extend(unknown)
        return best

    def shape(self, node):
        v = self.value.get(node)
        return tuple(v.shape) if isinstance(v, torch.Tensor) else None

    # -- leaf items
    def leaf_item(self, qualname: str, module, node) -> dict:
        if qualname not in self.leaf_items:
            self.leaf_items[qualname] = leaf_data(qualname, module, self.site_of_module(qualname) or site_of_node(node))
        return self.leaf_items[qualname]

    def site_of_module(self, qualname: str) -> Site | None:
        m = self.modules.get(qualname)
        return self.sites.get(id(m)) if m is not None else None


_NOT_A_MERGE = object()


def _merged_shape(n, ins):
    """The shape of an elementwise op (broadcast) or a cat, else _NOT_A_MERGE."""
    kind = R.merge_kind(n)
    if kind in ("add", "mul", "sub") or n.target in (operator.truediv, operator.neg, "div", "div_"):
        return _broadcast([s for s in ins if s is not None]) if None not in ins else None
    if kind != "cat":
        return _NOT_A_MERGE
    if not ins or None in ins:
        return None
    dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else 0)
    dim %= len(ins[0])
    return (*ins[0][:dim], sum(s[dim] for s in ins), *ins[0][dim + 1:])


def _broadcast(shapes):
    out: list = []
    for s in shapes:
        s = list(s)
        if len(s) > len(out):
            out = [1] * (len(s) - len(out)) + out
        s = [1] * (len(out) - len(s)) + s
        for i, (a, b) in enumerate(zip(out, s)):
            if a != b and 1 not in (a, b):
                return None
            out[i] = max(a, b) if 1 in (a, b) else a
    return tuple(out)


def _chunks(name, x, rest, kwargs):
    """Shapes of chunk(k, dim) / split(size, dim) parts."""
    dim = kwargs.get("dim", rest[1] if len(rest) > 1 else 0)
    if not isinstance(dim, int):
        return None
    dim %= len(x)
    if name == "chunk":
        k = kwargs.get("chunks", rest[0] if rest else None)
        if not isinstance(k, int) or k < 1:
            return None
        step = -(-x[dim] // k)
        sizes = [min(step, x[dim] - i) for i in range(0, x[dim], step)]
    elif name == "split":
        size = kwargs.get("split_size_or_sections", kwargs.get("split_size", rest[0] if rest else None))
        if isinstance(size, int) and size > 0:
            sizes = [min(size, x[dim] - i) for i in range(0, x[dim], size)]
        elif isinstance(size, (list, tuple)) and sum(size) == x[dim]:
            sizes = list(size)
        else:
            return None
    else:
        return None
    return [(*x[:dim], s, *x[dim + 1:]) for s in sizes]


def module_depth(model) -> int:
    """Deepest nesting of child modules (iterative: no recursion limit)."""
    deepest, stack, seen = 0, [(model, 0)], set()
    while stack:
        m, d = stack.pop()
        if id(m) in seen:
            continue
        seen.add(id(m))
        deepest = max(deepest, d)
        if deepest > MAX_MODULE_DEPTH:
            break
        stack.extend((c, d + 1) for c in m._modules.values() if c is not None)
    return deepest


def _fetch(model, target: str):
    obj = model
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _item_output(item: dict, shape) -> tuple | None:
    """Output shape (no batch) of one spec item on ``shape``, by cnnshape's analysis (the
    declared input sizes dropped: a mismatch is the analysis's to report later)."""
    key = (repr(_without_private(item)), tuple(shape))
    if key not in _OUTPUTS:
        if len(_OUTPUTS) > 4096:
            _OUTPUTS.clear()
        _OUTPUTS[key] = _analysed_output(item, shape)
    return _OUTPUTS[key]


_OUTPUTS: dict = {}


def _analysed_output(item: dict, shape) -> tuple | None:
    from ..analysis import analyze
    from ..errors import SpecError
    from ..spec import from_data

    try:
        rep = analyze(from_data({"input": list(shape), "layers": [strip_inputs(item)]}))
    except (SpecError, ValueError, TypeError):
        return None
    return tuple(rep.output) if rep.ok and rep.output is not None else None


def strip_inputs(item):
    """``item`` without the declared input sizes (in_channels, in_features, num_features)
    anywhere in it (they are inferred)."""
    if isinstance(item, list):
        return [strip_inputs(x) for x in item]
    if not isinstance(item, dict):
        return item
    return {k: strip_inputs(v) for k, v in item.items() if k not in INPUT_KEYS}


def leaf_data(qualname: str, module, site: Site | None) -> dict:
    """The spec item of a leaf module, keeping its declared input size (the analysis
    checks it against the incoming shape)."""
    from .torch_items import _item, _layer_class

    where = qualname or type(module).__name__
    if _layer_class(module) is None and not _recognised_block(module):
        raise ImportRefused(f"'{where}' is a {type(module).__module__}.{type(module).__name__}, which has no spec "
                            "layer", "see `cnnshape layers` for the layer types a spec has", site)
    try:
        d = _item(qualname, module, 0, "", keep_inputs=True)
    except CnnshapeError as exc:
        raise ImportRefused(str(exc), "", site) from None
    d.pop("name", None)
    return d


def _short(exc) -> str:
    text = str(exc)
    return text.split("; supported:")[0]


# ---------------------------------------------------------------------------- decomposition
@dataclass
class _Unit:
    """One step at a scope's level: a node of the scope itself, or a child scope (a module
    traced through) as a whole."""

    key: str | None          # child name (a child scope / leaf module) or None (a functional op)
    nodes: list              # its fx nodes, in order
    out: object = None       # the node giving its output
    preds: tuple = ()        # the units (or the SOURCE) it reads, in argument order
    scope: "object" = None   # the child _Scope, for a child scope


SOURCE = "<input>"


class Importer:
    """Decomposes a traced graph into spec items (see the module docstring)."""

    def __init__(self, model, graph: fx.Graph, input_shape, sites: dict | None = None):
        self.model = model
        self.g = _Graph(model, graph, input_shape, sites or {})
        self.sites = sites or {}
        self.called: dict[str, object] = {}
        self.flat: set = set()  # scopes whose items join their parent's (torch layer subclasses)

    # -- public
    def items(self) -> list:
        nodes = [n for n in self.g.nodes if n.op not in ("placeholder", "output", "get_attr")]
        out = [n for n in self.g.nodes if n.op == "output"][0]
        res = out.args[0]
        if not isinstance(res, fx.Node) or res not in self.g.tensor:
            raise ImportRefused(f"{type(self.model).__name__}.forward returns "
                                f"{'several values' if isinstance(res, (tuple, list, dict)) else 'no tensor'}; "
                                "a spec has one output", "return one tensor (wrap the model to pick it)",
                                self._forward_site(self.model))
        self._check_uncalled(nodes)
        src = [n for n in self.g.nodes if n.op == "placeholder"][0]
        items = self.scope((), nodes, src, res)
        if len(items) == 1 and items[0].pop("_whole_scope", False):
            items[0]["inline"] = True  # the model's own children: keys without a prefix
        return items

    # -- scopes
    def _path(self, node) -> tuple:
        """The module path a node runs in (a leaf: its parent's; its own name is the key)."""
        if node.op == "call_module":
            return tuple(node.target.split("."))
        stack = node.meta.get("nn_module_stack") or {}
        if not stack:
            return ()
        last = list(stack.values())[-1]
        path = last[0] if isinstance(last, tuple) else last
        return tuple(path.split(".")) if path else ()

    def scope(self, prefix: tuple, nodes: list, src, res) -> list:
        """Items computing ``res`` from ``src`` out of ``nodes`` (all inside ``prefix``): nested
        blocks where the dataflow is nested, else one Graph block."""
        called = dict(self.called)
        try:
            return self.nested_scope(prefix, nodes, src, res)
        except NotNested as exc:
            self.called = called
            self.flat.discard(prefix)
            return [GraphScope(self, prefix, nodes, src, res, exc).item()]

    def nested_scope(self, prefix: tuple, nodes: list, src, res) -> list:
        units = self._units(prefix, nodes)
        owner = {n: u for u in units for n in u.nodes}
        for rule in SCOPE_RULES:  # a whole module recognised as one block (DenseNet's dense block)
            item = rule(self, prefix, units, src, res)
            if item is not None:
                return [item]
        flat = self._mark_own_op(prefix, units)
        for u in units:
            if u.scope is not None:
                self._close_scope(u, owner, src, res)
        for u in units:
            self._link(prefix, u, owner, src)
        end = owner.get(res, SOURCE if res is src else None)
        if end is None:
            raise ImportRefused("the output does not come from the input", "", self._scope_site(prefix))
        parser = _Parser(self, prefix, units)
        items = parser.parse(end, SOURCE)
        parser.check_all_used(end)
        if prefix and any(it.get("type") == "_scale" for it in items):  # no Residual holds it
            raise OwnParameter(f"'{'.'.join(prefix)}' scales by its own parameter outside a residual block", "",
                               self._scope_site(prefix))
        if flat:
            self.flat.add(prefix)
            return _flattened(prefix, items)
        parser.assign_names(items)
        return items

    def _units(self, prefix: tuple, nodes: list) -> list:
        """The scope's steps: its own ops and leaf modules, and each child module traced
        through as one unit (a child that runs at two places between other ops: NotNested)."""
        units: list[_Unit] = []
        for n in nodes:
            if n not in self.g.tensor and n.op != "call_module":
                continue  # shape-only (size, getattr, floordiv, _assert): folded away
            path = self._path(n)
            key = path[len(prefix)] if len(path) > len(prefix) else None
            if key is None or (n.op == "call_module" and len(path) == len(prefix) + 1):
                units.append(_Unit(key, [n], n))
            elif units and units[-1].key == key and units[-1].scope is not None:
                units[-1].nodes.append(n)
            else:
                if any(u.key == key and u.scope is not None for u in units):
                    self._refuse_split(prefix, key, n)
                units.append(_Unit(key, [n], scope=True))
                units[-1].prefix = prefix + (key,)
        return units

    def _link(self, prefix: tuple, u: _Unit, owner: dict, src) -> None:
        """``u.preds``: the units (or SOURCE) whose outputs ``u`` reads, in argument order."""
        ins = [u.src] if u.scope is not None else [a for a in _tensor_nodes(u.out) if a in self.g.tensor or a is src]
        if u.scope is None and u.out.op == "call_method" and u.out.target in R.SHAPE_REFERENCE:
            ins = ins[:1]  # x.expand_as(y): y only lends its shape
        u.preds = tuple(owner.get(a, SOURCE if a is src else a) for a in ins)
        if any(isinstance(p, fx.Node) for p in u.preds):
            raise NotNested(f"{self._path_label(prefix)} reads a tensor computed outside it other than its "
                            "input (not nested blocks)", "", self._scope_site(prefix))

    def _mark_own_op(self, prefix: tuple, units: list) -> bool:
        """A subclass of a torch layer traced through (timm's BatchNormAct2d: F.batch_norm on its
        own parameters, then its drop and act children): the one op on the module's own
        parameters is that torch layer, read from the module; its other children must hold no
        state. True when the scope is one (its items then join the parent's, keys unchanged)."""
        from .torch_items import torch_base_class

        qual = ".".join(prefix)
        module = self.g.modules.get(qual) if prefix else None
        base = torch_base_class(module) if module is not None else None
        if base is None or any(_has_state(c) for c in module.children()):
            return False
        own = [u for u in units if u.scope is None and u.out.op in ("call_function", "call_method")
               and any(a in self.g.param_root and self.g.param_root[a].target.rpartition(".")[0] == qual
                       for a in _tensor_nodes(u.out))]
        if len(own) != 1:
            return False
        own[0].own = base
        return True

    def _close_scope(self, u: _Unit, owner: dict, src, res) -> None:
        """A child scope: its one input and one output, and its items (recursively)."""
        inside = set(u.nodes)
        ins, outs = [], []
        for n in u.nodes:
            for a in _tensor_nodes(n):
                if a not in inside and (a in self.g.tensor or a is src) and a not in self.g.params and a not in ins:
                    ins.append(a)
            if n is res or any(user not in inside and (user in self.g.tensor or user.op == "call_module")
                               for user in n.users):
                if n in self.g.tensor:
                    outs.append(n)
        prefix = u.prefix
        if len(ins) != 1 or len(outs) != 1:
            mod = self.g.modules.get(".".join(prefix))
            what = type(mod).__name__ if mod is not None else ".".join(prefix)
            many = "inputs" if len(ins) != 1 else "outputs"
            raise NotNested(f"'{'.'.join(prefix)}' ({what}) takes {len(ins)} tensor inputs and gives {len(outs)} "
                                f"outputs to the rest of the model: a spec block has one input and one output "
                                f"(its {many} are not nested blocks)",
                                "cnnshape imports models whose modules each map one tensor to one tensor",
                                self._scope_site(prefix))
        u.out = outs[0]
        u.src = ins[0]

    def leaf_call(self, n) -> dict:
        """The item of the call of a leaf module (a copy, with its site); a module with state
        called a second time is refused (shared weights)."""
        module = self.g.modules[n.target]
        if n.target in self.called and _has_state(module):
            raise ImportRefused(f"'{n.target}' ({type(module).__name__}) is called twice (shared weights): a spec "
                                "gives every layer its own parameters", "give each place its own module",
                                site_of_node(n))
        self.called[n.target] = n
        return {**self.g.leaf_items[n.target], "_site": self.g.site_of_module(n.target) or site_of_node(n)}

    def scope_items(self, u: _Unit) -> list:
        """The item of a child scope (a module traced through); the items of a torch layer
        subclass (they join the parent's)."""
        items = self.scope(u.prefix, u.nodes, u.src, u.out)
        return items if u.prefix in self.flat else [self.scope_item(u, items)]

    def scope_item(self, u: _Unit, items: list) -> dict:
        prefix = u.prefix
        if len(items) == 1 and items[0].get("_whole_scope"):  # the scope itself became a Graph
            return {**{k: v for k, v in items[0].items() if k != "_whole_scope"}, "name": prefix[-1]}
        name = prefix[-1]
        site = self._scope_site(prefix)
        merges = [x for x in items if x.get("type") in MERGE_BLOCKS and x.get("inline")]
        if merges and items[0] is merges[0]:
            first = items[0]
            rest = items[1:]
            if not rest or (first["type"] in ("Residual", "Concat") and not first.get("after")
                            and all(not (x.get("inline")) for x in rest)):
                first = dict(first)
                first.pop("inline", None)
                if rest:
                    first["after"] = rest
                first["name"] = name
                first["_site"] = site
                return first
        return {"type": "Sequential", "name": name, "body": items, "_site": site}

    def _path_label(self, prefix) -> str:
        mod = self.g.modules.get(".".join(prefix))
        return f"'{'.'.join(prefix)}' ({type(mod).__name__})" if prefix and mod is not None else \
            f"{type(self.model).__name__}.forward"

    def _scope_site(self, prefix) -> Site | None:
        return self.g.site_of_module(".".join(prefix))

    def _forward_site(self, module) -> Site | None:
        import inspect

        try:
            fn = type(module).forward
            lines, start = inspect.getsourcelines(fn)
            path = inspect.getsourcefile(fn)
        except (OSError, TypeError):
            return None
        for i, text in enumerate(lines):
            if text.strip().startswith("return"):
                return Site(path, start + i, len(text) - len(text.lstrip()) + 1)
        return Site(path, start, 1)

    def _refuse_split(self, prefix, key, node):
        path = ".".join(prefix + (key,))
        mod = self.g.modules.get(path)
        what = f" ({type(mod).__name__})" if mod is not None else ""
        raise NotNested(f"module '{path}'{what} runs at two places of the forward, between other operations: "
                            "its weights would be shared (or its parts interleaved), which nested spec blocks cannot "
                            "say", "give each place its own module", site_of_node(node) or self._scope_site(prefix))

    def _check_uncalled(self, nodes) -> None:
        """Modules with parameters or buffers that forward never calls (auxiliary heads)."""
        used, leaves = self._reached(nodes)
        unused: list = []
        for name, m in self.model.named_modules():
            if not name or name in used or any(u.startswith(name + ".") for u in used) \
                    or any(name.startswith(u + ".") for u in leaves) or any(name.startswith(x + ".") for x in unused):
                continue
            if any(True for _ in m.buffers(recurse=False)) or any(True for _ in m.parameters()):
                unused.append(name)
        if unused:
            shown = ", ".join(f"'{u}' ({type(self.g.modules[u]).__name__})" for u in unused[:5])
            more = f" and {len(unused) - 5} more" if len(unused) > 5 else ""
            raise ImportRefused(f"{shown}{more} {'is' if len(unused) == 1 else 'are'} never called by "
                                f"{type(self.model).__name__}.forward in eval mode (an auxiliary head?): its weights "
                                "have no place in a spec",
                                "build the model without it (e.g. torchvision's aux_logits=False), or delete the "
                                "attribute before importing", self.g.site_of_module(unused[0]))

    def _reached(self, nodes) -> tuple[set, set]:
        """(module paths forward runs in or reads parameters of, leaf modules it calls)."""
        used: set = set()
        leaves: set = set()
        for n in nodes:
            if n.op == "call_module":
                leaves.add(n.target)
            p = self._path(n)
            used.update(".".join(p[:i]) for i in range(1, len(p) + 1))
        used.update(n.target.rpartition(".")[0] for n in self.g.nodes if n.op == "get_attr")
        return used, leaves


MERGE_BLOCKS = ("Residual", "Concat", "SqueezeExcitation", "DenseBlock")


class _Parser:
    """Series-parallel parse of one scope's units from its output back to its input."""

    def __init__(self, imp: Importer, prefix: tuple, units: list):
        self.imp = imp
        self.g = imp.g
        self.prefix = prefix
        self.units = units
        self.order = {id(u): i for i, u in enumerate(units)}
        self.users: dict = {}
        for u in units:
            for p in u.preds:
                self.users.setdefault(id(p) if p is not SOURCE else SOURCE, []).append(u)
        self.used: set = set()
        module = self.g.modules.get(".".join(prefix))
        self.taken = set(module._modules) if module is not None else set()
        self.names: set = set()
        self.first: set = set()

    # -- names
    def name_for(self, base: str) -> str:
        from ..spec import RESERVED_NAMES as RESERVED

        name, k = base, 0
        while name in self.names or name in self.taken or name in RESERVED or name.isdigit():
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def assign_names(self, items: list) -> None:
        """Names in forward order: a module's first call keeps its attribute name, a second
        call of a stateless module and every functional op get a fresh name."""
        for it in items:
            if "_mod" in it:
                mod = it.pop("_mod")
                if mod not in self.first:
                    self.first.add(mod)
                    it["name"] = it.pop("_base")
                    self.names.add(it["name"])
                    continue
            if "_base" in it:
                it["name"] = self.name_for(it.pop("_base"))
            if it.get("inline"):
                for k in ("body", "after", "gate"):
                    if isinstance(it.get(k), list):
                        self.assign_names(it[k])
                if isinstance(it.get("shortcut"), list) and it.get("_own_shortcut"):
                    it.pop("_own_shortcut")
                    it["shortcut_name"] = self.name_for("shortcut")
                    self.assign_names(it["shortcut"])
                for b in it.get("branches") or ():
                    self.assign_names(b)

    def _pos(self, u) -> int:
        return -1 if u is SOURCE else self.order[id(u)]

    # -- parse
    def parse(self, end, start) -> list:
        items: list = []
        cur = end
        while cur is not start:
            if cur is SOURCE:
                raise NotNested(f"{self._where()}: a branch does not start where the others do (the graph is not "
                                    "nested blocks)", "", self._site(None))
            if len(self.users.get(id(cur), [])) > 1 and not getattr(cur, "_join", False):
                self._not_nested(cur)
            self.used.add(id(cur))
            kind = self._merge_kind(cur)
            if kind is not None:
                block, nxt = self._merge(cur, kind)
                items.append(block)
                cur = nxt
                continue
            tensor_preds = [p for p in cur.preds]
            if len(tensor_preds) != 1:
                self._refuse_op(cur, f"takes {len(tensor_preds)} tensors")
            items.extend(reversed(self._unit_items(cur)))
            cur = tensor_preds[0]
        items.reverse()
        return items

    def _where(self) -> str:
        mod = self.g.modules.get(".".join(self.prefix))
        return f"{type(mod).__name__} ('{'.'.join(self.prefix)}')" if self.prefix and mod is not None else \
            type(self.imp.model).__name__

    def _site(self, u) -> Site | None:
        if u is not None and u is not SOURCE:
            s = site_of_node(u.out)
            if s is not None:
                return s
        return self.imp._scope_site(self.prefix) or self.imp._forward_site(self.g.modules.get(".".join(self.prefix))
                                                                             or self.imp.model)

    def _not_nested(self, u):
        mod = self.g.modules.get(".".join(self.prefix))
        what = type(mod).__name__ if mod is not None else type(self.imp.model).__name__
        raise NotNested(f"{what}.forward uses an intermediate result at several places that are not nested "
                            "blocks (e.g. a skip connection that crosses another merge): a spec nests sequences "
                            "and parallel branches only", "a graph block for such models is planned",
                            self._site(u))

    def check_all_used(self, end) -> None:
        for u in self.units:
            if id(u) not in self.used and u.out in self.g.tensor:
                if u.scope is None and u.out.op == "call_module" and not _has_state(self.g.modules[u.out.target]):
                    continue
                if u.scope is None and u.out.op != "call_module":
                    continue  # a dead functional op (fx keeps unused nodes): no weights, no effect
                raise ImportRefused(f"{self._label(u)} is computed but its result is not used on the way to the "
                                    "output: its weights have no place in a spec", "remove it from forward",
                                    self._site(u))

    def _label(self, u) -> str:
        if u.scope is not None:
            return f"'{'.'.join(u.prefix)}'"
        return f"'{u.out.target}'" if u.out.op == "call_module" else f"'{u.out.name}'"

    # -- one unit
    def _unit_items(self, u) -> list:
        if u.scope is not None:
            return self.imp.scope_items(u)
        n = u.out
        if n.op == "call_module":
            return [self._module_item(u)]
        if getattr(u, "own", None) is not None:
            return [self._own_item(u)]
        return self._op_items(u)

    def _own_item(self, u) -> dict:
        """The op of a torch layer subclass on its own parameters: that torch layer (see
        Importer._mark_own_op), its arguments read from the module."""
        from .torch_items import _leaf

        qual = ".".join(self.prefix)
        module = self.g.modules[qual]
        site = self.g.site_of_module(qual) or site_of_node(u.out)
        try:
            item = _leaf(qual, module, keep_inputs=True, cls=u.own)
        except CnnshapeError as exc:
            raise ImportRefused(str(exc), "", site) from None
        item.pop("name", None)
        return {**item, "_own": True, "_site": site}

    def _module_item(self, u) -> dict:
        n = u.out
        item = self.imp.leaf_call(n)
        item["_base"] = n.target.split(".")[-1]
        item["_mod"] = n.target
        return item

    def _op_items(self, u) -> list:
        n = u.out
        if n.target is operator.getitem and isinstance(n.args[1], int):  # a part of chunk / split
            return [{"type": "_getitem", "index": n.args[1], "_site": site_of_node(n)}]
        call = self._call(n)
        if call is None:
            self._refuse_op(u, "has no spec layer")
        rule = (R.FUNCTIONS.get(n.target) if n.op == "call_function" else R.METHODS.get(n.target))
        items = rule[1](call)
        if items is None:
            self._refuse_op(u, "has no spec layer for these arguments")
        base = _op_name(n)
        out = []
        for k, it in enumerate(items):
            it = _without_defaults(it)
            it["_base"] = base if k == 0 else it["type"].lower()
            it["_site"] = site_of_node(n)
            out.append(it)
        return out

    def _call(self, n) -> "R.Call | None":
        rule = R.FUNCTIONS.get(n.target) if n.op == "call_function" else R.METHODS.get(n.target)
        if rule is None:
            return None
        return _Parser.bind(self.g, n, rule[0])

    @staticmethod
    def bind(g, n, params) -> "R.Call":
        """The node's arguments bound to ``params`` (positional names; ``*name`` collects the
        rest), values taken from the propagated graph ``g``."""
        args = list(n.args)
        bound: dict = {}
        for i, p in enumerate(params):
            if p.startswith("*"):
                bound[p[1:]] = tuple(g.value.get(a, a) if isinstance(a, fx.Node) else a for a in args[i:])
                break
            if i < len(args):
                bound[p] = _map(args[i], g.value.get)  # nodes, also inside tuples (size=(h, w))
        for k, v in n.kwargs.items():
            bound[k] = _map(v, g.value.get)
        bound = {k: (tuple(int(x) for x in v) if isinstance(v, torch.Size) else v) for k, v in bound.items()}
        ins = [g.shape(a) for a in _tensor_nodes(n) if a in g.tensor]
        name = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", str(n.target))
        return R.Call(name, bound, ins, g.shape(n), n)

    def _refuse_op(self, u, why: str, nested: bool = False):
        n = u.out
        root = None if nested else self.g.unknown_root(n)
        if root is not None:  # an op upstream has no layer: every shape after it is unknown; name that op
            n, why = root, "has no spec layer (the shapes after it are unknown)"
            path = self.imp._path(root)
            where = "'" + ".".join(path) + "'" if path else type(self.imp.model).__name__
        else:
            where = "'" + ".".join(self.prefix) + "'" if self.prefix else type(self.imp.model).__name__
        raise (NotNested if nested else ImportRefused)(
            f"{_op_label(n)} in {where}.forward {why}", "see the README's import section for the "
            "operations cnnshape maps", site_of_node(n) or self._site(None))

    # -- merges
    def _merge_kind(self, u) -> str | None:
        if u.scope is not None:
            return None
        kind = R.merge_kind(u.out)
        if kind is None:
            return None
        if kind == "mul" and self._scale_param(u.out) is not None and len(u.preds) == 1:
            return "scale"
        if len(u.preds) < 2 and kind != "cat":
            return None
        return kind

    def _scale_param(self, n):
        for a in _tensor_nodes(n):
            if a in self.g.params:
                return a
        return None

    def join(self, preds) -> object:
        """The nearest unit through which every path from the scope input to ``preds`` runs."""
        frontier = {id(p) if p is not SOURCE else SOURCE: p for p in preds}
        while len(frontier) > 1:
            key = max(frontier, key=lambda k: self._pos(frontier[k]))
            u = frontier.pop(key)
            if u is SOURCE:
                break
            for p in u.preds:
                frontier[id(p) if p is not SOURCE else SOURCE] = p
            if not u.preds:
                raise ImportRefused(f"{self._label(u)} does not depend on the input", "", self._site(u))
        return next(iter(frontier.values()))

    def _merge(self, u, kind: str):
        if kind == "scale":
            return {"type": "_scale", "param": self._scale_param(u.out), "_site": site_of_node(u.out)}, u.preds[0]
        preds = list(u.preds)
        if kind == "cat":
            return self._cat(u, preds)
        d = self.join(preds)
        if d is not SOURCE:
            d._join = True
        branches = [self._branch(p, d) for p in preds]
        branches, d = self._parts_as_slices(branches, d)
        builder = MERGE_BUILDERS[kind]
        return builder(self, u, branches, d), d

    def _parts_as_slices(self, branches, d):
        """Branches that start at parts of one split / chunk (``x1, x2 = x.split([a, b], 1)``):
        each part a Slice of the split's input, the merge then starting before the split."""
        if d is SOURCE or d.scope is not None or _name_of(d.out) not in ("chunk", "split", "tensor_split") \
                or not all(b and b[0].get("type") == "_getitem" for b in branches):
            return branches, d
        parts = self.g.value.get(d.out)
        x = self.g.shape(_tensor_nodes(d.out)[0])
        if not isinstance(parts, list) or x is None:
            return branches, d
        dim = next((i for i in range(1, len(x)) if parts[0].shape[i] != x[i]), None)
        if dim is None:
            return branches, d
        starts = [sum(int(q.shape[dim]) for q in parts[:i]) for i in range(len(parts))]
        out = []
        for b in branches:
            i = b[0]["index"]
            out.append([{"type": "Slice", "dim": dim, "start": starts[i], "length": int(parts[i].shape[dim]),
                         "_base": "slice", "_site": b[0].get("_site")}] + b[1:])
        self.used.add(id(d))
        nxt = d.preds[0]
        if nxt is not SOURCE:
            nxt._join = True
        return out, nxt

    def _branch(self, p, d) -> list:
        if p is d:
            return []
        return self.parse(p, d)

    def _cat(self, u, preds):
        n = u.out
        dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else 0)
        out = self.g.shape(n)
        n_dims = len(out) if out is not None else None
        if dim != 1 and not (n_dims and dim == 1 - n_dims):
            self._refuse_op(u, f"concatenates along dim {dim}; a Concat joins channels (dim 1)", nested=True)
        d = self.join(preds)
        if d is not SOURCE:
            d._join = True
        if self._is_chunk_split(preds, d):  # chunk into equal parts, each part a branch: Concat split
            return self._concat_split(u, preds, d)
        branches, d = self._parts_as_slices([self._branch(p, d) for p in preds], d)
        if len(branches) < 2:
            return {"type": "_identity"}, preds[0] if preds else d
        return {"type": "Concat", "inline": True, "flat": True, "branches": branches, "_site": site_of_node(u.out)}, d

    @staticmethod
    def _is_chunk_split(preds, d) -> bool:
        getitems = [p for p in preds if p is not SOURCE and p.scope is None and p.out.target is operator.getitem]
        return bool(getitems) and d is not SOURCE and d.scope is None \
            and d.out.op in ("call_method", "call_function") and _name_of(d.out) == "chunk"

    def _concat_split(self, u, preds, chunk):
        branches = [self._split_branch(p, chunk, i) for i, p in enumerate(preds)]
        nxt = chunk.preds[0]
        if nxt is not SOURCE:
            nxt._join = True
        self.used.add(id(chunk))
        return ({"type": "Concat", "inline": True, "flat": True, "split": True, "branches": branches,
                 "_site": site_of_node(u.out)}, nxt)

    def _split_branch(self, p, chunk, i) -> list:
        items = self.parse(p, chunk)
        first = items[0] if items else None
        if first is None or first.get("type") != "_getitem" or first.get("index") != i:
            self._refuse_op(chunk, "splits the channels in a way a Concat split cannot say", nested=True)
        return items[1:]


_SYMBOLS = {operator.add: "+", operator.iadd: "+=", operator.sub: "-", operator.isub: "-=", operator.mul: "*",
            operator.imul: "*=", operator.truediv: "/", operator.itruediv: "/=", operator.neg: "unary -",
            operator.pow: "**", operator.matmul: "@", operator.floordiv: "//"}


def _op_label(n) -> str:
    """How a refusal names op ``n``: ``method .mean``, ``'@' (_operator.matmul)``, ``torch.cumsum``."""
    what = n.target if isinstance(n.target, str) else \
        f"{getattr(n.target, '__module__', '') or ''}.{getattr(n.target, '__name__', n.target)}".lstrip(".")
    if n.target in _SYMBOLS:
        what = f"'{_SYMBOLS[n.target]}' ({what})"
    return ("method ." if n.op == "call_method" else "") + what


def _name_of(n) -> str:
    return n.target if isinstance(n.target, str) else getattr(n.target, "__name__", "")


def _op_name(n) -> str:
    base = _name_of(n).strip("_") or "op"
    return {"view": "flatten", "reshape": "flatten", "mean": "pool", "interpolate": "upsample"}.get(base, base)


def _without_defaults(item: dict) -> dict:
    """``item`` without the arguments that equal its layer type's defaults."""
    from ..layers import LAYER_TYPES

    cls = LAYER_TYPES.get(item.get("type"))
    if cls is None:
        return dict(item)
    return {k: v for k, v in item.items()
            if k not in cls.ARGS or cls.ARGS[k].required or v != cls.ARGS[k].default}


def _has_state(m) -> bool:
    return any(True for _ in m.parameters()) or any(True for _ in m.buffers())


def _one_seq(br) -> bool:
    """A branch that is one child module traced as an nn.Sequential (a shortcut by its name)."""
    return len(br) == 1 and br[0].get("type") == "Sequential" and not br[0].get("inline")


def _bare(br) -> bool:
    """A branch that is one module with state called as it is (timm's res_scale, a bare conv)."""
    return len(br) == 1 and "_mod" in br[0] and _stateful_item(br[0])


def _body_and_shortcut(p: _Parser, u, a: list, b: list) -> tuple[list, list]:
    """Which added branch is the body (its layers named on the block) and which the shortcut."""
    body, short = (b, a) if not a and b else (a, b)
    if short and _one_seq(body) and not _one_seq(short):
        body, short = short, body
    if short and _bare(body) and not _bare(short) and not _one_seq(short):
        body, short = short, body
    if short and not _one_seq(short) and not _bare(short) and any(_stateful_item(x) for x in short):
        p._refuse_op(u, "adds two branches that both hold layers named on the module itself; a Residual's "
                     "shortcut is one nn.Sequential child (e.g. self.shortcut = nn.Sequential(...))", nested=True)
    return body, short


def _layer_scale(p: _Parser, u, body: list) -> tuple[list, dict]:
    """The body without its scaling by a parameter of the block, and the Residual's
    layer-scale arguments for it ({} when the body is not scaled)."""
    scales = [i for i, x in enumerate(body) if x.get("type") == "_scale"]
    if not scales:
        return body, {}
    i = scales[-1]
    qual = p.g.param_root[body[i]["param"]].target
    owner, _, pname = qual.rpartition(".")
    tail = body[i + 1:]
    t = _fetch(p.imp.model, qual)
    if len(scales) > 1 or owner != ".".join(p.prefix) or not isinstance(t, nn.Parameter) \
            or any(x.get("type") not in ("StochasticDepth", "Identity", "Dropout", "DropPath", "Multiply")
                   for x in tail):  # constants commute with the scale
        p._refuse_op(u, "scales its body by a parameter that a Residual's layer_scale cannot hold")
    args: dict = {"layer_scale": 1e-6 if t.device.type == "meta" else float(t.detach().flatten()[0]) if t.numel()
                  else 1.0}
    if pname != "layer_scale":
        args["layer_scale_name"] = pname
    if t.dim() <= 1:
        args["layer_scale_flat" if t.dim() == 1 else "layer_scale_scalar"] = True
    return body[:i] + tail, args


def _shortcut_args(short: list) -> dict:
    """The Residual's shortcut arguments for the shortcut branch ``short``."""
    if not short:
        return {}
    if _bare(short) and not _one_seq(short):
        item = {k: v for k, v in short[0].items() if k not in ("_mod", "_base", "name")}
        return {"shortcut": [item], "shortcut_name": short[0]["_base"], "bare_shortcut": True}
    if _one_seq(short):
        return {"shortcut": short[0]["body"], **({"shortcut_name": short[0]["name"]}
                                                  if short[0]["name"] != "shortcut" else {})}
    return {"_own_shortcut": True, "shortcut": short}


def _residual(p: _Parser, u, branches, d) -> dict:
    """add(a, b): a Residual. The body is the branch whose layers are named on the block;
    a branch that is one child module (nn.Sequential) becomes the shortcut under its name."""
    if len(branches) != 2:
        p._refuse_op(u, "adds more than two branches", nested=True)
    a, b = ([x for x in br if x.get("type") != "Identity"] for br in branches)  # no-ops (timm's res_scale)
    body, short = _body_and_shortcut(p, u, a, b)
    body, scale = _layer_scale(p, u, body)
    if not body:
        p._refuse_op(u, "adds its input to itself")
    return {"type": "Residual", "inline": True, "body": body, "_site": site_of_node(u.out),
            **_shortcut_args(short), **scale}


def _stateful_item(x) -> bool:
    return x.get("type") not in _STATELESS


_STATELESS = {"Multiply", "Slice", "Permute", "ReLU", "ReLU6", "SiLU", "GELU", "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid", "Identity",
              "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d", "Flatten", "Dropout",
              "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "Upsample"}


def _multiply(p: _Parser, u, branches, d) -> dict:
    """x * gate(x): a SqueezeExcitation (the gate: the branch that is not the input)."""
    if len(branches) != 2 or (branches[0] and branches[1]) or not (branches[0] or branches[1]):
        p._refuse_op(u, "multiplies two computed tensors; cnnshape maps x * gate(x) (squeeze-excitation) only",
                     nested=True)
    gate = branches[0] or branches[1]
    return {"type": "SqueezeExcitation", "inline": True, "gate": gate, "_site": site_of_node(u.out)}


def _subtract(p: _Parser, u, branches, d) -> dict:
    """a - b (PoolFormer's pool(x) - x): a Residual adding a and b times -1 (exact in IEEE)."""
    if len(branches) != 2:
        p._refuse_op(u, "subtracts more than two tensors", nested=True)
    neg = {"type": "Multiply", "value": -1.0, "_base": "neg", "_site": site_of_node(u.out)}
    return _residual(p, u, [branches[0], branches[1] + [neg]], d)


MERGE_BUILDERS = {"add": _residual, "mul": _multiply, "sub": _subtract}


def _dense_block(imp: Importer, prefix: tuple, units: list, src, res) -> dict | None:
    """DenseNet's dense block: the scope's output is cat([x, y_1, .., y_n]) where copy i (a
    child module) starts with cat([x, y_1, .., y_{i-1}]) and gives y_i; the copies' layers
    must be the same (their channel counts are inferred)."""
    parts = _dense_parts(units, src, res)
    if parts is None:
        return None
    copies = [u for u in units if u.scope is not None]
    called = dict(imp.called)
    try:
        bodies = [_dense_copy(imp, u, parts, i) for i, u in enumerate(copies)]
    except OwnParameter:  # a copy scaled by its own parameter (RDNet): not a DenseBlock, a Graph opens it
        imp.called = called
        return None
    if any(b is None for b in bodies):
        return None

    def plain(items):
        return strip_inputs(_without_private(items))
    fmt = _copy_names_format([u.prefix[-1] for u in copies])
    if fmt is None or any(plain(b) != plain(bodies[0]) for b in bodies[1:]):
        return None
    body = strip_inputs(bodies[0])
    if len(body) == 1:
        body[0].pop("name", None)
    d = {"type": "DenseBlock", "inline": True, "n": len(copies), "body": body, "_site": site_of_node(res)}
    if fmt != "{index}":
        d["child_names"] = fmt
    return d


def _dense_parts(units: list, src, res):
    """The tensors the scope's final cat joins ([x, y_1, .., y_n], one y per child unit), or
    None when the scope does not end that way."""
    if not (res.op == "call_function" and res.target in (torch.cat, torch.concat) and len(units) >= 2):
        return None
    parts = res.args[0] if res.args else None
    copies = sum(1 for u in units if u.scope is not None)
    if not isinstance(parts, (list, tuple)) or len(parts) != copies + 1 or parts[0] is not src \
            or units[-1].out is not res and units[-1].nodes[-1] is not res:
        return None
    return parts


def _dense_copy(imp: Importer, u, parts, i: int) -> list | None:
    """The items of dense copy ``i`` (after its leading cat of the parts before it), or None
    when the unit is not that copy."""
    tensors = [n for n in u.nodes if n in imp.g.tensor]
    first = tensors[0] if tensors else None
    if first is None or first.op != "call_function" or first.target not in (torch.cat, torch.concat):
        return None
    got = first.args[0]
    if not isinstance(got, (list, tuple)) or list(got) != list(parts[:i + 1]) or parts[i + 1] not in u.nodes:
        return None
    return imp.scope(u.prefix, [n for n in u.nodes if n is not first], first, parts[i + 1])


def _copy_names_format(names: list) -> str | None:
    """The DenseBlock child-name format (``denselayer{number}``) giving ``names``, or None."""
    from ..layers.blocks._copies import copy_name

    fmt = None
    for cand in ("{index}", "{number}"):
        for stem in {n.rstrip("0123456789") for n in names}:
            if [copy_name(stem + cand, i) for i in range(len(names))] == names:
                fmt = stem + cand
    return fmt


#: rules that recognise a whole scope (a module's forward) as one block before the
#: series-parallel parse: ``rule(importer, prefix, units, src, res) -> item | None``; another
#: block type (e.g. a graph block for non-nested DAGs) registers its recogniser here, as
#: merge builders register in MERGE_BUILDERS and functional ops in fx_rules
SCOPE_RULES: list = [_dense_block]


def _flattened(prefix: tuple, items: list) -> list:
    """The items of a torch layer subclass, to be named in its parent's scope: the layer keeps
    the module's name (its keys); the stateless rest (act, drop) get fresh names after it."""
    name, qual = prefix[-1], ".".join(prefix)
    out = []
    for it in items:
        it = dict(it)
        if it.get("type") == "Identity":
            continue
        if it.pop("_own", False):
            it["_base"], it["_mod"] = name, qual
        else:
            it.pop("_mod", None)
            it["_base"] = f"{name}_{it.pop('_base', None) or it.pop('name', None) or it['type'].lower()}"
            it.pop("name", None)
        out.append(it)
    return out


def _without_private(items):
    if isinstance(items, list):
        return [_without_private(x) for x in items]
    if isinstance(items, dict):
        return {k: _without_private(v) for k, v in items.items() if not k.startswith("_")}
    return items


# ---------------------------------------------------------------------------- graphs
class GraphScope:
    """One scope (a module's forward) as a Graph block: every module that maps one tensor to
    one tensor in one contiguous stretch of the forward is one node (its own blocks inside,
    named by its path below the scope: ``tree1``, ``convs.0``); modules with several inputs
    or outputs, or called between other operations, are opened and their parts become nodes;
    functional ops are nodes (merges: Add / Mul / Cat with every input named)."""

    def __init__(self, imp: Importer, prefix: tuple, nodes: list, src, res, why: NotNested):
        self.imp, self.g, self.prefix, self.why = imp, imp.g, prefix, why
        self.nodes = [n for n in nodes if n in self.g.tensor or n.op == "call_module"]
        self.src, self.res = src, res
        self.index = {n: i for i, n in enumerate(self.nodes)}
        self.tensor_name: dict = {src: INPUT_NAME}  # fx node -> the node name holding its value
        self.out: list = []
        module = self.g.modules.get(".".join(prefix)) if prefix else imp.model
        self.taken = set(module._modules) if module is not None else set()
        self.used: set = set()
        self.parser = _Parser(imp, prefix, [])

    # -- names
    def rel(self, path: tuple) -> str:
        return ".".join(path[len(self.prefix):])

    def fresh(self, base: str) -> str:
        base = base.replace(".", "_") or "op"
        name, k = base, 0
        while name in self.used or name in self.taken or name == INPUT_NAME or name.isdigit():
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def emit(self, item: dict, srcs, name: str | None = None) -> str:
        item = {k: v for k, v in item.items() if k not in ("_base", "_mod", "_own", "name", "inline")}
        name = name if name is not None and name not in self.used else self.fresh(
            (name or item.get("type", "op")).lower())
        self.used.add(name)
        item["name"] = name
        srcs = list(srcs)
        prev = self.out[-1]["name"] if self.out else INPUT_NAME
        if srcs != [prev]:
            item["from"] = srcs[0] if len(srcs) == 1 else srcs
        self.out.append(item)
        return name

    def name_of(self, n) -> str:
        if n not in self.tensor_name:
            raise ImportRefused(f"'{getattr(n, 'name', n)}' in {self.imp._path_label(self.prefix)} is used before it "
                                "is computed (or is not a tensor the graph can name)", "", site_of_node(n))
        return self.tensor_name[n]

    # -- the scopes that become one node
    def _whole(self) -> dict:
        """path -> (its nodes, input, output) for each sub-module path that is one node."""
        paths: dict = {}
        for n in self.nodes:
            p = self.imp._path(n)
            for k in range(len(self.prefix) + 1, len(p) + (0 if n.op == "call_module" else 1)):
                paths.setdefault(p[:k], []).append(n)
        whole = {}
        for path, ns in paths.items():
            ends = self._ends(ns)
            if ends is not None and ".".join(path) in self.g.modules:
                whole[path] = (ns, *ends)
        return whole

    def _ends(self, ns: list):
        """(input, output) of a stretch of nodes that runs in one piece and maps one tensor to
        one tensor; None otherwise."""
        pos = [self.index[n] for n in ns]
        if pos != list(range(pos[0], pos[0] + len(pos))):
            return None  # called between other operations: opened
        inside = set(ns)
        ins = {a for n in ns for a in _tensor_nodes(n)
               if a not in inside and (a in self.g.tensor or a is self.src) and a not in self.g.params}
        outs = {n for n in ns if n is self.res or any(u not in inside and (u in self.g.tensor or u.op == "call_module")
                                                       for u in n.users)}
        return (next(iter(ins)), next(iter(outs))) if len(ins) == 1 and len(outs) == 1 else None

    # -- building
    def item(self) -> dict:
        whole = self._whole()
        done: set = set()
        for n in self.nodes:
            self._place(n, whole, done)
        out = self.name_of(self.res)
        site = self.imp._scope_site(self.prefix) or site_of_node(self.res)
        d = {"type": "Graph", "nodes": self.out, "_site": site, "_whole_scope": True}
        if not self.out:
            raise self.why
        if out != self.out[-1]["name"]:
            d["output"] = out
        return d

    def _place(self, n, whole: dict, done: set) -> None:
        """Node ``n`` as part of the outermost whole module around it (emitted at its first
        node), or as a node of its own. A whole module scaled by its own parameter (RDNet's
        block) is opened instead."""
        p = self.imp._path(n)
        top = next((p[:k] for k in range(len(self.prefix) + 1, len(p) + 1) if p[:k] in whole), None)
        if top is not None and not (n.op == "call_module" and top == p):
            if top in done:
                return
            called = dict(self.imp.called)
            try:
                self._scope_node(top, *whole[top])
                done.add(top)
                return
            except OwnParameter:
                self.imp.called = called
                del whole[top]
                return self._place(n, whole, done)
        if n.op == "call_module":
            self._module_node(n)
        else:
            self._op_node(n)

    def _scope_node(self, path, ns, src, res) -> None:
        items = self.imp.scope(path, ns, src, res)
        name = self.name_of(src)
        if path in self.imp.flat:  # a torch layer subclass: the layer keeps the path, the rest fresh names
            for it in items:
                name = self.emit(it, [name], self.rel(path) if it.get("_mod") == ".".join(path) else None)
        else:
            u = _Unit(path[-1], ns, res, scope=True)
            u.prefix = path
            name = self.emit(self.imp.scope_item(u, items), [name], self.rel(path))
        self.tensor_name[res] = name

    def _module_node(self, n) -> None:
        ins = [a for a in _tensor_nodes(n) if a in self.g.tensor or a is self.src]
        item = self.imp.leaf_call(n)
        rel = self.rel(tuple(n.target.split(".")))
        self.tensor_name[n] = self.emit(item, [self.name_of(a) for a in ins], rel)

    def _op_node(self, n) -> None:
        ins = [a for a in _tensor_nodes(n) if a in self.g.tensor or a is self.src]
        name = _name_of(n)
        if n.op == "call_method" and name in R.SHAPE_REFERENCE:
            ins = ins[:1]
        site = site_of_node(n)
        if name in ("chunk", "split", "tensor_split"):
            return  # its parts are Slices (getitem below)
        if n.target is operator.getitem and ins and _name_of(ins[0]) in ("chunk", "split", "tensor_split"):
            self._part(n, ins[0])
            return
        kind = self._merge_kind(n, ins)
        if kind is not None:
            self._merge_node(n, kind, ins, site)
            return
        if any(a in self.g.params for a in _tensor_nodes(n)):
            self._scale_node(n, ins, site)
            return
        if len(ins) != 1:
            raise ImportRefused(f"'{n.name}' in {self.imp._path_label(self.prefix)} takes {len(ins)} tensors and has "
                                "no merge layer", "", site)
        u = _Unit(None, [n], n, preds=(ins[0],))
        own = self.g.own_op_item(n)
        if own is not None:
            raise ImportRefused(f"'{n.name}' in {self.imp._path_label(self.prefix)}: a torch layer's own op inside a "
                                "graph", "", site)
        items = self.parser._op_items(u)
        cur = self.name_of(ins[0])
        for it in items:
            cur = self.emit(it, [cur], None if "_base" not in it else it["_base"])
        self.tensor_name[n] = cur

    def _scale_node(self, n, ins, site) -> None:
        """``x * self.gamma`` (viewed [1, C, 1, 1]) of an opened module: a LayerScale2d node named by
        that module's path, so that its gamma keeps the module's key (RDNet's ``dense_stages.6.2.gamma``);
        any other use of a parameter here is refused."""
        params = [a for a in _tensor_nodes(n) if a in self.g.params]
        root = self.g.param_root[params[0]]
        owner, _, pname = root.target.rpartition(".")
        t = _fetch(self.imp.model, root.target)
        out = self.g.shape(n)
        x = self.g.shape(ins[0]) if len(ins) == 1 else None
        path = tuple(owner.split(".")) if owner else ()
        if path == self.prefix and self.prefix:  # the graph's own module: its parent graph opens it
            raise OwnParameter(f"'{'.'.join(path)}' scales by its own parameter '{pname}'", "", site)
        if self._merge_kind(n, ins + params) != "mul" or len(params) != 1 or pname != "gamma" or x is None \
                or out != x or len(x) != 4 or t.numel() != x[1] or path[:len(self.prefix)] != self.prefix \
                or len(path) <= len(self.prefix) or not isinstance(t, nn.Parameter):
            raise ImportRefused(f"'{n.name}' in {self.imp._path_label(self.prefix)} uses a parameter of the module "
                                "itself inside a graph other than as a per-channel gamma; cnnshape holds "
                                "parameters in layers", "", site)
        value = 1e-6 if t.device.type == "meta" else float(t.detach().flatten()[0])
        item = {"type": "LayerScale2d", "init_values": value, "_site": site}
        if t.dim() != 1:
            item["flat"] = False
        self.tensor_name[n] = self.emit(item, [self.name_of(ins[0])], self.rel(path))

    def _merge_kind(self, n, ins) -> str | None:
        kind = R.merge_kind(n)
        if kind == "cat" or (kind is not None and len(ins) >= 2):
            return kind
        return None

    def _merge_node(self, n, kind, ins, site) -> None:
        names = [self.name_of(a) for a in ins]
        base = _op_name(n)
        if kind == "sub":
            neg = self.emit({"type": "Multiply", "value": -1.0, "_site": site}, [names[1]], "neg")
            names = [names[0], neg]
            kind = "add"
        if kind == "cat":
            dim = n.kwargs.get("dim", n.args[1] if len(n.args) > 1 else 0)
            rank = len(self.g.shape(n) or ()) or None
            item = {"type": "Cat", "_site": site}
            if rank is not None:
                dim = dim % rank
            if dim != 1:
                item["dim"] = dim
            if len(names) == 1:
                self.tensor_name[n] = names[0]
                return
        else:
            item = {"type": {"add": "Add", "mul": "Mul"}[kind], "_site": site}
        self.tensor_name[n] = self.emit(item, names, base)

    def _part(self, n, split) -> None:
        parts = self.g.value.get(split)
        i = n.args[1]
        x = self.g.shape(_tensor_nodes(split)[0])
        if not isinstance(parts, list) or x is None or not isinstance(i, int):
            raise ImportRefused(f"'{n.name}': a part of a split whose sizes are unknown", "", site_of_node(n))
        dim = next((d for d in range(1, len(x)) if parts[0].shape[d] != x[d]), None)
        src = self.name_of(_tensor_nodes(split)[0])
        if dim is None:
            self.tensor_name[n] = src
            return
        start = sum(int(q.shape[dim]) for q in parts[:i])
        item = {"type": "Slice", "dim": dim, "start": start, "length": int(parts[i].shape[dim]),
                "_site": site_of_node(n)}
        self.tensor_name[n] = self.emit(item, [src], "slice")


INPUT_NAME = "x"


# ---------------------------------------------------------------------------- finishing
def finish(items: list, table: dict, path: tuple) -> list:
    """Drop the private keys, record each item's site under its data path in ``table``,
    resolve leftovers (identities, getitems, unused scale markers)."""
    out = []
    for i, it in enumerate([x for x in items if x.get("type") != "_identity"]):
        site = it.get("_site")
        if it.get("type", "").startswith("_"):
            raise ImportRefused(f"an operation ({it['type'][1:]}) where cnnshape cannot place it", "", site)
        it = {k: v for k, v in it.items() if not k.startswith("_")}
        p = path + (i,)
        if site is not None:
            table[p] = (site.line, site.column)
        if isinstance(it.get("nodes"), list):
            it["nodes"] = finish(it["nodes"], table, p + ("nodes",))
        for k in ("body", "shortcut", "after", "gate"):
            if isinstance(it.get(k), list):
                it[k] = finish(it[k], table, p + (k,))
                if k in ("body", "gate", "shortcut"):
                    tidy_names(it[k])
        if isinstance(it.get("branches"), list):
            it["branches"] = [finish(b, table, p + ("branches", j)) for j, b in enumerate(it["branches"])]
        out.append(it)
    return out


def tidy_names(items: list, flat_offset: int | None = 0) -> None:
    """Drop names equal to their default (the position in a plain sequence)."""
    for i, it in enumerate(items):
        if flat_offset is not None and it.get("name") == str(i + flat_offset):
            it.pop("name")


def import_graph(model, input_shape, sites: dict | None = None) -> tuple[list, dict]:
    """(spec layers, positions table) for ``model`` on ``input_shape`` (one sample)."""
    graph = trace(model, input_shape)
    imp = Importer(model, graph, input_shape, sites)
    items = imp.items()
    names = getattr(type(model).forward, "__globals__", {}).get("SEQUENTIAL_NAMES")
    if isinstance(names, dict):  # a cnnshape-exported Net: its attributes back to the spec's layer names
        back = {attr: name for name, attr in names.items()}
        items = [{**it, "name": back.get(it["name"], it["name"])} if "name" in it else it for it in items]
    table: dict = {}
    layers = finish(items, table, ("layers",))
    tidy_names(layers)
    return layers, table
