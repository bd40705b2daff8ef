"""The golden JSON reports (tests/golden/, written by cnnshape itself and compared with the
live output by tests/test_cli.py) checked on their own against torch or hand arithmetic,
so a wrong figure cannot be frozen into them: each valid spec's output shape and
parameter count against a network built with torch independently of cnnshape
(tests/sizes_oracle.py), its first layer's output against torch, its saved-for-backward
bytes against ``saved_tensors_hooks`` (tests/memory_oracle.py); the broken spec's error and
shapes by hand; sizes.json is checked against torch by tests/test_sizes_torch.py."""

import glob
import json
import os

import pytest
import torch

from .conftest import ROOT

GOLDEN = os.path.join(ROOT, "tests", "golden")
REPORTS = sorted(p for p in glob.glob(os.path.join(GOLDEN, "*.json")) if not p.endswith("sizes.json"))


def _load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def test_every_shipped_spec_has_a_golden_report():
    names = {os.path.basename(p)[:-5] for p in glob.glob(os.path.join(ROOT, "specs", "*.yaml"))}
    assert names == {os.path.basename(p)[:-5] for p in REPORTS}


@pytest.mark.parametrize("path", [p for p in REPORTS if "broken" not in p], ids=os.path.basename)
def test_golden_report_figures_equal_torch(path):
    from .sizes_oracle import torch_figures

    doc = _load(path)
    spec = f"specs/{os.path.basename(path)[:-5]}.yaml"
    output, params = torch_figures(spec)
    assert doc["ok"] is True
    assert tuple(doc["output"]) == output
    assert doc["totals"]["params"] == params
    first = doc["layers"][0]
    torch_first, _ = torch_figures({"input": doc["input"], "batch": 1,
                                    "layers": [_first_layer_dict(spec)]})
    assert tuple(first["output"]) == torch_first


def _first_layer_dict(spec: str) -> dict:
    from .sizes_oracle import _spec_dict

    first = _spec_dict(spec)["layers"][0]
    return {"type": first} if isinstance(first, str) else first


@pytest.mark.parametrize("name", ["fashion_mnist", "lenet5", "convnet_notebook", "edge_filters", "m5_audio_1d",
                                  "unet_small", "resnet_small_32", "volume_3d"])
def test_golden_saved_bytes_equal_torch(name):
    """saved_bytes of the golden report = what autograd keeps in torch (at the spec's batch)."""
    from cnnshape.analysis import check
    from cnnshape.torch_backend.build import build

    from .memory_oracle import saved_bytes

    doc = _load(os.path.join(GOLDEN, f"{name}.json"))
    report = check(os.path.join(ROOT, "specs", f"{name}.yaml"))
    torch.manual_seed(0)
    model = build(report.spec, report=report)
    x = torch.randn(doc["batch"], *doc["input"])
    assert doc["memory"]["training"]["saved_bytes"] == saved_bytes(model, x)
    assert doc["memory"]["training"]["saved_bytes"] == sum(row["saved_bytes"] for row in doc["layers"])


def test_broken_golden_by_hand():
    """specs/broken_fashion_mnist.yaml: Conv2d 5x5 on 28x28 -> 24x24 (28 - 5 + 1), 2x2 max
    pooling -> 12x12, Flatten -> 4*12*12 = 576, but its Linear declares in_features 676."""
    doc = _load(os.path.join(GOLDEN, "broken_fashion_mnist.json"))
    assert doc["ok"] is False
    assert doc["layers"][0]["output"] == [4, 28 - 5 + 1, 28 - 5 + 1]
    assert doc["layers"][0]["params"] == 4 * 1 * 5 * 5 + 4
    assert doc["layers"][2]["output"] == [4, 12, 12]
    assert doc["layers"][3]["output"] == [4 * 12 * 12]
    (error,) = doc["errors"]
    assert error["index"] == 4 and error["line"] == 9
    assert "576" in error["message"] and "676" in error["message"]
