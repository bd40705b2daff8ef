"""The torch.fx importer against torch: models as people write them (the four tutorial
styles, a hand-written ResNet, an Inception-style cat, an SE gate, a U-Net with
F.interpolate), torchvision's classifiers from torchvision's own classes, generated specs
exported to Python and imported back; located refusals; user code that fails or exits.

Every imported spec is compiled and loads the model's ``state_dict`` with strict=True, and
the outputs are compared with the model's own. torchvision: a sample in the fast profile,
all 68 with CNNSHAPE_ZOO=full or CNNSHAPE_HYPOTHESIS=thorough.
"""

import os
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass

import pytest
import torch
from hypothesis import given, note

import cnnshape
from cnnshape import strategies as cs
from cnnshape.analysis import analyze
from cnnshape.spec import load
from cnnshape.torch_backend.build import build
from cnnshape.torch_backend.export import export_python
from cnnshape.torch_backend.importer import from_module

from .conftest import PROFILE, ROOT

FULL = os.environ.get("CNNSHAPE_ZOO") == "full" or PROFILE == "thorough"

TUTORIALS = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(in_channels=1, out_channels=4, kernel_size=3),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=2),
            nn.Flatten(),
            nn.Linear(13 * 13 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )

    def forward(self, X):
        logits = self.cnn(X)
        return logits


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 16 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1, 1)
        self.max1 = nn.MaxPool2d(2, 2, 0)
        self.conv2 = nn.Conv2d(16, 32, 3, 1, 0)
        self.max2 = nn.MaxPool2d(2, 2, 1)
        self.conv3 = nn.Conv2d(32, 64, 1, 1, 0)
        self.conv4 = nn.Conv2d(64, 4, 5, 1, 0)
        self.flatten = nn.Flatten()
        self.linear1 = nn.Linear(36, 10)

    def forward(self, inputs):
        x = self.conv1(inputs)
        x = self.max1(x)
        x = self.conv2(x)
        x = self.max2(x)
        x = self.conv3(x)
        x = self.conv4(x)
        x = self.flatten(x)
        x = self.linear1(x)
        return x


class FCNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)  # flatten all dimensions except batch
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return x
'''

HAND = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = self.shortcut(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return F.relu(out)


class ResNet(nn.Module):
    def __init__(self, widths=(8, 16, 32), n=2, classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(widths[0])
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            for j in range(n):
                blocks.append(BasicBlock(cin, w, 2 if j == 0 and i > 0 else 1))
                cin = w
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        for b in self.blocks:
            x = b(x)
        x = F.adaptive_avg_pool2d(x, 1)
        x = x.view(x.size(0), -1)
        return self.fc(x)


class Inception(nn.Module):
    def __init__(self, cin=16):
        super().__init__()
        self.b1 = nn.Conv2d(cin, 8, 1)
        self.b3 = nn.Sequential(nn.Conv2d(cin, 4, 1), nn.ReLU(), nn.Conv2d(4, 8, 3, padding=1))
        self.pool = nn.MaxPool2d(3, 1, 1)
        self.bp = nn.Conv2d(cin, 4, 1)

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.bp(self.pool(x))], 1)


class InceptionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.inc = Inception(16)
        self.head = nn.Linear(20, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = self.inc(x)
        x = torch.mean(x, dim=(2, 3))
        return self.head(x)


class SE(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(c, c // r, bias=False), nn.ReLU(inplace=True),
                                nn.Linear(c // r, c, bias=False), nn.Sigmoid())

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y.expand_as(x)


class SENet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.se = SE(16)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.se(F.relu(self.conv(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class DoubleConv(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1 = DoubleConv(3, 8)
        self.enc2 = DoubleConv(8, 16)
        self.dec = DoubleConv(24, 8)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        up = F.interpolate(e2, scale_factor=2, mode="bilinear", align_corners=False)
        d = self.dec(torch.cat([e1, up], dim=1))
        return self.out(d)


class Padded(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        x = F.leaky_relu(self.conv(x), 0.2)
        x = F.dropout(x, 0.1, training=self.training)
        x = x.mean([2, 3])
        return F.log_softmax(self.fc(self.drop(x)), dim=1)
'''


