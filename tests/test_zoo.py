"""The zoo against real torchvision (0.28.0): every classifier's params, trainable params,
MACs (torch's FlopCounterMode / 2), state_dict keys and shapes, and outputs with
torchvision's weights loaded strictly.

Cheap checks (meta device: no weights allocated) run for every classifier; outputs run for a
few small models at a reduced input in the fast profile, for all of them at their declared
input with CNNSHAPE_ZOO=full or CNNSHAPE_HYPOTHESIS=thorough (CNNSHAPE_ZOO_SIZE=96 runs
them at 96x96 instead, where the net allows it: the same weights and wiring, less CPU).
"""

import json
import os
import subprocess
import sys
import types

import pytest
import torch

from cnnshape import zoo
from cnnshape.analysis import analyze
from cnnshape.torch_backend.build import build

from .conftest import PROFILE, ROOT, cli

FULL = os.environ.get("CNNSHAPE_ZOO") == "full" or PROFILE == "thorough"

# torchvision builds googlenet and inception_v3 with auxiliary heads only when asked; the zoo
# has none (aux_logits=False) and no input transform (transform_input=False, the default
# without weights).
TV_KWARGS = {"googlenet": {"aux_logits": False, "init_weights": False},
             "inception_v3": {"aux_logits": False, "init_weights": False}}
GENERATIVE = ("conv_autoencoder", "dcgan_generator", "unet")


def torchvision_models():
    """torchvision.models, imported with its compiled-op registrations stubbed (its C++ ops do
    not load against the CPU build of torch; the model definitions do not need them)."""
    for n in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
        sys.modules.setdefault(n, types.ModuleType(n))
    from torchvision import models

    return models


def tv_classifiers() -> list[str]:
    models = torchvision_models()
    return sorted(n for n in models.list_models(module=models) if not n.startswith(("vit_", "swin", "maxvit")))


CLASSIFIERS = [n for n in zoo.names() if n not in GENERATIVE]
INDEX = {e["name"]: e for e in zoo.entries()}


def tv_model(name: str, device="meta"):
    models = torchvision_models()
    from torchvision.models import regnet

    bp = regnet.BlockParams  # RegNet computes its widths with torch ops: keep them off the meta device
    orig = bp.from_init_params.__func__
    if not getattr(orig, "_cpu", False):
        def from_init_params(cls, *a, **k):
            with torch.device("cpu"):
                return orig(cls, *a, **k)
        from_init_params._cpu = True
        bp.from_init_params = classmethod(from_init_params)
    with torch.device(device):
        return models.get_model(name, weights=None, **TV_KWARGS.get(name, {}))


def test_zoo_has_every_torchvision_classifier_and_the_examples():
    assert len(tv_classifiers()) == 68
    missing = sorted(set(tv_classifiers()) - set(zoo.names()))
    assert missing == [], f"{len(missing)} torchvision classifiers missing from the zoo: {missing}"
    assert set(GENERATIVE) <= set(zoo.names())


def test_input_is_the_crop_size_of_the_default_weights():
    models = torchvision_models()
    for e in zoo.entries():
        if e["name"] in CLASSIFIERS:
            (crop,) = models.get_model_weights(e["name"]).DEFAULT.transforms().crop_size
            assert e["input"] == [3, crop, crop], e["name"]


# the fast profile checks one model of every family (its smallest; both block kinds of
# EfficientNetV2); CNNSHAPE_ZOO=full checks all 68 (about 1 s of CPU each)
FAST_META = ["alexnet", "convnext_tiny", "densenet121", "efficientnet_b0", "efficientnet_v2_s", "googlenet",
             "inception_v3", "mnasnet0_5", "mobilenet_v2", "mobilenet_v3_small", "regnet_x_400mf", "regnet_y_400mf",
             "resnet18", "resnext50_32x4d", "shufflenet_v2_x0_5", "squeezenet1_1", "vgg11_bn", "wide_resnet50_2"]


@pytest.mark.parametrize("name", CLASSIFIERS if FULL else FAST_META)
def test_params_macs_and_keys_equal_torchvision(name):
    from torch.utils.flop_counter import FlopCounterMode

    spec = zoo.load(name)
    report = analyze(spec)
    assert report.ok, report.errors
    assert INDEX[name] == zoo.entry(name, report)  # the listing's figures
    tv = tv_model(name)
    params = list(tv.parameters())
    assert report.totals.params == sum(p.numel() for p in params)
    assert report.totals.trainable_params == sum(p.numel() for p in params if p.requires_grad)
    tv.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        tv(torch.empty(1, *spec.input, device="meta"))
    assert 2 * report.totals.macs == counter.get_total_flops()
    ours = build(spec, device="meta", report=report).state_dict()
    theirs = tv.state_dict()
    assert set(ours) == set(theirs)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}


