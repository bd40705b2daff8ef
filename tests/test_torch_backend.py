"""build / verify / export / import against torch."""

import os
import subprocess
import sys

import pytest
import torch
from hypothesis import given, note
from torch import nn

from cnnshape import strategies as cs
from cnnshape.analysis import analyze, check
from cnnshape.spec import load
from cnnshape.torch_backend.build import BuildError, build, resolve_device
from cnnshape.torch_backend.export import export_python
from cnnshape.torch_backend.importer import from_module
from cnnshape.torch_backend.verify import verify

from .conftest import SPECS, cli


def test_state_dict_keys_equal_hand_written_sequential():
    spec = load(os.path.join(SPECS, "fashion_mnist.yaml"))
    model = build(spec)
    hand = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(676, 64),
                         nn.ReLU())
    hand.add_module("logits", nn.Linear(64, 10))
    assert list(model.state_dict()) == list(hand.state_dict())
    model.load_state_dict(hand.state_dict())


def test_fixed_frozen_weights():
    model = build(os.path.join(SPECS, "edge_filters.yaml"))
    w = model.edges.weight
    assert w.shape == (3, 1, 3, 3) and not w.requires_grad
    assert w[0, 0].tolist() == [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]
    x = torch.zeros(1, 1, 8, 8)
    x[..., 4:, :] = 1.0  # a horizontal edge
    y = model.edges(x)
    assert y[0, 0].abs().sum() > 0 and y[0, 2].abs().sum() == 0  # horizontal filter fires, vertical not


def test_build_refuses_invalid_spec_with_located_errors():
    with pytest.raises(BuildError) as info:
        build(os.path.join(SPECS, "broken_fashion_mnist.yaml"))
    assert info.value.diagnostics[0].index == 4 and "line 9" in str(info.value)


def test_memory_guard_and_meta(monkeypatch):
    import cnnshape.torch_backend.build as b

    monkeypatch.setattr(b, "available_memory", lambda: 10_000_000)
    with pytest.raises(BuildError, match="only 0.01 GB"):
        build(os.path.join(SPECS, "vgg16.yaml"))
    model = build(os.path.join(SPECS, "vgg16.yaml"), device="meta")
    assert next(model.parameters()).is_meta


def test_absent_devices_are_clear_errors():
    if not torch.cuda.is_available():
        with pytest.raises(BuildError, match="CUDA is not available"):
            resolve_device("cuda")
    if not torch.backends.mps.is_available():
        with pytest.raises(BuildError, match="MPS is not available"):
            resolve_device("mps")
    with pytest.raises(BuildError, match="unknown device"):
        resolve_device("tpu9")


def test_dtype():
    model = build("input: [3]\ndtype: float64\nlayers: [{type: Linear, out_features: 2}]")
    assert model[0].weight.dtype == torch.float64


@pytest.mark.parametrize("name", ["fashion_mnist", "convnet_notebook", "edge_filters", "lenet5", "m5_audio_1d",
                                  "volume_3d", "alexnet", "vgg16"])
def test_verify_every_shipped_spec(name):
    result = verify(os.path.join(SPECS, f"{name}.yaml"), device="meta" if name in ("alexnet", "vgg16") else "cpu")
    assert result.ok


def test_verify_cli():
    r = cli("verify", "specs/lenet5.yaml", env={"COLUMNS": "200"})
    assert r.returncode == 0 and "torch agrees" in r.stdout
    r = cli("verify", "specs/lenet5.yaml", "--device", "cuda:7")
    if not torch.cuda.is_available():
        assert r.returncode == 2 and "CUDA is not available" in r.stderr and "Traceback" not in r.stderr


def _run_exported(source: str, tmp_path, spec):
    path = tmp_path / "net.py"
    path.write_text(source)
    assert "cnnshape" not in "\n".join(l for l in source.splitlines() if l.startswith(("import", "from")))
    ns = {}
    exec(compile(source, str(path), "exec"), ns)
    net = ns["Net"]()
    x = torch.zeros(2, *spec.input)
    return net, net.eval()(x)


@pytest.mark.parametrize("name", ["fashion_mnist", "convnet_notebook", "edge_filters", "lenet5", "m5_audio_1d",
                                  "volume_3d"])
def test_exported_python_runs_alone_and_matches(name, tmp_path):
    spec = load(os.path.join(SPECS, f"{name}.yaml"))
    report = analyze(spec)
    source = export_python(spec)
    path = tmp_path / "net.py"
    path.write_text(source)
    r = subprocess.run([sys.executable, "-I", str(path)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    net, y = _run_exported(source, tmp_path, spec)
    assert tuple(y.shape[1:]) == report.output
    assert sum(p.numel() for p in net.parameters()) == report.totals.params
    # weights of the compiled Sequential load into the exported module
    ns = {}
    exec(compile(source, "net", "exec"), ns)
    seq = build(spec)
    ns["load_sequential_state"](net, seq.state_dict())
    x = torch.randn(2, *spec.input)
    torch.testing.assert_close(net.eval()(x), seq.eval()(x))


def test_import_cli(tmp_path):
    src = tmp_path / "model.py"
    src.write_text("from torch import nn\nnet = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),\n"
                   "    nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 14 * 14, 10))\n")
    r = cli("import", f"{src}:net", "--input", "1,28,28")
    assert r.returncode == 0, r.stderr
    assert check(r.stdout).output == (10,)
    bad = cli("import", f"{src}:nope", "--input", "1,28,28")
    assert bad.returncode == 2 and "no attribute" in bad.stderr


def test_from_module_rejects_unsupported():
    from cnnshape.errors import CnnshapeError

    with pytest.raises(CnnshapeError, match="Hardshrink"):
        from_module(nn.Sequential(nn.Linear(3, 3), nn.Hardshrink()), [3])


@given(cs.valid_specs(max_layers=5))
def test_build_forward_and_round_trip(spec_dict):
    """build -> batched forward gives the analysed shape; spec -> module -> spec is lossless."""
    note(cs.to_yaml(spec_dict))
    spec = load(spec_dict)
    report = analyze(spec)
    model = build(spec).eval()
    with torch.no_grad():
        y = model(torch.randn(spec.batch, *spec.input))
    if isinstance(y, tuple):
        y = y[0]
    assert tuple(y.shape) == (spec.batch, *report.output)
    again = from_module(model, spec.input, batch=spec.batch)
    rebuilt = build(again).eval()
    assert [repr(m) for m in rebuilt] == [repr(m) for m in model]
    assert [(lr.output, lr.params, lr.trainable_params) for lr in analyze(again).layers] == \
        [(lr.output, lr.params, lr.trainable_params) for lr in report.layers]
    assert list(rebuilt.state_dict()) == list(model.state_dict())


@given(cs.valid_specs(max_layers=5))
def test_generated_totals_equal_torchinfo(spec_dict):
    """Parameter totals of generated specs equal torchinfo's summary of the built model."""
    import torchinfo

    note(cs.to_yaml(spec_dict))
    spec = load(spec_dict)
    report = analyze(spec)
    stats = torchinfo.summary(build(spec), input_size=(spec.batch, *spec.input), verbose=0, mode="eval")
    assert stats.total_params == report.totals.params
    assert stats.trainable_params == report.totals.trainable_params