def _module_file(tmp_path, name: str, text: str):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return path


def _namespace(text: str) -> dict:
    ns: dict = {"__name__": "user_models"}
    exec(compile(text, "user_models.py", "exec"), ns)
    return ns


def _same(model, shape, batch: int = 3):
    """Import ``model`` on ``shape``; the compiled spec loads its state_dict strictly and
    gives its outputs. Returns the spec."""
    model = model.eval()
    spec = from_module(model, input=shape)
    net = build(spec).eval()
    net.load_state_dict(model.state_dict(), strict=True)
    assert analyze(spec).totals.params == sum(p.numel() for p in model.parameters())
    x = torch.randn(batch, *shape)
    with torch.no_grad():
        want, got = model(x), net(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    return spec


@pytest.mark.parametrize("cls, shape", [("NeuralNetwork", (1, 28, 28)), ("Net", (3, 32, 32)),
                                        ("ConvNet", (1, 28, 28)), ("FCNet", (1, 28, 28))])
def test_tutorial_models_import_weight_exactly(cls, shape):
    torch.manual_seed(0)
    spec = _same(_namespace(TUTORIALS)[cls](), shape)
    names = [x.name for x in spec.layers]
    assert len(set(names)) == len(names)  # a stateless module called twice: two rows, two names
    if cls == "Net":
        assert names == ["conv1", "relu", "pool", "conv2", "relu_1", "pool_1", "flatten", "fc1", "relu_2", "fc2",
                         "relu_3", "fc3"]


@pytest.mark.parametrize("cls, blocks", [("ResNet", {"Residual"}), ("InceptionNet", {"Concat"}),
                                         ("SENet", {"SqueezeExcitation"}), ("UNet", {"Concat"}),
                                         ("Padded", set())])
def test_hand_written_models_import_exactly_and_round_trip_through_export(cls, blocks):
    torch.manual_seed(0)
    model = _namespace(HAND)[cls]()
    for m in model.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    spec = _same(model, (3, 32, 32))
    found = {r.type for top in analyze(spec).layers for r in top.walk()}
    assert blocks <= found, found
    ns: dict = {"__name__": "exported"}  # the exported file is a plain module: import it again
    exec(compile(export_python(spec), "exported.py", "exec"), ns)
    again = from_module(ns["Net"](), input=(3, 32, 32))
    assert again.to_dict() == spec.to_dict()


def test_from_module_keyword_input_and_the_old_name():
    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    assert from_module(model, input=[4]).input == (4,)
    assert from_module(model, [4]).input == (4,)
    with pytest.warns(DeprecationWarning, match="input="):
        assert from_module(model, input_shape=[4]).input == (4,)
    with pytest.raises(TypeError, match="input="):
        from_module(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cnnshape.from_module(model, input=(4,)).layers[0].type == "Linear"


# ------------------------------------------------------------------ the command line
@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def _cli(*args, cwd=None):
    """``cnnshape ARGS`` in this process (the user's file runs here too; cnnshape restores
    sys.path and os._exit after it), from the folder ``cwd``."""
    from click.testing import CliRunner

    from cnnshape.cli import main

    old = os.getcwd()
    os.chdir(cwd or ROOT)
    try:
        r = CliRunner().invoke(main, list(map(str, args)))
    finally:
        os.chdir(old)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return Ran(r.exit_code, r.stdout, r.stderr)


MISTAKES = '''\
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.bn = nn.BatchNorm2d(12)
        self.fc1 = nn.Linear(16 * 6 * 6, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(80, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.bn(self.conv2(x))))
        x = x.view(-1, 16 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
'''


def test_check_finds_every_mistake_at_the_line_that_constructs_the_module(tmp_path):
    _module_file(tmp_path, "net", MISTAKES)
    r = _cli("check", "net.py:Net", "--input", "3,32,32", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "net.py:11:9: error: layer 4 (bn): BatchNorm2d expected num_features = 16" in r.stderr
    assert "net.py:12:9: error:" in r.stderr and "layer 8 (fc1): Linear expected in_features = 400" in r.stderr \
        and "received in_features: 576" in r.stderr
    assert "net.py:14:9: error:" in r.stderr and "in_features: 80" in r.stderr
    assert "   12 |         self.fc1 = nn.Linear(16 * 6 * 6, 120)" in r.stderr and "hint:" in r.stderr
    assert "hint: construct it with in_features=400" in r.stderr
    assert "3 errors" in r.stderr and "Traceback" not in r.stderr
    js = _cli("check", "net.py:Net", "--input", "3,32,32", "--format", "json", cwd=tmp_path)
    import json

    doc = json.loads(js.stdout)
    assert [(e["name"], e["line"], e["column"]) for e in doc["errors"]] == [("bn", 11, 9), ("fc1", 12, 9),
                                                                             ("fc3", 14, 9)]


def test_the_model_is_analysed_not_run(tmp_path):
    """The layers' forward never runs on data: a model whose layer would crash on any real
    input is still analysed (the mistake is the analysis's to find)."""
    _module_file(tmp_path, "m", '''\
        import torch
        from torch import nn


        class Boom(nn.Linear):
            def forward(self, x):
                raise RuntimeError("ran on data")


        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 3)

            def forward(self, x):
                return self.fc(torch.flatten(x, 1))
        ''')
    r = _cli("check", "m.py:Net", "--input", "2,3", cwd=tmp_path)
    assert r.returncode == 1 and "m.py:13:9: error:" in r.stderr and "in_features = 6" in r.stderr, r.stderr


REFUSALS = '''\
import torch
import torch.nn as nn
import torch.nn.functional as F


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return x


class TwoOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        return y, x


class Exotic(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return torch.cumsum(self.fc(x), 1)


class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = nn.Hardshrink()

    def forward(self, x):
        return self.act(x)


class Crossing(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.c = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        a = self.a(x)
        y = a + self.b(x)
        return self.c(y) + a


class Aux(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.aux = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(F.relu(self.fc(x)))
'''


@pytest.mark.parametrize("cls, where, fragment", [
    ("Branchy", "12:9", "branches (or loops) on a tensor's value"),
    ("TwoOut", "24:9", "returns several values"),
    ("Exotic", "33:9", "torch.cumsum in Exotic.forward has no spec layer"),
    ("Odd", "39:9", "'act' is a torch.nn.modules.activation.Hardshrink, which has no spec layer"),
    ("Aux", "62:9", "'aux' (Linear) is never called by Aux.forward in eval mode"),
    ("Shared", "74:9", "'fc' (Linear) is called twice (shared weights)"),
])
def test_refusals_name_the_users_line(tmp_path, cls, where, fragment):
    _module_file(tmp_path, "models", REFUSALS)
    r = _cli("import", f"models.py:{cls}", "--input", "4,4,4", cwd=tmp_path)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert f"models.py:{where}: error: " in r.stderr and fragment in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "supported:" not in r.stderr and "hint:" in r.stderr


GRAPHS = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Crossing(nn.Module):  # a skip that crosses another merge
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.c = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        a = self.a(x)
        y = a + self.b(x)
        return self.c(y) + a


class Two(nn.Module):  # a module with two inputs (DLA's tree nodes)
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 4, 1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x, skip):
        return F.relu(self.bn(self.conv(torch.cat([x, skip], 1))))


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(4, 4, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        self.root = Two()

    def forward(self, x):
        x = self.stem(x)
        return self.root(self.body(x), x)


class Hierarchical(nn.Module):  # Res2Net: a ModuleList called between other operations
    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(2, 2, 3, padding=1) for _ in range(2))
        self.out = nn.Conv2d(6, 4, 1)

    def forward(self, x):
        parts = torch.split(x, [2, 2], 1)
        sp, outs = None, []
        for i, conv in enumerate(self.convs):
            sp = parts[i] if i == 0 else sp + parts[i]
            sp = F.relu(conv(sp))
            outs.append(sp)
        return self.out(torch.cat(outs + [parts[0]], 1))


class Product(nn.Module):  # two computed tensors multiplied, a difference, a constant
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 4, 1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return (self.a(x) * torch.sigmoid(self.b(x)) - x) / 2


class DenseScaled(nn.Module):  # RDNet: a block reads every earlier output and scales by its own gamma
    def __init__(self, c):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(c, 2, 1), nn.ReLU())
        self.gamma = nn.Parameter(torch.full((2,), 0.5))

    def forward(self, xs):
        return self.layers(torch.cat(xs, 1)).mul(self.gamma.reshape(1, -1, 1, 1))


class Rd(nn.Module):
    def __init__(self):
        super().__init__()
        self.b0 = DenseScaled(4)
        self.b1 = DenseScaled(6)

    def forward(self, x):
        feats = [x]
        for b in (self.b0, self.b1):
            feats.append(b(feats))
        return torch.cat(feats, 1)


class Tuples(nn.Module):  # DPN: blocks pass (x_a, x_b) pairs
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 6, 1)
        self.b = nn.Conv2d(6, 6, 3, padding=1)

    def pair(self, x):
        y = self.a(x)
        return y[:, :4], y[:, 4:]

    def forward(self, x):
        p, q = self.pair(x)
        return self.b(torch.cat([p + x, q], 1))