def _randomize(model):
    """Random weights and BatchNorm statistics, so that a wrong wiring shows in the outputs."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for k, t in model.state_dict().items():
            if t.is_floating_point():
                if k.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * (0.1 if t.dim() > 1 else 0.5))
    return model


def cpu_model(model):
    """A meta-device model on the CPU with random weights (skips the slow initialisers)."""
    return _randomize(model.to_empty(device="cpu"))


# small models of the block kinds (squeeze-excitation, split/shuffle, dense, inline and
# named concatenations, stochastic depth, MBConv), at an input their strides allow
FAST_OUTPUTS = {"mnasnet0_5": 64, "squeezenet1_1": 64, "shufflenet_v2_x0_5": 64, "mobilenet_v3_small": 64,
                "densenet121": 32, "efficientnet_b0": 64, "googlenet": 64, "regnet_y_400mf": 64}


@pytest.mark.parametrize("name", CLASSIFIERS if FULL else sorted(set(FAST_OUTPUTS) & set(CLASSIFIERS)))
def test_outputs_equal_torchvision_with_its_weights(name):
    torch.manual_seed(0)
    spec = zoo.load(name)
    size = spec.input[1] if FULL else FAST_OUTPUTS[name]
    if FULL and os.environ.get("CNNSHAPE_ZOO_SIZE"):  # all models at a smaller input (where it is valid)
        small = int(os.environ["CNNSHAPE_ZOO_SIZE"])
        if analyze(zoo.load(name, input=[3, small, small])).ok:
            size = small
    if size != spec.input[1]:
        spec = zoo.load(name, input=[3, size, size])
    tv = cpu_model(tv_model(name)).eval()
    model = build(spec, device="meta").to_empty(device="cpu").eval()
    model.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        want, got = tv(x), model(x)
    assert got.shape == want.shape == (2, 1000)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max())), \
        float((got - want).abs().max())


def test_index_lists_every_spec_and_headers_state_its_figures():
    """Each entry's figures are checked against a fresh analysis with its spec's test (and all
    at once here with CNNSHAPE_ZOO=full); the header comment of every spec states them."""
    assert [e["name"] for e in zoo.entries()] == zoo.names()
    if FULL:
        assert zoo.entries() == zoo.compute_index()
    for e in zoo.entries():
        with open(zoo.path(e["name"])) as f:
            head = "".join(line for line in f if line.startswith("#"))
        assert f"{e['params']:,} params, {e['macs']:,} MACs" in head, e["name"]


@pytest.mark.parametrize("name", GENERATIVE)
def test_generative_and_segmentation_examples_check_build_verify_and_run(name, tmp_path):
    from cnnshape.torch_backend.export import export_python
    from cnnshape.torch_backend.verify import verify

    spec = zoo.load(name) if name != "unet" else zoo.load(name, input=[3, 64, 64])
    report = analyze(spec)
    assert report.ok and not report.warnings, report.errors or report.warnings
    if name != "unet":
        assert INDEX[name] == zoo.entry(name, report)
    else:
        assert INDEX[name] == zoo.entry(name, analyze(zoo.load(name)))
    assert verify(spec).ok
    torch.manual_seed(0)
    model = build(spec).eval()
    assert sum(p.numel() for p in model.parameters()) == report.totals.params
    x = torch.randn(2, *spec.input)
    with torch.no_grad():
        y = model(x)
    assert tuple(y.shape) == (2, *report.output)
    expected = {"unet": (2, 64, 64), "dcgan_generator": (3, 64, 64), "conv_autoencoder": (1, 28, 28)}[name]
    assert report.output == expected
    if name == "dcgan_generator":
        assert float(y.abs().max()) <= 1.0  # tanh images
    src = export_python(spec)
    ns = {}
    exec(compile(src, str(tmp_path / "net.py"), "exec"), ns)
    net = ns["Net"]().eval()
    ours, theirs = model.state_dict(), net.state_dict()  # exported attribute names are the layers' own
    assert [v.shape for v in ours.values()] == [v.shape for v in theirs.values()]
    net.load_state_dict(dict(zip(theirs, ours.values())), strict=True)
    with torch.no_grad():
        assert torch.allclose(net(x), y, atol=1e-6)


def test_library_accessors():
    assert zoo.path("resnet50").endswith(os.path.join("zoo", "specs", "resnet50.yaml"))
    assert zoo.load("resnet18").input == (3, 224, 224)
    with pytest.raises(zoo.ZooError, match="did you mean 'resnet50'"):
        zoo.path("resnet05")


def cnnshape(*args, cwd=ROOT):
    return cli(*args, cwd=cwd, env={"COLUMNS": "200"})


def test_zoo_command_lists_every_entry_without_torch():
    code = ("import sys; from cnnshape.cli import main\nsys.argv = ['cnnshape', 'zoo', '--format', 'json']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nassert 'torch' not in sys.modules, 'torch imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [e["name"] for e in doc] == zoo.names()
    table = cnnshape("zoo")
    assert table.returncode == 0
    for e in zoo.entries():
        assert e["name"] in table.stdout and f"{e['params']:,}" in table.stdout


def test_zoo_command_writes_a_copy(tmp_path):
    out = tmp_path / "my.yaml"
    r = cnnshape("zoo", "resnet18", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text() == open(zoo.path("resnet18")).read()
    again = cnnshape("zoo", "resnet18", "-o", str(out))
    assert again.returncode == 2 and "exists" in again.stderr and "--force" in again.stderr
    out.write_text("x")
    assert cnnshape("zoo", "mobilenet_v2", "-o", str(out), "--force").returncode == 0
    assert "mobilenet_v2" in out.read_text()
    bad = cnnshape("zoo", "resnet05", "-o", str(tmp_path / "x.yaml"))
    assert bad.returncode == 2 and "did you mean 'resnet50'" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.yaml").exists()
    shown = cnnshape("zoo", "resnet18")
    assert shown.returncode == 0 and shown.stdout == open(zoo.path("resnet18")).read()


EXAMPLES = {"resnet18": 64, "resnet50": 64, "mobilenet_v2": 64, "alexnet": 96, "vgg16": 32}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_specs_in_specs_folder_load_torchvision_weights(name):
    """specs/ keeps these as worked examples: their figures equal their zoo copies', they load
    torchvision's state_dict strictly (and give its outputs: the two small ones by default)."""
    from cnnshape.spec import load

    from .conftest import SPECS

    path = os.path.join(SPECS, f"{name}.yaml")
    assert analyze(load(path)).totals == analyze(zoo.load(name)).totals
    size = EXAMPLES[name]
    spec = load(path, input=[3, size, size])
    tv = tv_model(name)
    model = build(spec, device="meta")
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in tv.state_dict().items()}
    if not FULL and name not in ("resnet18", "mobilenet_v2"):
        return
    tv = cpu_model(tv).eval()
    model = model.to_empty(device="cpu").eval()
    model.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        want, got = tv(x), model(x)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def test_readme_table_lists_every_entry_with_its_figures():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    table = readme[readme.index("<!-- zoo table"):readme.index("<!-- /zoo table -->")]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) == len(zoo.names())
    for e, row in zip(zoo.entries(), rows):
        assert row.startswith(f"| `{e['name']}` | {'x'.join(map(str, e['input']))} | {e['params']:,} | "
                              f"{e['macs']:,} |"), row


FAST_VERIFY_EXPORT = ["squeezenet1_1", "shufflenet_v2_x0_5", "mobilenet_v3_small", "regnet_y_400mf"]


@pytest.mark.parametrize("name", CLASSIFIERS if FULL else FAST_VERIFY_EXPORT)
def test_zoo_specs_verify_and_export(name):
    """Every layer's shape and params equal torch's (verify), and the exported plain-PyTorch
    file has the compiled model's state_dict keys and outputs (at 96x96: same wiring)."""
    from cnnshape.torch_backend.export import export_python
    from cnnshape.torch_backend.verify import verify

    spec = zoo.load(name, input=[3, 96, 96])
    assert verify(spec, use_torchinfo=False).ok
    ns = {}
    exec(compile(export_python(spec), f"{name}.py", "exec"), ns)
    with torch.device("meta"):
        net = ns["Net"]()
    model = build(spec, device="meta")
    assert {k: v.shape for k, v in net.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    net, model = cpu_model(net).eval(), model.to_empty(device="cpu").eval()
    model.load_state_dict(net.state_dict(), strict=True)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(net(x), model(x), rtol=1e-5, atol=1e-6)
