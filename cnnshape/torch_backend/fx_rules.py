"""What the fx importer maps, in one place: torch functions/methods to spec items, and the
merge rules that turn an add / cat / multiply of branches into a block.

- ``FUNCTIONS`` / ``METHODS``: a traced ``call_function`` target (the function object) or
  ``call_method`` name -> a rule ``rule(call) -> list of items | None``. ``call`` is a
  :class:`Call` (the node's arguments bound to names, the input/output shapes with the
  batch axis). A rule returns the spec items that compute the op (``[]``: the op passes
  its input through, e.g. ``contiguous``), or None when it cannot (the importer refuses,
  naming the op and the user's line). Register more with :func:`function_rule` /
  :func:`method_rule`.
- ``MERGES``: a merge op (``operator.add``, ``torch.cat``, ...) -> the name of the rule
  that builds the block from the branches (``merge_rule``); a block type that other
  helpers add (a graph block) registers its rule with :func:`merge_rule`.

Plain data and small functions; torch is imported by the caller (the importer).
"""

import math
import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

#: the value of a shape that could not be propagated (a mistake upstream)
UNKNOWN = None


@dataclass
class Call:
    """One traced op: ``args`` bound to parameter names (positional first, then keywords);
    ``ins`` the shapes of its tensor inputs and ``out`` its output's shape (batched; None
    when unknown)."""

    name: str
    args: dict[str, Any]
    ins: list
    out: Any
    node: Any = field(default=None, repr=False)

    def arg(self, key: str, default=None):
        return self.args.get(key, default)


Rule = Callable[[Call], "list | None"]
FUNCTIONS: dict[Any, tuple[tuple[str, ...], Rule]] = {}
METHODS: dict[str, tuple[tuple[str, ...], Rule]] = {}
#: merge op -> rule name (see fx_import.MERGE_BUILDERS); the op's tensor arguments are branches
MERGES: dict[Any, str] = {}


def function_rule(targets, params: tuple[str, ...]):
    """Register ``rule`` for the functions ``targets`` (``params``: positional names)."""
    def deco(rule):
        for t in targets:
            if t is not None:
                FUNCTIONS[t] = (params, rule)
        return rule
    return deco


def method_rule(names, params: tuple[str, ...]):
    def deco(rule):
        for n in names:
            METHODS[n] = (params, rule)
        return rule
    return deco


def merge_rule(targets, kind: str) -> None:
    for t in targets:
        MERGES[t] = kind


def _rank(call: Call) -> int | None:
    shape = call.ins[0] if call.ins else None
    return None if shape is None else len(shape) - 2


# ------------------------------------------------------------------ activations
def _activation(type_name: str, keys: tuple[str, ...] = ()):
    def rule(call: Call):
        item = {"type": type_name}
        for k in keys:
            if k in call.args and call.args[k] is not None:
                item[k] = call.args[k]
        if call.args.get("inplace") is True:
            item["inplace"] = True
        return [item]
    return rule


_ACTS = [
    ((F.relu, torch.relu, torch.relu_, F.relu_), ("input", "inplace"), "ReLU", (), ("relu", "relu_")),
    ((F.relu6,), ("input", "inplace"), "ReLU6", (), ()),
    ((F.leaky_relu,), ("input", "negative_slope", "inplace"), "LeakyReLU", ("negative_slope",), ()),
    ((F.elu,), ("input", "alpha", "inplace"), "ELU", ("alpha",), ()),
    ((F.gelu,), ("input",), "GELU", ("approximate",), ()),
    ((F.silu,), ("input", "inplace"), "SiLU", (), ()),
    ((torch.sigmoid, F.sigmoid), ("input",), "Sigmoid", (), ("sigmoid",)),
    ((torch.tanh, F.tanh), ("input",), "Tanh", (), ("tanh",)),
    ((F.hardswish,), ("input", "inplace"), "Hardswish", (), ()),
    ((F.hardsigmoid,), ("input", "inplace"), "Hardsigmoid", (), ()),
    ((F.mish,), ("input", "inplace"), "Mish", (), ()),
    ((F.selu, torch.selu), ("input", "inplace"), "SELU", (), ()),
    ((F.celu,), ("input", "alpha", "inplace"), "CELU", ("alpha",), ()),
    ((F.softplus,), ("input", "beta", "threshold"), "Softplus", ("beta", "threshold"), ()),
    ((F.hardtanh,), ("input", "min_val", "max_val", "inplace"), "Hardtanh", ("min_val", "max_val"), ()),
    ((F.softmax, torch.softmax), ("input", "dim"), "Softmax", ("dim",), ("softmax",)),
    ((F.log_softmax, torch.log_softmax), ("input", "dim"), "LogSoftmax", ("dim",), ("log_softmax",)),
    ((F.glu,), ("input", "dim"), "GLU", ("dim",), ()),
]
for _fns, _params, _type, _keys, _methods in _ACTS:
    function_rule(_fns, _params)(_activation(_type, _keys))
    if _methods:
        method_rule(_methods, ("self",) + _params[1:])(_activation(_type, _keys))