'''


@pytest.mark.parametrize("cls", ["Crossing", "TwoInputs", "Hierarchical", "Product", "Tuples", "Rd"])
def test_dataflow_that_is_not_nested_imports_as_a_graph_block(cls):
    """What nested blocks cannot say (issue 25: a skip crossing a merge, a module with two
    inputs, a ModuleList called between other operations, products of computed tensors) is
    one Graph block: weight-exact (strict load, equal outputs), module keys unchanged."""
    torch.manual_seed(0)
    model = _namespace(GRAPHS)[cls]()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    spec = _same(model, (4, 6, 6))
    assert "Graph" in {x.type for top in spec.layers for x in [top]}, spec.layers
    from cnnshape.spec import YAMLText
    from cnnshape.yaml_out import dump_spec

    again = load(YAMLText(dump_spec(spec)))  # the imported Graph survives writing and reading YAML
    assert analyze(again).totals == analyze(spec).totals


SKIPINIT = '''
import torch
import torch.nn as nn


class Block(nn.Module):  # timm's NormFreeBlock: act * beta feeds both paths; out.mul_(gain) in place
    def __init__(self, down):
        super().__init__()
        self.act1 = nn.GELU()
        self.downsample = nn.Conv2d(4, 4, 1) if down else None
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.skipinit_gain = nn.Parameter(torch.tensor(0.))

    def forward(self, x):
        out = self.act1(x) * 0.9
        shortcut = self.downsample(out) if self.downsample is not None else x
        out = self.conv(out)
        out.mul_(self.skipinit_gain)
        return out * 0.2 + shortcut


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.b0 = Block(True)
        self.b1 = Block(False)

    def forward(self, x):
        return self.b1(self.b0(x))
