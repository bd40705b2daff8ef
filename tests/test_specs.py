"""Every shipped spec: checks as expected, and its figures equal a real torch model's."""

import glob
import os

import pytest
import torch
import torchinfo

from cnnshape.analysis import check
from cnnshape.torch_backend.build import build

from .conftest import SPECS

ALL = sorted(glob.glob(os.path.join(SPECS, "*.yaml")))
VALID = [p for p in ALL if "broken" not in os.path.basename(p)]
BROKEN = [p for p in ALL if "broken" in os.path.basename(p)]

# figures published for the reference architectures
KNOWN_PARAMS = {"alexnet.yaml": 61_100_840, "vgg16.yaml": 138_357_544, "lenet5.yaml": 61_706,
                "fashion_mnist.yaml": 44_018}


def test_specs_folder_has_the_promised_networks():
    names = {os.path.basename(p) for p in ALL}
    assert {"fashion_mnist.yaml", "convnet_notebook.yaml", "edge_filters.yaml", "lenet5.yaml",
            "alexnet.yaml", "vgg16.yaml", "m5_audio_1d.yaml", "volume_3d.yaml"} <= names
    for path in ALL:
        with open(path) as f:
            assert f.readline().startswith("# "), f"{path} starts with a comment line documenting it"


@pytest.mark.parametrize("path", VALID, ids=os.path.basename)
def test_valid_spec_matches_torch(path):
    report = check(path)
    assert report.ok, report.errors
    model = build(report.spec, device="meta" if report.totals.params > 5e7 else "cpu")
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert report.totals.params == params
    assert report.totals.trainable_params == trainable
    if os.path.basename(path) in KNOWN_PARAMS:
        assert params == KNOWN_PARAMS[os.path.basename(path)]
    # forward layer by layer (meta for the big ones: shapes only)
    dev = next(model.parameters()).device
    x = torch.zeros(2, *report.spec.input, device=dev)
    model.eval()
    with torch.no_grad():
        for lr, module in zip(report.layers, model):
            x = module(x)
            assert tuple(x.shape[1:]) == lr.output, f"{lr.name} ({lr.type})"


@pytest.mark.parametrize("path", VALID, ids=os.path.basename)
def test_totals_equal_torchinfo(path):
    report = check(path)
    model = build(report.spec, device="meta")
    stats = torchinfo.summary(model, input_size=(1, *report.spec.input), device="meta", verbose=0)
    assert stats.total_params == report.totals.params
    assert stats.trainable_params == report.totals.trainable_params


@pytest.mark.parametrize("path", BROKEN, ids=os.path.basename)
def test_broken_spec_is_located(path):
    report = check(path)
    assert not report.ok
    assert all(d.line is not None and d.hint for d in report.errors)


ZOO = sorted(glob.glob(os.path.join(os.path.dirname(SPECS), "cnnshape", "zoo", "specs", "*.yaml")))


@pytest.mark.parametrize("path", VALID + ZOO, ids=os.path.basename)
def test_to_dict_round_trips(path):
    """A loaded spec written back as data (Spec.to_dict: what a tool or the studio saves)
    is the same spec, Repeat.first overrides with layer lists included."""
    from cnnshape.spec import load

    spec = load(path)
    again = load(spec.to_dict())
    assert again.to_dict() == spec.to_dict()
    assert check(again).totals == check(spec).totals