# ------------------------------------------------------------------ pooling, dropout, resampling, padding
def _pool(kind: str):
    def rule(call: Call):
        rank = _rank(call)
        if rank is None or rank < 1:
            return None
        item = {"type": f"{kind}{rank}d", "kernel_size": _plain(call.arg("kernel_size"))}
        stride = _plain(call.arg("stride"))
        if stride not in (None, [], ()):
            item["stride"] = stride
        for k, default in (("padding", 0), ("dilation", 1), ("ceil_mode", False), ("count_include_pad", True),
                           ("divisor_override", None)):
            v = _plain(call.arg(k, default))
            if v != default:
                item[k] = v
        if call.arg("return_indices"):
            return None
        return [item]
    return rule


def _adaptive(kind: str):
    def rule(call: Call):
        rank = _rank(call)
        if rank is None or rank < 1 or call.arg("return_indices"):
            return None
        return [{"type": f"Adaptive{kind}Pool{rank}d", "output_size": _plain(call.arg("output_size"))}]
    return rule


def _plain(v):
    if isinstance(v, (tuple, list)):
        v = list(v)
        return v[0] if v and all(x == v[0] for x in v) else v
    return v


_POOL = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_AVG = ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override")
function_rule((F.max_pool1d, F.max_pool2d, F.max_pool3d, torch.max_pool1d, torch.max_pool2d, torch.max_pool3d),
              _POOL)(_pool("MaxPool"))
function_rule((F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, torch.avg_pool1d), _AVG)(_pool("AvgPool"))
function_rule((F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, torch.adaptive_avg_pool1d),
              ("input", "output_size"))(_adaptive("Avg"))
function_rule((F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d),
              ("input", "output_size", "return_indices"))(_adaptive("Max"))


def _dropout(type_name: str):
    def rule(call: Call):
        item = {"type": type_name}
        p = call.arg("p", 0.5)
        if p != 0.5:
            item["p"] = float(p)
        return [item]
    return rule


for _fn, _t in ((F.dropout, "Dropout"), (F.dropout1d, "Dropout1d"), (F.dropout2d, "Dropout2d"),
                (F.dropout3d, "Dropout3d"), (F.alpha_dropout, "AlphaDropout"),
                (F.feature_alpha_dropout, "FeatureAlphaDropout")):
    function_rule((_fn,), ("input", "p", "training", "inplace"))(_dropout(_t))


@function_rule((F.interpolate, getattr(F, "upsample", None)),
               ("input", "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias"))
def _interpolate(call: Call):
    if call.arg("antialias"):
        return None
    item: dict = {"type": "Upsample"}
    for k in ("size", "scale_factor", "align_corners", "recompute_scale_factor"):
        v = _plain(call.arg(k))
        if v is not None:
            item[k] = float(v) if k == "scale_factor" and isinstance(v, (int, float)) else v
    if call.arg("mode", "nearest") != "nearest":
        item["mode"] = call.arg("mode")
    return [item]