'''


SHAPE_BRANCH = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Head(nn.Module):  # timm's VGG ConvMlp: keep the map at least 5x5
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x):
        if x.shape[-2] < 5 or x.size(-1) < 5:
            x = F.adaptive_avg_pool2d(x, (max(5, x.shape[-2]), max(5, x.shape[-1])))
        return self.fc(x.flatten(1))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3)
        self.head = Head()

    def forward(self, x):
        return self.head(self.conv(x))
'''


def test_a_branch_on_a_shape_takes_the_branch_of_the_imported_input():
    """``if x.shape[-2] < 5:`` (timm's VGG head) is a branch on a shape, not on data: the
    importer traces again with the shapes of --input and imports the branch taken there; a
    branch on a value is still refused."""
    torch.manual_seed(0)
    model = _namespace(SHAPE_BRANCH)["Net"]()
    spec = _same(model, (2, 6, 6))  # 6x6 -> 4x4 < 5: the adaptive pool is in the spec
    assert any(x.type == "AdaptiveAvgPool2d" for top in spec.layers for x in getattr(top, "body", [top]))
    with pytest.raises(Exception, match="does not run there: RuntimeError: mat1 and mat2"):  # 9x9 -> 7x7: no
        _same(model, (2, 9, 9))  # pool, and fc was built for 5x5


