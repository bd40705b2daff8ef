"""Brute force with torch: the input sizes at which a spec's network runs forward, one axis
varied at a time. The oracle of tests/test_sizes*.py.

Independent of the code under test: the network is built here from the spec's dict (or
its YAML file, read with ruamel.yaml) out of plain ``torch.nn`` / torchvision modules (timm's for its layer types, as
tests/test_timm_layers.py builds them; ``x.narrow`` for Slice), as
tests/oracle.py does for flat specs (``in_channels``/``in_features``... taken from torch's
real tensors at the declared input, so the weights are fixed there, as in a compiled
model), and blocks are wired here with torch's own operators: a Residual adds with ``+``
and a SqueezeExcitation multiplies with ``*`` (both broadcast as torch does), a Concat
and a DenseBlock ``torch.cat``; a Graph's nodes read the tensors their ``from:`` names and
its Add / Mul / Cat merges are torch's ``+`` / ``*`` / ``torch.cat``. Nothing from cnnshape builds or runs the network
(``as_progression`` only reads the golden file's sets into cnnshape's type).

Each size gets an outcome (:func:`outcomes`): ``ran``; ``broadcast`` (torch ran, but an
add or multiply broadcast operands of different shapes — cnnshape is stricter and refuses
it: a Residual's body and shortcut must have equal shapes, a gate must be ``[C, 1, ...]``
or the input's shape); ``empty`` (a layer produced a zero-size tensor — torch returns one
on some backends and raises on others; cnnshape refuses it, see docs/spec-extensions.md
"Deliberately stricter than torch"); ``failed`` (torch raised). :func:`brute` is the set
that ``ran``, which is what ``cnnshape sizes`` must equal.
"""

import copy
import os
import warnings

import torch

from .oracle import module_class, torch_kwargs

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCKS = ("Sequential", "Repeat", "Residual", "Concat", "SqueezeExcitation", "DenseBlock", "Graph")
MERGES = ("Add", "Mul", "Cat")


class _Stop(Exception):
    """A forward that did not run cleanly: ``outcome`` is 'broadcast', 'empty' or 'failed'."""

    def __init__(self, outcome: str, why: str):
        super().__init__(why)
        self.outcome = outcome


def _spec_dict(spec) -> dict:
    if isinstance(spec, dict):
        return spec
    from ruamel.yaml import YAML

    path = spec if os.path.isabs(spec) or os.path.exists(spec) else os.path.join(ROOT, spec)
    with open(path, encoding="utf-8") as f:
        return YAML(typ="safe", pure=True).load(f)


def _item(d) -> dict:
    return {"type": d} if isinstance(d, str) else d


def _named(items: list, key: str):
    """The item named ``key`` among ``items`` and their descendants (a dotted path walks
    down by names; a number is an index among ``items``)."""
    head, _, rest = key.partition(".")
    for i, d in enumerate(items):
        if d.get("name") == head or (head.isdigit() and int(head) == i):
            if not rest:
                return d
            return _named(_children(d), rest)
    for d in items:
        found = _named(_children(d), key) if not rest else None
        if found is not None:
            return found
    return None


def _children(d: dict) -> list:
    out = []
    for key in ("body", "shortcut", "after", "gate"):
        out += [_item(x) for x in d.get(key) or []]
    for branch in d.get("branches") or []:
        out += [_item(x) for x in branch]
    return out


def _first_copy(body: list, first: dict | None) -> list:
    """Repeat's first copy: ``first`` = {child path: {argument: value}} or {argument of the
    repeated block (a one-item body): value}."""
    body = [_item(x) for x in copy.deepcopy(body)]
    for key, change in (first or {}).items():
        target = _named(body, key)
        if target is not None and isinstance(change, dict):
            target.update(change)
        elif len(body) == 1:
            body[0][key] = change
        else:
            raise AssertionError(f"first: no child {key!r}")
    return body


class _Net:
    """A callable network built at the declared input; ``run(x)`` raises :class:`_Stop`."""

    def __init__(self, items: list, x: torch.Tensor):
        self.steps, self.y = _build_seq(items, x)

    def run(self, x):
        return _run_seq(self.steps, x)


