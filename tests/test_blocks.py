"""Blocks (Sequential, Repeat, Residual, Concat) and the model zoo, against torch."""

import json
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, note

from cnnshape import strategies as cs
from cnnshape.analysis import analyze, check
from cnnshape.errors import SpecError
from cnnshape.spec import load
from cnnshape.torch_backend.build import build
from cnnshape.torch_backend.export import export_python
from cnnshape.torch_backend.importer import from_module
from cnnshape.torch_backend.verify import verify

from .conftest import ROOT, SPECS
from .oracle import run_nested


def test_resnet50_check_prints_torchvision_count_and_stage_table():
    out = subprocess.run([sys.executable, "-m", "cnnshape", "check", os.path.join(SPECS, "resnet50.yaml")],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "120"})
    assert out.returncode == 0, out.stderr
    assert "25,557,032" in out.stdout
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        assert stage in out.stdout
    assert "layer2.0.conv1" not in out.stdout  # one row per stage by default
    deep = subprocess.run([sys.executable, "-m", "cnnshape", "check", os.path.join(SPECS, "resnet50.yaml"),
                           "--depth", "3"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "160"})
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
def _compare_nested(spec_dict):
    note("spec:\n" + json.dumps(spec_dict))
    try:
        report = check(spec_dict)
        first = report.errors[0].index if report.errors else None
        errors = report.errors
    except SpecError as exc:
        report, errors = None, exc.diagnostics
        first = min(d.index for d in exc.diagnostics if d.index is not None)
    t = run_nested(spec_dict)
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


@given(cs.nested_spec_dicts())
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
            body = [_unnamed(c[0]) if len(c) == 1 else {"type": "Sequential", "body": [x.to_item() for x in c]}
                    for c in layer.copies()]
            items.append({"type": "Sequential", "body": body, **({"name": layer.name} if layer.name else {})})
        else:
            items.append(layer.to_item())
    return {**spec_dict, "layers": items}


@given(cs.nested_spec_dicts())
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
        report = check({"input": [3, 8, 8], "layers": [item]})
        assert time.perf_counter() - t < 1
        assert not report.ok and "at most 100,000 layers" in report.errors[0].message
        assert report.errors[0].line is None or report.errors[0].index == 0
    ok = check({"input": [3, 8, 8], "layers": [{"type": "Repeat", "n": 5000, "body": ["ReLU"]}]})
    assert ok.ok and len(ok.layers[0].children) == 5000 and ok.layers[0].children[-1].path == "0.4999"