def test_in_place_scale_on_a_scalar_parameter_imports_weight_exactly():
    """``out.mul_(gain)`` with its result dropped reads as the mutated tensor (fx keeps later
    uses on the node before it); a scalar parameter becomes the Residual's scalar layer scale,
    also when the Residual is inline (its parameter registered on the owner: in state_dict
    and parameters(), as the analysis counts it)."""
    torch.manual_seed(0)
    model = _namespace(SKIPINIT)["Net"]()
    with torch.no_grad():
        for blk in (model.b0, model.b1):
            blk.skipinit_gain.fill_(0.7)
    spec = _same(model, (4, 5, 5))
    net = build(spec)
    assert sum(p.numel() for p in net.parameters()) == analyze(spec).totals.params
    assert {"b0.skipinit_gain", "b1.skipinit_gain"} <= set(net.state_dict())


@pytest.mark.parametrize("body, fragment", [
    ("import sys\nsys.exit(0)\n", "called sys.exit(0)"),
    ("import sys\nsys.exit(3)\n", "called sys.exit(3)"),
    ("import os\ndef net():\n    os._exit(7)\n", "called os._exit(7)"),
    ("class E(BaseException):\n    pass\nraise E('boom')\n", "raised E: boom"),
    ("def net():\n    return 1 / 0\n", "raised ZeroDivisionError"),
])
def test_user_code_failures_are_located_errors_with_exit_2(tmp_path, body, fragment):
    _module_file(tmp_path, "user", body)
    for cmd in (["import", "user.py:net", "--input", "4"], ["check", "user.py:net", "--input", "4"]):
        r = _cli(*cmd, cwd=tmp_path)
        assert r.returncode == 2, (cmd, r.returncode, r.stderr)
        assert "user.py:" in r.stderr and fragment in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_import_bounds_what_cnnshape_does(tmp_path):
    _module_file(tmp_path, "deep", "from torch import nn\nm = nn.ReLU()\nfor _ in range(200):\n"
                                   "    m = nn.Sequential(m)\nnet = m\n")
    r = _cli("import", "deep.py:net", "--input", "4", cwd=tmp_path)
    assert r.returncode == 1 and "nests modules more than 31 levels deep" in r.stderr, r.stderr
    assert "RecursionError" not in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    r = _cli("import", "zero.py:net", "--input", "4", cwd=tmp_path)
    assert r.returncode == 2 and "limit" in r.stderr, r.stderr
    r = _cli("check", "missing.py:net", "--input", "4", cwd=tmp_path)
    assert r.returncode == 2 and "no such file" in r.stderr
    r = _cli("check", "deep.py:net", cwd=tmp_path)
    assert r.returncode == 2 and "needs --input" in r.stderr