@function_rule((F.pad,), ("input", "pad", "mode", "value"))
def _pad(call: Call):
    pad = list(call.arg("pad") or ())
    if not pad or len(pad) % 2:
        return None
    rank = len(pad) // 2
    mode = call.arg("mode", "constant") or "constant"
    value = call.arg("value")
    kind = {"constant": "Constant", "reflect": "Reflection", "replicate": "Replication", "circular": "Circular"}.get(mode)
    if kind is None or rank > 3:
        return None
    if kind == "Constant":
        if not value:
            return [{"type": f"ZeroPad{rank}d", "padding": pad}]
        return [{"type": f"ConstantPad{rank}d", "padding": pad, "value": float(value)}]
    return [{"type": f"{kind}Pad{rank}d", "padding": pad}]


# ------------------------------------------------------------------ reductions and reshapes
def _mean(call: Call):
    shape = call.ins[0] if call.ins else None
    dims = call.arg("dim")
    if shape is None or dims is None:
        return None
    dims = [dims] if isinstance(dims, int) else list(dims)
    n = len(shape)
    dims = sorted(d % n for d in dims)
    if n < 3 or n > 5:
        return None
    pool = {"type": f"AdaptiveAvgPool{n - 2}d", "output_size": 1}
    keep = call.arg("keepdim", False)
    if dims == list(range(2, n)):  # channels first
        return [pool] if keep else [pool, {"type": "Flatten"}]
    if dims == list(range(1, n - 1)):  # channels last ([N, H, W, C], timm's NHWC heads)
        first = [0, n - 1, *range(1, n - 1)]
        back = [0, *range(2, n), 1]
        return [{"type": "Permute", "dims": first}, pool] + \
            ([{"type": "Permute", "dims": back}] if keep else [{"type": "Flatten"}])
    return None


function_rule((torch.mean,), ("input", "dim", "keepdim"))(_mean)
method_rule(("mean",), ("self", "dim", "keepdim"))(_mean)


def _reshape(call: Call):
    """view / reshape / flatten / squeeze / unsqueeze that keep the batch axis: Flatten,
    Unflatten, or both (nothing when the shape is unchanged)."""
    if call.ins and call.ins[0] is not None and call.out is not None:
        s, t = tuple(call.ins[0]), tuple(call.out)
        if not s or not t or s[0] != t[0]:
            return None
        if s == t:
            return []
        if len(t) == 2:
            return [{"type": "Flatten"}]
        if len(s) == 2:
            return [{"type": "Unflatten", "dim": 1, "unflattened_size": list(t[1:])}]
        return [{"type": "Flatten"}, {"type": "Unflatten", "dim": 1, "unflattened_size": list(t[1:])}]
    return _flatten_by_args(call)


#: ops whose output shape :func:`reshaped` computes
RESHAPES = ("view", "reshape", "flatten", "squeeze", "unsqueeze", "view_as", "reshape_as")


def reshaped(name: str, x, rest, kwargs):
    """The output shape of view / reshape / flatten / squeeze / unsqueeze on shape ``x``
    (``rest``: the arguments after the tensor, values already propagated); None when the
    arguments do not fit ``x`` (the analysis then reports the mistake)."""
    rule = _RESHAPED.get(name)
    return rule(tuple(x), rest, kwargs) if rule is not None else None


def _as(x, rest, kwargs):
    other = rest[0] if rest else None
    return tuple(other.shape) if isinstance(other, torch.Tensor) and math.prod(other.shape) == math.prod(x) else None