class _Fn(torch.nn.Module):
    """A torch expression as a module: ``Slice`` (``x.narrow``), ``Multiply`` (``x * value``)
    and ``SpaceToDepth`` (timm's reshape, written out: timm's class accepts block size 4 only)."""

    def __init__(self, d: dict):
        super().__init__()
        self.d = d

    def forward(self, x):
        d = self.d
        if d["type"] == "Slice":
            return x.narrow(d["dim"], d.get("start", 0), d["length"])
        if d["type"] == "SpaceToDepth":
            bs = d.get("block_size", 4)
            n, c, h, w = x.shape
            x = x.view(n, c, h // bs, bs, w // bs, bs).permute(0, 3, 5, 1, 2, 4).contiguous()
            return x.view(n, c * bs * bs, h // bs, w // bs)
        return x * d["value"]


def _module(d: dict, x: torch.Tensor):
    """torch.nn's / torchvision's module for ``d``, else timm's (the reference of
    tests/test_timm_layers.py), else a torch expression."""
    t = d["type"]
    if t in ("Slice", "Multiply", "SpaceToDepth"):
        return _Fn(d)
    from .timm_ref import ref_module

    ref = ref_module(d, tuple(x.shape[1:]))
    if ref is not None:
        return ref
    try:
        cls = module_class(t)
    except AttributeError:
        from .test_timm_layers import _timm_module

        return _timm_module(d, tuple(x.shape[1:]))
    return cls(**torch_kwargs(d, x))


def _leaf(d: dict, x: torch.Tensor):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = _module(d, x)
    module.eval()
    return ("leaf", module), _call(module, x)


def _call(module, x):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = module(x)
    except Exception as exc:  # noqa: BLE001 - torch's refusal is the answer
        raise _Stop("failed", f"{type(module).__name__}: {exc}") from None
    y = y[0] if isinstance(y, tuple) else y  # return_indices (allowed on the last layer only)
    if y.numel() == 0:
        raise _Stop("empty", f"{type(module).__name__} gave {tuple(y.shape)}")
    return y


def _build_seq(items, x):
    steps = []
    for d in items:
        step, x = _build(_item(d), x)
        steps.append(step)
    return steps, x


def _run_seq(steps, x):
    for step in steps:
        x = _run(step, x)
    return x


def _merge(op: str, a, b):
    """torch's ``a + b`` (add) or ``a * b`` (gate: b scales a; scale: a layer scale).
    'broadcast' when torch ran it by broadcasting beyond what cnnshape accepts: an add of
    different shapes, a gate other than a's shape or one value per channel ``[N, C, 1, ...]``."""
    try:
        y = a + b if op == "add" else a * b
    except RuntimeError as exc:
        raise _Stop("failed", f"{op}: {exc}") from None
    per_channel = (*a.shape[:2], *[1] * (a.dim() - 2))
    if op == "mul":  # Graph's Mul: equal shapes or size-1 spatial axes (cnnshape's rule)
        big = a if a.dim() >= b.dim() and a.numel() >= b.numel() else b
        ok = all(tuple(o.shape) in (tuple(big.shape), (*big.shape[:2], *[1] * (big.dim() - 2))) for o in (a, b))
        if not ok or y.shape != big.shape:
            raise _Stop("broadcast", f"mul broadcast {tuple(a.shape)} and {tuple(b.shape)}")
        return y
    if op == "add" and a.shape != b.shape or op == "gate" and tuple(b.shape) not in (tuple(a.shape), per_channel):
        raise _Stop("broadcast", f"{op} broadcast {tuple(a.shape)} and {tuple(b.shape)}")
    return y


def _cat(parts):
    try:
        return torch.cat(parts, dim=1)
    except RuntimeError as exc:
        raise _Stop("failed", f"cat: {exc}") from None


def _se_gate(d: dict, x):
    if d.get("gate"):
        return d["gate"]
    r = x.dim() - 2
    return [{"type": f"AdaptiveAvgPool{r}d", "output_size": 1},
            {"type": f"Conv{r}d", "out_channels": d["squeeze_channels"], "kernel_size": 1},
            d.get("activation", "ReLU"),
            {"type": f"Conv{r}d", "out_channels": x.shape[1], "kernel_size": 1},
            d.get("scale_activation", "Sigmoid")]


def _build_sequential(d: dict, x):
    steps, y = _build_seq(d["body"], x)
    return ("seq", steps), y


def _build_repeat(d: dict, x):
    copies = []
    for i in range(d["n"]):
        steps, x = _build_seq(_first_copy(d["body"], d.get("first")) if i == 0 else d["body"], x)
        copies.append(steps)
    return ("seq", [("seq", c) for c in copies]), x


def _build_residual(d: dict, x):
    body, h = _build_seq(d["body"], x)
    scale = None
    if d.get("layer_scale") is not None:  # a [C, 1, ...] parameter times the body's output
        scale = torch.full((h.shape[1],) + (1,) * (h.dim() - 2), float(d["layer_scale"]))
        h = _merge("scale", h, scale)
    short, s = _build_seq(d["shortcut"], x) if d.get("shortcut") else ([], x)
    after, y = _build_seq(d.get("after") or [], _merge("add", h, s))
    return ("residual", body, scale, short, after), y


def _build_concat(d: dict, x):
    k = len(d["branches"])
    parts = x.chunk(k, dim=1) if d.get("split") else [x] * k
    if len(parts) != k:
        raise _Stop("failed", f"chunk gave {len(parts)} parts for {k} branches")
    built = [_build_seq(b, p) for b, p in zip(d["branches"], parts)]
    after, y = _build_seq(d.get("after") or [], _cat([o for _, o in built]))
    return ("concat", [s for s, _ in built], bool(d.get("split")), after), y


def _build_se(d: dict, x):
    gate, g = _build_seq(_se_gate(d, x), x)
    return ("se", gate), _merge("gate", x, g)


def _build_graph(d: dict, x):
    plan = _graph_plan(d)
    steps, env = [], {"x": x}
    for name, node, srcs in plan:
        if node["type"] in MERGES:
            steps.append((name, ("merge", node), srcs))
            env[name] = _graph_merge(node, [env[s] for s in srcs])
        else:
            step, env[name] = _build(node, env[srcs[0]])
            steps.append((name, step, srcs))
    out = d.get("output") or plan[-1][0]
    return ("graph", steps, out), env[out]


def _build_dense(d: dict, x):
    """DenseBlock: copy i gets the concatenation of the input and every earlier output."""
    features, copies = [x], []
    for _ in range(d["n"]):
        steps, y = _build_seq(d["body"], _cat(features))
        copies.append(steps)
        features.append(y)
    return ("dense", copies), _cat(features)


_BUILDERS = {"Sequential": _build_sequential, "Repeat": _build_repeat, "Residual": _build_residual,
             "Concat": _build_concat, "SqueezeExcitation": _build_se, "Graph": _build_graph}


def _build(d: dict, x):
    """(step, output at the declared input) for one item."""
    t = d["type"]
    if t not in BLOCKS:
        return _leaf(d, x)
    return _BUILDERS.get(t, _build_dense)(d, x)


def _graph_plan(d: dict) -> list:
    """[(name, node, source names)] of a Graph block: ``from:`` (or ``inputs``) names, default
    the node before (``x``, the block's input, for the first)."""
    plan, prev = [], "x"
    inputs = d.get("inputs") or [None] * len(d["nodes"])
    for i, raw in enumerate(d["nodes"]):
        node = dict(_item(raw))
        src = node.pop("from", None) or inputs[i] or prev
        name = node.get("name") or str(i)
        plan.append((name, node, [src] if isinstance(src, str) else list(src)))
        prev = name
    return plan


def _graph_merge(node: dict, parts):
    t = node["type"]
    if t == "Cat":
        try:
            return torch.cat(parts, dim=node.get("dim", 1))
        except RuntimeError as exc:
            raise _Stop("failed", f"cat: {exc}") from None
    y = parts[0]
    for p in parts[1:]:
        y = _merge("add" if t == "Add" else "mul", y, p)
    return y


def _run(step, x):
    kind = step[0]
    if kind == "graph":
        env = {"x": x}
        for name, sub, srcs in step[1]:
            env[name] = _graph_merge(sub[1], [env[s] for s in srcs]) if sub[0] == "merge" else _run(sub, env[srcs[0]])
        return env[step[2]]
    if kind == "leaf":
        return _call(step[1], x)
    if kind == "seq":
        return _run_seq(step[1], x)
    if kind == "residual":
        _, body, scale, short, after = step
        h = _run_seq(body, x)
        if scale is not None:
            h = _merge("scale", h, scale)
        return _run_seq(after, _merge("add", h, _run_seq(short, x)))
    if kind == "concat":
        _, branches, split, after = step
        parts = x.chunk(len(branches), dim=1) if split else [x] * len(branches)
        if len(parts) != len(branches):
            raise _Stop("failed", "chunk")
        return _run_seq(after, _cat([_run_seq(b, p) for b, p in zip(branches, parts)]))
    if kind == "se":
        return _merge("gate", x, _run_seq(step[1], x))
    features = [x]
    for steps in step[1]:
        features.append(_run_seq(steps, _cat(features)))
    return _cat(features)


def compiled(spec):
    """(spec dict, the network built at its declared input) in eval mode."""
    d = _spec_dict(spec)
    batch = d.get("batch", 1)
    torch.manual_seed(0)
    try:
        with torch.no_grad():
            net = _Net(d["layers"], torch.zeros(batch, *d["input"]))
    except _Stop as stop:
        raise AssertionError(f"torch does not run the spec at its declared input ({stop.outcome}): {stop}") from None
    return d, net


def outcome(net: _Net, shape, batch: int = 1) -> str:
    x = torch.zeros(batch, *shape)
    try:
        with torch.no_grad():
            net.run(x)
    except _Stop as stop:
        return stop.outcome
    return "ran"


def outcomes(spec, dim: int, sizes) -> dict[int, str]:
    """{n: outcome} with input[dim] = n (the other axes as declared)."""
    d, net = compiled(spec)
    out = {}
    for n in sizes:
        shape = list(d["input"])
        shape[dim] = n
        out[n] = outcome(net, shape, d.get("batch", 1))
    return out


def brute(spec, dim: int, sizes) -> set[int]:
    """{n in sizes : torch runs the network with input[dim] = n, without broadcasting a
    merge and without a zero-size tensor}."""
    return {n for n, o in outcomes(spec, dim, sizes).items() if o == "ran"}


def members(progressions, upto: int) -> set[int]:
    """The sizes 1..``upto`` in ``progressions`` (each with ``start``, ``stop`` or None, ``step``),
    expanded here rather than with cnnshape.sizes.members (tests/test_timm_*.py use this one)."""
    out = set()
    for g in progressions:
        top = upto if g.stop is None else min(g.stop, upto)
        out.update(range(g.start, top + 1, g.step))
    return out


def as_progression(d):
    from cnnshape.sizes import Progression

    return Progression(d["from"], d["to"], d["step"])


def brute_square(spec, sizes) -> set[int]:
    """{n in sizes : the network runs (as in :func:`brute`) with every spatial axis = n}."""
    d, net = compiled(spec)
    c = d["input"][0]
    rank = len(d["input"]) - 1
    return {n for n in sizes if outcome(net, [c] + [n] * rank, d.get("batch", 1)) == "ran"}


def _modules(step):
    kind = step[0]
    if kind == "graph":
        for _, sub, _ in step[1]:
            if sub[0] != "merge":
                yield from _modules(sub)
    elif kind == "leaf":
        yield step[1]
    elif kind == "seq":
        for s in step[1]:
            yield from _modules(s)
    elif kind == "residual":
        for part in (step[1], step[3], step[4]):
            for s in part:
                yield from _modules(s)
    elif kind == "concat":
        for branch in step[1]:
            for s in branch:
                yield from _modules(s)
        for s in step[3]:
            yield from _modules(s)
    elif kind == "se":
        for s in step[1]:
            yield from _modules(s)
    else:  # dense
        for steps in step[1]:
            for s in steps:
                yield from _modules(s)


def _scales(step):
    kind = step[0]
    if kind == "graph":
        for _, sub, _ in step[1]:
            if sub[0] != "merge":
                yield from _scales(sub)
    elif kind == "residual":
        yield from ([step[2]] if step[2] is not None else [])
        for part in (step[1], step[3], step[4]):
            for s in part:
                yield from _scales(s)
    elif kind in ("seq", "se"):
        for s in step[1]:
            yield from _scales(s)
    elif kind == "concat":
        for branch in [*step[1], step[3]]:
            for s in branch:
                yield from _scales(s)
    elif kind == "dense":
        for steps in step[1]:
            for s in steps:
                yield from _scales(s)


def torch_figures(spec) -> tuple[tuple[int, ...], int]:
    """(output shape of one sample, parameter count) of the network built here with torch."""
    _, net = compiled(spec)
    params = sum(p.numel() for s in net.steps for m in _modules(s) for p in m.parameters())
    params += sum(t.numel() for s in net.steps for t in _scales(s))
    return tuple(net.y.shape[1:]), params