def test_every_command_takes_a_python_model(tmp_path):
    _module_file(tmp_path, "hand", HAND)
    args = ("--input", "3,32,32")
    assert _cli("check", "hand.py:UNet", *args, cwd=tmp_path).returncode == 0
    assert _cli("sizes", "hand.py:UNet", *args, cwd=tmp_path).returncode == 0
    assert _cli("draw", "hand.py:ResNet", *args, "-o", tmp_path / "r.svg", cwd=tmp_path).returncode == 0
    assert (tmp_path / "r.svg").read_text().startswith("<")
    assert _cli("diff", "hand.py:ResNet", "hand.py:ResNet", *args, cwd=tmp_path).returncode == 0
    r = _cli("verify", "hand.py:SENet", *args, "--no-torchinfo", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _cli("export", "hand.py:UNet", *args, "-o", tmp_path / "unet.py", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _cli("import", "unet.py:Net", *args, cwd=tmp_path)
    assert r.returncode == 0 and load(r.stdout).to_dict()["layers"][1]["type"] == "Concat", r.stderr


def test_check_on_yaml_still_does_not_import_torch():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom cnnshape.cli import main\n"
            "r = CliRunner().invoke(main, ['check', 'specs/vgg16.yaml'])\n"
            "assert r.exit_code == 0, r.output\nassert 'torch' not in sys.modules\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert r.stdout.strip() == "ok", r.stderr


# ------------------------------------------------------------------ torchvision's own classes
def _tv():
    from .test_zoo import INDEX, tv_classifiers, tv_model

    return INDEX, tv_classifiers, tv_model


SAMPLE = ["resnet18", "mobilenet_v3_small", "squeezenet1_1", "densenet121", "shufflenet_v2_x0_5", "googlenet",
          "convnext_tiny", "efficientnet_b0", "regnet_y_400mf", "mnasnet0_5", "inception_v3", "alexnet"]


def _tv_names():
    return _tv()[1]() if FULL else SAMPLE


@pytest.mark.parametrize("name", _tv_names())
def test_torchvision_classifiers_import_with_the_zoos_figures(name):
    """Built on the meta device (no weights): params, MACs and every state_dict key/shape."""
    index, _, tv_model = _tv()
    model = tv_model(name)
    spec = from_module(model, input=index[name]["input"])
    report = analyze(spec)
    assert (report.totals.params, report.totals.macs) == (index[name]["params"], index[name]["macs"])
    ours = {k: tuple(v.shape) for k, v in build(spec, device="meta").state_dict().items()}
    assert ours == {k: tuple(v.shape) for k, v in model.state_dict().items()}


OUTPUT_SAMPLE = ["resnet18", "mobilenet_v3_small", "squeezenet1_1", "shufflenet_v2_x0_5", "densenet121",
                 "convnext_tiny"]


@pytest.mark.parametrize("name", _tv_names() if FULL else OUTPUT_SAMPLE)
def test_torchvision_classifiers_give_equal_outputs(name):
    """Built on the CPU with random weights: strict load, equal outputs (a reduced input in the
    fast profile; the declared input in the thorough one)."""
    index, _, tv_model = _tv()
    torch.manual_seed(0)
    model = tv_model(name, device="cpu").eval()
    size = index[name]["input"] if FULL else [3, 75 if name == "inception_v3" else 64, 75 if name ==
                                              "inception_v3" else 64]
    _same(model, tuple(size), batch=2)


# ------------------------------------------------------------------ generated specs, both ways
@given(cs.valid_specs(max_layers=5))
def test_generated_specs_export_to_python_and_import_back_identically(spec_dict):
    """spec -> ``export`` (a plain PyTorch file) -> fx import -> a spec whose analysis is the
    same: every row's type, shapes, params, MACs, and the totals."""
    note(cs.to_yaml(spec_dict))
    spec = load(spec_dict)
    report = analyze(spec)
    ns: dict = {"__name__": "exported"}
    exec(compile(export_python(spec), "exported.py", "exec"), ns)
    again = analyze(from_module(ns["Net"](), input=spec.input, batch=spec.batch))

    def rows(r):
        return [(x.path, x.type, tuple(x.input), tuple(x.output), x.params, x.trainable_params, x.macs)
                for top in r.layers for x in top.walk()]
    assert rows(again) == rows(report)
    assert again.totals == report.totals and again.output == report.output


@pytest.mark.parametrize("target, size", [
    ("torchvision:resnet18", 64), ("timm:resnet18", 64),
    ("timm:convnextv2_atto", 64),  # GRN on [C, H, W] (conv MLP): its layout read from timm's channel_dim
])
def test_package_models_import_weight_exactly(target, size):
    """``torchvision:NAME`` / ``timm:NAME``: the package builds the model on meta, the spec
    keeps its state_dict keys; the package's own CPU model (random weights) loads strictly into
    the compiled spec and gives the same outputs."""
    from cnnshape import build
    from cnnshape.analysis import check
    from cnnshape.torch_backend.pyload import _import_package, load_python

    torchvision, timm = _import_package("torchvision"), _import_package("timm")  # as the CLI imports them

    report = check(load_python(target, (3, size, size)))
    assert report.ok, report.errors
    package, _, name = target.partition(":")
    torch.manual_seed(0)
    ref = (torchvision.models.get_model(name) if package == "torchvision" else timm.create_model(name)).eval()
    for m in ref.modules():  # randomised statistics, so that normalisation is really compared
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    net = build(report.spec).eval()
    net.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert torch.allclose(net(x), ref(x), atol=1e-4, rtol=1e-4)


def test_unknown_package_model_is_a_clear_error():
    from cnnshape.errors import UserCodeError
    from cnnshape.torch_backend.pyload import load_python

    with pytest.raises(UserCodeError, match="resnet18"):
        load_python("torchvision:resnet17", (3, 32, 32))


def test_import_writes_the_weights_as_a_checkpoint(tmp_path, monkeypatch):
    """--checkpoint: the model's weights, loaded strictly into the compiled spec, saved with
    it; --pretrained: the weights the package's own loader gives (here torchvision's, from its
    cache, as after a download; no network in the tests), and a clear error when they cannot
    be had."""
    from cnnshape.torch_backend.checkpoint import load_checkpoint
    from cnnshape.torch_backend.pyload import _import_package

    tv = _import_package("torchvision")
    weights = tv.models.ResNet18_Weights.DEFAULT
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(1)
    ref = tv.models.resnet18().eval()
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
    torch.save(ref.state_dict(), cache / os.path.basename(weights.url))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    ckpt = tmp_path / "r18.ckpt"
    r = _cli("import", "torchvision:resnet18", "--input", "3,64,64", "-o", tmp_path / "r18.yaml",
             "--checkpoint", ckpt, "--pretrained")
    assert r.returncode == 0, r.stderr
    got = load_checkpoint(str(ckpt)).model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(got(x), ref(x), rtol=1e-5, atol=1e-5)

    _module_file(tmp_path, "mine", "import torch\nimport torch.nn as nn\ntorch.manual_seed(3)\n"
                 "net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))\n")
    r = _cli("import", "mine.py:net", "--input", "3,8,8", "--checkpoint", tmp_path / "mine.ckpt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    torch.manual_seed(3)
    want = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).state_dict()
    state = load_checkpoint(str(tmp_path / "mine.ckpt")).model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in want.items()) and set(state) == set(want)

    r = _cli("import", "mine.py:net", "--input", "3,8,8", "--checkpoint", tmp_path / "x.ckpt", "--pretrained",
             cwd=tmp_path)
    assert r.returncode == 2 and "--pretrained takes the published weights" in r.stderr, r.stderr
    r = _cli("import", "mine.py:net", "--input", "3,8,8", "--pretrained", cwd=tmp_path)
    assert r.returncode != 0 and "--pretrained needs --checkpoint" in r.stderr, r.stderr
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = _cli("import", "timm:resnet18", "--input", "3,64,64", "--checkpoint", tmp_path / "t.ckpt", "--pretrained")
    assert r.returncode == 2 and "timm could not fetch its pretrained weights" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_an_op_with_no_layer_is_named_even_when_a_later_op_fails_first():
    """Attention-like code: ``q @ k.transpose(-2, -1)`` has no spec layer, so every shape after
    it is unknown; the refusal names the matmul at its line, not the reshape that follows."""
    src = textwrap.dedent('''
        import torch.nn as nn


        class Attn(nn.Module):
            def __init__(self):
                super().__init__()
                self.qkv = nn.Conv2d(4, 4, 1)

            def forward(self, x):
                B, C, H, W = x.shape
                q = self.qkv(x).flatten(2)
                a = q @ q.transpose(-2, -1)
                return (a @ q).reshape(B, C, H, W)
        ''')
    from cnnshape.torch_backend.fx_import import ImportRefused

    with pytest.raises(ImportRefused, match=r"'@' \(_operator.matmul\) in Attn.forward has no spec layer") as info:
        from_module(_namespace(src)["Attn"](), input=(4, 3, 3))
    assert info.value.site is not None and info.value.site.line == 13