def _view(x, rest, kwargs):
    n = math.prod(x)
    sizes = kwargs.get("shape", kwargs.get("size", rest))
    if len(sizes) == 1 and isinstance(sizes[0], (list, tuple, torch.Size)):
        sizes = sizes[0]
    if not all(isinstance(v, int) for v in sizes) or list(sizes).count(-1) > 1:
        return None
    known = math.prod(v for v in sizes if v != -1)
    if -1 in sizes:
        if known == 0 or n % known:
            return None
        sizes = [n // known if v == -1 else v for v in sizes]
    return tuple(sizes) if math.prod(sizes) == n else None


def _flattened(x, rest, kwargs):
    start = kwargs.get("start_dim", rest[0] if rest else 0) % len(x)
    end = kwargs.get("end_dim", rest[1] if len(rest) > 1 else -1) % len(x)
    return (*x[:start], math.prod(x[start:end + 1]), *x[end + 1:]) if start <= end else None


def _squeezed(x, rest, kwargs):
    dims = kwargs.get("dim", rest[0] if rest else None)
    if dims is None:
        return tuple(v for v in x if v != 1)
    dims = {d % len(x) for d in ([dims] if isinstance(dims, int) else dims)}
    return tuple(v for i, v in enumerate(x) if not (i in dims and v == 1))


def _unsqueezed(x, rest, kwargs):
    dim = kwargs.get("dim", rest[0] if rest else None)
    if not isinstance(dim, int):
        return None
    dim %= len(x) + 1
    return (*x[:dim], 1, *x[dim:])


_RESHAPED = {"view_as": _as, "reshape_as": _as, "view": _view, "reshape": _view, "flatten": _flattened,
             "squeeze": _squeezed, "unsqueeze": _unsqueezed}


def _flatten_by_args(call: Call):
    """Shapes unknown (a mistake upstream): ``view(-1, k)``, ``view(n, -1)``,
    ``flatten(x, 1)`` are still a Flatten (the analysis then finds the mistake)."""
    if call.name in ("flatten",):
        return [{"type": "Flatten"}] if call.arg("start_dim", 0) == 1 and call.arg("end_dim", -1) == -1 else None
    sizes = call.arg("shape")
    if isinstance(sizes, (list, tuple)) and len(sizes) == 1 and isinstance(sizes[0], (list, tuple)):
        sizes = sizes[0]
    if isinstance(sizes, (list, tuple)) and len(sizes) == 2 and -1 in sizes:
        return [{"type": "Flatten"}]
    return None


function_rule((torch.flatten,), ("input", "start_dim", "end_dim"))(_reshape)
method_rule(("flatten",), ("self", "start_dim", "end_dim"))(_reshape)
function_rule((torch.reshape, torch.squeeze, torch.unsqueeze), ("input", "shape"))(_reshape)
method_rule(("view", "reshape", "squeeze", "unsqueeze", "view_as", "reshape_as"), ("self", "*shape"))(_reshape)
#: methods whose tensor argument other than ``self`` only lends its shape
SHAPE_REFERENCE = ("expand_as", "type_as", "view_as", "reshape_as")


@function_rule((torch.permute,), ("input", "dims"))
def _permute(call: Call):
    dims = call.arg("dims")
    return [{"type": "Permute", "dims": list(dims)}] if dims is not None else None


@method_rule(("permute",), ("self", "*dims"))
def _permute_m(call: Call):
    dims = call.arg("dims")
    if isinstance(dims, (list, tuple)) and len(dims) == 1 and isinstance(dims[0], (list, tuple)):
        dims = dims[0]
    return [{"type": "Permute", "dims": list(dims)}] if dims else None


def _transpose(call: Call):
    shape = call.ins[0] if call.ins else None
    a, b = call.arg("dim0"), call.arg("dim1")
    if shape is None or a is None or b is None:
        return None
    dims = list(range(len(shape)))
    a, b = a % len(shape), b % len(shape)
    dims[a], dims[b] = dims[b], dims[a]
    return [{"type": "Permute", "dims": dims}]


function_rule((torch.transpose,), ("input", "dim0", "dim1"))(_transpose)
method_rule(("transpose",), ("self", "dim0", "dim1"))(_transpose)


def _identity(call: Call):
    return []


method_rule(("contiguous", "clone", "float", "detach", "expand_as", "expand", "type_as"), ("self", "*rest"))(_identity)
method_rule(("to",), ("self", "*rest"))(_identity)
function_rule((torch.clone,), ("input",))(_identity)


# ------------------------------------------------------------------ constants
def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _scalar(call: Call, divide: bool = False):
    """x * c, c * x, x / c (NFNet's alpha, a distilled head's (a + b) / 2): a Multiply."""
    a, b = call.arg("input"), call.arg("other")
    if _number(b) and not _number(a):
        c = b
    elif _number(a) and not _number(b) and not divide:
        c = a
    else:
        return None
    if divide:
        if c == 0:
            return None
        c = 1.0 / c
    return [{"type": "Multiply", "value": float(c)}]


def _plus_zero(call: Call):
    """0 + x, x + 0 (a sum started at 0, as timm's MobileOne block does): nothing."""
    a, b = call.arg("input"), call.arg("other")
    return [] if (_number(a) and a == 0) or (_number(b) and b == 0) else None


function_rule((operator.add, operator.iadd, torch.add), ("input", "other"))(_plus_zero)
method_rule(("add", "add_"), ("input", "other"))(_plus_zero)
function_rule((operator.mul, operator.imul, torch.mul), ("input", "other"))(_scalar)
method_rule(("mul", "mul_"), ("input", "other"))(_scalar)
function_rule((operator.truediv, operator.itruediv, torch.div), ("input", "other"))(
    lambda call: _scalar(call, divide=True))
method_rule(("div", "div_"), ("input", "other"))(lambda call: _scalar(call, divide=True))
function_rule((operator.neg, torch.neg), ("input",))(lambda call: [{"type": "Multiply", "value": -1.0}])
method_rule(("neg",), ("input",))(lambda call: [{"type": "Multiply", "value": -1.0}])


# ------------------------------------------------------------------ indexing
@function_rule((operator.getitem,), ("input", "index"))
def _index(call: Call):
    """``x[:, :c]``, ``x[:, a:b, :, :]``, ``x[..., a:b]``: a Slice of one axis (nothing when
    every axis is kept whole); other indexing (steps, integers, tensors) has no layer."""
    shape, idx = (call.ins[0] if call.ins else None), call.arg("index")
    if shape is None:
        return None
    idx = idx if isinstance(idx, tuple) else (idx,)
    if sum(1 for i in idx if i is Ellipsis) > 1 or not all(isinstance(i, slice) or i is Ellipsis for i in idx):
        return None
    if Ellipsis in idx:
        k = idx.index(Ellipsis)
        idx = idx[:k] + (slice(None),) * (len(shape) - len(idx) + 1) + idx[k + 1:]
    if len(idx) > len(shape):
        return None
    cut = []
    for dim, (sl, size) in enumerate(zip(idx, shape)):
        start, stop, step = sl.indices(size)
        if step != 1:
            return None
        if (start, stop) != (0, size):
            cut.append((dim, start, stop - start))
    if not cut:
        return []
    if len(cut) > 1 or cut[0][0] == 0 or cut[0][2] < 1:
        return None
    dim, start, length = cut[0]
    return [{"type": "Slice", "dim": dim, "start": start, "length": length}]


# ------------------------------------------------------------------ merges (blocks)
merge_rule((operator.add, operator.iadd, torch.add), "add")
merge_rule((operator.sub, operator.isub, torch.sub), "sub")
#: tensor methods that are merges, as the function MERGES knows them by
METHOD_MERGES = {"add": operator.add, "add_": operator.iadd, "mul": operator.mul, "mul_": operator.imul,
                 "sub": operator.sub, "sub_": operator.isub}


def merge_kind(node) -> str | None:
    """The MERGES kind of a traced call (``a + b``, ``a.mul_(b)``, ``torch.cat``), else None."""
    if node.op == "call_function":
        return MERGES.get(node.target)
    return MERGES.get(METHOD_MERGES.get(node.target)) if node.op == "call_method" else None
merge_rule((operator.mul, operator.imul, torch.mul), "mul")
merge_rule((torch.cat, torch.concat, getattr(torch, "concatenate", None)), "cat")
MERGES.pop(None, None)


def channel_shuffle_groups(shapes: list) -> int | None:
    """The groups of a view [N, g, C/g, *S] -> transpose(1, 2) -> view [N, C, *S] (a channel
    shuffle), from the three shapes (input of the first view, its output, the final output)."""
    if any(s is None for s in shapes):
        return None
    a, b, c = shapes
    if len(b) != len(a) + 1 or tuple(c) != tuple(a) or b[1] * b[2] != a[1] or tuple(b[3:]) != tuple(a[2:]):
        return None
    return b[1]


def numel(shape) -> int:
    return math.prod(shape)
