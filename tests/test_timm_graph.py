"""The Graph block (named tensors) against torch, and timm's blocks built with it.

1. Generated graphs (nodes reading random earlier tensors; Add / Mul / Cat merges; valid or
   not) against an independent evaluator that builds each node's torch.nn module from its
   dict and runs the DAG by hand: verdict, output shape, params; the compiled Graph loads
   the evaluator's weights by node name and gives its output. Saved-for-backward bytes and
   the sizes that work, against torch, on the valid ones.
2. timm's own blocks and small whole models, converted to specs (tests/timm_convert.py):
   strict ``load_state_dict`` of timm's randomised weights, equal outputs in eval.
3. Located errors, export / import, draw, diff and the studio tree through a Graph.
"""

import warnings

import pytest
import torch
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from cnnshape.analysis import check
from cnnshape.memory import estimate
from cnnshape.torch_backend.build import build

from .memory_oracle import saved_bytes
from .oracle import module_class, torch_kwargs
from .test_timm_layers import members
from .timm_ref import assert_same, randomise, timm

torch.set_num_threads(1)
EXAMPLES = max(15, settings.default.max_examples // 8)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
THOROUGH = settings.default.max_examples > 500


# ------------------------------------------------------------------ 1. generated graphs
@st.composite
def graph_specs(draw):
    c = draw(st.integers(1, 4))
    shape = [c, draw(st.integers(2, 9)), draw(st.integers(2, 9))]
    names = ["x"]
    nodes = []
    for j in range(draw(st.integers(1, 7))):
        name = draw(st.sampled_from([f"n{j}", f"convs.{j}", f"blk.n{j}"]))
        kind = draw(st.sampled_from(["conv", "conv", "bn", "relu", "pool", "slice", "add", "mul", "cat"]))
        if kind in ("add", "mul", "cat") and len(names) >= 2:
            srcs = draw(st.lists(st.sampled_from(names), min_size=2, max_size=3))
            node = {"type": {"add": "Add", "mul": "Mul", "cat": "Cat"}[kind], "from": srcs}
        else:
            node = {"conv": lambda: {"type": "Conv2d", "out_channels": draw(st.integers(1, 4)),
                                     "kernel_size": draw(st.sampled_from([1, 3])),
                                     "padding": draw(st.sampled_from([0, 1]))},
                    "bn": lambda: {"type": "BatchNorm2d"}, "relu": lambda: {"type": "ReLU"},
                    "pool": lambda: {"type": "MaxPool2d", "kernel_size": 2},
                    "slice": lambda: {"type": "Slice", "start": draw(st.integers(0, 1)),
                                      "length": draw(st.integers(1, 2))},
                    "add": lambda: {"type": "ReLU"}, "mul": lambda: {"type": "ReLU"},
                    "cat": lambda: {"type": "ReLU"}}[kind]()
            if draw(st.booleans()):
                node["from"] = draw(st.sampled_from(names))
        node["name"] = name
        nodes.append(node)
        names.append(name)
    graph = {"type": "Graph", "name": "g", "nodes": nodes}
    if draw(st.integers(0, 3)) == 0:
        graph["output"] = draw(st.sampled_from(names[1:]))
    return {"input": shape, "batch": 2, "layers": [graph]}


class Refused(Exception):
    pass


def _merged(t: str, ins):
    """Add / Mul / Cat of ``ins`` with torch's own ops (Add and Mul: equal shapes; Mul also
    [C, 1, ...] gates)."""
    if t == "Cat":
        try:
            return torch.cat(ins, dim=1)
        except RuntimeError as exc:
            raise Refused(str(exc)) from None
    full = ins[0].shape if t == "Add" else torch.Size(max(s) for s in zip(*[i.shape for i in ins]))
    if any(i.shape != full and (t == "Add" or i.shape[1] != full[1] or
                                any(a not in (1, b) for a, b in zip(i.shape[2:], full[2:]))) for i in ins):
        raise Refused(f"{t} of {[tuple(i.shape) for i in ins]}")
    y = ins[0]
    for i in ins[1:]:
        y = y + i if t == "Add" else y * i
    return y


def _module_output(node: dict, t: str, inp):
    """(module built from the node's dict by torch.nn, its output on ``inp``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = {k: v for k, v in node.items() if k != "from"}
            m = module_class(t)(**torch_kwargs(d, inp)).eval()
            with torch.no_grad():
                if t.startswith("BatchNorm"):
                    m.running_mean.uniform_(-1, 1)
                    m.running_var.uniform_(0.5, 2)
                y = m(inp)
    except (RuntimeError, ValueError) as exc:
        raise Refused(str(exc)) from None
    if y.numel() == 0:
        raise Refused("empty")
    return m, y


def evaluate(spec, x):
    """Run the graph by hand: torch.nn modules built from each node's dict (never cnnshape's),
    merges with torch's own ops (Add and Mul with cnnshape's documented rule: equal shapes;
    Mul also [C, 1, ...] gates). Returns (output, {node: module}) or raises Refused."""
    g = spec["layers"][0]
    env, mods, prev = {"x": x}, {}, "x"
    for node in g["nodes"]:
        src = node.get("from", prev)
        t = node["type"]
        if t in ("Add", "Mul", "Cat"):
            y = _merged(t, [env[s] for s in src])
        elif t == "Slice":
            inp = env[src]
            if node["start"] + node["length"] > inp.shape[1]:
                raise Refused("slice")
            y = inp.narrow(1, node["start"], node["length"])
        else:
            mods[node["name"]], y = _module_output(node, t, env[src])
        env[node["name"]] = y
        prev = node["name"]
    return env[g.get("output", prev)], mods


@SETTINGS
@given(graph_specs())
def test_generated_graphs_agree_with_torch(spec):
    note(repr(spec))
    report = check(spec)
    x = torch.randn(2, *spec["input"])
    try:
        with torch.no_grad():
            y, mods = evaluate(spec, x)
    except Refused as exc:
        note(f"torch refuses: {exc}")
        assert not report.ok
        assert report.errors[0].hint and report.errors[0].name.startswith("g")
        return
    assert report.ok, [e.message for e in report.errors]
    row = report.layers[0]
    assert row.output == tuple(y.shape[1:])
    assert row.params == sum(p.numel() for m in mods.values() for p in m.parameters())
    model = build(spec).eval()
    for name, m in mods.items():
        model.get_submodule(f"g.{name}").load_state_dict(m.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.allclose(model(x), y, atol=1e-5)


@SETTINGS
@given(graph_specs())
def test_generated_graphs_saved_bytes_equal_torch(spec):
    report = check(spec)
    assume(report.ok)
    note(repr(spec))
    model = build(spec)
    x = torch.randn(2, *spec["input"])
    assert estimate(report).saved_bytes == saved_bytes(model, x)


@settings(max_examples=max(8, settings.default.max_examples // 25), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(graph_specs())
def test_generated_graphs_sizes_equal_torch(spec):
    from cnnshape.sizes import sizes

    report = check(spec)
    assume(report.ok)
    note(repr(spec))
    rep = sizes(spec)
    for ax in rep.axes:
        if ax.valid is None:  # reported as unknown (e.g. a Cat along the tracked axis): never a guess
            assert ax.unknown
            continue
        want = set()
        for n in range(1, 25):  # the independent evaluator at each size (its modules sized by the input)
            shape = list(spec["input"])
            shape[ax.dim] = n
            try:
                with torch.no_grad():
                    y, _ = evaluate({**spec, "input": shape}, torch.zeros(2, *shape))
                if y.numel():
                    want.add(n)
            except Refused:
                pass
        assert members(ax.valid, 24) == want, ax.axis


# ------------------------------------------------------------------ 2. timm's blocks and models
def _block_case(model_name: str, path: str, size: int):
    t = timm()
    from . import timm_convert as C

    model = t.create_model(model_name, pretrained=False, num_classes=10)
    m = randomise(model.get_submodule(path), 3).eval()
    feats = {}
    handle = m.register_forward_pre_hook(lambda mod, inp: feats.setdefault("x", inp[0]))
    with torch.no_grad():
        model.eval()(torch.randn(1, 3, size, size))
    handle.remove()
    shape = list(feats["x"].shape[1:])
    items = C.convert("blk", m)
    spec = {"input": shape, "batch": 2, "layers": items}
    report = check(spec)
    assert report.ok, [e.message for e in report.errors]
    ours = build(spec)
    wrapped = torch.nn.Sequential()
    wrapped.add_module("blk", m)
    assert_same(ours, wrapped, torch.randn(2, *shape))
    return report


BLOCKS = [  # (model, block path, input size): each block type, first (projecting) and plain
    ("res2net50_14w_8s", "layer2.0", 64), ("res2net50_26w_4s", "layer1.1", 64), ("res2next50", "layer3.0", 64),
    ("resnetv2_50x1_bit", "stages.1.blocks.0", 64), ("resnetv2_50x1_bit", "stages.0.blocks.1", 64),
    ("convnextv2_atto", "stages.1.blocks.0", 64), ("convnext_atto", "stages.2.blocks.1", 64),
    ("dla34", "level3", 64), ("dla60", "level2", 64), ("dla46_c", "level4", 64),
    ("dpn48b", "features.conv3_1", 64), ("dpn68", "features.conv4_2", 64),
    ("nfnet_l0", "stages.1.0", 64), ("eca_nfnet_l0", "stages.1.1", 64), ("nf_regnet_b0", "stages.2.0", 64),
]


@pytest.mark.parametrize("model,path,size", BLOCKS, ids=[f"{m}:{p}" for m, p, _ in BLOCKS])
def test_timm_blocks_are_weight_exact(model, path, size):
    report = _block_case(model, path, size)
    assert report.layers[0].params > 0


def test_hrnet_style_streams_are_weight_exact():
    """HRNet's multi-resolution module (timm's HighResolutionModule: two streams of BasicBlocks,
    all-to-all fusion with strided convs and nearest upsampling) between a transition and a
    head, as one Graph whose nodes keep timm's dotted keys."""
    timm()
    from timm.models.hrnet import HighResolutionModule
    from timm.models.resnet import BasicBlock
    from torch import nn

    from . import timm_convert as C

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.t1 = nn.Sequential(nn.Conv2d(4, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
            self.stage = HighResolutionModule(2, BasicBlock, (1, 2), [4, 8], (4, 8), "SUM")
            self.up = nn.Upsample(scale_factor=2, mode="nearest")

        def forward(self, x):
            ys = self.stage([x, self.t1(x)])
            return torch.cat([ys[0], self.up(ys[1])], 1)

    net = randomise(Net(), 5).eval()
    nodes = C._node(C.convert("t1", net.t1), "x")
    more, outs = C.hr_module_nodes(net.stage, "stage.", ["x", "t1"])
    nodes += more + [{"type": "Upsample", "scale_factor": 2, "name": "up", "from": outs[1]},
                     {"type": "Cat", "name": "out", "from": [outs[0], "up"]}]
    spec = {"input": [4, 16, 16], "batch": 2, "layers": [{"type": "Graph", "name": "g", "nodes": nodes}]}
    report = check(spec)
    assert report.ok, [e.message for e in report.errors]
    wrapped = nn.Sequential()
    wrapped.add_module("g", net)
    assert_same(build(spec), wrapped, torch.randn(2, 4, 16, 16))
    assert report.layers[0].receptive_field is not None  # the union over the streams
    assert estimate(report).saved_bytes == saved_bytes(build(spec), torch.randn(2, 4, 16, 16))


#: whole models at 64 px (weight-exact, equal outputs): a sample in the fast profile
MODELS_FAST = ["convnextv2_atto", "dla46_c"]
MODELS_THOROUGH = ["res2net50_14w_8s", "res2net50_26w_4s", "res2next50", "resnetv2_50x1_bit", "convnext_atto",
                   "dla34", "dla60", "dpn48b", "dpn68", "nfnet_l0", "eca_nfnet_l0", "nf_resnet26", "nf_regnet_b0"]


@pytest.mark.parametrize("name", MODELS_FAST + (MODELS_THOROUGH if THOROUGH else []))
def test_timm_models_are_weight_exact(name):
    from . import timm_convert as C

    model = randomise(timm().create_model(name, pretrained=False, num_classes=10), 1).eval()
    spec = {"input": [3, 64, 64], "batch": 2, "layers": C.seq(model)}
    report = check(spec)
    assert report.ok, [e.message for e in report.errors[:3]]
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert_same(build(spec), model, torch.randn(2, 3, 64, 64), atol=1e-4)


# ------------------------------------------------------------------ 3. errors and tools
GRAPH_YAML = """\
input: [4, 8, 8]
layers:
  - type: Graph
    name: blk
    nodes:
      - {name: conv1, type: Conv2d, out_channels: 8, kernel_size: 1}
      - {name: convs.0, type: Conv2d, from: conv1, out_channels: 8, kernel_size: 3, padding: 1}
      - {name: proj, type: Conv2d, from: x, out_channels: 8, kernel_size: 1}
      - {name: sum, type: Add, from: [convs.0, proj]}
      - {name: act, type: ReLU}
"""


@pytest.mark.parametrize("old,new,fragment,line", [
    ("from: [convs.0, proj]", "from: [convs.0, nope]", "not a node of this Graph", 9),
    ("from: [convs.0, proj]", "from: [convs.0, act]", "a later node", 9),
    ("kernel_size: 3, padding: 1", "kernel_size: 3", "Add needs equal shapes", 9),
    ("from: [convs.0, proj]", "from: conv1", "at least 2", 9),
    ("{name: act, type: ReLU}", "{name: act, type: ReLU, from: [sum, proj]}", "takes one input", 10),
    ("out_channels: 8, kernel_size: 1}\n      - {name: sum", "out_channels: 7, kernel_size: 1}\n      - {name: sum",
     "Add needs equal shapes", 9),
])
def test_graph_errors_are_located_at_the_node(tmp_path, old, new, fragment, line):
    text = GRAPH_YAML.replace(old, new)
    assert text != GRAPH_YAML
    p = tmp_path / "g.yaml"
    p.write_text(text)
    report = check(str(p))
    assert not report.ok
    err = report.errors[0]
    assert fragment in err.message and err.hint, err.message
    assert err.line == line and err.name.startswith("blk."), (err.line, err.name)


def test_graph_names_and_output_are_checked():
    base = {"input": [2, 4, 4]}
    bad = [({"nodes": [{"type": "ReLU", "name": "x"}]}, "not usable"),
           ({"nodes": [{"type": "ReLU", "name": "a"}, {"type": "ReLU", "name": "a"}]}, "duplicate"),
           ({"nodes": [{"type": "Sequential", "name": "convs", "body": ["ReLU"]},
                       {"type": "ReLU", "name": "convs.0"}]}, "parent"),  # a block's children would mix
           ({"nodes": [{"type": "ReLU", "name": "a._b"}]}, "'_'"),  # refused as a name (torch internals)
           ({"nodes": ["ReLU"], "output": "zz"}, "not a node"),
           ({"nodes": [{"type": "Sequential", "inline": True, "body": ["ReLU"]}]}, "inline")]
    for g, fragment in bad:
        r = check({**base, "layers": [{"type": "Graph", **g}]})
        assert not r.ok and fragment in r.errors[0].message and r.errors[0].hint, (g, r.errors)


def test_graph_round_trips_through_export_import_yaml_and_tools(tmp_path):
    import yaml

    from cnnshape.diff import diff
    from cnnshape.spec import load
    from cnnshape.torch_backend.export import export_python
    from cnnshape.torch_backend.importer import from_module

    spec = load(GRAPH_YAML)
    assert load(yaml.safe_dump(spec.to_dict())) == spec  # from: survives the YAML round trip
    src = export_python(spec)
    assert "cnnshape" not in "".join(line for line in src.splitlines() if line.startswith(("import", "from")))
    ns: dict = {}
    exec(compile(src, "net.py", "exec"), ns)
    net = ns["Net"]().eval()
    model = build(spec).eval()
    ns["load_sequential_state"](net, model.state_dict())
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        assert torch.equal(net(x), model(x))
    back = from_module(model, [4, 8, 8])
    assert check(back).layers[0].children[1].path == "blk.convs.0"
    assert {k: v.shape for k, v in build(back).state_dict().items()} == \
        {k: v.shape for k, v in model.state_dict().items()}
    from cnnshape.draw import figure, to_svg

    svg = to_svg(figure(check(spec), depth=3))
    assert "convs.0" in svg and "Graph" in svg
    changed = load(GRAPH_YAML.replace("out_channels: 8, kernel_size: 3", "out_channels: 8, kernel_size: 5"))
    assert diff(spec, changed) is not None


def test_graph_studio_tree_lists_the_nodes():
    from cnnshape.layers.blocks import Graph

    report = check(GRAPH_YAML)
    data = report.spec.to_dict()["layers"][0]
    kids = Graph.tree_children(data, report.layers[0], ("layers", 0), "blk")
    assert [k[3] for k in kids] == ["blk.conv1", "blk.convs.0", "blk.proj", "blk.sum", "blk.act"]
    assert all(k[2] is not None for k in kids)


def test_graph_json_schema_accepts_from_and_refuses_bad_from():
    import json
    import jsonschema
    import yaml

    from .conftest import cli

    schema = json.loads(cli("schema").stdout)
    doc = yaml.safe_load(GRAPH_YAML)
    jsonschema.validate(doc, schema)
    doc["layers"][0]["nodes"][1]["from"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def test_a_layer_node_may_hold_deeper_nodes():
    """RDNet's block keeps its ``gamma`` and its ``layers`` under one path: a Graph layer node
    named ``blk`` (a LayerScale2d) may be the parent of node ``blk.layers``; the compiled module
    nests it there, keys as timm's (``blk.gamma``, ``blk.layers.0.weight``)."""
    from cnnshape import build

    spec = {"input": [2, 4, 4], "layers": [{"type": "Graph", "inline": True, "nodes": [
        {"type": "Sequential", "name": "blk.layers", "body": [{"type": "Conv2d", "out_channels": 3, "kernel_size": 1}]},
        {"type": "LayerScale2d", "name": "blk", "init_values": 0.5}]}]}
    r = check(spec)
    assert r.ok, r.errors
    net = build(spec)
    assert sorted(net.state_dict()) == ["blk.gamma", "blk.layers.0.bias", "blk.layers.0.weight"]
    assert sum(p.numel() for p in net.parameters()) == r.totals.params
    x = torch.randn(2, 2, 4, 4)
    conv = net.blk.layers[0]
    torch.testing.assert_close(net(x), conv(x) * 0.5)
