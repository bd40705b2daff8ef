"""Blocks (Sequential, Repeat, Residual, Concat) and the model zoo, against torch."""

import json
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, note, settings

from cnnshape import strategies as cs
from cnnshape.analysis import analyze, check
from cnnshape.errors import SpecError
from cnnshape.spec import load
from cnnshape.torch_backend.build import build
from cnnshape.torch_backend.export import export_python
from cnnshape.torch_backend.importer import from_module
from cnnshape.torch_backend.verify import verify

from .conftest import SPECS, cli, examples
from .oracle import Fail, TorchRun, _leaf


def test_resnet50_check_prints_torchvision_count_and_stage_table():
    out = cli("check", os.path.join(SPECS, "resnet50.yaml"), env={"COLUMNS": "120"})
    assert out.returncode == 0, out.stderr
    assert "25,557,032" in out.stdout
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        assert stage in out.stdout
    assert "layer2.0.conv1" not in out.stdout  # one row per stage by default
    deep = cli("check", os.path.join(SPECS, "resnet50.yaml"), "--depth", "3", env={"COLUMNS": "160"})
    assert "downsample" in deep.stdout and "conv3" in deep.stdout


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "resnet_small_32"])
def test_zoo_verify_and_export(tmp_path, name):
    path = os.path.join(SPECS, f"{name}.yaml")
    spec = load(path, input=[3, 64, 64]) if name != "resnet_small_32" else load(path)
    v = verify(spec, use_torchinfo=True)
    assert v.ok, [r for r in v.rows if not r.ok][:3]
    src = export_python(spec)
    (tmp_path / "net.py").write_text(src)
    code = ("import sys, torch\nsys.path.insert(0, sys.argv[1])\nfrom net import Net\n"
            "print(sum(p.numel() for p in Net().parameters()))\n"
            "assert not any(m.startswith('cnnshape') for m in sys.modules)\n")
    r = subprocess.run([sys.executable, "-I", "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) == analyze(spec).totals.params


def test_json_children_paths_are_state_dict_prefixes():
    spec = load(os.path.join(SPECS, "resnet18.yaml"))
    doc = check(spec.source.path).to_dict()
    assert [row["name"] for row in doc["layers"]][:5] == ["conv1", "bn1", "relu", "maxpool", "layer1"]
    layer2 = doc["layers"][5]
    assert layer2["type"] == "Repeat" and [c["path"] for c in layer2["children"]] == ["layer2.0", "layer2.1"]
    paths = set()

    def collect(rows):
        for r in rows:
            paths.add(r.get("path", r["name"]))
            collect(r.get("children", []))
    collect(doc["layers"])
    keys = build(spec, device="meta").state_dict()
    for key in keys:
        assert key.rsplit(".", 1)[0] in paths, key
    assert {"layer2.0.downsample", "layer2.0.downsample.0", "layer2.0.conv1"} <= paths


BROKEN_SKIP = """\
input: [3, 32, 32]
layers:
  - {type: Conv2d, out_channels: 16, kernel_size: 3, padding: 1}
  - type: Residual
    name: block
    body:
      - {type: Conv2d, out_channels: 32, kernel_size: 3, stride: 2, padding: 1, name: conv1}
      - {type: ReLU}
"""


def test_broken_skip_connection_is_located_with_fix():
    report = check(BROKEN_SKIP)
    (err,) = report.errors
    assert err.index == 1 and err.name == "block" and err.line == 4
    assert "body outputs [32, 16, 16]" in err.message and "[16, 32, 32]" in err.message
    assert "shortcut: [{type: Conv2d, out_channels: 32, kernel_size: 1, stride: 2" in err.hint
    from cnnshape import design as D

    fixed = D.apply_fix(D.Design.from_data(load(BROKEN_SKIP).to_dict()), err)
    ev = D.evaluate(fixed)
    assert ev.ok and ev.report.layers[1].output == (32, 16, 16)


def test_nested_errors_carry_the_nested_line_and_path():
    text = BROKEN_SKIP.replace("name: conv1}", "name: conv1, kernel_size: 40}").replace(
        "kernel_size: 3, stride", "stride")
    report = check(text)
    (err,) = report.errors
    assert err.index == 1 and err.name == "block.conv1" and err.line == 7 and err.key == "kernel_size"
    with pytest.raises(SpecError) as exc:
        load(text.replace("type: ReLU", "type: Relu"))
    d = exc.value.diagnostics[0]
    assert d.index == 1 and d.line == 8 and "did you mean 'ReLU'" in d.message and d.name == "block.1"


def test_repeat_first_and_its_errors():
    spec = load(os.path.join(SPECS, "resnet18.yaml"))
    layer2 = analyze(spec).layers[5]
    assert layer2.children[0].children[0].layer.stride == 2    # first copy: conv1 stride 2
    assert layer2.children[1].children[0].layer.stride == 1
    text = open(os.path.join(SPECS, "resnet18.yaml")).read().replace("conv1: {stride: 2}", "conv: {stride: 2}", 1)
    err = check(text).errors[0]
    assert "no child 'conv'" in err.message and "did you mean 'conv" in err.message and err.key == "first"


def test_concat_merges_channels_and_reports_spatial_mismatch():
    ok = check("input: [3, 16, 16]\nlayers:\n  - type: Concat\n    branches:\n"
               "      - [{type: Conv2d, out_channels: 4, kernel_size: 1}]\n"
               "      - [{type: Conv2d, out_channels: 6, kernel_size: 3, padding: 1}]\n"
               "      - [{type: MaxPool2d, kernel_size: 3, stride: 1, padding: 1}]\n")
    assert ok.ok and ok.layers[0].output == (13, 16, 16)
    assert ok.layers[0].receptive_field[0].size == 3
    bad = check("input: [3, 16, 16]\nlayers:\n  - type: Concat\n    branches:\n"
                "      - [{type: Conv2d, out_channels: 4, kernel_size: 1}]\n"
                "      - [{type: Conv2d, out_channels: 6, kernel_size: 3}]\n")
    assert "branch 0 outputs [4, 16, 16], branch 1 outputs [6, 14, 14]" in bad.errors[0].message
    unaligned = check("input: [3, 16, 16]\nlayers:\n  - type: Concat\n    branches:\n"
                      "      - [{type: Conv2d, out_channels: 4, kernel_size: 3, padding: 1}]\n"
                      "      - [{type: Conv2d, out_channels: 6, kernel_size: 3, padding: [0, 2]}]\n")
    assert unaligned.ok is False or any("not aligned" in w.message for w in unaligned.warnings)


def test_receptive_field_through_residual_matches_torch_gradient():
    """Empirical RF: the input region that influences the central output unit."""
    spec = load(BROKEN_SKIP.replace("stride: 2, padding: 1, name: conv1}", "padding: 1, name: conv1}")
                .replace("out_channels: 32", "out_channels: 16"), input=[1, 33, 33])
    rf = analyze(spec).layers[-1].receptive_field
    model = build(spec).double().eval()
    for p in model.parameters():
        p.data.abs_()
    x = (torch.rand(1, 1, 33, 33, dtype=torch.float64) + 0.5).requires_grad_()
    y = model(x)
    c = y.shape[-1] // 2
    y[0, :, c, c].sum().backward()
    rows = (x.grad[0, 0].abs().sum(1) > 0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == rf[0].size == 5
    assert (rows.max() + rows.min()) / 2 == rf[0].start + c * rf[0].jump


def test_flat_specs_unchanged_by_blocks():
    for name in ("fashion_mnist", "lenet5"):
        doc = check(os.path.join(SPECS, f"{name}.yaml")).to_dict()
        assert all("children" not in r and "path" not in r for r in doc["layers"])


def test_schema_validates_block_specs():
    jsonschema = pytest.importorskip("jsonschema")
    from cnnshape.schema import json_schema
    from cnnshape.yaml_io import parse

    for name in ("resnet18", "resnet50", "mobilenet_v2", "resnet_small_32"):
        data, _ = parse(open(os.path.join(SPECS, f"{name}.yaml")).read())
        jsonschema.validate(data, json_schema())


# ------------------------------------------------------------- property: vs torch
# An independent torch reference for every block type, written from the spec format's
# description (docs/spec-extensions.md), not from cnnshape's code; leaves run through
# tests/oracle.py (torch.nn modules, MACs from torch's real shapes).
def run_blocks(spec: dict) -> TorchRun:
    torch.manual_seed(0)
    x = torch.randn(spec.get("batch", 1), *spec["input"])
    out = TorchRun()
    for i, d in enumerate(spec["layers"]):
        try:
            y, params, macs = _ref(d, x)
        except Fail as exc:
            out.fail_index, out.fail_message = i, str(exc)
            return out
        out.shapes.append(tuple(y.shape[1:]))
        out.params.append(params)
        out.macs.append(macs)
        x = y
    return out


def _ref_seq(items, x):
    params = macs = 0
    for d in items:
        x, p, m = _ref(d, x)
        params, macs = params + p, macs + m
    return x, params, macs


def _ref_first(body, first):
    body = [dict(b) if isinstance(b, dict) else {"type": b} for b in body]
    for key, change in (first or {}).items():
        named = [b for b in body if b.get("name") == key]
        if not named:
            raise Fail(f"no child {key}")
        named[0].update(change)
    return body


def _ref_cat(outs):
    try:
        return torch.cat(outs, dim=1)
    except RuntimeError as exc:
        raise Fail(f"cat: {exc}") from None


def _ref_repeat(d, x):
    params = macs = 0
    for i in range(d["n"]):
        x, p, m = _ref_seq(_ref_first(d["body"], d.get("first")) if i == 0 else d["body"], x)
        params, macs = params + p, macs + m
    return x, params, macs


def _ref_residual(d, x):
    h, p, m = _ref_seq(d["body"], x)
    if d.get("layer_scale") is not None:  # a [C, 1, ...] parameter times the body's output
        scale = torch.full((h.shape[1],) + (1,) * (h.dim() - 2), float(d["layer_scale"]))
        h, p = scale * h, p + scale.numel()
    s, ps, ms = _ref_seq(d["shortcut"], x) if d.get("shortcut") else (x, 0, 0)
    if h.shape != s.shape:
        raise Fail(f"residual shapes {tuple(h.shape)} vs {tuple(s.shape)}")
    y, pa, ma = _ref_seq(d["after"], h + s) if d.get("after") else (h + s, 0, 0)
    return y, p + ps + pa, m + ms + ma


def _ref_concat(d, x):
    k = len(d["branches"])
    if d.get("split") and x.shape[1] % k:
        raise Fail("channels not divisible by the branch count")
    parts = x.chunk(k, dim=1) if d.get("split") else [x] * k
    outs = [_ref_seq(b, h) for b, h in zip(d["branches"], parts)]
    y = _ref_cat([o[0] for o in outs])
    y, pa, ma = _ref_seq(d["after"], y) if d.get("after") else (y, 0, 0)
    return y, sum(o[1] for o in outs) + pa, sum(o[2] for o in outs) + ma


def _ref_squeeze(d, x):
    r = x.dim() - 2
    gate = d.get("gate") or [{"type": f"AdaptiveAvgPool{r}d", "output_size": 1},
                             {"type": f"Conv{r}d", "out_channels": d["squeeze_channels"], "kernel_size": 1},
                             d.get("activation", "ReLU"),
                             {"type": f"Conv{r}d", "out_channels": x.shape[1], "kernel_size": 1},
                             d.get("scale_activation", "Sigmoid")]
    g, p, m = _ref_seq(gate, x)
    if g.shape != x.shape and tuple(g.shape) != (x.shape[0], x.shape[1]) + (1,) * r:
        raise Fail(f"gate {tuple(g.shape)} cannot scale {tuple(x.shape)}")
    return x * g, p, m


def _ref_dense(d, x):
    features, params, macs = [x], 0, 0
    for _ in range(d["n"]):
        y, p, m = _ref_seq(d["body"], _ref_cat(features))
        if y.shape[2:] != x.shape[2:]:
            raise Fail("dense block body changed the spatial size")
        features.append(y)
        params, macs = params + p, macs + m
    return _ref_cat(features), params, macs


#: the reference of each block type, written from torch ops (not cnnshape's modules)
_REF_BLOCKS = {"Sequential": lambda d, x: _ref_seq(d["body"], x), "Repeat": _ref_repeat, "Residual": _ref_residual,
               "Concat": _ref_concat, "SqueezeExcitation": _ref_squeeze, "DenseBlock": _ref_dense}


def _ref(d, x):
    """Run one item -> (y, params, macs)."""
    d = {"type": d} if isinstance(d, str) else d
    block = _REF_BLOCKS.get(d["type"])
    return block(d, x) if block is not None else _leaf(d, x)


def _compare_nested(spec_dict):
    note("spec:\n" + json.dumps(spec_dict))
    try:
        report = check(spec_dict)
        first = report.errors[0].index if report.errors else None
        errors = report.errors
    except SpecError as exc:
        report, errors = None, exc.diagnostics
        first = min(d.index for d in exc.diagnostics if d.index is not None)
    t = run_blocks(spec_dict)
    note(f"torch fails at {t.fail_index}: {t.fail_message}; cnnshape: {[(d.index, d.message) for d in errors]}")
    assert first == t.fail_index
    if report is None:
        return
    for lr, shape, params, macs in zip(report.layers, t.shapes, t.params, t.macs):
        assert lr.output == shape and lr.params == params and lr.macs == macs, lr.name
    if report.ok:  # the compiled model runs and its state_dict prefixes are the report's paths
        model = build(report.spec).eval()
        with torch.no_grad():
            y = model(torch.randn(report.spec.batch, *report.spec.input))
        assert tuple(y.shape[1:]) == report.output
        paths = {r.path for lr in report.layers for r in lr.walk()}
        assert all(k.rsplit(".", 1)[0] in paths for k in model.state_dict())
        # the exported plain-PyTorch file computes the same function with the same weights
        ns: dict = {"__name__": "exported"}
        exec(compile(export_python(report.spec), "net.py", "exec"), ns)
        net = ns["Net"]().eval()
        ns["load_sequential_state"](net, model.state_dict())
        x = torch.randn(report.spec.batch, *report.spec.input)
        with torch.no_grad():
            assert torch.allclose(net(x), model(x), atol=1e-6)
        # and importing the compiled model gives back the same architecture
        again = build(from_module(model, report.spec.input, batch=report.spec.batch)).eval()
        assert repr(again) == repr(model)


@given(cs.nested_spec_dicts(every_block=True))
def test_generated_nested_specs_agree_with_torch(spec_dict):
    _compare_nested(spec_dict)


# ------------------------------------------------- Repeat: analysed once per distinct copy
def _unnamed(layer):
    d = layer.to_dict()
    d.pop("name", None)
    return d


def _expanded(spec_dict):
    """The spec with every top-level Repeat written out copy by copy as a Sequential."""
    spec = load(spec_dict)
    items = []
    for layer in spec.layers:
        if layer.type == "Repeat":
            names = [layer.child_names.format(index=i, number=i + 1) for i in range(layer.n)]
            body = [{**(_unnamed(c[0]) if len(c) == 1 else {"type": "Sequential", "body": [x.to_item() for x in c]}),
                     "name": name} for c, name in zip(layer.copies(), names)]
            items.append({"type": "Sequential", "body": body, **({"name": layer.name} if layer.name else {})})
        else:
            items.append(layer.to_item())
    return {**spec_dict, "layers": items}


@settings(max_examples=examples(50, 1000))
@given(cs.nested_spec_dicts(every_block=True))
def test_repeat_reuses_copies_exactly_like_writing_them_out(spec_dict):
    """Reused copies give the same rows, paths, warnings and totals as the copies written out."""
    try:
        _expanded(spec_dict)
    except SpecError:
        return
    ours, theirs = check(spec_dict).to_dict(), check(_expanded(spec_dict)).to_dict()
    for a, b in zip(ours["layers"], theirs["layers"]):
        a.pop("type"), b.pop("type")
    assert ours == theirs


def test_huge_and_deeply_nested_repeats_are_refused_fast_and_located():
    import time

    deep: object = "ReLU"
    for _ in range(30):
        deep = {"type": "Repeat", "n": 2, "body": [deep]}
    for item in (deep, {"type": "Repeat", "n": 10**9, "body": ["ReLU"]},
                 {"type": "Repeat", "n": 2**70, "body": ["ReLU"]},
                 {"type": "Sequential", "body": [{"type": "Repeat", "n": 60_000, "body": ["ReLU"]}] * 2}):
        t = time.perf_counter()
        try:  # refused when loading (spec.py's limit) or, for a Spec built otherwise, by the analysis
            report = check({"input": [3, 8, 8], "layers": [item]})
            errors = report.errors
        except SpecError as exc:
            errors = exc.diagnostics
        assert time.perf_counter() - t < 5  # a hang guard (it answers in milliseconds)
        assert errors and any(s in errors[0].message for s in ("at most 10,000", "more than 10,000", "at most 1,099,511,627,776"))
        assert errors[0].index in (0, None)
    from cnnshape.analysis import analyze as run
    from cnnshape.layers import LAYER_TYPES
    from cnnshape.spec import Spec

    spec = Spec((3, 8, 8), (LAYER_TYPES["Repeat"](n=10**9, body=(LAYER_TYPES["ReLU"](),)),))
    t = time.perf_counter()
    report = run(spec)
    assert time.perf_counter() - t < 1
    assert "at most 10,000 layers" in report.errors[0].message and report.errors[0].key in ("n", None)
    ok = check({"input": [3, 8, 8], "layers": [{"type": "Repeat", "n": 5000, "body": ["ReLU"]}]})
    assert ok.ok and len(ok.layers[0].children) == 5000 and ok.layers[0].children[-1].path == "0.4999"


@pytest.mark.parametrize("block", [{"type": "Repeat", "n": 6000, "body": ["ReLU", "ReLU"]},
                                   {"type": "DenseBlock", "n": 6000, "body": ["ReLU", "ReLU"]}])
def test_the_loader_counts_every_copy(block):
    """A DenseBlock's n multiplies its body like a Repeat's: refused when loading, before any
    analysis (12,000 layers > 10,000), and half of it loads."""
    with pytest.raises(SpecError) as info:
        load({"input": [3, 8, 8], "layers": [block]})
    assert "expands to more than 10,000 layers" in info.value.diagnostics[0].message
    assert load({"input": [3, 8, 8], "layers": [{**block, "n": 3000}]}).layers[0].copy_count() == 3000


# ------------------------------------------------ new blocks: torchvision's own modules
def _tv():
    import types

    for n in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
        sys.modules.setdefault(n, types.ModuleType(n))
    import torchvision

    return torchvision


@pytest.fixture
def channel_shuffle():
    """ChannelShuffle comes from the layers helper; a stand-in until it is merged."""
    from cnnshape.layers import LAYER_TYPES

    if "ChannelShuffle" in LAYER_TYPES:
        yield
        return
    from cnnshape.layers.base import Arg, Inference, Layer, register

    @register
    class ChannelShuffle(Layer):
        """Stand-in. Shape: unchanged."""
        groups = Arg("int", doc="groups", ge=1)

        def infer(self, shape, batch):
            return Inference(shape)

    yield
    del LAYER_TYPES["ChannelShuffle"]


def _same_as_torchvision(tv_module, spec):
    """Compiled spec vs a torchvision module (as child "0"): keys, strict load, outputs, params;
    then the exported file and the re-imported spec give the same outputs."""
    tv = torch.nn.Sequential(tv_module).eval()
    report = check(spec)
    assert report.ok, [e.message for e in report.errors]
    model = build(report.spec).eval()
    assert set(model.state_dict()) == set(tv.state_dict())
    model.load_state_dict(tv.state_dict(), strict=True)
    assert report.totals.params == sum(p.numel() for p in tv.parameters())
    x = torch.randn(2, *spec["input"])
    with torch.no_grad():
        y = model(x)
        assert torch.allclose(y, tv(x), atol=1e-5)
    assert tuple(y.shape[1:]) == report.output
    ns: dict = {"__name__": "exported"}
    exec(compile(export_python(report.spec), "net.py", "exec"), ns)
    net = ns["Net"]().eval()
    ns["load_sequential_state"](net, model.state_dict())
    again = build(from_module(model, report.spec.input)).eval()
    again.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.allclose(net(x), y, atol=1e-6) and torch.allclose(again(x), y, atol=1e-6)


def _cbn(name, out, k, stride=1, groups=1, act="ReLU", eps=1e-5, momentum=0.1):
    body = [{"type": "Conv2d", "out_channels": out, "kernel_size": k, "stride": stride, "padding": (k - 1) // 2,
             "groups": groups, "bias": False}, {"type": "BatchNorm2d", "eps": eps, "momentum": momentum}]
    return {"type": "Sequential", "name": name, "body": body + ([act] if act else [])}


def test_mobilenet_v3_inverted_residual_with_squeeze_excitation():
    from functools import partial

    mv3 = _tv().models.mobilenetv3
    torch.manual_seed(0)
    cnf = mv3.InvertedResidualConfig(24, 5, 72, 24, True, "RE", 1, 1, 1.0)
    tv = mv3.InvertedResidual(cnf, partial(torch.nn.BatchNorm2d, eps=0.001, momentum=0.01))
    bn = {"eps": 0.001, "momentum": 0.01}
    _same_as_torchvision(tv, {"input": [24, 14, 14], "layers": [{"type": "Residual", "body": [
        {"type": "Sequential", "name": "block", "body": [
            _cbn("0", 72, 1, **bn), _cbn("1", 72, 5, groups=72, **bn),
            {"type": "SqueezeExcitation", "name": "2", "squeeze_channels": 24, "scale_activation": "Hardsigmoid"},
            _cbn("3", 24, 1, act=None, **bn)]}]}]})


@pytest.mark.parametrize("stride", [1, 2])
def test_shufflenet_v2_unit_split_and_shuffle(stride, channel_shuffle):
    tv = _tv().models.shufflenetv2.InvertedResidual(48 if stride == 1 else 24, 48, stride)
    inp, bf = (48 if stride == 1 else 24), 24

    def conv(o, k, s=1, g=1):
        return {"type": "Conv2d", "out_channels": o, "kernel_size": k, "stride": s, "padding": (k - 1) // 2,
                "groups": g, "bias": False}

    branch2 = [conv(bf, 1), "BatchNorm2d", "ReLU", conv(bf, 3, stride, bf), "BatchNorm2d", conv(bf, 1), "BatchNorm2d",
               "ReLU"]
    branch1 = [] if stride == 1 else [conv(inp, 3, 2, inp), "BatchNorm2d", conv(bf, 1), "BatchNorm2d", "ReLU"]
    concat = {"type": "Concat", "names": ["branch1", "branch2"], "branches": [branch1, branch2],
              "after": [{"type": "ChannelShuffle", "groups": 2}], **({"split": True} if stride == 1 else {})}
    _same_as_torchvision(tv, {"input": [inp, 16, 16], "layers": [concat]})


def test_densenet_dense_block():
    tv = _tv().models.densenet._DenseBlock(3, 16, 4, 8, 0.0)
    body = [{"type": "BatchNorm2d", "name": "norm1"}, {"type": "ReLU", "name": "relu1"},
            {"type": "Conv2d", "name": "conv1", "out_channels": 32, "kernel_size": 1, "bias": False},
            {"type": "BatchNorm2d", "name": "norm2"}, {"type": "ReLU", "name": "relu2"},
            {"type": "Conv2d", "name": "conv2", "out_channels": 8, "kernel_size": 3, "padding": 1, "bias": False}]
    _same_as_torchvision(tv, {"input": [16, 8, 8], "layers": [
        {"type": "DenseBlock", "n": 3, "body": body, "child_names": "denselayer{number}"}]})


def test_squeezenet_fire_inline_concat():
    tv = _tv().models.squeezenet.Fire(16, 4, 8, 8)

    def conv(name, o, k, p=0):
        return [{"type": "Conv2d", "name": name, "out_channels": o, "kernel_size": k, "padding": p},
                {"type": "ReLU", "name": f"{name}_activation", "inplace": True}]

    _same_as_torchvision(tv, {"input": [16, 9, 9], "layers": [{"type": "Sequential", "body": [
        *conv("squeeze", 4, 1),
        {"type": "Concat", "inline": True, "flat": True, "branches": [conv("expand1x1", 8, 1),
                                                                     conv("expand3x3", 8, 3, 1)]}]}]})


def test_inception_v3_inception_e_flat_and_nested_inline():
    tv = _tv().models.inception.InceptionE(32)

    def basic(name, o, k, p=0):
        return {"type": "Sequential", "name": name, "body": [
            {"type": "Conv2d", "name": "conv", "out_channels": o, "kernel_size": k, "padding": p, "bias": False},
            {"type": "BatchNorm2d", "name": "bn", "eps": 0.001}, {"type": "ReLU", "name": "relu"}]}

    def pair(a, b):
        return {"type": "Concat", "inline": True, "flat": True,
                "branches": [[basic(a, 384, [1, 3], [0, 1])], [basic(b, 384, [3, 1], [1, 0])]]}

    _same_as_torchvision(tv, {"input": [32, 8, 8], "layers": [{"type": "Concat", "flat": True, "branches": [
        [basic("branch1x1", 320, 1)],
        [basic("branch3x3_1", 384, 1), pair("branch3x3_2a", "branch3x3_2b")],
        [basic("branch3x3dbl_1", 448, 1), basic("branch3x3dbl_2", 384, 3, 1), pair("branch3x3dbl_3a", "branch3x3dbl_3b")],
        [{"type": "AvgPool2d", "name": "pool", "kernel_size": 3, "stride": 1, "padding": 1},
         basic("branch_pool", 192, 1)]]}]})


def test_convnext_cnblock_layer_scale():
    from cnnshape.layers import LAYER_TYPES

    missing = [t for t in ("Permute", "LayerNorm", "StochasticDepth") if t not in LAYER_TYPES]
    if missing:
        pytest.skip(f"needs the layers helper's {missing}")
    tv = _tv().models.convnext.CNBlock(16, 1e-6, 0.0)
    _same_as_torchvision(tv, {"input": [16, 8, 8], "layers": [{"type": "Residual", "layer_scale": 1e-6, "body": [
        {"type": "Sequential", "name": "block", "body": [
            {"type": "Conv2d", "out_channels": 16, "kernel_size": 7, "padding": 3, "groups": 16},
            {"type": "Permute", "dims": [0, 2, 3, 1]}, {"type": "LayerNorm", "normalized_shape": [16], "eps": 1e-6},
            {"type": "Linear", "out_features": 64}, "GELU", {"type": "Linear", "out_features": 16},
            {"type": "Permute", "dims": [0, 3, 1, 2]}]},
        {"type": "StochasticDepth", "name": "stochastic_depth", "p": 0.0, "mode": "row"}]}]})


def test_layer_scale_is_a_parameter_named_layer_scale():
    spec = {"input": [4, 6, 6], "layers": [{"type": "Residual", "layer_scale": 0.5, "body": [
        {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1}]}]}
    report = check(spec)
    model = build(report.spec).eval()
    sd = model.state_dict()
    assert list(sd)[0] == "0.layer_scale" and sd["0.layer_scale"].shape == (4, 1, 1)
    assert report.totals.params == sum(p.numel() for p in model.parameters()) == 4 + 4 * 4 * 9 + 4
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        assert torch.allclose(model(x), 0.5 * model[0].get_submodule("0")(x) + x)


@pytest.mark.parametrize("item, fragment, key", [
    ({"type": "Concat", "split": True, "branches": [[], ["ReLU"]]}, "cannot be split into 2", "split"),
    ({"type": "SqueezeExcitation", "gate": [{"type": "Conv2d", "out_channels": 2, "kernel_size": 1}]},
     "cannot scale the input", "gate"),
    ({"type": "DenseBlock", "n": 2, "body": [{"type": "Conv2d", "out_channels": 2, "kernel_size": 3}]},
     "must keep the spatial size", "body"),
    ({"type": "Sequential", "body": [{"type": "ReLU", "name": "a"}, {"type": "Concat", "inline": True, "flat": True,
      "branches": [[{"type": "ReLU", "name": "a"}], ["Tanh"]]}]}, "registered as", None),
    ({"type": "Sequential", "body": [{"type": "ReLU", "name": "a"}, {"type": "Concat", "inline": True, "flat": True,
      "branches": [[{"type": "ReLU", "name": "a"}], ["Tanh"]]}]}, "registered as", None),
])
def test_new_block_errors_are_located(item, fragment, key):
    report = check({"input": [3, 8, 8], "layers": [item]})
    assert not report.ok and fragment in report.errors[0].message, report.errors[0].message
    assert report.errors[0].hint
    if key:
        assert report.errors[0].key in (key, None)


@pytest.mark.parametrize("fmt", ["layer", "x{foo}", "a.{index}", "{"])
def test_bad_child_names_are_refused(fmt):
    with pytest.raises(SpecError, match="child_names"):
        load({"input": [3, 8, 8], "layers": [{"type": "Repeat", "n": 2, "body": ["ReLU"], "child_names": fmt}]})


# ------------------------------------------------------------ import that does not lie
def _import_cli(target: str, shape: str):
    from click.testing import CliRunner

    from cnnshape.cli import main

    return CliRunner().invoke(main, ["import", target, "--input", shape])


def test_import_refuses_shared_weights_and_duplicates_stateless_modules():
    from cnnshape.errors import CnnshapeError

    lin = torch.nn.Linear(4, 4)
    with pytest.raises(CnnshapeError, match=r"'2' is the same Linear as '0'.*weight sharing cannot be expressed"):
        from_module(torch.nn.Sequential(lin, torch.nn.ReLU(), lin), [4])
    relu = torch.nn.ReLU()
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), relu, torch.nn.Linear(4, 4), relu).eval()
    spec = from_module(model, [4])
    assert [lr.type for lr in spec.layers] == ["Linear", "ReLU", "Linear", "ReLU"]  # duplicated: exact
    again = build(spec).eval()
    again.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(3, 4)
    with torch.no_grad():
        assert torch.allclose(again(x), model(x))


def test_import_refuses_partly_frozen_layers_and_keeps_fully_frozen_ones():
    from cnnshape.errors import CnnshapeError

    conv = torch.nn.Conv2d(3, 4, 3)
    conv.bias.requires_grad_(False)
    with pytest.raises(CnnshapeError, match=r"'0' \(Conv2d\) is partly frozen: bias frozen, weight trainable"):
        from_module(torch.nn.Sequential(conv), [3, 8, 8])
    conv.weight.requires_grad_(False)
    spec = from_module(torch.nn.Sequential(conv), [3, 8, 8])
    assert spec.layers[0].trainable is False and analyze(spec).totals.trainable_params == 0


def test_import_traces_a_sequential_subclass_with_its_own_forward():
    """A Sequential subclass with its own forward is traced through, not read as its
    children: ``* 2`` is a Multiply; an op with no spec layer is refused at its line."""
    from cnnshape.errors import CnnshapeError

    class Twice(torch.nn.Sequential):
        def forward(self, x):
            return super().forward(x) * 2

    class Sums(torch.nn.Sequential):
        def forward(self, x):
            return torch.cumsum(super().forward(x), 1)

    model = torch.nn.Sequential(torch.nn.ReLU(), Twice(torch.nn.ReLU()))
    spec = from_module(model, [4])
    assert [(x.type, getattr(x, "value", None)) for x in spec.layers[1].body][-1] == ("Multiply", 2.0)
    x = torch.randn(3, 4)
    assert torch.equal(build(spec)(x), model(x))
    with pytest.raises(CnnshapeError, match=r"test_blocks.py:\d+:\d+: torch.cumsum in '1'.forward has no "):
        from_module(torch.nn.Sequential(torch.nn.ReLU(), Sums(torch.nn.ReLU())), [4])


def test_import_an_exported_file_round_trips(tmp_path):
    spec = load({"input": [3, 8, 8], "layers": [
        {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"type": "Residual", "name": "res", "layer_scale": 0.5, "body": [
            {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1}], "after": ["ReLU"]},
        {"type": "Concat", "names": ["a", "b"], "after": ["ReLU"], "branches": [
            [{"type": "Conv2d", "out_channels": 2, "kernel_size": 1}], [{"type": "MaxPool2d", "kernel_size": 1}]]},
        {"type": "SqueezeExcitation", "squeeze_channels": 2},
        {"type": "DenseBlock", "n": 2, "child_names": "layer{number}", "body": [
            "BatchNorm2d", {"type": "Conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1}]}]})
    path = tmp_path / "net.py"
    path.write_text(export_python(spec))
    out = _import_cli(f"{path}:Net", "3,8,8")
    assert out.exit_code == 0, out.output
    again = load(out.stdout)
    ours, theirs = build(spec), build(again)
    assert repr(ours) == repr(theirs)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


def test_import_a_class_that_needs_arguments_says_so(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from torch import nn\nclass Net(nn.Sequential):\n    def __init__(self, k):\n"
                    "        super().__init__(nn.Linear(4, k))\nclass Plain(nn.Sequential):\n"
                    "    def __init__(self):\n        super().__init__(nn.Linear(4, 2), nn.ReLU())\n")
    bad = _import_cli(f"{path}:Net", "4")
    assert bad.exit_code != 0 and "needs arguments (k)" in bad.output and "Traceback" not in bad.output
    good = _import_cli(f"{path}:Plain", "4")
    assert good.exit_code == 0, good.output
    assert [x.type for x in load(good.stdout).layers] == ["Linear", "ReLU"]


def test_import_recognises_torchvision_squeeze_excitation():
    se = _tv().ops.SqueezeExcitation(8, 2).eval()
    spec = from_module(torch.nn.Sequential(se), [8, 4, 4])
    assert spec.layers[0].type == "SqueezeExcitation"
    model = build(spec).eval()
    model.load_state_dict(torch.nn.Sequential(se).state_dict(), strict=True)
    x = torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        assert torch.allclose(model(x), se(x), atol=1e-6)


def test_studio_tree_labels_are_the_module_paths_for_every_block(tmp_path):
    from cnnshape import design as D
    from cnnshape.roundtrip import DesignFile
    from cnnshape.tui.view import tree_nodes

    path = tmp_path / "t.yaml"
    path.write_text("""input: [8, 8, 8]
layers:
  - {type: Residual, layer_scale: 0.5, body: [{type: Conv2d, out_channels: 8, kernel_size: 3, padding: 1}]}
  - {type: SqueezeExcitation, name: se, gate: [{type: AdaptiveAvgPool2d, output_size: 1, name: p}, {type: Conv2d, out_channels: 8, kernel_size: 1}, Sigmoid]}
  - {type: Concat, names: [a, b], split: true, branches: [[], [ReLU, {type: Conv2d, out_channels: 4, kernel_size: 1}]], after: [ReLU]}
  - {type: Concat, flat: true, branches: [[{type: Conv2d, name: x1, out_channels: 2, kernel_size: 1}], [{type: Conv2d, name: x2, out_channels: 2, kernel_size: 1}, ReLU]], after: [ReLU]}
  - type: Sequential
    body:
      - {type: Conv2d, name: sq, out_channels: 4, kernel_size: 1}
      - {type: Concat, inline: true, flat: true, branches: [[{type: Conv2d, name: e1, out_channels: 4, kernel_size: 1}], [{type: Conv2d, name: e3, out_channels: 4, kernel_size: 3, padding: 1}]]}
  - {type: DenseBlock, n: 3, child_names: "dl{number}", body: [BatchNorm2d, ReLU, {type: Conv2d, out_channels: 2, kernel_size: 3, padding: 1}]}
  - {type: Repeat, n: 2, child_names: "b{number}", body: [ReLU]}
""")
    f = DesignFile.open(str(path))
    ev = D.evaluate(f.original)
    assert ev.ok
    nodes = tree_nodes(f.original, ev, set(), everything=True)
    assert len(nodes) == 27  # 26 layers and blocks, and the Repeat's second copy (listed collapsed)
    for n in nodes:
        assert n.report is not None and n.label == n.report.path, n.path
        assert D.get_data(f.original, n.path)


def test_frozen_layer_scale_is_frozen_in_the_compiled_and_exported_model(tmp_path):
    """trainable: false on a Residual with layer_scale: the block's own parameter is frozen in
    the compiled model and in exported code, as the analysis counts it."""
    import importlib.util

    from cnnshape.analysis import check
    from cnnshape.torch_backend.build import build
    from cnnshape.torch_backend.export import export_python

    spec = {"input": [4, 6, 6], "layers": [{"type": "Residual", "trainable": False, "layer_scale": 0.5,
                                            "body": [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3,
                                                      "padding": 1}]},
                                           {"type": "Conv2d", "out_channels": 2, "kernel_size": 1}]}
    report = check(spec)
    assert report.totals.params == 4 + 4 * 4 * 9 + 4 + 2 * 4 + 2 and report.totals.trainable_params == 10
    model = build(spec)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 10
    path = tmp_path / "net.py"
    path.write_text(export_python(spec))
    mod = importlib.util.module_from_spec(importlib.util.spec_from_file_location("net", path))
    mod.__spec__.loader.exec_module(mod)
    net = mod.Net()
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 10


def test_compiled_residual_refuses_to_broadcast():
    """The analysis (and `cnnshape sizes`) require equal shapes at a Residual add; the compiled
    module refuses a broadcasting add too, instead of silently computing something else."""
    from cnnshape.torch_backend.build import build

    spec = {"input": [4, 12, 10], "layers": [{"type": "Residual", "body": [
        {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1}],
        "shortcut": [{"type": "MaxPool2d", "kernel_size": 2}]}]}
    model = build(spec)
    assert model(torch.randn(1, 4, 12, 10)).shape == (1, 4, 6, 5)
    # H = 3: body [4, 2, 5], shortcut [4, 1, 5] -- torch alone would broadcast the add
    with pytest.raises(RuntimeError, match=r"Residual add needs equal shapes: body outputs \[4, 2, 5\], "
                                           r"shortcut outputs \[4, 1, 5\]"):
        model(torch.randn(1, 4, 3, 10))
